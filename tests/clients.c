/*
 * clients: helpers of the attack and stress suites (see clients.h).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clients.h"

void
cl_fail(struct tres *t, int line, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->failed)
		return;
	t->failed = 1;
	n = snprintf(t->msg, sizeof(t->msg), "line %d: ", line);
	va_start(ap, fmt);
	vsnprintf(t->msg + n, sizeof(t->msg) - (size_t)n, fmt, ap);
	va_end(ap);
}

void
cl_proc_init(struct echod_proc *p)
{
	memset(p, 0, sizeof(*p));
	p->pid = -1;
	p->notify_fd = -1;
}

long long
cl_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void
cl_upper(unsigned char *buf, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (buf[i] >= 'a' && buf[i] <= 'z')
			buf[i] = (unsigned char)(buf[i] - 'a' + 'A');
}

int
cl_have_ipv6(void)
{
	struct sockaddr_in6 sin6;
	int fd, ok;

	if ((fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return 0;
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_addr = in6addr_loopback;
	ok = bind(fd, (struct sockaddr *)&sin6, sizeof(sin6)) == 0;
	close(fd);
	return ok;
}

/* ---- TCP ---- */

static int
fill_addr(const char *host, int port, struct sockaddr_storage *ss,
    socklen_t *len)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		*len = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*sin6);
		return 0;
	}
	errno = EINVAL;
	return -1;
}

int
cl_connect(const char *src, const char *dst, int port)
{
	struct sockaddr_storage ss, sa;
	struct timeval tv = { 10, 0 };
	socklen_t sl, al;
	int fd, e, one = 1;

	if (fill_addr(dst, port, &ss, &sl) == -1)
		return -1;
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (src != NULL) {
		/* The port is chosen at connect(), by the whole 4-tuple:
		 * thousands of connects from one address do not run out. */
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
		    sizeof(one));
		if (fill_addr(src, 0, &sa, &al) == -1 ||
		    bind(fd, (struct sockaddr *)&sa, al) == -1)
			goto fail;
	}
	if (connect(fd, (struct sockaddr *)&ss, sl) == -1)
		goto fail;
	return fd;
fail:
	e = errno;
	close(fd);
	errno = e;
	return -1;
}

int
cl_echo(int fd, const char *msg, int timeout_ms)
{
	unsigned char want[512], got[512];
	size_t len = strlen(msg);

	if (len > sizeof(want))
		return 0;
	memcpy(want, msg, len);
	cl_upper(want, len);
	if (h_write_all(fd, msg, len) == -1)
		return 0;
	return h_read_exact(fd, got, len, timeout_ms) == len &&
	    memcmp(got, want, len) == 0;
}

int
cl_closed(int fd, int timeout_ms)
{
	long long deadline = h_now_ms() + timeout_ms;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char c;
	ssize_t n;
	int left;

	while ((left = (int)(deadline - h_now_ms())) > 0) {
		if (poll(&pfd, 1, left) <= 0)
			continue;
		n = recv(fd, &c, 1, MSG_DONTWAIT);
		if (n == 0 || (n == -1 && (errno == ECONNRESET ||
		    errno == EPIPE)))
			return 1;
		if (n == 1)
			return 0; /* a byte came back: it was served */
		if (errno != EAGAIN && errno != EINTR)
			return 0;
	}
	return 0;
}

int
cl_reply(int fd, const char *msg, int timeout_ms)
{
	long long deadline = h_now_ms() + timeout_ms;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	unsigned char want[512], got[512];
	size_t len = strlen(msg), n = 0;
	ssize_t r;
	int left;

	if (len == 0 || len > sizeof(want))
		return -1;
	memcpy(want, msg, len);
	cl_upper(want, len);
	/* The daemon may have closed already: a reset here is an answer. */
	(void)send(fd, msg, len, MSG_NOSIGNAL);
	while (n < len && (left = (int)(deadline - h_now_ms())) > 0) {
		if (poll(&pfd, 1, left) <= 0)
			continue;
		r = recv(fd, got + n, len - n, MSG_DONTWAIT);
		if (r > 0) {
			n += (size_t)r;
			continue;
		}
		if (r == 0 || errno == ECONNRESET || errno == EPIPE)
			return n == 0 ? 0 : -1;
		if (errno != EAGAIN && errno != EINTR)
			return -1;
	}
	return n == len && memcmp(got, want, len) == 0 ? 1 : -1;
}

