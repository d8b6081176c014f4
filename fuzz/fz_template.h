/* fz_template: the seed images of the libFuzzer targets, and how an input maps onto one.
 *
 * A template is a small volume made at start-up by mkfs.fat and mtools (FAT12, FAT16,
 * FAT32, and FAT16 with 4096-byte sectors), holding directories, long and short names and
 * files. An image target's input is one selector byte (template index in the low bits,
 * target flags in the high bits) followed by the bytes of some of the template's
 * metadata windows, in a fixed order: the reserved area's start (boot sector, FSInfo,
 * backup boot sector), the start of FAT 0 and of FAT 1, the FAT12/16 root directory, and
 * the first clusters of the data area (the directories). A shorter input leaves the rest
 * as the template has it. So a byte of the input always lands in the same structure, and
 * an input converts to a recipe ("template fat16" and pokes relative to boot, fat0, fat1,
 * root, data) without storing an image.
 */
#ifndef ASYNCFAT_FUZZ_FZ_TEMPLATE_H
#define ASYNCFAT_FUZZ_FZ_TEMPLATE_H

#include "fuzz/fz_image.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fz_template_spec {
    const char *name;
    uint16_t sector_size;
    const char *seed;           /* recipe seed lines */
} fz_template_spec;

#define FZ_TEMPLATE_COUNT 4u
#define FZ_SELECT_TEMPLATE_MASK 0x03u   /* low bits of the selector byte */

const fz_template_spec *fz_template_find(const char *name);
const fz_template_spec *fz_template_at(unsigned index);

enum {
    FZ_WIN_BOOT = 1u << 0,
    FZ_WIN_FAT0 = 1u << 1,
    FZ_WIN_FAT1 = 1u << 2,
    FZ_WIN_ROOT = 1u << 3,
    FZ_WIN_DATA = 1u << 4,
};

typedef struct fz_window {
    const char *name;           /* boot, fat0, fat1, root, data: recipe structure names */
    uint64_t offset;
    uint32_t length;
} fz_window;

/* The windows of `mask` on a template with this layout, in input order. */
size_t fz_windows(const fz_layout *L, unsigned mask, fz_window out[5]);

/* The input bytes of the target with `mask` for this (damaged) image: selector, then the
 * windows (measured on the template's layout). *len receives the size; malloc'd. */
uint8_t *fz_input_from_image(const fz_layout *template_layout, const uint8_t *img, size_t img_len,
                             unsigned mask, uint8_t selector, size_t *len);

/* A built template in memory. */
typedef struct fz_template {
    const fz_template_spec *spec;
    uint8_t *image;             /* read-only */
    size_t bytes;
    fz_layout L;
    char path[700];             /* the cached copy it is mapped from ("" if none) */
} fz_template;

/* Build every template, or map the copies cached in $ASYNCFAT_FUZZ_TEMPLATES (default:
 * the directory "templates" beside the running program), named by a hash of their seed
 * lines and made when missing. Returns 0, or -1 after a message on stderr. */
int fz_templates_build(fz_template out[FZ_TEMPLATE_COUNT]);
void fz_templates_free(fz_template t[FZ_TEMPLATE_COUNT]);

/* The image that `seed_lines` (recipe seed steps) build, mapped read-only from the cache
 * directory above (built and stored there first if missing; `salt` goes into the name's
 * hash). *path gets the cached file. NULL after a message on stderr. munmap when done. */
uint8_t *fz_cached_image(const char *name, const char *seed_lines, uint16_t salt, size_t *len, char *path,
                         size_t path_size);

/* The image targets and their windows (fuzz-target lines name them). */
typedef struct fz_target_info {
    const char *name;
    unsigned windows;           /* 0: not an image target */
} fz_target_info;
const fz_target_info *fz_target_find(const char *name);

#endif
