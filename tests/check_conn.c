/*
 * check_conn: the connection state machine over a non-blocking AF_UNIX
 * socketpair.  The server end goes to conn_init(); the test plays the
 * client on the other end, so it decides exactly when bytes are sent and
 * read.  Small socket buffers make the kernel take less than the server
 * read, which is how partial writes and backpressure are reached.
 *
 * Every loop is bounded in count; nothing sleeps.  Every fd and buffer is
 * released, so CK_FORK=no under valgrind stays clean.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "harness.h"
#include "scoreboard.h"
#include "suites.h"

#define MAX_TURNS 100000 /* bound on every pump loop */
#define SMALL_BUF 4096   /* the kernel doubles it */

struct fixture {
	int peer;
	struct conn c;
	struct bufpool bp;
	unsigned char buf[CONN_BUFSIZE]; /* the worker's shared buffer */
};

static struct fixture *
fixture_new(int small)
{
	struct fixture *f;
	int sv[2], sz = SMALL_BUF;

	f = calloc(1, sizeof(*f));
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0, sv), 0);
	if (small) {
		ck_assert_int_eq(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz,
		    sizeof(sz)), 0);
		ck_assert_int_eq(setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &sz,
		    sizeof(sz)), 0);
	}
	conn_init(&f->c, sv[0], 1000);
	f->peer = sv[1];
	return f;
}

/* Close what is still open, check the pool is balanced, free it all. */
static void
fixture_free(struct fixture *f)
{
	conn_close(&f->c, &f->bp);
	ck_assert_uint_eq(f->bp.in_use, 0);
	bufpool_drain(&f->bp);
	ck_assert_uint_eq(f->bp.nfree, 0);
	if (f->peer != -1)
		ck_assert_int_eq(close(f->peer), 0);
	free(f);
}

static void
fill_random(unsigned char *p, size_t len, uint32_t seed)
{
	size_t i;

	for (i = 0; i < len; i++) {
		seed ^= seed << 13;
		seed ^= seed >> 17;
		seed ^= seed << 5;
		p[i] = (unsigned char)seed;
	}
}

/* len bytes of fill_random(seed), on the heap (free them). */
static unsigned char *
random_bytes(size_t len, uint32_t seed)
{
	unsigned char *p = malloc(len);

	ck_assert_ptr_nonnull(p);
	fill_random(p, len, seed);
	return p;
}

static unsigned char
ref_upper(unsigned char c)
{
	return c >= 'a' && c <= 'z' ? (unsigned char)(c - 32) : c;
}

