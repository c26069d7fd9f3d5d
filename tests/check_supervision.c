/*
 * check_supervision: the master as a supervisor, driven from outside.
 *
 * Starts the real echod (harness.h), kills workers and the master with
 * signals, and checks what the master does about it: replacement in the
 * same slot, back-off, giving up, graceful and forced stops.  Waits are
 * polls with deadlines; nothing sleeps to synchronise.
 *
 * Check runs each test in a forked child and _exit()s it on the first
 * failed ck_assert, skipping any checked teardown, so these tests record
 * the first failure (REQUIRE), clean up every daemon and helper process
 * by pid, and only then assert.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "exitcodes.h"
#include "clients.h"
#include "harness.h"
#include "procfs.h"
#include "scenarios.h"
#include "suites.h"

#define START_MS 5000
#define MAX_SEEN 256

/* ---- recording failures so that cleanup always runs ---- */

static void
short_pause(void)
{
	struct timespec ts = { 0, 500 * 1000 };

	nanosleep(&ts, NULL);
}

/* The server model of the scenarios (scenarios.h); NULL: events. */
static const char *model;

/* Under the current model; max_conns is also thread-pool's threads. */
static void
conf_make(char *buf, size_t len, int workers, int max_conns,
    int shutdown_timeout, const char *level)
{
	char base[256];
	size_t n;

	n = (size_t)snprintf(base, sizeof(base), "listen = { \"127.0.0.1:0\" "
	    "}\nworkers = %d\nshutdown_timeout = %d\nlog_level = %s\n",
	    workers, shutdown_timeout, level);
	if (max_conns > 0 && n < sizeof(base))
		snprintf(base + n, sizeof(base) - n, "max_connections = %d\n",
		    max_conns);
	if (h_conf_model(buf, len, base, model, max_conns) == NULL)
		snprintf(buf, len, "# does not fit\n");
}

/* ---- the log ---- */

/* The whole log, for tests that walk it line by line. */
static char logbuf[1 << 20];

/* ---- processes ---- */

/* Like h_wait_worker, polling every half millisecond: for timings. */
static pid_t
wait_worker_fast(struct echod_proc *p, unsigned slot, pid_t old,
    int timeout_ms)
{
	long long deadline = h_now_ms() + timeout_ms;
	pid_t pid;

	do {
		h_drain_notify(p);
		pid = h_worker_pid(p->pid, slot);
		if (pid > 0 && pid != old)
			return pid;
		short_pause();
	} while (h_now_ms() < deadline);
	return -1;
}

static int
seen_add(pid_t *seen, int n, pid_t pid)
{
	int i;

	for (i = 0; i < n; i++)
		if (seen[i] == pid)
			return n;
	if (n < MAX_SEEN)
		seen[n++] = pid;
	return n;
}

/* ---- 1. a killed worker is replaced in its slot, nothing refused ---- */

/* Wait until pid is dead (a zombie counts: nobody reaps a stopped master). */
static int
wait_dead(pid_t pid, int timeout_ms)
{
	return cl_wait_gone(NULL, &pid, 1, timeout_ms) == 0;
}

/*
 * Two workers with max_connections = 1: connection A fills one worker (X),
 * so connection B must land on the other (Y); both placements are checked
 * in /proc.  Then:
 *  1. Y is SIGKILLed; a prober (connect, echo, close) runs from the kill
 *     on, through the replacement and after; the latency from kill to the
 *     new titled pid in slot Y is measured.  Every probe can only be
 *     served by slot Y (X is full), so Y's replacement served them all.
 *  2. The window, held open: the master is SIGSTOPped, Y's replacement is
 *     SIGKILLed, and a connection made now can only wait in the accept
 *     queue.  After SIGCONT the next replacement must serve it.
 * A keeps echoing throughout; X is never restarted.
 */
/* kill_worker_replaced's state, shared by its steps. */
struct kw {
	struct echod_proc p;
	struct cl_child pr;
	struct cl_probe probe;
	struct cl_probe_res res;
	int a, b, c1, x, y, stopped;
	pid_t xpid, vpid, npid;
};

/*
 * Wait until worker w has no child left, reaped (a zombie still counts):
 * under process-per-connection a connection ends with its child, and
 * only the reaped child is counted as served.  Events has none.
 */
static int
kw_children_reaped(pid_t w, int timeout_ms)
{
	long long deadline = h_now_ms() + timeout_ms;
	struct pf_stat st;
	struct dirent *de;
	int found;
	DIR *d;

	do {
		if ((d = opendir("/proc")) == NULL)
			return 0;
		found = 0;
		while (!found && (de = readdir(d)) != NULL)
			found = atoi(de->d_name) > 0 &&
			    pf_stat(atoi(de->d_name), &st) == 0 &&
			    st.ppid == w;
		closedir(d);
		if (!found)
			return 1;
		h_poll_pause();
	} while (h_now_ms() < deadline);
	return 0;
}

