# shellcheck shell=bash
# lib.sh: helpers the benchmark scripts share (sourced, not run).
# Loopback only; every wait is bounded.

# A port below the ephemeral range (so no client socket holds it) that
# nothing listens on.  Racy by nature: callers retry when a start fails.
pick_port() {
	local p
	for _ in $(seq 50); do
		p=$((20000 + RANDOM % 12000))
		if [ -z "$(ss -Hltn "sport = :$p" 2>/dev/null)" ]; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# Ready means it echoes: a handshake alone only proves the kernel queued us.
# shellcheck disable=SC2016 # expanded by the inner bash
# echoes PORT REPLY
echoes() {
	timeout 2 bash -c '
		exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
		printf "ready?\n" >&3
		IFS= read -r -t 1 line <&3 && [ "$line" = "$2" ]' _ "$1" "$2" \
		2>/dev/null
}

# The value of KEY=VALUE in an echobench RESULT line.
field() { # field LINE KEY
	sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"
}
