/*
 * check_notify: what the service manager is told, and that telling it
 * never blocks.
 *
 * The merge rules and the datagrams they make are pure and tested as
 * tables of event sequences.  Then the real sending, against a datagram
 * socket the test owns and does not read, and the whole daemon with a
 * NOTIFY_SOCKET reader that stops reading (issue 9, defect 17).
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clients.h"
#include "harness.h"
#include "log.h"
#include "notify.h"
#include "suites.h"

#define START_MS 5000

/* ---- the pure part ---- */

struct ev {
	enum notify_event ev;
	const char *status;
	int err;
	uint64_t usec;
};

struct seq_case {
	const char *name;
	struct ev evs[4];
	int nevs;
	const char *want[3]; /* the datagrams, in order; NULL ends */
};

#define READY(s) { NOTIFY_EV_READY, s, 0, 0 }
#define RELOADING(u) { NOTIFY_EV_RELOADING, "reloading", 0, u }
#define STOPPING(s) { NOTIFY_EV_STOPPING, s, 0, 0 }
#define STATUS(s) { NOTIFY_EV_STATUS, s, 0, 0 }
#define FAILURE(e, s) { NOTIFY_EV_FAILURE, s, e, 0 }
#define WATCHDOG { NOTIFY_EV_WATCHDOG, NULL, 0, 0 }

static const struct seq_case seq_cases[] = {
	{ "nothing", { STATUS(NULL) }, 0, { NULL } },
	{ "ready", { READY("up") }, 1, { "READY=1\nSTATUS=up", NULL } },
	{ "a reload and its end: RELOADING first, on its own",
	    { RELOADING(5), READY("done") }, 2,
	    { "RELOADING=1\nMONOTONIC_USEC=5", "READY=1\nSTATUS=done",
	    NULL } },
	{ "an unsent READY is superseded by the next reload",
	    { READY("up"), RELOADING(7) }, 2,
	    { "RELOADING=1\nMONOTONIC_USEC=7\nSTATUS=reloading", NULL } },
	{ "reload, end, reload: the latest reload only",
	    { RELOADING(1), READY("g2"), RELOADING(2) }, 3,
	    { "RELOADING=1\nMONOTONIC_USEC=2\nSTATUS=reloading", NULL } },
	{ "reload, end, reload, end",
	    { RELOADING(1), READY("g2"), RELOADING(2), READY("g3") }, 4,
	    { "RELOADING=1\nMONOTONIC_USEC=2", "READY=1\nSTATUS=g3",
	    NULL } },
	{ "the latest STATUS", { STATUS("a"), STATUS("b") }, 2,
	    { "STATUS=b", NULL } },
	{ "STOPPING ends READY", { READY("up"), STOPPING("bye") }, 2,
	    { "STOPPING=1\nSTATUS=bye", NULL } },
	{ "STOPPING ends RELOADING", { RELOADING(3), STOPPING("bye") }, 2,
	    { "STOPPING=1\nSTATUS=bye", NULL } },
	{ "a failure with errno", { FAILURE(10, "no worker left") }, 1,
	    { "ERRNO=10\nSTATUS=no worker left", NULL } },
	{ "a failure without errno", { FAILURE(0, "x") }, 1,
	    { "STATUS=x", NULL } },
	{ "a ping with a status", { WATCHDOG, STATUS("a") }, 2,
	    { "STATUS=a\nWATCHDOG=1", NULL } },
	{ "a ping alone", { WATCHDOG, WATCHDOG }, 2,
	    { "WATCHDOG=1", NULL } },
};

START_TEST(test_sequences)
{
	const struct seq_case *c = &seq_cases[_i];
	struct notify_pending p;
	char msg[NOTIFY_MSG_MAX];
	unsigned bits;
	int i, k;

	memset(&p, 0, sizeof(p));
	for (i = 0; i < c->nevs; i++)
		notify_merge(&p, c->evs[i].ev, c->evs[i].status, c->evs[i].err,
		    c->evs[i].usec);
	for (k = 0; k < 3; k++) {
		bits = notify_next(&p, msg, sizeof(msg));
		if (c->want[k] == NULL)
			break;
		ck_assert_msg(bits != 0, "%s: datagram %d missing, want '%s'",
		    c->name, k, c->want[k]);
		ck_assert_msg(strcmp(msg, c->want[k]) == 0, "%s: datagram %d "
		    "is '%s', want '%s'", c->name, k, msg, c->want[k]);
		/* Not sent yet: the same datagram again. */
		ck_assert_uint_eq(notify_next(&p, msg, sizeof(msg)), bits);
		notify_sent(&p, bits);
	}
	ck_assert_msg(bits == 0, "%s: an extra datagram '%s'", c->name, msg);
	ck_assert_uint_eq(p.what, 0);
}
END_TEST

