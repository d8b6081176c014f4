# asyncfat on seL4 (docs/SEL4.md): make microkit builds asyncfat.elf, sDDF's drivers and
# virtualisers, the test client and the QEMU test systems for both boards and both
# configurations, each in $(BUILD)/microkit/<board>/<config> (sel4/system.mk, which
# includes asyncfat.mk); make test boots them (sel4/tests/), make bench-sel4 measures.
# MICROKIT_SDK and SDDF default to ../shared/microkit when it is there.
MICROKIT_SDK ?= $(firstword $(wildcard ../shared/microkit/microkit-sdk-2.0.1))
SDDF ?= $(firstword $(wildcard ../shared/microkit/sddf))
MICROKIT_BOARDS := qemu_virt_aarch64 qemu_virt_riscv64
MICROKIT_CONFIGS := debug release
MICROKIT_SYSTEMS_debug := basic multi crash crash_check idle no_config wild_config bench
MICROKIT_SYSTEMS_release := basic bench
microkit_triple_qemu_virt_aarch64 := aarch64-linux-gnu
microkit_triple_qemu_virt_riscv64 := riscv64-linux-gnu

# The scripts find them in their environment (absolute: they run elsewhere).
export MICROKIT_SDK := $(if $(MICROKIT_SDK),$(abspath $(MICROKIT_SDK)))
export SDDF := $(if $(SDDF),$(abspath $(SDDF)))

MICROKIT_BUILDS := $(foreach b,$(MICROKIT_BOARDS),$(foreach c,$(MICROKIT_CONFIGS),microkit-$(b)-$(c)))
.PHONY: microkit microkit-build $(MICROKIT_BUILDS)
microkit: deps
	@$(MAKE) --no-print-directory microkit-build

ifneq ($(and $(MICROKIT_SDK),$(SDDF)),)
microkit-build: $(MICROKIT_BUILDS)
define microkit_build_rule
microkit-$(1)-$(2):
	@mkdir -p $(BUILD)/microkit/$(1)/$(2)
	$$(call quiet,MAKE,$(BUILD)/microkit/$(1)/$(2))
	$(Q)$$(MAKE) --no-print-directory -C $(BUILD)/microkit/$(1)/$(2) -f $(CURDIR)/sel4/system.mk \
		ASYNCFAT=$(CURDIR) MICROKIT_SDK=$(MICROKIT_SDK) SDDF=$(SDDF) MICROKIT_BOARD=$(1) \
		MICROKIT_CONFIG=$(2) TRIPLE=$(microkit_triple_$(1)) SYSTEMS="$(MICROKIT_SYSTEMS_$(2))" \
		>$(BUILD)/microkit/$(1)/$(2)/build.log 2>&1 || { tail -n 30 $(BUILD)/microkit/$(1)/$(2)/build.log; exit 1; }
endef
$(foreach b,$(MICROKIT_BOARDS),$(foreach c,$(MICROKIT_CONFIGS),$(eval $(call microkit_build_rule,$(b),$(c)))))
else
microkit-build:
	@echo "make microkit: skipped, no Microkit SDK and sDDF (set MICROKIT_SDK=<microkit-sdk-2.0.1> SDDF=<sddf>)"
endif

test-build: microkit-build
TEST_SCRIPTS += sel4/tests/test_sel4_aarch64.sh sel4/tests/test_sel4_riscv64.sh sel4/tests/test_sel4_stack_bounds.sh

BENCHES += sel4 # make bench-sel4 (below), results in BENCHMARKS.md
.PHONY: bench-sel4
bench-sel4: deps
	@$(MAKE) --no-print-directory microkit-build
	@BUILD=$(BUILD) sel4/bench_sel4.sh
