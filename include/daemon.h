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
 * The first thing echod does, before anything can open a descriptor or a
 * signal can arrive: block the signals the master will read from its
 * signalfd (one sent now waits there instead of killing echod), ignore
 * SIGPIPE, and open /dev/null on any of descriptors 0-2 that is closed,
 * so no socket or file ever lands on them.  0, or -1 with errno.
 */
int daemon_early_setup(void);

/*
 * path made absolute against cwd (leading "./" dropped), into out: -d
 * runs from "/", and a reload must read the file that was started.
 * 0, or -1 with errno ENAMETOOLONG.  Pure.
 */
int daemon_absolute_path(const char *path, const char *cwd, char *out,
    size_t len);

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
 * Create, lock and empty the pidfile; the fd stays open to hold the lock
 * (a fork keeps it: the lock belongs to the open file, not the process).
 * Held by another echod: -1, and err names the holder's pid (waiting up
 * to a second for a starting holder to write it).
 */
int daemon_pidfile_open(const char *path, char *err, size_t errlen);
/* Write our own pid into it: once detached, so it names the daemon. */
int daemon_pidfile_write(int fd);
/* Remove it (or empty it when we may no longer unlink it) and close fd. */
void daemon_pidfile_remove(const char *path, int fd);

/*
 * Started as root: switch to c->user / c->group (supplementary groups
 * cleared); a root user needs c->allow_root, and still takes c->group.
 * Not root: nothing.
 * Writes what it did into what (for the log).  -1 with err on failure.
 */
int daemon_drop_privileges(const struct conf *c, char *what, size_t whatlen,
    char *err, size_t errlen);

#endif
