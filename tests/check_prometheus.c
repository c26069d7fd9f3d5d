/*
 * check_prometheus: echod's /metrics (issue 13) as Prometheus sees it.
 *
 * - unit: the test's own pure helpers as tables (prom.c's HTTP response
 *   parser, JSON sample reader, URL encoder and configuration; the
 *   exposition-text reader below), and promtool's verdict on a good and
 *   a bad text, without a daemon;
 * - promtool: `promtool check metrics` passes on echod's /metrics after
 *   traffic, a reload and a killed worker, under the events and the
 *   thread-pool models; every decided family is there with its HELP and
 *   TYPE, and every decided label value has its series;
 * - scrape: a real Prometheus (prom.h) scrapes echod every second; the
 *   test holds N connections open, makes M echoes, and asks Prometheus'
 *   API for up, echod_connections_open and the accepted and client-closed
 *   counters, once it has a scrape taken after the traffic;
 * - abuse: the metrics port under bad requests (a table: methods, paths,
 *   garbage, a 100 KB header), a flood of 200 connections (4 served at a
 *   time, the rest 503 or closed), a scraper sending a byte a second,
 *   scrapers that never read; after all of it /metrics answers, the
 *   metrics process is the same one, echod still echoes and the master
 *   spent no more than a few ms of CPU.
 *
 * promtool and scrape need Debian's prometheus package (sh .ci/deps.sh
 * installs it) and say SKIPPED without it; unit and abuse always run.
 * The metrics port is one cl_free_port() picked; Prometheus gets its own
 * port and storage, and is stopped by pid (prom.c): never a system one.
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clients.h"
#include "harness.h"
#include "procfs.h"
#include "prom.h"
#include "suites.h"

#define START_MS 10000
#define REPLY_MS 3000
#define HTTP_MS 5000
#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define BODY_MAX (256 * 1024)

/* ---- pure: the exposition text ---- */

/*
 * The value of series (a name, with its labels as echod writes them:
 * `name{label="value"}`) in an exposition text: 1 with *v, 0 if no line
 * starts with it, -1 if its value does not parse.
 */
static int
expo_value(const char *text, const char *series, double *v)
{
	size_t n = strlen(series);
	const char *s = text, *num;
	char *end;

	while (s != NULL && *s != '\0') {
		if (strncmp(s, series, n) == 0 && s[n] == ' ') {
			num = s + n + 1;
			*v = strtod(num, &end);
			return end != num && (*end == '\n' || *end == '\0' ||
			    *end == ' ') ? 1 : -1;
		}
		if ((s = strchr(s, '\n')) != NULL)
			s++;
	}
	return 0;
}

/* Does the text have "# HELP name ..." and "# TYPE name type" lines? */
static int
expo_has_family(const char *text, const char *name, const char *type)
{
	char help[128], typ[128];
	const char *s;

	snprintf(help, sizeof(help), "# HELP %s ", name);
	snprintf(typ, sizeof(typ), "# TYPE %s %s\n", name, type);
	s = strstr(text, help);
	if (s == NULL || (s != text && s[-1] != '\n'))
		return 0;
	s = strstr(text, typ);
	return s != NULL && (s == text || s[-1] == '\n');
}

/* The decided families (COMMON.md, issue 13). */
static const struct family {
	const char *name, *type;
} families[] = {
	{ "echod_build_info", "gauge" },
	{ "process_start_time_seconds", "gauge" },
	{ "echod_generation", "gauge" },
	{ "echod_workers", "gauge" },
	{ "echod_workers_target", "gauge" },
	{ "echod_connections_open", "gauge" },
	{ "echod_connections_accepted_total", "counter" },
	{ "echod_connections_closed_total", "counter" },
	{ "echod_received_bytes_total", "counter" },
	{ "echod_sent_bytes_total", "counter" },
	{ "echod_worker_restarts_total", "counter" },
	{ "echod_reloads_total", "counter" },
	{ "echod_last_reload_success", "gauge" },
	{ "echod_last_reload_timestamp_seconds", "gauge" },
	{ "echod_per_ip_refusals_total", "counter" },
	{ "echod_health_probes_total", "counter" },
	{ "echod_proxy_headers_total", "counter" },
};

/* Every decided series, labelled ones with each of their label values. */
static const char *const series[] = {
	"process_start_time_seconds",
	"echod_generation",
	"echod_workers{state=\"starting\"}",
	"echod_workers{state=\"ready\"}",
	"echod_workers{state=\"draining\"}",
	"echod_workers_target",
	"echod_connections_open",
	"echod_connections_accepted_total",
	"echod_connections_closed_total{reason=\"client\"}",
	"echod_connections_closed_total{reason=\"idle_timeout\"}",
	"echod_connections_closed_total{reason=\"lifetime\"}",
	"echod_connections_closed_total{reason=\"limit\"}",
	"echod_connections_closed_total{reason=\"reset\"}",
	"echod_connections_closed_total{reason=\"error\"}",
	"echod_connections_closed_total{reason=\"shutdown\"}",
	"echod_connections_closed_total{reason=\"proxy\"}",
	"echod_received_bytes_total",
	"echod_sent_bytes_total",
	"echod_worker_restarts_total{cause=\"exit\"}",
	"echod_worker_restarts_total{cause=\"signal\"}",
	"echod_worker_restarts_total{cause=\"hung\"}",
	"echod_worker_restarts_total{cause=\"backoff\"}",
	"echod_reloads_total{result=\"success\"}",
	"echod_reloads_total{result=\"failure\"}",
	"echod_last_reload_success",
	"echod_last_reload_timestamp_seconds",
	"echod_per_ip_refusals_total{limit=\"connections\"}",
	"echod_per_ip_refusals_total{limit=\"rate\"}",
	"echod_health_probes_total{result=\"ok\"}",
	"echod_health_probes_total{result=\"failed\"}",
	"echod_health_probes_total{result=\"skipped\"}",
	"echod_proxy_headers_total",
};

/* The sum of the worker restarts over their causes, or -1. */
static double
expo_restarts(const char *text)
{
	static const char *const causes[] = { "exit", "signal", "hung",
		"backoff" };
	char name[96];
	double v, sum = 0;
	int i;

	for (i = 0; i < H_NELEM(causes); i++) {
		snprintf(name, sizeof(name),
		    "echod_worker_restarts_total{cause=\"%s\"}", causes[i]);
		if (expo_value(text, name, &v) != 1)
			return -1;
		sum += v;
	}
	return sum;
}

/* ---- unit: the pure helpers ---- */

static const char expo_sample[] =
    "# HELP echod_connections_open Connections open now.\n"
    "# TYPE echod_connections_open gauge\n"
    "echod_connections_open 3\n"
    "# HELP echod_connections_closed_total Connections closed, by reason.\n"
    "# TYPE echod_connections_closed_total counter\n"
    "echod_connections_closed_total{reason=\"client\"} 12\n"
    "echod_connections_closed_total{reason=\"idle_timeout\"} 0\n"
    "echod_bad x\n"
    "echod_connections_accepted_total 1.5e+06";

static const struct expo_case {
	const char *series;
	int want;
	double v;
} expo_cases[] = {
	{ "echod_connections_open", 1, 3 },
	{ "echod_connections_closed_total{reason=\"client\"}", 1, 12 },
	{ "echod_connections_closed_total{reason=\"idle_timeout\"}", 1, 0 },
	{ "echod_connections_closed_total", 0, 0 }, /* only labelled ones */
	{ "echod_connections", 0, 0 },              /* a prefix */
	{ "Connections", 0, 0 },                    /* inside a HELP */
	{ "echod_connections_accepted_total", 1, 1.5e6 }, /* no newline */
	{ "echod_bad", -1, 0 },
	{ "echod_connections_closed_total{reason=\"lifetime\"}", 0, 0 },
};

