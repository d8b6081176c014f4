# FAT engine, format-level half: names, boot sector, FAT entries, time, mkfs, checker, the
# rename record (included from fat/module.mk, which holds the operational half).
CORE_SRCS += fat/fat_name.c fat/fat_bpb.c fat/fat_time.c fat/fat_mkfs.c fat/fat_check.c fat/fat_check_chain.c \
	fat/fat_check_entry.c fat/fat_check_dir.c fat/fat_check_boot.c fat/fat_check_rename.c fat/fat_intent.c

FAT_FORMAT_TEST_SUPPORT := fat/tests/fat_test_tools.c tests/support/blk_fixture.c
TESTS += fat_name fat_time fat_entry fat_bpb fat_mkfs fat_check fat_check_deep fat_check_boot fat_check_cut
CROSS_TESTS += fat_name fat_time fat_entry
fat_name_SRCS := fat/tests/test_fat_name.c
fat_name_CORE_SRCS := fat/fat_name.c
fat_time_SRCS := fat/tests/test_fat_time.c
fat_time_CORE_SRCS := fat/fat_time.c
fat_entry_SRCS := fat/tests/test_fat_entry.c
fat_bpb_SRCS := fat/tests/test_fat_bpb.c $(FAT_FORMAT_TEST_SUPPORT)
fat_mkfs_SRCS := fat/tests/test_fat_mkfs.c $(FAT_FORMAT_TEST_SUPPORT)
fat_check_SRCS := fat/tests/test_fat_check.c fat/tests/fat_check_tools.c $(FAT_FORMAT_TEST_SUPPORT)
fat_check_deep_SRCS := fat/tests/test_fat_check_deep.c fat/tests/fat_check_tools.c $(FAT_FORMAT_TEST_SUPPORT)
fat_check_boot_SRCS := fat/tests/test_fat_check_boot.c fat/tests/fat_check_tools.c $(FAT_FORMAT_TEST_SUPPORT)
fat_check_cut_SRCS := fat/tests/test_fat_check_cut.c fat/tests/fat_check_tools.c $(FAT_FORMAT_TEST_SUPPORT)
$(foreach t,fat_bpb fat_mkfs fat_check fat_check_deep fat_check_boot fat_check_cut,$(eval $(t)_LDLIBS := $$(URING_LDLIBS)))
