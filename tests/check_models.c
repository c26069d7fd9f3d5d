/*
 * check_models: each blocking model (model = prefork,
 * process-per-connection, thread-per-connection, thread-pool) end to end
 * against the real echod, with the sandbox on: byte-exact echo with a
 * half-close, capacity then queueing, a graceful stop with a connection
 * open, a reload from events with a connection open across it, and a
 * per-connection child that crashes.  The broader scenarios run over
 * every model in check_modelrun.c.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
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
conf_stop(char *buf, size_t len, const char *model, int shutdown_s)
{
	snprintf(buf, len, "listen = { \"127.0.0.1:0\" }\nworkers = 1\n"
	    "model = %s\nmax_connections = 2\nthreads = 2\n"
	    "shutdown_timeout = %d\nlog_level = debug\nsandbox = on\n", model,
	    shutdown_s);
}

static void
conf_for(char *buf, size_t len, const char *model)
{
	conf_stop(buf, len, model, 5);
}

static int
capacity_of(const char *model)
{
	return strcmp(model, "prefork") == 0 ? 1 : 2;
}

/* No worker or child was killed by its seccomp filter. */
static int
no_sigsys(struct echod_proc *p)
{
	return cl_log_count(p, "killed by signal 31") == 0 &&
	    cl_log_count(p, "signal 31") == 0;
}

START_TEST(echo_exact)
{
	const char *model = models[_i];
	unsigned char out[16384], want[16384], in[16384];
	struct echod_proc p;
	struct tres t = { 0, "" };
	char conf[512];
	size_t i;
	int fd = -1;

	cl_proc_init(&p);
	conf_for(conf, sizeof(conf), model);
	REQUIRE(&t, h_start(&p, conf, NULL, START_MS) == 0, "%s: start",
	    model);
	for (i = 0; i < sizeof(out); i++)
		out[i] = (unsigned char)(i * 7 + i / 256);
	memcpy(want, out, sizeof(want));
	cl_upper(want, sizeof(want));
	REQUIRE(&t, (fd = h_connect(p.port, 0)) != -1, "connect: %s",
	    strerror(errno));
	REQUIRE(&t, h_write_all(fd, out, sizeof(out)) == 0, "write");
	REQUIRE(&t, shutdown(fd, SHUT_WR) == 0, "shutdown");
	REQUIRE(&t, h_read_exact(fd, in, sizeof(in), 10000) == sizeof(in),
	    "%s: short echo", model);
	REQUIRE(&t, memcmp(in, want, sizeof(in)) == 0, "%s: wrong bytes",
	    model);
	REQUIRE(&t, h_expect_eof(fd, 5000), "%s: no EOF after the "
	    "half-close", model);
	REQUIRE(&t, cl_log_wait(&p, "closed: client closed, 16384 bytes in, "
	    "16384 out", 1, 5000), "%s: no close line", model);
	REQUIRE(&t, cl_log_count(&p, "(model ") == 1, "%s: not the model's "
	    "ready line", model);
	REQUIRE(&t, no_sigsys(&p), "%s: the sandbox killed something", model);
	REQUIRE_STOPPED(&t, &p, STOP_MS);
out:
	if (fd != -1)
		close(fd);
	cl_conclude(&t, &p);
}
END_TEST

/*
 * Capacity: cap clients are served at once; the next waits in the accept
 * queue, unanswered, until one of them leaves, then it is served.
 */