/* A on one worker (X), B on the other (Y), both seen in /proc. */
static int
kw_place(struct tres *t, struct kw *k)
{
	char conf[256];

	conf_make(conf, sizeof(conf), 2, 1, 2, "info");
	REQUIRE(t, h_start(&k->p, conf, NULL, START_MS) == 0, "start failed");
	REQUIRE(t, (k->a = h_connect(k->p.port, 0)) != -1, "connect A: %s",
	    strerror(errno));
	REQUIRE(t, cl_echo(k->a, "abc", 2000), "A: abc not echoed");
	REQUIRE(t, cl_owner(k->p.pid, 2, k->p.port, k->a, &k->x) != -1,
	    "no worker holds A (checked /proc/net/tcp and /proc/PID/fd)");
	REQUIRE(t, (k->b = h_connect(k->p.port, 0)) != -1, "connect B: %s",
	    strerror(errno));
	REQUIRE(t, cl_echo(k->b, "xyz", 2000), "B: xyz not echoed");
	k->y = -1;
	cl_owner(k->p.pid, 2, k->p.port, k->b, &k->y);
	REQUIRE(t, k->y == 1 - k->x, "B is on slot %d, A on %d: a full worker "
	    "(max_connections = 1) accepted another connection", k->y, k->x);
	/* B's EOF round trip: Y has published its served count since. */
	shutdown(k->b, SHUT_WR);
	REQUIRE(t, h_expect_eof(k->b, 2000), "B: no EOF after half-close");
	close(k->b);
	k->b = -1;
	k->xpid = h_worker_pid(k->p.pid, (unsigned)k->x);
	k->vpid = h_worker_pid(k->p.pid, (unsigned)k->y);
	REQUIRE(t, k->xpid > 0 && k->vpid > 0, "worker pids %d %d",
	    (int)k->xpid, (int)k->vpid);
	REQUIRE(t, kw_children_reaped(k->vpid, 2000), "worker %d has not "
	    "reaped B's child 2 s after B ended", k->y);
out:
	return !t->failed;
}

/* 1. Kill Y with a prober running; time the replacement. */
static int
kw_kill_with_prober(struct tres *t, struct kw *k)
{
	struct cl_probe_res *res = &k->res;
	char want[256], line[512], err[256];
	long long t0, t1;

	t0 = cl_now_us();
	REQUIRE(t, kill(k->vpid, SIGKILL) == 0, "kill: %s", strerror(errno));
	REQUIRE(t, cl_prober_start(&k->pr, &k->probe) == 0, "fork prober");
	k->npid = wait_worker_fast(&k->p, (unsigned)k->y, k->vpid, 1000);
	t1 = cl_now_us();
	REQUIRE(t, k->npid > 0, "slot %d not replaced within 1 s (master %s)",
	    k->y, h_alive(k->p.pid) ? "alive" : "gone");
	printf("supervision: worker %d (pid %d) SIGKILLed, replaced by pid "
	    "%d in %.2f ms (kill to new titled pid)\n", k->y, (int)k->vpid,
	    (int)k->npid, (double)(t1 - t0) / 1000.0);
	fflush(stdout);
	REQUIRE(t, cl_echo(k->a, "def", 2000), "A stopped echoing after the "
	    "other worker was killed");
	REQUIRE(t, cl_prober_finish(&k->pr, NULL, res) == 0,
	    "no result from prober");
	printf("supervision: prober: %d connections, %d echoed, %d refused, "
	    "%d failed, %d wrong\n", res->iters, res->ok, res->refused,
	    res->failed, res->wrong);
	fflush(stdout);
	REQUIRE(t, cl_probe_clean(res, 20, err, sizeof(err)), "%s", err);
	snprintf(want, sizeof(want), "worker %d (pid %d) killed by signal 9 "
	    "(Killed) after ", k->y, (int)k->vpid);
	REQUIRE(t, cl_log_wait(&k->p, want, 1, 1000), "no log line '%s...'",
	    want);
	cl_log_line(&k->p, want, line, sizeof(line));
	REQUIRE(t, strstr(line, " s, 1 connection(s) served; replacing it "
	    "now") != NULL, "log line: %s", line);
out:
	return !t->failed;
}

