/*
 * metricsd: the metrics process (see metricsd.h), and the master's side
 * of it.
 *
 * The child: one epoll loop over its listener, its signalfd and at most
 * METRICSD_CLIENTS connections with fixed buffers; a request head is
 * parsed and routed by the pure http.c, the text rendered by the pure
 * metrics.c from a snapshot of the scoreboard.  No client byte is ever
 * sent back.  It waits for nobody: a scraper that sends nothing, or
 * reads nothing, holds one of the four places until its deadline.
 *
 * The master's side: the socket stays open in the master, so a metrics
 * process that dies is replaced (at most once a second) while scrapers
 * wait in the accept queue.  All the master's loop does for it is reap,
 * restart and signal it.
 */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "exitcodes.h"
#include "http.h"
#include "log.h"
#include "master_int.h"
#include "metrics.h"
#include "metricsd.h"
#include "proctitle.h"
#include "sandbox.h"
#include "version.h"
#include "worker.h"

#define TAG_LISTENER UINT32_MAX
#define TAG_SIGNAL (UINT32_MAX - 1)
#define ACCEPT_BATCH 16
#define TICK_MS 1000 /* look at the master at least this often */
#define CT_METRICS "text/plain; version=0.0.4; charset=utf-8"
#define CT_TEXT "text/plain; charset=utf-8"
#define CT_HTML "text/html; charset=utf-8"
#define INDEX_PAGE                                                         \
	"<!DOCTYPE html>\n<html><head><title>echod</title></head><body>\n" \
	"<h1>echod</h1>\n<p><a href=\"/metrics\">Metrics</a></p>\n"       \
	"</body></html>\n"
#define HEAD_ROOM 256 /* for the response head */

uint64_t
metricsd_restart_at(uint64_t started_ms, uint64_t now_ms)
{
	uint64_t t = started_ms + METRICSD_RESTART_MS;

	return t > now_ms ? t : now_ms;
}

/* ---- the child ---- */

struct mconn {
	int fd;            /* -1: free */
	int writing;       /* the response is being written */
	uint64_t deadline; /* monotonic ms: closed then */
	size_t in_len, out_len, out_off;
	char in[HTTP_HEAD_MAX];
	char out[HEAD_ROOM + METRICS_TEXT_MAX];
};

struct md {
	const struct metricsd_args *a;
	int epfd, sigfd;
	uint64_t now;
	struct mconn c[METRICSD_CLIENTS];
	char text[METRICS_TEXT_MAX];
};

static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
drop(struct mconn *c)
{
	close(c->fd); /* close() also takes it out of the epoll set */
	c->fd = -1;
}

/*
 * Read and drop what the client sent beyond its request head (the rest
 * of a request over 8 KiB, a body): closing a socket with unread bytes
 * sends a reset, which may cost the client the answer it was sent.
 */
static void
discard_input(struct mconn *c)
{
	int i;

	for (i = 0; i < 8; i++)
		if (read(c->fd, c->in, sizeof(c->in)) < (ssize_t)sizeof(c->in))
			break;
}

/* Write what is left; 1: all of it (closed), 0: later, -1: closed. */
static int
flush(struct mconn *c)
{
	ssize_t n;

	while (c->out_off < c->out_len) {
		n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
		    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0)
			break;
		c->out_off += (size_t)n;
	}
	if (c->out_off == c->out_len)
		discard_input(c);
	drop(c);
	return c->out_off == c->out_len ? 1 : -1;
}

/* The body of a page: the metrics text, the index, or a status's line. */
static size_t
body(struct md *d, int status, enum http_page page, const char **type)
{
	struct metrics_snap s;
	size_t n;
	int k;

	switch (page) {
	case HTTP_PAGE_METRICS:
		metrics_snapshot(d->a->sb, &s);
		n = metrics_render(&s, ECHOD_VERSION, d->text, sizeof(d->text));
		if (n < sizeof(d->text)) {
			*type = CT_METRICS;
			return n;
		}
		status = 500; /* cannot happen: the metrics suite checks it */
		break;
	case HTTP_PAGE_INDEX:
		*type = CT_HTML;
		memcpy(d->text, INDEX_PAGE, sizeof(INDEX_PAGE) - 1);
		return sizeof(INDEX_PAGE) - 1;
	case HTTP_PAGE_NONE:
		break;
	}
	*type = CT_TEXT;
	k = snprintf(d->text, sizeof(d->text), "%d %s\n", status,
	    http_reason(status));
	return k > 0 ? (size_t)k : 0;
}

