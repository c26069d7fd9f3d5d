/*
 * clients: what the integration suites share (see clients.h).
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
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
#include "procfs.h"

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
cl_close_fds(int *fds, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		if (fds[i] != -1)
			close(fds[i]);
		fds[i] = -1;
	}
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
	return h_now_us();
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

int
cl_exited_with(int st, int code)
{
	return st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == code;
}

int
cl_listen_lo(int *port)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	int fd;

	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(fd, 64) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sin, &sl) == -1) {
		close(fd);
		return -1;
	}
	*port = ntohs(sin.sin_port);
	return fd;
}

int
cl_free_port(void)
{
	int port, fd = cl_listen_lo(&port);

	if (fd == -1)
		return -1;
	close(fd);
	return port;
}

int
cl_port_refused(int port)
{
	int fd = h_connect(port, 0), e = errno;

	if (fd != -1) {
		close(fd);
		errno = 0;
		return 0;
	}
	errno = e;
	return e == ECONNREFUSED;
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
cl_echo_new(int port, const char *msg, int timeout_ms, char *err,
    size_t errlen)
{
	unsigned char want[512], got[512];
	size_t len = strlen(msg), n;
	int fd;

	if (len > sizeof(want)) {
		snprintf(err, errlen, "message too long");
		return 0;
	}
	if ((fd = h_connect(port, 0)) == -1) {
		snprintf(err, errlen, "connect to 127.0.0.1:%d: %s", port,
		    strerror(errno));
		return 0;
	}
	memcpy(want, msg, len);
	cl_upper(want, len);
	if (h_write_all(fd, msg, len) == -1) {
		snprintf(err, errlen, "send: %s", strerror(errno));
		close(fd);
		return 0;
	}
	n = h_read_exact(fd, got, len, timeout_ms);
	close(fd);
	if (n != len || memcmp(got, want, len) != 0) {
		snprintf(err, errlen, "sent '%s' to port %d, got '%.*s' "
		    "(%zu bytes) within %d ms", msg, port, (int)n, got, n,
		    timeout_ms);
		return 0;
	}
	return 1;
}

/*
 * Does the peer end the connection (EOF or reset) within timeout_ms?  A
 * byte before the end is a "no", or, with drain, read and ignored.
 */
static int
peer_ends(int fd, int timeout_ms, int drain)
{
	long long deadline = h_now_ms() + timeout_ms;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char buf[256];
	ssize_t n;
	int left;

	while ((left = (int)(deadline - h_now_ms())) > 0) {
		if (poll(&pfd, 1, left) <= 0)
			continue;
		n = recv(fd, buf, drain ? sizeof(buf) : 1, MSG_DONTWAIT);
		if (n == 0 || (n == -1 && (errno == ECONNRESET ||
		    errno == EPIPE)))
			return 1;
		if (n > 0 && !drain)
			return 0; /* a byte came back: it was served */
		if (n == -1 && errno != EAGAIN && errno != EINTR)
			return 0;
	}
	return 0;
}

int
cl_closed(int fd, int timeout_ms)
{
	return peer_ends(fd, timeout_ms, 0);
}