START_TEST(test_backoff)
{
	static const uint64_t want[] = { 50, 100, 200, 400, 800, 1000, 1000 };
	unsigned i;

	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		ck_assert_uint_eq(notify_backoff_ms(i), want[i]);
	ck_assert_uint_eq(notify_backoff_ms(1000000), 1000);
}
END_TEST

/* ---- sending, to a socket nobody reads ---- */

static int
bind_manager(char *path, size_t len)
{
	struct sockaddr_un sun;
	int fd;

	snprintf(path, len, "/tmp/echod-notify-test.%d", (int)getpid());
	unlink(path);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	setenv("NOTIFY_SOCKET", path, 1);
	return fd;
}

/* The last datagram waiting on fd, into buf; how many there were. */
static int
read_all(int fd, char *buf, size_t len)
{
	char tmp[NOTIFY_MSG_MAX];
	ssize_t n;
	int count = 0;

	buf[0] = '\0';
	while ((n = recv(fd, tmp, sizeof(tmp) - 1, MSG_DONTWAIT)) >= 0) {
		tmp[n] = '\0';
		snprintf(buf, len, "%s", tmp);
		count++;
	}
	return count;
}

/*
 * A manager that does not read: every call returns at once, the latest
 * state is kept, and it is sent when the manager reads again.
 */
START_TEST(test_full_socket_never_blocks)
{
	char path[108], status[64], last[NOTIFY_MSG_MAX];
	long long t0;
	int fd, i, n;

	fd = bind_manager(path, sizeof(path));
	t0 = h_now_ms();
	ck_assert_uint_eq(notify_retry_at(), UINT64_MAX);
	for (i = 0; i < 2000; i++) {
		snprintf(status, sizeof(status), "status %d", i);
		if (i % 3 == 0)
			notify_reloading();
		notify_ready(status);
	}
	log_set_level(LOG_LVL_ERR); /* the line saying so is not for here */
	notify_fdstore(0, "dropped"); /* cannot go: dropped, not blocking */
	ck_assert_msg(h_now_ms() - t0 < 2000, "2000 notifications to a full "
	    "socket took %lld ms", h_now_ms() - t0);
	ck_assert_msg(notify_retry_at() != UINT64_MAX, "nothing pending "
	    "although the socket is full");
	n = read_all(fd, last, sizeof(last));
	ck_assert_int_gt(n, 0);
	ck_assert_int_lt(n, 2000);
	notify_flush();
	ck_assert_uint_eq(notify_retry_at(), UINT64_MAX);
	ck_assert_int_ge(read_all(fd, last, sizeof(last)), 1);
	ck_assert_str_eq(last, "READY=1\nSTATUS=status 1999");
	close(fd);
	unlink(path);
}
END_TEST

/* No NOTIFY_SOCKET, or one that is not there: nothing pending. */
START_TEST(test_no_manager)
{
	unsetenv("NOTIFY_SOCKET");
	notify_ready("up");
	ck_assert_uint_eq(notify_retry_at(), UINT64_MAX);
	setenv("NOTIFY_SOCKET", "/nonexistent/notify", 1);
	notify_ready("up");
	notify_watchdog();
	ck_assert_uint_eq(notify_retry_at(), UINT64_MAX);
	setenv("NOTIFY_SOCKET", "vsock:2:1234", 1);
	notify_ready("up");
	ck_assert_uint_eq(notify_retry_at(), UINT64_MAX);
}
END_TEST

/* ---- the daemon with a manager that stops reading ---- */

/* Has the last SIGHUP's reload ended ("ready:" after it in the log)? */
static int
reloads_settled(struct echod_proc *p)
{
	static char log[1 << 20];
	const char *hup = NULL, *ready = NULL, *s;

	h_log_read(p, log, sizeof(log));
	for (s = log; (s = strstr(s, "SIGHUP: reloading")) != NULL; s++)
		hup = s;
	for (s = log; (s = strstr(s, "master: ready: generation")) != NULL;
	    s++)
		ready = s;
	return hup != NULL && ready != NULL && ready > hup;
}

