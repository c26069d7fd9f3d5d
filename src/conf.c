/*
 * conf: the configuration file (libconfuse) and its validation.
 *
 * Turns a file into a plain struct conf; cfg_t never leaves this file.
 * Every refusal is one line in the caller's buffer, "FILE:LINE: option:
 * what is wrong; allowed: ...".  Nothing here exits, logs or touches the
 * caller's conf unless the whole file was good.
 *
 * What libconfuse 3.3 does that shaped this file:
 * - Its integer parsing is strtol(base 0), so "010" would be 8 and "0x10"
 *   16, and it tests a stale errno for overflow.  Every value therefore
 *   goes through a parse callback of ours (decimal only, range-checked on
 *   the spot, so the error carries the value's own line).  Strings and
 *   booleans too; a boolean's callback is handed an int to fill, not a
 *   cfg_bool_t.
 * - A repeated option silently replaces the earlier one.  We refuse it
 *   ("given twice"); "listen += ..." still appends on purpose.
 * - "listen = {}" runs no callback at all, so src_open() looks for it in
 *   the text (conftext_empty_list), to give that error a line too.  It is
 *   an error only without proxy_listen's addresses, which the end of the
 *   parse knows (check_lists_end); extract_list still catches a form the
 *   text pass cannot see ("+listen = {}").
 * - A list option takes a bare string too: listen = "*:7007".
 * - Its include() leaks an include-stack slot, a FILE and a string on every
 *   error inside an included file; after ten such errors every include()
 *   fails with "includes nested too deeply" (a reload loop would hit it).
 *   It also opens relative names from the working directory.  So include()
 *   is ours: it parses the file with a nested cfg_parse_fp(), which pushes
 *   and pops its own scanner buffer, and resolves relative names against
 *   the including file's directory.
 * - Its scanner gets comments, NUL bytes, unclosed strings, malformed
 *   calls and unbounded "${VAR}" expansion wrong: every file goes through
 *   conftext.c first, which reads it, refuses those and blanks comments.
 * - A trailing comma in a list is accepted: { "a", }.
 * - Lexer and parser state are global, so parsing is not reentrant; the
 *   one static parse context below adds nothing to that.
 *
 * Not libconfuse's doing: a user with uid 0 needs allow_root = true
 * anywhere in the file, before or after, so that check waits for the end
 * of the parse.  user and group are looked up here (account.c), at load
 * time, so a typo fails -t and a reload; the default user is not (it only
 * matters when echod starts as root, and the master says so then).
 */
#include <errno.h>
#include <stddef.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <confuse.h>
#include <netinet/in.h>

#include "account.h"
#include "conf.h"
#include "conftext.h"
#include "listener.h"
#include "log.h"

#define STR(x) #x
#define XSTR(x) STR(x)

#define INCLUDE_DEPTH 8
#define MSG_MAX 1024

/* The longest string a char array member of struct conf holds. */
#define FIELD_MAX(f) ((long)sizeof(((struct conf *)0)->f) - 1)

#define BOOLS "true, false, yes, no, on, off"
/* The LIST options, whose addresses share one budget. */
#define LISTS "listen and proxy_listen"

/*
 * Every option, once: X(name, kind, parse, default, min, max, allowed).
 * name is also its field in struct conf.  kind says how libconfuse reads
 * it and how it is stored:
 *   LIST     listening addresses (listen, proxy_listen): a list of strings
 *            (char *field[CONF_LISTEN_MAX], its count in n<field>); every
 *            LIST option's addresses together are at most CONF_LISTEN_MAX,
 *            each once across all of them
 *   CIDRS    address blocks (proxy_trusted): a list of strings parsed by
 *            cidr_parse (struct cidr field[CONF_TRUSTED_MAX], n<field>)
 *   INT      int field; parse turns the text into the number
 *   WORKERS  as INT, and 0 ("auto") is one per online CPU (workers_auto)
 *   BOOL     bool field
 *   STR      char array field; max is its longest length
 * parse checks a value (from the file, the command line or default) and
 * turns it into a long: the number, the level, 0 or 1, the uid for user.
 * default is text, parsed like a value from the file (a string is taken
 * as it is: the default user is not looked up).  min and max are the
 * range parse checks; allowed is what an error message offers.
 * From this table come the option ids, the libconfuse option specs, the
 * list of names in "no such option" errors, the setters, the defaults and
 * the fuzz and unit tests' view of the options.  Adding an option: a row
 * here, its field in struct conf, its documentation (echod.conf(5), the
 * README's table, conf/echod.conf), and a word in conf_summary() if -t
 * should show it.
 */
