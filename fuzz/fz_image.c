/* fz_image: a bounded raw view of a FAT image (see fz_image.h). */
#include "fuzz/fz_image.h"

#include "base/base.h"
#include "fat/fat_layout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FZ_MAX_DEPTH 32u
#define FZ_MAX_TREE_DIRS 4096u

static bool is_pow2(uint32_t x) { return x && !(x & (x - 1)); }

static bool in_image(const fz_view *v, uint64_t off, uint64_t n) { return off <= v->len && n <= v->len - off; }

bool fz_layout_read(const uint8_t *img, size_t len, fz_layout *L)
{
    memset(L, 0, sizeof *L);
    if (len < 512)
        return false;
    L->bytes_per_sector = af_load_le16(img + FAT_BPB_BYTES_PER_SECTOR);
    L->sectors_per_cluster = img[FAT_BPB_SECTORS_PER_CLUSTER];
    L->reserved_sectors = af_load_le16(img + FAT_BPB_RESERVED_SECTORS);
    L->fat_count = img[FAT_BPB_FAT_COUNT];
    L->root_entries = af_load_le16(img + FAT_BPB_ROOT_ENTRIES);
    uint32_t total16 = af_load_le16(img + FAT_BPB_TOTAL_SECTORS_16);
    L->total_sectors = total16 ? total16 : af_load_le32(img + FAT_BPB_TOTAL_SECTORS_32);
    uint32_t fat16 = af_load_le16(img + FAT_BPB_FAT_SIZE_16);
    L->fat_sectors = fat16 ? fat16 : af_load_le32(img + FAT_BPB32_FAT_SIZE);
    if (L->bytes_per_sector < 512 || L->bytes_per_sector > 4096 || !is_pow2(L->bytes_per_sector) ||
        !is_pow2(L->sectors_per_cluster) || L->reserved_sectors == 0 || L->fat_count == 0 || L->fat_count > 8 ||
        L->fat_sectors == 0 || L->total_sectors == 0)
        return false;
    uint64_t bps = L->bytes_per_sector;
    L->cluster_bytes = L->bytes_per_sector * L->sectors_per_cluster;
    uint64_t root_sectors = ((uint64_t)L->root_entries * 32 + bps - 1) / bps;
    uint64_t meta = (uint64_t)L->reserved_sectors + (uint64_t)L->fat_count * L->fat_sectors + root_sectors;
    if (meta >= L->total_sectors)
        return false;
    uint64_t clusters = (L->total_sectors - meta) / L->sectors_per_cluster;
    if (clusters == 0 || clusters > FAT32_MAX_CLUSTERS)
        return false;
    L->cluster_count = (uint32_t)clusters;
    /* A zero 16-bit FAT size means FAT32 whatever the cluster count (mkfs.fat -F 32 makes
     * small ones; Linux, dosfstools and the engine read them so). */
    L->type = fat16 == 0 ? 32 : clusters <= FAT12_MAX_CLUSTERS ? 12 : clusters <= FAT16_MAX_CLUSTERS ? 16 : 32;
    L->fat_offset = L->reserved_sectors * bps;
    L->fat_bytes = L->fat_sectors * bps;
    if (L->type == 32) {
        L->root_cluster = af_load_le32(img + FAT_BPB32_ROOT_CLUSTER) & FAT32_MASK;
        L->fsinfo_sector = af_load_le16(img + FAT_BPB32_FSINFO_SECTOR);
        L->backup_sector = af_load_le16(img + FAT_BPB32_BACKUP_BOOT);
    } else {
        L->root_offset = L->fat_offset + (uint64_t)L->fat_count * L->fat_bytes;
        L->root_bytes = (uint64_t)L->root_entries * 32;
    }
    L->data_offset = meta * bps;
    return true;
}

bool fz_view_init(fz_view *v, uint8_t *img, size_t len)
{
    v->img = img;
    v->len = len;
    return fz_layout_read(img, len, &v->L);
}

