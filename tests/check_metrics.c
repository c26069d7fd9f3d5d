/*
 * check_metrics: Prometheus /metrics.  First without a daemon: the close
 * reasons, restart causes and label names as tables, the render of a
 * snapshot against the expected text, escaping, sizes, the snapshot of a
 * scoreboard.  Then live ("live"): echod with metrics_listen, its counts
 * after echoes, across a killed worker and a reload, the HTTP rules, a
 * silent scraper, no echo on that port, the metrics process restarted.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clients.h"
#include "conf.h"
#include "harness.h"
#include "procfs.h"
#include "http.h"
#include "metrics.h"
#include "metricsd.h"
#include "scoreboard.h"
#include "suites.h"

/* ---- pure ---- */

static const struct {
	const char *how;
	int err;
	enum sb_close want;
} reasons[] = {
	/* worker.c close_conn's and serve.c's words */
	{ "client closed", 0, SB_CLOSE_CLIENT },
	{ "idle timeout", 0, SB_CLOSE_IDLE },
	{ "max_connection_time", 0, SB_CLOSE_LIFETIME },
	{ "refused", 0, SB_CLOSE_LIMIT },
	{ "shutdown", 0, SB_CLOSE_SHUTDOWN },
	{ "bad PROXY header", 0, SB_CLOSE_PROXY },
	{ "PROXY header timeout", 0, SB_CLOSE_PROXY },
	{ "failed", ECONNRESET, SB_CLOSE_RESET },
	{ "failed", EPIPE, SB_CLOSE_RESET },
	{ "failed", EIO, SB_CLOSE_ERROR },
	{ "failed", 0, SB_CLOSE_ERROR },
	{ "failed", ETIMEDOUT, SB_CLOSE_ERROR },
	{ "something new", 0, SB_CLOSE_ERROR },
	{ NULL, ECONNRESET, SB_CLOSE_RESET },
	/* the word decides, not an errno left behind */
	{ "client closed", ECONNRESET, SB_CLOSE_CLIENT },
	{ "idle timeout", EIO, SB_CLOSE_IDLE },
};

START_TEST(close_reason_table)
{
	ck_assert_msg(sb_close_reason(reasons[_i].how, reasons[_i].err) ==
	    reasons[_i].want, "'%s' errno %d", reasons[_i].how ?
	    reasons[_i].how : "(null)", reasons[_i].err);
}
END_TEST

static const struct {
	int hung, signaled, later;
	enum sb_restart want;
} causes[] = {
	{ 0, 0, 0, SB_RESTART_EXIT },
	{ 0, 1, 0, SB_RESTART_SIGNAL },
	{ 0, 0, 1, SB_RESTART_BACKOFF },
	{ 0, 1, 1, SB_RESTART_BACKOFF },
	{ 1, 1, 0, SB_RESTART_HUNG },
	{ 1, 1, 1, SB_RESTART_HUNG },
	{ 1, 0, 0, SB_RESTART_HUNG },
};

START_TEST(restart_cause_table)
{
	ck_assert_int_eq(sb_restart_cause(causes[_i].hung,
	    causes[_i].signaled, causes[_i].later), causes[_i].want);
}
END_TEST

START_TEST(label_names)
{
	ck_assert_str_eq(sb_close_name(SB_CLOSE_CLIENT), "client");
	ck_assert_str_eq(sb_close_name(SB_CLOSE_IDLE), "idle_timeout");
	ck_assert_str_eq(sb_close_name(SB_CLOSE_LIFETIME), "lifetime");
	ck_assert_str_eq(sb_close_name(SB_CLOSE_LIMIT), "limit");
	ck_assert_str_eq(sb_close_name(SB_CLOSE_RESET), "reset");
	ck_assert_str_eq(sb_close_name(SB_CLOSE_ERROR), "error");
	ck_assert_str_eq(sb_close_name(SB_CLOSE_SHUTDOWN), "shutdown");
	ck_assert_str_eq(sb_close_name(SB_CLOSE_PROXY), "proxy");
	ck_assert_ptr_null(sb_close_name(SB_CLOSE_N));
	ck_assert_str_eq(sb_refuse_name(SB_REFUSE_CONNS), "connections");
	ck_assert_str_eq(sb_refuse_name(SB_REFUSE_RATE), "rate");
	ck_assert_ptr_null(sb_refuse_name(SB_REFUSE_N));
	ck_assert_str_eq(sb_restart_name(SB_RESTART_BACKOFF), "backoff");
	ck_assert_ptr_null(sb_restart_name(SB_RESTART_N));
	ck_assert_str_eq(sb_probe_name(SB_PROBE_SKIPPED), "skipped");
	ck_assert_ptr_null(sb_probe_name(SB_PROBE_N));
	ck_assert_str_eq(sb_reload_name(SB_RELOAD_FAILURE), "failure");
	ck_assert_ptr_null(sb_reload_name(SB_RELOAD_N));
}
END_TEST

static const struct {
	const char *in, *want;
	size_t len;
} escapes[] = {
	{ "0.1.0", "0.1.0", 64 },
	{ "a\\b", "a\\\\b", 64 },
	{ "say \"hi\"", "say \\\"hi\\\"", 64 },
	{ "two\nlines", "two\\nlines", 64 },
	{ "", "", 64 },
	{ "abcdef", "abc", 4 },
	{ "ab\\c", "ab", 4 },   /* an escape is never cut in half */
	{ "\\", "", 2 },
	{ "abc", "", 1 },
};

START_TEST(escape_table)
{
	char out[64];

	memset(out, 'X', sizeof(out));
	metrics_escape(escapes[_i].in, out, escapes[_i].len);
	ck_assert_str_eq(out, escapes[_i].want);
}
END_TEST

