#!/usr/bin/env bash
# demo.sh: the lecture's run against echod (make demo MODEL=...).
#
# Starts echod in the foreground of this script on 127.0.0.1 (port 0:
# the port echod logs that it listens on), with 3 workers and the given
# model, runs the lecture's random keep-alive client against it (30
# client processes, 5 words each, a random pause of up to 3 s before
# each word: the process-pool part of the lecture), then stops echod by
# pid.  It prints, as they happen, the client's exchanges and echod's own
# line for every connection it closes, which names the worker that
# served it; then who served whom.  With prefork, the 3 workers serve 3
# clients at a time and the others wait in the accept queue; with the
# other models every client is served at once.
#
#   tests/bench/demo.sh --echod build/echod --client build/echoclient \
#       [--model M] [--workers N] [--threads N] [--clients N]
#       [--messages N] [--pause S] [--seed N] [--timeout S]
#
# The model line: `model = M` is written only for a model other than
# events (the default), so that the events demo runs on any echod, and
# an echod that does not know the option refuses it plainly.  For
# thread-pool it writes `threads = N` too (default 3 with 1 worker: the
# lecture's thread pool, three threads handed connections by one
# acceptor).  Everything it starts is stopped by pid, on Ctrl-C too, and
# every wait is bounded.
set -euo pipefail

ECHOD=build/echod
CLIENT=build/echoclient
MODEL=events
WORKERS=""
THREADS=3
CLIENTS=30
MESSAGES=5
PAUSE=3
SEED=""
TIMEOUT=240

usage() {
	sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
	case "$1" in
	--echod) ECHOD=$2; shift 2 ;;
	--client) CLIENT=$2; shift 2 ;;
	--model) MODEL=$2; shift 2 ;;
	--workers) WORKERS=$2; shift 2 ;;
	--threads) THREADS=$2; shift 2 ;;
	--clients) CLIENTS=$2; shift 2 ;;
	--messages) MESSAGES=$2; shift 2 ;;
	--pause) PAUSE=$2; shift 2 ;;
	--seed) SEED=$2; shift 2 ;;
	--timeout) TIMEOUT=$2; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	*) echo "demo.sh: unknown option $1" >&2; usage >&2; exit 64 ;;
	esac
done
if [ -z "$WORKERS" ]; then
	if [ "$MODEL" = thread-pool ]; then WORKERS=1; else WORKERS=3; fi
fi

dir=$(mktemp -d /tmp/echod-demo.XXXXXX)
chmod 755 "$dir" # echod's workers run as nobody when started as root
echod_pid="" tail_pid=""

# Stop what we started, by pid: the client, the log follower, echod
# (SIGTERM, then SIGKILL after 15 s: shutdown_timeout is 5 s).
stop_all() {
	if [ -n "$echod_pid" ] && kill -0 "$echod_pid" 2>/dev/null; then
		kill -TERM "$echod_pid" 2>/dev/null || true
		for _ in $(seq 150); do
			kill -0 "$echod_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$echod_pid" 2>/dev/null || true
	fi
	if [ -n "$tail_pid" ]; then kill "$tail_pid" 2>/dev/null || true; fi
	wait 2>/dev/null || true
}
# shellcheck disable=SC2317 # called by the trap
cleanup() {
	stop_all
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'echo; echo "demo: interrupted"; exit 130' INT TERM

conf=$dir/echod.conf
{
	echo 'listen = { "127.0.0.1:0" }'
	echo "workers = $WORKERS"
	echo 'log_level = debug'
	echo 'shutdown_timeout = 5'
	if [ "$MODEL" != events ]; then echo "model = $MODEL"; fi
	if [ "$MODEL" = thread-pool ]; then echo "threads = $THREADS"; fi
} >"$conf"

echo "== echod, model $MODEL, $WORKERS worker(s)$( [ "$MODEL" = thread-pool ] &&
	echo " x $THREADS threads")"
sed 's/^/   /' "$conf"
log=$dir/echod.log
"$ECHOD" -c "$conf" 2>"$log" &
echod_pid=$!

# The port: echod logs "listening on 127.0.0.1:PORT" (10 s at most).
port=""
for _ in $(seq 100); do
	port=$(sed -n 's/.* listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' \
		"$log" | head -n 1)
	[ -n "$port" ] && break
	kill -0 "$echod_pid" 2>/dev/null || break
	sleep 0.1
done
if [ -z "$port" ]; then
	echo "demo: echod did not start; its log:" >&2
	cat "$log" >&2
	exit 1
fi
echo "== echod (pid $echod_pid) listens on 127.0.0.1:$port"

# echod's line for every closed connection, as it comes: "worker 2:
# 127.0.0.1:40112 closed: eof, 30 bytes in, 30 out, 7.113 s".  $! is
# tail's pid; sed ends at its EOF.
tail -n +1 --pid=$$ -f "$log" > >(sed -u -n \
	's/^.* echod\[[0-9]*\] \(.*: [0-9.]*:[0-9]* closed: .*\)$/    echod \1/p') &
tail_pid=$!

echo "== $CLIENTS clients x $MESSAGES words, pauses up to $PAUSE s"
out=$dir/client.out
# In the foreground (--foreground: in make's process group), so that
# Ctrl-C reaches the client and its processes; the client kills its own
# processes at its deadline, timeout(1) is a second bound.
set +e
timeout --foreground $((TIMEOUT + 10)) "$CLIENT" -p "$port" \
	-c "$CLIENTS" -n "$MESSAGES" -P "$PAUSE" -t "$TIMEOUT" \
	${SEED:+-s "$SEED"} | tee "$out"
rc=${PIPESTATUS[0]}
set -e

echo "== stopping echod (pid $echod_pid)"
t0=$(date +%s%N)
stop_all
echod_pid=""
echo "   stopped in $((($(date +%s%N) - t0) / 1000000)) ms"

# Who served whom: the client numbers per worker, in the order served
# (the client's "closing" line names its address, echod's closed line too).
echo "== who served whom"
awk 'FNR == NR {
		if ($NF == "closing") { a = $(NF - 1); sub(/:$/, "", a)
			id[a] = $(NF - 2) }
		next }
	/ closed: / {
		sub(/^.* echod\[[0-9]+\] /, ""); sub(/ closed: .*$/, "")
		a = $NF; who = $0; sub(/: [^ ]*$/, "", who)
		s[who] = s[who] " " (a in id ? id[a] : "?"); c[who]++ }
	END { for (w in s) printf "   %s: %d client(s):%s\n", w, c[w], s[w] }' \
	"$out" "$log" | sort
grep -E ' (warning|error|crit)' "$log" | sed 's/^/   echod: /' || true
if [ "$rc" -eq 0 ]; then
	echo "== demo: every reply was right"
else
	echo "== demo: FAILED (see the client's lines above)"
fi
exit "$rc"
