/*
 * slots: the master's worker slots in action.  Forks a worker into a
 * slot, retires it (SIGTERM, drain), reaps it and decides its
 * replacement with pool_on_exit(), and acts on the slot timers that
 * pool_slot_timer() decides: a respawn due, a hung worker to abort, a
 * drain or an abort that overran to kill.  Every "once" is a change of
 * the slot's state, so nothing here repeats.
 *
 * Makes the system calls the pure decisions in pool.c ask for; never
 * blocks.
 */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exitcodes.h"
#include "log.h"
#include "master_int.h"
#include "notify.h"

void
slots_spawn(struct master *m, unsigned i, const struct gen *g)
{
	struct pool_slot *ps = &m->pool.slots[i];
	struct sb_slot *s = &m->sb.slots[i];
	pid_t pid;

	scoreboard_begin_process(&m->sb, i);
	/*
	 * Per-client tables sized for this worker's generation: a reload
	 * that raises max_connections (or turns a limit on) gets bigger
	 * ones, while the serving generation's replacements keep theirs.
	 */
	if (climit_configure(&m->limits, g->conf->max_connections,
	    g->conf->max_connections_per_ip,
	    g->conf->max_connection_rate_per_ip) == -1)
		log_warn("per-client tables for max_connections %d: keeping "
		    "the previous ones for worker %u", g->conf->max_connections,
		    i);
	climit_reset_slot(&m->limits, i);
	sb_store(&s->generation, g->id);
	sb_store(&s->state, SB_STARTING);
	sb_store(&s->started_ms, master_now());
	ps->generation = g->id;
	ps->retired = 0;
	m->wa.slot = i;
	m->wa.generation = g->id;
	m->wa.conf = g->conf;
	m->wa.lfds = g->lfds;
	m->wa.nlfds = g->nls;
	m->wa.proxy_mask = g->proxy_mask;
	m->wa.max_conns = g->max_conns;
	if ((pid = fork()) == -1) {
		log_warn("fork for worker %u; trying again in 1 s", i);
		sb_store(&s->state, SB_EMPTY);
		ps->state = POOL_SLOT_WAITING;
		ps->deadline_ms = master_now() + FORK_RETRY_MS;
		return;
	}
	if (pid == 0) {
		master_child_close(m);
		worker_main(&m->wa);
	}
	s->pid = pid;
	ps->state = POOL_SLOT_STARTING;
	ps->pid = pid;
	ps->started_ms = master_now();
	log_debug("worker %u started, pid %d, generation %llu", i, (int)pid,
	    (unsigned long long)g->id);
}

/* A new slot for generation g; -1 if none is free now. */
int
slots_add(struct master *m, const struct gen *g)
{
	int i;

	if ((i = pool_free_slot(&m->pool)) == -1)
		return -1;
	m->pool.slots[i].backoff_ms = 0;
	m->pool.slots[i].restarts = 0;
	sb_store(&m->sb.slots[i].restarts, 0);
	slots_spawn(m, (unsigned)i, g);
	return 0;
}

/* Tell slot i to stop accepting and finish its connections. */
void
slots_retire(struct master *m, unsigned i)
{
	struct pool_slot *ps = &m->pool.slots[i];

	ps->retired = 1;
	if (ps->state == POOL_SLOT_WAITING) {
		ps->state = POOL_SLOT_UNUSED;
		return;
	}
	if (ps->state != POOL_SLOT_STARTING && ps->state != POOL_SLOT_READY)
		return;
	ps->state = POOL_SLOT_DRAINING;
	ps->deadline_ms = master_now() +
	    (uint64_t)m->conf->shutdown_timeout * 1000 + KILL_GRACE_MS;
	kill(ps->pid, SIGTERM);
}

/* Retire the slots of generations before older_than, or of only. */
void
slots_retire_gen(struct master *m, uint64_t older_than, uint64_t only)
{
	unsigned i;

	for (i = 0; i < m->pool.nslots; i++)
		if (m->pool.slots[i].generation < older_than ||
		    m->pool.slots[i].generation == only)
			slots_retire(m, i);
}

void
slots_signal(struct master *m, int sig)
{
	unsigned i;

	for (i = 0; i < m->pool.nslots; i++)
		if (pool_slot_live(m->pool.slots[i].state))
			kill(m->pool.slots[i].pid, sig);
	metricsd_signal(m, sig);
}

/*
 * Generation gid needs n workers more.  Slots hold at most three
 * generations (new, serving, draining): 3 times the larger pool size.
 * Beyond that, draining workers are killed at once, the oldest
 * generation's first and of those the one with the fewest connections,
 * until the n fit.
 */
