/*
 * check_sandbox: the workers' seccomp filter.  Unit cases: the allow-list
 * per need, the decision a worker takes under on/off/try, the filter
 * loaded in a forked child (a forbidden call kills it), the KILL_THREAD
 * fallback at libseccomp API level 1.  Integration cases run the real
 * echod under an inherited filter that refuses seccomp() the way
 * systemd's SystemCallFilter=@system-service did, and one that refuses
 * every way to load a filter.
 */
#include <check.h>
#include <errno.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clients.h"
#include "conf.h"
#include "harness.h"
#include "sandbox.h"
#include "suites.h"

#define START_MS 10000
#define STOP_MS 10000

static int
has_call(const int *calls, size_t n, int nr)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (calls[i] == nr)
			return 1;
	return 0;
}

/*
 * Issue 9, defect 7: no worker may call socket() or connect(), whatever
 * its model needs (-d logs through a socket the master made), nor
 * open(), execve() or ptrace(); each need only adds to the base list.
 */
START_TEST(syscalls_per_need)
{
	static const int never[] = { SCMP_SYS(socket), SCMP_SYS(connect),
		SCMP_SYS(openat), SCMP_SYS(execve), SCMP_SYS(ptrace) };
	int calls[64], more[128];
	size_t n, m, k;
	unsigned needs;

	n = sandbox_syscalls(0, calls, 64);
	ck_assert_uint_gt(n, 20);
	for (needs = 0; needs < 16; needs++) {
		m = sandbox_syscalls(needs, more, 128);
		ck_assert_uint_le(m, 128);
		ck_assert_uint_ge(m, n);
		for (k = 0; k < n; k++)
			ck_assert(has_call(more, m, calls[k]));
		for (k = 0; k < sizeof(never) / sizeof(never[0]); k++)
			ck_assert_msg(!has_call(more, m, never[k]), "needs %#x "
			    "allow system call %d", needs, never[k]);
	}
	/* The count is the same when out is too small. */
	ck_assert_uint_eq(sandbox_syscalls(0, calls, 3), n);
}
END_TEST

static const struct {
	int mode, result;
	struct sandbox_verdict want;
} decide_cases[] = {
	{ CONF_SANDBOX_OFF, 0, { SANDBOX_OFF, 0, 0 } },
	{ CONF_SANDBOX_OFF, -1, { SANDBOX_OFF, 0, 0 } },
	{ CONF_SANDBOX_ON, SANDBOX_ON, { SANDBOX_ON, 0, 0 } },
	{ CONF_SANDBOX_ON, SANDBOX_ON_THREAD, { SANDBOX_ON_THREAD, 0, 0 } },
	{ CONF_SANDBOX_ON, SANDBOX_NO_BUILD, { SANDBOX_NO_BUILD, 0, 0 } },
	{ CONF_SANDBOX_ON, -1, { SANDBOX_FAILED, 1, 0 } },
	{ CONF_SANDBOX_TRY, SANDBOX_ON, { SANDBOX_ON, 0, 0 } },
	{ CONF_SANDBOX_TRY, SANDBOX_ON_THREAD, { SANDBOX_ON_THREAD, 0, 0 } },
	{ CONF_SANDBOX_TRY, SANDBOX_NO_BUILD, { SANDBOX_NO_BUILD, 0, 0 } },
	{ CONF_SANDBOX_TRY, -1, { SANDBOX_FAILED, 0, 1 } },
};

START_TEST(decide_table)
{
	struct sandbox_verdict v = sandbox_decide(decide_cases[_i].mode,
	    decide_cases[_i].result);

	ck_assert_int_eq(v.state, decide_cases[_i].want.state);
	ck_assert_int_eq(v.exit, decide_cases[_i].want.exit);
	ck_assert_int_eq(v.warn, decide_cases[_i].want.warn);
}
END_TEST

START_TEST(state_names)
{
	ck_assert_str_eq(sandbox_state_name(SANDBOX_UNKNOWN), "-");
	ck_assert_str_eq(sandbox_state_name(SANDBOX_ON), "on");
	ck_assert_str_eq(sandbox_state_name(SANDBOX_ON_THREAD),
	    "on (kill thread)");
	ck_assert_str_eq(sandbox_state_name(SANDBOX_OFF), "off");
	ck_assert_str_eq(sandbox_state_name(SANDBOX_FAILED),
	    "failed (running without)");
	ck_assert_str_eq(sandbox_state_name(99), "?");
	ck_assert_str_eq(sandbox_state_name(-1), "?");
}
END_TEST

