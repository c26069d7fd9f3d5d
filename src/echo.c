/*
 * echo: the uppercase transform, pure and branch-free.
 *
 * Eight bytes at a time (SWAR): for each byte, set bit 7 of a mask when the
 * byte is in 'a'..'z', then clear bit 5 (0x20) of exactly those bytes.
 * No byte outside 'a'..'z' can change: bytes >= 0x80 are excluded by
 * their own top bit, and the per-byte additions below never carry into
 * the neighbouring byte because each operand is at most 0x7f + 0x1f.
 */
#include <stdint.h>
#include <string.h>

#include "echo.h"

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

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

	for (; i + 8 <= len; i += 8) {
		memcpy(&w, buf + i, 8);
		w = upper_word(w);
		memcpy(buf + i, &w, 8);
	}
	for (; i < len; i++)
		if ((unsigned)(buf[i] - 'a') < 26u)
			buf[i] ^= 0x20;
}
