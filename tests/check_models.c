/*
 * check_models: what only the blocking models (model = prefork,
 * process-per-connection, thread-per-connection, thread-pool) have to
 * show, end to end against the real echod with the sandbox on: per-IP
 * limits across a pool whose workers hold connections in threads or
 * children, and one crashing thread taking its whole worker.  Everything
 * the five models share (echo, capacity and queueing, graceful stop and
 * its deadline, descriptor exhaustion, reload, a crash while serving,
 * the heartbeat of a full worker) is one scenario run over every model
 * by check_modelrun.c.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "clients.h"
#include "harness.h"
#include "suites.h"

#define START_MS 10000
#define STOP_MS 15000

static const char *const models[] = {
	"prefork", "process-per-connection", "thread-per-connection",
	"thread-pool",
};

/* One worker, two connections per worker where the model counts them. */
static void
conf_for(char *buf, size_t len, const char *model)
{
	snprintf(buf, len, "listen = { \"127.0.0.1:0\" }\nworkers = 1\n"
	    "model = %s\nmax_connections = 2\nthreads = 2\n"
	    "shutdown_timeout = 5\nlog_level = debug\nsandbox = on\n", model);
}

/*
 * Per-IP limits across the pool (two workers; under the thread models a
 * worker's threads share its table): a second connection from 127.0.0.1
 * is refused while the first is open, and admitted once it has gone.
 */
START_TEST(per_ip_limit)
{
	const char *model = models[_i];
	struct echod_proc p;
	struct tres t = { 0, "" };
	char conf[512];
	int a = -1, b = -1, ok = 0, tries;
	long long deadline;

	cl_proc_init(&p);
	conf_for(conf, sizeof(conf), model);
	strcat(conf, "max_connections_per_ip = 1\n");
	conf[strstr(conf, "workers = 1") - conf + 10] = '2';
	REQUIRE(&t, h_start(&p, conf, NULL, START_MS) == 0, "%s: start",
	    model);
	REQUIRE(&t, (a = h_connect(p.port, 0)) != -1 &&
	    cl_echo(a, "first\n", 5000), "%s: no echo", model);
	REQUIRE(&t, (b = h_connect(p.port, 0)) != -1 &&
	    cl_refused(b, 5000) == 1, "%s: a second connection from the "
	    "same address was not refused", model);
	REQUIRE(&t, cl_log_wait(&p, "max_connections_per_ip reached", 1,
	    5000), "%s: no refusal line", model);
	close(b);
	b = -1;
	REQUIRE(&t, cl_finish(a, 5000), "%s: no EOF", model);
	close(a);
	a = -1;
	/* Released when its thread, child or loop has ended: soon. */
	deadline = h_now_ms() + 10000;
	for (tries = 0; !ok && tries < 200 && h_now_ms() < deadline; tries++) {
		if ((b = h_connect(p.port, 0)) == -1)
			break;
		ok = cl_reply(b, "again\n", 5000) == 1;
		close(b);
		b = -1;
		if (!ok)
			h_poll_pause();
	}
	REQUIRE(&t, ok, "%s: not admitted after the first one left", model);
	REQUIRE_STOPPED(&t, &p, STOP_MS);
out:
	cl_close_fds(&a, 1);
	cl_close_fds(&b, 1);
	cl_conclude(&t, &p);
}
END_TEST

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

static const char *const thread_models[] = {
	"thread-per-connection", "thread-pool",
};

/*
 * The thread models: one thread that crashes takes its whole worker down
 * with every connection the worker held; the master replaces the worker,
 * and new clients are served.
 */
START_TEST(thread_crash)
{
	const char *model = thread_models[_i];
	struct echod_proc p;
	struct tres t = { 0, "" };
	char conf[512], err[128];
	int a = -1, b = -1;
	pid_t w, tid;

	cl_proc_init(&p);
	conf_for(conf, sizeof(conf), model);
	REQUIRE(&t, h_start(&p, conf, NULL, START_MS) == 0, "start");
	REQUIRE(&t, (w = h_worker_pid(p.pid, 0)) > 0, "no worker 0");
	REQUIRE(&t, (a = h_connect(p.port, 0)) != -1 && cl_echo(a, "a\n",
	    5000) && (b = h_connect(p.port, 0)) != -1 && cl_echo(b, "b\n",
	    5000), "no echo");
	REQUIRE(&t, (tid = other_thread(w)) > 0, "%s: no thread", model);
	REQUIRE(&t, syscall(SYS_tgkill, w, tid, SIGSEGV) == 0, "tgkill: %s",
	    strerror(errno));
	REQUIRE(&t, cl_eof_or_reset(a, 5000) && cl_eof_or_reset(b, 5000),
	    "%s: a connection outlived its worker", model);
	REQUIRE(&t, cl_log_wait(&p, "killed by signal 11", 1, 5000),
	    "%s: the master did not see the crash", model);
	REQUIRE(&t, h_wait_worker(p.pid, 0, w, 10000) > 0, "%s: not "
	    "replaced", model);
	REQUIRE(&t, cl_echo_new(p.port, "c\n", 5000, err, sizeof(err)),
	    "%s: new connection: %s", model, err);
	REQUIRE_STOPPED(&t, &p, STOP_MS);
out:
	cl_close_fds(&a, 1);
	cl_close_fds(&b, 1);
	cl_conclude(&t, &p);
}
END_TEST

Suite *
models_suite(void)
{
	Suite *s = suite_create("models");
	TCase *tc;

	tc = h_case(s, "limits", 60, H_TESTS(NULL));
	tcase_add_loop_test(tc, per_ip_limit, 0, H_NELEM(models));
	tc = h_case(s, "crash", 60, H_TESTS(NULL));
	tcase_add_loop_test(tc, thread_crash, 0, H_NELEM(thread_models));
	return s;
}