START_TEST(unit_expo)
{
	const struct expo_case *c = &expo_cases[_i];
	double v = -1;
	int k = expo_value(expo_sample, c->series, &v);

	ck_assert_msg(k == c->want, "%s: %d, want %d", c->series, k, c->want);
	if (k == 1)
		ck_assert_msg(v == c->v, "%s: %g, want %g", c->series, v, c->v);
}
END_TEST

START_TEST(unit_expo_family)
{
	ck_assert(expo_has_family(expo_sample, "echod_connections_open",
	    "gauge"));
	ck_assert(expo_has_family(expo_sample,
	    "echod_connections_closed_total", "counter"));
	ck_assert(!expo_has_family(expo_sample, "echod_connections_open",
	    "counter"));
	ck_assert(!expo_has_family(expo_sample,
	    "echod_connections_accepted_total", "counter"));
	ck_assert(!expo_has_family(expo_sample, "echod_connections",
	    "gauge"));
	ck_assert_int_eq(H_NELEM(families), 17);
	ck_assert_int_eq(H_NELEM(series), 32);
}
END_TEST

static const struct http_case {
	const char *name, *raw;
	int head, want, status;
	long clen;
	const char *body, *ctype, *allow;
	int close;
} http_cases[] = {
	{ "length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
	    "Content-Type: text/plain; version=0.0.4\r\nConnection: close\r\n"
	    "\r\nhello", 0, 0, 200, 5, "hello", "text/plain; version=0.0.4",
	    "", 1 },
	{ "chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n", 0, 0, 200, -1,
	    "hello world", "", "", 0 },
	{ "chunked hex size", "HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked"
	    "\r\n\r\na\r\n0123456789\r\n0\r\n\r\n", 0, 0, 200, -1,
	    "0123456789", "", "", 0 },
	{ "to EOF", "HTTP/1.0 404 Not Found\r\n\r\nnope", 0, 0, 404, -1,
	    "nope", "", "", 0 },
	{ "no reason", "HTTP/1.1 503\r\nContent-Length: 0\r\n\r\n", 0, 0,
	    503, 0, "", "", "", 0 },
	{ "allow, any case", "HTTP/1.1 405 Method Not Allowed\r\n"
	    "allow:  GET, HEAD \r\ncontent-length: 2\r\nCONNECTION: Close\r\n"
	    "\r\nno", 0, 0, 405, 2, "no", "", "GET, HEAD", 1 },
	{ "head", "HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n", 1, 0, 200,
	    42, "", "", "", 0 },
	{ "head with a body", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"
	    "ok", 1, -1, 0, 0, NULL, NULL, NULL, 0 },
	{ "short body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 0,
	    -1, 0, 0, NULL, NULL, NULL, 0 },
	{ "long body", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nabcd", 0,
	    -1, 0, 0, NULL, NULL, NULL, 0 },
	{ "no end of head", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n", 0,
	    -1, 0, 0, NULL, NULL, NULL, 0 },
	{ "empty", "", 0, -1, 0, 0, NULL, NULL, NULL, 0 },
	{ "not http", "SSH-2.0-OpenSSH_9.2\r\n\r\n", 0, -1, 0, 0, NULL, NULL,
	    NULL, 0 },
	{ "bad status", "HTTP/1.1 2x0 OK\r\n\r\n", 0, -1, 0, 0, NULL, NULL,
	    NULL, 0 },
	{ "negative length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
	    0, -1, 0, 0, NULL, NULL, NULL, 0 },
	{ "length with junk", "HTTP/1.1 200 OK\r\nContent-Length: 1a\r\n\r\n"
	    "a", 0, -1, 0, 0, NULL, NULL, NULL, 0 },
	{ "bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked"
	    "\r\n\r\nzz\r\n", 0, -1, 0, 0, NULL, NULL, NULL, 0 },
	{ "truncated chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked"
	    "\r\n\r\n5\r\nhel", 0, -1, 0, 0, NULL, NULL, NULL, 0 },
	{ "no last chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked"
	    "\r\n\r\n2\r\nhi\r\n", 0, -1, 0, 0, NULL, NULL, NULL, 0 },
};

START_TEST(unit_http)
{
	const struct http_case *c = &http_cases[_i];
	struct prom_resp r;
	char buf[512];
	size_t n = strlen(c->raw);
	int k;

	memcpy(buf, c->raw, n + 1);
	k = prom_http_parse(buf, n, c->head, &r);
	ck_assert_msg(k == c->want, "%s: %d, want %d", c->name, k, c->want);
	if (k == -1)
		return;
	ck_assert_int_eq(r.status, c->status);
	ck_assert_int_eq(r.content_length, c->clen);
	ck_assert_str_eq(r.body, c->body);
	ck_assert_uint_eq(r.body_len, strlen(c->body));
	ck_assert_str_eq(r.content_type, c->ctype);
	ck_assert_str_eq(r.allow, c->allow);
	ck_assert_int_eq(r.close, c->close);
}
END_TEST

#define VEC(res) "{\"status\":\"success\",\"data\":{\"resultType\":" \
	"\"vector\",\"result\":[" res "]}}"
#define UP "{\"metric\":{\"__name__\":\"up\",\"instance\":" \
	"\"127.0.0.1:9707\",\"job\":\"echod\"},\"value\":"

static const struct json_case {
	const char *name, *json;
	int want;
	double v;
} json_cases[] = {
	{ "one sample", VEC(UP "[1733500000.123,\"1\"]}"), 1, 1 },
	{ "two samples: the first", VEC(UP "[1.5,\"7\"]}," UP "[1.5,\"8\"]}"),
	    1, 7 },
	{ "integer timestamp", VEC(UP "[1733500000,\"12345678\"]}"), 1,
	    12345678 },
	{ "float value", VEC(UP "[1,\"0.25\"]}"), 1, 0.25 },
	{ "exponent", VEC(UP "[1,\"1.5e+06\"]}"), 1, 1.5e6 },
	{ "empty", VEC(""), 0, 0 },
	{ "empty with blanks", "{\"status\":\"success\",\"data\":{"
	    "\"resultType\":\"vector\",\"result\":[ ]}}", 0, 0 },
	{ "blanks", "{ \"status\" : \"success\", \"data\" : { \"resultType\""
	    " : \"vector\", \"result\" : [ { \"metric\" : {}, \"value\" : "
	    "[ 1.5 , \"7\" ] } ] } }", 1, 7 },
	{ "scalar", "{\"status\":\"success\",\"data\":{\"resultType\":"
	    "\"scalar\",\"result\":[1733500000.1,\"42\"]}}", 1, 42 },
	{ "error", "{\"status\":\"error\",\"errorType\":\"bad_data\","
	    "\"error\":\"parse error\"}", -1, 0 },
	{ "matrix", "{\"status\":\"success\",\"data\":{\"resultType\":"
	    "\"matrix\",\"result\":[]}}", -1, 0 },
	{ "bad value", VEC(UP "[1,\"x\"]}"), -1, 0 },
	{ "empty value", VEC(UP "[1,\"\"]}"), -1, 0 },
	{ "no timestamp", VEC(UP "[\"1\"]}"), -1, 0 },
	{ "not json", "<html>", -1, 0 },
};

START_TEST(unit_json)
{
	const struct json_case *c = &json_cases[_i];
	double v = -1;
	int k = prom_json_sample(c->json, &v);

	ck_assert_msg(k == c->want, "%s: %d, want %d", c->name, k, c->want);
	if (k == 1)
		ck_assert_msg(v == c->v, "%s: %g, want %g", c->name, v, c->v);
}
END_TEST

