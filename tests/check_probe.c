/*
 * check_probe: the health probe's own decisions, and the watchdog it
 * serves, driven from outside.
 *
 * The unit cases feed probe_schedule() and probe_wants() tables, then run
 * single probes against a listener the test itself plays the worker for,
 * so each step (connect, send, wait, reply) is under the test's control.
 * The integration cases start the real echod with WATCHDOG_USEC set and
 * look at what a waiting probe costs the master, and at an absurdly
 * short interval.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clients.h"
#include "echo.h"
#include "harness.h"
#include "probe.h"
#include "suites.h"

#define TAG 7
#define START_MS 5000

/* ---- the schedule ---- */

struct sched_case {
	uint64_t usec;
	uint64_t every, deadline, retry, watchdog;
	int clamped;
};

static const struct sched_case sched_cases[] = {
	{ 0, 0, 0, 0, 0, 0 },                 /* no watchdog */
	{ 2000, 500, 250, 125, 1000, 1 },     /* 2 ms: was a 0 ms deadline */
	{ 1, 500, 250, 125, 1000, 1 },
	{ 999999, 500, 250, 125, 1000, 1 },   /* just under 1 s */
	{ 1000000, 500, 250, 125, 1000, 0 },  /* 1 s: the floor itself */
	{ 1600000, 800, 400, 200, 1600, 0 },
	{ 8000000, 4000, 2000, 1000, 8000, 0 }, /* retry stops at 1 s */
	{ 20000000, 10000, 5000, 1000, 20000, 0 },
	{ 60000000, 30000, 5000, 1000, 60000, 0 }, /* deadline at 5 s */
	{ 3600000000ULL, 1800000, 5000, 1000, 3600000, 0 },
};

START_TEST(test_schedule_table)
{
	const struct sched_case *c = &sched_cases[_i];
	struct probe_sched s = probe_schedule(c->usec);

	ck_assert_msg(s.every_ms == c->every && s.deadline_ms == c->deadline &&
	    s.retry_ms == c->retry && s.watchdog_ms == c->watchdog &&
	    s.clamped == c->clamped, "WATCHDOG_USEC=%llu: every %llu, "
	    "deadline %llu, retry %llu, watchdog %llu, clamped %d; want "
	    "%llu, %llu, %llu, %llu, %d", (unsigned long long)c->usec,
	    (unsigned long long)s.every_ms, (unsigned long long)s.deadline_ms,
	    (unsigned long long)s.retry_ms, (unsigned long long)s.watchdog_ms,
	    s.clamped, (unsigned long long)c->every,
	    (unsigned long long)c->deadline, (unsigned long long)c->retry,
	    (unsigned long long)c->watchdog, c->clamped);
}
END_TEST

/*
 * Whatever the interval: a probe is over (answered or failed) before the
 * next one is due, and its deadline stays within 200 ms .. 5 s.
 */
START_TEST(test_schedule_invariants)
{
	uint64_t usec;
	struct probe_sched s;

	for (usec = 1; usec < 200000000ULL; usec = usec * 3 + 7) {
		s = probe_schedule(usec);
		ck_assert_msg(s.deadline_ms >= PROBE_DEADLINE_MIN_MS &&
		    s.deadline_ms <= PROBE_DEADLINE_MAX_MS, "usec %llu: "
		    "deadline %llu ms", (unsigned long long)usec,
		    (unsigned long long)s.deadline_ms);
		ck_assert_msg(s.deadline_ms < s.every_ms, "usec %llu: deadline "
		    "%llu ms, a probe every %llu ms", (unsigned long long)usec,
		    (unsigned long long)s.deadline_ms,
		    (unsigned long long)s.every_ms);
		ck_assert_uint_gt(s.retry_ms, 0);
		ck_assert_uint_le(s.retry_ms, s.every_ms);
		ck_assert_uint_ge(s.watchdog_ms, PROBE_WATCHDOG_MIN_MS);
		ck_assert_int_eq(s.clamped, usec < 1000000);
	}
}
END_TEST

START_TEST(test_wants)
{
	ck_assert_uint_eq(probe_wants(0), EPOLLOUT);
	ck_assert_uint_eq(probe_wants(1), EPOLLIN);
}
END_TEST

/* ---- single probes, the test playing the worker ---- */

struct bench {
	int lfd, epfd, srv;
	struct sockaddr_storage ss;
	socklen_t sl;
	struct probe p;
};

