/* The test harness: self-registering test cases, one PASS/FAIL line each.
 *
 *   TEST(name) { CHECK(x == 1); CHECK_EQ(a, b); }
 *
 * main() (in harness.c) runs every case in the program, or only those whose names contain
 * argv[1]. A failed CHECK ends its case and prints where. tests/run.sh counts the lines.
 * Randomised tests take their seed from test_seed(): AF_SEED=<n> in the environment
 * reproduces a run, and every failure prints the seed it ran with.
 */
#ifndef ASYNCFAT_TEST_HARNESS_H
#define ASYNCFAT_TEST_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef void (*test_fn)(void);
void test_register(const char *name, test_fn fn);
void test_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
uint64_t test_seed(void);
/* Small fast PRNG (splitmix64) for reproducible random tests. */
uint64_t test_rand(uint64_t *state);
uint64_t test_rand_below(uint64_t *state, uint64_t bound);
/* A fresh scratch directory for this test program, removed at exit unless it failed. */
const char *test_tmpdir(void);

#define TEST(name)                                                              \
    static void test_##name(void);                                              \
    __attribute__((constructor)) static void test_register_##name(void)         \
    {                                                                           \
        test_register(#name, test_##name);                                      \
    }                                                                           \
    static void test_##name(void)

#define CHECK(cond)                                                             \
    do {                                                                        \
        if (!(cond)) {                                                          \
            test_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);                  \
            return;                                                             \
        }                                                                       \
    } while (0)

#define CHECK_MSG(cond, ...)                                                    \
    do {                                                                        \
        if (!(cond)) {                                                          \
            test_fail(__FILE__, __LINE__, __VA_ARGS__);                         \
            return;                                                             \
        }                                                                       \
    } while (0)

#define CHECK_EQ(a, b)                                                          \
    do {                                                                        \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);         \
        if (check_a_ != check_b_) {                                             \
            test_fail(__FILE__, __LINE__, "%s == %s (%lld != %lld)", #a, #b,    \
                      check_a_, check_b_);                                      \
            return;                                                             \
        }                                                                       \
    } while (0)

/* For helpers that are not the test function itself: record failure, return false. */
#define EXPECT(cond)                                                            \
    ((cond) ? true : (test_fail(__FILE__, __LINE__, "EXPECT(%s)", #cond), false))

bool test_failed(void);

#endif
