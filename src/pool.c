/*
 * pool: the restart policy (pure) and the table of worker slots.
 *
 * The policy, in words: a worker that lived (at least min_uptime) or
 * served a connection proved that the slot works: it is replaced at once
 * and the slot's back-off resets.  A worker that died young and idle is an
 * early death: the slot waits backoff_min, then twice that, up to
 * backoff_max, each with +-25% jitter so a crash-looping pool does not
 * respawn in lockstep.  More than `budget` early deaths in
 * `budget_window` across the pool means the pool cannot run here: give up
 * and let the init system decide.  So does a slot that climbed its whole
 * back-off ladder and died early once more (with the defaults about ten
 * deaths in 80 s with nothing served): small pools never reach the global
 * budget, since their back-off slows the deaths down.  A fatal start-up
 * exit is never retried.
 *
 * Why "or served": a worker killed from outside while serving (the OOM
 * killer, an operator's kill -9) is replaced at once however young, and a
 * worker that crashes on some client's bytes needs that client to come
 * back for every crash: the client sets the pace, not the master.
 */
#include <stdint.h>
#include <stdlib.h>

#include "pool.h"

const struct pool_policy pool_default_policy = {
	.min_uptime_ms = 1000,
	.backoff_min_ms = 100,
	.backoff_max_ms = 30000,
	.budget = 20,
	.budget_window_ms = 60000,
};

/* Record an early death; return how many fall within the window. */
static unsigned
budget_count(struct pool_budget *b, uint64_t window_ms, uint64_t now_ms)
{
	unsigned i, n = 0;

	b->at_ms[b->next] = now_ms;
	b->next = (b->next + 1) % POOL_BUDGET_MAX;
	if (b->n < POOL_BUDGET_MAX)
		b->n++;
	for (i = 0; i < b->n; i++)
		if (now_ms - b->at_ms[i] < window_ms)
			n++;
	return n;
}

static uint64_t
jitter(uint64_t ms, uint32_t rnd)
{
	uint64_t spread = ms / 2;

	return ms - ms / 4 + (spread ? rnd % (spread + 1) : 0);
}

enum pool_action
pool_on_exit(const struct pool_policy *p, uint64_t *backoff_ms,
    struct pool_budget *b, const struct pool_exit *e, uint64_t now_ms,
    uint32_t rnd, uint64_t *delay_ms)
{
	*delay_ms = 0;
	if (e->fatal)
		return POOL_LEAVE_EMPTY;
	if (e->uptime_ms >= p->min_uptime_ms || e->served > 0) {
		*backoff_ms = 0;
		return POOL_RESPAWN_NOW;
	}
	if (budget_count(b, p->budget_window_ms, now_ms) > p->budget ||
	    *backoff_ms >= p->backoff_max_ms)
		return POOL_GIVE_UP;
	if (*backoff_ms == 0)
		*backoff_ms = p->backoff_min_ms;
	else if (*backoff_ms < p->backoff_max_ms / 2)
		*backoff_ms *= 2;
	else
		*backoff_ms = p->backoff_max_ms;
	*delay_ms = jitter(*backoff_ms, rnd);
	if (*delay_ms > p->backoff_max_ms)
		*delay_ms = p->backoff_max_ms;
	return POOL_RESPAWN_LATER;
}

int
pool_init(struct pool *p, unsigned nslots)
{
	p->slots = calloc(nslots, sizeof(*p->slots));
	if (p->slots == NULL)
		return -1;
	p->nslots = nslots;
	p->budget.n = p->budget.next = 0;
	p->policy = pool_default_policy;
	return 0;
}

void
pool_free(struct pool *p)
{
	free(p->slots);
	p->slots = NULL;
	p->nslots = 0;
}

int
pool_free_slot(const struct pool *p)
{
	unsigned i;

	for (i = 0; i < p->nslots; i++)
		if (p->slots[i].state == POOL_SLOT_UNUSED)
			return (int)i;
	return -1;
}

