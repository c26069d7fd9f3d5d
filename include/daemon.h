/*
 * daemon: what a service started outside systemd does for itself:
 * detach from the terminal (-d), keep a locked pidfile, drop root.
 * Reports errors in the caller's buffer; only main() decides to exit.
 */
#ifndef ECHOD_DAEMON_H
#define ECHOD_DAEMON_H

#include <stddef.h>

#include "conf.h"

/*
 * Close every descriptor a careless parent left open, except systemd's
 * listening sockets: a worker must not hold someone else's pipe, and
 * descriptors it cannot see still count against its limit.
 */
void daemon_close_inherited(void);

/*
 * Detach: fork, and in the parent wait until the child says it is ready
 * (exit 0) or dies (exit with its status); never returns in the parent.
 * The child calls setsid(), chdir("/"), points fds 0-2 at /dev/null and
 * gets back the fd on which to say "ready" (daemon_ready).  -1 on error.
 */
int daemon_detach(char *err, size_t errlen);
/* Tell the waiting parent we are ready, and close fd. */
void daemon_ready(int fd);

/*
 * Create, lock and fill the pidfile; the fd stays open to hold the lock
 * (a fork keeps it: the lock belongs to the open file, not the process).
 */
int daemon_pidfile_open(const char *path, char *err, size_t errlen);
/* Write our own pid into it again (after the detaching fork). */
int daemon_pidfile_write(int fd);
/* Remove it (or empty it when we may no longer unlink it) and close fd. */
void daemon_pidfile_remove(const char *path, int fd);

/*
 * Started as root: switch to c->user / c->group (supplementary groups
 * cleared), unless the user is root and c->allow_root.  Not root: nothing.
 * Writes what it did into what (for the log).  -1 with err on failure.
 */
int daemon_drop_privileges(const struct conf *c, char *what, size_t whatlen,
    char *err, size_t errlen);

#endif