/* A snapshot with a distinct value everywhere. */
static void
sample_snap(struct metrics_snap *s)
{
	unsigned i;

	memset(s, 0, sizeof(*s));
	s->start_time_s = 1796565874;
	s->generation = 3;
	s->target = 4;
	s->model = CONF_MODEL_THREAD_POOL;
	s->workers[METRICS_STARTING] = 1;
	s->workers[METRICS_READY] = 4;
	s->workers[METRICS_DRAINING] = 2;
	s->open = 7;
	s->accepted = 100;
	for (i = 0; i < SB_CLOSE_N; i++)
		s->closed[i] = 10 + i;
	s->bytes_in = 123456789012ULL;
	s->bytes_out = 123456789013ULL;
	for (i = 0; i < SB_RESTART_N; i++)
		s->restarts[i] = 20 + i;
	s->reloads[SB_RELOAD_SUCCESS] = 5;
	s->reloads[SB_RELOAD_FAILURE] = 1;
	s->last_reload_ok = 0;
	s->last_reload_time_s = 1796566000;
	s->refused[SB_REFUSE_CONNS] = 30;
	s->refused[SB_REFUSE_RATE] = 31;
	s->probes[SB_PROBE_OK] = 40;
	s->probes[SB_PROBE_FAILED] = 41;
	s->probes[SB_PROBE_SKIPPED] = 42;
	s->proxied = 50;
}

static const char expected[] =
"# HELP echod_build_info Which echod this is: its version and the serving generation's server model; always 1.\n"
"# TYPE echod_build_info gauge\n"
"echod_build_info{version=\"1.2.3-\\\"x\\\"\",model=\"thread-pool\"} 1\n"
"# HELP process_start_time_seconds When the echod master started, in seconds since the Unix epoch.\n"
"# TYPE process_start_time_seconds gauge\n"
"process_start_time_seconds 1796565874\n"
"# HELP echod_generation The configuration generation being served: 1 at start, one more per reload or pool recycle.\n"
"# TYPE echod_generation gauge\n"
"echod_generation 3\n"
"# HELP echod_workers Worker processes, by state.\n"
"# TYPE echod_workers gauge\n"
"echod_workers{state=\"starting\"} 1\n"
"echod_workers{state=\"ready\"} 4\n"
"echod_workers{state=\"draining\"} 2\n"
"# HELP echod_workers_target Workers the serving generation wants (workers, SIGTTIN, SIGTTOU).\n"
"# TYPE echod_workers_target gauge\n"
"echod_workers_target 4\n"
"# HELP echod_connections_open Client connections open now.\n"
"# TYPE echod_connections_open gauge\n"
"echod_connections_open 7\n"
"# HELP echod_connections_accepted_total Client connections accepted, those refused at once included.\n"
"# TYPE echod_connections_accepted_total counter\n"
"echod_connections_accepted_total 100\n"
"# HELP echod_connections_closed_total Client connections closed, by reason.\n"
"# TYPE echod_connections_closed_total counter\n"
"echod_connections_closed_total{reason=\"client\"} 10\n"
"echod_connections_closed_total{reason=\"idle_timeout\"} 11\n"
"echod_connections_closed_total{reason=\"lifetime\"} 12\n"
"echod_connections_closed_total{reason=\"limit\"} 13\n"
"echod_connections_closed_total{reason=\"reset\"} 14\n"
"echod_connections_closed_total{reason=\"error\"} 15\n"
"echod_connections_closed_total{reason=\"shutdown\"} 16\n"
"echod_connections_closed_total{reason=\"proxy\"} 17\n"
"# HELP echod_received_bytes_total Bytes received from clients, counted as each connection closes.\n"
"# TYPE echod_received_bytes_total counter\n"
"echod_received_bytes_total 123456789012\n"
"# HELP echod_sent_bytes_total Bytes sent to clients, counted as each connection closes.\n"
"# TYPE echod_sent_bytes_total counter\n"
"echod_sent_bytes_total 123456789013\n"
"# HELP echod_per_ip_refusals_total Connections refused by a per-IP limit, by limit.\n"
"# TYPE echod_per_ip_refusals_total counter\n"
"echod_per_ip_refusals_total{limit=\"connections\"} 30\n"
"echod_per_ip_refusals_total{limit=\"rate\"} 31\n"
"# HELP echod_proxy_headers_total PROXY protocol headers accepted.\n"
"# TYPE echod_proxy_headers_total counter\n"
"echod_proxy_headers_total 50\n"
"# HELP echod_worker_restarts_total Workers replaced after they died, by cause.\n"
"# TYPE echod_worker_restarts_total counter\n"
"echod_worker_restarts_total{cause=\"exit\"} 20\n"
"echod_worker_restarts_total{cause=\"signal\"} 21\n"
"echod_worker_restarts_total{cause=\"hung\"} 22\n"
"echod_worker_restarts_total{cause=\"backoff\"} 23\n"
"# HELP echod_reloads_total Reloads (SIGHUP), by result.\n"
"# TYPE echod_reloads_total counter\n"
"echod_reloads_total{result=\"success\"} 5\n"
"echod_reloads_total{result=\"failure\"} 1\n"
"# HELP echod_last_reload_success Whether the last reload succeeded (1 before any).\n"
"# TYPE echod_last_reload_success gauge\n"
"echod_last_reload_success 0\n"
"# HELP echod_last_reload_timestamp_seconds When the last reload ended, in seconds since the Unix epoch (0 before any).\n"
"# TYPE echod_last_reload_timestamp_seconds gauge\n"
"echod_last_reload_timestamp_seconds 1796566000\n"
"# HELP echod_health_probes_total Health probes for the systemd watchdog, by result.\n"
"# TYPE echod_health_probes_total counter\n"
"echod_health_probes_total{result=\"ok\"} 40\n"
"echod_health_probes_total{result=\"failed\"} 41\n"
"echod_health_probes_total{result=\"skipped\"} 42\n";

START_TEST(render_expected)
{
	static char out[METRICS_TEXT_MAX];
	struct metrics_snap s;
	size_t n;

	sample_snap(&s);
	n = metrics_render(&s, "1.2.3-\"x\"", out, sizeof(out));
	ck_assert_str_eq(out, expected);
	ck_assert_uint_eq(n, strlen(expected));
}
END_TEST

