/*
 * check_service: the service as a client sees it, end to end.
 *
 * Every test starts the real echod (tests/harness.h) listening on a
 * loopback port 0, waits for its own READY=1, talks to it over TCP and
 * stops it by pid.  The tests hold the daemon to what the design promises
 * a client: the same bytes back, in order, with only a-z changed, at any
 * size and any pace; many connections per worker; the max_connections
 * cap; idle timeouts; one worker woken per connection; IPv6; and a client
 * that misbehaves costs the others nothing.
 *
 * No test sleeps to synchronise: each waits for something it can observe
 * (READY=1, a reply, EOF, a count in /proc) with a deadline, and every
 * loop is bounded in count and in time.  A failed test leaves no daemon
 * behind (the harness sets PR_SET_PDEATHSIG); its temporary directory,
 * log included, stays for a post-mortem.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clients.h"
#include "harness.h"
#include "procfs.h"
#include "scenarios.h"
#include "suites.h"

#define START_MS 10000 /* READY=1 after start */
#define STOP_MS 10000  /* exit after SIGTERM (shutdown_timeout is 5 s) */
#define REPLY_MS 5000  /* a reply the daemon owes us */
#define QUIET_MS 300   /* a reply the daemon must not send */
#define BLOCKED_MS 300 /* sends made no progress this long: blocked */
#define MIB (1024 * 1024)

#define MIN(a, b) ((a) < (b) ? (a) : (b))

static struct echod_proc ep;
/* The server model the scenarios run under (scenarios.h); NULL: events. */
static const char *model;

/* ---- fixture ---- */

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

/* ---- the reference transform: cl_upper (independent of src/echo.c) ---- */

static size_t
first_diff(const unsigned char *a, const unsigned char *b, size_t len)
{
	size_t i;

	for (i = 0; i < len && a[i] == b[i]; i++)
		continue;
	return i;
}

/* xorshift64*: a fixed seed, so a failure reproduces. */
static uint64_t
rng64(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static void
rng_fill(uint64_t *s, unsigned char *buf, size_t len)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < len; i++) {
		if (i % 8 == 0)
			v = rng64(s);
		buf[i] = (unsigned char)v;
		v >>= 8;
	}
}

/* ---- the daemon ---- */

/*
 * Under the current model: max_conns is what one worker holds at once
 * (thread-pool: its threads); prefork holds one a worker, so a scenario
 * that needs several at once on a worker asks h_model_workers for more.
 */
static const char *
mkconf(const char *listen, int workers, int max_conns, int idle,
    const char *level)
{
	static char buf[640];
	char base[512];

	snprintf(base, sizeof(base),
	    "listen = { \"%s\" }\n"
	    "workers = %d\n"
	    "max_connections = %d\n"
	    "idle_timeout = %d\n"
	    "shutdown_timeout = 5\n"
	    "log_level = %s\n",
	    listen, workers, max_conns, idle, level);
	ck_assert_ptr_nonnull(h_conf_model(buf, sizeof(buf), base, model,
	    max_conns));
	return buf;
}

/* Run a scenario under model m (scenarios.h), from a fresh ep. */
static void
run_as(const char *m, void (*body)(void))
{
	cl_proc_init(&ep);
	model = m;
	body();
	h_cleanup(&ep);
	model = NULL;
}

static void
start(const char *conf)
{
	cl_must_start(&ep, conf, START_MS);
}

/*
 * SIGTERM with no client left: the daemon must exit 0 promptly, and
 * the sandbox (on by default) killed nothing on the way (signal 31 is
 * SIGSYS, a worker's or a per-connection child's).
 */
static void
stop_ok(void)
{
	cl_must_stop(&ep, STOP_MS);
	ck_assert_msg(cl_log_count(&ep, "signal 31") == 0, "the sandbox "
	    "killed a process of the daemon");
}

/* ---- /proc ---- */

/* Resident memory of the master and all its children, in kB. */
static long
daemon_rss_kb(void)
{
	pid_t pids[64];
	long total, v;
	int i, n;

	total = pf_status_num(ep.pid, "VmRSS");
	ck_assert_msg(total > 0, "cannot read VmRSS of the master %d",
	    (int)ep.pid);
	/* Per-connection children (process-per-connection) count too. */
	n = h_descendants(ep.pid, pids, 64);
	ck_assert_msg(n > 0, "the master has no children");
	for (i = 0; i < n; i++) {
		v = pf_status_num(pids[i], "VmRSS");
		ck_assert_msg(v > 0, "cannot read VmRSS of process %d",
		    (int)pids[i]);
		total += v;
	}
	return total;
}

/* The pids of worker slots 0..n-1, checked alive and distinct. */
static void
worker_pids(pid_t *pids, unsigned n)
{
	unsigned i, j;

	for (i = 0; i < n; i++) {
		pids[i] = h_worker_pid(ep.pid, i);
		ck_assert_msg(pids[i] > 0 && h_alive(pids[i]),
		    "no live process titled 'echod: worker %u'", i);
		for (j = 0; j < i; j++)
			ck_assert_msg(pids[i] != pids[j],
			    "workers %u and %u share pid %d", j, i,
			    (int)pids[i]);
	}
}

/* ---- client side ---- */

