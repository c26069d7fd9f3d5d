/*
 * conftext: a configuration file's text, read and made safe for
 * libconfuse before its scanner sees it.
 *
 * Reads a file whole (a regular file of at most CONFTEXT_SIZE_MAX bytes),
 * refuses what libconfuse 3.3 would get wrong without a word (a NUL byte
 * or a NUL escape, a string or comment never closed, a malformed call, a
 * "${VAR}" expansion beyond the size cap), blanks comments out, and hands
 * the text over as a stream.  It walks strings exactly as libconfuse's
 * scanner does, "${...}" included, so the two never disagree about where
 * a string ends.  Knows no option: conf.c does.  Never exits or logs;
 * errors go into the caller's buffer.
 */
#ifndef ECHOD_CONFTEXT_H
#define ECHOD_CONFTEXT_H

#include <stddef.h>
#include <stdio.h>

/* The largest file, and the largest text its "${VAR}"s may expand it to. */
#define CONFTEXT_SIZE_MAX (1024 * 1024)

/* A file in memory, blanked of comments, and a stream the scanner reads. */
struct conftext {
	char *buf; /* len bytes, then a NUL */
	size_t len;
	FILE *fp;
};

/*
 * Read path into t and check it (conftext_check).  0, or -1 with why
 * saying what is wrong and *line where (0: the file as a whole), and t
 * empty.
 */
int conftext_load(struct conftext *t, const char *path, char *why,
    size_t whylen, int *line);

/*
 * The checks on len bytes at buf (which has room for one more, a NUL),
 * blanking comments: 0, or -1 with why and *line.  Pure but for getenv().
 */
int conftext_check(char *buf, size_t len, char *why, size_t whylen,
    int *line);

/*
 * Where "NAME = {}" (or "NAME += {}") is in the checked text, outside
 * strings, or NULL: libconfuse runs no callback for an empty list.
 */
const char *conftext_empty_list(const char *text, const char *name);

/* The line (from 1) of p in text. */
int conftext_line(const char *text, const char *p);

/*
 * The size of text (len bytes, comment-free) once libconfuse has replaced
 * every "${VAR}" and "${VAR:-default}" from the environment.  Counting
 * stops once it passes max; *at is then the reference that passed it.
 */
size_t conftext_expanded_size(const char *text, size_t len, size_t max,
    const char **at);

/* A stream over t's text for cfg_parse_fp(): 0, or -1 with why. */
int conftext_stream(struct conftext *t, char *why, size_t whylen);

void conftext_close(struct conftext *t);

#endif
