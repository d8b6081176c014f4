/* imgmut: the random campaign and the minimiser (imgmut.h).
 *
 * Each round takes a seed image (made once per campaign by mkfs.fat and mtools), damages
 * it with one to three layout-aware steps (boot sector and FSInfo fields, FAT entries in
 * one copy or all, directory entry fields and name bytes, long-name slots, "." and "..",
 * copies of one structure over another, truncation), then runs the command on it and
 * checks the oracles that apply: read-only commands leave the image as it was, a repair
 * leaves a volume that a second check calls clean (and that fsck.fat accepts if it did
 * before), a write overwrites no cluster of an existing file, and when fsck.fat accepts
 * the damaged image, asyncfat reads what mtools reads. Every step and expectation is a
 * recipe line, so a failure is saved as the recipe that reproduces it.
 */
#include "fuzz/imgmut.h"

#include "fuzz/fz_seed.h"
#include "fuzz/fz_template.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TREE                                                                 \
    "dir /sub\n"                                                            \
    "dir /sub/deeper\n"                                                     \
    "dir \"/Long Directory Name\"\n"                                         \
    "dir /empty\n"                                                          \
    "file /readme.txt 100\n"                                                \
    "file \"/a much longer name that needs several lfn slots.bin\" 9000\n"   \
    "file /sub/a.txt 700\n"                                                 \
    "file \"/sub/Mixed Case.Text\" 5000\n"                                   \
    "file /sub/deeper/x.bin 30000\n"                                        \
    "file \"/Long Directory Name/inner file.dat\" 40\n"                      \
    "file /zero.txt 0\n"                                                    \
    "files /sub/f 20 300\n"

#define DEEP                                                                 \
    "dir /d\ndir /d/d\ndir /d/d/d\ndir /d/d/d/d\ndir /d/d/d/d/d\ndir /d/d/d/d/d/d\n" \
    "dir /d/d/d/d/d/d/d\ndir /d/d/d/d/d/d/d/d\nfile /d/d/d/d/d/d/d/d/leaf.txt 3000\n" \
    "file /d/d/file.bin 5000\nfile /top.txt 10\n"

typedef struct seed {
    const char *name;
    const char *spec;
    uint8_t *img;
    size_t len;
    fz_view v;
    fz_manifest m;
    const char **files, **dirs;
    size_t nfiles, ndirs;
} seed;

#define SEED(name, spec) {name, spec, NULL, 0, {0}, {0}, NULL, NULL, 0, 0}
static seed seeds[] = {
    SEED("fat12", "mkfs -F 12 -s 2 -r 64 2M\n" TREE),
    SEED("fat16", "mkfs -F 16 -s 4 -r 128 16M\n" TREE),
    SEED("fat16-fullroot", "mkfs -F 16 -r 64 16M\nfile \"/big file.bin\" 70000\nfiles /f 60 100\n"),
    SEED("fat32", "mkfs -F 32 -s 1 40M\n" TREE),
    SEED("fat32-deep", "mkfs -F 32 -s 1 34M\n" DEEP TREE),
    SEED("fat16-4k", "mkfs -F 16 -S 4096 -s 1 -r 128 20M\n" TREE),
};
#define SEED_COUNT (sizeof seeds / sizeof seeds[0])

typedef struct campaign {
    const mut_env *env;
    const mut_campaign_options *o;
    uint64_t rng;
    mut_ctx ctx;
    char *text;                 /* the recipe so far (steps after the seed) */
    size_t text_len, text_cap;
    uint64_t rounds, runs, failures;
    char *signatures[256];
    uint32_t signature_count[256];
    size_t nsignatures;
} campaign;

