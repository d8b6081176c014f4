/* powercut: record a workload's writes, rebuild the device at every cut, check each image.
 *
 * Three images are kept while replaying the log: `durable` (what the last completed FLUSH
 * made permanent), `cur` (every write so far: the prefix cut) and `work` (the check
 * fixture's device, a cut image: cur, or durable plus a subset of the writes since the
 * last FLUSH). A check writes to `work` (recovery, unmount); afterwards the blocks it or
 * a variant touched are copied back from `cur`, so a check costs what it changes, not the
 * image size. fsck.fat reads a file that mirrors `work`, rewritten only where stale. */
#include "tests/powercut/powercut.h"

#include "fat/fat_check.h"
#include "fat/fat_layout.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Failures printed in full per workload (POWERCUT_REPORTS overrides); the rest are counted
 * by kind. */
static uint64_t max_reports(void)
{
    const char *e = getenv("POWERCUT_REPORTS");
    return e ? strtoull(e, NULL, 10) : 6u;
}

bool pc_exhaustive(void)
{
    const char *e = getenv("POWERCUT");
    return e && strcmp(e, "full") == 0;
}

static int64_t fixed_clock(void *ctx)
{
    (void)ctx;
    return 1700000000;
}

static uint64_t mix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    while (*s)
        h = (h ^ (uint8_t)*s++) * 1099511628211ull;
    return h;
}

/* ---- a mounted engine on a fixture ------------------------------------------------------- */

typedef struct pc_engine {
    blk_fixture f;
    fat_config cfg;
    void *mem;
    fat_volume vol;
} pc_engine;

static bool engine_init(pc_engine *e, const char *image, uint64_t image_bytes, bool random_order, uint64_t seed)
{
    memset(e, 0, sizeof(*e));
    blk_fixture_options o = blk_fixture_defaults();
    o.image_path = image;
    o.image_bytes = image_bytes;
    o.random_order = random_order;
    o.seed = seed;
    o.fibers = 32;
    if (blk_fixture_init(&e->f, &o) != 0)
        return false;
    e->cfg = fat_config_defaults();
    e->cfg.clock = fixed_clock;
    e->cfg.max_nodes = 64;
    e->cfg.index_entries = 4096;
    e->cfg.runs_per_node = 8;
    size_t bytes = fat_memory_total(&e->cfg, e->f.image_bytes);
    e->mem = malloc(bytes);
    return fat_config_place_memory(&e->cfg, e->f.image_bytes, e->mem, bytes);
}

static void engine_fini(pc_engine *e)
{
    blk_fixture_fini(&e->f);
    free(e->mem);
    e->mem = NULL;
}

typedef struct mount_job {
    pc_engine *e;
    fs_status st;
} mount_job;

static void do_mount(blk_fixture *f, void *arg)
{
    (void)f;
    mount_job *j = arg;
    j->st = fat_mount(&j->e->vol, &j->e->f.cache, &j->e->cfg, NULL);
}

static void do_unmount(blk_fixture *f, void *arg)
{
    (void)f;
    mount_job *j = arg;
    j->st = fat_unmount(&j->e->vol);
}

/* ---- recording ------------------------------------------------------------------------------ */

typedef struct fiber_job {
    const pc_workload *w;
    pc_ctx *c;
    uint32_t index;
} fiber_job;

static void *fiber_entry(void *arg)
{
    fiber_job *j = arg;
    j->w->run(j->c, j->index);
    return NULL;
}

static void setup_entry(blk_fixture *f, void *arg)
{
    (void)f;
    fiber_job *j = arg;
    if (j->w->setup)
        j->w->setup(j->c);
    if (!j->c->failed)
        pc_sync(j->c);
}

/* The model after setup: each file's last state, durable before the recorded run. */
static void model_settle(pc_model *m)
{
    uint32_t out = 0;
    for (uint32_t i = 0; i < m->nfiles; i++) {
        pc_file *f = &m->files[i];
        pc_version last = f->v[f->nv - 1];
        for (uint32_t j = 0; j + 1 < f->nv; j++) {
            free(f->v[j].path);
            free(f->v[j].data);
        }
        if (!last.path) {
            free(last.data);
            free(f->v);
            free(f->d);
            continue;
        }
        last.start = 0;
        f->v[0] = last;
        f->nv = 1;
        f->d[0] = (pc_durable){ -1, 0 };
        f->nd = 1;
        m->files[out++] = *f;
    }
    m->nfiles = out;
}

/* ---- the replay state ---------------------------------------------------------------------- */

