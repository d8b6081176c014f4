/* Model-based random test: many fibers run random operations (create, write, read,
 * truncate, rename, unlink, mkdir, rmdir, readdir, unlink/rename while open) against the
 * engine, with block completions in random order and a small cache, and compare every
 * result with an in-memory model. Each fiber owns its names (in directories shared with
 * all the others, and in its own directories), so its model is exact while the engine's
 * shared structures (directories, name index, free map, FAT blocks, cache) are hit by all
 * at once. Long names share a prefix so 8.3 aliases collide across fibers. Seeded by
 * test_seed(); ends with fsck.fat -n and a remount that checks every file. */
#include "fat/tests/fat_engine_test.h"

#include <stdlib.h>
#include <string.h>

#define WORKERS 24
#define DIRS 7      /* 0 root, 1..4 shared, 5..6 the worker's own */
#define SLOTS 5
#define MAX_FILE 30000u

typedef struct mfile {
    bool exists;
    uint8_t *data;
    size_t len;
} mfile;

typedef struct worker {
    int id;
    uint64_t rng;
    int ops;
    mfile f[DIRS][SLOTS];
    bool own_dir[2];
    fat_node *h;                /* an open handle */
    int h_dir, h_slot;          /* the file it names, while attached */
    bool h_detached;
    mfile h_data;               /* its contents once detached */
    bool ok;
    char why[512];
} worker;

/* MODEL_TRACE=<worker id> prints that worker's operations. */
static int trace_id = -1;
#define TRACE(w, ...)                                                   \
    do {                                                                \
        if ((w)->id == trace_id) {                                      \
            printf("t%d op %d: ", (w)->id, (w)->ops);                   \
            printf(__VA_ARGS__);                                        \
            printf("\n");                                               \
        }                                                               \
    } while (0)

static uint32_t rnd(worker *w, uint32_t n) { return (uint32_t)test_rand_below(&w->rng, n); }

static void dir_path(const worker *w, int d, char *out, size_t cap)
{
    if (d == 0)
        snprintf(out, cap, "%s", "");
    else if (d <= 4)
        snprintf(out, cap, "/shared%d", d - 1);
    else
        snprintf(out, cap, "/own-t%d-%d", w->id, d - 5);
}

static void file_name(const worker *w, int k, char *out, size_t cap)
{
    if (k % 2 == 0)
        snprintf(out, cap, "file-t%d-k%d with a long name.dat", w->id, k);
    else
        snprintf(out, cap, "t%dk%d.dat", w->id, k);
}

static void file_path(const worker *w, int d, int k, char *out, size_t cap)
{
    char dp[64], fn[96];
    dir_path(w, d, dp, sizeof dp);
    file_name(w, k, fn, sizeof fn);
    snprintf(out, cap, "%s/%s", dp, fn);
}

static bool dir_exists(const worker *w, int d) { return d < 5 || w->own_dir[d - 5]; }

static mfile *handle_file(worker *w)
{
    return w->h_detached ? &w->h_data : &w->f[w->h_dir][w->h_slot];
}

#define FAILW(w, ...)                                               \
    do {                                                            \
        snprintf((w)->why, sizeof (w)->why, __VA_ARGS__);           \
        (w)->ok = false;                                            \
        return;                                                     \
    } while (0)

#define EXPECT_ST(w, got, want, what)                                                        \
    do {                                                                                     \
        vfs_status g_ = (got), e_ = (want);                                                   \
        if (g_ != e_)                                                                        \
            FAILW(w, "op %d %s: status %d, model says %d", (w)->ops, what, (int)g_, (int)e_); \
    } while (0)

static void model_write(mfile *m, size_t off, const uint8_t *src, size_t len)
{
    if (len == 0)
        return; /* like pwrite: an empty write does not extend the file */
    if (off + len > m->len) {
        m->data = realloc(m->data, off + len);
        memset(m->data + m->len, 0, off + len - m->len);
        m->len = off + len;
    }
    memcpy(m->data + off, src, len);
}

