/*
 * check_reload: generations and reload, end to end, plus the listener
 * plan (which listeners a reload keeps, opens, or cannot switch) as a
 * table.
 *
 * A reload whose new workers cannot start leaves the serving generation
 * alone; a drain that overran is killed and reported once; a storm of
 * SIGHUPs at 256 workers never wedges the master; a reload cannot move
 * the pidfile.  Every wait polls with a deadline; every daemon is stopped
 * by pid.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clients.h"
#include "harness.h"
#include "procfs.h"
#include "listener.h"
#include "master_int.h"
#include "settings.h"
#include "suites.h"

#define START_MS 20000

static void
finish(struct tres *t, struct echod_proc *p)
{
	cl_log_dump_if_failed(t, p);
	h_cleanup(p);
	ck_assert_msg(!t->failed, "%s", t->msg);
}

/* A fresh connection is echoed. */
static int
echo_fresh(int port, const char *msg)
{
	int fd = h_connect(port, 0), ok;

	if (fd == -1)
		return 0;
	ok = cl_echo(fd, msg, 5000);
	close(fd);
	return ok;
}

/* ---- 1. a reload whose workers cannot start (issue 9, defect 1) ---- */

#define CONF_MAXCONN "listen = { \"127.0.0.1:0\" }\nworkers = 2\n" \
	"max_connections = %d\n"

/*
 * The master's address space is capped a little above what it uses, so
 * that a worker of the reloaded configuration (max_connections raised
 * to a million: a table of a few MiB) exits 71 before it is ready, as
 * under `ulimit -v`.  Workers already running keep their own limits.
 */
static int
cap_address_space(pid_t pid, struct rlimit *old)
{
	struct rlimit rl;
	long kb = pf_status_num(pid, "VmSize");

	if (kb <= 0 || cl_prlimit(pid, RLIMIT_AS, NULL, old) == -1)
		return -1;
	rl.rlim_cur = (rlim_t)(kb + 1024) * 1024;
	rl.rlim_max = old->rlim_max;
	return cl_prlimit(pid, RLIMIT_AS, &rl, NULL);
}

START_TEST(failed_reload_keeps_serving)
{
	struct echod_proc p;
	struct tres t = { 0, "" };
	struct rlimit old;
	char msg[512], line[1024], asan[1024];
	pid_t w0, w1;

	cl_proc_init(&p);
	/*
	 * In an ASan build (make check-asan), LeakSanitizer needs a 2 MB
	 * stack at exit, which the capped address space cannot give.
	 */
	snprintf(asan, sizeof(asan), "%s:detect_leaks=0",
	    getenv("ASAN_OPTIONS") != NULL ? getenv("ASAN_OPTIONS") : "");
	setenv("ASAN_OPTIONS", asan, 1);
	REQUIRE(&t, h_start(&p, "listen = { \"127.0.0.1:0\" }\nworkers = 2\n"
	    "max_connections = 100\n", NULL, START_MS) == 0, "start failed");
	w0 = h_worker_pid(p.pid, 0);
	w1 = h_worker_pid(p.pid, 1);
	REQUIRE(&t, w0 > 0 && w1 > 0, "no workers 0 and 1");
	REQUIRE(&t, cap_address_space(p.pid, &old) == 0, "prlimit: %s",
	    strerror(errno));
	REQUIRE(&t, cl_write_file(p.conf_path, CONF_MAXCONN, 1000000) == 0,
	    "rewrite: %s", strerror(errno));
	h_drain_notify(&p);
	REQUIRE(&t, kill(p.pid, SIGHUP) == 0, "SIGHUP: %s", strerror(errno));

	REQUIRE(&t, h_wait_notify(&p, "reload failed", 15000, msg,
	    sizeof(msg)) == 0, "no READY=1 saying 'reload failed' within "
	    "15 s (master %s)", h_alive(p.pid) ? "alive" : "gone");
	REQUIRE(&t, strstr(msg, "READY=1") != NULL &&
	    strstr(msg, "still serving generation 1") != NULL,
	    "the datagram: '%s'", msg);
	REQUIRE(&t, cl_log_line(&p, "reload failed: worker", line,
	    sizeof(line)), "no 'reload failed: worker ...' log line");
	REQUIRE(&t, strstr(line, " of generation 2 exited with status 71 "
	    "before it was ready; still serving generation 1") != NULL,
	    "the log line: %s", line);
	printf("reload: %s\n", line);
	REQUIRE(&t, h_alive(p.pid), "the master is gone");
	REQUIRE(&t, h_alive(w0) && h_alive(w1), "the serving workers %d, "
	    "%d did not survive the failed reload", (int)w0, (int)w1);
	REQUIRE(&t, echo_fresh(p.port, "still serving\n"), "no echo after "
	    "the failed reload");

	/* A later SIGHUP, with room again, succeeds. */
	REQUIRE(&t, cl_prlimit(p.pid, RLIMIT_AS, &old, NULL) == 0,
	    "prlimit: %s", strerror(errno));
	h_drain_notify(&p);
	REQUIRE(&t, kill(p.pid, SIGHUP) == 0, "SIGHUP: %s", strerror(errno));
	REQUIRE(&t, h_wait_notify(&p, "ready: generation 3", 15000, msg,
	    sizeof(msg)) == 0, "the next reload did not make generation 3 "
	    "ready");
	REQUIRE(&t, echo_fresh(p.port, "reloaded\n"), "no echo after the "
	    "second reload");
	REQUIRE(&t, cl_stop(&p, 10000) == 0, "stop: not a clean exit");
out:
	finish(&t, &p);
}
END_TEST

/* ---- 2. a drain that overran is killed once (defect 3) ---- */

/*
 * The test traces the worker and stops it (PTRACE_INTERRUPT) before
 * the reload tells it to drain: it hangs like a worker stuck in a drain,
 * and when the master kills it, its death is reported to the test
 * first, so the master cannot reap it until the test lets it.  That is
 * the window in which the old bookkeeping killed and warned again on
 * every timer pass.
 */
