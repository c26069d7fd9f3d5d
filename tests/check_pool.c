/*
 * check_pool: the restart policy, pool_on_exit(), as tables and sequences,
 * the slot timers (pool_slot_timer: respawn, abort, kill, and when to look
 * again), the choice of a draining worker to free a slot (pool_victim),
 * and the small helpers over the slot table.
 *
 * The policy is pure, so every test feeds it explicit times and random
 * values: no clock, no sleep, no fork.
 */
#include <check.h>
#include <stdint.h>
#include <string.h>

#include "pool.h"
#include "suites.h"

#define T0 1000000ULL /* an arbitrary "now" far from zero */

static const char *
action_name(enum pool_action a)
{
	switch (a) {
	case POOL_RESPAWN_NOW:
		return "RESPAWN_NOW";
	case POOL_RESPAWN_LATER:
		return "RESPAWN_LATER";
	case POOL_LEAVE_EMPTY:
		return "LEAVE_EMPTY";
	case POOL_GIVE_UP:
		return "GIVE_UP";
	}
	return "?";
}

/* Evaluates got once: it is usually a call that changes state. */
#define ck_assert_action(got, want)                                        \
	do {                                                               \
		enum pool_action got_ = (got), want_ = (want);             \
		ck_assert_msg(got_ == want_, "action %s, want %s",         \
		    action_name(got_), action_name(want_));                \
	} while (0)

/* An early death of one slot: young, idle, not fatal. */
static enum pool_action
early(uint64_t *backoff, struct pool_budget *b, uint64_t now, uint32_t rnd,
    uint64_t *delay)
{
	struct pool_exit e = { .uptime_ms = 10, .served = 0, .fatal = 0 };

	return pool_on_exit(&pool_default_policy, backoff, b, &e, now, rnd,
	    delay);
}

/* One death, from a fresh budget. */
struct exit_case {
	const char *name;
	uint64_t backoff_in;
	uint64_t uptime_ms;
	uint64_t served;
	int fatal;
	uint32_t rnd;
	enum pool_action want;
	uint64_t backoff_out;
	uint64_t delay;
	unsigned recorded; /* early deaths in the budget afterwards */
};

static const struct exit_case exits[] = {
	{ "fatal, young", 0, 0, 0, 1, 0, POOL_LEAVE_EMPTY, 0, 0, 0 },
	{ "fatal beats lived and served", 800, 5000, 7, 1, 0,
	    POOL_LEAVE_EMPTY, 800, 0, 0 },
	{ "lived exactly min_uptime", 6400, 1000, 0, 0, 0, POOL_RESPAWN_NOW,
	    0, 0, 0 },
	{ "lived long", 0, 86400000, 0, 0, 0, POOL_RESPAWN_NOW, 0, 0, 0 },
	{ "young but served, at the cap", 30000, 0, 1, 0, 0,
	    POOL_RESPAWN_NOW, 0, 0, 0 },
	{ "young but served", 1600, 999, 100, 0, 0, POOL_RESPAWN_NOW, 0, 0,
	    0 },
	{ "first early death, rnd 0", 0, 999, 0, 0, 0, POOL_RESPAWN_LATER,
	    100, 75, 1 },
	{ "first early death, rnd = spread", 0, 0, 0, 0, 50,
	    POOL_RESPAWN_LATER, 100, 125, 1 },
	{ "first early death, rnd wraps", 0, 0, 0, 0, 51,
	    POOL_RESPAWN_LATER, 100, 75, 1 },
	{ "second early death", 100, 0, 0, 0, 0, POOL_RESPAWN_LATER, 200,
	    150, 1 },
	{ "doubling below half the cap", 12800, 0, 0, 0, 0,
	    POOL_RESPAWN_LATER, 25600, 19200, 1 },
	{ "just below half the cap", 14999, 0, 0, 0, 0, POOL_RESPAWN_LATER,
	    29998, 22499, 1 },
	{ "half the cap reaches the cap", 15000, 0, 0, 0, 0,
	    POOL_RESPAWN_LATER, 30000, 22500, 1 },
	{ "doubling would pass the cap", 25600, 0, 0, 0, 0,
	    POOL_RESPAWN_LATER, 30000, 22500, 1 },
	{ "delay capped at 30 s", 25600, 0, 0, 0, 15000, POOL_RESPAWN_LATER,
	    30000, 30000, 1 },
	{ "at the cap, early again", 30000, 0, 0, 0, 0, POOL_GIVE_UP, 30000,
	    0, 1 },
	{ "past the cap, early again", 90000, 0, 0, 0, 0, POOL_GIVE_UP,
	    90000, 0, 1 },
};

