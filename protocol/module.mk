# Protocol headers (header-only): sDDF block queues and LionsOS fs queues.
TESTS += protocol_queues protocol_queues_ipc
CROSS_TESTS += protocol_queues
protocol_queues_SRCS := protocol/tests/test_queues.c
protocol_queues_CORE_SRCS :=
protocol_queues_ipc_SRCS := protocol/tests/test_queues_ipc.c
