/*
 * proxy: the PROXY protocol header (HAProxy's proxy-protocol.txt, v1 text
 * and v2 binary) as a pure parser.  It reads bytes a caller has received
 * and never does I/O; it never reads past the header, so bytes behind it
 * are the client's and stay with the caller.
 */
#ifndef ECHOD_PROXY_H
#define ECHOD_PROXY_H

#include <stddef.h>
#include <sys/socket.h>

#define PROXY_V1_MAX 107 /* the longest v1 line, CRLF included */
#define PROXY_V2_FIXED 16 /* signature, version/command, family, length */
/*
 * The longest v2 header accepted: the fixed part, the largest address
 * block (two AF_UNIX paths, 216 bytes) and up to 1024 bytes of TLVs.
 * HAProxy's own TLVs (ALPN, authority, CRC, unique id, SSL) fit in far
 * less; without a cap a peer could make a worker hold 64 KiB per
 * connection before anything is known about it.
 */
#define PROXY_V2_MAX (PROXY_V2_FIXED + 216 + 1024)

enum proxy_result {
	PROXY_NEED_MORE, /* a valid prefix: read more */
	PROXY_OK,        /* a whole header: *consumed is its length */
	PROXY_BAD        /* not a valid header: out->why says why */
};

struct proxy_hdr {
	int version;                  /* 1 or 2 */
	int local;                    /* keep the connection's own addresses */
	struct sockaddr_storage src;  /* the client (port in network order) */
	struct sockaddr_storage dst;  /* the address it connected to */
	const char *why;              /* PROXY_BAD: a short static reason */
};

enum proxy_result proxy_parse(const unsigned char *, size_t,
    struct proxy_hdr *, size_t *);
const char *proxy_result_name(enum proxy_result);

#endif
