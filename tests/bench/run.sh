#!/usr/bin/env bash
# run.sh: the standard echo benchmark, one or more servers side by side.
#
# For every scenario and every server: starts the server on 127.0.0.1
# with a free port, waits until it echoes, runs echobench, stops the server
# by pid.  A fresh server each time, so that its memory figures (and the
# growth per idle connection) do not depend on what ran before; servers
# take turns within every scenario, so a noisy machine hurts them alike.
# Prints one table.  Loopback only; every run is bounded by `timeout`.
#
#   tests/bench/run.sh                      # build/echod, 2 workers
#   tests/bench/run.sh --server "build/echod -l 127.0.0.1:{port} -w 2" \
#       --server "/work/shared/reference/echo-ceiling -p {port} -n 2"
#
# A server command must stay in the foreground and listen on
# 127.0.0.1:{port}; {port} is replaced with the chosen port.  Its memory
# is summed over its pid and that pid's descendants, and so is its CPU
# time (echobench -P): what the whole tree spent during the measured
# seconds, reaped children included, per connection (conn; hold: per
# connection opened), per round trip (pp32, pp256) or per MB (bulk).  --name, --plain and
# --max-hold describe the --server that follows them (tests/bench/compare.sh
# uses them for the peers).
set -euo pipefail
# shellcheck source=tests/bench/lib.sh
. "$(dirname "$0")/lib.sh"

BENCH=build/echobench
SECS=3
WARMUP=1
HOLD=10000
ROUNDS=1
KEEP=0
SERVERS=()
ONLY=""
OUT=""
BASELINE=""
declare -a SNAME PLAIN MAXHOLD # per server, from the modifiers
NEXT_NAME="" NEXT_PLAIN=0 NEXT_MAXHOLD=0

usage() {
	cat <<'EOF'
usage: tests/bench/run.sh [--server CMD]... [--bench PATH] [--secs N]
                          [--warmup N] [--hold N] [--rounds N]
                          [--only LIST] [--keep] [--out DIR] [-h]
  --server CMD  a server to measure, {port} in CMD is its port; repeat the
                option to compare servers (default: build/echod, 2 workers)
  --name NAME   the name of the next --server in the table (default: the
                command's base name)
  --plain       the next --server echoes plain, not uppercased (inetd's
                internal echo): check for that (echobench -e)
  --max-hold N  the next --server holds at most N connections in the hold
                scenario (a process per connection: 10000 are too many)
  --bench PATH  the load generator (default build/echobench)
  --secs N      seconds measured per scenario; hold: seconds held (3)
  --warmup N    warm-up seconds before each measurement (1)
  --hold N      connections in the hold scenario (10000)
  --rounds N    run every scenario N times per server and show the run with
                the median rate (1)
  --only LIST   comma-separated scenarios: conn,pp32,pp256,bulk,hold
  --baseline NAME  also print every other server's figures as a ratio to
                this server's, paired by round (each round runs them
                back to back), median and range over the rounds
  --keep        keep the logs and raw results (their directory is printed)
  --out DIR     keep the logs and raw results in DIR/raw, and write the
                table to DIR/table.txt and one tab-separated line per
                scenario and server to DIR/summary.tsv
EOF
}

while [ $# -gt 0 ]; do
	case "$1" in
	--server)
		SNAME[${#SERVERS[@]}]=$NEXT_NAME
		PLAIN[${#SERVERS[@]}]=$NEXT_PLAIN
		MAXHOLD[${#SERVERS[@]}]=$NEXT_MAXHOLD
		SERVERS+=("$2")
		NEXT_NAME="" NEXT_PLAIN=0 NEXT_MAXHOLD=0
		shift 2
		;;
	--name) NEXT_NAME=$2; shift 2 ;;
	--plain) NEXT_PLAIN=1; shift ;;
	--max-hold) NEXT_MAXHOLD=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	--bench) BENCH=$2; shift 2 ;;
	--secs) SECS=$2; shift 2 ;;
	--warmup) WARMUP=$2; shift 2 ;;
	--hold) HOLD=$2; shift 2 ;;
	--rounds) ROUNDS=$2; shift 2 ;;
	--only) ONLY=$2; shift 2 ;;
	--baseline) BASELINE=$2; shift 2 ;;
	--keep) KEEP=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "run.sh: unknown argument: $1" >&2; usage >&2; exit 64 ;;
	esac
