# wait.sh: what the shell tests share (sourced: tests/deb/check.sh,
# tests/systemd/check.sh, and tests/systemd/inside.sh, which check.sh
# copies into the container beside it).

# wait_for SECONDS COMMAND...: poll COMMAND every 0.1 s until it succeeds;
# 1 if it has not within SECONDS.  A deadline, not a sleep: it returns as
# soon as COMMAND does.
wait_for() {
	n=$(($1 * 10))
	shift
	while [ "$n" -gt 0 ]; do
		"$@" && return 0
		n=$((n - 1))
		sleep 0.1
	done
	return 1
}