/* Send from the peer until done or the kernel is full; bytes sent. */
static size_t
peer_send(struct fixture *f, const unsigned char *p, size_t len)
{
	size_t sent = 0;
	ssize_t w;
	int turns;

	for (turns = 0; turns < MAX_TURNS && sent < len; turns++) {
		w = send(f->peer, p + sent, len - sent, MSG_NOSIGNAL |
		    MSG_DONTWAIT);
		if (w == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		ck_assert_msg(w > 0, "peer send: %s", strerror(errno));
		sent += (size_t)w;
	}
	return sent;
}

/*
 * Read what the peer has (up to cap), checking each byte against the
 * uppercased input as it arrives.  Returns bytes read; *eof set on EOF.
 */
static size_t
peer_recv(struct fixture *f, const unsigned char *in, size_t done,
    size_t cap, int *eof)
{
	unsigned char tmp[8192];
	size_t got = 0, i, want;
	ssize_t n;
	int turns;

	*eof = 0;
	for (turns = 0; turns < MAX_TURNS && got < cap; turns++) {
		want = cap - got < sizeof(tmp) ? cap - got : sizeof(tmp);
		n = recv(f->peer, tmp, want, MSG_DONTWAIT);
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		ck_assert_msg(n != -1, "peer recv: %s", strerror(errno));
		if (n == 0) {
			*eof = 1;
			break;
		}
		for (i = 0; i < (size_t)n; i++)
			if (tmp[i] != ref_upper(in[done + got + i]))
				ck_abort_msg("byte %zu: got 0x%02x, want 0x%02x",
				    done + got + i, tmp[i],
				    ref_upper(in[done + got + i]));
		got += (size_t)n;
	}
	return got;
}

static int
unread(int fd)
{
	int n = -1;

	ck_assert_int_eq(ioctl(fd, FIONREAD, &n), 0);
	return n;
}

/* The peer sends without reading until the server has bytes pending. */
static size_t
send_until_writing(struct fixture *f, const unsigned char *in, size_t len)
{
	enum conn_status st = CONN_READING;
	unsigned long in_use = f->bp.in_use;
	size_t sent = 0;
	int turns;

	for (turns = 0; turns < 1000 && st == CONN_READING; turns++) {
		sent += peer_send(f, in + sent, len - sent);
		st = conn_on_readable(&f->c, f->buf, sizeof(f->buf), &f->bp);
	}
	ck_assert_msg(st == CONN_WRITING, "no partial write after %zu bytes, "
	    "status %d", sent, st);
	ck_assert_uint_eq(f->c.writing, 1);
	ck_assert_ptr_nonnull(f->c.pend);
	ck_assert_uint_gt(f->c.pend_len, 0);
	ck_assert_uint_le(f->c.pend_off + f->c.pend_len, CONN_BUFSIZE);
	ck_assert_uint_eq(f->bp.in_use, in_use + 1);
	ck_assert_uint_eq(f->c.bytes_in, f->c.bytes_out + f->c.pend_len);
	return sent;
}

/* The connection's byte counts (macros: Check names the caller's line). */
#define ASSERT_BYTES(f, in, out)                                           \
	do {                                                               \
		ck_assert_uint_eq((f)->c.bytes_in, (in));                  \
		ck_assert_uint_eq((f)->c.bytes_out, (out));                \
	} while (0)

/* Nothing (more) for the peer to read now. */
#define ASSERT_PEER_EMPTY(f, buf)                                          \
	do {                                                               \
		ck_assert_int_eq(recv((f)->peer, (buf), sizeof(buf),       \
		    MSG_DONTWAIT), -1);                                    \
		ck_assert_int_eq(errno, EAGAIN);                           \
	} while (0)

START_TEST(init_state)
{
	struct conn c;

	memset(&c, 0xa5, sizeof(c));
	conn_init(&c, 42, 777);
	ck_assert_int_eq(c.fd, 42);
	ck_assert_int_eq(c.err, 0);
	ck_assert_uint_eq(c.writing, 0);
	ck_assert_uint_eq(c.pend_len, 0);
	ck_assert_ptr_null(c.pend);
	ck_assert_uint_eq(c.start_ms, 777);
	ck_assert_uint_eq(c.last_ms, 777);
	ck_assert_uint_eq(c.bytes_in, 0);
	ck_assert_uint_eq(c.bytes_out, 0);
}
END_TEST

START_TEST(echo_small_message)
{
	static const unsigned char msg[] = "Hello, wOrld!\r\n\0h\xc3\xa9 \xff~z{";
	static const unsigned char want[] = "HELLO, WORLD!\r\n\0H\xc3\xa9 \xff~Z{";
	struct fixture *f = fixture_new(0);
	unsigned char got[sizeof(msg) + 16];

	/* Nothing to read yet: still reading, nothing happened. */
	ck_assert_int_eq(conn_on_readable(&f->c, f->buf, sizeof(f->buf),
	    &f->bp), CONN_READING);
	ck_assert_uint_eq(f->c.bytes_in, 0);
	/* Nothing pending: writable is a no-op. */
	ck_assert_int_eq(conn_on_writable(&f->c, &f->bp), CONN_READING);

	ck_assert_int_eq(send(f->peer, msg, sizeof(msg), MSG_NOSIGNAL),
	    (ssize_t)sizeof(msg));
	ck_assert_int_eq(conn_on_readable(&f->c, f->buf, sizeof(f->buf),
	    &f->bp), CONN_READING);
	ck_assert_int_eq(recv(f->peer, got, sizeof(got), MSG_DONTWAIT),
	    (ssize_t)sizeof(msg));
	ck_assert_mem_eq(got, want, sizeof(want));
	/* Exactly those bytes: nothing more follows. */
	ASSERT_PEER_EMPTY(f, got);
	ASSERT_BYTES(f, sizeof(msg), sizeof(msg));
	ck_assert_uint_eq(f->bp.in_use, 0);
	ck_assert_ptr_null(f->c.pend);
	ck_assert_int_eq(f->c.err, 0);
	fixture_free(f);
}
END_TEST

START_TEST(eof_with_nothing_pending)
{
	struct fixture *f = fixture_new(0);
	unsigned char got[16];

	ck_assert_int_eq(shutdown(f->peer, SHUT_WR), 0);
	ck_assert_int_eq(conn_on_readable(&f->c, f->buf, sizeof(f->buf),
	    &f->bp), CONN_DONE);
	ck_assert_int_eq(f->c.err, 0);
	ASSERT_BYTES(f, 0, 0);
	ASSERT_PEER_EMPTY(f, got);
	fixture_free(f);
}
END_TEST

START_TEST(data_then_eof)
{
	struct fixture *f = fixture_new(0);
	unsigned char got[16];
	enum conn_status st;
	int turns;

	ck_assert_int_eq(send(f->peer, "abc", 3, MSG_NOSIGNAL), 3);
	ck_assert_int_eq(shutdown(f->peer, SHUT_WR), 0);
	st = CONN_READING;
	for (turns = 0; turns < 10 && st == CONN_READING; turns++)
		st = conn_on_readable(&f->c, f->buf, sizeof(f->buf), &f->bp);
	ck_assert_int_eq(st, CONN_DONE);
	ck_assert_int_eq(recv(f->peer, got, sizeof(got), MSG_DONTWAIT), 3);
	ck_assert_mem_eq(got, "ABC", 3);
	ASSERT_BYTES(f, 3, 3);
	fixture_free(f);
	/* (that the peer then sees EOF: half_close_delivers_everything) */
}
END_TEST

/* At most CONN_READS_PER_EVENT reads per call, so one client cannot hog. */
START_TEST(reads_per_event_bounded)
{
	struct fixture *f = fixture_new(0);
	unsigned char in[100];
	size_t bufsz = 16, done = 0;
	int eof;

	fill_random(in, sizeof(in), 7);
	ck_assert_uint_eq(peer_send(f, in, sizeof(in)), sizeof(in));
	ck_assert_int_eq(conn_on_readable(&f->c, f->buf, bufsz, &f->bp),
	    CONN_READING);
	ASSERT_BYTES(f, CONN_READS_PER_EVENT * bufsz, CONN_READS_PER_EVENT * bufsz);
	ck_assert_int_eq(unread(f->c.fd),
	    (int)(sizeof(in) - CONN_READS_PER_EVENT * bufsz));
	done += peer_recv(f, in, done, sizeof(in), &eof);
	ck_assert_uint_eq(done, CONN_READS_PER_EVENT * bufsz);
	/* The rest on the next event; a short read ends the batch. */
	ck_assert_int_eq(conn_on_readable(&f->c, f->buf, bufsz, &f->bp),
	    CONN_READING);
	ck_assert_uint_eq(f->c.bytes_in, sizeof(in));
	done += peer_recv(f, in, done, sizeof(in), &eof);
	ck_assert_uint_eq(done, sizeof(in));
	fixture_free(f);
}
END_TEST

/* A shared buffer larger than CONN_BUFSIZE is used only up to it. */
START_TEST(read_size_clamped)
{
	const size_t len = CONN_BUFSIZE + CONN_BUFSIZE / 2;
	struct fixture *f = fixture_new(0);
	unsigned char *big, *in;
	size_t i, done = 0;
	int sz = 1024 * 1024, eof, turns;
	enum conn_status st;

	big = malloc(2 * CONN_BUFSIZE);
	in = malloc(len);
	ck_assert_ptr_nonnull(big);
	ck_assert_ptr_nonnull(in);
	memset(big, 0x5a, 2 * CONN_BUFSIZE);
	fill_random(in, len, 99);
	ck_assert_int_eq(setsockopt(f->peer, SOL_SOCKET, SO_SNDBUF, &sz,
	    sizeof(sz)), 0);
	ck_assert_uint_eq(peer_send(f, in, len), len);
	ck_assert_int_gt(unread(f->c.fd), CONN_BUFSIZE);
	st = conn_on_readable(&f->c, big, 2 * CONN_BUFSIZE, &f->bp);
	for (i = CONN_BUFSIZE; i < 2 * CONN_BUFSIZE; i++)
		if (big[i] != 0x5a)
			ck_abort_msg("byte %zu past CONN_BUFSIZE written", i);
	for (turns = 0; turns < MAX_TURNS && done < len; turns++) {
		done += peer_recv(f, in, done, len - done, &eof);
		if (st == CONN_WRITING)
			st = conn_on_writable(&f->c, &f->bp);
		else
			st = conn_on_readable(&f->c, big, 2 * CONN_BUFSIZE,
			    &f->bp);
		ck_assert(st == CONN_READING || st == CONN_WRITING);
	}
	ck_assert_uint_eq(done, len);
	free(big);
	free(in);
	fixture_free(f);
}
END_TEST

/*
 * The peer sends a large block without reading: the server reads, the
 * kernel takes only part of the echo, the rest is pending.  From then on
 * the server must not read (backpressure) and holds one buffer; once the
 * peer reads, the pending bytes go out, and in the end every byte comes
 * back uppercased and in order.
 */
START_TEST(partial_writes_and_backpressure)
{
	const size_t len = 4 * 1024 * 1024 + 7;
	struct fixture *f = fixture_new(1);
	size_t sent, done = 0, i;
	uint64_t in_before, out_before;
	enum conn_status st;
	int q, eof, turns, writing_turns = 0;
	unsigned char *in;

	in = random_bytes(len, 0x9e3779b9);
	sent = send_until_writing(f, in, len);

	/* Fill the server's receive side too; then it must not be read. */
	sent += peer_send(f, in + sent, len - sent);
	q = unread(f->c.fd);
	ck_assert_int_gt(q, 0);
	in_before = f->c.bytes_in;
	out_before = f->c.bytes_out;
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(conn_on_readable(&f->c, f->buf,
		    sizeof(f->buf), &f->bp), CONN_WRITING);
		ck_assert_uint_eq(f->c.bytes_in, in_before);
		ck_assert_int_eq(unread(f->c.fd), q);
		ck_assert_uint_eq(f->bp.in_use, 1);
	}
	/* The peer still does not read: nothing can go out. */
	ck_assert_int_eq(conn_on_writable(&f->c, &f->bp), CONN_WRITING);
	ck_assert_uint_eq(f->c.bytes_out, out_before);

	/* The peer reads some; the server flushes what is pending. */
	st = CONN_WRITING;
	for (turns = 0; turns < MAX_TURNS && st == CONN_WRITING; turns++) {
		done += peer_recv(f, in, done, len - done, &eof);
		ck_assert_int_eq(eof, 0);
		st = conn_on_writable(&f->c, &f->bp);
	}
	ck_assert_int_eq(st, CONN_READING);
	ck_assert_uint_eq(f->c.writing, 0);
	ck_assert_ptr_null(f->c.pend);
	ck_assert_uint_eq(f->bp.in_use, 0);
	ck_assert_uint_eq(f->bp.nfree, 1); /* kept for the next one */
	ck_assert_uint_eq(f->c.bytes_out, in_before);

	/* Now everything, both directions at once. */
	for (turns = 0; turns < MAX_TURNS && done < len; turns++) {
		sent += peer_send(f, in + sent, len - sent);
		if (st == CONN_WRITING) {
			writing_turns++;
			st = conn_on_writable(&f->c, &f->bp);
		} else
			st = conn_on_readable(&f->c, f->buf, sizeof(f->buf),
			    &f->bp);
		ck_assert_msg(st == CONN_READING || st == CONN_WRITING,
		    "status %d err %s", st, strerror(f->c.err));
		ck_assert_uint_le(f->bp.in_use, 1);
		ck_assert_uint_le(f->c.pend_off + f->c.pend_len, CONN_BUFSIZE);
		done += peer_recv(f, in, done, len - done, &eof);
		ck_assert_int_eq(eof, 0);
	}
	ck_assert_uint_eq(sent, len);
	ck_assert_uint_eq(done, len);
	ck_assert_int_gt(writing_turns, 1); /* partial writes kept happening */
	ASSERT_BYTES(f, len, len);

	ck_assert_int_eq(shutdown(f->peer, SHUT_WR), 0);
	if (st == CONN_WRITING)
		st = conn_on_writable(&f->c, &f->bp);
	ck_assert_int_eq(st, CONN_READING);
	ck_assert_int_eq(conn_on_readable(&f->c, f->buf, sizeof(f->buf),
	    &f->bp), CONN_DONE);
	free(in);
	fixture_free(f);
}
END_TEST

