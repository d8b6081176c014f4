/* Edge cases: a full volume, the file-size limit, 10,000 entries in one directory (with
 * and without the name index), long and Unicode names, colliding 8.3 aliases, deep paths
 * up to 4095 bytes, read-only mounts and attributes, concurrent appends. */
#include "fat/tests/fat_engine_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define P(s) (s), strlen(s)

static bool open_image(fat_tv *tv, const char *name, uint32_t kib, int fat, uint32_t spc, fat_tv_options *o)
{
    const char *img = tmp_path(name);
    if (!EXPECT(make_image(img, kib, fat, 512, spc)))
        return false;
    fat_tv_options d = fat_tv_defaults();
    if (!o)
        o = &d;
    return EXPECT(fat_tv_open(tv, img, o)) && EXPECT(tv->mount_status == VFS_OK);
}

static bool close_fsck(fat_tv *tv, const char *name)
{
    const char *img = tmp_path(name);
    return EXPECT(fat_tv_close(tv, img) == VFS_OK) && EXPECT(tool_fsck(img) == 0);
}

/* ---- full volume --------------------------------------------------------------------------- */

static void fill_volume(fat_tv *t, void *arg)
{
    int *ok = arg;
    fat_volume *vol = &t->vol;
    static uint8_t chunk[65536];
    fill_pattern(chunk, sizeof chunk, 5);
    fat_node *n;
    if (!EXPECT(fat_open(vol, P("/big"), VFS_OPEN_READ_WRITE | VFS_OPEN_CREATE, &n) == VFS_OK))
        return;
    vfs_status st;
    size_t done;
    uint64_t off;
    int writes = 0;
    while ((st = fat_append(n, chunk, sizeof chunk, &done, &off)) == VFS_OK)
        writes++;
    if (!EXPECT(st == VFS_NO_SPACE && writes > 0))
        return;
    uint64_t size = fat_size(n);
    if (!EXPECT(size == (uint64_t)writes * sizeof chunk))
        return;
    /* the failed write left nothing behind; smaller writes fill the rest */
    fat_statfs_info fs;
    fat_statfs(vol, &fs);
    uint64_t room = fs.free_clusters * fs.cluster_size;
    if (!EXPECT(room < sizeof chunk))
        return;
    if (room > 0 && !EXPECT(fat_append(n, chunk, (size_t)room, &done, &off) == VFS_OK))
        return;
    fat_statfs(vol, &fs);
    if (!EXPECT(fs.free_clusters == 0))
        return;
    if (!EXPECT(fat_append(n, chunk, 1, &done, &off) == VFS_NO_SPACE && done == 0))
        return;
    if (!EXPECT(fat_mkdir(vol, P("/nodir")) == VFS_NO_SPACE))
        return;
    if (!EXPECT(fat_truncate(n, fat_size(n) + 100000) == VFS_NO_SPACE))
        return;
    /* contents intact */
    uint8_t back[4096];
    if (!EXPECT(fat_read(n, sizeof chunk - 1000, back, sizeof back, &done) == VFS_OK &&
                memcmp(back, chunk + sizeof chunk - 1000, 1000) == 0 && memcmp(back + 1000, chunk, 3096) == 0))
        return;
    fat_close(n);
    /* freeing makes room again */
    if (!EXPECT(fat_unlink(vol, P("/big")) == VFS_OK))
        return;
    fat_statfs(vol, &fs);
    /* every cluster free again but those whose FAT12 entry spans two device blocks, which
     * are never handed out (a cut between the two writes could tear them) */
    const fat_geometry *g = fat_get_geometry(vol);
    uint32_t split = 0;
    for (uint32_t c = 2; c <= g->max_cluster; c++) {
        bool spans = false;
        for (uint32_t k = 0; k < g->fat_count; k++)
            spans |= fat_entry_offset(g, k, c) % 4096u == 4095u;
        split += spans;
    }
    if (!EXPECT(split > 0 && fs.free_clusters == fs.total_clusters - split))
        return;
    *ok = 1;
}

TEST(full_volume)
{
    fat_tv tv;
    CHECK(open_image(&tv, "full.img", 1440, 12, 1, NULL));
    int ok = 0;
    CHECK(fat_tv_call(&tv, fill_volume, &ok));
    CHECK(ok);
    CHECK(close_fsck(&tv, "full.img"));
}

