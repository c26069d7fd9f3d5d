#!/bin/sh
# Run the tests under a dynamic checker; fail on any report it makes.
#
#   sh .ci/sanitize.sh asan BUILD      make check-asan: every suite, with
#                                      BUILD/echod and BUILD/check_echod
#                                      built with ASan and UBSan
#   sh .ci/sanitize.sh tsan BUILD      make check-tsan: the suites that
#                                      run the thread models (service and
#                                      every model* suite in suites.h), with
#                                      BUILD/echod and BUILD/check_echod
#                                      built with ThreadSanitizer
#   sh .ci/sanitize.sh valgrind BUILD  make check-valgrind: the unit suites
#                                      under memcheck (CK_FORK=no), then the
#                                      daemon itself under memcheck, master
#                                      and workers, serving service tests
#
# A report in a daemon the integration tests start does not necessarily
# fail the test that started it (a worker may die and be replaced), so every
# process writes its reports into one directory of files, and any report
# there fails the run, whatever the tests said.  Started as root, echod runs
# as nobody after binding: the directory is world-writable (sticky, in
# /tmp, since nobody may not reach the source tree).
set -eu

mode=${1:?usage: sanitize.sh asan|tsan|valgrind BUILD}
b=${2:?usage: sanitize.sh asan|tsan|valgrind BUILD}
top=$(pwd)
logs=$(mktemp -d "/tmp/echod-$mode.XXXXXX")
chmod 1777 "$logs"
failed=0

# Lines a checker writes that are not reports: see the comments.
benign() {
	grep -v -E \
	    -e '^==[0-9]+==Unable to get registers from thread [0-9]+\.$' \
	    -e '^==[0-9]+== Warning: set address range perms: large range' \
	    -e '^--[0-9]+-- WARNING: unhandled amd64-linux syscall: 317$' \
	    -e '^--[0-9]+-- You may be able to write your own handler\.$' \
	    -e '^--[0-9]+-- Read the file README_MISSING_SYSCALL_OR_IOCTL\.$' \
	    -e '^--[0-9]+-- Nevertheless we consider this a bug\.  Please report$' \
	    -e '^--[0-9]+-- it at http://valgrind\.org/support/bug_reports\.html\.$' \
	    "$1" || true
}
# LeakSanitizer's tracer prints "Unable to get registers" when the process
# it examines at exit is SIGKILLed meanwhile, as the supervision tests do
# to workers: the process is gone, there is nothing to check.  Valgrind
# warns about the 1 MiB+ mappings of a worker's connection table, and does
# not implement seccomp(2) (syscall 317): a worker under valgrind gets
# ENOSYS, logs "sandbox not available", and runs without it, as designed
# for kernels without seccomp.  Those five lines are that warning.

