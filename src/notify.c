/*
 * notify: the sd_notify protocol, sent without ever blocking.
 *
 * libsystemd's sd_notify() is a blocking send: a service manager that
 * stops reading its socket would stop the master's loop with it (no
 * reaping, no respawning, no SIGTERM).  So the datagrams are sent here,
 * with MSG_DONTWAIT, on a socket opened for each send (nothing is left
 * open for the workers to inherit).  What cannot be sent now waits in
 * one pending state, merged with what follows, and notify_flush() tries
 * again on the master's timer, backing off from 50 ms to 1 s.
 *
 * Failures to notify are not errors: a daemon must run the same with no
 * service manager listening.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "notify.h"

#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 1000

static struct notify_pending pending;
static unsigned retries;
static uint64_t retry_at = UINT64_MAX;
static unsigned long long fdstore_dropped;

static uint64_t
mono_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* ---- the pure part ---- */

void
notify_merge(struct notify_pending *p, enum notify_event ev,
    const char *status, int err, uint64_t usec)
{
	switch (ev) {
	case NOTIFY_EV_READY:
		p->what |= NOTIFY_READY;
		break;
	case NOTIFY_EV_RELOADING:
		p->what &= ~NOTIFY_READY;
		p->what |= NOTIFY_RELOADING;
		p->reload_usec = usec;
		break;
	case NOTIFY_EV_STOPPING:
		p->what &= ~(NOTIFY_READY | NOTIFY_RELOADING);
		p->what |= NOTIFY_STOPPING;
		break;
	case NOTIFY_EV_FAILURE:
		if (err != 0) {
			p->what |= NOTIFY_ERRNO;
			p->err = err;
		}
		break;
	case NOTIFY_EV_WATCHDOG:
		p->what |= NOTIFY_WATCHDOG;
		break;
	case NOTIFY_EV_STATUS:
		break;
	}
	if (status != NULL) {
		p->what |= NOTIFY_STATUS;
		snprintf(p->status, sizeof(p->status), "%s", status);
	}
}

/* Append a line to buf (holding *n bytes); the bit if it fit, else 0. */
static unsigned
add(char *buf, size_t len, size_t *n, unsigned bit, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static unsigned
add(char *buf, size_t len, size_t *n, unsigned bit, const char *fmt, ...)
{
	va_list ap;
	int r;

	if (*n >= len)
		return 0;
	va_start(ap, fmt);
	r = vsnprintf(buf + *n, len - *n, fmt, ap);
	va_end(ap);
	if (r < 0 || (size_t)r >= len - *n) {
		buf[*n] = '\0';
		return 0;
	}
	*n += (size_t)r;
	return bit;
}

/* No newline after the last line, as sd_notifyf() callers write it. */
static unsigned
trim(char *buf, size_t n, unsigned bits)
{
	if (n > 0 && buf[n - 1] == '\n')
		buf[n - 1] = '\0';
	return bits;
}

unsigned
notify_next(const struct notify_pending *p, char *buf, size_t len)
{
	unsigned w = p->what, bits = 0;
	size_t n = 0;

	if (len > 0)
		buf[0] = '\0';
	if (w & NOTIFY_RELOADING) {
		bits |= add(buf, len, &n, NOTIFY_RELOADING,
		    "RELOADING=1\nMONOTONIC_USEC=%llu\n",
		    (unsigned long long)p->reload_usec);
		/* The status is READY's when READY follows. */
		if ((w & NOTIFY_STATUS) && !(w & (NOTIFY_READY | NOTIFY_STOPPING)))
			bits |= add(buf, len, &n, NOTIFY_STATUS, "STATUS=%s\n",
			    p->status);
		return trim(buf, n, bits);
	}
	if (w & NOTIFY_STOPPING)
		bits |= add(buf, len, &n, NOTIFY_STOPPING, "STOPPING=1\n");
	if (w & NOTIFY_READY)
		bits |= add(buf, len, &n, NOTIFY_READY, "READY=1\n");
	if (w & NOTIFY_ERRNO)
		bits |= add(buf, len, &n, NOTIFY_ERRNO, "ERRNO=%d\n", p->err);
	if (w & NOTIFY_STATUS)
		bits |= add(buf, len, &n, NOTIFY_STATUS, "STATUS=%s\n",
		    p->status);
	if (w & NOTIFY_WATCHDOG)
		bits |= add(buf, len, &n, NOTIFY_WATCHDOG, "WATCHDOG=1\n");
	return trim(buf, n, bits);
}

void
notify_sent(struct notify_pending *p, unsigned bits)
{
	p->what &= ~bits;
}

uint64_t
notify_backoff_ms(unsigned n)
{
	uint64_t ms = BACKOFF_MIN_MS;

	while (n-- > 0 && ms < BACKOFF_MAX_MS)
		ms *= 2;
	return ms < BACKOFF_MAX_MS ? ms : BACKOFF_MAX_MS;
}

/* ---- sending ---- */

/* NOTIFY_SOCKET as an address: a path, or "@name" (abstract). */
static int
manager_addr(struct sockaddr_un *sun, socklen_t *len)
{
	const char *e = getenv("NOTIFY_SOCKET");
	size_t n;

	if (e == NULL || (e[0] != '/' && e[0] != '@') ||
	    (n = strlen(e)) < 2 || n > sizeof(sun->sun_path))
		return -1;
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, e, n);
	if (e[0] == '@')
		sun->sun_path[0] = '\0';
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	return 0;
}