START_TEST(exit_table)
{
	const struct exit_case *t = &exits[_i];
	struct pool_exit e = { t->uptime_ms, t->served, t->fatal };
	struct pool_budget b;
	uint64_t backoff = t->backoff_in, delay = 12345;
	enum pool_action a;

	memset(&b, 0, sizeof(b));
	a = pool_on_exit(&pool_default_policy, &backoff, &b, &e, T0, t->rnd,
	    &delay);
	ck_assert_msg(a == t->want, "%s: action %s, want %s", t->name,
	    action_name(a), action_name(t->want));
	ck_assert_msg(backoff == t->backoff_out, "%s: backoff %llu, want %llu",
	    t->name, (unsigned long long)backoff,
	    (unsigned long long)t->backoff_out);
	ck_assert_msg(delay == t->delay, "%s: delay %llu, want %llu", t->name,
	    (unsigned long long)delay, (unsigned long long)t->delay);
	ck_assert_msg(b.n == t->recorded, "%s: %u deaths recorded, want %u",
	    t->name, b.n, t->recorded);
}
END_TEST

static const uint64_t ladder[] = { 100, 200, 400, 800, 1600, 3200, 6400,
	12800, 25600, 30000 };
#define NLADDER (sizeof(ladder) / sizeof(ladder[0]))

/*
 * One slot dying early over and over: 100 ms doubling to the 30 s cap,
 * then one more early death at the cap gives up.
 */
START_TEST(ladder_to_give_up)
{
	struct pool_budget b;
	uint64_t backoff = 0, delay, now = T0;
	unsigned i;

	memset(&b, 0, sizeof(b));
	for (i = 0; i < NLADDER; i++) {
		ck_assert_action(early(&backoff, &b, now, 0, &delay),
		    POOL_RESPAWN_LATER);
		ck_assert_uint_eq(backoff, ladder[i]);
		ck_assert_uint_eq(delay, ladder[i] - ladder[i] / 4);
		now += delay + 10; /* respawned on time, died at 10 ms */
	}
	ck_assert_action(early(&backoff, &b, now, 0, &delay), POOL_GIVE_UP);
	ck_assert_uint_eq(delay, 0);
	/* The ladder, not the budget, gave up: ten deaths in the window. */
	ck_assert_uint_le(b.n, pool_default_policy.budget);
}
END_TEST

/* Delays stay within +-25% of the back-off (and under the cap). */
START_TEST(jitter_bounds)
{
	static const uint32_t rnds[] = { 0, UINT32_MAX, 1, 2, 49, 50, 51,
		12345, 0x7fffffff, 0x80000000, 0xdeadbeef, 2147483646 };
	struct pool_budget b;
	uint64_t backoff, delay, lo, hi, prev, min_seen, max_seen;
	unsigned i, j;

	for (i = 0; i < NLADDER; i++) {
		prev = i == 0 ? 0 : ladder[i - 1];
		lo = ladder[i] - ladder[i] / 4;
		hi = ladder[i] + ladder[i] / 4;
		if (hi > pool_default_policy.backoff_max_ms)
			hi = pool_default_policy.backoff_max_ms;
		min_seen = UINT64_MAX;
		max_seen = 0;
		for (j = 0; j < sizeof(rnds) / sizeof(rnds[0]) + 1; j++) {
			/* The last round uses rnd = spread: the top. */
			uint32_t rnd = j < sizeof(rnds) / sizeof(rnds[0]) ?
			    rnds[j] : (uint32_t)(ladder[i] / 2);

			memset(&b, 0, sizeof(b));
			backoff = prev;
			ck_assert_action(early(&backoff, &b, T0, rnd, &delay),
			    POOL_RESPAWN_LATER);
			ck_assert_uint_eq(backoff, ladder[i]);
			ck_assert_msg(delay >= lo && delay <= hi,
			    "backoff %llu rnd %u: delay %llu outside "
			    "[%llu, %llu]", (unsigned long long)ladder[i], rnd,
			    (unsigned long long)delay, (unsigned long long)lo,
			    (unsigned long long)hi);
			if (delay < min_seen)
				min_seen = delay;
			if (delay > max_seen)
				max_seen = delay;
		}
		/* Both ends are reached: the jitter is really there. */
		ck_assert_uint_eq(min_seen, lo);
		ck_assert_uint_eq(max_seen, hi);
	}
}
END_TEST

