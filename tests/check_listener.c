/*
 * check_listener: address parsing and formatting (tables), and real
 * listening sockets on loopback with port 0.
 *
 * Parsing is numeric only: a host name must be refused, never resolved.
 * Every fd a test opens is closed before it returns.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "listener.h"
#include "clients.h"
#include "harness.h"
#include "suites.h"

#define EXPECTED "expected HOST:PORT, [IPV6]:PORT or *:PORT"

struct valid_case {
	const char *spec;
	int family;
	const char *addr; /* inet_ntop of the parsed address */
	unsigned port;
	int any;
	const char *formatted; /* listener_format of the result */
};

static const struct valid_case valid[] = {
	{ "127.0.0.1:7007", AF_INET, "127.0.0.1", 7007, 0, "127.0.0.1:7007" },
	{ "0.0.0.0:0", AF_INET, "0.0.0.0", 0, 0, "0.0.0.0:0" },
	{ "127.0.0.1:65535", AF_INET, "127.0.0.1", 65535, 0,
	    "127.0.0.1:65535" },
	{ "255.255.255.255:1", AF_INET, "255.255.255.255", 1, 0,
	    "255.255.255.255:1" },
	{ "10.0.0.1:007", AF_INET, "10.0.0.1", 7, 0, "10.0.0.1:7" },
	{ "[::1]:7007", AF_INET6, "::1", 7007, 0, "[::1]:7007" },
	{ "[::]:1", AF_INET6, "::", 1, 0, "[::]:1" },
	{ "[::]:65535", AF_INET6, "::", 65535, 0, "[::]:65535" },
	{ "[fd00::2]:0", AF_INET6, "fd00::2", 0, 0, "[fd00::2]:0" },
	{ "*:7007", AF_INET6, "::", 7007, 1, "[::]:7007" },
	{ "*:0", AF_INET6, "::", 0, 1, "[::]:0" },
	{ "*:65535", AF_INET6, "::", 65535, 1, "[::]:65535" },
};

START_TEST(parse_valid)
{
	const struct valid_case *t = &valid[_i];
	const struct sockaddr_in *sin;
	const struct sockaddr_in6 *sin6;
	struct listen_addr la;
	char err[256] = "", a[INET6_ADDRSTRLEN], f[128];

	ck_assert_msg(listener_parse(t->spec, &la, err, sizeof(err)) == 0,
	    "'%s' refused: %s", t->spec, err);
	ck_assert_int_eq(la.ss.ss_family, t->family);
	ck_assert_int_eq(la.any, t->any);
	if (t->family == AF_INET) {
		sin = (const struct sockaddr_in *)&la.ss;
		ck_assert_uint_eq(la.sslen, sizeof(*sin));
		ck_assert_ptr_nonnull(inet_ntop(AF_INET, &sin->sin_addr, a,
		    sizeof(a)));
		ck_assert_uint_eq(ntohs(sin->sin_port), t->port);
	} else {
		sin6 = (const struct sockaddr_in6 *)&la.ss;
		ck_assert_uint_eq(la.sslen, sizeof(*sin6));
		ck_assert_ptr_nonnull(inet_ntop(AF_INET6, &sin6->sin6_addr, a,
		    sizeof(a)));
		ck_assert_uint_eq(ntohs(sin6->sin6_port), t->port);
		ck_assert_uint_eq(sin6->sin6_scope_id, 0);
		ck_assert_uint_eq(sin6->sin6_flowinfo, 0);
		if (t->any)
			ck_assert(IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr));
	}
	ck_assert_str_eq(a, t->addr);
	listener_format((const struct sockaddr *)&la.ss, f, sizeof(f));
	ck_assert_str_eq(f, t->formatted);
}
END_TEST

struct invalid_case {
	const char *spec;
	const char *why; /* a substring the message must contain */
};

