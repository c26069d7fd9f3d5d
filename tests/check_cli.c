/*
 * check_cli: the command line and the configuration file, from outside.
 *
 * Runs the real echod (h_run for short-lived runs, h_start for daemons)
 * and checks exit statuses (64 usage, 71 OS error, 78 configuration) and
 * what it prints.  Every file a test writes lives in its own mkdtemp
 * directory, removed before the test asserts, so a failure leaves
 * nothing behind; daemons are stopped by pid on every path.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conf.h"
#include "clients.h"
#include "exitcodes.h"
#include "harness.h"
#include "procfs.h"
#include "suites.h"
#include "version.h"

#define RUN_MS 5000
#define START_MS 5000
#define OUT_MAX 16384

/* ---- scratch files ---- */

struct scratch {
	char dir[64];
	char path[128];
};

static int
scratch_init(struct scratch *s)
{
	snprintf(s->dir, sizeof(s->dir), "/tmp/echod-cli.XXXXXX");
	s->path[0] = '\0';
	if (mkdtemp(s->dir) == NULL) {
		s->dir[0] = '\0';
		return -1;
	}
	snprintf(s->path, sizeof(s->path), "%s/echod.conf", s->dir);
	return 0;
}

/* Write len bytes (NULs allowed) to s->path. */
static int
scratch_write(struct scratch *s, const char *data, size_t len)
{
	FILE *f = fopen(s->path, "we");

	if (f == NULL)
		return -1;
	if (len > 0 && fwrite(data, 1, len, f) != len) {
		fclose(f);
		return -1;
	}
	return fclose(f);
}

/*
 * Write len bytes of data into a new scratch file, put its path into
 * argv[at] and run argv: output into out, wait status into *st.  0, or
 * -1 (errno) when the file could not be made.
 */
static int
scratch_run(struct scratch *s, const char *data, size_t len,
    const char **argv, int at, char *out, size_t outlen, int *st)
{
	if (scratch_init(s) == -1 || scratch_write(s, data, len) == -1)
		return -1;
	argv[at] = s->path;
	*st = h_run(argv, out, outlen, RUN_MS);
	return 0;
}

static void
scratch_cleanup(struct scratch *s)
{
	if (s->dir[0] == '\0')
		return;
	unlink(s->path);
	rmdir(s->dir);
	s->dir[0] = '\0';
}

static int
count_lines(const char *s)
{
	int n = 0;

	for (; *s != '\0'; s++)
		n += *s == '\n';
	return n;
}

static int
default_conf_exists(void)
{
	return access(CONF_DEFAULT_PATH, F_OK) == 0;
}

/* ---- help and version ---- */

static const char *const help_opts[] = { "-h", "--help" };

START_TEST(help)
{
	const char *argv[] = { "echod", help_opts[_i], NULL };
	char out[OUT_MAX];
	int st;

	st = h_run(argv, out, sizeof(out), RUN_MS);
	ck_assert_msg(cl_exited_with(st, 0), "%s: wait status %#x", argv[1], st);
	ck_assert_msg(strncmp(out, "usage: echod ", 13) == 0,
	    "%s: output does not start with the usage: %s", argv[1], out);
	ck_assert_msg(strstr(out, "-c, --config FILE") != NULL &&
	    strstr(out, "-l, --listen ADDR") != NULL &&
	    strstr(out, "-w, --workers N") != NULL &&
	    strstr(out, "-t, --test") != NULL &&
	    strstr(out, "-V, --version") != NULL,
	    "%s: usage misses an option: %s", argv[1], out);
}
END_TEST

static const char *const version_opts[] = { "-V", "--version" };

START_TEST(version)
{
	const char *argv[] = { "echod", version_opts[_i], NULL };
	char out[OUT_MAX];
	int st;

	st = h_run(argv, out, sizeof(out), RUN_MS);
	ck_assert_msg(cl_exited_with(st, 0), "%s: wait status %#x", argv[1], st);
	ck_assert_str_eq(out, "echod " ECHOD_VERSION "\n");
	ck_assert_str_eq(ECHOD_VERSION, "0.1.0");
}
END_TEST

/* ---- usage errors: 64 ---- */

struct usage_case {
	const char *argv[8];
	const char *needle; /* in the message */
};