/* 2. Hold the window open: no master to respawn, no Y to accept. */
static int
kw_window(struct tres *t, struct kw *k)
{
	char want[256], line[512], buf[8];
	pid_t n2pid;

	REQUIRE(t, kw_children_reaped(k->npid, 2000), "worker %d has not "
	    "reaped the probes' children 2 s after the last", k->y);
	REQUIRE(t, kill(k->p.pid, SIGSTOP) == 0, "SIGSTOP: %s",
	    strerror(errno));
	k->stopped = 1;
	REQUIRE(t, pf_wait_stopped(k->p.pid, 1, 2000), "master not stopped");
	REQUIRE(t, kill(k->npid, SIGKILL) == 0, "kill: %s", strerror(errno));
	REQUIRE(t, wait_dead(k->npid, 2000), "worker %d survived SIGKILL",
	    (int)k->npid);
	REQUIRE(t, (k->c1 = h_connect(k->p.port, 0)) != -1,
	    "connect while slot %d is empty: %s", k->y, strerror(errno));
	REQUIRE(t, h_write_all(k->c1, "window\n", 7) == 0, "write c1");
	REQUIRE(t, h_worker_pid(k->p.pid, (unsigned)k->y) == -1,
	    "slot %d has a live worker while the master is stopped", k->y);
	REQUIRE(t, kill(k->p.pid, SIGCONT) == 0, "SIGCONT: %s",
	    strerror(errno));
	k->stopped = 0;
	n2pid = wait_worker_fast(&k->p, (unsigned)k->y, k->npid, 1000);
	REQUIRE(t, n2pid > 0, "slot %d not replaced again within 1 s", k->y);
	REQUIRE(t, h_read_exact(k->c1, buf, 7, 3000) == 7 &&
	    memcmp(buf, "WINDOW\n", 7) == 0,
	    "a connection made while slot %d was empty was not served", k->y);
	close(k->c1);
	k->c1 = -1;
	snprintf(want, sizeof(want), "worker %d (pid %d) killed by signal 9 "
	    "(Killed) after ", k->y, (int)k->npid);
	REQUIRE(t, cl_log_wait(&k->p, want, 1, 1000), "no log line '%s...'",
	    want);
	cl_log_line(&k->p, want, line, sizeof(line));
	snprintf(want, sizeof(want), " s, %d connection(s) served; replacing "
	    "it now", k->res.ok);
	REQUIRE(t, strstr(line, want) != NULL, "log line: %s; want '%s' "
	    "(the prober's connections)", line, want);
out:
	return !t->failed;
}

void
supervision_killed_under_load(const char *m)
{
	static struct kw k;
	struct tres t = { 0, "" };
	struct cl_child pr0 = CL_CHILD_INIT;

	model = m;
	memset(&k, 0, sizeof(k));
	cl_proc_init(&k.p);
	k.pr = pr0;
	k.a = k.b = k.c1 = -1;
	k.probe.text = "hello, world";
	k.probe.echo_ms = 3000;
	k.probe.run_ms = 6000;
	k.probe.max_iters = 5000;
	if (!kw_place(&t, &k))
		goto out;
	k.probe.port = k.p.port;
	if (!kw_kill_with_prober(&t, &k) || !kw_window(&t, &k))
		goto out;
	REQUIRE(&t, cl_echo(k.a, "ghi", 2000), "A: ghi not echoed");
	REQUIRE(&t, h_worker_pid(k.p.pid, (unsigned)k.x) == k.xpid,
	    "worker %d changed pid", k.x);
	close(k.a);
	k.a = -1;
	REQUIRE_STOPPED(&t, &k.p, 5000);
out:
	if (k.stopped)
		kill(k.p.pid, SIGCONT);
	if (k.a != -1)
		close(k.a);
	if (k.b != -1)
		close(k.b);
	if (k.c1 != -1)
		close(k.c1);
	cl_child_cleanup(&k.pr);
	model = NULL;
	cl_log_dump_if_failed(&t, &k.p);
	h_cleanup(&k.p);
	ck_assert_msg(!t.failed, "%s", t.msg);
}

START_TEST(kill_worker_replaced)
{
	supervision_killed_under_load(NULL);
}
END_TEST

/* ---- 2. a slot that keeps dying early backs off ---- */

#define BACKOFF_KILLS 4

