/*
 * master: the supervisor.  Forks the pool, replaces workers that die
 * (with the restart policy of pool.h), stops gracefully on SIGTERM/SIGINT.
 * Serves no client byte.
 */
#ifndef ECHOD_MASTER_H
#define ECHOD_MASTER_H

#include <stddef.h>

#include "conf.h"

/*
 * Run the pool over the already-open listening sockets lfds until told to
 * stop.  Returns the process exit status: ECHOD_EXIT_OK after a graceful
 * stop, ECHOD_EXIT_FAILURE when supervision gave up.
 */
int master_run(const struct conf *c, int *lfds, size_t nlfds,
    const char *addrs);

#endif
