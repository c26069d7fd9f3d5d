#!/bin/sh
# Install the Debian packages echod needs to build and test, if missing.
# Runs apt-get as root, or through sudo; otherwise says what to install.
set -eu

PKGS="gcc make pkg-config libconfuse-dev check libsystemd-dev libseccomp-dev netcat-openbsd"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
	    grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

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