int
cl_eof_or_reset(int fd, int timeout_ms)
{
	return peer_ends(fd, timeout_ms, 1);
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

/* The port of a sockaddr_in or sockaddr_in6. */
static unsigned
ss_port(const struct sockaddr_storage *ss)
{
	return ntohs(ss->ss_family == AF_INET ?
	    ((const struct sockaddr_in *)ss)->sin_port :
	    ((const struct sockaddr_in6 *)ss)->sin6_port);
}

/* The address of a sockaddr_in or sockaddr_in6, as sock_diag wants it. */
static void
ss_diag_addr(const struct sockaddr_storage *ss, __be32 out[4])
{
	memset(out, 0, 4 * sizeof(out[0]));
	if (ss->ss_family == AF_INET)
		memcpy(out, &((const struct sockaddr_in *)ss)->sin_addr, 4);
	else
		memcpy(out, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
}

/*
 * The inode of the socket whose local end is loc and remote end rem: an
 * exact sock_diag lookup, one round trip whatever else the host has
 * open (reading /proc/net/tcp takes a few ms on a busy host); 0 if none.
 */
static unsigned long
diag_inode(const struct sockaddr_storage *loc,
    const struct sockaddr_storage *rem)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 r;
	} req;
	union {
		struct nlmsghdr nlh;
		char buf[1024];
	} resp;
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	const struct inet_diag_msg *m;
	unsigned long inode = 0;
	ssize_t n;
	int fd;

	memset(&req, 0, sizeof(req));
	req.nlh.nlmsg_len = sizeof(req);
	req.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	req.nlh.nlmsg_flags = NLM_F_REQUEST;
	req.r.sdiag_family = (unsigned char)loc->ss_family;
	req.r.sdiag_protocol = IPPROTO_TCP;
	req.r.idiag_states = ~0U;
	req.r.id.idiag_sport = htons((uint16_t)ss_port(loc));
	req.r.id.idiag_dport = htons((uint16_t)ss_port(rem));
	ss_diag_addr(loc, req.r.id.idiag_src);
	ss_diag_addr(rem, req.r.id.idiag_dst);
	req.r.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
	req.r.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
	if ((fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC,
	    NETLINK_SOCK_DIAG)) == -1)
		return 0;
	if (sendto(fd, &req, sizeof(req), 0, (struct sockaddr *)&sa,
	    sizeof(sa)) == (ssize_t)sizeof(req) &&
	    (n = recv(fd, &resp, sizeof(resp), 0)) > 0 &&
	    NLMSG_OK(&resp.nlh, (size_t)n) &&
	    resp.nlh.nlmsg_type == SOCK_DIAG_BY_FAMILY) {
		m = NLMSG_DATA(&resp.nlh);
		inode = m->idiag_inode;
	}
	close(fd);
	return inode;
}

unsigned long
cl_server_inode(int port, int client_fd)
{
	struct sockaddr_storage ss, peer;
	socklen_t sl = sizeof(ss), pl = sizeof(peer);
	unsigned long inode;
	char caddr[40];

	if (getsockname(client_fd, (struct sockaddr *)&ss, &sl) == -1)
		return 0;
	/* The daemon's end: local = our peer, remote = us. */
	if (getpeername(client_fd, (struct sockaddr *)&peer, &pl) == 0 &&
	    ss_port(&peer) == (unsigned)port &&
	    (inode = diag_inode(&peer, &ss)) != 0)
		return inode;
	proc_addr(&ss, caddr, sizeof(caddr));
	return scan_tcp(ss.ss_family == AF_INET ? "/proc/net/tcp" :
	    "/proc/net/tcp6", port, caddr, ss_port(&ss));
}

int
cl_pid_has_socket(pid_t pid, unsigned long inode)
{
	char want[64];

	snprintf(want, sizeof(want), "socket:[%lu]", inode);
	return pf_has_fd(pid, want);
}

/*
 * Does worker pid serve the connection of socket inode: itself, or (the
 * process-per-connection model) through one of its children?
 */
static int
worker_serves(pid_t pid, unsigned long inode)
{
	pid_t kids[512];
	int i, n;

	if (cl_pid_has_socket(pid, inode))
		return 1;
	n = h_children(pid, kids, 512);
	for (i = 0; i < n; i++)
		if (cl_pid_has_socket(kids[i], inode))
			return 1;
	return 0;
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
		    worker_serves(pid, inode)) {
			if (slot != NULL)
				*slot = (int)s;
			return pid;
		}
	}
	return -1;
}

pid_t
cl_owner_child(pid_t master, int port, int client_fd)
{
	unsigned long inode = cl_server_inode(port, client_fd);
	pid_t kids[512];
	int i, n;

	if (inode == 0)
		return -1;
	n = h_children(master, kids, 512);
	for (i = 0; i < n; i++)
		if (cl_pid_has_socket(kids[i], inode))
			return kids[i];
	/* Not a worker itself: a worker's per-connection child? */
	for (i = 0; i < n; i++)
		if (worker_serves(kids[i], inode))
			return kids[i];
	return -1;
}

int
cl_wait_gone(struct echod_proc *p, const pid_t *pids, int n, int timeout_ms)
{
	long long deadline = h_now_ms() + timeout_ms;
	int i, alive;

	do {
		if (p != NULL)
			h_drain_notify(p);
		for (alive = 0, i = 0; i < n; i++)
			alive += h_alive(pids[i]);
		if (alive == 0)
			return 0;
		h_poll_pause();
	} while (h_now_ms() < deadline);
	return alive;
}

