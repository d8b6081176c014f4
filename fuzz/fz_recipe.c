/* fz_recipe: recipe text, seed steps and damage steps (see fz_recipe.h). */
#include "fuzz/fz_recipe.h"

#include "base/base.h"
#include "fat/fat_layout.h"
#include "fuzz/fz_seed.h"
#include "fuzz/fz_template.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- parsing ---- */

static int tokenize(const char *line, char ***argv_out, int *argc_out)
{
    size_t n = strlen(line);
    char **argv = calloc(n / 2 + 2, sizeof(char *));
    int argc = 0;
    const char *p = line;
    while (argv) {
        while (*p == ' ' || *p == '\t' || *p == '\r')
            p++;
        if (!*p || *p == '#')
            break;
        char *tok = malloc(n + 1);
        size_t t = 0;
        bool quoted = false;
        while (*p && (quoted || (*p != ' ' && *p != '\t' && *p != '\r'))) {
            if (*p == '"')
                quoted = !quoted;
            else
                tok[t++] = *p;
            p++;
        }
        tok[t] = '\0';
        if (quoted) {
            free(tok);
            for (int i = 0; i < argc; i++)
                free(argv[i]);
            free(argv);
            return -1;
        }
        argv[argc++] = tok;
    }
    *argv_out = argv;
    *argc_out = argc;
    return argv ? 0 : -1;
}

int fz_recipe_parse(const char *text, const char *name, fz_recipe *out, char *err, size_t err_size)
{
    memset(out, 0, sizeof *out);
    out->name = strdup(name);
    int lineno = 0;
    const char *p = text;
    while (*p) {
        const char *end = strchr(p, '\n');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        char *line = strndup(p, n);
        lineno++;
        char **argv;
        int argc;
        if (tokenize(line, &argv, &argc) != 0) {
            snprintf(err, err_size, "%s:%d: unbalanced quotes", name, lineno);
            free(line);
            fz_recipe_free(out);
            return -1;
        }
        free(line);
        if (argc > 0) {
            fz_line *grown = realloc(out->lines, (out->count + 1) * sizeof *grown);
            if (!grown)
                return -1;
            out->lines = grown;
            out->lines[out->count++] = (fz_line){lineno, argc, argv};
        } else {
            free(argv);
        }
        p += n;
        if (*p == '\n')
            p++;
    }
    return 0;
}

int fz_recipe_load(const char *path, fz_recipe *out, char *err, size_t err_size)
{
    size_t len;
    uint8_t *text = fz_read_file(path, &len);
    if (!text) {
        snprintf(err, err_size, "cannot read %s", path);
        return -1;
    }
    char *s = malloc(len + 1);
    memcpy(s, text, len);
    s[len] = '\0';
    free(text);
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    char name[256];
    snprintf(name, sizeof name, "%s", base);
    char *dot = strstr(name, ".recipe");
    if (dot)
        *dot = '\0';
    int rc = fz_recipe_parse(s, name, out, err, err_size);
    free(s);
    return rc;
}

void fz_recipe_free(fz_recipe *r)
{
    for (size_t i = 0; i < r->count; i++) {
        for (int k = 0; k < r->lines[i].argc; k++)
            free(r->lines[i].argv[k]);
        free(r->lines[i].argv);
    }
    free(r->lines);
    free(r->name);
    memset(r, 0, sizeof *r);
}

/* ---- building ---- */

void fz_build_init(fz_build *b, const char *workdir)
{
    memset(b, 0, sizeof *b);
    snprintf(b->workdir, sizeof b->workdir, "%s", workdir);
    snprintf(b->image, sizeof b->image, "%s/image.img", workdir);
}

void fz_build_fini(fz_build *b)
{
    free(b->img);
    free(b->seed);
    memset(b, 0, sizeof *b);
}

static bool read_image(fz_build *b)
{
    free(b->img);
    b->img = fz_read_file(b->image, &b->len);
    b->loaded = b->img != NULL;
    b->dirty = false;
    return b->loaded;
}

