/*
 * listener: parse listening addresses and open listening sockets.
 *
 * Addresses are numeric only: echod never asks DNS, forward or reverse,
 * so it starts the same with or without a resolver.  Reports errors in the
 * caller's buffer and never exits: the master decides what a failure means.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "listener.h"
#include "log.h"
#include "notify.h"

#define EXPECTED "expected HOST:PORT, [IPV6]:PORT or *:PORT"

static int
parse_port(const char *s, in_port_t *port)
{
	char *end;
	long v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < 0 || v > 65535)
		return -1;
	*port = htons((in_port_t)v);
	return 0;
}

/* Split spec into host and port strings; the host loses its brackets. */
static int
split_spec(const char *spec, char *host, size_t hostlen, const char **port)
{
	const char *colon, *close;
	size_t n;

	if (spec[0] == '[') {
		close = strchr(spec, ']');
		if (close == NULL || close[1] != ':')
			return -1;
		n = (size_t)(close - spec - 1);
		spec++;
		colon = close + 1;
	} else {
		colon = strrchr(spec, ':');
		if (colon == NULL || memchr(spec, ':', (size_t)(colon - spec)))
			return -1;
		n = (size_t)(colon - spec);
	}
	if (n == 0 || n >= hostlen)
		return -1;
	memcpy(host, spec, n);
	host[n] = '\0';
	*port = colon + 1;
	return 0;
}

int
listener_parse(const char *spec, struct listen_addr *out, char *err,
    size_t errlen)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;
	char host[INET6_ADDRSTRLEN + 1];
	const char *port;
	in_port_t p;

	memset(out, 0, sizeof(*out));
	if (split_spec(spec, host, sizeof(host), &port) == -1) {
		snprintf(err, errlen, "'%s': %s", spec, EXPECTED);
		return -1;
	}
	if (parse_port(port, &p) == -1) {
		snprintf(err, errlen, "'%s': port '%s' is not a number in 0..65535",
		    spec, port);
		return -1;
	}
	if (spec[0] != '[' && strcmp(host, "*") == 0) {
		out->any = true;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = in6addr_any;
		sin6->sin6_port = p;
		out->sslen = sizeof(*sin6);
	} else if (spec[0] == '[' && inet_pton(AF_INET6, host,
	    &sin6->sin6_addr) == 1) {
		/* An IPv6-only socket cannot bind one: EINVAL at start. */
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			char v4[INET_ADDRSTRLEN];

			inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], v4,
			    sizeof(v4));
			snprintf(err, errlen, "'%s': '%s' is an IPv4-mapped "
			    "address; write it as %s:%u", spec, host, v4,
			    ntohs(p));
			return -1;
		}
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = p;
		out->sslen = sizeof(*sin6);
	} else if (spec[0] != '[' && inet_pton(AF_INET, host,
	    &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = p;
		out->sslen = sizeof(*sin);
	} else {
		snprintf(err, errlen, "'%s': '%s' is not a numeric %s address "
		    "(echod does not resolve names); %s", spec, host,
		    spec[0] == '[' ? "IPv6" : "IPv4", EXPECTED);
		return -1;
	}
	return 0;
}

void
listener_format(const struct sockaddr *sa, char *buf, size_t len)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
	char a[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &sin->sin_addr, a, sizeof(a));
		snprintf(buf, len, "%s:%u", a, ntohs(sin->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &sin6->sin6_addr, a, sizeof(a));
		snprintf(buf, len, "[%s]:%u", a, ntohs(sin6->sin6_port));
	} else
		snprintf(buf, len, "(family %d)", sa->sa_family);
}

static bool
is_wildcard(const struct sockaddr_storage *ss)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

	if (ss->ss_family == AF_INET)
		return sin->sin_addr.s_addr == htonl(INADDR_ANY);
	return IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr);
}

static in_port_t
port_of(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ((const struct sockaddr_in *)ss)->sin_port;
	return ((const struct sockaddr_in6 *)ss)->sin6_port;
}

