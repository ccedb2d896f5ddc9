# libwschat - GNU make build. `make`, `make test`, `make run`, `make deps`.
# Everything built goes under build/, except the libraries, which go in lib/
# as the layout asks (lib/libwschat.so.0.1.0, its symlinks, libwschat.a).

VERSION      := 0.1.0
SOMAJOR      := 0
PREFIX       ?= /usr/local
DESTDIR      ?=

CC           ?= cc
PKG_CONFIG   ?= pkg-config
BUILD        ?= build

# Debian packages the build and the tests need (see `make deps`).
DEB_PACKAGES := build-essential pkg-config libuv1-dev libhttp-parser-dev \
                libssl-dev libjansson-dev zlib1g-dev libcriterion-dev \
                python3 python3-websockets chromium groff-base
# Node.js and npm are looked for as commands, not packages: a machine may
# have them from elsewhere (NodeSource), and Debian's npm package would
# fight that install. Only when a command is missing are Debian's
# packages installed.
NODE_PACKAGES := nodejs npm

PKGS         := libuv libcrypto jansson
DEP_CFLAGS    = $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
# http-parser ships no .pc file.
DEP_LIBS      = $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null) -lhttp_parser

WARN         := -Wall -Wextra -Werror
CSTD         := -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE
OPT          ?= -O2 -g
CFLAGS_LIB    = $(CSTD) $(WARN) $(OPT) -fPIC -fvisibility=hidden \
                -Iinclude -Ilib $(DEP_CFLAGS) $(EXTRA_CFLAGS)
CFLAGS_APP    = $(CSTD) $(WARN) $(OPT) -Iinclude $(DEP_CFLAGS) $(EXTRA_CFLAGS)
LDFLAGS_APP   = $(EXTRA_LDFLAGS)

LIB_SRC      := $(wildcard lib/core/*.c lib/proto/*.c lib/net/*.c lib/chat/*.c)
LIB_OBJ      := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
# The default build puts the libraries in lib/; a variant build (sanitizers)
# keeps everything, libraries included, under its own BUILD directory.
LIBDIR       ?= lib
SO_REAL      := $(LIBDIR)/libwschat.so.$(VERSION)
SO_NAME      := $(LIBDIR)/libwschat.so.$(SOMAJOR)
SO_LINK      := $(LIBDIR)/libwschat.so
STATIC       := $(LIBDIR)/libwschat.a

WSCHATD      := $(BUILD)/cmd/wschatd
WSCHATD_SRC  := $(wildcard cmd/wschatd/*.c)
BENCH_TOOL   := $(BUILD)/cmd/wschat-bench
BENCH_SRC    := $(wildcard cmd/wschat-bench/*.c)
BENCH_REFS   := $(BUILD)/bench/ref_tcp $(BUILD)/bench/ref_lws
EXAMPLES     := $(patsubst examples/%.c,$(BUILD)/examples/%,$(wildcard examples/*.c))

UNIT_SRC     := $(wildcard tests/unit/*/*.c)
UNIT_BIN     := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/unit/%)
TEST_TOOLS   :=

.PHONY: all deps bench bench-deps bench-refs test test-asan unit tools run clean \
    format examples
all: $(SO_REAL) $(SO_NAME) $(SO_LINK) $(STATIC) $(EXAMPLES) $(WSCHATD) \
    $(if $(BENCH_SRC),$(BENCH_TOOL))

$(BUILD)/obj/%.o: %.c $(wildcard include/*.h lib/*/*.h) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_LIB) -c $< -o $@

$(SO_REAL): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-soname,libwschat.so.$(SOMAJOR) -o $@ $^ \
	    $(DEP_LIBS) $(EXTRA_LDFLAGS)
$(SO_NAME): $(SO_REAL)
	ln -sf libwschat.so.$(VERSION) $@
$(SO_LINK): $(SO_NAME)
	ln -sf libwschat.so.$(SOMAJOR) $@
$(STATIC): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

examples: $(EXAMPLES)
$(BUILD)/examples/%: examples/%.c $(STATIC) include/wschat.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_APP) -o $@ $< $(STATIC) $(DEP_LIBS) $(LDFLAGS_APP)

