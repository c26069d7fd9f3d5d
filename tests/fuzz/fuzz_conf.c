/*
 * fuzz_conf: libFuzzer target for the configuration loader (conf.c and,
 * through it, libconfuse and listener_parse).
 *
 * An input is a configuration file, written to a temporary directory and
 * loaded with conf_load, so a real file is a seed as it is.  Two NUL bytes
 * end the file and start a command line, NUL-separated pieces: the first
 * a -w value (conf_set_workers), the rest -l addresses (conf_set_listen).
 * The directory also holds a few files for include(), a directory and a
 * FIFO (opening one must not wait for a writer).
 *
 * What must hold, whatever the input: no crash, leak or hang (ASan, UBSan,
 * libFuzzer's leak check and -timeout); a refusal is one non-empty line
 * and leaves the conf exactly as it was; an accepted file gives a conf
 * within every documented range, and loading it again gives the same conf.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "listener.h"
#include "log.h"
#define FUZZ_TARGET "fuzz_conf"
#include "fuzz.h"

#define MAX_PIECES 24
/*
 * A load slower than this hangs.  libFuzzer's own -timeout is no help for
 * a blocking system call: its SIGALRM interrupts the call, which then
 * fails with EINTR, and the input passes as merely slow.
 */
#define LOAD_MS_MAX 3000

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];
static char path[128];

/* Files an input may include("..."): good, bad, empty, itself, a dir. */
static const struct {
	const char *name, *text;
} extra[] = {
	{ "inc.conf", "workers = 2\nlisten += { \"127.0.0.1:7008\" }\n" },
	{ "bad.conf", "\n\nworkers = 0\n" },
	{ "empty.conf", "" },
	{ "self.conf", "include(\"self.conf\")\n" },
	{ "nested.conf", "include(\"inc.conf\")\nbacklog = 7\n" },
	{ "proxied.conf", "listen = {}\nproxy_listen = { \"127.0.0.1:7010\" }\n"
	    "proxy_trusted = { \"127.0.0.0/8\", \"::1\" }\n" },
};

static void
cleanup(void)
{
	char p[192];
	size_t i;

	for (i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, extra[i].name);
		unlink(p);
	}
	snprintf(p, sizeof(p), "%s/dir", dir);
	rmdir(p);
	snprintf(p, sizeof(p), "%s/fifo", dir);
	unlink(p);
	unlink(path);
	rmdir(dir);
}

static void
write_file(const char *p, const void *buf, size_t len)
{
	FILE *f = fopen(p, "w");

	CHECK(f != NULL, "%s: %s", p, strerror(errno));
	CHECK(fwrite(buf, 1, len, f) == len, "%s: short write", p);
	CHECK(fclose(f) == 0, "%s: %s", p, strerror(errno));
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char p[192];
	size_t i;

	(void)argc;
	(void)argv;
	snprintf(dir, sizeof(dir), "/tmp/echod-fuzz-conf.XXXXXX");
	CHECK(mkdtemp(dir) != NULL, "mkdtemp: %s", strerror(errno));
	snprintf(path, sizeof(path), "%s/echod.conf", dir);
	for (i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, extra[i].name);
		write_file(p, extra[i].text, strlen(extra[i].text));
	}
	snprintf(p, sizeof(p), "%s/dir", dir);
	CHECK(mkdir(p, 0700) == 0, "mkdir: %s", strerror(errno));
	snprintf(p, sizeof(p), "%s/fifo", dir);
	CHECK(mkfifo(p, 0600) == 0, "mkfifo: %s", strerror(errno));
	atexit(cleanup);
	/* For "${ECHOD_FUZZ_PORT}" and "${ECHOD_FUZZ_EMPTY:-x}". */
	setenv("ECHOD_FUZZ_PORT", "7007", 1);
	setenv("ECHOD_FUZZ_EMPTY", "", 1);
	setenv("ECHOD_FUZZ_ADDR", "127.0.0.1:7009", 1);
	return 0;
}

/* The PROXY protocol's options, appended at off. */
static void
describe_proxy(const struct conf *c, char *buf, size_t len, size_t off)
{
	char b[64];
	size_t i;

	if (off < len)
		off += (size_t)snprintf(buf + off, len - off, "|%d|%zu|%zu",
		    c->proxy_timeout, c->nproxy_listen, c->nproxy_trusted);
	for (i = 0; i < c->nproxy_listen && i < CONF_LISTEN_MAX && off < len;
	    i++)
		off += (size_t)snprintf(buf + off, len - off, "|%s",
		    c->proxy_listen[i]);
	for (i = 0; i < c->nproxy_trusted && i < CONF_TRUSTED_MAX &&
	    off < len; i++) {
		cidr_format(&c->proxy_trusted[i], b, sizeof(b));
		off += (size_t)snprintf(buf + off, len - off, "|%s", b);
	}
}

