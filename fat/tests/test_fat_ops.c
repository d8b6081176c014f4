/* Engine operations on mkfs.fat images, checked through the API and then from outside
 * with fsck.fat -n and mtools. */
#include "fat/fat_engine.h"
#include "fat/tests/fat_engine_test.h"

#include <stdlib.h>
#include <string.h>

#define P(s) (s), strlen(s)

static fat_tv tv;

static bool open_fresh(const char *name, uint32_t kib, int fat, uint32_t spc)
{
    const char *img = tmp_path(name);
    if (!EXPECT(make_image(img, kib, fat, 512, spc)))
        return false;
    fat_tv_options o = fat_tv_defaults();
    if (!EXPECT(fat_tv_open(&tv, img, &o)))
        return false;
    return EXPECT(tv.mount_status == VFS_OK);
}

static bool close_and_fsck(const char *name)
{
    const char *img = tmp_path(name);
    if (!EXPECT(fat_tv_close(&tv, img) == VFS_OK))
        return false;
    return EXPECT(tool_fsck(img) == 0);
}

/* ---- basic file I/O ---------------------------------------------------------------------- */

static void basic_io(fat_tv *t, void *arg)
{
    int *ok = arg;
    fat_volume *vol = &t->vol;
    uint8_t data[10000], back[10000];
    fill_pattern(data, sizeof data, 1);
    fat_node *n;
    if (!EXPECT(fat_open(vol, P("/hello.txt"), VFS_OPEN_READ_WRITE | VFS_OPEN_CREATE, &n) == VFS_OK))
        return;
    size_t done;
    if (!EXPECT(fat_write(n, 0, data, sizeof data, &done) == VFS_OK && done == sizeof data))
        return;
    if (!EXPECT(fat_size(n) == sizeof data))
        return;
    memset(back, 0, sizeof back);
    if (!EXPECT(fat_read(n, 0, back, sizeof back, &done) == VFS_OK && done == sizeof back))
        return;
    if (!EXPECT(memcmp(data, back, sizeof data) == 0))
        return;
    /* a read at an odd offset across clusters */
    if (!EXPECT(fat_read(n, 3000, back, 5000, &done) == VFS_OK && done == 5000 &&
                memcmp(back, data + 3000, 5000) == 0))
        return;
    /* past the end */
    if (!EXPECT(fat_read(n, 20000, back, 10, &done) == VFS_OK && done == 0))
        return;
    /* a second open shares the node */
    fat_node *n2;
    if (!EXPECT(fat_open(vol, P("/HELLO.TXT"), VFS_OPEN_READ_ONLY, &n2) == VFS_OK && n2 == n))
        return;
    fat_close(n2);
    vfs_stat st;
    if (!EXPECT(fat_fstat(n, &st) == VFS_OK && st.size == sizeof data &&
                (st.mode & VFS_MODE_TYPE_MASK) == VFS_MODE_REGULAR && st.mtime == 1700000000))
        return;
    if (!EXPECT(fat_close(n) == VFS_OK))
        return;
    if (!EXPECT(fat_open(vol, P("/missing"), VFS_OPEN_READ_ONLY, &n) == VFS_NO_FILE))
        return;
    if (!EXPECT(fat_open(vol, P("/hello.txt"), VFS_OPEN_CREATE | VFS_OPEN_EXCLUSIVE, &n) ==
                VFS_ALREADY_EXISTS))
        return;
    *ok = 1;
}

TEST(basic_write_read_fsck_mtools)
{
    CHECK(open_fresh("basic.img", 16384, 16, 4));
    int ok = 0;
    CHECK(fat_tv_call(&tv, basic_io, &ok));
    CHECK(ok);
    CHECK(close_and_fsck("basic.img"));
    uint8_t data[10000];
    fill_pattern(data, sizeof data, 1);
    const char *out = tmp_path("hello.out");
    CHECK(tool_run(false, "mcopy -n -i %s ::/hello.txt %s", tmp_path("basic.img"), out) == 0);
    size_t len;
    uint8_t *got = file_read_all(out, &len);
    CHECK(got && len == sizeof data && memcmp(got, data, len) == 0);
    free(got);
    char *dir = tool_output("MTOOLS_SKIP_CHECK=1 mdir -b -i %s ::/", tmp_path("basic.img"));
    CHECK(dir && strstr(dir, "hello.txt"));
    free(dir);
}

/* ---- directories, rename, unlink, truncate ------------------------------------------------ */

