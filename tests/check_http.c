/*
 * check_http: the metrics endpoint's HTTP as pure functions, without a
 * daemon: http_parse on a table of request heads (well-formed, malformed,
 * incomplete, too big), every good head fed split at every byte (a
 * prefix needs more, never fails), http_route on a table of methods and
 * paths, and http_head's response heads.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "http.h"
#include "suites.h"

#define B(s) s, sizeof(s) - 1

struct pcase {
	const char *name;
	const char *buf;
	size_t len;
	enum http_parse_result want;
	const char *method, *path; /* HTTP_OK */
	int minor;
};

#define OK(n, s, m, p, mi) { n, B(s), HTTP_OK, m, p, mi }
#define BAD(n, s) { n, B(s), HTTP_BAD, NULL, NULL, 0 }
#define MORE(n, s) { n, B(s), HTTP_NEED_MORE, NULL, NULL, 0 }

static const struct pcase cases[] = {
	OK("curl", "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9707\r\n"
	    "User-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n", "GET",
	    "/metrics", 1),
	OK("prometheus", "GET /metrics HTTP/1.1\r\nHost: localhost:9707\r\n"
	    "User-Agent: Prometheus/2.45.3\r\nAccept: application/openmetrics"
	    "-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;"
	    "q=0.1\r\nAccept-Encoding: gzip\r\nX-Prometheus-Scrape-Timeout-"
	    "Seconds: 10\r\n\r\n", "GET", "/metrics", 1),
	OK("no headers, 1.0", "GET / HTTP/1.0\r\n\r\n", "GET", "/", 0),
	OK("head", "HEAD /metrics HTTP/1.1\r\n\r\n", "HEAD", "/metrics", 1),
	OK("query string cut", "GET /metrics?x=1&y=2 HTTP/1.1\r\n\r\n",
	    "GET", "/metrics", 1),
	OK("fragment cut", "GET /metrics#a HTTP/1.1\r\n\r\n", "GET",
	    "/metrics", 1),
	OK("absolute form", "GET http://127.0.0.1:9707/metrics HTTP/1.1\r\n"
	    "\r\n", "GET", "/metrics", 1),
	OK("absolute form, no path", "GET http://h HTTP/1.1\r\n\r\n", "GET",
	    "/", 1),
	OK("absolute form, https, query", "GET HTTPS://h?x HTTP/1.1\r\n\r\n",
	    "GET", "/", 1),
	OK("other method parses", "DELETE /metrics HTTP/1.1\r\n\r\n",
	    "DELETE", "/metrics", 1),
	OK("token method", "M-SEARCH! / HTTP/1.1\r\n\r\n", "M-SEARCH!", "/",
	    1),
	OK("tab and obs-text in a value", "GET / HTTP/1.1\r\nX: a\tb\xff"
	    "\r\n\r\n", "GET", "/", 1),
	OK("empty value", "GET / HTTP/1.1\r\nX:\r\n\r\n", "GET", "/", 1),
	OK("colon in value", "GET / HTTP/1.1\r\nHost: a:1\r\n\r\n", "GET",
	    "/", 1),
	OK("bytes after the head", "GET / HTTP/1.1\r\n\r\nGET /x", "GET",
	    "/", 1),

	MORE("empty", ""),
	MORE("half a method", "GE"),
	MORE("request line, no CRLF", "GET /metrics HTTP/1.1"),
	MORE("CR only", "GET /metrics HTTP/1.1\r"),
	MORE("one line", "GET /metrics HTTP/1.1\r\n"),
	MORE("a header", "GET /metrics HTTP/1.1\r\nHost: x\r\n"),
	MORE("half the end", "GET /metrics HTTP/1.1\r\nHost: x\r\n\r"),

	BAD("blank line first", "\r\nGET / HTTP/1.1\r\n\r\n"),
	BAD("bare LF", "GET / HTTP/1.1\n\n"),
	BAD("bare LF in a header", "GET / HTTP/1.1\r\nA: b\n\r\n"),
	BAD("bare CR", "GET / HTTP/1.1\rX"),
	{ "NUL", B("GET /\0 HTTP/1.1\r\n\r\n"), HTTP_BAD, NULL, NULL, 0 },
	BAD("control byte early", "\x16\x03\x01\x02\x00"),
	BAD("tab in the request line", "GET\t/ HTTP/1.1\r\n\r\n"),
	BAD("DEL", "GET /\x7f HTTP/1.1\r\n\r\n"),
	BAD("HTTP/0.9", "GET /\r\n\r\n"),
	BAD("no version", "GET / \r\n\r\n"),
	BAD("HTTP/2.0", "GET / HTTP/2.0\r\n\r\n"),
	BAD("HTTP/1.2", "GET / HTTP/1.2\r\n\r\n"),
	BAD("lower-case version", "GET / http/1.1\r\n\r\n"),
	BAD("version too long", "GET / HTTP/1.10\r\n\r\n"),
	BAD("two spaces", "GET  / HTTP/1.1\r\n\r\n"),
	BAD("three parts and more", "GET / x HTTP/1.1\r\n\r\n"),
	BAD("leading space", " GET / HTTP/1.1\r\n\r\n"),
	BAD("no method", "/ HTTP/1.1\r\n\r\n"),
	BAD("method not a token", "G(T / HTTP/1.1\r\n\r\n"),
	BAD("relative target", "GET metrics HTTP/1.1\r\n\r\n"),
	BAD("asterisk form", "OPTIONS * HTTP/1.1\r\n\r\n"),
	BAD("absolute form, no authority", "GET http:///x HTTP/1.1\r\n\r\n"),
	BAD("header without colon", "GET / HTTP/1.1\r\nHost\r\n\r\n"),
	BAD("empty header name", "GET / HTTP/1.1\r\n: x\r\n\r\n"),
	BAD("space before colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n"),
	BAD("folded header", "GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n"),
	BAD("control byte in a value", "GET / HTTP/1.1\r\nA: \x01\r\n\r\n"),
	BAD("bad before complete", "GET / HTTP/1.1\r\nA b\r\n"),
};

