/* offline_volume: a block stack on an image file inside this process (fiber pool, block
 * client, buffer cache, and the Linux io_uring driver polled in-process), for the offline
 * tools `asyncfat mkfs`, `check`, `info` and `label`, which like mkfs.fat, fsck.fat, minfo
 * and fatlabel work on an unmounted image and do not go through the server.
 *
 *   offline_volume v;
 *   if (offline_volume_open(&v, "disk.img", 0, false) != 0) ...;
 *   offline_volume_run(&v, task_fn, arg);     (runs one task to its end)
 *   offline_volume_close(&v);
 */
#ifndef ASYNCFAT_TOOLS_OFFLINE_VOLUME_H
#define ASYNCFAT_TOOLS_OFFLINE_VOLUME_H

#include "blk/blk.h"
#include "fat/fat_partition.h"
#include "fiberpool/fiberpool.h"
#include "platform/linux/blk_driver.h"
#include "server/fs_component.h"

typedef struct offline_volume {
    blk_stack stack;               /* pool, client, cache */
    blk_driver *driver;
    blk_storage_info *info;
    void *requests, *responses;
    uint8_t *data;
    size_t data_size;
    void *stacks;
    void *arena;
    uint64_t device_bytes;         /* capacity in bytes (whole 4096-byte blocks) */
} offline_volume;

/* Open the image (a regular file or a block device). sector_size 0: the device's, or 512.
 * Returns 0, or -1 with errno set (EINVAL: not usable as a device). */
int offline_volume_open(offline_volume *v, const char *path, uint16_t sector_size, bool read_only);
void offline_volume_close(offline_volume *v);

/* Where the volume `where` names lies on the device (fat_partition_locate: the whole
 * device or a partition found automatically, partition N, or an offset). Blocks: call it
 * from a task of offline_volume_run. */
vfs_status offline_volume_locate(offline_volume *v, const fs_component_volume *where, uint64_t *offset,
                                 uint64_t *bytes, fat_bpb_error *why);

/* Is the image in use by another process in a way that excludes this use (writing: any
 * use; reading: a writer)? Prints "asyncfat: IMAGE is in use by another asyncfat process
 * (pid N)" and returns true if so. open checks it; a command that changes the image before
 * opening it (mkfs sets the file's size) asks first. */
bool offline_volume_in_use(const char *path, bool write);

/* Run fn(arg) in a task with the event loop around it until every task has finished.
 * Returns false if the tasks deadlocked. */
bool offline_volume_run(offline_volume *v, fp_entry fn, void *arg);

#endif
