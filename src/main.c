/*
 * main: options, configuration, listeners, then the master.
 *
 * Only wiring and exit codes live here; everything worth testing is in
 * libechod.  Exit codes: see exitcodes.h and the README.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "daemon.h"
#include "exitcodes.h"
#include "listener.h"
#include "log.h"
#include "master.h"
#include "notify.h"
#include "proctitle.h"
#include "version.h"

struct options {
	const char *config; /* NULL: the default file, if it exists */
	char *listen[CONF_LISTEN_MAX];
	size_t nlisten;
	const char *workers;
	int test;
	int verbose;
	int daemon;
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: echod [-dtvVh] [-c file] [-l addr]... [-w n|auto]\n"
	    "  -c, --config FILE   configuration file (default %s)\n"
	    "  -l, --listen ADDR   listen on ADDR (HOST:PORT, [IPV6]:PORT or "
	    "*:PORT);\n"
	    "                      repeatable, replaces the file's listen\n"
	    "  -w, --workers N     worker processes (1..%d or auto)\n"
	    "  -t, --test          check the configuration and exit\n"
	    "  -d, --daemon        detach once ready; log to syslog; pidfile\n"
	    "  -v, --verbose       log at debug level\n"
	    "  -V, --version       print the version and exit\n"
	    "  -h, --help          print this help and exit\n",
	    CONF_DEFAULT_PATH, CONF_WORKERS_MAX);
}

static void usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

static void
usage_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "echod: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	usage(stderr);
	exit(ECHOD_EXIT_USAGE);
}

/* Kept for reloads: argv's own strings are overwritten by titles. */
static char *
xstrdup(const char *s)
{
	char *d = strdup(s);

	if (d == NULL)
		fatal(ECHOD_EXIT_OSERR, "strdup");
	return d;
}

static void
free_options(struct options *o)
{
	size_t i;

	for (i = 0; i < o->nlisten; i++)
		free(o->listen[i]);
	free((char *)(uintptr_t)o->workers);
}

static void
parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "listen", required_argument, NULL, 'l' },
		{ "workers", required_argument, NULL, 'w' },
		{ "test", no_argument, NULL, 't' },
		{ "daemon", no_argument, NULL, 'd' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":c:l:w:tdvVh", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'c':
			o->config = optarg;
			break;
		case 'l':
			if (o->nlisten == CONF_LISTEN_MAX)
				usage_error("too many -l (at most %d)", CONF_LISTEN_MAX);
			o->listen[o->nlisten++] = xstrdup(optarg);
			break;
		case 'w':
			o->workers = xstrdup(optarg);
			break;
		case 't':
			o->test = 1;
			break;
		case 'd':
			o->daemon = 1;
			break;
		case 'v':
			o->verbose = 1;
			break;
		case 'V':
			printf("echod %s\n", ECHOD_VERSION);
			exit(ECHOD_EXIT_OK);
		case 'h':
			usage(stdout);
			exit(ECHOD_EXIT_OK);
		case ':':
			usage_error("option %s needs an argument",
			    argv[optind - 1]);
			break;
		default:
			usage_error("unknown option %s", argv[optind - 1]);
			break;
		}
	}
	if (optind < argc)
		usage_error("unexpected argument '%s'", argv[optind]);
}

/* The configuration, from the file and then the command line. */
static void
load_conf(const struct options *o, struct conf *c)
{
	char err[1024];

	conf_defaults(c);
	if (o->config != NULL || access(CONF_DEFAULT_PATH, F_OK) == 0) {
		if (conf_load(c, o->config ? o->config : CONF_DEFAULT_PATH,
		    err, sizeof(err)) == -1) {
			fprintf(stderr, "echod: %s\n", err);
			exit(ECHOD_EXIT_CONFIG);
		}
	}
	if ((o->workers != NULL &&
	    conf_set_workers(c, o->workers, err, sizeof(err)) == -1) ||
	    (o->nlisten > 0 &&
	    conf_set_listen(c, o->listen, o->nlisten, err, sizeof(err)) == -1))
		usage_error("%s", err);
}

static int
from_store(const char *spec, int *fds, char (*names)[LISTENER_NAME_MAX],
    int n)
{
	char want[LISTENER_NAME_MAX];
	int i, fd;

	listener_fdname(spec, want, sizeof(want));
	for (i = 0; i < n; i++)
		if (fds[i] != -1 && strcmp(names[i], want) == 0) {
			fd = fds[i];
			fds[i] = -1;
			return fd;
		}
	return -1;
}

/*
 * The listeners: systemd's sockets if it passed some (socket activation),
 * else the configured addresses, taken back from systemd's fd store where
 * an earlier echod left them, opened otherwise.  Exits on failure, with
 * nothing left listening.
 */
