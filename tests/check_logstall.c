/*
 * check_logstall: echod -v with stderr a FIFO whose reader never reads
 * (a full disk under svlogd, a hung journald, a stopped `| logger`).
 *
 * No log call may block a loop: with the FIFO full, every client is still
 * echoed, a killed worker is replaced, SIGTERM ends echod at once, and
 * once the reader reads again each process that dropped lines says how
 * many before its next line.  The test holds the FIFO's only reader and
 * shrinks its buffer to one page, so a few dozen connections' debug
 * lines fill it.
 *
 * The harness gives the daemon a log file as stderr; to give it the FIFO
 * instead, the test runs echod through /bin/sh (ECHOD_BIN), which opens
 * the FIFO as descriptor 2 and execs the real binary: same pid, same
 * NOTIFY_SOCKET, nothing else in between.
 *
 * With -d the log is /dev/log, a fixed path: as root, the test gives
 * itself a private mount namespace and a /dev of its own holding null,
 * zero, random, urandom and a /dev/log datagram socket that never reads.
 * Elsewhere (not root, no namespaces) that case says it is skipped.
 */
#include <check.h>
#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clients.h"
#include "harness.h"
#include "suites.h"

#define START_MS 10000
#define CLIENTS 300
#define ECHO_MS 3000 /* the old code: the 20th or so client never is */
#define NOTE " log line(s) dropped: the log could not take them"
#define LOG_DEV "/dev/log"

struct stall {
	char dir[64], fifo[96];
	int rd;
};

static const char stall_script[] =
    "exec 2>\"$LOGSTALL_FIFO\" && exec \"$LOGSTALL_ECHOD\" -v -w 2 "
    "-l 127.0.0.1:0";

/*
 * The FIFO, its reader (ours, never read until we say), and echod
 * writing its log into it.  0, or -1 with t's message set.
 */
static int
stall_start(struct tres *t, struct stall *s, struct echod_proc *p)
{
	const char *args[] = { "-c", stall_script, NULL };
	char env_fifo[128], env_bin[256], *old;
	const char *envs[] = { env_fifo, env_bin, NULL };
	const char *colon;
	int rc;

	snprintf(s->dir, sizeof(s->dir), "/tmp/echod-logstall.XXXXXX");
	if (mkdtemp(s->dir) == NULL || chmod(s->dir, 0755) == -1) {
		cl_fail(t, __LINE__, "mkdtemp: %s", strerror(errno));
		return -1;
	}
	snprintf(s->fifo, sizeof(s->fifo), "%s/fifo", s->dir);
	if (mkfifo(s->fifo, 0600) == -1 || (s->rd = open(s->fifo,
	    O_RDONLY | O_NONBLOCK | O_CLOEXEC)) == -1) {
		cl_fail(t, __LINE__, "fifo: %s", strerror(errno));
		return -1;
	}
	/* One page: a few dozen connections fill it, not six hundred. */
	(void)fcntl(s->rd, F_SETPIPE_SZ, 4096);
	snprintf(env_fifo, sizeof(env_fifo), "LOGSTALL_FIFO=%s", s->fifo);
	snprintf(env_bin, sizeof(env_bin), "LOGSTALL_ECHOD=%s", h_echod_bin());
	old = getenv("ECHOD_BIN") ? strdup(getenv("ECHOD_BIN")) : NULL;
	setenv("ECHOD_BIN", "/bin/sh", 1);
	rc = h_spawn_ex(p, NULL, args, envs, NULL, 0);
	if (old != NULL)
		setenv("ECHOD_BIN", old, 1);
	else
		unsetenv("ECHOD_BIN");
	free(old);
	if (rc == -1 || h_wait_notify(p, "READY=1", START_MS, p->ready,
	    sizeof(p->ready)) == -1 ||
	    (colon = strstr(p->ready, "listening on 127.0.0.1:")) == NULL) {
		cl_fail(t, __LINE__, "echod did not start: '%s'", p->ready);
		return -1;
	}
	p->port = atoi(colon + strlen("listening on 127.0.0.1:"));
	return 0;
}

