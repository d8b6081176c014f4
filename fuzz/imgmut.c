/* imgmut: the image mutator's command line (see imgmut.h). */
#include "fuzz/imgmut.h"

#include "fuzz/fz_seed.h"
#include "fuzz/fz_template.h"
#include "protocol/fs_protocol.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int usage(void)
{
    fprintf(stderr,
            "usage: imgmut [--asyncfat PATH] [--fuzz-dir DIR] [--timeout S] [-v] COMMAND ...\n"
            "  replay RECIPE...                 run reproductions (PASS/FAIL/SKIP lines)\n"
            "  campaign --seconds N | --rounds N [--seed S] [--out DIR] [--walkers]\n"
            "  minimize RECIPE OUT              drop damage steps while it still fails\n"
            "  corpus DIR                       seed inputs for the libFuzzer targets\n"
            "  from-input TARGET INPUT OUT      a libFuzzer input as a recipe\n");
    return 2;
}

/* ---- replay ---- */

static int replay(const mut_env *env, int argc, char **argv)
{
    int failed = 0;
    for (int i = 0; i < argc; i++) {
        fz_recipe r;
        char err[1024];
        if (fz_recipe_load(argv[i], &r, err, sizeof err) != 0) {
            printf("FAIL recipe %s: %s\n", argv[i], err);
            failed++;
            continue;
        }
        mut_ctx c;
        int rc = mut_run_recipe(env, &r, &c);
        const char *kf = c.known_failure;
        if (rc != 0 && c.cannot_run[0]) {
            printf("SKIP recipe_%s: %s\n", r.name, c.cannot_run);
        } else if (rc == 0 && !kf[0]) {
            printf("PASS recipe_%s\n", r.name);
        } else if (rc == 0) {
            printf("FAIL recipe_%s: passes now: delete its 'known-failure %s' line\n", r.name, kf);
            failed++;
        } else if (kf[0] && !c.recipe_error) {
            /* "powercut: why" -> "known failure, fixed on branch powercut: why" */
            printf("SKIP recipe_%s: known failure, fixed on branch %s (now: %s)\n", r.name, kf, c.failure);
        } else {
            printf("FAIL recipe_%s: %s\n", r.name, c.failure);
            failed++;
        }
        fflush(stdout);
        mut_ctx_fini(&c);
        fz_recipe_free(&r);
    }
    return failed ? 1 : 0;
}

/* ---- corpus ---- */

static int write_seed(const char *dir, const char *target, int n, const uint8_t *data, size_t len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, target);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/seed-%03d", dir, target, n);
    return fz_write_file(path, data, len);
}

/* A server program (fuzz_server.c's operations). */
typedef struct program {
    uint8_t b[4096];
    size_t n;
} program;

static void op(program *p, int count, ...)
{
    va_list ap;
    va_start(ap, count);
    for (int i = 0; i < count && p->n < sizeof p->b; i++)
        p->b[p->n++] = (uint8_t)va_arg(ap, int);
    va_end(ap);
}

enum { OP_STRUCT = 1, OP_SHARE = 4, OP_TAMPER = 5, OP_STEP = 6, OP_DRAIN = 7, OP_PROBE = 8, OP_AGAIN = 9 };

