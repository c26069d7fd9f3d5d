/*
 * check_stress: the long runs (make check-stress; the runner adds this
 * suite only when ECHOD_STRESS is set).
 *
 *  - chaos: 4 workers, 64 ping-pong clients and a stream of new ones,
 *    while workers are SIGKILLed every ~200 ms: no wrong byte anywhere,
 *    every connection that dies was held by a killed worker, no connect
 *    refused, the pool full again within 1 s of the last kill;
 *  - slow clients: 4000 idle connections do not delay a new client, and
 *    idle_timeout reclaims every one of them;
 *  - a client that sends without reading costs the daemon a bounded
 *    amount of memory;
 *  - a 512 MiB stream comes back byte-exact with a half-close.
 *
 * Every figure a test measures is printed.  Failures are recorded with
 * REQUIRE (clients.h) and asserted after cleanup.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clients.h"
#include "harness.h"
#include "procfs.h"
#include "suites.h"

#define START_MS 10000
#define REPLY_MS 5000
#define LO "127.0.0.1"
#define MIB (1024 * 1024)

static uint64_t
splitmix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/*
 * Bytes off.. of a reproducible stream: byte i is byte i % 8 (little
 * end first) of splitmix(seed ^ i / 8), so any range can be made again.
 */
static void
stream_fill(uint64_t seed, uint64_t off, unsigned char *buf, size_t n)
{
	uint64_t w;
	size_t k = 0;

	for (; k < n && ((off + k) & 7) != 0; k++)
		buf[k] = (unsigned char)(splitmix(seed ^ ((off + k) >> 3)) >>
		    (8 * ((off + k) & 7)));
	for (; n - k >= 8; k += 8) {
		w = splitmix(seed ^ ((off + k) >> 3));
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
		memcpy(buf + k, &w, 8);
#else
		for (int b = 0; b < 8; b++)
			buf[k + b] = (unsigned char)(w >> (8 * b));
#endif
	}
	for (; k < n; k++)
		buf[k] = (unsigned char)(splitmix(seed ^ ((off + k) >> 3)) >>
		    (8 * ((off + k) & 7)));
}

/* ======================= chaos ======================= */

#define CHAOS_WORKERS 4
#define CHAOS_LONG 64
#define CHAOS_SHORT 8
#define CHAOS_MAX (CHAOS_LONG + CHAOS_SHORT)
#define CHAOS_KILL_MS 5000
#define CHAOS_KILL_EVERY_MS 200
#define CHAOS_SETTLE_MS 1500
#define CHUNK_MAX 8192
#define MAX_KILLS 64

struct cconn {
	int fd;
	int is_short;
	int finishing;    /* half-closed, waiting for EOF */
	pid_t owner;      /* worker holding it (0: not known yet) */
	long long opened;
	uint64_t rng;
	int rounds;
	size_t len, sent, got;
	unsigned char out[CHUNK_MAX], want[CHUNK_MAX];
};

struct chaos {
	struct echod_proc *p;
	struct cconn c[CHAOS_MAX];
	pid_t killed[MAX_KILLS];
	long long killed_at[MAX_KILLS];
	int nkills;
	long long last_kill;
	long long last_find;
	int refilled;          /* the pool is full again since the last kill */
	long long refill_ms;   /* how long that took, for the last kill */
	long long refill_max;  /* the longest over all kills */
	uint64_t seed;
	/* results */
	int opened, completed, died_killed, died_unexplained, refused;
	int wrong, owners_known;
	uint64_t bytes;
	char why[256];
};

static uint64_t
next_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void
round_new(struct cconn *k)
{
	size_t i;

	k->len = 1 + next_rand(&k->rng) % CHUNK_MAX;
	for (i = 0; i < k->len; i++)
		k->out[i] = (unsigned char)next_rand(&k->rng);
	memcpy(k->want, k->out, k->len);
	cl_upper(k->want, k->len);
	k->sent = k->got = 0;
}

