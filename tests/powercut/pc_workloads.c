/* powercut: the workloads. Each is small enough to check at every write, and together they
 * exercise every operation docs/ORDERING.md describes: long names that fill directory
 * sectors and clusters, many small files, appends and overwrites made durable piece by
 * piece, truncation both ways, renames of every kind, namespace churn, and many fibers at
 * once on a device that completes requests in random order. Contents are unique per file
 * and version, so the checks can tell files apart. */
#include "tests/powercut/powercut.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DATA_MAX 32768u

#define FIBERS_MAX 8u

/* Contents for one call, in a buffer of the calling fiber's own (a call blocks, and other
 * fibers fill theirs meanwhile). */
static uint8_t *data_in(uint32_t fiber, uint64_t seed, uint32_t len)
{
    static uint8_t buf[FIBERS_MAX][DATA_MAX];
    pc_fill(buf[fiber], len, seed);
    return buf[fiber];
}

static uint8_t *data_for(uint64_t seed, uint32_t len)
{
    return data_in(0, seed, len);
}

static bool make_in(pc_ctx *c, uint32_t fiber, const char *path, uint32_t len, uint64_t seed)
{
    return pc_create(c, path, data_in(fiber, seed, len), len);
}

static bool make(pc_ctx *c, const char *path, uint32_t len, uint64_t seed)
{
    return make_in(c, 0, path, len, seed);
}

/* A name of about `len` bytes: long names take several LFN slots. */
static void long_name(char *out, size_t cap, const char *dir, uint32_t i, uint32_t len)
{
    static const char words[] = "the quick brown fox jumps over the lazy dog while a long file name fills "
                                "its directory sector after sector and cluster after cluster, ";
    int n = snprintf(out, cap, "%s/%02u ", dir, i);
    for (uint32_t k = 0; k < len && (size_t)n + 5 < cap; k++)
        out[n++] = words[(i * 7 + k) % (sizeof words - 1)];
    while (n > 0 && out[n - 1] == ' ')
        n--;
    snprintf(out + n, cap - (size_t)n, ".txt");
}

/* ---- tree copy with long names ------------------------------------------------------------- */

static void tree_copy(pc_ctx *c, uint32_t fiber)
{
    (void)fiber;
    static const char *const dirs[] = {"", "/src", "/src/a deeper directory with a long name", "/other"};
    static const uint32_t name_len[] = {12, 30, 45, 64, 90, 120, 150, 20, 77, 5, 100, 38};
    static const uint32_t sizes[] = {700, 1, 2048, 4096, 3000, 513, 100, 5000, 0, 1536};
    if (!pc_mkdir(c, "/src") || !pc_mkdir(c, "/src/a deeper directory with a long name") || !pc_mkdir(c, "/other"))
        return;
    uint32_t files = 36;
    for (uint32_t i = 0; i < files; i++) {
        char path[400];
        long_name(path, sizeof path, dirs[i % 4], i, name_len[i % 12]);
        uint32_t len = sizes[i % 10];
        if (c->fat_type == 12)
            len /= 2;
        if (!make(c, path, len, c->seed + i))
            return;
        if (i == files / 2 && !pc_sync(c))
            return;
    }
    pc_sync(c);
}

/* ---- a copy tool's files: times set while open, several at once --------------------------- */

/* The times reach the entry with the close's batched commit (fat_set_times), in the same
 * epoch as the size: a cut must never show an entry whose size runs past its chain. */
static void copy_times(pc_ctx *c, uint32_t fiber)
{
    char dir[32];
    snprintf(dir, sizeof dir, "/copy%u", fiber);
    if (!pc_mkdir(c, dir))
        return;
    for (uint32_t i = 0; i < 8; i++) {
        char path[64];
        snprintf(path, sizeof path, "%s/file %02u.c", dir, i);
        uint32_t len = 200 + (fiber * 8 + i) * 613 % (c->fat_type == 12 ? 2500 : 6000);
        if (!pc_copy_in(c, path, data_in(fiber, c->seed + fiber * 8 + i, len), len, 1500000000 + 2 * (int64_t)i))
            return;
    }
    if (fiber == 0)
        pc_sync(c);
}

/* ---- many small files, then sync ------------------------------------------------------------------ */

static void small_files(pc_ctx *c, uint32_t fiber)
{
    (void)fiber;
    if (!pc_mkdir(c, "/many"))
        return;
    for (uint32_t round = 0; round < 2; round++) {
        for (uint32_t i = 0; i < 24; i++) {
            char path[64];
            uint32_t n = round * 24 + i;
            snprintf(path, sizeof path, n % 3 == 0 ? "/many/Mixed%02u.Txt" : "/many/F%03u.DAT", n);
            if (!make(c, path, 100 + (n * 379) % 1900, c->seed * 3 + n))
                return;
        }
        if (!pc_sync(c))
            return;
    }
}