typedef struct pc_replay {
    const pc_workload *w;
    const pc_image_spec *spec;
    bool exhaustive;
    pc_stats *stats;
    pc_model *model;
    blk_fixture *rec;           /* the recorded run: its device log is the journal */
    uint64_t blocks;
    uint8_t *durable, *cur;
    uint8_t *stale;             /* blocks where the fsck mirror file may differ from work */
    pc_engine rig;              /* the check fixture: rig.f.image is `work` */
    uint8_t *work;
    fat_geometry geo;
    void *check_work;
    size_t check_work_size;
    const char *mirror;
    int mirror_fd;
    uint64_t checks;
    uint64_t reports;
    bool dead;                  /* the rig is stuck (a hung task): stop */
    char msgs[4096];
    size_t msgs_len;
    struct {
        char what[160];
        uint64_t count;
    } kinds[32];                /* failures by kind, for the summary */
    uint32_t nkinds;
} pc_replay;

typedef struct pc_cut {
    uint64_t entry;             /* cut inside or after this log entry */
    uint32_t blocks;            /* prefix: blocks of `entry` on the device */
    int64_t flush;              /* the last FLUSH that completed before the cut */
    int variant;                /* -1: prefix cut; else the lost-write variant */
} pc_cut;

static void set_work_block(pc_replay *r, uint64_t block, const uint8_t *data)
{
    memcpy(r->work + block * BLK_TRANSFER_SIZE, data, BLK_TRANSFER_SIZE);
    r->stale[block] = 1;
}

static void restore_block(pc_replay *r, uint64_t block)
{
    if (memcmp(r->work + block * BLK_TRANSFER_SIZE, r->cur + block * BLK_TRANSFER_SIZE, BLK_TRANSFER_SIZE) != 0)
        set_work_block(r, block, r->cur + block * BLK_TRANSFER_SIZE);
}

static bool mirror_sync(pc_replay *r)
{
    for (uint64_t b = 0; b < r->blocks; b++) {
        if (!r->stale[b])
            continue;
        if (pwrite(r->mirror_fd, r->work + b * BLK_TRANSFER_SIZE, BLK_TRANSFER_SIZE, (off_t)(b * BLK_TRANSFER_SIZE)) !=
            BLK_TRANSFER_SIZE)
            return false;
        r->stale[b] = 0;
    }
    return true;
}

/* Lines of a checker's or fsck.fat's report that a cut may leave before recovery. */
static bool benign_line(const char *line)
{
    static const char *const benign[] = {
        "fsck.fat ", "Leaving filesystem unchanged", " files, ", "Reclaimed ", "FATs differ but appear",
        "  Using first FAT", "Dirty bit is set", " Automatically removing dirty bit", "Free cluster summary",
        "  Auto-correcting", "lost cluster", "differs from FAT", "not cleanly unmounted", "dirty flag is set",
        "chain has ", "(the image as cut"};
    if (!line[0])
        return true;
    for (size_t i = 0; i < sizeof benign / sizeof benign[0]; i++)
        if (strstr(line, benign[i]))
            return true;
    return false;
}

/* A failure's kind: what, and the first line of the detail that a cut may not leave (or
 * the first line), numbers elided. */
static void count_kind(pc_replay *r, const char *what, const char *detail)
{
    char k[160];
    size_t n = 0;
    for (const char *p = what; *p && n + 1 < sizeof k; p++)
        k[n++] = *p;
    if (detail) {
        const char *line = detail, *first = NULL;
        for (const char *p = detail; *p;) {
            const char *e = strchr(p, '\n');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            char buf[256];
            snprintf(buf, sizeof buf, "%.*s", (int)(len < sizeof buf ? len : sizeof buf - 1), p);
            if (!first && buf[0])
                first = p;
            if (!benign_line(buf)) {
                first = p;
                break;
            }
            p += len + (e ? 1 : 0);
        }
        line = first ? first : detail;
        if (n + 1 < sizeof k)
            k[n++] = ' ';
        bool digits = false;
        for (const char *p = line; *p && *p != '\n' && n + 1 < sizeof k; p++) {
            bool d = *p >= '0' && *p <= '9';
            if (d && digits)
                continue;
            k[n++] = d ? 'N' : *p;
            digits = d;
        }
    }
    k[n] = '\0';
    for (uint32_t i = 0; i < r->nkinds; i++)
        if (strcmp(r->kinds[i].what, k) == 0) {
            r->kinds[i].count++;
            return;
        }
    if (r->nkinds < sizeof r->kinds / sizeof r->kinds[0]) {
        snprintf(r->kinds[r->nkinds].what, sizeof r->kinds[0].what, "%s", k);
        r->kinds[r->nkinds++].count = 1;
    }
}

