/*
 * check_live: echod's live operations, driven from outside: reloads that
 * resize the pool, add and drop listeners or meet a broken file; resizing
 * with SIGTTIN and SIGTTOU; the scoreboard dump (SIGUSR1); a hung worker;
 * the privilege drop; and -d with its pidfile.
 *
 * Every daemon here is started by this file (harness.h, or echod -d via
 * h_run) and every signal goes to a pid it started or to a worker found
 * among that master's children.  Waits are notify datagrams, log lines or
 * polls with deadlines; nothing sleeps to synchronise.
 *
 * Check runs each test in a forked child and _exit()s it on the first
 * failed ck_assert, skipping the checked teardown, so a test records its
 * first failure (REQUIRE), cleans up by pid, and only then asserts.  The
 * teardown does the same cleanup for CK_FORK=no runs and is harmless
 * after it.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "exitcodes.h"
#include "clients.h"
#include "harness.h"
#include "procfs.h"
#include "suites.h"

#define START_MS 5000
#define MAXKIDS 64
#define SB_HEAD "scoreboard: generation "

/* ---- recording failures so that cleanup always runs ---- */

/* ---- what a test started, for the cleanup ---- */

static struct echod_proc live_p;
static pid_t live_stopped = -1;  /* a worker we SIGSTOPped */
static pid_t live_daemon = -1;   /* echod -d, from its pidfile */
static char live_dir[64];        /* our own temp dir (for -d) */
static long long live_t0;

static void
live_setup(void)
{
	cl_proc_init(&live_p);
	live_stopped = live_daemon = -1;
	live_dir[0] = '\0';
	live_t0 = h_now_ms();
}

static int
proc_title_is(pid_t pid, const char *want)
{
	char title[128];

	return pf_read_pid(pid, "cmdline", title, sizeof(title)) > 0 &&
	    strcmp(title, want) == 0;
}

/* An echod: titled, or not yet (still its own argv[0]). */
static int
is_echod(pid_t pid)
{
	char cmd[256];
	const char *bin = h_echod_bin(), *base;

	if (pf_read_pid(pid, "cmdline", cmd, sizeof(cmd)) <= 0)
		return 0;
	base = strrchr(cmd, '/') ? strrchr(cmd, '/') + 1 : cmd;
	return strncmp(cmd, "echod: ", 7) == 0 || strcmp(cmd, bin) == 0 ||
	    strcmp(base, "echod") == 0;
}

/*
 * echod -d does not die with us: kill the pid it wrote if that is still
 * an echod, and, as we are its subreaper, any echod among our children
 * (one whose pidfile was never read).
 */
static void
kill_detached(void)
{
	pid_t kids[MAXKIDS];
	int i, n, st;

	if (live_daemon > 0 && is_echod(live_daemon)) {
		kill(live_daemon, SIGKILL);
		waitpid(live_daemon, &st, 0); /* ECHILD unless we reap it */
	}
	live_daemon = -1;
	n = h_children(getpid(), kids, MAXKIDS);
	for (i = 0; i < n; i++)
		if (kids[i] != live_p.pid && is_echod(kids[i])) {
			kill(kids[i], SIGKILL);
			waitpid(kids[i], &st, 0);
		}
}

static void
live_cleanup(void)
{
	struct pf_stat ps;
	char cmd[128];

	/* A stopped worker would ignore its PDEATHSIG SIGTERM forever. */
	if (live_stopped > 0 && live_p.pid > 0 &&
	    pf_stat(live_stopped, &ps) == 0 && ps.ppid == live_p.pid) {
		kill(live_stopped, SIGKILL);
		kill(live_stopped, SIGCONT);
	}
	live_stopped = -1;
	h_cleanup(&live_p);
	kill_detached();
	if (live_dir[0] != '\0') {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", live_dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", live_dir);
		live_dir[0] = '\0';
	}
}

static void
live_teardown(void)
{
	live_cleanup();
}

static void
took(const char *name)
{
	printf("live: %s: %lld ms\n", name, h_now_ms() - live_t0);
	fflush(stdout);
}

/* ---- files ---- */

