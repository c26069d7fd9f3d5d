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
		if (p->slots[i].state == POOL_SLOT_UNUSED ||
		    p->slots[i].state == POOL_SLOT_EMPTY)
			return (int)i;
	return -1;
}

int
pool_find(const struct pool *p, pid_t pid)
{
	unsigned i;

	for (i = 0; i < p->nslots; i++)
		if (p->slots[i].state == POOL_SLOT_RUNNING &&
		    p->slots[i].pid == pid)
			return (int)i;
	return -1;
}

unsigned
pool_running(const struct pool *p)
{
	unsigned i, n = 0;

	for (i = 0; i < p->nslots; i++)
		if (p->slots[i].state == POOL_SLOT_RUNNING)
			n++;
	return n;
}

uint64_t
pool_next_respawn(const struct pool *p)
{
	uint64_t t = UINT64_MAX;
	unsigned i;

	for (i = 0; i < p->nslots; i++)
		if (p->slots[i].state == POOL_SLOT_WAITING &&
		    p->slots[i].respawn_at_ms < t)
			t = p->slots[i].respawn_at_ms;
	return t;
}
