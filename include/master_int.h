/*
 * master_int: what the master's files share (master.c: the loop, signals,
 * status and stop; generation.c: generations and reload; slots.c: spawning,
 * reaping and the slot timers).  Not an API: nothing outside the master
 * includes it.
 */
#ifndef ECHOD_MASTER_INT_H
#define ECHOD_MASTER_INT_H

#include <stddef.h>
#include <stdint.h>

#include "climit.h"
#include "conf.h"
#include "listener.h"
#include "master.h"
#include "metricsd.h"
#include "pool.h"
#include "probe.h"
#include "scoreboard.h"
#include "worker.h"

/*
 * Slots hold at most three generations side by side: the new one being
 * started, the one serving, and the one draining.  When the new one needs
 * a slot and none is free, a draining worker is killed for it.
 */
#define MAX_SLOTS (3 * CONF_WORKERS_MAX)
#define RELOAD_TIMEOUT_MS 30000 /* a new generation not ready by then fails */
#define FORK_RETRY_MS 1000
#define STATUS_INTERVAL_MS 1000
#define ABORT_GRACE_MS 2000 /* SIGABRT, then SIGKILL this much later */
#define KILL_GRACE_MS 1000  /* after shutdown_timeout, before SIGKILL */

/* One generation: a configuration and the listeners it serves. */
struct gen {
	uint64_t id; /* 0: none */
	struct conf *conf;
	struct listener ls[CONF_LISTEN_MAX];
	int lfds[CONF_LISTEN_MAX];
	size_t nls;
	uint32_t proxy_mask; /* bit i: ls[i] is a proxy_listen listener */
	int probe_ls;        /* the first plain listener, -1 if none */
	char addrs[1024];
	unsigned target; /* workers wanted */
	unsigned owed;   /* of those, waiting for a slot to be freed */
	int max_conns;   /* max_connections, lowered to fit RLIMIT_NOFILE */
};

/* A reload's progress.  SIGHUPs that arrive meanwhile wait in hup_due. */
enum reload_phase {
	RELOAD_IDLE,     /* only the serving generation */
	RELOAD_STARTING, /* pending forked, not all of it ready yet */
};

enum reload_kind {
	RELOAD_SIGHUP,   /* a new configuration */
	RELOAD_RECYCLE,  /* the same one, after a failed health probe */
};

struct reload {
	enum reload_phase phase;
	enum reload_kind kind;
	uint64_t started_ms, deadline_ms;
	int hup_due; /* a SIGHUP came during this one: reload again after */
	struct conf conf; /* the pending generation's, for a SIGHUP */
};

struct master {
	struct conf *conf; /* the serving generation's (the caller's) */
	const struct master_opts *opts;
	struct gen serving, pending; /* pending.id == 0: none */
	struct reload rl;
	struct pool pool;
	struct scoreboard sb;
	struct climit limits;
	struct worker_args wa;
	int epfd, sigfd, status_rd, status_wr;
	int ready_fd; /* -d: the parent waits on it until we are ready */
	uint64_t last_generation;
	int ready_sent;  /* READY=1 said for the serving generation */
	int up;          /* the first generation was ready once */
	int stopping;
	int exit_code;
	uint64_t stop_deadline;
	uint64_t next_status, next_timer;
	uint64_t served_by_dead;
	uint64_t wd_interval, next_probe; /* watchdog, ms; 0 = none */
	int wd_failures, wd_stopped;
	struct probe probe;
	char last_status[1400];
	struct metricsd_ctl md; /* the metrics process (metricsd.c) */
};

uint64_t master_now(void);
void master_refresh_status(struct master *m);
void master_stop(struct master *m, int code, const char *why);
void master_child_close(struct master *m);

/* slots.c */
void slots_spawn(struct master *m, unsigned i, const struct gen *g);
int slots_add(struct master *m, const struct gen *g);
void slots_retire(struct master *m, unsigned i);
void slots_retire_gen(struct master *m, uint64_t older_than, uint64_t only);
void slots_signal(struct master *m, int sig);
void slots_reap(struct master *m);
/* Act on the slot timers; returns when they next need a look. */
uint64_t slots_timers(struct master *m, uint64_t now);
/* Kill draining workers until n slots for gid are free or on their way. */
void slots_make_room(struct master *m, unsigned n, uint64_t gid);

/* generation.c */

/* What a starting generation needs next.  Pure. */
enum gen_step {
	GEN_WAIT,    /* every worker forked; not all ready yet */
	GEN_FILL,    /* some workers to fork (or owed a slot) */
	GEN_COMMIT,  /* all ready: it serves now, the older ones drain */
	GEN_ABANDON, /* not ready by its deadline: the reload failed */
};
enum gen_step gen_step(unsigned ready, unsigned live, unsigned target,
    uint64_t now_ms, uint64_t deadline_ms);

void gen_first(struct master *m, const struct listener *ls, size_t nls);
void gen_on_hup(struct master *m);
void gen_recycle(struct master *m, const char *why);
void gen_grow(struct master *m);
/* A worker of generation gid failed it (why: how): abandon it if pending. */
void gen_worker_failed(struct master *m, uint64_t gid, const char *why);
/* After readiness or a death: commit, abandon or say READY=1. */
void gen_check(struct master *m);
/* The reload deadline, or UINT64_MAX. */
uint64_t gen_deadline(const struct master *m);
void gen_stop(struct master *m);
const struct gen *gen_of(const struct master *m, uint64_t id);
int master_fit_nofile(const struct conf *c, size_t nlfds);

/*
 * metricsd.c, the master's side: the metrics_listen socket (opened at
 * start-up, exits 71 if it cannot be), the `echod: metrics` child forked,
 * reaped (1: pid was it) and restarted at most once a second, signalled
 * with the workers, and moved or stopped after a reload's commit.
 */
void metricsd_open(struct master *m);
void metricsd_spawn(struct master *m);
int metricsd_reaped(struct master *m, pid_t pid, int st);
uint64_t metricsd_due(const struct master *m);
void metricsd_timer(struct master *m, uint64_t now);
void metricsd_signal(struct master *m, int sig);
void metricsd_reconfigure(struct master *m);

/*
 * upgrade.c, the master's side (upgrade.h has the rest): SIGUSR2 checks
 * the binary on disk and re-executes it in place, or says why not and
 * goes on.  In the new image, the old image's workers: SIGTERMed once
 * the new generation is ready, reaped quietly (upgrade_reaped: 1 if pid
 * was one), waited for when stopping.
 */
void upgrade_start(struct master *m);
/* The new image, once its scoreboard exists: the counters handed over
 * (if any) into its header, so /metrics goes on from where it was. */
void upgrade_carry(struct scoreboard *sb);
const char *upgrade_from(void); /* the old version until ready, or NULL */
void upgrade_ready(void);
int upgrade_reaped(pid_t pid);
size_t upgrade_old_left(void);
void upgrade_signal_old(int sig);

#endif