START_TEST(unit_json_special)
{
	double v = 0;

	ck_assert_int_eq(prom_json_sample(VEC(UP "[1,\"NaN\"]}"), &v), 1);
	ck_assert(isnan(v));
	ck_assert_int_eq(prom_json_sample(VEC(UP "[1,\"+Inf\"]}"), &v), 1);
	ck_assert(isinf(v) && v > 0);
	ck_assert_int_eq(prom_json_sample(VEC(UP "[1,\"-Inf\"]}"), &v), 1);
	ck_assert(isinf(v) && v < 0);
}
END_TEST

START_TEST(unit_urlencode_config)
{
	char out[64], conf[512], tiny[16];

	ck_assert_int_eq(prom_urlencode("up{job=\"echod\"}", out,
	    sizeof(out)), 0);
	ck_assert_str_eq(out, "up%7Bjob%3D%22echod%22%7D");
	ck_assert_int_eq(prom_urlencode("rate(a_b.c~[5m]) / 2", out,
	    sizeof(out)), 0);
	ck_assert_str_eq(out, "rate%28a_b.c~%5B5m%5D%29%20%2F%202");
	ck_assert_int_eq(prom_urlencode("", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "");
	ck_assert_int_eq(prom_urlencode("abcdefghijklmnop", tiny,
	    sizeof(tiny)), -1);
	ck_assert_int_eq(prom_urlencode("{{{{{", tiny, sizeof(tiny)), 0);
	ck_assert_int_eq(prom_urlencode("{{{{{{", tiny, sizeof(tiny)), -1);
	ck_assert_int_eq(prom_urlencode("abcdefghijklmno", tiny,
	    sizeof(tiny)), 0);

	ck_assert_int_gt(prom_config(conf, sizeof(conf), 9707), 0);
	ck_assert_ptr_nonnull(strstr(conf, "  scrape_interval: 1s\n"));
	ck_assert_ptr_nonnull(strstr(conf, "  - job_name: echod\n"));
	ck_assert_ptr_nonnull(strstr(conf,
	    "      - targets: [\"127.0.0.1:9707\"]\n"));
	ck_assert_int_eq(prom_config(tiny, sizeof(tiny), 9707), -1);
}
END_TEST

/* Are prometheus and promtool here?  If not, say the test is skipped. */
static int
prom_or_skip(const char *test)
{
	char why[160];

	if (prom_available(why, sizeof(why)))
		return 1;
	printf("prometheus: %s SKIPPED: %s\n", test, why);
	fflush(stdout);
	return 0;
}

/* prom_check_metrics tells a good text from a bad one, and says why. */
START_TEST(unit_promtool)
{
	static const char good[] = "# HELP a_total Things.\n"
	    "# TYPE a_total counter\na_total{k=\"v\"} 1\n";
	static const char bad[] = "# TYPE a counter\na 1\n";
	static const char broken[] = "a{k=\"v} 1\n";
	char out[1024];

	if (!prom_or_skip("unit_promtool"))
		return;
	ck_assert_int_eq(prom_check_metrics(good, sizeof(good) - 1, out,
	    sizeof(out)), 1);
	ck_assert_int_eq(prom_check_metrics(bad, sizeof(bad) - 1, out,
	    sizeof(out)), 0);
	ck_assert_msg(strstr(out, "_total") != NULL, "promtool said: %s", out);
	ck_assert_int_eq(prom_check_metrics(broken, sizeof(broken) - 1, out,
	    sizeof(out)), 0);
}
END_TEST

/* ---- against the daemon ---- */

/* echod's configuration with metrics_listen on 127.0.0.1:mport. */
static const char *
metrics_conf(char *buf, size_t len, int mport, const char *model,
    int workers)
{
	char base[256];

	snprintf(base, sizeof(base), "listen = { \"127.0.0.1:0\" }\n"
	    "metrics_listen = \"127.0.0.1:%d\"\nworkers = %d\n"
	    "log_level = info\n", mport, workers);
	return h_conf_model(buf, len, base, model, 4);
}

/* The child of master titled "echod: metrics", or -1. */
static pid_t
metrics_pid(pid_t master)
{
	pid_t pids[64];
	char title[64];
	int i, n = h_children(master, pids, H_NELEM(pids));

	for (i = 0; i < n; i++)
		if (pf_read_pid(pids[i], "cmdline", title, sizeof(title)) > 0 &&
		    strcmp(title, "echod: metrics") == 0)
			return pids[i];
	return -1;
}

/* GET /metrics once: 0 with a 200 in r (the body in buf), or -1. */
static int
scrape(int mport, char *buf, size_t len, struct prom_resp *r, char *err,
    size_t errlen)
{
	if (prom_http_get(mport, "GET", "/metrics", buf, len, r, HTTP_MS, err,
	    errlen) == -1)
		return -1;
	if (r->status != 200) {
		snprintf(err, errlen, "GET /metrics: HTTP %d", r->status);
		return -1;
	}
	return 0;
}

/*
 * Scrape until series is at least min (min < 0: until a 200), within
 * timeout_ms; 0 with the last body in buf, or -1 with why in err.
 */
static int
wait_series(int mport, const char *name, double min, char *buf, size_t len,
    int timeout_ms, char *err, size_t errlen)
{
	long long deadline = h_now_ms() + timeout_ms;
	struct prom_resp r;
	double v = -1;
	int k = 0;

	do {
		if (scrape(mport, buf, len, &r, err, errlen) == 0) {
			if (min < 0)
				return 0;
			if ((k = expo_value(r.body, name, &v)) == 1 &&
			    v >= min)
				return 0;
			snprintf(err, errlen, "%s is %s%g, want at least %g",
			    name, k == 1 ? "" : "absent, ", v, min);
		}
		poll(NULL, 0, 50);
	} while (h_now_ms() < deadline);
	return -1;
}

/* A failure of what /metrics serves, or NULL. */
static const char *
exposition_problem(const struct prom_resp *r, const char *model,
    char *why, size_t len)
{
	char want[64], line[256];
	const char *s;
	double v;
	int i;

	if (strcmp(r->content_type, CONTENT_TYPE) != 0 || !r->close ||
	    r->content_length != (long)r->body_len) {
		snprintf(why, len, "Content-Type '%s', Connection: close %d, "
		    "Content-Length %ld for %zu bytes", r->content_type,
		    r->close, r->content_length, r->body_len);
		return why;
	}
	for (i = 0; i < H_NELEM(families); i++)
		if (!expo_has_family(r->body, families[i].name,
		    families[i].type)) {
			snprintf(why, len, "no HELP and TYPE %s for %s",
			    families[i].type, families[i].name);
			return why;
		}
	for (i = 0; i < H_NELEM(series); i++)
		if (expo_value(r->body, series[i], &v) != 1) {
			snprintf(why, len, "no series %s", series[i]);
			return why;
		}
	snprintf(want, sizeof(want), "model=\"%s\"", model);
	if ((s = strstr(r->body, "\nechod_build_info{")) == NULL ||
	    sscanf(s + 1, "%255[^\n]", line) != 1 ||
	    strstr(line, want) == NULL || strstr(line, "version=\"") == NULL ||
	    strcmp(line + strlen(line) - 2, " 1") != 0) {
		snprintf(why, len, "no echod_build_info{version=...,%s} 1",
		    want);
		return why;
	}
	return NULL;
}

/* Wait for a metrics process other than old; it, or -1. */
static pid_t
wait_metrics_pid(pid_t master, pid_t old, int timeout_ms)
{
	long long deadline = h_now_ms() + timeout_ms;
	pid_t pid;

	do {
		if ((pid = metrics_pid(master)) > 0 && pid != old)
			return pid;
		h_poll_pause();
	} while (h_now_ms() < deadline);
	return -1;
}

/*
 * The metrics process killed, and its replacement killed at once: the
 * master restarts it each time, the second time not before a second has
 * passed since the first restart (at most once a second), and the new
 * one serves.  Its pid, or -1 (a failure recorded in t).
 */
static pid_t
metrics_killed_twice(struct tres *t, struct echod_proc *p, int mport,
    pid_t mp)
{
	char buf[8192], err[256];
	struct prom_resp r;
	long long t1, t2;
	pid_t m1, m2;

	kill(mp, SIGKILL);
	REQUIRE(t, (m1 = wait_metrics_pid(p->pid, mp, START_MS)) > 0,
	    "the killed metrics process %d was not replaced", (int)mp);
	t1 = h_now_ms();
	kill(m1, SIGKILL);
	REQUIRE(t, (m2 = wait_metrics_pid(p->pid, m1, START_MS)) > 0,
	    "the killed metrics process %d was not replaced", (int)m1);
	t2 = h_now_ms();
	REQUIRE(t, t2 - t1 >= 800, "metrics process %d died at once and was "
	    "replaced after %lld ms: want a second at least", (int)m1,
	    t2 - t1);
	REQUIRE(t, wait_series(mport, NULL, -1, buf, sizeof(buf), START_MS,
	    err, sizeof(err)) == 0 && scrape(mport, buf, sizeof(buf), &r, err,
	    sizeof(err)) == 0, "the new metrics process does not serve: %s",
	    err);
	REQUIRE(t, cl_log_count(p, "metrics process") >= 2,
	    "the master said nothing of the killed metrics processes");
	return m2;
out:
	return -1;
}

static const char *const churn_models[] = { "events", "thread-pool" };

/*
 * Traffic, a killed worker and a reload: 10 echoes, worker 0 killed
 * and replaced, the same file reloaded (counted a success on /metrics).
 */
static int
churn(struct tres *t, struct echod_proc *p, int mport, const char *conf,
    char *body)
{
	char err[512];
	pid_t w0;
	int i;

	for (i = 0; i < 10; i++)
		REQUIRE(t, cl_echo_new(p->port, "churn", REPLY_MS, err,
		    sizeof(err)), "echo %d: %s", i, err);
	REQUIRE(t, (w0 = h_worker_pid(p->pid, 0)) > 0, "no worker 0");
	kill(w0, SIGKILL);
	REQUIRE(t, h_wait_worker(p->pid, 0, w0, START_MS) > 0,
	    "worker 0 not replaced");
	REQUIRE(t, cl_write_conf(p, conf) == 0, "rewrite: %s",
	    strerror(errno));
	kill(p->pid, SIGHUP);
	REQUIRE(t, wait_series(mport, "echod_reloads_total{result=\"success\"}",
	    1, body, BODY_MAX, START_MS, err, sizeof(err)) == 0,
	    "no successful reload counted: %s", err);
	return 1;
out:
	return 0;
}

/* What /metrics must say after churn with one connection held; NULL if
 * it does. */
static const char *
churned_problem(const struct prom_resp *r, const char *model, char *why,
    size_t len)
{
	double v = -1, now = prom_unix_now();

	if (exposition_problem(r, model, why, len) != NULL)
		return why;
	if (expo_restarts(r->body) < 1)
		snprintf(why, len, "the killed worker is not among "
		    "echod_worker_restarts_total");
	else if (expo_value(r->body, "echod_connections_open", &v) != 1 ||
	    v < 1)
		snprintf(why, len, "echod_connections_open %g with one held",
		    v);
	else if (expo_value(r->body, "echod_last_reload_success", &v) != 1 ||
	    v != 1)
		snprintf(why, len, "echod_last_reload_success %g", v);
	else if (expo_value(r->body, "echod_last_reload_timestamp_seconds",
	    &v) != 1 || v < now - 600 || v > now + 1)
		snprintf(why, len, "echod_last_reload_timestamp_seconds %.0f, "
		    "now %.0f", v, now);
	else
		return NULL;
	return why;
}

/*
 * (a) After traffic, a reload and a killed worker, /metrics passes
 * `promtool check metrics`, has every decided family and series, and
 * counts what happened.  The metrics process is sandboxed as a worker
 * is, is replaced when killed (not within a second when killed again at
 * once) and goes with the master.
 */
START_TEST(promtool_after_churn)
{
	const char *m = churn_models[_i];
	struct echod_proc p;
	struct tres t = { 0, "" };
	struct prom_resp r;
	char conf[512], err[512], out[4096], *body = NULL;
	const char *why;
	pid_t w0, mp;
	int mport, held = -1, k;

	cl_proc_init(&p);
	if (!prom_or_skip("promtool_after_churn"))
		return;
	printf("prometheus: promtool check metrics under %s\n", m);
	fflush(stdout);
	REQUIRE(&t, (body = malloc(BODY_MAX)) != NULL, "malloc");
	REQUIRE(&t, (mport = cl_free_port()) != -1, "no free port");
	REQUIRE(&t, metrics_conf(conf, sizeof(conf), mport, m, 2) != NULL,
	    "configuration too long");
	REQUIRE(&t, h_start(&p, conf, NULL, START_MS) == 0, "start failed");
	REQUIRE(&t, wait_series(mport, NULL, -1, body, BODY_MAX, START_MS,
	    err, sizeof(err)) == 0, "/metrics never answered: %s", err);
	REQUIRE(&t, (mp = metrics_pid(p.pid)) > 0, "no 'echod: metrics'");
	REQUIRE(&t, (w0 = h_worker_pid(p.pid, 0)) > 0, "no worker 0");
	REQUIRE(&t, pf_status_num(mp, "Seccomp") ==
	    pf_status_num(w0, "Seccomp"), "the metrics process has Seccomp "
	    "mode %ld, worker 0 %ld", pf_status_num(mp, "Seccomp"),
	    pf_status_num(w0, "Seccomp"));
	if (!churn(&t, &p, mport, conf, body))
		goto out;
	REQUIRE(&t, (held = h_connect(p.port, 0)) != -1, "connect: %s",
	    strerror(errno));
	REQUIRE(&t, cl_echo(held, "held", REPLY_MS), "held: not echoed");
	REQUIRE(&t, wait_series(mport, "echod_connections_accepted_total", 11,
	    body, BODY_MAX, START_MS, err, sizeof(err)) == 0, "%s", err);
	REQUIRE(&t, scrape(mport, body, BODY_MAX, &r, err, sizeof(err)) == 0,
	    "%s", err);
	REQUIRE(&t, (why = churned_problem(&r, m, err, sizeof(err))) == NULL,
	    "%s; /metrics:\n%.3000s", why, r.body);
	k = prom_check_metrics(r.body, r.body_len, out, sizeof(out));
	REQUIRE(&t, k == 1, "promtool check metrics: %s:\n%s\n/metrics:\n"
	    "%.3000s", k == -1 ? "could not run" : "failed", out, r.body);
	if ((mp = metrics_killed_twice(&t, &p, mport, mp)) == -1)
		goto out;
	REQUIRE(&t, wait_series(mport, "echod_connections_accepted_total", 11,
	    body, BODY_MAX, START_MS, err, sizeof(err)) == 0,
	    "after the metrics process was replaced: %s", err);
	cl_close_fds(&held, 1);
	REQUIRE_STOPPED(&t, &p, START_MS);
	REQUIRE(&t, !h_alive(mp), "the metrics process %d outlived the "
	    "master", (int)mp);
out:
	free(body);
	cl_conclude_fds(&t, &p, &held, 1);
}
END_TEST

#define SCRAPE_HELD 5 /* N: connections held open */
#define SCRAPE_ECHO 7 /* M: connect, echo, close */

/* The figures Prometheus has for what the scrape test did. */
struct seen {
	double ts, up, open, accepted, client_closed;
};

/* Ask Prometheus for them; 0, or -1 with why in err. */
static int
ask(const struct prom *pr, struct seen *s, char *err, size_t errlen)
{
	static const char *const q[] = {
		"timestamp(echod_connections_open{job=\"echod\"})",
		"up{job=\"echod\"}",
		"echod_connections_open{job=\"echod\"}",
		"echod_connections_accepted_total{job=\"echod\"}",
		"echod_connections_closed_total{job=\"echod\",reason=\"client\"}",
	};
	double *dst[] = { &s->ts, &s->up, &s->open, &s->accepted,
		&s->client_closed };
	int i, k;

	for (i = 0; i < H_NELEM(q); i++) {
		if ((k = prom_query(pr, q[i], dst[i], err, errlen)) == -1)
			return -1;
		if (k == 0) {
			snprintf(err, errlen, "no sample yet for %s", q[i]);
			return -1;
		}
	}
	return 0;
}

/* The counters whose resets Prometheus must never see. */
static const char *const monotonic[] = {
	"echod_connections_accepted_total",
	"echod_connections_closed_total",
	"echod_received_bytes_total",
	"echod_sent_bytes_total",
};

/*
 * Both workers killed and a reload, with Prometheus watching: once it
 * has scraped after them (the generation went up), it has seen the
 * restarts and the reload counted, and no counter went down:
 * resets() over the test's whole time is 0 for each.
 */
static int
churn_seen(struct tres *t, struct echod_proc *p, const struct prom *pr,
    double accepted)
{
	char q[256], err[512] = "";
	double gen0 = 0, gen = 0, v = -1, restarts = -1, reloads = -1;
	long long deadline;
	pid_t w;
	int i, k;

	REQUIRE(t, prom_query(pr, "echod_generation{job=\"echod\"}", &gen0,
	    err, sizeof(err)) == 1, "echod_generation: %s", err);
	for (i = 0; i < 2; i++) {
		REQUIRE(t, (w = h_worker_pid(p->pid, (unsigned)i)) > 0,
		    "no worker %d", i);
		kill(w, SIGKILL);
		REQUIRE(t, h_wait_worker(p->pid, (unsigned)i, w, START_MS) > 0,
		    "worker %d not replaced", i);
	}
	kill(p->pid, SIGHUP);
	deadline = h_now_ms() + 20000;
	do {
		poll(NULL, 0, 200);
		if (prom_query(pr, "echod_generation{job=\"echod\"}", &gen, err,
		    sizeof(err)) != 1 ||
		    prom_query(pr, "sum(echod_worker_restarts_total{job="
		    "\"echod\"})", &restarts, err, sizeof(err)) != 1 ||
		    prom_query(pr, "echod_reloads_total{job=\"echod\","
		    "result=\"success\"}", &reloads, err, sizeof(err)) != 1)
			continue;
	} while ((gen <= gen0 || restarts < 2 || reloads < 1) &&
	    h_now_ms() < deadline);
	REQUIRE(t, gen > gen0 && restarts >= 2 && reloads >= 1, "after two "
	    "kills and a reload Prometheus has generation %g (was %g), %g "
	    "restarts, %g reloads; %s", gen, gen0, restarts, reloads, err);
	for (i = 0; i < H_NELEM(monotonic); i++) {
		snprintf(q, sizeof(q), "sum(resets(%s{job=\"echod\"}[5m]))",
		    monotonic[i]);
		REQUIRE(t, (k = prom_query(pr, q, &v, err, sizeof(err))) == 1 &&
		    v == 0, "%s: %s %g", q, k == 1 ? "" : err, v);
	}
	REQUIRE(t, prom_query(pr, "echod_connections_accepted_total{job="
	    "\"echod\"}", &v, err, sizeof(err)) == 1 && v >= accepted,
	    "echod_connections_accepted_total went from %g to %g", accepted,
	    v);
	printf("prometheus: two workers killed and a reload: %g restarts, "
	    "generation %g to %g, no counter reset\n", restarts, gen0, gen);
	return 1;
out:
	return 0;
}

/*
 * (b) A real Prometheus scrapes echod every second: after N connections
 * held open and M echoes, a scrape taken after the traffic shows
 * up 1, N open, N + M accepted and M closed by their client.
 */
START_TEST(prometheus_scrapes)
{
	struct echod_proc p;
	struct prom pr;
	struct tres t = { 0, "" };
	struct seen s = { 0, 0, 0, 0, 0 };
	int held[SCRAPE_HELD];
	char conf[512], err[512] = "", body[65536];
	double after;
	long long deadline;
	int mport, i, ok = 0;

	cl_proc_init(&p);
	prom_init(&pr);
	for (i = 0; i < SCRAPE_HELD; i++)
		held[i] = -1;
	if (!prom_or_skip("prometheus_scrapes"))
		return;
	REQUIRE(&t, (mport = cl_free_port()) != -1, "no free port");
	REQUIRE(&t, metrics_conf(conf, sizeof(conf), mport, NULL, 2) != NULL,
	    "configuration too long");
	REQUIRE(&t, h_start(&p, conf, NULL, START_MS) == 0, "start failed");
	REQUIRE(&t, wait_series(mport, NULL, -1, body, sizeof(body), START_MS,
	    err, sizeof(err)) == 0, "/metrics never answered: %s", err);
	REQUIRE(&t, prom_start(&pr, mport, 20000, err, sizeof(err)) == 0,
	    "%s", err);
	for (i = 0; i < SCRAPE_HELD; i++) {
		REQUIRE(&t, (held[i] = h_connect(p.port, 0)) != -1,
		    "connect: %s", strerror(errno));
		REQUIRE(&t, cl_echo(held[i], "held open", REPLY_MS),
		    "held %d: not echoed", i);
	}
	for (i = 0; i < SCRAPE_ECHO; i++)
		REQUIRE(&t, cl_echo_new(p.port, "scraped", REPLY_MS, err,
		    sizeof(err)), "echo %d: %s", i, err);
	after = prom_unix_now();
	/* A scrape started after the traffic, once echod has counted the
	 * closes; every query of a round is answered from the same data
	 * unless a scrape lands between them: the next round settles it. */
	deadline = h_now_ms() + 20000;
	do {
		if (ask(&pr, &s, err, sizeof(err)) == 0 && s.ts > after &&
		    s.up == 1 && s.open == SCRAPE_HELD &&
		    s.accepted == SCRAPE_HELD + SCRAPE_ECHO &&
		    s.client_closed == SCRAPE_ECHO)
			ok = 1;
		else
			poll(NULL, 0, 200);
	} while (!ok && h_now_ms() < deadline);
	REQUIRE(&t, ok, "Prometheus has up %g, echod_connections_open %g "
	    "(want %d), accepted %g (want %d), closed by the client %g (want "
	    "%d), scraped at %.3f, the traffic ended at %.3f; %s; its log: %s",
	    s.up, s.open, SCRAPE_HELD, s.accepted, SCRAPE_HELD + SCRAPE_ECHO,
	    s.client_closed, SCRAPE_ECHO, s.ts, after, err,
	    prom_log_tail(&pr));
	printf("prometheus: scraped: up %g, open %g, accepted %g, closed by "
	    "the client %g, %.1f s after the traffic\n", s.up, s.open,
	    s.accepted, s.client_closed, prom_unix_now() - after);
	if (!churn_seen(&t, &p, &pr, s.accepted))
		goto out;
	cl_close_fds(held, SCRAPE_HELD);
	prom_stop(&pr, 10000);
	REQUIRE_STOPPED(&t, &p, START_MS);
out:
	prom_stop(&pr, 10000);
	cl_conclude_fds(&t, &p, held, SCRAPE_HELD);
}
END_TEST

/* ---- (c) the metrics port abused ---- */

#define R(s) s, sizeof(s) - 1
#define HOST "Host: 127.0.0.1\r\n"

/* A request and what it must get. */
static const struct req_case {
	const char *name;
	const char *req;
	size_t len;
	int head, status;
	const char *ctype; /* NULL: any */
	const char *body;  /* a part of the body it must have, or NULL */
} req_cases[] = {
	{ "GET /metrics", R("GET /metrics HTTP/1.1\r\n" HOST "\r\n"), 0, 200,
	    CONTENT_TYPE, "# TYPE echod_connections_open gauge\n" },
	{ "a query string", R("GET /metrics?name[]=up&x=%41 HTTP/1.1\r\n"
	    HOST "\r\n"), 0, 200, CONTENT_TYPE, "echod_build_info{" },
	{ "HEAD /metrics", R("HEAD /metrics HTTP/1.1\r\n" HOST "\r\n"), 1,
	    200, CONTENT_TYPE, NULL },
	{ "GET /", R("GET / HTTP/1.1\r\n" HOST "\r\n"), 0, 200, "text/html",
	    "/metrics" },
	{ "HEAD /", R("HEAD / HTTP/1.1\r\n" HOST "\r\n"), 1, 200, NULL, NULL },
	{ "POST with a body", R("POST /metrics HTTP/1.1\r\n" HOST
	    "Content-Length: 11\r\n\r\nhello there"), 0, 405, NULL, NULL },
	{ "PUT /", R("PUT / HTTP/1.1\r\n" HOST "\r\n"), 0, 405, NULL, NULL },
	{ "DELETE /metrics", R("DELETE /metrics HTTP/1.1\r\n" HOST "\r\n"), 0,
	    405, NULL, NULL },
	{ "OPTIONS /metrics", R("OPTIONS /metrics HTTP/1.1\r\n" HOST "\r\n"),
	    0, 405, NULL, NULL },
	{ "another path", R("GET /index.html HTTP/1.1\r\n" HOST "\r\n"), 0,
	    404, NULL, NULL },
	{ "a path below", R("GET /metrics/x HTTP/1.1\r\n" HOST "\r\n"), 0, 404,
	    NULL, NULL },
	{ "dot dot", R("GET /../../etc/passwd HTTP/1.1\r\n" HOST "\r\n"), 0,
	    404, NULL, NULL },
	{ "POST elsewhere", R("POST /api HTTP/1.1\r\n" HOST "\r\n"), 0, 404,
	    NULL, NULL },
	{ "no version", R("GET /metrics\r\n\r\n"), 0, 400, NULL, NULL },
	{ "a header without a colon", R("GET /metrics HTTP/1.1\r\n" HOST
	    "no colon here\r\n\r\n"), 0, 400, NULL, NULL },
	{ "plain text", R("hello world, echo me\r\n\r\n"), 0, 400, NULL,
	    NULL },
	{ "binary garbage", R("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"
	    "\x00\xff\r\n\r\n"), 0, 400, NULL, NULL },
	{ "a NUL in a header", R("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\0x"
	    "\r\n\r\n"), 0, 400, NULL, NULL },
	{ "pipelined: one answer", R("GET /metrics HTTP/1.1\r\n" HOST "\r\n"
	    "GET / HTTP/1.1\r\n" HOST "\r\n"), 0, 200, CONTENT_TYPE, NULL },
	{ "GET with a body", R("GET /metrics HTTP/1.1\r\n" HOST
	    "Content-Length: 5\r\n\r\nhello"), 0, 200, CONTENT_TYPE, NULL },
};

/* A head of len bytes: a request line, then X-Pad headers to fill it. */
static size_t
big_head(char *buf, size_t len, int one_header)
{
	size_t n = (size_t)snprintf(buf, len, "GET /metrics HTTP/1.1\r\n"
	    HOST "X-Pad: ");

	while (n + 4 < len) {
		if (!one_header && n % 100 == 0 && n + 10 < len) {
			memcpy(buf + n, "\r\nX-P: ", 7);
			n += 7;
		} else
			buf[n++] = 'a';
	}
	memcpy(buf + n, "\r\n\r\n", 4);
	return n + 4;
}

/* The generic rules of every answer: Connection: close, a length. */
static int
answer_ok(struct tres *t, const char *name, const struct prom_resp *r)
{
	REQUIRE(t, r->close && r->content_length >= 0, "%s: HTTP %d without "
	    "Connection: close (%d) or Content-Length (%ld)", name, r->status,
	    r->close, r->content_length);
	REQUIRE(t, strcasestr(r->body, "HELLO") == NULL &&
	    strstr(r->body, "ECHO ME") == NULL, "%s: client bytes echoed: %s",
	    name, r->body);
	return 1;
out:
	return 0;
}

/* One request case against the metrics port. */
static int
request_case(struct tres *t, int mport, const struct req_case *c,
    char *buf, size_t len)
{
	struct prom_resp r;
	char err[512];

	REQUIRE(t, prom_http_raw(mport, c->req, c->len, c->head, buf, len,
	    &r, HTTP_MS, err, sizeof(err)) == 0, "%s: %s", c->name, err);
	REQUIRE(t, r.status == c->status, "%s: HTTP %d, want %d: %.300s",
	    c->name, r.status, c->status, r.body);
	if (!answer_ok(t, c->name, &r))
		goto out;
	REQUIRE(t, c->ctype == NULL ||
	    strncmp(r.content_type, c->ctype, strlen(c->ctype)) == 0,
	    "%s: Content-Type '%s', want '%s'", c->name, r.content_type,
	    c->ctype);
	REQUIRE(t, c->body == NULL || strstr(r.body, c->body) != NULL,
	    "%s: no '%s' in the body: %.300s", c->name, c->body, r.body);
	REQUIRE(t, !c->head || r.content_length > 0, "%s: Content-Length %ld",
	    c->name, r.content_length);
	REQUIRE(t, c->status != 405 || strcmp(r.allow, "GET, HEAD") == 0,
	    "%s: Allow '%s'", c->name, r.allow);
	return 1;
out:
	return 0;
}

/* Every request case, then heads of 8 KiB (200) and over (431). */
static int
bad_requests(struct tres *t, int mport, char *buf, size_t len)
{
	static const struct {
		size_t len;
		int one, status;
	} heads[] = {
		{ 8192, 1, 200 },       /* 8 KiB: the most allowed */
		{ 8193, 1, 431 },       /* a byte more */
		{ 9000, 0, 431 },       /* in many headers */
		{ 100 * 1024, 1, 431 }, /* 100 KB in one */
	};
	static char big[100 * 1024];
	struct prom_resp r;
	char err[512];
	size_t n;
	int i;

	for (i = 0; i < H_NELEM(req_cases); i++)
		if (!request_case(t, mport, &req_cases[i], buf, len))
			goto out;
	for (i = 0; i < H_NELEM(heads); i++) {
		n = big_head(big, heads[i].len, heads[i].one);
		REQUIRE(t, prom_http_raw(mport, big, n, 0, buf, len, &r,
		    HTTP_MS, err, sizeof(err)) == 0, "a %zu-byte head: %s", n,
		    err);
		REQUIRE(t, r.status == heads[i].status, "a %zu-byte head: HTTP "
		    "%d, want %d", n, r.status, heads[i].status);
		if (!answer_ok(t, "a big head", &r))
			goto out;
	}
	return 1;
out:
	return 0;
}

#define FLOOD 200
#define FLOOD_SLOTS 4

/* One flood connection: what came back, when it ended. */
struct fconn {
	int fd;
	size_t got;
	char buf[512];
	long long ended_ms; /* since the flood began; -1 while open */
	int connected;
	int err; /* errno of the end, 0 for EOF */
};

/* A non-blocking connect to 127.0.0.1:port; -1 on failure. */
static int
connect_nb(int port)
{
	struct sockaddr_in sin;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);

	if (fd == -1)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)port);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 &&
	    errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Read what c's socket has; mark it ended at EOF or an error. */