/* ---- the file-size limit -------------------------------------------------------------------- */

static void size_limit(fat_tv *t, void *arg)
{
    int *ok = arg;
    fat_node *n;
    if (!EXPECT(fat_open(&t->vol, P("/f"), VFS_OPEN_READ_WRITE | VFS_OPEN_CREATE, &n) == VFS_OK))
        return;
    size_t done;
    if (!EXPECT(fat_write(n, 0xFFFFFFFFull, "x", 1, &done) == VFS_FILE_TOO_LARGE && done == 0))
        return;
    if (!EXPECT(fat_write(n, 0x100000000ull, "x", 1, &done) == VFS_FILE_TOO_LARGE))
        return;
    if (!EXPECT(fat_truncate(n, 0x100000000ull) == VFS_FILE_TOO_LARGE))
        return;
    /* near the limit the write needs more clusters than this volume has: nothing changes */
    if (!EXPECT(fat_write(n, 0xFFFFFF00ull, "abc", 3, &done) == VFS_NO_SPACE && fat_size(n) == 0))
        return;
    fat_close(n);
    *ok = 1;
}

TEST(file_size_limit)
{
    fat_tv tv;
    CHECK(open_image(&tv, "limit.img", 2000, 12, 1, NULL));
    int ok = 0;
    CHECK(fat_tv_call(&tv, size_limit, &ok));
    CHECK(ok);
    CHECK(close_fsck(&tv, "limit.img"));
}

/* ---- big directories ------------------------------------------------------------------------ */

typedef struct bigdir_ctx {
    int files;
    int ok;
} bigdir_ctx;

static void big_directory(fat_tv *t, void *arg)
{
    bigdir_ctx *c = arg;
    fat_volume *vol = &t->vol;
    if (!EXPECT(fat_mkdir(vol, P("/big")) == VFS_OK))
        return;
    char p[128];
    for (int i = 0; i < c->files; i++) {
        snprintf(p, sizeof p, "/big/camera image %05d.jpeg", i);
        fat_node *n;
        vfs_status st = fat_open(vol, p, strlen(p), VFS_OPEN_WRITE_ONLY | VFS_OPEN_CREATE | VFS_OPEN_EXCLUSIVE, &n);
        if (!EXPECT(st == VFS_OK)) {
            printf("create %d: %d\n", i, st);
            return;
        }
        size_t done;
        if (i % 100 == 0 && !EXPECT(fat_write(n, 0, p, strlen(p), &done) == VFS_OK))
            return;
        fat_close(n);
    }
    /* every name found, every 7th removed, then recreated */
    for (int i = 0; i < c->files; i += 7) {
        snprintf(p, sizeof p, "/big/CAMERA IMAGE %05d.JPEG", i);
        vfs_stat st;
        if (!EXPECT(tv_path_stat(vol, p, &st) == VFS_OK))
            return;
        if (!EXPECT(fat_unlink(vol, p, strlen(p)) == VFS_OK))
            return;
    }
    for (int i = 0; i < c->files; i += 14) {
        snprintf(p, sizeof p, "/big/camera image %05d.jpeg", i);
        if (!EXPECT(tv_write_file(vol, p, "again", 5) == VFS_OK))
            return;
    }
    fat_node *d;
    if (!EXPECT(fat_opendir(vol, P("/big"), &d) == VFS_OK))
        return;
    uint64_t pos = 0;
    char name[FAT_READDIR_NAME_MAX + 1];
    size_t nl;
    int count = 0;
    while (fat_readdir(d, &pos, name, &nl, NULL) == VFS_OK)
        count++;
    fat_close(d);
    int removed = (c->files + 6) / 7, back = (c->files + 13) / 14;
    if (!EXPECT(count == c->files - removed + back))
        return;
    c->ok = 1;
}

