/*
 * check_attack: echod under hostile or broken conditions, quickly.
 *
 * Drives the real daemon (harness.h) over loopback: per-client limits
 * from several source addresses (127.0.0.2, 127.0.0.3, ::1), the
 * connection time limit, the seccomp sandbox tripped from outside by a
 * ptrace-injected call (inject.c), storms of odd clients, descriptor
 * exhaustion, bad configuration files, and a master whose fork() fails.
 * The long runs (chaos, many idle clients, memory under a non-reading
 * client, a big stream) are in check_stress.c.  A worker that exits with
 * the fatal start-up code is covered by check_supervision.c
 * (worker_fatal_not_respawned), which
 * makes it happen through the master's address-space limit.
 *
 * Every wait is a poll with a deadline, every loop is bounded in count
 * and in time, and every daemon is stopped by its pid.  Failures are
 * recorded with REQUIRE (clients.h) so that cleanup runs before Check's
 * assertion ends the test.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clients.h"
#include "harness.h"
#include "inject.h"
#include "procfs.h"
#include "scenarios.h"
#include "suites.h"

#define START_MS 5000
#define REPLY_MS 2000
#define LO "127.0.0.1"
#define SRC2 "127.0.0.2"
#define SRC3 "127.0.0.3"

static void
pause_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* ---- per-client limits ---- */

/*
 * A flood from SRC2, at its limit: 200 connects, every one refused, a
 * few (rate-limited) log lines; a[1..3] still echo.
 */
static int
per_ip_flood(struct tres *t, struct echod_proc *p, const int *a)
{
	int i, fd = -1, refused = 0, lines0, lines;
	long long t0, el;

	lines0 = cl_log_count(p, "refused " SRC2 ":");
	t0 = h_now_ms();
	for (i = 0; i < 200 && h_now_ms() - t0 < 10000; i++) {
		REQUIRE(t, (fd = cl_connect(SRC2, LO, p->port)) != -1,
		    "flood connect %d: %s", i, strerror(errno));
		refused += cl_refused(fd, REPLY_MS);
		cl_close_fds(&fd, 1);
	}
	el = h_now_ms() - t0;
	REQUIRE(t, refused == 200, "%d of %d flood connects refused", refused,
	    i);
	lines = cl_log_count(p, "refused " SRC2 ":") - lines0;
	printf("attack: 200 refused connects in %lld ms, %d log line(s)\n",
	    el, lines);
	fflush(stdout);
	REQUIRE(t, lines <= 3 * (int)(el / 1000 + 2), "%d 'refused' lines "
	    "for 200 refusals in %lld ms: not rate-limited", lines, el);
	for (i = 1; i < 4; i++)
		REQUIRE(t, cl_echo(a[i], "still", REPLY_MS), "connection %d "
		    "stopped echoing", i);
out:
	cl_close_fds(&fd, 1);
	return !t->failed;
}

/*
 * Three workers of two connections each: 127.0.0.2's three connections
 * cannot all sit on one worker, so the fourth, refused, is refused by a
 * worker that holds at most two of them itself: only the count summed
 * across the pool says no.  127.0.0.3 is not affected.  A flood of
 * refused connects is logged a line a second per worker at most.
 */
START_TEST(per_ip_across_workers)
{
	struct echod_proc p;
	struct tres t = { 0, "" };
	int a[4] = { -1, -1, -1, -1 }, b[3] = { -1, -1, -1 }, x = -1;
	int slot[3], i;
	char line[512];

	cl_proc_init(&p);
	REQUIRE(&t, h_start(&p, "listen = { \"127.0.0.1:0\" }\nworkers = 3\n"
	    "max_connections = 2\nmax_connections_per_ip = 3\n"
	    "log_level = info\n", NULL, START_MS) == 0, "start failed");
	for (i = 0; i < 3; i++) {
		REQUIRE(&t, (a[i] = cl_connect(SRC2, LO, p.port)) != -1,
		    "connect %d from " SRC2 ": %s", i, strerror(errno));
		REQUIRE(&t, cl_echo(a[i], "from two", REPLY_MS),
		    "connection %d from " SRC2 " not echoed", i);
		REQUIRE(&t, cl_owner(p.pid, 3, p.port, a[i], &slot[i]) > 0,
		    "no worker holds connection %d", i);
	}
	REQUIRE(&t, slot[0] != slot[1] || slot[1] != slot[2],
	    "all three connections on worker %d (max_connections = 2)",
	    slot[0]);
	REQUIRE(&t, (x = cl_connect(SRC2, LO, p.port)) != -1, "connect: %s",
	    strerror(errno));
	REQUIRE(&t, cl_refused(x, REPLY_MS), "the 4th connection from " SRC2
	    " was served (max_connections_per_ip = 3, counted across "
	    "workers %d, %d, %d)", slot[0], slot[1], slot[2]);
	close(x);
	x = -1;
	REQUIRE(&t, cl_log_wait(&p, "refused " SRC2 ":", 1, 2000),
	    "no 'refused " SRC2 ":' in the log");
	cl_log_line(&p, "refused " SRC2 ":", line, sizeof(line));
	REQUIRE(&t, strstr(line, "max_connections_per_ip reached") != NULL,
	    "log line: %s", line);
	for (i = 0; i < 3; i++) {
		REQUIRE(&t, (b[i] = cl_connect(SRC3, LO, p.port)) != -1,
		    "connect %d from " SRC3 ": %s", i, strerror(errno));
		REQUIRE(&t, cl_echo(b[i], "from three", REPLY_MS),
		    "connection %d from " SRC3 " not echoed while " SRC2
		    " is at its limit", i);
	}
	/* The daemon's EOF says it closed (and released) its end. */
	REQUIRE(&t, cl_finish(a[0], REPLY_MS), "no EOF after half-close");
	close(a[0]);
	a[0] = -1;
	REQUIRE(&t, (a[3] = cl_connect(SRC2, LO, p.port)) != -1, "connect: %s",
	    strerror(errno));
	REQUIRE(&t, cl_echo(a[3], "again", REPLY_MS), SRC2 " refused after "
	    "one of its connections closed");
	for (i = 0; i < 3; i++) {
		REQUIRE(&t, cl_finish(b[i], REPLY_MS), "no EOF after "
		    "half-close");
		close(b[i]);
		b[i] = -1;
	}

	if (!per_ip_flood(&t, &p, a))
		goto out;
	cl_close_fds(a, 4);
	REQUIRE_STOPPED(&t, &p, 5000);
out:
	cl_close_fds(a, 4);
	cl_close_fds(b, 3);
	cl_conclude_fds(&t, &p, &x, 1);
}
END_TEST

/*
 * Per-IP limits across a pool of two workers, under model m
 * (scenarios.h): wherever a worker holds its connections (its loop, a
 * thread sharing its table, a child), a second connection from 127.0.0.1
 * is refused while the first is open, and admitted once it has gone,
 * which is when its thread, child or loop has ended: soon.
 */
