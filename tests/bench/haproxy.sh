#!/usr/bin/env bash
# haproxy.sh: what HAProxy in front of echod costs (make bench-haproxy).
# The standard scenarios (tests/bench/run.sh) against three set-ups, taking
# turns within every round, paired by round:
#
#   direct     one echod, plain listener: echobench -> echod
#   haproxy-1  echobench -> HAProxy -> one echod (PROXY v2)
#   haproxy-2  echobench -> HAProxy -> two echods (PROXY v2, leastconn)
#
#   tests/bench/haproxy.sh [--out DIR] [--workers N] [--nbthread N]
#                          [--echod PATH] [--bench PATH] [RUN.SH OPTIONS...]
#
# The HAProxy set-ups run as one command for run.sh (this script with
# --serve): it starts the echods (proxy_listen on 127.0.0.1 port 0, the
# port read from their log), then HAProxy in the foreground on run.sh's
# port with `send-proxy-v2`, `balance leastconn` and the same tcp-check
# health check as the tests (every 2 s here), and stops them all by pid on
# SIGTERM.  echobench -P measures that command's whole process tree: the
# CPU time per operation of HAProxy and the echods together.  On its way
# out the command prints how the CPU time its processes used over their
# life split between HAProxy and the echods; the report applies that share
# to echobench's figure: per operation, HAProxy's part and echod's part.
# Loopback only; every wait is bounded; everything is stopped by pid.
set -euo pipefail

HERE=$(dirname "$0")
OUT=build/bench-haproxy
ECHOD=build/echod
BENCH=build/echobench
HAPROXY=${HAPROXY_BIN:-haproxy}
# Debian installs it in /usr/sbin, which a user's PATH may lack.
if ! command -v "$HAPROXY" >/dev/null 2>&1 && [ -x /usr/sbin/haproxy ]; then
	HAPROXY=/usr/sbin/haproxy
fi
WORKERS=2
NBTHREAD=$(nproc)
RUN_ARGS=()

usage() {
	sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
	cat <<'EOF'
options:
  --out DIR      results: DIR/table.txt (run.sh's table and ratios),
                 DIR/split.txt (HAProxy's and echod's part of the CPU per
                 operation), DIR/raw/ (default build/bench-haproxy)
  --workers N    workers of every echod (2)
  --nbthread N   HAProxy's threads (default: the CPUs, HAProxy's default)
  --echod, --bench PATH   where things are; HAPROXY_BIN=PATH for haproxy
  --secs N --warmup N --rounds N --only LIST
                 passed to run.sh (default here: --only conn,pp32,bulk
                 --rounds 3)
EOF
}

# ---- --serve: one HAProxy set-up, in the foreground until SIGTERM ----

