/* FF_SAVE_FPU_CONTROL=1: each fiber keeps its own rounding mode across switches, and a new
 * fiber starts in round-to-nearest whatever its creator uses. */
#include "fiberflow/fiberflow.h"
#include "tests/harness.h"

#include <fenv.h>
#include <stdlib.h>

static ff_fiber root;
static volatile double one = 1.0, three = 3.0;

static volatile double quotient;

/* 1/3 is inexact, so its last bit shows the rounding mode in effect. Without
 * -frounding-math the compiler may move a division across calls that change the mode; the
 * volatile store keeps it in place. */
__attribute__((noinline)) static double third(void)
{
    quotient = one / three;
    return quotient;
}
#if defined(__x86_64__)
/* long double arithmetic goes through the x87 unit, steered by its own control word. */
static volatile long double one_x87 = 1.0L, three_x87 = 3.0L, quotient_x87;
__attribute__((noinline)) static long double third_x87(void)
{
    quotient_x87 = one_x87 / three_x87;
    return quotient_x87;
}
#endif

struct observed {
    int start_mode, mode_after_switch;
    double third_up;
#if defined(__x86_64__)
    long double third_up_x87;
#endif
};

static void *rounding_up_entry(void *arg)
{
    struct observed *seen = arg;
    seen->start_mode = fegetround();
    fesetround(FE_UPWARD);
    ff_switch(&root, NULL);
    seen->mode_after_switch = fegetround();
    seen->third_up = third();
#if defined(__x86_64__)
    seen->third_up_x87 = third_x87();
#endif
    return NULL;
}

TEST(rounding_mode_is_per_fiber)
{
    ff_init_thread(&root);
    struct observed seen = { 0 };
    void *memory = malloc(65536);
    CHECK(memory != NULL);
    CHECK(fesetround(FE_DOWNWARD) == 0);
    ff_fiber *f = ff_create(memory, 65536, rounding_up_entry);
    ff_switch(f, &seen);
    CHECK_EQ(seen.start_mode, FE_TONEAREST);
    int root_mode = fegetround();
    double third_down = third();
#if defined(__x86_64__)
    long double third_down_x87 = third_x87();
#endif
    ff_switch(f, NULL);
    CHECK(ff_finished(f));
    int root_mode_at_end = fegetround();
    fesetround(FE_TONEAREST);
    CHECK_EQ(root_mode, FE_DOWNWARD);
    CHECK_EQ(root_mode_at_end, FE_DOWNWARD);
    CHECK_EQ(seen.mode_after_switch, FE_UPWARD);
    CHECK(seen.third_up > third_down);
#if defined(__x86_64__)
    CHECK(seen.third_up_x87 > third_down_x87);
#endif
    free(memory);
}