TEST(directory_of_10000_files_indexed)
{
    fat_tv tv;
    fat_tv_options o = fat_tv_defaults();
    o.index_entries = 16384;
    CHECK(open_image(&tv, "big.img", 65536, 16, 8, &o));
    bigdir_ctx c = { 10000, 0 };
    CHECK(fat_tv_call(&tv, big_directory, &c));
    CHECK(c.ok);
    const fat_stats *s = fat_get_stats(&tv.vol);
    /* lookups came from the index, and the directory was scanned about once per build */
    CHECK(s->index_lookups > 10000);
    CHECK(s->slots_scanned < 40u * 10000u);
    CHECK(close_fsck(&tv, "big.img"));
    char *list = tool_output("MTOOLS_SKIP_CHECK=1 mdir -b -i %s ::/big | wc -l", tmp_path("big.img"));
    CHECK(list && atoi(list) == 10000 - 1429 + 715);
    free(list);
}

TEST(directory_without_enough_index_memory)
{
    fat_tv tv;
    fat_tv_options o = fat_tv_defaults();
    o.index_entries = 300; /* less than the directory needs: it falls back to scanning */
    CHECK(open_image(&tv, "small-index.img", 16384, 16, 4, &o));
    bigdir_ctx c = { 1500, 0 };
    CHECK(fat_tv_call(&tv, big_directory, &c));
    CHECK(c.ok);
    CHECK(fat_get_stats(&tv.vol)->index_drops > 0);
    CHECK(close_fsck(&tv, "small-index.img"));
}

/* ---- names ------------------------------------------------------------------------------------ */

static void names(fat_tv *t, void *arg)
{
    int *ok = arg;
    fat_volume *vol = &t->vol;
    char p[1200];
    /* 255 units is the longest name; 256 is too long */
    memset(p, 0, sizeof p);
    p[0] = '/';
    memset(p + 1, 'n', 255);
    if (!EXPECT(tv_write_file(vol, p, "255", 3) == VFS_OK))
        return;
    p[256] = 'n';
    if (!EXPECT(tv_write_file(vol, p, "256", 3) == VFS_NAME_TOO_LONG))
        return;
    /* Unicode: 2-, 3- and 4-byte UTF-8 (a surrogate pair on disk) */
    const char *uni = "/caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80.txt";
    if (!EXPECT(tv_write_file(vol, uni, "smile", 5) == VFS_OK))
        return;
    /* case-insensitive for Latin-1 too */
    vfs_stat st;
    if (!EXPECT(tv_path_stat(vol, "/CAF\xc3\x89 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80.TXT", &st) == VFS_OK))
        return;
    if (!EXPECT(tv_write_file(vol, "/bad:name", "x", 1) == VFS_INVALID_NAME))
        return;
    if (!EXPECT(tv_write_file(vol, "/bad\xff", "x", 1) == VFS_INVALID_NAME))
        return;
    /* colliding aliases */
    for (int i = 0; i < 200; i++) {
        snprintf(p, sizeof p, "/collide/longfilename%d.txt", i);
        if (i == 0 && !EXPECT(fat_mkdir(vol, P("/collide")) == VFS_OK))
            return;
        if (!EXPECT(tv_write_file(vol, p, p, strlen(p)) == VFS_OK))
            return;
    }
    /* the alias names the first one */
    uint8_t *data;
    size_t len;
    if (!EXPECT(tv_read_file(vol, "/collide/LONGFI~1.TXT", &data, &len) == VFS_OK))
        return;
    bool first = len == strlen("/collide/longfilename0.txt") && memcmp(data, "/collide/longfilename0.txt", len) == 0;
    free(data);
    if (!EXPECT(first))
        return;
    /* a name that differs only in case is the same file */
    if (!EXPECT(fat_open(vol, P("/collide/LongFileName7.TXT"), VFS_OPEN_CREATE | VFS_OPEN_EXCLUSIVE, NULL) ==
                VFS_ALREADY_EXISTS))
        return;
    /* renaming to a case variant keeps one entry with the new spelling */
    if (!EXPECT(fat_rename(vol, P("/collide/longfilename7.txt"), P("/collide/LongFileName7.TXT")) == VFS_OK))
        return;
    fat_node *d;
    if (!EXPECT(fat_opendir(vol, P("/collide"), &d) == VFS_OK))
        return;
    uint64_t pos = 0;
    char name[FAT_READDIR_NAME_MAX + 1];
    size_t nl;
    int count = 0, variant = 0;
    while (fat_readdir(d, &pos, name, &nl, NULL) == VFS_OK) {
        name[nl] = 0;
        count++;
        variant += strcmp(name, "LongFileName7.TXT") == 0;
    }
    fat_close(d);
    if (!EXPECT(count == 200 && variant == 1))
        return;
    *ok = 1;
}