/* Answer c and start writing; the response has its own deadline. */
static void
respond(struct md *d, struct mconn *c, struct http_answer an)
{
	const char *type = CT_TEXT;
	struct epoll_event ev;
	size_t blen, hlen;

	blen = body(d, an.status, an.page, &type);
	if (an.page == HTTP_PAGE_METRICS && strcmp(type, CT_TEXT) == 0)
		an.status = 500;
	hlen = http_head(c->out, HEAD_ROOM, an.status, type, blen);
	memcpy(c->out + hlen, d->text, an.head ? 0 : blen);
	c->out_len = hlen + (an.head ? 0 : blen);
	c->out_off = 0;
	c->writing = 1;
	c->deadline = d->now + METRICSD_DEADLINE_MS;
	if (flush(c) != 0)
		return;
	ev.events = EPOLLOUT;
	ev.data.u32 = (uint32_t)(c - d->c);
	if (epoll_ctl(d->epfd, EPOLL_CTL_MOD, c->fd, &ev) == -1)
		drop(c);
}

static void
on_readable(struct md *d, struct mconn *c)
{
	struct http_answer an = { 0, HTTP_PAGE_NONE, 0 };
	struct http_req r;
	ssize_t n;

	n = read(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len);
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	    errno == EINTR))
		return;
	if (n <= 0) {
		drop(c); /* gone before a whole request */
		return;
	}
	c->in_len += (size_t)n;
	switch (http_parse(c->in, c->in_len, &r)) {
	case HTTP_NEED_MORE:
		return;
	case HTTP_BAD:
		an.status = 400;
		break;
	case HTTP_TOO_BIG:
		an.status = 431;
		break;
	case HTTP_OK:
		an = http_route(r.method, r.method_len, r.path, r.path_len);
		break;
	}
	respond(d, c, an);
}

/* All places taken: 503 if the socket takes it at once, then closed. */
static void
refuse(struct md *d, int fd)
{
	const char *type = CT_TEXT;
	char out[HEAD_ROOM + 64];
	size_t blen, hlen;

	blen = body(d, 503, HTTP_PAGE_NONE, &type);
	hlen = http_head(out, HEAD_ROOM, 503, type, blen);
	memcpy(out + hlen, d->text, blen);
	(void)send(fd, out, hlen + blen, MSG_NOSIGNAL | MSG_DONTWAIT);
	close(fd);
}

static void
on_accept(struct md *d)
{
	struct sockaddr_storage ss;
	struct epoll_event ev;
	struct mconn *c;
	socklen_t sl;
	int fd, n, i;

	for (n = 0; n < ACCEPT_BATCH; n++) {
		sl = sizeof(ss);
		fd = accept4(d->a->lfd, (struct sockaddr *)&ss, &sl,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				log_warnx("accept: %s", strerror(errno));
			return;
		}
		for (i = 0; i < METRICSD_CLIENTS && d->c[i].fd != -1; i++)
			;
		if (i == METRICSD_CLIENTS) {
			refuse(d, fd);
			continue;
		}
		c = &d->c[i];
		memset(c, 0, offsetof(struct mconn, in));
		c->fd = fd;
		c->deadline = d->now + METRICSD_DEADLINE_MS;
		ev.events = EPOLLIN;
		ev.data.u32 = (uint32_t)i;
		if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev) == -1)
			drop(c);
	}
}

static int
next_timeout(const struct md *d)
{
	uint64_t t = d->now + TICK_MS;
	unsigned i;

	for (i = 0; i < METRICSD_CLIENTS; i++)
		if (d->c[i].fd != -1 && d->c[i].deadline < t)
			t = d->c[i].deadline;
	return t > d->now ? (int)(t - d->now) : 0;
}

static void
expire(struct md *d)
{
	unsigned i;

	for (i = 0; i < METRICSD_CLIENTS; i++)
		if (d->c[i].fd != -1 && d->now >= d->c[i].deadline)
			drop(&d->c[i]);
}