static void report(pc_replay *r, const pc_cut *cut, const char *what, const char *detail)
{
    r->stats->failures++;
    count_kind(r, what, detail);
    if (r->reports++ >= max_reports())
        return;
    printf("powercut %s fat%d: cut after log entry %llu", r->w->name, r->spec->fat, (unsigned long long)cut->entry);
    if (cut->variant < 0)
        printf(" (block %u)", cut->blocks);
    else
        printf(" (lost-write variant %d of the epoch before it)", cut->variant);
    printf(": %s\n%s%s", what, detail ? detail : "", detail && *detail && detail[strlen(detail) - 1] != '\n' ? "\n" : "");
    if (r->reports == 1) {
        char name[64];
        snprintf(name, sizeof name, "failed-%s-fat%d.img", r->w->name, r->spec->fat);
        const char *path = tmp_path(name);
        if (file_write_all(path, r->work, r->blocks * BLK_TRANSFER_SIZE) == 0)
            printf("  (the image as cut, before recovery, is %s)\n", path);
    }
}

/* ---- checkers ------------------------------------------------------------------------------- */

static void collect_msg(void *ctx, const char *message)
{
    pc_replay *r = ctx;
    size_t n = strlen(message);
    if (r->msgs_len + n + 2 < sizeof r->msgs) {
        memcpy(r->msgs + r->msgs_len, message, n);
        r->msgs_len += n;
        r->msgs[r->msgs_len++] = '\n';
        r->msgs[r->msgs_len] = '\0';
    }
}

typedef struct check_job {
    pc_replay *r;
    fs_status st;
    fat_check_result res;
} check_job;

static void do_check(blk_fixture *f, void *arg)
{
    check_job *j = arg;
    fat_check_options o = { .repair = false, .work = j->r->check_work, .work_size = j->r->check_work_size,
                            .log = collect_msg, .log_ctx = j->r };
    j->st = fat_check_run(&f->cache, &j->r->geo, &o, &j->res);
}

static bool run_checker(pc_replay *r, fat_check_result *res)
{
    check_job j = { .r = r };
    r->msgs_len = 0;
    r->msgs[0] = '\0';
    blk_cache_invalidate(&r->rig.f.cache);
    if (!fixture_call(&r->rig.f, do_check, &j)) {
        r->dead = true;
        return false;
    }
    *res = j.res;
    return j.st == FS_STATUS_SUCCESS;
}

/* Findings a cut may leave before recovery: lost clusters, FAT copies that differ, the
 * dirty flags, and chains longer than their files. */
static bool checker_acceptable(const pc_replay *r, const fat_check_result *res)
{
    if (res->bad_links || res->loops || res->cross_links || res->bad_entries || res->orphan_lfns ||
        res->fsinfo_errors || res->boot_errors || res->too_deep)
        return false;
    if (res->size_mismatches) {
        /* every size finding must be a chain longer than the size needs */
        uint32_t longer = 0;
        for (const char *p = r->msgs; (p = strstr(p, "chain has ")); p++)
            longer++;
        if (longer != res->size_mismatches)
            return false;
    }
    return true;
}

/* fsck.fat -n on the mirror: its exit status, its output in r->msgs. */
static int run_fsck(pc_replay *r)
{
    r->stats->fsck_runs++;
    r->msgs_len = 0;
    r->msgs[0] = '\0';
    if (!mirror_sync(r))
        return -1;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "fsck.fat -n '%s' 2>&1", r->mirror);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    char line[512];
    while (fgets(line, sizeof line, p))
        collect_msg(r, line[0] && line[strlen(line) - 1] == '\n' ? (line[strlen(line) - 1] = '\0', line) : line);
    int rc = pclose(p);
    return rc == -1 || !WIFEXITED(rc) ? -1 : WEXITSTATUS(rc);
}

static bool starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* fsck.fat's report of a cut image, item by item: only lost clusters, differing FATs, the
 * dirty bit, the FSInfo count and files whose chain is longer than their size. */
static bool fsck_acceptable(const pc_replay *r)
{
    const char *p = r->msgs;
    while (*p) {
        const char *end = strchr(p, '\n');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        char line[512];
        snprintf(line, sizeof line, "%.*s", (int)(n < sizeof line ? n : sizeof line - 1), p);
        p += n + (end ? 1 : 0);
        if (!line[0] || starts(line, "fsck.fat ") || starts(line, "Leaving filesystem unchanged") ||
            strstr(line, " files, ") || starts(line, "Reclaimed ") || starts(line, "FATs differ but appear") ||
            starts(line, "  Using first FAT") || starts(line, "Dirty bit is set") ||
            starts(line, " Automatically removing dirty bit") || starts(line, "Free cluster summary") ||
            starts(line, "  Auto-correcting"))
            continue;
        if (line[0] == '/') {
            /* A path, then what is wrong with it: only a chain longer than the size. */
            const char *next = strchr(p, '\n');
            unsigned size, chain;
            if (!next || sscanf(p, "  File size is %u bytes, cluster chain length is > %u bytes.", &size, &chain) != 2 ||
                size > chain)
                return false;
            p = next + 1;
            if (starts(p, "  Truncating file to ")) {
                const char *e2 = strchr(p, '\n');
                p = e2 ? e2 + 1 : p + strlen(p);
            }
            continue;
        }
        return false;
    }
    return true;
}

