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

static void
conf_make(char *buf, size_t len, int workers, int max_conns,
    int shutdown_timeout, const char *level)
{
	size_t n;

	n = (size_t)snprintf(buf, len, "listen = { \"127.0.0.1:0\" }\n"
	    "workers = %d\nshutdown_timeout = %d\nlog_level = %s\n", workers,
	    shutdown_timeout, level);
	if (max_conns > 0 && n < len)
		snprintf(buf + n, len - n, "max_connections = %d\n", max_conns);
}

/* ---- talking ---- */

/* Send msg, expect it back uppercased within timeout_ms. */
static int
echo_ok(int fd, const char *msg, int timeout_ms)
{
	char want[256], got[256];
	size_t i, len = strlen(msg);

	if (len >= sizeof(want))
		return 0;
	for (i = 0; i < len; i++)
		want[i] = msg[i] >= 'a' && msg[i] <= 'z' ?
		    (char)(msg[i] - 'a' + 'A') : msg[i];
	if (h_write_all(fd, msg, len) == -1)
		return 0;
	return h_read_exact(fd, got, len, timeout_ms) == len &&
	    memcmp(got, want, len) == 0;
}

/* Does the peer end this connection (EOF or reset) within timeout_ms? */
static int
eof_or_reset(int fd, int timeout_ms)
{
	long long deadline = h_now_ms() + timeout_ms;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char buf[256];
	ssize_t n;

	while (h_now_ms() < deadline) {
		if (poll(&pfd, 1, 50) <= 0)
			continue;
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0 || (n == -1 && errno == ECONNRESET))
			return 1;
		if (n == -1 && errno != EAGAIN && errno != EINTR)
			return 0;
		/* Bytes: not what we expect, but keep draining. */
	}
	return 0;
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

/* Wait until none of pids is alive; returns how many still are. */
static int
wait_all_dead(const pid_t *pids, int n, int timeout_ms)
{
	long long deadline = h_now_ms() + timeout_ms;
	int i, alive;

	do {
		for (alive = 0, i = 0; i < n; i++)
			alive += h_alive(pids[i]);
		if (alive == 0)
			return 0;
		h_poll_pause();
	} while (h_now_ms() < deadline);
	return alive;
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

/* ---- which worker holds a connection ---- */

/* Inode of the daemon's end of client_fd, from /proc/net/tcp; 0 if none. */
static unsigned long
server_inode(int port, int client_fd)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	unsigned long inode = 0, ino;
	unsigned lport, rport, cport;
	char line[512];
	FILE *f;

	if (getsockname(client_fd, (struct sockaddr *)&sin, &sl) == -1)
		return 0;
	cport = ntohs(sin.sin_port);
	if ((f = fopen("/proc/net/tcp", "re")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, " %*u: %*x:%x %*x:%x %*x %*x:%*x %*x:%*x "
		    "%*x %*u %*u %lu", &lport, &rport, &ino) == 3 &&
		    lport == (unsigned)port && rport == cport && ino != 0) {
			inode = ino;
			break;
		}
	}
	fclose(f);
	return inode;
}

static int
pid_has_socket(pid_t pid, unsigned long inode)
{
	char dir[64], path[384], link[64], want[64];
	struct dirent *de;
	ssize_t n;
	DIR *d;
	int found = 0;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	snprintf(want, sizeof(want), "socket:[%lu]", inode);
	if ((d = opendir(dir)) == NULL)
		return 0;
	while (!found && (de = readdir(d)) != NULL) {
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		found = strcmp(link, want) == 0;
	}
	closedir(d);
	return found;
}

/* The slot of the worker serving client_fd, or -1. */
static int
owner_slot(const struct echod_proc *p, unsigned nworkers, int client_fd)
{
	unsigned long inode = server_inode(p->port, client_fd);
	unsigned slot;
	pid_t pid;

	if (inode == 0)
		return -1;
	for (slot = 0; slot < nworkers; slot++)
		if ((pid = h_worker_pid(p->pid, slot)) > 0 &&
		    pid_has_socket(pid, inode))
			return (int)slot;
	return -1;
}

/* ---- a prober: connect, echo, close, in a loop, in a child ---- */

struct probe_res {
	int iters, ok, refused, failed, wrong;
	int first_errno;
};