void
attack_per_ip_release(const char *m)
{
	struct echod_proc p;
	struct tres t = { 0, "" };
	char conf[320];
	int a = -1, b = -1, ok = 0, tries;
	long long deadline;

	cl_proc_init(&p);
	REQUIRE(&t, h_conf_model(conf, sizeof(conf), "listen = { "
	    "\"127.0.0.1:0\" }\nworkers = 2\nmax_connections = 2\n"
	    "max_connections_per_ip = 1\nlog_level = info\n", m, 2) != NULL,
	    "conf");
	REQUIRE(&t, h_start(&p, conf, NULL, START_MS) == 0, "start failed");
	REQUIRE(&t, (a = h_connect(p.port, 0)) != -1 &&
	    cl_echo(a, "first\n", REPLY_MS), "no echo");
	REQUIRE(&t, (b = h_connect(p.port, 0)) != -1 &&
	    cl_refused(b, REPLY_MS) == 1, "a second connection from the "
	    "same address was not refused");
	REQUIRE(&t, cl_log_wait(&p, "max_connections_per_ip reached", 1,
	    REPLY_MS), "no refusal line");
	cl_close_fds(&b, 1);
	REQUIRE(&t, cl_finish(a, REPLY_MS), "no EOF");
	cl_close_fds(&a, 1);
	deadline = h_now_ms() + 10000;
	for (tries = 0; !ok && tries < 200 && h_now_ms() < deadline; tries++) {
		if ((b = h_connect(p.port, 0)) == -1)
			break;
		ok = cl_reply(b, "again\n", REPLY_MS) == 1;
		cl_close_fds(&b, 1);
		if (!ok)
			h_poll_pause();
	}
	REQUIRE(&t, ok, "not admitted after the first one left");
	REQUIRE_STOPPED(&t, &p, 5000);
out:
	cl_close_fds(&a, 1);
	cl_conclude_fds(&t, &p, &b, 1);
}

START_TEST(per_ip_released)
{
	attack_per_ip_release(NULL);
}
END_TEST

START_TEST(per_ip_ipv6)
{
	struct echod_proc p;
	struct tres t = { 0, "" };
	int c[4] = { -1, -1, -1, -1 }, i;

	if (!cl_have_ipv6()) {
		fprintf(stderr, "attack: per_ip_ipv6 SKIPPED: this host cannot "
		    "bind ::1\n");
		return;
	}
	cl_proc_init(&p);
	REQUIRE(&t, h_start(&p, "listen = { \"[::1]:0\" }\nworkers = 2\n"
	    "max_connections_per_ip = 2\nlog_level = info\n", NULL,
	    START_MS) == 0, "start failed");
	for (i = 0; i < 2; i++) {
		REQUIRE(&t, (c[i] = cl_connect("::1", "::1", p.port)) != -1,
		    "connect: %s", strerror(errno));
		REQUIRE(&t, cl_echo(c[i], "six", REPLY_MS), "::1 connection "
		    "%d not echoed", i);
	}
	REQUIRE(&t, (c[2] = cl_connect("::1", "::1", p.port)) != -1,
	    "connect: %s", strerror(errno));
	REQUIRE(&t, cl_refused(c[2], REPLY_MS), "the 3rd connection from ::1 "
	    "was served (max_connections_per_ip = 2)");
	REQUIRE(&t, cl_log_wait(&p, "refused [::1]:", 1, 2000),
	    "no 'refused [::1]:' in the log");
	REQUIRE(&t, cl_finish(c[0], REPLY_MS), "no EOF after half-close");
	REQUIRE(&t, (c[3] = cl_connect("::1", "::1", p.port)) != -1,
	    "connect: %s", strerror(errno));
	REQUIRE(&t, cl_echo(c[3], "again", REPLY_MS), "::1 refused after one "
	    "of its connections closed");
	cl_close_fds(c, 4);
	REQUIRE_STOPPED(&t, &p, 5000);
out:
	cl_conclude_fds(&t, &p, c, 4);
}
END_TEST

START_TEST(exempt_loopback)
{
	struct echod_proc p;
	struct tres t = { 0, "" };
	int c[6] = { -1, -1, -1, -1, -1, -1 }, i;

	cl_proc_init(&p);
	REQUIRE(&t, h_start(&p, "listen = { \"127.0.0.1:0\" }\nworkers = 2\n"
	    "max_connections_per_ip = 1\nmax_connection_rate_per_ip = 1\n"
	    "limits_exempt_loopback = true\nlog_level = info\n", NULL,
	    START_MS) == 0, "start failed");
	for (i = 0; i < 6; i++) {
		REQUIRE(&t, (c[i] = cl_connect(i % 2 ? SRC2 : LO, LO,
		    p.port)) != -1, "connect: %s", strerror(errno));
		REQUIRE(&t, cl_echo(c[i], "exempt", REPLY_MS), "connection %d "
		    "from %s refused: loopback is exempt", i, i % 2 ? SRC2 :
		    LO);
	}
	REQUIRE(&t, cl_log_count(&p, "refused") == 0, "'refused' logged");
	cl_close_fds(c, 6);
	REQUIRE_STOPPED(&t, &p, 5000);
out:
	cl_conclude_fds(&t, &p, c, 6);
}
END_TEST

/* The second of the clock the workers count rates by. */
static time_t
coarse_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return ts.tv_sec;
}

/* Poll the clock until its second changes (at most 1.5 s). */
static int
next_second(void)
{
	long long deadline = h_now_ms() + 1500;
	time_t s = coarse_sec();

	while (coarse_sec() == s && h_now_ms() < deadline)
		pause_ms(1);
	return coarse_sec() != s;
}

/* One connect from src: 1 if echoed, 0 if refused, -1 otherwise. */
static int
try_once(const char *src, int port)
{
	int fd, r;

	if ((fd = cl_connect(src, LO, port)) == -1)
		return -1;
	r = cl_reply(fd, "rate", REPLY_MS);
	close(fd);
	return r;
}