static const struct invalid_case invalid[] = {
	{ "127.0.0.1", EXPECTED },		/* missing port */
	{ "127.0.0.1:", "port '' is not a number" },
	{ ":7007", EXPECTED },			/* empty host */
	{ "", EXPECTED },
	{ ":", EXPECTED },
	{ "127.0.0.1:65536", "port '65536'" },
	{ "127.0.0.1:99999999999999999999999", "is not a number in 0..65535" },
	{ "127.0.0.1:-1", "port '-1'" },
	{ "127.0.0.1:-0", "port '-0'" },
	{ "127.0.0.1:+1", "port '+1'" },
	{ "127.0.0.1: 1", "port ' 1'" },
	{ "127.0.0.1:7007x", "port '7007x'" },
	{ "127.0.0.1:7007 ", "port '7007 '" },
	{ "127.0.0.1:0x10", "port '0x10'" },
	{ "127.0.0.1:7007:1", EXPECTED },
	{ "*:", "port ''" },
	{ "*:-1", "port '-1'" },
	{ "[::1]:", "port ''" },
	{ "[::1]:7007]", "port '7007]'" },
	{ "[::1]:7007:", "port '7007:'" },
	{ "localhost:7007", "does not resolve names" },
	{ "example.com:80", "does not resolve names" },
	{ " 127.0.0.1:1", "not a numeric IPv4 address" },
	{ "1.2.3:4", "not a numeric IPv4 address" },
	{ "1.2.3.4.5:6", "not a numeric IPv4 address" },
	{ "256.0.0.1:1", "not a numeric IPv4 address" },
	{ "**:1", "not a numeric IPv4 address" },
	{ "::1:7007", EXPECTED },		/* unbracketed IPv6 */
	{ "::1", EXPECTED },
	{ "[::1]7007", EXPECTED },
	{ "[::1]", EXPECTED },
	{ "[::1:7007", EXPECTED },
	{ "[]:7007", EXPECTED },
	{ "[::1]]:1", EXPECTED },
	{ "[127.0.0.1]:1", "not a numeric IPv6 address" },
	{ "[*]:7007", "not a numeric IPv6 address" },
	{ "[localhost]:7007", "not a numeric IPv6 address" },
	{ "[fe80::1%lo]:7007", "not a numeric IPv6 address" },
	{ "[::g]:1", "not a numeric IPv6 address" },
	/* an IPv6-only socket cannot bind one (EINVAL at start) */
	{ "[::ffff:127.0.0.1]:80", "'::ffff:127.0.0.1' is an IPv4-mapped "
	    "address; write it as 127.0.0.1:80" },
	{ "[0000:0000:0000:0000:0000:ffff:255.255.255.255]:9",
	    "is an IPv4-mapped address; write it as 255.255.255.255:9" },
};

static void
check_refused(const char *spec, const char *why)
{
	struct listen_addr la;
	char err[256];
	size_t n;

	memset(err, 'x', sizeof(err));
	ck_assert_msg(listener_parse(spec, &la, err, sizeof(err)) == -1,
	    "'%s' accepted", spec);
	ck_assert_msg(memchr(err, '\0', sizeof(err)) != NULL,
	    "'%s': err not terminated", spec);
	/* The message starts by quoting the spec (as much as fits). */
	ck_assert_msg(err[0] == '\'', "'%s': message '%s'", spec, err);
	n = strlen(spec);
	if (n > sizeof(err) - 2)
		n = sizeof(err) - 2;
	ck_assert_msg(strncmp(err + 1, spec, n) == 0,
	    "'%s': message '%s' does not quote it", spec, err);
	if (why != NULL)
		ck_assert_msg(strstr(err, why) != NULL,
		    "'%s': message '%s' does not say '%s'", spec, err, why);
	/* A malformed spec is refused for its shape, before any address. */
	if (why != NULL && strcmp(why, EXPECTED) == 0) {
		char want[256];

		snprintf(want, sizeof(want), "'%s': %s", spec, EXPECTED);
		ck_assert_str_eq(err, want);
	}
}

START_TEST(parse_invalid)
{
	check_refused(invalid[_i].spec, invalid[_i].why);
}
END_TEST

START_TEST(parse_very_long)
{
	char spec[1024];

	/* A host longer than any address. */
	memset(spec, 'a', sizeof(spec));
	memcpy(spec + sizeof(spec) - 3, ":1", 3);
	check_refused(spec, NULL);
	/* Digits and dots only: still too long to be an IPv4 address. */
	memset(spec, '1', sizeof(spec));
	spec[1] = '.';
	memcpy(spec + sizeof(spec) - 3, ":1", 3);
	check_refused(spec, NULL);
	/* A bracketed host of colons, longer than INET6_ADDRSTRLEN. */
	memset(spec, ':', sizeof(spec));
	spec[0] = '[';
	memcpy(spec + sizeof(spec) - 4, "]:1", 4);
	check_refused(spec, NULL);
	/* One character past the longest IPv6 text. */
	check_refused("[0000:0000:0000:0000:0000:ffff:255.255.255.2555]:1",
	    NULL);
	/* A valid host with an enormous port (short enough to see why). */
	memset(spec, '9', 50);
	memcpy(spec, "127.0.0.1:", 10);
	spec[50] = '\0';
	check_refused(spec, "is not a number in 0..65535");
}
END_TEST

