/*
 * master: supervise the worker pool.
 *
 * One loop, one epoll set: a signalfd (every signal the master acts on is
 * blocked and read from it, so no work ever happens in a handler), the
 * status pipe on which workers say they are ready, and the health probe's
 * socket.  The wait's timeout is the nearest deadline: a delayed respawn,
 * a drain or stop deadline, the next hang check, probe or status refresh.
 *
 * Workers belong to a generation: the configuration they were forked
 * with.  A reload (SIGHUP) or a pool recycle starts a new generation and,
 * once all of it is ready, tells the older ones to drain.  The listening
 * sockets stay open here the whole time, so a connection that arrives
 * while workers are being replaced waits in the kernel's accept queue and
 * is served, never refused.
 *
 * Never serves a client byte; never blocks but in epoll_wait.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "exitcodes.h"
#include "climit.h"
#include "log.h"
#include "master.h"
#include "notify.h"
#include "pool.h"
#include "probe.h"
#include "sandbox.h"
#include "scoreboard.h"
#include "worker.h"

#define MAX_SLOTS (2 * CONF_WORKERS_MAX) /* two generations side by side */
#define STATUS_INTERVAL_MS 1000
#define HANG_CHECK_MS 500
#define ABORT_GRACE_MS 2000 /* SIGABRT, then SIGKILL this much later */
#define KILL_GRACE_MS 1000  /* after shutdown_timeout, before SIGKILL */
#define TAG_SIGNALS 1
#define TAG_STATUS 2
#define TAG_PROBE 3

struct master {
	struct conf *conf;
	const struct master_opts *opts;
	struct listener ls[CONF_LISTEN_MAX];
	int lfds[CONF_LISTEN_MAX];
	size_t nls;
	char addrs[1024];
	struct pool pool;
	struct scoreboard sb;
	struct climit limits;
	struct worker_args wa;
	int epfd, sigfd, status_rd, status_wr;
	int ready_fd; /* -d: the parent waits on it until we are ready */
	uint64_t generation;
	unsigned target; /* workers wanted in the current generation */
	int ready_sent;  /* READY=1 said for the current generation */
	int up;          /* the first generation was ready once */
	int reloading;   /* 1: a reload, 2: a recycle after a failed probe */
	uint64_t reload_start;
	int stopping;
	int exit_code;
	uint64_t stop_deadline;
	uint64_t next_status, next_hang_check;
	uint64_t served_by_dead;
	uint64_t wd_interval, next_probe; /* watchdog, ms; 0 = none */
	int wd_failures, wd_stopped;
	struct probe probe;
	char last_status[1400];
};

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static const int master_signals[] = { SIGCHLD, SIGTERM, SIGINT, SIGHUP,
	SIGUSR1, SIGUSR2, SIGTTIN, SIGTTOU, SIGQUIT };

static void begin_stop(struct master *, int, const char *);

/* ---- the slots of the current generation ---- */

static int
current(const struct master *m, unsigned i)
{
	const struct pool_slot *ps = &m->pool.slots[i];

	return ps->generation == m->generation && ps->term_at_ms == 0 &&
	    (ps->state == POOL_SLOT_RUNNING || ps->state == POOL_SLOT_WAITING);
}

static unsigned
count_current(const struct master *m, int ready_only)
{
	unsigned i, n = 0;

	for (i = 0; i < m->pool.nslots; i++)
		if (current(m, i) && (!ready_only ||
		    (m->pool.slots[i].state == POOL_SLOT_RUNNING &&
		    m->pool.slots[i].ready)))
			n++;
	return n;
}

/* ---- status ---- */

/*
 * STATUS= at most once per STATUS_INTERVAL_MS, and only when it changed:
 * sd_notify() is a blocking send, and a crash loop must not turn into a
 * flood of datagrams that a busy manager's queue cannot take.
 */
