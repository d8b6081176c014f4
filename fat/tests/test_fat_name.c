/* fat_name: UTF-8/16 conversion, name validation, 8.3 names and case bits, alias
 * candidates (10,000 unique names), LFN packing/assembly and checksums, folding/hashing. */
#include "fat/fat_layout.h"
#include "fat/fat_name.h"
#include "tests/harness.h"

#include <stdlib.h>
#include <string.h>

static vfs_status prep(const char *s, fat_name *n)
{
    return fat_name_prepare(s, strlen(s), n);
}

static bool units_are(const fat_name *n, const char *ascii)
{
    size_t len = strlen(ascii);
    if (n->len != len)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (n->units[i] != (uint8_t)ascii[i])
            return false;
    }
    return true;
}

/* UTF-8 -> UTF-16 -> UTF-8 must give back the same bytes. */
static bool round_trips(const char *s)
{
    uint16_t u[64];
    char back[256];
    size_t n, m;
    if (fat_utf8_to_utf16(s, strlen(s), u, 64, &n) != VFS_OK)
        return false;
    if (fat_utf16_to_utf8(u, n, back, sizeof back, &m) != VFS_OK)
        return false;
    return m == strlen(s) && memcmp(back, s, m) == 0;
}

TEST(utf8_utf16_round_trip)
{
    CHECK(round_trips("hello.txt"));
    CHECK(round_trips("caf\xc3\xa9"));                   /* U+00E9 */
    CHECK(round_trips("\xe2\x82\xac 100"));              /* U+20AC */
    CHECK(round_trips("\xef\xbf\xbf"));                  /* U+FFFF */
    CHECK(round_trips("\xf0\x9f\x98\x80 smile"));        /* U+1F600: surrogate pair */
    CHECK(round_trips("\xf4\x8f\xbf\xbf"));              /* U+10FFFF */
    uint16_t u[8];
    size_t n;
    CHECK_EQ(fat_utf8_to_utf16("\xf0\x9f\x98\x80", 4, u, 8, &n), VFS_OK);
    CHECK_EQ(n, 2);
    CHECK_EQ(u[0], 0xD83D);
    CHECK_EQ(u[1], 0xDE00);
    CHECK_EQ(fat_utf8_to_utf16("\xc3\xa9", 2, u, 8, &n), VFS_OK);
    CHECK_EQ(n, 1);
    CHECK_EQ(u[0], 0xE9);
}

TEST(utf8_invalid_rejected)
{
    static const char *bad[] = {
        "\x80",             /* lone continuation */
        "\xc0\xaf",         /* overlong '/' */
        "\xc1\xbf",         /* overlong */
        "\xe0\x80\xaf",     /* overlong 3-byte */
        "\xed\xa0\x80",     /* encoded surrogate D800 */
        "\xed\xbf\xbf",     /* encoded surrogate DFFF */
        "\xf0\x80\x80\xaf", /* overlong 4-byte */
        "\xf4\x90\x80\x80", /* above U+10FFFF */
        "\xf5\x80\x80\x80",
        "\xff",
        "\xc3",             /* truncated */
        "a\xe2\x82",        /* truncated */
        "\xc3\x28",         /* bad continuation */
    };
    uint16_t u[8];
    size_t n;
    for (size_t i = 0; i < AF_ARRAY_LEN(bad); i++)
        CHECK_MSG(fat_utf8_to_utf16(bad[i], strlen(bad[i]), u, 8, &n) == VFS_INVALID_NAME, "case %zu", i);
    CHECK_EQ(fat_utf8_to_utf16("a\0b", 3, u, 8, &n), VFS_INVALID_NAME);
    CHECK_EQ(fat_utf8_to_utf16("abc", 3, u, 2, &n), VFS_NAME_TOO_LONG);
    CHECK_EQ(fat_utf8_to_utf16("a\xf0\x9f\x98\x80", 5, u, 2, &n), VFS_NAME_TOO_LONG);
}

