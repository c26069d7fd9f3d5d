/*
 * model_process: a process per connection (inetd's nowait).  The worker
 * accepts, forks a child that serves the connection and exits, and goes
 * back to accepting.  At max_connections live children it stops
 * accepting until one exits (its SIGCHLD wakes the wait).  The worker
 * counts its children, reaps them (a crash is a warning and one lost
 * connection), releases their per-client counts (the table keeps its one
 * writer), and they die with it: PR_SET_PDEATHSIG, SIGTERM when it
 * drains (each child then has shutdown_timeout), SIGKILL past that.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
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
	pid_t pid;
	uint64_t key; /* per-client count, released when it is reaped */
};

struct kids {
	struct kid *k;
	unsigned n, cap;
	int told; /* the drain was passed on to them */
};

/* In the child: serve fd, then exit.  Never returns. */
static void
child(struct serve *s, int fd, const struct sockaddr_storage *ss,
    unsigned char *buf, pid_t worker)
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
	listener_format((const struct sockaddr *)ss, peer, sizeof(peer));
	proctitle_set("echod: worker %u conn %s", s->a->slot, peer);
	serve_conn(s, fd, ss, buf, &bp);
	_exit(ECHOD_EXIT_OK);
}

static void
forget(struct serve *s, struct kids *ks, unsigned i)
{
	serve_untake(s, ks->k[i].key);
	ks->k[i] = ks->k[--ks->n];
}

static void
reaped(struct serve *s, struct kids *ks, pid_t pid, int st)
{
	unsigned i;

	for (i = 0; i < ks->n && ks->k[i].pid != pid; i++)
		;
	if (i == ks->n)
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

	for (i = 0; i < ks->n; i++)
		(void)kill(ks->k[i].pid, sig);
}

static void
spawn(struct serve *s, struct kids *ks, int fd,
    const struct sockaddr_storage *ss, unsigned char *buf)
{
	pid_t pid, self = getpid();
	uint64_t key;

	if (serve_admit(s, ss, &key) == -1) {
		close(fd);
		return;
	}
	if ((pid = fork()) == -1) {
		serve_pause(s, "fork", errno);
		serve_release(s, key);
		close(fd);
		return;
	}
	if (pid == 0)
		child(s, fd, ss, buf, self);
	close(fd);
	ks->k[ks->n].pid = pid;
	ks->k[ks->n++].key = key;
	sb_add(&s->sb->conns_open, 1);
	sb_add(&s->sb->conns_served, 1);
}

static void
process_run(struct serve *s, unsigned capacity)
{
	struct sockaddr_storage ss;
	struct kids ks = { .cap = capacity };
	struct reap_ctx ctx;
	unsigned char *buf;
	pid_t pid;
	int fd, st;

	if ((ks.k = calloc(capacity, sizeof(*ks.k))) == NULL ||
	    (buf = malloc(CONN_BUFSIZE)) == NULL)
		fatal(ECHOD_EXIT_WORKER_FATAL, "process-per-connection");
	while (!serve_done(s, ks.n)) {
		if (serve_accept(s, model_can_accept(ks.n, ks.cap, 0), &fd,
		    &ss) == 1)
			spawn(s, &ks, fd, &ss, buf);
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
	free(ks.k);
	free(buf);
}

const struct model_ops model_process_ops = {
	.model = CONF_MODEL_PROCESS,
	.needs = SANDBOX_NEED_POLL | SANDBOX_NEED_FORK,
	.with_chld = 1,
	.run = process_run,
};
