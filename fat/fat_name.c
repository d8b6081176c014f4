/* fat_name: UTF-8/UTF-16 conversion, name rules, 8.3 names and aliases, LFN entries. */
#include "fat/fat_name.h"

#include "fat/fat_layout.h"

/* ---- UTF-8 <-> UTF-16 ------------------------------------------------------------------- */

vfs_status fat_utf8_to_utf16(const char *utf8, size_t len, uint16_t *out, size_t cap, size_t *out_len)
{
    const uint8_t *s = (const uint8_t *)utf8;
    size_t i = 0, n = 0;
    while (i < len) {
        uint32_t b = s[i], cp, need;
        uint8_t lo = 0x80, hi = 0xBF;
        if (b == 0)
            return VFS_INVALID_NAME;
        if (b < 0x80) {
            cp = b;
            need = 0;
        } else if (b >= 0xC2 && b <= 0xDF) {
            cp = b & 0x1F;
            need = 1;
        } else if (b >= 0xE0 && b <= 0xEF) {
            cp = b & 0x0F;
            need = 2;
            if (b == 0xE0)
                lo = 0xA0; /* overlong */
            if (b == 0xED)
                hi = 0x9F; /* surrogates */
        } else if (b >= 0xF0 && b <= 0xF4) {
            cp = b & 0x07;
            need = 3;
            if (b == 0xF0)
                lo = 0x90; /* overlong */
            if (b == 0xF4)
                hi = 0x8F; /* above U+10FFFF */
        } else {
            return VFS_INVALID_NAME;
        }
        if (len - i - 1 < need)
            return VFS_INVALID_NAME;
        for (uint32_t k = 1; k <= need; k++) {
            uint8_t c = s[i + k];
            if (c < (k == 1 ? lo : 0x80) || c > (k == 1 ? hi : 0xBF))
                return VFS_INVALID_NAME;
            cp = (cp << 6) | (c & 0x3F);
        }
        i += need + 1;
        if (cp >= 0x10000) {
            if (cap - n < 2)
                return VFS_NAME_TOO_LONG;
            cp -= 0x10000;
            out[n++] = (uint16_t)(0xD800 | (cp >> 10));
            out[n++] = (uint16_t)(0xDC00 | (cp & 0x3FF));
        } else {
            if (n >= cap)
                return VFS_NAME_TOO_LONG;
            out[n++] = (uint16_t)cp;
        }
    }
    *out_len = n;
    return VFS_OK;
}

