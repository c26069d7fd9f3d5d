#!/bin/sh
# deps.sh: what make bench-compare needs besides echod's own build
# dependencies (.ci/deps.sh), from Debian's packages; with --chart, only
# what make bench-models needs.
#
#   tests/bench/deps.sh [PEERS-DIR]     (default build/bench/peers)
#   tests/bench/deps.sh --chart         only what make bench-models needs:
#                                       gnuplot-nox, iproute2, procps
#
# Installs with apt-get, as root or through sudo (otherwise prints the
# command and stops): the peers that are plain programs (ucspi-tcp,
# socat, ncat), gnuplot-nox for the chart, iproute2 and procps (ss, ps),
# and the libraries the two inetds link with.
#
# xinetd and openbsd-inetd are NOT installed: they conflict with each other
# (both are an inet-superserver) and installing either one adds a system
# service.  Their packages are fetched with `apt-get download` and unpacked
# with `dpkg-deb -x` into PEERS-DIR/root, from where tests/bench/peer.sh
# runs them with private configuration files.  Nothing outside PEERS-DIR
# changes for them.
set -eu

DIR=${1:-build/bench/peers}
PKGS="ucspi-tcp socat ncat gnuplot-nox iproute2 procps util-linux"
# what xinetd and openbsd-inetd link with (Debian 12)
LIBS="libwrap0 libtirpc3 libbsd0 libevent-2.1-7 libselinux1 libsystemd0"
UNPACK="xinetd openbsd-inetd"
if [ "$DIR" = --chart ]; then # no peers
	PKGS="gnuplot-nox iproute2 procps" LIBS="" UNPACK=""
fi

if [ "$(id -u)" -eq 0 ]; then
	SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
	SUDO="sudo -n"
else
	SUDO=none
fi

missing=""
for p in $PKGS $LIBS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
	    grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done

updated=0
if [ -n "$missing" ]; then
	if [ "$SUDO" = none ]; then
		echo "bench: missing packages:$missing" >&2
		echo "bench-compare: run as root or with sudo, or install them" \
		    "yourself:" >&2
		echo "    apt-get install --no-install-recommends$missing" >&2
		exit 1
	fi
	echo "bench: installing with apt-get:$missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq
	updated=1
	# shellcheck disable=SC2086
	$SUDO apt-get install -y -qq --no-install-recommends $missing
fi

[ -n "$UNPACK" ] || exit 0

# The inetds: unpacked, never installed.
if [ ! -x "$DIR/root/usr/sbin/xinetd" ] || [ ! -x "$DIR/root/usr/sbin/inetd" ]; then
	echo "bench-compare: fetching $UNPACK with apt-get download and" \
	    "unpacking them into $DIR/root (not installed: no system service)" >&2
	mkdir -p "$DIR/debs"
	rm -f "$DIR"/debs/*.deb
	# shellcheck disable=SC2086
	if ! (cd "$DIR/debs" && apt-get download $UNPACK 2>/dev/null); then
		if [ "$updated" = 0 ] && [ "$SUDO" != none ]; then
			$SUDO apt-get update -qq
			# shellcheck disable=SC2086
			(cd "$DIR/debs" && apt-get download $UNPACK)
		else
			echo "bench-compare: apt-get download $UNPACK failed" \
			    "(apt-get update first?)" >&2
			exit 1
		fi
	fi
	rm -rf "$DIR/root"
	for deb in "$DIR"/debs/*.deb; do
		dpkg-deb -x "$deb" "$DIR/root"
	done
fi

for bin in "$DIR/root/usr/sbin/xinetd" "$DIR/root/usr/sbin/inetd"; do
	if ldd "$bin" 2>/dev/null | grep -q 'not found'; then
		echo "bench-compare: $bin needs libraries that are missing:" >&2
		ldd "$bin" | grep 'not found' >&2
		exit 1
	fi
done
