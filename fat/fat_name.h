/* fat_name: file names between the API (UTF-8) and the disk (UTF-16 long names, 8.3 short
 * names): conversion, validation, 8.3 rules and case bits, alias generation, LFN entries,
 * checksums, and case-insensitive comparison and hashing.
 *
 * Contract: pure functions, no I/O, no allocation; safe to call from any fiber.
 *
 * Names inside the engine are UTF-16 units (what the disk stores). Case folding covers
 * ASCII a-z and Latin-1 U+00E0..U+00FE except U+00F7 (each minus 0x20); every other unit
 * compares exactly. fat_name_hash is consistent with fat_name_equal_nocase: equal names
 * hash equal.
 *
 * Short names: bytes >= 0x80 are read as code page 437 (the DOS/Linux default); when an
 * alias is generated from a long name, characters outside ASCII become '_' (a lossy
 * conversion, so the alias always gets a ~N tail), and names with such characters are
 * never stored as short-only entries.
 */
#ifndef ASYNCFAT_FAT_NAME_H
#define ASYNCFAT_FAT_NAME_H

#include "base/base.h"
#include "fat/fat_layout.h"
#include "vfs/vfs.h"

#define FAT_NAME_MAX_UNITS 255u            /* UTF-16 units in a long name */
#define FAT_NAME_MAX_UTF8 (FAT_NAME_MAX_UNITS * 3u) /* worst case UTF-8 bytes of such a name */
#define FAT_SHORT_NAME_LEN 11u
#define FAT_SHORT_DISPLAY_MAX 12u          /* "BASENAME.EXT" in UTF-16 units */

/* A validated name component, in UTF-16 units. */
typedef struct fat_name {
    uint16_t units[FAT_NAME_MAX_UNITS];
    uint16_t len;                           /* 1..255 */
} fat_name;

/* ---- UTF-8 <-> UTF-16 --------------------------------------------------------------------- */

/* Decodes `len` bytes of UTF-8 into UTF-16 (surrogate pairs above U+FFFF). Rejects
 * overlong forms, encoded surrogates, values above U+10FFFF, truncated sequences and NUL
 * with VFS_INVALID_NAME; VFS_NAME_TOO_LONG if more than `cap` units result.
 * On success *out_len is the number of units written. */
vfs_status fat_utf8_to_utf16(const char *utf8, size_t len, uint16_t *out, size_t cap, size_t *out_len);

/* Encodes UTF-16 units as UTF-8. An unpaired surrogate (possible on a foreign disk) becomes
 * U+FFFD. VFS_NAME_TOO_LONG if more than `cap` bytes are needed (nothing useful is
 * in `out` then). No NUL terminator is written. */
vfs_status fat_utf16_to_utf8(const uint16_t *units, size_t len, char *out, size_t cap, size_t *out_len);

/* ---- validation ------------------------------------------------------------------------------ */

/* Turns a client's UTF-8 name component into a name that may be created or looked up:
 * decodes it, strips trailing dots and spaces (as Windows does), and rejects (INVALID_NAME)
 * the empty name, "." and "..", names of only dots and spaces, control characters
 * (< 0x20) and any of " * / : < > ? \ |. More than 255 units after stripping gives
 * VFS_NAME_TOO_LONG. The path layer handles "." and ".." components before this. */
vfs_status fat_name_prepare(const char *utf8, size_t len, fat_name *out);

/* ---- case-insensitive comparison ---------------------------------------------------------- */

/* The folded (upper-case) form of one unit; see the header comment for the range. */
uint16_t fat_name_fold(uint16_t unit);
bool fat_name_equal_nocase(const uint16_t *a, size_t a_len, const uint16_t *b, size_t b_len);
/* 32-bit FNV-1a over the folded units. */
uint32_t fat_name_hash(const uint16_t *units, size_t len);

/* ---- short (8.3) names ------------------------------------------------------------------------- */

/* If `name` can be stored as a short entry alone (no LFN entries), writes the 11-byte
 * short name and the FAT_CASE_* bits that reproduce its case and returns true. That needs:
 * ASCII only; base 1..8 and extension 0..3 characters, at most one dot, not leading;
 * only characters valid in short names; each part all upper or all lower case. */
bool fat_short_from_name(const uint16_t *units, size_t len, uint8_t short_name[FAT_SHORT_NAME_LEN],
                         uint8_t *case_bits);

/* Is this 11-byte field a well-formed short name (as a checker sees it): no byte < 0x20
 * (except 0x05 as the first) or 0x7F, none of " * + , . / : ; < = > ? [ \ ] |, no lower-case a-z,
 * base not starting with a space. "." and ".." entries are not short names here. */
bool fat_short_name_valid(const uint8_t short_name[FAT_SHORT_NAME_LEN]);

/* The display name of a short entry: trailing spaces dropped, '.' before a non-empty
 * extension, case bits applied, 0x05 read as 0xE5, bytes >= 0x80 read as code page 437,
 * other control bytes, '.' and characters no long name may hold shown as '_', an all-space
 * base as "_". So every display name is one fat_name_prepare takes unchanged: what readdir
 * lists, lookup finds.
 * Returns the number of units written to out (at most FAT_SHORT_DISPLAY_MAX). */
