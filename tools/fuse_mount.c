/* asyncfat mount: the FUSE file system, a client of the server like the rest of the
 * command. libfuse's multithreaded loop calls these operations from several threads at
 * once; each submits its own request and waits for its own completion (fs_client), so
 * concurrent FUSE requests are concurrent server requests.
 *
 * Files and directories are opened on the server (fi->fh holds the server's fd), so a file
 * unlinked while open stays usable through its descriptors (the server's POSIX semantics).
 * libfuse's high-level API cannot answer a path-less getattr (fstat after unlink) under
 * hard_remove, so it hides such a file by renaming it to .fuse_hidden*; that rename never
 * reaches the volume: we pin the file with an fd of our own, unlink it on the server, and
 * answer for the hidden name from that fd until libfuse unlinks it at the last release.
 * Name components over 255 bytes get ENAMETOOLONG here, as the kernel does not check them
 * for FUSE. Directory modification times follow their entries in the engine itself.
 * Unmount (fusermount3 -u) or SIGINT/SIGTERM end the loop; then DEINITIALISE makes the
 * server sync and unmount, leaving the volume clean.
 *
 * Speed: every server request is a round trip to another process, so the mount avoids
 * them where the answer is already known. While mounted this is the volume's only writer,
 * so the kernel may keep names, attributes and file pages long (op_init); directory
 * listings carry attributes (readdirplus, op_readdir) and come a batch of entries per
 * request (DIR_READ_BATCH), so `ls -l` or `rm -r` look nothing up; attributes libfuse asks
 * for again and again come from a small cache (attr_*), which creates (OPEN_STAT) and time
 * changes (SET_TIMES_STAT) fill with the record their reply carries; the lookup before a
 * create is answered here when the directory's names are all known (names_*); flush is not
 * implemented, so the kernel stops sending it after the first ENOSYS. A `touch` of a new
 * file is three requests (OPEN_STAT, SET_TIMES_STAT, FILE_CLOSE). A file opened for reading
 * comes with its first bytes for the first READ (read_handle: OPEN_READ, or READ_PATH for a
 * small file, which keeps no server fd), so reading a small file is one request; a
 * sequential read goes in 1 MiB windows (raise_readahead).
 */
#define FUSE_USE_VERSION 312
#include "tools/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MOUNT_SHARE_BYTES (32u << 20)
#define MOUNT_THREADS 32u
#define CACHE_TIMEOUT_S 3600.0   /* kernel's name and attribute caching, see op_init */
#define BUSY_RETRIES 200          /* x 5 ms: a racing RELEASEDIR reaches the server first */

static fs_conn *conn;
static uid_t owner_uid;
static gid_t owner_gid;

/* Files libfuse hid (renamed to .fuse_hidden*) after an unlink while open. */
typedef struct hidden_file {
    char *path;
    uint64_t fd;               /* ours: keeps the unlinked file alive for getattr */
    struct hidden_file *next;
} hidden_file;
static pthread_mutex_t hidden_lock = PTHREAD_MUTEX_INITIALIZER;
static hidden_file *hidden_files;

static bool is_hidden_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return strncmp(slash ? slash + 1 : path, ".fuse_hidden", 12) == 0;
}

/* The fd of a hidden file, or false. */
static bool hidden_fd(const char *path, uint64_t *fd)
{
    bool found = false;
    pthread_mutex_lock(&hidden_lock);
    for (hidden_file *h = hidden_files; h; h = h->next) {
        if (strcmp(h->path, path) == 0) {
            *fd = h->fd;
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&hidden_lock);
    return found;
}

/* Instead of renaming an open file to `hidden`: pin it, unlink it, remember it. */
static fs_status hide_file(const char *path, const char *hidden)
{
    hidden_file *h = calloc(1, sizeof *h);
    if (!h || !(h->path = strdup(hidden))) {
        free(h);
        return FS_STATUS_ALLOCATION_ERROR;
    }
    fs_status st = fs_conn_open_file(conn, path, FS_OPEN_FLAGS_READ_ONLY, &h->fd);
    if (st == FS_STATUS_SUCCESS) {
        st = fs_conn_remove(conn, path);
        if (st != FS_STATUS_SUCCESS)
            fs_conn_close_file(conn, h->fd);
    }
    if (st != FS_STATUS_SUCCESS) {
        free(h->path);
        free(h);
        return st;
    }
    pthread_mutex_lock(&hidden_lock);
    h->next = hidden_files;
    hidden_files = h;
    pthread_mutex_unlock(&hidden_lock);
    return FS_STATUS_SUCCESS;
}

/* libfuse unlinks a hidden file at its last release: drop our fd. */
static bool forget_hidden(const char *path)
{
    hidden_file *found = NULL;
    pthread_mutex_lock(&hidden_lock);
    for (hidden_file **p = &hidden_files; *p; p = &(*p)->next) {
        if (strcmp((*p)->path, path) == 0) {
            found = *p;
            *p = found->next;
            break;
        }
    }
    pthread_mutex_unlock(&hidden_lock);
    if (!found)
        return false;
    fs_conn_close_file(conn, found->fd);
    free(found->path);
    free(found);
    return true;
}

static int check_names(const char *path)
{
    if (!path)
        return 0;
    size_t run = 0;
    for (const char *p = path; *p; p++) {
        run = *p == '/' ? 0 : run + 1;
        if (run > FS_MAX_NAME_LENGTH)
            return -ENAMETOOLONG;
    }
    return 0;
}

static int to_errno(fs_status st) { return -fs_status_to_errno(st); }

static void fill_stat(const fs_stat *in, struct stat *out)
{
    memset(out, 0, sizeof *out);
    out->st_ino = in->ino;
    out->st_mode = (mode_t)in->mode;
    out->st_nlink = (nlink_t)(in->nlink ? in->nlink : 1);
    out->st_uid = owner_uid;
    out->st_gid = owner_gid;
    out->st_size = (off_t)in->size;
    out->st_blksize = (blksize_t)(in->blksize ? in->blksize : 4096);
    out->st_blocks = (blkcnt_t)in->blocks;
    out->st_atim.tv_sec = (time_t)in->atime;
    out->st_atim.tv_nsec = (long)in->atime_nsec;
    out->st_mtim.tv_sec = (time_t)in->mtime;
    out->st_mtim.tv_nsec = (long)in->mtime_nsec;
    out->st_ctim.tv_sec = (time_t)in->ctime;
    out->st_ctim.tv_nsec = (long)in->ctime_nsec;
}

/* ---- attribute cache ----
 * libfuse asks for a file's attributes again after almost every operation (after chmod,
 * chown and utimens, after create), and the kernel asks after each read (the access time).
 * Between two changes the answer cannot differ, so the last record the server gave for a
 * path is kept here, from getattr and from directory listings. Any change made through the
 * mount (write, truncate, times, create, mkdir, unlink, rmdir, rename) drops the whole cache
 * at once by advancing an epoch: simple, and right by construction. A record fetched while a
 * change was under way is born stale (its epoch is already past) and never used. Records
 * live one second at most, so the access date a read moves (days, on FAT) is the only
 * thing that can be a second late, as with the kernel's own attribute timeout. */
#define ATTR_CACHE_SLOTS 4096u            /* direct-mapped by path hash */
#define ATTR_CACHE_LIFE_NS 1000000000ll

typedef struct attr_entry {
    char *path;                /* NULL: empty slot */
    uint64_t epoch;            /* attr_epoch when the request was sent */
    int64_t filled_ns;         /* CLOCK_MONOTONIC */
    fs_stat rec;
} attr_entry;

static pthread_mutex_t attr_lock = PTHREAD_MUTEX_INITIALIZER;
static attr_entry attr_cache[ATTR_CACHE_SLOTS];
static uint64_t attr_epoch;    /* advanced by every change to the volume */
static uint64_t rename_epoch;  /* advanced by every rename: a listed directory's path may be stale */

static int64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static attr_entry *attr_slot(const char *path)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *p = path; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    return &attr_cache[h % ATTR_CACHE_SLOTS];
}