static void model_truncate(mfile *m, size_t len)
{
    if (len > m->len) {
        m->data = realloc(m->data, len);
        memset(m->data + m->len, 0, len - m->len);
    }
    m->len = len;
}

static void check_read(worker *w, fat_node *n, const mfile *m, const char *what)
{
    if (fat_size(n) != m->len)
        FAILW(w, "op %d %s: size %llu, model %zu", w->ops, what, (unsigned long long)fat_size(n), m->len);
    size_t off = m->len ? rnd(w, (uint32_t)m->len) : 0;
    size_t len = rnd(w, 20000) + 1;
    uint8_t *buf = malloc(len);
    size_t done;
    vfs_status st = fat_read(n, off, buf, len, &done);
    size_t want = off < m->len ? (m->len - off < len ? m->len - off : len) : 0;
    bool same = st == VFS_OK && done == want && (want == 0 || memcmp(buf, m->data + off, want) == 0);
    free(buf);
    if (!same)
        FAILW(w, "op %d %s: read %zu+%zu gave status %d, %zu bytes (model %zu)", w->ops, what, off, len, st, done, want);
}

static void op_write(worker *w, fat_volume *vol)
{
    int d = rnd(w, DIRS), k = rnd(w, SLOTS);
    char p[256];
    file_path(w, d, k, p, sizeof p);
    fat_node *n;
    vfs_status st = fat_open(vol, p, strlen(p), VFS_OPEN_READ_WRITE | VFS_OPEN_CREATE, &n);
    EXPECT_ST(w, st, dir_exists(w, d) ? VFS_OK : VFS_NO_FILE, "open-create");
    if (st != VFS_OK)
        return;
    mfile *m = &w->f[d][k];
    m->exists = true;
    size_t off = rnd(w, MAX_FILE / 2), len = rnd(w, MAX_FILE / 2);
    uint8_t *buf = malloc(len + 1);
    fill_pattern(buf, len, w->rng);
    size_t done;
    st = fat_write(n, off, buf, len, &done);
    TRACE(w, "write %s %zu+%zu -> %d, size %llu", p, off, len, st, (unsigned long long)fat_size(n));
    if (st == VFS_OK && done == len)
        model_write(m, off, buf, len);
    free(buf);
    fat_close(n);
    EXPECT_ST(w, st, VFS_OK, "write");
}

static void op_read(worker *w, fat_volume *vol)
{
    int d = rnd(w, DIRS), k = rnd(w, SLOTS);
    char p[256];
    file_path(w, d, k, p, sizeof p);
    fat_node *n;
    vfs_status st = fat_open(vol, p, strlen(p), VFS_OPEN_READ_ONLY, &n);
    EXPECT_ST(w, st, w->f[d][k].exists ? VFS_OK : VFS_NO_FILE, "open-read");
    if (st != VFS_OK)
        return;
    check_read(w, n, &w->f[d][k], p);
    fat_close(n);
}

static void op_truncate(worker *w, fat_volume *vol)
{
    int d = rnd(w, DIRS), k = rnd(w, SLOTS);
    char p[256];
    file_path(w, d, k, p, sizeof p);
    fat_node *n;
    vfs_status st = fat_open(vol, p, strlen(p), VFS_OPEN_READ_WRITE, &n);
    EXPECT_ST(w, st, w->f[d][k].exists ? VFS_OK : VFS_NO_FILE, "open-truncate");
    if (st != VFS_OK)
        return;
    size_t len = rnd(w, MAX_FILE);
    st = fat_truncate(n, len);
    TRACE(w, "truncate %s %zu -> %d", p, len, st);
    fat_close(n);
    EXPECT_ST(w, st, VFS_OK, "truncate");
    model_truncate(&w->f[d][k], len);
}

static void detach_if_handle(worker *w, int d, int k)
{
    if (w->h && !w->h_detached && w->h_dir == d && w->h_slot == k) {
        w->h_data = w->f[d][k];
        w->h_detached = true;
        w->f[d][k] = (mfile){ false, NULL, 0 };
    }
}