/* Too small a buffer: cut, NUL-terminated, the full length returned. */
START_TEST(render_truncated)
{
	char out[100];
	struct metrics_snap s;
	size_t n;

	sample_snap(&s);
	memset(out, 'X', sizeof(out));
	n = metrics_render(&s, "1.2.3-\"x\"", out, sizeof(out));
	ck_assert_uint_eq(n, strlen(expected));
	ck_assert_uint_eq(strlen(out), sizeof(out) - 1);
	ck_assert_int_eq(strncmp(out, expected, sizeof(out) - 1), 0);
	ck_assert_uint_eq(metrics_render(&s, "1.2.3-\"x\"", NULL, 0), n);
}
END_TEST

/* The largest values and the longest model fit METRICS_TEXT_MAX. */
START_TEST(render_fits)
{
	static char out[METRICS_TEXT_MAX];
	char version[200];
	struct metrics_snap s;

	memset(&s, 0xff, sizeof(s));
	s.model = CONF_MODEL_PROCESS;
	memset(version, '"', sizeof(version) - 1);
	version[sizeof(version) - 1] = '\0';
	ck_assert_uint_lt(metrics_render(&s, version, out, sizeof(out)),
	    sizeof(out) / 2);
}
END_TEST

/* Every sample's name has its # HELP and # TYPE before it, once. */
START_TEST(render_families)
{
	static char out[METRICS_TEXT_MAX];
	char name[128], help[160], type[160];
	struct metrics_snap s;
	const char *line, *nl;
	size_t n;

	sample_snap(&s);
	metrics_render(&s, "v", out, sizeof(out));
	for (line = out; *line != '\0'; line = nl + 1) {
		nl = strchr(line, '\n');
		ck_assert_ptr_nonnull(nl);
		if (line[0] == '#')
			continue;
		n = strcspn(line, "{ ");
		ck_assert_uint_lt(n, sizeof(name));
		memcpy(name, line, n);
		name[n] = '\0';
		snprintf(help, sizeof(help), "# HELP %s ", name);
		snprintf(type, sizeof(type), "# TYPE %s ", name);
		ck_assert_msg(strstr(out, help) != NULL &&
		    strstr(out, help) < line && strstr(out, type) < line &&
		    strstr(strstr(out, help) + 1, help) == NULL, "%s", name);
		if (strstr(name, "_total") != NULL) {
			snprintf(type, sizeof(type), "# TYPE %s counter\n",
			    name);
			ck_assert_msg(strstr(out, type) != NULL, "%s", name);
		}
	}
}
END_TEST

/* The snapshot sums the slots, counts the live states, reads the header. */
START_TEST(snapshot_sums)
{
	struct scoreboard sb;
	struct metrics_snap s;

	ck_assert_int_eq(scoreboard_create(&sb, 8), 0);
	sb.hdr->slots_used = 4;
	sb.hdr->generation = 2;
	sb.hdr->restarts[SB_RESTART_SIGNAL] = 3;
	sb.slots[0].state = SB_READY;
	sb.slots[0].conns_open = 5;
	sb.slots[0].accepted = 10;
	sb.slots[0].closed[SB_CLOSE_CLIENT] = 5;
	sb.slots[1].state = SB_EMPTY; /* dead: its open count is stale */
	sb.slots[1].conns_open = 9;
	sb.slots[1].accepted = 7;
	sb.slots[1].bytes_in = 100;
	sb.slots[2].state = SB_DRAINING;
	sb.slots[2].conns_open = 1;
	sb.slots[2].refused[SB_REFUSE_RATE] = 2;
	sb.slots[3].state = SB_STARTING;
	sb.slots[5].accepted = 1000; /* past slots_used: never forked */
	metrics_snapshot(&sb, &s);
	ck_assert_uint_eq(s.workers[METRICS_READY], 1);
	ck_assert_uint_eq(s.workers[METRICS_DRAINING], 1);
	ck_assert_uint_eq(s.workers[METRICS_STARTING], 1);
	ck_assert_uint_eq(s.open, 6);
	ck_assert_uint_eq(s.accepted, 17);
	ck_assert_uint_eq(s.closed[SB_CLOSE_CLIENT], 5);
	ck_assert_uint_eq(s.bytes_in, 100);
	ck_assert_uint_eq(s.refused[SB_REFUSE_RATE], 2);
	ck_assert_uint_eq(s.generation, 2);
	ck_assert_uint_eq(s.restarts[SB_RESTART_SIGNAL], 3);
	ck_assert_uint_eq(s.last_reload_ok, 1);
	scoreboard_destroy(&sb);
}
END_TEST

/*
 * A new process in a slot keeps its counters and starts its own share
 * at zero; a publish adds only what changed.
 */
START_TEST(slot_counters_survive)
{
	struct sb_counts now, pub;
	struct scoreboard sb;
	struct sb_slot *s;

	ck_assert_int_eq(scoreboard_create(&sb, 2), 0);
	s = &sb.slots[1];
	scoreboard_begin_process(&sb, 1);
	ck_assert_uint_eq(sb.hdr->slots_used, 2);
	memset(&now, 0, sizeof(now));
	memset(&pub, 0, sizeof(pub));
	now.accepted = 3;
	now.served = 2;
	now.bytes_in = 10;
	now.closed[SB_CLOSE_LIMIT] = 1;
	sb_publish(s, &now, &pub);
	sb_publish(s, &now, &pub); /* nothing changed: nothing added */
	ck_assert_uint_eq(s->accepted, 3);
	ck_assert_uint_eq(s->closed[SB_CLOSE_LIMIT], 1);
	s->pid = 42;
	s->conns_open = 1;
	sb_add(&s->proxied, 4);
	scoreboard_begin_process(&sb, 1); /* the next process */
	ck_assert_int_eq(s->pid, 0);
	ck_assert_uint_eq(s->conns_open, 0);
	ck_assert_uint_eq(s->accepted, 3);
	ck_assert_uint_eq(s->conns_served, 2);
	ck_assert_uint_eq(sb_delta(&s->conns_served, &s->base_served), 0);
	ck_assert_uint_eq(sb_delta(&s->proxied, &s->base_proxied), 0);
	memset(&pub, 0, sizeof(pub));
	memset(&now, 0, sizeof(now));
	now.served = 5;
	now.bytes_in = 1;
	sb_publish(s, &now, &pub);
	ck_assert_uint_eq(s->conns_served, 7);
	ck_assert_uint_eq(sb_delta(&s->conns_served, &s->base_served), 5);
	ck_assert_uint_eq(sb_delta(&s->bytes_in, &s->base_in), 1);
	sb_count_reload(&sb, 0, 77);
	ck_assert_uint_eq(sb.hdr->reloads[SB_RELOAD_FAILURE], 1);
	ck_assert_uint_eq(sb.hdr->last_reload_ok, 0);
	ck_assert_uint_eq(sb.hdr->last_reload_time_s, 77);
	scoreboard_destroy(&sb);
}
END_TEST

