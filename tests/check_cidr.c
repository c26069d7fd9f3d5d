/*
 * check_cidr: proxy_trusted's address blocks as tables: what cidr_parse
 * accepts (and how cidr_format shows it), what it refuses and why, and
 * which peers cidr_match lets in (IPv4, IPv6, IPv4-mapped, /0, the
 * longest prefixes, an empty set).
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "cidr.h"
#include "harness.h"
#include "suites.h"

#define EXPECTED                                                           \
	"expected A.B.C.D, A.B.C.D/0..32, an IPv6 address or IPV6/0..128, " \
	"numeric"

struct good_case {
	const char *s;
	int family;
	unsigned bits;
	const char *formatted;
};

static const struct good_case good[] = {
	{ "127.0.0.1", AF_INET, 32, "127.0.0.1/32" },
	{ "127.0.0.1/32", AF_INET, 32, "127.0.0.1/32" },
	{ "10.0.0.0/8", AF_INET, 8, "10.0.0.0/8" },
	{ "172.16.0.0/12", AF_INET, 12, "172.16.0.0/12" },
	{ "192.168.1.128/25", AF_INET, 25, "192.168.1.128/25" },
	{ "0.0.0.0/0", AF_INET, 0, "0.0.0.0/0" },
	{ "255.255.255.255/32", AF_INET, 32, "255.255.255.255/32" },
	{ "10.0.0.0/008", AF_INET, 8, "10.0.0.0/8" },
	{ "::1", AF_INET6, 128, "::1/128" },
	{ "::1/128", AF_INET6, 128, "::1/128" },
	{ "::/0", AF_INET6, 0, "::/0" },
	{ "fd00::/8", AF_INET6, 8, "fd00::/8" },
	{ "2001:db8::/32", AF_INET6, 32, "2001:db8::/32" },
	{ "2001:DB8:0:0:8000::/65", AF_INET6, 65, "2001:db8:0:0:8000::/65" },
	/* An IPv4-mapped block of /96 or more is the IPv4 block it means. */
	{ "::ffff:10.0.0.0/104", AF_INET, 8, "10.0.0.0/8" },
	{ "::ffff:127.0.0.1", AF_INET, 32, "127.0.0.1/32" },
	{ "::ffff:0:0/96", AF_INET, 0, "0.0.0.0/0" },
	/* Shorter, it is an IPv6 block like any. */
	{ "::fffe:0:0/95", AF_INET6, 95, "::fffe:0:0/95" },
};

START_TEST(parse_good)
{
	const struct good_case *t = &good[_i];
	struct cidr c;
	char err[256] = "", f[64];

	memset(&c, 0xa5, sizeof(c));
	ck_assert_msg(cidr_parse(t->s, &c, err, sizeof(err)) == 0,
	    "'%s' refused: %s", t->s, err);
	ck_assert_int_eq(c.family, t->family);
	ck_assert_uint_eq(c.bits, t->bits);
	cidr_format(&c, f, sizeof(f));
	ck_assert_str_eq(f, t->formatted);
	/* Bits past the prefix are zero, up to the whole 16 bytes. */
	if (c.family == AF_INET)
		for (size_t i = 4; i < sizeof(c.addr); i++)
			ck_assert_uint_eq(c.addr[i], 0);
}
END_TEST

struct bad_case {
	const char *s;
	const char *msg; /* the whole message */
};

