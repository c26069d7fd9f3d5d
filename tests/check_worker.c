/*
 * check_worker: the worker's own decisions, and a graceful stop with a
 * full accept queue against the real echod.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clients.h"
#include "harness.h"
#include "procfs.h"
#include "olist.h"
#include "suites.h"
#include "worker.h"

#define START_MS 10000
#define STOP_MS 20000

/* ---- worker_drain_stop_accepting ---- */

static const struct {
	int empty, can_accept;
	uint64_t now, deadline;
	int want;
} drain_cases[] = {
	{ 0, 1, 1000, 5000, 0 }, /* queue not empty, room, time: go on */
	{ 1, 1, 1000, 5000, 1 }, /* queue empty: close the listeners */
	{ 0, 0, 1000, 5000, 1 }, /* full: the others take the rest */
	{ 0, 1, 5000, 5000, 1 }, /* shutdown_timeout reached */
	{ 0, 1, 6000, 5000, 1 },
	{ 1, 0, 6000, 5000, 1 },
	{ 0, 1, 4999, 5000, 0 },
};

START_TEST(drain_stop_accepting_table)
{
	ck_assert_int_eq(worker_drain_stop_accepting(drain_cases[_i].empty,
	    drain_cases[_i].can_accept, drain_cases[_i].now,
	    drain_cases[_i].deadline), drain_cases[_i].want);
}
END_TEST

/* ---- olist: the idle and age lists' one helper ---- */

struct item {
	int payload;
	struct olist_link a; /* two lists through one table, as conn */
	struct olist_link b;
};

/* The list's order from head to tail, and backwards, as a string. */
static void
order(const struct olist *l, char *fwd, char *back)
{
	uint32_t i;

	for (i = l->head; i != OLIST_NIL; i = olist_link(l, i)->next)
		*fwd++ = (char)('0' + i);
	*fwd = '\0';
	for (i = l->tail; i != OLIST_NIL; i = olist_link(l, i)->prev)
		*back++ = (char)('0' + i);
	*back = '\0';
}

/*
 * Each step: 'a' append, 'u' unlink, 't' move to tail, on entry N; then
 * the order wanted head to tail.
 */
static const struct {
	const char *ops;
	const char *want;
} olist_cases[] = {
	{ "", "" },
	{ "a0", "0" },
	{ "a0a1a2", "012" },
	{ "a0a1a2u0", "12" },
	{ "a0a1a2u1", "02" },
	{ "a0a1a2u2", "01" },
	{ "a0u0", "" },
	{ "a0a1a2t0", "120" },
	{ "a0a1a2t2", "012" },
	{ "a0a1a2t1t0", "210" },
	{ "a0a1a2u0u1u2a1", "1" },
	{ "a3a1t3u1a0a1", "301" },
};

START_TEST(olist_table)
{
	struct item items[8];
	struct olist l, other;
	const char *op;
	char fwd[16], back[16], rev[16];
	size_t n, k;

	memset(items, 0, sizeof(items));
	olist_init(&l, items, sizeof(items[0]), offsetof(struct item, a));
	olist_init(&other, items, sizeof(items[0]), offsetof(struct item, b));
	/* The other list holds everything, in its own order, throughout. */
	for (k = 8; k-- > 0;)
		olist_append(&other, (uint32_t)k);
	for (op = olist_cases[_i].ops; op[0] != '\0'; op += 2) {
		uint32_t i = (uint32_t)(op[1] - '0');

		if (op[0] == 'a')
			olist_append(&l, i);
		else if (op[0] == 'u')
			olist_unlink(&l, i);
		else
			olist_move_to_tail(&l, i);
	}
	order(&l, fwd, back);
	ck_assert_str_eq(fwd, olist_cases[_i].want);
	n = strlen(back);
	for (k = 0; k < n; k++)
		rev[k] = back[n - 1 - k];
	rev[n] = '\0';
	ck_assert_str_eq(rev, olist_cases[_i].want);
	ck_assert(n > 0 || (l.head == OLIST_NIL && l.tail == OLIST_NIL));
	order(&other, fwd, back);
	ck_assert_str_eq(fwd, "76543210");
}
END_TEST