int
cl_pid_in(const pid_t *set, int n, pid_t pid)
{
	int i;

	for (i = 0; i < n; i++)
		if (set[i] == pid)
			return 1;
	return 0;
}

/* ---- CPU, memory, descriptors ---- */

static long long
cpu_ticks(pid_t pid)
{
	struct pf_stat st;

	return pf_stat(pid, &st) == 0 ? (long long)(st.utime + st.stime) : 0;
}

static long long
ticks_ms(long long ticks)
{
	long hz = sysconf(_SC_CLK_TCK);

	return ticks * 1000 / (hz > 0 ? hz : 100);
}

long long
cl_cpu_ms(pid_t master)
{
	pid_t kids[512];
	long long ticks = cpu_ticks(master);
	int i, n = h_descendants(master, kids, 512);

	for (i = 0; i < n; i++)
		ticks += cpu_ticks(kids[i]);
	return ticks_ms(ticks);
}

static long
rss_kb(pid_t pid)
{
	long kb = pf_status_num(pid, "VmRSS");

	return kb > 0 ? kb : 0;
}

long
cl_rss_kb(pid_t master)
{
	pid_t kids[512];
	long kb = rss_kb(master);
	int i, n = h_descendants(master, kids, 512);

	for (i = 0; i < n; i++)
		kb += rss_kb(kids[i]);
	return kb;
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

const char *
cl_log_tail(struct echod_proc *p)
{
	static char out[2048];
	size_t n = h_log_read(p, logbuf, sizeof(logbuf));

	snprintf(out, sizeof(out), "%s ends:\n%.1500s", p->log_path,
	    n > 1500 ? logbuf + n - 1500 : logbuf);
	return out;
}

void
cl_must_start(struct echod_proc *p, const char *conf_text, int timeout_ms)
{
	if (h_start(p, conf_text, NULL, timeout_ms) == -1)
		ck_abort_msg("echod did not send READY=1 with a port within "
		    "%d ms (ready: '%s'); %s", timeout_ms, p->ready,
		    cl_log_tail(p));
}

void
cl_must_stop(struct echod_proc *p, int timeout_ms)
{
	int st = h_stop(p, timeout_ms);

	ck_assert_msg(cl_exited_with(st, 0), "echod did not exit 0 within "
	    "%d ms of SIGTERM (wait status %d); %s", timeout_ms, st,
	    cl_log_tail(p));
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
	void (*old)(int) = signal(SIGPIPE, SIG_IGN);
	int st, rc = -1;
	ssize_t w;

	/*
	 * A child that stopped early (a prober at its max_bad) has closed
	 * its end: EPIPE, not a SIGPIPE that would kill the test, and its
	 * result is still there to read.
	 */
	w = write(c->stop_wr, msg, msglen);
	signal(SIGPIPE, old);
	if (w != (ssize_t)msglen && !(w == -1 && errno == EPIPE))
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

/* ---- a prober: connect, echo, close, in a loop, in a child ---- */

static long long probe_began[CL_PROBE_MAX], probe_ended[CL_PROBE_MAX];

static void
probe_once(const struct cl_probe *a, int i, struct cl_probe_res *r)
{
	char msg[128];
	long long t;
	pid_t owner;
	int fd;

	r->iters++;
	if ((fd = h_connect(a->port, 0)) == -1) {
		if (errno == ECONNREFUSED)
			r->refused++;
		else
			r->failed++;
		if (r->first_errno == 0)
			r->first_errno = errno;
		return;
	}
	snprintf(msg, sizeof(msg), "probe %d: %s\r\n", i, a->text);
	if (!cl_echo(fd, msg, a->echo_ms)) {
		r->wrong++;
		close(fd);
		return;
	}
	t = h_now_ms();
	r->ok++;
	if (a->old != NULL && r->first_new_ms == 0 &&
	    (owner = cl_owner_child(a->master, a->port, fd)) > 0 &&
	    !cl_pid_in(a->old, a->nold, owner))
		r->first_new_ms = t;
	close(fd);
}

static void probe_run(const void *, int, int) __attribute__((noreturn));

/* Probe until told to stop, then 20 more; bounded in count and time. */
static void
probe_run(const void *arg, int stop_rd, int res_wr)
{
	struct pollfd pfd = { .fd = stop_rd, .events = POLLIN };
	const struct cl_probe *a = arg;
	long long deadline = h_now_ms() + a->run_ms;
	struct cl_probe_window w = { 0, 0 };
	struct cl_probe_res r;
	int i, after = -1, max = a->max_iters;
	long long rest;

	if (max <= 0 || max > CL_PROBE_MAX)
		max = CL_PROBE_MAX;
	memset(&r, 0, sizeof(r));
	/* A few failures say enough: do not wait out every one. */
	for (i = 0; i < max && h_now_ms() < deadline && after < 20 &&
	    (a->max_bad <= 0 || r.failed + r.wrong < a->max_bad); i++) {
		if (after < 0 && poll(&pfd, 1, 0) > 0) {
			if (read(stop_rd, &w, sizeof(w)) != (ssize_t)sizeof(w))
				_exit(1);
			after = 0;
		}
		if (after >= 0)
			after++;
		probe_began[i] = h_now_ms();
		probe_once(a, i, &r);
		probe_ended[i] = h_now_ms();
		if (i == 0 && a->say_going && write(res_wr, "g", 1) != 1)
			_exit(1);
	}
	/*
	 * Out of iterations before the test said stop (fast probes, a
	 * thread model): wait for its window, run_ms at most, so that
	 * in_window still counts the probes made.
	 */
	if (after < 0 && i >= max && (rest = deadline - h_now_ms()) > 0 &&
	    poll(&pfd, 1, (int)rest) > 0 &&
	    read(stop_rd, &w, sizeof(w)) != (ssize_t)sizeof(w))
		_exit(1);
	while (--i >= 0)
		r.in_window += probe_ended[i] >= w.from &&
		    probe_began[i] <= w.to;
	if (write(res_wr, &r, sizeof(r)) != (ssize_t)sizeof(r))
		_exit(1);
	_exit(0);
}

int
cl_probe_clean(const struct cl_probe_res *r, int min_ok, char *err,
    size_t errlen)
{
	if (r->refused != 0 || r->failed != 0 || r->wrong != 0) {
		snprintf(err, errlen, "prober: %d connections, %d refused, %d "
		    "failed (%s), %d wrong", r->iters, r->refused, r->failed,
		    strerror(r->first_errno), r->wrong);
		return 0;
	}
	if (r->ok < min_ok) {
		snprintf(err, errlen, "prober made only %d connections", r->ok);
		return 0;
	}
	return 1;
}

int
cl_prober_start(struct cl_child *c, const struct cl_probe *a)
{
	struct pollfd pfd;
	char ch;

	if (cl_child_start(c, probe_run, a) == -1)
		return -1;
	if (!a->say_going)
		return 0;
	pfd.fd = c->res_rd;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, 5000) <= 0 || read(c->res_rd, &ch, 1) != 1)
		return -1;
	return 0;
}

