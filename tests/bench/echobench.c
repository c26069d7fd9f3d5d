/*
 * echobench: a load generator for uppercase-echo servers (echod and any
 * server that speaks the same protocol), one process, one epoll loop,
 * non-blocking sockets.
 *
 *   conn      connect, send one line, read its uppercased reply, close:
 *             connections per second, C of them in flight at once
 *   pingpong  C persistent connections, one S-byte message in flight on
 *             each: round trips per second
 *   bulk      C connections streaming, W bytes in flight on each: MB/s
 *   hold      open C idle connections, sample the server's memory, then
 *             check that every one of them still echoes
 *
 * With -P PID, the server's memory (RSS, PSS) and the CPU time its whole
 * process tree spent over the measured seconds (reaped children included;
 * tests/bench/proctree.h) are reported, the latter per operation.
 *
 * Every byte of every reply is compared with the uppercase of what was
 * sent (with -e: with exactly what was sent, for a plain echo server such
 * as inetd's internal echo); a mismatch is an error and makes the exit
 * status non-zero.  A connection counts as open only once a reply came
 * back on it: on loopback a completed handshake only proves that the
 * kernel queued it.
 *
 * It must never talk to anything but loopback (127.0.0.0/8, ::1): other
 * targets are refused.  Every phase has a deadline, so every run ends.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "proctree.h"

#define EX_FAIL 1 /* the run saw errors or measured nothing */
#define EX_USAGE 64
#define EX_OSERR 71

#define NS_PER_US 1000ULL
#define NS_PER_MS 1000000ULL
#define NS_PER_S 1000000000ULL

#define PATTERN_MIN (1u << 20) /* payload pattern, bytes (at least) */
#define RECV_BUF (256u << 10)  /* one shared receive buffer */
#define SEND_MAX (256u << 10)  /* most bytes handed to one send() */
#define PROBE_LEN 64           /* bulk: the bytes that prove a connection */
#define SETUP_INFLIGHT 256     /* connections being opened at once */
#define SETUP_TIMEOUT_NS (15 * NS_PER_S)
#define OP_TIMEOUT_NS (5 * NS_PER_S) /* no progress for this long: error */
#define STALL_NS (2 * NS_PER_S)      /* ... or for this long at the end */
#define CHECK_TIMEOUT_NS (10 * NS_PER_S)
#define RETRY_NS (10 * NS_PER_MS) /* after an error, before reconnecting */
#define SWEEP_NS (100 * NS_PER_MS)
#define MAX_EVENTS 1024
#define MAX_SIZE (1u << 20)
#define MAX_WINDOW (1u << 30)
#define MAX_CONNS 1000000
#define MAX_SOURCES 253 /* 127.0.0.2 .. 127.0.0.254 */

/*
 * Latency histogram, log-linear (as HdrHistogram): values below 2 * SUB
 * nanoseconds have a bucket each; above, every power of two is split into
 * SUB linear buckets, so a bucket is at most 1/SUB (3%) of its value wide.
 */
#define HIST_SUB_BITS 5
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_MAX_SHIFT 40 /* up to 2^46 ns, 19 hours */
#define HIST_BUCKETS ((HIST_MAX_SHIFT + 2) * HIST_SUB)

struct hist {
	uint64_t n;
	uint64_t b[HIST_BUCKETS];
};

enum mode { M_CONN, M_PINGPONG, M_BULK, M_HOLD };
static const char *const mode_names[] = {"conn", "pingpong", "bulk", "hold"};

enum phase { PH_SETUP, PH_WARMUP, PH_RUN, PH_HOLD, PH_CHECK, PH_DONE };
static const char *const phase_names[] = {
    "setup", "warm-up", "run", "hold", "check", "done"};

enum err_kind {
	E_REFUSED,
	E_RESET,
	E_EOF,
	E_TIMEOUT,
	E_MISMATCH,
	E_PORTS,
	E_OTHER,
	E_KINDS
};
static const char *const err_names[] = {"refused", "reset", "closed by server",
    "timeout", "mismatch", "no source port", "other"};

struct opts {
	enum mode mode;
	struct sockaddr_storage dst;
	socklen_t dstlen;
	char target[80];
	unsigned conns;
	size_t size;
	size_t window;
	double secs;
	double warmup;
	unsigned nsrc;
	pid_t pid;
	bool plain; /* -e: replies are what was sent, not uppercased */
};

enum bc_state { BC_FREE, BC_WAIT, BC_CONNECTING, BC_BUSY, BC_PARKED };

/* One client connection; in conn mode a slot reused connection after
 * connection.  Its bytes are a stream that starts at pattern[base]. */
struct bconn {
	int fd;
	uint32_t gen;    /* bumped on close: stale events are ignored */
	uint32_t events; /* the epoll interest registered now */
	enum bc_state state;
	bool open; /* a reply came back on this connection */
	uint64_t base;
	uint64_t sent, rcvd; /* stream offsets */
	uint64_t goal;       /* send up to here (UINT64_MAX: stream) */
	uint64_t window;     /* most bytes in flight */
	uint64_t t0;         /* ns: the operation began */
	uint64_t tlast;      /* ns: the last progress */
	uint64_t retry_at;
};

struct mem {
	bool ok;
	long rss_kb, pss_kb;
	int nproc;
};

/* The server tree's CPU time so far (proctree.h). */
struct cpu {
	bool ok;
	unsigned long long ns;
	int nproc;
	int nticked; /* processes whose figure rests on rounded ticks */
};

struct stats {
	uint64_t ops;   /* completed operations (bulk: bytes) */
	uint64_t bytes; /* payload bytes echoed and checked */
	uint64_t err[E_KINDS];
	int other_errno; /* the last errno counted as "other" */
	struct hist lat;
};

struct bench {
	struct opts o;
	int ep;
	struct bconn *c;
	enum phase phase;
	uint64_t deadline; /* of the current phase */
	uint64_t t_begin, t_run, t_end;
	uint64_t next_sweep, next_retry, next_progress, progress_ops;
	bool tty, interrupted;
	unsigned char *pat, *upat; /* doubled: any P bytes are contiguous */
	size_t plen;
	unsigned char *rbuf;
	uint64_t next_base, nstarted;
	unsigned nopen, nwait, inflight, next_setup;
	unsigned nsetup_failed, ncheck, nchecked, ncheck_failed, nheld;
	struct stats st;
	struct mem before, after;
	struct cpu cpu0, cpu1; /* at the start and end of what is measured */
	bool mismatch_shown;
};

static volatile sig_atomic_t stop_flag;

static void
on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static void warnx_(const char *, ...) __attribute__((format(printf, 1, 2)));

