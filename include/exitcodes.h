/*
 * exitcodes: the process exit statuses echod promises (see echod(8)).
 */
#ifndef ECHOD_EXITCODES_H
#define ECHOD_EXITCODES_H

#define ECHOD_EXIT_OK 0
#define ECHOD_EXIT_FAILURE 1 /* the pool kept dying: supervision gave up */
#define ECHOD_EXIT_USAGE 64  /* EX_USAGE: bad command line */
#define ECHOD_EXIT_OSERR 71  /* EX_OSERR: bind, fork, epoll... failed */
#define ECHOD_EXIT_CONFIG 78 /* EX_CONFIG: invalid configuration */

/*
 * A worker that cannot set itself up exits with this status; the master
 * does not respawn that slot, since another try would fail the same way.
 */
#define ECHOD_EXIT_WORKER_FATAL 71

#endif
