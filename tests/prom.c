/*
 * prom: a real Prometheus server and promtool for the metrics suites
 * (see prom.h).  It starts only its own prometheus, on a port it picked,
 * with storage in its own temporary directory, and stops it by pid.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clients.h"
#include "harness.h"
#include "prom.h"

#define PROM_TRIES 3   /* ports tried when the picked one was taken */
#define STOP_KILL_MS 5000

void
prom_init(struct prom *pr)
{
	memset(pr, 0, sizeof(*pr));
	pr->pid = -1;
}

double
prom_unix_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Does `name --version` run and exit 0? */
static int
runs(const char *name)
{
	const char *argv[] = { name, "--version", NULL };
	char out[512];
	int st = h_run(argv, out, sizeof(out), 10000);

	return st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

int
prom_available(char *why, size_t whylen)
{
	int p = runs("prometheus"), t = runs("promtool");

	snprintf(why, whylen, "%s%s%s not installed (Debian's prometheus "
	    "package: sh .ci/deps.sh)", p ? "" : "prometheus",
	    !p && !t ? " and " : "", t ? "" : "promtool");
	return p && t;
}

int
prom_config(char *buf, size_t len, int target_port)
{
	int n = snprintf(buf, len,
	    "# written by echod's tests (tests/prom.c)\n"
	    "global:\n"
	    "  scrape_interval: 1s\n"
	    "  scrape_timeout: 1s\n"
	    "  evaluation_interval: 1s\n"
	    "scrape_configs:\n"
	    "  - job_name: echod\n"
	    "    metrics_path: /metrics\n"
	    "    static_configs:\n"
	    "      - targets: [\"127.0.0.1:%d\"]\n", target_port);

	return n < 0 || (size_t)n >= len ? -1 : n;
}

/* ---- the process ---- */

static void
exec_prometheus(const struct prom *pr)
{
	char conf[160], data[160], web[64];
	const char *argv[8];

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	h_child_stdio(pr->log_path);
	snprintf(conf, sizeof(conf), "--config.file=%s/prometheus.yml",
	    pr->dir);
	snprintf(data, sizeof(data), "--storage.tsdb.path=%s/data", pr->dir);
	snprintf(web, sizeof(web), "--web.listen-address=127.0.0.1:%d",
	    pr->port);
	argv[0] = "prometheus";
	argv[1] = conf;
	argv[2] = data;
	argv[3] = web;
	argv[4] = NULL;
	execvp(argv[0], (char *const *)(uintptr_t)argv);
	_exit(127);
}

/* Reap pr's process if it has ended; 1 if it has. */
static int
reaped(struct prom *pr)
{
	int st;

	if (pr->pid <= 0)
		return 1;
	if (waitpid(pr->pid, &st, WNOHANG) != pr->pid)
		return 0;
	pr->pid = -1;
	return 1;
}

/* Wait until pr is gone, at most timeout_ms; 1 if it is. */
static int
wait_gone(struct prom *pr, int timeout_ms)
{
	long long deadline = h_now_ms() + timeout_ms;

	while (!reaped(pr)) {
		if (h_now_ms() >= deadline)
			return 0;
		h_poll_pause();
	}
	return 1;
}

static void
kill_now(struct prom *pr)
{
	if (pr->pid <= 0)
		return;
	kill(pr->pid, SIGKILL);
	if (!wait_gone(pr, STOP_KILL_MS))
		fprintf(stderr, "prom: prometheus %d outlived SIGKILL\n",
		    (int)pr->pid);
}

/* Did the log say that the web port was taken? */
static int
port_taken(const struct prom *pr)
{
	return strstr(prom_log_tail(pr), "address already in use") != NULL;
}

/*
 * Poll /-/ready until it answers 200, pr dies or the deadline: 0, 1 if
 * it died (reaped), -1 on timeout.
 */
static int
wait_ready(struct prom *pr, long long deadline)
{
	struct prom_resp r;
	char buf[1024], err[128];

	while (h_now_ms() < deadline) {
		if (reaped(pr))
			return 1;
		if (prom_http_get(pr->port, "GET", "/-/ready", buf,
		    sizeof(buf), &r, 2000, err, sizeof(err)) == 0 &&
		    r.status == 200)
			return 0;
		poll(NULL, 0, 50);
	}
	return -1;
}

static int
write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	int ok;

	if (f == NULL)
		return -1;
	ok = fputs(text, f) >= 0;
	return fclose(f) == 0 && ok ? 0 : -1;
}