/*
 * Rows that could start a daemon by mistake listen on 127.0.0.1:0 with
 * one worker, so a wrongly accepted command line fails by timeout, not by
 * taking a port.
 */
static const struct usage_case usage_cases[] = {
	{ { "echod", "-x", NULL }, "unknown option -x" },
	{ { "echod", "--bogus", NULL }, "unknown option --bogus" },
	{ { "echod", "-c", NULL }, "option -c needs an argument" },
	{ { "echod", "--config", NULL }, "--config needs an argument" },
	{ { "echod", "-t", "-w", NULL }, "-w needs an argument" },
	{ { "echod", "-l", "127.0.0.1:0", "-w", "1", "stray", NULL },
	    "unexpected argument 'stray'" },
	{ { "echod", "stray", "-t", NULL }, "unexpected argument 'stray'" },
	{ { "echod", "-l", "127.0.0.1:0", "-w", "0", NULL }, "workers" },
	{ { "echod", "-l", "127.0.0.1:0", "-w", "-1", NULL }, "workers" },
	{ { "echod", "-l", "127.0.0.1:0", "-w", "abc", NULL }, "workers" },
	{ { "echod", "-l", "127.0.0.1:0", "-w", "99999", NULL }, "workers" },
	{ { "echod", "-l", "127.0.0.1:0", "-w", "", NULL }, "workers" },
	{ { "echod", "-l", "127.0.0.1:0", "-w", "2x", NULL }, "workers" },
	{ { "echod", "-l", "127.0.0.1:0", "-w", "0x10", NULL }, "workers" },
	{ { "echod", "-l", "127.0.0.1:0", "--workers=257", NULL }, "workers" },
	{ { "echod", "-w", "1", "-l", "nonsense", NULL }, "nonsense" },
	{ { "echod", "-w", "1", "-l", "localhost:7007", NULL },
	    "localhost" },
	{ { "echod", "-w", "1", "-l", "127.0.0.1:70000", NULL }, "70000" },
	{ { "echod", "-w", "1", "-l", "127.0.0.1:", NULL }, "127.0.0.1:" },
	{ { "echod", "-w", "1", "-l", "[::1]", NULL }, "[::1]" },
	{ { "echod", "-w", "1", "-l", "", NULL }, "listen" },
	{ { "echod", "-w", "1", "-l", "127.0.0.1:0", "-l", "127.0.0.1:0",
	    NULL }, "twice" },
};

START_TEST(usage_error)
{
	const struct usage_case *c = &usage_cases[_i];
	char out[OUT_MAX], args[256] = "";
	int i, st;

	for (i = 1; c->argv[i] != NULL; i++)
		snprintf(args + strlen(args), sizeof(args) - strlen(args),
		    " '%s'", c->argv[i]);
	st = h_run(c->argv, out, sizeof(out), RUN_MS);
	ck_assert_msg(cl_exited_with(st, ECHOD_EXIT_USAGE),
	    "echod%s: wait status %#x, want exit 64; output: %s", args, st,
	    out);
	ck_assert_msg(strncmp(out, "echod: ", 7) == 0 &&
	    strstr(out, c->needle) != NULL,
	    "echod%s: message lacks '%s': %s", args, c->needle, out);
	ck_assert_msg(strstr(out, "usage: echod") != NULL,
	    "echod%s: no usage after the error: %s", args, out);
}
END_TEST

START_TEST(too_many_listen)
{
	/* --listen=ADDR: one argument each, within h_run's 32. */
	const char *argv[2 + CONF_LISTEN_MAX + 1 + 1];
	char specs[CONF_LISTEN_MAX + 1][40], out[OUT_MAX];
	int i, n = 0, st;

	argv[n++] = "echod";
	argv[n++] = "-t";
	for (i = 0; i <= CONF_LISTEN_MAX; i++) {
		snprintf(specs[i], sizeof(specs[i]), "--listen=127.0.0.1:%d",
		    7000 + i);
		argv[n++] = specs[i];
	}
	argv[n] = NULL;
	st = h_run(argv, out, sizeof(out), RUN_MS);
	ck_assert_msg(cl_exited_with(st, ECHOD_EXIT_USAGE),
	    "%d -l: wait status %#x: %s", CONF_LISTEN_MAX + 1, st, out);
	ck_assert_msg(strstr(out, "too many -l") != NULL, "message: %s", out);
}
END_TEST

