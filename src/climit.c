/*
 * climit: per-client tables in shared memory (see climit.h).
 *
 * Nothing is mapped until a per-client limit is set.  A slot's table is
 * freed (MADV_REMOVE) when its worker is reaped, and a region of tables
 * is unmapped when no slot uses it any more, so memory follows the live
 * workers, not the most there ever were.
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
#include <unistd.h>

#include "climit.h"

/*
 * Keys: an IPv6 client counts under its /64 prefix, as is.  IPv4 and the
 * ::/64 prefix (which holds ::1) go into the ff00::/8 range: that is
 * multicast, from which no TCP client ever connects, so no clash.
 */
#define KEY_V4 0xffffffff00000000ULL
#define KEY_V6_ZERO 0xfffffffe00000001ULL

#define CAP_MIN 64
#define CAP_MAX 65536

static unsigned
pow2(unsigned n)
{
	unsigned p = CAP_MIN;

	while (p < n && p < (1U << 30))
		p <<= 1;
	return p;
}

unsigned
climit_cap_for(int max_connections, int limited)
{
	uint64_t want = max_connections > 0 ? (uint64_t)max_connections * 2 : 0;

	if (!limited)
		return 0;
	return pow2(want > CAP_MAX ? CAP_MAX : (unsigned)want);
}

enum climit_fit
climit_fit(unsigned cur_cap, unsigned want_cap, int region_has_want,
    int region_free)
{
	if (want_cap == 0)
		return CLIMIT_FIT_NONE;
	if (want_cap == cur_cap)
		return CLIMIT_FIT_KEEP;
	if (region_has_want)
		return CLIMIT_FIT_REUSE;
	return region_free ? CLIMIT_FIT_NEW : CLIMIT_FIT_FULL;
}

static size_t
page_size(void)
{
	long ps = sysconf(_SC_PAGESIZE);

	return ps > 0 ? (size_t)ps : 4096;
}

