/*
 * main: options, configuration, listeners, then the master.
 *
 * Only wiring and exit codes live here; everything worth testing is in
 * libechod.  Exit codes: see exitcodes.h and echod(8), EXIT STATUS.
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
#include "model.h"
#include "proctitle.h"
#include "sandbox.h"
#include "settings.h"
#include "upgrade.h"
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
			/* The last -w wins. */
			free((char *)(uintptr_t)o->workers);
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
	struct settings set = { o->config, o->listen, o->nlisten, o->workers };
	char err[1024];

	if (set.config_path == NULL && access(CONF_DEFAULT_PATH, F_OK) == 0)
		set.config_path = CONF_DEFAULT_PATH;
	switch (settings_build(c, &set, err, sizeof(err))) {
	case SETTINGS_OK:
		break;
	case SETTINGS_BAD_FILE:
		fprintf(stderr, "echod: %s\n", err);
		exit(ECHOD_EXIT_CONFIG);
	case SETTINGS_BAD_CLI:
		usage_error("%s", err);
	}
}

/*
 * -c as an absolute path: -d runs from "/", and every reload must read
 * the file echod was started with.
 */
static void
absolute_config(struct options *o, char *buf, size_t len)
{
	char cwd[4096];

	if (o->config == NULL || o->config[0] == '/')
		return;
	if (getcwd(cwd, sizeof(cwd)) == NULL)
		fatal(ECHOD_EXIT_OSERR, "-c %s: cannot tell the current "
		    "directory", o->config);
	if (daemon_absolute_path(o->config, cwd, buf, len) == -1)
		fatal(ECHOD_EXIT_OSERR, "-c %s", o->config);
	o->config = buf;
}

/* -d: detach, write the pidfile; returns the fd to say "ready" on. */
static int
become_daemon(const struct conf *c, int *pidfd)
{
	char err[512];
	int fd;

	/*
	 * Locked before detaching, so "already running" reaches the
	 * terminal; the pid is written after it, so the file never names
	 * the parent that is about to exit.
	 */
	if ((*pidfd = daemon_pidfile_open(c->pidfile, err, sizeof(err))) == -1)
		fatalx(ECHOD_EXIT_OSERR, "%s", err);
	if ((fd = daemon_detach(err, sizeof(err))) == -1)
		fatalx(ECHOD_EXIT_OSERR, "%s", err);
	log_to_syslog();
	if (daemon_pidfile_write(*pidfd) == -1)
		fatal(ECHOD_EXIT_OSERR, "pidfile %s", c->pidfile);
	return fd;
}

/*
 * What a worker's sandbox will really be here, found by loading the
 * filter in a throw-away child: a line for -t and the start-up log, and
 * what the workers will do about it (sandbox_decide).
 */
/* What the configured model adds to the workers' allow-list. */
static unsigned
model_needs(int model)
{
	const struct model_ops *ops = model_ops_for(model);

	return ops != NULL ? ops->needs : 0;
}

static struct sandbox_verdict
sandbox_truth(const struct conf *c, unsigned needs, char *line, size_t len)
{
	struct sandbox_verdict v;
	char err[256];
	int rc = 0, mode = c->sandbox; /* enum conf_sandbox */

	if (mode != CONF_SANDBOX_OFF)
		rc = sandbox_probe(needs, err, sizeof(err));
	v = sandbox_decide(mode, rc);
	if (v.state == SANDBOX_OFF)
		snprintf(line, len, "sandbox: off (sandbox = off)");
	else if (v.state == SANDBOX_ON)
		snprintf(line, len, "sandbox: on: each worker loads its "
		    "seccomp allow-list; a forbidden call kills it");
	else if (v.state == SANDBOX_ON_THREAD)
		snprintf(line, len, "sandbox: on (kill thread): %s", err);
	else if (v.state == SANDBOX_NO_BUILD)
		snprintf(line, len, "sandbox: off in this build (sanitizers)");
	else if (v.warn)
		snprintf(line, len, "sandbox: the seccomp filter cannot load "
		    "here: %s; with sandbox = try the workers run without it",
		    err);
	else
		snprintf(line, len, "sandbox = on, but the seccomp filter "
		    "cannot load here: %s; echod will not serve without it "
		    "(sandbox = try would)", err);
	return v;
}