static void
dispatch(struct md *d, const struct epoll_event *ev, int *stop)
{
	struct signalfd_siginfo si;
	struct mconn *c;

	if (ev->data.u32 == TAG_SIGNAL) {
		while (read(d->sigfd, &si, sizeof(si)) == sizeof(si))
			*stop = 1;
		return;
	}
	if (ev->data.u32 == TAG_LISTENER) {
		on_accept(d);
		return;
	}
	c = &d->c[ev->data.u32];
	if (c->fd == -1)
		return;
	if (c->writing)
		(void)flush(c);
	else
		on_readable(d, c);
}

static void
run(struct md *d)
{
	struct epoll_event evs[METRICSD_CLIENTS + 2];
	int i, n, stop = 0;

	while (!stop) {
		n = epoll_wait(d->epfd, evs, METRICSD_CLIENTS + 2,
		    next_timeout(d));
		if (n == -1 && errno != EINTR)
			fatal(ECHOD_EXIT_FAILURE, "epoll_wait");
		d->now = mono_ms();
		for (i = 0; i < n; i++)
			dispatch(d, &evs[i], &stop);
		expire(d);
		if (getppid() != d->a->master_pid)
			stop = 1;
	}
}

/* Signals as a worker has them: SIGTERM and SIGINT through a signalfd. */
static void
setup_process(const struct metricsd_args *a)
{
	worker_child_signals(a->master_pid);
	log_set_tag("metrics");
	proctitle_set("echod: metrics");
}

static int
setup_loop(struct md *d)
{
	struct epoll_event ev;
	sigset_t set;
	unsigned i;

	for (i = 0; i < METRICSD_CLIENTS; i++)
		d->c[i].fd = -1;
	d->now = mono_ms();
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if ((d->epfd = epoll_create1(EPOLL_CLOEXEC)) == -1 ||
	    (d->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) == -1)
		return -1;
	ev.events = EPOLLIN;
	ev.data.u32 = TAG_SIGNAL;
	if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->sigfd, &ev) == -1)
		return -1;
	ev.data.u32 = TAG_LISTENER;
	return epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->a->lfd, &ev);
}

/* The events worker's filter, under the same sandbox = on|try|off. */
static int
enter_sandbox(const struct metricsd_args *a)
{
	struct sandbox_verdict v;
	char err[256] = "";
	int rc = 0;

	if (a->sandbox != CONF_SANDBOX_OFF)
		rc = sandbox_enter(a->sandbox_needs, err, sizeof(err));
	v = sandbox_decide(a->sandbox, rc);
	if (v.exit)
		fatalx(ECHOD_EXIT_WORKER_FATAL, "sandbox = on, but the seccomp "
		    "filter cannot load: %s; not serving without it "
		    "(sandbox = try would)", err);
	if (v.warn)
		log_warnx("sandbox = try: the seccomp filter cannot load: %s; "
		    "running without it", err);
	return v.state;
}

void
metricsd_main(const struct metricsd_args *a)
{
	static struct md d; /* 5 x 24 KiB of buffers: not on the stack */
	int state;

	setup_process(a);
	d.a = a;
	if (setup_loop(&d) == -1)
		fatal(ECHOD_EXIT_WORKER_FATAL, "cannot set up the event loop");
	state = enter_sandbox(a);
	log_info("serving /metrics on %s (sandbox %s)", a->name,
	    sandbox_state_name(state));
	run(&d);
	exit(ECHOD_EXIT_OK);
}

/* ---- the master's side ---- */

/* The socket for spec into md: 0, or -1 with err. */
static int
open_listener(struct metricsd_ctl *md, const char *spec, char *err,
    size_t errlen)
{
	struct listener l;
	struct listen_addr la;

	if (listener_parse(spec, &la, err, errlen) == -1 ||
	    (l.fd = listener_open(&la, METRICSD_BACKLOG, err, errlen)) == -1)
		return -1;
	memset(l.spec, 0, sizeof(l.spec));
	listener_name(&l);
	md->lfd = l.fd;
	snprintf(md->spec, sizeof(md->spec), "%s", spec);
	snprintf(md->name, sizeof(md->name), "%s", l.name);
	return 0;
}

void
metricsd_open(struct master *m)
{
	struct metricsd_ctl *md = &m->md;
	char err[256];

	memset(md, 0, sizeof(*md));
	md->lfd = -1;
	md->due_ms = UINT64_MAX;
	md->sandbox = m->conf->sandbox;
	if (m->conf->metrics_listen[0] == '\0')
		return;
	if (open_listener(md, m->conf->metrics_listen, err, sizeof(err)) == -1)
		fatalx(ECHOD_EXIT_OSERR, "metrics_listen: %s", err);
	log_notice("metrics: /metrics on %s", md->name);
}

