/*
 * fuzz_conn: libFuzzer target for the connection state machine (conn.c).
 *
 * One connection over a non-blocking AF_UNIX socketpair with a small send
 * buffer: the server end is driven by conn_on_readable/conn_on_writable as
 * a worker would, the other end is a peer the input scripts.  This file is
 * linked with a copy of conn.o whose read() and send() are renamed to
 * fuzz_conn_read() and fuzz_conn_send() (objcopy, see the Makefile), so
 * the script can also make the next call fail (EINTR, EAGAIN, ECONNRESET,
 * ...) or come back short.
 *
 * Input: 2 header bytes (the size of the worker's shared buffer, the
 * server's SO_SNDBUF), then 2-byte operations (op, argument):
 *
 *   0 peer writes   1 peer reads    2 peer half-closes   3 peer closes
 *   4 read event    5 write event   6 event as epoll would deliver it
 *   7 next read() fails   8 next send() fails   9 next send() is short
 *   10 next read() is short
 *
 * What must hold after every step: the peer has read exactly the upper-
 * case of a prefix of what it wrote; what the server read and has not sent
 * is exactly what is pending; at most one pending buffer is in use, none
 * after conn_close.  At the end the peer half-closes and the connection is
 * driven as a worker would: it must finish (CONN_DONE) within a bound and
 * the peer must get back every byte.  ASan and libFuzzer's leak check do
 * the rest.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#define FUZZ_TARGET "fuzz_conn"
#include "fuzz.h"

#define SENT_MAX (256 * 1024) /* what the peer may write in one input */
#define OPS_MAX 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
ssize_t fuzz_conn_read(int fd, void *buf, size_t len);
ssize_t fuzz_conn_send(int fd, const void *buf, size_t len, int flags);

/* ---- fault injection into conn.c's read() and send() ---- */

static struct {
	int read_errno, send_errno; /* the next call fails with this */
	size_t read_cap, send_cap;  /* the next call moves at most this */
	int failed;                 /* a call failed for good (not EINTR...) */
} inj;

static int
fail_with(int *e)
{
	errno = *e;
	if (*e != EINTR && *e != EAGAIN)
		inj.failed = 1;
	*e = 0;
	return -1;
}

ssize_t
fuzz_conn_read(int fd, void *buf, size_t len)
{
	if (inj.read_errno != 0)
		return fail_with(&inj.read_errno);
	if (inj.read_cap != 0 && len > inj.read_cap)
		len = inj.read_cap;
	inj.read_cap = 0;
	return read(fd, buf, len);
}

ssize_t
fuzz_conn_send(int fd, const void *buf, size_t len, int flags)
{
	if (inj.send_errno != 0)
		return fail_with(&inj.send_errno);
	if (inj.send_cap != 0 && len > inj.send_cap)
		len = inj.send_cap;
	inj.send_cap = 0;
	return send(fd, buf, len, flags);
}

static const int read_errnos[] = { EINTR, EAGAIN, ECONNRESET, EIO,
	ETIMEDOUT, ENOMEM };
static const int send_errnos[] = { EINTR, EAGAIN, EPIPE, ECONNRESET,
	ENOBUFS, EINTR };

/* ---- the peer ---- */

static unsigned char *sent; /* every byte the peer wrote, in order */

struct run {
	struct conn c;
	struct bufpool bp;
	unsigned char *buf; /* the worker's shared buffer */
	size_t bufsz;
	int peer;          /* -1 once closed */
	int peer_shut;     /* half-closed */
	int open;          /* the server end is not closed yet */
	enum conn_status st;
	size_t nsent, nrecv;
	size_t sent_max; /* SENT_MAX, less for a small buffer: speed */
	int eof_seen;
};

static unsigned char
ref_upper(unsigned char b)
{
	return b >= 'a' && b <= 'z' ? (unsigned char)(b - 'a' + 'A') : b;
}

/* Byte k of what the peer writes: every value, letters among them. */
static unsigned char
stream_byte(size_t k)
{
	return (unsigned char)(k * 7 + (k >> 8) * 13 + 'a');
}