/* ---- -t with a good file ---- */

static const char good_conf[] =
    "# a complete configuration\n"
    "listen = { \"127.0.0.1:7007\", \"[::1]:7008\" }\n"
    "workers = 3\n"
    "max_connections = 100\n"
    "backlog = 64\n"
    "idle_timeout = 30\n"
    "shutdown_timeout = 2\n"
    "log_level = warning\n";

/*
 * -t with a good file: exit 0 and one line, "echod: PATH: configuration
 * OK: " and the summary, which has every one of has[] and none of
 * lacks[].  argv[3] is the file.
 */
static const struct ok_case {
	const char *what;
	const char *conf;
	const char *argv[12];
	const char *has[7];
	const char *lacks[3];
} ok_cases[] = {
	{ "the file's options", good_conf, { "echod", "-t", "-c", NULL },
	    { "3 workers x 100 connections",
	    "listen 127.0.0.1:7007 [::1]:7008", "backlog 64",
	    "idle_timeout 30 s", "shutdown_timeout 2 s",
	    "log_level warning" }, { NULL } },
	/* -l replaces the file's listen, -w overrides its workers. */
	{ "-w and -l", good_conf, { "echod", "-t", "-c", NULL, "-w", "5",
	    "-l", "127.0.0.1:9", "-l", "[::1]:10" },
	    { "5 workers x 100 connections", "listen 127.0.0.1:9 [::1]:10," },
	    { "7007", "7008" } },
	/* An empty file is valid: every option has a default. */
	{ "an empty file", "", { "echod", "-t", "-c", NULL },
	    { "listen " CONF_DEFAULT_LISTEN "," }, { NULL } },
};

START_TEST(test_good)
{
	const struct ok_case *c = &ok_cases[_i];
	const char *argv[H_NELEM(c->argv)];
	struct scratch s;
	struct tres t = { 0, "" };
	char out[OUT_MAX], want[256];
	size_t i;
	int st;

	memcpy(argv, c->argv, sizeof(argv));
	REQUIRE(&t, scratch_run(&s, c->conf, strlen(c->conf), argv, 3, out,
	    sizeof(out), &st) == 0, "scratch file: %s", strerror(errno));
	REQUIRE(&t, cl_exited_with(st, 0), "%s: wait status %#x: %s", c->what,
	    st, out);
	snprintf(want, sizeof(want), "echod: %s: configuration OK: ", s.path);
	REQUIRE(&t, strncmp(out, want, strlen(want)) == 0,
	    "%s: output: %s, want it to start with %s", c->what, out, want);
	REQUIRE(&t, count_lines(out) == 1, "%s: not one line: %s", c->what,
	    out);
	for (i = 0; i < H_NELEM(c->has) && c->has[i] != NULL; i++)
		REQUIRE(&t, strstr(out, c->has[i]) != NULL,
		    "%s: summary lacks '%s': %s", c->what, c->has[i], out);
	for (i = 0; i < H_NELEM(c->lacks) && c->lacks[i] != NULL; i++)
		REQUIRE(&t, strstr(out, c->lacks[i]) == NULL,
		    "%s: summary has '%s': %s", c->what, c->lacks[i], out);
out:
	scratch_cleanup(&s);
	ck_assert_msg(!t.failed, "%s", t.msg);
}
END_TEST

START_TEST(test_builtin_defaults)
{
	const char *argv[] = { "echod", "-t", NULL };
	char out[OUT_MAX];
	int st;

	if (default_conf_exists()) {
		fprintf(stderr, "test_builtin_defaults: skipped: %s exists\n",
		    CONF_DEFAULT_PATH);
		return;
	}
	st = h_run(argv, out, sizeof(out), RUN_MS);
	ck_assert_msg(cl_exited_with(st, 0), "wait status %#x: %s", st, out);
#define DEFAULTS_OK "echod: built-in defaults: configuration OK: "
	ck_assert_msg(strncmp(out, DEFAULTS_OK, strlen(DEFAULTS_OK)) == 0,
	    "output: %s", out);
	ck_assert_msg(strstr(out, "listen " CONF_DEFAULT_LISTEN ",") != NULL,
	    "output: %s", out);
}
END_TEST

