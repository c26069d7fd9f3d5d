/*
 * http: the little HTTP/1.1 the metrics endpoint speaks, as pure
 * functions: parse a request head, route it, write a response head.
 *
 * Nothing here reads, writes, allocates or logs: the metrics process
 * (metricsd.c) does the I/O, these decide.  One request per connection:
 * every response says Connection: close.
 */
#ifndef ECHOD_HTTP_H
#define ECHOD_HTTP_H

#include <stddef.h>

#define HTTP_HEAD_MAX 8192 /* a longer request head is answered 431 */

enum http_parse_result {
	HTTP_NEED_MORE, /* no complete head yet, nothing wrong so far */
	HTTP_OK,        /* a complete, well-formed head: *r is filled */
	HTTP_BAD,       /* a malformed request line or header: 400 */
	HTTP_TOO_BIG,   /* no complete head within HTTP_HEAD_MAX bytes: 431 */
};

/* A request head, as pointers into the caller's buffer. */
struct http_req {
	const char *method;
	size_t method_len;
	const char *path; /* the target's path: no query string, and for an
			   * absolute-form target no scheme or authority */
	size_t path_len;
	int minor;        /* HTTP/1.minor: 0 or 1 */
	size_t head_len;  /* through the blank line that ends the head */
};

/*
 * Look at the first len bytes a client sent.  Lines end with CRLF; a
 * control character (but the CRLF and a tab inside a header's value), a
 * bare CR or LF, a folded header line, a header name that is not a token
 * or has a space before its colon, a request line that is not "METHOD
 * SP target SP HTTP/1.0|1" with an origin-form ("/...") or absolute-form
 * ("http://host/...") target: HTTP_BAD, as soon as the bytes show it.
 */
enum http_parse_result http_parse(const char *buf, size_t len,
    struct http_req *r);

enum http_page {
	HTTP_PAGE_NONE,    /* an error: the status's own short text */
	HTTP_PAGE_METRICS, /* GET /metrics: the exposition text */
	HTTP_PAGE_INDEX,   /* GET /: a page with a link to /metrics */
};

struct http_answer {
	int status;          /* 200, 404 or 405 */
	enum http_page page;
	int head;            /* HEAD: the same headers, no body */
};

/*
 * Where a request goes: /metrics and / answer GET and HEAD (200), any
 * other method 405 (Allow: GET, HEAD); any other path 404.  Pure.
 */
struct http_answer http_route(const char *method, size_t method_len,
    const char *path, size_t path_len);

/* "OK", "Not Found", ...; "Error" for a status it does not know. */
const char *http_reason(int status);

/*
 * A response head into out: the status line, Content-Type, Content-Length
 * content_length, Connection: close, and for 405 Allow: GET, HEAD.
 * Returns its length, or 0 if it does not fit in len.
 */
size_t http_head(char *out, size_t len, int status, const char *content_type,
    size_t content_length);

#endif
