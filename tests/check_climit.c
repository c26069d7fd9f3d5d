/*
 * check_climit: the per-client limit tables, without a daemon.
 *
 * climit_key is pure and gets address tables.  The tables are exercised
 * over a climit from climit_create with the smallest capacity (64
 * entries a slot), as the master creates them: each slot used is reset
 * first (climit_reset_slot), which is also what makes it summed.  The
 * tests look into l.tables only to count entries and to find where a key
 * landed, never to decide an outcome the API reports itself.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "climit.h"
#include "suites.h"

#define NSLOTS 4
#define SMALL_CAP 8 /* rounded up: 64 */

/* ---- keys ---- */

static uint64_t
key4(const char *a, int *lo)
{
	struct sockaddr_in sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(4242);
	ck_assert_int_eq(inet_pton(AF_INET, a, &sin.sin_addr), 1);
	return climit_key((struct sockaddr *)&sin, lo);
}

static uint64_t
key6(const char *a, int *lo)
{
	struct sockaddr_in6 sin6;

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(4242);
	ck_assert_int_eq(inet_pton(AF_INET6, a, &sin6.sin6_addr), 1);
	return climit_key((struct sockaddr *)&sin6, lo);
}

struct key_case {
	int v6;
	const char *addr;
	int loopback;
	int same_as;  /* index of a case with the same key, or -1 */
};

/* Every row's key is nonzero and differs from every row not linked. */
static const struct key_case key_cases[] = {
	/* 0 */ { 0, "192.0.2.1", 0, -1 },
	/* 1 */ { 0, "192.0.2.2", 0, -1 },
	/* 2 */ { 0, "127.0.0.1", 1, -1 },
	/* 3 */ { 0, "127.255.255.254", 1, -1 },
	/* 4 */ { 0, "128.0.0.1", 0, -1 },
	/* 5 */ { 0, "126.255.255.255", 0, -1 },
	/* 6 */ { 0, "0.0.0.0", 0, -1 },
	/* 7 */ { 0, "255.255.255.255", 0, -1 },
	/* IPv4-mapped IPv6 is the IPv4 client */
	/* 8 */ { 1, "::ffff:192.0.2.1", 0, 0 },
	/* 9 */ { 1, "::ffff:127.0.0.1", 1, 2 },
	/* IPv6 by /64 */
	/* 10 */ { 1, "2001:db8:1:2::1", 0, -1 },
	/* 11 */ { 1, "2001:db8:1:2:ffff:ffff:ffff:ffff", 0, 10 },
	/* 12 */ { 1, "2001:db8:1:2:abcd::9", 0, 10 },
	/* 13 */ { 1, "2001:db8:1:3::1", 0, -1 },
	/* 14 */ { 1, "2001:db8:2:2::1", 0, -1 },
	/* 15 */ { 1, "fe80::1", 0, -1 },
	/* ::/64 holds ::1: its key is not 0 ("no key") */
	/* 16 */ { 1, "::1", 1, -1 },
	/* 17 */ { 1, "::2", 0, 16 },
	/* 18 */ { 1, "::", 0, 16 },
	/* IPv4-compatible (deprecated) addresses are plain IPv6 in ::/64 */
	/* 19 */ { 1, "::192.0.2.1", 0, 16 },
};

#define NKEYS (sizeof(key_cases) / sizeof(key_cases[0]))

static int
root_of(int i)
{
	while (key_cases[i].same_as >= 0)
		i = key_cases[i].same_as;
	return i;
}

START_TEST(test_key_table)
{
	uint64_t keys[NKEYS];
	size_t i, j;
	int lo;

	for (i = 0; i < NKEYS; i++) {
		lo = -1;
		keys[i] = key_cases[i].v6 ? key6(key_cases[i].addr, &lo) :
		    key4(key_cases[i].addr, &lo);
		ck_assert_msg(keys[i] != 0, "%s: key 0", key_cases[i].addr);
		ck_assert_msg(lo == key_cases[i].loopback,
		    "%s: loopback %d, want %d", key_cases[i].addr, lo,
		    key_cases[i].loopback);
	}
	for (i = 0; i < NKEYS; i++)
		for (j = 0; j < i; j++)
			ck_assert_msg((keys[i] == keys[j]) ==
			    (root_of((int)i) == root_of((int)j)),
			    "%s and %s: keys %s", key_cases[i].addr,
			    key_cases[j].addr, keys[i] == keys[j] ?
			    "equal, want different" : "differ, want equal");
}
END_TEST