START_TEST(restart_at)
{
	ck_assert_uint_eq(metricsd_restart_at(1000, 1100), 2000);
	ck_assert_uint_eq(metricsd_restart_at(1000, 2000), 2000);
	ck_assert_uint_eq(metricsd_restart_at(1000, 9000), 9000);
	ck_assert_uint_eq(metricsd_restart_at(0, 0), METRICSD_RESTART_MS);
}
END_TEST


/* metrics_listen overlapping the default listen "*:7007" is refused. */
START_TEST(conf_overlap)
{
	char dir[] = "/tmp/echod-metrics-XXXXXX", path[64], err[1024];
	struct conf c;
	int rc;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/echod.conf", dir);
	memset(&c, 0, sizeof(c));
	conf_defaults(&c);
	ck_assert_int_eq(cl_write_file(path, "workers = 1\n"
	    "metrics_listen = \"127.0.0.1:7007\"\n"), 0);
	rc = conf_load(&c, path, err, sizeof(err));
	ck_assert_int_eq(rc, -1);
	ck_assert_msg(strstr(err, "echod.conf:2: metrics_listen: "
	    "'127.0.0.1:7007' overlaps listen's '*:7007': a wildcard") != NULL,
	    "%s", err);
	ck_assert_int_eq(cl_write_file(path, "listen = \"127.0.0.1:9000\"\n"
	    "metrics_listen = \"127.0.0.1:9000\"\n"), 0);
	ck_assert_int_eq(conf_load(&c, path, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "metrics_listen: '127.0.0.1:9000' is in "
	    "listen too; allowed: \"\" (off)") != NULL, "%s", err);
	ck_assert_int_eq(cl_write_file(path, "listen = {}\nproxy_listen = "
	    "\"[::1]:9000\"\nmetrics_listen = \"[::]:9000\"\n"), 0);
	ck_assert_int_eq(conf_load(&c, path, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "echod.conf:3: metrics_listen: '[::]:9000' "
	    "overlaps proxy_listen's '[::1]:9000'") != NULL, "%s", err);
	ck_assert_int_eq(cl_write_file(path, "metrics_listen = \"x:1\"\n"), 0);
	ck_assert_int_eq(conf_load(&c, path, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "echod.conf:1: metrics_listen: ") != NULL,
	    "%s", err);
	ck_assert_int_eq(cl_write_file(path, "listen = \"127.0.0.1:9000\"\n"
	    "metrics_listen = \"127.0.0.1:9001\"\n"), 0);
	ck_assert_int_eq(conf_load(&c, path, err, sizeof(err)), 0);
	ck_assert_str_eq(c.metrics_listen, "127.0.0.1:9001");
	conf_free(&c);
	unlink(path);
	rmdir(dir);
}
END_TEST

/* ---- live ---- */

#define START_MS 8000
#define CONF_M "listen = \"127.0.0.1:0\"\nworkers = 2\nlog_level = info\n" \
	"metrics_listen = %s\n"
#define GET_METRICS "GET /metrics HTTP/1.1\r\nHost: echod\r\n\r\n"
#define RESP_MAX 32768
#define HTTP_BIG 9000

static struct echod_proc mp;

static void
live_setup(void)
{
	cl_proc_init(&mp);
}

static void
live_teardown(void)
{
	h_cleanup(&mp);
}

/*
 * The port of the last "metrics: /metrics on" line, once there are nth
 * of them and nserving metrics processes said they serve.
 */
static int
start_m(struct echod_proc *p, const char *model, int *port)
{
	char conf[512], full[600];

	snprintf(conf, sizeof(conf), CONF_M, "\"127.0.0.1:0\"");
	if (h_conf_model(full, sizeof(full), conf, model, 4) == NULL ||
	    h_start(p, full, NULL, START_MS) == -1)
		return -1;
	*port = cl_metrics_port(p, 1, 1);
	return *port > 0 ? 0 : -1;
}

/* GET /metrics: the body, or NULL if the answer was not 200. */
static const char *
scrape(int port, char *buf, size_t len)
{
	const char *body;

	if (cl_http(port, GET_METRICS, sizeof(GET_METRICS) - 1, buf, len,
	    5000) <= 0 || strncmp(buf, "HTTP/1.1 200 OK\r\n", 17) != 0 ||
	    (body = strstr(buf, "\r\n\r\n")) == NULL)
		return NULL;
	return body + 4;
}

/* One sample's value now; ULLONG_MAX if it cannot be had. */
static unsigned long long
value(int port, const char *sample)
{
	static char buf[RESP_MAX];
	unsigned long long v;
	const char *body = scrape(port, buf, sizeof(buf));

	return body != NULL && cl_metric(body, sample, &v) == 0 ? v :
	    ~0ULL;
}

/* Poll until sample is want (workers publish once per loop turn). */
static int
wait_value(int port, const char *sample, unsigned long long want,
    unsigned long long *got)
{
	long long deadline = h_now_ms() + 5000;
	int i;

	for (i = 0; i < 5000; i++) {
		if ((*got = value(port, sample)) == want)
			return 1;
		if (h_now_ms() >= deadline)
			break;
		h_poll_pause();
	}
	return 0;
}

#define EXPECT(t, port, sample, want)                                      \
	do {                                                               \
		unsigned long long got_;                                   \
		REQUIRE((t), wait_value((port), (sample), (want), &got_),  \
		    "%s is %llu, want %llu", (sample), got_,               \
		    (unsigned long long)(want));                           \
	} while (0)

#define MSG "hello, metrics" /* 14 bytes */