static int
conn_open(struct chaos *ch, struct cconn *k, int is_short)
{
	memset(k, 0, sizeof(*k));
	k->fd = cl_connect(NULL, LO, ch->p->port);
	if (k->fd == -1) {
		ch->refused++;
		if (ch->why[0] == '\0')
			snprintf(ch->why, sizeof(ch->why), "connect: %s",
			    strerror(errno));
		return -1;
	}
	fcntl(k->fd, F_SETFL, O_NONBLOCK);
	k->is_short = is_short;
	k->opened = h_now_ms();
	k->rng = splitmix(ch->seed + (uint64_t)ch->opened) | 1;
	ch->opened++;
	round_new(k);
	return 0;
}

static int
was_killed(const struct chaos *ch, pid_t pid)
{
	int i;

	for (i = 0; i < ch->nkills; i++)
		if (ch->killed[i] == pid)
			return 1;
	return 0;
}

/* A connection ended early: a killed worker must have held it. */
static void
conn_died(struct chaos *ch, struct cconn *k, const char *how)
{
	int i, explained = 0;

	if (k->owner > 0)
		explained = was_killed(ch, k->owner);
	else
		for (i = 0; i < ch->nkills; i++)
			explained |= ch->killed_at[i] >= k->opened;
	if (explained)
		ch->died_killed++;
	else {
		ch->died_unexplained++;
		if (ch->why[0] == '\0')
			snprintf(ch->why, sizeof(ch->why), "a connection held "
			    "by live worker %d ended: %s after %d round(s)",
			    (int)k->owner, how, k->rounds);
	}
	close(k->fd);
	k->fd = -1;
}

static void
conn_io(struct chaos *ch, struct cconn *k, short revents, int stopping)
{
	unsigned char buf[CHUNK_MAX];
	ssize_t n;
	size_t i;

	if (k->finishing) {
		n = recv(k->fd, buf, sizeof(buf), 0);
		if (n == 0) {
			ch->completed++;
			close(k->fd);
			k->fd = -1;
		} else if (n > 0) {
			ch->wrong += (int)n;
			conn_died(ch, k, "bytes after the last round");
		} else if (errno != EAGAIN && errno != EINTR)
			conn_died(ch, k, strerror(errno));
		return;
	}
	if ((revents & POLLOUT) && k->sent < k->len) {
		n = send(k->fd, k->out + k->sent, k->len - k->sent,
		    MSG_NOSIGNAL);
		if (n > 0)
			k->sent += (size_t)n;
		else if (n == -1 && errno != EAGAIN && errno != EINTR) {
			conn_died(ch, k, strerror(errno));
			return;
		}
	}
	if (!(revents & (POLLIN | POLLHUP | POLLERR)))
		return;
	n = recv(k->fd, buf, k->len - k->got, 0);
	if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR)) {
		conn_died(ch, k, n == 0 ? "EOF" : strerror(errno));
		return;
	}
	if (n < 0)
		return;
	for (i = 0; i < (size_t)n; i++)
		if (buf[i] != k->want[k->got + i])
			ch->wrong++;
	if (memcmp(buf, k->want + k->got, (size_t)n) != 0) {
		if (ch->why[0] == '\0')
			snprintf(ch->why, sizeof(ch->why), "wrong bytes in "
			    "round %d", k->rounds);
		close(k->fd);
		k->fd = -1;
		return;
	}
	k->got += (size_t)n;
	ch->bytes += (uint64_t)n;
	if (k->got < k->len)
		return;
	k->rounds++;
	if (stopping || (k->is_short && k->rounds >= 2)) {
		shutdown(k->fd, SHUT_WR);
		k->finishing = 1;
	} else
		round_new(k);
}

/* ---- which worker holds which connection, in one pass over /proc ---- */

struct sockown {
	unsigned long inode;
	pid_t pid;
};

