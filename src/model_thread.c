/*
 * model_thread: a thread per connection.  The worker's main thread
 * accepts and starts a detached thread with a MODEL_THREAD_STACK stack
 * (model.h says why 64 KiB) for each connection, at most
 * max_connections at once; when that many run it waits on a condition
 * variable, which each ending thread signals, and the clients wait in
 * the accept queue.  The threads share the process's limits (descriptors,
 * memory): a crash in one takes down the worker and all its connections.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exitcodes.h"
#include "log.h"
#include "model.h"
#include "sandbox.h"
#include "serve.h"

struct job {
	struct serve *s;
	struct serve_client cl;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done; /* a thread ended: room for one more */
static unsigned live;       /* threads serving, under mu */
static pthread_attr_t attr;

static void *
conn_thread(void *arg)
{
	struct job *j = arg;
	struct bufpool bp = { .nfree = 0 };
	unsigned char *buf;

	if ((buf = malloc(CONN_BUFSIZE)) != NULL) {
		serve_conn(j->s, &j->cl, buf, &bp);
		bufpool_drain(&bp);
		free(buf);
	} else
		close(j->cl.fd);
	serve_untake(j->s, j->cl.key);
	free(j);
	pthread_mutex_lock(&mu);
	live--;
	pthread_cond_signal(&done);
	pthread_mutex_unlock(&mu);
	return NULL;
}

static void
start_one(struct serve *s, const struct serve_client *cl)
{
	pthread_t t;
	struct job *j;
	int rc;

	if ((j = calloc(1, sizeof(*j))) == NULL) {
		serve_pause(s, "a connection's thread", ENOMEM);
		close(cl->fd);
		return;
	}
	j->s = s;
	j->cl = *cl;
	if (serve_take(s, &j->cl) == -1) {
		free(j);
		return;
	}
	pthread_mutex_lock(&mu);
	live++;
	pthread_mutex_unlock(&mu);
	if ((rc = pthread_create(&t, &attr, conn_thread, j)) == 0)
		return;
	/* No thread: as out of descriptors, pause, and the client goes. */
	serve_pause(s, "pthread_create", rc);
	serve_untake(s, j->cl.key);
	close(j->cl.fd);
	free(j);
	pthread_mutex_lock(&mu);
	live--;
	pthread_mutex_unlock(&mu);
}

static unsigned
nlive(void)
{
	unsigned n;

	pthread_mutex_lock(&mu);
	n = live;
	pthread_mutex_unlock(&mu);
	return n;
}

static int
thread_start(struct serve *s, unsigned capacity)
{
	(void)capacity;
	s->waits_when_full = 1;
	if (serve_cond_init(&done) == -1 || pthread_attr_init(&attr) != 0 ||
	    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) != 0)
		return -1;
	return pthread_attr_setstacksize(&attr, MODEL_THREAD_STACK) == 0 ?
	    0 : -1;
}

static void
thread_run(struct serve *s, unsigned capacity)
{
	struct serve_client cl;

	while (!serve_done(s, nlive())) {
		/* Drained of new clients: wait for the threads to end. */
		if (serve_draining(s) && !s->listening) {
			serve_wait_room(s, &mu, &done, &live, 1);
			serve_tick(s);
			continue;
		}
		serve_wait_room(s, &mu, &done, &live, capacity);
		if (serve_accept(s, model_can_accept(nlive(), capacity, 0),
		    &cl) == 1)
			start_one(s, &cl);
	}
	/*
	 * Past shutdown_timeout the threads close their connections within
	 * a heartbeat ("shutdown"); give them that, then exit() ends them.
	 */
	serve_wait_gone(s, &mu, &done, &live);
}

const struct model_ops model_thread_ops = {
	.model = CONF_MODEL_THREAD,
	.needs = SANDBOX_NEED_POLL | SANDBOX_NEED_THREADS,
	.start = thread_start,
	.run = thread_run,
};
