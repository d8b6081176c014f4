/* fat_time: the civil calendar against known dates, FAT encodings, clamping, round trips. */
#include "fat/fat_time.h"
#include "tests/harness.h"

#define FAT_DATE(y, m, d) ((uint16_t)((((y) - 1980) << 9) | ((m) << 5) | (d)))
#define FAT_TIME(h, mi, s) ((uint16_t)(((h) << 11) | ((mi) << 5) | ((s) / 2)))

TEST(civil_known_dates)
{
    CHECK_EQ(fat_days_from_civil(1970, 1, 1), 0);
    CHECK_EQ(fat_days_from_civil(1980, 1, 1), 3652);
    CHECK_EQ(fat_days_from_civil(2000, 3, 1), 11017);
    CHECK_EQ(fat_days_from_civil(2000, 2, 29), 11016);
    CHECK_EQ(fat_days_from_civil(1969, 12, 31), -1);
    CHECK_EQ(fat_days_from_civil(2038, 1, 19), 24855);
    CHECK_EQ(fat_days_from_civil(2108, 1, 1) * 86400 - 1, FAT_TIME_MAX_UNIX);
    CHECK_EQ(fat_days_from_civil(1980, 1, 1) * 86400, FAT_TIME_MIN_UNIX);
    for (int64_t d = -800000; d < 800000; d += 7) {
        int64_t y;
        uint32_t m, day;
        fat_civil_from_days(d, &y, &m, &day);
        CHECK(m >= 1 && m <= 12 && day >= 1 && day <= 31);
        CHECK_EQ(fat_days_from_civil(y, m, day), d);
    }
}

TEST(unix_to_fat_known)
{
    /* 2021-03-14 15:09:26 UTC = 1615734566 */
    fat_datetime dt = fat_time_from_unix(1615734566, 500000000);
    CHECK_EQ(dt.date, FAT_DATE(2021, 3, 14));
    CHECK_EQ(dt.time, FAT_TIME(15, 9, 26));
    CHECK_EQ(dt.hundredths, 50);
    dt = fat_time_from_unix(1615734567, 990000000);
    CHECK_EQ(dt.time, FAT_TIME(15, 9, 26));
    CHECK_EQ(dt.hundredths, 199);
    /* 2000-02-29 23:59:59 = 951868799 */
    dt = fat_time_from_unix(951868799, 0);
    CHECK_EQ(dt.date, FAT_DATE(2000, 2, 29));
    CHECK_EQ(dt.time, FAT_TIME(23, 59, 58));
    CHECK_EQ(dt.hundredths, 100);
    /* clamps */
    dt = fat_time_from_unix(0, 0);
    CHECK_EQ(dt.date, FAT_DATE(1980, 1, 1));
    CHECK_EQ(dt.time, 0);
    CHECK_EQ(dt.hundredths, 0);
    dt = fat_time_from_unix(-5000000000ll, 0);
    CHECK_EQ(dt.date, FAT_DATE(1980, 1, 1));
    dt = fat_time_from_unix(INT64_MAX, 0);
    CHECK_EQ(dt.date, FAT_DATE(2107, 12, 31));
    CHECK_EQ(dt.time, FAT_TIME(23, 59, 58));
    CHECK_EQ(dt.hundredths, 199);
    dt = fat_time_from_unix(FAT_TIME_MAX_UNIX + 1, 0);
    CHECK_EQ(dt.date, FAT_DATE(2107, 12, 31));
}