done
if [ ${#SERVERS[@]} -eq 0 ]; then
	SERVERS=("build/echod -l 127.0.0.1:{port} -w 2")
	SNAME[0]=$NEXT_NAME PLAIN[0]=$NEXT_PLAIN MAXHOLD[0]=$NEXT_MAXHOLD
fi
[ -x "$BENCH" ] || { echo "run.sh: $BENCH: not built (make bench-tool)" >&2; exit 66; }

# name|echobench arguments; hold uses --secs as the time it holds, and
# {hold} is the server's count (--hold, or its --max-hold if lower).
SCENARIOS=(
	"conn|-m conn -c 32 -s 16 -S 64"
	"pp32|-m pingpong -c 32 -S 64"
	"pp256|-m pingpong -c 256 -S 64"
	"bulk|-m bulk -c 1 -W 256k"
	"hold|-m hold -c {hold} -S 64"
)

hold_of() { # hold_of SERVER-INDEX
	local m=${MAXHOLD[$1]:-0}
	if [ "$m" -gt 0 ] && [ "$m" -lt "$HOLD" ]; then echo "$m"; else echo "$HOLD"; fi
}

if [ -n "$OUT" ]; then
	mkdir -p "$OUT"
	rm -rf "$OUT/raw"
	mkdir "$OUT/raw"
	TMP=$(cd "$OUT/raw" && pwd)
	KEEP=2
else
	TMP=$(mktemp -d /tmp/echobench.XXXXXX)
fi
SERVER_PID="" # the one server running now, if any

# pid:start-time of every descendant of a pid (the start time tells a
# process from a later one that got the same pid).
descendants() {
	local p
	for p in $(ps -e -o pid=,ppid= | awk -v root="$1" '
		{ kids[$2] = kids[$2] " " $1 }
		END { n = split(kids[root], q, " ")
			for (i = 1; i <= n; i++) { print q[i]
				m = split(kids[q[i]], more, " ")
				for (j = 1; j <= m; j++) q[++n] = more[j] } }'); do
		echo "$p:$(start_time "$p")"
	done
}

# Field 22 of /proc/PID/stat (after the "(name)"); nothing for a process
# that is gone or a zombie (an orphan's zombie waits for pid 1).
start_time() {
	sed -n 's/.*) //p' "/proc/$1/stat" 2>/dev/null |
		awk '$1 != "Z" { print $20 }'
}

# signal_same SIG PID:START...: those still the processes we saw.
signal_same() {
	local sig=$1 ps n=0
	shift
	for ps in "$@"; do
		if [ -n "${ps#*:}" ] && [ "$(start_time "${ps%%:*}")" = "${ps#*:}" ]; then
			if kill "-$sig" "${ps%%:*}" 2>/dev/null; then n=$((n + 1)); fi
		fi
	done
	[ "$n" -gt 0 ]
}

# Stop what we started, by pid: TERM, then KILL after a deadline.  A
# server with a process per connection may leave children behind (their
# clients are gone, so they end by themselves, unless stuck): after 3 s
# they get TERM, then KILL, by pid.
stop_server() {
	local pid=$1 i kids
	kids=$(descendants "$pid")
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 150; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	[ -n "$kids" ] || return 0
	# shellcheck disable=SC2086 # a word list
	for ((i = 0; i < 30; i++)); do
		signal_same 0 $kids || return 0
		sleep 0.1
	done
	# shellcheck disable=SC2086
	signal_same TERM $kids || return 0
	sleep 0.5
	# shellcheck disable=SC2086
	signal_same KILL $kids || true
}

cleanup() {
	[ -z "$SERVER_PID" ] || stop_server "$SERVER_PID"
	if [ "$KEEP" = 1 ]; then
		echo "logs and raw results: $TMP" >&2
	elif [ "$KEEP" = 0 ]; then
		rm -rf "$TMP"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_ready() { # wait_ready PID PORT SERVER-INDEX
	local pid=$1 port=$2 reply='READY?' deadline=$((SECONDS + 10))
	[ "${PLAIN[$3]:-0}" = 1 ] && reply='ready?'
	while [ $SECONDS -lt $deadline ]; do
		kill -0 "$pid" 2>/dev/null || return 1
		echoes "$port" "$reply" && return 0
		sleep 0.05
	done
	return 1
}

# start_server INDEX LOG: sets PORT and SERVER_PID.
declare -a NAME
PORT=""
start_server() {
	local i=$1 log=$2 cmd try
	for try in 1 2 3 4 5; do
		PORT=$(pick_port) || break
		cmd=${SERVERS[$i]//\{port\}/$PORT}
		echo "run.sh: starting: $cmd" >>"$log"
		bash -c "exec $cmd" </dev/null >>"$log" 2>&1 &
		SERVER_PID=$!
		wait_ready "$SERVER_PID" "$PORT" "$i" && return 0
		echo "run.sh: ${NAME[i]} not ready on port $PORT (try $try):" >&2
		tail -n 5 "$log" >&2 || true
		stop_server "$SERVER_PID"
		SERVER_PID=""
	done
	echo "run.sh: could not start: ${SERVERS[$i]}" >&2
	return 1
}

NAMEW=14 # the server column's width: the longest name
server_names() {
	local i j base
	for i in "${!SERVERS[@]}"; do
		base=${SERVERS[$i]%% *}
		base=${base##*/}
		[ -z "${SNAME[$i]:-}" ] || base=${SNAME[$i]}
		NAME[i]=$base
		for j in "${!NAME[@]}"; do
			if [ "$j" -lt "$i" ] && [ "${NAME[j]}" = "$base" ]; then
				NAME[i]="$base#$((i + 1))"
			fi
		done
		[ ${#NAME[i]} -le "$NAMEW" ] || NAMEW=${#NAME[i]}
	done
}


# run_one SCENARIO-ARGS SERVER-INDEX OUTFILE: a fresh server, one
# echobench run against it, the server stopped.
run_one() {
	local args=$1 i=$2 out=$3 rc=0 limit
	limit=$(awk -v s="$SECS" -v w="$WARMUP" 'BEGIN { print int(s + w + 60) }')
	args=${args//\{hold\}/$(hold_of "$i")}
	[ "${PLAIN[$i]:-0}" = 1 ] && args="$args -e"
	if ! start_server "$i" "$out.server.log"; then
		echo "rc=not_started" >>"$out"
		return 0
	fi
	# shellcheck disable=SC2086 # args is a word list on purpose
	timeout -k 5 "$limit" "$BENCH" $args -a 127.0.0.1 -p "$PORT" \
		-d "$SECS" -w "$WARMUP" -P "$SERVER_PID" >"$out" || rc=$?
	echo "rc=$rc" >>"$out"
	if ! kill -0 "$SERVER_PID" 2>/dev/null; then
		echo "run.sh: ${NAME[i]} died during the run" >&2
		echo "server_died" >>"$out"
	fi
	stop_server "$SERVER_PID"
	SERVER_PID=""
}

# The run (of ROUNDS) with the median rate; hold: the median memory per
# connection.
median_result() {
	local scen=$1 i=$2 r key=rate
	[ "$scen" = hold ] && key=per_conn_bytes
	for ((r = 1; r <= ROUNDS; r++)); do
		grep -h '^RESULT' "$TMP/$scen.$i.$r" || echo "RESULT rate=0 errors=-"
	done | awk -v key="$key=" '{ for (k = 1; k <= NF; k++)
		if (index($k, key) == 1) print substr($k, length(key) + 1), $0 }' |
		sort -g -k1,1 | awk -v n="$ROUNDS" 'NR == int((n + 1) / 2) { $1 = ""; sub(/^ /, ""); print }'
}

row() { # row SCENARIO SERVER-INDEX
	local scen=$1 i=$2 res rate p50 p99 err rss pss per rc cpu
	res=$(median_result "$scen" "$i")
	rc=$(cat "$TMP/$scen.$i".? "$TMP/$scen.$i".?? 2>/dev/null |
		grep -E '^(rc=|server_died)' | sort -u | tr '\n' ' ' || true)
	case "$scen" in
	conn) rate="$(field "$res" rate) conn/s" ;;
	pp*) rate="$(field "$res" rate) rt/s" ;;
	bulk) rate="$(field "$res" mbps) MB/s" ;;
	hold) rate="$(field "$res" open)/$(hold_of "$i") echo" ;;
	esac
	p50=$(field "$res" p50_us) p99=$(field "$res" p99_us)
	err=$(field "$res" errors) rss=$(field "$res" rss_kb)
	pss=$(field "$res" pss_kb) per=$(field "$res" per_conn_bytes)
	cpu=$(cpu_cell "$res")
	printf "%-6s %-${NAMEW}s %18s %13s %9s %9s %7s %8s %8s %7s  %s\n" "$scen" \
		"${NAME[i]}" "$rate" "$cpu" "${p50:--}" "${p99:--}" \
		"${err:--}" "${rss:--}" "${pss:--}" "${per:--}" "${rc% }"
	[ -z "$OUT" ] || summary_line "$scen" "$i" "$res" "${rc% }" \
		>>"$OUT/summary.tsv"
}

# "14.1/conn": the server's CPU microseconds per operation, from a
# RESULT line (echobench's cpu_us and cpu_per), or "-"; "~" marks a
# figure that the rounding of clock ticks could move by a tenth (coarse).
cpu_cell() { # cpu_cell RESULT-LINE
	local us
	us=$(field "$1" cpu_us)
	if [ -z "$us" ] || [ "$us" = - ]; then
		echo -
	elif [ "$(field "$1" cpu_coarse)" = 1 ]; then
		echo "~$us/$(field "$1" cpu_per)"
	else
		echo "$us/$(field "$1" cpu_per)"
	fi
}

# One tab-separated line: scenario, server, echo (upper|plain),
# connections, value and its unit (conn: conn/s, pp*: round trips/s,
# bulk: MB/s, hold: PSS bytes per connection), open, p50_us, p99_us,
# errors, rss_kb, pss_kb, the server's CPU microseconds per operation and
# the operation (conn, rt, MB; hold: conn opened), its CPU seconds over
# the measured time, 1 if that is coarse (clock ticks), its processes at
# the end, exit statuses, the command.
summary_line() {
	local scen=$1 i=$2 res=$3 rc=$4 conns value unit
	conns=$(field "$res" conns)
	case "$scen" in
	conn) value=$(field "$res" rate) unit=conn/s ;;
	pp*) value=$(field "$res" rate) unit=rt/s ;;
	bulk) value=$(field "$res" mbps) unit=MB/s ;;
	hold) value=$(field "$res" per_conn_bytes) unit=B/conn
		conns=$(hold_of "$i") ;;
	esac
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
		"$scen" "${NAME[i]}" \
		"$([ "${PLAIN[$i]:-0}" = 1 ] && echo plain || echo upper)" \
		"${conns:--}" "${value:--}" "$unit" "$(field "$res" open)" \
		"$(field "$res" p50_us)" "$(field "$res" p99_us)" \
		"$(field "$res" errors)" "$(field "$res" rss_kb)" \
		"$(field "$res" pss_kb)" "$(field "$res" cpu_us)" \
		"$(field "$res" cpu_per)" "$(field "$res" cpu_s)" \
		"$(field "$res" cpu_coarse)" "$(field "$res" procs)" \
		"${rc:--}" "${SERVERS[$i]}"
}

