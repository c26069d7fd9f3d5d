/*
 * upgrade: the in-place re-execution on SIGUSR2 (see upgrade.h).
 *
 * The old image checks the binary on disk first (`echod ... -t` in a
 * child, a bounded wait), then says RELOADING=1, lets its listeners (and
 * -d's pidfile) survive the exec, and execs the same path with its
 * original argv and ECHOD_UPGRADE.  The new image (main.c) adopts the
 * listeners by name, starts its own generation, and once it is ready
 * SIGTERMs the old workers, which drain and are reaped here.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "master_int.h"
#include "metrics.h"
#include "notify.h"
#include "upgrade.h"
#include "version.h"

/* ---- the pure part ---- */

static int
put(char *buf, size_t len, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
put(char *buf, size_t len, size_t *n, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vsnprintf(buf + *n, len - *n, fmt, ap);
	va_end(ap);
	if (r < 0 || (size_t)r >= len - *n)
		return -1;
	*n += (size_t)r;
	return 0;
}

int
upgrade_format(const struct upgrade_handover *h, char *buf, size_t len)
{
	size_t i, n = 0;

	if (len == 0 || put(buf, len, &n, "v=%s;ls=", h->from) == -1)
		return -1;
	for (i = 0; i < h->nls; i++)
		if (put(buf, len, &n, "%s%d:%s:%d", i ? "," : "", h->ls[i].fd,
		    h->ls[i].name, h->ls[i].proxy ? 1 : 0) == -1)
			return -1;
	if (put(buf, len, &n, ";workers=") == -1)
		return -1;
	for (i = 0; i < h->nworkers; i++)
		if (put(buf, len, &n, "%s%d", i ? "," : "",
		    (int)h->workers[i]) == -1)
			return -1;
	if (put(buf, len, &n, ";pidfd=%d", h->pidfd) == -1)
		return -1;
	for (i = 0; i < h->ncounters; i++)
		if (put(buf, len, &n, "%s%llu", i ? "," : ";c=",
		    (unsigned long long)h->counters[i]) == -1)
			return -1;
	return 0;
}

/* A decimal in [min, max] at *p, followed by a character of stop. */
static int
num(const char **p, long min, long max, const char *stop, long *out)
{
	char *end;
	long v;

	if (!((**p >= '0' && **p <= '9') || (**p == '-' && min < 0)))
		return -1;
	errno = 0;
	v = strtol(*p, &end, 10);
	if (errno != 0 || end == *p || v < min || v > max ||
	    strchr(stop, *end) == NULL)
		return -1;
	*p = end;
	*out = v;
	return 0;
}

static int
bad(char *err, size_t errlen, const char *what)
{
	snprintf(err, errlen, "%s", what);
	return -1;
}

/* ls=fd:name:proxy,...  up to ';' or the end. */
static int
parse_ls(const char **p, struct upgrade_handover *h, char *err, size_t errlen)
{
	struct upgrade_fd *u;
	const char *s = *p;
	size_t k;
	long v;

	while (*s != ';' && *s != '\0') {
		if (h->nls == LISTENER_MAX)
			return bad(err, errlen, "ls: too many listeners");
		u = &h->ls[h->nls];
		if (num(&s, 3, 65535, ":", &v) == -1)
			return bad(err, errlen, "ls: bad descriptor");
		u->fd = (int)v;
		s++;
		for (k = 0; s[k] != ':' && s[k] != '\0' && s[k] != ';' &&
		    s[k] != ','; k++)
			;
		if (s[k] != ':' || k == 0 || k >= sizeof(u->name))
			return bad(err, errlen, "ls: bad name");
		memcpy(u->name, s, k);
		u->name[k] = '\0';
		s += k + 1;
		if (num(&s, 0, 1, ",;", &v) == -1)
			return bad(err, errlen, "ls: proxy flag not 0 or 1");
		u->proxy = (int)v;
		for (k = 0; k < h->nls; k++)
			if (h->ls[k].fd == u->fd)
				return bad(err, errlen, "ls: a descriptor twice");
		h->nls++;
		if (*s == ',')
			s++;
	}
	*p = s;
	return 0;
}

/* c=n,n,...  up to ';' or the end: unsigned 64-bit decimals. */
static int
parse_counters(const char **p, struct upgrade_handover *h, char *err,
    size_t errlen)
{
	const char *s = *p;
	unsigned long long v;
	char *end;

	while (*s != ';' && *s != '\0') {
		if (h->ncounters == UPGRADE_COUNTERS_MAX)
			return bad(err, errlen, "c: too many counters");
		if (*s < '0' || *s > '9')
			return bad(err, errlen, "c: bad counter");
		errno = 0;
		v = strtoull(s, &end, 10);
		if (errno != 0 || strchr(",;", *end) == NULL)
			return bad(err, errlen, "c: bad counter");
		h->counters[h->ncounters++] = (uint64_t)v;
		s = end;
		if (*s == ',')
			s++;
	}
	*p = s;
	return 0;
}

static int
parse_workers(const char **p, struct upgrade_handover *h, char *err,
    size_t errlen)
{
	const char *s = *p;
	long v;

	while (*s != ';' && *s != '\0') {
		if (h->nworkers == UPGRADE_PIDS_MAX)
			return bad(err, errlen, "workers: too many");
		if (num(&s, 2, INT32_MAX, ",;", &v) == -1)
			return bad(err, errlen, "workers: bad pid");
		h->workers[h->nworkers++] = (pid_t)v;
		if (*s == ',')
			s++;
	}
	*p = s;
	return 0;
}

int
upgrade_parse(const char *s, struct upgrade_handover *h, char *err,
    size_t errlen)
{
	unsigned seen = 0;
	size_t k;
	long v;

	memset(h, 0, sizeof(*h));
	h->pidfd = -1;
	while (*s != '\0') {
		if (strncmp(s, "v=", 2) == 0 && !(seen & 1)) {
			s += 2;
			k = strcspn(s, ";");
			if (k == 0 || k >= sizeof(h->from))
				return bad(err, errlen, "v: bad version");
			memcpy(h->from, s, k);
			h->from[k] = '\0';
			s += k;
			seen |= 1;
		} else if (strncmp(s, "ls=", 3) == 0 && !(seen & 2)) {
			s += 3;
			if (parse_ls(&s, h, err, errlen) == -1)
				return -1;
			seen |= 2;
		} else if (strncmp(s, "workers=", 8) == 0 && !(seen & 4)) {
			s += 8;
			if (parse_workers(&s, h, err, errlen) == -1)
				return -1;
			seen |= 4;
		} else if (strncmp(s, "pidfd=", 6) == 0 && !(seen & 8)) {
			s += 6;
			if (num(&s, -1, 65535, ";", &v) == -1 ||
			    (v >= 0 && v < 3))
				return bad(err, errlen, "pidfd: bad descriptor");
			h->pidfd = (int)v;
			seen |= 8;
		} else if (strncmp(s, "c=", 2) == 0 && !(seen & 16)) {
			s += 2;
			if (parse_counters(&s, h, err, errlen) == -1)
				return -1;
			seen |= 16;
		} else
			return bad(err, errlen, "unknown or repeated field");
		if (*s == ';')
			s++;
	}
	if ((seen & 15) != 15)
		return bad(err, errlen, "a field is missing");
	return 0;
}

size_t
upgrade_argv(char *const *argv, size_t argc, const char *config_abs,
    int test, char **out)
{
	size_t n;

	for (n = 0; n < argc; n++)
		out[n] = argv[n];
	if (config_abs != NULL && !(argc >= 3 &&
	    strcmp(argv[argc - 2], "-c") == 0 &&
	    strcmp(argv[argc - 1], config_abs) == 0)) {
		out[n++] = (char *)(uintptr_t)"-c";
		out[n++] = (char *)(uintptr_t)config_abs;
	}
	if (test)
		out[n++] = (char *)(uintptr_t)"-t";
	out[n] = NULL;
	return n;
}

/* ---- the process's part ---- */

static char exe[512];    /* this binary's path at start-up */
static char **saved_argv; /* copies: proctitle overwrites argv */
static size_t saved_argc;
static const char *config_abs;

/* The old image's workers, in the new image. */
static struct {
	pid_t pids[UPGRADE_PIDS_MAX];
	size_t n, left;
	char from[32];
	int active;
	uint64_t counters[UPGRADE_COUNTERS_MAX];
	size_t ncounters;
} old;

void
upgrade_init(int argc, char **argv, const char *config_abs_path)
{
	ssize_t n;
	int i;

	if ((n = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) <= 0)
		n = 0;
	exe[n] = '\0';
	if ((saved_argv = calloc((size_t)argc + 1, sizeof(char *))) == NULL)
		return;
	for (i = 0; i < argc; i++)
		if ((saved_argv[i] = strdup(argv[i])) == NULL)
			return;
	saved_argc = (size_t)argc;
	config_abs = config_abs_path != NULL ? strdup(config_abs_path) : NULL;
}

int
upgrade_take(struct upgrade_handover *h, char *err, size_t errlen)
{
	const char *v = getenv(UPGRADE_ENV);
	char *copy;
	int rc;

	if (v == NULL)
		return 0;
	if ((copy = strdup(v)) == NULL)
		return bad(err, errlen, "out of memory");
	unsetenv(UPGRADE_ENV); /* the workers and a later upgrade: not theirs */
	rc = upgrade_parse(copy, h, err, errlen);
	free(copy);
	return rc == -1 ? -1 : 1;
}

static int
cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

void
upgrade_close_inherited(const struct upgrade_handover *h)
{
	int keep[LISTENER_MAX + 2];
	size_t i, n = 0;
	unsigned from = 3;

	for (i = 0; i < h->nls; i++)
		keep[n++] = h->ls[i].fd;
	if (h->pidfd != -1)
		keep[n++] = h->pidfd;
	qsort(keep, n, sizeof(keep[0]), cmp_int);
	for (i = 0; i < n; i++) {
		if ((unsigned)keep[i] > from)
			(void)close_range(from, (unsigned)keep[i] - 1, 0);
		from = (unsigned)keep[i] + 1;
	}
	(void)close_range(from, ~0U, 0);
	for (i = 0; i < n; i++) /* cleared for the exec */
		(void)fcntl(keep[i], F_SETFD, FD_CLOEXEC);
}

int
upgrade_fds(const struct upgrade_handover *h, int *fds,
    char (*names)[LISTENER_NAME_MAX])
{
	size_t i;

	for (i = 0; i < h->nls; i++) {
		fds[i] = h->ls[i].fd;
		snprintf(names[i], LISTENER_NAME_MAX, "%s", h->ls[i].name);
	}
	return (int)h->nls;
}

/* Is pid a child of ours (a zombie counts)?  /proc/PID/stat's 4th field. */
static int
is_child(pid_t pid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	char *end;
	long ppid;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* "pid (comm) state ppid ...": comm may hold anything but ')' last. */
	if ((p = strrchr(buf, ')')) == NULL || p[1] != ' ' || p[2] == '\0' ||
	    p[3] != ' ')
		return 0;
	errno = 0;
	ppid = strtol(p + 4, &end, 10);
	if (errno != 0 || end == p + 4 || *end != ' ')
		return 0;
	return ppid == (long)getpid();
}

void
upgrade_adopt_workers(const struct upgrade_handover *h)
{
	size_t i;

	/* Only children: a pid that is not could be neither signalled
	 * safely nor reaped (a stop would wait for it forever). */
	for (i = 0; i < h->nworkers; i++)
		if (is_child(h->workers[i]))
			old.pids[old.n++] = h->workers[i];
	old.left = old.n;
	snprintf(old.from, sizeof(old.from), "%s", h->from);
	old.active = 1;
	memcpy(old.counters, h->counters, sizeof(old.counters));
	old.ncounters = h->ncounters;
}

void
upgrade_carry(struct scoreboard *sb)
{
	struct metrics_snap snap;

	if (!old.active || old.ncounters == 0)
		return;
	if (old.ncounters != METRICS_CARRY_N) {
		log_warnx("upgrade: version %s handed over %zu counters, this "
		    "version keeps %d: /metrics starts again from 0", old.from,
		    old.ncounters, METRICS_CARRY_N);
		return;
	}
	metrics_unpack(old.counters, &snap);
	metrics_carry(sb, &snap);
	log_info("upgrade: the counters of version %s carried over (%llu "
	    "connections accepted so far)", old.from,
	    (unsigned long long)snap.accepted);
}

const char *
upgrade_from(void)
{
	return old.active ? old.from : NULL;
}

void
upgrade_signal_old(int sig)
{
	size_t i;

	for (i = 0; i < old.n; i++)
		if (old.pids[i] > 0 && kill(old.pids[i], sig) == -1 &&
		    errno == ESRCH) {
			/* Not ours after all (never reapable): forget it. */
			old.pids[i] = 0;
			old.left--;
		}
}

void
upgrade_ready(void)
{
	if (!old.active)
		return;
	old.active = 0;
	if (old.left == 0)
		return;
	log_notice("upgrade: %zu worker(s) of version %s drain their "
	    "connections and exit", old.left, old.from);
	upgrade_signal_old(SIGTERM);
}

int
upgrade_reaped(pid_t pid)
{
	size_t i;

	for (i = 0; i < old.n; i++)
		if (old.pids[i] == pid) {
			old.pids[i] = 0;
			if (--old.left == 0)
				log_notice("upgrade: the last worker of the old "
				    "version is gone");
			return 1;
		}
	return 0;
}

size_t
upgrade_old_left(void)
{
	return old.left;
}

/* ---- the old image: check, hand over, exec ---- */

static void
refuse(const char *why)
{
	log_err("upgrade refused: %s; still running version %s", why,
	    ECHOD_VERSION);
}

/* Run `exe ... -t`; 0 if it exits 0 within UPGRADE_CHECK_MS. */
static int
check_binary(char *why, size_t whylen)
{
	char *cmd[saved_argc + 4], out[256];
	uint64_t deadline = master_now() + UPGRADE_CHECK_MS;
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	sigset_t none;
	ssize_t got;
	pid_t pid, r;
	int p[2], st = 0, dn;
	char *nl;

	upgrade_argv(saved_argv, saved_argc, config_abs, 1, cmd);
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) == -1) {
		snprintf(why, whylen, "pipe: %s", strerror(errno));
		return -1;
	}
	if ((pid = fork()) == -1) {
		snprintf(why, whylen, "fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if ((dn = open("/dev/null", O_RDWR)) != -1) {
			dup2(dn, STDIN_FILENO);
			dup2(dn, STDOUT_FILENO);
		}
		dup2(p[1], STDERR_FILENO);
		close_range(3, ~0U, 0);
		execv(exe, cmd);
		dprintf(STDERR_FILENO, "cannot execute: %s\n", strerror(errno));
		_exit(127);
	}
	close(p[1]);
	while ((r = waitpid(pid, &st, WNOHANG)) == 0 &&
	    master_now() < deadline)
		nanosleep(&ts, NULL);
	if (r == 0) {
		kill(pid, SIGKILL);
		(void)waitpid(pid, &st, 0);
		snprintf(why, whylen, "%s -t did not exit within %d ms", exe,
		    UPGRADE_CHECK_MS);
		close(p[0]);
		return -1;
	}
	got = read(p[0], out, sizeof(out) - 1);
	close(p[0]);
	out[got > 0 ? got : 0] = '\0';
	if ((nl = strchr(out, '\n')) != NULL)
		*nl = '\0';
	if (r == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	if (r == pid && WIFEXITED(st))
		snprintf(why, whylen, "%s -t exited %d%s%s", exe,
		    WEXITSTATUS(st), out[0] ? ": " : "", out);
	else
		snprintf(why, whylen, "%s -t %s", exe, r == pid ?
		    "was killed by a signal" : "could not be waited for");
	return -1;
}