/* The epoch to tag a record with: read it before sending the request. */
static uint64_t attr_epoch_now(void)
{
    pthread_mutex_lock(&attr_lock);
    uint64_t e = attr_epoch;
    pthread_mutex_unlock(&attr_lock);
    return e;
}

/* Something on the volume changed (or may have): forget every record. */
static void volume_changed(bool renamed)
{
    pthread_mutex_lock(&attr_lock);
    attr_epoch++;
    if (renamed)
        rename_epoch++;
    pthread_mutex_unlock(&attr_lock);
}

static void attr_store(const char *path, const fs_stat *rec, uint64_t epoch);

/* A change made through the mount whose reply carried the changed file's record (create,
 * set times): forget every record, as volume_changed does, then keep this one for the
 * getattr libfuse sends next, unless another change finished while the request was out
 * (that one may have happened on the server after the record was taken). */
static void volume_changed_to(const char *path, const fs_stat *rec, uint64_t sent_epoch)
{
    pthread_mutex_lock(&attr_lock);
    bool alone = attr_epoch == sent_epoch;
    uint64_t epoch = ++attr_epoch;
    pthread_mutex_unlock(&attr_lock);
    if (alone)
        attr_store(path, rec, epoch);
}

static void attr_store(const char *path, const fs_stat *rec, uint64_t epoch)
{
    pthread_mutex_lock(&attr_lock);
    if (epoch == attr_epoch) {
        attr_entry *e = attr_slot(path);
        if (!e->path || strcmp(e->path, path) != 0) {
            free(e->path);
            e->path = strdup(path);
        }
        if (e->path) {
            e->epoch = epoch;
            e->filled_ns = monotonic_ns();
            e->rec = *rec;
        }
    }
    pthread_mutex_unlock(&attr_lock);
}

static bool attr_lookup(const char *path, fs_stat *out)
{
    bool hit = false;
    pthread_mutex_lock(&attr_lock);
    attr_entry *e = attr_slot(path);
    if (e->path && e->epoch == attr_epoch && strcmp(e->path, path) == 0 &&
        monotonic_ns() - e->filled_ns < ATTR_CACHE_LIFE_NS) {
        *out = e->rec;
        hit = true;
    }
    pthread_mutex_unlock(&attr_lock);
    return hit;
}

static void attr_cache_free(void)
{
    for (uint32_t i = 0; i < ATTR_CACHE_SLOTS; i++) {
        free(attr_cache[i].path);
        attr_cache[i].path = NULL;
    }
}

/* ---- names known to be absent ----
 * Before every create the kernel looks the new name up, and each such LOOKUP would be a
 * STAT round trip that answers "no such file". While mounted, every change to the volume
 * comes through this mount, so for a directory it made (mkdir: empty) or listed from start
 * to end, it knows every name in it and can answer those lookups itself. The table holds
 * two kinds of keys: "D" + path for a directory whose names are all known, "N" + path for a
 * name that exists (or may). An extra "N" key only costs a round trip, so keys are added
 * freely (every create, every listed entry); what must hold is that a name existing in a
 * "D" directory has its "N" key. Anything that could break that (a rename, a failed
 * change, a full table) drops the whole table at once.
 *
 * FAT names compare without case, and the server strips trailing dots and spaces, so keys
 * are folded the same way (ASCII upper case, trailing dots and spaces dropped per
 * component). Paths with other bytes are never known, and only plain ASCII names without
 * '~' are answered here: anything else (a possible 8.3 alias, a name the server would
 * refuse, Latin-1 case folding) goes to the server. */
#define NAMES_BUCKETS 16384u
#define NAMES_MAX (1u << 20)

typedef struct name_key {
    struct name_key *next;
    char key[];
} name_key;

static pthread_mutex_t names_lock = PTHREAD_MUTEX_INITIALIZER;
static name_key *names_table[NAMES_BUCKETS];
static uint32_t names_count;
static uint64_t names_epoch;   /* advanced whenever the table is dropped */

/* kind + the folded path into out (FS_MAX_PATH_LENGTH + 2 bytes); false if it cannot be
 * folded (non-ASCII, too long). */
static bool names_key(char kind, const char *path, char *out)
{
    size_t n = 0;
    out[n++] = kind;
    for (const char *p = path; *p;) {
        if (*p == '/') {
            p++;
            continue;
        }
        const char *end = p;
        while (*end && *end != '/')
            end++;
        const char *last = end;
        while (last > p && (last[-1] == '.' || last[-1] == ' '))
            last--;
        if (last == p || n + 1 + (size_t)(last - p) > FS_MAX_PATH_LENGTH + 1)
            return false; /* only dots and spaces, or too long */
        out[n++] = '/';
        for (; p < last; p++) {
            unsigned char c = (unsigned char)*p;
            if (c >= 0x80)
                return false;
            out[n++] = (char)(c >= 'a' && c <= 'z' ? c - 0x20 : c);
        }
        p = end;
    }
    if (n == 1)
        out[n++] = '/'; /* the root */
    out[n] = '\0';
    return true;
}

static name_key **names_find(const char *key)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *p = key; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    name_key **at = &names_table[h % NAMES_BUCKETS];
    while (*at && strcmp((*at)->key, key) != 0)
        at = &(*at)->next;
    return at;
}

/* Caller holds names_lock. */
static void names_drop_all_locked(void)
{
    for (uint32_t i = 0; i < NAMES_BUCKETS; i++) {
        while (names_table[i]) {
            name_key *k = names_table[i];
            names_table[i] = k->next;
            free(k);
        }
    }
    names_count = 0;
    names_epoch++;
}

static void names_drop_all(void)
{
    pthread_mutex_lock(&names_lock);
    names_drop_all_locked();
    pthread_mutex_unlock(&names_lock);
}

static void names_put(char kind, const char *path)
{
    char key[FS_MAX_PATH_LENGTH + 2];
    if (!names_key(kind, path, key))
        return;
    pthread_mutex_lock(&names_lock);
    name_key **at = names_find(key);
    if (!*at) {
        size_t len = strlen(key);
        name_key *k = names_count < NAMES_MAX ? malloc(sizeof *k + len + 1) : NULL;
        if (k) {
            memcpy(k->key, key, len + 1);
            k->next = NULL;
            *at = k;
            names_count++;
        } else {
            names_drop_all_locked(); /* cannot record it: know nothing rather than wrong */
        }
    }
    pthread_mutex_unlock(&names_lock);
}

static void names_del(char kind, const char *path)
{
    char key[FS_MAX_PATH_LENGTH + 2];
    if (!names_key(kind, path, key))
        return;
    pthread_mutex_lock(&names_lock);
    name_key **at = names_find(key);
    if (*at) {
        name_key *k = *at;
        *at = k->next;
        free(k);
        names_count--;
    }
    pthread_mutex_unlock(&names_lock);
}

/* Only names the server would look up exactly as we compare them. */
static bool name_answerable(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || name[len - 1] == '.' || name[len - 1] == ' ')
        return false;
    for (const char *p = name; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c >= 0x7f || strchr("\"*/:<>?\\|~", c))
            return false;
    }
    return true;
}

