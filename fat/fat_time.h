/* fat_time: Unix time <-> FAT directory-entry date and time.
 *
 * Contract: pure functions, no libc (the civil-calendar conversion is our own). FAT stores
 * local time without a zone: the *_zoned forms take the volume's offset from UTC (fields
 * hold UTC + offset_minutes, as vfat's time_offset; Windows, cameras and mtools write local
 * time), the plain ones are the same with offset 0.
 * Date: bits 15-9 year since 1980, 8-5 month 1..12, 4-0 day 1..31. Time: bits 15-11 hour,
 * 10-5 minute, 4-0 seconds / 2. The create time adds a 10 ms field (0..199) that carries
 * the odd second. Times before 1980-01-01 00:00:00 clamp to it; times after
 * 2107-12-31 23:59:58 clamp to that.
 */
#ifndef ASYNCFAT_FAT_TIME_H
#define ASYNCFAT_FAT_TIME_H

#include "base/base.h"

typedef struct fat_datetime {
    uint16_t date;
    uint16_t time;
    uint8_t hundredths;  /* 0..199: 10 ms units past `time` (create time only) */
} fat_datetime;

#define FAT_TIME_MIN_UNIX 315532800ll   /* 1980-01-01 00:00:00 UTC */
#define FAT_TIME_MAX_UNIX 4354819199ll  /* 2107-12-31 23:59:59 UTC */

/* Converts seconds (+ nanoseconds, 0..999999999) since 1970 UTC, clamping to the range. */
fat_datetime fat_time_from_unix(int64_t seconds, uint32_t nanoseconds);

/* Converts a stored date/time (hundredths 0 when the field has none) back to Unix seconds,
 * and the sub-second part to *nanoseconds if not NULL. Fields out of range on a foreign
 * disk are clamped (month 0 -> 1, day 0 -> 1, day past the month's end -> last day,
 * hour > 23 -> 23, minute > 59 -> 59, seconds > 58 -> 58, hundredths > 199 -> 199);
 * a date of 0 (never set) gives 1980-01-01. */
int64_t fat_time_to_unix(uint16_t date, uint16_t time, uint8_t hundredths, uint32_t *nanoseconds);

/* Local time offset_minutes east of UTC (-1440..1440); the range clamps apply to the
 * local time the fields hold. */
static inline fat_datetime fat_time_from_unix_zoned(int64_t seconds, uint32_t nanoseconds, int32_t offset_minutes)
{
    return fat_time_from_unix(seconds + (int64_t)offset_minutes * 60, nanoseconds);
}
static inline int64_t fat_time_to_unix_zoned(uint16_t date, uint16_t time, uint8_t hundredths, uint32_t *nanoseconds,
                                             int32_t offset_minutes)
{
    return fat_time_to_unix(date, time, hundredths, nanoseconds) - (int64_t)offset_minutes * 60;
}

/* Days since 1970-01-01 of a proleptic Gregorian date, and the reverse. */
int64_t fat_days_from_civil(int64_t year, uint32_t month, uint32_t day);
void fat_civil_from_days(int64_t days, int64_t *year, uint32_t *month, uint32_t *day);

#endif