static void
stall_cleanup(struct stall *s)
{
	if (s->rd != -1)
		close(s->rd);
	s->rd = -1;
	if (s->fifo[0] != '\0')
		unlink(s->fifo);
	if (s->dir[0] != '\0')
		rmdir(s->dir);
}

/* Bytes waiting in the FIFO. */
static int
fifo_queued(const struct stall *s)
{
	int n = 0;

	return ioctl(s->rd, FIONREAD, &n) == -1 ? -1 : n;
}

/* Clients first .. first + n - 1, one after the other; each echoed. */
static int
clients(struct tres *t, struct echod_proc *p, int first, int n)
{
	char msg[64];
	int i, fd, ok;

	for (i = first; i < first + n; i++) {
		snprintf(msg, sizeof(msg), "client %d\n", i);
		if ((fd = h_connect(p->port, 0)) == -1) {
			cl_fail(t, __LINE__, "client %d: connect: %s", i,
			    strerror(errno));
			return -1;
		}
		ok = cl_echo(fd, msg, ECHO_MS);
		close(fd);
		cl_notify_drain(p);
		if (!ok) {
			cl_fail(t, __LINE__, "client %d of %d not echoed "
			    "within %d ms, the log's reader never reading",
			    i + 1, first + n, ECHO_MS);
			return -1;
		}
	}
	return 0;
}

/* Kill master's worker slot; 0 once another process holds the slot. */
static int
replace_worker(struct tres *t, struct echod_proc *p, pid_t master,
    unsigned slot)
{
	pid_t w = h_worker_pid(master, slot), nw;

	if (w <= 0 || kill(w, SIGKILL) == -1) {
		cl_fail(t, __LINE__, "no worker %u to kill", slot);
		return -1;
	}
	nw = h_wait_worker(master, slot, w, 5000);
	cl_notify_drain(p);
	if (nw <= 0) {
		cl_fail(t, __LINE__, "worker %u (pid %d) killed, not replaced "
		    "within 5 s", slot, (int)w);
		return -1;
	}
	return 0;
}

/*
 * A full FIFO: every client echoed, a killed worker replaced, SIGTERM
 * obeyed at once (the old code: about 20 clients, then nothing).
 */
START_TEST(stalled_fifo)
{
	struct stall s = { "", "", -1 };
	struct echod_proc p;
	struct tres t = { 0, "" };
	long long t0, ms = -1;
	int st, full;

	cl_proc_init(&p);
	REQUIRE(&t, stall_start(&t, &s, &p) == 0, "%s", t.msg);
	REQUIRE(&t, clients(&t, &p, 0, CLIENTS) == 0, "%s", t.msg);
	/* Else the test proves nothing. */
	full = fifo_queued(&s);
	REQUIRE(&t, full >= 3072, "after %d clients the FIFO holds only %d "
	    "bytes", CLIENTS, full);
	REQUIRE(&t, replace_worker(&t, &p, p.pid, 0) == 0, "%s", t.msg);
	REQUIRE(&t, clients(&t, &p, CLIENTS, 20) == 0, "%s", t.msg);
	t0 = h_now_ms();
	REQUIRE(&t, kill(p.pid, SIGTERM) == 0, "SIGTERM: %s", strerror(errno));
	st = h_wait_exit(&p, 5000);
	ms = h_now_ms() - t0;
	REQUIRE(&t, st != -1, "still running 5 s after SIGTERM, the FIFO "
	    "full (%d bytes)", fifo_queued(&s));
	REQUIRE(&t, WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status "
	    "0x%x after SIGTERM", st);
	printf("logstall: FIFO full (%d bytes): %d clients echoed, worker "
	    "replaced, SIGTERM to exit %lld ms\n", full, CLIENTS + 20, ms);
out:
	h_cleanup(&p);
	stall_cleanup(&s);
	ck_assert_msg(!t.failed, "%s", t.msg);
}
END_TEST

