#!/bin/sh
# tests/deb/check.sh DEB: the Debian package, built and installed.
#
# Run by make check-deb (after make deb) with the .deb it built:
#   1. contents (dpkg-deb -c): the binary, both manual pages, both units
#      with their paths rewritten for /usr/sbin, the configuration file;
#      /etc/echod/echod.conf is the one conffile;
#   2. metadata (dpkg-deb -f): the version is include/version.h's, the
#      architecture this machine's, Depends lists the shared libraries
#      (shlibs: libc6, libconfuse2, libseccomp2, libsystemd0);
#   3. as root only (dpkg -i installs into this machine): dpkg -i, the
#      installed /usr/sbin/echod -V and -t (the shipped configuration),
#      then the installed echod in the foreground on 127.0.0.1 (a free
#      port: -l 127.0.0.1:0, the port read from its "ready" line; started
#      as root it drops to nobody as the shipped file says; no systemd),
#      one echo through nc, SIGTERM by pid and its exit status; then
#      dpkg --purge and nothing left: no file of the package, no
#      /etc/echod, no unit symlink or deb-systemd-helper state, no dpkg
#      database entry.  The package makes no user (the unit runs echod
#      as a DynamicUser= one), so there is none to check.
# Steps 1 and 2 run as anyone; step 3 is skipped, saying so, when not
# root, and refused (fails) when echod is already installed here or
# /etc/echod exists: the test would overwrite and then purge them.
# Bounded: each wait polls with a deadline; everything started is
# stopped by pid, and the package purged, on any exit.
set -eu

DEB=${1:?usage: tests/deb/check.sh build/deb/echod_VERSION_ARCH.deb}
cd "$(dirname "$0")/../.."
T0=$(date +%s)
WORK=$(mktemp -d /tmp/echod-deb.XXXXXX)
PID=
INSTALLED=

fail() {
	echo "check-deb: FAIL: $*" >&2
	exit 1
}
ok() { echo "check-deb: ok: $*"; }

