# Block layer: sDDF block client and buffer cache (portable core); tests and benchmark.
CORE_SRCS += blk/client.c blk/cache.c blk/transfer.c blk/writeback.c blk/run.c blk/stack.c

# On the in-process RAM device (platform/sim), and on the Linux io_uring driver in-process.
TESTS += blk_client blk_cache blk_run blk_linux blk_stack
blk_client_SRCS := blk/tests/test_client.c tests/support/blk_fixture.c
blk_cache_SRCS := blk/tests/test_cache.c tests/support/blk_fixture.c
blk_run_SRCS := blk/tests/test_run.c tests/support/blk_fixture.c
blk_linux_SRCS := blk/tests/test_linux.c tests/support/blk_fixture.c
$(foreach t,blk_client blk_cache blk_run blk_linux,$(eval $(t)_LDLIBS := $$(URING_LDLIBS)))
blk_stack_SRCS := blk/tests/test_stack.c