#define CONF_OPTIONS(X)                                                    \
	X(listen, LIST, NULL, CONF_DEFAULT_LISTEN, 1, CONF_LISTEN_MAX,     \
	    "1.." XSTR(CONF_LISTEN_MAX) " addresses, each once")           \
	X(workers, WORKERS, parse_workers, "auto", 1, CONF_WORKERS_MAX,    \
	    "1.." XSTR(CONF_WORKERS_MAX) " or auto")                       \
	X(max_connections, INT, parse_range,                               \
	    XSTR(CONF_DEFAULT_MAX_CONNECTIONS), 1, CONF_MAX_CONNECTIONS_MAX, \
	    "1.." XSTR(CONF_MAX_CONNECTIONS_MAX))                          \
	X(backlog, INT, parse_range, XSTR(CONF_DEFAULT_BACKLOG), 1,        \
	    CONF_BACKLOG_MAX, "1.." XSTR(CONF_BACKLOG_MAX))                \
	X(idle_timeout, INT, parse_range, XSTR(CONF_DEFAULT_IDLE_TIMEOUT), \
	    0, CONF_TIMEOUT_MAX,                                           \
	    "0.." XSTR(CONF_TIMEOUT_MAX) " seconds, 0 = never")            \
	X(shutdown_timeout, INT, parse_range,                              \
	    XSTR(CONF_DEFAULT_SHUTDOWN_TIMEOUT), 0, CONF_SHUTDOWN_TIMEOUT_MAX, \
	    "0.." XSTR(CONF_SHUTDOWN_TIMEOUT_MAX) " seconds")              \
	X(log_level, INT, parse_level, CONF_DEFAULT_LOG_LEVEL, 0, 0,       \
	    "debug, info, notice, warning, err")                           \
	X(worker_timeout, INT, parse_range,                                \
	    XSTR(CONF_DEFAULT_WORKER_TIMEOUT), 0, CONF_WORKER_TIMEOUT_MAX, \
	    "0.." XSTR(CONF_WORKER_TIMEOUT_MAX) " seconds, 0 = never")     \
	X(user, STR, parse_user, CONF_DEFAULT_USER, 1, FIELD_MAX(user),    \
	    "an existing user name")                                       \
	X(group, STR, parse_group, "", 0, FIELD_MAX(group),                \
	    "an existing group name, or \"\" for the user's primary group") \
	X(allow_root, BOOL, parse_bool, "false", 0, 1, BOOLS)              \
	X(pidfile, STR, parse_pidfile, CONF_DEFAULT_PIDFILE, 1,            \
	    FIELD_MAX(pidfile),                                            \
	    "an absolute file name such as " CONF_DEFAULT_PIDFILE)         \
	X(max_connection_time, INT, parse_range,                           \
	    XSTR(CONF_DEFAULT_MAX_CONNECTION_TIME), 0,                     \
	    CONF_CONNECTION_TIME_MAX,                                      \
	    "0.." XSTR(CONF_CONNECTION_TIME_MAX) " seconds, 0 = no limit") \
	X(max_connections_per_ip, INT, parse_range, "0", 0,                \
	    CONF_PER_IP_MAX, "0.." XSTR(CONF_PER_IP_MAX) ", 0 = no limit") \
	X(max_connection_rate_per_ip, INT, parse_range, "0", 0,            \
	    CONF_PER_IP_MAX, "0.." XSTR(CONF_PER_IP_MAX)                   \
	    " new connections a second, 0 = no limit")                     \
	X(limits_exempt_loopback, BOOL, parse_bool, "false", 0, 1, BOOLS)  \
	X(sandbox, INT, parse_sandbox, "on", 0, 0,                         \
	    "on, off, try (true, yes, false, no: as on, off)")             \
	X(model, INT, parse_model, "events", 0, 0,                         \
	    "events, prefork, process-per-connection, "                    \
	    "thread-per-connection, thread-pool")                          \
	X(threads, INT, parse_range, XSTR(CONF_DEFAULT_THREADS), 1,        \
	    CONF_THREADS_MAX, "1.." XSTR(CONF_THREADS_MAX))                \
	X(proxy_listen, LIST, NULL, "", 0, CONF_LISTEN_MAX,                \
	    "at most " XSTR(CONF_LISTEN_MAX) " addresses in " LISTS         \
	    " together, each once")                                        \
	X(proxy_trusted, CIDRS, NULL, "", 0, CONF_TRUSTED_MAX,             \
	    "at most " XSTR(CONF_TRUSTED_MAX) " blocks such as "           \
	    "\"10.0.0.0/8\", \"::1/128\" or \"127.0.0.1\"")                \
	X(proxy_timeout, INT, parse_range,                                 \
	    XSTR(CONF_DEFAULT_PROXY_TIMEOUT), 1, CONF_PROXY_TIMEOUT_MAX,   \
	    "1.." XSTR(CONF_PROXY_TIMEOUT_MAX) " seconds")                 \
	X(metrics_listen, STR, parse_metrics_listen, "", 0,                \
	    FIELD_MAX(metrics_listen),                                     \
	    "\"\" (off) or one address in listen's syntax, such as "       \
	    "\"127.0.0.1:9707\", that no listen or proxy_listen address "  \
	    "equals or overlaps")

/* OPT_listen, OPT_workers, ...: the option's name, as its field. */
enum opt_id {
#define X(name, ...) OPT_##name,
	CONF_OPTIONS(X)
#undef X
	OPT_COUNT
};

enum opt_kind { K_LIST, K_CIDRS, K_INT, K_WORKERS, K_BOOL, K_STR };

struct opt_spec;
typedef int parse_fn(const struct opt_spec *, const char *, long *, char *,
    size_t);

struct opt_spec {
	const char *name;
	enum opt_kind kind;
	parse_fn *parse;
	const char *def;
	long min, max;
	const char *allowed;
	size_t offset, size; /* the field in struct conf */
	size_t count;        /* LIST, CIDRS: the n<field> count beside it */
};

static parse_fn parse_range, parse_workers, parse_level, parse_bool;
static parse_fn parse_sandbox, parse_user, parse_group, parse_pidfile;
static parse_fn parse_model, parse_metrics_listen;

/* Where a list kind keeps its count; 0 for the others. */
#define COUNT_LIST(name) offsetof(struct conf, n##name)
#define COUNT_CIDRS(name) offsetof(struct conf, n##name)
#define COUNT_INT(name) 0
#define COUNT_WORKERS(name) 0
#define COUNT_BOOL(name) 0
#define COUNT_STR(name) 0

