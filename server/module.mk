# The file-system server: event loop, fd tables, command handlers, and its component.
CORE_SRCS += server/loop.c server/fds.c server/commands.c server/wire.c server/writeback.c server/fs_component.c

TESTS += server_protocol
server_protocol_SRCS := server/tests/test_server_protocol.c tests/support/server_fixture.c tests/support/blk_fixture.c

TESTS += lionsos_conformance
lionsos_conformance_SRCS := server/tests/test_lionsos_conformance.c tests/support/server_fixture.c tests/support/blk_fixture.c

TESTS += server_stress
server_stress_SRCS := server/tests/test_server_stress.c tests/support/server_fixture.c tests/support/blk_fixture.c
server_protocol_LDLIBS := $(URING_LDLIBS)
server_stress_LDLIBS := $(URING_LDLIBS)
lionsos_conformance_LDLIBS := $(URING_LDLIBS)

TESTS += server_writeback
server_writeback_SRCS := server/tests/test_server_writeback.c tests/support/server_fixture.c tests/support/blk_fixture.c
server_writeback_LDLIBS := $(URING_LDLIBS)

TESTS += server_paths_at
server_paths_at_SRCS := server/tests/test_server_paths_at.c tests/support/server_fixture.c tests/support/blk_fixture.c
server_paths_at_LDLIBS := $(URING_LDLIBS)
