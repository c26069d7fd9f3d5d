#!/bin/sh
# tests/systemd/inside.sh DEB: a sysadmin's checks of the echod package,
# run inside the booted container by tests/systemd/check.sh (systemd is
# PID 1 here; no network but loopback).  Installs DEB with dpkg -i, then
# prints one "PASS: ..." or "FAIL: ..." line per check, with its figure
# where it has one.  Exit status: the number of failed checks.
# Bounded: every wait polls with a deadline; every client started is
# stopped by its pid.
# Functions run through wait_for look unreachable to shellcheck:
# shellcheck disable=SC2317
set -u

DEB=${1:?usage: inside.sh /path/to/echod_VERSION_ARCH.deb [NEWER.deb]}
NEWDEB=${2:-} # a newer build: installed over DEB, an in-place upgrade
D=$(mktemp -d /var/tmp/echod-inside.XXXXXX)
ADDR=127.0.0.1
PORT=7007
CONF=/etc/echod/echod.conf
FAILS=0
HELD=
LOOP=

pass() { echo "PASS: $*"; }
fail() {
	echo "FAIL: $*"
	FAILS=$((FAILS + 1))
}
note() { echo "      $*"; }

cleanup() {
	[ -n "$HELD" ] && kill "$HELD" 2>/dev/null
	[ -n "$LOOP" ] && kill "$LOOP" 2>/dev/null
	rm -rf "$D"
}
trap cleanup EXIT
trap 'exit 100' INT TERM

# shellcheck source=tests/wait.sh
. "$(dirname "$0")/wait.sh"

now_ms() { echo $(($(date +%s%N) / 1000000)); }
prop() { systemctl show -p "$2" --value "$1"; }
main_pid() { prop echod.service MainPID; }
is() { [ "$(prop echod.service ActiveState)" = "$1" ]; }
# The running service: active, with a main process.
up() { is active && [ "$(main_pid)" != 0 ]; }

# echo_once TEXT: one client, one line; prints the reply.
echo_once() {
	printf '%s\n' "$1" | timeout 10 nc -N -w 5 "$ADDR" "$PORT" 2>&1
}
echoes() {
	r=$(echo_once "$1") && [ "$r" = "$(echo "$1" | tr '[:lower:]' '[:upper:]')" ]
}

# The journal from a mark on: mark, then since_mark [journalctl options].
mark() {
	journalctl -q -u echod -n 1 -o cat --show-cursor 2>/dev/null |
	    sed -n 's/^-- cursor: //p' >"$D/cursor"
}
since_mark() {
	c=$(cat "$D/cursor")
	if [ -n "$c" ]; then
		journalctl -q -u echod -o cat --after-cursor="$c"
	else
		journalctl -q -u echod -o cat
	fi
}
logged() { since_mark | grep -q -- "$1"; }

# A held connection: hold, then say TEXT (waits for its echo), unhold.
hold() {
	rm -f "$D/in" "$D/out"
	mkfifo "$D/in"
	nc "$ADDR" "$PORT" <"$D/in" >"$D/out" 2>"$D/nc.err" &
	HELD=$!
	exec 3>"$D/in"
}
say_held() {
	printf '%s\n' "$1" >&3 || return 1
	u=$(echo "$1" | tr '[:lower:]' '[:upper:]')
	wait_for 5 grep -qx -- "$u" "$D/out"
}
held_gone() { ! kill -0 "$HELD" 2>/dev/null; }
unhold() {
	exec 3>&-
	if [ -n "$HELD" ]; then
		wait_for 5 held_gone || kill "$HELD" 2>/dev/null
		wait "$HELD" 2>/dev/null
		HELD=
	fi
}