bool fz_cluster_valid(const fz_view *v, uint32_t c) { return c >= 2 && c <= v->L.cluster_count + 1; }

uint32_t fz_eoc(const fz_view *v)
{
    return v->L.type == 12 ? FAT12_EOC : v->L.type == 16 ? FAT16_EOC : FAT32_EOC;
}

bool fz_is_eoc(const fz_view *v, uint32_t value)
{
    return value >= (v->L.type == 12 ? FAT12_EOC_MIN : v->L.type == 16 ? FAT16_EOC_MIN : FAT32_EOC_MIN);
}

uint64_t fz_cluster_offset(const fz_view *v, uint32_t c)
{
    return v->L.data_offset + (uint64_t)(c - 2) * v->L.cluster_bytes;
}

uint64_t fz_fat_entry_offset(const fz_view *v, uint32_t copy, uint32_t c)
{
    uint64_t base = v->L.fat_offset + (uint64_t)copy * v->L.fat_bytes;
    return v->L.type == 12 ? base + c + c / 2 : v->L.type == 16 ? base + (uint64_t)c * 2 : base + (uint64_t)c * 4;
}

uint32_t fz_fat_get(const fz_view *v, uint32_t copy, uint32_t c)
{
    uint64_t off = fz_fat_entry_offset(v, copy, c);
    switch (v->L.type) {
    case 12: {
        if (!in_image(v, off, 2))
            return UINT32_MAX;
        uint16_t pair = af_load_le16(v->img + off);
        return c & 1 ? pair >> 4 : pair & 0xFFFu;
    }
    case 16:
        return in_image(v, off, 2) ? af_load_le16(v->img + off) : UINT32_MAX;
    default:
        return in_image(v, off, 4) ? af_load_le32(v->img + off) & FAT32_MASK : UINT32_MAX;
    }
}

void fz_fat_set(fz_view *v, uint32_t copy, uint32_t c, uint32_t value)
{
    uint64_t off = fz_fat_entry_offset(v, copy, c);
    switch (v->L.type) {
    case 12: {
        if (!in_image(v, off, 2))
            return;
        uint16_t pair = af_load_le16(v->img + off);
        pair = c & 1 ? (uint16_t)((pair & 0x000Fu) | (value & 0xFFFu) << 4)
                     : (uint16_t)((pair & 0xF000u) | (value & 0xFFFu));
        af_store_le16(v->img + off, pair);
        return;
    }
    case 16:
        if (in_image(v, off, 2))
            af_store_le16(v->img + off, (uint16_t)value);
        return;
    default:
        if (in_image(v, off, 4))
            af_store_le32(v->img + off, (af_load_le32(v->img + off) & ~FAT32_MASK) | (value & FAT32_MASK));
        return;
    }
}

size_t fz_chain(const fz_view *v, uint32_t copy, uint32_t first, uint32_t *out, size_t max, bool *broken)
{
    size_t n = 0;
    bool bad = false;
    uint32_t c = first;
    /* A chain longer than the cluster count has a loop. */
    size_t limit = (size_t)v->L.cluster_count + 1;
    while (n < max) {
        if (!fz_cluster_valid(v, c) || n >= limit) {
            bad = true;
            break;
        }
        out[n++] = c;
        uint32_t next = fz_fat_get(v, copy, c);
        if (fz_is_eoc(v, next))
            break;
        c = next;
    }
    if (broken)
        *broken = bad;
    return n;
}

uint32_t fz_root_cluster(const fz_view *v) { return v->L.type == 32 ? v->L.root_cluster : 0; }

/* ---- directories ---- */

