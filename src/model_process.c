/*
 * model_process: a process per connection (inetd's nowait).  The worker
 * accepts, forks a child that serves the connection and exits, and goes
 * back to accepting.  At max_connections live children it stops
 * accepting until one exits (its SIGCHLD wakes the wait).  The worker
 * counts its children, reaps them (a crash is a warning and one lost
 * connection), releases their per-client counts, and they die with it:
 * PR_SET_PDEATHSIG, SIGTERM when it drains (each child then has
 * shutdown_timeout), SIGKILL past that.
 *
 * The children's table is shared memory with a fixed entry per child:
 * behind a balancer only the child learns its client (from the PROXY
 * header), counts it in the per-client table under serve.c's shared lock
 * and leaves the key in its entry, for the worker to release once it has
 * reaped the child.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exitcodes.h"
#include "listener.h"
#include "log.h"
#include "model.h"
#include "proctitle.h"
#include "sandbox.h"
#include "serve.h"

struct kid {
	pid_t pid;             /* 0: a free entry */
	struct serve_client cl; /* cl.key: released when it is reaped */
};

struct kids {
	struct kid *k; /* cap entries, MAP_SHARED */
	unsigned n, cap;
	unsigned hint; /* where to look for a free entry first */
	int told; /* the drain was passed on to them */
};

/* In the child: serve its connection, then exit.  Never returns. */
static void
child(struct serve *s, struct serve_client *cl, unsigned char *buf,
    pid_t worker)
{
	struct bufpool bp = { .nfree = 0 };
	char peer[64];
	size_t i;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 || getppid() != worker)
		_exit(ECHOD_EXIT_OK);
	s->in_child = 1;
	s->parent = worker;
	/* The worker's listeners are the worker's: a drain closes them. */
	for (i = 0; i < s->a->nlfds; i++)
		close(s->a->lfds[i]);
	s->listening = 0;
	listener_format((const struct sockaddr *)&cl->ss, peer, sizeof(peer));
	proctitle_set("echod: worker %u conn %s", s->a->slot, peer);
	serve_conn(s, cl, buf, &bp);
	/* The child's copies: a leak checker sees them as its own. */
	bufpool_drain(&bp);
	free(buf);
	_exit(ECHOD_EXIT_OK);
}

static void
forget(struct serve *s, struct kids *ks, unsigned i)
{
	serve_untake(s, ks->k[i].cl.key);
	ks->k[i].pid = 0;
	ks->n--;
	ks->hint = i;
}

/* A free entry (there is one: the worker accepts only below cap). */
static unsigned
free_entry(struct kids *ks)
{
	unsigned i, j;

	for (j = 0; j < ks->cap; j++) {
		i = (ks->hint + j) % ks->cap;
		if (ks->k[i].pid == 0)
			return i;
	}
	return ks->cap;
}

static void
reaped(struct serve *s, struct kids *ks, pid_t pid, int st)
{
	unsigned i;

	for (i = 0; i < ks->cap && ks->k[i].pid != pid; i++)
		;
	if (i == ks->cap)
		return;
	if (WIFSIGNALED(st) && WTERMSIG(st) != SIGKILL)
		log_warnx("connection child %d killed by signal %d: its one "
		    "connection is lost", (int)pid, WTERMSIG(st));
	forget(s, ks, i);
}

static void
reap(struct serve *s, struct kids *ks)
{
	pid_t pid;
	int st;

	s->child_exited = 0;
	while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
		reaped(s, ks, pid, st);
}

struct reap_ctx {
	struct serve *s;
	struct kids *ks;
};

static void
reap_cb(void *arg)
{
	struct reap_ctx *c = arg;

	reap(c->s, c->ks);
}

/* SIGTERM when draining: each child then has shutdown_timeout. */
static void
tell(struct kids *ks, int sig)
{
	unsigned i;

	for (i = 0; i < ks->cap; i++)
		if (ks->k[i].pid != 0)
			(void)kill(ks->k[i].pid, sig);
}

static void
spawn(struct serve *s, struct kids *ks, const struct serve_client *cl,
    unsigned char *buf)
{
	pid_t pid, self = getpid();
	struct kid *k;
	unsigned i;

	if ((i = free_entry(ks)) == ks->cap) {
		close(cl->fd); /* cannot happen: see free_entry */
		return;
	}
	k = &ks->k[i];
	k->cl = *cl;
	if (serve_take(s, &k->cl) == -1)
		return;
	k->pid = -1; /* taken: the child's pid once forked */
	if ((pid = fork()) == -1) {
		serve_pause(s, "fork", errno);
		serve_untake(s, k->cl.key);
		close(k->cl.fd);
		k->pid = 0;
		return;
	}
	if (pid == 0)
		child(s, &k->cl, buf, self);
	close(k->cl.fd);
	k->pid = pid;
	ks->n++;
	ks->hint = i + 1;
}

static void
process_run(struct serve *s, unsigned capacity)
{
	struct serve_client cl;
	struct kids ks = { .cap = capacity };
	struct reap_ctx ctx;
	unsigned char *buf;
	size_t size = capacity * sizeof(*ks.k);
	pid_t pid;
	int st;

	ks.k = mmap(NULL, size, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (ks.k == MAP_FAILED || (buf = malloc(CONN_BUFSIZE)) == NULL)
		fatal(ECHOD_EXIT_WORKER_FATAL, "process-per-connection");
	while (!serve_done(s, ks.n)) {
		if (serve_accept(s, model_can_accept(ks.n, ks.cap, 0),
		    &cl) == 1)
			spawn(s, &ks, &cl, buf);
		if (serve_draining(s) && !ks.told) {
			tell(&ks, SIGTERM);
			ks.told = 1;
		}
		reap(s, &ks);
	}
	/* Past shutdown_timeout: each child closes at its own; then SIGKILL. */
	ctx.s = s;
	ctx.ks = &ks;
	serve_wait_children(s, &ks.n, reap_cb, &ctx);
	tell(&ks, SIGKILL);
	while (ks.n > 0 && (pid = waitpid(-1, &st, 0)) > 0)
		reaped(s, &ks, pid, st);
	munmap(ks.k, size);
	free(buf);
}

const struct model_ops model_process_ops = {
	.model = CONF_MODEL_PROCESS,
	.needs = SANDBOX_NEED_POLL | SANDBOX_NEED_FORK,
	.with_chld = 1,
	.run = process_run,
};