int
cl_prober_finish(struct cl_child *c, const struct cl_probe_window *w,
    struct cl_probe_res *r)
{
	struct cl_probe_window none = { 0, 0 };

	return cl_child_finish(c, w != NULL ? w : &none, sizeof(*w), r,
	    sizeof(*r));
}

/* ---- appended by the probe helper ---- */

long long
cl_pid_cpu_ms(pid_t pid)
{
	return ticks_ms(cpu_ticks(pid));
}

int
cl_write_conf(struct echod_proc *p, const char *text)
{
	char tmp[160];
	FILE *f;
	int rc;

	/* Written aside and renamed: a reload never reads half a file. */
	snprintf(tmp, sizeof(tmp), "%s.new", p->conf_path);
	if ((f = fopen(tmp, "we")) == NULL)
		return -1;
	rc = fputs(text, f) == EOF ? -1 : 0;
	if (fclose(f) == EOF)
		rc = -1;
	if (rc == 0 && rename(tmp, p->conf_path) == -1)
		rc = -1;
	return rc;
}

/* ---- appended: rewriting the configuration ---- */

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

pid_t
cl_pidfile_pid(const char *path, int timeout_ms)
{
	long long deadline = h_now_ms() + timeout_ms;
	char buf[32];
	long pid;
	int i;

	for (i = 0; i < 100000; i++) {
		pid = pf_read(path, buf, sizeof(buf)) > 0 ?
		    strtol(buf, NULL, 10) : 0;
		if (pid > 0)
			return (pid_t)pid;
		if (h_now_ms() >= deadline)
			break;
		h_poll_pause();
	}
	return -1;
}