static void
warnx_(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("echobench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* ---- histogram (pure) ---- */

static unsigned
hist_index(uint64_t v)
{
	unsigned shift;

	if (v < 2 * HIST_SUB)
		return (unsigned)v;
	shift = (unsigned)(63 - __builtin_clzll(v)) - HIST_SUB_BITS;
	if (shift > HIST_MAX_SHIFT)
		return HIST_BUCKETS - 1;
	return shift * HIST_SUB + (unsigned)(v >> shift);
}

/* The middle of bucket i. */
static uint64_t
hist_value(unsigned i)
{
	unsigned shift;
	uint64_t m;

	if (i < 2 * HIST_SUB)
		return i;
	shift = i / HIST_SUB - 1;
	m = i - shift * HIST_SUB;
	return (m << shift) + ((1ULL << shift) >> 1);
}

static void
hist_add(struct hist *h, uint64_t v)
{
	h->b[hist_index(v)]++;
	h->n++;
}

/* The value below which a fraction q of the samples lie. */
static uint64_t
hist_quantile(const struct hist *h, double q)
{
	uint64_t want, seen = 0;
	unsigned i;

	if (h->n == 0)
		return 0;
	want = (uint64_t)(q * (double)h->n + 0.999999);
	if (want < 1)
		want = 1;
	for (i = 0; i < HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= want)
			return hist_value(i);
	}
	return hist_value(HIST_BUCKETS - 1);
}

/* ---- payload ---- */

static unsigned char
upper(unsigned char c)
{
	return c >= 'a' && c <= 'z' ? (unsigned char)(c - 'a' + 'A') : c;
}

static uint64_t
rng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

/*
 * Mostly lowercase letters (work for the server), and some of everything
 * that must pass untouched: capitals, digits, punctuation, NUL, CR, bytes
 * from 0x80 up.  In line modes LF only ends a message.
 */
static unsigned char
payload_byte(uint64_t *s, bool lines)
{
	uint64_t r = rng_next(s);
	unsigned v = (unsigned)(r >> 16);
	unsigned char c;

	switch (r & 15) {
	case 10:
	case 11:
		c = (unsigned char)('A' + v % 26);
		break;
	case 12:
		c = (unsigned char)('0' + v % 10);
		break;
	case 13:
		c = (unsigned char)(' ' + v % 95);
		break;
	case 14:
		c = (unsigned char)(0x80 + v % 128);
		break;
	case 15:
		c = (unsigned char)v;
		break;
	default:
		c = (unsigned char)('a' + v % 26);
	}
	return lines && c == '\n' ? 'n' : c;
}

/*
 * In line modes the pattern is a whole number of S-byte lines, each ending
 * in LF, and every message starts on a line boundary.
 */
static int
pattern_build(struct bench *b)
{
	bool lines = b->o.mode != M_BULK;
	size_t s = b->o.size, p, k;
	uint64_t seed = 0x9E3779B97F4A7C15ULL;

	p = lines ? (PATTERN_MIN + s - 1) / s * s : PATTERN_MIN;
	if ((b->pat = malloc(2 * p)) == NULL ||
	    (b->upat = malloc(2 * p)) == NULL)
		return -1;
	for (k = 0; k < p; k++)
		b->pat[k] =
		    lines && k % s == s - 1 ? '\n' : payload_byte(&seed, lines);
	memcpy(b->pat + p, b->pat, p);
	for (k = 0; k < 2 * p; k++)
		b->upat[k] = b->o.plain ? b->pat[k] : upper(b->pat[k]);
	b->plen = p;
	return 0;
}

/* ---- the server's process tree from /proc ---- */

/* Every process (pid, ppid, CPU time), the server's tree marked. */
struct procs {
	long n, nmember;
	pid_t *pid, *ppid;
	unsigned long long *ns; /* pt_proc_ns */
	bool *ticked, *member;
};

static void
procs_free(struct procs *ps)
{
	free(ps->pid);
	free(ps->ppid);
	free(ps->ns);
	free(ps->ticked);
	free(ps->member);
	memset(ps, 0, sizeof(*ps));
}

static int
read_stat(const char *pid, struct pt_stat *st)
{
	char path[64], buf[1024];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%s/stat", pid);
	if ((f = fopen(path, "re")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return pt_stat_parse(buf, st);
}

/* The main thread's run time in ns (/proc/PID/schedstat), or -1. */
static long long
read_sched_ns(pid_t pid)
{
	char path[64];
	long long ns;
	FILE *f;
	int n;

	snprintf(path, sizeof(path), "/proc/%d/schedstat", (int)pid);
	if ((f = fopen(path, "re")) == NULL)
		return -1;
	n = fscanf(f, "%lld", &ns);
	fclose(f);
	return n == 1 ? ns : -1;
}

static int
procs_grow(struct procs *ps, size_t cap)
{
	pid_t *a, *b;
	unsigned long long *t;
	bool *k;

	if ((a = realloc(ps->pid, cap * sizeof(*a))) != NULL)
		ps->pid = a;
	if ((b = realloc(ps->ppid, cap * sizeof(*b))) != NULL)
		ps->ppid = b;
	if ((t = realloc(ps->ns, cap * sizeof(*t))) != NULL)
		ps->ns = t;
	if ((k = realloc(ps->ticked, cap * sizeof(*k))) != NULL)
		ps->ticked = k;
	return a == NULL || b == NULL || t == NULL || k == NULL ? -1 : 0;
}

/*
 * Every process in /proc, root's tree marked (pt_tree); 0, or -1.  With
 * cpu, also each one's CPU time (a second read, of schedstat: only the
 * server's processes would need it, but they are known only at the end).
 */
static int
procs_scan(pid_t root, struct procs *ps, bool cpu)
{
	long hz = sysconf(_SC_CLK_TCK);
	struct dirent *d;
	struct pt_stat st;
	size_t cap = 0;
	DIR *dir;

	memset(ps, 0, sizeof(*ps));
	if ((dir = opendir("/proc")) == NULL)
		return -1;
	while ((d = readdir(dir)) != NULL) {
		if (d->d_name[0] < '1' || d->d_name[0] > '9' ||
		    read_stat(d->d_name, &st) == -1)
			continue;
		if ((size_t)ps->n == cap &&
		    procs_grow(ps, cap = cap ? 2 * cap : 512) == -1)
			break;
		ps->pid[ps->n] = (pid_t)atoi(d->d_name);
		ps->ppid[ps->n] = st.ppid;
		ps->ns[ps->n] = 0;
		ps->ticked[ps->n] = false;
		if (cpu)
			ps->ns[ps->n] = pt_proc_ns(&st, hz,
			    read_sched_ns(ps->pid[ps->n]), &ps->ticked[ps->n]);
		ps->n++;
	}
	closedir(dir);
	if (ps->n == 0 ||
	    (ps->member = calloc((size_t)ps->n, sizeof(bool))) == NULL) {
		procs_free(ps);
		return -1;
	}
	ps->nmember = pt_tree(ps->pid, ps->ppid, ps->n, root, ps->member);
	return ps->nmember > 0 ? 0 : -1;
}

static int
add_rollup(pid_t pid, struct mem *m)
{
	char path[64], line[256];
	long kb;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
	if ((f = fopen(path, "re")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "Rss: %ld kB", &kb) == 1)
			m->rss_kb += kb;
		else if (sscanf(line, "Pss: %ld kB", &kb) == 1)
			m->pss_kb += kb;
	}
	fclose(f);
	m->nproc++;
	return 0;
}

/*
 * RSS and PSS summed over pid and its descendants (PSS splits shared pages
 * between the processes that map them, so its sum counts each page once).
 * User space only: socket buffers live in the kernel and are not here.
 */
static void
mem_measure(pid_t pid, struct mem *m)
{
	struct procs ps;
	long i;

	memset(m, 0, sizeof(*m));
	if (procs_scan(pid, &ps, false) == -1)
		return;
	m->ok = add_rollup(pid, m) == 0;
	for (i = 0; i < ps.n; i++)
		if (ps.member[i] && ps.pid[i] != pid)
			(void)add_rollup(ps.pid[i], m); /* may just have exited */
	procs_free(&ps);
}

/*
 * The CPU time the server's tree has spent so far, in clock ticks
 * (proctree.h says why the sum of live processes with their reaped
 * children's time is that).
 */
static void
cpu_measure(pid_t pid, struct cpu *c)
{
	struct procs ps;
	long i;

	memset(c, 0, sizeof(*c));
	if (procs_scan(pid, &ps, true) == -1)
		return;
	for (i = 0; i < ps.n; i++)
		if (ps.member[i]) {
			c->ns += ps.ns[i];
			c->nticked += ps.ticked[i];
		}
	c->nproc = (int)ps.nmember;
	c->ok = true;
	procs_free(&ps);
}

/* ---- connections ---- */

static bool
may_retry(const struct bench *b)
{
	switch (b->phase) {
	case PH_WARMUP:
	case PH_RUN:
		return b->o.mode != M_HOLD;
	default:
		return false;
	}
}

static enum err_kind
classify(int err)
{
	switch (err) {
	case ECONNREFUSED:
		return E_REFUSED;
	case ECONNRESET:
	case EPIPE:
	case ECONNABORTED:
		return E_RESET;
	case ETIMEDOUT:
		return E_TIMEOUT;
	case EADDRNOTAVAIL:
	case EADDRINUSE:
		return E_PORTS;
	default:
		return E_OTHER;
	}
}

static void
set_interest(struct bench *b, struct bconn *c, uint32_t ev)
{
	struct epoll_event e;

	if (c->events == ev)
		return;
	e.events = ev;
	e.data.u64 = (uint64_t)c->gen << 32 | (uint64_t)(c - b->c);
	if (epoll_ctl(b->ep, EPOLL_CTL_MOD, c->fd, &e) == 0)
		c->events = ev;
}

static void
conn_close(struct bconn *c)
{
	if (c->fd != -1)
		close(c->fd); /* also leaves the epoll set: never dup'ed */
	c->fd = -1;
	c->gen++;
	c->events = 0;
	c->sent = c->rcvd = 0;
	c->state = BC_FREE;
}

static void
count_error(struct bench *b, enum err_kind k, int err)
{
	b->st.err[k]++;
	if (k == E_OTHER)
		b->st.other_errno = err;
}

/* An error on c: count it, close it, and reconnect later if the phase
 * still wants connections. */
static void
conn_fail(struct bench *b, struct bconn *c, enum err_kind k, int err)
{
	count_error(b, k, err);
	if (b->phase == PH_CHECK && c->state == BC_BUSY)
		b->ncheck_failed++;
	if (b->phase == PH_SETUP) { /* not retried: it counts as failed */
		if (!c->open)
			b->inflight--;
		b->nsetup_failed++;
	}
	if (c->open) {
		c->open = false;
		b->nopen--;
	}
	conn_close(c);
	if (may_retry(b)) {
		c->state = BC_WAIT;
		c->retry_at = now_ns() + RETRY_NS;
		b->nwait++;
	}
}

/* Send what the window and the goal allow; watch for EPOLLOUT only while
 * the kernel refuses more. */
static int
conn_pump(struct bench *b, struct bconn *c)
{
	uint64_t lim, pos, want;
	ssize_t w;

	for (;;) {
		lim = c->rcvd + c->window;
		if (lim > c->goal)
			lim = c->goal;
		if (c->sent >= lim)
			break;
		want = lim - c->sent;
		if (want > SEND_MAX)
			want = SEND_MAX;
		pos = (c->base + c->sent) % b->plen;
		w = send(
		    c->fd, b->pat + pos, want, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w == -1 && errno == EINTR)
			continue;
		if (w == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			set_interest(b, c, EPOLLIN | EPOLLOUT);
			return 0;
		}
		if (w == -1) {
			conn_fail(b, c, classify(errno), errno);
			return -1;
		}
		c->sent += (uint64_t)w;
		c->tlast = now_ns();
	}
	set_interest(b, c, EPOLLIN);
	return 0;
}

/* One message of n bytes, all of it in flight.  In conn mode the clock
 * started at connect(). */
static int
msg_start(struct bench *b, struct bconn *c, uint64_t n)
{
	c->state = BC_BUSY;
	c->tlast = now_ns();
	if (b->o.mode != M_CONN)
		c->t0 = c->tlast;
	c->goal = c->sent + n;
	c->window = n;
	return conn_pump(b, c);
}

static int
stream_start(struct bench *b, struct bconn *c)
{
	c->state = BC_BUSY;
	c->t0 = c->tlast = now_ns();
	c->goal = UINT64_MAX;
	c->window = b->o.window;
	return conn_pump(b, c);
}

/* The first thing a connection does: it opens only with a reply. */
static int
conn_begin_work(struct bench *b, struct bconn *c)
{
	bool working = b->phase == PH_WARMUP || b->phase == PH_RUN;

	switch (b->o.mode) {
	case M_BULK:
		if (working)
			return stream_start(b, c);
		return msg_start(
		    b, c, b->o.window < PROBE_LEN ? b->o.window : PROBE_LEN);
	default:
		return msg_start(b, c, b->o.size);
	}
}

/*
 * Binding before connect() spreads connections over several source
 * addresses.  The client closes first, so TIME_WAIT stays on the client
 * side, one per connection.  Even with loopback TIME_WAIT reuse
 * (net.ipv4.tcp_tw_reuse) one source address runs out of its ~28k
 * ephemeral ports near 14k connections per second, and connect() slows
 * down searching for a free one.  SO_LINGER with a zero timeout would
 * avoid TIME_WAIT, but by resetting every connection: the server would
 * see aborts, not the clean closes being measured.  IP_BIND_ADDRESS_NO_PORT
 * leaves the port choice to connect(), which may reuse a port towards
 * another destination.
 */
static int
bind_source(int fd, uint64_t i, unsigned nsrc)
{
	struct sockaddr_in sin;
	int one = 1;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(0x7F000002u + (uint32_t)(i % nsrc));
	(void)setsockopt(
	    fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	return bind(fd, (struct sockaddr *)&sin, sizeof(sin));
}

static void
conn_start(struct bench *b, struct bconn *c)
{
	struct epoll_event e;
	int fd, one = 1;

	c->sent = c->rcvd = 0;
	if (b->o.mode == M_CONN) {
		c->base = b->next_base;
		b->next_base = (b->next_base + b->o.size) % b->plen;
	}
	fd = socket(
	    b->o.dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		conn_fail(b, c, classify(errno), errno);
		return;
	}
	c->fd = fd;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->t0 = c->tlast = now_ns();
	if ((b->o.nsrc > 0 && bind_source(fd, b->nstarted, b->o.nsrc) == -1) ||
	    (connect(fd, (struct sockaddr *)&b->o.dst, b->o.dstlen) == -1 &&
	        errno != EINPROGRESS)) {
		conn_fail(b, c, classify(errno), errno);
		return;
	}
	b->nstarted++;
	e.events = EPOLLOUT;
	e.data.u64 = (uint64_t)c->gen << 32 | (uint64_t)(c - b->c);
	if (epoll_ctl(b->ep, EPOLL_CTL_ADD, fd, &e) == -1) {
		conn_fail(b, c, E_OTHER, errno);
		return;
	}
	c->events = EPOLLOUT;
	c->state = BC_CONNECTING;
}

static void
conn_connected(struct bench *b, struct bconn *c)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	if (err != 0) {
		conn_fail(b, c, classify(err), err);
		return;
	}
	(void)conn_begin_work(b, c); /* conn_pump sets the epoll interest */
}

static void
record(struct bench *b, uint64_t t0, uint64_t n)
{
	if (b->phase != PH_RUN && b->phase != PH_CHECK)
		return;
	hist_add(&b->st.lat, now_ns() - t0);
	b->st.ops++;
	b->st.bytes += n;
}

/* A whole reply came back (never called in bulk streaming). */
static void
conn_replied(struct bench *b, struct bconn *c)
{
	if (!c->open) {
		c->open = true;
		b->nopen++;
	}
	if (b->o.mode == M_CONN) {
		record(b, c->t0, b->o.size);
		conn_close(c);
		if (b->phase == PH_WARMUP || b->phase == PH_RUN)
			conn_start(b, c);
		return;
	}
	switch (b->phase) {
	case PH_SETUP:
		b->inflight--;
		break;
	case PH_CHECK:
		record(b, c->t0, b->o.size);
		b->nchecked++;
		break;
	case PH_WARMUP:
	case PH_RUN:
		if (b->o.mode == M_PINGPONG) {
			record(b, c->t0, b->o.size);
			(void)msg_start(b, c, b->o.size);
			return;
		}
		if (b->o.mode == M_BULK) { /* a reconnection's probe */
			(void)stream_start(b, c);
			return;
		}
		break;
	default:
		break;
	}
	c->state = BC_PARKED;
}

static void
show_mismatch(struct bench *b, const struct bconn *c, uint64_t off,
    const unsigned char *got, const unsigned char *want, size_t n)
{
	size_t i = 0;

	if (b->mismatch_shown)
		return;
	b->mismatch_shown = true;
	while (i < n && got[i] == want[i])
		i++;
	warnx_("mismatch on connection %td at stream offset %" PRIu64
	       ": sent 0x%02x, expected 0x%02x, got 0x%02x",
	    c - b->c, off + i, b->pat[(c->base + off + i) % b->plen],
	    i < n ? want[i] : 0, i < n ? got[i] : 0);
}

/* Check n received bytes; returns false (and fails c) on a mismatch. */
static bool
verify(struct bench *b, struct bconn *c, size_t n)
{
	uint64_t pos = (c->base + c->rcvd) % b->plen;
	uint64_t owed = c->sent - c->rcvd;

	if (n > owed) {
		if (!b->mismatch_shown)
			warnx_("connection %td: %zu bytes more than were sent",
			    c - b->c, n - (size_t)owed);
		b->mismatch_shown = true;
		conn_fail(b, c, E_MISMATCH, 0);
		return false;
	}
	if (memcmp(b->rbuf, b->upat + pos, n) != 0) {
		show_mismatch(b, c, c->rcvd, b->rbuf, b->upat + pos, n);
		conn_fail(b, c, E_MISMATCH, 0);
		return false;
	}
	return true;
}

/* Read what is there; returns -1 once c has been closed or reopened. */
static int
conn_read(struct bench *b, struct bconn *c)
{
	uint32_t gen = c->gen;
	ssize_t r;

	do {
		r = recv(c->fd, b->rbuf, RECV_BUF, MSG_DONTWAIT);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (r == -1) {
			conn_fail(b, c, classify(errno), errno);
			return -1;
		}
		if (r == 0) {
			conn_fail(b, c, E_EOF, 0);
			return -1;
		}
		if (!verify(b, c, (size_t)r))
			return -1;
		c->rcvd += (uint64_t)r;
		c->tlast = now_ns();
		if (!c->open && c->goal == UINT64_MAX) {
			c->open = true;
			b->nopen++;
		}
		if (b->o.mode == M_BULK && b->phase == PH_RUN) {
			b->st.ops += (uint64_t)r;
			b->st.bytes += (uint64_t)r;
		}
		if (c->rcvd == c->goal)
			conn_replied(b, c);
		else if (c->goal == UINT64_MAX && conn_pump(b, c) == -1)
			return -1;
		if (c->gen != gen || c->fd == -1)
			return -1;
	} while ((size_t)r == RECV_BUF);
	return 0;
}

static void
on_event(struct bench *b, uint64_t data, uint32_t ev)
{
	uint32_t idx = (uint32_t)data, gen = (uint32_t)(data >> 32);
	struct bconn *c;

	if (idx >= b->o.conns)
		return;
	c = &b->c[idx];
	if (c->gen != gen || c->fd == -1)
		return; /* an event for a connection closed in this batch */
	if (c->state == BC_CONNECTING) {
		conn_connected(b, c);
		return;
	}
	if ((ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) && conn_read(b, c) == -1)
		return;
	if ((ev & EPOLLOUT) && c->state == BC_BUSY)
		(void)conn_pump(b, c);
}

/* ---- phases ---- */

static void
launch_setup(struct bench *b)
{
	while (b->phase == PH_SETUP && b->inflight < SETUP_INFLIGHT &&
	    b->next_setup < b->o.conns) {
		b->inflight++;
		conn_start(b, &b->c[b->next_setup++]);
	}
}

static void
enter(struct bench *b, enum phase ph, uint64_t now, double secs)
{
	b->phase = ph;
	b->deadline = now + (uint64_t)(secs * (double)NS_PER_S);
}

/* Give up on whatever did not open in time; start the workload. */
static void
end_setup(struct bench *b, uint64_t now)
{
	unsigned i;

	for (i = 0; i < b->o.conns; i++) {
		struct bconn *c = &b->c[i];

		if (c->open)
			continue;
		/* still connecting, or never started: failures were counted */
		if (c->state != BC_FREE || i >= b->next_setup)
			count_error(b, E_TIMEOUT, 0);
		conn_close(c);
	}
	if (b->nopen < b->o.conns)
		warnx_(
		    "only %u of %u connections opened", b->nopen, b->o.conns);
	if (b->nopen == 0) { /* nothing to measure */
		b->phase = PH_DONE;
		return;
	}
	if (b->o.mode == M_HOLD) { /* the set-up is what is timed */
		b->t_run = b->t_begin;
		b->t_end = now;
		if (b->o.pid > 0)
			cpu_measure(b->o.pid, &b->cpu1);
		enter(b, PH_HOLD, now, b->o.secs);
		return;
	}
	enter(b, PH_WARMUP, now, b->o.warmup);
	for (i = 0; i < b->o.conns; i++)
		if (b->c[i].state == BC_PARKED)
			(void)(b->o.mode == M_BULK
			        ? stream_start(b, &b->c[i])
			        : msg_start(b, &b->c[i], b->o.size));
}

static void
start_check(struct bench *b, uint64_t now)
{
	unsigned i;

	if (b->o.pid > 0)
		mem_measure(b->o.pid, &b->after);
	b->nheld = b->nopen;
	enter(b, PH_CHECK, now, (double)CHECK_TIMEOUT_NS / NS_PER_S);
	for (i = 0; i < b->o.conns; i++)
		if (b->c[i].state == BC_PARKED) {
			b->ncheck++;
			(void)msg_start(b, &b->c[i], b->o.size);
		}
}

static void
end_check(struct bench *b)
{
	unsigned i;

	for (i = 0; i < b->o.conns; i++)
		if (b->c[i].state == BC_BUSY) {
			count_error(b, E_TIMEOUT, 0);
			b->ncheck_failed++;
		}
}

/*
 * A reply owed for over STALL_NS when the clock stops is a failure, not an
 * operation that just missed the end; the sweep only catches stalls
 * longer than OP_TIMEOUT_NS.
 */
static void
end_run(struct bench *b, uint64_t now)
{
	unsigned i;

	for (i = 0; i < b->o.conns; i++)
		if ((b->c[i].state == BC_CONNECTING ||
		        b->c[i].state == BC_BUSY) &&
		    now - b->c[i].tlast > STALL_NS)
			count_error(b, E_TIMEOUT, 0);
	b->t_end = now;
	if (b->o.pid > 0) {
		cpu_measure(b->o.pid, &b->cpu1);
		mem_measure(b->o.pid, &b->after);
	}
}

static void
advance(struct bench *b, uint64_t now)
{
	bool due = now >= b->deadline;

	if (stop_flag) { /* report what was measured so far */
		b->interrupted = true;
		if (b->phase == PH_RUN)
			end_run(b, now);
		b->phase = PH_DONE;
		return;
	}
	switch (b->phase) {
	case PH_SETUP:
		if (due || b->nopen + b->nsetup_failed >= b->o.conns)
			end_setup(b, now);
		break;
	case PH_WARMUP:
		if (due) {
			memset(&b->st.lat, 0, sizeof(b->st.lat));
			b->st.ops = b->st.bytes = 0;
			if (b->o.pid > 0) { /* the clock starts after the sample */
				cpu_measure(b->o.pid, &b->cpu0);
				now = now_ns();
			}
			b->t_run = now;
			enter(b, PH_RUN, now, b->o.secs);
		}
		break;
	case PH_RUN:
		if (due) {
			end_run(b, now);
			b->phase = PH_DONE;
		}
		break;
	case PH_HOLD:
		if (due)
			start_check(b, now);
		break;
	case PH_CHECK:
		if (due || b->nchecked + b->ncheck_failed >= b->ncheck) {
			end_check(b);
			b->phase = PH_DONE;
		}
		break;
	case PH_DONE:
		break;
	}
}

/* Reconnect what waited long enough; fail what made no progress. */
static void
sweep(struct bench *b, uint64_t now, bool stalls)
{
	unsigned i;

	for (i = 0; i < b->o.conns; i++) {
		struct bconn *c = &b->c[i];

		if (c->state == BC_WAIT && now >= c->retry_at) {
			b->nwait--;
			c->state = BC_FREE;
			if (may_retry(b))
				conn_start(b, c);
		} else if (stalls &&
		    (c->state == BC_CONNECTING || c->state == BC_BUSY) &&
		    now - c->tlast > OP_TIMEOUT_NS) {
			conn_fail(b, c, E_TIMEOUT, 0);
		}
	}
}

static void
progress(struct bench *b, uint64_t now)
{
	double t = (double)(now - b->t_begin) / NS_PER_S;
	uint64_t errs = 0;
	int k;

	for (k = 0; k < E_KINDS; k++)
		errs += b->st.err[k];
	if (b->phase == PH_RUN)
		fprintf(stderr,
		    "\r%6.1f s  %-7s  %" PRIu64 " ops, %" PRIu64
		    "/s, %u open, %" PRIu64 " errors\033[K",
		    t, phase_names[b->phase], b->st.ops,
		    b->st.ops - b->progress_ops, b->nopen, errs);
	else
		fprintf(stderr,
		    "\r%6.1f s  %-7s  %u open, %" PRIu64 " errors\033[K", t,
		    phase_names[b->phase], b->nopen, errs);
	b->progress_ops = b->st.ops;
}

static int
wait_ms(const struct bench *b, uint64_t now)
{
	uint64_t until = b->deadline;

	if (b->next_sweep < until)
		until = b->next_sweep;
	if (b->nwait > 0 && b->next_retry < until)
		until = b->next_retry;
	if (b->tty && b->next_progress < until)
		until = b->next_progress;
	if (until <= now)
		return 0;
	return (int)((until - now + NS_PER_MS - 1) / NS_PER_MS);
}

static void
tick(struct bench *b, uint64_t now)
{
	bool stalls = now >= b->next_sweep;

	if (stalls || (b->nwait > 0 && now >= b->next_retry)) {
		sweep(b, now, stalls);
		b->next_retry = now + RETRY_NS / 2;
		if (stalls)
			b->next_sweep = now + SWEEP_NS;
	}
	if (b->phase == PH_SETUP)
		launch_setup(b);
	advance(b, now);
	if (b->tty && now >= b->next_progress && b->phase != PH_DONE) {
		progress(b, now);
		b->next_progress = now + NS_PER_S;
	}
}

static void
run(struct bench *b)
{
	struct epoll_event ev[MAX_EVENTS];
	uint64_t now = now_ns();
	unsigned i;
	int n, k;

	b->t_begin = now;
	b->next_sweep = now + SWEEP_NS;
	b->next_progress = now + NS_PER_S;
	if (b->o.mode == M_CONN) {
		enter(b, PH_WARMUP, now, b->o.warmup);
		for (i = 0; i < b->o.conns; i++)
			conn_start(b, &b->c[i]);
	} else {
		enter(b, PH_SETUP, now, (double)SETUP_TIMEOUT_NS / NS_PER_S);
	}
	while (b->phase != PH_DONE) {
		n = epoll_wait(b->ep, ev, MAX_EVENTS, wait_ms(b, now));
		if (n == -1 && errno != EINTR) {
			warnx_("epoll_wait: %s", strerror(errno));
			b->interrupted = true;
			break;
		}
		for (k = 0; k < n; k++)
			on_event(b, ev[k].data.u64, ev[k].events);
		now = now_ns();
		tick(b, now);
	}
	if (b->tty)
		fputs("\r\033[K", stderr);
	for (i = 0; i < b->o.conns; i++)
		conn_close(&b->c[i]);
}

/* ---- report ---- */

static uint64_t
total_errors(const struct stats *st)
{
	uint64_t n = 0;
	int k;

	for (k = 0; k < E_KINDS; k++)
		n += st->err[k];
	return n;
}

static double
elapsed_s(const struct bench *b)
{
	return (double)(b->t_end - b->t_run) / NS_PER_S;
}

static void
fmt_us(char *buf, size_t len, const struct hist *h, double q)
{
	if (h->n == 0)
		snprintf(buf, len, "-");
	else
		snprintf(
		    buf, len, "%.1f", (double)hist_quantile(h, q) / NS_PER_US);
}

static void
fmt_mem(char *rss, char *pss, char *per, size_t len, const struct bench *b)
{
	snprintf(rss, len, "-");
	snprintf(pss, len, "-");
	snprintf(per, len, "-");
	if (!b->after.ok)
		return;
	snprintf(rss, len, "%ld", b->after.rss_kb);
	snprintf(pss, len, "%ld", b->after.pss_kb);
	/* Only idle connections say what a connection costs. */
	if (b->o.mode == M_HOLD && b->before.ok && b->nheld > 0)
		snprintf(per, len, "%.0f",
		    (double)(b->after.pss_kb - b->before.pss_kb) * 1024.0 /
		        b->nheld);
}

/*
 * The server's CPU time over what was measured, and per operation: per
 * connection (conn; hold: per connection opened, the set-up being what
 * hold times), per round trip (pingpong), per MB echoed (bulk).
 */
static const char *const cpu_units[] = {"conn", "rt", "MB", "conn"};

static void
fmt_cpu(char *total, char *per, char *coarse, size_t len,
    const struct bench *b)
{
	long hz = sysconf(_SC_CLK_TCK);
	double units, us, lost;

	snprintf(total, len, "-");
	snprintf(per, len, "-");
	snprintf(coarse, len, "-");
	if (!b->cpu0.ok || !b->cpu1.ok || b->cpu1.ns < b->cpu0.ns)
		return;
	snprintf(total, len, "%.3f", (double)(b->cpu1.ns - b->cpu0.ns) / 1e9);
	/* Rounding can lose up to two ticks per ticked process and sample:
	 * coarse when that could be a tenth of the figure. */
	lost = hz > 0 ? 2.0 * (b->cpu0.nticked + b->cpu1.nticked) / hz : 0;
	snprintf(coarse, len, "%d",
	    lost * 10 > (double)(b->cpu1.ns - b->cpu0.ns) / 1e9);
	if (b->o.mode == M_HOLD)
		units = b->nheld > 0 ? b->nheld : b->nopen;
	else if (b->o.mode == M_BULK)
		units = (double)b->st.bytes / 1e6;
	else
		units = (double)b->st.ops;
	if ((us = pt_us_per(b->cpu0.ns, b->cpu1.ns, units)) >= 0)
		snprintf(per, len, "%.*f", us < 10 ? 2 : 1, us);
}

static void
print_errors(const struct stats *st)
{
	const char *sep = ": ";
	int k;

	printf("  errors    %" PRIu64, total_errors(st));
	for (k = 0; k < E_KINDS; k++)
		if (st->err[k] > 0) {
			printf("%s%s %" PRIu64, sep, err_names[k], st->err[k]);
			sep = ", ";
		}
	if (st->err[E_OTHER] > 0)
		printf(" (last: %s)", strerror(st->other_errno));
	printf(" (whole run)\n");
	if (st->err[E_PORTS] > 0)
		printf(
		    "            out of source ports: spread them with -s N\n");
}

static void
print_header(const struct bench *b)
{
	printf("echobench %s to %s: %u connections", mode_names[b->o.mode],
	    b->o.target, b->o.conns);
	if (b->o.mode == M_BULK)
		printf(", %zu bytes in flight on each", b->o.window);
	else
		printf(", %zu-byte messages", b->o.size);
	if (b->o.nsrc > 0)
		printf(", %u source addresses", b->o.nsrc);
	if (b->o.plain)
		printf(", plain echo");
	printf("%s\n", b->interrupted ? " (interrupted)" : "");
}

static void
print_human(const struct bench *b, double secs, double rate)
{
	static const char *const what[] = {
	    "connections", "round trips", "bytes", ""};
	static const char *const lat[] = {
	    "connect to reply", "round trip", "", "check round trip"};
	char p50[32], p99[32], p999[32], rss[32], pss[32], per[32];

	fmt_us(p50, sizeof(p50), &b->st.lat, 0.50);
	fmt_us(p99, sizeof(p99), &b->st.lat, 0.99);
	fmt_us(p999, sizeof(p999), &b->st.lat, 0.999);
	fmt_mem(rss, pss, per, sizeof(rss), b);
	print_header(b);
	if (b->o.mode == M_HOLD) {
		printf("  opened    %u in %.2f s (%.1f/s), held %.1f s\n",
		    b->nheld, secs, rate, b->o.secs);
		printf("  checked   %u of %u still echo\n", b->nchecked,
		    b->ncheck);
	} else {
		printf("  measured  %.2f s after %.2f s warm-up\n", secs,
		    b->o.warmup);
		printf("  done      %" PRIu64 " %s, %.1f/s, %.2f MB/s echoed\n",
		    b->st.ops, what[b->o.mode], rate,
		    secs > 0 ? b->st.bytes / secs / 1e6 : 0);
	}
	if (b->st.lat.n > 0)
		printf("  latency   p50 %s us, p99 %s us, p99.9 %s us (%s)\n",
		    p50, p99, p999, lat[b->o.mode]);
	print_errors(&b->st);
	if (b->o.pid > 0)
		printf("  server    pid %d, %d processes: rss %s kB, pss %s kB"
		       " (before: %ld kB)%s%s\n",
		    (int)b->o.pid, b->after.nproc, rss, pss, b->before.pss_kb,
		    b->o.mode == M_HOLD ? ", bytes per connection " : "",
		    b->o.mode == M_HOLD ? per : "");
	if (b->o.pid > 0) {
		char total[32], us[32], coarse[32];

		fmt_cpu(total, us, coarse, sizeof(total), b);
		printf("  server    CPU %s s (%d processes at the end), %s us"
		       " per %s%s%s\n",
		    total, b->cpu1.nproc, us, cpu_units[b->o.mode],
		    b->o.mode == M_HOLD ? " opened" : "",
		    strcmp(coarse, "1") == 0 ? " (coarse: clock ticks)" : "");
	}
}

/* The one machine-readable line. */
static void
print_result(const struct bench *b, double secs, double rate)
{
	char p50[32], p99[32], p999[32], rss[32], pss[32], per[32], open[32];
	char cpu_s[32], cpu_us[32], cpu_coarse[32];

	fmt_us(p50, sizeof(p50), &b->st.lat, 0.50);
	fmt_us(p99, sizeof(p99), &b->st.lat, 0.99);
	fmt_us(p999, sizeof(p999), &b->st.lat, 0.999);
	fmt_mem(rss, pss, per, sizeof(rss), b);
	fmt_cpu(cpu_s, cpu_us, cpu_coarse, sizeof(cpu_s), b);
	/* Connections open at the end; hold: those that passed the check. */
	if (b->o.mode == M_CONN)
		snprintf(open, sizeof(open), "-");
	else
		snprintf(open, sizeof(open), "%u",
		    b->o.mode == M_HOLD ? b->nchecked : b->nopen);
	printf("RESULT mode=%s target=%s conns=%u size=%zu window=%zu "
	       "sources=%u secs=%.2f ops=%" PRIu64 " rate=%.1f mbps=%.2f "
	       "p50_us=%s p99_us=%s p999_us=%s errors=%" PRIu64
	       " mismatches=%" PRIu64 " open=%s rss_kb=%s pss_kb=%s "
	       "per_conn_bytes=%s echo=%s cpu_s=%s cpu_us=%s cpu_per=%s "
	       "cpu_coarse=%s procs=%d\n",
	    mode_names[b->o.mode], b->o.target, b->o.conns, b->o.size,
	    b->o.mode == M_BULK ? b->o.window : b->o.size, b->o.nsrc, secs,
	    b->st.ops, rate,
	    secs > 0 && b->o.mode != M_HOLD ? b->st.bytes / secs / 1e6 : 0, p50,
	    p99, p999, total_errors(&b->st), b->st.err[E_MISMATCH], open, rss,
	    pss, per, b->o.plain ? "plain" : "upper", cpu_s, cpu_us,
	    cpu_units[b->o.mode], cpu_coarse, b->cpu1.nproc);
}

static int
report(const struct bench *b)
{
	double secs = elapsed_s(b), rate;

	if (b->o.mode == M_HOLD)
		rate = secs > 0 ? b->nheld / secs : 0;
	else
		rate = secs > 0 ? b->st.ops / secs : 0;
	print_human(b, secs, rate);
	print_result(b, secs, rate);
	fflush(stdout);
	if (total_errors(&b->st) > 0 || b->interrupted || b->st.ops == 0)
		return EX_FAIL;
	return 0;
}

/* ---- options ---- */

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: echobench [-m conn|pingpong|bulk|hold] [-a addr] [-p "
	    "port]\n"
	    "                 [-c conns] [-S size] [-W window] [-d secs]\n"
	    "                 [-w warmup] [-s sources] [-P server-pid] [-e] "
	    "[-h]\n"
	    "  -m  conn: connect, one line, close (connections/s)\n"
	    "      pingpong: one message in flight per connection (round "
	    "trips/s)\n"
	    "      bulk: a window of bytes in flight per connection (MB/s)\n"
	    "      hold: idle connections, server memory, echo check\n"
	    "      (default pingpong)\n"
	    "  -a  loopback address: 127.x.y.z or [::1] (default 127.0.0.1)\n"
	    "  -p  port (default 7007)\n"
	    "  -c  connections (default 32)\n"
	    "  -S  message size in bytes, k/m suffixes (default 64)\n"
	    "  -W  bulk: bytes in flight per connection (default 64k)\n"
	    "  -d  seconds measured; hold: seconds held (default 5)\n"
	    "  -w  warm-up seconds, not measured (default 1; hold: none)\n"
	    "  -s  bind to N source addresses 127.0.0.2... (default 0: "
	    "kernel's choice)\n"
	    "  -P  the server's main pid: report its memory and its CPU "
	    "time per operation\n"
	    "      over the measured time (with every descendant, reaped "
	    "children too)\n"
	    "  -e  plain echo: expect the bytes back unchanged, not "
	    "uppercased\n"
	    "Exit status 0, or 1 if any error or mismatch, 64 usage, 71 "
	    "system.\n");
}

static int
parse_num(const char *s, double max, double *v)
{
	char *end;

	errno = 0;
	*v = strtod(s, &end);
	if (end == s || errno != 0)
		return -1;
	if (*end == 'k' || *end == 'K') {
		*v *= 1024;
		end++;
	} else if (*end == 'm' || *end == 'M') {
		*v *= 1024 * 1024;
		end++;
	}
	return *end != '\0' || *v < 0 || *v > max ? -1 : 0;
}

static bool
is_loopback(const struct sockaddr_storage *ss)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

	if (ss->ss_family == AF_INET)
		return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
	return IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr);
}