TEST(utf16_to_utf8_edges)
{
    char out[16];
    size_t n;
    uint16_t lone[] = {'a', 0xD800, 'b'};
    CHECK_EQ(fat_utf16_to_utf8(lone, 3, out, sizeof out, &n), VFS_OK);
    CHECK(n == 5 && memcmp(out, "a\xef\xbf\xbd" "b", 5) == 0);
    uint16_t lone_low[] = {0xDC00};
    CHECK_EQ(fat_utf16_to_utf8(lone_low, 1, out, sizeof out, &n), VFS_OK);
    CHECK_EQ(n, 3);
    uint16_t euro[] = {0x20AC, 0x20AC};
    CHECK_EQ(fat_utf16_to_utf8(euro, 2, out, 5, &n), VFS_NAME_TOO_LONG);
    CHECK_EQ(fat_utf16_to_utf8(euro, 2, out, 6, &n), VFS_OK);
}

TEST(prepare_rules)
{
    fat_name n;
    CHECK_EQ(prep("file.txt", &n), VFS_OK);
    CHECK(units_are(&n, "file.txt"));
    CHECK_EQ(prep("trail. . ", &n), VFS_OK);
    CHECK(units_are(&n, "trail"));
    CHECK_EQ(prep(" lead space", &n), VFS_OK);
    CHECK(units_are(&n, " lead space"));
    CHECK_EQ(prep(".hidden", &n), VFS_OK);
    CHECK_EQ(prep("a+b,c;d=e[f]", &n), VFS_OK);
    static const char *bad[] = {"", ".", "..", "...", " . ", "   ", "a\"b", "a*b", "a/b", "a:b", "a<b",
                                "a>b", "a?b", "a\\b", "a|b", "tab\there", "\x01", "nl\n"};
    for (size_t i = 0; i < AF_ARRAY_LEN(bad); i++)
        CHECK_MSG(prep(bad[i], &n) == VFS_INVALID_NAME, "case %zu '%s'", i, bad[i]);
    CHECK_EQ(fat_name_prepare("ab\xc3", 3, &n), VFS_INVALID_NAME);

    char longname[600];
    memset(longname, 'x', 255);
    longname[255] = 0;
    CHECK_EQ(prep(longname, &n), VFS_OK);
    CHECK_EQ(n.len, 255);
    longname[255] = 'x';
    longname[256] = 0;
    CHECK_EQ(prep(longname, &n), VFS_NAME_TOO_LONG);
    /* trailing dots do not count */
    memset(longname + 255, '.', 100);
    longname[355] = 0;
    CHECK_EQ(prep(longname, &n), VFS_OK);
    CHECK_EQ(n.len, 255);
    /* 127 non-BMP characters = 254 units fit; 128 = 256 do not */
    char *p = longname;
    for (int i = 0; i < 127; i++, p += 4)
        memcpy(p, "\xf0\x9f\x98\x80", 4);
    *p = 0;
    CHECK_EQ(prep(longname, &n), VFS_OK);
    CHECK_EQ(n.len, 254);
    memcpy(p, "\xf0\x9f\x98\x80", 5);
    CHECK_EQ(prep(longname, &n), VFS_NAME_TOO_LONG);
}

TEST(fold_and_hash)
{
    CHECK_EQ(fat_name_fold('a'), 'A');
    CHECK_EQ(fat_name_fold('z'), 'Z');
    CHECK_EQ(fat_name_fold('A'), 'A');
    CHECK_EQ(fat_name_fold('{'), '{');
    CHECK_EQ(fat_name_fold(0xE9), 0xC9);
    CHECK_EQ(fat_name_fold(0xFE), 0xDE);
    CHECK_EQ(fat_name_fold(0xF7), 0xF7); /* division sign */
    CHECK_EQ(fat_name_fold(0xFF), 0xFF);
    CHECK_EQ(fat_name_fold(0x3B1), 0x3B1);
    fat_name a, b;
    CHECK_EQ(prep("Caf\xc3\xa9.TXT", &a), VFS_OK);
    CHECK_EQ(prep("CAF\xc3\x89.txt", &b), VFS_OK);
    CHECK(fat_name_equal_nocase(a.units, a.len, b.units, b.len));
    CHECK_EQ(fat_name_hash(a.units, a.len), fat_name_hash(b.units, b.len));
    CHECK_EQ(prep("cafe.txt", &b), VFS_OK);
    CHECK(!fat_name_equal_nocase(a.units, a.len, b.units, b.len));
    CHECK(!fat_name_equal_nocase(a.units, a.len, b.units, b.len - 1));
    /* random names: equal ignoring case implies equal hash */
    uint64_t seed = test_seed();
    for (int i = 0; i < 2000; i++) {
        uint16_t x[8], y[8];
        for (int j = 0; j < 8; j++) {
            static const uint16_t alphabet[] = {'a', 'A', 'b', 'B', 0xE0, 0xC0, 0xF7, 0xD7, 0xFF, '1'};
            x[j] = alphabet[test_rand_below(&seed, AF_ARRAY_LEN(alphabet))];
            y[j] = test_rand_below(&seed, 2) ? x[j] : fat_name_fold(x[j]);
        }
        CHECK(fat_name_equal_nocase(x, 8, y, 8));
        CHECK_EQ(fat_name_hash(x, 8), fat_name_hash(y, 8));
    }
}