static void namespace_ops(fat_tv *t, void *arg)
{
    int *ok = arg;
    fat_volume *vol = &t->vol;
    uint8_t data[5000];
    fill_pattern(data, sizeof data, 2);
    if (!EXPECT(fat_mkdir(vol, P("/dir")) == VFS_OK))
        return;
    if (!EXPECT(fat_mkdir(vol, P("/dir")) == VFS_ALREADY_EXISTS))
        return;
    if (!EXPECT(fat_mkdir(vol, P("/dir/sub")) == VFS_OK))
        return;
    if (!EXPECT(tv_write_file(vol, "/dir/sub/a long file name.data", data, sizeof data) == VFS_OK))
        return;
    if (!EXPECT(tv_write_file(vol, "/dir/b.txt", data, 100) == VFS_OK))
        return;
    if (!EXPECT(fat_rmdir(vol, P("/dir/sub")) == VFS_NOT_EMPTY))
        return;
    if (!EXPECT(fat_rename(vol, P("/dir/sub/a long file name.data"), P("/moved.bin")) == VFS_OK))
        return;
    if (!EXPECT(fat_rmdir(vol, P("/dir/sub")) == VFS_OK))
        return;
    if (!EXPECT(fat_rename(vol, P("/dir"), P("/dir/x")) == VFS_INVALID_ARGUMENT))
        return;
    if (!EXPECT(fat_mkdir(vol, P("/dir/deeper")) == VFS_OK))
        return;
    if (!EXPECT(fat_rename(vol, P("/dir"), P("/dir/deeper/x")) == VFS_INVALID_ARGUMENT))
        return;
    if (!EXPECT(fat_rename(vol, P("/dir/deeper"), P("/renamed-dir")) == VFS_OK))
        return;
    if (!EXPECT(tv_write_file(vol, "/renamed-dir/inner.txt", data, 10) == VFS_OK))
        return;
    /* replace an existing file */
    if (!EXPECT(fat_rename(vol, P("/dir/b.txt"), P("/moved.bin")) == VFS_OK))
        return;
    uint8_t *got;
    size_t len;
    if (!EXPECT(tv_read_file(vol, "/moved.bin", &got, &len) == VFS_OK && len == 100 &&
                memcmp(got, data, 100) == 0))
        return;
    free(got);
    if (!EXPECT(fat_unlink(vol, P("/dir/b.txt")) == VFS_NO_FILE))
        return;
    if (!EXPECT(fat_unlink(vol, P("/dir")) == VFS_IS_DIRECTORY))
        return;
    if (!EXPECT(fat_rmdir(vol, P("/moved.bin")) == VFS_NOT_DIRECTORY))
        return;
    /* truncate: grow with zeros, shrink */
    fat_node *n;
    if (!EXPECT(fat_open(vol, P("/trunc"), VFS_OPEN_READ_WRITE | VFS_OPEN_CREATE, &n) == VFS_OK))
        return;
    size_t done;
    if (!EXPECT(fat_write(n, 0, data, 3000, &done) == VFS_OK))
        return;
    if (!EXPECT(fat_truncate(n, 100) == VFS_OK && fat_size(n) == 100))
        return;
    if (!EXPECT(fat_truncate(n, 9000) == VFS_OK && fat_size(n) == 9000))
        return;
    uint8_t back[9000];
    if (!EXPECT(fat_read(n, 0, back, sizeof back, &done) == VFS_OK && done == 9000))
        return;
    bool zero = true;
    for (size_t i = 100; i < 9000; i++)
        zero &= back[i] == 0;
    if (!EXPECT(zero && memcmp(back, data, 100) == 0))
        return;
    /* a write past the end leaves zeros in the gap */
    if (!EXPECT(fat_write(n, 12000, data, 10, &done) == VFS_OK && fat_size(n) == 12010))
        return;
    if (!EXPECT(fat_read(n, 9000, back, 3000, &done) == VFS_OK && done == 3000))
        return;
    for (size_t i = 0; i < 3000; i++)
        zero &= back[i] == 0;
    if (!EXPECT(zero))
        return;
    fat_close(n);
    /* readdir of the root */
    fat_node *d;
    if (!EXPECT(fat_opendir(vol, P("/"), &d) == VFS_OK))
        return;
    uint64_t pos = 0;
    char name[FAT_READDIR_NAME_MAX];
    size_t nl;
    int count = 0;
    vfs_stat st;
    while (fat_readdir(d, &pos, name, &nl, &st) == VFS_OK)
        count++;
    fat_close(d);
    if (!EXPECT(count == 4)) /* dir, moved.bin, renamed-dir, trunc */
        return;
    *ok = 1;
}

TEST(namespace_and_truncate)
{
    CHECK(open_fresh("ns.img", 4000, 12, 4));
    int ok = 0;
    CHECK(fat_tv_call(&tv, namespace_ops, &ok));
    CHECK(ok);
    CHECK(close_and_fsck("ns.img"));
    char *dir = tool_output("MTOOLS_SKIP_CHECK=1 mdir -/ -b -i %s ::/", tmp_path("ns.img"));
    CHECK(dir != NULL);
    CHECK(strstr(dir, "::/moved.bin") && strstr(dir, "::/renamed-dir/inner.txt") && strstr(dir, "::/trunc"));
    CHECK(!strstr(dir, "b.txt") && !strstr(dir, "sub"));
    free(dir);
}

/* ---- unlink while open -------------------------------------------------------------------- */

static void unlink_open(fat_tv *t, void *arg)
{
    int *ok = arg;
    fat_volume *vol = &t->vol;
    uint8_t data[20000], back[20000];
    fill_pattern(data, sizeof data, 3);
    if (!EXPECT(tv_write_file(vol, "/victim", data, sizeof data) == VFS_OK))
        return;
    fat_statfs_info before, during, after;
    fat_statfs(vol, &before);
    fat_node *n;
    if (!EXPECT(fat_open(vol, P("/victim"), VFS_OPEN_READ_WRITE, &n) == VFS_OK))
        return;
    if (!EXPECT(fat_unlink(vol, P("/victim")) == VFS_OK))
        return;
    vfs_stat st;
    if (!EXPECT(tv_path_stat(vol, "/victim", &st) == VFS_NO_FILE))
        return;
    size_t done;
    if (!EXPECT(fat_write(n, sizeof data, data, 100, &done) == VFS_OK))
        return;
    if (!EXPECT(fat_read(n, 0, back, sizeof back, &done) == VFS_OK && done == sizeof back &&
                memcmp(back, data, sizeof data) == 0))
        return;
    /* a new file of the same name is a different file */
    if (!EXPECT(tv_write_file(vol, "/victim", data, 10) == VFS_OK))
        return;
    fat_statfs(vol, &during);
    if (!EXPECT(during.free_clusters < before.free_clusters))
        return;
    if (!EXPECT(fat_close(n) == VFS_OK))
        return;
    fat_statfs(vol, &after);
    if (!EXPECT(after.free_clusters > during.free_clusters))
        return;
    if (!EXPECT(tv_path_stat(vol, "/victim", &st) == VFS_OK && st.size == 10))
        return;
    *ok = 1;
}

TEST(unlink_while_open)
{
    CHECK(open_fresh("unlink.img", 16384, 16, 2));
    int ok = 0;
    CHECK(fat_tv_call(&tv, unlink_open, &ok));
    CHECK(ok);
    CHECK(close_and_fsck("unlink.img"));
}

/* ---- dirty flag and FSInfo ---------------------------------------------------------------- */

static void write_one(fat_tv *t, void *arg)
{
    int *ok = arg;
    uint8_t data[3000];
    fill_pattern(data, sizeof data, 11);
    *ok = tv_write_file(&t->vol, "/file", data, sizeof data) == VFS_OK &&
          fat_sync(&t->vol) == VFS_OK;
}