bool
listener_overlap(const struct listen_addr *a, const struct listen_addr *b)
{
	if (port_of(&a->ss) != port_of(&b->ss) || port_of(&a->ss) == 0)
		return false;
	/* "*" is dual-stack [::]: every address of both families. */
	if (a->any || b->any)
		return true;
	/* 0.0.0.0 and an explicit [::] (IPv6 only) cover their family. */
	return a->ss.ss_family == b->ss.ss_family &&
	    (is_wildcard(&a->ss) || is_wildcard(&b->ss));
}

/*
 * Replies are small and interactive: no Nagle delay.  Set once on the
 * listener, every accepted socket inherits it, which saves a system call
 * per connection.
 */
static int
nodelay(int fd)
{
	int on = 1;

	return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
}

static int
open_one(const struct sockaddr *sa, socklen_t salen, int v6only, int backlog)
{
	int fd, on = 1, saved;

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd == -1)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1 ||
	    nodelay(fd) == -1)
		goto fail;
	if (sa->sa_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6,
	    IPV6_V6ONLY, &v6only, sizeof(v6only)) == -1)
		goto fail;
	if (bind(fd, sa, salen) == -1 || listen(fd, backlog) == -1)
		goto fail;
	return fd;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

int
listener_open(const struct listen_addr *la, int backlog, char *err,
    size_t errlen)
{
	const struct sockaddr *sa = (const struct sockaddr *)&la->ss;
	struct sockaddr_in sin;
	char name[INET6_ADDRSTRLEN + 8];
	int fd;

	fd = open_one(sa, la->sslen, la->any ? 0 : 1, backlog);
	if (fd == -1 && la->any && (errno == EAFNOSUPPORT ||
	    errno == EADDRNOTAVAIL)) {
		/* No IPv6 on this host: "*" means every IPv4 address. */
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_addr.s_addr = htonl(INADDR_ANY);
		sin.sin_port = ((const struct sockaddr_in6 *)sa)->sin6_port;
		sa = (const struct sockaddr *)&sin;
		fd = open_one(sa, sizeof(sin), 0, backlog);
	}
	if (fd == -1) {
		int saved = errno;

		listener_format(sa, name, sizeof(name));
		snprintf(err, errlen, "cannot listen on %s: %s", name,
		    strerror(saved));
		errno = saved;
	}
	return fd;
}

void
listener_name(struct listener *l)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	size_t n;

	memset(&ss, 0, sizeof(ss));
	if (getsockname(l->fd, (struct sockaddr *)&ss, &sl) == -1)
		snprintf(l->name, sizeof(l->name), "(fd %d)", l->fd);
	else
		listener_format((struct sockaddr *)&ss, l->name,
		    sizeof(l->name));
	/* Say which addresses "*" became: "[::]:7007 (*:7007)". */
	n = strlen(l->name);
	if (l->spec[0] == '*' && n < sizeof(l->name))
		snprintf(l->name + n, sizeof(l->name) - n, " (%s)", l->spec);
}

void
listener_fdname(const char *spec, char *buf, size_t len)
{
	char *p;

	snprintf(buf, len, "listen-%s", spec);
	for (p = buf; *p != '\0'; p++)
		if (*p == ':')
			*p = '_';
}

static int
adopt_fd(int fd, char *err, size_t errlen)
{
	int fl;

	if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
		snprintf(err, errlen, "fd %d passed by systemd is not a "
		    "listening stream socket", fd);
		return -1;
	}
	if ((fl = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) == -1 ||
	    (sd_is_socket(fd, AF_UNIX, 0, -1) <= 0 && nodelay(fd) == -1)) {
		snprintf(err, errlen, "fd %d passed by systemd: %s", fd,
		    strerror(errno));
		return -1;
	}
	return 0;
}