static void
fconn_read(struct fconn *c, long long now)
{
	char junk[512];
	ssize_t n;
	size_t room = sizeof(c->buf) - 1 - c->got;

	n = recv(c->fd, room > 0 ? c->buf + c->got : junk,
	    room > 0 ? room : sizeof(junk), MSG_DONTWAIT);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0) {
		if (room > 0)
			c->got += (size_t)n;
		c->connected = 1;
		return;
	}
	c->ended_ms = now;
	c->err = n == -1 ? errno : 0;
	close(c->fd);
	c->fd = -1;
}

/* Poll the open flood connections once (at most 100 ms). */
static int
flood_poll(struct fconn *fc, int n, long long t0)
{
	struct pollfd pfd[FLOOD];
	int idx[FLOOD], k = 0, i, open = 0;

	for (i = 0; i < n; i++) {
		if (fc[i].fd == -1)
			continue;
		pfd[k].fd = fc[i].fd;
		pfd[k].events = POLLIN | (fc[i].connected ? 0 : POLLOUT);
		idx[k++] = i;
	}
	if (k == 0 || poll(pfd, (nfds_t)k, 100) <= 0)
		return k;
	for (i = 0; i < k; i++) {
		if ((pfd[i].revents & POLLOUT) && !fc[idx[i]].connected) {
			/* A scraper's first byte, as any client sends: a
			 * handshake the kernel completed with a SYN cookie
			 * while the accept queue was full is lost without
			 * one (nothing is resent), and with it, retried. */
			fc[idx[i]].connected = 1;
			(void)send(fc[idx[i]].fd, "G", 1, MSG_NOSIGNAL |
			    MSG_DONTWAIT);
		}
		if (pfd[i].revents & (POLLIN | POLLERR | POLLHUP))
			fconn_read(&fc[idx[i]], h_now_ms() - t0);
		open += fc[idx[i]].fd != -1;
	}
	return open;
}

