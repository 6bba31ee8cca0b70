# avalara-hscode: build, test, lint, install, emulator.
#
#   make                     build/lua5.4/avalara/core.so
#   make LUA=luajit          build/luajit/avalara/core.so   (also lua5.1, lua5.3)
#   make demo                `hscode batch examples/products.csv` against the emulator
#   make check               lint + the specs that need no server + one smoke spec per area (< 1 min)
#   make test                every spec suite; ends with "N passed, N failed"
#   make lint                luacheck + cppcheck
#   make emulator [PORT=18080 TLS_PORT=18443]
#   make static              build/lua5.4/libavalara_core.a and build/lua5.4/avalara-core.pc (embedding)
#   make install [PREFIX=/usr/local DESTDIR= LUA=lua5.4]   (install-lib + install-cli + install-man + install-static)
#   make man                 the man page build/man/hscode.1, made from hscode's own tables (tools/man.lua)
#   make dist                the source rocks of the library and the command -> build/dist/
#   make dist-check          installs them with LuaRocks, offline, into a fresh tree, and runs them
#   make deps                install the Debian packages (as root) or print the apt-get line
#   make fuzz [FUZZ_SECONDS=60]  every libFuzzer harness under ASan+UBSan (clang-14)
#   make bench [BENCH_ROUNDS=5 BENCH_CALLS=20000]  benchmarks against peers -> bench/RESULTS.md
#   make bench-percall       per-call cost of each layer on a fixed-body server, before and after
#   make bench-quick         the same per-call set, 3 rounds x 2000 calls (~1 minute), into build/bench/
#   make bench-openresty     the library inside nginx against a hand-made subrequest
#   make bench-batch         1,000 creates against a fixed 20 ms server at concurrency 1, 8, 32, 64
#   make bench-catalog [BENCH_ITEMS=100000]  hscode batch at catalog scale (not part of make bench)
#   make bench-redis         the Redis store per operation over TCP, mutual TLS and a Unix socket: LuaSocket,
#                            cosockets; Debian's lua-resty-redis and hiredis from C on the same server
#   make docs                LDoc reference of the Lua layer in build/docs/ (fails on warnings)

LUA      ?= lua5.4
# LuaRocks passes the interpreter's path (/usr/bin/lua5.4): its name is what counts.
override LUA := $(notdir $(LUA))
PREFIX   ?= /usr/local
DESTDIR  ?=

# pkg-config name and ABI folder ("5.4", "5.1", ...) of the chosen Lua.
ifeq ($(LUA),luajit)
LUA_PC   := luajit
LUA_ABI  := 5.1
else
LUA_PC   := $(LUA)
LUA_ABI  := $(patsubst lua%,%,$(LUA))
endif

