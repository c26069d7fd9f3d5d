/*
 * echo: the uppercase transform, pure and branch-free.
 *
 * Sixteen bytes at a time with the compiler's generic vectors (SSE2 on
 * x86-64, NEON on arm64, plain words elsewhere): a lane is lowercase when
 * byte - 'a', taken unsigned, is below 26; those lanes get bit 5 (0x20)
 * cleared by an xor.  Every other byte, 0x80..0xff included, compares
 * false and is left as it is.  What is left over goes eight bytes at a
 * time (SWAR, below), then one byte at a time.
 */
#include <stdint.h>
#include <string.h>

#include "echo.h"

typedef unsigned char v16u8 __attribute__((vector_size(16)));

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

static inline void
upper16(unsigned char *p)
{
	v16u8 v;

	memcpy(&v, p, sizeof(v));
	/* A comparison gives -1 (all ones) in the lanes where it holds. */
	v ^= (v16u8)(v - (unsigned char)'a' < (unsigned char)26) &
	    (unsigned char)0x20;
	memcpy(p, &v, sizeof(v));
}

/*
 * For each byte, set bit 7 of a mask when the byte is in 'a'..'z', then
 * flip bit 5 of exactly those bytes.  Bytes >= 0x80 are excluded by their
 * own top bit, and the per-byte additions never carry into the
 * neighbouring byte because each operand is at most 0x7f + 0x1f.
 */
static inline uint64_t
upper_word(uint64_t x)
{
	uint64_t low7 = x & ~HIGHS;
	uint64_t ge_a = low7 + (0x80 - 'a') * ONES; /* bit 7: byte >= 'a' */
	uint64_t gt_z = low7 + (0x80 - 'z' - 1) * ONES; /* bit 7: > 'z' */
	uint64_t lower = ge_a & ~gt_z & ~x & HIGHS;

	return x ^ (lower >> 2); /* 0x80 >> 2 == 0x20 */
}

void
echo_upper(unsigned char *buf, size_t len)
{
	uint64_t w;
	size_t i = 0;

	for (; i + 32 <= len; i += 32) {
		upper16(buf + i);
		upper16(buf + i + 16);
	}
	if (i + 16 <= len) {
		upper16(buf + i);
		i += 16;
	}
	if (i + 8 <= len) {
		memcpy(&w, buf + i, 8);
		w = upper_word(w);
		memcpy(buf + i, &w, 8);
		i += 8;
	}
	for (; i < len; i++)
		if ((unsigned)(buf[i] - 'a') < 26u)
			buf[i] ^= 0x20;
}