static int server_corpus(const char *dir)
{
    /* Path slots (fuzz_server.c): 1 /readme.txt, 2 /sub, 3 /sub/a.txt, 4 /new.txt, 5 /sub/new dir,
     * 7 /sub/deeper/x.bin, 15 /sub/deeper. Buffers: (a, b) = offset 8K + a KiB, (b+1)*64 bytes. */
    program p[8];
    memset(p, 0, sizeof p);
    /* read a file */
    op(&p[0], 5, 0x48, OP_STRUCT, FS_CMD_FILE_OPEN, 1, 0);
    op(&p[0], 2, OP_STEP, 8);
    op(&p[0], 1, OP_DRAIN);
    op(&p[0], 6, OP_STRUCT, FS_CMD_FILE_READ, 0, 0, 1, 15);
    op(&p[0], 2, OP_STEP, 8);
    op(&p[0], 4, OP_STRUCT, FS_CMD_FILE_CLOSE, 0, OP_PROBE);
    /* create, write, read back, truncate, sync */
    op(&p[1], 5, 0x49, OP_STRUCT, FS_CMD_FILE_OPEN, 4, FS_OPEN_FLAGS_READ_WRITE | FS_OPEN_FLAGS_CREATE);
    op(&p[1], 3, OP_STEP, 8, OP_DRAIN);
    op(&p[1], 6, OP_STRUCT, FS_CMD_FILE_WRITE, 0, 3, 2, 40);
    op(&p[1], 6, OP_STRUCT, FS_CMD_FILE_READ, 0, 0, 3, 40);
    op(&p[1], 5, OP_STRUCT, FS_CMD_FILE_TRUNCATE, 0, 1, OP_STEP);
    op(&p[1], 5, 4, OP_STRUCT, FS_CMD_FILE_SYNC, 0, OP_DRAIN);
    /* directories */
    op(&p[2], 4, 0x4a, OP_STRUCT, FS_CMD_DIR_OPEN, 2);
    op(&p[2], 3, OP_STEP, 8, OP_DRAIN);
    op(&p[2], 5, OP_STRUCT, FS_CMD_DIR_READ, 0, 4, 3);
    op(&p[2], 7, OP_STRUCT, FS_CMD_DIR_READ_STAT, 0, 5, 3, 6, 3);
    op(&p[2], 5, OP_STRUCT, FS_CMD_DIR_READ_BATCH, 0, 8, 60);
    op(&p[2], 4, OP_STRUCT, FS_CMD_DIR_SEEK, 0, 2);
    op(&p[2], 3, OP_STRUCT, FS_CMD_DIR_TELL, 0);
    op(&p[2], 5, OP_STRUCT, FS_CMD_DIR_CLOSE, 0, OP_STEP, 8);
    /* names */
    op(&p[3], 4, 0x4b, OP_STRUCT, FS_CMD_DIR_CREATE, 5);
    op(&p[3], 4, OP_STRUCT, FS_CMD_RENAME, 7, 4);
    op(&p[3], 3, OP_STRUCT, FS_CMD_FILE_REMOVE, 3);
    op(&p[3], 3, OP_STRUCT, FS_CMD_DIR_REMOVE, 15);
    op(&p[3], 5, OP_STRUCT, FS_CMD_STAT, 1, 2, 3);
    op(&p[3], 5, OP_STRUCT, FS_CMD_SET_TIMES, 1, 9, 9);
    op(&p[3], 4, OP_STRUCT, FS_CMD_STATFS, 6, 2);
    op(&p[3], 3, OP_STEP, 15, OP_DRAIN);
    /* extensions: open+stat, open+read, read by path */
    op(&p[4], 7, 0x48, OP_STRUCT, FS_CMD_OPEN_STAT, 1, 0, 2, 3);
    op(&p[4], 6, OP_STRUCT, FS_CMD_OPEN_READ, 7, 0, 3, 80);
    op(&p[4], 6, OP_STRUCT, FS_CMD_READ_PATH, 1, 0, 4, 20);
    op(&p[4], 7, OP_STRUCT, FS_CMD_SET_TIMES_STAT, 3, 1, 1, 5, 3);
    op(&p[4], 3, OP_STEP, 15, OP_DRAIN);
    /* hostile: rewritten counters, a write into the share while a command is in flight */
    op(&p[5], 5, 0x49, OP_STRUCT, FS_CMD_FILE_OPEN, 1, 0);
    op(&p[5], 5, OP_SHARE, 0x00, 0x02, 4, 'x');
    op(&p[5], 3, 'y', 'z', '/');
    op(&p[5], 3, OP_TAMPER, 1, 0x50);
    op(&p[5], 2, OP_STEP, 3);
    op(&p[5], 3, OP_TAMPER, 2, 0x30);
    op(&p[5], 3, OP_TAMPER, 4, 0x45);
    op(&p[5], 4, OP_AGAIN, 7, OP_STEP, 9);
    op(&p[5], 2, OP_DRAIN, OP_PROBE);
    /* a burst that fills the queue without reading completions */
    op(&p[6], 5, 0x48, OP_STRUCT, FS_CMD_STAT, 1, 0);
    op(&p[6], 1, 3);
    for (int i = 0; i < 40; i++)
        op(&p[6], 2, OP_AGAIN, 7);
    op(&p[6], 3, OP_STEP, 15, OP_PROBE);
    /* raw commands */
    op(&p[7], 3, 0x48, 0, FS_CMD_FILE_READ);
    for (int i = 0; i < 48; i++)
        op(&p[7], 1, i * 37);
    op(&p[7], 2, OP_STEP, 4);
    for (int i = 0; i < 8; i++)
        if (write_seed(dir, "server", i, p[i].b, p[i].n) != 0)
            return -1;
    return 0;
}

static int corpus(int argc, char **argv)
{
    if (argc != 1)
        return usage();
    const char *dir = argv[0];
    mkdir(dir, 0755);
    fz_template t[FZ_TEMPLATE_COUNT];
    if (fz_templates_build(t) != 0)
        return 1;
    static const struct {
        const char *target;
        uint8_t flags[3];
        int nflags;
    } plan[] = {{"bpb", {0, 1}, 2}, {"dir", {0, 2, 1}, 3}, {"check", {0}, 1}};
    int n = 0;
    for (size_t p = 0; p < sizeof plan / sizeof plan[0]; p++) {
        const fz_target_info *info = fz_target_find(plan[p].target);
        for (unsigned i = 0; i < FZ_TEMPLATE_COUNT; i++)
            for (int f = 0; f < plan[p].nflags; f++) {
                size_t len;
                uint8_t *in = fz_input_from_image(&t[i].L, t[i].image, t[i].bytes, info->windows,
                                                  (uint8_t)(i | plan[p].flags[f] << 2), &len);
                if (!in || write_seed(dir, plan[p].target, n++, in, len) != 0)
                    return 1;
                free(in);
            }
    }
    fz_templates_free(t);
    return server_corpus(dir) == 0 ? 0 : 1;
}