int
cl_refused(int fd, int timeout_ms)
{
	/* The daemon may have closed already: a reset here is fine. */
	(void)send(fd, "r", 1, MSG_NOSIGNAL);
	return cl_closed(fd, timeout_ms);
}

int
cl_finish(int fd, int timeout_ms)
{
	return shutdown(fd, SHUT_WR) == 0 && h_expect_eof(fd, timeout_ms);
}

void
cl_reset(int fd)
{
	struct linger lg = { 1, 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

/* ---- who holds a connection ---- */

/* Parse "ADDR:PORT" of /proc/net/tcp{,6}: hex address text and port. */
static int
parse_endpoint(const char *s, char *addr, size_t alen, unsigned *port)
{
	const char *colon = strchr(s, ':');

	if (colon == NULL || (size_t)(colon - s) >= alen)
		return -1;
	memcpy(addr, s, (size_t)(colon - s));
	addr[colon - s] = '\0';
	return sscanf(colon + 1, "%x", port) == 1 ? 0 : -1;
}

/* The address of ss as /proc/net/tcp{,6} prints it. */
static void
proc_addr(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
	const uint32_t *w;
	uint32_t a;

	if (ss->ss_family == AF_INET) {
		memcpy(&a, &sin->sin_addr, 4);
		snprintf(buf, len, "%08X", a);
	} else {
		w = (const uint32_t *)(const void *)&sin6->sin6_addr;
		snprintf(buf, len, "%08X%08X%08X%08X", w[0], w[1], w[2], w[3]);
	}
}

static unsigned long
scan_tcp(const char *path, int port, const char *caddr, unsigned cport)
{
	char line[512], loc[160], rem[160], la[40], ra[40];
	unsigned lp, rp;
	unsigned long ino, found = 0;
	FILE *f;

	if ((f = fopen(path, "re")) == NULL)
		return 0;
	while (found == 0 && fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, " %*u: %159s %159s %*x %*x:%*x %*x:%*x %*x "
		    "%*u %*u %lu", loc, rem, &ino) != 3 ||
		    parse_endpoint(loc, la, sizeof(la), &lp) == -1 ||
		    parse_endpoint(rem, ra, sizeof(ra), &rp) == -1)
			continue;
		if (lp == (unsigned)port && rp == cport &&
		    strcmp(ra, caddr) == 0 && ino != 0)
			found = ino;
	}
	fclose(f);
	return found;
}

unsigned long
cl_server_inode(int port, int client_fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char caddr[40];
	unsigned cport;

	if (getsockname(client_fd, (struct sockaddr *)&ss, &sl) == -1)
		return 0;
	proc_addr(&ss, caddr, sizeof(caddr));
	cport = ntohs(ss.ss_family == AF_INET ?
	    ((struct sockaddr_in *)&ss)->sin_port :
	    ((struct sockaddr_in6 *)&ss)->sin6_port);
	return scan_tcp(ss.ss_family == AF_INET ? "/proc/net/tcp" :
	    "/proc/net/tcp6", port, caddr, cport);
}

int
cl_pid_has_socket(pid_t pid, unsigned long inode)
{
	char dir[64], path[384], link[64], want[64];
	struct dirent *de;
	ssize_t n;
	DIR *d;
	int found = 0;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	snprintf(want, sizeof(want), "socket:[%lu]", inode);
	if ((d = opendir(dir)) == NULL)
		return 0;
	while (!found && (de = readdir(d)) != NULL) {
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if ((n = readlink(path, link, sizeof(link) - 1)) <= 0)
			continue;
		link[n] = '\0';
		found = strcmp(link, want) == 0;
	}
	closedir(d);
	return found;
}

pid_t
cl_owner(pid_t master, unsigned nslots, int port, int client_fd, int *slot)
{
	unsigned long inode = cl_server_inode(port, client_fd);
	unsigned s;
	pid_t pid;

	if (inode == 0)
		return -1;
	for (s = 0; s < nslots; s++) {
		if ((pid = h_worker_pid(master, s)) > 0 &&
		    cl_pid_has_socket(pid, inode)) {
			if (slot != NULL)
				*slot = (int)s;
			return pid;
		}
	}
	return -1;
}

/* ---- CPU, memory, descriptors ---- */

static long long
cpu_ticks(pid_t pid)
{
	char path[64], buf[1024], *rp;
	unsigned long long ut, st;
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "re")) == NULL)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* After "(comm)": state ppid pgrp session tty tpgid flags minflt
	 * cminflt majflt cmajflt utime stime. */
	if ((rp = strrchr(buf, ')')) == NULL ||
	    sscanf(rp + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu "
	    "%llu", &ut, &st) != 2)
		return 0;
	return (long long)(ut + st);
}

