# Benchmarks: every group lives here. `make bench-<group>` runs bench/<group>.sh when it
# exists (callgrind, several processes), else the program $(BUILD)/rel/bench/<group>.

# fiber: switch cost (bench/fiber.sh also counts instructions under callgrind).
BENCHES += fiber
PROGRAMS += bench/fiber
bench/fiber_SRCS := bench/fiber_bench.c

# driver: the io_uring block driver against its device model, in and across processes.
BENCHES += driver
PROGRAMS += bench/driver
bench/driver_SRCS := bench/driver.c tests/support/blk_test_rig.c
bench/driver_LDLIBS := $(URING_LDLIBS)

# blk: cache hits, sequential runs against the raw device, read-ahead.
BENCHES += blk
PROGRAMS += bench/blk
bench/blk_SRCS := bench/blk.c tests/support/blk_fixture.c
bench/blk_LDLIBS := $(URING_LDLIBS)

# fat: creates, lookups, fragmented reads, sequential throughput (RAM device).
BENCHES += fat
PROGRAMS += bench/fat
bench/fat_SRCS := bench/fat_bench.c tests/support/blk_fixture.c
bench/fat_LDLIBS := $(URING_LDLIBS)

# fat_format: alias tails, mkfs and checker throughput.
BENCHES += fat_format
PROGRAMS += bench/fat_format
bench/fat_format_SRCS := bench/fat_format.c tests/support/blk_fixture.c
bench/fat_format_LDLIBS := $(URING_LDLIBS)

# server: requests in flight through the multi-process system (bench/server.sh), and the
# server's own CPU per request in-process.
BENCHES += server
PROGRAMS += bench/server bench/server_cpu
bench/server_SRCS := bench/server_bench.c bench/bench_client.c
bench/server_LDLIBS := $(URING_LDLIBS)
bench/server_cpu_SRCS := bench/server_cpu.c tests/support/server_fixture.c tests/support/blk_fixture.c
bench/server_cpu_LDLIBS := $(URING_LDLIBS)

# ordering: the cost of power-cut safety, this engine against the one before the ordering
# work (bench/ordering.sh builds bench/ordering.c against both).
BENCHES += ordering
PROGRAMS += bench/ordering
bench/ordering_SRCS := bench/ordering.c tests/support/blk_fixture.c
bench/ordering_LDLIBS := $(URING_LDLIBS)

# hops: what one request costs the whole system (wake-ups, system calls, CPU; instructions
# under callgrind in bench/hops.sh) for each placement of the components in processes.
BENCHES += hops
PROGRAMS += bench/hops
bench/hops_SRCS := bench/hops.c bench/proc_counters.c bench/bench_client.c bench/report/report_work.c
bench/hops_LDLIBS := $(URING_LDLIBS)

# wear: writes per device block for a logger, a config rewrite, a camera and a tree copy,
# this engine against the one before the wear work (bench/wear.sh builds bench/wear.c
# against both).
BENCHES += wear
PROGRAMS += bench/wear
bench/wear_SRCS := bench/wear.c tests/support/blk_fixture.c
bench/wear_LDLIBS := $(URING_LDLIBS)

# writeback: the server's background write-back: time to durable without fsync, and its
# cost in device writes, FLUSHes and files per second (RAM device, real clock).
BENCHES += writeback
PROGRAMS += bench/writeback
bench/writeback_SRCS := bench/writeback.c tests/support/server_fixture.c tests/support/blk_fixture.c
bench/writeback_LDLIBS := $(URING_LDLIBS)

# fuse_hops: what one FUSE request costs the file system's process (wake-ups, system calls,
# CPU), asyncfat's mount against exfat-fuse, under fio random reads (bench/fuse_hops.sh).
BENCHES += fuse_hops
