/*
 * metrics: the scoreboard as Prometheus' text exposition format 0.0.4.
 *
 * A snapshot reads the shared scoreboard once (relaxed loads: each value
 * whole, the set not atomic); the render is pure, so the text is tested
 * against tables.  Names follow Prometheus' rules: counters end in
 * _total, times are seconds, sizes bytes.  docs/metrics.md lists every
 * line; a change here changes that page.
 */
#ifndef ECHOD_METRICS_H
#define ECHOD_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "scoreboard.h"

enum metrics_worker_state {
	METRICS_STARTING,
	METRICS_READY,
	METRICS_DRAINING,
	METRICS_NSTATES
};

/* Everything /metrics says, summed over the slots. */
struct metrics_snap {
	uint64_t start_time_s, generation, target, model;
	uint64_t workers[METRICS_NSTATES];
	uint64_t open, accepted, closed[SB_CLOSE_N];
	uint64_t bytes_in, bytes_out;
	uint64_t restarts[SB_RESTART_N];
	uint64_t reloads[SB_RELOAD_N], last_reload_ok, last_reload_time_s;
	uint64_t refused[SB_REFUSE_N];
	uint64_t probes[SB_PROBE_N];
	uint64_t proxied;
};

void metrics_snapshot(const struct scoreboard *sb, struct metrics_snap *s);

/*
 * An in-place upgrade carries the counters over (upgrade.h): the old
 * image packs a snapshot's counters (and its start time) into
 * METRICS_CARRY_N numbers, the new one unpacks them into a snapshot and
 * metrics_carry writes that into its fresh scoreboard's header, where
 * metrics_snapshot adds it to what the new workers count.  Pure but for
 * metrics_carry's stores.
 */
#define METRICS_CARRY_N (1 + 1 + SB_CLOSE_N + SB_REFUSE_N + 3 + \
	SB_RESTART_N + SB_RELOAD_N + 2 + SB_PROBE_N)
size_t metrics_pack(const struct metrics_snap *s, uint64_t *v);
void metrics_unpack(const uint64_t *v, struct metrics_snap *s);
void metrics_carry(struct scoreboard *sb, const struct metrics_snap *s);

/*
 * The exposition text for s, build version, into out (len bytes,
 * NUL-terminated when it fits).  Returns the text's length, as snprintf:
 * len or more means it did not fit.  Pure.
 */
size_t metrics_render(const struct metrics_snap *s, const char *version,
    char *out, size_t len);

/*
 * A label value escaped as the format wants (backslash, double quote and
 * newline as \\, \" and \n) into out, NUL-terminated, cut to fit.  Pure.
 */
void metrics_escape(const char *in, char *out, size_t len);

/* Above the longest text metrics_render can make (a test checks it). */
#define METRICS_TEXT_MAX 16384

#endif
