/*
 * upgrade: SIGUSR2's in-place re-execution (src/upgrade.c).
 *
 * The handover's format as a table; then a daemon started from a copy of
 * the binary in its temp dir, so the test can replace the file: the
 * upgrade itself (held connection, a client loop throughout, READY=1
 * with "upgraded to", the same pid, the old workers gone, no descriptor
 * leaked), a binary that fails its -t (refused), and one gone between
 * the check and the exec (execve fails).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clients.h"
#include "harness.h"
#include "procfs.h"
#include "suites.h"
#include "upgrade.h"

/* ---- the format ---- */

static const struct {
	const char *in;
	int ok;
	size_t nls, nworkers;
	int pidfd;
} parse_cases[] = {
	{ "v=0.1.0;ls=5:listen-127.0.0.1_7007:0,6:systemd:1;workers=120,121;"
	  "pidfd=7", 1, 2, 2, 7 },
	{ "v=0.1.0;ls=;workers=;pidfd=-1", 1, 0, 0, -1 },
	{ "pidfd=-1;workers=9;ls=3:listen-x:0;v=1", 1, 1, 1, -1 },
	{ "", 0, 0, 0, 0 },                                   /* nothing */
	{ "v=0.1.0;ls=;workers=", 0, 0, 0, 0 },               /* no pidfd */
	{ "v=0.1.0;ls=2:a:0;workers=;pidfd=-1", 0, 0, 0, 0 }, /* fd 2 */
	{ "v=0.1.0;ls=5:a:2;workers=;pidfd=-1", 0, 0, 0, 0 }, /* proxy 2 */
	{ "v=0.1.0;ls=5::0;workers=;pidfd=-1", 0, 0, 0, 0 },  /* no name */
	{ "v=0.1.0;ls=5:a:0,5:b:0;workers=;pidfd=-1", 0, 0, 0, 0 }, /* twice */
	{ "v=0.1.0;ls=;workers=1;pidfd=-1", 0, 0, 0, 0 },     /* pid 1 */
	{ "v=0.1.0;ls=;workers=12x;pidfd=-1", 0, 0, 0, 0 },
	{ "v=0.1.0;ls=;workers=;pidfd=1", 0, 0, 0, 0 },
	{ "v=0.1.0;v=2;ls=;workers=;pidfd=-1", 0, 0, 0, 0 },  /* repeated */
	{ "v=0.1.0;ls=;workers=;pidfd=-1;x=1", 0, 0, 0, 0 },  /* unknown */
	/* The counters: optional, unsigned 64-bit, and never twice. */
	{ "v=0.1.0;ls=;workers=;pidfd=-1;c=1733490000,18446744073709551615,0",
	  1, 0, 0, -1 },
	{ "v=0.1.0;ls=;workers=;pidfd=-1;c=", 1, 0, 0, -1 },
	{ "v=0.1.0;ls=;workers=;pidfd=-1;c=1,-2", 0, 0, 0, 0 },
	{ "v=0.1.0;ls=;workers=;pidfd=-1;c=1,18446744073709551616", 0, 0, 0, 0 },
	{ "v=0.1.0;ls=;workers=;pidfd=-1;c=1;c=2", 0, 0, 0, 0 },
};

START_TEST(test_parse_table)
{
	struct upgrade_handover h;
	char err[128];
	int rc = upgrade_parse(parse_cases[_i].in, &h, err, sizeof(err));

	ck_assert_msg((rc == 0) == parse_cases[_i].ok, "'%s': rc %d (%s)",
	    parse_cases[_i].in, rc, rc ? err : "");
	if (!parse_cases[_i].ok)
		return;
	ck_assert_uint_eq(h.nls, parse_cases[_i].nls);
	ck_assert_uint_eq(h.nworkers, parse_cases[_i].nworkers);
	ck_assert_int_eq(h.pidfd, parse_cases[_i].pidfd);
}
END_TEST