TEST(long_unicode_and_colliding_names)
{
    fat_tv tv;
    CHECK(open_image(&tv, "names.img", 16384, 16, 4, NULL));
    int ok = 0;
    CHECK(fat_tv_call(&tv, names, &ok));
    CHECK(ok);
    CHECK(close_fsck(&tv, "names.img"));
    char *list = tool_output("LANG=C.UTF-8 MTOOLS_SKIP_CHECK=1 mdir -b -i %s ::/ ::/collide", tmp_path("names.img"));
    CHECK(list != NULL);
    /* mtools shows characters outside the BMP as '_' */
    CHECK(strstr(list, "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac "));
    CHECK(strstr(list, "longfilename199.txt") && strstr(list, "LongFileName7.TXT"));
    free(list);
}

/* ---- deep paths --------------------------------------------------------------------------------- */

static void deep(fat_tv *t, void *arg)
{
    int *ok = arg;
    fat_volume *vol = &t->vol;
    static char p[4200];
    size_t len = 0;
    char comp[101];
    memset(comp, 'd', 100);
    comp[100] = 0;
    int levels = 0;
    while (len + 101 + 101 <= VFS_PATH_MAX) {
        len += (size_t)snprintf(p + len, sizeof p - len, "/%s", comp);
        if (!EXPECT(fat_mkdir(vol, p, len) == VFS_OK))
            return;
        levels++;
    }
    /* a file whose path is exactly 4095 bytes */
    size_t name_len = VFS_PATH_MAX - len - 1;
    p[len] = '/';
    memset(p + len + 1, 'f', name_len);
    size_t full = len + 1 + name_len;
    p[full] = 0;
    fat_node *n;
    if (!EXPECT(fat_open(vol, p, full, VFS_OPEN_READ_WRITE | VFS_OPEN_CREATE, &n) == VFS_OK))
        return;
    size_t done;
    fat_write(n, 0, "deep", 4, &done);
    fat_close(n);
    p[full] = 'f';
    if (!EXPECT(fat_open(vol, p, full + 1, VFS_OPEN_READ_WRITE | VFS_OPEN_CREATE, &n) == VFS_INVALID_PATH))
        return;
    /* "." and ".." resolve lexically */
    if (!EXPECT(fat_stat(vol, P("/./dddd/../"), &(vfs_stat){ 0 }) == VFS_OK))
        return;
    if (!EXPECT(fat_mkdir(vol, P("/x")) == VFS_OK && fat_mkdir(vol, P("/x/./y/../z")) == VFS_OK))
        return;
    vfs_stat st;
    if (!EXPECT(fat_stat(vol, P("/x/z"), &st) == VFS_OK && (st.mode & VFS_MODE_TYPE_MASK) == VFS_MODE_DIRECTORY))
        return;
    if (!EXPECT(fat_stat(vol, P("/../../x/z/.."), &st) == VFS_OK))
        return;
    *ok = levels > 30;
}

TEST(deep_paths)
{
    fat_tv tv;
    CHECK(open_image(&tv, "deep.img", 16384, 16, 4, NULL));
    int ok = 0;
    CHECK(fat_tv_call(&tv, deep, &ok));
    CHECK(ok);
    CHECK(close_fsck(&tv, "deep.img"));
}

/* ---- read-only -------------------------------------------------------------------------------- */

static void read_only_checks(fat_tv *t, void *arg)
{
    int *ok = arg;
    fat_volume *vol = &t->vol;
    fat_node *n;
    if (!EXPECT(fat_open(vol, P("/ro.txt"), VFS_OPEN_READ_ONLY, &n) == VFS_OK))
        return;
    fat_close(n);
    if (!EXPECT(fat_open(vol, P("/ro.txt"), VFS_OPEN_READ_WRITE, &n) == VFS_READ_ONLY_FS))
        return;
    if (!EXPECT(fat_mkdir(vol, P("/d")) == VFS_READ_ONLY_FS && fat_unlink(vol, P("/ro.txt")) == VFS_READ_ONLY_FS))
        return;
    *ok = 1;
}