/* True when `path` certainly names nothing: its directory's names are all known, and it
 * is not one of them. */
static bool known_absent(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash || !name_answerable(slash + 1))
        return false;
    char dir[FS_MAX_PATH_LENGTH + 1];
    size_t dir_len = slash == path ? 1 : (size_t)(slash - path);
    if (dir_len > FS_MAX_PATH_LENGTH)
        return false;
    memcpy(dir, path, dir_len);
    dir[dir_len] = '\0';
    char dkey[FS_MAX_PATH_LENGTH + 2], nkey[FS_MAX_PATH_LENGTH + 2];
    if (!names_key('D', dir, dkey) || !names_key('N', path, nkey))
        return false;
    pthread_mutex_lock(&names_lock);
    bool absent = *names_find(dkey) && !*names_find(nkey);
    pthread_mutex_unlock(&names_lock);
    return absent;
}

/* ---- requests that carry more than the base protocol's (docs/PROTOCOL.md) ---- */

/* One share buffer: a reply record of `record` bytes, then the path. */
typedef struct path_request {
    uint8_t *mem;
    fs_buffer record;
    fs_buffer path;
} path_request;

static fs_status path_request_alloc(const char *path, size_t record, path_request *r)
{
    size_t len = strlen(path);
    if (len > FS_MAX_PATH_LENGTH)
        return FS_STATUS_INVALID_PATH;
    r->mem = fs_conn_alloc(conn, record + len);
    if (!r->mem)
        return FS_STATUS_ALLOCATION_ERROR;
    memcpy(r->mem + record, path, len);
    r->record = fs_conn_buffer(conn, r->mem, record);
    r->path = fs_conn_buffer(conn, r->mem + record, len);
    return FS_STATUS_SUCCESS;
}

/* Send cmd (its path and record buffers from r), take the stat record it returns, free r. */
static fs_status call_for_record(path_request *r, fs_cmd *cmd, uint64_t *data, fs_stat *rec)
{
    fs_status st = fs_conn_call(conn, cmd, data);
    if (st == FS_STATUS_SUCCESS)
        memcpy(rec, r->mem, sizeof *rec);
    fs_conn_free(conn, r->mem);
    return st;
}

/* OPEN_STAT: open (or create) and get the file's record in one round trip. */
static fs_status open_with_stat(const char *path, uint64_t flags, uint64_t *fd, fs_stat *rec)
{
    path_request r;
    fs_status st = path_request_alloc(path, sizeof *rec, &r);
    if (st != FS_STATUS_SUCCESS)
        return st;
    fs_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.type = FS_CMD_OPEN_STAT;
    fs_cmd_params *p = &cmd.params;
    p->open_stat.path = r.path;
    p->open_stat.flags = flags;
    p->open_stat.stat = r.record;
    return call_for_record(&r, &cmd, fd, rec);
}

/* SET_TIMES_STAT: set the times and get the record as stored (FAT-rounded). */
static fs_status set_times_with_stat(const char *path, int64_t atime, int64_t mtime, fs_stat *rec)
{
    path_request r;
    fs_status st = path_request_alloc(path, sizeof *rec, &r);
    if (st != FS_STATUS_SUCCESS)
        return st;
    fs_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.type = FS_CMD_SET_TIMES_STAT;
    fs_cmd_params *p = &cmd.params;
    p->set_times_stat.path = r.path;
    p->set_times_stat.atime = atime;
    p->set_times_stat.mtime = mtime;
    p->set_times_stat.stat = r.record;
    return call_for_record(&r, &cmd, NULL, rec);
}

/* ---- files opened for reading ----
 * Opening a file to read it is an open, then a read at offset 0, then a close (tar, cat,
 * cp: most files are small). A read-only open gets a read_handle (fi->fh is its address
 * with READ_HANDLE_BIT set) holding the file's first bytes, which the open fetched in the
 * same round trip: OPEN_READ (open, record, first bytes), or for a file the attribute
 * cache knows to be small, READ_PATH (the same without keeping the file open on the
 * server, so neither the open nor the close costs a further round trip). The bytes answer
 * the kernel's first READ if it lies inside them (or they are the whole file) and nothing
 * on the volume changed since the open was sent (attr_epoch: every change through the
 * mount advances it, so they are still the file's bytes). Then they are dropped: the
 * kernel's page cache keeps what was read. Anything else that needs a server fd (a later
 * read, fstat, fsync) opens the file then, by the path libfuse gives (it follows renames;
 * a file unlinked since is one of the hidden ones, pinned by our own fd), so a handle
 * behaves as an fd opened at open time would. */
#define OPEN_READ_BYTES (64u * 1024u)   /* data asked for with each read-only open */
#define READ_HANDLE_BIT (1ull << 63)     /* server fds are below 2^32 */

typedef struct read_handle {
    pthread_mutex_t lock;
    bool has_fd;
    bool borrowed;             /* fd is a hidden file's pin: not ours to close */
    uint64_t fd;               /* the server's, once has_fd */
    uint8_t *bytes;            /* the first bytes; NULL once used */
    size_t len;
    bool whole;                /* they are the whole file */
    uint64_t epoch;            /* attr_epoch when the open was sent */
} read_handle;

static read_handle *read_handle_of(const struct fuse_file_info *fi)
{
    return (fi->fh & READ_HANDLE_BIT) ? (read_handle *)(uintptr_t)(fi->fh & ~READ_HANDLE_BIT) : NULL;
}

/* OPEN_READ (fd wanted) or READ_PATH (not): the file's record and first bytes into a new
 * handle. */
static fs_status open_with_read(const char *path, uint64_t flags, bool keep_fd, fs_stat *rec, read_handle **out)
{
    *out = NULL;
    const size_t head = sizeof(fs_open_read_record);
    read_handle *h = calloc(1, sizeof *h);
    if (!h)
        return FS_STATUS_ALLOCATION_ERROR;
    path_request r;
    fs_status st = path_request_alloc(path, head + OPEN_READ_BYTES, &r);
    if (st != FS_STATUS_SUCCESS) {
        free(h);
        return st;
    }
    fs_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    fs_cmd_params *p = &cmd.params;
    if (keep_fd) {
        cmd.type = FS_CMD_OPEN_READ;
        p->open_read.path = r.path;
        p->open_read.flags = flags;
        p->open_read.buf = r.record;
    } else {
        cmd.type = FS_CMD_READ_PATH;
        p->read_path.path = r.path;
        p->read_path.offset = 0;
        p->read_path.buf = r.record;
    }
    uint64_t epoch = attr_epoch_now();
    uint64_t data = 0;
    st = fs_conn_call(conn, &cmd, &data);
    if (st == FS_STATUS_SUCCESS) {
        fs_open_read_record reply;
        memcpy(&reply, r.mem, sizeof reply);
        *rec = reply.stat;
        h->has_fd = keep_fd;
        h->fd = keep_fd ? data : 0;
        h->epoch = epoch;
        h->len = reply.read < OPEN_READ_BYTES ? (size_t)reply.read : OPEN_READ_BYTES;
        h->whole = h->len == reply.stat.size;
        h->bytes = malloc(h->len ? h->len : 1);
        if (h->bytes)
            memcpy(h->bytes, r.mem + head, h->len);
        pthread_mutex_init(&h->lock, NULL);
        attr_store(path, rec, epoch);
        *out = h;
    } else {
        free(h);
    }
    fs_conn_free(conn, r.mem);
    return st;
}

/* Answer a read from the handle's first bytes: the byte count, or -1 when they cannot
 * (the caller reads from the server). They are used up either way. */
