/*
 * serve: the blocking models' shared waiting and one-connection service
 * (see serve.h).  Never blocks longer than the heartbeat; never exits
 * but through the caller.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "cidr.h"
#include "climit.h"
#include "listener.h"
#include "log.h"
#include "serve.h"

#define HEARTBEAT_MS 1000
#define ACCEPT_PAUSE_MS 100
#define WARN_INTERVAL_MS 10000
#define SERVE_END_GRACE_MS 500 /* within the master's KILL_GRACE_MS */
#define MAX_POLL (1 + 16) /* the signalfd and CONF_LISTEN_MAX listeners */

uint64_t
serve_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The shared page: a process-shared, robust lock and the log limits. */
static struct serve_shared *
shared_create(void)
{
	struct serve_shared *sh;
	pthread_mutexattr_t ma;
	int rc;

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return NULL;
	memset(sh, 0, sizeof(*sh));
	if (pthread_mutexattr_init(&ma) != 0)
		return NULL;
	rc = pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
	if (rc == 0)
		rc = pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
	if (rc == 0)
		rc = pthread_mutex_init(&sh->lock, &ma);
	pthread_mutexattr_destroy(&ma);
	return rc == 0 ? sh : NULL;
}

/* A child killed while holding the lock leaves it to the next one. */
static void
sh_lock(struct serve *s)
{
	if (pthread_mutex_lock(&s->sh->lock) == EOWNERDEAD)
		(void)pthread_mutex_consistent(&s->sh->lock);
}

static void
sh_unlock(struct serve *s)
{
	pthread_mutex_unlock(&s->sh->lock);
}

int
serve_init(struct serve *s, const struct worker_args *a, int with_chld)
{
	const struct conf *cf = a->conf;
	sigset_t set;

	memset(s, 0, sizeof(*s));
	s->a = a;
	s->sb = &a->sb->slots[a->slot];
	s->listening = 1;
	s->parent = a->master_pid;
	s->idle_ms = (uint64_t)cf->idle_timeout * 1000;
	s->life_ms = (uint64_t)cf->max_connection_time * 1000;
	s->limited = a->limits != NULL && a->limits->hdr != NULL &&
	    (cf->max_connections_per_ip > 0 ||
	    cf->max_connection_rate_per_ip > 0);
	/* As the events worker: at least four beats per worker_timeout. */
	s->heartbeat_ms = HEARTBEAT_MS;
	if (cf->worker_timeout > 0 &&
	    (uint64_t)cf->worker_timeout * 250 < s->heartbeat_ms)
		s->heartbeat_ms = (uint64_t)cf->worker_timeout * 250;
	s->hdr_ms = (uint64_t)cf->proxy_timeout * 1000;
	if ((s->sh = shared_create()) == NULL)
		return -1;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (with_chld)
		sigaddset(&set, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &set, NULL) == -1)
		return -1;
	s->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	return s->sigfd == -1 ? -1 : 0;
}

/* ---- a connection's clock ---- */

static uint64_t
conn_deadline(uint64_t last, uint64_t start, uint64_t idle_ms,
    uint64_t life_ms, uint64_t drain_deadline)
{
	uint64_t t = UINT64_MAX;

	if (idle_ms && last + idle_ms < t)
		t = last + idle_ms;
	if (life_ms && start + life_ms < t)
		t = start + life_ms;
	if (drain_deadline && drain_deadline < t)
		t = drain_deadline;
	return t;
}

const char *
serve_conn_expired(uint64_t now, uint64_t last, uint64_t start,
    uint64_t idle_ms, uint64_t life_ms, uint64_t drain_deadline)
{
	if (drain_deadline && now >= drain_deadline)
		return "shutdown";
	if (life_ms && now >= start + life_ms)
		return "max_connection_time";
	if (idle_ms && now >= last + idle_ms)
		return "idle timeout";
	return NULL;
}

int
serve_conn_timeout(uint64_t now, uint64_t last, uint64_t start,
    uint64_t idle_ms, uint64_t life_ms, uint64_t drain_deadline,
    uint64_t heartbeat_ms)
{
	uint64_t t = conn_deadline(last, start, idle_ms, life_ms,
	    drain_deadline);

	if (now + heartbeat_ms < t)
		t = now + heartbeat_ms;
	/* The coarse clock ticks every few ms: never ask for less than 1. */
	return t > now ? (int)(t - now) : 1;
}

/* ---- the worker's turn ---- */

static void
publish(struct serve *s, uint64_t now)
{
	if (!s->in_child)
		sb_store(&s->sb->heartbeat_ms, now);
}