/* A read-only mount reads the FAT only when statfs first needs the free count; two statfs
 * at once build it once, and it agrees with a writable mount's. */
static uint64_t rw_free;
static void statfs_free(fat_tv *t, void *arg)
{
    fat_statfs_info fs;
    *(uint64_t *)arg = fat_statfs(&t->vol, &fs) == VFS_OK ? fs.free_clusters : UINT64_MAX;
}

static void attr_checks(fat_tv *t, void *arg)
{
    int *ok = arg;
    fat_volume *vol = &t->vol;
    fat_node *n;
    if (!EXPECT(fat_open(vol, P("/ro.txt"), VFS_OPEN_READ_WRITE, &n) == VFS_ACCESS_DENIED))
        return;
    vfs_stat st;
    if (!EXPECT(tv_path_stat(vol, "/ro.txt", &st) == VFS_OK && (st.mode & 0222) == 0))
        return;
    *ok = 1;
}

TEST(read_only_device_and_attribute)
{
    const char *img = tmp_path("ro.img");
    CHECK(make_image(img, 2000, 12, 512, 1));
    file_write_all(tmp_path("ro.txt"), "read only", 9);
    CHECK(tool_run(false, "mcopy -i %s %s ::/ro.txt && mattrib -i %s +r ::/ro.txt", img, tmp_path("ro.txt"), img) == 0);
    fat_tv tv;
    fat_tv_options o = fat_tv_defaults();
    o.read_only = true;
    CHECK(fat_tv_open(&tv, img, &o));
    CHECK_EQ(tv.mount_status, VFS_OK);
    CHECK(!tv.vol.free_map_ready);
    int ok = 0;
    CHECK(fat_tv_call(&tv, read_only_checks, &ok));
    CHECK(ok);
    static uint64_t ro_free[2];
    CHECK(fat_tv_call_many(&tv, statfs_free, ro_free, sizeof ro_free[0], 2));
    CHECK(tv.vol.free_map_ready);
    CHECK_EQ(fat_tv_close(&tv, NULL), VFS_OK);
    o.read_only = false;
    CHECK(fat_tv_open(&tv, img, &o));
    ok = 0;
    CHECK(fat_tv_call(&tv, attr_checks, &ok));
    CHECK(ok);
    CHECK(fat_tv_call(&tv, statfs_free, &rw_free));
    CHECK(rw_free != UINT64_MAX && ro_free[0] == rw_free && ro_free[1] == rw_free);
    CHECK_EQ(fat_tv_close(&tv, NULL), VFS_OK);
}

/* ---- concurrent appends ---------------------------------------------------------------------------- */

typedef struct append_ctx {
    int id;
    int ok;
} append_ctx;

static void appender(fat_tv *t, void *arg)
{
    append_ctx *c = arg;
    char p[32];
    snprintf(p, sizeof p, "/append%d", c->id);
    fat_node *n;
    if (!EXPECT(fat_open(&t->vol, p, strlen(p), VFS_OPEN_READ_WRITE | VFS_OPEN_CREATE, &n) == VFS_OK))
        return;
    uint8_t block[4096];
    for (int i = 0; i < 64; i++) {
        fill_pattern(block, sizeof block, (uint64_t)c->id * 1000 + (uint64_t)i);
        size_t done;
        uint64_t off;
        if (!EXPECT(fat_append(n, block, sizeof block, &done, &off) == VFS_OK && done == sizeof block))
            return;
    }
    uint8_t back[4096];
    for (int i = 0; i < 64; i++) {
        fill_pattern(block, sizeof block, (uint64_t)c->id * 1000 + (uint64_t)i);
        size_t done;
        if (!EXPECT(fat_read(n, (uint64_t)i * 4096, back, sizeof back, &done) == VFS_OK &&
                    memcmp(back, block, sizeof block) == 0))
            return;
    }
    fat_close(n);
    c->ok = 1;
}

TEST(concurrent_appends_never_share_a_cluster)
{
    fat_tv tv;
    fat_tv_options o = fat_tv_defaults();
    o.random_order = true;
    o.cache_buffers = 40;
    CHECK(open_image(&tv, "append.img", 16384, 16, 4, &o));
    append_ctx c[8];
    for (int i = 0; i < 8; i++)
        c[i] = (append_ctx){ i, 0 };
    CHECK(fat_tv_call_many(&tv, appender, c, sizeof c[0], 8));
    for (int i = 0; i < 8; i++)
        CHECK(c[i].ok);
    CHECK(close_fsck(&tv, "append.img"));
}