/* Seed steps leave the timestamps to fix once, when the image is first looked at. */
static bool finish_seed(fz_build *b)
{
    if (!b->seed_pending)
        return true;
    b->seed_pending = false;
    if (!read_image(b) || !fz_seed_normalize(b->img, b->len))
        return false;
    b->dirty = true;
    return true;
}

static bool load(fz_build *b)
{
    if (!finish_seed(b))
        return false;
    return b->loaded || read_image(b);
}

int fz_build_sync(fz_build *b)
{
    if (!finish_seed(b))
        return -1;
    if (!b->loaded || !b->dirty)
        return 0;
    b->dirty = false;
    return fz_write_file(b->image, b->img, b->len);
}

const uint8_t *fz_build_image(fz_build *b, size_t *len)
{
    if (!load(b))
        return NULL;
    *len = b->len;
    return b->img;
}

void fz_build_reload(fz_build *b)
{
    b->loaded = false;
    b->dirty = false;
}

static bool take_seed(fz_build *b)
{
    if (b->have_seed)
        return true;
    if (!load(b))
        return false;
    b->seed = malloc(b->len ? b->len : 1);
    memcpy(b->seed, b->img, b->len);
    b->seed_len = b->len;
    b->seed_layout_ok = fz_view_init(&b->seed_view, b->seed, b->seed_len);
    b->have_seed = true;
    return true;
}

int fz_build_adopt(fz_build *b, const uint8_t *img, size_t len, const char *template_name)
{
    if (fz_write_file(b->image, img, len) != 0)
        return -1;
    fz_build_reload(b);
    snprintf(b->template_name, sizeof b->template_name, "%s", template_name ? template_name : "");
    return take_seed(b) ? 0 : -1;
}

/* Split "NAME+OFF" (OFF a number at the very end). */
static void split_offset(const char *s, char *name, size_t size, uint64_t *off)
{
    *off = 0;
    snprintf(name, size, "%s", s);
    char *plus = strrchr(name, '+');
    uint64_t v;
    if (plus && fz_parse_u64(plus + 1, &v)) {
        *plus = '\0';
        *off = v;
    }
}

static bool need_layout(fz_build *b, char *err, size_t err_size)
{
    if (!take_seed(b)) {
        snprintf(err, err_size, "no image to damage (no seed lines before)");
        return false;
    }
    if (!b->seed_layout_ok) {
        snprintf(err, err_size, "the seed has no FAT layout");
        return false;
    }
    return true;
}

static bool lookup(fz_build *b, const char *path, fz_dirent *e, char *err, size_t err_size)
{
    if (fz_lookup(&b->seed_view, path, e))
        return true;
    snprintf(err, err_size, "no %s in the seed", path);
    return false;
}

/* The "." or ".." entry of directory `path` in the seed. */
static bool dot_entry(fz_build *b, const char *path, bool dotdot, uint64_t *offset, char *err, size_t err_size)
{
    fz_dirent e;
    if (!lookup(b, path, &e, err, err_size))
        return false;
    fz_dir d;
    if (!e.is_dir || !fz_dir_read(&b->seed_view, e.cluster, &d)) {
        snprintf(err, err_size, "%s is not a directory with a cluster", path);
        return false;
    }
    bool found = false;
    for (size_t i = 0; i < d.count && !found; i++)
        if (d.entries[i].is_dot && (d.entries[i].raw[1] == '.') == dotdot) {
            *offset = d.entries[i].offset;
            found = true;
        }
    fz_dir_free(&d);
    if (!found)
        snprintf(err, err_size, "%s has no %s entry", path, dotdot ? ".." : ".");
    return found;
}