void
serve_begin_drain(struct serve *s, const char *why)
{
	uint64_t now = serve_now();

	if (serve_draining(s))
		return;
	__atomic_store_n(&s->drain_deadline, now +
	    (uint64_t)s->a->conf->shutdown_timeout * 1000 + 1,
	    __ATOMIC_RELEASE);
	__atomic_store_n(&s->draining, 1, __ATOMIC_RELEASE);
	if (s->in_child)
		return;
	sb_store(&s->sb->state, SB_DRAINING);
	log_info("%s: draining %llu connection(s) and the accept queue, at "
	    "most %d s", why, (unsigned long long)sb_load(&s->sb->conns_open),
	    s->a->conf->shutdown_timeout);
}

static void
read_signals(struct serve *s)
{
	struct signalfd_siginfo si;

	while (read(s->sigfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGCHLD)
			s->child_exited = 1;
		else
			serve_begin_drain(s, si.ssi_signo == SIGINT ?
			    "SIGINT" : "SIGTERM");
	}
}

uint64_t
serve_tick(struct serve *s)
{
	uint64_t now = serve_now();

	read_signals(s);
	if (!serve_draining(s) && getppid() != s->parent)
		serve_begin_drain(s, s->in_child ? "worker gone" : "master gone");
	if (s->limited && !s->in_child && now >= s->next_sweep) {
		sh_lock(s);
		climit_sweep(s->a->limits, s->a->slot, now / 1000);
		sh_unlock(s);
		s->next_sweep = now + 1000;
	}
	if (s->accept_resume && now >= s->accept_resume)
		s->accept_resume = 0;
	publish(s, now);
	return now;
}

/* ---- accepting ---- */

/* A heartbeat, or less when the drain ends sooner. */
static int
wait_ms(struct serve *s)
{
	uint64_t now = serve_now(), t = s->heartbeat_ms;

	if (serve_draining(s) && s->drain_deadline < now + t)
		t = s->drain_deadline > now ? s->drain_deadline - now : 1;
	return (int)t;
}

void
serve_pause(struct serve *s, const char *what, int err)
{
	uint64_t now = serve_now();

	/*
	 * Out of descriptors, memory or processes: stop accepting for a
	 * moment instead of spinning; the clients wait in the accept queue.
	 */
	s->accept_resume = now + ACCEPT_PAUSE_MS;
	if (now - s->last_warn >= WARN_INTERVAL_MS || !s->last_warn) {
		log_warnx("%s: %s; pausing accepts for %d ms (logged once per "
		    "%d s)", what, strerror(err), ACCEPT_PAUSE_MS,
		    WARN_INTERVAL_MS / 1000);
		s->last_warn = now;
	}
}

static void
close_listeners(struct serve *s, int empty)
{
	size_t i;

	for (i = 0; i < s->a->nlfds; i++)
		close(s->a->lfds[i]);
	s->listening = 0;
	log_debug("accept queue%s %s: listeners closed, %llu accepted while "
	    "draining", s->a->nlfds > 1 ? "s" : "", empty ? "empty" :
	    serve_now() >= s->drain_deadline ?
	    "not empty at shutdown_timeout" :
	    "not empty but this worker is full",
	    (unsigned long long)s->drain_accepted);
}

/* 1: got one from listener li; 0: its queue is empty; -1: later. */
static int
accept_one(struct serve *s, size_t li, struct serve_client *cl)
{
	socklen_t sl = sizeof(cl->ss);

	cl->fd = accept4(s->a->lfds[li], (struct sockaddr *)&cl->ss, &sl,
	    SOCK_NONBLOCK | SOCK_CLOEXEC);
	cl->proxied = (s->a->proxy_mask >> li) & 1;
	cl->key = 0;
	if (cl->fd != -1) {
		sb_add(&s->sb->accepted, 1);
		return 1;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return 0;
	if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
	    errno == ENOMEM)
		serve_pause(s, "accept", errno);
	else if (errno != EINTR && errno != ECONNABORTED && errno != EPROTO &&
	    errno != EPERM)
		log_warnx("accept: %s", strerror(errno));
	return -1;
}

/* Draining: take from every queue in turn until all are empty. */
static int
drain_accept(struct serve *s, int can_accept, struct serve_client *cl)
{
	size_t i;
	int empty = 1, r;

	for (i = 0; can_accept && s->accept_resume == 0 &&
	    i < s->a->nlfds; i++) {
		if ((r = accept_one(s, i, cl)) == 1) {
			s->drain_accepted++;
			return 1;
		}
		if (r == -1)
			empty = 0;
	}
	if (worker_drain_stop_accepting(empty && can_accept, can_accept &&
	    s->accept_resume == 0, serve_now(), s->drain_deadline))
		close_listeners(s, empty && can_accept);
	return 0;
}

