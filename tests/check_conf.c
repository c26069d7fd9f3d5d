/*
 * check_conf: the configuration file and its error messages.
 *
 * Each case writes its files into a fresh mkdtemp() directory under /tmp,
 * loads, and removes them again before asserting anything, so a failing
 * case leaves nothing behind.  Invalid files must be refused with one
 * printable line that starts with "FILE:LINE: ".
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "listener.h"
#include "log.h"
#include "settings.h"
#include "harness.h"
#include "suites.h"

#define MAIN "echod.conf"
#define INC "inc.conf"
#define ALLOWED_OPTS                                                       \
	"allowed: listen, workers, max_connections, backlog, idle_timeout, " \
	"shutdown_timeout, log_level, worker_timeout, user, group, "       \
	"allow_root, pidfile, max_connection_time, max_connections_per_ip, " \
	"max_connection_rate_per_ip, limits_exempt_loopback, sandbox, "    \
	"model, threads, proxy_listen, proxy_trusted, proxy_timeout, "     \
	"metrics_listen, include(\"FILE\")"

/*
 * Names every Linux system has: root (uid 0, gid 0) and nobody.  The
 * others must not exist.
 */
#define NO_USER "echod-no-such-user"
#define NO_GROUP "echod-no-such-group"
#define NAME63                                                             \
	"u23456789012345678901234567890123456789012345678901234567890123"
#define NAME64 NAME63 "4"
#define ROOT_ALLOWED "allowed: an unprivileged user, or allow_root = true"
#define GROUP_ALLOWED                                                      \
	"allowed: an existing group name, or \"\" for the user's primary group"
#define PIDFILE_ALLOWED "allowed: an absolute file name such as /run/echod.pid"
#define BOOL_ALLOWED "allowed: true, false, yes, no, on, off"
#define SANDBOX_ALLOWED                                                    \
	"allowed: on, off, try (true, yes, false, no: as on, off)"

struct tmpconf {
	char dir[64];
	char path[128];
};

static void
write_file(const char *dir, const char *name, const char *data, size_t len)
{
	char path[256];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fp = fopen(path, "w");
	ck_assert_msg(fp != NULL, "%s: %s", path, strerror(errno));
	ck_assert_uint_eq(fwrite(data, 1, len, fp), len);
	ck_assert_int_eq(fclose(fp), 0);
}

static void
remove_files(const struct tmpconf *t)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", t->dir, INC);
	unlink(path);
	unlink(t->path);
	rmdir(t->dir);
}

/*
 * Write MAIN (len bytes, or a string when len is 0) and optionally INC
 * into a new directory, load MAIN into c, remove both.
 */
static int
load_text(struct tmpconf *t, const char *text, size_t len, const char *inc,
    struct conf *c, char *err, size_t errlen)
{
	int rc;

	snprintf(t->dir, sizeof(t->dir), "/tmp/echod-conf-XXXXXX");
	ck_assert_msg(mkdtemp(t->dir) != NULL, "mkdtemp: %s", strerror(errno));
	snprintf(t->path, sizeof(t->path), "%s/%s", t->dir, MAIN);
	write_file(t->dir, MAIN, text, len > 0 ? len : strlen(text));
	if (inc != NULL)
		write_file(t->dir, INC, inc, strlen(inc));
	rc = conf_load(c, t->path, err, errlen);
	remove_files(t);
	return rc;
}

/* One line of printable text: what a journal line or a terminal wants. */
static void
assert_one_line(const char *err)
{
	const unsigned char *p;

	ck_assert_msg(err[0] != '\0', "empty error message");
	for (p = (const unsigned char *)err; *p != '\0'; p++)
		ck_assert_msg(*p >= 0x20 && *p < 0x7f,
		    "unprintable byte 0x%02x in '%s'", *p, err);
}

/* --- invalid files ---------------------------------------------------- */

/* An ELF header's first bytes after a good line: NUL, 0xff, controls. */
#define GARBAGE "workers = 2\n\x7f" "ELF\x02\x01\x01\x00\x00\xff\xfe\n"

struct bad_case {
	const char *text;
	size_t len;       /* 0: text is a string */
	const char *inc;  /* INC's content, or NULL */
	const char *file; /* the file named in the message */
	int line;         /* 0: the message names no line */
	const char *want; /* a substring of the message */
};