static void dirty_flag_case(int fat, uint32_t kib, uint32_t clean_bit)
{
    const char *img = tmp_path("dirty.img"), *cut = tmp_path("dirty-cut.img");
    CHECK(make_image(img, kib, fat, 512, 1));
    fat_tv_options o = fat_tv_defaults();
    CHECK(fat_tv_open(&tv, img, &o));
    CHECK_EQ(tv.mount_status, VFS_OK);
    CHECK(!tv.vol.was_dirty);
    int ok = 0;
    CHECK(fat_tv_call(&tv, write_one, &ok));
    CHECK(ok);
    fat_statfs_info fs;
    CHECK(fat_statfs(&tv.vol, &fs) == VFS_OK);
    /* the image as a power cut would leave it: mounted state on disk */
    CHECK(blk_fixture_save(&tv.f, cut) == 0);
    CHECK_EQ(fat_tv_close(&tv, img), VFS_OK);
    raw_image raw;
    CHECK(raw_load(&raw, cut));
    for (uint32_t copy = 0; copy < raw.g.fat_count; copy++)
        CHECK((raw_fat_get(&raw, copy, 1) & clean_bit) == 0);
    if (fat == 32)
        CHECK_EQ(af_load_le32(raw.data + raw.g.fsinfo_sector * 512 + 488), 0xFFFFFFFFu);
    raw_free(&raw);
    CHECK(raw_load(&raw, img));
    for (uint32_t copy = 0; copy < raw.g.fat_count; copy++)
        CHECK((raw_fat_get(&raw, copy, 1) & clean_bit) == clean_bit);
    if (fat == 32)
        CHECK_EQ(af_load_le32(raw.data + raw.g.fsinfo_sector * 512 + 488), fs.free_clusters);
    raw_free(&raw);
    CHECK(tool_fsck(img) == 0);
    /* mounting the cut image notices */
    CHECK(fat_tv_open(&tv, cut, &o));
    CHECK_EQ(tv.mount_status, VFS_OK);
    CHECK(tv.vol.was_dirty);
    fat_statfs_info fs2;
    CHECK(fat_statfs(&tv.vol, &fs2) == VFS_OK && fs2.was_dirty && fs2.free_clusters == fs.free_clusters);
    CHECK_EQ(fat_tv_close(&tv, NULL), VFS_OK);
}

TEST(dirty_flag_fat16) { dirty_flag_case(16, 16384, 0x8000u); }
TEST(dirty_flag_and_fsinfo_fat32) { dirty_flag_case(32, 40960, 0x08000000u); }

/* ---- readdir positions -------------------------------------------------------------------- */

static void positions(fat_tv *t, void *arg)
{
    int *ok = arg;
    fat_volume *vol = &t->vol;
    char p[64];
    if (!EXPECT(fat_mkdir(vol, P("/d")) == VFS_OK))
        return;
    for (int i = 0; i < 20; i++) {
        snprintf(p, sizeof p, "/d/entry number %02d", i);
        if (!EXPECT(tv_write_file(vol, p, p, 3) == VFS_OK))
            return;
    }
    fat_node *d;
    if (!EXPECT(fat_opendir(vol, P("/d"), &d) == VFS_OK))
        return;
    uint64_t pos = 0, saved = 0;
    char name[FAT_READDIR_NAME_MAX + 1];
    size_t nl;
    int seen[20] = { 0 };
    for (int i = 0; i < 10; i++) {
        if (!EXPECT(fat_readdir(d, &pos, name, &nl, NULL) == VFS_OK))
            return;
        name[nl] = 0;
        seen[atoi(name + 13)]++;
    }
    saved = pos;
    /* others come and go */
    for (int i = 0; i < 20; i += 3) {
        snprintf(p, sizeof p, "/d/entry number %02d", i);
        fat_unlink(vol, p, strlen(p));
    }
    for (int i = 0; i < 5; i++) {
        snprintf(p, sizeof p, "/d/newcomer %d", i);
        tv_write_file(vol, p, p, 1);
    }
    pos = saved; /* seek back to the told position */
    while (fat_readdir(d, &pos, name, &nl, NULL) == VFS_OK) {
        name[nl] = 0;
        if (strncmp(name, "entry number ", 13) == 0)
            seen[atoi(name + 13)]++;
    }
    fat_close(d);
    for (int i = 0; i < 20; i++) {
        int want = i < 10 ? 1 : (i % 3 == 0 ? 0 : 1);
        if (!EXPECT(seen[i] == want)) {
            printf("entry %d seen %d times\n", i, seen[i]);
            return;
        }
    }
    *ok = 1;
}

TEST(readdir_positions_survive_changes)
{
    CHECK(open_fresh("pos.img", 16384, 16, 1));
    int ok = 0;
    CHECK(fat_tv_call(&tv, positions, &ok));
    CHECK(ok);
    CHECK(close_and_fsck("pos.img"));
}

/* ---- timestamps ----------------------------------------------------------------------------- */

static void times(fat_tv *t, void *arg)
{
    int *ok = arg;
    fat_volume *vol = &t->vol;
    if (!EXPECT(tv_write_file(vol, "/t", "x", 1) == VFS_OK && fat_mkdir(vol, P("/td")) == VFS_OK))
        return;
    vfs_stat st;
    if (!EXPECT(tv_path_stat(vol, "/t", &st) == VFS_OK))
        return;
    /* 1700000000 is 2023-11-14 22:13:20 UTC; the access date keeps only the day */
    if (!EXPECT(st.mtime == 1700000000 && st.ctime == 1700000000 && st.atime == 1699920000))
        return;
    if (!EXPECT(tv_path_stat(vol, "/td", &st) == VFS_OK && st.mtime == 1700000000 &&
                (st.mode & VFS_MODE_TYPE_MASK) == VFS_MODE_DIRECTORY))
        return;
    if (!EXPECT(fat_set_times(vol, P("/t"), 1600000000, 1500000000) == VFS_OK))
        return;
    if (!EXPECT(tv_path_stat(vol, "/t", &st) == VFS_OK && st.mtime == 1500000000 && st.atime == 1599955200))
        return;
    if (!EXPECT(fat_set_times(vol, P("/td"), -1, 1500000002) == VFS_OK &&
                tv_path_stat(vol, "/td", &st) == VFS_OK && st.mtime == 1500000002))
        return;
    /* A directory's modify time follows its entries: creating, renaming within and removing
     * each bring it to the clock's time. */
    static const char *const changes[] = {"create", "rename", "unlink", "mkdir", "rmdir"};
    for (size_t i = 0; i < AF_ARRAY_LEN(changes); i++) {
        vfs_status r;
        if (!EXPECT(fat_set_times(vol, P("/td"), -1, 1500000002) == VFS_OK))
            return;
        switch (i) {
        case 0: r = tv_write_file(vol, "/td/f", "y", 1); break;
        case 1: r = fat_rename(vol, P("/td/f"), P("/td/g")); break;
        case 2: r = fat_unlink(vol, P("/td/g")); break;
        case 3: r = fat_mkdir(vol, P("/td/sub")); break;
        default: r = fat_rmdir(vol, P("/td/sub")); break;
        }
        if (!EXPECT(r == VFS_OK && tv_path_stat(vol, "/td", &st) == VFS_OK))
            return;
        if (!EXPECT(st.mtime == 1700000000)) {
            fprintf(stderr, "  after %s: directory mtime %llu\n", changes[i], (unsigned long long)st.mtime);
            return;
        }
    }
    *ok = 1;
}

