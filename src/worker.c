/*
 * worker: the event loop of one pool process.
 *
 * One epoll instance watches the listeners (shared with the other workers
 * through EPOLLEXCLUSIVE, so a new connection wakes one worker, not all),
 * the worker's own signalfd, and its connections.  Connections live in a
 * table allocated once; an idle one costs a struct conn and nothing else.
 * Idle connections sit in a list ordered by last activity, and all of
 * them in one ordered by accept time (olist.h), so the nearest deadline
 * is always a head and expiring costs nothing per event.
 *
 * This loop is the events model; under any other model (model.h) the
 * worker shares only the set-up here (worker_setup_process,
 * worker_enter_sandbox, worker_report_ready) and runs model_main().
 *
 * A worker never exits because of a client: a misbehaving peer is a
 * closed socket.  It exits when told to (after draining), when the master
 * is gone, or with ECHOD_EXIT_WORKER_FATAL when it cannot set itself up.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cidr.h"
#include "conn.h"
#include "exitcodes.h"
#include "listener.h"
#include "log.h"
#include "model.h"
#include "proctitle.h"
#include "sandbox.h"
#include "worker.h"

#define NIL OLIST_NIL
#define TAG_CONN 0ULL
#define TAG_LISTENER 1ULL
#define TAG_SIGNAL 2ULL
#define EV_TAG(u) ((u) >> 32)
#define EV_INDEX(u) ((uint32_t)(u))
#define MAX_EVENTS 256
#define ACCEPT_BATCH 64
#define HEARTBEAT_MS 1000
#define ACCEPT_PAUSE_MS 100
#define WARN_INTERVAL_MS 10000
#define STALE_PEER_MS 2000 /* a peer this quiet is not taking connections */
#define YIELD_RECHECK_MS 5 /* a yielding worker looks again this soon */

struct worker {
	const struct worker_args *a;
	struct sb_slot *sb;
	int epfd;
	int sigfd;
	int watching;  /* listeners are in the epoll set */
	int yielding;  /* holding more than our share: let the others accept */
	int listening; /* listeners still open (not draining) */
	int draining;
	uint64_t drain_deadline;
	uint64_t accept_resume; /* accepting paused until (0 = not paused) */
	uint64_t last_warn;
	uint64_t now;
	uint64_t idle_ms; /* 0 = no idle timeout */
	uint64_t heartbeat_ms; /* the longest wait between loop turns */
	struct conn *conns;
	uint32_t max;      /* table size */
	uint32_t used_hw;  /* entries ever used: the table is touched lazily */
	uint32_t free_head; /* through conns[].idle.next */
	struct olist idle;  /* by last activity, for idle_timeout */
	struct olist hdr;   /* awaiting a PROXY header, by accept time;
			     * through the idle link (never in both) */
	uint64_t hdr_ms;    /* proxy_timeout */
	struct log_limit px_log; /* PROXY closes, for the log */
	struct olist age;   /* by accept time, for max_connection_time */
	uint64_t life_ms;            /* max_connection_time; 0 = none */
	int limited;                 /* per-client limits are on */
	uint64_t next_sweep;
	struct log_limit refusal_log;
	uint32_t nopen;
	uint64_t served, bytes_in, bytes_out;
	uint64_t accepted, closed[SB_CLOSE_N], refused[SB_REFUSE_N];
	struct sb_counts published; /* what the slot has of them */
	uint64_t drain_accepted; /* taken from the queue while draining */
	unsigned char *buf;
	struct bufpool bp;
};

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- the idle list: least recently active first ---- */

/*
 * The list stays sorted by last_ms.  A connection already stamped with
 * this loop turn's time is among the equal stamps at the tail, so moving
 * it would change nothing that expiry can see: a busy connection costs one
 * comparison per event, and a relink once per clock tick.
 */
static void
idle_touch(struct worker *w, uint32_t i)
{
	if (w->conns[i].last_ms == w->now)
		return;
	w->conns[i].last_ms = w->now;
	olist_move_to_tail(&w->idle, i);
}

/* ---- per-client limits ---- */

static uint64_t
peer_key(const struct conn *c, int *loopback)
{
	struct sockaddr_storage ss;

	conn_peer(c, &ss);
	return climit_key((struct sockaddr *)&ss, loopback);
}