START_TEST(rate_per_ip)
{
	struct echod_proc p;
	struct tres t = { 0, "" };
	int attempt, i, ok = 0, sixth = -1, other = -1, again;
	time_t sec;

	cl_proc_init(&p);
	REQUIRE(&t, h_start(&p, "listen = { \"127.0.0.1:0\" }\nworkers = 2\n"
	    "max_connection_rate_per_ip = 5\nlog_level = info\n", NULL,
	    START_MS) == 0, "start failed");
	/* Seven connects must fall into one second: start at its start. */
	for (attempt = 0; attempt < 3; attempt++) {
		REQUIRE(&t, next_second(), "the clock did not move");
		sec = coarse_sec();
		for (ok = 0, i = 0; i < 5; i++)
			ok += try_once(SRC2, p.port) == 1;
		sixth = try_once(SRC2, p.port);
		other = try_once(SRC3, p.port);
		if (coarse_sec() == sec)
			break;
	}
	REQUIRE(&t, attempt < 3, "7 connects never fitted into one second");
	REQUIRE(&t, ok == 5, "%d of the first 5 connects in a second served",
	    ok);
	REQUIRE(&t, sixth == 0, "the 6th connect in one second was %s "
	    "(max_connection_rate_per_ip = 5)", sixth == 1 ? "served" :
	    "neither served nor closed");
	REQUIRE(&t, other == 1, SRC3 " was not served in the same second");
	REQUIRE(&t, cl_log_wait(&p, "max_connection_rate_per_ip reached", 1,
	    2000), "no 'max_connection_rate_per_ip reached' in the log");
	REQUIRE(&t, next_second(), "the clock did not move");
	again = try_once(SRC2, p.port);
	REQUIRE(&t, again == 1, SRC2 " not served in the next second");
	REQUIRE_STOPPED(&t, &p, 5000);
out:
	cl_conclude(&t, &p);
}
END_TEST

/* pids of the daemon's children: kill them all and wait until gone. */
static int
wait_gone(pid_t pid, int timeout_ms)
{
	long long deadline = h_now_ms() + timeout_ms;

	while (h_alive(pid) && h_now_ms() < deadline)
		h_poll_pause();
	return !h_alive(pid);
}

/*
 * A dead worker's connections no longer count: neither when its slot is
 * refilled at once, nor when the slot stays empty (a draining worker of
 * an old generation that dies).  max_connections = 1 puts each
 * connection on its own worker.
 */
START_TEST(dead_worker_counts_forgotten)
{
	struct echod_proc p;
	struct tres t = { 0, "" };
	int a0 = -1, a1 = -1, c = -1, e = -1, f = -1, s0 = -1, s1 = -1;
	pid_t w0, w1, nw, wc;

	cl_proc_init(&p);
	REQUIRE(&t, h_start(&p, "listen = { \"127.0.0.1:0\" }\nworkers = 2\n"
	    "max_connections = 1\nmax_connections_per_ip = 2\n"
	    "shutdown_timeout = 30\nlog_level = info\n", NULL,
	    START_MS) == 0, "start failed");
	REQUIRE(&t, (a0 = cl_connect(SRC2, LO, p.port)) != -1, "connect: %s",
	    strerror(errno));
	REQUIRE(&t, cl_echo(a0, "a0", REPLY_MS), "a0 not echoed");
	REQUIRE(&t, (a1 = cl_connect(SRC2, LO, p.port)) != -1, "connect: %s",
	    strerror(errno));
	REQUIRE(&t, cl_echo(a1, "a1", REPLY_MS), "a1 not echoed");
	REQUIRE(&t, (w0 = cl_owner(p.pid, 2, p.port, a0, &s0)) > 0 &&
	    (w1 = cl_owner(p.pid, 2, p.port, a1, &s1)) > 0 && s0 != s1,
	    "a0 and a1 not on two workers (slots %d, %d)", s0, s1);

	/* 1. Killed and replaced in its slot at once. */
	REQUIRE(&t, kill(w0, SIGKILL) == 0, "kill: %s", strerror(errno));
	REQUIRE(&t, (nw = h_wait_worker(p.pid, (unsigned)s0, w0, 2000)) > 0,
	    "slot %d not refilled", s0);
	REQUIRE(&t, cl_closed(a0, REPLY_MS), "a0 survived its worker");
	cl_close_fds(&a0, 1);
	REQUIRE(&t, (c = cl_connect(SRC2, LO, p.port)) != -1, "connect: %s",
	    strerror(errno));
	REQUIRE(&t, cl_echo(c, "c", REPLY_MS), SRC2 " refused after the "
	    "worker holding one of its 2 connections was killed: the dead "
	    "worker's count was kept");
	REQUIRE(&t, (wc = cl_owner(p.pid, 2, p.port, c, NULL)) == nw,
	    "c is not on the new worker %d", (int)nw);

	/* 2. A reload retires both workers; both die while draining. */
	REQUIRE(&t, kill(p.pid, SIGHUP) == 0, "SIGHUP: %s", strerror(errno));
	REQUIRE(&t, cl_log_wait(&p, "draining", 2, 5000), "the old workers "
	    "did not start draining");
	REQUIRE(&t, kill(w1, SIGKILL) == 0 && kill(wc, SIGKILL) == 0, "kill");
	REQUIRE(&t, wait_gone(w1, 2000) && wait_gone(wc, 2000),
	    "old workers alive after SIGKILL");
	REQUIRE(&t, cl_closed(a1, REPLY_MS) && cl_closed(c, REPLY_MS),
	    "a connection survived its worker");
	REQUIRE(&t, (e = cl_connect(SRC2, LO, p.port)) != -1, "connect: %s",
	    strerror(errno));
	REQUIRE(&t, cl_echo(e, "e", REPLY_MS), SRC2 " has no connection open "
	    "but was refused: the counts of old workers that died while "
	    "draining were kept");
	REQUIRE(&t, (f = cl_connect(SRC2, LO, p.port)) != -1, "connect: %s",
	    strerror(errno));
	REQUIRE(&t, cl_echo(f, "f", REPLY_MS), SRC2 "'s 2nd connection "
	    "refused after the old workers died");
	cl_close_fds(&e, 1);
	cl_close_fds(&f, 1);
	REQUIRE_STOPPED(&t, &p, 5000);
out:
	cl_close_fds(&a0, 1);
	cl_close_fds(&a1, 1);
	cl_close_fds(&c, 1);
	cl_close_fds(&e, 1);
	cl_conclude_fds(&t, &p, &f, 1);
}
END_TEST

/* ---- max_connection_time ---- */

/* Echo 1 KiB at a time until the daemon closes; ms until it did. */
static long long
busy_until_closed(int fd, int limit_ms, int *wrong)
{
	unsigned char out[1024], want[1024], got[1024];
	long long t0 = h_now_ms();
	size_t i, n;
	int round;

	for (round = 0; h_now_ms() - t0 < limit_ms && round < 1000000;
	    round++) {
		for (i = 0; i < sizeof(out); i++)
			out[i] = (unsigned char)('a' + (round + i) % 26);
		memcpy(want, out, sizeof(out));
		cl_upper(want, sizeof(want));
		if (h_write_all(fd, out, sizeof(out)) == -1)
			break;
		n = h_read_exact(fd, got, sizeof(got), REPLY_MS);
		if (memcmp(got, want, n) != 0)
			(*wrong)++;
		if (n != sizeof(got))
			break;
	}
	return h_now_ms() - t0;
}

