/* Role linux_files: read what Linux wrote before boot.
 *
 * sel4/test_sel4.sh puts a tree under /linux with mtools: files whose names end in
 * "fill_<seed>_<size>.bin" (some in nested directories, some with long or Unicode names)
 * holding tc_fill(seed) bytes, and /linux/manifest.txt with their number. Every such file
 * must read back exactly, and there must be as many as the manifest says.
 */
#include "sel4/clients/files.h"

static uint32_t found, good;

static bool parse_u64(const char **p, uint64_t *out)
{
    uint64_t v = 0;
    const char *s = *p;
    if (*s < '0' || *s > '9')
        return false;
    while (*s >= '0' && *s <= '9')
        v = v * 10 + (uint64_t)(*s++ - '0');
    *out = v;
    *p = s;
    return true;
}

/* "...fill_<seed>_<size>.bin" */
static bool fill_name(const char *name, uint64_t *seed, uint64_t *size)
{
    const char *at = NULL;
    for (const char *s = name; *s; s++)
        if (af_memcmp(s, "fill_", 5) == 0)
            at = s + 5;
    return at && parse_u64(&at, seed) && *at++ == '_' && parse_u64(&at, size) && af_memcmp(at, ".bin", 5) == 0;
}

static void walk(const char *dir, uint32_t depth)
{
    uint64_t fd;
    if (depth > 8 || tc_opendir(dir, &fd) != FS_STATUS_SUCCESS)
        return;
    char name[256], path[512];
    /* read the names first: the checks below open files, and a directory fd's position
     * survives that, but reading on keeps this simple */
    static char names[8][32][256];
    uint32_t count = 0;
    while (count < 32 && tc_readdir(fd, names[depth][count], 256) == FS_STATUS_SUCCESS)
        count++;
    tc_closedir(fd);
    for (uint32_t i = 0; i < count; i++) {
        af_memcpy(name, names[depth][i], 256);
        tc_join(path, sizeof(path), dir, "/", name);
        fs_stat st;
        if (tc_stat(path, &st) != FS_STATUS_SUCCESS)
            continue;
        uint64_t seed, size;
        if ((st.mode & FS_MODE_TYPE_MASK) == FS_MODE_DIRECTORY) {
            walk(path, depth + 1);
        } else if (fill_name(name, &seed, &size)) {
            char why[160], check[64];
            found++;
            sddf_snprintf(check, sizeof(check), "linux_file_%u_%lu_bytes", (unsigned)found, (unsigned long)size);
            bool ok = tc_check_file(path, size, seed, why, sizeof(why));
            good += ok;
            tc_expect(ok, check, "%s: %s", path, why);
        }
    }
}

void tc_role_linux_files(void)
{
    uint64_t fd, done = 0;
    char text[16] = {0};
    uint64_t st = tc_open("/linux/manifest.txt", FS_OPEN_FLAGS_READ_ONLY, &fd);
    if (st == FS_STATUS_SUCCESS) {
        st = tc_read(fd, 0, text, sizeof(text) - 1, &done);
        tc_close(fd);
    }
    uint64_t expected = 0;
    const char *p = text;
    bool have = st == FS_STATUS_SUCCESS && parse_u64(&p, &expected);
    tc_expect(have, "linux_manifest", "/linux/manifest.txt: %s", tc_status_name(st));
    found = good = 0;
    walk("/linux", 0);
    tc_expect(have && found == expected && good == found, "linux_files_all_read", "%u found, %u intact, %lu expected",
              (unsigned)found, (unsigned)good, (unsigned long)expected);
}