static void
probe_once(int port, int i, struct probe_res *r)
{
	char msg[64];
	int fd;

	r->iters++;
	if ((fd = h_connect(port, 0)) == -1) {
		if (errno == ECONNREFUSED)
			r->refused++;
		else
			r->failed++;
		if (r->first_errno == 0)
			r->first_errno = errno;
		return;
	}
	snprintf(msg, sizeof(msg), "probe %d: hello, world\r\n", i);
	if (echo_ok(fd, msg, 3000))
		r->ok++;
	else
		r->wrong++;
	close(fd);
}

static void probe_run(const void *, int, int) __attribute__((noreturn));

/* Probe until told to stop, then 20 more; bounded in count and time. */
static void
probe_run(const void *arg, int stop_rd, int res_wr)
{
	struct pollfd pfd = { .fd = stop_rd, .events = POLLIN };
	long long deadline = h_now_ms() + 6000;
	int port = *(const int *)arg;
	struct probe_res r;
	int i, after = -1;

	memset(&r, 0, sizeof(r));
	for (i = 0; i < 5000 && h_now_ms() < deadline && after < 20; i++) {
		if (after < 0 && poll(&pfd, 1, 0) > 0)
			after = 0;
		if (after >= 0)
			after++;
		probe_once(port, i, &r);
	}
	if (write(res_wr, &r, sizeof(r)) != (ssize_t)sizeof(r))
		_exit(1);
	_exit(0);
}

/* ---- 1. a killed worker is replaced in its slot, nothing refused ---- */

/* The state letter of pid from /proc/PID/stat ('T' stopped), or 0. */
static int
proc_state(pid_t pid)
{
	char path[64], buf[512], *rp;
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "re")) == NULL)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	if ((rp = strrchr(buf, ')')) == NULL || rp[1] != ' ')
		return 0;
	return rp[2];
}

/* Wait until pid is in state st ('T' stopped); 1 if it got there. */
static int
wait_state(pid_t pid, int st, int timeout_ms)
{
	long long deadline = h_now_ms() + timeout_ms;

	do {
		if (proc_state(pid) == st)
			return 1;
		short_pause();
	} while (h_now_ms() < deadline);
	return 0;
}

