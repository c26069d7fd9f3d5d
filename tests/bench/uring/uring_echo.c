/*
 * uring_echo: an experiment, not part of echod.  A minimal uppercase TCP
 * echo server on io_uring (liburing 2.3), to measure whether an io_uring
 * backend would beat echod's epoll loop on this kind of machine: make
 * bench-uring runs it side by side with echod (docs/performance.md).
 * Measured so far: within the machine's noise (under 10%) on connections
 * and small round trips, and far behind on bulk, so echod stays on epoll.
 *
 * usage: uring_echo -p PORT [-n NPROC] [-b NBUFS] [-B BUFSIZE]
 *
 * Listens on 127.0.0.1:PORT only.  Forks NPROC workers; each has its own
 * SO_REUSEPORT listening socket and its own io_uring with:
 *   - multishot accept on its listening socket,
 *   - one multishot recv per connection using a provided-buffer ring,
 *   - at most one send/sendmsg in flight per connection (ordering), queued
 *     received chunks are sent in order, short sends resume the remainder,
 *   - buffers go back to the ring once their bytes have been sent.
 * No supervision, no limits, no configuration: the fast path only.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define RING_ENTRIES	4096
#define BGID		0
#define MAX_IOV		16	/* chunks per sendmsg */
#define Q_HIGH		64	/* queued chunks: stop receiving on this conn */
#define Q_LOW		16	/* queued chunks: resume receiving */

enum { OP_ACCEPT = 1, OP_RECV, OP_SEND, OP_CANCEL };

struct chunk {
	uint32_t off, len;
	uint16_t bid;
};

struct conn {
	uint32_t gen;
	bool open, recv_armed, send_inflight, eof, err, cancel_sent, starved;
	uint32_t qhead, qcount, qcap;	/* circular queue of received chunks */
	struct chunk *q;
	struct iovec *iov;		/* MAX_IOV, for sendmsg */
	struct msghdr *mh;
};

struct starve_ent {
	int fd;
	uint32_t gen;
};

/* per-worker state */
static struct io_uring ring;
static struct io_uring_buf_ring *br;
static unsigned br_mask;
static unsigned br_pending;	/* buffers added since last advance */
static char *bufs;
static unsigned nbufs = 1024, bufsz = 16384;
static unsigned held;		/* buffers owned by us (queued for send) */
static struct conn *conns;
static int nconns;
static int lfd;
static uint32_t gen_ctr;
static struct starve_ent *starved;
static int nstarved, capstarved;

static void die(const char *what, int err)
{
	fprintf(stderr, "uring: %s: %s\n", what, strerror(err));
	exit(1);
}

static inline uint64_t mkud(int type, int fd, uint32_t gen)
{
	return (uint64_t)type | ((uint64_t)(uint32_t)fd << 8) |
	       ((uint64_t)gen << 32);
}

static struct io_uring_sqe *get_sqe(void)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

	while (!sqe) {
		int r = io_uring_submit(&ring);

		if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY)
			die("io_uring_submit", -r);
		sqe = io_uring_get_sqe(&ring);
	}
	return sqe;
}

static void buf_return(uint16_t bid)
{
	io_uring_buf_ring_add(br, bufs + (size_t)bid * bufsz, bufsz, bid,
			      br_mask, br_pending++);
	held--;
}

static void arm_accept(void)
{
	struct io_uring_sqe *sqe = get_sqe();

	io_uring_prep_multishot_accept(sqe, lfd, NULL, NULL, 0);
	io_uring_sqe_set_data64(sqe, mkud(OP_ACCEPT, 0, 0));
}

static void arm_recv(int fd, struct conn *c)
{
	struct io_uring_sqe *sqe = get_sqe();

	io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
	io_uring_sqe_set_data64(sqe, mkud(OP_RECV, fd, c->gen));
	c->recv_armed = true;
	c->cancel_sent = false;
}

static void cancel_recv(int fd, struct conn *c)
{
	struct io_uring_sqe *sqe;

	if (!c->recv_armed || c->cancel_sent)
		return;
	sqe = get_sqe();
	io_uring_prep_cancel64(sqe, mkud(OP_RECV, fd, c->gen), 0);
	io_uring_sqe_set_data64(sqe, mkud(OP_CANCEL, fd, c->gen));
	c->cancel_sent = true;
}

static void maybe_rearm(int fd, struct conn *c)
{
	if (!c->recv_armed && !c->eof && !c->err && c->qcount <= Q_LOW)
		arm_recv(fd, c);
}

