/*
 * scoreboard: the shared-memory table of worker slots.
 *
 * Only mmap/munmap, reading and the pure mappings for /metrics (close
 * reasons, restart causes, label names) happen here; which process writes
 * which field is the callers' contract (see scoreboard.h).
 */
#include <errno.h>
#include <stddef.h>
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
	sb->hdr->last_reload_ok = 1; /* as Prometheus' own: 1 before any */
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
scoreboard_begin_process(struct scoreboard *sb, unsigned slot)
{
	struct sb_slot *s = &sb->slots[slot];

	memset(s, 0, offsetof(struct sb_slot, base_served));
	sb_store(&s->base_served, sb_load(&s->conns_served));
	sb_store(&s->base_in, sb_load(&s->bytes_in));
	sb_store(&s->base_out, sb_load(&s->bytes_out));
	sb_store(&s->base_proxied, sb_load(&s->proxied));
	sb_store(&s->base_proxy_closed, sb_load(&s->proxy_closed));
	scoreboard_use_slot(sb, slot);
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

_Static_assert(sizeof(struct sb_slot) == 512, "one slot, 512 bytes");
_Static_assert(sizeof(struct sb_header) <= 4096, "the header fits its page");
_Static_assert(offsetof(struct sb_slot, base_served) <
    offsetof(struct sb_slot, restarts), "bases are per process");
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
		t->conns_served += sb_delta(&s->conns_served, &s->base_served);
	}
}

/* Add what changed since the last publish; most turns change nothing. */
static void
add_delta(uint64_t *field, uint64_t now, uint64_t *published)
{
	if (now == *published)
		return;
	sb_add(field, (int64_t)(now - *published));
	*published = now;
}

void
sb_publish(struct sb_slot *s, const struct sb_counts *now,
    struct sb_counts *published)
{
	unsigned i;

	add_delta(&s->accepted, now->accepted, &published->accepted);
	add_delta(&s->conns_served, now->served, &published->served);
	add_delta(&s->bytes_in, now->bytes_in, &published->bytes_in);
	add_delta(&s->bytes_out, now->bytes_out, &published->bytes_out);
	for (i = 0; i < SB_CLOSE_N; i++)
		add_delta(&s->closed[i], now->closed[i], &published->closed[i]);
	for (i = 0; i < SB_REFUSE_N; i++)
		add_delta(&s->refused[i], now->refused[i],
		    &published->refused[i]);
}

/* The close paths' words, as worker.c and serve.c write them. */
static const struct {
	const char *how;
	enum sb_close reason;
} close_words[] = {
	{ "client closed", SB_CLOSE_CLIENT },
	{ "idle timeout", SB_CLOSE_IDLE },
	{ "max_connection_time", SB_CLOSE_LIFETIME },
	{ "refused", SB_CLOSE_LIMIT },
	{ "shutdown", SB_CLOSE_SHUTDOWN },
	{ "bad PROXY header", SB_CLOSE_PROXY },
	{ "PROXY header timeout", SB_CLOSE_PROXY },
};

enum sb_close
sb_close_reason(const char *how, int err)
{
	size_t i;

	if (how != NULL)
		for (i = 0; i < sizeof(close_words) / sizeof(close_words[0]);
		    i++)
			if (strcmp(how, close_words[i].how) == 0)
				return close_words[i].reason;
	return err == ECONNRESET || err == EPIPE ? SB_CLOSE_RESET :
	    SB_CLOSE_ERROR;
}

#define NAME_OF(names, i)                                                   \
	((i) < sizeof(names) / sizeof((names)[0]) ? (names)[i] : NULL)

const char *
sb_close_name(unsigned reason)
{
	static const char *const names[SB_CLOSE_N] = { "client",
		"idle_timeout", "lifetime", "limit", "reset", "error",
		"shutdown", "proxy" };

	return NAME_OF(names, reason);
}

const char *
sb_refuse_name(unsigned limit)
{
	static const char *const names[SB_REFUSE_N] = { "connections",
		"rate" };

	return NAME_OF(names, limit);
}

const char *
sb_restart_name(unsigned cause)
{
	static const char *const names[SB_RESTART_N] = { "exit", "signal",
		"hung", "backoff" };

	return NAME_OF(names, cause);
}

const char *
sb_probe_name(unsigned result)
{
	static const char *const names[SB_PROBE_N] = { "ok", "failed",
		"skipped" };

	return NAME_OF(names, result);
}

const char *
sb_reload_name(unsigned result)
{
	static const char *const names[SB_RELOAD_N] = { "success",
		"failure" };

	return NAME_OF(names, result);
}

enum sb_restart
sb_restart_cause(int hung, int signaled, int later)
{
	if (hung)
		return SB_RESTART_HUNG;
	if (later)
		return SB_RESTART_BACKOFF;
	return signaled ? SB_RESTART_SIGNAL : SB_RESTART_EXIT;
}

void
sb_count_reload(struct scoreboard *sb, int ok, uint64_t now_s)
{
	sb_count(&sb->hdr->reloads[ok ? SB_RELOAD_SUCCESS : SB_RELOAD_FAILURE]);
	sb_store(&sb->hdr->last_reload_ok, ok != 0);
	sb_store(&sb->hdr->last_reload_time_s, now_s);
}
