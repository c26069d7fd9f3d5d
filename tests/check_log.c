/*
 * check_log: the log's pure decisions as tables (which levels are wanted,
 * time stamps with their UTC offset, records in each style, the dropped
 * count and its note), then the log itself over a pipe, a socket and a
 * syslog datagram socket whose readers never read: no call may block, and
 * what was dropped is counted exactly and noted before the next line.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pty.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "harness.h"
#include "suites.h"

/* ---- pure: levels ---- */

struct wanted_case {
	int level, configured, want;
};

static const struct wanted_case wanted[] = {
	{ LOG_LVL_ERR, LOG_LVL_ERR, 1 },
	{ LOG_LVL_WARNING, LOG_LVL_ERR, 0 },
	{ LOG_LVL_INFO, LOG_LVL_INFO, 1 },
	{ LOG_LVL_NOTICE, LOG_LVL_INFO, 1 },
	{ LOG_LVL_DEBUG, LOG_LVL_INFO, 0 },
	{ LOG_LVL_DEBUG, LOG_LVL_DEBUG, 1 },
	{ LOG_LVL_ERR, LOG_LVL_DEBUG, 1 },
	{ LOG_LVL_NOTICE, LOG_LVL_WARNING, 0 },
};

START_TEST(test_wanted)
{
	const struct wanted_case *c = &wanted[_i];

	ck_assert_msg(log_wanted(c->level, c->configured) == c->want,
	    "level %d at %d: got %d, want %d", c->level, c->configured,
	    log_wanted(c->level, c->configured), c->want);
}
END_TEST

/* ---- pure: time stamps ---- */

static struct tm
mktm(int y, int mo, int d, int h, int mi, int s, long gmtoff)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = s;
	tm.tm_gmtoff = gmtoff;
	return tm;
}

struct stamp_case {
	const char *name;
	int y, mo, d, h, mi, s;
	long gmtoff, msec;
	size_t len;
	const char *want;
};

static const struct stamp_case stamps[] = {
	{ "central Europe, winter", 2026, 12, 6, 10, 44, 27, 3600, 123, 64,
	    "2026-12-06 10:44:27.123+01:00" },
	{ "UTC", 2026, 1, 1, 0, 0, 0, 0, 0, 64,
	    "2026-01-01 00:00:00.000+00:00" },
	{ "negative half hour", 2026, 7, 9, 23, 59, 59, -9000, 999, 64,
	    "2026-07-09 23:59:59.999-02:30" },
	{ "Newfoundland", 2026, 12, 6, 7, 14, 27, -12600, 5, 64,
	    "2026-12-06 07:14:27.005-03:30" },
	{ "Nepal", 2026, 3, 29, 2, 30, 0, 20700, 50, 64,
	    "2026-03-29 02:30:00.050+05:45" },
	{ "Kiribati", 2026, 6, 30, 12, 0, 0, 50400, 1, 64,
	    "2026-06-30 12:00:00.001+14:00" },
	{ "leap second", 2016, 12, 31, 23, 59, 60, 0, 500, 64,
	    "2016-12-31 23:59:60.500+00:00" },
	{ "seconds in the offset are cut", 1890, 1, 1, 12, 0, 0, 561, 0,
	    64, "1890-01-01 12:00:00.000+00:09" },
	{ "msec out of range", 2026, 12, 6, 10, 44, 27, 3600, 1000, 64,
	    "2026-12-06 10:44:27.000+01:00" },
	{ "cut to fit", 2026, 12, 6, 10, 44, 27, 3600, 123, 11,
	    "2026-12-06" },
	{ "exactly fits", 2026, 12, 6, 10, 44, 27, 3600, 123, 30,
	    "2026-12-06 10:44:27.123+01:00" },
	{ "one short", 2026, 12, 6, 10, 44, 27, 3600, 123, 29,
	    "2026-12-06 10:44:27.123+01:0" },
	{ "room for nothing", 2026, 12, 6, 10, 44, 27, 3600, 123, 1, "" },
};