static bool short_is(const char *name, const char *expect11, uint8_t expect_case)
{
    fat_name n;
    uint8_t sn[11], cb = 0xFF;
    if (prep(name, &n) != VFS_OK)
        return false;
    if (!fat_short_from_name(n.units, n.len, sn, &cb))
        return expect11 == NULL;
    return expect11 != NULL && memcmp(sn, expect11, 11) == 0 && cb == expect_case;
}

TEST(short_names_exact)
{
    CHECK(short_is("FOO.TXT", "FOO     TXT", 0));
    CHECK(short_is("foo.txt", "FOO     TXT", FAT_CASE_LOWER_BASE | FAT_CASE_LOWER_EXT));
    CHECK(short_is("foo.TXT", "FOO     TXT", FAT_CASE_LOWER_BASE));
    CHECK(short_is("FOO.txt", "FOO     TXT", FAT_CASE_LOWER_EXT));
    CHECK(short_is("README", "README     ", 0));
    CHECK(short_is("12345678.123", "12345678123", 0));
    CHECK(short_is("A~1", "A~1        ", 0));
    CHECK(short_is("$#!%&'()", "$#!%&'()   ", 0));
    CHECK(short_is("x-y_z.{}", "X-Y_Z   {} ", FAT_CASE_LOWER_BASE));
    CHECK(short_is("Foo.txt", NULL, 0));      /* mixed case base */
    CHECK(short_is("foo.Txt", NULL, 0));
    CHECK(short_is("123456789", NULL, 0));    /* base too long */
    CHECK(short_is("a.bcde", NULL, 0));       /* extension too long */
    CHECK(short_is("a.b.c", NULL, 0));        /* two dots */
    CHECK(short_is(".bashrc", NULL, 0));      /* leading dot */
    CHECK(short_is("a b", NULL, 0));          /* space */
    CHECK(short_is("a+b", NULL, 0));          /* '+' only in long names */
    CHECK(short_is("a[1]", NULL, 0));
    CHECK(short_is("caf\xc3\xa9", NULL, 0));  /* non-ASCII */
}