static const struct bad_case bad_cases[] = {
	/* workers */
	{ "workers = 0\n", 0, NULL, MAIN, 1,
	    "workers: 0 is out of range; allowed: 1..256 or auto" },
	{ "\nworkers = -1\n", 0, NULL, MAIN, 2, "workers: -1 is out of range" },
	{ "workers = 257\n", 0, NULL, MAIN, 1, "workers: 257 is out of range" },
	{ "workers = many\n", 0, NULL, MAIN, 1,
	    "workers: 'many' is not a number; allowed: 1..256 or auto" },
	{ "workers = \"many\"\n", 0, NULL, MAIN, 1,
	    "workers: 'many' is not a number" },
	{ "workers = 1.5\n", 0, NULL, MAIN, 1, "workers: '1.5' is not a number" },
	{ "workers = \"\"\n", 0, NULL, MAIN, 1, "workers: '' is not a number" },
	{ "workers = 0x10\n", 0, NULL, MAIN, 1, "workers: '0x10' is not a number" },
	{ "workers = \" 4\"\n", 0, NULL, MAIN, 1, "workers: ' 4' is not a number" },
	{ "workers = 99999999999999999999\n", 0, NULL, MAIN, 1,
	    "workers: 99999999999999999999 is out of range" },
	{ "workers = -99999999999999999999\n", 0, NULL, MAIN, 1,
	    "workers: -99999999999999999999 is out of range" },
	{ "workers = AUTO\n", 0, NULL, MAIN, 1, "workers: 'AUTO' is not a number" },
	/* max_connections */
	{ "max_connections = 0\n", 0, NULL, MAIN, 1,
	    "max_connections: 0 is out of range; allowed: 1..1000000" },
	{ "max_connections = 1000001\n", 0, NULL, MAIN, 1,
	    "max_connections: 1000001 is out of range" },
	{ "max_connections = lots\n", 0, NULL, MAIN, 1,
	    "max_connections: 'lots' is not a number" },
	/* backlog */
	{ "backlog = 0\n", 0, NULL, MAIN, 1,
	    "backlog: 0 is out of range; allowed: 1..65535" },
	{ "backlog = 65536\n", 0, NULL, MAIN, 1, "backlog: 65536 is out of range" },
	{ "backlog = 1.5\n", 0, NULL, MAIN, 1, "backlog: '1.5' is not a number" },
	{ "backlog = 99999999999999999999\n", 0, NULL, MAIN, 1,
	    "backlog: 99999999999999999999 is out of range" },
	/* idle_timeout */
	{ "idle_timeout = -1\n", 0, NULL, MAIN, 1,
	    "idle_timeout: -1 is out of range; allowed: 0..86400 seconds" },
	{ "idle_timeout = 86401\n", 0, NULL, MAIN, 1,
	    "idle_timeout: 86401 is out of range" },
	{ "idle_timeout = yes\n", 0, NULL, MAIN, 1,
	    "idle_timeout: 'yes' is not a number" },
	{ "idle_timeout = 5s\n", 0, NULL, MAIN, 1,
	    "idle_timeout: '5s' is not a number" },
	/* shutdown_timeout */
	{ "shutdown_timeout = -1\n", 0, NULL, MAIN, 1,
	    "shutdown_timeout: -1 is out of range; allowed: 0..3600 seconds" },
	{ "shutdown_timeout = 3601\n", 0, NULL, MAIN, 1,
	    "shutdown_timeout: 3601 is out of range" },
	{ "shutdown_timeout = 1e3\n", 0, NULL, MAIN, 1,
	    "shutdown_timeout: '1e3' is not a number" },
	/* log_level */
	{ "log_level = verbose\n", 0, NULL, MAIN, 1,
	    "log_level: 'verbose' is not a level; allowed: debug, info, "
	    "notice, warning, err" },
	{ "log_level = 7\n", 0, NULL, MAIN, 1, "log_level: '7' is not a level" },
	{ "log_level = \"\"\n", 0, NULL, MAIN, 1, "log_level: '' is not a level" },
	/* worker_timeout */
	{ "worker_timeout = -1\n", 0, NULL, MAIN, 1,
	    "worker_timeout: -1 is out of range; allowed: 0..3600 seconds, "
	    "0 = never" },
	{ "\nworker_timeout = 3601\n", 0, NULL, MAIN, 2,
	    "worker_timeout: 3601 is out of range" },
	{ "worker_timeout = never\n", 0, NULL, MAIN, 1,
	    "worker_timeout: 'never' is not a number; allowed: 0..3600" },
	{ "worker_timeout = 30s\n", 0, NULL, MAIN, 1,
	    "worker_timeout: '30s' is not a number" },
	{ "worker_timeout = \"\"\n", 0, NULL, MAIN, 1,
	    "worker_timeout: '' is not a number" },
	{ "worker_timeout = 0x10\n", 0, NULL, MAIN, 1,
	    "worker_timeout: '0x10' is not a number" },
	{ "worker_timeout = 5\nworker_timeout = 5\n", 0, NULL, MAIN, 2,
	    "worker_timeout: given twice (first at " },
	/* user */
	{ "\nuser = " NO_USER "\n", 0, NULL, MAIN, 2,
	    "user: '" NO_USER "' does not exist; allowed: an existing user "
	    "name" },
	{ "user = \"\"\n", 0, NULL, MAIN, 1,
	    "user: the name is empty; allowed: an existing user name" },
	{ "user = 0\n", 0, NULL, MAIN, 1, "user: '0' does not exist" },
	{ "user = Root\n", 0, NULL, MAIN, 1, "user: 'Root' does not exist" },
	{ "user = \" root\"\n", 0, NULL, MAIN, 1,
	    "user: ' root' does not exist" },
	{ "user = " NAME63 "\n", 0, NULL, MAIN, 1,
	    "user: '" NAME63 "' does not exist" },
	{ "user = " NAME64 "\n", 0, NULL, MAIN, 1,
	    "user: '" NAME64 "' is too long (64 bytes, at most 63); allowed: "
	    "an existing user name" },
	{ "user = { nobody }\n", 0, NULL, MAIN, 1,
	    "syntax error: unexpected token '{'" },
	{ "user += nobody\n", 0, NULL, MAIN, 1,
	    "syntax error: attempt to append to non-list option 'user'" },
	{ "user = nobody\n\nuser = nobody\n", 0, NULL, MAIN, 3,
	    "user: given twice (first at " },
	/* user: uid 0 needs allow_root = true, wherever it is */
	{ "user = root\n", 0, NULL, MAIN, 1,
	    "user: 'root' is uid 0; " ROOT_ALLOWED },
	{ "user = root\nallow_root = false\n", 0, NULL, MAIN, 1,
	    "user: 'root' is uid 0; " ROOT_ALLOWED },
	{ "allow_root = no\n\nuser = \"root\"\nworkers = 2\n", 0, NULL, MAIN,
	    3, "user: 'root' is uid 0; " ROOT_ALLOWED },
	{ "workers = 2\ninclude(\"inc.conf\")\n", 0, "# x\nuser = root\n", INC,
	    2, "user: 'root' is uid 0; " ROOT_ALLOWED " (included from " },
	{ "user = root\nallow_root = maybe\n", 0, NULL, MAIN, 2,
	    "allow_root: 'maybe' is not a boolean" },
	/* group */
	{ "group = " NO_GROUP "\n", 0, NULL, MAIN, 1,
	    "group: '" NO_GROUP "' does not exist; " GROUP_ALLOWED },
	{ "group = " NAME64 "\n", 0, NULL, MAIN, 1,
	    "group: '" NAME64 "' is too long (64 bytes, at most 63); "
	    GROUP_ALLOWED },
	{ "group = " NAME63 "\n", 0, NULL, MAIN, 1,
	    "group: '" NAME63 "' does not exist" },
	{ "group = root\ngroup = \"\"\n", 0, NULL, MAIN, 2,
	    "group: given twice (first at " },
	{ "group = { root }\n", 0, NULL, MAIN, 1,
	    "syntax error: unexpected token '{'" },
	/* allow_root */
	{ "allow_root = maybe\n", 0, NULL, MAIN, 1,
	    "allow_root: 'maybe' is not a boolean; allowed: true, false, yes, "
	    "no, on, off" },
	{ "allow_root = 1\n", 0, NULL, MAIN, 1,
	    "allow_root: '1' is not a boolean" },
	{ "allow_root = \"\"\n", 0, NULL, MAIN, 1,
	    "allow_root: '' is not a boolean" },
	{ "allow_root = yes\nallow_root = yes\n", 0, NULL, MAIN, 2,
	    "allow_root: given twice (first at " },
	/* pidfile */
	{ "pidfile = \"\"\n", 0, NULL, MAIN, 1,
	    "pidfile: the name is empty; " PIDFILE_ALLOWED },
	{ "pidfile = echod.pid\n", 0, NULL, MAIN, 1,
	    "pidfile: 'echod.pid' is not an absolute path; " PIDFILE_ALLOWED },
	{ "pidfile = \"./echod.pid\"\n", 0, NULL, MAIN, 1,
	    "pidfile: './echod.pid' is not an absolute path" },
	{ "pidfile = 7\n", 0, NULL, MAIN, 1,
	    "pidfile: '7' is not an absolute path" },
	{ "pidfile = \"/run/\"\n", 0, NULL, MAIN, 1,
	    "pidfile: '/run/' names a directory; " PIDFILE_ALLOWED },
	{ "pidfile = \"/run/a\\tb.pid\"\n", 0, NULL, MAIN, 1,
	    "pidfile: '/run/a?b.pid' has a control character" },
	{ "pidfile = \"/run/\\01\\x0a\\x0b.pid\"\n", 0, NULL, MAIN, 1,
	    "pidfile: '/run/???.pid' has a control character" },
	{ "pidfile = { \"/run/a.pid\" }\n", 0, NULL, MAIN, 1,
	    "syntax error: unexpected token '{'" },
	{ "pidfile = /a.pid\npidfile = /b.pid\n", 0, NULL, MAIN, 2,
	    "pidfile: given twice (first at " },
	/* a NUL escape would cut a string short without a word */
	{ "workers = 2\npidfile = \"/run/echod\\0.pid\"\n", 0, NULL, MAIN, 2,
	    "'\\0' in a string is a NUL byte; allowed: text" },
	{ "pidfile = \"/run/echod\\000\"\n", 0, NULL, MAIN, 1,
	    "'\\000' in a string is a NUL byte" },
	{ "pidfile = \"/run/echod\\x00.pid\"\n", 0, NULL, MAIN, 1,
	    "'\\x00' in a string is a NUL byte" },
	{ "pidfile = \"/run/echod\\x0\"\n", 0, NULL, MAIN, 1,
	    "'\\x0' in a string is a NUL byte" },
	{ "listen = {\n\"127.0.0.1:7\\x00junk\" }\n", 0, NULL, MAIN, 2,
	    "'\\x00' in a string is a NUL byte" },
	{ "include(\"inc.conf\")\n", 0, "\nuser = \"nobody\\0\"\n", INC, 2,
	    "'\\0' in a string is a NUL byte" },
	/* max_connection_time */
	{ "max_connection_time = -1\n", 0, NULL, MAIN, 1,
	    "max_connection_time: -1 is out of range; allowed: 0..604800 "
	    "seconds, 0 = no limit" },
	{ "\nmax_connection_time = 604801\n", 0, NULL, MAIN, 2,
	    "max_connection_time: 604801 is out of range" },
	{ "max_connection_time = 1h\n", 0, NULL, MAIN, 1,
	    "max_connection_time: '1h' is not a number; allowed: 0..604800" },
	{ "max_connection_time = 1.5\n", 0, NULL, MAIN, 1,
	    "max_connection_time: '1.5' is not a number" },
	{ "max_connection_time = 99999999999999999999\n", 0, NULL, MAIN, 1,
	    "max_connection_time: 99999999999999999999 is out of range" },
	{ "max_connection_time = 5\nmax_connection_time = 5\n", 0, NULL,
	    MAIN, 2, "max_connection_time: given twice (first at " },
	/* max_connections_per_ip */
	{ "max_connections_per_ip = -1\n", 0, NULL, MAIN, 1,
	    "max_connections_per_ip: -1 is out of range; allowed: "
	    "0..1000000, 0 = no limit" },
	{ "max_connections_per_ip = 1000001\n", 0, NULL, MAIN, 1,
	    "max_connections_per_ip: 1000001 is out of range" },
	{ "max_connections_per_ip = many\n", 0, NULL, MAIN, 1,
	    "max_connections_per_ip: 'many' is not a number" },
	{ "max_connections_per_ip = \"\"\n", 0, NULL, MAIN, 1,
	    "max_connections_per_ip: '' is not a number" },
	/* max_connection_rate_per_ip */
	{ "max_connection_rate_per_ip = -5\n", 0, NULL, MAIN, 1,
	    "max_connection_rate_per_ip: -5 is out of range; allowed: "
	    "0..1000000 new connections a second, 0 = no limit" },
	{ "max_connection_rate_per_ip = 1000001\n", 0, NULL, MAIN, 1,
	    "max_connection_rate_per_ip: 1000001 is out of range" },
	{ "max_connection_rate_per_ip = 10/s\n", 0, NULL, MAIN, 1,
	    "max_connection_rate_per_ip: '10/s' is not a number" },
	{ "workers = 2\ninclude(\"inc.conf\")\n", 0,
	    "\nmax_connection_rate_per_ip = 0x10\n", INC, 2,
	    "max_connection_rate_per_ip: '0x10' is not a number" },
	/* limits_exempt_loopback, sandbox */
	{ "limits_exempt_loopback = maybe\n", 0, NULL, MAIN, 1,
	    "limits_exempt_loopback: 'maybe' is not a boolean; " BOOL_ALLOWED },
	{ "limits_exempt_loopback = 1\n", 0, NULL, MAIN, 1,
	    "limits_exempt_loopback: '1' is not a boolean" },
	{ "limits_exempt_loopback = no\nlimits_exempt_loopback = no\n", 0,
	    NULL, MAIN, 2, "limits_exempt_loopback: given twice (first at " },
	{ "sandbox = strict\n", 0, NULL, MAIN, 1,
	    "sandbox: 'strict' is not a boolean or try; " SANDBOX_ALLOWED },
	{ "sandbox = 0\n", 0, NULL, MAIN, 1,
	    "sandbox: '0' is not a boolean or try" },
	{ "sandbox = 2\n", 0, NULL, MAIN, 1,
	    "sandbox: '2' is not a boolean or try" },
	{ "sandbox = \"\"\n", 0, NULL, MAIN, 1,
	    "sandbox: '' is not a boolean or try" },
	{ "sandbox = trying\n", 0, NULL, MAIN, 1,
	    "sandbox: 'trying' is not a boolean or try" },
	{ "sandbox = on\n\nsandbox = off\n", 0, NULL, MAIN, 3,
	    "sandbox: given twice (first at " },
	{ "sandbox = { on }\n", 0, NULL, MAIN, 1,
	    "syntax error: unexpected token '{'" },
	/* listen */
	{ "# c\nlisten = \"1.2.3.4:99999\"\n", 0, NULL, MAIN, 2,
	    "listen: '1.2.3.4:99999': port '99999'" },
	{ "listen = {\n\"127.0.0.1:1\",\n\"localhost:7007\" }\n", 0, NULL, MAIN,
	    3, "listen: 'localhost:7007': 'localhost' is not a numeric" },
	{ "listen = \"7007\"\n", 0, NULL, MAIN, 1, "listen: '7007': expected" },
	{ "listen = \"\"\n", 0, NULL, MAIN, 1, "listen: '': expected" },
	{ "listen = {\"1.1.1.1:1\", \"1.1.1.1:1\"}\n", 0, NULL, MAIN, 1,
	    "listen: '1.1.1.1:1' is given twice" },
	{ "listen = {\"[::1]:7\",\n\"[0::1]:07\"}\n", 0, NULL, MAIN, 2,
	    "listen: '[0::1]:07' is the same address as '[::1]:7'" },
	/* defect 14: a wildcard and an address on the same port */
	{ "listen = {\"127.0.0.1:7\",\n\"*:7\"}\n", 0, NULL, MAIN, 2,
	    "listen: '*:7' overlaps '127.0.0.1:7': a wildcard takes the port "
	    "on every address (\"*\" of both families), so the second cannot "
	    "listen; allowed: one of them" },
	{ "listen = {\"[::]:7\", \"[::1]:7\"}\n", 0, NULL, MAIN, 1,
	    "listen: '[::1]:7' overlaps '[::]:7'" },
	/* defect 19: an IPv6-only socket cannot bind a v4-mapped address */
	{ "listen = \"[::ffff:127.0.0.1]:7\"\n", 0, NULL, MAIN, 1,
	    "is an IPv4-mapped address; write it as 127.0.0.1:7" },
	{ "listen = {\"1.1.1.1:1\",\"1.1.1.1:2\",\"1.1.1.1:3\",\"1.1.1.1:4\","
	  "\"1.1.1.1:5\",\"1.1.1.1:6\",\"1.1.1.1:7\",\"1.1.1.1:8\","
	  "\"1.1.1.1:9\",\"1.1.1.1:10\",\"1.1.1.1:11\",\"1.1.1.1:12\","
	  "\"1.1.1.1:13\",\"1.1.1.1:14\",\"1.1.1.1:15\",\"1.1.1.1:16\","
	  "\"1.1.1.1:17\"}\n", 0, NULL, MAIN, 1,
	    "listen: more than 16 addresses; allowed: 1..16" },
	/* "listen = {}" reaches no callback: the text pass finds its line. */
	{ "workers = 2\nlisten = {}\n", 0, NULL, MAIN, 2,
	    "listen: the list is empty; allowed: 1..16 addresses" },
	{ "# a comment\nlisten = {\n\t\n}\n", 0, NULL, MAIN, 2,
	    "listen: the list is empty; allowed: 1..16 addresses" },
	{ "listen = \"*:1\"\n\nlisten = \"*:2\"\n", 0, NULL, MAIN, 3,
	    "listen: given twice (first at " },
	/* repeated, unknown, misspelt */
	{ "workers = 2\nworkers = 2\n", 0, NULL, MAIN, 2,
	    "workers: given twice (first at " },
	{ "# x\n\nwrkers = 3\n", 0, NULL, MAIN, 3,
	    "no such option 'wrkers'; " ALLOWED_OPTS },
	{ "Workers = 3\n", 0, NULL, MAIN, 1, "no such option 'Workers'" },
	/* syntax */
	{ "workers 4\n", 0, NULL, MAIN, 1,
	    "syntax error: missing equal sign after option 'workers'" },
	{ "workers = 4\n}\n", 0, NULL, MAIN, 2,
	    "syntax error: unexpected closing brace" },
	{ "listen = { \"1.1.1.1:1\" \"1.1.1.1:2\" }\n", 0, NULL, MAIN, 1,
	    "syntax error: unexpected token '1.1.1.1:2'" },
	{ "backlog += 5\n", 0, NULL, MAIN, 1,
	    "syntax error: attempt to append to non-list option 'backlog'" },
	{ "=\n", 0, NULL, MAIN, 1, "syntax error: unexpected token '='" },
	/* truncated */
	{ "listen = { \"1.2.3.4:1\"", 0, NULL, MAIN, 1,
	    "syntax error: premature end of file" },
	{ "workers = 2\nbacklog =", 0, NULL, MAIN, 2,
	    "syntax error: premature end of file" },
	{ "workers = 2\ninclude(\"inc.conf\"", 0, NULL, MAIN, 2,
	    "syntax error: malformed call; allowed: include(\"FILE\")" },
	/* binary garbage: NUL bytes are refused before the scanner sees them */
	{ GARBAGE, sizeof(GARBAGE) - 1, NULL, MAIN, 2,
	    "NUL byte (a binary file?); allowed: text" },
	{ "\xff\xfe\x01\x80junk = 1\n", 0, NULL, MAIN, 1,
	    "no such option '????junk'" },
	/* comments: right line numbers after them, none inside quotes */
	{ "# a\n// b\n/* c\n d */\n#\n\n  # e\nworkers = 0\n", 0, NULL, MAIN, 8,
	    "workers: 0 is out of range" },
	{ "workers = 2 /* x */ # y\n// z\nbacklog = 0\n", 0, NULL, MAIN, 3,
	    "backlog: 0 is out of range" },
	{ "listen = {\n\"1.1.1.1:1\", # one\n\"1.1.1.1:1\" # again\n}\n", 0,
	    NULL, MAIN, 3, "listen: '1.1.1.1:1' is given twice" },
	{ "listen = \"1.2.3.4:5 # no comment\"\n", 0, NULL, MAIN, 1,
	    "listen: '1.2.3.4:5 # no comment': port" },
	{ "listen = '1.2.3.4:5 // /* no comment'\n", 0, NULL, MAIN, 1,
	    "listen: '1.2.3.4:5 // /* no comment': port" },
	{ "listen = \"1.2.3.4:\\\"#5\"\n", 0, NULL, MAIN, 1,
	    "listen: '1.2.3.4:\"#5': port" },
	{ "workers = 2\n\nlog_level = \"info\n", 0, NULL, MAIN, 3,
	    "syntax error: string never closed" },
	{ "workers = 2\n'\n", 0, NULL, MAIN, 2,
	    "syntax error: string never closed" },
	{ "workers = 2 /* to be\ncontinued\n", 0, NULL, MAIN, 1,
	    "syntax error: comment never closed" },
	/* include() */
	{ "\ninclude(\"nope.conf\")\n", 0, NULL, MAIN, 2,
	    "/nope.conf': cannot open: No such file or directory" },
	{ "include(\".\")\n", 0, NULL, MAIN, 1,
	    "cannot read: Is a directory" },
	{ "include(\"inc.conf\", \"x\")\n", 0, "", MAIN, 1,
	    "syntax error: malformed call" },
	{ "\ninclude(\"inc.conf\" \"x\")\n", 0, "", MAIN, 2,
	    "syntax error: malformed call" },
	{ "include(inc.conf x)\n", 0, "", MAIN, 1,
	    "syntax error: malformed call" },
	{ "include()\n", 0, NULL, MAIN, 1, "syntax error: malformed call" },
	{ "include(\n", 0, NULL, MAIN, 1, "syntax error: malformed call" },
	{ "include \"inc.conf\"\n", 0, "", MAIN, 1,
	    "syntax error: missing parenthesis for function 'include'" },
	{ "workers = (\n", 0, NULL, MAIN, 1, "syntax error: malformed call" },
	{ "listen = \"(\"\n", 0, NULL, MAIN, 1, "listen: '(': expected" },
	{ "include(\"echod.conf\")\n", 0, NULL, MAIN, 1,
	    "nested too deeply (a loop?); allowed: 8 levels" },
	{ "workers = 2\ninclude(\"inc.conf\")\n", 0, "# inc\nbogus = 1\n", INC,
	    2, "no such option 'bogus'" },
	{ "workers = 2\ninclude(\"inc.conf\")\n", 0, "workers = 3\n", INC, 1,
	    "workers: given twice (first at " },
	{ "include(\"inc.conf\")\nworkers = 2\n", 0, "listen = {", INC, 1,
	    "syntax error: premature end of file" },
	{ "include(\"inc.conf\")\n", 0, "# x\nlog_level = \"info\n", INC, 2,
	    "syntax error: string never closed" },
	{ "include(\"inc.conf\")\n", 0, "\n/* never closed", INC, 2,
	    "syntax error: comment never closed" },
	/*
	 * defect 20: libconfuse reads "${" in a string up to the next '}',
	 * past the quote that seems to close it: a call that looks right is
	 * malformed (libconfuse leaked its arguments).
	 */
	{ "include(\"b${ECHOD_NO_SUCH_VAR:-inc.conf\")\n"
	  "listen = { \"*:1}\" }\n", 0, NULL, MAIN, 1,
	    "syntax error: malformed call; allowed: include(\"FILE\")" },
};

