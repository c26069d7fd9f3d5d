/*
 * check_proxy: the PROXY protocol header parser (proxy_parse), without a
 * daemon.  One table of headers, valid and malformed, with the result,
 * the length consumed, the reason and the addresses expected; then every
 * valid header fed split at every byte (a valid prefix needs more, the
 * whole header gives the same result) and with client bytes behind it
 * (consumed stops at the header's end).
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "harness.h"
#include "proxy.h"
#include "suites.h"

#define SIG "\r\n\r\n\0\r\nQUIT\n"
#define B(s) (const unsigned char *)(s), sizeof(s) - 1

/* v2 address blocks: 192.0.2.1:40112 -> 192.0.2.2:7008, and in IPv6 */
#define A4 "\xc0\x00\x02\x01" "\xc0\x00\x02\x02" "\x9c\xb0" "\x1b\x60"
#define A6 "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01" \
	"\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x02" "\x9c\xb0" "\x1b\x60"
#define A10 "aaaaaaaaaa"
#define A90 A10 A10 A10 A10 A10 A10 A10 A10 A10
#define TLV "\x01\x00\x02" "h2" "\x04\x00\x00"

struct pcase {
	const char *name;
	const unsigned char *buf;
	size_t len;
	enum proxy_result want;
	size_t consumed;   /* OK */
	const char *why;   /* BAD */
	int version, local;
	const char *src, *dst; /* OK, not local: "addr port" */
};

#define OK(n, s, ver, loc, src, dst) \
	{ n, B(s), PROXY_OK, sizeof(s) - 1, NULL, ver, loc, src, dst }
#define BAD(n, s, why) { n, B(s), PROXY_BAD, 0, why, 0, 0, NULL, NULL }
#define MORE(n, s) { n, B(s), PROXY_NEED_MORE, 0, NULL, 0, 0, NULL, NULL }

