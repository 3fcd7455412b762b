# ctrd build. `make` builds build/ctrd; `make install` installs it (see
# below); `make demo` runs `ctrd demo` (the service with live traffic, until
# Ctrl-C; DEMO_ARGS passes it flags, e.g. --listen 127.0.0.1:0).
#
# Test tiers (tests/run.sh runs each: TEST_JOBS tests at a time, default one
# per CPU, longest first, each under a timeout; it closes with "N passed, N
# failed" and fails when anything failed, timed out or crashed):
#   make test   the fast tier, under 2 minutes on 2 cores: every unit-test
#               binary, every tests/e2e/test_*.sh (small data, a few kill -9s)
#               and the runner's self-test. `make SANITIZE=address,undefined
#               test` runs it under ASan+UBSan in build-san/.
#   make check  the fast tier, the same under ASan+UBSan, the cluster tier
#               (`make cluster-test`: tests/cluster/, a simulated
#               three-host cluster through failures), then `make
#               fuzz-smoke` (bounded fuzzing): what CI (.ci/run) and the
#               README run.
#   make soak   the slow tier, not in CI: tests/soak/test_*.sh (kill -9
#               matrices, the e2e scripts on bigger data), then `make
#               fuzz-long`.
# `make fuzz` builds the libFuzzer targets (clang); `make fuzz-smoke` and
# `make fuzz-long` run them (see the fuzzing section below).
CC ?= cc
SANITIZE ?=
BUILD := build$(if $(SANITIZE),-san)

CFLAGS ?= -O2 -g
CFLAGS += -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
          -D_GNU_SOURCE -MMD -MP
PKGS := zlib libnats libcurl
CFLAGS += $(shell pkg-config --cflags $(PKGS))
LDLIBS += $(shell pkg-config --libs $(PKGS)) -lpthread -lm
ifneq ($(SANITIZE),)
CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SANITIZE)
endif

