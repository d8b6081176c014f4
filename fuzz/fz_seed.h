/* fz_seed: seed images made at test time, as the recipes describe them: mkfs.fat with the
 * recipe's arguments (and --invariant), then mtools (mmd, mcopy) for directories and
 * files whose contents are a pattern derived from their path. Timestamps are then set to
 * one fixed value, so that the same seed lines always give the same bytes. Hosted; needs
 * dosfstools and mtools. */
#ifndef ASYNCFAT_FUZZ_FZ_SEED_H
#define ASYNCFAT_FUZZ_FZ_SEED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "16M", "512K", "1G", "4096", "0x200": bytes. false if malformed. */
bool fz_parse_size(const char *s, uint64_t *out);
/* A number: decimal or 0x hex. */
bool fz_parse_u64(const char *s, uint64_t *out);

/* The contents `file` lines give a path (deterministic, different per path). */
void fz_fill_pattern(uint8_t *buf, size_t len, const char *key);

/* argv: mkfs.fat arguments ending with the size ("-F 16 -r 64 16M"). */
int fz_seed_mkfs(const char *image, int argc, char **argv, char *err, size_t err_size);
int fz_seed_dir(const char *image, const char *path, char *err, size_t err_size);
/* The local copy goes into workdir. */
int fz_seed_file(const char *image, const char *workdir, const char *path, uint64_t size, char *err,
                 size_t err_size);
/* Set every directory entry's timestamps to one fixed value (in memory). False when the
 * image has no FAT layout. */
bool fz_seed_normalize(uint8_t *img, size_t len);

/* Whole files. */
uint8_t *fz_read_file(const char *path, size_t *len);
int fz_write_file(const char *path, const void *data, size_t len);

#endif