static void
log_refusal(struct worker *w, const struct conn *c, enum climit_verdict v)
{
	char peer[CONN_PEER_MAX];
	uint64_t n;

	/* A flood must not flood the log: one line a second at most. */
	if ((n = log_limit_due(&w->refusal_log, w->now, 1000)) == 0)
		return;
	conn_format_peer(c, peer, sizeof(peer));
	log_warnx("refused %s: %s (%llu refused since the last such line)",
	    peer, v == CLIMIT_TOO_MANY ?
	    "max_connections_per_ip reached" :
	    "max_connection_rate_per_ip reached", (unsigned long long)n);
}

/* Count the new connection c against its client; 0, or -1: refuse it. */
static int
admit(struct worker *w, struct conn *c)
{
	const struct conf *cf = w->a->conf;
	enum climit_verdict v;
	uint64_t key;
	int lo;

	if (!w->limited || c->proxy == CONN_PROXY_LOCAL ||
	    (key = peer_key(c, &lo)) == 0 ||
	    (lo && cf->limits_exempt_loopback))
		return 0;
	v = climit_admit(w->a->limits, w->a->slot, key, w->now / 1000,
	    (uint32_t)cf->max_connections_per_ip,
	    (uint32_t)cf->max_connection_rate_per_ip);
	if (v != CLIMIT_OK) {
		w->refused[v == CLIMIT_TOO_MANY ? SB_REFUSE_CONNS :
		    SB_REFUSE_RATE]++;
		log_refusal(w, c, v);
		return -1;
	}
	c->counted = 1;
	return 0;
}

static void
unadmit(struct worker *w, struct conn *c)
{
	int lo;

	if (c->counted)
		climit_release(w->a->limits, w->a->slot, peer_key(c, &lo),
		    w->now / 1000);
	c->counted = 0;
}

/* ---- listeners ---- */

static void
watch_listeners(struct worker *w, int on)
{
	struct epoll_event ev;
	size_t i;

	if (!w->listening || w->watching == on)
		return;
	for (i = 0; i < w->a->nlfds; i++) {
		ev.events = EPOLLIN | EPOLLEXCLUSIVE;
		ev.data.u64 = TAG_LISTENER << 32 | i;
		if (epoll_ctl(w->epfd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL,
		    w->a->lfds[i], &ev) == -1)
			log_warn("epoll_ctl listener %zu", i);
	}
	w->watching = on;
}

/*
 * EPOLLEXCLUSIVE wakes the first worker waiting on the listener, so on a
 * lightly loaded pool one worker would take nearly every connection (seen:
 * 29 of 32, and all of them reset when that worker dies).  A worker that
 * holds more than its share of the pool's open connections stops watching
 * the listener until the others have caught up, as nginx's
 * accept_disabled does.  Only live, ready peers count: a stopped worker's
 * share goes to the others.
 */
static int
over_share(const struct worker *w)
{
	const struct scoreboard *sb = w->a->sb;
	unsigned i, used = (unsigned)sb_load(&sb->hdr->slots_used), peers = 1;
	uint64_t total = w->nopen, avg, slack;
	const struct sb_slot *s;

	for (i = 0; i < used && i < sb->nslots; i++) {
		s = &sb->slots[i];
		if (i == w->a->slot || sb_load(&s->state) != SB_READY ||
		    sb_load(&s->heartbeat_ms) + STALE_PEER_MS < w->now)
			continue;
		peers++;
		total += sb_load(&s->conns_open);
	}
	if (peers < 2)
		return 0;
	avg = total / peers;
	slack = avg / 8 > 4 ? avg / 8 : 4;
	return w->nopen > avg + slack;
}

/* Accepting is worth watching for: not full, not paused, not draining. */
static void
update_watch(struct worker *w)
{
	watch_listeners(w, w->nopen < w->max && w->accept_resume == 0 &&
	    !w->yielding);
}

static void
close_listeners(struct worker *w)
{
	size_t i;

	watch_listeners(w, 0);
	for (i = 0; i < w->a->nlfds; i++)
		close(w->a->lfds[i]);
	w->listening = 0;
}

/* ---- connections ---- */