START_TEST(test_bad_file)
{
	const struct bad_case *bc = &bad_cases[_i];
	struct tmpconf t;
	struct conf c;
	char err[1024], prefix[256];

	memset(&c, 0, sizeof(c));
	ck_assert_int_eq(load_text(&t, bc->text, bc->len, bc->inc, &c, err,
	    sizeof(err)), -1);
	assert_one_line(err);
	if (bc->line > 0)
		snprintf(prefix, sizeof(prefix), "%s/%s:%d: ", t.dir, bc->file,
		    bc->line);
	else
		snprintf(prefix, sizeof(prefix), "%s/%s: ", t.dir, bc->file);
	ck_assert_msg(strncmp(err, prefix, strlen(prefix)) == 0,
	    "case %d: '%s' does not start with '%s'", _i, err, prefix);
	ck_assert_msg(strstr(err, bc->want) != NULL,
	    "case %d: '%s' does not contain '%s'", _i, err, bc->want);
	if (strcmp(bc->file, INC) == 0)
		ck_assert_msg(strstr(err, "(included from ") != NULL,
		    "case %d: '%s' does not name the includer", _i, err);
	ck_assert_uint_eq(c.nlisten, 0); /* c untouched */
}
END_TEST

/* --- valid files ------------------------------------------------------ */

#define AUTO (-1)

struct good_case {
	const char *text;
	const char *inc;
	const char *listen0, *listen1; /* NULL: no such entry */
	size_t nlisten;
	int workers; /* AUTO: one per online CPU */
	int max_connections, backlog, idle_timeout, shutdown_timeout;
	int log_level;
};

#define DEFAULTS_AFTER_WORKERS                                             \
	CONF_DEFAULT_MAX_CONNECTIONS, CONF_DEFAULT_BACKLOG,                \
	    CONF_DEFAULT_IDLE_TIMEOUT, CONF_DEFAULT_SHUTDOWN_TIMEOUT,      \
	    LOG_LVL_INFO

static const struct good_case good_cases[] = {
	{ "", NULL, "*:7007", NULL, 1, AUTO, DEFAULTS_AFTER_WORKERS },
	{ "# only comments\n// and these\n/* and\n this */\n", NULL, "*:7007",
	    NULL, 1, AUTO, DEFAULTS_AFTER_WORKERS },
	{ "listen = { \"127.0.0.1:7007\", \"[::1]:7007\" }  # two\n"
	  "workers = 4\nmax_connections = 100\nbacklog = 5\n"
	  "idle_timeout = 0\nshutdown_timeout = 0\nlog_level = debug\n",
	    NULL, "127.0.0.1:7007", "[::1]:7007", 2, 4, 100, 5, 0, 0,
	    LOG_LVL_DEBUG },
	{ "listen = \"*:8000\"\nworkers = auto\n", NULL, "*:8000", NULL, 1,
	    AUTO, DEFAULTS_AFTER_WORKERS },
	{ "listen = {\n  \"0.0.0.0:1\"\n}\nworkers = \"auto\"\n", NULL,
	    "0.0.0.0:1", NULL, 1, AUTO, DEFAULTS_AFTER_WORKERS },
	{ "workers = 1\nmax_connections = 1\nbacklog = 1\n", NULL, "*:7007",
	    NULL, 1, 1, 1, 1, CONF_DEFAULT_IDLE_TIMEOUT,
	    CONF_DEFAULT_SHUTDOWN_TIMEOUT, LOG_LVL_INFO },
	{ "workers = 256\nmax_connections = 1000000\nbacklog = 65535\n"
	  "idle_timeout = 86400\nshutdown_timeout = 3600\nlog_level = err\n",
	    NULL, "*:7007", NULL, 1, 256, 1000000, 65535, 86400, 3600,
	    LOG_LVL_ERR },
	/* quoted numbers are numbers; a leading zero is not octal */
	{ "workers = \"3\"\nbacklog = 010\nlog_level = \"warning\"\n", NULL,
	    "*:7007", NULL, 1, 3, CONF_DEFAULT_MAX_CONNECTIONS, 10,
	    CONF_DEFAULT_IDLE_TIMEOUT, CONF_DEFAULT_SHUTDOWN_TIMEOUT,
	    LOG_LVL_WARNING },
	{ "workers = 2\r\nlog_level = notice\r\n", NULL, "*:7007", NULL, 1, 2,
	    CONF_DEFAULT_MAX_CONNECTIONS, CONF_DEFAULT_BACKLOG,
	    CONF_DEFAULT_IDLE_TIMEOUT, CONF_DEFAULT_SHUTDOWN_TIMEOUT,
	    LOG_LVL_NOTICE },
	/* "+=" appends to what the file said, not to the default */
	{ "listen = \"[::]:1\"\nlisten += { \"10.0.0.1:2\" }\n", NULL,
	    "[::]:1", "10.0.0.1:2", 2, AUTO, DEFAULTS_AFTER_WORKERS },
	/* include(): relative to the including file, values merge */
	{ "workers = 6\ninclude(\"inc.conf\")\nlog_level = info\n",
	    "backlog = 7\nlisten = \"127.0.0.1:9\"\n", "127.0.0.1:9", NULL, 1, 6,
	    CONF_DEFAULT_MAX_CONNECTIONS, 7, CONF_DEFAULT_IDLE_TIMEOUT,
	    CONF_DEFAULT_SHUTDOWN_TIMEOUT, LOG_LVL_INFO },
	{ "include(\"inc.conf\")\n", "", "*:7007", NULL, 1, AUTO,
	    DEFAULTS_AFTER_WORKERS },
	{ "include(\n  inc.conf  # a bare word\n)\nworkers = 2\n", "backlog = 3\n",
	    "*:7007", NULL, 1, 2, CONF_DEFAULT_MAX_CONNECTIONS, 3,
	    CONF_DEFAULT_IDLE_TIMEOUT, CONF_DEFAULT_SHUTDOWN_TIMEOUT,
	    LOG_LVL_INFO },
	/* comments between list elements, quotes holding comment marks */
	{ "listen = { # the list\n  \"127.0.0.1:1\", // first\n"
	  "  /* second: */ \"127.0.0.1:2\" # last\n}\n"
	  "log_level = \"err\" # \"quoted\" /* not closed\n", NULL,
	    "127.0.0.1:1", "127.0.0.1:2", 2, AUTO, CONF_DEFAULT_MAX_CONNECTIONS,
	    CONF_DEFAULT_BACKLOG, CONF_DEFAULT_IDLE_TIMEOUT,
	    CONF_DEFAULT_SHUTDOWN_TIMEOUT, LOG_LVL_ERR },
	{ "workers=3#no space\nbacklog=4//none\nidle_timeout=5/**/\n", NULL,
	    "*:7007", NULL, 1, 3, CONF_DEFAULT_MAX_CONNECTIONS, 4, 5,
	    CONF_DEFAULT_SHUTDOWN_TIMEOUT, LOG_LVL_INFO },
};

