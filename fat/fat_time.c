/* fat_time: the proleptic Gregorian calendar in 400-year eras (each era has exactly
 * 146097 days), with years starting in March so the leap day is the last of the year. */
#include "fat/fat_time.h"

#define DAYS_1970_FROM_0000_03_01 719468

int64_t fat_days_from_civil(int64_t year, uint32_t month, uint32_t day)
{
    year -= month <= 2;
    int64_t era = (year >= 0 ? year : year - 399) / 400;
    int64_t year_of_era = year - era * 400;                                      /* 0..399 */
    int64_t month_from_march = month > 2 ? month - 3 : month + 9;                 /* 0..11 */
    int64_t day_of_year = (153 * month_from_march + 2) / 5 + (int64_t)day - 1;    /* 0..365 */
    int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    return era * 146097 + day_of_era - DAYS_1970_FROM_0000_03_01;
}

void fat_civil_from_days(int64_t days, int64_t *year, uint32_t *month, uint32_t *day)
{
    days += DAYS_1970_FROM_0000_03_01;
    int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    int64_t day_of_era = days - era * 146097;                                     /* 0..146096 */
    int64_t year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
    int64_t day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    int64_t month_from_march = (5 * day_of_year + 2) / 153;
    *day = (uint32_t)(day_of_year - (153 * month_from_march + 2) / 5 + 1);
    *month = (uint32_t)(month_from_march < 10 ? month_from_march + 3 : month_from_march - 9);
    *year = year_of_era + era * 400 + (*month <= 2);
}

fat_datetime fat_time_from_unix(int64_t seconds, uint32_t nanoseconds)
{
    if (nanoseconds > 999999999u)
        nanoseconds = 999999999u;
    if (seconds < FAT_TIME_MIN_UNIX) {
        seconds = FAT_TIME_MIN_UNIX;
        nanoseconds = 0;
    } else if (seconds > FAT_TIME_MAX_UNIX) {
        seconds = FAT_TIME_MAX_UNIX;
        nanoseconds = 999999999u;
    }
    int64_t days = seconds / 86400;
    uint32_t second_of_day = (uint32_t)(seconds % 86400);
    int64_t year;
    uint32_t month, day;
    fat_civil_from_days(days, &year, &month, &day);
    uint32_t hour = second_of_day / 3600, minute = second_of_day / 60 % 60, second = second_of_day % 60;
    fat_datetime dt;
    dt.date = (uint16_t)(((uint32_t)(year - 1980) << 9) | (month << 5) | day);
    dt.time = (uint16_t)((hour << 11) | (minute << 5) | (second / 2));
    dt.hundredths = (uint8_t)((second % 2) * 100 + nanoseconds / 10000000u);
    return dt;
}

static uint32_t days_in_month(int64_t year, uint32_t month)
{
    static const uint8_t days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : days[month - 1];
}

static uint32_t clamp_u32(uint32_t v, uint32_t lo, uint32_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

int64_t fat_time_to_unix(uint16_t date, uint16_t time, uint8_t hundredths, uint32_t *nanoseconds)
{
    int64_t year = 1980 + (date >> 9);
    uint32_t month = clamp_u32((date >> 5) & 0xFu, 1, 12);
    uint32_t day = clamp_u32(date & 0x1Fu, 1, days_in_month(year, month));
    if (date == 0) {
        month = 1;
        day = 1;
    }
    uint32_t hour = clamp_u32(time >> 11, 0, 23);
    uint32_t minute = clamp_u32((time >> 5) & 0x3Fu, 0, 59);
    uint32_t second = clamp_u32((time & 0x1Fu) * 2u, 0, 58);
    uint32_t extra = clamp_u32(hundredths, 0, 199);
    second += extra / 100;
    if (nanoseconds)
        *nanoseconds = (extra % 100) * 10000000u;
    return fat_days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second;
}
