/*
 * check_haproxy: echod behind a real HAProxy on loopback (issue 12).
 *
 * Each test starts a "farm" (haproxy.h, harness.h): two echod instances,
 * each with one proxied listener (proxy_listen, proxy_trusted =
 * 127.0.0.1/32) and no plain one, and an HAProxy whose frontend on
 * 127.0.0.1 balances them (leastconn) with send-proxy-v2 and a tcp-check
 * health check (it sends "hello\n", expects "HELLO", with a PROXY header
 * of its own: check-send-proxy), every 500 ms, fall 2, rise 2.  Then:
 * byte-exact echoes through it; the real client address (127.0.0.2 ..
 * 127.0.0.5 as sources) in echod's log and in its per-IP limit; SIGKILL
 * of one instance, HAProxy's detection time and what a client loop saw
 * meanwhile; a restarted instance taken back; a graceful stop that
 * drains.  The figures are printed.
 *
 * Skipped, with a line that says so, only when no haproxy binary runs
 * (.ci/deps.sh installs Debian's).  Every wait is a poll with a
 * deadline, every loop is bounded, every process is stopped by its pid.
 */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clients.h"
#include "harness.h"
#include "haproxy.h"
#include "suites.h"

#define START_MS 5000
#define REPLY_MS 3000
#define UP_MS 5000   /* rise 2 x inter 500 ms, with room on a busy host */
#define DOWN_MS 5000 /* fall 2 x inter 500 ms, the same */
#define NECHOD 2
#define MIB (1024ULL * 1024ULL)

struct farm {
	struct hap_proc h;
	struct hap_conf hc;
	struct echod_proc e[NECHOD];
	int eport[NECHOD];
	int per_ip;
};

static const char *const sv_name[NECHOD] = { "e1", "e2" };

/* An echod behind HAProxy: a proxied listener only, debug lines. */
static const char *
echod_conf(char *buf, size_t len, int port, int per_ip)
{
	snprintf(buf, len,
	    "listen = {}\n"
	    "proxy_listen = { \"127.0.0.1:%d\" }\n"
	    "proxy_trusted = { \"127.0.0.1/32\" }\n"
	    "proxy_timeout = 5\n"
	    "workers = 2\n"
	    "log_level = debug\n"
	    "shutdown_timeout = 20\n"
	    "max_connections_per_ip = %d\n",
	    port, per_ip);
	return buf;
}

/* Instance i on port (0: the kernel's pick, read from READY=1). */
static int
echod_start(struct farm *f, int i, int port, struct tres *t)
{
	char conf[512];

	if (h_start(&f->e[i], echod_conf(conf, sizeof(conf), port, f->per_ip),
	    NULL, START_MS) == -1) {
		cl_fail(t, __LINE__, "echod %s did not start on port %d (ready: "
		    "'%s'); %s", sv_name[i], port, f->e[i].ready,
		    cl_log_tail(&f->e[i]));
		return -1;
	}
	f->eport[i] = f->e[i].port;
	return 0;
}

static void
farm_init(struct farm *f)
{
	int i;

	memset(f, 0, sizeof(*f));
	hap_init(&f->h);
	for (i = 0; i < NECHOD; i++)
		cl_proc_init(&f->e[i]);
}

/* Both echods, then HAProxy, then both servers UP (their check passed). */
static int
farm_start(struct farm *f, int per_ip, struct tres *t)
{
	char err[2048];
	long long ms;
	int i;

	farm_init(f);
	f->per_ip = per_ip;
	for (i = 0; i < NECHOD; i++)
		if (echod_start(f, i, 0, t) == -1)
			return -1;
	hap_conf_init(&f->hc);
	f->hc.nservers = NECHOD;
	for (i = 0; i < NECHOD; i++)
		f->hc.server_port[i] = f->eport[i];
	if (hap_start(&f->h, &f->hc, START_MS, err, sizeof(err)) == -1) {
		cl_fail(t, __LINE__, "%s", err);
		return -1;
	}
	for (i = 0; i < NECHOD; i++) {
		if ((ms = hap_wait_state(&f->h, sv_name[i], HAP_UP, UP_MS)) < 0) {
			cl_fail(t, __LINE__, "HAProxy does not see %s UP with a "
			    "passed check within %d ms", sv_name[i], UP_MS);
			return -1;
		}
	}
	return 0;
}