static void
assert_listen(const struct conf *c, const char *l0, const char *l1, size_t n)
{
	ck_assert_uint_eq(c->nlisten, n);
	if (l0 != NULL)
		ck_assert_str_eq(c->listen[0], l0);
	if (l1 != NULL)
		ck_assert_str_eq(c->listen[1], l1);
}

static void
assert_run_defaults(const struct conf *c)
{
	ck_assert_int_eq(c->worker_timeout, CONF_DEFAULT_WORKER_TIMEOUT);
	ck_assert_str_eq(c->user, CONF_DEFAULT_USER);
	ck_assert_str_eq(c->group, "");
	ck_assert(!c->allow_root);
	ck_assert_str_eq(c->pidfile, CONF_DEFAULT_PIDFILE);
}

START_TEST(test_good_file)
{
	const struct good_case *gc = &good_cases[_i];
	struct tmpconf t;
	struct conf c;
	char err[1024];

	conf_defaults(&c);
	ck_assert_msg(load_text(&t, gc->text, 0, gc->inc, &c, err,
	    sizeof(err)) == 0, "case %d: %s", _i, err);
	ck_assert_str_eq(c.path, t.path);
	assert_listen(&c, gc->listen0, gc->listen1, gc->nlisten);
	ck_assert_int_eq(c.workers_auto, gc->workers == AUTO);
	ck_assert_int_eq(c.workers,
	    gc->workers == AUTO ? conf_auto_workers() : gc->workers);
	ck_assert_int_eq(c.max_connections, gc->max_connections);
	ck_assert_int_eq(c.backlog, gc->backlog);
	ck_assert_int_eq(c.idle_timeout, gc->idle_timeout);
	ck_assert_int_eq(c.shutdown_timeout, gc->shutdown_timeout);
	ck_assert_int_eq(c.log_level, gc->log_level);
	assert_run_defaults(&c);
	conf_free(&c);
}
END_TEST

/* --- valid files: how echod runs --------------------------------------- */

struct run_case {
	const char *text;
	const char *inc;
	int worker_timeout;
	const char *user, *group;
	bool allow_root;
	const char *pidfile;
};

#define DEF_USER_GROUP CONF_DEFAULT_USER, ""

static const struct run_case run_cases[] = {
	{ "", NULL, CONF_DEFAULT_WORKER_TIMEOUT, DEF_USER_GROUP, false,
	    CONF_DEFAULT_PIDFILE },
	{ "worker_timeout = 0\n", NULL, 0, DEF_USER_GROUP, false,
	    CONF_DEFAULT_PIDFILE },
	{ "worker_timeout = 3600\nuser = nobody\ngroup = root\n"
	  "pidfile = /var/run/echod/e.pid\n", NULL, 3600, "nobody", "root",
	    false, "/var/run/echod/e.pid" },
	{ "worker_timeout = \"1\"\ngroup = \"\"\npidfile = \"/e.pid\"\n", NULL,
	    1, DEF_USER_GROUP, false, "/e.pid" },
	{ "worker_timeout = 010\n", NULL, 10, DEF_USER_GROUP, false,
	    CONF_DEFAULT_PIDFILE },
	/* root with allow_root, in either order, in libconfuse's words */
	{ "user = root\nallow_root = true\n", NULL, CONF_DEFAULT_WORKER_TIMEOUT,
	    "root", "", true, CONF_DEFAULT_PIDFILE },
	{ "allow_root = On\n\nuser = \"root\"\ngroup = root\n", NULL,
	    CONF_DEFAULT_WORKER_TIMEOUT, "root", "root", true,
	    CONF_DEFAULT_PIDFILE },
	{ "allow_root = yes\n", NULL, CONF_DEFAULT_WORKER_TIMEOUT,
	    DEF_USER_GROUP, true, CONF_DEFAULT_PIDFILE },
	{ "allow_root = off\nuser = nobody\n", NULL,
	    CONF_DEFAULT_WORKER_TIMEOUT, "nobody", "", false,
	    CONF_DEFAULT_PIDFILE },
	{ "allow_root = \"FALSE\"\n", NULL, CONF_DEFAULT_WORKER_TIMEOUT,
	    DEF_USER_GROUP, false, CONF_DEFAULT_PIDFILE },
	/* the user in an included file, allow_root after the include */
	{ "include(\"inc.conf\")\nallow_root = true\n", "user = root\n",
	    CONF_DEFAULT_WORKER_TIMEOUT, "root", "", true,
	    CONF_DEFAULT_PIDFILE },
	/* escapes that make no NUL; "${VAR:-...}" is taken literally */
	{ "pidfile = \"/run/a\\\\0.pid\"\n", NULL,
	    CONF_DEFAULT_WORKER_TIMEOUT, DEF_USER_GROUP, false,
	    "/run/a\\0.pid" },
	{ "pidfile = '/run/b\\0'\n", NULL, CONF_DEFAULT_WORKER_TIMEOUT,
	    DEF_USER_GROUP, false, "/run/b\\0" },
	{ "pidfile = \"/run/e\\x41\\101.pid\" # \"\\0\"\n", NULL,
	    CONF_DEFAULT_WORKER_TIMEOUT, DEF_USER_GROUP, false,
	    "/run/eAA.pid" },
	{ "pidfile = \"${ECHOD_NO_SUCH_VAR:-/run/x\\0y}.pid\"\n", NULL,
	    CONF_DEFAULT_WORKER_TIMEOUT, DEF_USER_GROUP, false,
	    "/run/x\\0y.pid" },
};

START_TEST(test_run_file)
{
	const struct run_case *rc = &run_cases[_i];
	struct tmpconf t;
	struct conf c;
	char err[1024];

	conf_defaults(&c);
	ck_assert_msg(load_text(&t, rc->text, 0, rc->inc, &c, err,
	    sizeof(err)) == 0, "case %d: %s", _i, err);
	ck_assert_int_eq(c.worker_timeout, rc->worker_timeout);
	ck_assert_str_eq(c.user, rc->user);
	ck_assert_str_eq(c.group, rc->group);
	ck_assert_int_eq(c.allow_root, rc->allow_root);
	ck_assert_str_eq(c.pidfile, rc->pidfile);
	ck_assert_int_eq(c.backlog, CONF_DEFAULT_BACKLOG); /* untouched */
	conf_free(&c);
}
END_TEST

/* --- valid files: limits and protection ------------------------------ */

struct limit_case {
	const char *text;
	const char *inc;
	int max_connection_time, per_ip, rate_per_ip;
	bool exempt;
	int sandbox;
};

#define ON CONF_SANDBOX_ON
#define OFF CONF_SANDBOX_OFF

static const struct limit_case limit_cases[] = {
	/* the defaults: no limits, the sandbox on */
	{ "", NULL, 0, 0, 0, false, ON },
	{ "workers = 2\n", NULL, 0, 0, 0, false, ON },
	{ "max_connection_time = 0\nmax_connections_per_ip = 0\n"
	  "max_connection_rate_per_ip = 0\nlimits_exempt_loopback = false\n"
	  "sandbox = true\n", NULL, 0, 0, 0, false, ON },
	/* the smallest and the largest limits */
	{ "max_connection_time = 1\nmax_connections_per_ip = 1\n"
	  "max_connection_rate_per_ip = 1\n", NULL, 1, 1, 1, false, ON },
	{ "max_connection_time = 604800\nmax_connections_per_ip = 1000000\n"
	  "max_connection_rate_per_ip = 1000000\n", NULL, 604800, 1000000,
	    1000000, false, ON },
	/* quoted numbers, a leading zero (not octal), libconfuse's booleans */
	{ "max_connection_time = \"60\"\nmax_connections_per_ip = 010\n"
	  "limits_exempt_loopback = Yes\nsandbox = off\n", NULL, 60, 10, 0,
	    true, OFF },
	{ "limits_exempt_loopback = on\nsandbox = no\n", NULL, 0, 0, 0, true,
	    OFF },
	/* sandbox = try, in any case, quoted or not */
	{ "sandbox = try\n", NULL, 0, 0, 0, false, CONF_SANDBOX_TRY },
	{ "sandbox = \"Try\"\n", NULL, 0, 0, 0, false, CONF_SANDBOX_TRY },
	{ "sandbox = ON\n", NULL, 0, 0, 0, false, ON },
	{ "limits_exempt_loopback = \"true\"\nsandbox = \"on\"\n", NULL, 0,
	    0, 0, true, ON },
	/* from an included file, merged with the including one */
	{ "max_connections_per_ip = 3\ninclude(\"inc.conf\")\n",
	  "max_connection_rate_per_ip = 5\nsandbox = false\n", 0, 3, 5,
	    false, OFF },
};

START_TEST(test_limits_file)
{
	const struct limit_case *lc = &limit_cases[_i];
	struct tmpconf t;
	struct conf c;
	char err[1024];

	conf_defaults(&c);
	ck_assert_msg(load_text(&t, lc->text, 0, lc->inc, &c, err,
	    sizeof(err)) == 0, "case %d: %s", _i, err);
	ck_assert_int_eq(c.max_connection_time, lc->max_connection_time);
	ck_assert_int_eq(c.max_connections_per_ip, lc->per_ip);
	ck_assert_int_eq(c.max_connection_rate_per_ip, lc->rate_per_ip);
	ck_assert_int_eq(c.limits_exempt_loopback, lc->exempt);
	ck_assert_int_eq(c.sandbox, lc->sandbox);
	ck_assert_int_eq(c.backlog, CONF_DEFAULT_BACKLOG); /* untouched */
	conf_free(&c);
}
END_TEST

/* A reload that fails keeps the limits; one that succeeds resets them. */
START_TEST(test_limits_reload)
{
	struct tmpconf t;
	struct conf c;
	char err[512];

	conf_defaults(&c);
	ck_assert_int_eq(load_text(&t, "max_connection_time = 9\n"
	    "max_connections_per_ip = 8\nmax_connection_rate_per_ip = 7\n"
	    "limits_exempt_loopback = yes\nsandbox = off\n", 0, NULL, &c, err,
	    sizeof(err)), 0);
	ck_assert_int_eq(load_text(&t, "max_connection_time = 1\n"
	    "sandbox = on\nmax_connections_per_ip = -1\n", 0, NULL, &c, err,
	    sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, ":3: max_connections_per_ip: -1 "
	    "is out of range"));
	ck_assert_int_eq(c.max_connection_time, 9);
	ck_assert_int_eq(c.max_connections_per_ip, 8);
	ck_assert_int_eq(c.max_connection_rate_per_ip, 7);
	ck_assert(c.limits_exempt_loopback);
	ck_assert_int_eq(c.sandbox, CONF_SANDBOX_OFF);
	ck_assert_int_eq(load_text(&t, "workers = 1\n", 0, NULL, &c, err,
	    sizeof(err)), 0);
	ck_assert_int_eq(c.max_connection_time, 0);
	ck_assert_int_eq(c.max_connections_per_ip, 0);
	ck_assert_int_eq(c.max_connection_rate_per_ip, 0);
	ck_assert(!c.limits_exempt_loopback);
	ck_assert_int_eq(c.sandbox, CONF_SANDBOX_ON);
	conf_free(&c);
}
END_TEST

/* --- files that cannot be read ---------------------------------------- */