/* ---- -t with a bad file: 78 and FILE:LINE ---- */

#define H "# echod test\nlisten = { \"127.0.0.1:0\" }\n" /* 2 lines */
#define HW "# echod test\nworkers = 1\n"                 /* 2 lines */
#define ELF "\x7f" "ELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x03\0>\0"

struct bad_case {
	const char *text;
	size_t len; /* 0: strlen(text) */
	int line_min, line_max;
	const char *needle[3];
};

static const struct bad_case bad_cases[] = {
	/* unknown options */
	{ H "bogus = 1\n", 0, 3, 3, { "bogus", "allowed:" } },
	{ H "worker = 2\n", 0, 3, 3, { "worker", "allowed:" } },
	{ H "Workers = 2\n", 0, 3, 3, { "Workers" } },
	/* wrong types */
	{ H "workers = \"two\"\n", 0, 3, 3, { "workers", "allowed:" } },
	{ H "workers = 2.5\n", 0, 3, 3, { "workers", "allowed:" } },
	{ H "workers = 0x10\n", 0, 3, 3, { "workers", "allowed:" } },
	{ H "max_connections = yes\n", 0, 3, 3, { "max_connections" } },
	{ H "backlog = {1, 2}\n", 0, 3, 3, { "syntax", "'{'" } },
	{ H "idle_timeout = 10s\n", 0, 3, 3, { "idle_timeout" } },
	{ HW "listen = 7007\n", 0, 3, 3, { "listen" } },
	/* numbers out of range */
	{ H "workers = 0\n", 0, 3, 3, { "workers", "allowed: 1..256" } },
	{ H "workers = -1\n", 0, 3, 3, { "workers", "allowed:" } },
	{ H "workers = 257\n", 0, 3, 3, { "workers", "allowed:" } },
	{ H "workers = 99999999999999999999999\n", 0, 3, 3,
	    { "workers", "allowed:" } },
	{ H "max_connections = 0\n", 0, 3, 3,
	    { "max_connections", "allowed:" } },
	{ H "max_connections = -5\n", 0, 3, 3,
	    { "max_connections", "allowed:" } },
	{ H "max_connections = 1000001\n", 0, 3, 3,
	    { "max_connections", "allowed:" } },
	{ H "backlog = 0\n", 0, 3, 3, { "backlog", "allowed:" } },
	{ H "backlog = -1\n", 0, 3, 3, { "backlog", "allowed:" } },
	{ H "backlog = 65536\n", 0, 3, 3, { "backlog", "allowed:" } },
	{ H "idle_timeout = -1\n", 0, 3, 3, { "idle_timeout", "allowed:" } },
	{ H "idle_timeout = 86401\n", 0, 3, 3,
	    { "idle_timeout", "allowed:" } },
	{ H "shutdown_timeout = -1\n", 0, 3, 3,
	    { "shutdown_timeout", "allowed:" } },
	{ H "shutdown_timeout = 3601\n", 0, 3, 3,
	    { "shutdown_timeout", "allowed:" } },
	{ H "shutdown_timeout = 4294967296\n", 0, 3, 3,
	    { "shutdown_timeout", "allowed:" } },
	/* listen */
	{ HW "listen = { \"nonsense\" }\n", 0, 3, 3,
	    { "listen", "nonsense" } },
	{ HW "listen = { \"localhost:7007\" }\n", 0, 3, 3,
	    { "listen", "localhost" } },
	{ HW "listen = { \"127.0.0.1:70000\" }\n", 0, 3, 3,
	    { "listen", "70000" } },
	{ HW "listen = { \"127.0.0.1:7007\", \"127.0.0.1:7007\" }\n", 0, 3,
	    3, { "listen", "twice" } },
	{ HW "listen = {\n  \"127.0.0.1:7007\",\n  \"bad\"\n}\n", 0, 5, 5,
	    { "listen", "bad" } },
	{ HW "listen = {}\n", 0, 3, 3, { "listen", "empty" } },
	/* log_level */
	{ H "log_level = loud\n", 0, 3, 3, { "log_level", "allowed:" } },
	{ H "log_level = 3\n", 0, 3, 3, { "log_level", "allowed:" } },
	{ H "log_level = \"\"\n", 0, 3, 3, { "log_level", "allowed:" } },
	/* given twice */
	{ H "workers = 1\nworkers = 2\n", 0, 4, 4, { "workers", "twice" } },
	{ H "listen = { \"127.0.0.1:1\" }\n", 0, 3, 3, { "listen", "twice" } },
	/* syntax */
	{ H "workers = = 2\n", 0, 3, 3, { "syntax" } },
	{ H "workers 2\n", 0, 3, 3, { "syntax", "workers" } },
	{ H "}\n", 0, 3, 3, { "syntax" } },
	/* truncated files */
	{ HW "listen = { \"127.0.0.1:0\",\n", 0, 3, 4, { "end of file" } },
	{ HW "listen = { \"127.0.0.1:0\"", 0, 3, 3, { "end of file" } },
	{ H "workers =\n", 0, 3, 4, { "end of file" } },
	{ H "log_level = \"info\n", 0, 3, 4, { "never closed" } },
	/* binary garbage */
	{ ELF, sizeof(ELF) - 1, 1, 1, { "NUL" } },
	{ H "\x01\x02\x03\x04\n", 0, 3, 3, { "no such option" } },
	{ "\xde\xad\xbe\xef \xff\xfe = \x80\x81\n", 0, 1, 1,
	    { "no such option" } },
	{ H "workers = 2\0\n", sizeof(H "workers = 2\0\n") - 1, 3, 3,
	    { "NUL" } },
	/* include */
	{ H "include(\"nope.conf\")\n", 0, 3, 3, { "nope.conf" } },
};

