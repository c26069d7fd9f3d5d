# echod: a preforking uppercase-echo daemon.
#
#   make          build build/echod
#   make run      install missing build dependencies, build, run in the
#                 foreground with conf/echod.conf
#   make check    install missing dependencies, build, run every test
#   make format   clang-format the sources
#   make deb      the Debian package, build/deb/echod_<version>_<arch>.deb,
#                 lintian-clean (make check-deb installs and tests it; see
#                 "Debian package" below)
#   make check-systemd  make deb, then the package under a real systemd in
#                 a container (systemd-nspawn, root only; see "Under a real
#                 systemd" below)
#
# Checkers (CI runs them all after make check; see "Checkers" below):
#
#   make lint            cppcheck and clang-tidy on src/, nothing reported
#   make check-asan      every test, daemon and runner built with ASan and
#                        UBSan (in build-asan/); any report fails
#   make check-tsan      the service and model suites, daemon and runner
#                        built with TSan (in build-tsan/); any report fails
#   make check-valgrind  the unit suites, then the daemon serving service
#                        tests, under valgrind memcheck; any error fails
#   make fuzz            the libFuzzer targets (tests/fuzz/), FUZZ_SECONDS
#                        (60) each, after replaying seeds and regressions
#   make fuzz-ci         the replay, then FUZZ_CI_RUNS (10000) runs each
#                        from seed 1: the same inputs every time
#
# WERROR=1 turns warnings into errors (CI sets it).

CC ?= cc
PKG_CONFIG ?= pkg-config
B := build

PKGS := libconfuse libsystemd libseccomp
TEST_PKGS := check

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wpointer-arith -Wcast-qual -Wformat=2
ifeq ($(WERROR),1)
WARN += -Werror
endif

CFLAGS ?= -O2 -g
ECHOD_CFLAGS := -std=gnu11 $(WARN) -Iinclude -D_GNU_SOURCE \
	$(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
ECHOD_LIBS := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)
TEST_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(TEST_PKGS) 2>/dev/null)
TEST_LIBS := $(shell $(PKG_CONFIG) --libs $(TEST_PKGS) 2>/dev/null)

