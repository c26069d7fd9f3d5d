#!/bin/sh
# Replay each libFuzzer target's seeds and regression inputs, then fuzz it
# for a bounded time (make fuzz, make fuzz-ci).
#
#   sh tests/fuzz/run.sh BUILD SECONDS TARGET...
#
# BUILD/fuzz_TARGET runs every file of tests/fuzz/corpus/TARGET/ and
# tests/fuzz/regress/TARGET/ once: any crash, leak, timeout or broken
# invariant fails.  Then it fuzzes for SECONDS, starting from those seeds
# plus what earlier runs found (BUILD/corpus/TARGET/, not checked in).  A
# crash is written to BUILD/artifacts/TARGET-crash-*: once its cause is
# fixed, the input goes into tests/fuzz/regress/TARGET/ (see README).
set -eu

b=${1:?usage: run.sh BUILD SECONDS TARGET...}
secs=${2:?usage: run.sh BUILD SECONDS TARGET...}
shift 2
mkdir -p "$b/artifacts"
for t in "$@"; do
	work=$b/corpus/$t
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

	echo "== fuzz_$t: fuzzing for $secs s"
	"$b/fuzz_$t" "$@" -max_total_time="$secs" -print_final_stats=1 \
	    "$work" "tests/fuzz/corpus/$t"
done
