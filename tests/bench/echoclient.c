/*
 * echoclient: the lecture's random keep-alive client, in C.
 *
 * N client processes (forked, as in the lecture) each open one
 * connection, then send M words from the lecture's list, one at a time,
 * with a random pause of up to P seconds before each.  Every reply must be
 * the uppercase of the word sent, byte for byte; after the last one the
 * client half-closes and the server must end the stream without another
 * byte.  Each exchange prints one line:
 *
 *   [  2.41 s] client 3 127.0.0.1:40112: 'hello' -> 'HELLO'
 *
 * (the time since the run started and the client's own address, which
 * the server's log names too, so that a reader can see who served whom;
 * a reply that took 100 ms or more says how long, " (after 4.21 s)":
 * the connection waited in the accept queue for a free worker).
 * The words and pauses come from a seeded generator of its own, so a seed
 * repeats a run's requests whatever the libc; the seed is printed.
 *
 * Not echobench: that is one epoll loop measuring rates; this is the
 * lecture's picture, blocking sockets and one process per client, small
 * enough to read beside it.  Every wait has a deadline (-t, the whole
 * run): a client that is not done by then is killed and counts as failed.
 * Exit status 0 when every exchange was right, 1 when a reply was wrong,
 * a connection failed or the time ran out, 64 for a usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define EX_FAIL 1
#define EX_USAGE 64

#define MAX_CLIENTS 1000
#define MAX_MESSAGES 100000
#define LINE_MAX_LEN 512
#define GRACE_MS 2000 /* after the deadline: clients killed, then reaped */
#define SLOW_MS 100   /* a reply slower than this shows how long it took */

/* The lecture's list, spaces and question mark included. */
static const char *const words[] = { "hello", "bye", "why", "yes", "no",
	"maybe", "are you sure", "why not?" };
#define NWORDS (sizeof(words) / sizeof(words[0]))
#define WORD_MAX 16 /* longer than any of them */

struct opts {
	const char *host, *port;
	int clients, messages, quiet;
	long pause_ms, timeout_ms;
	uint64_t seed;
};

/* What a client process leaves for the parent (shared memory). */
struct result {
	int ok;     /* exchanges with the right reply */
	int failed; /* 1: a wrong reply, a failed connection or a timeout */
};

static long long t0_ms;

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds left before the deadline, for poll(); never negative. */
static int
left_ms(long long deadline)
{
	long long left = deadline - now_ms();

	return left > 0 ? (int)left : 0;
}

/* splitmix64: the same numbers from a seed on every system. */
static uint64_t
rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* A number in [0, n) (n > 0); the bias is of no matter here. */
static uint64_t
rng_below(uint64_t *s, uint64_t n)
{
	return rng_next(s) % n;
}

/* The reply the server owes for word: ASCII letters uppercased. */
static void
expected_reply(const char *word, char *out, size_t len)
{
	size_t i;

	for (i = 0; word[i] != '\0' && i + 1 < len; i++)
		out[i] = word[i] >= 'a' && word[i] <= 'z' ?
		    (char)(word[i] - 'a' + 'A') : word[i];
	out[i] = '\0';
}

/* buf[0..n) for a line: printable ASCII as is, the rest as \xNN. */
static void
quote(const unsigned char *buf, size_t n, char *out, size_t len)
{
	size_t i, o = 0;

	for (i = 0; i < n && o + 5 < len; i++) {
		if (buf[i] >= 0x20 && buf[i] < 0x7f && buf[i] != '\\')
			out[o++] = (char)buf[i];
		else
			o += (size_t)snprintf(out + o, len - o, "\\x%02x",
			    buf[i]);
	}
	out[o] = '\0';
}

/* One line with one write(2): lines of several clients never mix. */
static void
say(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
say(int fd, const char *fmt, ...)
{
	char line[LINE_MAX_LEN];
	va_list ap;
	int n;
	long long t = now_ms() - t0_ms;

	n = snprintf(line, sizeof(line), "[%3lld.%02lld s] ", t / 1000,
	    (t % 1000) / 10);
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof(line) - 1)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	if (write(fd, line, (size_t)n) == -1) {
		/* Nothing to do: the exit status still tells. */
	}
}