TEST(short_name_valid_and_display)
{
    CHECK(fat_short_name_valid((const uint8_t *)"FOO     TXT"));
    CHECK(fat_short_name_valid((const uint8_t *)"\x05" "BC     TXT"));
    CHECK(fat_short_name_valid((const uint8_t *)"\x80\x99      TXT"));
    CHECK(!fat_short_name_valid((const uint8_t *)"foo     TXT"));
    CHECK(!fat_short_name_valid((const uint8_t *)" FOO    TXT"));
    CHECK(!fat_short_name_valid((const uint8_t *)"FO\x01     TXT"));
    CHECK(!fat_short_name_valid((const uint8_t *)"FO.     TXT"));
    CHECK(!fat_short_name_valid((const uint8_t *)"FO+     TXT"));
    CHECK(!fat_short_name_valid((const uint8_t *)"FO\x7f     TXT"));
    CHECK(fat_short_name_valid((const uint8_t *)"F O     T T")); /* embedded spaces are legal */
    CHECK(!fat_short_name_valid((const uint8_t *)"FOO     T?T"));

    uint16_t out[FAT_SHORT_DISPLAY_MAX];
    char utf8[64];
    size_t n, m;
    n = fat_short_to_utf16((const uint8_t *)"FOO     TXT", 0, out);
    CHECK_EQ(fat_utf16_to_utf8(out, n, utf8, sizeof utf8, &m), VFS_OK);
    CHECK(m == 7 && memcmp(utf8, "FOO.TXT", 7) == 0);
    n = fat_short_to_utf16((const uint8_t *)"FOO     TXT", FAT_CASE_LOWER_BASE, out);
    CHECK_EQ(fat_utf16_to_utf8(out, n, utf8, sizeof utf8, &m), VFS_OK);
    CHECK(m == 7 && memcmp(utf8, "foo.TXT", 7) == 0);
    n = fat_short_to_utf16((const uint8_t *)"README     ", FAT_CASE_LOWER_BASE | FAT_CASE_LOWER_EXT, out);
    CHECK_EQ(n, 6);
    CHECK_EQ(out[0], 'r');
    n = fat_short_to_utf16((const uint8_t *)"12345678ABC", FAT_CASE_LOWER_EXT, out);
    CHECK_EQ(n, 12);
    CHECK_EQ(out[11], 'c');
    /* 0x05 stands for 0xE5 (cp437: U+03C3), 0x80 is U+00C7, 0x99 is U+00D6, 0xE1 U+00DF */
    n = fat_short_to_utf16((const uint8_t *)"\x05\x80\x99\xe1    \x01  ", 0, out);
    CHECK_EQ(n, 6);
    CHECK_EQ(out[0], 0x03C3);
    CHECK_EQ(out[1], 0x00C7);
    CHECK_EQ(out[2], 0x00D6);
    CHECK_EQ(out[3], 0x00DF);
    CHECK_EQ(out[5], '_');
    n = fat_short_to_utf8((const uint8_t *)"CAF\x82    TXT", FAT_CASE_LOWER_BASE | FAT_CASE_LOWER_EXT, utf8);
    CHECK(n == 9 && memcmp(utf8, "caf\xc3\xa9.txt", 9) == 0); /* cp437 0x82 = U+00E9 */
    /* every byte value displays without overflowing */
    for (int c = 0; c < 256; c++) {
        uint8_t sn[11];
        memset(sn, c, 11);
        CHECK(fat_short_to_utf16(sn, 0x18, out) <= FAT_SHORT_DISPLAY_MAX);
        CHECK(fat_short_to_utf8(sn, 0x18, utf8) <= FAT_SHORT_DISPLAY_UTF8);
    }
}

/* Damaged entries too: whatever bytes a short entry holds, the name it shows is one a
 * lookup takes unchanged (no trailing dot or space to strip, no character it refuses). */
TEST(every_short_display_name_survives_prepare)
{
    uint64_t seed = test_seed();
    static const uint8_t tricky[] = {'.', ' ', '/', '*', '?', ':', '\\', 0x01, 0x7f, 'A', 0xe5};
    for (int i = 0; i < 20000; i++) {
        uint8_t sn[11];
        for (int b = 0; b < 11; b++)
            sn[b] = i % 2 ? tricky[test_rand_below(&seed, sizeof tricky)] : (uint8_t)test_rand(&seed);
        char utf8[FAT_SHORT_DISPLAY_UTF8];
        size_t len = fat_short_to_utf8(sn, (uint8_t)test_rand(&seed) & 0x18, utf8);
        fat_name n;
        vfs_status st = fat_name_prepare(utf8, len, &n);
        uint16_t units[FAT_SHORT_DISPLAY_MAX];
        size_t units_len = fat_short_to_utf16(sn, 0, units);
        CHECK_MSG(st == VFS_OK && n.len == units_len, "short name %02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x",
                  sn[0], sn[1], sn[2], sn[3], sn[4], sn[5], sn[6], sn[7], sn[8], sn[9], sn[10]);
    }
    uint16_t out[FAT_SHORT_DISPLAY_MAX];
    size_t n = fat_short_to_utf16((const uint8_t *)"F1.     A.B", 0, out);
    CHECK(n == 7 && out[2] == '_' && out[3] == '.' && out[6] == 'B');
    CHECK_EQ(fat_short_to_utf16((const uint8_t *)"           ", 0, out), 1);
    CHECK_EQ(out[0], '_');
}

static void make_basis(const char *name, fat_alias_basis *b)
{
    fat_name n;
    AF_ASSERT(prep(name, &n) == VFS_OK);
    fat_alias_basis_make(n.units, n.len, b);
}

static bool candidate_is(const char *name, uint32_t k, const char *expect11)
{
    fat_alias_basis b;
    uint8_t sn[11];
    make_basis(name, &b);
    if (!fat_alias_candidate(&b, k, sn))
        return expect11 == NULL;
    if (expect11 == NULL || memcmp(sn, expect11, 11) != 0) {
        printf("alias of '%s' k=%u: '%.11s'\n", name, k, sn);
        return false;
    }
    return true;
}