/* EOF behind pending and unread bytes: all are echoed before DONE. */
START_TEST(half_close_delivers_everything)
{
	const size_t len = 4 * 1024 * 1024;
	struct fixture *f = fixture_new(1);
	enum conn_status st = CONN_WRITING;
	size_t sent, done = 0;
	int eof = 0, turns;
	unsigned char *in;

	in = random_bytes(len, 4242);
	sent = send_until_writing(f, in, len);
	sent += peer_send(f, in + sent, len - sent);
	ck_assert_uint_lt(sent, len);
	ck_assert_int_eq(shutdown(f->peer, SHUT_WR), 0);
	ck_assert_int_gt(unread(f->c.fd), 0);

	for (turns = 0; turns < MAX_TURNS; turns++) {
		done += peer_recv(f, in, done, sent - done, &eof);
		ck_assert_int_eq(eof, 0);
		if (st == CONN_WRITING)
			st = conn_on_writable(&f->c, &f->bp);
		else
			st = conn_on_readable(&f->c, f->buf, sizeof(f->buf),
			    &f->bp);
		if (st == CONN_DONE)
			break;
		ck_assert_msg(st == CONN_READING || st == CONN_WRITING,
		    "status %d err %s", st, strerror(f->c.err));
	}
	ck_assert_int_eq(st, CONN_DONE);
	/* DONE only once every byte was handed to the kernel. */
	ASSERT_BYTES(f, sent, sent);
	ck_assert_uint_eq(f->bp.in_use, 0);
	done += peer_recv(f, in, done, sent - done, &eof);
	ck_assert_uint_eq(done, sent);
	conn_close(&f->c, &f->bp);
	/* Then the peer sees the end of the stream. */
	done += peer_recv(f, in, done, 1, &eof);
	ck_assert_int_eq(eof, 1);
	ck_assert_uint_eq(done, sent);
	free(in);
	fixture_free(f);
}
END_TEST

