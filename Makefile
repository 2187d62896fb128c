# pika — plain Makefile. `make` builds build/pika; `make test` runs the suite;
# `make asan-test` runs it under AddressSanitizer+UBSan; `make bench` runs benchmarks.
# Missing Debian packages are installed by scripts/install-deps.sh on first use.

CC      ?= cc
BUILD   ?= build
# pkg-config names of the libraries the code links today (libcurl, libmicrohttpd and sqlite3 join
# when code uses them); scripts/install-deps.sh installs the Debian packages that provide them.
PKGS    := openblas lapacke libpcre2-8 libcjson zlib

NODEPS_GOALS := clean help
ifeq ($(filter-out $(NODEPS_GOALS),$(or $(MAKECMDGOALS),all)),)
else
DEPS_STATUS := $(shell scripts/install-deps.sh 1>&2 && echo ok)
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
CFLAGS   := -std=c11 $(OPT) -g -Wall -Wextra -Werror -D_GNU_SOURCE -pthread -Iinclude -Isrc \
            $(shell pkg-config --cflags $(PKGS) 2>/dev/null) $(SAN) $(EXTRA_CFLAGS)
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

.PHONY: all test asan-test bench bench-compare demo clean help
all: $(PIKA) $(TOOL_BIN)

help:
	@echo "make            build build/pika"
	@echo "make demo       build and run pika on the bundled example (main job)"
	@echo "make test       build and run the test suite"
	@echo "make asan-test  the test suite under AddressSanitizer + UBSan (build-asan/)"
	@echo "make bench      build and run the benchmarks in bench/"
	@echo "LLAMA_CPP=DIR make bench-compare   pika vs llama.cpp (its build/bin DIR) side by side"

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

demo: $(PIKA) $(TOOL_BIN)
	@sh scripts/demo.sh $(BUILD)

clean:
	rm -rf build build-asan

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