/* A worker that proves itself resets its slot's ladder, even at the cap. */
START_TEST(proven_worker_resets_ladder)
{
	struct pool_exit lived = { .uptime_ms = 1000 };
	struct pool_exit served = { .uptime_ms = 1, .served = 1 };
	struct pool_budget b;
	uint64_t backoff = 0, delay, now = T0;
	unsigned i;

	memset(&b, 0, sizeof(b));
	for (i = 0; i < 3; i++)
		ck_assert_action(early(&backoff, &b, now += 1000, 0, &delay),
		    POOL_RESPAWN_LATER);
	ck_assert_uint_eq(backoff, 400);
	ck_assert_action(pool_on_exit(&pool_default_policy, &backoff, &b,
	    &lived, now += 2000, 0, &delay), POOL_RESPAWN_NOW);
	ck_assert_uint_eq(backoff, 0);
	ck_assert_uint_eq(delay, 0);
	ck_assert_action(early(&backoff, &b, now += 1000, 0, &delay),
	    POOL_RESPAWN_LATER);
	ck_assert_uint_eq(backoff, 100);
	ck_assert_uint_eq(delay, 75);

	/* Climb to the cap (spaced out, so the budget stays out of it). */
	now += 3600000;
	for (i = 1; i < NLADDER; i++) {
		ck_assert_action(early(&backoff, &b, now += 60000, 0, &delay),
		    POOL_RESPAWN_LATER);
		ck_assert_uint_eq(backoff, ladder[i]);
	}
	ck_assert_action(pool_on_exit(&pool_default_policy, &backoff, &b,
	    &served, now += 60000, 0, &delay), POOL_RESPAWN_NOW);
	ck_assert_uint_eq(backoff, 0);
	ck_assert_action(early(&backoff, &b, now += 60000, 0, &delay),
	    POOL_RESPAWN_LATER);
	ck_assert_uint_eq(backoff, 100);
}
END_TEST

/* More than 20 early deaths in 60 s across the pool: give up. */
START_TEST(budget_burst_across_slots)
{
	uint64_t backoff[21] = { 0 }, delay;
	struct pool_budget b;
	unsigned i;

	memset(&b, 0, sizeof(b));
	for (i = 0; i < 20; i++)
		ck_assert_action(early(&backoff[i], &b, T0, 0, &delay),
		    POOL_RESPAWN_LATER);
	ck_assert_action(early(&backoff[20], &b, T0, 0, &delay),
	    POOL_GIVE_UP);
}
END_TEST

/* The window is 60 s: a death exactly 60 s old no longer counts. */
START_TEST(budget_window_edge)
{
	uint64_t backoff[21], delay;
	struct pool_budget b;
	unsigned i, late;

	for (late = 0; late < 2; late++) {
		memset(&b, 0, sizeof(b));
		memset(backoff, 0, sizeof(backoff));
		for (i = 0; i < 20; i++)
			ck_assert_action(early(&backoff[i], &b, T0, 0, &delay),
			    POOL_RESPAWN_LATER);
		ck_assert_action(early(&backoff[20], &b,
		    T0 + 59999 + late, 0, &delay),
		    late ? POOL_RESPAWN_LATER : POOL_GIVE_UP);
	}
}
END_TEST

/* 21 deaths 2999 ms apart fit in 60 s; 3000 ms apart they never do. */
START_TEST(budget_spread)
{
	uint64_t backoff[100] = { 0 }, delay;
	struct pool_budget b;
	unsigned i;

	memset(&b, 0, sizeof(b));
	for (i = 0; i < 100; i++)
		ck_assert_msg(early(&backoff[i], &b, T0 + 3000ULL * i, 0,
		    &delay) == POOL_RESPAWN_LATER, "death %u gave up", i);

	memset(&b, 0, sizeof(b));
	memset(backoff, 0, sizeof(backoff));
	for (i = 0; i < 20; i++)
		ck_assert_action(early(&backoff[i], &b, T0 + 2999ULL * i, 0,
		    &delay), POOL_RESPAWN_LATER);
	ck_assert_action(early(&backoff[20], &b, T0 + 2999ULL * 20, 0,
	    &delay), POOL_GIVE_UP);
}
END_TEST