/*
 * The peer goes away while the server has bytes pending: the write fails
 * (without SIGPIPE killing the process) and err says why.  _i picks how.
 */
START_TEST(peer_gone_while_pending)
{
	const size_t len = 1024 * 1024;
	struct fixture *f = fixture_new(1);
	enum conn_status st;
	unsigned char *in;
	int turns;

	in = random_bytes(len, 1);
	(void)send_until_writing(f, in, len);
	if (_i == 0) {
		ck_assert_int_eq(close(f->peer), 0);
		f->peer = -1;
	} else
		ck_assert_int_eq(shutdown(f->peer, SHUT_RD), 0);
	st = CONN_WRITING;
	for (turns = 0; turns < 10 && st == CONN_WRITING; turns++)
		st = conn_on_writable(&f->c, &f->bp);
	ck_assert_int_eq(st, CONN_FAILED);
	ck_assert_msg(f->c.err == EPIPE || f->c.err == ECONNRESET,
	    "err %d (%s)", f->c.err, strerror(f->c.err));
	ck_assert_uint_eq(f->bp.in_use, 1); /* until conn_close */
	free(in);
	fixture_free(f);
}
END_TEST

/* The peer resets while the server is reading: FAILED, ECONNRESET. */
START_TEST(peer_reset_while_reading)
{
	struct fixture *f = fixture_new(0);

	ck_assert_int_eq(send(f->peer, "hi", 2, MSG_NOSIGNAL), 2);
	ck_assert_int_eq(conn_on_readable(&f->c, f->buf, sizeof(f->buf),
	    &f->bp), CONN_READING);
	/* Closing with the echo unread resets the connection. */
	ck_assert_int_eq(close(f->peer), 0);
	f->peer = -1;
	ck_assert_int_eq(conn_on_readable(&f->c, f->buf, sizeof(f->buf),
	    &f->bp), CONN_FAILED);
	ck_assert_int_eq(f->c.err, ECONNRESET);
	fixture_free(f);
}
END_TEST

