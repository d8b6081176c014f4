/* Operands in one image, and wildcards in image paths (see cli_operands.h). */
#include "tools/cli_operands.h"
#include "tools/cli_dir.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

cli_location *cli_open_operands(const char *cmd, int n, char **operands, bool read_only, cli_session *s)
{
    /* not calloc: cli_parse_location sets each one's fields, and clearing 40 KiB of
     * buffers per operand would fault in every page of them */
    cli_location *locs = malloc((size_t)n * sizeof *locs);
    if (!locs) {
        cli_error(cmd, "out of memory");
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        cli_parse_location(operands[i], &locs[i]);
        if (!locs[i].in_image) {
            if (locs[i].missing[0])
                cli_fail_not_image(operands[i], &locs[i]);
            else
                cli_error(operands[i], "not a file in an image (name it IMAGE:PATH)");
            free(locs);
            return NULL;
        }
        if (locs[i].too_long) {
            cli_error(operands[i], "path too long (at most %u bytes)", CLI_PATH_MAX - 1);
            free(locs);
            return NULL;
        }
        if (strcmp(locs[i].image, locs[0].image) != 0) {
            cli_error(cmd, "all operands must be in the same image");
            free(locs);
            return NULL;
        }
    }
    if (cli_session_open_sized(s, locs[0].image, read_only, 0, CLI_DATA_BYTES) != 0) {
        free(locs);
        return NULL;
    }
    return locs;
}

bool cli_has_wildcards(const char *path) { return strpbrk(path, "*?") != NULL; }

static int fold(unsigned char c) { return c < 0x80 ? tolower(c) : c; }

bool cli_name_matches(const char *pattern, const char *name)
{
    if (name[0] == '.' && pattern[0] != '.')
        return false;
    /* The last '*' seen and where the name stood then: on a mismatch, let it take one more
     * character. Linear in practice, no recursion. */
    const char *star = NULL, *resume = NULL;
    while (*name) {
        if (*pattern == '*') {
            star = pattern++;
            resume = name;
        } else if (*pattern == '?' || (*pattern && fold((unsigned char)*pattern) == fold((unsigned char)*name))) {
            pattern++;
            name++;
        } else if (star) {
            pattern = star + 1;
            name = ++resume;
        } else {
            return false;
        }
    }
    while (*pattern == '*')
        pattern++;
    return *pattern == '\0';
}

static bool add_path(cli_paths *p, size_t *capacity, char *path)
{
    if (!path)
        return false;
    if (p->count == *capacity) {
        size_t grown = *capacity ? *capacity * 2 : 16;
        char **more = realloc(p->paths, grown * sizeof *more);
        if (!more) {
            free(path);
            return false;
        }
        p->paths = more;
        *capacity = grown;
    }
    p->paths[p->count++] = path;
    return true;
}

static char *joined(const char *dir, const char *name)
{
    size_t size = strlen(dir) + strlen(name) + 2;
    char *out = malloc(size);
    if (out)
        cli_join(out, size, dir, name);
    return out;
}

void cli_paths_free(cli_paths *p)
{
    for (size_t i = 0; i < p->count; i++)
        free(p->paths[i]);
    free(p->paths);
    memset(p, 0, sizeof *p);
}

/* The paths of level k+1: each of `from` followed by the component (a pattern is matched
 * against the directory's names; only directories go on when more components follow). */
static fs_status expand_component(fs_conn *c, const cli_paths *from, const char *component, bool last,
                                  cli_paths *to)
{
    size_t capacity = 0;
    bool pattern = cli_has_wildcards(component);
    for (size_t i = 0; i < from->count; i++) {
        if (!pattern) {
            if (!add_path(to, &capacity, joined(from->paths[i], component)))
                return FS_STATUS_ALLOCATION_ERROR;
            continue;
        }
        cli_dir d;
        fs_status st = cli_dir_read(c, from->paths[i], &d);
        if (st == FS_STATUS_NO_FILE || st == FS_STATUS_NOT_DIRECTORY)
            continue;
        if (st != FS_STATUS_SUCCESS)
            return st;
        for (size_t k = 0; k < d.count; k++) {
            if (!cli_name_matches(component, d.entries[k].name) || (!last && !cli_is_dir_stat(&d.entries[k].st)))
                continue;
            if (!add_path(to, &capacity, joined(from->paths[i], d.entries[k].name))) {
                cli_dir_free(&d);
                return FS_STATUS_ALLOCATION_ERROR;
            }
        }
        cli_dir_free(&d);
    }
    return FS_STATUS_SUCCESS;
}

fs_status cli_expand(fs_conn *c, const char *path, cli_paths *out)
{
    memset(out, 0, sizeof *out);
    size_t capacity = 0;
    if (!cli_has_wildcards(path))
        return add_path(out, &capacity, strdup(path)) ? FS_STATUS_SUCCESS : FS_STATUS_ALLOCATION_ERROR;
    if (!add_path(out, &capacity, strdup("/")))
        return FS_STATUS_ALLOCATION_ERROR;
    const char *p = path;
    while (*p) {
        while (*p == '/')
            p++;
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 0)
            break;
        char component[1024];
        if (len >= sizeof component) {
            cli_paths_free(out);
            return FS_STATUS_NAME_TOO_LONG;
        }
        memcpy(component, p, len);
        component[len] = '\0';
        p += len;
        while (*p == '/')
            p++;
        cli_paths next = {0};
        fs_status st = expand_component(c, out, component, *p == '\0', &next);
        cli_paths_free(out);
        *out = next;
        if (st != FS_STATUS_SUCCESS) {
            cli_paths_free(out);
            return st;
        }
        if (out->count == 0)
            return FS_STATUS_NO_FILE;
    }
    return FS_STATUS_SUCCESS;
}

void cli_expand_all(fs_conn *c, const cli_location *locs, int n, cli_paths *out, int *rc)
{
    memset(out, 0, sizeof *out);
    size_t capacity = 0;
    for (int i = 0; i < n; i++) {
        cli_paths one;
        fs_status st = cli_expand(c, locs[i].path, &one);
        if (st == FS_STATUS_NO_FILE) {
            cli_error(cli_where(&locs[i]), "no match");
            *rc = EXIT_FAILED;
            continue;
        }
        if (st != FS_STATUS_SUCCESS) {
            *rc = cli_fail_status(locs[i].image, locs[i].path, st);
            continue;
        }
        size_t k = 0;
        while (k < one.count && add_path(out, &capacity, one.paths[k]))
            k++;
        if (k < one.count) {
            *rc = EXIT_FAILED;
            cli_error(locs[i].image, "out of memory");
            while (++k < one.count)
                free(one.paths[k]);
        }
        free(one.paths);
    }
}