/* Echoes, a held connection, then its close: counted, in every model. */
START_TEST(counts_by_model)
{
	struct tres t = { 0, "" };
	char err[256];
	int port = -1, fd = -1, i;

	REQUIRE(&t, start_m(&mp, h_models[_i], &port) == 0, "start (%s)",
	    h_models[_i]);
	for (i = 0; i < 3; i++)
		REQUIRE(&t, cl_echo_new(mp.port, MSG, 3000, err, sizeof(err)),
		    "echo %d: %s", i, err);
	REQUIRE(&t, (fd = cl_connect(NULL, "127.0.0.1", mp.port)) != -1 &&
	    cl_echo(fd, "held", 3000), "held connection");
	EXPECT(&t, port, "echod_connections_accepted_total", 4);
	EXPECT(&t, port, "echod_connections_open", 1);
	EXPECT(&t, port, "echod_connections_closed_total{reason=\"client\"}",
	    3);
	EXPECT(&t, port, "echod_received_bytes_total", 3 * 14);
	EXPECT(&t, port, "echod_sent_bytes_total", 3 * 14);
	EXPECT(&t, port, "echod_workers{state=\"ready\"}", 2);
	EXPECT(&t, port, "echod_workers_target", 2);
	EXPECT(&t, port, "echod_generation", 1);
	cl_close_fds(&fd, 1);
	EXPECT(&t, port, "echod_connections_closed_total{reason=\"client\"}",
	    4);
	EXPECT(&t, port, "echod_connections_open", 0);
	EXPECT(&t, port, "echod_received_bytes_total", 3 * 14 + 4);
	EXPECT(&t, port, "echod_connections_closed_total{reason=\"error\"}",
	    0);
	REQUIRE_STOPPED(&t, &mp, 5000);
out:
	cl_close_fds(&fd, 1);
	cl_conclude(&t, &mp);
}
END_TEST

/*
 * Every way a connection ends, counted under its reason, in every model:
 * idle (idle_timeout 1), lifetime (max_connection_time 2, kept busy), a
 * per-IP refusal (max_connections_per_ip 2), a reset by the client.
 */
START_TEST(reasons_by_model)
{
	struct tres t = { 0, "" };
	char conf[512], full[600];
	int port = -1, a = -1, b = -1, c = -1, d = -1, i, r = 1;
	long long deadline;

	snprintf(conf, sizeof(conf), "listen = \"127.0.0.1:0\"\nworkers = %d\n"
	    "metrics_listen = \"127.0.0.1:0\"\nidle_timeout = 1\n"
	    "max_connection_time = 2\nmax_connections_per_ip = 2\n",
	    h_model_workers(h_models[_i], 2, 4));
	REQUIRE(&t, h_conf_model(full, sizeof(full), conf, h_models[_i], 4) &&
	    h_start(&mp, full, NULL, START_MS) == 0 &&
	    (port = cl_metrics_port(&mp, 1, 1)) > 0, "start (%s)", h_models[_i]);
	REQUIRE(&t, (a = cl_connect(NULL, "127.0.0.1", mp.port)) != -1 &&
	    cl_echo(a, "idle", 3000), "a");
	REQUIRE(&t, (b = cl_connect(NULL, "127.0.0.1", mp.port)) != -1 &&
	    cl_echo(b, "busy", 3000), "b");
	REQUIRE(&t, (c = cl_connect(NULL, "127.0.0.1", mp.port)) != -1 &&
	    cl_refused(c, 3000), "c: not refused");
	EXPECT(&t, port, "echod_per_ip_refusals_total{limit=\"connections\"}",
	    1);
	EXPECT(&t, port, "echod_connections_closed_total{reason=\"limit\"}",
	    1);
	/* b stays busy while a idles out. */
	deadline = h_now_ms() + 5000;
	for (i = 0; i < 100000 && h_now_ms() < deadline; i++) {
		h_poll_pause();
		REQUIRE(&t, cl_echo(b, "busy", 3000), "b: echo %d", i);
		if (value(port, "echod_connections_closed_total"
		    "{reason=\"idle_timeout\"}") == 1)
			break;
	}
	REQUIRE(&t, cl_closed(a, 3000), "a not closed");
	/* Released from its client's count too (a child's, once reaped). */
	EXPECT(&t, port, "echod_connections_open", 1);
	REQUIRE(&t, (d = cl_connect(NULL, "127.0.0.1", mp.port)) != -1 &&
	    cl_echo(d, "reset me", 3000), "d");
	cl_reset(d);
	d = -1;
	EXPECT(&t, port, "echod_connections_closed_total{reason=\"reset\"}",
	    1);
	for (i = 0; i < 100000 && h_now_ms() < deadline && r == 1; i++) {
		h_poll_pause();
		r = cl_reply(b, "busy", 3000);
	}
	REQUIRE(&t, r == 0, "b not closed at max_connection_time");
	EXPECT(&t, port, "echod_connections_closed_total"
	    "{reason=\"lifetime\"}", 1);
	EXPECT(&t, port, "echod_connections_closed_total"
	    "{reason=\"idle_timeout\"}", 1);
	EXPECT(&t, port, "echod_connections_accepted_total", 4);
	EXPECT(&t, port, "echod_connections_open", 0);
	EXPECT(&t, port, "echod_connections_closed_total{reason=\"client\"}",
	    0);
	EXPECT(&t, port, "echod_connections_closed_total{reason=\"error\"}",
	    0);
	REQUIRE_STOPPED(&t, &mp, 5000);
out:
	cl_close_fds(&a, 1);
	cl_close_fds(&b, 1);
	cl_close_fds(&c, 1);
	cl_close_fds(&d, 1);
	cl_conclude(&t, &mp);
}
END_TEST