/* Connect to host:port with a deadline; -1 with the reason in err. */
static int
connect_to(const struct opts *o, long long deadline, char *err,
    size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	struct pollfd pfd;
	int fd = -1, rc, soerr;
	socklen_t sl;

	if ((rc = getaddrinfo(o->host, o->port, &hints, &res)) != 0) {
		snprintf(err, errlen, "%s:%s: %s", o->host, o->port,
		    gai_strerror(rc));
		return -1;
	}
	snprintf(err, errlen, "%s:%s: no address", o->host, o->port);
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC |
		    SOCK_NONBLOCK, ai->ai_protocol);
		if (fd == -1)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		soerr = errno;
		if (soerr == EINPROGRESS) {
			pfd.fd = fd;
			pfd.events = POLLOUT;
			rc = poll(&pfd, 1, left_ms(deadline));
			sl = sizeof(soerr);
			if (rc == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR,
			    &soerr, &sl) == 0 && soerr == 0)
				break;
			if (rc == 0)
				soerr = ETIMEDOUT;
		}
		snprintf(err, errlen, "connect %s:%s: %s", o->host, o->port,
		    strerror(soerr));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

/* The socket's own address as "HOST:PORT" ("[HOST]:PORT" for IPv6). */
static void
local_name(int fd, char *out, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char h[NI_MAXHOST], p[NI_MAXSERV];

	snprintf(out, len, "?");
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == -1 ||
	    getnameinfo((struct sockaddr *)&ss, sl, h, sizeof(h), p,
	    sizeof(p), NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		return;
	snprintf(out, len, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", h,
	    p);
}

/* Send all of buf before the deadline; 0, or -1 with errno. */
static int
send_all(int fd, const char *buf, size_t len, long long deadline)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	ssize_t n;

	while (len > 0) {
		n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (n == -1 && errno != EAGAIN && errno != EINTR)
			return -1;
		if (poll(&pfd, 1, left_ms(deadline)) == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
	}
	return 0;
}

/*
 * Read up to len bytes, stopping early at EOF, an error or the deadline;
 * returns how many came.  *why says why it stopped short (0: it did not).
 */
static size_t
recv_upto(int fd, unsigned char *buf, size_t len, long long deadline,
    int *why)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	size_t got = 0;
	ssize_t n;
	*why = 0;
	while (got < len) {
		n = recv(fd, buf + got, len - got, 0);
		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		if (n == 0) {
			*why = EPIPE; /* EOF: the server closed */
			break;
		}
		if (errno != EAGAIN && errno != EINTR) {
			*why = errno;
			break;
		}
		if (poll(&pfd, 1, left_ms(deadline)) == 0) {
			*why = ETIMEDOUT;
			break;
		}
	}
	return got;
}

