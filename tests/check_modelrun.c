/*
 * check_modelrun: the integration scenarios under every server model.
 *
 * Issue 11 makes each model of the lecture a mode of echod (`model =
 * events | prefork | process-per-connection | thread-per-connection |
 * thread-pool`), each keeping the same service, supervision and limits.
 * This suite runs the scenarios that say so as Check loop tests over the
 * five models (h_models, harness.h), one test case per scenario.  The
 * scenarios are not copies: each is the code its own suite runs under
 * the default model, taking the model as a parameter (scenarios.h); the
 * one scenario no suite had (a crash inside a connection) is here.  It
 * is the one suite of end-to-end tests by model (check_models.c, which
 * had copies of several of these for the blocking models, is gone).
 *
 * Capacity differs by model (COMMON decisions): prefork holds one
 * connection a worker (h_model_workers gives it enough workers), thread-
 * pool holds `threads` a worker (h_conf_model writes max_connections'
 * value there), the others max_connections.  What a crash takes down
 * differs too, and is the lecture's point: a per-connection child takes
 * its one connection; anything else takes its worker's connections, and
 * the master replaces the worker; under the thread models the crash is
 * one thread's.
 *
 * The output says which model each iteration ran ("modelrun: SCENARIO
 * under MODEL"); Check's own line names the iteration (0 events,
 * 1 prefork, 2 process-per-connection, 3 thread-per-connection,
 * 4 thread-pool).
 *
 * Every model runs: a model echod refuses fails its scenarios.
 *
 * The PROXY protocol's scenarios (issue 12: proxy_*) live in
 * check_proxylive.c, which has no copy of them: every model reads a
 * header, trusts, times out, limits and logs the same.
 */
#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "clients.h"
#include "harness.h"
#include "procfs.h"
#include "scenarios.h"
#include "suites.h"

#define START_MS 10000
#define REPLY_MS 3000

/*
 * Say which scenario runs under which model, and return the model.
 * also: a second model the scenario needs (a reload's target), or NULL.
 */
static const char *
say(const char *scenario, int i, const char *also)
{
	const char *m = h_models[i];

	printf("modelrun: %s under %s%s%s\n", scenario, m, also ? " to " : "",
	    also ? also : "");
	fflush(stdout);
	return m;
}

/* ---- the pure decisions, as tables ---- */

/* Does a crash while serving a connection take its whole worker? */
static int
crash_takes_worker(const char *model)
{
	return strcmp(model, "process-per-connection") != 0;
}

/* Is the crash that of one thread of a worker (the thread models)? */
static int
crash_in_thread(const char *model)
{
	return strcmp(model, "thread-per-connection") == 0 ||
	    strcmp(model, "thread-pool") == 0;
}

/* ---- the model is in force: what /proc shows of it ---- */

/* What a worker of each model looks like from outside. */
struct shape {
	int child_per_conn;  /* a connection is served by a child of it */
	int thread_per_conn; /* it grows a thread per connection */
	int min_threads;     /* threads it has at start-up, with threads 3 */
	int one_at_a_time;   /* it serves one connection, whatever
				max_connections says */
};

static struct shape
model_shape(const char *model)
{
	struct shape sh = { 0, 0, 1, 0 };

	if (strcmp(model, "process-per-connection") == 0)
		sh.child_per_conn = 1;
	else if (strcmp(model, "thread-per-connection") == 0)
		sh.thread_per_conn = 1;
	else if (strcmp(model, "thread-pool") == 0)
		sh.min_threads = 3;
	else if (strcmp(model, "prefork") == 0)
		sh.one_at_a_time = 1;
	return sh;
}