/* A numeric address, IPv6 with or without brackets: never DNS. */
static int
parse_addr(const char *arg, unsigned port, struct opts *o)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&o->dst;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&o->dst;
	char host[64];
	size_t n = strlen(arg);

	if (n >= 2 && arg[0] == '[' && arg[n - 1] == ']')
		snprintf(host, sizeof(host), "%.*s", (int)(n - 2), arg + 1);
	else
		snprintf(host, sizeof(host), "%s", arg);
	memset(&o->dst, 0, sizeof(o->dst));
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		o->dstlen = sizeof(*sin);
		snprintf(o->target, sizeof(o->target), "%s:%u", host, port);
	} else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		o->dstlen = sizeof(*sin6);
		snprintf(o->target, sizeof(o->target), "[%s]:%u", host, port);
	} else {
		warnx_("%s: not a numeric IPv4 or IPv6 address", arg);
		return -1;
	}
	if (!is_loopback(&o->dst)) {
		warnx_("%s: not a loopback address (127.0.0.0/8, ::1): refused",
		    arg);
		return -1;
	}
	return 0;
}

static int
parse_mode(const char *s, enum mode *m)
{
	int i;

	for (i = 0; i <= M_HOLD; i++)
		if (strcmp(s, mode_names[i]) == 0) {
			*m = (enum mode)i;
			return 0;
		}
	return -1;
}