START_TEST(test_stamp)
{
	const struct stamp_case *c = &stamps[_i];
	struct tm tm = mktm(c->y, c->mo, c->d, c->h, c->mi, c->s, c->gmtoff);
	char buf[64];
	size_t n;

	memset(buf, 'x', sizeof(buf));
	n = log_stamp(buf, c->len, &tm, c->msec);
	ck_assert_msg(strcmp(buf, c->want) == 0 && n == strlen(c->want),
	    "%s: got '%s' (%zu), want '%s'", c->name, buf, n, c->want);
}
END_TEST

START_TEST(test_stamp_zero_len)
{
	struct tm tm = mktm(2026, 12, 6, 10, 44, 27, 3600);
	char buf[4] = "abc";

	ck_assert_uint_eq(log_stamp(buf, 0, &tm, 0), 0);
	ck_assert_str_eq(buf, "abc");
}
END_TEST

/* The real clock: what localtime_r says, in the stamp's shape. */
START_TEST(test_stamp_localtime)
{
	const char *zones[] = { "UTC0", "CET-1CEST,M3.5.0,M10.5.0/3",
		"NST3:30NDT,M3.2.0,M11.1.0", "<+0545>-5:45" };
	const char *want[] = { "+00:00", "+01:00", "-03:30", "+05:45" };
	time_t t = 1796553867; /* 2026-12-06 10:44:27 UTC */
	char buf[64];
	struct tm tm;
	size_t i;

	for (i = 0; i < sizeof(zones) / sizeof(zones[0]); i++) {
		setenv("TZ", zones[i], 1);
		tzset();
		localtime_r(&t, &tm);
		log_stamp(buf, sizeof(buf), &tm, 7);
		ck_assert_msg(strlen(buf) == 29 &&
		    strcmp(buf + 23, want[i]) == 0 &&
		    strncmp(buf + 19, ".007", 4) == 0,
		    "TZ=%s: '%s', want the offset %s", zones[i], buf, want[i]);
	}
}
END_TEST

/* ---- pure: records ---- */

struct format_case {
	const char *name;
	enum log_style style;
	int level;
	const char *msg;
	const char *want;
};

/* 2026-12-06 10:44:27.123 at +01:00, pid 4242, tag "worker 3". */
static const struct format_case formats[] = {
	{ "plain err", LOG_STYLE_PLAIN, LOG_LVL_ERR, "boom",
	    "2026-12-06 10:44:27.123+01:00 echod[4242] worker 3: err: boom\n" },
	{ "plain warning", LOG_STYLE_PLAIN, LOG_LVL_WARNING, "hm",
	    "2026-12-06 10:44:27.123+01:00 echod[4242] worker 3: warning: "
	    "hm\n" },
	{ "plain notice", LOG_STYLE_PLAIN, LOG_LVL_NOTICE, "starting",
	    "2026-12-06 10:44:27.123+01:00 echod[4242] worker 3: "
	    "starting\n" },
	{ "plain debug", LOG_STYLE_PLAIN, LOG_LVL_DEBUG, "x",
	    "2026-12-06 10:44:27.123+01:00 echod[4242] worker 3: x\n" },
	{ "plain, level below err clamped", LOG_STYLE_PLAIN, 0, "x",
	    "2026-12-06 10:44:27.123+01:00 echod[4242] worker 3: err: x\n" },
	{ "newlines cannot forge a line", LOG_STYLE_PLAIN, LOG_LVL_INFO,
	    "a\nb\r\nc",
	    "2026-12-06 10:44:27.123+01:00 echod[4242] worker 3: a b  c\n" },
	{ "empty message", LOG_STYLE_PLAIN, LOG_LVL_INFO, "",
	    "2026-12-06 10:44:27.123+01:00 echod[4242] worker 3: \n" },
	{ "journal err", LOG_STYLE_JOURNAL, LOG_LVL_ERR, "boom",
	    "<3>worker 3: boom\n" },
	{ "journal debug", LOG_STYLE_JOURNAL, LOG_LVL_DEBUG, "x",
	    "<7>worker 3: x\n" },
	{ "journal, level above debug clamped", LOG_STYLE_JOURNAL, 9, "x",
	    "<7>worker 3: x\n" },
	{ "syslog warning", LOG_STYLE_SYSLOG, LOG_LVL_WARNING, "hm",
	    "<28>Dec  6 10:44:27 echod[4242]: worker 3: hm" },
	{ "syslog info", LOG_STYLE_SYSLOG, LOG_LVL_INFO, "a\nb",
	    "<30>Dec  6 10:44:27 echod[4242]: worker 3: a b" },
};