struct sock_walk {
	struct sockown *so;
	pid_t pid;
	int n, max;
};

static int
sock_one(void *arg, int fd, const char *target)
{
	struct sock_walk *w = arg;
	unsigned long ino;

	(void)fd;
	if (sscanf(target, "socket:[%lu]", &ino) == 1) {
		w->so[w->n].inode = ino;
		w->so[w->n++].pid = w->pid;
	}
	return w->n >= w->max;
}

/* Add pid's sockets to so[n..max-1]; the new n. */
static int
worker_sockets(pid_t pid, struct sockown *so, int n, int max)
{
	struct sock_walk w = { so, pid, n, max };

	if (n < max)
		pf_fds(pid, sock_one, &w);
	return w.n;
}

/* Server-side inode of the connection from local port cport, or 0. */
static unsigned long
inode_of(const unsigned *ports, const unsigned long *inodes, int n,
    unsigned cport)
{
	int i;

	for (i = 0; i < n; i++)
		if (ports[i] == cport)
			return inodes[i];
	return 0;
}

static void
find_owners(struct chaos *ch)
{
	static struct sockown so[4096];
	static unsigned ports[8192];
	static unsigned long inodes[8192];
	char line[512];
	struct sockaddr_in sin;
	socklen_t sl;
	unsigned lp, rp, ra;
	unsigned long ino, want;
	int i, j, nso = 0, np = 0, nk, pending = 0;
	pid_t kids[64];
	FILE *f;

	/* At most every 10 ms: /proc/net/tcp is long on a busy host. */
	if (h_now_ms() - ch->last_find < 10)
		return;
	ch->last_find = h_now_ms();
	for (i = 0; i < CHAOS_MAX; i++)
		pending += ch->c[i].fd != -1 && ch->c[i].owner == 0 &&
		    ch->c[i].rounds > 0;
	if (pending == 0 || (f = fopen("/proc/net/tcp", "re")) == NULL)
		return;
	while (np < 8192 && fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, " %*u: %*x:%x %x:%x %*x %*x:%*x %*x:%*x %*x "
		    "%*u %*u %lu", &lp, &ra, &rp, &ino) == 4 &&
		    lp == (unsigned)ch->p->port && ra == htonl(INADDR_LOOPBACK)
		    && ino != 0) {
			ports[np] = rp;
			inodes[np++] = ino;
		}
	fclose(f);
	nk = h_children(ch->p->pid, kids, 64);
	for (i = 0; i < nk; i++)
		nso = worker_sockets(kids[i], so, nso, 4096);
	for (i = 0; i < CHAOS_MAX; i++) {
		struct cconn *k = &ch->c[i];

		if (k->fd == -1 || k->owner != 0 || k->rounds == 0)
			continue;
		sl = sizeof(sin);
		if (getsockname(k->fd, (struct sockaddr *)&sin, &sl) == -1 ||
		    (want = inode_of(ports, inodes, np,
		    ntohs(sin.sin_port))) == 0)
			continue;
		for (j = 0; j < nso; j++)
			if (so[j].inode == want) {
				k->owner = so[j].pid;
				ch->owners_known++;
				break;
			}
	}
}

/* SIGKILL a worker that holds at least one of our connections. */
static void
kill_one(struct chaos *ch)
{
	pid_t cand[CHAOS_MAX], victim;
	int i, j, n = 0, dup;

	for (i = 0; i < CHAOS_MAX; i++) {
		if (ch->c[i].fd == -1 || ch->c[i].owner <= 0 ||
		    was_killed(ch, ch->c[i].owner) || !h_alive(ch->c[i].owner))
			continue;
		for (dup = 0, j = 0; j < n; j++)
			dup |= cand[j] == ch->c[i].owner;
		if (!dup)
			cand[n++] = ch->c[i].owner;
	}
	if (n == 0 || ch->nkills == MAX_KILLS)
		return;
	victim = cand[next_rand(&ch->seed) % (uint64_t)n];
	if (kill(victim, SIGKILL) == 0) {
		ch->killed[ch->nkills] = victim;
		ch->killed_at[ch->nkills++] = h_now_ms();
		ch->last_kill = h_now_ms();
		ch->refilled = 0;
	}
}