/* conn_close gives the buffer back and closes the fd; a reuse recycles. */
START_TEST(close_releases)
{
	const size_t len = 1024 * 1024;
	struct fixture *f = fixture_new(1), *g;
	unsigned char *in, *pend;
	int fd;

	in = random_bytes(len, 5);
	(void)send_until_writing(f, in, len);
	pend = f->c.pend;
	fd = f->c.fd;
	conn_close(&f->c, &f->bp);
	ck_assert_uint_eq(f->bp.in_use, 0);
	ck_assert_uint_eq(f->bp.nfree, 1);
	ck_assert_ptr_null(f->c.pend);
	ck_assert_int_eq(f->c.fd, -1);
	ck_assert_int_eq(fcntl(fd, F_GETFD), -1);
	ck_assert_int_eq(errno, EBADF);
	conn_close(&f->c, &f->bp); /* twice is harmless */
	ck_assert_uint_eq(f->bp.in_use, 0);
	ck_assert_uint_eq(f->bp.nfree, 1);

	/* The next connection that needs a buffer gets the same one back. */
	g = fixture_new(1);
	g->bp = f->bp;
	memset(&f->bp, 0, sizeof(f->bp));
	(void)send_until_writing(g, in, len);
	ck_assert_ptr_eq(g->c.pend, pend);
	ck_assert_uint_eq(g->bp.nfree, 0);
	ck_assert_uint_eq(g->bp.in_use, 1);

	free(in);
	fixture_free(g);
	fixture_free(f);
}
END_TEST

/*
 * More connections with bytes pending than the pool keeps: each holds one
 * buffer; after they close the pool keeps BUFPOOL_KEEP and frees the rest,
 * and bufpool_drain frees those it kept (valgrind checks nothing leaks).
 */
