/*
 * check_climit: the per-client limit tables, without a daemon.
 *
 * climit_key, climit_cap_for and climit_fit are pure and get tables.
 * The tables are exercised over a climit from climit_create with the
 * smallest capacity (64 entries a slot), as the master creates them: each
 * slot used is reset first (climit_reset_slot), which is also what makes
 * it summed.  The tests look into a slot's table (climit_table) only to
 * count entries and to find where a key landed, never to decide an
 * outcome the API reports itself.  Then the regions a reload makes, and
 * the daemon: the per-IP limit across a growing reload, and the shared
 * memory that SIGTTIN/SIGTTOU leave behind.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "climit.h"
#include "clients.h"
#include "harness.h"
#include "procfs.h"
#include "suites.h"

#define NSLOTS 4
#define SMALL_CAP 8 /* rounded up: 64 */

/* ---- keys ---- */

/* The key of the client at address a (IPv6 with v6), port 4242. */
static uint64_t
key(int v6, const char *a, int *lo)
{
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} u;
	void *addr = v6 ? (void *)&u.in6.sin6_addr : (void *)&u.in.sin_addr;

	memset(&u, 0, sizeof(u));
	u.sa.sa_family = v6 ? AF_INET6 : AF_INET;
	if (v6)
		u.in6.sin6_port = htons(4242);
	else
		u.in.sin_port = htons(4242);
	ck_assert_int_eq(inet_pton(u.sa.sa_family, a, addr), 1);
	return climit_key(&u.sa, lo);
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
		keys[i] = key(key_cases[i].v6, key_cases[i].addr, &lo);
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
	struct climit_entry *t;
	unsigned i, n = 0, cap;

	ck_assert_ptr_nonnull(t = climit_table(&lim, s, &cap));
	for (i = 0; i < cap; i++)
		n += t[i].key != 0;
	return n;
}