static const struct pcase cases[] = {
	OK("v1 tcp4", "PROXY TCP4 192.0.2.1 192.0.2.2 40112 7008\r\n", 1, 0,
	    "192.0.2.1 40112", "192.0.2.2 7008"),
	OK("v1 tcp4 ports 0 and 65535",
	    "PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n", 1, 0,
	    "0.0.0.0 0", "255.255.255.255 65535"),
	OK("v1 tcp6", "PROXY TCP6 2001:db8::1 2001:db8::2 40112 7008\r\n",
	    1, 0, "2001:db8::1 40112", "2001:db8::2 7008"),
	OK("v1 tcp6 longest",
	    "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n", 1, 0,
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535",
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535"),
	OK("v1 unknown", "PROXY UNKNOWN\r\n", 1, 1, NULL, NULL),
	OK("v1 unknown 107 bytes", "PROXY UNKNOWN " A90 "a\r\n", 1, 1,
	    NULL, NULL),
	OK("v1 unknown with addresses",
	    "PROXY UNKNOWN ffff:f::1 whatever 1 2\r\n", 1, 1, NULL, NULL),
	OK("v2 proxy tcp4", SIG "\x21\x11\x00\x0c" A4, 2, 0,
	    "192.0.2.1 40112", "192.0.2.2 7008"),
	OK("v2 proxy tcp6", SIG "\x21\x21\x00\x24" A6, 2, 0,
	    "2001:db8::1 40112", "2001:db8::2 7008"),
	OK("v2 proxy tcp4 with tlvs", SIG "\x21\x11\x00\x14" A4 TLV, 2, 0,
	    "192.0.2.1 40112", "192.0.2.2 7008"),
	OK("v2 proxy tcp6 with tlvs", SIG "\x21\x21\x00\x2c" A6 TLV, 2, 0,
	    "2001:db8::1 40112", "2001:db8::2 7008"),
	OK("v2 local", SIG "\x20\x00\x00\x00", 2, 1, NULL, NULL),
	OK("v2 local with tcp4 addresses", SIG "\x20\x11\x00\x0c" A4, 2, 1,
	    NULL, NULL),
	OK("v2 local unix family", SIG "\x20\x31\x00\x03" "abc", 2, 1,
	    NULL, NULL),

	MORE("empty", ""),
	MORE("v1 prefix", "PROX"),
	MORE("v1 without CRLF", "PROXY TCP4 192.0.2.1 192.0.2.2 40112 7008"),
	MORE("v1 CR only", "PROXY TCP4 192.0.2.1 192.0.2.2 40112 7008\r"),
	MORE("v2 signature prefix", "\r\n\r\n\0\r"),
	MORE("v2 truncated header", SIG "\x21\x11\x00"),
	MORE("v2 truncated addresses", SIG "\x21\x11\x00\x0c\xc0\x00\x02"),

	BAD("plain client data", "hello\n", "not a PROXY header"),
	BAD("get request", "GET / HTTP/1.0\r\n", "not a PROXY header"),
	BAD("lower case", "proxy TCP4", "not a PROXY header"),
	BAD("v1 prefix wrong", "PROXX", "not a PROXY header"),
	BAD("v1 no space", "PROXYTCP4", "not a PROXY header"),
	BAD("v1 108 bytes", "PROXY UNKNOWN " A90 "aa\r\n",
	    "v1 line longer than 107 bytes"),
	BAD("v1 107 bytes ending in CR", "PROXY UNKNOWN " A90 "aa\r",
	    "v1 line longer than 107 bytes"),
	BAD("v1 107 bytes without CRLF", "PROXY UNKNOWN " A90 "aaa",
	    "v1 line longer than 107 bytes"),
	BAD("v1 tcp6 with a long port",
	    "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 0000065535 65535\r\n",
	    "v1 line longer than 107 bytes"),
	BAD("v1 LF without CR", "PROXY TCP4 192.0.2.1 192.0.2.2 1 2\n",
	    "missing CRLF"),
	BAD("v1 CR then not LF", "PROXY TCP4 192.0.2.1 192.0.2.2 1 2\rx",
	    "missing CRLF"),
	BAD("v1 NUL in line", "PROXY TCP4 192.0.2.1\0", "missing CRLF"),
	BAD("v1 unknown protocol", "PROXY UDP4 192.0.2.1 192.0.2.2 1 2\r\n",
	    "unknown v1 protocol"),
	BAD("v1 unknownx", "PROXY UNKNOWNX\r\n", "unknown v1 protocol"),
	BAD("v1 no protocol", "PROXY \r\n", "malformed v1 line"),
	BAD("v1 double space", "PROXY TCP4  192.0.2.1 192.0.2.2 1 2\r\n",
	    "malformed v1 line"),
	BAD("v1 trailing space", "PROXY TCP4 192.0.2.1 192.0.2.2 1 2 \r\n",
	    "malformed v1 line"),
	BAD("v1 missing port", "PROXY TCP4 192.0.2.1 192.0.2.2 1\r\n",
	    "malformed v1 line"),
	BAD("v1 extra field", "PROXY TCP4 192.0.2.1 192.0.2.2 1 2 3\r\n",
	    "malformed v1 line"),
	BAD("v1 tab", "PROXY TCP4\t192.0.2.1 192.0.2.2 1 2\r\n",
	    "unknown v1 protocol"),
	BAD("v1 port 65536", "PROXY TCP4 192.0.2.1 192.0.2.2 65536 2\r\n",
	    "bad address"),
	BAD("v1 port negative", "PROXY TCP4 192.0.2.1 192.0.2.2 -1 2\r\n",
	    "bad address"),
	BAD("v1 port plus", "PROXY TCP4 192.0.2.1 192.0.2.2 +1 2\r\n",
	    "bad address"),
	BAD("v1 port hex", "PROXY TCP4 192.0.2.1 192.0.2.2 0x10 2\r\n",
	    "bad address"),
	BAD("v1 port six digits", "PROXY TCP4 192.0.2.1 192.0.2.2 000001 2\r\n",
	    "bad address"),
	BAD("v1 bad ipv4", "PROXY TCP4 192.0.2.256 192.0.2.2 1 2\r\n",
	    "bad address"),
	BAD("v1 short ipv4", "PROXY TCP4 192.0.2 192.0.2.2 1 2\r\n",
	    "bad address"),
	BAD("v1 host name", "PROXY TCP4 localhost 192.0.2.2 1 2\r\n",
	    "bad address"),
	BAD("v1 bad ipv6", "PROXY TCP6 2001:db8:::1 2001:db8::2 1 2\r\n",
	    "bad address"),
	BAD("v1 tcp4 with ipv6", "PROXY TCP4 2001:db8::1 2001:db8::2 1 2\r\n",
	    "family does not match"),
	BAD("v1 tcp6 with ipv4", "PROXY TCP6 192.0.2.1 192.0.2.2 1 2\r\n",
	    "family does not match"),
	BAD("v1 tcp4 dst ipv6", "PROXY TCP4 192.0.2.1 ::1 1 2\r\n",
	    "family does not match"),
	BAD("v2 signature mismatch", "\r\n\r\n\0\r\nQUIX\n",
	    "not a PROXY header"),
	BAD("v2 signature with CR only", "\r\r", "not a PROXY header"),
	BAD("v2 version 1", SIG "\x11\x11\x00\x0c" A4, "bad v2 version"),
	BAD("v2 version 3", SIG "\x31", "bad v2 version"),
	BAD("v2 command 2", SIG "\x22\x11\x00\x0c" A4, "bad v2 command"),
	BAD("v2 proxy unspec", SIG "\x21\x00\x00\x00",
	    "unsupported v2 family"),
	BAD("v2 proxy udp4", SIG "\x21\x12\x00\x0c" A4,
	    "unsupported v2 family"),
	BAD("v2 proxy unix", SIG "\x21\x31", "unsupported v2 family"),
	BAD("v2 proxy tcp4 length 11", SIG "\x21\x11\x00\x0b",
	    "v2 length too short for its addresses"),
	BAD("v2 proxy tcp6 with tcp4 length", SIG "\x21\x21\x00\x0c" A4,
	    "v2 length too short for its addresses"),
	BAD("v2 length past the cap", SIG "\x21\x11\x04\xd9",
	    "v2 header longer than the cap"),
	BAD("v2 length 65535", SIG "\x20\x00\xff\xff",
	    "v2 header longer than the cap"),
};

/* "addr port" of ss, or "-" if it has no address. */
static const char *
show(const struct sockaddr_storage *ss, char *b, size_t n)
{
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
	char a[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET) {
		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		snprintf(b, n, "%s %u", a, ntohs(s4->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		snprintf(b, n, "%s %u", a, ntohs(s6->sin6_port));
	} else
		snprintf(b, n, "-");
	return b;
}

static void
check_ok(const struct pcase *c, const struct proxy_hdr *h, size_t consumed)
{
	char b[80];

	ck_assert_msg(consumed == c->consumed, "%s: consumed %zu, want %zu",
	    c->name, consumed, c->consumed);
	ck_assert_int_eq(h->version, c->version);
	ck_assert_int_eq(h->local, c->local);
	ck_assert_str_eq(show(&h->src, b, sizeof(b)), c->src ? c->src : "-");
	ck_assert_str_eq(show(&h->dst, b, sizeof(b)), c->dst ? c->dst : "-");
}

START_TEST(test_table)
{
	const struct pcase *c = &cases[_i];
	struct proxy_hdr h;
	size_t consumed = 0;
	enum proxy_result r = proxy_parse(c->buf, c->len, &h, &consumed);

	ck_assert_msg(r == c->want, "%s: %s (%s), want %s", c->name,
	    proxy_result_name(r), h.why ? h.why : "", proxy_result_name(c->want));
	if (r == PROXY_OK)
		check_ok(c, &h, consumed);
	if (r == PROXY_BAD)
		ck_assert_msg(strcmp(h.why, c->why) == 0, "%s: why \"%s\", want "
		    "\"%s\"", c->name, h.why, c->why);
}
END_TEST

/* Every valid header split at every byte, then with client bytes behind. */
START_TEST(test_split)
{
	const struct pcase *c = &cases[_i];
	static const char tail[] = "PROXY TCP4 hello\r\n\r\n\0x";
	unsigned char buf[PROXY_V2_MAX + sizeof(tail)];
	struct proxy_hdr h;
	size_t consumed, n;

	if (c->want != PROXY_OK)
		return;
	for (n = 0; n < c->len; n++) {
		consumed = 12345;
		ck_assert_msg(proxy_parse(c->buf, n, &h, &consumed) ==
		    PROXY_NEED_MORE, "%s: first %zu bytes: %s (%s)", c->name, n,
		    proxy_result_name(proxy_parse(c->buf, n, &h, &consumed)),
		    h.why ? h.why : "");
		ck_assert_uint_eq(consumed, 12345);
	}
	memcpy(buf, c->buf, c->len);
	for (n = 0; n <= sizeof(tail); n++) {
		memcpy(buf + c->len, tail, n);
		consumed = 0;
		ck_assert_int_eq(proxy_parse(buf, c->len + n, &h, &consumed),
		    PROXY_OK);
		check_ok(c, &h, consumed);
	}
}
END_TEST

Suite *
proxy_suite(void)
{
	Suite *s = suite_create("proxy");
	TCase *tc = tcase_create("parse");

	tcase_add_loop_test(tc, test_table, 0, H_NELEM(cases));
	tcase_add_loop_test(tc, test_split, 0, H_NELEM(cases));
	suite_add_tcase(s, tc);
	return s;
}
