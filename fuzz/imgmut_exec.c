/* imgmut: running recipe lines: the command, and the oracles that judge it (imgmut.h). */
#include "fuzz/imgmut.h"

#include "fuzz/fz_seed.h"
#include "fuzz/fz_template.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int fail(mut_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(mut_ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->failure, sizeof c->failure, fmt, ap);
    va_end(ap);
    return -1;
}

static int recipe_error(mut_ctx *c, const fz_line *l, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int recipe_error(mut_ctx *c, const fz_line *l, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->recipe_error = true;
    snprintf(c->failure, sizeof c->failure, "recipe line %d (%s): %s", l->lineno, l->argv[0], msg);
    return -1;
}

int mut_make_workdir(const mut_env *env, char *out, size_t size)
{
    snprintf(out, size, "%s/imgmut-XXXXXX", env->tmp);
    return mkdtemp(out) ? 0 : -1;
}

static void remove_recursive(const char *path, int depth)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode) && depth < 200) {
        DIR *d = opendir(path);
        if (d) {
            struct dirent *e;
            while ((e = readdir(d))) {
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                    continue;
                char *child = malloc(strlen(path) + strlen(e->d_name) + 2);
                sprintf(child, "%s/%s", path, e->d_name);
                remove_recursive(child, depth + 1);
                free(child);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

void mut_remove_workdir(const char *dir)
{
    remove_recursive(dir, 0);
}

void mut_ctx_init(mut_ctx *c, const mut_env *env, const char *workdir)
{
    memset(c, 0, sizeof *c);
    c->env = env;
    c->timeout = env->timeout;
    fz_build_init(&c->b, workdir);
}

void mut_ctx_fini(mut_ctx *c)
{
    fz_build_fini(&c->b);
    free(c->before);
    for (int i = 0; i < c->snap_count; i++)
        fz_manifest_free(&c->snap[i]);
    memset(c, 0, sizeof *c);
}

/* ---- running programs ---- */

static const char *sanitizer_report(const char *err)
{
    static const char *const marks[] = {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                                        "ERROR: UndefinedBehaviorSanitizer", "AddressSanitizer:DEADLYSIGNAL"};
    for (size_t i = 0; i < sizeof marks / sizeof marks[0]; i++) {
        const char *p = strstr(err, marks[i]);
        if (p)
            return p;
    }
    return NULL;
}

static void first_line(const char *s, char *out, size_t size)
{
    size_t n = strcspn(s, "\n");
    snprintf(out, size, "%.*s", (int)(n < size ? n : size - 1), s);
}

/* The generic oracles of every run. `documented`: exit statuses the command may give. */
static int judge(mut_ctx *c, const char *what, const fz_proc_result *r, const int *documented, size_t n)
{
    char buf[160], line[600];
    const char *report = sanitizer_report(r->err);
    if (report) {
        first_line(report, line, sizeof line);
        const char *frame = strstr(report, "#1 ");
        char where[300] = "";
        if (frame)
            first_line(frame, where, sizeof where);
        return fail(c, "%s: sanitizer report: %s [%s]", what, line, where);
    }
    if (r->timed_out)
        return fail(c, "%s: hang: %s", what, fz_proc_outcome(r, buf, sizeof buf));
    if (r->signal)
        return fail(c, "%s: crash: %s", what, fz_proc_outcome(r, buf, sizeof buf));
    if (r->left_behind)
        return fail(c, "%s: left processes running after it exited", what);
    for (size_t i = 0; i < n; i++)
        if (r->exit_code == documented[i])
            return 0;
    first_line(r->err, line, sizeof line);
    return fail(c, "%s: undocumented exit status %d (%s)", what, r->exit_code, line);
}

/* Runs the command with substitutions; fills r. */
static int run_command(mut_ctx *c, int argc, char **argv, fz_proc_result *r, char *shown, size_t shown_size)
{
    char **args = calloc((size_t)argc + 2, sizeof(char *));
    args[0] = (char *)c->env->asyncfat;
    size_t at = 0;
    shown[0] = '\0';
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        char *s;
        if (strncmp(a, "IMG", 3) == 0 && (a[3] == '\0' || a[3] == ':')) {
            s = malloc(strlen(c->b.image) + strlen(a) + 1);
            sprintf(s, "%s%s", c->b.image, a + 3);
        } else if (strncmp(a, "WORK/", 5) == 0) {
            s = malloc(strlen(c->b.workdir) + strlen(a) + 2);
            sprintf(s, "%s/%s", c->b.workdir, a + 5);
        } else {
            s = strdup(a);
        }
        args[i + 1] = s;
        at += (size_t)snprintf(shown + at, at < shown_size ? shown_size - at : 0, "%s%s", i ? " " : "", a);
    }
    int rc = fz_proc_run(args, c->b.workdir, c->timeout, r);
    for (int i = 1; i <= argc; i++)
        free(args[i]);
    free(args);
    return rc;
}

static const int check_statuses[] = {0, 1, 4, 8};
static const int command_statuses[] = {0, 1};

static bool is_check(int argc, char **argv) { return argc > 0 && strcmp(argv[0], "check") == 0; }

static int remember_before(mut_ctx *c)
{
    size_t len;
    const uint8_t *img = fz_build_image(&c->b, &len);
    free(c->before);
    c->before = NULL;
    c->before_len = 0;
    if (!img)
        return -1;
    c->before = malloc(len ? len : 1);
    memcpy(c->before, img, len);
    c->before_len = len;
    return 0;
}

static int do_run(mut_ctx *c, const fz_line *l)
{
    if (l->argc < 2)
        return recipe_error(c, l, "run needs a subcommand");
    if (fz_build_sync(&c->b) != 0 || remember_before(c) != 0)
        return recipe_error(c, l, "no image");
    fz_proc_result r;
    char shown[1024];
    if (run_command(c, l->argc - 1, l->argv + 1, &r, shown, sizeof shown) != 0)
        return recipe_error(c, l, "cannot start %s", c->env->asyncfat);
    fz_build_reload(&c->b);
    c->have_run = true;
    c->last_exit = r.exit_code;
    snprintf(c->last_args, sizeof c->last_args, "%s", shown);
    char what[1200];
    snprintf(what, sizeof what, "asyncfat %s", shown);
    int rc = is_check(l->argc - 1, l->argv + 1) ? judge(c, what, &r, check_statuses, 4)
                                                 : judge(c, what, &r, command_statuses, 2);
    if (rc == 0 && c->env->verbose)
        fprintf(stderr, "  %s: exit %d\n", what, r.exit_code);
    fz_proc_result_free(&r);
    return rc;
}

/* ---- oracles ---- */

static int need_run(mut_ctx *c, const fz_line *l)
{
    return c->have_run ? 0 : recipe_error(c, l, "needs a run line before it");
}

static bool current_view(mut_ctx *c, fz_view *v)
{
    size_t len;
    const uint8_t *img = fz_build_image(&c->b, &len);
    return img && fz_view_init(v, (uint8_t *)img, len);
}

static bool before_view(mut_ctx *c, fz_view *v) { return c->before && fz_view_init(v, c->before, c->before_len); }

static int expect_exit(mut_ctx *c, const fz_line *l)
{
    if (need_run(c, l) || l->argc != 2)
        return l->argc != 2 ? recipe_error(c, l, "usage: expect-exit N[,N...]") : -1;
    char *list = strdup(l->argv[1]);
    bool ok = false;
    for (char *t = strtok(list, ","); t; t = strtok(NULL, ","))
        ok |= atoi(t) == c->last_exit;
    free(list);
    return ok ? 0 : fail(c, "asyncfat %s: exit %d, wanted %s", c->last_args, c->last_exit, l->argv[1]);
}

static int expect_unchanged(mut_ctx *c, const fz_line *l)
{
    if (need_run(c, l))
        return -1;
    size_t len;
    const uint8_t *img = fz_build_image(&c->b, &len);
    if (!img || len != c->before_len)
        return fail(c, "asyncfat %s changed the image's size", c->last_args);
    for (size_t i = 0; i < len; i++)
        if (img[i] != c->before[i])
            return fail(c, "asyncfat %s changed the image (first at byte %zu)", c->last_args, i);
    return 0;
}

static int expect_files_kept(mut_ctx *c, const fz_line *l, bool data)
{
    if (need_run(c, l))
        return -1;
    const char *except = l->argc > 1 ? l->argv[1] : NULL;
    fz_view before, now;
    if (!before_view(c, &before))
        return recipe_error(c, l, "the image had no FAT layout before the run");
    if (!current_view(c, &now))
        return fail(c, "asyncfat %s left an image without a FAT layout", c->last_args);
    char why[1024] = "";
    bool ok;
    if (data) {
        fz_data_snapshot s;
        fz_data_snapshot_build(&before, &s);
        ok = fz_data_snapshot_kept(&s, &now, except, why, sizeof why);
        fz_data_snapshot_free(&s);
    } else {
        fz_manifest a, b;
        fz_manifest_build(&before, &a);
        fz_manifest_build(&now, &b);
        ok = fz_manifest_files_kept(&a, &b, except, why, sizeof why);
        fz_manifest_free(&a);
        fz_manifest_free(&b);
    }
    return ok ? 0 : fail(c, "asyncfat %s (exit %d): %s", c->last_args, c->last_exit, why);
}

static int fsck_status(mut_ctx *c, char *report, size_t size)
{
    if (fz_build_sync(&c->b) != 0)
        return -1;
    char *args[] = {"fsck.fat", "-n", c->b.image, NULL};
    fz_proc_result r;
    if (fz_proc_run(args, NULL, 120, &r) != 0)
        return -1;
    int rc = r.timed_out || r.signal ? -1 : r.exit_code;
    if (report) {
        /* The lines after the banner say what it found. */
        const char *p = strchr(r.out, '\n');
        snprintf(report, size, "%.300s%s%.200s", p ? p + 1 : r.out, r.err_len ? " " : "", r.err);
        for (char *q = report; *q; q++)
            if (*q == '\n')
                *q = ' ';
    }
    fz_proc_result_free(&r);
    return rc;
}

static int expect_fsck_clean(mut_ctx *c, const fz_line *l)
{
    char report[512];
    int rc = fsck_status(c, report, sizeof report);
    if (rc < 0)
        return recipe_error(c, l, "cannot run fsck.fat");
    return rc == 0 ? 0 : fail(c, "fsck.fat -n rejects the image%s%s: %s", c->have_run ? " after asyncfat " : "",
                              c->have_run ? c->last_args : "", report);
}

static int expect_check_clean(mut_ctx *c, const fz_line *l)
{
    if (fz_build_sync(&c->b) != 0)
        return recipe_error(c, l, "no image");
    char *argv[] = {"check", "IMG", NULL};
    fz_proc_result r;
    char shown[64];
    if (run_command(c, 2, argv, &r, shown, sizeof shown) != 0)
        return recipe_error(c, l, "cannot run the command");
    int rc = judge(c, "asyncfat check", &r, check_statuses, 4);
    if (rc == 0 && r.exit_code != 0) {
        char line[400] = "";
        const char *p = strstr(r.out, "\n  ");
        if (p)
            first_line(p + 3, line, sizeof line);
        rc = fail(c, "asyncfat check finds problems%s%s (exit %d): %s", c->have_run ? " after asyncfat " : "",
                  c->have_run ? c->last_args : "", r.exit_code, line);
    }
    fz_proc_result_free(&r);
    return rc;
}

/* ---- agreement with mtools ---- */

typedef struct name_set {
    char **names;
    size_t count;
} name_set;

static void set_add(name_set *s, const char *name)
{
    s->names = realloc(s->names, (s->count + 1) * sizeof(char *));
    s->names[s->count++] = strdup(name);
}

static void set_free(name_set *s)
{
    for (size_t i = 0; i < s->count; i++)
        free(s->names[i]);
    free(s->names);
    memset(s, 0, sizeof *s);
}

static bool set_has(const name_set *s, const char *name)
{
    for (size_t i = 0; i < s->count; i++)
        if (strcasecmp(s->names[i], name) == 0)
            return true;
    return false;
}

static bool printable(const char *s)
{
    for (; *s; s++)
        if (!isprint((unsigned char)*s))
            return false;
    return true;
}

/* "ls -R" output: "DIR:" headers, then names, blank lines between. */
static void parse_ls(const char *out, name_set *s)
{
    char dir[4096] = "/";
    const char *p = out;
    while (*p) {
        size_t n = strcspn(p, "\n");
        char line[4096];
        snprintf(line, sizeof line, "%.*s", (int)n, p);
        p += n + (p[n] == '\n');
        if (!line[0])
            continue;
        size_t len = strlen(line);
        if (line[0] == '/' && line[len - 1] == ':') {
            line[len - 1] = '\0';
            snprintf(dir, sizeof dir, "%s", line);
            continue;
        }
        char path[8200];
        snprintf(path, sizeof path, "%s/%s", strcmp(dir, "/") == 0 ? "" : dir, line);
        set_add(s, path);
    }
}

/* "mdir -/ -b" output: "::/path" (directories end in '/'). */
static void parse_mdir(const char *out, name_set *s, name_set *files)
{
    const char *p = out;
    while (*p) {
        size_t n = strcspn(p, "\n");
        char line[4096];
        snprintf(line, sizeof line, "%.*s", (int)n, p);
        p += n + (p[n] == '\n');
        if (strncmp(line, "::/", 3) != 0)
            continue;
        size_t len = strlen(line);
        bool dir = line[len - 1] == '/';
        if (dir)
            line[len - 1] = '\0';
        if (!line[3])
            continue;
        set_add(s, line + 2);
        if (!dir)
            set_add(files, line + 2);
    }
}

static int expect_mtools_agree(mut_ctx *c, const fz_line *l)
{
    if (fz_build_sync(&c->b) != 0)
        return recipe_error(c, l, "no image");
    fz_proc_result m, a;
    char *margs[] = {"mdir", "-/", "-b", "-i", c->b.image, "::", NULL};
    if (fz_proc_run(margs, NULL, 120, &m) != 0)
        return recipe_error(c, l, "cannot run mdir");
    char *ls[] = {"ls", "-R", "IMG:/", NULL};
    char shown[64];
    if (run_command(c, 3, ls, &a, shown, sizeof shown) != 0) {
        fz_proc_result_free(&m);
        return recipe_error(c, l, "cannot run the command");
    }
    int rc = judge(c, "asyncfat ls -R", &a, command_statuses, 2);
    name_set ms = {0}, mfiles = {0}, as = {0};
    if (rc == 0 && m.exit_code == 0) {
        parse_mdir(m.out, &ms, &mfiles);
        parse_ls(a.out, &as);
        if (a.exit_code != 0) {
            char line[400];
            first_line(a.err, line, sizeof line);
            rc = fail(c, "mtools lists the image, asyncfat ls -R fails: %s", line);
        }
        for (size_t i = 0; rc == 0 && i < ms.count; i++)
            if (printable(ms.names[i]) && !set_has(&as, ms.names[i]))
                rc = fail(c, "mtools lists %s, asyncfat ls -R does not", ms.names[i]);
        for (size_t i = 0; rc == 0 && i < as.count; i++)
            if (printable(as.names[i]) && !set_has(&ms, as.names[i]))
                rc = fail(c, "asyncfat ls -R lists %s, mtools does not", as.names[i]);
    }
    /* Contents of a few files. */
    for (size_t i = 0; rc == 0 && i < mfiles.count && i < 4; i++) {
        size_t k = mfiles.count <= 4 ? i : (i * 7919) % mfiles.count;
        const char *path = mfiles.names[k];
        if (!printable(path))
            continue;
        char mpath[4200], ipath[4200];
        snprintf(mpath, sizeof mpath, "::%s", path);
        snprintf(ipath, sizeof ipath, "IMG:%s", path);
        char *targs[] = {"mtype", "-i", c->b.image, mpath, NULL};
        char *cargs[] = {"cat", ipath, NULL};
        fz_proc_result mt, ct;
        if (fz_proc_run(targs, NULL, 120, &mt) != 0)
            break;
        if (run_command(c, 2, cargs, &ct, shown, sizeof shown) == 0) {
            rc = judge(c, "asyncfat cat", &ct, command_statuses, 2);
            if (rc == 0 && mt.exit_code == 0 &&
                (ct.exit_code != 0 || ct.out_len != mt.out_len || memcmp(ct.out, mt.out, ct.out_len) != 0))
                rc = fail(c, "asyncfat cat %s reads %zu bytes (exit %d), mtools %zu bytes%s", path, ct.out_len,
                          ct.exit_code, mt.out_len, ct.out_len == mt.out_len ? " (other bytes)" : "");
            fz_proc_result_free(&ct);
        }
        fz_proc_result_free(&mt);
    }
    set_free(&ms);
    set_free(&mfiles);
    set_free(&as);
    fz_proc_result_free(&m);
    fz_proc_result_free(&a);
    return rc;
}

/* ---- the FUSE mount ---- */

/* In a child: walk the mounted tree (bounded), one line per entry: path, size, content
 * hash (of the first 1 MiB) or "-" when it cannot be read. */
static void walk_mount(const char *root, const char *rel, FILE *out, int depth, int *budget)
{
    char path[8192];
    snprintf(path, sizeof path, "%s%s", root, rel);
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *e;
    while (*budget > 0 && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        (*budget)--;
        char child[8192], full[8192];
        snprintf(child, sizeof child, "%s/%s", rel, e->d_name);
        snprintf(full, sizeof full, "%s%s", root, child);
        struct stat st;
        if (lstat(full, &st) != 0) {
            fprintf(out, "%s\t?\t-\n", child);
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            fprintf(out, "%s\tdir\t-\n", child);
            if (depth < 16)
                walk_mount(root, child, out, depth + 1, budget);
            continue;
        }
        FILE *f = fopen(full, "rb");
        static uint8_t buf[1u << 20];
        size_t total = f ? fread(buf, 1, sizeof buf, f) : 0;
        bool ok = f && !ferror(f) && (total == sizeof buf || total == (size_t)st.st_size);
        uint64_t h = fz_hash(buf, total, (uint64_t)st.st_size);
        if (f)
            fclose(f);
        if (ok)
            fprintf(out, "%s\t%lld\t%016llx\n", child, (long long)st.st_size, (unsigned long long)h);
        else
            fprintf(out, "%s\t%lld\t-\n", child, (long long)st.st_size);
    }
    closedir(d);
}

static bool mounted(const char *mnt, dev_t parent_dev)
{
    struct stat st;
    return stat(mnt, &st) == 0 && st.st_dev != parent_dev;
}

/* mount-walk [agree]: mount the image read-only with `asyncfat mount`, walk it (in a
 * child, with the time limit), unmount with fusermount3. The mount process must start
 * (or refuse the volume with a documented status), serve the walk without hanging, and
 * end cleanly after the unmount. With `agree`, every file mtools lists reads through the
 * mount with the bytes mtools reads (compared as hashes of their first MiB). */
static int mount_walk(mut_ctx *c, const fz_line *l)
{
    bool agree = l->argc > 1 && strcmp(l->argv[1], "agree") == 0;
    if (access("/dev/fuse", R_OK | W_OK) != 0 || system("command -v fusermount3 >/dev/null 2>&1") != 0) {
        snprintf(c->cannot_run, sizeof c->cannot_run, "FUSE cannot be used here (no /dev/fuse or fusermount3)");
        return fail(c, "%s", c->cannot_run);
    }
    if (fz_build_sync(&c->b) != 0 || remember_before(c) != 0)
        return recipe_error(c, l, "no image");
    c->have_run = true;
    c->last_exit = 0;
    snprintf(c->last_args, sizeof c->last_args, "mount -o ro (walk)");
    char mnt[700], errlog[700], walklog[700];
    snprintf(mnt, sizeof mnt, "%s/mnt", c->b.workdir);
    snprintf(errlog, sizeof errlog, "%s/mount.err", c->b.workdir);
    snprintf(walklog, sizeof walklog, "%s/mount.walk", c->b.workdir);
    mkdir(mnt, 0755);
    struct stat parent;
    if (stat(c->b.workdir, &parent) != 0)
        return recipe_error(c, l, "no scratch directory");
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, errlog, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
    char *args[] = {(char *)c->env->asyncfat, "mount", c->b.image, mnt, "-f", "-o", "ro", NULL};
    pid_t pid;
    int spawned = posix_spawn(&pid, c->env->asyncfat, &fa, &attr, args, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (spawned != 0)
        return recipe_error(c, l, "cannot start %s", c->env->asyncfat);
    setpgid(pid, pid);
    int status = 0, rc = 0;
    bool exited = false;
    for (int i = 0; i < 300 && !mounted(mnt, parent.st_dev); i++) {
        if (waitpid(pid, &status, WNOHANG) == pid) {
            exited = true;
            break;
        }
        usleep(50 * 1000);
    }
    if (!exited && !mounted(mnt, parent.st_dev)) {
        kill(-pid, SIGKILL);
        waitpid(pid, &status, 0);
        return fail(c, "asyncfat mount: not mounted after 15 s");
    }
    if (!exited) {
        pid_t walker = fork();
        if (walker == 0) {
            alarm((unsigned)c->timeout);
            FILE *out = fopen(walklog, "w");
            int budget = 2000;
            if (out) {
                walk_mount(mnt, "", out, 0, &budget);
                fclose(out);
            }
            _exit(0);
        }
        int ws = 0;
        waitpid(walker, &ws, 0);
        if (WIFSIGNALED(ws))
            rc = fail(c, "reading through the mount: %s", WTERMSIG(ws) == SIGALRM ? "hang (time limit)" : "crash");
        char *um[] = {"fusermount3", "-u", mnt, NULL};
        fz_proc_result ur;
        if (fz_proc_run(um, NULL, 30, &ur) == 0)
            fz_proc_result_free(&ur);
        for (int i = 0; i < 400; i++) {
            if (waitpid(pid, &status, WNOHANG) == pid) {
                exited = true;
                break;
            }
            usleep(50 * 1000);
        }
        if (!exited) {
            kill(-pid, SIGKILL);
            waitpid(pid, &status, 0);
            char *lazy[] = {"fusermount3", "-u", "-z", mnt, NULL};
            if (fz_proc_run(lazy, NULL, 30, &ur) == 0)
                fz_proc_result_free(&ur);
            return rc ? rc : fail(c, "asyncfat mount did not end within 20 s of the unmount");
        }
    }
    /* Judge the mount process as any run. */
    size_t elen = 0;
    uint8_t *err = fz_read_file(errlog, &elen);
    fz_proc_result r;
    memset(&r, 0, sizeof r);
    r.err = calloc(1, elen + 1);
    r.out = calloc(1, 1);
    if (err)
        memcpy(r.err, err, elen);
    free(err);
    if (WIFEXITED(status))
        r.exit_code = WEXITSTATUS(status);
    else if (WIFSIGNALED(status))
        r.signal = WTERMSIG(status);
    c->last_exit = r.exit_code;
    if (rc == 0)
        rc = judge(c, "asyncfat mount", &r, command_statuses, 2);
    fz_proc_result_free(&r);
    fz_build_reload(&c->b);
    if (rc != 0 || !agree)
        return rc;
    if (c->last_exit != 0)
        return fail(c, "asyncfat mount refused a volume mtools reads (exit %d)", c->last_exit);
    /* Every file mtools lists must read the same through the mount. */
    size_t wlen = 0;
    char *walk = (char *)fz_read_file(walklog, &wlen);
    fz_proc_result m;
    char *margs[] = {"mdir", "-/", "-b", "-i", c->b.image, "::", NULL};
    if (!walk || fz_proc_run(margs, NULL, 120, &m) != 0) {
        free(walk);
        return recipe_error(c, l, "no walk or no mdir");
    }
    /* A newline before the first line, so that every path is found as "\n/path\t". */
    walk = realloc(walk, wlen + 2);
    memmove(walk + 1, walk, wlen);
    walk[0] = '\n';
    walk[wlen + 1] = '\0';
    name_set ms = {0}, mfiles = {0};
    parse_mdir(m.out, &ms, &mfiles);
    for (size_t i = 0; rc == 0 && i < mfiles.count && i < 6; i++) {
        const char *path = mfiles.names[i];
        if (!printable(path))
            continue;
        char mpath[4200], key[4200];
        snprintf(mpath, sizeof mpath, "::%s", path);
        snprintf(key, sizeof key, "\n%s\t", path);
        char *at = strcasestr(walk, key);
        char *targs[] = {"mtype", "-i", c->b.image, mpath, NULL};
        fz_proc_result mt;
        if (fz_proc_run(targs, NULL, 120, &mt) != 0)
            break;
        size_t n = mt.out_len < (1u << 20) ? mt.out_len : (1u << 20);
        char want[64];
        snprintf(want, sizeof want, "\t%zu\t%016llx", mt.out_len,
                 (unsigned long long)fz_hash(mt.out, n, (uint64_t)mt.out_len));
        if (!at)
            rc = fail(c, "mtools lists %s, the mount does not", path);
        else if (strncmp(strchr(at + 1, '\t'), want, strlen(want)) != 0)
            rc = fail(c, "%s reads differently through the mount than with mtools", path);
        fz_proc_result_free(&mt);
    }
    set_free(&ms);
    set_free(&mfiles);
    fz_proc_result_free(&m);
    free(walk);
    return rc;
}

/* ---- snapshots ---- */

static int snapshot(mut_ctx *c, const fz_line *l)
{
    if (l->argc != 2 || c->snap_count == MUT_SNAPSHOTS)
        return recipe_error(c, l, "usage: snapshot NAME (at most %d)", MUT_SNAPSHOTS);
    fz_view v;
    if (!current_view(c, &v))
        return recipe_error(c, l, "the image has no FAT layout");
    snprintf(c->snap_name[c->snap_count], sizeof c->snap_name[0], "%s", l->argv[1]);
    fz_manifest_build(&v, &c->snap[c->snap_count++]);
    return 0;
}

static const fz_manifest *find_snapshot(mut_ctx *c, const char *name)
{
    for (int i = 0; i < c->snap_count; i++)
        if (strcmp(c->snap_name[i], name) == 0)
            return &c->snap[i];
    return NULL;
}

static int expect_manifest(mut_ctx *c, const fz_line *l, bool or_refused)
{
    const fz_manifest *snap = l->argc == 2 ? find_snapshot(c, l->argv[1]) : NULL;
    if (!snap)
        return recipe_error(c, l, "no such snapshot");
    if (or_refused) {
        if (need_run(c, l))
            return -1;
        size_t len;
        const uint8_t *img = fz_build_image(&c->b, &len);
        if ((c->last_exit == 4 || c->last_exit == 8) && img && len == c->before_len && memcmp(img, c->before, len) == 0)
            return 0;
        char report[512];
        int fsck = fsck_status(c, report, sizeof report);
        if (fsck != 0)
            return fail(c, "asyncfat %s (exit %d) neither refused nor left a volume fsck.fat accepts: %s",
                        c->last_args, c->last_exit, report);
    }
    fz_view v;
    fz_manifest now;
    if (!current_view(c, &v))
        return fail(c, "the image has no FAT layout any more");
    fz_manifest_build(&v, &now);
    char why[1024] = "";
    bool ok = fz_manifest_equal(snap, &now, why, sizeof why);
    fz_manifest_free(&now);
    if (ok)
        return 0;
    return c->have_run ? fail(c, "after asyncfat %s (exit %d) the tree differs from snapshot %s: %s", c->last_args,
                              c->last_exit, l->argv[1], why)
                       : fail(c, "the tree differs from snapshot %s: %s", l->argv[1], why);
}

/* ---- libFuzzer targets ---- */

static int run_fuzz_input(mut_ctx *c, const char *target, const uint8_t *input, size_t len)
{
    char path[700], bin[700];
    snprintf(path, sizeof path, "%s/fuzz-input", c->b.workdir);
    snprintf(bin, sizeof bin, "%s/fuzz_%s", c->env->fuzz_dir, target);
    if (fz_write_file(path, input, len) != 0)
        return fail(c, "cannot write %s", path);
    if (access(bin, X_OK) != 0) {
        c->recipe_error = true;
        return fail(c, "no libFuzzer target %s", bin);
    }
    char *args[] = {bin, path, NULL};
    fz_proc_result r;
    if (fz_proc_run(args, c->b.workdir, c->timeout, &r) != 0)
        return fail(c, "cannot run %s", bin);
    int rc = 0;
    if (r.timed_out || r.signal || r.exit_code != 0) {
        char line[600] = "", buf[100];
        const char *p = strstr(r.err, "ORACLE ");
        if (!p)
            p = sanitizer_report(r.err);
        if (!p)
            p = strstr(r.err, "SUMMARY:");
        if (p)
            first_line(p, line, sizeof line);
        const char *frame = p ? strstr(p, "#1 ") : NULL;
        char where[300] = "";
        if (frame && !strstr(line, "ORACLE"))
            first_line(frame, where, sizeof where);
        rc = fail(c, "fuzz_%s: %s: %s %s", target, fz_proc_outcome(&r, buf, sizeof buf), line, where);
    }
    fz_proc_result_free(&r);
    return rc;
}

static int fuzz_target(mut_ctx *c, const fz_line *l)
{
    const fz_target_info *t = l->argc >= 2 ? fz_target_find(l->argv[1]) : NULL;
    if (!t || !t->windows)
        return recipe_error(c, l, "usage: fuzz-target bpb|dir|check [FLAGS]");
    const fz_template_spec *spec = fz_template_find(c->b.template_name);
    if (!spec || !c->b.have_seed)
        return recipe_error(c, l, "needs a template line and damage steps before it");
    unsigned index = 0;
    while (fz_template_at(index) != spec)
        index++;
    uint64_t flags = 0;
    if (l->argc > 2 && !fz_parse_u64(l->argv[2], &flags))
        return recipe_error(c, l, "bad flags");
    size_t img_len, len;
    const uint8_t *img = fz_build_image(&c->b, &img_len);
    uint8_t *input = fz_input_from_image(&c->b.seed_view.L, img, img_len, t->windows,
                                         (uint8_t)(index | (unsigned)flags << 2), &len);
    int rc = run_fuzz_input(c, l->argv[1], input, len);
    free(input);
    return rc;
}

static int fuzz_input(mut_ctx *c, const fz_line *l)
{
    if (l->argc < 3 || !fz_target_find(l->argv[1]))
        return recipe_error(c, l, "usage: fuzz-input TARGET HEX...");
    size_t cap = 0;
    for (int i = 2; i < l->argc; i++)
        cap += strlen(l->argv[i]) / 2;
    uint8_t *input = malloc(cap + 1);
    size_t n = 0;
    for (int i = 2; i < l->argc; i++) {
        const char *h = l->argv[i];
        for (size_t k = 0; h[k] && h[k + 1]; k += 2) {
            unsigned v;
            if (sscanf(h + k, "%2x", &v) != 1) {
                free(input);
                return recipe_error(c, l, "bad hex '%s'", h);
            }
            input[n++] = (uint8_t)v;
        }
    }
    int rc = run_fuzz_input(c, l->argv[1], input, n);
    free(input);
    return rc;
}

static int local_file(mut_ctx *c, const fz_line *l)
{
    uint64_t size;
    if (l->argc != 3 || strchr(l->argv[1], '/') || !fz_parse_size(l->argv[2], &size))
        return recipe_error(c, l, "usage: local NAME SIZE");
    char path[700];
    snprintf(path, sizeof path, "%s/%s", c->b.workdir, l->argv[1]);
    uint8_t *data = malloc(size ? size : 1);
    fz_fill_pattern(data, size, l->argv[1]);
    int rc = fz_write_file(path, data, size);
    free(data);
    return rc == 0 ? 0 : recipe_error(c, l, "cannot write %s", path);
}

static int known_failure(mut_ctx *c, const fz_line *l)
{
    size_t at = 0;
    for (int i = 1; i < l->argc; i++)
        at += (size_t)snprintf(c->known_failure + at, at < sizeof c->known_failure ? sizeof c->known_failure - at : 0,
                               "%s%s", i > 1 ? " " : "", l->argv[i]);
    return l->argc > 1 ? 0 : recipe_error(c, l, "usage: known-failure BRANCH: WHY");
}

static int set_timeout(mut_ctx *c, const fz_line *l)
{
    uint64_t s;
    if (l->argc != 2 || !fz_parse_u64(l->argv[1], &s))
        return recipe_error(c, l, "usage: timeout SECONDS");
    c->timeout = (double)s;
    return 0;
}

static int expect_names_kept(mut_ctx *c, const fz_line *l) { return expect_files_kept(c, l, false); }
static int expect_data_kept(mut_ctx *c, const fz_line *l) { return expect_files_kept(c, l, true); }
static int expect_manifest_kept(mut_ctx *c, const fz_line *l) { return expect_manifest(c, l, false); }
static int expect_refused_or_restored(mut_ctx *c, const fz_line *l) { return expect_manifest(c, l, true); }

/* The steps after the image is built (fz_build_step takes those that build it). */
static const struct {
    const char *name;
    int (*run)(mut_ctx *c, const fz_line *l);
} exec_steps[] = {
    {"known-failure", known_failure},
    {"timeout", set_timeout},
    {"local", local_file},
    {"run", do_run},
    {"expect-exit", expect_exit},
    {"expect-unchanged", expect_unchanged},
    {"expect-files-kept", expect_names_kept},
    {"expect-data-kept", expect_data_kept},
    {"expect-fsck-clean", expect_fsck_clean},
    {"expect-check-clean", expect_check_clean},
    {"expect-mtools-agree", expect_mtools_agree},
    {"snapshot", snapshot},
    {"expect-manifest", expect_manifest_kept},
    {"expect-refused-or-restored", expect_refused_or_restored},
    {"mount-walk", mount_walk},
    {"fuzz-target", fuzz_target},
    {"fuzz-input", fuzz_input},
};

int mut_exec_line(mut_ctx *c, const fz_line *l)
{
    char err[1024] = "";
    int built = fz_build_step(&c->b, l, err, sizeof err);
    if (built == 1)
        return 0;
    if (built < 0)
        return recipe_error(c, l, "%s", err);
    for (size_t i = 0; i < sizeof exec_steps / sizeof exec_steps[0]; i++)
        if (strcmp(l->argv[0], exec_steps[i].name) == 0)
            return exec_steps[i].run(c, l);
    return recipe_error(c, l, "unknown step");
}

static bool is_seed_line(const fz_line *l)
{
    static const char *const seed_steps[] = {"mkfs", "dir", "file", "files", "template"};
    for (size_t i = 0; i < sizeof seed_steps / sizeof seed_steps[0]; i++)
        if (strcmp(l->argv[0], seed_steps[i]) == 0)
            return true;
    return false;
}

/* The recipe's leading seed lines come from the image cache (fz_cached_image) when they
 * can: building a seed is deterministic, and mkfs.fat and mtools on a 34 MiB FAT32 image
 * cost more than the rest of most recipes. Returns how many lines it covered (0: none). */
static size_t adopt_cached_seed(mut_ctx *c, const fz_recipe *r)
{
    size_t n = 0, len = 0;
    char *text = NULL;
    const char *template_name = NULL;
    while (n < r->count && is_seed_line(&r->lines[n])) {
        const fz_line *l = &r->lines[n];
        if (strcmp(l->argv[0], "template") == 0 && l->argc == 2)
            template_name = l->argv[1];
        for (int k = 0; k < l->argc; k++) {
            size_t need = len + strlen(l->argv[k]) + 4;
            text = realloc(text, need + 1);
            len += (size_t)sprintf(text + len, strchr(l->argv[k], ' ') ? "\"%s\"%s" : "%s%s", l->argv[k],
                                   k + 1 < l->argc ? " " : "\n");
        }
        n++;
    }
    if (n == 0)
        return 0;
    char path[700];
    size_t bytes;
    uint8_t *img = fz_cached_image("recipe", text, 0, &bytes, path, sizeof path);
    free(text);
    if (!img)
        return 0;
    int rc = fz_build_adopt(&c->b, img, bytes, template_name);
    munmap(img, bytes);
    return rc == 0 ? n : 0;
}

int mut_run_recipe(const mut_env *env, const fz_recipe *r, mut_ctx *out)
{
    char dir[600];
    if (mut_make_workdir(env, dir, sizeof dir) != 0) {
        memset(out, 0, sizeof *out);
        snprintf(out->failure, sizeof out->failure, "cannot make a scratch directory in %s", env->tmp);
        out->recipe_error = true;
        return -1;
    }
    mut_ctx_init(out, env, dir);
    int rc = 0;
    for (size_t i = adopt_cached_seed(out, r); i < r->count && rc == 0; i++)
        rc = mut_exec_line(out, &r->lines[i]);
    if (rc == 0 && !out->have_run && !out->recipe_error) {
        bool any_check = false;
        for (size_t i = 0; i < r->count; i++)
            any_check |= strncmp(r->lines[i].argv[0], "expect-", 7) == 0 || strncmp(r->lines[i].argv[0], "fuzz-", 5) == 0;
        if (!any_check) {
            out->recipe_error = true;
            snprintf(out->failure, sizeof out->failure, "the recipe checks nothing (no run, expect or fuzz line)");
            rc = -1;
        }
    }
    if (!env->verbose || rc == 0)
        mut_remove_workdir(dir);
    else
        fprintf(stderr, "  (scratch directory kept: %s)\n", dir);
    return rc;
}