static int read_from_handle(read_handle *h, char *buf, size_t size, off_t offset)
{
    pthread_mutex_lock(&h->lock);
    uint8_t *bytes = h->bytes;
    h->bytes = NULL;
    pthread_mutex_unlock(&h->lock);
    if (!bytes)
        return -1;
    int got = -1;
    uint64_t end = (uint64_t)offset + size;
    if (h->epoch == attr_epoch_now() && size <= INT_MAX && (end <= h->len || h->whole)) {
        size_t n = (uint64_t)offset >= h->len ? 0 : h->len - (size_t)offset;
        if (n > size)
            n = size;
        if (n > 0)
            memcpy(buf, bytes + offset, n);
        got = (int)n;
    }
    free(bytes);
    return got;
}

/* The server fd behind fi: a plain open's, or a read handle's (opened now if the handle
 * has none yet). */
static fs_status file_fd(const char *path, const struct fuse_file_info *fi, uint64_t *fd)
{
    read_handle *h = read_handle_of(fi);
    if (!h) {
        *fd = fi->fh;
        return FS_STATUS_SUCCESS;
    }
    fs_status st = FS_STATUS_SUCCESS;
    pthread_mutex_lock(&h->lock);
    if (!h->has_fd) {
        if (!path)
            st = FS_STATUS_INVALID_FD;
        else if (is_hidden_name(path) && hidden_fd(path, &h->fd))
            h->borrowed = true; /* unlinked since: read through our pin, which outlives us */
        else
            st = fs_conn_open_file(conn, path, FS_OPEN_FLAGS_READ_ONLY, &h->fd);
        h->has_fd = st == FS_STATUS_SUCCESS;
    }
    *fd = h->fd;
    pthread_mutex_unlock(&h->lock);
    return st;
}

/* ---- read-ahead ----
 * The kernel reads a FUSE file ahead in windows of the backing device's read_ahead_kb,
 * 128 KiB by default, and every window is one READ, one round trip through the server. A
 * sequential read is then bound by round trips, not bytes: a 1 MiB window (what one FUSE
 * request carries, libfuse's max_pages) takes an eighth of them. The kernel lets a FUSE
 * file system lower the window at INIT (max_readahead) but not raise it; the mount raises
 * its own device's in sysfs when it may (as root), before answering INIT. */
#define MOUNT_READAHEAD_BYTES (1u << 20)
static const char *mount_point; /* for op_init to find its device */

/* The mount's "major:minor" from /proc/self/mountinfo (paths there escape space, tab,
 * newline and backslash as octal). */
static bool mount_device(const char *point, char *dev, size_t cap)
{
    FILE *f = fopen("/proc/self/mountinfo", "r");
    if (!f)
        return false;
    char line[8192];
    dev[0] = '\0';
    while (fgets(line, sizeof line, f)) {
        char majmin[64], where[4096];
        if (sscanf(line, "%*s %*s %63s %*s %4095s", majmin, where) != 2)
            continue;
        char plain[4096];
        size_t n = 0;
        for (const char *p = where; *p && n + 1 < sizeof plain; n++) {
            if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' && p[3] >= '0' && p[3] <= '7') {
                plain[n] = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
                p += 4;
            } else {
                plain[n] = *p++;
            }
        }
        plain[n] = '\0';
        /* The last matching line: a mount over an earlier one on the same directory. */
        if (strcmp(plain, point) == 0 && strlen(majmin) < cap)
            snprintf(dev, cap, "%s", majmin);
    }
    fclose(f);
    return dev[0] != '\0';
}

static void raise_readahead(struct fuse_conn_info *info)
{
    char dev[64] = "";
    if (!mount_point || !mount_device(mount_point, dev, sizeof dev))
        return;
    char knob[128];
    snprintf(knob, sizeof knob, "/sys/class/bdi/%s/read_ahead_kb", dev);
    FILE *f = fopen(knob, "w");
    if (!f)
        return; /* not root: the kernel's 128 KiB stays */
    bool ok = fprintf(f, "%u\n", MOUNT_READAHEAD_BYTES / 1024u) > 0;
    ok = fclose(f) == 0 && ok;
    /* INIT's reply caps the window at max_readahead: ask for as much. */
    if (ok && info->max_readahead < MOUNT_READAHEAD_BYTES)
        info->max_readahead = MOUNT_READAHEAD_BYTES;
}

static void *op_init(struct fuse_conn_info *info, struct fuse_config *cfg)
{
    /* Readdirplus on every directory read, not only the first (the kernel's adaptive mode
     * falls back to plain readdir and then looks every name up one by one). */
    info->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
    raise_readahead(info);
    cfg->hard_remove = 0;
    cfg->nullpath_ok = 0; /* read handles may open their file by path later (file_fd) */
    cfg->use_ino = 0;
    /* While mounted, every change to the volume comes through this mount, so through the
     * kernel, which updates or drops what it cached (names it created or removed, sizes it
     * wrote, attributes after a write or a read): what it caches stays true, and can be kept
     * long. (Another server on the same image at the same time would corrupt it anyway.) */
    cfg->entry_timeout = CACHE_TIMEOUT_S;
    cfg->attr_timeout = CACHE_TIMEOUT_S;
    cfg->negative_timeout = CACHE_TIMEOUT_S;
    /* For the same reason the kernel's page cache of a file stays valid from one open to
     * the next (every write went through it), so a file read again is not fetched again. */
    cfg->kernel_cache = 1;
    return NULL;
}

static int op_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
    fs_stat rec;
    fs_status status;
    uint64_t pinned;
    if (fi) {
        /* Right after a create, libfuse asks with the new file's fi: the create's reply
         * may already be in the cache under its path. */
        if (path && !is_hidden_name(path) && attr_lookup(path, &rec)) {
            fill_stat(&rec, st);
            return 0;
        }
        uint64_t fd;
        status = file_fd(path, fi, &fd);
        if (status == FS_STATUS_SUCCESS)
            status = fs_conn_fstat(conn, fd, &rec);
    } else if (path && is_hidden_name(path) && hidden_fd(path, &pinned)) {
        status = fs_conn_fstat(conn, pinned, &rec);
    } else {
        int err = check_names(path);
        if (err)
            return err;
        if (known_absent(path))
            return -ENOENT;
        if (attr_lookup(path, &rec)) {
            fill_stat(&rec, st);
            return 0;
        }
        uint64_t epoch = attr_epoch_now();
        status = fs_conn_stat(conn, path, &rec);
        if (status == FS_STATUS_SUCCESS)
            attr_store(path, &rec, epoch);
    }
    if (status != FS_STATUS_SUCCESS)
        return to_errno(status);
    fill_stat(&rec, st);
    return 0;
}

static uint64_t open_flags(int flags)
{
    uint64_t f;
    switch (flags & O_ACCMODE) {
    case O_WRONLY: f = FS_OPEN_FLAGS_WRITE_ONLY; break;
    case O_RDWR: f = FS_OPEN_FLAGS_READ_WRITE; break;
    default: f = FS_OPEN_FLAGS_READ_ONLY; break;
    }
    if (flags & O_TRUNC)
        f |= FS_OPEN_FLAGS_TRUNCATE;
    if (flags & O_APPEND)
        f |= FS_OPEN_FLAGS_APPEND;
    return f;
}

