/* Role workload: the protocol's everyday commands, with many requests in flight.
 *
 * In the client's own directory: 40 files from 0 bytes to 3 MiB written, synced, read back
 * and compared by 40 fibers at once; long, Unicode and mixed-case names; nested
 * directories; readdir of 100 entries with tell, seek and rewind; stat; rename across
 * directories (files and a directory, and onto an existing file); truncate down and up;
 * remove and rmdir. Every file left behind is listed for the Linux check.
 */
#include "sel4/clients/files.h"

#define PARALLEL_FILES 40u
#define MANY_ENTRIES 100u

static const uint64_t sizes[] = {0, 1, 511, 512, 4095, 4096, 4097, 12345, 65536, 65539, 262144, 1048576, 1048577,
                                 3 * 1048576 + 5};

static char base[64];

static void path_in(char *out, size_t size, const char *name) { tc_join(out, size, base, "/", name); }

static uint64_t seed_for(uint64_t salt) { return test_config.seed * 1000003u + salt; }

static void one_file(uint32_t i, void *unused)
{
    char name[32], path[96], check[48];
    uint64_t size = sizes[i % AF_ARRAY_LEN(sizes)];
    sddf_snprintf(name, sizeof(name), "f%02u_%lu.bin", (unsigned)i, (unsigned long)size);
    path_in(path, sizeof(path), name);
    sddf_snprintf(check, sizeof(check), "parallel_file_%02u_%lu_bytes", (unsigned)i, (unsigned long)size);
    tc_file_round_trip(check, path, size, seed_for(i), i % 3 == 0);
}

static void parallel_files(void)
{
    tc_parallel(PARALLEL_FILES, PARALLEL_FILES, one_file, NULL);
    tc_expect(tc_most_in_flight() >= 32, "requests_in_flight_at_least_32", "at most %u at once",
              (unsigned)tc_most_in_flight());
}

/* Names: the longest a component may be, Unicode, mixed case, many dots. */
static const char *const names[] = {
    "Mixed Case Name.TXT",
    "a.b.c.d.e",
    "Gr\xc3\xbc\xc3\x9f" "e \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xe2\x80\x93 ok.txt",
    "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 file",
};

static void long_name(char *out)
{
    size_t n = 0;
    out[n++] = 'L';
    for (; n < 251; n++)
        out[n] = (char)('a' + n % 26);
    af_memcpy(out + n, ".txt", 5);
}

static bool listed_once(const char *want, char listed[][256], uint32_t count)
{
    uint32_t seen = 0;
    for (uint32_t i = 0; i < count; i++)
        if (af_memcmp(listed[i], want, tc_strlen(want) + 1) == 0)
            seen++;
    return seen == 1;
}

static void names_and_case(void)
{
    char dir[96], path[400], longest[256];
    path_in(dir, sizeof(dir), "names");
    tc_expect(tc_mkdir(dir) == FS_STATUS_SUCCESS, "mkdir_names", "%s", dir);
    long_name(longest);
    const char *all[AF_ARRAY_LEN(names) + 1];
    for (uint32_t i = 0; i < AF_ARRAY_LEN(names); i++)
        all[i] = names[i];
    all[AF_ARRAY_LEN(names)] = longest;
    for (uint32_t i = 0; i < AF_ARRAY_LEN(all); i++) {
        tc_join(path, sizeof(path), dir, "/", all[i]);
        char check[48];
        sddf_snprintf(check, sizeof(check), "name_%u_%u_bytes", (unsigned)i, (unsigned)tc_strlen(all[i]));
        tc_file_round_trip(check, path, 1000 + i, seed_for(100 + i), false);
    }
    /* readdir gives each name back exactly as it was written */
    static char listed[8][256];
    uint32_t count = 0;
    uint64_t fd;
    uint64_t st = tc_opendir(dir, &fd);
    while (st == FS_STATUS_SUCCESS && count < 8 && (st = tc_readdir(fd, listed[count], 256)) == FS_STATUS_SUCCESS)
        count++;
    tc_closedir(fd);
    bool all_there = count == AF_ARRAY_LEN(all);
    for (uint32_t i = 0; i < AF_ARRAY_LEN(all); i++)
        all_there = all_there && listed_once(all[i], listed, count);
    tc_expect(all_there && st == FS_STATUS_END_OF_DIRECTORY, "readdir_names_exact", "%u entries, last status %s",
              (unsigned)count, tc_status_name(st));
    /* FAT names are case-insensitive and case-preserving */
    tc_join(path, sizeof(path), dir, "/MIXED case name.txt", NULL);
    fs_stat s;
    st = tc_stat(path, &s);
    tc_expect(st == FS_STATUS_SUCCESS && s.size == 1000, "case_insensitive_lookup", "%s", tc_status_name(st));
    tc_join(path, sizeof(path), dir, "/", "mixed case name.txt");
    uint64_t fd2, size2 = 0;
    if (tc_extensions()) {
        st = tc_open(path, FS_OPEN_FLAGS_READ_WRITE | FS_OPEN_FLAGS_CREATE | FS_OPEN_FLAGS_EXCLUSIVE, &fd2);
        tc_expect(st == FS_STATUS_ALREADY_EXISTS, "case_insensitive_exclusive_create", "%s", tc_status_name(st));
    } else {
        /* LionsOS's CREATE opens the file that is there under any case */
        st = tc_open(path, FS_OPEN_FLAGS_READ_WRITE | FS_OPEN_FLAGS_CREATE, &fd2);
        uint64_t sz = st == FS_STATUS_SUCCESS ? tc_size(fd2, &size2) : st;
        tc_expect(sz == FS_STATUS_SUCCESS && size2 == 1000, "case_insensitive_create_opens_it", "%s, size %lu",
                  tc_status_name(sz), (unsigned long)size2);
    }
    if (st == FS_STATUS_SUCCESS)
        tc_close(fd2);
}

