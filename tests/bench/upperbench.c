/*
 * upperbench: how fast echod's uppercase transform runs, next to the
 * byte-at-a-time loop it replaces.  Pure CPU, no sockets: it tells how
 * much of a core the transform costs at a given echo rate.
 *
 *   build/upperbench [-t secs]
 *
 * For each size (a 64-byte message, a 1460-byte segment, echod's 64 KiB
 * read buffer) it runs each transform over mixed text for about secs/6
 * seconds, then prints GB/s and nanoseconds per call as a table and as
 * one machine-readable line per figure.  The result is checked against the
 * byte loop, so a fast wrong transform fails (exit 1).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "echo.h"

#define MAXSIZE 65536
#define NSIZES 3
#define NFNS 2

/* The obvious loop; the compiler is kept from vectorising it. */
#ifdef __clang__
#define NO_VECTORIZE
#else
#define NO_VECTORIZE __attribute__((optimize("no-tree-vectorize")))
#endif

static void __attribute__((noinline)) NO_VECTORIZE
byte_upper(unsigned char *buf, size_t len)
{
	size_t i;

#ifdef __clang__
#pragma clang loop vectorize(disable)
#endif
	for (i = 0; i < len; i++)
		if (buf[i] >= 'a' && buf[i] <= 'z')
			buf[i] = (unsigned char)(buf[i] - 32);
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Text a client might send: mostly lowercase letters, some of everything. */
static void
fill(unsigned char *buf, size_t len)
{
	uint32_t s = 2463534242u;
	size_t i;

	for (i = 0; i < len; i++) {
		s ^= s << 13;
		s ^= s >> 17;
		s ^= s << 5;
		buf[i] = (s & 3) ? (unsigned char)('a' + s % 26) :
		    (unsigned char)(s >> 8);
	}
}

/*
 * Nanoseconds per call of fn on a fresh copy of len bytes of src, for
 * about secs seconds.  Every call gets the original text again (a second
 * pass over bytes already uppercase would let a branchy loop predict
 * every branch); the copy's own time, measured alike with nop, is taken
 * off.
 */
static void
nop(unsigned char *buf, size_t len)
{
	(void)buf;
	(void)len;
}

static double
ns_per_call_raw(void (*fn)(unsigned char *, size_t), unsigned char *buf,
    const unsigned char *src, size_t len, double secs)
{
	double t0 = now_s(), t;
	uint64_t calls = 0, batch = 1 + (1u << 18) / len, k;

	do {
		for (k = 0; k < batch; k++) {
			memcpy(buf, src, len);
			fn(buf, len);
			/* Keep the compiler from dropping the work. */
			__asm__ volatile("" : : "r"(buf) : "memory");
		}
		calls += batch;
		t = now_s() - t0;
	} while (t < secs && calls < UINT64_C(1) << 40);
	return t * 1e9 / (double)calls;
}

static double
ns_per_call(void (*fn)(unsigned char *, size_t), unsigned char *buf,
    const unsigned char *src, size_t len, double secs)
{
	double with = ns_per_call_raw(fn, buf, src, len, secs * 0.8);
	double copy = ns_per_call_raw(nop, buf, src, len, secs * 0.2);

	return with > copy ? with - copy : with;
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: upperbench [-t secs]\n"
	    "  -t  seconds in all, shared by the figures (default 3)\n");
}

int
main(int argc, char **argv)
{
	static const size_t sizes[NSIZES] = { 64, 1460, MAXSIZE };
	static const struct {
		const char *name;
		void (*fn)(unsigned char *, size_t);
	} fns[NFNS] = { { "echo_upper", echo_upper },
		{ "byte_loop", byte_upper } };
	static unsigned char src[MAXSIZE], a[MAXSIZE], b[MAXSIZE];
	double secs = 3, per, ns[NSIZES][NFNS];
	char *end;
	size_t s, f;
	int c;

	while ((c = getopt(argc, argv, "t:h")) != -1) {
		switch (c) {
		case 't':
			errno = 0;
			secs = strtod(optarg, &end);
			if (errno || *end || !(secs > 0 && secs <= 3600)) {
				fprintf(stderr, "upperbench: -t %s: seconds, "
				    "more than 0 and at most 3600\n", optarg);
				return 64;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 64;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 64;
	}
	per = secs / (NSIZES * NFNS);

	fill(src, sizeof(src));
	memcpy(a, src, sizeof(src));
	memcpy(b, src, sizeof(src));
	echo_upper(a, sizeof(a));
	byte_upper(b, sizeof(b));
	if (memcmp(a, b, sizeof(a)) != 0) {
		fprintf(stderr, "upperbench: echo_upper differs from the byte "
		    "loop\n");
		return 1;
	}

	for (s = 0; s < NSIZES; s++)
		for (f = 0; f < NFNS; f++) {
			ns[s][f] = ns_per_call(fns[f].fn, a, src, sizes[s],
			    per);
		}
	printf("%-11s %8s %10s %10s\n", "transform", "size", "GB/s", "ns/call");
	for (s = 0; s < NSIZES; s++)
		for (f = 0; f < NFNS; f++)
			printf("%-11s %8zu %10.2f %10.1f\n", fns[f].name,
			    sizes[s], (double)sizes[s] / ns[s][f],
			    ns[s][f]);
	for (s = 0; s < NSIZES; s++)
		for (f = 0; f < NFNS; f++)
			printf("RESULT transform=%s size=%zu gbps=%.3f "
			    "ns_per_call=%.2f\n", fns[f].name, sizes[s],
			    (double)sizes[s] / ns[s][f],
			    ns[s][f]);
	return 0;
}
