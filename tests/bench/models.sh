#!/usr/bin/env bash
# models.sh: echod's server models side by side (make bench-models): the
# standard scenarios (conn, pp32, pp256, bulk, hold; tests/bench/run.sh)
# against echod once per model, the same number of workers for each, the
# models taking turns within every round, then a table and a chart
# (tests/bench/report.sh).
#
#   tests/bench/models.sh [--out DIR] [--models LIST] [--workers N]
#                         [--threads N] [--fork-hold N] [RUN.SH OPTIONS...]
#
# Each model runs as `echod -c FILE -l 127.0.0.1:PORT -w WORKERS`, FILE
# holding `model = NAME` (and for thread-pool `threads = N`), written into
# DIR/conf.  A model whose file `echod -t` refuses (an echod built before
# the model existed) is skipped with a line that says so; an echod that
# knows no `model` option at all still runs events, its only model, from
# a file without the line.
#
# What each model can hold at once bounds its hold scenario (--max-hold):
#   events                   --hold (10000): max_connections per worker
#   prefork                  WORKERS: one connection per worker; the
#                            others wait in the accept queue (so pp32 and
#                            pp256 open only WORKERS connections too: the
#                            others time out, and are counted as errors)
#   process-per-connection   --fork-hold (500): a process each
#   thread-per-connection    --fork-hold (500): a thread each
#   thread-pool              --fork-hold (500), with threads = --threads
#                            (256) per worker, so that pp256 and hold fit
set -euo pipefail

HERE=$(dirname "$0")
OUT=build/bench-models
ECHOD=build/echod
BENCH=build/echobench
ALL="events,prefork,process-per-connection,thread-per-connection,thread-pool"
MODELS=$ALL
WORKERS=2
THREADS=256
FORK_HOLD=500
HOLD=10000
RUN_ARGS=()

usage() {
	sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
	cat <<'EOF'
options:
  --out DIR        results: DIR/results.md, DIR/models.png, DIR/table.txt,
                   DIR/summary.tsv, DIR/raw/, DIR/conf/ (default
                   build/bench-models)
  --models LIST    comma-separated, from the list above (default: all)
  --workers N      workers for every model (2)
  --threads N      thread-pool: threads per worker (256)
  --fork-hold N    hold scenario for the process and thread models (500)
  --echod, --bench PATH   where things are
  --secs N --warmup N --hold N --rounds N --only LIST
                   passed to run.sh (see tests/bench/run.sh -h)
EOF
}

while [ $# -gt 0 ]; do
	case "$1" in
	--out) OUT=$2; shift 2 ;;
	--models) MODELS=$2; shift 2 ;;
	--workers) WORKERS=$2; shift 2 ;;
	--threads) THREADS=$2; shift 2 ;;
	--fork-hold) FORK_HOLD=$2; shift 2 ;;
	--echod) ECHOD=$2; shift 2 ;;
	--bench) BENCH=$2; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	--keep) shift ;; # always kept in OUT/raw
	--hold) HOLD=$2; RUN_ARGS+=("$1" "$2"); shift 2 ;;
	--secs | --warmup | --rounds | --only)
		RUN_ARGS+=("$1" "$2"); shift 2 ;;
	*) echo "models.sh: unknown argument: $1" >&2; usage >&2; exit 64 ;;
	esac
done

for x in "$ECHOD" "$BENCH"; do
	[ -x "$x" ] || { echo "models.sh: $x: not built" >&2; exit 66; }
done
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
CONF=$OUT/conf
rm -rf "$CONF"
mkdir -p "$CONF"

# hold_for MODEL: how many idle connections it is asked to hold.
hold_for() {
	case "$1" in
	events) echo "$HOLD" ;;
	prefork) echo "$WORKERS" ;;
	*) echo "$FORK_HOLD" ;;
	esac
}