static void
dump_file(const char *what, const char *path)
{
	static char buf[8192];
	size_t n = 0;
	long sz;
	FILE *fp;

	if ((fp = fopen(path, "re")) == NULL)
		return;
	if (fseek(fp, 0, SEEK_END) == 0 && (sz = ftell(fp)) > 4096)
		fseek(fp, sz - 4096, SEEK_SET);
	else
		fseek(fp, 0, SEEK_SET);
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	fprintf(stderr, "---- %s (%s), the end ----\n%s----\n", what, path, buf);
}

/* On failure the logs of all three; stop everything by pid; assert. */
static void
farm_conclude(struct tres *t, struct farm *f)
{
	int i;

	if (t->failed) {
		fprintf(stderr, "---- failed: %s\n", t->msg);
		for (i = 0; i < NECHOD; i++)
			if (f->e[i].dir[0] != '\0')
				dump_file(sv_name[i], f->e[i].log_path);
		if (f->h.dir[0] != '\0')
			dump_file("haproxy", f->h.log_path);
	}
	hap_stop(&f->h, 3000);
	hap_cleanup(&f->h);
	for (i = 0; i < NECHOD; i++)
		h_cleanup(&f->e[i]);
	ck_assert_msg(!t->failed, "%s", t->msg);
}

/* Which instance's log has needle (polling both): its index, or -1. */
static int
farm_log_wait(struct farm *f, const char *needle, int timeout_ms)
{
	long long deadline = h_now_ms() + timeout_ms;
	int i;

	do {
		for (i = 0; i < NECHOD; i++)
			if (f->e[i].pid > 0 && cl_log_count(&f->e[i], needle) > 0)
				return i;
		h_poll_pause();
	} while (h_now_ms() < deadline);
	return -1;
}

/* A client from src through HAProxy; its own port into *sport. */
static int
client(struct farm *f, const char *src, int *sport)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	int fd = cl_connect(src, "127.0.0.1", f->h.port);

	if (fd != -1 && sport != NULL) {
		*sport = getsockname(fd, (struct sockaddr *)&sin, &sl) == 0 ?
		    ntohs(sin.sin_port) : -1;
	}
	return fd;
}

/* be/sv's current sessions ("scur"), or -1. */
static int
sessions(struct farm *f, int i)
{
	char v[32];

	return hap_server_field(&f->h, sv_name[i], "scur", v, sizeof(v)) == 0 ?
	    atoi(v) : -1;
}

/* ---- echoes ---- */

START_TEST(stream_and_every_byte)
{
	unsigned char msg[2048], got[sizeof(msg)], want[sizeof(msg)];
	struct tres t = { 0, "" };
	struct farm f;
	char err[512];
	long long t0;
	size_t n, i;
	int fd = -1;

	if (farm_start(&f, 0, &t) == -1)
		goto out;
	/* 64 MiB of every byte value, then the half-close: EOF back. */
	REQUIRE(&t, (fd = client(&f, NULL, NULL)) != -1, "connect to "
	    "HAProxy: %s", strerror(errno));
	t0 = h_now_ms();
	REQUIRE(&t, cl_stream_echo(fd, 64 * MIB, 0x9E3779B97F4A7C15ULL, 40000,
	    err, sizeof(err)), "through HAProxy: %s", err);
	printf("haproxy: 64 MiB echoed byte-exact through HAProxy, half-close "
	    "answered by EOF, in %lld ms\n", h_now_ms() - t0);
	close(fd);
	/* Every byte value, both ways round, on a second connection. */
	for (i = 0; i < sizeof(msg); i++)
		msg[i] = (unsigned char)(i < 1024 ? i : 2047 - i);
	memcpy(want, msg, sizeof(want));
	cl_upper(want, sizeof(want));
	REQUIRE(&t, (fd = client(&f, NULL, NULL)) != -1, "connect: %s",
	    strerror(errno));
	REQUIRE(&t, h_write_all(fd, msg, sizeof(msg)) == 0, "send: %s",
	    strerror(errno));
	n = h_read_exact(fd, got, sizeof(got), REPLY_MS);
	REQUIRE(&t, n == sizeof(got), "%zu of %zu bytes back", n, sizeof(got));
	REQUIRE(&t, memcmp(got, want, n) == 0, "every-byte reply differs");
	REQUIRE(&t, cl_finish(fd, REPLY_MS), "no EOF after the half-close");
out:
	cl_close_fds(&fd, 1);
	farm_conclude(&t, &f);
}
END_TEST

/* ---- the real client's address ---- */