int
serve_accept(struct serve *s, int can_accept, struct serve_client *cl)
{
	struct pollfd pfd[MAX_POLL];
	nfds_t n = 1, i;
	int on, timeout = wait_ms(s);

	on = s->listening && can_accept && s->accept_resume == 0;
	pfd[0].fd = s->sigfd;
	pfd[0].events = POLLIN;
	for (i = 0; on && i < s->a->nlfds && n < MAX_POLL; i++, n++) {
		pfd[n].fd = s->a->lfds[i];
		pfd[n].events = POLLIN;
	}
	if (s->accept_resume)
		timeout = ACCEPT_PAUSE_MS;
	/* Full: the thread models waited on their condition variable. */
	if (!can_accept && s->waits_when_full)
		timeout = 0;
	/* Still emptying the accept queue: do not wait for it. */
	if (serve_draining(s) && s->listening)
		timeout = on ? 0 : 10;
	if (poll(pfd, n, timeout) == -1 && errno != EINTR)
		log_warn("poll");
	serve_tick(s);
	if (serve_draining(s))
		return s->listening ? drain_accept(s, can_accept, cl) : 0;
	for (i = 1; on && i < n; i++)
		if ((pfd[i].revents & POLLIN) &&
		    accept_one(s, i - 1, cl) == 1)
			return 1;
	return 0;
}

int
serve_done(struct serve *s, unsigned nopen)
{
	return serve_draining(s) && ((nopen == 0 && !s->listening) ||
	    serve_now() >= s->drain_deadline);
}

/* ---- per-client limits ---- */

/* Under the lock: a refusal, said at most once a second. */
static void
log_refusal(struct serve *s, const struct conn *c, enum climit_verdict v,
    uint64_t now)
{
	char peer[CONN_PEER_MAX];
	uint64_t n;

	if ((n = log_limit_due(&s->sh->refusal_log, now, 1000)) == 0)
		return;
	conn_format_peer(c, peer, sizeof(peer));
	log_warnx("refused %s: %s (%llu refused since the last such line)",
	    peer, v == CLIMIT_TOO_MANY ? "max_connections_per_ip reached" :
	    "max_connection_rate_per_ip reached", (unsigned long long)n);
}

/*
 * Count c against its client: 0 (*key set, or 0 when not counted), or
 * -1: refused, and logged.  A balancer's own connection (a LOCAL header)
 * is not counted.  With the client a header named, the worker's last
 * client on the scoreboard too (the same lock keeps its one writer).
 */
static int
admit(struct serve *s, const struct conn *c, uint64_t *key)
{
	const struct conf *cf = s->a->conf;
	struct sockaddr_storage ss;
	enum climit_verdict v = CLIMIT_OK;
	uint64_t now = serve_now();
	int lo;

	*key = 0;
	conn_peer(c, &ss);
	if (c->proxy == CONN_PROXY_DONE || (s->limited &&
	    c->proxy != CONN_PROXY_LOCAL)) {
		sh_lock(s);
		if (c->proxy == CONN_PROXY_DONE)
			conn_publish_client(c, s->sb);
		if (s->limited && c->proxy != CONN_PROXY_LOCAL &&
		    (*key = climit_key((const struct sockaddr *)&ss,
		    &lo)) != 0 && !(lo && cf->limits_exempt_loopback)) {
			v = climit_admit(s->a->limits, s->a->slot, *key,
			    now / 1000, (uint32_t)cf->max_connections_per_ip,
			    (uint32_t)cf->max_connection_rate_per_ip);
			if (v != CLIMIT_OK) {
				log_refusal(s, c, v, now);
				sb_add(&s->sb->refused[v == CLIMIT_TOO_MANY ?
				    SB_REFUSE_CONNS : SB_REFUSE_RATE], 1);
			}
		} else
			*key = 0;
		sh_unlock(s);
	}
	if (v != CLIMIT_OK)
		*key = 0;
	return v == CLIMIT_OK ? 0 : -1;
}

static void
release(struct serve *s, uint64_t key)
{
	if (key == 0)
		return;
	sh_lock(s);
	climit_release(s->a->limits, s->a->slot, key, serve_now() / 1000);
	sh_unlock(s);
}