START_TEST(test_format_round_trip)
{
	struct upgrade_handover h, back;
	char buf[512], small[20], err[128];

	memset(&h, 0, sizeof(h));
	snprintf(h.from, sizeof(h.from), "0.1.0");
	h.ls[0] = (struct upgrade_fd){ 5, "listen-127.0.0.1_7007", 0 };
	h.ls[1] = (struct upgrade_fd){ 9, "listen-[__1]_7008", 1 };
	h.nls = 2;
	h.workers[0] = 4242;
	h.workers[1] = 4243;
	h.nworkers = 2;
	h.pidfd = -1;
	ck_assert_int_eq(upgrade_format(&h, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "v=0.1.0;ls=5:listen-127.0.0.1_7007:0,"
	    "9:listen-[__1]_7008:1;workers=4242,4243;pidfd=-1");
	ck_assert_int_eq(upgrade_parse(buf, &back, err, sizeof(err)), 0);
	ck_assert_str_eq(back.ls[1].name, "listen-[__1]_7008");
	ck_assert_int_eq(back.ls[1].proxy, 1);
	ck_assert_int_eq(back.workers[1], 4243);
	ck_assert_int_eq(upgrade_format(&h, small, sizeof(small)), -1);
	/* With counters: the same numbers back. */
	h.counters[0] = 1733490000;
	h.counters[1] = UINT64_MAX;
	h.ncounters = 2;
	ck_assert_int_eq(upgrade_format(&h, buf, sizeof(buf)), 0);
	ck_assert_ptr_nonnull(strstr(buf, ";pidfd=-1;c=1733490000,"
	    "18446744073709551615"));
	ck_assert_int_eq(upgrade_parse(buf, &back, err, sizeof(err)), 0);
	ck_assert_uint_eq(back.ncounters, 2);
	ck_assert(back.counters[1] == UINT64_MAX);
}
END_TEST

START_TEST(test_argv)
{
	char *argv[] = { "echod", "-d", "-c", "echod.conf" };
	char *again[] = { "echod", "-c", "x", "-c", "/etc/e.conf" };
	char *out[8];

	ck_assert_uint_eq(upgrade_argv(argv, 4, NULL, 1, out), 5);
	ck_assert_str_eq(out[4], "-t");
	ck_assert_ptr_null(out[5]);
	ck_assert_uint_eq(upgrade_argv(argv, 4, "/etc/e.conf", 0, out), 6);
	ck_assert_str_eq(out[4], "-c");
	ck_assert_str_eq(out[5], "/etc/e.conf");
	/* Not appended twice over several upgrades. */
	ck_assert_uint_eq(upgrade_argv(again, 5, "/etc/e.conf", 0, out), 5);
	ck_assert_ptr_null(out[5]);
}
END_TEST

/* ---- the daemon ---- */

#define START_MS 15000
#define MAXKIDS 16

static const char upconf[] =
    "listen = { \"127.0.0.1:0\" }\n"
    "workers = 2\n"
    "shutdown_timeout = 20\n";

/* What the client loop saw. */
struct loop_res {
	int served, refused, failed;
	long long longest_ms;
};

/* Connect, echo, close, in a loop until told to stop (at most 60 s and
 * 20000 clients), noting the longest a client waited for its echo. */
static void
client_loop(const void *arg, int stop_rd, int res_wr)
{
	struct pollfd pfd = { .fd = stop_rd, .events = POLLIN };
	struct loop_res r = { 0, 0, 0, 0 };
	long long end = h_now_ms() + 60000, t0, w;
	int port = *(const int *)arg, i;
	char err[128];

	for (i = 0; i < 20000 && h_now_ms() < end; i++) {
		if (poll(&pfd, 1, 0) == 1)
			break;
		t0 = h_now_ms();
		if (cl_echo_new(port, "upgrade me", 5000, err, sizeof(err)))
			r.served++;
		else if (strstr(err, "refused") != NULL)
			r.refused++;
		else
			r.failed++;
		if ((w = h_now_ms() - t0) > r.longest_ms)
			r.longest_ms = w;
		h_poll_pause();
	}
	(void)!write(res_wr, &r, sizeof(r));
	_exit(0);
}

/* The binary copied (or text written) to path, atomically: a new file
 * renamed over the old, as dpkg does. */
static int
put_binary(const char *path, const char *from, const char *text)
{
	char tmp[160], buf[65536];
	ssize_t n = 0;
	int in = -1, out;

	snprintf(tmp, sizeof(tmp), "%s.new", path);
	if ((out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0755)) == -1)
		return -1;
	if (text != NULL)
		n = write(out, text, strlen(text)) == (ssize_t)strlen(text) ?
		    0 : -1;
	else if ((in = open(from, O_RDONLY)) == -1)
		n = -1;
	else {
		while ((n = read(in, buf, sizeof(buf))) > 0)
			if (write(out, buf, (size_t)n) != n) {
				n = -1;
				break;
			}
		close(in);
	}
	if (close(out) == -1 || n != 0)
		return -1;
	return rename(tmp, path);
}

struct up {
	struct echod_proc p;
	char bin[160], orig[160];
	pid_t old[MAXKIDS];
	int nold, held, fds_before;
};