# The figure a scenario is judged by, from one result line: the rate, or
# for hold the memory per connection (which stands even if some
# connections failed: it is divided by those held).  A rate measured with
# errors is not a result: nothing.
value_of() { # value_of SCENARIO RESULT-LINE
	local err
	err=$(field "$2" errors)
	if [ "$1" != hold ] && [ "${err:-0}" != 0 ]; then
		return 0
	fi
	case "$1" in
	bulk) field "$2" mbps ;;
	hold) field "$2" per_conn_bytes ;;
	*) field "$2" rate ;;
	esac
}

# The server's CPU microseconds per operation, from one result line, on
# the same terms (hold: per connection opened).
cpu_of() { # cpu_of SCENARIO RESULT-LINE
	local err v
	err=$(field "$2" errors)
	if [ "$1" != hold ] && [ "${err:-0}" != 0 ]; then
		return 0
	fi
	v=$(field "$2" cpu_us)
	[ "$v" = - ] || echo "$v"
}

# paired LIST CPU: "a/z a/z ..." (one pair a round) to the median of the
# ratios a/z and their range, "-" when no round gave both; unless CPU is
# 1, also the inverse of the median (the baseline as a multiple).
paired() {
	awk -v list="$1" -v cpu="$2" '
	BEGIN {
		n = 0
		m = split(list, pair, " ")
		for (k = 1; k <= m; k++) {
			split(pair[k], f, "/")
			# PSS can shrink: a growth below 0 is no figure
			if (f[1] == "" || f[1] == "-" || f[1] + 0 < 0 ||
			    f[2] + 0 <= 0)
				continue
			v[++n] = f[1] / f[2]
		}
		if (n == 0) {
			if (cpu)
				printf "%8s  %-14s", "-", ""
			else
				printf "%8s  %-14s %-9s", "-", "", "-"
			exit
		}
		for (x = 1; x <= n; x++)	# insertion sort: n is small
			for (y = x; y > 1 && v[y - 1] > v[y]; y--) {
				t = v[y]; v[y] = v[y - 1]; v[y - 1] = t
			}
		med = n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
		range = sprintf("%.0f%%-%.0f%%", 100 * v[1], 100 * v[n])
		if (cpu) {
			printf "%7.0f%%  %-14s", 100 * med, range
			exit
		}
		# The other way round: a multiple, or a fraction when it is
		# small (memory per connection).
		if (med <= 0)
			inv = "-"
		else if (1 / med >= 0.1)
			inv = sprintf("%.2fx", 1 / med)
		else
			inv = sprintf("1/%.0f", med)
		printf "%7.0f%%  %-14s %-9s", 100 * med, range, inv
	}'
}