/* Wait until pid is dead (a zombie counts: nobody reaps a stopped master). */
static int
wait_dead(pid_t pid, int timeout_ms)
{
	return wait_all_dead(&pid, 1, timeout_ms) == 0;
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
START_TEST(kill_worker_replaced)
{
	struct echod_proc p;
	struct cl_child pr = CL_CHILD_INIT;
	struct probe_res res;
	struct tres t = { 0, "" };
	char conf[256], want[256], line[512], buf[8];
	int a = -1, b = -1, c1 = -1, x, y, stopped = 0;
	pid_t xpid, vpid, npid, n2pid;
	long long t0, t1;

	cl_proc_init(&p);
	conf_make(conf, sizeof(conf), 2, 1, 2, "info");
	REQUIRE(&t, h_start(&p, conf, NULL, START_MS) == 0, "start failed");

	REQUIRE(&t, (a = h_connect(p.port, 0)) != -1, "connect A: %s",
	    strerror(errno));
	REQUIRE(&t, echo_ok(a, "abc", 2000), "A: abc not echoed");
	REQUIRE(&t, (x = owner_slot(&p, 2, a)) != -1,
	    "no worker holds A (checked /proc/net/tcp and /proc/PID/fd)");
	REQUIRE(&t, (b = h_connect(p.port, 0)) != -1, "connect B: %s",
	    strerror(errno));
	REQUIRE(&t, echo_ok(b, "xyz", 2000), "B: xyz not echoed");
	y = owner_slot(&p, 2, b);
	REQUIRE(&t, y == 1 - x, "B is on slot %d, A on %d: a full worker "
	    "(max_connections = 1) accepted another connection", y, x);
	/* B's EOF round trip: Y has published its served count since. */
	shutdown(b, SHUT_WR);
	REQUIRE(&t, h_expect_eof(b, 2000), "B: no EOF after half-close");
	close(b);
	b = -1;
	xpid = h_worker_pid(p.pid, (unsigned)x);
	vpid = h_worker_pid(p.pid, (unsigned)y);
	REQUIRE(&t, xpid > 0 && vpid > 0, "worker pids %d %d", (int)xpid,
	    (int)vpid);

	/* 1. Kill Y with a prober running; time the replacement. */
	t0 = cl_now_us();
	REQUIRE(&t, kill(vpid, SIGKILL) == 0, "kill: %s", strerror(errno));
	REQUIRE(&t, cl_child_start(&pr, probe_run, &p.port) == 0, "fork prober");
	npid = wait_worker_fast(&p, (unsigned)y, vpid, 1000);
	t1 = cl_now_us();
	REQUIRE(&t, npid > 0, "slot %d not replaced within 1 s (master %s)",
	    y, h_alive(p.pid) ? "alive" : "gone");
	printf("supervision: worker %d (pid %d) SIGKILLed, replaced by pid "
	    "%d in %.2f ms (kill to new titled pid)\n", y, (int)vpid,
	    (int)npid, (double)(t1 - t0) / 1000.0);
	fflush(stdout);
	REQUIRE(&t, echo_ok(a, "def", 2000), "A stopped echoing after the "
	    "other worker was killed");
	REQUIRE(&t, cl_child_finish(&pr, "x", 1, &res, sizeof(res)) == 0,
	    "no result from prober");
	printf("supervision: prober: %d connections, %d echoed, %d refused, "
	    "%d failed, %d wrong\n", res.iters, res.ok, res.refused,
	    res.failed, res.wrong);
	fflush(stdout);
	REQUIRE(&t, res.refused == 0 && res.failed == 0 && res.wrong == 0,
	    "prober: %d connections, %d refused, %d failed (%s), %d wrong",
	    res.iters, res.refused, res.failed, strerror(res.first_errno),
	    res.wrong);
	REQUIRE(&t, res.ok >= 20, "prober made only %d connections", res.ok);
	snprintf(want, sizeof(want), "worker %d (pid %d) killed by signal 9 "
	    "(Killed) after ", y, (int)vpid);
	REQUIRE(&t, cl_log_wait(&p, want, 1, 1000), "no log line '%s...'", want);
	cl_log_line(&p, want, line, sizeof(line));
	REQUIRE(&t, strstr(line, " s, 1 connection(s) served; replacing it "
	    "now") != NULL, "log line: %s", line);

	/* 2. Hold the window open: no master to respawn, no Y to accept. */
	REQUIRE(&t, kill(p.pid, SIGSTOP) == 0, "SIGSTOP: %s", strerror(errno));
	stopped = 1;
	REQUIRE(&t, wait_state(p.pid, 'T', 2000), "master not stopped");
	REQUIRE(&t, kill(npid, SIGKILL) == 0, "kill: %s", strerror(errno));
	REQUIRE(&t, wait_dead(npid, 2000), "worker %d survived SIGKILL",
	    (int)npid);
	REQUIRE(&t, (c1 = h_connect(p.port, 0)) != -1,
	    "connect while slot %d is empty: %s", y, strerror(errno));
	REQUIRE(&t, h_write_all(c1, "window\n", 7) == 0, "write c1");
	REQUIRE(&t, h_worker_pid(p.pid, (unsigned)y) == -1,
	    "slot %d has a live worker while the master is stopped", y);
	REQUIRE(&t, kill(p.pid, SIGCONT) == 0, "SIGCONT: %s", strerror(errno));
	stopped = 0;
	n2pid = wait_worker_fast(&p, (unsigned)y, npid, 1000);
	REQUIRE(&t, n2pid > 0, "slot %d not replaced again within 1 s", y);
	REQUIRE(&t, h_read_exact(c1, buf, 7, 3000) == 7 &&
	    memcmp(buf, "WINDOW\n", 7) == 0,
	    "a connection made while slot %d was empty was not served", y);
	close(c1);
	c1 = -1;
	snprintf(want, sizeof(want), "worker %d (pid %d) killed by signal 9 "
	    "(Killed) after ", y, (int)npid);
	REQUIRE(&t, cl_log_wait(&p, want, 1, 1000), "no log line '%s...'", want);
	cl_log_line(&p, want, line, sizeof(line));
	snprintf(want, sizeof(want), " s, %d connection(s) served; replacing "
	    "it now", res.ok);
	REQUIRE(&t, strstr(line, want) != NULL, "log line: %s; want '%s' "
	    "(the prober's connections)", line, want);
	REQUIRE(&t, echo_ok(a, "ghi", 2000), "A: ghi not echoed");
	REQUIRE(&t, h_worker_pid(p.pid, (unsigned)x) == xpid,
	    "worker %d changed pid", x);
	close(a);
	a = -1;
	{
		int st = h_stop(&p, 5000);

		REQUIRE(&t, st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		    "stop: wait status %#x", st);
	}
out:
	if (stopped)
		kill(p.pid, SIGCONT);
	if (a != -1)
		close(a);
	if (b != -1)
		close(b);
	if (c1 != -1)
		close(c1);
	cl_child_cleanup(&pr);
	cl_log_dump_if_failed(&t, &p);
	h_cleanup(&p);
	ck_assert_msg(!t.failed, "%s", t.msg);
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

		REQUIRE(&t, st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		    "stop: wait status %#x", st);
	}
out:
	cl_log_dump_if_failed(&t, &p);
	h_cleanup(&p);
	ck_assert_msg(!t.failed, "%s", t.msg);
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
	REQUIRE(&t, WIFEXITED(st) && WEXITSTATUS(st) == 1,
	    "master wait status %#x, want exit 1", st);
	REQUIRE(&t, cl_log_count(&p, "giving up") >= 1, "log lacks 'giving up'");
	early = cl_log_count(&p, "died early, replacing it in");
	REQUIRE(&t, early == 20, "%d early deaths before giving up, want 20 "
	    "(budget: more than 20 in 60 s)", early);
	REQUIRE(&t, nseen >= 21, "only %d workers seen", nseen);
	alive = wait_all_dead(seen, nseen, 2000);
	REQUIRE(&t, alive == 0, "%d worker(s) still alive", alive);
out:
	cl_log_dump_if_failed(&t, &p);
	h_cleanup(&p);
	ck_assert_msg(!t.failed, "%s", t.msg);
}
END_TEST