/* ---- the model against the recovered volume ------------------------------------------------- */

typedef struct model_job {
    pc_replay *r;
    const pc_cut *cut;
    char why[1024];
    bool ok;
} model_job;

static bool content_matches(const uint8_t *got, uint32_t size, const pc_version **acc, uint32_t n)
{
    bool size_ok = false;
    for (uint32_t i = 0; i < n; i++)
        size_ok |= acc[i]->path && acc[i]->size == size;
    if (!size_ok)
        return false;
    for (uint32_t o = 0; o < size; o++) {
        bool ok = false;
        for (uint32_t i = 0; i < n && !ok; i++)
            ok = acc[i]->path && acc[i]->size > o && acc[i]->data[o] == got[o];
        if (!ok)
            return false;
    }
    return true;
}

static void check_model(blk_fixture *f, void *arg)
{
    (void)f;
    model_job *j = arg;
    pc_replay *r = j->r;
    fat_volume *vol = &r->rig.vol;
    pc_model *m = r->model;
    j->ok = true;
    for (uint32_t i = 0; i < m->nfiles && j->ok; i++) {
        pc_file *file = &m->files[i];
        int best = -1;
        for (uint32_t d = 0; d < file->nd; d++)
            if (file->d[d].flush <= j->cut->flush)
                best = (int)d;
        if (best < 0)
            continue;
        uint32_t from = file->d[best].version;
        const pc_version *acc[64];
        uint32_t n = 0;
        bool absent_ok = false;
        for (uint32_t v = from; v < file->nv && n < 64; v++) {
            if (v > from && file->v[v].start > j->cut->entry)
                break;
            acc[n++] = &file->v[v];
            absent_ok |= file->v[v].path == NULL;
        }
        if (acc[0]->path == NULL)
            continue; /* durably gone: its name may be anyone's now */
        uint32_t found = 0;
        char where[512] = "";
        for (uint32_t a = 0; a < n; a++) {
            const char *path = acc[a]->path;
            if (!path)
                continue;
            bool seen = false;
            for (uint32_t b = 0; b < a; b++)
                seen |= acc[b]->path && strcmp(acc[b]->path, path) == 0;
            if (seen)
                continue;
            fs_stat st;
            fs_status s = fat_stat(vol, path, strlen(path), &st);
            if (s == FS_STATUS_NO_FILE || s == FS_STATUS_NOT_DIRECTORY)
                continue;
            if (s != FS_STATUS_SUCCESS) {
                snprintf(j->why, sizeof j->why, "stat %s: status %d", path, s);
                j->ok = false;
                break;
            }
            bool is_dir = (st.mode & FS_MODE_DIRECTORY) != 0;
            if (is_dir != file->is_dir)
                continue;
            if (!is_dir) {
                uint8_t *got;
                size_t len;
                s = tv_read_file(vol, path, &got, &len);
                if (s != FS_STATUS_SUCCESS) {
                    snprintf(j->why, sizeof j->why, "read %s: status %d", path, s);
                    j->ok = false;
                    break;
                }
                bool match = content_matches(got, (uint32_t)len, acc, n);
                if (!match) {
                    uint32_t o = 0;
                    while (o < len && o < acc[0]->size && got[o] == acc[0]->data[o])
                        o++;
                    size_t w = strlen(where);
                    snprintf(where + w, sizeof where - w, " %s(%zu bytes, differs from the durable version at %u)",
                             path, len, o);
                    free(got);
                    continue;
                }
                free(got);
            }
            size_t w = strlen(where);
            snprintf(where + w, sizeof where - w, " %s", path);
            found++;
        }
        if (!j->ok)
            break;
        if (found == 1 || (found == 0 && absent_ok))
            continue;
        j->ok = false;
        int w = snprintf(j->why, sizeof j->why, "%s made durable as %s (%u bytes)%s is found %u times:%s; may be",
                         file->is_dir ? "directory" : "file", acc[0]->path, acc[0]->size,
                         absent_ok ? " (or gone)" : "", found, where);
        for (uint32_t a = 0; a < n && w > 0 && (size_t)w < sizeof j->why; a++)
            w += snprintf(j->why + w, sizeof j->why - (size_t)w, " %s/%u", acc[a]->path ? acc[a]->path : "(gone)",
                          acc[a]->size);
    }
}

