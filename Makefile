# asyncfat build. Modules describe themselves in <dir>/module.mk (sources, tests, benches);
# this file holds the rules. Build flavours, each in its own tree under $(BUILD):
#   san/    tests: -O1, AddressSanitizer + UndefinedBehaviorSanitizer
#   rel/    tools and benchmarks: -O2
#   cross/  freestanding core per architecture, and architecture tests (make cross)
# Use BUILD=<dir> to keep a separate tree (parallel work).

BUILD ?= build
CC ?= cc
ifeq ($(origin CC),default)
CC := gcc
endif
HOST_ARCH := $(shell uname -m)

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
COMMON_CFLAGS := -std=c11 -g $(WARN) -I. -D_GNU_SOURCE
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
SAN_CFLAGS := $(COMMON_CFLAGS) -O1 $(SAN_FLAGS) -DAF_ASAN=1 -DAF_DEBUG=1
REL_CFLAGS := $(COMMON_CFLAGS) -O2
# Libraries go only where they are needed: a module sets <name>_LDLIBS for a program or
# test, and <name>_CFLAGS for the objects of a program.
URING_LDLIBS := -luring -lpthread
FUSE_CFLAGS := $(shell pkg-config --cflags fuse3 2>/dev/null)
FUSE_LDLIBS := $(shell pkg-config --libs fuse3 2>/dev/null)
# What is installed decides what `make` can build; set-up stays in make deps/run/test.
HAVE_URING := $(shell pkg-config --exists liburing 2>/dev/null && echo yes)
HAVE_FUSE := $(shell pkg-config --exists fuse3 2>/dev/null && echo yes)

# Quiet by default; V=1 shows every command.
ifeq ($(V),1)
Q :=
quiet = @true
else
Q := @
quiet = @printf '  %-6s %s\n' $(1) $(2)
endif

# Filled in by the module fragments.
CORE_SRCS :=        # portable core, freestanding (also built hosted)
CORE_ARCH_SRCS :=   # per-architecture core sources; $(ARCH) is substituted
HOST_SRCS :=        # Linux platform and client library (libc allowed)
TESTS :=            # test programs; <name>_SRCS lists their own sources
TEST_SCRIPTS :=     # shell tests; they print PASS/FAIL lines
CROSS_TESTS :=      # tests (subset of TESTS) also run on aarch64 and riscv64 under qemu
BENCHES :=          # benchmark groups; bench-<name> runs $(BUILD)/rel/bench/<name>
PROGRAMS :=         # release programs; <name>_SRCS, <name>_LDLIBS, <name>_CFLAGS
NEEDS_FUSE :=       # programs that cannot build without libfuse3