/* ---- 4. SIGTERM drains an open connection ---- */

START_TEST(sigterm_drains)
{
	struct echod_proc p;
	struct tres t = { 0, "" };
	pid_t kids[16];
	char conf[256];
	int a = -1, b = -1, nk, st, alive, e;
	long long t0;

	cl_proc_init(&p);
	conf_make(conf, sizeof(conf), 2, 0, 5, "info");
	REQUIRE(&t, h_start(&p, conf, NULL, START_MS) == 0, "start failed");
	nk = h_children(p.pid, kids, 16);
	REQUIRE(&t, nk == 2, "%d children, want 2", nk);
	REQUIRE(&t, (a = h_connect(p.port, 0)) != -1, "connect: %s",
	    strerror(errno));
	REQUIRE(&t, echo_ok(a, "abc", 2000), "abc not echoed");
	REQUIRE(&t, kill(p.pid, SIGTERM) == 0, "kill");
	REQUIRE(&t, cl_log_wait(&p, "SIGTERM: draining", 2, 3000),
	    "the workers did not both log 'SIGTERM: draining'");
	REQUIRE(&t, h_alive(p.pid), "master gone while a connection is open");
	REQUIRE(&t, echo_ok(a, "def", 2000), "no echo during the drain");
	/* Every listener is closed now: a new client must not be served. */
	b = h_connect(p.port, 0);
	e = errno;
	if (b != -1) {
		/* Accepted by a listener nobody serves any more? */
		REQUIRE(&t, h_write_all(b, "x", 1) == -1 ||
		    eof_or_reset(b, 1000),
		    "a connection made after the stop began was neither "
		    "refused nor reset: a listener is still open");
	} else
		REQUIRE(&t, e == ECONNREFUSED || e == ECONNRESET,
		    "new connection failed with %s", strerror(e));
	t0 = h_now_ms();
	close(a);
	a = -1;
	st = h_wait_exit(&p, 4000);
	REQUIRE(&t, st != -1, "master still running 4 s after the last "
	    "client closed");
	REQUIRE(&t, h_now_ms() - t0 < 1500, "master exited %lld ms after "
	    "the last client closed", h_now_ms() - t0);
	REQUIRE(&t, WIFEXITED(st) && WEXITSTATUS(st) == 0,
	    "wait status %#x, want exit 0", st);
	alive = wait_all_dead(kids, nk, 1000);
	REQUIRE(&t, alive == 0, "%d worker(s) left", alive);
	REQUIRE(&t, cl_log_count(&p, "killing the remaining") == 0,
	    "the master had to kill workers");
out:
	if (a != -1)
		close(a);
	if (b != -1)
		close(b);
	cl_log_dump_if_failed(&t, &p);
	h_cleanup(&p);
	ck_assert_msg(!t.failed, "%s", t.msg);
}
END_TEST