TEST(timestamps)
{
    CHECK(open_fresh("times.img", 4000, 12, 4));
    int ok = 0;
    CHECK(fat_tv_call(&tv, times, &ok));
    CHECK(ok);
    CHECK(close_and_fsck("times.img"));
    /* mtools sees the same modification time (in UTC, TZ=UTC) */
    char *dir = tool_output("TZ=UTC MTOOLS_SKIP_CHECK=1 mdir -i %s ::/t", tmp_path("times.img"));
    CHECK(dir && strstr(dir, "2017-07-14") && strstr(dir, "2:40"));
    free(dir);
}

/* A volume in local time (time_offset_minutes, as vfat's time_offset): entries hold the
 * clock's time plus the offset, stat records and set_times stay in Unix time, and mtools
 * (which reads the fields as local time) shows the local time. */
static void local_times(fat_tv *t, void *arg)
{
    int *ok = arg;
    fat_volume *vol = &t->vol;
    if (!EXPECT(fat_unmount(vol) == VFS_OK))
        return;
    t->cfg.time_offset_minutes = 330;
    vfs_stat st;
    if (!EXPECT(fat_mount(vol, &t->f.stack.cache, &t->cfg, NULL) == VFS_OK) ||
        !EXPECT(tv_write_file(vol, "/now", "x", 1) == VFS_OK) || !EXPECT(tv_path_stat(vol, "/now", &st) == VFS_OK) ||
        !EXPECT(st.mtime == 1700000000) || !EXPECT(tv_write_file(vol, "/set", "x", 1) == VFS_OK) ||
        !EXPECT(fat_set_times(vol, P("/set"), -1, 1500000000) == VFS_OK) ||
        !EXPECT(tv_path_stat(vol, "/set", &st) == VFS_OK) || !EXPECT(st.mtime == 1500000000))
        return;
    t->cfg.time_offset_minutes = 1441;
    if (!EXPECT(fat_unmount(vol) == VFS_OK) ||
        !EXPECT(fat_mount(vol, &t->f.stack.cache, &t->cfg, NULL) == VFS_INVALID_ARGUMENT))
        return;
    t->cfg.time_offset_minutes = 0;
    *ok = EXPECT(fat_mount(vol, &t->f.stack.cache, &t->cfg, NULL) == VFS_OK);
}

TEST(local_time_volume)
{
    CHECK(open_fresh("local.img", 4000, 12, 4));
    int ok = 0;
    CHECK(fat_tv_call(&tv, local_times, &ok));
    CHECK(ok);
    CHECK(close_and_fsck("local.img"));
    /* 1700000000 is 2023-11-14 22:13:20 UTC, 2023-11-15 03:43 at +5:30; 1500000000 is
     * 2017-07-14 02:40 UTC, 08:10 at +5:30. mtools prints the fields as they are. */
    char *dir = tool_output("TZ=UTC MTOOLS_SKIP_CHECK=1 mdir -i %s ::/", tmp_path("local.img"));
    CHECK(dir && strstr(dir, "2023-11-15") && strstr(dir, "3:43") && strstr(dir, "2017-07-14") && strstr(dir, "8:10"));
    free(dir);
}

/* FAT attributes: set and cleared through the API, seen by mtools' mattrib; set by mattrib,
 * seen through the API; the read-only bit refuses writers and shows in the mode. */
static void attributes(fat_tv *t, void *arg)
{
    int *ok = arg;
    fat_volume *vol = &t->vol;
    uint32_t a;
    fat_node *n;
    vfs_stat st;
    if (!EXPECT(tv_write_file(vol, "/plain.txt", "p", 1) == VFS_OK) ||
        !EXPECT(tv_write_file(vol, "/marked.txt", "m", 1) == VFS_OK) || !EXPECT(fat_mkdir(vol, P("/dir")) == VFS_OK) ||
        !EXPECT(fat_get_attributes(vol, P("/plain.txt"), &a) == VFS_OK && a == VFS_ATTR_ARCHIVE) ||
        !EXPECT(fat_get_attributes(vol, P("/dir"), &a) == VFS_OK && a == VFS_ATTR_DIRECTORY) ||
        !EXPECT(fat_get_attributes(vol, P("/"), &a) == VFS_OK && a == VFS_ATTR_DIRECTORY))
        return;
    if (!EXPECT(fat_set_attributes(vol, P("/marked.txt"), VFS_ATTR_READ_ONLY | VFS_ATTR_HIDDEN | VFS_ATTR_SYSTEM,
                                   VFS_ATTR_ARCHIVE, &a) == VFS_OK) ||
        !EXPECT(a == (VFS_ATTR_READ_ONLY | VFS_ATTR_HIDDEN | VFS_ATTR_SYSTEM)) ||
        !EXPECT(fat_set_attributes(vol, P("/dir"), VFS_ATTR_HIDDEN, 0, &a) == VFS_OK &&
                a == (VFS_ATTR_DIRECTORY | VFS_ATTR_HIDDEN)))
        return;
    /* read-only: writers refused, the mode without write bits, readers fine */
    if (!EXPECT(fat_open(vol, P("/marked.txt"), VFS_OPEN_WRITE_ONLY, &n) == VFS_ACCESS_DENIED) ||
        !EXPECT(fat_stat(vol, P("/marked.txt"), &st) == VFS_OK && (st.mode & 0222) == 0) ||
        !EXPECT(fat_open(vol, P("/marked.txt"), VFS_OPEN_READ_ONLY, &n) == VFS_OK) || !EXPECT(fat_close(n) == VFS_OK))
        return;
    /* what cannot be changed */
    if (!EXPECT(fat_set_attributes(vol, P("/plain.txt"), VFS_ATTR_DIRECTORY, 0, &a) == VFS_INVALID_ARGUMENT) ||
        !EXPECT(fat_set_attributes(vol, P("/plain.txt"), 0, 0x08, &a) == VFS_INVALID_ARGUMENT) ||
        !EXPECT(fat_set_attributes(vol, P("/"), VFS_ATTR_HIDDEN, 0, &a) == VFS_INVALID_ARGUMENT) ||
        !EXPECT(fat_set_attributes(vol, P("/missing"), VFS_ATTR_HIDDEN, 0, &a) == VFS_NO_FILE) ||
        !EXPECT(fat_get_attributes(vol, P("/missing"), &a) == VFS_NO_FILE))
        return;
    /* made read-only while open for writing: that opener goes on writing, as on vfat */
    size_t done;
    if (!EXPECT(fat_open(vol, P("/late.txt"), VFS_OPEN_WRITE_ONLY | VFS_OPEN_CREATE, &n) == VFS_OK) ||
        !EXPECT(fat_set_attributes(vol, P("/late.txt"), VFS_ATTR_READ_ONLY, 0, &a) == VFS_OK) ||
        !EXPECT(fat_write(n, 0, "late", 4, &done) == VFS_OK && done == 4) || !EXPECT(fat_truncate(n, 2) == VFS_OK) ||
        !EXPECT(fat_close(n) == VFS_OK) ||
        !EXPECT(fat_open(vol, P("/late.txt"), VFS_OPEN_READ_WRITE, &n) == VFS_ACCESS_DENIED) ||
        !EXPECT(fat_stat(vol, P("/late.txt"), &st) == VFS_OK && st.size == 2))
        return;
    /* an open file's change is the node's: seen by every opener */
    if (!EXPECT(fat_open(vol, P("/plain.txt"), VFS_OPEN_READ_ONLY, &n) == VFS_OK) ||
        !EXPECT(fat_set_attributes(vol, P("/plain.txt"), VFS_ATTR_SYSTEM, 0, &a) == VFS_OK) ||
        !EXPECT(fat_get_attributes(vol, P("/PLAIN.TXT"), &a) == VFS_OK && a == (VFS_ATTR_ARCHIVE | VFS_ATTR_SYSTEM)) ||
        !EXPECT(fat_set_attributes(vol, P("/plain.txt"), 0, VFS_ATTR_SYSTEM, &a) == VFS_OK) ||
        !EXPECT(fat_close(n) == VFS_OK))
        return;
    *ok = 1;
}