/* LINE of an "echod: PATH:LINE: ..." message, or -1 if not that shape. */
static int
msg_line(const char *out, const char *path)
{
	size_t n = strlen(path);
	char *end;
	long line;

	if (strncmp(out, "echod: ", 7) != 0 || strncmp(out + 7, path, n) != 0 ||
	    out[7 + n] != ':')
		return -1;
	line = strtol(out + 8 + n, &end, 10);
	if (end == out + 8 + n || strncmp(end, ": ", 2) != 0)
		return -1;
	return (int)line;
}

START_TEST(test_bad)
{
	const struct bad_case *c = &bad_cases[_i];
	struct scratch s;
	struct tres t = { 0, "" };
	const char *argv[] = { "echod", "-t", "-c", NULL, NULL };
	char out[OUT_MAX];
	size_t len = c->len ? c->len : strlen(c->text);
	int st, line, i;

	REQUIRE(&t, scratch_run(&s, c->text, len, argv, 3, out, sizeof(out),
	    &st) == 0, "scratch file: %s", strerror(errno));
	REQUIRE(&t, cl_exited_with(st, ECHOD_EXIT_CONFIG),
	    "case %d: wait status %#x, want exit 78; output: %s", _i, st, out);
	line = msg_line(out, s.path);
	REQUIRE(&t, line >= c->line_min && line <= c->line_max,
	    "case %d: want 'echod: %s:%d: ...', got: %s", _i, s.path,
	    c->line_min, out);
	REQUIRE(&t, count_lines(out) == 1, "case %d: not one line: %s", _i,
	    out);
	REQUIRE(&t, strstr(out, "configuration OK") == NULL, "case %d: %s",
	    _i, out);
	for (i = 0; i < 3 && c->needle[i] != NULL; i++)
		REQUIRE(&t, strstr(out, c->needle[i]) != NULL,
		    "case %d: message lacks '%s': %s", _i, c->needle[i], out);
out:
	scratch_cleanup(&s);
	ck_assert_msg(!t.failed, "%s", t.msg);
}
END_TEST

START_TEST(test_missing_file)
{
	const char *argv[] = { "echod", "-t", "-c", "/nonexistent/echod.conf",
		NULL };
	char out[OUT_MAX];
	int st;

	st = h_run(argv, out, sizeof(out), RUN_MS);
	ck_assert_msg(cl_exited_with(st, ECHOD_EXIT_CONFIG),
	    "wait status %#x: %s", st, out);
#define MISSING "echod: /nonexistent/echod.conf: "
	ck_assert_msg(strncmp(out, MISSING, strlen(MISSING)) == 0 &&
	    strstr(out, strerror(ENOENT)) != NULL, "output: %s", out);
}
END_TEST