static int op_open(const char *path, struct fuse_file_info *fi)
{
    int err = check_names(path);
    if (err)
        return err;
    uint64_t fd;
    fs_status st;
    if ((fi->flags & (O_ACCMODE | O_TRUNC)) == O_RDONLY) {
        /* Most files opened for reading are read next, from the start: a read handle. */
        fs_stat rec;
        read_handle *h;
        bool small = attr_lookup(path, &rec) && (rec.mode & FS_MODE_TYPE_MASK) == FS_MODE_REGULAR &&
                     rec.size <= OPEN_READ_BYTES;
        st = open_with_read(path, open_flags(fi->flags), !small, &rec, &h);
        if (st != FS_STATUS_SUCCESS)
            return to_errno(st);
        fi->fh = READ_HANDLE_BIT | (uint64_t)(uintptr_t)h;
        return 0;
    } else {
        st = fs_conn_open_file(conn, path, open_flags(fi->flags), &fd);
        if (fi->flags & O_TRUNC)
            volume_changed(false);
    }
    if (st != FS_STATUS_SUCCESS)
        return to_errno(st);
    fi->fh = fd;
    return 0;
}

static int op_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    AF_UNUSED(mode);
    int err = check_names(path);
    if (err)
        return err;
    uint64_t flags = open_flags(fi->flags) | FS_OPEN_FLAGS_CREATE;
    if (fi->flags & O_EXCL)
        flags |= FS_OPEN_FLAGS_EXCLUSIVE;
    uint64_t fd;
    fs_stat rec;
    uint64_t epoch = attr_epoch_now();
    fs_status st = open_with_stat(path, flags, &fd, &rec);
    if (st != FS_STATUS_SUCCESS) {
        volume_changed(false);
        names_drop_all(); /* the name may exist now, or not */
        return to_errno(st);
    }
    volume_changed_to(path, &rec, epoch);
    names_put('N', path);
    fi->fh = fd;
    return 0;
}

static int op_release(const char *path, struct fuse_file_info *fi)
{
    AF_UNUSED(path);
    read_handle *h = read_handle_of(fi);
    if (!h)
        return to_errno(fs_conn_close_file(conn, fi->fh));
    fs_status st = h->has_fd && !h->borrowed ? fs_conn_close_file(conn, h->fd) : FS_STATUS_SUCCESS;
    pthread_mutex_destroy(&h->lock);
    free(h->bytes);
    free(h);
    return to_errno(st);
}

static int op_read(const char *path, char *buf, size_t size, off_t offset, struct fuse_file_info *fi)
{
    if (offset < 0)
        return -EINVAL;
    read_handle *h = read_handle_of(fi);
    int answered = h ? read_from_handle(h, buf, size, offset) : -1;
    if (answered >= 0)
        return answered;
    uint64_t fd;
    fs_status st = file_fd(path, fi, &fd);
    if (st != FS_STATUS_SUCCESS)
        return to_errno(st);
    uint8_t *share = fs_conn_alloc(conn, size ? size : 1);
    if (!share)
        return -EINVAL;
    fs_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.type = FS_CMD_FILE_READ;
    cmd.params.file_read.fd = fd;
    cmd.params.file_read.offset = (uint64_t)offset;
    cmd.params.file_read.buf = fs_conn_buffer(conn, share, size);
    uint64_t got = 0;
    st = fs_conn_call(conn, &cmd, &got);
    if (got > size)
        got = size;
    if (st == FS_STATUS_SUCCESS)
        memcpy(buf, share, got);
    fs_conn_free(conn, share);
    return st == FS_STATUS_SUCCESS ? (int)got : to_errno(st);
}

static int op_write(const char *path, const char *buf, size_t size, off_t offset, struct fuse_file_info *fi)
{
    if (offset < 0)
        return -EINVAL;
    uint8_t *share = fs_conn_alloc(conn, size ? size : 1);
    if (!share)
        return -EINVAL;
    memcpy(share, buf, size);
    fs_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.type = FS_CMD_FILE_WRITE;
    uint64_t fd;
    fs_status st = file_fd(path, fi, &fd);
    if (st != FS_STATUS_SUCCESS) {
        fs_conn_free(conn, share);
        return to_errno(st);
    }
    cmd.params.file_write.fd = fd;
    cmd.params.file_write.offset = (uint64_t)offset;
    cmd.params.file_write.buf = fs_conn_buffer(conn, share, size);
    uint64_t put = 0;
    st = fs_conn_call(conn, &cmd, &put);
    volume_changed(false);
    fs_conn_free(conn, share);
    if (put > size)
        put = size;
    /* A short write reports what was written; the next one reports the error. */
    if (put > 0 || st == FS_STATUS_SUCCESS)
        return (int)put;
    return to_errno(st);
}

static int op_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
    if (size < 0)
        return -EINVAL;
    if (fi) {
        uint64_t fd;
        fs_status st = file_fd(path, fi, &fd);
        if (st == FS_STATUS_SUCCESS)
            st = fs_conn_truncate(conn, fd, (uint64_t)size);
        volume_changed(false);
        return to_errno(st);
    }
    int err = check_names(path);
    if (err)
        return err;
    uint64_t fd;
    fs_status st = fs_conn_open_file(conn, path, FS_OPEN_FLAGS_WRITE_ONLY, &fd);
    if (st != FS_STATUS_SUCCESS)
        return to_errno(st);
    st = fs_conn_truncate(conn, fd, (uint64_t)size);
    volume_changed(false);
    fs_status closed = fs_conn_close_file(conn, fd);
    return to_errno(st != FS_STATUS_SUCCESS ? st : closed);
}

static int op_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
    AF_UNUSED(datasync);
    uint64_t fd;
    fs_status st = file_fd(path, fi, &fd);
    return to_errno(st == FS_STATUS_SUCCESS ? fs_conn_sync(conn, fd) : st);
}

static int op_unlink(const char *path)
{
    if (is_hidden_name(path) && forget_hidden(path))
        return 0;
    int err = check_names(path);
    if (err)
        return err;
    fs_status st = fs_conn_remove(conn, path);
    volume_changed(false);
    if (st == FS_STATUS_SUCCESS)
        names_del('N', path);
    else
        names_drop_all();
    return to_errno(st);
}

static int op_mkdir(const char *path, mode_t mode)
{
    AF_UNUSED(mode);
    int err = check_names(path);
    if (err)
        return err;
    fs_status st = fs_conn_mkdir(conn, path);
    volume_changed(false);
    if (st == FS_STATUS_SUCCESS) {
        names_put('N', path);
        names_put('D', path); /* new and empty: every name in it is known */
    } else {
        names_drop_all();
    }
    return to_errno(st);
}

/* The kernel may send RELEASEDIR for a directory just read (rm -r) after the rmdir that
 * follows it; the server answers BUSY while the directory is open, so wait for the close. */
static fs_status retry_busy(fs_status st, int attempt)
{
    if (st != FS_STATUS_BUSY || attempt >= BUSY_RETRIES)
        return st;
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
    return FS_STATUS_BUSY;
}

static int op_rmdir(const char *path)
{
    int err = check_names(path);
    if (err)
        return err;
    fs_status st;
    int attempt = 0;
    while ((st = retry_busy(fs_conn_rmdir(conn, path), attempt++)) == FS_STATUS_BUSY && attempt < BUSY_RETRIES)
        ;
    volume_changed(false);
    if (st == FS_STATUS_SUCCESS) {
        names_del('D', path);
        names_del('N', path);
    } else {
        names_drop_all();
    }
    return to_errno(st);
}