/* Where key sits in slot s, or -1. */
static int
position(unsigned s, uint64_t key)
{
	struct climit_entry *t;
	unsigned i, cap;

	ck_assert_ptr_nonnull(t = climit_table(&lim, s, &cap));
	for (i = 0; i < cap; i++)
		if (t[i].key == key)
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

/* ---- sizing and regions ---- */

struct cap_case {
	int max_connections, limited;
	unsigned want;
};

static const struct cap_case cap_cases[] = {
	{ 100, 0, 0 },         /* no limit set: no table at all */
	{ 1000000, 0, 0 },
	{ 1, 1, 64 },          /* the smallest table */
	{ 32, 1, 64 },
	{ 33, 1, 128 },        /* room for every client twice over */
	{ 100, 1, 256 },
	{ 8192, 1, 16384 },
	{ 32768, 1, 65536 },
	{ 1000000, 1, 65536 }, /* the largest */
	{ 0, 1, 64 },
	{ -5, 1, 64 },
};

START_TEST(test_cap_for)
{
	const struct cap_case *c = &cap_cases[_i];

	ck_assert_msg(climit_cap_for(c->max_connections, c->limited) == c->want,
	    "climit_cap_for(%d, %d) = %u, want %u", c->max_connections,
	    c->limited, climit_cap_for(c->max_connections, c->limited),
	    c->want);
}
END_TEST

struct fit_case {
	unsigned cur, want;
	int has_want, region_free;
	enum climit_fit fit;
};

static const struct fit_case fit_cases[] = {
	{ 0, 0, 0, 1, CLIMIT_FIT_NONE },     /* limits stay off */
	{ 64, 0, 0, 1, CLIMIT_FIT_NONE },    /* limits turned off */
	{ 64, 64, 1, 0, CLIMIT_FIT_KEEP },   /* nothing to change */
	{ 64, 128, 0, 1, CLIMIT_FIT_NEW },   /* max_connections raised */
	{ 128, 64, 0, 1, CLIMIT_FIT_NEW },   /* lowered: smaller tables */
	{ 0, 64, 0, 1, CLIMIT_FIT_NEW },     /* limits turned on */
	{ 128, 64, 1, 1, CLIMIT_FIT_REUSE }, /* back to a size still used */
	{ 128, 64, 1, 0, CLIMIT_FIT_REUSE },
	{ 0, 64, 1, 0, CLIMIT_FIT_REUSE },   /* on, off, on again */
	{ 64, 128, 0, 0, CLIMIT_FIT_FULL },  /* every region still in use */
	{ 0, 64, 0, 0, CLIMIT_FIT_FULL },
};

START_TEST(test_fit)
{
	const struct fit_case *c = &fit_cases[_i];
	enum climit_fit got = climit_fit(c->cur, c->want, c->has_want,
	    c->region_free);

	ck_assert_msg(got == c->fit, "climit_fit(%u, %u, %d, %d) = %d, want "
	    "%d", c->cur, c->want, c->has_want, c->region_free, got, c->fit);
}
END_TEST

static unsigned
regions(const struct climit *l)
{
	unsigned r, n = 0;

	for (r = 0; r < CLIMIT_REGIONS; r++)
		n += l->reg[r].base != NULL;
	return n;
}


/*
 * A reload to max_connections maxc with the per-client limits on, and
 * the first worker of that generation set up in slot.
 */
static void
reload_to(struct climit *l, int maxc, unsigned slot)
{
	ck_assert_int_eq(climit_configure(l, maxc, 1, 0), 0);
	climit_reset_slot(l, slot);
}

/* The capacity of slot's table, which it must have. */
static unsigned
table_cap(const struct climit *l, unsigned slot)
{
	unsigned cap = 0;

	ck_assert_ptr_nonnull(climit_table(l, slot, &cap));
	return cap;
}

/* Four slots, max_connections 10: k holds one connection in slot 0. */
static void
one_client(struct climit *l, uint64_t k)
{
	climit_init(l, 4);
	reload_to(l, 10, 0);
	ck_assert_int_eq(climit_admit(l, 0, k, 1, 0, 0), CLIMIT_OK);
}

/* With no limit set, nothing is mapped, and spawns and reaps cost nothing. */
START_TEST(test_limits_off_maps_nothing)
{
	struct climit l;
	unsigned s, cap;

	climit_init(&l, 8);
	ck_assert_int_eq(climit_configure(&l, 1000000, 0, 0), 0);
	ck_assert_ptr_null(l.hdr);
	ck_assert_uint_eq(regions(&l), 0);
	for (s = 0; s < 8; s++) {
		climit_reset_slot(&l, s);
		ck_assert_ptr_null(climit_table(&l, s, &cap));
		climit_release_slot(&l, s);
	}
	ck_assert_uint_eq(climit_conns(&l, client(1)), 0);
	climit_destroy(&l);
}
END_TEST

/*
 * Defect 6: a reload that raises max_connections gets larger tables for
 * the new workers, and a client's count still sums over the old ones,
 * which stay until their last worker is reaped.
 */
START_TEST(test_growing_reload)
{
	struct climit l;
	uint64_t k = client(9);
	unsigned cap;

	climit_init(&l, 4);
	ck_assert_int_eq(climit_configure(&l, 10, 1, 0), 0);
	ck_assert_uint_eq(l.cap, 64);
	climit_reset_slot(&l, 0);
	climit_reset_slot(&l, 1);
	ck_assert_int_eq(climit_admit(&l, 0, k, 1, 1, 0), CLIMIT_OK);
	ck_assert_int_eq(climit_configure(&l, 10, 1, 0), 0); /* the same */
	ck_assert_uint_eq(regions(&l), 1);
	ck_assert_int_eq(climit_configure(&l, 100000, 1, 0), 0);
	ck_assert_uint_eq(l.cap, 65536);
	ck_assert_uint_eq(regions(&l), 2);
	climit_reset_slot(&l, 2);
	ck_assert_uint_eq(table_cap(&l, 2), 65536);
	ck_assert_uint_eq(table_cap(&l, 0), 64);
	/* The old generation's connection counts against the new one. */
	ck_assert_int_eq(climit_admit(&l, 2, k, 1, 1, 0), CLIMIT_TOO_MANY);
	ck_assert_uint_eq(climit_conns(&l, k), 1);
	/* The old region goes with the last worker that used it. */
	climit_release_slot(&l, 0);
	ck_assert_uint_eq(regions(&l), 2);
	climit_release_slot(&l, 1);
	ck_assert_uint_eq(regions(&l), 1);
	ck_assert_uint_eq(climit_conns(&l, k), 0);
	ck_assert_int_eq(climit_admit(&l, 2, k, 1, 1, 0), CLIMIT_OK);
	ck_assert_int_eq(climit_admit(&l, 2, k, 1, 1, 0), CLIMIT_TOO_MANY);
	/* Limits turned off: new slots get no table. */
	ck_assert_int_eq(climit_configure(&l, 100000, 0, 0), 0);
	climit_reset_slot(&l, 3);
	ck_assert_ptr_null(climit_table(&l, 3, &cap));
	climit_release_slot(&l, 2);
	ck_assert_uint_eq(regions(&l), 0);
	climit_destroy(&l);
}
END_TEST

/* A worker forked before a new region does not know it: it skips it. */
START_TEST(test_older_worker_skips_newer_region)
{
	struct climit l, before;
	uint64_t k = client(10);

	one_client(&l, k);
	before = l; /* what a worker forked now holds */
	reload_to(&l, 1000, 1);
	ck_assert_int_eq(climit_admit(&l, 1, k, 1, 0, 0), CLIMIT_OK);
	ck_assert_uint_eq(climit_conns(&l, k), 2);
	ck_assert_uint_eq(climit_conns(&before, k), 1);
	climit_destroy(&l);
}
END_TEST

/* A reload undone goes back to the tables still in use: no new region. */
START_TEST(test_reload_undone_reuses)
{
	struct climit l;
	uint64_t k = client(11);

	one_client(&l, k);
	reload_to(&l, 1000, 1);
	ck_assert_uint_eq(regions(&l), 2);
	ck_assert_int_eq(climit_configure(&l, 10, 1, 0), 0);
	ck_assert_uint_eq(regions(&l), 2);
	climit_reset_slot(&l, 2);
	ck_assert_uint_eq(table_cap(&l, 2), 64);
	ck_assert_int_eq(climit_admit(&l, 2, k, 1, 0, 0), CLIMIT_OK);
	ck_assert_uint_eq(climit_conns(&l, k), 2);
	/* The 1000 region goes with its only worker. */
	climit_release_slot(&l, 1);
	ck_assert_uint_eq(regions(&l), 1);
	climit_destroy(&l);
}
END_TEST

/* At most CLIMIT_REGIONS sizes in use at once; then the current stays. */
START_TEST(test_regions_full)
{
	struct climit l;
	unsigned s;

	climit_init(&l, 8);
	for (s = 0; s < CLIMIT_REGIONS; s++) {
		reload_to(&l, 100 << s, s);
	}
	ck_assert_uint_eq(regions(&l), CLIMIT_REGIONS);
	errno = 0;
	ck_assert_int_eq(climit_configure(&l, 100 << s, 1, 0), -1);
	ck_assert_int_eq(errno, ENOSPC);
	ck_assert_uint_eq(l.cap, climit_cap_for(100 << (s - 1), 1));
	climit_reset_slot(&l, s); /* the current size, then */
	climit_release_slot(&l, 0);
	ck_assert_int_eq(climit_configure(&l, 100 << s, 1, 0), 0);
	ck_assert_uint_eq(l.cap, climit_cap_for(100 << s, 1));
	climit_destroy(&l);
}
END_TEST

/* A table a worker filled is given back when it is reset or released. */
START_TEST(test_memory_returned)
{
	struct climit l;
	struct climit_entry *t;
	long kb0, kb1, kb2;
	unsigned cap;

	climit_init(&l, 2);
	reload_to(&l, 1000000, 0);
	kb0 = pf_status_num(getpid(), "RssShmem");
	ck_assert_ptr_nonnull(t = climit_table(&l, 0, &cap));
	memset(t, 0, (size_t)cap * sizeof(*t)); /* a worker's worth */
	kb1 = pf_status_num(getpid(), "RssShmem");
	ck_assert_msg(kb1 - kb0 >= 1024, "RssShmem %ld -> %ld kB", kb0, kb1);
	climit_reset_slot(&l, 0);
	kb2 = pf_status_num(getpid(), "RssShmem");
	ck_assert_msg(kb2 - kb0 < 64, "RssShmem after a reset: %ld kB, was "
	    "%ld", kb2, kb0);
	memset(t, 0, (size_t)cap * sizeof(*t));
	climit_release_slot(&l, 0);
	kb2 = pf_status_num(getpid(), "RssShmem");
	ck_assert_msg(kb2 - kb0 < 64, "RssShmem after a release: %ld kB, was "
	    "%ld", kb2, kb0);
	climit_destroy(&l);
}
END_TEST

/* ---- the daemon ---- */

#define START_MS 5000
#define REPLY_MS 2000

static const char per_ip_conf[] = "listen = { \"127.0.0.1:0\" }\n"
    "workers = 1\nmax_connections_per_ip = 1\n"
    "limits_exempt_loopback = false\nlog_level = info\n";

#define CROWD 100

/* Of n connections held at once from src, how many are echoed. */
static int
admitted(int port, const char *src, int n)
{
	int fds[8], i, ok = 0;

	for (i = 0; i < n && i < 8; i++)
		fds[i] = cl_connect(src, "127.0.0.1", port);
	for (i = 0; i < n && i < 8; i++)
		if (fds[i] != -1)
			ok += cl_reply(fds[i], "x", REPLY_MS) == 1;
	for (i = 0; i < n && i < 8; i++)
		if (fds[i] != -1)
			close(fds[i]);
	return ok;
}

/* One connection from each of 127.0.1.1 .. 127.0.1.n, echoed. */
static int
crowd(int port, int *fds, int n)
{
	char src[32];
	int i;

	for (i = 0; i < n; i++) {
		snprintf(src, sizeof(src), "127.0.1.%d", i + 1);
		if ((fds[i] = cl_connect(src, "127.0.0.1", port)) == -1 ||
		    cl_reply(fds[i], "crowd", REPLY_MS) != 1)
			return i;
	}
	return n;
}

/* Wait for generation gen's "ready" line. */
static int
wait_generation(struct echod_proc *p, unsigned gen)
{
	char needle[64];

	snprintf(needle, sizeof(needle), "ready: generation %u,", gen);
	return cl_log_wait(p, needle, 1, 10000);
}

/*
 * Defect 6: the tables were sized for the max_connections at start-up
 * (64 entries for 10).  After a reload to 1000000, a worker holding
 * connections from 100 clients had a full table, and a full table admits
 * everyone: 5 of 5 from one address, with max_connections_per_ip = 1.
 */
START_TEST(per_ip_limit_across_growing_reload)
{
	struct echod_proc p;
	struct tres t = { 0, "" };
	int fds[CROWD], i, n;
	char conf[512];

	for (i = 0; i < CROWD; i++)
		fds[i] = -1;
	cl_proc_init(&p);
	snprintf(conf, sizeof(conf), "%smax_connections = 10\n", per_ip_conf);
	REQUIRE(&t, h_start(&p, conf, NULL, START_MS) == 0, "start failed");
	REQUIRE(&t, (n = admitted(p.port, "127.0.0.2", 5)) == 1, "%d of 5 "
	    "admitted at start", n);
	snprintf(conf, sizeof(conf), "%smax_connections = 1000000\n",
	    per_ip_conf);
	REQUIRE(&t, cl_write_conf(&p, conf) == 0, "rewrite");
	kill(p.pid, SIGHUP);
	REQUIRE(&t, wait_generation(&p, 2), "no ready generation 2");
	REQUIRE(&t, (n = crowd(p.port, fds, CROWD)) == CROWD, "connection "
	    "from client %d of %d not echoed", n + 1, CROWD);
	REQUIRE(&t, (n = admitted(p.port, "127.0.0.3", 5)) == 1, "%d of 5 "
	    "admitted from one address, with %d other clients connected, "
	    "after max_connections 10 -> 1000000", n, CROWD);
out:
	for (i = 0; i < CROWD; i++)
		if (fds[i] != -1)
			close(fds[i]);
	cl_stop(&p, 5000);
	cl_conclude(&t, &p);
}
END_TEST

/* Send sig and wait for the n-th line saying it was done. */
static int
resize(struct echod_proc *p, int sig, const char *line, int n)
{
	kill(p->pid, sig);
	return cl_log_wait(p, line, n, 5000);
}

/*
 * Defect 6 in figures: 100 SIGTTIN then 100 SIGTTOU with max_connections
 * = 1000000 and no per-client limit took the master's shared memory from
 * 1.6 MB to 155 MB, for good.  With no limit set no table may be touched.
 */
START_TEST(no_tables_without_limits)
{
	struct echod_proc p;
	struct tres t = { 0, "" };
	long kb0 = -1, kb1 = -1, kb2 = -1;
	int i;

	cl_proc_init(&p);
	REQUIRE(&t, h_start(&p, "listen = { \"127.0.0.1:0\" }\nworkers = 1\n"
	    "max_connections = 1000000\nlog_level = info\n", NULL,
	    START_MS) == 0, "start failed");
	kb0 = pf_status_num(p.pid, "RssShmem");
	for (i = 1; i <= 100; i++)
		REQUIRE(&t, resize(&p, SIGTTIN, "SIGTTIN: one worker more", i),
		    "SIGTTIN %d not done", i);
	kb1 = pf_status_num(p.pid, "RssShmem");
	for (i = 1; i <= 100; i++)
		REQUIRE(&t, resize(&p, SIGTTOU, "SIGTTOU: one worker fewer",
		    i), "SIGTTOU %d not done", i);
	kb2 = pf_status_num(p.pid, "RssShmem");
	REQUIRE(&t, kb0 >= 0 && kb1 - kb0 < 4096 && kb2 - kb0 < 4096,
	    "the master's RssShmem: %ld kB at start, %ld after 100 SIGTTIN, "
	    "%ld after 100 SIGTTOU", kb0, kb1, kb2);
out:
	cl_stop(&p, 10000);
	cl_conclude(&t, &p);
}
END_TEST

Suite *
climit_suite(void)
{
	Suite *s = suite_create("climit");
	TCase *tc;

	h_case(s, "key", 0, H_TESTS(test_key_table, test_key_ignores_port,
	    test_key_other_family));
	h_case_fixed(s, "tables", 0, setup, teardown,
	    H_TESTS(test_create_rounds_up, test_admit_release_sum,
	    test_no_limits, test_unused_slot_not_summed, test_rate,
	    test_rate_before_conns, test_release_removes, test_sweep,
	    test_full_table_fails_open, test_full_table_removals,
	    test_reset_slot_forgets, test_backward_shift_wrap,
	    test_backward_shift_many));
	tc = h_case(s, "regions", 0, H_TESTS(test_limits_off_maps_nothing,
	    test_growing_reload, test_older_worker_skips_newer_region,
	    test_reload_undone_reuses, test_regions_full,
	    test_memory_returned));
	tcase_add_loop_test(tc, test_cap_for, 0, H_NELEM(cap_cases));
	tcase_add_loop_test(tc, test_fit, 0, H_NELEM(fit_cases));
	h_case(s, "daemon", 90, H_TESTS(per_ip_limit_across_growing_reload,
	    no_tables_without_limits));
	return s;
}