/* Under model m (scenarios.h): two at once, so two prefork workers. */
void
attack_lifetime(const char *m)
{
	struct echod_proc p;
	struct tres t = { 0, "" };
	int busy = -1, idle = -1, fresh = -1, wrong = 0;
	char base[256], conf[320];
	long long el;

	cl_proc_init(&p);
	snprintf(base, sizeof(base), "listen = { \"127.0.0.1:0\" }\n"
	    "workers = %d\nmax_connection_time = 1\nlog_level = debug\n",
	    h_model_workers(m, 1, 2));
	REQUIRE(&t, h_conf_model(conf, sizeof(conf), base, m, 0) != NULL,
	    "configuration too long");
	REQUIRE(&t, h_start(&p, conf, NULL, START_MS) == 0, "start failed");
	REQUIRE(&t, (idle = cl_connect(NULL, LO, p.port)) != -1, "connect: %s",
	    strerror(errno));
	REQUIRE(&t, (busy = cl_connect(NULL, LO, p.port)) != -1, "connect: %s",
	    strerror(errno));
	el = busy_until_closed(busy, 5000, &wrong);
	printf("attack: a busy connection closed after %lld ms "
	    "(max_connection_time = 1)\n", el);
	fflush(stdout);
	REQUIRE(&t, wrong == 0, "%d wrong replies", wrong);
	REQUIRE(&t, el >= 900 && el <= 3000, "the busy connection lasted "
	    "%lld ms, want 900..3000", el);
	REQUIRE(&t, cl_closed(idle, 1000), "the idle one was not closed too");
	REQUIRE(&t, cl_log_wait(&p, "closed: max_connection_time", 2, 2000),
	    "no two 'closed: max_connection_time' lines in the log");
	REQUIRE(&t, (fresh = cl_connect(NULL, LO, p.port)) != -1,
	    "connect: %s", strerror(errno));
	REQUIRE(&t, cl_echo(fresh, "fresh", REPLY_MS), "a new connection "
	    "was not served");
	cl_close_fds(&fresh, 1);
	REQUIRE_STOPPED(&t, &p, 5000);
out:
	cl_close_fds(&busy, 1);
	cl_close_fds(&idle, 1);
	cl_conclude_fds(&t, &p, &fresh, 1);
}

START_TEST(connection_time_limit)
{
	attack_lifetime(NULL);
}
END_TEST

/* ---- the sandbox, tripped from outside ---- */

static int
in_path(const char *name)
{
	char dirs[4096], path[4200], *d, *save = NULL;
	const char *env = getenv("PATH");

	snprintf(dirs, sizeof(dirs), "%s",
	    env != NULL ? env : "/usr/bin:/bin");
	for (d = strtok_r(dirs, ":", &save); d != NULL;
	    d = strtok_r(NULL, ":", &save)) {
		snprintf(path, sizeof(path), "%s/%s", d, name);
		if (access(path, X_OK) == 0)
			return 1;
	}
	return 0;
}

/*
 * Two clients, a and b, each alone on one of the two workers of a daemon
 * started with conf (TWO_CONF and more: workers = 2, max_connections =
 * 1): x, y are those workers, sx, sy their slots; c is for a third.
 */
#define TWO_CONF                                                           \
	"listen = { \"127.0.0.1:0\" }\nworkers = 2\nmax_connections = 1\n"    \
	"log_level = info\n"

struct two {
	union {
		int fd[3];
		struct {
			int a, b, c;
		};
	};
	pid_t x, y;
	int sx, sy;
};
#define TWO_INIT                                                           \
	{ .fd = { -1, -1, -1 }, .x = -1, .y = -1, .sx = -1, .sy = -1 }

static int
two_apart(struct tres *t, struct echod_proc *p, const char *conf,
    struct two *w)
{
	REQUIRE(t, h_start(p, conf, NULL, START_MS) == 0, "start failed");
	REQUIRE(t, (w->a = cl_connect(NULL, LO, p->port)) != -1 &&
	    cl_echo(w->a, "a", REPLY_MS), "a not echoed");
	REQUIRE(t, (w->b = cl_connect(NULL, LO, p->port)) != -1 &&
	    cl_echo(w->b, "b", REPLY_MS), "b not echoed");
	REQUIRE(t, (w->x = cl_owner(p->pid, 2, p->port, w->a, &w->sx)) > 0 &&
	    (w->y = cl_owner(p->pid, 2, p->port, w->b, &w->sy)) > 0 &&
	    w->sx != w->sy, "a and b not on two workers");
out:
	return !t->failed;
}

/*
 * Two workers, one connection each (max_connections = 1).  inject.c makes
 * worker Y call openat() as if its code had been subverted.  Sandboxed,
 * the kernel kills it with SIGSYS, the master replaces it in its slot,
 * and worker X's connection never notices.  Unsandboxed, the same call
 * succeeds and the worker serves on.
 */
static void
sandbox_case(int on)
{
	struct echod_proc p;
	struct tres t = { 0, "" };
	char want[128], conf[256], out[256];
	struct two w = TWO_INIT;
	enum inj_result rc;
	long ret = 0;
	pid_t ny;

	cl_proc_init(&p);
	snprintf(conf, sizeof(conf), "%s%s", TWO_CONF,
	    on ? "" : "sandbox = off\n");
	if (!two_apart(&t, &p, conf, &w))
		goto out;
	/* Sanitizer builds never load the sandbox. */
	if (h_log_wait(&p, "sandbox: off in this build", 0)) {
		fprintf(stderr, "attack: sandbox (%s) SKIPPED: this build "
		    "never loads it (sanitizers)\n", on ? "on" : "off");
		goto out;
	}
	rc = inj_openat(w.y, "/etc/hostname", &ret, out, sizeof(out), 5000);
	if (rc == INJ_REFUSED || rc == INJ_UNSUPPORTED) {
		fprintf(stderr, "attack: sandbox (%s) SKIPPED: cannot inject "
		    "a call here (%s)\n", on ? "on" : "off", out);
		goto out;
	}
	if (on) {
		snprintf(want, sizeof(want), "worker %d (pid %d) killed by "
		    "signal 31 ", w.sy, (int)w.y);
		REQUIRE(&t, rc == INJ_KILLED && ret == SIGSYS, "the call "
		    "was not killed by SIGSYS (result %d, %ld: %s)", (int)rc,
		    ret, out);
		REQUIRE(&t, cl_log_wait(&p, want, 1, 5000), "no '%s' in the "
		    "log", want);
		REQUIRE(&t, (ny = h_wait_worker(p.pid, (unsigned)w.sy, w.y,
		    2000)) > 0, "slot %d not refilled", w.sy);
		REQUIRE(&t, cl_closed(w.b, REPLY_MS), "b survived its worker");
		REQUIRE(&t, (w.c = cl_connect(NULL, LO, p.port)) != -1 &&
		    cl_echo(w.c, "c", REPLY_MS),
		    "the new worker did not serve");
	} else {
		REQUIRE(&t, rc == INJ_DONE && ret >= 0, "openat() in the "
		    "unsandboxed worker failed (result %d, %ld: %s)", (int)rc,
		    ret, out);
		REQUIRE(&t, h_alive(w.y) && pf_has_fd(w.y, "/etc/hostname"),
		    "the worker is gone or holds no /etc/hostname");
		REQUIRE(&t, cl_echo(w.b, "b again", REPLY_MS), "b not echoed "
		    "after the call");
		REQUIRE(&t, cl_log_count(&p, "killed by signal") == 0,
		    "a worker was killed");
	}
	REQUIRE(&t, h_worker_pid(p.pid, (unsigned)w.sx) == w.x, "worker %d "
	    "changed", w.sx);
	REQUIRE(&t, cl_echo(w.a, "a still", REPLY_MS), "a stopped echoing");
	cl_close_fds(w.fd, 3);
	REQUIRE_STOPPED(&t, &p, 5000);
out:
	cl_conclude_fds(&t, &p, w.fd, 3);
}

