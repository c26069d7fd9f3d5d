/*
 * pool: the worker table and the restart policy.
 *
 * pool_on_exit() is the whole restart policy and is pure: given the slot's
 * history, the global budget, how the worker ended and the time, it says
 * what to do.  It makes no system call; the master acts on its answer.
 */
#ifndef ECHOD_POOL_H
#define ECHOD_POOL_H

#include <stdint.h>
#include <sys/types.h>

#define POOL_BUDGET_MAX 64

struct pool_policy {
	uint64_t min_uptime_ms;    /* a worker younger than this ... */
	uint64_t backoff_min_ms;   /* ... that served nobody died early */
	uint64_t backoff_max_ms;
	unsigned budget;           /* more than this many early deaths ... */
	uint64_t budget_window_ms; /* ... within this window: give up */
};

/* The defaults: 1 s, 100 ms doubling to 30 s, more than 20 in 60 s. */
extern const struct pool_policy pool_default_policy;

/* Early deaths of the whole pool, newest last (a ring). */
struct pool_budget {
	uint64_t at_ms[POOL_BUDGET_MAX];
	unsigned n, next;
};

struct pool_exit {
	uint64_t uptime_ms;
	uint64_t served; /* connections accepted */
	int fatal;       /* exited with ECHOD_EXIT_WORKER_FATAL */
};

enum pool_action {
	POOL_RESPAWN_NOW,
	POOL_RESPAWN_LATER, /* after *delay_ms */
	POOL_LEAVE_EMPTY,   /* fatal start-up error: trying again is futile */
	POOL_GIVE_UP,       /* the crash-loop budget is spent */
};

/*
 * Decide what follows a worker's death.  *backoff_ms is the slot's
 * current back-off (0 when the last worker proved itself) and is updated;
 * rnd is any random value, for jitter.
 */
enum pool_action pool_on_exit(const struct pool_policy *p, uint64_t *backoff_ms,
    struct pool_budget *b, const struct pool_exit *e, uint64_t now_ms,
    uint32_t rnd, uint64_t *delay_ms);

/* The master's table of slots.  A respawn goes into the same slot. */
enum pool_slot_state {
	POOL_SLOT_UNUSED, /* beyond the pool's size */
	POOL_SLOT_RUNNING,
	POOL_SLOT_WAITING, /* dead, respawn due at respawn_at_ms */
	POOL_SLOT_EMPTY,   /* dead, not to be respawned */
};

struct pool_slot {
	enum pool_slot_state state;
	pid_t pid;
	uint64_t generation; /* of the configuration it was started with */
	uint64_t started_ms;
	uint64_t respawn_at_ms;
	uint64_t backoff_ms;
	uint64_t restarts;
	uint64_t term_at_ms;  /* told to drain (0 = not): no respawn */
	uint64_t abort_at_ms; /* sent SIGABRT as hung (0 = not) */
	int ready;            /* the worker said it is accepting */
};

struct pool {
	unsigned nslots;
	struct pool_slot *slots;
	struct pool_budget budget;
	struct pool_policy policy;
};

int pool_init(struct pool *p, unsigned nslots);
void pool_free(struct pool *p);
/* A slot with no process and no respawn due, or -1. */
int pool_free_slot(const struct pool *p);
/* The slot index running pid, or -1. */
int pool_find(const struct pool *p, pid_t pid);
/* How many slots have a live process. */
unsigned pool_running(const struct pool *p);
/* The earliest respawn_at_ms of a waiting slot, or UINT64_MAX. */
uint64_t pool_next_respawn(const struct pool *p);

#endif
