/*
 * probe: a non-blocking echo round trip against our own listener.
 *
 * Never blocks and never logs: the master decides what a failure means.
 * While a probe waits it costs nothing: its socket is watched only for
 * the one event it needs next.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "echo.h"
#include "probe.h"

static uint64_t
clamp(uint64_t v, uint64_t lo, uint64_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

struct probe_sched
probe_schedule(uint64_t watchdog_usec)
{
	struct probe_sched s;
	uint64_t w = watchdog_usec / 1000;

	memset(&s, 0, sizeof(s));
	if (watchdog_usec == 0)
		return s;
	if (w < PROBE_WATCHDOG_MIN_MS) {
		w = PROBE_WATCHDOG_MIN_MS;
		s.clamped = 1;
	}
	s.watchdog_ms = w;
	s.every_ms = w / 2;
	s.deadline_ms = clamp(w / 4, PROBE_DEADLINE_MIN_MS,
	    PROBE_DEADLINE_MAX_MS);
	s.retry_ms = s.every_ms < 4000 ? s.every_ms / 4 : 1000;
	return s;
}

int
probe_skip_when_full(unsigned ready, unsigned full)
{
	return ready > 0 && full >= ready;
}

uint32_t
probe_wants(int sent)
{
	return sent ? EPOLLIN : EPOLLOUT;
}

void
probe_init(struct probe *p, uint64_t watchdog_usec)
{
	memset(p, 0, sizeof(*p));
	p->fd = -1;
	p->epfd = -1;
	p->sched = probe_schedule(watchdog_usec);
}

/* Watch fd for what the probe needs now; 0, or -1 with errno. */
static int
watch(struct probe *p)
{
	struct epoll_event ev;
	uint32_t want = probe_wants(p->sent);

	if (p->epfd == -1 || p->events == want)
		return 0;
	memset(&ev, 0, sizeof(ev));
	ev.events = want;
	ev.data.u32 = p->tag;
	if (epoll_ctl(p->epfd, p->events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD,
	    p->fd, &ev) == -1)
		return -1;
	p->events = want;
	return 0;
}

int
probe_target(int lfd, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	socklen_t olen = sizeof(int);
	in_port_t port;
	int v6only = 1;

	*len = sizeof(*ss);
	if (getsockname(lfd, (struct sockaddr *)ss, len) == -1)
		return -1;
	if (ss->ss_family == AF_INET) {
		if (sin->sin_addr.s_addr == htonl(INADDR_ANY))
			sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		return 0;
	}
	if (ss->ss_family != AF_INET6)
		return -1;
	if (!IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr))
		return 0;
	(void)getsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &olen);
	if (v6only) {
		sin6->sin6_addr = in6addr_loopback;
		return 0;
	}
	/* Dual-stack wildcard: IPv4 loopback works even without ::1. */
	port = sin6->sin6_port;
	memset(ss, 0, sizeof(*ss));
	sin->sin_family = AF_INET;
	sin->sin_port = port;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	*len = sizeof(*sin);
	return 0;
}

static void
make_token(unsigned char *t)
{
	size_t i;

	if (getrandom(t, PROBE_TOKEN_LEN, GRND_NONBLOCK) != PROBE_TOKEN_LEN)
		for (i = 0; i < PROBE_TOKEN_LEN; i++)
			t[i] = (unsigned char)(i * 7 + (unsigned)getpid());
	for (i = 0; i < PROBE_TOKEN_LEN; i++)
		t[i] = (unsigned char)('a' + t[i] % 26);
}

static int
start_failed(struct probe *p, const char *what)
{
	snprintf(p->err, sizeof(p->err), "%s: %s", what, strerror(errno));
	probe_cancel(p);
	return -1;
}

int
probe_start(struct probe *p, const struct sockaddr *sa, socklen_t len,
    uint64_t now_ms, int epfd, uint32_t tag)
{
	probe_cancel(p);
	p->sent = 0;
	p->got = 0;
	p->err[0] = '\0';
	p->deadline_ms = now_ms + p->sched.deadline_ms;
	p->epfd = epfd;
	p->tag = tag;
	p->events = 0;
	make_token(p->token);
	p->fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (p->fd == -1 || (connect(p->fd, sa, len) == -1 &&
	    errno != EINPROGRESS))
		return start_failed(p, "connect");
	if (watch(p) == -1)
		return start_failed(p, "epoll_ctl");
	return p->fd;
}

/*
 * A proxied listener wants a PROXY header before anything: a v2 LOCAL one,
 * as a balancer's own health check sends (the worker keeps the probe's
 * own address and counts it against no client).
 */
static const unsigned char v2_local[16] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
	0x20, 0x00, 0x00, 0x00
};

static enum probe_result
fail(struct probe *p, const char *what, int err)
{
	snprintf(p->err, sizeof(p->err), "%s: %s", what,
	    err ? strerror(err) : "connection closed");
	probe_cancel(p);
	return PROBE_FAILED;
}

enum probe_result
probe_event(struct probe *p)
{
	unsigned char want[PROBE_TOKEN_LEN], out[sizeof(v2_local) +
	    PROBE_TOKEN_LEN];
	size_t olen = 0;
	socklen_t sl = sizeof(int);
	int soerr = 0;
	ssize_t n;

	if (p->fd == -1)
		return PROBE_FAILED;
	if (!p->sent) {
		if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == -1 ||
		    soerr != 0)
			return fail(p, "connect", soerr ? soerr : errno);
		if (p->proxied) {
			memcpy(out, v2_local, sizeof(v2_local));
			olen = sizeof(v2_local);
		}
		memcpy(out + olen, p->token, PROBE_TOKEN_LEN);
		olen += PROBE_TOKEN_LEN;
		n = send(p->fd, out, olen, MSG_NOSIGNAL);
		if (n == -1 && (errno == EAGAIN || errno == ENOTCONN))
			return PROBE_PENDING;
		if (n != (ssize_t)olen)
			return fail(p, "send", n == -1 ? errno : EIO);
		p->sent = 1;
		if (watch(p) == -1)
			return fail(p, "epoll_ctl", errno);
	}
	n = recv(p->fd, p->reply + p->got, PROBE_TOKEN_LEN - p->got,
	    MSG_DONTWAIT);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return PROBE_PENDING;
	if (n <= 0)
		return fail(p, "recv", n == -1 ? errno : 0);
	p->got += (size_t)n;
	if (p->got < PROBE_TOKEN_LEN)
		return PROBE_PENDING;
	memcpy(want, p->token, PROBE_TOKEN_LEN);
	echo_upper(want, PROBE_TOKEN_LEN);
	if (memcmp(want, p->reply, PROBE_TOKEN_LEN) != 0) {
		snprintf(p->err, sizeof(p->err), "wrong reply '%.*s' to '%.*s'",
		    PROBE_TOKEN_LEN, (const char *)p->reply, PROBE_TOKEN_LEN,
		    (const char *)p->token);
		probe_cancel(p);
		return PROBE_FAILED;
	}
	probe_cancel(p);
	return PROBE_OK;
}

enum probe_result
probe_expire(struct probe *p, uint64_t now_ms)
{
	if (p->fd == -1)
		return PROBE_FAILED;
	if (now_ms < p->deadline_ms)
		return PROBE_PENDING;
	snprintf(p->err, sizeof(p->err), "no reply within the deadline (%s)",
	    p->sent ? "token sent" : "not connected");
	probe_cancel(p);
	return PROBE_FAILED;
}

void
probe_cancel(struct probe *p)
{
	if (p->fd != -1)
		close(p->fd); /* which takes it out of the epoll set too */
	p->fd = -1;
	p->events = 0;
}
