# Freestanding builds of the portable core, and architecture tests under qemu-user.
#
# For each target the core (CORE_SRCS, the arch sources, base/freestanding.c) is compiled
# with -ffreestanding and only the compiler's own headers, linked with -nostdlib into one
# relocatable object (with libgcc, the compiler's own support routines), and checked to need
# no symbol from outside but the platform interface (component_*, platform/component.h). riscv64 is built twice:
# lp64d (hard float, saves fs0-fs11) and lp64 (soft float).
# CROSS_TESTS are then built hosted (static, cross libc) from <name>_SRCS and the core
# sources they need, <name>_CORE_SRCS, and run under qemu-user.

CROSS_TARGETS := x86_64 aarch64 riscv64 riscv64sf
cross_cc_x86_64 := $(CC)
cross_cc_aarch64 := aarch64-linux-gnu-gcc
cross_cc_riscv64 := riscv64-linux-gnu-gcc
cross_cc_riscv64sf := riscv64-linux-gnu-gcc
cross_arch_x86_64 := x86_64
cross_arch_aarch64 := aarch64
cross_arch_riscv64 := riscv64
cross_arch_riscv64sf := riscv64
cross_flags_x86_64 := -mno-red-zone
cross_flags_aarch64 :=
cross_flags_riscv64 := -march=rv64gc -mabi=lp64d -mcmodel=medany
cross_flags_riscv64sf := -march=rv64imac -mabi=lp64 -mcmodel=medany

FREESTANDING_CFLAGS = -std=c11 -O2 -g $(WARN) -I. -ffreestanding -nostdinc \
	-isystem $(shell $(cross_cc_$(1)) -print-file-name=include) \
	-fno-tree-loop-distribute-patterns -fno-stack-protector -fno-pic $(cross_flags_$(1))

CROSS_CORE_SRCS = $(CORE_SRCS) $(call arch_srcs,$(cross_arch_$(1))) base/freestanding.c

define cross_rule
$(BUILD)/cross/$(1)/obj/%.o: %.c
	@mkdir -p $$(@D)
	$$(call quiet,CC,$$@)
	$(Q)$(cross_cc_$(1)) $$(call FREESTANDING_CFLAGS,$(1)) -MMD -MP -c $$< -o $$@
$(BUILD)/cross/$(1)/obj/%.o: %.S
	@mkdir -p $$(@D)
	$$(call quiet,CC,$$@)
	$(Q)$(cross_cc_$(1)) $$(call FREESTANDING_CFLAGS,$(1)) -MMD -MP -c $$< -o $$@
$(BUILD)/cross/$(1)/core.o: $$(patsubst %,$(BUILD)/cross/$(1)/obj/%.o,$$(basename $$(call CROSS_CORE_SRCS,$(1))))
	$$(call quiet,LD,$$@)
	$(Q)$(cross_cc_$(1)) -nostdlib -r -o $$@ $$^ -lgcc
	@undef=$$$$(nm -u $$@ | awk '{print $$$$2}' | grep -v '^component_'); \
	if [ -n "$$$$undef" ]; then echo "freestanding core for $(1) needs outside symbols:" $$$$undef; rm -f $$@; exit 1; fi
endef
$(foreach t,$(CROSS_TARGETS),$(eval $(call cross_rule,$(t))))

# Hosted architecture tests (not x86_64: those run under the sanitizers already).
CROSS_TEST_ARCHES := aarch64 riscv64
CROSS_TEST_HDRS := $(wildcard base/*.h fiberflow/*.h fiberpool/*.h protocol/*.h tests/*.h)
CROSS_TEST_CFLAGS := -std=c11 -O2 -g $(WARN) -I. -D_GNU_SOURCE -static
define cross_test_rule
$(BUILD)/cross/$(1)/tests/$(2): $$($(2)_SRCS) $$($(2)_CORE_SRCS) tests/harness.c $(call arch_srcs,$(1)) $(CROSS_TEST_HDRS)
	@mkdir -p $$(@D)
	$$(call quiet,CC,$$@)
	$(Q)$(cross_cc_$(1)) $(CROSS_TEST_CFLAGS) -o $$@ $$^ -lpthread
endef
$(foreach a,$(CROSS_TEST_ARCHES),$(foreach t,$(CROSS_TESTS),$(eval $(call cross_test_rule,$(a),$(t)))))

CROSS_CORE_OBJS := $(foreach t,$(CROSS_TARGETS),$(BUILD)/cross/$(t)/core.o)
CROSS_TEST_BINS := $(foreach a,$(CROSS_TEST_ARCHES),$(addprefix $(BUILD)/cross/$(a)/tests/,$(CROSS_TESTS))) \
	$(CROSS_EXTRA_BINS)

.PHONY: cross cross-build
cross-build: $(CROSS_CORE_OBJS) $(CROSS_TEST_BINS)
cross: deps
	@$(MAKE) --no-print-directory cross-build
	@BUILD=$(BUILD) tests/run.sh $(CROSS_TEST_BINS)