int
listener_inherit(int *fds, char (*names)[LISTENER_NAME_MAX], int max,
    char *err, size_t errlen)
{
	char **nm = NULL;
	int i, n, rc;

	if ((n = sd_listen_fds_with_names(1, &nm)) < 0) {
		snprintf(err, errlen, "LISTEN_FDS: %s", strerror(-n));
		return -1;
	}
	rc = n;
	if (n > max) {
		snprintf(err, errlen, "systemd passed %d sockets; at most %d",
		    n, max);
		rc = -1;
	}
	for (i = 0; i < n; i++) {
		if (rc != -1 && adopt_fd(SD_LISTEN_FDS_START + i, err,
		    errlen) == -1)
			rc = -1;
		if (rc != -1) {
			fds[i] = SD_LISTEN_FDS_START + i;
			snprintf(names[i], LISTENER_NAME_MAX, "%s",
			    nm != NULL && nm[i] != NULL ? nm[i] : "unknown");
		}
	}
	if (nm != NULL) {
		for (i = 0; nm[i] != NULL; i++)
			free(nm[i]);
		free(nm);
	}
	return rc;
}

static int
from_store(const char *spec, int *fds, char (*names)[LISTENER_NAME_MAX],
    int n)
{
	char want[LISTENER_NAME_MAX];
	int i, fd;

	listener_fdname(spec, want, sizeof(want));
	for (i = 0; i < n; i++)
		if (fds[i] != -1 && strcmp(names[i], want) == 0) {
			fd = fds[i];
			fds[i] = -1;
			return fd;
		}
	return -1;
}

/* On failure nothing is left open: close what was opened or adopted. */
static void
release(struct listener *ls, size_t nls, int *fds, int n)
{
	size_t k;
	int i;

	for (k = 0; k < nls; k++)
		close(ls[k].fd);
	for (i = 0; i < n; i++)
		if (fds[i] != -1)
			close(fds[i]);
}

/*
 * listen's and proxy_listen's entries as one list, listen's first, and
 * which of them are proxied.  -1 with err if there are too many.
 */
struct spec_list {
	char *specs[LISTENER_MAX];
	int proxy[LISTENER_MAX];
	size_t n;
};

static int
join(char *const *plain, size_t nplain, char *const *proxy, size_t nproxy,
    struct spec_list *sl, char *err, size_t errlen)
{
	size_t i;

	if (nplain > LISTENER_MAX || nproxy > LISTENER_MAX - nplain) {
		snprintf(err, errlen, "at most %d addresses in listen and "
		    "proxy_listen together", LISTENER_MAX);
		return -1;
	}
	for (i = 0; i < nplain + nproxy; i++) {
		sl->specs[i] = i < nplain ? plain[i] : proxy[i - nplain];
		sl->proxy[i] = i >= nplain;
	}
	sl->n = nplain + nproxy;
	return 0;
}

static const char *
proxy_mark(int proxy)
{
	return proxy ? " (PROXY)" : "";
}

/*
 * The listeners: systemd's sockets if it passed some (socket activation),
 * else the configured addresses, taken back from systemd's fd store where
 * an earlier echod left them, opened otherwise.
 */
int
listener_acquire_both(char *const *plain, size_t nplain,
    char *const *proxy, size_t nproxy, int backlog, struct listener *ls,
    size_t *nls, char *err, size_t errlen)
{
	char names[LISTENER_MAX][LISTENER_NAME_MAX];
	int fds[LISTENER_MAX], n;

	if ((n = listener_inherit(fds, names, LISTENER_MAX, err,
	    errlen)) == -1)
		return -1;
	return listener_acquire_given(plain, nplain, proxy, nproxy, backlog,
	    fds, names, n, " (kept by systemd's fd store across the restart)",
	    ls, nls, err, errlen);
}

int
listener_acquire_given(char *const *plain, size_t nplain,
    char *const *proxy, size_t nproxy, int backlog, int *fds,
    char (*names)[LISTENER_NAME_MAX], int n, const char *kept,
    struct listener *ls, size_t *nls, char *err, size_t errlen)
{
	struct spec_list sl;
	char *const *specs = sl.specs;
	size_t nspecs;
	int i, stored = 0;
	struct listen_addr la;
	size_t k;