/* ---- 5. a client that never closes: shutdown_timeout bounds the drain */

START_TEST(sigterm_timeout)
{
	struct echod_proc p;
	struct tres t = { 0, "" };
	pid_t kids[16];
	char conf[256];
	int a = -1, nk, st, alive;
	long long t0, el;

	cl_proc_init(&p);
	conf_make(conf, sizeof(conf), 1, 0, 1, "info");
	REQUIRE(&t, h_start(&p, conf, NULL, START_MS) == 0, "start failed");
	nk = h_children(p.pid, kids, 16);
	REQUIRE(&t, nk == 1, "%d children, want 1", nk);
	REQUIRE(&t, (a = h_connect(p.port, 0)) != -1, "connect: %s",
	    strerror(errno));
	REQUIRE(&t, echo_ok(a, "abc", 2000), "abc not echoed");
	t0 = h_now_ms();
	REQUIRE(&t, kill(p.pid, SIGTERM) == 0, "kill");
	st = h_wait_exit(&p, 4000);
	el = h_now_ms() - t0;
	REQUIRE(&t, st != -1, "master still running 4 s after SIGTERM");
	REQUIRE(&t, WIFEXITED(st) && WEXITSTATUS(st) == 0,
	    "wait status %#x, want exit 0", st);
	REQUIRE(&t, el >= 800 && el <= 3000, "exited %lld ms after SIGTERM, "
	    "want about shutdown_timeout = 1 s", el);
	REQUIRE(&t, eof_or_reset(a, 1000), "the client saw neither EOF nor "
	    "a reset");
	alive = wait_all_dead(kids, nk, 1000);
	REQUIRE(&t, alive == 0, "%d worker(s) left", alive);
	REQUIRE(&t, cl_log_count(&p, "killing the remaining") == 0,
	    "the worker did not end its drain at shutdown_timeout itself");
out:
	if (a != -1)
		close(a);
	cl_log_dump_if_failed(&t, &p);
	h_cleanup(&p);
	ck_assert_msg(!t.failed, "%s", t.msg);
}
END_TEST

/* ---- 6. SIGINT is SIGTERM; a second signal stops at once ---- */

START_TEST(sigint_drains)
{
	struct echod_proc p;
	struct tres t = { 0, "" };
	pid_t kids[16];
	char conf[256], line[512];
	int a = -1, nk, st, alive;

	cl_proc_init(&p);
	conf_make(conf, sizeof(conf), 1, 0, 5, "info");
	REQUIRE(&t, h_start(&p, conf, NULL, START_MS) == 0, "start failed");
	nk = h_children(p.pid, kids, 16);
	REQUIRE(&t, (a = h_connect(p.port, 0)) != -1, "connect: %s",
	    strerror(errno));
	REQUIRE(&t, echo_ok(a, "abc", 2000), "abc not echoed");
	REQUIRE(&t, kill(p.pid, SIGINT) == 0, "kill");
	REQUIRE(&t, cl_log_wait(&p, "draining", 1, 3000), "no worker drains");
	REQUIRE(&t, cl_log_line(&p, ": stopping; ", line, sizeof(line)) &&
	    (strstr(line, "SIGINT") != NULL || strstr(line, "Interrupt") !=
	    NULL), "master did not log that SIGINT stops it");
	REQUIRE(&t, echo_ok(a, "def", 2000), "no echo during the drain");
	close(a);
	a = -1;
	st = h_wait_exit(&p, 2000);
	REQUIRE(&t, st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	    "wait status %#x, want exit 0", st);
	alive = wait_all_dead(kids, nk, 1000);
	REQUIRE(&t, alive == 0, "%d worker(s) left", alive);
out:
	if (a != -1)
		close(a);
	cl_log_dump_if_failed(&t, &p);
	h_cleanup(&p);
	ck_assert_msg(!t.failed, "%s", t.msg);
}
END_TEST