/* Proven and fatal deaths do not spend the budget. */
START_TEST(budget_counts_only_early_deaths)
{
	struct pool_exit lived = { .uptime_ms = 5000 };
	struct pool_exit served = { .uptime_ms = 5, .served = 3 };
	struct pool_exit fatal = { .uptime_ms = 5, .fatal = 1 };
	uint64_t backoff[22] = { 0 }, other = 0, delay;
	struct pool_budget b;
	unsigned i;

	memset(&b, 0, sizeof(b));
	for (i = 0; i < 19; i++)
		ck_assert_action(early(&backoff[i], &b, T0, 0, &delay),
		    POOL_RESPAWN_LATER);
	for (i = 0; i < 10; i++) {
		ck_assert_action(pool_on_exit(&pool_default_policy, &other, &b,
		    &lived, T0, 0, &delay), POOL_RESPAWN_NOW);
		ck_assert_action(pool_on_exit(&pool_default_policy, &other, &b,
		    &served, T0, 0, &delay), POOL_RESPAWN_NOW);
		ck_assert_action(pool_on_exit(&pool_default_policy, &other, &b,
		    &fatal, T0, 0, &delay), POOL_LEAVE_EMPTY);
	}
	ck_assert_uint_eq(b.n, 19);
	ck_assert_action(early(&backoff[19], &b, T0, 0, &delay),
	    POOL_RESPAWN_LATER);
	ck_assert_action(early(&backoff[20], &b, T0, 0, &delay),
	    POOL_GIVE_UP);
}
END_TEST

/*
 * After the ring of recorded deaths has wrapped, old entries still age
 * out and new ones still count: 100 sparse deaths, then a burst.
 */
START_TEST(budget_after_ring_wraps)
{
	uint64_t backoff, delay, now = T0;
	struct pool_budget b;
	unsigned i;

	memset(&b, 0, sizeof(b));
	for (i = 0; i < 100; i++) {
		backoff = 0;
		ck_assert_action(early(&backoff, &b, now += 10000, 0, &delay),
		    POOL_RESPAWN_LATER);
	}
	ck_assert_uint_eq(b.n, POOL_BUDGET_MAX);
	/* Five of the sparse deaths (10..50 s ago) are still in the window. */
	now += 10000;
	for (i = 1; i <= 15; i++) {
		backoff = 0;
		ck_assert_msg(early(&backoff, &b, now, 0, &delay) ==
		    POOL_RESPAWN_LATER, "burst death %u gave up", i);
	}
	backoff = 0;
	ck_assert_action(early(&backoff, &b, now, 0, &delay), POOL_GIVE_UP);
}
END_TEST

/* The policy is a parameter: a small one, with an uneven cap. */
START_TEST(custom_policy)
{
	const struct pool_policy p = {
		.min_uptime_ms = 50,
		.backoff_min_ms = 30,
		.backoff_max_ms = 100,
		.budget = 3,
		.budget_window_ms = 1000,
	};
	struct pool_exit young = { .uptime_ms = 49 };
	struct pool_exit lived = { .uptime_ms = 50 };
	static const uint64_t steps[] = { 30, 60, 100 };
	uint64_t backoff = 0, b2 = 0, delay, now = T0;
	struct pool_budget b;
	unsigned i;

	memset(&b, 0, sizeof(b));
	for (i = 0; i < 3; i++) {
		ck_assert_action(pool_on_exit(&p, &backoff, &b, &young,
		    now += 2000, 0, &delay), POOL_RESPAWN_LATER);
		ck_assert_uint_eq(backoff, steps[i]);
		ck_assert_uint_eq(delay, steps[i] - steps[i] / 4);
	}
	ck_assert_action(pool_on_exit(&p, &backoff, &b, &young, now += 2000,
	    0, &delay), POOL_GIVE_UP);
	ck_assert_action(pool_on_exit(&p, &backoff, &b, &lived, now += 2000,
	    0, &delay), POOL_RESPAWN_NOW);
	ck_assert_uint_eq(backoff, 0);

	/* Budget 3 in 1 s: the fourth early death within 999 ms gives up. */
	memset(&b, 0, sizeof(b));
	now += 2000;
	for (i = 0; i < 3; i++) {
		b2 = 0;
		ck_assert_action(pool_on_exit(&p, &b2, &b, &young, now + 333 * i,
		    0, &delay), POOL_RESPAWN_LATER);
	}
	b2 = 0;
	ck_assert_action(pool_on_exit(&p, &b2, &b, &young, now + 999, 0,
	    &delay), POOL_GIVE_UP);
}
END_TEST