/* ---- one cut ------------------------------------------------------------------------------------ */

static bool sample_fsck(pc_replay *r)
{
    if (!tool_available("fsck.fat"))
        return false;
    return r->exhaustive || mix(r->checks ^ hash_str(r->w->name) ^ (uint64_t)r->spec->fat) % 10 == 0;
}

/* Copy back from cur every block the last check wrote. */
static void restore_written(pc_replay *r)
{
    ram_device *dev = &r->rig.f.dev;
    for (uint64_t i = 0; i < ram_device_log_count(dev); i++) {
        const ram_device_log_entry *e = ram_device_log_at(dev, i);
        if (e->code != BLK_REQ_WRITE)
            continue;
        for (uint32_t b = 0; b < e->written; b++)
            r->stale[e->block + b] = 1, restore_block(r, e->block + b);
    }
    ram_device_clear_log(dev);
}

static void flush_rig(blk_fixture *f, void *arg)
{
    (void)arg;
    blk_cache_flush(&f->cache);
}

static void check_cut(pc_replay *r, const pc_cut *cut)
{
    if (r->dead)
        return;
    r->checks++;
    if (cut->variant < 0)
        r->stats->cuts++;
    else
        r->stats->variants++;
    bool fsck = sample_fsck(r);
    fat_check_result res;
    ram_device_clear_log(&r->rig.f.dev);

    /* Before recovery. */
    if (!run_checker(r, &res)) {
        report(r, cut, "the engine's checker could not run", NULL);
        return;
    }
    if (!checker_acceptable(r, &res))
        report(r, cut, "before recovery, the engine's checker finds damage a cut must not leave:", r->msgs);
    if (fsck) {
        int rc = run_fsck(r);
        if (rc < 0 || rc > 1 || !fsck_acceptable(r))
            report(r, cut, "before recovery, fsck.fat -n finds damage a cut must not leave:", r->msgs);
    }

    /* Recovery: mount read-write, check the model, unmount. */
    blk_cache_invalidate(&r->rig.f.cache);
    mount_job mj = { .e = &r->rig };
    if (!fixture_call(&r->rig.f, do_mount, &mj)) {
        r->dead = true;
        report(r, cut, "mount hung", NULL);
        return;
    }
    if (mj.st != FS_STATUS_SUCCESS) {
        char d[64];
        snprintf(d, sizeof d, "status %d", mj.st);
        report(r, cut, "mount failed", d);
    } else {
        model_job j = { .r = r, .cut = cut };
        if (!fixture_call(&r->rig.f, check_model, &j)) {
            r->dead = true;
            report(r, cut, "reading the recovered volume hung", NULL);
            return;
        }
        if (!j.ok)
            report(r, cut, "after recovery, durable data is not intact:", j.why);
        if (!fixture_call(&r->rig.f, do_unmount, &mj)) {
            r->dead = true;
            report(r, cut, "unmount hung", NULL);
            return;
        }
        if (mj.st != FS_STATUS_SUCCESS) {
            char d[64];
            snprintf(d, sizeof d, "status %d", mj.st);
            report(r, cut, "unmount failed", d);
        }
        /* After recovery: nothing at all. */
        if (!run_checker(r, &res))
            report(r, cut, "the engine's checker could not run after recovery", NULL);
        else if (res.problems != 0)
            report(r, cut, "after recovery, the engine's checker still finds:", r->msgs);
        if (fsck) {
            int rc = run_fsck(r);
            if (rc != 0)
                report(r, cut, "after recovery, fsck.fat -n still finds:", r->msgs);
        }
    }
    fixture_call(&r->rig.f, flush_rig, NULL);
    restore_written(r);
    blk_cache_invalidate(&r->rig.f.cache);
}

/* ---- walking the journal ------------------------------------------------------------------------ */

typedef struct unit {
    uint64_t entry;
    uint32_t block_in_entry;
} unit;

static bool sample_unit(const pc_replay *r, uint64_t n)
{
    if (r->exhaustive)
        return true;
    return mix(n * 0x100000001B3ull ^ hash_str(r->w->name) ^ (uint64_t)r->spec->fat * 77) % 8 == 0;
}

