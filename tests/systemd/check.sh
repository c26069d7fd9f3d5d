#!/bin/sh
# tests/systemd/check.sh DEB: the package under a real systemd, in a
# container.
#
# Run by make check-systemd (after make deb) with the .deb it built:
#   1. a minimal Debian root file system (debootstrap --variant=minbase,
#      this machine's release and architecture, from this machine's own
#      Debian mirror as /etc/apt/sources.list* names it, else
#      deb.debian.org) with systemd, dbus, netcat-openbsd and the
#      package's Depends, cached in $ECHOD_NSPAWN_CACHE
#      (/var/cache/echod-nspawn): root/ plus root.stamp, which lists the
#      release, architecture and packages it was built with.  A root whose
#      stamp does not match is built again (into root.new, then renamed);
#   2. a throwaway view of that root for this run: an overlay mount (the
#      cache is its read-only lower layer, this run's changes go to an
#      upper directory under /tmp), or, where overlayfs cannot be mounted,
#      a copy (cp -a --reflink=auto);
#   2b. a newer build of the package (VERSION+upgradetest1), for the
#      in-place upgrade check;
#   3. systemd-nspawn -b --private-network --register=no --keep-unit
#      boots it (systemd as PID 1; --register=no: no machined here), the
#      .deb and tests/systemd/inside.sh are copied in, and inside.sh runs
#      in the container through nsenter (all its namespaces, the
#      container's PID 1 as this machine sees it): dpkg -i, then the
#      checks, one PASS or FAIL line each;
#   4. systemctl poweroff, and nothing left: no process whose root is the
#      container's, no mount under it; the overlay is unmounted and the
#      throwaway directory removed.
# Skips (exit 0, "SKIP: ...") only where this machine cannot boot a
# container: not root, or no systemd-nspawn and it cannot be installed
# (sh .ci/deps.sh nspawn).  Bounded: every wait has a deadline, inside.sh
# runs under timeout, nspawn is stopped by its pid on any exit.
set -eu

DEB=${1:?usage: tests/systemd/check.sh build/deb/echod_VERSION_ARCH.deb}
cd "$(dirname "$0")/../.."
T0=$(date +%s)
CACHE=${ECHOD_NSPAWN_CACHE:-/var/cache/echod-nspawn}
NAME=echod-check-$$
WORK=
NSPAWN=
LEADER=
MOUNTED=
CGS=
INSIDE=

say() { echo "check-systemd: $*"; }
fail() {
	echo "check-systemd: FAIL: $*" >&2
	exit 1
}
skip() {
	echo "check-systemd: SKIP: $*" >&2
	exit 0
}

# shellcheck source=tests/wait.sh
. tests/wait.sh

alive() { [ -n "$NSPAWN" ] && kill -0 "$NSPAWN" 2>/dev/null; }

