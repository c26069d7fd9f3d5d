/*
 * conn: one connection's echo state machine.
 *
 * READING --(kernel took less than we read)--> WRITING --(all sent)--> READING
 * READING --(EOF)--> DONE;  any state --(reset, error)--> FAILED
 *
 * Never reads while WRITING, so a client that does not read its replies
 * stops being read: its bytes wait in the kernel's buffers and TCP flow
 * control slows the client down.  Never exits or logs: the worker does.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "echo.h"

static unsigned char *
bufpool_get(struct bufpool *bp)
{
	unsigned char *b;

	if (bp->nfree > 0)
		b = bp->free[--bp->nfree];
	else if ((b = malloc(CONN_BUFSIZE)) == NULL)
		return NULL;
	bp->in_use++;
	return b;
}

static void
bufpool_put(struct bufpool *bp, unsigned char *b)
{
	bp->in_use--;
	if (bp->nfree < BUFPOOL_KEEP)
		bp->free[bp->nfree++] = b;
	else
		free(b);
}

void
bufpool_drain(struct bufpool *bp)
{
	while (bp->nfree > 0)
		free(bp->free[--bp->nfree]);
}

void
conn_init(struct conn *c, int fd, uint64_t now_ms)
{
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->last_ms = c->start_ms = now_ms;
}

void
conn_set_peer(struct conn *c, const struct sockaddr_storage *ss)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

	c->peer_family = AF_UNSPEC;
	if (ss->ss_family == AF_INET) {
		memcpy(c->peer_addr, &sin->sin_addr, 4);
		c->peer_port = sin->sin_port;
		c->peer_family = AF_INET;
	} else if (ss->ss_family == AF_INET6) {
		memcpy(c->peer_addr, &sin6->sin6_addr, 16);
		c->peer_port = sin6->sin6_port;
		c->peer_family = AF_INET6;
	}
}

void
conn_peer(const struct conn *c, struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	ss->ss_family = c->peer_family;
	if (c->peer_family == AF_INET) {
		memcpy(&sin->sin_addr, c->peer_addr, 4);
		sin->sin_port = c->peer_port;
	} else if (c->peer_family == AF_INET6) {
		memcpy(&sin6->sin6_addr, c->peer_addr, 16);
		sin6->sin6_port = c->peer_port;
	}
}

static ssize_t
send_some(int fd, const unsigned char *p, size_t len)
{
	ssize_t w;

	do
		w = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (w == -1 && errno == EINTR);
	if (w == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	return w;
}

/* Send buf; keep what the kernel would not take. */
static enum conn_status
echo_back(struct conn *c, const unsigned char *buf, size_t n,
    struct bufpool *bp)
{
	ssize_t w;

	if ((w = send_some(c->fd, buf, n)) == -1) {
		c->err = errno;
		return CONN_FAILED;
	}
	c->bytes_out += (uint64_t)w;
	if ((size_t)w == n)
		return CONN_READING;
	if ((c->pend = bufpool_get(bp)) == NULL) {
		c->err = ENOMEM;
		return CONN_FAILED;
	}
	c->pend_off = 0;
	c->pend_len = (uint32_t)(n - (size_t)w);
	memcpy(c->pend, buf + w, c->pend_len);
	c->writing = 1;
	return CONN_WRITING;
}

enum conn_status
conn_on_readable(struct conn *c, unsigned char *buf, size_t bufsz,
    struct bufpool *bp)
{
	enum conn_status st;
	ssize_t n;
	int i;

	if (c->writing)
		return CONN_WRITING;
	if (bufsz > CONN_BUFSIZE)
		bufsz = CONN_BUFSIZE;
	for (i = 0; i < CONN_READS_PER_EVENT; i++) {
		do
			n = read(c->fd, buf, bufsz);
		while (n == -1 && errno == EINTR);
		if (n == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return CONN_READING;
			c->err = errno;
			return CONN_FAILED;
		}
		if (n == 0)
			return CONN_DONE;
		c->bytes_in += (uint64_t)n;
		echo_upper(buf, (size_t)n);
		if ((st = echo_back(c, buf, (size_t)n, bp)) != CONN_READING)
			return st;
		if ((size_t)n < bufsz)
			break; /* the socket is most likely empty now */
	}
	return CONN_READING;
}

enum conn_status
conn_on_writable(struct conn *c, struct bufpool *bp)
{
	ssize_t w;

	if (!c->writing)
		return CONN_READING;
	if ((w = send_some(c->fd, c->pend + c->pend_off, c->pend_len)) == -1) {
		c->err = errno;
		return CONN_FAILED;
	}
	c->bytes_out += (uint64_t)w;
	c->pend_off += (uint32_t)w;
	c->pend_len -= (uint32_t)w;
	if (c->pend_len > 0)
		return CONN_WRITING;
	bufpool_put(bp, c->pend);
	c->pend = NULL;
	c->writing = 0;
	return CONN_READING;
}

void
conn_close(struct conn *c, struct bufpool *bp)
{
	if (c->pend != NULL) {
		bufpool_put(bp, c->pend);
		c->pend = NULL;
	}
	if (c->fd != -1)
		close(c->fd);
	c->fd = -1;
}