START_TEST(table_helpers)
{
	struct pool p;
	unsigned i, ready, live;

	ck_assert_int_eq(pool_init(&p, 4), 0);
	ck_assert_uint_eq(p.nslots, 4);
	ck_assert_ptr_nonnull(p.slots);
	ck_assert_uint_eq(p.budget.n, 0);
	ck_assert_uint_eq(p.budget.next, 0);
	ck_assert_uint_eq(p.policy.min_uptime_ms, 1000);
	ck_assert_uint_eq(p.policy.backoff_min_ms, 100);
	ck_assert_uint_eq(p.policy.backoff_max_ms, 30000);
	ck_assert_uint_eq(p.policy.budget, 20);
	ck_assert_uint_eq(p.policy.budget_window_ms, 60000);
	for (i = 0; i < p.nslots; i++) {
		ck_assert_int_eq(p.slots[i].state, POOL_SLOT_UNUSED);
		ck_assert_int_eq(p.slots[i].pid, 0);
	}
	ck_assert_uint_eq(pool_running(&p), 0);
	ck_assert_int_eq(pool_find(&p, 0), -1);
	ck_assert_int_eq(pool_free_slot(&p), 0);

	p.slots[0].state = POOL_SLOT_READY;
	p.slots[0].pid = 100;
	p.slots[1].state = POOL_SLOT_WAITING;
	p.slots[1].pid = 101; /* the dead worker's pid, left behind */
	p.slots[2].state = POOL_SLOT_DRAINING;
	p.slots[2].pid = 102;
	p.slots[3].state = POOL_SLOT_KILLED;
	p.slots[3].pid = 103;

	ck_assert_int_eq(pool_find(&p, 100), 0);
	ck_assert_int_eq(pool_find(&p, 102), 2);
	ck_assert_int_eq(pool_find(&p, 103), 3); /* killed, not yet reaped */
	ck_assert_int_eq(pool_find(&p, 101), -1); /* no process */
	ck_assert_int_eq(pool_find(&p, 999), -1);
	ck_assert_uint_eq(pool_running(&p), 3);
	ck_assert_int_eq(pool_free_slot(&p), -1); /* a waiting slot is taken */
	ck_assert_uint_eq(pool_count_state(&p, POOL_SLOT_KILLED), 1);
	ck_assert_uint_eq(pool_count_state(&p, POOL_SLOT_UNUSED), 0);

	/* A generation counts its ready and its coming workers only. */
	for (i = 0; i < p.nslots; i++)
		p.slots[i].generation = 2;
	pool_count_gen(&p, 2, &ready, &live);
	ck_assert_uint_eq(ready, 1);
	ck_assert_uint_eq(live, 2); /* ready + waiting */
	pool_count_gen(&p, 3, &ready, &live);
	ck_assert_uint_eq(ready, 0);
	ck_assert_uint_eq(live, 0);

	/* Room in a budget: killed ones are on their way out. */
	ck_assert_uint_eq(pool_room(&p, 6), 3); /* ready, waiting, draining */
	ck_assert_uint_eq(pool_room(&p, 3), 0);
	ck_assert_uint_eq(pool_room(&p, 2), 0);

	p.slots[3].state = POOL_SLOT_UNUSED;
	ck_assert_int_eq(pool_free_slot(&p), 3);
	ck_assert_uint_eq(pool_room(&p, 4), 1);
	ck_assert_int_eq(pool_find(&p, 103), -1);

	pool_free(&p);
	ck_assert_ptr_null(p.slots);
	ck_assert_uint_eq(p.nslots, 0);
	ck_assert_int_eq(pool_find(&p, 100), -1);
	ck_assert_uint_eq(pool_running(&p), 0);
	pool_free(&p); /* twice is harmless */
}
END_TEST

/* ---- the slot timers: one slot, one moment, one answer ---- */

static const char *
timer_name(enum pool_timer_action a)
{
	static const char *const n[] = { "NOTHING", "SPAWN", "ABORT", "KILL" };

	return (unsigned)a < 4 ? n[a] : "?";
}

struct timer_case {
	const char *name;
	enum pool_slot_state state;
	uint64_t started, deadline, heartbeat, hang, now;
	enum pool_timer_action want;
	uint64_t wake; /* UINT64_MAX: no look needed */
};

