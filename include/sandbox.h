/*
 * sandbox: the seccomp filter a worker puts itself under once set up.
 */
#ifndef ECHOD_SANDBOX_H
#define ECHOD_SANDBOX_H

#include <stddef.h>

/*
 * What a worker may need beyond its loop, for sandbox_syscalls().  The
 * events worker needs none (-d logs through a socket made before the
 * fork); each other model asks for what it needs in its model_ops
 * (model.h): POLL for all of them, THREADS for thread-per-connection and
 * thread-pool, FORK for process-per-connection.  The allow-list grows
 * only through a need, so that a model or option that needs more says so
 * in one place.
 */
enum sandbox_need {
	SANDBOX_NEED_POLL = 1 << 1,    /* poll(): the blocking models' waits */
	SANDBOX_NEED_THREADS = 1 << 2, /* pthread_create, mutexes, condvars */
	SANDBOX_NEED_FORK = 1 << 3,    /* fork, reap and signal children */
};

/* A worker's sandbox, as the log, -t and the scoreboard name it. */
enum sandbox_state {
	SANDBOX_UNKNOWN = 0,   /* not set up yet */
	SANDBOX_OFF = 1,       /* sandbox = off */
	SANDBOX_ON = 2,        /* loaded: a forbidden call kills the process */
	SANDBOX_ON_THREAD = 3, /* loaded with KILL_THREAD (see the log) */
	SANDBOX_NO_BUILD = 4,  /* this build cannot (sanitizers) */
	SANDBOX_FAILED = 5,    /* sandbox = try and it could not load */
};

/* "on", "on (kill thread)", "off", ...; "-" for SANDBOX_UNKNOWN. */
const char *sandbox_state_name(int state);

/*
 * The system calls a worker with these needs may make, into out (at most
 * max); returns how many there are.  Pure: the allow-list, in one place.
 */
size_t sandbox_syscalls(unsigned needs, int *out, size_t max);

/*
 * Load the allow-list for needs.  Any other call kills the worker
 * (SIGSYS) and the master replaces it.  Returns SANDBOX_ON, or
 * SANDBOX_ON_THREAD with the reason KILL_PROCESS could not be used in
 * err, or SANDBOX_NO_BUILD (sanitizers), or -1 with the reason in err.
 */
int sandbox_enter(unsigned needs, char *err, size_t errlen);

/*
 * sandbox_enter in a throw-away child, for -t and the start-up log: what
 * a worker would get here.  Same returns; -1 also if the probe failed.
 */
int sandbox_probe(unsigned needs, char *err, size_t errlen);

/*
 * What a worker does with sandbox_enter's result under the configured
 * mode (enum conf_sandbox): the state it reports, and whether it must
 * exit (sandbox = on and no filter) or warn (sandbox = try, no filter).
 * Pure.  mode off: state off, sandbox_enter is not called.
 */
struct sandbox_verdict {
	int state; /* enum sandbox_state */
	int exit;  /* 1: exit ECHOD_EXIT_WORKER_FATAL, do not serve */
	int warn;  /* 1: log the reason as a warning */
};
struct sandbox_verdict sandbox_decide(int mode, int result);

/* Whether this build can load it at all (not under sanitizers). */
int sandbox_supported(void);

#endif