# Paired ratios: in round r, server i's figure over the baseline's figure
# in the same round.  Servers run back to back within a round, so a slow
# spell of the machine tends to hit both; the median of the paired
# ratios is steadier than a ratio of two medians.
ratios() {
	local b=-1 i s r scen a z ra rz list clist
	for i in "${!SERVERS[@]}"; do
		[ "${NAME[i]}" = "$BASELINE" ] && b=$i
	done
	if [ "$b" -lt 0 ]; then
		echo "run.sh: --baseline $BASELINE: no server of that name" >&2
		return 0
	fi
	echo "ratio to ${NAME[b]}, paired by round: median (lowest-highest)" \
		"of $ROUNDS round(s)"
	echo "(hold: memory per connection, lower is better); ${NAME[b]}/server:"
	echo "the same the other way round, ${NAME[b]} as a multiple of the server;"
	echo "cpu/op: the server's CPU time per operation (hold: per connection"
	echo "opened) over ${NAME[b]}'s, lower is better"
	printf "%-6s %-${NAMEW}s %8s  %-14s %-9s %8s  %s\n" scen server ratio range \
		"${NAME[b]}/server" cpu/op range
	for s in "${SCENARIOS[@]}"; do
		scen=${s%%|*}
		if [ -n "$ONLY" ] && [[ ",$ONLY," != *",$scen,"* ]]; then
			continue
		fi
		for i in "${!SERVERS[@]}"; do
			[ "$i" = "$b" ] && continue
			list="" clist=""
			for ((r = 1; r <= ROUNDS; r++)); do
				ra=$(grep -h '^RESULT' "$TMP/$scen.$i.$r" \
					2>/dev/null || true)
				rz=$(grep -h '^RESULT' "$TMP/$scen.$b.$r" \
					2>/dev/null || true)
				a=$(value_of "$scen" "$ra") z=$(value_of "$scen" "$rz")
				list="$list $a/$z"
				a=$(cpu_of "$scen" "$ra") z=$(cpu_of "$scen" "$rz")
				clist="$clist $a/$z"
			done
			printf "%-6s %-${NAMEW}s %s %s\n" "$scen" "${NAME[i]}" \
				"$(paired "$list" 0)" "$(paired "$clist" 1)"
		done
	done
}