/* Behind a balancer: a header accepted, a bad one closed, both counted. */
START_TEST(proxy_counts)
{
	struct tres t = { 0, "" };
	char conf[512], got[8];
	const char *hdr = "PROXY TCP4 203.0.113.9 127.0.0.1 40112 7008\r\nhello";
	int port = -1, pport, fd = -1;

	REQUIRE(&t, (pport = cl_free_port()) > 0, "no free port");
	snprintf(conf, sizeof(conf), CONF_M "proxy_listen = \"127.0.0.1:%d\"\n"
	    "proxy_trusted = \"127.0.0.1\"\n", "\"127.0.0.1:0\"", pport);
	REQUIRE(&t, h_start(&mp, conf, NULL, START_MS) == 0 &&
	    (port = cl_metrics_port(&mp, 1, 1)) > 0, "start");
	REQUIRE(&t, (fd = cl_connect(NULL, "127.0.0.1", pport)) != -1 &&
	    h_write_all(fd, hdr, strlen(hdr)) == 0 &&
	    h_read_exact(fd, got, 5, 3000) == 5 && memcmp(got, "HELLO", 5) == 0,
	    "no echo behind the header");
	cl_close_fds(&fd, 1);
	REQUIRE(&t, (fd = cl_connect(NULL, "127.0.0.1", pport)) != -1 &&
	    h_write_all(fd, "GARBAGE\r\n", 9) == 0 && cl_closed(fd, 3000),
	    "a bad header not closed");
	EXPECT(&t, port, "echod_proxy_headers_total", 1);
	EXPECT(&t, port, "echod_connections_closed_total{reason=\"proxy\"}",
	    1);
	EXPECT(&t, port, "echod_connections_closed_total{reason=\"client\"}",
	    1);
	EXPECT(&t, port, "echod_connections_accepted_total", 2);
	EXPECT(&t, port, "echod_received_bytes_total", 5);
	REQUIRE_STOPPED(&t, &mp, 5000);
out:
	cl_close_fds(&fd, 1);
	cl_conclude(&t, &mp);
}
END_TEST

/*
 * Why workers were replaced: a stopped one (SIGSTOP) is hung once
 * worker_timeout passes; one told to stop (SIGTERM) behind the master's
 * back exits, and is replaced as any that exits.
 */
START_TEST(restart_causes)
{
	struct tres t = { 0, "" };
	char conf[512];
	long long t0;
	pid_t w, w1;
	int port = -1, i;

	snprintf(conf, sizeof(conf), CONF_M "worker_timeout = 1\n",
	    "\"127.0.0.1:0\"");
	t0 = h_now_ms();
	REQUIRE(&t, h_start(&mp, conf, NULL, START_MS) == 0 &&
	    (port = cl_metrics_port(&mp, 1, 1)) > 0, "start");
	REQUIRE(&t, (w = h_worker_pid(mp.pid, 0)) > 0 &&
	    kill(w, SIGSTOP) == 0, "stop worker 0");
	REQUIRE(&t, (w1 = h_wait_worker(mp.pid, 0, w, 8000)) > 0,
	    "the hung worker not replaced");
	EXPECT(&t, port, "echod_worker_restarts_total{cause=\"hung\"}", 1);
	/* Old enough (the policy's 1 s) not to count as an early death. */
	for (i = 0; i < 100000 && h_now_ms() - t0 < 1500; i++)
		h_poll_pause();
	REQUIRE(&t, (w = h_worker_pid(mp.pid, 1)) > 0 &&
	    kill(w, SIGTERM) == 0, "SIGTERM worker 1");
	REQUIRE(&t, h_wait_worker(mp.pid, 1, w, 8000) > 0,
	    "worker 1 not replaced");
	EXPECT(&t, port, "echod_worker_restarts_total{cause=\"exit\"}", 1);
	EXPECT(&t, port, "echod_worker_restarts_total{cause=\"signal\"}", 0);
	EXPECT(&t, port, "echod_worker_restarts_total{cause=\"backoff\"}", 0);
	EXPECT(&t, port, "echod_workers{state=\"ready\"}", 2);
	REQUIRE_STOPPED(&t, &mp, 5000);
out:
	cl_conclude(&t, &mp);
}
END_TEST

static pid_t
metrics_pid(pid_t master)
{
	pid_t pids[64];
	char title[64];
	int i, n = h_children(master, pids, 64);

	for (i = 0; i < n; i++)
		if (pf_read_pid(pids[i], "cmdline", title, sizeof(title)) > 0 &&
		    strcmp(title, "echod: metrics") == 0)
			return pids[i];
	return -1;
}

static int
reload(struct echod_proc *p, const char *conf, int nth)
{
	char want[64];

	if (cl_write_file(p->conf_path, "%s", conf) == -1 ||
	    kill(p->pid, SIGHUP) == -1)
		return 0;
	snprintf(want, sizeof(want), "ready: generation %d,", nth + 1);
	return cl_log_wait(p, want, 1, 10000);
}

/*
 * Counters are the master's life: a killed worker, a reload, the metrics
 * process killed, the endpoint moved by a reload: they only grow.
 */