START_TEST(backoff_doubles)
{
	static const long lo[BACKOFF_KILLS] = { 70, 140, 280, 560 };
	static const long hi[BACKOFF_KILLS] = { 140, 280, 560, 1120 };
	struct echod_proc p;
	struct tres t = { 0, "" };
	char conf[256], needle[128];
	long gap[BACKOFF_KILLS], logged[BACKOFF_KILLS];
	const char *s;
	pid_t w, nw;
	long long tk;
	int k;

	cl_proc_init(&p);
	conf_make(conf, sizeof(conf), 1, 0, 2, "info");
	REQUIRE(&t, h_start(&p, conf, NULL, START_MS) == 0, "start failed");
	REQUIRE(&t, (w = h_worker_pid(p.pid, 0)) > 0, "no worker 0");
	for (k = 0; k < BACKOFF_KILLS; k++) {
		tk = cl_now_us();
		REQUIRE(&t, kill(w, SIGKILL) == 0, "kill: %s", strerror(errno));
		nw = wait_worker_fast(&p, 0, w, 3000);
		gap[k] = (long)((cl_now_us() - tk) / 1000);
		REQUIRE(&t, nw > 0, "kill %d: no new worker within 3 s (master "
		    "%s)", k + 1, h_alive(p.pid) ? "alive" : "gone");
		snprintf(needle, sizeof(needle), "worker 0 (pid %d) killed by "
		    "signal 9 (Killed) after ", (int)w);
		REQUIRE(&t, cl_log_count(&p, needle) == 1, "no log line '%s'",
		    needle);
		w = nw;
	}
	printf("supervision: respawn gaps after early deaths: %ld, %ld, %ld, "
	    "%ld ms\n", gap[0], gap[1], gap[2], gap[3]);
	fflush(stdout);
	/* What the master said it would wait, in order. */
	h_log_read(&p, logbuf, sizeof(logbuf));
	s = logbuf;
	for (k = 0; k < BACKOFF_KILLS; k++) {
		s = strstr(s, "0 connection(s) served; it died early, "
		    "replacing it in ");
		REQUIRE(&t, s != NULL, "only %d 'died early, replacing it in' "
		    "lines (for 0 connections served)", k);
		s += strlen("0 connection(s) served; it died early, "
		    "replacing it in ");
		logged[k] = strtol(s, NULL, 10);
	}
	for (k = 0; k < BACKOFF_KILLS; k++) {
		long base = 100L << k;

		REQUIRE(&t, logged[k] >= base - base / 4 &&
		    logged[k] <= base + base / 4,
		    "back-off %d logged as %ld ms, want %ld +-25%%", k + 1,
		    logged[k], base);
		REQUIRE(&t, gap[k] >= logged[k],
		    "respawn %d after %ld ms, before its %ld ms back-off",
		    k + 1, gap[k], logged[k]);
		REQUIRE(&t, gap[k] >= lo[k] && gap[k] <= hi[k],
		    "gap %d is %ld ms, want %ld..%ld", k + 1, gap[k], lo[k],
		    hi[k]);
		REQUIRE(&t, k == 0 || gap[k] > gap[k - 1],
		    "gap %d (%ld ms) not larger than gap %d (%ld ms)", k + 1,
		    gap[k], k, gap[k - 1]);
	}
	{
		int st = h_stop(&p, 5000);

		REQUIRE(&t, cl_exited_with(st, 0),
		    "stop: wait status %#x", st);
	}
out:
	cl_conclude(&t, &p);
}
END_TEST

/* ---- 3. a pool that keeps dying: the master gives up ---- */

START_TEST(crash_loop_gives_up)
{
	struct echod_proc p;
	struct tres t = { 0, "" };
	pid_t seen[MAX_SEEN], kids[64];
	char conf[256];
	long long t0, deadline;
	int i, n, nseen = 0, st = -1, early, alive;

	cl_proc_init(&p);
	conf_make(conf, sizeof(conf), 8, 0, 2, "info");
	REQUIRE(&t, h_start(&p, conf, NULL, START_MS) == 0, "start failed");
	t0 = h_now_ms();
	deadline = t0 + 8000;
	while (h_now_ms() < deadline) {
		n = h_children(p.pid, kids, 64);
		for (i = 0; i < n; i++) {
			kill(kids[i], SIGKILL);
			nseen = seen_add(seen, nseen, kids[i]);
		}
		if ((st = h_wait_exit(&p, 0)) != -1)
			break;
	}
	REQUIRE(&t, st != -1, "master still running %lld ms after the "
	    "first kill (%d workers killed)", h_now_ms() - t0, nseen);
	printf("supervision: master gave up %lld ms after the first kill, "
	    "%d workers killed\n", h_now_ms() - t0, nseen);
	fflush(stdout);
	REQUIRE(&t, h_now_ms() - t0 <= 5000, "gave up only after %lld ms",
	    h_now_ms() - t0);
	REQUIRE(&t, cl_exited_with(st, 1),
	    "master wait status %#x, want exit 1", st);
	REQUIRE(&t, cl_log_count(&p, "giving up") >= 1, "log lacks 'giving up'");
	early = cl_log_count(&p, "died early, replacing it in");
	REQUIRE(&t, early == 20, "%d early deaths before giving up, want 20 "
	    "(budget: more than 20 in 60 s)", early);
	REQUIRE(&t, nseen >= 21, "only %d workers seen", nseen);
	alive = cl_wait_gone(NULL, seen, nseen, 2000);
	REQUIRE(&t, alive == 0, "%d worker(s) still alive", alive);
out:
	cl_conclude(&t, &p);
}
END_TEST