static uint64_t rnd(campaign *cp)
{
    uint64_t z = (cp->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static uint64_t below(campaign *cp, uint64_t n) { return n ? rnd(cp) % n : 0; }

/* A path as one recipe token. */
static const char *q(const char *prefix, const char *path, const char *suffix)
{
    static char buf[4][4400];
    static int k;
    char *out = buf[k++ % 4];
    if (strchr(path, ' '))
        snprintf(out, sizeof buf[0], "%s\"%s\"%s", prefix, path, suffix);
    else
        snprintf(out, sizeof buf[0], "%s%s%s", prefix, path, suffix);
    return out;
}

static void append(campaign *cp, const char *line)
{
    size_t n = strlen(line);
    if (cp->text_len + n + 2 > cp->text_cap) {
        cp->text_cap = (cp->text_len + n + 2) * 2;
        cp->text = realloc(cp->text, cp->text_cap);
    }
    memcpy(cp->text + cp->text_len, line, n);
    cp->text_len += n;
    cp->text[cp->text_len++] = '\n';
    cp->text[cp->text_len] = '\0';
}

/* Format, record and execute one recipe line: 0, or -1 (ctx.failure says why). */
static int step(campaign *cp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int step(campaign *cp, const char *fmt, ...)
{
    char line[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    append(cp, line);
    fz_recipe r;
    char err[256];
    if (fz_recipe_parse(line, "campaign", &r, err, sizeof err) != 0 || r.count != 1) {
        fz_recipe_free(&r);
        snprintf(cp->ctx.failure, sizeof cp->ctx.failure, "campaign wrote a bad line: %.3000s", line);
        cp->ctx.recipe_error = true;
        return -1;
    }
    if (strcmp(r.lines[0].argv[0], "run") == 0 || strcmp(r.lines[0].argv[0], "expect-check-clean") == 0 ||
        strcmp(r.lines[0].argv[0], "expect-mtools-agree") == 0 || strcmp(r.lines[0].argv[0], "mount-walk") == 0)
        cp->runs++;
    int rc = mut_exec_line(&cp->ctx, &r.lines[0]);
    fz_recipe_free(&r);
    return rc;
}

/* ---- seeds ---- */

static int build_seeds(campaign *cp)
{
    (void)cp;
    for (size_t i = 0; i < SEED_COUNT; i++) {
        seed *s = &seeds[i];
        char path[700];
        s->img = fz_cached_image(s->name, s->spec, 0, &s->len, path, sizeof path);
        if (!s->img || !fz_view_init(&s->v, s->img, s->len)) {
            fprintf(stderr, "imgmut: no seed %s\n", s->name);
            return -1;
        }
        fz_manifest_build(&s->v, &s->m);
        s->files = calloc(s->m.count + 1, sizeof(char *));
        s->dirs = calloc(s->m.count + 2, sizeof(char *));
        s->dirs[s->ndirs++] = "/";
        for (size_t k = 0; k < s->m.count; k++) {
            if (s->m.entries[k].is_dir)
                s->dirs[s->ndirs++] = s->m.entries[k].path;
            else
                s->files[s->nfiles++] = s->m.entries[k].path;
        }
    }
    return 0;
}

/* ---- damage ---- */

static const char *any_file(campaign *cp, seed *s) { return s->nfiles ? s->files[below(cp, s->nfiles)] : "/readme.txt"; }
static const char *any_subdir(campaign *cp, seed *s)
{
    return s->ndirs > 1 ? s->dirs[1 + below(cp, s->ndirs - 1)] : "/sub";
}
static const char *any_entry(campaign *cp, seed *s)
{
    return below(cp, 3) == 0 ? any_subdir(cp, s) : any_file(cp, s);
}

/* The parent directory of a path ("/" for top-level names). */
static void parent_of(const char *path, char *out, size_t size)
{
    snprintf(out, size, "%s", path);
    char *slash = strrchr(out, '/');
    if (slash == out)
        out[1] = '\0';
    else if (slash)
        *slash = '\0';
}

/* A value for a cluster field: in range, out of range, another's, special. */
static void cluster_value(campaign *cp, seed *s, char *out, size_t size)
{
    switch (below(cp, 9)) {
    case 0: snprintf(out, size, "0"); break;
    case 1: snprintf(out, size, "1"); break;
    case 2: snprintf(out, size, "max+%u", (unsigned)below(cp, 3) + 1); break;
    case 3: snprintf(out, size, "root"); break;
    case 4: snprintf(out, size, "%s", q("@", any_entry(cp, s), "")); break;
    case 5: snprintf(out, size, "%s", q("@", any_subdir(cp, s), "")); break;
    case 6: snprintf(out, size, "eoc"); break;
    case 7: snprintf(out, size, "bad"); break;
    default: snprintf(out, size, "%u", (unsigned)(2 + below(cp, s->v.L.cluster_count))); break;
    }
}

static void boot_field(campaign *cp, seed *s, bool backup)
{
    static const struct { int off, width; } fields16[] = {
        {11, 16}, {13, 8}, {14, 16}, {16, 8}, {17, 16}, {19, 16}, {21, 8}, {22, 16}, {32, 32}, {38, 8}, {510, 16}, {0, 8}};
    static const struct { int off, width; } fields32[] = {
        {11, 16}, {13, 8}, {14, 16}, {16, 8}, {17, 16}, {19, 16}, {21, 8}, {22, 16}, {32, 32},
        {36, 32}, {40, 16}, {42, 16}, {44, 32}, {48, 16}, {50, 16}, {65, 8}, {510, 16}};
    bool fat32 = s->v.L.type == 32;
    int n = fat32 ? (int)(sizeof fields32 / sizeof fields32[0]) : (int)(sizeof fields16 / sizeof fields16[0]);
    int k = (int)below(cp, (uint64_t)n);
    int off = fat32 ? fields32[k].off : fields16[k].off, width = fat32 ? fields32[k].width : fields16[k].width;
    const uint8_t *b = s->img + off;
    uint32_t cur = width == 8 ? b[0] : width == 16 ? (uint32_t)(b[0] | b[1] << 8) : (uint32_t)(b[0] | b[1] << 8 | b[2] << 16 | (uint32_t)b[3] << 24);
    uint32_t v;
    switch (below(cp, 8)) {
    case 0: v = 0; break;
    case 1: v = cur + 1; break;
    case 2: v = cur - 1; break;
    case 3: v = cur * 2; break;
    case 4: v = cur / 2; break;
    case 5: v = 0xFFFFFFFFu; break;
    case 6: v = 1u << below(cp, (uint64_t)width); break;
    default: v = (uint32_t)rnd(cp); break;
    }
    const char *where = backup && fat32 ? "backup" : "boot";
    if (width == 8)
        step(cp, "poke %s+%d %02x", where, off, v & 0xFF);
    else
        step(cp, "poke%d %s+%d %u", width, where, off, width == 16 ? v & 0xFFFF : v);
}

static void fsinfo_field(campaign *cp, seed *s)
{
    if (s->v.L.type != 32)
        return boot_field(cp, s, false);
    static const int offs[] = {0, 484, 488, 492, 508};
    char value[64];
    cluster_value(cp, s, value, sizeof value);
    step(cp, "poke32 fsinfo+%d %s", offs[below(cp, 5)], below(cp, 2) ? value : "0xFFFFFFFF");
}

static void fat_entry(campaign *cp, seed *s)
{
    const char *path = any_entry(cp, s);
    char cluster[4400], value[4400];
    if (below(cp, 4) == 0)
        snprintf(cluster, sizeof cluster, "%u", (unsigned)below(cp, 40));
    else {
        /* A later cluster of the chain only where there is one. */
        const fz_manifest_entry *me = fz_manifest_find(&s->m, path);
        bool several = me && !me->is_dir && me->size > s->v.L.cluster_bytes;
        snprintf(cluster, sizeof cluster, "%s", q("@", path, several && below(cp, 2) ? "#1" : ""));
    }
    cluster_value(cp, s, value, sizeof value);
    if (below(cp, 3) == 0)
        snprintf(value, sizeof value, "%s", q("@", path, "")); /* a loop onto its own start */
    const char *copy = s->v.L.fat_count > 1 && below(cp, 2) ? (below(cp, 2) ? "1" : "0") : "all";
    step(cp, "fat %s %s %s", copy, cluster, value);
}

static void entry_field(campaign *cp, seed *s)
{
    const char *path = any_entry(cp, s);
    char value[4400];
    switch (below(cp, 5)) {
    case 0:
    case 1:
        cluster_value(cp, s, value, sizeof value);
        step(cp, "set %s cluster %s", q("", path, ""), value);
        break;
    case 2: {
        static const char *const sizes[] = {"0", "1", "511", "512", "0xFFFFFFFF", "0x80000000", "100000", "4096"};
        step(cp, "set %s size %s", q("", path, ""), sizes[below(cp, 8)]);
        break;
    }
    case 3: {
        static const char *const attrs[] = {"0x10", "0x0F", "0x08", "0x00", "0x01", "0x16", "0x3F", "0xFF"};
        step(cp, "set %s attr %s", q("", path, ""), attrs[below(cp, 8)]);
        break;
    }
    default: {
        static const char *const bytes[] = {"0xE5", "0x00", "0x05", "0x2E", "0x20", "0x2F", "0x61", "0xFF"};
        step(cp, "set %s byte0 %s", q("", path, ""), bytes[below(cp, 8)]);
        break;
    }
    }
}

static void name_bytes(campaign *cp, seed *s)
{
    static const uint8_t chars[] = {'a', '/', 0x00, 0xFF, ' ', '.', '?', 0x05, '"', 0x7F, 'A', 0xE5};
    const char *path = any_entry(cp, s);
    char off[16];
    snprintf(off, sizeof off, "+%u", (unsigned)below(cp, 11));
    step(cp, "poke %s %02x", q("entry:", path, off), chars[below(cp, sizeof chars)]);
}

static void lfn_bytes(campaign *cp, seed *s)
{
    static const char *const long_names[] = {"/a much longer name that needs several lfn slots.bin", "/sub/Mixed Case.Text",
                                             "/Long Directory Name", "/Long Directory Name/inner file.dat"};
    const char *path = long_names[below(cp, 4)];
    fz_dirent e;
    if (!fz_lookup(&s->v, path, &e) || e.lfn_count == 0)
        return name_bytes(cp, s);
    static const int offs[] = {0, 1, 11, 12, 13, 26, 14, 28, 32, 33, 45};
    int off = offs[below(cp, sizeof offs / sizeof offs[0])];
    uint8_t v = (uint8_t)(below(cp, 2) ? rnd(cp) : (uint64_t)(below(cp, 2) ? 0x41 : 0x01));
    char where[64];
    snprintf(where, sizeof where, "+%d", off);
    step(cp, "poke %s %02x", q("lfn:", path, where), v);
}

static void dot_entries(campaign *cp, seed *s)
{
    const char *dir = any_subdir(cp, s);
    char value[4400];
    cluster_value(cp, s, value, sizeof value);
    bool dotdot = below(cp, 2);
    switch (below(cp, 3)) {
    case 0: step(cp, "poke16 %s %s", q(dotdot ? "dotdot:" : "dot:", dir, "+26"), value); break;
    case 1: step(cp, "poke %s %02x", q(dotdot ? "dotdot:" : "dot:", dir, "+0"), below(cp, 2) ? 0xE5 : 'X'); break;
    default: step(cp, "poke %s %02x", q(dotdot ? "dotdot:" : "dot:", dir, "+11"), below(cp, 2) ? 0x20 : 0x0F); break;
    }
}

static void copy_structure(campaign *cp, seed *s)
{
    const char *a = any_entry(cp, s), *b = any_entry(cp, s);
    switch (below(cp, 4)) {
    case 0: step(cp, "copy %s %s 32", q("entry:", a, ""), q("entry:", b, "")); break; /* a duplicate entry */
    case 1: {
        const char *d1 = any_subdir(cp, s), *d2 = any_subdir(cp, s);
        step(cp, "copy %s %s %u", q("content:", d1, ""), q("content:", d2, ""), s->v.L.cluster_bytes);
        break;
    }
    case 2: step(cp, "copy fat0+%u fat1+%u %u", (unsigned)below(cp, 64), (unsigned)below(cp, 64), (unsigned)below(cp, 64) + 1); break;
    default: step(cp, "copy boot backup 512"); break;
    }
}

static void truncation(campaign *cp, seed *s)
{
    static const char *const where[] = {"data", "fat1", "root"};
    step(cp, "truncate %s+%u", where[below(cp, 3)], (unsigned)(below(cp, 8) * s->v.L.cluster_bytes + below(cp, 2) * 7));
}

/* Cycles and depth for the tree walkers. */
static void cycle(campaign *cp, seed *s)
{
    const char *dir = any_subdir(cp, s);
    char parent[4096];
    parent_of(dir, parent, sizeof parent);
    switch (below(cp, 4)) {
    case 0: step(cp, "set %s cluster root", q("", dir, "")); break;
    case 1:
        if (strcmp(parent, "/") != 0) {
            step(cp, "set %s cluster %s", q("", dir, ""), q("@", parent, ""));
            break;
        }
        /* fall through */
    case 2: step(cp, "set %s cluster %s", q("", dir, ""), q("@", any_subdir(cp, s), "")); break;
    default: step(cp, "fat all %s %s", q("@", dir, ""), q("@", dir, "")); break;
    }
}

static void damage(campaign *cp, seed *s)
{
    uint64_t n = 1 + below(cp, 3);
    for (uint64_t i = 0; i < n; i++) {
        if (cp->o->walkers && i == 0) {
            cycle(cp, s);
            continue;
        }
        switch (below(cp, 12)) {
        case 0: boot_field(cp, s, false); break;
        case 1: boot_field(cp, s, below(cp, 2)); break;
        case 2: fsinfo_field(cp, s); break;
        case 3: case 4: fat_entry(cp, s); break;
        case 5: case 6: entry_field(cp, s); break;
        case 7: lfn_bytes(cp, s); break;
        case 8: dot_entries(cp, s); break;
        case 9: copy_structure(cp, s); break;
        case 10: cycle(cp, s); break;
        default: if (below(cp, 3) == 0) truncation(cp, s); else name_bytes(cp, s); break;
        }
    }
}

/* ---- commands and oracles ---- */

static int fsck_accepts(campaign *cp)
{
    if (fz_build_sync(&cp->ctx.b) != 0)
        return 0;
    char *args[] = {"fsck.fat", "-n", cp->ctx.b.image, NULL};
    fz_proc_result r;
    if (fz_proc_run(args, NULL, 120, &r) != 0)
        return 0;
    int ok = !r.timed_out && !r.signal && r.exit_code == 0;
    fz_proc_result_free(&r);
    return ok;
}

static int act(campaign *cp, seed *s)
{
    bool accepted = fsck_accepts(cp);
    if (accepted) {
        if (step(cp, "expect-fsck-clean") != 0)
            return -1;
        if (below(cp, 2) && step(cp, "expect-mtools-agree") != 0)
            return -1;
    }
    const char *file = any_file(cp, s);
    if (cp->o->mount && below(cp, 4) == 0)
        return step(cp, accepted ? "mount-walk agree" : "mount-walk") || step(cp, "expect-unchanged");
    switch (below(cp, cp->o->walkers ? 2 : 8)) {
    case 0:
        return step(cp, "run ls -R IMG:/") || step(cp, "expect-unchanged");
    case 1:
        if (cp->o->walkers)
            return step(cp, "run ls -lR IMG:/") || step(cp, "run cp -r %s WORK/out", q("IMG:", any_subdir(cp, s), "")) ||
                   step(cp, "run rm -r %s", q("IMG:", any_subdir(cp, s), ""));
        return step(cp, "run cat %s", q("IMG:", file, "")) || step(cp, "expect-unchanged");
    case 2:
        return step(cp, "run check IMG") || step(cp, "expect-unchanged");
    case 3:
    case 4: {
        if (step(cp, "run check --repair IMG") != 0)
            return -1;
        int rc = 0;
        if (cp->ctx.last_exit == 1)
            rc = step(cp, "expect-check-clean");
        if (rc == 0 && accepted)
            rc = step(cp, "expect-fsck-clean") || step(cp, "expect-files-kept");
        return rc;
    }
    case 5:
    case 6: {
        char dest[4200];
        snprintf(dest, sizeof dest, "%s/copied file %u.bin", strcmp(any_subdir(cp, s), "/") ? any_subdir(cp, s) : "",
                 (unsigned)below(cp, 100));
        if (step(cp, "local new.bin %u", (unsigned)(below(cp, 3) * 4096 + below(cp, 5000))) != 0 ||
            step(cp, "run cp WORK/new.bin %s", q("IMG:", dest, "")) != 0)
            return -1;
        if (step(cp, "expect-data-kept %s", q("", dest, "")) || step(cp, "expect-files-kept %s", q("", dest, "")))
            return -1;
        return accepted && cp->ctx.last_exit == 0 ? step(cp, "expect-fsck-clean") : 0;
    }
    default: {
        char dest[4200];
        snprintf(dest, sizeof dest, "%s/NEWDIR%u", strcmp(any_subdir(cp, s), "/") ? any_subdir(cp, s) : "",
                 (unsigned)below(cp, 100));
        if (step(cp, "run mkdir %s", q("IMG:", dest, "")) != 0)
            return -1;
        if (step(cp, "expect-data-kept") || step(cp, "expect-files-kept"))
            return -1;
        return accepted && cp->ctx.last_exit == 0 ? step(cp, "expect-fsck-clean") : 0;
    }
    }
}

/* A failure's kind: its text with numbers and quoted names blurred. */
static void signature_of(const char *failure, char *out, size_t size)
{
    size_t o = 0;
    bool in_digits = false;
    for (const char *p = failure; *p && o + 2 < size; p++) {
        if (isdigit((unsigned char)*p)) {
            if (!in_digits)
                out[o++] = '#';
            in_digits = true;
            continue;
        }
        in_digits = false;
        if (*p == '/') { /* paths: keep only that there was one */
            while (p[1] && p[1] != ' ' && p[1] != ':' && p[1] != ',' && p[1] != ')')
                p++;
            out[o++] = '@';
            continue;
        }
        out[o++] = *p;
    }
    out[o] = '\0';
    /* keep the head: what failed, not the details */
    char *cut = strstr(out, " [");
    if (cut)
        *cut = '\0';
    if (o > 160)
        out[160] = '\0';
}

static void record_failure(campaign *cp, seed *s)
{
    cp->failures++;
    char sig[512];
    signature_of(cp->ctx.failure, sig, sizeof sig);
    size_t k = 0;
    while (k < cp->nsignatures && strcmp(cp->signatures[k], sig) != 0)
        k++;
    if (k < cp->nsignatures) {
        cp->signature_count[k]++;
        return;
    }
    if (k == 256)
        return;
    cp->signatures[k] = strdup(sig);
    cp->signature_count[k] = 1;
    cp->nsignatures++;
    char path[1024];
    snprintf(path, sizeof path, "%s/found-%03zu.recipe", cp->o->out_dir, k);
    FILE *f = fopen(path, "w");
    if (!f)
        return;
    fprintf(f, "# Found by imgmut campaign (seed %llu, round %llu).\n# %s\n", (unsigned long long)cp->o->seed,
            (unsigned long long)cp->rounds, cp->ctx.failure);
    fprintf(f, "%s%s", s->spec, cp->text);
    fclose(f);
    printf("imgmut: new failure %zu (%s): %s\n", k, path, cp->ctx.failure);
    fflush(stdout);
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int mut_campaign(const mut_env *env, const mut_campaign_options *o)
{
    campaign cp;
    memset(&cp, 0, sizeof cp);
    cp.env = env;
    cp.o = o;
    cp.rng = o->seed;
    mkdir(o->out_dir, 0755);
    double start = now_seconds();
    if (build_seeds(&cp) != 0)
        return 1;
    while (o->rounds ? cp.rounds < o->rounds : now_seconds() - start < o->seconds) {
        seed *s = &seeds[o->walkers && below(&cp, 2) ? 4 : below(&cp, SEED_COUNT)];
        char dir[600];
        if (mut_make_workdir(env, dir, sizeof dir) != 0)
            return 1;
        mut_ctx_init(&cp.ctx, env, dir);
        cp.ctx.timeout = o->walkers ? 20 : 30;
        cp.text_len = 0;
        if (cp.text)
            cp.text[0] = '\0';
        cp.rounds++;
        if (fz_build_adopt(&cp.ctx.b, s->img, s->len, NULL) == 0) {
            damage(&cp, s);
            if (!cp.ctx.recipe_error && !cp.ctx.failure[0] && act(&cp, s) != 0 && !cp.ctx.recipe_error)
                record_failure(&cp, s);
            else if (cp.ctx.recipe_error && env->verbose)
                fprintf(stderr, "imgmut: skipped a round: %s\n", cp.ctx.failure);
            if (env->verbose)
                fprintf(stderr, "imgmut: round %llu on %s:\n%s", (unsigned long long)cp.rounds, s->name,
                        cp.text ? cp.text : "");
        }
        mut_ctx_fini(&cp.ctx);
        mut_remove_workdir(dir);
    }
    printf("imgmut campaign: %llu images, %llu command runs, %llu failures of %zu kinds in %.0f s (seed %llu)\n",
           (unsigned long long)cp.rounds, (unsigned long long)cp.runs, (unsigned long long)cp.failures, cp.nsignatures,
           now_seconds() - start, (unsigned long long)o->seed);
    for (size_t k = 0; k < cp.nsignatures; k++) {
        printf("  %5u x  found-%03zu: %s\n", cp.signature_count[k], k, cp.signatures[k]);
        free(cp.signatures[k]);
    }
    fflush(stdout);
    for (size_t i = 0; i < SEED_COUNT; i++) {
        fz_manifest_free(&seeds[i].m);
        free(seeds[i].files);
        free(seeds[i].dirs);
        if (seeds[i].img)
            munmap(seeds[i].img, seeds[i].len);
        seeds[i].img = NULL;
        seeds[i].nfiles = seeds[i].ndirs = 0;
    }
    free(cp.text);
    return 0;
}

/* ---- minimiser ---- */

static bool is_damage(const fz_line *l)
{
    static const char *const steps[] = {"poke", "poke16", "poke32", "fat", "set", "copy", "truncate"};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        if (strcmp(l->argv[0], steps[i]) == 0)
            return true;
    return false;
}

int mut_minimize(const mut_env *env, const char *in, const char *out)
{
    fz_recipe r;
    char err[1024];
    if (fz_recipe_load(in, &r, err, sizeof err) != 0) {
        fprintf(stderr, "imgmut: %s\n", err);
        return 1;
    }
    mut_ctx c;
    if (mut_run_recipe(env, &r, &c) == 0) {
        fprintf(stderr, "imgmut: %s passes; nothing to minimise\n", in);
        mut_ctx_fini(&c);
        return 1;
    }
    char want[512];
    signature_of(c.failure, want, sizeof want);
    mut_ctx_fini(&c);
    bool *drop = calloc(r.count, sizeof(bool));
    for (size_t i = 0; i < r.count; i++) {
        if (!is_damage(&r.lines[i]))
            continue;
        fz_recipe t = r;
        t.lines = malloc(r.count * sizeof(fz_line));
        t.count = 0;
        for (size_t k = 0; k < r.count; k++)
            if (k != i && !drop[k])
                t.lines[t.count++] = r.lines[k];
        int rc = mut_run_recipe(env, &t, &c);
        char got[512];
        signature_of(c.failure, got, sizeof got);
        if (rc != 0 && !c.recipe_error && strcmp(got, want) == 0) {
            drop[i] = true;
            fprintf(stderr, "imgmut: line %d is not needed\n", r.lines[i].lineno);
        }
        mut_ctx_fini(&c);
        free(t.lines);
    }
    /* Write the lines that stay, as they were. */
    size_t len;
    uint8_t *text = fz_read_file(in, &len);
    FILE *f = fopen(out, "w");
    if (!text || !f) {
        free(text);
        free(drop);
        if (f)
            fclose(f);
        return 1;
    }
    int lineno = 0;
    size_t at = 0;
    while (at < len) {
        size_t n = 0;
        while (at + n < len && text[at + n] != '\n')
            n++;
        lineno++;
        bool skip = false;
        for (size_t i = 0; i < r.count; i++)
            if (r.lines[i].lineno == lineno && drop[i])
                skip = true;
        if (!skip)
            fprintf(f, "%.*s\n", (int)n, (const char *)text + at);
        at += n + 1;
    }
    fclose(f);
    free(text);
    free(drop);
    fz_recipe_free(&r);
    return 0;
}
