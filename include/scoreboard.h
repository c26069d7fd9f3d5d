/*
 * scoreboard: shared memory with one entry per worker slot.
 *
 * Created by the master before the first fork (MAP_SHARED|MAP_ANONYMOUS),
 * so every worker sees the same pages.  A worker writes only its own entry,
 * the master only reads entries (and resets one before it forks into its
 * slot) and writes the header.  Fields are naturally aligned 64-bit values written with relaxed
 * atomics: a reader may see a slightly old value, never a torn one.  Under
 * the thread and process models a worker's threads or children add to its
 * entry's counters with sb_add.
 */
#ifndef ECHOD_SCOREBOARD_H
#define ECHOD_SCOREBOARD_H

#include <stdint.h>
#include <sys/types.h>

enum sb_state {
	SB_EMPTY = 0,    /* no process in this slot */
	SB_STARTING = 1, /* forked, setting up */
	SB_READY = 2,    /* accepting */
	SB_DRAINING = 3, /* stopped accepting, finishing its connections */
};

/*
 * Why a connection was closed, for /metrics (reason="..."): every
 * accepted connection ends in exactly one of these.  sb_close_reason()
 * maps the close paths' words ("client closed", "idle timeout", ...).
 */
enum sb_close {
	SB_CLOSE_CLIENT,   /* the client closed */
	SB_CLOSE_IDLE,     /* idle_timeout */
	SB_CLOSE_LIFETIME, /* max_connection_time */
	SB_CLOSE_LIMIT,    /* refused by a per-IP limit */
	SB_CLOSE_RESET,    /* ECONNRESET or EPIPE */
	SB_CLOSE_ERROR,    /* any other error */
	SB_CLOSE_SHUTDOWN, /* the worker stopped (shutdown_timeout) */
	SB_CLOSE_PROXY,    /* a PROXY header's closes (issue 12) */
	SB_CLOSE_N
};

/* Which per-IP limit refused a connection (limit="..."). */
enum sb_refuse {
	SB_REFUSE_CONNS, /* max_connections_per_ip */
	SB_REFUSE_RATE,  /* max_connection_rate_per_ip */
	SB_REFUSE_N
};

/*
 * One slot.  The first part describes the process in it and is reset by
 * the master before it forks into the slot (scoreboard_begin_process).
 * The counters after `restarts` are cumulative over every process the
 * slot has had, never reset: the sum over the slots is monotonic for the
 * life of the master, as Prometheus expects.  base_* hold the counters'
 * values when the current process started, so that its own share (the
 * SIGUSR1 table's per-process columns) is the difference (sb_delta).
 */
struct sb_slot {
	int64_t pid;
	uint64_t generation;
	uint64_t state;
	uint64_t started_ms;   /* monotonic ms at fork */
	uint64_t heartbeat_ms; /* monotonic ms of the last loop turn */
	uint64_t conns_open;
	uint64_t sandbox;  /* enum sandbox_state, once the worker set it up */
	uint64_t base_served, base_in, base_out, base_proxied,
	    base_proxy_closed;
	/* ---- not reset at fork ---- */
	uint64_t restarts; /* processes this slot has had, minus one */
	uint64_t conns_served; /* admitted (not refused) connections */
	uint64_t bytes_in;     /* counted as each connection closes */
	uint64_t bytes_out;
	uint64_t proxied;      /* PROXY headers accepted */
	uint64_t proxy_closed; /* closed on a proxied listener: untrusted,
				* bad, slow or missing header */
	uint64_t accepted;     /* every accept(), refused ones too */
	uint64_t closed[SB_CLOSE_N];   /* by enum sb_close */
	uint64_t refused[SB_REFUSE_N]; /* by enum sb_refuse */
	/* The last client a PROXY header named (sb_client_store). */
	uint64_t client_seq;   /* odd while being written */
	uint64_t client[5];    /* a struct sb_client */
	uint64_t pad[29];      /* one entry per 512 bytes: no false sharing */
};

/*
 * A client behind a balancer, compactly: the address the header named
 * and the balancer's own (AF_UNSPEC: none).  Ports in network order.
 */
struct sb_client {
	uint8_t family, via_family;
	uint16_t port, via_port;
	uint8_t addr[16], via_addr[16];
	uint8_t pad[2];
};

enum sb_restart {
	SB_RESTART_EXIT,    /* the worker exited */
	SB_RESTART_SIGNAL,  /* killed by a signal */
	SB_RESTART_HUNG,    /* killed after its heartbeat went stale */
	SB_RESTART_BACKOFF, /* died early: replaced after a back-off */
	SB_RESTART_N
};

enum sb_probe { SB_PROBE_OK, SB_PROBE_FAILED, SB_PROBE_SKIPPED, SB_PROBE_N };
enum sb_reload { SB_RELOAD_SUCCESS, SB_RELOAD_FAILURE, SB_RELOAD_N };

/*
 * Shared too, written by the master only: how far into slots[] anything
 * was ever forked, and the master's own counters and gauges for /metrics.
 */