static void read_mtools_attributes(fat_tv *t, void *arg)
{
    int *ok = arg;
    uint32_t a;
    *ok = EXPECT(fat_get_attributes(&t->vol, P("/BYMT.TXT"), &a) == VFS_OK && a == (VFS_ATTR_HIDDEN | VFS_ATTR_READ_ONLY)) &&
          EXPECT(fat_set_attributes(&t->vol, P("/BYMT.TXT"), 0, VFS_ATTR_HIDDEN, &a) == VFS_READ_ONLY_FS);
}

TEST(attributes_set_read_and_seen_by_mtools)
{
    CHECK(open_fresh("attrib.img", 4000, 12, 4));
    int ok = 0;
    CHECK(fat_tv_call(&tv, attributes, &ok));
    CHECK(ok);
    CHECK(close_and_fsck("attrib.img"));
    const char *img = tmp_path("attrib.img");
    char *out = tool_output("MTOOLS_SKIP_CHECK=1 mattrib -i %s ::/marked.txt ::/plain.txt ::/dir", img);
    CHECK(out && strstr(out, "     SHR     ::/marked.txt") && strstr(out, "  A          ::/plain.txt") &&
          strstr(out, "      H      ::/dir"));
    free(out);
    CHECK_EQ(tool_run(true, "echo x | MTOOLS_SKIP_CHECK=1 mcopy -i %s - ::/BYMT.TXT && MTOOLS_SKIP_CHECK=1 mattrib -i %s "
                            "-a +h +r ::/BYMT.TXT",
                      img, img),
             0);
    fat_tv_options o = fat_tv_defaults();
    o.read_only = true;
    CHECK(fat_tv_open(&tv, img, &o) && tv.mount_status == VFS_OK);
    ok = 0;
    CHECK(fat_tv_call(&tv, read_mtools_attributes, &ok));
    CHECK(ok);
    CHECK_EQ(fat_tv_close(&tv, NULL), VFS_OK);
}

/* ---- stack use ------------------------------------------------------------------------------ */

/* Small frames here, so the high-water mark is the engine's. */
static void lean_ops(fat_tv *t, void *arg)
{
    int *ok = arg;
    fat_volume *vol = &t->vol;
    char data[64] = "stack";
    *ok = fat_mkdir(vol, P("/a long directory name")) == VFS_OK &&
          tv_write_file(vol, "/a long directory name/a long file name.txt", data, sizeof data) == VFS_OK &&
          fat_rename(vol, P("/a long directory name/a long file name.txt"), P("/another long name.txt")) == VFS_OK &&
          fat_rename(vol, P("/a long directory name"), P("/renamed long directory")) == VFS_OK &&
          fat_unlink(vol, P("/another long name.txt")) == VFS_OK &&
          fat_rmdir(vol, P("/renamed long directory")) == VFS_OK;
}

TEST(stack_use_of_operations)
{
    CHECK(open_fresh("stack.img", 4000, 12, 4));
    tv.f.stack.pool.paint_stacks = true;
    int ok = 0;
    CHECK(fat_tv_call(&tv, lean_ops, &ok));
    CHECK(ok);
    size_t used = fp_get_stats(&tv.f.stack.pool)->stack_high_water;
    printf("deepest engine call used %zu bytes of fiber stack (sanitizer build)\n", used);
    CHECK(used > 0 && used < 32u * 1024u);
    CHECK(close_and_fsck("stack.img"));
}

/* ---- freed clusters wait for a flush ----------------------------------------------------------- */

static void no_reuse_before_flush(fat_tv *t, void *arg)
{
    int *ok = arg;
    fat_volume *vol = &t->vol;
    uint8_t data[4096];
    fill_pattern(data, sizeof data, 12);
    fat_node *n;
    if (!EXPECT(tv_write_file(vol, "/old", data, sizeof data) == VFS_OK) ||
        !EXPECT(fat_open(vol, P("/old"), VFS_OPEN_READ_ONLY, &n) == VFS_OK))
        return;
    uint32_t old_first = n->first_cluster;
    fat_close(n);
    if (!EXPECT(fat_unlink(vol, P("/old")) == VFS_OK))
        return;
    /* the old entry's removal is not durable yet: its cluster must not be taken */
    vol->next_free = old_first;
    if (!EXPECT(fat_open(vol, P("/new"), VFS_OPEN_READ_WRITE | VFS_OPEN_CREATE, &n) == VFS_OK))
        return;
    size_t done;
    if (!EXPECT(fat_write(n, 0, data, sizeof data, &done) == VFS_OK && n->first_cluster != old_first))
        return;
    fat_close(n);
    /* after a sync it is free again */
    fat_statfs_info before, after;
    fat_statfs(vol, &before);
    if (!EXPECT(fat_sync(vol) == VFS_OK))
        return;
    fat_statfs(vol, &after);
    if (!EXPECT(vol->deferred_count == 0 && after.free_clusters == before.free_clusters))
        return;
    vol->next_free = old_first;
    if (!EXPECT(fat_open(vol, P("/newer"), VFS_OPEN_READ_WRITE | VFS_OPEN_CREATE, &n) == VFS_OK))
        return;
    if (!EXPECT(fat_write(n, 0, data, sizeof data, &done) == VFS_OK && n->first_cluster == old_first))
        return;
    fat_close(n);
    *ok = 1;
}

