/* base helpers: bit scanning (including the table fallback used on riscv64 without Zbb,
 * which this test exercises under qemu) and little-endian access at any alignment. */
#include "base/base.h"
#include "tests/harness.h"

TEST(ctz_finds_the_lowest_set_bit_of_every_position)
{
    uint64_t rng = test_seed();
    for (uint32_t i = 0; i < 64; i++) {
        for (int k = 0; k < 100; k++) {
            uint64_t above = i == 63 ? 0 : test_rand(&rng) << (i + 1);
            CHECK_EQ(af_ctz64(((uint64_t)1 << i) | above), i);
        }
    }
}

TEST(little_endian_loads_and_stores_at_odd_addresses)
{
    uint8_t buf[16] = {0};
    af_store_le16(buf + 1, 0xBEEF);
    af_store_le32(buf + 3, 0x12345678);
    af_store_le64(buf + 7, 0x0102030405060708ull);
    CHECK_EQ(buf[1], 0xEF);
    CHECK_EQ(buf[2], 0xBE);
    CHECK_EQ(buf[3], 0x78);
    CHECK_EQ(buf[6], 0x12);
    CHECK_EQ(buf[7], 0x08);
    CHECK_EQ(buf[14], 0x01);
    CHECK_EQ(af_load_le16(buf + 1), 0xBEEF);
    CHECK_EQ(af_load_le32(buf + 3), 0x12345678);
    CHECK(af_load_le64(buf + 7) == 0x0102030405060708ull);
}

TEST(alignment_helpers)
{
    CHECK_EQ(af_align_up(4097, 4096), 8192);
    CHECK_EQ(af_align_down(8191, 4096), 4096);
    CHECK(af_is_pow2(4096) && !af_is_pow2(0) && !af_is_pow2(12));
}
