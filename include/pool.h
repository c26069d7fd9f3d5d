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

/*
 * The master's table of slots.  A respawn goes into the same slot.  Each
 * slot is in exactly one state, and a state that waits for something has
 * one deadline: a respawn due, SIGKILL due after a drain or an abort.  So
 * every "once" (the kill after a drain overran, the kill after SIGABRT)
 * is a state change, never a timestamp doubling as a flag.
 */
enum pool_slot_state {
	POOL_SLOT_UNUSED,   /* no process, nothing due */
	POOL_SLOT_WAITING,  /* no process; (re)spawn due at deadline_ms */
	POOL_SLOT_STARTING, /* forked, has not said it is accepting */
	POOL_SLOT_READY,    /* accepting */
	POOL_SLOT_DRAINING, /* sent SIGTERM; SIGKILL at deadline_ms */
	POOL_SLOT_ABORTING, /* hung: sent SIGABRT; SIGKILL at deadline_ms */
	POOL_SLOT_KILLED,   /* sent SIGKILL; waiting to reap it */
};

struct pool_slot {
	enum pool_slot_state state;
	pid_t pid;
	uint64_t generation; /* of the configuration it was started with */
	uint64_t started_ms;
	uint64_t deadline_ms; /* WAITING, DRAINING, ABORTING: see above */
	uint64_t backoff_ms;
	uint64_t restarts;
	int retired; /* told to drain: never to be respawned */
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
/* The slot index of live process pid, or -1. */
int pool_find(const struct pool *p, pid_t pid);
/* Does the slot's state have a process (forked and not reaped)? */
int pool_slot_live(enum pool_slot_state s);
/* How many slots have a live process. */
unsigned pool_running(const struct pool *p);
/* How many slots are in state s. */
unsigned pool_count_state(const struct pool *p, enum pool_slot_state s);

/*
 * A generation's workers: *ready of them accepting, *live those that
 * serve or will (starting, ready, or waiting to be respawned); neither
 * counts draining, aborted or killed workers.
 */
void pool_count_gen(const struct pool *p, uint64_t generation,
    unsigned *ready, unsigned *live);

/*
 * How many more workers fit in a budget of slots: budget minus the slots
 * in use (a process, or a respawn due), not counting workers already
 * killed (their slots are on their way back).  0 if none.  Pure.
 */
unsigned pool_room(const struct pool *p, unsigned budget);

/* The timer decisions, for one slot at time now. */
enum pool_timer_action {
	POOL_TIMER_NOTHING,
	POOL_TIMER_SPAWN, /* a WAITING slot's respawn is due */
	POOL_TIMER_ABORT, /* no heartbeat for hang_ms: SIGABRT */
	POOL_TIMER_KILL,  /* a drain or an abort overran: SIGKILL */
};

/*
 * What to do for slot s now, given its last heartbeat and the hang limit
 * (worker_timeout, 0 = never); *wake is lowered to when this slot next
 * needs a look (left alone if never).  The deadlines of WAITING, DRAINING
 * and ABORTING are in the slot.  Pure.
 */
enum pool_timer_action pool_slot_timer(const struct pool_slot *s,
    uint64_t heartbeat_ms, uint64_t hang_ms, uint64_t now_ms,
    uint64_t *wake);

/*
 * The worker to kill at once so that a new generation gets a slot: of
 * the draining workers of the oldest generation, the one with the fewest
 * open connections (open[i] for slot i), the lowest slot on a tie.  -1
 * if none drains.  Pure.
 */
int pool_victim(const struct pool *p, const uint64_t *open);

#endif
