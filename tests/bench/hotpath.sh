#!/usr/bin/env bash
# hotpath.sh: what one echoed message costs a worker, and how much of
# that is supervision (heartbeat, scoreboard, idle and age lists,
# balancing).
#
#   tests/bench/hotpath.sh [--secs N] [--conns N] [--size N]
#
# Two runs of echod with one worker, each driven by echobench in pingpong
# mode (the default: 32 connections, 64-byte messages) on 127.0.0.1:
#
#   1. natively: the worker's CPU time (user and system, from
#      /proc/PID/stat) divided by the round trips served;
#   2. under valgrind's callgrind, built with -fno-inline into
#      build/hotpath so that every function keeps its own count: the
#      user-space instructions per round trip, function by function,
#      grouped.  Without inlining each small function also pays for its
#      call, so the supervision figure is an upper bound.
#
# Needs valgrind (callgrind_annotate comes with it).  Loopback only; every
# process it starts it stops by pid; every wait has a deadline.
set -euo pipefail
# shellcheck source=tests/bench/lib.sh
. "$(dirname "$0")/lib.sh"

SECS=5
CONNS=32
SIZE=64
ECHOD=build/echod
BENCH=build/echobench
HOT=build/hotpath

usage() {
	cat <<'EOF'
usage: tests/bench/hotpath.sh [--secs N] [--conns N] [--size N]
  --secs N   seconds of load per run (5)
  --conns N  pingpong connections (32)
  --size N   message size in bytes (64)
EOF
}

while [ $# -gt 0 ]; do
	case "$1" in
	--secs) SECS=$2; shift 2 ;;
	--conns) CONNS=$2; shift 2 ;;
	--size) SIZE=$2; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	*) echo "hotpath.sh: unknown argument: $1" >&2; usage >&2; exit 64 ;;
	esac
done
for t in valgrind callgrind_annotate; do
	command -v "$t" >/dev/null ||
		{ echo "hotpath.sh: $t: not installed (apt-get install valgrind)" >&2; exit 69; }
done
for f in "$ECHOD" "$BENCH" "$HOT/echod"; do
	[ -x "$f" ] || { echo "hotpath.sh: $f: not built (make bench-hotpath)" >&2; exit 66; }
done

TMP=$(mktemp -d /tmp/echod-hotpath.XXXXXX)
chmod 1777 "$TMP" # echod started as root writes as nobody
PID=""
stop() { # stop PID: TERM, KILL after 10 s
	local i
	kill -TERM "$1" 2>/dev/null || return 0
	for ((i = 0; i < 100; i++)); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}