/* ---- concurrent readers of one file ------------------------------------------------------------ */

#define SHARED_FILE (3u << 20)

static uint8_t shared_data[SHARED_FILE];

static void make_fragmented(fat_tv *t, void *arg)
{
    int *ok = arg;
    fat_node *a, *b;
    fill_pattern(shared_data, sizeof shared_data, 77);
    if (!EXPECT(fat_open(&t->vol, P("/shared"), VFS_OPEN_READ_WRITE | VFS_OPEN_CREATE, &a) == VFS_OK &&
                fat_open(&t->vol, P("/other"), VFS_OPEN_READ_WRITE | VFS_OPEN_CREATE, &b) == VFS_OK))
        return;
    for (uint32_t off = 0; off < SHARED_FILE; off += 6144) {
        size_t done;
        uint64_t at;
        uint32_t n = SHARED_FILE - off < 6144 ? SHARED_FILE - off : 6144;
        if (!EXPECT(fat_append(a, shared_data + off, n, &done, &at) == VFS_OK &&
                    fat_append(b, shared_data, 2048, &done, &at) == VFS_OK))
            return;
    }
    fat_close(a);
    fat_close(b);
    *ok = 1;
}

typedef struct reader_ctx {
    fat_node *n;
    uint64_t rng;
    int ok;
} reader_ctx;

static void shared_reader(fat_tv *t, void *arg)
{
    (void)t;
    reader_ctx *c = arg;
    static uint8_t bufs[8][70000];
    uint8_t *buf = bufs[c->rng % 8];
    for (int i = 0; i < 60; i++) {
        uint64_t off = test_rand_below(&c->rng, SHARED_FILE);
        size_t len = 1 + (size_t)test_rand_below(&c->rng, 65536), done;
        if (!EXPECT(fat_read(c->n, off, buf, len, &done) == VFS_OK))
            return;
        size_t want = SHARED_FILE - off < len ? SHARED_FILE - off : len;
        if (!EXPECT(done == want && memcmp(buf, shared_data + off, want) == 0))
            return;
    }
    c->ok = 1;
}

static void open_shared(fat_tv *t, void *arg)
{
    fat_node **n = arg;
    EXPECT(fat_open(&t->vol, P("/shared"), VFS_OPEN_READ_ONLY, n) == VFS_OK);
}

static void close_shared(fat_tv *t, void *arg)
{
    (void)t;
    fat_close(*(fat_node **)arg);
}

TEST(concurrent_readers_share_a_file)
{
    fat_tv tv;
    fat_tv_options o = fat_tv_defaults();
    o.random_order = true;
    o.cache_buffers = 64;
    o.runs_per_node = 4; /* the shared run cache keeps changing under the readers */
    CHECK(open_image(&tv, "readers.img", 16384, 16, 4, &o));
    int ok = 0;
    CHECK(fat_tv_call(&tv, make_fragmented, &ok));
    CHECK(ok);
    CHECK_EQ(fat_tv_close(&tv, tmp_path("readers.img")), VFS_OK);
    CHECK(fat_tv_open(&tv, tmp_path("readers.img"), &o));
    fat_node *n = NULL;
    CHECK(fat_tv_call(&tv, open_shared, &n));
    CHECK(n != NULL);
    reader_ctx c[8];
    uint64_t seed = test_seed();
    for (int i = 0; i < 8; i++)
        c[i] = (reader_ctx){ n, seed * 8 + (uint64_t)i, 0 };
    CHECK(fat_tv_call_many(&tv, shared_reader, c, sizeof c[0], 8));
    for (int i = 0; i < 8; i++)
        CHECK(c[i].ok);
    CHECK(fat_tv_call(&tv, close_shared, &n));
    CHECK(close_fsck(&tv, "readers.img"));
}

/* ---- full directories ---------------------------------------------------------------------------- */

typedef struct fill_dir_ctx {
    const char *dir;
    int created;
    vfs_status last;
} fill_dir_ctx;

