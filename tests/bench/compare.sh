#!/usr/bin/env bash
# compare.sh: the standard scenarios against echod and against the servers
# a user might install instead, one after another in one run (run.sh), then
# a markdown table and a chart (report.sh): the rates, and what each
# server's whole process tree spent in CPU time per operation (run.sh).
# make bench-compare runs it after tests/bench/deps.sh.
#
#   tests/bench/compare.sh [--out DIR] [--ref PATH] [--peers LIST]
#                          [--fork-hold N] [RUN.SH OPTIONS...]
#
#   echod          build/echod, 2 workers (one per CPU)
#   xinetd         internal echo service: plain echo, a process per connection
#   openbsd-inetd  internal echo service: plain echo, a process per connection
#   tcpserver      ucspi-tcp, build/upcase per connection
#   socat          TCP-LISTEN,fork + EXEC:build/upcase,nofork per connection
#   ncat           --keep-open --exec build/upcase per connection
#   ref            only with --ref PATH: PATH -p {port} -n 2 (a yardstick)
#
# The inetds' internal echo sends bytes back unchanged, so they are checked
# as a plain echo (echobench -e); the others run a real uppercasing program
# (tests/bench/upcase.c) per connection and are checked like echod.  The
# servers with a process per connection hold --fork-hold (1000)
# connections in the hold scenario instead of --hold (10000).
set -euo pipefail

OUT=build/bench
REF=""
PEERS="echod,xinetd,openbsd-inetd,tcpserver,socat,ncat"
FORK_HOLD=1000
ECHOD=build/echod
BENCH=build/echobench
UPCASE=build/upcase
PEERDIR=build/bench/peers
HERE=$(dirname "$0")
RUN_ARGS=()

usage() {
	sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
	cat <<'EOF'
options:
  --out DIR        results: DIR/results.md, DIR/compare.png, DIR/table.txt,
                   DIR/summary.tsv, DIR/raw/ (default build/bench)
  --ref PATH       also measure this reference server (PATH -p PORT -n 2)
  --peers LIST     comma-separated, from the list above (default: all)
  --fork-hold N    hold scenario for the process-per-connection peers (1000)
  --echod, --bench, --upcase PATH, --peer-dir DIR   where things are
  --secs N --warmup N --hold N --rounds N --only LIST
                   passed to run.sh (see tests/bench/run.sh -h)
EOF
}

while [ $# -gt 0 ]; do
	case "$1" in
	--out) OUT=$2; shift 2 ;;
	--ref) REF=$2; shift 2 ;;
	--peers) PEERS=$2; shift 2 ;;
	--fork-hold) FORK_HOLD=$2; shift 2 ;;
	--echod) ECHOD=$2; shift 2 ;;
	--bench) BENCH=$2; shift 2 ;;
	--upcase) UPCASE=$2; shift 2 ;;
	--peer-dir) PEERDIR=$2; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	--keep) shift ;; # always kept in OUT/raw
	--secs | --warmup | --hold | --rounds | --only)
		RUN_ARGS+=("$1" "$2"); shift 2 ;;
	*) echo "compare.sh: unknown argument: $1" >&2; usage >&2; exit 64 ;;
	esac
done

need() { # need PATH-OR-COMMAND WHAT
	if [[ $1 == */* ]]; then
		[ -x "$1" ] && return 0
	else
		command -v "$1" >/dev/null 2>&1 && return 0
	fi
	echo "compare.sh: $2 ($1) is missing: make bench-compare installs it" \
		"(tests/bench/deps.sh)" >&2
	exit 66
}

need "$ECHOD" echod
need "$BENCH" echobench
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
CFG=$OUT/peer-conf # generated peer configuration files and their logs
rm -rf "$CFG"
mkdir -p "$CFG"
PEER="$HERE/peer.sh --root $PEERDIR/root --upcase $UPCASE --dir $CFG"

SERVER_ARGS=()
IFS=, read -r -a LIST <<<"$PEERS"
[ -z "$REF" ] || LIST+=(ref)
for p in "${LIST[@]}"; do
	case "$p" in
	echod)
		SERVER_ARGS+=(--name echod
			--server "$ECHOD -l 127.0.0.1:{port} -w 2") ;;
	xinetd)
		need "$PEERDIR/root/usr/sbin/xinetd" xinetd
		SERVER_ARGS+=(--name xinetd --plain --max-hold "$FORK_HOLD"
			--server "$PEER xinetd {port}") ;;
	openbsd-inetd)
		need "$PEERDIR/root/usr/sbin/inetd" "openbsd-inetd's inetd"
		need unshare unshare
		SERVER_ARGS+=(--name openbsd-inetd --plain --max-hold "$FORK_HOLD"
			--server "$PEER openbsd-inetd {port}") ;;
	tcpserver | socat | ncat)
		need "$p" "$p"
		need "$UPCASE" "upcase (make build/upcase)"
		SERVER_ARGS+=(--name "$p" --max-hold "$FORK_HOLD"
			--server "$PEER $p {port}") ;;
	ref)
		need "$REF" "the reference server"
		SERVER_ARGS+=(--name ref --server "$REF -p {port} -n 2") ;;
	*) echo "compare.sh: $p: unknown peer" >&2; exit 64 ;;
	esac
done

# Every server as a ratio to echod, paired round by round (and echod as a
# multiple of each).
for p in "${LIST[@]}"; do
	[ "$p" = echod ] && RUN_ARGS+=(--baseline echod)
done
echo "compare.sh: servers: ${LIST[*]}; results in $OUT" >&2
"$HERE/run.sh" --bench "$BENCH" --out "$OUT" "${SERVER_ARGS[@]}" \
	"${RUN_ARGS[@]}"
"$HERE/report.sh" "$OUT"