START_TEST(parse_small_err_buffer)
{
	struct listen_addr la;
	char err[8];

	memset(err, 'x', sizeof(err));
	ck_assert_int_eq(listener_parse("localhost:7007", &la, err,
	    sizeof(err)), -1);
	ck_assert_str_eq(err, "'localh");
}
END_TEST

START_TEST(format_other_family_and_truncation)
{
	struct sockaddr_un su;
	struct sockaddr_in sin;
	char buf[64];

	memset(&su, 0, sizeof(su));
	su.sun_family = AF_UNIX;
	listener_format((const struct sockaddr *)&su, buf, sizeof(buf));
	ck_assert_str_eq(buf, "(family 1)");

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(7007);
	memset(buf, 'x', sizeof(buf));
	listener_format((const struct sockaddr *)&sin, buf, 10);
	ck_assert_str_eq(buf, "127.0.0.1");
	ck_assert_int_eq(buf[10], 'x');
}
END_TEST

/* Helpers for real sockets. */

static int
open_spec(const char *spec, char *err, size_t errlen)
{
	struct listen_addr la;

	ck_assert_msg(listener_parse(spec, &la, err, errlen) == 0, "%s", err);
	return listener_open(&la, 16, err, errlen);
}

static unsigned
bound_port(int fd, int *family)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
	*family = ss.ss_family;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	ck_assert_int_eq(ss.ss_family, AF_INET6);
	return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

static void
check_listening_flags(int fd)
{
	int fl, on = 0;
	socklen_t len = sizeof(on);

	fl = fcntl(fd, F_GETFL);
	ck_assert_int_ne(fl, -1);
	ck_assert_msg(fl & O_NONBLOCK, "listener is blocking");
	fl = fcntl(fd, F_GETFD);
	ck_assert_int_ne(fl, -1);
	ck_assert_msg(fl & FD_CLOEXEC, "listener lacks close-on-exec");
	ck_assert_int_eq(getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len),
	    0);
	ck_assert_int_eq(on, 1);
	len = sizeof(on);
	ck_assert_int_eq(getsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, &len),
	    0);
	ck_assert_int_eq(on, 1);
}

/*
 * Connect to the listener at addr:port and accept the connection on lfd,
 * waiting with a bounded poll (no sleep).  Returns the peer's family as
 * the listener sees it.
 */
static int
connect_and_accept(int lfd, int family, const void *addr, unsigned port)
{
	struct sockaddr_storage ss, peer;
	socklen_t len = sizeof(peer);
	struct pollfd pfd = { .fd = lfd, .events = POLLIN };
	int cfd, afd;

	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, addr, sizeof(sin->sin_addr));
		sin->sin_port = htons((in_port_t)port);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, addr, sizeof(sin6->sin6_addr));
		sin6->sin6_port = htons((in_port_t)port);
	}
	cfd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ne(cfd, -1);
	ck_assert_msg(connect(cfd, (struct sockaddr *)&ss, family == AF_INET ?
	    sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)) == 0,
	    "connect: %s", strerror(errno));
	ck_assert_int_eq(poll(&pfd, 1, 5000), 1);
	afd = accept4(lfd, (struct sockaddr *)&peer, &len, SOCK_CLOEXEC);
	ck_assert_msg(afd != -1, "accept: %s", strerror(errno));
	/* Nothing else is queued: the listener is non-blocking. */
	ck_assert_int_eq(accept(lfd, NULL, NULL), -1);
	ck_assert(errno == EAGAIN || errno == EWOULDBLOCK);
	close(afd);
	close(cfd);
	return peer.ss_family;
}

START_TEST(open_ipv4_loopback)
{
	struct in_addr lo = { htonl(INADDR_LOOPBACK) };
	char err[256] = "";
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd, family;
	unsigned port;

	fd = open_spec("127.0.0.1:0", err, sizeof(err));
	ck_assert_msg(fd >= 0, "%s", err);
	check_listening_flags(fd);
	port = bound_port(fd, &family);
	ck_assert_int_eq(family, AF_INET);
	ck_assert_uint_ne(port, 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	ck_assert_uint_eq(ntohl(sin.sin_addr.s_addr), INADDR_LOOPBACK);
	ck_assert_int_eq(connect_and_accept(fd, AF_INET, &lo, port), AF_INET);
	ck_assert_int_eq(close(fd), 0);
}
END_TEST

/* spec opens an IPv6-only listener that [::1] reaches. */
static void
check_v6only(const char *spec)
{
	char err[256] = "";
	int fd, family, v6only = -1;
	socklen_t len = sizeof(v6only);
	unsigned port;

	fd = open_spec(spec, err, sizeof(err));
	ck_assert_msg(fd >= 0, "%s", err);
	check_listening_flags(fd);
	port = bound_port(fd, &family);
	ck_assert_int_eq(family, AF_INET6);
	ck_assert_uint_ne(port, 0);
	ck_assert_int_eq(getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only,
	    &len), 0);
	ck_assert_int_eq(v6only, 1);
	ck_assert_int_eq(connect_and_accept(fd, AF_INET6, &in6addr_loopback,
	    port), AF_INET6);
	ck_assert_int_eq(close(fd), 0);
}

