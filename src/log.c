/*
 * log: levelled logging to stderr, one line per event.
 *
 * Under journald (JOURNAL_STREAM matches our stderr) lines carry a "<N>"
 * priority prefix for the journal and no time stamp; elsewhere a local time
 * stamp; once detached (-d), lines go to syslog.  Each line names the
 * process ("master", "worker 2") and its pid.
 * Must never allocate or change errno: it runs on error paths.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static char log_tag[32] = "echod";
static int log_level = LOG_LVL_INFO;
static int log_journal; /* stderr is connected to the journal */
static int log_syslog;  /* detached (-d): stderr is /dev/null */

static const char *const level_names[] = {
	[LOG_LVL_ERR] = "err",
	[LOG_LVL_WARNING] = "warning",
	[LOG_LVL_NOTICE] = "notice",
	[LOG_LVL_INFO] = "info",
	[LOG_LVL_DEBUG] = "debug",
};

/* JOURNAL_STREAM is "DEV:INO" of the journal socket systemd gave us. */
static int
stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM"), *p;
	unsigned long long dev, ino;
	struct stat st;
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
	if (fstat(STDERR_FILENO, &st) == -1)
		return 0;
	return (unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino;
}

void
log_init(const char *tag, int level)
{
	snprintf(log_tag, sizeof(log_tag), "%s", tag);
	log_level = level;
	log_journal = stderr_is_journal();
}

void
log_set_tag(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(log_tag, sizeof(log_tag), fmt, ap);
	va_end(ap);
}

void
log_to_syslog(void)
{
	openlog("echod", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	log_syslog = 1;
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
	char line[1024], stamp[32];
	struct timespec ts;
	struct tm tm;
	int n;

	if (level > log_level)
		return;
	if (log_syslog) {
		n = snprintf(line, sizeof(line), "%s: ", log_tag);
		if (n < 0 || (size_t)n >= sizeof(line))
			n = 0;
		vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
		syslog(level, "%s", line);
		errno = saved_errno;
		return;
	}
	if (log_journal)
		n = snprintf(line, sizeof(line), "<%d>%s: ", level, log_tag);
	else {
		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
		n = snprintf(line, sizeof(line), "%s.%03ld echod[%d] %s: %s%s",
		    stamp, ts.tv_nsec / 1000000, (int)getpid(), log_tag,
		    level <= LOG_LVL_WARNING ? level_names[level] : "",
		    level <= LOG_LVL_WARNING ? ": " : "");
	}
	if (n < 0 || (size_t)n >= sizeof(line))
		n = 0;
	vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	n = (int)strlen(line);
	line[n++] = '\n';
	/* One write(2) per line, so lines of several processes never mix. */
	if (write(STDERR_FILENO, line, (size_t)n) == -1) {
		/* Nowhere left to report it. */
	}
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
