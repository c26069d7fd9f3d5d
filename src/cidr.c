/*
 * cidr: address blocks for proxy_trusted, and whether a peer lies in one.
 *
 * Pure: no system call, no allocation (inet_pton and inet_ntop only read
 * and write the caller's memory).  Strict on purpose: a trust list is no
 * place for guesses, so names, scope ids, a prefix out of range and host
 * bits set past the prefix are all refused with a reason.
 *
 * An IPv4-mapped IPv6 block ("::ffff:10.0.0.0/104") is stored as the
 * IPv4 block it means (10.0.0.0/8), and an IPv4-mapped peer (a
 * dual-stack listener's IPv4 client) is matched as IPv4: one address,
 * one answer, however the socket saw it.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "cidr.h"

#define CIDR_EXPECTED                                                      \
	"expected A.B.C.D, A.B.C.D/0..32, an IPv6 address or IPV6/0..128, " \
	"numeric"

/* The ::ffff:0:0/96 prefix of IPv4-mapped IPv6 addresses. */
static const uint8_t mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0xff, 0xff };

/* "N" after the '/': decimal digits only, at most three, 0..max. */
static int
parse_bits(const char *s, unsigned max, unsigned *out)
{
	unsigned v = 0;
	size_t i;

	if (s[0] == '\0' || strlen(s) > 3)
		return -1;
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

/* Whether any bit of addr (len bytes) past the first bits is set. */
static int
host_bits_set(const uint8_t *addr, size_t len, unsigned bits)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned lo = (unsigned)i * 8;
		uint8_t keep;

		if (lo + 8 <= bits)
			continue;
		keep = lo >= bits ? 0 : (uint8_t)(0xff << (8 - (bits - lo)));
		if ((addr[i] & (uint8_t)~keep) != 0)
			return 1;
	}
	return 0;
}

/* Clear every bit of addr past the first bits. */
static void
clear_host_bits(uint8_t *addr, size_t len, unsigned bits)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned lo = (unsigned)i * 8;

		if (lo + 8 <= bits)
			continue;
		addr[i] &= lo >= bits ? 0 : (uint8_t)(0xff << (8 - (bits - lo)));
	}
}

/* A mapped block of /96 or longer is the IPv4 block it carries. */
static void
unmap(struct cidr *c)
{
	if (c->family != AF_INET6 || c->bits < 96 ||
	    memcmp(c->addr, mapped_prefix, sizeof(mapped_prefix)) != 0)
		return;
	memmove(c->addr, c->addr + 12, 4);
	memset(c->addr + 4, 0, 12);
	c->family = AF_INET;
	c->bits = (uint8_t)(c->bits - 96);
}

int
cidr_parse(const char *s, struct cidr *out, char *err, size_t errlen)
{
	char host[INET6_ADDRSTRLEN + 8], net[INET6_ADDRSTRLEN];
	const char *slash;
	struct cidr c;
	unsigned bits, max;
	size_t hlen;

	memset(&c, 0, sizeof(c));
	slash = strchr(s, '/');
	hlen = slash != NULL ? (size_t)(slash - s) : strlen(s);
	if (hlen == 0 || hlen >= sizeof(host)) {
		snprintf(err, errlen, "'%.64s': %s", s, CIDR_EXPECTED);
		return -1;
	}
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (inet_pton(AF_INET, host, c.addr) == 1) {
		c.family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, host, c.addr) == 1) {
		c.family = AF_INET6;
		max = 128;
	} else {
		snprintf(err, errlen, "'%.64s': '%s' is not a numeric IPv4 or "
		    "IPv6 address (echod does not resolve names); %s", s, host,
		    CIDR_EXPECTED);
		return -1;
	}
	bits = max;
	if (slash != NULL && parse_bits(slash + 1, max, &bits) == -1) {
		snprintf(err, errlen, "'%.64s': the prefix length '%.8s' is "
		    "not a number in 0..%u; %s", s, slash + 1, max,
		    CIDR_EXPECTED);
		return -1;
	}
	c.bits = (uint8_t)bits;
	if (host_bits_set(c.addr, max / 8, bits)) {
		clear_host_bits(c.addr, max / 8, bits);
		inet_ntop(c.family, c.addr, net, sizeof(net));
		snprintf(err, errlen, "'%.64s': bits are set past the /%u "
		    "prefix; expected the block's first address, %s/%u", s,
		    bits, net, bits);
		return -1;
	}
	unmap(&c);
	*out = c;
	return 0;
}

/* Whether the first bits of a and b agree. */
static int
prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	unsigned full = bits / 8, rest = bits % 8;
	uint8_t mask;

	if (memcmp(a, b, full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	mask = (uint8_t)(0xff << (8 - rest));
	return (a[full] & mask) == (b[full] & mask);
}

int
cidr_match(const struct cidr *set, size_t n, const struct sockaddr *sa)
{
	const struct sockaddr_in6 *sin6;
	uint8_t addr[16];
	int family;
	size_t i;

	if (sa == NULL)
		return 0;
	if (sa->sa_family == AF_INET) {
		memcpy(addr, &((const struct sockaddr_in *)(const void *)sa)
		    ->sin_addr, 4);
		family = AF_INET;
	} else if (sa->sa_family == AF_INET6) {
		sin6 = (const struct sockaddr_in6 *)(const void *)sa;
		memcpy(addr, &sin6->sin6_addr, 16);
		family = AF_INET6;
		if (memcmp(addr, mapped_prefix, sizeof(mapped_prefix)) == 0) {
			memmove(addr, addr + 12, 4);
			family = AF_INET;
		}
	} else
		return 0;
	for (i = 0; i < n; i++)
		if (set[i].family == family &&
		    prefix_equal(set[i].addr, addr, set[i].bits))
			return 1;
	return 0;
}

void
cidr_format(const struct cidr *c, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	if (len == 0)
		return;
	if ((c->family != AF_INET && c->family != AF_INET6) ||
	    inet_ntop(c->family, c->addr, a, sizeof(a)) == NULL) {
		snprintf(buf, len, "?");
		return;
	}
	snprintf(buf, len, "%s/%u", a, (unsigned)c->bits);
}