/* The port plays no part: it is the client, not the connection. */
START_TEST(test_key_ignores_port)
{
	struct sockaddr_in a, b;
	int lo;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(0xc0000201);
	b = a;
	a.sin_port = htons(1);
	b.sin_port = htons(65535);
	ck_assert(climit_key((struct sockaddr *)&a, &lo) ==
	    climit_key((struct sockaddr *)&b, &lo));
}
END_TEST

START_TEST(test_key_other_family)
{
	struct sockaddr_un sun;
	struct sockaddr_storage ss;
	int lo = 1;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	ck_assert(climit_key((struct sockaddr *)&sun, &lo) == 0);
	ck_assert_int_eq(lo, 0);
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNSPEC;
	lo = 1;
	ck_assert(climit_key((struct sockaddr *)&ss, &lo) == 0);
	ck_assert_int_eq(lo, 0);
}
END_TEST

/* ---- tables ---- */

static struct climit lim;

static void
setup(void)
{
	unsigned s;

	memset(&lim, 0, sizeof(lim));
	ck_assert_int_eq(climit_create(&lim, NSLOTS, SMALL_CAP), 0);
	for (s = 0; s < NSLOTS; s++)
		climit_reset_slot(&lim, s);
}

static void
teardown(void)
{
	climit_destroy(&lim);
}

/* Entries in use in slot s. */
static unsigned
entries(unsigned s)
{
	unsigned i, n = 0;

	for (i = 0; i < lim.cap; i++)
		n += lim.tables[(size_t)s * lim.cap + i].key != 0;
	return n;
}

/* Where key sits in slot s, or -1. */
static int
position(unsigned s, uint64_t key)
{
	unsigned i;

	for (i = 0; i < lim.cap; i++)
		if (lim.tables[(size_t)s * lim.cap + i].key == key)
			return (int)i;
	return -1;
}

/* A key for client number i (an IPv4 address). */
static uint64_t
client(unsigned i)
{
	struct sockaddr_in sin;
	int lo;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(0x0a000000 + i); /* 10.0.0.0/8 */
	return climit_key((struct sockaddr *)&sin, &lo);
}

START_TEST(test_create_rounds_up)
{
	ck_assert_uint_eq(lim.nslots, NSLOTS);
	ck_assert_uint_eq(lim.cap, 64);
	ck_assert_uint_eq(lim.cap & (lim.cap - 1), 0);
	ck_assert_uint_eq(entries(0), 0);
	climit_destroy(&lim);
	ck_assert_int_eq(climit_create(&lim, 2, 100), 0);
	ck_assert_uint_eq(lim.cap, 128);
}
END_TEST

/* Counts in two slots add up; a limit holds over the sum. */
START_TEST(test_admit_release_sum)
{
	uint64_t k = client(1), other = client(2);

	ck_assert_int_eq(climit_admit(&lim, 0, k, 100, 3, 0), CLIMIT_OK);
	ck_assert_int_eq(climit_admit(&lim, 0, k, 100, 3, 0), CLIMIT_OK);
	ck_assert_int_eq(climit_admit(&lim, 1, k, 100, 3, 0), CLIMIT_OK);
	ck_assert_uint_eq(climit_conns(&lim, k), 3);
	/* Neither slot holds 3 itself: only the sum refuses. */
	ck_assert_int_eq(climit_admit(&lim, 2, k, 100, 3, 0),
	    CLIMIT_TOO_MANY);
	ck_assert_int_eq(climit_admit(&lim, 1, k, 100, 3, 0),
	    CLIMIT_TOO_MANY);
	ck_assert_uint_eq(climit_conns(&lim, k), 3);
	/* Another client is not affected. */
	ck_assert_int_eq(climit_admit(&lim, 1, other, 100, 3, 0), CLIMIT_OK);
	ck_assert_uint_eq(climit_conns(&lim, other), 1);
	/* One closes: room for exactly one more, in any slot. */
	climit_release(&lim, 0, k, 100);
	ck_assert_uint_eq(climit_conns(&lim, k), 2);
	ck_assert_int_eq(climit_admit(&lim, 3, k, 100, 3, 0), CLIMIT_OK);
	ck_assert_int_eq(climit_admit(&lim, 3, k, 100, 3, 0),
	    CLIMIT_TOO_MANY);
	ck_assert_uint_eq(climit_conns(&lim, k), 3);
}
END_TEST