	if (join(plain, nplain, proxy, nproxy, &sl, err, errlen) == -1) {
		release(ls, 0, fds, n);
		return -1;
	}
	nspecs = sl.n;
	for (i = 0; i < n; i++)
		stored += strncmp(names[i], "listen-", 7) == 0;
	if (n > 0 && stored < n) {
		for (i = 0, k = 0; i < n; i++) {
			if (strncmp(names[i], "listen-", 7) == 0) {
				/* Our own, from the store: the socket unit's win. */
				notify_fdstore_remove(names[i]);
				close(fds[i]);
				continue;
			}
			memset(&ls[k], 0, sizeof(ls[k]));
			ls[k].fd = fds[i];
			ls[k].from_systemd = 1;
			listener_name(&ls[k]);
			log_notice("socket activation: adopted %s (\"%s\") from "
			    "systemd; the configuration's listen is not used",
			    ls[k].name, names[i]);
			k++;
		}
		*nls = k;
		listener_mark_adopted(ls, k, proxy, nproxy);
		return 0;
	}
	for (k = 0; k < nspecs; k++) {
		memset(&ls[k], 0, sizeof(ls[k]));
		snprintf(ls[k].spec, sizeof(ls[k].spec), "%s", specs[k]);
		ls[k].proxy = sl.proxy[k];
		if ((ls[k].fd = from_store(specs[k], fds, names, n)) != -1)
			ls[k].from_store = 1;
		else if (listener_parse(specs[k], &la, err, errlen) == -1 ||
		    (ls[k].fd = listener_open(&la, backlog, err,
		    errlen)) == -1) {
			release(ls, k, fds, n);
			return -1;
		}
		listener_name(&ls[k]);
		log_info("listening on %s%s%s", ls[k].name,
		    proxy_mark(ls[k].proxy), ls[k].from_store ? kept : "");
	}
	for (i = 0; i < n; i++)
		if (fds[i] != -1) {
			/* Stored by an echod whose listen was different. */
			notify_fdstore_remove(names[i]);
			close(fds[i]);
		}
	*nls = nspecs;
	return 0;
}


/* ---- reconciliation: start-up's set against a reload's ---- */

static in_port_t
addr_port(const struct listen_addr *a)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->ss;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a->ss;

	return a->ss.ss_family == AF_INET ? sin->sin_port : sin6->sin6_port;
}

static int
addr_same(const struct listen_addr *a, const struct listen_addr *b)
{
	return a->any == b->any && a->sslen == b->sslen &&
	    memcmp(&a->ss, &b->ss, a->sslen) == 0;
}

/* Does w take every address of x's family on its port? */
static int
addr_covers(const struct listen_addr *w, const struct listen_addr *x)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&w->ss;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&w->ss;

	if (w->any)
		return 1;
	if (w->ss.ss_family != x->ss.ss_family)
		return 0;
	return w->ss.ss_family == AF_INET ?
	    sin->sin_addr.s_addr == htonl(INADDR_ANY) :
	    IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr);
}

static int
addr_overlap(const struct listen_addr *a, const struct listen_addr *b)
{
	if (addr_port(a) == 0 || addr_port(a) != addr_port(b))
		return 0; /* port 0: the kernel picks a free one */
	return addr_same(a, b) || addr_covers(a, b) || addr_covers(b, a);
}