/* Append what the FIFO holds now to buf (have bytes); the new length. */
static size_t
fifo_read(const struct stall *s, char *buf, size_t len, size_t have)
{
	ssize_t n;

	while (have + 1 < len &&
	    (n = read(s->rd, buf + have, len - 1 - have)) > 0)
		have += (size_t)n;
	buf[have] = '\0';
	return have;
}

/*
 * Every line whole: "YYYY-MM-DD hh:mm:ss.mmm+hh:mm echod[PID] TAG: ...\n".
 * Returns the number of lines, or -(line number) of the first bad one.
 */
static int
lines_whole(const char *buf)
{
	const char *l, *nl;
	int n = 0;

	for (l = buf; *l != '\0'; l = nl + 1) {
		n++;
		if ((nl = strchr(l, '\n')) == NULL || nl - l < 42 ||
		    l[4] != '-' || l[10] != ' ' || l[19] != '.' ||
		    (l[23] != '+' && l[23] != '-') || l[26] != ':' ||
		    strncmp(l + 29, " echod[", 7) != 0)
			return -n;
	}
	return n;
}

/* Is there a note from a process whose tag starts with who? */
static int
note_from(const char *buf, const char *who)
{
	const char *l, *nl, *tag;

	for (l = buf; (nl = strchr(l, '\n')) != NULL; l = nl + 1) {
		if ((tag = strstr(l, "] ")) == NULL || tag > nl)
			continue;
		tag += 2;
		if (strncmp(tag, who, strlen(who)) == 0 &&
		    memmem(tag, (size_t)(nl - tag), NOTE, strlen(NOTE)) != NULL)
			return 1;
	}
	return 0;
}

/*
 * Once the reader reads again, the note comes before the next line: the
 * master's (its lines about a killed worker went nowhere) after SIGUSR1,
 * and that of the worker that served while the FIFO was full after more
 * clients.  No line is ever cut.
 */
START_TEST(dropped_note)
{
	static char buf[1 << 20];
	struct stall s = { "", "", -1 };
	struct echod_proc p;
	struct tres t = { 0, "" };
	char who[32];
	long long deadline;
	size_t have;
	int a = -1, x = -1, whole;

	cl_proc_init(&p);
	REQUIRE(&t, stall_start(&t, &s, &p) == 0, "%s", t.msg);
	REQUIRE(&t, clients(&t, &p, 0, 100) == 0, "%s", t.msg);
	REQUIRE(&t, fifo_queued(&s) >= 3072, "the FIFO did not fill");
	/*
	 * Worker x is the one the kernel wakes first: it served most of
	 * the 100 and will serve the next ones.  The other one is killed.
	 */
	REQUIRE(&t, (a = h_connect(p.port, 0)) != -1 &&
	    cl_echo(a, "held\n", ECHO_MS), "held client not echoed");
	REQUIRE(&t, cl_owner(p.pid, 2, p.port, a, &x) > 0 && x >= 0 && x < 2,
	    "no worker holds the held client");
	REQUIRE(&t, replace_worker(&t, &p, p.pid, (unsigned)(1 - x)) == 0, "%s",
	    t.msg);
	fifo_read(&s, buf, sizeof(buf), 0);
	whole = lines_whole(buf);
	REQUIRE(&t, whole > 0, "while full: line %d is cut or malformed: "
	    "'%s'", -whole, buf);
	REQUIRE(&t, strstr(buf, NOTE) == NULL, "a note while nobody "
	    "read: '%s'", buf);

	/* The reader reads again. */
	buf[0] = '\0';
	have = 0;
	REQUIRE(&t, kill(p.pid, SIGUSR1) == 0, "SIGUSR1: %s", strerror(errno));
	deadline = h_now_ms() + 5000;
	while ((have = fifo_read(&s, buf, sizeof(buf), have)) < sizeof(buf) &&
	    !note_from(buf, "master: warning: ") && h_now_ms() < deadline)
		h_poll_pause();
	REQUIRE(&t, note_from(buf, "master: warning: "), "no note from the "
	    "master after SIGUSR1: '%s'", buf);
	REQUIRE(&t, clients(&t, &p, 100, 40) == 0, "%s", t.msg);
	snprintf(who, sizeof(who), "worker %d: warning: ", x);
	deadline = h_now_ms() + 5000;
	while ((have = fifo_read(&s, buf, sizeof(buf), have)) < sizeof(buf) &&
	    !note_from(buf, who) && h_now_ms() < deadline)
		h_poll_pause();
	REQUIRE(&t, note_from(buf, who), "no note from worker %d after 40 "
	    "more clients: '%s'", x, buf);
	whole = lines_whole(buf);
	REQUIRE(&t, whole > 0, "after: line %d is cut or malformed: '%s'",
	    -whole, buf);
	close(a); /* else the graceful stop waits for it */
	a = -1;
	REQUIRE(&t, cl_stop(&p, 5000) != -1, "SIGTERM: still running");
out:
	if (a != -1)
		close(a);
	h_cleanup(&p);
	stall_cleanup(&s);
	ck_assert_msg(!t.failed, "%s", t.msg);
}
END_TEST

