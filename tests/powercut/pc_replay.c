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
#include "fat/fat_intent.h"
#include "fat/fat_layout.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* The sample make test checks: one prefix cut in SAMPLE_CUT_EVERY, one lost-write variant
 * in SAMPLE_VARIANT_EVERY flush epochs, fsck.fat on one check in SAMPLE_FSCK_EVERY (the
 * engine's checker on every one); seeded by workload and FAT type, so each run checks the
 * same cuts. POWERCUT_EVERY overrides the first. */
#define SAMPLE_CUT_EVERY 2u
#define SAMPLE_VARIANT_EVERY 2u
#define SAMPLE_FSCK_EVERY 8u

static uint64_t sample_cut_every(void)
{
    const char *e = getenv("POWERCUT_EVERY");
    uint64_t n = e ? strtoull(e, NULL, 10) : SAMPLE_CUT_EVERY;
    return n ? n : 1;
}

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

/* Blocks that are not all zeros: copying only them keeps the untouched (zero) pages of a
 * 33 MiB FAT32 image unmapped, which is most of what a workload would otherwise cost. */
static bool block_zero(const uint8_t *b)
{
    static const uint8_t zero[BLK_TRANSFER_SIZE];
    return memcmp(b, zero, BLK_TRANSFER_SIZE) == 0;
}

static void copy_nonzero(uint8_t *dst, const uint8_t *src, uint64_t bytes)
{
    for (uint64_t off = 0; off < bytes; off += BLK_TRANSFER_SIZE)
        if (!block_zero(src + off))
            memcpy(dst + off, src + off, BLK_TRANSFER_SIZE);
}

/* A fixture serving a copy of `image` (bytes, whole blocks), with the engine's arenas. */
static bool engine_init(pc_engine *e, const uint8_t *image, uint64_t bytes, bool random_order, bool discard,
                        uint64_t seed)
{
    memset(e, 0, sizeof(*e));
    blk_fixture_options o = blk_fixture_defaults();
    o.image_bytes = bytes;
    o.random_order = random_order;
    o.seed = seed;
    o.fibers = 32;
    if (blk_fixture_init(&e->f, &o) != 0)
        return false;
    copy_nonzero(e->f.image, image, bytes);
    e->cfg = fat_config_defaults();
    e->cfg.clock = fixed_clock;
    e->cfg.max_nodes = 64;
    e->cfg.index_entries = 4096;
    e->cfg.runs_per_node = 8;
    e->cfg.discard = discard;
    size_t arena = fat_memory_total(&e->cfg, e->f.image_bytes);
    e->mem = malloc(arena);
    return fat_config_place_memory(&e->cfg, e->f.image_bytes, e->mem, arena);
}

static void engine_fini(pc_engine *e)
{
    blk_fixture_fini(&e->f);
    free(e->mem);
    e->mem = NULL;
}

typedef struct mount_job {
    pc_engine *e;
    vfs_status st;
} mount_job;

static void do_mount(blk_fixture *f, void *arg)
{
    (void)f;
    mount_job *j = arg;
    j->st = fat_mount(&j->e->vol, &j->e->f.stack.cache, &j->e->cfg, NULL);
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
    uint64_t entries;           /* of which the first `entries` are the run's */
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
        "chain has ", "(the image as cut", "FSInfo free count is unknown"};
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
    vfs_status st;
    fat_check_result res;
} check_job;

static void do_check(blk_fixture *f, void *arg)
{
    check_job *j = arg;
    fat_check_volume v;
    j->st = fat_check_volume_find(&f->stack.cache, 0, &v);
    if (j->st != VFS_OK)
        return;
    fat_check_options o = { .repairs = 0, .work = j->r->check_work, .work_size = j->r->check_work_size,
                            .log = collect_msg, .log_ctx = j->r };
    j->st = fat_check_run(&f->stack.cache, &v, &o, &j->res);
}

static bool run_checker(pc_replay *r, fat_check_result *res)
{
    check_job j = { .r = r };
    r->msgs_len = 0;
    r->msgs[0] = '\0';
    blk_cache_invalidate(&r->rig.f.stack.cache);
    if (!fixture_call(&r->rig.f, do_check, &j)) {
        r->dead = true;
        return false;
    }
    *res = j.res;
    return j.st == VFS_OK;
}