int
listener_plan(const struct listen_addr *old, size_t nold,
    const struct listen_addr *nw, size_t nnew, int *keep, size_t *bad_new,
    size_t *bad_old)
{
	int kept[LISTENER_MAX] = { 0 };
	size_t i, j;

	for (i = 0; i < nnew; i++) {
		keep[i] = -1;
		for (j = 0; j < nold && j < LISTENER_MAX; j++)
			if (!kept[j] && addr_same(&nw[i], &old[j])) {
				keep[i] = (int)j;
				kept[j] = 1;
				break;
			}
	}
	for (i = 0; i < nnew; i++) {
		if (keep[i] != -1)
			continue;
		for (j = 0; j < nold && j < LISTENER_MAX; j++)
			if (!kept[j] && addr_overlap(&nw[i], &old[j])) {
				*bad_new = i;
				*bad_old = j;
				return -1;
			}
	}
	return 0;
}

static int
parse_all(char *const *specs, size_t n, struct listen_addr *la, char *err,
    size_t errlen)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (listener_parse(specs[i], &la[i], err, errlen) == -1)
			return -1;
	return 0;
}

/* A kept listener that moved between listen and proxy_listen. */
static void
log_moved(const struct listener *l)
{
	log_info("reload: %s %s a PROXY header (the same socket, %s)",
	    l->name, l->proxy ? "now expects" : "no longer expects",
	    l->proxy ? "moved to proxy_listen" : "moved to listen");
}

int
listener_reconcile_both(const struct listener *old, size_t nold,
    char *const *plain, size_t nplain, char *const *proxy, size_t nproxy,
    int backlog, struct listener *out, size_t *nout, char *err,
    size_t errlen)
{
	struct listen_addr ola[LISTENER_MAX], nla[LISTENER_MAX];
	char *ospecs[LISTENER_MAX];
	int keep[LISTENER_MAX];
	struct spec_list sl;
	char *const *specs = sl.specs;
	size_t i, bn, bo, nspecs;

	*nout = 0;
	if (join(plain, nplain, proxy, nproxy, &sl, err, errlen) == -1)
		return -1;
	nspecs = sl.n;
	if (nold > LISTENER_MAX) {
		snprintf(err, errlen, "at most %d listen addresses",
		    LISTENER_MAX);
		return -1;
	}
	for (i = 0; i < nold; i++)
		ospecs[i] = (char *)(uintptr_t)old[i].spec;
	if (parse_all(ospecs, nold, ola, err, errlen) == -1 ||
	    parse_all(specs, nspecs, nla, err, errlen) == -1)
		return -1;
	if (listener_plan(ola, nold, nla, nspecs, keep, &bn, &bo) == -1) {
		snprintf(err, errlen, "%s: '%s' overlaps '%s' on the same "
		    "port, and the running workers hold that socket until "
		    "the new ones are ready, so a reload cannot switch "
		    "between them; reload to another port first, or restart "
		    "echod", sl.proxy[bn] ? "proxy_listen" : "listen", specs[bn],
		    old[bo].spec);
		return -1;
	}
	for (i = 0; i < nspecs; i++) {
		memset(&out[i], 0, sizeof(out[i]));
		if (keep[i] != -1) {
			out[i] = old[keep[i]];
			out[i].proxy = sl.proxy[i];
			if (out[i].proxy != old[keep[i]].proxy)
				log_moved(&out[i]);
			(void)listen(out[i].fd, backlog);
			continue;
		}
		snprintf(out[i].spec, sizeof(out[i].spec), "%s", specs[i]);
		out[i].proxy = sl.proxy[i];
		if ((out[i].fd = listener_open(&nla[i], backlog, err,
		    errlen)) == -1) {
			listener_close_unused(out, i, old, nold, 0);
			return -1;
		}
		listener_name(&out[i]);
		log_info("reload: listening on %s%s", out[i].name,
		    proxy_mark(out[i].proxy));
	}
	*nout = nspecs;
	return 0;
}

static int
holds_fd(const struct listener *ls, size_t n, int fd)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (ls[i].fd == fd)
			return 1;
	return 0;
}

