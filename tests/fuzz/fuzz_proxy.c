/*
 * fuzz_proxy: libFuzzer target for the PROXY protocol header parser
 * (proxy.c).
 *
 * The input is the first bytes of a connection, in a buffer of exactly
 * its size so that ASan catches a read past it.  What must hold:
 * consumed <= len and set only on PROXY_OK; OK only with consumed > 0 and
 * within the longest header; the header alone (the first consumed bytes)
 * parses the same, and every shorter prefix of it needs more; NEED_MORE
 * only for a short input whose every prefix also needs more (a valid
 * prefix); BAD always with a reason.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy.h"
#define FUZZ_TARGET "fuzz_proxy"
#include "fuzz.h"

#define UNSET ((size_t)-1)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every prefix of buf shorter than n needs more. */
static void
prefixes_need_more(const unsigned char *buf, size_t n)
{
	struct proxy_hdr h;
	size_t consumed, i;

	for (i = 0; i < n; i++) {
		consumed = UNSET;
		CHECK(proxy_parse(buf, i, &h, &consumed) == PROXY_NEED_MORE,
		    "prefix %zu of %zu: %s", i, n, h.why ? h.why : "");
		CHECK(consumed == UNSET, "prefix %zu set consumed", i);
	}
}

static void
check_ok(const unsigned char *buf, const struct proxy_hdr *h, size_t consumed,
    size_t size)
{
	struct proxy_hdr again;
	size_t c2 = UNSET;

	CHECK(consumed > 0 && consumed <= size, "consumed %zu of %zu",
	    consumed, size);
	CHECK(consumed <= (h->version == 1 ? PROXY_V1_MAX : PROXY_V2_MAX),
	    "v%d header of %zu bytes", h->version, consumed);
	CHECK(proxy_parse(buf, consumed, &again, &c2) == PROXY_OK &&
	    c2 == consumed && memcmp(&again, h, sizeof(again)) == 0,
	    "the header alone parses differently");
	prefixes_need_more(buf, consumed);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *buf = malloc(size ? size : 1);
	struct proxy_hdr h;
	size_t consumed = UNSET;
	enum proxy_result r;

	CHECK(buf != NULL, "malloc");
	memcpy(buf, data, size);
	r = proxy_parse(buf, size, &h, &consumed);
	switch (r) {
	case PROXY_OK:
		check_ok(buf, &h, consumed, size);
		break;
	case PROXY_NEED_MORE:
		CHECK(consumed == UNSET, "NEED_MORE set consumed");
		CHECK(size < PROXY_V2_MAX, "NEED_MORE after %zu bytes", size);
		prefixes_need_more(buf, size);
		break;
	case PROXY_BAD:
		CHECK(consumed == UNSET, "BAD set consumed");
		CHECK(h.why != NULL && h.why[0] != '\0', "BAD without a reason");
		break;
	default:
		CHECK(0, "result %d", (int)r);
	}
	free(buf);
	return 0;
}