/* ---- renames in progress, read straight from the image ----------------------------------- */

/* What live rename records (fat_intent.h) explain in a cut image: the old and new entries
 * of a file sharing its first cluster, and a moved directory's ".." naming its old parent. */
typedef struct pending {
    uint32_t shared;            /* records whose old entry is still there */
    uint32_t moved_dirs;        /* records of a directory moved between directories */
    uint32_t clusters[16];      /* first clusters the old and new entries share */
} pending;

static uint32_t raw_fat(const pc_replay *r, uint32_t c)
{
    uint64_t off = fat_entry_offset(&r->geo, r->geo.active_fat, c);
    const uint8_t *p = r->work + off;
    switch (r->geo.type) {
    case FAT_TYPE_12: return (c & 1) ? (uint32_t)(p[0] | p[1] << 8) >> 4 : (uint32_t)(p[0] | p[1] << 8) & 0xFFF;
    case FAT_TYPE_16: return (uint32_t)(p[0] | p[1] << 8);
    default: return af_load_le32(p) & 0x0FFFFFFF;
    }
}

/* Offset of slot `slot` in the directory starting at `first` (0: fixed root); 0 past its end. */
static uint64_t raw_slot(const pc_replay *r, uint32_t first, uint32_t slot)
{
    if (first == 0 && r->geo.type != FAT_TYPE_32)
        return slot < r->geo.root_entries ? r->geo.root_dir_offset + (uint64_t)slot * 32 : 0;
    if (first == 0)
        first = r->geo.root_cluster;
    uint32_t per = r->geo.bytes_per_cluster / 32, c = first;
    for (uint32_t k = 0; k < slot / per; k++) {
        c = raw_fat(r, c);
        if (c < 2 || c > r->geo.max_cluster)
            return 0;
    }
    return fat_cluster_offset(&r->geo, c) + (uint64_t)(slot % per) * 32;
}

static uint32_t raw_cluster(const pc_replay *r, const uint8_t *e)
{
    uint32_t c = af_load_le16(e + FAT_DIRENT_CLUSTER_LO);
    if (r->geo.type == FAT_TYPE_32)
        c |= (uint32_t)af_load_le16(e + FAT_DIRENT_CLUSTER_HI) << 16;
    return c;
}

static void scan_pending_dir(const pc_replay *r, uint32_t first, uint8_t *seen, uint32_t depth, pending *p)
{
    if (depth > 64)
        return;
    for (uint32_t slot = 0; slot < 65536; slot++) {
        uint64_t off = raw_slot(r, first, slot);
        if (off == 0)
            return;
        const uint8_t *e = r->work + off;
        if (e[0] == 0)
            return;
        fat_rename_record rec;
        if (fat_rename_record_decode(e, &rec)) {
            /* the set after it: LFN entries, then its short entry */
            uint32_t k = slot + 1;
            const uint8_t *n = NULL;
            for (; k < slot + 23; k++) {
                uint64_t o = raw_slot(r, first, k);
                if (o == 0 || r->work[o] == 0 || r->work[o] == 0xE5)
                    break;
                if ((r->work[o + 11] & 0x3F) != 0x0F) {
                    n = r->work + o;
                    break;
                }
            }
            if (n) {
                if (rec.moved_directory)
                    p->moved_dirs++;
                uint64_t oo = raw_slot(r, rec.source_dir, rec.source_slot);
                const uint8_t *old = oo ? r->work + oo : NULL;
                if (old && old[0] != 0 && old[0] != 0xE5 && memcmp(old, rec.source_name, 11) == 0 &&
                    raw_cluster(r, old) == raw_cluster(r, n)) {
                    if (p->shared < 16)
                        p->clusters[p->shared] = raw_cluster(r, n);
                    p->shared++;
                }
            }
            continue;
        }
        if (e[0] == 0xE5 || e[0] == '.' || (e[11] & 0x3F) == 0x0F || !(e[11] & 0x10) || (e[11] & 0x08))
            continue;
        uint32_t c = raw_cluster(r, e);
        if (c < 2 || c > r->geo.max_cluster || seen[c / 8] & (1u << (c % 8)))
            continue;
        seen[c / 8] |= (uint8_t)(1u << (c % 8));
        scan_pending_dir(r, c, seen, depth + 1, p);
    }
}