int
pool_slot_live(enum pool_slot_state s)
{
	return s != POOL_SLOT_UNUSED && s != POOL_SLOT_WAITING;
}

int
pool_find(const struct pool *p, pid_t pid)
{
	unsigned i;

	for (i = 0; i < p->nslots; i++)
		if (pool_slot_live(p->slots[i].state) &&
		    p->slots[i].pid == pid)
			return (int)i;
	return -1;
}

unsigned
pool_running(const struct pool *p)
{
	unsigned i, n = 0;

	for (i = 0; i < p->nslots; i++)
		if (pool_slot_live(p->slots[i].state))
			n++;
	return n;
}

unsigned
pool_count_state(const struct pool *p, enum pool_slot_state s)
{
	unsigned i, n = 0;

	for (i = 0; i < p->nslots; i++)
		if (p->slots[i].state == s)
			n++;
	return n;
}

void
pool_count_gen(const struct pool *p, uint64_t generation, unsigned *ready,
    unsigned *live)
{
	const struct pool_slot *s;
	unsigned i;

	*ready = *live = 0;
	for (i = 0; i < p->nslots; i++) {
		s = &p->slots[i];
		if (s->generation != generation)
			continue;
		if (s->state == POOL_SLOT_READY)
			(*ready)++;
		if (s->state == POOL_SLOT_READY ||
		    s->state == POOL_SLOT_STARTING ||
		    s->state == POOL_SLOT_WAITING)
			(*live)++;
	}
}

unsigned
pool_room(const struct pool *p, unsigned budget)
{
	unsigned used = p->nslots - pool_count_state(p, POOL_SLOT_UNUSED) -
	    pool_count_state(p, POOL_SLOT_KILLED);

	return used < budget ? budget - used : 0;
}

static void
wake_at(uint64_t *wake, uint64_t t)
{
	if (t < *wake)
		*wake = t;
}

enum pool_timer_action
pool_slot_timer(const struct pool_slot *s, uint64_t heartbeat_ms,
    uint64_t hang_ms, uint64_t now_ms, uint64_t *wake)
{
	uint64_t hb;

	switch (s->state) {
	case POOL_SLOT_WAITING:
	case POOL_SLOT_DRAINING:
	case POOL_SLOT_ABORTING:
		if (now_ms >= s->deadline_ms)
			return s->state == POOL_SLOT_WAITING ?
			    POOL_TIMER_SPAWN : POOL_TIMER_KILL;
		wake_at(wake, s->deadline_ms);
		/* A draining worker can hang too: it is aborted the same. */
		if (s->state != POOL_SLOT_DRAINING)
			return POOL_TIMER_NOTHING;
		break;
	case POOL_SLOT_STARTING:
	case POOL_SLOT_READY:
		break;
	case POOL_SLOT_UNUSED:
	case POOL_SLOT_KILLED:
		return POOL_TIMER_NOTHING;
	}
	if (hang_ms == 0)
		return POOL_TIMER_NOTHING;
	hb = heartbeat_ms > s->started_ms ? heartbeat_ms : s->started_ms;
	if (now_ms >= hb && now_ms - hb >= hang_ms)
		return POOL_TIMER_ABORT;
	wake_at(wake, hb + hang_ms);
	return POOL_TIMER_NOTHING;
}

int
pool_victim(const struct pool *p, const uint64_t *open)
{
	const struct pool_slot *s, *b;
	unsigned i;
	int best = -1;

	for (i = 0; i < p->nslots; i++) {
		s = &p->slots[i];
		if (s->state != POOL_SLOT_DRAINING)
			continue;
		b = best == -1 ? NULL : &p->slots[best];
		if (b == NULL || s->generation < b->generation ||
		    (s->generation == b->generation &&
		    open[i] < open[best]))
			best = (int)i;
	}
	return best;
}