static void short_display(const uint8_t raw[32], char out[13])
{
    uint8_t nt = raw[FAT_DIRENT_NT_CASE];
    size_t n = 0;
    int base_end = 8, ext_end = 3;
    while (base_end > 0 && raw[base_end - 1] == ' ')
        base_end--;
    while (ext_end > 0 && raw[8 + ext_end - 1] == ' ')
        ext_end--;
    for (int i = 0; i < base_end; i++) {
        uint8_t ch = i == 0 && raw[0] == FAT_DIRENT_KANJI_E5 ? 0xE5 : raw[i];
        if ((nt & FAT_CASE_LOWER_BASE) && ch >= 'A' && ch <= 'Z')
            ch = (uint8_t)(ch + 32);
        out[n++] = (char)ch;
    }
    if (ext_end > 0) {
        out[n++] = '.';
        for (int i = 0; i < ext_end; i++) {
            uint8_t ch = raw[8 + i];
            if ((nt & FAT_CASE_LOWER_EXT) && ch >= 'A' && ch <= 'Z')
                ch = (uint8_t)(ch + 32);
            out[n++] = (char)ch;
        }
    }
    out[n] = '\0';
}

static uint8_t lfn_checksum(const uint8_t raw[32])
{
    uint8_t sum = 0;
    for (int i = 0; i < 11; i++)
        sum = (uint8_t)(((sum & 1) << 7) + (sum >> 1) + raw[i]);
    return sum;
}