static pending scan_pending(const pc_replay *r)
{
    pending p;
    memset(&p, 0, sizeof p);
    uint8_t *seen = calloc(1, r->geo.max_cluster / 8 + 1);
    scan_pending_dir(r, 0, seen, 0, &p);
    free(seen);
    return p;
}

static bool pending_cluster(const pending *p, uint32_t c)
{
    for (uint32_t i = 0; i < p->shared && i < 16; i++)
        if (p->clusters[i] == c)
            return true;
    return false;
}

/* Findings a cut may leave before recovery: lost clusters, FAT copies that differ, the
 * dirty flags (and FSInfo's count "unknown" while mounted), chains longer than their
 * files, and the middle of a rename its record explains (two entries sharing one first
 * cluster, a moved directory's old ".."). */
static bool checker_acceptable(const pc_replay *r, const fat_check_result *res, const pending *p)
{
    if (res->bad_links || res->loops || res->orphan_lfns || res->boot_errors || res->lost_kept)
        return false;
    uint32_t longer = 0, shares = 0, dotdots = 0, unknown = 0;
    for (const char *m = r->msgs; (m = strstr(m, "FSInfo free count is unknown")); m++)
        unknown++;
    for (const char *m = r->msgs; (m = strstr(m, "chain has ")); m++)
        longer++;
    for (const char *m = r->msgs; (m = strstr(m, " is also used by another chain")); m++) {
        const char *c = m;
        while (c > r->msgs && c[-1] >= '0' && c[-1] <= '9')
            c--;
        if (!pending_cluster(p, (uint32_t)strtoul(c, NULL, 10)))
            return false;
        shares++;
    }
    for (const char *m = r->msgs; (m = strstr(m, "'..' entry does not point at the parent")); m++)
        dotdots++;
    return longer == res->size_mismatches && shares == res->cross_links && shares <= p->shared &&
           dotdots == res->bad_entries && dotdots <= p->moved_dirs && unknown == res->fsinfo_errors;
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
 * dirty bit, the FSInfo count, files whose chain is longer than their size, and what the
 * rename records explain (fsck.fat, not knowing them, would truncate the second name). */
static bool fsck_acceptable(const pc_replay *r, const pending *pend)
{
    const char *p = r->msgs;
    uint32_t shares = 0, dotdots = 0;
    char truncated[512] = "";
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
        if (line[0] != '/')
            return false;
        /* A path, then what is wrong with it. */
        char what[512];
        const char *e2 = strchr(p, '\n');
        size_t m = e2 ? (size_t)(e2 - p) : strlen(p);
        snprintf(what, sizeof what, "%.*s", (int)(m < sizeof what ? m : sizeof what - 1), p);
        p += m + (e2 ? 1 : 0);
        unsigned size, chain;
        if (strstr(line, "  and") && line[strlen(line) - 1] == 'd') {
            /* "/A  and" "/B" "  share clusters." "  Truncating second to 0 bytes." */
            snprintf(truncated, sizeof truncated, "%s", what);
            const char *e3 = strchr(p, '\n');
            if (!e3 || !starts(p, "  share clusters."))
                return false;
            p = e3 + 1;
            if (starts(p, "  Truncating second")) {
                e3 = strchr(p, '\n');
                p = e3 ? e3 + 1 : p + strlen(p);
            }
            shares++;
            continue;
        }
        if (sscanf(what, "  File size is %u bytes, cluster chain length is > %u bytes.", &size, &chain) == 2 &&
            size <= chain) {
        } else if (sscanf(what, "  File size is %u bytes, cluster chain length is %u bytes.", &size, &chain) == 2 &&
                   chain == 0 && strcmp(line, truncated) == 0) {
            /* the second name of a shared chain, as fsck.fat would truncate it */
        } else if (starts(what, "  Invalid '..' entry in the second slot")) {
            dotdots++;
        } else {
            return false;
        }
        if (starts(p, "  Truncating file to ")) {
            const char *e3 = strchr(p, '\n');
            p = e3 ? e3 + 1 : p + strlen(p);
        }
    }
    return shares <= pend->shared && dotdots <= pend->moved_dirs;
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
            vfs_stat st;
            vfs_status s = fat_stat(vol, path, strlen(path), &st);
            if (s == VFS_NO_FILE || s == VFS_NOT_DIRECTORY)
                continue;
            if (s != VFS_OK) {
                snprintf(j->why, sizeof j->why, "stat %s: status %d", path, s);
                j->ok = false;
                break;
            }
            bool is_dir = (st.mode & VFS_MODE_DIRECTORY) != 0;
            if (is_dir != file->is_dir)
                continue;
            if (!is_dir) {
                uint8_t *got;
                size_t len;
                s = tv_read_file(vol, path, &got, &len);
                if (s != VFS_OK) {
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
        /* A directory has no contents to tell it from a directory it replaced: once at
         * least (its files are counted one by one, and a second entry for it would be a
         * cross-link the checkers see). */
        if (found == 1 || (found == 0 && absent_ok) || (file->is_dir && found > 1))
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
    static int have = -1;
    if (have < 0)
        have = tool_available("fsck.fat");
    if (!have)
        return false;
    return r->exhaustive || mix(r->checks ^ hash_str(r->w->name) ^ (uint64_t)r->spec->fat) % SAMPLE_FSCK_EVERY == 0;
}

/* The check fixture wrote these blocks of work: the mirror file is stale there. */
static void mark_written_stale(pc_replay *r)
{
    ram_device *dev = &r->rig.f.dev;
    for (uint64_t i = 0; i < ram_device_log_count(dev); i++) {
        const ram_device_log_entry *e = ram_device_log_at(dev, i);
        if (e->code == BLK_REQ_WRITE)
            for (uint32_t b = 0; b < e->written; b++)
                r->stale[e->block + b] = 1;
    }
}

/* Copy back from cur every block the last check wrote. */
static void restore_written(pc_replay *r)
{
    ram_device *dev = &r->rig.f.dev;
    for (uint64_t i = 0; i < ram_device_log_count(dev); i++) {
        const ram_device_log_entry *e = ram_device_log_at(dev, i);
        if (e->code != BLK_REQ_WRITE)
            continue;
        for (uint32_t b = 0; b < e->written; b++) {
            r->stale[e->block + b] = 1;
            restore_block(r, e->block + b);
        }
    }
    ram_device_clear_log(dev);
}

static void flush_rig(blk_fixture *f, void *arg)
{
    (void)arg;
    blk_cache_flush(&f->stack.cache);
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
    pending pend = scan_pending(r);
    if (pend.shared || pend.moved_dirs)
        r->stats->renames_in_flight++;
    if (!run_checker(r, &res)) {
        report(r, cut, "the engine's checker could not run", NULL);
        return;
    }
    if (!checker_acceptable(r, &res, &pend))
        report(r, cut, "before recovery, the engine's checker finds damage a cut must not leave:", r->msgs);
    if (fsck) {
        int rc = run_fsck(r);
        if (rc < 0 || rc > 1 || !fsck_acceptable(r, &pend))
            report(r, cut, "before recovery, fsck.fat -n finds damage a cut must not leave:", r->msgs);
    }

    /* Recovery: mount read-write, check the model, unmount. */
    blk_cache_invalidate(&r->rig.f.stack.cache);
    mount_job mj = { .e = &r->rig };
    if (!fixture_call(&r->rig.f, do_mount, &mj)) {
        r->dead = true;
        report(r, cut, "mount hung", NULL);
        return;
    }
    if (mj.st != VFS_OK) {
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
        if (mj.st != VFS_OK) {
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
            mark_written_stale(r);
            int rc = run_fsck(r);
            if (rc != 0)
                report(r, cut, "after recovery, fsck.fat -n still finds:", r->msgs);
        }
    }
    fixture_call(&r->rig.f, flush_rig, NULL);
    restore_written(r);
    blk_cache_invalidate(&r->rig.f.stack.cache);
}

/* ---- walking the journal ------------------------------------------------------------------------ */

typedef struct unit {
    uint64_t entry;
    uint32_t block_in_entry;
} unit;

static const uint8_t zero_block[BLK_TRANSFER_SIZE];

/* The blocks a log entry changed on the medium: a write's, or a discard's (as zeros). */
static uint32_t entry_blocks(const ram_device_log_entry *e)
{
    if (e->code == BLK_REQ_WRITE)
        return e->written;
    return e->code == BLK_REQ_DISCARD && e->status == BLK_RESP_OK ? e->count : 0;
}

static const uint8_t *entry_block_data(const ram_device_log_entry *e, uint32_t b)
{
    return e->code == BLK_REQ_WRITE ? e->data + (size_t)b * BLK_TRANSFER_SIZE : zero_block;
}

static bool sample_unit(const pc_replay *r, uint64_t n)
{
    if (r->exhaustive)
        return true;
    return mix(n * 0x100000001B3ull ^ hash_str(r->w->name) ^ (uint64_t)r->spec->fat * 77) % sample_cut_every() == 0;
}

/* Lost-write variants of the epoch [first, flush): writes since the previous FLUSH. */
static void epoch_variants(pc_replay *r, uint64_t first, uint64_t flush, int64_t prev_flush)
{
    ram_device *dev = &r->rec->dev;
    unit *units = NULL;
    uint32_t n = 0, cap = 0;
    for (uint64_t i = first; i < flush; i++) {
        const ram_device_log_entry *e = ram_device_log_at(dev, i);
        for (uint32_t b = 0; b < entry_blocks(e); b++) {
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                units = realloc(units, cap * sizeof(*units));
            }
            units[n++] = (unit){ i, b };
        }
    }
    int variants =
        r->exhaustive ? 4 : (mix(flush ^ hash_str(r->w->name) ^ (uint64_t)r->spec->fat) % SAMPLE_VARIANT_EVERY == 0 ? 1 : 0);
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
            set_work_block(r, e->block + units[u].block_in_entry, entry_block_data(e, units[u].block_in_entry));
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
    uint64_t n = r->entries, unit_no = 0, epoch_first = 0;
    if (getenv("POWERCUT_TRACE"))
        for (uint64_t i = 0; i < n; i++) {
            const ram_device_log_entry *e = ram_device_log_at(dev, i);
            static const char *const names[] = {"READ", "WRITE", "FLUSH", "BARRIER", "DISCARD"};
            printf("  log %llu: %s block %llu count %u\n", (unsigned long long)i, e->code < 5 ? names[e->code] : "?",
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
        if (e->code == BLK_REQ_DISCARD && e->status == BLK_RESP_OK)
            r->stats->discards++;
        for (uint32_t b = 0; b < entry_blocks(e) && !r->dead; b++) {
            uint64_t block = e->block + b;
            const uint8_t *data = entry_block_data(e, b);
            memcpy(r->cur + block * BLK_TRANSFER_SIZE, data, BLK_TRANSFER_SIZE);
            set_work_block(r, block, data);
            if (e->code == BLK_REQ_WRITE)
                r->stats->writes++;
            else
                r->stats->discarded_blocks++;
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
        vfs_stat st;
        vfs_status s = fat_stat(&j->e->vol, v->path, strlen(v->path), &st);
        if (s != VFS_OK || ((st.mode & VFS_MODE_DIRECTORY) != 0) != file->is_dir) {
            snprintf(j->why, sizeof j->why, "%s: stat status %d", v->path, s);
            break;
        }
        if (file->is_dir)
            continue;
        uint8_t *got;
        size_t len;
        s = tv_read_file(&j->e->vol, v->path, &got, &len);
        if (s != VFS_OK || len != v->size || (len && memcmp(got, v->data, len) != 0)) {
            uint32_t o = 0;
            while (s == VFS_OK && o < len && o < v->size && got[o] == v->data[o])
                o++;
            snprintf(j->why, sizeof j->why, "%s: status %d, %zu bytes, %u expected, first difference at %u", v->path,
                     s, len, v->size, o);
        }
        if (s == VFS_OK)
            free(got);
    }
}

/* Mounts the recorded fixture once more (its log grows past the recorded run, which the
 * replay does not look at). */
static bool verify_final(const pc_workload *w, const pc_image_spec *spec, pc_engine *rec, pc_model *model)
{
    final_job j = { .e = rec, .m = model };
    mount_job mj = { .e = rec };
    blk_cache_invalidate(&rec->f.stack.cache);
    bool ok = fixture_call(&rec->f, do_mount, &mj) && mj.st == VFS_OK && fixture_call(&rec->f, check_final, &j) &&
              !j.why[0] && fixture_call(&rec->f, do_unmount, &mj) && mj.st == VFS_OK;
    if (!ok)
        printf("powercut %s fat%d: the uncut run does not match its model: %s\n", w->name, spec->fat,
               j.why[0] ? j.why : "mount failed");
    return ok;
}

/* mkfs.fat once per image spec per program; kept in memory. */
static const uint8_t *base_image(const pc_image_spec *spec, uint64_t *bytes)
{
    static struct {
        pc_image_spec spec;
        uint8_t *image;
        uint64_t bytes;
    } cache[4];
    static uint32_t n;
    for (uint32_t i = 0; i < n; i++)
        if (memcmp(&cache[i].spec, spec, sizeof *spec) == 0) {
            *bytes = cache[i].bytes;
            return cache[i].image;
        }
    const char *path = tmp_path("base.img");
    size_t len;
    uint8_t *image;
    if (n == 4 || !make_image(path, spec->kib, spec->fat, 512, spec->sectors_per_cluster) ||
        !(image = file_read_all(path, &len)))
        return NULL;
    remove(path);
    uint64_t whole = (len + BLK_TRANSFER_SIZE - 1) / BLK_TRANSFER_SIZE * BLK_TRANSFER_SIZE;
    uint8_t *padded = calloc(1, whole);
    memcpy(padded, image, len);
    free(image);
    cache[n].spec = *spec;
    cache[n].image = padded;
    cache[n].bytes = whole;
    *bytes = whole;
    return cache[n++].image;
}

/* Setup (cleanly unmounted: its image, *start, is where the recording begins), then the
 * recorded run: mount, the workload's fibers, unmount, every write journaled (the first
 * *entries log entries). */
static bool record(const pc_workload *w, const pc_image_spec *spec, uint8_t **start, uint64_t *bytes,
                   pc_model *model, pc_engine *rec, uint64_t *entries, uint64_t seed)
{
    const uint8_t *base = base_image(spec, bytes);
    if (!base) {
        printf("powercut: mkfs.fat failed\n");
        return false;
    }
    pc_engine s;
    if (!engine_init(&s, base, *bytes, false, false, seed)) {
        printf("powercut: fixture failed\n");
        return false;
    }
    mount_job mj = { .e = &s };
    pc_ctx c = { .vol = &s.vol, .fx = &s.f, .model = model, .seed = seed, .fat_type = (uint32_t)spec->fat };
    fiber_job fj = { .w = w, .c = &c };
    bool ok = fixture_call(&s.f, do_mount, &mj) && mj.st == VFS_OK && fixture_call(&s.f, setup_entry, &fj) &&
              !c.failed && fixture_call(&s.f, do_unmount, &mj) && mj.st == VFS_OK;
    if (ok) {
        *start = calloc(1, *bytes);
        copy_nonzero(*start, s.f.image, *bytes);
    }
    engine_fini(&s);
    if (!ok) {
        printf("powercut %s fat%d: setup failed: %s\n", w->name, spec->fat, c.failed ? c.why : "mount/unmount");
        return false;
    }
    model_settle(model);

    if (!engine_init(rec, *start, *bytes, w->random_order, w->discard, seed)) {
        printf("powercut: fixture failed\n");
        return false;
    }
    ram_device_clear_log(&rec->f.dev);
    ram_device_set_journal(&rec->f.dev, true);
    c = (pc_ctx){ .vol = &rec->vol, .fx = &rec->f, .model = model, .seed = seed, .fat_type = (uint32_t)spec->fat };
    mj.e = rec;
    if (!fixture_call(&rec->f, do_mount, &mj) || mj.st != VFS_OK) {
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
    if (!fixture_call(&rec->f, do_unmount, &mj) || mj.st != VFS_OK) {
        printf("powercut %s fat%d: unmount failed\n", w->name, spec->fat);
        return false;
    }
    if (!ram_device_journal_complete(&rec->f.dev)) {
        printf("powercut: the journal is incomplete (out of memory)\n");
        return false;
    }
    ram_device_set_journal(&rec->f.dev, false);
    *entries = ram_device_log_count(&rec->f.dev);
    return verify_final(w, spec, rec, model);
}

bool pc_run_workload(const pc_workload *w, const pc_image_spec *spec, bool exhaustive, pc_stats *stats)
{
    pc_model model = { 0 };
    pc_engine rec;
    memset(&rec, 0, sizeof rec);
    uint64_t seed = hash_str(w->name) ^ (uint64_t)spec->fat;
    uint8_t *start = NULL;
    uint64_t bytes = 0, entries = 0;
    if (!record(w, spec, &start, &bytes, &model, &rec, &entries, seed)) {
        engine_fini(&rec);
        pc_model_free(&model);
        free(start);
        stats->failures++;
        return false;
    }
    stats->in_place_writes = blk_cache_get_stats(&rec.f.stack.cache)->in_place_writes;

    pc_replay r;
    memset(&r, 0, sizeof r);
    r.w = w;
    r.spec = spec;
    r.exhaustive = exhaustive;
    r.stats = stats;
    r.model = &model;
    r.rec = &rec.f;
    r.entries = entries;
    bool ok = engine_init(&r.rig, start, bytes, false, w->discard, seed);
    r.work = r.rig.f.image;
    r.blocks = bytes / BLK_TRANSFER_SIZE;
    r.durable = calloc(1, bytes);
    r.cur = calloc(1, bytes);
    r.stale = calloc(1, r.blocks);
    fat_bpb_error why;
    ok = ok && r.durable && r.cur && r.stale && fat_bpb_parse(start, bytes, 0, bytes, &r.geo, &why) == VFS_OK;
    if (ok) {
        copy_nonzero(r.durable, start, bytes);
        copy_nonzero(r.cur, start, bytes);
        r.check_work_size = fat_check_memory_needed(&r.geo);
        r.check_work = malloc(r.check_work_size);
        char name[64];
        snprintf(name, sizeof name, "cut-%d.img", spec->fat);
        r.mirror = tmp_path(name);
        /* a sparse file: only the blocks that hold something are written */
        r.mirror_fd = open(r.mirror, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        ok = r.mirror_fd >= 0 && ftruncate(r.mirror_fd, (off_t)bytes) == 0;
        for (uint64_t b = 0; ok && b < r.blocks; b++)
            r.stale[b] = !block_zero(r.work + b * BLK_TRANSFER_SIZE);
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
    } else {
        printf("powercut %s fat%d: replay setup failed\n", w->name, spec->fat);
        stats->failures++;
    }
    if (r.mirror_fd > 0)
        close(r.mirror_fd);
    free(r.check_work);
    free(r.durable);
    free(r.cur);
    free(r.stale);
    free(start);
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
    printf("powercut %s fat%d (%s): %llu block writes (%llu requests in place), %llu flushes, %llu discards of %llu "
           "blocks; checked %llu cuts, %llu lost-write variants, %llu fsck.fat runs; %llu cut in the middle of a rename; "
           "%llu failures\n",
           name, spec->fat, exhaustive ? "exhaustive" : "sample", (unsigned long long)st.writes,
           (unsigned long long)st.in_place_writes,
           (unsigned long long)st.flushes, (unsigned long long)st.discards, (unsigned long long)st.discarded_blocks,
           (unsigned long long)st.cuts, (unsigned long long)st.variants,
           (unsigned long long)st.fsck_runs, (unsigned long long)st.renames_in_flight,
           (unsigned long long)st.failures);
    if (!ok)
        test_fail(__FILE__, __LINE__, "%s on FAT%d: %llu failed cuts", name, spec->fat,
                  (unsigned long long)st.failures);
}
