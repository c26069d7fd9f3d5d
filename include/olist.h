/*
 * olist: an ordered list threaded through a table by index.
 *
 * The worker keeps its connections in one table and two orders over it:
 * by last activity (idle_timeout) and by accept time
 * (max_connection_time).  Both are appended to in time order, so the
 * head is always the first to expire, and unlinking is O(1).  Each entry
 * embeds one struct olist_link per list; the list knows the table's base,
 * the entry size and where the link sits, so one code serves both.
 * Header-only: idle_touch runs on every event.  Never allocates.
 */
#ifndef ECHOD_OLIST_H
#define ECHOD_OLIST_H

#include <stddef.h>
#include <stdint.h>

#define OLIST_NIL UINT32_MAX

struct olist_link {
	uint32_t prev;
	uint32_t next;
};

struct olist {
	uint32_t head, tail; /* OLIST_NIL when empty */
	char *base;          /* the table */
	size_t stride;       /* sizeof one entry */
	size_t off;          /* offsetof the link in an entry */
};

static inline void
olist_init(struct olist *l, void *base, size_t stride, size_t off)
{
	l->head = l->tail = OLIST_NIL;
	l->base = base;
	l->stride = stride;
	l->off = off;
}

static inline struct olist_link *
olist_link(const struct olist *l, uint32_t i)
{
	return (struct olist_link *)(void *)(l->base + (size_t)i * l->stride +
	    l->off);
}

/* Entry i (not on the list) becomes the tail. */
static inline void
olist_append(struct olist *l, uint32_t i)
{
	struct olist_link *e = olist_link(l, i);

	e->prev = l->tail;
	e->next = OLIST_NIL;
	if (l->tail != OLIST_NIL)
		olist_link(l, l->tail)->next = i;
	else
		l->head = i;
	l->tail = i;
}

/* Entry i (on the list) leaves it. */
static inline void
olist_unlink(struct olist *l, uint32_t i)
{
	struct olist_link *e = olist_link(l, i);

	if (e->prev != OLIST_NIL)
		olist_link(l, e->prev)->next = e->next;
	else
		l->head = e->next;
	if (e->next != OLIST_NIL)
		olist_link(l, e->next)->prev = e->prev;
	else
		l->tail = e->prev;
}

/* Entry i (on the list) becomes the tail: it is the newest again. */
static inline void
olist_move_to_tail(struct olist *l, uint32_t i)
{
	if (l->tail == i)
		return;
	olist_unlink(l, i);
	olist_append(l, i);
}

#endif