/* 0 means no limit, for both. */
START_TEST(test_no_limits)
{
	uint64_t k = client(7);
	unsigned i;

	for (i = 0; i < 1000; i++)
		ck_assert_int_eq(climit_admit(&lim, i % NSLOTS, k, 5, 0, 0),
		    CLIMIT_OK);
	ck_assert_uint_eq(climit_conns(&lim, k), 1000);
}
END_TEST

/* A slot never reset (never forked into) is not summed. */
START_TEST(test_unused_slot_not_summed)
{
	uint64_t k = client(3);

	climit_destroy(&lim);
	ck_assert_int_eq(climit_create(&lim, NSLOTS, SMALL_CAP), 0);
	climit_reset_slot(&lim, 0);
	ck_assert_uint_eq(lim.hdr->slots_used, 1);
	ck_assert_int_eq(climit_admit(&lim, 0, k, 1, 0, 0), CLIMIT_OK);
	ck_assert_uint_eq(climit_conns(&lim, k), 1);
	/* Slot 2 was never forked into: what it holds is not counted. */
	ck_assert_int_eq(climit_admit(&lim, 2, k, 1, 0, 0), CLIMIT_OK);
	ck_assert_uint_eq(climit_conns(&lim, k), 1);
	climit_reset_slot(&lim, 2);
	ck_assert_uint_eq(lim.hdr->slots_used, 3);
	ck_assert_int_eq(climit_admit(&lim, 2, k, 1, 0, 0), CLIMIT_OK);
	ck_assert_uint_eq(climit_conns(&lim, k), 2);
	climit_reset_slot(&lim, NSLOTS); /* out of range: ignored */
	ck_assert_uint_eq(lim.hdr->slots_used, 3);
}
END_TEST

/* max_rate: attempts of this second across slots, refused ones too. */
START_TEST(test_rate)
{
	uint64_t k = client(4), other = client(5);
	unsigned i;

	for (i = 0; i < 5; i++) {
		ck_assert_int_eq(climit_admit(&lim, i % 2, k, 100, 0, 5),
		    CLIMIT_OK);
		climit_release(&lim, i % 2, k, 100);
	}
	ck_assert_int_eq(climit_admit(&lim, 2, k, 100, 0, 5), CLIMIT_TOO_FAST);
	ck_assert_int_eq(climit_admit(&lim, 0, k, 100, 0, 5), CLIMIT_TOO_FAST);
	ck_assert_uint_eq(climit_conns(&lim, k), 0);
	ck_assert_int_eq(climit_admit(&lim, 0, other, 100, 0, 5), CLIMIT_OK);
	/* The next second starts afresh. */
	ck_assert_int_eq(climit_admit(&lim, 0, k, 101, 0, 5), CLIMIT_OK);
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(climit_admit(&lim, 3, k, 101, 0, 5),
		    CLIMIT_OK);
	ck_assert_int_eq(climit_admit(&lim, 1, k, 101, 0, 5), CLIMIT_TOO_FAST);
	ck_assert_uint_eq(climit_conns(&lim, k), 5);
	/* A second with no attempts in between makes no difference. */
	ck_assert_int_eq(climit_admit(&lim, 1, k, 200, 0, 5), CLIMIT_OK);
}
END_TEST

/* Too fast is said before too many; a refusal is not counted open. */
START_TEST(test_rate_before_conns)
{
	uint64_t k = client(6);

	ck_assert_int_eq(climit_admit(&lim, 0, k, 9, 1, 2), CLIMIT_OK);
	ck_assert_int_eq(climit_admit(&lim, 0, k, 9, 1, 2), CLIMIT_TOO_MANY);
	ck_assert_int_eq(climit_admit(&lim, 0, k, 9, 1, 2), CLIMIT_TOO_FAST);
	ck_assert_uint_eq(climit_conns(&lim, k), 1);
	ck_assert_int_eq(climit_admit(&lim, 1, k, 10, 1, 2), CLIMIT_TOO_MANY);
	climit_release(&lim, 0, k, 10);
	ck_assert_int_eq(climit_admit(&lim, 1, k, 10, 1, 2), CLIMIT_OK);
}
END_TEST

