# Linux platform: component runtime and launcher, guarded fiber stacks, the io_uring block
# driver (a core usable in-process, plus its component glue), and the driver benchmark.
HOST_SRCS += platform/linux/runtime.c platform/linux/channel_wake.c platform/linux/launcher.c platform/linux/stack_alloc.c \
	platform/linux/blk_driver.c platform/linux/blk_device_model.c platform/linux/blk_driver_faults.c platform/linux/blk_driver_mapped.c \
	platform/linux/blk_log.c platform/linux/blk_driver_component.c platform/linux/fs_system.c \
	platform/linux/component_memory.c platform/linux/image_lock.c platform/linux/busy_poll.c

TESTS += platform_launcher
platform_launcher_SRCS := platform/linux/tests/test_launcher.c

TESTS += platform_fs_system
platform_fs_system_SRCS := platform/linux/tests/test_fs_system.c
platform_fs_system_LDLIBS := $(URING_LDLIBS)

TESTS += platform_blk_driver
platform_blk_driver_SRCS := platform/linux/tests/test_blk_driver.c tests/support/blk_test_rig.c \
	platform/linux/blkd.c
platform_blk_driver_LDLIBS := $(URING_LDLIBS)

# The driver as a component program, for systems that exec their components.
PROGRAMS += asyncfat-blkd
asyncfat-blkd_SRCS := platform/linux/component_main.c platform/linux/blkd.c
asyncfat-blkd_LDLIBS := $(URING_LDLIBS)

TESTS += platform_busy_poll
platform_busy_poll_SRCS := platform/linux/tests/test_busy_poll.c

TESTS += platform_channel_wake
platform_channel_wake_SRCS := platform/linux/tests/test_channel_wake.c
