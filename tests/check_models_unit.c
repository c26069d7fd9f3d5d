/*
 * check_models_unit: the models' pure decisions (capacity, may it accept,
 * which thread, a connection's deadlines), each model's sandbox needs,
 * the model option, and serve_conn over a socketpair: byte-exact, with a
 * half-close, as the events worker's conn.c.
 */
#include <check.h>
#include <fcntl.h>
#include <pthread.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clients.h"
#include "conf.h"
#include "harness.h"
#include "model.h"
#include "sandbox.h"
#include "scoreboard.h"
#include "serve.h"
#include "suites.h"

/* ---- model_capacity ---- */

static const struct {
	int model, max_conns, threads;
	unsigned want;
} cap_cases[] = {
	{ CONF_MODEL_PREFORK, 8192, 16, 1 },   /* one at a time */
	{ CONF_MODEL_PROCESS, 8192, 16, 8192 }, /* live children */
	{ CONF_MODEL_PROCESS, 2, 16, 2 },
	{ CONF_MODEL_THREAD, 100, 16, 100 },    /* live threads */
	{ CONF_MODEL_THREAD_POOL, 8192, 16, 16 }, /* threads, not max_conn */
	{ CONF_MODEL_THREAD_POOL, 1, 3, 3 },
	{ CONF_MODEL_THREAD_POOL, 1, 0, 1 },    /* never none */
	{ CONF_MODEL_EVENTS, 500, 16, 500 },
	{ CONF_MODEL_THREAD, 0, 16, 1 },
};

START_TEST(capacity_table)
{
	ck_assert_uint_eq(model_capacity(cap_cases[_i].model,
	    cap_cases[_i].max_conns, cap_cases[_i].threads),
	    cap_cases[_i].want);
}
END_TEST

/* ---- model_can_accept ---- */

static const struct {
	unsigned busy, cap;
	int paused, want;
} accept_cases[] = {
	{ 0, 1, 0, 1 },
	{ 1, 1, 0, 0 }, /* prefork serving: the queue holds the rest */
	{ 1, 2, 0, 1 },
	{ 2, 2, 0, 0 }, /* at max_connections / threads */
	{ 3, 2, 0, 0 },
	{ 0, 2, 1, 0 }, /* out of descriptors: paused */
};

START_TEST(can_accept_table)
{
	ck_assert_int_eq(model_can_accept(accept_cases[_i].busy,
	    accept_cases[_i].cap, accept_cases[_i].paused),
	    accept_cases[_i].want);
}
END_TEST

/* ---- model_pick_thread ---- */

static const struct {
	unsigned char busy[4];
	unsigned n;
	int want;
} pick_cases[] = {
	{ { 0, 0, 0, 0 }, 4, 0 },
	{ { 1, 0, 0, 0 }, 4, 1 },
	{ { 1, 1, 0, 1 }, 4, 2 },
	{ { 1, 1, 1, 1 }, 4, -1 }, /* all busy: the acceptor waits */
	{ { 1, 1, 1, 0 }, 3, -1 }, /* only n count */
	{ { 0 }, 0, -1 },
};

START_TEST(pick_thread_table)
{
	ck_assert_int_eq(model_pick_thread(pick_cases[_i].busy,
	    pick_cases[_i].n), pick_cases[_i].want);
}
END_TEST

/* ---- a connection's deadlines ---- */

static const struct {
	uint64_t now, last, start, idle, life, drain, beat;
	const char *why;
	int timeout;
} dl_cases[] = {
	{ 1000, 1000, 1000, 0, 0, 0, 1000, NULL, 1000 }, /* just a beat */
	{ 1000, 900, 500, 300, 0, 0, 1000, NULL, 200 },  /* idle soon */
	{ 1200, 900, 500, 300, 0, 0, 1000, "idle timeout", 1 },
	{ 1000, 1000, 500, 0, 600, 0, 1000, NULL, 100 }, /* lifetime */
	{ 1100, 1100, 500, 0, 600, 0, 1000, "max_connection_time", 1 },
	{ 1000, 1000, 500, 0, 0, 1500, 1000, NULL, 500 }, /* draining */
	{ 1500, 1500, 500, 0, 0, 1500, 1000, "shutdown", 1 },
	{ 1000, 1000, 1000, 300000, 0, 0, 250, NULL, 250 }, /* short beat */
};