START_TEST(test_missing_file)
{
	struct conf c;
	char err[512];

	memset(&c, 0, sizeof(c));
	ck_assert_int_eq(conf_load(&c, "/nonexistent/echod.conf", err,
	    sizeof(err)), -1);
	ck_assert_str_eq(err, "/nonexistent/echod.conf: cannot open: "
	    "No such file or directory");
}
END_TEST

START_TEST(test_directory)
{
	struct conf c;
	char err[512];

	memset(&c, 0, sizeof(c));
	ck_assert_int_eq(conf_load(&c, "/tmp", err, sizeof(err)), -1);
	ck_assert_str_eq(err, "/tmp: cannot read: Is a directory");
	ck_assert_int_eq(conf_load(&c, "/dev/null", err, sizeof(err)), -1);
	ck_assert_str_eq(err, "/dev/null: cannot read: not a regular file");
}
END_TEST

/* Root reads a mode 000 file anyway; the case only means something as a
 * user, so as root it checks that the load succeeds instead. */
START_TEST(test_unreadable)
{
	char path[] = "/tmp/echod-conf-XXXXXX", err[512];
	struct conf c;
	int fd, rc;

	conf_defaults(&c);
	ck_assert_int_ne(fd = mkstemp(path), -1);
	ck_assert_int_eq(write(fd, "workers = 2\n", 12), 12);
	close(fd);
	chmod(path, 0);
	rc = conf_load(&c, path, err, sizeof(err));
	unlink(path);
	if (geteuid() == 0) {
		ck_assert_msg(rc == 0, "%s", err);
	} else {
		ck_assert_int_eq(rc, -1);
		ck_assert_ptr_nonnull(strstr(err, ": cannot open: Permission "
		    "denied"));
	}
	conf_free(&c);
}
END_TEST

START_TEST(test_too_large)
{
	char path[] = "/tmp/echod-conf-XXXXXX", err[512], want[256];
	struct conf c;
	int fd, rc;

	memset(&c, 0, sizeof(c));
	ck_assert_int_ne(fd = mkstemp(path), -1);
	ck_assert_int_eq(ftruncate(fd, 1024 * 1024 + 1), 0);
	close(fd);
	rc = conf_load(&c, path, err, sizeof(err));
	unlink(path);
	ck_assert_int_eq(rc, -1);
	snprintf(want, sizeof(want), "%s: 1048577 bytes is too large; "
	    "allowed: up to 1048576", path);
	ck_assert_str_eq(err, want);
}
END_TEST

/*
 * pidfile fills a 4096-byte field: 4095 bytes load, 4096 are refused on
 * their own line, and the message stays short.
 */
START_TEST(test_long_pidfile)
{
	static char text[8192], name[4097];
	struct tmpconf t;
	struct conf c;
	char err[1024], want[512];

	conf_defaults(&c);
	name[0] = '/';
	memset(name + 1, 'p', sizeof(name) - 2);
	name[4095] = '\0';
	snprintf(text, sizeof(text), "workers = 2\npidfile = \"%s\"\n", name);
	ck_assert_msg(load_text(&t, text, 0, NULL, &c, err, sizeof(err)) == 0,
	    "%s", err);
	ck_assert_str_eq(c.pidfile, name);
	name[4095] = 'p';
	snprintf(text, sizeof(text), "workers = 3\npidfile = \"%s\"\n", name);
	ck_assert_int_eq(load_text(&t, text, 0, NULL, &c, err, sizeof(err)),
	    -1);
	snprintf(want, sizeof(want), "%s:2: pidfile: '%.64s...' is too long "
	    "(4096 bytes, at most 4095); " PIDFILE_ALLOWED, t.path, name);
	ck_assert_str_eq(err, want);
	ck_assert_int_eq(c.workers, 2); /* kept */
	name[4095] = '\0';
	ck_assert_str_eq(c.pidfile, name);
	conf_free(&c);
}
END_TEST