/* Lost-write variants of the epoch [first, flush): writes since the previous FLUSH. */
static void epoch_variants(pc_replay *r, uint64_t first, uint64_t flush, int64_t prev_flush)
{
    ram_device *dev = &r->rec->dev;
    unit *units = NULL;
    uint32_t n = 0, cap = 0;
    for (uint64_t i = first; i < flush; i++) {
        const ram_device_log_entry *e = ram_device_log_at(dev, i);
        if (e->code != BLK_REQ_WRITE)
            continue;
        for (uint32_t b = 0; b < e->written; b++) {
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                units = realloc(units, cap * sizeof(*units));
            }
            units[n++] = (unit){ i, b };
        }
    }
    int variants = r->exhaustive ? 4 : (mix(flush ^ hash_str(r->w->name) ^ (uint64_t)r->spec->fat) % 3 == 0 ? 1 : 0);
    if (n < 2)
        variants = 0;
    uint8_t *keep = malloc(n ? n : 1);
    for (int v = 0; v < variants && !r->dead; v++) {
        uint64_t s = mix(flush * 131 + (uint64_t)v + hash_str(r->w->name));
        uint32_t kept = 0;
        for (uint32_t u = 0; u < n; u++) {
            s = mix(s);
            keep[u] = s & 1;
            kept += keep[u];
        }
        if (kept == n)
            keep[s % n] = 0;
        /* durable, then the kept writes in order, over every block the epoch touched */
        for (uint32_t u = 0; u < n; u++) {
            uint64_t block = ram_device_log_at(dev, units[u].entry)->block + units[u].block_in_entry;
            set_work_block(r, block, r->durable + block * BLK_TRANSFER_SIZE);
        }
        for (uint32_t u = 0; u < n; u++) {
            if (!keep[u])
                continue;
            const ram_device_log_entry *e = ram_device_log_at(dev, units[u].entry);
            set_work_block(r, e->block + units[u].block_in_entry,
                           e->data + (size_t)units[u].block_in_entry * BLK_TRANSFER_SIZE);
        }
        pc_cut cut = { .entry = flush, .blocks = 0, .flush = prev_flush, .variant = v };
        check_cut(r, &cut);
        for (uint32_t u = 0; u < n; u++)
            restore_block(r, ram_device_log_at(dev, units[u].entry)->block + units[u].block_in_entry);
    }
    free(keep);
    /* The FLUSH makes the epoch durable. */
    for (uint32_t u = 0; u < n; u++) {
        uint64_t block = ram_device_log_at(dev, units[u].entry)->block + units[u].block_in_entry;
        memcpy(r->durable + block * BLK_TRANSFER_SIZE, r->cur + block * BLK_TRANSFER_SIZE, BLK_TRANSFER_SIZE);
    }
    free(units);
}

static void replay(pc_replay *r)
{
    ram_device *dev = &r->rec->dev;
    uint64_t n = ram_device_log_count(dev), unit_no = 0, epoch_first = 0;
    if (getenv("POWERCUT_TRACE"))
        for (uint64_t i = 0; i < n; i++) {
            const ram_device_log_entry *e = ram_device_log_at(dev, i);
            static const char *const names[] = {"READ", "WRITE", "FLUSH", "BARRIER"};
            printf("  log %llu: %s block %llu count %u\n", (unsigned long long)i, e->code < 4 ? names[e->code] : "?",
                   (unsigned long long)e->block, e->count);
        }
    int64_t flush = -1;
    for (uint64_t i = 0; i < n && !r->dead; i++) {
        const ram_device_log_entry *e = ram_device_log_at(dev, i);
        if (e->code == BLK_REQ_FLUSH && e->status == BLK_RESP_OK) {
            r->stats->flushes++;
            epoch_variants(r, epoch_first, i, flush);
            flush = (int64_t)i;
            epoch_first = i + 1;
            continue;
        }
        if (e->code != BLK_REQ_WRITE)
            continue;
        for (uint32_t b = 0; b < e->written && !r->dead; b++) {
            uint64_t block = e->block + b;
            const uint8_t *data = e->data + (size_t)b * BLK_TRANSFER_SIZE;
            memcpy(r->cur + block * BLK_TRANSFER_SIZE, data, BLK_TRANSFER_SIZE);
            set_work_block(r, block, data);
            r->stats->writes++;
            if (sample_unit(r, unit_no++)) {
                pc_cut cut = { .entry = i, .blocks = b + 1, .flush = flush, .variant = -1 };
                check_cut(r, &cut);
            }
        }
    }
}

/* ---- one workload ---------------------------------------------------------------------------------- */

typedef struct final_job {
    pc_engine *e;
    pc_model *m;
    char why[512];
} final_job;

