/* Interop matrix: trees written by mcopy into mkfs.fat images read back byte-identically
 * by the engine, and trees written by the engine read back byte-identically by mcopy,
 * with fsck.fat -n clean, for FAT12/16/32, several cluster sizes, 512- and 4096-byte
 * sectors; and volumes made by asyncfat's mkfs, written by the engine, read by mtools. */
#include "fat/fat_mkfs.h"
#include "fat/tests/fat_engine_test.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct layout {
    int fat;
    uint32_t sector, spc, kib;
} layout;

static const layout layouts[] = {
    { 12, 512, 1, 2000 },   { 12, 4096, 1, 8192 },   { 16, 512, 4, 32768 },
    { 16, 4096, 1, 32768 }, { 16, 512, 32, 131072 }, { 32, 512, 1, 40960 },
    { 32, 512, 2, 81920 },  { 32, 512, 8, 65536 },   { 32, 4096, 1, 65536 },
};

static void put_file(const char *dir, const char *name, size_t len, uint64_t seed)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    uint8_t *buf = malloc(len + 1);
    fill_pattern(buf, len, seed);
    file_write_all(path, buf, len);
    free(buf);
}

/* A host tree exercising sizes around cluster boundaries, long, Unicode and colliding
 * names, nested and multi-cluster directories. */
static void make_tree(const char *root, uint32_t cluster)
{
    char p[1024];
    mkdir(root, 0755);
    put_file(root, "empty.txt", 0, 1);
    put_file(root, "small.txt", 13, 2);
    put_file(root, "one-cluster.bin", cluster, 3);
    put_file(root, "cluster-plus-one.bin", cluster + 1, 4);
    put_file(root, "large.bin", 300000, 5);
    put_file(root, "A very long file name with spaces and dots.tar.gz", 777, 6);
    put_file(root, "\xc3\x9c" "bergr\xc3\xb6\xc3\x9f" "entr\xc3\xa4ger-\xe6\x97\xa5\xe6\x9c\xac.txt", 55, 7);
    put_file(root, "MixedCase.Txt", 5, 8);
    put_file(root, "lower.txt", 6, 9);
    put_file(root, "UPPER.TXT", 7, 10);
    snprintf(p, sizeof p, "%s/sub", root);
    mkdir(p, 0755);
    for (int i = 0; i < 8; i++) {
        char name[64];
        snprintf(name, sizeof name, "longfilename%d.txt", i);
        put_file(p, name, 100 + i, 20 + i);
    }
    snprintf(p, sizeof p, "%s/sub/deeper", root);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/sub/deeper/more", root);
    mkdir(p, 0755);
    put_file(p, "leaf.dat", 4097, 30);
    snprintf(p, sizeof p, "%s/many", root);
    mkdir(p, 0755);
    for (int i = 0; i < 150; i++) {
        char name[64];
        snprintf(name, sizeof name, "file number %03d.log", i);
        put_file(p, name, (size_t)i * 37, 100 + i);
    }
}

/* ---- engine reads a host tree's copy ------------------------------------------------------ */

typedef struct compare_ctx {
    const char *host_root;
    int ok;
} compare_ctx;

