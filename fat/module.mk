# FAT engine: volume, FAT table and free map, nodes, files, directories, paths, operations.
CORE_SRCS += fat/fat_volume.c fat/fat_table.c fat/fat_node.c fat/fat_file.c fat/fat_dir.c \
	fat/fat_path.c fat/fat_ops.c fat/fat_vfs.c fat/fat_recover.c

FAT_TEST_SUPPORT := tests/support/blk_fixture.c fat/tests/fat_test_tools.c fat/tests/fat_engine_test.c
TESTS += fat_ops fat_interop fat_model fat_edge fat_corrupt fat_rename fat_recover fat_check_rename
fat_rename_SRCS := fat/tests/test_fat_rename.c $(FAT_TEST_SUPPORT)
fat_recover_SRCS := fat/tests/test_fat_recover.c $(FAT_TEST_SUPPORT)
fat_check_rename_SRCS := fat/tests/test_fat_check_rename.c fat/tests/fat_check_tools.c $(FAT_TEST_SUPPORT)
fat_corrupt_SRCS := fat/tests/test_fat_corrupt.c $(FAT_TEST_SUPPORT)
fat_edge_SRCS := fat/tests/test_fat_edge.c $(FAT_TEST_SUPPORT)
fat_model_SRCS := fat/tests/test_fat_model.c $(FAT_TEST_SUPPORT)
fat_ops_SRCS := fat/tests/test_fat_ops.c $(FAT_TEST_SUPPORT)
fat_interop_SRCS := fat/tests/test_fat_interop.c $(FAT_TEST_SUPPORT)
$(foreach t,fat_ops fat_interop fat_model fat_edge fat_corrupt fat_rename fat_recover fat_check_rename,$(eval $(t)_LDLIBS := $$(URING_LDLIBS)))

# The format-level half: names, boot sector, time, mkfs, checker.
include fat/module_format.mk