static void fill_directory(fat_tv *t, void *arg)
{
    fill_dir_ctx *c = arg;
    if (c->dir[0] && !EXPECT(fat_mkdir(&t->vol, c->dir, strlen(c->dir)) == VFS_OK))
        return;
    char p[64];
    for (c->created = 0; c->created < 70000; c->created++) {
        snprintf(p, sizeof p, "%s/F%07d", c->dir, c->created);
        fat_node *n;
        c->last = fat_open(&t->vol, p, strlen(p), VFS_OPEN_WRITE_ONLY | VFS_OPEN_CREATE, &n);
        if (c->last != VFS_OK)
            return;
        fat_close(n);
    }
}

TEST(fixed_root_directory_fills_up)
{
    fat_tv tv;
    CHECK(open_image(&tv, "root-full.img", 4000, 12, 4, NULL));
    fill_dir_ctx c = { "", 0, VFS_OK };
    CHECK(fat_tv_call(&tv, fill_directory, &c));
    CHECK_EQ(c.last, VFS_DIRECTORY_IS_FULL);
    CHECK_EQ(c.created, (int)tv.vol.geo.root_entries - 1); /* the volume label takes one */
    CHECK(close_fsck(&tv, "root-full.img"));
}

/* A FAT12 chain linked in one run across the FAT's first block boundary, where entry 2389
 * straddles two cache blocks (FAT at byte 512, entry c at 512 + c + c / 2). */
typedef struct big_file_ctx {
    uint8_t *data;
    size_t len;
    int ok;
} big_file_ctx;

static void write_and_read_big_file(fat_tv *t, void *arg)
{
    big_file_ctx *c = arg;
    if (!EXPECT(tv_write_file(&t->vol, "/across", c->data, c->len) == VFS_OK))
        return;
    uint8_t *back;
    size_t len;
    if (EXPECT(tv_read_file(&t->vol, "/across", &back, &len) == VFS_OK)) {
        c->ok = EXPECT(len == c->len) && EXPECT(memcmp(back, c->data, len) == 0);
        free(back);
    }
}

TEST(fat12_chain_across_a_fat_block_boundary)
{
    fat_tv tv;
    CHECK(open_image(&tv, "fat12-across.img", 2048, 12, 1, NULL));
    CHECK_EQ(tv.vol.geo.fat_offset, 512);
    CHECK(tv.vol.geo.max_cluster > 2600);
    big_file_ctx c = {malloc(2600 * 512), 2600 * 512, 0};
    fill_pattern(c.data, c.len, 12);
    CHECK(fat_tv_call(&tv, write_and_read_big_file, &c));
    free(c.data);
    CHECK(c.ok);
    CHECK(close_fsck(&tv, "fat12-across.img"));
}

/* A rename into a directory that is full and cannot grow (the volume is full) fails and
 * leaves the file where it was; within one full directory, the rename reuses the slots it
 * frees. */
static void rename_on_a_full_volume(fat_tv *t, void *arg)
{
    int *ok = arg;
    fat_volume *vol = &t->vol;
    fat_node *n;
    /* Two directories whose one 512-byte cluster is full: ".", ".." and 14 short names. */
    for (int d = 0; d < 2; d++) {
        char dir[16];
        snprintf(dir, sizeof dir, "/D%d", d);
        if (!EXPECT(fat_mkdir(vol, dir, strlen(dir)) == VFS_OK))
            return;
        for (int i = 0; i < 14; i++) {
            char name[32];
            snprintf(name, sizeof name, "%s/F%d", dir, i);
            if (!EXPECT(fat_open(vol, name, strlen(name), VFS_OPEN_CREATE, &n) == VFS_OK))
                return;
            fat_close(n);
        }
    }
    static uint8_t data[4096];
    if (!EXPECT(fat_open(vol, P("/FILL"), VFS_OPEN_CREATE | VFS_OPEN_WRITE_ONLY, &n) == VFS_OK))
        return;
    size_t done;
    uint64_t at = 0;
    vfs_status st;
    while ((st = fat_write(n, at, data, sizeof data, &done)) == VFS_OK)
        at += done;
    while ((st = fat_write(n, at, data, 512, &done)) == VFS_OK)
        at += done;
    fat_close(n);
    if (!EXPECT(st == VFS_NO_SPACE))
        return;
    vfs_stat s;
    *ok = EXPECT(fat_rename(vol, P("/D0/F3"), P("/D1/MOVED")) == VFS_NO_SPACE) &&
          EXPECT(fat_stat(vol, P("/D0/F3"), &s) == VFS_OK) && EXPECT(fat_stat(vol, P("/D1/MOVED"), &s) == VFS_NO_FILE) &&
          EXPECT(fat_rename(vol, P("/D0/F4"), P("/D0/G4")) == VFS_OK) && EXPECT(fat_stat(vol, P("/D0/G4"), &s) == VFS_OK) &&
          EXPECT(fat_stat(vol, P("/D0/F4"), &s) == VFS_NO_FILE);
}