static int
connect_ok(int v6)
{
	int fd = h_connect(ep.port, v6);

	ck_assert_msg(fd != -1, "connect to %s port %d: %s",
	    v6 ? "::1" : "127.0.0.1", ep.port, strerror(errno));
	return fd;
}

static void
nodelay(int fd)
{
	int one = 1;

	ck_assert_int_eq(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
	    sizeof(one)), 0);
}

static unsigned
local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&ss, &sl), 0);
	return ss.ss_family == AF_INET6 ?
	    ntohs(((struct sockaddr_in6 *)&ss)->sin6_port) :
	    ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* Does fd become readable (data or EOF) within ms? */
static int
readable_within(int fd, int ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int r;

	while ((r = poll(&pfd, 1, ms)) == -1 && errno == EINTR)
		continue;
	return r > 0;
}

/* Send msg on fd and read back exactly its uppercased self. */
static void
expect_echo(int fd, const void *msg, size_t len, const char *what)
{
	unsigned char want[4096], got[4096];
	size_t n;

	ck_assert(len <= sizeof(want));
	memcpy(want, msg, len);
	cl_upper(want, len);
	ck_assert_msg(h_write_all(fd, msg, len) == 0, "%s: send: %s", what,
	    strerror(errno));
	n = h_read_exact(fd, got, len, REPLY_MS);
	ck_assert_msg(n == len, "%s: %zu of %zu bytes came back within %d ms",
	    what, n, len, REPLY_MS);
	ck_assert_msg(memcmp(got, want, len) == 0,
	    "%s: reply differs from the uppercased request at byte %zu",
	    what, first_diff(got, want, len));
}

static void
expect_echo_str(int fd, const char *msg, const char *what)
{
	expect_echo(fd, msg, strlen(msg), what);
}

/* Half-close and expect the daemon's EOF: every reply was delivered. */
static void
half_close_expect_eof(int fd, const char *what)
{
	ck_assert_msg(shutdown(fd, SHUT_WR) == 0, "%s: shutdown: %s", what,
	    strerror(errno));
	ck_assert_msg(h_expect_eof(fd, REPLY_MS),
	    "%s: no EOF within %d ms of our half-close (or extra bytes)",
	    what, REPLY_MS);
}

/* Close with a reset (SO_LINGER 0) instead of a FIN. */
static void
close_reset(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg,
	    sizeof(lg)), 0);
	close(fd);
}

/*
 * On a new connection to [::1] (v6) or 127.0.0.1: msg comes back, our
 * half-close gets EOF, and the daemon logs the close with both counts.
 */
static void
echo_logged(int v6, const char *msg)
{
	const char *host = v6 ? "[::1]" : "127.0.0.1";
	size_t len = strlen(msg);
	char needle[128];
	unsigned port;
	int fd;

	fd = connect_ok(v6);
	port = local_port(fd);
	expect_echo_str(fd, msg, host);
	half_close_expect_eof(fd, host);
	close(fd);
	snprintf(needle, sizeof(needle), "%s:%u closed: client closed, %zu "
	    "bytes in, %zu out", host, port, len, len);
	ck_assert_msg(h_log_wait(&ep, needle, REPLY_MS),
	    "no '%s' in %s", needle, cl_log_tail(&ep));
}

/* ---- a client that writes without reading ---- */

struct pusher {
	int fd;
	uint64_t pushed;
	long long last_progress;
};

static void
pusher_init(struct pusher *p, int fd)
{
	p->fd = fd;
	p->pushed = 0;
	p->last_progress = h_now_ms();
}