START_TEST(survive_kill_and_reload)
{
	struct tres t = { 0, "" };
	char conf[512], err[256], want[128];
	unsigned long long acc, restarts = 0, row[3];
	char line[1024];
	int fd = -1, slot = -1;
	long long deadline;
	pid_t w, md, md2;
	int port = -1, i;

	REQUIRE(&t, start_m(&mp, NULL, &port) == 0, "start");
	for (i = 0; i < 3; i++)
		REQUIRE(&t, cl_echo_new(mp.port, MSG, 3000, err, sizeof(err)),
		    "echo %d: %s", i, err);
	/* The fourth tells which worker served: that one is killed. */
	REQUIRE(&t, (fd = cl_connect(NULL, "127.0.0.1", mp.port)) != -1 &&
	    cl_echo(fd, MSG, 3000) && (w = cl_owner(mp.pid, 2, mp.port, fd,
	    &slot)) > 0, "no owner for the fourth");
	cl_close_fds(&fd, 1);
	EXPECT(&t, port, "echod_connections_accepted_total", 4);
	EXPECT(&t, port, "echod_connections_open", 0);
	REQUIRE(&t, kill(w, SIGKILL) == 0, "kill worker");
	REQUIRE(&t, (w = h_wait_worker(mp.pid, (unsigned)slot, w, 5000)) > 0,
	    "not replaced");
	/* SIGUSR1's table shows the new process's own counts: none yet. */
	snprintf(want, sizeof(want), "%4d %-8d ", slot, (int)w);
	REQUIRE(&t, kill(mp.pid, SIGUSR1) == 0 &&
	    cl_log_wait(&mp, want, 1, 3000) &&
	    cl_log_line(&mp, want, line, sizeof(line)), "no '%s'", want);
	REQUIRE(&t, sscanf(strstr(line, want), "%*u %*d %*u %*s %*u %*u "
	    "%llu %llu %llu", &row[0], &row[1], &row[2]) == 3 &&
	    row[0] == 0 && row[1] == 0 && row[2] == 0, "SIGUSR1: '%s'", line);
	/* Killed: by a signal, or early (younger than 1 s, serving nobody). */
	deadline = h_now_ms() + 5000;
	for (i = 0; i < 5000; i++) {
		restarts = value(port, "echod_worker_restarts_total"
		    "{cause=\"signal\"}") + value(port,
		    "echod_worker_restarts_total{cause=\"backoff\"}");
		if (restarts == 1 || h_now_ms() >= deadline)
			break;
		h_poll_pause();
	}
	REQUIRE(&t, restarts == 1, "restarts by signal and back-off: %llu",
	    restarts);
	EXPECT(&t, port, "echod_connections_accepted_total", 4);
	EXPECT(&t, port, "echod_connections_closed_total{reason=\"client\"}",
	    4);
	EXPECT(&t, port, "echod_received_bytes_total", 4 * 14);

	/* A reload with the same file: a new generation, the same counts. */
	snprintf(conf, sizeof(conf), CONF_M, "\"127.0.0.1:0\"");
	REQUIRE(&t, reload(&mp, conf, 1), "reload 1");
	EXPECT(&t, port, "echod_generation", 2);
	EXPECT(&t, port, "echod_reloads_total{result=\"success\"}", 1);
	EXPECT(&t, port, "echod_last_reload_success", 1);
	REQUIRE(&t, value(port, "echod_last_reload_timestamp_seconds") >
	    1000000000ULL, "no reload time");
	REQUIRE(&t, cl_echo_new(mp.port, MSG, 3000, err, sizeof(err)),
	    "echo after reload: %s", err);
	EXPECT(&t, port, "echod_connections_accepted_total", 5);
	EXPECT(&t, port, "echod_sent_bytes_total", 5 * 14);

	/* The metrics process killed: another, the same counts. */
	REQUIRE(&t, (md = metrics_pid(mp.pid)) > 0, "no metrics process");
	REQUIRE(&t, kill(md, SIGKILL) == 0, "kill metrics");
	snprintf(want, sizeof(want), "metrics process (pid %d) killed by "
	    "signal 9", (int)md);
	REQUIRE(&t, cl_log_wait(&mp, want, 1, 5000), "no '%s'", want);
	REQUIRE(&t, cl_log_wait(&mp, "serving /metrics on", 2, 5000),
	    "not restarted");
	REQUIRE(&t, (md2 = metrics_pid(mp.pid)) > 0 && md2 != md,
	    "metrics pid %d after %d", (int)md2, (int)md);
	EXPECT(&t, port, "echod_connections_accepted_total", 5);
	EXPECT(&t, port, "echod_worker_restarts_total{cause=\"exit\"}", 0);

	/* A broken file: a failed reload, counted; then off, then back. */
	REQUIRE(&t, cl_write_file(mp.conf_path, "workers = nope\n") == 0 &&
	    kill(mp.pid, SIGHUP) == 0, "broken reload");
	EXPECT(&t, port, "echod_reloads_total{result=\"failure\"}", 1);
	EXPECT(&t, port, "echod_last_reload_success", 0);
	snprintf(conf, sizeof(conf), CONF_M, "\"\"");
	REQUIRE(&t, reload(&mp, conf, 2), "reload 3 (metrics off)");
	REQUIRE(&t, cl_log_wait(&mp, "metrics: no longer on", 1, 5000),
	    "not off");
	REQUIRE(&t, cl_wait_gone(NULL, &md2, 1, 5000) == 0, "metrics "
	    "process still there");
	REQUIRE(&t, cl_port_refused(port), "port %d still open", port);
	snprintf(conf, sizeof(conf), CONF_M, "\"127.0.0.1:0\"");
	REQUIRE(&t, reload(&mp, conf, 3), "reload 4 (metrics on)");
	REQUIRE(&t, (port = cl_metrics_port(&mp, 2, 3)) > 0, "no new port");
	EXPECT(&t, port, "echod_reloads_total{result=\"success\"}", 3);
	EXPECT(&t, port, "echod_reloads_total{result=\"failure\"}", 1);
	EXPECT(&t, port, "echod_connections_accepted_total", 5);
	REQUIRE((&t), (acc = value(port, "echod_connections_closed_total"
	    "{reason=\"client\"}")) == 5, "closed %llu", acc);
	REQUIRE_STOPPED(&t, &mp, 5000);
	REQUIRE(&t, cl_log_count(&mp, "metrics process (pid") >= 2,
	    "the stop did not reap the metrics process");
out:
	cl_close_fds(&fd, 1);
	cl_conclude(&t, &mp);
}
END_TEST

/* Send req; the response must start with want (and have every rule). */
static int
answer_is(int port, const char *req, size_t len, const char *want,
    char *resp, size_t rlen)
{
	if (cl_http(port, req, len, resp, rlen, 5000) <= 0)
		return 0;
	return strncmp(resp, want, strlen(want)) == 0 &&
	    strstr(resp, "\r\nConnection: close\r\n") != NULL &&
	    strstr(resp, "\r\nContent-Length: ") != NULL;
}

#define ANSWER(t, port, req, want)                                         \
	REQUIRE((t), answer_is((port), (req), sizeof(req) - 1, (want),     \
	    resp, sizeof(resp)), "%s: got '%.200s'", (req), resp)