/* ---- a graceful stop with 400 connections queued ---- */

#define QUEUED 400
#define WORKERS 2

/* Wait until every pid has sig pending. */
static int
wait_pending(const pid_t *pids, int n, int sig, int timeout_ms)
{
	long long deadline = h_now_ms() + timeout_ms;
	int i;

	do {
		for (i = 0; i < n && pf_sig_pending(pids[i], sig, 0); i++)
			;
		if (i == n)
			return 0;
		h_poll_pause();
	} while (h_now_ms() < deadline);
	return -1;
}

static void
signal_all(const pid_t *pids, int n, int sig)
{
	int i;

	for (i = 0; i < n; i++)
		kill(pids[i], sig);
}

/*
 * Issue 9, defect 18: with 400 connections in the accept queue, SIGTERM
 * served 256 and reset 144: each of the 2 workers took a batch of 64 for
 * the listener's event and one more in begin_drain, then closed.  The workers are
 * stopped while the clients connect and send, so everything waits in the
 * queue; SIGTERM reaches them while stopped, then they continue.
 */
START_TEST(sigterm_serves_the_whole_queue)
{
	static int fds[QUEUED];
	struct echod_proc p;
	struct tres t = { 0 };
	pid_t kids[WORKERS];
	int i, n, served = 0, st, stopped = 0;

	cl_proc_init(&p);
	for (i = 0; i < QUEUED; i++)
		fds[i] = -1;
	REQUIRE(&t, h_start(&p, "listen = { \"127.0.0.1:0\" }\nworkers = 2\n"
	    "backlog = 1024\nshutdown_timeout = 15\n", NULL, START_MS) == 0,
	    "no READY=1");
	REQUIRE(&t, (n = h_children(p.pid, kids, WORKERS)) == WORKERS,
	    "%d workers", n);
	signal_all(kids, WORKERS, SIGSTOP);
	stopped = 1;
	for (i = 0; i < QUEUED; i++) {
		REQUIRE(&t, (fds[i] = h_connect(p.port, 0)) != -1,
		    "connection %d: %s", i, strerror(errno));
		REQUIRE(&t, h_write_all(fds[i], "queued\n", 7) == 0,
		    "write %d", i);
	}
	REQUIRE(&t, kill(p.pid, SIGTERM) == 0, "SIGTERM");
	REQUIRE(&t, wait_pending(kids, WORKERS, SIGTERM, START_MS) == 0,
	    "the master did not pass SIGTERM on to the stopped workers");
	signal_all(kids, WORKERS, SIGCONT);
	stopped = 0;
	for (i = 0; i < QUEUED; i++) {
		char got[8];

		if (h_read_exact(fds[i], got, 7, STOP_MS) == 7 &&
		    memcmp(got, "QUEUED\n", 7) == 0)
			served++;
	}
	REQUIRE(&t, served == QUEUED, "SIGTERM with %d connections in the "
	    "accept queue: %d served, %d not", QUEUED, served,
	    QUEUED - served);
	for (i = 0; i < QUEUED; i++) {
		close(fds[i]);
		fds[i] = -1;
	}
	st = h_wait_exit(&p, STOP_MS);
	REQUIRE(&t, st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	    "echod ended with wait status %#x", st);
out:
	if (stopped)
		signal_all(kids, WORKERS, SIGCONT);
	for (i = 0; i < QUEUED; i++)
		if (fds[i] != -1)
			close(fds[i]);
	cl_conclude(&t, &p);
}
END_TEST

Suite *
worker_suite(void)
{
	Suite *s = suite_create("worker");
	TCase *tc;

	tc = h_case(s, "decisions", 0, NULL);
	tcase_add_loop_test(tc, drain_stop_accepting_table, 0,
	    H_NELEM(drain_cases));
	tcase_add_loop_test(tc, olist_table, 0, H_NELEM(olist_cases));
	h_case(s, "echod", 90, H_TESTS(sigterm_serves_the_whole_queue));
	return s;
}