static struct log_record
record(enum log_style style, int level, const char *msg, struct tm *tm)
{
	struct log_record r;

	*tm = mktm(2026, 12, 6, 10, 44, 27, 3600);
	memset(&r, 0, sizeof(r));
	r.style = style;
	r.level = level;
	r.pid = 4242;
	r.tag = "worker 3";
	r.msg = msg;
	r.tm = tm;
	r.msec = 123;
	return r;
}

START_TEST(test_format)
{
	const struct format_case *c = &formats[_i];
	char buf[LOG_LINE_MAX];
	struct log_record r;
	struct tm tm;
	size_t n;

	r = record(c->style, c->level, c->msg, &tm);
	n = log_format(buf, sizeof(buf), &r);
	ck_assert_msg(strcmp(buf, c->want) == 0 && n == strlen(c->want),
	    "%s: got '%s' (%zu), want '%s'", c->name, buf, n, c->want);
}
END_TEST

/* Long messages are cut; plain and journal lines still end in '\n'. */
struct cut_case {
	enum log_style style;
	size_t buflen, want_len;
	int newline;
};

static const struct cut_case cuts[] = {
	{ LOG_STYLE_PLAIN, LOG_LINE_MAX, LOG_LINE_MAX - 1, 1 },
	{ LOG_STYLE_PLAIN, 4 * LOG_LINE_MAX, LOG_LINE_MAX - 1, 1 },
	{ LOG_STYLE_JOURNAL, LOG_LINE_MAX, LOG_LINE_MAX - 1, 1 },
	{ LOG_STYLE_SYSLOG, LOG_LINE_MAX, LOG_LINE_MAX - 1, 0 },
	{ LOG_STYLE_PLAIN, 40, 39, 1 },  /* inside the head */
	{ LOG_STYLE_JOURNAL, 2, 1, 1 },  /* just the newline */
	{ LOG_STYLE_PLAIN, 1, 0, 0 },    /* room for nothing */
};

START_TEST(test_format_cut)
{
	const struct cut_case *c = &cuts[_i];
	static char msg[3000], buf[4 * LOG_LINE_MAX];
	struct log_record r;
	struct tm tm;
	size_t n;

	memset(msg, 'm', sizeof(msg) - 1);
	memset(buf, 'x', sizeof(buf));
	r = record(c->style, LOG_LVL_INFO, msg, &tm);
	n = log_format(buf, c->buflen, &r);
	ck_assert_uint_eq(n, c->want_len);
	ck_assert_uint_eq(strlen(buf), n);
	if (c->newline)
		ck_assert_msg(n > 0 && buf[n - 1] == '\n' &&
		    strchr(buf, '\n') == buf + n - 1, "case %d: '%s'", _i, buf);
	else
		ck_assert_ptr_null(strchr(buf, '\n'));
}
END_TEST

/* ---- pure: the dropped count and its note ---- */

START_TEST(test_drops)
{
	struct log_drops d = { 0, 0 };
	int i;

	ck_assert_uint_eq(log_drops_pending(&d, 10), 0);
	for (i = 0; i < 3; i++)
		log_drops_add(&d, 10);
	ck_assert_uint_eq(log_drops_pending(&d, 10), 3);
	/* A forked child does not report its parent's count... */
	ck_assert_uint_eq(log_drops_pending(&d, 11), 0);
	/* ...and starts its own. */
	log_drops_add(&d, 11);
	ck_assert_uint_eq(log_drops_pending(&d, 11), 1);
	ck_assert_uint_eq(log_drops_pending(&d, 10), 0);
	log_drops_add(&d, 11);
	ck_assert_uint_eq(log_drops_pending(&d, 11), 2);
	log_drops_clear(&d);
	ck_assert_uint_eq(log_drops_pending(&d, 11), 0);
	log_drops_add(&d, 11);
	ck_assert_uint_eq(log_drops_pending(&d, 11), 1);
	/* The count saturates rather than wrap to "nothing dropped". */
	d.n = ULONG_MAX - 1;
	log_drops_add(&d, 11);
	log_drops_add(&d, 11);
	ck_assert_uint_eq(log_drops_pending(&d, 11), ULONG_MAX);
}
END_TEST

