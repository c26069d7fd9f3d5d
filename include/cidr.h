/*
 * cidr: address blocks ("10.0.0.0/8", "::1/128", "127.0.0.1") for
 * proxy_trusted, and whether a peer lies in one of them.  Pure: no
 * system call, no allocation.
 */
#ifndef ECHOD_CIDR_H
#define ECHOD_CIDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct cidr {
	uint8_t family; /* AF_INET or AF_INET6 */
	uint8_t bits;   /* prefix length: 0..32 or 0..128 */
	uint8_t addr[16]; /* network order; bits past the prefix are zero */
};

/*
 * Parse "A.B.C.D/N", "X:Y::Z/N", or an address alone (a /32 or /128).
 * Numeric only.  Host bits set past the prefix ("10.0.0.1/8") are an
 * error: the operator meant something else.  0, or -1 with a message in
 * err ("'x': why; expected ...").
 */
int cidr_parse(const char *s, struct cidr *out, char *err, size_t errlen);

/*
 * 1 if sa (AF_INET or AF_INET6) lies in one of the n blocks of set, 0
 * if not (another family, or n == 0).  An IPv4-mapped IPv6 address
 * (::ffff:a.b.c.d, a dual-stack listener's IPv4 client) is matched as
 * the IPv4 address it carries.
 */
int cidr_match(const struct cidr *set, size_t n, const struct sockaddr *sa);

/* "10.0.0.0/8", "::1/128". */
void cidr_format(const struct cidr *c, char *buf, size_t len);

#endif