static void op_unlink(worker *w, fat_volume *vol)
{
    int d = rnd(w, DIRS), k = rnd(w, SLOTS);
    char p[256];
    file_path(w, d, k, p, sizeof p);
    vfs_status st = fat_unlink(vol, p, strlen(p));
    TRACE(w, "unlink %s -> %d", p, st);
    EXPECT_ST(w, st, w->f[d][k].exists ? VFS_OK : VFS_NO_FILE, "unlink");
    if (st != VFS_OK)
        return;
    detach_if_handle(w, d, k);
    free(w->f[d][k].data);
    w->f[d][k] = (mfile){ false, NULL, 0 };
}

static void op_rename(worker *w, fat_volume *vol)
{
    int sd = rnd(w, DIRS), sk = rnd(w, SLOTS), dd = rnd(w, DIRS), dk = rnd(w, SLOTS);
    char sp[256], dp[256];
    file_path(w, sd, sk, sp, sizeof sp);
    file_path(w, dd, dk, dp, sizeof dp);
    vfs_status want = VFS_OK;
    if (!w->f[sd][sk].exists || !dir_exists(w, dd))
        want = VFS_NO_FILE;
    vfs_status st = fat_rename(vol, sp, strlen(sp), dp, strlen(dp));
    TRACE(w, "rename %s -> %s: %d", sp, dp, st);
    EXPECT_ST(w, st, want, "rename");
    if (st != VFS_OK || (sd == dd && sk == dk))
        return;
    detach_if_handle(w, dd, dk);
    free(w->f[dd][dk].data);
    w->f[dd][dk] = w->f[sd][sk];
    w->f[sd][sk] = (mfile){ false, NULL, 0 };
    if (w->h && !w->h_detached && w->h_dir == sd && w->h_slot == sk) {
        w->h_dir = dd;
        w->h_slot = dk;
    }
}

static void op_dir(worker *w, fat_volume *vol)
{
    int j = rnd(w, 2);
    char p[64];
    dir_path(w, 5 + j, p, sizeof p);
    if (rnd(w, 2) == 0) {
        vfs_status st = fat_mkdir(vol, p, strlen(p));
        EXPECT_ST(w, st, w->own_dir[j] ? VFS_ALREADY_EXISTS : VFS_OK, "mkdir");
        w->own_dir[j] = true;
        return;
    }
    bool empty = true;
    for (int k = 0; k < SLOTS; k++)
        empty &= !w->f[5 + j][k].exists;
    vfs_status st = fat_rmdir(vol, p, strlen(p));
    EXPECT_ST(w, st, !w->own_dir[j] ? VFS_NO_FILE : empty ? VFS_OK : VFS_NOT_EMPTY, "rmdir");
    if (st == VFS_OK)
        w->own_dir[j] = false;
}

/* Rename one own directory onto the other (which may exist: replaced when empty). */
static void op_dir_rename(worker *w, fat_volume *vol)
{
    int from = rnd(w, 2), to = 1 - from;
    char sp[64], dp[64];
    dir_path(w, 5 + from, sp, sizeof sp);
    dir_path(w, 5 + to, dp, sizeof dp);
    bool to_empty = true;
    for (int k = 0; k < SLOTS; k++)
        to_empty &= !w->f[5 + to][k].exists;
    vfs_status want = !w->own_dir[from] ? VFS_NO_FILE
                     : w->own_dir[to] && !to_empty ? VFS_NOT_EMPTY : VFS_OK;
    vfs_status st = fat_rename(vol, sp, strlen(sp), dp, strlen(dp));
    TRACE(w, "rename dir %s -> %s: %d", sp, dp, st);
    EXPECT_ST(w, st, want, "rename dir");
    if (st != VFS_OK)
        return;
    for (int k = 0; k < SLOTS; k++) {
        w->f[5 + to][k] = w->f[5 + from][k];
        w->f[5 + from][k] = (mfile){ false, NULL, 0 };
    }
    if (w->h && !w->h_detached && w->h_dir == 5 + from)
        w->h_dir = 5 + to;
    w->own_dir[to] = true;
    w->own_dir[from] = false;
}

