/*
 * check_startup: odd starts of the real echod: descriptors 0-2 closed
 * (in the foreground and with -d), a SIGHUP storm in the first
 * milliseconds, -d with a relative -c followed by a reload.
 *
 * The shell does the closing: ECHOD_BIN points at a small wrapper script
 * ("exec echod "$@" 2>&-"), written into the test's own directory, so the
 * harness starts it as it starts echod.  -d daemons are not our children:
 * they are stopped by the pid in their pidfile, on every path.
 */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clients.h"
#include "harness.h"
#include "suites.h"

#define START_MS 10000
#define STOP_MS 10000

/* A scratch directory with echod.conf, the wrapper and the pidfile. */
struct scene {
	char dir[64];
	char conf[128];
	char wrapper[128];
	char pidfile[128];
	char bin[PATH_MAX];
	pid_t daemon; /* -d: the detached master, from the pidfile */
};

static void
scene_init(struct scene *s)
{
	memset(s, 0, sizeof(*s));
	s->daemon = -1;
}

static int
write_text(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "we");

	if (f == NULL)
		return -1;
	fputs(text, f);
	if (fclose(f) == -1)
		return -1;
	return chmod(path, mode);
}

/*
 * The scene's echod.conf (workers, plus a pidfile in the scene) and a
 * wrapper that runs echod (from the scene's directory if cd, else from
 * here) with the shell redirections redir ("" for none).  ECHOD_BIN is
 * set to the wrapper.
 */
static int
scene_setup(struct scene *s, int workers, int cd, const char *redir)
{
	char text[PATH_MAX + 512];

	if (realpath(h_echod_bin(), s->bin) == NULL)
		return -1;
	snprintf(s->dir, sizeof(s->dir), "/tmp/echod-startup.XXXXXX");
	if (mkdtemp(s->dir) == NULL) {
		s->dir[0] = '\0';
		return -1;
	}
	/* Started as root, echod re-reads the file as "nobody". */
	if (chmod(s->dir, 0755) == -1)
		return -1;
	snprintf(s->conf, sizeof(s->conf), "%s/echod.conf", s->dir);
	snprintf(s->wrapper, sizeof(s->wrapper), "%s/echod.sh", s->dir);
	snprintf(s->pidfile, sizeof(s->pidfile), "%s/echod.pid", s->dir);
	snprintf(text, sizeof(text), "listen = { \"127.0.0.1:0\" }\n"
	    "workers = %d\nshutdown_timeout = 5\npidfile = \"%s\"\n", workers,
	    s->pidfile);
	if (write_text(s->conf, text, 0644) == -1)
		return -1;
	snprintf(text, sizeof(text), "#!/bin/sh\n%s%s%sexec '%s' \"$@\" %s\n",
	    cd ? "cd '" : "", cd ? s->dir : "", cd ? "' || exit 126\n" : "",
	    s->bin, redir);
	if (write_text(s->wrapper, text, 0755) == -1)
		return -1;
	return setenv("ECHOD_BIN", s->wrapper, 1);
}

/* Stop a -d daemon (not our child) by its pid, SIGKILL if it lingers. */
static void
stop_daemon(struct scene *s)
{
	long long deadline = h_now_ms() + STOP_MS;

	if (s->daemon <= 0)
		return;
	kill(s->daemon, SIGTERM);
	while (h_alive(s->daemon) && h_now_ms() < deadline)
		h_poll_pause();
	if (h_alive(s->daemon))
		kill(s->daemon, SIGKILL);
	s->daemon = -1;
}

static void
scene_cleanup(struct scene *s, struct echod_proc *p)
{
	stop_daemon(s);
	h_cleanup(p);
	if (s->dir[0] == '\0')
		return;
	unlink(s->conf);
	unlink(s->wrapper);
	unlink(s->pidfile);
	rmdir(s->dir);
	s->dir[0] = '\0';
}

/* A fresh connection gets its message back uppercased. */
static int
echoes(int port)
{
	return cl_echo_new(port, "startup\n", 5000, NULL, 0);
}

/*
 * Descriptors closed by the shell before echod starts.  In the
 * foreground it must become ready, serve and stop with 0; with -d the
 * parent must exit 0 once the daemon is ready, and the daemon must serve
 * on the port its READY names.
 */
static const struct redir_case {
	const char *redir;
	int detached;
} redir_cases[] = {
	/* Issue 9, defect 13: the listener took 2 and the log wrote into
	 * it (SIGPIPE). */
	{ "2>&-", 0 },
	{ "0<&- 1>&- 2>&-", 0 },
	/* Issue 9, defect 16: the listener took 0, /dev/null went over it. */
	{ "0<&-", 1 },
	/* Issue 9, defect 16: all of 0-2 closed clobbered the pidfile's fd. */
	{ "0<&- 1>&- 2>&-", 1 },
};

