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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "echo.h"
#include "listener.h"
#include "scoreboard.h"

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

/* The balancer becomes the "via"; the peer, the client it names. */
static void
conn_set_via(struct conn *c, const struct sockaddr_storage *client)
{
	c->via_family = c->peer_family;
	memcpy(c->via_addr, c->peer_addr, sizeof(c->via_addr));
	c->via_port = c->peer_port;
	conn_set_peer(c, client);
}

static size_t
format_one(uint8_t family, const uint8_t *addr, uint16_t port, char *buf,
    size_t len)
{
	struct conn tmp;
	struct sockaddr_storage ss;

	memset(&tmp, 0, sizeof(tmp));
	tmp.peer_family = family;
	memcpy(tmp.peer_addr, addr, sizeof(tmp.peer_addr));
	tmp.peer_port = port;
	conn_peer(&tmp, &ss);
	if (ss.ss_family == AF_UNSPEC)
		snprintf(buf, len, "(unknown peer)");
	else
		listener_format((struct sockaddr *)&ss, buf, len);
	return strlen(buf);
}

void
conn_format_peer(const struct conn *c, char *buf, size_t len)
{
	size_t n;

	if (len == 0)
		return;
	n = format_one(c->peer_family, c->peer_addr, c->peer_port, buf, len);
	if (c->proxy != CONN_PROXY_DONE || n + 5 >= len)
		return;
	memcpy(buf + n, " via ", 6);
	n += 5;
	format_one(c->via_family, c->via_addr, c->via_port, buf + n, len - n);
}

void
conn_publish_client(const struct conn *c, struct sb_slot *slot)
{
	struct sb_client sc;

	memset(&sc, 0, sizeof(sc));
	sc.family = c->peer_family;
	sc.port = c->peer_port;
	memcpy(sc.addr, c->peer_addr, sizeof(sc.addr));
	sc.via_family = c->via_family;
	sc.via_port = c->via_port;
	memcpy(sc.via_addr, c->via_addr, sizeof(sc.via_addr));
	sb_client_store(slot, &sc);
}

void
conn_format_client(const struct sb_client *sc, char *buf, size_t len)
{
	struct conn c;

	memset(&c, 0, sizeof(c));
	c.peer_family = sc->family;
	c.peer_port = sc->port;
	memcpy(c.peer_addr, sc->addr, sizeof(c.peer_addr));
	c.via_family = sc->via_family;
	c.via_port = sc->via_port;
	memcpy(c.via_addr, sc->via_addr, sizeof(c.via_addr));
	c.proxy = CONN_PROXY_DONE;
	conn_format_peer(&c, buf, len);
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

static const char why_eof[] = "closed before a complete header";
static const char why_read[] = "read error";

/*
 * A header is complete: take its addresses, and keep what followed it,
 * uppercased, as pending bytes: they go out only once the caller has
 * admitted the client the header named (conn_on_writable).
 */
static enum proxy_result
header_done(struct conn *c, unsigned char *p, size_t have, size_t consumed,
    struct bufpool *bp, struct proxy_hdr *h)
{
	size_t left = have - consumed;

	if (h->local)
		c->proxy = CONN_PROXY_LOCAL;
	else {
		conn_set_via(c, &h->src);
		c->proxy = CONN_PROXY_DONE;
	}
	c->bytes_in += left;
	echo_upper(p + consumed, left);
	if (left == 0) {
		if (c->pend != NULL)
			bufpool_put(bp, c->pend);
		c->pend = NULL;
		c->pend_off = c->pend_len = 0;
		return PROXY_OK;
	}
	if (c->pend == NULL) { /* it all came in one read, into buf */
		if ((c->pend = bufpool_get(bp)) == NULL) {
			c->err = ENOMEM;
			h->why = why_read;
			return PROXY_BAD;
		}
		memcpy(c->pend, p + consumed, left);
		consumed = 0;
	}
	c->pend_off = (uint32_t)consumed;
	c->pend_len = (uint32_t)left;
	c->writing = 1;
	return PROXY_OK;
}


void
conn_header_why(const struct conn *c, const struct proxy_hdr *h, char *buf,
    size_t len)
{
	if (h->why == why_eof)
		snprintf(buf, len, "%s", why_eof);
	else if (h->why == why_read)
		snprintf(buf, len, "%s: %s", why_read, strerror(c->err));
	else
		snprintf(buf, len, "bad header: %s", h->why ? h->why : "?");
}

enum proxy_result
conn_on_header(struct conn *c, unsigned char *buf, size_t bufsz,
    struct bufpool *bp, struct proxy_hdr *h)
{
	unsigned char *p = c->pend != NULL ? c->pend : buf;
	size_t have = c->pend != NULL ? c->pend_len : 0, consumed = 0;
	enum proxy_result r;
	ssize_t n;

	memset(h, 0, sizeof(*h));
	if (bufsz > CONN_BUFSIZE)
		bufsz = CONN_BUFSIZE;
	do
		n = read(c->fd, p + have, (c->pend != NULL ? CONN_BUFSIZE :
		    bufsz) - have);
	while (n == -1 && errno == EINTR);
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return PROXY_NEED_MORE;
	if (n == -1) {
		c->err = errno;
		h->why = why_read;
		return PROXY_BAD;
	}
	if (n == 0) {
		h->why = why_eof;
		return PROXY_BAD;
	}
	have += (size_t)n;
	if ((r = proxy_parse(p, have, h, &consumed)) == PROXY_OK)
		return header_done(c, p, have, consumed, bp, h);
	if (r == PROXY_BAD)
		return r;
	/* A valid prefix, so at most PROXY_V2_MAX bytes: hold them. */
	if (c->pend == NULL) {
		if ((c->pend = bufpool_get(bp)) == NULL) {
			c->err = ENOMEM;
			h->why = why_read;
			return PROXY_BAD;
		}
		memcpy(c->pend, buf, have);
	}
	c->pend_off = 0;
	c->pend_len = (uint32_t)have;
	return PROXY_NEED_MORE;
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