/* Release removes an entry once nothing is open and its second is old. */
START_TEST(test_release_removes)
{
	uint64_t a = client(10), b = client(11);

	ck_assert_int_eq(climit_admit(&lim, 0, a, 50, 0, 0), CLIMIT_OK);
	ck_assert_int_eq(climit_admit(&lim, 0, a, 50, 0, 0), CLIMIT_OK);
	ck_assert_int_eq(climit_admit(&lim, 0, b, 50, 0, 0), CLIMIT_OK);
	ck_assert_uint_eq(entries(0), 2);
	climit_release(&lim, 0, a, 51);
	ck_assert_uint_eq(entries(0), 2); /* a still has one open */
	climit_release(&lim, 0, a, 51);
	ck_assert_uint_eq(entries(0), 1);
	ck_assert_int_eq(position(0, a), -1);
	ck_assert_uint_eq(climit_conns(&lim, a), 0);
	/* Released in its own second: kept for the rate, until swept. */
	climit_release(&lim, 0, b, 50);
	ck_assert_uint_eq(entries(0), 1);
	climit_sweep(&lim, 0, 50);
	ck_assert_uint_eq(entries(0), 1);
	climit_sweep(&lim, 0, 51);
	ck_assert_uint_eq(entries(0), 0);
	/* Releasing what is not there is harmless. */
	climit_release(&lim, 0, b, 52);
	climit_release(&lim, 3, client(99), 52);
	ck_assert_uint_eq(climit_conns(&lim, b), 0);
}
END_TEST

/* Sweep drops rate-only entries of old seconds, keeps the others. */
START_TEST(test_sweep)
{
	unsigned i;

	/* 10 clients refused (rate only), 5 with a connection open. */
	for (i = 0; i < 10; i++) {
		ck_assert_int_eq(climit_admit(&lim, 1, client(100 + i), 20, 0,
		    1), CLIMIT_OK);
		climit_release(&lim, 1, client(100 + i), 20);
		ck_assert_int_eq(climit_admit(&lim, 1, client(100 + i), 20, 0,
		    1), CLIMIT_TOO_FAST);
	}
	for (i = 0; i < 5; i++)
		ck_assert_int_eq(climit_admit(&lim, 1, client(200 + i), 20, 0,
		    0), CLIMIT_OK);
	ck_assert_uint_eq(entries(1), 15);
	climit_sweep(&lim, 1, 20);
	ck_assert_uint_eq(entries(1), 15);
	climit_sweep(&lim, 1, 21);
	ck_assert_uint_eq(entries(1), 5);
	for (i = 0; i < 5; i++)
		ck_assert_uint_eq(climit_conns(&lim, client(200 + i)), 1);
	/* Another slot's entries are not ours to sweep. */
	ck_assert_int_eq(climit_admit(&lim, 2, client(300), 20, 0, 0),
	    CLIMIT_OK);
	climit_release(&lim, 2, client(300), 20);
	climit_sweep(&lim, 1, 30);
	ck_assert_uint_eq(entries(2), 1);
}
END_TEST

/* A full table lets new clients in (fails open) and counts them not. */
START_TEST(test_full_table_fails_open)
{
	uint64_t k = client(5000);
	unsigned i;

	for (i = 0; i < lim.cap; i++)
		ck_assert_int_eq(climit_admit(&lim, 0, client(1000 + i), 7, 1,
		    0), CLIMIT_OK);
	ck_assert_uint_eq(entries(0), lim.cap);
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(climit_admit(&lim, 0, k, 7, 1, 1), CLIMIT_OK);
	ck_assert_uint_eq(climit_conns(&lim, k), 0);
	/* Clients already in the table are still held to their limit. */
	ck_assert_int_eq(climit_admit(&lim, 0, client(1000), 7, 1, 0),
	    CLIMIT_TOO_MANY);
	/* Another slot has room: the new client is counted there. */
	ck_assert_int_eq(climit_admit(&lim, 1, k, 7, 1, 0), CLIMIT_OK);
	ck_assert_int_eq(climit_admit(&lim, 1, k, 7, 1, 0), CLIMIT_TOO_MANY);
	/* Space again after a release in a later second. */
	climit_release(&lim, 0, client(1000), 8);
	ck_assert_uint_eq(entries(0), lim.cap - 1);
	ck_assert_int_eq(climit_admit(&lim, 0, client(6000), 8, 1, 0),
	    CLIMIT_OK);
	ck_assert_uint_eq(climit_conns(&lim, client(6000)), 1);
}
END_TEST

