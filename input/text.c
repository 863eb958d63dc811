/* Calibration text loader: plain or gzip'ed UTF-8 (see text.h). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "input/inp_internal.h"
#include "input/text.h"

size_t inp_text_check(const char *text, size_t n)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    while (i < n) {
        const unsigned c = s[i];
        if (c == 0)
            return i;
        if (c < 0x80) {
            ++i;
            continue;
        }
        int len;
        uint32_t cp, min;
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2, cp = c & 0x1F, min = 0x80;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3, cp = c & 0x0F, min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return i; /* continuation byte, C0/C1 overlong lead or F5..FF */
        }
        if (n - i < (size_t)len)
            return i;
        for (int k = 1; k < len; ++k) {
            if ((s[i + k] & 0xC0) != 0x80)
                return i;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return i;
        i += (size_t)len;
    }
    return n;
}

/* Whole stream through zlib's gz reader (which also passes plain files through unchanged). */
static inp_error read_all(const char *path, char **out, size_t *out_len, char *msg)
{
    FILE *probe = fopen(path, "rb");
    if (!probe)
        return inp_fail(msg, INP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    unsigned char magic[2] = {0, 0};
    const size_t got = fread(magic, 1, 2, probe);
    fclose(probe);
    const int gz = got == 2 && magic[0] == 0x1f && magic[1] == 0x8b;

    gzFile f = gzopen(path, "rb");
    if (!f)
        return inp_fail(msg, INP_ERR_IO, "%s: cannot open: %s", path,
                        errno ? strerror(errno) : "out of memory");
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    if (!buf) {
        gzclose(f);
        return inp_fail(msg, INP_ERR_NOMEM, "%s: out of memory", path);
    }
    inp_error e = INP_OK;
    for (;;) {
        if (len == cap) {
            if (cap >= INP_TEXT_MAX) {
                /* one byte more decides whether the text is over the cap */
                char extra;
                if (gzread(f, &extra, 1) > 0)
                    e = inp_fail(msg, INP_ERR_LIMIT, "%s: text is larger than %zu bytes", path,
                                 INP_TEXT_MAX);
                break;
            }
            size_t ncap = cap * 2 < INP_TEXT_MAX ? cap * 2 : INP_TEXT_MAX;
            char *nb = realloc(buf, ncap + 1);
            if (!nb) {
                e = inp_fail(msg, INP_ERR_NOMEM, "%s: out of memory", path);
                break;
            }
            buf = nb;
            cap = ncap;
        }
        const size_t want = cap - len < (1u << 30) ? cap - len : (1u << 30);
        const int r = gzread(f, buf + len, (unsigned)want);
        if (r < 0) {
            int zerr = 0;
            const char *zs = gzerror(f, &zerr);
            if (zerr == Z_ERRNO)
                e = inp_fail(msg, INP_ERR_IO, "%s: read error: %s", path, strerror(errno));
            else
                e = inp_fail(msg, INP_ERR_FORMAT, "%s: corrupt gzip data after %zu bytes: %s",
                             path, len, zs ? zs : "unknown error");
            break;
        }
        if (r == 0) {
            /* end of input: a gzip stream cut short reports Z_BUF_ERROR here */
            int zerr = 0;
            const char *zs = gzerror(f, &zerr);
            if (zerr != Z_OK && zerr != Z_STREAM_END)
                e = inp_fail(msg, zerr == Z_ERRNO ? INP_ERR_IO : INP_ERR_FORMAT,
                             "%s: %s gzip data after %zu bytes: %s", path,
                             zerr == Z_BUF_ERROR ? "truncated" : "corrupt", len,
                             zs ? zs : "unknown error");
            break;
        }
        len += (size_t)r;
    }
    const int cr = gzclose(f);
    if (e == INP_OK && cr != Z_OK)
        e = inp_fail(msg, gz && cr != Z_ERRNO ? INP_ERR_FORMAT : INP_ERR_IO,
                     "%s: error at the end of the %s stream", path, gz ? "gzip" : "file");
    if (e != INP_OK) {
        free(buf);
        return e;
    }
    buf[len] = 0;
    *out = buf;
    *out_len = len;
    return INP_OK;
}

inp_error inp_text_load(const char *path, char **text, size_t *len, char *msg)
{
    if (text)
        *text = NULL;
    if (len)
        *len = 0;
    if (!path || !text || !len)
        return inp_fail(msg, INP_ERR_ARG, "inp_text_load: NULL argument");
    char *buf = NULL;
    size_t n = 0;
    inp_error e = read_all(path, &buf, &n, msg);
    if (e != INP_OK)
        return e;
    const size_t bad = inp_text_check(buf, n);
    if (bad < n) {
        const int nul = buf[bad] == 0;
        free(buf);
        return inp_fail(msg, INP_ERR_FORMAT, "%s: %s at byte %zu", path,
                        nul ? "NUL byte (not a text file)" : "invalid UTF-8", bad);
    }
    *text = buf;
    *len = n;
    return INP_OK;
}