static void
refresh_status(struct master *m)
{
	struct sb_totals t;
	uint64_t now = now_ms();
	char s[1400];

	scoreboard_totals(&m->sb, &t);
	snprintf(s, sizeof(s), "%u/%u workers ready, %llu connections open, "
	    "%llu served, %llu restarts; listening on %s",
	    count_current(m, 1), m->target, (unsigned long long)t.conns_open,
	    (unsigned long long)t.conns_served +
	    (unsigned long long)m->served_by_dead,
	    (unsigned long long)t.restarts, m->addrs);
	if (now < m->next_status)
		return; /* the timer comes back for it */
	m->next_status = now + STATUS_INTERVAL_MS;
	if (strcmp(s, m->last_status) == 0)
		return;
	if (m->ready_sent && !m->stopping)
		notify_status(s);
	snprintf(m->last_status, sizeof(m->last_status), "%s", s);
}

static const char *
state_name(uint64_t state)
{
	static const char *const names[] = { "empty", "starting", "ready",
		"draining" };

	return state < 4 ? names[state] : "?";
}

static void
dump_scoreboard(struct master *m)
{
	const struct sb_slot *s;
	uint64_t now = now_ms();
	unsigned i;

	log_notice("scoreboard: generation %llu, %u/%u workers ready",
	    (unsigned long long)m->generation, count_current(m, 1), m->target);
	log_notice("slot pid      gen state     up(s)  open     served"
	    "     bytes-in    bytes-out restarts sandbox");
	for (i = 0; i < m->sb.nslots; i++) {
		s = &m->sb.slots[i];
		if (sb_load(&s->state) == SB_EMPTY &&
		    m->pool.slots[i].state != POOL_SLOT_WAITING)
			continue;
		log_notice("%4u %-8lld %3llu %-8s %6llu %5llu %10llu %12llu "
		    "%12llu %8llu %s", i, (long long)s->pid,
		    (unsigned long long)sb_load(&s->generation),
		    m->pool.slots[i].state == POOL_SLOT_WAITING ? "waiting" :
		    state_name(sb_load(&s->state)),
		    (unsigned long long)(now - sb_load(&s->started_ms)) / 1000,
		    (unsigned long long)sb_load(&s->conns_open),
		    (unsigned long long)sb_load(&s->conns_served),
		    (unsigned long long)sb_load(&s->bytes_in),
		    (unsigned long long)sb_load(&s->bytes_out),
		    (unsigned long long)sb_load(&s->restarts),
		    sandbox_state_name((int)sb_load(&s->sandbox)));
	}
}

/* ---- spawning ---- */

static void
child_close(struct master *m)
{
	close(m->epfd);
	close(m->sigfd);
	close(m->status_rd);
	probe_cancel(&m->probe);
	if (m->ready_fd != -1)
		close(m->ready_fd);
	if (m->opts->pidfile_fd != -1)
		close(m->opts->pidfile_fd);
}

static void
spawn(struct master *m, unsigned i)
{
	struct pool_slot *ps = &m->pool.slots[i];
	struct sb_slot *s = &m->sb.slots[i];
	pid_t pid;

	memset(s, 0, offsetof(struct sb_slot, restarts));
	scoreboard_use_slot(&m->sb, i);
	climit_reset_slot(&m->limits, i);
	sb_store(&s->generation, m->generation);
	sb_store(&s->state, SB_STARTING);
	sb_store(&s->started_ms, now_ms());
	ps->generation = m->generation;
	ps->term_at_ms = ps->abort_at_ms = 0;
	ps->ready = 0;
	m->wa.slot = i;
	m->wa.generation = m->generation;
	if ((pid = fork()) == -1) {
		log_warn("fork for worker %u; trying again in 1 s", i);
		sb_store(&s->state, SB_EMPTY);
		ps->state = POOL_SLOT_WAITING;
		ps->respawn_at_ms = now_ms() + 1000;
		return;
	}
	if (pid == 0) {
		child_close(m);
		worker_main(&m->wa);
	}
	s->pid = pid;
	ps->state = POOL_SLOT_RUNNING;
	ps->pid = pid;
	ps->started_ms = now_ms();
	log_debug("worker %u started, pid %d, generation %llu", i, (int)pid,
	    (unsigned long long)m->generation);
}

/* A new slot in the current generation. */
static int
add_worker(struct master *m)
{
	int i;

	if ((i = pool_free_slot(&m->pool)) == -1) {
		log_err("no free worker slot (at most %d)", MAX_SLOTS);
		return -1;
	}
	m->pool.slots[i].backoff_ms = 0;
	m->pool.slots[i].restarts = 0;
	sb_store(&m->sb.slots[i].restarts, 0);
	spawn(m, (unsigned)i);
	return 0;
}