START_TEST(second_sigterm_stops_now)
{
	struct echod_proc p;
	struct tres t = { 0, "" };
	pid_t kids[16];
	char conf[256];
	int a = -1, nk, st, alive;
	long long t0, el;

	cl_proc_init(&p);
	conf_make(conf, sizeof(conf), 2, 0, 30, "info");
	REQUIRE(&t, h_start(&p, conf, NULL, START_MS) == 0, "start failed");
	nk = h_children(p.pid, kids, 16);
	REQUIRE(&t, nk == 2, "%d children, want 2", nk);
	REQUIRE(&t, (a = h_connect(p.port, 0)) != -1, "connect: %s",
	    strerror(errno));
	REQUIRE(&t, echo_ok(a, "abc", 2000), "abc not echoed");
	REQUIRE(&t, kill(p.pid, SIGTERM) == 0, "kill");
	REQUIRE(&t, cl_log_wait(&p, "SIGTERM: draining", 2, 3000),
	    "the workers did not both start draining");
	REQUIRE(&t, echo_ok(a, "def", 2000), "no echo during the drain");
	t0 = h_now_ms();
	REQUIRE(&t, kill(p.pid, SIGTERM) == 0, "kill");
	st = h_wait_exit(&p, 5000);
	el = h_now_ms() - t0;
	REQUIRE(&t, st != -1, "master still running 5 s after a second "
	    "SIGTERM");
	REQUIRE(&t, el <= 2000, "exited %lld ms after the second SIGTERM",
	    el);
	REQUIRE(&t, WIFEXITED(st) && WEXITSTATUS(st) == 0,
	    "wait status %#x, want exit 0", st);
	REQUIRE(&t, cl_log_count(&p, "again: stopping now") == 1,
	    "no 'again: stopping now' in the log");
	REQUIRE(&t, eof_or_reset(a, 1000), "the client saw neither EOF nor "
	    "a reset");
	alive = wait_all_dead(kids, nk, 1000);
	REQUIRE(&t, alive == 0, "%d worker(s) left", alive);
out:
	if (a != -1)
		close(a);
	cl_log_dump_if_failed(&t, &p);
	h_cleanup(&p);
	ck_assert_msg(!t.failed, "%s", t.msg);
}
END_TEST

/* ---- 7. no worker outlives a SIGKILLed master ---- */

START_TEST(master_killed_workers_exit)
{
	struct echod_proc p;
	struct tres t = { 0, "" };
	pid_t kids[16];
	char conf[256];
	int nk = 0, st, alive;
	long long t0;

	cl_proc_init(&p);
	conf_make(conf, sizeof(conf), 2, 0, 1, "info");
	REQUIRE(&t, h_start(&p, conf, NULL, START_MS) == 0, "start failed");
	nk = h_children(p.pid, kids, 16);
	REQUIRE(&t, nk == 2, "%d children, want 2", nk);
	t0 = h_now_ms();
	REQUIRE(&t, kill(p.pid, SIGKILL) == 0, "kill");
	st = h_wait_exit(&p, 2000);
	REQUIRE(&t, st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
	    "master wait status %#x", st);
	alive = wait_all_dead(kids, nk, 5000);
	printf("supervision: master SIGKILLed; workers gone after %lld ms\n",
	    h_now_ms() - t0);
	fflush(stdout);
	REQUIRE(&t, alive == 0, "%d worker(s) outlived the master by 5 s",
	    alive);
	REQUIRE(&t, cl_log_count(&p, "draining") == nk,
	    "%d worker(s) logged that they drain, want %d",
	    cl_log_count(&p, "draining"), nk);
out:
	if (p.pid <= 0) {
		/* Orphaned workers are nobody's children: kill them here. */
		for (int i = 0; t.failed && i < nk && i < 16; i++)
			if (h_alive(kids[i]))
				kill(kids[i], SIGKILL);
	}
	cl_log_dump_if_failed(&t, &p);
	h_cleanup(&p);
	ck_assert_msg(!t.failed, "%s", t.msg);
}
END_TEST

/* ---- 8. a worker that cannot set itself up is not respawned ---- */