/* Everything a conf says, as text: to compare two confs. */
static void
describe(const struct conf *c, char *buf, size_t len)
{
	size_t i, off;

	off = (size_t)snprintf(buf, len,
	    "%s|%d|%d|%d|%d|%d|%d|%d|%d|%s|%s|%d|%s|%d|%d|%d|%d|%d|%zu",
	    c->path, c->workers, c->workers_auto, c->max_connections,
	    c->backlog, c->idle_timeout, c->shutdown_timeout, c->log_level,
	    c->worker_timeout, c->user, c->group, c->allow_root, c->pidfile,
	    c->max_connection_time, c->max_connections_per_ip,
	    c->max_connection_rate_per_ip, c->limits_exempt_loopback,
	    c->sandbox, c->nlisten);
	for (i = 0; i < c->nlisten && i < CONF_LISTEN_MAX && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "|%s",
		    c->listen[i]);
	describe_proxy(c, buf, len, off);
}

static void
check_err(const char *what, const char *err, size_t errlen)
{
	size_t n = strnlen(err, errlen);

	CHECK(n < errlen, "%s: error message not terminated", what);
	CHECK(n > 0, "%s: refused without a message", what);
	CHECK(strchr(err, '\n') == NULL && strchr(err, '\r') == NULL,
	    "%s: message is not one line: '%s'", what, err);
}

/* Whether spec is the same address as one of list's n. */
static int
same_address(const char *spec, char *const *list, size_t n)
{
	struct listen_addr a, b;
	char why[256];
	size_t i;

	if (listener_parse(spec, &a, why, sizeof(why)) == -1)
		return 0;
	for (i = 0; i < n; i++)
		if (listener_parse(list[i], &b, why, sizeof(why)) == 0 &&
		    a.any == b.any && a.sslen == b.sslen &&
		    memcmp(&a.ss, &b.ss, a.sslen) == 0)
			return 1;
	return 0;
}

/* proxy_listen as listen, never in both; the blocks; the timeout. */
static void
check_proxy(const struct conf *c)
{
	struct listen_addr la;
	struct cidr again;
	char why[512], b[64];
	size_t i;

	for (i = 0; i < c->nproxy_listen; i++) {
		CHECK(c->proxy_listen[i] != NULL, "proxy_listen[%zu] NULL", i);
		CHECK(listener_parse(c->proxy_listen[i], &la, why,
		    sizeof(why)) == 0, "accepted proxy_listen '%s': %s",
		    c->proxy_listen[i], why);
		CHECK(!same_address(c->proxy_listen[i], c->listen, c->nlisten),
		    "'%s' in listen and proxy_listen", c->proxy_listen[i]);
	}
	CHECK(c->nproxy_trusted <= CONF_TRUSTED_MAX, "nproxy_trusted %zu",
	    c->nproxy_trusted);
	for (i = 0; i < c->nproxy_trusted; i++) {
		cidr_format(&c->proxy_trusted[i], b, sizeof(b));
		CHECK(cidr_parse(b, &again, why, sizeof(why)) == 0 &&
		    memcmp(&again, &c->proxy_trusted[i], sizeof(again)) == 0,
		    "block %s does not parse back: %s", b, why);
	}
	CHECK(c->proxy_timeout >= 1 &&
	    c->proxy_timeout <= CONF_PROXY_TIMEOUT_MAX, "proxy_timeout %d",
	    c->proxy_timeout);
}

static void
check_conf(const struct conf *c)
{
	struct listen_addr la;
	char why[512], summary[2048];
	size_t i;

	CHECK(c->nlisten + c->nproxy_listen >= 1 &&
	    c->nlisten + c->nproxy_listen <= CONF_LISTEN_MAX,
	    "nlisten %zu, nproxy_listen %zu", c->nlisten, c->nproxy_listen);
	for (i = 0; i < c->nlisten; i++) {
		CHECK(c->listen[i] != NULL, "listen[%zu] NULL", i);
		CHECK(listener_parse(c->listen[i], &la, why, sizeof(why)) == 0,
		    "accepted listen '%s': %s", c->listen[i], why);
	}
	check_proxy(c);
	CHECK(c->workers >= 1 && c->workers <= CONF_WORKERS_MAX, "workers %d",
	    c->workers);
	CHECK(c->max_connections >= 1 &&
	    c->max_connections <= CONF_MAX_CONNECTIONS_MAX,
	    "max_connections %d", c->max_connections);
	CHECK(c->backlog >= 1 && c->backlog <= CONF_BACKLOG_MAX, "backlog %d",
	    c->backlog);
	CHECK(c->idle_timeout >= 0 && c->idle_timeout <= CONF_TIMEOUT_MAX,
	    "idle_timeout %d", c->idle_timeout);
	CHECK(c->shutdown_timeout >= 0 &&
	    c->shutdown_timeout <= CONF_SHUTDOWN_TIMEOUT_MAX,
	    "shutdown_timeout %d", c->shutdown_timeout);
	CHECK(c->worker_timeout >= 0 &&
	    c->worker_timeout <= CONF_WORKER_TIMEOUT_MAX,
	    "worker_timeout %d", c->worker_timeout);
	CHECK(c->log_level >= LOG_LVL_ERR && c->log_level <= LOG_LVL_DEBUG,
	    "log_level %d", c->log_level);
	CHECK(c->sandbox == CONF_SANDBOX_OFF || c->sandbox == CONF_SANDBOX_ON ||
	    c->sandbox == CONF_SANDBOX_TRY, "sandbox %d", c->sandbox);
	CHECK(c->max_connection_time >= 0 &&
	    c->max_connection_time <= CONF_CONNECTION_TIME_MAX,
	    "max_connection_time %d", c->max_connection_time);
	CHECK(c->max_connections_per_ip >= 0 &&
	    c->max_connections_per_ip <= CONF_PER_IP_MAX &&
	    c->max_connection_rate_per_ip >= 0 &&
	    c->max_connection_rate_per_ip <= CONF_PER_IP_MAX, "per-IP limits");
	CHECK(strnlen(c->user, sizeof(c->user)) < sizeof(c->user) &&
	    c->user[0] != '\0', "user");
	CHECK(strnlen(c->group, sizeof(c->group)) < sizeof(c->group), "group");
	CHECK(strnlen(c->pidfile, sizeof(c->pidfile)) < sizeof(c->pidfile) &&
	    c->pidfile[0] == '/', "pidfile '%.64s' not absolute", c->pidfile);
	conf_summary(c, summary, sizeof(summary));
	CHECK(strchr(summary, '\n') == NULL, "summary is not one line: '%s'",
	    summary);
}

