/*
 * log: levelled, one line per event, tagged with the process role.
 *
 * Writes to stderr, or once detached (-d) to syslog's /dev/log.  Under
 * journald (JOURNAL_STREAM names our stderr) each line carries a "<N>"
 * priority prefix and no time stamp; otherwise a local time stamp with its
 * UTC offset.  No log call ever blocks: a line the log cannot take whole at
 * once is dropped and counted, and a note with the count goes out before
 * the next line that can be written.  Never allocates, never changes errno.
 */
#ifndef ECHOD_LOG_H
#define ECHOD_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

enum log_level {
	LOG_LVL_ERR = 3,
	LOG_LVL_WARNING = 4,
	LOG_LVL_NOTICE = 5,
	LOG_LVL_INFO = 6,
	LOG_LVL_DEBUG = 7,
};

/* syslog's socket; log_to_syslog_at() exists for tests. */
#define LOG_SYSLOG_PATH "/dev/log"
/* The longest line written, its newline included; longer ones are cut. */
#define LOG_LINE_MAX 1024

/*
 * Takes stderr as the log, as it is now: call it once descriptors 0-2 are
 * safe.  A pipe, FIFO or terminal is reopened through /proc/self/fd/2 as a
 * private non-blocking descriptor (the one we share with our parent keeps
 * its flags); a socket gets MSG_DONTWAIT sends.
 */
void log_init(const char *tag, int level);
void log_set_tag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_set_level(int level);
/*
 * Detached: send every line to syslog (facility daemon) from now on.
 * Opens the socket here, so that workers forked later (and sandboxed)
 * never need socket() or connect().
 */
void log_to_syslog(void);
/* The same with another socket path; 0, or -1 with errno. */
int log_to_syslog_at(const char *path);
int log_get_level(void);
int log_level_parse(const char *name);
const char *log_level_name(int level);

void log_msg(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void log_vmsg(int level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

#define log_err(...) log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warnx(...) log_msg(LOG_LVL_WARNING, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_LVL_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...)                                                     \
	do {                                                               \
		if (log_get_level() >= LOG_LVL_DEBUG)                      \
			log_msg(LOG_LVL_DEBUG, __VA_ARGS__);               \
	} while (0)

/* Like log_warnx, with ": strerror(errno)" appended. */
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Log at err level (with or without errno) and exit with the given code. */
void fatal(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));
void fatalx(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

/* ---- the pure decisions, table-tested in tests/check_log.c ---- */

/* Is a line of this level wanted at the configured level? */
int log_wanted(int level, int configured);

/*
 * A warning a flood could repeat (a refusal, a bad PROXY header), said at
 * most once per every_ms: log_limit_due counts one event and returns how
 * many to report when a line is due now (then the count starts again), 0
 * when it is not.  Pure; the caller serialises calls on one limit.
 */
struct log_limit {
	uint64_t last_ms; /* 0: never said */
	uint64_t n;       /* events since the last line */
};
uint64_t log_limit_due(struct log_limit *l, uint64_t now_ms,
    uint64_t every_ms);

/*
 * "2026-12-06 10:44:27.123+01:00": tm as localtime_r filled it (its
 * tm_gmtoff is the offset), msec 0..999.  Returns the length (at most
 * len - 1; the text is cut to fit), 0 if len is 0.
 */
size_t log_stamp(char *buf, size_t len, const struct tm *tm, long msec);

enum log_style {
	LOG_STYLE_PLAIN,   /* "STAMP echod[PID] TAG: [LEVEL: ]MSG\n" */
	LOG_STYLE_JOURNAL, /* "<LEVEL>TAG: MSG\n" */
	LOG_STYLE_SYSLOG,  /* "<PRI>Mmm dd hh:mm:ss echod[PID]: TAG: MSG" */
};

struct log_record {
	enum log_style style;
	int level;
	pid_t pid;
	const char *tag;
	const char *msg;
	const struct tm *tm; /* local time; unused by the journal style */
	long msec;
};

/*
 * One record as the line to write, cut to fit in len (at most
 * LOG_LINE_MAX is ever needed); plain and journal lines always end in a
 * newline.  Returns its length, 0 if len is too small for anything.
 */
size_t log_format(char *buf, size_t len, const struct log_record *r);

/*
 * Lines dropped by this process.  After fork() a child must not report its
 * parent's count: the count belongs to the pid that made it.
 */
struct log_drops {
	pid_t pid;
	unsigned long n;
};

/* Count one line that could not be written by pid. */
void log_drops_add(struct log_drops *d, pid_t pid);
/* Lines pid has dropped since its last note (another pid's count is 0). */
unsigned long log_drops_pending(const struct log_drops *d, pid_t pid);
/* The note went out: start counting afresh. */
void log_drops_clear(struct log_drops *d);
/* "N log line(s) dropped: the log could not take them"; its length. */
size_t log_drop_note(char *buf, size_t len, unsigned long n);

#endif