static int op_rename(const char *from, const char *to, unsigned int flags)
{
    int err = check_names(from);
    if (!err)
        err = check_names(to);
    if (err)
        return err;
    if (flags & ~(unsigned)RENAME_NOREPLACE)
        return -EINVAL;
    if (is_hidden_name(to) && !flags) {
        fs_status st = hide_file(from, to);
        volume_changed(true);
        names_drop_all();
        return to_errno(st);
    }
    if (flags & RENAME_NOREPLACE) {
        fs_stat rec;
        if (fs_conn_stat(conn, to, &rec) == FS_STATUS_SUCCESS)
            return -EEXIST;
    }
    fs_status st;
    int attempt = 0;
    while ((st = retry_busy(fs_conn_rename(conn, from, to), attempt++)) == FS_STATUS_BUSY &&
           attempt < BUSY_RETRIES)
        ;
    volume_changed(true);
    names_drop_all(); /* names moved, maybe whole directories: start again */
    return to_errno(st);
}

/* An open directory. Entries go to libfuse with offsets (1 ".", 2 "..", then n + 3 for the
 * server's n-th entry), which is what makes libfuse pass readdirplus attributes on to the
 * kernel: it does so only for offset-mode listings, and with them `ls -l` or `rm -r` needs
 * no LOOKUP per entry. Entries come from the server a buffer at a time (DIR_READ_BATCH);
 * the handle keeps the last batch, entries [first, first + count), so the kernel's next
 * call usually continues from it, and the server's cursor stands after its last entry.
 * The kernel serialises readdir calls on one open directory (its position lock).
 * fi->fh stays the server's fd, as for files, so that whatever libfuse hands a directory's
 * fi to sees a server fd; the handle is found by that fd. */
#define DIR_BATCH_BYTES (16u * 1024u)

typedef struct dir_handle {
    uint64_t fd;               /* the server's */
    uint64_t first;            /* index of the batch's first entry */
    uint64_t count;            /* entries in the batch */
    uint64_t walk_index;       /* the entry at walk_byte in batch: where the last call stopped */
    size_t walk_byte;
    bool at_end;               /* the server said END_OF_DIRECTORY after the batch */
    bool whole;                /* the server's cursor has moved from entry 0 without a seek */
    uint64_t whole_names_epoch; /* names_epoch when it started there */
    uint64_t rename_epoch;     /* rename_epoch at opendir: while unchanged, path is right */
    struct dir_handle *link;
    uint8_t batch[DIR_BATCH_BYTES];
    char path[];               /* as opened, for the attribute and name caches */
} dir_handle;

#define DIR_FIRST_ENTRY_OFFSET 3   /* offsets 1 and 2 are "." and ".." */

static pthread_mutex_t dirs_lock = PTHREAD_MUTEX_INITIALIZER;
static dir_handle *open_dirs;      /* few at once: one per directory being listed */

static dir_handle *dir_of(const struct fuse_file_info *fi)
{
    pthread_mutex_lock(&dirs_lock);
    dir_handle *d = open_dirs;
    while (d && d->fd != fi->fh)
        d = d->link;
    pthread_mutex_unlock(&dirs_lock);
    return d;
}

static int op_opendir(const char *path, struct fuse_file_info *fi)
{
    int err = check_names(path);
    if (err)
        return err;
    size_t len = strlen(path);
    dir_handle *d = calloc(1, sizeof *d + len + 1);
    if (!d)
        return -ENOMEM;
    memcpy(d->path, path, len + 1);
    pthread_mutex_lock(&attr_lock);
    d->rename_epoch = rename_epoch;
    pthread_mutex_unlock(&attr_lock);
    fs_status st = fs_conn_opendir(conn, path, &d->fd);
    if (st != FS_STATUS_SUCCESS) {
        free(d);
        return to_errno(st);
    }
    pthread_mutex_lock(&dirs_lock);
    d->link = open_dirs;
    open_dirs = d;
    pthread_mutex_unlock(&dirs_lock);
    fi->fh = d->fd;
    return 0;
}

static int op_releasedir(const char *path, struct fuse_file_info *fi)
{
    AF_UNUSED(path);
    pthread_mutex_lock(&dirs_lock);
    for (dir_handle **p = &open_dirs; *p; p = &(*p)->link) {
        if ((*p)->fd == fi->fh) {
            dir_handle *d = *p;
            *p = d->link;
            free(d);
            break;
        }
    }
    pthread_mutex_unlock(&dirs_lock);
    return to_errno(fs_conn_closedir(conn, fi->fh));
}

/* The record at byte `at` of the batch, and its name (copied out, NUL-terminated). */
static size_t dir_record(const dir_handle *d, size_t at, fs_stat *rec, char name[FS_CONN_NAME_MAX + 1])
{
    fs_dir_record head;
    memcpy(&head, d->batch + at, sizeof head);
    size_t len = head.name_len < FS_CONN_NAME_MAX ? (size_t)head.name_len : FS_CONN_NAME_MAX;
    memcpy(name, d->batch + at + sizeof head, len);
    name[len] = '\0';
    *rec = head.stat;
    return (size_t)FS_DIR_RECORD_SIZE(head.name_len);
}

/* The full path of a listed entry into `full`; false if it does not fit. */
static bool entry_path(const dir_handle *d, const char *name, char *full, size_t cap)
{
    bool root = strcmp(d->path, "/") == 0;
    int n = snprintf(full, cap, "%s/%s", root ? "" : d->path, name);
    return n > 0 && (size_t)n < cap;
}

/* Every entry of a new batch: its record for the getattr that often follows (tar, ls -l),
 * and its name for the known-names table. Not while a rename may have made the path
 * stale (those records would be filed under the wrong name). */
static void remember_batch(const dir_handle *d, uint64_t epoch)
{
    pthread_mutex_lock(&attr_lock);
    bool renamed = d->rename_epoch != rename_epoch;
    pthread_mutex_unlock(&attr_lock);
    if (renamed)
        return;
    size_t at = 0;
    for (uint64_t i = 0; i < d->count; i++) {
        fs_stat rec;
        char name[FS_CONN_NAME_MAX + 1];
        char full[FS_MAX_PATH_LENGTH + FS_CONN_NAME_MAX + 3];
        at += dir_record(d, at, &rec, name);
        if (entry_path(d, name, full, sizeof full)) {
            attr_store(full, &rec, epoch);
            names_put('N', full);
        }
    }
}

/* The batch holds `count` records that lie inside it. */
static bool batch_well_formed(const uint8_t *batch, uint64_t count)
{
    size_t at = 0;
    for (uint64_t i = 0; i < count; i++) {
        fs_dir_record head;
        if (DIR_BATCH_BYTES - at < sizeof head)
            return false;
        memcpy(&head, batch + at, sizeof head);
        if (head.name_len > FS_CONN_NAME_MAX || FS_DIR_RECORD_SIZE(head.name_len) > DIR_BATCH_BYTES - at)
            return false;
        at += (size_t)FS_DIR_RECORD_SIZE(head.name_len);
    }
    return true;
}

/* Fetch the batch after the current one (the server's cursor stands there). Once the
 * server has said END_OF_DIRECTORY the handle says so itself: the kernel asks once more
 * at the end of every listing, and entries created after opendir need not appear
 * (POSIX) until a rewind. */