/* All slots hold a live worker that was not killed? */
static int
pool_full(struct chaos *ch)
{
	unsigned s;
	pid_t pid;

	for (s = 0; s < CHAOS_WORKERS; s++)
		if ((pid = h_worker_pid(ch->p->pid, s)) <= 0 ||
		    was_killed(ch, pid))
			return 0;
	return 1;
}

static int
chaos_live(const struct chaos *ch)
{
	int i, n = 0;

	for (i = 0; i < CHAOS_MAX; i++)
		n += ch->c[i].fd != -1;
	return n;
}

/* One turn: poll every connection, move it along, refill the slots. */
static void
chaos_turn(struct chaos *ch, int stopping)
{
	struct pollfd pfd[CHAOS_MAX];
	int idx[CHAOS_MAX], i, n = 0;

	for (i = 0; i < CHAOS_MAX; i++) {
		struct cconn *k = &ch->c[i];

		if (k->fd == -1) {
			if (!stopping)
				conn_open(ch, k, i >= CHAOS_LONG);
			if (k->fd == -1)
				continue;
		}
		pfd[n].fd = k->fd;
		pfd[n].events = POLLIN | (k->sent < k->len && !k->finishing ?
		    POLLOUT : 0);
		idx[n++] = i;
	}
	if (n == 0 || poll(pfd, (nfds_t)n, 20) <= 0)
		return;
	for (i = 0; i < n; i++)
		if (pfd[i].revents != 0)
			conn_io(ch, &ch->c[idx[i]], pfd[i].revents, stopping);
}

