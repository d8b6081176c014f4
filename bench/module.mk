# Benchmarks. Group `fiber` (make bench-fiber): bench/fiber.sh runs bench/fiber and counts
# instructions under callgrind.
BENCHES += fiber
PROGRAMS += bench/fiber
bench/fiber_SRCS := bench/fiber_bench.c