static void q_drop(struct conn *c)
{
	while (c->qcount) {
		buf_return(c->q[c->qhead].bid);
		c->qhead = (c->qhead + 1) & (c->qcap - 1);
		c->qcount--;
	}
	c->qhead = 0;
}

static void q_push(struct conn *c, uint16_t bid, uint32_t len)
{
	if (c->qcount == c->qcap) {
		uint32_t ncap = c->qcap ? c->qcap * 2 : 8, i;
		struct chunk *nq = malloc(ncap * sizeof(*nq));

		if (!nq)
			die("malloc", ENOMEM);
		for (i = 0; i < c->qcount; i++)
			nq[i] = c->q[(c->qhead + i) & (c->qcap - 1)];
		free(c->q);
		c->q = nq;
		c->qcap = ncap;
		c->qhead = 0;
	}
	c->q[(c->qhead + c->qcount) & (c->qcap - 1)] =
		(struct chunk){ .off = 0, .len = len, .bid = bid };
	c->qcount++;
}

/* close once no operation references the connection any more */
static void try_close(int fd, struct conn *c)
{
	if (c->recv_armed || c->send_inflight)
		return;
	q_drop(c);
	close(fd);
	c->open = false;
	c->gen = 0;
}

static void conn_fail(int fd, struct conn *c)
{
	c->err = true;
	if (!c->send_inflight)
		q_drop(c);
	cancel_recv(fd, c);
	try_close(fd, c);
}

static void issue_send(int fd, struct conn *c)
{
	struct io_uring_sqe *sqe;
	uint32_t i, n;

	if (c->send_inflight || !c->qcount)
		return;
	sqe = get_sqe();
	if (c->qcount == 1) {
		struct chunk *h = &c->q[c->qhead];

		io_uring_prep_send(sqe, fd,
				   bufs + (size_t)h->bid * bufsz + h->off,
				   h->len, MSG_NOSIGNAL);
	} else {
		if (!c->iov) {
			c->iov = malloc(MAX_IOV * sizeof(*c->iov));
			c->mh = malloc(sizeof(*c->mh));
			if (!c->iov || !c->mh)
				die("malloc", ENOMEM);
		}
		n = c->qcount < MAX_IOV ? c->qcount : MAX_IOV;
		for (i = 0; i < n; i++) {
			struct chunk *k = &c->q[(c->qhead + i) & (c->qcap - 1)];

			c->iov[i].iov_base = bufs + (size_t)k->bid * bufsz + k->off;
			c->iov[i].iov_len = k->len;
		}
		memset(c->mh, 0, sizeof(*c->mh));
		c->mh->msg_iov = c->iov;
		c->mh->msg_iovlen = n;
		io_uring_prep_sendmsg(sqe, fd, c->mh, MSG_NOSIGNAL);
	}
	io_uring_sqe_set_data64(sqe, mkud(OP_SEND, fd, c->gen));
	c->send_inflight = true;
}

static inline void upcase(unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] -= (unsigned char)((unsigned)(p[i] - 'a') < 26u) << 5;
}

static void starve(int fd, struct conn *c)
{
	if (c->starved)
		return;
	if (nstarved == capstarved) {
		capstarved = capstarved ? capstarved * 2 : 64;
		starved = realloc(starved, capstarved * sizeof(*starved));
		if (!starved)
			die("realloc", ENOMEM);
	}
	starved[nstarved++] = (struct starve_ent){ fd, c->gen };
	c->starved = true;
}

static void on_accept(struct io_uring_cqe *cqe)
{
	int fd = cqe->res;

	if (!(cqe->flags & IORING_CQE_F_MORE))
		arm_accept();
	if (fd < 0) {
		if (fd != -EAGAIN && fd != -EINTR && fd != -ECONNABORTED)
			fprintf(stderr, "uring: accept: %s\n", strerror(-fd));
		return;
	}
	if (fd >= nconns) {
		close(fd);
		return;
	}
	struct conn *c = &conns[fd];
	int one = 1;

	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (++gen_ctr == 0)
		gen_ctr = 1;
	c->gen = gen_ctr;
	c->open = true;
	c->recv_armed = c->send_inflight = c->eof = c->err = false;
	c->cancel_sent = c->starved = false;
	c->qhead = c->qcount = 0;
	arm_recv(fd, c);
}