size_t fat_short_to_utf16(const uint8_t short_name[FAT_SHORT_NAME_LEN], uint8_t case_bits,
                          uint16_t out[FAT_SHORT_DISPLAY_MAX]);

/* The same display name in UTF-8 (at most FAT_SHORT_DISPLAY_UTF8 bytes, no NUL); returns
 * the number of bytes written. */
#define FAT_SHORT_DISPLAY_UTF8 (FAT_SHORT_DISPLAY_MAX * 3u)
size_t fat_short_to_utf8(const uint8_t short_name[FAT_SHORT_NAME_LEN], uint8_t case_bits,
                         char out[FAT_SHORT_DISPLAY_UTF8]);

/* 32-bit hash of an 11-byte short name, for the engine's set of names used in a directory. */
uint32_t fat_short_name_hash(const uint8_t short_name[FAT_SHORT_NAME_LEN]);

/* ---- alias generation (the spec's basis-name algorithm) --------------------------------------- */

/* The basis of a long name's aliases: upper-cased, invalid characters as '_', spaces and
 * embedded dots dropped, leading dots dropped, extension from after the last dot. */
typedef struct fat_alias_basis {
    uint8_t base[8];
    uint8_t base_len;   /* 1..8 (a name with nothing usable gets the base "_") */
    uint8_t ext[3];
    uint8_t ext_len;    /* 0..3 */
    bool lossy;         /* characters were replaced or dropped, or a part was truncated */
    uint16_t hash;      /* hash of the whole long name, for hashed tails */
} fat_alias_basis;

void fat_alias_basis_make(const uint16_t *units, size_t len, fat_alias_basis *basis);

/* Candidate alias number k (0 <= k < FAT_ALIAS_CANDIDATES) for this basis, in the order
 * the engine should try them; it takes the first one not used in the directory:
 *   k = 0          the basis itself, with no tail ("FOO.TXT" for "Foo.txt"); only when the
 *                  basis is not lossy and fits 8.3, else false is returned
 *   k = 1..4       numeric tails BASIS~1 .. BASIS~4 (the base cut to make room)
 *   k = 5..148     hashed tails like Windows: 2 basis chars, 4 hex digits of the name
 *                  hash (perturbed every 9 candidates), ~1..~9 ("AB12F3~1.TXT")
 *   k >= 149       numeric tails ~5 .. ~999999 on the basis
 * Returns true and writes the 11-byte short name if candidate k exists. With the O(1)
 * used-name set, 10,000 similar names cost a few probes each. */
#define FAT_ALIAS_NUMERIC_FIRST 4u
#define FAT_ALIAS_HASHED 144u
#define FAT_ALIAS_CANDIDATES (1u + FAT_ALIAS_NUMERIC_FIRST + FAT_ALIAS_HASHED + (999999u - FAT_ALIAS_NUMERIC_FIRST))
bool fat_alias_candidate(const fat_alias_basis *basis, uint32_t k, uint8_t short_name[FAT_SHORT_NAME_LEN]);

/* ---- long-name (LFN) entries ------------------------------------------------------------------- */

/* The spec's checksum of an 11-byte short name, stored in each of its LFN entries. */
uint8_t fat_lfn_checksum(const uint8_t short_name[FAT_SHORT_NAME_LEN]);

/* Number of LFN entries for a name of `len` units (ceil(len / 13)). */
uint32_t fat_lfn_entry_count(size_t len);

/* Fills the 32-byte LFN entry with ordinal `ordinal` (1-based; entry 1 holds units 0..12).
 * The entry with ordinal == fat_lfn_entry_count(len) gets the 0x40 flag. Units past the
 * name: one 0x0000 terminator (if room), then 0xFFFF. On disk the entries go in
 * descending ordinal order, immediately before the short entry. */
void fat_lfn_pack(const uint16_t *units, size_t len, uint8_t checksum, uint32_t ordinal,
                  uint8_t entry[32]);

/* Assembles a long name from LFN entries met in directory order. Feed every LFN entry
 * (attribute FAT_ATTR_LONG_NAME, not deleted); at the short entry call fat_lfn_finish. A
 * sequence broken anywhere (no 0x40 start, an ordinal out of order, a different checksum,
 * a bad length) is dropped: `orphans` counts the LFN entries discarded that way. */
typedef struct fat_lfn_state {
    uint16_t units[FAT_LFN_MAX_ENTRIES * 13];
    uint8_t checksum;
    uint8_t next_ordinal;   /* expected ordinal of the next entry; 0 = no sequence open */
    uint8_t entries;        /* entries in the open sequence */
    uint32_t orphans;       /* LFN entries dropped since reset */
} fat_lfn_state;

void fat_lfn_reset(fat_lfn_state *s);
void fat_lfn_feed(fat_lfn_state *s, const uint8_t entry[32]);
/* Call at a short entry (or any non-LFN entry). If a complete sequence is open and its
 * checksum matches, returns its entry count (>= 1) and the name in *units / *len (pointing
 * into s); otherwise counts the open entries as orphans and returns 0. Closes the sequence. */
uint32_t fat_lfn_finish(fat_lfn_state *s, const uint8_t short_entry[32], const uint16_t **units, size_t *len);
/* Call at a free or end entry: an open sequence there is orphaned. Returns its entry count. */
uint32_t fat_lfn_abandon(fat_lfn_state *s);

#endif