static void
check_case(const struct pcase *t, size_t len, enum http_parse_result want)
{
	struct http_req r;
	enum http_parse_result got = http_parse(t->buf, len, &r);

	ck_assert_msg(got == want, "%s (%zu bytes): %d, not %d", t->name, len,
	    got, want);
	if (got != HTTP_OK)
		return;
	ck_assert_msg(r.method_len == strlen(t->method) &&
	    memcmp(r.method, t->method, r.method_len) == 0, "%s: method '%.*s'",
	    t->name, (int)r.method_len, r.method);
	ck_assert_msg(r.path_len == strlen(t->path) &&
	    memcmp(r.path, t->path, r.path_len) == 0, "%s: path '%.*s'",
	    t->name, (int)r.path_len, r.path);
	ck_assert_int_eq(r.minor, t->minor);
	ck_assert_msg(r.head_len <= len && r.head_len >= 4 &&
	    memcmp(t->buf + r.head_len - 4, "\r\n\r\n", 4) == 0,
	    "%s: head_len %zu", t->name, r.head_len);
}

START_TEST(parse_table)
{
	check_case(&cases[_i], cases[_i].len, cases[_i].want);
}
END_TEST

/* A good head's every prefix needs more; the whole of it parses. */
START_TEST(parse_split)
{
	const struct pcase *t = &cases[_i];
	struct http_req r;
	size_t n, end;

	if (t->want != HTTP_OK)
		return;
	(void)http_parse(t->buf, t->len, &r);
	end = r.head_len;
	for (n = 0; n < end; n++)
		check_case(t, n, HTTP_NEED_MORE);
	check_case(t, end, HTTP_OK);
}
END_TEST

/* 8 KiB: a head that ends at the limit parses, one byte more is 431. */
START_TEST(parse_size_limit)
{
	static char buf[HTTP_HEAD_MAX + 64];
	const char *line = "GET /metrics HTTP/1.1\r\nX: ";
	struct http_req r;
	size_t n = strlen(line);

	memcpy(buf, line, n);
	memset(buf + n, 'a', sizeof(buf) - n);
	memcpy(buf + HTTP_HEAD_MAX - 4, "\r\n\r\n", 4);
	ck_assert_int_eq(http_parse(buf, HTTP_HEAD_MAX, &r), HTTP_OK);
	ck_assert_uint_eq(r.head_len, HTTP_HEAD_MAX);
	ck_assert_int_eq(http_parse(buf, HTTP_HEAD_MAX - 1, &r),
	    HTTP_NEED_MORE);
	memcpy(buf + HTTP_HEAD_MAX - 4, "aa\r\n\r\n", 6);
	ck_assert_int_eq(http_parse(buf, HTTP_HEAD_MAX - 1, &r),
	    HTTP_NEED_MORE);
	ck_assert_int_eq(http_parse(buf, HTTP_HEAD_MAX, &r), HTTP_TOO_BIG);
	ck_assert_int_eq(http_parse(buf, sizeof(buf), &r), HTTP_TOO_BIG);
	/* Malformed wins over too big: it is known sooner. */
	buf[100] = '\n';
	ck_assert_int_eq(http_parse(buf, sizeof(buf), &r), HTTP_BAD);
}
END_TEST

