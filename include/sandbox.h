/*
 * sandbox: the seccomp filter a worker puts itself under once set up.
 */
#ifndef ECHOD_SANDBOX_H
#define ECHOD_SANDBOX_H

#include <stddef.h>

/*
 * Allow only the system calls the worker's loop makes; any other kills
 * the worker (SIGSYS), and the master replaces it.  Returns 0, 1 when the
 * sandbox is not available in this build (sanitizers), or -1 with a
 * message in err when the kernel refused it.
 */
int sandbox_enter(char *err, size_t errlen);

/* Whether this build can load it at all (not under sanitizers). */
int sandbox_supported(void);

#endif