static void nested_dirs(void)
{
    char path[160];
    const char *levels[] = {"/deep", "/deep/er", "/deep/er/and", "/deep/er/and/deeper"};
    bool ok = true;
    for (uint32_t i = 0; i < AF_ARRAY_LEN(levels); i++) {
        tc_join(path, sizeof(path), base, levels[i], NULL);
        ok = ok && tc_mkdir(path) == FS_STATUS_SUCCESS;
    }
    tc_expect(ok, "mkdir_nested", "%s", path);
    tc_join(path, sizeof(path), base, "/deep/er/and/deeper/leaf.bin", NULL);
    tc_file_round_trip("file_in_nested_dir", path, 5000, seed_for(200), true);
    fs_stat s;
    tc_join(path, sizeof(path), base, "/deep/er", NULL);
    uint64_t st = tc_stat(path, &s);
    tc_expect(st == FS_STATUS_SUCCESS && (s.mode & FS_MODE_TYPE_MASK) == FS_MODE_DIRECTORY, "stat_directory_mode",
              "%s mode %lo", tc_status_name(st), (unsigned long)s.mode);
    tc_join(path, sizeof(path), base, "/deep/er/and/deeper/leaf.bin/below", NULL);
    st = tc_mkdir(path);
    tc_expect(st == FS_STATUS_NOT_DIRECTORY || st == FS_STATUS_INVALID_PATH || st == FS_STATUS_NO_FILE,
              "mkdir_below_a_file_refused", "%s", tc_status_name(st));
}

static void create_entry(uint32_t i, void *dir)
{
    char path[128], name[16];
    sddf_snprintf(name, sizeof(name), "m%03u", (unsigned)i);
    tc_join(path, sizeof(path), dir, "/", name);
    uint64_t fd;
    if (tc_open(path, FS_OPEN_FLAGS_WRITE_ONLY | FS_OPEN_FLAGS_CREATE, &fd) == FS_STATUS_SUCCESS)
        tc_close(fd);
}

static uint32_t read_names(uint64_t fd, char out[][16], uint32_t max, uint64_t *last)
{
    char name[256];
    uint32_t n = 0;
    while (n < max && (*last = tc_readdir(fd, name, sizeof(name))) == FS_STATUS_SUCCESS) {
        af_memcpy(out[n], name, 15);
        out[n][15] = 0;
        n++;
    }
    return n;
}