/* Without a cut, every file is exactly as the model's last version says. */
static void check_final(blk_fixture *f, void *arg)
{
    (void)f;
    final_job *j = arg;
    for (uint32_t i = 0; i < j->m->nfiles && !j->why[0]; i++) {
        const pc_file *file = &j->m->files[i];
        const pc_version *v = &file->v[file->nv - 1];
        if (!v->path)
            continue;
        fs_stat st;
        fs_status s = fat_stat(&j->e->vol, v->path, strlen(v->path), &st);
        if (s != FS_STATUS_SUCCESS || ((st.mode & FS_MODE_DIRECTORY) != 0) != file->is_dir) {
            snprintf(j->why, sizeof j->why, "%s: stat status %d", v->path, s);
            break;
        }
        if (file->is_dir)
            continue;
        uint8_t *got;
        size_t len;
        s = tv_read_file(&j->e->vol, v->path, &got, &len);
        if (s != FS_STATUS_SUCCESS || len != v->size || (len && memcmp(got, v->data, len) != 0)) {
            uint32_t o = 0;
            while (s == FS_STATUS_SUCCESS && o < len && o < v->size && got[o] == v->data[o])
                o++;
            snprintf(j->why, sizeof j->why, "%s: status %d, %zu bytes, %u expected, first difference at %u", v->path,
                     s, len, v->size, o);
        }
        if (s == FS_STATUS_SUCCESS)
            free(got);
    }
}

static bool verify_final(const pc_workload *w, const pc_image_spec *spec, pc_engine *rec, pc_model *model)
{
    const char *end = tmp_path("end.img");
    pc_engine e;
    final_job j = { .e = &e, .m = model };
    mount_job mj = { .e = &e };
    bool ok = blk_fixture_save(&rec->f, end) == 0 && engine_init(&e, end, 0, false, 1) &&
              fixture_call(&e.f, do_mount, &mj) && mj.st == FS_STATUS_SUCCESS && fixture_call(&e.f, check_final, &j) &&
              !j.why[0] && fixture_call(&e.f, do_unmount, &mj) && mj.st == FS_STATUS_SUCCESS;
    engine_fini(&e);
    if (!ok)
        printf("powercut %s fat%d: the uncut run does not match its model: %s\n", w->name, spec->fat,
               j.why[0] ? j.why : "mount failed");
    return ok;
}

static bool record(const pc_workload *w, const pc_image_spec *spec, const char *start_path, pc_model *model,
                   pc_engine *rec, uint64_t seed)
{
    const char *base = tmp_path("base.img");
    if (!make_image(base, spec->kib, spec->fat, 512, spec->sectors_per_cluster)) {
        printf("powercut: mkfs.fat failed\n");
        return false;
    }
    /* Setup, cleanly unmounted: the starting image. */
    pc_engine s;
    if (!engine_init(&s, base, 0, false, seed)) {
        printf("powercut: fixture failed\n");
        return false;
    }
    mount_job mj = { .e = &s };
    pc_ctx c = { .vol = &s.vol, .fx = &s.f, .model = model, .seed = seed, .fat_type = (uint32_t)spec->fat };
    fiber_job fj = { .w = w, .c = &c };
    bool ok = fixture_call(&s.f, do_mount, &mj) && mj.st == FS_STATUS_SUCCESS && fixture_call(&s.f, setup_entry, &fj) &&
              !c.failed && fixture_call(&s.f, do_unmount, &mj) && mj.st == FS_STATUS_SUCCESS &&
              blk_fixture_save(&s.f, start_path) == 0;
    engine_fini(&s);
    if (!ok) {
        printf("powercut %s fat%d: setup failed: %s\n", w->name, spec->fat, c.failed ? c.why : "mount/unmount");
        return false;
    }
    model_settle(model);

    /* The recorded run: mount, the workload's fibers, unmount, every write journaled. */
    if (!engine_init(rec, start_path, 0, w->random_order, seed)) {
        printf("powercut: fixture failed\n");
        return false;
    }
    ram_device_clear_log(&rec->f.dev);
    ram_device_set_journal(&rec->f.dev, true);
    c = (pc_ctx){ .vol = &rec->vol, .fx = &rec->f, .model = model, .seed = seed, .fat_type = (uint32_t)spec->fat };
    mj.e = rec;
    if (!fixture_call(&rec->f, do_mount, &mj) || mj.st != FS_STATUS_SUCCESS) {
        printf("powercut %s fat%d: mount failed\n", w->name, spec->fat);
        return false;
    }
    fiber_job jobs[64];
    uint32_t fibers = w->fibers ? w->fibers : 1;
    for (uint32_t i = 0; i < fibers && i < 64; i++) {
        jobs[i] = (fiber_job){ .w = w, .c = &c, .index = i };
        blk_fixture_spawn(&rec->f, fiber_entry, &jobs[i]);
    }
    if (!blk_fixture_run(&rec->f) || c.failed) {
        printf("powercut %s fat%d: the workload failed: %s\n", w->name, spec->fat, c.failed ? c.why : "hung");
        return false;
    }
    if (!fixture_call(&rec->f, do_unmount, &mj) || mj.st != FS_STATUS_SUCCESS) {
        printf("powercut %s fat%d: unmount failed\n", w->name, spec->fat);
        return false;
    }
    if (!ram_device_journal_complete(&rec->f.dev)) {
        printf("powercut: the journal is incomplete (out of memory)\n");
        return false;
    }
    return verify_final(w, spec, rec, model);
}