static void
cloexec(const struct upgrade_handover *h, int on)
{
	size_t i;

	for (i = 0; i < h->nls; i++)
		(void)fcntl(h->ls[i].fd, F_SETFD, on ? FD_CLOEXEC : 0);
	if (h->pidfd != -1)
		(void)fcntl(h->pidfd, F_SETFD, on ? FD_CLOEXEC : 0);
}

static void
collect(const struct master *m, struct upgrade_handover *h)
{
	struct metrics_snap snap;
	const struct listener *l;
	size_t i;

	memset(h, 0, sizeof(*h));
	snprintf(h->from, sizeof(h->from), "%s", ECHOD_VERSION);
	for (i = 0; i < m->serving.nls; i++) {
		l = &m->serving.ls[i];
		h->ls[i].fd = l->fd;
		h->ls[i].proxy = l->proxy;
		if (l->from_systemd)
			snprintf(h->ls[i].name, LISTENER_NAME_MAX, "systemd");
		else
			listener_fdname(l->spec, h->ls[i].name,
			    LISTENER_NAME_MAX);
	}
	h->nls = m->serving.nls;
	for (i = 0; i < m->pool.nslots; i++)
		if (m->pool.slots[i].pid > 0 &&
		    pool_slot_live(m->pool.slots[i].state))
			h->workers[h->nworkers++] = m->pool.slots[i].pid;
	for (i = 0; i < old.n && h->nworkers < UPGRADE_PIDS_MAX; i++)
		if (old.pids[i] > 0)
			h->workers[h->nworkers++] = old.pids[i];
	h->pidfd = m->opts->pidfile_fd;
	metrics_snapshot(&m->sb, &snap);
	h->ncounters = metrics_pack(&snap, h->counters);
}