TEST(rename_into_a_full_directory_on_a_full_volume_keeps_the_file)
{
    fat_tv tv;
    CHECK(open_image(&tv, "rename-full.img", 2048, 12, 1, NULL));
    int ok = 0;
    CHECK(fat_tv_call(&tv, rename_on_a_full_volume, &ok));
    CHECK(ok);
    CHECK(close_fsck(&tv, "rename-full.img"));
}

TEST(directory_of_65536_entries)
{
    fat_tv tv;
    fat_tv_options o = fat_tv_defaults();
    o.index_entries = 70000;
    CHECK(open_image(&tv, "dir-full.img", 32768, 16, 8, &o));
    fill_dir_ctx c = { "/full", 0, VFS_OK };
    CHECK(fat_tv_call(&tv, fill_directory, &c));
    CHECK_EQ(c.last, VFS_DIRECTORY_IS_FULL);
    CHECK_EQ(c.created, 65536 - 2); /* "." and ".." take two */
    CHECK(close_fsck(&tv, "dir-full.img"));
}

/* ---- races on one name ------------------------------------------------------------------------- */

typedef struct race_ctx {
    int id;
    vfs_status create, mkdir, unlink, rmdir;
} race_ctx;

static void racer(fat_tv *t, void *arg)
{
    race_ctx *c = arg;
    fat_volume *vol = &t->vol;
    fat_node *n;
    c->create = fat_open(vol, P("/the same long name.txt"),
                         VFS_OPEN_READ_WRITE | VFS_OPEN_CREATE | VFS_OPEN_EXCLUSIVE, &n);
    if (c->create == VFS_OK) {
        size_t done;
        fat_write(n, 0, "winner", 6, &done);
        fat_close(n);
    }
    c->mkdir = fat_mkdir(vol, P("/one directory"));
    c->unlink = fat_unlink(vol, P("/the same long name.txt"));
    c->rmdir = fat_rmdir(vol, P("/one directory"));
}

TEST(concurrent_operations_on_one_name)
{
    fat_tv tv;
    fat_tv_options o = fat_tv_defaults();
    o.random_order = true;
    CHECK(open_image(&tv, "race.img", 16384, 16, 4, &o));
    race_ctx c[12];
    for (int i = 0; i < 12; i++)
        c[i] = (race_ctx){ i, 0, 0, 0, 0 };
    CHECK(fat_tv_call_many(&tv, racer, c, sizeof c[0], 12));
    int created = 0, made = 0, unlinked = 0, removed = 0;
    for (int i = 0; i < 12; i++) {
        created += c[i].create == VFS_OK;
        made += c[i].mkdir == VFS_OK;
        unlinked += c[i].unlink == VFS_OK;
        removed += c[i].rmdir == VFS_OK;
        CHECK(c[i].create == VFS_OK || c[i].create == VFS_ALREADY_EXISTS);
        CHECK(c[i].mkdir == VFS_OK || c[i].mkdir == VFS_ALREADY_EXISTS);
        CHECK(c[i].unlink == VFS_OK || c[i].unlink == VFS_NO_FILE);
        CHECK(c[i].rmdir == VFS_OK || c[i].rmdir == VFS_NO_FILE);
    }
    /* a name can be created again once removed, so each count is at least one, and every
     * removal matches a creation */
    CHECK(created >= 1 && made >= 1);
    CHECK_EQ(unlinked, created);
    CHECK_EQ(removed, made);
    CHECK(close_fsck(&tv, "race.img"));
}