static int
wait_stopped(pid_t w, int timeout_ms)
{
	long long deadline = h_now_ms() + timeout_ms;
	pid_t r;
	int st;

	while (h_now_ms() < deadline) {
		if ((r = waitpid(w, &st, __WALL | WNOHANG)) == w)
			return WIFSTOPPED(st) ? 0 : -1;
		if (r == -1)
			return -1;
		h_poll_pause();
	}
	return -1;
}

/* Let the traced worker's death go to the master. */
static void
release(pid_t w)
{
	long long deadline = h_now_ms() + 5000;
	pid_t r;
	int st;

	kill(w, SIGKILL);
	while (h_now_ms() < deadline) {
		r = waitpid(w, &st, __WALL | WNOHANG);
		if (r == -1 || (r == w && !WIFSTOPPED(st)))
			return;
		h_poll_pause();
	}
}

START_TEST(drain_kill_once)
{
	struct echod_proc p;
	struct tres t = { 0, "" };
	pid_t w = -1;
	int fd = -1, n;

	cl_proc_init(&p);
	REQUIRE(&t, h_start(&p, "listen = { \"127.0.0.1:0\" }\nworkers = 1\n"
	    "shutdown_timeout = 1\n", NULL, START_MS) == 0, "start failed");
	REQUIRE(&t, (w = h_worker_pid(p.pid, 0)) > 0, "no worker 0");
	REQUIRE(&t, (fd = h_connect(p.port, 0)) != -1 &&
	    cl_echo(fd, "held\n", 5000), "no echo");
	REQUIRE(&t, ptrace(PTRACE_SEIZE, w, NULL, NULL) == 0,
	    "PTRACE_SEIZE %d: %s", (int)w, strerror(errno));
	REQUIRE(&t, ptrace(PTRACE_INTERRUPT, w, NULL, NULL) == 0 &&
	    wait_stopped(w, 10000) == 0, "worker %d did not stop", (int)w);
	REQUIRE(&t, kill(p.pid, SIGHUP) == 0, "SIGHUP: %s", strerror(errno));
	REQUIRE(&t, cl_log_wait(&p, "still draining after", 1, 15000),
	    "no 'still draining after 1 s: killing it' within 15 s");
	/* Killed, and not yet reaped: 3 s of timer passes. */
	cl_log_wait(&p, "still draining after", 2, 3000);
	n = cl_log_count(&p, "still draining after");
	release(w);
	w = -1;
	REQUIRE(&t, n == 1, "'still draining ... killing it' logged %d times "
	    "for one worker", n);
	REQUIRE(&t, cl_log_wait(&p, "killed by signal 9", 1, 5000),
	    "the master did not reap the killed worker");
	printf("reload: drain overran: killed and logged once\n");
	REQUIRE(&t, cl_stop(&p, 10000) == 0, "stop: not a clean exit");
out:
	if (w > 0)
		release(w);
	if (fd != -1)
		close(fd);
	finish(&t, &p);
}
END_TEST

/* ---- 3. a reload storm at 256 workers (defect 10) ---- */

static char story[1 << 22];

/* Where the last occurrence of needle starts in story, or -1. */
static long
last_at(const char *needle)
{
	const char *s = story, *last = NULL;

	while ((s = strstr(s, needle)) != NULL)
		last = s++;
	return last != NULL ? (long)(last - story) : -1;
}

/*
 * Every reload begun has ended, none is due: the last reload line of the
 * master is an end (ready, or failed), after the last begin, which came
 * after the last SIGHUP that had to wait ("still starting": the one
 * reload it asks for begins once the current one ends).  By order, not
 * by counts: a recycle or a second failure line cannot unbalance it.
 */
static int
settled(struct echod_proc *p)
{
	long begun, due, ended, failed;

	h_log_read(p, story, sizeof(story));
	begun = last_at("SIGHUP: reloading");
	due = last_at("is still starting; reloading again");
	ended = last_at("after the reload began");
	failed = last_at("reload failed");
	if (failed > ended)
		ended = failed;
	return begun >= 0 && ended > begun && due < begun;
}

/* For a failure: the counts and the master's last reload lines. */
static const char *
reload_story(struct echod_proc *p)
{
	static char out[4096];
	const char *keys[] = { "SIGHUP", "ready: generation", "reload failed",
		"recycl" };
	char *line, *save = NULL;
	const char *tail[12];
	const size_t nkeys = sizeof(keys) / sizeof(keys[0]), ntail = 12;
	size_t n = 0, i, k, len;

	len = (size_t)snprintf(out, sizeof(out), "%d begun, %d ended, %d "
	    "failed, %d waited; last reload lines:\n",
	    cl_log_count(p, "SIGHUP: reloading"),
	    cl_log_count(p, "after the reload began"),
	    cl_log_count(p, "reload failed"),
	    cl_log_count(p, "is still starting"));
	h_log_read(p, story, sizeof(story));
	for (line = strtok_r(story, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save))
		for (k = 0; k < nkeys; k++)
			if (strstr(line, "master") && strstr(line, keys[k])) {
				tail[n++ % ntail] = line;
				break;
			}
	for (i = n > ntail ? n - ntail : 0; i < n && len < sizeof(out); i++)
		len += (size_t)snprintf(out + len, sizeof(out) - len,
		    "%.200s\n", tail[i % ntail]);
	return out;
}