/* A stop test: the daemon, its workers, a client. */
struct stop {
	struct echod_proc p;
	struct tres t;
	pid_t kids[16];
	int nk, a;
	long long sig_ms; /* when stop_start sent its signal */
};

/*
 * Start `workers` workers with shutdown_timeout = drain_s, their pids
 * into s->kids and s->nk; with client, a client there (s->a), echoed;
 * then send the master sig.  log_level is level (debug: a connection's
 * "closed: REASON" line).  1, or 0 with the failure in s->t.
 */
static int
stop_start(struct stop *s, int workers, int drain_s, int client, int sig,
    const char *level)
{
	char conf[256];

	memset(&s->t, 0, sizeof(s->t));
	s->nk = 0;
	s->a = -1;
	cl_proc_init(&s->p);
	conf_make(conf, sizeof(conf), workers, 0, drain_s, level);
	REQUIRE(&s->t, h_start(&s->p, conf, NULL, START_MS) == 0,
	    "start failed");
	s->nk = h_children(s->p.pid, s->kids, 16);
	REQUIRE(&s->t, s->nk == workers, "%d children, want %d", s->nk,
	    workers);
	if (client) {
		REQUIRE(&s->t, (s->a = h_connect(s->p.port, 0)) != -1,
		    "connect: %s", strerror(errno));
		REQUIRE(&s->t, cl_echo(s->a, "abc", 2000), "abc not echoed");
	}
	s->sig_ms = h_now_ms();
	REQUIRE(&s->t, kill(s->p.pid, sig) == 0, "kill");
out:
	return !s->t.failed;
}

/*
 * The master exited 0 (st, its wait status) and every worker is gone
 * within 1 s of it; with why, none of them had to be killed (why says
 * what that would mean).
 */
static void
stop_ended(struct stop *s, int st, const char *why)
{
	int alive;

	REQUIRE(&s->t, cl_exited_with(st, 0), "wait status %#x, want exit 0",
	    st);
	alive = cl_wait_gone(NULL, s->kids, s->nk, 1000);
	REQUIRE(&s->t, alive == 0, "%d worker(s) left", alive);
	if (why != NULL)
		REQUIRE(&s->t, cl_log_count(&s->p, "killing the remaining") ==
		    0, "%s", why);
out:
	return;
}

/*
 * The end of a stop test: stop_ended if nothing failed before, then
 * close the client, clean up and assert.
 */
#define stop_conclude(s, st, why)                                          \
	do {                                                               \
		if (!(s)->t.failed)                                        \
			stop_ended((s), (st), (why));                      \
		cl_conclude_fds(&(s)->t, &(s)->p, &(s)->a, 1);             \
	} while (0)

/* ---- 4. SIGTERM drains an open connection ---- */

void
supervision_stop_drains(const char *m)
{
	struct stop s;
	int b = -1, st = -1, e;
	long long t0;

	model = m;
	if (!stop_start(&s, 2, 5, 1, SIGTERM, "debug"))
		goto out;
	REQUIRE(&s.t, cl_log_wait(&s.p, "SIGTERM: draining", 2, 3000),
	    "the workers did not both log 'SIGTERM: draining'");
	REQUIRE(&s.t, h_alive(s.p.pid), "master gone while a connection is "
	    "open");
	REQUIRE(&s.t, cl_echo(s.a, "def", 2000), "no echo during the drain");
	/* Every listener is closed now: a new client must not be served. */
	b = h_connect(s.p.port, 0);
	e = errno;
	if (b != -1) {
		/* Accepted by a listener nobody serves any more? */
		REQUIRE(&s.t, h_write_all(b, "x", 1) == -1 ||
		    cl_eof_or_reset(b, 1000),
		    "a connection made after the stop began was neither "
		    "refused nor reset: a listener is still open");
	} else
		REQUIRE(&s.t, e == ECONNREFUSED || e == ECONNRESET,
		    "new connection failed with %s", strerror(e));
	/* The client ends it: its half-close is answered with EOF. */
	t0 = h_now_ms();
	REQUIRE(&s.t, cl_finish(s.a, 2000), "no EOF after the half-close "
	    "during the drain");
	cl_close_fds(&s.a, 1);
	st = h_wait_exit(&s.p, 4000);
	REQUIRE(&s.t, st != -1, "master still running 4 s after the last "
	    "client closed");
	REQUIRE(&s.t, cl_log_count(&s.p, "closed: shutdown") == 0, "the "
	    "connection was cut, not drained");
	REQUIRE(&s.t, h_now_ms() - t0 < 1500, "master exited %lld ms after "
	    "the last client closed", h_now_ms() - t0);
out:
	cl_close_fds(&b, 1);
	model = NULL;
	stop_conclude(&s, st, "the master had to kill workers");
}