START_TEST(bufpool_keeps_a_bounded_number)
{
	enum { N = BUFPOOL_KEEP + 3 };
	const size_t len = 256 * 1024;
	struct fixture *f[N];
	struct bufpool bp;
	unsigned char *in;
	unsigned i;

	in = random_bytes(len, 77);
	memset(&bp, 0, sizeof(bp));
	for (i = 0; i < N; i++) {
		f[i] = fixture_new(1);
		f[i]->bp = bp;
		(void)send_until_writing(f[i], in, len);
		bp = f[i]->bp;
		memset(&f[i]->bp, 0, sizeof(f[i]->bp));
		ck_assert_uint_eq(bp.in_use, i + 1);
	}
	for (i = 0; i < N; i++) {
		conn_close(&f[i]->c, &bp);
		ck_assert_uint_eq(bp.in_use, N - i - 1);
		ck_assert_uint_eq(bp.nfree, i + 1 < BUFPOOL_KEEP ? i + 1 :
		    BUFPOOL_KEEP);
		fixture_free(f[i]);
	}
	bufpool_drain(&bp);
	ck_assert_uint_eq(bp.nfree, 0);
	ck_assert_uint_eq(bp.in_use, 0);
	bufpool_drain(&bp); /* twice is harmless */
	free(in);
}
END_TEST

/* ---- the PROXY header before the echo (conn_on_header) ---- */

static const unsigned char v2_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

/* A v2 PROXY TCP6 header for [2001:db8::7]:40112 with a 5-byte TLV. */
static size_t
v2_tcp6(unsigned char *b)
{
	unsigned char src[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 7 };
	size_t n = 0;

	memcpy(b, v2_sig, 12);
	b[12] = 0x21;
	b[13] = 0x21;
	b[14] = 0;
	b[15] = 36 + 5;
	n = 16;
	memcpy(b + n, src, 16);
	memset(b + n + 16, 0, 16);
	b[n + 31] = 1;
	n += 32;
	b[n++] = 0x9c; /* 40112 */
	b[n++] = 0xb0;
	b[n++] = 0x1f; /* 8080 */
	b[n++] = 0x90;
	memcpy(b + n, "\x04\x00\x02id", 5); /* a NOOP TLV: skipped */
	return n + 5;
}

/* A v2 LOCAL header (HAProxy's health checks). */
static size_t
v2_local(unsigned char *b)
{
	memcpy(b, v2_sig, 12);
	b[12] = 0x20;
	b[13] = 0;
	b[14] = b[15] = 0;
	return 16;
}

struct hdr_case {
	const char *name;
	int v2;           /* 1: v2_tcp6, 2: v2_local; 0: text below */
	const char *text; /* the header (v1) or what is sent instead */
	const char *after; /* client bytes behind it */
	size_t chunk;     /* send this many bytes a turn; 0: all at once */
	int eof;          /* the client half-closes after it all */
	enum proxy_result want;
	const char *why;  /* conn_header_why() on PROXY_BAD */
	const char *peer; /* conn_format_peer() after PROXY_OK */
	int state;        /* c.proxy after PROXY_OK */
};

static const struct hdr_case hdr_cases[] = {
	{ "v1 TCP4 with data behind it", 0,
	    "PROXY TCP4 203.0.113.9 192.0.2.1 40112 7008\r\n", "hello\n", 0,
	    0, PROXY_OK, NULL, "203.0.113.9:40112 via 127.0.0.1:51000",
	    CONN_PROXY_DONE },
	{ "v1 TCP6 a byte at a time", 0,
	    "PROXY TCP6 2001:db8::9 2001:db8::1 5 7008\r\n", "abc", 1, 0,
	    PROXY_OK, NULL, "[2001:db8::9]:5 via 127.0.0.1:51000",
	    CONN_PROXY_DONE },
	{ "v1 UNKNOWN keeps the balancer", 0, "PROXY UNKNOWN\r\n", "x", 3, 0,
	    PROXY_OK, NULL, "127.0.0.1:51000", CONN_PROXY_LOCAL },
	{ "v2 TCP6 with a TLV, in pieces", 1, NULL, "tail bytes", 7, 0,
	    PROXY_OK, NULL, "[2001:db8::7]:40112 via 127.0.0.1:51000",
	    CONN_PROXY_DONE },
	{ "v2 LOCAL keeps the balancer", 2, NULL, "", 0, 0, PROXY_OK, NULL,
	    "127.0.0.1:51000", CONN_PROXY_LOCAL },
	{ "no header", 0, "hello\r\n", "", 0, 0, PROXY_BAD,
	    "bad header: not a PROXY header", NULL, 0 },
	{ "a bad v1 address", 0, "PROXY TCP4 1.2.3 1.2.3.4 1 2\r\n", "", 0, 0,
	    PROXY_BAD, "bad header: ", NULL, 0 },
	{ "v1 without its CRLF", 0,
	    "PROXY TCP4 203.0.113.9 192.0.2.1 40112 7008 and on and on and on "
	    "and on and on and on and on and on and on and on and on", "", 0,
	    0, PROXY_BAD, "bad header: ", NULL, 0 },
	{ "closed half way", 0, "PROXY TCP4 203.0.1", "", 4, 1, PROXY_BAD,
	    "closed before a complete header", NULL, 0 },
};

