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
