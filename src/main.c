/*
 * main: options, configuration, listeners, then the master.
 *
 * Only wiring and exit codes live here; everything worth testing is in
 * libechod.  Exit codes: see exitcodes.h and the README.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "exitcodes.h"
#include "listener.h"
#include "log.h"
#include "master.h"
#include "proctitle.h"
#include "version.h"

struct options {
	const char *config; /* NULL: the default file, if it exists */
	char *listen[CONF_LISTEN_MAX];
	size_t nlisten;
	const char *workers;
	int test;
	int verbose;
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: echod [-tvVh] [-c file] [-l addr]... [-w n|auto]\n"
	    "  -c, --config FILE   configuration file (default %s)\n"
	    "  -l, --listen ADDR   listen on ADDR (HOST:PORT, [IPV6]:PORT or "
	    "*:PORT);\n"
	    "                      repeatable, replaces the file's listen\n"
	    "  -w, --workers N     worker processes (1..%d or auto)\n"
	    "  -t, --test          check the configuration and exit\n"
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

static void
parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "listen", required_argument, NULL, 'l' },
		{ "workers", required_argument, NULL, 'w' },
		{ "test", no_argument, NULL, 't' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":c:l:w:tvVh", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'c':
			o->config = optarg;
			break;
		case 'l':
			if (o->nlisten == CONF_LISTEN_MAX)
				usage_error("too many -l (at most %d)", CONF_LISTEN_MAX);
			o->listen[o->nlisten++] = optarg;
			break;
		case 'w':
			o->workers = optarg;
			break;
		case 't':
			o->test = 1;
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

/* Open every listener, or exit: nothing is left listening on failure. */
static size_t
open_listeners(const struct conf *c, int *fds, char *addrs, size_t alen)
{
	struct sockaddr_storage ss;
	struct listen_addr la;
	socklen_t sl;
	char err[512], name[80];
	size_t i;

	addrs[0] = '\0';
	for (i = 0; i < c->nlisten; i++) {
		if (listener_parse(c->listen[i], &la, err, sizeof(err)) == -1 ||
		    (fds[i] = listener_open(&la, c->backlog, err,
		    sizeof(err))) == -1)
			fatalx(ECHOD_EXIT_OSERR, "%s", err);
		sl = sizeof(ss);
		getsockname(fds[i], (struct sockaddr *)&ss, &sl);
		listener_format((struct sockaddr *)&ss, name, sizeof(name));
		if (la.any)
			snprintf(name + strlen(name), sizeof(name) - strlen(name),
			    " (%s)", c->listen[i]);
		log_info("listening on %s", name);
		snprintf(addrs + strlen(addrs), alen - strlen(addrs), "%s%s",
		    i ? ", " : "", name);
	}
	return i;
}

int
main(int argc, char **argv)
{
	struct options o;
	struct conf c;
	int fds[CONF_LISTEN_MAX], rc;
	char summary[512], addrs[1024];
	size_t n;

	memset(&o, 0, sizeof(o));
	log_init("echod", LOG_LVL_INFO);
	parse_options(argc, argv, &o);
	load_conf(&o, &c);
	conf_summary(&c, summary, sizeof(summary));
	if (o.test) {
		printf("echod: %s: configuration OK: %s\n",
		    c.path[0] ? c.path : "built-in defaults", summary);
		conf_free(&c);
		return ECHOD_EXIT_OK;
	}
	log_set_level(o.verbose ? LOG_LVL_DEBUG : c.log_level);
	/* From here on argv's strings may be overwritten by titles. */
	proctitle_init(argc, argv);
	proctitle_set("echod: master");
	log_set_tag("master");
	log_notice("echod %s starting: %s%s", ECHOD_VERSION,
	    c.path[0] ? c.path : "no " CONF_DEFAULT_PATH
	    ", running on built-in defaults", "");
	log_info("%s", summary);
	n = open_listeners(&c, fds, addrs, sizeof(addrs));
	rc = master_run(&c, fds, n, addrs);
	conf_free(&c);
	return rc;
}
