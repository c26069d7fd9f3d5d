/*
 * check_client: build/echoclient, the lecture's random keep-alive client
 * (tests/bench/echoclient.c), which make demo runs against echod.
 *
 * It must pass a right server and fail a wrong one: against echod it
 * exits 0 having made every exchange (clients x words, counted in its
 * lines and its summary); against a test server that echoes lowercase,
 * or against a port nothing listens on, it exits 1 and says why.  No
 * pauses (-P 0), so the runs take milliseconds; each is bounded by the
 * client's own deadline and by h_run's.
 */
#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clients.h"
#include "harness.h"
#include "suites.h"

#define START_MS 10000
#define STOP_MS 10000
#define RUN_MS 30000    /* one echoclient run, at most */
#define SERVER_MS 30000 /* the lowercase server gives up after this */
#define OUT_LEN 32768
#define LC_CONNS 16

static struct echod_proc ep;

static void
setup(void)
{
	cl_proc_init(&ep);
}

static void
teardown(void)
{
	h_cleanup(&ep);
}

/* $ECHOCLIENT_BIN, else echoclient beside the echod under test. */
static const char *
client_bin(void)
{
	static char path[512];
	const char *env = getenv("ECHOCLIENT_BIN"), *bin = h_echod_bin();
	const char *slash = strrchr(bin, '/');

	if (env != NULL && *env != '\0')
		return env;
	if (slash == NULL)
		return "echoclient";
	snprintf(path, sizeof(path), "%.*s/echoclient", (int)(slash - bin),
	    bin);
	return path;
}

/* Run echoclient against port with no pauses; its wait status. */
static int
run_client(int port, const char *clients, const char *words, char *out,
    size_t outlen)
{
	char p[16];

	snprintf(p, sizeof(p), "%d", port);
	const char *const argv[] = { client_bin(), "-p", p, "-c", clients,
		"-n", words, "-P", "0", "-s", "1", "-t", "20", NULL };
	return h_run(argv, out, outlen, RUN_MS);
}

/* Lines of out containing needle. */
static int
count_lines(const char *out, const char *needle)
{
	const char *line = out, *nl;
	int n = 0;

	while (*line != '\0') {
		nl = strchr(line, '\n');
		if (nl == NULL)
			nl = line + strlen(line);
		if (memmem(line, (size_t)(nl - line), needle, strlen(needle)))
			n++;
		line = *nl == '\0' ? nl : nl + 1;
	}
	return n;
}

START_TEST(right_server_every_exchange)
{
	static char out[OUT_LEN];
	struct tres t = { 0 };
	int st, n;

	cl_must_start(&ep,
	    "listen = { \"127.0.0.1:0\" }\nworkers = 2\nshutdown_timeout = 5\n",
	    START_MS);
	st = run_client(ep.port, "4", "5", out, sizeof(out));
	REQUIRE(&t, cl_exited_with(st, 0),
	    "echoclient: wait status %#x, output:\n%s", st, out);
	n = count_lines(out, "' -> '");
	REQUIRE(&t, n == 20, "%d exchange lines, not 4 x 5:\n%s", n, out);
	REQUIRE(&t, count_lines(out, "WRONG") == 0, "%s", out);
	REQUIRE(&t, strstr(out, "20 exchange(s) right of 20, 0 client(s) "
	    "failed") != NULL, "no summary:\n%s", out);
	REQUIRE_STOPPED(&t, &ep, STOP_MS);
out:
	cl_conclude(&t, &ep);
}
END_TEST

/*
 * A wrong echo server (cl_child): it listens on a loopback port 0, writes
 * the port to res_wr, then echoes every byte lowercased to up to
 * LC_CONNS connections until stop_rd is readable or SERVER_MS passed, and
 * writes how many connections it accepted.
 */