TEST(alias_basis_rules)
{
    CHECK(candidate_is("Foo.Txt", 0, "FOO     TXT"));
    CHECK(candidate_is("Foo.Txt", 1, "FOO~1   TXT"));
    CHECK(candidate_is("LongFileName.txt", 0, NULL));
    CHECK(candidate_is("LongFileName.txt", 1, "LONGFI~1TXT"));
    CHECK(candidate_is("LongFileName.txt", 4, "LONGFI~4TXT"));
    CHECK(candidate_is("foo bar.txt", 0, NULL));
    CHECK(candidate_is("foo bar.txt", 1, "FOOBAR~1TXT"));
    CHECK(candidate_is(".bashrc", 1, "BASHRC~1   "));
    CHECK(candidate_is("a.b.c.d", 1, "ABC~1   D  "));
    CHECK(candidate_is("file.html", 1, "FILE~1  HTM"));
    CHECK(candidate_is("a+b=c.t[x", 1, "A_B_C~1 T_X"));
    CHECK(candidate_is("caf\xc3\xa9.txt", 1, "CAF_~1  TXT"));
    CHECK(candidate_is("\xf0\x9f\x98\x80", 1, "_~1        "));
    CHECK(candidate_is("+", 0, NULL));
    CHECK(candidate_is("+", 1, "_~1        "));
    CHECK(candidate_is("x.", 0, "X          "));
    /* numeric tails past the hashed range cut the base further */
    uint32_t first_numeric = 1 + FAT_ALIAS_NUMERIC_FIRST + FAT_ALIAS_HASHED;
    CHECK(candidate_is("LongFileName.txt", first_numeric, "LONGFI~5TXT"));
    CHECK(candidate_is("LongFileName.txt", first_numeric + 5, "LONGF~10TXT"));
    CHECK(candidate_is("LongFileName.txt", FAT_ALIAS_CANDIDATES - 1, "L~999999TXT"));
    CHECK(candidate_is("LongFileName.txt", FAT_ALIAS_CANDIDATES, NULL));
    /* hashed candidates: 2 basis chars, 4 hex digits, ~digit */
    fat_alias_basis b;
    uint8_t sn[11];
    make_basis("LongFileName.txt", &b);
    CHECK(fat_alias_candidate(&b, 5, sn));
    CHECK(sn[0] == 'L' && sn[1] == 'O' && sn[6] == '~' && sn[7] == '1');
    CHECK(memcmp(sn + 8, "TXT", 3) == 0);
    for (int i = 2; i < 6; i++)
        CHECK((sn[i] >= '0' && sn[i] <= '9') || (sn[i] >= 'A' && sn[i] <= 'F'));
    /* every candidate of a few names is a valid short name */
    static const char *names[] = {"LongFileName.txt", "+", "caf\xc3\xa9", "a b c d e f g h i.jklmn", ".x"};
    for (size_t i = 0; i < AF_ARRAY_LEN(names); i++) {
        make_basis(names[i], &b);
        for (uint32_t k = 1; k < 400; k++) {
            CHECK(fat_alias_candidate(&b, k, sn));
            CHECK_MSG(fat_short_name_valid(sn), "'%s' k=%u '%.11s'", names[i], k, sn);
        }
    }
}

/* The engine's strategy with an O(1) used-name set: 10,000 names sharing a basis must all
 * get distinct aliases after few probes each. */
#define SET_BITS 16
static uint8_t used_names[1u << SET_BITS][11];
static bool used_present[1u << SET_BITS];

static bool set_contains_or_add(const uint8_t sn[11], bool add)
{
    uint32_t i = fat_short_name_hash(sn) & ((1u << SET_BITS) - 1);
    while (used_present[i]) {
        if (memcmp(used_names[i], sn, 11) == 0)
            return true;
        i = (i + 1) & ((1u << SET_BITS) - 1);
    }
    if (add) {
        used_present[i] = true;
        memcpy(used_names[i], sn, 11);
    }
    return false;
}