#define NUM(var, max, type)                                                    \
	do {                                                                   \
		if (parse_num(optarg, (max), &v) == -1) {                      \
			warnx_("-%c %s: not a number in 0..%.0f", ch, optarg,  \
			    (double)(max));                                    \
			return -1;                                             \
		}                                                              \
		(var) = (type)v;                                               \
	} while (0)

static int check_opts(struct opts *, const char *, unsigned);

static int
parse_opts(int argc, char **argv, struct opts *o)
{
	const char *addr = "127.0.0.1";
	unsigned port = 7007;
	double v;
	int ch;

	while ((ch = getopt(argc, argv, "m:a:p:c:S:W:d:w:s:P:eh")) != -1) {
		switch (ch) {
		case 'm':
			if (parse_mode(optarg, &o->mode) == -1) {
				warnx_("-m %s: conn, pingpong, bulk or hold",
				    optarg);
				return -1;
			}
			break;
		case 'a':
			addr = optarg;
			break;
		case 'p':
			NUM(port, 65535, unsigned);
			break;
		case 'c':
			NUM(o->conns, MAX_CONNS, unsigned);
			break;
		case 'S':
			NUM(o->size, MAX_SIZE, size_t);
			break;
		case 'W':
			NUM(o->window, MAX_WINDOW, size_t);
			break;
		case 'd':
			NUM(o->secs, 86400, double);
			break;
		case 'w':
			NUM(o->warmup, 3600, double);
			break;
		case 's':
			NUM(o->nsrc, MAX_SOURCES, unsigned);
			break;
		case 'P':
			NUM(o->pid, 1 << 30, pid_t);
			break;
		case 'e':
			o->plain = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			return -1;
		}
	}
	if (optind != argc) {
		warnx_("unexpected argument: %s", argv[optind]);
		return -1;
	}
	return check_opts(o, addr, port);
}

