/* Corrupt images: truncated images, bad BPB fields, FAT chain loops, clusters out of range,
 * free clusters inside chains, directory entries pointing nowhere, directory loops, and
 * seeded fuzzing of the boot sector and the root directory. Every case must end in an
 * error status or a bounded, well-formed answer: no crash, no hang, no stray access
 * (ASan). */
#include "fat/tests/fat_engine_test.h"

#include <stdlib.h>
#include <string.h>

/* Read everything reachable: every directory listed, every file read and stat'ed. Errors
 * are fine; the point is that it ends. Bounded depth and entry count. */
static void walk(fat_volume *vol, const char *path, int depth, int *entries)
{
    if (depth > 8 || *entries > 5000)
        return;
    fat_node *d;
    if (fat_opendir(vol, path, strlen(path), &d) != VFS_OK)
        return;
    uint64_t pos = 0;
    char name[FAT_READDIR_NAME_MAX + 1];
    size_t nl;
    vfs_stat st;
    while (fat_readdir(d, &pos, name, &nl, &st) == VFS_OK && (*entries)++ < 5000) {
        name[nl] = 0;
        char p[2048];
        snprintf(p, sizeof p, "%s/%s", path, name);
        if ((st.mode & VFS_MODE_TYPE_MASK) == VFS_MODE_DIRECTORY) {
            walk(vol, p, depth + 1, entries);
        } else {
            fat_node *n;
            if (fat_open(vol, p, strlen(p), VFS_OPEN_READ_ONLY, &n) == VFS_OK) {
                static uint8_t buf[65536];
                size_t done;
                fat_read(n, 0, buf, sizeof buf, &done);
                fat_read(n, fat_size(n) > 10 ? fat_size(n) - 10 : 0, buf, 100, &done);
                fat_close(n);
            }
        }
    }
    fat_close(d);
}

static void walk_fn(fat_tv *tv, void *arg)
{
    int entries = 0;
    walk(&tv->vol, "", 0, &entries);
    if (arg)
        *(int *)arg = entries;
}

/* Mount an image; if it mounts, walk it and unmount. Returns the mount status. */
static vfs_status try_image(const char *img, uint16_t sector)
{
    fat_tv tv;
    fat_tv_options o = fat_tv_defaults();
    o.sector_size = sector;
    if (!EXPECT(fat_tv_open(&tv, img, &o)))
        return VFS_ERROR;
    vfs_status st = tv.mount_status;
    if (st == VFS_OK)
        EXPECT(fat_tv_call(&tv, walk_fn, NULL));
    fat_tv_close(&tv, NULL);
    return st;
}

static bool base_image(const char *name, uint32_t kib, int fat, uint32_t spc)
{
    const char *img = tmp_path(name);
    if (!make_image(img, kib, fat, 512, spc))
        return false;
    uint8_t data[1500];
    fill_pattern(data, sizeof data, 9);
    file_write_all(tmp_path("three.bin"), data, sizeof data);
    return tool_run(false, "mmd -i %s ::/SUB && mcopy -i %s %s ::/THREE.BIN && mcopy -i %s %s ::/SUB/INNER.BIN", img,
                    img, tmp_path("three.bin"), img, tmp_path("three.bin")) == 0;
}

TEST(truncated_image)
{
    CHECK(base_image("trunc.img", 16384, 16, 1));
    const char *img = tmp_path("trunc.img");
    CHECK(tool_run(false, "truncate -s 2M %s", img) == 0);
    CHECK_EQ(try_image(img, 512), VFS_CORRUPT);
    CHECK(tool_run(false, "truncate -s 4096 %s", img) == 0);
    CHECK_EQ(try_image(img, 512), VFS_CORRUPT);
}

TEST(bad_bpb_fields)
{
    CHECK(base_image("bpb.img", 16384, 16, 4));
    size_t len;
    uint8_t *orig = file_read_all(tmp_path("bpb.img"), &len);
    CHECK(orig != NULL);
    struct { int off, width; uint32_t value; } cases[] = {
        { 11, 2, 0 },      { 11, 2, 3000 },  { 11, 2, 256 },   { 13, 1, 0 },    { 13, 1, 3 },
        { 14, 2, 0 },      { 16, 1, 0 },     { 16, 1, 9 },     { 17, 2, 0 },    { 17, 2, 7 },
        { 19, 2, 0 },      { 19, 2, 65535 }, { 22, 2, 0 },
        { 22, 2, 1 },      { 21, 1, 0x12 },  { 510, 2, 0 },    { 0, 1, 0 },
    };
    const char *img = tmp_path("bpb-bad.img");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t *copy = malloc(len);
        memcpy(copy, orig, len);
        if (cases[i].width == 1)
            copy[cases[i].off] = (uint8_t)cases[i].value;
        else if (cases[i].width == 2)
            af_store_le16(copy + cases[i].off, (uint16_t)cases[i].value);
        else
            af_store_le32(copy + cases[i].off, cases[i].value);
        file_write_all(img, copy, len);
        free(copy);
        vfs_status st = try_image(img, 512);
        CHECK_MSG(st != VFS_OK, "case %zu (offset %d = %u) mounted", i, cases[i].off, cases[i].value);
    }
    free(orig);
}