workers() { cat /proc/"$(main_pid)"/task/*/children 2>/dev/null; }
nworkers() { workers | wc -w; }
field() { awk -v f="$2:" '$1 == f { print $2 }' /proc/"$1"/status; }

# ---- install ----
if DEBIAN_FRONTEND=noninteractive dpkg -i "$DEB" >"$D/dpkg.log" 2>&1; then
	pass "dpkg -i $(basename "$DEB"): echod.service $(systemctl is-enabled echod), $(prop echod.service ActiveState) (the package starts it)"
else
	cat "$D/dpkg.log"
	fail "dpkg -i $DEB"
	exit "$FAILS"
fi
NW=$(nproc)

# ---- systemctl enable --now: active, Status: ----
systemctl stop echod
t=$(now_ms)
if timeout 60 systemctl enable --now echod 2>"$D/err"; then
	ms=$(($(now_ms) - t))
	st=$(systemctl status --no-pager echod 2>&1 | sed -n 's/^ *Status: //p')
	if up && [ -n "$st" ]; then
		pass "systemctl enable --now echod: active (running) in $ms ms, MainPID $(main_pid); Status: $st"
	else
		fail "enable --now: $(prop echod.service ActiveState), Status: '$st'"
	fi
else
	fail "systemctl enable --now echod: $(cat "$D/err")"
fi
wait_for 10 sh -c "[ \$(cat /proc/$(main_pid)/task/*/children | wc -w) -ge $NW ]"

# ---- an echo through nc ----
r=$(echo_once "hello, systemd")
if [ "$r" = "HELLO, SYSTEMD" ]; then
	pass "echo through nc $ADDR:$PORT: HELLO, SYSTEMD"
else
	fail "echo through nc: got '$r'"
fi

# ---- the worker sandbox is on ----
M=$(main_pid)
mf=$(field "$M" Seccomp_filters)
bad=
list=
for w in $(workers); do
	s=$(field "$w" Seccomp)
	f=$(field "$w" Seccomp_filters)
	list="$list $w:Seccomp=$s,filters=$f"
	{ [ "$s" = 2 ] && [ "$f" -gt "$mf" ]; } || bad="$bad $w"
done
mark
kill -USR1 "$M"
sb_rows() { since_mark | sed 's/^master: //' | grep -E '^ *[0-9]+ +[0-9]+ +[0-9]+ +ready '; }
sb_done() { [ "$(sb_rows | wc -l)" -ge "$(nworkers)" ]; }
wait_for 10 sb_done
# The sandbox column, by its name in the table's header.
k=$(since_mark | sed 's/^master: //' | awk '$1 == "slot" && $2 == "pid" {
    for (i = 1; i <= NF; i++) if ($i == "sandbox") { print i; exit } }')
sb=$(sb_rows | awk -v k="${k:-0}" '{ print $k }' | sort | uniq -c | sed 's/^ *//')
if [ -z "$bad" ] && [ -n "$list" ] && [ "$sb" = "$(nworkers) on" ]; then
	pass "sandbox: master $M Seccomp=$(field "$M" Seccomp),filters=$mf (the unit's), workers$list; SIGUSR1 scoreboard sandbox: $sb"
else
	fail "sandbox: master filters=$mf, workers$list (not on:$bad); scoreboard sandbox column: '$sb'"
fi

