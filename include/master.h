/*
 * master: the supervisor.  Forks the pool, replaces workers that die
 * (with the restart policy of pool.h), reloads, resizes, watches for hung
 * workers, proves its health to the systemd watchdog, stops gracefully.
 * Serves no client byte.
 */
#ifndef ECHOD_MASTER_H
#define ECHOD_MASTER_H

#include <stddef.h>

#include "conf.h"
#include "listener.h"

struct master_opts {
	const char *config_path;  /* re-read on SIGHUP; NULL: built-in */
	char *const *cli_listen;  /* -l, re-applied on every reload */
	size_t ncli_listen;
	const char *cli_workers;  /* -w, likewise; NULL if not given */
	int ready_fd;             /* -d: tell the waiting parent; else -1 */
	int pidfile_fd;           /* not for workers to hold; else -1 */
	unsigned sandbox_needs;   /* SANDBOX_NEED_*, for the workers' filter */
};

/*
 * Run the pool over the listeners (the master owns them from now on)
 * until told to stop.  c is the master's and is replaced on reload.
 * Returns the exit status: ECHOD_EXIT_OK after a graceful stop,
 * ECHOD_EXIT_FAILURE when supervision gave up.
 */
int master_run(struct conf *c, struct listener *ls, size_t nls,
    const struct master_opts *o);

#endif