START_TEST(reload_storm)
{
	struct echod_proc p;
	struct tres t = { 0, "" };
	char needle[128], line[512];
	long long deadline, t0;
	int fds[3] = { -1, -1, -1 }, i, gen;
	pid_t kids[1024], victim;

	cl_proc_init(&p);
	REQUIRE(&t, h_start(&p, "listen = { \"127.0.0.1:0\" }\nworkers = 256\n"
	    "max_connections = 64\nshutdown_timeout = 60\n", NULL,
	    60000) == 0, "start with 256 workers failed");
	for (i = 0; i < 3; i++)
		REQUIRE(&t, (fds[i] = h_connect(p.port, 0)) != -1 &&
		    cl_echo(fds[i], "idle\n", 5000), "client %d: no echo", i);
	t0 = h_now_ms();
	for (i = 0; i < 40; i++) {
		REQUIRE(&t, kill(p.pid, SIGHUP) == 0, "SIGHUP %d: %s", i,
		    strerror(errno));
		cl_notify_drain(&p);
		h_poll_pause();
	}
	deadline = h_now_ms() + 120000;
	while (!settled(&p) && h_alive(p.pid) && h_now_ms() < deadline &&
	    cl_log_count(&p, "no free worker slot") == 0) {
		cl_notify_drain(&p);
		h_poll_pause();
	}
	REQUIRE(&t, h_alive(p.pid), "the master died in the storm");
	REQUIRE(&t, cl_log_count(&p, "no free worker slot") == 0,
	    "the slots ran out: 'no free worker slot'");
	REQUIRE(&t, settled(&p), "the reloads did not settle in 120 s: %s",
	    reload_story(&p));
	REQUIRE(&t, cl_log_count(&p, "reload failed") == 0, "a reload failed");
	gen = 1 + cl_log_count(&p, "SIGHUP: reloading");
	printf("reload: 40 SIGHUPs -> %d reloads, settled after %lld ms\n",
	    gen - 1, h_now_ms() - t0);
	REQUIRE(&t, gen <= 41, "%d generations", gen);

	REQUIRE(&t, kill(p.pid, SIGUSR1) == 0, "SIGUSR1");
	snprintf(needle, sizeof(needle), "scoreboard: generation %d, "
	    "256/256 workers ready", gen);
	REQUIRE(&t, cl_log_wait(&p, needle, 1, 10000), "no '%s'", needle);

	/* One kill -9 does not stop the master. */
	/* A draining worker may end and be reaped before the kill: retry. */
	for (i = 0, victim = -1; i < 20 && victim == -1; i++) {
		REQUIRE(&t, h_children(p.pid, kids, 1024) > 0, "no children");
		victim = kids[0];
		if (kill(victim, SIGKILL) == -1) {
			REQUIRE(&t, errno == ESRCH, "kill -9 %d: %s",
			    (int)victim, strerror(errno));
			victim = -1;
		}
	}
	REQUIRE(&t, victim != -1, "every child ended before its kill -9");
	/* (It may have ended its drain meanwhile: any end will do.) */
	snprintf(needle, sizeof(needle), "(pid %d) ", (int)victim);
	REQUIRE(&t, cl_log_wait(&p, needle, 1, 10000), "the master did not "
	    "reap worker %d", (int)victim);
	cl_log_line(&p, needle, line, sizeof(line));
	printf("reload: after the storm: %s\n", line);
	REQUIRE(&t, h_alive(p.pid) && cl_log_count(&p, "no worker left") == 0,
	    "the master stopped after one kill -9");
	REQUIRE(&t, echo_fresh(p.port, "after the storm\n"), "no echo");
	for (i = 0; i < 3; i++) {
		close(fds[i]);
		fds[i] = -1;
	}
	REQUIRE(&t, cl_stop(&p, 30000) == 0, "stop: not a clean exit");
out:
	for (i = 0; i < 3; i++)
		if (fds[i] != -1)
			close(fds[i]);
	finish(&t, &p);
}
END_TEST

/*
 * Reloads faster than drains, each leaving a client on the generation it
 * retires: draining generations pile up unless bounded.  Slots hold at
 * most three generations (3 x 4 here); beyond that the oldest draining
 * workers are killed.
 */
#define SMALL_STORM 60

START_TEST(reload_storm_held_clients)
{
	struct echod_proc p;
	struct tres t = { 0, "" };
	int fds[SMALL_STORM], i, n, killed;
	pid_t kids[1024];
	long long deadline;

	for (i = 0; i < SMALL_STORM; i++)
		fds[i] = -1;
	cl_proc_init(&p);
	REQUIRE(&t, h_start(&p, "listen = { \"127.0.0.1:0\" }\nworkers = 4\n"
	    "shutdown_timeout = 60\n", NULL, START_MS) == 0, "start failed");
	for (i = 0; i < SMALL_STORM; i++) {
		REQUIRE(&t, (fds[i] = h_connect(p.port, 0)) != -1 &&
		    cl_echo(fds[i], "held\n", 5000), "client %d: no echo", i);
		REQUIRE(&t, kill(p.pid, SIGHUP) == 0, "SIGHUP %d", i);
		cl_notify_drain(&p);
		h_poll_pause();
	}
	/* Two reloads may be left, each bounded by RELOAD_TIMEOUT_MS (30 s). */
	deadline = h_now_ms() + 75000;
	while (!settled(&p) && h_alive(p.pid) && h_now_ms() < deadline) {
		cl_notify_drain(&p);
		h_poll_pause();
	}
	REQUIRE(&t, h_alive(p.pid), "the master died in the storm");
	REQUIRE(&t, settled(&p), "the reloads did not settle in 75 s: %s",
	    reload_story(&p));
	n = h_children(p.pid, kids, 1024);
	killed = cl_log_count(&p, "needs its slot");
	printf("reload: %d reloads with %d held clients: %d children, %d "
	    "draining workers killed for a slot\n",
	    cl_log_count(&p, "SIGHUP: reloading"), SMALL_STORM, n, killed);
	REQUIRE(&t, n <= 12, "%d children of a 4-worker pool: the draining "
	    "generations were not bounded", n);
	REQUIRE(&t, echo_fresh(p.port, "bounded\n"), "no echo");
	for (i = 0; i < SMALL_STORM; i++) {
		close(fds[i]);
		fds[i] = -1;
	}
	REQUIRE(&t, cl_stop(&p, 30000) == 0, "stop: not a clean exit");
out:
	for (i = 0; i < SMALL_STORM; i++)
		if (fds[i] != -1)
			close(fds[i]);
	finish(&t, &p);
}
END_TEST

