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
#include <stdint.h>
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

/* ---- proxied listeners (proxy_listen) ---- */

/* Which entry a socket bound to an address is (socket activation). */
struct bound_case {
	const char *bound; /* the socket's address, as a spec */
	const char *entry; /* a proxy_listen entry */
	int want;
};

static const struct bound_case bound_cases[] = {
	{ "127.0.0.1:7", "127.0.0.1:7", 1 },
	{ "127.0.0.1:7", "127.0.0.1:07", 1 },
	{ "127.0.0.1:7", "127.0.0.1:8", 0 },
	{ "127.0.0.1:7", "127.0.0.2:7", 0 },
	{ "127.0.0.1:7", "0.0.0.0:7", 0 },  /* another address */
	{ "127.0.0.1:7", "*:7", 0 },
	{ "127.0.0.1:7", "[::1]:7", 0 },
	{ "[::]:7", "*:7", 1 },             /* "*": dual-stack [::] */
	{ "0.0.0.0:7", "*:7", 1 },          /* or 0.0.0.0 without IPv6 */
	{ "[::]:8", "*:7", 0 },
	{ "[::1]:7", "*:7", 0 },
	{ "[::]:7", "[::]:7", 1 },
	{ "0.0.0.0:7", "[::]:7", 0 },
	{ "[::]:7", "0.0.0.0:7", 0 },
	{ "[::1]:7", "[::1]:7", 1 },
	{ "[::1]:7", "[0::1]:7", 1 },
	{ "[::1]:7", "[::2]:7", 0 },
	{ "[::1]:7", "127.0.0.1:7", 0 },
	{ "0.0.0.0:7", "0.0.0.0:7", 1 },
};

START_TEST(proxy_bound_table)
{
	const struct bound_case *t = &bound_cases[_i];
	struct listen_addr b, e;
	char err[256];

	ck_assert_msg(listener_parse(t->bound, &b, err, sizeof(err)) == 0,
	    "%s", err);
	ck_assert_msg(listener_parse(t->entry, &e, err, sizeof(err)) == 0,
	    "%s", err);
	ck_assert_msg(listener_bound_is((struct sockaddr *)&b.ss, &e) ==
	    t->want, "bound %s, entry %s: want %d", t->bound, t->entry,
	    t->want);
}
END_TEST

START_TEST(proxy_bound_other_family)
{
	struct sockaddr_un su;
	struct listen_addr e;
	char err[256];

	memset(&su, 0, sizeof(su));
	su.sun_family = AF_UNIX;
	ck_assert_int_eq(listener_parse("*:0", &e, err, sizeof(err)), 0);
	ck_assert_int_eq(listener_bound_is((struct sockaddr *)&su, &e), 0);
}
END_TEST

struct mask_case {
	int proxy[LISTENER_MAX];
	size_t n;
	uint32_t want;
};

static const struct mask_case mask_cases[] = {
	{ { 0 }, 0, 0 },
	{ { 0 }, 1, 0 },
	{ { 1 }, 1, 0x1 },
	{ { 0, 1 }, 2, 0x2 },
	{ { 1, 0, 1 }, 3, 0x5 },
	{ { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 }, 16, 0xffff },
	{ { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 }, 16, 0x8000 },
	{ { 1, 1 }, 1, 0x1 }, /* only the first n count */
};

START_TEST(proxy_mask_table)
{
	const struct mask_case *t = &mask_cases[_i];
	struct listener ls[LISTENER_MAX];
	size_t i;

	memset(ls, 0, sizeof(ls));
	for (i = 0; i < LISTENER_MAX; i++)
		ls[i].proxy = t->proxy[i];
	ck_assert_uint_eq(listener_proxy_mask(ls, t->n), t->want);
}
END_TEST

/*
 * A reload's listeners with the flag, on real sockets: "A", "B" and "C"
 * stand for 127.0.0.1 on three free ports (a listener is kept by its
 * address).  keep[i] is the old listener new listener i keeps (its very
 * socket), -1 for a new one; proxy[i] its flag.  Listen's come first.
 */
