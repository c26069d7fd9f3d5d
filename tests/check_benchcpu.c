/*
 * check_benchcpu: the arithmetic behind echobench's "server CPU per
 * operation" (tests/bench/proctree.h): reading /proc/PID/stat lines,
 * finding a server's process tree, summing it so that a child reaped
 * between two samples is counted once, a process's time from its ticks
 * or its main thread's exact run time, and microseconds per operation.
 * Pure: tables, no /proc.
 */
#include <check.h>
#include <stdbool.h>
#include <string.h>

#include "bench/proctree.h"
#include "harness.h"
#include "suites.h"

/* ---- /proc/PID/stat lines ---- */

struct stat_case {
	const char *line;
	int rc;
	char state;
	pid_t ppid;
	unsigned long long utime, stime, cutime, cstime;
};

static const struct stat_case stat_cases[] = {
    /* a worker, as the kernel prints it (fields 1 to 22 and more) */
    {"8559 (echod) S 8557 8557 8100 34816 8557 4194624 1250 0 0 0 "
     "42 17 0 0 20 0 1 0 123456 12345678 1800 18446744073709551615",
        0, 'S', 8557, 42, 17, 0, 0},
    /* a master with reaped workers: cutime and cstime */
    {"8557 (echod) S 1 8557 8100 34816 8557 4194560 900 2400 0 0 "
     "3 5 310 120 20 0 1 0 123400 12345678 1700",
        0, 'S', 1, 3, 5, 310, 120},
    /* a name with spaces and parentheses: fields start after the last ) */
    {"77 (a) b (c) d)) R 76 77 76 0 -1 4194304 1 0 0 0 7 8 9 10 20 0", 0, 'R',
        76, 7, 8, 9, 10},
    /* a zombie still has its times until it is reaped */
    {"90 (upcase) Z 89 89 1 0 -1 4227084 80 0 0 0 1 2 0 0 20 0 1 0 5 0 0", 0,
        'Z', 89, 1, 2, 0, 0},
    /* not a stat line */
    {"", -1, 0, 0, 0, 0, 0, 0},
    {"no parenthesis here", -1, 0, 0, 0, 0, 0, 0},
    /* cut before cstime */
    {"8559 (echod) S 8557 8557 8100 34816 8557 4194624 1250 0 0 0 42 17 0", -1,
        0, 0, 0, 0, 0, 0},
    /* cutime is a signed field: a negative one is not a time */
    {"5 (x) S 1 5 5 0 -1 0 0 0 0 0 1 1 -4 0 20", -1, 0, 0, 0, 0, 0, 0},
};

START_TEST(stat_lines)
{
	const struct stat_case *c = &stat_cases[_i];
	struct pt_stat st;

	ck_assert_int_eq(pt_stat_parse(c->line, &st), c->rc);
	if (c->rc != 0)
		return;
	ck_assert_int_eq(st.state, c->state);
	ck_assert_int_eq(st.ppid, c->ppid);
	ck_assert_uint_eq(st.utime, c->utime);
	ck_assert_uint_eq(st.stime, c->stime);
	ck_assert_uint_eq(st.cutime, c->cutime);
	ck_assert_uint_eq(st.cstime, c->cstime);
	ck_assert_uint_eq(
	    pt_stat_ticks(&st), c->utime + c->stime + c->cutime + c->cstime);
}
END_TEST

/* ---- the tree ---- */

#define MAXP 8

struct tree_case {
	const char *what;
	pid_t pid[MAXP], ppid[MAXP];
	long n;
	pid_t root;
	long count;
	bool member[MAXP];
};

static const struct tree_case tree_cases[] = {
    {"root not there", {1, 10, 11}, {0, 1, 10}, 3, 99, 0, {0}},
    {"root alone, its parent and sibling not in", {1, 10, 11, 12}, {0, 1, 1, 1},
        4, 11, 1, {false, false, true, false}},
    {"master, two workers, a child of each, unrelated processes out",
        {1, 100, 101, 102, 200, 201, 300}, {0, 1, 100, 100, 101, 102, 1}, 7,
        100, 5, {false, true, true, true, true, true, false}},
    /* /proc lists by pid: a reused low pid may be a grandchild listed
     * before its parent, which takes a second pass */
    {"grandchildren listed before their parents", {5, 6, 50, 60, 500},
        {60, 50, 500, 500, 1}, 5, 500, 5, {true, true, true, true, true}},
    {"a deep chain in reverse order", {1, 2, 3, 4, 5, 6}, {2, 3, 4, 5, 6, 0}, 6,
        6, 6, {true, true, true, true, true, true}},
    /* pid 0's own entry (the idle task parents itself in some views):
     * no endless growth */
    {"a process that is its own parent", {0, 1, 2}, {0, 0, 1}, 3, 1, 2,
        {false, true, true}},
};

START_TEST(tree_members)
{
	const struct tree_case *c = &tree_cases[_i];
	bool member[MAXP];
	long i;

	memset(member, 0xff, sizeof(member));
	ck_assert_msg(
	    pt_tree(c->pid, c->ppid, c->n, c->root, member) == c->count,
	    "%s: count", c->what);
	for (i = 0; i < c->n; i++)
		ck_assert_msg(member[i] == c->member[i], "%s: pid %d", c->what,
		    (int)c->pid[i]);
}
END_TEST

/* ---- the tree's sum across a reap ---- */

static unsigned long long
tree_sum(const struct pt_stat *st, long n)
{
	unsigned long long t = 0;
	long i;

	for (i = 0; i < n; i++)
		t += pt_stat_ticks(&st[i]);
	return t;
}

