/*
 * climit: per-client tables in shared memory (see climit.h).
 *
 * Each slot's table is linear-probing with backward-shift deletion and a
 * single writer.  An entry is published by storing its key last (release)
 * and read by loading the key first (acquire).  Entries whose client has
 * no open connection stay only as long as their rate second is current.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/mman.h>

#include "climit.h"

/*
 * Keys: an IPv6 client counts under its /64 prefix, as is.  IPv4 and the
 * ::/64 prefix (which holds ::1) go into the ff00::/8 range: that is
 * multicast, from which no TCP client ever connects, so no clash.
 */
#define KEY_V4 0xffffffff00000000ULL
#define KEY_V6_ZERO 0xfffffffe00000001ULL

static unsigned
pow2(unsigned n)
{
	unsigned p = 64;

	while (p < n && p < (1U << 30))
		p <<= 1;
	return p;
}

int
climit_create(struct climit *l, unsigned nslots, unsigned cap)
{
	size_t size;
	void *p;

	l->nslots = nslots;
	l->cap = pow2(cap);
	size = 4096 + (size_t)nslots * l->cap * sizeof(struct climit_entry);
	/* Pages are touched only by slots that use them. */
	p = mmap(NULL, size, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	l->hdr = p;
	l->tables = (struct climit_entry *)((char *)p + 4096);
	return 0;
}

void
climit_destroy(struct climit *l)
{
	if (l->hdr != NULL)
		munmap(l->hdr, 4096 + (size_t)l->nslots * l->cap *
		    sizeof(struct climit_entry));
	l->hdr = NULL;
	l->tables = NULL;
}

static struct climit_entry *
table(const struct climit *l, unsigned slot)
{
	return l->tables + (size_t)slot * l->cap;
}

void
climit_reset_slot(struct climit *l, unsigned slot)
{
	if (l->hdr == NULL || slot >= l->nslots)
		return;
	memset(table(l, slot), 0, l->cap * sizeof(struct climit_entry));
	if (slot + 1 > __atomic_load_n(&l->hdr->slots_used, __ATOMIC_RELAXED))
		__atomic_store_n(&l->hdr->slots_used, slot + 1,
		    __ATOMIC_RELEASE);
}

uint64_t
climit_key(const struct sockaddr *sa, int *loopback)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
	const uint8_t *a;
	uint64_t k = 0;
	uint32_t v4;
	int i;

	*loopback = 0;
	if (sa->sa_family == AF_INET) {
		v4 = ntohl(sin->sin_addr.s_addr);
	} else if (sa->sa_family == AF_INET6) {
		a = sin6->sin6_addr.s6_addr;
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			v4 = (uint32_t)a[12] << 24 | (uint32_t)a[13] << 16 |
			    (uint32_t)a[14] << 8 | a[15];
		} else {
			*loopback = IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr);
			for (i = 0; i < 8; i++) /* the /64 prefix */
				k = k << 8 | a[i];
			return k != 0 ? k : KEY_V6_ZERO;
		}
	} else
		return 0;
	*loopback = (v4 >> 24) == 127;
	return KEY_V4 | v4;
}

static unsigned
hash(uint64_t key, unsigned cap)
{
	key ^= key >> 33;
	key *= 0xff51afd7ed558ccdULL;
	key ^= key >> 33;
	return (unsigned)key & (cap - 1);
}

static struct climit_entry *
find(const struct climit *l, unsigned slot, uint64_t key)
{
	struct climit_entry *t = table(l, slot);
	unsigned i, n;
	uint64_t k;

	for (i = hash(key, l->cap), n = 0; n < l->cap;
	    i = (i + 1) & (l->cap - 1), n++) {
		k = __atomic_load_n(&t[i].key, __ATOMIC_ACQUIRE);
		if (k == key)
			return &t[i];
		if (k == 0)
			return NULL;
	}
	return NULL;
}

/* Our own slot only: find or insert.  NULL when the table is full. */
static struct climit_entry *
find_or_add(struct climit *l, unsigned slot, uint64_t key)
{
	struct climit_entry *t = table(l, slot);
	unsigned i, n;

	for (i = hash(key, l->cap), n = 0; n < l->cap;
	    i = (i + 1) & (l->cap - 1), n++) {
		if (t[i].key == key)
			return &t[i];
		if (t[i].key == 0) {
			t[i].conns = 0;
			t[i].rate_n = 0;
			t[i].rate_sec = 0;
			__atomic_store_n(&t[i].key, key, __ATOMIC_RELEASE);
			return &t[i];
		}
	}
	return NULL;
}