static void *
map_shared(size_t size)
{
	/* Pages are touched only by slots that use them. */
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

void
climit_init(struct climit *l, unsigned nslots)
{
	memset(l, 0, sizeof(*l));
	l->nslots = nslots;
	l->cur = -1;
}

static struct climit_region *
region_by_id(const struct climit *l, uint32_t id)
{
	unsigned r;

	if (id == 0)
		return NULL;
	for (r = 0; r < CLIMIT_REGIONS; r++)
		if (l->reg[r].base != NULL && l->reg[r].id == id)
			return (struct climit_region *)(uintptr_t)&l->reg[r];
	return NULL;
}

static uint32_t
slot_region(const struct climit *l, unsigned slot)
{
	return __atomic_load_n(&l->hdr->slot_region[slot], __ATOMIC_ACQUIRE);
}

/* Unmap the regions no slot uses any more, but the current one. */
static void
collect(struct climit *l)
{
	struct climit_region *rg;
	unsigned r, s;

	for (r = 0; r < CLIMIT_REGIONS; r++) {
		rg = &l->reg[r];
		if (rg->base == NULL || (int)r == l->cur)
			continue;
		for (s = 0; s < l->nslots; s++)
			if (slot_region(l, s) == rg->id)
				break;
		if (s < l->nslots)
			continue;
		munmap(rg->base, rg->stride * l->nslots);
		rg->base = NULL;
	}
}

/* A region in use with tables of cap entries (cap 0: a free one), or -1. */
static int
region_with(const struct climit *l, unsigned cap)
{
	int r;

	for (r = 0; r < CLIMIT_REGIONS; r++)
		if (cap == 0 ? l->reg[r].base == NULL :
		    l->reg[r].base != NULL && l->reg[r].cap == cap)
			return r;
	return -1;
}

/* A region of tables of cap entries, current from now on. */
static int
new_region(struct climit *l, unsigned cap, int r)
{
	struct climit_region *rg = &l->reg[r];
	size_t ps = page_size(), stride;

	if (l->hdr == NULL) {
		l->hdr_size = (sizeof(*l->hdr) + l->nslots * sizeof(uint32_t) +
		    ps - 1) / ps * ps;
		if ((l->hdr = map_shared(l->hdr_size)) == NULL)
			return -1;
	}
	stride = ((size_t)cap * sizeof(struct climit_entry) + ps - 1) / ps * ps;
	if ((rg->base = map_shared(stride * l->nslots)) == NULL)
		return -1;
	rg->stride = stride;
	rg->cap = cap;
	rg->id = ++l->next_id;
	l->cur = r;
	l->cap = cap;
	return 0;
}

int
climit_configure(struct climit *l, int max_connections, int max_conns_per_ip,
    int max_rate_per_ip)
{
	unsigned want = climit_cap_for(max_connections,
	    max_conns_per_ip > 0 || max_rate_per_ip > 0);
	int same, r_free;

	if (l->hdr != NULL)
		collect(l);
	same = want != 0 ? region_with(l, want) : -1;
	r_free = region_with(l, 0);
	switch (climit_fit(l->cap, want, same != -1, r_free != -1)) {
	case CLIMIT_FIT_NONE:
		l->cur = -1;
		l->cap = 0;
		if (l->hdr != NULL)
			collect(l);
		return 0;
	case CLIMIT_FIT_KEEP:
		return 0;
	case CLIMIT_FIT_REUSE:
		l->cur = same;
		l->cap = want;
		return 0;
	case CLIMIT_FIT_FULL:
		errno = ENOSPC;
		return -1;
	case CLIMIT_FIT_NEW:
		break;
	}
	return new_region(l, want, r_free);
}

int
climit_create(struct climit *l, unsigned nslots, unsigned cap)
{
	climit_init(l, nslots);
	return cap > 0 ? new_region(l, pow2(cap), 0) : 0;
}

void
climit_destroy(struct climit *l)
{
	unsigned r;

	for (r = 0; r < CLIMIT_REGIONS; r++)
		if (l->reg[r].base != NULL)
			munmap(l->reg[r].base, l->reg[r].stride * l->nslots);
	if (l->hdr != NULL)
		munmap(l->hdr, l->hdr_size);
	climit_init(l, l->nslots);
}

struct climit_entry *
climit_table(const struct climit *l, unsigned slot, unsigned *cap)
{
	const struct climit_region *rg;

	if (l->hdr == NULL || slot >= l->nslots ||
	    (rg = region_by_id(l, slot_region(l, slot))) == NULL)
		return NULL;
	*cap = rg->cap;
	return (struct climit_entry *)(void *)(rg->base + slot * rg->stride);
}

/* Forget slot's table: its memory goes back (or is zeroed). */
static void
drop_table(struct climit *l, unsigned slot)
{
	struct climit_region *rg = region_by_id(l, slot_region(l, slot));
	char *t;

	if (rg == NULL)
		return;
	t = rg->base + slot * rg->stride;
	if (madvise(t, rg->stride, MADV_REMOVE) == -1)
		memset(t, 0, rg->stride);
	__atomic_store_n(&l->hdr->slot_region[slot], 0, __ATOMIC_RELEASE);
}

void
climit_reset_slot(struct climit *l, unsigned slot)
{
	if (l->hdr == NULL || slot >= l->nslots)
		return;
	drop_table(l, slot);
	if (l->cur == -1)
		return;
	__atomic_store_n(&l->hdr->slot_region[slot], l->reg[l->cur].id,
	    __ATOMIC_RELEASE);
	if (slot + 1 > __atomic_load_n(&l->hdr->slots_used, __ATOMIC_RELAXED))
		__atomic_store_n(&l->hdr->slots_used, slot + 1,
		    __ATOMIC_RELEASE);
}

void
climit_release_slot(struct climit *l, unsigned slot)
{
	if (l->hdr == NULL || slot >= l->nslots)
		return;
	drop_table(l, slot);
	collect(l);
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
find(struct climit_entry *t, unsigned cap, uint64_t key)
{
	unsigned i, n;
	uint64_t k;

	for (i = hash(key, cap), n = 0; n < cap; i = (i + 1) & (cap - 1), n++) {
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
find_or_add(struct climit_entry *t, unsigned cap, uint64_t key)
{
	unsigned i, n;

	for (i = hash(key, cap), n = 0; n < cap; i = (i + 1) & (cap - 1), n++) {
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
remove_entry(struct climit_entry *t, unsigned cap,
    const struct climit_entry *e)
{
	unsigned mask = cap - 1, i = (unsigned)(e - t), j = i, h, n;

	/* A full table has no empty entry to stop at: look at each once. */
	for (n = 1; n < cap; n++) {
		j = (j + 1) & mask;
		if (t[j].key == 0)
			break;
		h = hash(t[j].key, cap);
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

/* Slots without a table (empty, or in a region made after our fork) are
 * skipped. */
static void
sum(const struct climit *l, uint64_t key, uint64_t now_sec, uint32_t *conns,
    uint32_t *rate)
{
	struct climit_entry *t;
	const struct climit_entry *e;
	unsigned s, cap, used;

	*conns = *rate = 0;
	if (l->hdr == NULL)
		return;
	used = __atomic_load_n(&l->hdr->slots_used, __ATOMIC_ACQUIRE);
	for (s = 0; s < used && s < l->nslots; s++) {
		if ((t = climit_table(l, s, &cap)) == NULL ||
		    (e = find(t, cap, key)) == NULL)
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
	struct climit_entry *t, *e;
	uint32_t conns, rate;
	unsigned cap;

	sum(l, key, now_sec, &conns, &rate);
	if ((t = climit_table(l, slot, &cap)) == NULL ||
	    (e = find_or_add(t, cap, key)) == NULL)
		return CLIMIT_OK; /* no room: fail open rather than refuse */
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
	struct climit_entry *t;
	unsigned i = 0, cap;

	if ((t = climit_table(l, slot, &cap)) == NULL)
		return;
	while (i < cap) {
		if (t[i].key != 0 && t[i].conns == 0 && t[i].rate_sec < now_sec)
			remove_entry(t, cap, &t[i]); /* re-check i: it moved */
		else
			i++;
	}
}

void
climit_release(struct climit *l, unsigned slot, uint64_t key,
    uint64_t now_sec)
{
	struct climit_entry *t, *e;
	unsigned cap;

	if ((t = climit_table(l, slot, &cap)) == NULL ||
	    (e = find(t, cap, key)) == NULL)
		return;
	if (e->conns > 0)
		__atomic_store_n(&e->conns, e->conns - 1, __ATOMIC_RELAXED);
	if (e->conns == 0 && e->rate_sec < now_sec)
		remove_entry(t, cap, e);
}
