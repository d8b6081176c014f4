/* Writing and replaying the block driver's write log (see blk_log.h). */
#include "platform/linux/blk_log.h"

#include "protocol/blk_queue.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

bool blk_log_append(FILE *log, uint32_t type, uint64_t block_number, uint32_t count, const void *data)
{
    blk_log_record r = {.magic = BLK_LOG_MAGIC, .type = type, .block_number = block_number, .count = count};
    if (fwrite(&r, sizeof r, 1, log) != 1)
        return false;
    if (type == BLK_LOG_WRITE && fwrite(data, BLK_TRANSFER_SIZE, count, log) != count)
        return false;
    return type != BLK_LOG_FLUSH || fflush(log) == 0;
}

bool blk_log_next(FILE *log, blk_log_record *record, uint8_t **data, size_t *data_size)
{
    if (fread(record, sizeof *record, 1, log) != 1 || record->magic != BLK_LOG_MAGIC)
        return false;
    if (record->type == BLK_LOG_FLUSH)
        return true;
    if (record->type != BLK_LOG_WRITE || record->count == 0 || record->count > 0xffff)
        return false;
    size_t bytes = (size_t)record->count * BLK_TRANSFER_SIZE;
    if (bytes > *data_size) {
        uint8_t *grown = realloc(*data, bytes);
        if (!grown)
            return false;
        *data = grown;
        *data_size = bytes;
    }
    return fread(*data, BLK_TRANSFER_SIZE, record->count, log) == record->count;
}

long blk_log_replay(const char *log_path, const char *image_path, long max_records)
{
    FILE *log = fopen(log_path, "rb");
    int fd = open(image_path, O_WRONLY);
    long applied = -1;
    if (log && fd >= 0) {
        blk_log_record r;
        uint8_t *data = NULL;
        size_t size = 0;
        applied = 0;
        while (applied < max_records && blk_log_next(log, &r, &data, &size)) {
            size_t bytes = (size_t)r.count * BLK_TRANSFER_SIZE;
            if (r.type == BLK_LOG_WRITE &&
                pwrite(fd, data, bytes, (off_t)(r.block_number * BLK_TRANSFER_SIZE)) != (ssize_t)bytes) {
                applied = -1;
                break;
            }
            applied++;
        }
        free(data);
    }
    if (log)
        fclose(log);
    if (fd >= 0)
        close(fd);
    return applied;
}