static const struct bad_case bad[] = {
	{ "", "'': " EXPECTED },
	{ "/8", "'/8': " EXPECTED },
	{ "localhost", "'localhost': 'localhost' is not a numeric IPv4 or "
	    "IPv6 address (echod does not resolve names); " EXPECTED },
	{ "10.0.0", "'10.0.0': '10.0.0' is not a numeric IPv4 or IPv6 "
	    "address (echod does not resolve names); " EXPECTED },
	{ "010.0.0.1", "'010.0.0.1': '010.0.0.1' is not a numeric IPv4 or "
	    "IPv6 address (echod does not resolve names); " EXPECTED },
	{ "256.0.0.1", "'256.0.0.1': '256.0.0.1' is not a numeric IPv4 or "
	    "IPv6 address (echod does not resolve names); " EXPECTED },
	{ " 10.0.0.1", "' 10.0.0.1': ' 10.0.0.1' is not a numeric IPv4 or "
	    "IPv6 address (echod does not resolve names); " EXPECTED },
	{ "fe80::1%lo", "'fe80::1%lo': 'fe80::1%lo' is not a numeric IPv4 "
	    "or IPv6 address (echod does not resolve names); " EXPECTED },
	{ "[::1]/128", "'[::1]/128': '[::1]' is not a numeric IPv4 or IPv6 "
	    "address (echod does not resolve names); " EXPECTED },
	{ "127.0.0.1:7007", "'127.0.0.1:7007': '127.0.0.1:7007' is not a "
	    "numeric IPv4 or IPv6 address (echod does not resolve names); "
	    EXPECTED },
	{ "10.0.0.0/", "'10.0.0.0/': the prefix length '' is not a number "
	    "in 0..32; " EXPECTED },
	{ "10.0.0.0/33", "'10.0.0.0/33': the prefix length '33' is not a "
	    "number in 0..32; " EXPECTED },
	{ "10.0.0.0/-1", "'10.0.0.0/-1': the prefix length '-1' is not a "
	    "number in 0..32; " EXPECTED },
	{ "10.0.0.0/+8", "'10.0.0.0/+8': the prefix length '+8' is not a "
	    "number in 0..32; " EXPECTED },
	{ "10.0.0.0/8 ", "'10.0.0.0/8 ': the prefix length '8 ' is not a "
	    "number in 0..32; " EXPECTED },
	{ "10.0.0.0/0x8", "'10.0.0.0/0x8': the prefix length '0x8' is not a "
	    "number in 0..32; " EXPECTED },
	{ "10.0.0.0/0008", "'10.0.0.0/0008': the prefix length '0008' is "
	    "not a number in 0..32; " EXPECTED },
	{ "10.0.0.0/8/8", "'10.0.0.0/8/8': the prefix length '8/8' is not a "
	    "number in 0..32; " EXPECTED },
	{ "::/129", "'::/129': the prefix length '129' is not a number in "
	    "0..128; " EXPECTED },
	{ "10.0.0.1/8", "'10.0.0.1/8': bits are set past the /8 prefix; "
	    "expected the block's first address, 10.0.0.0/8" },
	{ "192.168.1.1/24", "'192.168.1.1/24': bits are set past the /24 "
	    "prefix; expected the block's first address, 192.168.1.0/24" },
	{ "127.0.0.1/0", "'127.0.0.1/0': bits are set past the /0 prefix; "
	    "expected the block's first address, 0.0.0.0/0" },
	{ "::1/64", "'::1/64': bits are set past the /64 prefix; expected "
	    "the block's first address, ::/64" },
	{ "2001:db8::1/127", "'2001:db8::1/127': bits are set past the /127 "
	    "prefix; expected the block's first address, 2001:db8::/127" },
	{ "::ffff:10.0.0.1/104", "'::ffff:10.0.0.1/104': bits are set past "
	    "the /104 prefix; expected the block's first address, "
	    "::ffff:10.0.0.0/104" },
};

START_TEST(parse_bad)
{
	const struct bad_case *t = &bad[_i];
	struct cidr c, before;
	char err[512];

	memset(&c, 0x5a, sizeof(c));
	before = c;
	memset(err, 'x', sizeof(err));
	ck_assert_msg(cidr_parse(t->s, &c, err, sizeof(err)) == -1,
	    "'%s' accepted", t->s);
	ck_assert_str_eq(err, t->msg);
	ck_assert_msg(memcmp(&c, &before, sizeof(c)) == 0,
	    "'%s': out written on failure", t->s);
}
END_TEST