struct rcase {
	const char *method, *path;
	int status;
	enum http_page page;
	int head;
};

static const struct rcase routes[] = {
	{ "GET", "/metrics", 200, HTTP_PAGE_METRICS, 0 },
	{ "HEAD", "/metrics", 200, HTTP_PAGE_METRICS, 1 },
	{ "GET", "/", 200, HTTP_PAGE_INDEX, 0 },
	{ "HEAD", "/", 200, HTTP_PAGE_INDEX, 1 },
	{ "POST", "/metrics", 405, HTTP_PAGE_NONE, 0 },
	{ "PUT", "/", 405, HTTP_PAGE_NONE, 0 },
	{ "OPTIONS", "/metrics", 405, HTTP_PAGE_NONE, 0 },
	{ "get", "/metrics", 405, HTTP_PAGE_NONE, 0 },
	{ "GETX", "/metrics", 405, HTTP_PAGE_NONE, 0 },
	{ "GET", "/metrics/", 404, HTTP_PAGE_NONE, 0 },
	{ "GET", "/Metrics", 404, HTTP_PAGE_NONE, 0 },
	{ "GET", "/metricsx", 404, HTTP_PAGE_NONE, 0 },
	{ "GET", "/%6detrics", 404, HTTP_PAGE_NONE, 0 },
	{ "GET", "//metrics", 404, HTTP_PAGE_NONE, 0 },
	{ "GET", "/favicon.ico", 404, HTTP_PAGE_NONE, 0 },
	{ "HEAD", "/x", 404, HTTP_PAGE_NONE, 1 },
	{ "POST", "/x", 404, HTTP_PAGE_NONE, 0 },
};

START_TEST(route_table)
{
	const struct rcase *t = &routes[_i];
	struct http_answer a = http_route(t->method, strlen(t->method),
	    t->path, strlen(t->path));

	ck_assert_msg(a.status == t->status && a.page == t->page &&
	    a.head == t->head, "%s %s: %d page %d head %d", t->method, t->path,
	    a.status, a.page, a.head);
}
END_TEST

START_TEST(head_format)
{
	char buf[512];
	size_t n;

	n = http_head(buf, sizeof(buf), 200, "text/plain", 12);
	ck_assert_str_eq(buf, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
	    "Content-Length: 12\r\nConnection: close\r\n\r\n");
	ck_assert_uint_eq(n, strlen(buf));
	http_head(buf, sizeof(buf), 405, "text/plain", 0);
	ck_assert_str_eq(buf, "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: "
	    "text/plain\r\nContent-Length: 0\r\nAllow: GET, HEAD\r\n"
	    "Connection: close\r\n\r\n");
	http_head(buf, sizeof(buf), 431, "t", 1);
	ck_assert_ptr_nonnull(strstr(buf, "431 Request Header Fields Too "
	    "Large\r\n"));
	http_head(buf, sizeof(buf), 503, "t", 1);
	ck_assert_ptr_nonnull(strstr(buf, "503 Service Unavailable\r\n"));
	ck_assert_str_eq(http_reason(400), "Bad Request");
	ck_assert_str_eq(http_reason(404), "Not Found");
	ck_assert_str_eq(http_reason(299), "Error");
	ck_assert_uint_eq(http_head(buf, 20, 200, "text/plain", 1), 0);
}
END_TEST

Suite *
http_suite(void)
{
	Suite *s = suite_create("http");
	TCase *tc;

	tc = h_case(s, "parse", 0, H_TESTS(parse_size_limit));
	tcase_add_loop_test(tc, parse_table, 0, H_NELEM(cases));
	tcase_add_loop_test(tc, parse_split, 0, H_NELEM(cases));
	tc = h_case(s, "route", 0, H_TESTS(head_format));
	tcase_add_loop_test(tc, route_table, 0, H_NELEM(routes));
	return s;
}