/* ---- append with fsync after each piece ---------------------------------------------------------- */

static void append_fsync(pc_ctx *c, uint32_t fiber)
{
    (void)fiber;
    static const uint32_t pieces[] = {1, 100, 511, 513, 4096, 1000, 7000, 3, 2048, 5000, 10, 600};
    pc_handle log, side;
    if (!pc_open(c, "/append log.bin", true, &log) || !pc_open(c, "/SIDE.BIN", true, &side))
        return;
    for (uint32_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++) {
        uint32_t len = c->fat_type == 12 ? pieces[i] / 2 + 1 : pieces[i];
        if (!pc_append(c, &log, data_for(c->seed + i, len), len) || !pc_fsync(c, &log))
            return;
        /* an unsynced neighbour growing at the same time */
        if (!pc_append(c, &side, data_for(c->seed + 100 + i, 300), 300))
            return;
    }
    pc_close(c, &log);
    pc_close(c, &side);
}

/* ---- overwrite in place ------------------------------------------------------------------------------------ */

static void overwrite_setup(pc_ctx *c)
{
    make(c, "/data.bin", 24000, c->seed);
    make(c, "/other.bin", 5000, c->seed + 1);
}

static void overwrite(pc_ctx *c, uint32_t fiber)
{
    (void)fiber;
    static const uint32_t at[][2] = {{0, 100}, {4000, 300}, {10000, 5000}, {23000, 1000}, {511, 2}, {8190, 4100}};
    pc_handle h;
    if (!pc_open(c, "/data.bin", false, &h))
        return;
    for (uint32_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        if (!pc_write(c, &h, at[i][0], data_for(c->seed + 50 + i, at[i][1]), at[i][1]))
            return;
        if (i % 2 == 1 && !pc_fsync(c, &h))
            return;
    }
    pc_close(c, &h);
}

/* ---- truncate down and up ---------------------------------------------------------------------------------- */

static void truncate_setup(pc_ctx *c)
{
    make(c, "/t.bin", 30000, c->seed);
    make(c, "/u.bin", 10000, c->seed + 1);
}

static void truncate_run(pc_ctx *c, uint32_t fiber)
{
    (void)fiber;
    pc_handle t, u;
    if (!pc_open(c, "/t.bin", false, &t) || !pc_truncate(c, &t, 10000) || !pc_fsync(c, &t) ||
        !pc_truncate(c, &t, 25000) || !pc_fsync(c, &t) || !pc_write(c, &t, 20000, data_for(c->seed + 9, 2000), 2000) ||
        !pc_truncate(c, &t, 0) || !pc_fsync(c, &t) || !pc_append(c, &t, data_for(c->seed + 10, 3000), 3000) ||
        !pc_truncate(c, &t, 5000) || !pc_fsync(c, &t) || !pc_close(c, &t))
        return;
    if (!pc_open(c, "/u.bin", false, &u) || !pc_truncate(c, &u, 0) || !pc_close(c, &u))
        return;
    pc_sync(c);
}

/* ---- rename within and across directories ---------------------------------------------------------------- */

static void rename_setup(pc_ctx *c)
{
    if (!pc_mkdir(c, "/d1") || !pc_mkdir(c, "/d2") || !pc_mkdir(c, "/d1/sub") || !pc_mkdir(c, "/d1/sub2") ||
        !pc_mkdir(c, "/d2/emptydir"))
        return;
    make(c, "/d1/a.txt", 2000, c->seed + 1);
    make(c, "/d1/a long file name in d1.bin", 5000, c->seed + 2);
    make(c, "/d1/b", 100, c->seed + 3);
    make(c, "/d1/e", 0, 0);
    make(c, "/d2/c.txt", 3000, c->seed + 4);
    make(c, "/d2/target file.dat", 1000, c->seed + 5);
    make(c, "/d2/moved over.bin", 1200, c->seed + 6);
    make(c, "/d1/sub/x.bin", 1000, c->seed + 7);
    make(c, "/d1/sub2/y.bin", 900, c->seed + 8);
    make(c, "/r.bin", 700, c->seed + 9);
    make(c, "/config.json", 400, c->seed + 10);
}

