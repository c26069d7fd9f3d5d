/*
 * log: levelled logging to stderr, one line per event.
 *
 * Under journald (JOURNAL_STREAM matches our stderr) lines carry a "<N>"
 * priority prefix for the journal and no time stamp; elsewhere a local time
 * stamp with its UTC offset; once detached (-d), datagrams to /dev/log.
 * Each line names the process ("master", "worker 2") and its pid.
 *
 * Must never block, allocate or change errno: it runs on error paths and
 * inside the master's and the workers' loops, and a log reader that stops
 * reading (a full disk under svlogd, a hung journald) must not stop them.
 * So every line goes out whole in one non-blocking write or send, or not at
 * all: a line the log cannot take now is dropped and counted, and the count
 * goes out as a note before the next line that can be written.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define LOG_FACILITY_DAEMON (3 << 3)

/* Where lines go, and how a write is kept from blocking. */
enum sink_kind {
	SINK_NONE,  /* no usable stderr: lines are counted as dropped */
	SINK_WRITE, /* a private O_NONBLOCK descriptor, or a file */
	SINK_POLL,  /* a shared pipe or terminal: write if epoll says it may */
	SINK_SEND,  /* a socket: send(MSG_DONTWAIT) */
	SINK_SYSLOG /* an unconnected datagram socket: sendto(/dev/log) */
};

static struct {
	enum sink_kind kind;
	int fd;
	int own; /* fd is ours to close */
	int ep;  /* SINK_POLL: an epoll set holding fd, for EPOLLOUT */
	struct sockaddr_un sun;
	socklen_t sunlen;
} sink = { SINK_WRITE, STDERR_FILENO, 0, -1, { 0 }, 0 };

static char log_tag[32] = "echod";
static int log_level = LOG_LVL_INFO;
static enum log_style log_style = LOG_STYLE_PLAIN;
static struct log_drops drops;
/*
 * The thread models log from several threads of one worker: the count of
 * dropped lines, and its note before the next line, are one critical
 * section.  (Forks happen only from a single-threaded process.)
 */
static pthread_mutex_t drops_mu = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {
	[LOG_LVL_ERR] = "err",
	[LOG_LVL_WARNING] = "warning",
	[LOG_LVL_NOTICE] = "notice",
	[LOG_LVL_INFO] = "info",
	[LOG_LVL_DEBUG] = "debug",
};

static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May",
	"Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

/* ---- the pure part ---- */

int
log_wanted(int level, int configured)
{
	return level <= configured;
}

uint64_t
log_limit_due(struct log_limit *l, uint64_t now_ms, uint64_t every_ms)
{
	uint64_t n;

	l->n++;
	if (l->last_ms != 0 && now_ms - l->last_ms < every_ms)
		return 0;
	n = l->n;
	l->n = 0;
	l->last_ms = now_ms ? now_ms : 1;
	return n;
}

static int
clamp_level(int level)
{
	if (level < LOG_LVL_ERR)
		return LOG_LVL_ERR;
	if (level > LOG_LVL_DEBUG)
		return LOG_LVL_DEBUG;
	return level;
}

/* snprintf's length, clamped to what fit in len. */
static size_t
fit(int n, size_t len)
{
	if (n < 0 || len == 0)
		return 0;
	return (size_t)n < len ? (size_t)n : len - 1;
}

size_t
log_stamp(char *buf, size_t len, const struct tm *tm, long msec)
{
	long off = tm->tm_gmtoff, a = off < 0 ? -off : off;

	if (msec < 0 || msec > 999)
		msec = 0;
	return fit(snprintf(buf, len,
	    "%04d-%02d-%02d %02d:%02d:%02d.%03ld%c%02ld:%02ld",
	    tm->tm_year + 1900, tm->tm_mon + 1, tm->tm_mday, tm->tm_hour,
	    tm->tm_min, tm->tm_sec, msec, off < 0 ? '-' : '+', a / 3600,
	    a % 3600 / 60), len);
}