struct note_case {
	unsigned long n;
	size_t len;
	const char *want;
};

static const struct note_case notes[] = {
	{ 1, 96, "1 log line(s) dropped: the log could not take them" },
	{ 12, 96, "12 log line(s) dropped: the log could not take them" },
	{ 4294967295UL, 96,
	    "4294967295 log line(s) dropped: the log could not take them" },
	{ 12, 22, "12 log line(s) droppe" },
	{ 12, 1, "" },
};

START_TEST(test_note)
{
	const struct note_case *c = &notes[_i];
	char buf[96];
	size_t n;

	n = log_drop_note(buf, c->len, c->n);
	ck_assert_str_eq(buf, c->want);
	ck_assert_uint_eq(n, strlen(c->want));
}
END_TEST

/* ---- the log over a reader that never reads ---- */

#define FLOOD 3000 /* lines; far more than any pipe or queue holds */
#define NOTE_TAIL " log line(s) dropped: the log could not take them"

/*
 * Read whatever is waiting on fd (non-blocking) into buf, until nothing
 * more comes for 50 ms: a pty's master gets the slave's bytes from a
 * kernel worker, a little after they were written.  Its length.
 */
static size_t
slurp(int fd, char *buf, size_t len)
{
	struct pollfd pfd = { fd, POLLIN, 0 };
	size_t got = 0;
	ssize_t n;
	int round;

	for (round = 0; round < 400 && got + 1 < len; round++) {
		while (got + 1 < len &&
		    ((n = recv(fd, buf + got, len - 1 - got,
		    MSG_DONTWAIT)) > 0 ||
		    (n = read(fd, buf + got, len - 1 - got)) > 0))
			got += (size_t)n;
		if (poll(&pfd, 1, 50) <= 0 || !(pfd.revents & POLLIN))
			break;
	}
	buf[got] = '\0';
	return got;
}