static size_t utf16_to_utf8(const uint16_t *u, size_t n, char *out, size_t size)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 4 < size; i++) {
        uint32_t cp = u[i];
        if (cp >= 0xD800 && cp < 0xDC00 && i + 1 < n && u[i + 1] >= 0xDC00 && u[i + 1] < 0xE000) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (u[i + 1] - 0xDC00);
            i++;
        }
        if (cp < 0x80) {
            out[o++] = (char)cp;
        } else if (cp < 0x800) {
            out[o++] = (char)(0xC0 | cp >> 6);
            out[o++] = (char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out[o++] = (char)(0xE0 | cp >> 12);
            out[o++] = (char)(0x80 | (cp >> 6 & 0x3F));
            out[o++] = (char)(0x80 | (cp & 0x3F));
        } else {
            out[o++] = (char)(0xF0 | cp >> 18);
            out[o++] = (char)(0x80 | (cp >> 12 & 0x3F));
            out[o++] = (char)(0x80 | (cp >> 6 & 0x3F));
            out[o++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    out[o] = '\0';
    return o;
}

/* Slot offsets of a directory: the fixed root's region, or its chain in FAT 0. */
static bool dir_slots(const fz_view *v, uint32_t cluster, fz_dir *d)
{
    if (cluster == 0 && v->L.type != 32) {
        size_t n = v->L.root_entries;
        d->slot_offsets = malloc((n ? n : 1) * sizeof(uint64_t));
        if (!d->slot_offsets)
            return false;
        for (size_t i = 0; i < n; i++)
            d->slot_offsets[i] = v->L.root_offset + i * 32;
        d->slot_count = n;
        return true;
    }
    if (!fz_cluster_valid(v, cluster))
        return false;
    size_t per = v->L.cluster_bytes / 32;
    size_t max_clusters = (FAT_DIR_MAX_ENTRIES + per - 1) / per;
    uint32_t *chain = malloc(max_clusters * sizeof(uint32_t));
    if (!chain)
        return false;
    size_t n = fz_chain(v, 0, cluster, chain, max_clusters, NULL);
    d->slot_offsets = malloc((n ? n : 1) * per * sizeof(uint64_t));
    if (!d->slot_offsets) {
        free(chain);
        return false;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < per; k++)
            d->slot_offsets[d->slot_count++] = fz_cluster_offset(v, chain[i]) + k * 32;
    free(chain);
    return true;
}

bool fz_dir_read(const fz_view *v, uint32_t cluster, fz_dir *out)
{
    memset(out, 0, sizeof *out);
    if (!dir_slots(v, cluster, out))
        return false;
    size_t cap = 16;
    out->entries = malloc(cap * sizeof(fz_dirent));
    if (!out->entries)
        return false;
    uint16_t units[FAT_LFN_MAX_ENTRIES * FAT_LFN_UNITS];
    int expect = 0;              /* next LFN ordinal wanted; 0: no sequence open */
    int lfn_total = 0;
    uint8_t lfn_sum = 0;
    uint64_t lfn_first = 0;
    for (size_t i = 0; i < out->slot_count; i++) {
        uint64_t off = out->slot_offsets[i];
        if (!in_image(v, off, 32))
            break;
        const uint8_t *e = v->img + off;
        if (e[0] == FAT_DIRENT_END)
            break;
        if (e[0] == FAT_DIRENT_DELETED) {
            expect = lfn_total = 0;
            continue;
        }
        if ((e[FAT_DIRENT_ATTR] & FAT_ATTR_LONG_NAME_MASK) == FAT_ATTR_LONG_NAME) {
            int ord = e[0] & FAT_LFN_ORDINAL_MASK;
            if ((e[0] & FAT_LFN_LAST) && ord >= 1 && ord <= FAT_LFN_MAX_ENTRIES) {
                lfn_total = ord;
                lfn_sum = e[FAT_LFN_CHECKSUM];
                lfn_first = off;
                memset(units, 0, sizeof units);
            } else if (!(expect > 0 && ord == expect && e[FAT_LFN_CHECKSUM] == lfn_sum)) {
                expect = lfn_total = 0;
                continue;
            }
            uint16_t *u = units + (ord - 1) * FAT_LFN_UNITS;
            for (int k = 0; k < 5; k++)
                u[k] = af_load_le16(e + FAT_LFN_NAME1 + 2 * k);
            for (int k = 0; k < 6; k++)
                u[5 + k] = af_load_le16(e + FAT_LFN_NAME2 + 2 * k);
            for (int k = 0; k < 2; k++)
                u[11 + k] = af_load_le16(e + FAT_LFN_NAME3 + 2 * k);
            expect = ord - 1;
            continue;
        }
        bool had_lfn = expect == 0 && lfn_total > 0 && lfn_checksum(e) == lfn_sum;
        int total = lfn_total;
        lfn_total = 0;
        expect = 0;
        if ((e[FAT_DIRENT_ATTR] & FAT_ATTR_VOLUME_ID) && !(e[FAT_DIRENT_ATTR] & FAT_ATTR_DIRECTORY))
            continue;
        if (out->count == cap) {
            cap *= 2;
            fz_dirent *grown = realloc(out->entries, cap * sizeof(fz_dirent));
            if (!grown)
                break;
            out->entries = grown;
        }
        fz_dirent *d = &out->entries[out->count++];
        memset(d, 0, sizeof *d);
        memcpy(d->raw, e, 32);
        d->offset = off;
        d->lfn_offset = off;
        short_display(e, d->short_name);
        if (had_lfn) {
            size_t n = (size_t)total * FAT_LFN_UNITS;
            for (size_t k = 0; k < n; k++)
                if (units[k] == 0) {
                    n = k;
                    break;
                }
            utf16_to_utf8(units, n, d->name, sizeof d->name);
            d->lfn_offset = lfn_first;
            d->lfn_count = (uint32_t)total;
        } else {
            snprintf(d->name, sizeof d->name, "%s", d->short_name);
        }
        d->cluster = af_load_le16(e + FAT_DIRENT_CLUSTER_LO);
        if (v->L.type == 32)
            d->cluster |= (uint32_t)af_load_le16(e + FAT_DIRENT_CLUSTER_HI) << 16;
        d->size = af_load_le32(e + FAT_DIRENT_SIZE_BYTES);
        d->is_dir = (e[FAT_DIRENT_ATTR] & FAT_ATTR_DIRECTORY) != 0;
        d->is_dot = e[0] == '.' && (memcmp(e, ".          ", 11) == 0 || memcmp(e, "..         ", 11) == 0);
    }
    return true;
}

void fz_dir_free(fz_dir *d)
{
    free(d->entries);
    free(d->slot_offsets);
    memset(d, 0, sizeof *d);
}

bool fz_lookup(const fz_view *v, const char *path, fz_dirent *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "/");
    out->is_dir = true;
    out->cluster = fz_root_cluster(v);
    const char *p = path;
    while (*p) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (!out->is_dir || n >= FZ_NAME_MAX)
            return false;
        char comp[FZ_NAME_MAX];
        memcpy(comp, p, n);
        comp[n] = '\0';
        fz_dir d;
        /* A ".." entry that names the root holds cluster 0 even on FAT32. */
        uint32_t c = out->cluster == 0 ? fz_root_cluster(v) : out->cluster;
        if (!fz_dir_read(v, c, &d))
            return false;
        bool found = false;
        for (size_t i = 0; i < d.count && !found; i++) {
            if (d.entries[i].is_dot)
                continue;
            if (strcasecmp(d.entries[i].name, comp) == 0 || strcasecmp(d.entries[i].short_name, comp) == 0) {
                *out = d.entries[i];
                found = true;
            }
        }
        fz_dir_free(&d);
        if (!found)
            return false;
        p += n;
    }
    return true;
}

