/* Helpers for the FAT format tests: running dosfstools/mtools, whole-file I/O, a task
 * runner on the block fixture, and a raw view of an image file (boot sector, FAT entries,
 * root directory) that does not use the code under test beyond fat_bpb_parse. */
#ifndef ASYNCFAT_FAT_TEST_TOOLS_H
#define ASYNCFAT_FAT_TEST_TOOLS_H

#include "fat/fat_bpb.h"
#include "tests/support/blk_fixture.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Runs a shell command (printf-style); returns its exit status, or -1. Output goes to
 * <tmpdir>/tool.log, which is printed when `echo_output` is set. */
int tool_run(bool echo_output, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The command's stdout (malloc'd, NUL-terminated), or NULL. */
char *tool_output(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
bool tool_available(const char *name);
/* fsck.fat -n on the image: 0 when clean; prints its report otherwise. */
int tool_fsck(const char *image);

uint8_t *file_read_all(const char *path, size_t *len);
/* The first `head` bytes of a file (malloc'd) and the file's size in *size. */
uint8_t *file_read_head(const char *path, size_t head, size_t *size);
int file_write_all(const char *path, const void *data, size_t len);
/* A path in the test's scratch directory; the same stable pointer for the same name. */
const char *tmp_path(const char *name);

/* Runs fn(f, arg) in a fiber of the fixture and waits until it is done. */
typedef void (*fixture_fn)(blk_fixture *f, void *arg);
bool fixture_call(blk_fixture *f, fixture_fn fn, void *arg);

/* A raw image in memory. */
typedef struct raw_image {
    uint8_t *data;
    size_t len;
    fat_geometry g;
} raw_image;
bool raw_load(raw_image *img, const char *path);
bool raw_save(const raw_image *img, const char *path);
void raw_free(raw_image *img);
uint32_t raw_fat_get(const raw_image *img, uint32_t copy, uint32_t cl);
void raw_fat_set(raw_image *img, uint32_t copy, uint32_t cl, uint32_t v);
/* The 32-byte root directory entry with this 11-byte short name, or NULL. */
uint8_t *raw_root_entry(raw_image *img, const char *name11);
uint8_t *raw_root_entries(raw_image *img, size_t *count);
uint32_t raw_entry_cluster(const raw_image *img, const uint8_t *e);

#endif