static void
start_generation(struct master *m)
{
	unsigned i;

	m->generation++;
	m->ready_sent = 0;
	for (i = 0; i < m->target; i++)
		if (add_worker(m) == -1)
			break;
}

static void
respawn_due(struct master *m)
{
	uint64_t now = now_ms();
	unsigned i;

	for (i = 0; i < m->pool.nslots; i++) {
		if (m->pool.slots[i].state != POOL_SLOT_WAITING ||
		    m->pool.slots[i].respawn_at_ms > now)
			continue;
		m->pool.slots[i].restarts++;
		sb_store(&m->sb.slots[i].restarts, m->pool.slots[i].restarts);
		spawn(m, i);
	}
}

/* ---- draining and stopping ---- */

/* Tell slot i to stop accepting and finish its connections. */
static void
retire(struct master *m, unsigned i)
{
	struct pool_slot *ps = &m->pool.slots[i];

	if (ps->state == POOL_SLOT_WAITING) {
		ps->state = POOL_SLOT_EMPTY;
		return;
	}
	if (ps->state != POOL_SLOT_RUNNING || ps->term_at_ms != 0)
		return;
	ps->term_at_ms = now_ms();
	kill(ps->pid, SIGTERM);
}

static void
retire_older(struct master *m)
{
	unsigned i;

	for (i = 0; i < m->pool.nslots; i++)
		if (m->pool.slots[i].generation < m->generation)
			retire(m, i);
}

static void
signal_workers(struct master *m, int sig)
{
	unsigned i;

	for (i = 0; i < m->pool.nslots; i++)
		if (m->pool.slots[i].state == POOL_SLOT_RUNNING)
			kill(m->pool.slots[i].pid, sig);
}

/* Drains that overran shutdown_timeout end with SIGKILL. */
static void
kill_overdue(struct master *m, uint64_t now)
{
	uint64_t limit = (uint64_t)m->conf->shutdown_timeout * 1000 +
	    KILL_GRACE_MS;
	struct pool_slot *ps;
	unsigned i;

	for (i = 0; i < m->pool.nslots; i++) {
		ps = &m->pool.slots[i];
		if (ps->state != POOL_SLOT_RUNNING || ps->term_at_ms == 0 ||
		    now - ps->term_at_ms < limit)
			continue;
		log_warnx("worker %u (pid %d) still draining after %d s: "
		    "killing it", i, (int)ps->pid, m->conf->shutdown_timeout);
		kill(ps->pid, SIGKILL);
		ps->term_at_ms = UINT64_MAX / 2; /* once */
	}
}

static void
begin_stop(struct master *m, int code, const char *why)
{
	struct sb_totals t;
	unsigned i;

	if (m->stopping) {
		log_notice("%s again: stopping now", why);
		signal_workers(m, SIGKILL);
		return;
	}
	m->stopping = 1;
	m->exit_code = code;
	probe_cancel(&m->probe);
	/* Stop accepting: workers close their copies as they drain. */
	for (i = 0; i < m->nls; i++)
		close(m->ls[i].fd);
	m->nls = 0;
	scoreboard_totals(&m->sb, &t);
	log_notice("%s: stopping; waiting up to %d s for %llu open "
	    "connection(s) (signal again to stop at once)", why,
	    m->conf->shutdown_timeout, (unsigned long long)t.conns_open);
	if (code == ECHOD_EXIT_OK)
		notify_stopping("stopping");
	for (i = 0; i < m->pool.nslots; i++)
		retire(m, i);
	m->stop_deadline = now_ms() +
	    (uint64_t)m->conf->shutdown_timeout * 1000 + KILL_GRACE_MS;
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
	begin_stop(m, ECHOD_EXIT_FAILURE, "crash loop");
}