main() {
	local i s r scen args order found=0
	server_names
	if [ -n "$BASELINE" ]; then
		for i in "${!SERVERS[@]}"; do
			[ "${NAME[i]}" = "$BASELINE" ] && found=1
		done
		if [ "$found" = 0 ]; then
			echo "run.sh: --baseline $BASELINE: no server of that name" \
				"(the servers: ${NAME[*]})" >&2
			exit 64
		fi
	fi
	echo "run.sh: load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
	for s in "${SCENARIOS[@]}"; do
		scen=${s%%|*} args=${s#*|}
		if [ -n "$ONLY" ] && [[ ",$ONLY," != *",$scen,"* ]]; then
			continue
		fi
		for ((r = 1; r <= ROUNDS; r++)); do
			order=$(seq 0 $((${#SERVERS[@]} - 1)))
			[ $((r % 2)) = 0 ] && order=$(tac <<<"$order")
			for i in $order; do
				echo "run.sh: $scen on ${NAME[i]} (round $r/$ROUNDS)" >&2
				run_one "$args" "$i" "$TMP/$scen.$i.$r"
			done
		done
	done
	if [ -n "$OUT" ]; then
		printf '#scen\tserver\techo\tconns\tvalue\tunit\topen\tp50_us\tp99_us\terrors\trss_kb\tpss_kb\tcpu_us\tcpu_per\tcpu_s\tcpu_coarse\tprocs\texit\tcommand\n' \
			>"$OUT/summary.tsv"
		report | tee "$OUT/table.txt"
	else
		report
	fi
}

report() {
	local i s r scen held="" plain=""
	for i in "${!SERVERS[@]}"; do
		[ "$(hold_of "$i")" = "$HOLD" ] ||
			held="$held, ${NAME[i]} $(hold_of "$i")"
	done
	echo
	echo "echo benchmark: ${SECS} s measured after ${WARMUP} s warm-up," \
		"$(nproc) CPUs shared by client and server, a fresh server" \
		"per run, median of $ROUNDS round(s)"
	printf "%-6s %-${NAMEW}s %18s %13s %9s %9s %7s %8s %8s %7s  %s\n" scen \
		server rate cpu_us/op p50_us p99_us errors rss_kB pss_kB \
		B/conn exit
	for s in "${SCENARIOS[@]}"; do
		scen=${s%%|*}
		if [ -n "$ONLY" ] && [[ ",$ONLY," != *",$scen,"* ]]; then
			continue
		fi
		for i in "${!SERVERS[@]}"; do
			row "$scen" "$i"
		done
	done
	echo
	echo "scenarios: conn = connect, 64-byte line, close, 32 at once from 16"
	echo "source addresses; pp32/pp256 = 64-byte round trips on 32/256"
	echo "connections; bulk = 1 connection, 256 KiB in flight; hold = $HOLD"
	echo "idle connections${held:+ (${held#, })},"
	echo "then an echo check on each.  p50/p99: connect to reply"
	echo "(conn), round trip (pp), check round trip (hold: all checks are"
	echo "sent at once, so it is the time to drain them).  Memory: the"
	echo "server's processes summed, at the end; B/conn = PSS growth per idle"
	echo "connection (user space only: socket buffers are kernel memory)."
	echo "cpu_us/op: the server's CPU time (user + system, all its processes,"
	echo "reaped children included) over the measured seconds, per"
	echo "connection, round trip (rt) or MB echoed; hold: per connection"
	echo "opened, over the set-up.  ~: coarse (the kernel rounds a threaded"
	echo "process's and reaped children's times to 1/$(getconf CLK_TCK) s)."
	for i in "${!SERVERS[@]}"; do
		if [ "${PLAIN[$i]:-0}" = 1 ]; then plain="$plain, ${NAME[i]}"; fi
	done
	[ -z "$plain" ] || echo "Plain echo (replies checked unchanged, not" \
		"uppercased): ${plain#, }."
	echo
	if [ -n "$BASELINE" ]; then
		ratios
		echo
	fi
	for s in "${SCENARIOS[@]}"; do
		scen=${s%%|*}
		for i in "${!SERVERS[@]}"; do
			for ((r = 1; r <= ROUNDS; r++)); do
				[ -f "$TMP/$scen.$i.$r" ] || continue
				grep -h '^RESULT' "$TMP/$scen.$i.$r" |
					sed "s/^RESULT /RESULT server=${NAME[i]} /" || true
			done
		done
	done
}

main
