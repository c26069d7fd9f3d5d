/*
 * master: supervise the worker pool.
 *
 * One loop, one epoll set: a signalfd (every signal the master acts on is
 * blocked and read from it, so no work ever happens in a handler), the
 * status pipe on which workers say they are ready, and the health probe's
 * socket.  The wait's timeout is the nearest deadline: a delayed respawn,
 * a drain or stop deadline, the next hang check, probe or status refresh.
 *
 * Workers belong to a generation (generation.c: reload and recycle); the
 * slots they run in are spawned, reaped and timed in slots.c.  The
 * listening sockets stay open here the whole time, so a connection that
 * arrives while workers are being replaced waits in the kernel's accept
 * queue and is served, never refused.
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

#include "conn.h"
#include "exitcodes.h"
#include "climit.h"
#include "log.h"
#include "master_int.h"
#include "model.h"
#include "notify.h"
#include "sandbox.h"

#define TAG_SIGNALS 1
#define TAG_STATUS 2
#define TAG_PROBE 3

static const int master_signals[] = { SIGCHLD, SIGTERM, SIGINT, SIGHUP,
	SIGUSR1, SIGUSR2, SIGTTIN, SIGTTOU, SIGQUIT };

uint64_t
master_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- status ---- */

/* The serving generation's ready workers. */
static unsigned
ready_now(const struct master *m)
{
	unsigned ready, live;

	pool_count_gen(&m->pool, m->serving.id, &ready, &live);
	return ready;
}

/*
 * STATUS= at most once per STATUS_INTERVAL_MS, and only when it changed:
 * sd_notify() is a blocking send, and a crash loop must not turn into a
 * flood of datagrams that a busy manager's queue cannot take.
 */
void
master_refresh_status(struct master *m)
{
	struct sb_totals t;
	uint64_t now = master_now();
	char s[1400];

	scoreboard_totals(&m->sb, &t);
	snprintf(s, sizeof(s), "%u/%u workers ready, %llu connections open, "
	    "%llu served, %llu restarts; listening on %s",
	    ready_now(m), m->serving.target, (unsigned long long)t.conns_open,
	    (unsigned long long)t.conns_served +
	    (unsigned long long)m->served_by_dead,
	    (unsigned long long)t.restarts, m->serving.addrs);
	if (now < m->next_status)
		return; /* the timer comes back for it */
	m->next_status = now + STATUS_INTERVAL_MS;
	if (strcmp(s, m->last_status) == 0)
		return;
	if (m->ready_sent && !m->stopping)
		notify_status(s);
	snprintf(m->last_status, sizeof(m->last_status), "%s", s);
}

/* The worker's own word, unless the master knows better. */
static const char *
pool_state_name(enum pool_slot_state ps, uint64_t state)
{
	static const char *const names[] = { "empty", "starting", "ready",
		"draining" };

	if (ps == POOL_SLOT_WAITING)
		return "waiting";
	if (ps == POOL_SLOT_ABORTING)
		return "aborting";
	if (ps == POOL_SLOT_KILLED)
		return "killed";
	return state < 4 ? names[state] : "?";
}

