# pika — plain Makefile. `make` builds build/pika; `make test` runs the suite;
# `make asan-test` runs it under AddressSanitizer+UBSan; `make bench` runs benchmarks.
# Missing Debian packages are installed by scripts/install-deps.sh on first use.

CC      ?= cc
BUILD   ?= build
# pkg-config names of the libraries the code links
# (scripts/install-deps.sh installs the Debian packages that provide them).
PKGS    := openblas lapacke libpcre2-8 libcjson zlib libutf8proc sqlite3 libmicrohttpd libcurl

NODEPS_GOALS := clean help uninstall
FUZZ_GOALS   := fuzz fuzz-build fuzz-regress
ifeq ($(filter-out $(NODEPS_GOALS),$(or $(MAKECMDGOALS),all)),)
else
DEPS_STATUS := $(shell scripts/install-deps.sh $(if $(filter $(FUZZ_GOALS),$(MAKECMDGOALS)),--fuzz) 1>&2 && echo ok)
ifneq ($(DEPS_STATUS),ok)
$(error scripts/install-deps.sh failed; install the packages it lists and retry)
endif
endif

ifneq ($(filter-out $(NODEPS_GOALS),$(or $(MAKECMDGOALS),all)),)
PKGS_MISSING := $(strip $(foreach p,$(PKGS),$(if $(shell pkg-config --exists $(p) && echo y),,$(p))))
ifneq ($(PKGS_MISSING),)
$(error pkg-config cannot find: $(PKGS_MISSING) (run scripts/install-deps.sh, or set PKG_CONFIG_PATH))
endif
endif

OPT      ?= -O2
SAN      ?=
CFLAGS_COMMON := -g -Wall -Wextra -Werror -D_GNU_SOURCE -pthread -Iinclude -Isrc \
            $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
CFLAGS   := -std=c11 $(OPT) $(CFLAGS_COMMON) $(SAN) $(EXTRA_CFLAGS)
LDLIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -llinear -lstdc++ -lm -pthread
LDFLAGS  := $(SAN)