/* Backward-shift deletion: no tombstones, lookups stay short. */
static void
remove_entry(struct climit *l, unsigned slot,
    const struct climit_entry *e)
{
	struct climit_entry *t = table(l, slot);
	unsigned mask = l->cap - 1, i = (unsigned)(e - t), j = i, h, n;

	/* A full table has no empty entry to stop at: look at each once. */
	for (n = 1; n < l->cap; n++) {
		j = (j + 1) & mask;
		if (t[j].key == 0)
			break;
		h = hash(t[j].key, l->cap);
		/* Can t[j] move into the hole at i? Not if h lies in (i, j]. */
		if (i <= j ? (h > i && h <= j) : (h > i || h <= j))
			continue;
		t[i].conns = t[j].conns;
		t[i].rate_n = t[j].rate_n;
		t[i].rate_sec = t[j].rate_sec;
		__atomic_store_n(&t[i].key, t[j].key, __ATOMIC_RELEASE);
		i = j;
	}
	__atomic_store_n(&t[i].key, 0, __ATOMIC_RELEASE);
}

static void
sum(const struct climit *l, uint64_t key, uint64_t now_sec, uint32_t *conns,
    uint32_t *rate)
{
	unsigned s, used = __atomic_load_n(&l->hdr->slots_used,
	    __ATOMIC_ACQUIRE);
	const struct climit_entry *e;

	*conns = *rate = 0;
	for (s = 0; s < used && s < l->nslots; s++) {
		if ((e = find(l, s, key)) == NULL)
			continue;
		*conns += __atomic_load_n(&e->conns, __ATOMIC_RELAXED);
		if (__atomic_load_n(&e->rate_sec, __ATOMIC_RELAXED) == now_sec)
			*rate += __atomic_load_n(&e->rate_n, __ATOMIC_RELAXED);
	}
}

uint32_t
climit_conns(const struct climit *l, uint64_t key)
{
	uint32_t c, r;

	sum(l, key, 0, &c, &r);
	return c;
}

enum climit_verdict
climit_admit(struct climit *l, unsigned slot, uint64_t key, uint64_t now_sec,
    uint32_t max_conns, uint32_t max_rate)
{
	struct climit_entry *e;
	uint32_t conns, rate;

	sum(l, key, now_sec, &conns, &rate);
	if ((e = find_or_add(l, slot, key)) == NULL)
		return CLIMIT_OK; /* table full: fail open rather than refuse */
	if (e->rate_sec != now_sec) {
		__atomic_store_n(&e->rate_sec, now_sec, __ATOMIC_RELAXED);
		__atomic_store_n(&e->rate_n, 0, __ATOMIC_RELAXED);
	}
	__atomic_store_n(&e->rate_n, e->rate_n + 1, __ATOMIC_RELAXED);
	if (max_rate != 0 && rate >= max_rate)
		return CLIMIT_TOO_FAST;
	if (max_conns != 0 && conns >= max_conns)
		return CLIMIT_TOO_MANY;
	__atomic_store_n(&e->conns, e->conns + 1, __ATOMIC_RELAXED);
	return CLIMIT_OK;
}

void
climit_sweep(struct climit *l, unsigned slot, uint64_t now_sec)
{
	struct climit_entry *t = table(l, slot);
	unsigned i = 0;

	while (i < l->cap) {
		if (t[i].key != 0 && t[i].conns == 0 && t[i].rate_sec < now_sec)
			remove_entry(l, slot, &t[i]); /* re-check i: it moved */
		else
			i++;
	}
}

void
climit_release(struct climit *l, unsigned slot, uint64_t key,
    uint64_t now_sec)
{
	struct climit_entry *e;

	if ((e = find(l, slot, key)) == NULL)
		return;
	if (e->conns > 0)
		__atomic_store_n(&e->conns, e->conns - 1, __ATOMIC_RELAXED);
	if (e->conns == 0 && e->rate_sec < now_sec)
		remove_entry(l, slot, e);
}