int
prom_start(struct prom *pr, int target_port, int timeout_ms, char *err,
    size_t errlen)
{
	long long deadline = h_now_ms() + timeout_ms;
	char conf[512], path[128];
	int try, w;

	prom_init(pr);
	pr->target_port = target_port;
	snprintf(pr->dir, sizeof(pr->dir), "/tmp/echod-prom.XXXXXX");
	if (mkdtemp(pr->dir) == NULL) {
		pr->dir[0] = '\0';
		snprintf(err, errlen, "mkdtemp: %s", strerror(errno));
		return -1;
	}
	snprintf(pr->log_path, sizeof(pr->log_path), "%s/prometheus.log",
	    pr->dir);
	snprintf(path, sizeof(path), "%s/prometheus.yml", pr->dir);
	if (prom_config(conf, sizeof(conf), target_port) == -1 ||
	    write_text(path, conf) == -1) {
		snprintf(err, errlen, "cannot write %s", path);
		return -1;
	}
	for (try = 0; try < PROM_TRIES; try++) {
		if ((pr->port = cl_free_port()) == -1) {
			snprintf(err, errlen, "no free port");
			return -1;
		}
		if ((pr->pid = fork()) == -1) {
			snprintf(err, errlen, "fork: %s", strerror(errno));
			return -1;
		}
		if (pr->pid == 0)
			exec_prometheus(pr);
		if ((w = wait_ready(pr, deadline)) == 0)
			return 0;
		if (w == 1 && port_taken(pr))
			continue;
		snprintf(err, errlen, "prometheus %s on 127.0.0.1:%d; %s",
		    w == 1 ? "exited" : "not ready in time", pr->port,
		    prom_log_tail(pr));
		kill_now(pr);
		return -1;
	}
	snprintf(err, errlen, "prometheus: %d ports taken", PROM_TRIES);
	return -1;
}

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	if (remove(path) == -1)
		fprintf(stderr, "prom: cannot remove %s: %s\n", path,
		    strerror(errno));
	return 0;
}