START_TEST(logs_real_client_address)
{
	struct tres t = { 0, "" };
	struct farm f;
	char src[32], msg[64], needle[96];
	int fd = -1, sport[4], n, i, where[NECHOD] = { 0, 0 };

	if (farm_start(&f, 0, &t) == -1)
		goto out;
	for (n = 0; n < 4; n++) {
		snprintf(src, sizeof(src), "127.0.0.%d", n + 2);
		snprintf(msg, sizeof(msg), "hello from %s\n", src);
		REQUIRE(&t, (fd = client(&f, src, &sport[n])) != -1,
		    "connect from %s: %s", src, strerror(errno));
		REQUIRE(&t, cl_echo(fd, msg, REPLY_MS), "no echo for %s", src);
		REQUIRE(&t, cl_finish(fd, REPLY_MS), "no EOF for %s", src);
		cl_close_fds(&fd, 1);
	}
	/* The debug close line: the client, "via" HAProxy's own end. */
	for (n = 0; n < 4; n++) {
		snprintf(needle, sizeof(needle), "127.0.0.%d:%d via 127.0.0.1:",
		    n + 2, sport[n]);
		i = farm_log_wait(&f, needle, REPLY_MS);
		REQUIRE(&t, i >= 0, "no '%s' line in either echod's log", needle);
		where[i]++;
		REQUIRE(&t, cl_log_wait(&f.e[i], "closed: client closed", 1, 100),
		    "no close line in %s's log", sv_name[i]);
	}
	printf("haproxy: 4 clients from 127.0.0.2..5 logged by their own "
	    "address via HAProxy: %d by e1, %d by e2\n", where[0], where[1]);
	fflush(stdout);
out:
	cl_close_fds(&fd, 1);
	farm_conclude(&t, &f);
}
END_TEST

/* ---- per-IP limits count the real client ---- */

#define HELD 4 /* max_connections_per_ip 2 on each of the two instances */

START_TEST(per_ip_limit_counts_real_client)
{
	struct tres t = { 0, "" };
	struct farm f;
	char needle[64], line[512];
	int held[HELD], fd = -1, g = -1, i, k, sport0 = -1;

	for (i = 0; i < HELD; i++)
		held[i] = -1;
	if (farm_start(&f, 2, &t) == -1)
		goto out;
	/* leastconn spreads them: two from 127.0.0.2 on each instance. */
	for (i = 0; i < HELD; i++) {
		REQUIRE(&t, (held[i] = client(&f, "127.0.0.2",
		    i == 0 ? &sport0 : NULL)) != -1, "connect: %s",
		    strerror(errno));
		REQUIRE(&t, cl_echo(held[i], "held\n", REPLY_MS),
		    "held client %d from 127.0.0.2 not served", i);
	}
	for (i = 0; i < NECHOD; i++)
		REQUIRE(&t, sessions(&f, i) == 2, "%s has %d sessions, want 2",
		    sv_name[i], sessions(&f, i));
	/* A fifth from 127.0.0.2: over the limit wherever it lands. */
	REQUIRE(&t, (fd = client(&f, "127.0.0.2", NULL)) != -1, "connect: %s",
	    strerror(errno));
	k = cl_reply(fd, "one too many\n", REPLY_MS);
	cl_close_fds(&fd, 1);
	i = farm_log_wait(&f, "refused 127.0.0.2:", REPLY_MS);
	REQUIRE(&t, i >= 0 && cl_log_line(&f.e[i], "refused 127.0.0.2:", line,
	    sizeof(line)), "no 'refused 127.0.0.2:...' line in either log (the "
	    "5th client was %s)", k == 1 ? "echoed: the limit does not count "
	    "the real client" : "not echoed");
	/*
	 * HAProxy may send the header and the client's first bytes in one
	 * segment: a refused client must not get those echoed either.
	 */
	REQUIRE(&t, k == 0, "a 5th client from 127.0.0.2 was %s", k == 1 ?
	    "refused (see the log) but echoed first: the bytes that came with "
	    "its PROXY header went back before the per-IP check closed it" :
	    "neither echoed nor closed");
	REQUIRE(&t, strstr(line, " via 127.0.0.1:") != NULL &&
	    strstr(line, "max_connections_per_ip") != NULL, "refusal line: %s",
	    line);
	/* Another client, behind the same HAProxy, is not throttled. */
	for (i = 0; i < 2; i++) {
		REQUIRE(&t, (g = client(&f, "127.0.0.3", NULL)) != -1,
		    "connect: %s", strerror(errno));
		REQUIRE(&t, cl_echo(g, "from .3\n", REPLY_MS), "a client from "
		    "127.0.0.3 was not served while 127.0.0.2 is at its limit");
		cl_close_fds(&g, 1);
	}
	/* One of 127.0.0.2's closes (echod logs it): leastconn sends the
	 * next one to that instance, which now lets it in. */
	cl_close_fds(&held[0], 1);
	snprintf(needle, sizeof(needle), "127.0.0.2:%d via ", sport0);
	REQUIRE(&t, farm_log_wait(&f, needle, REPLY_MS) >= 0, "no close line "
	    "'%s...' for the first held client", needle);
	for (k = 0; k < 400 && sessions(&f, 0) + sessions(&f, 1) != 3; k++)
		h_poll_pause();
	REQUIRE(&t, (fd = client(&f, "127.0.0.2", NULL)) != -1, "connect: %s",
	    strerror(errno));
	REQUIRE(&t, cl_echo(fd, "my turn\n", REPLY_MS), "127.0.0.2 not let "
	    "back in after one of its connections closed");
	printf("haproxy: max_connections_per_ip = 2 on each instance: 4 "
	    "clients from 127.0.0.2 held, a 5th closed by echod (%s), "
	    "127.0.0.3 served, 127.0.0.2 let in again after a close\n", line);
	fflush(stdout);
out:
	cl_close_fds(&fd, 1);
	cl_close_fds(&g, 1);
	cl_close_fds(held, HELD);
	farm_conclude(&t, &f);
}
END_TEST