bool pc_run_workload(const pc_workload *w, const pc_image_spec *spec, bool exhaustive, pc_stats *stats)
{
    pc_model model = { 0 };
    pc_engine rec;
    memset(&rec, 0, sizeof rec);
    uint64_t seed = hash_str(w->name) ^ (uint64_t)spec->fat;
    char name[64];
    snprintf(name, sizeof name, "start-%d.img", spec->fat);
    const char *start = tmp_path(name);
    if (!record(w, spec, start, &model, &rec, seed)) {
        engine_fini(&rec);
        pc_model_free(&model);
        stats->failures++;
        return false;
    }

    pc_replay r;
    memset(&r, 0, sizeof r);
    r.w = w;
    r.spec = spec;
    r.exhaustive = exhaustive;
    r.stats = stats;
    r.model = &model;
    r.rec = &rec.f;
    bool ok = engine_init(&r.rig, start, 0, false, seed);
    r.work = r.rig.f.image;
    r.blocks = (r.rig.f.image_bytes + BLK_TRANSFER_SIZE - 1) / BLK_TRANSFER_SIZE;
    size_t bytes = r.blocks * BLK_TRANSFER_SIZE;
    r.durable = malloc(bytes);
    r.cur = malloc(bytes);
    r.stale = calloc(1, r.blocks);
    fat_bpb_error why;
    ok = ok && r.durable && r.cur && r.stale &&
         fat_bpb_parse(r.work, bytes, 0, r.rig.f.image_bytes, &r.geo, &why) == FS_STATUS_SUCCESS;
    if (ok) {
        memcpy(r.durable, r.work, bytes);
        memcpy(r.cur, r.work, bytes);
        r.check_work_size = fat_check_memory_needed(&r.geo);
        r.check_work = malloc(r.check_work_size);
        snprintf(name, sizeof name, "cut-%d.img", spec->fat);
        r.mirror = tmp_path(name);
        ok = file_write_all(r.mirror, r.work, r.rig.f.image_bytes) == 0 &&
             (r.mirror_fd = open(r.mirror, O_WRONLY)) >= 0;
    }
    if (ok) {
        uint64_t failures = stats->failures;
        replay(&r);
        ok = stats->failures == failures && !r.dead;
        if (r.reports > max_reports())
            printf("powercut %s fat%d: ... and %llu more failures\n", w->name, spec->fat,
                   (unsigned long long)(r.reports - max_reports()));
        for (uint32_t i = 0; i < r.nkinds; i++)
            printf("  %6llu x %s\n", (unsigned long long)r.kinds[i].count, r.kinds[i].what);
        close(r.mirror_fd);
    } else {
        printf("powercut %s fat%d: replay setup failed\n", w->name, spec->fat);
        stats->failures++;
    }
    free(r.check_work);
    free(r.durable);
    free(r.cur);
    free(r.stale);
    engine_fini(&r.rig);
    engine_fini(&rec);
    pc_model_free(&model);
    return ok;
}

void pc_test_workload(const char *name, const pc_image_spec *spec)
{
    const pc_workload *w = NULL;
    for (uint32_t i = 0; i < pc_workload_count; i++)
        if (strcmp(pc_workloads[i].name, name) == 0)
            w = &pc_workloads[i];
    if (!w) {
        test_fail(__FILE__, __LINE__, "no workload %s", name);
        return;
    }
    if (!tool_available("mkfs.fat")) {
        printf("SKIP powercut_%s_fat%d: mkfs.fat is not installed\n", name, spec->fat);
        return;
    }
    pc_stats st;
    memset(&st, 0, sizeof st);
    bool exhaustive = pc_exhaustive();
    bool ok = pc_run_workload(w, spec, exhaustive, &st);
    printf("powercut %s fat%d (%s): %llu block writes, %llu flushes; checked %llu cuts, %llu lost-write variants, "
           "%llu fsck.fat runs; %llu failures\n",
           name, spec->fat, exhaustive ? "exhaustive" : "sample", (unsigned long long)st.writes,
           (unsigned long long)st.flushes, (unsigned long long)st.cuts, (unsigned long long)st.variants,
           (unsigned long long)st.fsck_runs, (unsigned long long)st.failures);
    if (!ok)
        test_fail(__FILE__, __LINE__, "%s on FAT%d: %llu failed cuts", name, spec->fat,
                  (unsigned long long)st.failures);
}
