/* imgmut: the image mutator. It builds images from recipes (fz_recipe.h), runs the real
 * asyncfat command on them (the sanitizer build) and judges what it did:
 *
 *   imgmut replay RECIPE...       run saved reproductions: PASS / FAIL / SKIP lines
 *   imgmut campaign --seconds N   damage seed images at random, run the command, check the
 *                                 oracles; every failure is written out as a recipe
 *   imgmut minimize RECIPE OUT    drop damage steps while the recipe still fails
 *   imgmut corpus DIR             seed inputs for the libFuzzer targets (DIR/<target>/)
 *   imgmut from-input TARGET INPUT OUT   a libFuzzer input as a recipe
 *
 * Recipe lines it adds to fz_recipe.h's seed and damage steps:
 *   known-failure BRANCH: WHY   expected to fail until BRANCH is merged: reported as SKIP
 *                               while it fails, as FAIL once it passes (delete the line)
 *   local NAME SIZE             a local file WORK/NAME (pattern contents) for cp
 *   run ARGS...                 the asyncfat command; IMG stands for the image, WORK/ for
 *                               the scratch directory. Every run must end by itself within
 *                               the time limit, without a signal, a sanitizer report or a
 *                               process left behind, with a documented exit status.
 *   expect-exit N[,N...]        the last run's exit status
 *   expect-unchanged            the last run left the image's bytes as they were
 *   expect-files-kept [PATH]    every file readable before the last run still reads the
 *                               same (PATH and below excepted)
 *   expect-data-kept [PATH]     no cluster a file owned (in any FAT copy) was overwritten
 *   expect-fsck-clean           fsck.fat -n accepts the image
 *   expect-check-clean          asyncfat check calls the image clean
 *   expect-mtools-agree         asyncfat ls -R and cat read what mtools reads
 *   snapshot NAME / expect-manifest NAME   the image holds the same tree as at the snapshot
 *   expect-refused-or-restored NAME        after check --repair: either it refused (exit 4
 *                               or 8) and changed nothing, or fsck.fat accepts the result
 *                               and it holds the tree of snapshot NAME
 *   mount-walk [agree]          mount the image read-only with FUSE (asyncfat mount), walk
 *                               and read it, unmount: no crash, hang or stray process; with
 *                               `agree`, files read through the mount as mtools reads them
 *   fuzz-target NAME [FLAGS]    run libFuzzer target NAME on the image (its windows, the
 *                               template from the recipe's template line)
 *   fuzz-input NAME HEX...      run libFuzzer target NAME on these input bytes
 *   timeout SECONDS             time limit of later runs (default 60)
 */
#ifndef ASYNCFAT_FUZZ_IMGMUT_H
#define ASYNCFAT_FUZZ_IMGMUT_H

#include "fuzz/fz_image.h"
#include "fuzz/fz_proc.h"
#include "fuzz/fz_recipe.h"

typedef struct mut_env {
    const char *asyncfat;       /* the command under test */
    const char *fuzz_dir;       /* where the libFuzzer targets are */
    const char *tmp;            /* scratch directories go here */
    double timeout;
    bool verbose;
} mut_env;

#define MUT_SNAPSHOTS 8

typedef struct mut_ctx {
    const mut_env *env;
    fz_build b;
    double timeout;
    char known_failure[512];
    /* the last run, and the image before it */
    bool have_run;
    int last_exit;
    char last_args[1024];
    uint8_t *before;
    size_t before_len;
    /* named trees */
    char snap_name[MUT_SNAPSHOTS][32];
    fz_manifest snap[MUT_SNAPSHOTS];
    int snap_count;
    char failure[4096];         /* why the recipe failed */
    bool recipe_error;          /* the recipe itself is wrong (never a known failure) */
    char cannot_run[256];       /* set: the recipe cannot run here (no FUSE): SKIP, why */
} mut_ctx;

/* A fresh scratch directory under env->tmp. */
void mut_ctx_init(mut_ctx *c, const mut_env *env, const char *workdir);
void mut_ctx_fini(mut_ctx *c);
/* Runs one line. 0: done; -1: an oracle failed or the recipe is wrong (c->failure). */
int mut_exec_line(mut_ctx *c, const fz_line *line);
/* Runs a whole recipe in a fresh scratch directory: 0 passed, -1 failed. */
int mut_run_recipe(const mut_env *env, const fz_recipe *r, mut_ctx *out_ctx);

/* Scratch directories. */
int mut_make_workdir(const mut_env *env, char *out, size_t size);
void mut_remove_workdir(const char *dir);

/* Campaign and minimiser (imgmut_campaign.c). */
typedef struct mut_campaign_options {
    double seconds;
    uint64_t rounds;            /* if nonzero: this many rounds instead of `seconds` */
    uint64_t seed;
    const char *out_dir;        /* recipes of failures */
    bool walkers;               /* favour cycles and deep trees */
    bool mount;                 /* also read through the FUSE mount */
} mut_campaign_options;
int mut_campaign(const mut_env *env, const mut_campaign_options *o);
int mut_minimize(const mut_env *env, const char *in, const char *out);

#endif