/* ---- an instance dies ---- */

/* SIGKILL instance i's master (its workers follow: PR_SET_PDEATHSIG),
 * reap it, wait until its workers are gone too. */
static int
kill_instance(struct farm *f, int i, struct tres *t)
{
	pid_t kids[64];
	int n = h_children(f->e[i].pid, kids, 64);

	if (kill(f->e[i].pid, SIGKILL) == -1) {
		cl_fail(t, __LINE__, "kill: %s", strerror(errno));
		return -1;
	}
	if (h_wait_exit(&f->e[i], 5000) == -1 ||
	    cl_wait_gone(NULL, kids, n, 5000) != 0) {
		cl_fail(t, __LINE__, "%s's processes outlived SIGKILL of its "
		    "master by 5 s", sv_name[i]);
		return -1;
	}
	return 0;
}

static int
stat_num(struct farm *f, int i, const char *field)
{
	char v[32];

	return hap_server_field(&f->h, sv_name[i], field, v, sizeof(v)) == 0 ?
	    atoi(v) : -1;
}

/*
 * A client loop beside the test (a cl_child): connect through HAProxy,
 * echo one line, close, one every gap_ms, until the test sends its
 * window (kill .. DOWN), then `after` more.  Each connection is counted
 * by when it ran: before the window, overlapping it, or after it.
 * Paced, so that its bounded count lasts through any window.
 */
#define PACE_MAX 20000

enum pace_phase { PH_BEFORE, PH_DURING, PH_AFTER, PH_N };
enum pace_out { PO_OK, PO_REFUSED, PO_FAILED, PO_NOECHO, PO_N };

struct pace {
	int port, gap_ms, run_ms, after;
};

struct pace_res {
	int n[PH_N][PO_N];
	int iters;
};

static long long pace_began[PACE_MAX], pace_ended[PACE_MAX];
static unsigned char pace_outcome[PACE_MAX];

static enum pace_out
pace_once(int port, int i)
{
	char msg[64];
	int fd, ok;

	if ((fd = h_connect(port, 0)) == -1)
		return errno == ECONNREFUSED ? PO_REFUSED : PO_FAILED;
	snprintf(msg, sizeof(msg), "client %d through haproxy\n", i);
	ok = cl_echo(fd, msg, REPLY_MS);
	close(fd);
	return ok ? PO_OK : PO_NOECHO;
}

static void pace_run(const void *, int, int) __attribute__((noreturn));

