#
# asyncfat as a Microkit protection domain: a Makefile snippet for LionsOS- and sDDF-style
# builds (include it from the Makefile that runs in your build directory, as LionsOS
# includes components/fs/fat/fat.mk). Builds asyncfat.elf, which takes the place of
# LionsOS's fat.elf: same config sections, same regions, same worker-stack symbols
# (docs/SEL4.md).
#
# Requires variables:
#	ASYNCFAT          the asyncfat source tree
#	MICROKIT_SDK, MICROKIT_BOARD, MICROKIT_CONFIG (debug: logs on the debug console,
#	                  paints fiber stacks and checks their canaries at every switch)
#	CC, LD            the PD toolchain (sDDF's tools/make/toolchain/*.mk sets them),
#	                  CFLAGS with the target flags (-mcpu=$(CPU) ...) and
#	                  -I$(MICROKIT_SDK)/board/$(MICROKIT_BOARD)/$(MICROKIT_CONFIG)/include,
#	                  LDFLAGS (-L<board>/lib) and LIBS (-lmicrokit -Tmicrokit.ld)
# Optional (build-time limits, docs/SEL4.md):
#	ASYNCFAT_FIBERS (48), ASYNCFAT_STACK_BYTES (24576: sel4/stack_depth.py), ASYNCFAT_ARENA_KIB (768),
#	ASYNCFAT_MAX_NODES (256), ASYNCFAT_INDEX_ENTRIES (4096), ASYNCFAT_BUILD_EPOCH
#	(Unix seconds for the default wall clock: SOURCE_DATE_EPOCH, else now)
# Generates asyncfat.elf (objects under asyncfat/). gnu11: seL4's headers use `asm`.

ASYNCFAT_SRC := $(abspath $(ASYNCFAT))
ifeq ($(wildcard $(ASYNCFAT_SRC)/server/fs_component.c),)
$(error ASYNCFAT must name the asyncfat source tree)
endif

ASYNCFAT_ARCH := $(shell sed -n 's/^\#define CONFIG_SEL4_ARCH  *\([^ ]*\).*$$/\1/p' \
	$(MICROKIT_SDK)/board/$(MICROKIT_BOARD)/$(MICROKIT_CONFIG)/include/kernel/gen_config.h)
ifeq ($(filter aarch64 riscv64,$(ASYNCFAT_ARCH)),)
$(error asyncfat.mk: no aarch64 or riscv64 board at $(MICROKIT_SDK)/board/$(MICROKIT_BOARD)/$(MICROKIT_CONFIG))
endif

ASYNCFAT_FIBERS ?= 48
ASYNCFAT_STACK_BYTES ?= 24576
ASYNCFAT_ARENA_KIB ?= 768
ASYNCFAT_MAX_NODES ?= 256
ASYNCFAT_INDEX_ENTRIES ?= 4096
ASYNCFAT_BUILD_EPOCH ?= $(or $(SOURCE_DATE_EPOCH),$(shell date +%s))

ASYNCFAT_CFLAGS := -std=gnu11 -I$(ASYNCFAT_SRC) -ffreestanding \
	-fno-stack-protector -ffunction-sections -Wall -Wextra -Wno-unused-parameter \
	-DASYNCFAT_BUILD_EPOCH=$(ASYNCFAT_BUILD_EPOCH)LL \
	-DASYNCFAT_ARENA_BYTES='($(ASYNCFAT_ARENA_KIB)u * 1024u)' \
	-DFS_COMPONENT_FIBERS=$(ASYNCFAT_FIBERS)u -DFS_COMPONENT_STACK_SIZE=$(ASYNCFAT_STACK_BYTES)u \
	-DFS_COMPONENT_MAX_NODES=$(ASYNCFAT_MAX_NODES)u -DFS_COMPONENT_INDEX_ENTRIES=$(ASYNCFAT_INDEX_ENTRIES)u \
	-DFS_SERVER_MAX_CLIENTS=8u
# gcc would turn base/freestanding.c's loops back into calls to memcpy and memset; clang
# does not with -ffreestanding, and does not know the flag. ld.lld cannot relax riscv64
# code (the context switch aligns its code).
ifeq ($(findstring clang,$(shell $(CC) --version 2>/dev/null)),)
ASYNCFAT_CFLAGS += -fno-tree-loop-distribute-patterns
else ifeq ($(ASYNCFAT_ARCH),riscv64)
ASYNCFAT_CFLAGS += -mno-relax
endif
ifeq ($(MICROKIT_CONFIG),debug)
ASYNCFAT_CFLAGS += -DASYNCFAT_DEBUG=1 -DAF_DEBUG=1 -DFS_COMPONENT_PAINT_STACKS=1
else
ASYNCFAT_CFLAGS += -DASYNCFAT_DEBUG=0
endif

# The portable core (every source of its layers' folders; --gc-sections drops what the PD
# does not call) and the Microkit platform.
ASYNCFAT_CORE_DIRS := fiberpool blk vfs fat server platform/microkit
ASYNCFAT_SRCS := base/freestanding.c fiberflow/fiberflow.c fiberflow/switch_$(ASYNCFAT_ARCH).S \
	$(patsubst $(ASYNCFAT_SRC)/%,%,$(wildcard $(addprefix $(ASYNCFAT_SRC)/,$(addsuffix /*.c,$(ASYNCFAT_CORE_DIRS)))))
ASYNCFAT_OBJS := $(addprefix asyncfat/,$(addsuffix .o,$(basename $(ASYNCFAT_SRCS))))

# Objects are rebuilt when the flags change (another board, configuration or limit).
ASYNCFAT_FLAGS_STAMP := asyncfat/.cflags-$(shell echo -- $(CC) $(CFLAGS) $(ASYNCFAT_CFLAGS) | sed 's/-DASYNCFAT_BUILD_EPOCH=[0-9]*LL//' | cksum | cut -d' ' -f1)

$(ASYNCFAT_FLAGS_STAMP):
	@mkdir -p asyncfat
	-rm -f asyncfat/.cflags-*
	touch $@

asyncfat/%.o: $(ASYNCFAT_SRC)/%.c $(ASYNCFAT_FLAGS_STAMP)
	@mkdir -p $(@D)
	$(CC) -c $(CFLAGS) $(ASYNCFAT_CFLAGS) -MMD -MP $< -o $@

asyncfat/%.o: $(ASYNCFAT_SRC)/%.S $(ASYNCFAT_FLAGS_STAMP)
	@mkdir -p $(@D)
	$(CC) -c $(CFLAGS) $(ASYNCFAT_CFLAGS) -MMD -MP $< -o $@

asyncfat.elf: $(ASYNCFAT_OBJS)
	$(LD) $(LDFLAGS) --gc-sections $^ $(LIBS) -o $@

-include $(ASYNCFAT_OBJS:.o=.d)

clean::
	rm -rf asyncfat

clobber::
	rm -f asyncfat.elf