static uint32_t
conn_alloc(struct worker *w)
{
	uint32_t i;

	if (w->free_head != NIL) {
		i = w->free_head;
		w->free_head = w->conns[i].idle.next;
		return i;
	}
	return w->used_hw < w->max ? w->used_hw++ : NIL;
}

static void
log_conn_end(struct worker *w, struct conn *c, const char *how)
{
	char peer[CONN_PEER_MAX];

	conn_format_peer(c, peer, sizeof(peer));
	log_msg(LOG_LVL_DEBUG, "%s closed: %s%s%s, %llu bytes in, %llu out, "
	    "%.3f s", peer, how, c->err ? ": " : "",
	    c->err ? strerror(c->err) : "", (unsigned long long)c->bytes_in,
	    (unsigned long long)c->bytes_out,
	    (double)(w->now - c->start_ms) / 1000.0);
}

static void
close_conn(struct worker *w, uint32_t i, const char *how)
{
	struct conn *c = &w->conns[i];

	if (log_get_level() >= LOG_LVL_DEBUG)
		log_conn_end(w, c, how);
	w->bytes_in += c->bytes_in;
	w->bytes_out += c->bytes_out;
	w->closed[sb_close_reason(how, c->err)]++;
	olist_unlink(c->proxy == CONN_PROXY_WAIT ? &w->hdr : &w->idle, i);
	olist_unlink(&w->age, i);
	unadmit(w, c);
	conn_close(c, &w->bp); /* close() also removes it from epoll */
	c->idle.next = w->free_head;
	w->free_head = i;
	w->nopen--;
}

static void
accept_failed(struct worker *w, int err)
{
	if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
		/*
		 * Out of descriptors or memory: stop watching the listener
		 * for a moment instead of spinning on it; the connections
		 * wait in the accept queue meanwhile.
		 */
		w->accept_resume = w->now + ACCEPT_PAUSE_MS;
		if (w->now - w->last_warn >= WARN_INTERVAL_MS || !w->last_warn) {
			log_warnx("accept: %s; pausing accepts for %d ms "
			    "(logged once per %d s)", strerror(err),
			    ACCEPT_PAUSE_MS, WARN_INTERVAL_MS / 1000);
			w->last_warn = w->now;
		}
	} else
		log_warnx("accept: %s", strerror(err));
}

/*
 * A connection of a proxied listener closed before it was served: count
 * it, and say so at most once a second (a flood must not flood the log).
 */
static void
proxy_closed(struct worker *w, const char *peer, const char *why)
{
	uint64_t n;

	sb_add(&w->sb->proxy_closed, 1);
	if ((n = log_limit_due(&w->px_log, w->now, 1000)) != 0)
		log_warnx("PROXY: closed %s: %s (%llu since the last such "
		    "line)", peer, why, (unsigned long long)n);
}

static int
add_conn(struct worker *w, int fd, const struct sockaddr_storage *ss,
    int proxied)
{
	const struct conf *cf = w->a->conf;
	struct epoll_event ev;
	char peer[CONN_PEER_MAX];
	uint32_t i;

	if (proxied && !cidr_match(cf->proxy_trusted, cf->nproxy_trusted,
	    (const struct sockaddr *)ss)) {
		listener_format((const struct sockaddr *)ss, peer, sizeof(peer));
		proxy_closed(w, peer, "not in proxy_trusted");
		w->closed[SB_CLOSE_PROXY]++;
		return -1;
	}
	if ((i = conn_alloc(w)) == NIL) {
		w->closed[SB_CLOSE_ERROR]++;
		return -1; /* cannot happen: we stop accepting when full */
	}
	conn_init(&w->conns[i], fd, w->now);
	conn_set_peer(&w->conns[i], ss);
	/* Behind a balancer, the client is known once its header is read. */
	if (proxied)
		w->conns[i].proxy = CONN_PROXY_WAIT;
	else if (admit(w, &w->conns[i]) == -1) {
		w->closed[SB_CLOSE_LIMIT]++;
		goto refuse; /* closed at once: the client is over its limit */
	}
	ev.events = EPOLLIN;
	ev.data.u64 = TAG_CONN << 32 | i;
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) == -1) {
		log_warn("epoll_ctl add connection");
		unadmit(w, &w->conns[i]);
		w->closed[SB_CLOSE_ERROR]++;
		goto refuse;
	}
	olist_append(proxied ? &w->hdr : &w->idle, i);
	olist_append(&w->age, i);
	w->nopen++;
	w->served++;
	return 0;