# ---- journal priorities: a killed worker is a warning ----
# (Not -p with --after-cursor: journalctl 252 then skips the first match
# when the cursor's own entry does not pass the filter.)
w=$(workers | awk '{ print $1 }')
mark
kill -KILL "$w"
warned() { journalctl -q -u echod -p warning -o cat | grep "(pid $w) killed by signal 9"; }
died() { warned >/dev/null; }
if wait_for 10 died; then
	line=$(warned | tail -n 1)
	pri=$(journalctl -q -u echod -o export -n 50 | awk -v w="(pid $w) killed" '
	    /^PRIORITY=/ { p = substr($0, 10) } /^MESSAGE=/ && index($0, w) { print p }' | tail -n 1)
	if [ "$pri" = 4 ]; then
		pass "journal: kill -9 worker $w; journalctl -u echod -p warning: \"$line\" (PRIORITY=4)"
	else
		fail "journal: the worker's death line has PRIORITY=$pri, not 4: $line"
	fi
else
	fail "journal: no warning about worker $w's death within 10 s: $(since_mark | tail -n 3)"
fi
wait_for 10 sh -c "[ \$(cat /proc/$(main_pid)/task/*/children | wc -w) -ge $NW ]" ||
	fail "no replacement worker within 10 s"

# ---- reload with a connection held open across it ----
M=$(main_pid)
hold
if say_held "before the reload"; then
	mark
	t=$(now_ms)
	timeout 30 systemctl reload echod
	if wait_for 20 logged "ready: generation"; then
		ms=$(($(now_ms) - t))
		rl=$(since_mark | grep "ready: generation" | tail -n 1)
		if say_held "after the reload" && echoes "a new client" &&
		    [ "$(main_pid)" = "$M" ] && up; then
			pass "systemctl reload echod: $ms ms to \"$rl\"; the held connection echoed after it, a new client served, MainPID $M kept"
		else
			fail "reload: held: $(tail -n 1 "$D/out"), new client: $(echo_once x), MainPID $M -> $(main_pid)"
		fi
	else
		fail "reload: no ready line within 20 s: $(since_mark | tail -n 3)"
	fi
else
	fail "reload: the held connection did not echo before the reload"
fi
unhold

# ---- a broken file on reload keeps the service up ----
M=$(main_pid)
cp -p "$CONF" "$D/echod.conf.good"
echo "no_such_option = 1" >>"$CONF"
mark
timeout 30 systemctl reload echod
if wait_for 10 logged "reload failed"; then
	line=$(since_mark | grep "reload failed" | tail -n 1)
	if up && [ "$(main_pid)" = "$M" ] && echoes "still serving"; then
		pass "broken $CONF on reload: still active, MainPID $M, the old configuration serving; log: \"$line\""
	else
		fail "broken file: $(prop echod.service ActiveState), MainPID $M -> $(main_pid), echo: $(echo_once x)"
	fi
else
	fail "broken file: no \"reload failed\" line within 10 s: $(since_mark | tail -n 3)"
fi
cp -p "$D/echod.conf.good" "$CONF"
mark
timeout 30 systemctl reload echod
wait_for 20 logged "ready: generation" || fail "the reload after restoring $CONF"

# ---- restart under a client loop ----
# client_loop FILE: clients one after another until $D/stop exists (at
# most 5000, each at most 15 s), one line each: "ok MS" or "refused MS".
client_loop() {
	i=0
	while [ ! -e "$D/stop" ] && [ $i -lt 5000 ]; do
		i=$((i + 1))
		t=$(now_ms)
		r=$(printf 'ping %s\n' $i | timeout 15 nc -N -w 12 "$ADDR" "$PORT" 2>&1)
		if [ "$r" = "PING $i" ]; then
			echo "ok $(($(now_ms) - t))"
		else
			echo "refused $(($(now_ms) - t)) $r"
		fi >>"$1"
	done
}
served() { grep -c '^ok' "$1"; }
# restart_under_loop LABEL: systemctl restart while the loop runs.
restart_under_loop() {
	rm -f "$D/stop" "$D/loop"
	: >"$D/loop"
	client_loop "$D/loop" &
	LOOP=$!
	wait_for 10 sh -c "[ \$(grep -c '^ok' $D/loop) -ge 20 ]"
	M=$(main_pid)
	t=$(now_ms)
	timeout 60 systemctl restart echod
	rs=$(($(now_ms) - t))
	n0=$(served "$D/loop")
	wait_for 10 sh -c "[ \$(grep -c '^ok' $D/loop) -ge $((n0 + 20)) ]"
	touch "$D/stop"
	loop_gone() { ! kill -0 "$LOOP" 2>/dev/null; }
	wait_for 20 loop_gone || kill "$LOOP" 2>/dev/null
	wait "$LOOP" 2>/dev/null
	LOOP=
	ok=$(served "$D/loop")
	ref=$(grep -c '^refused' "$D/loop")
	max=$(awk '$2 > m { m = $2 } END { print m + 0 }' "$D/loop")
	if [ "$ref" -eq 0 ] && [ "$(main_pid)" != "$M" ] && up; then
		pass "systemctl restart echod under a client loop$1: restart took $rs ms; clients served $ok, refused $ref, longest wait $max ms; MainPID $M -> $(main_pid)"
	else
		fail "restart under a client loop$1: served $ok, refused $ref ($(grep '^refused' "$D/loop" | head -n 2 | tr '\n' ' ')), longest $max ms, MainPID $M -> $(main_pid), $(prop echod.service ActiveState)"
	fi
}
restart_under_loop ""
# The same with one idle client held open: the old echod drains it for
# shutdown_timeout (10 s) while new clients wait in the accept queue.
hold
if say_held "idle"; then
	# Our side stays open (no FIN from nc): the old echod ends it.
	exec 3>&-
	restart_under_loop ", one idle client held"
	if wait_for 5 held_gone; then
		note "the idle client was closed by the old echod (shutdown_timeout)"
	else
		fail "restart: the idle client still open after the restart"
	fi
else
	fail "restart: the idle client did not echo"
fi
unhold

# ---- an in-place upgrade: dpkg -i of a newer build ----
# The postinst sends SIGUSR2: the same MainPID runs the new binary, the
# held connection stays with an old worker, new clients are served.
upgrade_in_place() {
	M=$(main_pid)
	v0=$(dpkg-query -W -f '${Version}' echod)
	nv=$(dpkg-deb -f "$NEWDEB" Version)
	hold
	if ! say_held "before the upgrade"; then
		fail "upgrade: the held connection did not echo before"
		return
	fi
	rm -f "$D/stop" "$D/loop"
	: >"$D/loop"
	client_loop "$D/loop" &
	LOOP=$!
	wait_for 10 sh -c "[ \$(grep -c '^ok' $D/loop) -ge 20 ]"
	mark
	t=$(now_ms)
	DEBIAN_FRONTEND=noninteractive dpkg -i "$NEWDEB" >"$D/dpkg2.log" 2>&1 ||
		{ cat "$D/dpkg2.log"; fail "dpkg -i $NEWDEB"; }
	di=$(($(now_ms) - t))
	wait_for 20 logged "ready: upgraded to $nv" || fail "upgrade: no 'ready: upgraded to $nv' within 20 s: $(since_mark | tail -n 3)"
	ms=$(($(now_ms) - t))
	n0=$(served "$D/loop")
	wait_for 10 sh -c "[ \$(grep -c '^ok' $D/loop) -ge $((n0 + 20)) ]"
	held=no
	say_held "after the upgrade" && held=yes
	touch "$D/stop"
	loop_gone() { ! kill -0 "$LOOP" 2>/dev/null; }
	wait_for 20 loop_gone || kill "$LOOP" 2>/dev/null
	wait "$LOOP" 2>/dev/null
	LOOP=
	ok=$(served "$D/loop")
	ref=$(grep -c '^refused' "$D/loop")
	max=$(awk '$2 > m { m = $2 } END { print m + 0 }' "$D/loop")
	stat=$(systemctl status --no-pager -n 60 echod 2>&1)
	spid=$(echo "$stat" | sed -n 's/^ *Main PID: \([0-9]*\).*/\1/p')
	sver=$(echo "$stat" | grep -o "ready: upgraded to $nv from $v0" | head -n 1)
	if [ "$held" = yes ] && [ "$ref" -eq 0 ] && [ "$max" -lt 1000 ] &&
	    [ "$spid" = "$M" ] && [ -n "$sver" ] && up &&
	    [ "$(/usr/sbin/echod -V)" = "echod $nv" ]; then
		pass "upgrade in place: dpkg -i $(basename "$NEWDEB") ($v0 -> $nv) under a client loop with a connection held: dpkg took $di ms, READY=1 \"ready: upgraded to\" after $ms ms; clients served $ok, refused $ref, longest wait $max ms; the held connection echoed after it; systemctl status: Main PID $spid (before: $M), \"$sver\""
	else
		fail "upgrade in place: held echoed: $held; served $ok, refused $ref, longest $max ms; Main PID $M -> '$spid'; status version: '$sver'; $(prop echod.service ActiveState); echod -V: $(/usr/sbin/echod -V)"
	fi
	exec 3>&-
	wait_for 15 logged "the last worker of the old version is gone" &&
		note "the old workers drained and exited: $(since_mark | grep 'the last worker of the old' | tail -n 1)"
	unhold
}
if [ -n "$NEWDEB" ]; then
	upgrade_in_place
fi

# ---- the watchdog restarts a stopped master ----
M=$(main_pid)
nr=$(prop echod.service NRestarts)
wd=$(prop echod.service WatchdogUSec)
t=$(now_ms)
kill -STOP "$M"
restarted() { p=$(main_pid); [ "$p" != 0 ] && [ "$p" != "$M" ] && up; }
if wait_for 120 restarted; then
	ms=$(($(now_ms) - t))
	gone=yes
	kill -0 "$M" 2>/dev/null && gone=no
	if [ "$gone" = yes ] && echoes "after the watchdog"; then
		pass "watchdog (WatchdogSec=$wd): kill -STOP master $M; new MainPID $(main_pid) active after $ms ms; NRestarts $nr -> $(prop echod.service NRestarts); serving"
	else
		fail "watchdog: old master $M gone: $gone; echo: $(echo_once x)"
	fi
	note "systemd: $(journalctl -q -o cat -u echod --since=-3min | grep 'Watchdog timeout' | tail -n 1)"
else
	kill -CONT "$M" 2>/dev/null
	fail "watchdog: no new MainPID within 120 s of kill -STOP $M ($(prop echod.service ActiveState))"
fi

# ---- socket activation through echod.socket ----
timeout 60 systemctl disable --now echod.service 2>/dev/null
timeout 30 systemctl enable --now echod.socket 2>/dev/null
mark
if is inactive && [ "$(systemctl is-active echod.socket)" = active ]; then
	r=$(echo_once "socket activated")
	if [ "$r" = "SOCKET ACTIVATED" ] && up &&
	    wait_for 5 logged "socket activation: adopted"; then
		pass "socket activation: echod.service inactive, echod.socket listening; a client was served and started echod (MainPID $(main_pid), TriggeredBy $(prop echod.service TriggeredBy)); log: \"$(since_mark | grep 'socket activation: adopted' | head -n 1)\""
	else
		fail "socket activation: reply '$r', echod.service $(prop echod.service ActiveState): $(since_mark | tail -n 3)"
	fi
else
	fail "socket activation: echod.service $(prop echod.service ActiveState), echod.socket $(systemctl is-active echod.socket)"
fi
timeout 30 systemctl disable --now echod.socket 2>/dev/null
timeout 60 systemctl stop echod.service
timeout 60 systemctl enable --now echod.service 2>/dev/null || fail "enable --now echod.service after the socket"

# ---- systemctl stop drains an open connection ----
hold
if say_held "before the stop"; then
	t=$(now_ms)
	systemctl stop --no-block echod
	stopping() { ! is active; }
	wait_for 10 stopping
	if say_held "while stopping"; then
		# nc now ends when echod closes the connection (its EOF).
		exec 3>&-
		if wait_for 30 held_gone; then
			eof=$(($(now_ms) - t))
			inactive() { is inactive || is failed; }
			wait_for 30 inactive
			ms=$(($(now_ms) - t))
			res=$(prop echod.service Result)
			if is inactive && [ "$res" = success ]; then
				pass "systemctl stop echod with an open connection: it echoed while stopping, EOF after $eof ms (shutdown_timeout), the unit inactive (Result=$res) after $ms ms"
			else
				fail "stop: the unit ended $(prop echod.service ActiveState), Result=$res"
			fi
		else
			fail "stop: the held connection not closed within 30 s"
		fi
	else
		fail "stop: the held connection did not echo while stopping ($(prop echod.service ActiveState))"
	fi
else
	fail "stop: the held connection did not echo before"
fi
unhold

# ---- systemd-analyze security ----
sec=$(systemd-analyze security --no-pager echod.service 2>&1 |
    sed -n 's/.*Overall exposure level for echod.service: \([0-9.]*\).*/\1/p')
if [ -n "$sec" ] && awk -v s="$sec" 'BEGIN { exit !(s <= 1.5) }'; then
	pass "systemd-analyze security echod: $sec (at most 1.5)"
else
	fail "systemd-analyze security echod: '$sec' (more than 1.5)"
fi

if [ "$FAILS" -ne 0 ]; then
	echo "--- journalctl -u echod (last 40 lines):"
	journalctl -q -u echod -n 40 --no-pager
fi
exit "$FAILS"