START_TEST(chaos_kills)
{
	static struct chaos ch;
	struct echod_proc p;
	struct tres t = { 0, "" };
	long long t0, now, next_kill, end;
	int i, turns = 0;

	cl_proc_init(&p);
	memset(&ch, 0, sizeof(ch));
	for (i = 0; i < CHAOS_MAX; i++)
		ch.c[i].fd = -1;
	ch.p = &p;
	ch.seed = (uint64_t)cl_now_us() | 1;
	REQUIRE(&t, h_start(&p, "listen = { \"127.0.0.1:0\" }\nworkers = 4\n"
	    "log_level = info\n", NULL, START_MS) == 0, "start failed");
	t0 = h_now_ms();
	next_kill = t0 + 500; /* let every connection make a round first */
	end = t0 + 500 + CHAOS_KILL_MS;
	while ((now = h_now_ms()) < end + CHAOS_SETTLE_MS && turns < 1000000) {
		turns++;
		cl_notify_drain(&p);
		chaos_turn(&ch, 0);
		find_owners(&ch);
		if (now >= next_kill && now < end) {
			kill_one(&ch);
			next_kill += CHAOS_KILL_EVERY_MS;
		}
		if (ch.nkills > 0 && !ch.refilled && pool_full(&ch)) {
			ch.refilled = 1;
			ch.refill_ms = h_now_ms() - ch.last_kill;
			if (ch.refill_ms > ch.refill_max)
				ch.refill_max = ch.refill_ms;
		}
		if (ch.wrong > 0)
			break;
	}
	/* Every live connection finishes its round, half-closes, gets EOF. */
	while (chaos_live(&ch) > 0 && h_now_ms() < end + CHAOS_SETTLE_MS +
	    10000 && turns < 2000000) {
		turns++;
		cl_notify_drain(&p);
		chaos_turn(&ch, 1);
	}
	printf("stress: chaos: %d kills survived, %d connections, %d "
	    "completed, %d died with a killed worker, %d unexplained, %d "
	    "refused, %d wrong bytes, %.1f MiB verified, owners known for "
	    "%d; pool full again %lld ms after the last kill (at most "
	    "%lld ms after any)\n", ch.nkills, ch.opened, ch.completed,
	    ch.died_killed, ch.died_unexplained, ch.refused, ch.wrong,
	    (double)ch.bytes / MIB, ch.owners_known,
	    ch.refilled ? ch.refill_ms : -1, ch.refill_max);
	fflush(stdout);
	REQUIRE(&t, ch.wrong == 0, "%d wrong bytes (%s)", ch.wrong, ch.why);
	REQUIRE(&t, ch.refused == 0, "%d connects failed (%s)", ch.refused,
	    ch.why);
	REQUIRE(&t, ch.died_unexplained == 0, "%d connections died on live "
	    "workers (%s)", ch.died_unexplained, ch.why);
	REQUIRE(&t, chaos_live(&ch) == 0, "%d connections never finished",
	    chaos_live(&ch));
	REQUIRE(&t, ch.completed + ch.died_killed == ch.opened,
	    "%d completed + %d died != %d opened", ch.completed,
	    ch.died_killed, ch.opened);
	REQUIRE(&t, ch.nkills >= CHAOS_KILL_MS / CHAOS_KILL_EVERY_MS / 2,
	    "only %d kills (no worker held a connection?)", ch.nkills);
	REQUIRE(&t, ch.refilled && ch.refill_ms <= 1000, "the pool was not "
	    "full within 1 s of the last kill (%s %lld ms)", ch.refilled ?
	    "after" : "not after", ch.refilled ? ch.refill_ms :
	    h_now_ms() - ch.last_kill);
	REQUIRE(&t, cl_log_count(&p, "killed by signal 9") == ch.nkills,
	    "%d kills logged, %d made", cl_log_count(&p, "killed by signal 9"),
	    ch.nkills);
	REQUIRE(&t, cl_log_count(&p, "died early") == 0, "an early death");
	REQUIRE_STOPPED(&t, &p, 10000);
out:
	for (i = 0; i < CHAOS_MAX; i++)
		if (ch.c[i].fd != -1)
			close(ch.c[i].fd);
	cl_conclude(&t, &p);
}
END_TEST

/* ======================= slow clients ======================= */

#define IDLE_CONNS 4000

/*
 * Wait up to timeout_ms for the daemon to end each of fd[0..IDLE_CONNS-1]
 * not yet marked in closed_at[] (< 0), marking when it did; how many it
 * has not ended.
 */
static int
idle_wait_closed(const int *fd, long long *closed_at, int timeout_ms)
{
	static struct pollfd pfd[IDLE_CONNS];
	static int idx[IDLE_CONNS];
	long long deadline = h_now_ms() + timeout_ms;
	int i, k, n, left = 0;
	ssize_t r;
	char c;

	for (i = 0; i < IDLE_CONNS; i++)
		left += closed_at[i] < 0;
	while (left > 0 && h_now_ms() < deadline) {
		for (n = 0, i = 0; i < IDLE_CONNS; i++)
			if (closed_at[i] < 0) {
				pfd[n].fd = fd[i];
				pfd[n].events = POLLIN;
				idx[n++] = i;
			}
		if (poll(pfd, (nfds_t)n, 100) <= 0)
			continue;
		for (k = 0; k < n; k++) {
			if (pfd[k].revents == 0)
				continue;
			i = idx[k];
			r = recv(fd[i], &c, 1, MSG_DONTWAIT);
			if (r == 0 || (r == -1 && errno != EAGAIN &&
			    errno != EINTR)) {
				closed_at[i] = h_now_ms();
				left--;
			}
		}
	}
	return left;
}

/* The shortest and longest open-to-closed time of the closed ones (-1:
 * none closed). */