START_TEST(sandbox_kills_forbidden_call)
{
	sandbox_case(1);
}
END_TEST

START_TEST(sandbox_off_allows_it)
{
	sandbox_case(0);
}
END_TEST

/* ---- storms of odd clients ---- */

static int
storm_connect_close(int port, int n)
{
	int i, fd;

	for (i = 0; i < n; i++) {
		if ((fd = h_connect(port, 0)) == -1)
			return i;
		if (i % 3 == 0)
			cl_reset(fd);
		else
			close(fd);
	}
	return n;
}

/* Half-closed before a byte: EOF back at once.  Stops at the first miss. */
static int
storm_half_close(int port, int n)
{
	int i, fd, ok = 1;

	for (i = 0; i < n && ok; i++) {
		if ((fd = h_connect(port, 0)) == -1)
			return i;
		ok = cl_finish(fd, REPLY_MS);
		close(fd);
	}
	return ok ? n : i - 1;
}

/* Every byte value, 64 times over, in one stream. */
static int
every_byte(int port)
{
	static unsigned char out[256 * 64], want[256 * 64], got[256 * 64];
	size_t i;
	int fd, ok;

	for (i = 0; i < sizeof(out); i++)
		out[i] = (unsigned char)(i + i / 256);
	memcpy(want, out, sizeof(out));
	cl_upper(want, sizeof(want));
	if ((fd = h_connect(port, 0)) == -1)
		return 0;
	ok = h_write_all(fd, out, sizeof(out)) == 0 &&
	    h_read_exact(fd, got, sizeof(got), REPLY_MS) == sizeof(got) &&
	    memcmp(got, want, sizeof(got)) == 0 && cl_finish(fd, REPLY_MS);
	close(fd);
	return ok;
}

/* 50 connections, 100 rounds of one byte each, interleaved. */
static int
one_byte_interleaved(int port)
{
	int fd[50], i, r, ok = 1;
	unsigned char c, got[100], want[100];

	for (i = 0; i < 50; i++)
		fd[i] = h_connect(port, 0);
	for (r = 0; r < 100 && ok; r++)
		for (i = 0; i < 50 && ok; i++) {
			c = (unsigned char)(i * 7 + r * 3);
			ok = fd[i] != -1 && send(fd[i], &c, 1, MSG_NOSIGNAL) ==
			    1;
		}
	for (i = 0; i < 50 && ok; i++) {
		for (r = 0; r < 100; r++)
			want[r] = (unsigned char)(i * 7 + r * 3);
		cl_upper(want, sizeof(want));
		ok = h_read_exact(fd[i], got, sizeof(got), REPLY_MS) ==
		    sizeof(got) && memcmp(got, want, sizeof(got)) == 0;
	}
	cl_close_fds(fd, 50);
	return ok;
}

/*
 * A stream reset in the middle: 64 KiB sent, 4 KiB of the echo read,
 * more sent without waiting, then a reset with replies unread.
 */
static int
reset_mid_stream(int port)
{
	static unsigned char buf[64 * 1024];
	int fd, ok;

	memset(buf, 'q', sizeof(buf));
	if ((fd = h_connect(port, 0)) == -1)
		return 0;
	ok = h_write_all(fd, buf, sizeof(buf)) == 0 &&
	    h_read_exact(fd, buf, 4096, REPLY_MS) == 4096 && buf[0] == 'Q';
	(void)send(fd, buf, sizeof(buf), MSG_NOSIGNAL | MSG_DONTWAIT);
	cl_reset(fd);
	return ok;
}

/* A fresh client, 1 MiB byte-exact with half-close and EOF. */
static int
fresh_client_exact(int port)
{
	static unsigned char out[1 << 20], want[1 << 20], got[1 << 20];
	size_t i, sent = 0, recvd = 0;
	struct pollfd pfd;
	long long deadline = h_now_ms() + 10000;
	ssize_t n;
	int fd, eof = 0;

	for (i = 0; i < sizeof(out); i++)
		out[i] = (unsigned char)(i * 2654435761u >> 13);
	memcpy(want, out, sizeof(out));
	cl_upper(want, sizeof(want));
	if ((fd = h_connect(port, 0)) == -1)
		return 0;
	fcntl(fd, F_SETFL, O_NONBLOCK);
	while (!eof && h_now_ms() < deadline) {
		pfd.fd = fd;
		pfd.events = POLLIN | (sent < sizeof(out) ? POLLOUT : 0);
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		if ((pfd.revents & POLLOUT) && sent < sizeof(out) &&
		    (n = send(fd, out + sent, sizeof(out) - sent,
		    MSG_NOSIGNAL)) > 0 && (sent += (size_t)n) == sizeof(out))
			shutdown(fd, SHUT_WR);
		if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
			n = recv(fd, got + recvd, sizeof(got) - recvd, 0);
			if (n == 0)
				eof = 1;
			else if (n > 0)
				recvd += (size_t)n;
			else if (errno != EAGAIN && errno != EINTR)
				break;
		}
	}
	close(fd);
	return eof && recvd == sizeof(want) && memcmp(got, want, recvd) == 0;
}

