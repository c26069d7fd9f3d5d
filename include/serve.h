/*
 * serve: what the blocking models (model.h) share: waiting for a
 * connection, and serving one connection from a thread or process that
 * has nothing else to do.
 *
 * Every wait is a poll() with a timeout no longer than the heartbeat, so
 * no call sleeps past it: a worker's loop (or its only connection, under
 * prefork) beats, reads its signals and sees the master go.  The service
 * is conn.c's state machine, as the events worker runs it: the same bytes,
 * the same half-close, the same bounded buffer for a client that never
 * reads.  The per-client tables are locked here, so several threads of one
 * worker can count into its slot's table.
 */
#ifndef ECHOD_SERVE_H
#define ECHOD_SERVE_H

#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>

#include "conn.h"
#include "log.h"
#include "worker.h"

/*
 * What the worker's threads, or its per-connection children, share: the
 * lock on the slot's per-client table, and the log limits of refusals and
 * PROXY closes.  In a MAP_SHARED page; the lock is process-shared and
 * robust, so a child that dies holding it does not stop the others.
 */
struct serve_shared {
	pthread_mutex_t lock;
	struct log_limit refusal_log, px_log;
};

/* A connection as accepted, and its per-client count once admitted. */
struct serve_client {
	int fd;
	int proxied;    /* from a proxy_listen listener: a header is due */
	uint64_t key;   /* counted under this key; 0: not counted */
	struct sockaddr_storage ss; /* the peer accept() gave */
};

struct serve {
	const struct worker_args *a;
	struct sb_slot *sb;
	int sigfd;
	int listening;     /* listeners still open */
	int draining;      /* atomic: serving threads read it */
	uint64_t drain_deadline; /* atomic, as draining */
	int child_exited;  /* SIGCHLD seen (process-per-connection) */
	int in_child;      /* a per-connection child: no beat, no drain log */
	pid_t parent;      /* gone: drain (the master; a child's worker) */
	int waits_when_full; /* full, serve_accept does not wait (threads) */
	int own_loop;      /* serve_conn is the worker's loop too (prefork) */
	uint64_t accept_resume; /* accepting paused until (0 = not) */
	uint64_t last_warn;
	uint64_t idle_ms, life_ms, heartbeat_ms;
	uint64_t next_sweep;
	int limited;
	uint64_t hdr_ms;   /* proxy_timeout */
	struct serve_shared *sh;
	uint64_t drain_accepted;
};

/* Monotonic milliseconds (the coarse clock, as the events worker's). */
uint64_t serve_now(void);

/*
 * Set up s for worker a: its signalfd takes SIGTERM and SIGINT, and
 * SIGCHLD too when with_chld (the signals are blocked here).  -1 on error.
 */
int serve_init(struct serve *s, const struct worker_args *a, int with_chld);

/*
 * Pure: how long a connection may wait now, in ms (at least 1), and
 * whether it must end: the reason ("idle timeout", "max_connection_time",
 * "shutdown") or NULL.  0 for idle_ms / life_ms means no limit;
 * drain_deadline 0 means not draining.
 */
const char *serve_conn_expired(uint64_t now, uint64_t last, uint64_t start,
    uint64_t idle_ms, uint64_t life_ms, uint64_t drain_deadline);
int serve_conn_timeout(uint64_t now, uint64_t last, uint64_t start,
    uint64_t idle_ms, uint64_t life_ms, uint64_t drain_deadline,
    uint64_t heartbeat_ms);

/*
 * One turn of the worker's wait: beat, read signals (SIGTERM: drain),
 * see the master go, sweep the per-client table.  Returns the time.
 */
uint64_t serve_tick(struct serve *s);

/*
 * Wait up to a heartbeat for a connection; accept one if can_accept (the
 * model has room) and accepting is not paused.  Returns 1 with cl filled
 * (fd non-blocking, close-on-exec; key 0), 0 if none (time to look again).
 * While draining it takes what the accept queues hold and closes the
 * listeners once they are empty, the worker is full, or time is up.
 */
int serve_accept(struct serve *s, int can_accept, struct serve_client *cl);

/* Stop accepting a moment after fork() or pthread_create() failed. */
void serve_pause(struct serve *s, const char *what, int err);

/*
 * A connection just accepted, 0: a plain listener's admitted against its
 * client (cl->key), a proxied one's from a proxy_trusted peer (admitted
 * once its header names the client, in serve_conn); counted open and
 * served on the scoreboard.  -1: refused (logged at most once a second),
 * fd closed.  serve_untake(cl->key) releases it and counts it closed once
 * it has ended.
 */
int serve_take(struct serve *s, struct serve_client *cl);
void serve_untake(struct serve *s, uint64_t key);

/*
 * Serve cl until it ends, then close it: first its PROXY header if it is
 * proxied (within proxy_timeout; then the client it names is admitted,
 * setting cl->key), bytes into the scoreboard, the debug line the events
 * worker writes.  buf is CONN_BUFSIZE bytes of the caller's; bp holds at
 * most one pending buffer.
 */
void serve_conn(struct serve *s, struct serve_client *cl, unsigned char *buf,
    struct bufpool *bp);

/* SIGTERM or the master gone: start draining, once. */
void serve_begin_drain(struct serve *s, const char *why);

/* Is the worker done: draining, listeners closed and nopen connections
 * left, or past the deadline? */
int serve_done(struct serve *s, unsigned nopen);

/*
 * The thread models: a condition variable on the monotonic clock, and
 * the acceptor's wait while *busy (guarded by mu) is at capacity: until
 * a thread signals cv, or a heartbeat passes (the caller beats then).
 */
int serve_cond_init(pthread_cond_t *cv);
void serve_wait_room(struct serve *s, pthread_mutex_t *mu, pthread_cond_t *cv,
    const unsigned *busy, unsigned capacity);

/*
 * At the end: until *busy is 0, for at most half a second (the threads
 * and children see shutdown_timeout pass as the worker does, and close
 * their connections; the master's grace is a second).
 */
void serve_wait_gone(struct serve *s, pthread_mutex_t *mu,
    pthread_cond_t *cv, const unsigned *busy);

/* The same for children: reap(arg) after each SIGCHLD, until *n is 0. */
void serve_wait_children(struct serve *s, const unsigned *n,
    void (*reap)(void *), void *arg);

static inline int
serve_draining(struct serve *s)
{
	return __atomic_load_n(&s->draining, __ATOMIC_ACQUIRE);
}

#endif