/*
 * Each case's bytes go in, chunk by chunk: nothing comes back before the
 * header is whole; then exactly the bytes behind it, uppercased, and the
 * peer is the client the header named.  A partial header holds one
 * pending buffer, and none is left after.
 */
START_TEST(header_table)
{
	const struct hdr_case *hc = &hdr_cases[_i];
	struct fixture *f = fixture_new(0);
	struct sockaddr_in bal = { .sin_family = AF_INET,
		.sin_port = htons(51000) };
	unsigned char in[512], back[512];
	struct proxy_hdr h;
	enum proxy_result r = PROXY_NEED_MORE;
	size_t len, hlen, sent = 0, step;
	char got[CONN_PEER_MAX];
	ssize_t n;
	int turns;

	bal.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	conn_set_peer(&f->c, (struct sockaddr_storage *)&bal);
	f->c.proxy = CONN_PROXY_WAIT;
	hlen = hc->v2 == 1 ? v2_tcp6(in) : hc->v2 == 2 ? v2_local(in) :
	    (size_t)snprintf((char *)in, sizeof(in), "%s", hc->text);
	len = hlen + (size_t)snprintf((char *)in + hlen, sizeof(in) - hlen,
	    "%s", hc->after);
	for (turns = 0; turns < 1000 && r == PROXY_NEED_MORE; turns++) {
		step = hc->chunk && len - sent > hc->chunk ? hc->chunk :
		    len - sent;
		if (step > 0)
			ck_assert_uint_eq(peer_send(f, in + sent, step), step);
		sent += step;
		if (sent == len && hc->eof)
			shutdown(f->peer, SHUT_WR);
		r = conn_on_header(&f->c, f->buf, sizeof(f->buf), &f->bp, &h);
		if (r == PROXY_NEED_MORE) {
			ck_assert_msg(sent < len || hc->eof, "%s: all of it "
			    "sent, still waiting", hc->name);
			ck_assert_uint_le(f->c.pend_len, PROXY_V2_MAX);
			ASSERT_PEER_EMPTY(f, back);
		}
	}
	ck_assert_msg(r == hc->want, "%s: %s, want %s", hc->name,
	    proxy_result_name(r), proxy_result_name(hc->want));
	if (r == PROXY_BAD) {
		conn_header_why(&f->c, &h, got, sizeof(got));
		ck_assert_msg(strncmp(got, hc->why, strlen(hc->why)) == 0,
		    "%s: why '%s', want '%s...'", hc->name, got, hc->why);
		ASSERT_PEER_EMPTY(f, back);
		ASSERT_BYTES(f, 0, 0);
	} else {
		ck_assert_int_eq(f->c.proxy, hc->state);
		conn_format_peer(&f->c, got, sizeof(got));
		ck_assert_str_eq(got, hc->peer);
		/* What followed waits, unsent, until the caller admits. */
		ck_assert_uint_eq(f->c.writing, len > hlen && sent > hlen);
		ASSERT_PEER_EMPTY(f, back);
		ck_assert_int_eq(conn_on_writable(&f->c, &f->bp), CONN_READING);
		ck_assert_uint_eq(f->c.writing, 0);
		ck_assert_ptr_null(f->c.pend);
		/* The rest of the client's bytes, now served as any others. */
		if (sent < len) {
			ck_assert_uint_eq(peer_send(f, in + sent, len - sent),
			    len - sent);
			ck_assert_int_eq(conn_on_readable(&f->c, f->buf,
			    sizeof(f->buf), &f->bp), CONN_READING);
		}
		n = recv(f->peer, back, sizeof(back), MSG_DONTWAIT);
		if (len == hlen)
			ck_assert(n == -1 && errno == EAGAIN);
		else {
			ck_assert_int_eq(n, (ssize_t)(len - hlen));
			for (step = 0; step < len - hlen; step++)
				ck_assert_uint_eq(back[step],
				    ref_upper(in[hlen + step]));
		}
		ASSERT_BYTES(f, len - hlen, len - hlen);
	}
	ck_assert_uint_eq(f->bp.in_use, f->c.pend != NULL);
	fixture_free(f);
}
END_TEST

/*
 * The header split, then its last piece with more client bytes behind it
 * than the socket takes back at once: they wait in the pending buffer
 * that held the header, the connection is WRITING, and every byte comes
 * back in order.
 */