TEST(alias_10000_unique)
{
    memset(used_present, 0, sizeof used_present);
    uint64_t probes = 0;
    uint32_t worst = 0;
    for (int i = 0; i < 10000; i++) {
        char name[64];
        snprintf(name, sizeof name, "Camera recording %05d.mp4", i);
        fat_alias_basis b;
        make_basis(name, &b);
        uint32_t k = 0;
        uint8_t sn[11];
        for (;; k++) {
            CHECK(k < FAT_ALIAS_CANDIDATES);
            if (fat_alias_candidate(&b, k, sn) && !set_contains_or_add(sn, false))
                break;
        }
        set_contains_or_add(sn, true);
        probes += k + 1;
        if (k + 1 > worst)
            worst = k + 1;
    }
    printf("alias probes: %llu total, worst %u\n", (unsigned long long)probes, worst);
    CHECK(probes < 10000ull * 12);
    CHECK(worst < 200);
}

TEST(lfn_checksum_known)
{
    /* values computed by hand-independent implementation of fatgen103's rotate-add sum */
    CHECK_EQ(fat_lfn_checksum((const uint8_t *)"FOO     BAR"), 83);
    CHECK_EQ(fat_lfn_checksum((const uint8_t *)"README  TXT"), 115);
    CHECK_EQ(fat_lfn_checksum((const uint8_t *)"LONGFI~1TXT"), 212);
    CHECK_EQ(fat_lfn_checksum((const uint8_t *)"           "), 247);
}

static bool lfn_round_trip(const uint16_t *units, size_t len)
{
    uint8_t entries[FAT_LFN_MAX_ENTRIES + 1][32];
    uint32_t count = fat_lfn_entry_count(len);
    uint8_t short_entry[32] = "ABCDEF~1TXT";
    uint8_t sum = fat_lfn_checksum(short_entry);
    for (uint32_t i = 0; i < count; i++)
        fat_lfn_pack(units, len, sum, count - i, entries[i]);
    fat_lfn_state s;
    fat_lfn_reset(&s);
    for (uint32_t i = 0; i < count; i++)
        fat_lfn_feed(&s, entries[i]);
    const uint16_t *got;
    size_t got_len;
    if (fat_lfn_finish(&s, short_entry, &got, &got_len) != count)
        return false;
    return got_len == len && memcmp(got, units, len * 2) == 0 && s.orphans == 0;
}

TEST(lfn_pack_layout_and_round_trip)
{
    fat_name n;
    CHECK_EQ(prep("abcdefghijklmnopq", &n), VFS_OK); /* 17 units: 2 entries */
    CHECK_EQ(fat_lfn_entry_count(n.len), 2);
    CHECK_EQ(fat_lfn_entry_count(13), 1);
    CHECK_EQ(fat_lfn_entry_count(14), 2);
    CHECK_EQ(fat_lfn_entry_count(255), 20);
    uint8_t e[32];
    fat_lfn_pack(n.units, n.len, 0x5A, 1, e);
    CHECK_EQ(e[0], 1);
    CHECK_EQ(e[FAT_LFN_ATTR], 0x0F);
    CHECK_EQ(e[FAT_LFN_TYPE], 0);
    CHECK_EQ(e[FAT_LFN_CHECKSUM], 0x5A);
    CHECK_EQ(af_load_le16(e + 26), 0);
    CHECK_EQ(af_load_le16(e + 1), 'a');
    CHECK_EQ(af_load_le16(e + 9), 'e');
    CHECK_EQ(af_load_le16(e + 14), 'f');
    CHECK_EQ(af_load_le16(e + 24), 'k');
    CHECK_EQ(af_load_le16(e + 28), 'l');
    CHECK_EQ(af_load_le16(e + 30), 'm');
    fat_lfn_pack(n.units, n.len, 0x5A, 2, e);
    CHECK_EQ(e[0], 0x42);
    CHECK_EQ(af_load_le16(e + 1), 'n');
    CHECK_EQ(af_load_le16(e + 7), 'q');
    CHECK_EQ(af_load_le16(e + 9), 0x0000);
    CHECK_EQ(af_load_le16(e + 14), 0xFFFF);
    CHECK_EQ(af_load_le16(e + 30), 0xFFFF);
    /* exactly 13 units: no terminator */
    CHECK_EQ(prep("abcdefghijklm", &n), VFS_OK);
    fat_lfn_pack(n.units, n.len, 0, 1, e);
    CHECK_EQ(e[0], 0x41);
    CHECK_EQ(af_load_le16(e + 30), 'm');

    uint64_t seed = test_seed();
    uint16_t units[255];
    for (size_t len = 1; len <= 255; len++) {
        for (size_t i = 0; i < len; i++)
            units[i] = (uint16_t)(1 + test_rand_below(&seed, 0xFFFE));
        CHECK_MSG(lfn_round_trip(units, len), "len %zu", len);
    }
}