pid_t
cl_conn_holder(pid_t master, int port, int client_fd)
{
	unsigned long inode = cl_server_inode(port, client_fd);
	pid_t pids[512];
	int i, n;

	if (inode == 0)
		return -1;
	n = h_descendants(master, pids, 512);
	/* Deepest first: a worker's child before the worker. */
	for (i = n - 1; i >= 0; i--)
		if (cl_pid_has_socket(pids[i], inode))
			return pids[i];
	return -1;
}

unsigned long
cl_listener_inode(int port)
{
	/* A listening socket's remote end is 0.0.0.0:0. */
	return scan_tcp("/proc/net/tcp", port, "00000000", 0);
}

/* ---- the PROXY protocol, as a balancer speaks it ---- */

#include <netinet/tcp.h>

size_t
cl_proxy_v1(char *buf, size_t len, const char *proto, const char *src,
    int sport, const char *dst, int dport)
{
	int n;

	if (strcmp(proto, "UNKNOWN") == 0)
		n = snprintf(buf, len, "PROXY UNKNOWN\r\n");
	else
		n = snprintf(buf, len, "PROXY %s %s %s %d %d\r\n", proto, src,
		    dst, sport, dport);
	return n > 0 && (size_t)n < len ? (size_t)n : 0;
}

/* addr (numeric) in network order into out; its family, or -1. */
static int
v2_addr(const char *addr, unsigned char out[16])
{
	if (inet_pton(AF_INET, addr, out) == 1)
		return AF_INET;
	if (inet_pton(AF_INET6, addr, out) == 1)
		return AF_INET6;
	return -1;
}

size_t
cl_proxy_v2(unsigned char *buf, size_t len, const char *src, int sport,
    const char *dst, int dport, const void *tlvs, size_t tlvlen)
{
	unsigned char s[16], d[16];
	size_t alen = 0, off = 16;
	int fs = 0, fd = 0;

	if (src != NULL) {
		fs = v2_addr(src, s);
		fd = v2_addr(dst, d);
		if (fs == -1 || fs != fd)
			return 0;
		alen = fs == AF_INET ? 4 : 16;
	}
	if (16 + 2 * alen + (src ? 4 : 0) + tlvlen > len ||
	    2 * alen + (src ? 4 : 0) + tlvlen > 0xffff)
		return 0;
	memcpy(buf, CL_PROXY_V2_SIG, 12);
	buf[12] = src ? 0x21 : 0x20; /* version 2; PROXY or LOCAL */
	buf[13] = src == NULL ? 0x00 : fs == AF_INET ? 0x11 : 0x21;
	if (src != NULL) {
		memcpy(buf + off, s, alen);
		memcpy(buf + off + alen, d, alen);
		off += 2 * alen;
		buf[off++] = (unsigned char)((unsigned)sport >> 8);
		buf[off++] = (unsigned char)sport;
		buf[off++] = (unsigned char)((unsigned)dport >> 8);
		buf[off++] = (unsigned char)dport;
	}
	if (tlvlen > 0)
		memcpy(buf + off, tlvs, tlvlen);
	off += tlvlen;
	buf[14] = (unsigned char)((off - 16) >> 8);
	buf[15] = (unsigned char)(off - 16);
	return off;
}

size_t
cl_proxy_tlv(unsigned char *buf, size_t len, unsigned type, const void *val,
    size_t vlen)
{
	if (vlen > 0xffff || 3 + vlen > len)
		return 0;
	buf[0] = (unsigned char)type;
	buf[1] = (unsigned char)(vlen >> 8);
	buf[2] = (unsigned char)vlen;
	if (vlen > 0)
		memcpy(buf + 3, val, vlen);
	return 3 + vlen;
}