START_TEST(odd_client_storms)
{
	struct echod_proc p;
	struct tres t = { 0, "" };
	pid_t w0, w1;
	int n;
	long long t0;

	cl_proc_init(&p);
	REQUIRE(&t, h_start(&p, "listen = { \"127.0.0.1:0\" }\nworkers = 2\n"
	    "log_level = info\n", NULL, START_MS) == 0, "start failed");
	w0 = h_worker_pid(p.pid, 0);
	w1 = h_worker_pid(p.pid, 1);
	REQUIRE(&t, w0 > 0 && w1 > 0, "workers %d %d", (int)w0, (int)w1);
	t0 = h_now_ms();
	n = storm_connect_close(p.port, 1000);
	REQUIRE(&t, n == 1000, "connect %d of the storm failed: %s", n,
	    strerror(errno));
	n = storm_half_close(p.port, 50);
	REQUIRE(&t, n == 50, "%d of 50 half-closed clients got EOF back", n);
	REQUIRE(&t, every_byte(p.port), "every byte value: wrong echo");
	REQUIRE(&t, one_byte_interleaved(p.port), "one-byte writes from 50 "
	    "connections: wrong echo");
	REQUIRE(&t, reset_mid_stream(p.port), "reset mid-stream: no echo "
	    "before the reset");
	REQUIRE(&t, fresh_client_exact(p.port), "a fresh client was not "
	    "served byte-exact after the storms");
	printf("attack: storms (1000 connect/close, 50 half-close, every byte, "
	    "50x100 one-byte writes, reset mid-stream) in %lld ms\n",
	    h_now_ms() - t0);
	fflush(stdout);
	REQUIRE(&t, h_worker_pid(p.pid, 0) == w0 && h_worker_pid(p.pid, 1) ==
	    w1, "a worker was replaced during the storms");
	REQUIRE(&t, cl_log_count(&p, "killed by signal") == 0 &&
	    cl_log_count(&p, "exited with") == 0, "a worker died");
	REQUIRE_STOPPED(&t, &p, 5000);
out:
	cl_conclude(&t, &p);
}
END_TEST

/* ---- descriptor exhaustion ---- */

#define EXHAUST_CLIENTS 100

/* A script that starts echod under RLIMIT_NOFILE 64:64. */
static int
write_wrapper(char *dir, size_t dlen, char *path, size_t plen)
{
	char bin[PATH_MAX];
	FILE *f;

	if (realpath(h_echod_bin(), bin) == NULL)
		return -1;
	snprintf(dir, dlen, "/tmp/echod-wrap.XXXXXX");
	if (mkdtemp(dir) == NULL || chmod(dir, 0755) == -1)
		return -1;
	snprintf(path, plen, "%s/echod", dir);
	if ((f = fopen(path, "w")) == NULL)
		return -1;
	fprintf(f, "#!/bin/sh\nexec prlimit --nofile=64:64 -- '%s' \"$@\"\n",
	    bin);
	if (fclose(f) != 0 || chmod(path, 0755) == -1)
		return -1;
	return 0;
}

/* pf_fds: mark fd in the 1024-entry table arg. */
static int
mark_used(void *arg, int fd, const char *target)
{
	unsigned char *used = arg;

	(void)target;
	if (fd >= 0 && fd < 1024)
		used[fd] = 1;
	return 0;
}

/*
 * The soft RLIMIT_NOFILE under which pid has exactly nfree descriptor
 * numbers left: accept() takes the lowest free number below the limit,
 * and descriptors inherited from whoever started the test may sit
 * anywhere, above the limit too.
 */
static int
soft_limit_for(pid_t pid, int nfree)
{
	unsigned char used[1024];
	int s, left = nfree;

	memset(used, 0, sizeof(used));
	if (pf_fds(pid, mark_used, used) == -1)
		return -1;
	if (nfree == 0) { /* the lowest number free: none is below it */
		for (s = 0; s < (int)sizeof(used) && used[s]; s++)
			continue;
		return s < (int)sizeof(used) ? s : -1;
	}
	for (s = 0; s < (int)sizeof(used) && left > 0; s++)
		left -= !used[s];
	return left == 0 ? s : -1;
}

/* Out of descriptors with clients waiting: the daemon must not spin
 * (its CPU over 2 s), and says so once. */
static int
exhaust_no_spin(struct tres *t, struct echod_proc *p)
{
	long long cpu0, cpu1, t0, el;

	cpu0 = cl_cpu_ms(p->pid);
	t0 = h_now_ms();
	while ((el = h_now_ms() - t0) < 2000) {
		cl_notify_drain(p);
		pause_ms(20);
	}
	cpu1 = cl_cpu_ms(p->pid);
	printf("attack: descriptors exhausted, %d clients waiting: daemon CPU "
	    "%lld ms over %lld ms\n", EXHAUST_CLIENTS, cpu1 - cpu0, el);
	fflush(stdout);
	REQUIRE(t, cpu1 - cpu0 < 300, "the daemon used %lld ms of CPU in "
	    "%lld ms while it could not accept: spinning", cpu1 - cpu0, el);
	REQUIRE(t, cl_log_count(p, "pausing accepts") == 1, "%d accept "
	    "pause lines in ~2 s (once per 10 s wanted)",
	    cl_log_count(p, "pausing accepts"));
out:
	return !t->failed;
}

/* Worker w's descriptors back: the first clients are served, the last
 * one, which waited in the queue, too, and so is a new one (*fresh). */
static int
exhaust_recovers(struct tres *t, struct echod_proc *p, pid_t w, int *c,
    int *fresh)
{
	struct rlimit rl = { 64, 64 };
	char got[4];
	int i, served = 0;

	REQUIRE(t, h_write_all(c[EXHAUST_CLIENTS - 1], "late", 4) == 0,
	    "write");
	REQUIRE(t, cl_prlimit(w, RLIMIT_NOFILE, &rl, NULL) == 0,
	    "prlimit on the worker: %s", strerror(errno));
	for (i = 0; i < EXHAUST_CLIENTS - 1; i++) {
		served += i < 20 && cl_echo(c[i], "back", REPLY_MS);
		cl_close_fds(&c[i], 1);
	}
	REQUIRE(t, served == 20, "%d of the first 20 clients served once "
	    "descriptors were back", served);
	REQUIRE(t, h_read_exact(c[EXHAUST_CLIENTS - 1], got, 4, 5000) == 4 &&
	    memcmp(got, "LATE", 4) == 0,
	    "the client that waited in the queue was not served");
	/* A prefork worker serves one at a time: let it go first. */
	cl_close_fds(&c[EXHAUST_CLIENTS - 1], 1);
	REQUIRE(t, (*fresh = cl_connect(NULL, LO, p->port)) != -1 &&
	    cl_echo(*fresh, "fresh", REPLY_MS), "a new client is not served");
out:
	return !t->failed;
}

/*
 * Started under RLIMIT_NOFILE 64:64, echod fits max_connections to the
 * limit (31 a worker) so that its own limit never runs out.  To run it
 * out anyway, as a descriptor leak or ENFILE would, the worker's soft
 * limit is lowered from outside to a few above what it holds.  Then 100
 * clients: the worker must not spin on the listener (CPU of the whole
 * daemon over 2 s), must say so once, and must serve the waiting clients
 * once descriptors are back.
 *
 * Under model m (scenarios.h).  A worker that holds one connection at
 * most (prefork) or none (process-per-connection: its child does) would
 * never run out with a few numbers left: it gets none, and no client is
 * served before the limit is raised again.
 */