/* ---- -d: a /dev/log that never reads ---- */

struct devlog {
	char saved[96]; /* the real /dev, bound here */
	int fd;         /* our /dev/log, never read */
};

/*
 * A private mount namespace with a /dev of its own: a tmpfs holding
 * the few devices echod uses, bound from the real /dev, and a datagram
 * socket at /dev/log.  0, or -1 with why set (the case is skipped).
 */
static int
devlog_make(struct devlog *dl, const char *dir, char *why, size_t len)
{
	static const char *const devs[] = { "null", "zero", "random",
		"urandom" };
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char src[128], dst[64];
	size_t i;
	int fd;

	snprintf(dl->saved, sizeof(dl->saved), "%s/dev", dir);
	if (geteuid() != 0 || unshare(CLONE_NEWNS) == -1 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == -1 ||
	    mkdir(dl->saved, 0755) == -1 ||
	    mount("/dev", dl->saved, NULL, MS_BIND | MS_REC, NULL) == -1 ||
	    mount("tmpfs", "/dev", "tmpfs", 0, "mode=0755") == -1) {
		snprintf(why, len, "no private /dev (needs root and mount "
		    "namespaces): %s", strerror(errno));
		return -1;
	}
	for (i = 0; i < sizeof(devs) / sizeof(devs[0]); i++) {
		snprintf(src, sizeof(src), "%s/%s", dl->saved, devs[i]);
		snprintf(dst, sizeof(dst), "/dev/%s", devs[i]);
		if ((fd = open(dst, O_CREAT | O_WRONLY | O_CLOEXEC, 0666)) != -1)
			close(fd);
		if (fd == -1 || mount(src, dst, NULL, MS_BIND, NULL) == -1) {
			snprintf(why, len, "bind %s: %s", dst, strerror(errno));
			return -1;
		}
	}
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", LOG_DEV);
	dl->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	/* echod runs as nobody after binding its port. */
	if (dl->fd == -1 || bind(dl->fd, (struct sockaddr *)&sun,
	    sizeof(sun)) == -1 || chmod(LOG_DEV, 0666) == -1) {
		snprintf(why, len, "%s: %s", LOG_DEV, strerror(errno));
		return -1;
	}
	return 0;
}

/* Has anything reached our /dev/log? */
static int
devlog_used(const struct devlog *dl)
{
	char c;

	return recv(dl->fd, &c, 1, MSG_DONTWAIT | MSG_PEEK) > 0;
}

/* The detached daemon, reaped by us (its subreaper); status or -1. */
static int
reap_within(pid_t pid, int timeout_ms)
{
	long long deadline = h_now_ms() + timeout_ms;
	int st;

	do {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return st;
		h_poll_pause();
	} while (h_now_ms() < deadline);
	return -1;
}

/*
 * echod -d -v, its /dev/log never read: all clients echoed, a killed
 * worker replaced, SIGTERM obeyed at once (the old code, with syslog(3):
 * 7 clients, then nothing).
 */