static size_t
get_listeners(const struct conf *c, struct listener *ls)
{
	char names[CONF_LISTEN_MAX][LISTENER_NAME_MAX], err[512];
	int fds[CONF_LISTEN_MAX], n, i, stored = 0;
	struct listen_addr la;
	size_t k;

	if ((n = listener_inherit(fds, names, CONF_LISTEN_MAX, err,
	    sizeof(err))) == -1)
		fatalx(ECHOD_EXIT_OSERR, "%s", err);
	for (i = 0; i < n; i++)
		stored += strncmp(names[i], "listen-", 7) == 0;
	if (n > 0 && stored < n) {
		for (i = 0, k = 0; i < n; i++) {
			if (strncmp(names[i], "listen-", 7) == 0) {
				/* Our own, from the store: the socket unit's win. */
				notify_fdstore_remove(names[i]);
				close(fds[i]);
				continue;
			}
			memset(&ls[k], 0, sizeof(ls[k]));
			ls[k].fd = fds[i];
			ls[k].from_systemd = 1;
			listener_name(&ls[k]);
			log_notice("socket activation: adopted %s (\"%s\") from "
			    "systemd; the configuration's listen is not used",
			    ls[k].name, names[i]);
			k++;
		}
		return k;
	}
	for (k = 0; k < c->nlisten; k++) {
		memset(&ls[k], 0, sizeof(ls[k]));
		snprintf(ls[k].spec, sizeof(ls[k].spec), "%s", c->listen[k]);
		if ((ls[k].fd = from_store(c->listen[k], fds, names, n)) != -1)
			ls[k].from_store = 1;
		else if (listener_parse(c->listen[k], &la, err,
		    sizeof(err)) == -1 || (ls[k].fd = listener_open(&la,
		    c->backlog, err, sizeof(err))) == -1)
			fatalx(ECHOD_EXIT_OSERR, "%s", err);
		listener_name(&ls[k]);
		log_info("listening on %s%s", ls[k].name, ls[k].from_store ?
		    " (kept by systemd's fd store across the restart)" : "");
	}
	for (i = 0; i < n; i++)
		if (fds[i] != -1) {
			/* Stored by an echod whose listen was different. */
			notify_fdstore_remove(names[i]);
			close(fds[i]);
		}
	return c->nlisten;
}

/* -d: detach, write the pidfile; returns the fd to say "ready" on. */
static int
become_daemon(const struct conf *c, int *pidfd)
{
	char err[512];
	int fd;

	if ((fd = daemon_detach(err, sizeof(err))) == -1)
		fatalx(ECHOD_EXIT_OSERR, "%s", err);
	log_to_syslog();
	if ((*pidfd = daemon_pidfile_open(c->pidfile, err, sizeof(err))) == -1)
		fatalx(ECHOD_EXIT_OSERR, "%s", err);
	return fd;
}

int
main(int argc, char **argv)
{
	struct listener ls[CONF_LISTEN_MAX];
	struct master_opts mo;
	struct options o;
	struct conf c;
	char summary[512], what[256], err[512];
	size_t n;
	int rc;

	memset(&o, 0, sizeof(o));
	log_init("master", LOG_LVL_INFO);
	parse_options(argc, argv, &o);
	load_conf(&o, &c);
	conf_summary(&c, summary, sizeof(summary));
	if (o.test) {
		printf("echod: %s: configuration OK: %s\n",
		    c.path[0] ? c.path : "built-in defaults", summary);
		conf_free(&c);
		free_options(&o);
		return ECHOD_EXIT_OK;
	}
	log_set_level(o.verbose ? LOG_LVL_DEBUG : c.log_level);
	memset(&mo, 0, sizeof(mo));
	mo.config_path = c.path[0] ? strdup(c.path) : NULL;
	mo.cli_listen = o.listen;
	mo.ncli_listen = o.nlisten;
	mo.cli_workers = o.workers;
	mo.ready_fd = mo.pidfile_fd = -1;
	log_notice("echod %s starting: %s", ECHOD_VERSION, c.path[0] ?
	    c.path : "no " CONF_DEFAULT_PATH ", running on built-in defaults");
	log_info("%s", summary);
	n = get_listeners(&c, ls);
	if (o.daemon)
		mo.ready_fd = become_daemon(&c, &mo.pidfile_fd);
	if (daemon_drop_privileges(&c, what, sizeof(what), err,
	    sizeof(err)) == -1)
		fatalx(ECHOD_EXIT_OSERR, "%s", err);
	log_info("%s", what);
	/* From here on argv's strings may be overwritten by titles. */
	proctitle_init(argc, argv);
	proctitle_set("echod: master");
	log_set_tag("master");
	rc = master_run(&c, ls, n, &mo);
	if (o.daemon)
		daemon_pidfile_remove(c.pidfile, mo.pidfile_fd);
	conf_free(&c);
	free((char *)(uintptr_t)mo.config_path);
	free_options(&o);
	return rc;
}
