/*
 * scoreboard: the shared-memory table of worker slots.
 *
 * Only mmap/munmap and reading happen here; which process writes which
 * field is the callers' contract (see scoreboard.h).
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "scoreboard.h"

int
scoreboard_create(struct scoreboard *sb, unsigned nslots)
{
	void *p;

	p = mmap(NULL, 4096 + sizeof(struct sb_slot) * nslots,
	    PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	sb->nslots = nslots;
	sb->hdr = p;
	sb->slots = (struct sb_slot *)((char *)p + 4096);
	return 0;
}

void
scoreboard_use_slot(struct scoreboard *sb, unsigned slot)
{
	if (slot + 1 > sb_load(&sb->hdr->slots_used))
		sb_store(&sb->hdr->slots_used, slot + 1);
}

void
scoreboard_destroy(struct scoreboard *sb)
{
	if (sb->hdr != NULL)
		munmap(sb->hdr, 4096 + sizeof(struct sb_slot) * sb->nslots);
	sb->hdr = NULL;
	sb->slots = NULL;
	sb->nslots = 0;
}

_Static_assert(sizeof(struct sb_slot) == 256, "one slot, 256 bytes");
_Static_assert(sizeof(struct sb_client) == 5 * sizeof(uint64_t),
    "a client fills client[]");

void
sb_client_store(struct sb_slot *s, const struct sb_client *c)
{
	uint64_t w[5], seq = sb_load(&s->client_seq);
	unsigned i;

	memcpy(w, c, sizeof(w));
	__atomic_store_n(&s->client_seq, seq + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	for (i = 0; i < 5; i++)
		sb_store(&s->client[i], w[i]);
	__atomic_store_n(&s->client_seq, seq + 2, __ATOMIC_RELEASE);
}

int
sb_client_load(const struct sb_slot *s, struct sb_client *c)
{
	uint64_t w[5], a, b;
	unsigned i, tries;

	for (tries = 0; tries < 8; tries++) {
		a = __atomic_load_n(&s->client_seq, __ATOMIC_ACQUIRE);
		if (a == 0)
			return 0; /* never written */
		if (a & 1)
			continue;
		for (i = 0; i < 5; i++)
			w[i] = sb_load(&s->client[i]);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		b = __atomic_load_n(&s->client_seq, __ATOMIC_RELAXED);
		if (a == b) {
			memcpy(c, w, sizeof(*c));
			return 1;
		}
	}
	return 0;
}

void
scoreboard_totals(const struct scoreboard *sb, struct sb_totals *t)
{
	const struct sb_slot *s;
	unsigned i;
	uint64_t state;

	memset(t, 0, sizeof(*t));
	for (i = 0; i < sb->nslots; i++) {
		s = &sb->slots[i];
		state = sb_load(&s->state);
		t->restarts += sb_load(&s->restarts);
		if (state == SB_EMPTY)
			continue;
		t->alive++;
		if (state == SB_READY)
			t->ready++;
		t->conns_open += sb_load(&s->conns_open);
		t->conns_served += sb_load(&s->conns_served);
	}
}