static void
bench_open(struct bench *b, const char *addr)
{
	struct sockaddr_in sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	ck_assert_int_eq(inet_pton(AF_INET, addr, &sin.sin_addr), 1);
	b->srv = -1;
	b->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ne(b->lfd, -1);
	ck_assert_int_eq(bind(b->lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(b->lfd, 8), 0);
	ck_assert_int_eq(probe_target(b->lfd, &b->ss, &b->sl), 0);
	ck_assert_int_ne(b->epfd = epoll_create1(EPOLL_CLOEXEC), -1);
	probe_init(&b->p, 8000000); /* a 2 s deadline */
}

static void
bench_close(struct bench *b)
{
	probe_cancel(&b->p);
	if (b->srv != -1)
		close(b->srv);
	close(b->lfd);
	close(b->epfd);
}

/* Events on the probe within timeout_ms: 0 or 1. */
static int
wait_probe(struct bench *b, int timeout_ms)
{
	struct epoll_event ev;
	int n = epoll_wait(b->epfd, &ev, 1, timeout_ms);

	ck_assert_int_ne(n, -1);
	if (n == 1)
		ck_assert_uint_eq(ev.data.u32, TAG);
	return n;
}

/*
 * The worker's side sends len bytes of reply (none with len 0); the
 * probe's socket wakes the loop and probe_event says want.
 */
static void
reply_event(struct bench *b, const unsigned char *reply, size_t len,
    int want)
{
	if (len > 0)
		ck_assert_int_eq(h_write_all(b->srv, reply, len), 0);
	ck_assert_int_eq(wait_probe(b, 2000), 1);
	ck_assert_int_eq(probe_event(&b->p), want);
}

/*
 * A bench on 127.0.0.1: connect, see the token sent, accept it on the
 * worker's side.
 */
static void
start_and_send(struct bench *b, unsigned char *token)
{
	bench_open(b, "127.0.0.1");
	ck_assert_int_ne(probe_start(&b->p, (struct sockaddr *)&b->ss, b->sl,
	    1000, b->epfd, TAG), -1);
	ck_assert_uint_eq(b->p.deadline_ms, 1000 + 2000);
	ck_assert_uint_eq(b->p.events, EPOLLOUT);
	reply_event(b, NULL, 0, PROBE_PENDING);
	ck_assert_int_eq(b->p.sent, 1);
	ck_assert_uint_eq(b->p.events, EPOLLIN);
	ck_assert_int_ne(b->srv = accept(b->lfd, NULL, NULL), -1);
	ck_assert_uint_eq(h_read_exact(b->srv, token, PROBE_TOKEN_LEN, 2000),
	    PROBE_TOKEN_LEN);
}

/*
 * The worker has the token but has not answered: the probe's socket is
 * writable all along, yet the loop must not wake for it (defect 2: it
 * woke on every turn, a master spinning until the deadline).
 */
START_TEST(test_waiting_probe_is_quiet)
{
	unsigned char token[PROBE_TOKEN_LEN];
	struct bench b;
	int i;

	start_and_send(&b, token);
	for (i = 0; i < PROBE_TOKEN_LEN; i++)
		ck_assert_msg(token[i] >= 'a' && token[i] <= 'z',
		    "token byte %d is %#x", i, token[i]);
	ck_assert_msg(wait_probe(&b, 300) == 0, "the probe's socket woke the "
	    "loop while waiting for the reply (events %#x)", b.p.events);
	ck_assert_int_eq(probe_expire(&b.p, 2999), PROBE_PENDING);
	echo_upper(token, PROBE_TOKEN_LEN);
	reply_event(&b, token, PROBE_TOKEN_LEN, PROBE_OK);
	ck_assert_int_eq(b.p.fd, -1);
	bench_close(&b);
}
END_TEST

/* A reply in two pieces is put together. */
START_TEST(test_reply_in_pieces)
{
	unsigned char token[PROBE_TOKEN_LEN];
	struct bench b;

	start_and_send(&b, token);
	echo_upper(token, PROBE_TOKEN_LEN);
	reply_event(&b, token, 5, PROBE_PENDING);
	reply_event(&b, token + 5, PROBE_TOKEN_LEN - 5, PROBE_OK);
	bench_close(&b);
}
END_TEST

START_TEST(test_wrong_reply)
{
	unsigned char token[PROBE_TOKEN_LEN];
	struct bench b;

	start_and_send(&b, token); /* echoed as is: not uppercased */
	reply_event(&b, token, PROBE_TOKEN_LEN, PROBE_FAILED);
	ck_assert_msg(strstr(b.p.err, "wrong reply") != NULL, "err: %s",
	    b.p.err);
	ck_assert_int_eq(b.p.fd, -1);
	bench_close(&b);
}
END_TEST

START_TEST(test_closed_before_reply)
{
	unsigned char token[PROBE_TOKEN_LEN];
	struct bench b;

	start_and_send(&b, token);
	close(b.srv);
	b.srv = -1;
	reply_event(&b, NULL, 0, PROBE_FAILED);
	ck_assert_str_eq(b.p.err, "recv: connection closed");
	bench_close(&b);
}
END_TEST

START_TEST(test_deadline)
{
	unsigned char token[PROBE_TOKEN_LEN];
	struct bench b;

	start_and_send(&b, token);
	ck_assert_int_eq(probe_expire(&b.p, 2999), PROBE_PENDING);
	ck_assert_int_eq(probe_expire(&b.p, 3000), PROBE_FAILED);
	ck_assert_str_eq(b.p.err, "no reply within the deadline (token sent)");
	ck_assert_int_eq(b.p.fd, -1);
	/* Nothing running: nothing to expire or advance. */
	ck_assert_int_eq(probe_expire(&b.p, 5000), PROBE_FAILED);
	ck_assert_int_eq(probe_event(&b.p), PROBE_FAILED);
	bench_close(&b);
}
END_TEST

/* Nobody listens: the connect's error is the probe's. */
START_TEST(test_refused)
{
	struct bench b;

	bench_open(&b, "127.0.0.1");
	close(b.lfd);
	b.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	/* Loopback may refuse at once, or report it as an event. */
	if (probe_start(&b.p, (struct sockaddr *)&b.ss, b.sl, 0, b.epfd,
	    TAG) != -1) {
		reply_event(&b, NULL, 0, PROBE_FAILED);
	}
	ck_assert_str_eq(b.p.err, "connect: Connection refused");
	bench_close(&b);
}
END_TEST

/* A wildcard listener is probed on loopback; a bound one on itself. */
START_TEST(test_target)
{
	struct sockaddr_in *sin;
	char a[64];
	struct bench b;

	bench_open(&b, "0.0.0.0");
	sin = (struct sockaddr_in *)&b.ss;
	ck_assert_int_eq(sin->sin_family, AF_INET);
	ck_assert_str_eq(inet_ntop(AF_INET, &sin->sin_addr, a, sizeof(a)),
	    "127.0.0.1");
	ck_assert_int_ne(sin->sin_port, 0);
	bench_close(&b);
	bench_open(&b, "127.0.0.2");
	ck_assert_str_eq(inet_ntop(AF_INET, &sin->sin_addr, a, sizeof(a)),
	    "127.0.0.2");
	bench_close(&b);
}
END_TEST

/* ---- the watchdog, end to end ---- */

static const char one_worker[] = "listen = { \"127.0.0.1:0\" }\n"
    "workers = 1\nlog_level = info\n";

/* Start echod with WATCHDOG_USEC=usec and wait for READY=1. */
static int
start_watchdog(struct echod_proc *p, const char *conf, const char *usec)
{
	const char *envs[] = { usec, "WATCHDOG_PID=self", NULL };

	if (h_spawn_ex(p, conf, NULL, envs, NULL, 0) == -1)
		return -1;
	return h_wait_ready(p, START_MS);
}

/* Drain notify datagrams until needle is in the log; 1 if it is. */
static int
wait_log_draining(struct echod_proc *p, const char *needle, int timeout_ms)
{
	long long deadline = h_now_ms() + timeout_ms;
	int i;

	for (i = 0; i < 100000; i++) {
		cl_notify_drain(p);
		if (h_log_wait(p, needle, 0))
			return 1;
		if (h_now_ms() >= deadline)
			return 0;
		h_poll_pause();
	}
	return 0;
}

/*
 * Defect 2: a stopped worker leaves the probe waiting for its full
 * deadline (2 s with WATCHDOG_USEC=8 s).  The master must spend that
 * wait asleep: it burned ~1 CPU-second per 2.5 s in a level-triggered
 * EPOLLOUT loop.
 */
START_TEST(pending_probe_costs_no_cpu)
{
	struct echod_proc p;
	struct tres t = { 0, "" };
	pid_t w = -1;
	long long cpu0, cpu1, t0, t1;

	cl_proc_init(&p);
	REQUIRE(&t, start_watchdog(&p, one_worker,
	    "WATCHDOG_USEC=8000000") == 0, "start failed");
	/* The first probe, right after READY, succeeds. */
	REQUIRE(&t, h_wait_notify(&p, "WATCHDOG=1", 3000, NULL, 0) == 0,
	    "no WATCHDOG=1 after READY=1");
	REQUIRE(&t, h_children(p.pid, &w, 1) == 1, "no worker");
	kill(w, SIGSTOP);
	cpu0 = cl_pid_cpu_ms(p.pid);
	t0 = h_now_ms();
	/* The next probe: due 4 s after the first, failed 2 s later. */
	REQUIRE(&t, wait_log_draining(&p, "health probe failed", 9000),
	    "no failed probe within 9 s of stopping the worker");
	cpu1 = cl_pid_cpu_ms(p.pid);
	t1 = h_now_ms();
	REQUIRE(&t, h_log_wait(&p, "no reply within the deadline (token "
	    "sent)", 0), "the probe failed before its token was sent");
	REQUIRE(&t, cpu1 - cpu0 < 200, "the master used %lld ms of CPU in "
	    "%lld ms, while a probe waited 2 s for a stopped worker",
	    cpu1 - cpu0, t1 - t0);
out:
	if (w > 0)
		kill(w, SIGCONT);
	cl_stop(&p, 5000);
	cl_conclude(&t, &p);
}
END_TEST

/*
 * Defect 14: WATCHDOG_USEC=2000 gave every probe a 0 ms deadline: each
 * one failed, and the pool was recycled ~110 times a second.  Now the
 * interval counts as 1 s, with one warning, and the probes succeed.
 */
START_TEST(tiny_watchdog_is_clamped)
{
	struct echod_proc p;
	struct tres t = { 0, "" };
	char line[512] = "";
	long long deadline;
	int pings = 0, i, lines;

	cl_proc_init(&p);
	REQUIRE(&t, start_watchdog(&p, one_worker, "WATCHDOG_USEC=2000") == 0,
	    "start failed");
	deadline = h_now_ms() + 3000;
	for (i = 0; i < 100000 && h_now_ms() < deadline; i++) {
		if (h_wait_notify(&p, "WATCHDOG=1", 200, NULL, 0) == 0)
			pings++;
	}
	REQUIRE(&t, cl_log_count(&p, "recycling the pool") == 0 &&
	    cl_log_count(&p, "health probe failed") == 0, "%d recycle(s) and "
	    "%d failed probe(s) in 3 s with WATCHDOG_USEC=2000",
	    cl_log_count(&p, "recycling the pool"),
	    cl_log_count(&p, "health probe failed"));
	REQUIRE(&t, cl_log_count(&p, "WATCHDOG_USEC is under 1000 ms") == 1,
	    "%d warning line(s) about the short interval, want 1",
	    cl_log_count(&p, "WATCHDOG_USEC is under 1000 ms"));
	REQUIRE(&t, cl_log_line(&p, "a health probe every", line,
	    sizeof(line)) && strstr(line, "every 500 ms") != NULL,
	    "probe interval: %s", line);
	lines = cl_log_count(&p, "\n");
	REQUIRE(&t, lines < 40, "%d log lines in 3 s", lines);
	REQUIRE(&t, pings >= 3 && pings <= 12, "%d WATCHDOG=1 in 3 s, want "
	    "one every 500 ms", pings);
out:
	cl_stop(&p, 5000);
	cl_conclude(&t, &p);
}
END_TEST

/*
 * Issue 12: behind a balancer only (listen = {}), the probe's target is
 * a proxied listener, which closes anything but a PROXY header: the
 * probe speaks first as a balancer's health check does (a v2 LOCAL
 * header), and the watchdog is fed.  Without it every probe failed and
 * the pool was recycled each time.
 */
START_TEST(probe_behind_proxy_listen)
{
	struct echod_proc p;
	struct tres t = { 0, "" };
	long long deadline;
	int pings = 0, i;

	cl_proc_init(&p);
	REQUIRE(&t, start_watchdog(&p, "listen = {}\nproxy_listen = "
	    "{ \"127.0.0.1:0\" }\nproxy_trusted = { \"127.0.0.1/32\" }\n"
	    "workers = 1\nlog_level = info\n", "WATCHDOG_USEC=2000000") == 0,
	    "start failed: %s", cl_log_tail(&p));
	deadline = h_now_ms() + 3500;
	for (i = 0; i < 100000 && h_now_ms() < deadline; i++)
		if (h_wait_notify(&p, "WATCHDOG=1", 200, NULL, 0) == 0)
			pings++;
	REQUIRE(&t, cl_log_count(&p, "health probe failed") == 0 &&
	    cl_log_count(&p, "PROXY: closed") == 0, "%d failed probe(s), %d "
	    "PROXY close line(s): %s", cl_log_count(&p, "health probe failed"),
	    cl_log_count(&p, "PROXY: closed"), cl_log_tail(&p));
	REQUIRE(&t, pings >= 3, "%d WATCHDOG=1 in 3.5 s, want one a second",
	    pings);
out:
	cl_stop(&p, 5000);
	cl_conclude(&t, &p);
}
END_TEST

/* A full pool is busy, not broken: no probe, the watchdog fed. */
static const struct skip_case {
	unsigned ready, full;
	int skip;
} skip_cases[] = {
	{ 0, 0, 0 },   /* nobody ready yet: probe (and fail) as before */
	{ 2, 0, 0 },
	{ 2, 1, 0 },   /* one worker has room: the probe can be served */
	{ 2, 2, 1 },
	{ 1, 1, 1 },
	{ 256, 255, 0 },
	{ 256, 256, 1 },
};

START_TEST(test_skip_when_full)
{
	const struct skip_case *c = &skip_cases[_i];

	ck_assert_msg(probe_skip_when_full(c->ready, c->full) == c->skip,
	    "ready %u, full %u: skip %d, want %d", c->ready, c->full,
	    probe_skip_when_full(c->ready, c->full), c->skip);
}
END_TEST

/*
 * Issue 11: a prefork worker on a connection is full.  The probe would
 * wait in the accept queue behind it and fail, and the recycle would
 * drop the client: with every worker full, the master skips the probe
 * and feeds the watchdog (the heartbeats say the workers are alive).
 */
START_TEST(full_pool_is_not_recycled)
{
	struct echod_proc p;
	struct tres t = { 0, "" };
	long long deadline;
	int fd = -1, pings = 0, i, failed0, recycled0;

	cl_proc_init(&p);
	REQUIRE(&t, start_watchdog(&p, "listen = { \"127.0.0.1:0\" }\n"
	    "workers = 1\nmodel = prefork\nlog_level = debug\n",
	    "WATCHDOG_USEC=2000000") == 0, "start failed");
	REQUIRE(&t, (fd = cl_connect(NULL, "127.0.0.1", p.port)) != -1 &&
	    cl_echo(fd, "held\n", 3000), "the held client was not echoed");
	/*
	 * Only what happens once the pool is full counts: a probe before
	 * it may fail on a loaded machine, and that is another matter.
	 */
	failed0 = cl_log_count(&p, "health probe failed");
	recycled0 = cl_log_count(&p, "recycling the pool");
	/* 4 s: four probe times, each with a 500 ms deadline. */
	deadline = h_now_ms() + 4000;
	for (i = 0; i < 100000 && h_now_ms() < deadline; i++)
		if (h_wait_notify(&p, "WATCHDOG=1", 200, NULL, 0) == 0)
			pings++;
	REQUIRE(&t, cl_log_count(&p, "health probe failed") == failed0 &&
	    cl_log_count(&p, "recycling the pool") == recycled0, "a full "
	    "prefork pool was probed and recycled (%d failed probe(s))",
	    cl_log_count(&p, "health probe failed") - failed0);
	REQUIRE(&t, pings >= 3, "%d WATCHDOG=1 in 4 s with the pool full",
	    pings);
	REQUIRE(&t, cl_log_count(&p, "health probe skipped") >= 3,
	    "the probes were not skipped");
	REQUIRE(&t, cl_echo(fd, "still here\n", 3000), "the held client "
	    "lost its connection");
out:
	if (fd != -1)
		close(fd);
	cl_stop(&p, 5000);
	cl_conclude(&t, &p);
}
END_TEST

Suite *
probe_suite(void)
{
	Suite *s = suite_create("probe");
	TCase *tc;

	tc = h_case(s, "decisions", 0, H_TESTS(test_schedule_invariants,
	    test_wants));
	tcase_add_loop_test(tc, test_schedule_table, 0, H_NELEM(sched_cases));
	tcase_add_loop_test(tc, test_skip_when_full, 0, H_NELEM(skip_cases));
	h_case(s, "round trip", 0, H_TESTS(test_waiting_probe_is_quiet,
	    test_reply_in_pieces, test_wrong_reply, test_closed_before_reply,
	    test_deadline, test_refused, test_target));
	h_case(s, "watchdog", 30, H_TESTS(probe_behind_proxy_listen,
	    pending_probe_costs_no_cpu,
	    tiny_watchdog_is_clamped, full_pool_is_not_recycled));
	return s;
}
