/* Names known to be absent (see mount.h).
 *
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
#include "tools/mount/mount.h"

#include <stdlib.h>
#include <string.h>

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

void known_names_drop_all(void)
{
    pthread_mutex_lock(&names_lock);
    names_drop_all_locked();
    pthread_mutex_unlock(&names_lock);
}

uint64_t known_names_epoch(void)
{
    pthread_mutex_lock(&names_lock);
    uint64_t e = names_epoch;
    pthread_mutex_unlock(&names_lock);
    return e;
}

void known_names_put(char kind, const char *path)
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

void known_names_del(char kind, const char *path)
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

/* Its directory's names are all known, and it is not one of them. */
bool known_names_absent(const char *path)
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