START_TEST(model_decisions)
{
	static const struct {
		const char *model;
		int workers_2x3, multiplexes, takes_worker;
		const char *tail; /* what h_conf_model appends, threads 4 */
	} tab[H_NMODELS] = {
		{ "events", 2, 1, 1, "" },
		{ "prefork", 6, 0, 1, "model = prefork\n" },
		{ "process-per-connection", 2, 0, 0,
		    "model = process-per-connection\n" },
		{ "thread-per-connection", 2, 1, 1,
		    "model = thread-per-connection\n" },
		{ "thread-pool", 2, 1, 1, "model = thread-pool\nthreads = 4\n" },
	};
	char buf[256], want[256], tiny[8];
	int i;

	for (i = 0; i < H_NMODELS; i++) {
		ck_assert_str_eq(h_models[i], tab[i].model);
		ck_assert_int_eq(h_model_workers(tab[i].model, 2, 3),
		    tab[i].workers_2x3);
		ck_assert_int_eq(h_model_workers(tab[i].model, 2, 1), 2);
		ck_assert_int_eq(h_model_multiplexes(tab[i].model),
		    tab[i].multiplexes);
		ck_assert_int_eq(crash_takes_worker(tab[i].model),
		    tab[i].takes_worker);
		ck_assert_int_eq(crash_in_thread(tab[i].model), i >= 3);
		ck_assert_int_eq(model_shape(tab[i].model).child_per_conn,
		    !tab[i].takes_worker);
		ck_assert_int_eq(model_shape(tab[i].model).thread_per_conn,
		    i == 3);
		ck_assert_int_eq(model_shape(tab[i].model).min_threads,
		    i == 4 ? 3 : 1);
		ck_assert_int_eq(model_shape(tab[i].model).one_at_a_time,
		    i == 1);
		snprintf(want, sizeof(want), "workers = 2\n%s", tab[i].tail);
		ck_assert_ptr_eq(h_conf_model(buf, sizeof(buf), "workers = 2\n",
		    tab[i].model, 4), buf);
		ck_assert_str_eq(buf, want);
		ck_assert_ptr_null(h_conf_model(tiny, sizeof(tiny),
		    "workers = 2\n", tab[i].model, 4));
	}
	/* NULL is events; thread-pool without a count keeps the default. */
	ck_assert_int_eq(h_model_workers(NULL, 2, 3), 2);
	ck_assert_int_eq(h_model_multiplexes(NULL), 1);
	ck_assert_str_eq(h_conf_model(buf, sizeof(buf), "x\n", NULL, 4),
	    "x\n");
	ck_assert_str_eq(h_conf_model(buf, sizeof(buf), "x\n", "thread-pool",
	    0), "x\nmodel = thread-pool\n");
}
END_TEST

/* ---- the service ---- */

START_TEST(interactive)
{
	service_interactive(say("interactive echo", _i, NULL));
}
END_TEST

START_TEST(every_byte)
{
	service_every_byte(say("every byte value", _i, NULL));
}
END_TEST

START_TEST(stream_64mib)
{
	service_large_stream(say("64 MiB byte-exact with half-close", _i, NULL));
}
END_TEST

START_TEST(capacity)
{
	service_capacity(say("capacity and queueing", _i, NULL));
}
END_TEST

START_TEST(non_reader)
{
	service_non_reader(say("a client that never reads", _i, NULL));
}
END_TEST

/* ---- limits ---- */

START_TEST(idle_timeout)
{
	service_idle_timeout(say("idle timeout", _i, NULL));
}
END_TEST

START_TEST(lifetime)
{
	attack_lifetime(say("max_connection_time", _i, NULL));
}
END_TEST

START_TEST(exhaustion)
{
	attack_exhaustion(say("descriptor exhaustion", _i, NULL));
}
END_TEST

START_TEST(per_ip)
{
	attack_per_ip_release(say("max_connections_per_ip, refused then let in", _i,
	    NULL));
}
END_TEST

/* ---- supervision ---- */

START_TEST(killed_under_load)
{
	supervision_killed_under_load(say("a worker killed under load", _i, NULL));
}
END_TEST

START_TEST(stop_drains)
{
	supervision_stop_drains(say("graceful stop, a connection open", _i, NULL));
}
END_TEST