TEST(boot_sector_fuzz)
{
    CHECK(base_image("fuzz.img", 4000, 12, 4));
    size_t len;
    uint8_t *orig = file_read_all(tmp_path("fuzz.img"), &len);
    CHECK(orig != NULL);
    uint64_t rng = test_seed();
    const char *img = tmp_path("fuzz-bad.img");
    int mounted = 0;
    for (int i = 0; i < 60; i++) {
        uint8_t *copy = malloc(len);
        memcpy(copy, orig, len);
        int flips = 1 + (int)test_rand_below(&rng, 4);
        for (int f = 0; f < flips; f++)
            copy[11 + test_rand_below(&rng, 40)] = (uint8_t)test_rand(&rng);
        file_write_all(img, copy, len);
        free(copy);
        mounted += try_image(img, 512) == VFS_OK;
    }
    printf("boot sector fuzz: %d of 60 mounted\n", mounted);
    free(orig);
}

/* Change the image, mount it, run fn. */
typedef void (*mangle_fn)(raw_image *img, uint32_t file_cluster, uint8_t *entry);

static void check_mangled(const char *name, int fat, uint32_t kib, uint32_t spc, mangle_fn mangle, fat_tv_fn fn, int *ok)
{
    *ok = 0;
    if (!EXPECT(base_image(name, kib, fat, spc)))
        return;
    const char *img = tmp_path(name);
    raw_image raw;
    if (!EXPECT(raw_load(&raw, img)))
        return;
    uint8_t *e = raw_root_entry(&raw, "THREE   BIN");
    if (!EXPECT(e != NULL))
        return;
    mangle(&raw, raw_entry_cluster(&raw, e), e);
    raw_save(&raw, img);
    raw_free(&raw);
    fat_tv tv;
    fat_tv_options o = fat_tv_defaults();
    if (!EXPECT(fat_tv_open(&tv, img, &o)) || !EXPECT(tv.mount_status == VFS_OK))
        return;
    EXPECT(fat_tv_call(&tv, fn, ok));
    fat_tv_close(&tv, NULL);
}

static vfs_status read_all(fat_volume *vol, const char *path)
{
    fat_node *n;
    vfs_status st = fat_open(vol, path, strlen(path), VFS_OPEN_READ_WRITE, &n);
    if (st != VFS_OK)
        return st;
    static uint8_t buf[1 << 20];
    size_t done;
    st = fat_read(n, 0, buf, sizeof buf, &done);
    fat_close(n);
    return st;
}

static vfs_status append_some(fat_volume *vol, const char *path)
{
    fat_node *n;
    vfs_status st = fat_open(vol, path, strlen(path), VFS_OPEN_READ_WRITE, &n);
    if (st != VFS_OK)
        return st;
    size_t done;
    uint64_t off;
    st = fat_append(n, "more", 4, &done, &off);
    fat_close(n);
    return st;
}

static void loop_to_first(raw_image *img, uint32_t c, uint8_t *e)
{
    uint32_t second = raw_fat_get(img, 0, c);
    for (uint32_t copy = 0; copy < img->g.fat_count; copy++)
        raw_fat_set(img, copy, second, c);
    (void)e;
}

static void loop_checks(fat_tv *tv, void *arg)
{
    /* reading within the size stays bounded; anything that needs the chain's end fails */
    read_all(&tv->vol, "/THREE.BIN");
    *(int *)arg = append_some(&tv->vol, "/THREE.BIN") == VFS_CORRUPT &&
                  fat_unlink(&tv->vol, "/THREE.BIN", 10) == VFS_OK;
}

TEST(fat_chain_loop)
{
    int ok;
    check_mangled("loop.img", 12, 2000, 1, loop_to_first, loop_checks, &ok);
    CHECK(ok);
}

static void self_loop_big_size(raw_image *img, uint32_t c, uint8_t *e)
{
    uint32_t second = raw_fat_get(img, 0, c);
    for (uint32_t copy = 0; copy < img->g.fat_count; copy++)
        raw_fat_set(img, copy, second, second);
    af_store_le32(e + 28, 900000); /* more clusters than the chain really has */
}

static void expect_read_corrupt(fat_tv *tv, void *arg)
{
    *(int *)arg = read_all(&tv->vol, "/THREE.BIN") == VFS_CORRUPT;
}