long long
cl_cpu_ms(pid_t master)
{
	pid_t kids[512];
	long long ticks = cpu_ticks(master);
	long hz = sysconf(_SC_CLK_TCK);
	int i, n = h_children(master, kids, 512);

	for (i = 0; i < n; i++)
		ticks += cpu_ticks(kids[i]);
	return ticks * 1000 / (hz > 0 ? hz : 100);
}

static long
rss_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "re")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

long
cl_rss_kb(pid_t master)
{
	pid_t kids[512];
	long kb = rss_kb(master);
	int i, n = h_children(master, kids, 512);

	for (i = 0; i < n; i++)
		kb += rss_kb(kids[i]);
	return kb;
}

int
cl_count_fds(pid_t pid)
{
	char dir[64];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	if ((d = opendir(dir)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		n++;
	}
	closedir(d);
	return n;
}

/* ---- resource limits of a daemon process ---- */

/* Real, effective and saved uid and gid of pid (/proc/PID/status). */
static int
proc_ids(pid_t pid, uid_t uid[3], gid_t gid[3])
{
	char path[64], line[256];
	unsigned long a, b, c;
	int got = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "re")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "Uid: %lu %lu %lu", &a, &b, &c) == 3) {
			uid[0] = (uid_t)a, uid[1] = (uid_t)b, uid[2] = (uid_t)c;
			got |= 1;
		} else if (sscanf(line, "Gid: %lu %lu %lu", &a, &b, &c) == 3) {
			gid[0] = (gid_t)a, gid[1] = (gid_t)b, gid[2] = (gid_t)c;
			got |= 2;
		}
	}
	fclose(f);
	return got == 3 ? 0 : -1;
}

struct prl_reply {
	int err;
	struct rlimit old;
};

static void prl_child(pid_t, int, const struct rlimit *, int, const uid_t *,
    const gid_t *) __attribute__((noreturn));

static void
prl_child(pid_t pid, int resource, const struct rlimit *nl, int wr,
    const uid_t *uid, const gid_t *gid)
{
	struct prl_reply r;

	memset(&r, 0, sizeof(r));
	if (setgroups(0, NULL) == -1 ||
	    setresgid(gid[0], gid[1], gid[2]) == -1 ||
	    setresuid(uid[0], uid[1], uid[2]) == -1 ||
	    prlimit(pid, (__rlimit_resource_t)resource, nl, &r.old) == -1)
		r.err = errno;
	if (write(wr, &r, sizeof(r)) != (ssize_t)sizeof(r))
		_exit(1);
	_exit(0);
}

int
cl_prlimit(pid_t pid, int resource, const struct rlimit *nl,
    struct rlimit *old)
{
	struct prl_reply r;
	uid_t uid[3] = { 0, 0, 0 };
	gid_t gid[3] = { 0, 0, 0 };
	pid_t kid;
	int p[2], st;
	ssize_t n;

	if (prlimit(pid, (__rlimit_resource_t)resource, nl, old) == 0)
		return 0;
	if (errno != EPERM || proc_ids(pid, uid, gid) == -1)
		return -1;
	if (pipe2(p, O_CLOEXEC) == -1)
		return -1;
	if ((kid = fork()) == -1) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (kid == 0)
		prl_child(pid, resource, nl, p[1], uid, gid);
	close(p[1]);
	n = read(p[0], &r, sizeof(r));
	close(p[0]);
	waitpid(kid, &st, 0);
	if (n != (ssize_t)sizeof(r)) {
		errno = EIO;
		return -1;
	}
	if (r.err != 0) {
		errno = r.err;
		return -1;
	}
	if (old != NULL)
		*old = r.old;
	return 0;
}

/* ---- the daemon's notify socket and stop ---- */

void
cl_notify_drain(struct echod_proc *p)
{
	h_drain_notify(p); /* queued, not dropped: h_wait_notify still sees them */
}

int
cl_stop(struct echod_proc *p, int timeout_ms)
{
	long long deadline = h_now_ms() + timeout_ms;
	int st;

	if (p->pid <= 0)
		return -1;
	kill(p->pid, SIGTERM);
	do {
		cl_notify_drain(p);
		if ((st = h_wait_exit(p, 0)) != -1)
			return st;
		h_poll_pause();
	} while (h_now_ms() < deadline);
	kill(p->pid, SIGKILL);
	h_wait_exit(p, 5000);
	return -1;
}

/* ---- the log ---- */