static void readdir_seek_tell(void)
{
    char dir[96];
    path_in(dir, sizeof(dir), "many");
    tc_mkdir(dir);
    tc_parallel(MANY_ENTRIES, 32, create_entry, dir);
    static char all[MANY_ENTRIES + 4][16];
    uint64_t fd, last = FS_STATUS_ERROR;
    uint64_t st = tc_opendir(dir, &fd);
    uint32_t count = st == FS_STATUS_SUCCESS ? read_names(fd, all, MANY_ENTRIES + 4, &last) : 0;
    bool each_once = count == MANY_ENTRIES && last == FS_STATUS_END_OF_DIRECTORY;
    for (uint32_t i = 0; each_once && i < MANY_ENTRIES; i++) {
        char want[16];
        sddf_snprintf(want, sizeof(want), "m%03u", (unsigned)i);
        uint32_t seen = 0;
        for (uint32_t k = 0; k < count; k++)
            seen += af_memcmp(all[k], want, 5) == 0;
        each_once = seen == 1;
    }
    tc_expect(each_once, "readdir_100_entries_each_once", "%u entries (%s)", (unsigned)count,
              tc_status_name(last));

    /* tell after 40 entries, read 10, seek back, read the same 10 */
    tc_rewinddir(fd);
    static char skip[40][16], first[10][16], again[10][16];
    uint64_t loc = 0;
    read_names(fd, skip, 40, &last);
    uint64_t tst = tc_telldir(fd, &loc);
    uint32_t a = read_names(fd, first, 10, &last);
    uint64_t sst = tc_seekdir(fd, (int64_t)loc);
    uint32_t b = read_names(fd, again, 10, &last);
    bool same = tst == FS_STATUS_SUCCESS && sst == FS_STATUS_SUCCESS && a == 10 && b == 10;
    for (uint32_t i = 0; same && i < 10; i++)
        same = af_memcmp(first[i], again[i], 16) == 0;
    tc_expect(same, "readdir_tell_seek_same_entries", "tell %s seek %s, %u and %u names", tc_status_name(tst),
              tc_status_name(sst), (unsigned)a, (unsigned)b);
    /* rewind gives the first entry again */
    char one[1][16];
    st = tc_rewinddir(fd);
    uint32_t c = read_names(fd, one, 1, &last);
    tc_expect(st == FS_STATUS_SUCCESS && c == 1 && af_memcmp(one[0], all[0], 16) == 0, "readdir_rewind",
              "%s", tc_status_name(st));
    tc_closedir(fd);
}

static void rename_across(void)
{
    char from[96], to[96], a[128], b[128];
    path_in(from, sizeof(from), "from");
    path_in(to, sizeof(to), "to");
    tc_mkdir(from);
    tc_mkdir(to);
    tc_join(a, sizeof(a), from, "/r.bin", NULL);
    tc_join(b, sizeof(b), to, "/moved.bin", NULL);
    char why[160];
    bool ok = tc_write_file(a, 70000, seed_for(300), 0, false, why, sizeof(why));
    uint64_t st = tc_rename(a, b);
    uint64_t gone = tc_stat(a, NULL);
    ok = ok && st == FS_STATUS_SUCCESS && gone == FS_STATUS_NO_FILE && tc_check_file(b, 70000, seed_for(300), why,
                                                                                       sizeof(why));
    if (ok)
        tc_report_file(b, 70000, seed_for(300));
    tc_expect(ok, "rename_file_across_directories", "rename %s, old name %s: %s", tc_status_name(st),
              tc_status_name(gone), why);

    /* a directory, with a file in it, to another parent */
    tc_join(a, sizeof(a), from, "/sub", NULL);
    tc_mkdir(a);
    tc_join(a, sizeof(a), from, "/sub/inside.bin", NULL);
    ok = tc_write_file(a, 3000, seed_for(301), 0, false, why, sizeof(why));
    tc_join(a, sizeof(a), from, "/sub", NULL);
    tc_join(b, sizeof(b), to, "/sub2", NULL);
    st = tc_rename(a, b);
    tc_join(b, sizeof(b), to, "/sub2/inside.bin", NULL);
    ok = ok && st == FS_STATUS_SUCCESS && tc_stat(a, NULL) == FS_STATUS_NO_FILE &&
         tc_check_file(b, 3000, seed_for(301), why, sizeof(why));
    if (ok)
        tc_report_file(b, 3000, seed_for(301));
    tc_expect(ok, "rename_directory_across_directories", "rename %s: %s", tc_status_name(st), why);

    /* onto an existing file: it is replaced */
    tc_join(a, sizeof(a), to, "/replacer.bin", NULL);
    tc_join(b, sizeof(b), to, "/replaced.bin", NULL);
    ok = tc_write_file(a, 9000, seed_for(302), 0, false, why, sizeof(why)) &&
         tc_write_file(b, 100, seed_for(303), 0, false, why, sizeof(why));
    st = tc_rename(a, b);
    ok = ok && st == FS_STATUS_SUCCESS && tc_check_file(b, 9000, seed_for(302), why, sizeof(why)) &&
         tc_stat(a, NULL) == FS_STATUS_NO_FILE;
    if (ok)
        tc_report_file(b, 9000, seed_for(302));
    tc_expect(ok, "rename_onto_existing_file", "rename %s: %s", tc_status_name(st), why);
}

