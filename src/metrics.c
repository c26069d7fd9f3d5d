/*
 * metrics: a snapshot of the scoreboard, and the pure render of it into
 * the text exposition format 0.0.4 (see metrics.h).  Reads shared memory
 * and writes the caller's buffer; nothing else.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "conf.h"
#include "metrics.h"

void
metrics_snapshot(const struct scoreboard *sb, struct metrics_snap *s)
{
	const struct sb_header *h = sb->hdr;
	const struct sb_slot *sl;
	unsigned i, j, used = (unsigned)sb_load(&h->slots_used);
	uint64_t state;

	memset(s, 0, sizeof(*s));
	s->start_time_s = sb_load(&h->start_time_s);
	s->generation = sb_load(&h->generation);
	s->target = sb_load(&h->target);
	s->model = sb_load(&h->model);
	for (j = 0; j < SB_RESTART_N; j++)
		s->restarts[j] = sb_load(&h->restarts[j]);
	for (j = 0; j < SB_RELOAD_N; j++)
		s->reloads[j] = sb_load(&h->reloads[j]);
	s->last_reload_ok = sb_load(&h->last_reload_ok);
	s->last_reload_time_s = sb_load(&h->last_reload_time_s);
	for (j = 0; j < SB_PROBE_N; j++)
		s->probes[j] = sb_load(&h->probes[j]);
	s->accepted = sb_load(&h->carry.accepted);
	for (j = 0; j < SB_CLOSE_N; j++)
		s->closed[j] = sb_load(&h->carry.closed[j]);
	for (j = 0; j < SB_REFUSE_N; j++)
		s->refused[j] = sb_load(&h->carry.refused[j]);
	s->bytes_in = sb_load(&h->carry.bytes_in);
	s->bytes_out = sb_load(&h->carry.bytes_out);
	s->proxied = sb_load(&h->carry.proxied);
	for (i = 0; i < used && i < sb->nslots; i++) {
		sl = &sb->slots[i];
		state = sb_load(&sl->state);
		if (state >= SB_STARTING && state <= SB_DRAINING) {
			s->workers[state - SB_STARTING]++;
			s->open += sb_load(&sl->conns_open);
		}
		s->accepted += sb_load(&sl->accepted);
		for (j = 0; j < SB_CLOSE_N; j++)
			s->closed[j] += sb_load(&sl->closed[j]);
		for (j = 0; j < SB_REFUSE_N; j++)
			s->refused[j] += sb_load(&sl->refused[j]);
		s->bytes_in += sb_load(&sl->bytes_in);
		s->bytes_out += sb_load(&sl->bytes_out);
		s->proxied += sb_load(&sl->proxied);
	}
}

/*
 * The counters an in-place upgrade hands over, in one order: packing and
 * unpacking both walk this list, so the order is written once; to_array
 * says which way the values go.
 */
static size_t
carry_walk(struct metrics_snap *s, uint64_t *v, int to_array)
{
	uint64_t *f[METRICS_CARRY_N];
	size_t n = 0, j;

	f[n++] = &s->start_time_s;
	f[n++] = &s->accepted;
	for (j = 0; j < SB_CLOSE_N; j++)
		f[n++] = &s->closed[j];
	for (j = 0; j < SB_REFUSE_N; j++)
		f[n++] = &s->refused[j];
	f[n++] = &s->bytes_in;
	f[n++] = &s->bytes_out;
	f[n++] = &s->proxied;
	for (j = 0; j < SB_RESTART_N; j++)
		f[n++] = &s->restarts[j];
	for (j = 0; j < SB_RELOAD_N; j++)
		f[n++] = &s->reloads[j];
	f[n++] = &s->last_reload_ok;
	f[n++] = &s->last_reload_time_s;
	for (j = 0; j < SB_PROBE_N; j++)
		f[n++] = &s->probes[j];
	for (j = 0; j < n; j++) {
		if (to_array)
			v[j] = *f[j];
		else
			*f[j] = v[j];
	}
	return n;
}

size_t
metrics_pack(const struct metrics_snap *s, uint64_t *v)
{
	struct metrics_snap copy = *s;

	return carry_walk(&copy, v, 1);
}

void
metrics_unpack(const uint64_t *v, struct metrics_snap *s)
{
	uint64_t tmp[METRICS_CARRY_N];

	memcpy(tmp, v, sizeof(tmp));
	memset(s, 0, sizeof(*s));
	(void)carry_walk(s, tmp, 0);
}

void
metrics_carry(struct scoreboard *sb, const struct metrics_snap *s)
{
	struct sb_header *h = sb->hdr;
	unsigned j;

	sb_store(&h->start_time_s, s->start_time_s);
	for (j = 0; j < SB_RESTART_N; j++)
		sb_store(&h->restarts[j], s->restarts[j]);
	for (j = 0; j < SB_RELOAD_N; j++)
		sb_store(&h->reloads[j], s->reloads[j]);
	sb_store(&h->last_reload_ok, s->last_reload_ok);
	sb_store(&h->last_reload_time_s, s->last_reload_time_s);
	for (j = 0; j < SB_PROBE_N; j++)
		sb_store(&h->probes[j], s->probes[j]);
	sb_store(&h->carry.accepted, s->accepted);
	for (j = 0; j < SB_CLOSE_N; j++)
		sb_store(&h->carry.closed[j], s->closed[j]);
	for (j = 0; j < SB_REFUSE_N; j++)
		sb_store(&h->carry.refused[j], s->refused[j]);
	sb_store(&h->carry.bytes_in, s->bytes_in);
	sb_store(&h->carry.bytes_out, s->bytes_out);
	sb_store(&h->carry.proxied, s->proxied);
}

/* The text so far; off may pass len (then only counted, as snprintf). */
struct out {
	char *buf;
	size_t len, off;
};