/* echod from a copy in its temp dir, two workers, one connection held. */
static int
up_start(struct tres *t, struct up *u, const char *conf, int kids)
{
	const char *b = h_echod_bin();

	cl_proc_init(&u->p);
	u->held = -1;
	if (b[0] == '/')
		snprintf(u->orig, sizeof(u->orig), "%s", b);
	else
		REQUIRE(t, getcwd(u->orig, sizeof(u->orig) - 40) != NULL &&
		    strlen(u->orig) + strlen(b) + 2 < sizeof(u->orig), "cwd");
	if (b[0] != '/') {
		strcat(u->orig, "/");
		strcat(u->orig, b);
	}
	REQUIRE(t, mkdtemp(strcpy(u->bin, "/tmp/echod-upbin-XXXXXX")) != NULL,
	    "mkdtemp: %s", strerror(errno));
	/* The master runs as nobody when the test is root: it must exec the
	 * file, and the exec_fails script must be able to remove itself. */
	REQUIRE(t, chmod(u->bin, 0777) == 0, "chmod: %s", strerror(errno));
	strcat(u->bin, "/echod");
	REQUIRE(t, put_binary(u->bin, u->orig, NULL) == 0, "copy %s: %s",
	    u->orig, strerror(errno));
	setenv("ECHOD_BIN", u->bin, 1);
	REQUIRE(t, h_start(&u->p, conf, NULL, START_MS) == 0, "start");
	u->nold = h_children(u->p.pid, u->old, MAXKIDS);
	REQUIRE(t, u->nold == kids, "%d children at start", u->nold);
	REQUIRE(t, (u->held = h_connect(u->p.port, 0)) != -1, "connect");
	REQUIRE(t, cl_echo(u->held, "held", 3000), "held: no echo");
	u->fds_before = pf_count_fds(u->p.pid);
out:
	return !t->failed;
}

static void
up_cleanup(struct up *u)
{
	char dir[160];

	if (u->held != -1)
		close(u->held);
	if (u->bin[0] != '\0') {
		unlink(u->bin);
		strcat(u->bin, ".new");
		unlink(u->bin);
		snprintf(dir, sizeof(dir), "%s", u->bin);
		*strrchr(dir, '/') = '\0';
		rmdir(dir);
	}
}

/* The same workers, the held connection and a new client echoed. */
static int
still_serving(struct tres *t, struct up *u)
{
	pid_t kids[MAXKIDS];
	char err[128];
	int n = h_children(u->p.pid, kids, MAXKIDS), i;

	REQUIRE(t, h_alive(u->p.pid), "the master is gone");
	REQUIRE(t, n == u->nold, "%d children, want the same %d", n, u->nold);
	for (i = 0; i < n; i++)
		REQUIRE(t, cl_pid_in(u->old, u->nold, kids[i]),
		    "child %d is new", (int)kids[i]);
	REQUIRE(t, cl_echo(u->held, "still", 3000), "held: no echo");
	REQUIRE(t, cl_echo_new(u->p.port, "new", 3000, err, sizeof(err)),
	    "new client: %s", err);
	REQUIRE(t, pf_count_fds(u->p.pid) == u->fds_before,
	    "%d descriptors in the master, %d before", pf_count_fds(u->p.pid),
	    u->fds_before);
out:
	return !t->failed;
}