/* How many ended without a byte; -1 if one sent something not a 503. */
static int
flood_silent(struct fconn *fc, int n, int *answered, char *why,
    size_t whylen)
{
	struct prom_resp r;
	int i, silent = 0;

	*answered = 0;
	for (i = 0; i < n; i++) {
		if (fc[i].got == 0) {
			if (silent++ < 8)
				fprintf(stderr, "flood %d: ended at %lld ms "
				    "without a byte: %s, %sconnected\n", i,
				    fc[i].ended_ms, fc[i].err ?
				    strerror(fc[i].err) : "EOF",
				    fc[i].connected ? "" : "not ");
			continue;
		}
		if (prom_http_parse(fc[i].buf, fc[i].got, 0, &r) == -1 ||
		    r.status != 503 || !r.close || r.content_length < 0) {
			snprintf(why, whylen, "flood connection %d got: %.200s",
			    i, fc[i].buf);
			return -1;
		}
		(*answered)++;
	}
	return silent;
}

/*
 * 200 connections at once, each sending one byte of a request and no
 * more: 4 are served (they hold their slots until the 5 s head
 * deadline), every other one gets a 503 or is closed; meanwhile echod
 * echoes and a fifth scraper gets a 503.  200 at once overflow the
 * listener's accept queue (64): the kernel answers with SYN cookies and
 * drops what does not fit, TCP resends, so the last ones may be served
 * a few seconds late.
 */