# Sum of utime, stime, cutime, cstime (clock ticks) of pid and its
# descendants: reaped children are in their parent's c-times.
tree_ticks() {
	local pids
	pids=$(ps -e -o pid=,ppid= | awk -v root="$1" '
		{ kids[$2] = kids[$2] " " $1 }
		END { q[1] = root; n = 1
			for (i = 1; i <= n; i++) { m = split(kids[q[i]], more, " ")
				for (j = 1; j <= m; j++) q[++n] = more[j] }
			for (i = 1; i <= n; i++) print q[i] }')
	for p in $pids; do # one may be gone meanwhile
		sed -n 's/.*) //p' "/proc/$p/stat" 2>/dev/null || true
	done | awk '{ t += $12 + $13 + $14 + $15 } END { print t + 0 }'
}

# stop_pid PID: TERM, then KILL after 5 s; it is our child.
stop_pid() {
	local i
	kill -TERM "$1" 2>/dev/null || return 0
	for ((i = 0; i < 50; i++)); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# Globals, for finish on the EXIT trap: the temp dir, the pids.
DIR="" HPID=""
EPID=()

serve() {
	local port=$1 n=$2 i p try up
	local -a eport
	DIR=$(mktemp -d /tmp/echod-bench-hap.XXXXXX)
	chmod 755 "$DIR"
	# Whatever ends this (SIGTERM from run.sh, a failed start, an error
	# under set -e): say the CPU split, stop everything by pid, clean up.
	# shellcheck disable=SC2317 # run by the EXIT trap
	finish() {
		local h=0 e=0 k
		set +e
		trap - EXIT
		[ -z "$HPID" ] || h=$(tree_ticks "$HPID")
		for k in "${EPID[@]}"; do e=$((e + $(tree_ticks "$k"))); done
		echo "haproxy.sh: cpu_ticks haproxy=$h echod=$e"
		[ -z "$HPID" ] || stop_pid "$HPID"
		for k in "${EPID[@]}"; do stop_pid "$k"; done
		rm -rf "$DIR"
	}
	trap finish EXIT
	trap 'exit 0' TERM INT
	for ((i = 0; i < n; i++)); do
		cat >"$DIR/e$i.conf" <<EOF
listen = {}
proxy_listen = { "127.0.0.1:0" }
proxy_trusted = { "127.0.0.1/32" }
workers = $WORKERS
log_level = info
EOF
		"$ECHOD" -c "$DIR/e$i.conf" </dev/null >"$DIR/e$i.log" 2>&1 &
		EPID[i]=$!
		eport[i]=""
		for ((try = 0; try < 100; try++)); do
			# the first such line (the log has two): no head, whose
			# early exit would fail the pipeline under pipefail
			p=$(sed -n '/listening on 127\.0\.0\.1:[0-9]* (PROXY)/{
				s/.*listening on 127\.0\.0\.1:\([0-9]*\) (PROXY).*/\1/p
				q
			}' "$DIR/e$i.log")
			[ -z "$p" ] || { eport[i]=$p; break; }
			kill -0 "${EPID[i]}" 2>/dev/null || break
			sleep 0.05
		done
		if [ -z "${eport[i]}" ]; then
			echo "haproxy.sh: echod $i did not start:" >&2
			cat "$DIR/e$i.log" >&2
			exit 1
		fi
	done
	{
		cat <<EOF
global
    stats socket $DIR/stats.sock mode 600 level admin
    nbthread $NBTHREAD
    hard-stop-after 5s
defaults
    mode tcp
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    retries 3
    option redispatch 1
frontend fe
    bind 127.0.0.1:$port
    default_backend be
backend be
    balance leastconn
    option tcp-check
    tcp-check send hello\n
    tcp-check expect string HELLO
    default-server inter 2s fall 2 rise 2 send-proxy-v2 check-send-proxy
EOF
		for ((i = 0; i < n; i++)); do
			echo "    server e$((i + 1)) 127.0.0.1:${eport[i]} check"
		done
	} >"$DIR/haproxy.cfg"
	"$HAPROXY" -f "$DIR/haproxy.cfg" -db </dev/null >"$DIR/haproxy.log" 2>&1 &
	HPID=$!
	# Every server UP before the first client (run.sh's warm-up would
	# cover the rest, but a figure should not depend on it).
	for ((try = 0; try < 100; try++)); do
		up=$(echo "show stat" | timeout 2 nc -U -q 1 "$DIR/stats.sock" \
			2>/dev/null | awk -F, '$1 == "be" && $2 ~ /^e/ && $18 == "UP"' |
			wc -l) || up=0
		[ "$up" -lt "$n" ] || break
		kill -0 "$HPID" 2>/dev/null || break
		sleep 0.05
	done
	if [ "$up" -lt "$n" ]; then
		echo "haproxy.sh: HAProxy has $up of $n servers UP:" >&2
		cat "$DIR/haproxy.log" >&2
		exit 1
	fi
	echo "haproxy.sh: HAProxy (pid $HPID) on 127.0.0.1:$port -> echod" \
		"pids ${EPID[*]} on ports ${eport[*]}, all UP"
	while kill -0 "$HPID" 2>/dev/null; do
		wait "$HPID" || true
	done
	echo "haproxy.sh: HAProxy exited by itself" >&2
	HPID=""
	exit 1
}

# ---- the comparison ----

# The median of the numbers on stdin, or "-".
median() {
	sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "-"; exit }
		print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# share TOTAL A B: TOTAL * A / (A + B), or 0.
share() {
	awk -v t="$1" -v a="$2" -v b="$3" \
		'BEGIN { printf "%.2f\n", (a + b > 0) ? t * a / (a + b) : 0 }'
}

# Per scenario and HAProxy set-up: each round's CPU per operation (run.sh's
# RESULT over the whole tree) split by the share its server log gives.
split_report() {
	local raw=$1 scen i r res tot per ticks h e name
	# shellcheck source=tests/bench/lib.sh
	. "$HERE/lib.sh"
	echo "CPU time per operation, split (median of the rounds): echobench's"
	echo "figure for the whole set-up, shared out as HAProxy's and the"
	echo "echods' CPU time over the set-up's life (warm-up and measure)"
	printf "%-6s %-10s %12s %12s %12s %8s\n" scen setup "total_us/op" \
		"haproxy" "echod" "per"
	for scen in conn pp32 pp256 bulk; do
		for i in 0 1 2; do
			ls "$raw/$scen.$i."? >/dev/null 2>&1 || continue
			name=$(sed -n "$((i + 1))p" <<<"direct
haproxy-1
haproxy-2")
			tot="" h="" e="" per=""
			for r in "$raw/$scen.$i".?; do
				res=$(grep -h '^RESULT' "$r" || true)
				[ -n "$res" ] || continue
				t=$(field "$res" cpu_us)
				per=$(field "$res" cpu_per)
				if [ -z "$t" ] || [ "$t" = - ]; then
					continue
				fi
				tot="$tot $t"
				if [ "$i" = 0 ]; then
					e="$e $t"
					h="$h 0"
					continue
				fi
				ticks=$(sed -n 's/.*cpu_ticks haproxy=\([0-9]*\) echod=\([0-9]*\).*/\1 \2/p' \
					"$r.server.log" | tail -n 1)
				[ -n "$ticks" ] || continue
				h="$h $(share "$t" "${ticks% *}" "${ticks#* }")"
				e="$e $(share "$t" "${ticks#* }" "${ticks% *}")"
			done
			printf "%-6s %-10s %12s %12s %12s %8s\n" "$scen" "$name" \
				"$(tr ' ' '\n' <<<"$tot" | grep . | median)" \
				"$(tr ' ' '\n' <<<"$h" | grep . | median)" \
				"$(tr ' ' '\n' <<<"$e" | grep . | median)" "${per:--}"
		done
	done
}

main() {
	local only=0 rounds=0 a conf
	for a in "${RUN_ARGS[@]}"; do
		[ "$a" = --only ] && only=1
		[ "$a" = --rounds ] && rounds=1
	done
	[ "$only" = 1 ] || RUN_ARGS+=(--only "conn,pp32,bulk")
	[ "$rounds" = 1 ] || RUN_ARGS+=(--rounds 3)
	for x in "$ECHOD" "$BENCH"; do
		[ -x "$x" ] || { echo "haproxy.sh: $x: not built" >&2; exit 66; }
	done
	if ! "$HAPROXY" -v >/dev/null 2>&1; then
		echo "haproxy.sh: no $HAPROXY (sh .ci/deps.sh installs it)" >&2
		exit 66
	fi
	mkdir -p "$OUT"
	OUT=$(cd "$OUT" && pwd)
	conf=$OUT/direct.conf
	echo "workers = $WORKERS" >"$conf"
	echo "haproxy.sh: $("$HAPROXY" -v | head -n 1); echod workers $WORKERS," \
		"HAProxy nbthread $NBTHREAD; results in $OUT" >&2
	"$HERE/run.sh" --bench "$BENCH" --out "$OUT" \
		--name direct --server "$ECHOD -c $conf -l 127.0.0.1:{port}" \
		--name haproxy-1 --server "$0 --echod $ECHOD --workers $WORKERS --nbthread $NBTHREAD --serve {port} 1" \
		--name haproxy-2 --server "$0 --echod $ECHOD --workers $WORKERS --nbthread $NBTHREAD --serve {port} 2" \
		--baseline direct "${RUN_ARGS[@]}"
	echo
	split_report "$OUT/raw" | tee "$OUT/split.txt"
}

while [ $# -gt 0 ]; do
	case "$1" in
	--serve)
		[ $# -ge 3 ] || { usage >&2; exit 64; }
		serve "$2" "$3" # exits
		;;
	--out) OUT=$2; shift 2 ;;
	--workers) WORKERS=$2; shift 2 ;;
	--nbthread) NBTHREAD=$2; shift 2 ;;
	--echod) ECHOD=$2; shift 2 ;;
	--bench) BENCH=$2; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	--secs | --warmup | --rounds | --only | --hold)
		RUN_ARGS+=("$1" "$2"); shift 2 ;;
	--keep) shift ;; # always kept in OUT/raw
	*) echo "haproxy.sh: unknown argument: $1" >&2; usage >&2; exit 64 ;;
	esac
done
main
