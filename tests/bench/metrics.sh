#!/usr/bin/env bash
# metrics.sh: what echod's /metrics endpoint costs (make bench-metrics).
#
# 1. Per scrape: echod (2 workers, metrics_listen on a free loopback
#    port, a few idle connections held) is scraped N times back to back
#    (GET /metrics, one connection each, the whole answer read); the CPU
#    time of the master, of the `echod: metrics` process and of the
#    workers, from /proc/PID/schedstat (nanoseconds, exact for these
#    single-threaded processes), before and after, divided by N.
# 2. Under load: the standard scenarios (tests/bench/run.sh) against three
#    echods side by side, paired by round: "plain" (no metrics_listen, as
#    make bench runs it) and "scraped" (metrics_listen set, and a scraper
#    that GETs /metrics every --interval seconds for as long as that echod
#    runs), and a control, "plain-again", the same as plain: its ratio to
#    plain is the noise of the machine, against which scraped's ratio to
#    plain is read.
#    The scraper is not a descendant of echod (setsid -f), so echobench -P
#    counts only echod's processes, the metrics process among them.
#
#   tests/bench/metrics.sh [--echod PATH] [--bench PATH] [--out DIR]
#                          [--scrapes N] [--interval S] [--workers N]
#                          [--secs N --warmup N --hold N --rounds N
#                           --only LIST] [--no-control]
#
# Loopback only; every wait is bounded; everything started is stopped by
# its pid.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
SELF=$HERE/$(basename "$0")
# shellcheck source=tests/bench/lib.sh
. "$HERE/lib.sh"

ECHOD=build/echod
BENCH=build/echobench
OUT=build/bench-metrics
SCRAPES=1000
INTERVAL=1
WORKERS=2
HELD=10
ROUNDS=3
CONTROL=1
RUN_ARGS=()

usage() {
	sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
	cat <<'EOF'
options:
  --echod, --bench PATH  where things are (build/echod, build/echobench)
  --out DIR       results: DIR/results.md, DIR/table.txt, DIR/raw/,
                  DIR/conf/ (default build/bench-metrics)
  --scrapes N     scrapes back to back in part 1 (1000)
  --interval S    the scraper's period in part 2, seconds (1)
  --workers N     workers of every echod (2)
  --rounds N      rounds of part 2 (3); --secs --warmup --hold --only are
                  passed to run.sh (see tests/bench/run.sh -h)
  --no-control    leave out plain-again, a second plain echod whose
                  ratio to plain shows what the machine's noise alone does
EOF
}

# ---- the scraper: one GET /metrics ----

