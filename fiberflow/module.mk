# FiberFlow: context switch (one assembly file per architecture) and fiber creation.
CORE_SRCS += fiberflow/fiberflow.c
CORE_ARCH_SRCS += fiberflow/switch_$$(ARCH).S

TESTS += fiberflow
CROSS_TESTS += fiberflow
fiberflow_SRCS := fiberflow/tests/test_fiberflow.c fiberflow/tests/check_regs.S
fiberflow_CORE_SRCS := fiberflow/fiberflow.c

# The FF_SAVE_FPU_CONTROL=1 variant: natively, and on aarch64 and riscv64 (lp64d), where it
# needs its own rule as its switch replaces the architecture's default one.
TESTS += fiberflow_fpu
fiberflow_fpu_SRCS := fiberflow/tests/test_fiberflow_fpu.c fiberflow/tests/fpu_fiberflow.c \
	fiberflow/tests/fpu_switch.S
fiberflow_fpu_LDLIBS := -lm
FF_FPU_CROSS_BINS := $(BUILD)/cross/aarch64/tests/fiberflow_fpu $(BUILD)/cross/riscv64/tests/fiberflow_fpu
FF_DEPS := fiberflow/fiberflow.c fiberflow/fiberflow.h fiberflow/frame.h $(wildcard fiberflow/switch_*.S)
CROSS_EXTRA_BINS += $(FF_FPU_CROSS_BINS)
$(FF_FPU_CROSS_BINS): $(BUILD)/cross/%/tests/fiberflow_fpu: $(fiberflow_fpu_SRCS) tests/harness.c $(FF_DEPS)
	@mkdir -p $(@D)
	$(call quiet,CC,$@)
	$(Q)$(cross_cc_$*) $(CROSS_TEST_CFLAGS) -o $@ $(fiberflow_fpu_SRCS) tests/harness.c -lm

# riscv64 soft-float has no cross libc: a freestanding program with its own _start.
FF_SF_BIN := $(BUILD)/cross/riscv64sf/tests/fiberflow_sf
FF_SF_SRCS := fiberflow/tests/test_fiberflow_sf.c fiberflow/tests/check_regs.S fiberflow/fiberflow.c \
	fiberflow/switch_riscv64.S base/freestanding.c
CROSS_EXTRA_BINS += $(FF_SF_BIN)
$(FF_SF_BIN): $(FF_SF_SRCS) $(FF_DEPS)
	@mkdir -p $(@D)
	$(call quiet,CC,$@)
	$(Q)$(cross_cc_riscv64sf) $(call FREESTANDING_CFLAGS,riscv64sf) -nostdlib -static -Wl,-z,separate-code -o $@ $(FF_SF_SRCS) -lgcc
