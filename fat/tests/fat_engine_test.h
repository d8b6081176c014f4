/* Support for the engine tests: a mounted volume on the block fixture (arenas from malloc),
 * running test code in fibers, images from mkfs.fat, and whole-file helpers that run
 * inside a fiber. */
#ifndef ASYNCFAT_FAT_ENGINE_TEST_H
#define ASYNCFAT_FAT_ENGINE_TEST_H

#include "fat/fat.h"
#include "fat/tests/fat_test_tools.h"
#include "tests/harness.h"

typedef struct fat_tv {
    blk_fixture f;
    fat_volume vol;
    fat_config cfg;
    void *mem;                  /* the engine's arenas, one block */
    vfs_status mount_status;
} fat_tv;

typedef struct fat_tv_options {
    uint16_t sector_size;       /* fixture sector size (default 512) */
    bool random_order;          /* completions in random order, seeded by test_seed() */
    bool read_only;
    bool linux_backend;         /* serve the image file in place through the io_uring driver */
    bool discard;               /* fat_config.discard */
    uint32_t max_nodes, index_entries, runs_per_node, cache_buffers, fibers;
} fat_tv_options;

fat_tv_options fat_tv_defaults(void);
/* Load `image` into a fixture and mount it (in a fiber). Returns false if the fixture
 * failed; the mount's status is in tv->mount_status. */
bool fat_tv_open(fat_tv *tv, const char *image, const fat_tv_options *o);
/* Unmount (in a fiber), optionally save the image, free everything. Returns the unmount
 * status (SUCCESS if it was not mounted). */
vfs_status fat_tv_close(fat_tv *tv, const char *save_as);

/* Run fn(tv, arg) in one fiber to completion. */
typedef void (*fat_tv_fn)(fat_tv *tv, void *arg);
bool fat_tv_call(fat_tv *tv, fat_tv_fn fn, void *arg);
/* Spawn n fibers fn(tv, arg_i) with arg_i = (char *)args + i * stride, run all. */
bool fat_tv_call_many(fat_tv *tv, fat_tv_fn fn, void *args, size_t stride, uint32_t n);

/* mkfs.fat an image of `kib` KiB (fat 12/16/32, sector size, sectors per cluster). */
bool make_image(const char *path, uint32_t kib, int fat, uint32_t sector, uint32_t spc);

/* In a fiber: whole files. */
vfs_status tv_write_file(fat_volume *vol, const char *path, const void *data, size_t len);
/* *out is malloc'd. */
vfs_status tv_read_file(fat_volume *vol, const char *path, uint8_t **out, size_t *len);
vfs_status tv_path_stat(fat_volume *vol, const char *path, vfs_stat *st);

/* Deterministic test data. */
void fill_pattern(uint8_t *buf, size_t len, uint64_t seed);

/* The engine's checker finds nothing in the image file, and fsck.fat -n agrees (prints
 * the checker's counts otherwise). */
bool image_clean(const char *path);
/* From outside a fiber: the file holds fill_pattern(len, seed); the path names nothing. */
bool tv_file_is(fat_tv *tv, const char *path, size_t len, uint64_t seed);
bool tv_file_absent(fat_tv *tv, const char *path);

#endif