/* ---- 4. a reload cannot move the pidfile (defect 15) ---- */

static pid_t
pidfile_pid(const char *path)
{
	char buf[32];
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return (pid_t)atoi(buf);
}

#define CONF_PIDFILE "listen = { \"127.0.0.1:%d\" }\nworkers = 1\n" \
	"pidfile = \"%s\"\n"

START_TEST(pidfile_kept_on_reload)
{
	struct tres t = { 0, "" };
	struct echod_proc p;
	char dir[64], conf[128], pidf[128], other[128], out[2048];
	const char *argv[] = { "echod", "-d", "-c", conf, NULL };
	long long deadline;
	pid_t d = -1, w;
	int port, st;

	cl_proc_init(&p);
	REQUIRE(&t, prctl(PR_SET_CHILD_SUBREAPER, 1) == 0, "subreaper: %s",
	    strerror(errno));
	snprintf(dir, sizeof(dir), "/tmp/echod-reload.XXXXXX");
	REQUIRE(&t, mkdtemp(dir) != NULL, "mkdtemp: %s", strerror(errno));
	REQUIRE(&t, chmod(dir, 0777) == 0, "chmod: %s", strerror(errno));
	snprintf(conf, sizeof(conf), "%s/echod.conf", dir);
	snprintf(pidf, sizeof(pidf), "%s/echod.pid", dir);
	snprintf(other, sizeof(other), "%s/precious", dir);
	REQUIRE(&t, cl_write_file(other, "precious\n") == 0, "write");
	REQUIRE(&t, (port = cl_free_port()) > 0, "no free port");
	REQUIRE(&t, cl_write_file(conf, CONF_PIDFILE, port, pidf) == 0,
	    "write conf");
	st = h_run(argv, out, sizeof(out), 10000);
	REQUIRE(&t, st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	    "echod -d: wait status %#x: %s", st, out);
	REQUIRE(&t, (d = pidfile_pid(pidf)) > 0, "no pid in %s", pidf);
	REQUIRE(&t, (w = h_worker_pid(d, 0)) > 0, "no worker 0");

	/* Reload to a pidfile naming a file echod does not own. */
	REQUIRE(&t, cl_write_file(conf, CONF_PIDFILE, port, other) == 0,
	    "rewrite conf");
	REQUIRE(&t, kill(d, SIGHUP) == 0, "SIGHUP: %s", strerror(errno));
	deadline = h_now_ms() + 10000;
	while (h_alive(w) && h_now_ms() < deadline)
		h_poll_pause();
	REQUIRE(&t, !h_alive(w), "generation 1 still there 10 s after "
	    "SIGHUP");
	REQUIRE(&t, echo_fresh(port, "reloaded\n"), "no echo after reload");

	REQUIRE(&t, kill(d, SIGTERM) == 0, "SIGTERM: %s", strerror(errno));
	deadline = h_now_ms() + 10000;
	while (waitpid(d, &st, WNOHANG) != d && h_now_ms() < deadline)
		h_poll_pause();
	REQUIRE(&t, !h_alive(d), "the daemon is still running");
	d = -1;
	REQUIRE(&t, access(other, F_OK) == 0, "%s, named by the reloaded "
	    "configuration, was deleted on exit", other);
	REQUIRE(&t, access(pidf, F_OK) == -1, "the real pidfile %s was left "
	    "behind", pidf);
	printf("reload: a reloaded pidfile is not echod's to delete\n");
out:
	if (d > 0) {
		kill(d, SIGKILL);
		waitpid(d, &st, 0);
	}
	unlink(other);
	unlink(pidf);
	unlink(conf);
	rmdir(dir);
	finish(&t, &p);
}
END_TEST

/* ---- 5. 127.0.0.1:X then *:X: refused with the reason (defect 14) ---- */

START_TEST(overlapping_reload_refused)
{
	struct echod_proc p;
	struct tres t = { 0, "" };
	char conf[128], msg[512], line[1024];
	int port;

	cl_proc_init(&p);
	REQUIRE(&t, (port = cl_free_port()) > 0, "no free port");
	snprintf(conf, sizeof(conf), "listen = { \"127.0.0.1:%d\" }\n"
	    "workers = 1\n", port);
	REQUIRE(&t, h_start(&p, conf, NULL, START_MS) == 0, "start failed");
	REQUIRE(&t, cl_write_file(p.conf_path, "listen = { \"*:%d\" }\n"
	    "workers = 1\n", port) == 0, "rewrite");
	h_drain_notify(&p);
	REQUIRE(&t, kill(p.pid, SIGHUP) == 0, "SIGHUP: %s", strerror(errno));
	REQUIRE(&t, h_wait_notify(&p, "reload failed", 10000, msg,
	    sizeof(msg)) == 0, "no 'reload failed'");
	REQUIRE(&t, cl_log_line(&p, "overlaps", line, sizeof(line)),
	    "the log does not say why: no 'overlaps'");
	printf("reload: %s\n", line);
	REQUIRE(&t, echo_fresh(port, "still\n"), "no echo after the refusal");
	REQUIRE(&t, cl_stop(&p, 10000) == 0, "stop: not a clean exit");
out:
	finish(&t, &p);
}
END_TEST

/* ---- the listener plan: pure ---- */

struct plan_case {
	const char *name;
	const char *old[3];
	const char *nw[3];
	int rc;
	int keep[3];
	int bad_new, bad_old;
};