TEST(lfn_orphans)
{
    fat_name n;
    CHECK_EQ(prep("a name that needs three entries!!", &n), VFS_OK);
    uint8_t short_entry[32] = "ANAMET~1   ";
    uint8_t sum = fat_lfn_checksum(short_entry);
    uint8_t e[3][32];
    for (uint32_t i = 0; i < 3; i++)
        fat_lfn_pack(n.units, n.len, sum, 3 - i, e[i]);
    fat_lfn_state s;
    const uint16_t *u;
    size_t len;

    /* missing middle entry */
    fat_lfn_reset(&s);
    fat_lfn_feed(&s, e[0]);
    fat_lfn_feed(&s, e[2]);
    CHECK_EQ(fat_lfn_finish(&s, short_entry, &u, &len), 0);
    CHECK_EQ(s.orphans, 2);
    /* missing first (0x40) entry */
    fat_lfn_reset(&s);
    fat_lfn_feed(&s, e[1]);
    fat_lfn_feed(&s, e[2]);
    CHECK_EQ(fat_lfn_finish(&s, short_entry, &u, &len), 0);
    CHECK_EQ(s.orphans, 2);
    /* wrong checksum at the short entry */
    fat_lfn_reset(&s);
    for (int i = 0; i < 3; i++)
        fat_lfn_feed(&s, e[i]);
    uint8_t other[32] = "OTHER   TXT";
    CHECK_EQ(fat_lfn_finish(&s, other, &u, &len), 0);
    CHECK_EQ(s.orphans, 3);
    /* a new sequence starts before the old one finished */
    fat_lfn_reset(&s);
    fat_lfn_feed(&s, e[0]);
    for (int i = 0; i < 3; i++)
        fat_lfn_feed(&s, e[i]);
    CHECK_EQ(fat_lfn_finish(&s, short_entry, &u, &len), 3);
    CHECK_EQ(s.orphans, 1);
    CHECK_EQ(len, n.len);
    /* sequence ends at a free entry */
    fat_lfn_reset(&s);
    fat_lfn_feed(&s, e[0]);
    CHECK_EQ(fat_lfn_abandon(&s), 1);
    CHECK_EQ(s.orphans, 1);
    /* ordinal 0 and ordinal > 20 */
    uint8_t bad[32];
    memcpy(bad, e[0], 32);
    bad[0] = 0x40;
    fat_lfn_reset(&s);
    fat_lfn_feed(&s, bad);
    bad[0] = 0x40 | 21;
    fat_lfn_feed(&s, bad);
    CHECK_EQ(s.orphans, 2);
    /* a terminator in a non-last entry makes the length inconsistent */
    memcpy(bad, e[2], 32);
    af_store_le16(bad + 1, 0);
    fat_lfn_reset(&s);
    fat_lfn_feed(&s, e[0]);
    fat_lfn_feed(&s, e[1]);
    fat_lfn_feed(&s, bad);
    CHECK_EQ(fat_lfn_finish(&s, short_entry, &u, &len), 0);
    CHECK_EQ(s.orphans, 3);
}

TEST(lfn_random_garbage_never_overflows)
{
    uint64_t seed = test_seed();
    fat_lfn_state s;
    fat_lfn_reset(&s);
    uint8_t e[32], sh[32];
    for (int i = 0; i < 100000; i++) {
        for (int j = 0; j < 32; j++)
            e[j] = (uint8_t)test_rand(&seed);
        if (test_rand_below(&seed, 2))
            e[0] = (uint8_t)(test_rand_below(&seed, 2) ? 0x40 : 0) | (uint8_t)test_rand_below(&seed, 22);
        fat_lfn_feed(&s, e);
        if (test_rand_below(&seed, 8) == 0) {
            for (int j = 0; j < 32; j++)
                sh[j] = (uint8_t)test_rand(&seed);
            const uint16_t *u;
            size_t len;
            if (fat_lfn_finish(&s, sh, &u, &len))
                CHECK(len >= 1 && len <= 255);
        }
    }
}