/* A proxied listener's connection closed unserved: counted, and said at
 * most once a second per worker. */
static void
proxy_closed(struct serve *s, const char *peer, const char *why)
{
	uint64_t n;

	sb_add(&s->sb->proxy_closed, 1);
	sh_lock(s);
	n = log_limit_due(&s->sh->px_log, serve_now(), 1000);
	sh_unlock(s);
	if (n != 0)
		log_warnx("PROXY: closed %s: %s (%llu since the last such "
		    "line)", peer, why, (unsigned long long)n);
}

int
serve_take(struct serve *s, struct serve_client *cl)
{
	const struct conf *cf = s->a->conf;
	char peer[CONN_PEER_MAX];
	struct conn c;

	cl->key = 0;
	if (cl->proxied) {
		if (!cidr_match(cf->proxy_trusted, cf->nproxy_trusted,
		    (const struct sockaddr *)&cl->ss)) {
			listener_format((const struct sockaddr *)&cl->ss, peer,
			    sizeof(peer));
			proxy_closed(s, peer, "not in proxy_trusted");
			sb_add(&s->sb->closed[SB_CLOSE_PROXY], 1);
			close(cl->fd);
			return -1;
		}
	} else {
		conn_init(&c, -1, 0);
		conn_set_peer(&c, &cl->ss);
		if (admit(s, &c, &cl->key) == -1) {
			sb_add(&s->sb->closed[SB_CLOSE_LIMIT], 1);
			close(cl->fd);
			return -1;
		}
	}
	sb_add(&s->sb->conns_open, 1);
	sb_add(&s->sb->conns_served, 1);
	return 0;
}

void
serve_untake(struct serve *s, uint64_t key)
{
	release(s, key);
	sb_add(&s->sb->conns_open, -1);
}

/* ---- one connection ---- */

static void
log_end(const struct conn *c, const char *how, uint64_t now)
{
	char peer[CONN_PEER_MAX];

	conn_format_peer(c, peer, sizeof(peer));
	log_msg(LOG_LVL_DEBUG, "%s closed: %s%s%s, %llu bytes in, %llu out, "
	    "%.3f s", peer, how, c->err ? ": " : "",
	    c->err ? strerror(c->err) : "", (unsigned long long)c->bytes_in,
	    (unsigned long long)c->bytes_out,
	    (double)(now - c->start_ms) / 1000.0);
}

/*
 * Bytes of a proxied connection before its header is complete; once it
 * is, the client it names is admitted.  NULL, or why the connection ends.
 */
static const char *
header_turn(struct serve *s, struct conn *c, uint64_t *key,
    unsigned char *buf, struct bufpool *bp)
{
	struct proxy_hdr h;
	char peer[CONN_PEER_MAX], why[128];

	switch (conn_on_header(c, buf, CONN_BUFSIZE, bp, &h)) {
	case PROXY_NEED_MORE:
		return NULL;
	case PROXY_BAD:
		conn_format_peer(c, peer, sizeof(peer));
		conn_header_why(c, &h, why, sizeof(why));
		proxy_closed(s, peer, why);
		return "bad PROXY header";
	case PROXY_OK:
		break;
	}
	sb_add(&s->sb->proxied, 1);
	c->last_ms = serve_now();
	if (admit(s, c, key) == -1)
		return "refused"; /* what followed the header goes unsent */
	/* Admitted: what came behind the header goes out now. */
	return conn_on_writable(c, bp) == CONN_FAILED ? "failed" : NULL;
}

/* Past proxy_timeout without a whole header: the reason, or NULL. */
static const char *
header_late(struct serve *s, const struct conn *c, uint64_t now)
{
	char peer[CONN_PEER_MAX], why[64];

	if (c->proxy != CONN_PROXY_WAIT || now < c->start_ms + s->hdr_ms)
		return NULL;
	conn_format_peer(c, peer, sizeof(peer));
	snprintf(why, sizeof(why), "no complete header after %d s",
	    s->a->conf->proxy_timeout);
	proxy_closed(s, peer, why);
	return "PROXY header timeout";
}

/* One wait and what it brought; the reason the connection ended, or NULL. */
static const char *
conn_turn(struct serve *s, struct conn *c, uint64_t *key, unsigned char *buf,
    struct bufpool *bp)
{
	struct pollfd pfd[2];
	uint64_t now = s->own_loop || s->in_child ? serve_tick(s) : serve_now();
	uint64_t dd = serve_draining(s) ?
	    __atomic_load_n(&s->drain_deadline, __ATOMIC_ACQUIRE) : 0;
	const char *why;
	enum conn_status st;
	nfds_t n = 1;
	int timeout;

