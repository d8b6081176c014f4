#
# One board and configuration of asyncfat's seL4 systems, built in the current directory
# (make -C <build dir> -f sel4/system.mk ...), the way sDDF's and LionsOS's examples build:
# sDDF's drivers and virtualisers from the sDDF tree with sDDF's own snippets, asyncfat.elf
# with asyncfat.mk, the test client, then for each system in SYSTEMS its configuration
# (sel4/gen_system.py) and its image (the Microkit tool).
#
# Requires: ASYNCFAT, MICROKIT_SDK, SDDF, MICROKIT_BOARD, MICROKIT_CONFIG, SYSTEMS.
# Outputs: asyncfat.elf, test_client.elf, <system>.img, sys_<system>/ (system file,
# configured ELFs, report).

BOARD_DIR := $(MICROKIT_SDK)/board/$(MICROKIT_BOARD)/$(MICROKIT_CONFIG)
MICROKIT_TOOL := $(MICROKIT_SDK)/bin/microkit
PYTHON ?= python3
TOOLCHAIN := gcc

include $(SDDF)/tools/make/board/$(MICROKIT_BOARD).mk
# gcc.mk names the toolchain by TRIPLE; Debian's cross compilers are *-linux-gnu, passed
# on this make's command line (see sel4/module.mk), which takes precedence.
include $(SDDF)/tools/make/toolchain/$(TOOLCHAIN).mk

ifeq ($(ARCH),riscv64)
CFLAGS += -march=rv64imafdc_zicsr_zifencei -mabi=lp64d -mcmodel=medany
endif
CFLAGS += -fno-pic -fno-pie -Wno-unused-function -I$(SDDF)/include -I$(SDDF)/include/microkit
SDDF_CUSTOM_LIBC := 1
LDFLAGS := -L$(BOARD_DIR)/lib
LIBS := --start-group -lmicrokit -Tmicrokit.ld libsddf_util_debug.a --end-group

all: $(addsuffix .img,$(SYSTEMS)) layout_check.o

include $(SDDF)/util/util.mk
include $(SDDF)/drivers/blk/$(BLK_DRIV_DIR)/blk_driver.mk
include $(SDDF)/drivers/serial/$(UART_DRIV_DIR)/serial_driver.mk
include $(SDDF)/blk/components/blk_components.mk
include $(SDDF)/serial/components/serial_components.mk
include $(SDDF)/drivers/timer/$(TIMER_DRIV_DIR)/timer_driver.mk
include $(ASYNCFAT)/asyncfat.mk

SDDF_IMAGES := blk_driver.elf blk_virt.elf serial_driver.elf serial_virt_tx.elf timer_driver.elf
$(SDDF_IMAGES) asyncfat.elf: libsddf_util_debug.a

# The test client: LionsOS protocol over asyncfat's FiberPool, printing through sDDF serial.
ASYNCFAT_ABS := $(abspath $(ASYNCFAT))
CLIENT_SRCS := $(patsubst $(ASYNCFAT_ABS)/%,%,$(wildcard $(ASYNCFAT_ABS)/sel4/clients/*.c)) \
	fiberflow/fiberflow.c fiberflow/switch_$(ARCH).S fiberpool/pool.c fiberpool/sync.c
CLIENT_OBJS := $(addprefix client/,$(addsuffix .o,$(basename $(CLIENT_SRCS))))
CLIENT_CFLAGS := -std=gnu11 -I$(ASYNCFAT_ABS) -ffunction-sections -fno-stack-protector -Wextra \
	-Wno-unused-parameter -Werror

client/%.o: $(ASYNCFAT_ABS)/%.c $(ASYNCFAT_FLAGS_STAMP)
	@mkdir -p $(@D)
	$(CC) -c $(CFLAGS) $(CLIENT_CFLAGS) -MMD -MP $< -o $@
client/%.o: $(ASYNCFAT_ABS)/%.S $(ASYNCFAT_FLAGS_STAMP)
	@mkdir -p $(@D)
	$(CC) -c $(CFLAGS) $(CLIENT_CFLAGS) -MMD -MP $< -o $@

test_client.elf: $(CLIENT_OBJS) libsddf_util.a
	$(LD) $(LDFLAGS) --gc-sections $(CLIENT_OBJS) --start-group -lmicrokit -Tmicrokit.ld libsddf_util.a --end-group -o $@

-include $(CLIENT_OBJS:.o=.d)

# Our configuration structs against sDDF's headers, field by field.
layout_check.o: $(ASYNCFAT_ABS)/sel4/layout_check.c $(ASYNCFAT_ABS)/platform/microkit/config.h
	$(CC) -c $(CFLAGS) -std=gnu11 -Wno-unused-variable -I$(ASYNCFAT_ABS) $< -o $@

# A system: its configuration blobs and configured ELFs, then the loader image. The tool
# runs in the system's folder: it looks for programs in the current directory first.
CONFIG_CFLAGS := $(filter-out -MD,$(CFLAGS)) -I$(ASYNCFAT_ABS) -std=gnu11
%.img: $(ASYNCFAT_ABS)/sel4/systems/%.json $(ASYNCFAT_ABS)/sel4/gen_system.py $(SDDF_IMAGES) asyncfat.elf \
		test_client.elf layout_check.o
	rm -rf sys_$*
	$(PYTHON) $(ASYNCFAT_ABS)/sel4/gen_system.py --board $(MICROKIT_BOARD) --description $< \
		--output sys_$* --search-path . --cc "$(CC)" --objcopy "$(OBJCOPY)" --cflags "$(CONFIG_CFLAGS)"
	cd sys_$* && $(MICROKIT_TOOL) $*.system --search-path . --board $(MICROKIT_BOARD) \
		--config $(MICROKIT_CONFIG) -o ../$@ -r report.txt >microkit.log

# The basic system with asyncfat's .blk_client_config never written (zeros): the PD must
# report it and serve nothing (sel4/test_sel4.sh).
no_config.img: basic.img
	rm -rf sys_no_config && cp -r sys_basic sys_no_config
	head -c 80 /dev/zero >sys_no_config/zero.data
	$(OBJCOPY) --update-section .blk_client_config=sys_no_config/zero.data sys_no_config/asyncfat.elf
	cd sys_no_config && cp basic.system no_config.system && cp basic.clients no_config.clients && \
		$(MICROKIT_TOOL) no_config.system --search-path . --board $(MICROKIT_BOARD) \
		--config $(MICROKIT_CONFIG) -o ../$@ -r report.txt >microkit.log

# The basic system with asyncfat's block data region pointed at the PD's own code (the
# vaddr at .blk_client_config offset 64 set to 0x200000): the PD must refuse it.
wild_config.img: basic.img
	rm -rf sys_wild_config && cp -r sys_basic sys_wild_config
	$(PYTHON) -c 'import struct,sys; b=bytearray(open(sys.argv[1],"rb").read()); struct.pack_into("<Q",b,64,0x200000); open(sys.argv[2],"wb").write(b)' \
		sys_basic/asyncfat_blk_client_config.data sys_wild_config/wild.data
	$(OBJCOPY) --update-section .blk_client_config=sys_wild_config/wild.data sys_wild_config/asyncfat.elf
	cd sys_wild_config && cp basic.system wild_config.system && cp basic.clients wild_config.clients && \
		$(MICROKIT_TOOL) wild_config.system --search-path . --board $(MICROKIT_BOARD) \
		--config $(MICROKIT_CONFIG) -o ../$@ -r report.txt >microkit.log