static void
act_on_exit(struct master *m, unsigned i, const struct pool_exit *e,
    const char *what)
{
	struct pool_slot *ps = &m->pool.slots[i];
	uint64_t delay;

	switch (pool_on_exit(&m->pool.policy, &ps->backoff_ms,
	    &m->pool.budget, e, now_ms(), (uint32_t)random(), &delay)) {
	case POOL_RESPAWN_NOW:
		log_warnx("%s; replacing it now", what);
		ps->state = POOL_SLOT_WAITING;
		ps->respawn_at_ms = 0;
		break;
	case POOL_RESPAWN_LATER:
		log_warnx("%s; it died early, replacing it in %llu ms", what,
		    (unsigned long long)delay);
		ps->state = POOL_SLOT_WAITING;
		ps->respawn_at_ms = now_ms() + delay;
		break;
	case POOL_LEAVE_EMPTY:
		log_err("%s: a fatal start-up error; slot %u stays empty",
		    what, i);
		ps->state = POOL_SLOT_EMPTY;
		break;
	case POOL_GIVE_UP:
		ps->state = POOL_SLOT_EMPTY;
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
	int i, retired;

	if ((i = pool_find(&m->pool, pid)) == -1) {
		log_info("reaped unknown child %d", (int)pid);
		return;
	}
	ps = &m->pool.slots[i];
	s = &m->sb.slots[i];
	e.uptime_ms = now_ms() - ps->started_ms;
	e.served = sb_load(&s->conns_served);
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
	retired = m->stopping || ps->term_at_ms != 0 ||
	    ps->generation != m->generation;
	ps->state = POOL_SLOT_EMPTY;
	if (!retired)
		act_on_exit(m, (unsigned)i, &e, what);
	else if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		log_info("%s", what);
	else
		log_warnx("%s", what);
}

static void
reap(struct master *m)
{
	pid_t pid;
	int st;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
		reaped(m, pid, st);
	if (pid == -1 && errno != ECHILD)
		log_warn("waitpid");
	if (!m->stopping && count_current(m, 0) == 0) {
		notify_failure(ECHILD, "no worker left");
		begin_stop(m, ECHOD_EXIT_FAILURE, "no worker left");
	}
	refresh_status(m);
}

/* ---- hung workers ---- */

static void
check_hung(struct master *m, uint64_t now)
{
	uint64_t limit = (uint64_t)m->conf->worker_timeout * 1000, hb;
	struct pool_slot *ps;
	unsigned i;

	m->next_hang_check = now + HANG_CHECK_MS;
	for (i = 0; i < m->pool.nslots; i++) {
		ps = &m->pool.slots[i];
		if (ps->state != POOL_SLOT_RUNNING)
			continue;
		if (ps->abort_at_ms != 0) {
			if (now - ps->abort_at_ms >= ABORT_GRACE_MS) {
				kill(ps->pid, SIGKILL);
				ps->abort_at_ms = UINT64_MAX / 2; /* once */
			}
			continue;
		}
		hb = sb_load(&m->sb.slots[i].heartbeat_ms);
		if (hb < ps->started_ms)
			hb = ps->started_ms;
		if (limit == 0 || now < hb || now - hb < limit)
			continue;
		log_err("worker %u (pid %d) hung: no heartbeat for %.1f s "
		    "(worker_timeout %d s); sending SIGABRT, then SIGKILL", i,
		    (int)ps->pid, (double)(now - hb) / 1000.0,
		    m->conf->worker_timeout);
		kill(ps->pid, SIGABRT);
		ps->abort_at_ms = now;
	}
}

/* ---- readiness ---- */

static void
check_ready(struct master *m)
{
	char s[1400];

	if (m->ready_sent || m->stopping ||
	    count_current(m, 1) < m->target)
		return;
	m->ready_sent = 1;
	m->up = 1;
	retire_older(m);
	if (m->reloading) {
		snprintf(s, sizeof(s), "ready: generation %llu, %u workers, "
		    "%llu ms after the %s began; listening on %s",
		    (unsigned long long)m->generation, m->target,
		    (unsigned long long)(now_ms() - m->reload_start),
		    m->reloading == 1 ? "reload" : "recycle", m->addrs);
		m->reloading = 0;
	} else
		snprintf(s, sizeof(s), "ready: %u workers, listening on %s",
		    m->target, m->addrs);
	log_notice("%s", s);
	notify_ready(s);
	snprintf(m->last_status, sizeof(m->last_status), "%s", s);
	m->next_status = now_ms() + STATUS_INTERVAL_MS;
	if (m->ready_fd != -1) {
		daemon_ready(m->ready_fd); /* -d: the parent may exit now */
		m->ready_fd = -1;
	}
}

/* ---- listeners ---- */

static void
describe_listeners(struct master *m)
{
	size_t i, n = 0;

	m->addrs[0] = '\0';
	for (i = 0; i < m->nls; i++) {
		m->lfds[i] = m->ls[i].fd;
		n += (size_t)snprintf(m->addrs + n, sizeof(m->addrs) - n,
		    "%s%s", i ? ", " : "", m->ls[i].name);
		if (n >= sizeof(m->addrs))
			break;
	}
	m->wa.lfds = m->lfds;
	m->wa.nlfds = m->nls;
}

/* Offer the listeners we bound to systemd's fd store (see notify.c). */
static void
store_listeners(struct master *m)
{
	char name[LISTENER_NAME_MAX];
	size_t i;

	for (i = 0; i < m->nls; i++) {
		if (m->ls[i].from_systemd || m->ls[i].from_store)
			continue;
		listener_fdname(m->ls[i].spec, name, sizeof(name));
		notify_fdstore(m->ls[i].fd, name);
		m->ls[i].from_store = 1; /* it is there now */
	}
}

static int
find_listener(const struct listener *ls, size_t n, const char *spec)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(ls[i].spec, spec) == 0)
			return (int)i;
	return -1;
}