TEST(freed_clusters_wait_for_a_flush)
{
    CHECK(open_fresh("reuse.img", 16384, 16, 8));
    int ok = 0;
    CHECK(fat_tv_call(&tv, no_reuse_before_flush, &ok));
    CHECK(ok);
    CHECK(close_and_fsck("reuse.img"));
}

/* ---- growing files claim clusters ahead, and give them back -------------------------------- */

static uint32_t entry_size_on_disk(fat_volume *vol, const fat_node *n)
{
    uint8_t raw[32];
    if (blk_cache_read_bytes(vol->cache, n->dirent_offset, raw, sizeof raw) != BLK_OK)
        return UINT32_MAX;
    return (uint32_t)raw[28] | (uint32_t)raw[29] << 8 | (uint32_t)raw[30] << 16 | (uint32_t)raw[31] << 24;
}

static void claim_ahead(fat_tv *t, void *arg)
{
    int *ok = arg;
    fat_volume *vol = &t->vol;
    static uint8_t chunk[65536];
    fat_node *f[2];
    if (!EXPECT(fat_open(vol, P("/a"), VFS_OPEN_READ_WRITE | VFS_OPEN_CREATE, &f[0]) == VFS_OK) ||
        !EXPECT(fat_open(vol, P("/b"), VFS_OPEN_READ_WRITE | VFS_OPEN_CREATE, &f[1]) == VFS_OK))
        return;
    fat_statfs_info empty;
    fat_statfs(vol, &empty);
    /* Two files growing side by side, their chains interleaved on the volume. */
    for (uint32_t i = 0; i < 80; i++) {
        fill_pattern(chunk, sizeof chunk, i);
        size_t done;
        if (!EXPECT(fat_write(f[i % 2], (uint64_t)(i / 2) * sizeof chunk, chunk, sizeof chunk, &done) ==
                    VFS_OK))
            return;
    }
    uint64_t size = 40u * sizeof chunk;
    uint32_t cs = vol->geo.bytes_per_cluster, need = (uint32_t)(size / cs), have;
    if (!EXPECT(fat_file_chain_length(f[0], &have) == VFS_OK && have > need))
        return;
    fat_statfs_info open_now;
    fat_statfs(vol, &open_now);
    if (!EXPECT(empty.free_clusters - open_now.free_clusters > 2u * need))
        return; /* counted as used while held */
    /* The entry learns the size at fsync, not at every write. */
    if (!EXPECT(entry_size_on_disk(vol, f[0]) == 0) || !EXPECT(fat_fsync(f[0]) == VFS_OK) ||
        !EXPECT(entry_size_on_disk(vol, f[0]) == size))
        return;
    for (int k = 0; k < 2; k++)
        if (!EXPECT(fat_close(f[k]) == VFS_OK))
            return;
    if (!EXPECT(fat_sync(vol) == VFS_OK))
        return;
    fat_statfs_info closed;
    fat_statfs(vol, &closed);
    if (!EXPECT(empty.free_clusters - closed.free_clusters == 2u * need))
        return; /* exactly what the sizes need */
    for (int k = 0; k < 2; k++) {
        fat_node *n;
        if (!EXPECT(fat_open(vol, k ? "/b" : "/a", 2, VFS_OPEN_READ_ONLY, &n) == VFS_OK) ||
            !EXPECT(fat_file_chain_length(n, &have) == VFS_OK && have == need) ||
            !EXPECT(entry_size_on_disk(vol, n) == size))
            return;
        for (uint32_t i = (uint32_t)k; i < 80; i += 2) {
            static uint8_t back[65536];
            size_t done;
            fill_pattern(chunk, sizeof chunk, i);
            if (!EXPECT(fat_read(n, (uint64_t)(i / 2) * sizeof chunk, back, sizeof back, &done) ==
                        VFS_OK) ||
                !EXPECT(done == sizeof back && memcmp(back, chunk, sizeof back) == 0))
                return;
        }
        fat_close(n);
    }
    *ok = 1;
}

TEST(growing_files_claim_ahead_and_give_back_at_close)
{
    CHECK(open_fresh("ahead.img", 98304, 32, 8));
    int ok = 0;
    CHECK(fat_tv_call(&tv, claim_ahead, &ok));
    CHECK(ok);
    CHECK(close_and_fsck("ahead.img"));
}

/* ---- writes straight from the caller's buffer overlap on one file ------------------------ */

#define ZC_WRITERS 8u
#define ZC_PIECE (32u * 1024u)
#define ZC_ROUNDS 4u
#define ZC_FILE (ZC_WRITERS * ZC_PIECE * ZC_ROUNDS)

static fat_node *zc_node;

static void zc_block(uint8_t *p, uint32_t block, uint32_t generation)
{
    fill_pattern(p, 4096, (uint64_t)generation * 1000003u + block);
}

typedef struct zc_job {
    uint32_t id;               /* < ZC_WRITERS: a writer; else the reader */
    int ok;
} zc_job;

static void zc_run(fat_tv *t, void *arg)
{
    zc_job *j = arg;
    if (j->id < ZC_WRITERS) {
        /* The source lies in the device's data region: written with no copy. */
        uint8_t *piece = t->f.data_region + t->f.scratch_offset + (uint64_t)j->id * ZC_PIECE;
        for (uint32_t r = 0; r < ZC_ROUNDS; r++) {
            uint64_t at = ((uint64_t)r * ZC_WRITERS + j->id) * ZC_PIECE;
            for (uint32_t b = 0; b < ZC_PIECE / 4096; b++)
                zc_block(piece + b * 4096, (uint32_t)(at / 4096) + b, 2);
            size_t done;
            if (!EXPECT(fat_write(zc_node, at, piece, ZC_PIECE, &done) == VFS_OK && done == ZC_PIECE))
                return;
        }
        j->ok = 1;
        return;
    }
    /* A reader meanwhile sees each block either as it was or as written, never torn. */
    static uint8_t back[ZC_FILE], old_b[4096], new_b[4096];
    for (int pass = 0; pass < 6; pass++) {
        size_t done;
        if (!EXPECT(fat_read(zc_node, 0, back, sizeof back, &done) == VFS_OK && done == sizeof back))
            return;
        for (uint32_t b = 0; b < ZC_FILE / 4096; b++) {
            zc_block(old_b, b, 1);
            zc_block(new_b, b, 2);
            if (!EXPECT(memcmp(back + b * 4096, old_b, 4096) == 0 || memcmp(back + b * 4096, new_b, 4096) == 0))
                return;
        }
        fp_yield(&t->f.stack.pool);
    }
    j->ok = 1;
}