/*
 * Deleting from a full table: there is no empty entry to end the
 * backward shift, and every survivor must still be found.  Sweeping a
 * table full of rate-only entries (a flood from many addresses within
 * one second) empties it.
 */
START_TEST(test_full_table_removals)
{
	unsigned i;

	for (i = 0; i < lim.cap; i++)
		ck_assert_int_eq(climit_admit(&lim, 0, client(3000 + i), 7, 0,
		    0), CLIMIT_OK);
	ck_assert_uint_eq(entries(0), lim.cap);
	for (i = 0; i < lim.cap; i += 2)
		climit_release(&lim, 0, client(3000 + i), 8);
	ck_assert_uint_eq(entries(0), lim.cap / 2);
	for (i = 0; i < lim.cap; i++)
		ck_assert_uint_eq(climit_conns(&lim, client(3000 + i)), i % 2);

	for (i = 0; i < lim.cap; i++) {
		ck_assert_int_eq(climit_admit(&lim, 1, client(4000 + i), 7, 0,
		    0), CLIMIT_OK);
		climit_release(&lim, 1, client(4000 + i), 7);
	}
	ck_assert_uint_eq(entries(1), lim.cap);
	climit_sweep(&lim, 1, 8);
	ck_assert_uint_eq(entries(1), 0);
}
END_TEST

/* The master resets a dead worker's slot: its counts are forgotten. */
START_TEST(test_reset_slot_forgets)
{
	uint64_t k = client(42);

	ck_assert_int_eq(climit_admit(&lim, 0, k, 3, 4, 0), CLIMIT_OK);
	ck_assert_int_eq(climit_admit(&lim, 1, k, 3, 4, 0), CLIMIT_OK);
	ck_assert_int_eq(climit_admit(&lim, 1, k, 3, 4, 0), CLIMIT_OK);
	ck_assert_int_eq(climit_admit(&lim, 1, k, 3, 4, 0), CLIMIT_OK);
	ck_assert_int_eq(climit_admit(&lim, 0, k, 3, 4, 0), CLIMIT_TOO_MANY);
	climit_reset_slot(&lim, 1);
	ck_assert_uint_eq(entries(1), 0);
	ck_assert_uint_eq(climit_conns(&lim, k), 1);
	ck_assert_int_eq(climit_admit(&lim, 1, k, 3, 4, 0), CLIMIT_OK);
	ck_assert_uint_eq(climit_conns(&lim, k), 2);
}
END_TEST

/* ---- backward-shift deletion ---- */

/* Where key lands alone in an empty slot: its home bucket. */
static int
home(uint64_t key)
{
	const unsigned s = NSLOTS - 1;
	int pos;

	climit_reset_slot(&lim, s);
	ck_assert_int_eq(climit_admit(&lim, s, key, 1, 0, 0), CLIMIT_OK);
	pos = position(s, key);
	climit_reset_slot(&lim, s);
	return pos;
}

/* Keys for clients start.. whose home bucket is b; n of them. */
static unsigned
keys_homed_at(int b, unsigned start, uint64_t *out, unsigned n)
{
	unsigned i, got = 0;

	for (i = start; got < n && i < start + 100000; i++)
		if (home(client(i)) == b)
			out[got++] = client(i);
	return got;
}

/* Open conns = 1 + (i % 3) for key i, so a moved entry keeps its counts. */
static void
fill(unsigned slot, const uint64_t *keys, unsigned n)
{
	unsigned i, j;

	for (i = 0; i < n; i++)
		for (j = 0; j <= i % 3; j++)
			ck_assert_int_eq(climit_admit(&lim, slot, keys[i], 1, 0,
			    0), CLIMIT_OK);
}

static void
drop(unsigned slot, uint64_t key, uint32_t conns)
{
	while (conns-- > 0)
		climit_release(&lim, slot, key, 2);
}