/* ---- manifests ---- */

uint64_t fz_hash(const void *data, size_t len, uint64_t seed)
{
    const uint8_t *b = data;
    uint64_t h = 0xcbf29ce484222325ull ^ seed;
    for (size_t i = 0; i < len; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

typedef struct walk {
    const fz_view *v;
    uint32_t visited[FZ_MAX_TREE_DIRS];
    size_t visited_count;
    void (*visit)(struct walk *w, const char *path, const fz_dirent *e);
    void *ctx;
} walk;

static void walk_dir(walk *w, uint32_t cluster, const char *path, unsigned depth)
{
    if (depth > FZ_MAX_DEPTH || w->visited_count == FZ_MAX_TREE_DIRS)
        return;
    for (size_t i = 0; i < w->visited_count; i++)
        if (w->visited[i] == cluster)
            return;
    w->visited[w->visited_count++] = cluster;
    fz_dir d;
    if (!fz_dir_read(w->v, cluster, &d))
        return;
    for (size_t i = 0; i < d.count; i++) {
        const fz_dirent *e = &d.entries[i];
        if (e->is_dot)
            continue;
        char child[4096];
        snprintf(child, sizeof child, "%s/%s", strcmp(path, "/") == 0 ? "" : path, e->name);
        w->visit(w, child, e);
        if (e->is_dir && e->cluster != 0)
            walk_dir(w, e->cluster, child, depth + 1);
    }
    fz_dir_free(&d);
}

static void walk_tree(walk *w)
{
    walk_dir(w, fz_root_cluster(w->v), "/", 0);
}

/* The file's contents through FAT 0, hashed; false when the chain is shorter than the size. */
static bool file_hash(const fz_view *v, const fz_dirent *e, uint64_t *hash)
{
    uint64_t h = fz_hash(NULL, 0, e->size);
    if (e->size == 0) {
        *hash = h;
        return true;
    }
    size_t need = ((size_t)e->size + v->L.cluster_bytes - 1) / v->L.cluster_bytes;
    uint32_t *chain = malloc(need * sizeof(uint32_t));
    if (!chain)
        return false;
    bool broken;
    size_t n = fz_chain(v, 0, e->cluster, chain, need, &broken);
    bool ok = n == need;
    for (size_t i = 0; ok && i < n; i++) {
        uint64_t off = fz_cluster_offset(v, chain[i]);
        uint64_t bytes = af_min_u64(v->L.cluster_bytes, (uint64_t)e->size - (uint64_t)i * v->L.cluster_bytes);
        if (!in_image(v, off, bytes)) {
            ok = false;
            break;
        }
        h = fz_hash(v->img + off, bytes, h);
    }
    free(chain);
    *hash = h;
    return ok;
}

static void manifest_visit(walk *w, const char *path, const fz_dirent *e)
{
    fz_manifest *m = w->ctx;
    fz_manifest_entry *grown = realloc(m->entries, (m->count + 1) * sizeof *grown);
    if (!grown)
        return;
    m->entries = grown;
    fz_manifest_entry *me = &m->entries[m->count++];
    memset(me, 0, sizeof *me);
    me->path = strdup(path);
    me->is_dir = e->is_dir;
    me->size = e->is_dir ? 0 : e->size;
    me->readable = e->is_dir ? true : file_hash(w->v, e, &me->hash);
}

void fz_manifest_build(const fz_view *v, fz_manifest *out)
{
    memset(out, 0, sizeof *out);
    walk *w = calloc(1, sizeof *w);
    if (!w)
        return;
    w->v = v;
    w->visit = manifest_visit;
    w->ctx = out;
    walk_tree(w);
    free(w);
}

void fz_manifest_free(fz_manifest *m)
{
    for (size_t i = 0; i < m->count; i++)
        free(m->entries[i].path);
    free(m->entries);
    memset(m, 0, sizeof *m);
}

const fz_manifest_entry *fz_manifest_find(const fz_manifest *m, const char *path)
{
    for (size_t i = 0; i < m->count; i++)
        if (strcmp(m->entries[i].path, path) == 0)
            return &m->entries[i];
    return NULL;
}

static bool under(const char *path, const char *except)
{
    if (!except)
        return false;
    size_t n = strlen(except);
    return strncmp(path, except, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

bool fz_manifest_files_kept(const fz_manifest *before, const fz_manifest *after, const char *except, char *why,
                            size_t why_size)
{
    for (size_t i = 0; i < before->count; i++) {
        const fz_manifest_entry *b = &before->entries[i];
        if (b->is_dir || !b->readable || under(b->path, except))
            continue;
        const fz_manifest_entry *a = fz_manifest_find(after, b->path);
        if (!a) {
            snprintf(why, why_size, "%s is gone", b->path);
            return false;
        }
        if (a->is_dir || a->size != b->size || !a->readable || a->hash != b->hash) {
            snprintf(why, why_size, "%s changed (size %u -> %u%s)", b->path, b->size, a->size,
                     !a->readable ? ", chain now broken" : a->hash != b->hash ? ", other bytes" : "");
            return false;
        }
    }
    return true;
}

bool fz_manifest_equal(const fz_manifest *a, const fz_manifest *b, char *why, size_t why_size)
{
    for (size_t i = 0; i < a->count; i++) {
        const fz_manifest_entry *x = &a->entries[i];
        const fz_manifest_entry *y = fz_manifest_find(b, x->path);
        if (!y) {
            snprintf(why, why_size, "%s is missing", x->path);
            return false;
        }
        if (x->is_dir != y->is_dir || x->size != y->size || x->readable != y->readable || x->hash != y->hash) {
            snprintf(why, why_size, "%s differs", x->path);
            return false;
        }
    }
    for (size_t i = 0; i < b->count; i++)
        if (!fz_manifest_find(a, b->entries[i].path)) {
            snprintf(why, why_size, "%s appeared", b->entries[i].path);
            return false;
        }
    return true;
}

/* ---- data snapshots ---- */

static void snapshot_add(fz_data_snapshot *s, const char *path, uint32_t cluster, uint32_t bytes, uint64_t hash)
{
    for (size_t i = 0; i < s->count; i++)
        if (s->items[i].cluster == cluster && s->items[i].bytes == bytes && strcmp(s->items[i].path, path) == 0)
            return;
    fz_owned *grown = realloc(s->items, (s->count + 1) * sizeof *grown);
    if (!grown)
        return;
    s->items = grown;
    s->items[s->count++] = (fz_owned){cluster, bytes, hash, strdup(path)};
}

/* Directory clusters (chains in FAT 0, the root's included): a write may change them. */
typedef struct dir_clusters {
    uint32_t *c;
    size_t n, cap;
} dir_clusters;

static void dir_clusters_add_chain(const fz_view *v, dir_clusters *d, uint32_t first)
{
    uint32_t chain[4096];
    size_t n = fz_chain(v, 0, first, chain, sizeof chain / sizeof chain[0], NULL);
    for (size_t i = 0; i < n; i++) {
        if (d->n == d->cap) {
            d->cap = d->cap ? d->cap * 2 : 64;
            d->c = realloc(d->c, d->cap * sizeof(uint32_t));
        }
        d->c[d->n++] = chain[i];
    }
}

static bool dir_clusters_has(const dir_clusters *d, uint32_t c)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->c[i] == c)
            return true;
    return false;
}

typedef struct snapshot_ctx {
    fz_data_snapshot *out;
    dir_clusters dirs;
    bool collecting_dirs;
} snapshot_ctx;

static void snapshot_visit(walk *w, const char *path, const fz_dirent *e)
{
    const fz_view *v = w->v;
    snapshot_ctx *sc = w->ctx;
    if (sc->collecting_dirs) {
        if (e->is_dir && e->cluster)
            dir_clusters_add_chain(v, &sc->dirs, e->cluster);
        return;
    }
    if (e->is_dir || e->size == 0)
        return;
    size_t need = ((size_t)e->size + v->L.cluster_bytes - 1) / v->L.cluster_bytes;
    uint32_t *chain = malloc(need * sizeof(uint32_t));
    if (!chain)
        return;
    for (uint32_t copy = 0; copy < v->L.fat_count && copy < 4; copy++) {
        /* Only a chain that covers the file's size in this copy: a file no FAT copy can
         * read is lost already, and the free clusters in its broken chain are free. */
        size_t n = fz_chain(v, copy, e->cluster, chain, need, NULL);
        if (n < need)
            continue;
        for (size_t i = 0; i < n; i++) {
            /* A chain read through a disagreeing FAT copy may run into a directory. */
            if (dir_clusters_has(&sc->dirs, chain[i]))
                continue;
            uint64_t off = fz_cluster_offset(v, chain[i]);
            uint32_t bytes = (uint32_t)af_min_u64(v->L.cluster_bytes, (uint64_t)e->size - (uint64_t)i * v->L.cluster_bytes);
            if (in_image(v, off, bytes))
                snapshot_add(sc->out, path, chain[i], bytes, fz_hash(v->img + off, bytes, 0));
        }
    }
    free(chain);
}

void fz_data_snapshot_build(const fz_view *v, fz_data_snapshot *out)
{
    memset(out, 0, sizeof *out);
    walk *w = calloc(1, sizeof *w);
    if (!w)
        return;
    snapshot_ctx sc = {.out = out, .collecting_dirs = true};
    if (v->L.type == 32)
        dir_clusters_add_chain(v, &sc.dirs, v->L.root_cluster);
    w->v = v;
    w->visit = snapshot_visit;
    w->ctx = &sc;
    walk_tree(w);
    memset(w, 0, sizeof *w);
    sc.collecting_dirs = false;
    w->v = v;
    w->visit = snapshot_visit;
    w->ctx = &sc;
    walk_tree(w);
    free(sc.dirs.c);
    free(w);
}

void fz_data_snapshot_free(fz_data_snapshot *s)
{
    for (size_t i = 0; i < s->count; i++)
        free(s->items[i].path);
    free(s->items);
    memset(s, 0, sizeof *s);
}

bool fz_data_snapshot_kept(const fz_data_snapshot *s, const fz_view *now, const char *except, char *why,
                           size_t why_size)
{
    for (size_t i = 0; i < s->count; i++) {
        const fz_owned *o = &s->items[i];
        if (under(o->path, except))
            continue;
        uint64_t off = fz_cluster_offset(now, o->cluster);
        if (!in_image(now, off, o->bytes) || fz_hash(now->img + off, o->bytes, 0) != o->hash) {
            snprintf(why, why_size, "cluster %u of %s was overwritten", o->cluster, o->path);
            return false;
        }
    }
    return true;
}