refuse:
	w->conns[i].fd = -1;
	w->conns[i].idle.next = w->free_head;
	w->free_head = i;
	return -1;
}

/* Accept a batch from listener li; 1 if its queue was found empty. */
static int
accept_some(struct worker *w, size_t li)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, n, empty = 0, lfd = w->a->lfds[li];
	int proxied = (w->a->proxy_mask >> li) & 1;

	for (n = 0; n < ACCEPT_BATCH && w->nopen < w->max; n++) {
		sl = sizeof(ss);
		fd = accept4(lfd, (struct sockaddr *)&ss, &sl,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				empty = 1;
				break;
			}
			if (errno == EINTR || errno == ECONNABORTED ||
			    errno == EPROTO || errno == EPERM)
				continue;
			accept_failed(w, errno);
			break;
		}
		w->accepted++;
		if (add_conn(w, fd, &ss, proxied) == -1)
			close(fd);
	}
	w->yielding = over_share(w);
	update_watch(w);
	return empty;
}

static void
set_interest(struct worker *w, uint32_t i, uint32_t events)
{
	struct epoll_event ev;

	ev.events = events;
	ev.data.u64 = TAG_CONN << 32 | i;
	if (epoll_ctl(w->epfd, EPOLL_CTL_MOD, w->conns[i].fd, &ev) == -1)
		log_warn("epoll_ctl mod connection");
}

/*
 * A proxied connection's bytes before its header is complete.  Once it
 * is, the connection joins the idle list and the per-client limits, as
 * a plain listener's does at accept.
 */
static void
header_event(struct worker *w, uint32_t i)
{
	struct conn *c = &w->conns[i];
	struct proxy_hdr h;
	char peer[CONN_PEER_MAX], why[128];

	switch (conn_on_header(c, w->buf, CONN_BUFSIZE, &w->bp, &h)) {
	case PROXY_NEED_MORE:
		return;
	case PROXY_BAD:
		conn_format_peer(c, peer, sizeof(peer));
		conn_header_why(c, &h, why, sizeof(why));
		proxy_closed(w, peer, why);
		close_conn(w, i, "bad PROXY header");
		return;
	case PROXY_OK:
		break;
	}
	olist_unlink(&w->hdr, i);
	c->last_ms = w->now;
	olist_append(&w->idle, i);
	sb_add(&w->sb->proxied, 1);
	if (c->proxy == CONN_PROXY_DONE)
		conn_publish_client(c, w->sb);
	if (admit(w, c) == -1) {
		close_conn(w, i, "refused"); /* what followed the header goes */
		return;
	}
	/* Admitted: what came behind the header goes out now. */
	switch (conn_on_writable(c, &w->bp)) {
	case CONN_FAILED:
		close_conn(w, i, "failed");
		break;
	case CONN_WRITING:
		set_interest(w, i, EPOLLOUT);
		break;
	default:
		break;
	}
}

static void
conn_event(struct worker *w, uint32_t i, uint32_t events)
{
	struct conn *c = &w->conns[i];
	int was_writing = c->writing;
	enum conn_status st;

	if (c->proxy == CONN_PROXY_WAIT) {
		if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
			header_event(w, i);
		return;
	}
	if (c->writing)
		st = conn_on_writable(c, &w->bp);
	else if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		st = conn_on_readable(c, w->buf, CONN_BUFSIZE, &w->bp);
	else
		return;
	switch (st) {
	case CONN_DONE:
		close_conn(w, i, "client closed");
		return;
	case CONN_FAILED:
		close_conn(w, i, "failed");
		return;
	case CONN_READING:
		if (was_writing)
			set_interest(w, i, EPOLLIN);
		break;
	case CONN_WRITING:
		if (!was_writing)
			set_interest(w, i, EPOLLOUT);
		break;
	}
	idle_touch(w, i);
}

/* ---- timers ---- */