static void
pace_run(const void *arg, int stop_rd, int res_wr)
{
	const struct pace *a = arg;
	struct pollfd pfd = { .fd = stop_rd, .events = POLLIN };
	struct cl_probe_window w = { 0, 0 };
	long long deadline = h_now_ms() + a->run_ms;
	struct pace_res r;
	enum pace_phase ph;
	int i, after = -1;

	memset(&r, 0, sizeof(r));
	for (i = 0; i < PACE_MAX && h_now_ms() < deadline && after < a->after;
	    i++) {
		if (after < 0 && poll(&pfd, 1, 0) > 0) {
			if (read(stop_rd, &w, sizeof(w)) != (ssize_t)sizeof(w))
				_exit(1);
			after = 0;
		}
		if (after >= 0)
			after++;
		pace_began[i] = h_now_ms();
		pace_outcome[i] = (unsigned char)pace_once(a->port, i);
		pace_ended[i] = h_now_ms();
		poll(NULL, 0, a->gap_ms); /* pacing, not a wait for anything */
	}
	r.iters = i;
	while (--i >= 0) {
		ph = pace_ended[i] < w.from ? PH_BEFORE :
		    pace_began[i] > w.to ? PH_AFTER : PH_DURING;
		r.n[ph][pace_outcome[i]]++;
	}
	if (write(res_wr, &r, sizeof(r)) != (ssize_t)sizeof(r))
		_exit(1);
	_exit(0);
}

static int
pace_start(struct cl_child *c, const struct pace *a)
{
	return cl_child_start(c, pace_run, a);
}

static int
pace_finish(struct cl_child *c, const struct cl_probe_window *w,
    struct pace_res *r)
{
	return cl_child_finish(c, w, sizeof(*w), r, sizeof(*r));
}

static int
pace_bad(const struct pace_res *r, enum pace_phase ph)
{
	return r->n[ph][PO_REFUSED] + r->n[ph][PO_FAILED] +
	    r->n[ph][PO_NOECHO];
}

static void
pace_print(const char *what, const char *window, const struct pace_res *r)
{
	static const char *const name[PH_N] = { "before", "during", "after" };
	int ph;

	printf("haproxy: %s: %d new connections through HAProxy, one every "
	    "2 ms; %s:", what, r->iters, window);
	for (ph = 0; ph < PH_N; ph++)
		printf(" %s: %d served, %d refused, %d failed, %d not echoed%s",
		    name[ph], r->n[ph][PO_OK], r->n[ph][PO_REFUSED],
		    r->n[ph][PO_FAILED], r->n[ph][PO_NOECHO],
		    ph + 1 < PH_N ? ";" : "\n");
	fflush(stdout);
}

START_TEST(sigkill_fails_over)
{
	struct tres t = { 0, "" };
	struct pace a = { 0, 2, 20000, 250 };
	struct pace_res r;
	struct cl_probe_window w;
	struct cl_child pr = CL_CHILD_INIT;
	struct farm f;
	char window[128];
	long long down_ms;
	int k;

	if (farm_start(&f, 0, &t) == -1)
		goto out;
	a.port = f.h.port;
	REQUIRE(&t, pace_start(&pr, &a) == 0, "cannot start the client loop");
	/* Some served by both first: the loop is going. */
	for (k = 0; k < 2000 && !(cl_log_count(&f.e[0], "via 127.0.0.1:") >
	    5 && cl_log_count(&f.e[1], "via 127.0.0.1:") > 5); k++)
		h_poll_pause();
	w.from = h_now_ms();
	if (kill_instance(&f, 0, &t) == -1)
		goto out;
	down_ms = hap_wait_state(&f.h, "e1", HAP_DOWN, DOWN_MS);
	w.to = h_now_ms();
	REQUIRE(&t, down_ms >= 0, "HAProxy did not mark e1 DOWN within %d ms "
	    "of its SIGKILL", DOWN_MS);
	REQUIRE(&t, pace_finish(&pr, &w, &r) == 0, "no client loop result");
	snprintf(window, sizeof(window), "SIGKILL of e1 to DOWN: %lld ms "
	    "(inter %d ms, fall %d)", w.to - w.from, f.hc.inter_ms,
	    f.hc.fall);
	pace_print("e1 SIGKILLed", window, &r);
	printf("haproxy: e1 SIGKILLed: HAProxy's own count for e1: %d "
	    "connection retries, %d redispatches to e2\n",
	    stat_num(&f, 0, "wretr"), stat_num(&f, 0, "wredis"));
	fflush(stdout);
	/*
	 * Until DOWN, HAProxy still picks e1 (leastconn: it has the fewest
	 * connections, none), but a connection to the dead port is refused
	 * by the kernel at once: HAProxy retries it on e2 (option
	 * redispatch 1) and the client never knows.  Lost can only be a
	 * connection that e1 had already taken when it died: the loop has
	 * one open at a time.
	 */
	REQUIRE(&t, r.n[PH_BEFORE][PO_OK] > 0 && pace_bad(&r, PH_BEFORE) == 0,
	    "before the kill: %d served, %d lost", r.n[PH_BEFORE][PO_OK],
	    pace_bad(&r, PH_BEFORE));
	REQUIRE(&t, r.n[PH_DURING][PO_REFUSED] == 0 &&
	    r.n[PH_DURING][PO_FAILED] + r.n[PH_DURING][PO_NOECHO] <= 1,
	    "during detection: %d refused, %d failed, %d not echoed",
	    r.n[PH_DURING][PO_REFUSED], r.n[PH_DURING][PO_FAILED],
	    r.n[PH_DURING][PO_NOECHO]);
	REQUIRE(&t, r.n[PH_DURING][PO_OK] > 0, "no client ran during the "
	    "detection window");
	REQUIRE(&t, r.n[PH_AFTER][PO_OK] >= 200 && pace_bad(&r, PH_AFTER) == 0,
	    "after DOWN: %d served, %d lost", r.n[PH_AFTER][PO_OK],
	    pace_bad(&r, PH_AFTER));
out:
	cl_child_cleanup(&pr);
	farm_conclude(&t, &f);
}
END_TEST