static int
check_opts(struct opts *o, const char *addr, unsigned port)
{
	if (o->conns == 0 || o->size == 0 || o->window == 0 || port == 0) {
		warnx_("-c, -S, -W and -p must be at least 1");
		return -1;
	}
	if (parse_addr(addr, port, o) == -1)
		return -1;
	if (o->nsrc > 0 && o->dst.ss_family != AF_INET) {
		warnx_(
		    "-s needs an IPv4 target: ::1 is the only IPv6 loopback");
		return -1;
	}
	return 0;
}

/* ---- set-up ---- */

/* The soft descriptor limit up to the hard one: hold mode needs many. */
static int
raise_nofile(unsigned need)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return -1;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
		(void)getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)need + 32) {
		warnx_("%u connections need %u descriptors; the limit is %llu",
		    need, need + 32, (unsigned long long)rl.rlim_cur);
		errno = EMFILE;
		return -1;
	}
	return 0;
}

static void
catch_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_signal; /* no SA_RESTART: epoll_wait returns */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

static int
bench_init(struct bench *b)
{
	unsigned i;

	if (raise_nofile(b->o.conns) == -1)
		return -1;
	if ((b->ep = epoll_create1(EPOLL_CLOEXEC)) == -1) {
		warnx_("epoll_create1: %s", strerror(errno));
		return -1;
	}
	if (pattern_build(b) == -1 || (b->rbuf = malloc(RECV_BUF)) == NULL ||
	    (b->c = calloc(b->o.conns, sizeof(*b->c))) == NULL) {
		warnx_("out of memory");
		return -1;
	}
	for (i = 0; i < b->o.conns; i++) {
		b->c[i].fd = -1;
		/* spread the streams over the pattern, on message bounds */
		b->c[i].base =
		    (uint64_t)i * 7919 % (b->plen / b->o.size) * b->o.size;
		if (b->o.mode == M_BULK)
			b->c[i].base = (uint64_t)i * 1037351 % b->plen;
	}
	b->tty = isatty(STDERR_FILENO) == 1;
	return 0;
}

int
main(int argc, char **argv)
{
	static struct bench b;

	b.o.mode = M_PINGPONG;
	b.o.conns = 32;
	b.o.size = 64;
	b.o.window = 64 * 1024;
	b.o.secs = 5;
	b.o.warmup = 1;
	if (parse_opts(argc, argv, &b.o) == -1) {
		usage(stderr);
		return EX_USAGE;
	}
	if (bench_init(&b) == -1)
		return EX_OSERR;
	catch_signals();
	if (b.o.pid > 0) {
		mem_measure(b.o.pid, &b.before);
		if (!b.before.ok)
			warnx_("pid %d: cannot read its memory from /proc",
			    (int)b.o.pid);
		if (b.o.mode == M_HOLD) /* the set-up is what is measured */
			cpu_measure(b.o.pid, &b.cpu0);
	}
	run(&b);
	return report(&b);
}