cleanup() {
	rc=$?
	if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
		kill -KILL "$PID" 2>/dev/null || true
	fi
	if [ -n "$INSTALLED" ]; then
		dpkg --purge echod >/dev/null 2>&1 || true
	fi
	[ $rc -eq 0 ] || { echo "--- echod's log:" >&2; cat "$WORK/echod.log" >&2 2>/dev/null || true; }
	rm -rf "$WORK"
	exit $rc
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# shellcheck source=tests/wait.sh
. tests/wait.sh

[ -f "$DEB" ] || fail "$DEB: no such file (make deb builds it)"
VERSION=$(sed -n 's/^#define ECHOD_VERSION "\(.*\)"/\1/p' include/version.h)
ARCH=$(dpkg --print-architecture)

# 1. Contents.
# Every entry, and the files and links alone (the directories are shared).
dpkg-deb -c "$DEB" | awk '{ print $6 }' >"$WORK/contents"
dpkg-deb -c "$DEB" | awk '$1 !~ /^d/ { print $6 }' >"$WORK/files"
for f in ./usr/sbin/echod ./usr/share/man/man8/echod.8.gz \
    ./usr/share/man/man5/echod.conf.5.gz ./lib/systemd/system/echod.service \
    ./lib/systemd/system/echod.socket ./etc/echod/echod.conf \
    ./usr/share/doc/echod/copyright; do
	grep -qx "$f" "$WORK/contents" || fail "$f is not in the package"
done
ok "contents: binary, echod(8), echod.conf(5), both units, echod.conf"
dpkg-deb --ctrl-tarfile "$DEB" | tar -xOf - ./conffiles >"$WORK/conffiles"
[ "$(cat "$WORK/conffiles")" = /etc/echod/echod.conf ] ||
	fail "conffiles is not just /etc/echod/echod.conf: $(cat "$WORK/conffiles")"
ok "conffiles: /etc/echod/echod.conf"
dpkg-deb --fsys-tarfile "$DEB" |
	tar -xOf - ./lib/systemd/system/echod.service >"$WORK/echod.service"
grep -qx 'ExecStart=/usr/sbin/echod -c /etc/echod/echod.conf' \
	"$WORK/echod.service" || fail "echod.service does not run /usr/sbin/echod"
ok "echod.service: ExecStart=/usr/sbin/echod -c /etc/echod/echod.conf"

# 2. Metadata.
[ "$(dpkg-deb -f "$DEB" Package)" = echod ] || fail "Package is not echod"
v=$(dpkg-deb -f "$DEB" Version)
[ "$v" = "$VERSION" ] || fail "Version $v, include/version.h says $VERSION"
a=$(dpkg-deb -f "$DEB" Architecture)
[ "$a" = "$ARCH" ] || fail "Architecture $a, this machine is $ARCH"
deps=$(dpkg-deb -f "$DEB" Depends)
for lib in libc6 libconfuse2 libseccomp2 libsystemd0; do
	echo "$deps" | grep -q "\\b$lib\\b" || fail "Depends lacks $lib: $deps"
done
ok "metadata: echod $v $a, Depends: $deps"

# 3. Installed.
if [ "$(id -u)" -ne 0 ]; then
	echo "check-deb: SKIP: installing the package (dpkg -i, dpkg --purge)" \
	    "needs root; contents and metadata checked" >&2
	exit 0
fi
if dpkg-query -W -f='${Status}' echod 2>/dev/null | grep -q installed; then
	fail "echod is installed on this machine already: not replacing it" \
	    "(dpkg --purge echod first, if it is yours to remove)"
fi
[ ! -e /etc/echod ] || fail "/etc/echod exists (make install?): the test" \
    "would purge it; move it away first"

INSTALLED=1
DEBIAN_FRONTEND=noninteractive dpkg -i "$DEB" >"$WORK/dpkg.log" 2>&1 ||
	{ cat "$WORK/dpkg.log" >&2; fail "dpkg -i $DEB"; }
[ "$(dpkg-query -W -f='${Status} ${Version}' echod)" = \
    "install ok installed $VERSION" ] || fail "dpkg does not list echod $VERSION"
dpkg-query -W -f='${Conffiles}\n' echod | grep -q '^ /etc/echod/echod.conf ' ||
	fail "dpkg does not list /etc/echod/echod.conf as a conffile"
ok "dpkg -i: echod $VERSION installed, /etc/echod/echod.conf a conffile"
# Enabled (deb-systemd-helper makes the link even where systemd is not
# running), the socket not (debian/rules says why).
[ -L /etc/systemd/system/multi-user.target.wants/echod.service ] ||
	fail "echod.service is not enabled"
[ ! -e /etc/systemd/system/sockets.target.wants/echod.socket ] ||
	fail "echod.socket is enabled"
ok "echod.service enabled, echod.socket installed but not enabled"

[ "$(/usr/sbin/echod -V)" = "echod $VERSION" ] || fail "/usr/sbin/echod -V is not echod $VERSION"
/usr/sbin/echod -t >"$WORK/t.log" 2>&1 ||
	{ cat "$WORK/t.log" >&2; fail "/usr/sbin/echod -t (the shipped /etc/echod/echod.conf)"; }
ok "/usr/sbin/echod -t: $(cut -c1-60 "$WORK/t.log")..."

# The shipped configuration, one worker, a free port on 127.0.0.1.
/usr/sbin/echod -w 1 -l 127.0.0.1:0 >"$WORK/echod.log" 2>&1 &
PID=$!
ready() { grep -q ' ready: ' "$WORK/echod.log" || ! kill -0 "$PID" 2>/dev/null; }
wait_for 15 ready || fail "echod (pid $PID) not ready within 15 s"
kill -0 "$PID" 2>/dev/null || fail "echod exited before it was ready"
port=$(sed -n 's/.* ready: .*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' \
    "$WORK/echod.log")
[ -n "$port" ] || fail "no port in echod's ready line"
reply=$(printf 'hello, package\n' | timeout 10 nc -N -w 5 127.0.0.1 "$port") ||
	fail "nc 127.0.0.1:$port"
[ "$reply" = "HELLO, PACKAGE" ] || fail "echo: got '$reply'"
ok "installed echod (pid $PID) on 127.0.0.1:$port echoed HELLO, PACKAGE"
kill -TERM "$PID"
gone() { ! kill -0 "$PID" 2>/dev/null; }
wait_for 15 gone || fail "echod (pid $PID) still running 15 s after SIGTERM"
st=0
wait "$PID" || st=$?
PID=
[ "$st" -eq 0 ] || fail "echod exited with status $st after SIGTERM"
ok "SIGTERM: echod stopped, status 0"

DEBIAN_FRONTEND=noninteractive dpkg --purge echod >"$WORK/dpkg.log" 2>&1 ||
	{ cat "$WORK/dpkg.log" >&2; fail "dpkg --purge echod"; }
INSTALLED=
if dpkg-query -W -f='${Status}' echod 2>/dev/null | grep -q 'ok installed\|config-files'; then
	fail "dpkg still lists echod: $(dpkg-query -W -f='${Status}' echod)"
fi
left=
while read -r f; do
	f=${f#.}
	if [ -e "$f" ] || [ -L "$f" ]; then left="$left $f"; fi
done <"$WORK/files"
for f in /etc/echod /etc/systemd/system/multi-user.target.wants/echod.service \
    /etc/systemd/system/sockets.target.wants/echod.socket \
    /var/lib/systemd/deb-systemd-helper-enabled/echod.service.dsh-also \
    /var/lib/systemd/deb-systemd-helper-enabled/echod.socket.dsh-also \
    /var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/echod.service \
    /var/lib/systemd/deb-systemd-helper-masked/echod.service \
    /var/lib/systemd/deb-systemd-helper-masked/echod.socket; do
	if [ -e "$f" ] || [ -L "$f" ]; then left="$left $f"; fi
done
if ls /var/lib/dpkg/info/echod.* >/dev/null 2>&1; then
	left="$left $(echo /var/lib/dpkg/info/echod.*)"
fi
[ -z "$left" ] || fail "left after dpkg --purge:$left"
ok "dpkg --purge: nothing left (files, /etc/echod, unit links, dpkg's own)"
echo "check-deb: passed in $(($(date +%s) - T0)) s"