static int
count_lines(const char *buf, const char *needle)
{
	const char *p, *nl;
	int n = 0;

	for (p = buf; (nl = strchr(p, '\n')) != NULL; p = nl + 1)
		if (needle == NULL || memmem(p, (size_t)(nl - p), needle,
		    strlen(needle)) != NULL)
			n++;
	return n;
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* FLOOD lines into a log nobody reads: all return, fast; returns ms. */
static long long
flood(void)
{
	long long t0 = now_ms();
	int i;

	for (i = 0; i < FLOOD; i++)
		log_info("line %d of the flood, padded to take some room in "
		    "the pipe: .............................................",
		    i);
	return now_ms() - t0;
}

/*
 * stderr is rd_wr[1] (a pipe's or a stream socket's writing end, a
 * terminal); nothing reads rd_wr[0] while FLOOD lines are logged.  Every
 * line returns at once; after the drain the note, "HEAD N log line(s)
 * dropped...", comes before the next line, and N counts exactly the lines
 * that did not arrive (a terminal may take part of a line: that line
 * arrives cut and counts as dropped too).  The shared descriptor 2 never
 * became non-blocking.  Closes rd_wr.
 */
static void
check_stalled_stderr(int rd_wr[2], const char *head, int tty)
{
	static char buf[1 << 20];
	int saved = dup(STDERR_FILENO), lines, flags;
	unsigned long noted, lost;
	long long ms;
	char *p;

	ck_assert_int_ne(saved, -1);
	ck_assert_int_ne(fcntl(rd_wr[0], F_SETFL, O_NONBLOCK), -1);
	ck_assert_int_ne(dup2(rd_wr[1], STDERR_FILENO), -1);
	log_init("test", LOG_LVL_INFO);
	ms = flood();
	flags = fcntl(STDERR_FILENO, F_GETFL);
	slurp(rd_wr[0], buf, sizeof(buf));
	lines = count_lines(buf, "of the flood");
	log_info("after the drain");
	slurp(rd_wr[0], buf, sizeof(buf));
	dup2(saved, STDERR_FILENO);
	close(saved);
	ck_assert_msg(ms < 2000, "%d lines took %lld ms", FLOOD, ms);
	ck_assert_msg(!(flags & O_NONBLOCK), "stderr itself became "
	    "non-blocking");
	ck_assert_msg(lines > 0 && lines < FLOOD, "%d of %d lines arrived",
	    lines, FLOOD);
	ck_assert_msg(strncmp(buf, head, strlen(head)) == 0 || ((p =
	    strstr(buf, head)) != NULL && p[-1] == ' '), "no note: '%s'", buf);
	p = strstr(buf, head) + strlen(head);
	noted = strtoul(p, &p, 10);
	ck_assert_msg(strncmp(p, NOTE_TAIL, strlen(NOTE_TAIL)) == 0,
	    "the note: '%s'", buf);
	lost = (unsigned long)(FLOOD - lines);
	/*
	 * A terminal's buffers are the kernel's business: lines it took may
	 * still never reach the reader under load, so there the note can
	 * only be at most what was lost (plus a line it took in part).
	 */
	ck_assert_msg(noted == lost || (tty && noted > 0 &&
	    noted <= lost + 1), "noted %lu dropped, %lu were", noted, lost);
	ck_assert_msg(count_lines(buf, NULL) == 2 &&
	    strstr(strchr(buf, '\n'), "test: after the drain") != NULL,
	    "after the drain: '%s'", buf);
	close(rd_wr[0]);
	close(rd_wr[1]);
}

START_TEST(test_stalled_pipe)
{
	int fds[2];

	ck_assert_int_ne(pipe2(fds, O_CLOEXEC), -1);
	check_stalled_stderr(fds, "test: warning: ", 0);
}
END_TEST

/* Is one of our descriptors an epoll set? */
static int
have_epoll_fd(void)
{
	char path[64], link[64];
	ssize_t n;
	int fd;

	for (fd = 0; fd < 64; fd++) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		if ((n = readlink(path, link, sizeof(link) - 1)) > 0) {
			link[n] = '\0';
			if (strcmp(link, "anon_inode:[eventpoll]") == 0)
				return 1;
		}
	}
	return 0;
}

/*
 * A pipe we may not open again (another user's, mode 0600; here mode 0,
 * and not root): the log checks for room with epoll before each write.
 */
START_TEST(test_stalled_pipe_not_ours)
{
	int fds[2];

	ck_assert_int_ne(pipe2(fds, O_CLOEXEC), -1);
	ck_assert_int_ne(fchmod(fds[1], 0), -1);
	if (geteuid() == 0)
		ck_assert_int_ne(setresuid(65534, 65534, 65534), -1);
	check_stalled_stderr(fds, "test: warning: ", 0);
	ck_assert_msg(have_epoll_fd(), "the pipe was reopened after all");
}
END_TEST

START_TEST(test_stalled_socket)
{
	int fds[2];

	ck_assert_int_ne(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
	    fds), -1);
	check_stalled_stderr(fds, "test: warning: ", 0);
}
END_TEST

/* Under systemd: the journal's stream socket, with "<N>" prefixes. */
START_TEST(test_stalled_journal)
{
	char js[64];
	struct stat st;
	int fds[2];

	ck_assert_int_ne(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
	    fds), -1);
	ck_assert_int_ne(fstat(fds[1], &st), -1);
	snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev,
	    (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", js, 1);
	check_stalled_stderr(fds, "<4>test: ", 0);
}
END_TEST

/* A terminal whose output is not read (a stopped terminal, ^S). */
START_TEST(test_stalled_tty)
{
	int fds[2];

	ck_assert_int_ne(openpty(&fds[0], &fds[1], NULL, NULL, NULL), -1);
	check_stalled_stderr(fds, "test: warning: ", 1);
}
END_TEST

/* A syslog daemon's socket at path; -1 on failure. */
static int
fake_syslog(const char *path)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	unlink(path);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd == -1 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1)
		return -1;
	return fd;
}