static void
dump_scoreboard(struct master *m)
{
	const struct sb_slot *s;
	uint64_t now = master_now();
	unsigned i, ready, live;
	struct sb_client sc;
	char client[CONN_PEER_MAX];

	log_notice("scoreboard: generation %llu, %u/%u workers ready",
	    (unsigned long long)m->serving.id, ready_now(m),
	    m->serving.target);
	if (m->pending.id != 0) {
		pool_count_gen(&m->pool, m->pending.id, &ready, &live);
		log_notice("scoreboard: generation %llu starting, %u/%u "
		    "workers ready", (unsigned long long)m->pending.id, ready,
		    m->pending.target);
	}
	log_notice("slot pid      gen state     up(s)  open     served"
	    "     bytes-in    bytes-out restarts sandbox  proxied px-closed "
	    "last-client");
	for (i = 0; i < m->sb.nslots; i++) {
		s = &m->sb.slots[i];
		if (sb_load(&s->state) == SB_EMPTY &&
		    m->pool.slots[i].state != POOL_SLOT_WAITING)
			continue;
		if (sb_client_load(s, &sc))
			conn_format_client(&sc, client, sizeof(client));
		else
			snprintf(client, sizeof(client), "-");
		log_notice("%4u %-8lld %3llu %-8s %6llu %5llu %10llu %12llu "
		    "%12llu %8llu %-8s %8llu %9llu %s", i, (long long)s->pid,
		    (unsigned long long)sb_load(&s->generation),
		    pool_state_name(m->pool.slots[i].state, sb_load(&s->state)),
		    (unsigned long long)(now - sb_load(&s->started_ms)) / 1000,
		    (unsigned long long)sb_load(&s->conns_open),
		    (unsigned long long)sb_delta(&s->conns_served,
		    &s->base_served),
		    (unsigned long long)sb_delta(&s->bytes_in, &s->base_in),
		    (unsigned long long)sb_delta(&s->bytes_out, &s->base_out),
		    (unsigned long long)sb_load(&s->restarts),
		    sandbox_state_name((int)sb_load(&s->sandbox)),
		    (unsigned long long)sb_delta(&s->proxied, &s->base_proxied),
		    (unsigned long long)sb_delta(&s->proxy_closed,
		    &s->base_proxy_closed), client);
	}
}

/* ---- stopping ---- */

/* Close g's listeners that the new worker does not serve. */
static void
close_others(const struct master *m, const struct gen *g)
{
	size_t i, j;

	for (i = 0; i < g->nls; i++) {
		for (j = 0; j < m->wa.nlfds; j++)
			if (m->wa.lfds[j] == g->ls[i].fd)
				break;
		if (j == m->wa.nlfds)
			close(g->ls[i].fd);
	}
}

/*
 * In a new worker, before worker_main: what only the master holds.  A
 * listener of the other generation too, or it would go on listening in
 * this worker after the master closed it.
 */
void
master_child_close(struct master *m)
{
	close_others(m, &m->serving);
	if (m->pending.id != 0)
		close_others(m, &m->pending);
	close(m->epfd);
	close(m->sigfd);
	close(m->status_rd);
	probe_cancel(&m->probe);
	if (m->ready_fd != -1)
		close(m->ready_fd);
	if (m->opts->pidfile_fd != -1)
		close(m->opts->pidfile_fd);
	if (m->md.lfd != -1)
		close(m->md.lfd);
}

void
master_stop(struct master *m, int code, const char *why)
{
	struct sb_totals t;
	unsigned i;

	if (m->stopping) {
		log_notice("%s again: stopping now", why);
		slots_signal(m, SIGKILL);
		upgrade_signal_old(SIGKILL);
		return;
	}
	m->stopping = 1;
	m->exit_code = code;
	probe_cancel(&m->probe);
	gen_stop(m);
	/* Stop accepting: workers close their copies as they drain. */
	for (i = 0; i < m->serving.nls; i++)
		close(m->serving.ls[i].fd);
	m->serving.nls = 0;
	scoreboard_totals(&m->sb, &t);
	log_notice("%s: stopping; waiting up to %d s for %llu open "
	    "connection(s) (signal again to stop at once)", why,
	    m->conf->shutdown_timeout, (unsigned long long)t.conns_open);
	if (code == ECHOD_EXIT_OK)
		notify_stopping("stopping");
	for (i = 0; i < m->pool.nslots; i++)
		slots_retire(m, i);
	metricsd_signal(m, SIGTERM);
	upgrade_signal_old(SIGTERM); /* an upgrade's, if not told yet */
	m->stop_deadline = master_now() +
	    (uint64_t)m->conf->shutdown_timeout * 1000 + KILL_GRACE_MS;
}

/* ---- resizing ---- */