static void
idle_ages(const long long *opened, const long long *closed_at,
    long long *min_age, long long *max_age)
{
	int i;

	*min_age = *max_age = -1;
	for (i = 0; i < IDLE_CONNS; i++) {
		if (closed_at[i] < 0)
			continue;
		if (*min_age < 0 || closed_at[i] - opened[i] < *min_age)
			*min_age = closed_at[i] - opened[i];
		if (closed_at[i] - opened[i] > *max_age)
			*max_age = closed_at[i] - opened[i];
	}
}

/* Open descriptors of every worker. */
static int
worker_fds(pid_t master)
{
	pid_t kids[64];
	int i, n = h_children(master, kids, 64), sum = 0;

	for (i = 0; i < n; i++)
		sum += pf_count_fds(kids[i]);
	return sum;
}

START_TEST(idle_crowd)
{
	static int fd[IDLE_CONNS];
	static long long opened[IDLE_CONNS], closed_at[IDLE_CONNS];
	struct echod_proc p;
	struct tres t = { 0, "" };
	struct rlimit rl;
	long long t0, lat_us, min_age, max_age;
	int i, base, held, left, fresh = -1;

	cl_proc_init(&p);
	for (i = 0; i < IDLE_CONNS; i++)
		fd[i] = -1;
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	REQUIRE(&t, rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >=
	    IDLE_CONNS + 64, "RLIMIT_NOFILE hard limit %llu: too low for %d "
	    "connections", (unsigned long long)rl.rlim_max, IDLE_CONNS);
	REQUIRE(&t, h_start(&p, "listen = { \"127.0.0.1:0\" }\nworkers = 2\n"
	    "max_connections = 4096\nbacklog = 4096\nidle_timeout = 2\n"
	    "log_level = info\n", NULL, START_MS) == 0, "start failed");
	base = worker_fds(p.pid);
	t0 = h_now_ms();
	for (i = 0; i < IDLE_CONNS; i++) {
		REQUIRE(&t, (fd[i] = cl_connect(NULL, LO, p.port)) != -1,
		    "connect %d: %s", i, strerror(errno));
		opened[i] = h_now_ms();
		closed_at[i] = -1;
	}
	/* All held by the workers: their descriptors tell. */
	for (held = 0; h_now_ms() - t0 < 3000 && held < IDLE_CONNS;
	    h_poll_pause())
		held = worker_fds(p.pid) - base;
	printf("stress: %d idle connections opened in %lld ms, %d held\n",
	    IDLE_CONNS, opened[IDLE_CONNS - 1] - t0, held);
	fflush(stdout);
	REQUIRE(&t, held >= IDLE_CONNS, "the workers hold %d of %d", held,
	    IDLE_CONNS);
	lat_us = cl_now_us();
	REQUIRE(&t, (fresh = cl_connect(NULL, LO, p.port)) != -1 &&
	    cl_echo(fresh, "ping", REPLY_MS), "the new client was not served");
	lat_us = cl_now_us() - lat_us;
	printf("stress: a new client among %d idle ones: connect + echo in "
	    "%.2f ms\n", IDLE_CONNS, (double)lat_us / 1000.0);
	fflush(stdout);
	REQUIRE(&t, lat_us < 200000, "connect + echo took %lld us",
	    lat_us);
	close(fresh);
	fresh = -1;

	/* idle_timeout = 2: every one of them gets EOF, none early. */
	left = idle_wait_closed(fd, closed_at, 8000);
	idle_ages(opened, closed_at, &min_age, &max_age);
	printf("stress: idle_timeout = 2 closed %d of %d, after %lld..%lld ms "
	    "of silence\n", IDLE_CONNS - left, IDLE_CONNS, min_age, max_age);
	fflush(stdout);
	REQUIRE(&t, left == 0, "%d idle connections never closed", left);
	REQUIRE(&t, min_age >= 1900 && max_age <= 4000, "closed after "
	    "%lld..%lld ms, want about 2000", min_age, max_age);
	for (held = 1, t0 = h_now_ms(); h_now_ms() - t0 < 2000; h_poll_pause())
		if ((held = worker_fds(p.pid) - base) <= 0)
			break;
	REQUIRE(&t, held <= 0, "the workers still hold %d descriptors", held);
	cl_close_fds(fd, IDLE_CONNS);
	REQUIRE_STOPPED(&t, &p, 10000);
out:
	cl_close_fds(fd, IDLE_CONNS);
	cl_conclude_fds(&t, &p, &fresh, 1);
}
END_TEST

