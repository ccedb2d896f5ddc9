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
                python3 python3-websockets chromium groff-base \
                clang libclang-rt-14-dev valgrind
# Node.js and npm are looked for as commands, not packages: a machine may
# have them from elsewhere (NodeSource), and Debian's npm package would
# fight that install. Only when a command is missing are Debian's
# packages installed.
NODE_PACKAGES := nodejs npm
# The same for cargo (bindings/rust): rustup's, in PATH or in ~/.cargo/bin
# (where tests/run.sh also looks), is used when present; Debian's otherwise.
RUST_PACKAGES := cargo

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
    asan-build test-valgrind \
    fuzz fuzz-build \
    install uninstall FORCE \
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
# browser client lives. The PREFIX it was built with is kept in a stamp
# file, rewritten only when PREFIX changes, so that `make install
# PREFIX=/usr` after a plain `make` rebuilds wschatd for /usr. (A binary
# built before the stamp existed is taken to match.)
WSCHATD_STAMP := $(BUILD)/cmd/wschatd.prefix
$(WSCHATD_STAMP): FORCE
	@mkdir -p $(dir $@)
	@if [ "$$(cat $@ 2>/dev/null)" != '$(PREFIX)' ]; then \
	    new=; [ -f $@ ] || new=1; echo '$(PREFIX)' > $@; \
	    if [ -n "$$new" ] && [ -f $(WSCHATD) ]; then touch -r $(WSCHATD) $@; \
	    fi; fi
FORCE:
$(WSCHATD): $(WSCHATD_SRC) $(wildcard cmd/wschatd/*.h) $(STATIC) \
    include/wschat.h $(WSCHATD_STAMP)
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

# libFuzzer targets (tests/fuzz/). They reach internal wschat__ symbols, so
# the library is compiled again into $(FUZZ_DIR) with clang, coverage
# instrumentation and ASan/UBSan, and archived for them to link. libFuzzer
# and the sanitizer runtimes come from libclang-rt-14-dev. tests/run.sh runs
# each target for 10 s; `make fuzz` runs each for FUZZ_TIME seconds on
# $(FUZZ_DIR)/corpus/TARGET, which starts as a copy of
# tests/fuzz/corpus/TARGET and keeps what the runs add, and fails if any
# target crashes (the input is saved as $(FUZZ_DIR)/artifacts/TARGET-*).
FUZZ_CC      ?= clang
FUZZ_DIR     := $(BUILD)/fuzz
FUZZ_TIME    ?= 60
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
                -fno-omit-frame-pointer
FUZZ_CFLAGS   = $(CSTD) $(WARN) -O1 -g $(FUZZ_SAN) -Iinclude -Ilib \
                $(DEP_CFLAGS)
FUZZ_SRC     := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN     := $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ_DIR)/%)
FUZZ_LIB     := $(FUZZ_DIR)/libwschat-fuzz.a

$(FUZZ_DIR)/obj/%.o: %.c $(wildcard include/*.h lib/*/*.h) Makefile
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@
$(FUZZ_LIB): $(LIB_SRC:%.c=$(FUZZ_DIR)/obj/%.o)
	rm -f $@
	ar rcs $@ $^
$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_util.h $(FUZZ_LIB)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB) \
	    $(DEP_LIBS)