START_TEST(stop_deadline)
{
	supervision_stop_deadline(say("a client outstays shutdown_timeout", _i, NULL));
}
END_TEST

START_TEST(heartbeat_full)
{
	supervision_heartbeat_full(say("a full worker's heartbeat", _i, NULL));
}
END_TEST

/* From each model to the next (the last to the first), C open across. */
START_TEST(reload_to_next)
{
	const char *to = h_models[(_i + 1) % H_NMODELS];
	live_reload_model(say("reload, a connection open,", _i, to), to);
}
END_TEST

/* "127.0.0.1:PORT" of our end of fd, as the daemon names its peer. */
static const char *
local_name(int fd, char *buf, size_t len)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);

	if (getsockname(fd, (struct sockaddr *)&sin, &sl) == -1 ||
	    inet_ntop(AF_INET, &sin.sin_addr, buf, (socklen_t)len) == NULL)
		return "?";
	snprintf(buf + strlen(buf), len - strlen(buf), ":%u",
	    (unsigned)ntohs(sin.sin_port));
	return buf;
}

/* Wait until pid has n threads; the last count read. */
static long
wait_threads(pid_t pid, long n, int timeout_ms)
{
	long long deadline = h_now_ms() + timeout_ms;
	long k;

	do {
		if ((k = pf_status_num(pid, "Threads")) == n)
			return k;
		h_poll_pause();
	} while (h_now_ms() < deadline);
	return k;
}

/*
 * One worker, one connection: who serves it, and with how many threads,
 * is the model's own: a child titled "echod: worker 0 conn
 * 127.0.0.1:PORT" (process-per-connection), one more thread while it is
 * open (thread-per-connection), a pool of `threads` from the start
 * (thread-pool), or the worker alone, one thread (events, prefork).
 * A second client is served at once, but for prefork's one worker: it
 * waits until the first has gone, max_connections = 4 notwithstanding.
 */
START_TEST(model_in_force)
{
	struct echod_proc p;
	struct tres t = { 0, "" };
	struct shape sh;
	char base[256], conf[320], title[128] = "", want[128], peer[64];
	long t0, t1;
	pid_t w, holder;
	int a = -1, b = -1, r;
	const char *m = say("the model is in force", _i, NULL);

	sh = model_shape(m);
	cl_proc_init(&p);
	snprintf(base, sizeof(base), "listen = { \"127.0.0.1:0\" }\n"
	    "workers = 1\nmax_connections = 4\nlog_level = info\n");
	REQUIRE(&t, h_conf_model(conf, sizeof(conf), base, m, 3) != NULL,
	    "configuration too long");
	REQUIRE(&t, h_start(&p, conf, NULL, START_MS) == 0, "start failed");
	REQUIRE(&t, (w = h_worker_pid(p.pid, 0)) > 0, "no worker 0");
	t0 = pf_status_num(w, "Threads");
	REQUIRE(&t, t0 >= sh.min_threads && (sh.min_threads > 1 || t0 == 1),
	    "worker 0 has %ld thread(s) at start-up, want %s%d", t0,
	    sh.min_threads > 1 ? "at least " : "", sh.min_threads);
	REQUIRE(&t, (a = h_connect(p.port, 0)) != -1, "connect: %s",
	    strerror(errno));
	REQUIRE(&t, cl_echo(a, "in force", REPLY_MS), "not echoed");
	holder = cl_conn_holder(p.pid, p.port, a);
	if (sh.child_per_conn) {
		snprintf(want, sizeof(want), "echod: worker 0 conn %s",
		    local_name(a, peer, sizeof(peer)));
		REQUIRE(&t, holder > 0 && holder != w &&
		    pf_read_pid(holder, "cmdline", title, sizeof(title)) > 0 &&
		    strcmp(title, want) == 0, "the connection is held by pid "
		    "%d ('%s'), not a child of worker %d titled '%s'",
		    (int)holder, holder > 0 ? title : "", (int)w, want);
	} else
		REQUIRE(&t, holder == w, "the connection is held by pid %d, "
		    "not by worker 0 (%d)", (int)holder, (int)w);
	t1 = wait_threads(w, t0 + sh.thread_per_conn, 2000);
	REQUIRE(&t, t1 == t0 + sh.thread_per_conn, "worker 0 has %ld "
	    "thread(s) with a connection open, %ld without", t1, t0);
	REQUIRE(&t, (b = h_connect(p.port, 0)) != -1, "connect: %s",
	    strerror(errno));
	r = cl_reply(b, "second", sh.one_at_a_time ? 300 : REPLY_MS);
	REQUIRE(&t, sh.one_at_a_time ? r == -1 : r == 1, "a second client "
	    "was %s while the first was open", r == 1 ? "answered" :
	    "not answered");
	cl_close_fds(&a, 1);
	if (sh.one_at_a_time) {
		char got[6];

		REQUIRE(&t, h_read_exact(b, got, 6, REPLY_MS) == 6 &&
		    memcmp(got, "SECOND", 6) == 0, "the second client not "
		    "served once the first had gone");
	}
	cl_close_fds(&b, 1);
	t1 = wait_threads(w, t0, 2000);
	REQUIRE(&t, t1 == t0, "worker 0 has %ld thread(s) after the "
	    "connection closed, %ld before", t1, t0);
	REQUIRE_STOPPED(&t, &p, 5000);
out:
	cl_close_fds(&a, 1);
	cl_close_fds(&b, 1);
	cl_conclude(&t, &p);
}
END_TEST

