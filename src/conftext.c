/*
 * conftext: a configuration file's text, read and made safe for
 * libconfuse before its scanner sees it.
 *
 * What libconfuse 3.3's scanner does that this file answers:
 * - It calls exit(2) ("input in flex scanner failed") when asked to read
 *   a directory, so every file is read here first: a regular file of at
 *   most CONFTEXT_SIZE_MAX bytes, opened O_NONBLOCK (a FIFO would wait
 *   for a writer), and handed over from memory.
 * - A NUL byte, raw or made by an escape ("\0", "\00", "\000", "\x0",
 *   "\x00" in a double-quoted string), silently ends a value there.
 * - It counts every comment line two or three times, so every later error
 *   would name the wrong line, and a comment after a list element is a
 *   syntax error.  Comments are blanked out (newlines kept).
 * - A double-quoted string or a C comment left open runs silently to the
 *   end of the file.
 * - A malformed function call leaks the arguments read so far, so calls
 *   are checked: one quoted string or bare word between parentheses.
 * - "${VAR}" and "${VAR:-default}" are replaced from the environment, in
 *   bare and double-quoted values (not single-quoted ones), with no bound:
 *   3,000 references to a 100 KB variable took 296 MB.  The expanded size
 *   is bounded by the same cap as the file.
 * - Inside a double-quoted string its scanner reads "${" up to the next
 *   '}' wherever that is, across quotes and lines; a bare "${" at the
 *   start of a token too.  Every walk here does the same (next_piece), so
 *   this file and libconfuse always agree on where a string ends.
 * Never exits or logs; errors go into the caller's buffer.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conftext.h"

#define SPACE " \t\r\n"
/* What ends a bare word for libconfuse's scanner (and for a call). */
#define NOT_WORD SPACE "#\"'={}()+,*"

/* What comment-free text is made of, as libconfuse's scanner sees it. */
enum piece {
	P_CODE, /* one character outside strings */
	P_DQ,   /* a double-quoted string, quotes included */
	P_SQ,   /* a single-quoted string */
	P_ENV   /* a bare "${...}" */
};

/* p is at '$': past the '}' of a "${...}", or NULL if it is not one. */
static const char *
env_end(const char *p, const char *end)
{
	const char *q;

	if (end - p < 3 || p[0] != '$' || p[1] != '{')
		return NULL;
	q = memchr(p + 2, '}', (size_t)(end - p - 2));
	return q != NULL ? q + 1 : NULL;
}

/* p is at an opening quote: past the closing one, or NULL if none. */
static const char *
string_end(const char *p, const char *end)
{
	char quote = *p++;
	const char *e;

	while (p < end && *p != quote) {
		if (*p == '\\' && p + 1 < end)
			p += 2;
		else if (quote == '"' && (e = env_end(p, end)) != NULL)
			p = e;
		else
			p++;
	}
	return p < end ? p + 1 : NULL;
}

static bool
word_char(char c)
{
	return c != '\0' && strchr(NOT_WORD, c) == NULL;
}

/*
 * The piece of text that starts at p: *kind, and where it ends.  A string
 * never closed runs to end.  A bare "${" is one only where a token starts
 * (after a word character it belongs to the word).
 */
static const char *
next_piece(const char *text, const char *p, const char *end,
    enum piece *kind)
{
	const char *e;

	if (*p == '"' || *p == '\'') {
		*kind = *p == '"' ? P_DQ : P_SQ;
		e = string_end(p, end);
		return e != NULL ? e : end;
	}
	if (*p == '$' && (p == text || !word_char(p[-1])) &&
	    (e = env_end(p, end)) != NULL) {
		*kind = P_ENV;
		return e;
	}
	*kind = P_CODE;
	return p + 1;
}

int
conftext_line(const char *text, const char *p)
{
	int n = 1;

	for (; text < p; text++)
		n += *text == '\n';
	return n;
}

/* Blank [p, end) but its newlines. */
static void
blank(char *p, const char *end)
{
	for (; p < end; p++)
		if (*p != '\n')
			*p = ' ';
}

/*
 * Blank out comments (#, // and C style) outside strings.  Returns where
 * a string or comment that is never closed begins (*comment says which),
 * or NULL.
 */
static const char *
strip_comments(char *text, size_t len, bool *comment)
{
	char *p = text, *end = text + len, *e;
	enum piece kind;

	while (p < end) {
		e = text + (next_piece(text, p, end, &kind) - text);
		if ((kind == P_DQ || kind == P_SQ) &&
		    string_end(p, end) == NULL) {
			*comment = false;
			return p;
		}
		if (kind != P_CODE) {
			p = e;
			continue;
		}
		if (*p == '#' || (*p == '/' && p + 1 < end && p[1] == '/')) {
			e = memchr(p, '\n', (size_t)(end - p));
			e = e != NULL ? e : end;
		} else if (*p == '/' && p + 1 < end && p[1] == '*') {
			e = memmem(p + 2, (size_t)(end - p - 2), "*/", 2);
			if (e == NULL) {
				*comment = true;
				return p;
			}
			e += 2;
		} else {
			p++;
			continue;
		}
		blank(p, e);
		p = e;
	}
	return NULL;
}