static int
flood(struct tres *t, int mport, int port)
{
	static struct fconn fc[FLOOD];
	struct prom_resp r;
	char err[512], buf[4096];
	long long t0 = h_now_ms(), over_ms = -1;
	int i, open = FLOOD, silent, answered, probed = 0;

	for (i = 0; i < FLOOD; i++) {
		memset(&fc[i], 0, sizeof(fc[i]));
		fc[i].ended_ms = -1;
		fc[i].fd = connect_nb(mport);
	}
	for (i = 0; i < FLOOD; i++)
		REQUIRE(t, fc[i].fd != -1, "flood connect %d: %s", i,
		    strerror(errno));
	REQUIRE(t, cl_echo_new(port, "during the flood", REPLY_MS, err,
	    sizeof(err)), "echod does not echo during the flood: %s", err);
	while (open > 0 && h_now_ms() - t0 < 15000) {
		open = flood_poll(fc, FLOOD, t0);
		if (!probed && open <= FLOOD_SLOTS && h_now_ms() - t0 < 3500) {
			/* the slots are held: a fifth scraper is turned away */
			probed = 1;
			REQUIRE(t, prom_http_get(mport, "GET", "/metrics", buf,
			    sizeof(buf), &r, HTTP_MS, err, sizeof(err)) ==
			    -1 || r.status == 503, "a scraper while %d are "
			    "held: HTTP %d, want 503 or closed", open,
			    r.status);
		}
		if (over_ms == -1 && open <= FLOOD_SLOTS)
			over_ms = h_now_ms() - t0;
	}
	if (open > 0) {
		char cmd[128], ss[8192];
		const char *argv[] = { "sh", "-c", cmd, NULL };

		snprintf(cmd, sizeof(cmd), "ss -tanp '( sport = :%d or dport = "
		    ":%d )' | awk '{print $1, $2, $3, $6}' | sort | uniq -c",
		    mport, mport);
		h_run(argv, ss, sizeof(ss), 5000);
		REQUIRE(t, 0, "%d flood connections still open after 15 s; a "
		    "scrape: %s; ss:\n%s", open, prom_http_get(mport, "GET",
		    "/metrics", buf, sizeof(buf), &r, HTTP_MS, err,
		    sizeof(err)) == 0 ? "answered" : err, ss);
	}
	REQUIRE(t, (silent = flood_silent(fc, FLOOD, &answered, err,
	    sizeof(err))) != -1, "%s", err);
	REQUIRE(t, silent <= FLOOD_SLOTS, "%d of %d ended without a 503 (%d "
	    "answered); at most %d may be served", silent, FLOOD, answered,
	    FLOOD_SLOTS);
	for (i = 0; i < FLOOD; i++)
		REQUIRE(t, fc[i].got > 0 || (fc[i].ended_ms >= 4000 &&
		    fc[i].ended_ms <= 12000), "a served flood connection "
		    "ended at %lld ms: want the 5 s head deadline",
		    fc[i].ended_ms);
	printf("prometheus: flood: %d answered 503, %d held to the deadline, "
	    "down to %d open after %lld ms%s\n", answered, silent,
	    FLOOD_SLOTS, over_ms, probed ? ", a fifth scraper turned away" :
	    " (too slow to try a fifth scraper)");
	return 1;
out:
	for (i = 0; i < FLOOD; i++)
		cl_close_fds(&fc[i].fd, 1);
	return 0;
}