/*
 * A master (10 ticks), a worker (40) and a per-connection child (25) of
 * that worker.  Then: the child spent 5 more and exited, the worker
 * reaped it (its cutime + cstime: 30) and spent 7 more; a second worker,
 * started after the first sample, ran 3 and was reaped by the master; the
 * master spent 1.  The tree spent 5 + 7 + 3 + 1 = 16 ticks, whatever left
 * it in between.
 */
START_TEST(sum_across_reaps)
{
	const struct pt_stat before[] = {
	    {'S', 1, 6, 4, 0, 0},     /* master */
	    {'S', 100, 30, 10, 0, 0}, /* worker */
	    {'S', 101, 20, 5, 0, 0},  /* its child */
	};
	const struct pt_stat after[] = {
	    {'S', 1, 7, 4, 2, 1},      /* master: reaped the short worker */
	    {'S', 100, 35, 12, 26, 4}, /* worker: reaped its child */
	};

	ck_assert_uint_eq(tree_sum(before, 3), 75);
	ck_assert_uint_eq(tree_sum(after, 2), 75 + 16);
	/* 16 ticks at 100 Hz over 8 operations: 20 ms each */
	ck_assert_double_eq_tol(pt_us_per(tree_sum(before, 3) * 10000000ULL,
	                            tree_sum(after, 2) * 10000000ULL, 8),
	    20000, 1e-6);
}
END_TEST

/* ---- one process's time in ns: ticks, or its main thread's ns ---- */

struct ns_case {
	const char *what;
	struct pt_stat st;
	long hz;
	long long sched_ns;
	unsigned long long ns;
	bool ticked;
};

static const struct ns_case ns_cases[] = {
    /* a child per connection: 6 ms of user and 7 of system time round
     * down to 0 ticks each; its schedstat has the 13 ms */
    {"a short child: schedstat", {'S', 100, 0, 0, 0, 0}, 100, 13000000,
        13000000, false},
    {"a busy single thread: schedstat, not the rounded ticks",
        {'R', 100, 150, 49, 0, 0}, 100, 1995000000, 1995000000, false},
    /* threads: schedstat has the main thread only, the ticks the whole
     * group (exited threads too) */
    {"a threaded worker: the ticks", {'S', 1, 300, 200, 0, 0}, 100, 20000000,
        5000000000ULL, true},
    {"no schedstat", {'S', 1, 3, 4, 0, 0}, 100, -1, 70000000, true},
    {"no schedstat, nothing spent", {'S', 1, 0, 0, 0, 0}, 100, -1, 0, false},
    /* reaped children are in ticks whatever the process's own time is */
    {"a master with reaped workers", {'S', 1, 0, 1, 310, 120}, 100, 12000000,
        12000000 + 4300000000ULL, true},
    {"another tick rate", {'S', 1, 10, 10, 0, 0}, 250, 50000000, 80000000,
        true},
};

START_TEST(process_ns)
{
	const struct ns_case *c = &ns_cases[_i];
	bool ticked = !c->ticked;

	ck_assert_msg(pt_proc_ns(&c->st, c->hz, c->sched_ns, &ticked) == c->ns,
	    "%s: %llu ns", c->what,
	    pt_proc_ns(&c->st, c->hz, c->sched_ns, &ticked));
	ck_assert_msg(ticked == c->ticked, "%s: ticked", c->what);
}
END_TEST

/*
 * 256 children that each spend 4 ms in the window, from 1 ms each at its
 * start: the rounded ticks see nothing, schedstat sees 1.024 s.
 */
START_TEST(many_short_children)
{
	const struct pt_stat zero = {'S', 100, 0, 0, 0, 0};
	unsigned long long t0 = 0, t1 = 0;
	bool ticked;
	int i;

	for (i = 0; i < 256; i++) {
		t0 += pt_proc_ns(&zero, 100, 1000000, &ticked);
		t1 += pt_proc_ns(&zero, 100, 5000000, &ticked);
	}
	ck_assert_uint_eq(t1 - t0, 1024000000ULL);
	/* over 102400 round trips: 10 us each */
	ck_assert_double_eq_tol(pt_us_per(t0, t1, 102400), 10, 1e-9);
}
END_TEST

/* ---- to microseconds per operation ---- */

struct per_case {
	unsigned long long before, after;
	double units, us;
};

static const struct per_case per_cases[] = {
    {1000000000, 2500000000ULL, 1000, 1500}, /* 1.5 s over 1000 conns */
    {0, 3000000000ULL, 600000, 5},           /* 3 s over 600k round trips */
    {0, 1500000000ULL, 3000, 500},           /* 1.5 s over 3000 MB */
    {7, 7, 10, 0},                           /* nothing spent */
    {0, 100, 0, -1},                         /* no operations: nothing to say */
    {0, 100, -3, -1}, {200, 100, 10, -1},    /* went backwards: lost a child */
};

START_TEST(per_operation)
{
	const struct per_case *c = &per_cases[_i];

	ck_assert_double_eq_tol(
	    pt_us_per(c->before, c->after, c->units), c->us, 1e-9);
}
END_TEST

Suite *
benchcpu_suite(void)
{
	Suite *s = suite_create("benchcpu");
	TCase *tc = tcase_create("proctree");

	tcase_add_loop_test(tc, stat_lines, 0, H_NELEM(stat_cases));
	tcase_add_loop_test(tc, tree_members, 0, H_NELEM(tree_cases));
	tcase_add_test(tc, sum_across_reaps);
	tcase_add_loop_test(tc, process_ns, 0, H_NELEM(ns_cases));
	tcase_add_test(tc, many_short_children);
	tcase_add_loop_test(tc, per_operation, 0, H_NELEM(per_cases));
	suite_add_tcase(s, tc);
	return s;
}
