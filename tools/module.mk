# Tools: the client library (in the host library, for tests too), the asyncfat command with
# its FUSE mount, `make run`'s script, and their tests.
HOST_SRCS += tools/fs_client.c

PROGRAMS += asyncfat
asyncfat_SRCS := tools/asyncfat.c tools/cli.c tools/cli_dir.c tools/cmd_offline.c tools/cmd_files.c \
	tools/cmd_cp.c tools/fuse_mount.c tools/offline_volume.c
asyncfat_CFLAGS := $(FUSE_CFLAGS)
asyncfat_LDLIBS := $(URING_LDLIBS) $(FUSE_LDLIBS)
NEEDS_FUSE += asyncfat

TESTS += fs_client
fs_client_SRCS := tools/tests/test_fs_client.c

TEST_SCRIPTS += tools/tests/test_cli.sh tools/tests/test_fuse.sh
