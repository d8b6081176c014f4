# base: freestanding helpers shared by every layer.
TESTS += base
CROSS_TESTS += base
base_SRCS := base/tests/test_base.c
base_CORE_SRCS :=