static void
peer_write(struct run *r, size_t len)
{
	ssize_t n;
	size_t i;

	if (r->peer == -1 || r->peer_shut)
		return;
	if (len > r->sent_max - r->nsent)
		len = r->sent_max - r->nsent;
	if (len == 0)
		return;
	for (i = 0; i < len; i++)
		sent[r->nsent + i] = stream_byte(r->nsent + i);
	n = send(r->peer, sent + r->nsent, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n > 0)
		r->nsent += (size_t)n;
	else
		CHECK(n == -1 && (errno == EAGAIN || errno == EPIPE ||
		    errno == ECONNRESET), "peer send: %s", strerror(errno));
}

/* Read up to len bytes (0: all there is); check them against sent[]. */
static void
peer_read(struct run *r, size_t len)
{
	unsigned char b[4096];
	size_t i, want;
	ssize_t n;

	while (r->peer != -1 && !r->eof_seen) {
		want = len == 0 || len > sizeof(b) ? sizeof(b) : len;
		n = read(r->peer, b, want);
		if (n == -1) {
			CHECK(errno == EAGAIN || errno == ECONNRESET,
			    "peer read: %s", strerror(errno));
			return;
		}
		if (n == 0) {
			r->eof_seen = 1;
			return;
		}
		CHECK(r->nrecv + (size_t)n <= r->nsent,
		    "peer got %zu bytes back, it sent %zu",
		    r->nrecv + (size_t)n, r->nsent);
		for (i = 0; i < (size_t)n; i++)
			CHECK(b[i] == ref_upper(sent[r->nrecv + i]),
			    "byte %zu is 0x%02x, want 0x%02x", r->nrecv + i,
			    b[i], ref_upper(sent[r->nrecv + i]));
		r->nrecv += (size_t)n;
		if (len != 0 && (len -= (size_t)n) == 0)
			return;
	}
}

/* ---- the server end, as a worker drives it ---- */

static void
check_state(const struct run *r)
{
	const struct conn *c = &r->c;

	if (!r->open) {
		CHECK(r->bp.in_use == 0, "%lu buffers in use after close",
		    r->bp.in_use);
		return;
	}
	CHECK(r->bp.in_use <= 1, "%lu buffers in use", r->bp.in_use);
	CHECK((r->st == CONN_WRITING) == (c->writing != 0),
	    "status %d, writing %d", (int)r->st, c->writing);
	CHECK((c->pend != NULL) == (c->writing != 0) &&
	    r->bp.in_use == (c->writing ? 1u : 0u),
	    "pend %p, writing %d, in use %lu", (void *)c->pend, c->writing,
	    r->bp.in_use);
	if (c->writing)
		CHECK(c->pend_len > 0 &&
		    (size_t)c->pend_off + c->pend_len <= CONN_BUFSIZE,
		    "pending %u at %u", c->pend_len, c->pend_off);
	CHECK(c->bytes_out <= c->bytes_in && c->bytes_in <= r->nsent,
	    "in %llu, out %llu, sent %zu", (unsigned long long)c->bytes_in,
	    (unsigned long long)c->bytes_out, r->nsent);
	CHECK(c->bytes_in - c->bytes_out == (c->writing ? c->pend_len : 0),
	    "in %llu - out %llu != pending %u",
	    (unsigned long long)c->bytes_in,
	    (unsigned long long)c->bytes_out, c->pend_len);
}

static void
after_event(struct run *r, enum conn_status st)
{
	r->st = st;
	if (st == CONN_DONE) {
		/* EOF, and everything read was sent. */
		CHECK((r->peer_shut || r->peer == -1) && !r->c.writing,
		    "DONE without the peer's EOF");
		CHECK(r->c.bytes_out == r->c.bytes_in, "DONE owing bytes");
		if (r->peer_shut && r->peer != -1)
			CHECK(r->c.bytes_in == r->nsent,
			    "DONE having read %llu of %zu bytes",
			    (unsigned long long)r->c.bytes_in, r->nsent);
	}
	if (st == CONN_FAILED)
		/* With the peer there and no fault injected: no reason. */
		CHECK(inj.failed || r->peer == -1, "FAILED: %s",
		    strerror(r->c.err));
	if (st == CONN_DONE || st == CONN_FAILED) {
		conn_close(&r->c, &r->bp);
		r->open = 0;
	}
	check_state(r);
}