static void rename_run(pc_ctx *c, uint32_t fiber)
{
    (void)fiber;
    /* within a directory, short name to long name */
    if (!pc_rename(c, "/d1/a.txt", "/d1/a renamed with a rather long name.txt") || !pc_sync(c))
        return;
    /* across directories */
    if (!pc_rename(c, "/d1/a long file name in d1.bin", "/d2/moved.bin"))
        return;
    /* across directories, replacing a file */
    if (!pc_rename(c, "/d1/b", "/d2/target file.dat") || !pc_sync(c))
        return;
    /* a directory with contents, across directories */
    if (!pc_rename(c, "/d1/sub", "/d2/sub moved here"))
        return;
    /* a directory replacing an empty directory */
    if (!pc_rename(c, "/d1/sub2", "/d2/emptydir") || !pc_sync(c))
        return;
    /* an empty file; a file into the root's parent-less directory and back */
    if (!pc_rename(c, "/d1/e", "/d1/e2") || !pc_rename(c, "/r.bin", "/d1/R.BIN") || !pc_rename(c, "/d1/R.BIN", "/r2.bin"))
        return;
    /* within a directory, replacing a file (the write-then-rename idiom) */
    pc_handle h;
    if (!pc_open(c, "/config.json.tmp", true, &h) || !pc_write(c, &h, 0, data_for(c->seed + 20, 450), 450) ||
        !pc_fsync(c, &h) || !pc_close(c, &h) || !pc_rename(c, "/config.json.tmp", "/config.json") || !pc_sync(c))
        return;
    if (!pc_rename(c, "/d2/c.txt", "/d2/moved over.bin"))
        return;
    pc_sync(c);
}

/* ---- mkdir / rmdir / unlink churn ------------------------------------------------------------------------- */

static void churn(pc_ctx *c, uint32_t fiber)
{
    (void)fiber;
    char p[64], q[160];
    for (uint32_t round = 0; round < 6; round++) {
        snprintf(p, sizeof p, "/churn dir %u", round);
        if (!pc_mkdir(c, p))
            return;
        for (uint32_t i = 0; i < 3; i++) {
            snprintf(q, sizeof q, "%s/file %u.bin", p, i);
            if (!make(c, q, 300 + 700 * i, c->seed + round * 10 + i))
                return;
        }
        snprintf(q, sizeof q, "%s/file 1.bin", p);
        if (!pc_unlink(c, q))
            return;
        char to[128];
        snprintf(to, sizeof to, "/kept %u.bin", round);
        snprintf(q, sizeof q, "%s/file 2.bin", p);
        if (!pc_rename(c, q, to))
            return;
        if (round > 0) {
            snprintf(q, sizeof q, "/churn dir %u/file 0.bin", round - 1);
            snprintf(p, sizeof p, "/churn dir %u", round - 1);
            if (!pc_unlink(c, q) || !pc_rmdir(c, p))
                return;
        }
        if (round % 2 == 1 && !pc_sync(c))
            return;
    }
}

/* ---- freeing and reusing clusters (with discard: freed blocks read back as zeros) ---------------------- */

static void free_reuse_setup(pc_ctx *c)
{
    if (!pc_mkdir(c, "/old"))
        return;
    make(c, "/big1.bin", 24000, c->seed + 1);
    make(c, "/big2.bin", 40000, c->seed + 2);
    make(c, "/big3.bin", 33000, c->seed + 3);
    make(c, "/old/big4.bin", 28000, c->seed + 4);
    make(c, "/old/small.bin", 900, c->seed + 5);
}

/* Every way a chain is freed (unlink, a rename over a file, truncate, the files of a removed
 * directory), each followed by new data that may land in the clusters just freed. */
static void free_reuse(pc_ctx *c, uint32_t fiber)
{
    (void)fiber;
    pc_handle h;
    if (!pc_unlink(c, "/big1.bin") || !pc_open(c, "/new1.bin", true, &h) ||
        !pc_write(c, &h, 0, data_for(c->seed + 11, 30000), 30000) || !pc_fsync(c, &h) || !pc_close(c, &h))
        return;
    if (!pc_rename(c, "/new1.bin", "/big2.bin") || !pc_sync(c))
        return;
    if (!pc_open(c, "/big3.bin", false, &h) || !pc_truncate(c, &h, 3000) || !pc_fsync(c, &h) ||
        !pc_append(c, &h, data_for(c->seed + 12, 20000), 20000) || !pc_fsync(c, &h) || !pc_close(c, &h))
        return;
    if (!pc_unlink(c, "/old/big4.bin") || !pc_unlink(c, "/old/small.bin") || !pc_rmdir(c, "/old"))
        return;
    if (!make(c, "/new2.bin", 36000, c->seed + 13) || !pc_sync(c))
        return;
    if (!pc_unlink(c, "/big3.bin") || !make(c, "/new3.bin", 30000, c->seed + 14))
        return;
    pc_sync(c);
}

/* ---- many fibers at once ----------------------------------------------------------------------------------- */