START_TEST(http_rules)
{
	static char resp[RESP_MAX], big[HTTP_BIG];
	struct tres t = { 0, "" };
	const char *body;
	unsigned long long len;
	int port = -1, fds[METRICSD_CLIENTS] = { -1, -1, -1, -1 }, fd = -1;
	int i;

	REQUIRE(&t, start_m(&mp, NULL, &port) == 0, "start");
	ANSWER(&t, port, "GET /metrics?x=1 HTTP/1.1\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; "
	    "charset=utf-8\r\n");
	ANSWER(&t, port, "GET / HTTP/1.0\r\n\r\n", "HTTP/1.1 200 OK\r\n"
	    "Content-Type: text/html");
	REQUIRE(&t, strstr(resp, "<a href=\"/metrics\">") != NULL, "no link");
	ANSWER(&t, port, "HEAD /metrics HTTP/1.1\r\n\r\n",
	    "HTTP/1.1 200 OK\r\n");
	body = strstr(resp, "\r\n\r\n");
	REQUIRE(&t, body != NULL && body[4] == '\0' &&
	    sscanf(strstr(resp, "Content-Length: ") + 16, "%llu", &len) == 1 &&
	    len > 1000, "HEAD: '%s'", resp);
	ANSWER(&t, port, "GET /metrics/x HTTP/1.1\r\n\r\n",
	    "HTTP/1.1 404 Not Found\r\n");
	ANSWER(&t, port, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
	    "HTTP/1.1 405 Method Not Allowed\r\n");
	REQUIRE(&t, strstr(resp, "\r\nAllow: GET, HEAD\r\n") != NULL,
	    "405 without Allow");
	ANSWER(&t, port, "DELETE / HTTP/1.1\r\n\r\n", "HTTP/1.1 405 ");
	ANSWER(&t, port, "hello\n", "HTTP/1.1 400 Bad Request\r\n");
	ANSWER(&t, port, "GET /metrics HTTP/1.1\r\nbad header\r\n\r\n",
	    "HTTP/1.1 400 ");
	/* No client byte comes back: not echoed, not quoted. */
	ANSWER(&t, port, "GET /hello-echo HTTP/1.1\r\nX: hello-echo\r\n\r\n",
	    "HTTP/1.1 404 ");
	REQUIRE(&t, strcasestr(resp, "hello-echo") == NULL, "echoed: %s",
	    resp);
	memset(big, 'a', sizeof(big));
	memcpy(big, "GET /metrics HTTP/1.1\r\nX: ", 26);
	REQUIRE(&t, answer_is(port, big, sizeof(big), "HTTP/1.1 431 ", resp,
	    sizeof(resp)), "9000 bytes: '%.200s'", resp);

	/* Four scrapers that say nothing hold the places: a fifth gets 503. */
	for (i = 0; i < METRICSD_CLIENTS; i++)
		REQUIRE(&t, (fds[i] = cl_connect(NULL, "127.0.0.1", port)) !=
		    -1, "connect %d", i);
	REQUIRE(&t, (fd = cl_connect(NULL, "127.0.0.1", port)) != -1,
	    "connect 5");
	REQUIRE(&t, cl_read_all(fd, resp, sizeof(resp), 3000) > 0 &&
	    strncmp(resp, "HTTP/1.1 503 Service Unavailable\r\n", 34) == 0,
	    "fifth: '%.200s'", resp);
	cl_close_fds(&fd, 1);
	cl_close_fds(fds, METRICSD_CLIENTS);
	EXPECT(&t, port, "echod_connections_accepted_total", 0);
	REQUIRE_STOPPED(&t, &mp, 5000);
out:
	cl_close_fds(&fd, 1);
	cl_close_fds(fds, METRICSD_CLIENTS);
	cl_conclude(&t, &mp);
}
END_TEST

/*
 * A scraper that connects and says nothing, one that stops half-way, and
 * two hundred scrapes: closed on the 5 s deadline, and none of it costs
 * the master CPU time (it never sees them).
 */
START_TEST(silent_scraper_costs_master_nothing)
{
	static char resp[RESP_MAX];
	struct tres t = { 0, "" };
	long long c0, c1, t0, took;
	int port = -1, fd = -1, half = -1, i;

	REQUIRE(&t, start_m(&mp, NULL, &port) == 0, "start");
	c0 = cl_pid_cpu_ms(mp.pid);
	t0 = h_now_ms();
	REQUIRE(&t, (fd = cl_connect(NULL, "127.0.0.1", port)) != -1 &&
	    (half = cl_connect(NULL, "127.0.0.1", port)) != -1, "connect");
	REQUIRE(&t, h_write_all(half, "GET /metrics HTTP/1.1\r\n", 23) == 0,
	    "write");
	REQUIRE(&t, cl_closed(fd, 9000), "the silent one not closed");
	took = h_now_ms() - t0;
	REQUIRE(&t, took >= METRICSD_DEADLINE_MS - 500 && took < 8000,
	    "closed after %lld ms", took);
	REQUIRE(&t, cl_closed(half, 3000), "the half request not closed");
	for (i = 0; i < 200; i++)
		REQUIRE(&t, scrape(port, resp, sizeof(resp)) != NULL,
		    "scrape %d", i);
	c1 = cl_pid_cpu_ms(mp.pid);
	REQUIRE(&t, c1 - c0 <= 30, "the master used %lld ms of CPU",
	    c1 - c0);
	fprintf(stderr, "metrics: master CPU %lld ms over a 5 s silent "
	    "scraper and 200 scrapes\n", c1 - c0);
	REQUIRE_STOPPED(&t, &mp, 5000);
out:
	cl_close_fds(&fd, 1);
	cl_close_fds(&half, 1);
	cl_conclude(&t, &mp);
}
END_TEST

Suite *
metrics_suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc;

	tc = h_case(s, "pure", 0, H_TESTS(label_names, render_expected,
	    render_truncated, render_fits, render_families, snapshot_sums,
	    slot_counters_survive, restart_at, conf_overlap));
	tcase_add_loop_test(tc, close_reason_table, 0, H_NELEM(reasons));
	tcase_add_loop_test(tc, restart_cause_table, 0, H_NELEM(causes));
	tcase_add_loop_test(tc, escape_table, 0, H_NELEM(escapes));
	tc = h_case_fixed(s, "live", 60, live_setup, live_teardown,
	    H_TESTS(survive_kill_and_reload, http_rules,
	    silent_scraper_costs_master_nothing, proxy_counts,
	    restart_causes));
	tcase_add_loop_test(tc, counts_by_model, 0, H_NMODELS);
	tcase_add_loop_test(tc, reasons_by_model, 0, H_NMODELS);
	return s;
}