START_TEST(parse_long_and_small_buffer)
{
	char s[300], err[16];
	struct cidr c;

	memset(s, '1', sizeof(s) - 1);
	s[sizeof(s) - 1] = '\0';
	memset(err, 'x', sizeof(err));
	ck_assert_int_eq(cidr_parse(s, &c, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(memchr(err, '\0', sizeof(err)));
	ck_assert_int_eq(cidr_parse("10.0.0.1/8", &c, err, 0), -1);
	ck_assert_int_eq(cidr_parse("10.0.0.1/8", &c, err, 1), -1);
	ck_assert_str_eq(err, "");
}
END_TEST

/* The peers a set lets in and keeps out. */
struct match_case {
	const char *set; /* blocks separated by spaces; "" for none */
	const char *peer; /* an address; "4:" prefix for a v4 sockaddr */
	int want;
};

static const struct match_case matches[] = {
	{ "127.0.0.1/32", "127.0.0.1", 1 },
	{ "127.0.0.1/32", "127.0.0.2", 0 },
	{ "127.0.0.1", "127.0.0.1", 1 },
	{ "10.0.0.0/8", "10.255.255.255", 1 },
	{ "10.0.0.0/8", "10.0.0.0", 1 },
	{ "10.0.0.0/8", "11.0.0.0", 0 },
	{ "10.0.0.0/8", "9.255.255.255", 0 },
	{ "192.168.1.128/25", "192.168.1.128", 1 },
	{ "192.168.1.128/25", "192.168.1.255", 1 },
	{ "192.168.1.128/25", "192.168.1.127", 0 },
	{ "172.16.0.0/12", "172.31.255.1", 1 },
	{ "172.16.0.0/12", "172.32.0.1", 0 },
	{ "0.0.0.0/0", "203.0.113.9", 1 },
	{ "0.0.0.0/0", "::1", 0 }, /* another family */
	{ "::/0", "127.0.0.1", 0 },
	{ "::/0", "2001:db8::1", 1 },
	{ "::1/128", "::1", 1 },
	{ "::1/128", "::2", 0 },
	{ "::1", "::1", 1 },
	{ "fd00::/8", "fdff:ffff::1", 1 },
	{ "fd00::/8", "fe00::1", 0 },
	{ "2001:db8::/127", "2001:db8::1", 1 },
	{ "2001:db8::/127", "2001:db8::2", 0 },
	{ "2001:db8:0:0:8000::/65", "2001:db8::ffff:ffff:ffff:ffff", 1 },
	{ "2001:db8:0:0:8000::/65", "2001:db8::7fff:ffff:ffff:ffff", 0 },
	/* A dual-stack listener's IPv4 client is matched as IPv4. */
	{ "127.0.0.1/32", "::ffff:127.0.0.1", 1 },
	{ "10.0.0.0/8", "::ffff:10.1.2.3", 1 },
	{ "10.0.0.0/8", "::ffff:11.1.2.3", 0 },
	{ "0.0.0.0/0", "::ffff:1.2.3.4", 1 },
	{ "::/0", "::ffff:1.2.3.4", 0 },
	{ "::ffff:0:0/96", "::ffff:1.2.3.4", 1 },
	{ "::ffff:10.0.0.0/104", "10.9.9.9", 1 },
	{ "::ffff:10.0.0.0/104", "::ffff:10.9.9.9", 1 },
	/* Not mapped: the IPv4-compatible form is IPv6. */
	{ "127.0.0.1/32", "::127.0.0.1", 0 },
	/* A set of several: any one will do. */
	{ "10.0.0.0/8 ::1/128 127.0.0.1", "127.0.0.1", 1 },
	{ "10.0.0.0/8 ::1/128 127.0.0.1", "::1", 1 },
	{ "10.0.0.0/8 ::1/128 127.0.0.1", "10.0.0.7", 1 },
	{ "10.0.0.0/8 ::1/128 127.0.0.1", "127.0.0.2", 0 },
	{ "10.0.0.0/8 ::1/128 127.0.0.1", "::2", 0 },
	/* The empty set trusts nobody. */
	{ "", "127.0.0.1", 0 },
	{ "", "::1", 0 },
	{ "", "::ffff:127.0.0.1", 0 },
};

/* Parse a space-separated set into set; returns how many. */
static size_t
parse_set(const char *text, struct cidr *set, size_t max)
{
	char buf[256], err[256], *tok, *save = NULL;
	size_t n = 0;

	snprintf(buf, sizeof(buf), "%s", text);
	for (tok = strtok_r(buf, " ", &save); tok != NULL;
	    tok = strtok_r(NULL, " ", &save)) {
		ck_assert_uint_lt(n, max);
		ck_assert_msg(cidr_parse(tok, &set[n], err, sizeof(err)) == 0,
		    "'%s': %s", tok, err);
		n++;
	}
	return n;
}

START_TEST(match_table)
{
	const struct match_case *t = &matches[_i];
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	struct cidr set[8];
	size_t n;

	n = parse_set(t->set, set, H_NELEM(set));
	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, t->peer, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(40000);
	} else {
		ck_assert_int_eq(inet_pton(AF_INET6, t->peer,
		    &sin6->sin6_addr), 1);
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(40000);
	}
	ck_assert_msg(cidr_match(set, n, (struct sockaddr *)&ss) == t->want,
	    "{ %s } and %s: want %d", t->set, t->peer, t->want);
}
END_TEST

START_TEST(match_other_family_and_null)
{
	struct sockaddr_storage ss;
	struct cidr set[1];

	ck_assert_uint_eq(parse_set("0.0.0.0/0", set, 1), 1);
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNIX;
	ck_assert_int_eq(cidr_match(set, 1, (struct sockaddr *)&ss), 0);
	ck_assert_int_eq(cidr_match(set, 1, NULL), 0);
}
END_TEST

START_TEST(format_truncates_and_unknown)
{
	struct cidr c;
	char err[64], f[8];

	ck_assert_int_eq(cidr_parse("192.168.100.0/24", &c, err, sizeof(err)),
	    0);
	memset(f, 'x', sizeof(f));
	cidr_format(&c, f, sizeof(f));
	ck_assert_str_eq(f, "192.168");
	cidr_format(&c, f, 0);
	memset(&c, 0, sizeof(c));
	cidr_format(&c, f, sizeof(f));
	ck_assert_str_eq(f, "?");
}
END_TEST

Suite *
cidr_suite(void)
{
	Suite *s = suite_create("cidr");
	TCase *tc;

	tc = h_case(s, "parse", 0, NULL);
	tcase_add_loop_test(tc, parse_good, 0, H_NELEM(good));
	tcase_add_loop_test(tc, parse_bad, 0, H_NELEM(bad));
	tcase_add_test(tc, parse_long_and_small_buffer);
	tc = h_case(s, "match", 0, NULL);
	tcase_add_loop_test(tc, match_table, 0, H_NELEM(matches));
	tcase_add_test(tc, match_other_family_and_null);
	tcase_add_test(tc, format_truncates_and_unknown);
	return s;
}