void
listener_close_unused(const struct listener *ls, size_t n,
    const struct listener *keep, size_t nkeep, int retired)
{
	char name[LISTENER_NAME_MAX];
	size_t i;

	for (i = 0; i < n; i++) {
		if (ls[i].from_systemd || holds_fd(keep, nkeep, ls[i].fd))
			continue;
		if (retired) {
			log_info("reload: no longer listening on %s%s",
			    ls[i].name, proxy_mark(ls[i].proxy));
			if (ls[i].from_store) {
				listener_fdname(ls[i].spec, name, sizeof(name));
				notify_fdstore_remove(name);
			}
		}
		close(ls[i].fd);
	}
}

void
listener_store(struct listener *ls, size_t n)
{
	char name[LISTENER_NAME_MAX];
	size_t i;

	for (i = 0; i < n; i++) {
		if (ls[i].from_systemd || ls[i].from_store)
			continue;
		listener_fdname(ls[i].spec, name, sizeof(name));
		notify_fdstore(ls[i].fd, name);
		ls[i].from_store = 1; /* it is there now */
	}
}

/* ---- proxied listeners (proxy_listen) ---- */

int
listener_bound_is(const struct sockaddr *sa, const struct listen_addr *entry)
{
	const struct sockaddr_in *a4 = (const struct sockaddr_in *)(const void *)sa;
	const struct sockaddr_in6 *a6 =
	    (const struct sockaddr_in6 *)(const void *)sa;
	const struct sockaddr_in *e4 =
	    (const struct sockaddr_in *)(const void *)&entry->ss;
	const struct sockaddr_in6 *e6 =
	    (const struct sockaddr_in6 *)(const void *)&entry->ss;
	in_port_t port;

	if (sa->sa_family == AF_INET)
		port = a4->sin_port;
	else if (sa->sa_family == AF_INET6)
		port = a6->sin6_port;
	else
		return 0;
	if (port != addr_port(entry))
		return 0;
	if (entry->any) /* "*": dual-stack [::], or 0.0.0.0 without IPv6 */
		return sa->sa_family == AF_INET ?
		    a4->sin_addr.s_addr == htonl(INADDR_ANY) :
		    IN6_IS_ADDR_UNSPECIFIED(&a6->sin6_addr);
	if (sa->sa_family != entry->ss.ss_family)
		return 0;
	return sa->sa_family == AF_INET ?
	    a4->sin_addr.s_addr == e4->sin_addr.s_addr :
	    IN6_ARE_ADDR_EQUAL(&a6->sin6_addr, &e6->sin6_addr);
}

/* Whether the socket fd is bound to one of the n entries of proxy. */
static int
bound_in(int fd, char *const *proxy, size_t n)
{
	struct sockaddr_storage ss;
	struct listen_addr la;
	socklen_t sl = sizeof(ss);
	char junk[8];
	size_t i;

	memset(&ss, 0, sizeof(ss));
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == -1)
		return 0;
	for (i = 0; i < n; i++)
		if (listener_parse(proxy[i], &la, junk, sizeof(junk)) == 0 &&
		    listener_bound_is((struct sockaddr *)&ss, &la))
			return 1;
	return 0;
}

void
listener_mark_adopted(struct listener *ls, size_t n, char *const *proxy,
    size_t nproxy)
{
	size_t i;
	int was;

	for (i = 0; i < n; i++) {
		if (!ls[i].from_systemd)
			continue;
		was = ls[i].proxy;
		ls[i].proxy = bound_in(ls[i].fd, proxy, nproxy);
		if (ls[i].proxy && !was)
			log_notice("socket activation: %s is in proxy_listen: "
			    "its clients must send a PROXY header",
			    ls[i].name);
		else if (!ls[i].proxy && was)
			log_notice("socket activation: %s is no longer in "
			    "proxy_listen: a plain listener", ls[i].name);
	}
}

uint32_t
listener_proxy_mask(const struct listener *ls, size_t n)
{
	uint32_t mask = 0;
	size_t i;

	for (i = 0; i < n && i < 32; i++)
		if (ls[i].proxy)
			mask |= UINT32_C(1) << i;
	return mask;
}