# Where PID 1 is not systemd, nspawn --keep-unit makes its payload/ and
# supervisor/ cgroups beside whatever cgroup it runs in, and nobody
# removes them: give it one of its own (named after this run, in the
# name=systemd and unified hierarchies), removed at the end.  Under
# systemd they live in the caller's unit, which systemd cleans up.
cg_setup() {
	[ "$(cat /proc/1/comm)" != systemd ] || return 0
	v1=$(findmnt -rn -t cgroup -o TARGET,OPTIONS |
	    awk '$2 ~ /(^|,)name=systemd(,|$)/ { print $1; exit }')
	v2=$(findmnt -rn -t cgroup2 -o TARGET | head -n 1)
	if [ -n "$v1" ]; then
		p=$(sed -n 's/^[0-9]*:name=systemd://p' /proc/self/cgroup)
		mkdir "$v1${p%/}/$NAME" && CGS="$CGS $v1${p%/}/$NAME"
	fi
	if [ -n "$v2" ]; then
		p=$(sed -n 's/^0:://p' /proc/self/cgroup)
		mkdir "$v2${p%/}/$NAME" && CGS="$CGS $v2${p%/}/$NAME"
	fi
	return 0
}
cg_remove() {
	cg_left=
	for d in $CGS; do
		[ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
		[ -d "$d" ] && cg_left="$cg_left $d"
	done
	CGS=
	[ -z "$cg_left" ]
}
dead() { ! alive; }

# remove_tree DIR: rm -rf, after unmounting whatever is mounted under DIR
# (a debootstrap cut short leaves its proc, sys and dev mounts there),
# and never crossing into another file system.
remove_tree() {
	[ -e "$1" ] || return 0
	findmnt -rn -o TARGET | grep "^$1/" | sort -r | while read -r m; do
		umount "$m" 2>/dev/null || umount -l "$m"
	done
	rm -rf --one-file-system "$1"
}

# in_ct COMMAND...: run COMMAND in the container (every namespace of its
# PID 1), with a clean environment.
in_ct() {
	nsenter -t "$LEADER" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
	    LANG=C.UTF-8 TERM=dumb SYSTEMD_PAGER= SYSTEMD_COLORS=0 "$@"
}

stop_container() {
	alive || return 0
	if [ -n "$LEADER" ]; then
		timeout 10 nsenter -t "$LEADER" -a /bin/systemctl poweroff \
		    >/dev/null 2>&1 || true
		wait_for 30 dead && return 0
	fi
	# nspawn turns SIGTERM into a clean shutdown of the container.
	kill -TERM "$NSPAWN" 2>/dev/null || true
	wait_for 15 dead && return 0
	echo "check-systemd: systemd-nspawn (pid $NSPAWN) still running: SIGKILL" >&2
	kill -KILL "$NSPAWN" 2>/dev/null || true
	[ -n "$LEADER" ] && kill -KILL "$LEADER" 2>/dev/null
	wait_for 10 dead || true
}

cleanup() {
	rc=$?
	[ -n "$INSIDE" ] && kill "$INSIDE" 2>/dev/null
	stop_container
	if [ -n "$WORK" ]; then
		if [ $rc -ne 0 ] && [ -s "$WORK/console.log" ]; then
			echo "--- the container's console (last 30 lines):" >&2
			tail -n 30 "$WORK/console.log" >&2
		fi
		if [ -n "$MOUNTED" ]; then
			umount "$WORK/root" 2>/dev/null ||
			    umount -l "$WORK/root" 2>/dev/null || true
		fi
		remove_tree "$WORK"
	fi
	cg_remove || echo "check-systemd: cgroups not removed (busy):$cg_left" >&2
	exit $rc
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

[ -f "$DEB" ] || fail "$DEB: no such file (make deb builds it)"

# ---- can this machine boot a container? ----
[ "$(id -u)" -eq 0 ] ||
	skip "booting a container (systemd-nspawn) needs root; not tested"
if ! command -v systemd-nspawn >/dev/null 2>&1 ||
    ! command -v debootstrap >/dev/null 2>&1; then
	sh .ci/deps.sh nspawn >&2 ||
		skip "no systemd-nspawn or debootstrap, and installing" \
		    "systemd-container and debootstrap failed; not tested"
	command -v systemd-nspawn >/dev/null 2>&1 ||
		skip "no systemd-nspawn after installing systemd-container"
fi
for t in nsenter flock findmnt; do
	command -v $t >/dev/null 2>&1 || fail "$t missing (util-linux)"
done

# ---- 1. the cached root ----
SUITE=$(sed -n 's/^VERSION_CODENAME=//p' /etc/os-release | tr -d '"')
[ -n "$SUITE" ] || fail "no VERSION_CODENAME in /etc/os-release"
ARCH=$(dpkg --print-architecture)
# The package's Depends, names only (first of alternatives), sorted: the
# container has no network, so they must be in the root.
DEPS=$(dpkg-deb -f "$DEB" Depends | tr ',' '\n' | sed 's/|.*//; s/(.*//' |
    tr -d ' ' | grep . | sort -u | tr '\n' ',')
INCLUDE="systemd,systemd-sysv,dbus,netcat-openbsd,${DEPS%,}"
STAMP="release=$SUITE arch=$ARCH variant=minbase include=$INCLUDE"

# mirror: the first deb URI of this machine's sources that serves $SUITE
# itself (one-line and deb822 formats), else deb.debian.org.
mirror() {
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		awk -v s="$SUITE" '{ l = $0; sub(/\[[^]]*\][ \t]*/, "", l)
		    n = split(l, a); if (a[1] == "deb" && a[3] == s) { print a[2]; exit } }' "$f"
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk -v s="$SUITE" 'function flush() {
		    if (deb && uri != "" && suites ~ ("(^| )" s "( |$)")) {
		        print uri; done = 1 }
		    deb = 0; uri = ""; suites = "" }
		  /^[ \t]*$/ { flush(); if (done) exit; next }
		  tolower($1) == "types:" { deb = ($0 ~ / deb( |$)/) }
		  tolower($1) == "uris:" { uri = $2 }
		  tolower($1) == "suites:" { $1 = ""; suites = $0; sub(/^ /, "", suites) }
		  END { if (!done) flush() }' "$f"
	done
	echo http://deb.debian.org/debian
}

mkdir -p "$CACHE"
exec 9>"$CACHE/lock"
if [ -x "$CACHE/root/usr/lib/systemd/systemd" ] &&
    [ "$(cat "$CACHE/root.stamp" 2>/dev/null)" = "$STAMP" ]; then
	CACHED=1