include $(sort $(wildcard */module.mk */*/module.mk))

.DEFAULT_GOAL := all
.PHONY: all test test-build clang-build check cross bench run deps clean san install uninstall
.SECONDARY:

arch_srcs = $(subst $$(ARCH),$(1),$(CORE_ARCH_SRCS))
objs = $(patsubst %.c,$(BUILD)/$(1)/%.o,$(patsubst %.S,$(BUILD)/$(1)/%.o,$(2)))

# ---- hosted flavours -------------------------------------------------------------------
SAN_LIB := $(BUILD)/san/libasyncfat.a
REL_LIB := $(BUILD)/rel/libasyncfat.a
REL_CORE_LIB := $(BUILD)/rel/libasyncfat_core.a
CORE_LIB_SRCS := $(CORE_SRCS) $(call arch_srcs,$(HOST_ARCH))
LIB_SRCS := $(CORE_LIB_SRCS) $(HOST_SRCS)

$(BUILD)/san/%.o: %.c
	@mkdir -p $(@D)
	$(call quiet,CC,$@)
	$(Q)$(CC) $(SAN_CFLAGS) $(EXTRA_CFLAGS) -MMD -MP -c $< -o $@
$(BUILD)/san/%.o: %.S
	@mkdir -p $(@D)
	$(call quiet,AS,$@)
	$(Q)$(CC) $(SAN_CFLAGS) -MMD -MP -c $< -o $@
$(BUILD)/rel/%.o: %.c
	@mkdir -p $(@D)
	$(call quiet,CC,$@)
	$(Q)$(CC) $(REL_CFLAGS) $(EXTRA_CFLAGS) -MMD -MP -c $< -o $@
$(BUILD)/rel/%.o: %.S
	@mkdir -p $(@D)
	$(call quiet,AS,$@)
	$(Q)$(CC) $(REL_CFLAGS) -MMD -MP -c $< -o $@

$(SAN_LIB): $(call objs,san,$(LIB_SRCS))
	@rm -f $@
	$(call quiet,AR,$@)
	$(Q)ar rcs $@ $^
$(REL_LIB): $(call objs,rel,$(LIB_SRCS))
	@rm -f $@
	$(call quiet,AR,$@)
	$(Q)ar rcs $@ $^
$(REL_CORE_LIB): $(call objs,rel,$(CORE_LIB_SRCS))
	@rm -f $@
	$(call quiet,AR,$@)
	$(Q)ar rcs $@ $^

# Test programs: $(BUILD)/san/tests/<name>
TEST_BINS := $(addprefix $(BUILD)/san/tests/,$(TESTS))
define test_rule
$(BUILD)/san/tests/$(1): $(call objs,san,$($(1)_SRCS) tests/harness.c) $(SAN_LIB)
	@mkdir -p $$(@D)
	$$(call quiet,LD,$$@)
	$(Q)$$(CC) $(SAN_FLAGS) -o $$@ $$^ $$($(1)_LDLIBS)
endef
$(foreach t,$(TESTS),$(eval $(call test_rule,$(t))))

# Release programs (tools, benchmarks): $(BUILD)/rel/<name>
define program_rule
$(BUILD)/rel/$(1): $(call objs,rel,$($(1)_SRCS)) $(REL_LIB)
	@mkdir -p $$(@D)
	$$(call quiet,LD,$$@)
	$(Q)$$(CC) -o $$@ $$^ $$($(1)_LDLIBS)
$(call objs,rel,$($(1)_SRCS)) $(call objs,san,$($(1)_SRCS)): EXTRA_CFLAGS = $$($(1)_CFLAGS)
endef
$(foreach p,$(PROGRAMS),$(eval $(call program_rule,$(p))))

# The command under the sanitizers too: the CLI tests run it (ASYNCFAT_SAN in test_cli.sh).
$(BUILD)/san/asyncfat: $(call objs,san,$(asyncfat_SRCS)) $(SAN_LIB)
	@mkdir -p $(@D)
	$(call quiet,LD,$@)
	$(Q)$(CC) $(SAN_FLAGS) -o $@ $^ $(asyncfat_LDLIBS)

# make: everything the installed packages allow (it never installs anything; make deps does).
ALL_PROGRAMS := $(if $(HAVE_FUSE),$(PROGRAMS),$(filter-out $(NEEDS_FUSE),$(PROGRAMS)))
all: $(REL_CORE_LIB) $(if $(HAVE_URING),$(REL_LIB) $(addprefix $(BUILD)/rel/,$(ALL_PROGRAMS)),)
	@$(if $(HAVE_URING),,echo "make: liburing-dev is not installed: built the core library only (make deps installs it)")
	@$(if $(HAVE_FUSE),,echo "make: libfuse3-dev is not installed: skipped $(NEEDS_FUSE) (make deps installs it)")
# The command under the sanitizers, for fuzzing and debugging.
san: $(BUILD)/san/asyncfat

# make install: the command and its manual page, under DESTDIR and PREFIX (default
# /usr/local) as usual.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
install: $(BUILD)/rel/asyncfat
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1
	install -m 755 $(BUILD)/rel/asyncfat $(DESTDIR)$(BINDIR)/asyncfat
	install -m 644 docs/asyncfat.1 $(DESTDIR)$(MANDIR)/man1/asyncfat.1

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/asyncfat $(DESTDIR)$(MANDIR)/man1/asyncfat.1

deps:
	@scripts/deps.sh

# make test: unit and integration tests under sanitizers, then the cross-architecture run.
test: deps
	@$(MAKE) --no-print-directory test-build
	@BUILD=$(BUILD) tests/run.sh $(TEST_BINS) $(TEST_SCRIPTS) $(CROSS_TEST_BINS)

test-build: $(TEST_BINS) $(BUILD)/san/asyncfat $(addprefix $(BUILD)/rel/,$(PROGRAMS)) cross-build clang-build

# The whole library must also build warning-free with clang.
clang-build:
	@$(MAKE) --no-print-directory CC=clang BUILD=$(BUILD)/clang $(BUILD)/clang/rel/libasyncfat.a

# make check T=name: run one test program (or a few) without the rest.
check: $(addprefix $(BUILD)/san/tests/,$(T))
	@BUILD=$(BUILD) tests/run.sh $^

# ---- freestanding cross builds -----------------------------------------------------------
include scripts/cross.mk

# ---- benchmarks ------------------------------------------------------------------------------
bench: deps
	@for b in $(BENCHES); do $(MAKE) --no-print-directory bench-$$b || exit 1; done
# A group is the program bench/<name>, or the script bench/<name>.sh when it needs more
# (callgrind, several processes); scripts find programs under $(BUILD)/rel.
bench-%: deps
	@scripts/deps.sh --bench
	@$(MAKE) --no-print-directory $(addprefix $(BUILD)/rel/,$(PROGRAMS))
	@if [ -x bench/$*.sh ]; then BUILD=$(BUILD) bench/$*.sh; else $(BUILD)/rel/bench/$*; fi

# Only what the mount needs.
run: deps
	@$(MAKE) --no-print-directory $(BUILD)/rel/asyncfat
	@BUILD=$(BUILD) scripts/run.sh

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