LIB_SRCS := $(filter-out src/main.c,$(wildcard src/*.c))
LIB_OBJS := $(LIB_SRCS:src/%.c=$(B)/obj/%.o)
TEST_SRCS := $(wildcard tests/*.c)
TEST_OBJS := $(TEST_SRCS:tests/%.c=$(B)/tests/%.o)
HDRS := $(wildcard include/*.h) $(wildcard tests/*.h)

.PHONY: all run check deps test format clean

all: $(B)/echod

$(B)/obj $(B)/tests:
	mkdir -p $@

$(B)/obj/%.o: src/%.c $(HDRS) Makefile | $(B)/obj
	$(CC) $(ECHOD_CFLAGS) $(CFLAGS) -c -o $@ $<

$(B)/libechod.a: $(LIB_OBJS)
	rm -f $@
	ar rcs $@ $^

$(B)/echod: $(B)/obj/main.o $(B)/libechod.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(ECHOD_LIBS)

$(B)/tests/%.o: tests/%.c $(HDRS) Makefile | $(B)/tests
	$(CC) $(ECHOD_CFLAGS) $(TEST_CFLAGS) $(CFLAGS) -c -o $@ $<

$(B)/check_echod: $(TEST_OBJS) $(B)/libechod.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(ECHOD_LIBS) $(TEST_LIBS)

# Installs what is missing (apt-get as root or through sudo), or says why not.
deps:
	@sh .ci/deps.sh

run: deps
	$(MAKE) $(B)/echod
	$(B)/echod -c conf/echod.conf

test: $(B)/echod $(B)/check_echod $(B)/echoclient
	ECHOD_BIN=$(B)/echod $(B)/check_echod

check: deps
	$(MAKE) test

format:
	clang-format -i src/*.c include/*.h tests/*.c tests/*.h

clean:
	rm -rf $(B) $(ASAN_B) $(TSAN_B) $(FUZZ_B)

# Installation (root, or DESTDIR for a staging tree / package):
#
#   make install   [DESTDIR=] [PREFIX=/usr/local] [SBINDIR=] [SYSCONFDIR=]
#                  [MANDIR=] [SYSTEMDUNITDIR=]
#   make uninstall (same variables)
#
# SYSCONFDIR is /etc whatever PREFIX is: /etc/echod/echod.conf is the file
# echod reads when started without -c.  SYSTEMDUNITDIR is systemd's own
# unit directory (pkg-config), else $(PREFIX)/lib/systemd/system.  The
# units are installed with their echod and configuration paths rewritten
# for SBINDIR and SYSCONFDIR.  An existing configuration file is never
# overwritten, and uninstall leaves it in place.

PREFIX ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
SYSCONFDIR ?= /etc
MANDIR ?= $(PREFIX)/share/man
SYSTEMD_PC_UNITDIR = $(shell $(PKG_CONFIG) \
	--variable=systemdsystemunitdir systemd 2>/dev/null)
SYSTEMDUNITDIR ?= $(or $(strip $(SYSTEMD_PC_UNITDIR)),$(PREFIX)/lib/systemd/system)
INSTALL ?= install

# The checked-in units name the default paths; this rewrites them.
UNIT_SED := sed -e 's|/usr/local/sbin/echod|$(SBINDIR)/echod|g' \
	-e 's|/etc/echod/|$(SYSCONFDIR)/echod/|g'
INSTALLED_CONF := $(DESTDIR)$(SYSCONFDIR)/echod/echod.conf

.PHONY: install uninstall

install: $(B)/echod
	$(INSTALL) -d "$(DESTDIR)$(SBINDIR)" "$(DESTDIR)$(SYSTEMDUNITDIR)" \
	    "$(DESTDIR)$(MANDIR)/man8" "$(DESTDIR)$(MANDIR)/man5" \
	    "$(DESTDIR)$(SYSCONFDIR)/echod"
	$(INSTALL) -m 0755 $(B)/echod "$(DESTDIR)$(SBINDIR)/echod"
	for u in echod.service echod.socket; do \
	    $(UNIT_SED) conf/$$u >"$(DESTDIR)$(SYSTEMDUNITDIR)/$$u.tmp" && \
	    chmod 0644 "$(DESTDIR)$(SYSTEMDUNITDIR)/$$u.tmp" && \
	    mv -f "$(DESTDIR)$(SYSTEMDUNITDIR)/$$u.tmp" \
	        "$(DESTDIR)$(SYSTEMDUNITDIR)/$$u" || exit 1; \
	done
	$(INSTALL) -m 0644 man/echod.8 "$(DESTDIR)$(MANDIR)/man8/echod.8"
	$(INSTALL) -m 0644 man/echod.conf.5 \
	    "$(DESTDIR)$(MANDIR)/man5/echod.conf.5"
	@if [ -e "$(INSTALLED_CONF)" ]; then \
	    echo "keeping the existing $(INSTALLED_CONF);" \
	        "the example is conf/echod.conf"; \
	else \
	    echo "$(INSTALL) -m 0644 conf/echod.conf $(INSTALLED_CONF)"; \
	    $(INSTALL) -m 0644 conf/echod.conf "$(INSTALLED_CONF)"; \
	fi

uninstall:
	rm -f "$(DESTDIR)$(SBINDIR)/echod" \
	    "$(DESTDIR)$(SYSTEMDUNITDIR)/echod.service" \
	    "$(DESTDIR)$(SYSTEMDUNITDIR)/echod.socket" \
	    "$(DESTDIR)$(MANDIR)/man8/echod.8" \
	    "$(DESTDIR)$(MANDIR)/man5/echod.conf.5"
	@if [ -e "$(INSTALLED_CONF)" ]; then \
	    echo "kept $(INSTALLED_CONF) (your configuration):" \
	        "remove it by hand if you no longer want it"; \
	fi

# The long runs (minutes): chaos with workers killed under load, thousands
# of idle clients, a client that never reads, a 512 MiB stream.
.PHONY: check-stress
check-stress: $(B)/echod $(B)/check_echod
	CK_RUN_SUITE=stress ECHOD_STRESS=1 ECHOD_BIN=$(B)/echod $(B)/check_echod

# ---- Checkers ----------------------------------------------------------
#
# Their tools are not needed by make run or make check, so only these
# targets install them (sh .ci/deps.sh tools): clang and its sanitizer and
# libFuzzer runtimes, clang-tidy, cppcheck, valgrind.

ASAN_B := build-asan
FUZZ_B := build-fuzz
SAN := -fsanitize=address,undefined -fno-sanitize-recover=all
ASAN_CFLAGS := -O1 -g -fno-omit-frame-pointer $(SAN)

CPPCHECK ?= cppcheck
CLANG_TIDY ?= clang-tidy
# clang, not gcc: its ASan runtime carries UBSan, so UBSan's reports go to
# log_path's files too (gcc's separate libubsan writes them to stderr only,
# which for the daemon is a test's log).
SAN_CC ?= clang
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_CI_RUNS ?= 10000

.PHONY: deps-tools lint check-asan check-tsan check-valgrind fuzz fuzz-ci \
	fuzz-build

deps-tools:
	@sh .ci/deps.sh tools

# cppcheck's suppressions and clang-tidy's disabled checks each say why.
# clang-tidy runs once per file: with several files in one run, clang-tidy
# 14's valist checker reports every va_list after the first file as
# uninitialized.
lint: deps-tools
	$(CPPCHECK) --quiet --error-exitcode=1 --inline-suppr \
	    --enable=warning,style,performance,portability \
	    --std=c11 --library=gnu -D_GNU_SOURCE -Iinclude \
	    --suppressions-list=.cppcheck-suppressions \
	    --template='{file}:{line}: {severity}: {message} [{id}]' src
	@fail=0; for f in $(wildcard src/*.c); do \
	    echo "$(CLANG_TIDY) $$f"; \
	    out=$$($(CLANG_TIDY) --quiet "$$f" -- $(ECHOD_CFLAGS) 2>&1) || \
	        fail=1; \
	    printf '%s\n' "$$out" | grep -v ' generated\.$$' || true; \
	done; exit $$fail

# The same sources, test runner and rules as make test, into build-asan/.
check-asan: deps deps-tools
	$(MAKE) B=$(ASAN_B) CC=$(SAN_CC) CFLAGS="$(ASAN_CFLAGS)" \
	    LDFLAGS="$(SAN)" $(ASAN_B)/echod $(ASAN_B)/check_echod \
	    $(ASAN_B)/echoclient
	sh .ci/sanitize.sh asan $(ASAN_B)

# ThreadSanitizer, for the thread models: echod and the runner built with
# clang -fsanitize=thread into build-tsan/, then the suites that run them
# (service and every suite named model*, .ci/sanitize.sh tsan).  TSan is
# not ASan (sandbox.c's own test sees only ASan and MSan): -DSANITIZED=1
# tells it that this is a sanitizer build too, whose runtime makes system
# calls the seccomp filter cannot foresee, so the filter stays off.
TSAN_B := build-tsan
TSAN := -fsanitize=thread
TSAN_CFLAGS := -O1 -g -fno-omit-frame-pointer $(TSAN) -DSANITIZED=1

check-tsan: deps deps-tools
	$(MAKE) B=$(TSAN_B) CC=$(SAN_CC) CFLAGS="$(TSAN_CFLAGS)" \
	    LDFLAGS="$(TSAN)" $(TSAN_B)/echod $(TSAN_B)/check_echod
	sh .ci/sanitize.sh tsan $(TSAN_B)

check-valgrind: deps deps-tools
	$(MAKE) $(B)/echod $(B)/check_echod
	sh .ci/sanitize.sh valgrind $(B)

# libFuzzer targets: clang, the library's sources instrumented for
# coverage, ASan and UBSan.  fuzz_conn links a copy of conn.o whose read()
# and send() go through the target's fault injector (tests/fuzz/fuzz_conn.c).
FUZZ_CFLAGS := -O1 -g -fno-omit-frame-pointer $(SAN) \
	-fsanitize=fuzzer-no-link
FUZZ_LIB_OBJS := $(LIB_SRCS:src/%.c=$(FUZZ_B)/obj/%.o)
FUZZ_HDRS := $(HDRS) $(wildcard tests/fuzz/*.h)

$(FUZZ_B)/obj $(FUZZ_B)/fuzz:
	mkdir -p $@

$(FUZZ_B)/obj/%.o: src/%.c $(HDRS) Makefile | $(FUZZ_B)/obj
	$(FUZZ_CC) $(ECHOD_CFLAGS) $(FUZZ_CFLAGS) -c -o $@ $<

$(FUZZ_B)/libechod.a: $(FUZZ_LIB_OBJS)
	rm -f $@
	ar rcs $@ $^

$(FUZZ_B)/fuzz/%.o: tests/fuzz/%.c $(FUZZ_HDRS) Makefile | $(FUZZ_B)/fuzz
	$(FUZZ_CC) $(ECHOD_CFLAGS) $(FUZZ_CFLAGS) -c -o $@ $<

$(FUZZ_B)/obj/conn-inject.o: $(FUZZ_B)/obj/conn.o
	objcopy --redefine-sym read=fuzz_conn_read \
	    --redefine-sym send=fuzz_conn_send $< $@

$(FUZZ_B)/fuzz_conf: $(FUZZ_B)/fuzz/fuzz_conf.o $(FUZZ_B)/libechod.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $^ $(ECHOD_LIBS)

$(FUZZ_B)/fuzz_proxy: $(FUZZ_B)/fuzz/fuzz_proxy.o $(FUZZ_B)/obj/proxy.o
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $^

$(FUZZ_B)/fuzz_http: $(FUZZ_B)/fuzz/fuzz_http.o $(FUZZ_B)/obj/http.o
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $^

# conn.c also names its peers (listener.c), reads the PROXY header
# (proxy.c) and publishes a client on the scoreboard: those come from the
# library, after the injected copy of conn.o (which wins).
$(FUZZ_B)/fuzz_conn: $(FUZZ_B)/fuzz/fuzz_conn.o \
    $(FUZZ_B)/obj/conn-inject.o $(FUZZ_B)/obj/echo.o $(FUZZ_B)/libechod.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $^ $(ECHOD_LIBS)

fuzz-build: deps-tools
	$(MAKE) $(FUZZ_B)/fuzz_conf $(FUZZ_B)/fuzz_conn $(FUZZ_B)/fuzz_proxy \
	    $(FUZZ_B)/fuzz_http

fuzz: fuzz-build
	sh tests/fuzz/run.sh $(FUZZ_B) $(FUZZ_SECONDS) conf conn proxy http

# Deterministic, for CI: a fixed seed and number of runs from the
# checked-in corpus, so a submission never fails because a random campaign
# found an old bug.  Open-ended fuzzing is make fuzz.
fuzz-ci: fuzz-build
	sh tests/fuzz/run.sh $(FUZZ_B) runs=$(FUZZ_CI_RUNS) conf conn proxy http

# Benchmarks (tests/bench/): never part of `make check`.
#
#   make bench-tool  build build/echobench, the load generator, and
#                    build/upperbench, the uppercase transform alone
#   make bench       start build/echod on 127.0.0.1 (a free port, 2
#                    workers), run the standard scenarios, print a table
#                    (the rate, and the server's CPU time per operation
#                    over its whole process tree), stop it.
#                    BENCH_ARGS= passes options to run.sh, e.g.
#                    BENCH_ARGS='--secs 5 --rounds 3' (see run.sh -h).
#                    REF=PATH runs a reference server (PATH -p PORT -n 2)
#                    side by side, round by round, and prints echod's
#                    figures as ratios to it.  Then build/upperbench
#                    prints the transform's speed (GB/s) next to a byte
#                    loop's.

.PHONY: bench-tool bench demo

# make demo [MODEL=events]: the lecture's run (tests/bench/demo.sh):
# echod on 127.0.0.1 (a free port) with 3 workers and `model = MODEL`
# (thread-pool: 1 worker x 3 threads, as the lecture's pool), 30 clients
# of build/echoclient sending 5 random words each with random pauses of
# up to 3 s; prints every exchange, echod's line for every connection it
# closes (which worker served it), then who served whom, and stops echod
# by pid.  DEMO_ARGS= passes options to demo.sh (e.g. '--clients 5
# --pause 1 --seed 7'; demo.sh -h).
MODEL ?= events

demo: deps
	$(MAKE) $(B)/echod $(B)/echoclient
	tests/bench/demo.sh --echod $(B)/echod --client $(B)/echoclient \
	    --model $(MODEL) $(DEMO_ARGS)

bench-tool: $(B)/echobench $(B)/upperbench

$(B)/echobench: tests/bench/echobench.c tests/bench/proctree.h Makefile | $(B)/obj
	$(CC) -std=gnu11 $(WARN) -D_GNU_SOURCE $(CFLAGS) $(LDFLAGS) -o $@ $<

# The lecture's random keep-alive client (make demo, the client suite).
$(B)/echoclient: tests/bench/echoclient.c Makefile | $(B)/obj
	$(CC) -std=gnu11 $(WARN) -D_GNU_SOURCE $(CFLAGS) $(LDFLAGS) -o $@ $<

$(B)/upperbench: tests/bench/upperbench.c src/echo.c include/echo.h Makefile \
    | $(B)/obj
	$(CC) -std=gnu11 $(WARN) -Iinclude $(CFLAGS) $(LDFLAGS) -o $@ \
	    tests/bench/upperbench.c src/echo.c

bench: deps
	$(MAKE) $(B)/echod $(B)/echobench $(B)/upperbench
	tests/bench/run.sh --bench $(B)/echobench \
	    --name echod --server "$(B)/echod -l 127.0.0.1:{port} -w 2" \
	    $(if $(REF),--name ref --server "$(REF) -p {port} -n 2" \
	    --baseline ref) $(BENCH_ARGS)
	$(B)/upperbench

# make bench-hotpath: what one echoed message costs a worker, natively
# (CPU time per round trip) and under callgrind (user-space instructions
# per round trip, by function, from a -fno-inline build in
# build/hotpath), with the share that supervision takes: heartbeat,
# scoreboard, idle and age lists, balancing (tests/bench/hotpath.sh).
# Needs valgrind (installed with the lint tools).

.PHONY: bench-hotpath

bench-hotpath: deps deps-tools
	$(MAKE) $(B)/echod $(B)/echobench
	$(MAKE) B=$(B)/hotpath CFLAGS='-O2 -g -fno-inline' $(B)/hotpath/echod
	tests/bench/hotpath.sh $(BENCH_ARGS)

# make bench-uring: an experiment.  tests/bench/uring/uring_echo.c is a
# minimal io_uring uppercase echo (multishot accept and recv, a provided
# buffer ring); this runs it side by side with echod, round by round, to
# see whether an io_uring backend would pay (REF=PATH adds a reference
# server).  Installs liburing-dev if missing.  Not part of echod.

.PHONY: bench-uring

$(B)/uring_echo: tests/bench/uring/uring_echo.c Makefile | $(B)/obj
	$(CC) -std=gnu11 $(WARN) $(CFLAGS) $(LDFLAGS) -o $@ $< -luring

bench-uring: deps
	@sh .ci/deps.sh uring
	$(MAKE) $(B)/echod $(B)/echobench $(B)/uring_echo
	tests/bench/run.sh --bench $(B)/echobench --only conn,pp32,pp256,bulk \
	    --name echod --server "$(B)/echod -l 127.0.0.1:{port} -w 2" \
	    --name uring --server "$(B)/uring_echo -p {port} -n 2" \
	    $(if $(REF),--name ref --server "$(REF) -p {port} -n 2") \
	    --baseline echod $(BENCH_ARGS)

# make bench-compare: the same scenarios, one after another in one run,
# against echod and against the servers a user might install instead:
# xinetd's and openbsd-inetd's internal echo (plain echo, checked as such),
# tcpserver (ucspi-tcp), socat ... fork and ncat --keep-open --exec, the
# last three running build/upcase per connection (tests/bench/compare.sh,
# peer.sh for how each is configured).  Beside each rate, the server's CPU
# time per operation (its whole process tree, reaped children included).
# REF=PATH adds a reference server (PATH -p PORT -n 2).  BENCH_ARGS=
# passes options (compare.sh -h).
# Writes build/bench/results.md, build/bench/compare.png (gnuplot) and
# the raw results under build/bench/.
#
# Installs what is missing first, with apt-get (root or sudo; otherwise it
# prints the command): echod's build dependencies, then ucspi-tcp socat
# ncat gnuplot-nox iproute2 procps and the libraries of the inetds.
# xinetd and openbsd-inetd themselves are not installed (they conflict
# with each other and bring a system service): tests/bench/deps.sh fetches
# them with apt-get download and unpacks them into build/bench/peers.

.PHONY: bench-compare

$(B)/upcase: tests/bench/upcase.c Makefile | $(B)/obj
	$(CC) -std=gnu11 $(WARN) $(CFLAGS) $(LDFLAGS) -o $@ $<

bench-compare: deps
	@sh tests/bench/deps.sh $(B)/bench/peers
	$(MAKE) $(B)/echod $(B)/echobench $(B)/upcase
	tests/bench/compare.sh --echod $(B)/echod --bench $(B)/echobench \
	    --upcase $(B)/upcase --peer-dir $(B)/bench/peers --out $(B)/bench \
	    $(if $(REF),--ref $(REF)) $(BENCH_ARGS)

# make bench-models: the same scenarios against echod once per server model
# (events, prefork, process-per-connection, thread-per-connection,
# thread-pool), 2 workers each, the models taking turns round by round
# (tests/bench/models.sh: a configuration file with `model = NAME` per
# model; one that `echod -t` refuses is skipped with a line saying so).
# Per model: the rate, the server's CPU time per operation, the memory
# (PSS) per idle connection and how many it held.  Writes
# build/bench-models/results.md, models.png (gnuplot, installed by
# tests/bench/deps.sh --chart), table.txt and the raw results, and prints
# the directory.  BENCH_ARGS= passes options (models.sh -h), e.g.
# BENCH_ARGS='--rounds 3 --secs 2'.

.PHONY: bench-models

bench-models: deps
	@sh tests/bench/deps.sh --chart
	$(MAKE) $(B)/echod $(B)/echobench
	tests/bench/models.sh --echod $(B)/echod --bench $(B)/echobench \
	    --out $(B)/bench-models $(BENCH_ARGS)

# make bench-haproxy: what HAProxy in front of echod costs (issue 12,
# tests/bench/haproxy.sh): the conn, pp32 and bulk scenarios against one
# echod directly, then through HAProxy (send-proxy-v2) to one echod and to
# two (leastconn), taking turns round by round, 3 rounds; the rates and
# the CPU time per operation as ratios to the direct run, paired by round,
# and that CPU time split into HAProxy's part and echod's.  Needs haproxy
# (installed by make deps).  Writes build/bench-haproxy/table.txt,
# split.txt and the raw results.  BENCH_ARGS= passes options
# (haproxy.sh -h), e.g. BENCH_ARGS='--rounds 5 --secs 5'.

.PHONY: bench-haproxy

bench-haproxy: deps
	$(MAKE) $(B)/echod $(B)/echobench
	tests/bench/haproxy.sh --echod $(B)/echod --bench $(B)/echobench \
	    --out $(B)/bench-haproxy $(BENCH_ARGS)

# ---- Debian package ----------------------------------------------------
#
#   make deb        build/deb/echod_<version>_<arch>.deb from debian/ (dh,
#                   debhelper compat 13): installs debhelper, dpkg-dev,
#                   fakeroot and lintian when missing (sh .ci/deps.sh deb),
#                   copies the tree without .git and build output into
#                   build/deb/echod-<version>/ and runs dpkg-buildpackage
#                   -us -uc -b there (this tree stays as it is), then
#                   lintian on the .deb: any error or warning fails.
#   make check-deb  make deb, then tests/deb/check.sh on that .deb: its
#                   contents and metadata, dpkg -i, the installed echod -t
#                   and echod on a loopback port, dpkg --purge and what it
#                   leaves.  Installs into this machine: root only (it
#                   skips, saying so, otherwise).
#
# The version is include/version.h's ECHOD_VERSION; debian/rules refuses a
# debian/changelog that names another.

.PHONY: deb check-deb

ECHOD_VERSION := $(shell sed -n 's/^\#define ECHOD_VERSION "\(.*\)"/\1/p' \
	include/version.h)
DEB_B := $(B)/deb
DEB_SRC := $(DEB_B)/echod-$(ECHOD_VERSION)
DEB_ARCH = $(shell dpkg --print-architecture)
DEB_FILE = $(DEB_B)/echod_$(ECHOD_VERSION)_$(DEB_ARCH).deb

# MAKEFLAGS is dropped: this make's command-line variables (B=, CFLAGS=)
# are not the package build's.
deb:
	@sh .ci/deps.sh deb
	rm -rf $(DEB_B)
	mkdir -p $(DEB_SRC)
	tar -cf - --anchored --exclude=./.git --exclude='./build*' \
	    --exclude=./debian/echod --exclude=./debian/.debhelper \
	    --exclude=./debian/files --exclude='./debian/*.substvars' \
	    --exclude=./debian/debhelper-build-stamp . | tar -xf - -C $(DEB_SRC)
	cd $(DEB_SRC) && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
	    dpkg-buildpackage -us -uc -b
	lintian --fail-on error,warning --display-info $(DEB_FILE)
	@echo "make deb: $(DEB_FILE)"

check-deb: deb
	sh tests/deb/check.sh $(DEB_FILE)

# make bench-metrics: what the /metrics endpoint (metrics_listen) costs
# (tests/bench/metrics.sh).  First the CPU time per scrape of the master,
# of the `echod: metrics` process and of the workers: 1000 scrapes back
# to back, /proc/PID/schedstat before and after.  Then the standard
# scenarios against three echods side by side, paired by round: plain (no
# metrics_listen, as make bench runs it), scraped (a scraper GETs
# /metrics every second while it runs) and plain-again (a control: the
# machine's noise), the last two as ratios to plain.  Writes
# build/bench-metrics/results.md.  BENCH_ARGS= passes options
# (metrics.sh -h), e.g. BENCH_ARGS='--rounds 5 --only conn,pp32'.

.PHONY: bench-metrics

bench-metrics: deps
	$(MAKE) $(B)/echod $(B)/echobench
	tests/bench/metrics.sh --echod $(B)/echod --bench $(B)/echobench \
	    --out $(B)/bench-metrics $(BENCH_ARGS)

# ---- Under a real systemd ------------------------------------------------
#
#   make check-systemd  make deb, then tests/systemd/check.sh on that .deb:
#                   boots a minimal Debian (debootstrap minbase from this
#                   machine's mirror, cached in /var/cache/echod-nspawn;
#                   ECHOD_NSPAWN_CACHE= elsewhere) with systemd-nspawn -b
#                   on a throwaway overlay of it, installs the package
#                   and runs tests/systemd/inside.sh there: enable --now,
#                   echo, the worker sandbox, journal priorities, reload
#                   (held connection, broken file), restart under a client
#                   loop, the watchdog, echod.socket, stop draining,
#                   systemd-analyze security, and an in-place package
#                   upgrade (a second .deb, VERSION+upgradetest1, over
#                   the running echod).  Root only: it skips, saying
#                   so, otherwise; installs systemd-container and
#                   debootstrap when missing (sh .ci/deps.sh nspawn).

.PHONY: check-systemd

check-systemd: deb
	sh tests/systemd/check.sh $(DEB_FILE)