void
attack_exhaustion(const char *m)
{
	struct echod_proc p;
	struct tres t = { 0, "" };
	struct rlimit rl;
	char wdir[64] = "", wpath[128] = "", want[160], oldbin[PATH_MAX] = "";
	char conf[320];
	int c[EXHAUST_CLIENTS], fresh = -1, i, soft;
	int nfree = h_model_multiplexes(m) ? 5 : 0;
	pid_t w;

	for (i = 0; i < EXHAUST_CLIENTS; i++)
		c[i] = -1;
	cl_proc_init(&p);
	if (!in_path("prlimit")) {
		fprintf(stderr, "attack: descriptor_exhaustion SKIPPED: no "
		    "prlimit (util-linux)\n");
		return;
	}
	REQUIRE(&t, write_wrapper(wdir, sizeof(wdir), wpath, sizeof(wpath)) ==
	    0, "wrapper: %s", strerror(errno));
	snprintf(oldbin, sizeof(oldbin), "%s", h_echod_bin());
	setenv("ECHOD_BIN", wpath, 1);
	REQUIRE(&t, h_conf_model(conf, sizeof(conf), "listen = { "
	    "\"127.0.0.1:0\" }\nworkers = 1\nmax_connections = 100\n"
	    "backlog = 128\nlog_level = info\n", m, 0) != NULL, "conf");
	REQUIRE(&t, h_start(&p, conf, NULL, START_MS) == 0, "start failed");
	/* prefork has no max_connections to fit. */
	REQUIRE(&t, (m != NULL && strcmp(m, "prefork") == 0) ||
	    cl_log_count(&p, "RLIMIT_NOFILE is 64 (hard limit 64): "
	    "each worker will hold at most 31 connections") == 1,
	    "no line about fitting max_connections to RLIMIT_NOFILE 64");
	REQUIRE(&t, (w = h_worker_pid(p.pid, 0)) > 0, "no worker");
	REQUIRE(&t, (soft = soft_limit_for(w, nfree)) > 0 && soft < 64,
	    "cannot read the worker's descriptors");
	rl.rlim_cur = (rlim_t)soft;
	rl.rlim_max = 64;
	REQUIRE(&t, cl_prlimit(w, RLIMIT_NOFILE, &rl, NULL) == 0,
	    "prlimit on the worker: %s", strerror(errno));

	for (i = 0; i < EXHAUST_CLIENTS; i++)
		REQUIRE(&t, (c[i] = cl_connect(NULL, LO, p.port)) != -1,
		    "connect %d: %s", i, strerror(errno));
	REQUIRE(&t, cl_log_wait(&p, "accept: Too many open files; pausing "
	    "accepts for 100 ms", 1, 3000), "no accept pause in the log");
	REQUIRE(&t, nfree == 0 || cl_echo(c[0], "first", REPLY_MS), "the "
	    "first client, accepted before the limit, is not served");
	if (!exhaust_no_spin(&t, &p))
		goto out;
	if (!exhaust_recovers(&t, &p, w, c, &fresh))
		goto out;
	snprintf(want, sizeof(want), "worker 0 (pid %d)", (int)w);
	REQUIRE(&t, h_worker_pid(p.pid, 0) == w && cl_log_count(&p, want) ==
	    0, "the worker died");
	cl_close_fds(c, EXHAUST_CLIENTS);
	cl_close_fds(&fresh, 1);
	REQUIRE_STOPPED(&t, &p, 5000);
out:
	cl_close_fds(c, EXHAUST_CLIENTS);
	cl_close_fds(&fresh, 1);
	cl_log_dump_if_failed(&t, &p);
	h_cleanup(&p);
	if (oldbin[0] != '\0')
		setenv("ECHOD_BIN", oldbin, 1); /* CK_FORK=no: later tests */
	if (wpath[0] != '\0')
		unlink(wpath);
	if (wdir[0] != '\0')
		rmdir(wdir);
	ck_assert_msg(!t.failed, "%s", t.msg);
}

START_TEST(descriptor_exhaustion)
{
	attack_exhaustion(NULL);
}
END_TEST

/* ---- bad configurations, through the binary ---- */

struct bad_run {
	const char *what;
	char path[256];
	char want[512];
};

/* echod -c path (and with -t): exit 78 and one line that says want. */
static int
refused_config(struct tres *t, const struct bad_run *b)
{
	const char *start[] = { "echod", "-c", b->path, NULL };
	const char *test[] = { "echod", "-t", "-c", b->path, NULL };
	static char out[8192];
	int st;

	st = h_run(start, out, sizeof(out), 5000);
	if (!cl_exited_with(st, 78) || strstr(out, b->want) == NULL) {
		cl_fail(t, __LINE__, "%s: echod -c: status %#x, output '%s', "
		    "want exit 78 and '%s'", b->what, st, out, b->want);
		return 0;
	}
	st = h_run(test, out, sizeof(out), 5000);
	if (!cl_exited_with(st, 78) || strstr(out, b->want) == NULL) {
		cl_fail(t, __LINE__, "%s: echod -t -c: status %#x, output "
		    "'%s', want exit 78 and '%s'", b->what, st, out, b->want);
		return 0;
	}
	return 1;
}