static int write_conf(const char *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

static int
write_conf(const char *path, const char *fmt, ...)
{
	va_list ap;
	FILE *f;
	int rc;

	if ((f = fopen(path, "w")) == NULL)
		return -1;
	va_start(ap, fmt);
	rc = vfprintf(f, fmt, ap);
	va_end(ap);
	return fclose(f) == 0 && rc >= 0 ? 0 : -1;
}

/* ---- talking ---- */

/* Connect, echo msg, close: 1 if it all worked. */
static int
echo_new(int port, const char *msg)
{
	char err[256];

	return cl_echo_new(port, msg, 3000, err, sizeof(err));
}

/* ---- the log ---- */

static char logbuf[1 << 20];

/* The log holds needle, within timeout_ms. */
static int
log_wait(struct echod_proc *p, const char *needle, int timeout_ms)
{
	return cl_log_wait(p, needle, 1, timeout_ms);
}

/* ---- processes ---- */

/* Wait until the master has exactly n children; returns how many. */
static int
wait_nkids(struct echod_proc *p, int n, pid_t *kids, int timeout_ms)
{
	long long deadline = h_now_ms() + timeout_ms;
	int k;

	do {
		h_drain_notify(p);
		if ((k = h_children(p->pid, kids, MAXKIDS)) == n)
			return k;
		h_poll_pause();
	} while (h_now_ms() < deadline);
	return k;
}

static int
wait_dead(struct echod_proc *p, pid_t pid, int timeout_ms)
{
	return cl_wait_gone(p, &pid, 1, timeout_ms) == 0;
}

/* The wait for RELOADING=1 and then READY=1 after a SIGHUP. */
static int
reload_wait(struct echod_proc *p, char *ready, size_t len, int timeout_ms)
{
	return h_wait_notify(p, "RELOADING=1", timeout_ms, NULL, 0) == 0 &&
	    h_wait_notify(p, "READY=1", timeout_ms, ready, len) == 0;
}

/* ---- the scoreboard dump (SIGUSR1) ---- */

struct sb_row {
	unsigned slot;
	int pid;
	unsigned long long gen, up, open;
	char state[16];
};

/*
 * SIGUSR1 twice: the master handles signals one at a time, so once the
 * second dump has begun the first is complete.  Parses the first dump's
 * table into rows; returns how many, or -1 (why in err).
 */
static int
sb_dump(struct echod_proc *p, unsigned long long *gen, struct sb_row *rows,
    int max, char *err, size_t errlen)
{
	const char *s, *end, *nl, *m;
	int n0, i, n = 0, header = 0;
	struct sb_row r;

	n0 = cl_log_count(p, SB_HEAD);
	kill(p->pid, SIGUSR1);
	if (!cl_log_wait(p, SB_HEAD, n0 + 1, 3000)) {
		snprintf(err, errlen, "no '%s' line after SIGUSR1", SB_HEAD);
		return -1;
	}
	kill(p->pid, SIGUSR1);
	if (!cl_log_wait(p, SB_HEAD, n0 + 2, 3000)) {
		snprintf(err, errlen, "no second '%s' line", SB_HEAD);
		return -1;
	}
	h_log_read(p, logbuf, sizeof(logbuf));
	for (s = logbuf, i = 0; i <= n0; i++)
		s = strstr(s, SB_HEAD) + strlen(SB_HEAD);
	end = strstr(s, SB_HEAD);
	*gen = strtoull(s, NULL, 10);
	for (; s < end && (nl = strchr(s, '\n')) != NULL; s = nl + 1) {
		if ((m = strstr(s, " master: ")) == NULL || m > nl)
			continue;
		m += strlen(" master: ");
		if (strncmp(m, "slot pid", 8) == 0) {
			header = 1;
			continue;
		}
		memset(&r, 0, sizeof(r));
		if (sscanf(m, "%u %d %llu %15s %llu %llu", &r.slot, &r.pid,
		    &r.gen, r.state, &r.up, &r.open) == 6 && n < max)
			rows[n++] = r;
	}
	if (!header) {
		snprintf(err, errlen, "the dump has no 'slot pid ...' header");
		return -1;
	}
	return n;
}

static const struct sb_row *
sb_find(const struct sb_row *rows, int n, pid_t pid)
{
	int i;

	for (i = 0; i < n; i++)
		if (rows[i].pid == pid)
			return &rows[i];
	return NULL;
}

/* ---- a prober: connect, echo, close, in a loop, in a child ---- */

/* ---- 1. a reload that changes the pool size, a connection open ---- */

#define CONF_POOL                                                          \
	"listen = { \"127.0.0.1:0\" }\nworkers = %d\nidle_timeout = %d\n"  \
	"shutdown_timeout = 10\nlog_level = info\n"

/*
 * workers = 2 -> 3 and idle_timeout 300 -> 2, with client C open on an
 * old worker (H).  A prober connects, echoes and closes throughout: none
 * may be refused or fail.  After READY=1: three new workers, H draining
 * C (its generation keeps idle_timeout 300, while a new connection is
 * closed after 2 s idle), the other old worker gone; C still echoes;
 * closing C ends H; three children remain.
 */
/* reload_resizes_pool's state, shared by its steps. */
struct rp {
	struct echod_proc *p;
	struct cl_child pr;
	struct cl_probe probe;
	struct cl_probe_res res;
	char ready[512];
	pid_t old[MAXKIDS], kids[MAXKIDS], fresh[MAXKIDS], holder, other;
	long long t_hup, t_ready;
	int c, n1, nold, nk, nfresh;
};

/* Two workers; client C open on one of them (the holder H). */
static int
rp_start_holding(struct tres *t, struct rp *r)
{
	struct echod_proc *p = r->p;
	char conf[256];

	snprintf(conf, sizeof(conf), CONF_POOL, 2, 300);
	REQUIRE(t, h_start(p, conf, NULL, START_MS) == 0, "start failed");
	r->nold = h_children(p->pid, r->old, MAXKIDS);
	REQUIRE(t, r->nold == 2, "%d children at start, want 2", r->nold);
	REQUIRE(t, (r->c = h_connect(p->port, 0)) != -1, "connect: %s",
	    strerror(errno));
	REQUIRE(t, cl_echo(r->c, "before", 2000), "'before' not echoed");
	r->holder = cl_owner_child(p->pid, p->port, r->c);
	REQUIRE(t, cl_pid_in(r->old, r->nold, r->holder),
	    "no worker holds C (%d)", (int)r->holder);
	r->other = r->old[0] == r->holder ? r->old[1] : r->old[0];
out:
	return !t->failed;
}

/* workers = 3, idle_timeout = 2 by SIGHUP, a prober running: three new
 * workers, H still there, the other old one gone. */
static int
rp_reload_probed(struct tres *t, struct rp *r)
{
	struct echod_proc *p = r->p;
	int i;

	REQUIRE(t, write_conf(p->conf_path, CONF_POOL, 3, 2) == 0,
	    "rewrite %s: %s", p->conf_path, strerror(errno));
	r->probe = (struct cl_probe){ .port = p->port, .text = "reload me",
		.echo_ms = 2000, .run_ms = 12000, .max_iters = CL_PROBE_MAX,
		.max_bad = 3, .say_going = 1, .master = p->pid, .old = r->old,
		.nold = r->nold };
	REQUIRE(t, cl_prober_start(&r->pr, &r->probe) == 0, "fork prober");
	h_drain_notify(p);
	r->t_hup = h_now_ms();
	REQUIRE(t, kill(p->pid, SIGHUP) == 0, "SIGHUP: %s", strerror(errno));
	REQUIRE(t, reload_wait(p, r->ready, sizeof(r->ready), 10000),
	    "no RELOADING=1 then READY=1 within 10 s of SIGHUP");
	r->t_ready = h_now_ms();
	REQUIRE(t, strstr(r->ready, "ready: generation 2, 3 workers, ") !=
	    NULL, "READY after the reload: '%s'", r->ready);
	/* The other old worker had nothing to drain: it goes at once. */
	REQUIRE(t, wait_dead(p, r->other, 3000), "old worker %d (no "
	    "connections) still alive 3 s after READY=1", (int)r->other);
	r->nk = wait_nkids(p, 4, r->kids, 3000);
	REQUIRE(t, r->nk == 4, "%d children after the reload, want 3 new + "
	    "the old one draining C", r->nk);
	REQUIRE(t, cl_pid_in(r->kids, r->nk, r->holder), "old worker %d, "
	    "holding C, is gone", (int)r->holder);
	for (i = 0; i < r->nk; i++)
		if (r->kids[i] != r->holder)
			r->fresh[r->nfresh++] = r->kids[i];
	for (i = 0; i < r->nfresh; i++)
		REQUIRE(t, !cl_pid_in(r->old, r->nold, r->fresh[i]),
		    "pid %d is old", (int)r->fresh[i]);
out:
	return !t->failed;
}

/* The prober: nothing refused or failed, some probes inside the reload,
 * some served by the new generation. */
static int
rp_prober_result(struct tres *t, struct rp *r)
{
	struct cl_probe_window w = { r->t_hup, r->t_ready };
	struct cl_probe_res *res = &r->res;
	const char *status = strstr(r->ready, "STATUS=");

	REQUIRE(t, cl_prober_finish(&r->pr, &w, res) == 0,
	    "no result from prober");
	printf("live: reload: SIGHUP -> READY=1 %lld ms; SIGHUP -> first "
	    "echo by a new-generation worker %lld ms; daemon says: %s\n",
	    r->t_ready - r->t_hup,
	    res->first_new_ms ? res->first_new_ms - r->t_hup : -1,
	    status ? status + 7 : r->ready);
	printf("live: reload prober: %d connections (%d between SIGHUP and "
	    "READY=1), %d echoed, %d refused, %d failed, %d wrong\n",
	    res->iters, res->in_window, res->ok, res->refused, res->failed,
	    res->wrong);
	fflush(stdout);
	REQUIRE(t, res->refused == 0 && res->failed == 0 && res->wrong == 0,
	    "prober: %d connections, %d refused, %d failed (%s), %d wrong",
	    res->iters, res->refused, res->failed,
	    strerror(res->first_errno), res->wrong);
	REQUIRE(t, res->ok >= 20, "prober made only %d connections", res->ok);
	REQUIRE(t, res->in_window >= 1, "no probe fell between SIGHUP and "
	    "READY=1");
	REQUIRE(t, res->first_new_ms != 0,
	    "no probe was served by a new-generation worker");
out:
	return !t->failed;
}

/* The scoreboard agrees: H drains C in generation 1. */
static int
rp_scoreboard(struct tres *t, struct rp *r)
{
	struct sb_row rows[16];
	const struct sb_row *row;
	unsigned long long gen;
	char err[256];
	int i, nrows;

	nrows = sb_dump(r->p, &gen, rows, 16, err, sizeof(err));
	REQUIRE(t, nrows >= 0, "%s", err);
	REQUIRE(t, gen == 2 && nrows == 4, "scoreboard: generation %llu, "
	    "%d rows; want generation 2, 4 rows", gen, nrows);
	row = sb_find(rows, nrows, r->holder);
	REQUIRE(t, row != NULL && row->gen == 1 && row->open == 1 &&
	    strcmp(row->state, "draining") == 0, "holder %d's row: gen %llu, "
	    "%s, %llu open; want 1, draining, 1", (int)r->holder,
	    row ? row->gen : 0, row ? row->state : "(none)",
	    row ? row->open : 0);
	for (i = 0; i < r->nfresh; i++) {
		row = sb_find(rows, nrows, r->fresh[i]);
		REQUIRE(t, row != NULL && row->gen == 2 &&
		    strcmp(row->state, "ready") == 0, "new worker %d's row: "
		    "gen %llu, %s", (int)r->fresh[i], row ? row->gen : 0,
		    row ? row->state : "(none)");
	}
out:
	return !t->failed;
}

/* The new generation has idle_timeout 2; C's worker keeps 300. */
static int
rp_idle_timeouts(struct tres *t, struct rp *r)
{
	struct echod_proc *p = r->p;
	long long t0, idle_ms = 0;
	pid_t o;

	REQUIRE(t, (r->n1 = h_connect(p->port, 0)) != -1, "connect: %s",
	    strerror(errno));
	REQUIRE(t, cl_echo(r->n1, "idle", 2000), "new connection not echoed");
	t0 = h_now_ms();
	o = cl_owner_child(p->pid, p->port, r->n1);
	REQUIRE(t, cl_pid_in(r->fresh, r->nfresh, o), "new connection on pid "
	    "%d, not a new worker", (int)o);
	REQUIRE(t, cl_eof_or_reset(r->n1, 6000), "a new-generation "
	    "connection was not closed after idle_timeout = 2");
	idle_ms = h_now_ms() - t0;
	REQUIRE(t, idle_ms >= 1500 && idle_ms <= 4000, "closed after %lld "
	    "ms idle, want about 2000", idle_ms);
	close(r->n1);
	r->n1 = -1;
	REQUIRE(t, cl_echo(r->c, "during", 2000), "C: 'during' not echoed "
	    "after the reload (it was idle %lld ms)", idle_ms);
out:
	return !t->failed;
}

/* Closing C ends H; three children remain. */
static int
rp_holder_ends(struct tres *t, struct rp *r)
{
	struct echod_proc *p = r->p;
	char want[128];
	int i, st;

	close(r->c);
	r->c = -1;
	REQUIRE(t, wait_dead(p, r->holder, 3000), "old worker %d still alive "
	    "3 s after its last connection closed", (int)r->holder);
	snprintf(want, sizeof(want), "(pid %d) exited with status 0",
	    (int)r->holder);
	REQUIRE(t, log_wait(p, want, 2000), "no log line '%s'", want);
	r->nk = wait_nkids(p, 3, r->kids, 2000);
	REQUIRE(t, r->nk == 3, "%d children at the end, want 3", r->nk);
	for (i = 0; i < r->nk; i++)
		REQUIRE(t, cl_pid_in(r->fresh, r->nfresh, r->kids[i]),
		    "child %d is not one of the new workers", (int)r->kids[i]);
	REQUIRE(t, echo_new(p->port, "after"), "no echo at the end");
	st = cl_stop(p, 5000);
	REQUIRE(t, cl_exited_with(st, 0), "stop: wait status %#x", st);
out:
	return !t->failed;
}

START_TEST(reload_resizes_pool)
{
	static struct rp r;
	struct cl_child pr0 = CL_CHILD_INIT;
	struct tres t = { 0, "" };

	memset(&r, 0, sizeof(r));
	r.p = &live_p;
	r.pr = pr0;
	r.c = r.n1 = -1;
	(void)(rp_start_holding(&t, &r) && rp_reload_probed(&t, &r) &&
	    rp_prober_result(&t, &r) && rp_scoreboard(&t, &r) &&
	    rp_idle_timeouts(&t, &r) && rp_holder_ends(&t, &r));
	if (r.c != -1)
		close(r.c);
	if (r.n1 != -1)
		close(r.n1);
	cl_child_cleanup(&r.pr);
	cl_log_dump_if_failed(&t, r.p);
	live_cleanup();
	took("reload_resizes_pool");
	ck_assert_msg(!t.failed, "%s", t.msg);
}
END_TEST

/* ---- 2. a reload adds and removes listeners ---- */

#define CONF_LISTEN "listen = { %s }\nworkers = 2\nlog_level = info\n"

START_TEST(reload_listeners)
{
	struct echod_proc *p = &live_p;
	struct tres t = { 0, "" };
	char conf[256], la[40], lb[40], both[96], ready[512], want[128];
	pid_t gen2[MAXKIDS], kids[MAXKIDS];
	int a, b, fd = -1, n2, nk, i, st, e;

	REQUIRE(&t, (a = cl_free_port()) > 0 && (b = cl_free_port()) > 0 && a != b,
	    "no free ports");
	snprintf(la, sizeof(la), "\"127.0.0.1:%d\"", a);
	snprintf(lb, sizeof(lb), "\"127.0.0.1:%d\"", b);
	snprintf(both, sizeof(both), "%s, %s", la, lb);
	snprintf(conf, sizeof(conf), CONF_LISTEN, la);
	REQUIRE(&t, h_start(p, conf, NULL, START_MS) == 0, "start failed");
	REQUIRE(&t, p->port == a, "listening on %d, want %d", p->port, a);
	fd = h_connect(b, 0);
	REQUIRE(&t, fd == -1 && errno == ECONNREFUSED, "B (%d) not refused "
	    "before the reload", b);

	/* Add B. */
	REQUIRE(&t, write_conf(p->conf_path, CONF_LISTEN, both) == 0,
	    "rewrite: %s", strerror(errno));
	h_drain_notify(p);
	REQUIRE(&t, kill(p->pid, SIGHUP) == 0, "SIGHUP");
	REQUIRE(&t, reload_wait(p, ready, sizeof(ready), 10000),
	    "no READY=1 after the first reload");
	snprintf(want, sizeof(want), "listening on 127.0.0.1:%d, "
	    "127.0.0.1:%d", a, b);
	REQUIRE(&t, strstr(ready, want) != NULL, "READY says '%s', want "
	    "'%s'", ready, want);
	snprintf(want, sizeof(want), "reload: listening on 127.0.0.1:%d", b);
	REQUIRE(&t, log_wait(p, want, 1000), "no log line '%s'", want);
	for (i = 0; i < 4; i++) {
		REQUIRE(&t, echo_new(b, "on b"), "B: no echo (try %d)", i);
		REQUIRE(&t, echo_new(a, "on a"), "A: no echo (try %d)", i);
	}
	/* The generation that listens on both: wait out generation 1. */
	n2 = wait_nkids(p, 2, gen2, 5000);
	REQUIRE(&t, n2 == 2, "%d children after the first reload", n2);

	/* Drop A. */
	REQUIRE(&t, write_conf(p->conf_path, CONF_LISTEN, lb) == 0,
	    "rewrite: %s", strerror(errno));
	h_drain_notify(p);
	REQUIRE(&t, kill(p->pid, SIGHUP) == 0, "SIGHUP");
	REQUIRE(&t, reload_wait(p, ready, sizeof(ready), 10000),
	    "no READY=1 after the second reload");
	snprintf(want, sizeof(want), "listening on 127.0.0.1:%d", b);
	REQUIRE(&t, strstr(ready, want) != NULL &&
	    strstr(ready, ", 127.0.0.1:") == NULL, "READY says '%s', want "
	    "only B", ready);
	for (i = 0; i < n2; i++)
		REQUIRE(&t, wait_dead(p, gen2[i], 3000), "generation 2 worker "
		    "%d still alive 3 s after READY=1", (int)gen2[i]);
	nk = wait_nkids(p, 2, kids, 2000);
	REQUIRE(&t, nk == 2, "%d children after the second reload", nk);
	fd = h_connect(a, 0);
	e = errno;
	REQUIRE(&t, fd == -1 && e == ECONNREFUSED, "A (%d) %s once the old "
	    "generation is gone, want ECONNREFUSED", a,
	    fd == -1 ? strerror(e) : "accepts connections");
	snprintf(want, sizeof(want), "reload: no longer listening on "
	    "127.0.0.1:%d", a);
	REQUIRE(&t, log_wait(p, want, 1000), "no log line '%s'", want);
	for (i = 0; i < 4; i++)
		REQUIRE(&t, echo_new(b, "still b"), "B: no echo (try %d)", i);
	st = cl_stop(p, 5000);
	REQUIRE(&t, cl_exited_with(st, 0),
	    "stop: wait status %#x", st);
out:
	cl_close_fds(&fd, 1);
	cl_log_dump_if_failed(&t, p);
	live_cleanup();
	took("reload_listeners");
	ck_assert_msg(!t.failed, "%s", t.msg);
}
END_TEST

/* ---- 3. a reload with a broken file changes nothing ---- */

START_TEST(reload_broken_file)
{
	struct echod_proc *p = &live_p;
	struct tres t = { 0, "" };
	struct sb_row rows[16];
	unsigned long long gen;
	char conf[256], ready[512], want[256], line[1024], err[256];
	pid_t before[MAXKIDS], kids[MAXKIDS];
	int nb, nk, i, nrows, st;

	snprintf(conf, sizeof(conf), CONF_POOL, 2, 300);
	REQUIRE(&t, h_start(p, conf, NULL, START_MS) == 0, "start failed");
	nb = h_children(p->pid, before, MAXKIDS);
	REQUIRE(&t, nb == 2, "%d children at start", nb);

	/* Line 4 is wrong; lines 1-3 would change the pool. */
	REQUIRE(&t, write_conf(p->conf_path, "listen = { \"127.0.0.1:0\" }\n"
	    "workers = 3\nidle_timeout = 5\nbogus_option = 3\n") == 0,
	    "rewrite: %s", strerror(errno));
	h_drain_notify(p);
	REQUIRE(&t, kill(p->pid, SIGHUP) == 0, "SIGHUP");
	REQUIRE(&t, reload_wait(p, ready, sizeof(ready), 10000),
	    "no RELOADING=1 then READY=1 after a failed reload");
	REQUIRE(&t, strstr(ready, "reload failed") != NULL, "READY says "
	    "'%s'", ready);
	snprintf(want, sizeof(want), "reload failed: %.200s:4: ", p->conf_path);
	REQUIRE(&t, log_wait(p, want, 1000), "no log line '%s...'", want);
	cl_log_line(p, want, line, sizeof(line));
	REQUIRE(&t, strstr(line, "bogus_option") != NULL, "log line: %s",
	    line);
	printf("live: broken reload logged: %s\n", line);
	fflush(stdout);
	nk = h_children(p->pid, kids, MAXKIDS);
	REQUIRE(&t, nk == nb, "%d children after a failed reload, want %d",
	    nk, nb);
	for (i = 0; i < nk; i++)
		REQUIRE(&t, cl_pid_in(before, nb, kids[i]), "new child %d after "
		    "a failed reload", (int)kids[i]);
	nrows = sb_dump(p, &gen, rows, 16, err, sizeof(err));
	REQUIRE(&t, nrows >= 0, "%s", err);
	REQUIRE(&t, gen == 1 && nrows == 2, "scoreboard: generation %llu, "
	    "%d rows; want generation 1, 2 rows", gen, nrows);
	for (i = 0; i < 4; i++)
		REQUIRE(&t, echo_new(p->port, "still here"), "no echo after "
		    "the failed reload (try %d)", i);
	nk = h_children(p->pid, kids, MAXKIDS);
	REQUIRE(&t, nk == nb && cl_pid_in(before, nb, kids[0]) &&
	    cl_pid_in(before, nb, kids[1]), "the workers changed");

	/* A good file afterwards is taken. */
	snprintf(conf, sizeof(conf), CONF_POOL, 3, 300);
	REQUIRE(&t, write_conf(p->conf_path, "%s", conf) == 0, "rewrite");
	h_drain_notify(p);
	REQUIRE(&t, kill(p->pid, SIGHUP) == 0, "SIGHUP");
	REQUIRE(&t, reload_wait(p, ready, sizeof(ready), 10000),
	    "no READY=1 after the good reload");
	REQUIRE(&t, strstr(ready, "ready: generation 2, 3 workers") != NULL,
	    "READY after the good reload: '%s'", ready);
	for (i = 0; i < nb; i++)
		REQUIRE(&t, wait_dead(p, before[i], 3000), "old worker %d "
		    "still alive", (int)before[i]);
	nk = wait_nkids(p, 3, kids, 2000);
	REQUIRE(&t, nk == 3, "%d children after the good reload", nk);
	for (i = 0; i < 4; i++)
		REQUIRE(&t, echo_new(p->port, "reloaded"), "no echo after "
		    "the good reload (try %d)", i);
	st = cl_stop(p, 5000);
	REQUIRE(&t, cl_exited_with(st, 0),
	    "stop: wait status %#x", st);
out:
	cl_log_dump_if_failed(&t, p);
	live_cleanup();
	took("reload_broken_file");
	ck_assert_msg(!t.failed, "%s", t.msg);
}
END_TEST

/* ---- 4. SIGTTIN, SIGTTOU and the scoreboard ---- */

/*
 * max_connections = 1: a worker holding a connection stops accepting, so
 * three connections opened one after another land on three different
 * workers, which proves all three serve.
 */
START_TEST(resize_ttin_ttou)
{
	struct echod_proc *p = &live_p;
	struct tres t = { 0, "" };
	struct sb_row rows[16];
	const struct sb_row *r;
	unsigned long long gen;
	char err[256], msg[32];
	pid_t kids[MAXKIDS], own[3], gone, last;
	int fds[3] = { -1, -1, -1 }, nk, i, j, nrows, st, k;

	REQUIRE(&t, h_start(p, "listen = { \"127.0.0.1:0\" }\nworkers = 2\n"
	    "max_connections = 1\nlog_level = info\n", NULL, START_MS) == 0,
	    "start failed");
	REQUIRE(&t, h_children(p->pid, kids, MAXKIDS) == 2, "not 2 workers");
	REQUIRE(&t, kill(p->pid, SIGTTIN) == 0, "SIGTTIN");
	nk = wait_nkids(p, 3, kids, 3000);
	REQUIRE(&t, nk == 3, "%d children after SIGTTIN, want 3", nk);
	REQUIRE(&t, log_wait(p, "SIGTTIN: one worker more, now 3", 1000),
	    "no 'SIGTTIN: one worker more, now 3'");
	for (i = 0; i < 3; i++) {
		REQUIRE(&t, (fds[i] = h_connect(p->port, 0)) != -1,
		    "connect %d: %s", i, strerror(errno));
		snprintf(msg, sizeof(msg), "conn %d", i);
		REQUIRE(&t, cl_echo(fds[i], msg, 3000), "conn %d not echoed "
		    "(a worker does not serve)", i);
		own[i] = cl_owner_child(p->pid, p->port, fds[i]);
		REQUIRE(&t, cl_pid_in(kids, nk, own[i]), "conn %d on pid %d",
		    i, (int)own[i]);
		for (j = 0; j < i; j++)
			REQUIRE(&t, own[j] != own[i], "conns %d and %d both on "
			    "pid %d (max_connections = 1)", j, i, (int)own[i]);
	}

	/* SIGUSR1: one row per live worker, each with one open. */
	nrows = sb_dump(p, &gen, rows, 16, err, sizeof(err));
	REQUIRE(&t, nrows >= 0, "%s", err);
	REQUIRE(&t, nrows == 3, "%d scoreboard rows, want 3", nrows);
	for (i = 0; i < nk; i++) {
		r = sb_find(rows, nrows, kids[i]);
		REQUIRE(&t, r != NULL, "worker %d not in the scoreboard",
		    (int)kids[i]);
		REQUIRE(&t, h_worker_pid(p->pid, r->slot) == kids[i], "row slot %u "
		    "has pid %d, but that slot's title is on pid %d", r->slot,
		    (int)kids[i], (int)h_worker_pid(p->pid, r->slot));
		REQUIRE(&t, strcmp(r->state, "ready") == 0 && r->open == 1,
		    "worker %d: %s, %llu open; want ready, 1", (int)kids[i],
		    r->state, r->open);
	}

	/* SIGTTOU: the newest slot drains its connection, then exits. */
	gone = h_worker_pid(p->pid, 2);
	REQUIRE(&t, gone > 0, "no worker in slot 2 after SIGTTIN");
	REQUIRE(&t, kill(p->pid, SIGTTOU) == 0, "SIGTTOU");
	REQUIRE(&t, log_wait(p, "SIGTTOU: one worker fewer, now 2 (worker 2 "
	    "drains)", 2000), "no 'SIGTTOU: one worker fewer, now 2 (worker "
	    "2 drains)'");
	for (i = 0; i < 3 && own[i] != gone; i++)
		;
	REQUIRE(&t, i < 3, "no connection on slot 2's worker %d", (int)gone);
	REQUIRE(&t, cl_echo(fds[i], "draining", 2000), "the draining worker "
	    "stopped serving its connection");
	REQUIRE(&t, h_alive(gone), "slot 2's worker exited with a "
	    "connection open");
	close(fds[i]);
	fds[i] = -1;
	REQUIRE(&t, wait_dead(p, gone, 3000), "slot 2's worker %d still "
	    "alive after its connection closed", (int)gone);
	nk = wait_nkids(p, 2, kids, 2000);
	REQUIRE(&t, nk == 2, "%d children after SIGTTOU, want 2", nk);
	cl_close_fds(fds, 3);

	REQUIRE(&t, kill(p->pid, SIGTTOU) == 0, "SIGTTOU");
	REQUIRE(&t, log_wait(p, "SIGTTOU: one worker fewer, now 1", 2000),
	    "no 'SIGTTOU: one worker fewer, now 1'");
	nk = wait_nkids(p, 1, kids, 3000);
	REQUIRE(&t, nk == 1, "%d children after the second SIGTTOU", nk);
	last = kids[0];
	REQUIRE(&t, kill(p->pid, SIGTTOU) == 0, "SIGTTOU");
	REQUIRE(&t, log_wait(p, "SIGTTOU: already down to one worker", 2000),
	    "no 'SIGTTOU: already down to one worker'");
	k = h_children(p->pid, kids, MAXKIDS);
	REQUIRE(&t, k == 1 && kids[0] == last, "%d children after SIGTTOU "
	    "at one worker (want only %d)", k, (int)last);
	for (i = 0; i < 3; i++)
		REQUIRE(&t, echo_new(p->port, "one left"), "no echo with one "
		    "worker (try %d)", i);
	nrows = sb_dump(p, &gen, rows, 16, err, sizeof(err));
	REQUIRE(&t, nrows == 1 && rows[0].pid == last, "%d scoreboard rows "
	    "with one worker (%s)", nrows, nrows < 0 ? err : "");
	REQUIRE(&t, h_children(p->pid, kids, MAXKIDS) == 1 && kids[0] == last,
	    "the last worker changed");
	st = cl_stop(p, 5000);
	REQUIRE(&t, cl_exited_with(st, 0),
	    "stop: wait status %#x", st);
out:
	cl_close_fds(fds, 3);
	cl_log_dump_if_failed(&t, p);
	live_cleanup();
	took("resize_ttin_ttou");
	ck_assert_msg(!t.failed, "%s", t.msg);
}
END_TEST

/* ---- 5. a hung worker is aborted, killed and replaced ---- */

/* Is sig pending for pid (per thread or per process)? */
static int
sig_pending(pid_t pid, int sig)
{
	char buf[4096], *s;
	unsigned long long mask = 0, m;

	if (pf_read_pid(pid, "status", buf, sizeof(buf)) == -1)
		return 0;
	if ((s = strstr(buf, "\nSigPnd:")) != NULL &&
	    sscanf(s + 8, "%llx", &m) == 1)
		mask |= m;
	if ((s = strstr(buf, "\nShdPnd:")) != NULL &&
	    sscanf(s + 8, "%llx", &m) == 1)
		mask |= m;
	return (mask & (1ULL << (sig - 1))) != 0;
}

START_TEST(hung_worker)
{
	struct echod_proc *p = &live_p;
	struct tres t = { 0, "" };
	char want[128], line[512], state;
	pid_t x = -1, y, nx = -1, kids[MAXKIDS];
	long long t_stop, t_hung = 0, t_dead = 0, deadline;
	int c = -1, slot = -1, served = 0, i, nk, st;

	REQUIRE(&t, h_start(p, "listen = { \"127.0.0.1:0\" }\nworkers = 2\n"
	    "worker_timeout = 1\nlog_level = info\n", NULL, START_MS) == 0,
	    "start failed");
	REQUIRE(&t, (c = h_connect(p->port, 0)) != -1, "connect: %s",
	    strerror(errno));
	REQUIRE(&t, cl_echo(c, "watch me", 2000), "no echo");
	y = cl_owner_child(p->pid, p->port, c);
	REQUIRE(&t, y > 0, "no worker holds the connection");
	/* Stop the other one. */
	for (i = 0; i < 2; i++)
		if ((x = h_worker_pid(p->pid, (unsigned)i)) > 0 && x != y) {
			slot = i;
			break;
		}
	REQUIRE(&t, slot != -1, "no second worker");
	x = h_worker_pid(p->pid, (unsigned)slot);
	live_stopped = x;
	t_stop = h_now_ms();
	REQUIRE(&t, kill(x, SIGSTOP) == 0, "SIGSTOP: %s", strerror(errno));

	snprintf(want, sizeof(want), "worker %d (pid %d) hung", slot, (int)x);
	deadline = t_stop + 8000;
	/* Serve clients until the replacement is there; bounded. */
	for (i = 0; i < 4000 && h_now_ms() < deadline; i++) {
		if (t_hung == 0 && cl_log_count(p, want) > 0) {
			t_hung = h_now_ms();
			state = (char)pf_state(x);
			REQUIRE(&t, state == 'T' && sig_pending(x, SIGABRT),
			    "hung worker %d: state %c, SIGABRT %spending",
			    (int)x, state ? state : '?',
			    sig_pending(x, SIGABRT) ? "" : "not ");
		}
		if (t_hung && t_dead == 0 && !h_alive(x))
			t_dead = h_now_ms();
		if (t_dead && (nx = h_worker_pid(p->pid, (unsigned)slot)) > 0 &&
		    nx != x)
			break;
		snprintf(line, sizeof(line), "meanwhile %d\n", i);
		REQUIRE(&t, cl_echo(c, line, 2000), "the other worker stopped "
		    "serving its connection (iteration %d)", i);
		REQUIRE(&t, echo_new(p->port, line), "a new connection was "
		    "not served while worker %d was stopped (iteration %d)",
		    slot, i);
		served += 2;
		h_drain_notify(p);
		h_poll_pause();
	}
	REQUIRE(&t, t_hung != 0, "no log line '%s' within 8 s", want);
	REQUIRE(&t, t_dead != 0, "hung worker %d still alive", (int)x);
	REQUIRE(&t, nx > 0 && nx != x, "slot %d not refilled", slot);
	live_stopped = -1;
	printf("live: hung worker: SIGSTOP -> 'hung' %lld ms, 'hung' -> dead "
	    "%lld ms, dead -> replaced in slot %d; %d echoes meanwhile\n",
	    t_hung - t_stop, t_dead - t_hung, slot, served);
	fflush(stdout);
	/* The last heartbeat may be up to 250 ms older than the SIGSTOP. */
	REQUIRE(&t, t_hung - t_stop >= 700 && t_hung - t_stop <= 3000,
	    "'hung' after %lld ms with worker_timeout = 1", t_hung - t_stop);
	REQUIRE(&t, t_dead - t_hung >= 1500 && t_dead - t_hung <= 3500,
	    "dead %lld ms after 'hung'; want SIGKILL about 2 s after "
	    "SIGABRT", t_dead - t_hung);
	snprintf(want, sizeof(want), "worker %d (pid %d) killed by signal 9",
	    slot, (int)x);
	REQUIRE(&t, log_wait(p, want, 2000), "no log line '%s'", want);
	REQUIRE(&t, h_worker_pid(p->pid, (unsigned)(1 - slot)) == y,
	    "the other worker changed");
	nk = h_children(p->pid, kids, MAXKIDS);
	REQUIRE(&t, nk == 2, "%d children after the replacement", nk);
	REQUIRE(&t, cl_echo(c, "still", 2000), "no echo at the end");
	close(c);
	c = -1;
	st = cl_stop(p, 5000);
	REQUIRE(&t, cl_exited_with(st, 0),
	    "stop: wait status %#x", st);
out:
	cl_close_fds(&c, 1);
	cl_log_dump_if_failed(&t, p);
	live_cleanup();
	took("hung_worker");
	ck_assert_msg(!t.failed, "%s", t.msg);
}
END_TEST

/* ---- 6. the privilege drop ---- */

/* The four ids of a "Uid:" or "Gid:" line of /proc/PID/status. */
static int
proc_ids(pid_t pid, const char *key, long ids[4], char *groups, size_t glen)
{
	char buf[4096], *s, *e;

	if (pf_read_pid(pid, "status", buf, sizeof(buf)) == -1 ||
	    (s = strstr(buf, key)) == NULL ||
	    sscanf(s + strlen(key), "%ld %ld %ld %ld", &ids[0], &ids[1],
	    &ids[2], &ids[3]) != 4)
		return -1;
	if ((s = strstr(buf, "\nGroups:")) == NULL)
		return -1;
	s += strlen("\nGroups:");
	while (*s == ' ' || *s == '\t')
		s++;
	e = strchr(s, '\n');
	snprintf(groups, glen, "%.*s", e ? (int)(e - s) : (int)strlen(s), s);
	for (e = groups + strlen(groups); e > groups && e[-1] == ' '; e--)
		e[-1] = '\0';
	return 0;
}

/* Master and every worker run as uid/gid, with no supplementary groups
 * (or with any, when groups_empty is 0). */
static int
check_ids(struct echod_proc *p, long uid, long gid, int groups_empty,
    char *err, size_t errlen)
{
	pid_t pids[MAXKIDS + 1];
	long u[4], g[4];
	char groups[256];
	int n, i, k;

	pids[0] = p->pid;
	n = 1 + h_children(p->pid, pids + 1, MAXKIDS);
	if (n < 3) {
		snprintf(err, errlen, "master and %d workers", n - 1);
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (proc_ids(pids[i], "\nUid:", u, groups,
		    sizeof(groups)) == -1 ||
		    proc_ids(pids[i], "\nGid:", g, groups,
		    sizeof(groups)) == -1) {
			snprintf(err, errlen, "cannot read /proc/%d/status",
			    (int)pids[i]);
			return -1;
		}
		for (k = 0; k < 4; k++)
			if (u[k] != uid || g[k] != gid) {
				snprintf(err, errlen, "%s %d: Uid %ld %ld %ld "
				    "%ld, Gid %ld %ld %ld %ld; want %ld, %ld",
				    i ? "worker" : "master", (int)pids[i],
				    u[0], u[1], u[2], u[3], g[0], g[1], g[2],
				    g[3], uid, gid);
				return -1;
			}
		if (groups_empty && groups[0] != '\0') {
			snprintf(err, errlen, "%s %d: Groups: %.100s; want none",
			    i ? "worker" : "master", (int)pids[i], groups);
			return -1;
		}
	}
	return n;
}

START_TEST(privilege_drop)
{
	static const gid_t extra[] = { 4, 20 };
	struct echod_proc *p = &live_p;
	struct tres t = { 0, "" };
	struct passwd *pw;
	gid_t saved[64];
	char err[256];
	long uid, gid;
	int n, st, nsaved = -1;

	if (geteuid() != 0) {
		printf("live: privilege_drop skipped: not running as root\n");
		fflush(stdout);
		return;
	}
	REQUIRE(&t, (pw = getpwnam("nobody")) != NULL, "no user nobody");
	uid = (long)pw->pw_uid;
	gid = (long)pw->pw_gid;
	REQUIRE(&t, uid == 65534 && gid == 65534, "nobody is %ld:%ld here",
	    uid, gid);
	/* Start echod with supplementary groups: the drop must clear them. */
	REQUIRE(&t, (nsaved = getgroups(64, saved)) != -1, "getgroups: %s",
	    strerror(errno));
	REQUIRE(&t, setgroups(2, extra) == 0, "setgroups: %s",
	    strerror(errno));

	/* No user in the file: nobody. */
	REQUIRE(&t, h_start(p, "listen = { \"127.0.0.1:0\" }\nworkers = 2\n",
	    NULL, START_MS) == 0, "start failed");
	n = check_ids(p, uid, gid, 1, err, sizeof(err));
	REQUIRE(&t, n == 3, "%s", err);
	REQUIRE(&t, log_wait(p, "running as user nobody (uid 65534)", 1000),
	    "no log line 'running as user nobody (uid 65534)'");
	REQUIRE(&t, echo_new(p->port, "as nobody"), "no echo as nobody");
	st = cl_stop(p, 5000);
	REQUIRE(&t, cl_exited_with(st, 0),
	    "stop: wait status %#x", st);
	live_cleanup();

	/* user = "root" without allow_root: a configuration error. */
	REQUIRE(&t, h_spawn(p, "listen = { \"127.0.0.1:0\" }\nworkers = 2\n"
	    "user = \"root\"\n", NULL) == 0, "spawn failed");
	st = h_wait_exit(p, 5000);
	REQUIRE(&t, st != -1, "user = root without allow_root: still "
	    "running after 5 s");
	REQUIRE(&t, WIFEXITED(st) && WEXITSTATUS(st) == ECHOD_EXIT_CONFIG,
	    "user = root without allow_root: wait status %#x, want exit %d",
	    st, ECHOD_EXIT_CONFIG);
	REQUIRE(&t, log_wait(p, "uid 0", 1000), "no message about uid 0");
	{
		char line[512];

		cl_log_line(p, "uid 0", line, sizeof(line));
		printf("live: user = root refused: %s\n", line);
		fflush(stdout);
	}
	live_cleanup();

	/* With allow_root = true: root it is. */
	REQUIRE(&t, h_start(p, "listen = { \"127.0.0.1:0\" }\nworkers = 2\n"
	    "user = \"root\"\nallow_root = true\n", NULL, START_MS) == 0,
	    "start with allow_root failed");
	n = check_ids(p, 0, 0, 0, err, sizeof(err));
	REQUIRE(&t, n == 3, "%s", err);
	REQUIRE(&t, log_wait(p, "running as root (allow_root = true)", 1000),
	    "no log line 'running as root (allow_root = true)'");
	REQUIRE(&t, echo_new(p->port, "as root"), "no echo as root");
	st = cl_stop(p, 5000);
	REQUIRE(&t, cl_exited_with(st, 0),
	    "stop: wait status %#x", st);
out:
	if (nsaved != -1 && setgroups((size_t)nsaved, saved) == -1)
		fprintf(stderr, "setgroups: %s\n", strerror(errno));
	cl_log_dump_if_failed(&t, p);
	live_cleanup();
	took("privilege_drop");
	ck_assert_msg(!t.failed, "%s", t.msg);
}
END_TEST

/* ---- 7. -d: detach, pidfile, stop ---- */

static pid_t
read_pidfile(const char *path)
{
	char buf[32];

	if (pf_read(path, buf, sizeof(buf)) <= 0)
		return -1;
	return (pid_t)atoi(buf);
}

START_TEST(daemon_mode)
{
	struct tres t = { 0, "" };
	char conf[128], pidf[128], conf2[128], pidf2[128], out[4096];
	const char *argv[] = { "echod", "-d", "-c", conf, NULL };
	const char *argv2[] = { "echod", "-d", "-c", conf2, NULL };
	long long t0, el, deadline;
	int port, qport, hold = -1, st, pp, pg, sid;
	struct pf_stat ps;
	pid_t d, w;

	/* The detached daemon is reparented to us: we can reap it. */
	REQUIRE(&t, prctl(PR_SET_CHILD_SUBREAPER, 1) == 0, "subreaper: %s",
	    strerror(errno));
	snprintf(live_dir, sizeof(live_dir), "/tmp/echod-live.XXXXXX");
	REQUIRE(&t, mkdtemp(live_dir) != NULL, "mkdtemp: %s",
	    strerror(errno));
	/* nobody removes the pidfile after the privilege drop. */
	REQUIRE(&t, chmod(live_dir, 0777) == 0, "chmod: %s", strerror(errno));
	snprintf(conf, sizeof(conf), "%s/echod.conf", live_dir);
	snprintf(pidf, sizeof(pidf), "%s/echod.pid", live_dir);
	REQUIRE(&t, (port = cl_free_port()) > 0, "no free port");
	REQUIRE(&t, write_conf(conf, "listen = { \"127.0.0.1:%d\" }\n"
	    "workers = 2\npidfile = \"%s\"\n", port, pidf) == 0, "write conf");

	t0 = h_now_ms();
	st = h_run(argv, out, sizeof(out), 10000);
	el = h_now_ms() - t0;
	printf("live: echod -d returned after %lld ms\n", el);
	fflush(stdout);
	REQUIRE(&t, st != -1, "echod -d did not return within 10 s");
	REQUIRE(&t, WIFEXITED(st) && WEXITSTATUS(st) == 0,
	    "echod -d: wait status %#x, output: %s", st, out);
	REQUIRE(&t, el < 3000, "echod -d took %lld ms to return", el);
	d = read_pidfile(pidf);
	REQUIRE(&t, d > 0, "no pid in %s", pidf);
	live_daemon = d;
	REQUIRE(&t, h_alive(d), "pid %d from the pidfile is not alive",
	    (int)d);
	REQUIRE(&t, proc_title_is(d, "echod: master"), "pid %d is not "
	    "titled 'echod: master'", (int)d);
	REQUIRE(&t, pf_stat(d, &ps) == 0, "stat %d", (int)d);
	pp = ps.ppid;
	pg = ps.pgrp;
	sid = ps.sid;
	REQUIRE(&t, sid == d && pg == d, "pid %d: session %d, group %d; "
	    "want both %d (setsid)", (int)d, sid, pg, (int)d);
	REQUIRE(&t, pp == 1 || pp == getpid(), "pid %d's parent is %d, not "
	    "1 or us (subreaper %d)", (int)d, pp, (int)getpid());
	REQUIRE(&t, (w = h_worker_pid(d, 0)) > 0 && h_worker_pid(d, 1) > 0,
	    "the daemon has no workers 0 and 1");
	REQUIRE(&t, echo_new(port, "detached"), "no echo from the daemon");

	/* A second one: the port is taken (and the pidfile locked). */
	st = h_run(argv, out, sizeof(out), 10000);
	printf("live: second echod -d: wait status %#x, output: %s", st, out);
	fflush(stdout);
	REQUIRE(&t, st != -1 && WIFEXITED(st) && WEXITSTATUS(st) != 0,
	    "a second echod -d with the same configuration: wait status %#x",
	    st);
	REQUIRE(&t, read_pidfile(pidf) == d, "the pidfile changed");
	REQUIRE(&t, h_alive(d) && echo_new(port, "still"), "the first "
	    "daemon suffered from the second");

	/* Another port, the same pidfile: the lock refuses it (after the
	 * detach, so the reason goes to syslog, not to this output). */
	snprintf(conf2, sizeof(conf2), "%s/locked.conf", live_dir);
	REQUIRE(&t, (qport = cl_free_port()) > 0, "no free port");
	REQUIRE(&t, write_conf(conf2, "listen = { \"127.0.0.1:%d\" }\n"
	    "workers = 2\npidfile = \"%s\"\n", qport, pidf) == 0,
	    "write conf");
	st = h_run(argv2, out, sizeof(out), 10000);
	printf("live: echod -d, pidfile locked: wait status %#x, output: %s",
	    st, out);
	fflush(stdout);
	REQUIRE(&t, st != -1 && WIFEXITED(st) &&
	    WEXITSTATUS(st) == ECHOD_EXIT_OSERR, "pidfile locked: wait "
	    "status %#x, want exit %d", st, ECHOD_EXIT_OSERR);
	REQUIRE(&t, read_pidfile(pidf) == d, "the pidfile changed");
	REQUIRE(&t, h_alive(d) && echo_new(port, "still"), "the first "
	    "daemon suffered from the third");

	/* SIGTERM: the pidfile goes, then the process. */
	REQUIRE(&t, kill(d, SIGTERM) == 0, "SIGTERM: %s", strerror(errno));
	deadline = h_now_ms() + 5000;
	while (access(pidf, F_OK) == 0 && h_now_ms() < deadline)
		h_poll_pause();
	REQUIRE(&t, access(pidf, F_OK) == -1 && errno == ENOENT, "%s still "
	    "there 5 s after SIGTERM", pidf);
	deadline = h_now_ms() + 5000;
	while (h_alive(d) && h_now_ms() < deadline)
		h_poll_pause();
	REQUIRE(&t, !h_alive(d), "pid %d still alive 5 s after SIGTERM",
	    (int)d);
	REQUIRE(&t, !h_alive(w), "worker %d outlived the daemon", (int)w);
	if (pp == getpid()) {
		REQUIRE(&t, waitpid(d, &st, 0) == d, "waitpid: %s",
		    strerror(errno));
		REQUIRE(&t, WIFEXITED(st) && WEXITSTATUS(st) == 0,
		    "the daemon's wait status %#x, want exit 0", st);
	}
	live_daemon = -1;

	/* -d with the port taken: exit 71 with the error on the output. */
	REQUIRE(&t, (hold = cl_listen_lo(&qport)) != -1, "hold a port: %s",
	    strerror(errno));
	snprintf(conf2, sizeof(conf2), "%s/taken.conf", live_dir);
	snprintf(pidf2, sizeof(pidf2), "%s/taken.pid", live_dir);
	REQUIRE(&t, write_conf(conf2, "listen = { \"127.0.0.1:%d\" }\n"
	    "workers = 2\npidfile = \"%s\"\n", qport, pidf2) == 0,
	    "write conf");
	st = h_run(argv2, out, sizeof(out), 10000);
	if ((d = read_pidfile(pidf2)) > 0)
		live_daemon = d; /* it should not exist: clean up if it does */
	printf("live: echod -d, port taken: wait status %#x, output: %s", st,
	    out);
	fflush(stdout);
	REQUIRE(&t, st != -1 && WIFEXITED(st) &&
	    WEXITSTATUS(st) == ECHOD_EXIT_OSERR, "port taken: wait status "
	    "%#x, want exit %d", st, ECHOD_EXIT_OSERR);
	{
		char want[64];

		snprintf(want, sizeof(want), "127.0.0.1:%d", qport);
		REQUIRE(&t, strstr(out, want) != NULL &&
		    strstr(out, strerror(EADDRINUSE)) != NULL,
		    "port taken: output '%s' does not name %s and '%s'", out,
		    want, strerror(EADDRINUSE));
	}
	REQUIRE(&t, d <= 0, "a pidfile was written (pid %d)", (int)d);
out:
	cl_close_fds(&hold, 1);
	live_cleanup();
	took("daemon_mode");
	ck_assert_msg(!t.failed, "%s", t.msg);
}
END_TEST

Suite *
live_suite(void)
{
	Suite *s = suite_create("live");
	TCase *tc[3];
	int i;

	tc[0] = h_case(s, "reload", 40, H_TESTS(reload_resizes_pool,
	    reload_listeners, reload_broken_file));
	tc[1] = h_case(s, "resize", 40, H_TESTS(resize_ttin_ttou,
	    hung_worker));
	tc[2] = h_case(s, "process", 40, H_TESTS(privilege_drop,
	    daemon_mode));
	for (i = 0; i < 3; i++)
		tcase_add_checked_fixture(tc[i], live_setup, live_teardown);
	return s;
}
