/* The attribute cache (see mount.h).
 *
 * libfuse asks for a file's attributes again after almost every operation (after chmod,
 * chown and utimens, after create), and the kernel asks after each read (the access time).
 * Between two changes the answer cannot differ, so the last record the server gave for a
 * path is kept here, from getattr and from directory listings. Any change made through the
 * mount (write, truncate, times, create, mkdir, unlink, rmdir, rename) drops the whole cache
 * at once by advancing an epoch: simple, and right by construction. A record fetched while a
 * change was under way is born stale (its epoch is already past) and never used. Records
 * live one second at most, so the access date a read moves (days, on FAT) is the only
 * thing that can be a second late, as with the kernel's own attribute timeout. */
#include "tools/mount/mount.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

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

uint64_t attr_cache_epoch(void)
{
    pthread_mutex_lock(&attr_lock);
    uint64_t e = attr_epoch;
    pthread_mutex_unlock(&attr_lock);
    return e;
}

uint64_t attr_cache_rename_epoch(void)
{
    pthread_mutex_lock(&attr_lock);
    uint64_t e = rename_epoch;
    pthread_mutex_unlock(&attr_lock);
    return e;
}

void attr_cache_changed(bool renamed)
{
    pthread_mutex_lock(&attr_lock);
    attr_epoch++;
    if (renamed)
        rename_epoch++;
    pthread_mutex_unlock(&attr_lock);
}

/* The record was taken on the server after the change, so it may be kept for the getattr
 * libfuse sends next, unless another change finished while the request was out (that one
 * may have happened on the server after the record was taken). */
void attr_cache_changed_to(const char *path, const fs_stat *rec, uint64_t sent_epoch)
{
    pthread_mutex_lock(&attr_lock);
    bool alone = attr_epoch == sent_epoch;
    uint64_t epoch = ++attr_epoch;
    pthread_mutex_unlock(&attr_lock);
    if (alone)
        attr_cache_store(path, rec, epoch);
}

void attr_cache_store(const char *path, const fs_stat *rec, uint64_t epoch)
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

bool attr_cache_lookup(const char *path, fs_stat *out)
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

void attr_cache_free(void)
{
    for (uint32_t i = 0; i < ATTR_CACHE_SLOTS; i++) {
        free(attr_cache[i].path);
        attr_cache[i].path = NULL;
    }
}