static void
grow(struct master *m)
{
	if (m->serving.target >= CONF_WORKERS_MAX) {
		log_notice("SIGTTIN: already at %d workers", CONF_WORKERS_MAX);
		return;
	}
	gen_grow(m);
	log_notice("SIGTTIN: one worker more, now %u", m->serving.target);
}

static void
shrink(struct master *m)
{
	const struct pool_slot *ps;
	int i;

	if (m->serving.target <= 1) {
		log_notice("SIGTTOU: already down to one worker");
		return;
	}
	for (i = (int)m->pool.nslots - 1; i >= 0; i--) {
		ps = &m->pool.slots[i];
		if (ps->generation == m->serving.id &&
		    (ps->state == POOL_SLOT_STARTING ||
		    ps->state == POOL_SLOT_READY ||
		    ps->state == POOL_SLOT_WAITING))
			break;
	}
	if (i < 0)
		return;
	m->serving.target--;
	log_notice("SIGTTOU: one worker fewer, now %u (worker %d drains)",
	    m->serving.target, i);
	slots_retire(m, (unsigned)i);
}

/* ---- the watchdog and its health probe ---- */

/* Is every ready worker of the serving generation at its capacity? */
static int
pool_full(const struct master *m)
{
	unsigned cap = model_capacity(m->conf->model, m->serving.max_conns,
	    m->conf->threads);
	unsigned i, ready = 0, full = 0;

	for (i = 0; i < m->sb.nslots; i++) {
		if (m->pool.slots[i].state != POOL_SLOT_READY ||
		    m->pool.slots[i].generation != m->serving.id)
			continue;
		ready++;
		if (sb_load(&m->sb.slots[i].conns_open) >= cap)
			full++;
	}
	return probe_skip_when_full(ready, full);
}

static void
start_probe(struct master *m, uint64_t now)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	size_t li;

	m->next_probe = now + m->wd_interval;
	if (m->probe.fd != -1 || m->serving.nls == 0)
		return;
	if (pool_full(m)) {
		sb_count(&m->sb.hdr->probes[SB_PROBE_SKIPPED]);
		log_debug("health probe skipped: every worker is at its "
		    "capacity; the heartbeats say they are alive");
		if (!m->wd_stopped)
			notify_watchdog();
		return;
	}
	/* A plain listener if there is one; else a proxied one, with a
	 * LOCAL header (its own address must then be in proxy_trusted). */
	li = m->serving.probe_ls >= 0 ? (size_t)m->serving.probe_ls : 0;
	m->probe.proxied = m->serving.ls[li].proxy;
	if (probe_target(m->serving.ls[li].fd, &ss, &sl) == -1 ||
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
		sb_count(&m->sb.hdr->probes[SB_PROBE_OK]);
		if (m->wd_failures > 0)
			log_notice("health probe succeeded again");
		m->wd_failures = 0;
		if (!m->wd_stopped)
			notify_watchdog();
		return;
	}
	if (pool_full(m)) {
		/* It waited behind clients that filled the pool meanwhile. */
		sb_count(&m->sb.hdr->probes[SB_PROBE_SKIPPED]);
		log_debug("health probe not answered: every worker is at its "
		    "capacity; the heartbeats say they are alive");
		if (!m->wd_stopped)
			notify_watchdog();
		return;
	}
	m->wd_failures++;
	sb_count(&m->sb.hdr->probes[SB_PROBE_FAILED]);
	log_err("health probe failed: %s", m->probe.err);
	/* Try again soon: the watchdog's deadline does not move. */
	m->next_probe = master_now() + m->probe.sched.retry_ms;
	if (m->wd_failures == 1)
		gen_recycle(m, "health probe failed");
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
		slots_reap(m);
		break;
	case SIGTERM:
	case SIGINT:
	case SIGQUIT:
		master_stop(m, ECHOD_EXIT_OK, name);
		break;
	case SIGHUP:
		gen_on_hup(m);
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
	case SIGUSR2:
		upgrade_start(m);
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
	struct pool_slot *ps;
	struct worker_msg msg;

	while (read(m->status_rd, &msg, sizeof(msg)) == sizeof(msg)) {
		if (msg.slot >= m->pool.nslots ||
		    msg.kind != WORKER_MSG_READY)
			continue;
		ps = &m->pool.slots[msg.slot];
		if (ps->pid != (pid_t)msg.pid ||
		    ps->state != POOL_SLOT_STARTING)
			continue; /* from a worker already gone or retired */
		ps->state = POOL_SLOT_READY;
	}
	gen_check(m);
	master_refresh_status(m);
}