static void
server_event(struct run *r, int op)
{
	enum conn_status st;

	if (!r->open)
		return;
	if (op == 6) /* what epoll delivers: EPOLLOUT while writing */
		op = r->c.writing ? 5 : 4;
	if (op == 4)
		st = conn_on_readable(&r->c, r->buf, r->bufsz, &r->bp);
	else
		st = conn_on_writable(&r->c, &r->bp);
	after_event(r, st);
}

/*
 * The end: the peer half-closes and reads while the connection runs as a
 * worker runs it, with no more faults.  Each turn moves at least one byte
 * or ends it, so the bound only catches a connection that stopped making
 * progress.  A connection that had failed already owes nothing.
 */
static void
finish(struct run *r)
{
	size_t turns, max = 2 * (r->nsent + 16);

	inj.read_errno = inj.send_errno = 0;
	inj.read_cap = inj.send_cap = 0;
	if (r->peer != -1 && !r->peer_shut) {
		CHECK(shutdown(r->peer, SHUT_WR) == 0, "shutdown");
		r->peer_shut = 1;
	}
	for (turns = 0; r->open && turns < max; turns++) {
		peer_read(r, 0);
		server_event(r, 6);
	}
	CHECK(!r->open, "connection still open after %zu turns (status %d, "
	    "in %llu, out %llu, sent %zu)", turns, (int)r->st,
	    (unsigned long long)r->c.bytes_in,
	    (unsigned long long)r->c.bytes_out, r->nsent);
	if (r->peer == -1)
		return;
	peer_read(r, 0);
	if (r->st == CONN_FAILED)
		return; /* after_event() checked that it had a reason */
	CHECK(r->eof_seen, "no EOF after close");
	CHECK(r->nrecv == r->nsent, "peer got %zu of %zu bytes back",
	    r->nrecv, r->nsent);
}

static void
setup(struct run *r, const uint8_t *hdr)
{
	int sv[2], sndbuf;

	memset(r, 0, sizeof(*r));
	/* Shared buffer: 1 byte up to twice CONN_BUFSIZE (conn caps it). */
	r->bufsz = hdr[0] == 255 ? 2 * CONN_BUFSIZE :
	    1 + (size_t)hdr[0] * hdr[0];
	CHECK((r->buf = malloc(r->bufsz)) != NULL, "malloc");
	r->sent_max = 1024 + r->bufsz * 64;
	if (r->sent_max > SENT_MAX)
		r->sent_max = SENT_MAX;
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0, sv) == 0, "socketpair: %s", strerror(errno));
	if (hdr[1] != 0) {
		sndbuf = hdr[1] * 512; /* the kernel's minimum applies */
		(void)setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf,
		    sizeof(sndbuf));
	}
	conn_init(&r->c, sv[0], 0);
	r->peer = sv[1];
	r->open = 1;
	r->st = CONN_READING;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run r;
	size_t i, arg;
	int op;

	if (size < 2)
		return 0;
	if (sent == NULL)
		CHECK((sent = malloc(SENT_MAX)) != NULL, "malloc");
	memset(&inj, 0, sizeof(inj));
	setup(&r, data);
	for (i = 2; i + 1 < size && i < 2 + 2 * OPS_MAX; i += 2) {
		op = data[i] % 11;
		arg = data[i + 1];
		switch (op) {
		case 0:
			peer_write(&r, 1 + arg * arg);
			break;
		case 1:
			peer_read(&r, 1 + arg * arg);
			break;
		case 2:
			if (r.peer != -1 && !r.peer_shut) {
				CHECK(shutdown(r.peer, SHUT_WR) == 0,
				    "shutdown");
				r.peer_shut = 1;
			}
			break;
		case 3: /* gone, unread data and all: the server sees a reset */
			if (r.peer != -1)
				close(r.peer);
			r.peer = -1;
			break;
		case 4:
		case 5:
		case 6:
			server_event(&r, op);
			break;
		case 7:
			inj.read_errno = read_errnos[arg % 6];
			break;
		case 8:
			inj.send_errno = send_errnos[arg % 6];
			break;
		case 9:
			inj.send_cap = 1 + arg * arg;
			break;
		case 10:
			inj.read_cap = 1 + arg * arg;
			break;
		}
		check_state(&r);
	}
	finish(&r);
	if (r.peer != -1)
		close(r.peer);
	bufpool_drain(&r.bp);
	free(r.buf);
	return 0;
}