static void on_recv(struct io_uring_cqe *cqe, int fd, struct conn *c)
{
	int res = cqe->res;

	if (res > 0) {
		uint16_t bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;

		held++;
		if (c->err) {
			buf_return(bid);
		} else {
			upcase((unsigned char *)bufs + (size_t)bid * bufsz,
			       (size_t)res);
			q_push(c, bid, (uint32_t)res);
			issue_send(fd, c);
			if (c->qcount >= Q_HIGH)
				cancel_recv(fd, c);	/* throttle */
		}
	} else if (cqe->flags & IORING_CQE_F_BUFFER) {
		/* should not happen, but never leak a buffer */
		held++;
		buf_return(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
	}
	if (cqe->flags & IORING_CQE_F_MORE)
		return;

	/* multishot recv terminated */
	c->recv_armed = false;
	c->cancel_sent = false;
	if (res == 0) {
		c->eof = true;
	} else if (res == -ENOBUFS) {
		starve(fd, c);
	} else if (res < 0 && res != -ECANCELED) {
		conn_fail(fd, c);
		return;
	}
	if (c->err || (c->eof && !c->qcount)) {
		try_close(fd, c);
		return;
	}
	if (res != -ENOBUFS)
		maybe_rearm(fd, c);
}

static void on_send(struct io_uring_cqe *cqe, int fd, struct conn *c)
{
	int res = cqe->res;

	c->send_inflight = false;
	if (res < 0 && res != -EINTR && res != -EAGAIN) {
		conn_fail(fd, c);
		return;
	}
	if (c->err) {
		q_drop(c);
		try_close(fd, c);
		return;
	}
	while (res > 0) {
		struct chunk *h = &c->q[c->qhead];

		if ((uint32_t)res >= h->len) {
			res -= h->len;
			buf_return(h->bid);
			c->qhead = (c->qhead + 1) & (c->qcap - 1);
			c->qcount--;
		} else {
			h->off += res;
			h->len -= res;
			res = 0;
		}
	}
	if (c->qcount) {
		issue_send(fd, c);
	} else if (c->eof) {
		try_close(fd, c);
		return;
	}
	maybe_rearm(fd, c);
}

static void handle_cqe(struct io_uring_cqe *cqe)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	int type = ud & 0xff;
	int fd = (int)((ud >> 8) & 0xffffff);
	uint32_t gen = (uint32_t)(ud >> 32);
	struct conn *c;

	if (type == OP_ACCEPT) {
		on_accept(cqe);
		return;
	}
	if (type == OP_CANCEL)
		return;
	c = &conns[fd];
	if (!c->open || c->gen != gen) {
		/* cannot happen: we close only when nothing is in flight */
		fprintf(stderr, "uring: stale cqe type %d fd %d\n", type, fd);
		if (cqe->flags & IORING_CQE_F_BUFFER) {
			held++;
			buf_return(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
		}
		return;
	}
	if (type == OP_RECV)
		on_recv(cqe, fd, c);
	else if (type == OP_SEND)
		on_send(cqe, fd, c);
}

static void rearm_starved(void)
{
	int i, n = nstarved;

	if (!n || held >= nbufs)
		return;
	nstarved = 0;
	for (i = 0; i < n; i++) {
		struct conn *c = &conns[starved[i].fd];

		if (!c->open || c->gen != starved[i].gen)
			continue;
		c->starved = false;
		maybe_rearm(starved[i].fd, c);
	}
}

static int make_listener(int port)
{
	struct sockaddr_in sa;
	int fd, one = 1;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket", errno);
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)))
		die("setsockopt", errno);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)))
		die("bind", errno);
	if (listen(fd, 4096))
		die("listen", errno);
	return fd;
}

static void setup_ring(void)
{
	static const unsigned tries[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
		IORING_SETUP_COOP_TASKRUN,
		0,
	};
	struct io_uring_params p;
	unsigned i;
	int r = -EINVAL;

	for (i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		memset(&p, 0, sizeof(p));
		p.flags = tries[i] | IORING_SETUP_CQSIZE;
		p.cq_entries = RING_ENTRIES * 4;
		r = io_uring_queue_init_params(RING_ENTRIES, &ring, &p);
		if (r == 0) {
			if (i > 0)
				fprintf(stderr, "uring: ring setup fell back "
					"to flags 0x%x\n", p.flags);
			return;
		}
	}
	die("io_uring_queue_init", -r);
}