#define PA "A"
#define PB "B"
#define PC "C"

struct px_reconcile_case {
	const char *name;
	const char *old_plain[4], *old_proxy[4]; /* NULL-terminated */
	const char *new_plain[4], *new_proxy[4];
	int keep[4];
	int proxy[4];
};

static const struct px_reconcile_case px_reconciles[] = {
	{ "unchanged, one of each", { PA }, { PB }, { PA }, { PB },
	    { 0, 1 }, { 0, 1 } },
	{ "a proxied listener added", { PA }, { NULL }, { PA }, { PB },
	    { 0, -1 }, { 0, 1 } },
	{ "a proxied listener removed", { PA }, { PB, PC }, { PA }, { PC },
	    { 0, 2 }, { 0, 1 } },
	{ "moved from listen to proxy_listen", { PA, PB }, { NULL }, { PA },
	    { PB }, { 0, 1 }, { 0, 1 } },
	{ "moved from proxy_listen to listen", { PA }, { PB }, { PA, PB },
	    { NULL }, { 0, 1 }, { 0, 0 } },
	{ "swapped", { PA }, { PB }, { PB }, { PA }, { 1, 0 }, { 0, 1 } },
	{ "only proxied listeners", { PA }, { NULL }, { NULL }, { PA, PB },
	    { 0, -1 }, { 1, 1 } },
	{ "back to plain only, one new", { NULL }, { PA, PB }, { PA, PC },
	    { NULL }, { 0, -1 }, { 0, 0 } },
	{ "everything new", { PA }, { NULL }, { PB }, { PC }, { -1, -1 },
	    { 0, 1 } },
};

/* The specs for "A", "B", "C": 127.0.0.1 on three free ports. */
static char px_specs[3][32];

static void
px_pick_ports(void)
{
	int i, port;

	for (i = 0; i < 3; i++) {
		port = cl_free_port();
		ck_assert_int_gt(port, 0);
		snprintf(px_specs[i], sizeof(px_specs[i]), "127.0.0.1:%d",
		    port);
	}
	ck_assert_str_ne(px_specs[0], px_specs[1]);
	ck_assert_str_ne(px_specs[0], px_specs[2]);
	ck_assert_str_ne(px_specs[1], px_specs[2]);
}

static size_t
count_specs(const char *const *v, char **out)
{
	size_t n;

	for (n = 0; n < 4 && v[n] != NULL; n++)
		out[n] = px_specs[v[n][0] - 'A'];
	return n;
}

static int
fd_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1;
}