START_TEST(deadline_table)
{
	const char *why = serve_conn_expired(dl_cases[_i].now,
	    dl_cases[_i].last, dl_cases[_i].start, dl_cases[_i].idle,
	    dl_cases[_i].life, dl_cases[_i].drain);

	if (dl_cases[_i].why == NULL)
		ck_assert_ptr_null(why);
	else
		ck_assert_str_eq(why, dl_cases[_i].why);
	ck_assert_int_eq(serve_conn_timeout(dl_cases[_i].now,
	    dl_cases[_i].last, dl_cases[_i].start, dl_cases[_i].idle,
	    dl_cases[_i].life, dl_cases[_i].drain, dl_cases[_i].beat),
	    dl_cases[_i].timeout);
}
END_TEST

/* ---- what each model adds to the sandbox ---- */

static int
allows(unsigned needs, int call)
{
	int calls[128];
	size_t i, n = sandbox_syscalls(needs, calls, 128);

	for (i = 0; i < n; i++)
		if (calls[i] == call)
			return 1;
	return 0;
}

START_TEST(sandbox_needs)
{
	const struct model_ops *pre = model_ops_for(CONF_MODEL_PREFORK);
	const struct model_ops *proc = model_ops_for(CONF_MODEL_PROCESS);
	const struct model_ops *thr = model_ops_for(CONF_MODEL_THREAD);
	const struct model_ops *pool = model_ops_for(CONF_MODEL_THREAD_POOL);

	ck_assert_ptr_null(model_ops_for(CONF_MODEL_EVENTS));
	/* events: nothing new. */
	ck_assert(!allows(0, SCMP_SYS(poll)));
	ck_assert(!allows(0, SCMP_SYS(clone)));
	ck_assert(!allows(0, SCMP_SYS(wait4)));
	ck_assert(!allows(0, SCMP_SYS(futex)));
	/* prefork: poll, no threads, no children. */
	ck_assert(allows(pre->needs, SCMP_SYS(poll)));
	ck_assert(!allows(pre->needs, SCMP_SYS(clone)));
	ck_assert(!allows(pre->needs, SCMP_SYS(futex)));
	/* process: fork and wait, no threads; futex for the lock the
	 * worker and its children share on the per-client table. */
	ck_assert(allows(proc->needs, SCMP_SYS(clone)));
	ck_assert(allows(proc->needs, SCMP_SYS(wait4)));
	ck_assert(allows(proc->needs, SCMP_SYS(kill)));
	ck_assert(allows(proc->needs, SCMP_SYS(futex)));
	ck_assert(!allows(proc->needs, SCMP_SYS(clone3)));
	/* threads: clone and futex, no waiting for children. */
	ck_assert(allows(thr->needs, SCMP_SYS(clone3)));
	ck_assert(allows(thr->needs, SCMP_SYS(futex)));
	ck_assert(!allows(thr->needs, SCMP_SYS(wait4)));
	ck_assert(!allows(thr->needs, SCMP_SYS(kill)));
	ck_assert_uint_eq(pool->needs, thr->needs);
	ck_assert_int_eq(proc->with_chld, 1);
	ck_assert_int_eq(thr->with_chld, 0);
}
END_TEST

/* ---- the option ---- */