static fs_status dir_fetch(dir_handle *d)
{
    if (d->at_end)
        return FS_STATUS_END_OF_DIRECTORY;
    uint8_t *share = fs_conn_alloc(conn, DIR_BATCH_BYTES);
    if (!share)
        return FS_STATUS_ALLOCATION_ERROR;
    if (d->first + d->count == 0) {
        /* Listing from the start: if it reaches the end with no name dropped meanwhile,
         * every name in the directory has been seen. */
        pthread_mutex_lock(&names_lock);
        d->whole = true;
        d->whole_names_epoch = names_epoch;
        pthread_mutex_unlock(&names_lock);
    }
    fs_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.type = FS_CMD_DIR_READ_BATCH;
    fs_cmd_params *p = &cmd.params;
    p->dir_read_batch.fd = d->fd;
    p->dir_read_batch.buf = fs_conn_buffer(conn, share, DIR_BATCH_BYTES);
    uint64_t epoch = attr_epoch_now();
    uint64_t n = 0;
    fs_status st = fs_conn_call(conn, &cmd, &n);
    if (st == FS_STATUS_SUCCESS && (n == 0 || !batch_well_formed(share, n)))
        st = FS_STATUS_ERROR;
    if (st == FS_STATUS_SUCCESS) {
        memcpy(d->batch, share, DIR_BATCH_BYTES);
        d->first += d->count;
        d->count = n;
        d->walk_index = d->first;
        d->walk_byte = 0;
        remember_batch(d, epoch);
    } else if (st == FS_STATUS_END_OF_DIRECTORY) {
        d->at_end = true;
        pthread_mutex_lock(&names_lock);
        bool complete = d->whole && d->whole_names_epoch == names_epoch;
        pthread_mutex_unlock(&names_lock);
        pthread_mutex_lock(&attr_lock);
        complete = complete && d->rename_epoch == rename_epoch;
        pthread_mutex_unlock(&attr_lock);
        if (complete)
            names_put('D', d->path);
    }
    fs_conn_free(conn, share);
    return st;
}

/* Back to entry 0 (a seekdir before the batch, or a rewind). Rare. */
static fs_status dir_rewind(dir_handle *d)
{
    fs_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.type = FS_CMD_DIR_REWIND;
    cmd.params.dir_rewind.fd = d->fd;
    d->first = 0;
    d->count = 0;
    d->at_end = false;
    d->whole = false;
    return fs_conn_call(conn, &cmd, NULL);
}

static int op_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t offset, struct fuse_file_info *fi,
                      enum fuse_readdir_flags flags)
{
    AF_UNUSED(path);
    dir_handle *d = dir_of(fi);
    if (!d)
        return -EBADF;
    enum fuse_fill_dir_flags fill = (flags & FUSE_READDIR_PLUS) ? FUSE_FILL_DIR_PLUS : 0;
    struct stat s;
    memset(&s, 0, sizeof s);
    s.st_mode = S_IFDIR | 0755;
    if (offset < 1 && filler(buf, ".", &s, 1, 0) != 0)
        return 0;
    if (offset < 2 && filler(buf, "..", &s, 2, 0) != 0)
        return 0;
    /* The entry at offset o resumes after it: the next one wanted is o - 2. */
    uint64_t want = offset < DIR_FIRST_ENTRY_OFFSET ? 0 : (uint64_t)offset - DIR_FIRST_ENTRY_OFFSET + 1;
    fs_status st = FS_STATUS_SUCCESS;
    /* Offset 0 after a listing is a rewinddir: show the directory as it is now. */
    if (offset == 0 && (d->first + d->count > 0 || d->at_end) && (st = dir_rewind(d)) != FS_STATUS_SUCCESS)
        return to_errno(st);
    for (;;) {
        if (want < d->first) {
            if ((st = dir_rewind(d)) != FS_STATUS_SUCCESS)
                break;
            continue;
        }
        if (want >= d->first + d->count) {
            /* Past the batch: fetch on (skipping forward, after a seekdir). */
            if ((st = dir_fetch(d)) != FS_STATUS_SUCCESS)
                break;
            continue;
        }
        if (want < d->walk_index) {
            d->walk_index = d->first;
            d->walk_byte = 0;
        }
        fs_stat rec;
        char name[FS_CONN_NAME_MAX + 1];
        size_t size;
        while ((size = dir_record(d, d->walk_byte, &rec, name)), d->walk_index < want) {
            d->walk_byte += size;
            d->walk_index++;
        }
        fill_stat(&rec, &s);
        if (filler(buf, name, &s, (off_t)(want + DIR_FIRST_ENTRY_OFFSET), fill) != 0)
            return 0;
        want++;
    }
    return st == FS_STATUS_END_OF_DIRECTORY ? 0 : to_errno(st);
}

static int op_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi)
{
    AF_UNUSED(path);
    AF_UNUSED(datasync);
    AF_UNUSED(fi);
    return 0;
}

static int op_statfs(const char *path, struct statvfs *out)
{
    AF_UNUSED(path);
    fs_statfs sf;
    fs_status st = fs_conn_statfs(conn, &sf);
    if (st != FS_STATUS_SUCCESS)
        return to_errno(st);
    memset(out, 0, sizeof *out);
    out->f_bsize = sf.block_size;
    out->f_frsize = sf.block_size;
    out->f_blocks = sf.blocks;
    out->f_bfree = sf.blocks_free;
    out->f_bavail = sf.blocks_available;
    out->f_files = sf.files;
    out->f_ffree = sf.files_free;
    out->f_namemax = FS_MAX_NAME_LENGTH;
    if (sf.flags & FS_STATFS_READ_ONLY)
        out->f_flag |= ST_RDONLY;
    return 0;
}

static int64_t time_arg(const struct timespec *ts)
{
    if (ts->tv_nsec == UTIME_OMIT)
        return -1;
    if (ts->tv_nsec == UTIME_NOW)
        return (int64_t)time(NULL);
    return ts->tv_sec < 0 ? 0 : (int64_t)ts->tv_sec;
}

static int op_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
    AF_UNUSED(fi);
    /* An unlinked file has no name to set times through, and nothing will show them. */
    if (!path || (is_hidden_name(path) && hidden_fd(path, &(uint64_t){0})))
        return 0;
    int err = check_names(path);
    if (err)
        return err;
    fs_stat rec;
    uint64_t epoch = attr_epoch_now();
    fs_status st = set_times_with_stat(path, time_arg(&tv[0]), time_arg(&tv[1]), &rec);
    if (st != FS_STATUS_SUCCESS) {
        volume_changed(false);
        return to_errno(st);
    }
    /* libfuse asks for the attributes next: they are what the server stored. */
    volume_changed_to(path, &rec, epoch);
    return 0;
}

/* FAT keeps no owner or permission bits: accept and ignore, as vfat's quiet option does,
 * so that cp -a and tar work. */
static int op_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    AF_UNUSED(mode);
    AF_UNUSED(fi);
    return check_names(path);
}

static int op_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
    AF_UNUSED(uid);
    AF_UNUSED(gid);
    AF_UNUSED(fi);
    return check_names(path);
}

static const struct fuse_operations operations = {
    .init = op_init,
    .getattr = op_getattr,
    .open = op_open,
    .create = op_create,
    .release = op_release,
    .read = op_read,
    .write = op_write,
    .truncate = op_truncate,
    .fsync = op_fsync,
    .unlink = op_unlink,
    .mkdir = op_mkdir,
    .rmdir = op_rmdir,
    .rename = op_rename,
    .opendir = op_opendir,
    .releasedir = op_releasedir,
    .readdir = op_readdir,
    .fsyncdir = op_fsyncdir,
    .statfs = op_statfs,
    .utimens = op_utimens,
    .chmod = op_chmod,
    .chown = op_chown,
};

/* ---- the subcommand ---- */

static const char mount_usage[] = "IMAGE MOUNTPOINT [-f] [-o OPTIONS]";