static const struct plan_case plans[] = {
	{ "unchanged", { "127.0.0.1:7007" }, { "127.0.0.1:7007" }, 0, { 0 },
	    0, 0 },
	{ "same address, another spelling", { "[::1]:7007" },
	    { "[0:0::1]:7007" }, 0, { 0 }, 0, 0 },
	{ "one added, one kept", { "127.0.0.1:7007" },
	    { "127.0.0.1:7008", "127.0.0.1:7007" }, 0, { -1, 0 }, 0, 0 },
	{ "moved to another port", { "127.0.0.1:7007" },
	    { "127.0.0.1:7008" }, 0, { -1 }, 0, 0 },
	{ "specific to wildcard on the same port", { "127.0.0.1:7007" },
	    { "*:7007" }, -1, { -1 }, 0, 0 },
	{ "wildcard to specific on the same port", { "*:7007" },
	    { "[::1]:7007" }, -1, { -1 }, 0, 0 },
	{ "0.0.0.0 to 127.0.0.1", { "0.0.0.0:7007" }, { "127.0.0.1:7007" },
	    -1, { -1 }, 0, 0 },
	{ "[::] (v6 only) to 127.0.0.1: no overlap", { "[::]:7007" },
	    { "127.0.0.1:7007" }, 0, { -1 }, 0, 0 },
	{ "the wildcard kept, a new specific one beside it",
	    { "*:7007", "127.0.0.1:7008" }, { "*:7007", "127.0.0.1:7009" }, 0,
	    { 0, -1 }, 0, 0 },
	{ "the second entry is the overlap",
	    { "127.0.0.1:7008", "127.0.0.1:7007" },
	    { "127.0.0.1:7008", "*:7007" }, -1, { 0, -1 }, 1, 1 },
	{ "port 0 never overlaps", { "127.0.0.1:0" }, { "*:0" }, 0, { -1 },
	    0, 0 },
};

static size_t
parse_list(const char *const *specs, struct listen_addr *la)
{
	char err[256];
	size_t n;

	for (n = 0; n < 3 && specs[n] != NULL; n++)
		ck_assert_msg(listener_parse(specs[n], &la[n], err,
		    sizeof(err)) == 0, "%s", err);
	return n;
}

START_TEST(plan_table)
{
	const struct plan_case *c = &plans[_i];
	struct listen_addr old[3], nw[3];
	size_t nold, nnew, i, bn = 99, bo = 99;
	int keep[3], rc;

	nold = parse_list(c->old, old);
	nnew = parse_list(c->nw, nw);
	rc = listener_plan(old, nold, nw, nnew, keep, &bn, &bo);
	ck_assert_msg(rc == c->rc, "%s: rc %d, want %d", c->name, rc, c->rc);
	if (rc == -1) {
		ck_assert_msg(bn == (size_t)c->bad_new &&
		    bo == (size_t)c->bad_old, "%s: overlap %zu/%zu, want "
		    "%d/%d", c->name, bn, bo, c->bad_new, c->bad_old);
		return;
	}
	for (i = 0; i < nnew; i++)
		ck_assert_msg(keep[i] == c->keep[i], "%s: keep[%zu] %d, want "
		    "%d", c->name, i, keep[i], c->keep[i]);
}
END_TEST

/* ---- a starting generation's next step: pure ---- */

struct step_case {
	const char *name;
	unsigned ready, live, target;
	uint64_t now, deadline;
	enum gen_step want;
};

static const struct step_case steps[] = {
	{ "just begun", 0, 0, 4, 1000, 31000, GEN_FILL },
	{ "all forked, none ready", 0, 4, 4, 1000, 31000, GEN_WAIT },
	{ "half ready", 2, 4, 4, 20000, 31000, GEN_WAIT },
	{ "one died after its ready, respawn waiting", 3, 4, 4, 2000, 31000,
	    GEN_WAIT },
	{ "one owed a slot", 3, 3, 4, 2000, 31000, GEN_FILL },
	{ "all ready", 4, 4, 4, 2000, 31000, GEN_COMMIT },
	{ "all ready exactly at the deadline", 4, 4, 4, 31000, 31000,
	    GEN_COMMIT },
	{ "deadline reached", 3, 4, 4, 31000, 31000, GEN_ABANDON },
	{ "deadline passed, none forked", 0, 0, 4, 40000, 31000,
	    GEN_ABANDON },
	{ "more ready than wanted (shrunk)", 5, 5, 4, 0, 31000, GEN_COMMIT },
};

START_TEST(step_table)
{
	const struct step_case *c = &steps[_i];
	enum gen_step got;

	got = gen_step(c->ready, c->live, c->target, c->now, c->deadline);
	ck_assert_msg(got == c->want, "%s: step %d, want %d", c->name,
	    (int)got, (int)c->want);
}
END_TEST

/* ---- settings_build: the file, then the command line ---- */

START_TEST(settings_layers)
{
	char dir[] = "/tmp/echod-settings.XXXXXX", path[64], err[1024];
	char *cli[] = { "127.0.0.1:9" };
	struct settings set = { NULL, NULL, 0, NULL };
	struct conf c;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/echod.conf", dir);
	ck_assert_int_eq(cl_write_file(path, "workers = 3\n"
	    "listen = { \"127.0.0.1:7\", \"127.0.0.1:8\" }\n"), 0);

	/* No file: the built-in defaults. */
	ck_assert_int_eq(settings_build(&c, &set, err, sizeof(err)),
	    SETTINGS_OK);
	ck_assert_str_eq(c.listen[0], CONF_DEFAULT_LISTEN);
	conf_free(&c);

	/* The file, then -w and -l over it. */
	set.config_path = path;
	ck_assert_int_eq(settings_build(&c, &set, err, sizeof(err)),
	    SETTINGS_OK);
	ck_assert_int_eq(c.workers, 3);
	ck_assert_uint_eq(c.nlisten, 2);
	conf_free(&c);
	set.cli_workers = "5";
	set.cli_listen = cli;
	set.ncli_listen = 1;
	ck_assert_int_eq(settings_build(&c, &set, err, sizeof(err)),
	    SETTINGS_OK);
	ck_assert_int_eq(c.workers, 5);
	ck_assert_uint_eq(c.nlisten, 1);
	ck_assert_str_eq(c.listen[0], "127.0.0.1:9");
	conf_free(&c);

	/* Which layer is wrong decides the exit code in main.c. */
	set.cli_workers = "many";
	ck_assert_int_eq(settings_build(&c, &set, err, sizeof(err)),
	    SETTINGS_BAD_CLI);
	ck_assert_msg(strstr(err, "workers") != NULL, "%s", err);
	conf_free(&c);
	ck_assert_int_eq(cl_write_file(path, "workers = lots\n"), 0);
	ck_assert_int_eq(settings_build(&c, &set, err, sizeof(err)),
	    SETTINGS_BAD_FILE);
	ck_assert_msg(strstr(err, path) != NULL, "%s", err);
	conf_free(&c);
	unlink(path);
	rmdir(dir);
}
END_TEST