/*
 * The listeners c asks for: kept where the address is unchanged, opened
 * where it is new.  On failure nothing changes and err says why.
 */
static int
open_new_listeners(struct master *m, const struct conf *c,
    struct listener *out, char *err, size_t errlen)
{
	struct listen_addr la;
	size_t i, k;
	int j;

	for (i = 0; i < c->nlisten; i++) {
		memset(&out[i], 0, sizeof(out[i]));
		snprintf(out[i].spec, sizeof(out[i].spec), "%s", c->listen[i]);
		if ((j = find_listener(m->ls, m->nls, c->listen[i])) != -1) {
			out[i] = m->ls[j];
			(void)listen(out[i].fd, c->backlog);
			continue;
		}
		if (listener_parse(c->listen[i], &la, err, errlen) == -1 ||
		    (out[i].fd = listener_open(&la, c->backlog, err,
		    errlen)) == -1) {
			for (k = 0; k < i; k++)
				if (find_listener(m->ls, m->nls,
				    out[k].spec) == -1)
					close(out[k].fd);
			return -1;
		}
		listener_name(&out[i]);
		log_info("reload: listening on %s", out[i].name);
	}
	return 0;
}

/* Swap in the new set; close (and unstore) what is no longer listed. */
static void
replace_listeners(struct master *m, struct listener *nl, size_t n)
{
	char name[LISTENER_NAME_MAX];
	size_t i;

	for (i = 0; i < m->nls; i++) {
		if (find_listener(nl, n, m->ls[i].spec) != -1)
			continue;
		log_info("reload: no longer listening on %s", m->ls[i].name);
		listener_fdname(m->ls[i].spec, name, sizeof(name));
		notify_fdstore_remove(name);
		close(m->ls[i].fd);
	}
	memcpy(m->ls, nl, n * sizeof(*nl));
	m->nls = n;
	describe_listeners(m);
	store_listeners(m);
}

/* ---- reload ---- */

static int
load_new_conf(struct master *m, struct conf *nc, char *err, size_t errlen)
{
	const struct master_opts *o = m->opts;

	conf_defaults(nc);
	if (o->config_path != NULL &&
	    conf_load(nc, o->config_path, err, errlen) == -1)
		return -1;
	if ((o->cli_workers != NULL &&
	    conf_set_workers(nc, o->cli_workers, err, errlen) == -1) ||
	    (o->ncli_listen > 0 && conf_set_listen(nc, o->cli_listen,
	    o->ncli_listen, err, errlen) == -1))
		return -1;
	return 0;
}

static int
fit_nofile(const struct conf *c, size_t nlfds);