/* Send lowercase bytes until the kernel refuses; -1 on an error. */
static int
pusher_step(struct pusher *p)
{
	static unsigned char buf[256 * 1024];
	ssize_t n;
	int i;

	if (buf[0] == 0)
		memset(buf, 'p', sizeof(buf));
	for (i = 0; i < 64; i++) {
		n = send(p->fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
		p->pushed += (uint64_t)n;
		p->last_progress = h_now_ms();
	}
	return 0;
}

static int
pusher_blocked(const struct pusher *p)
{
	return p->pushed > 0 && h_now_ms() - p->last_progress >= BLOCKED_MS;
}

/* ---- a byte-exact stream, sent and checked incrementally ---- */

#define CHUNK (64 * 1024)
#define RBUF (256 * 1024)

/*
 * The sender and the checker each run the same generator over the same
 * chunk sizes, so the expected reply is recomputed as it arrives and
 * nothing is ever held twice.
 */
struct stream {
	int fd;
	uint64_t total; /* bytes to send, then half-close */
	uint64_t limit; /* send no further than this for now */
	uint64_t sent, got, wgenerated;
	uint64_t sgen, wgen; /* generator states: sender, checker */
	size_t soff, slen, woff, wlen;
	uint64_t bad_at; /* first wrong byte received, UINT64_MAX: none */
	int shut, eof, err;
	unsigned char sbuf[CHUNK], wbuf[CHUNK], rbuf[RBUF];
};

static struct stream *
stream_new(int fd, uint64_t total, uint64_t seed)
{
	struct stream *st = calloc(1, sizeof(*st));

	ck_assert_ptr_nonnull(st);
	st->fd = fd;
	st->total = st->limit = total;
	st->sgen = st->wgen = seed;
	st->bad_at = UINT64_MAX;
	return st;
}

/* After send() or recv() failed: 0 if it would have blocked, or -1 with
 * st->err set. */
static int
stream_failed(struct stream *st)
{
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return 0;
	st->err = errno;
	return -1;
}

static int
stream_send(struct stream *st)
{
	size_t want;
	ssize_t n;

	while (st->sent < st->limit) {
		if (st->soff == st->slen) {
			st->slen = (size_t)MIN((uint64_t)CHUNK,
			    st->total - st->sent);
			rng_fill(&st->sgen, st->sbuf, st->slen);
			st->soff = 0;
		}
		want = (size_t)MIN((uint64_t)(st->slen - st->soff),
		    st->limit - st->sent);
		n = send(st->fd, st->sbuf + st->soff, want,
		    MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return stream_failed(st);
		st->soff += (size_t)n;
		st->sent += (uint64_t)n;
	}
	if (st->sent == st->total && !st->shut) {
		if (shutdown(st->fd, SHUT_WR) == -1) {
			st->err = errno;
			return -1;
		}
		st->shut = 1;
	}
	return 0;
}

static void
stream_check_bytes(struct stream *st, const unsigned char *p, size_t n)
{
	size_t k;

	while (n > 0) {
		if (st->woff == st->wlen) {
			if (st->wgenerated == st->total) {
				/* More came back than was sent. */
				if (st->bad_at == UINT64_MAX)
					st->bad_at = st->got;
				st->got += n;
				return;
			}
			st->wlen = (size_t)MIN((uint64_t)CHUNK,
			    st->total - st->wgenerated);
			rng_fill(&st->wgen, st->wbuf, st->wlen);
			cl_upper(st->wbuf, st->wlen);
			st->wgenerated += st->wlen;
			st->woff = 0;
		}
		k = MIN(n, st->wlen - st->woff);
		if (st->bad_at == UINT64_MAX &&
		    memcmp(p, st->wbuf + st->woff, k) != 0)
			st->bad_at = st->got + first_diff(p,
			    st->wbuf + st->woff, k);
		st->woff += k;
		st->got += k;
		p += k;
		n -= k;
	}
}

static int
stream_recv(struct stream *st)
{
	ssize_t n;
	int i;

	for (i = 0; i < 16 && !st->eof; i++) {
		n = recv(st->fd, st->rbuf, sizeof(st->rbuf), MSG_DONTWAIT);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return stream_failed(st);
		if (n == 0)
			st->eof = 1;
		else
			stream_check_bytes(st, st->rbuf, (size_t)n);
	}
	return 0;
}

static short
stream_events(const struct stream *st)
{
	return (short)((st->eof ? 0 : POLLIN) |
	    (st->sent < st->limit ? POLLOUT : 0));
}

/* One step after poll; fails the test on an error or a wrong byte. */
static void
stream_io(struct stream *st, const char *what)
{
	ck_assert_msg(stream_send(st) == 0 && stream_recv(st) == 0,
	    "%s: %s after %llu bytes sent, %llu back", what,
	    strerror(st->err), (unsigned long long)st->sent,
	    (unsigned long long)st->got);
	ck_assert_msg(st->bad_at == UINT64_MAX,
	    "%s: byte %llu of the reply is wrong (or extra)", what,
	    (unsigned long long)st->bad_at);
}

static void
stream_assert_done(const struct stream *st, const char *what)
{
	ck_assert_msg(st->eof && st->shut && st->sent == st->total &&
	    st->got == st->total && st->bad_at == UINT64_MAX,
	    "%s: sent %llu of %llu, got back %llu, eof %d, first bad byte %lld",
	    what, (unsigned long long)st->sent,
	    (unsigned long long)st->total, (unsigned long long)st->got,
	    st->eof, st->bad_at == UINT64_MAX ? -1LL : (long long)st->bad_at);
}

/* ---- the echo itself ---- */

static void
interactive_body(void)
{
	char buf[64];
	int fd;

	start(mkconf("127.0.0.1:0", 2, 64, 300, "info"));
	fd = connect_ok(0);
	ck_assert_int_eq(h_write_all(fd, "hello\r\n", 7), 0);
	ck_assert_uint_eq(h_read_exact(fd, buf, 7, REPLY_MS), 7);
	ck_assert_mem_eq(buf, "HELLO\r\n", 7);
	/* The reply came while we keep the connection open: nothing more. */
	ck_assert_msg(!readable_within(fd, QUIET_MS),
	    "extra bytes or EOF after the first reply");
	ck_assert_int_eq(h_write_all(fd, "and a 2nd Line\n", 15), 0);
	ck_assert_uint_eq(h_read_exact(fd, buf, 15, REPLY_MS), 15);
	ck_assert_mem_eq(buf, "AND A 2ND LINE\n", 15);
	half_close_expect_eof(fd, "after two lines");
	close(fd);
	stop_ok();
}

void
service_interactive(const char *m)
{
	run_as(m, interactive_body);
}

START_TEST(interactive_lines_before_eof)
{
	service_interactive(NULL);
}
END_TEST

static void
every_byte_body(void)
{
	static const char utf8[] = "h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93\r\n";
	static const char utf8_up[] = "H\xc3\xa9LLO W\xc3\xb6RLD \xe2\x9c\x93\r\n";
	unsigned char msg[4 * 256 + 4 * 256 + 64], got[sizeof(msg)];
	char line[96];
	size_t len = 0, n, i;
	unsigned r, v;
	int fd;

	for (r = 0; r < 4; r++)
		for (v = 0; v < 256; v++)
			msg[len++] = (unsigned char)v;
	for (r = 0; r < 4; r++)
		for (v = 0; v < 256; v++)
			msg[len++] = (unsigned char)(255 - v);
	memcpy(msg + len, utf8, sizeof(utf8) - 1);
	len += sizeof(utf8) - 1;

	start(mkconf("127.0.0.1:0", 2, 64, 300, "debug"));
	fd = connect_ok(0);
	ck_assert_int_eq(h_write_all(fd, msg, len), 0);
	n = h_read_exact(fd, got, len, REPLY_MS);
	ck_assert_uint_eq(n, len);
	/* Stated byte by byte rather than through a reference function. */
	for (i = 0; i < 2048; i++) {
		v = msg[i];
		if (v >= 'a' && v <= 'z')
			ck_assert_msg(got[i] == v - 32, "byte %zu: 0x%02x came "
			    "back as 0x%02x, not uppercased", i, v, got[i]);
		else
			ck_assert_msg(got[i] == v, "byte %zu: 0x%02x came back "
			    "as 0x%02x, should be untouched", i, v, got[i]);
	}
	ck_assert_mem_eq(got + 2048, utf8_up, sizeof(utf8_up) - 1);
	half_close_expect_eof(fd, "after every byte value");
	close(fd);
	/* Counted by whoever served it (a child, a thread): every byte. */
	snprintf(line, sizeof(line), "closed: client closed, %zu bytes in, "
	    "%zu out", len, len);
	ck_assert_msg(h_log_wait(&ep, line, REPLY_MS), "no '%s' line", line);
	stop_ok();
}

void
service_every_byte(const char *m)
{
	run_as(m, every_byte_body);
}

START_TEST(every_byte_value)
{
	service_every_byte(NULL);
}
END_TEST

START_TEST(one_byte_writes)
{
	unsigned char c, back, burst[2000], want[2000];
	int fd, i;
	size_t n;

	start(mkconf("127.0.0.1:0", 2, 64, 300, "info"));
	fd = connect_ok(0);
	nodelay(fd);
	/* Lock-step, as a telnet in character mode: each byte answered. */
	for (i = 0; i < 2000; i++) {
		c = (unsigned char)(i * 37 + 11); /* every value, mixed */
		ck_assert_int_eq(h_write_all(fd, &c, 1), 0);
		ck_assert_msg(h_read_exact(fd, &back, 1, REPLY_MS) == 1,
		    "byte %d (0x%02x) not answered within %d ms", i, c,
		    REPLY_MS);
		cl_upper(&c, 1);
		ck_assert_msg(back == c, "byte %d: got 0x%02x, want 0x%02x", i,
		    back, c);
	}
	/* Then 2000 one-byte sends in a row, read back in order. */
	for (i = 0; i < 2000; i++) {
		burst[i] = (unsigned char)('a' + i % 26 + (i % 3 == 0) * 100);
		ck_assert_int_eq(h_write_all(fd, &burst[i], 1), 0);
	}
	memcpy(want, burst, sizeof(want));
	cl_upper(want, sizeof(want));
	n = h_read_exact(fd, burst, sizeof(burst), REPLY_MS);
	ck_assert_uint_eq(n, sizeof(burst));
	ck_assert_msg(memcmp(burst, want, n) == 0, "burst differs at byte %zu",
	    first_diff(burst, want, n));
	half_close_expect_eof(fd, "after one-byte writes");
	close(fd);
	stop_ok();
}
END_TEST

START_TEST(debug_line_per_connection)
{
	start(mkconf("127.0.0.1:0", 2, 64, 300, "debug"));
	echo_logged(0, "hello");
	stop_ok();
}
END_TEST

/* ---- a large stream ---- */

static void
large_stream_body(void)
{
	long long deadline;
	struct pollfd pfd;
	struct stream *st;
	long iter;
	int fd;

	start(mkconf("127.0.0.1:0", 2, 64, 300, "info"));
	fd = connect_ok(0);
	st = stream_new(fd, 64ULL * MIB, 0x9E3779B97F4A7C15ULL);
	/*
	 * The daemon stops reading while its reply is pending, so a client
	 * that only writes would deadlock: write and read in one poll loop.
	 */
	deadline = h_now_ms() + 30000;
	for (iter = 0; !st->eof && iter < 10000000; iter++) {
		ck_assert_msg(h_now_ms() < deadline, "stream too slow or stuck:"
		    " %llu sent, %llu back after 30 s",
		    (unsigned long long)st->sent, (unsigned long long)st->got);
		pfd.fd = fd;
		pfd.events = stream_events(st);
		pfd.revents = 0;
		ck_assert(poll(&pfd, 1, 100) != -1 || errno == EINTR);
		stream_io(st, "64 MiB stream");
	}
	stream_assert_done(st, "64 MiB stream");
	free(st);
	close(fd);
	stop_ok();
}

void
service_large_stream(const char *m)
{
	run_as(m, large_stream_body);
}

START_TEST(large_random_stream_half_close)
{
	service_large_stream(NULL);
}
END_TEST

/* ---- many connections, and the max_connections cap ---- */

#define NMANY 300

START_TEST(hundreds_of_connections_two_workers)
{
	static int fds[NMANY];
	char msg[64], want[64], got[64];
	pid_t kids[16], w[2];
	size_t len;
	int i, n;

	start(mkconf("127.0.0.1:0", 2, 512, 300, "info"));
	for (i = 0; i < NMANY; i++)
		fds[i] = connect_ok(0);
	for (i = 0; i < NMANY; i++) {
		len = (size_t)snprintf(msg, sizeof(msg),
		    "connection %03d of %d says hello\n", i, NMANY);
		ck_assert_msg(h_write_all(fds[i], msg, len) == 0,
		    "send on connection %d: %s", i, strerror(errno));
	}
	for (i = 0; i < NMANY; i++) {
		len = (size_t)snprintf(want, sizeof(want),
		    "CONNECTION %03d OF %d SAYS HELLO\n", i, NMANY);
		ck_assert_msg(h_read_exact(fds[i], got, len, REPLY_MS) == len,
		    "connection %d: no full reply within %d ms", i, REPLY_MS);
		ck_assert_msg(memcmp(got, want, len) == 0,
		    "connection %d got another's reply: '%.*s'", i, (int)len,
		    got);
	}
	/* All 300 open at once: both workers alive, exactly two of them. */
	worker_pids(w, 2);
	n = h_children(ep.pid, kids, 16);
	ck_assert_msg(n == 2, "the master has %d children, want 2", n);
	for (i = 0; i < NMANY; i++)
		close(fds[i]);
	stop_ok();
}
END_TEST

static void
capacity_body(void)
{
	char got[16];
	int a, b, c;

	start(mkconf("127.0.0.1:0", 2, 1, 300, "debug"));
	/*
	 * a fills one worker, which then stops watching the listener, so b
	 * can only be taken by the other: both are served at once.
	 */
	a = connect_ok(0);
	expect_echo_str(a, "first\n", "client a");
	b = connect_ok(0);
	expect_echo_str(b, "second\n", "client b");
	expect_echo_str(a, "first again\n", "client a with b open");
	/* c completes its handshake into the accept queue, and waits. */
	c = connect_ok(0);
	ck_assert_int_eq(h_write_all(c, "third\n", 6), 0);
	ck_assert_msg(!readable_within(c, QUIET_MS), "a third client was "
	    "answered while both workers were at max_connections = 1");
	expect_echo_str(b, "second again\n", "client b with c queued");
	/* A slot frees: c is accepted from the queue and answered. */
	close(a);
	ck_assert_msg(h_read_exact(c, got, 6, REPLY_MS) == 6,
	    "client c not answered within %d ms of a's close", REPLY_MS);
	ck_assert_mem_eq(got, "THIRD\n", 6);
	expect_echo_str(c, "third again\n", "client c");
	close(b);
	close(c);
	stop_ok();
}

void
service_capacity(const char *m)
{
	run_as(m, capacity_body);
}

START_TEST(max_connections_one)
{
	service_capacity(NULL);
}
END_TEST

/* ---- idle timeout ---- */

static void
idle_body(void)
{
	long long t_idle, t0, next, now, idle_eof = -1, last_beat;
	struct pollfd pfd[2];
	unsigned char c, back;
	int idle, busy, beat, k, r;

	start(mkconf("127.0.0.1:0", 2, 64, 1, "debug"));
	idle = connect_ok(0);
	t_idle = h_now_ms();
	busy = connect_ok(0);
	nodelay(busy);
	t0 = last_beat = h_now_ms();
	/* A byte on busy every 300 ms for 2.1 s; idle must go meanwhile. */
	for (beat = 1; beat <= 7; beat++) {
		next = t0 + 300LL * beat;
		for (k = 0; k < 100 && (now = h_now_ms()) < next; k++) {
			pfd[0].fd = busy;
			pfd[0].events = POLLIN;
			pfd[1].fd = idle_eof == -1 ? idle : -1;
			pfd[1].events = POLLIN;
			pfd[0].revents = pfd[1].revents = 0;
			r = poll(pfd, 2, (int)(next - now));
			ck_assert(r != -1 || errno == EINTR);
			ck_assert_msg(!(pfd[0].revents & (POLLIN | POLLHUP)),
			    "the active connection was closed or sent "
			    "something unasked %lld ms after its last byte",
			    h_now_ms() - last_beat);
			if (pfd[1].revents & (POLLIN | POLLHUP)) {
				ck_assert_msg(recv(idle, &c, 1, 0) == 0,
				    "the idle connection got data, not EOF");
				idle_eof = h_now_ms();
			}
		}
		c = (unsigned char)('a' + beat);
		ck_assert_int_eq(h_write_all(busy, &c, 1), 0);
		ck_assert_msg(h_read_exact(busy, &back, 1, REPLY_MS) == 1 &&
		    back == c - 32, "beat %d on the active connection not "
		    "echoed", beat);
		last_beat = h_now_ms();
	}
	ck_assert_msg(idle_eof != -1, "the idle connection was not closed "
	    "within %lld ms (idle_timeout = 1)", h_now_ms() - t_idle);
	ck_assert_msg(idle_eof - t_idle >= 900 && idle_eof - t_idle <= 3000,
	    "the idle connection closed after %lld ms, want 1-3 s",
	    idle_eof - t_idle);
	/* Now busy is idle too, and must go the same way. */
	ck_assert_msg(h_expect_eof(busy, 3000), "the formerly active "
	    "connection not closed within 3 s of its last byte");
	now = h_now_ms();
	ck_assert_msg(now - last_beat >= 900, "the formerly active connection "
	    "closed %lld ms after its last byte, before idle_timeout",
	    now - last_beat);
	ck_assert_msg(h_log_wait(&ep, "closed: idle timeout", REPLY_MS),
	    "no 'closed: idle timeout' in the log");
	close(idle);
	close(busy);
	stop_ok();
}

void
service_idle_timeout(const char *m)
{
	run_as(m, idle_body);
}

START_TEST(idle_timeout_spares_active)
{
	service_idle_timeout(NULL);
}
END_TEST

/* ---- balance ---- */

#define SPREAD_CONNS 64

/*
 * With EPOLLEXCLUSIVE alone, the first waiting worker takes nearly every
 * connection of a lightly loaded pool (29 of 32 were seen on one worker).
 * A worker over its share stops watching the listener, so 64 idle
 * connections opened one at a time end up spread: each of two workers
 * holds between a quarter and three quarters of them.
 */
START_TEST(connections_spread_over_workers)
{
	int fds[SPREAD_CONNS], base[2], held[2], i;
	pid_t w[2];
	char msg[16];

	start(mkconf("127.0.0.1:0", 2, 1024, 300, "info"));
	worker_pids(w, 2);
	for (i = 0; i < 2; i++)
		base[i] = pf_count_fds(w[i]);
	for (i = 0; i < SPREAD_CONNS; i++) {
		fds[i] = connect_ok(0);
		snprintf(msg, sizeof(msg), "c%d\n", i);
		/* The echo proves a worker accepted it before the next. */
		expect_echo_str(fds[i], msg, "spread");
	}
	for (i = 0; i < 2; i++)
		held[i] = pf_count_fds(w[i]) - base[i];
	ck_assert_msg(held[0] + held[1] == SPREAD_CONNS,
	    "workers hold %d + %d connections, want %d in all", held[0],
	    held[1], SPREAD_CONNS);
	for (i = 0; i < 2; i++)
		ck_assert_msg(held[i] >= SPREAD_CONNS / 4 &&
		    held[i] <= SPREAD_CONNS * 3 / 4,
		    "worker %d holds %d of %d connections: not spread", i,
		    held[i], SPREAD_CONNS);
	for (i = 0; i < SPREAD_CONNS; i++)
		close(fds[i]);
	stop_ok();
}
END_TEST

/* ---- no thundering herd ---- */

#define NHERD 4
#define HERD_CONNS 100

static int
workers_fd_total(const pid_t *w, int n)
{
	int i, k, total = 0;

	for (i = 0; i < n; i++) {
		k = pf_count_fds(w[i]);
		ck_assert_msg(k > 0, "cannot list /proc/%d/fd", (int)w[i]);
		total += k;
	}
	return total;
}

/*
 * Each worker sleeps in epoll_wait between events, so every wake-up ends
 * in one voluntary context switch, and the sum over the workers of
 * voluntary_ctxt_switches counts wake-ups.  The test opens the
 * connections one at a time and waits until the workers together hold
 * one more descriptor (the accepted socket) before the next: every
 * connection then finds all four workers asleep.  With EPOLLEXCLUSIVE the
 * kernel wakes one of them: about one switch per connection, HERD_CONNS
 * in all, plus about one heartbeat per worker per second (the test takes
 * one or two).  Without it every connection wakes all four (three find
 * accept() empty and sleep again): about 4 * HERD_CONNS.  2 * HERD_CONNS
 * + 16 lies between the two with a wide margin on both sides.  Opening
 * the connections in a burst instead would let a woken worker accept
 * several at once, and the count without EPOLLEXCLUSIVE could fall under
 * the bound: the one-at-a-time pace is what makes it discriminate.
 */
START_TEST(no_thundering_herd)
{
	static int fds[HERD_CONNS];
	long before[NHERD], after, sum = 0;
	pid_t w[NHERD];
	long long deadline;
	int base, i, k;

	start(mkconf("127.0.0.1:0", NHERD, 256, 300, "info"));
	worker_pids(w, NHERD);
	base = workers_fd_total(w, NHERD);
	for (i = 0; i < NHERD; i++) {
		before[i] = pf_status_num(w[i], "voluntary_ctxt_switches");
		ck_assert_msg(before[i] >= 0, "no voluntary_ctxt_switches in "
		    "/proc/%d/status", (int)w[i]);
	}
	for (i = 0; i < HERD_CONNS; i++) {
		fds[i] = connect_ok(0);
		deadline = h_now_ms() + REPLY_MS;
		for (k = 0; workers_fd_total(w, NHERD) < base + i + 1; k++) {
			ck_assert_msg(h_now_ms() < deadline && k < 10000,
			    "connection %d not accepted within %d ms", i,
			    REPLY_MS);
			h_poll_pause();
		}
	}
	for (i = 0; i < NHERD; i++) {
		after = pf_status_num(w[i], "voluntary_ctxt_switches");
		ck_assert_msg(after >= before[i], "worker %d restarted?", i);
		sum += after - before[i];
	}
	ck_assert_msg(workers_fd_total(w, NHERD) == base + HERD_CONNS,
	    "the workers hold %d descriptors, want %d",
	    workers_fd_total(w, NHERD), base + HERD_CONNS);
	ck_assert_msg(sum < 2 * HERD_CONNS + 16, "%d connections woke the %d "
	    "workers %ld times: a thundering herd (want < %d)", HERD_CONNS,
	    NHERD, sum, 2 * HERD_CONNS + 16);
	/* Each connection needed a wake-up: the counters did count. */
	ck_assert_msg(sum >= HERD_CONNS / 4, "only %ld wake-ups for %d "
	    "connections: is voluntary_ctxt_switches read right?", sum,
	    HERD_CONNS);
	/* All accepted, all served. */
	expect_echo_str(fds[HERD_CONNS - 1], "x", "the last connection");
	expect_echo_str(fds[0], "y", "the first connection");
	for (i = 0; i < HERD_CONNS; i++)
		close(fds[i]);
	stop_ok();
}
END_TEST

/* ---- IPv6 and "*" ---- */

START_TEST(ipv6_loopback)
{
	if (!cl_have_ipv6()) {
		fprintf(stderr, "service: ipv6_loopback SKIPPED: this host "
		    "cannot bind ::1\n");
		return;
	}
	start(mkconf("[::1]:0", 2, 64, 300, "debug"));
	ck_assert_msg(strstr(ep.ready, "listening on [::1]:") != NULL,
	    "READY status '%s' does not say [::1]", ep.ready);
	echo_logged(1, "over ipv6\r\n");
	stop_ok();
}
END_TEST

START_TEST(any_address_dual_stack)
{
	char want[64];
	int fd4, fd6, v6 = cl_have_ipv6();

	start(mkconf("*:0", 2, 64, 300, "info"));
	snprintf(want, sizeof(want), "listening on %s:%d (*:0)",
	    v6 ? "[::]" : "0.0.0.0", ep.port);
	ck_assert_msg(strstr(ep.ready, want) != NULL,
	    "READY status '%s' does not contain '%s'", ep.ready, want);
	fd4 = connect_ok(0);
	expect_echo_str(fd4, "over ipv4\n", "*: 127.0.0.1");
	if (v6) {
		/* Same port, same socket, other family, both open at once. */
		fd6 = connect_ok(1);
		expect_echo_str(fd6, "over ipv6\n", "*: ::1");
		expect_echo_str(fd4, "ipv4 again\n", "*: 127.0.0.1");
		half_close_expect_eof(fd6, "*: ::1");
		close(fd6);
	} else
		fprintf(stderr, "service: any_address_dual_stack: ::1 part "
		    "SKIPPED: this host cannot bind ::1\n");
	half_close_expect_eof(fd4, "*: 127.0.0.1");
	close(fd4);
	stop_ok();
}
END_TEST

/* ---- clients that misbehave ---- */

/*
 * One worker, so that the resetting client and the good one share one
 * event loop: if the reset disturbed the loop, the good stream would see
 * it.  The good stream stops at half way until the reset has happened, so
 * the reset falls in the middle of its exchange.
 */
START_TEST(reset_mid_stream_harms_nobody)
{
	struct pollfd pfd[2];
	struct pusher r;
	struct stream *g;
	long long deadline;
	pid_t w0, kids[8];
	long iter;
	int gfd, rfd, reset = 0, n;
	char needle[64];
	unsigned rport;

	start(mkconf("127.0.0.1:0", 1, 64, 300, "debug"));
	worker_pids(&w0, 1);
	gfd = connect_ok(0);
	rfd = connect_ok(0);
	rport = local_port(rfd);
	pusher_init(&r, rfd);
	g = stream_new(gfd, 16ULL * MIB, 12345);
	g->limit = g->total / 2;
	deadline = h_now_ms() + 30000;
	for (iter = 0; !g->eof && iter < 10000000; iter++) {
		ck_assert_msg(h_now_ms() < deadline, "stuck: good stream %llu "
		    "sent, %llu back; resetter pushed %llu, reset %d",
		    (unsigned long long)g->sent, (unsigned long long)g->got,
		    (unsigned long long)r.pushed, reset);
		pfd[0].fd = gfd;
		pfd[0].events = stream_events(g);
		pfd[1].fd = reset ? -1 : rfd;
		pfd[1].events = POLLOUT;
		pfd[0].revents = pfd[1].revents = 0;
		ck_assert(poll(pfd, 2, 50) != -1 || errno == EINTR);
		stream_io(g, "good stream");
		if (reset)
			continue;
		ck_assert_msg(pusher_step(&r) == 0, "resetter: send: %s",
		    strerror(errno));
		/*
		 * Its sends stopped: the daemon holds a pending reply for it
		 * and is not reading it.  Reset now.
		 */
		if (pusher_blocked(&r)) {
			close_reset(rfd);
			reset = 1;
			g->limit = g->total;
		}
	}
	stream_assert_done(g, "good stream across the reset");
	ck_assert_msg(g->got > 0 && reset, "the reset never happened");
	free(g);
	close(gfd);
	ck_assert_msg(h_worker_pid(ep.pid, 0) == w0 && h_alive(w0),
	    "worker 0 was pid %d, now %d", (int)w0,
	    (int)h_worker_pid(ep.pid, 0));
	n = h_children(ep.pid, kids, 8);
	ck_assert_msg(n == 1, "the master has %d children, want 1", n);
	gfd = connect_ok(0);
	expect_echo_str(gfd, "still here?\n", "a client after the reset");
	close(gfd);
	/* Last, being the least important: the reset is logged, by peer. */
	snprintf(needle, sizeof(needle), "127.0.0.1:%u closed: failed: ",
	    rport);
	ck_assert_msg(h_log_wait(&ep, needle, REPLY_MS), "no '%s' line for "
	    "the reset connection in %s", needle, cl_log_tail(&ep));
	stop_ok();
}
END_TEST

/*
 * A client that sends and never reads: the daemon answers it until the
 * client's receive window is full, then holds at most one pending buffer
 * and stops reading it, so TCP flow control stops the client.  Its sends
 * blocking is the proof that the daemon stopped taking its bytes; the
 * daemon's resident memory must not have grown meanwhile (16 MB is
 * generous: one pending buffer is 64 KiB), and the one worker keeps
 * serving the other clients.
 */
static void
non_reader_body(void)
{
	long rss0, rss1;
	long long deadline;
	struct pollfd pfd;
	struct pusher p;
	int other, nr, fd, queued = 0;
	long iter;

	/* Three at once: prefork needs three workers for that. */
	start(mkconf("127.0.0.1:0", h_model_workers(model, 1, 3), 64, 300,
	    "info"));
	/*
	 * Warm up: the worker's buffers are allocated and touched, and
	 * whatever serves the non-reader (a thread, a child process) is
	 * there before the baseline: only its pushing must cost nothing.
	 */
	other = connect_ok(0);
	expect_echo_str(other, "warm up\n", "other client");
	nr = connect_ok(0);
	expect_echo_str(nr, "warm up\n", "non-reader, before it stops");
	rss0 = daemon_rss_kb();

	pusher_init(&p, nr);
	deadline = h_now_ms() + 20000;
	for (iter = 0; !pusher_blocked(&p) && iter < 1000000; iter++) {
		ck_assert_msg(p.pushed < 512ULL * MIB, "the daemon kept "
		    "taking a non-reader's bytes: 512 MiB and counting");
		ck_assert_msg(h_now_ms() < deadline, "a non-reader's sends "
		    "still not blocked after 20 s and %llu MiB",
		    (unsigned long long)(p.pushed / MIB));
		pfd.fd = nr;
		pfd.events = POLLOUT;
		ck_assert(poll(&pfd, 1, 50) != -1 || errno == EINTR);
		ck_assert_msg(pusher_step(&p) == 0, "non-reader: send: %s",
		    strerror(errno));
	}
	ck_assert_msg(pusher_blocked(&p), "the non-reader never blocked");
	/* The daemon did answer it, until its receive window filled. */
	ck_assert_int_eq(ioctl(nr, FIONREAD, &queued), 0);
	ck_assert_msg(queued > 0, "no reply reached the non-reader");

	rss1 = daemon_rss_kb();
	ck_assert_msg(rss1 - rss0 < 16 * 1024, "the daemon grew from %ld to "
	    "%ld kB while a client pushed %llu bytes without reading", rss0,
	    rss1, (unsigned long long)p.pushed);
	/* The same worker serves others meanwhile. */
	expect_echo_str(other, "still served while one does not read\n",
	    "other client");
	fd = connect_ok(0);
	expect_echo_str(fd, "and a new one too\n", "new client");
	close(fd);
	close(nr);
	close(other);
	stop_ok();
}

void
service_non_reader(const char *m)
{
	run_as(m, non_reader_body);
}

START_TEST(non_reader_bounded_memory)
{
	service_non_reader(NULL);
}
END_TEST

Suite *
service_suite(void)
{
	Suite *s = suite_create("service");

	h_case_fixed(s, "echo", 30, setup, teardown,
	    H_TESTS(interactive_lines_before_eof, every_byte_value,
	    one_byte_writes, debug_line_per_connection));
	h_case_fixed(s, "stream", 60, setup, teardown,
	    H_TESTS(large_random_stream_half_close));
	h_case_fixed(s, "connections", 30, setup, teardown,
	    H_TESTS(hundreds_of_connections_two_workers, max_connections_one));
	h_case_fixed(s, "idle", 30, setup, teardown,
	    H_TESTS(idle_timeout_spares_active));
	h_case_fixed(s, "herd", 30, setup, teardown,
	    H_TESTS(no_thundering_herd, connections_spread_over_workers));
	h_case_fixed(s, "ipv6", 30, setup, teardown,
	    H_TESTS(ipv6_loopback, any_address_dual_stack));
	h_case_fixed(s, "misbehaving", 60, setup, teardown,
	    H_TESTS(reset_mid_stream_harms_nobody, non_reader_bounded_memory));
	return s;
}