static void
expire_old(struct worker *w)
{
	uint32_t i;

	if (w->life_ms == 0)
		return;
	while ((i = w->age.head) != NIL &&
	    w->conns[i].start_ms + w->life_ms <= w->now)
		close_conn(w, i, "max_connection_time");
}

static void
expire_headers(struct worker *w)
{
	char peer[CONN_PEER_MAX], why[64];
	uint32_t i;

	while ((i = w->hdr.head) != NIL &&
	    w->conns[i].start_ms + w->hdr_ms <= w->now) {
		conn_format_peer(&w->conns[i], peer, sizeof(peer));
		snprintf(why, sizeof(why), "no complete header after %d s",
		    w->a->conf->proxy_timeout);
		proxy_closed(w, peer, why);
		close_conn(w, i, "PROXY header timeout");
	}
}

static void
expire_idle(struct worker *w)
{
	uint32_t i;

	if (w->idle_ms == 0)
		return;
	while ((i = w->idle.head) != NIL &&
	    w->conns[i].last_ms + w->idle_ms <= w->now)
		close_conn(w, i, "idle timeout");
}

static int
next_timeout(const struct worker *w)
{
	uint64_t t = w->now + w->heartbeat_ms;

	if (w->idle_ms && w->idle.head != NIL &&
	    w->conns[w->idle.head].last_ms + w->idle_ms < t)
		t = w->conns[w->idle.head].last_ms + w->idle_ms;
	if (w->hdr.head != NIL && w->conns[w->hdr.head].start_ms + w->hdr_ms < t)
		t = w->conns[w->hdr.head].start_ms + w->hdr_ms;
	if (w->life_ms && w->age.head != NIL &&
	    w->conns[w->age.head].start_ms + w->life_ms < t)
		t = w->conns[w->age.head].start_ms + w->life_ms;
	if (w->draining && w->drain_deadline < t)
		t = w->drain_deadline;
	/* Still emptying the accept queue: come straight back. */
	if (w->draining && w->listening)
		return 0;
	if (w->accept_resume && w->accept_resume < t)
		t = w->accept_resume;
	/*
	 * The counts a worker compares itself with are a loop turn old: two
	 * workers may both think they hold too many.  Looking again soon
	 * keeps the listener from going unwatched for long.
	 */
	if (w->yielding && w->now + YIELD_RECHECK_MS < t)
		t = w->now + YIELD_RECHECK_MS;
	/* The coarse clock ticks every few ms: never ask for less than 1. */
	return t > w->now ? (int)(t - w->now) : 1;
}

/* ---- drain ---- */

int
worker_drain_stop_accepting(int queue_empty, int can_accept, uint64_t now,
    uint64_t deadline)
{
	return queue_empty || !can_accept || now >= deadline;
}

/*
 * Draining: those already in the accept queue completed a handshake and
 * are served, so keep accepting, a batch per listener per loop turn, until
 * every queue is found empty (or this worker is full, or out of time);
 * only then close the listeners.
 */
static void
drain_accept(struct worker *w)
{
	uint32_t before = w->nopen;
	size_t i;
	int empty = 1;

	for (i = 0; i < w->a->nlfds; i++)
		if (!accept_some(w, i))
			empty = 0;
	w->drain_accepted += w->nopen > before ? w->nopen - before : 0;
	if (!worker_drain_stop_accepting(empty, w->nopen < w->max &&
	    w->accept_resume == 0, w->now, w->drain_deadline))
		return;
	close_listeners(w);
	log_debug("accept queue%s %s: listeners closed, %llu accepted while "
	    "draining", w->a->nlfds > 1 ? "s" : "", empty ? "empty" :
	    w->now >= w->drain_deadline ? "not empty at shutdown_timeout" :
	    "not empty but this worker is full",
	    (unsigned long long)w->drain_accepted);
}

static void
begin_drain(struct worker *w, const char *why)
{
	if (w->draining)
		return;
	w->draining = 1;
	w->drain_deadline = w->now + (uint64_t)w->a->conf->shutdown_timeout *
	    1000;
	sb_store(&w->sb->state, SB_DRAINING);
	log_info("%s: draining %u connection(s) and the accept queue, at most "
	    "%d s", why, w->nopen, w->a->conf->shutdown_timeout);
	if (w->listening)
		drain_accept(w);
}

