/* powercut: cut power at every write of a workload and check what a cut leaves.
 *
 * A workload runs once, in-process, on the RAM device with its journal on (every write
 * and FLUSH in completion order, with the data written). The replay then rebuilds the
 * device as a cut would have left it:
 *   - prefix cuts: everything up to one written 4096-byte block (the unit the engine
 *     assumes a device writes atomically, docs/ORDERING.md) is on the device, nothing
 *     after it;
 *   - lost-write variants: at each FLUSH, several seeded images in which any subset of the
 *     blocks written since the previous FLUSH never reached the medium.
 * A DISCARD counts as writing zeros to each block it names (the device may forget what a
 * discarded block held at any time after the request; zeros are the harshest reading a
 * checker can be shown), cut after, and lost or not in the variants, like a write.
 * Each image is checked before recovery (the engine's checker and fsck.fat -n may report
 * only lost clusters, a stale second FAT, a chain longer than its file, the dirty flag,
 * and the documented middle of a rename), then mounted read-write by asyncfat (mount-time
 * recovery), the workload's model is checked against it (every byte a completed fsync or
 * sync covered is intact, every renamed file exists once), and after unmount both
 * checkers must find nothing at all.
 *
 * Workloads call the pc_* wrappers below, which call the engine and record in the model
 * what each operation did and when it started (a log position), so the checks know which
 * contents and names a file may have after a cut at any point.
 */
#ifndef ASYNCFAT_TESTS_POWERCUT_H
#define ASYNCFAT_TESTS_POWERCUT_H

#include "fat/fat.h"
#include "fat/tests/fat_engine_test.h"

/* ---- the model ------------------------------------------------------------------------- */

/* One state of a file or directory: what it held after one operation completed. */
typedef struct pc_version {
    uint64_t start;             /* log position when that operation began */
    char *path;                 /* NULL: it no longer exists */
    uint8_t *data;              /* files: contents (malloc'd) */
    uint32_t size;
} pc_version;

/* A completed fsync/sync: versions up to `version` are on the medium once the FLUSH at
 * log index `flush` has completed (flush < 0: before the recorded run began). */
typedef struct pc_durable {
    int64_t flush;
    uint32_t version;
} pc_durable;

typedef struct pc_file {
    bool is_dir;
    pc_version *v;
    uint32_t nv, cap_v;
    pc_durable *d;
    uint32_t nd, cap_d;
} pc_file;

typedef struct pc_model {
    pc_file *files;
    uint32_t nfiles, cap;
} pc_model;

void pc_model_free(pc_model *m);

/* ---- what a workload sees ------------------------------------------------------------- */

typedef struct pc_ctx {
    fat_volume *vol;
    blk_fixture *fx;            /* the recording fixture (its device log gives positions) */
    pc_model *model;
    uint64_t seed;              /* workload-specific randomness */
    uint32_t fat_type;
    bool failed;                /* an engine call returned what the workload did not expect */
    char why[256];
} pc_ctx;

typedef struct pc_handle {
    fat_node *node;
    uint32_t file;
} pc_handle;

/* In a fiber. Each returns false (and sets ctx->failed) when the engine fails. */
bool pc_create(pc_ctx *c, const char *path, const void *data, uint32_t len);
/* What a copy tool does: create, write, set the modification time while open, close. */
bool pc_copy_in(pc_ctx *c, const char *path, const void *data, uint32_t len, int64_t mtime);
bool pc_open(pc_ctx *c, const char *path, bool create, pc_handle *h);
bool pc_write(pc_ctx *c, pc_handle *h, uint32_t offset, const void *data, uint32_t len);
bool pc_append(pc_ctx *c, pc_handle *h, const void *data, uint32_t len);
bool pc_truncate(pc_ctx *c, pc_handle *h, uint32_t len);
bool pc_fsync(pc_ctx *c, pc_handle *h);
bool pc_close(pc_ctx *c, pc_handle *h);
bool pc_unlink(pc_ctx *c, const char *path);
bool pc_mkdir(pc_ctx *c, const char *path);
bool pc_rmdir(pc_ctx *c, const char *path);
bool pc_rename(pc_ctx *c, const char *from, const char *to);
bool pc_sync(pc_ctx *c);
/* Expect an engine call to fail with `want` and change nothing (the model is untouched). */
bool pc_rename_fails(pc_ctx *c, const char *from, const char *to, vfs_status want);

/* Deterministic contents unique to (seed, len). */
void pc_fill(uint8_t *buf, uint32_t len, uint64_t seed);

/* ---- workloads ------------------------------------------------------------------------- */

typedef struct pc_workload {
    const char *name;
    /* Before the recorded run (its result is the starting image, cleanly unmounted). */
    void (*setup)(pc_ctx *c);
    /* The recorded run: `fibers` fibers each call run(c, index). */
    void (*run)(pc_ctx *c, uint32_t fiber);
    uint32_t fibers;
    bool random_order;          /* the device completes requests in a seeded random order */
    bool discard;               /* fat_config.discard: freed clusters' blocks are discarded,
                                   and a discarded block reads back as zeros after a cut */
} pc_workload;

extern const pc_workload pc_workloads[];
extern const uint32_t pc_workload_count;

/* ---- the replay ------------------------------------------------------------------------ */

typedef struct pc_image_spec {
    int fat;                    /* 12, 16, 32 */
    uint32_t kib;
    uint32_t sectors_per_cluster;
} pc_image_spec;

typedef struct pc_stats {
    uint64_t writes;            /* block writes in the recorded run */
    uint64_t in_place_writes;   /* of its write-back requests, sent from a cache buffer itself */
    uint64_t flushes;
    uint64_t discards;          /* DISCARD requests in the recorded run */
    uint64_t discarded_blocks;
    uint64_t cuts;              /* prefix cuts checked */
    uint64_t variants;          /* lost-write variants checked */
    uint64_t fsck_runs;         /* fsck.fat -n runs */
    uint64_t renames_in_flight; /* cut images with a live rename record */
    uint64_t failures;
} pc_stats;

/* Runs one workload on a fresh image of `spec`, checks its cuts (all of them when
 * `exhaustive`, else a seeded sample) and prints the first failures. True when every
 * checked cut passed. */
bool pc_run_workload(const pc_workload *w, const pc_image_spec *spec, bool exhaustive, pc_stats *stats);

/* POWERCUT=full in the environment: exhaustive. */
bool pc_exhaustive(void);
/* A TEST body: the named workload on an image of `spec` (FAIL line on failure). */
void pc_test_workload(const char *name, const pc_image_spec *spec);

#endif