void
slots_make_room(struct master *m, unsigned n, uint64_t gid)
{
	uint64_t open[MAX_SLOTS];
	unsigned i, have, budget;
	int v;

	budget = m->serving.target;
	if (m->pending.id != 0 && m->pending.target > budget)
		budget = m->pending.target;
	budget = 3 * budget < m->pool.nslots ? 3 * budget : m->pool.nslots;
	if ((have = pool_room(&m->pool, budget)) >= n)
		return;
	for (i = 0; i < m->pool.nslots; i++)
		open[i] = sb_load(&m->sb.slots[i].conns_open);
	for (; have < n; have++) {
		if ((v = pool_victim(&m->pool, open)) == -1)
			break;
		log_warnx("worker %d (pid %d) of generation %llu killed while "
		    "draining %llu connection(s): generation %llu needs its "
		    "slot", v, (int)m->pool.slots[v].pid,
		    (unsigned long long)m->pool.slots[v].generation,
		    (unsigned long long)open[v], (unsigned long long)gid);
		kill(m->pool.slots[v].pid, SIGKILL);
		m->pool.slots[v].state = POOL_SLOT_KILLED;
	}
}

/* ---- timers ---- */

static void
timer_act(struct master *m, unsigned i, enum pool_timer_action a,
    uint64_t now)
{
	struct pool_slot *ps = &m->pool.slots[i];
	const struct gen *g;

	switch (a) {
	case POOL_TIMER_NOTHING:
		break;
	case POOL_TIMER_SPAWN:
		if (m->stopping || (g = gen_of(m, ps->generation)) == NULL) {
			ps->state = POOL_SLOT_UNUSED;
			break;
		}
		ps->restarts++;
		sb_store(&m->sb.slots[i].restarts, ps->restarts);
		slots_spawn(m, i, g);
		break;
	case POOL_TIMER_ABORT:
		log_err("worker %u (pid %d) hung: no heartbeat for %.1f s "
		    "(worker_timeout %d s); sending SIGABRT, then SIGKILL", i,
		    (int)ps->pid, (double)(now - (sb_load(
		    &m->sb.slots[i].heartbeat_ms) > ps->started_ms ?
		    sb_load(&m->sb.slots[i].heartbeat_ms) : ps->started_ms)) /
		    1000.0, m->conf->worker_timeout);
		kill(ps->pid, SIGABRT);
		ps->state = POOL_SLOT_ABORTING;
		ps->deadline_ms = now + ABORT_GRACE_MS;
		break;
	case POOL_TIMER_KILL:
		if (ps->state == POOL_SLOT_DRAINING)
			log_warnx("worker %u (pid %d) still draining after "
			    "%d s: killing it", i, (int)ps->pid,
			    m->conf->shutdown_timeout);
		kill(ps->pid, SIGKILL);
		ps->state = POOL_SLOT_KILLED;
		break;
	}
}

uint64_t
slots_timers(struct master *m, uint64_t now)
{
	uint64_t hang = (uint64_t)m->conf->worker_timeout * 1000;
	uint64_t wake = UINT64_MAX, ignored = UINT64_MAX;
	enum pool_timer_action a;
	unsigned i;

	for (i = 0; i < m->pool.nslots; i++) {
		a = pool_slot_timer(&m->pool.slots[i],
		    sb_load(&m->sb.slots[i].heartbeat_ms), hang, now, &ignored);
		timer_act(m, i, a, now);
		/* When to look again, in the state the action left. */
		(void)pool_slot_timer(&m->pool.slots[i],
		    sb_load(&m->sb.slots[i].heartbeat_ms), hang, now, &wake);
	}
	return wake;
}

/* ---- reaping ---- */

static void
describe_exit(int st, char *buf, size_t len)
{
	if (WIFSIGNALED(st))
		snprintf(buf, len, "killed by signal %d (%s)%s", WTERMSIG(st),
		    strsignal(WTERMSIG(st)), WCOREDUMP(st) ? ", core dumped" : "");
	else
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(st));
}

static void
give_up(struct master *m, const char *what)
{
	char s[256];

	log_err("%s; workers keep dying early (more than %u in %llu s, or "
	    "one slot at its %llu s back-off): giving up", what,
	    m->pool.policy.budget,
	    (unsigned long long)m->pool.policy.budget_window_ms / 1000,
	    (unsigned long long)m->pool.policy.backoff_max_ms / 1000);
	snprintf(s, sizeof(s), "giving up: workers keep dying early; %.200s",
	    what);
	notify_failure(ECHILD, s);
	master_stop(m, ECHOD_EXIT_FAILURE, "crash loop");
}