static long
vm_size_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "re")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmSize: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
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
	struct rlimit rl, nofile;
	char conf[256], needle[128], asan[1024];
	long vm, table_kb;
	pid_t w0, w1;
	int a = -1, st, maxc;

	cl_proc_init(&p);
	/* The table the worker allocates: max_connections, capped by NOFILE. */
	getrlimit(RLIMIT_NOFILE, &nofile);
	maxc = 16384;
	if (nofile.rlim_max != RLIM_INFINITY && nofile.rlim_max < 16384 + 33)
		maxc = (int)nofile.rlim_max - 33;
	table_kb = (long)((size_t)maxc * sizeof(struct conn) / 1024);
	REQUIRE(&t, table_kb >= 512, "the worker's table would be %ld kB "
	    "only (RLIMIT_NOFILE hard %llu): cannot make it fail", table_kb,
	    (unsigned long long)nofile.rlim_max);
	conf_make(conf, sizeof(conf), 2, 16384, 2, "debug");
	/*
	 * prlimit() on another user's process needs CAP_SYS_RESOURCE, which
	 * this sandbox may not grant: keep echod as our own user (root).
	 */
	if (geteuid() == 0)
		strncat(conf, "user = \"root\"\nallow_root = true\n",
		    sizeof(conf) - strlen(conf) - 1);
	/*
	 * In an ASan build (make check-asan), LeakSanitizer needs a 2 MB
	 * stack at exit, which an address space this full cannot give: every
	 * process would end with that report instead of its own status.
	 */
	snprintf(asan, sizeof(asan), "%s:detect_leaks=0",
	    getenv("ASAN_OPTIONS") != NULL ? getenv("ASAN_OPTIONS") : "");
	setenv("ASAN_OPTIONS", asan, 1);
	REQUIRE(&t, h_start(&p, conf, NULL, START_MS) == 0, "start failed");
	w0 = h_worker_pid(p.pid, 0);
	w1 = h_worker_pid(p.pid, 1);
	REQUIRE(&t, w0 > 0 && w1 > 0, "workers %d %d", (int)w0, (int)w1);
	REQUIRE(&t, (vm = vm_size_kb(p.pid)) > 0, "no VmSize");
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
	REQUIRE(&t, echo_ok(a, "still here", 2000), "worker 0 not serving");
	close(a);
	a = -1;
	REQUIRE(&t, cl_log_count(&p, "worker 1 started") == 2,
	    "slot 1 was started again");

	/* Worker 0 served: it is replaced at once, and that one fails too. */
	REQUIRE(&t, kill(w0, SIGKILL) == 0, "kill");
	st = h_wait_exit(&p, 3000);
	REQUIRE(&t, st != -1, "master still running with no worker left");
	REQUIRE(&t, WIFEXITED(st) && WEXITSTATUS(st) == 1,
	    "wait status %#x, want exit 1", st);
	snprintf(needle, sizeof(needle), "slot 0 stays empty");
	REQUIRE(&t, cl_log_count(&p, needle) == 1, "no '%s'", needle);
	REQUIRE(&t, cl_log_count(&p, "no worker left") == 1,
	    "no 'no worker left' in the log");
	REQUIRE(&t, cl_log_count(&p, "worker 1 started") == 2,
	    "slot 1 was started again");
out:
	if (a != -1)
		close(a);
	cl_log_dump_if_failed(&t, &p);
	h_cleanup(&p);
	ck_assert_msg(!t.failed, "%s", t.msg);
}
END_TEST

Suite *
supervision_suite(void)
{
	Suite *s = suite_create("supervision");
	TCase *tc;

	tc = tcase_create("replace");
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, kill_worker_replaced);
	tcase_add_test(tc, backoff_doubles);
	tcase_add_test(tc, crash_loop_gives_up);
	tcase_add_test(tc, worker_fatal_not_respawned);
	suite_add_tcase(s, tc);

	tc = tcase_create("stop");
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, sigterm_drains);
	tcase_add_test(tc, sigterm_timeout);
	tcase_add_test(tc, sigint_drains);
	tcase_add_test(tc, second_sigterm_stops_now);
	tcase_add_test(tc, master_killed_workers_exit);
	suite_add_tcase(s, tc);
	return s;
}