START_TEST(model_names)
{
	struct conf c;
	char path[] = "/tmp/echod-models-XXXXXX", err[512];
	const char *const names[] = { "events", "prefork",
		"process-per-connection", "thread-per-connection",
		"thread-pool" };
	int m, fd;

	for (m = 0; m < 5; m++)
		ck_assert_str_eq(conf_model_name(m), names[m]);
	ck_assert_str_eq(conf_model_name(5), "?");
	conf_defaults(&c);
	ck_assert_int_eq(c.model, CONF_MODEL_EVENTS);
	ck_assert_int_eq(c.threads, 16);
	ck_assert((fd = mkstemp(path)) != -1);
	ck_assert(cl_write_file(path, "model = thread-pool\nthreads = 3\n") ==
	    0);
	ck_assert_msg(conf_load(&c, path, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(c.model, CONF_MODEL_THREAD_POOL);
	ck_assert_int_eq(c.threads, 3);
	ck_assert(cl_write_file(path, "model = fibers\n") == 0);
	ck_assert_int_eq(conf_load(&c, path, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "model: 'fibers' is not a server model; "
	    "allowed: events, prefork, process-per-connection, "
	    "thread-per-connection, thread-pool") != NULL, "%s", err);
	ck_assert(cl_write_file(path, "threads = 0\n") == 0);
	ck_assert_int_eq(conf_load(&c, path, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "allowed: 1..1024") != NULL, "%s", err);
	/* The failed loads kept the good one. */
	ck_assert_int_eq(c.model, CONF_MODEL_THREAD_POOL);
	close(fd);
	unlink(path);
	conf_free(&c);
}
END_TEST

START_TEST(summary_says_model)
{
	struct conf c;
	char buf[1024];

	conf_defaults(&c);
	conf_summary(&c, buf, sizeof(buf));
	ck_assert_ptr_null(strstr(buf, "model"));
	c.model = CONF_MODEL_PREFORK;
	conf_summary(&c, buf, sizeof(buf));
	ck_assert_msg(strstr(buf, ", model prefork (one connection per "
	    "worker: max_connections 8192 does not apply, capacity is "
	    "workers)") != NULL, "%s", buf);
	c.model = CONF_MODEL_THREAD_POOL;
	c.threads = 4;
	conf_summary(&c, buf, sizeof(buf));
	ck_assert_msg(strstr(buf, ", model thread-pool with 4 threads per "
	    "worker") != NULL, "%s", buf);
	conf_free(&c);
}
END_TEST

/* ---- serve_conn over a socketpair ---- */

static unsigned char sent[300000], got[300000];

struct served {
	struct serve *s;
	int fd;
	int proxied;
};

static void *
serve_thread(void *arg)
{
	struct served *sv = arg;
	struct serve_client cl;
	struct bufpool bp = { .nfree = 0 };
	unsigned char *buf = malloc(CONN_BUFSIZE);

	memset(&cl, 0, sizeof(cl));
	cl.fd = sv->fd;
	cl.proxied = sv->proxied;
	cl.ss.ss_family = AF_UNSPEC;
	serve_conn(sv->s, &cl, buf, &bp);
	bufpool_drain(&bp);
	free(buf);
	return NULL;
}

/* The client's writing half: everything, then the half-close. */
static void *
send_thread(void *arg)
{
	int fd = *(int *)arg;

	if (h_write_all(fd, sent, sizeof(sent)) == 0)
		shutdown(fd, SHUT_WR);
	return NULL;
}

/*
 * More than the socket buffers hold, so the service must stop reading
 * while its reply waits (backpressure), every byte value, a half-close:
 * all of it back uppercased, then EOF, and the bytes on the scoreboard.
 */
START_TEST(serve_conn_exact)
{
	struct worker_args a;
	struct scoreboard sb;
	struct serve s;
	struct served sv;
	struct conf c;
	pthread_t th, tw;
	int sp[2];
	size_t i;

	conf_defaults(&c);
	ck_assert_int_eq(scoreboard_create(&sb, 1), 0);
	memset(&a, 0, sizeof(a));
	a.conf = &c;
	a.sb = &sb;
	a.master_pid = getppid();
	ck_assert_int_eq(serve_init(&s, &a, 0), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	ck_assert_int_eq(fcntl(sp[0], F_SETFL, O_NONBLOCK), 0);
	for (i = 0; i < sizeof(sent); i++)
		sent[i] = (unsigned char)(i ^ (i >> 8));
	sv.s = &s;
	sv.fd = sp[0];
	sv.proxied = 0;
	ck_assert_int_eq(pthread_create(&th, NULL, serve_thread, &sv), 0);
	ck_assert_int_eq(pthread_create(&tw, NULL, send_thread, &sp[1]), 0);
	ck_assert_uint_eq(h_read_exact(sp[1], got, sizeof(got), 20000),
	    sizeof(got));
	ck_assert(h_expect_eof(sp[1], 5000));
	pthread_join(tw, NULL);
	pthread_join(th, NULL);
	cl_upper(sent, sizeof(sent));
	ck_assert(memcmp(sent, got, sizeof(got)) == 0);
	ck_assert_uint_eq(sb_load(&sb.slots[0].bytes_in), sizeof(sent));
	ck_assert_uint_eq(sb_load(&sb.slots[0].bytes_out), sizeof(sent));
	close(sp[1]);
	scoreboard_destroy(&sb);
	conf_free(&c);
}
END_TEST

Suite *
models_unit_suite(void)
{
	Suite *s = suite_create("models_unit");
	TCase *tc;

	tc = h_case(s, "decisions", 0, H_TESTS(sandbox_needs, model_names,
	    summary_says_model, serve_conn_exact));
	tcase_add_loop_test(tc, capacity_table, 0, H_NELEM(cap_cases));
	tcase_add_loop_test(tc, can_accept_table, 0, H_NELEM(accept_cases));
	tcase_add_loop_test(tc, pick_thread_table, 0, H_NELEM(pick_cases));
	tcase_add_loop_test(tc, deadline_table, 0, H_NELEM(dl_cases));
	return s;
}
