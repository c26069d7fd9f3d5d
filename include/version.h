#ifndef ECHOD_VERSION_H
#define ECHOD_VERSION_H

#define ECHOD_VERSION "0.1.0"

#endif
