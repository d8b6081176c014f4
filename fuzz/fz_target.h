/* fz_target: what the libFuzzer targets share: the templates and a rig per template
 * (built once per process), decoding an image input onto a rig, the FAT engine's
 * arenas, a bounded tree walk through the engine, and reporting an oracle failure.
 *
 * An oracle failure prints "ORACLE <target>: <what>" and aborts, which libFuzzer records
 * as a crash with the input that caused it; unless the text contains one of the
 * '|'-separated pieces of $ASYNCFAT_FUZZ_SKIP (a long run that should look past a known
 * failure; '*' skips every oracle, for coverage replays), in which case the run goes on
 * (printing the message when ASYNCFAT_FUZZ_VERBOSE is set). */
#ifndef ASYNCFAT_FUZZ_FZ_TARGET_H
#define ASYNCFAT_FUZZ_FZ_TARGET_H

#include "fat/fat.h"
#include "fuzz/fz_rig.h"
#include "fuzz/fz_template.h"

typedef struct fz_image_input {
    unsigned template_index;
    uint8_t flags;              /* selector bits above the template index */
    fz_rig *rig;
    const fz_template *tmpl;
} fz_image_input;

/* Build the templates and rigs (first call; aborts if that fails). */
void fz_target_setup(void);
const fz_template *fz_target_template(unsigned index);
/* Select the template, begin its rig and overlay the input's windows. False for an
 * empty input. */
bool fz_target_load(const uint8_t *data, size_t size, unsigned windows, bool read_only, fz_image_input *in);

/* A fat_config with small limits (so the fallbacks run too) and arenas for this rig;
 * the arena lives as long as the process. */
fat_config fz_target_fat_config(const fz_rig *rig);

/* Blocks: walk the mounted tree (readdir, stat of every name, reads of the first bytes of
 * files), at most `budget` entries and `max_depth` levels. Counts what it saw. */
typedef struct fz_walk_stats {
    uint32_t entries, dirs, files, corrupt, errors;
    uint32_t lookup_misses;     /* names readdir returned that stat could not find */
    char first_miss[512];
} fz_walk_stats;
void fz_walk_tree(fat_volume *vol, uint32_t budget, uint32_t max_depth, fz_walk_stats *out);

/* A work area of at least `size` bytes for the checker, reused by every run (a fresh
 * allocation per run would cost page faults under ASan's quarantine). */
void *fz_target_work(size_t size);

void fz_oracle_failed(const char *target, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