static bool compare_dir(fat_volume *vol, const char *host, const char *path)
{
    /* every host entry is there with the same contents */
    DIR *d = opendir(host);
    if (!EXPECT(d != NULL))
        return false;
    struct dirent *e;
    int host_count = 0;
    bool ok = true;
    while (ok && (e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        host_count++;
        char hp[2048], fp[2048];
        snprintf(hp, sizeof hp, "%s/%s", host, e->d_name);
        snprintf(fp, sizeof fp, "%s/%s", path, e->d_name);
        struct stat hs;
        stat(hp, &hs);
        vfs_stat fs;
        vfs_status st = tv_path_stat(vol, fp, &fs);
        if (!EXPECT(st == VFS_OK)) {
            printf("stat %s: %d\n", fp, st);
            ok = false;
            break;
        }
        if (S_ISDIR(hs.st_mode)) {
            ok = EXPECT((fs.mode & VFS_MODE_TYPE_MASK) == VFS_MODE_DIRECTORY) && compare_dir(vol, hp, fp);
        } else {
            size_t hl, fl;
            uint8_t *hb = file_read_all(hp, &hl), *fb = NULL;
            st = tv_read_file(vol, fp, &fb, &fl);
            ok = EXPECT(st == VFS_OK) && EXPECT(hl == fl) && EXPECT(hl == 0 || memcmp(hb, fb, hl) == 0);
            if (!ok)
                printf("file %s differs\n", fp);
            free(hb);
            free(fb);
        }
    }
    closedir(d);
    if (!ok)
        return false;
    /* and nothing else: readdir gives exactly as many names, each found on the host */
    fat_node *dn;
    if (!EXPECT(fat_opendir(vol, path, strlen(path), &dn) == VFS_OK))
        return false;
    uint64_t pos = 0;
    char name[FAT_READDIR_NAME_MAX + 1];
    size_t nl;
    int count = 0;
    while (ok && fat_readdir(dn, &pos, name, &nl, NULL) == VFS_OK) {
        name[nl] = 0;
        char hp[2048];
        snprintf(hp, sizeof hp, "%s/%s", host, name);
        struct stat hs;
        ok = EXPECT(stat(hp, &hs) == 0);
        if (!ok)
            printf("extra name %s/%s\n", path, name);
        count++;
    }
    fat_close(dn);
    return ok && EXPECT(count == host_count);
}

static void compare_fn(fat_tv *t, void *arg)
{
    compare_ctx *c = arg;
    c->ok = compare_dir(&t->vol, c->host_root, "");
}

/* ---- engine writes a host tree ------------------------------------------------------------ */

static bool write_dir(fat_volume *vol, const char *host, const char *path)
{
    DIR *d = opendir(host);
    if (!EXPECT(d != NULL))
        return false;
    struct dirent *e;
    bool ok = true;
    while (ok && (e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char hp[2048], fp[2048];
        snprintf(hp, sizeof hp, "%s/%s", host, e->d_name);
        snprintf(fp, sizeof fp, "%s/%s", path, e->d_name);
        struct stat hs;
        stat(hp, &hs);
        if (S_ISDIR(hs.st_mode)) {
            ok = EXPECT(fat_mkdir(vol, fp, strlen(fp)) == VFS_OK) && write_dir(vol, hp, fp);
        } else {
            size_t hl;
            uint8_t *hb = file_read_all(hp, &hl);
            ok = EXPECT(tv_write_file(vol, fp, hb, hl) == VFS_OK);
            free(hb);
        }
    }
    closedir(d);
    return ok;
}

static void write_fn(fat_tv *t, void *arg)
{
    compare_ctx *c = arg;
    c->ok = write_dir(&t->vol, c->host_root, "");
}

static void run_layout(const layout *l, int index)
{
    char name[64], img[512], src[512], out[512];
    snprintf(name, sizeof name, "src%d", index);
    snprintf(src, sizeof src, "%s", tmp_path(name));
    make_tree(src, l->sector * l->spc);
    fat_tv_options o = fat_tv_defaults();
    o.sector_size = (uint16_t)l->sector;

    /* mcopy in, engine reads */
    snprintf(name, sizeof name, "in%d.img", index);
    snprintf(img, sizeof img, "%s", tmp_path(name));
    CHECK(make_image(img, l->kib, l->fat, l->sector, l->spc));
    CHECK(tool_run(false, "LANG=C.UTF-8 mcopy -s -i %s %s/* ::/", img, src) == 0);
    fat_tv tv;
    CHECK(fat_tv_open(&tv, img, &o));
    CHECK_EQ(tv.mount_status, VFS_OK);
    CHECK_EQ(tv.vol.geo.type, l->fat);
    compare_ctx c = { src, 0 };
    CHECK(fat_tv_call(&tv, compare_fn, &c));
    CHECK(c.ok);
    CHECK_EQ(fat_tv_close(&tv, img), VFS_OK);
    CHECK(tool_fsck(img) == 0);

    /* engine writes, mcopy reads */
    snprintf(name, sizeof name, "out%d.img", index);
    snprintf(img, sizeof img, "%s", tmp_path(name));
    CHECK(make_image(img, l->kib, l->fat, l->sector, l->spc));
    CHECK(fat_tv_open(&tv, img, &o));
    CHECK_EQ(tv.mount_status, VFS_OK);
    c.ok = 0;
    CHECK(fat_tv_call(&tv, write_fn, &c));
    CHECK(c.ok);
    CHECK_EQ(fat_tv_close(&tv, img), VFS_OK);
    CHECK(tool_fsck(img) == 0);
    snprintf(name, sizeof name, "out%d", index);
    snprintf(out, sizeof out, "%s", tmp_path(name));
    mkdir(out, 0755);
    CHECK(tool_run(false, "LANG=C.UTF-8 mcopy -s -n -i %s ::/ %s/", img, out) == 0);
    CHECK(tool_run(true, "diff -r %s %s", src, out) == 0);
    /* and the engine reads its own image back after a remount */
    CHECK(fat_tv_open(&tv, img, &o));
    CHECK_EQ(tv.mount_status, VFS_OK);
    c.ok = 0;
    CHECK(fat_tv_call(&tv, compare_fn, &c));
    CHECK(c.ok);
    CHECK_EQ(fat_tv_close(&tv, NULL), VFS_OK);
    tool_run(false, "rm -rf %s %s %s %s", src, out, img, tmp_path("in*.img"));
}

TEST(fat12_512_spc1) { run_layout(&layouts[0], 0); }
TEST(fat12_4096_spc1) { run_layout(&layouts[1], 1); }
TEST(fat16_512_spc4) { run_layout(&layouts[2], 2); }
TEST(fat16_4096_spc1) { run_layout(&layouts[3], 3); }
TEST(fat16_512_spc32) { run_layout(&layouts[4], 4); }
TEST(fat32_512_spc1) { run_layout(&layouts[5], 5); }
TEST(fat32_512_spc2) { run_layout(&layouts[6], 6); }

/* ---- volumes made by asyncfat's own mkfs ------------------------------------------------- */


typedef struct mkfs_ctx {
    uint32_t fat, sector, spc;
    const char *src;
    vfs_status st;
    int ok;
} mkfs_ctx;

static void mkfs_fn(fat_tv *t, void *arg)
{
    mkfs_ctx *c = arg;
    fat_mkfs_options opt;
    memset(&opt, 0, sizeof opt);
    opt.fat_type = c->fat;
    opt.bytes_per_sector = c->sector;
    opt.sectors_per_cluster = c->spc;
    opt.volume_id = 0x1234;
    opt.label = "ASYNCFAT";
    c->st = fat_mkfs_format(&t->f.stack.cache, t->f.image_bytes, &opt, NULL);
}

static void mkfs_then_write(uint32_t fat, uint32_t sector, uint32_t spc, uint64_t bytes, int index)
{
    char name[64], img[512], src[512], out[512];
    snprintf(name, sizeof name, "mk%d.img", index);
    snprintf(img, sizeof img, "%s", tmp_path(name));
    /* a zeroed image file of the right size, formatted through the engine's fixture */
    FILE *f = fopen(img, "wb");
    CHECK(f != NULL);
    CHECK(ftruncate(fileno(f), (off_t)bytes) == 0);
    fclose(f);
    fat_tv_options o = fat_tv_defaults();
    o.sector_size = (uint16_t)sector;
    fat_tv tv;
    CHECK(fat_tv_open(&tv, img, &o)); /* the mount fails: nothing there yet */
    CHECK(tv.mount_status != VFS_OK);
    mkfs_ctx c = { fat, sector, spc, NULL, VFS_ERROR, 0 };
    CHECK(fat_tv_call(&tv, mkfs_fn, &c));
    CHECK_EQ(c.st, VFS_OK);
    CHECK_EQ(fat_tv_close(&tv, img), VFS_OK);
    CHECK(tool_fsck(img) == 0);

    snprintf(name, sizeof name, "mksrc%d", index);
    snprintf(src, sizeof src, "%s", tmp_path(name));
    make_tree(src, sector * spc);
    CHECK(fat_tv_open(&tv, img, &o));
    CHECK_EQ(tv.mount_status, VFS_OK);
    CHECK_EQ(tv.vol.geo.type, (int)fat);
    compare_ctx cc = { src, 0 };
    CHECK(fat_tv_call(&tv, write_fn, &cc));
    CHECK(cc.ok);
    CHECK_EQ(fat_tv_close(&tv, img), VFS_OK);
    CHECK(tool_fsck(img) == 0);
    snprintf(name, sizeof name, "mkout%d", index);
    snprintf(out, sizeof out, "%s", tmp_path(name));
    mkdir(out, 0755);
    CHECK(tool_run(false, "LANG=C.UTF-8 mcopy -s -n -i %s ::/ %s/", img, out) == 0);
    CHECK(tool_run(true, "diff -r %s %s", src, out) == 0);
    tool_run(false, "rm -rf %s %s %s", src, out, img);
}

TEST(asyncfat_mkfs_fat12) { mkfs_then_write(12, 512, 4, 8u << 20, 0); }
TEST(asyncfat_mkfs_fat16_4096) { mkfs_then_write(16, 4096, 1, 48u << 20, 1); }
TEST(asyncfat_mkfs_fat32) { mkfs_then_write(32, 512, 1, 48u << 20, 2); }

/* ---- a volume inside an MBR partition ------------------------------------------------------- */

typedef struct part_ctx {
    int ok;
} part_ctx;

static void part_fn(fat_tv *t, void *arg)
{
    part_ctx *c = arg;
    uint8_t *data;
    size_t len;
    c->ok = EXPECT(tv_read_file(&t->vol, "/HI.TXT", &data, &len) == VFS_OK) && EXPECT(len == 3) &&
            EXPECT(memcmp(data, "hi\n", 3) == 0);
    free(data);
    c->ok = c->ok && EXPECT(tv_write_file(&t->vol, "/written in a partition.txt", "part", 4) == VFS_OK);
}

static void mount_partition(fat_tv *tv, void *arg)
{
    fat_unmount(&tv->vol);
    tv->cfg.partition = *(int *)arg;
    tv->mount_status = fat_mount(&tv->vol, &tv->f.stack.cache, &tv->cfg, NULL);
}

TEST(mbr_partition)
{
    const char *img = tmp_path("part.img");
    /* FAT16 at 1 MiB, described by MBR entry 1 (the second) */
    CHECK(tool_run(false, "rm -f %s && truncate -s 20M %s && mkfs.fat --offset 2048 -F 16 %s 18000", img, img, img) == 0);
    uint8_t mbr[512];
    FILE *f = fopen(img, "r+b");
    CHECK(f && fread(mbr, 1, 512, f) == 512);
    memset(mbr + 446, 0, 64);
    mbr[446 + 16 + 4] = 0x06;
    af_store_le32(mbr + 446 + 16 + 8, 2048);
    af_store_le32(mbr + 446 + 16 + 12, 36000);
    mbr[510] = 0x55;
    mbr[511] = 0xAA;
    fseek(f, 0, SEEK_SET);
    fwrite(mbr, 1, 512, f);
    fclose(f);
    file_write_all(tmp_path("hi.txt"), "hi\n", 3);
    CHECK(tool_run(false, "mcopy -i %s@@1M %s ::/HI.TXT", img, tmp_path("hi.txt")) == 0);
    int which[] = { -1, 1, 0 };
    for (int i = 0; i < 3; i++) {
        fat_tv tv;
        fat_tv_options o = fat_tv_defaults();
        CHECK(fat_tv_open(&tv, img, &o)); /* mounts automatically (partition -1) */
        if (which[i] != -1)
            CHECK(fat_tv_call(&tv, mount_partition, &which[i]));
        if (which[i] == 0) { /* an empty entry */
            CHECK(tv.mount_status != VFS_OK);
            fat_tv_close(&tv, NULL);
            continue;
        }
        CHECK_EQ(tv.mount_status, VFS_OK);
        CHECK_EQ(tv.vol.geo.volume_offset, 1u << 20);
        part_ctx c = { 0 };
        if (i == 0)
            CHECK(fat_tv_call(&tv, part_fn, &c) && c.ok);
        CHECK_EQ(fat_tv_close(&tv, img), VFS_OK);
    }
    char *dir = tool_output("MTOOLS_SKIP_CHECK=1 mdir -b -i %s@@1M ::/", img);
    CHECK(dir && strstr(dir, "written in a partition.txt"));
    free(dir);
    CHECK(tool_run(false, "dd if=%s of=%s bs=1M skip=1 2>/dev/null", img, tmp_path("part-only.img")) == 0);
    CHECK(tool_fsck(tmp_path("part-only.img")) == 0);
}
