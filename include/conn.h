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
	uint8_t pad[2];
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
};

void conn_init(struct conn *c, int fd, uint64_t now_ms);

/* The peer's address, kept compactly from accept(). */
struct sockaddr_storage;
void conn_set_peer(struct conn *c, const struct sockaddr_storage *ss);
/* Back as a sockaddr; ss_family AF_UNSPEC when unknown. */
void conn_peer(const struct conn *c, struct sockaddr_storage *ss);

/* Read what the client sent and echo it (buf is the shared buffer). */
enum conn_status conn_on_readable(struct conn *c, unsigned char *buf,
    size_t bufsz, struct bufpool *bp);

/* Write pending bytes. */
enum conn_status conn_on_writable(struct conn *c, struct bufpool *bp);

/* Release the pending buffer and close the socket. */
void conn_close(struct conn *c, struct bufpool *bp);

void bufpool_drain(struct bufpool *bp);

#endif