TEST(self_loop_with_large_size)
{
    int ok;
    check_mangled("selfloop.img", 16, 16384, 1, self_loop_big_size, expect_read_corrupt, &ok);
    CHECK(ok);
}

static void link_out_of_range(raw_image *img, uint32_t c, uint8_t *e)
{
    for (uint32_t copy = 0; copy < img->g.fat_count; copy++)
        raw_fat_set(img, copy, c, img->g.max_cluster + 5);
    (void)e;
}

TEST(cluster_link_out_of_range)
{
    int ok;
    check_mangled("range.img", 16, 16384, 1, link_out_of_range, expect_read_corrupt, &ok);
    CHECK(ok);
}

static void link_to_free(raw_image *img, uint32_t c, uint8_t *e)
{
    for (uint32_t copy = 0; copy < img->g.fat_count; copy++)
        raw_fat_set(img, copy, c, 0);
    (void)e;
}

TEST(free_cluster_inside_chain)
{
    int ok;
    check_mangled("free.img", 32, 40960, 1, link_to_free, expect_read_corrupt, &ok);
    CHECK(ok);
}

static void entry_nowhere(raw_image *img, uint32_t c, uint8_t *e)
{
    (void)c;
    af_store_le16(e + 26, 0xFFF0); /* FAT16: beyond the last cluster of a 16 MiB volume */
    (void)img;
    uint8_t *sub = raw_root_entry(img, "SUB        ");
    af_store_le16(sub + 26, 1);
}

static void nowhere_checks(fat_tv *tv, void *arg)
{
    fat_node *d;
    int ok = read_all(&tv->vol, "/THREE.BIN") == VFS_CORRUPT;
    ok &= fat_opendir(&tv->vol, "/SUB", 4, &d) == VFS_CORRUPT;
    vfs_stat st;
    ok &= fat_stat(&tv->vol, "/SUB/INNER.BIN", 14, &st) == VFS_CORRUPT;
    ok &= fat_unlink(&tv->vol, "/THREE.BIN", 10) == VFS_OK;
    *(int *)arg = ok;
}

TEST(directory_entries_pointing_nowhere)
{
    int ok;
    check_mangled("nowhere.img", 16, 16384, 1, entry_nowhere, nowhere_checks, &ok);
    CHECK(ok);
}

static void dir_loop(raw_image *img, uint32_t c, uint8_t *e)
{
    (void)c;
    (void)e;
    uint8_t *sub = raw_root_entry(img, "SUB        ");
    uint32_t sc = raw_entry_cluster(img, sub);
    for (uint32_t copy = 0; copy < img->g.fat_count; copy++)
        raw_fat_set(img, copy, sc, sc);
    /* and fill the directory's cluster with live-looking entries, so no end marker stops a scan */
    uint8_t *d = img->data + fat_cluster_offset(&img->g, sc);
    for (uint32_t i = 2; i < img->g.bytes_per_cluster / 32; i++) {
        memcpy(d + i * 32, "FILLER  BIN", 11);
        d[i * 32 + 7] = (uint8_t)('A' + i % 26);
        d[i * 32 + 11] = 0x20;
    }
}

static void dir_loop_checks(fat_tv *tv, void *arg)
{
    int entries = 0;
    walk_fn(tv, &entries);
    /* a create in the looping directory must end too */
    fat_node *n;
    vfs_status st = fat_open(&tv->vol, "/SUB/new file.txt", 17, VFS_OPEN_READ_WRITE | VFS_OPEN_CREATE, &n);
    if (st == VFS_OK)
        fat_close(n);
    *(int *)arg = entries > 0;
}

TEST(directory_cluster_loop)
{
    int ok;
    check_mangled("dirloop.img", 16, 16384, 1, dir_loop, dir_loop_checks, &ok);
    CHECK(ok);
}

TEST(root_directory_fuzz)
{
    CHECK(base_image("rootfuzz.img", 4000, 12, 4));
    const char *img = tmp_path("rootfuzz.img");
    raw_image raw;
    CHECK(raw_load(&raw, img));
    uint64_t rng = test_seed() ^ 0x5555;
    size_t n;
    uint8_t *root = raw_root_entries(&raw, &n);
    uint8_t *orig = malloc(n * 32);
    memcpy(orig, root, n * 32);
    const char *bad = tmp_path("rootfuzz-bad.img");
    for (int i = 0; i < 40; i++) {
        memcpy(root, orig, n * 32);
        for (int f = 0; f < 64; f++)
            root[test_rand_below(&rng, 6 * 32)] = (uint8_t)test_rand(&rng);
        raw_save(&raw, bad);
        CHECK_EQ(try_image(bad, 512), VFS_OK);
    }
    free(orig);
    raw_free(&raw);
}

/* ---- block I/O errors ------------------------------------------------------------------------ */

