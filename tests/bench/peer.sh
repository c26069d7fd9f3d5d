#!/bin/sh
# peer.sh: start one of the servers make bench-compare measures echod
# against, in the foreground, on 127.0.0.1:PORT, configured so that none of
# its own limits (connection rate, instances, per-source) is what gets
# measured, and with no name lookups.  run.sh starts it (one fresh instance
# per run, a port it picked) and stops it by pid: this script execs the
# server, so its pid is the server's.
#
#   tests/bench/peer.sh [--root DIR] [--upcase PATH] [--dir DIR] PEER PORT
#
#   xinetd         xinetd's internal echo (plain: bytes come back unchanged)
#   openbsd-inetd  openbsd-inetd's internal echo (plain)
#   tcpserver      ucspi-tcp's tcpserver running PATH (upcase) per connection
#   socat          socat TCP-LISTEN,fork with EXEC:PATH per connection
#   ncat           ncat --keep-open --exec PATH per connection
#
# --root: where xinetd and openbsd-inetd are unpacked (tests/bench/deps.sh
# puts them in build/bench/peers/root; default: the installed ones);
# --dir: where the generated configuration files and logs go.
set -eu

ROOT=""
UPCASE=build/upcase
DIR=${TMPDIR:-/tmp}

while [ $# -gt 2 ]; do
	case "$1" in
	--root) ROOT=$2; shift 2 ;;
	--upcase) UPCASE=$2; shift 2 ;;
	--dir) DIR=$2; shift 2 ;;
	*) break ;;
	esac
done
[ $# -eq 2 ] || {
	echo "usage: peer.sh [--root DIR] [--upcase PATH] [--dir DIR] PEER PORT" >&2
	exit 64
}
PEER=$1 PORT=$2
case "$PORT" in
'' | *[!0-9]*) echo "peer.sh: $PORT: not a port number" >&2; exit 64 ;;
esac
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
case "$UPCASE" in /*) ;; *) UPCASE=$(pwd)/$UPCASE ;; esac
case "$ROOT" in '' | /*) ;; *) ROOT=$(pwd)/$ROOT ;; esac

# private_exec SRC:DST... -- CMD [ARG]...: exec CMD in a mount namespace of
# its own in which each file SRC is bind-mounted over DST: the server sees
# a private /etc/services or /etc/nsswitch.conf, nothing else does.  As
# root, or as an unprivileged user with a user namespace (--map-root-user).
private_exec() {
	userns=""
	[ "$(id -u)" -eq 0 ] || userns=--map-root-user
	# shellcheck disable=SC2016 # expanded by the inner sh
	exec unshare $userns --mount --propagation private sh -c '
		while [ "$1" != -- ]; do
			mount --bind "${1%%:*}" "${1#*:}" || exit 71
			shift
		done
		shift
		exec "$@"' sh "$@"
}

case "$PEER" in
xinetd)
	# instances/per_source: no cap on concurrent servers (none by
	# default, said explicitly since many xinetd.conf files set them);
	# cps: the default 50 connections a second (then the service is off
	# for 10 s) raised out of reach; no logging
	# per connection (so no USERID or host lookups), no libwrap
	# (hosts.allow lookups), TCP_NODELAY like echod.  UNLISTED: on a port
	# of our choosing instead of /etc/services' 7.
	#
	# Whatever the configuration, xinetd's child looks up the client's
	# host name (getnameinfo) for every connection to an internal
	# service, to put it in its process title (src/child.c).  Clients
	# from 127.0.0.2 and up are not in /etc/hosts, so that would be a DNS
	# query per connection, leaving the machine: xinetd gets a private
	# /etc/nsswitch.conf that says "hosts: files", so the lookup reads
	# /etc/hosts (as it does for 127.0.0.1), fails, and stays local.
	conf=$DIR/xinetd.$PORT.conf
	nss=$DIR/nsswitch.$PORT
	if [ -f /etc/nsswitch.conf ]; then
		sed 's/^hosts:.*/hosts: files/' /etc/nsswitch.conf >"$nss"
	else
		echo "peer.sh: /etc/nsswitch.conf is missing" >&2
		exit 72
	fi
	grep -q '^hosts: files$' "$nss" || echo 'hosts: files' >>"$nss"
	cat >"$conf" <<EOF
defaults
{
	instances	= UNLIMITED
	per_source	= UNLIMITED
	cps		= 1000000 1
	log_on_success	=
	log_on_failure	=
}

service echo
{
	type		= INTERNAL UNLISTED
	id		= echo-stream
	socket_type	= stream
	protocol	= tcp
	wait		= no
	bind		= 127.0.0.1
	port		= $PORT
	flags		= NOLIBWRAP NODELAY
}
EOF
	private_exec "$nss:/etc/nsswitch.conf" -- \
		"${ROOT:-}/usr/sbin/xinetd" -dontfork -f "$conf" \
		-filelog "$DIR/xinetd.$PORT.log"
	;;
openbsd-inetd)
	# nowait.N and -R N: the default of 256 invocations a minute (then
	# the service is off for 10 minutes) raised out of reach; -q: the
	# listen backlog, 128 by default, as echod's 1024; -i: foreground.
	# No -l, so no libwrap lookups.  An internal service must be named by
	# its /etc/services name: it gets a private /etc/services that says
	# echo is on PORT.
	conf=$DIR/inetd.$PORT.conf
	services=$DIR/services.$PORT
	printf 'echo\t\t%s/tcp\n' "$PORT" >"$services"
	printf '127.0.0.1:echo\tstream\ttcp4\tnowait.1000000\troot\tinternal\n' \
		>"$conf"
	private_exec "$services:/etc/services" -- \
		"${ROOT:-}/usr/sbin/inetd" -i -q 1024 -R 1000000 "$conf"
	;;
tcpserver)
	# -c: at most 40 connections at once by default; -b: a backlog of 20
	# by default; -R -H -l 0: no ident, no reverse DNS, no local name;
	# -D: TCP_NODELAY.
	exec tcpserver -c 10000 -b 1024 -R -H -l 0 -D 127.0.0.1 "$PORT" "$UPCASE"
	;;
socat)
	# fork: a child per connection; nofork: that child execs the program
	# with the socket as its standard input and output (without it socat
	# relays through a socket pair, a second process per connection).
	# backlog: 5 by default.  No -d, so no logging but errors.
	exec socat "TCP4-LISTEN:$PORT,bind=127.0.0.1,fork,reuseaddr,backlog=1024,nodelay" \
		"EXEC:$UPCASE,nofork"
	;;
ncat)
	# --max-conns: 100 at once by default; -n: no DNS.  ncat relays
	# between the socket and the program's pipes in a child of its own.
	exec ncat -4 -n --listen 127.0.0.1 "$PORT" --keep-open \
		--max-conns 10000 --exec "$UPCASE"
	;;
*)
	echo "peer.sh: $PEER: unknown (xinetd, openbsd-inetd, tcpserver, socat, ncat)" >&2
	exit 64
	;;
esac
