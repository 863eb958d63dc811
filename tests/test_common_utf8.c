/* common/qf_utf8: the UTF-8 validator every reader uses, against the table of well-formed
 * byte sequences (Unicode 15, table 3-7) written out independently below. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "common/qf_utf8.h"

/* Length of the well-formed sequence at s[0..n) by table 3-7, 0 if none. */
static size_t ref_len(const unsigned char *s, size_t n)
{
    static const struct { unsigned char lo0, hi0, lo1, hi1; size_t len; } t[] = {
        {0x00, 0x7F, 0, 0, 1},       {0xC2, 0xDF, 0x80, 0xBF, 2}, {0xE0, 0xE0, 0xA0, 0xBF, 3},
        {0xE1, 0xEC, 0x80, 0xBF, 3}, {0xED, 0xED, 0x80, 0x9F, 3}, {0xEE, 0xEF, 0x80, 0xBF, 3},
        {0xF0, 0xF0, 0x90, 0xBF, 4}, {0xF1, 0xF3, 0x80, 0xBF, 4}, {0xF4, 0xF4, 0x80, 0x8F, 4},
    };
    if (n == 0)
        return 0;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; ++i) {
        if (s[0] < t[i].lo0 || s[0] > t[i].hi0)
            continue;
        if (n < t[i].len)
            return 0;
        if (t[i].len > 1 && (s[1] < t[i].lo1 || s[1] > t[i].hi1))
            return 0;
        for (size_t k = 2; k < t[i].len; ++k)
            if (s[k] < 0x80 || s[k] > 0xBF)
                return 0;
        return t[i].len;
    }
    return 0;
}

Test(utf8, char_len_matches_table_3_7)
{
    static const unsigned char tails[] = {0x00, 0x41, 0x7F, 0x80, 0x9F, 0xA0, 0xBF, 0xC0, 0xFF};
    const size_t nt = sizeof tails;
    long valid[5] = {0};
    for (unsigned b0 = 0; b0 < 256; ++b0)
        for (unsigned b1 = 0; b1 < 256; ++b1)
            for (size_t i2 = 0; i2 < nt; ++i2)
                for (size_t i3 = 0; i3 < nt; ++i3) {
                    const unsigned char s[4] = {(unsigned char)b0, (unsigned char)b1, tails[i2], tails[i3]};
                    for (size_t n = 0; n <= 4; ++n) {
                        const size_t got = qf_utf8_char_len(s, n), want = ref_len(s, n);
                        if (got != want)
                            cr_assert_fail("%02x %02x %02x %02x, n %zu: %zu, want %zu", s[0], s[1], s[2],
                                           s[3], n, got, want);
                        if (n == 4)
                            valid[got]++;
                    }
                }
    /* every length occurs, so the comparison above cannot pass vacuously */
    for (int l = 1; l <= 4; ++l)
        cr_assert_gt(valid[l], 0, "length %d", l);
}

Test(utf8, every_code_point_round_trips)
{
    for (uint32_t cp = 0; cp <= 0x10FFFF; ++cp) {
        unsigned char s[4];
        size_t n;
        if (cp < 0x80)
            s[0] = (unsigned char)cp, n = 1;
        else if (cp < 0x800)
            s[0] = (unsigned char)(0xC0 | cp >> 6), s[1] = (unsigned char)(0x80 | (cp & 0x3F)), n = 2;
        else if (cp < 0x10000)
            s[0] = (unsigned char)(0xE0 | cp >> 12), s[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F)),
            s[2] = (unsigned char)(0x80 | (cp & 0x3F)), n = 3;
        else
            s[0] = (unsigned char)(0xF0 | cp >> 18), s[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F)),
            s[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F)), s[3] = (unsigned char)(0x80 | (cp & 0x3F)), n = 4;
        const bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
        cr_assert_eq(qf_utf8_char_len(s, n), surrogate ? 0 : n, "U+%04X", cp);
        cr_assert_eq(qf_utf8_invalid_at(s, n), surrogate ? 0 : n, "U+%04X", cp);
        if (n > 1) /* cut short */
            cr_assert_eq(qf_utf8_char_len(s, n - 1), 0, "U+%04X", cp);
    }
}

Test(utf8, invalid_at_offsets)
{
    static const struct {
        const char *bytes;
        size_t n, offset;
    } k[] = {
        {"", 0, 0},
        {"plain ascii", 11, 11},
        {"nul\0byte", 8, 8},                       /* NUL is a character here */
        {"\xF0\x9F\x98\x80\xC3\xA9", 6, 6},         /* U+1F600, U+00E9 */
        {"ab\xC0\x80", 4, 2},                       /* overlong NUL */
        {"a\xE0\x80\xAF", 4, 1},                    /* overlong '/' in 3 bytes */
        {"a\xF0\x80\x80\xAF", 5, 1},                /* overlong '/' in 4 bytes */
        {"abc\xED\xA0\x80x", 7, 3},                 /* surrogate U+D800 */
        {"\xED\x9F\xBF", 3, 3},                     /* U+D7FF, just below */
        {"\xF4\x8F\xBF\xBF", 4, 4},                 /* U+10FFFF */
        {"\xF4\x90\x80\x80", 4, 0},                 /* above U+10FFFF */
        {"ok \xE2\x82", 5, 3},                      /* cut off at the end */
        {"x\x80y", 3, 1},                           /* stray continuation byte */
        {"x\xF5\x80\x80\x80", 5, 1},                /* F5 lead */
        {"\xC3\xA9\xC3", 3, 2},                     /* valid, then a lone lead */
        {"\xE2\x82\xAC\xE2\x28\xA1", 6, 3},         /* second sequence broken in the middle */
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; ++i)
        cr_assert_eq(qf_utf8_invalid_at(k[i].bytes, k[i].n), k[i].offset, "case %zu", i);
}
