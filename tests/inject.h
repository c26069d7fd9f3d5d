/*
 * inject: make a running process call openat() as if its own code had been
 * subverted, the way an attacker's shellcode would.  The attack suite uses
 * it to show that the worker sandbox kills such a call.  It drives the
 * process with ptrace(2) directly and touches only the general registers:
 * gdb's "call" needs the extended (xstate) registers, which some kernels
 * refuse it ("Couldn't write extended state status").
 */
#ifndef ECHOD_TEST_INJECT_H
#define ECHOD_TEST_INJECT_H

#include <sys/types.h>

enum inj_result {
	INJ_DONE,      /* the call ran; *ret holds its result */
	INJ_KILLED,    /* the process died in the call; *ret holds the signal */
	INJ_REFUSED,   /* ptrace is not permitted here (EPERM) */
	INJ_UNSUPPORTED, /* not built for this architecture */
	INJ_FAILED     /* anything else: err says what */
};

/*
 * Makes pid (not a child of ours) call openat(AT_FDCWD, path, O_RDONLY)
 * once, then lets it go on exactly where it was.  Waits at most
 * timeout_ms for each step.
 */
enum inj_result inj_openat(pid_t pid, const char *path, long *ret,
    char *err, size_t errlen, int timeout_ms);

#endif