int
main(int argc, char **argv)
{
	struct listener ls[CONF_LISTEN_MAX];
	struct master_opts mo;
	struct sandbox_verdict sv;
	struct upgrade_handover up;
	struct options o;
	struct conf c;
	char summary[2048], what[256], err[512], config_abs[4096], sb[512];
	const char *warning;
	size_t n;
	int rc, upgrading;

	/* Before anything can take descriptor 0-2 or a signal can kill us. */
	if (daemon_early_setup() == -1)
		return ECHOD_EXIT_OSERR; /* no /dev/null: nowhere to say so */
	memset(&o, 0, sizeof(o));
	/* An in-place upgrade's exec: the old image's sockets stay open. */
	if ((upgrading = upgrade_take(&up, err, sizeof(err))) == 1)
		upgrade_close_inherited(&up);
	else
		daemon_close_inherited();
	log_init("master", LOG_LVL_INFO);
	if (upgrading == -1)
		fatalx(ECHOD_EXIT_OSERR, "upgrade: bad %s: %s", UPGRADE_ENV, err);
	parse_options(argc, argv, &o);
	config_abs[0] = '\0';
	if (!o.test)
		absolute_config(&o, config_abs, sizeof(config_abs));
	upgrade_init(argc, argv, o.config == config_abs ? config_abs : NULL);
	load_conf(&o, &c);
	conf_summary(&c, summary, sizeof(summary));
	warning = settings_warning(&c);
	if (o.test) {
		(void)sandbox_truth(&c, model_needs(c.model), sb,
		    sizeof(sb));
		/* One line: what the file says, then what this host gives. */
		printf("echod: %s: configuration OK: %s; here: %s\n",
		    c.path[0] ? c.path : "built-in defaults", summary, sb);
		if (warning != NULL)
			fprintf(stderr, "echod: warning: %s\n", warning);
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
	/*
	 * No worker needs socket() or connect(), even with -d: the log's
	 * /dev/log socket is made by the master before the fork, and the
	 * workers only sendto() through it (log.c).
	 */
	mo.sandbox_needs = 0;
	if (upgrading && o.daemon)
		log_to_syslog(); /* detached already: the same pid goes on */
	log_notice("echod %s starting: %s", ECHOD_VERSION, c.path[0] ?
	    c.path : "no " CONF_DEFAULT_PATH ", running on built-in defaults");
	if (upgrading)
		log_notice("upgrade: from version %s, same pid %d: %zu "
		    "listener(s) handed over, %zu old worker(s) to drain",
		    up.from, (int)getpid(), up.nls, up.nworkers);
	log_info("%s", summary);
	if (warning != NULL)
		log_warnx("%s", warning);
	if (upgrading) {
		char names[LISTENER_MAX][LISTENER_NAME_MAX];
		int fds[LISTENER_MAX], nfd = upgrade_fds(&up, fds, names);

		upgrade_adopt_workers(&up);
		rc = listener_acquire_given(c.listen, c.nlisten, c.proxy_listen,
		    c.nproxy_listen, c.backlog, fds, names, nfd,
		    " (kept across the upgrade)", ls, &n, err, sizeof(err));
	} else
		rc = listener_acquire_both(c.listen, c.nlisten, c.proxy_listen,
		    c.nproxy_listen, c.backlog, ls, &n, err, sizeof(err));
	if (rc == -1)
		fatalx(ECHOD_EXIT_OSERR, "%s", err);
	if (upgrading && o.daemon)
		mo.pidfile_fd = up.pidfd; /* locked, and names this pid */
	else if (upgrading && up.pidfd != -1)
		close(up.pidfd);
	if (o.daemon && !upgrading)
		mo.ready_fd = become_daemon(&c, &mo.pidfile_fd);
	if (daemon_drop_privileges(&c, what, sizeof(what), err,
	    sizeof(err)) == -1)
		fatalx(ECHOD_EXIT_OSERR, "%s", err);
	log_info("%s", what);
	sv = sandbox_truth(&c, mo.sandbox_needs | model_needs(c.model), sb,
	    sizeof(sb));
	if (sv.exit)
		fatalx(ECHOD_EXIT_OSERR, "%s", sb);
	if (sv.warn)
		log_warnx("%s", sb);
	else if (sv.state != SANDBOX_NO_BUILD) /* the master says that one */
		log_info("%s", sb);
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
