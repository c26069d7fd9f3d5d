/*
 * fuzz_http: libFuzzer target for the metrics port's request-head parser
 * and router (http.c).
 *
 * The input is the first bytes a scraper sent, in a buffer of exactly its
 * size so that ASan catches a read past it.  What must hold: OK only with
 * a head that ends within the input and within HTTP_HEAD_MAX, whose method
 * and path point inside it (a path-less absolute-form target is "/"),
 * the path starting with '/'; the head alone
 * parses the same, every shorter prefix of it needs more, and the route
 * is 200, 404 or 405; NEED_MORE only under HTTP_HEAD_MAX bytes, and every
 * prefix then needs more too (nothing wrong so far); TOO_BIG only from
 * HTTP_HEAD_MAX bytes on.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#define FUZZ_TARGET "fuzz_http"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every prefix of buf shorter than n needs more. */
static void
prefixes_need_more(const char *buf, size_t n)
{
	struct http_req r;
	size_t i;

	for (i = 0; i < n; i++)
		CHECK(http_parse(buf, i, &r) == HTTP_NEED_MORE,
		    "prefix %zu of %zu", i, n);
}

static void
check_ok(const char *buf, const struct http_req *r, size_t size)
{
	struct http_req again;
	struct http_answer a;

	CHECK(r->head_len >= 4 && r->head_len <= size &&
	    r->head_len <= HTTP_HEAD_MAX, "head of %zu in %zu", r->head_len,
	    size);
	CHECK(r->method >= buf && r->method + r->method_len <= buf + size &&
	    r->method_len > 0, "method outside the input");
	/* An absolute-form target without a path ("http://host") is "/". */
	CHECK(r->path_len > 0 && r->path[0] == '/' && ((r->path >= buf &&
	    r->path + r->path_len <= buf + size) || r->path_len == 1),
	    "path outside the input");
	CHECK(r->minor == 0 || r->minor == 1, "HTTP/1.%d", r->minor);
	CHECK(http_parse(buf, r->head_len, &again) == HTTP_OK &&
	    again.head_len == r->head_len, "the head alone parses otherwise");
	prefixes_need_more(buf, r->head_len);
	a = http_route(r->method, r->method_len, r->path, r->path_len);
	CHECK(a.status == 200 || a.status == 404 || a.status == 405,
	    "status %d", a.status);
	CHECK((a.status == 200) == (a.page != HTTP_PAGE_NONE),
	    "status %d with page %d", a.status, (int)a.page);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_req r;
	char *buf = malloc(size ? size : 1);

	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	switch (http_parse(buf, size, &r)) {
	case HTTP_OK:
		check_ok(buf, &r, size);
		break;
	case HTTP_NEED_MORE:
		CHECK(size < HTTP_HEAD_MAX, "%zu bytes need more", size);
		prefixes_need_more(buf, size);
		break;
	case HTTP_TOO_BIG:
		CHECK(size >= HTTP_HEAD_MAX, "too big at %zu", size);
		break;
	case HTTP_BAD:
		break;
	default:
		CHECK(0, "result out of range");
	}
	free(buf);
	return 0;
}