TEST(fat_to_unix_known_and_clamped)
{
    uint32_t ns = 1;
    CHECK_EQ(fat_time_to_unix(FAT_DATE(2021, 3, 14), FAT_TIME(15, 9, 26), 0, &ns), 1615734566);
    CHECK_EQ(ns, 0);
    CHECK_EQ(fat_time_to_unix(FAT_DATE(2021, 3, 14), FAT_TIME(15, 9, 26), 150, &ns), 1615734567);
    CHECK_EQ(ns, 500000000);
    CHECK_EQ(fat_time_to_unix(0, 0, 0, NULL), FAT_TIME_MIN_UNIX);
    /* month 0 -> January, day 0 -> 1st, Feb 31 -> Feb 28/29, hour 31 -> 23 */
    CHECK_EQ(fat_time_to_unix(FAT_DATE(2001, 0, 0), 0, 0, NULL), fat_days_from_civil(2001, 1, 1) * 86400);
    CHECK_EQ(fat_time_to_unix(FAT_DATE(2001, 2, 31), 0, 0, NULL), fat_days_from_civil(2001, 2, 28) * 86400);
    CHECK_EQ(fat_time_to_unix(FAT_DATE(2004, 2, 31), 0, 0, NULL), fat_days_from_civil(2004, 2, 29) * 86400);
    CHECK_EQ(fat_time_to_unix(FAT_DATE(2001, 15, 1), 0, 0, NULL), fat_days_from_civil(2001, 12, 1) * 86400);
    CHECK_EQ(fat_time_to_unix(FAT_DATE(2001, 1, 1), 0xFFFF, 255, &ns),
             fat_days_from_civil(2001, 1, 1) * 86400 + 23 * 3600 + 59 * 60 + 58 + 1);
    CHECK_EQ(ns, 990000000);
}

TEST(round_trip_random)
{
    uint64_t seed = test_seed();
    for (int i = 0; i < 200000; i++) {
        int64_t t = FAT_TIME_MIN_UNIX + (int64_t)test_rand_below(&seed, FAT_TIME_MAX_UNIX - FAT_TIME_MIN_UNIX + 1);
        uint32_t ns_in = (uint32_t)test_rand_below(&seed, 1000000000), ns;
        fat_datetime dt = fat_time_from_unix(t, ns_in);
        CHECK(dt.hundredths <= 199);
        CHECK_EQ(fat_time_to_unix(dt.date, dt.time, dt.hundredths, &ns), t);
        CHECK_EQ(ns, ns_in / 10000000u * 10000000u);
        CHECK_EQ(fat_time_to_unix(dt.date, dt.time, 0, NULL), t & ~(int64_t)1);
    }
}

/* A volume in local time: the fields hold UTC plus the offset (vfat's time_offset), and
 * converting back gives the Unix time again. */
TEST(zoned_fields_hold_local_time)
{
    int64_t t = 1615734566; /* 2021-03-14 15:09:26 UTC */
    fat_datetime utc = fat_time_from_unix_zoned(t, 0, 0);
    CHECK_EQ(utc.date, FAT_DATE(2021, 3, 14));
    CHECK_EQ(utc.time, FAT_TIME(15, 9, 26));
    fat_datetime kolkata = fat_time_from_unix_zoned(t, 0, 330);
    CHECK_EQ(kolkata.date, FAT_DATE(2021, 3, 14));
    CHECK_EQ(kolkata.time, FAT_TIME(20, 39, 26));
    fat_datetime honolulu = fat_time_from_unix_zoned(t - 16 * 3600, 0, -600);
    CHECK_EQ(honolulu.date, FAT_DATE(2021, 3, 13));
    CHECK_EQ(honolulu.time, FAT_TIME(13, 9, 26));
    CHECK_EQ(fat_time_to_unix_zoned(kolkata.date, kolkata.time, 0, NULL, 330), t);
    CHECK_EQ(fat_time_to_unix_zoned(honolulu.date, honolulu.time, 0, NULL, -600), t - 16 * 3600);
    /* the range is the fields': 1980-01-01 00:00 local is the earliest */
    CHECK_EQ(fat_time_to_unix_zoned(0, 0, 0, NULL, 60), FAT_TIME_MIN_UNIX - 3600);
    fat_datetime early = fat_time_from_unix_zoned(FAT_TIME_MIN_UNIX - 3600, 0, 60);
    CHECK_EQ(early.date, FAT_DATE(1980, 1, 1));
    CHECK_EQ(early.time, 0);
}