BUILD    ?= build/$(LUA)
MODULE   := $(BUILD)/avalara/core.so
# src/protocol/ (pure C: no Lua, no libcurl; what fuzz/ links), src/transport/
# (libcurl, no Lua), src/lua/ (the Lua bindings); docs/core.md, "Layout".
SRCS     := $(wildcard src/protocol/*.c src/transport/*.c src/lua/*.c)
OBJS     := $(SRCS:src/%.c=$(BUILD)/obj/%.o)

CFLAGS   ?= -O2 -g
override CFLAGS += -Isrc -Iinclude -std=c99 -fPIC -fvisibility=hidden -Wall -Wextra -Werror -Wshadow \
            -Wstrict-prototypes -Wmissing-prototypes -D_DEFAULT_SOURCE -pthread
PKG_CFLAGS = $(shell pkg-config --cflags $(LUA_PC) libcurl)
PKG_LIBS   = $(shell pkg-config --libs libcurl)
# The module does not link liblua: the host process provides the Lua symbols.
LDFLAGS  ?=
# -z nodelete: lua_close never unloads the module, nor libcurl with it (whose
# global state would leak at each state and be set up again: docs/embedding.md).
override LDFLAGS += -shared -pthread -Wl,-z,nodelete

INSTALL_CMOD := $(DESTDIR)$(PREFIX)/lib/lua/$(LUA_ABI)
INSTALL_LMOD := $(DESTDIR)$(PREFIX)/share/lua/$(LUA_ABI)
INSTALL_BIN  := $(DESTDIR)$(PREFIX)/bin
INSTALL_INC  := $(DESTDIR)$(PREFIX)/include
INSTALL_LIB  := $(DESTDIR)$(PREFIX)/lib

# For hosts that link the core into their program (docs/embedding.md,
# "Static embedding"): the same objects as the module, the public header
# include/avalara/core.h, and a pkg-config file naming PREFIX.
STATIC_LIB := $(BUILD)/libavalara_core.a
STATIC_PC  := $(BUILD)/avalara-core.pc

DEB_PACKAGES := $(shell grep -v '^\#' .ci/debian-packages)
# The Lua layer, subfolders included (avalara/store/, avalara/cli/).
LUA_MODULES  := $(shell find lua/avalara -name '*.lua' | sort)
# The command's modules (the avalara-hscode-cli rock) and the library's (the rest).
CLI_MODULES  := $(filter lua/avalara/cli.lua lua/avalara/cli/%,$(LUA_MODULES))
LIB_MODULES  := $(filter-out $(CLI_MODULES),$(LUA_MODULES))

.PHONY: FORCE check static install-static install-lib install-cli install-man man dist dist-check bench-h2 bench-profile bench-batch all deps demo docs bench bench-tools bench-percall bench-quick bench-openresty bench-catalog bench-redis fuzz fuzz-replay test \
        test-valgrind test-asan test-matrix lint install uninstall clean emulator

all: $(MODULE)

$(BUILD)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -MMD -MP -c $< -o $@

$(MODULE): $(OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(OBJS) $(PKG_LIBS)

-include $(OBJS:.o=.d)

static: $(STATIC_LIB) $(STATIC_PC)

# Written to a temporary name, then renamed: specs may run make at the same time.
$(STATIC_LIB): $(OBJS)
	@mkdir -p $(dir $@)
	$(AR) rcs $@.$$$$ $(OBJS) && mv -f $@.$$$$ $@

# Requires the Lua it was built for (its lua.h; a host with a Lua of its own
# can skip pkg-config for that) and libcurl. The -uninstalled one, which
# pkg-config prefers when PKG_CONFIG_PATH names $(BUILD), points at the
# build and include/ (examples/embed/Makefile); install-static writes the
# installed one with PREFIX.
STATIC_PC_UNINSTALLED := $(BUILD)/avalara-core-uninstalled.pc
pc_lines = 'prefix=$(1)' 'includedir=$(2)' 'libdir=$(3)' '' \
  'Name: avalara-core' 'Description: avalara.core, the C core of avalara-hscode, for hosts that embed $(LUA)' \
  'Version: $(VERSION)' 'Requires: $(LUA_PC) libcurl' 'Cflags: -I$${includedir}' \
  'Libs: -L$${libdir} -lavalara_core -pthread'
$(STATIC_PC): FORCE
	@mkdir -p $(dir $@)
	@printf '%s\n' $(call pc_lines,$(PREFIX),$${prefix}/include,$${prefix}/lib) >$@.$$$$ && mv -f $@.$$$$ $@
	@printf '%s\n' $(call pc_lines,$(CURDIR),$(CURDIR)/include,$(abspath $(BUILD))) >$(STATIC_PC_UNINSTALLED).$$$$ && \
	  mv -f $(STATIC_PC_UNINSTALLED).$$$$ $(STATIC_PC_UNINSTALLED)
FORCE:

# Installs what is missing when run as root; otherwise names the command and
# fails. One dpkg-query for the whole list (a package it does not know is
# missing too).
deps:
	@missing=$$(dpkg-query -W -f='$${Package} $${Status}\n' $(DEB_PACKAGES) 2>/dev/null | \
	  awk '/ install ok installed$$/ { ok[$$1] = 1 } END { n = split("$(strip $(DEB_PACKAGES))", want, " "); \
	    for (i = 1; i <= n; i++) if (!(want[i] in ok) && !(want[i] in seen)) { seen[want[i]] = 1; printf " %s", want[i] } }'); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
	  echo "deps: installing$$missing"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	else \
	  echo "deps: missing packages; run as root:"; \
	  echo "  apt-get install -y --no-install-recommends$$missing"; \
	  exit 1; \
	fi

# The README's first command: the hscode command classifies
# examples/products.csv against a fresh emulator, which is stopped afterwards.
demo: deps
	$(MAKE) LUA=lua5.4
	LUA_CPATH='build/lua5.4/?.so;;' LUA_PATH='lua/?.lua;lua/?/init.lua;;' \
	  emulator/with -- bin/hscode batch examples/products.csv --env local

# Every spec file under every interpreter it applies to, several files at a
# time (spec/run; docs/contributing.md). Builds only what is out of date.
test: deps
	$(MAKE) --no-print-directory -j2 LUA=lua5.4
	$(MAKE) --no-print-directory -j2 LUA=luajit
	$(MAKE) --no-print-directory -j2 fuzz-replay
	spec/run

# The quick check before each commit (under a minute): lint, every spec that
# needs no server (spec/unit), and the specs tagged #smoke, one per
# integration area, all under Lua 5.4.
SMOKE_FILES = $(shell grep -rl '\#smoke' spec/integration spec/conformance | sort)
check: deps
	$(MAKE) --no-print-directory -j2 LUA=lua5.4
	$(MAKE) --no-print-directory -j2 fuzz-replay
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory docs
	LUAS=lua5.4 spec/run spec/unit
	LUAS=lua5.4 TAGS=smoke spec/run $(SMOKE_FILES)

# The suites that load the C module in-process (SANITIZE_SUITES) under
# valgrind (Lua 5.4 build): no definite or indirect leaks, no invalid reads
# or writes; valgrind's exit code 99 fails the run.
SANITIZE_SUITES := unit integration/core integration/client integration/cli integration/partner conformance
CLANG_SANITIZE_SUITES := unit integration/core conformance
VALGRIND := valgrind -q --keep-debuginfo=yes --suppressions=$(CURDIR)/spec/support/valgrind.supp --leak-check=full --errors-for-leak-kinds=definite,indirect \
            --show-leak-kinds=definite,indirect --error-exitcode=99 --track-origins=yes
test-valgrind: deps
	$(MAKE) LUA=lua5.4
	SUITES="$(or $(SUITES),$(SANITIZE_SUITES))" LUAS=lua5.4 WRAP="$(VALGRIND)" spec/run

# The same specs against an ASan+UBSan build of the module, loaded into the
# stock interpreter with the sanitizer runtime preloaded (spec/run passes
# PRELOAD to ld.so --preload, so the processes the specs start do not get it).
# spec/support/asan_preload.c, preloaded too, keeps the modules Lua unloads
# at exit (core.so, libcurl, OpenSSL, libldap) mapped: LeakSanitizer then sees
# their process-wide state as reachable and can name the frames of a real
# leak; it also flushes stdio before the leak check so busted's summary shows.
# (Preloading libcurl instead hangs at exit: p11-kit's destructor waits on
# glibc's setlocale lock.)
SANITIZE := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
BUILD_ASAN := build/asan/lua5.4
# Two compilers, because each catches what the other does not: the clang
# build adds float-cast-overflow (gcc's UBSan has no such check: it guards the
# number conversions of JSON, expires_in and datetimes) and clang's own
# instrumentation; it links clang's shared ASan runtime, preloaded by its full
# path. The gcc build runs every in-process suite; the clang build the suites
# that drive the C core directly (CLANG_SANITIZE_SUITES: its protocol, fuzz
# replay, transport, grants, multi, the contracts and the fault matrix). The
# Lua layer's suites reach the same C functions with the same values, so a
# second compiler adds little there and would cost CI a minute and a half.
CLANG := clang-14
CLANG_SANITIZE := -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all \
                  -fno-omit-frame-pointer -shared-libasan
BUILD_ASAN_CLANG := build/asan-clang/lua5.4
ASAN_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
test-asan: deps
	$(MAKE) deps DEB_PACKAGES="clang-14 libclang-rt-14-dev"
	$(MAKE) LUA=lua5.4 BUILD=$(BUILD_ASAN) CFLAGS="-O1 -g $(SANITIZE)" LDFLAGS="$(SANITIZE)"
	$(MAKE) LUA=lua5.4 BUILD=$(BUILD_ASAN_CLANG) CC=$(CLANG) CFLAGS="-O1 -g $(CLANG_SANITIZE)" LDFLAGS="$(CLANG_SANITIZE)"
	$(MAKE) fuzz-replay
	$(CC) -shared -fPIC -O2 -Wall -Wextra -Werror spec/support/asan_preload.c -o build/asan/asan_preload.so
	SUITES="$(or $(SUITES),$(SANITIZE_SUITES))" LUAS=lua5.4 BUILD_ROOT=build/asan \
	  PRELOAD="$$(ldd $(BUILD_ASAN)/avalara/core.so | awk '$$1 ~ /^lib(asan|ubsan)\.so/ { print $$1 }' | sort | paste -sd:):$(CURDIR)/build/asan/asan_preload.so" \
	  $(ASAN_ENV) spec/run
	SUITES="$(or $(SUITES),$(CLANG_SANITIZE_SUITES))" LUAS=lua5.4 BUILD_ROOT=build/asan-clang \
	  PRELOAD="$$($(CLANG) -print-file-name=libclang_rt.asan-x86_64.so):$(CURDIR)/build/asan/asan_preload.so" \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/spec/support/lsan-clang.supp:print_suppressions=0 $(ASAN_ENV) spec/run

# Builds for every Lua Debian ships and runs the core specs under each.
test-matrix: deps
	for l in lua5.1 lua5.3 lua5.4 luajit; do $(MAKE) LUA=$$l || exit 1; done
	SUITES="unit integration/core" LUAS="lua5.1 lua5.3 lua5.4 luajit" spec/run

lint: deps
	luacheck --no-color -q .
	cppcheck --quiet --error-exitcode=1 --std=c99 --enable=warning,style,performance,portability \
	  --inline-suppr --suppress=missingIncludeSystem --suppress=toomanyconfigs -I src -I include $(shell pkg-config --cflags-only-I $(LUA_PC)) src

# ldoc prints its warnings and still exits 0 on some of them: any line other
# than its two progress lines fails the target.
docs: deps
	@out=$$(ldoc --fatalwarnings . 2>&1); rc=$$?; echo "$$out"; \
	  test $$rc -eq 0 && ! echo "$$out" | grep -qv '^reading configuration\|^output written'

# The protocol layer the harnesses in fuzz/ exercise (no Lua, no libcurl).
FUZZERS      := $(patsubst fuzz/fuzz_%.c,%,$(wildcard fuzz/fuzz_*.c))
PROTOCOL_SRC := $(sort $(wildcard src/protocol/*.c))
# and the plain C ABI's request/response path (fuzz_abi.c): no libcurl call but curl_getdate
FUZZ_SRC     := $(PROTOCOL_SRC) src/transport/abi.c src/transport/options.c src/transport/receive.c
FUZZ_LIBS    := $(shell pkg-config --libs libcurl)
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS  := -g -O1 -std=c99 -D_DEFAULT_SOURCE -Isrc -Iinclude -fno-sanitize-recover=all -fno-omit-frame-pointer

# Each harness for FUZZ_SECONDS, seeded with fuzz/corpus and fuzz/regress;
# new inputs go to build/fuzz/corpus, crashes to build/fuzz/crashes (then
# fixed and kept in fuzz/regress/<harness>/).
fuzz: deps
	$(MAKE) deps DEB_PACKAGES="clang-14 libclang-rt-14-dev"
	@mkdir -p build/fuzz
	@set -e; for h in $(FUZZERS); do \
	  clang-14 $(FUZZ_CFLAGS) -fsanitize=fuzzer,address,undefined,float-cast-overflow fuzz/fuzz_$$h.c $(FUZZ_SRC) $(FUZZ_LIBS) -o build/fuzz/$$h; \
	  mkdir -p build/fuzz/corpus/$$h build/fuzz/crashes/$$h fuzz/regress/$$h; \
	  echo "== fuzz $$h for $(FUZZ_SECONDS) s"; \
	  build/fuzz/$$h -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -print_final_stats=1 \
	    -artifact_prefix=build/fuzz/crashes/$$h/ build/fuzz/corpus/$$h fuzz/corpus/$$h fuzz/regress/$$h \
	    2>build/fuzz/$$h.log || { tail -n 40 build/fuzz/$$h.log; exit 1; }; \
	  grep -E '^stat::number_of_executed_units|^#[0-9]+.*DONE' build/fuzz/$$h.log | tail -n 1; \
	done

# The harnesses without libFuzzer (fuzz/replay.c), built with gcc and
# ASan+UBSan, for the spec that replays the corpus and the regressions.
fuzz-replay: $(FUZZERS:%=build/fuzz-replay/%)

build/fuzz-replay/%: fuzz/fuzz_%.c fuzz/replay.c $(FUZZ_SRC) $(wildcard src/protocol/*.h src/transport/*.h include/avalara/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(FUZZ_CFLAGS) -fsanitize=address,undefined $< fuzz/replay.c $(FUZZ_SRC) $(FUZZ_LIBS) -o $@

# Benchmarks against peers (not part of make test), written to
# bench/RESULTS.md, one section per script. Client and server share one
# CPU: on a small VM, cross-CPU wake-ups would dominate and swing the figures.
BENCH_CPU ?= $(shell [ $$(nproc) -gt 1 ] && echo 1 || echo 0)
# The revision the per-call figures are compared with ("before"): the C core
# as it was before the hardening and speed work; empty to leave it out.
BENCH_BEFORE ?= f49a338
BENCH_ENV := BENCH_CPU=$(BENCH_CPU) LUA_PATH='lua/?.lua;lua/?/init.lua;./?.lua;;' LUA_CPATH='build/lua5.4/?.so;;'
# Everything `make bench` needs beyond `make deps` (nginx, LuaJIT, LuaSocket,
# LuaSec, lua-cjson), in one apt-get when run as root.
bench-tools: deps
	$(MAKE) deps DEB_PACKAGES="lua-curl curl wrk valgrind"
	$(MAKE) LUA=lua5.4
	$(MAKE) LUA=luajit
	@mkdir -p build/bench
	$(CC) -O2 -Wall -Wextra -Werror bench/percall_libcurl.c $(PKG_CFLAGS) $(PKG_LIBS) -o build/bench/percall_libcurl

bench: bench-tools bench-percall bench-openresty bench-h2 bench-profile bench-batch
	$(BENCH_ENV) taskset -c $(BENCH_CPU) lua5.4 bench/run.lua

# The batch goal (issue 27): 1,000 creates at concurrency 64 against a fixed
# 20 ms server on the other CPUs, within 90 % of ceil(n/c) x 20 ms.
# BENCH_BATCH_BEFORE (the library before this work; empty to skip) runs in the same rounds.
BENCH_BATCH_BEFORE ?= 376a4fa
bench-batch: deps
	$(MAKE) LUA=lua5.4
	@if [ -n "$(BENCH_BATCH_BEFORE)" ] && [ ! -f build/bench/batch-before/build/lua5.4/avalara/core.so ]; then \
	  rm -rf build/bench/batch-before && mkdir -p build/bench/batch-before && \
	  git archive $(BENCH_BATCH_BEFORE) | tar -x -C build/bench/batch-before && \
	  $(MAKE) -C build/bench/batch-before LUA=lua5.4; fi
	$(BENCH_ENV) $(if $(BENCH_BATCH_BEFORE),BENCH_BATCH_BEFORE=$(BENCH_BATCH_BEFORE) \
	  BENCH_BEFORE_ROOT=$(CURDIR)/build/bench/batch-before) lua5.4 bench/batch_fixed.lua

# The library inside nginx against a hand-made subrequest (pins its own processes).
bench-openresty: deps
	$(MAKE) deps DEB_PACKAGES="wrk"
	$(MAKE) LUA=luajit
	$(BENCH_ENV) lua5.4 bench/openresty_hot.lua

bench-percall: bench-tools
	@if [ -n "$(BENCH_BEFORE)" ] && [ ! -f build/bench/before/build/lua5.4/avalara/core.so ]; then \
	  rm -rf build/bench/before && mkdir -p build/bench/before && \
	  git archive $(BENCH_BEFORE) | tar -x -C build/bench/before && $(MAKE) -C build/bench/before LUA=lua5.4; fi
	$(BENCH_ENV) $(if $(BENCH_BEFORE),BENCH_BEFORE=$(BENCH_BEFORE) BENCH_BEFORE_ROOT=$(CURDIR)/build/bench/before) \
	  taskset -c $(BENCH_CPU) lua5.4 bench/percall_fixed.lua

# The per-call set for a check (not a record): fewer rounds and calls, no
# before, written to build/bench/RESULTS-quick.md; BENCH_* still apply.
bench-quick: bench-tools
	$(BENCH_ENV) BENCH_ROUNDS=$(or $(BENCH_ROUNDS),3) BENCH_CALLS=$(or $(BENCH_CALLS),2000) \
	  BENCH_OUT=$(or $(BENCH_OUT),build/bench/RESULTS-quick.md) taskset -c $(BENCH_CPU) lua5.4 bench/percall_fixed.lua

# hscode batch of BENCH_ITEMS rows (100,000) at concurrency 64 against the
# emulator with 20 ms of latency: wall time, RSS, journal, resume (issue 16).
# Instructions a call, layer by layer, with callgrind (issues 14 and 17).
bench-profile: bench-tools
	$(MAKE) deps DEB_PACKAGES="valgrind"
	$(MAKE) LUA=luajit
	$(BENCH_ENV) lua5.4 bench/profile.lua

# A 64-wide HTTPS batch with HTTP/2 multiplexed against HTTP/1.1 (issue 14).
bench-h2: deps
	$(BENCH_ENV) lua5.4 bench/h2_batch.lua

bench-catalog: deps
	$(MAKE) LUA=lua5.4
	$(BENCH_ENV) lua5.4 bench/catalog.lua

# The Redis store's cost per operation (issue 15), and hiredis from C as the
# floor a binding could reach (libhiredis-dev: this benchmark only).
bench-redis: deps
	$(MAKE) deps DEB_PACKAGES="libhiredis-dev"
	$(MAKE) LUA=lua5.4
	$(MAKE) LUA=luajit
	$(BENCH_ENV) lua5.4 bench/redis.lua

emulator: deps
	emulator/run $(if $(PORT),--port $(PORT)) $(if $(TLS_PORT),--tls-port $(TLS_PORT))

# `make install` = the library (install-lib: what the avalara-hscode rock
# installs) + the command (install-cli: what the avalara-hscode-cli rock
# installs; it needs no build).
install: install-lib install-cli install-man install-static

install-lib: $(MODULE)
	install -d $(INSTALL_CMOD)/avalara $(INSTALL_LMOD)/avalara
	install -m 0755 $(MODULE) $(INSTALL_CMOD)/avalara/core.so
	for f in $(LIB_MODULES); do install -D -m 0644 $$f $(INSTALL_LMOD)/$${f#lua/}; done

# The header, the static library and its pkg-config file (not in the rocks).
install-static: $(STATIC_LIB)
	install -D -m 0644 include/avalara/core.h $(INSTALL_INC)/avalara/core.h
	install -D -m 0644 include/avalara/abi.h $(INSTALL_INC)/avalara/abi.h
	install -D -m 0644 $(STATIC_LIB) $(INSTALL_LIB)/libavalara_core.a
	install -d $(INSTALL_LIB)/pkgconfig
	printf '%s\n' $(call pc_lines,$(PREFIX),$${prefix}/include,$${prefix}/lib) >$(INSTALL_LIB)/pkgconfig/avalara-core.pc

install-cli:
	for f in $(CLI_MODULES); do install -D -m 0644 $$f $(INSTALL_LMOD)/$${f#lua/}; done
	install -d $(INSTALL_BIN)
	sed '1s|^#!.*|#!/usr/bin/env $(LUA)|' bin/hscode >$(INSTALL_BIN)/hscode
	chmod 0755 $(INSTALL_BIN)/hscode

# The man page, made from the command's own tables and help texts (any
# interpreter makes the same page; the one of LUA, with its build).
MAN_PAGE := build/man/hscode.1
man: $(MAN_PAGE)
$(MAN_PAGE): $(MODULE) $(CLI_MODULES) tools/man.lua
	@mkdir -p $(dir $@)
	LUA_CPATH='$(BUILD)/?.so;;' LUA_PATH='lua/?.lua;lua/?/init.lua;;' $(LUA) tools/man.lua >$@.tmp
	mv $@.tmp $@

install-man: $(MAN_PAGE)
	install -D -m 0644 $(MAN_PAGE) $(DESTDIR)$(PREFIX)/share/man/man1/hscode.1

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/share/man/man1/hscode.1
	rm -f $(INSTALL_CMOD)/avalara/core.so
	rm -f $(LUA_MODULES:lua/%=$(INSTALL_LMOD)/%)
	rm -f $(INSTALL_BIN)/hscode
	rm -f $(INSTALL_INC)/avalara/core.h $(INSTALL_INC)/avalara/abi.h $(INSTALL_LIB)/libavalara_core.a $(INSTALL_LIB)/pkgconfig/avalara-core.pc

clean:
	rm -rf build

# ---- Release: the source rocks (docs/embedding.md, "With LuaRocks, offline").
# One version (src/version.h) names the tarball, both rockspecs and the top
# of CHANGELOG.md (spec/unit/packaging_spec.lua checks they agree). A source
# rock is a zip of its rockspec and the source tarball its source.url names;
# LuaRocks builds from that tarball without fetching anything. The tarball
# holds the tracked files the build and install need, as they are in the
# work tree (every file of those folders outside a git checkout).
VERSION_H := $(firstword $(wildcard src/version.h src/*/version.h))
VERSION   := $(shell sed -n 's/^\#define AVALARA_VERSION "\(.*\)"/\1/p' $(VERSION_H))
DIST      := build/dist
DIST_NAME := avalara-hscode-$(VERSION)
DIST_FILES = Makefile LICENSE README.md CHANGELOG.md config.ld .ci/debian-packages \
             $(wildcard *.rockspec) bin src include lua docs examples tools