bool fz_build_where(fz_build *b, const char *where, uint64_t *offset, char *err, size_t err_size)
{
    if (!need_layout(b, err, err_size))
        return false;
    char name[4096];
    uint64_t off;
    split_offset(where, name, sizeof name, &off);
    const fz_view *v = &b->seed_view;
    const fz_layout *L = &v->L;
    uint64_t base;
    fz_dirent e;
    if (strcmp(name, "boot") == 0) {
        base = 0;
    } else if (strcmp(name, "fsinfo") == 0) {
        base = (uint64_t)L->fsinfo_sector * L->bytes_per_sector;
    } else if (strcmp(name, "backup") == 0) {
        base = (uint64_t)L->backup_sector * L->bytes_per_sector;
    } else if (strncmp(name, "fat", 3) == 0 && name[3] >= '0' && name[3] <= '7' && name[4] == '\0') {
        base = L->fat_offset + (uint64_t)(name[3] - '0') * L->fat_bytes;
    } else if (strcmp(name, "root") == 0) {
        base = L->type == 32 ? fz_cluster_offset(v, L->root_cluster) : L->root_offset;
    } else if (strcmp(name, "data") == 0) {
        base = L->data_offset;
    } else if (strcmp(name, "end") == 0) {
        base = b->seed_len;
    } else if (strncmp(name, "cluster:", 8) == 0) {
        uint64_t c;
        if (!fz_parse_u64(name + 8, &c) || c < 2) {
            snprintf(err, err_size, "bad cluster in %s", where);
            return false;
        }
        base = fz_cluster_offset(v, (uint32_t)c);
    } else if (strncmp(name, "entry:", 6) == 0) {
        if (!lookup(b, name + 6, &e, err, err_size))
            return false;
        base = e.offset;
    } else if (strncmp(name, "lfn:", 4) == 0) {
        if (!lookup(b, name + 4, &e, err, err_size))
            return false;
        if (e.lfn_count == 0) {
            snprintf(err, err_size, "%s has no long name", name + 4);
            return false;
        }
        base = e.lfn_offset;
    } else if (strncmp(name, "dot:", 4) == 0) {
        if (!dot_entry(b, name + 4, false, &base, err, err_size))
            return false;
    } else if (strncmp(name, "dotdot:", 7) == 0) {
        if (!dot_entry(b, name + 7, true, &base, err, err_size))
            return false;
    } else if (strncmp(name, "content:", 8) == 0) {
        if (!lookup(b, name + 8, &e, err, err_size))
            return false;
        if (!fz_cluster_valid(v, e.cluster)) {
            snprintf(err, err_size, "%s has no cluster", name + 8);
            return false;
        }
        base = fz_cluster_offset(v, e.cluster);
    } else {
        snprintf(err, err_size, "unknown structure '%s'", name);
        return false;
    }
    *offset = base + off;
    return true;
}

bool fz_build_value(fz_build *b, const char *value, uint64_t *out, char *err, size_t err_size)
{
    if (fz_parse_u64(value, out))
        return true;
    if (!need_layout(b, err, err_size))
        return false;
    const fz_view *v = &b->seed_view;
    if (strcmp(value, "eoc") == 0) {
        *out = fz_eoc(v);
    } else if (strcmp(value, "free") == 0) {
        *out = 0;
    } else if (strcmp(value, "bad") == 0) {
        *out = v->L.type == 12 ? FAT12_BAD : v->L.type == 16 ? FAT16_BAD : FAT32_BAD;
    } else if (strcmp(value, "root") == 0) {
        *out = fz_root_cluster(v);
    } else if (strncmp(value, "max", 3) == 0) {
        uint64_t extra = 0;
        if (value[3] == '+' && !fz_parse_u64(value + 4, &extra)) {
            snprintf(err, err_size, "bad value '%s'", value);
            return false;
        }
        if (value[3] && value[3] != '+') {
            snprintf(err, err_size, "bad value '%s'", value);
            return false;
        }
        *out = (uint64_t)v->L.cluster_count + 1 + extra;
    } else if (value[0] == '@') {
        char path[4096];
        snprintf(path, sizeof path, "%s", value + 1);
        uint64_t k = 0;
        char *hash = strrchr(path, '#');
        if (hash && fz_parse_u64(hash + 1, &k))
            *hash = '\0';
        fz_dirent e;
        if (!lookup(b, path, &e, err, err_size))
            return false;
        if (k == 0) {
            *out = e.cluster;
            return true;
        }
        uint32_t chain[4096];
        size_t n = fz_chain(v, 0, e.cluster, chain, AF_ARRAY_LEN(chain), NULL);
        if (k >= n) {
            snprintf(err, err_size, "%s has %zu clusters, no #%llu", path, n, (unsigned long long)k);
            return false;
        }
        *out = chain[k];
    } else {
        snprintf(err, err_size, "bad value '%s'", value);
        return false;
    }
    return true;
}

