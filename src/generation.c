/*
 * generation: generations and reload.
 *
 * Workers belong to a generation: the configuration and listeners they
 * were forked with.  One generation serves.  A reload (SIGHUP) or a pool
 * recycle (a failed health probe) starts a pending one beside it; once
 * all of the pending one is ready it becomes the serving one and the
 * older ones drain.  If a pending worker exits before it is ready, or the
 * pending generation is not ready within RELOAD_TIMEOUT_MS, the reload
 * failed: the pending generation is abandoned, the serving one goes on
 * untouched, and a later SIGHUP may try again.  SIGHUPs that arrive while
 * a reload is in progress are coalesced into one reload, started when the
 * current one ends: at most three generations (pending, serving,
 * draining) ever hold slots.
 *
 * Never blocks; the listeners it opens and closes are the only sockets it
 * touches.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "daemon.h"
#include "log.h"
#include "master_int.h"
#include "notify.h"
#include "settings.h"

const struct gen *
gen_of(const struct master *m, uint64_t id)
{
	if (id == 0)
		return NULL;
	if (id == m->serving.id)
		return &m->serving;
	if (id == m->pending.id)
		return &m->pending;
	return NULL;
}

enum gen_step
gen_step(unsigned ready, unsigned live, unsigned target, uint64_t now_ms,
    uint64_t deadline_ms)
{
	if (ready >= target)
		return GEN_COMMIT;
	if (now_ms >= deadline_ms)
		return GEN_ABANDON;
	return live < target ? GEN_FILL : GEN_WAIT;
}

/* Each worker needs a descriptor per connection plus a few of its own. */
int
master_fit_nofile(const struct conf *c, size_t nlfds)
{
	rlim_t need = (rlim_t)c->max_connections + nlfds + 32;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return c->max_connections;
	if (rl.rlim_cur < need) {
		rl.rlim_cur = rl.rlim_max < need ? rl.rlim_max : need;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur >= need)
		return c->max_connections;
	log_warnx("RLIMIT_NOFILE is %llu (hard limit %llu): each worker will "
	    "hold at most %llu connections, not max_connections %d",
	    (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max,
	    (unsigned long long)(rl.rlim_cur - nlfds - 32), c->max_connections);
	return rl.rlim_cur > nlfds + 33 ? (int)(rl.rlim_cur - nlfds - 32) : 1;
}

/*
 * The descriptors workers inherit, which of them expect a PROXY header,
 * the plain one the health probe may use, and the addresses for the log
 * ("127.0.0.1:7007, 127.0.0.1:7008 (PROXY)").
 */
static void
describe(struct gen *g)
{
	size_t i, n = 0;

	g->addrs[0] = '\0';
	g->proxy_mask = listener_proxy_mask(g->ls, g->nls);
	g->probe_ls = -1;
	for (i = 0; i < g->nls; i++) {
		g->lfds[i] = g->ls[i].fd;
		if (g->probe_ls == -1 && !g->ls[i].proxy)
			g->probe_ls = (int)i;
		if (n < sizeof(g->addrs))
			n += (size_t)snprintf(g->addrs + n,
			    sizeof(g->addrs) - n, "%s%s%s", i ? ", " : "",
			    g->ls[i].name, g->ls[i].proxy ? " (PROXY)" : "");
	}
}

/*
 * Fork what g lacks, making room by killing draining workers; what finds
 * no slot yet is owed, and forked once the killed workers are reaped.
 */
static void
fill(struct master *m, struct gen *g)
{
	unsigned ready, live, need;

	g->owed = 0;
	pool_count_gen(&m->pool, g->id, &ready, &live);
	if (live >= g->target)
		return;
	need = g->target - live;
	slots_make_room(m, need, g->id);
	while (need > 0 && slots_add(m, g) == 0)
		need--;
	g->owed = need;
}

void
gen_first(struct master *m, const struct listener *ls, size_t nls)
{
	struct gen *g = &m->serving;

	g->id = ++m->last_generation;
	g->conf = m->conf;
	memcpy(g->ls, ls, nls * sizeof(*ls));
	g->nls = nls;
	describe(g);
	listener_store(g->ls, g->nls);
	g->max_conns = master_fit_nofile(g->conf, g->nls);
	g->target = (unsigned)g->conf->workers;
	fill(m, g);
}

/* Say where we stand: the log, READY=1 with STATUS=, the -d parent. */
static void
say_ready(struct master *m, const char *s, int failed)
{
	if (failed)
		log_err("%s", s);
	else
		log_notice("%s", s);
	notify_ready(s);
	snprintf(m->last_status, sizeof(m->last_status), "%s", s);
	m->next_status = master_now() + STATUS_INTERVAL_MS;
	if (m->ready_fd != -1 && !failed) {
		daemon_ready(m->ready_fd); /* -d: the parent may exit now */
		m->ready_fd = -1;
	}
}

/* A reload ended either way; a SIGHUP that waited goes in gen_check. */
static void
end(struct master *m)
{
	m->pending.id = 0;
	m->pending.nls = 0;
	m->rl.phase = RELOAD_IDLE;
}

static void
drop_pending(struct master *m)
{
	listener_close_unused(m->pending.ls, m->pending.nls, m->serving.ls,
	    m->serving.nls, 0);
	if (m->pending.conf == &m->rl.conf)
		conf_free(&m->rl.conf);
	m->pending.conf = NULL;
}

/* The reload failed: say so; the pending generation, if any, goes. */
static void
abandon(struct master *m, const char *why)
{
	char s[1400];

	snprintf(s, sizeof(s), "reload failed: %.1200s; still serving "
	    "generation %llu", why, (unsigned long long)m->serving.id);
	if (m->rl.kind == RELOAD_SIGHUP)
		sb_count_reload(&m->sb, 0, (uint64_t)time(NULL));
	if (m->rl.phase == RELOAD_STARTING) {
		slots_retire_gen(m, 0, m->pending.id);
		drop_pending(m);
	}
	say_ready(m, s, 1);
	end(m);
}

static void
commit(struct master *m)
{
	char s[1400];

	listener_close_unused(m->serving.ls, m->serving.nls, m->pending.ls,
	    m->pending.nls, 1);
	if (m->pending.conf != m->conf) {
		conf_free(m->conf);
		*m->conf = m->rl.conf; /* moved: the strings go with it */
		memset(&m->rl.conf, 0, sizeof(m->rl.conf));
		log_set_level(m->conf->log_level);
	}
	m->serving = m->pending;
	m->serving.conf = m->conf;
	describe(&m->serving);
	listener_store(m->serving.ls, m->serving.nls);
	slots_retire_gen(m, m->serving.id, 0);
	m->ready_sent = m->up = 1;
	if (m->rl.kind == RELOAD_SIGHUP) {
		sb_count_reload(&m->sb, 1, (uint64_t)time(NULL));
		metricsd_reconfigure(m);
	}
	snprintf(s, sizeof(s), "ready: generation %llu, %u workers, %llu ms "
	    "after the %s began; listening on %s",
	    (unsigned long long)m->serving.id, m->serving.target,
	    (unsigned long long)(master_now() - m->rl.started_ms),
	    m->rl.kind == RELOAD_SIGHUP ? "reload" : "recycle",
	    m->serving.addrs);
	say_ready(m, s, 0);
	end(m);
}

/*
 * The pending generation for a SIGHUP: the configuration rebuilt as at
 * start-up, and its listeners (kept, or opened beside the serving ones).
 */
static int
prepare_reload(struct master *m, char *err, size_t errlen)
{
	const struct master_opts *o = m->opts;
	struct settings set = { o->config_path, o->cli_listen, o->ncli_listen,
		o->cli_workers };
	struct conf *nc = &m->rl.conf;
	struct gen *g = &m->pending;

	if (settings_build(nc, &set, err, errlen) != SETTINGS_OK)
		goto fail;
	if (strcmp(nc->pidfile, m->conf->pidfile) != 0) {
		/* The pidfile echod owns is the one it created and locked. */
		if (o->pidfile_fd != -1)
			log_warnx("pidfile: a reload cannot move the pidfile "
			    "(still %s); restart echod to move it",
			    m->conf->pidfile);
		snprintf(nc->pidfile, sizeof(nc->pidfile), "%s",
		    m->conf->pidfile);
	}
	if (m->serving.nls > 0 && m->serving.ls[0].from_systemd) {
		log_notice("reload: listeners come from systemd; the "
		    "configuration's listen is not used");
		memcpy(g->ls, m->serving.ls, sizeof(g->ls));
		g->nls = m->serving.nls;
		listener_mark_adopted(g->ls, g->nls, nc->proxy_listen,
		    nc->nproxy_listen);
	} else if (listener_reconcile_both(m->serving.ls, m->serving.nls,
	    nc->listen, nc->nlisten, nc->proxy_listen, nc->nproxy_listen,
	    nc->backlog, g->ls, &g->nls, err, errlen) == -1)
		goto fail;
	if (settings_warning(nc) != NULL)
		log_warnx("reload: %s", settings_warning(nc));
	g->conf = nc;
	return 0;
fail:
	conf_free(nc);
	return -1;
}

static void
begin(struct master *m, enum reload_kind kind, const char *why)
{
	struct gen *g = &m->pending;
	uint64_t t0 = master_now(); /* before the file is read and bound */
	char err[1024];

	m->rl.kind = kind; /* abandon() counts a failed SIGHUP */
	if (kind == RELOAD_SIGHUP) {
		log_notice("SIGHUP: reloading %s", m->opts->config_path ?
		    m->opts->config_path : "the built-in defaults");
		notify_reloading();
		if (prepare_reload(m, err, sizeof(err)) == -1) {
			abandon(m, err);
			return;
		}
	} else {
		log_warnx("%s: recycling the pool (generation %llu)", why,
		    (unsigned long long)m->last_generation + 1);
		memcpy(g->ls, m->serving.ls, sizeof(g->ls));
		g->nls = m->serving.nls;
		g->conf = m->conf;
	}
	g->id = ++m->last_generation;
	describe(g);
	g->max_conns = master_fit_nofile(g->conf, g->nls);
	g->target = (unsigned)g->conf->workers;
	m->rl.phase = RELOAD_STARTING;
	m->rl.kind = kind;
	m->rl.started_ms = t0;
	m->rl.deadline_ms = m->rl.started_ms + RELOAD_TIMEOUT_MS;
	fill(m, g);
}

void
gen_on_hup(struct master *m)
{
	if (m->rl.phase != RELOAD_IDLE) {
		if (!m->rl.hup_due)
			log_notice("SIGHUP: generation %llu is still starting; "
			    "reloading again once it is done",
			    (unsigned long long)m->pending.id);
		m->rl.hup_due = 1;
		return;
	}
	begin(m, RELOAD_SIGHUP, NULL);
}

void
gen_recycle(struct master *m, const char *why)
{
	if (m->rl.phase != RELOAD_IDLE)
		return; /* a new generation is on its way already */
	begin(m, RELOAD_RECYCLE, why);
}

/* SIGTTIN: one worker more in the serving generation. */
void
gen_grow(struct master *m)
{
	m->serving.target++;
	fill(m, &m->serving);
}

void
gen_worker_failed(struct master *m, uint64_t gid, const char *why)
{
	if (gid != m->pending.id || m->rl.phase == RELOAD_IDLE)
		return;
	abandon(m, why);
}

void
gen_check(struct master *m)
{
	unsigned ready, live;
	char s[1400];

	if (m->stopping)
		return;
	if (m->rl.phase == RELOAD_STARTING) {
		pool_count_gen(&m->pool, m->pending.id, &ready, &live);
		switch (gen_step(ready, live, m->pending.target, master_now(),
		    m->rl.deadline_ms)) {
		case GEN_COMMIT:
			commit(m);
			break;
		case GEN_ABANDON:
			snprintf(s, sizeof(s), "generation %llu (%u of %u "
			    "workers ready) not ready after %d s",
			    (unsigned long long)m->pending.id, ready,
			    m->pending.target, RELOAD_TIMEOUT_MS / 1000);
			abandon(m, s);
			break;
		case GEN_FILL:
			fill(m, &m->pending);
			break;
		case GEN_WAIT:
			break;
		}
	}
	if (m->rl.phase == RELOAD_IDLE && m->rl.hup_due) {
		m->rl.hup_due = 0;
		begin(m, RELOAD_SIGHUP, NULL);
	}
	if (m->serving.owed > 0)
		fill(m, &m->serving);
	pool_count_gen(&m->pool, m->serving.id, &ready, &live);
	if (m->ready_sent || ready < m->serving.target)
		return;
	m->ready_sent = m->up = 1;
	snprintf(s, sizeof(s), "ready: %u workers, listening on %s",
	    m->serving.target, m->serving.addrs);
	say_ready(m, s, 0);
}

uint64_t
gen_deadline(const struct master *m)
{
	return m->rl.phase == RELOAD_STARTING ? m->rl.deadline_ms :
	    UINT64_MAX;
}

void
gen_stop(struct master *m)
{
	m->rl.hup_due = 0;
	if (m->rl.phase == RELOAD_IDLE)
		return;
	drop_pending(m);
	m->pending.id = 0;
	m->rl.phase = RELOAD_IDLE;
}