int
cl_send_chunks(int fd, const void *buf, size_t len, size_t chunk,
    int pause_ms)
{
	const unsigned char *b = buf;
	size_t off = 0, n;
	int one = 1;

	if (chunk == 0)
		chunk = len;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	while (off < len) {
		if (off > 0 && pause_ms > 0)
			(void)poll(NULL, 0, pause_ms);
		n = len - off < chunk ? len - off : chunk;
		if (h_write_all(fd, b + off, n) == -1)
			return -1;
		off += n;
	}
	return 0;
}

int
cl_ready_port(const struct echod_proc *p, int proxied, int idx)
{
	const char *s = strstr(p->ready, "listening on ");
	const char *end, *colon;
	int marked;

	if (s == NULL)
		return -1;
	s += strlen("listening on ");
	while (*s != '\0' && *s != '\n') {
		end = s + strcspn(s, ",\n");
		marked = end - s > 8 && memcmp(end - 8, " (PROXY)", 8) == 0;
		colon = *s == '[' ? strstr(s, "]:") : strchr(s, ':');
		if (colon != NULL && colon < end && marked == proxied &&
		    idx-- == 0)
			return atoi(colon + (*s == '[' ? 2 : 1));
		s = *end == ',' ? end + 1 + (end[1] == ' ') : end;
	}
	return -1;
}

const char *
cl_local_name(int fd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t sl = sizeof(ss);
	char a[INET6_ADDRSTRLEN];

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == -1)
		return "?";
	if (ss.ss_family == AF_INET &&
	    inet_ntop(AF_INET, &sin->sin_addr, a, sizeof(a)) != NULL)
		snprintf(buf, len, "%s:%u", a, (unsigned)ntohs(sin->sin_port));
	else if (ss.ss_family == AF_INET6 &&
	    inet_ntop(AF_INET6, &sin6->sin6_addr, a, sizeof(a)) != NULL)
		snprintf(buf, len, "[%s]:%u", a,
		    (unsigned)ntohs(sin6->sin6_port));
	else
		return "?";
	return buf;
}

/* ---- appended by the haproxy helper: a byte-exact stream ---- */

/* The stream's bytes from offset off: splitmix64 of each 8-byte block's
 * index, so that the sender and the checker need no shared state. */
static void
stream_bytes(unsigned long long seed, unsigned long long off,
    unsigned char *buf, size_t len)
{
	unsigned long long blk, z;
	size_t i;

	for (i = 0; i < len; i++, off++) {
		blk = off / 8;
		z = seed + (blk + 1) * 0x9E3779B97F4A7C15ULL;
		z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
		z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
		z ^= z >> 31;
		buf[i] = (unsigned char)(z >> (8 * (off % 8)));
	}
}

struct sstate {
	int fd;
	unsigned long long total, seed, sent, got;
	int shut, eof;
	long long bad_at; /* -1: every byte right so far */
};

/* Send what the socket takes now; half-close after the last byte. */
static int
sstate_send(struct sstate *s)
{
	static unsigned char buf[64 * 1024];
	size_t len;
	ssize_t n;
	int i;

	for (i = 0; i < 16 && s->sent < s->total; i++) {
		len = s->total - s->sent < sizeof(buf) ?
		    (size_t)(s->total - s->sent) : sizeof(buf);
		stream_bytes(s->seed, s->sent, buf, len);
		n = send(s->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n == -1)
			return errno == EAGAIN || errno == EINTR ? 0 : -1;
		s->sent += (unsigned long long)n;
	}
	if (s->sent == s->total && !s->shut) {
		if (shutdown(s->fd, SHUT_WR) == -1)
			return -1;
		s->shut = 1;
	}
	return 0;
}

/* Read what is there and compare it with the uppercased stream. */
static int
sstate_recv(struct sstate *s)
{
	static unsigned char buf[64 * 1024], want[64 * 1024];
	size_t k, m;
	ssize_t n;
	int i;

	for (i = 0; i < 16 && !s->eof; i++) {
		n = recv(s->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == -1)
			return errno == EAGAIN || errno == EINTR ? 0 : -1;
		if (n == 0) {
			s->eof = 1;
			break;
		}
		m = s->got < s->total ? (size_t)(s->total - s->got) : 0;
		m = m < (size_t)n ? m : (size_t)n;
		stream_bytes(s->seed, s->got, want, m);
		cl_upper(want, m);
		for (k = 0; k < m && s->bad_at < 0; k++)
			if (buf[k] != want[k])
				s->bad_at = (long long)(s->got + k);
		if (m < (size_t)n && s->bad_at < 0)
			s->bad_at = (long long)(s->got + m); /* extra bytes */
		s->got += (unsigned long long)n;
	}
	return 0;
}

