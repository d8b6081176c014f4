# FiberPool: task slots, FIFO scheduling, blocking primitives.
CORE_SRCS += fiberpool/pool.c fiberpool/sync.c

TESTS += fiberpool
CROSS_TESTS += fiberpool
fiberpool_SRCS := fiberpool/tests/test_fiberpool.c
fiberpool_CORE_SRCS := fiberpool/pool.c fiberpool/sync.c fiberflow/fiberflow.c