/* ---- proxied listeners (proxy_listen, issue 12) ---- */

/*
 * listen and proxy_listen on 127.0.0.1 ports, with 127.0.0.1 trusted:
 * PX_CONF's two %s are the lists' entries.
 */
#define PX_CONF "listen = { %s }\nproxy_listen = { %s }\n"                \
	"proxy_trusted = { \"127.0.0.1/32\" }\nworkers = 2\nlog_level = info\n"
#define PX_RELOAD_MS 15000

/* "\"127.0.0.1:P\"" for a list, into buf. */
static const char *
px_entry(char *buf, size_t len, int port)
{
	snprintf(buf, len, "\"127.0.0.1:%d\"", port);
	return buf;
}

/*
 * Rewrite the file with the lists plain and proxy, SIGHUP, wait for
 * READY=1 (into ready) and for the older generation's workers (old, n)
 * to be gone: 1, or 0 with why in t.
 */
static int
px_reload(struct tres *t, struct echod_proc *p, const char *plain,
    const char *proxy, char *ready, size_t len)
{
	pid_t old[64];
	int n;

	n = h_children(p->pid, old, 64);
	if (cl_write_file(p->conf_path, PX_CONF, plain, proxy) == -1) {
		cl_fail(t, __LINE__, "rewrite: %s", strerror(errno));
		return 0;
	}
	h_drain_notify(p);
	if (kill(p->pid, SIGHUP) == -1 ||
	    h_wait_notify(p, "RELOADING=1", PX_RELOAD_MS, NULL, 0) == -1 ||
	    h_wait_notify(p, "READY=1", PX_RELOAD_MS, ready, len) == -1) {
		cl_fail(t, __LINE__, "no READY=1 after the SIGHUP (master %s)",
		    h_alive(p->pid) ? "alive" : "gone");
		return 0;
	}
	if (strstr(ready, "reload failed") != NULL) {
		cl_fail(t, __LINE__, "the reload failed: %s", ready);
		return 0;
	}
	if (cl_wait_gone(p, old, n, 10000) != 0) {
		cl_fail(t, __LINE__, "the old generation is still there 10 s "
		    "after READY=1");
		return 0;
	}
	return 1;
}

/* The master still serves a plain client, and is alive. */
static int
px_serving(struct echod_proc *p, int port)
{
	return h_alive(p->pid) && echo_fresh(port, "still plain");
}

/* Connecting to port works (something listens). */
static int
px_listening(int port)
{
	int fd = h_connect(port, 0);

	if (fd == -1)
		return 0;
	close(fd);
	return 1;
}

/*
 * Start with listen { a, d } and proxy_listen { b }; reload to add c to
 * proxy_listen, to remove b, to move a from listen to proxy_listen (its
 * socket kept: the same inode, and a plain client is no longer echoed),
 * then back.  d serves plain clients throughout; the master never dies.
 */