/* Foreground: ready, or how it ended. */
static int
foreground_ready(struct tres *t, struct echod_proc *p, const char *redir)
{
	int st;

	if (h_wait_ready(p, START_MS) == 0)
		return 1;
	st = h_wait_exit(p, 1000);
	REQUIRE(t, 0, "echod %s: no READY=1; %s %d", redir,
	    st != -1 && WIFSIGNALED(st) ? "killed by signal" :
	    "exit status", st == -1 ? -1 : WIFSIGNALED(st) ?
	    WTERMSIG(st) : WEXITSTATUS(st));
out:
	return 0;
}

/* -d: the parent exits 0 and names the daemon, which becomes ready. */
static int
detached_ready(struct tres *t, struct echod_proc *p, struct scene *s,
    const char *redir)
{
	int st = h_wait_exit(p, START_MS);

	s->daemon = cl_pidfile_pid(s->pidfile, 2000);
	REQUIRE(t, st == 0, "echod -d %s: the parent ended with status %#x "
	    "(want exit 0)", redir, st);
	REQUIRE(t, s->daemon > 0, "no pid in %s", s->pidfile);
	REQUIRE(t, h_wait_ready(p, START_MS) == 0, "no READY=1 with a port");
	return 1;
out:
	return 0;
}

START_TEST(closed_descriptors)
{
	const struct redir_case *c = &redir_cases[_i];
	const char *d = c->detached ? " -d" : "";
	struct tres t = { 0, "" };
	struct echod_proc p;
	struct scene s;
	int st;

	cl_proc_init(&p);
	scene_init(&s);
	REQUIRE(&t, scene_setup(&s, 2, 0, c->redir) == 0, "scene: %s",
	    strerror(errno));
	REQUIRE(&t, h_spawn(&p, NULL, (const char *const[]){ "-c", s.conf,
	    c->detached ? "-d" : NULL, NULL }) == 0, "spawn");
	if (!(c->detached ? detached_ready(&t, &p, &s, c->redir) :
	    foreground_ready(&t, &p, c->redir)))
		goto out;
	REQUIRE(&t, echoes(p.port), "echod%s %s: READY=1 said port %d, but "
	    "nothing echoes there", d, c->redir, p.port);
	if (c->detached)
		goto out;
	REQUIRE(&t, h_alive(p.pid), "echod %s: gone after serving", c->redir);
	st = h_stop(&p, STOP_MS);
	REQUIRE(&t, WIFEXITED(st) && WEXITSTATUS(st) == 0,
	    "echod %s: stopped with status %#x", c->redir, st);
out:
	scene_cleanup(&s, &p);
	ck_assert_msg(!t.failed, "%s", t.msg);
}
END_TEST

/* ---- a SIGHUP storm at the very start ---- */

/*
 * Wait for echod's first log line ("starting"): main() is running, and the
 * listeners and the master's signalfd come after it.  Busy: the point is
 * to be there within microseconds.
 */
static int
wait_first_line(const struct echod_proc *p, int timeout_ms)
{
	long long deadline = h_now_ms() + timeout_ms;
	struct stat st;
	long spins = 0;

	while (spins++ < 100000000L && h_now_ms() < deadline)
		if (stat(p->log_path, &st) == 0 && st.st_size > 0)
			return 0;
	return -1;
}

#define STORM_ROUNDS 5
#define STORM_SIGNALS 40

/*
 * Issue 9, defect 13: a SIGHUP in the first ~5 ms killed echod (status
 * 129).  Signals are sent from echod's first log line on (nothing can
 * guard the dynamic loader's time before main), every 100 us, through the
 * rest of its start-up; it must come up, serve and stop cleanly.
 */
START_TEST(sighup_storm_at_start)
{
	struct timespec gap = { 0, 100000 };
	struct echod_proc p;
	struct scene s;
	struct tres t = { 0 };
	int round, i, st;

	cl_proc_init(&p);
	scene_init(&s);
	REQUIRE(&t, scene_setup(&s, 2, 0, "") == 0, "scene");
	/* No wrapper here: the storm must hit echod, not a shell. */
	REQUIRE(&t, setenv("ECHOD_BIN", s.bin, 1) == 0, "setenv");
	for (round = 0; round < STORM_ROUNDS; round++) {
		REQUIRE(&t, h_spawn(&p, NULL, (const char *const[]){ "-c",
		    s.conf, NULL }) == 0, "spawn");
		REQUIRE(&t, wait_first_line(&p, START_MS) == 0,
		    "round %d: echod never logged", round);
		for (i = 0; i < STORM_SIGNALS && kill(p.pid, SIGHUP) == 0; i++)
			nanosleep(&gap, NULL);
		if (h_wait_ready(&p, START_MS) == -1) {
			st = h_wait_exit(&p, 1000);
			REQUIRE(&t, 0, "round %d: no READY=1 after a SIGHUP storm "
			    "at start; wait status %#x (%s %d)", round, st,
			    st != -1 && WIFSIGNALED(st) ? "signal" : "exit",
			    st == -1 ? -1 : WIFSIGNALED(st) ? WTERMSIG(st) :
			    WEXITSTATUS(st));
		}
		REQUIRE(&t, echoes(p.port), "round %d: no echo", round);
		cl_notify_drain(&p);
		st = cl_stop(&p, STOP_MS);
		REQUIRE(&t, WIFEXITED(st) && WEXITSTATUS(st) == 0,
		    "round %d: stopped with status %#x", round, st);
		h_cleanup(&p);
	}
out:
	scene_cleanup(&s, &p);
	ck_assert_msg(!t.failed, "%s", t.msg);
}
END_TEST