/* Sleep ms, but not past the deadline. */
static void
pause_ms(long ms, long long deadline)
{
	struct timespec ts;
	long long left = deadline - now_ms();

	if (ms > left)
		ms = left > 0 ? (long)left : 0;
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* One exchange: send word, read its reply; 1 right, 0 wrong or failed. */
static int
exchange(const struct opts *o, int id, const char *me, int fd,
    const char *word, long long deadline)
{
	unsigned char got[WORD_MAX];
	char want[WORD_MAX], q[4 * WORD_MAX + 1], waited[32] = "";
	size_t len = strlen(word), n;
	long long sent_ms = now_ms(), took;
	int why;

	if (send_all(fd, word, len, deadline) == -1) {
		say(1, "client %d %s: '%s' -> send failed: %s", id, me, word,
		    strerror(errno));
		return 0;
	}
	expected_reply(word, want, sizeof(want));
	n = recv_upto(fd, got, len, deadline, &why);
	quote(got, n, q, sizeof(q));
	if (n == len && memcmp(got, want, len) == 0) {
		/* A slow reply is news: the server had no one free for us. */
		if ((took = now_ms() - sent_ms) >= SLOW_MS)
			snprintf(waited, sizeof(waited), " (after %lld.%02lld s)",
			    took / 1000, took % 1000 / 10);
		if (!o->quiet)
			say(1, "client %d %s: '%s' -> '%s'%s", id, me, word, q,
			    waited);
		return 1;
	}
	if (n == len)
		say(1, "client %d %s: '%s' -> '%s' WRONG, expected '%s'", id,
		    me, word, q, want);
	else
		say(1, "client %d %s: '%s' -> '%s' then %s, expected '%s'", id,
		    me, word, q, why == EPIPE ? "EOF" : strerror(why), want);
	return 0;
}

/* After the last reply: half-close, and the server must end the stream
 * without another byte.  1 if it does. */
static int
finish(int id, const char *me, int fd, long long deadline)
{
	unsigned char extra[64];
	char q[4 * sizeof(extra) + 1];
	size_t n;
	int why;

	if (shutdown(fd, SHUT_WR) == -1) {
		say(1, "client %d %s: shutdown: %s", id, me, strerror(errno));
		return 0;
	}
	n = recv_upto(fd, extra, sizeof(extra), deadline, &why);
	if (n == 0 && why == EPIPE)
		return 1;
	quote(extra, n, q, sizeof(q));
	say(1, "client %d %s: after the last reply: '%s' then %s, expected "
	    "EOF", id, me, q, why == EPIPE ? "EOF" : strerror(why));
	return 0;
}

/* One client process's whole life; fills r. */
static void
run_client(const struct opts *o, int id, long long deadline,
    struct result *r)
{
	uint64_t rng = o->seed ^ ((uint64_t)id * 0xd1342543de82ef95ULL);
	char err[256], me[NI_MAXHOST + NI_MAXSERV + 4];
	int fd, i;

	if ((fd = connect_to(o, deadline, err, sizeof(err))) == -1) {
		say(1, "client %d: %s", id, err);
		r->failed = 1;
		return;
	}
	local_name(fd, me, sizeof(me));
	for (i = 0; i < o->messages; i++) {
		if (o->pause_ms > 0)
			pause_ms((long)rng_below(&rng, (uint64_t)o->pause_ms +
			    1), deadline);
		if (!exchange(o, id, me, fd,
		    words[rng_below(&rng, NWORDS)], deadline)) {
			r->failed = 1;
			break;
		}
		r->ok++;
	}
	if (!r->failed && !finish(id, me, fd, deadline))
		r->failed = 1;
	if (!o->quiet)
		say(1, "client %d %s: closing", id, me);
	close(fd);
}

/*
 * Wait for the clients (pids[i] > 0) until the deadline; a reaped one's
 * pid becomes -1.  Then kill those left (by pid) and reap them: their
 * pids stay.  Returns how many had to be killed.
 */
static int
reap_all(pid_t *pids, int n, long long deadline)
{
	sigset_t chld;
	struct timespec ts;
	long long left;
	int live = 0, killed = 0, i, st;
	pid_t pid;

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	for (i = 0; i < n; i++)
		live += pids[i] > 0;
	while (live > 0) {
		while (live > 0 && (pid = waitpid(-1, &st, WNOHANG)) > 0)
			for (i = 0; i < n; i++)
				if (pids[i] == pid) {
					pids[i] = -1;
					live--;
				}
		if (live == 0 || (left = deadline - now_ms()) <= 0)
			break;
		ts.tv_sec = left / 1000;
		ts.tv_nsec = (left % 1000) * 1000000L;
		sigtimedwait(&chld, NULL, &ts);
	}
	for (i = 0; i < n; i++)
		if (pids[i] > 0) {
			kill(pids[i], SIGKILL);
			killed++;
		}
	for (i = 0; i < n; i++)
		if (pids[i] > 0)
			waitpid(pids[i], &st, 0); /* SIGKILLed: at once */
	return killed;
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: echoclient -p PORT [-H HOST] [-c CLIENTS] [-n MESSAGES]\n"
	    "                  [-P MAX_PAUSE] [-s SEED] [-t TIMEOUT] [-q]\n"
	    "  -H HOST      server address (127.0.0.1)\n"
	    "  -p PORT      server port (required)\n"
	    "  -c CLIENTS   client processes, one connection each (10; "
	    "1..%d)\n"
	    "  -n MESSAGES  words each client sends (5)\n"
	    "  -P SECONDS   longest random pause before a word, e.g. 0.5 "
	    "(3; 0: none)\n"
	    "  -s SEED      repeat a run's words and pauses (default: from "
	    "the clock)\n"
	    "  -t SECONDS   the whole run's deadline (120)\n"
	    "  -q           no line per exchange, only failures and the "
	    "summary\n"
	    "Exit status 0 if every reply was right, 1 if one was wrong, a "
	    "connection\nfailed or the deadline passed, 64 usage.\n",
	    MAX_CLIENTS);
}

