/*
 * proxy: parse a PROXY protocol header, v1 (text) or v2 (binary), from
 * the first bytes of a connection (HAProxy's proxy-protocol.txt).
 *
 * Pure: no I/O, no allocation, no state.  The caller calls proxy_parse
 * again with more bytes after PROXY_NEED_MORE.  It must never read past
 * the header it reports (the rest is client data) and never accept what
 * the specification does not: a PROXY_BAD is decided as soon as the bytes
 * seen cannot start a valid header.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

#include "proxy.h"

static const unsigned char v2_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

#define V2_CMD_LOCAL 0x0
#define V2_CMD_PROXY 0x1
#define V2_TCP4 0x11 /* AF_INET, STREAM */
#define V2_TCP6 0x21 /* AF_INET6, STREAM */
#define V2_ADDR4_LEN 12
#define V2_ADDR6_LEN 36

static enum proxy_result
bad(struct proxy_hdr *out, const char *why)
{
	out->why = why;
	return PROXY_BAD;
}

static size_t
min_size(size_t a, size_t b)
{
	return a < b ? a : b;
}

/* A v1 port: 1 to 5 decimal digits, at most 65535. */
static int
v1_port(const char *s, in_port_t *port)
{
	size_t n = strlen(s), i;
	unsigned long v = 0;

	if (n == 0 || n > 5)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > 65535)
		return -1;
	*port = htons((uint16_t)v);
	return 0;
}

/* Address a of family af (and port p) into ss; -1 bad, -2 other family. */
static int
v1_addr(int af, const char *a, const char *p, struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	struct in6_addr scratch;
	in_port_t port;

	if (v1_port(p, &port) == -1)
		return -1;
	memset(ss, 0, sizeof(*ss));
	if (af == AF_INET && inet_pton(AF_INET, a, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = port;
		return 0;
	}
	if (af == AF_INET6 && inet_pton(AF_INET6, a, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = port;
		return 0;
	}
	if (inet_pton(af == AF_INET ? AF_INET6 : AF_INET, a, &scratch) == 1)
		return -2;
	return -1;
}

/* Split line at single spaces into at most max fields; -1 on an empty one. */
static int
v1_split(char *line, char **f, int max)
{
	int n = 0;
	char *p = line;

	for (;;) {
		if (n == max)
			return -1;
		f[n++] = p;
		p = strchr(p, ' ');
		if (p == NULL)
			break;
		*p++ = '\0';
	}
	for (int i = 0; i < n; i++)
		if (f[i][0] == '\0')
			return -1;
	return n;
}

/* The fields of a whole v1 line (without CRLF). */
static enum proxy_result
v1_fields(char *line, struct proxy_hdr *out)
{
	char *f[6];
	int n, af, r1, r2;

	if (strncmp(line, "PROXY UNKNOWN", 13) == 0 &&
	    (line[13] == '\0' || line[13] == ' ')) {
		out->local = 1;
		return PROXY_OK;
	}
	n = v1_split(line, f, 6);
	if (n < 2 || strcmp(f[0], "PROXY") != 0)
		return bad(out, "malformed v1 line");
	if (strcmp(f[1], "TCP4") == 0)
		af = AF_INET;
	else if (strcmp(f[1], "TCP6") == 0)
		af = AF_INET6;
	else
		return bad(out, "unknown v1 protocol");
	if (n != 6)
		return bad(out, "malformed v1 line");
	r1 = v1_addr(af, f[2], f[4], &out->src);
	r2 = v1_addr(af, f[3], f[5], &out->dst);
	if (r1 == -1 || r2 == -1)
		return bad(out, "bad address");
	if (r1 == -2 || r2 == -2)
		return bad(out, "family does not match");
	return PROXY_OK;
}

static enum proxy_result
parse_v1(const unsigned char *buf, size_t len, struct proxy_hdr *out,
    size_t *consumed)
{
	static const char prefix[] = "PROXY ";
	char line[PROXY_V1_MAX + 1];
	size_t n = min_size(len, PROXY_V1_MAX), i;
	enum proxy_result r;

	out->version = 1;
	if (memcmp(buf, prefix, min_size(len, sizeof(prefix) - 1)) != 0)
		return bad(out, "not a PROXY header");
	for (i = 0; i < n; i++)
		if (buf[i] == '\r' || buf[i] == '\n' || buf[i] == '\0')
			break;
	if (i == n)
		return len >= PROXY_V1_MAX ?
		    bad(out, "v1 line longer than 107 bytes") : PROXY_NEED_MORE;
	if (buf[i] != '\r')
		return bad(out, "missing CRLF");
	if (i + 1 == len)
		return i + 2 > PROXY_V1_MAX ?
		    bad(out, "v1 line longer than 107 bytes") : PROXY_NEED_MORE;
	if (buf[i + 1] != '\n')
		return bad(out, "missing CRLF");
	if (i + 2 > PROXY_V1_MAX)
		return bad(out, "v1 line longer than 107 bytes");
	memcpy(line, buf, i);
	line[i] = '\0';
	r = v1_fields(line, out);
	if (r == PROXY_OK)
		*consumed = i + 2;
	return r;
}

/* The addresses of a v2 PROXY header of family fam at a. */
static void
v2_addrs(int fam, const unsigned char *a, struct proxy_hdr *out)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)&out->src;
	struct sockaddr_in *d4 = (struct sockaddr_in *)&out->dst;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out->src;
	struct sockaddr_in6 *d6 = (struct sockaddr_in6 *)&out->dst;

	if (fam == V2_TCP4) {
		s4->sin_family = d4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, a, 4);
		memcpy(&d4->sin_addr, a + 4, 4);
		memcpy(&s4->sin_port, a + 8, 2);
		memcpy(&d4->sin_port, a + 10, 2);
	} else {
		s6->sin6_family = d6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, a, 16);
		memcpy(&d6->sin6_addr, a + 16, 16);
		memcpy(&s6->sin6_port, a + 32, 2);
		memcpy(&d6->sin6_port, a + 34, 2);
	}
}