START_TEST(capacity_then_queue)
{
	const char *model = models[_i];
	struct echod_proc p;
	struct tres t = { 0, "" };
	int fds[3] = { -1, -1, -1 }, cap = capacity_of(model), i, extra;
	char conf[512], got[8];

	cl_proc_init(&p);
	conf_for(conf, sizeof(conf), model);
	REQUIRE(&t, h_start(&p, conf, NULL, START_MS) == 0, "%s: start",
	    model);
	for (i = 0; i < cap; i++)
		REQUIRE(&t, (fds[i] = h_connect(p.port, 0)) != -1 &&
		    cl_echo(fds[i], "held\n", 5000), "%s: client %d not "
		    "served", model, i);
	extra = cap;
	REQUIRE(&t, (fds[extra] = h_connect(p.port, 0)) != -1 &&
	    h_write_all(fds[extra], "queued\n", 7) == 0, "%s: connect",
	    model);
	/* Not served while full: nothing comes back in a while. */
	REQUIRE(&t, h_read_exact(fds[extra], got, 7, 400) == 0,
	    "%s: served beyond its capacity of %d", model, cap);
	close(fds[0]);
	fds[0] = -1;
	REQUIRE(&t, h_read_exact(fds[extra], got, 7, 10000) == 7 &&
	    memcmp(got, "QUEUED\n", 7) == 0, "%s: the queued client was "
	    "not served once one left", model);
	REQUIRE(&t, no_sigsys(&p), "%s: the sandbox killed something", model);
	REQUIRE_STOPPED(&t, &p, STOP_MS);
out:
	cl_close_fds(fds, 3);
	cl_conclude(&t, &p);
}
END_TEST

/* SIGTERM with a connection open: it is served until the client ends. */
START_TEST(graceful_stop)
{
	const char *model = models[_i];
	struct echod_proc p;
	struct tres t = { 0, "" };
	char conf[512];
	int fd = -1, st;

	cl_proc_init(&p);
	conf_for(conf, sizeof(conf), model);
	REQUIRE(&t, h_start(&p, conf, NULL, START_MS) == 0, "%s: start",
	    model);
	REQUIRE(&t, (fd = h_connect(p.port, 0)) != -1 &&
	    cl_echo(fd, "before\n", 5000), "%s: no echo", model);
	REQUIRE(&t, kill(p.pid, SIGTERM) == 0, "SIGTERM");
	REQUIRE(&t, cl_log_wait(&p, "SIGTERM: draining", 1, 5000),
	    "%s: the worker did not start draining", model);
	REQUIRE(&t, cl_echo(fd, "during\n", 5000), "%s: the open "
	    "connection was not served while draining", model);
	REQUIRE(&t, cl_finish(fd, 5000), "%s: no EOF after the half-close",
	    model);
	st = h_wait_exit(&p, STOP_MS);
	REQUIRE(&t, cl_exited_with(st, 0), "%s: exit status %#x", model, st);
	REQUIRE(&t, cl_log_count(&p, "closed: shutdown") == 0, "%s: the "
	    "connection was cut, not drained", model);
out:
	if (fd != -1)
		close(fd);
	cl_conclude(&t, &p);
}
END_TEST

/*
 * A client that outstays shutdown_timeout is closed ("shutdown") and the
 * worker exits by itself, before the master's grace runs out.
 */
START_TEST(stop_deadline)
{
	const char *model = models[_i];
	struct echod_proc p;
	struct tres t = { 0, "" };
	char conf[512];
	int fd = -1, st;

	cl_proc_init(&p);
	conf_stop(conf, sizeof(conf), model, 1);
	REQUIRE(&t, h_start(&p, conf, NULL, START_MS) == 0, "%s: start",
	    model);
	REQUIRE(&t, (fd = h_connect(p.port, 0)) != -1 &&
	    cl_echo(fd, "stay\n", 5000), "%s: no echo", model);
	REQUIRE(&t, kill(p.pid, SIGTERM) == 0, "SIGTERM");
	REQUIRE(&t, cl_eof_or_reset(fd, 5000), "%s: not closed at "
	    "shutdown_timeout", model);
	st = h_wait_exit(&p, STOP_MS);
	REQUIRE(&t, cl_exited_with(st, 0), "%s: exit status %#x", model, st);
	REQUIRE(&t, cl_log_count(&p, "closed: shutdown") == 1, "%s: no "
	    "'closed: shutdown' line", model);
	REQUIRE(&t, cl_log_count(&p, "killing") == 0 &&
	    cl_log_count(&p, "signal 9") == 0, "%s: the master had to kill "
	    "the worker", model);
out:
	if (fd != -1)
		close(fd);
	cl_conclude(&t, &p);
}
END_TEST