cleanup() {
	[ -z "$PID" ] || stop "$PID"
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start CMD...: echod in the background on a free port; sets PID, PORT.
start() {
	local deadline=$((SECONDS + 60))
	PORT=$(pick_port)
	"$@" -l "127.0.0.1:$PORT" -w 1 </dev/null >>"$TMP/log" 2>&1 &
	PID=$!
	while [ $SECONDS -lt $deadline ]; do
		kill -0 "$PID" 2>/dev/null ||
			{ echo "hotpath.sh: echod exited:" >&2; tail -5 "$TMP/log" >&2; exit 1; }
		echoes "$PORT" READY? && return 0
		sleep 0.1
	done
	echo "hotpath.sh: echod not ready in 60 s" >&2
	exit 1
}

worker_of() { # the one worker of echod PID
	ps -o pid= --ppid "$1" | awk 'NR == 1 { print $1 }'
}

cpu_ticks() { # utime stime of PID, in clock ticks
	sed -n 's/.*) //p' "/proc/$1/stat" | awk '{ print $12, $13 }'
}

load() { # load: echobench's RESULT line
	timeout -k 5 $((SECS + 60)) "$BENCH" -m pingpong -a 127.0.0.1 \
		-p "$PORT" -c "$CONNS" -S "$SIZE" -d "$SECS" -w 0 |
		grep '^RESULT'
}

# ---- 1. native: CPU time per round trip ----
start "$ECHOD"
W=$(worker_of "$PID")
read -r u0 s0 < <(cpu_ticks "$W")
res=$(load)
read -r u1 s1 < <(cpu_ticks "$W")
stop "$PID"
PID=""
OPS=$(field "$res" ops)
[ "$(field "$res" errors)" = 0 ] || { echo "hotpath.sh: errors: $res" >&2; exit 1; }
HZ=$(getconf CLK_TCK)

# ---- 2. callgrind: user-space instructions per round trip ----
start valgrind --tool=callgrind --trace-children=yes \
	--callgrind-out-file="$TMP/cg.%p" "$HOT/echod"
W=$(worker_of "$PID")
# valgrind runs the worker under its own pid: find its output by pid.
cres=$(load)
stop "$PID"
PID=""
COPS=$(field "$cres" ops)
[ "$(field "$cres" errors)" = 0 ] || { echo "hotpath.sh: errors: $cres" >&2; exit 1; }
[ -s "$TMP/cg.$W" ] || { echo "hotpath.sh: no callgrind output for worker $W" >&2; exit 1; }
callgrind_annotate --auto=no --threshold=100 "$TMP/cg.$W" 2>/dev/null >"$TMP/annotate"

echo "echod, 1 worker; echobench pingpong, $CONNS connections, $SIZE-byte messages, $SECS s"
echo
awk -v ops="$OPS" -v hz="$HZ" -v u="$((u1 - u0))" -v s="$((s1 - s0))" 'BEGIN {
	printf "native: %d round trips, worker CPU %.2f s (user %.2f s, system %.2f s)\n",
	    ops, (u + s) / hz, u / hz, s / hz
	printf "        %.2f us of worker CPU per round trip, %.1f%% of it in user space\n",
	    (u + s) / hz * 1e6 / ops, (u + s) ? 100 * u / (u + s) : 0
}'
echo
# Groups, by function name (file:function in callgrind_annotate's list).
awk -v ops="$COPS" -v size="$SIZE" '
function group(fn) {
	if (fn ~ /:(publish|now_ms|idle_touch|idle_unlink|idle_append|age_unlink|age_append|expire_idle|expire_old|next_timeout|over_share|update_watch|sb_load|sb_store)$/)
		return "supervision: heartbeat, scoreboard, idle/age lists, balancing"
	if (fn ~ /:(echo_upper|upper16|upper_word)$/)
		return "the uppercase transform"
	if (fn ~ /clock_gettime/)
		return "supervision: heartbeat, scoreboard, idle/age lists, balancing"
	if (fn ~ /(^|\/)(read|send|recv|epoll_wait|epoll_ctl|accept4?|close)\.c:/ || fn ~ /:(read|send|__libc_read|__libc_send|epoll_wait)$/)
		return "system call wrappers (libc)"
	if (fn ~ /\/work\/|src\//)
		return "the rest of echod (event loop, connection state machine)"
	return "start-up and other libc/ld.so"
}
/PROGRAM TOTALS/ { gsub(/,/, "", $1); total = $1 }
/^ *[0-9,]+ \([ 0-9.]+%\) / && !/PROGRAM TOTALS/ {
	n = $1; gsub(/,/, "", n)
	fn = $0; sub(/^ *[0-9,]+ \([ 0-9.]+%\) +/, "", fn); sub(/ \[.*$/, "", fn)
	g = group(fn); sum[g] += n
	if (g ~ /^supervision/) detail[fn] += n
	if (++rank <= 8) top[fn] = n
}
END {
	printf "callgrind (-fno-inline): %d round trips, %.0f user-space instructions each\n",
	    ops, total / ops
	for (g in sum) printf "  %7.1f  %5.1f%%  %s\n", sum[g] / ops, 100 * sum[g] / total, g | "sort -k1,1nr"
	close("sort -k1,1nr")
	print "  the most expensive functions (instructions per round trip):"
	for (f in top) printf "  %7.2f  %s\n", top[f] / ops, f | "sort -k1,1nr"
	close("sort -k1,1nr")
	print "  supervision, by function (instructions per round trip):"
	for (f in detail) printf "  %7.2f  %s\n", detail[f] / ops, f | "sort -k1,1nr"
	close("sort -k1,1nr")
}' "$TMP/annotate"
