# Simulated devices for tests and benchmarks (hosted).
HOST_SRCS += platform/sim/ram_device.c