/* ---- a crash inside a connection ---- */

/*
 * The crash: SIGVTALRM, deadly by default and caught by nobody.  It ends
 * the process as a crash does, without a core file, and without the
 * SIGSEGV handler of an ASan build (make check-asan), which would report
 * and exit 1 instead; unlike SIGKILL (which a worker sends its own
 * children at a stop, and does not report) it is what a process-per-
 * connection worker reports of its child.  Under the thread models it
 * is sent to one thread, not the main one (tgkill): one thread that
 * crashes takes its whole worker.
 */
#define CRASH_SIG SIGVTALRM

#define CR_WORKERS 2
#define CR_PER 2 /* connections a worker holds at once */
#define CR_CONNS (CR_WORKERS * CR_PER)

/* crash's state, shared by its steps. */
struct cr {
	struct echod_proc p;
	const char *model;
	int nslots, fd[CR_CONNS], slot[CR_CONNS];
	pid_t owner[CR_CONNS], victim, wpid;
};

/* Every connection open and echoed; its worker (and slot) noted. */
static int
cr_fill(struct tres *t, struct cr *c)
{
	char base[256], conf[320], msg[32];
	int i;

	c->nslots = h_model_workers(c->model, CR_WORKERS, CR_PER);
	snprintf(base, sizeof(base), "listen = { \"127.0.0.1:0\" }\n"
	    "workers = %d\nmax_connections = %d\nshutdown_timeout = 2\n"
	    "log_level = info\n", c->nslots, CR_PER);
	REQUIRE(t, h_conf_model(conf, sizeof(conf), base, c->model, CR_PER) !=
	    NULL, "configuration too long");
	REQUIRE(t, h_start(&c->p, conf, NULL, START_MS) == 0, "start failed");
	for (i = 0; i < CR_CONNS; i++) {
		REQUIRE(t, (c->fd[i] = h_connect(c->p.port, 0)) != -1,
		    "connect %d: %s", i, strerror(errno));
		snprintf(msg, sizeof(msg), "conn %d\n", i);
		REQUIRE(t, cl_echo(c->fd[i], msg, REPLY_MS), "connection %d "
		    "not echoed", i);
		c->owner[i] = cl_owner(c->p.pid, (unsigned)c->nslots,
		    c->p.port, c->fd[i], &c->slot[i]);
		REQUIRE(t, c->owner[i] > 0, "no worker serves connection %d",
		    i);
	}
	c->wpid = c->owner[0];
	c->victim = cl_conn_holder(c->p.pid, c->p.port, c->fd[0]);
	REQUIRE(t, c->victim > 0, "no process holds connection 0");
	REQUIRE(t, crash_takes_worker(c->model) ? c->victim == c->wpid :
	    c->victim != c->wpid, "connection 0 is held by pid %d, its worker "
	    "is %d: not what %s does", (int)c->victim, (int)c->wpid, c->model);
out:
	return !t->failed;
}