static const struct opt_spec specs[OPT_COUNT] = {
#define X(name, kind, parse, def, min, max, allowed)                       \
	[OPT_##name] = { #name, K_##kind, parse, def, min, max, allowed,   \
	    offsetof(struct conf, name), sizeof(((struct conf *)0)->name), \
	    COUNT_##kind(name) },
	CONF_OPTIONS(X)
#undef X
};

/* Each field has the type its kind stores, or the build fails. */
#define IS_A(name, type)                                                   \
	__builtin_types_compatible_p(__typeof__(((struct conf *)0)->name), type)
#define FIELD_OK_LIST(name)                                                \
	(IS_A(name, char *[CONF_LISTEN_MAX]) && IS_A(n##name, size_t))
#define FIELD_OK_CIDRS(name)                                               \
	(IS_A(name, struct cidr[CONF_TRUSTED_MAX]) && IS_A(n##name, size_t))
#define FIELD_OK_INT(name) IS_A(name, int)
#define FIELD_OK_WORKERS(name) IS_A(name, int)
#define FIELD_OK_BOOL(name) IS_A(name, bool)
#define FIELD_OK_STR(name)                                                 \
	IS_A(name, char[sizeof(((struct conf *)0)->name)])
#define X(name, kind, ...)                                                 \
	_Static_assert(FIELD_OK_##kind(name),                              \
	    "struct conf: " #name " is not a " #kind " field");
CONF_OPTIONS(X)
#undef X

/* For "no such option": every name, then the one function. */
static const char option_names[] =
#define X(name, ...) #name ", "
	CONF_OPTIONS(X)
#undef X
	"include(\"FILE\")";

/* A place in a file, for errors found after the line was read. */
struct where {
	int line;
	char file[256];
};

/* The one conf_load in progress: libconfuse callbacks carry no user data. */
struct parse_ctx {
	char *err;
	size_t errlen;
	bool failed;
	bool noted; /* "included from" was added */
	int depth;
	const char *includer; /* depth > 0: the file that included this one */
	int includer_line;
	char root_msg[MSG_MAX]; /* user is uid 0: the error, if not allowed */
	struct where seen[OPT_COUNT];
	/*
	 * "listen = {}" (found by the text pass: libconfuse runs no
	 * callback for it): refused at the end unless proxy_listen has
	 * addresses.
	 */
	struct where empty_listen;
};

static struct parse_ctx *ctx;

static int list_cb(cfg_t *, cfg_opt_t *, const char *, void *);
static int cidrs_cb(cfg_t *, cfg_opt_t *, const char *, void *);
static int value_cb(cfg_t *, cfg_opt_t *, const char *, void *);
static int include_cb(cfg_t *, cfg_opt_t *, int, const char **);

/* How libconfuse reads each kind; a list has no callback variant. */
#define CFG_OPT_LIST(name) __CFG_STR_LIST(name, 0, CFGF_NODEFAULT, 0, list_cb)
#define CFG_OPT_CIDRS(name) __CFG_STR_LIST(name, 0, CFGF_NODEFAULT, 0, cidrs_cb)
#define CFG_OPT_INT(name) CFG_INT_CB(name, 0, CFGF_NODEFAULT, value_cb)
#define CFG_OPT_WORKERS(name) CFG_OPT_INT(name)
#define CFG_OPT_BOOL(name) CFG_BOOL_CB(name, cfg_false, CFGF_NODEFAULT, value_cb)
#define CFG_OPT_STR(name) CFG_STR_CB(name, 0, CFGF_NODEFAULT, value_cb)

/*
 * Nothing has a libconfuse default: "not in the file" must stay visible,
 * and the defaults live in one place, the table (conf_defaults).
 */
static cfg_opt_t conf_opts[] = {
#define X(name, kind, ...) CFG_OPT_##kind(#name),
	CONF_OPTIONS(X)
#undef X
	CFG_FUNC("include", include_cb),
	CFG_END()
};

/* Values come straight from the file: keep the message one printable line. */
static void
sanitize(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			*s = '?';
}

static void ctx_printf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* Record the first error of this parse; later ones are consequences. */
static void
ctx_printf(const char *fmt, ...)
{
	va_list ap;

	if (ctx == NULL || ctx->failed)
		return;
	ctx->failed = true;
	if (ctx->errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(ctx->err, ctx->errlen, fmt, ap);
	va_end(ap);
	sanitize(ctx->err);
}

/* Prefix msg with where the parser is: "FILE:LINE: " or "FILE: ". */
static void
ctx_report(cfg_t *cfg, const char *msg)
{
	const char *file = cfg->filename != NULL ? cfg->filename : "?";

	if (cfg->line > 0)
		ctx_printf("%s:%d: %s", file, cfg->line, msg);
	else
		ctx_printf("%s: %s", file, msg);
}

static void conf_fail(cfg_t *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

static void
conf_fail(cfg_t *cfg, const char *fmt, ...)
{
	char msg[MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ctx_report(cfg, msg);
}

static void on_cfg_error(cfg_t *, const char *, va_list)
    __attribute__((format(printf, 2, 0)));

/* libconfuse's own messages: unknown options and syntax errors. */
static void
on_cfg_error(cfg_t *cfg, const char *fmt, va_list ap)
{
	bool unknown = strcmp(fmt, "no such option '%s'") == 0;
	char msg[MSG_MAX];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (unknown)
		conf_fail(cfg, "%s; allowed: %s", msg, option_names);
	else if (strncmp(msg, "syntax error", 12) == 0)
		conf_fail(cfg, "%s", msg);
	else
		conf_fail(cfg, "syntax error: %s", msg);
}

/* After an error inside an included file, say which line included it. */
static void
ctx_note_included(const char *file, int line)
{
	size_t n;

	if (ctx->errlen == 0 || ctx->noted)
		return;
	ctx->noted = true;
	n = strlen(ctx->err);
	if (n + 1 < ctx->errlen)
		snprintf(ctx->err + n, ctx->errlen - n,
		    " (included from %s:%d)", file, line);
	sanitize(ctx->err);
}

static int
parse_range(const struct opt_spec *sp, const char *s, long *out, char *why,
    size_t len)
{
	const char *p = s[0] == '-' ? s + 1 : s;
	char *end;
	long v;

	if (*p < '0' || *p > '9')
		goto nan;
	errno = 0;
	v = strtol(s, &end, 10);
	if (*end != '\0')
		goto nan;
	if (errno == ERANGE || v < sp->min || v > sp->max) {
		snprintf(why, len, "%.64s is out of range", s);
		return -1;
	}
	*out = v;
	return 0;
nan:
	snprintf(why, len, "'%.64s' is not a number", s);
	return -1;
}

/* "auto" is stored as 0, as CONF_DEFAULT_WORKERS. */
static int
parse_workers(const struct opt_spec *sp, const char *s, long *out,
    char *why, size_t len)
{
	if (strcmp(s, "auto") == 0) {
		*out = 0;
		return 0;
	}
	return parse_range(sp, s, out, why, len);
}

/* A word parsed to v (-1: not one): *out, or why it is not a noun. */
static int
parse_word(int v, const char *s, const char *noun, long *out, char *why,
    size_t len)
{
	if (v == -1) {
		snprintf(why, len, "'%.64s' is not a %s", s, noun);
		return -1;
	}
	*out = v;
	return 0;
}

static int
parse_level(const struct opt_spec *sp, const char *s, long *out, char *why,
    size_t len)
{
	(void)sp;
	return parse_word(log_level_parse(s), s, "level", out, why, len);
}

/* libconfuse's words, in any case: true, yes, on; false, no, off. */
static int
parse_bool(const struct opt_spec *sp, const char *s, long *out, char *why,
    size_t len)
{
	(void)sp;
	return parse_word(cfg_parse_boolean(s), s, "boolean", out, why, len);
}

/* on, off or try; libconfuse's booleans as on and off. */
static int
parse_sandbox(const struct opt_spec *sp, const char *s, long *out,
    char *why, size_t len)
{
	if (strcasecmp(s, "try") == 0)
		*out = CONF_SANDBOX_TRY;
	else if (parse_bool(sp, s, out, why, len) == 0)
		*out = *out != 0 ? CONF_SANDBOX_ON : CONF_SANDBOX_OFF;
	else {
		snprintf(why, len, "'%.64s' is not a boolean or try", s);
		return -1;
	}
	return 0;
}

/* One of the model names conf_model_name gives. */
static int
parse_model(const struct opt_spec *sp, const char *s, long *out, char *why,
    size_t len)
{
	int m;

	(void)sp;
	for (m = CONF_MODEL_EVENTS; m <= CONF_MODEL_THREAD_POOL; m++)
		if (strcasecmp(s, conf_model_name(m)) == 0) {
			*out = m;
			return 0;
		}
	snprintf(why, len, "'%.64s' is not a server model", s);
	return -1;
}

/* For printf's "'%.*s%s'": a string's head, and "..." if there is more. */
#define SHOW(s) 64, (s), strlen(s) > 64 ? "..." : ""

/* A string must fit its fixed-size field in struct conf. */
static int
check_length(const struct opt_spec *sp, const char *s, char *why, size_t len)
{
	size_t n = strlen(s);

	if (n <= (size_t)sp->max)
		return 0;
	snprintf(why, len, "'%.*s%s' is too long (%zu bytes, at most %ld)",
	    SHOW(s), n, sp->max);
	return -1;
}

/* "" (off) or one address; the overlap with listen waits (check_metrics). */
static int
parse_metrics_listen(const struct opt_spec *sp, const char *s, long *out,
    char *why, size_t len)
{
	struct listen_addr la;

	*out = 0;
	if (s[0] == '\0')
		return 0;
	if (check_length(sp, s, why, len) == -1)
		return -1;
	return listener_parse(s, &la, why, len);
}

/* An existing user: *out is its uid, so that uid 0 can be checked later. */
static int
parse_user(const struct opt_spec *sp, const char *s, long *out, char *why,
    size_t len)
{
	uid_t uid = 0;
	gid_t gid;
	int rc;

	if (s[0] == '\0') {
		snprintf(why, len, "the name is empty");
		return -1;
	}
	if (check_length(sp, s, why, len) == -1)
		return -1;
	if ((rc = account_user(s, &uid, &gid)) == 1)
		snprintf(why, len, "'%s' does not exist", s);
	else if (rc == -1)
		snprintf(why, len, "cannot look up '%s': %s", s,
		    strerror(errno));
	else
		*out = (long)uid;
	return rc == 0 ? 0 : -1;
}

/* An existing group, or "" for the user's primary group. */
static int
parse_group(const struct opt_spec *sp, const char *s, long *out,
    char *why, size_t len)
{
	gid_t gid;
	int rc;

	*out = 0;
	if (s[0] == '\0')
		return 0;
	if (check_length(sp, s, why, len) == -1)
		return -1;
	if ((rc = account_group(s, &gid)) == 1)
		snprintf(why, len, "'%s' does not exist", s);
	else if (rc == -1)
		snprintf(why, len, "cannot look up '%s': %s", s,
		    strerror(errno));
	return rc == 0 ? 0 : -1;
}

/*
 * An absolute file name.  A control character would break the one-line
 * summary and log lines that name the file; it is never meant.
 */
static int
parse_pidfile(const struct opt_spec *sp, const char *s, long *out,
    char *why, size_t len)
{
	const unsigned char *p;

	*out = 0;
	if (s[0] == '\0') {
		snprintf(why, len, "the name is empty");
		return -1;
	}
	if (check_length(sp, s, why, len) == -1)
		return -1;
	for (p = (const unsigned char *)s; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			break;
	if (s[0] != '/')
		snprintf(why, len, "'%.*s%s' is not an absolute path", SHOW(s));
	else if (s[strlen(s) - 1] == '/')
		snprintf(why, len, "'%.*s%s' names a directory", SHOW(s));
	else if (*p != '\0')
		snprintf(why, len, "'%.*s%s' has a control character",
		    SHOW(s));
	else
		return 0;
	return -1;
}

static enum opt_id
opt_lookup(const char *name)
{
	int i;

	for (i = 0; i < OPT_COUNT; i++)
		if (strcmp(specs[i].name, name) == 0)
			return (enum opt_id)i;
	abort(); /* conf_opts and specs disagree: a bug, not a bad file */
}

/* Refuse the second assignment of an option, wherever the first was. */
static int
check_once(cfg_t *cfg, enum opt_id id)
{
	if (ctx->seen[id].line != 0) {
		conf_fail(cfg, "%s: given twice (first at %s:%d); allowed: once",
		    specs[id].name, ctx->seen[id].file, ctx->seen[id].line);
		return -1;
	}
	ctx->seen[id].line = cfg->line > 0 ? cfg->line : 1;
	snprintf(ctx->seen[id].file, sizeof(ctx->seen[id].file), "%s",
	    cfg->filename != NULL ? cfg->filename : "?");
	return 0;
}

/*
 * A user with uid 0 is refused unless allow_root = true is in the file,
 * before or after it: keep the message, on the user's own line, until
 * the whole file has been read (check_root).
 */
static void
defer_root(cfg_t *cfg, const char *user)
{
	size_t n;

	snprintf(ctx->root_msg, sizeof(ctx->root_msg), "%s:%d: user: '%s' is "
	    "uid 0; allowed: an unprivileged user, or allow_root = true",
	    cfg->filename != NULL ? cfg->filename : "?", cfg->line, user);
	n = strlen(ctx->root_msg);
	if (ctx->depth > 0 && ctx->includer != NULL)
		snprintf(ctx->root_msg + n, sizeof(ctx->root_msg) - n,
		    " (included from %s:%d)", ctx->includer,
		    ctx->includer_line);
}

static int check_addr(const char *, char *const *, size_t, const char *,
    char *, size_t);
static size_t opt_values(cfg_opt_t *, size_t, char **);

/* Does spec (already checked) ask for port 0? */
static bool
port_zero(const char *spec)
{
	struct listen_addr la;
	char junk[8];

	return listener_parse(spec, &la, junk, sizeof(junk)) == 0 &&
	    (la.ss.ss_family == AF_INET6 ?
	    ((struct sockaddr_in6 *)&la.ss)->sin6_port :
	    ((struct sockaddr_in *)&la.ss)->sin_port) == 0;
}

/*
 * metrics_listen may not be, nor overlap, an echo listener's address
 * (every LIST option's, and listen's default when the file has none):
 * known only once the whole file is read, so the error names
 * metrics_listen's own line.  Port 0 overlaps nothing: the kernel picks.
 */
static int
check_metrics(cfg_t *cfg)
{
	char *v[CONF_LISTEN_MAX], why[512], def[64], *cut;
	const char *spec;
	cfg_opt_t *opt;
	size_t k;
	int i;

	if (cfg_size(cfg, "metrics_listen") == 0 ||
	    (spec = cfg_getstr(cfg, "metrics_listen")) == NULL ||
	    spec[0] == '\0' || port_zero(spec))
		return 0;
	for (i = 0; i < OPT_COUNT; i++) {
		if (specs[i].kind != K_LIST)
			continue;
		opt = cfg_getopt(cfg, specs[i].name);
		k = opt_values(opt, cfg_opt_size(opt), v);
		if (k == 0 && i == OPT_listen && ctx->seen[i].line == 0) {
			snprintf(def, sizeof(def), "%s", specs[i].def);
			v[k++] = def;
		}
		if (check_addr(spec, v, k, specs[i].name, why,
		    sizeof(why)) == -1)
			break;
	}
	if (i == OPT_COUNT)
		return 0;
	if ((cut = strstr(why, "; allowed:")) != NULL)
		*cut = '\0'; /* ours follows */
	ctx_printf("%s:%d: metrics_listen: %s; allowed: %s",
	    ctx->seen[OPT_metrics_listen].file,
	    ctx->seen[OPT_metrics_listen].line, why,
	    specs[OPT_metrics_listen].allowed);
	return -1;
}

static int
check_root(cfg_t *cfg)
{
	if (ctx->root_msg[0] == '\0' || (cfg_size(cfg, "allow_root") > 0 &&
	    cfg_getbool(cfg, "allow_root") == cfg_true))
		return 0;
	ctx_printf("%s", ctx->root_msg);
	return -1;
}

/* Hand libconfuse the value in the type it expects for opt. */
static void
store(const cfg_opt_t *opt, const char *value, long v, void *result)
{
	if (opt->type == CFGT_STR)
		*(const char **)result = value; /* libconfuse copies it */
	else if (opt->type == CFGT_BOOL)
		*(int *)result = (int)v;
	else
		*(long *)result = v;
}

static int
value_cb(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	const struct opt_spec *sp;
	enum opt_id id;
	char why[256];
	long v = 0;

	id = opt_lookup(cfg_opt_name(opt));
	sp = &specs[id];
	if (value == NULL)
		value = "";
	if (check_once(cfg, id) == -1)
		return -1;
	if (sp->parse(sp, value, &v, why, sizeof(why)) == -1) {
		conf_fail(cfg, "%s: %s; allowed: %s", sp->name, why,
		    sp->allowed);
		return -1;
	}
	if (id == OPT_user && v == 0)
		defer_root(cfg, value);
	store(opt, value, v, result);
	return 0;
}

/* A spec's identity: the parsed address, so "1.2.3.4:07" == "1.2.3.4:7". */
static void
addr_key(const struct listen_addr *la, char *key, size_t keylen)
{
	char a[128];

	listener_format((const struct sockaddr *)&la->ss, a, sizeof(a));
	snprintf(key, keylen, "%s%s", la->any ? "*" : "", a);
}

/*
 * Validate spec against n specs of a list: neither the same address nor
 * one that overlaps it (the second could not listen).  list names that
 * list when it is another one ("listen"), or is NULL for spec's own.
 */
static int
check_addr(const char *spec, char *const *prev, size_t n, const char *list,
    char *why, size_t len)
{
	struct listen_addr la, pla;
	char key[160], pkey[160], junk[8], whose[64] = "";
	size_t i;

	if (listener_parse(spec, &la, why, len) == -1)
		return -1;
	if (list != NULL)
		snprintf(whose, sizeof(whose), "%s's ", list);
	addr_key(&la, key, sizeof(key));
	for (i = 0; i < n; i++) {
		if (listener_parse(prev[i], &pla, junk, sizeof(junk)) == -1)
			continue;
		addr_key(&pla, pkey, sizeof(pkey));
		if (strcmp(spec, prev[i]) == 0 && list != NULL)
			snprintf(why, len, "'%.64s' is in %s too; allowed: "
			    "each address in one of " LISTS, spec, list);
		else if (strcmp(spec, prev[i]) == 0)
			snprintf(why, len, "'%.64s' is given twice", spec);
		else if (strcmp(key, pkey) == 0)
			snprintf(why, len, "'%.64s' is the same address as "
			    "%s'%.64s'", spec, whose, prev[i]);
		else if (listener_overlap(&la, &pla))
			snprintf(why, len, "'%.64s' overlaps %s'%.64s': a "
			    "wildcard takes the port on every address (\"*\" "
			    "of both families), so the second cannot listen; "
			    "allowed: one of them", spec, whose, prev[i]);
		else
			continue;
		return -1;
	}
	return 0;
}

/* The first n values of a list option, as an array of strings. */
static size_t
opt_values(cfg_opt_t *opt, size_t n, char **v)
{
	size_t i;

	for (i = 0; i < n && i < CONF_LISTEN_MAX; i++)
		v[i] = cfg_opt_getnstr(opt, (unsigned int)i);
	return i;
}

/*
 * Check value, the n-th element of list option id (n counts it), against
 * the elements before it and every address the other LIST options have
 * so far, and the shared budget.  0, or -1 with why.
 */
static int
check_list_value(cfg_t *cfg, enum opt_id id, const char *value,
    unsigned int n, char *why, size_t len)
{
	char *v[CONF_LISTEN_MAX];
	cfg_opt_t *other;
	size_t k, total = n;
	int i;

	for (i = 0; i < OPT_COUNT; i++)
		if (specs[i].kind == K_LIST && i != (int)id)
			total += cfg_opt_size(cfg_getopt(cfg, specs[i].name));
	if (total > CONF_LISTEN_MAX) {
		snprintf(why, len, "more than %d addresses%s; allowed: %s",
		    CONF_LISTEN_MAX, total > n ? " in " LISTS " together" : "",
		    specs[id].allowed);
		return -1;
	}
	k = opt_values(cfg_getopt(cfg, specs[id].name), n - 1, v);
	if (check_addr(value, v, k, NULL, why, len) == -1)
		return -1;
	for (i = 0; i < OPT_COUNT; i++) {
		if (specs[i].kind != K_LIST || i == (int)id)
			continue;
		other = cfg_getopt(cfg, specs[i].name);
		k = opt_values(other, cfg_opt_size(other), v);
		if (check_addr(value, v, k, specs[i].name, why, len) == -1)
			return -1;
	}
	return 0;
}

/*
 * Called once per list element, after libconfuse has added the slot for
 * it: n counts this element, and n == 1 starts a new "listen =".
 */
static int
list_cb(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	enum opt_id id = opt_lookup(cfg_opt_name(opt));
	unsigned int n = cfg_opt_size(opt);
	char why[512];

	if (value == NULL)
		value = "";
	if (n == 1 && check_once(cfg, id) == -1)
		return -1;
	if (check_list_value(cfg, id, value, n > 0 ? n : 1, why,
	    sizeof(why)) == -1) {
		conf_fail(cfg, "%s: %s", specs[id].name, why);
		return -1;
	}
	*(const char **)result = value;
	return 0;
}

/* proxy_trusted: each element a block, each block once. */
static int
cidrs_cb(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	enum opt_id id = opt_lookup(cfg_opt_name(opt));
	unsigned int i, n = cfg_opt_size(opt);
	struct cidr c, prev;
	char why[512], junk[8];

	if (value == NULL)
		value = "";
	if (n == 1 && check_once(cfg, id) == -1)
		return -1;
	if (n > (unsigned int)specs[id].max) {
		conf_fail(cfg, "%s: more than %ld blocks; allowed: %s",
		    specs[id].name, specs[id].max, specs[id].allowed);
		return -1;
	}
	if (cidr_parse(value, &c, why, sizeof(why)) == -1) {
		conf_fail(cfg, "%s: %s", specs[id].name, why);
		return -1;
	}
	for (i = 0; i + 1 < n; i++) {
		if (cidr_parse(cfg_opt_getnstr(opt, i), &prev, junk,
		    sizeof(junk)) == -1 || memcmp(&c, &prev, sizeof(c)) != 0)
			continue;
		conf_fail(cfg, "%s: '%.64s' is the same block as '%.64s'; "
		    "allowed: each block once", specs[id].name, value,
		    cfg_opt_getnstr(opt, i));
		return -1;
	}
	*(const char **)result = value;
	return 0;
}

/*
 * Open path for the scanner (conftext).  An empty listen list is noted
 * in *empty (its line, or 0): it is refused only at the end, when
 * proxy_listen is empty too.  On failure why says what is wrong and
 * *line is where in the file, or 0 when the file as a whole is the
 * problem.
 */
static int
src_open(struct conftext *t, const char *path, char *why, size_t len,
    int *line, int *empty)
{
	const char *p;

	*empty = 0;
	if (conftext_load(t, path, why, len, line) == -1)
		return -1;
	if ((p = conftext_empty_list(t->buf, specs[OPT_listen].name)) != NULL)
		*empty = conftext_line(t->buf, p);
	if (conftext_stream(t, why, len) == -1) {
		conftext_close(t);
		return -1;
	}
	return 0;
}

/*
 * "listen = {}" at line of file: it counts as listen's assignment (a
 * second one is "given twice"), and is checked at the end.
 */
static void
note_empty_listen(const char *file, int line)
{
	struct where *w = &ctx->empty_listen;

	if (line == 0 || w->line != 0)
		return;
	w->line = line;
	snprintf(w->file, sizeof(w->file), "%s", file);
	if (ctx->seen[OPT_listen].line == 0)
		ctx->seen[OPT_listen] = *w;
}

/* A relative include names a file beside the including one. */
static int
include_path(const char *parent, const char *name, char *buf, size_t len)
{
	const char *slash = strrchr(parent, '/');
	int n;

	if (name[0] == '/' || slash == NULL)
		n = snprintf(buf, len, "%s", name);
	else
		n = snprintf(buf, len, "%.*s/%s", (int)(slash - parent), parent,
		    name);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* Parse fp in place of the include() call, then carry on after it. */
static int
parse_included(cfg_t *cfg, FILE *fp, const char *path)
{
	const char *outer = ctx->includer;
	char *parent = cfg->filename;
	int line = cfg->line, outer_line = ctx->includer_line, rc;

	if ((cfg->filename = strdup(path)) == NULL) {
		cfg->filename = parent;
		conf_fail(cfg, "include: out of memory");
		return -1;
	}
	ctx->depth++;
	ctx->includer = parent;
	ctx->includer_line = line;
	rc = cfg_parse_fp(cfg, fp);
	ctx->includer = outer;
	ctx->includer_line = outer_line;
	ctx->depth--;
	free(cfg->filename);
	cfg->filename = parent;
	cfg->line = line;
	if (rc == CFG_SUCCESS)
		return 0;
	if (ctx->failed)
		ctx_note_included(parent, line);
	else
		conf_fail(cfg, "include: '%s': cannot parse", path);
	return -1;
}

static int
include_cb(cfg_t *cfg, cfg_opt_t *opt, int argc, const char **argv)
{
	char path[PATH_MAX], why[256];
	struct conftext text;
	int line, empty, rc;

	(void)opt;
	if (argc != 1) {
		conf_fail(cfg, "include: %d arguments; allowed: one, "
		    "include(\"FILE\")", argc);
		return -1;
	}
	if (ctx->depth >= INCLUDE_DEPTH) {
		conf_fail(cfg, "include: '%s': nested too deeply (a loop?); "
		    "allowed: %d levels", argv[0], INCLUDE_DEPTH);
		return -1;
	}
	if (include_path(cfg->filename != NULL ? cfg->filename : "",
	    argv[0], path, sizeof(path)) == -1) {
		conf_fail(cfg, "include: '%.64s...': name too long", argv[0]);
		return -1;
	}
	if (src_open(&text, path, why, sizeof(why), &line, &empty) == -1) {
		if (line > 0) {
			ctx_printf("%s:%d: %s", path, line, why);
			ctx_note_included(cfg->filename, cfg->line);
		} else
			conf_fail(cfg, "include: '%s': %s", path, why);
		return -1;
	}
	note_empty_listen(path, empty);
	rc = parse_included(cfg, text.fp, path);
	conftext_close(&text);
	return rc;
}

int
conf_auto_workers(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		return 1;
	return n > CONF_WORKERS_MAX ? CONF_WORKERS_MAX : (int)n;
}

/* 0 is "auto": one worker per online CPU. */
static void
set_workers(struct conf *c, long n)
{
	c->workers_auto = n == 0;
	c->workers = n == 0 ? conf_auto_workers() : (int)n;
}

/* Store v (or s, for a string) into sp's field of c. */
static void
spec_set(struct conf *c, const struct opt_spec *sp, long v, const char *s)
{
	char *field = (char *)c + sp->offset;

	switch (sp->kind) {
	case K_WORKERS:
		set_workers(c, v);
		break;
	case K_INT:
		*(int *)(void *)field = (int)v;
		break;
	case K_BOOL:
		*(bool *)(void *)field = v != 0;
		break;
	case K_STR:
		/* The parse callback checked the length: nothing is cut. */
		snprintf(field, sp->size, "%s", s);
		break;
	default:
		abort(); /* a list: a bug in the caller */
	}
}

/* A LIST option's strings and their count in c. */
static char **
list_items(struct conf *c, const struct opt_spec *sp)
{
	return (char **)(void *)((char *)c + sp->offset);
}

static size_t *
list_count(struct conf *c, const struct opt_spec *sp)
{
	return (size_t *)(void *)((char *)c + sp->count);
}

/*
 * Copy n specs into c's list sp, replacing it; -1 (c untouched) on
 * ENOMEM.
 */
static int
list_install(struct conf *c, const struct opt_spec *sp, char *const *v,
    size_t n)
{
	char *copy[CONF_LISTEN_MAX] = { NULL }, **items = list_items(c, sp);
	size_t i, *count = list_count(c, sp);

	for (i = 0; i < n; i++) {
		if ((copy[i] = strdup(v[i])) == NULL) {
			while (i > 0)
				free(copy[--i]);
			return -1;
		}
	}
	for (i = 0; i < *count; i++)
		free(items[i]);
	memcpy(items, copy, n * sizeof(copy[0]));
	*count = n;
	return 0;
}

/*
 * A LIST option as the file gave it; "listen = {}" empties the default
 * (the parse refused it unless proxy_listen has addresses).
 */
static int
extract_list(cfg_t *cfg, const struct opt_spec *sp, struct conf *c,
    char *err, size_t errlen)
{
	char *v[CONF_LISTEN_MAX];
	cfg_opt_t *opt = cfg_getopt(cfg, sp->name);
	size_t n = opt_values(opt, cfg_opt_size(opt), v);
	int i;

	if (n == 0 && (opt->flags & CFGF_MODIFIED) == 0)
		return 0;
	/* An empty list the text pass did not see ("+listen = {}"). */
	for (i = 0; n == 0 && sp == &specs[OPT_listen] && i < OPT_COUNT; i++)
		if (specs[i].kind == K_LIST &&
		    cfg_size(cfg, specs[i].name) > 0)
			break;
	if (n == 0 && sp == &specs[OPT_listen] && i == OPT_COUNT) {
		snprintf(err, errlen, "%s: listen: the list is empty; allowed: "
		    "%s", cfg->filename, sp->allowed);
		return -1;
	}
	if (list_install(c, sp, v, n) == -1) {
		snprintf(err, errlen, "%s: out of memory", cfg->filename);
		return -1;
	}
	return 0;
}

/* The blocks, checked while parsing: parsed again into c. */
static void
extract_cidrs(cfg_t *cfg, const struct opt_spec *sp, struct conf *c)
{
	struct cidr *set = (struct cidr *)(void *)((char *)c + sp->offset);
	cfg_opt_t *opt = cfg_getopt(cfg, sp->name);
	size_t i, n = cfg_opt_size(opt), *count = list_count(c, sp);
	char why[8];

	*count = 0;
	for (i = 0; i < n && i < (size_t)sp->max; i++)
		if (cidr_parse(cfg_opt_getnstr(opt, (unsigned int)i),
		    &set[*count], why, sizeof(why)) == 0)
			(*count)++;
}

/* Everything was validated while parsing: this only copies. */
static int
extract(cfg_t *cfg, struct conf *c, char *err, size_t errlen)
{
	const struct opt_spec *sp;
	cfg_opt_t *opt;
	const char *str;
	int i;

	for (i = 0; i < OPT_COUNT; i++) {
		sp = &specs[i];
		opt = cfg_getopt(cfg, sp->name);
		if (sp->kind == K_LIST) {
			if (extract_list(cfg, sp, c, err, errlen) == -1)
				return -1;
			continue;
		}
		if (sp->kind == K_CIDRS) {
			extract_cidrs(cfg, sp, c);
			continue;
		}
		if (cfg_opt_size(opt) == 0)
			continue;
		if (sp->kind == K_STR) {
			str = cfg_opt_getnstr(opt, 0);
			spec_set(c, sp, 0, str != NULL ? str : "");
		} else if (sp->kind == K_BOOL)
			spec_set(c, sp, cfg_opt_getnbool(opt, 0), NULL);
		else
			spec_set(c, sp, cfg_opt_getnint(opt, 0), NULL);
	}
	return 0;
}

/*
 * What only the whole file can tell: an empty listen is allowed beside
 * proxy_listen's addresses; and without listen in the file, its default
 * is one of the addresses proxy_listen's must not repeat or overlap.
 */
static int
check_lists_end(cfg_t *cfg)
{
	const struct where *e = &ctx->empty_listen, *pl;
	char *def = (char *)(uintptr_t)specs[OPT_listen].def, *v[CONF_LISTEN_MAX];
	cfg_opt_t *opt = cfg_getopt(cfg, specs[OPT_proxy_listen].name);
	size_t i, n = opt_values(opt, cfg_opt_size(opt), v);
	char why[512];

	if (e->line != 0 && cfg_size(cfg, specs[OPT_listen].name) == 0 &&
	    n == 0) {
		ctx_printf("%s:%d: listen: the list is empty; allowed: %s",
		    e->file, e->line, specs[OPT_listen].allowed);
		return -1;
	}
	if (ctx->seen[OPT_listen].line != 0 || n == 0 ||
	    (cfg_getopt(cfg, specs[OPT_listen].name)->flags &
	    CFGF_MODIFIED) != 0)
		return 0;
	pl = &ctx->seen[OPT_proxy_listen];
	if (n + 1 > CONF_LISTEN_MAX) {
		ctx_printf("%s:%d: proxy_listen: more than %d addresses in "
		    LISTS " together (listen's default is one); allowed: %s",
		    pl->file, pl->line, CONF_LISTEN_MAX,
		    specs[OPT_proxy_listen].allowed);
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (check_addr(v[i], &def, 1, "listen", why,
		    sizeof(why)) == 0)
			continue;
		ctx_printf("%s:%d: proxy_listen: %s (listen's default: set "
		    "listen, or listen = {} for none)", pl->file, pl->line,
		    why);
		return -1;
	}
	return 0;
}

static cfg_t *
parse_fp(FILE *fp, const char *path, int empty_listen, char *err,
    size_t errlen)
{
	struct parse_ctx pc;
	cfg_t *cfg;
	int rc;

	memset(&pc, 0, sizeof(pc));
	pc.err = err;
	pc.errlen = errlen;
	if ((cfg = cfg_init(conf_opts, CFGF_NONE)) == NULL ||
	    (cfg->filename = strdup(path)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		if (cfg != NULL)
			cfg_free(cfg);
		return NULL;
	}
	cfg_set_error_function(cfg, on_cfg_error);
	ctx = &pc;
	note_empty_listen(path, empty_listen);
	rc = cfg_parse_fp(cfg, fp);
	if (rc == CFG_SUCCESS && (check_root(cfg) == -1 ||
	    check_lists_end(cfg) == -1))
		rc = CFG_PARSE_ERROR;
	if (rc == CFG_SUCCESS && check_metrics(cfg) == -1)
		rc = CFG_PARSE_ERROR;
	ctx = NULL;
	if (rc == CFG_SUCCESS)
		return cfg;
	if (!pc.failed)
		snprintf(err, errlen, "%s: cannot parse (out of memory?)", path);
	cfg_free(cfg);
	return NULL;
}

/* Open, check and parse path; NULL with a message in err. */
static cfg_t *
parse_file(const char *path, char *err, size_t errlen)
{
	char why[256];
	struct conftext text;
	cfg_t *cfg;
	int line, empty;

	if (src_open(&text, path, why, sizeof(why), &line, &empty) == -1) {
		if (line > 0)
			snprintf(err, errlen, "%s:%d: %s", path, line, why);
		else
			snprintf(err, errlen, "%s: %s", path, why);
		return NULL;
	}
	cfg = parse_fp(text.fp, path, empty, err, errlen);
	conftext_close(&text);
	return cfg;
}

/* The table's defaults, parsed as a file's values would be. */
void
conf_defaults(struct conf *c)
{
	const struct opt_spec *sp;
	char why[256];
	long v;

	memset(c, 0, sizeof(*c));
	for (sp = specs; sp < specs + OPT_COUNT; sp++) {
		if (sp->kind == K_LIST) {
			/* conf_load checks listen's strdup. */
			if (sp->def[0] != '\0' &&
			    (list_items(c, sp)[0] = strdup(sp->def)) != NULL)
				*list_count(c, sp) = 1;
			continue;
		}
		if (sp->kind == K_CIDRS)
			continue; /* none */
		if (sp->kind == K_STR)
			spec_set(c, sp, 0, sp->def);
		else if (sp->parse(sp, sp->def, &v, why, sizeof(why)) == 0)
			spec_set(c, sp, v, NULL);
		else
			abort(); /* a default the table refuses: a bug */
	}
}

int
conf_load(struct conf *c, const char *path, char *err, size_t errlen)
{
	struct conf nc;
	cfg_t *cfg;
	int rc = -1;

	if (errlen > 0)
		err[0] = '\0';
	conf_defaults(&nc);
	if (nc.nlisten == 0)
		snprintf(err, errlen, "%s: out of memory", path);
	else if (strlen(path) >= sizeof(nc.path))
		snprintf(err, errlen, "%.64s...: file name too long; allowed: "
		    "%zu bytes", path, sizeof(nc.path) - 1);
	else if ((cfg = parse_file(path, err, errlen)) != NULL) {
		rc = extract(cfg, &nc, err, errlen);
		cfg_free(cfg);
	}
	if (rc == 0) {
		snprintf(nc.path, sizeof(nc.path), "%s", path);
		conf_free(c);
		*c = nc;
	} else {
		conf_free(&nc);
		if (errlen > 0)
			sanitize(err); /* the file's name may hold any byte */
	}
	return rc;
}

int
conf_set_workers(struct conf *c, const char *value, char *err, size_t errlen)
{
	const struct opt_spec *sp = &specs[OPT_workers];
	char why[256];
	long n;

	if (sp->parse(sp, value != NULL ? value : "", &n, why,
	    sizeof(why)) == -1) {
		snprintf(err, errlen, "%s: %s; allowed: %s", sp->name, why,
		    sp->allowed);
		if (errlen > 0)
			sanitize(err); /* why quotes the value */
		return -1;
	}
	spec_set(c, sp, n, NULL);
	return 0;
}

int
conf_set_listen(struct conf *c, char *const *addrs, size_t n, char *err,
    size_t errlen)
{
	const struct opt_spec *px = &specs[OPT_proxy_listen];
	char why[512];
	size_t i, npx = c->nproxy_listen;

	if (n < 1 || n > CONF_LISTEN_MAX) {
		snprintf(err, errlen, "listen: %zu addresses; allowed: %s", n,
		    specs[OPT_listen].allowed);
		return -1;
	}
	if (n + npx > CONF_LISTEN_MAX) {
		snprintf(err, errlen, "listen: %zu addresses, and %zu in "
		    "proxy_listen; allowed: %s", n, npx, px->allowed);
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (check_addr(addrs[i], addrs, i, NULL, why,
		    sizeof(why)) == -1 || check_addr(addrs[i],
		    c->proxy_listen, npx, px->name, why, sizeof(why)) == -1) {
			snprintf(err, errlen, "listen: %s", why);
			if (errlen > 0)
				sanitize(err); /* why quotes the value */
			return -1;
		}
	}
	if (list_install(c, &specs[OPT_listen], addrs, n) == -1) {
		snprintf(err, errlen, "listen: out of memory");
		return -1;
	}
	return 0;
}

static void summary_add(char *, size_t, size_t *, const char *, ...)
    __attribute__((format(printf, 4, 5)));

static void
summary_add(char *buf, size_t len, size_t *off, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*off >= len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf + *off, len - *off, fmt, ap);
	va_end(ap);
	if (n > 0)
		*off += (size_t)n;
}

/*
 * The model, when it is not the default, and what it does with the
 * options it cannot honour as written: never silently ignored.
 */
static void
summary_model(const struct conf *c, char *buf, size_t len, size_t *off)
{
	if (c->model == CONF_MODEL_EVENTS)
		return;
	summary_add(buf, len, off, ", model %s", conf_model_name(c->model));
	if (c->model == CONF_MODEL_PREFORK)
		summary_add(buf, len, off, " (one connection per worker: "
		    "max_connections %d does not apply, capacity is workers)",
		    c->max_connections);
	else if (c->model == CONF_MODEL_THREAD_POOL)
		summary_add(buf, len, off, " with %d thread%s per worker "
		    "(capacity: threads, not max_connections)", c->threads,
		    c->threads == 1 ? "" : "s");
	else
		summary_add(buf, len, off, " (max_connections live %s per "
		    "worker)", c->model == CONF_MODEL_PROCESS ? "children" :
		    "threads");
}

/* The PROXY protocol options, when any is set. */
static void
summary_proxy(const struct conf *c, char *buf, size_t len, size_t *off)
{
	char b[64];
	size_t i;

	if (c->nproxy_listen == 0 && c->nproxy_trusted == 0)
		return;
	summary_add(buf, len, off, ", proxy_listen");
	for (i = 0; i < c->nproxy_listen; i++)
		summary_add(buf, len, off, " %s", c->proxy_listen[i]);
	if (c->nproxy_listen == 0)
		summary_add(buf, len, off, " (none)");
	summary_add(buf, len, off, ", proxy_trusted");
	for (i = 0; i < c->nproxy_trusted; i++) {
		cidr_format(&c->proxy_trusted[i], b, sizeof(b));
		summary_add(buf, len, off, " %s", b);
	}
	if (c->nproxy_trusted == 0)
		summary_add(buf, len, off, " (none: every proxied connection "
		    "is closed)");
	summary_add(buf, len, off, ", proxy_timeout %d s", c->proxy_timeout);
}

void
conf_summary(const struct conf *c, char *buf, size_t len)
{
	size_t i, off = 0;

	if (len == 0)
		return;
	buf[0] = '\0';
	summary_add(buf, len, &off, "%d worker%s%s x %d connections, listen",
	    c->workers, c->workers == 1 ? "" : "s",
	    c->workers_auto ? " (auto)" : "", c->max_connections);
	for (i = 0; i < c->nlisten; i++)
		summary_add(buf, len, &off, " %s", c->listen[i]);
	if (c->nlisten == 0)
		summary_add(buf, len, &off, " (none)");
	summary_proxy(c, buf, len, &off);
	if (c->metrics_listen[0] != '\0')
		summary_add(buf, len, &off, ", metrics_listen %s",
		    c->metrics_listen);
	summary_add(buf, len, &off, ", backlog %d, idle_timeout %d s%s, "
	    "shutdown_timeout %d s, log_level %s", c->backlog,
	    c->idle_timeout, c->idle_timeout == 0 ? " (never)" : "",
	    c->shutdown_timeout, log_level_name(c->log_level));
	summary_add(buf, len, &off, ", worker_timeout %d s%s, user %s%s%s%s, "
	    "pidfile %s", c->worker_timeout,
	    c->worker_timeout == 0 ? " (never)" : "", c->user,
	    c->group[0] != '\0' ? ":" : "", c->group,
	    c->allow_root ? " (allow_root)" : "", c->pidfile);
	summary_add(buf, len, &off, ", max_connection_time %d s%s, per IP %d "
	    "connections and %d a second%s%s, sandbox %s",
	    c->max_connection_time,
	    c->max_connection_time == 0 ? " (no limit)" : "",
	    c->max_connections_per_ip, c->max_connection_rate_per_ip,
	    c->max_connections_per_ip == 0 &&
	    c->max_connection_rate_per_ip == 0 ? " (no limits)" : "",
	    c->limits_exempt_loopback ? " (loopback exempt)" : "",
	    conf_sandbox_name(c->sandbox));
	summary_model(c, buf, len, &off);
}

const char *
conf_option_name(size_t i)
{
	return i < OPT_COUNT ? specs[i].name : NULL;
}

const char *
conf_model_name(int model)
{
	static const char *const names[] = {
		[CONF_MODEL_EVENTS] = "events",
		[CONF_MODEL_PREFORK] = "prefork",
		[CONF_MODEL_PROCESS] = "process-per-connection",
		[CONF_MODEL_THREAD] = "thread-per-connection",
		[CONF_MODEL_THREAD_POOL] = "thread-pool",
	};

	return model >= 0 && (size_t)model < sizeof(names) / sizeof(names[0]) ?
	    names[model] : "?";
}

const char *
conf_sandbox_name(int mode)
{
	switch (mode) {
	case CONF_SANDBOX_OFF:
		return "off";
	case CONF_SANDBOX_ON:
		return "on";
	case CONF_SANDBOX_TRY:
		return "try";
	default:
		return "?";
	}
}

void
conf_free(struct conf *c)
{
	const struct opt_spec *sp;
	size_t i, *n;
	char **items;

	if (c == NULL)
		return;
	for (sp = specs; sp < specs + OPT_COUNT; sp++) {
		if (sp->kind != K_LIST)
			continue;
		items = list_items(c, sp);
		n = list_count(c, sp);
		for (i = 0; i < *n && i < CONF_LISTEN_MAX; i++) {
			free(items[i]);
			items[i] = NULL;
		}
		*n = 0;
	}
}