START_TEST(test_directory)
{
	struct scratch s;
	struct tres t = { 0, "" };
	const char *argv[] = { "echod", "-t", "-c", NULL, NULL };
	char out[OUT_MAX];
	int st;

	REQUIRE(&t, scratch_init(&s) == 0, "mkdtemp: %s", strerror(errno));
	argv[3] = s.dir;
	st = h_run(argv, out, sizeof(out), RUN_MS);
	REQUIRE(&t, cl_exited_with(st, ECHOD_EXIT_CONFIG),
	    "wait status %#x: %s", st, out);
	REQUIRE(&t, strncmp(out, "echod: ", 7) == 0 &&
	    strstr(out, s.dir) != NULL && strstr(out, strerror(EISDIR)) !=
	    NULL, "output: %s", out);
out:
	scratch_cleanup(&s);
	ck_assert_msg(!t.failed, "%s", t.msg);
}
END_TEST

/* ---- a bad file without -t: 78, nothing left listening ---- */

START_TEST(bad_conf_nothing_listens)
{
	struct scratch s;
	struct tres t = { 0, "" };
	const char *argv[] = { "echod", "-c", NULL, NULL };
	char out[OUT_MAX], text[256], want[192];
	int st, port;

	REQUIRE(&t, scratch_init(&s) == 0, "mkdtemp: %s", strerror(errno));
	REQUIRE(&t, (port = cl_free_port()) > 0, "no free port");
	snprintf(text, sizeof(text), "listen = { \"127.0.0.1:%d\" }\n"
	    "workers = 1\nbacklog = 0\n", port);
	REQUIRE(&t, scratch_write(&s, text, strlen(text)) == 0, "write");
	argv[2] = s.path;
	st = h_run(argv, out, sizeof(out), RUN_MS);
	REQUIRE(&t, cl_exited_with(st, ECHOD_EXIT_CONFIG),
	    "wait status %#x: %s", st, out);
	snprintf(want, sizeof(want), "echod: %s:3: backlog", s.path);
	REQUIRE(&t, strncmp(out, want, strlen(want)) == 0, "output: %s", out);
	REQUIRE(&t, cl_port_refused(port), "127.0.0.1:%d is not refused",
	    port);
out:
	scratch_cleanup(&s);
	ck_assert_msg(!t.failed, "%s", t.msg);
}
END_TEST

/* ---- a port in use: 71 ---- */

START_TEST(port_in_use)
{
	const char *argv[] = { "echod", "-w", "1", "-l", NULL, "-l", NULL,
		NULL };
	char out[OUT_MAX], a1[32], a2[32], want[128];
	int fd, busy, freep, st;

	fd = cl_listen_lo(&busy);
	ck_assert_msg(fd != -1, "listen: %s", strerror(errno));
	freep = cl_free_port();
	snprintf(a1, sizeof(a1), "127.0.0.1:%d", freep);
	snprintf(a2, sizeof(a2), "127.0.0.1:%d", busy);
	argv[4] = a1;
	argv[6] = a2;
	st = h_run(argv, out, sizeof(out), RUN_MS);
	close(fd);
	ck_assert_msg(cl_exited_with(st, ECHOD_EXIT_OSERR),
	    "wait status %#x, want exit 71: %s", st, out);
	snprintf(want, sizeof(want), "cannot listen on 127.0.0.1:%d: %s",
	    busy, strerror(EADDRINUSE));
	ck_assert_msg(strstr(out, want) != NULL, "output lacks '%s': %s",
	    want, out);
	ck_assert_msg(freep > 0 && cl_port_refused(freep),
	    "the first listener (port %d) outlived the failure", freep);
}
END_TEST

/* ---- daemons ---- */