/* Datagrams waiting on fd, each with a '\n' appended. */
static int
recv_all(int fd, char *buf, size_t len)
{
	size_t got = 0;
	ssize_t n;
	int k = 0;

	while (got + 2 < len &&
	    (n = recv(fd, buf + got, len - 2 - got, MSG_DONTWAIT)) >= 0) {
		got += (size_t)n;
		buf[got++] = '\n';
		k++;
	}
	buf[got] = '\0';
	return k;
}

/* -d: /dev/log's reader never reads, then restarts at the same path. */
START_TEST(test_stalled_syslog)
{
	static char buf[1 << 20];
	char dir[] = "/tmp/echod-log.XXXXXX", path[64], want[128];
	int fd, got, rc;
	long long ms;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/log", dir);
	fd = fake_syslog(path);
	ck_assert_int_ne(fd, -1);
	log_init("test", LOG_LVL_INFO);
	rc = log_to_syslog_at(path);
	ms = flood();
	got = recv_all(fd, buf, sizeof(buf));
	log_warnx("after the drain");
	recv_all(fd, buf, sizeof(buf));
	/* "<28>Mmm dd hh:mm:ss": the stamp itself is log_format's test. */
	snprintf(want, sizeof(want), " echod[%d]: test: %d log line(s) "
	    "dropped: the log could not take them\n<28>", (int)getpid(),
	    FLOOD - got);
	/* A restarted syslog daemon is reached without a new connect(). */
	close(fd);
	fd = fake_syslog(path);
	log_info("after the restart");
	recv_all(fd, buf + strlen(buf), sizeof(buf) - strlen(buf));
	close(fd);
	unlink(path);
	rmdir(dir);
	ck_assert_int_eq(rc, 0);
	ck_assert_msg(ms < 2000, "%d lines took %lld ms", FLOOD, ms);
	ck_assert_msg(got > 0 && got < FLOOD, "%d of %d lines arrived", got,
	    FLOOD);
	ck_assert_msg(strncmp(buf, "<28>", 4) == 0 && strlen(buf) > 19 &&
	    strncmp(buf + 19, want, strlen(want)) == 0,
	    "got '%s', want '%s'", buf, want);
	ck_assert_msg(strstr(buf, "test: after the drain\n<30>") != NULL &&
	    strstr(buf, "]: test: after the restart\n") != NULL, "'%s'", buf);
}
END_TEST

START_TEST(test_syslog_path_too_long)
{
	char path[200];

	memset(path, 'a', sizeof(path) - 1);
	path[sizeof(path) - 1] = '\0';
	errno = 0;
	ck_assert_int_eq(log_to_syslog_at(path), -1);
	ck_assert_int_eq(errno, ENAMETOOLONG);
	/* Nowhere to write: dropped, never a crash or a block. */
	log_info("nowhere");
}
END_TEST

/* errno survives a log call, written or dropped. */
START_TEST(test_errno_kept)
{
	int fds[2], saved = dup(STDERR_FILENO);

	ck_assert_int_ne(pipe2(fds, O_CLOEXEC), -1);
	dup2(fds[1], STDERR_FILENO);
	log_init("test", LOG_LVL_INFO);
	flood();
	errno = EMFILE;
	log_info("dropped");
	ck_assert_int_eq(errno, EMFILE);
	log_warn("with errno");
	ck_assert_int_eq(errno, EMFILE);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(fds[0]);
	close(fds[1]);
}
END_TEST

Suite *
log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc = h_case(s, "pure", 0, H_TESTS(test_stamp_zero_len,
	    test_stamp_localtime, test_drops));

	tcase_add_loop_test(tc, test_wanted, 0, H_NELEM(wanted));
	tcase_add_loop_test(tc, test_stamp, 0, H_NELEM(stamps));
	tcase_add_loop_test(tc, test_format, 0, H_NELEM(formats));
	tcase_add_loop_test(tc, test_format_cut, 0, H_NELEM(cuts));
	tcase_add_loop_test(tc, test_note, 0, H_NELEM(notes));
	h_case(s, "stalled", 20, H_TESTS(test_stalled_pipe,
	    test_stalled_pipe_not_ours, test_stalled_socket,
	    test_stalled_journal, test_stalled_tty, test_stalled_syslog,
	    test_syslog_path_too_long, test_errno_kept));
	return s;
}
