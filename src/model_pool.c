/*
 * model_pool: the lecture's thread pool.  The worker starts `threads`
 * threads before it says ready; each waits on its own condition variable
 * for a connection.  The acceptor (the main thread) takes a connection
 * only when a thread is free, hands it to the first free one under the
 * mutex and signals that thread; an ending thread marks itself free and
 * signals `room`, on which a full acceptor waits.  A crash in one thread
 * takes down the worker and every connection its threads held.
 */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "exitcodes.h"
#include "log.h"
#include "model.h"
#include "sandbox.h"
#include "serve.h"

struct pool_thread {
	pthread_cond_t cond; /* a connection was handed over, or the end */
	struct serve_client cl; /* cl.fd -1: free */
};

static struct {
	struct serve *s;
	pthread_mutex_t mu;
	pthread_cond_t room; /* a thread became free */
	struct pool_thread *t;
	unsigned char *busy; /* busy[i]: t[i] holds a connection */
	unsigned n, nbusy;
	int terminate;
} pool = { .mu = PTHREAD_MUTEX_INITIALIZER };

static void
serve_one(struct pool_thread *t, unsigned char *buf, struct bufpool *bp)
{
	serve_conn(pool.s, &t->cl, buf, bp);
	serve_untake(pool.s, t->cl.key);
}

static void *
pool_thread(void *arg)
{
	struct pool_thread *t = &pool.t[(uintptr_t)arg];
	struct bufpool bp = { .nfree = 0 };
	unsigned char *buf = malloc(CONN_BUFSIZE);

	pthread_mutex_lock(&pool.mu);
	for (;;) {
		while (!pool.terminate && t->cl.fd == -1)
			pthread_cond_wait(&t->cond, &pool.mu);
		if (t->cl.fd == -1)
			break;
		pthread_mutex_unlock(&pool.mu);
		if (buf != NULL)
			serve_one(t, buf, &bp);
		else {
			close(t->cl.fd);
			serve_untake(pool.s, t->cl.key);
		}
		pthread_mutex_lock(&pool.mu);
		t->cl.fd = -1;
		pool.busy[t - pool.t] = 0;
		pool.nbusy--;
		pthread_cond_signal(&pool.room);
	}
	pthread_mutex_unlock(&pool.mu);
	bufpool_drain(&bp);
	free(buf);
	return NULL;
}

static int
pool_start(struct serve *s, unsigned capacity)
{
	pthread_attr_t attr;
	pthread_t tid;
	unsigned i;

	pool.s = s;
	s->waits_when_full = 1;
	if ((pool.t = calloc(capacity, sizeof(*pool.t))) == NULL ||
	    (pool.busy = calloc(capacity, 1)) == NULL ||
	    serve_cond_init(&pool.room) == -1 ||
	    pthread_attr_init(&attr) != 0 ||
	    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) != 0 ||
	    pthread_attr_setstacksize(&attr, MODEL_THREAD_STACK) != 0)
		return -1;
	for (i = 0; i < capacity; i++) {
		pool.t[i].cl.fd = -1;
		if (serve_cond_init(&pool.t[i].cond) == -1 ||
		    pthread_create(&tid, &attr, pool_thread,
		    (void *)(uintptr_t)i) != 0)
			return -1;
		pool.n++;
	}
	pthread_attr_destroy(&attr);
	return 0;
}

static unsigned
nbusy(void)
{
	unsigned n;

	pthread_mutex_lock(&pool.mu);
	n = pool.nbusy;
	pthread_mutex_unlock(&pool.mu);
	return n;
}

/* To the first free thread, as the lecture's checkfree(). */
static void
hand_over(struct serve *s, struct serve_client *cl)
{
	int i;

	if (serve_take(s, cl) == -1)
		return;
	pthread_mutex_lock(&pool.mu);
	if ((i = model_pick_thread(pool.busy, pool.n)) == -1) {
		/* Cannot happen: only the acceptor makes threads busy. */
		pthread_mutex_unlock(&pool.mu);
		fatalx(ECHOD_EXIT_WORKER_FATAL, "thread-pool: no free thread "
		    "with %u of %u busy", pool.nbusy, pool.n);
	}
	pool.t[i].cl = *cl;
	pool.busy[i] = 1;
	pool.nbusy++;
	pthread_cond_signal(&pool.t[i].cond);
	pthread_mutex_unlock(&pool.mu);
}

static void
pool_run(struct serve *s, unsigned capacity)
{
	struct serve_client cl;
	unsigned i;

	(void)capacity;
	while (!serve_done(s, nbusy())) {
		/* Drained of new clients: wait for the threads to end. */
		if (serve_draining(s) && !s->listening) {
			serve_wait_room(s, &pool.mu, &pool.room,
			    &pool.nbusy, 1);
			serve_tick(s);
			continue;
		}
		serve_wait_room(s, &pool.mu, &pool.room, &pool.nbusy, pool.n);
		if (serve_accept(s, model_can_accept(nbusy(), pool.n, 0),
		    &cl) == 1)
			hand_over(s, &cl);
	}
	pthread_mutex_lock(&pool.mu);
	pool.terminate = 1;
	for (i = 0; i < pool.n; i++)
		pthread_cond_signal(&pool.t[i].cond);
	pthread_mutex_unlock(&pool.mu);
	/* Busy ones close at shutdown_timeout, within a heartbeat. */
	serve_wait_gone(s, &pool.mu, &pool.room, &pool.nbusy);
}

const struct model_ops model_pool_ops = {
	.model = CONF_MODEL_THREAD_POOL,
	.needs = SANDBOX_NEED_POLL | SANDBOX_NEED_THREADS,
	.start = pool_start,
	.run = pool_run,
};