/*
 * Supervision: a worker at capacity with idle clients (its acceptor
 * waiting, its connections waiting) still beats, so worker_timeout = 1
 * never fires; a stopped one stops beating and is caught and replaced.
 */
START_TEST(heartbeat_when_full)
{
	const char *model = models[_i];
	struct echod_proc p;
	struct tres t = { 0, "" };
	int fds[2] = { -1, -1 }, cap = capacity_of(model), i;
	char conf[512];
	pid_t w;

	cl_proc_init(&p);
	conf_for(conf, sizeof(conf), model);
	strcat(conf, "worker_timeout = 1\n");
	REQUIRE(&t, h_start(&p, conf, NULL, START_MS) == 0, "%s: start",
	    model);
	REQUIRE(&t, (w = h_worker_pid(p.pid, 0)) > 0, "no worker 0");
	for (i = 0; i < cap; i++)
		REQUIRE(&t, (fds[i] = h_connect(p.port, 0)) != -1 &&
		    cl_echo(fds[i], "idle\n", 5000), "%s: no echo", model);
	/* Three worker_timeouts of idleness at capacity. */
	REQUIRE(&t, !cl_log_wait(&p, "hung: no heartbeat", 1, 3000),
	    "%s: a healthy full worker was taken for hung", model);
	REQUIRE(&t, cl_echo(fds[0], "still\n", 5000), "%s: no echo after",
	    model);
	REQUIRE(&t, kill(w, SIGSTOP) == 0, "SIGSTOP");
	REQUIRE(&t, cl_log_wait(&p, "hung: no heartbeat", 1, 10000),
	    "%s: a stopped worker was not caught", model);
	REQUIRE(&t, h_wait_worker(p.pid, 0, w, 10000) > 0, "%s: not "
	    "replaced", model);
	REQUIRE_STOPPED(&t, &p, STOP_MS);
out:
	cl_close_fds(fds, 2);
	cl_conclude(&t, &p);
}
END_TEST

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
	if (a != -1)
		close(a);
	if (b != -1)
		close(b);
	cl_conclude(&t, &p);
}
END_TEST

/* The descriptor pid's next open() would get: its lowest free one. */
static int
lowest_free_fd(pid_t pid)
{
	char path[64];
	int fd;

	for (fd = 0; fd < 4096; fd++) {
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
		if (access(path, F_OK) == -1 && errno == ENOENT)
			return fd;
	}
	return -1;
}

/*
 * Out of descriptors: the worker cannot accept; it pauses instead of
 * spinning on a listener that stays readable, says so, and serves the
 * waiting client once it can again.
 */
START_TEST(fd_exhaustion)
{
	const char *model = models[_i];
	struct echod_proc p;
	struct tres t = { 0, "" };
	struct rlimit old, nl;
	char conf[512], got[8];
	long long cpu;
	int fd = -1, n;
	pid_t w;

	cl_proc_init(&p);
	conf_for(conf, sizeof(conf), model);
	REQUIRE(&t, h_start(&p, conf, NULL, START_MS) == 0, "%s: start",
	    model);
	REQUIRE(&t, (w = h_worker_pid(p.pid, 0)) > 0, "no worker 0");
	REQUIRE(&t, (n = lowest_free_fd(w)) > 0, "no free fd?");
	REQUIRE(&t, cl_prlimit(w, RLIMIT_NOFILE, NULL, &old) == 0, "prlimit");
	nl = old;
	nl.rlim_cur = (rlim_t)n;
	REQUIRE(&t, cl_prlimit(w, RLIMIT_NOFILE, &nl, NULL) == 0,
	    "prlimit: %s", strerror(errno));
	REQUIRE(&t, (fd = h_connect(p.port, 0)) != -1 &&
	    h_write_all(fd, "wait\n", 5) == 0, "connect");
	REQUIRE(&t, cl_log_wait(&p, "pausing accepts", 1, 5000), "%s: no "
	    "'pausing accepts' line", model);
	cpu = cl_pid_cpu_ms(w);
	REQUIRE(&t, h_read_exact(fd, got, 5, 1000) == 0, "%s: served "
	    "without a descriptor?", model);
	cpu = cl_pid_cpu_ms(w) - cpu;
	REQUIRE(&t, cpu < 300, "%s: %lld ms of CPU in a second out of "
	    "descriptors: spinning", model, cpu);
	REQUIRE(&t, cl_prlimit(w, RLIMIT_NOFILE, &old, NULL) == 0,
	    "prlimit back");
	REQUIRE(&t, h_read_exact(fd, got, 5, 5000) == 5 &&
	    memcmp(got, "WAIT\n", 5) == 0, "%s: not served once it could",
	    model);
	REQUIRE_STOPPED(&t, &p, STOP_MS);
out:
	if (fd != -1)
		close(fd);
	cl_conclude(&t, &p);
}
END_TEST