static void zc_check(fat_tv *t, void *arg)
{
    int *ok = arg;
    static uint8_t back[ZC_FILE], want[4096];
    size_t done;
    if (!EXPECT(fat_read(zc_node, 0, back, sizeof back, &done) == VFS_OK && done == sizeof back))
        return;
    for (uint32_t b = 0; b < ZC_FILE / 4096; b++) {
        zc_block(want, b, 2);
        if (!EXPECT(memcmp(back + b * 4096, want, 4096) == 0))
            return;
    }
    /* A device error on such a write (here into new clusters, which nothing has cached)
     * is the write's own status. */
    ram_device_fail_range(&t->f.dev, 0, t->f.dev.capacity, 1u << BLK_REQ_WRITE);
    uint8_t *piece = t->f.data_region + t->f.scratch_offset;
    vfs_status st = fat_write(zc_node, ZC_FILE, piece, ZC_PIECE, &done);
    ram_device_fail_range(&t->f.dev, 0, 0, 0);
    if (!EXPECT(st == VFS_IO_ERROR))
        return;
    *ok = fat_close(zc_node) == VFS_OK;
}

static void zc_prepare(fat_tv *t, void *arg)
{
    static uint8_t old[ZC_FILE];
    for (uint32_t b = 0; b < ZC_FILE / 4096; b++)
        zc_block(old + b * 4096, b, 1);
    *(int *)arg = tv_write_file(&t->vol, "/zc", old, sizeof old) == VFS_OK &&
                  fat_open(&t->vol, P("/zc"), VFS_OPEN_READ_WRITE, &zc_node) == VFS_OK;
}

TEST(writes_from_the_data_region_overlap_and_readers_never_see_them_torn)
{
    const char *img = tmp_path("zc.img");
    CHECK(make_image(img, 16384, 16, 512, 8));
    fat_tv_options o = fat_tv_defaults();
    o.random_order = true;
    CHECK(fat_tv_open(&tv, img, &o));
    CHECK_EQ(tv.mount_status, VFS_OK);
    CHECK(tv.f.scratch_blocks * 4096u >= ZC_WRITERS * ZC_PIECE);
    int ok = 0;
    CHECK(fat_tv_call(&tv, zc_prepare, &ok));
    CHECK(ok);
    static zc_job jobs[ZC_WRITERS + 1];
    for (uint32_t i = 0; i <= ZC_WRITERS; i++)
        jobs[i] = (zc_job){.id = i};
    CHECK(fat_tv_call_many(&tv, zc_run, jobs, sizeof jobs[0], ZC_WRITERS + 1));
    for (uint32_t i = 0; i <= ZC_WRITERS; i++)
        CHECK(jobs[i].ok);
    ok = 0;
    CHECK(fat_tv_call(&tv, zc_check, &ok));
    CHECK(ok);
    CHECK(close_and_fsck("zc.img"));
}

/* ---- partial writes into clusters just claimed read nothing first --------------------------- */

static void fresh_writes(fat_tv *t, void *arg)
{
    int *ok = arg;
    fat_volume *vol = &t->vol;
    fat_node *n;
    if (!EXPECT(fat_open(vol, P("/small"), VFS_OPEN_READ_WRITE | VFS_OPEN_CREATE, &n) == VFS_OK))
        return;
    static uint8_t data[9000], back[9000];
    fill_pattern(data, sizeof data, 77);
    const blk_cache_stats *s = blk_cache_get_stats(vol->cache);
    uint64_t reads = s->device_reads;
    size_t done;
    /* 100 bytes, then the rest: each lands in clusters claimed for it. */
    if (!EXPECT(fat_write(n, 0, data, 100, &done) == VFS_OK) ||
        !EXPECT(fat_write(n, 100, data + 100, sizeof data - 100, &done) == VFS_OK))
        return;
    bool aligned = fat_cluster_offset(&vol->geo, n->first_cluster) % BLK_TRANSFER_SIZE == 0;
    if (aligned && !EXPECT(s->device_reads == reads))
        return;
    if (!EXPECT(fat_read(n, 0, back, sizeof back, &done) == VFS_OK && done == sizeof back) ||
        !EXPECT(memcmp(back, data, sizeof data) == 0))
        return;
    /* A write past the end leaves zeros in the gap, also in such clusters. */
    static uint8_t gap[20000];
    if (!EXPECT(fat_write(n, 15000, data, 10, &done) == VFS_OK) ||
        !EXPECT(fat_read(n, 9000, gap, 6010, &done) == VFS_OK && done == 6010))
        return;
    for (uint32_t i = 0; i < 6000; i++)
        if (!EXPECT(gap[i] == 0))
            return;
    *ok = EXPECT(memcmp(gap + 6000, data, 10) == 0) && fat_close(n) == VFS_OK;
}

TEST(partial_writes_into_new_clusters_read_nothing)
{
    CHECK(open_fresh("fresh.img", 65536, 32, 8));
    int ok = 0;
    CHECK(fat_tv_call(&tv, fresh_writes, &ok));
    CHECK(ok);
    CHECK(close_and_fsck("fresh.img"));
}

/* ---- closed files' entries are written in batches ---------------------------------------- */

static void batch_closes(fat_tv *t, void *arg)
{
    int *ok = arg;
    fat_volume *vol = &t->vol;
    uint8_t data[3000];
    const blk_cache_stats *s = blk_cache_get_stats(vol->cache);
    if (!EXPECT(fat_sync(vol) == VFS_OK))
        return;
    uint64_t flushes = s->flushes;
    for (uint32_t i = 0; i < 100; i++) {
        char name[32];
        snprintf(name, sizeof name, "/f%u", i);
        fill_pattern(data, sizeof data, i);
        if (!EXPECT(tv_write_file(vol, name, data, 1000 + i) == VFS_OK))
            return;
    }
    /* One is removed while its entry still waits: nothing of it may stay. */
    if (!EXPECT(fat_unlink(vol, P("/f99")) == VFS_OK) || !EXPECT(fat_sync(vol) == VFS_OK))
        return;
    /* A FLUSH per batch of closes (and the sync's own), not one or two per file. */
    if (!EXPECT(s->flushes - flushes < 20))
        return;
    for (uint32_t i = 0; i < 99; i++) {
        char name[32];
        snprintf(name, sizeof name, "/f%u", i);
        vfs_stat st;
        uint8_t *back;
        size_t len;
        fill_pattern(data, sizeof data, i);
        if (!EXPECT(tv_path_stat(vol, name, &st) == VFS_OK && st.size == 1000 + i) ||
            !EXPECT(tv_read_file(vol, name, &back, &len) == VFS_OK && len == 1000 + i &&
                    memcmp(back, data, len) == 0))
            return;
        free(back);
    }
    vfs_stat st;
    *ok = EXPECT(tv_path_stat(vol, "/f99", &st) == VFS_NO_FILE);
}