START_TEST(bad_config_files)
{
	struct tres t = { 0, "" };
	struct bad_run b;
	char dir[64] = "", main_conf[128] = "", sub[128] = "";
	FILE *f = NULL;
	int i;

	snprintf(dir, sizeof(dir), "/tmp/echod-badconf.XXXXXX");
	REQUIRE(&t, mkdtemp(dir) != NULL, "mkdtemp: %s", strerror(errno));
	/* 1. The file is a directory (root reads a mode 000 file). */
	snprintf(sub, sizeof(sub), "%s/echod.conf.d", dir);
	REQUIRE(&t, mkdir(sub, 0755) == 0, "mkdir: %s", strerror(errno));
	b.what = "a directory";
	snprintf(b.path, sizeof(b.path), "%s", sub);
	snprintf(b.want, sizeof(b.want), "%s: cannot read: Is a directory",
	    sub);
	REQUIRE(&t, refused_config(&t, &b), "%s", t.msg);
	/* 2. A path through a file that is not a directory. */
	snprintf(main_conf, sizeof(main_conf), "%s/plain", dir);
	REQUIRE(&t, (f = fopen(main_conf, "w")) != NULL, "fopen");
	fclose(f);
	f = NULL;
	b.what = "a path through a file";
	snprintf(b.path, sizeof(b.path), "%s/echod.conf", main_conf);
	snprintf(b.want, sizeof(b.want), "%s: cannot open: Not a directory",
	    b.path);
	REQUIRE(&t, refused_config(&t, &b), "%s", t.msg);
	unlink(main_conf);
	/* 3. A missing include, named with the including file and line. */
	snprintf(main_conf, sizeof(main_conf), "%s/echod.conf", dir);
	REQUIRE(&t, (f = fopen(main_conf, "w")) != NULL, "fopen");
	fputs("listen = { \"127.0.0.1:0\" }\nworkers = 1\n"
	    "include(\"missing.conf\")\n", f);
	fclose(f);
	f = NULL;
	b.what = "a missing include";
	snprintf(b.path, sizeof(b.path), "%s", main_conf);
	snprintf(b.want, sizeof(b.want), "%s:3: include: '%s/missing.conf': "
	    "cannot open: No such file or directory", main_conf, dir);
	REQUIRE(&t, refused_config(&t, &b), "%s", t.msg);
	/* 4. Each new option out of range, with its line. */
	for (i = 0; i < 3; i++) {
		static const char *const bad[] = {
			"max_connection_time = 604801\n",
			"max_connections_per_ip = -1\n",
			"sandbox = strict\n",
		};
		static const char *const msg[] = {
			"max_connection_time: 604801 is out of range",
			"max_connections_per_ip: -1 is out of range",
			"sandbox: 'strict' is not a boolean",
		};

		REQUIRE(&t, (f = fopen(main_conf, "w")) != NULL, "fopen");
		fprintf(f, "listen = { \"127.0.0.1:0\" }\n%s", bad[i]);
		fclose(f);
		f = NULL;
		b.what = bad[i];
		snprintf(b.path, sizeof(b.path), "%s", main_conf);
		snprintf(b.want, sizeof(b.want), "%s:2: %s", main_conf, msg[i]);
		REQUIRE(&t, refused_config(&t, &b), "%s", t.msg);
	}
out:
	if (main_conf[0] != '\0')
		unlink(main_conf);
	if (sub[0] != '\0')
		rmdir(sub);
	if (dir[0] != '\0') {
		snprintf(main_conf, sizeof(main_conf), "%s/plain", dir);
		unlink(main_conf);
		rmdir(dir);
	}
	if (t.failed)
		fprintf(stderr, "---- failed: %s\n", t.msg);
	ck_assert_msg(!t.failed, "%s", t.msg);
}
END_TEST

/* ---- the master cannot fork ---- */

/*
 * The master runs as nobody after the drop, so RLIMIT_NPROC applies to
 * its fork(): with the soft limit at 1 (nobody has more processes than
 * that: the master and its workers) every fork fails with EAGAIN.  A
 * killed worker cannot be replaced: the master must say so and try again
 * every second, not in a tight loop, and fill the slot once the limit is
 * back.  The other worker serves on throughout.
 */
START_TEST(fork_fails_retried)
{
	struct echod_proc p;
	struct tres t = { 0, "" };
	struct rlimit rl, old;
	char want[128];
	struct two w = TWO_INIT;
	int lowered = 0, n;
	long long t0, t1, t2;
	pid_t ny;

	cl_proc_init(&p);
	if (!two_apart(&t, &p, TWO_CONF, &w))
		goto out;
	REQUIRE(&t, cl_prlimit(p.pid, RLIMIT_NPROC, NULL, &old) == 0,
	    "prlimit: %s", strerror(errno));
	rl.rlim_cur = 1;
	rl.rlim_max = old.rlim_max;
	REQUIRE(&t, cl_prlimit(p.pid, RLIMIT_NPROC, &rl, NULL) == 0,
	    "prlimit: %s", strerror(errno));
	lowered = 1;
	REQUIRE(&t, kill(w.y, SIGKILL) == 0, "kill: %s", strerror(errno));
	snprintf(want, sizeof(want), "fork for worker %d; trying again in 1 s: "
	    "Resource temporarily unavailable", w.sy);
	REQUIRE(&t, cl_log_wait(&p, want, 1, 2000), "no '%s' in the log",
	    want);
	t1 = h_now_ms();
	REQUIRE(&t, cl_log_wait(&p, want, 2, 3000), "no second try after the "
	    "failed fork");
	t2 = h_now_ms();
	REQUIRE(&t, h_worker_pid(p.pid, (unsigned)w.sy) == -1, "slot %d has a "
	    "worker although fork fails", w.sy);
	REQUIRE(&t, cl_echo(w.a, "a meanwhile", REPLY_MS), "the other worker "
	    "stopped serving");
	n = cl_log_count(&p, "fork for worker");
	printf("attack: fork failing (RLIMIT_NPROC 1): %d tries logged, the "
	    "second %lld ms after the first\n", n, t2 - t1);
	fflush(stdout);
	REQUIRE(&t, n <= 3, "%d fork attempts logged in ~1 s: a tight loop",
	    n);
	REQUIRE(&t, t2 - t1 >= 700, "the second try came %lld ms after the "
	    "first, want ~1 s", t2 - t1);
	REQUIRE(&t, cl_prlimit(p.pid, RLIMIT_NPROC, &old, NULL) == 0,
	    "prlimit: %s", strerror(errno));
	lowered = 0;
	t0 = h_now_ms();
	REQUIRE(&t, (ny = h_wait_worker(p.pid, (unsigned)w.sy, w.y, 2500)) > 0,
	    "slot %d not refilled within 2.5 s of the limit going back", w.sy);
	printf("attack: pool full again %lld ms after the limit went back\n",
	    h_now_ms() - t0);
	fflush(stdout);
	REQUIRE(&t, (w.c = cl_connect(NULL, LO, p.port)) != -1 &&
	    cl_echo(w.c, "c", REPLY_MS), "the new worker does not serve");
	REQUIRE(&t, cl_owner(p.pid, 2, p.port, w.c, NULL) == ny, "c is not on "
	    "the new worker");
	cl_close_fds(w.fd, 3);
	REQUIRE_STOPPED(&t, &p, 5000);
out:
	if (lowered)
		cl_prlimit(p.pid, RLIMIT_NPROC, &old, NULL);
	cl_conclude_fds(&t, &p, w.fd, 3);
}
END_TEST

Suite *
attack_suite(void)
{
	Suite *s = suite_create("attack");

	h_case(s, "limits", 30, H_TESTS(per_ip_across_workers, per_ip_released,
	    per_ip_ipv6,
	    exempt_loopback, rate_per_ip, dead_worker_counts_forgotten,
	    connection_time_limit));
	h_case(s, "sandbox", 60, H_TESTS(sandbox_kills_forbidden_call,
	    sandbox_off_allows_it));
	h_case(s, "abuse", 30, H_TESTS(odd_client_storms,
	    descriptor_exhaustion));
	h_case(s, "faults", 30, H_TESTS(bad_config_files, fork_fails_retried));
	return s;
}