static void
assert_counts(const uint64_t *keys, const int *gone, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++)
		ck_assert_msg(climit_conns(&lim, keys[i]) ==
		    (gone[i] ? 0 : 1 + i % 3), "key %u: %u open, want %u", i,
		    climit_conns(&lim, keys[i]), gone[i] ? 0 : 1 + i % 3);
}

/*
 * A cluster that wraps around the end of the table: keys homed at the
 * last two buckets and at bucket 0 interleave.  Deleting from the front
 * of the cluster must shift the rest back (across the wrap) so every
 * survivor is still found by a probe from its home.
 */
START_TEST(test_backward_shift_wrap)
{
	uint64_t keys[12];
	int gone[12] = { 0 };
	unsigned i, last = lim.cap - 1;

	ck_assert_uint_eq(keys_homed_at((int)last - 1, 1, keys, 4), 4);
	ck_assert_uint_eq(keys_homed_at((int)last, 1, keys + 4, 4), 4);
	ck_assert_uint_eq(keys_homed_at(0, 1, keys + 8, 4), 4);
	fill(0, keys, 12);
	/* The cluster runs from last - 1 over the wrap to bucket 9. */
	ck_assert_int_eq(position(0, keys[0]), (int)last - 1);
	for (i = 0; i < 12; i++)
		ck_assert_int_ne(position(0, keys[i]), -1);
	ck_assert_uint_eq(entries(0), 12);
	assert_counts(keys, gone, 12);
	/* Remove the first key of each home group, then some more. */
	{
		static const unsigned order[] = { 0, 4, 8, 5, 11, 1 };

		for (i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
			drop(0, keys[order[i]], 1 + order[i] % 3);
			gone[order[i]] = 1;
			assert_counts(keys, gone, 12);
			ck_assert_uint_eq(entries(0), 12 - (i + 1));
		}
	}
	/* Survivors are packed: no hole before any of them. */
	for (i = 0; i < 12; i++)
		if (!gone[i])
			ck_assert_int_ne(position(0, keys[i]), -1);
}
END_TEST

/* Many keys, many collisions, deletions in a scrambled order. */
START_TEST(test_backward_shift_many)
{
	uint64_t keys[48];
	int gone[48] = { 0 };
	unsigned i, j;

	for (i = 0; i < 48; i++)
		keys[i] = client(7000 + i * 13);
	fill(0, keys, 48);
	ck_assert_uint_eq(entries(0), 48);
	assert_counts(keys, gone, 48);
	for (i = 0; i < 32; i++) {
		j = (i * 29 + 7) % 48; /* 29 is prime to 48: all distinct */
		drop(0, keys[j], 1 + j % 3);
		gone[j] = 1;
		assert_counts(keys, gone, 48);
	}
	ck_assert_uint_eq(entries(0), 16);
	/* Put them back: every one finds a place and its own count. */
	for (i = 0; i < 48; i++)
		if (gone[i]) {
			for (j = 0; j <= i % 3; j++)
				ck_assert_int_eq(climit_admit(&lim, 0, keys[i],
				    3, 0, 0), CLIMIT_OK);
			gone[i] = 0;
		}
	assert_counts(keys, gone, 48);
	ck_assert_uint_eq(entries(0), 48);
}
END_TEST

Suite *
climit_suite(void)
{
	Suite *s = suite_create("climit");
	TCase *tc;

	tc = tcase_create("key");
	tcase_add_test(tc, test_key_table);
	tcase_add_test(tc, test_key_ignores_port);
	tcase_add_test(tc, test_key_other_family);
	suite_add_tcase(s, tc);

	tc = tcase_create("tables");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_create_rounds_up);
	tcase_add_test(tc, test_admit_release_sum);
	tcase_add_test(tc, test_no_limits);
	tcase_add_test(tc, test_unused_slot_not_summed);
	tcase_add_test(tc, test_rate);
	tcase_add_test(tc, test_rate_before_conns);
	tcase_add_test(tc, test_release_removes);
	tcase_add_test(tc, test_sweep);
	tcase_add_test(tc, test_full_table_fails_open);
	tcase_add_test(tc, test_full_table_removals);
	tcase_add_test(tc, test_reset_slot_forgets);
	tcase_add_test(tc, test_backward_shift_wrap);
	tcase_add_test(tc, test_backward_shift_many);
	suite_add_tcase(s, tc);
	return s;
}