static enum proxy_result
parse_v2(const unsigned char *buf, size_t len, struct proxy_hdr *out,
    size_t *consumed)
{
	size_t total, need;
	int cmd, fam;

	out->version = 2;
	if (memcmp(buf, v2_sig, min_size(len, sizeof(v2_sig))) != 0)
		return bad(out, "not a PROXY header");
	if (len < 13)
		return PROXY_NEED_MORE;
	if ((buf[12] >> 4) != 2)
		return bad(out, "bad v2 version");
	cmd = buf[12] & 0x0f;
	if (cmd != V2_CMD_LOCAL && cmd != V2_CMD_PROXY)
		return bad(out, "bad v2 command");
	if (len < 14)
		return PROXY_NEED_MORE;
	fam = buf[13];
	if (cmd == V2_CMD_PROXY && fam != V2_TCP4 && fam != V2_TCP6)
		return bad(out, "unsupported v2 family");
	if (len < PROXY_V2_FIXED)
		return PROXY_NEED_MORE;
	total = PROXY_V2_FIXED + ((size_t)buf[14] << 8 | buf[15]);
	if (total > PROXY_V2_MAX)
		return bad(out, "v2 header longer than the cap");
	need = cmd == V2_CMD_LOCAL ? 0 :
	    fam == V2_TCP4 ? V2_ADDR4_LEN : V2_ADDR6_LEN;
	if (total < PROXY_V2_FIXED + need)
		return bad(out, "v2 length too short for its addresses");
	if (len < total)
		return PROXY_NEED_MORE;
	if (cmd == V2_CMD_LOCAL)
		out->local = 1;
	else
		v2_addrs(fam, buf + PROXY_V2_FIXED, out);
	*consumed = total; /* TLVs skipped */
	return PROXY_OK;
}

/*
 * Parse the header at the start of buf (len bytes).  PROXY_OK: *consumed
 * is its length and out holds it; PROXY_NEED_MORE: buf is a valid prefix;
 * PROXY_BAD: out->why says what is wrong.  *consumed is set only on OK.
 */
enum proxy_result
proxy_parse(const unsigned char *buf, size_t len, struct proxy_hdr *out,
    size_t *consumed)
{
	memset(out, 0, sizeof(*out));
	if (len == 0)
		return PROXY_NEED_MORE;
	if (buf[0] == 'P')
		return parse_v1(buf, len, out, consumed);
	if (buf[0] == '\r')
		return parse_v2(buf, len, out, consumed);
	return bad(out, "not a PROXY header");
}

const char *
proxy_result_name(enum proxy_result r)
{
	switch (r) {
	case PROXY_NEED_MORE:
		return "need more";
	case PROXY_OK:
		return "ok";
	case PROXY_BAD:
		return "bad";
	}
	return "?";
}