/* ======================= a client that never reads ======================= */

#define PUSH_TARGET (300ULL * MIB)
#define PUSH_MS 4000
#define BLOCKED_MS 500

START_TEST(non_reading_client)
{
	static unsigned char buf[256 * 1024], want[256 * 1024];
	struct echod_proc p;
	struct tres t = { 0, "" };
	struct pollfd pfd;
	uint64_t pushed = 0, back = 0;
	long long t0, last, rss0, rss1;
	int fd = -1, other = -1;
	ssize_t n;
	size_t k;

	cl_proc_init(&p);
	REQUIRE(&t, h_start(&p, "listen = { \"127.0.0.1:0\" }\nworkers = 1\n"
	    "log_level = info\n", NULL, START_MS) == 0, "start failed");
	REQUIRE(&t, (other = cl_connect(NULL, LO, p.port)) != -1 &&
	    cl_echo(other, "warm up", REPLY_MS), "no echo");
	rss0 = cl_rss_kb(p.pid);
	REQUIRE(&t, (fd = cl_connect(NULL, LO, p.port)) != -1, "connect: %s",
	    strerror(errno));
	fcntl(fd, F_SETFL, O_NONBLOCK);
	t0 = last = h_now_ms();
	while (pushed < PUSH_TARGET && h_now_ms() - t0 < PUSH_MS &&
	    h_now_ms() - last < BLOCKED_MS) {
		pfd.fd = fd;
		pfd.events = POLLOUT;
		if (poll(&pfd, 1, 50) <= 0)
			continue;
		stream_fill(7, pushed, buf, sizeof(buf));
		n = send(fd, buf, sizeof(buf), MSG_NOSIGNAL);
		if (n > 0) {
			pushed += (uint64_t)n;
			last = h_now_ms();
		} else if (n == -1 && errno != EAGAIN && errno != EINTR)
			break;
	}
	rss1 = cl_rss_kb(p.pid);
	printf("stress: non-reading client pushed %.1f MiB of %llu before it "
	    "blocked; daemon RSS %lld -> %lld kB (%+lld kB)\n",
	    (double)pushed / MIB, PUSH_TARGET / MIB, rss0, rss1, rss1 - rss0);
	fflush(stdout);
	REQUIRE(&t, rss1 - rss0 < 16 * 1024, "the daemon grew by %lld kB "
	    "for a client that does not read", rss1 - rss0);
	REQUIRE(&t, pushed < PUSH_TARGET, "all %llu MiB went in: nothing "
	    "pushed back", PUSH_TARGET / MIB);
	REQUIRE(&t, cl_echo(other, "meanwhile", REPLY_MS), "another client "
	    "was not served meanwhile");
	/* What went in comes back, byte-exact, once the client reads. */
	shutdown(fd, SHUT_WR);
	t0 = h_now_ms();
	while (h_now_ms() - t0 < 20000) {
		pfd.fd = fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0)
			break;
		stream_fill(7, back, want, (size_t)n);
		cl_upper(want, (size_t)n);
		for (k = 0; k < (size_t)n && buf[k] == want[k]; k++)
			;
		REQUIRE(&t, k == (size_t)n, "wrong byte at offset %llu",
		    (unsigned long long)(back + k));
		back += (uint64_t)n;
	}
	REQUIRE(&t, back == pushed, "%llu bytes back of %llu pushed",
	    (unsigned long long)back, (unsigned long long)pushed);
	close(fd);
	fd = -1;
	close(other);
	other = -1;
	REQUIRE_STOPPED(&t, &p, 10000);