static bool patch(fz_build *b, uint64_t offset, const void *data, size_t n, char *err, size_t err_size)
{
    if (!load(b))
        return false;
    if (offset > b->len || n > b->len - offset) {
        snprintf(err, err_size, "patch at %llu+%zu is past the image end", (unsigned long long)offset, n);
        return false;
    }
    memcpy(b->img + offset, data, n);
    b->dirty = true;
    return true;
}

static int seed_step(fz_build *b, const fz_line *l, char *err, size_t err_size);

static int template_step(fz_build *b, const char *name, char *err, size_t err_size)
{
    const fz_template_spec *t = fz_template_find(name);
    if (!t) {
        snprintf(err, err_size, "no template '%s'", name);
        return -1;
    }
    fz_recipe r;
    if (fz_recipe_parse(t->seed, name, &r, err, err_size) != 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < r.count && rc == 0; i++)
        rc = seed_step(b, &r.lines[i], err, err_size) == 1 ? 0 : -1;
    fz_recipe_free(&r);
    snprintf(b->template_name, sizeof b->template_name, "%s", name);
    return rc;
}

static int seed_step(fz_build *b, const fz_line *l, char *err, size_t err_size)
{
    const char *cmd = l->argv[0];
    int argc = l->argc;
    char **argv = l->argv;
    int rc;
    if (strcmp(cmd, "mkfs") == 0) {
        rc = fz_seed_mkfs(b->image, argc - 1, argv + 1, err, err_size);
    } else if (strcmp(cmd, "template") == 0 && argc == 2) {
        rc = template_step(b, argv[1], err, err_size);
    } else if (strcmp(cmd, "dir") == 0 && argc == 2) {
        rc = fz_seed_dir(b->image, argv[1], err, err_size);
    } else if (strcmp(cmd, "file") == 0 && argc == 3) {
        uint64_t size;
        if (!fz_parse_size(argv[2], &size)) {
            snprintf(err, err_size, "bad size '%s'", argv[2]);
            return -1;
        }
        rc = fz_seed_file(b->image, b->workdir, argv[1], size, err, err_size);
    } else if (strcmp(cmd, "files") == 0 && argc == 4) {
        uint64_t count, size;
        if (!fz_parse_u64(argv[2], &count) || !fz_parse_size(argv[3], &size)) {
            snprintf(err, err_size, "usage: files PREFIX COUNT SIZE");
            return -1;
        }
        rc = 0;
        for (uint64_t i = 1; i <= count && rc == 0; i++) {
            char path[4200];
            snprintf(path, sizeof path, "%s%llu", argv[1], (unsigned long long)i);
            rc = fz_seed_file(b->image, b->workdir, path, size, err, err_size);
        }
    } else {
        return 0;
    }
    if (rc != 0)
        return -1;
    fz_build_reload(b);
    b->seed_pending = true;
    return 1;
}