START_TEST(restarted_instance_rejoins)
{
	struct tres t = { 0, "" };
	struct farm f;
	int fds[4] = { -1, -1, -1, -1 }, i, port;
	long long up_ms;

	if (farm_start(&f, 0, &t) == -1)
		goto out;
	port = f.eport[0];
	if (kill_instance(&f, 0, &t) == -1)
		goto out;
	REQUIRE(&t, hap_wait_state(&f.h, "e1", HAP_DOWN, DOWN_MS) >= 0,
	    "e1 not DOWN within %d ms", DOWN_MS);
	h_cleanup(&f.e[0]);
	/* A new echod on the same port, as a supervisor would restart it. */
	if (echod_start(&f, 0, port, &t) == -1)
		goto out;
	up_ms = hap_wait_state(&f.h, "e1", HAP_UP, UP_MS);
	REQUIRE(&t, up_ms >= 0, "restarted e1 not UP within %d ms", UP_MS);
	printf("haproxy: e1 restarted on port %d: UP again %lld ms after its "
	    "READY=1 (inter %d ms, rise %d)\n", port, up_ms, f.hc.inter_ms,
	    f.hc.rise);
	fflush(stdout);
	/* leastconn sends the new clients to the empty instance first. */
	for (i = 0; i < 4; i++) {
		REQUIRE(&t, (fds[i] = client(&f, "127.0.0.6", NULL)) != -1,
		    "connect: %s", strerror(errno));
		REQUIRE(&t, cl_echo(fds[i], "back again\n", REPLY_MS),
		    "client %d not served", i);
	}
	cl_close_fds(fds, 4);
	REQUIRE(&t, cl_log_wait(&f.e[0], "127.0.0.6:", 1, REPLY_MS),
	    "the restarted e1 served none of 4 new clients: %s",
	    cl_log_tail(&f.e[0]));
out:
	cl_close_fds(fds, 4);
	farm_conclude(&t, &f);
}
END_TEST

/* ---- a graceful stop drains ---- */