START_TEST(sigterm_drains)
{
	supervision_stop_drains(NULL);
}
END_TEST

/* ---- 5. a client that never closes: shutdown_timeout bounds the drain */

void
supervision_stop_deadline(const char *m)
{
	struct stop s;
	int st = -1;
	long long el;

	model = m;
	if (!stop_start(&s, 1, 1, 1, SIGTERM, "debug"))
		goto out;
	st = h_wait_exit(&s.p, 4000);
	el = h_now_ms() - s.sig_ms;
	REQUIRE(&s.t, st != -1, "master still running 4 s after SIGTERM");
	REQUIRE(&s.t, el >= 800 && el <= 3000, "exited %lld ms after SIGTERM, "
	    "want about shutdown_timeout = 1 s", el);
	REQUIRE(&s.t, cl_eof_or_reset(s.a, 1000), "the client saw neither EOF "
	    "nor a reset");
	REQUIRE(&s.t, cl_log_count(&s.p, "closed: shutdown") == 1, "no "
	    "'closed: shutdown' line for the client that outstayed it");
out:
	model = NULL;
	stop_conclude(&s, st, "the worker did not end its drain at "
	    "shutdown_timeout itself");
}

START_TEST(sigterm_timeout)
{
	supervision_stop_deadline(NULL);
}
END_TEST

/* ---- 6. SIGINT is SIGTERM; a second signal stops at once ---- */

START_TEST(sigint_drains)
{
	struct stop s;
	char line[512];
	int st = -1;

	if (!stop_start(&s, 1, 5, 1, SIGINT, "info"))
		goto out;
	REQUIRE(&s.t, cl_log_wait(&s.p, "draining", 1, 3000),
	    "no worker drains");
	REQUIRE(&s.t, cl_log_line(&s.p, ": stopping; ", line, sizeof(line)) &&
	    (strstr(line, "SIGINT") != NULL || strstr(line, "Interrupt") !=
	    NULL), "master did not log that SIGINT stops it");
	REQUIRE(&s.t, cl_echo(s.a, "def", 2000), "no echo during the drain");
	cl_close_fds(&s.a, 1);
	st = h_wait_exit(&s.p, 2000);
out:
	stop_conclude(&s, st, NULL);
}
END_TEST

START_TEST(second_sigterm_stops_now)
{
	struct stop s;
	int st = -1;
	long long t0, el;

	if (!stop_start(&s, 2, 30, 1, SIGTERM, "info"))
		goto out;
	REQUIRE(&s.t, cl_log_wait(&s.p, "SIGTERM: draining", 2, 3000),
	    "the workers did not both start draining");
	REQUIRE(&s.t, cl_echo(s.a, "def", 2000), "no echo during the drain");
	t0 = h_now_ms();
	REQUIRE(&s.t, kill(s.p.pid, SIGTERM) == 0, "kill");
	st = h_wait_exit(&s.p, 5000);
	el = h_now_ms() - t0;
	REQUIRE(&s.t, st != -1, "master still running 5 s after a second "
	    "SIGTERM");
	REQUIRE(&s.t, el <= 2000, "exited %lld ms after the second SIGTERM",
	    el);
	REQUIRE(&s.t, cl_log_count(&s.p, "again: stopping now") == 1,
	    "no 'again: stopping now' in the log");
	REQUIRE(&s.t, cl_eof_or_reset(s.a, 1000), "the client saw neither EOF "
	    "nor a reset");
out:
	stop_conclude(&s, st, NULL);
}
END_TEST

/* ---- 7. no worker outlives a SIGKILLed master ---- */

