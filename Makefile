# echod: a preforking uppercase-echo daemon.
#
#   make          build build/echod
#   make run      install missing build dependencies, build, run in the
#                 foreground with conf/echod.conf
#   make check    install missing dependencies, build, run every test
#   make format   clang-format the sources
#
# WERROR=1 turns warnings into errors (CI sets it).

CC ?= cc
PKG_CONFIG ?= pkg-config
B := build

PKGS := libconfuse libsystemd
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

test: $(B)/echod $(B)/check_echod
	ECHOD_BIN=$(B)/echod $(B)/check_echod

check: deps
	$(MAKE) test

format:
	clang-format -i src/*.c include/*.h tests/*.c tests/*.h

clean:
	rm -rf $(B)
