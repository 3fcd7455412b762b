# ctrd build. `make` builds build/ctrd; `make test` builds and runs the
# fast test tier; `make SANITIZE=address,undefined test` does the same under
# ASan+UBSan in build-san/; `make check` runs both (what CI runs); `make
# soak` the slow tier (kill -9 matrices).
# `make demo` generates logs, ingests them and prints a CTR table.
# `make fuzz` builds the libFuzzer targets (clang).
CC ?= cc
SANITIZE ?=
BUILD := build$(if $(SANITIZE),-san)

CFLAGS ?= -O2 -g
CFLAGS += -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
          -D_GNU_SOURCE -MMD -MP
PKGS := zlib
CFLAGS += $(shell pkg-config --cflags $(PKGS))
LDLIBS += $(shell pkg-config --libs $(PKGS)) -lpthread -lm
ifneq ($(SANITIZE),)
CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SANITIZE)
endif

LIB_SRC := $(filter-out src/main.c,$(wildcard src/*.c))
LIB_OBJ := $(LIB_SRC:src/%.c=$(BUILD)/%.o)
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

test: $(BUILD)/ctrd $(UNIT_BIN)
	CTRD=$(BUILD)/ctrd UNIT_DIR=$(BUILD)/tests tests/run.sh

check:
	$(MAKE) test
	$(MAKE) SANITIZE=address,undefined test

# The soak tier (minutes, not in CI): kill -9 matrices of ingest and serve.
soak: $(BUILD)/ctrd
	CTRD=$(BUILD)/ctrd UNIT_DIR=$(BUILD)/tests tests/run.sh tests/soak/test_*.sh

demo: $(BUILD)/ctrd
	CTRD=$(BUILD)/ctrd scripts/demo

FUZZ_SRC := $(wildcard fuzz/fuzz_*.c)
fuzz: $(FUZZ_SRC:fuzz/%.c=build-fuzz/%)
build-fuzz/%: fuzz/%.c $(LIB_SRC)
	@mkdir -p build-fuzz
	clang -std=c11 -g -O1 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
	      -Isrc -o $@ $< $(LIB_SRC) $(LDLIBS)

clean:
	rm -rf build build-san build-fuzz

.PHONY: all test check soak demo fuzz clean
-include $(wildcard $(BUILD)/*.d $(BUILD)/tests/*.d)
