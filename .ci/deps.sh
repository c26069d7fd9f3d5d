#!/bin/sh
# Install the Debian packages echod needs to build and test, if missing.
# Runs apt-get as root, or through sudo; otherwise says what to install.
#
#   sh .ci/deps.sh         what make run and make check need (haproxy:
#                          the haproxy suite runs a real one on loopback)
#   sh .ci/deps.sh tools   that, plus what make lint, check-valgrind and
#                          fuzz need (clang with its libFuzzer runtime,
#                          clang-tidy, cppcheck, valgrind); CI installs these
#   sh .ci/deps.sh uring   that of make run, plus liburing-dev for the
#                          io_uring experiment (make bench-uring)
#   sh .ci/deps.sh deb     that of make run, plus what make deb and
#                          make check-deb need: debhelper, dpkg-dev,
#                          fakeroot and lintian (make check does not)
#   sh .ci/deps.sh nspawn  that of make run, plus what make check-systemd
#                          needs to boot its container: systemd-container
#                          (systemd-nspawn) and debootstrap
set -eu

PKGS="gcc make pkg-config libconfuse-dev check libsystemd-dev libseccomp-dev netcat-openbsd iproute2 systemd mandoc util-linux haproxy prometheus"
TOOL_PKGS="clang clang-tidy cppcheck valgrind"

[ "${1:-}" = tools ] && PKGS="$PKGS $TOOL_PKGS"
[ "${1:-}" = uring ] && PKGS="$PKGS liburing-dev"
[ "${1:-}" = deb ] && PKGS="$PKGS debhelper dpkg-dev fakeroot lintian"
[ "${1:-}" = nspawn ] && PKGS="$PKGS systemd-container debootstrap"

missing_of() {
	for p in "$@"; do
		if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
		    grep -q "install ok installed"; then
			printf ' %s' "$p"
		fi
	done
}

apt_install() {
	missing=$1
	[ -z "$missing" ] && return 0
	if [ "$(id -u)" -eq 0 ]; then
		SUDO=""
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		SUDO="sudo -n"
	else
		echo "echod: missing build dependencies:$missing" >&2
		echo "echod: run as root or with sudo, or install them yourself:" >&2
		echo "    apt-get install$missing" >&2
		exit 1
	fi
	echo "echod: installing$missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq
	# shellcheck disable=SC2086
	$SUDO apt-get install -y -qq --no-install-recommends $missing
}

# shellcheck disable=SC2086
apt_install "$(missing_of $PKGS)"
[ "${1:-}" = tools ] || exit 0

# libFuzzer and the sanitizer runtimes come with libclang-rt-N-dev, N being
# the version the distribution's clang is (14 on Debian 12): only a
# recommendation of clang, which --no-install-recommends skips.
v=$(clang --version | sed -n 's/.*clang version \([0-9][0-9]*\).*/\1/p' |
    head -n 1)
if [ -z "$v" ]; then
	echo "echod: cannot tell clang's version" >&2
	exit 1
fi
apt_install "$(missing_of "libclang-rt-$v-dev")"
