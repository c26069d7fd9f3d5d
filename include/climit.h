/*
 * climit: per-client connection limits that hold across the whole pool.
 *
 * Shared memory created by the master before the first fork: one small
 * open-addressing table per worker slot, written only by the worker in
 * that slot and read by all.  A client's count is the sum over the
 * tables of the live slots, so no lock is needed, and a worker that dies
 * takes nothing with it: the master clears its table before the slot is
 * used again.  A reader may see a count a moment old; a limit can be off
 * by the connections accepted in that moment, never by a dead worker's.
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

struct climit_shared {
	uint32_t slots_used; /* highest slot index ever used, plus one */
};

struct climit {
	unsigned nslots;
	unsigned cap; /* entries per slot, a power of two */
	struct climit_shared *hdr;
	struct climit_entry *tables;
};

enum climit_verdict {
	CLIMIT_OK,
	CLIMIT_TOO_MANY, /* max_connections_per_ip reached */
	CLIMIT_TOO_FAST, /* max_connection_rate_per_ip reached this second */
};

/* cap is rounded up to a power of two.  -1 with errno on failure. */
int climit_create(struct climit *l, unsigned nslots, unsigned cap);
void climit_destroy(struct climit *l);
/* The master, before it forks into slot: forget what was there. */
void climit_reset_slot(struct climit *l, unsigned slot);

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