START_TEST(header_then_backpressure)
{
	struct fixture *f = fixture_new(1);
	const char *hdr = "PROXY TCP4 203.0.113.9 192.0.2.1 40112 7008\r\n";
	size_t hlen = strlen(hdr), len = hlen + 40000, got = 0, sent;
	unsigned char *in = random_bytes(len, 7);
	enum conn_status st = CONN_WRITING;
	struct proxy_hdr h;
	int eof, turns;

	memcpy(in, hdr, hlen);
	f->c.proxy = CONN_PROXY_WAIT;
	ck_assert_uint_eq(peer_send(f, in, 10), 10);
	ck_assert_int_eq(conn_on_header(&f->c, f->buf, sizeof(f->buf), &f->bp,
	    &h), PROXY_NEED_MORE);
	sent = 10 + peer_send(f, in + 10, len - 10);
	ck_assert_int_eq(conn_on_header(&f->c, f->buf, sizeof(f->buf), &f->bp,
	    &h), PROXY_OK);
	ck_assert_uint_eq(f->c.writing, 1);
	for (turns = 0; turns < MAX_TURNS && got < len - hlen; turns++) {
		got += peer_recv(f, in + hlen, got, len - hlen - got, &eof);
		ck_assert(!eof);
		if (sent < len)
			sent += peer_send(f, in + sent, len - sent);
		st = f->c.writing ? conn_on_writable(&f->c, &f->bp) :
		    conn_on_readable(&f->c, f->buf, sizeof(f->buf), &f->bp);
		ck_assert_int_ne(st, CONN_FAILED);
	}
	ck_assert_uint_eq(got, len - hlen);
	ASSERT_BYTES(f, len - hlen, len - hlen);
	free(in);
	fixture_free(f);
}
END_TEST

/*
 * The last client on the scoreboard: nothing until a header named one;
 * then what conn_format_peer says, through the sequence lock; a store
 * in progress (an odd sequence) is not read as a client.
 */
START_TEST(last_client_roundtrip)
{
	struct scoreboard sb;
	struct sb_client sc;
	struct conn c;
	struct sockaddr_in6 cl = { .sin6_family = AF_INET6,
		.sin6_port = htons(40112) };
	struct sockaddr_in bal = { .sin_family = AF_INET,
		.sin_port = htons(51000) };
	char want[CONN_PEER_MAX], got[CONN_PEER_MAX];

	ck_assert_int_eq(scoreboard_create(&sb, 2), 0);
	ck_assert_int_eq(sb_client_load(&sb.slots[1], &sc), 0);
	ck_assert_int_eq(inet_pton(AF_INET6, "2001:db8::9", &cl.sin6_addr), 1);
	bal.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	conn_init(&c, -1, 0);
	conn_set_peer(&c, (struct sockaddr_storage *)&bal);
	c.via_family = c.peer_family;
	memcpy(c.via_addr, c.peer_addr, sizeof(c.via_addr));
	c.via_port = c.peer_port;
	conn_set_peer(&c, (struct sockaddr_storage *)&cl);
	c.proxy = CONN_PROXY_DONE;
	conn_format_peer(&c, want, sizeof(want));
	ck_assert_str_eq(want, "[2001:db8::9]:40112 via 127.0.0.1:51000");
	conn_publish_client(&c, &sb.slots[1]);
	ck_assert_int_eq(sb_client_load(&sb.slots[1], &sc), 1);
	conn_format_client(&sc, got, sizeof(got));
	ck_assert_str_eq(got, want);
	ck_assert_int_eq(sb_client_load(&sb.slots[0], &sc), 0);
	sb.slots[1].client_seq++; /* a writer half way */
	ck_assert_int_eq(sb_client_load(&sb.slots[1], &sc), 0);
	scoreboard_destroy(&sb);
}
END_TEST

Suite *
conn_suite(void)
{
	Suite *s = suite_create("conn");
	TCase *tc;

	h_case(s, "echo", 0, H_TESTS(init_state, echo_small_message,
	    eof_with_nothing_pending, data_then_eof, reads_per_event_bounded,
	    read_size_clamped));
	tc = h_case(s, "pending", 20, H_TESTS(partial_writes_and_backpressure,
	    half_close_delivers_everything));
	tcase_add_loop_test(tc, peer_gone_while_pending, 0, 2);
	tcase_add_test(tc, peer_reset_while_reading);
	tcase_add_test(tc, close_releases);
	tcase_add_test(tc, bufpool_keeps_a_bounded_number);
	tc = h_case(s, "proxy", 20, H_TESTS(header_then_backpressure,
	    last_client_roundtrip));
	tcase_add_loop_test(tc, header_table, 0, H_NELEM(hdr_cases));
	return s;
}