LIB_SRC   := $(filter-out src/cli/%,$(wildcard src/*/*.c))
CLI_SRC   := $(wildcard src/cli/*.c)
TEST_SRC  := $(wildcard tests/test_*.c)
BENCH_SRC := $(wildcard bench/*.c)
TOOL_SRC  := $(wildcard tools/*.c)

LIB_OBJ   := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(LIB_SRC))
CLI_OBJ   := $(patsubst src/cli/%.c,$(BUILD)/obj/cli/%.o,$(CLI_SRC))
TEST_BIN  := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))
BENCH_BIN := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))
TOOL_BIN  := $(patsubst tools/%.c,$(BUILD)/tools/%,$(TOOL_SRC))
LIB       := $(BUILD)/libpika.a
PIKA      := $(BUILD)/pika

PREFIX  ?= /usr/local
DESTDIR ?=

.PHONY: all test asan-test bench bench-compare bench-extract demo demo-serve clean help install uninstall fuzz fuzz-build
all: $(PIKA) $(TOOL_BIN)

help:
	@echo "make            build build/pika"
	@echo "make demo       build and run pika on the bundled example (main job)"
	@echo "make demo-serve after make demo: the pool behind pika serve, the test split through it"
	@echo "make test       build and run the test suite"
	@echo "make asan-test  the test suite under AddressSanitizer + UBSan (build-asan/)"
	@echo "make bench      build and run the benchmarks in bench/"
	@echo "make install    install pika to \$$(PREFIX)/bin (PREFIX=$(PREFIX); DESTDIR for staging)"
	@echo "make fuzz       libFuzzer + ASan/UBSan on every parser, FUZZ_S seconds each (default 60)"
	@echo "LLAMA_CPP=DIR make bench-compare   pika vs llama.cpp (its build/bin DIR) side by side"
	@echo "LLAMA_CPP=DIR make bench-extract   pika extract vs llama-embedding on 100 MATH prompts"

$(BUILD)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(PIKA): $(CLI_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(LIB) $(LDLIBS)

$(BUILD)/tests/%: tests/%.c tests/test.h $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -MMD -MP -o $@ $< $(LIB) $(LDLIBS) $(LDFLAGS)

$(BUILD)/bench/%: bench/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -o $@ $< $(LIB) $(LDLIBS) $(LDFLAGS)

$(BUILD)/tools/%: tools/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -o $@ $< $(LIB) $(LDLIBS) $(LDFLAGS)

test: $(PIKA) $(TEST_BIN) $(TOOL_BIN)
	@PIKA_BUILD=$(BUILD) sh tests/run.sh $(TEST_BIN)

asan-test:
	$(MAKE) BUILD=build-asan OPT=-O1 SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" test

bench: $(PIKA) $(BENCH_BIN) $(TOOL_BIN)
	@sh bench/run.sh $(BUILD)

# side by side with llama.cpp: LLAMA_CPP=/path/to/llama.cpp/build/bin make bench-compare
bench-compare: $(PIKA) $(BENCH_BIN) $(TOOL_BIN)
	@sh bench/compare.sh $(BUILD)

# pika extract vs llama-embedding --pooling last: LLAMA_CPP=/path/to/llama.cpp/build/bin make bench-extract
bench-extract: $(PIKA) $(TOOL_BIN)
	@sh bench/extract_compare.sh $(BUILD)

demo: $(PIKA) $(TOOL_BIN)
	@sh scripts/demo.sh $(BUILD)

demo-serve: $(PIKA) $(TOOL_BIN)
	@sh scripts/demo-serve.sh $(BUILD)

install: $(PIKA)
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(PIKA) $(DESTDIR)$(PREFIX)/bin/pika

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/pika

# ---- fuzzing (not part of `make test`): libFuzzer + ASan/UBSan, clang from Debian (clang,
# libclang-rt-dev; scripts/install-deps.sh --fuzz installs them). One harness per parser in
# fuzz/fuzz_*.c, seeds in fuzz/corpus/NAME/. `make fuzz` runs each for FUZZ_S seconds (default 60);
# new inputs go to build-fuzz/corpus/NAME, crashes to build-fuzz/artifacts/.
FUZZ_S       ?= 60
FUZZ_CC      ?= clang
FUZZ_DIR     := build-fuzz
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
# clang 14 rejects quant.c's __builtin_cpu_supports("f16c"): that file (ggml block kernels, no
# parser) is built with $(CC) and no instrumentation.
FUZZ_PLAIN   := src/engine/quant.c
FUZZ_LIB_OBJ := $(patsubst src/%.c,$(FUZZ_DIR)/lib/%.o,$(LIB_SRC))
FUZZ_BIN     := $(patsubst fuzz/%.c,$(FUZZ_DIR)/%,$(wildcard fuzz/fuzz_*.c))

$(FUZZ_DIR)/lib/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(if $(filter $<,$(FUZZ_PLAIN)),$(CC) -std=c11 -O2 $(CFLAGS_COMMON),$(FUZZ_CC) -std=c11 -O1 $(CFLAGS_COMMON) $(FUZZ_SAN) -fsanitize=fuzzer-no-link) -MMD -MP -c $< -o $@

$(FUZZ_DIR)/libpika.a: $(FUZZ_LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

$(FUZZ_DIR)/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz_common.h $(FUZZ_DIR)/libpika.a
	$(FUZZ_CC) -std=c11 -O1 $(CFLAGS_COMMON) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $< $(FUZZ_DIR)/libpika.a $(LDLIBS)

fuzz-build: $(FUZZ_BIN)

# every seed and regression input once through its harness (seconds, no fuzzing)
fuzz-regress: $(FUZZ_BIN)
	@sh fuzz/run.sh regress $(FUZZ_DIR) $(FUZZ_BIN)

fuzz: $(FUZZ_BIN)
	@sh fuzz/run.sh $(FUZZ_S) $(FUZZ_DIR) $(FUZZ_BIN)

clean:
	rm -rf build build-asan build-fuzz

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
ifneq ($(filter $(FUZZ_GOALS),$(MAKECMDGOALS)),)
-include $(shell find $(FUZZ_DIR) -name '*.d' 2>/dev/null)
endif