START_TEST(builtin_defaults_run)
{
	static const char *const args[] = { "-l", "127.0.0.1:0", "-w", "1",
		NULL };
	struct echod_proc p;
	struct tres t = { 0, "" };
	char err[256];

	cl_proc_init(&p);
	if (default_conf_exists()) {
		fprintf(stderr, "builtin_defaults_run: skipped: %s exists\n",
		    CONF_DEFAULT_PATH);
		return;
	}
	REQUIRE(&t, h_start(&p, NULL, args, START_MS) == 0, "start failed");
	REQUIRE(&t, h_log_wait(&p, "running on built-in defaults", 1000),
	    "log lacks 'running on built-in defaults'");
	REQUIRE(&t, h_log_wait(&p, "1 worker x", 1000), "-w 1 not applied");
	REQUIRE(&t, cl_echo_new(p.port, "hi\n", 2000, err, sizeof(err)),
	    "no echo: %s", err);
	REQUIRE_STOPPED(&t, &p, 5000);
out:
	cl_conclude(&t, &p);
}
END_TEST

START_TEST(overrides_run)
{
	static const char *const args[] = { "-l", "127.0.0.1:0", "-w", "3",
		NULL };
	struct echod_proc p;
	struct tres t = { 0, "" };
	char conf[256], title[64], err[256];
	pid_t kids[16];
	int port, n, i, slots = 0;

	cl_proc_init(&p);
	REQUIRE(&t, (port = cl_free_port()) > 0, "no free port");
	snprintf(conf, sizeof(conf), "listen = { \"127.0.0.1:%d\" }\n"
	    "workers = 1\n", port);
	REQUIRE(&t, h_start(&p, conf, args, START_MS) == 0, "start failed");
	REQUIRE(&t, p.port != port, "listening on the file's port %d", port);
	REQUIRE(&t, strstr(p.ready, "3 workers") != NULL, "READY: %s",
	    p.ready);
	REQUIRE(&t, cl_port_refused(port), "the file's 127.0.0.1:%d is "
	    "listening", port);
	n = h_children(p.pid, kids, 16);
	REQUIRE(&t, n == 3, "%d worker processes, want 3", n);
	for (i = 0; i < n; i++) {
		if (pf_read_pid(kids[i], "cmdline", title, sizeof(title)) > 0 &&
		    strncmp(title, "echod: worker ", 14) == 0)
			slots |= 1 << atoi(title + 14);
	}
	REQUIRE(&t, slots == 7, "worker titles cover slots %#x, want 0-2",
	    slots);
	REQUIRE(&t, cl_echo_new(p.port, "ok?\n", 2000, err, sizeof(err)),
	    "no echo: %s", err);
	REQUIRE_STOPPED(&t, &p, 5000);
out:
	cl_conclude(&t, &p);
}
END_TEST

/* -v: debug lines even though the file says log_level = err. */
START_TEST(verbose_run)
{
	static const char *const args[] = { "-v", NULL };
	struct echod_proc p;
	struct tres t = { 0, "" };

	cl_proc_init(&p);
	REQUIRE(&t, h_start(&p, "listen = { \"127.0.0.1:0\" }\nworkers = 1\n"
	    "log_level = err\n", args, START_MS) == 0, "start failed");
	REQUIRE(&t, h_log_wait(&p, "worker 0 started, pid", 1000),
	    "no debug line with -v");
	REQUIRE_STOPPED(&t, &p, 5000);
out:
	cl_conclude(&t, &p);
}
END_TEST

Suite *
cli_suite(void)
{
	Suite *s = suite_create("cli");
	TCase *tc;

	tc = h_case(s, "options", 30, NULL);
	tcase_add_loop_test(tc, help, 0, 2);
	tcase_add_loop_test(tc, version, 0, 2);
	tcase_add_loop_test(tc, usage_error, 0, H_NELEM(usage_cases));
	tcase_add_test(tc, too_many_listen);

	tc = h_case(s, "config", 30, H_TESTS(test_builtin_defaults));
	tcase_add_loop_test(tc, test_good, 0, H_NELEM(ok_cases));
	tcase_add_loop_test(tc, test_bad, 0, H_NELEM(bad_cases));
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_directory);
	tcase_add_test(tc, bad_conf_nothing_listens);
	tcase_add_test(tc, port_in_use);

	h_case(s, "run", 30, H_TESTS(builtin_defaults_run, overrides_run,
	    verbose_run));
	return s;
}
