/*
 * climit: per-client connection limits that hold across the whole pool.
 *
 * Shared memory created by the master before it forks: one small
 * open-addressing table per live worker slot, written only by the worker
 * in that slot (its threads, or its per-connection children, one at a
 * time under the worker's lock: serve.h) and read by all.  A client's count is the sum over the
 * tables of the live slots, so no lock is needed, and a worker that dies
 * takes nothing with it: the master frees its table when it is reaped.
 * A reader may see a count a moment old; a limit can be off by the
 * connections accepted in that moment, never by a dead worker's.  With
 * no per-client limit set, there are no tables at all.
 */
#ifndef ECHOD_CLIMIT_H
#define ECHOD_CLIMIT_H

#include <stdint.h>
#include <sys/socket.h>

struct climit_entry {
	uint64_t key;      /* 0 = free */
	uint32_t conns;    /* open connections of this client in this slot */
	uint32_t rate_n;   /* connections attempted in second rate_sec */
	uint64_t rate_sec;
};

/*
 * The tables come in regions: one mapping of a table per slot, all of
 * one capacity.  A reload that changes the capacity (max_connections)
 * makes a new region for the slots forked from then on; the old one
 * stays for the workers still using it (draining) and is unmapped when
 * the last of them is gone.  A worker reads the regions it was forked
 * with: during such a reload, the older workers do not see what the
 * newer ones count (the newer ones see both).
 */
#define CLIMIT_REGIONS 4

struct climit_region {
	char *base; /* NULL: free */
	size_t stride; /* bytes from one slot's table to the next */
	unsigned cap;
	uint32_t id;   /* what hdr->slot_region holds; never 0 */
};

struct climit_shared {
	uint32_t slots_used;    /* highest slot index ever used, plus one */
	uint32_t slot_region[]; /* id of the region holding the slot's table,
				 * 0: none (an empty slot) */
};

struct climit {
	unsigned nslots;
	unsigned cap;    /* entries a table of a new slot gets; 0: none */
	int cur;         /* the region new slots get, -1: none */
	uint32_t next_id;
	struct climit_shared *hdr; /* NULL until a limit is first set */
	size_t hdr_size;
	struct climit_region reg[CLIMIT_REGIONS];
};

enum climit_verdict {
	CLIMIT_OK,
	CLIMIT_TOO_MANY, /* max_connections_per_ip reached */
	CLIMIT_TOO_FAST, /* max_connection_rate_per_ip reached this second */
};

/* What a (re)configuration does to the tables of new slots. */
enum climit_fit {
	CLIMIT_FIT_NONE, /* no limit set: no table for new slots */
	CLIMIT_FIT_KEEP,  /* same capacity: the current region */
	CLIMIT_FIT_REUSE, /* a region still in use has it: that one again */
	CLIMIT_FIT_NEW,   /* another capacity: a new region */
	CLIMIT_FIT_FULL,  /* another capacity, but no region is free: keep */
};

/*
 * Pure: entries a table needs for a worker of max_connections clients
 * (twice that, a power of two, 64 .. 65536), or 0 when neither limit is
 * set (limited == 0): then nothing is allocated or touched.
 */
unsigned climit_cap_for(int max_connections, int limited);
/*
 * Pure: the decision above, from the current and the wanted capacity,
 * whether another region in use has the wanted one (a reload undone, say)
 * and whether a region is free.
 */
enum climit_fit climit_fit(unsigned cur_cap, unsigned want_cap,
    int region_has_want, int region_free);

/* No tables yet, room for nslots slots. */
void climit_init(struct climit *l, unsigned nslots);
/*
 * The master, at start-up and on each reload: size the tables of the
 * slots forked from now on for these settings (see climit_fit).  0, or
 * -1 with errno (ENOMEM; ENOSPC: no free region) when the previous
 * tables stay in use (or none, if there were none).
 */
int climit_configure(struct climit *l, int max_connections,
    int max_conns_per_ip, int max_rate_per_ip);
/* For tests: climit_init, and a first region of cap (rounded up to a
 * power of two, at least 64) entries if cap > 0.  -1 with errno. */
int climit_create(struct climit *l, unsigned nslots, unsigned cap);
void climit_destroy(struct climit *l);
/* The master, before it forks into slot: a fresh, empty table. */
void climit_reset_slot(struct climit *l, unsigned slot);
/*
 * The master, when the worker in slot has been reaped: its counts are
 * forgotten, its table's memory is returned and it is no longer summed.
 */
void climit_release_slot(struct climit *l, unsigned slot);
/* slot's table and its capacity; NULL if it has none (for tests). */
struct climit_entry *climit_table(const struct climit *l, unsigned slot,
    unsigned *cap);

/*
 * Pure: the key a client counts under (IPv4 address; IPv6 /64 prefix;
 * IPv4-mapped IPv6 as IPv4), never 0; *loopback tells 127/8 and ::1.
 * 0 for another family.
 */
uint64_t climit_key(const struct sockaddr *sa, int *loopback);

/*
 * A connection from key arrived in slot at second now_sec: count the
 * attempt and decide.  On CLIMIT_OK the connection is counted open and
 * must be released with climit_release.  0 for a maximum means no limit.
 * A slot without a table, or with a full one, admits (fails open).
 */
enum climit_verdict climit_admit(struct climit *l, unsigned slot,
    uint64_t key, uint64_t now_sec, uint32_t max_conns, uint32_t max_rate);
void climit_release(struct climit *l, unsigned slot, uint64_t key,
    uint64_t now_sec);

/* Our own slot: drop clients with nothing open and an old rate second. */
void climit_sweep(struct climit *l, unsigned slot, uint64_t now_sec);

/* Totals for key across the pool (for tests and the log). */
uint32_t climit_conns(const struct climit *l, uint64_t key);

#endif