static void
reload(struct master *m)
{
	struct listener nl[CONF_LISTEN_MAX];
	char err[1024];
	struct conf nc;

	log_notice("SIGHUP: reloading %s", m->opts->config_path ?
	    m->opts->config_path : "the built-in defaults");
	notify_reloading();
	memset(&nc, 0, sizeof(nc));
	if (load_new_conf(m, &nc, err, sizeof(err)) == -1 ||
	    (!m->ls[0].from_systemd &&
	    open_new_listeners(m, &nc, nl, err, sizeof(err)) == -1)) {
		log_err("reload failed: %s; still running the previous "
		    "configuration", err);
		conf_free(&nc);
		notify_ready("reload failed; running the previous "
		    "configuration");
		return;
	}
	if (m->ls[0].from_systemd)
		log_notice("reload: listeners come from systemd; the "
		    "configuration's listen is not used");
	else
		replace_listeners(m, nl, nc.nlisten);
	conf_free(m->conf);
	*m->conf = nc;
	log_set_level(m->conf->log_level);
	if (climit_configure(&m->limits, m->conf->max_connections,
	    m->conf->max_connections_per_ip,
	    m->conf->max_connection_rate_per_ip) == -1)
		log_warn("reload: per-client tables not resized for "
		    "max_connections %d; new workers keep the previous ones",
		    m->conf->max_connections);
	m->wa.max_conns = fit_nofile(m->conf, m->nls);
	m->target = (unsigned)m->conf->workers;
	m->reloading = 1;
	m->reload_start = now_ms();
	start_generation(m);
}

/* A fresh generation with the same configuration (a failed probe). */
static void
recycle(struct master *m, const char *why)
{
	log_warnx("%s: recycling the pool (generation %llu)", why,
	    (unsigned long long)m->generation + 1);
	m->reloading = 2;
	m->reload_start = now_ms();
	start_generation(m);
}

/* ---- resizing ---- */

static void
grow(struct master *m)
{
	if (m->target >= CONF_WORKERS_MAX) {
		log_notice("SIGTTIN: already at %d workers", CONF_WORKERS_MAX);
		return;
	}
	if (add_worker(m) == 0) {
		m->target++;
		log_notice("SIGTTIN: one worker more, now %u", m->target);
	}
}

static void
shrink(struct master *m)
{
	int i;

	if (m->target <= 1) {
		log_notice("SIGTTOU: already down to one worker");
		return;
	}
	for (i = (int)m->pool.nslots - 1; i >= 0; i--)
		if (current(m, (unsigned)i))
			break;
	if (i < 0)
		return;
	m->target--;
	log_notice("SIGTTOU: one worker fewer, now %u (worker %d drains)",
	    m->target, i);
	retire(m, (unsigned)i);
}

/* ---- the watchdog and its health probe ---- */

static void
start_probe(struct master *m, uint64_t now)
{
	struct sockaddr_storage ss;
	socklen_t sl;

	m->next_probe = now + m->wd_interval;
	if (m->probe.fd != -1 || m->nls == 0)
		return;
	if (probe_target(m->ls[0].fd, &ss, &sl) == -1 ||
	    probe_start(&m->probe, (struct sockaddr *)&ss, sl, now, m->epfd,
	    TAG_PROBE) == -1)
		log_warnx("health probe: %s", m->probe.err);
}

static void
probe_done(struct master *m, enum probe_result r)
{
	if (r == PROBE_PENDING)
		return;
	if (r == PROBE_OK) {
		if (m->wd_failures > 0)
			log_notice("health probe succeeded again");
		m->wd_failures = 0;
		if (!m->wd_stopped)
			notify_watchdog();
		return;
	}
	m->wd_failures++;
	log_err("health probe failed: %s", m->probe.err);
	/* Try again soon: the watchdog's deadline does not move. */
	m->next_probe = now_ms() + m->probe.sched.retry_ms;
	if (m->wd_failures == 1)
		recycle(m, "health probe failed");
	else if (!m->wd_stopped) {
		m->wd_stopped = 1;
		log_err("health probe failed again after recycling the pool: "
		    "no longer pinging the watchdog, so that systemd "
		    "restarts echod");
		notify_status("unhealthy: health probe failing; watchdog "
		    "pings stopped");
	}
}

/* ---- events ---- */