/*
 * p follows a backslash: the length of the escape if it makes a NUL byte,
 * else 0.  libconfuse reads one or two hex digits after "\x", one to
 * three octal digits after "\".
 */
static size_t
nul_escape_len(const char *p)
{
	size_t n;

	if (p[0] == 'x') {
		if (p[1] != '0')
			return 0;
		if (!isxdigit((unsigned char)p[2]))
			return 2;
		return p[2] == '0' ? 3 : 0;
	}
	for (n = 0; n < 3 && p[n] >= '0' && p[n] <= '7'; n++)
		if (p[n] != '0')
			return 0;
	return n;
}

/* In the double-quoted string [p, end): the first NUL escape, or NULL. */
static const char *
nul_escape_in(const char *p, const char *end, int *len)
{
	const char *e;

	for (p++; p < end; p++) {
		if ((e = env_end(p, end)) != NULL)
			p = e - 1; /* taken literally, up to the '}' */
		else if (p[0] == '\\' && (*len = (int)nul_escape_len(p + 1)) > 0) {
			(*len)++;
			return p;
		} else if (p[0] == '\\' && p + 1 < end)
			p++;
	}
	return NULL;
}

/* The first escape in a double-quoted string that makes a NUL byte. */
static const char *
nul_escape(const char *text, const char *end, int *len)
{
	const char *p, *e, *bad;
	enum piece kind;

	for (p = text; p < end; p = e) {
		e = next_piece(text, p, end, &kind);
		if (kind == P_DQ && (bad = nul_escape_in(p, e, len)) != NULL)
			return bad;
	}
	return NULL;
}

/* p follows a '(': one quoted string or bare word, then ')'. */
static bool
call_ok(const char *p, const char *end)
{
	p += strspn(p, SPACE);
	if (*p == '"' || *p == '\'') {
		if ((p = string_end(p, end)) == NULL)
			return false;
	} else if (strcspn(p, NOT_WORD) > 0)
		p += strcspn(p, NOT_WORD);
	else
		return false;
	p += strspn(p, SPACE);
	return *p == ')';
}

/* The first '(' outside strings that does not open a well-formed call. */
static const char *
bad_call(const char *text, const char *end)
{
	const char *p, *e;
	enum piece kind;

	for (p = text; p < end; p = e) {
		e = next_piece(text, p, end, &kind);
		if (kind == P_CODE && *p == '(' && !call_ok(p + 1, end))
			return p;
	}
	return NULL;
}

/* What libconfuse puts in place of "${...}" at [p, e): its length. */
static size_t
env_value_len(const char *p, const char *e)
{
	char *name, *colon;
	const char *v;
	size_t n;

	if ((name = strndup(p + 2, (size_t)(e - p - 3))) == NULL)
		return (size_t)(e - p); /* counted as written */
	if ((colon = strchr(name, ':')) != NULL && colon[1] == '-')
		*colon = '\0';
	else
		colon = NULL;
	v = getenv(name);
	if (v == NULL && colon != NULL)
		v = colon + 2;
	n = v != NULL ? strlen(v) : 0;
	free(name);
	return n;
}

/* Add one reference's expansion to *size. */
static void
add_env(size_t *size, const char *p, const char *e)
{
	*size = *size - (size_t)(e - p) + env_value_len(p, e);
}

size_t
conftext_expanded_size(const char *text, size_t len, size_t max,
    const char **at)
{
	const char *p, *q, *e, *qe, *end = text + len;
	size_t size = len;
	enum piece kind;

	*at = NULL;
	for (p = text; p < end && size <= max; p = e) {
		e = next_piece(text, p, end, &kind);
		if (kind == P_ENV)
			add_env(&size, (*at = p), e);
		for (q = p + 1; kind == P_DQ && q < e && size <= max; q++) {
			if ((qe = env_end(q, e)) != NULL) {
				add_env(&size, (*at = q), qe);
				q = qe - 1;
			} else if (*q == '\\')
				q++;
		}
	}
	return size;
}

static const char *
skip_space(const char *p)
{
	return p + strspn(p, SPACE);
}

const char *
conftext_empty_list(const char *text, const char *name)
{
	const char *p, *q, *e, *end = text + strlen(text);
	size_t n = strlen(name);
	enum piece kind;

	for (p = text; p < end; p = e) {
		e = next_piece(text, p, end, &kind);
		if (kind != P_CODE || strncmp(p, name, n) != 0 ||
		    (p > text && strchr(SPACE, p[-1]) == NULL))
			continue;
		q = skip_space(p + n);
		if (*q == '+')
			q++;
		if (*q != '=')
			continue;
		q = skip_space(q + 1);
		if (*q == '{' && *skip_space(q + 1) == '}')
			return p;
	}
	return NULL;
}