# write_conf MODEL FILE [bare]: the model's configuration file; "bare"
# leaves the model line out (events, for an echod without the option).
write_conf() {
	{
		echo "# written by tests/bench/models.sh"
		[ "${3:-}" = bare ] || echo "model = $1"
		[ "$1" != thread-pool ] || echo "threads = $THREADS"
	} >"$2"
}

# accepts FILE: does `echod -t` take it?  Its complaint in $REFUSED.
REFUSED=""
accepts() {
	REFUSED=$("$ECHOD" -t -c "$1" -l 127.0.0.1:1 -w "$WORKERS" 2>&1 >/dev/null) &&
		return 0
	# the first line, without the file's name and the list of options
	REFUSED=$(head -n 1 <<<"$REFUSED" | sed -e 's/; allowed: .*//' \
		-e "s|^echod: $1:\([0-9]*\): *|line \1: |" -e "s|^echod: $1: *||")
	return 1
}

SERVER_ARGS=()
MEASURED=()
NOTES=()
IFS=, read -r -a LIST <<<"$MODELS"
for m in "${LIST[@]}"; do
	if [[ ",$ALL," != *",$m,"* ]]; then
		echo "models.sh: $m: no such model ($ALL)" >&2
		exit 64
	fi
	f=$CONF/$m.conf
	write_conf "$m" "$f"
	if ! accepts "$f"; then
		if [ "$m" = events ] && [[ $REFUSED == *"no such option 'model'"* ]]; then
			write_conf "$m" "$f" bare
			accepts "$f" || {
				echo "models.sh: echod -t refuses $f: $REFUSED" >&2
				exit 1
			}
			NOTES+=("events: this echod has no \`model\` option; events is its only model, run without the line")
		else
			echo "models.sh: skipping $m: echod -t refuses \`model = $m\`: $REFUSED" >&2
			NOTES+=("$m: not measured: \`echod -t\` refuses \`model = $m\` ($REFUSED)")
			continue
		fi
	fi
	SERVER_ARGS+=(--name "$m" --max-hold "$(hold_for "$m")"
		--server "$ECHOD -c $f -l 127.0.0.1:{port} -w $WORKERS")
	MEASURED+=("$m")
done
if [ ${#MEASURED[@]} -eq 0 ]; then
	echo "models.sh: no model to measure" >&2
	exit 1
fi
if [ "${MEASURED[0]}" = events ] && [ ${#MEASURED[@]} -gt 1 ]; then
	RUN_ARGS+=(--baseline events)
fi

echo "models.sh: models: ${MEASURED[*]}; $WORKERS workers each; results in $OUT" >&2
"$HERE/run.sh" --bench "$BENCH" --out "$OUT" "${SERVER_ARGS[@]}" \
	"${RUN_ARGS[@]}"
"$HERE/report.sh" "$OUT" "echod's server models, side by side, $WORKERS workers each" \
	models.png
{
	echo
	echo "Every model: \`echod -c conf/MODEL.conf -l 127.0.0.1:PORT -w $WORKERS\`;"
	echo "thread-pool with \`threads = $THREADS\` per worker.  Idle connections"
	echo "asked of each in the hold scenario: events $HOLD; prefork $WORKERS"
	echo "(one per worker: the others would wait in the accept queue; for"
	echo "the same reason prefork serves only $WORKERS of pp32's and pp256's"
	echo "connections, the others time out: counted as errors); the process"
	echo "and thread models $FORK_HOLD.  PSS/conn is what the server grew by"
	echo "per idle connection: thread-pool's threads and their stacks exist"
	echo "before the first connection, so its cost is in the PSS total (last"
	echo "table), not in the growth."
	for n in "${NOTES[@]}"; do
		echo
		echo "$n."
	done
} >>"$OUT/results.md"
for n in "${NOTES[@]}"; do
	echo "models.sh: $n" >&2
done
echo "models.sh: results in $OUT (results.md, models.png, table.txt)"
