/*
 * prom: a real Prometheus server and promtool for the metrics suites.
 *
 * prom_start writes a prometheus.yml into a temporary directory (a 1 s
 * scrape interval, one job "echod" scraping 127.0.0.1:PORT/metrics),
 * starts Debian's `prometheus` on a free loopback port with its storage
 * in that directory, keeps its pid and waits for GET /-/ready with a
 * deadline; prom_stop stops it by that pid (TERM, then KILL, each wait
 * bounded) and removes the directory.  Nothing here touches a system
 * Prometheus (its :9090, its /var/lib/prometheus): ours has its own port
 * and storage.  Queries go to the HTTP API over a plain socket: a
 * minimal HTTP/1.1 client (prom_http_get) and a minimal reading of the
 * JSON answer (prom_json_sample), both pure where they can be, with
 * table tests in check_prometheus.c.  prom_check_metrics runs `promtool
 * check metrics` on a text.
 */
#ifndef ECHOD_TEST_PROM_H
#define ECHOD_TEST_PROM_H

#include <stddef.h>
#include <sys/types.h>

struct prom {
	pid_t pid;       /* the prometheus process, -1 when none */
	int port;        /* its web port on 127.0.0.1 */
	int target_port; /* echod's metrics_listen port it scrapes */
	char dir[64];    /* prometheus.yml, data/, prometheus.log */
	char log_path[128];
};

/* A struct prom that prom_stop may be called on before any start. */
void prom_init(struct prom *pr);

/*
 * Are `prometheus` and `promtool` installed (each answers --version)?
 * 1, or 0 with what is missing in why.
 */
int prom_available(char *why, size_t whylen);

/*
 * The configuration prom_start writes, for a job "echod" scraping
 * 127.0.0.1:target_port every second; into buf (len bytes).  Returns the
 * length, or -1 if it does not fit.  Pure.
 */
int prom_config(char *buf, size_t len, int target_port);

/*
 * Start Prometheus scraping 127.0.0.1:target_port and wait up to
 * timeout_ms for /-/ready to answer 200 (a port taken meanwhile: another
 * is tried).  0, or -1 with the reason in err (pr may then be stopped).
 */
int prom_start(struct prom *pr, int target_port, int timeout_ms, char *err,
    size_t errlen);
/* Stop it by pid (TERM, KILL after timeout_ms), remove its directory.
 * Safe to call twice, or after prom_init only. */
void prom_stop(struct prom *pr, int timeout_ms);
/* The last bytes of its log, for a failure message (a static buffer). */
const char *prom_log_tail(const struct prom *pr);

/* A parsed HTTP response (prom_http_parse). */
struct prom_resp {
	int status;             /* 200, 404, ... */
	long content_length;    /* -1 if there was none */
	int chunked;            /* Transfer-Encoding: chunked (decoded) */
	int close;              /* Connection: close */
	char content_type[128]; /* "" if none */
	char allow[64];         /* the Allow header, "" if none */
	const char *body;       /* the body (NUL-terminated), in the buffer */
	size_t body_len;
};

/*
 * Parse a whole response (status line, headers, body) read into buf
 * (len bytes, buf[len] writable: the body is NUL-terminated there).  A
 * chunked body is decoded in place.  With head (the answer to a HEAD),
 * there must be no body, whatever Content-Length says.  0, or -1 when it
 * is not a complete, well-formed response (truncated, no status line, a
 * body shorter or longer than its Content-Length, bad chunks).  Pure.
 */
int prom_http_parse(char *buf, size_t len, int head, struct prom_resp *r);

/*
 * A request to 127.0.0.1:port: "METHOD TARGET HTTP/1.1" with Host and
 * "Connection: close", then the response read until EOF into buf (len
 * bytes) within timeout_ms and parsed into r.  0, or -1 with why in err
 * (connect, a timeout, a malformed or truncated response).
 */
int prom_http_get(int port, const char *method, const char *target,
    char *buf, size_t len, struct prom_resp *r, int timeout_ms, char *err,
    size_t errlen);

/*
 * The same with the request's bytes given whole (any bytes: a test of a
 * server's parser); head: it is a HEAD (no body in the answer).  The
 * request is sent without blocking, and sending stops once the server
 * has answered or closed (an over-long request): its answer is read.
 */
int prom_http_raw(int port, const void *req, size_t reqlen, int head,
    char *buf, size_t len, struct prom_resp *r, int timeout_ms, char *err,
    size_t errlen);

/*
 * The value of the first sample of an instant query's JSON answer
 * ({"status":"success","data":{"resultType":"vector","result":[{"metric":
 * {...},"value":[TS,"VALUE"]}]}}): 1 with the value in *v, 0 when the
 * result is empty (no such series yet), -1 when it is not a successful
 * vector or scalar answer.  Pure.
 */
int prom_json_sample(const char *json, double *v);

/*
 * Ask Prometheus for expr now (GET /api/v1/query, the expression
 * URL-encoded): as prom_json_sample, with why in err when -1.
 */
int prom_query(const struct prom *pr, const char *expr, double *v,
    char *err, size_t errlen);

/* Percent-encode s for a query string into out; -1 if it does not fit.
 * Pure. */
int prom_urlencode(const char *s, char *out, size_t len);

/*
 * `promtool check metrics` on text: 1 if it passes, 0 if it reports a
 * problem, -1 if it could not run; what it printed into out.
 */
int prom_check_metrics(const char *text, size_t len, char *out,
    size_t outlen);

/* Seconds since the epoch, with a fraction (Prometheus' timestamps). */
double prom_unix_now(void);

#endif
