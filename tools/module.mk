# Tools: the client library (in the host library, for tests too), the asyncfat command with
# its FUSE mount, `make run`'s script, and their tests.
HOST_SRCS += tools/fs_client.c tools/fs_client_calls.c

PROGRAMS += asyncfat
MOUNT_SRCS := $(addprefix tools/mount/,mount_command.c mount_loop.c fuse_ring.c fuse_init.c nodes.c entry_ops.c attribute_ops.c file_ops.c fd_cache.c \
	dir_streams.c read_handles.c known_names.c posix_translation.c)
COPY_SRCS := tools/copy/copy_engine.c tools/copy/copy_tree.c
asyncfat_SRCS := tools/asyncfat.c tools/cli.c tools/cli_image.c tools/cli_session.c tools/cli_operands.c \
	tools/cli_dir.c tools/cli_attributes.c tools/tree_walk.c tools/cmd_offline.c tools/cmd_ls.c tools/cmd_files.c \
	tools/cmd_cp.c tools/cmd_attrib.c tools/cmd_volume.c \
	tools/offline_volume.c $(COPY_SRCS) $(MOUNT_SRCS)
asyncfat_CFLAGS := $(FUSE_CFLAGS)
# Linked statically (position-independent, so still randomised): a one-shot command spent
# a third of its start-up in the dynamic loader (mapping and relocating libc, libfuse and
# liburing) and took 45 of its 150 page faults there. The sanitizer build stays dynamic,
# as ASan requires.
asyncfat_LDLIBS := -static-pie $(URING_LDLIBS) $(FUSE_LDLIBS)
$(BUILD)/san/asyncfat: asyncfat_LDLIBS := $(URING_LDLIBS) $(FUSE_LDLIBS)
NEEDS_FUSE += asyncfat

TESTS += fs_client
fs_client_SRCS := tools/tests/test_fs_client.c

TEST_SCRIPTS += tools/tests/test_cli.sh tools/tests/test_cli_devices.sh tools/tests/test_cli_conventions.sh tools/tests/test_install.sh \
	tools/tests/test_fuse.sh tools/tests/test_fuse_conventions.sh tools/tests/test_fuse_ring.sh \
	tools/tests/test_exclusive.sh