/* ---- the filter, loaded in a child ---- */

/* Child: load the filter (at API level api, 0: as found), then call
 * socket(); exit 0 if socket() worked, 10+ if the set-up failed. */
static int
child_socket(unsigned needs, unsigned api, int want_state)
{
	char err[256];
	int rc, fd;

	if (api != 0 && seccomp_api_set(api) != 0)
		return 10;
	rc = sandbox_enter(needs, err, sizeof(err));
	if (rc != want_state) {
		fprintf(stderr, "sandbox_enter: %d (%s), want %d\n", rc, err,
		    want_state);
		return 11;
	}
	if (want_state == SANDBOX_ON_THREAD &&
	    strstr(err, "KILL_PROCESS is not available") == NULL)
		return 12;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	return fd >= 0 ? 0 : 13;
}

/* The wait status of child_socket run in a child. */
static int
run_child(unsigned needs, unsigned api, int want_state)
{
	pid_t pid;
	int st;

	if ((pid = fork()) == -1)
		return -1;
	if (pid == 0)
		_exit(child_socket(needs, api, want_state));
	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return st;
}

static int
skip_unsupported(const char *name)
{
	if (sandbox_supported())
		return 0;
	fprintf(stderr, "sandbox: %s SKIPPED: a sanitizer build\n", name);
	return 1;
}

/* child_socket in a child under the filter, and how it must end. */
static const struct filter_case {
	const char *what;
	unsigned needs, api;
	int state;
	int sig; /* killed by this signal; 0: exit 0 */
} filter_cases[] = {
	/* Without the need, socket() kills the worker: SIGSYS. */
	{ "socket() under the filter without the need", 0, 0, SANDBOX_ON,
	    SIGSYS },
	{ "socket() with every need", SANDBOX_NEED_POLL |
	    SANDBOX_NEED_THREADS | SANDBOX_NEED_FORK, 0, SANDBOX_ON, SIGSYS },
	/*
	 * Issue 9, defect 9: where seccomp() is refused (libseccomp API
	 * level 1), KILL_PROCESS cannot be had: fall back to KILL_THREAD,
	 * say why, and a forbidden call still ends the (one-thread)
	 * process.
	 */
	{ "API level 1", 0, 1, SANDBOX_ON_THREAD, SIGSYS },
};

START_TEST(filter_table)
{
	const struct filter_case *c = &filter_cases[_i];
	int st;

	if (skip_unsupported(c->what))
		return;
	st = run_child(c->needs, c->api, c->state);
	if (c->sig != 0)
		ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == c->sig,
		    "%s: wait status %#x, want killed by signal %d", c->what,
		    st, c->sig);
	else
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		    "%s: wait status %#x, want exit 0", c->what, st);
}
END_TEST

START_TEST(probe_reports_without_loading_here)
{
	char err[256];
	int rc;

	if (skip_unsupported("probe_reports_without_loading_here"))
		return;
	rc = sandbox_probe(0, err, sizeof(err));
	ck_assert_msg(rc == SANDBOX_ON, "probe: %d (%s)", rc, err);
	/* This process is still free: socket() works. */
	rc = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(rc, 0);
	close(rc);
}
END_TEST

/* ---- the real echod under an inherited filter ---- */

/*
 * Put this (forked) test process under a filter its children inherit:
 * seccomp() fails with EPERM, as under SystemCallFilter=@system-service
 * in systemd 252; with all, prctl(PR_SET_SECCOMP) too, so that no filter
 * can be loaded at all.
 */
static int
refuse_seccomp(int all)
{
	const struct scmp_arg_cmp set_seccomp = { .arg = 0, .op = SCMP_CMP_EQ,
		.datum_a = PR_SET_SECCOMP, .datum_b = 0 };
	scmp_filter_ctx ctx;
	int rc;

	if ((ctx = seccomp_init(SCMP_ACT_ALLOW)) == NULL)
		return -1;
	rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(seccomp),
	    0);
	if (rc == 0 && all)
		rc = seccomp_rule_add_array(ctx, SCMP_ACT_ERRNO(EPERM),
		    SCMP_SYS(prctl), 1, &set_seccomp);
	if (rc == 0)
		rc = seccomp_load(ctx);
	seccomp_release(ctx);
	return rc == 0 ? 0 : -1;
}

/* "Seccomp_filters:" of pid's /proc status; -1 if unknown. */
static int
filters_of(pid_t pid)
{
	char path[64], line[256];
	FILE *f;
	int n = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "re")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "Seccomp_filters: %d", &n) == 1)
			break;
	fclose(f);
	return n;
}