LIB_SRC := $(filter-out src/main.c,$(wildcard src/*.c))
LIB_OBJ := $(LIB_SRC:src/%.c=$(BUILD)/%.o)
# The dashboard (web/, served at /): scripts/web-assets compiles its files
# into web_assets.c (byte arrays, content types, ETags; see src/web.h),
# linked with the library objects (the fuzz build gets its own copy).
WEB_FILES := $(wildcard web/*)
LIB_OBJ += $(BUILD)/web_assets.o
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

all: $(BUILD)/ctrd

$(BUILD)/ctrd: $(BUILD)/main.o $(LIB_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: src/%.c | $(BUILD)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(LIB_OBJ) | $(BUILD)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Isrc -o $@ $< $(LIB_OBJ) $(LDFLAGS) $(LDLIBS)

$(BUILD):
	mkdir -p $@

# The dashboard's files, compiled in (see WEB_FILES above).
%/web_assets.c: scripts/web-assets $(WEB_FILES)
	@mkdir -p $(dir $@)
	python3 scripts/web-assets $@ $(WEB_FILES)
$(BUILD)/web_assets.o: $(BUILD)/web_assets.c
	$(CC) $(CFLAGS) -Isrc -c -o $@ $<

test: $(BUILD)/ctrd $(UNIT_BIN)
	CTRD=$(BUILD)/ctrd UNIT_DIR=$(BUILD)/tests tests/run.sh

check:
	$(MAKE) test
	$(MAKE) SANITIZE=address,undefined test
	$(MAKE) cluster-test
	$(MAKE) fuzz-smoke

# The cluster tier (docs/scale-out.md): a simulated three-host cluster
# (scripts/cluster) through one failure at a time, counts compared with
# `ctrd ingest` to the unit; about 1.5 minutes, one at a time (fixed
# addresses 127.0.0.11-13).
cluster-test: $(BUILD)/ctrd
	CTRD=$(BUILD)/ctrd UNIT_DIR=$(BUILD)/tests tests/run.sh tests/cluster/test_*.sh

# The soak tier (an hour and more, not in CI): a soak script may run for
# tens of minutes.
soak: $(BUILD)/ctrd
	CTRD=$(BUILD)/ctrd UNIT_DIR=$(BUILD)/tests TEST_E2E_TIMEOUT=3600 \
	    tests/run.sh tests/soak/test_*.sh
	$(MAKE) fuzz-long

# `make install [PREFIX=/usr/local] [DESTDIR=]`: the binary, the systemd
# unit (deploy/systemd, with the binary's path filled in), the Prometheus
# alert rules and the docs. CTRD_BIN installs another build (the tests
# install the binary they test).
PREFIX ?= /usr/local
CTRD_BIN ?= $(BUILD)/ctrd
BINDIR := $(PREFIX)/bin
UNITDIR := $(PREFIX)/lib/systemd/system
DOCDIR := $(PREFIX)/share/doc/ctrd
SHAREDIR := $(PREFIX)/share/ctrd

install: $(CTRD_BIN)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) \
	    $(DESTDIR)$(DOCDIR) $(DESTDIR)$(SHAREDIR)/prometheus
	install -m 755 $(CTRD_BIN) $(DESTDIR)$(BINDIR)/ctrd
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@DOCDIR@|$(DOCDIR)|g' \
	    deploy/systemd/ctrd.service.in > $(DESTDIR)$(UNITDIR)/ctrd.service
	chmod 644 $(DESTDIR)$(UNITDIR)/ctrd.service
	install -m 644 deploy/prometheus/alerts.yml \
	    $(DESTDIR)$(SHAREDIR)/prometheus/alerts.yml
	install -m 644 README.md RELIABILITY.md BENCHMARKS.md $(DESTDIR)$(DOCDIR)

DEMO_ARGS ?=
demo: $(BUILD)/ctrd
	$(BUILD)/ctrd demo $(DEMO_ARGS)

# Fuzzing: one libFuzzer target per fuzz/fuzz_*.c (found by wildcard), linked
# with src/ compiled once for it: coverage, ASan, and UBSan that aborts on its
# first report (so libFuzzer counts undefined behaviour as a crash). A target
# that needs only a few objects names them in FUZZ_LINK_<target> (so that
# fuzz_http links the parser alone, not the server); the others link all.
# `make fuzz-smoke` (the last step of `make check`) replays every input
# committed in fuzz/corpus/<target>/ -- regression inputs included -- then
# fuzzes each target for FUZZ_SECONDS from a copy of that corpus, FUZZ_JOBS
# at a time, and fails on any crash, leak, hang or OOM, naming the input.
# `make fuzz-long` is the slow tier: FUZZ_LONG_SECONDS (30 min) per target, one at a time,
# niced. Both take FUZZ_TARGETS=fuzz_x to run a subset. See fuzz/README.md.
FUZZ_CC := clang
FUZZ_CFLAGS := -std=c11 -g -O1 -Wall -Wextra -Werror -Wshadow \
               -Wstrict-prototypes -D_GNU_SOURCE -MMD -MP \
               -fsanitize=address,undefined -fno-sanitize-recover=all \
               -fno-omit-frame-pointer $(shell pkg-config --cflags $(PKGS))
FUZZ_SRC := $(wildcard fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:fuzz/%.c=build-fuzz/%)
FUZZ_OBJ := $(LIB_SRC:src/%.c=build-fuzz/obj/%.o)
FUZZ_TARGETS ?= $(FUZZ_BIN:build-fuzz/%=%)
FUZZ_SECONDS ?= 60
FUZZ_JOBS ?= 2
FUZZ_LONG_SECONDS ?= 1800

fuzz: $(FUZZ_BIN)

$(FUZZ_OBJ): build-fuzz/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

# The dashboard's files (web_assets.c, see WEB_FILES) for the targets
# that link all of src/.
FUZZ_OBJ += build-fuzz/obj/web_assets.o
build-fuzz/obj/web_assets.o: build-fuzz/obj/web_assets.c
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -Isrc -c -o $@ $<

FUZZ_LINK_fuzz_http := build-fuzz/obj/http_parse.o
fuzz_link = $(or $(FUZZ_LINK_$(1)),$(FUZZ_OBJ))

.SECONDEXPANSION:
$(FUZZ_BIN): build-fuzz/%: fuzz/%.c $$(call fuzz_link,$$*)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -Isrc -o $@ $< \
	    $(call fuzz_link,$*) $(LDLIBS)

fuzz-smoke: $(FUZZ_TARGETS:%=build-fuzz/%)
	FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_JOBS=$(FUZZ_JOBS) scripts/fuzz-smoke $^

fuzz-long: $(FUZZ_TARGETS:%=build-fuzz/%)
	FUZZ_SECONDS=$(FUZZ_LONG_SECONDS) FUZZ_JOBS=1 FUZZ_NICE=10 scripts/fuzz-smoke $^

clean:
	rm -rf build build-san build-fuzz

.PHONY: cluster-test all test check soak install demo fuzz fuzz-smoke fuzz-long clean
-include $(wildcard $(BUILD)/*.d $(BUILD)/tests/*.d build-fuzz/*.d \
                    build-fuzz/obj/*.d)