static int damage_step(fz_build *b, const fz_line *l, char *err, size_t err_size)
{
    const char *cmd = l->argv[0];
    int argc = l->argc;
    char **argv = l->argv;
    uint64_t where, value, value2;
    if (strcmp(cmd, "poke") == 0 && argc >= 3) {
        if (!fz_build_where(b, argv[1], &where, err, err_size))
            return -1;
        uint8_t bytes[256];
        int n = 0;
        for (int i = 2; i < argc && n < 256; i++) {
            uint64_t v;
            char hex[32];
            snprintf(hex, sizeof hex, "%s%s", strncmp(argv[i], "0x", 2) == 0 ? "" : "0x", argv[i]);
            if (!fz_parse_u64(hex, &v) || v > 255) {
                snprintf(err, err_size, "bad byte '%s'", argv[i]);
                return -1;
            }
            bytes[n++] = (uint8_t)v;
        }
        return patch(b, where, bytes, (size_t)n, err, err_size) ? 1 : -1;
    }
    if ((strcmp(cmd, "poke16") == 0 || strcmp(cmd, "poke32") == 0) && argc == 3) {
        if (!fz_build_where(b, argv[1], &where, err, err_size) || !fz_build_value(b, argv[2], &value, err, err_size))
            return -1;
        uint8_t bytes[4];
        af_store_le32(bytes, (uint32_t)value);
        return patch(b, where, bytes, cmd[4] == '1' ? 2 : 4, err, err_size) ? 1 : -1;
    }
    if (strcmp(cmd, "fat") == 0 && argc == 4) {
        if (!need_layout(b, err, err_size) || !fz_build_value(b, argv[2], &value, err, err_size) || !fz_build_value(b, argv[3], &value2, err, err_size))
            return -1;
        if (!load(b))
            return -1;
        fz_view v = b->seed_view;
        v.img = b->img;
        v.len = b->len;
        uint32_t first = 0, last = v.L.fat_count - 1;
        if (strcmp(argv[1], "all") != 0) {
            uint64_t copy;
            if (!fz_parse_u64(argv[1], &copy) || copy >= v.L.fat_count) {
                snprintf(err, err_size, "bad FAT copy '%s'", argv[1]);
                return -1;
            }
            first = last = (uint32_t)copy;
        }
        for (uint32_t c = first; c <= last; c++)
            fz_fat_set(&v, c, (uint32_t)value, (uint32_t)value2);
        b->dirty = true;
        return 1;
    }
    if (strcmp(cmd, "set") == 0 && argc == 4) {
        fz_dirent e;
        if (!need_layout(b, err, err_size) || !lookup(b, argv[1], &e, err, err_size))
            return -1;
        if (!fz_build_value(b, argv[3], &value, err, err_size))
            return -1;
        uint8_t bytes[4];
        if (strcmp(argv[2], "cluster") == 0) {
            af_store_le16(bytes, (uint16_t)(value >> 16));
            if (!patch(b, e.offset + FAT_DIRENT_CLUSTER_HI, bytes, 2, err, err_size))
                return -1;
            af_store_le16(bytes, (uint16_t)value);
            return patch(b, e.offset + FAT_DIRENT_CLUSTER_LO, bytes, 2, err, err_size) ? 1 : -1;
        }
        if (strcmp(argv[2], "size") == 0) {
            af_store_le32(bytes, (uint32_t)value);
            return patch(b, e.offset + FAT_DIRENT_SIZE_BYTES, bytes, 4, err, err_size) ? 1 : -1;
        }
        if (strcmp(argv[2], "attr") == 0 || strcmp(argv[2], "byte0") == 0) {
            bytes[0] = (uint8_t)value;
            return patch(b, e.offset + (argv[2][0] == 'a' ? FAT_DIRENT_ATTR : 0), bytes, 1, err, err_size) ? 1 : -1;
        }
        snprintf(err, err_size, "unknown field '%s'", argv[2]);
        return -1;
    }
    if (strcmp(cmd, "copy") == 0 && argc == 4) {
        if (!fz_build_where(b, argv[1], &where, err, err_size) || !fz_build_where(b, argv[2], &value, err, err_size) ||
            !fz_parse_size(argv[3], &value2))
            return -1;
        if (where > b->seed_len || value2 > b->seed_len - where) {
            snprintf(err, err_size, "copy source past the image end");
            return -1;
        }
        return patch(b, value, b->seed + where, value2, err, err_size) ? 1 : -1;
    }
    if (strcmp(cmd, "truncate") == 0 && argc == 2) {
        if (!fz_build_where(b, argv[1], &where, err, err_size) && !fz_parse_size(argv[1], &where))
            return -1;
        if (!load(b))
            return -1;
        if (where < b->len)
            b->len = where;
        b->dirty = true;
        if (fz_build_sync(b) != 0 || truncate(b->image, (off_t)b->len) != 0) {
            snprintf(err, err_size, "cannot truncate");
            return -1;
        }
        return 1;
    }
    return 0;
}

int fz_build_step(fz_build *b, const fz_line *line, char *err, size_t err_size)
{
    if (!b->have_seed) {
        int rc = seed_step(b, line, err, err_size);
        if (rc != 0)
            return rc;
    }
    int rc = damage_step(b, line, err, err_size);
    if (rc < 0 && !err[0])
        snprintf(err, err_size, "step failed");
    return rc;
}