#define NEVER UINT64_MAX
static const struct timer_case timer_cases[] = {
	{ "unused: nothing, ever", POOL_SLOT_UNUSED, 0, 0, 0, 30000, T0,
	    POOL_TIMER_NOTHING, NEVER },
	{ "killed: nothing more, ever (kill once)", POOL_SLOT_KILLED, 0,
	    T0 - 5000, 0, 30000, T0, POOL_TIMER_NOTHING, NEVER },
	{ "waiting, not yet due", POOL_SLOT_WAITING, 0, T0 + 100, 0, 30000,
	    T0, POOL_TIMER_NOTHING, T0 + 100 },
	{ "waiting, due", POOL_SLOT_WAITING, 0, T0, 0, 30000, T0,
	    POOL_TIMER_SPAWN, NEVER },
	{ "waiting, due long ago (respawn now = 0)", POOL_SLOT_WAITING, 0, 0,
	    0, 30000, T0, POOL_TIMER_SPAWN, NEVER },
	{ "ready, heartbeat fresh", POOL_SLOT_READY, T0 - 60000, 0,
	    T0 - 1000, 30000, T0, POOL_TIMER_NOTHING, T0 + 29000 },
	{ "ready, heartbeat exactly at the limit", POOL_SLOT_READY,
	    T0 - 60000, 0, T0 - 30000, 30000, T0, POOL_TIMER_ABORT, NEVER },
	{ "starting, no heartbeat yet: counts from the fork",
	    POOL_SLOT_STARTING, T0 - 1000, 0, 0, 30000, T0,
	    POOL_TIMER_NOTHING, T0 + 29000 },
	{ "starting, hung since the fork", POOL_SLOT_STARTING, T0 - 30001, 0,
	    0, 30000, T0, POOL_TIMER_ABORT, NEVER },
	{ "a heartbeat from the slot's last worker is ignored",
	    POOL_SLOT_READY, T0 - 10, 0, T0 - 40000, 30000, T0,
	    POOL_TIMER_NOTHING, T0 - 10 + 30000 },
	{ "worker_timeout 0: never hung", POOL_SLOT_READY, 0, 0, 0, 0, T0,
	    POOL_TIMER_NOTHING, NEVER },
	{ "heartbeat from the future (clock skew): no abort",
	    POOL_SLOT_READY, T0 - 10, 0, T0 + 50, 30000, T0,
	    POOL_TIMER_NOTHING, T0 + 50 + 30000 },
	{ "draining, before its deadline", POOL_SLOT_DRAINING, T0 - 5000,
	    T0 + 9000, T0 - 1, 30000, T0, POOL_TIMER_NOTHING, T0 + 9000 },
	{ "draining, deadline reached: kill", POOL_SLOT_DRAINING, T0 - 5000,
	    T0, T0 - 1, 30000, T0, POOL_TIMER_KILL, NEVER },
	{ "draining and hung before its deadline: abort",
	    POOL_SLOT_DRAINING, T0 - 50000, T0 + 9000, T0 - 31000, 30000, T0,
	    POOL_TIMER_ABORT, T0 + 9000 },
	{ "aborting, grace not over", POOL_SLOT_ABORTING, T0 - 50000,
	    T0 + 1500, 0, 30000, T0, POOL_TIMER_NOTHING, T0 + 1500 },
	{ "aborting, grace over: kill", POOL_SLOT_ABORTING, T0 - 50000, T0,
	    0, 30000, T0, POOL_TIMER_KILL, NEVER },
	{ "aborting is not aborted again", POOL_SLOT_ABORTING, T0 - 50000,
	    T0 + 2000, 0, 30000, T0, POOL_TIMER_NOTHING, T0 + 2000 },
};

START_TEST(timer_table)
{
	const struct timer_case *c = &timer_cases[_i];
	struct pool_slot s;
	enum pool_timer_action got;
	uint64_t wake = NEVER;

	memset(&s, 0, sizeof(s));
	s.state = c->state;
	s.started_ms = c->started;
	s.deadline_ms = c->deadline;
	got = pool_slot_timer(&s, c->heartbeat, c->hang, c->now, &wake);
	ck_assert_msg(got == c->want, "%s: %s, want %s", c->name,
	    timer_name(got), timer_name(c->want));
	ck_assert_msg(wake == c->wake, "%s: wake %llu, want %llu", c->name,
	    (unsigned long long)wake, (unsigned long long)c->wake);
}
END_TEST

