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
#include "scenarios.h"
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
/* A parsed dump: the generation, the rows (n; -1 with why in err). */
struct sb {
	unsigned long long gen;
	struct sb_row rows[16];
	int n;
	char err[256];
};

static int
sb_parse(struct echod_proc *p, unsigned long long *gen, struct sb_row *rows,
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

/* sb_parse into sb; sb->n. */
static int
sb_dump(struct echod_proc *p, struct sb *sb)
{
	sb->err[0] = '\0';
	sb->n = sb_parse(p, &sb->gen, sb->rows, H_NELEM(sb->rows), sb->err,
	    sizeof(sb->err));
	return sb->n;
}

/* pid's row of the dump, or NULL. */
static const struct sb_row *
sb_find(const struct sb *sb, pid_t pid)
{
	int i;

	for (i = 0; i < sb->n; i++)
		if (sb->rows[i].pid == pid)
			return &sb->rows[i];
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
	const char *from, *to; /* server models before and after; NULL: events */
	struct cl_child pr;
	struct cl_probe probe;
	struct cl_probe_res res;
	char ready[512];
	pid_t old[MAXKIDS], kids[MAXKIDS], fresh[MAXKIDS], holder, other;
	long long t_hup, t_ready;
	int c, n1, nold, nk, nfresh;
};

/* CONF_POOL under a server model (scenarios.h); 0, or -1. */
static int
rp_conf(char *buf, size_t len, int workers, int idle, const char *model)
{
	char base[256];

	snprintf(base, sizeof(base), CONF_POOL, workers, idle);
	return h_conf_model(buf, len, base, model, 0) != NULL ? 0 : -1;
}

/* Two workers; client C open on one of them (the holder H). */
static int
rp_start_holding(struct tres *t, struct rp *r)
{
	struct echod_proc *p = r->p;
	char conf[320];

	REQUIRE(t, rp_conf(conf, sizeof(conf), 2, 300, r->from) == 0, "conf");
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
	char conf[320], want[96];
	int i;

	REQUIRE(t, rp_conf(conf, sizeof(conf), 3, 2, r->to) == 0 &&
	    cl_write_conf(p, conf) == 0, "rewrite %s: %s", p->conf_path,
	    strerror(errno));
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
	/* Gone is not yet reaped: the master says so once its row is. */
	snprintf(want, sizeof(want), "(pid %d) exited with status 0",
	    (int)r->other);
	REQUIRE(t, log_wait(p, want, 2000), "no log line '%s'", want);
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
	char err[256];

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
	REQUIRE(t, cl_probe_clean(res, 20, err, sizeof(err)), "%s", err);
	REQUIRE(t, res->in_window >= 1, "no probe fell between SIGHUP and "
	    "READY=1, %lld ms apart", r->t_ready - r->t_hup);
	REQUIRE(t, res->first_new_ms != 0,
	    "no probe was served by a new-generation worker");
out:
	return !t->failed;
}

/* The scoreboard agrees: H drains C in generation 1. */
static int
rp_scoreboard(struct tres *t, struct rp *r)
{
	struct sb sb;
	const struct sb_row *row;
	int i;

	REQUIRE(t, sb_dump(r->p, &sb) >= 0, "%s", sb.err);
	REQUIRE(t, sb.gen == 2 && sb.n == 4, "scoreboard: generation %llu, "
	    "%d rows; want generation 2, 4 rows", sb.gen, sb.n);
	row = sb_find(&sb, r->holder);
	REQUIRE(t, row != NULL && row->gen == 1 && row->open == 1 &&
	    strcmp(row->state, "draining") == 0, "holder %d's row: gen %llu, "
	    "%s, %llu open; want 1, draining, 1", (int)r->holder,
	    row ? row->gen : 0, row ? row->state : "(none)",
	    row ? row->open : 0);
	for (i = 0; i < r->nfresh; i++) {
		row = sb_find(&sb, r->fresh[i]);
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
	int i;

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
	REQUIRE_STOPPED(t, p, 5000);
out:
	return !t->failed;
}

void
live_reload_model(const char *from, const char *to)
{
	static struct rp r;
	struct cl_child pr0 = CL_CHILD_INIT;
	struct tres t = { 0, "" };
	char name[96];

	live_setup();
	memset(&r, 0, sizeof(r));
	r.p = &live_p;
	r.from = from;
	r.to = to;
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
	snprintf(name, sizeof(name), "reload_resizes_pool (%s to %s)",
	    from != NULL ? from : "events", to != NULL ? to : "events");
	took(name);
	ck_assert_msg(!t.failed, "%s", t.msg);
}

START_TEST(reload_resizes_pool)
{
	live_reload_model(NULL, NULL);
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
	int a, b, fd = -1, n2, nk, i, e;

	REQUIRE(&t, (a = cl_free_port()) > 0 && (b = cl_free_port()) > 0 &&
	    a != b, "no free ports");
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
	REQUIRE(&t, cl_write_file(p->conf_path, CONF_LISTEN, both) == 0,
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
	REQUIRE(&t, cl_write_file(p->conf_path, CONF_LISTEN, lb) == 0,
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
	REQUIRE_STOPPED(&t, p, 5000);
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
	struct sb sb;
	char conf[256], ready[512], want[256], line[1024];
	pid_t before[MAXKIDS], kids[MAXKIDS];
	int nb, nk, i;

	snprintf(conf, sizeof(conf), CONF_POOL, 2, 300);
	REQUIRE(&t, h_start(p, conf, NULL, START_MS) == 0, "start failed");
	nb = h_children(p->pid, before, MAXKIDS);
	REQUIRE(&t, nb == 2, "%d children at start", nb);

	/* Line 4 is wrong; lines 1-3 would change the pool. */
	REQUIRE(&t, cl_write_file(p->conf_path, "listen = { \"127.0.0.1:0\" }\n"
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
	REQUIRE(&t, sb_dump(p, &sb) >= 0, "%s", sb.err);
	REQUIRE(&t, sb.gen == 1 && sb.n == 2, "scoreboard: generation %llu, "
	    "%d rows; want generation 1, 2 rows", sb.gen, sb.n);
	for (i = 0; i < 4; i++)
		REQUIRE(&t, echo_new(p->port, "still here"), "no echo after "
		    "the failed reload (try %d)", i);
	nk = h_children(p->pid, kids, MAXKIDS);
	REQUIRE(&t, nk == nb && cl_pid_in(before, nb, kids[0]) &&
	    cl_pid_in(before, nb, kids[1]), "the workers changed");

	/* A good file afterwards is taken. */
	snprintf(conf, sizeof(conf), CONF_POOL, 3, 300);
	REQUIRE(&t, cl_write_file(p->conf_path, "%s", conf) == 0, "rewrite");
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
	REQUIRE_STOPPED(&t, p, 5000);
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
/* resize_ttin_ttou's state, shared by its steps. */
struct rz {
	struct echod_proc *p;
	pid_t kids[MAXKIDS], own[3];
	int fds[3], nk;
};

/* SIGTTIN: a third worker; three connections land on three workers. */
static int
rz_grow(struct tres *t, struct rz *z)
{
	struct echod_proc *p = z->p;
	char msg[32];
	int i, j;

	REQUIRE(t, h_start(p, "listen = { \"127.0.0.1:0\" }\nworkers = 2\n"
	    "max_connections = 1\nlog_level = info\n", NULL, START_MS) == 0,
	    "start failed");
	REQUIRE(t, h_children(p->pid, z->kids, MAXKIDS) == 2,
	    "not 2 workers");
	REQUIRE(t, kill(p->pid, SIGTTIN) == 0, "SIGTTIN");
	z->nk = wait_nkids(p, 3, z->kids, 3000);
	REQUIRE(t, z->nk == 3, "%d children after SIGTTIN, want 3", z->nk);
	REQUIRE(t, log_wait(p, "SIGTTIN: one worker more, now 3", 1000),
	    "no 'SIGTTIN: one worker more, now 3'");
	for (i = 0; i < 3; i++) {
		REQUIRE(t, (z->fds[i] = h_connect(p->port, 0)) != -1,
		    "connect %d: %s", i, strerror(errno));
		snprintf(msg, sizeof(msg), "conn %d", i);
		REQUIRE(t, cl_echo(z->fds[i], msg, 3000), "conn %d not echoed "
		    "(a worker does not serve)", i);
		z->own[i] = cl_owner_child(p->pid, p->port, z->fds[i]);
		REQUIRE(t, cl_pid_in(z->kids, z->nk, z->own[i]), "conn %d on "
		    "pid %d", i, (int)z->own[i]);
		for (j = 0; j < i; j++)
			REQUIRE(t, z->own[j] != z->own[i], "conns %d and %d "
			    "both on pid %d (max_connections = 1)", j, i,
			    (int)z->own[i]);
	}
out:
	return !t->failed;
}

/* SIGUSR1: one row per live worker, each with one open. */
static int
rz_scoreboard(struct tres *t, struct rz *z)
{
	struct sb sb;
	const struct sb_row *r;
	int i;
	pid_t k;

	REQUIRE(t, sb_dump(z->p, &sb) >= 0, "%s", sb.err);
	REQUIRE(t, sb.n == 3, "%d scoreboard rows, want 3", sb.n);
	for (i = 0; i < z->nk; i++) {
		k = z->kids[i];
		r = sb_find(&sb, k);
		REQUIRE(t, r != NULL, "worker %d not in the scoreboard", (int)k);
		REQUIRE(t, h_worker_pid(z->p->pid, r->slot) == k, "row slot %u "
		    "has pid %d, but that slot's title is on pid %d", r->slot,
		    (int)k, (int)h_worker_pid(z->p->pid, r->slot));
		REQUIRE(t, strcmp(r->state, "ready") == 0 && r->open == 1,
		    "worker %d: %s, %llu open; want ready, 1", (int)k,
		    r->state, r->open);
	}
out:
	return !t->failed;
}

/* SIGTTOU: the newest slot drains its connection, then exits. */
static int
rz_shrink_draining(struct tres *t, struct rz *z)
{
	struct echod_proc *p = z->p;
	pid_t gone;
	int i;

	gone = h_worker_pid(p->pid, 2);
	REQUIRE(t, gone > 0, "no worker in slot 2 after SIGTTIN");
	REQUIRE(t, kill(p->pid, SIGTTOU) == 0, "SIGTTOU");
	REQUIRE(t, log_wait(p, "SIGTTOU: one worker fewer, now 2 (worker 2 "
	    "drains)", 2000), "no 'SIGTTOU: one worker fewer, now 2 (worker "
	    "2 drains)'");
	for (i = 0; i < 3 && z->own[i] != gone; i++)
		;
	REQUIRE(t, i < 3, "no connection on slot 2's worker %d", (int)gone);
	REQUIRE(t, cl_echo(z->fds[i], "draining", 2000), "the draining "
	    "worker stopped serving its connection");
	REQUIRE(t, h_alive(gone), "slot 2's worker exited with a "
	    "connection open");
	cl_close_fds(&z->fds[i], 1);
	REQUIRE(t, wait_dead(p, gone, 3000), "slot 2's worker %d still "
	    "alive after its connection closed", (int)gone);
	z->nk = wait_nkids(p, 2, z->kids, 2000);
	REQUIRE(t, z->nk == 2, "%d children after SIGTTOU, want 2", z->nk);
	cl_close_fds(z->fds, 3);
out:
	return !t->failed;
}

/* Two more SIGTTOU: down to one worker, which then stays. */
static int
rz_down_to_one(struct tres *t, struct rz *z)
{
	struct echod_proc *p = z->p;
	struct sb sb;
	int i, k;
	pid_t last;

	REQUIRE(t, kill(p->pid, SIGTTOU) == 0, "SIGTTOU");
	REQUIRE(t, log_wait(p, "SIGTTOU: one worker fewer, now 1", 2000),
	    "no 'SIGTTOU: one worker fewer, now 1'");
	z->nk = wait_nkids(p, 1, z->kids, 3000);
	REQUIRE(t, z->nk == 1, "%d children after the second SIGTTOU", z->nk);
	last = z->kids[0];
	REQUIRE(t, kill(p->pid, SIGTTOU) == 0, "SIGTTOU");
	REQUIRE(t, log_wait(p, "SIGTTOU: already down to one worker", 2000),
	    "no 'SIGTTOU: already down to one worker'");
	k = h_children(p->pid, z->kids, MAXKIDS);
	REQUIRE(t, k == 1 && z->kids[0] == last, "%d children after SIGTTOU "
	    "at one worker (want only %d)", k, (int)last);
	for (i = 0; i < 3; i++)
		REQUIRE(t, echo_new(p->port, "one left"), "no echo with one "
		    "worker (try %d)", i);
	sb_dump(p, &sb);
	REQUIRE(t, sb.n == 1 && sb.rows[0].pid == last, "%d scoreboard rows "
	    "with one worker (%s)", sb.n, sb.n < 0 ? sb.err : "");
	REQUIRE(t, h_children(p->pid, z->kids, MAXKIDS) == 1 &&
	    z->kids[0] == last, "the last worker changed");
	REQUIRE_STOPPED(t, p, 5000);
out:
	return !t->failed;
}

START_TEST(resize_ttin_ttou)
{
	static struct rz z;
	struct tres t = { 0, "" };

	memset(&z, 0, sizeof(z));
	z.p = &live_p;
	z.fds[0] = z.fds[1] = z.fds[2] = -1;
	(void)(rz_grow(&t, &z) && rz_scoreboard(&t, &z) &&
	    rz_shrink_draining(&t, &z) && rz_down_to_one(&t, &z));
	cl_close_fds(z.fds, 3);
	cl_log_dump_if_failed(&t, z.p);
	live_cleanup();
	took("resize_ttin_ttou");
	ck_assert_msg(!t.failed, "%s", t.msg);
}
END_TEST

/* ---- 5. a hung worker is aborted, killed and replaced ---- */

/* hung_worker's state, shared by its steps. */
struct hw {
	struct echod_proc *p;
	pid_t x, y, nx;  /* stopped worker, the other one, x's successor */
	long long t_stop, t_hung, t_dead;
	int c, slot, served;
};

/* Two workers, connection c on y; the other one (x, in slot) stopped. */
static int
hw_stop_one(struct tres *t, struct hw *h)
{
	struct echod_proc *p = h->p;
	int i;

	REQUIRE(t, h_start(p, "listen = { \"127.0.0.1:0\" }\nworkers = 2\n"
	    "worker_timeout = 1\nlog_level = info\n", NULL, START_MS) == 0,
	    "start failed");
	REQUIRE(t, (h->c = h_connect(p->port, 0)) != -1, "connect: %s",
	    strerror(errno));
	REQUIRE(t, cl_echo(h->c, "watch me", 2000), "no echo");
	h->y = cl_owner_child(p->pid, p->port, h->c);
	REQUIRE(t, h->y > 0, "no worker holds the connection");
	/* Stop the other one. */
	for (i = 0; i < 2; i++)
		if ((h->x = h_worker_pid(p->pid, (unsigned)i)) > 0 &&
		    h->x != h->y) {
			h->slot = i;
			break;
		}
	REQUIRE(t, h->slot != -1, "no second worker");
	h->x = h_worker_pid(p->pid, (unsigned)h->slot);
	live_stopped = h->x;
	h->t_stop = h_now_ms();
	REQUIRE(t, kill(h->x, SIGSTOP) == 0, "SIGSTOP: %s", strerror(errno));
out:
	return !t->failed;
}

/* Serve clients until x is called hung, dies and is replaced; bounded.
 * When it is called hung it is still stopped, with SIGABRT pending. */
static int
hw_serve_until_replaced(struct tres *t, struct hw *h)
{
	struct echod_proc *p = h->p;
	long long deadline = h->t_stop + 8000;
	char want[128], line[512], state;
	int i;

	snprintf(want, sizeof(want), "worker %d (pid %d) hung", h->slot,
	    (int)h->x);
	for (i = 0; i < 4000 && h_now_ms() < deadline; i++) {
		if (h->t_hung == 0 && cl_log_count(p, want) > 0) {
			h->t_hung = h_now_ms();
			state = (char)pf_state(h->x);
			REQUIRE(t, state == 'T' &&
			    pf_sig_pending(h->x, SIGABRT, 1),
			    "hung worker %d: state %c, SIGABRT %spending",
			    (int)h->x, state ? state : '?',
			    pf_sig_pending(h->x, SIGABRT, 1) ? "" : "not ");
		}
		if (h->t_hung && h->t_dead == 0 && !h_alive(h->x))
			h->t_dead = h_now_ms();
		if (h->t_dead && (h->nx = h_worker_pid(p->pid,
		    (unsigned)h->slot)) > 0 && h->nx != h->x)
			break;
		snprintf(line, sizeof(line), "meanwhile %d\n", i);
		REQUIRE(t, cl_echo(h->c, line, 2000), "the other worker "
		    "stopped serving its connection (iteration %d)", i);
		REQUIRE(t, echo_new(p->port, line), "a new connection was "
		    "not served while worker %d was stopped (iteration %d)",
		    h->slot, i);
		h->served += 2;
		h_drain_notify(p);
		h_poll_pause();
	}
	REQUIRE(t, h->t_hung != 0, "no log line '%s' within 8 s", want);
	REQUIRE(t, h->t_dead != 0, "hung worker %d still alive", (int)h->x);
	REQUIRE(t, h->nx > 0 && h->nx != h->x, "slot %d not refilled",
	    h->slot);
	live_stopped = -1;
out:
	return !t->failed;
}

/* 'hung' about worker_timeout after the stop, SIGKILL about 2 s later;
 * the other worker and its connection untouched. */
static int
hw_timings(struct tres *t, struct hw *h)
{
	struct echod_proc *p = h->p;
	long long hung = h->t_hung - h->t_stop, dead = h->t_dead - h->t_hung;
	pid_t kids[MAXKIDS];
	char want[128];
	int nk;

	printf("live: hung worker: SIGSTOP -> 'hung' %lld ms, 'hung' -> dead "
	    "%lld ms, dead -> replaced in slot %d; %d echoes meanwhile\n",
	    hung, dead, h->slot, h->served);
	fflush(stdout);
	/* The last heartbeat may be up to 250 ms older than the SIGSTOP. */
	REQUIRE(t, hung >= 700 && hung <= 3000,
	    "'hung' after %lld ms with worker_timeout = 1", hung);
	REQUIRE(t, dead >= 1500 && dead <= 3500, "dead %lld ms after 'hung'; "
	    "want SIGKILL about 2 s after SIGABRT", dead);
	snprintf(want, sizeof(want), "worker %d (pid %d) killed by signal 9",
	    h->slot, (int)h->x);
	REQUIRE(t, log_wait(p, want, 2000), "no log line '%s'", want);
	REQUIRE(t, h_worker_pid(p->pid, (unsigned)(1 - h->slot)) == h->y,
	    "the other worker changed");
	nk = h_children(p->pid, kids, MAXKIDS);
	REQUIRE(t, nk == 2, "%d children after the replacement", nk);
	REQUIRE(t, cl_echo(h->c, "still", 2000), "no echo at the end");
	cl_close_fds(&h->c, 1);
	REQUIRE_STOPPED(t, p, 5000);
out:
	return !t->failed;
}

START_TEST(hung_worker)
{
	static struct hw h;
	struct tres t = { 0, "" };

	memset(&h, 0, sizeof(h));
	h.p = &live_p;
	h.x = h.nx = -1;
	h.c = h.slot = -1;
	(void)(hw_stop_one(&t, &h) && hw_serve_until_replaced(&t, &h) &&
	    hw_timings(&t, &h));
	cl_close_fds(&h.c, 1);
	cl_log_dump_if_failed(&t, h.p);
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
	REQUIRE_STOPPED(&t, p, 5000);
	live_cleanup();

	/* user = "root" without allow_root: a configuration error. */
	REQUIRE(&t, h_spawn(p, "listen = { \"127.0.0.1:0\" }\nworkers = 2\n"
	    "user = \"root\"\n", NULL) == 0, "spawn failed");
	st = h_wait_exit(p, 5000);
	REQUIRE(&t, st != -1, "user = root without allow_root: still "
	    "running after 5 s");
	REQUIRE(&t, cl_exited_with(st, ECHOD_EXIT_CONFIG),
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
	REQUIRE_STOPPED(&t, p, 5000);
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

/* daemon_mode's state, shared by its steps. */
struct dm {
	char conf[128], pidf[128], conf2[128], pidf2[128], out[4096];
	int port, qport, hold;
	pid_t d, w, pp;
};

/* Run echod -d -c conf into m->out; its wait status, -1 on timeout. */
static int
dm_run(struct dm *m, const char *conf)
{
	const char *argv[] = { "echod", "-d", "-c", conf, NULL };

	return h_run(argv, m->out, sizeof(m->out), 10000);
}

/* echod -d returns at once, leaving a titled master in its own session
 * with two workers, its pid in the pidfile. */
static int
dm_detach(struct tres *t, struct dm *m)
{
	struct pf_stat ps;
	long long t0, el;
	int st;

	/* The detached daemon is reparented to us: we can reap it. */
	REQUIRE(t, prctl(PR_SET_CHILD_SUBREAPER, 1) == 0, "subreaper: %s",
	    strerror(errno));
	snprintf(live_dir, sizeof(live_dir), "/tmp/echod-live.XXXXXX");
	REQUIRE(t, mkdtemp(live_dir) != NULL, "mkdtemp: %s",
	    strerror(errno));
	/* nobody removes the pidfile after the privilege drop. */
	REQUIRE(t, chmod(live_dir, 0777) == 0, "chmod: %s", strerror(errno));
	snprintf(m->conf, sizeof(m->conf), "%s/echod.conf", live_dir);
	snprintf(m->pidf, sizeof(m->pidf), "%s/echod.pid", live_dir);
	REQUIRE(t, (m->port = cl_free_port()) > 0, "no free port");
	REQUIRE(t, cl_write_file(m->conf, "listen = { \"127.0.0.1:%d\" }\n"
	    "workers = 2\npidfile = \"%s\"\n", m->port, m->pidf) == 0,
	    "write conf");

	t0 = h_now_ms();
	st = dm_run(m, m->conf);
	el = h_now_ms() - t0;
	printf("live: echod -d returned after %lld ms\n", el);
	fflush(stdout);
	REQUIRE(t, st != -1, "echod -d did not return within 10 s");
	REQUIRE(t, cl_exited_with(st, 0),
	    "echod -d: wait status %#x, output: %s", st, m->out);
	REQUIRE(t, el < 3000, "echod -d took %lld ms to return", el);
	m->d = cl_pidfile_pid(m->pidf, 0);
	REQUIRE(t, m->d > 0, "no pid in %s", m->pidf);
	live_daemon = m->d;
	REQUIRE(t, h_alive(m->d), "pid %d from the pidfile is not alive",
	    (int)m->d);
	REQUIRE(t, proc_title_is(m->d, "echod: master"), "pid %d is not "
	    "titled 'echod: master'", (int)m->d);
	REQUIRE(t, pf_stat(m->d, &ps) == 0, "stat %d", (int)m->d);
	m->pp = ps.ppid;
	REQUIRE(t, ps.sid == m->d && ps.pgrp == m->d, "pid %d: session %d, "
	    "group %d; want both %d (setsid)", (int)m->d, (int)ps.sid,
	    (int)ps.pgrp, (int)m->d);
	REQUIRE(t, m->pp == 1 || m->pp == getpid(), "pid %d's parent is %d, "
	    "not 1 or us (subreaper %d)", (int)m->d, (int)m->pp,
	    (int)getpid());
	REQUIRE(t, (m->w = h_worker_pid(m->d, 0)) > 0 &&
	    h_worker_pid(m->d, 1) > 0, "the daemon has no workers 0 and 1");
	REQUIRE(t, echo_new(m->port, "detached"), "no echo from the daemon");
out:
	return !t->failed;
}

/* A second echod -d fails (the port is taken), and so does a third on
 * another port with the same pidfile (the lock); the first serves on. */
static int
dm_refused(struct tres *t, struct dm *m)
{
	int st;

	st = dm_run(m, m->conf);
	printf("live: second echod -d: wait status %#x, output: %s", st,
	    m->out);
	fflush(stdout);
	REQUIRE(t, st != -1 && WIFEXITED(st) && WEXITSTATUS(st) != 0,
	    "a second echod -d with the same configuration: wait status %#x",
	    st);
	REQUIRE(t, cl_pidfile_pid(m->pidf, 0) == m->d, "the pidfile changed");
	REQUIRE(t, h_alive(m->d) && echo_new(m->port, "still"), "the first "
	    "daemon suffered from the second");

	/* Another port, the same pidfile: the lock refuses it (after the
	 * detach, so the reason goes to syslog, not to this output). */
	snprintf(m->conf2, sizeof(m->conf2), "%s/locked.conf", live_dir);
	REQUIRE(t, (m->qport = cl_free_port()) > 0, "no free port");
	REQUIRE(t, cl_write_file(m->conf2, "listen = { \"127.0.0.1:%d\" }\n"
	    "workers = 2\npidfile = \"%s\"\n", m->qport, m->pidf) == 0,
	    "write conf");
	st = dm_run(m, m->conf2);
	printf("live: echod -d, pidfile locked: wait status %#x, output: %s",
	    st, m->out);
	fflush(stdout);
	REQUIRE(t, cl_exited_with(st, ECHOD_EXIT_OSERR), "pidfile locked: "
	    "wait status %#x, want exit %d", st, ECHOD_EXIT_OSERR);
	REQUIRE(t, cl_pidfile_pid(m->pidf, 0) == m->d, "the pidfile changed");
	REQUIRE(t, h_alive(m->d) && echo_new(m->port, "still"), "the first "
	    "daemon suffered from the third");
out:
	return !t->failed;
}

/* SIGTERM: the pidfile goes, then the process and its workers. */
static int
dm_sigterm(struct tres *t, struct dm *m)
{
	long long deadline;
	int st;

	REQUIRE(t, kill(m->d, SIGTERM) == 0, "SIGTERM: %s", strerror(errno));
	deadline = h_now_ms() + 5000;
	while (access(m->pidf, F_OK) == 0 && h_now_ms() < deadline)
		h_poll_pause();
	REQUIRE(t, access(m->pidf, F_OK) == -1 && errno == ENOENT, "%s "
	    "still there 5 s after SIGTERM", m->pidf);
	REQUIRE(t, cl_wait_gone(NULL, &m->d, 1, 5000) == 0, "pid %d still "
	    "alive 5 s after SIGTERM", (int)m->d);
	REQUIRE(t, !h_alive(m->w), "worker %d outlived the daemon",
	    (int)m->w);
	if (m->pp == getpid()) {
		REQUIRE(t, waitpid(m->d, &st, 0) == m->d, "waitpid: %s",
		    strerror(errno));
		REQUIRE(t, cl_exited_with(st, 0),
		    "the daemon's wait status %#x, want exit 0", st);
	}
	live_daemon = -1;
out:
	return !t->failed;
}

/* -d with the port taken: exit 71 with the error on the output. */
static int
dm_port_taken(struct tres *t, struct dm *m)
{
	char want[64];
	int st;

	REQUIRE(t, (m->hold = cl_listen_lo(&m->qport)) != -1, "hold a port: "
	    "%s", strerror(errno));
	snprintf(m->conf2, sizeof(m->conf2), "%s/taken.conf", live_dir);
	snprintf(m->pidf2, sizeof(m->pidf2), "%s/taken.pid", live_dir);
	REQUIRE(t, cl_write_file(m->conf2, "listen = { \"127.0.0.1:%d\" }\n"
	    "workers = 2\npidfile = \"%s\"\n", m->qport, m->pidf2) == 0,
	    "write conf");
	st = dm_run(m, m->conf2);
	if ((m->d = cl_pidfile_pid(m->pidf2, 0)) > 0)
		live_daemon = m->d; /* should not exist: clean up if it does */
	printf("live: echod -d, port taken: wait status %#x, output: %s", st,
	    m->out);
	fflush(stdout);
	REQUIRE(t, cl_exited_with(st, ECHOD_EXIT_OSERR), "port taken: wait "
	    "status %#x, want exit %d", st, ECHOD_EXIT_OSERR);
	snprintf(want, sizeof(want), "127.0.0.1:%d", m->qport);
	REQUIRE(t, strstr(m->out, want) != NULL &&
	    strstr(m->out, strerror(EADDRINUSE)) != NULL,
	    "port taken: output '%s' does not name %s and '%s'", m->out,
	    want, strerror(EADDRINUSE));
	REQUIRE(t, m->d <= 0, "a pidfile was written (pid %d)", (int)m->d);
out:
	return !t->failed;
}

START_TEST(daemon_mode)
{
	static struct dm m;
	struct tres t = { 0, "" };

	memset(&m, 0, sizeof(m));
	m.hold = -1;
	(void)(dm_detach(&t, &m) && dm_refused(&t, &m) &&
	    dm_sigterm(&t, &m) && dm_port_taken(&t, &m));
	cl_close_fds(&m.hold, 1);
	live_cleanup();
	took("daemon_mode");
	ck_assert_msg(!t.failed, "%s", t.msg);
}
END_TEST

Suite *
live_suite(void)
{
	Suite *s = suite_create("live");

	h_case_fixed(s, "reload", 40, live_setup, live_teardown,
	    H_TESTS(reload_resizes_pool, reload_listeners, reload_broken_file));
	h_case_fixed(s, "resize", 40, live_setup, live_teardown,
	    H_TESTS(resize_ttin_ttou, hung_worker));
	h_case_fixed(s, "process", 40, live_setup, live_teardown,
	    H_TESTS(privilege_drop, daemon_mode));
	return s;
}