void
prom_stop(struct prom *pr, int timeout_ms)
{
	if (pr->pid > 0) {
		kill(pr->pid, SIGTERM);
		if (!wait_gone(pr, timeout_ms))
			kill_now(pr);
	}
	if (pr->dir[0] != '\0') {
		nftw(pr->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
		pr->dir[0] = '\0';
	}
}

const char *
prom_log_tail(const struct prom *pr)
{
	static char buf[1600];
	ssize_t n = 0;
	off_t end;
	int fd;

	buf[0] = '\0';
	if ((fd = open(pr->log_path, O_RDONLY | O_CLOEXEC)) == -1)
		return buf;
	end = lseek(fd, 0, SEEK_END);
	if (end != -1 && lseek(fd, end > 1500 ? end - 1500 : 0, SEEK_SET) !=
	    -1)
		n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

/* ---- HTTP ---- */

/* Does the header line [s, e) have name (any case)?  Its value, or NULL. */
static const char *
header_value(const char *s, const char *e, const char *name)
{
	size_t n = strlen(name);

	if ((size_t)(e - s) <= n || strncasecmp(s, name, n) != 0 ||
	    s[n] != ':')
		return NULL;
	for (s += n + 1; s < e && (*s == ' ' || *s == '\t'); s++)
		;
	return s;
}

/* Copy the value [v, e) into out, trailing blanks off. */
static void
copy_value(const char *v, const char *e, char *out, size_t len)
{
	while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	snprintf(out, len, "%.*s", (int)(e - v), v);
}

/* One header line [s, e) into r; -1 if a value is malformed. */
static int
take_header(const char *s, const char *e, struct prom_resp *r)
{
	char val[128], *end;
	const char *v;

	if ((v = header_value(s, e, "Content-Length")) != NULL) {
		copy_value(v, e, val, sizeof(val));
		errno = 0;
		r->content_length = strtol(val, &end, 10);
		if (val[0] == '\0' || *end != '\0' || errno != 0 ||
		    r->content_length < 0)
			return -1;
	} else if ((v = header_value(s, e, "Transfer-Encoding")) != NULL) {
		copy_value(v, e, val, sizeof(val));
		r->chunked = strcasecmp(val, "chunked") == 0;
	} else if ((v = header_value(s, e, "Connection")) != NULL) {
		copy_value(v, e, val, sizeof(val));
		r->close = strcasecmp(val, "close") == 0;
	} else if ((v = header_value(s, e, "Content-Type")) != NULL)
		copy_value(v, e, r->content_type, sizeof(r->content_type));
	else if ((v = header_value(s, e, "Allow")) != NULL)
		copy_value(v, e, r->allow, sizeof(r->allow));
	return 0;
}

/* Decode a chunked body [b, b + len) in place; its length, or -1. */
static long
dechunk(char *b, size_t len)
{
	size_t in = 0, out = 0, size;
	char *end, *crlf;

	for (;;) {
		crlf = memmem(b + in, len - in, "\r\n", 2);
		if (crlf == NULL || !isxdigit((unsigned char)b[in]))
			return -1;
		errno = 0;
		size = strtoul(b + in, &end, 16);
		if (errno != 0 || (end != crlf && *end != ';'))
			return -1;
		in = (size_t)(crlf - b) + 2;
		if (size == 0)
			return (long)out; /* trailers, if any, are ignored */
		if (size > len - in || len - in - size < 2 ||
		    memcmp(b + in + size, "\r\n", 2) != 0)
			return -1;
		memmove(b + out, b + in, size);
		out += size;
		in += size + 2;
	}
}

/* The body of r after the head, at [b, b + blen): sets body, body_len. */
static int
take_body(char *b, size_t blen, struct prom_resp *r)
{
	long n;

	if (r->chunked) {
		if ((n = dechunk(b, blen)) == -1)
			return -1;
		blen = (size_t)n;
	} else if (r->content_length >= 0) {
		if (blen != (size_t)r->content_length)
			return -1;
	}
	b[blen] = '\0';
	r->body = b;
	r->body_len = blen;
	return 0;
}

int
prom_http_parse(char *buf, size_t len, int head, struct prom_resp *r)
{
	char *head_end, *s, *e;
	int status;

	memset(r, 0, sizeof(*r));
	r->content_length = -1;
	buf[len] = '\0';
	if ((head_end = memmem(buf, len, "\r\n\r\n", 4)) == NULL ||
	    len < 13 || strncmp(buf, "HTTP/1.", 7) != 0 ||
	    !isdigit((unsigned char)buf[7]) || buf[8] != ' ' ||
	    !isdigit((unsigned char)buf[9]) ||
	    !isdigit((unsigned char)buf[10]) ||
	    !isdigit((unsigned char)buf[11]) ||
	    (buf[12] != ' ' && buf[12] != '\r'))
		return -1;
	status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + buf[11] - '0';
	s = (char *)memmem(buf, len, "\r\n", 2) + 2;
	while (s < head_end + 2) {
		e = memmem(s, (size_t)(head_end + 2 - s), "\r\n", 2);
		if (take_header(s, e, r) == -1)
			return -1;
		s = e + 2;
	}
	r->status = status;
	if (head) {
		/* the headers of a GET, never a body */
		r->body = head_end + 4;
		return r->body == buf + len ? 0 : -1;
	}
	return take_body(head_end + 4, len - (size_t)(head_end + 4 - buf), r);
}

/* Read until EOF into buf within timeout_ms; bytes read, or -1. */
static long
read_to_eof(int fd, char *buf, size_t len, int timeout_ms, char *err,
    size_t errlen)
{
	long long deadline = h_now_ms() + timeout_ms, left;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	size_t got = 0;
	ssize_t n;

	for (;;) {
		if ((left = deadline - h_now_ms()) <= 0) {
			snprintf(err, errlen, "no EOF within %d ms (%zu "
			    "bytes read)", timeout_ms, got);
			return -1;
		}
		if (poll(&pfd, 1, (int)left) <= 0)
			continue;
		n = recv(fd, buf + got, len - got, MSG_DONTWAIT);
		if (n == -1 && errno == ECONNRESET && got > 0)
			return (long)got; /* it answered, then reset */
		if (n == -1 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n == -1) {
			snprintf(err, errlen, "recv: %s (%zu bytes read)",
			    strerror(errno), got);
			return -1;
		}
		if (n == 0)
			return (long)got;
		if ((got += (size_t)n) == len) {
			snprintf(err, errlen, "response over %zu bytes", len);
			return -1;
		}
	}
}

/*
 * Send req without blocking on a peer that stops reading: stop early when
 * it has answered (readable) or the send fails (it closed: its answer is
 * still there to read).  0, or -1 on a timeout.
 */
static int
send_request(int fd, const char *req, size_t len, long long deadline)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN | POLLOUT };
	long long left;
	ssize_t w;

	while (len > 0) {
		if ((left = deadline - h_now_ms()) <= 0)
			return -1;
		if (poll(&pfd, 1, (int)left) <= 0)
			continue;
		if (pfd.revents & (POLLIN | POLLERR | POLLHUP))
			return 0;
		w = send(fd, req, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w == -1 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (w == -1)
			return 0;
		req += w;
		len -= (size_t)w;
	}
	return 0;
}

int
prom_http_raw(int port, const void *req, size_t reqlen, int head, char *buf,
    size_t len, struct prom_resp *r, int timeout_ms, char *err,
    size_t errlen)
{
	long long deadline = h_now_ms() + timeout_ms;
	long n;
	int fd;

	memset(r, 0, sizeof(*r));
	if ((fd = h_connect(port, 0)) == -1) {
		snprintf(err, errlen, "connect to 127.0.0.1:%d: %s", port,
		    strerror(errno));
		return -1;
	}
	if (send_request(fd, req, reqlen, deadline) == -1) {
		snprintf(err, errlen, "request not sent in %d ms", timeout_ms);
		close(fd);
		return -1;
	}
	n = read_to_eof(fd, buf, len - 1, (int)(deadline - h_now_ms()), err,
	    errlen);
	close(fd);
	if (n == -1)
		return -1;
	if (prom_http_parse(buf, (size_t)n, head, r) == -1) {
		snprintf(err, errlen, "malformed response (%ld bytes): %.200s",
		    n, buf);
		return -1;
	}
	return 0;
}

int
prom_http_get(int port, const char *method, const char *target,
    char *buf, size_t len, struct prom_resp *r, int timeout_ms, char *err,
    size_t errlen)
{
	char req[2048];
	int k;

	k = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d"
	    "\r\nUser-Agent: echod-tests\r\nAccept: */*\r\n"
	    "Connection: close\r\n\r\n", method, target, port);
	if (k < 0 || (size_t)k >= sizeof(req) || len < 2) {
		memset(r, 0, sizeof(*r));
		snprintf(err, errlen, "request too long");
		return -1;
	}
	return prom_http_raw(port, req, (size_t)k, strcmp(method, "HEAD") == 0,
	    buf, len, r, timeout_ms, err, errlen);
}