# Print every log holding anything but benign lines; 0 if there is none.
scan() {
	found=0
	for f in "$logs"/*; do
		[ -f "$f" ] || continue
		if [ -n "$(benign "$f")" ]; then
			echo "---- $f ----"
			cat "$f"
			found=1
		fi
	done
	return $found
}

run() {
	echo "== $*"
	"$@" || failed=1
}

case $mode in
asan)
	# Any report is fatal to the process and lands in $logs (the
	# reports of a daemon's processes too: they inherit this
	# environment).  allocator_may_return_null: echod handles ENOMEM
	# itself, and a test makes a worker's calloc fail on purpose.
	ASAN_OPTIONS="halt_on_error=1:detect_leaks=1"
	ASAN_OPTIONS="$ASAN_OPTIONS:allocator_may_return_null=1"
	ASAN_OPTIONS="$ASAN_OPTIONS:detect_stack_use_after_return=1"
	ASAN_OPTIONS="$ASAN_OPTIONS:strict_string_checks=1"
	ASAN_OPTIONS="$ASAN_OPTIONS:log_path=$logs/asan"
	UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$logs/ubsan"
	export ASAN_OPTIONS UBSAN_OPTIONS
	run env ECHOD_BIN="$b/echod" "$b/check_echod"
	;;
tsan)
	# TSan maps its shadow memory at fixed addresses; clang 14's runtime
	# dies with "unexpected memory mapping" on kernels that randomise
	# mmap more than it expects (vm.mmap_rnd_bits above 28).  Then the
	# runs go without address randomisation (setarch -R, inherited by
	# every process the tests start).
	pre=
	probe=$(TSAN_OPTIONS='' "$b/echod" -V 2>&1) || true
	case $probe in
	*"unexpected memory mapping"*)
		echo "tsan: unexpected memory mapping" \
		    "(vm.mmap_rnd_bits=$(cat /proc/sys/vm/mmap_rnd_bits" \
		    "2>/dev/null)): running under setarch -R"
		pre="setarch $(uname -m) -R"
		;;
	esac
	# Any report is fatal to the process and lands in $logs (the
	# daemon's processes' too).  The suites: service (the default
	# model), models_unit (serve_conn in threads), and modelrun's
	# scenarios that exercise the thread models' shared state under
	# every model, the PROXY header path among them (issue 12).
	# Left out here, and run everywhere else: in_force
	# counts a worker's threads (TSan's runtime adds one of its own),
	# crash kills a thread with a signal (TSan defers asynchronous
	# signals to its own points), and stop_deadline, heartbeat and
	# exhaustion time the drain, the heartbeat and the daemon's CPU,
	# which TSan's slowdown (5-15x) breaks.
	TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1"
	TSAN_OPTIONS="$TSAN_OPTIONS:log_path=$logs/tsan"
	export TSAN_OPTIONS
	for s in service models_unit modelrun:interactive modelrun:every_byte \
	    modelrun:stream modelrun:capacity modelrun:non_reader \
	    modelrun:idle modelrun:lifetime modelrun:per_ip modelrun:killed \
	    modelrun:stop modelrun:reload modelrun:proxy_headers \
	    modelrun:proxy_guard modelrun:proxy_per_ip modelrun:proxy_burst \
	    modelrun:proxy_flood modelrun:proxy_scoreboard; do
		c=
		case $s in *:*) c=${s#*:} s=${s%%:*} ;; esac
		# shellcheck disable=SC2086 # $pre is words
		run env CK_RUN_SUITE="$s" ${c:+CK_RUN_CASE=$c} \
		    ECHOD_BIN="$b/echod" $pre "$b/check_echod"
	done
	;;
valgrind)
	# --run-libc-freeres=no: glibc's exit-time clean-up runs clearenv(),
	# which orphans the copy of environ that proctitle_init() made (it
	# has to move it to write titles over the old one) and valgrind
	# would call it lost.  --vgdb=no: no FIFOs in /tmp, which a daemon
	# that dropped root could not remove at exit (and says so).
	vg="valgrind -q --error-exitcode=99 --leak-check=full"
	vg="$vg --show-leak-kinds=definite --errors-for-leak-kinds=definite"
	vg="$vg --num-callers=30 --run-libc-freeres=no --vgdb=no"
	# Whole unit suites, then the pure-decision cases of suites that
	# also start the daemon (SUITE:CASE).  models_unit starts no daemon
	# (its serve_conn runs over a socketpair, in threads of this process);
	# modelrun's decisions are the harness's per-model tables.
	for s in echo cidr conf conftext account listener pool conn climit \
	    models_unit probe:decisions notify:decisions notify:sending \
	    log:pure worker:decisions daemon:paths sandbox:decisions \
	    reload:plan helpers:procfs modelrun:decisions proxy http \
	    metrics:pure; do
		c=
		case $s in *:*) c=${s#*:} s=${s%%:*} ;; esac
		# shellcheck disable=SC2086 # $vg is words
		run env CK_FORK=no CK_RUN_SUITE=$s ${c:+CK_RUN_CASE=$c} \
		    $vg --log-file="$logs/unit-$s$c.%p" "$b/check_echod"
	done
	# The daemon under memcheck: master and every worker (forks are
	# followed; --trace-children for any exec), each into its own log.
	# The seccomp sandbox is turned off in the file it is given (a copy
	# beside it): valgrind makes system calls of its own from inside the
	# worker, and the filter, rightly, kills them.  The sandbox has its
	# own tests (check_sandbox, check_attack) outside valgrind.
	cat >"$logs/echod" <<-EOF
	#!/bin/sh
	n=\$#
	while [ "\$n" -gt 0 ]; do
		a=\$1; shift; n=\$((n - 1))
		if [ "\$a" = -c ] && [ "\$n" -gt 0 ]; then
			f=\$1; shift; n=\$((n - 1))
			sed '/^[[:space:]]*sandbox[[:space:]]*=/d' "\$f" >"\$f.vg"
			echo 'sandbox = off' >>"\$f.vg"
			set -- "\$@" -c "\$f.vg"
		else
			set -- "\$@" "\$a"
		fi
	done
	exec $vg --trace-children=yes --child-silent-after-fork=no \\
	    --log-file="$logs/echod.%p" "$top/$b/echod" "\$@"
	EOF
	chmod 755 "$logs/echod"
	for c in echo stream; do
		run env ECHOD_BIN="$logs/echod" CK_RUN_SUITE=service \
		    CK_RUN_CASE=$c "$b/check_echod"
	done
	# Every server model's code under memcheck: interactive echo under
	# each of the five (threads, forked children and all).
	run env ECHOD_BIN="$logs/echod" CK_RUN_SUITE=modelrun \
	    CK_RUN_CASE=interactive "$b/check_echod"
	rm -f "$logs/echod"
	;;
*)
	echo "sanitize.sh: unknown mode '$mode'" >&2
	exit 64
	;;
esac

if ! scan; then
	echo "$mode: reports above; every log is in $logs" >&2
	exit 1
fi
if [ "$failed" -ne 0 ]; then
	echo "$mode: tests failed (logs in $logs)" >&2
	exit 1
fi
rm -rf "$logs"
echo "$mode: no reports"
