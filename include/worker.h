/*
 * worker: one process of the pool: an epoll loop over the inherited
 * listeners and up to max_conns client connections.
 */
#ifndef ECHOD_WORKER_H
#define ECHOD_WORKER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "conf.h"
#include "climit.h"
#include "scoreboard.h"

/* What a worker writes to the master's status pipe (atomic: < PIPE_BUF). */
enum worker_msg_kind {
	WORKER_MSG_READY = 1,
};

struct worker_msg {
	uint32_t slot;
	uint32_t kind;
	int64_t pid;
};

struct worker_args {
	unsigned slot;
	uint64_t generation;
	const struct conf *conf;
	const int *lfds;
	size_t nlfds;
	uint32_t proxy_mask; /* bit i: lfds[i] is a proxy_listen listener */
	struct scoreboard *sb;
	struct climit *limits; /* per-client tables shared by the pool */
	int status_fd; /* write end of the master's status pipe */
	pid_t master_pid;
	int max_conns; /* max_connections, lowered to fit RLIMIT_NOFILE */
	unsigned sandbox_needs; /* SANDBOX_NEED_*: what the filter allows */
};

/*
 * Draining (SIGTERM, or a reload's old generation): stop accepting and
 * close the listeners once the accept queues were found empty, or the
 * worker cannot take more, or shutdown_timeout is reached.  Pure.
 */
int worker_drain_stop_accepting(int queue_empty, int can_accept,
    uint64_t now, uint64_t deadline);

/*
 * The set-up every model shares (model.h): signals, parent-death signal
 * and title; the seccomp filter for a->sandbox_needs | needs (exits 71
 * under sandbox = on if it cannot load); "ready" to the master.
 */
void worker_setup_process(const struct worker_args *a);
/*
 * What every child of the master starts with (a worker, the metrics
 * process): default signal actions, SIGPIPE, SIGHUP, SIGUSR1, SIGTTIN and
 * SIGTTOU ignored, SIGTERM and SIGINT blocked for a signalfd, and
 * SIGTERM when the master dies (exits at once if it is gone already).
 */
void worker_child_signals(pid_t master_pid);
void worker_enter_sandbox(const struct worker_args *a, unsigned needs);
void worker_report_ready(const struct worker_args *a);

/* Run a worker in a freshly forked child.  Never returns. */
void worker_main(const struct worker_args *a) __attribute__((noreturn));

#endif