/* A number in [lo, hi] from s, or -1. */
static double
number(const char *s, double lo, double hi)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		return -1;
	return v;
}

static int
parse(int argc, char **argv, struct opts *o)
{
	int ch;
	double v;

	*o = (struct opts){ .host = "127.0.0.1", .clients = 10,
		.messages = 5, .pause_ms = 3000, .timeout_ms = 120000,
		.seed = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 32 };
	while ((ch = getopt(argc, argv, "H:p:c:n:P:s:t:qh")) != -1) {
		switch (ch) {
		case 'H': o->host = optarg; break;
		case 'p': o->port = optarg; break;
		case 'c':
			if ((v = number(optarg, 1, MAX_CLIENTS)) < 0)
				return -1;
			o->clients = (int)v;
			break;
		case 'n':
			if ((v = number(optarg, 0, MAX_MESSAGES)) < 0)
				return -1;
			o->messages = (int)v;
			break;
		case 'P':
			if ((v = number(optarg, 0, 3600)) < 0)
				return -1;
			o->pause_ms = (long)(v * 1000 + 0.5);
			break;
		case 's':
			if ((v = number(optarg, 0, 1e18)) < 0)
				return -1;
			o->seed = (uint64_t)v;
			break;
		case 't':
			if ((v = number(optarg, 0.001, 86400)) < 0)
				return -1;
			o->timeout_ms = (long)(v * 1000 + 0.5);
			break;
		case 'q': o->quiet = 1; break;
		case 'h': usage(stdout); exit(0);
		default: return -1;
		}
	}
	return optind == argc && o->port != NULL ? 0 : -1;
}

int
main(int argc, char **argv)
{
	struct opts o;
	struct result *res;
	pid_t pids[MAX_CLIENTS];
	sigset_t chld, old;
	long long deadline;
	int i, ok = 0, failed = 0, killed;

	if (parse(argc, argv, &o) == -1) {
		usage(stderr);
		return EX_USAGE;
	}
	res = mmap(NULL, sizeof(*res) * (size_t)o.clients,
	    PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (res == MAP_FAILED) {
		perror("echoclient: mmap");
		return EX_FAIL;
	}
	/* SIGCHLD stays blocked in the parent: sigtimedwait takes it. */
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, &old);
	t0_ms = now_ms();
	deadline = t0_ms + o.timeout_ms;
	printf("echoclient: %d client(s) x %d word(s) to %s:%s, pauses up to "
	    "%ld.%03ld s, seed %llu, deadline %ld s\n", o.clients, o.messages,
	    o.host, o.port, o.pause_ms / 1000, o.pause_ms % 1000,
	    (unsigned long long)o.seed, o.timeout_ms / 1000);
	fflush(stdout);
	for (i = 0; i < o.clients; i++) {
		if ((pids[i] = fork()) == -1) {
			perror("echoclient: fork");
			res[i].failed = 1;
			continue;
		}
		if (pids[i] == 0) {
			sigprocmask(SIG_SETMASK, &old, NULL);
			run_client(&o, i + 1, deadline, &res[i]);
			_exit(res[i].failed ? EX_FAIL : 0);
		}
	}
	killed = reap_all(pids, o.clients, deadline + GRACE_MS);
	for (i = 0; i < o.clients; i++) {
		if (pids[i] > 0)
			res[i].failed = 1; /* killed: it could not say so */
		ok += res[i].ok;
		failed += res[i].failed;
	}
	printf("echoclient: %d exchange(s) right of %d, %d client(s) failed%s"
	    "\n", ok, o.clients * o.messages, failed, killed > 0 ?
	    " (some killed at the deadline)" : "");
	return failed == 0 && ok == o.clients * o.messages ? 0 : EX_FAIL;
}
