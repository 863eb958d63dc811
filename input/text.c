/* Calibration text loader: plain or gzip'ed UTF-8 (see text.h). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "common/qf_utf8.h"
#include "input/inp_internal.h"
#include "input/text.h"

size_t inp_text_check(const char *text, size_t n)
{
    const size_t bad = qf_utf8_invalid_at(text, n);
    const char *nul = memchr(text, 0, bad); /* NUL is valid UTF-8 but not text */
    return nul ? (size_t)(nul - text) : bad;
}

/* Whole stream through zlib's gz reader (which also passes plain files through unchanged). */
static inp_error read_all(const char *path, char **out, size_t *out_len, char *msg)
{
    FILE *probe = fopen(path, "rb");
    INP_FAIL_IF(!probe, msg, INP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    unsigned char magic[2] = {0, 0};
    const size_t got = fread(magic, 1, 2, probe);
    fclose(probe);
    const int gz = got == 2 && magic[0] == 0x1f && magic[1] == 0x8b;

    gzFile f = gzopen(path, "rb");
    INP_FAIL_IF(!f, msg, INP_ERR_IO, "%s: cannot open: %s", path, errno ? strerror(errno) : "out of memory");
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
    INP_FAIL_IF(!path || !text || !len, msg, INP_ERR_ARG, "inp_text_load: NULL argument");
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