/*
 * A scraper that sends its request a byte a second: closed at the 5 s
 * head deadline without an answer; another scraper is served meanwhile.
 */
static int
slow_scraper(struct tres *t, int mport, char *buf, size_t len)
{
	static const char req[] = "GET /metrics HTTP/1.1\r\n" HOST "\r\n";
	struct pollfd pfd;
	struct prom_resp r;
	char err[512], c;
	long long t0;
	int fd = -1, i, ended = 0;
	ssize_t n = 0;

	REQUIRE(t, (fd = h_connect(mport, 0)) != -1, "connect: %s",
	    strerror(errno));
	t0 = h_now_ms();
	for (i = 0; i < 12 && !ended; i++) {
		pfd.fd = fd;
		pfd.events = POLLIN;
		/* the pause between bytes is a wait for the daemon's close */
		if (poll(&pfd, 1, 1000) == 1) {
			n = recv(fd, &c, 1, MSG_DONTWAIT);
			REQUIRE(t, n <= 0, "the slow scraper got an answer "
			    "after %lld ms", h_now_ms() - t0);
			ended = 1;
			break;
		}
		REQUIRE(t, h_write_all(fd, req + i, 1) == 0,
		    "byte %d not taken: %s", i, strerror(errno));
		if (i == 1)
			REQUIRE(t, scrape(mport, buf, len, &r, err,
			    sizeof(err)) == 0, "while one is slow: %s", err);
	}
	REQUIRE(t, ended && h_now_ms() - t0 >= 4000 &&
	    h_now_ms() - t0 <= 8000, "the slow scraper %s after %lld ms, "
	    "want closed at the 5 s head deadline", ended ? "closed" :
	    "still open", h_now_ms() - t0);
	printf("prometheus: a scraper sending a byte a second: closed after "
	    "%lld ms, %d bytes sent\n", h_now_ms() - t0, i);
	cl_close_fds(&fd, 1);
	return 1;
out:
	cl_close_fds(&fd, 1);
	return 0;
}