void
metricsd_spawn(struct master *m)
{
	struct metricsd_ctl *md = &m->md;
	struct metricsd_args a;
	pid_t pid;

	md->due_ms = UINT64_MAX;
	if (md->lfd == -1 || md->pid > 0 || md->broken || m->stopping)
		return;
	a = (struct metricsd_args){ .lfd = md->lfd, .sb = &m->sb,
		.sandbox = md->sandbox, .sandbox_needs = m->opts->sandbox_needs,
		.master_pid = getpid(), .name = md->name };
	if ((pid = fork()) == -1) {
		log_warn("fork for the metrics process; trying again in 1 s");
		md->due_ms = master_now() + METRICSD_RESTART_MS;
		return;
	}
	if (pid == 0) {
		/* Everything the master holds but the scoreboard goes. */
		md->lfd = -1;
		m->wa.nlfds = 0;
		master_child_close(m);
		close(m->status_wr);
		climit_destroy(&m->limits);
		metricsd_main(&a);
	}
	md->pid = pid;
	md->started_ms = master_now();
	md->replacing = 0;
	log_debug("metrics process started, pid %d", (int)pid);
}

int
metricsd_reaped(struct master *m, pid_t pid, int st)
{
	struct metricsd_ctl *md = &m->md;
	uint64_t now = master_now();
	char how[128];

	if (pid <= 0 || pid != md->pid)
		return 0;
	md->pid = 0;
	if (WIFSIGNALED(st))
		snprintf(how, sizeof(how), "killed by signal %d (%s)",
		    WTERMSIG(st), strsignal(WTERMSIG(st)));
	else
		snprintf(how, sizeof(how), "exited with status %d",
		    WEXITSTATUS(st));
	if (m->stopping || md->replacing || md->lfd == -1) {
		log_info("metrics process (pid %d) %s", (int)pid, how);
		md->due_ms = md->replacing ? now : UINT64_MAX;
		return 1;
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == ECHOD_EXIT_WORKER_FATAL) {
		log_err("metrics process (pid %d) %s: it cannot start; "
		    "/metrics stays off until a reload", (int)pid, how);
		md->broken = 1;
		return 1;
	}
	md->due_ms = metricsd_restart_at(md->started_ms, now);
	log_warnx("metrics process (pid %d) %s after %.1f s; restarting it "
	    "in %llu ms", (int)pid, how,
	    (double)(now - md->started_ms) / 1000.0,
	    (unsigned long long)(md->due_ms - now));
	return 1;
}

uint64_t
metricsd_due(const struct master *m)
{
	return m->md.due_ms;
}

void
metricsd_timer(struct master *m, uint64_t now)
{
	if (now >= m->md.due_ms)
		metricsd_spawn(m);
}

void
metricsd_signal(struct master *m, int sig)
{
	if (m->md.pid > 0)
		(void)kill(m->md.pid, sig);
}

/*
 * After a reload's commit: metrics_listen added, moved or removed, or the
 * sandbox changed: a new socket (the old one kept if it cannot be had)
 * and a new process.
 */
void
metricsd_reconfigure(struct master *m)
{
	struct metricsd_ctl *md = &m->md, nw;
	const char *spec = m->conf->metrics_listen;
	char err[256];

	if (strcmp(spec, md->spec) == 0 && md->sandbox == m->conf->sandbox &&
	    !md->broken)
		return;
	if (strcmp(spec, md->spec) != 0) {
		nw = *md;
		nw.lfd = -1;
		nw.spec[0] = '\0';
		if (spec[0] != '\0' && open_listener(&nw, spec, err,
		    sizeof(err)) == -1) {
			log_err("metrics_listen: %s; /metrics stays %s%s", err,
			    md->lfd == -1 ? "off" : "on ", md->name);
			return;
		}
		if (md->lfd != -1) {
			log_notice("metrics: no longer on %s", md->name);
			close(md->lfd);
		}
		*md = nw;
		if (md->lfd != -1)
			log_notice("metrics: /metrics on %s", md->name);
	}
	md->sandbox = m->conf->sandbox;
	md->broken = 0;
	if (md->pid > 0) {
		md->replacing = md->lfd != -1;
		metricsd_signal(m, SIGTERM);
	} else if (md->lfd != -1)
		md->due_ms = master_now();
}