static void
read_signals(struct worker *w)
{
	struct signalfd_siginfo si;

	while (read(w->sigfd, &si, sizeof(si)) == sizeof(si))
		begin_drain(w, si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
}

/*
 * The scoreboard, once per loop turn.  Bytes count connections as they
 * close: a running total per connection would cost a store per message.
 * The counters are the slot's, cumulative over its processes: what
 * changed since the last turn is added (sb_publish), never stored.
 */
static void
publish(struct worker *w)
{
	struct sb_counts now = { .accepted = w->accepted,
		.served = w->served, .bytes_in = w->bytes_in,
		.bytes_out = w->bytes_out };

	memcpy(now.closed, w->closed, sizeof(now.closed));
	memcpy(now.refused, w->refused, sizeof(now.refused));
	sb_store(&w->sb->heartbeat_ms, w->now);
	sb_store(&w->sb->conns_open, w->nopen);
	sb_publish(w->sb, &now, &w->published);
}

static void
dispatch(struct worker *w, const struct epoll_event *ev)
{
	uint64_t u = ev->data.u64;

	switch (EV_TAG(u)) {
	case TAG_LISTENER:
		if (w->listening)
			accept_some(w, EV_INDEX(u));
		break;
	case TAG_SIGNAL:
		read_signals(w);
		break;
	default:
		if (w->conns[EV_INDEX(u)].fd != -1)
			conn_event(w, EV_INDEX(u), ev->events);
		break;
	}
}

static void
loop_turn(struct worker *w)
{
	struct epoll_event evs[MAX_EVENTS];
	int i, n;

	n = epoll_wait(w->epfd, evs, MAX_EVENTS, next_timeout(w));
	if (n == -1 && errno != EINTR)
		fatal(ECHOD_EXIT_FAILURE, "epoll_wait");
	w->now = now_ms();
	for (i = 0; i < n; i++)
		dispatch(w, &evs[i]);
	expire_headers(w);
	expire_idle(w);
	expire_old(w);
	if (w->limited && w->now >= w->next_sweep) {
		climit_sweep(w->a->limits, w->a->slot, w->now / 1000);
		w->next_sweep = w->now + 1000;
	}
	if (w->accept_resume && w->now >= w->accept_resume)
		w->accept_resume = 0;
	if (w->yielding)
		w->yielding = over_share(w);
	if (w->draining && w->listening)
		drain_accept(w);
	if (w->listening)
		update_watch(w);
	if (n <= 0 && !w->draining && getppid() != w->a->master_pid)
		begin_drain(w, "master gone");
	publish(w);
}

static void
run(struct worker *w)
{
	uint32_t i;

	for (;;) {
		loop_turn(w);
		if (w->draining && ((w->nopen == 0 && !w->listening) ||
		    w->now >= w->drain_deadline))
			break;
	}
	while ((i = w->idle.head) != NIL)
		close_conn(w, i, "shutdown");
	while ((i = w->hdr.head) != NIL)
		close_conn(w, i, "shutdown");
	publish(w);
}

/* ---- set-up ---- */

void
worker_child_signals(pid_t master_pid)
{
	struct sigaction sa;
	sigset_t set;
	int sig;

	/* Before anything else: the master's signal set-up is not ours. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (sig = 1; sig < NSIG; sig++)
		(void)sigaction(sig, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	(void)sigaction(SIGPIPE, &sa, NULL);
	(void)sigaction(SIGHUP, &sa, NULL);
	(void)sigaction(SIGUSR1, &sa, NULL);
	(void)sigaction(SIGTTIN, &sa, NULL);
	(void)sigaction(SIGTTOU, &sa, NULL);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_SETMASK, &set, NULL);

	/* No child outlives the master. */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1 ||
	    getppid() != master_pid)
		_exit(ECHOD_EXIT_OK);
}

void
worker_setup_process(const struct worker_args *a)
{
	worker_child_signals(a->master_pid);
	log_set_tag("worker %u", a->slot);
	proctitle_set("echod: worker %u", a->slot);
}