static uint64_t
next_deadline(const struct master *m)
{
	uint64_t t = m->next_status, r = gen_deadline(m);

	if (r < t)
		t = r;
	if (m->next_timer < t)
		t = m->next_timer;
	if (m->stopping && m->stop_deadline < t)
		t = m->stop_deadline;
	if (m->wd_interval && m->up && !m->stopping && m->next_probe < t)
		t = m->next_probe;
	if (m->probe.fd != -1 && m->probe.deadline_ms < t)
		t = m->probe.deadline_ms;
	if (notify_retry_at() < t)
		t = notify_retry_at();
	if (metricsd_due(m) < t)
		t = metricsd_due(m);
	return t;
}

/* The serving generation, for /metrics: three stores a loop turn. */
static void
publish_gauges(struct master *m)
{
	sb_store(&m->sb.hdr->generation, m->serving.id);
	sb_store(&m->sb.hdr->target, m->serving.target);
	sb_store(&m->sb.hdr->model, (uint64_t)m->conf->model);
}

static void
timers(struct master *m)
{
	uint64_t now = master_now();

	if (m->stopping && now >= m->stop_deadline) {
		log_warnx("shutdown_timeout passed: killing the remaining "
		    "workers");
		slots_signal(m, SIGKILL);
		upgrade_signal_old(SIGKILL);
		m->stop_deadline = UINT64_MAX;
	}
	m->next_timer = slots_timers(m, now);
	metricsd_timer(m, now);
	publish_gauges(m);
	if (!m->stopping)
		gen_check(m);
	if (m->probe.fd != -1)
		probe_done(m, probe_expire(&m->probe, now));
	else if (m->wd_interval && m->up && !m->stopping &&
	    now >= m->next_probe)
		start_probe(m, now);
	if (now >= m->next_status)
		master_refresh_status(m);
	if (now >= notify_retry_at())
		notify_flush();
}

static void
loop(struct master *m)
{
	struct epoll_event evs[8];
	uint64_t t, now;
	int i, n;

	while (!m->stopping || pool_running(&m->pool) > 0 || m->md.pid > 0 ||
	    upgrade_old_left() > 0) {
		t = next_deadline(m);
		now = master_now();
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
	srandom((unsigned)(getpid() ^ master_now()));
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
	setup(&m);
	m.wa = (struct worker_args){ .conf = c, .sb = &m.sb, .limits = &m.limits,
		.status_fd = m.status_wr, .master_pid = getpid(),
		.sandbox_needs = o->sandbox_needs };
	m.next_status = master_now() + STATUS_INTERVAL_MS;
	sb_store(&m.sb.hdr->start_time_s, (uint64_t)time(NULL));
	upgrade_carry(&m.sb); /* after an upgrade: the old image's counts */
	metricsd_open(&m);
	gen_first(&m, ls, nls);
	publish_gauges(&m);
	metricsd_spawn(&m);
	loop(&m);
	log_notice("stopped: %llu connection(s) served",
	    (unsigned long long)m.served_by_dead);
	for (i = 0; i < m.serving.nls; i++)
		close(m.serving.ls[i].fd);
	probe_cancel(&m.probe);
	if (m.md.lfd != -1)
		close(m.md.lfd);
	pool_free(&m.pool);
	scoreboard_destroy(&m.sb);
	climit_destroy(&m.limits);
	return m.exit_code;
}