static void
act_on_exit(struct master *m, unsigned i, const struct pool_exit *e,
    const char *what, int hung, int st)
{
	struct pool_slot *ps = &m->pool.slots[i];
	enum pool_action a;
	uint64_t delay;

	a = pool_on_exit(&m->pool.policy, &ps->backoff_ms, &m->pool.budget, e,
	    master_now(), (uint32_t)random(), &delay);
	if (a == POOL_RESPAWN_NOW || a == POOL_RESPAWN_LATER)
		sb_count(&m->sb.hdr->restarts[sb_restart_cause(hung,
		    WIFSIGNALED(st), a == POOL_RESPAWN_LATER)]);
	switch (a) {
	case POOL_RESPAWN_NOW:
		log_warnx("%s; replacing it now", what);
		ps->state = POOL_SLOT_WAITING;
		ps->deadline_ms = 0;
		break;
	case POOL_RESPAWN_LATER:
		log_warnx("%s; it died early, replacing it in %llu ms", what,
		    (unsigned long long)delay);
		ps->state = POOL_SLOT_WAITING;
		ps->deadline_ms = master_now() + delay;
		break;
	case POOL_LEAVE_EMPTY:
	case POOL_GIVE_UP:
		if (m->pending.id != 0 && m->pending.id == ps->generation) {
			/* A new generation that cannot keep its workers. */
			gen_worker_failed(m, ps->generation, what);
		} else if (a == POOL_LEAVE_EMPTY)
			log_err("%s: a fatal start-up error; slot %u stays "
			    "empty", what, i);
		else
			give_up(m, what);
		break;
	}
}

static void
reaped(struct master *m, pid_t pid, int st)
{
	struct pool_slot *ps;
	struct pool_exit e;
	struct sb_slot *s;
	char how[128], what[256];
	enum pool_slot_state was;
	int i;

	if ((i = pool_find(&m->pool, pid)) == -1) {
		log_info("reaped unknown child %d", (int)pid);
		return;
	}
	ps = &m->pool.slots[i];
	s = &m->sb.slots[i];
	e.uptime_ms = master_now() - ps->started_ms;
	e.served = sb_delta(&s->conns_served, &s->base_served);
	e.fatal = WIFEXITED(st) && WEXITSTATUS(st) == ECHOD_EXIT_WORKER_FATAL;
	m->served_by_dead += e.served;
	sb_store(&s->state, SB_EMPTY);
	s->pid = 0;
	/* Its clients' connections died with it: they count no more, even
	 * if the slot stays empty (retired, or left empty on purpose). */
	climit_release_slot(&m->limits, (unsigned)i);
	describe_exit(st, how, sizeof(how));
	snprintf(what, sizeof(what), "worker %d (pid %d) %s after %.1f s, "
	    "%llu connection(s) served", i, (int)pid, how,
	    (double)e.uptime_ms / 1000.0, (unsigned long long)e.served);
	was = ps->state;
	ps->state = POOL_SLOT_UNUSED;
	if (m->stopping || ps->retired) {
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			log_info("%s", what);
		else
			log_warnx("%s", what);
	} else if (was == POOL_SLOT_STARTING && m->pending.id != 0 &&
	    ps->generation == m->pending.id) {
		/* Its generation cannot start: abandon it, not the pool. */
		log_warnx("%s", what);
		snprintf(what, sizeof(what), "worker %d (pid %d) of generation "
		    "%llu %s before it was ready", i, (int)pid,
		    (unsigned long long)ps->generation, how);
		gen_worker_failed(m, ps->generation, what);
	} else
		act_on_exit(m, (unsigned)i, &e, what, was ==
		    POOL_SLOT_ABORTING || was == POOL_SLOT_KILLED, st);
}

void
slots_reap(struct master *m)
{
	unsigned ready, live, pready, plive;
	pid_t pid;
	int st;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
		if (!metricsd_reaped(m, pid, st))
			reaped(m, pid, st);
	if (pid == -1 && errno != ECHILD)
		log_warn("waitpid");
	gen_check(m);
	pool_count_gen(&m->pool, m->serving.id, &ready, &live);
	pool_count_gen(&m->pool, m->pending.id, &pready, &plive);
	if (!m->stopping && live == 0 && (m->pending.id == 0 || plive == 0)) {
		notify_failure(ECHILD, "no worker left");
		master_stop(m, ECHOD_EXIT_FAILURE, "no worker left");
	}
	master_refresh_status(m);
}