static void concurrent(pc_ctx *c, uint32_t fiber)
{
    char dir[16], p[96], q[96];
    snprintf(dir, sizeof dir, "/w%u", fiber);
    if (!pc_mkdir(c, dir))
        return;
    pc_handle h;
    snprintf(p, sizeof p, "%s/grows with fsync.bin", dir);
    if (!pc_open(c, p, true, &h))
        return;
    for (uint32_t i = 0; i < 4; i++) {
        snprintf(q, sizeof q, "%s/small %u.txt", dir, i);
        if (!make_in(c, fiber, q, 200 + 300 * fiber + 50 * i, c->seed + fiber * 100 + i))
            return;
        uint32_t len = 700 + 400 * i;
        if (!pc_append(c, &h, data_in(fiber, c->seed + fiber * 100 + 50 + i, len), len))
            return;
        if (i % 2 == 1 && !pc_fsync(c, &h))
            return;
    }
    if (!pc_close(c, &h))
        return;
    snprintf(q, sizeof q, "%s/small 1.txt", dir);
    snprintf(p, sizeof p, "%s/renamed one.txt", dir);
    if (!pc_rename(c, q, p))
        return;
    snprintf(q, sizeof q, "%s/small 2.txt", dir);
    if (!pc_unlink(c, q))
        return;
    if (fiber % 4 == 0)
        pc_sync(c);
}

/* ---- syncs at any moment (the server's background write-back) ------------------------------------------ */

/* Fiber 0 works without syncing; fiber 1 syncs over and over meanwhile, as the server's
 * write-back does when its interval ends in the middle of an operation: each sync lands
 * inside a create, an append, a rename between directories, a truncate or a removal. */
static bool background_done;

static void background_setup(pc_ctx *c)
{
    background_done = false;
    if (!pc_mkdir(c, "/from") || !pc_mkdir(c, "/to"))
        return;
    make(c, "/from/moved later.txt", 3000, c->seed + 1);
    make(c, "/from/replaced target.txt", 1500, c->seed + 2);
}

static void background_sync(pc_ctx *c, uint32_t fiber)
{
    if (fiber == 1) {
        for (uint32_t i = 0; i < 64 && !background_done; i++)
            if (!pc_sync(c))
                return;
        return;
    }
    char p[96];
    for (uint32_t i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "/to/new file with a long name %u.bin", i);
        if (!make(c, p, 900 + 1300 * i, c->seed + 10 + i))
            break;
    }
    pc_handle h;
    if (!c->failed && pc_open(c, "/to/grows.log", true, &h)) {
        for (uint32_t i = 0; i < 3 && !c->failed; i++)
            pc_append(c, &h, data_for(c->seed + 20 + i, 2500), 2500);
        if (!c->failed)
            pc_truncate(c, &h, 4000);
        if (!c->failed)
            pc_close(c, &h);
    }
    if (!c->failed && pc_rename(c, "/from/moved later.txt", "/to/moved.txt") &&
        pc_rename(c, "/to/new file with a long name 0.bin", "/from/replaced target.txt") &&
        pc_unlink(c, "/to/new file with a long name 1.bin") && pc_mkdir(c, "/to/sub"))
        pc_rename(c, "/to/new file with a long name 2.bin", "/to/sub/deeper.bin");
    background_done = true;
}

const pc_workload pc_workloads[] = {
    { .name = "tree_copy", .run = tree_copy },
    { .name = "small_files", .run = small_files },
    { .name = "copy_times", .run = copy_times, .fibers = 4, .random_order = true },
    { .name = "append_fsync", .run = append_fsync },
    { .name = "overwrite", .setup = overwrite_setup, .run = overwrite },
    { .name = "truncate", .setup = truncate_setup, .run = truncate_run },
    { .name = "rename", .setup = rename_setup, .run = rename_run },
    { .name = "churn", .run = churn },
    { .name = "concurrent", .run = concurrent, .fibers = FIBERS_MAX, .random_order = true },
    { .name = "background_sync", .setup = background_setup, .run = background_sync, .fibers = 2 },
    /* the workloads that free clusters again, with discard on (fat_config.discard) */
    { .name = "truncate_discard", .setup = truncate_setup, .run = truncate_run, .discard = true },
    { .name = "free_reuse", .setup = free_reuse_setup, .run = free_reuse },
    { .name = "free_reuse_discard", .setup = free_reuse_setup, .run = free_reuse, .discard = true },
    { .name = "concurrent_discard", .run = concurrent, .fibers = FIBERS_MAX, .random_order = true, .discard = true },
};
const uint32_t pc_workload_count = sizeof pc_workloads / sizeof pc_workloads[0];