static void setup_bufs(void)
{
	struct io_uring_buf_reg reg;
	size_t rsz = nbufs * sizeof(struct io_uring_buf);
	unsigned i;
	int r;

	br = mmap(NULL, rsz, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (br == MAP_FAILED)
		die("mmap", errno);
	bufs = mmap(NULL, (size_t)nbufs * bufsz, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (bufs == MAP_FAILED)
		die("mmap", errno);
	io_uring_buf_ring_init(br);
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (uint64_t)(uintptr_t)br;
	reg.ring_entries = nbufs;
	reg.bgid = BGID;
	r = io_uring_register_buf_ring(&ring, &reg, 0);
	if (r)
		die("io_uring_register_buf_ring", -r);
	br_mask = io_uring_buf_ring_mask(nbufs);
	held = nbufs;
	for (i = 0; i < nbufs; i++)
		buf_return((uint16_t)i);
	io_uring_buf_ring_advance(br, br_pending);
	br_pending = 0;
}

static void worker(int port, int readyfd, pid_t parent)
{
	struct rlimit rl;
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		_exit(1);

	lfd = make_listener(port);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		nconns = rl.rlim_cur > (1u << 20) ? (1 << 20) : (int)rl.rlim_cur;
	else
		nconns = 1024;
	conns = calloc((size_t)nconns, sizeof(*conns));
	if (!conns)
		die("calloc", ENOMEM);
	setup_ring();
	setup_bufs();
	arm_accept();
	if (write(readyfd, "r", 1) != 1)
		die("write", errno);
	close(readyfd);

	for (;;) {
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;
		int r = io_uring_submit_and_wait(&ring, 1);

		if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY &&
		    r != -ETIME)
			die("io_uring_submit_and_wait", -r);
		io_uring_for_each_cqe(&ring, head, cqe) {
			handle_cqe(cqe);
			n++;
		}
		io_uring_cq_advance(&ring, n);
		if (br_pending) {
			io_uring_buf_ring_advance(br, br_pending);
			br_pending = 0;
		}
		rearm_starved();
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: uring_echo -p PORT [-n NPROC] [-b NBUFS] "
			"[-B BUFSIZE]\n"
			"  NBUFS: power of two <= 32768 (default 1024)\n"
			"  BUFSIZE: bytes per buffer (default 16384)\n");
	exit(64);
}

int main(int argc, char **argv)
{
	int port = -1, nproc = 2, opt, i, pfd[2], got = 0;
	pid_t *kids, me = getpid();
	sigset_t set;
	struct rlimit rl;
	char tmp[64];

	while ((opt = getopt(argc, argv, "p:n:b:B:h")) != -1) {
		switch (opt) {
		case 'p': port = atoi(optarg); break;
		case 'n': nproc = atoi(optarg); break;
		case 'b': nbufs = (unsigned)atoi(optarg); break;
		case 'B': bufsz = (unsigned)atoi(optarg); break;
		default: usage();
		}
	}
	if (port <= 0 || port > 65535 || nproc < 1 || nproc > 1024 ||
	    nbufs < 1 || nbufs > 32768 || (nbufs & (nbufs - 1)) ||
	    bufsz < 64 || bufsz > (1u << 24))
		usage();

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);

	if (pipe(pfd))
		die("pipe", errno);
	kids = calloc((size_t)nproc, sizeof(*kids));
	if (!kids)
		die("calloc", ENOMEM);
	for (i = 0; i < nproc; i++) {
		kids[i] = fork();
		if (kids[i] < 0)
			die("fork", errno);
		if (kids[i] == 0) {
			close(pfd[0]);
			worker(port, pfd[1], me);
			_exit(1);
		}
	}
	close(pfd[1]);
	while (got < nproc) {
		ssize_t r = read(pfd[0], tmp, sizeof(tmp));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (int)r;
	}
	close(pfd[0]);

	int status = 0;

	if (got == nproc) {
		fprintf(stderr, "uring: ready on 127.0.0.1:%d, %d workers\n",
			port, nproc);
		for (;;) {
			int sig = sigwaitinfo(&set, NULL);

			if (sig == SIGTERM || sig == SIGINT)
				break;
			if (sig == SIGCHLD) {
				pid_t p = waitpid(-1, NULL, WNOHANG);

				if (p > 0) {
					fprintf(stderr, "uring: worker %d "
						"exited\n", (int)p);
					for (i = 0; i < nproc; i++)
						if (kids[i] == p)
							kids[i] = 0;
					status = 1;
					break;
				}
			}
		}
	} else {
		fprintf(stderr, "uring: workers failed to start\n");
		status = 1;
	}
	for (i = 0; i < nproc; i++)
		if (kids[i] > 0)
			kill(kids[i], SIGTERM);
	while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
		;
	return status;
}
