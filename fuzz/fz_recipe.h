/* fz_recipe: the text form of a reproduction, and the part of its execution that builds
 * and damages the image (the image mutator adds the commands that run programs and check
 * oracles). A recipe is never an image: it says how to rebuild one from a seed made at
 * test time.
 *
 * Syntax: one step per line; '#' starts a comment; tokens are separated by blanks, and
 * double quotes group blanks into a token (anywhere in it: entry:"/a b"+11).
 *   seed        mkfs ARGS... SIZE      mkfs.fat -C --invariant ARGS IMAGE SIZE
 *               dir PATH | file PATH SIZE | files PREFIX COUNT SIZE (PREFIX1..PREFIXn)
 *               template NAME          the seed lines of a fuzz template (fz_template.h)
 *   damage      poke WHERE HEXBYTE...  | poke16 WHERE VALUE | poke32 WHERE VALUE
 *               fat COPY|all CLUSTER VALUE
 *               set PATH cluster|size|attr|byte0 VALUE
 *               copy FROM TO LENGTH    | truncate WHERE
 * WHERE is STRUCTURE[+OFFSET]: boot, fsinfo, backup, fat0..fat7, root, data, cluster:N,
 * entry:PATH (its short entry), lfn:PATH (its first LFN slot), dot:PATH and dotdot:PATH
 * (the "." and ".." entries of directory PATH), content:PATH (its first cluster), end.
 * CLUSTER and VALUE are numbers, or @PATH (first cluster), @PATH#K (the K-th cluster of
 * its chain, from 0), root (the root's cluster: 0 on FAT12/16), eoc, free, bad, max (the
 * last valid cluster), max+N. Every name is resolved on the seed as it was before the first
 * damage step, so offsets stay the same whatever earlier steps broke.
 * Other lines (run, expect-*, fuzz-target, known-failure, local, ...) belong to the
 * image mutator (imgmut.c).
 */
#ifndef ASYNCFAT_FUZZ_FZ_RECIPE_H
#define ASYNCFAT_FUZZ_FZ_RECIPE_H

#include "fuzz/fz_image.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fz_line {
    int lineno;
    int argc;
    char **argv;
} fz_line;

typedef struct fz_recipe {
    char *name;                 /* file name without directory and .recipe */
    fz_line *lines;
    size_t count;
} fz_recipe;

int fz_recipe_parse(const char *text, const char *name, fz_recipe *out, char *err, size_t err_size);
int fz_recipe_load(const char *path, fz_recipe *out, char *err, size_t err_size);
void fz_recipe_free(fz_recipe *r);

/* The image a recipe builds and damages, in workdir/image.img. */
typedef struct fz_build {
    char workdir[512];
    char image[600];
    uint8_t *img;               /* current contents while damage steps run */
    size_t len;
    bool loaded, dirty;
    bool seed_pending;          /* seed steps ran; timestamps not yet normalised */
    uint8_t *seed;              /* the image before the first damage step */
    size_t seed_len;
    fz_view seed_view;
    bool have_seed;
    bool seed_layout_ok;
    char template_name[32];     /* set by a template line */
} fz_build;

void fz_build_init(fz_build *b, const char *workdir);
void fz_build_fini(fz_build *b);
/* Runs a seed or damage line: 1 done, 0 not such a line, -1 failed (err says why). */
int fz_build_step(fz_build *b, const fz_line *line, char *err, size_t err_size);
/* Start from an image built before (the campaign keeps its seeds in memory), as if seed
 * lines had just made it. Returns 0 or -1. */
int fz_build_adopt(fz_build *b, const uint8_t *img, size_t len, const char *template_name);
/* Write damaged contents back to the image file (before a program looks at it). */
int fz_build_sync(fz_build *b);
/* The current image contents (loaded from the file if needed). */
const uint8_t *fz_build_image(fz_build *b, size_t *len);
/* Forget the in-memory copy (a program changed the file). */
void fz_build_reload(fz_build *b);

/* Resolve a WHERE expression on the seed: byte offset. */
bool fz_build_where(fz_build *b, const char *where, uint64_t *offset, char *err, size_t err_size);
bool fz_build_value(fz_build *b, const char *value, uint64_t *out, char *err, size_t err_size);

#endif
