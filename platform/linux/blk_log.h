/* The block driver's write log, for crash tests: every WRITE as it completes (with its
 * data) and every FLUSH as it starts, in order. A FLUSH record means every WRITE record
 * before it is durable once that flush has been answered. Replaying the first k records
 * onto a copy of the starting image gives the disk as it was after those k operations.
 *
 * Record: u32 magic "AFBL", u32 type (1 write, 2 flush), u64 block_number, u32 count,
 * u32 zero, then count * 4096 bytes of data for a write. Native (little) endian.
 */
#ifndef ASYNCFAT_PLATFORM_LINUX_BLK_LOG_H
#define ASYNCFAT_PLATFORM_LINUX_BLK_LOG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define BLK_LOG_MAGIC 0x4c424641u /* "AFBL" */
#define BLK_LOG_WRITE 1u
#define BLK_LOG_FLUSH 2u

typedef struct blk_log_record {
    uint32_t magic;
    uint32_t type;
    uint64_t block_number;          /* in 4096-byte blocks */
    uint32_t count;                 /* in 4096-byte blocks */
    uint32_t zero;
} blk_log_record;

/* Append one record (data: count * 4096 bytes for a write, NULL for a flush). */
bool blk_log_append(FILE *log, uint32_t type, uint64_t block_number, uint32_t count, const void *data);

/* Read the next record; its data (writes) goes to *data, reallocated as needed (free it).
 * Returns false at the end or on a malformed record. */
bool blk_log_next(FILE *log, blk_log_record *record, uint8_t **data, size_t *data_size);

/* Apply the first max_records records of the log at log_path to the image at image_path
 * (flush records count but change nothing). Returns the number applied, or -1 on error. */
long blk_log_replay(const char *log_path, const char *image_path, long max_records);

#endif