/* ---- from-input ---- */

static int from_input(int argc, char **argv)
{
    if (argc != 3)
        return usage();
    const fz_target_info *info = fz_target_find(argv[0]);
    size_t len;
    uint8_t *in = fz_read_file(argv[1], &len);
    if (!info || !in || len == 0) {
        fprintf(stderr, "imgmut: no such target or empty input\n");
        return 2;
    }
    FILE *out = fopen(argv[2], "w");
    if (!out)
        return 1;
    fprintf(out, "# Found by fuzz_%s (libFuzzer). Replay: imgmut replay %s\n", argv[0], argv[2]);
    if (!info->windows) {
        fprintf(out, "fuzz-input %s", argv[0]);
        for (size_t i = 0; i < len; i++)
            fprintf(out, "%s%02x", i % 32 == 0 ? " " : "", in[i]);
        fprintf(out, "\n");
        fclose(out);
        return 0;
    }
    fz_template t[FZ_TEMPLATE_COUNT];
    if (fz_templates_build(t) != 0)
        return 1;
    unsigned index = (in[0] & FZ_SELECT_TEMPLATE_MASK) % FZ_TEMPLATE_COUNT;
    const fz_template *tp = &t[index];
    fprintf(out, "template %s\n", tp->spec->name);
    fz_window w[5];
    size_t nw = fz_windows(&tp->L, info->windows, w), at = 1;
    for (size_t k = 0; k < nw && at < len; k++) {
        size_t take = len - at < w[k].length ? len - at : w[k].length;
        const uint8_t *want = in + at, *have = tp->image + w[k].offset;
        for (size_t i = 0; i < take;) {
            if (want[i] == have[i]) {
                i++;
                continue;
            }
            /* A run of differences (gaps of up to 4 equal bytes are carried along). */
            size_t end = i + 1, last = i;
            while (end < take && end - last <= 4) {
                if (want[end] != have[end])
                    last = end;
                end++;
            }
            fprintf(out, "poke %s+0x%zx", w[k].name, i);
            for (size_t j = i; j <= last; j++)
                fprintf(out, " %02x", want[j]);
            fprintf(out, "\n");
            i = last + 1;
        }
        at += take;
    }
    fprintf(out, "fuzz-target %s %u\n", argv[0], (unsigned)(in[0] >> 2));
    fclose(out);
    free(in);
    fz_templates_free(t);
    return 0;
}

int main(int argc, char **argv)
{
    mut_env env = {
        .asyncfat = "build/san/asyncfat",
        .fuzz_dir = "build/fuzz",
        .tmp = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
        .timeout = 60,
    };
    setenv("MTOOLS_SKIP_CHECK", "1", 1);
    setenv("LC_ALL", "C", 1);
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--asyncfat") == 0 && i + 1 < argc)
            env.asyncfat = argv[++i];
        else if (strcmp(argv[i], "--fuzz-dir") == 0 && i + 1 < argc)
            env.fuzz_dir = argv[++i];
        else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
            env.timeout = atof(argv[++i]);
        else if (strcmp(argv[i], "-v") == 0)
            env.verbose = true;
        else
            return usage();
    }
    if (i >= argc)
        return usage();
    static char asyncfat[4096], fuzz_dir[4096];
    if (realpath(env.asyncfat, asyncfat))
        env.asyncfat = asyncfat;
    if (realpath(env.fuzz_dir, fuzz_dir))
        env.fuzz_dir = fuzz_dir;
    const char *cmd = argv[i++];
    bool runs_command = strcmp(cmd, "replay") == 0 || strcmp(cmd, "campaign") == 0 || strcmp(cmd, "minimize") == 0;
    if (runs_command && access(env.asyncfat, X_OK) != 0) {
        fprintf(stderr, "imgmut: no command to test at %s (make san; or --asyncfat PATH)\n", env.asyncfat);
        return 2;
    }
    if (strcmp(cmd, "replay") == 0)
        return replay(&env, argc - i, argv + i);
    if (strcmp(cmd, "corpus") == 0)
        return corpus(argc - i, argv + i);
    if (strcmp(cmd, "from-input") == 0)
        return from_input(argc - i, argv + i);
    if (strcmp(cmd, "minimize") == 0)
        return argc - i == 2 ? mut_minimize(&env, argv[i], argv[i + 1]) : usage();
    if (strcmp(cmd, "campaign") == 0) {
        mut_campaign_options o = {.seconds = 60, .seed = 1, .out_dir = "."};
        for (; i < argc; i++) {
            if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
                o.seconds = atof(argv[++i]);
            else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
                o.rounds = strtoull(argv[++i], NULL, 0);
            else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
                o.seed = strtoull(argv[++i], NULL, 0);
            else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
                o.out_dir = argv[++i];
            else if (strcmp(argv[i], "--walkers") == 0)
                o.walkers = true;
            else if (strcmp(argv[i], "--mount") == 0)
                o.mount = true;
            else
                return usage();
        }
        return mut_campaign(&env, &o);
    }
    return usage();
}