/* The record's prefix, everything before the message. */
static size_t
format_head(char *buf, size_t len, const struct log_record *r, int level)
{
	char stamp[48];
	int mon = r->tm->tm_mon;

	switch (r->style) {
	case LOG_STYLE_JOURNAL:
		return fit(snprintf(buf, len, "<%d>%s: ", level, r->tag), len);
	case LOG_STYLE_SYSLOG:
		return fit(snprintf(buf, len, "<%d>%s %2d %02d:%02d:%02d "
		    "echod[%d]: %s: ", LOG_FACILITY_DAEMON | level,
		    months[mon >= 0 && mon < 12 ? mon : 0], r->tm->tm_mday,
		    r->tm->tm_hour, r->tm->tm_min, r->tm->tm_sec, (int)r->pid,
		    r->tag), len);
	case LOG_STYLE_PLAIN:
		break;
	}
	log_stamp(stamp, sizeof(stamp), r->tm, r->msec);
	return fit(snprintf(buf, len, "%s echod[%d] %s: %s%s", stamp,
	    (int)r->pid, r->tag,
	    level <= LOG_LVL_WARNING ? level_names[level] : "",
	    level <= LOG_LVL_WARNING ? ": " : ""), len);
}

/* One line per event: a newline inside a message would forge another. */
static size_t
copy_msg(char *buf, size_t room, const char *msg)
{
	size_t i;

	for (i = 0; i < room && msg[i] != '\0'; i++)
		buf[i] = msg[i] == '\n' || msg[i] == '\r' ? ' ' : msg[i];
	return i;
}

size_t
log_format(char *buf, size_t len, const struct log_record *r)
{
	int nl = r->style != LOG_STYLE_SYSLOG;
	size_t n, cap, end;

	if (len < 2) {
		if (len == 1)
			buf[0] = '\0';
		return 0;
	}
	cap = len > LOG_LINE_MAX ? (size_t)LOG_LINE_MAX : len;
	/* Leave room for the newline and the terminating NUL. */
	end = cap - (size_t)nl - 1;
	n = format_head(buf, end + 1, r, clamp_level(r->level));
	n += copy_msg(buf + n, end - n, r->msg);
	if (nl)
		buf[n++] = '\n';
	buf[n] = '\0';
	return n;
}

void
log_drops_add(struct log_drops *d, pid_t pid)
{
	if (d->pid != pid) {
		d->pid = pid;
		d->n = 0;
	}
	if (d->n < ULONG_MAX)
		d->n++;
}

unsigned long
log_drops_pending(const struct log_drops *d, pid_t pid)
{
	return d->pid == pid ? d->n : 0;
}

void
log_drops_clear(struct log_drops *d)
{
	d->n = 0;
}

size_t
log_drop_note(char *buf, size_t len, unsigned long n)
{
	return fit(snprintf(buf, len, "%lu log line(s) dropped: the log "
	    "could not take them", n), len);
}

/* ---- where lines go ---- */

/* JOURNAL_STREAM is "DEV:INO" of the journal socket systemd gave us. */
static int
stderr_is_journal(const struct stat *st)
{
	const char *js = getenv("JOURNAL_STREAM"), *p;
	unsigned long long dev, ino;
	char *end;

	if (js == NULL)
		return 0;
	dev = strtoull(js, &end, 10);
	if (end == js || *end != ':')
		return 0;
	p = end + 1;
	ino = strtoull(p, &end, 10);
	if (end == p || *end != '\0')
		return 0;
	return (unsigned long long)st->st_dev == dev &&
	    (unsigned long long)st->st_ino == ino;
}

static void
sink_close(void)
{
	if (sink.own)
		close(sink.fd);
	if (sink.ep != -1)
		close(sink.ep);
	sink.ep = -1;
	sink.kind = SINK_NONE;
	sink.fd = -1;
	sink.own = 0;
}

/* fd moved above 2 (0-2 are stdio's, whatever they are), or -1. */
static int
above_stdio(int fd)
{
	int hi;

	if (fd == -1 || fd > STDERR_FILENO)
		return fd;
	hi = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
	close(fd);
	return hi;
}