vfs_status fat_utf16_to_utf8(const uint16_t *units, size_t len, char *out, size_t cap, size_t *out_len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        uint32_t cp = units[i];
        if (cp >= 0xD800 && cp <= 0xDBFF && i + 1 < len && units[i + 1] >= 0xDC00 && units[i + 1] <= 0xDFFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (units[i + 1] - 0xDC00u);
            i++;
        } else if (cp >= 0xD800 && cp <= 0xDFFF) {
            cp = 0xFFFD;
        }
        uint8_t buf[4];
        size_t k;
        if (cp < 0x80) {
            buf[0] = (uint8_t)cp;
            k = 1;
        } else if (cp < 0x800) {
            buf[0] = (uint8_t)(0xC0 | (cp >> 6));
            buf[1] = (uint8_t)(0x80 | (cp & 0x3F));
            k = 2;
        } else if (cp < 0x10000) {
            buf[0] = (uint8_t)(0xE0 | (cp >> 12));
            buf[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
            buf[2] = (uint8_t)(0x80 | (cp & 0x3F));
            k = 3;
        } else {
            buf[0] = (uint8_t)(0xF0 | (cp >> 18));
            buf[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
            buf[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
            buf[3] = (uint8_t)(0x80 | (cp & 0x3F));
            k = 4;
        }
        if (cap - n < k)
            return VFS_NAME_TOO_LONG;
        for (size_t j = 0; j < k; j++)
            out[n++] = (char)buf[j];
    }
    *out_len = n;
    return VFS_OK;
}

/* ---- validation --------------------------------------------------------------------------- */

static bool long_name_char_invalid(uint16_t u)
{
    if (u < 0x20)
        return true;
    switch (u) {
    case '"': case '*': case '/': case ':': case '<': case '>': case '?': case '\\': case '|':
        return true;
    default:
        return false;
    }
}

vfs_status fat_name_prepare(const char *utf8, size_t len, fat_name *out)
{
    /* Trailing dots and spaces are single bytes in UTF-8 and never continuation bytes, so
     * they can be stripped before decoding; the length limit applies to what remains. */
    size_t kept = len;
    while (kept > 0 && (utf8[kept - 1] == '.' || utf8[kept - 1] == ' '))
        kept--;
    if (kept == 0)
        return VFS_INVALID_NAME;
    size_t n;
    vfs_status st = fat_utf8_to_utf16(utf8, kept, out->units, FAT_NAME_MAX_UNITS, &n);
    if (st != VFS_OK)
        return st;
    for (size_t i = 0; i < n; i++) {
        if (long_name_char_invalid(out->units[i]))
            return VFS_INVALID_NAME;
    }
    out->len = (uint16_t)n;
    return VFS_OK;
}

/* ---- case-insensitive comparison ------------------------------------------------------------ */

uint16_t fat_name_fold(uint16_t u)
{
    if (u >= 'a' && u <= 'z')
        return (uint16_t)(u - 0x20);
    if (u >= 0xE0 && u <= 0xFE && u != 0xF7)
        return (uint16_t)(u - 0x20);
    return u;
}

bool fat_name_equal_nocase(const uint16_t *a, size_t a_len, const uint16_t *b, size_t b_len)
{
    if (a_len != b_len)
        return false;
    for (size_t i = 0; i < a_len; i++) {
        if (a[i] != b[i] && fat_name_fold(a[i]) != fat_name_fold(b[i]))
            return false;
    }
    return true;
}

#define FNV_OFFSET 2166136261u
#define FNV_PRIME 16777619u

uint32_t fat_name_hash(const uint16_t *units, size_t len)
{
    uint32_t h = FNV_OFFSET;
    for (size_t i = 0; i < len; i++) {
        uint16_t f = fat_name_fold(units[i]);
        h = (h ^ (f & 0xFFu)) * FNV_PRIME;
        h = (h ^ (uint32_t)(f >> 8)) * FNV_PRIME;
    }
    return h;
}

uint32_t fat_short_name_hash(const uint8_t short_name[FAT_SHORT_NAME_LEN])
{
    uint32_t h = FNV_OFFSET;
    for (size_t i = 0; i < FAT_SHORT_NAME_LEN; i++)
        h = (h ^ short_name[i]) * FNV_PRIME;
    return h;
}

/* ---- short names ------------------------------------------------------------------------------ */

/* Characters a short name may hold besides A-Z and 0-9 (ASCII; bytes >= 0x80 are code
 * page characters and also allowed on disk). */
static bool short_punct_valid(uint16_t c)
{
    switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '(': case ')':
    case '-': case '@': case '^': case '_': case '`': case '{': case '}': case '~':
        return true;
    default:
        return false;
    }
}

static bool is_upper(uint16_t c) { return c >= 'A' && c <= 'Z'; }
static bool is_lower(uint16_t c) { return c >= 'a' && c <= 'z'; }
static bool is_digit(uint16_t c) { return c >= '0' && c <= '9'; }

/* Copies one part (base or extension) into dst if it is all one case; sets *lower. */
static bool short_part(const uint16_t *src, size_t len, uint8_t *dst, bool *lower)
{
    bool has_upper = false, has_lower = false;
    for (size_t i = 0; i < len; i++) {
        uint16_t c = src[i];
        if (is_upper(c))
            has_upper = true;
        else if (is_lower(c))
            has_lower = true;
        else if (!is_digit(c) && !short_punct_valid(c))
            return false;
        dst[i] = (uint8_t)(is_lower(c) ? c - 0x20 : c);
    }
    if (has_upper && has_lower)
        return false;
    *lower = has_lower;
    return true;
}

bool fat_short_from_name(const uint16_t *units, size_t len, uint8_t short_name[FAT_SHORT_NAME_LEN],
                         uint8_t *case_bits)
{
    size_t dot = len;
    for (size_t i = 0; i < len; i++) {
        if (units[i] == '.') {
            if (dot != len)
                return false;
            dot = i;
        }
    }
    size_t base_len = dot, ext_len = dot == len ? 0 : len - dot - 1;
    if (base_len == 0 || base_len > 8 || ext_len > 3 || (dot != len && ext_len == 0))
        return false;
    uint8_t tmp[FAT_SHORT_NAME_LEN];
    af_memset(tmp, ' ', sizeof tmp);
    bool base_lower, ext_lower = false;
    if (!short_part(units, base_len, tmp, &base_lower))
        return false;
    if (ext_len > 0 && !short_part(units + dot + 1, ext_len, tmp + 8, &ext_lower))
        return false;
    af_memcpy(short_name, tmp, sizeof tmp);
    *case_bits = (uint8_t)((base_lower ? FAT_CASE_LOWER_BASE : 0) | (ext_lower ? FAT_CASE_LOWER_EXT : 0));
    return true;
}

static bool short_byte_invalid(uint8_t c)
{
    if (c < 0x20 || c == 0x7F)
        return true;
    if (c >= 'a' && c <= 'z')
        return true;
    switch (c) {
    case '"': case '*': case '+': case ',': case '.': case '/': case ':': case ';':
    case '<': case '=': case '>': case '?': case '[': case '\\': case ']': case '|':
        return true;
    default:
        return false;
    }
}

bool fat_short_name_valid(const uint8_t short_name[FAT_SHORT_NAME_LEN])
{
    if (short_name[0] == ' ')
        return false;
    for (size_t i = 0; i < FAT_SHORT_NAME_LEN; i++) {
        uint8_t c = short_name[i];
        if (i == 0 && c == FAT_DIRENT_KANJI_E5)
            continue;
        if (short_byte_invalid(c))
            return false;
    }
    return true;
}

static const uint16_t cp437_high[128] = {
    0x00C7, 0x00FC, 0x00E9, 0x00E2, 0x00E4, 0x00E0, 0x00E5, 0x00E7,
    0x00EA, 0x00EB, 0x00E8, 0x00EF, 0x00EE, 0x00EC, 0x00C4, 0x00C5,
    0x00C9, 0x00E6, 0x00C6, 0x00F4, 0x00F6, 0x00F2, 0x00FB, 0x00F9,
    0x00FF, 0x00D6, 0x00DC, 0x00A2, 0x00A3, 0x00A5, 0x20A7, 0x0192,
    0x00E1, 0x00ED, 0x00F3, 0x00FA, 0x00F1, 0x00D1, 0x00AA, 0x00BA,
    0x00BF, 0x2310, 0x00AC, 0x00BD, 0x00BC, 0x00A1, 0x00AB, 0x00BB,
    0x2591, 0x2592, 0x2593, 0x2502, 0x2524, 0x2561, 0x2562, 0x2556,
    0x2555, 0x2563, 0x2551, 0x2557, 0x255D, 0x255C, 0x255B, 0x2510,
    0x2514, 0x2534, 0x252C, 0x251C, 0x2500, 0x253C, 0x255E, 0x255F,
    0x255A, 0x2554, 0x2569, 0x2566, 0x2560, 0x2550, 0x256C, 0x2567,
    0x2568, 0x2564, 0x2565, 0x2559, 0x2558, 0x2552, 0x2553, 0x256B,
    0x256A, 0x2518, 0x250C, 0x2588, 0x2584, 0x258C, 0x2590, 0x2580,
    0x03B1, 0x00DF, 0x0393, 0x03C0, 0x03A3, 0x03C3, 0x00B5, 0x03C4,
    0x03A6, 0x0398, 0x03A9, 0x03B4, 0x221E, 0x03C6, 0x03B5, 0x2229,
    0x2261, 0x00B1, 0x2265, 0x2264, 0x2320, 0x2321, 0x00F7, 0x2248,
    0x00B0, 0x2219, 0x00B7, 0x221A, 0x207F, 0x00B2, 0x25A0, 0x00A0,
};

/* A byte no short name may hold (a control, '.', or one no long name may hold either,
 * such as '/') shows as '_': every name readdir lists must lead back to its entry, and
 * lookup strips trailing dots and refuses those characters. */
static uint16_t short_byte_to_unit(uint8_t c, bool lower)
{
    if (c >= 0x80)
        return cp437_high[c - 0x80];
    if (c == '.' || long_name_char_invalid(c))
        return '_';
    if (lower && c >= 'A' && c <= 'Z')
        return (uint16_t)(c + 0x20);
    return c;
}

size_t fat_short_to_utf16(const uint8_t short_name[FAT_SHORT_NAME_LEN], uint8_t case_bits,
                          uint16_t out[FAT_SHORT_DISPLAY_MAX])
{
    size_t base_len = 8, ext_len = 3, n = 0;
    while (base_len > 0 && short_name[base_len - 1] == ' ')
        base_len--;
    while (ext_len > 0 && short_name[8 + ext_len - 1] == ' ')
        ext_len--;
    for (size_t i = 0; i < base_len; i++) {
        uint8_t c = short_name[i];
        if (i == 0 && c == FAT_DIRENT_KANJI_E5)
            c = FAT_DIRENT_DELETED;
        out[n++] = short_byte_to_unit(c, case_bits & FAT_CASE_LOWER_BASE);
    }
    if (base_len == 0)
        out[n++] = '_'; /* a damaged entry whose name is all spaces still has a name */
    if (ext_len > 0) {
        out[n++] = '.';
        for (size_t i = 0; i < ext_len; i++)
            out[n++] = short_byte_to_unit(short_name[8 + i], case_bits & FAT_CASE_LOWER_EXT);
    }
    return n;
}

size_t fat_short_to_utf8(const uint8_t short_name[FAT_SHORT_NAME_LEN], uint8_t case_bits,
                         char out[FAT_SHORT_DISPLAY_UTF8])
{
    uint16_t units[FAT_SHORT_DISPLAY_MAX];
    size_t n = fat_short_to_utf16(short_name, case_bits, units), len = 0;
    /* cp437 maps into the BMP without surrogates: 3 bytes per unit always suffice */
    vfs_status st = fat_utf16_to_utf8(units, n, out, FAT_SHORT_DISPLAY_UTF8, &len);
    AF_ASSERT(st == VFS_OK);
    return len;
}

/* ---- aliases ------------------------------------------------------------------------------------- */

/* One long-name unit as a short-name byte: upper case ASCII, or '_' with *lossy set. */
static uint8_t alias_char(uint16_t u, bool *lossy)
{
    if (is_lower(u))
        return (uint8_t)(u - 0x20);
    if (is_upper(u) || is_digit(u) || short_punct_valid(u))
        return (uint8_t)u;
    *lossy = true;
    return '_';
}

void fat_alias_basis_make(const uint16_t *units, size_t len, fat_alias_basis *basis)
{
    af_memset(basis, 0, sizeof *basis);
    uint32_t h = fat_name_hash(units, len);
    basis->hash = (uint16_t)(h ^ (h >> 16));
    size_t start = 0, last_dot = len;
    while (start < len && (units[start] == '.' || units[start] == ' ')) {
        basis->lossy = true;
        start++;
    }
    for (size_t i = start; i < len; i++) {
        if (units[i] == '.')
            last_dot = i;
    }
    for (size_t i = start; i < last_dot; i++) {
        uint16_t u = units[i];
        if (u == ' ' || u == '.') {
            basis->lossy = true;
            continue;
        }
        /* A surrogate pair is one character: one '_'. */
        if (u >= 0xDC00 && u <= 0xDFFF && i > start && units[i - 1] >= 0xD800 && units[i - 1] <= 0xDBFF)
            continue;
        if (basis->base_len == 8) {
            basis->lossy = true;
            break;
        }
        basis->base[basis->base_len++] = alias_char(u, &basis->lossy);
    }
    for (size_t i = last_dot + 1; i < len; i++) {
        uint16_t u = units[i];
        if (u == ' ') {
            basis->lossy = true;
            continue;
        }
        if (u >= 0xDC00 && u <= 0xDFFF && units[i - 1] >= 0xD800 && units[i - 1] <= 0xDBFF)
            continue;
        if (basis->ext_len == 3) {
            basis->lossy = true;
            break;
        }
        basis->ext[basis->ext_len++] = alias_char(u, &basis->lossy);
    }
    if (basis->base_len == 0) {
        basis->base[0] = '_';
        basis->base_len = 1;
        basis->lossy = true;
    }
}

static void alias_with_tail(const fat_alias_basis *b, const uint8_t *base, size_t base_len, const uint8_t *tail,
                            size_t tail_len, uint8_t out[FAT_SHORT_NAME_LEN])
{
    af_memset(out, ' ', FAT_SHORT_NAME_LEN);
    size_t keep = base_len + tail_len > 8 ? 8 - tail_len : base_len;
    af_memcpy(out, base, keep);
    af_memcpy(out + keep, tail, tail_len);
    af_memcpy(out + 8, b->ext, b->ext_len);
}

static size_t format_numeric_tail(uint32_t n, uint8_t tail[8])
{
    uint8_t digits[7];
    size_t d = 0;
    do {
        digits[d++] = (uint8_t)('0' + n % 10);
        n /= 10;
    } while (n != 0);
    tail[0] = '~';
    for (size_t i = 0; i < d; i++)
        tail[1 + i] = digits[d - 1 - i];
    return d + 1;
}

bool fat_alias_candidate(const fat_alias_basis *b, uint32_t k, uint8_t short_name[FAT_SHORT_NAME_LEN])
{
    uint8_t tail[8] = {0};
    if (k == 0) {
        if (b->lossy)
            return false;
        alias_with_tail(b, b->base, b->base_len, tail, 0, short_name);
        return true;
    }
    if (k <= FAT_ALIAS_NUMERIC_FIRST) {
        alias_with_tail(b, b->base, b->base_len, tail, format_numeric_tail(k, tail), short_name);
        return true;
    }
    if (k <= FAT_ALIAS_NUMERIC_FIRST + FAT_ALIAS_HASHED) {
        static const char hex[] = "0123456789ABCDEF";
        uint32_t v = k - FAT_ALIAS_NUMERIC_FIRST - 1;
        uint16_t h = (uint16_t)(b->hash + (v / 9u) * 0x9E37u);
        uint8_t base[6];
        size_t prefix = b->base_len < 2 ? b->base_len : 2;
        af_memcpy(base, b->base, prefix);
        for (size_t i = 0; i < 4; i++)
            base[prefix + i] = (uint8_t)hex[(h >> (12 - 4 * i)) & 0xF];
        tail[0] = '~';
        tail[1] = (uint8_t)('1' + v % 9u);
        alias_with_tail(b, base, prefix + 4, tail, 2, short_name);
        return true;
    }
    uint32_t n = k - (FAT_ALIAS_NUMERIC_FIRST + FAT_ALIAS_HASHED) + FAT_ALIAS_NUMERIC_FIRST;
    if (n > 999999u)
        return false;
    alias_with_tail(b, b->base, b->base_len, tail, format_numeric_tail(n, tail), short_name);
    return true;
}

/* ---- LFN entries ----------------------------------------------------------------------------------- */

uint8_t fat_lfn_checksum(const uint8_t short_name[FAT_SHORT_NAME_LEN])
{
    uint8_t sum = 0;
    for (size_t i = 0; i < FAT_SHORT_NAME_LEN; i++)
        sum = (uint8_t)(((sum & 1u) << 7) + (sum >> 1) + short_name[i]);
    return sum;
}

uint32_t fat_lfn_entry_count(size_t len)
{
    return (uint32_t)((len + FAT_LFN_UNITS - 1) / FAT_LFN_UNITS);
}

/* Byte offset inside an LFN entry of its j-th name unit (0..12). */
static size_t lfn_unit_offset(size_t j)
{
    if (j < 5)
        return FAT_LFN_NAME1 + 2 * j;
    if (j < 11)
        return FAT_LFN_NAME2 + 2 * (j - 5);
    return FAT_LFN_NAME3 + 2 * (j - 11);
}

void fat_lfn_pack(const uint16_t *units, size_t len, uint8_t checksum, uint32_t ordinal, uint8_t entry[32])
{
    af_memset(entry, 0, 32);
    entry[FAT_LFN_ORDINAL] = (uint8_t)(ordinal | (ordinal == fat_lfn_entry_count(len) ? FAT_LFN_LAST : 0));
    entry[FAT_LFN_ATTR] = FAT_ATTR_LONG_NAME;
    entry[FAT_LFN_CHECKSUM] = checksum;
    for (size_t j = 0; j < FAT_LFN_UNITS; j++) {
        size_t idx = (ordinal - 1) * FAT_LFN_UNITS + j;
        uint16_t u = idx < len ? units[idx] : idx == len ? 0x0000 : 0xFFFF;
        af_store_le16(entry + lfn_unit_offset(j), u);
    }
}

void fat_lfn_reset(fat_lfn_state *s)
{
    s->checksum = 0;
    s->next_ordinal = 0;
    s->entries = 0;
    s->orphans = 0;
}

static void lfn_store(fat_lfn_state *s, const uint8_t entry[32], uint32_t ordinal)
{
    for (size_t j = 0; j < FAT_LFN_UNITS; j++)
        s->units[(ordinal - 1) * FAT_LFN_UNITS + j] = af_load_le16(entry + lfn_unit_offset(j));
}

uint32_t fat_lfn_abandon(fat_lfn_state *s)
{
    uint32_t n = s->entries;
    s->orphans += n;
    s->entries = 0;
    s->next_ordinal = 0;
    return n;
}

void fat_lfn_feed(fat_lfn_state *s, const uint8_t entry[32])
{
    uint8_t raw = entry[FAT_LFN_ORDINAL];
    uint32_t ordinal = raw & (uint8_t)~FAT_LFN_LAST;
    if (raw & FAT_LFN_LAST) {
        fat_lfn_abandon(s);
        if (ordinal == 0 || ordinal > FAT_LFN_MAX_ENTRIES) {
            s->orphans++;
            return;
        }
        s->checksum = entry[FAT_LFN_CHECKSUM];
        lfn_store(s, entry, ordinal);
        s->entries = 1;
        s->next_ordinal = (uint8_t)(ordinal - 1);
        return;
    }
    if (s->entries == 0 || ordinal == 0 || ordinal != s->next_ordinal || entry[FAT_LFN_CHECKSUM] != s->checksum) {
        fat_lfn_abandon(s);
        s->orphans++;
        return;
    }
    lfn_store(s, entry, ordinal);
    s->entries++;
    s->next_ordinal--;
}

uint32_t fat_lfn_finish(fat_lfn_state *s, const uint8_t short_entry[32], const uint16_t **units, size_t *len)
{
    if (s->entries == 0)
        return 0;
    uint32_t count = s->entries;
    size_t total = (size_t)count * FAT_LFN_UNITS, n = 0;
    while (n < total && s->units[n] != 0x0000)
        n++;
    if (s->next_ordinal != 0 || s->checksum != fat_lfn_checksum(short_entry + FAT_DIRENT_NAME) ||
        n <= total - FAT_LFN_UNITS || n > FAT_NAME_MAX_UNITS) {
        fat_lfn_abandon(s);
        return 0;
    }
    s->entries = 0;
    *units = s->units;
    *len = n;
    return count;
}