	if ((why = serve_conn_expired(now, c->last_ms, c->start_ms,
	    s->idle_ms, s->life_ms, dd)) != NULL ||
	    (why = header_late(s, c, now)) != NULL)
		return why;
	/*
	 * A prefork worker that is serving when the drain begins is full:
	 * it cannot take from the queue, so it lets its listeners go at
	 * once, as a full events worker does, and the idle workers (or the
	 * next generation) take the queue.
	 */
	if (s->own_loop && s->listening && dd != 0)
		close_listeners(s, 0);
	pfd[0].fd = c->fd;
	pfd[0].events = c->writing ? POLLOUT : POLLIN;
	if (s->own_loop || s->in_child) {
		pfd[n].fd = s->sigfd;
		pfd[n++].events = POLLIN;
	}
	timeout = serve_conn_timeout(now, c->last_ms, c->start_ms, s->idle_ms,
	    s->life_ms, dd, s->heartbeat_ms);
	if (c->proxy == CONN_PROXY_WAIT && c->start_ms + s->hdr_ms < now +
	    (uint64_t)timeout)
		timeout = (int)(c->start_ms + s->hdr_ms - now);
	if (poll(pfd, n, timeout) == -1 && errno != EINTR)
		return "failed";
	if (pfd[0].revents == 0)
		return NULL;
	if (c->proxy == CONN_PROXY_WAIT)
		return header_turn(s, c, key, buf, bp);
	st = c->writing ? conn_on_writable(c, bp) :
	    conn_on_readable(c, buf, CONN_BUFSIZE, bp);
	if (st == CONN_DONE)
		return "client closed";
	if (st == CONN_FAILED)
		return "failed";
	c->last_ms = serve_now();
	return NULL;
}

void
serve_conn(struct serve *s, struct serve_client *cl, unsigned char *buf,
    struct bufpool *bp)
{
	const char *how;
	struct conn c;

	conn_init(&c, cl->fd, serve_now());
	conn_set_peer(&c, &cl->ss);
	if (cl->proxied)
		c.proxy = CONN_PROXY_WAIT;
	while ((how = conn_turn(s, &c, &cl->key, buf, bp)) == NULL)
		;
	if (log_get_level() >= LOG_LVL_DEBUG)
		log_end(&c, how, serve_now());
	sb_add(&s->sb->bytes_in, (int64_t)c.bytes_in);
	sb_add(&s->sb->bytes_out, (int64_t)c.bytes_out);
	sb_add(&s->sb->closed[sb_close_reason(how, c.err)], 1);
	conn_close(&c, bp);
}

/* ---- the thread models' lock ---- */

int
serve_cond_init(pthread_cond_t *cv)
{
	pthread_condattr_t ca;
	int rc;

	if (pthread_condattr_init(&ca) != 0)
		return -1;
	(void)pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	rc = pthread_cond_init(cv, &ca);
	pthread_condattr_destroy(&ca);
	return rc == 0 ? 0 : -1;
}

void
serve_wait_room(struct serve *s, pthread_mutex_t *mu, pthread_cond_t *cv,
    const unsigned *busy, unsigned capacity)
{
	struct timespec ts;
	int ms = wait_ms(s);

	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (serve_draining(s) && serve_now() >= s->drain_deadline)
		ms = 50; /* the end: look often, the grace is short */
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(mu);
	while (*busy >= capacity &&
	    pthread_cond_timedwait(cv, mu, &ts) == 0)
		;
	pthread_mutex_unlock(mu);
}

void
serve_wait_gone(struct serve *s, pthread_mutex_t *mu, pthread_cond_t *cv,
    const unsigned *busy)
{
	uint64_t end = serve_now() + SERVE_END_GRACE_MS;
	unsigned n;

	for (;;) {
		pthread_mutex_lock(mu);
		n = *busy;
		pthread_mutex_unlock(mu);
		if (n == 0 || serve_now() >= end)
			return;
		serve_wait_room(s, mu, cv, busy, 1);
	}
}

void
serve_wait_children(struct serve *s, const unsigned *n,
    void (*reap)(void *), void *arg)
{
	uint64_t end = serve_now() + SERVE_END_GRACE_MS;
	struct pollfd pfd = { .fd = s->sigfd, .events = POLLIN };

	while (*n > 0 && serve_now() < end) {
		(void)poll(&pfd, 1, 20);
		read_signals(s);
		reap(arg);
	}
}