/*
 * What the crash took: connection 0, and its worker's other connections
 * unless a per-connection child crashed; every other connection echoes.
 */
static int
cr_aftermath(struct tres *t, struct cr *c)
{
	int i, same_worker, takes = crash_takes_worker(c->model);

	REQUIRE(t, cl_eof_or_reset(c->fd[0], REPLY_MS), "the crashed "
	    "connection did not end");
	for (i = 1; i < CR_CONNS; i++) {
		same_worker = c->owner[i] == c->wpid;
		if (takes && same_worker)
			REQUIRE(t, cl_eof_or_reset(c->fd[i], REPLY_MS),
			    "connection %d, on the crashed worker %d, did not "
			    "end", i, (int)c->wpid);
		else
			REQUIRE(t, cl_echo(c->fd[i], "after the crash",
			    REPLY_MS), "connection %d (%s worker) not echoed "
			    "after the crash", i, same_worker ? "the same" :
			    "another");
	}
out:
	return !t->failed;
}

/* A thread of pid other than its main one, or -1. */
static pid_t
other_thread(pid_t pid)
{
	char path[64];
	struct dirent *d;
	pid_t tid = -1;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	if ((dir = opendir(path)) == NULL)
		return -1;
	while (tid == -1 && (d = readdir(dir)) != NULL)
		if (atoi(d->d_name) > 0 && atoi(d->d_name) != pid)
			tid = atoi(d->d_name);
	closedir(dir);
	return tid;
}

/* The crash: of the victim, or of one of its threads (crash_in_thread). */
static int
cr_crash(struct tres *t, struct cr *c)
{
	pid_t tid;

	if (crash_in_thread(c->model)) {
		REQUIRE(t, (tid = other_thread(c->victim)) > 0, "worker %d has "
		    "no thread but its main one", (int)c->victim);
		REQUIRE(t, syscall(SYS_tgkill, c->victim, tid, CRASH_SIG) ==
		    0, "tgkill: %s", strerror(errno));
	} else
		REQUIRE(t, kill(c->victim, CRASH_SIG) == 0, "kill: %s",
		    strerror(errno));
out:
	return !t->failed;
}

/* The worker: replaced after a crash that took it, else the same. */
static int
cr_worker(struct tres *t, struct cr *c)
{
	char want[128], err[256];
	pid_t now;

	if (crash_takes_worker(c->model)) {
		now = h_wait_worker(c->p.pid, (unsigned)c->slot[0], c->wpid,
		    3000);
		REQUIRE(t, now > 0, "slot %d not replaced within 3 s",
		    c->slot[0]);
		snprintf(want, sizeof(want), "worker %d (pid %d) killed by "
		    "signal %d", c->slot[0], (int)c->wpid, CRASH_SIG);
		REQUIRE(t, cl_log_wait(&c->p, want, 1, 2000), "no log line "
		    "'%s...'", want);
	} else {
		snprintf(want, sizeof(want), "connection child %d killed by "
		    "signal %d: its one connection", (int)c->victim,
		    CRASH_SIG);
		REQUIRE(t, cl_log_wait(&c->p, want, 1, 2000), "the worker did "
		    "not report its child: no log line '%s...'", want);
		REQUIRE(t, h_alive(c->wpid) && h_worker_pid(c->p.pid,
		    (unsigned)c->slot[0]) == c->wpid, "worker %d (pid %d) did "
		    "not survive its child's crash", c->slot[0], (int)c->wpid);
	}
	REQUIRE(t, cl_echo_new(c->p.port, "a new client", REPLY_MS, err,
	    sizeof(err)), "a new client after the crash: %s", err);
out:
	return !t->failed;
}