# scrape PORT: 0 if the answer was a 200, its bytes all read.
scrape() {
	local status=""
	{ exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
	printf 'GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nConnection: close\r\n\r\n' \
		"$1" >&3
	IFS= read -r -t 5 status <&3 || status=""
	timeout 10 cat <&3 >/dev/null || true
	exec 3<&-
	[[ $status == "HTTP/1.1 200"* ]]
}

# scrape_loop PID PORT LOG: scrape every INTERVAL s while PID lives (at
# most 6 hours), one line per scrape in LOG: "ok" or "failed".
scrape_loop() {
	local pid=$1 port=$2 log=$3 i
	for ((i = 0; i < 6 * 3600; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep "$INTERVAL"
		kill -0 "$pid" 2>/dev/null || return 0
		if scrape "$port"; then echo ok; else echo failed; fi >>"$log"
	done
}

# ---- the "scraped" server, as run.sh starts it ----

# serve_scraped ECHOD DIR ECHOD-ARGS...: a configuration with
# metrics_listen on a free port, the scraper started outside our process
# tree, then exec echod (so that run.sh's pid is echod's).
serve_scraped() {
	local echod=$1 dir=$2 port conf
	shift 2
	port=$(pick_port)
	conf=$dir/scraped.$$.conf
	printf '# written by tests/bench/metrics.sh\nmetrics_listen = "127.0.0.1:%s"\n' \
		"$port" >"$conf"
	echo "metrics.sh: echod $$ serves /metrics on 127.0.0.1:$port," \
		"scraped every $INTERVAL s" >&2
	setsid -f "$SELF" --interval "$INTERVAL" --scrape-loop "$$" "$port" \
		"$dir/scrapes.log" </dev/null >/dev/null 2>&1
	exec "$echod" -c "$conf" "$@"
}

# ---- part 1: CPU per scrape ----

# Run time of PID's main thread in ns (/proc/PID/schedstat); 0 if gone.
cpu_ns() {
	local a
	read -r a _ <"/proc/$1/schedstat" 2>/dev/null || a=0
	echo "${a:-0}"
}

child_titled() { # child_titled MASTER TITLE-PREFIX: pids, one a line
	ps --ppid "$1" -o pid=,args= | awk -v t="$2" \
		'{ p = $1; $1 = ""; sub(/^ /, ""); if (index($0, t) == 1) print p }'
}

ECHOD_PID=""
HOLD_PID=""
stop_echod() {
	local i
	[ -z "$HOLD_PID" ] || { kill "$HOLD_PID" 2>/dev/null || true; wait "$HOLD_PID" 2>/dev/null || true; }
	HOLD_PID=""
	[ -n "$ECHOD_PID" ] || return 0
	kill -TERM "$ECHOD_PID" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		kill -0 "$ECHOD_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$ECHOD_PID" 2>/dev/null || true
	wait "$ECHOD_PID" 2>/dev/null || true
	ECHOD_PID=""
}

# hold_idle PORT N: N idle connections open until killed (one process).
hold_idle() {
	local i
	for ((i = 0; i < $2; i++)); do
		eval "exec $((10 + i))<>/dev/tcp/127.0.0.1/$1"
	done
	exec sleep 3600
}

# sample_cpu MASTER METRICS-PID: append the CPU ns of the master, the
# metrics process and the workers (summed) to CPU_M, CPU_X, CPU_W.
CPU_M=() CPU_X=() CPU_W=()
sample_cpu() {
	local w sum=0
	for w in $(child_titled "$1" "echod: worker"); do
		sum=$((sum + $(cpu_ns "$w")))
	done
	CPU_M+=("$(cpu_ns "$1")") CPU_X+=("$(cpu_ns "$2")") CPU_W+=("$sum")
}

# cpu_row NAME 0|1|2: a table row from the samples of CPU_M, _X or _W
# (0-1 scraping, 1-2 idle as long).
cpu_row() {
	local -n a=CPU_M
	[ "$2" = 1 ] && local -n a=CPU_X
	[ "$2" = 2 ] && local -n a=CPU_W
	awk -v name="$1" -v busy=$((a[1] - a[0])) -v idle=$((a[2] - a[1])) \
		-v n="$SCRAPES" 'BEGIN {
		printf "| %s | %d µs | %d µs | %.2f µs |\n", name, busy / 1000,
			idle / 1000, (busy - idle) / n / 1000 }'
}

per_scrape() {
	local port mport conf log master mp i ok=0 t0 t1 bytes busy_ms
	conf=$CONF/per-scrape.conf
	log=$OUT/per-scrape.log
	printf 'metrics_listen = "127.0.0.1:9"\n' >"$conf"
	if ! "$ECHOD" -t -c "$conf" -l 127.0.0.1:1 >"$log" 2>&1; then
		echo "metrics.sh: $ECHOD -t refuses metrics_listen:" >&2
		head -n 1 "$log" >&2
		exit 1
	fi
	for _ in 1 2 3 4 5; do
		if ! port=$(pick_port) || ! mport=$(pick_port); then break; fi
		[ "$port" != "$mport" ] || continue
		printf '# written by tests/bench/metrics.sh\nmetrics_listen = "127.0.0.1:%s"\n' \
			"$mport" >"$conf"
		"$ECHOD" -c "$conf" -l "127.0.0.1:$port" -w "$WORKERS" \
			</dev/null >>"$log" 2>&1 &
		ECHOD_PID=$!
		for ((i = 0; i < 100; i++)); do
			if echoes "$port" READY? && scrape "$mport"; then break; fi
			kill -0 "$ECHOD_PID" 2>/dev/null || break
			sleep 0.1
		done
		scrape "$mport" && break
		stop_echod
	done
	if [ -z "$ECHOD_PID" ]; then
		echo "metrics.sh: echod with metrics_listen did not start:" >&2
		tail -n 5 "$log" >&2
		exit 1
	fi
	master=$ECHOD_PID
	mp=$(child_titled "$master" "echod: metrics" | head -n 1)
	[ -n "$mp" ] || { echo "metrics.sh: no 'echod: metrics' process" >&2; exit 1; }
	hold_idle "$port" "$HELD" & HOLD_PID=$!
	sleep 0.5
	bytes=$( { exec 3<>"/dev/tcp/127.0.0.1/$mport"
		printf 'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n' >&3
		timeout 10 cat <&3; } | wc -c)
	sample_cpu "$master" "$mp"
	t0=$(date +%s%N)
	for ((i = 0; i < SCRAPES; i++)); do
		if scrape "$mport"; then ok=$((ok + 1)); fi
	done
	t1=$(date +%s%N)
	sample_cpu "$master" "$mp"
	busy_ms=$(((t1 - t0) / 1000000))
	# as long again without a scrape: what they spend anyway
	sleep "$(awk -v ms="$busy_ms" 'BEGIN { printf "%.3f", ms / 1000 }')"
	sample_cpu "$master" "$mp"
	[ "$(child_titled "$master" "echod: metrics" | head -n 1)" = "$mp" ] ||
		echo "metrics.sh: the metrics process changed during the run" >&2
	stop_echod
	{
		echo "## CPU per scrape"
		echo
		echo "\`echod -c FILE -l 127.0.0.1:PORT -w $WORKERS\`, FILE holding only"
		echo "\`metrics_listen\`; $HELD idle connections open; $SCRAPES scrapes back"
		echo "to back ($ok answered 200), a connection each, the whole answer"
		echo "read ($bytes bytes with its headers), in $(((t1 - t0) / 1000000)) ms."
		echo "CPU from /proc/PID/schedstat, before and after:"
		echo
		echo "| process | CPU over the $SCRAPES scrapes ($busy_ms ms) | idle as long | (scrapes - idle) / $SCRAPES |"
		echo "| --- | ---: | ---: | ---: |"
		cpu_row master 0
		cpu_row "echod: metrics" 1
		cpu_row "workers ($WORKERS)" 2
		echo
		echo "Idle: the same processes over as long again without a scrape,"
		echo "just after (what they spend anyway: timers, heartbeats); the"
		echo "last column is what the scrapes added, per scrape."
		echo
	} | tee "$OUT/per-scrape.md"
	[ "$ok" -eq "$SCRAPES" ] || {
		echo "metrics.sh: only $ok of $SCRAPES scrapes answered 200" >&2
		exit 1
	}
}

# ---- part 2: make bench's scenarios, plain and scraped ----

under_load() {
	local plain=$CONF/plain.conf n ok
	echo "# written by tests/bench/metrics.sh: no metrics_listen" >"$plain"
	: >"$CONF/scrapes.log"
	local control=()
	[ "$CONTROL" = 0 ] || control=(--name plain-again
		--server "$ECHOD -c $plain -l 127.0.0.1:{port} -w $WORKERS")
	"$HERE/run.sh" --bench "$BENCH" --out "$OUT" --rounds "$ROUNDS" \
		--name plain \
		--server "$ECHOD -c $plain -l 127.0.0.1:{port} -w $WORKERS" \
		"${control[@]}" \
		--name scraped \
		--server "$SELF --interval $INTERVAL --serve-scraped $ECHOD $CONF -l 127.0.0.1:{port} -w $WORKERS" \
		--baseline plain "${RUN_ARGS[@]}"
	n=$(wc -l <"$CONF/scrapes.log")
	ok=$(grep -c '^ok$' "$CONF/scrapes.log" || true)
	echo "metrics.sh: the scrapers made $n scrapes, $ok answered 200"
	if [ "$n" -eq 0 ] || [ "$ok" -ne "$n" ]; then
		echo "metrics.sh: scrapes failed: the scraped figures are not a measurement" >&2
		exit 1
	fi
}

MODE=main
ARGS=()
while [ $# -gt 0 ]; do
	case "$1" in
	--scrape-loop) MODE=loop; shift; ARGS=("$@"); break ;;
	--serve-scraped) MODE=serve; shift; ARGS=("$@"); break ;;
	--echod) ECHOD=$2; shift 2 ;;
	--bench) BENCH=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	--scrapes) SCRAPES=$2; shift 2 ;;
	--interval) INTERVAL=$2; shift 2 ;;
	--workers) WORKERS=$2; shift 2 ;;
	--rounds) ROUNDS=$2; shift 2 ;;
	--no-control) CONTROL=0; shift ;;
	--secs | --warmup | --hold | --only)
		RUN_ARGS+=("$1" "$2"); shift 2 ;;
	-h | --help) usage; exit 0 ;;
	*) echo "metrics.sh: unknown argument: $1" >&2; usage >&2; exit 64 ;;
	esac
done
case "$MODE" in
loop) scrape_loop "${ARGS[@]}"; exit 0 ;;
serve) serve_scraped "${ARGS[@]}" ;;
esac

for x in "$ECHOD" "$BENCH"; do
	[ -x "$x" ] || { echo "metrics.sh: $x: not built" >&2; exit 66; }
done
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
CONF=$OUT/conf
rm -rf "$CONF"
mkdir -p "$CONF"
rm -f "$OUT/per-scrape.log"
ECHOD=$(cd "$(dirname "$ECHOD")" && pwd)/$(basename "$ECHOD")
trap stop_echod EXIT
trap 'exit 130' INT TERM

per_scrape
under_load | tee "$OUT/under-load.txt"
{
	cat "$OUT/per-scrape.md"
	echo "## Under load, scraped every $INTERVAL s"
	echo
	echo '```'
	cat "$OUT/under-load.txt"
	echo '```'
} >"$OUT/results.md"
echo "metrics.sh: results in $OUT/results.md"
