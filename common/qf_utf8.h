/* common — UTF-8 validation (RFC 3629: no overlong forms, no surrogates U+D800..U+DFFF,
 * nothing above U+10FFFF). NUL is a valid one-byte character here; callers that refuse it
 * check for it themselves. */
#ifndef QFORGE_QF_UTF8_H
#define QFORGE_QF_UTF8_H

#include <stddef.h>

/* Bytes (1..4) of the well-formed character s starts with, or 0 when s[0..n) does not start
 * with one (n == 0, a stray continuation byte, a bad lead byte, a sequence cut short). */
size_t qf_utf8_char_len(const void *s, size_t n);

/* Offset of the first byte where s[0..n) stops being well-formed UTF-8 (the lead byte of the
 * first bad sequence), or n when all of it is well-formed. */
size_t qf_utf8_invalid_at(const void *s, size_t n);

#endif