fuzz-build: $(FUZZ_BIN)
fuzz: deps fuzz-build
	@failed=; for bin in $(FUZZ_BIN); do t=$${bin##*/}; \
	    mkdir -p $(FUZZ_DIR)/corpus/$$t $(FUZZ_DIR)/artifacts; \
	    cp tests/fuzz/corpus/$$t/* $(FUZZ_DIR)/corpus/$$t/; \
	    dict=; [ ! -f tests/fuzz/$$t.dict ] || dict=-dict=tests/fuzz/$$t.dict; \
	    echo "fuzz: $$t for $(FUZZ_TIME) s"; \
	    $$bin -max_total_time=$(FUZZ_TIME) -print_final_stats=1 $$dict \
	        -artifact_prefix=$(FUZZ_DIR)/artifacts/$$t- \
	        $(FUZZ_DIR)/corpus/$$t || failed="$$failed $$t"; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: crashed:$$failed"; exit 1; fi; \
	echo "fuzz: no crash"

# ---------------------------------------------------------------------------
# deps: install only what is missing. `apt-get update` runs once, and only
# when something has to be installed; npm ci only when node_modules is
# older than the lockfile.
deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	    dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if ! command -v node >/dev/null || ! command -v npm >/dev/null; then \
	    missing="$$missing $(NODE_PACKAGES)"; fi; \
	if ! command -v cargo >/dev/null && \
	   [ ! -x "$${CARGO_HOME:-$$HOME/.cargo}/bin/cargo" ]; then \
	    missing="$$missing $(RUST_PACKAGES)"; fi; \
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
tools: $(TEST_TOOLS) $(FUZZ_BIN)

# Every suite against $(BUILD), then the unit and integration suites again
# against the sanitizer build in $(ASAN_BUILD) (the sanitizer pass of
# tests/run.sh), with one total line for both.
test: deps all $(UNIT_BIN) $(TEST_TOOLS) $(FUZZ_BIN) asan-build
	@BUILD=$(BUILD) ASAN_BUILD=$(ASAN_BUILD) tests/run.sh

# The same suites against a build with AddressSanitizer and UBSan, where any
# report aborts the process (and so fails the test that triggered it).
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all \
             -fno-omit-frame-pointer
ASAN_BUILD   := build/asan
# The sanitizer build make test uses: library, servers, examples and unit
# tests (not the fuzz targets: those in $(BUILD)/fuzz are sanitized
# already).
asan-build: deps
	$(MAKE) BUILD=$(ASAN_BUILD) LIBDIR=$(ASAN_BUILD)/lib \
	    OPT="-O1 -g $(SAN_FLAGS)" EXTRA_LDFLAGS="$(SAN_FLAGS)" all unit
test-asan: deps
	$(MAKE) BUILD=build/asan LIBDIR=build/asan/lib OPT="-O1 -g $(SAN_FLAGS)" \
	    EXTRA_LDFLAGS="$(SAN_FLAGS)" all unit tools
	@BUILD=build/asan ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 tests/run.sh

# The echo example and wschatd under valgrind's memcheck through an
# integration run (tests/valgrind/run.sh, tests/valgrind/scenario.py): a
# memory error, a leak or memory still allocated at exit fails it.
# VALGRIND_FULL=1 also runs the chat and echo integration suites with
# their servers under memcheck (about 150 servers, 4 minutes).
test-valgrind: deps all
	@BUILD=$(BUILD) VALGRIND_FULL=$(VALGRIND_FULL) tests/valgrind/run.sh

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
	        cmd/*/*.c cmd/*/*.h tests/bench/*.c tests/fuzz/*.c tests/fuzz/*.h)

# ---------------------------------------------------------------------------
# install / uninstall: `make install PREFIX=/usr/local DESTDIR=`. Libraries
# go in $(PREFIX)/lib, the conventional place for /usr/local (a Debian
# package would use lib/x86_64-linux-gnu; pass INST_LIB for that). Build
# and install with the same PREFIX: wschatd looks for the browser client
# in $(PREFIX)/share/wschat/web, and is rebuilt when PREFIX changes. After
# installing to a live system (DESTDIR empty) run ldconfig as root so the
# dynamic linker finds libwschat.so.0; a DESTDIR install (a staging tree
# or a package) does not need it. The systemd unit is installed as an
# example only, under share/wschat, with ExecStart pointing at this
# PREFIX; copy it to /etc/systemd/system to use it. uninstall removes
# exactly the files install writes, and the share/wschat directories if
# they are left empty.
INST_BIN     = $(PREFIX)/bin
INST_LIB     = $(PREFIX)/lib
INST_INC     = $(PREFIX)/include
INST_PC      = $(INST_LIB)/pkgconfig
INST_SHARE   = $(PREFIX)/share/wschat
INST_WEB     = $(INST_SHARE)/web
INST_MAN     = $(PREFIX)/share/man
# echo(1) documents an example that is not installed (and its name is
# coreutils' echo).
MAN1_PAGES  := man/wschatd.1 man/wschat-bench.1
MAN3_PAGES   = $(wildcard man/*.3)
MAN7_PAGES   = $(wildcard man/*.7)
WEB_FILES    = $(wildcard examples/web/*)
PC_FILE     := $(BUILD)/libwschat.pc
UNIT_FILE   := $(BUILD)/wschatd.service

$(PC_FILE): lib/libwschat.pc.in Makefile $(WSCHATD_STAMP)
	@mkdir -p $(dir $@)
	sed -e 's|@PREFIX@|$(PREFIX)|g' \
	    -e 's|@LIBDIR@|$(patsubst $(PREFIX)/%,$${prefix}/%,$(INST_LIB))|g' \
	    -e 's|@INCLUDEDIR@|$(patsubst $(PREFIX)/%,$${prefix}/%,$(INST_INC))|g' \
	    -e 's|@VERSION@|$(VERSION)|g' $< > $@
$(UNIT_FILE): examples/wschatd.service $(WSCHATD_STAMP)
	@mkdir -p $(dir $@)
	sed -e 's|/usr/local/bin/wschatd|$(INST_BIN)/wschatd|' $< > $@

install: $(SO_REAL) $(SO_NAME) $(SO_LINK) $(STATIC) $(WSCHATD) $(BENCH_TOOL) \
    $(PC_FILE) $(UNIT_FILE)
	install -d -m 755 $(DESTDIR)$(INST_BIN) $(DESTDIR)$(INST_LIB) \
	    $(DESTDIR)$(INST_INC) $(DESTDIR)$(INST_PC) $(DESTDIR)$(INST_WEB) \
	    $(DESTDIR)$(INST_MAN)/man1 $(DESTDIR)$(INST_MAN)/man3 \
	    $(DESTDIR)$(INST_MAN)/man7
	install -m 755 $(SO_REAL) $(DESTDIR)$(INST_LIB)/
	ln -sf libwschat.so.$(VERSION) $(DESTDIR)$(INST_LIB)/libwschat.so.$(SOMAJOR)
	ln -sf libwschat.so.$(SOMAJOR) $(DESTDIR)$(INST_LIB)/libwschat.so
	install -m 644 $(STATIC) $(DESTDIR)$(INST_LIB)/
	install -m 644 include/wschat.h $(DESTDIR)$(INST_INC)/
	install -m 644 $(PC_FILE) $(DESTDIR)$(INST_PC)/
	install -m 755 $(WSCHATD) $(BENCH_TOOL) $(DESTDIR)$(INST_BIN)/
	install -m 644 $(WEB_FILES) $(DESTDIR)$(INST_WEB)/
	install -m 644 $(UNIT_FILE) $(DESTDIR)$(INST_SHARE)/
	install -m 644 $(MAN1_PAGES) $(DESTDIR)$(INST_MAN)/man1/
	install -m 644 $(MAN3_PAGES) $(DESTDIR)$(INST_MAN)/man3/
	install -m 644 $(MAN7_PAGES) $(DESTDIR)$(INST_MAN)/man7/
	@[ -n "$(DESTDIR)" ] || echo "install: now run ldconfig (as root) so" \
	    "that the dynamic linker finds $(INST_LIB)/libwschat.so.$(SOMAJOR)"

uninstall:
	rm -f $(addprefix $(DESTDIR)$(INST_LIB)/,libwschat.so.$(VERSION) \
	    libwschat.so.$(SOMAJOR) libwschat.so libwschat.a) \
	    $(DESTDIR)$(INST_INC)/wschat.h $(DESTDIR)$(INST_PC)/libwschat.pc \
	    $(DESTDIR)$(INST_BIN)/wschatd $(DESTDIR)$(INST_BIN)/wschat-bench \
	    $(addprefix $(DESTDIR)$(INST_WEB)/,$(notdir $(WEB_FILES))) \
	    $(DESTDIR)$(INST_SHARE)/wschatd.service \
	    $(addprefix $(DESTDIR)$(INST_MAN)/man1/,$(notdir $(MAN1_PAGES))) \
	    $(addprefix $(DESTDIR)$(INST_MAN)/man3/,$(notdir $(MAN3_PAGES))) \
	    $(addprefix $(DESTDIR)$(INST_MAN)/man7/,$(notdir $(MAN7_PAGES)))
	for d in $(DESTDIR)$(INST_WEB) $(DESTDIR)$(INST_SHARE); do \
	    if [ -d $$d ]; then rmdir --ignore-fail-on-non-empty $$d; fi; done

clean:
	rm -rf build $(SO_REAL) $(SO_NAME) $(SO_LINK) $(STATIC)
