/* common — UTF-8 validation (see qf_utf8.h). */
#include "common/qf_utf8.h"

#include <stdint.h>

size_t qf_utf8_char_len(const void *s, size_t n)
{
    const unsigned char *p = s;
    if (n == 0)
        return 0;
    const unsigned c = p[0];
    if (c < 0x80)
        return 1;
    size_t len;
    uint32_t cp, min;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2, cp = c & 0x1F, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3, cp = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4, cp = c & 0x07, min = 0x10000;
    else
        return 0; /* continuation byte, C0/C1 (always overlong) or F5..FF (above U+10FFFF) */
    if (n < len)
        return 0;
    for (size_t k = 1; k < len; ++k) {
        if ((p[k] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (p[k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

size_t qf_utf8_invalid_at(const void *s, size_t n)
{
    const unsigned char *p = s;
    size_t i = 0;
    while (i < n) {
        if (p[i] < 0x80) { /* ASCII runs: the common case */
            ++i;
            continue;
        }
        const size_t len = qf_utf8_char_len(p + i, n - i);
        if (len == 0)
            return i;
        i += len;
    }
    return n;
}