START_TEST(proxy_reconcile_table)
{
	const struct px_reconcile_case *t = &px_reconciles[_i];
	struct listener old[LISTENER_MAX], nw[LISTENER_MAX];
	char *op[4], *ox[4], *np[4], *nx[4], err[512];
	size_t nop, nox, nnp, nnx, nold, nnew, i, j;
	uint32_t mask = 0;
	int kept;

	px_pick_ports();
	nop = count_specs(t->old_plain, op);
	nox = count_specs(t->old_proxy, ox);
	nnp = count_specs(t->new_plain, np);
	nnx = count_specs(t->new_proxy, nx);
	ck_assert_msg(listener_acquire_both(op, nop, ox, nox, 16, old, &nold,
	    err, sizeof(err)) == 0, "%s: %s", t->name, err);
	ck_assert_uint_eq(nold, nop + nox);
	for (i = 0; i < nold; i++)
		ck_assert_int_eq(old[i].proxy, i >= nop);
	ck_assert_msg(listener_reconcile_both(old, nold, np, nnp, nx, nnx, 16,
	    nw, &nnew, err, sizeof(err)) == 0, "%s: %s", t->name, err);
	ck_assert_uint_eq(nnew, nnp + nnx);
	for (i = 0; i < nnew; i++) {
		ck_assert_msg(nw[i].proxy == t->proxy[i], "%s: [%zu] proxy %d",
		    t->name, i, nw[i].proxy);
		if (nw[i].proxy)
			mask |= UINT32_C(1) << i;
		if (t->keep[i] >= 0) {
			ck_assert_msg(nw[i].fd == old[t->keep[i]].fd,
			    "%s: [%zu] did not keep old %d's socket", t->name,
			    i, t->keep[i]);
			continue;
		}
		for (j = 0; j < nold; j++)
			ck_assert_msg(nw[i].fd != old[j].fd, "%s: [%zu] is "
			    "old %zu's socket", t->name, i, j);
		check_listening_flags(nw[i].fd);
	}
	ck_assert_uint_eq(listener_proxy_mask(nw, nnew), mask);
	/* The old ones no one keeps close; the kept ones stay open. */
	listener_close_unused(old, nold, nw, nnew, 0);
	for (j = 0; j < nold; j++) {
		for (i = 0, kept = 0; i < nnew; i++)
			kept |= t->keep[i] == (int)j;
		ck_assert_msg(fd_open(old[j].fd) == kept, "%s: old %zu is %s",
		    t->name, j, kept ? "closed" : "still open");
	}
	for (i = 0; i < nnew; i++)
		close(nw[i].fd);
}
END_TEST

/* The refusal names the list of the address that cannot be opened. */
START_TEST(proxy_reconcile_overlap_names_the_list)
{
	struct listener old[LISTENER_MAX], nw[LISTENER_MAX];
	char *plain[] = { "127.0.0.1:0" }, *proxy[1], spec[32], err[512];
	size_t nold, nnew;
	int family;

	ck_assert_int_eq(listener_acquire_both(plain, 1, NULL, 0, 16, old,
	    &nold, err, sizeof(err)), 0);
	/* As if the file had said the port the kernel gave. */
	snprintf(old[0].spec, sizeof(old[0].spec), "127.0.0.1:%u",
	    bound_port(old[0].fd, &family));
	snprintf(spec, sizeof(spec), "*:%u", bound_port(old[0].fd, &family));
	proxy[0] = spec;
	ck_assert_int_eq(listener_reconcile_both(old, nold, NULL, 0, proxy, 1,
	    16, nw, &nnew, err, sizeof(err)), -1);
	ck_assert_msg(strncmp(err, "proxy_listen: '*:", 17) == 0 &&
	    strstr(err, "' overlaps '127.0.0.1:") != NULL, "%s", err);
	ck_assert_uint_eq(nnew, 0);
	ck_assert(fd_open(old[0].fd));
	close(old[0].fd);
}
END_TEST

START_TEST(proxy_too_many)
{
	char *sixteen[LISTENER_MAX], *one[] = { "127.0.0.1:0" }, err[256];
	struct listener ls[LISTENER_MAX];
	size_t i, n = 99;

	for (i = 0; i < LISTENER_MAX; i++)
		sixteen[i] = "127.0.0.1:0";
	ck_assert_int_eq(listener_acquire_both(sixteen, LISTENER_MAX, one, 1,
	    16, ls, &n, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "at most 16 addresses in listen and proxy_listen "
	    "together");
	ck_assert_int_eq(listener_reconcile_both(ls, 0, one, 1, sixteen,
	    LISTENER_MAX, 16, ls, &n, err, sizeof(err)), -1);
	ck_assert_uint_eq(n, 0);
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

	tc = h_case(s, "proxy", 0, H_TESTS(proxy_bound_other_family,
	    proxy_reconcile_overlap_names_the_list, proxy_too_many));
	tcase_add_loop_test(tc, proxy_bound_table, 0, H_NELEM(bound_cases));
	tcase_add_loop_test(tc, proxy_mask_table, 0, H_NELEM(mask_cases));
	tcase_add_loop_test(tc, proxy_reconcile_table, 0,
	    H_NELEM(px_reconciles));
	return s;
}