struct sb_header {
	uint64_t slots_used; /* highest slot index used, plus one */
	uint64_t start_time_s; /* the master's start, unix seconds */
	uint64_t generation;   /* the serving one */
	uint64_t target;       /* its workers wanted */
	uint64_t model;        /* its enum conf_model */
	uint64_t restarts[SB_RESTART_N];
	uint64_t reloads[SB_RELOAD_N];
	uint64_t last_reload_ok;     /* 1 before any reload */
	uint64_t last_reload_time_s; /* unix seconds; 0 before any */
	uint64_t probes[SB_PROBE_N];
	/*
	 * What the earlier images of this master counted before an in-place
	 * upgrade (SIGUSR2, upgrade.h) handed it over: added to the slots'
	 * sums, so that the counters stay monotonic across it.
	 */
	struct sb_carry {
		uint64_t accepted, closed[SB_CLOSE_N], refused[SB_REFUSE_N];
		uint64_t bytes_in, bytes_out, proxied;
	} carry;
};

struct scoreboard {
	unsigned nslots;
	struct sb_header *hdr;
	struct sb_slot *slots;
};

/* The master, before forking into slot. */
void scoreboard_use_slot(struct scoreboard *sb, unsigned slot);
/*
 * The master, before forking into slot: reset the per-process part and
 * remember where the cumulative counters stand (the base_* fields).
 */
void scoreboard_begin_process(struct scoreboard *sb, unsigned slot);

int scoreboard_create(struct scoreboard *sb, unsigned nslots);
void scoreboard_destroy(struct scoreboard *sb);

static inline void
sb_store(uint64_t *field, uint64_t v)
{
	__atomic_store_n(field, v, __ATOMIC_RELAXED);
}

/*
 * For the models where several threads or processes of one worker count
 * into its entry (model.h): an atomic add, so none is lost.  A negative
 * delta wraps as unsigned arithmetic does, which is what a decrement is.
 */
static inline void
sb_add(uint64_t *field, int64_t delta)
{
	__atomic_fetch_add(field, (uint64_t)delta, __ATOMIC_RELAXED);
}

static inline uint64_t
sb_load(const uint64_t *field)
{
	return __atomic_load_n(field, __ATOMIC_RELAXED);
}

/* The current process's share of a cumulative counter. */
static inline uint64_t
sb_delta(const uint64_t *field, const uint64_t *base)
{
	return sb_load(field) - sb_load(base);
}

/*
 * What a worker counts locally and adds to its slot now and then
 * (sb_publish adds what changed since the last time, atomically, so a
 * slot's other writers, such as the children of a process-per-connection
 * worker, never lose an update).
 */
struct sb_counts {
	uint64_t accepted, served, bytes_in, bytes_out;
	uint64_t closed[SB_CLOSE_N];
	uint64_t refused[SB_REFUSE_N];
};
void sb_publish(struct sb_slot *s, const struct sb_counts *now,
    struct sb_counts *published);

/*
 * Pure: the close reason for a close path's word (worker.c's and
 * serve.c's "client closed", "idle timeout", "max_connection_time",
 * "refused", "shutdown", "bad PROXY header", "PROXY header timeout",
 * "failed") and the connection's errno (ECONNRESET, EPIPE: reset).
 * Anything else is an error.
 */
enum sb_close sb_close_reason(const char *how, int err);
/* "client", "idle_timeout", ...: the label values; NULL past the end. */
const char *sb_close_name(unsigned reason);
const char *sb_refuse_name(unsigned limit);
const char *sb_restart_name(unsigned cause);
const char *sb_probe_name(unsigned result);
const char *sb_reload_name(unsigned result);

/*
 * Pure: why a worker is being replaced.  hung: the master had aborted
 * it for a stale heartbeat; signaled: WIFSIGNALED; later: its
 * replacement waits a back-off (it died early).  Hung wins, then the
 * back-off, then the way it ended.
 */
enum sb_restart sb_restart_cause(int hung, int signaled, int later);

/* The master's counters (the header has one writer: the master). */
static inline void
sb_count(uint64_t *field)
{
	sb_store(field, sb_load(field) + 1);
}
void sb_count_reload(struct scoreboard *sb, int ok, uint64_t now_s);

/*
 * The last client, through a sequence lock: the worker stores (one writer
 * at a time: the thread models hold their lock), the master loads, and a
 * load that overlapped a store tries again (1), or gives up (0: none).
 */
void sb_client_store(struct sb_slot *s, const struct sb_client *c);
int sb_client_load(const struct sb_slot *s, struct sb_client *c);

/*
 * Totals over the live slots, for the STATUS= line and the log;
 * conns_served is the live processes' own (since each started).
 */
struct sb_totals {
	unsigned alive, ready;
	uint64_t conns_open, conns_served, restarts;
};

void scoreboard_totals(const struct scoreboard *sb, struct sb_totals *t);

#endif
