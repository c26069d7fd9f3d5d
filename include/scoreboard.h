/*
 * scoreboard: shared memory with one entry per worker slot.
 *
 * Created by the master before the first fork (MAP_SHARED|MAP_ANONYMOUS),
 * so every worker sees the same pages.  A worker writes only its own entry,
 * the master only reads entries (and resets one before it forks into its
 * slot).  Fields are naturally aligned 64-bit values written with relaxed
 * atomics: a reader may see a slightly old value, never a torn one.  Under
 * the thread and process models a worker's threads or children add to its
 * entry's counters with sb_add.
 */
#ifndef ECHOD_SCOREBOARD_H
#define ECHOD_SCOREBOARD_H

#include <stdint.h>
#include <sys/types.h>

enum sb_state {
	SB_EMPTY = 0,    /* no process in this slot */
	SB_STARTING = 1, /* forked, setting up */
	SB_READY = 2,    /* accepting */
	SB_DRAINING = 3, /* stopped accepting, finishing its connections */
};

struct sb_slot {
	int64_t pid;
	uint64_t generation;
	uint64_t state;
	uint64_t started_ms;   /* monotonic ms at fork */
	uint64_t heartbeat_ms; /* monotonic ms of the last loop turn */
	uint64_t conns_open;
	uint64_t conns_served; /* accepted since this process started */
	uint64_t bytes_in;
	uint64_t bytes_out;
	uint64_t sandbox;  /* enum sandbox_state, once the worker set it up */
	uint64_t restarts; /* processes this slot has had, minus one */
	uint64_t proxied;      /* PROXY headers accepted */
	uint64_t proxy_closed; /* closed on a proxied listener: untrusted,
				* bad, slow or missing header */
	/* The last client a PROXY header named (sb_client_store). */
	uint64_t client_seq;   /* odd while being written */
	uint64_t client[5];    /* a struct sb_client */
	uint64_t pad[13];      /* one entry per 256 bytes: no false sharing */
};

/*
 * A client behind a balancer, compactly: the address the header named
 * and the balancer's own (AF_UNSPEC: none).  Ports in network order.
 */
struct sb_client {
	uint8_t family, via_family;
	uint16_t port, via_port;
	uint8_t addr[16], via_addr[16];
	uint8_t pad[2];
};

/* Shared too: how far into slots[] anything was ever forked. */
struct sb_header {
	uint64_t slots_used; /* highest slot index used, plus one */
};

struct scoreboard {
	unsigned nslots;
	struct sb_header *hdr;
	struct sb_slot *slots;
};

/* The master, before forking into slot. */
void scoreboard_use_slot(struct scoreboard *sb, unsigned slot);

int scoreboard_create(struct scoreboard *sb, unsigned nslots);
void scoreboard_destroy(struct scoreboard *sb);

static inline void
sb_store(uint64_t *field, uint64_t v)
{
	__atomic_store_n(field, v, __ATOMIC_RELAXED);
}

/*
 * For the models where several threads or processes of one worker count
 * into its entry (model.h): an atomic add, so none is lost.  A negative
 * delta wraps as unsigned arithmetic does, which is what a decrement is.
 */
static inline void
sb_add(uint64_t *field, int64_t delta)
{
	__atomic_fetch_add(field, (uint64_t)delta, __ATOMIC_RELAXED);
}

static inline uint64_t
sb_load(const uint64_t *field)
{
	return __atomic_load_n(field, __ATOMIC_RELAXED);
}

/*
 * The last client, through a sequence lock: the worker stores (one writer
 * at a time: the thread models hold their lock), the master loads, and a
 * load that overlapped a store tries again (1), or gives up (0: none).
 */
void sb_client_store(struct sb_slot *s, const struct sb_client *c);
int sb_client_load(const struct sb_slot *s, struct sb_client *c);

/* Totals over every slot, for the STATUS= line and the log. */
struct sb_totals {
	unsigned alive, ready;
	uint64_t conns_open, conns_served, restarts;
};

void scoreboard_totals(const struct scoreboard *sb, struct sb_totals *t);

#endif
