/*
 * echo: the service's transform.  Pure: ASCII 'a'..'z' become 'A'..'Z',
 * every other byte value (CR, LF, NUL, 0x80..0xff) is left untouched.
 */
#ifndef ECHOD_ECHO_H
#define ECHOD_ECHO_H

#include <stddef.h>

void echo_upper(unsigned char *buf, size_t len);

#endif