TEST(closed_files_entries_are_written_in_batches)
{
    CHECK(open_fresh("batch.img", 16384, 16, 4));
    int ok = 0;
    CHECK(fat_tv_call(&tv, batch_closes, &ok));
    CHECK(ok);
    CHECK(close_and_fsck("batch.img"));
}

/* ---- times set on a file being copied wait for its entry's commit ------------------------- */

/* What a copy tool does per file: create, write, set the source's times, close. The times
 * used to be written into the entry at once, with an order point before it (the entry took
 * the new size too): one epoch, so one FLUSH, per file instead of one per batch of closes. */
static void copy_like_writes(fat_tv *t, void *arg)
{
    int *ok = arg;
    fat_volume *vol = &t->vol;
    uint8_t data[3000];
    const blk_cache_stats *s = blk_cache_get_stats(vol->cache);
    if (!EXPECT(fat_sync(vol) == VFS_OK))
        return;
    uint64_t flushes = s->flushes;
    for (uint32_t i = 0; i < 100; i++) {
        char name[32];
        snprintf(name, sizeof name, "/c%u", i);
        fill_pattern(data, sizeof data, i);
        fat_node *n;
        size_t done = 0;
        if (!EXPECT(fat_open(vol, name, strlen(name), VFS_OPEN_READ_WRITE | VFS_OPEN_CREATE, &n) == VFS_OK))
            return;
        vfs_status w = fat_write(n, 0, data, 1000 + i, &done);
        vfs_status m = fat_set_times(vol, name, strlen(name), -1, 1500000000 + 2 * (int64_t)i);
        vfs_status c = fat_close(n);
        if (!EXPECT(w == VFS_OK && done == 1000 + i) || !EXPECT(m == VFS_OK) || !EXPECT(c == VFS_OK))
            return;
    }
    if (!EXPECT(fat_sync(vol) == VFS_OK))
        return;
    uint64_t used = s->flushes - flushes;
    if (used >= 20) {
        test_fail(__FILE__, __LINE__, "100 files copied with their times: %llu FLUSHes", (unsigned long long)used);
        return;
    }
    if (!EXPECT(fat_unmount(vol) == VFS_OK) || !EXPECT(fat_mount(vol, &t->f.stack.cache, &t->cfg, NULL) == VFS_OK))
        return;
    for (uint32_t i = 0; i < 100; i++) {
        char name[32];
        snprintf(name, sizeof name, "/c%u", i);
        vfs_stat st;
        if (!EXPECT(tv_path_stat(vol, name, &st) == VFS_OK) || !EXPECT(st.size == 1000 + i) ||
            !EXPECT(st.mtime == 1500000000u + 2u * i))
            return;
    }
    *ok = 1;
}

TEST(times_set_while_copying_are_committed_with_the_entries)
{
    CHECK(open_fresh("copytimes.img", 16384, 16, 4));
    int ok = 0;
    CHECK(fat_tv_call(&tv, copy_like_writes, &ok));
    CHECK(ok);
    CHECK(close_and_fsck("copytimes.img"));
}

/* ---- removals running at once release their chains in full batches ------------------------ */

#define REMOVE_FILES 320u
#define REMOVERS 8u

static void make_small_files(fat_tv *t, void *arg)
{
    int *ok = arg;
    fat_volume *vol = &t->vol;
    if (!EXPECT(fat_mkdir(vol, P("/one")) == VFS_OK) || !EXPECT(fat_mkdir(vol, P("/many")) == VFS_OK))
        return;
    for (uint32_t i = 0; i < 2 * REMOVE_FILES; i++) {
        char path[32];
        snprintf(path, sizeof path, "/%s/f%03u", i < REMOVE_FILES ? "one" : "many", i % REMOVE_FILES);
        if (!EXPECT(tv_write_file(vol, path, "x", 1) == VFS_OK))
            return;
    }
    *ok = EXPECT(fat_sync(vol) == VFS_OK);
}

typedef struct remover {
    const char *dir;
    uint32_t first, step;
    int ok;
} remover;

static void remove_files(fat_tv *t, void *arg)
{
    remover *r = arg;
    for (uint32_t i = r->first; i < REMOVE_FILES; i += r->step) {
        char path[32];
        snprintf(path, sizeof path, "/%s/f%03u", r->dir, i);
        if (!EXPECT(fat_unlink(&t->vol, P(path)) == VFS_OK))
            return;
    }
    r->ok = 1;
}

/* Each chain is freed after a flush that follows its entry's removal; a full queue of
 * waiting chains is released in one flush. Removers that queued behind the one releasing
 * it used to flush again each, for the few chains queued meanwhile: eight at once sent
 * about three times the FLUSHes of one. */
TEST(concurrent_removes_release_chains_in_full_batches)
{
    CHECK(open_fresh("removes.img", 16384, 16, 4));
    int made = 0;
    CHECK(fat_tv_call(&tv, make_small_files, &made));
    CHECK(made);
    const blk_cache_stats *s = blk_cache_get_stats(tv.vol.cache);
    uint64_t before = s->flushes;
    remover alone = {"one", 0, 1, 0};
    CHECK(fat_tv_call(&tv, remove_files, &alone));
    CHECK(alone.ok);
    uint64_t flushes_alone = s->flushes - before;
    before = s->flushes;
    remover together[REMOVERS];
    for (uint32_t i = 0; i < REMOVERS; i++)
        together[i] = (remover){"many", i, REMOVERS, 0};
    CHECK(fat_tv_call_many(&tv, remove_files, together, sizeof together[0], REMOVERS));
    for (uint32_t i = 0; i < REMOVERS; i++)
        CHECK(together[i].ok);
    uint64_t flushes_together = s->flushes - before;
    CHECK_MSG(flushes_together <= flushes_alone + 1, "%u removers: %llu FLUSHes, one: %llu", REMOVERS,
              (unsigned long long)flushes_together, (unsigned long long)flushes_alone);
    CHECK(close_and_fsck("removes.img"));
}