/*
 * events -> model by SIGHUP, a connection open across the reload; then
 * back to events, a connection to the model open across that one.
 */
START_TEST(reload_from_events)
{
	const char *model = models[_i];
	struct echod_proc p;
	struct tres t = { 0, "" };
	char conf[512], err[128], want[96];
	int fd = -1;

	cl_proc_init(&p);
	conf_for(conf, sizeof(conf), "events");
	REQUIRE(&t, h_start(&p, conf, NULL, START_MS) == 0, "start");
	REQUIRE(&t, (fd = h_connect(p.port, 0)) != -1 &&
	    cl_echo(fd, "old\n", 5000), "no echo");
	conf_for(conf, sizeof(conf), model);
	REQUIRE(&t, cl_write_conf(&p, conf) == 0, "write conf");
	REQUIRE(&t, kill(p.pid, SIGHUP) == 0, "SIGHUP");
	REQUIRE(&t, h_wait_notify(&p, "generation 2", 15000, NULL, 0) == 0,
	    "%s: the reload did not finish", model);
	snprintf(want, sizeof(want), "(model %s)", model);
	REQUIRE(&t, cl_log_wait(&p, want, 1, 5000), "%s: no new worker of "
	    "that model", model);
	REQUIRE(&t, cl_echo(fd, "across\n", 5000), "%s: the connection open "
	    "across the reload broke", model);
	REQUIRE(&t, cl_echo_new(p.port, "new\n", 5000, err, sizeof(err)),
	    "%s: new connection: %s", model, err);
	REQUIRE(&t, cl_finish(fd, 5000), "%s: no EOF", model);
	close(fd);
	/* And back: the model's worker drains with its client served. */
	REQUIRE(&t, (fd = h_connect(p.port, 0)) != -1 &&
	    cl_echo(fd, "model\n", 5000), "%s: no echo", model);
	conf_for(conf, sizeof(conf), "events");
	REQUIRE(&t, cl_write_conf(&p, conf) == 0, "write conf");
	REQUIRE(&t, kill(p.pid, SIGHUP) == 0, "SIGHUP");
	REQUIRE(&t, h_wait_notify(&p, "generation 3", 15000, NULL, 0) == 0,
	    "%s: the reload back did not finish", model);
	REQUIRE(&t, cl_echo(fd, "across again\n", 5000), "%s: the "
	    "connection open across the reload back broke", model);
	REQUIRE(&t, cl_finish(fd, 5000), "%s: no EOF", model);
	REQUIRE(&t, no_sigsys(&p), "%s: the sandbox killed something", model);
	REQUIRE_STOPPED(&t, &p, STOP_MS);
out:
	if (fd != -1)
		close(fd);
	cl_conclude(&t, &p);
}
END_TEST

/* The worker's child that holds client_fd, or -1. */
static pid_t
conn_child(pid_t worker, int port, int fd)
{
	unsigned long inode = cl_server_inode(port, fd);
	pid_t kids[16];
	int i, n = h_children(worker, kids, 16);

	for (i = 0; inode != 0 && i < n; i++)
		if (cl_pid_has_socket(kids[i], inode))
			return kids[i];
	return -1;
}