void
upgrade_start(struct master *m)
{
	static char env[16384];
	struct upgrade_handover h;
	char *cmd[saved_argc + 4], why[1024], s[1400];
	pid_t mpid = 0;
	int mst = 0, e;

	if (m->pending.id != 0) {
		refuse("a reload is in progress");
		return;
	}
	if (exe[0] == '\0' || saved_argv == NULL) {
		refuse("this binary's path is unknown");
		return;
	}
	log_notice("SIGUSR2: upgrade: checking %s", exe);
	if (check_binary(why, sizeof(why)) == -1) {
		refuse(why);
		return;
	}
	collect(m, &h);
	if (upgrade_format(&h, env, sizeof(env)) == -1) {
		refuse("too many workers to hand over");
		return;
	}
	upgrade_argv(saved_argv, saved_argc, config_abs, 0, cmd);
	log_notice("upgrade: executing %s (it passed -t); version %s hands "
	    "over %zu listener(s) and %zu worker(s)", exe, ECHOD_VERSION,
	    h.nls, h.nworkers);
	notify_upgrading("upgrading: executing the new binary");
	notify_flush();
	/* Its port must be free for the new image's metrics process. */
	if ((mpid = m->md.pid) > 0) {
		kill(mpid, SIGKILL);
		(void)waitpid(mpid, &mst, 0);
	}
	cloexec(&h, 0);
	if (setenv(UPGRADE_ENV, env, 1) == 0)
		execv(exe, cmd);
	e = errno;
	unsetenv(UPGRADE_ENV);
	cloexec(&h, 1);
	if (mpid > 0)
		(void)metricsd_reaped(m, mpid, mst);
	snprintf(s, sizeof(s), "ready: upgrade failed: cannot execute %s: "
	    "%s; still running version %s", exe, strerror(e), ECHOD_VERSION);
	log_err("%s", s);
	notify_ready(s);
	snprintf(m->last_status, sizeof(m->last_status), "%s", s);
}