static void
on_signal(struct master *m, int sig)
{
	char name[16];

	snprintf(name, sizeof(name), "SIG%s", sigabbrev_np(sig));
	if (m->stopping && sig != SIGCHLD && sig != SIGTERM &&
	    sig != SIGINT && sig != SIGQUIT)
		return;
	switch (sig) {
	case SIGCHLD:
		reap(m);
		break;
	case SIGTERM:
	case SIGINT:
	case SIGQUIT:
		begin_stop(m, ECHOD_EXIT_OK, name);
		break;
	case SIGHUP:
		reload(m);
		break;
	case SIGUSR1:
		dump_scoreboard(m);
		break;
	case SIGTTIN:
		grow(m);
		break;
	case SIGTTOU:
		shrink(m);
		break;
	default:
		log_notice("%s ignored", name);
		break;
	}
}

static void
read_signals(struct master *m)
{
	struct signalfd_siginfo si;

	while (read(m->sigfd, &si, sizeof(si)) == sizeof(si))
		on_signal(m, (int)si.ssi_signo);
}

static void
read_status(struct master *m)
{
	struct worker_msg msg;

	while (read(m->status_rd, &msg, sizeof(msg)) == sizeof(msg)) {
		if (msg.slot >= m->pool.nslots ||
		    m->pool.slots[msg.slot].pid != (pid_t)msg.pid ||
		    msg.kind != WORKER_MSG_READY)
			continue; /* from a worker already gone */
		m->pool.slots[msg.slot].ready = 1;
	}
	check_ready(m);
	refresh_status(m);
}

static uint64_t
next_deadline(const struct master *m)
{
	uint64_t t = m->next_status, r = pool_next_respawn(&m->pool);

	if (r < t)
		t = r;
	if (m->next_hang_check < t)
		t = m->next_hang_check;
	if (m->stopping && m->stop_deadline < t)
		t = m->stop_deadline;
	if (m->wd_interval && m->up && !m->stopping && m->next_probe < t)
		t = m->next_probe;
	if (m->probe.fd != -1 && m->probe.deadline_ms < t)
		t = m->probe.deadline_ms;
	if (notify_retry_at() < t)
		t = notify_retry_at();
	return t;
}

static void
timers(struct master *m)
{
	uint64_t now = now_ms();

	if (m->stopping && now >= m->stop_deadline) {
		log_warnx("shutdown_timeout passed: killing the remaining "
		    "workers");
		signal_workers(m, SIGKILL);
		m->stop_deadline = UINT64_MAX;
	}
	kill_overdue(m, now);
	if (now >= m->next_hang_check)
		check_hung(m, now);
	if (!m->stopping)
		respawn_due(m);
	if (m->probe.fd != -1)
		probe_done(m, probe_expire(&m->probe, now));
	else if (m->wd_interval && m->up && !m->stopping &&
	    now >= m->next_probe)
		start_probe(m, now);
	if (now >= m->next_status)
		refresh_status(m);
	if (now >= notify_retry_at())
		notify_flush();
}

static void
loop(struct master *m)
{
	struct epoll_event evs[8];
	uint64_t t, now;
	int i, n;

	while (!m->stopping || pool_running(&m->pool) > 0) {
		t = next_deadline(m);
		now = now_ms();
		n = epoll_wait(m->epfd, evs, 8, t > now ? (int)(t - now) : 0);
		if (n == -1 && errno != EINTR)
			fatal(ECHOD_EXIT_OSERR, "epoll_wait");
		for (i = 0; i < n; i++) {
			if (evs[i].data.u32 == TAG_SIGNALS)
				read_signals(m);
			else if (evs[i].data.u32 == TAG_STATUS)
				read_status(m);
			else if (m->probe.fd != -1)
				probe_done(m, probe_event(&m->probe));
		}
		timers(m);
	}
}

/* ---- set-up ---- */

static void
on_sigchld(int sig)
{
	(void)sig;
}