static void op_readdir(worker *w, fat_volume *vol)
{
    int d = rnd(w, DIRS);
    char p[64];
    dir_path(w, d, p, sizeof p);
    fat_node *dn;
    vfs_status st = fat_opendir(vol, p, strlen(p), &dn);
    EXPECT_ST(w, st, dir_exists(w, d) ? VFS_OK : VFS_NO_FILE, "opendir");
    if (st != VFS_OK)
        return;
    int seen[SLOTS] = { 0 };
    uint64_t pos = 0;
    char name[FAT_READDIR_NAME_MAX + 1];
    size_t nl;
    vfs_stat fst;
    int others = 0;
    while ((st = fat_readdir(dn, &pos, name, &nl, &fst)) == VFS_OK) {
        name[nl] = 0;
        bool mine = false;
        for (int k = 0; k < SLOTS; k++) {
            char fn[96];
            file_name(w, k, fn, sizeof fn);
            if (strcmp(fn, name) == 0) {
                seen[k]++;
                mine = true;
            }
        }
        others += !mine;
    }
    fat_close(dn);
    EXPECT_ST(w, st, VFS_END_OF_DIRECTORY, "readdir end");
    for (int k = 0; k < SLOTS; k++)
        if (seen[k] != (w->f[d][k].exists ? 1 : 0))
            FAILW(w, "op %d readdir %s: slot %d seen %d times, model %d", w->ops, p, k, seen[k], w->f[d][k].exists);
    if (d >= 5 && others != 0)
        FAILW(w, "op %d readdir %s: %d foreign names in an own directory", w->ops, p, others);
}

static void op_handle(worker *w, fat_volume *vol)
{
    if (!w->h) {
        int d = rnd(w, DIRS), k = rnd(w, SLOTS);
        if (!w->f[d][k].exists)
            return;
        char p[256];
        file_path(w, d, k, p, sizeof p);
        vfs_status st = fat_open(vol, p, strlen(p), VFS_OPEN_READ_WRITE, &w->h);
        TRACE(w, "open handle %s -> %d", p, st);
        EXPECT_ST(w, st, VFS_OK, "open-handle");
        w->h_dir = d;
        w->h_slot = k;
        w->h_detached = false;
        return;
    }
    uint32_t r = rnd(w, 8);
    mfile *m = handle_file(w);
    if (r < 3) {
        size_t off = rnd(w, MAX_FILE / 2), len = rnd(w, 8000);
        uint8_t *buf = malloc(len + 1);
        fill_pattern(buf, len, w->rng);
        size_t done;
        vfs_status st = fat_write(w->h, off, buf, len, &done);
        TRACE(w, "handle write %zu+%zu -> %d (detached %d)", off, len, st, w->h_detached);
        if (st == VFS_OK)
            model_write(m, off, buf, len);
        free(buf);
        EXPECT_ST(w, st, VFS_OK, "handle write");
    } else if (r < 6) {
        check_read(w, w->h, m, "handle read");
    } else {
        vfs_status st = fat_close(w->h);
        TRACE(w, "handle close -> %d", st);
        w->h = NULL;
        if (w->h_detached) {
            free(w->h_data.data);
            w->h_data = (mfile){ false, NULL, 0 };
        }
        EXPECT_ST(w, st, VFS_OK, "handle close");
    }
}

static void worker_fn(fat_tv *tv, void *arg)
{
    worker *w = arg;
    fat_volume *vol = &tv->vol;
    for (w->ops = 0; w->ops < 500 && w->ok; w->ops++) {
        uint32_t r = rnd(w, 100);
        if (r < 22)
            op_write(w, vol);
        else if (r < 38)
            op_read(w, vol);
        else if (r < 45)
            op_truncate(w, vol);
        else if (r < 56)
            op_rename(w, vol);
        else if (r < 64)
            op_unlink(w, vol);
        else if (r < 70)
            op_dir(w, vol);
        else if (r < 72)
            op_dir_rename(w, vol);
        else if (r < 82)
            op_readdir(w, vol);
        else
            op_handle(w, vol);
    }
    if (w->h) {
        fat_close(w->h);
        w->h = NULL;
    }
    if (w->h_detached) {
        free(w->h_data.data);
        w->h_data = (mfile){ false, NULL, 0 };
        w->h_detached = false;
    }
}

