/* Helpers shared by the block-layer tests: image patterns and small task bodies. */
#ifndef ASYNCFAT_BLK_TEST_UTIL_H
#define ASYNCFAT_BLK_TEST_UTIL_H

#include "tests/harness.h"
#include "tests/support/blk_fixture.h"

#include <string.h>

static inline uint8_t pattern_byte(uint64_t block, uint32_t i)
{
    return (uint8_t)(block * 131u + i * 7u + 1u);
}

static inline void pattern_fill(uint8_t *dst, uint64_t block)
{
    for (uint32_t i = 0; i < BLK_TRANSFER_SIZE; i++)
        dst[i] = pattern_byte(block, i);
}

static inline bool pattern_check(const uint8_t *p, uint64_t block)
{
    for (uint32_t i = 0; i < BLK_TRANSFER_SIZE; i++)
        if (p[i] != pattern_byte(block, i))
            return false;
    return true;
}

/* A fixture whose image holds pattern_fill(block) in every block. */
static inline bool fixture_with_pattern(blk_fixture *f, blk_fixture_options *o)
{
    if (blk_fixture_init(f, o) != 0)
        return false;
    for (uint64_t b = 0; b < f->dev.capacity; b++)
        pattern_fill(f->image + b * BLK_TRANSFER_SIZE, b);
    return true;
}

static inline blk_fixture_options random_options(void)
{
    blk_fixture_options o = blk_fixture_defaults();
    o.random_order = true;
    o.seed = test_seed();
    return o;
}

#endif
