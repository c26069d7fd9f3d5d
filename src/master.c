/*
 * master: supervise the worker pool.
 *
 * One loop, one epoll set: a signalfd (every signal the master acts on is
 * blocked and read from it, so no work ever happens in a handler) and the
 * status pipe on which workers say they are ready.  The wait's timeout is
 * the nearest deadline: a delayed respawn, the stop deadline, the next
 * status refresh.  The listening sockets stay open here the whole time, so
 * a connection that arrives while a worker is being replaced waits in the
 * kernel's accept queue and is served, never refused.
 *
 * Never serves a client byte, never blocks but in epoll_wait.
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "exitcodes.h"
#include "log.h"
#include "master.h"
#include "notify.h"
#include "pool.h"
#include "scoreboard.h"
#include "worker.h"

#define STATUS_INTERVAL_MS 2000
#define KILL_GRACE_MS 1000 /* after shutdown_timeout, before SIGKILL */
#define TAG_SIGNALS 1
#define TAG_STATUS 2

struct master {
	const struct conf *conf;
	int *lfds;
	size_t nlfds;
	const char *addrs;
	struct pool pool;
	struct scoreboard sb;
	struct worker_args wa;
	int epfd, sigfd, status_rd, status_wr;
	int max_conns;
	int ready_sent;
	int stopping;
	int exit_code;
	uint64_t stop_deadline;
	uint64_t next_status;
	uint64_t served_by_dead; /* connections served by reaped workers */
	char last_status[256];
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

/* ---- status ---- */

static void
refresh_status(struct master *m, int force)
{
	struct sb_totals t;
	char s[256];

	scoreboard_totals(&m->sb, &t);
	snprintf(s, sizeof(s), "%u/%u workers ready, %llu connections open, "
	    "%llu served, %llu restarts; listening on %s", t.ready,
	    m->conf->workers, (unsigned long long)t.conns_open,
	    (unsigned long long)(t.conns_served + m->served_by_dead),
	    (unsigned long long)t.restarts, m->addrs);
	if (force || strcmp(s, m->last_status) != 0)
		notify_status(s);
	snprintf(m->last_status, sizeof(m->last_status), "%s", s);
	m->next_status = now_ms() + STATUS_INTERVAL_MS;
}

static void
dump_scoreboard(struct master *m)
{
	const struct sb_slot *s;
	uint64_t now = now_ms();
	unsigned i;

	log_notice("slot pid      state    up(s)  open   served     bytes-in"
	    "    bytes-out restarts");
	for (i = 0; i < m->sb.nslots; i++) {
		s = &m->sb.slots[i];
		log_notice("%4u %-8lld %-8s %6llu %5llu %8llu %12llu %12llu %8llu",
		    i, (long long)sb_load((const uint64_t *)&s->pid),
		    (const char *[]){ "empty", "starting", "ready",
		    "draining" }[sb_load(&s->state) & 3],
		    sb_load(&s->state) == SB_EMPTY ? 0ULL :
		    (unsigned long long)(now - sb_load(&s->started_ms)) / 1000,
		    (unsigned long long)sb_load(&s->conns_open),
		    (unsigned long long)sb_load(&s->conns_served),
		    (unsigned long long)sb_load(&s->bytes_in),
		    (unsigned long long)sb_load(&s->bytes_out),
		    (unsigned long long)sb_load(&s->restarts));
	}
}

/* ---- spawning ---- */

static void
spawn(struct master *m, unsigned i)
{
	struct pool_slot *ps = &m->pool.slots[i];
	struct sb_slot *s = &m->sb.slots[i];
	pid_t pid;

	memset(s, 0, offsetof(struct sb_slot, restarts));
	sb_store(&s->state, SB_STARTING);
	sb_store(&s->started_ms, now_ms());
	m->wa.slot = i;
	if ((pid = fork()) == -1) {
		log_warn("fork for worker %u; trying again in 1 s", i);
		sb_store(&s->state, SB_EMPTY);
		ps->state = POOL_SLOT_WAITING;
		ps->respawn_at_ms = now_ms() + 1000;
		return;
	}
	if (pid == 0) {
		close(m->epfd);
		close(m->sigfd);
		close(m->status_rd);
		worker_main(&m->wa);
	}
	sb_store((uint64_t *)&s->pid, (uint64_t)pid);
	ps->state = POOL_SLOT_RUNNING;
	ps->pid = pid;
	ps->started_ms = now_ms();
	ps->ready = 0;
	log_debug("worker %u started, pid %d", i, (int)pid);
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

/* ---- stopping ---- */

static void
signal_workers(struct master *m, int sig)
{
	unsigned i;

	for (i = 0; i < m->pool.nslots; i++)
		if (m->pool.slots[i].state == POOL_SLOT_RUNNING)
			kill(m->pool.slots[i].pid, sig);
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
	/* Stop accepting: workers close their copies as they drain. */
	for (i = 0; i < m->nlfds; i++)
		close(m->lfds[i]);
	for (i = 0; i < m->pool.nslots; i++)
		if (m->pool.slots[i].state == POOL_SLOT_WAITING)
			m->pool.slots[i].state = POOL_SLOT_EMPTY;
	scoreboard_totals(&m->sb, &t);
	log_notice("%s: stopping; waiting up to %d s for %llu open "
	    "connection(s) (signal again to stop at once)", why,
	    m->conf->shutdown_timeout, (unsigned long long)t.conns_open);
	notify_stopping("stopping");
	signal_workers(m, SIGTERM);
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
		log_err("%s; workers keep dying early (more than %u in %llu s, "
		    "or one slot at its %llu s back-off): giving up", what,
		    m->pool.policy.budget,
		    (unsigned long long)m->pool.policy.budget_window_ms / 1000,
		    (unsigned long long)m->pool.policy.backoff_max_ms / 1000);
		ps->state = POOL_SLOT_EMPTY;
		notify_failure(0, "giving up: workers keep dying early");
		begin_stop(m, ECHOD_EXIT_FAILURE, "crash loop");
		break;
	}
}

static void
reaped(struct master *m, pid_t pid, int st)
{
	struct pool_exit e;
	struct sb_slot *s;
	char how[128], what[256];
	int i;

	if ((i = pool_find(&m->pool, pid)) == -1) {
		log_info("reaped unknown child %d", (int)pid);
		return;
	}
	s = &m->sb.slots[i];
	e.uptime_ms = now_ms() - m->pool.slots[i].started_ms;
	e.served = sb_load(&s->conns_served);
	e.fatal = WIFEXITED(st) && WEXITSTATUS(st) == ECHOD_EXIT_WORKER_FATAL;
	m->served_by_dead += e.served;
	sb_store(&s->state, SB_EMPTY);
	sb_store((uint64_t *)&s->pid, 0);
	describe_exit(st, how, sizeof(how));
	snprintf(what, sizeof(what), "worker %d (pid %d) %s after %.1f s, "
	    "%llu connection(s) served", i, (int)pid, how,
	    (double)e.uptime_ms / 1000.0, (unsigned long long)e.served);
	m->pool.slots[i].state = POOL_SLOT_EMPTY;
	if (m->stopping) {
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			log_info("%s", what);
		else
			log_warnx("%s", what);
		return;
	}
	act_on_exit(m, (unsigned)i, &e, what);
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
	if (!m->stopping && pool_running(&m->pool) == 0 &&
	    pool_next_respawn(&m->pool) == UINT64_MAX)
		begin_stop(m, ECHOD_EXIT_FAILURE, "no worker left");
	else
		refresh_status(m, 0);
}

/* ---- events ---- */

static void
on_signal(struct master *m, int sig)
{
	char name[16];

	snprintf(name, sizeof(name), "SIG%s", sigabbrev_np(sig));
	switch (sig) {
	case SIGCHLD:
		reap(m);
		break;
	case SIGTERM:
	case SIGINT:
	case SIGQUIT:
		begin_stop(m, ECHOD_EXIT_OK, name);
		break;
	case SIGUSR1:
		dump_scoreboard(m);
		break;
	default:
		log_notice("%s ignored: not supported by this version", name);
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
check_ready(struct master *m)
{
	char s[256];

	if (m->ready_sent || m->stopping)
		return;
	for (unsigned i = 0; i < m->pool.nslots; i++)
		if (!m->pool.slots[i].ready)
			return;
	m->ready_sent = 1;
	snprintf(s, sizeof(s), "ready: %u workers, listening on %s",
	    m->pool.nslots, m->addrs);
	log_notice("%s", s);
	notify_ready(s);
	snprintf(m->last_status, sizeof(m->last_status), "%s", s);
	m->next_status = now_ms() + STATUS_INTERVAL_MS;
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
}

static int
next_timeout(const struct master *m)
{
	uint64_t now = now_ms(), t = m->next_status;
	uint64_t r = pool_next_respawn(&m->pool);

	if (r < t)
		t = r;
	if (m->stopping && m->stop_deadline < t)
		t = m->stop_deadline;
	return t > now ? (int)(t - now) : 0;
}

static void
loop(struct master *m)
{
	struct epoll_event evs[4];
	int i, n;

	while (!m->stopping || pool_running(&m->pool) > 0) {
		n = epoll_wait(m->epfd, evs, 4, next_timeout(m));
		if (n == -1 && errno != EINTR)
			fatal(ECHOD_EXIT_OSERR, "epoll_wait");
		for (i = 0; i < n; i++) {
			if (evs[i].data.u32 == TAG_SIGNALS)
				read_signals(m);
			else
				read_status(m);
		}
		if (m->stopping && now_ms() >= m->stop_deadline) {
			log_warnx("shutdown_timeout passed: killing the "
			    "remaining workers");
			signal_workers(m, SIGKILL);
			m->stop_deadline = UINT64_MAX;
		}
		if (!m->stopping)
			respawn_due(m);
		if (now_ms() >= m->next_status)
			refresh_status(m, 0);
	}
}

/* ---- set-up ---- */

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
	if (scoreboard_create(&m->sb, (unsigned)m->conf->workers) == -1 ||
	    pool_init(&m->pool, (unsigned)m->conf->workers) == -1)
		fatal(ECHOD_EXIT_OSERR, "scoreboard");
	srandom((unsigned)(getpid() ^ now_ms()));
}

int
master_run(const struct conf *c, int *lfds, size_t nlfds, const char *addrs)
{
	struct master m;
	unsigned i;

	memset(&m, 0, sizeof(m));
	m.conf = c;
	m.lfds = lfds;
	m.nlfds = nlfds;
	m.addrs = addrs;
	m.max_conns = fit_nofile(c, nlfds);
	setup(&m);
	m.wa = (struct worker_args){ .conf = c, .lfds = lfds, .nlfds = nlfds,
		.sb = &m.sb, .status_fd = m.status_wr, .master_pid = getpid(),
		.max_conns = m.max_conns };
	for (i = 0; i < m.pool.nslots; i++)
		spawn(&m, i);
	m.next_status = now_ms() + STATUS_INTERVAL_MS;
	loop(&m);
	log_notice("stopped: %llu connection(s) served",
	    (unsigned long long)m.served_by_dead);
	pool_free(&m.pool);
	scoreboard_destroy(&m.sb);
	return m.exit_code;
}