int
conftext_check(char *buf, size_t len, char *why, size_t whylen, int *line)
{
	const char *p, *end = buf + len;
	bool comment = false;
	size_t size;
	int n;

	*line = 0;
	if ((p = memchr(buf, '\0', len)) != NULL) {
		*line = conftext_line(buf, p);
		snprintf(why, whylen, "NUL byte (a binary file?); allowed: text");
		return -1;
	}
	buf[len] = '\0';
	if ((p = strip_comments(buf, len, &comment)) != NULL) {
		*line = conftext_line(buf, p);
		snprintf(why, whylen, "syntax error: %s never closed",
		    comment ? "comment" : "string");
		return -1;
	}
	if ((p = nul_escape(buf, end, &n)) != NULL) {
		*line = conftext_line(buf, p);
		snprintf(why, whylen, "'%.*s' in a string is a NUL byte; "
		    "allowed: text", n, p);
		return -1;
	}
	if ((p = bad_call(buf, end)) != NULL) {
		*line = conftext_line(buf, p);
		snprintf(why, whylen, "syntax error: malformed call; allowed: "
		    "include(\"FILE\")");
		return -1;
	}
	size = conftext_expanded_size(buf, len, CONFTEXT_SIZE_MAX, &p);
	if (size > CONFTEXT_SIZE_MAX) {
		if (p == NULL) /* a text too large before any reference */
			p = buf;
		*line = conftext_line(buf, p);
		n = (int)strcspn(p, "}") + 1;
		snprintf(why, whylen, "'%.*s%s' expands the file past %d bytes; "
		    "allowed: up to %d bytes with every ${VAR} replaced",
		    n < 64 ? n : 64, p, n < 64 ? "" : "...", CONFTEXT_SIZE_MAX,
		    CONFTEXT_SIZE_MAX);
		return -1;
	}
	return 0;
}

/* Only a regular file of sane size: the scanner exits on a directory. */
static int
check_fd(int fd, size_t *size, char *why, size_t len)
{
	struct stat st;

	if (fstat(fd, &st) == -1)
		snprintf(why, len, "cannot read: %s", strerror(errno));
	else if (S_ISDIR(st.st_mode))
		snprintf(why, len, "cannot read: %s", strerror(EISDIR));
	else if (!S_ISREG(st.st_mode))
		snprintf(why, len, "cannot read: not a regular file");
	else if (st.st_size > CONFTEXT_SIZE_MAX)
		snprintf(why, len, "%lld bytes is too large; allowed: up to %d",
		    (long long)st.st_size, CONFTEXT_SIZE_MAX);
	else {
		*size = (size_t)st.st_size;
		return 0;
	}
	return -1;
}

static ssize_t
read_all(int fd, char *buf, size_t len)
{
	size_t off = 0;
	ssize_t n;

	while (off < len) {
		n = read(fd, buf + off, len - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		if (n == 0)
			break;
		off += (size_t)n;
	}
	return (ssize_t)off;
}

/* Read path whole into t->buf (two spare bytes), refusing non-files. */
static int
read_file(struct conftext *t, const char *path, char *why, size_t len)
{
	size_t size;
	ssize_t n;
	int fd;

	/* O_NONBLOCK: opening a FIFO would wait for a writer forever. */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY |
	    O_NONBLOCK)) == -1) {
		snprintf(why, len, "cannot open: %s", strerror(errno));
		return -1;
	}
	if (check_fd(fd, &size, why, len) == -1)
		n = -1;
	else if ((t->buf = calloc(1, size + 2)) == NULL) {
		snprintf(why, len, "out of memory");
		n = -1;
	} else if ((n = read_all(fd, t->buf, size)) == -1)
		snprintf(why, len, "cannot read: %s", strerror(errno));
	close(fd);
	if (n == -1) {
		free(t->buf);
		t->buf = NULL;
		return -1;
	}
	t->len = (size_t)n;
	return 0;
}

int
conftext_load(struct conftext *t, const char *path, char *why,
    size_t whylen, int *line)
{
	memset(t, 0, sizeof(*t));
	*line = 0;
	if (read_file(t, path, why, whylen) == -1)
		return -1;
	if (conftext_check(t->buf, t->len, why, whylen, line) == -1) {
		conftext_close(t);
		return -1;
	}
	return 0;
}

int
conftext_stream(struct conftext *t, char *why, size_t whylen)
{
	if (t->len == 0) /* fmemopen() may refuse a size of 0 */
		t->buf[t->len++] = '\n';
	if ((t->fp = fmemopen(t->buf, t->len, "r")) == NULL) {
		snprintf(why, whylen, "cannot read: %s", strerror(errno));
		return -1;
	}
	return 0;
}

void
conftext_close(struct conftext *t)
{
	if (t->fp != NULL)
		fclose(t->fp);
	free(t->buf);
	memset(t, 0, sizeof(*t));
}