/* Each worker needs a descriptor per connection plus a few of its own. */
static int
fit_nofile(const struct conf *c, size_t nlfds)
{
	rlim_t need = (rlim_t)c->max_connections + nlfds + 32;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return c->max_connections;
	if (rl.rlim_cur < need) {
		rl.rlim_cur = rl.rlim_max < need ? rl.rlim_max : need;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur >= need)
		return c->max_connections;
	log_warnx("RLIMIT_NOFILE is %llu (hard limit %llu): each worker will "
	    "hold at most %llu connections, not max_connections %d",
	    (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max,
	    (unsigned long long)(rl.rlim_cur - nlfds - 32), c->max_connections);
	return rl.rlim_cur > nlfds + 33 ? (int)(rl.rlim_cur - nlfds - 32) : 1;
}

static int
add_fd(int epfd, int fd, uint32_t tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = tag };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

static void
setup(struct master *m)
{
	struct sigaction sa;
	sigset_t set;
	int p[2];
	size_t i;

	/* A log reader that went away must not take the master with it. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	/*
	 * SIGCHLD only for children that ended, not stopped or continued.
	 * It is blocked and read from the signalfd, so the handler never
	 * runs; the flag is what matters.
	 */
	sa.sa_handler = on_sigchld;
	sa.sa_flags = SA_NOCLDSTOP;
	sigaction(SIGCHLD, &sa, NULL);
	sigemptyset(&set);
	for (i = 0; i < sizeof(master_signals) / sizeof(master_signals[0]); i++)
		sigaddset(&set, master_signals[i]);
	if (sigprocmask(SIG_BLOCK, &set, NULL) == -1 ||
	    (m->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) == -1)
		fatal(ECHOD_EXIT_OSERR, "signalfd");
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) == -1)
		fatal(ECHOD_EXIT_OSERR, "pipe2");
	m->status_rd = p[0];
	m->status_wr = p[1];
	if ((m->epfd = epoll_create1(EPOLL_CLOEXEC)) == -1 ||
	    add_fd(m->epfd, m->sigfd, TAG_SIGNALS) == -1 ||
	    add_fd(m->epfd, m->status_rd, TAG_STATUS) == -1)
		fatal(ECHOD_EXIT_OSERR, "epoll");
	if (scoreboard_create(&m->sb, MAX_SLOTS) == -1 ||
	    pool_init(&m->pool, MAX_SLOTS) == -1)
		fatal(ECHOD_EXIT_OSERR, "scoreboard");
	climit_init(&m->limits, MAX_SLOTS);
	if (climit_configure(&m->limits, m->conf->max_connections,
	    m->conf->max_connections_per_ip,
	    m->conf->max_connection_rate_per_ip) == -1)
		fatal(ECHOD_EXIT_OSERR, "per-client tables");
	srandom((unsigned)(getpid() ^ now_ms()));
	probe_init(&m->probe, notify_watchdog_usec());
	if (!sandbox_supported())
		log_notice("sandbox: off in this build (sanitizers)");
	if (m->probe.sched.clamped)
		log_warnx("systemd watchdog: WATCHDOG_USEC is under %d ms; "
		    "probing as if it were %d ms", PROBE_WATCHDOG_MIN_MS,
		    PROBE_WATCHDOG_MIN_MS);
	if ((m->wd_interval = m->probe.sched.every_ms) > 0)
		log_info("systemd watchdog: a health probe every %llu ms",
		    (unsigned long long)m->wd_interval);
}

int
master_run(struct conf *c, struct listener *ls, size_t nls,
    const struct master_opts *o)
{
	struct master m;
	size_t i;

	memset(&m, 0, sizeof(m));
	m.conf = c;
	m.opts = o;
	m.ready_fd = o->ready_fd;
	memcpy(m.ls, ls, nls * sizeof(*ls));
	m.nls = nls;
	setup(&m);
	m.wa = (struct worker_args){ .conf = c, .sb = &m.sb, .limits = &m.limits,
		.status_fd = m.status_wr, .master_pid = getpid(),
		.max_conns = fit_nofile(c, nls),
		.sandbox_needs = o->sandbox_needs };
	describe_listeners(&m);
	store_listeners(&m);
	m.target = (unsigned)c->workers;
	m.next_status = now_ms() + STATUS_INTERVAL_MS;
	start_generation(&m);
	loop(&m);
	log_notice("stopped: %llu connection(s) served",
	    (unsigned long long)m.served_by_dead);
	for (i = 0; i < m.nls; i++)
		close(m.ls[i].fd);
	probe_cancel(&m.probe);
	pool_free(&m.pool);
	scoreboard_destroy(&m.sb);
	climit_destroy(&m.limits);
	return m.exit_code;
}
