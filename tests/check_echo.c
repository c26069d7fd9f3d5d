/*
 * check_echo: the uppercase transform against a one-line reference.
 *
 * echo_upper() works 32 and 16 bytes at a time (vectors), then eight
 * (SWAR), then one, so the tests put every byte value at every alignment,
 * length and position, next to every other byte value, and watch guard
 * bytes on both sides: a carry between lanes, a wrong tail or a write past
 * the end all show up here.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "echo.h"
#include "harness.h"
#include "suites.h"

#define MAXOFF 16   /* alignments 0..15 */
#define MAXLEN 81   /* lengths 0..80: two 32-byte blocks, 16, 8, a tail */
#define GUARD 8
#define AREA (GUARD + MAXOFF + MAXLEN + GUARD)
#define GUARD_BYTE 'q' /* lowercase: a stray write would turn it into 'Q' */

static unsigned char
ref_upper(unsigned char c)
{
	return c >= 'a' && c <= 'z' ? (unsigned char)(c - 32) : c;
}

static void
ref_upper_buf(unsigned char *buf, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = ref_upper(buf[i]);
}

/* xorshift32: fixed seed, so a failure reproduces. */
static uint32_t
rng_next(uint32_t *s)
{
	uint32_t x = *s;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

/*
 * For every alignment and length, fill the buffer so that each byte value
 * lands at each position once (value v + stride * i), and compare the
 * whole area, guards included, with the reference.
 */
static void
check_all_bytes(unsigned stride)
{
	_Alignas(16) unsigned char got[AREA], want[AREA];
	unsigned off, len, v, i;

	for (off = 0; off < MAXOFF; off++)
		for (len = 0; len < MAXLEN; len++)
			for (v = 0; v < 256; v++) {
				memset(got, GUARD_BYTE, sizeof(got));
				for (i = 0; i < len; i++)
					got[GUARD + off + i] =
					    (unsigned char)(v + stride * i);
				memcpy(want, got, sizeof(want));
				ref_upper_buf(want + GUARD + off, len);
				echo_upper(got + GUARD + off, len);
				if (memcmp(got, want, sizeof(got)) != 0)
					ck_abort_msg("stride %u offset %u "
					    "length %u first byte 0x%02x: "
					    "differs from the reference",
					    stride, off, len, v);
			}
}

START_TEST(every_byte_every_offset_and_length)
{
	check_all_bytes(1);
}
END_TEST

START_TEST(every_byte_scattered_neighbours)
{
	/* An odd stride is a permutation of 0..255 with unrelated neighbours. */
	check_all_bytes(97);
}
END_TEST

/*
 * Every ordered pair of byte values side by side, in every lane of a
 * vector (the first 16 bytes) and of a word (the next 8): a carry or
 * borrow from one lane into the next would change a neighbour.
 */
START_TEST(every_pair_of_neighbours)
{
	_Alignas(8) unsigned char got[24], want[24];
	unsigned x, y, i;

	for (x = 0; x < 256; x++)
		for (y = 0; y < 256; y++) {
			for (i = 0; i < sizeof(got); i++)
				got[i] = (unsigned char)(i % 2 ? y : x);
			memcpy(want, got, sizeof(want));
			ref_upper_buf(want, sizeof(want));
			echo_upper(got, sizeof(got));
			if (memcmp(got, want, sizeof(got)) != 0)
				ck_abort_msg("pair 0x%02x 0x%02x differs", x, y);
		}
}
END_TEST

START_TEST(large_random_buffer)
{
	const size_t len = 1024 * 1024 + 13;
	unsigned char *got, *want;
	uint32_t seed = 0x2545f491;
	size_t i, off;

	got = malloc(len + 8);
	want = malloc(len + 8);
	ck_assert_ptr_nonnull(got);
	ck_assert_ptr_nonnull(want);
	for (i = 0; i < len + 8; i++)
		got[i] = (unsigned char)rng_next(&seed);
	/* Aligned and misaligned starts over the same bytes. */
	for (off = 0; off < 8; off += 3) {
		memcpy(want, got, len + 8);
		ref_upper_buf(want + off, len);
		echo_upper(got + off, len);
		for (i = 0; i < len + 8; i++)
			if (got[i] != want[i])
				ck_abort_msg("offset %zu: byte %zu is 0x%02x, "
				    "want 0x%02x", off, i, got[i], want[i]);
		/* And, whatever the reference says: no lowercase is left. */
		for (i = off; i < off + len; i++)
			if (got[i] >= 'a' && got[i] <= 'z')
				ck_abort_msg("lowercase left at %zu", i);
	}
	free(got);
	free(want);
}
END_TEST

START_TEST(only_ascii_lowercase_changes)
{
	unsigned char got[256 + 3];
	unsigned i;

	/* All 256 values in one call: the SWAR path and the tail at once. */
	for (i = 0; i < sizeof(got); i++)
		got[i] = (unsigned char)i;
	echo_upper(got, sizeof(got));
	for (i = 0; i < sizeof(got); i++) {
		unsigned char c = (unsigned char)i;

		if (c >= 'a' && c <= 'z')
			ck_assert_uint_eq(got[i], c - 'a' + 'A');
		else
			ck_assert_uint_eq(got[i], c);
	}
}
END_TEST

/* Known inputs (NULs inside) and what echo_upper makes of them. */
static const struct upper_case {
	const char *what, *in, *want;
	size_t len, want_len;
} upper_cases[] = {
#define UPPER_CASE(what, in, want)                                         \
	{ what, in, want, sizeof(in), sizeof(want) }
	/* CR, LF, NUL, the letters' neighbours and their high-bit twins. */
	UPPER_CASE("control and high bytes unchanged",
	    "\r\n\0\r\n\0`{@[\x7f\x80\xc1\xe1\xfa\xff\xc0\xe0\xdb\xfb",
	    "\r\n\0\r\n\0`{@[\x7f\x80\xc1\xe1\xfa\xff\xc0\xe0\xdb\xfb"),
	/* "héllo wörld, ñ ß € 日本" in UTF-8, CRLF and a NUL inside. */
	UPPER_CASE("UTF-8 passes through",
	    "h\xc3\xa9llo w\xc3\xb6rld, \xc3\xb1 \xc3\x9f "
	    "\xe2\x82\xac \xe6\x97\xa5\xe6\x9c\xac\r\n\0tail",
	    "H\xc3\xa9LLO W\xc3\xb6RLD, \xc3\xb1 \xc3\x9f "
	    "\xe2\x82\xac \xe6\x97\xa5\xe6\x9c\xac\r\n\0TAIL"),
	UPPER_CASE("plain text",
	    "hello, World! the quick brown fox 0123 jumps over the lazy dog\n",
	    "HELLO, WORLD! THE QUICK BROWN FOX 0123 JUMPS OVER THE LAZY DOG\n"),
#undef UPPER_CASE
};

START_TEST(known_inputs)
{
	const struct upper_case *c = &upper_cases[_i];
	unsigned char got[128];

	ck_assert_uint_le(c->len, sizeof(got));
	ck_assert_uint_eq(c->want_len, c->len);
	memcpy(got, c->in, c->len);
	echo_upper(got, c->len);
	ck_assert_msg(memcmp(got, c->want, c->len) == 0, "%s: wrong bytes",
	    c->what);
}
END_TEST

START_TEST(idempotent)
{
	unsigned char once[4096 + 5], twice[sizeof(once)];
	uint32_t seed = 12345;
	size_t i;

	for (i = 0; i < sizeof(once); i++)
		once[i] = (unsigned char)rng_next(&seed);
	echo_upper(once, sizeof(once));
	memcpy(twice, once, sizeof(once));
	echo_upper(twice, sizeof(twice));
	ck_assert_mem_eq(twice, once, sizeof(once));
	/* Uppercase input is a fixed point too. */
	memcpy(twice, "ABCXYZ", 6);
	echo_upper(twice, 6);
	ck_assert_mem_eq(twice, "ABCXYZ", 6);
}
END_TEST

START_TEST(zero_length_touches_nothing)
{
	unsigned char buf[4] = { 'a', 'b', 'c', 'd' };

	echo_upper(buf, 0);
	ck_assert_mem_eq(buf, "abcd", 4);
	echo_upper(buf + 1, 2);
	ck_assert_mem_eq(buf, "aBCd", 4);
}
END_TEST

Suite *
echo_suite(void)
{
	Suite *s = suite_create("echo");
	TCase *tc;

	tc = h_case(s, "upper", 0, H_TESTS(every_byte_every_offset_and_length,
	    every_byte_scattered_neighbours, every_pair_of_neighbours,
	    large_random_buffer, only_ascii_lowercase_changes,
	    idempotent, zero_length_touches_nothing));
	tcase_add_loop_test(tc, known_inputs, 0, H_NELEM(upper_cases));
	return s;
}