ROCKSPECS := avalara-hscode-$(VERSION)-1.rockspec avalara-hscode-cli-$(VERSION)-1.rockspec

dist: deps
	@for r in $(ROCKSPECS); do test -f $$r || { echo "dist: $$r missing (version $(VERSION) from $(VERSION_H))"; exit 1; }; done
	rm -rf $(DIST) && mkdir -p $(DIST)/stage
	{ git ls-files -z -- $(DIST_FILES) 2>/dev/null || find $(DIST_FILES) -type f -print0; } | \
	  tar --null -T - --transform 's,^,$(DIST_NAME)/,' -czf $(DIST)/stage/$(DIST_NAME).tar.gz
	for r in $(ROCKSPECS); do \
	  cp $$r $(DIST)/stage/ && \
	  (cd $(DIST)/stage && zip -q -9 ../$${r%.rockspec}.src.rock $$r $(DIST_NAME).tar.gz) || exit 1; \
	done
	rm -rf $(DIST)/stage
	luarocks-admin make-manifest $(DIST) >/dev/null
	@ls $(DIST)

# Installs both rocks from build/dist with no network into a fresh tree (the
# library first, which brings no command), the dependencies Debian provides
# declared as present (Debian's lua-cjson, lua-argparse, lua-luv, lua-socket
# and lua-sql-sqlite3 are not registered with LuaRocks), then loads the
# library and runs `hscode --version` from it. Then the other route, `luarocks
# make --deps-mode=none` of both rockspecs in the unpacked source into a second
# tree (LuaRocks 3.8's launcher then sets no path: bin/hscode finds its
# modules from its own place).
# Both trees' hscode run with no LUA_PATH or LUA_CPATH.
DIST_TREE := build/dist-tree
DIST_MAKE := build/dist-make
CLEAN_ENV := env -u LUA_PATH -u LUA_CPATH -u LUA_PATH_5_4 -u LUA_CPATH_5_4
DIST_CHECK_LUA = local a = require "avalara"; assert(a._VERSION == "$(VERSION)", a._VERSION); \
  assert(package.searchpath("avalara.core", package.cpath):find("$(CURDIR)/$(DIST_TREE)", 1, true)); \
  print("dist-check: require \"avalara\" " .. a._VERSION .. " from $(DIST_TREE)")