/*
 * Read datagrams for timeout_ms; the last one saying READY=1,
 * RELOADING=1 or STOPPING=1 into state.  Returns how many were read.
 */
static int
last_state(struct echod_proc *p, char *state, size_t len, int timeout_ms)
{
	long long deadline = h_now_ms() + timeout_ms;
	int i, n = 0;

	state[0] = '\0';
	do {
		h_drain_notify(p);
		for (i = 0; i < p->nqueued; i++)
			if (strstr(p->queued[i], "READY=1") != NULL ||
			    strstr(p->queued[i], "RELOADING=1") != NULL ||
			    strstr(p->queued[i], "STOPPING=1") != NULL)
				snprintf(state, len, "%s", p->queued[i]);
		n += p->nqueued;
		p->nqueued = 0;
		h_poll_pause();
	} while (h_now_ms() < deadline);
	return n;
}

static const char two_workers[] = "listen = { \"127.0.0.1:0\" }\n"
    "workers = 2\nlog_level = info\n";

/*
 * Defect 17: with a reader that never reads, the master blocked in
 * sd_notify() from about the 6th reload on: a killed worker stayed a
 * zombie and SIGTERM waited.  Now it keeps serving and supervising, and
 * says the latest state once the reader reads again.
 */
START_TEST(stalled_manager_blocks_nothing)
{
	struct echod_proc p;
	struct tres t = { 0, "" };
	pid_t kids[8], w;
	char state[512];
	long long next, deadline;
	int i, n, st;

	cl_proc_init(&p);
	REQUIRE(&t, h_start(&p, two_workers, NULL, START_MS) == 0,
	    "start failed");
	/* From here on, nobody reads NOTIFY_SOCKET. */
	for (i = 0; i < 12; i++) {
		kill(p.pid, SIGHUP);
		next = h_now_ms() + 300;
		while (h_now_ms() < next)
			h_poll_pause();
	}
	deadline = h_now_ms() + 10000;
	while (!reloads_settled(&p) && h_now_ms() < deadline)
		h_poll_pause();
	REQUIRE(&t, reloads_settled(&p), "the last reload did not end within "
	    "10 s while the notify socket was not read");
	deadline = h_now_ms() + 10000;
	while ((n = h_children(p.pid, kids, 8)) != 2 && h_now_ms() < deadline)
		h_poll_pause();
	REQUIRE(&t, n == 2, "%d workers 10 s after the reloads, want 2", n);
	kill(kids[0], SIGKILL);
	REQUIRE(&t, h_log_wait(&p, "killed by signal 9", 5000) &&
	    h_log_wait(&p, "replacing it", 1000), "the killed worker was not "
	    "reaped and replaced within 5 s");
	deadline = h_now_ms() + 5000;
	do {
		n = h_children(p.pid, kids, 8);
		for (i = 0, w = 0; i < n; i++)
			w += h_alive(kids[i]);
	} while (w != 2 && h_now_ms() < deadline && (h_poll_pause(), 1));
	REQUIRE(&t, w == 2, "%d live workers after the kill, want 2", (int)w);
	/* The reader reads again: the latest state arrives, and it is not
	 * "reloading" (what the last datagram the queue took may say). */
	REQUIRE(&t, last_state(&p, state, sizeof(state), 3000) > 0,
	    "no datagram once the notify socket was read again");
	REQUIRE(&t, strstr(state, "READY=1") != NULL, "the last state said "
	    "once the notify socket was read again: '%s'", state);
	kill(p.pid, SIGTERM);
	st = h_wait_exit(&p, 5000);
	REQUIRE(&t, st != -1, "SIGTERM: still running after 5 s");
	REQUIRE(&t, WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status %#x",
	    st);
out:
	cl_stop(&p, 5000);
	cl_conclude(&t, &p);
}
END_TEST

Suite *
notify_suite(void)
{
	Suite *s = suite_create("notify");
	TCase *tc;

	tc = h_case(s, "decisions", 0, H_TESTS(test_backoff));
	tcase_add_loop_test(tc, test_sequences, 0, H_NELEM(seq_cases));
	h_case(s, "sending", 0, H_TESTS(test_full_socket_never_blocks,
	    test_no_manager));
	h_case(s, "daemon", 60, H_TESTS(stalled_manager_blocks_nothing));
	return s;
}