else
	CACHED=0
fi
if [ $CACHED -eq 0 ]; then
	# Another run may be building it: one builder at a time.
	flock -w 600 9 || fail "$CACHE/lock: held for 10 minutes"
	if [ -x "$CACHE/root/usr/lib/systemd/systemd" ] &&
	    [ "$(cat "$CACHE/root.stamp" 2>/dev/null)" = "$STAMP" ]; then
		CACHED=1
	else
		command -v debootstrap >/dev/null 2>&1 ||
			fail "debootstrap missing (sh .ci/deps.sh nspawn)"
		MIRROR=$(mirror | head -n 1)
		say "building $CACHE/root: debootstrap $SUITE ($ARCH) from $MIRROR, with $INCLUDE"
		t=$(date +%s)
		remove_tree "$CACHE/root.new"
		nice -n 10 timeout 600 debootstrap --variant=minbase \
		    --include="$INCLUDE" "$SUITE" "$CACHE/root.new" "$MIRROR" \
		    >"$CACHE/debootstrap.log" 2>&1 ||
			{ tail -n 20 "$CACHE/debootstrap.log" >&2;
			  remove_tree "$CACHE/root.new"; fail "debootstrap (log: $CACHE/debootstrap.log)"; }
		rm -f "$CACHE/root.stamp"
		remove_tree "$CACHE/root"
		mv "$CACHE/root.new" "$CACHE/root"
		echo "$STAMP" >"$CACHE/root.stamp"
		say "root built in $(($(date +%s) - t)) s ($(du -sm "$CACHE/root" | cut -f1) MB)"
	fi
	flock -u 9
fi
[ $CACHED -eq 1 ] && say "cached root $CACHE/root ($STAMP)"
# Shared while in use: a rebuild waits for this run to end.
flock -s -w 600 9 || fail "$CACHE/lock: held for 10 minutes"

# ---- 2. the throwaway view ----
WORK=$(mktemp -d /tmp/echod-nspawn.XXXXXX)
mkdir "$WORK/root" "$WORK/upper" "$WORK/ovwork"
if mount -t overlay overlay -o "lowerdir=$CACHE/root,upperdir=$WORK/upper,workdir=$WORK/ovwork" \
    "$WORK/root" 2>"$WORK/mount.err"; then
	MOUNTED=1
	say "throwaway root: overlay on $WORK/root (lower $CACHE/root, read-only)"
else
	say "overlayfs: $(cat "$WORK/mount.err"); copying the root instead"
	rmdir "$WORK/root"
	t=$(date +%s)
	cp -a --reflink=auto "$CACHE/root" "$WORK/root"
	say "throwaway root: a copy in $WORK/root ($(($(date +%s) - t)) s)"
fi
# A newer build of the same package, for the in-place upgrade: this tree
# as make deb packs it, with VERSION+upgradetest1 in include/version.h and
# a debian/changelog entry naming it (debian/rules checks that they agree);
# built without lintian and without dh_auto_test's nocheck-able smoke test.
newer_deb() {
	v=$(sed -n 's/^#define ECHOD_VERSION "\(.*\)"/\1/p' include/version.h)
	nv="$v+upgradetest1"
	src="$WORK/newer/echod-$nv"
	mkdir -p "$src"
	tar -cf - --anchored --exclude=./.git --exclude='./build*' \
	    --exclude=./debian/echod --exclude=./debian/.debhelper \
	    --exclude=./debian/files --exclude='./debian/*.substvars' \
	    --exclude=./debian/debhelper-build-stamp . | tar -xf - -C "$src"
	sed -i "s/^#define ECHOD_VERSION \"$v\"/#define ECHOD_VERSION \"$nv\"/" \
	    "$src/include/version.h"
	who=$(sed -n 's/^ -- \(.*>\)  .*/\1/p' debian/changelog | head -n 1)
	{
		printf 'echod (%s) unstable; urgency=medium\n\n' "$nv"
		printf '  * A test build: make check-systemd upgrades to it in place.\n\n'
		printf ' -- %s  %s\n\n' "$who" "$(date -R)"
		cat debian/changelog
	} >"$src/debian/changelog"
	t=$(date +%s)
	(cd "$src" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
	    DEB_BUILD_OPTIONS=nocheck nice -n 10 timeout 900 \
	    dpkg-buildpackage -us -uc -b >"$WORK/newer/build.log" 2>&1) ||
		{ tail -n 20 "$WORK/newer/build.log" >&2; fail "building the newer package $nv"; }
	NEWDEB=$(ls "$WORK"/newer/echod_"$nv"_*.deb)
	say "newer package for the upgrade: $(basename "$NEWDEB") built in $(($(date +%s) - t)) s"
}
newer_deb
mkdir -p "$WORK/root/var/lib/echod-check"
cp "$DEB" "$NEWDEB" tests/systemd/inside.sh tests/wait.sh \
    "$WORK/root/var/lib/echod-check/"