/* A blocking connection to 127.0.0.1:port with the smallest receive
 * buffer the kernel gives; -1 on failure. */
static int
connect_small(int port)
{
	struct sockaddr_in sin;
	int fd, one = 1;

	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &one, sizeof(one));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)port);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Scrapers that send a request and never read, with the smallest
 * receive buffer: they cost no wait (another scraper is served within
 * the 5 s response deadline at worst), and each is ended.  echod's
 * answer (a few KB) may fit in the kernel's buffers: then it has
 * nothing to wait for at all.
 */
static int
non_readers(struct tres *t, int mport, char *buf, size_t len)
{
	static const char req[] = "GET /metrics HTTP/1.1\r\n" HOST "\r\n";
	char err[512];
	int fds[FLOOD_SLOTS], i;
	long long t0;

	for (i = 0; i < FLOOD_SLOTS; i++)
		fds[i] = -1;
	for (i = 0; i < FLOOD_SLOTS; i++) {
		REQUIRE(t, (fds[i] = connect_small(mport)) != -1,
		    "connect: %s", strerror(errno));
		REQUIRE(t, h_write_all(fds[i], req, sizeof(req) - 1) == 0,
		    "send: %s", strerror(errno));
	}
	t0 = h_now_ms();
	REQUIRE(t, wait_series(mport, NULL, -1, buf, len, 8000, err,
	    sizeof(err)) == 0, "/metrics not served with %d non-readers: %s",
	    FLOOD_SLOTS, err);
	printf("prometheus: %d non-readers: another scraper served after "
	    "%lld ms\n", FLOOD_SLOTS, h_now_ms() - t0);
	for (i = 0; i < FLOOD_SLOTS; i++)
		REQUIRE(t, cl_eof_or_reset(fds[i], 8000), "non-reader %d: "
		    "not ended", i);
	cl_close_fds(fds, FLOOD_SLOTS);
	return 1;
out:
	cl_close_fds(fds, FLOOD_SLOTS);
	return 0;
}

/* The most CPU the master may spend while the metrics port is abused:
 * its own timers take about 1 ms in 20 s. */
#define MASTER_NS (10 * 1000000LL)

/* pid's run time in ns (/proc/PID/schedstat: exact, where /proc/PID/stat
 * counts 10 ms ticks), or -1. */
static long long
run_ns(pid_t pid)
{
	char buf[128];
	long long ns;

	if (pf_read_pid(pid, "schedstat", buf, sizeof(buf)) <= 0 ||
	    sscanf(buf, "%lld", &ns) != 1)
		return -1;
	return ns;
}

/*
 * (c) The metrics port abused, in one daemon: bad requests, a flood, a
 * slow scraper, non-readers.  Then /metrics answers, the metrics process
 * is the one there was, echod echoes, and the master's CPU time grew by
 * a few ms at most (10): it serves none of it.
 */
START_TEST(abuse)
{
	struct echod_proc p;
	struct tres t = { 0, "" };
	char conf[512], err[512], *body = NULL;
	long long cpu0 = -1, cpu1, t0 = 0;
	pid_t mp = -1;
	int mport;

	cl_proc_init(&p);
	body = malloc(BODY_MAX);
	REQUIRE(&t, body != NULL, "malloc");
	REQUIRE(&t, (mport = cl_free_port()) != -1, "no free port");
	REQUIRE(&t, metrics_conf(conf, sizeof(conf), mport, NULL, 2) != NULL,
	    "configuration too long");
	REQUIRE(&t, h_start(&p, conf, NULL, START_MS) == 0, "start failed");
	REQUIRE(&t, wait_series(mport, NULL, -1, body, BODY_MAX, START_MS,
	    err, sizeof(err)) == 0, "/metrics never answered: %s", err);
	REQUIRE(&t, (mp = metrics_pid(p.pid)) > 0, "no 'echod: metrics'");
	cpu0 = run_ns(p.pid);
	t0 = h_now_ms();
	if (!bad_requests(&t, mport, body, BODY_MAX) ||
	    !flood(&t, mport, p.port) ||
	    !slow_scraper(&t, mport, body, BODY_MAX) ||
	    !non_readers(&t, mport, body, BODY_MAX))
		goto out;
	REQUIRE(&t, wait_series(mport, NULL, -1, body, BODY_MAX, HTTP_MS, err,
	    sizeof(err)) == 0, "/metrics after all of it: %s", err);
	REQUIRE(&t, metrics_pid(p.pid) == mp, "the metrics process changed "
	    "(%d, now %d)", (int)mp, (int)metrics_pid(p.pid));
	REQUIRE(&t, cl_echo_new(p.port, "after all of it", REPLY_MS, err,
	    sizeof(err)), "echo after all of it: %s", err);
	cpu1 = run_ns(p.pid);
	printf("prometheus: abuse: the master spent %.3f ms of CPU in %.1f s"
	    "\n", (double)(cpu1 - cpu0) / 1e6, (double)(h_now_ms() - t0) /
	    1e3);
	REQUIRE(&t, cpu0 >= 0 && cpu1 - cpu0 <= MASTER_NS, "the master spent "
	    "%.3f ms of CPU during the abuse", (double)(cpu1 - cpu0) / 1e6);
	REQUIRE_STOPPED(&t, &p, START_MS);
out:
	free(body);
	cl_conclude(&t, &p);
}
END_TEST

Suite *
prometheus_suite(void)
{
	Suite *s = suite_create("prometheus");
	TCase *tc;

	tc = h_case(s, "unit", 10, H_TESTS(unit_expo_family,
	    unit_json_special, unit_urlencode_config, unit_promtool));
	tcase_add_loop_test(tc, unit_expo, 0, H_NELEM(expo_cases));
	tcase_add_loop_test(tc, unit_http, 0, H_NELEM(http_cases));
	tcase_add_loop_test(tc, unit_json, 0, H_NELEM(json_cases));
	tc = tcase_create("promtool");
	tcase_set_timeout(tc, 40);
	tcase_add_loop_test(tc, promtool_after_churn, 0,
	    H_NELEM(churn_models));
	suite_add_tcase(s, tc);
	h_case(s, "scrape", 90, H_TESTS(prometheus_scrapes));
	h_case(s, "abuse", 90, H_TESTS(abuse));
	return s;
}