START_TEST(stalled_devlog)
{
	const char *args[] = { "-d", "-v", NULL };
	struct devlog dl = { "", -1 };
	struct stall s = { "", "", -1 };
	struct echod_proc p;
	struct tres t = { 0, "" };
	char why[256], conf[256], pidf[128] = "", buf[32];
	const char *colon;
	long long t0, ms;
	pid_t d = -1;
	int st, fd;

	cl_proc_init(&p);
	snprintf(s.dir, sizeof(s.dir), "/tmp/echod-logstall.XXXXXX");
	REQUIRE(&t, mkdtemp(s.dir) != NULL && chmod(s.dir, 0777) == 0,
	    "mkdtemp: %s", strerror(errno));
	if (devlog_make(&dl, s.dir, why, sizeof(why)) == -1) {
		printf("logstall: -d with a stalled /dev/log skipped: %s\n",
		    why);
		goto out;
	}
	REQUIRE(&t, prctl(PR_SET_CHILD_SUBREAPER, 1) == 0, "subreaper: %s",
	    strerror(errno));
	snprintf(pidf, sizeof(pidf), "%s/echod.pid", s.dir);
	snprintf(conf, sizeof(conf), "listen = { \"127.0.0.1:0\" }\n"
	    "workers = 2\npidfile = \"%s\"\n", pidf);
	REQUIRE(&t, h_spawn(&p, conf, args) == 0 &&
	    h_wait_notify(&p, "READY=1", START_MS, p.ready,
	    sizeof(p.ready)) == 0 &&
	    (colon = strstr(p.ready, "listening on 127.0.0.1:")) != NULL,
	    "echod -d did not start: '%s'", p.ready);
	p.port = atoi(colon + strlen("listening on 127.0.0.1:"));
	REQUIRE(&t, (fd = open(pidf, O_RDONLY | O_CLOEXEC)) != -1,
	    "no pidfile: %s", strerror(errno));
	memset(buf, 0, sizeof(buf));
	st = (int)read(fd, buf, sizeof(buf) - 1);
	close(fd);
	REQUIRE(&t, st > 0 && (d = (pid_t)atoi(buf)) > 0, "pidfile: '%s'",
	    buf);
	REQUIRE(&t, clients(&t, &p, 0, CLIENTS) == 0, "%s", t.msg);
	REQUIRE(&t, devlog_used(&dl), "nothing reached /dev/log: the "
	    "test proves nothing");
	REQUIRE(&t, replace_worker(&t, &p, d, 0) == 0, "%s", t.msg);
	REQUIRE(&t, clients(&t, &p, CLIENTS, 20) == 0, "%s", t.msg);
	t0 = h_now_ms();
	REQUIRE(&t, kill(d, SIGTERM) == 0, "SIGTERM: %s", strerror(errno));
	st = reap_within(d, 5000);
	ms = h_now_ms() - t0;
	REQUIRE(&t, st != -1, "still running 5 s after SIGTERM");
	d = -1;
	REQUIRE(&t, WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status "
	    "0x%x after SIGTERM", st);
	printf("logstall: -d, /dev/log never read: %d clients echoed, "
	    "worker replaced, SIGTERM to exit %lld ms\n", CLIENTS + 20, ms);
out:
	if (d > 0) {
		kill(d, SIGKILL);
		reap_within(d, 5000);
	}
	h_cleanup(&p);
	if (dl.fd != -1)
		close(dl.fd);
	if (dl.saved[0] != '\0') {
		umount2("/dev", MNT_DETACH);
		umount2(dl.saved, MNT_DETACH);
		rmdir(dl.saved);
	}
	if (pidf[0] != '\0')
		unlink(pidf);
	stall_cleanup(&s);
	ck_assert_msg(!t.failed, "%s", t.msg);
}
END_TEST

Suite *
logstall_suite(void)
{
	Suite *s = suite_create("logstall");

	h_case(s, "fifo", 120, H_TESTS(stalled_fifo, dropped_note,
	    stalled_devlog));
	return s;
}