/*
 * After a setter (fn, for option opt) returned rc: a refusal explains
 * itself in err and leaves c as it was (before, described); an
 * acceptance leaves a valid c.
 */
static void
check_set(const struct conf *c, const char *fn, const char *opt, int rc,
    const char *err, size_t errlen, const char *before)
{
	char after[8192];

	if (rc == -1) {
		check_err(fn, err, errlen);
		describe(c, after, sizeof(after));
		CHECK(strcmp(before, after) == 0,
		    "a refused %s changed the conf", opt);
	} else
		check_conf(c);
}

/* The command-line pieces after the file: -w, then -l... */
static void
command_line(struct conf *c, char **pieces, size_t n)
{
	char before[8192], err[1024];
	int rc;

	if (n == 0)
		return;
	describe(c, before, sizeof(before));
	rc = conf_set_workers(c, pieces[0], err, sizeof(err));
	check_set(c, "conf_set_workers", "-w", rc, err, sizeof(err), before);
	describe(c, before, sizeof(before));
	rc = conf_set_listen(c, pieces + 1, n - 1, err, sizeof(err));
	check_set(c, "conf_set_listen", "-l", rc, err, sizeof(err), before);
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
timed_load(struct conf *c, char *err, size_t errlen)
{
	long long t0 = now_ms(), ms;
	int rc;

	rc = conf_load(c, path, err, errlen);
	ms = now_ms() - t0;
	CHECK(ms < LOAD_MS_MAX, "conf_load took %lld ms (%s)", ms,
	    rc == 0 ? "accepted" : err);
	return rc;
}

/* Split s (len bytes, NULs between pieces) into at most max strings. */
static size_t
split(char *s, size_t len, char **pieces, size_t max)
{
	size_t n = 0, i = 0;

	while (i < len && n < max) {
		pieces[n++] = s + i;
		i += strlen(s + i) + 1;
	}
	return n;
}

/* Where the file ends: at the first two NUL bytes, or the input's end. */
static size_t
file_length(const uint8_t *data, size_t size)
{
	const uint8_t *p = data, *end = data + size;

	while ((p = memchr(p, '\0', (size_t)(end - p))) != NULL &&
	    p + 1 < end) {
		if (p[1] == '\0')
			return (size_t)(p - data);
		p++;
	}
	return size;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char before[8192], after[8192], err[1024];
	char *copy, *pieces[MAX_PIECES];
	size_t flen, npieces = 0;
	struct conf c;
	int rc;

	flen = file_length(data, size);
	write_file(path, data, flen);
	/* The command line: NUL-terminated copies of what follows the file. */
	CHECK((copy = malloc(size + 1)) != NULL, "malloc");
	memcpy(copy, data, size);
	copy[size] = '\0';
	if (flen < size)
		npieces = split(copy + flen + 2, size - flen - 2 + 1, pieces,
		    MAX_PIECES);

	conf_defaults(&c);
	describe(&c, before, sizeof(before));
	rc = timed_load(&c, err, sizeof(err));
	if (rc == -1) {
		check_err("conf_load", err, sizeof(err));
		describe(&c, after, sizeof(after));
		CHECK(strcmp(before, after) == 0,
		    "a refused file changed the conf");
	} else {
		check_conf(&c);
		/* A reload of the same file replaces the conf with its twin. */
		describe(&c, before, sizeof(before));
		CHECK(timed_load(&c, err, sizeof(err)) == 0,
		    "the second load failed: %s", err);
		describe(&c, after, sizeof(after));
		CHECK(strcmp(before, after) == 0, "the second load differs");
	}
	command_line(&c, pieces, npieces);
	conf_free(&c);
	free(copy);
	return 0;
}
