/*
 * conn: one client connection's state machine and its pending bytes.
 *
 * A connection is read into the worker's shared buffer, uppercased there
 * and written straight back.  Only what the kernel would not take is
 * copied into a per-connection pending buffer, and while anything is
 * pending the connection is not read: that is the whole of backpressure,
 * and why a client that never reads costs at most one buffer.
 * No system call here but read/send/close on the connection's own fd.
 */
#ifndef ECHOD_CONN_H
#define ECHOD_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "olist.h"
#include "proxy.h"

#define CONN_BUFSIZE (64 * 1024)
#define CONN_READS_PER_EVENT 4

/* Pending buffers, recycled so a slow reader does not cost a malloc. */
#define BUFPOOL_KEEP 64
struct bufpool {
	unsigned char *free[BUFPOOL_KEEP];
	unsigned nfree;
	unsigned long in_use;
};

enum conn_status {
	CONN_READING, /* nothing pending: wants to read */
	CONN_WRITING, /* bytes pending: wants to write, must not read */
	CONN_DONE,    /* client sent EOF and got every byte back */
	CONN_FAILED,  /* reset or error: err says which */
};

struct conn {
	int fd;
	int err;          /* errno of a failure, for the log */
	struct olist_link idle; /* worker's idle list; its free list too */
	uint8_t writing;  /* pending bytes wait for EPOLLOUT */
	uint8_t counted;  /* counted in the per-client limits */
	uint8_t proxy;    /* enum conn_proxy */
	uint8_t pad;
	struct olist_link age;  /* worker's age list, oldest first */
	uint32_t pend_off;
	uint32_t pend_len;
	unsigned char *pend;
	uint64_t last_ms; /* last activity, for idle_timeout */
	uint64_t start_ms;
	uint64_t bytes_in;
	uint64_t bytes_out;
	/* The peer, kept from accept(): after a reset getpeername() fails. */
	uint8_t peer_addr[16];
	uint16_t peer_port; /* network order */
	uint8_t peer_family;
	/*
	 * Behind a balancer (CONN_PROXY_DONE): the peer above is the client
	 * the PROXY header named, and via the balancer that connected.
	 */
	uint8_t via_family;
	uint8_t via_addr[16];
	uint16_t via_port;
};

/* Where a connection stands with the PROXY protocol. */
enum conn_proxy {
	CONN_PROXY_NONE = 0, /* a plain listener's: no header */
	CONN_PROXY_WAIT,     /* a header is due; pend holds what came of it */
	CONN_PROXY_DONE,     /* header read: peer is the client it named */
	CONN_PROXY_LOCAL,    /* header read, LOCAL or UNKNOWN: the balancer's
				own connection (a health check); not counted
				in per-client limits */
};

void conn_init(struct conn *c, int fd, uint64_t now_ms);

/* The peer's address, kept compactly from accept(). */
struct sockaddr_storage;
void conn_set_peer(struct conn *c, const struct sockaddr_storage *ss);
/* Back as a sockaddr; ss_family AF_UNSPEC when unknown. */
void conn_peer(const struct conn *c, struct sockaddr_storage *ss);

/*
 * The peer for the log: "203.0.113.9:40112", "203.0.113.9:40112 via
 * 127.0.0.1:51000" behind a balancer, "(unknown peer)".
 */
/*
 * The client a header named, as the worker's last client on the
 * scoreboard (one writer at a time: the caller serialises).
 */
struct sb_slot;
struct sb_client;
void conn_publish_client(const struct conn *c, struct sb_slot *slot);
/* And back, for the master's table: "203.0.113.9:40112 via ...". */
void conn_format_client(const struct sb_client *sc, char *buf, size_t len);

#define CONN_PEER_MAX 112 /* two "[v6]:port", " via " and the NUL */
void conn_format_peer(const struct conn *c, char *buf, size_t len);

/*
 * A connection of a proxied listener, before its header (CONN_PROXY_WAIT):
 * read what came and parse it (proxy.h).  A partial header is held in a
 * pending buffer (at most PROXY_V2_MAX bytes are ever held).
 *   PROXY_NEED_MORE: wait for more (nothing to write).
 *   PROXY_OK: *h is the header; the peer is now its source (c->proxy is
 *     CONN_PROXY_DONE, or CONN_PROXY_LOCAL keeping the balancer's
 *     address).  The bytes that followed it wait uppercased in the
 *     pending buffer (c->writing): the caller admits the client first,
 *     then sends them with conn_on_writable (or closes, and they go).
 *   PROXY_BAD: h->why says why; the caller closes.  Also for an end before
 *     a complete header ("closed before a complete header") or a read
 *     error (c->err, why "read error").
 * Nothing is ever written here.
 */
enum proxy_result conn_on_header(struct conn *c, unsigned char *buf,
    size_t bufsz, struct bufpool *bp, struct proxy_hdr *h);
/* Why a PROXY_BAD closes, for the log: "bad header: <the parser's why>",
 * "closed before a complete header", "read error: <strerror>". */
void conn_header_why(const struct conn *c, const struct proxy_hdr *h,
    char *buf, size_t len);

/* Read what the client sent and echo it (buf is the shared buffer). */
enum conn_status conn_on_readable(struct conn *c, unsigned char *buf,
    size_t bufsz, struct bufpool *bp);

/* Write pending bytes. */
enum conn_status conn_on_writable(struct conn *c, struct bufpool *bp);

/* Release the pending buffer and close the socket. */
void conn_close(struct conn *c, struct bufpool *bp);

void bufpool_drain(struct bufpool *bp);

#endif