CDEB=/var/lib/echod-check/$(basename "$DEB")
CNEWDEB=/var/lib/echod-check/$(basename "$NEWDEB")

# ---- 3. boot, and the checks ----
t=$(date +%s%N)
cg_setup
# shellcheck disable=SC2016 # $$ and $@ are the inner shell's
CGS=$CGS sh -c 'for d in $CGS; do echo $$ >"$d/cgroup.procs"; done
    exec "$@"' sh systemd-nspawn -q -D "$WORK/root" -M "$NAME" -b \
    --private-network --register=no --keep-unit --console=read-only \
    >"$WORK/console.log" 2>&1 &
NSPAWN=$!
# The container's PID 1 is nspawn's child.
leader() {
	alive || return 0
	LEADER=$(cat /proc/"$NSPAWN"/task/*/children 2>/dev/null |
	    awk '{ print $1; exit }')
	[ -n "$LEADER" ] || return 1
	[ "$(readlink /proc/"$LEADER"/exe 2>/dev/null)" = /usr/lib/systemd/systemd ]
}
if ! wait_for 30 leader || ! alive; then
	LEADER=
	fail "no container PID 1 (systemd) within 30 s"
fi
booted() {
	s=$(in_ct systemctl is-system-running 2>/dev/null) || true
	[ "$s" = running ] || [ "$s" = degraded ]
}
wait_for 60 booted ||
	fail "the container's systemd is not running within 60 s ($(in_ct systemctl is-system-running 2>&1 || true))"
state=$(in_ct systemctl is-system-running 2>&1 || true)
say "booted: systemd $(in_ct systemctl --version | awk '{ print $2; exit }'), $state, in $((($(date +%s%N) - t) / 1000000)) ms (PID 1 here: $LEADER)"
if [ "$state" = degraded ]; then
	say "failed units: $(in_ct systemctl --failed --plain --no-legend | awk '{ print $1 }' | tr '\n' ' ')"
fi

st=0
# In the background: a signal to this script is acted on at once (the
# trap runs while wait waits), not when inside.sh ends.
in_ct timeout 300 sh /var/lib/echod-check/inside.sh "$CDEB" "$CNEWDEB" &
INSIDE=$!
wait "$INSIDE" || st=$?
INSIDE=

# ---- 4. power off, nothing left ----
t=$(date +%s%N)
timeout 10 nsenter -t "$LEADER" -a /bin/systemctl poweroff >/dev/null 2>&1 ||
	fail "systemctl poweroff in the container"
wait_for 30 dead || fail "the container still runs 30 s after systemctl poweroff"
nst=0
wait "$NSPAWN" || nst=$?
NSPAWN=
say "powered off in $((($(date +%s%N) - t) / 1000000)) ms, systemd-nspawn exited $nst"
[ $nst -eq 0 ] || fail "systemd-nspawn exited with status $nst"
left=
for p in /proc/[0-9]*; do
	r=$(readlink "$p/root" 2>/dev/null) || continue
	case $r in "$WORK"/*) left="$left ${p#/proc/}" ;; esac
done
[ -z "$left" ] || fail "processes left in the container's root:$left"
m=$(findmnt -rn -o TARGET | grep -c "^$WORK/root/" || true)
[ "$m" -eq 0 ] || fail "$m mount(s) left under $WORK/root: $(findmnt -rn -o TARGET | grep "^$WORK/root/" | head -n 5 | tr '\n' ' ')"
if [ -n "$MOUNTED" ]; then
	umount "$WORK/root" || fail "umount $WORK/root"
	MOUNTED=
fi
remove_tree "$WORK"
WORK=
for d in /run/systemd/nspawn/propagate/"$NAME" /run/systemd/nspawn/unix-export/"$NAME"; do
	# nspawn does not remove these where /run is not a tmpfs.
	[ -d "$d" ] && rmdir "$d" 2>/dev/null && say "removed nspawn's empty $d"
done
[ ! -e /run/systemd/nspawn/propagate/"$NAME" ] ||
	fail "/run/systemd/nspawn/propagate/$NAME left, not empty"
cg_remove || fail "cgroups left (not empty):$cg_left"
say "nothing left: no process, no mount, no cgroup; the throwaway root removed"

[ $st -eq 0 ] || fail "inside the container: $st check(s) failed (see FAIL above)"
say "passed in $(($(date +%s) - T0)) s (root $( [ $CACHED -eq 1 ] && echo cached || echo built))"