out:
	cl_close_fds(&fd, 1);
	cl_conclude_fds(&t, &p, &other, 1);
}
END_TEST

/* ======================= a large stream ======================= */

#define STREAM_BYTES (512ULL * MIB)
#define STREAM_MS 60000

START_TEST(large_stream)
{
	static unsigned char out[256 * 1024], in[256 * 1024], want[256 * 1024];
	struct echod_proc p;
	struct tres t = { 0, "" };
	struct pollfd pfd;
	uint64_t sent = 0, got = 0, wrong_at = UINT64_MAX;
	size_t chunk = 0, off = 0, k;
	long long t0, el;
	int fd = -1, eof = 0;
	ssize_t n;

	cl_proc_init(&p);
	REQUIRE(&t, h_start(&p, "listen = { \"127.0.0.1:0\" }\nworkers = 2\n"
	    "log_level = info\n", NULL, START_MS) == 0, "start failed");
	REQUIRE(&t, (fd = cl_connect(NULL, LO, p.port)) != -1, "connect: %s",
	    strerror(errno));
	fcntl(fd, F_SETFL, O_NONBLOCK);
	t0 = h_now_ms();
	while (!eof && h_now_ms() - t0 < STREAM_MS) {
		pfd.fd = fd;
		pfd.events = POLLIN | (sent < STREAM_BYTES ? POLLOUT : 0);
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		if ((pfd.revents & POLLOUT) && sent < STREAM_BYTES) {
			if (off == chunk) {
				chunk = sizeof(out);
				if (STREAM_BYTES - sent < chunk)
					chunk = (size_t)(STREAM_BYTES - sent);
				stream_fill(11, sent, out, chunk);
				off = 0;
			}
			n = send(fd, out + off, chunk - off, MSG_NOSIGNAL);
			if (n > 0) {
				off += (size_t)n;
				sent += (uint64_t)n;
				if (sent == STREAM_BYTES)
					shutdown(fd, SHUT_WR);
			}
		}
		if (!(pfd.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		n = recv(fd, in, sizeof(in), 0);
		if (n == 0)
			eof = 1;
		else if (n > 0) {
			stream_fill(11, got, want, (size_t)n);
			cl_upper(want, (size_t)n);
			if (wrong_at == UINT64_MAX &&
			    memcmp(in, want, (size_t)n) != 0) {
				for (k = 0; in[k] == want[k]; k++)
					;
				wrong_at = got + k;
			}
			got += (uint64_t)n;
		} else if (errno != EAGAIN && errno != EINTR)
			break;
	}
	el = h_now_ms() - t0;
	printf("stream: %llu MiB byte-exact with half-close in %lld ms: "
	    "%.0f MiB/s\n", (unsigned long long)(got / MIB), el,
	    el > 0 ? (double)got / MIB * 1000.0 / (double)el : 0.0);
	fflush(stdout);
	REQUIRE(&t, wrong_at == UINT64_MAX, "wrong byte at offset %llu",
	    (unsigned long long)wrong_at);
	REQUIRE(&t, eof, "no EOF after %llu of %llu bytes back in %lld ms",
	    (unsigned long long)got, STREAM_BYTES, el);
	REQUIRE(&t, got == STREAM_BYTES, "%llu bytes back, want %llu",
	    (unsigned long long)got, STREAM_BYTES);
	close(fd);
	fd = -1;
	REQUIRE_STOPPED(&t, &p, 10000);
out:
	cl_conclude_fds(&t, &p, &fd, 1);
}
END_TEST

Suite *
stress_suite(void)
{
	Suite *s = suite_create("stress");

	h_case(s, "chaos", 90, H_TESTS(chaos_kills));
	h_case(s, "slow", 90, H_TESTS(idle_crowd, non_reading_client));
	h_case(s, "stream", 120, H_TESTS(large_stream));
	return s;
}
