# FAT engine, format-level half: names, boot sector, time, mkfs, checker (included from
# fat/module.mk, which holds the operational half).
CORE_SRCS += fat/fat_name.c fat/fat_bpb.c fat/fat_time.c fat/fat_mkfs.c fat/fat_check.c

FAT_FORMAT_TEST_SUPPORT := fat/tests/fat_test_tools.c tests/support/blk_fixture.c
TESTS += fat_name fat_time fat_bpb fat_mkfs fat_check
CROSS_TESTS += fat_name fat_time
fat_name_SRCS := fat/tests/test_fat_name.c
fat_name_CORE_SRCS := fat/fat_name.c
fat_time_SRCS := fat/tests/test_fat_time.c
fat_time_CORE_SRCS := fat/fat_time.c
fat_bpb_SRCS := fat/tests/test_fat_bpb.c $(FAT_FORMAT_TEST_SUPPORT)
fat_mkfs_SRCS := fat/tests/test_fat_mkfs.c $(FAT_FORMAT_TEST_SUPPORT)
fat_check_SRCS := fat/tests/test_fat_check.c $(FAT_FORMAT_TEST_SUPPORT)
$(foreach t,fat_bpb fat_mkfs fat_check,$(eval $(t)_LDLIBS := $$(URING_LDLIBS)))