/* ---- -d with a relative -c ---- */

/* Live children of the daemon (its workers), waiting for want. */
static int
wait_children(pid_t master, int want, int timeout_ms)
{
	long long deadline = h_now_ms() + timeout_ms;
	pid_t kids[64];
	int n;

	do {
		if ((n = h_children(master, kids, 64)) == want)
			return n;
		h_poll_pause();
	} while (h_now_ms() < deadline);
	return n;
}

/*
 * Issue 9, defect 12: "-d -c echod.conf" ran from "/", so SIGHUP read
 * /echod.conf.  Started from the scene's directory with a relative -c,
 * a reload to 3 workers must take effect.
 */
START_TEST(detached_relative_config_reloads)
{
	struct echod_proc p;
	struct scene s;
	struct tres t = { 0 };
	char text[512];
	int st, n;

	cl_proc_init(&p);
	scene_init(&s);
	REQUIRE(&t, scene_setup(&s, 2, 1, "") == 0, "scene");
	REQUIRE(&t, h_spawn(&p, NULL, (const char *const[]){ "-c",
	    "echod.conf", "-d", NULL }) == 0, "spawn");
	st = h_wait_exit(&p, START_MS);
	s.daemon = cl_pidfile_pid(s.pidfile, 2000);
	REQUIRE(&t, st == 0, "echod -d: status %#x", st);
	REQUIRE(&t, s.daemon > 0, "no pid in %s", s.pidfile);
	REQUIRE(&t, h_wait_ready(&p, START_MS) == 0, "no READY=1");
	REQUIRE(&t, (n = wait_children(s.daemon, 2, START_MS)) == 2,
	    "%d workers, want 2", n);
	snprintf(text, sizeof(text), "listen = { \"127.0.0.1:0\" }\n"
	    "workers = 3\nshutdown_timeout = 5\npidfile = \"%s\"\n",
	    s.pidfile);
	REQUIRE(&t, write_text(s.conf, text, 0644) == 0, "rewrite");
	REQUIRE(&t, kill(s.daemon, SIGHUP) == 0, "SIGHUP");
	REQUIRE(&t, (n = wait_children(s.daemon, 3, START_MS)) == 3,
	    "after SIGHUP with workers = 3 in the relative -c file: %d "
	    "workers (the reload read another file)", n);
out:
	scene_cleanup(&s, &p);
	ck_assert_msg(!t.failed, "%s", t.msg);
}
END_TEST

/*
 * Issue 9, defect 14: "already running (pid N)" must name the daemon.
 * (That the file never holds the parent's pid at all is check_daemon's
 * pidfile_names_only_the_writer.)
 */
START_TEST(second_daemon_names_the_real_pid)
{
	struct echod_proc p, q;
	struct scene s;
	struct tres t = { 0 };
	char log[4096], want[64];
	int st;

	cl_proc_init(&p);
	cl_proc_init(&q);
	scene_init(&s);
	REQUIRE(&t, scene_setup(&s, 1, 0, "") == 0, "scene");
	REQUIRE(&t, h_spawn(&p, NULL, (const char *const[]){ "-c", s.conf,
	    "-d", NULL }) == 0, "spawn");
	st = h_wait_exit(&p, START_MS);
	s.daemon = cl_pidfile_pid(s.pidfile, 2000);
	REQUIRE(&t, st == 0 && s.daemon > 0, "first -d: status %#x", st);
	REQUIRE(&t, h_wait_ready(&p, START_MS) == 0, "no READY=1");
	REQUIRE(&t, h_spawn(&q, NULL, (const char *const[]){ "-c", s.conf,
	    "-d", NULL }) == 0, "spawn");
	st = h_wait_exit(&q, START_MS);
	REQUIRE(&t, st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 71,
	    "second -d: status %#x, want 71", st);
	h_log_read(&q, log, sizeof(log));
	snprintf(want, sizeof(want), "already running (pid %d)",
	    (int)s.daemon);
	REQUIRE(&t, strstr(log, want) != NULL, "second -d said: %s; want "
	    "'%s'", log, want);
out:
	h_cleanup(&q);
	scene_cleanup(&s, &p);
	ck_assert_msg(!t.failed, "%s", t.msg);
}
END_TEST

Suite *
startup_suite(void)
{
	Suite *s = suite_create("startup");

	tcase_add_loop_test(h_case(s, "descriptors", 60, NULL),
	    closed_descriptors, 0, H_NELEM(redir_cases));
	h_case(s, "signals", 120, H_TESTS(sighup_storm_at_start));
	h_case(s, "daemon", 60, H_TESTS(detached_relative_config_reloads,
	    second_daemon_names_the_real_pid));
	return s;
}