START_TEST(proxy_listeners_reload)
{
	struct echod_proc p;
	struct tres t = { 0, "" };
	char ea[32], eb[32], ec[32], ed[32], plain[96], proxy[96];
	char ready[512], want[256];
	unsigned long ino;
	int a, b, c, d, fd = -1, r;

	cl_proc_init(&p);
	a = cl_free_port();
	b = cl_free_port();
	c = cl_free_port();
	d = cl_free_port();
	REQUIRE(&t, a > 0 && b > 0 && c > 0 && d > 0 && a != b && a != c &&
	    a != d && b != c && b != d && c != d, "no four free ports");
	px_entry(ea, sizeof(ea), a);
	px_entry(eb, sizeof(eb), b);
	px_entry(ec, sizeof(ec), c);
	px_entry(ed, sizeof(ed), d);
	snprintf(plain, sizeof(plain), "%s, %s", ea, ed);
	snprintf(want, sizeof(want), PX_CONF, plain, eb);
	REQUIRE(&t, h_start(&p, want, NULL, START_MS) == 0, "start failed");
	snprintf(want, sizeof(want), "listening on 127.0.0.1:%d, "
	    "127.0.0.1:%d, 127.0.0.1:%d (PROXY)", a, d, b);
	REQUIRE(&t, strstr(p.ready, want) != NULL, "READY says '%s', want "
	    "'%s'", p.ready, want);
	snprintf(want, sizeof(want), "listening on 127.0.0.1:%d (PROXY)", b);
	REQUIRE(&t, cl_log_wait(&p, want, 1, 1000), "no log line '%s'", want);
	REQUIRE(&t, echo_fresh(a, "plain a") && echo_fresh(d, "plain d"),
	    "no echo on the plain listeners");
	REQUIRE(&t, px_listening(b), "nothing listens on the proxied %d", b);

	/* Add c to proxy_listen. */
	snprintf(proxy, sizeof(proxy), "%s, %s", eb, ec);
	if (!px_reload(&t, &p, plain, proxy, ready, sizeof(ready)))
		goto out;
	snprintf(want, sizeof(want), "127.0.0.1:%d (PROXY), 127.0.0.1:%d "
	    "(PROXY)", b, c);
	REQUIRE(&t, strstr(ready, want) != NULL, "READY says '%s', want "
	    "'%s'", ready, want);
	snprintf(want, sizeof(want), "reload: listening on 127.0.0.1:%d "
	    "(PROXY)", c);
	REQUIRE(&t, cl_log_wait(&p, want, 1, 1000), "no log line '%s'", want);
	REQUIRE(&t, px_listening(c), "nothing listens on the added %d", c);
	REQUIRE(&t, px_serving(&p, d), "d stopped serving after adding c");

	/* Remove b. */
	if (!px_reload(&t, &p, plain, ec, ready, sizeof(ready)))
		goto out;
	snprintf(want, sizeof(want), "reload: no longer listening on "
	    "127.0.0.1:%d (PROXY)", b);
	REQUIRE(&t, cl_log_wait(&p, want, 1, 1000), "no log line '%s'", want);
	REQUIRE(&t, cl_port_refused_within(b, 5000), "the removed %d is not refused", b);
	REQUIRE(&t, px_listening(c), "c (%d) lost with b", c);
	REQUIRE(&t, px_serving(&p, d), "d stopped serving after removing b");

	/* Move a from listen to proxy_listen: the same socket. */
	ino = cl_listener_inode(a);
	REQUIRE(&t, ino != 0, "no listening socket on %d", a);
	snprintf(proxy, sizeof(proxy), "%s, %s", ea, ec);
	if (!px_reload(&t, &p, ed, proxy, ready, sizeof(ready)))
		goto out;
	snprintf(want, sizeof(want), "reload: 127.0.0.1:%d now expects a "
	    "PROXY header (the same socket, moved to proxy_listen)", a);
	REQUIRE(&t, cl_log_wait(&p, want, 1, 1000), "no log line '%s'", want);
	snprintf(want, sizeof(want), "127.0.0.1:%d (PROXY)", a);
	REQUIRE(&t, strstr(ready, want) != NULL, "READY says '%s', want "
	    "'%s'", ready, want);
	REQUIRE(&t, cl_listener_inode(a) == ino && cl_pid_has_socket(p.pid,
	    ino), "the socket on %d changed (inode %lu, now %lu)", a, ino,
	    cl_listener_inode(a));
	REQUIRE(&t, px_serving(&p, d), "d stopped serving after the move");
	fd = h_connect(a, 0);
	REQUIRE(&t, fd != -1, "connect to the moved %d: %s", a,
	    strerror(errno));
	r = cl_reply(fd, "hello\n", 8000);
	REQUIRE(&t, r == 0, "a plain client on the now proxied %d: %s", a,
	    r == 1 ? "echoed" : "neither echoed nor closed");
	cl_close_fds(&fd, 1);

	/* And back: a plain listener again, still the same socket. */
	snprintf(plain, sizeof(plain), "%s, %s", ea, ed);
	if (!px_reload(&t, &p, plain, ec, ready, sizeof(ready)))
		goto out;
	snprintf(want, sizeof(want), "reload: 127.0.0.1:%d no longer expects "
	    "a PROXY header (the same socket, moved to listen)", a);
	REQUIRE(&t, cl_log_wait(&p, want, 1, 1000), "no log line '%s'", want);
	REQUIRE(&t, cl_listener_inode(a) == ino, "the socket on %d changed "
	    "on the way back", a);
	REQUIRE(&t, echo_fresh(a, "plain again"), "no echo on %d once plain "
	    "again", a);
	REQUIRE(&t, px_serving(&p, d), "d stopped serving");
	REQUIRE_STOPPED(&t, &p, 10000);
out:
	cl_close_fds(&fd, 1);
	finish(&t, &p);
}
END_TEST

/*
 * Only proxied listeners (listen = {}) and nobody trusted: echod starts,
 * listens, and says once that every connection will be closed; -t says
 * the same.
 */
START_TEST(proxy_listeners_untrusted_warning)
{
	static const char warn[] = "proxy_listen is set but proxy_trusted is "
	    "empty: every connection to it will be closed";
	struct echod_proc p;
	struct tres t = { 0, "" };
	char conf[256], want[128], out[4096];
	const char *argv[] = { "echod", "-t", "-c", p.conf_path, NULL };
	int b, st;

	cl_proc_init(&p);
	REQUIRE(&t, (b = cl_free_port()) > 0, "no free port");
	snprintf(conf, sizeof(conf), "listen = {}\nproxy_listen = "
	    "\"127.0.0.1:%d\"\nworkers = 1\n", b);
	REQUIRE(&t, h_start(&p, conf, NULL, START_MS) == 0, "start failed");
	snprintf(want, sizeof(want), "listening on 127.0.0.1:%d (PROXY)", b);
	REQUIRE(&t, strstr(p.ready, want) != NULL, "READY says '%s', want "
	    "'%s'", p.ready, want);
	REQUIRE(&t, cl_log_wait(&p, warn, 1, 1000), "no warning '%s'", warn);
	REQUIRE(&t, cl_log_count(&p, warn) == 1, "the warning %d times",
	    cl_log_count(&p, warn));
	REQUIRE(&t, px_listening(b), "nothing listens on %d", b);
	st = h_run(argv, out, sizeof(out), 10000);
	REQUIRE(&t, cl_exited_with(st, 0), "-t: wait status %#x: %s", st, out);
	snprintf(want, sizeof(want), "echod: warning: %s", warn);
	REQUIRE(&t, strstr(out, want) != NULL, "-t says '%s'", out);
	REQUIRE(&t, strstr(out, "listen (none), proxy_listen 127.0.0.1:") !=
	    NULL, "-t says '%s'", out);
	REQUIRE_STOPPED(&t, &p, 10000);
out:
	finish(&t, &p);
}
END_TEST

/*
 * Socket activation: of the two sockets "systemd" passes, the one whose
 * address is in proxy_listen is proxied, and the start-up log says so; a
 * reload that swaps the entry swaps the flags on the same sockets.
 */