START_TEST(open_ipv6_loopback_is_v6only)
{
	if (!cl_have_ipv6())
		return; /* nothing to test on a host without IPv6 */
	check_v6only("[::1]:0");
}
END_TEST

/* "[::]" is every IPv6 address only; "*" is the dual-stack one. */
START_TEST(open_ipv6_any_is_v6only)
{
	if (!cl_have_ipv6())
		return;
	check_v6only("[::]:0");
}
END_TEST

START_TEST(open_any_is_dual_stack)
{
	struct in_addr lo = { htonl(INADDR_LOOPBACK) };
	char err[256] = "";
	int fd, family, v6only = -1;
	socklen_t len = sizeof(v6only);
	unsigned port;

	fd = open_spec("*:0", err, sizeof(err));
	ck_assert_msg(fd >= 0, "%s", err);
	check_listening_flags(fd);
	port = bound_port(fd, &family);
	ck_assert_uint_ne(port, 0);
	if (cl_have_ipv6()) {
		ck_assert_int_eq(family, AF_INET6);
		ck_assert_int_eq(getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY,
		    &v6only, &len), 0);
		ck_assert_int_eq(v6only, 0);
		/* An IPv4 client reaches it, as a v4-mapped peer... */
		ck_assert_int_eq(connect_and_accept(fd, AF_INET, &lo, port),
		    AF_INET6);
		/* ...and so does an IPv6 one. */
		ck_assert_int_eq(connect_and_accept(fd, AF_INET6,
		    &in6addr_loopback, port), AF_INET6);
	} else {
		/* The IPv4 fallback still serves every IPv4 address. */
		ck_assert_int_eq(family, AF_INET);
		ck_assert_int_eq(connect_and_accept(fd, AF_INET, &lo, port),
		    AF_INET);
	}
	ck_assert_int_eq(close(fd), 0);
}
END_TEST

/*
 * Open any_spec (port 0), then host with the port it got: the second open
 * must fail, naming the address (name, then the port) and the reason.
 */
static void
check_in_use(const char *host, const char *name_prefix, const char *any_spec)
{
	char spec[64], name[64], err[256] = "";
	int fd, fd2, family;
	unsigned port;

	fd = open_spec(any_spec, err, sizeof(err));
	ck_assert_msg(fd >= 0, "%s", err);
	port = bound_port(fd, &family);
	snprintf(spec, sizeof(spec), "%s:%u", host, port);
	snprintf(name, sizeof(name), "%s%u", name_prefix, port);
	err[0] = '\0';
	fd2 = open_spec(spec, err, sizeof(err));
	if (fd2 != -1)
		close(fd2);
	ck_assert_msg(fd2 == -1, "%s opened twice", spec);
	ck_assert_msg(strstr(err, name) != NULL, "'%s' does not name %s", err,
	    name);
	ck_assert_msg(strstr(err, "Address already in use") != NULL,
	    "'%s' does not say why", err);
	ck_assert_int_eq(close(fd), 0);
}

START_TEST(open_same_port_twice)
{
	check_in_use("127.0.0.1", "127.0.0.1:", "127.0.0.1:0");
	if (cl_have_ipv6())
		check_in_use("*", "[::]:", "*:0");
	else
		check_in_use("*", "0.0.0.0:", "*:0");
}
END_TEST

Suite *
listener_suite(void)
{
	Suite *s = suite_create("listener");
	TCase *tc;

	tc = h_case(s, "parse", 0, NULL);
	tcase_add_loop_test(tc, parse_valid, 0, H_NELEM(valid));
	tcase_add_loop_test(tc, parse_invalid, 0, H_NELEM(invalid));
	tcase_add_test(tc, parse_very_long);
	tcase_add_test(tc, parse_small_err_buffer);
	tcase_add_test(tc, format_other_family_and_truncation);

	h_case(s, "open", 0, H_TESTS(open_ipv4_loopback,
	    open_ipv6_loopback_is_v6only, open_ipv6_any_is_v6only,
	    open_any_is_dual_stack, open_same_port_twice));
	return s;
}