START_TEST(graceful_stop_drains)
{
	struct tres t = { 0, "" };
	struct pace a = { 0, 2, 20000, 100 };
	struct pace_res r;
	struct cl_probe_window w;
	struct cl_child pr = CL_CHILD_INIT;
	struct farm f;
	char window[128];
	int fds[2] = { -1, -1 }, i, st;
	long long down_ms, exit_ms;

	if (farm_start(&f, 0, &t) == -1)
		goto out;
	/* One held client on each instance (leastconn). */
	for (i = 0; i < 2; i++) {
		REQUIRE(&t, (fds[i] = client(&f, i ? "127.0.0.8" : "127.0.0.7",
		    NULL)) != -1, "connect: %s", strerror(errno));
		REQUIRE(&t, cl_echo(fds[i], "held\n", REPLY_MS), "not served");
	}
	REQUIRE(&t, sessions(&f, 0) == 1 && sessions(&f, 1) == 1,
	    "sessions %d and %d, want one each", sessions(&f, 0),
	    sessions(&f, 1));
	a.port = f.h.port;
	REQUIRE(&t, pace_start(&pr, &a) == 0, "cannot start the client loop");
	w.from = h_now_ms();
	REQUIRE(&t, kill(f.e[0].pid, SIGTERM) == 0, "kill: %s",
	    strerror(errno));
	down_ms = hap_wait_state(&f.h, "e1", HAP_DOWN, DOWN_MS);
	w.to = h_now_ms();
	REQUIRE(&t, down_ms >= 0, "e1 not DOWN within %d ms of SIGTERM",
	    DOWN_MS);
	/* Both held clients still echo: e1 drains its one. */
	for (i = 0; i < 2; i++)
		REQUIRE(&t, cl_echo(fds[i], "still here\n", REPLY_MS),
		    "held client %d stopped echoing after e1's SIGTERM", i);
	REQUIRE(&t, h_alive(f.e[0].pid), "e1 exited with a client open");
	REQUIRE(&t, pace_finish(&pr, &w, &r) == 0, "no client loop result");
	snprintf(window, sizeof(window), "SIGTERM of e1 to DOWN: %lld ms",
	    w.to - w.from);
	pace_print("e1 stopped (SIGTERM)", window, &r);
	/* Its listener closed: refused by the kernel, redispatched. */
	REQUIRE(&t, pace_bad(&r, PH_BEFORE) + pace_bad(&r, PH_AFTER) == 0 &&
	    r.n[PH_DURING][PO_REFUSED] == 0 &&
	    pace_bad(&r, PH_DURING) <= 1, "new clients lost while e1 drains: "
	    "%d before, %d during, %d after", pace_bad(&r, PH_BEFORE),
	    pace_bad(&r, PH_DURING), pace_bad(&r, PH_AFTER));
	/* The held ones close: e1 is done, well before shutdown_timeout. */
	cl_close_fds(fds, 2);
	st = h_wait_exit(&f.e[0], 10000);
	exit_ms = h_now_ms() - w.from;
	REQUIRE(&t, cl_exited_with(st, 0), "e1 did not exit 0 within 10 s of "
	    "its last client's close (status %#x)", st);
	printf("haproxy: SIGTERM of e1: DOWN after %lld ms, its held client "
	    "echoed until it closed, e1 exited 0 %lld ms after SIGTERM "
	    "(shutdown_timeout 20 s)\n", down_ms, exit_ms);
	fflush(stdout);
	REQUIRE(&t, cl_log_count(&f.e[0], "127.0.0.7:") +
	    cl_log_count(&f.e[0], "127.0.0.8:") == 1, "e1's log does not show "
	    "exactly one of the held clients closing");
out:
	cl_child_cleanup(&pr);
	cl_close_fds(fds, 2);
	farm_conclude(&t, &f);
}
END_TEST

/* ---- the harness's pure functions ---- */

static const char stat_csv[] =
    "# pxname,svname,qcur,scur,status,check_status\n"
    "fe,FRONTEND,,0,OPEN,\n"
    "be,e1,0,3,UP,L7OK\n"
    "be,e2,0,0,DOWN 1/2,L4CON\n"
    "be,BACKEND,0,3,UP,\n";

static const struct {
	const char *px, *sv, *field, *want; /* want NULL: -1 */
} stat_cases[] = {
	{ "be", "e1", "status", "UP" },
	{ "be", "e1", "scur", "3" },
	{ "be", "e1", "check_status", "L7OK" },
	{ "be", "e2", "status", "DOWN 1/2" },
	{ "be", "e2", "check_status", "L4CON" },
	{ "fe", "FRONTEND", "status", "OPEN" },
	{ "fe", "FRONTEND", "qcur", "" },
	{ "be", "e1", "pxname", "be" },
	{ "be", "e3", "status", NULL },
	{ "be", "e1", "nosuch", NULL },
	{ "xx", "e1", "status", NULL },
};

START_TEST(stat_field_table)
{
	char out[64];
	int rc = hap_stat_field(stat_csv, stat_cases[_i].px,
	    stat_cases[_i].sv, stat_cases[_i].field, out, sizeof(out));

	if (stat_cases[_i].want == NULL) {
		ck_assert_int_eq(rc, -1);
	} else {
		ck_assert_int_eq(rc, 0);
		ck_assert_str_eq(out, stat_cases[_i].want);
	}
	ck_assert_int_eq(hap_stat_field("no header\n", "be", "e1", "status",
	    out, sizeof(out)), -1);
}
END_TEST