static void
lowercase_server(const void *arg, int stop_rd, int res_wr)
{
	struct pollfd pfd[2 + LC_CONNS];
	long long deadline = h_now_ms() + SERVER_MS;
	int port, lfd, nconn = 0, accepted = 0, i;
	char buf[512];
	ssize_t n;

	(void)arg;
	if ((lfd = cl_listen_lo(&port)) == -1)
		port = -1;
	if (write(res_wr, &port, sizeof(port)) != (ssize_t)sizeof(port) ||
	    lfd == -1)
		_exit(1);
	pfd[0] = (struct pollfd){ .fd = stop_rd, .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = lfd, .events = POLLIN };
	while (h_now_ms() < deadline) {
		if (poll(pfd, (nfds_t)(2 + nconn), 100) <= 0)
			continue;
		if (pfd[0].revents != 0)
			break;
		if ((pfd[1].revents & POLLIN) && nconn < LC_CONNS) {
			pfd[2 + nconn].fd = accept4(lfd, NULL, NULL,
			    SOCK_CLOEXEC);
			pfd[2 + nconn].events = POLLIN;
			pfd[2 + nconn].revents = 0;
			if (pfd[2 + nconn].fd != -1) {
				nconn++;
				accepted++;
			}
		}
		for (i = 2; i < 2 + nconn; i++) {
			if (pfd[i].fd == -1 || pfd[i].revents == 0)
				continue;
			n = read(pfd[i].fd, buf, sizeof(buf));
			if (n <= 0) {
				close(pfd[i].fd);
				pfd[i].fd = -1; /* poll skips it */
				continue;
			}
			for (ssize_t k = 0; k < n; k++)
				buf[k] = (char)tolower((unsigned char)buf[k]);
			if (h_write_all(pfd[i].fd, buf, (size_t)n) == -1) {
				close(pfd[i].fd);
				pfd[i].fd = -1;
			}
		}
	}
	if (write(res_wr, &accepted, sizeof(accepted)) == -1)
		_exit(1);
	_exit(0);
}

START_TEST(wrong_server_fails)
{
	static char out[OUT_LEN];
	struct cl_child c = CL_CHILD_INIT;
	struct pollfd pfd;
	struct tres t = { 0 };
	int port = -1, accepted = 0, st;

	REQUIRE(&t, cl_child_start(&c, lowercase_server, NULL) == 0,
	    "fork: %s", strerror(errno));
	pfd = (struct pollfd){ .fd = c.res_rd, .events = POLLIN };
	REQUIRE(&t, poll(&pfd, 1, 5000) == 1 &&
	    read(c.res_rd, &port, sizeof(port)) == (ssize_t)sizeof(port) &&
	    port > 0, "the lowercase server did not start");
	st = run_client(port, "2", "3", out, sizeof(out));
	REQUIRE(&t, cl_exited_with(st, 1),
	    "echoclient against a lowercase echo: wait status %#x, not exit "
	    "1:\n%s", st, out);
	REQUIRE(&t, count_lines(out, "WRONG, expected '") == 2,
	    "not one WRONG line per client:\n%s", out);
	REQUIRE(&t, strstr(out, "0 exchange(s) right of 6, 2 client(s) "
	    "failed") != NULL, "no summary:\n%s", out);
	REQUIRE(&t, cl_child_finish(&c, "x", 1, &accepted,
	    sizeof(accepted)) == 0 && accepted == 2,
	    "the lowercase server accepted %d connections, not 2", accepted);
out:
	cl_child_cleanup(&c);
	ck_assert_msg(!t.failed, "%s", t.msg);
}
END_TEST

START_TEST(refused_connection_fails)
{
	static char out[OUT_LEN];
	int port = cl_free_port(), st;

	ck_assert_int_gt(port, 0);
	st = run_client(port, "2", "3", out, sizeof(out));
	ck_assert_msg(cl_exited_with(st, 1), "wait status %#x:\n%s", st, out);
	ck_assert_msg(count_lines(out, "Connection refused") == 2, "%s", out);
}
END_TEST

Suite *
client_suite(void)
{
	Suite *s = suite_create("client");

	h_case_fixed(s, "echod", 60, setup, teardown,
	    H_TESTS(right_server_every_exchange));
	h_case(s, "wrong", 60,
	    H_TESTS(wrong_server_fails, refused_connection_fails));
	return s;
}
