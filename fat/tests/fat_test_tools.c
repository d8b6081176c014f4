/* Helpers for the FAT format tests (hosted: libc, system()). */
#include "fat/tests/fat_test_tools.h"

#include "fat/fat_layout.h"
#include "tests/harness.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

const char *tmp_path(const char *name)
{
    /* One stable buffer per name: callers keep the pointer across other calls. */
    static struct {
        char name[64];
        char path[512];
    } paths[1024];
    static size_t used;
    for (size_t i = 0; i < used; i++) {
        if (strcmp(paths[i].name, name) == 0)
            return paths[i].path;
    }
    if (used == sizeof paths / sizeof paths[0] || strlen(name) >= sizeof paths[0].name) {
        fprintf(stderr, "tmp_path: too many or too long names (%s)\n", name);
        abort();
    }
    snprintf(paths[used].name, sizeof paths[used].name, "%s", name);
    snprintf(paths[used].path, sizeof paths[used].path, "%s/%s", test_tmpdir(), name);
    return paths[used++].path;
}

int tool_run(bool echo_output, const char *fmt, ...)
{
    char cmd[2048], full[2400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    const char *log = tmp_path("tool.log");
    snprintf(full, sizeof full, "MTOOLS_SKIP_CHECK=1 %s >%s 2>&1", cmd, log);
    int rc = system(full);
    int status = rc == -1 || !WIFEXITED(rc) ? -1 : WEXITSTATUS(rc);
    if (echo_output || status != 0) {
        printf("$ %s -> %d\n", cmd, status);
        size_t len;
        char *out = (char *)file_read_all(log, &len);
        if (out) {
            fwrite(out, 1, len > 4000 ? 4000 : len, stdout);
            free(out);
        }
    }
    return status;
}

char *tool_output(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    setenv("MTOOLS_SKIP_CHECK", "1", 1);
    FILE *p = popen(cmd, "r");
    if (!p)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (cap - len < 2) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
    }
    buf[len] = 0;
    pclose(p);
    return buf;
}

bool tool_available(const char *name)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1 || test -x /usr/sbin/%s || test -x /sbin/%s", name,
             name, name);
    return system(cmd) == 0;
}

int tool_fsck(const char *image)
{
    return tool_run(false, "PATH=$PATH:/usr/sbin:/sbin fsck.fat -n '%s'", image);
}

uint8_t *file_read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)size + 1);
    if (fread(buf, 1, (size_t)size, f) != (size_t)size) {
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    *len = (size_t)size;
    return buf;
}

uint8_t *file_read_head(const char *path, size_t head, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    *size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = calloc(1, head);
    size_t n = fread(buf, 1, head, f);
    fclose(f);
    if (n != head) {
        free(buf);
        return NULL;
    }
    return buf;
}

int file_write_all(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t n = fwrite(data, 1, len, f);
    return fclose(f) == 0 && n == len ? 0 : -1;
}

typedef struct call {
    blk_fixture *f;
    fixture_fn fn;
    void *arg;
} call;

static void *call_entry(void *arg)
{
    call *c = arg;
    c->fn(c->f, c->arg);
    return NULL;
}

bool fixture_call(blk_fixture *f, fixture_fn fn, void *arg)
{
    call c = {f, fn, arg};
    if (!blk_fixture_spawn(f, call_entry, &c))
        return false;
    return blk_fixture_run(f);
}

bool raw_load(raw_image *img, const char *path)
{
    img->data = file_read_all(path, &img->len);
    if (!img->data)
        return false;
    fat_bpb_error why;
    return fat_bpb_parse(img->data, img->len, 0, img->len, &img->g, &why) == VFS_OK;
}

bool raw_save(const raw_image *img, const char *path)
{
    return file_write_all(path, img->data, img->len) == 0;
}

void raw_free(raw_image *img)
{
    free(img->data);
    img->data = NULL;
}

uint32_t raw_fat_get(const raw_image *img, uint32_t copy, uint32_t cl)
{
    return fat_entry_get(img->g.type, cl, img->data + fat_entry_offset(&img->g, copy, cl));
}

void raw_fat_set(raw_image *img, uint32_t copy, uint32_t cl, uint32_t v)
{
    fat_entry_put(img->g.type, cl, img->data + fat_entry_offset(&img->g, copy, cl), v);
}

uint8_t *raw_root_entries(raw_image *img, size_t *count)
{
    if (img->g.type == FAT_TYPE_32) {
        *count = img->g.bytes_per_cluster / 32; /* first cluster of the root only */
        return img->data + fat_cluster_offset(&img->g, img->g.root_cluster);
    }
    *count = img->g.root_entries;
    return img->data + img->g.root_dir_offset;
}

uint8_t *raw_root_entry(raw_image *img, const char *name11)
{
    size_t n;
    uint8_t *e = raw_root_entries(img, &n);
    for (size_t i = 0; i < n; i++, e += 32) {
        if (e[0] == 0)
            return NULL;
        if (memcmp(e, name11, 11) == 0 && e[11] != 0x0F)
            return e;
    }
    return NULL;
}

uint32_t raw_entry_cluster(const raw_image *img, const uint8_t *e)
{
    uint32_t hi = img->g.type == FAT_TYPE_32 ? af_load_le16(e + 20) : 0;
    return (hi << 16) | af_load_le16(e + 26);
}