int
cl_stream_echo(int fd, unsigned long long total, unsigned long long seed,
    int timeout_ms, char *err, size_t errlen)
{
	long long deadline = h_now_ms() + timeout_ms;
	struct sstate s = { fd, total, seed, 0, 0, 0, 0, -1 };
	struct pollfd pfd = { .fd = fd };
	long iter;
	int rc = 0;

	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	for (iter = 0; !s.eof && s.bad_at < 0 && iter < 100000000L; iter++) {
		if (h_now_ms() >= deadline) {
			errno = ETIMEDOUT;
			rc = -1;
			break;
		}
		pfd.events = (short)(POLLIN | (s.shut ? 0 : POLLOUT));
		if (poll(&pfd, 1, 100) == -1 && errno != EINTR)
			rc = -1;
		if (rc == -1 || sstate_send(&s) == -1 || sstate_recv(&s) == -1) {
			rc = -1;
			break;
		}
	}
	if (rc == 0 && s.eof && s.bad_at < 0 && s.got == total && s.shut)
		return 1;
	snprintf(err, errlen, "stream of %llu bytes: %s; %llu sent, %llu back, "
	    "eof %d, first wrong byte %lld", total, rc == -1 ? strerror(errno) :
	    "ended early", s.sent, s.got, s.eof, s.bad_at);
	return 0;
}

/* Everything fd sends until it closes (or timeout_ms), into buf. */
int
cl_read_all(int fd, char *buf, size_t len, int timeout_ms)
{
	long long deadline = h_now_ms() + timeout_ms;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	size_t got = 0;
	ssize_t n;
	long long left;

	if (len == 0)
		return -1;
	for (;;) {
		left = deadline - h_now_ms();
		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			break;
		n = recv(fd, buf + got, len - 1 - got, MSG_DONTWAIT);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0 || (got += (size_t)n) == len - 1) {
			buf[got] = '\0';
			return n < 0 && got == 0 ? -1 : (int)got;
		}
	}
	buf[got] = '\0';
	return -1; /* no end within timeout_ms */
}

int
cl_http(int port, const char *request, size_t reqlen, char *resp, size_t len,
    int timeout_ms)
{
	int fd, n;

	if ((fd = cl_connect(NULL, "127.0.0.1", port)) == -1)
		return -1;
	if (h_write_all(fd, request, reqlen) == -1) {
		close(fd);
		return -1;
	}
	n = cl_read_all(fd, resp, len, timeout_ms);
	close(fd);
	return n;
}

int
cl_metric(const char *text, const char *sample, unsigned long long *v)
{
	size_t n = strlen(sample);
	const char *p;

	for (p = text; p != NULL && *p != '\0'; p = strchr(p, '\n'),
	    p = p != NULL ? p + 1 : NULL)
		if (strncmp(p, sample, n) == 0 && p[n] == ' ')
			return sscanf(p + n + 1, "%llu", v) == 1 ? 0 : -1;
	return -1;
}

int
cl_metrics_port(struct echod_proc *p, int nth, int nserving)
{
	static char log[1 << 16];
	const char *needle = "metrics: /metrics on 127.0.0.1:", *q, *last;

	if (!cl_log_wait(p, needle, nth, 5000) ||
	    !cl_log_wait(p, "serving /metrics on 127.0.0.1:", nserving, 5000))
		return -1;
	h_log_read(p, log, sizeof(log));
	for (last = NULL, q = log; (q = strstr(q, needle)) != NULL; q++)
		last = q;
	return last != NULL ? atoi(last + strlen(needle)) : -1;
}

int
cl_port_refused_within(int port, int timeout_ms)
{
	long long deadline = h_now_ms() + timeout_ms;

	do {
		if (cl_port_refused(port))
			return 1;
		h_poll_pause();
	} while (h_now_ms() < deadline);
	return 0;
}
