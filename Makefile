# xvm build. Sources are discovered by glob: add a .c file under src/ and it
# is built; add tests/unit/test_*.c and it becomes a unit test; add an
# executable tests/check.d/*.sh and `make check` runs it.

CC      ?= gcc
BUILD   ?= build
PKGS    := slirp glib-2.0 jansson zlib libzstd liblzma liblz4 liburing libseccomp
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
ifeq ($(PKG_LIBS),)
ifeq ($(filter deps clean,$(MAKECMDGOALS)),)
$(error libraries missing (pkg-config found none of: $(PKGS)); run 'make deps' first)
endif
endif
V ?= 0
ifeq ($(V),0)
Q := @
else
Q :=
endif

WARN    := -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow=local -Wvla
CFLAGS  ?= -O2 -g
ALL_CFLAGS := -std=gnu11 $(WARN) -D_GNU_SOURCE -Isrc $(PKG_CFLAGS) -pthread -MMD -MP $(CFLAGS)
LDLIBS  := $(PKG_LIBS) -pthread -lm

SAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

SRCS     := $(shell find src -name '*.c' | sort)
MAIN_SRC := src/cli/main.c
LIB_SRCS := $(filter-out $(MAIN_SRC),$(SRCS))
OBJS     := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(LIB_SRCS))
SAN_OBJS := $(patsubst src/%.c,$(BUILD)/san/%.o,$(LIB_SRCS))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/unit/%,$(UNIT_SRCS))

.PHONY: all deps check unit tools guest-tests guest demo bench clean fuzz
all: $(BUILD)/xvm

$(BUILD)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	@echo '  CC      $<'
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/san/%.o: src/%.c
	@mkdir -p $(dir $@)
	@echo '  CC-SAN  $<'
	$(Q)$(CC) $(ALL_CFLAGS) $(SAN_FLAGS) -c $< -o $@

$(BUILD)/libxvm.a: $(OBJS)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(BUILD)/libxvm-san.a: $(SAN_OBJS)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(BUILD)/xvm: $(BUILD)/obj/cli/main.o $(BUILD)/libxvm.a
	@echo '  LD      $@'
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/unit/%: tests/unit/%.c $(BUILD)/libxvm-san.a
	@mkdir -p $(dir $@)
	@echo '  TEST-LD $@'
	$(Q)$(CC) $(ALL_CFLAGS) $(SAN_FLAGS) -Itests/unit -o $@ $< $(BUILD)/libxvm-san.a $(LDLIBS) -lcmocka

unit: $(UNIT_BINS)

# Test helper programs (tests/tools/*.c), linked against the plain library.
TOOL_BINS := $(patsubst tests/tools/%.c,$(BUILD)/tools/%,$(wildcard tests/tools/*.c))
$(BUILD)/tools/%: tests/tools/%.c $(BUILD)/libxvm.a
	@mkdir -p $(dir $@)
	@echo '  TOOL-LD $@'
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libxvm.a $(LDLIBS)

tools: $(TOOL_BINS)

# libFuzzer targets (tests/fuzz/*.c), built by clang with the block layer.
FUZZ_CC   ?= clang
FUZZ_LIBSRCS := $(wildcard src/block/*.c) src/lib/util.c src/lib/log.c
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(wildcard tests/fuzz/*.c))
$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_LIBSRCS) $(wildcard src/block/*.h)
	@mkdir -p $(dir $@)
	@echo '  FUZZ-LD $@'
	$(Q)$(FUZZ_CC) -std=gnu11 -g -O1 -D_GNU_SOURCE -Isrc -pthread \
		-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
		-o $@ $< $(FUZZ_LIBSRCS) -lz -lzstd

fuzz: $(FUZZ_BINS)

# Differential tests of the software CPU against the host CPU (tests/diff).
$(BUILD)/emu-diff: $(wildcard tests/diff/*.c) $(wildcard tests/diff/*.h) $(BUILD)/libxvm.a
	@echo '  LD      $@'
	$(Q)$(CC) $(ALL_CFLAGS) -Itests/unit -Itests/diff -o $@ $(filter %.c,$^) $(BUILD)/libxvm.a $(LDLIBS)

# Guest test programs (freestanding, see tests/guest/README.md).
guest-tests: $(BUILD)/xvm
	@if [ -f tests/guest/Makefile ]; then $(MAKE) -C tests/guest BUILD=$(abspath $(BUILD))/guest-tests; fi

deps:
	bash scripts/deps.sh

# The Linux checks (emu-linux, boot-linux, virtio-*) boot the guest kit, so
# check builds it (it is cached after the first download).
check: all unit tools guest-tests guest
	bash tests/run-checks.sh $(BUILD)

# The default guest (Debian's stock kernel + busybox initramfs), no root needed.
guest:
	bash scripts/guest-kit.sh $(BUILD)/guest

demo: all guest
	bash scripts/demo.sh $(BUILD)

bench: all guest
	bash bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD)

-include $(OBJS:.o=.d) $(SAN_OBJS:.o=.d) $(BUILD)/obj/cli/main.d \
	$(wildcard $(BUILD)/unit/*.d $(BUILD)/tools/*.d $(BUILD)/*.d)
