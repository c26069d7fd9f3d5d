#!/bin/sh
# Replay each libFuzzer target's seeds and regression inputs, then fuzz it
# (make fuzz, make fuzz-ci).
#
#   sh tests/fuzz/run.sh BUILD SECONDS TARGET...   open-ended (make fuzz)
#   sh tests/fuzz/run.sh BUILD runs=N TARGET...    deterministic (fuzz-ci)
#
# BUILD/fuzz_TARGET runs every file of tests/fuzz/corpus/TARGET/ and
# tests/fuzz/regress/TARGET/ once: any crash, leak, timeout or broken
# invariant fails.  Then, open-ended, it fuzzes for SECONDS with a random
# seed, starting from those seeds plus what earlier runs found
# (BUILD/corpus/TARGET/, not checked in).  With runs=N it makes exactly N
# runs from seed 1 and the checked-in seeds only, so that the same tree
# always runs the same inputs: CI never fails because a random campaign
# found an old bug.  A crash is written to BUILD/artifacts/TARGET-crash-*:
# once its cause is fixed, the input goes into tests/fuzz/regress/TARGET/
# (see README).
set -eu

usage="usage: run.sh BUILD SECONDS|runs=N TARGET..."
b=${1:?$usage}
limit=${2:?$usage}
shift 2
mkdir -p "$b/artifacts"
case $limit in
runs=*[!0-9]* | runs=) echo "$usage" >&2; exit 64 ;;
runs=*) ;;
*[!0-9]* | '') echo "$usage" >&2; exit 64 ;;
esac
for t in "$@"; do
	work=$b/corpus/$t
	case $limit in
	runs=*)
		# A fresh directory: what earlier runs found must not change
		# what this one runs.
		work=$b/ci-corpus/$t
		rm -rf "$work"
		;;
	esac
	mkdir -p "$work"
	set -- -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
	    -artifact_prefix="$b/artifacts/$t-"
	if [ -f "tests/fuzz/$t.dict" ]; then
		set -- "$@" -dict="tests/fuzz/$t.dict"
	fi
	# The example configuration is a seed as it stands today.
	if [ "$t" = conf ]; then
		cp conf/echod.conf "$work/echod.conf"
	fi

	echo "== fuzz_$t: replaying seeds and regressions"
	for d in "tests/fuzz/corpus/$t" "tests/fuzz/regress/$t"; do
		if [ -d "$d" ]; then
			find "$d" -type f
		fi
	done | sort >"$b/$t.replay"
	n=$(wc -l <"$b/$t.replay")
	# shellcheck disable=SC2046 # one argument per file, names are ours
	"$b/fuzz_$t" "$@" $(cat "$b/$t.replay") 2>"$b/$t.replay.log" || {
		cat "$b/$t.replay.log" >&2
		echo "fuzz_$t: a seed or regression input fails" >&2
		exit 1
	}
	echo "fuzz_$t: $n inputs OK"

	case $limit in
	runs=*)
		echo "== fuzz_$t: ${limit#runs=} runs from seed 1"
		"$b/fuzz_$t" "$@" -seed=1 -runs="${limit#runs=}" \
		    -print_final_stats=1 "$work" "tests/fuzz/corpus/$t"
		;;
	*)
		echo "== fuzz_$t: fuzzing for $limit s"
		"$b/fuzz_$t" "$@" -max_total_time="$limit" \
		    -print_final_stats=1 "$work" "tests/fuzz/corpus/$t"
		;;
	esac
done