# wschatd uses only the public API; PREFIX tells it where an installed
# browser client lives.
$(WSCHATD): $(WSCHATD_SRC) $(wildcard cmd/wschatd/*.h) $(STATIC) \
    include/wschat.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_APP) -DWSCHAT_PREFIX='"$(PREFIX)"' -o $@ $(WSCHATD_SRC) \
	    $(STATIC) $(DEP_LIBS) $(LDFLAGS_APP)

# The load generator reuses the library's own frame code (internal
# wschat__ symbols, hence the static library and -Ilib).
$(BENCH_TOOL): $(BENCH_SRC) $(wildcard cmd/wschat-bench/*.h) $(STATIC) \
    $(wildcard lib/*/*.h) include/wschat.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_APP) -Ilib -o $@ $(BENCH_SRC) $(STATIC) $(DEP_LIBS) -lm \
	    $(LDFLAGS_APP)

# Reference servers for benchmarks only (make bench-refs): plain TCP on libuv,
# and libwebsockets (installed by make bench-deps; the tests do not need it).
$(BUILD)/bench/ref_tcp: tests/bench/ref_tcp.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_APP) -o $@ $< $(shell $(PKG_CONFIG) --libs libuv)
# (The pkg-config call runs in the recipe's shell, after bench-deps has
# installed libwebsockets-dev; a $(shell) would run before it.)
$(BUILD)/bench/ref_lws: tests/bench/ref_lws.c | bench-deps
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) -Wall -Wextra -O2 -o $@ $< \
	    $$($(PKG_CONFIG) --cflags --libs libwebsockets)

# Unit tests link the static library so they can reach internal
# (wschat__) symbols that the shared library hides.
$(BUILD)/tests/unit/%: tests/unit/%.c $(STATIC) $(wildcard lib/*/*.h) \
    tests/unit/support.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_APP) -Ilib -o $@ $< $(STATIC) $(DEP_LIBS) \
	    $(shell $(PKG_CONFIG) --libs criterion) $(LDFLAGS_APP)

# ---------------------------------------------------------------------------
# deps: install only what is missing. `apt-get update` runs once, and only
# when something has to be installed; npm ci only when node_modules is
# older than the lockfile.
deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	    dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if ! command -v node >/dev/null || ! command -v npm >/dev/null; then \
	    missing="$$missing $(NODE_PACKAGES)"; fi; \
	if [ -n "$$missing" ]; then \
	    echo "deps: installing$$missing"; \
	    SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	    $$SUDO apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	        --no-install-recommends $$missing; \
	else echo "deps: Debian packages present"; fi
	@if [ -f tests/package-lock.json ]; then \
	    if [ ! -d tests/node_modules ] || \
	       [ tests/package-lock.json -nt tests/node_modules/.package-lock.json ]; then \
	        echo "deps: npm ci (tests/)"; \
	        (cd tests && npm ci --no-audit --no-fund --loglevel=error); \
	    else echo "deps: npm test clients present"; fi; fi

unit: $(UNIT_BIN)
tools: $(TEST_TOOLS)

test: deps all $(UNIT_BIN) $(TEST_TOOLS)
	@BUILD=$(BUILD) tests/run.sh

# The same suites against a build with AddressSanitizer and UBSan, where any
# report aborts the process (and so fails the test that triggered it).
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all \
             -fno-omit-frame-pointer
test-asan: deps
	$(MAKE) BUILD=build/asan LIBDIR=build/asan/lib OPT="-O1 -g $(SAN_FLAGS)" \
	    EXTRA_LDFLAGS="$(SAN_FLAGS)" all unit tools
	@BUILD=build/asan ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 tests/run.sh

# The libwebsockets reference needs libwebsockets-dev, which the tests do
# not: `make bench-deps` installs it. `make bench` runs the standard suite
# (tests/bench/run.py: 3 repetitions of every scenario against ours and both
# references, server on CPU 0, generator on CPU 1) and writes BENCHMARKS.md.
# BENCH_ARGS passes options to the runner (--quick, --only SCENARIO, ...).
bench-deps: deps
	@dpkg -s libwebsockets-dev >/dev/null 2>&1 || { \
	    SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    $$SUDO apt-get install -y -qq --no-install-recommends \
	        libwebsockets-dev; }
bench-refs: bench-deps $(BENCH_REFS)

bench: bench-refs all $(BENCH_TOOL)
	BUILD=$(BUILD) /usr/bin/python3 tests/bench/run.py $(BENCH_ARGS)

run: deps all
	$(WSCHATD) --host 127.0.0.1 --port 8080 --web-root examples/web

format:
	clang-format -i $(LIB_SRC) $(wildcard lib/*/*.h) include/wschat.h \
	    $(wildcard examples/*.c tests/unit/*/*.c tests/unit/*.h \
	        cmd/*/*.c cmd/*/*.h tests/bench/*.c)

clean:
	rm -rf build $(SO_REAL) $(SO_NAME) $(SO_LINK) $(STATIC)