dist-check: dist
	rm -rf $(DIST_TREE) && mkdir -p $(DIST_TREE)
	printf '%s\n' 'rocks_provided = { ["lua-cjson"] = "2.1.0-1", argparse = "0.7.1-1", luv = "1.44.2-1",' \
	  '  luasocket = "3.1.0-1", ["luasql-sqlite3"] = "2.6.0-1" }' >$(DIST_TREE)/config.lua
	LUAROCKS_CONFIG=$(CURDIR)/$(DIST_TREE)/config.lua luarocks --lua-version=5.4 --tree=$(CURDIR)/$(DIST_TREE) \
	  --only-server=$(CURDIR)/$(DIST) install avalara-hscode $(VERSION)
	test ! -e $(DIST_TREE)/bin/hscode && test ! -e $(DIST_TREE)/share/lua/5.4/avalara/cli.lua
	LUAROCKS_CONFIG=$(CURDIR)/$(DIST_TREE)/config.lua luarocks --lua-version=5.4 --tree=$(CURDIR)/$(DIST_TREE) \
	  --only-server=$(CURDIR)/$(DIST) install avalara-hscode-cli $(VERSION)
	cd /tmp && eval "$$(LUAROCKS_CONFIG=$(CURDIR)/$(DIST_TREE)/config.lua luarocks --lua-version=5.4 \
	    --tree=$(CURDIR)/$(DIST_TREE) path)" && \
	  lua5.4 -e '$(DIST_CHECK_LUA)'
	rm -rf $(DIST_MAKE) && mkdir -p $(DIST_MAKE)/tree
	cd $(DIST_MAKE) && unzip -q -o ../dist/avalara-hscode-cli-$(VERSION)-1.src.rock $(DIST_NAME).tar.gz && \
	  tar -xzf $(DIST_NAME).tar.gz && cd $(DIST_NAME) && for r in $(ROCKSPECS); do \
	    luarocks --lua-version=5.4 --tree=$(CURDIR)/$(DIST_MAKE)/tree make --deps-mode=none $$r >/dev/null || exit 1; done
	cd /tmp && for t in $(DIST_TREE) $(DIST_MAKE)/tree; do \
	  $(CLEAN_ENV) $(CURDIR)/$$t/bin/hscode --version >/dev/null && \
	  $(CLEAN_ENV) $(CURDIR)/$$t/bin/hscode lookup --help >/dev/null && \
	  echo "dist-check: $$t/bin/hscode --version, lookup --help with no LUA_PATH" || exit 1; done