START_TEST(test_upgrade_in_place)
{
	struct tres t = { 0, "" };
	struct cl_child loop = CL_CHILD_INIT;
	struct loop_res r;
	struct up u;
	char ready[512], want[64];
	pid_t kids[MAXKIDS];
	long long t0;
	int n, i;

	memset(&u, 0, sizeof(u));
	REQUIRE(&t, up_start(&t, &u, upconf, 2), "start");
	REQUIRE(&t, cl_child_start(&loop, client_loop, &u.p.port) == 0,
	    "fork the client loop");
	REQUIRE(&t, put_binary(u.bin, u.orig, NULL) == 0, "replace: %s",
	    strerror(errno));
	h_drain_notify(&u.p);
	t0 = h_now_ms();
	REQUIRE(&t, kill(u.p.pid, SIGUSR2) == 0, "SIGUSR2");
	REQUIRE(&t, h_wait_notify(&u.p, "RELOADING=1", 10000, ready,
	    sizeof(ready)) == 0, "no RELOADING=1");
	REQUIRE(&t, h_wait_notify(&u.p, "READY=1", 10000, ready,
	    sizeof(ready)) == 0, "no READY=1 within 10 s of SIGUSR2");
	REQUIRE(&t, strstr(ready, "STATUS=ready: upgraded to ") != NULL,
	    "READY=1 after SIGUSR2: '%s'", ready);
	snprintf(want, sizeof(want), "same pid %d", (int)u.p.pid);
	REQUIRE(&t, h_log_wait(&u.p, want, 3000), "no '%s' in the log", want);
	printf("upgrade: SIGUSR2 -> READY=1 %lld ms\n", h_now_ms() - t0);
	/* The old workers drain: the held connection goes on echoing, for a
	 * second of the client loop's new clients. */
	for (i = 0, t0 = h_now_ms(); i < 400 && h_now_ms() - t0 < 1000; i++) {
		REQUIRE(&t, cl_echo(u.held, "held across", 3000), "held: no "
		    "echo %d after the upgrade", i);
		h_poll_pause();
	}
	n = h_children(u.p.pid, kids, MAXKIDS);
	for (i = 0; i < n; i++)
		if (!cl_pid_in(u.old, u.nold, kids[i]))
			break;
	REQUIRE(&t, i < n, "no new worker among %d children", n);
	close(u.held);
	u.held = -1;
	REQUIRE(&t, cl_wait_gone(&u.p, u.old, u.nold, 15000) == 0,
	    "old workers still there 15 s after the held client closed");
	REQUIRE(&t, h_log_wait(&u.p, "the last worker of the old version is "
	    "gone", 3000), "no 'last worker' line");
	REQUIRE(&t, cl_log_count(&u.p, "reaped unknown child") == 0,
	    "an old worker reaped as unknown");
	REQUIRE(&t, cl_child_finish(&loop, "x", 1, &r, sizeof(r)) == 0,
	    "no result from the client loop");
	printf("upgrade: client loop: %d served, %d refused, %d failed, "
	    "longest wait %lld ms\n", r.served, r.refused, r.failed,
	    r.longest_ms);
	fflush(stdout);
	REQUIRE(&t, r.refused == 0 && r.failed == 0 && r.served >= 20,
	    "client loop: %d served, %d refused, %d failed", r.served,
	    r.refused, r.failed);
	REQUIRE(&t, r.longest_ms < 1000, "a client waited %lld ms",
	    r.longest_ms);
	/* After the old workers are gone: no descriptor more or less. */
	REQUIRE(&t, pf_count_fds(u.p.pid) == u.fds_before, "%d descriptors "
	    "in the master, %d before", pf_count_fds(u.p.pid), u.fds_before);
	REQUIRE_STOPPED(&t, &u.p, 25000);
out:
	cl_child_cleanup(&loop);
	up_cleanup(&u);
	cl_conclude(&t, &u.p);
}
END_TEST

START_TEST(test_upgrade_refused)
{
	struct tres t = { 0, "" };
	struct up u;

	memset(&u, 0, sizeof(u));
	REQUIRE(&t, up_start(&t, &u, upconf, 2), "start");
	REQUIRE(&t, put_binary(u.bin, NULL, "#!/bin/sh\n"
	    "echo 'echod: broken: configuration check failed' >&2\n"
	    "exit 1\n") == 0, "replace: %s", strerror(errno));
	REQUIRE(&t, kill(u.p.pid, SIGUSR2) == 0, "SIGUSR2");
	REQUIRE(&t, h_log_wait(&u.p, "upgrade refused: ", 8000),
	    "no 'upgrade refused'");
	REQUIRE(&t, h_log_wait(&u.p, "-t exited 1: echod: broken: "
	    "configuration check failed; still running version ", 1000),
	    "the refusal does not say why: %s", cl_log_tail(&u.p));
	REQUIRE(&t, still_serving(&t, &u), "not serving after the refusal");
	REQUIRE_STOPPED(&t, &u.p, 25000);
out:
	up_cleanup(&u);
	cl_conclude(&t, &u.p);
}
END_TEST

START_TEST(test_upgrade_exec_fails)
{
	struct tres t = { 0, "" };
	char ready[512];
	struct up u;

	memset(&u, 0, sizeof(u));
	REQUIRE(&t, up_start(&t, &u, upconf, 2), "start");
	/* Passes its -t, and is gone by the time of the exec. */
	REQUIRE(&t, put_binary(u.bin, NULL, "#!/bin/sh\n"
	    "rm -f \"$0\"\nexit 0\n") == 0, "replace: %s", strerror(errno));
	h_drain_notify(&u.p);
	REQUIRE(&t, kill(u.p.pid, SIGUSR2) == 0, "SIGUSR2");
	REQUIRE(&t, h_wait_notify(&u.p, "READY=1", 8000, ready,
	    sizeof(ready)) == 0, "no READY=1 after the failed exec");
	REQUIRE(&t, strstr(ready, "upgrade failed: cannot execute") != NULL &&
	    strstr(ready, "still running version") != NULL, "READY=1: '%s'",
	    ready);
	REQUIRE(&t, still_serving(&t, &u), "not serving after the failure");
	REQUIRE_STOPPED(&t, &u.p, 25000);
out:
	up_cleanup(&u);
	cl_conclude(&t, &u.p);
}
END_TEST