/* Defect 4: "listen = {}" inside a string is a value, not an option. */
START_TEST(test_list_in_string)
{
	struct tmpconf t;
	struct conf c;
	char err[1024];

	conf_defaults(&c);
	ck_assert_msg(load_text(&t, "pidfile = \"/run/x listen = {}\"\n", 0,
	    NULL, &c, err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(c.pidfile, "/run/x listen = {}");
	ck_assert_uint_eq(c.nlisten, 1);
	conf_free(&c);
}
END_TEST

/* --- the API around the file ------------------------------------------ */

START_TEST(test_defaults)
{
	struct conf c;

	conf_defaults(&c);
	ck_assert_str_eq(c.path, "");
	assert_listen(&c, CONF_DEFAULT_LISTEN, NULL, 1);
	ck_assert(c.workers_auto);
	ck_assert_int_eq(c.workers, conf_auto_workers());
	ck_assert_int_eq(c.max_connections, CONF_DEFAULT_MAX_CONNECTIONS);
	ck_assert_int_eq(c.backlog, CONF_DEFAULT_BACKLOG);
	ck_assert_int_eq(c.idle_timeout, CONF_DEFAULT_IDLE_TIMEOUT);
	ck_assert_int_eq(c.shutdown_timeout, CONF_DEFAULT_SHUTDOWN_TIMEOUT);
	ck_assert_int_eq(c.log_level, LOG_LVL_INFO);
	assert_run_defaults(&c);
	ck_assert_int_eq(c.max_connection_time,
	    CONF_DEFAULT_MAX_CONNECTION_TIME);
	ck_assert_int_eq(c.max_connections_per_ip, 0);
	ck_assert_int_eq(c.max_connection_rate_per_ip, 0);
	ck_assert(!c.limits_exempt_loopback);
	ck_assert(c.sandbox);
	conf_free(&c);
	conf_free(&c);
	ck_assert_uint_eq(c.nlisten, 0);
}
END_TEST

/* A failed reload keeps the conf that was loaded before. */
START_TEST(test_failed_reload_keeps_old)
{
	struct tmpconf t;
	struct conf c;
	char err[512];

	conf_defaults(&c);
	ck_assert_int_eq(load_text(&t, "workers = 3\nlisten = \"*:1\"\n", 0,
	    NULL, &c, err, sizeof(err)), 0);
	ck_assert_int_eq(load_text(&t, "workers = 0\n", 0, NULL, &c, err,
	    sizeof(err)), -1);
	ck_assert_int_eq(c.workers, 3);
	assert_listen(&c, "*:1", NULL, 1);
	ck_assert_int_eq(load_text(&t, "backlog = 9\n", 0, NULL, &c, err,
	    sizeof(err)), 0);
	ck_assert_int_eq(c.backlog, 9);
	ck_assert(c.workers_auto); /* a new file starts from the defaults */
	assert_listen(&c, CONF_DEFAULT_LISTEN, NULL, 1);
	/* the strings and the late root check keep the old conf too */
	ck_assert_int_eq(load_text(&t, "user = root\nallow_root = yes\n"
	    "group = root\npidfile = /tmp/a.pid\nworker_timeout = 5\n", 0, NULL,
	    &c, err, sizeof(err)), 0);
	ck_assert_int_eq(load_text(&t, "pidfile = /tmp/b.pid\ngroup = \"\"\n"
	    "user = root\nworker_timeout = 6\n", 0, NULL, &c, err, sizeof(err)),
	    -1);
	ck_assert_ptr_nonnull(strstr(err, ":3: user: 'root' is uid 0"));
	ck_assert_str_eq(c.user, "root");
	ck_assert_str_eq(c.group, "root");
	ck_assert(c.allow_root);
	ck_assert_str_eq(c.pidfile, "/tmp/a.pid");
	ck_assert_int_eq(c.worker_timeout, 5);
	ck_assert_int_eq(load_text(&t, "workers = 2\n", 0, NULL, &c, err,
	    sizeof(err)), 0);
	assert_run_defaults(&c);
	conf_free(&c);
}
END_TEST

/*
 * libconfuse's own include() loses a slot of its include stack on each
 * error inside an included file, and fails every include() after ten.
 */
START_TEST(test_include_errors_do_not_accumulate)
{
	struct tmpconf t;
	struct conf c;
	char err[512];
	int i;

	conf_defaults(&c);
	for (i = 0; i < 12; i++)
		ck_assert_int_eq(load_text(&t, "include(\"inc.conf\")\n", 0,
		    "bogus = 1\n", &c, err, sizeof(err)), -1);
	ck_assert_msg(load_text(&t, "include(\"inc.conf\")\n", 0,
	    "workers = 5\n", &c, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(c.workers, 5);
	conf_free(&c);
}
END_TEST

START_TEST(test_small_err_buffer)
{
	struct tmpconf t;
	struct conf c;
	char err[16];

	memset(&c, 0, sizeof(c));
	memset(err, 'x', sizeof(err));
	ck_assert_int_eq(load_text(&t, "workers = 0\n", 0, NULL, &c, err,
	    sizeof(err)), -1);
	ck_assert_uint_eq(strlen(err), sizeof(err) - 1);
	ck_assert_int_eq(load_text(&t, "include(\"inc.conf\")\n", 0,
	    "bogus = 1\n", &c, NULL, 0), -1);
	ck_assert_int_eq(conf_load(&c, "/nonexistent", NULL, 0), -1);
}
END_TEST

struct workers_case {
	const char *value;
	int rc, workers; /* workers: AUTO, or the number */
	const char *err;
};

static const struct workers_case workers_cases[] = {
	{ "4", 0, 4, NULL },
	{ "1", 0, 1, NULL },
	{ "256", 0, 256, NULL },
	{ "auto", 0, AUTO, NULL },
	{ "x", -1, 0,
	    "workers: 'x' is not a number; allowed: 1..256 or auto" },
	{ "0", -1, 0, "workers: 0 is out of range; allowed: 1..256 or auto" },
	{ "257", -1, 0, "workers: 257 is out of range; allowed: 1..256 or auto" },
	{ "-3", -1, 0, "workers: -3 is out of range; allowed: 1..256 or auto" },
	{ "", -1, 0, "workers: '' is not a number; allowed: 1..256 or auto" },
	{ "4 ", -1, 0, "workers: '4 ' is not a number; allowed: 1..256 or auto" },
};

START_TEST(test_set_workers)
{
	const struct workers_case *wc = &workers_cases[_i];
	struct conf c;
	char err[256] = "";

	conf_defaults(&c);
	c.workers = 77;
	c.workers_auto = false;
	ck_assert_int_eq(conf_set_workers(&c, wc->value, err, sizeof(err)),
	    wc->rc);
	if (wc->rc == -1) {
		ck_assert_str_eq(err, wc->err);
		ck_assert_int_eq(c.workers, 77);
	} else {
		ck_assert_int_eq(c.workers_auto, wc->workers == AUTO);
		ck_assert_int_eq(c.workers,
		    wc->workers == AUTO ? conf_auto_workers() : wc->workers);
	}
	conf_free(&c);
}
END_TEST

START_TEST(test_set_listen)
{
	char *two[] = { "127.0.0.1:1", "[::1]:2" };
	char *bad[] = { "127.0.0.1:1", "nowhere:2" };
	char *dup[] = { "127.0.0.1:1", "127.0.0.1:01" };
	char *overlap[] = { "[::1]:1", "*:1" };
	char *many[CONF_LISTEN_MAX + 1];
	struct conf c;
	char err[512];
	size_t i;

	conf_defaults(&c);
	ck_assert_int_eq(conf_set_listen(&c, two, 2, err, sizeof(err)), 0);
	assert_listen(&c, "127.0.0.1:1", "[::1]:2", 2);
	ck_assert_int_eq(conf_set_listen(&c, bad, 2, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "listen: 'nowhere:2': 'nowhere' is not a numeric "
	    "IPv4 address (echod does not resolve names); expected HOST:PORT, "
	    "[IPV6]:PORT or *:PORT");
	ck_assert_int_eq(conf_set_listen(&c, dup, 2, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "listen: '127.0.0.1:01' is the same address as "
	    "'127.0.0.1:1'");
	ck_assert_int_eq(conf_set_listen(&c, overlap, 2, err, sizeof(err)),
	    -1);
	ck_assert_msg(strncmp(err, "listen: '*:1' overlaps '[::1]:1': ", 34) ==
	    0, "%s", err);
	ck_assert_int_eq(conf_set_listen(&c, two, 0, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "listen: 0 addresses; allowed: 1..16 addresses, "
	    "each once");
	for (i = 0; i < CONF_LISTEN_MAX + 1; i++)
		many[i] = "*:7";
	ck_assert_int_eq(conf_set_listen(&c, many, CONF_LISTEN_MAX + 1, err,
	    sizeof(err)), -1);
	assert_listen(&c, "127.0.0.1:1", "[::1]:2", 2); /* unchanged */
	conf_free(&c);
}
END_TEST

/*
 * Whether the file at path (from the source tree) has a line that starts
 * with want; with comment, "#" or "# " before it counts too.
 */
static bool
file_has_line(const char *path, const char *want, bool comment)
{
	char line[512], *p;
	bool found = false;
	FILE *fp;

	fp = fopen(path, "r");
	ck_assert_msg(fp != NULL, "%s: %s", path, strerror(errno));
	while (!found && fgets(line, sizeof(line), fp) != NULL) {
		p = line;
		if (comment && *p == '#')
			p += p[1] == ' ' ? 2 : 1;
		found = strncmp(p, want, strlen(want)) == 0;
	}
	fclose(fp);
	return found;
}

/*
 * Adding an option is a row in conf.c's table, its field and its
 * documentation: the reference (echod.conf(5)) and the example file
 * describe every option the table has, and the "no such option" error
 * names it.
 */
START_TEST(test_every_option_documented)
{
	char want[128];
	const char *name;
	size_t i;

	for (i = 0; (name = conf_option_name(i)) != NULL; i++) {
		snprintf(want, sizeof(want), ".It Ic %s ", name);
		ck_assert_msg(file_has_line("man/echod.conf.5", want, false),
		    "man/echod.conf.5 has no '%s'", want);
		snprintf(want, sizeof(want), "%s = ", name);
		ck_assert_msg(file_has_line("conf/echod.conf", want, true),
		    "conf/echod.conf does not show '%s'", want);
		snprintf(want, sizeof(want), "%s, ", name);
		ck_assert_msg(strstr(ALLOWED_OPTS, want) != NULL,
		    "'no such option' does not name %s", name);
	}
	ck_assert_uint_eq(i, 23);
}
END_TEST

/* workers = 0 is one worker per online CPU, within 1 .. the maximum. */
START_TEST(test_auto_workers)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	ck_assert_int_eq(conf_auto_workers(), n < 1 ? 1 :
	    n > CONF_WORKERS_MAX ? CONF_WORKERS_MAX : (int)n);
}
END_TEST

START_TEST(test_sandbox_name)
{
	ck_assert_str_eq(conf_sandbox_name(CONF_SANDBOX_OFF), "off");
	ck_assert_str_eq(conf_sandbox_name(CONF_SANDBOX_ON), "on");
	ck_assert_str_eq(conf_sandbox_name(CONF_SANDBOX_TRY), "try");
	ck_assert_str_eq(conf_sandbox_name(3), "?");
	ck_assert_str_eq(conf_sandbox_name(-1), "?");
}
END_TEST

/* Defect 14: which two listen entries cannot both listen. */
struct overlap_case {
	const char *a, *b;
	bool overlap;
};

static const struct overlap_case overlap_cases[] = {
	{ "127.0.0.1:7", "*:7", true },
	{ "*:7", "[::1]:7", true },
	{ "*:7", "0.0.0.0:7", true },
	{ "[::1]:7", "[::]:7", true },
	{ "0.0.0.0:7", "10.1.2.3:7", true },
	{ "127.0.0.1:7", "*:8", false },       /* another port */
	{ "127.0.0.1:7", "[::]:7", false },    /* [::] is IPv6 only */
	{ "0.0.0.0:7", "[::1]:7", false },
	{ "0.0.0.0:7", "[::]:7", false },
	{ "127.0.0.1:7", "127.0.0.2:7", false },
	{ "[::1]:7", "[fd00::1]:7", false },
	{ "127.0.0.1:0", "*:0", false },       /* each its own port */
};

START_TEST(test_overlap)
{
	const struct overlap_case *oc = &overlap_cases[_i];
	struct listen_addr a, b;
	char err[256];

	ck_assert_int_eq(listener_parse(oc->a, &a, err, sizeof(err)), 0);
	ck_assert_int_eq(listener_parse(oc->b, &b, err, sizeof(err)), 0);
	ck_assert_msg(listener_overlap(&a, &b) == oc->overlap,
	    "%s and %s: %d", oc->a, oc->b, !oc->overlap);
	ck_assert_msg(listener_overlap(&b, &a) == oc->overlap,
	    "%s and %s: %d", oc->b, oc->a, !oc->overlap);
}
END_TEST

START_TEST(test_summary)
{
	char *two[] = { "127.0.0.1:7007", "[::1]:7007" };
	struct conf c;
	char buf[1024], err[256], small[12];

	conf_defaults(&c);
	ck_assert_int_eq(conf_set_workers(&c, "2", err, sizeof(err)), 0);
	conf_summary(&c, buf, sizeof(buf));
	ck_assert_str_eq(buf, "2 workers x 8192 connections, listen *:7007, "
	    "backlog 1024, idle_timeout 300 s, shutdown_timeout 10 s, "
	    "log_level info, worker_timeout 30 s, user nobody, "
	    "pidfile /run/echod.pid, max_connection_time 0 s (no limit), "
	    "per IP 0 connections and 0 a second (no limits), sandbox on");
	ck_assert_int_eq(conf_set_workers(&c, "1", err, sizeof(err)), 0);
	ck_assert_int_eq(conf_set_listen(&c, two, 2, err, sizeof(err)), 0);
	c.idle_timeout = 0;
	c.log_level = LOG_LVL_DEBUG;
	c.worker_timeout = 0;
	snprintf(c.user, sizeof(c.user), "root");
	snprintf(c.group, sizeof(c.group), "adm");
	c.allow_root = true;
	snprintf(c.pidfile, sizeof(c.pidfile), "/tmp/e.pid");
	conf_summary(&c, buf, sizeof(buf));
	ck_assert_str_eq(buf, "1 worker x 8192 connections, listen "
	    "127.0.0.1:7007 [::1]:7007, backlog 1024, idle_timeout 0 s "
	    "(never), shutdown_timeout 10 s, log_level debug, worker_timeout "
	    "0 s (never), user root:adm (allow_root), pidfile /tmp/e.pid, "
	    "max_connection_time 0 s (no limit), per IP 0 connections and 0 "
	    "a second (no limits), sandbox on");
	c.max_connection_time = 3600;
	c.max_connections_per_ip = 10;
	c.max_connection_rate_per_ip = 0;
	c.limits_exempt_loopback = true;
	c.sandbox = CONF_SANDBOX_OFF;
	conf_summary(&c, buf, sizeof(buf));
	ck_assert_ptr_nonnull(strstr(buf, ", max_connection_time 3600 s, per "
	    "IP 10 connections and 0 a second (loopback exempt), sandbox off"));
	c.sandbox = CONF_SANDBOX_TRY;
	conf_summary(&c, buf, sizeof(buf));
	ck_assert_ptr_nonnull(strstr(buf, "(loopback exempt), sandbox try"));
	ck_assert_int_eq(conf_set_workers(&c, "auto", err, sizeof(err)), 0);
	conf_summary(&c, buf, sizeof(buf));
	ck_assert_ptr_nonnull(strstr(buf, " (auto) x 8192 connections"));
	conf_summary(&c, small, sizeof(small));
	ck_assert_uint_eq(strlen(small), sizeof(small) - 1);
	conf_free(&c);
}
END_TEST

/* --- the PROXY protocol's options (issue 12) --------------------------- */

#define PL_ALLOWED                                                         \
	"allowed: at most 16 addresses in listen and proxy_listen together, " \
	"each once"
#define PT_ALLOWED                                                         \
	"allowed: at most 64 blocks such as \"10.0.0.0/8\", \"::1/128\" or "  \
	"\"127.0.0.1\""
#define CIDR_EXPECTED                                                      \
	"expected A.B.C.D, A.B.C.D/0..32, an IPv6 address or IPV6/0..128, " \
	"numeric"
#define WILDCARD_WHY                                                       \
	"a wildcard takes the port on every address (\"*\" of both "       \
	"families), so the second cannot listen; allowed: one of them"
/* "1.1.1.1:1", ... "1.1.1.1:N" as list elements. */
#define A8(p) "\"1.1.1.1:" p "1\",\"1.1.1.1:" p "2\",\"1.1.1.1:" p "3\"," \
	"\"1.1.1.1:" p "4\",\"1.1.1.1:" p "5\",\"1.1.1.1:" p "6\","          \
	"\"1.1.1.1:" p "7\",\"1.1.1.1:" p "8\""
#define B8(p) "\"2.2.2.2:" p "1\",\"2.2.2.2:" p "2\",\"2.2.2.2:" p "3\"," \
	"\"2.2.2.2:" p "4\",\"2.2.2.2:" p "5\",\"2.2.2.2:" p "6\","          \
	"\"2.2.2.2:" p "7\",\"2.2.2.2:" p "8\""
/* Eight blocks 10.P.0.1 .. 10.P.0.8, then 64 of them. */
#define C8(p) "\"10." p ".0.1\",\"10." p ".0.2\",\"10." p ".0.3\","      \
	"\"10." p ".0.4\",\"10." p ".0.5\",\"10." p ".0.6\",\"10." p ".0.7\"," \
	"\"10." p ".0.8\""
#define C64 C8("1") "," C8("2") "," C8("3") "," C8("4") "," C8("5") ","  \
	C8("6") "," C8("7") "," C8("8")

struct proxy_bad_case {
	const char *text;
	const char *inc;  /* INC's content, or NULL */
	const char *file; /* the file named in the message */
	int line;
	const char *msg; /* the whole message after "FILE:LINE: " */
};

static const struct proxy_bad_case proxy_bad[] = {
	/* proxy_listen: listen's address checks */
	{ "proxy_listen = \"127.0.0.1:99999\"\n", NULL, MAIN, 1,
	    "proxy_listen: '127.0.0.1:99999': port '99999' is not a number "
	    "in 0..65535" },
	{ "listen = {}\nproxy_listen = \"localhost:7\"\n", NULL, MAIN, 2,
	    "proxy_listen: 'localhost:7': 'localhost' is not a numeric IPv4 "
	    "address (echod does not resolve names); expected HOST:PORT, "
	    "[IPV6]:PORT or *:PORT" },
	{ "listen = {}\nproxy_listen = {\"127.0.0.1:1\",\n\"127.0.0.1:1\"}\n",
	    NULL, MAIN, 3, "proxy_listen: '127.0.0.1:1' is given twice" },
	{ "listen = {}\nproxy_listen = {\"127.0.0.1:7\", \"*:7\"}\n", NULL,
	    MAIN, 2, "proxy_listen: '*:7' overlaps '127.0.0.1:7': "
	    WILDCARD_WHY },
	{ "listen = {}\nproxy_listen = \"*:1\"\n\nproxy_listen = \"*:2\"\n",
	    NULL, MAIN, 4, "proxy_listen: given twice (first at " },
	/* each address once across both lists, in either order */
	{ "listen = \"127.0.0.1:1\"\nproxy_listen = \"127.0.0.1:1\"\n", NULL,
	    MAIN, 2, "proxy_listen: '127.0.0.1:1' is in listen too; allowed: "
	    "each address in one of listen and proxy_listen" },
	{ "proxy_listen = \"127.0.0.1:1\"\nlisten = \"127.0.0.1:1\"\n", NULL,
	    MAIN, 2, "listen: '127.0.0.1:1' is in proxy_listen too; allowed: "
	    "each address in one of listen and proxy_listen" },
	{ "listen = \"[::1]:7\"\nproxy_listen = \"[0::1]:07\"\n", NULL, MAIN, 2,
	    "proxy_listen: '[0::1]:07' is the same address as listen's "
	    "'[::1]:7'" },
	{ "listen = \"127.0.0.1:7\"\nproxy_listen = {\"127.0.0.1:8\",\n"
	  "\"*:7\"}\n", NULL, MAIN, 3, "proxy_listen: '*:7' overlaps listen's "
	    "'127.0.0.1:7': " WILDCARD_WHY },
	{ "proxy_listen = \"[::]:7\"\nlisten += \"[::1]:7\"\n", NULL, MAIN, 2,
	    "listen: '[::1]:7' overlaps proxy_listen's '[::]:7': "
	    WILDCARD_WHY },
	{ "listen = \"127.0.0.1:1\"\ninclude(\"inc.conf\")\n",
	    "\nproxy_listen = \"127.0.0.1:1\"\n", INC, 2,
	    "proxy_listen: '127.0.0.1:1' is in listen too; allowed: each "
	    "address in one of listen and proxy_listen (included from " },
	/* without listen in the file, its default counts */
	{ "\nproxy_listen = \"127.0.0.1:7007\"\n", NULL, MAIN, 2,
	    "proxy_listen: '127.0.0.1:7007' overlaps listen's '*:7007': "
	    WILDCARD_WHY " (listen's default: set listen, or listen = {} for "
	    "none)" },
	{ "proxy_listen = \"*:7007\"\n", NULL, MAIN, 1,
	    "proxy_listen: '*:7007' is in listen too; allowed: each address "
	    "in one of listen and proxy_listen (listen's default: set listen, "
	    "or listen = {} for none)" },
	/* at most 16 addresses in both lists */
	{ "listen = {" A8("") "}\nproxy_listen = {" B8("") ",\n"
	  "\"3.3.3.3:1\"}\n", NULL, MAIN, 3,
	    "proxy_listen: more than 16 addresses in listen and proxy_listen "
	    "together; " PL_ALLOWED },
	{ "proxy_listen = {" B8("") "}\nlisten = {" A8("") ",\n"
	  "\"3.3.3.3:1\"}\n", NULL, MAIN, 3,
	    "listen: more than 16 addresses in listen and proxy_listen "
	    "together; allowed: 1..16 addresses, each once" },
	{ "listen = {}\nproxy_listen = {" A8("") "," B8("") ",\n"
	  "\"3.3.3.3:1\"}\n", NULL, MAIN, 3,
	    "proxy_listen: more than 16 addresses; " PL_ALLOWED },
	{ "\nproxy_listen = {" A8("") "," B8("") "}\n", NULL, MAIN, 2,
	    "proxy_listen: more than 16 addresses in listen and proxy_listen "
	    "together (listen's default is one); " PL_ALLOWED },
	/* an empty listen needs proxy_listen's addresses */
	{ "listen = {}\nproxy_listen = {}\n", NULL, MAIN, 1,
	    "listen: the list is empty; allowed: 1..16 addresses, each once" },
	{ "proxy_listen = {}\nworkers = 2\nlisten = {}\n", NULL, MAIN, 3,
	    "listen: the list is empty; allowed: 1..16 addresses, each once" },
	{ "listen = {}\nlisten = \"*:1\"\n", NULL, MAIN, 2,
	    "listen: given twice (first at " },
	/* proxy_trusted */
	{ "proxy_trusted = \"10.0.0.1/8\"\n", NULL, MAIN, 1,
	    "proxy_trusted: '10.0.0.1/8': bits are set past the /8 prefix; "
	    "expected the block's first address, 10.0.0.0/8" },
	{ "proxy_trusted = {\n\"127.0.0.1\",\n\"localhost\"}\n", NULL, MAIN, 3,
	    "proxy_trusted: 'localhost': 'localhost' is not a numeric IPv4 or "
	    "IPv6 address (echod does not resolve names); " CIDR_EXPECTED },
	{ "proxy_trusted = \"10.0.0.0/33\"\n", NULL, MAIN, 1,
	    "proxy_trusted: '10.0.0.0/33': the prefix length '33' is not a "
	    "number in 0..32; " CIDR_EXPECTED },
	{ "proxy_trusted = \"::1/129\"\n", NULL, MAIN, 1,
	    "proxy_trusted: '::1/129': the prefix length '129' is not a "
	    "number in 0..128; " CIDR_EXPECTED },
	{ "proxy_trusted = \"\"\n", NULL, MAIN, 1,
	    "proxy_trusted: '': " CIDR_EXPECTED },
	{ "proxy_trusted = \"127.0.0.1:7007\"\n", NULL, MAIN, 1,
	    "proxy_trusted: '127.0.0.1:7007': '127.0.0.1:7007' is not a "
	    "numeric IPv4 or IPv6 address (echod does not resolve names); "
	    CIDR_EXPECTED },
	{ "proxy_trusted = {\"10.0.0.0/8\", \"10.0.0.0/8\"}\n", NULL, MAIN, 1,
	    "proxy_trusted: '10.0.0.0/8' is the same block as '10.0.0.0/8'; "
	    "allowed: each block once" },
	{ "proxy_trusted = {\"127.0.0.1\",\n\"::ffff:127.0.0.1/128\"}\n", NULL,
	    MAIN, 2, "proxy_trusted: '::ffff:127.0.0.1/128' is the same block "
	    "as '127.0.0.1'; allowed: each block once" },
	{ "proxy_trusted = {" C64 ",\n\"10.0.0.9\"}\n", NULL, MAIN, 2,
	    "proxy_trusted: more than 64 blocks; " PT_ALLOWED },
	{ "proxy_trusted = \"::1\"\nproxy_trusted = \"::1\"\n", NULL, MAIN, 2,
	    "proxy_trusted: given twice (first at " },
	/* proxy_timeout */
	{ "proxy_timeout = 0\n", NULL, MAIN, 1,
	    "proxy_timeout: 0 is out of range; allowed: 1..300 seconds" },
	{ "proxy_timeout = 301\n", NULL, MAIN, 1,
	    "proxy_timeout: 301 is out of range; allowed: 1..300 seconds" },
	{ "proxy_timeout = 5s\n", NULL, MAIN, 1,
	    "proxy_timeout: '5s' is not a number; allowed: 1..300 seconds" },
	{ "proxy_timeout = 5\nproxy_timeout = 5\n", NULL, MAIN, 2,
	    "proxy_timeout: given twice (first at " },
};

START_TEST(test_proxy_bad)
{
	const struct proxy_bad_case *bc = &proxy_bad[_i];
	struct tmpconf t;
	struct conf c;
	char err[2048], prefix[256];
	size_t n;

	memset(&c, 0, sizeof(c));
	ck_assert_int_eq(load_text(&t, bc->text, 0, bc->inc, &c, err,
	    sizeof(err)), -1);
	assert_one_line(err);
	snprintf(prefix, sizeof(prefix), "%s/%s:%d: ", t.dir, bc->file,
	    bc->line);
	n = strlen(prefix);
	ck_assert_msg(strncmp(err, prefix, n) == 0,
	    "case %d: '%s' does not start with '%s'", _i, err, prefix);
	/* Exact, but for "given twice" (the first place) and includes. */
	if (strstr(bc->msg, "(first at ") != NULL ||
	    strstr(bc->msg, "(included from ") != NULL)
		ck_assert_msg(strncmp(err + n, bc->msg, strlen(bc->msg)) == 0,
		    "case %d: '%s' is not '%s...'", _i, err + n, bc->msg);
	else
		ck_assert_str_eq(err + n, bc->msg);
	ck_assert_uint_eq(c.nlisten, 0); /* c untouched */
	ck_assert_uint_eq(c.nproxy_listen, 0);
}
END_TEST

struct proxy_good_case {
	const char *text;
	const char *inc;
	const char *listen;       /* the addresses, space-separated */
	const char *proxy_listen; /* the same */
	const char *trusted;      /* cidr_format of each, space-separated */
	int timeout;
};

static const struct proxy_good_case proxy_good[] = {
	{ "", NULL, "*:7007", "", "", CONF_DEFAULT_PROXY_TIMEOUT },
	{ "proxy_listen = \"127.0.0.1:7008\"\nproxy_trusted = { \"127.0.0.1/32\", "
	  "\"::1/128\" }\nproxy_timeout = 10\n", NULL, "*:7007",
	    "127.0.0.1:7008", "127.0.0.1/32 ::1/128", 10 },
	{ "listen = \"127.0.0.1:7007\"\nproxy_listen = { \"127.0.0.1:7008\", "
	  "\"[::1]:7008\" }\n", NULL, "127.0.0.1:7007",
	    "127.0.0.1:7008 [::1]:7008", "", CONF_DEFAULT_PROXY_TIMEOUT },
	/* only proxied listeners, whichever comes first */
	{ "listen = {}\nproxy_listen = \"*:7008\"\n", NULL, "", "*:7008", "",
	    CONF_DEFAULT_PROXY_TIMEOUT },
	{ "proxy_listen = \"*:7007\"\nlisten = {}\n", NULL, "", "*:7007", "",
	    CONF_DEFAULT_PROXY_TIMEOUT },
	{ "proxy_listen = \"127.0.0.1:9\"\ninclude(\"inc.conf\")\n",
	    "listen = {}\n", "", "127.0.0.1:9", "", CONF_DEFAULT_PROXY_TIMEOUT },
	/* appending, an empty proxy_listen, the range's ends */
	{ "listen = \"127.0.0.1:1\"\nproxy_listen = \"127.0.0.1:2\"\n"
	  "proxy_listen += \"127.0.0.1:3\"\nproxy_timeout = 1\n", NULL,
	    "127.0.0.1:1", "127.0.0.1:2 127.0.0.1:3", "", 1 },
	{ "proxy_listen = {}\nproxy_trusted = {}\nproxy_timeout = 300\n", NULL,
	    "*:7007", "", "", 300 },
	/* the same port on addresses that do not overlap */
	{ "listen = \"127.0.0.1:7\"\nproxy_listen = { \"127.0.0.2:7\", "
	  "\"[::]:7\" }\n", NULL, "127.0.0.1:7", "127.0.0.2:7 [::]:7", "",
	    CONF_DEFAULT_PROXY_TIMEOUT },
	/* blocks: nested ones are fine, a mapped one is IPv4 */
	{ "proxy_trusted = { \"10.0.0.0/8\", \"10.1.0.0/16\", \"::/0\", "
	  "\"::ffff:192.168.0.0/112\", \"fd00::1\" }\n", NULL, "*:7007", "",
	    "10.0.0.0/8 10.1.0.0/16 ::/0 192.168.0.0/16 fd00::1/128",
	    CONF_DEFAULT_PROXY_TIMEOUT },
	/* 16 addresses in both lists: 8 + 8, 0 + 16, 15 + 1 (the default) */
	{ "listen = {" A8("") "}\nproxy_listen = {" B8("") "}\n", NULL,
	    NULL, NULL, "", CONF_DEFAULT_PROXY_TIMEOUT },
	{ "listen = {}\nproxy_listen = {" A8("") "," B8("") "}\n", NULL,
	    "", NULL, "", CONF_DEFAULT_PROXY_TIMEOUT },
	{ "proxy_trusted = {" C64 "}\n", NULL, "*:7007", "", NULL,
	    CONF_DEFAULT_PROXY_TIMEOUT },
};

/* Whether list (n strings) is words, space-separated; NULL: any. */
static void
assert_words(const char *what, char *const *list, size_t n,
    const char *words)
{
	char buf[1024] = "";
	size_t i, off = 0;

	if (words == NULL)
		return;
	for (i = 0; i < n; i++)
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%s",
		    i > 0 ? " " : "", list[i]);
	ck_assert_msg(strcmp(buf, words) == 0, "%s: '%s', not '%s'", what,
	    buf, words);
}

START_TEST(test_proxy_good)
{
	const struct proxy_good_case *gc = &proxy_good[_i];
	char err[1024], f[8][64], *fp[CONF_TRUSTED_MAX];
	struct tmpconf t;
	struct conf c;
	size_t i;

	conf_defaults(&c);
	ck_assert_msg(load_text(&t, gc->text, 0, gc->inc, &c, err,
	    sizeof(err)) == 0, "case %d: %s", _i, err);
	assert_words("listen", c.listen, c.nlisten, gc->listen);
	assert_words("proxy_listen", c.proxy_listen, c.nproxy_listen,
	    gc->proxy_listen);
	ck_assert_uint_le(c.nlisten + c.nproxy_listen, CONF_LISTEN_MAX);
	if (gc->trusted != NULL) {
		ck_assert_uint_le(c.nproxy_trusted, 8);
		for (i = 0; i < c.nproxy_trusted; i++) {
			cidr_format(&c.proxy_trusted[i], f[i], sizeof(f[i]));
			fp[i] = f[i];
		}
		assert_words("proxy_trusted", fp, c.nproxy_trusted,
		    gc->trusted);
	} else
		ck_assert_uint_eq(c.nproxy_trusted, CONF_TRUSTED_MAX);
	ck_assert_int_eq(c.proxy_timeout, gc->timeout);
	conf_free(&c);
	ck_assert_uint_eq(c.nlisten, 0);
	ck_assert_uint_eq(c.nproxy_listen, 0);
}
END_TEST

START_TEST(test_proxy_defaults)
{
	struct conf c;

	conf_defaults(&c);
	ck_assert_uint_eq(c.nproxy_listen, 0);
	ck_assert_ptr_null(c.proxy_listen[0]);
	ck_assert_uint_eq(c.nproxy_trusted, 0);
	ck_assert_int_eq(c.proxy_timeout, CONF_DEFAULT_PROXY_TIMEOUT);
	ck_assert_int_eq(CONF_DEFAULT_PROXY_TIMEOUT, 5);
	conf_free(&c);
}
END_TEST

/* -l replaces listen and keeps the file's proxy_listen: both checked. */
START_TEST(test_proxy_set_listen)
{
	char *same[] = { "127.0.0.1:8" }, *wild[] = { "*:8" };
	char *ok[] = { "127.0.0.1:7" }, *many[CONF_LISTEN_MAX];
	char err[512], spec[CONF_LISTEN_MAX][32];
	struct tmpconf t;
	struct conf c;
	size_t i;

	conf_defaults(&c);
	ck_assert_int_eq(load_text(&t, "listen = {}\nproxy_listen = { "
	    "\"127.0.0.1:8\", \"[::1]:8\" }\n", 0, NULL, &c, err, sizeof(err)),
	    0);
	ck_assert_int_eq(conf_set_listen(&c, same, 1, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "listen: '127.0.0.1:8' is in proxy_listen too; "
	    "allowed: each address in one of listen and proxy_listen");
	ck_assert_int_eq(conf_set_listen(&c, wild, 1, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "listen: '*:8' overlaps proxy_listen's "
	    "'127.0.0.1:8': " WILDCARD_WHY);
	for (i = 0; i < CONF_LISTEN_MAX; i++) {
		snprintf(spec[i], sizeof(spec[i]), "10.0.0.1:%zu", i + 1);
		many[i] = spec[i];
	}
	ck_assert_int_eq(conf_set_listen(&c, many, CONF_LISTEN_MAX - 1, err,
	    sizeof(err)), -1);
	ck_assert_str_eq(err, "listen: 15 addresses, and 2 in proxy_listen; "
	    PL_ALLOWED);
	ck_assert_uint_eq(c.nlisten, 0); /* unchanged */
	ck_assert_int_eq(conf_set_listen(&c, many, CONF_LISTEN_MAX - 2, err,
	    sizeof(err)), 0);
	ck_assert_int_eq(conf_set_listen(&c, ok, 1, err, sizeof(err)), 0);
	assert_words("listen", c.listen, c.nlisten, "127.0.0.1:7");
	assert_words("proxy_listen", c.proxy_listen, c.nproxy_listen,
	    "127.0.0.1:8 [::1]:8");
	conf_free(&c);
}
END_TEST

START_TEST(test_proxy_summary)
{
	struct tmpconf t;
	struct conf c;
	char buf[2048], err[512];

	conf_defaults(&c);
	conf_summary(&c, buf, sizeof(buf));
	ck_assert_ptr_null(strstr(buf, "proxy"));
	ck_assert_int_eq(load_text(&t, "listen = {}\nproxy_listen = { "
	    "\"127.0.0.1:7008\", \"[::1]:7008\" }\nproxy_trusted = { "
	    "\"10.0.0.0/8\", \"::1\" }\nproxy_timeout = 7\nworkers = 2\n", 0,
	    NULL, &c, err, sizeof(err)), 0);
	conf_summary(&c, buf, sizeof(buf));
	ck_assert_msg(strncmp(buf, "2 workers x 8192 connections, listen "
	    "(none), proxy_listen 127.0.0.1:7008 [::1]:7008, proxy_trusted "
	    "10.0.0.0/8 ::1/128, proxy_timeout 7 s, backlog 1024, ", 134) == 0,
	    "%s", buf);
	ck_assert_int_eq(load_text(&t, "proxy_listen = \"127.0.0.1:7008\"\n", 0,
	    NULL, &c, err, sizeof(err)), 0);
	conf_summary(&c, buf, sizeof(buf));
	ck_assert_ptr_nonnull(strstr(buf, ", listen *:7007, proxy_listen "
	    "127.0.0.1:7008, proxy_trusted (none: every proxied connection is "
	    "closed), proxy_timeout 5 s, backlog "));
	ck_assert_int_eq(load_text(&t, "proxy_trusted = \"127.0.0.1\"\n", 0,
	    NULL, &c, err, sizeof(err)), 0);
	conf_summary(&c, buf, sizeof(buf));
	ck_assert_ptr_nonnull(strstr(buf, ", listen *:7007, proxy_listen "
	    "(none), proxy_trusted 127.0.0.1/32, proxy_timeout 5 s, "));
	ck_assert_ptr_null(strstr(buf, "metrics_listen"));
	/* metrics_listen is named when it is set, after the listeners. */
	ck_assert_int_eq(load_text(&t, "listen = \"127.0.0.1:7007\"\n"
	    "metrics_listen = \"127.0.0.1:9707\"\n", 0, NULL, &c, err,
	    sizeof(err)), 0);
	conf_summary(&c, buf, sizeof(buf));
	ck_assert_msg(strstr(buf, ", listen 127.0.0.1:7007, metrics_listen "
	    "127.0.0.1:9707, backlog ") != NULL, "%s", buf);
	conf_free(&c);
}
END_TEST

/* -t and the start-up log warn about proxied listeners nobody may use. */
START_TEST(test_proxy_warning)
{
	struct tmpconf t;
	struct conf c;
	char err[512];

	conf_defaults(&c);
	ck_assert_ptr_null(settings_warning(&c));
	ck_assert_int_eq(load_text(&t, "proxy_listen = \"127.0.0.1:8\"\n", 0,
	    NULL, &c, err, sizeof(err)), 0);
	ck_assert_str_eq(settings_warning(&c), "proxy_listen is set but "
	    "proxy_trusted is empty: every connection to it will be closed");
	ck_assert_int_eq(load_text(&t, "proxy_listen = \"127.0.0.1:8\"\n"
	    "proxy_trusted = \"127.0.0.1\"\n", 0, NULL, &c, err, sizeof(err)),
	    0);
	ck_assert_ptr_null(settings_warning(&c));
	ck_assert_int_eq(load_text(&t, "proxy_trusted = \"127.0.0.1\"\n", 0,
	    NULL, &c, err, sizeof(err)), 0);
	ck_assert_ptr_null(settings_warning(&c));
	conf_free(&c);
}
END_TEST

/* A failed reload keeps the old lists, a good one replaces both. */
START_TEST(test_proxy_reload_keeps_old)
{
	struct tmpconf t;
	struct conf c;
	char err[512];

	conf_defaults(&c);
	ck_assert_int_eq(load_text(&t, "listen = {}\nproxy_listen = "
	    "\"127.0.0.1:8\"\nproxy_trusted = \"::1\"\n", 0, NULL, &c, err,
	    sizeof(err)), 0);
	ck_assert_int_eq(load_text(&t, "listen = {}\nproxy_listen = "
	    "\"127.0.0.1:9\"\nproxy_timeout = 0\n", 0, NULL, &c, err,
	    sizeof(err)), -1);
	assert_words("proxy_listen", c.proxy_listen, c.nproxy_listen,
	    "127.0.0.1:8");
	ck_assert_uint_eq(c.nlisten, 0);
	ck_assert_uint_eq(c.nproxy_trusted, 1);
	ck_assert_int_eq(load_text(&t, "workers = 1\n", 0, NULL, &c, err,
	    sizeof(err)), 0);
	assert_words("listen", c.listen, c.nlisten, CONF_DEFAULT_LISTEN);
	ck_assert_uint_eq(c.nproxy_listen, 0);
	ck_assert_uint_eq(c.nproxy_trusted, 0);
	conf_free(&c);
}
END_TEST

Suite *
conf_suite(void)
{
	Suite *s = suite_create("conf");
	TCase *tc;

	tc = h_case(s, "bad_files", 0, H_TESTS(test_missing_file,
	    test_directory, test_unreadable, test_too_large));
	tcase_add_loop_test(tc, test_bad_file, 0, H_NELEM(bad_cases));
	tc = h_case(s, "good_files", 0, H_TESTS(test_limits_reload,
	    test_long_pidfile, test_list_in_string,
	    test_failed_reload_keeps_old,
	    test_include_errors_do_not_accumulate));
	tcase_add_loop_test(tc, test_good_file, 0, H_NELEM(good_cases));
	tcase_add_loop_test(tc, test_run_file, 0, H_NELEM(run_cases));
	tcase_add_loop_test(tc, test_limits_file, 0, H_NELEM(limit_cases));
	tc = h_case(s, "api", 0, H_TESTS(test_defaults, test_small_err_buffer,
	    test_set_listen, test_summary, test_auto_workers,
	    test_sandbox_name, test_every_option_documented));
	tcase_add_loop_test(tc, test_set_workers, 0, H_NELEM(workers_cases));
	tcase_add_loop_test(tc, test_overlap, 0, H_NELEM(overlap_cases));
	tc = h_case(s, "proxy", 0, H_TESTS(test_proxy_defaults,
	    test_proxy_set_listen, test_proxy_summary,
	    test_proxy_reload_keeps_old, test_proxy_warning));
	tcase_add_loop_test(tc, test_proxy_bad, 0, H_NELEM(proxy_bad));
	tcase_add_loop_test(tc, test_proxy_good, 0, H_NELEM(proxy_good));
	return s;
}
