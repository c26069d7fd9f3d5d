/*
 * http: request heads parsed, routed and answered as pure functions (see
 * http.h).  Strict on purpose: the metrics port is not a door, so what a
 * scraper would never send is refused rather than guessed at.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http.h"

/* RFC 9110's tchar: the characters of a method or a header's name. */
static int
is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || (c != '\0' && strchr("!#$%&'*+-.^_`|~",
	    c) != NULL);
}

/* A control character outside a CRLF, or a tab outside a header value. */
static int
bad_byte(const unsigned char *p, size_t i, size_t len, int in_value)
{
	unsigned char c = p[i];

	if (c == '\r')
		return i + 1 < len && p[i + 1] != '\n';
	if (c == '\n')
		return i == 0 || p[i - 1] != '\r';
	if (c == '\t')
		return !in_value;
	return c < 0x20 || c == 0x7f;
}

/* The target's path: origin-form as it is, absolute-form's after the
 * authority ("/" if none); no query string.  -1: neither form. */
static int
target_path(const char *t, size_t n, struct http_req *r)
{
	size_t i = 0, skip;

	if (n >= 7 && strncasecmp(t, "http://", 7) == 0)
		skip = 7;
	else if (n >= 8 && strncasecmp(t, "https://", 8) == 0)
		skip = 8;
	else if (n > 0 && t[0] == '/')
		skip = 0;
	else
		return -1;
	if (skip > 0) {
		for (i = skip; i < n && t[i] != '/' && t[i] != '?'; i++)
			;
		if (i == skip)
			return -1; /* no authority */
	}
	r->path = t + i;
	for (r->path_len = 0; i + r->path_len < n &&
	    t[i + r->path_len] != '?' && t[i + r->path_len] != '#';
	    r->path_len++)
		;
	if (r->path_len == 0)
		r->path = "/", r->path_len = 1;
	return 0;
}

/* "METHOD SP target SP HTTP/1.x", without its CRLF. */
static int
request_line(const char *l, size_t n, struct http_req *r)
{
	const char *sp1, *sp2;
	size_t i;

	if ((sp1 = memchr(l, ' ', n)) == NULL || sp1 == l)
		return -1;
	for (i = 0; l + i < sp1; i++)
		if (!is_tchar((unsigned char)l[i]))
			return -1;
	r->method = l;
	r->method_len = (size_t)(sp1 - l);
	sp2 = memchr(sp1 + 1, ' ', n - (size_t)(sp1 + 1 - l));
	if (sp2 == NULL || sp2 == sp1 + 1)
		return -1;
	if (l + n - (sp2 + 1) != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0 ||
	    (sp2[8] != '0' && sp2[8] != '1'))
		return -1;
	r->minor = sp2[8] - '0';
	return target_path(sp1 + 1, (size_t)(sp2 - sp1 - 1), r);
}

/* "name: value": a token, a colon right after it; no folding. */
static int
header_line(const char *l, size_t n)
{
	size_t i;

	for (i = 0; i < n && l[i] != ':'; i++)
		if (!is_tchar((unsigned char)l[i]))
			return -1;
	return i > 0 && i < n ? 0 : -1;
}

enum http_parse_result
http_parse(const char *buf, size_t len, struct http_req *r)
{
	const unsigned char *p = (const unsigned char *)buf;
	size_t i, start = 0, nline = 0, lim = len;
	int in_value = 0;

	memset(r, 0, sizeof(*r));
	if (lim > HTTP_HEAD_MAX)
		lim = HTTP_HEAD_MAX;
	for (i = 0; i < lim; i++) {
		if (bad_byte(p, i, lim, in_value))
			return HTTP_BAD;
		if (p[i] == ':' && nline > 0)
			in_value = 1;
		if (p[i] != '\n')
			continue;
		/* A line buf[start, i - 1) ends here. */
		if (i - 1 == start) {
			if (nline == 0)
				return HTTP_BAD; /* no request line */
			r->head_len = i + 1;
			return HTTP_OK;
		}
		if (nline == 0 ? request_line(buf + start, i - 1 - start, r) :
		    header_line(buf + start, i - 1 - start))
			return HTTP_BAD;
		nline++;
		start = i + 1;
		in_value = 0;
	}
	return len >= HTTP_HEAD_MAX ? HTTP_TOO_BIG : HTTP_NEED_MORE;
}

static int
is(const char *s, size_t n, const char *word)
{
	return n == strlen(word) && memcmp(s, word, n) == 0;
}

struct http_answer
http_route(const char *method, size_t method_len, const char *path,
    size_t path_len)
{
	struct http_answer a = { 404, HTTP_PAGE_NONE, 0 };
	int get = is(method, method_len, "GET");

	a.head = is(method, method_len, "HEAD");
	if (is(path, path_len, "/metrics"))
		a.page = HTTP_PAGE_METRICS;
	else if (is(path, path_len, "/"))
		a.page = HTTP_PAGE_INDEX;
	else
		return a;
	if (get || a.head)
		a.status = 200;
	else {
		a.status = 405;
		a.page = HTTP_PAGE_NONE;
	}
	return a;
}

const char *
http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "Error";
	}
}

size_t
http_head(char *out, size_t len, int status, const char *content_type,
    size_t content_length)
{
	int n;

	n = snprintf(out, len, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
	    "Content-Length: %zu\r\n%sConnection: close\r\n\r\n", status,
	    http_reason(status), content_type, content_length,
	    status == 405 ? "Allow: GET, HEAD\r\n" : "");
	return n < 0 || (size_t)n >= len ? 0 : (size_t)n;
}
