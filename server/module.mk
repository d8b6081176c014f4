# The file-system server: event loop, fd tables, command handlers, and its component.
CORE_SRCS += server/loop.c server/fds.c server/commands.c server/wire.c server/fs_component.c
HOST_SRCS += platform/linux/fs_system.c platform/linux/component_memory.c

TESTS += server_protocol
server_protocol_SRCS := server/tests/test_server_protocol.c server/tests/server_fixture.c tests/support/blk_fixture.c

TESTS += lionsos_conformance
lionsos_conformance_SRCS := server/tests/test_lionsos_conformance.c server/tests/server_fixture.c tests/support/blk_fixture.c

TESTS += server_stress
server_stress_SRCS := server/tests/test_server_stress.c server/tests/server_fixture.c tests/support/blk_fixture.c

# Benchmark group `server` (make bench-server).
BENCHES += server
PROGRAMS += bench/server
bench/server_SRCS := bench/server_bench.c bench/bench_client.c
PROGRAMS += bench/server_cpu
bench/server_cpu_SRCS := bench/server_cpu.c server/tests/server_fixture.c tests/support/blk_fixture.c