START_TEST(master_killed_workers_exit)
{
	struct stop s;
	int st, alive;

	if (!stop_start(&s, 2, 1, 0, SIGKILL, "info"))
		goto out;
	st = h_wait_exit(&s.p, 2000);
	REQUIRE(&s.t, st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
	    "master wait status %#x", st);
	alive = cl_wait_gone(NULL, s.kids, s.nk, 5000);
	printf("supervision: master SIGKILLed; workers gone after %lld ms\n",
	    h_now_ms() - s.sig_ms);
	fflush(stdout);
	REQUIRE(&s.t, alive == 0, "%d worker(s) outlived the master by 5 s",
	    alive);
	REQUIRE(&s.t, cl_log_count(&s.p, "draining") == s.nk,
	    "%d worker(s) logged that they drain, want %d",
	    cl_log_count(&s.p, "draining"), s.nk);
out:
	if (s.p.pid <= 0) {
		/* Orphaned workers are nobody's children: kill them here. */
		for (int i = 0; s.t.failed && i < s.nk && i < 16; i++)
			if (h_alive(s.kids[i]))
				kill(s.kids[i], SIGKILL);
	}
	cl_conclude_fds(&s.t, &s.p, &s.a, 1);
}
END_TEST

/* ---- 8. a worker that cannot set itself up is not respawned ---- */

/*
 * The configuration for worker_fatal_not_respawned: a connection table
 * big enough (max_connections, capped by RLIMIT_NOFILE) that a lowered
 * RLIMIT_AS makes its allocation fail.
 */
static int
wf_conf(struct tres *t, char *conf, size_t len)
{
	struct rlimit nofile;
	char asan[1024];
	long table_kb;
	int maxc;

	/* The table the worker allocates: max_connections, capped by NOFILE. */
	getrlimit(RLIMIT_NOFILE, &nofile);
	maxc = 16384;
	if (nofile.rlim_max != RLIM_INFINITY && nofile.rlim_max < 16384 + 33)
		maxc = (int)nofile.rlim_max - 33;
	table_kb = (long)((size_t)maxc * sizeof(struct conn) / 1024);
	REQUIRE(t, table_kb >= 512, "the worker's table would be %ld kB "
	    "only (RLIMIT_NOFILE hard %llu): cannot make it fail", table_kb,
	    (unsigned long long)nofile.rlim_max);
	conf_make(conf, len, 2, 16384, 2, "debug");
	/*
	 * prlimit() on another user's process needs CAP_SYS_RESOURCE, which
	 * this sandbox may not grant: keep echod as our own user (root).
	 */
	if (geteuid() == 0)
		strncat(conf, "user = \"root\"\nallow_root = true\n",
		    len - strlen(conf) - 1);
	/*
	 * In an ASan build (make check-asan), LeakSanitizer needs a 2 MB
	 * stack at exit, which an address space this full cannot give: every
	 * process would end with that report instead of its own status.
	 */
	snprintf(asan, sizeof(asan), "%s:detect_leaks=0",
	    getenv("ASAN_OPTIONS") != NULL ? getenv("ASAN_OPTIONS") : "");
	setenv("ASAN_OPTIONS", asan, 1);
out:
	return !t->failed;
}

/*
 * The honest way in from outside: lower the running master's address
 * space limit (prlimit) so that a worker it forks from then on cannot
 * allocate its connection table: worker_main's set-up fails with ENOMEM
 * and the worker exits ECHOD_EXIT_WORKER_FATAL.  That slot must stay
 * empty while the other worker keeps serving; once no worker is left the
 * master exits 1.
 */