/*
 * The counters go on across an upgrade: /metrics after it shows at least
 * what it showed before (accepted, closed by the client), and the same
 * process_start_time_seconds, the pid being the same.  Without the
 * handover they began again from 0 in the new image.
 */
static int
scrape(int port, unsigned long long *accepted, unsigned long long *closed,
    unsigned long long *start)
{
	static char resp[65536];
	const char get[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";

	return cl_http(port, get, sizeof(get) - 1, resp, sizeof(resp),
	    5000) > 0 &&
	    cl_metric(resp, "echod_connections_accepted_total",
	    accepted) == 0 && cl_metric(resp,
	    "echod_connections_closed_total{reason=\"client\"}", closed) == 0 &&
	    cl_metric(resp, "process_start_time_seconds", start) == 0;
}

START_TEST(test_upgrade_counters)
{
	struct tres t = { 0, "" };
	struct up u;
	char ready[512], err[128];
	unsigned long long a1, c1, s1, a2, c2, s2;
	int port, i;

	memset(&u, 0, sizeof(u));
	REQUIRE(&t, up_start(&t, &u, "listen = { \"127.0.0.1:0\" }\n"
	    "workers = 2\nshutdown_timeout = 20\n"
	    "metrics_listen = \"127.0.0.1:0\"\n", 3), "start");
	REQUIRE(&t, (port = cl_metrics_port(&u.p, 1, 1)) > 0, "no metrics "
	    "port");
	for (i = 0; i < 6; i++)
		REQUIRE(&t, cl_echo_new(u.p.port, "count me", 3000, err,
		    sizeof(err)), "echo %d: %s", i, err);
	REQUIRE(&t, scrape(port, &a1, &c1, &s1), "scrape before");
	REQUIRE(&t, a1 >= 7 && c1 >= 6, "before: %llu accepted, %llu closed",
	    a1, c1);
	REQUIRE(&t, put_binary(u.bin, u.orig, NULL) == 0, "replace: %s",
	    strerror(errno));
	h_drain_notify(&u.p);
	REQUIRE(&t, kill(u.p.pid, SIGUSR2) == 0, "SIGUSR2");
	REQUIRE(&t, h_wait_notify(&u.p, "READY=1", 10000, ready,
	    sizeof(ready)) == 0 && strstr(ready, "upgraded to") != NULL,
	    "no READY=1 'upgraded to' within 10 s: '%s'", ready);
	REQUIRE(&t, (port = cl_metrics_port(&u.p, 2, 2)) > 0, "no metrics "
	    "port after the upgrade");
	REQUIRE(&t, scrape(port, &a2, &c2, &s2), "scrape after");
	printf("upgrade: /metrics before: %llu accepted, %llu closed by the "
	    "client; after: %llu, %llu\n", a1, c1, a2, c2);
	REQUIRE(&t, a2 >= a1 && c2 >= c1, "counters went back: accepted "
	    "%llu -> %llu, closed %llu -> %llu", a1, a2, c1, c2);
	REQUIRE(&t, s2 == s1, "process_start_time_seconds %llu -> %llu", s1,
	    s2);
	REQUIRE(&t, h_log_wait(&u.p, "upgrade: the counters of version", 0),
	    "no line saying the counters were carried over");
	REQUIRE_STOPPED(&t, &u.p, 25000);
out:
	up_cleanup(&u);
	cl_conclude(&t, &u.p);
}
END_TEST

Suite *
upgrade_suite(void)
{
	Suite *s = suite_create("upgrade");
	TCase *tc = tcase_create("format");

	tcase_add_loop_test(tc, test_parse_table, 0, H_NELEM(parse_cases));
	tcase_add_test(tc, test_format_round_trip);
	tcase_add_test(tc, test_argv);
	suite_add_tcase(s, tc);
	h_case(s, "in_place", 90, H_TESTS(test_upgrade_in_place));
	h_case(s, "counters", 60, H_TESTS(test_upgrade_counters));
	h_case(s, "refused", 60, H_TESTS(test_upgrade_refused));
	h_case(s, "exec_fails", 60, H_TESTS(test_upgrade_exec_fails));
	return s;
}