static void setup_fn(fat_tv *tv, void *arg)
{
    int *ok = arg;
    *ok = 1;
    for (int i = 0; i < 4; i++) {
        char p[32];
        snprintf(p, sizeof p, "/shared%d", i);
        *ok &= fat_mkdir(&tv->vol, p, strlen(p)) == VFS_OK;
    }
}

static void verify_fn(fat_tv *tv, void *arg)
{
    worker *w = arg;
    for (int d = 0; d < DIRS && w->ok; d++)
        for (int k = 0; k < SLOTS && w->ok; k++) {
            char p[256];
            file_path(w, d, k, p, sizeof p);
            uint8_t *data;
            size_t len;
            vfs_status st = tv_read_file(&tv->vol, p, &data, &len);
            mfile *m = &w->f[d][k];
            if (st != (m->exists ? VFS_OK : (dir_exists(w, d) ? VFS_NO_FILE : VFS_NO_FILE))) {
                snprintf(w->why, sizeof w->why, "after remount %s: status %d, model exists %d", p, st, m->exists);
                w->ok = false;
            } else if (st == VFS_OK && (len != m->len || (len > 0 && memcmp(data, m->data, len) != 0))) {
                snprintf(w->why, sizeof w->why, "after remount %s: contents differ (%zu vs %zu)", p, len, m->len);
                w->ok = false;
            }
            free(data);
        }
}

static void run_model(int fat, uint32_t kib, uint32_t spc, const char *name)
{
    const char *img = tmp_path(name);
    CHECK(make_image(img, kib, fat, 512, spc));
    fat_tv_options o = fat_tv_defaults();
    o.random_order = true;
    o.cache_buffers = 48;
    o.max_nodes = 128; /* 24 handles plus path walks: never exhausted here */
    o.index_entries = 256; /* small: some directories fall back to scanning */
    o.runs_per_node = 4;
    fat_tv tv;
    CHECK(fat_tv_open(&tv, img, &o));
    CHECK_EQ(tv.mount_status, VFS_OK);
    int ok = 0;
    CHECK(fat_tv_call(&tv, setup_fn, &ok));
    if (getenv("MODEL_TRACE"))
        trace_id = atoi(getenv("MODEL_TRACE"));
    CHECK(ok);
    static worker w[WORKERS];
    uint64_t seed = test_seed();
    for (int i = 0; i < WORKERS; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].id = i;
        w[i].ok = true;
        w[i].rng = seed + (uint64_t)i * 7919u;
    }
    CHECK(fat_tv_call_many(&tv, worker_fn, w, sizeof w[0], WORKERS));
    for (int i = 0; i < WORKERS; i++)
        CHECK_MSG(w[i].ok, "worker %d: %s", i, w[i].why);
    CHECK_EQ(fat_tv_close(&tv, img), VFS_OK);
    CHECK(tool_fsck(img) == 0);
    o.random_order = false;
    CHECK(fat_tv_open(&tv, img, &o));
    CHECK_EQ(tv.mount_status, VFS_OK);
    CHECK(fat_tv_call_many(&tv, verify_fn, w, sizeof w[0], WORKERS));
    for (int i = 0; i < WORKERS; i++)
        CHECK_MSG(w[i].ok, "worker %d: %s", i, w[i].why);
    CHECK_EQ(fat_tv_close(&tv, NULL), VFS_OK);
    for (int i = 0; i < WORKERS; i++)
        for (int d = 0; d < DIRS; d++)
            for (int k = 0; k < SLOTS; k++)
                free(w[i].f[d][k].data);
}

TEST(model_fat16) { run_model(16, 32768, 4, "model16.img"); }
TEST(model_fat12) { run_model(12, 16000, 8, "model12.img"); }
TEST(model_fat32) { run_model(32, 40960, 1, "model32.img"); }