/*
 * A private, non-blocking open file description of stderr: setting
 * O_NONBLOCK on descriptor 2 itself would change it for every process
 * that shares it (the shell, a supervisor).
 */
static int
reopen_stderr(void)
{
	return above_stdio(open("/proc/self/fd/2", O_WRONLY | O_NONBLOCK |
	    O_NOCTTY | O_CLOEXEC));
}

/*
 * Without /proc, or a pipe another user made (0600, not ours to open): an
 * epoll set says whether the pipe has room before each write.  epoll, not
 * poll: sandboxed workers may call epoll_wait.  Another process may fill
 * the last room between the check and the write; that write then waits
 * for the reader, the one case left where logging can wait.
 */
static int
watch_stderr(void)
{
	struct epoll_event ev = { .events = EPOLLOUT, .data.fd = 0 };
	int ep = above_stdio(epoll_create1(EPOLL_CLOEXEC));

	if (ep != -1 && epoll_ctl(ep, EPOLL_CTL_ADD, STDERR_FILENO, &ev) == -1) {
		close(ep);
		ep = -1;
	}
	return ep;
}

/*
 * Pipes, FIFOs and terminals block when their reader stops: they get a
 * private non-blocking descriptor, or else a readiness check.  Sockets get
 * MSG_DONTWAIT.  Files and /dev/null are written as they are: reopening a
 * file would lose its offset or O_APPEND.
 */
static void
sink_stderr(void)
{
	struct stat st;
	int fd;

	sink_close();
	log_style = LOG_STYLE_PLAIN;
	if (fstat(STDERR_FILENO, &st) == -1)
		return;
	sink.fd = STDERR_FILENO;
	sink.kind = SINK_WRITE;
	if (S_ISSOCK(st.st_mode)) {
		sink.kind = SINK_SEND;
		if (stderr_is_journal(&st))
			log_style = LOG_STYLE_JOURNAL;
	} else if (S_ISFIFO(st.st_mode) ||
	    (S_ISCHR(st.st_mode) && isatty(STDERR_FILENO))) {
		if ((fd = reopen_stderr()) != -1) {
			sink.fd = fd;
			sink.own = 1;
		} else if ((sink.ep = watch_stderr()) != -1)
			sink.kind = SINK_POLL;
	}
}

/* Did all of buf go out now?  Never waits. */
static int
sink_put(const char *buf, size_t len)
{
	struct epoll_event ev;
	ssize_t n;

	do {
		switch (sink.kind) {
		case SINK_NONE:
			return -1;
		case SINK_POLL:
			/* No room, or no reader (a write would raise SIGPIPE). */
			if (epoll_wait(sink.ep, &ev, 1, 0) != 1 ||
			    (ev.events & (EPOLLERR | EPOLLHUP)) ||
			    !(ev.events & EPOLLOUT))
				return -1;
			/* FALLTHROUGH */
		case SINK_WRITE:
			n = write(sink.fd, buf, len);
			break;
		case SINK_SEND:
			n = send(sink.fd, buf, len, MSG_DONTWAIT |
			    MSG_NOSIGNAL);
			break;
		case SINK_SYSLOG:
			n = sendto(sink.fd, buf, len, MSG_DONTWAIT |
			    MSG_NOSIGNAL, (const struct sockaddr *)&sink.sun,
			    sink.sunlen);
			break;
		default:
			return -1;
		}
	} while (n == -1 && errno == EINTR);
	/* A part of a line is not the line: it counts as dropped. */
	return n == (ssize_t)len ? 0 : -1;
}