/*
 * Send msg (with fd, if not -1) without waiting.  0: sent, or nobody to
 * send it to; -1: the manager's socket cannot take it now.
 */
static int
send_now(const char *msg, int fd)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} cm;
	struct sockaddr_un sun;
	struct iovec iov = { (void *)(uintptr_t)msg, strlen(msg) };
	struct msghdr mh;
	socklen_t sl;
	ssize_t r;
	int s, saved = errno;

	if (manager_addr(&sun, &sl) == -1)
		return 0;
	memset(&mh, 0, sizeof(mh));
	mh.msg_name = &sun;
	mh.msg_namelen = sl;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (fd != -1) {
		memset(&cm, 0, sizeof(cm));
		mh.msg_control = cm.buf;
		mh.msg_controllen = sizeof(cm.buf);
		cm.h.cmsg_level = SOL_SOCKET;
		cm.h.cmsg_type = SCM_RIGHTS;
		cm.h.cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(&cm.h), &fd, sizeof(int));
	}
	if ((s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0)) == -1)
		return 0;
	do
		r = sendmsg(s, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (r == -1 && errno == EINTR);
	r = r == -1 && (errno == EAGAIN || errno == ENOBUFS) ? -1 : 0;
	close(s);
	errno = saved;
	return (int)r;
}

void
notify_flush(void)
{
	char msg[NOTIFY_MSG_MAX];
	unsigned bits;

	while ((bits = notify_next(&pending, msg, sizeof(msg))) != 0) {
		if (send_now(msg, -1) == -1) {
			retry_at = mono_usec() / 1000 + notify_backoff_ms(retries);
			retries++;
			return;
		}
		notify_sent(&pending, bits);
	}
	pending.what = 0; /* whatever could not be put in a datagram */
	retries = 0;
	retry_at = UINT64_MAX;
}

uint64_t
notify_retry_at(void)
{
	return retry_at;
}

static void
event(enum notify_event ev, const char *status, int err)
{
	if (getenv("NOTIFY_SOCKET") == NULL)
		return;
	notify_merge(&pending, ev, status, err,
	    ev == NOTIFY_EV_RELOADING ? mono_usec() : 0);
	notify_flush();
}

void
notify_ready(const char *status)
{
	event(NOTIFY_EV_READY, status, 0);
}

void
notify_status(const char *status)
{
	event(NOTIFY_EV_STATUS, status, 0);
}

void
notify_stopping(const char *status)
{
	event(NOTIFY_EV_STOPPING, status, 0);
}

void
notify_failure(int err, const char *status)
{
	event(NOTIFY_EV_FAILURE, status, err);
}

void
notify_reloading(void)
{
	event(NOTIFY_EV_RELOADING, "reloading", 0);
}

void
notify_upgrading(const char *status)
{
	event(NOTIFY_EV_RELOADING, status, 0);
}

void
notify_watchdog(void)
{
	event(NOTIFY_EV_WATCHDOG, NULL, 0);
}

uint64_t
notify_watchdog_usec(void)
{
	uint64_t usec = 0;

	if (sd_watchdog_enabled(0, &usec) <= 0)
		return 0;
	return usec;
}

/*
 * systemd 254 and later say in $FDSTORE how many fds the store takes; 0
 * means none.  Older ones do not say: offer the fd, which they ignore
 * when the unit has no FileDescriptorStoreMax=.
 */
static int
fdstore_wanted(void)
{
	const char *s = getenv("FDSTORE");

	return s == NULL || strtol(s, NULL, 10) > 0;
}

/* An fd store message is not state: one that cannot go now is dropped. */
static void
send_fdstore(const char *msg, int fd, const char *name)
{
	if (send_now(msg, fd) == 0)
		return;
	fdstore_dropped++;
	log_warnx("fd store: the service manager is not taking messages: "
	    "%s %s dropped (%llu fd store message(s) dropped so far)",
	    fd != -1 ? "FDSTORE of" : "FDSTOREREMOVE of", name,
	    fdstore_dropped);
}

void
notify_fdstore(int fd, const char *name)
{
	char msg[128];

	if (!fdstore_wanted() || getenv("NOTIFY_SOCKET") == NULL)
		return;
	snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=%s", name);
	send_fdstore(msg, fd, name);
}

void
notify_fdstore_remove(const char *name)
{
	char msg[128];

	if (getenv("NOTIFY_SOCKET") == NULL)
		return;
	snprintf(msg, sizeof(msg), "FDSTOREREMOVE=1\nFDNAME=%s", name);
	send_fdstore(msg, -1, name);
}