static void mount_help(void)
{
    printf("usage: asyncfat mount %s\n\n"
           "Mount the FAT volume on IMAGE at MOUNTPOINT with FUSE. The driver and the\n"
           "server run as their own processes; this one is their client. Unmount with\n"
           "`fusermount3 -u MOUNTPOINT` or, in the foreground, Ctrl-C: the volume is\n"
           "synced and left clean.\n\n"
           "  -f            stay in the foreground\n"
           "  -o OPTIONS    comma-separated mount options, e.g. ro, allow_other\n"
           "                (ro also makes the server mount the volume read-only)\n\n"
           "ASYNCFAT_STATS=1 in the environment prints the number of server requests, and\n"
           "the most that were in flight at once, at unmount.\n",
           mount_usage);
}

typedef struct mount_request {
    const char *image;
    const char *mountpoint;
    bool foreground;
    bool read_only;
    char options[4096];      /* passed to FUSE; empty: none */
} mount_request;

static bool add_options(mount_request *m, const char *opts)
{
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", opts);
    char *save = NULL;
    for (char *o = strtok_r(copy, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
        if (strcmp(o, "ro") == 0)
            m->read_only = true;
        else if (strcmp(o, "rw") == 0)
            m->read_only = false;
        size_t used = strlen(m->options);
        if (used + strlen(o) + 2 >= sizeof m->options)
            return false;
        snprintf(m->options + used, sizeof m->options - used, "%s%s", used ? "," : "", o);
    }
    return true;
}

/* Background mode: one byte to the waiting parent, 0 mounted or 1 failed. */
static void tell_parent(int *ready_fd, char status)
{
    if (*ready_fd < 0)
        return;
    ssize_t written = write(*ready_fd, &status, 1);
    AF_UNUSED(written); /* a parent that is gone has nothing to learn */
    close(*ready_fd);
    *ready_fd = -1;
}

/* Run the mount. ready_fd (background mode; -1 otherwise) learns whether the mount came
 * up, before this process detaches from the terminal. */
static int run_mount(const mount_request *m, int ready_fd)
{
    cli_session s;
    int rc = EXIT_FAILED;
    char status = 1;
    if (cli_session_open(&s, m->image, m->read_only, MOUNT_SHARE_BYTES) != 0)
        goto report;
    if (cli_interrupted) {
        rc = cli_session_close(&s) == 0 ? EXIT_INTERRUPTED : EXIT_FAILED;
        goto report;
    }
    conn = &s.conn;
    owner_uid = getuid();
    owner_gid = getgid();

    char fsname[4200];
    snprintf(fsname, sizeof fsname, "fsname=asyncfat:%s,subtype=asyncfat", m->image);
    char *argv_fuse[8];
    int n = 0;
    argv_fuse[n++] = (char *)"asyncfat";
    argv_fuse[n++] = (char *)"-o";
    argv_fuse[n++] = fsname;
    if (m->options[0]) {
        argv_fuse[n++] = (char *)"-o";
        argv_fuse[n++] = (char *)m->options;
    }
    argv_fuse[n] = NULL;
    struct fuse_args args = FUSE_ARGS_INIT(n, argv_fuse);
    mount_point = m->mountpoint;
    struct fuse *fuse = fuse_new(&args, &operations, sizeof operations, NULL);
    fuse_opt_free_args(&args);
    if (!fuse) {
        cli_error(m->mountpoint, "cannot set up FUSE (bad -o options?)");
        cli_session_close(&s);
        goto report;
    }
    if (fuse_mount(fuse, m->mountpoint) != 0) {
        cli_error(m->mountpoint, "cannot mount (is /dev/fuse usable, and the directory not busy?)");
        fuse_destroy(fuse);
        cli_session_close(&s);
        goto report;
    }
    struct fuse_session *session = fuse_get_session(fuse);
    /* libfuse installs its handlers only over the default action, and a shell starts
     * background jobs with SIGINT ignored: reset them, so a signal always unmounts. */
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    if (fuse_set_signal_handlers(session) != 0) {
        fuse_unmount(fuse);
        fuse_destroy(fuse);
        cli_session_close(&s);
        goto report;
    }
    status = 0;
    if (ready_fd >= 0) {
        tell_parent(&ready_fd, status);
        if (chdir("/") != 0)
            cli_error("/", "cannot change to the root directory: %s", strerror(errno));
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, STDIN_FILENO);
            dup2(null, STDOUT_FILENO);
            dup2(null, STDERR_FILENO);
            if (null > STDERR_FILENO)
                close(null);
        }
    }
    /* Enough threads that a parallel workload keeps many server requests in flight. */
    struct fuse_loop_config *loop = fuse_loop_cfg_create();
    int loop_rc = -1;
    if (loop) {
        fuse_loop_cfg_set_max_threads(loop, MOUNT_THREADS);
        fuse_loop_cfg_set_idle_threads(loop, MOUNT_THREADS / 2);
        loop_rc = fuse_loop_mt(fuse, loop);
        fuse_loop_cfg_destroy(loop);
    }
    fuse_remove_signal_handlers(session);
    fuse_unmount(fuse);
    if (getenv("ASYNCFAT_STATS"))
        fprintf(stderr, "asyncfat: %llu requests, at most %u in flight at once\n", (unsigned long long)s.conn.calls,
                s.conn.max_pending);
    /* A signal that ended the loop comes back as its (positive) number: a clean stop. */
    rc = cli_session_close(&s) == 0 && loop_rc >= 0 ? EXIT_OK : EXIT_FAILED;
    fuse_destroy(fuse);
    attr_cache_free();
    names_drop_all();
    conn = NULL;
report:
    tell_parent(&ready_fd, status);
    return rc;
}

/* Background mode: the parent returns once the child has mounted (0) or failed (1),
 * so errors reach the caller's terminal and exit status. */
static int run_in_background(const mount_request *m)
{
    int pipe_fds[2];
    if (pipe(pipe_fds) != 0) {
        cli_error("mount", "pipe: %s", strerror(errno));
        return EXIT_FAILED;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        cli_error("mount", "fork: %s", strerror(errno));
        return EXIT_FAILED;
    }
    if (pid == 0) {
        close(pipe_fds[0]);
        setsid();
        _exit(run_mount(m, pipe_fds[1]));
    }
    close(pipe_fds[1]);
    char status = 1;
    ssize_t got;
    do
        got = read(pipe_fds[0], &status, 1);
    while (got < 0 && errno == EINTR);
    close(pipe_fds[0]);
    return got == 1 && status == 0 ? EXIT_OK : EXIT_FAILED;
}

int cmd_mount(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        mount_help();
        return EXIT_OK;
    }
    mount_request m;
    memset(&m, 0, sizeof m);
    int ch;
    optind = 1;
    while ((ch = getopt(argc, argv, "fo:")) != -1) {
        if (ch == 'f') {
            m.foreground = true;
        } else if (ch == 'o') {
            if (!add_options(&m, optarg)) {
                cli_error("mount", "mount options too long");
                return EXIT_USAGE;
            }
        } else {
            return cli_usage("mount", mount_usage);
        }
    }
    if (argc - optind != 2)
        return cli_usage("mount", mount_usage);
    m.image = argv[optind];
    struct stat st;
    if (stat(m.image, &st) != 0) {
        cli_error(m.image, "%s", strerror(errno));
        return EXIT_FAILED;
    }
    /* Absolute, since the background process leaves the working directory. */
    static char mountpoint[PATH_MAX];
    if (!realpath(argv[optind + 1], mountpoint) || stat(mountpoint, &st) != 0) {
        cli_error(argv[optind + 1], "%s", strerror(errno));
        return EXIT_FAILED;
    }
    m.mountpoint = mountpoint;
    if (!S_ISDIR(st.st_mode)) {
        cli_error(m.mountpoint, "not a directory");
        return EXIT_FAILED;
    }
    return m.foreground ? run_mount(&m, -1) : run_in_background(&m);
}