/*
 * process-per-connection: a child per connection, titled with its peer;
 * one that crashes takes only its own connection; the worker reaps it,
 * says so, and serves on.
 */
START_TEST(process_child_crash)
{
	struct echod_proc p;
	struct tres t = { 0, "" };
	char conf[512], path[64], title[128], err[128];
	pid_t w, kid = -1;
	int a = -1, b = -1;
	FILE *fp;
	size_t n = 0;

	cl_proc_init(&p);
	conf_for(conf, sizeof(conf), "process-per-connection");
	REQUIRE(&t, h_start(&p, conf, NULL, START_MS) == 0, "start");
	REQUIRE(&t, (w = h_worker_pid(p.pid, 0)) > 0, "no worker 0");
	REQUIRE(&t, (a = h_connect(p.port, 0)) != -1 && cl_echo(a, "a\n",
	    5000) && (b = h_connect(p.port, 0)) != -1 && cl_echo(b, "b\n",
	    5000), "no echo");
	REQUIRE(&t, (kid = conn_child(w, p.port, a)) > 0, "no child holds "
	    "the connection");
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)kid);
	if ((fp = fopen(path, "r")) != NULL) {
		n = fread(title, 1, sizeof(title) - 1, fp);
		fclose(fp);
	}
	title[n] = '\0';
	REQUIRE(&t, strncmp(title, "echod: worker 0 conn 127.0.0.1:", 31) ==
	    0, "child title '%s'", title);
	REQUIRE(&t, kill(kid, SIGSEGV) == 0, "kill");
	REQUIRE(&t, cl_eof_or_reset(a, 5000), "the crashed child's "
	    "connection stayed open");
	REQUIRE(&t, cl_log_wait(&p, "killed by signal 11: its one connection",
	    1, 5000), "the worker did not report its child");
	REQUIRE(&t, cl_echo(b, "b again\n", 5000), "the other connection "
	    "broke");
	REQUIRE(&t, cl_echo_new(p.port, "c\n", 5000, err, sizeof(err)),
	    "new connection: %s", err);
	REQUIRE(&t, h_worker_pid(p.pid, 0) == w, "the worker was replaced");
	REQUIRE_STOPPED(&t, &p, STOP_MS);
out:
	if (a != -1)
		close(a);
	if (b != -1)
		close(b);
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
	if (a != -1)
		close(a);
	if (b != -1)
		close(b);
	cl_conclude(&t, &p);
}
END_TEST

Suite *
models_suite(void)
{
	Suite *s = suite_create("models");
	TCase *tc;

	tc = h_case(s, "echo", 60, H_TESTS(NULL));
	tcase_add_loop_test(tc, echo_exact, 0, H_NELEM(models));
	tc = h_case(s, "capacity", 60, H_TESTS(NULL));
	tcase_add_loop_test(tc, capacity_then_queue, 0, H_NELEM(models));
	tc = h_case(s, "stop", 60, H_TESTS(NULL));
	tcase_add_loop_test(tc, graceful_stop, 0, H_NELEM(models));
	tcase_add_loop_test(tc, stop_deadline, 0, H_NELEM(models));
	tc = h_case(s, "supervision", 60, H_TESTS(NULL));
	tcase_add_loop_test(tc, heartbeat_when_full, 0, H_NELEM(models));
	tc = h_case(s, "limits", 60, H_TESTS(NULL));
	tcase_add_loop_test(tc, per_ip_limit, 0, H_NELEM(models));
	tcase_add_loop_test(tc, fd_exhaustion, 0, H_NELEM(models));
	tc = h_case(s, "reload", 60, H_TESTS(NULL));
	tcase_add_loop_test(tc, reload_from_events, 0, H_NELEM(models));
	tc = h_case(s, "crash", 60, H_TESTS(process_child_crash));
	tcase_add_loop_test(tc, thread_crash, 0, H_NELEM(thread_models));
	return s;
}