/* The note for lines dropped before, then the line; or count it. */
static void
emit(int level, const char *msg)
{
	char line[LOG_LINE_MAX], note[96];
	struct log_record r;
	struct timespec ts;
	unsigned long lost;
	struct tm tm;
	size_t n;

	memset(&r, 0, sizeof(r));
	memset(&tm, 0, sizeof(tm));
	r.style = log_style;
	r.pid = getpid();
	r.tag = log_tag;
	r.tm = &tm;
	if (log_style != LOG_STYLE_JOURNAL) {
		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		r.msec = ts.tv_nsec / 1000000;
	}
	pthread_mutex_lock(&drops_mu);
	if ((lost = log_drops_pending(&drops, r.pid)) > 0) {
		log_drop_note(note, sizeof(note), lost);
		r.level = LOG_LVL_WARNING;
		r.msg = note;
		n = log_format(line, sizeof(line), &r);
		if (sink_put(line, n) == -1) {
			log_drops_add(&drops, r.pid);
			pthread_mutex_unlock(&drops_mu);
			return;
		}
		log_drops_clear(&drops);
	}
	r.level = level;
	r.msg = msg;
	n = log_format(line, sizeof(line), &r);
	if (sink_put(line, n) == -1)
		log_drops_add(&drops, r.pid);
	pthread_mutex_unlock(&drops_mu);
}

/* ---- the API ---- */

void
log_init(const char *tag, int level)
{
	int saved_errno = errno;

	snprintf(log_tag, sizeof(log_tag), "%s", tag);
	log_level = level;
	/* Read the zone now: a sandboxed worker cannot open its file. */
	tzset();
	sink_stderr();
	errno = saved_errno;
}

void
log_set_tag(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(log_tag, sizeof(log_tag), fmt, ap);
	va_end(ap);
}

/*
 * Unconnected, so that a restarted syslog daemon (a new socket at the same
 * path) is reached again without a new connect().
 */
int
log_to_syslog_at(const char *path)
{
	size_t len = strlen(path);
	int fd;

	sink_close();
	log_style = LOG_STYLE_SYSLOG;
	if (len >= sizeof(sink.sun.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	memset(&sink.sun, 0, sizeof(sink.sun));
	sink.sun.sun_family = AF_UNIX;
	memcpy(sink.sun.sun_path, path, len + 1);
	sink.sunlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
	    len + 1);
	sink.fd = fd;
	sink.own = 1;
	sink.kind = SINK_SYSLOG;
	return 0;
}

void
log_to_syslog(void)
{
	int saved_errno = errno;

	/* Without a socket every line is dropped: there is nowhere to say so. */
	(void)log_to_syslog_at(LOG_SYSLOG_PATH);
	errno = saved_errno;
}

void
log_set_level(int level)
{
	log_level = level;
}

int
log_get_level(void)
{
	return log_level;
}

int
log_level_parse(const char *name)
{
	int i;

	for (i = LOG_LVL_ERR; i <= LOG_LVL_DEBUG; i++)
		if (strcmp(name, level_names[i]) == 0)
			return i;
	return -1;
}

const char *
log_level_name(int level)
{
	if (level < LOG_LVL_ERR || level > LOG_LVL_DEBUG)
		return "?";
	return level_names[level];
}

void
log_vmsg(int level, const char *fmt, va_list ap)
{
	int saved_errno = errno;
	char msg[LOG_LINE_MAX];

	if (!log_wanted(level, log_level))
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	emit(level, msg);
	errno = saved_errno;
}

void
log_msg(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

static void log_errno(int, int, const char *, va_list)
    __attribute__((format(printf, 3, 0)));

static void
log_errno(int level, int err, const char *fmt, va_list ap)
{
	char buf[768];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	log_msg(level, "%s: %s", buf, strerror(err));
}

void
log_warn(const char *fmt, ...)
{
	int saved_errno = errno;
	va_list ap;

	va_start(ap, fmt);
	log_errno(LOG_LVL_WARNING, saved_errno, fmt, ap);
	va_end(ap);
	errno = saved_errno;
}

void
fatal(int code, const char *fmt, ...)
{
	int saved_errno = errno;
	va_list ap;

	va_start(ap, fmt);
	log_errno(LOG_LVL_ERR, saved_errno, fmt, ap);
	va_end(ap);
	exit(code);
}

void
fatalx(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LVL_ERR, fmt, ap);
	va_end(ap);
	exit(code);
}