START_TEST(proxy_listeners_socket_activation)
{
	const char *envs[] = { "LISTEN_FDS=2", "LISTEN_PID=self",
		"LISTEN_FDNAMES=plain:proxied", NULL };
	struct echod_proc p;
	struct tres t = { 0, "" };
	char conf[256], ready[512], want[256], e1[32], e2[32];
	int fds[2] = { -1, -1 }, p1, p2, fd = -1, r;

	cl_proc_init(&p);
	fds[0] = cl_listen_lo(&p1);
	fds[1] = cl_listen_lo(&p2);
	REQUIRE(&t, fds[0] != -1 && fds[1] != -1, "no loopback sockets");
	snprintf(conf, sizeof(conf), PX_CONF, "",
	    px_entry(e2, sizeof(e2), p2));
	REQUIRE(&t, h_spawn_ex(&p, conf, NULL, envs, fds, 2) == 0, "spawn");
	cl_close_fds(fds, 2); /* echod holds the only copies now */
	REQUIRE(&t, h_wait_ready(&p, START_MS) == 0, "no READY=1");
	snprintf(want, sizeof(want), "socket activation: 127.0.0.1:%d is in "
	    "proxy_listen: its clients must send a PROXY header", p2);
	REQUIRE(&t, cl_log_wait(&p, want, 1, 1000), "no log line '%s'", want);
	snprintf(want, sizeof(want), "listening on 127.0.0.1:%d, "
	    "127.0.0.1:%d (PROXY)", p1, p2);
	REQUIRE(&t, strstr(p.ready, want) != NULL, "READY says '%s', want "
	    "'%s'", p.ready, want);
	REQUIRE(&t, echo_fresh(p1, "plain"), "no echo on the plain %d", p1);
	fd = h_connect(p2, 0);
	REQUIRE(&t, fd != -1, "connect %d: %s", p2, strerror(errno));
	r = cl_reply(fd, "hello\n", 8000);
	REQUIRE(&t, r == 0, "a plain client on the proxied %d: %s", p2,
	    r == 1 ? "echoed" : "neither echoed nor closed");
	cl_close_fds(&fd, 1);

	/* The entry names the other socket now. */
	if (!px_reload(&t, &p, "", px_entry(e1, sizeof(e1), p1), ready,
	    sizeof(ready)))
		goto out;
	snprintf(want, sizeof(want), "listening on 127.0.0.1:%d (PROXY), "
	    "127.0.0.1:%d", p1, p2);
	REQUIRE(&t, strstr(ready, want) != NULL, "READY says '%s', want "
	    "'%s'", ready, want);
	snprintf(want, sizeof(want), "socket activation: 127.0.0.1:%d is no "
	    "longer in proxy_listen: a plain listener", p2);
	REQUIRE(&t, cl_log_wait(&p, want, 1, 1000), "no log line '%s'", want);
	REQUIRE(&t, echo_fresh(p2, "plain now"), "no echo on %d once plain",
	    p2);
	REQUIRE_STOPPED(&t, &p, 10000);
out:
	cl_close_fds(&fd, 1);
	cl_close_fds(fds, 2);
	finish(&t, &p);
}
END_TEST

/* -l replaces listen only: the file's proxy_listen stays, checked with it. */
START_TEST(proxy_listeners_cli_listen)
{
	char dir[] = "/tmp/echod-pxcli-XXXXXX", path[64], err[512];
	char *cli_ok[] = { "127.0.0.1:7001" }, *cli_dup[] = { "127.0.0.1:7008" };
	char *cli_wild[] = { "*:7008" };
	struct settings set = { NULL, cli_ok, 1, NULL };
	struct conf c;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/echod.conf", dir);
	ck_assert_int_eq(cl_write_file(path, "listen = {}\nproxy_listen = "
	    "\"127.0.0.1:7008\"\nproxy_trusted = \"::1\"\n"), 0);
	set.config_path = path;
	ck_assert_int_eq(settings_build(&c, &set, err, sizeof(err)),
	    SETTINGS_OK);
	ck_assert_uint_eq(c.nlisten, 1);
	ck_assert_str_eq(c.listen[0], "127.0.0.1:7001");
	ck_assert_uint_eq(c.nproxy_listen, 1);
	ck_assert_str_eq(c.proxy_listen[0], "127.0.0.1:7008");
	ck_assert_uint_eq(c.nproxy_trusted, 1);
	conf_free(&c);
	set.cli_listen = cli_dup;
	ck_assert_int_eq(settings_build(&c, &set, err, sizeof(err)),
	    SETTINGS_BAD_CLI);
	ck_assert_str_eq(err, "listen: '127.0.0.1:7008' is in proxy_listen "
	    "too; allowed: each address in one of listen and proxy_listen");
	conf_free(&c);
	set.cli_listen = cli_wild;
	ck_assert_int_eq(settings_build(&c, &set, err, sizeof(err)),
	    SETTINGS_BAD_CLI);
	ck_assert_msg(strncmp(err, "listen: '*:7008' overlaps proxy_listen's "
	    "'127.0.0.1:7008': ", 57) == 0, "%s", err);
	conf_free(&c);
	unlink(path);
	rmdir(dir);
}
END_TEST

Suite *
reload_suite(void)
{
	Suite *s = suite_create("reload");
	TCase *tc;

	tc = tcase_create("plan");
	tcase_add_loop_test(tc, plan_table, 0,
	    (int)(sizeof(plans) / sizeof(plans[0])));
	tcase_add_loop_test(tc, step_table, 0,
	    (int)(sizeof(steps) / sizeof(steps[0])));
	tcase_add_test(tc, settings_layers);
	suite_add_tcase(s, tc);

	tc = tcase_create("daemon");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, failed_reload_keeps_serving);
	tcase_add_test(tc, drain_kill_once);
	tcase_add_test(tc, pidfile_kept_on_reload);
	tcase_add_test(tc, overlapping_reload_refused);
	suite_add_tcase(s, tc);

	tc = tcase_create("storm");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, reload_storm);
	tcase_add_test(tc, reload_storm_held_clients);
	suite_add_tcase(s, tc);

	h_case(s, "proxy_listeners", 120, H_TESTS(proxy_listeners_reload,
	    proxy_listeners_untrusted_warning,
	    proxy_listeners_socket_activation, proxy_listeners_cli_listen));
	return s;
}