START_TEST(worker_fatal_not_respawned)
{
	struct echod_proc p;
	struct tres t = { 0, "" };
	struct rlimit rl;
	char conf[256], needle[128];
	long vm;
	pid_t w0, w1;
	int a = -1, st;

	cl_proc_init(&p);
	if (!wf_conf(&t, conf, sizeof(conf)))
		goto out;
	REQUIRE(&t, h_start(&p, conf, NULL, START_MS) == 0, "start failed");
	w0 = h_worker_pid(p.pid, 0);
	w1 = h_worker_pid(p.pid, 1);
	REQUIRE(&t, w0 > 0 && w1 > 0, "workers %d %d", (int)w0, (int)w1);
	REQUIRE(&t, (vm = pf_status_num(p.pid, "VmSize")) > 0, "no VmSize");
	rl.rlim_cur = (rlim_t)(vm + 128) * 1024;
	rl.rlim_max = RLIM_INFINITY;
	REQUIRE(&t, prlimit(p.pid, RLIMIT_AS, &rl, NULL) == 0,
	    "prlimit: %s", strerror(errno));

	REQUIRE(&t, kill(w1, SIGKILL) == 0, "kill");
	REQUIRE(&t, cl_log_wait(&p, "exited with status 71", 1, 3000),
	    "the replacement of worker 1 did not exit 71");
	REQUIRE(&t, cl_log_wait(&p, "a fatal start-up error; slot 1 stays "
	    "empty", 1, 1000), "no 'slot 1 stays empty' in the log");
	REQUIRE(&t, cl_log_count(&p, "cannot set up the event loop") == 1,
	    "the worker did not say why it failed");
	/* Slot 1 had its first worker and the one that failed: no third. */
	REQUIRE(&t, cl_log_count(&p, "worker 1 started") == 2,
	    "slot 1 was started %d times, want 2",
	    cl_log_count(&p, "worker 1 started"));
	REQUIRE(&t, h_worker_pid(p.pid, 1) == -1, "slot 1 has a worker");
	REQUIRE(&t, h_alive(p.pid), "master gone with one worker left");
	REQUIRE(&t, h_worker_pid(p.pid, 0) == w0, "worker 0 changed");
	REQUIRE(&t, (a = h_connect(p.port, 0)) != -1, "connect: %s",
	    strerror(errno));
	REQUIRE(&t, cl_echo(a, "still here", 2000), "worker 0 not serving");
	close(a);
	a = -1;
	REQUIRE(&t, cl_log_count(&p, "worker 1 started") == 2,
	    "slot 1 was started again");

	/* Worker 0 served: it is replaced at once, and that one fails too. */
	REQUIRE(&t, kill(w0, SIGKILL) == 0, "kill");
	st = h_wait_exit(&p, 3000);
	REQUIRE(&t, st != -1, "master still running with no worker left");
	REQUIRE(&t, cl_exited_with(st, 1),
	    "wait status %#x, want exit 1", st);
	snprintf(needle, sizeof(needle), "slot 0 stays empty");
	REQUIRE(&t, cl_log_count(&p, needle) == 1, "no '%s'", needle);
	REQUIRE(&t, cl_log_count(&p, "no worker left") == 1,
	    "no 'no worker left' in the log");
	REQUIRE(&t, cl_log_count(&p, "worker 1 started") == 2,
	    "slot 1 was started again");
out:
	cl_conclude_fds(&t, &p, &a, 1);
}
END_TEST

/* ---- 9. the heartbeat of a full worker ---- */

/*
 * A worker at capacity with idle clients (its acceptor waiting, its
 * connections waiting, in whatever threads or children the model has)
 * still beats, so worker_timeout = 1 never fires; a stopped one stops
 * beating and is caught and replaced.  One worker of two connections
 * (prefork: one).  Under model m (scenarios.h).
 */
void
supervision_heartbeat_full(const char *m)
{
	struct echod_proc p;
	struct tres t = { 0, "" };
	int fds[2] = { -1, -1 }, i;
	int cap = m != NULL && strcmp(m, "prefork") == 0 ? 1 : 2;
	char conf[320];
	size_t n;
	pid_t w;

	cl_proc_init(&p);
	model = m;
	conf_make(conf, sizeof(conf), 1, 2, 5, "info");
	model = NULL;
	n = strlen(conf);
	snprintf(conf + n, sizeof(conf) - n, "worker_timeout = 1\n");
	REQUIRE(&t, h_start(&p, conf, NULL, START_MS) == 0, "start failed");
	REQUIRE(&t, (w = h_worker_pid(p.pid, 0)) > 0, "no worker 0");
	for (i = 0; i < cap; i++)
		REQUIRE(&t, (fds[i] = h_connect(p.port, 0)) != -1 &&
		    cl_echo(fds[i], "idle\n", 5000), "client %d not echoed", i);
	/* Three worker_timeouts of idleness at capacity. */
	REQUIRE(&t, !cl_log_wait(&p, "hung: no heartbeat", 1, 3000),
	    "a healthy full worker was taken for hung");
	REQUIRE(&t, cl_echo(fds[0], "still\n", 5000), "no echo after");
	REQUIRE(&t, kill(w, SIGSTOP) == 0, "SIGSTOP");
	REQUIRE(&t, cl_log_wait(&p, "hung: no heartbeat", 1, 10000),
	    "a stopped worker was not caught");
	REQUIRE(&t, h_wait_worker(p.pid, 0, w, 10000) > 0, "not replaced");
	REQUIRE_STOPPED(&t, &p, 15000);
out:
	cl_conclude_fds(&t, &p, fds, 2);
}

START_TEST(heartbeat_when_full)
{
	supervision_heartbeat_full(NULL);
}
END_TEST

Suite *
supervision_suite(void)
{
	Suite *s = suite_create("supervision");

	h_case(s, "replace", 20, H_TESTS(kill_worker_replaced,
	    backoff_doubles, crash_loop_gives_up, worker_fatal_not_respawned));
	h_case(s, "stop", 20, H_TESTS(sigterm_drains, sigterm_timeout,
	    sigint_drains, second_sigterm_stops_now,
	    master_killed_workers_exit));
	h_case(s, "heartbeat", 20, H_TESTS(heartbeat_when_full));
	return s;
}