static void put(struct out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(o->off < o->len ? o->buf + o->off : NULL,
	    o->off < o->len ? o->len - o->off : 0, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->off += (size_t)n;
}

/* # HELP and # TYPE of one metric. */
static void
family(struct out *o, const char *name, const char *type, const char *help)
{
	put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
sample(struct out *o, const char *name, uint64_t v)
{
	put(o, "%s %llu\n", name, (unsigned long long)v);
}

/* One sample per label value: names(i) for i < n. */
static void
labelled(struct out *o, const char *name, const char *label,
    const char *(*names)(unsigned), const uint64_t *v, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++)
		put(o, "%s{%s=\"%s\"} %llu\n", name, label, names(i),
		    (unsigned long long)v[i]);
}

static const char *
state_name(unsigned i)
{
	static const char *const names[METRICS_NSTATES] = { "starting",
		"ready", "draining" };

	return i < METRICS_NSTATES ? names[i] : NULL;
}

void
metrics_escape(const char *in, char *out, size_t len)
{
	size_t o = 0;
	const char *e;
	char two[3];

	for (; len > 0 && *in != '\0'; in++) {
		e = *in == '\\' ? "\\\\" : *in == '"' ? "\\\"" :
		    *in == '\n' ? "\\n" : NULL;
		if (e == NULL) {
			two[0] = *in;
			two[1] = '\0';
			e = two;
		}
		if (o + strlen(e) >= len)
			break;
		memcpy(out + o, e, strlen(e));
		o += strlen(e);
	}
	if (len > 0)
		out[o] = '\0';
}

static void
render_process(struct out *o, const struct metrics_snap *s,
    const char *version)
{
	char v[128], model[64];

	metrics_escape(version, v, sizeof(v));
	metrics_escape(conf_model_name((int)s->model), model, sizeof(model));
	family(o, "echod_build_info", "gauge", "Which echod this is: its "
	    "version and the serving generation's server model; always 1.");
	put(o, "echod_build_info{version=\"%s\",model=\"%s\"} 1\n", v, model);
	family(o, "process_start_time_seconds", "gauge", "When the echod "
	    "master started, in seconds since the Unix epoch.");
	sample(o, "process_start_time_seconds", s->start_time_s);
	family(o, "echod_generation", "gauge", "The configuration generation "
	    "being served: 1 at start, one more per reload or pool recycle.");
	sample(o, "echod_generation", s->generation);
	family(o, "echod_workers", "gauge", "Worker processes, by state.");
	labelled(o, "echod_workers", "state", state_name, s->workers,
	    METRICS_NSTATES);
	family(o, "echod_workers_target", "gauge", "Workers the serving "
	    "generation wants (workers, SIGTTIN, SIGTTOU).");
	sample(o, "echod_workers_target", s->target);
}

static void
render_connections(struct out *o, const struct metrics_snap *s)
{
	family(o, "echod_connections_open", "gauge", "Client connections "
	    "open now.");
	sample(o, "echod_connections_open", s->open);
	family(o, "echod_connections_accepted_total", "counter", "Client "
	    "connections accepted, those refused at once included.");
	sample(o, "echod_connections_accepted_total", s->accepted);
	family(o, "echod_connections_closed_total", "counter", "Client "
	    "connections closed, by reason.");
	labelled(o, "echod_connections_closed_total", "reason", sb_close_name,
	    s->closed, SB_CLOSE_N);
	family(o, "echod_received_bytes_total", "counter", "Bytes received "
	    "from clients, counted as each connection closes.");
	sample(o, "echod_received_bytes_total", s->bytes_in);
	family(o, "echod_sent_bytes_total", "counter", "Bytes sent to "
	    "clients, counted as each connection closes.");
	sample(o, "echod_sent_bytes_total", s->bytes_out);
	family(o, "echod_per_ip_refusals_total", "counter", "Connections "
	    "refused by a per-IP limit, by limit.");
	labelled(o, "echod_per_ip_refusals_total", "limit", sb_refuse_name,
	    s->refused, SB_REFUSE_N);
	family(o, "echod_proxy_headers_total", "counter", "PROXY protocol "
	    "headers accepted.");
	sample(o, "echod_proxy_headers_total", s->proxied);
}

static void
render_master(struct out *o, const struct metrics_snap *s)
{
	family(o, "echod_worker_restarts_total", "counter", "Workers "
	    "replaced after they died, by cause.");
	labelled(o, "echod_worker_restarts_total", "cause", sb_restart_name,
	    s->restarts, SB_RESTART_N);
	family(o, "echod_reloads_total", "counter", "Reloads (SIGHUP), by "
	    "result.");
	labelled(o, "echod_reloads_total", "result", sb_reload_name,
	    s->reloads, SB_RELOAD_N);
	family(o, "echod_last_reload_success", "gauge", "Whether the last "
	    "reload succeeded (1 before any).");
	sample(o, "echod_last_reload_success", s->last_reload_ok);
	family(o, "echod_last_reload_timestamp_seconds", "gauge", "When the "
	    "last reload ended, in seconds since the Unix epoch (0 before "
	    "any).");
	sample(o, "echod_last_reload_timestamp_seconds", s->last_reload_time_s);
	family(o, "echod_health_probes_total", "counter", "Health probes "
	    "for the systemd watchdog, by result.");
	labelled(o, "echod_health_probes_total", "result", sb_probe_name,
	    s->probes, SB_PROBE_N);
}

size_t
metrics_render(const struct metrics_snap *s, const char *version, char *out,
    size_t len)
{
	struct out o = { out, len, 0 };

	if (len > 0)
		out[0] = '\0';
	render_process(&o, s, version);
	render_connections(&o, s);
	render_master(&o, s);
	return o.off;
}