/*
 * A drain that overran is killed once: after the action the master moves
 * the slot to KILLED, and every later pass finds nothing to do.  (The old
 * bookkeeping, a timestamp set to UINT64_MAX / 2, killed and warned on
 * every pass.)
 */
START_TEST(kill_happens_once)
{
	struct pool_slot s;
	uint64_t wake, now;
	unsigned kills = 0;

	memset(&s, 0, sizeof(s));
	s.state = POOL_SLOT_DRAINING;
	s.deadline_ms = T0;
	for (now = T0; now < T0 + 10000; now += 500) {
		wake = NEVER;
		if (pool_slot_timer(&s, now, 30000, now, &wake) ==
		    POOL_TIMER_KILL) {
			kills++;
			s.state = POOL_SLOT_KILLED;
		}
	}
	ck_assert_uint_eq(kills, 1);
}
END_TEST

/* ---- which draining worker gives its slot to a new generation ---- */

struct victim_case {
	const char *name;
	enum pool_slot_state state[5];
	uint64_t gen[5];
	uint64_t open[5];
	int want;
};

#define DR POOL_SLOT_DRAINING
#define RD POOL_SLOT_READY
#define UN POOL_SLOT_UNUSED
#define KI POOL_SLOT_KILLED
static const struct victim_case victims[] = {
	{ "none drains", { RD, RD, UN, KI, RD }, { 1, 1, 0, 1, 2 },
	    { 0, 0, 0, 0, 0 }, -1 },
	{ "the only draining one", { RD, DR, RD, RD, RD }, { 2, 1, 2, 2, 2 },
	    { 0, 9, 0, 0, 0 }, 1 },
	{ "the fewest connections", { DR, DR, DR, RD, RD }, { 1, 1, 1, 2, 2 },
	    { 5, 2, 7, 0, 0 }, 1 },
	{ "the oldest generation first, however busy",
	    { DR, DR, DR, RD, RD }, { 2, 1, 2, 3, 3 }, { 0, 100, 0, 0, 0 },
	    1 },
	{ "a tie: the lowest slot", { RD, DR, DR, DR, RD }, { 3, 2, 2, 2, 3 },
	    { 0, 4, 4, 4, 0 }, 1 },
	{ "already killed ones are not picked again",
	    { KI, KI, DR, RD, RD }, { 1, 1, 2, 3, 3 }, { 0, 0, 8, 0, 0 }, 2 },
};

START_TEST(victim_table)
{
	const struct victim_case *c = &victims[_i];
	struct pool_slot slots[5];
	struct pool p = { .nslots = 5, .slots = slots };
	unsigned i;
	int got;

	memset(slots, 0, sizeof(slots));
	for (i = 0; i < 5; i++) {
		slots[i].state = c->state[i];
		slots[i].generation = c->gen[i];
	}
	got = pool_victim(&p, c->open);
	ck_assert_msg(got == c->want, "%s: slot %d, want %d", c->name, got,
	    c->want);
}
END_TEST

Suite *
pool_suite(void)
{
	Suite *s = suite_create("pool");
	TCase *tc;

	tc = tcase_create("policy");
	tcase_add_loop_test(tc, exit_table, 0,
	    (int)(sizeof(exits) / sizeof(exits[0])));
	tcase_add_test(tc, ladder_to_give_up);
	tcase_add_test(tc, jitter_bounds);
	tcase_add_test(tc, proven_worker_resets_ladder);
	tcase_add_test(tc, budget_burst_across_slots);
	tcase_add_test(tc, budget_window_edge);
	tcase_add_test(tc, budget_spread);
	tcase_add_test(tc, budget_counts_only_early_deaths);
	tcase_add_test(tc, budget_after_ring_wraps);
	tcase_add_test(tc, custom_policy);
	suite_add_tcase(s, tc);

	tc = tcase_create("table");
	tcase_add_test(tc, table_helpers);
	tcase_add_loop_test(tc, timer_table, 0,
	    (int)(sizeof(timer_cases) / sizeof(timer_cases[0])));
	tcase_add_test(tc, kill_happens_once);
	tcase_add_loop_test(tc, victim_table, 0,
	    (int)(sizeof(victims) / sizeof(victims[0])));
	suite_add_tcase(s, tc);
	return s;
}