static char logbuf[4 << 20];

int
cl_log_count(struct echod_proc *p, const char *needle)
{
	const char *s;
	int n = 0;

	h_log_read(p, logbuf, sizeof(logbuf));
	for (s = logbuf; (s = strstr(s, needle)) != NULL; s += strlen(needle))
		n++;
	return n;
}

int
cl_log_wait(struct echod_proc *p, const char *needle, int n, int timeout_ms)
{
	long long deadline = h_now_ms() + timeout_ms;

	do {
		cl_notify_drain(p);
		if (cl_log_count(p, needle) >= n)
			return 1;
		h_poll_pause();
	} while (h_now_ms() < deadline);
	return 0;
}

int
cl_log_line(struct echod_proc *p, const char *needle, char *line,
    size_t len)
{
	const char *s, *b, *e;

	h_log_read(p, logbuf, sizeof(logbuf));
	if ((s = strstr(logbuf, needle)) == NULL)
		return 0;
	for (b = s; b > logbuf && b[-1] != '\n'; b--)
		;
	if ((e = strchr(s, '\n')) == NULL)
		e = s + strlen(s);
	snprintf(line, len, "%.*s", (int)(e - b), b);
	return 1;
}

void
cl_log_dump_if_failed(const struct tres *t, struct echod_proc *p)
{
	size_t n;

	if (!t->failed)
		return;
	fprintf(stderr, "---- failed: %s\n", t->msg);
	if (p == NULL || p->dir[0] == '\0')
		return;
	n = h_log_read(p, logbuf, sizeof(logbuf));
	fprintf(stderr, "---- echod log, last %zu bytes ----\n%s----\n",
	    n > 4096 ? (size_t)4096 : n, logbuf + (n > 4096 ? n - 4096 : 0));
}

/* ---- a helper process beside the test ---- */

int
cl_child_start(struct cl_child *c,
    void (*fn)(const void *arg, int stop_rd, int res_wr), const void *arg)
{
	int s[2], r[2], fd;

	c->pid = -1;
	c->stop_wr = c->res_rd = -1;
	if (pipe2(s, O_CLOEXEC) == -1)
		return -1;
	if (pipe2(r, O_CLOEXEC) == -1) {
		close(s[0]);
		close(s[1]);
		return -1;
	}
	if ((c->pid = fork()) == 0) {
		for (fd = 3; fd < 1024; fd++)
			if (fd != s[0] && fd != r[1])
				close(fd);
		fn(arg, s[0], r[1]);
		_exit(1); /* not reached: fn must not return */
	}
	close(s[0]);
	close(r[1]);
	c->stop_wr = s[1];
	c->res_rd = r[0];
	return c->pid == -1 ? -1 : 0;
}

int
cl_child_finish(struct cl_child *c, const void *msg, size_t msglen,
    void *res, size_t reslen)
{
	struct pollfd pfd = { .fd = c->res_rd, .events = POLLIN };
	long long deadline = h_now_ms() + 8000;
	int st, rc = -1;

	if (write(c->stop_wr, msg, msglen) != (ssize_t)msglen)
		return -1;
	if (poll(&pfd, 1, 8000) > 0 &&
	    read(c->res_rd, res, reslen) == (ssize_t)reslen)
		rc = 0;
	while (c->pid > 0 && h_now_ms() < deadline) {
		if (waitpid(c->pid, &st, WNOHANG) == c->pid)
			c->pid = -1;
		else
			h_poll_pause();
	}
	return rc;
}

void
cl_child_cleanup(struct cl_child *c)
{
	int st;

	if (c->pid > 0) {
		kill(c->pid, SIGKILL);
		waitpid(c->pid, &st, 0);
		c->pid = -1;
	}
	if (c->stop_wr != -1)
		close(c->stop_wr);
	if (c->res_rd != -1)
		close(c->res_rd);
	c->stop_wr = c->res_rd = -1;
}

/* ---- appended: rewriting the configuration, free ports ---- */

int
cl_write_file(const char *path, const char *fmt, ...)
{
	va_list ap;
	FILE *f;
	int rc;

	if ((f = fopen(path, "w")) == NULL)
		return -1;
	va_start(ap, fmt);
	rc = vfprintf(f, fmt, ap) < 0 ? -1 : 0;
	va_end(ap);
	if (fclose(f) != 0)
		rc = -1;
	return rc;
}

int
cl_free_port(void)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	int fd, port = -1;

	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sin, &sl) == 0)
		port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

long
cl_vm_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmSize: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}