/* ---- the API ---- */

int
prom_urlencode(const char *s, char *out, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	unsigned char c;

	for (; *s != '\0'; s++) {
		c = (unsigned char)*s;
		if (isalnum(c) || c == '-' || c == '_' || c == '.' ||
		    c == '~') {
			if (o + 1 >= len)
				return -1;
			out[o++] = (char)c;
		} else {
			if (o + 3 >= len)
				return -1;
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	if (o >= len)
		return -1;
	out[o] = '\0';
	return 0;
}

/* After "key" in s: the blanks and ':' and blanks skipped; NULL if none. */
static const char *
after_key(const char *s, const char *key)
{
	char k[32];

	snprintf(k, sizeof(k), "\"%s\"", key);
	if ((s = strstr(s, k)) == NULL)
		return NULL;
	s += strlen(k);
	while (isspace((unsigned char)*s))
		s++;
	if (*s++ != ':')
		return NULL;
	while (isspace((unsigned char)*s))
		s++;
	return s;
}

/* The sample [TS,"VALUE"] at s into *v; 1, or -1. */
static int
sample_at(const char *s, double *v)
{
	char num[64], *end;
	const char *q;

	if (*s++ != '[')
		return -1;
	strtod(s, &end);
	if (end == s)
		return -1;
	for (s = end; isspace((unsigned char)*s); s++)
		;
	if (*s++ != ',')
		return -1;
	while (isspace((unsigned char)*s))
		s++;
	if (*s++ != '"' || (q = strchr(s, '"')) == NULL ||
	    (size_t)(q - s) >= sizeof(num) || q == s)
		return -1;
	snprintf(num, sizeof(num), "%.*s", (int)(q - s), s);
	*v = strtod(num, &end);
	return *end == '\0' ? 1 : -1;
}

int
prom_json_sample(const char *json, double *v)
{
	const char *s, *type;

	if ((s = after_key(json, "status")) == NULL ||
	    strncmp(s, "\"success\"", 9) != 0 ||
	    (type = after_key(json, "resultType")) == NULL ||
	    (s = after_key(json, "result")) == NULL)
		return -1;
	if (strncmp(type, "\"scalar\"", 8) == 0)
		return sample_at(s, v);
	if (strncmp(type, "\"vector\"", 8) != 0 || *s++ != '[')
		return -1;
	while (isspace((unsigned char)*s))
		s++;
	if (*s == ']')
		return 0;
	if ((s = after_key(s, "value")) == NULL)
		return -1;
	return sample_at(s, v);
}

int
prom_query(const struct prom *pr, const char *expr, double *v, char *err,
    size_t errlen)
{
	struct prom_resp r;
	char enc[1024], target[1100], buf[16384];
	int k;

	if (prom_urlencode(expr, enc, sizeof(enc)) == -1) {
		snprintf(err, errlen, "expression too long");
		return -1;
	}
	snprintf(target, sizeof(target), "/api/v1/query?query=%s", enc);
	if (prom_http_get(pr->port, "GET", target, buf, sizeof(buf), &r,
	    5000, err, errlen) == -1)
		return -1;
	if (r.status != 200 || (k = prom_json_sample(r.body, v)) == -1) {
		snprintf(err, errlen, "query %s: HTTP %d: %.300s", expr,
		    r.status, r.body);
		return -1;
	}
	return k;
}

/* ---- promtool ---- */

/* Write all of buf to a file; 0 or -1. */
static int
write_all(int fd, const char *buf, size_t len)
{
	ssize_t w;

	while (len > 0) {
		w = write(fd, buf, len);
		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		buf += w;
		len -= (size_t)w;
	}
	return 0;
}

int
prom_check_metrics(const char *text, size_t len, char *out, size_t outlen)
{
	char path[] = "/tmp/echod-promtool.XXXXXX";
	const char *argv[] = { "sh", "-c",
		"exec promtool check metrics < \"$1\"", "sh", path, NULL };
	int fd, st, ok;

	out[0] = '\0';
	if ((fd = mkstemp(path)) == -1)
		return -1;
	ok = write_all(fd, text, len) == 0;
	close(fd);
	st = ok ? h_run(argv, out, outlen, 20000) : -1;
	unlink(path);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) == 127)
		return -1;
	return WEXITSTATUS(st) == 0;
}