static void scenario(fat_tv *tv, void *arg)
{
    int *errors = arg;
    fat_volume *vol = &tv->vol;
    static uint8_t data[300000];
    fill_pattern(data, sizeof data, 3);
    vfs_status st[8];
    st[0] = fat_mkdir(vol, "/dir", 4);
    st[1] = tv_write_file(vol, "/dir/a file with a long name", data, sizeof data);
    st[2] = tv_write_file(vol, "/b", data, 5000);
    st[3] = fat_rename(vol, "/b", 2, "/dir/c", 6);
    uint8_t *back = NULL;
    size_t len;
    st[4] = tv_read_file(vol, "/dir/a file with a long name", &back, &len);
    if (st[1] == VFS_OK && st[4] == VFS_OK &&
        (len != sizeof data || memcmp(back, data, len) != 0))
        st[4] = VFS_ERROR; /* a write and a read that both succeeded must agree */
    free(back);
    st[5] = fat_unlink(vol, "/dir/c", 6);
    st[6] = fat_sync(vol);
    st[7] = VFS_OK;
    for (int i = 0; i < 8; i++) {
        if (!EXPECT(st[i] != VFS_ERROR))
            printf("step %d\n", i);
        *errors += st[i] != VFS_OK;
    }
}

TEST(io_error_at_every_request)
{
    CHECK(make_image(tmp_path("io.img"), 4000, 12, 512, 2));
    /* n = 0: count the scenario's requests; then fail each of them in turn */
    uint64_t requests = 0;
    int failures_seen = 0;
    for (uint64_t n = 0; n <= requests + 1; n++) {
        fat_tv tv;
        fat_tv_options o = fat_tv_defaults();
        o.cache_buffers = 12; /* evictions: many more requests to fail */
        CHECK(fat_tv_open(&tv, tmp_path("io.img"), &o));
        CHECK_EQ(tv.mount_status, VFS_OK);
        uint64_t before = tv.f.dev.requests_done;
        ram_device_fail_nth(&tv.f.dev, n);
        int errors = 0;
        CHECK_MSG(fat_tv_call(&tv, scenario, &errors), "request %llu failing: a task hung", (unsigned long long)n);
        if (n == 0) {
            CHECK_EQ(errors, 0);
            requests = tv.f.dev.requests_done - before;
        }
        failures_seen += errors > 0;
        fat_tv_close(&tv, NULL); /* may report the error again; must not crash or hang */
    }
    printf("%llu requests, %d of them failing gave an error status\n", (unsigned long long)requests, failures_seen);
    CHECK(requests > 5 && failures_seen > 0);
}

static void read_fails(fat_tv *tv, void *arg)
{
    int *ok = arg;
    fat_node *n;
    static uint8_t buf[200000];
    size_t done;
    *ok = fat_open(&tv->vol, "/BIG.BIN", 8, VFS_OPEN_READ_ONLY, &n) == VFS_OK &&
          fat_read(n, 0, buf, sizeof buf, &done) == VFS_IO_ERROR &&
          fat_read(n, 0, buf, 4096, &done) == VFS_OK && done == 4096;
    if (*ok)
        fat_close(n);
    uint8_t *data;
    size_t len;
    *ok = *ok && tv_read_file(&tv->vol, "/SUB/INNER.BIN", &data, &len) == VFS_OK && len == 1500;
    free(data);
}

TEST(io_error_on_one_file_leaves_the_rest)
{
    CHECK(base_image("ioread.img", 16384, 16, 1));
    uint8_t *big = malloc(200000);
    fill_pattern(big, 200000, 4);
    file_write_all(tmp_path("big.bin"), big, 200000);
    free(big);
    CHECK(tool_run(false, "mcopy -i %s %s ::/BIG.BIN", tmp_path("ioread.img"), tmp_path("big.bin")) == 0);
    raw_image raw;
    CHECK(raw_load(&raw, tmp_path("ioread.img")));
    uint8_t *e = raw_root_entry(&raw, "BIG     BIN");
    CHECK(e != NULL);
    /* a block in the middle of the file, far from any metadata */
    uint64_t off = fat_cluster_offset(&raw.g, raw_entry_cluster(&raw, e)) + 64 * 1024;
    raw_free(&raw);
    fat_tv tv;
    fat_tv_options o = fat_tv_defaults();
    CHECK(fat_tv_open(&tv, tmp_path("ioread.img"), &o));
    CHECK_EQ(tv.mount_status, VFS_OK);
    ram_device_fail_range(&tv.f.dev, off / 4096, off / 4096 + 1, 1u << BLK_REQ_READ);
    int ok = 0;
    CHECK(fat_tv_call(&tv, read_fails, &ok));
    CHECK(ok);
    ram_device_fail_range(&tv.f.dev, 0, 0, 0);
    CHECK_EQ(fat_tv_close(&tv, NULL), VFS_OK);
}