START_TEST(crash)
{
	static struct cr c;
	struct tres t = { 0, "" };
	int i;

	memset(&c, 0, sizeof(c));
	cl_proc_init(&c.p);
	c.model = say("a crash while serving a connection", _i, NULL);
	for (i = 0; i < CR_CONNS; i++)
		c.fd[i] = -1;
	if (!cr_fill(&t, &c))
		goto out;
	if (!cr_crash(&t, &c) || !cr_aftermath(&t, &c) || !cr_worker(&t, &c))
		goto out;
	cl_close_fds(c.fd, CR_CONNS);
	REQUIRE_STOPPED(&t, &c.p, 5000);
out:
	cl_close_fds(c.fd, CR_CONNS);
	cl_conclude(&t, &c.p);
}
END_TEST

/* ---- the PROXY protocol (issue 12) ---- */

START_TEST(proxy_headers)
{
	proxylive_headers(say("PROXY headers, valid and bad", _i, NULL));
}
END_TEST

START_TEST(proxy_guard)
{
	proxylive_guard(say("PROXY from an untrusted peer, and too slow", _i,
	    NULL));
}
END_TEST

START_TEST(proxy_per_ip)
{
	proxylive_per_ip(say("PROXY: per-IP limits on the header's source",
	    _i, NULL));
}
END_TEST

START_TEST(proxy_burst)
{
	proxylive_burst(say("PROXY: a burst of bad clients, the log's rate",
	    _i, NULL));
}
END_TEST

START_TEST(proxy_flood)
{
	proxylive_flood(say("PROXY: a flood of garbage, valid clients among it",
	    _i, NULL));
}
END_TEST

START_TEST(proxy_scoreboard)
{
	proxylive_scoreboard(say("PROXY on the scoreboard", _i, NULL));
}
END_TEST

static void
loop_case(Suite *s, const char *name, double timeout_s, const TTest *test)
{
	TCase *tc = tcase_create(name);

	tcase_set_timeout(tc, timeout_s);
	tcase_add_loop_test(tc, test, 0, H_NMODELS);
	suite_add_tcase(s, tc);
}

Suite *
modelrun_suite(void)
{
	Suite *s = suite_create("modelrun");

	h_case(s, "decisions", 0, H_TESTS(model_decisions));
	loop_case(s, "in_force", 30, model_in_force);
	loop_case(s, "interactive", 30, interactive);
	loop_case(s, "every_byte", 30, every_byte);
	loop_case(s, "stream", 90, stream_64mib);
	loop_case(s, "capacity", 30, capacity);
	loop_case(s, "non_reader", 60, non_reader);
	loop_case(s, "idle", 30, idle_timeout);
	loop_case(s, "lifetime", 30, lifetime);
	loop_case(s, "exhaustion", 60, exhaustion);
	loop_case(s, "per_ip", 30, per_ip);
	loop_case(s, "killed", 40, killed_under_load);
	loop_case(s, "crash", 30, crash);
	loop_case(s, "stop", 30, stop_drains);
	loop_case(s, "stop_deadline", 30, stop_deadline);
	loop_case(s, "heartbeat", 30, heartbeat_full);
	loop_case(s, "reload", 60, reload_to_next);
	loop_case(s, "proxy_headers", 30, proxy_headers);
	loop_case(s, "proxy_guard", 30, proxy_guard);
	loop_case(s, "proxy_per_ip", 30, proxy_per_ip);
	loop_case(s, "proxy_burst", 30, proxy_burst);
	loop_case(s, "proxy_flood", 60, proxy_flood);
	loop_case(s, "proxy_scoreboard", 30, proxy_scoreboard);
	return s;
}