static bool zeros(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

static void truncate_both_ways(void)
{
    char path[96], why[160];
    path_in(path, sizeof(path), "trunc.bin");
    bool ok = tc_write_file(path, 100000, seed_for(400), 0, false, why, sizeof(why));
    uint64_t fd, size = 0, done = 0;
    uint64_t st = tc_open(path, FS_OPEN_FLAGS_READ_WRITE, &fd);
    uint64_t down = tc_truncate(fd, 10000);
    tc_size(fd, &size);
    ok = ok && st == FS_STATUS_SUCCESS && down == FS_STATUS_SUCCESS && size == 10000;
    tc_expect(ok, "truncate_down", "open %s truncate %s size %lu", tc_status_name(st), tc_status_name(down),
              (unsigned long)size);
    uint64_t up = tc_truncate(fd, 1048576);
    tc_size(fd, &size);
    uint8_t *buf = tc_area();
    uint64_t rst = tc_read(fd, 0, buf, 1048576, &done);
    bool head_kept = done == 1048576 && tc_verify(buf, 10000, seed_for(400), 0) == 10000;
    bool tail_zero = done == 1048576 && zeros(buf + 10000, 1048576 - 10000);
    tc_expect(up == FS_STATUS_SUCCESS && size == 1048576 && rst == FS_STATUS_SUCCESS && head_kept && tail_zero,
              "truncate_up_reads_zeros", "truncate %s size %lu read %s %lu head %d zeros %d", tc_status_name(up),
              (unsigned long)size, tc_status_name(rst), (unsigned long)done, head_kept, tail_zero);
    tc_sync(fd);
    tc_close(fd);
}

static void remove_and_rmdir(void)
{
    char path[96], dir[96], why[160];
    path_in(path, sizeof(path), "gone.txt");
    bool made = tc_write_file(path, 10, seed_for(500), 0, false, why, sizeof(why));
    uint64_t st = tc_unlink(path);
    uint64_t after = tc_stat(path, NULL);
    uint64_t again = tc_unlink(path);
    tc_expect(made && st == FS_STATUS_SUCCESS && after == FS_STATUS_NO_FILE && again == FS_STATUS_NO_FILE,
              "remove_file", "remove %s, stat after %s, remove again %s", tc_status_name(st), tc_status_name(after),
              tc_status_name(again));
    path_in(dir, sizeof(dir), "empty_dir");
    uint64_t mk = tc_mkdir(dir);
    uint64_t dup = tc_mkdir(dir);
    uint64_t rm = tc_rmdir(dir);
    after = tc_stat(dir, NULL);
    tc_expect(mk == FS_STATUS_SUCCESS && dup == FS_STATUS_ALREADY_EXISTS && rm == FS_STATUS_SUCCESS &&
                  after == FS_STATUS_NO_FILE,
              "mkdir_twice_then_rmdir", "mkdir %s, again %s, rmdir %s, stat %s", tc_status_name(mk),
              tc_status_name(dup), tc_status_name(rm), tc_status_name(after));
}

static void stat_times_and_modes(void)
{
    char path[96];
    path_in(path, sizeof(path), "f08_65536.bin");
    fs_stat s;
    uint64_t st = tc_stat(path, &s);
    /* Not 1980: the PD's clock comes from its configuration or its build time (2020-01-01
     * is older than either). */
    tc_expect(st == FS_STATUS_SUCCESS && s.size == 65536 && (s.mode & FS_MODE_TYPE_MASK) == FS_MODE_REGULAR &&
                  s.mtime > 1577836800u && s.mtime < 4102444800u,
              "stat_size_mode_time", "%s size %lu mode %lo mtime %lu", tc_status_name(st), (unsigned long)s.size,
              (unsigned long)s.mode, (unsigned long)s.mtime);
}

void tc_role_workload(void)
{
    tc_join(base, sizeof(base), test_config.dir, NULL, NULL);
    uint64_t st = tc_mkdir(base);
    tc_expect(st == FS_STATUS_SUCCESS, "mkdir_own_directory", "%s: %s", base, tc_status_name(st));
    parallel_files();
    stat_times_and_modes();
    names_and_case();
    nested_dirs();
    readdir_seek_tell();
    rename_across();
    truncate_both_ways();
    remove_and_rmdir();
}