static const struct {
	const char *status;
	enum hap_state want;
} state_cases[] = {
	{ "UP", HAP_UP }, { "UP 1/2", HAP_UP }, { "DOWN", HAP_DOWN },
	{ "DOWN 1/2", HAP_DOWN }, { "MAINT", HAP_MAINT },
	{ "MAINT (via be/e1)", HAP_MAINT }, { "no check", HAP_UNKNOWN },
	{ "", HAP_UNKNOWN }, { "UPPER", HAP_UNKNOWN }, { "DOWNTIME", HAP_UNKNOWN },
};

START_TEST(state_of_table)
{
	ck_assert_int_eq(hap_state_of(state_cases[_i].status),
	    state_cases[_i].want);
}
END_TEST

START_TEST(config_text)
{
	struct hap_conf c;
	char buf[4096];

	hap_conf_init(&c);
	c.port = 7000;
	c.nservers = 2;
	c.server_port[0] = 7001;
	c.server_port[1] = 7002;
	c.sock_path = "/tmp/x/stats.sock";
	ck_assert_int_gt(hap_config(&c, buf, sizeof(buf)), 0);
	ck_assert_ptr_nonnull(strstr(buf, "    bind 127.0.0.1:7000\n"));
	ck_assert_ptr_nonnull(strstr(buf, "    balance leastconn\n"));
	ck_assert_ptr_nonnull(strstr(buf, "    tcp-check send hello\\n\n"));
	ck_assert_ptr_nonnull(strstr(buf, "    tcp-check expect string HELLO\n"));
	ck_assert_ptr_nonnull(strstr(buf, "inter 500 fall 2 rise 2 "
	    "send-proxy-v2 check-send-proxy\n"));
	ck_assert_ptr_nonnull(strstr(buf, "    option redispatch 1\n"));
	ck_assert_ptr_nonnull(strstr(buf, "    server e2 127.0.0.1:7002 check\n"));
	ck_assert_ptr_nonnull(strstr(buf, "stats socket /tmp/x/stats.sock "));
	ck_assert_ptr_null(strstr(buf, "daemon"));
	c.send_proxy = 0;
	ck_assert_int_gt(hap_config(&c, buf, sizeof(buf)), 0);
	ck_assert_ptr_null(strstr(buf, "send-proxy"));
	ck_assert_int_eq(hap_config(&c, buf, 100), -1); /* does not fit */
	c.server_port[1] = 0;
	ck_assert_int_eq(hap_config(&c, buf, sizeof(buf)), -1);
	c.server_port[1] = 7002;
	c.nservers = HAP_MAX_SERVERS + 1;
	ck_assert_int_eq(hap_config(&c, buf, sizeof(buf)), -1);
}
END_TEST

/* The example a user copies is one HAProxy takes. */
START_TEST(example_config_valid)
{
	const char *argv[] = { hap_bin(), "-c", "-f", "conf/haproxy.cfg.example",
		NULL };
	char out[4096];
	int st = h_run(argv, out, sizeof(out), 10000);

	ck_assert_msg(cl_exited_with(st, 0), "haproxy -c -f "
	    "conf/haproxy.cfg.example: status %#x: %s", st, out);
}
END_TEST

START_TEST(haproxy_missing)
{
	fprintf(stderr, "haproxy: the HAProxy cases SKIPPED: no '%s' that "
	    "runs (install Debian's haproxy: sh .ci/deps.sh; or set "
	    "HAPROXY_BIN)\n", hap_bin());
}
END_TEST

Suite *
haproxy_suite(void)
{
	Suite *s = suite_create("haproxy");
	TCase *tc;

	tc = h_case(s, "harness", 0, H_TESTS(config_text));
	tcase_add_loop_test(tc, stat_field_table, 0, H_NELEM(stat_cases));
	tcase_add_loop_test(tc, state_of_table, 0, H_NELEM(state_cases));
	if (!hap_have(NULL, 0)) {
		h_case(s, "missing", 0, H_TESTS(haproxy_missing));
		return s;
	}
	h_case(s, "example", 0, H_TESTS(example_config_valid));
	h_case(s, "echo", 60, H_TESTS(stream_and_every_byte));
	h_case(s, "address", 30, H_TESTS(logs_real_client_address,
	    per_ip_limit_counts_real_client));
	h_case(s, "failover", 40, H_TESTS(sigkill_fails_over,
	    restarted_instance_rejoins, graceful_stop_drains));
	return s;
}