#define CONF_2 "listen = { \"127.0.0.1:0\" }\nworkers = 2\n"

/*
 * Issue 9, defect 9: under the shipped unit every worker logged "sandbox
 * not available: seccomp_init failed; running without it" and had no
 * filter of its own.  Now it loads one with KILL_THREAD, and the log,
 * -t and the scoreboard all say so.
 */
START_TEST(seccomp_refused_still_sandboxed)
{
	static const char *const targs[] = { "echod", "-t", "-c", NULL, NULL };
	const char *argv[5];
	struct echod_proc p;
	struct tres t = { 0 };
	char out[4096];
	pid_t w;
	int n, st;

	cl_proc_init(&p);
	if (skip_unsupported("seccomp_refused_still_sandboxed"))
		return;
	REQUIRE(&t, refuse_seccomp(0) == 0, "cannot install the test filter");
	REQUIRE(&t, h_start(&p, CONF_2, NULL, START_MS) == 0, "no READY=1");
	REQUIRE(&t, (w = h_wait_worker(p.pid, 0, -1, START_MS)) > 0,
	    "no worker 0");
	/* The test's own filter, plus the worker's. */
	REQUIRE(&t, (n = filters_of(w)) >= 2, "worker 0 has %d seccomp "
	    "filter(s): its own never loaded", n);
	REQUIRE(&t, !h_log_wait(&p, "sandbox not available", 0), "the log says "
	    "the sandbox is not available");
	REQUIRE(&t, h_log_wait(&p, "sandbox: on (kill thread): KILL_PROCESS "
	    "is not available", 0), "the start-up log does not say why it "
	    "is KILL_THREAD");
	REQUIRE(&t, kill(p.pid, SIGUSR1) == 0, "SIGUSR1");
	REQUIRE(&t, cl_log_wait(&p, " on (kill thread)", 3, START_MS),
	    "the scoreboard has no sandbox column saying on (kill thread)");
	memcpy(argv, targs, sizeof(argv));
	argv[3] = p.conf_path;
	st = h_run(argv, out, sizeof(out), START_MS);
	REQUIRE(&t, st == 0 && strstr(out, "sandbox: on (kill thread)"),
	    "-t (status %#x) said: %s", st, out);
out:
	cl_conclude(&t, &p);
}
END_TEST

/*
 * Issue 9, defect 9: sandbox = on and no way to load a filter is a
 * start-up failure (71), not a warning; sandbox = off starts.
 */
START_TEST(sandbox_on_unloadable_fails_start)
{
	struct echod_proc p;
	struct tres t = { 0 };
	int st;

	cl_proc_init(&p);
	if (skip_unsupported("sandbox_on_unloadable_fails_start"))
		return;
	REQUIRE(&t, refuse_seccomp(1) == 0, "cannot install the test filter");
	REQUIRE(&t, h_spawn(&p, CONF_2 "sandbox = on\n", NULL) == 0, "spawn");
	st = h_wait_exit(&p, START_MS);
	REQUIRE(&t, st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 71,
	    "sandbox = on without any way to load the filter: wait status "
	    "%#x, want exit 71", st);
	REQUIRE(&t, h_log_wait(&p, "sandbox = on, but the seccomp filter "
	    "cannot load here", 0), "no reason in the log");
	h_cleanup(&p);
	REQUIRE(&t, h_start(&p, CONF_2 "sandbox = off\n", NULL, START_MS) == 0,
	    "sandbox = off: no READY=1");
	st = h_stop(&p, STOP_MS);
	REQUIRE(&t, WIFEXITED(st) && WEXITSTATUS(st) == 0, "stop: %#x", st);
out:
	cl_conclude(&t, &p);
}
END_TEST

Suite *
sandbox_suite(void)
{
	Suite *s = suite_create("sandbox");
	TCase *tc;

	tc = h_case(s, "decisions", 0, H_TESTS(syscalls_per_need,
	    state_names));
	tcase_add_loop_test(tc, decide_table, 0, H_NELEM(decide_cases));
	tc = h_case(s, "filter", 10,
	    H_TESTS(probe_reports_without_loading_here));
	tcase_add_loop_test(tc, filter_table, 0, H_NELEM(filter_cases));
	h_case(s, "echod", 60, H_TESTS(seccomp_refused_still_sandboxed,
	    sandbox_on_unloadable_fails_start));
	return s;
}
