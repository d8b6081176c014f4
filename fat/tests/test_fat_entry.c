/* fat_entry: the FAT entry codec against hand-packed bytes, neighbours and reserved bits
 * left alone, offsets and table sizes, and round trips over every FAT12 parity. */
#include "fat/fat_entry.h"
#include "tests/harness.h"

#include <string.h>

TEST(fat12_packs_two_entries_into_three_bytes)
{
    uint8_t fat[6];
    memset(fat, 0, sizeof fat);
    fat_entry_put(FAT_TYPE_12, 0, fat + fat_entry_byte(FAT_TYPE_12, 0), 0x123);
    fat_entry_put(FAT_TYPE_12, 1, fat + fat_entry_byte(FAT_TYPE_12, 1), 0x456);
    fat_entry_put(FAT_TYPE_12, 2, fat + fat_entry_byte(FAT_TYPE_12, 2), 0x789);
    fat_entry_put(FAT_TYPE_12, 3, fat + fat_entry_byte(FAT_TYPE_12, 3), 0xABC);
    static const uint8_t expect[6] = {0x23, 0x61, 0x45, 0x89, 0xC7, 0xAB};
    CHECK(memcmp(fat, expect, sizeof fat) == 0);
    CHECK_EQ(fat_entry_get(FAT_TYPE_12, 1, fat + fat_entry_byte(FAT_TYPE_12, 1)), 0x456);
    CHECK_EQ(fat_entry_get(FAT_TYPE_12, 2, fat + fat_entry_byte(FAT_TYPE_12, 2)), 0x789);
    /* Rewriting one entry leaves the nibble it shares with its neighbour alone. */
    fat_entry_put(FAT_TYPE_12, 1, fat + 1, 0xFFF);
    CHECK_EQ(fat_entry_get(FAT_TYPE_12, 0, fat), 0x123);
    CHECK_EQ(fat_entry_get(FAT_TYPE_12, 2, fat + 3), 0x789);
    fat_entry_put(FAT_TYPE_12, 2, fat + 3, 0);
    CHECK_EQ(fat_entry_get(FAT_TYPE_12, 1, fat + 1), 0xFFF);
    CHECK_EQ(fat_entry_get(FAT_TYPE_12, 3, fat + 4), 0xABC);
}

TEST(fat12_round_trips_every_value_at_both_parities)
{
    uint8_t fat[10];
    for (uint32_t v = 0; v <= 0xFFF; v++) {
        memset(fat, 0xA5, sizeof fat);
        fat_entry_put(FAT_TYPE_12, 4, fat + fat_entry_byte(FAT_TYPE_12, 4), v);
        fat_entry_put(FAT_TYPE_12, 5, fat + fat_entry_byte(FAT_TYPE_12, 5), 0xFFF - v);
        CHECK_EQ(fat_entry_get(FAT_TYPE_12, 4, fat + 6), v);
        CHECK_EQ(fat_entry_get(FAT_TYPE_12, 5, fat + 7), 0xFFF - v);
        CHECK(fat[5] == 0xA5 && fat[9] == 0xA5); /* entries 3 and 6 */
    }
}

TEST(fat16_and_fat32_entries_and_fat32_reserved_bits)
{
    uint8_t fat[16];
    memset(fat, 0, sizeof fat);
    fat_entry_put(FAT_TYPE_16, 3, fat + fat_entry_byte(FAT_TYPE_16, 3), 0xBEEF);
    CHECK(fat[6] == 0xEF && fat[7] == 0xBE);
    CHECK_EQ(fat_entry_get(FAT_TYPE_16, 3, fat + 6), 0xBEEF);
    memset(fat, 0xF0, sizeof fat);
    fat_entry_put(FAT_TYPE_32, 2, fat + fat_entry_byte(FAT_TYPE_32, 2), 0xFABCDEF1u);
    CHECK_EQ(af_load_le32(fat + 8), 0xFABCDEF1u); /* the top nibble was 0xF and stays */
    CHECK_EQ(fat_entry_get(FAT_TYPE_32, 2, fat + 8), 0x0ABCDEF1u);
    memset(fat, 0, sizeof fat);
    fat_entry_put(FAT_TYPE_32, 2, fat + 8, 0xFFFFFFFFu);
    CHECK_EQ(af_load_le32(fat + 8), 0x0FFFFFFFu);
}

TEST(fat_entry_offsets_sizes_and_values)
{
    CHECK_EQ(fat_entry_byte(FAT_TYPE_12, 5), 7);
    CHECK_EQ(fat_entry_byte(FAT_TYPE_16, 5), 10);
    CHECK_EQ(fat_entry_byte(FAT_TYPE_32, 5), 20);
    CHECK_EQ(fat_entry_size(FAT_TYPE_12), 2);
    CHECK_EQ(fat_entry_size(FAT_TYPE_32), 4);
    CHECK_EQ(fat_entry_table_bytes(FAT_TYPE_12, 3), 5);
    CHECK_EQ(fat_entry_table_bytes(FAT_TYPE_12, 4), 6);
    CHECK_EQ(fat_entry_table_bytes(FAT_TYPE_16, 4), 8);
    CHECK_EQ(fat_entry_table_bytes(FAT_TYPE_32, 4), 16);
    CHECK(fat_eoc_min(FAT_TYPE_12) == 0xFF8 && fat_eoc_value(FAT_TYPE_12) == 0xFFF && fat_bad_value(FAT_TYPE_12) == 0xFF7);
    CHECK(fat_eoc_min(FAT_TYPE_16) == 0xFFF8 && fat_eoc_value(FAT_TYPE_16) == 0xFFFF);
    CHECK(fat_eoc_min(FAT_TYPE_32) == 0x0FFFFFF8u && fat_bad_value(FAT_TYPE_32) == 0x0FFFFFF7u);
    CHECK_EQ(fat_entry_clean_bit(FAT_TYPE_12), 0);
    CHECK_EQ(fat_entry_clean_bit(FAT_TYPE_16), 0x8000);
    CHECK_EQ(fat_entry_clean_bit(FAT_TYPE_32), 0x08000000u);
}
