/*
 * metricsd: the `echod: metrics` process, which serves Prometheus'
 * /metrics on metrics_listen from the shared scoreboard.
 *
 * A child of the master holding only its listener and the scoreboard:
 * one epoll loop over non-blocking sockets, at most METRICSD_CLIENTS
 * scrapers at once (a further one is answered 503 without waiting, and
 * closed), METRICSD_DEADLINE_MS for a request head from accept and again
 * for its response, then closed.  It runs under the events worker's
 * seccomp filter and never reads or writes anything of the master's but
 * the scoreboard.  The master's side (open, fork, reap, restart, stop)
 * is declared in master_int.h.
 */
#ifndef ECHOD_METRICSD_H
#define ECHOD_METRICSD_H

#include <stdint.h>
#include <sys/types.h>

#include "listener.h"
#include "scoreboard.h"

#define METRICSD_CLIENTS 4          /* scrapers served at once */
#define METRICSD_DEADLINE_MS 5000   /* for the request head, the response */
#define METRICSD_RESTART_MS 1000    /* at most one restart a second */
/* A burst of scrapers waits in the accept queue, not in SYN cookies. */
#define METRICSD_BACKLOG 256

/* What the master keeps of its metrics process. */
struct metricsd_ctl {
	int lfd;          /* the metrics_listen socket; -1: off */
	char spec[64];    /* metrics_listen as configured */
	char name[LISTENER_NAME_MAX]; /* the address it is bound to */
	int sandbox;      /* the enum conf_sandbox it was started with */
	pid_t pid;        /* 0: not running */
	uint64_t started_ms;
	uint64_t due_ms;  /* fork it then; UINT64_MAX: nothing due */
	int replacing;    /* stopped for a reload: fork again at once */
	int broken;       /* exited 71: not again until the next reload */
};

/* What the child is handed. */
struct metricsd_args {
	int lfd;
	const struct scoreboard *sb;
	int sandbox;            /* enum conf_sandbox */
	unsigned sandbox_needs; /* SANDBOX_NEED_* beyond the events list */
	pid_t master_pid;
	const char *name;       /* the listener's address, for the log */
};

/* In the forked child: set up, enter the sandbox, serve.  Never returns. */
void metricsd_main(const struct metricsd_args *a) __attribute__((noreturn));

/*
 * Pure: when a metrics process that started at started_ms and died at
 * now_ms may be forked again (at most one a second).
 */
uint64_t metricsd_restart_at(uint64_t started_ms, uint64_t now_ms);

#endif