static int
setup_loop(struct worker *w, const struct worker_args *a)
{
	struct epoll_event ev;
	sigset_t set;

	memset(w, 0, sizeof(*w));
	w->a = a;
	w->sb = &a->sb->slots[a->slot];
	w->max = (uint32_t)a->max_conns;
	w->free_head = NIL;
	w->idle_ms = (uint64_t)a->conf->idle_timeout * 1000;
	w->life_ms = (uint64_t)a->conf->max_connection_time * 1000;
	w->limited = a->limits != NULL && a->limits->hdr != NULL &&
	    (a->conf->max_connections_per_ip > 0 ||
	    a->conf->max_connection_rate_per_ip > 0);
	/* Beat often enough that worker_timeout never catches a healthy idle
	 * worker: at least four beats per timeout. */
	w->heartbeat_ms = HEARTBEAT_MS;
	if (a->conf->worker_timeout > 0 &&
	    (uint64_t)a->conf->worker_timeout * 250 < w->heartbeat_ms)
		w->heartbeat_ms = (uint64_t)a->conf->worker_timeout * 250;
	w->listening = 1;
	w->now = now_ms();
	/* calloc'ed pages are touched only as connections first use them. */
	if ((w->conns = calloc(w->max, sizeof(*w->conns))) == NULL ||
	    (w->buf = malloc(CONN_BUFSIZE)) == NULL)
		return -1;
	olist_init(&w->idle, w->conns, sizeof(*w->conns),
	    offsetof(struct conn, idle));
	olist_init(&w->age, w->conns, sizeof(*w->conns),
	    offsetof(struct conn, age));
	olist_init(&w->hdr, w->conns, sizeof(*w->conns),
	    offsetof(struct conn, idle));
	w->hdr_ms = (uint64_t)a->conf->proxy_timeout * 1000;
	if ((w->epfd = epoll_create1(EPOLL_CLOEXEC)) == -1)
		return -1;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if ((w->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) == -1)
		return -1;
	ev.events = EPOLLIN;
	ev.data.u64 = TAG_SIGNAL << 32;
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->sigfd, &ev) == -1)
		return -1;
	watch_listeners(w, 1);
	return w->watching ? 0 : -1;
}

void
worker_report_ready(const struct worker_args *a)
{
	struct worker_msg m = { .slot = a->slot, .kind = WORKER_MSG_READY,
		.pid = getpid() };

	sb_store(&a->sb->slots[a->slot].state, SB_READY);
	if (write(a->status_fd, &m, sizeof(m)) != sizeof(m))
		log_warn("cannot tell the master we are ready");
}

/*
 * The filter, as configured: on (no filter: exit, start-up or the reload
 * fails), try (no filter: say why and serve), off.  The slot says which.
 */
void
worker_enter_sandbox(const struct worker_args *a, unsigned needs)
{
	struct sandbox_verdict v;
	char err[256] = "";
	int mode = (int)a->conf->sandbox, rc = 0;

	if (mode != CONF_SANDBOX_OFF)
		rc = sandbox_enter(a->sandbox_needs | needs, err, sizeof(err));
	v = sandbox_decide(mode, rc);
	sb_store(&a->sb->slots[a->slot].sandbox, (uint64_t)v.state);
	if (v.exit)
		fatalx(ECHOD_EXIT_WORKER_FATAL, "sandbox = on, but the seccomp "
		    "filter cannot load: %s; not serving without it "
		    "(sandbox = try would)", err);
	if (v.warn)
		log_warnx("sandbox = try: the seccomp filter cannot load: %s; "
		    "running without it", err);
	else if (err[0] != '\0')
		log_debug("sandbox %s: %s", sandbox_state_name(v.state), err);
}

void
worker_main(const struct worker_args *a)
{
	struct worker w;

	worker_setup_process(a);
	/* The other models share the set-up above and nothing below. */
	if (a->conf->model != CONF_MODEL_EVENTS)
		model_main(a);
	if (setup_loop(&w, a) == -1)
		fatal(ECHOD_EXIT_WORKER_FATAL, "cannot set up the event loop");
	worker_enter_sandbox(a, 0);
	log_debug("ready: up to %d connections", a->max_conns);
	publish(&w);
	worker_report_ready(a);
	run(&w);
	log_debug("exiting: served %llu connections",
	    (unsigned long long)w.served);
	bufpool_drain(&w.bp);
	free(w.conns);
	free(w.buf);
	exit(ECHOD_EXIT_OK);
}
