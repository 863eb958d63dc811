/* input/text.c: calibration and evaluation text, plain or gzip — what is accepted and what is
 * refused (not UTF-8, NUL bytes, corrupt or truncated gzip, missing files). */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "input/text.h"
#include "tests/testutil.h"

static char *tmpfile_with(const char *dir, const char *name, const void *data, size_t n)
{
    char *path = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(path, "%s/%s", dir, name);
    cr_assert_eq(tu_write_file(path, data, n), 0);
    return path;
}

static char *gz_file(const char *dir, const char *name, const char *const *parts, int nparts)
{
    char *path = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(path, "%s/%s", dir, name);
    FILE *out = fopen(path, "wb");
    cr_assert_not_null(out);
    for (int i = 0; i < nparts; ++i) { /* one gzip member per part */
        unsigned char buf[4096];
        z_stream z;
        memset(&z, 0, sizeof z);
        cr_assert_eq(deflateInit2(&z, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY), Z_OK);
        z.next_in = (unsigned char *)parts[i];
        z.avail_in = (unsigned)strlen(parts[i]);
        int r;
        do {
            z.next_out = buf;
            z.avail_out = sizeof buf;
            r = deflate(&z, Z_FINISH);
            fwrite(buf, 1, sizeof buf - z.avail_out, out);
        } while (r != Z_STREAM_END);
        deflateEnd(&z);
    }
    fclose(out);
    return path;
}

static inp_error load(const char *path, char **text, size_t *len, char *msg)
{
    msg[0] = 0;
    return inp_text_load(path, text, len, msg);
}

Test(text, plain_and_gzip)
{
    char *dir = tu_mkdtemp();
    const char *s = "Der Fluß — \xF0\x9F\x98\x80 war breit.\r\nZweite Zeile\n";
    char *p1 = tmpfile_with(dir, "a.txt", s, strlen(s));
    const char *parts[] = {"erster Teil, ", "zweiter Teil\n"};
    char *p2 = gz_file(dir, "b.txt", parts, 1); /* gzip whatever the name */
    char *p3 = gz_file(dir, "c.gz", parts, 2);  /* two members */
    char *p4 = tmpfile_with(dir, "empty.txt", "", 0);
    char *text, msg[INP_MSG_SIZE];
    size_t len;

    cr_assert_eq(load(p1, &text, &len, msg), INP_OK, "%s", msg);
    cr_assert_eq(len, strlen(s));
    cr_assert(memcmp(text, s, len) == 0 && text[len] == 0);
    free(text);
    cr_assert_eq(load(p2, &text, &len, msg), INP_OK, "%s", msg);
    cr_assert_str_eq(text, "erster Teil, ");
    free(text);
    cr_assert_eq(load(p3, &text, &len, msg), INP_OK, "%s", msg);
    cr_assert_str_eq(text, "erster Teil, zweiter Teil\n");
    cr_assert_eq(len, 26);
    free(text);
    cr_assert_eq(load(p4, &text, &len, msg), INP_OK, "%s", msg);
    cr_assert_eq(len, 0);
    cr_assert(text && text[0] == 0);
    free(text);
    free(p1);
    free(p2);
    free(p3);
    free(p4);
    free(dir);
}

Test(text, rejects_bad_input)
{
    char *dir = tu_mkdtemp();
    char *text = (char *)1, msg[INP_MSG_SIZE];
    size_t len = 7;
    static const struct {
        const char *bytes;
        size_t n;
        size_t offset;
    } bad[] = {
        {"ab\xC0\x80", 4, 2},          /* overlong NUL */
        {"abc\xED\xA0\x80x", 7, 3},    /* surrogate */
        {"\xF4\x90\x80\x80", 4, 0},    /* above U+10FFFF */
        {"ok \xE2\x82", 5, 3},         /* cut off at the end */
        {"x\x80y", 3, 1},              /* stray continuation byte */
        {"x\xF5\x80\x80\x80", 5, 1},   /* F5 lead */
        {"nul\0byte", 8, 3},           /* NUL */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
        cr_assert_eq(inp_text_check(bad[i].bytes, bad[i].n), bad[i].offset, "case %zu", i);
        char *p = tmpfile_with(dir, "bad.txt", bad[i].bytes, bad[i].n);
        cr_assert_eq(load(p, &text, &len, msg), INP_ERR_FORMAT, "case %zu", i);
        char want[64];
        snprintf(want, sizeof want, "at byte %zu", bad[i].offset);
        cr_assert(strstr(msg, want), "case %zu: %s", i, msg);
        cr_assert_null(text);
        cr_assert_eq(len, 0);
        free(p);
    }
    cr_assert_eq(inp_text_check("\xF0\x9F\x98\x80\xC3\xA9", 6), 6);

    /* a gzip stream cut short, and bytes that only look like gzip */
    const char *parts[] = {"some text that will be compressed and then truncated, repeated "
                           "some text that will be compressed and then truncated\n"};
    char *gz = gz_file(dir, "t.gz", parts, 1);
    size_t n;
    unsigned char *raw = tu_read_file(gz, &n);
    cr_assert(raw && n > 20);
    char *cut = tmpfile_with(dir, "cut.gz", raw, n - 6);
    cr_assert_eq(load(cut, &text, &len, msg), INP_ERR_FORMAT, "%s", msg);
    cr_assert(strstr(msg, "gzip"), "%s", msg);
    char *fake = tmpfile_with(dir, "fake.txt", "\x1f\x8b garbage that is not deflate", 30);
    cr_assert_eq(load(fake, &text, &len, msg), INP_ERR_FORMAT, "%s", msg);

    char *missing = malloc(strlen(dir) + 16);
    sprintf(missing, "%s/nope.txt", dir);
    cr_assert_eq(load(missing, &text, &len, msg), INP_ERR_IO);
    cr_assert(strstr(msg, "nope.txt"), "%s", msg);
    cr_assert_eq(load(dir, &text, &len, msg), INP_ERR_IO, "%s", msg); /* a directory */
    cr_assert_eq(inp_text_load(NULL, &text, &len, NULL), INP_ERR_ARG);
    free(raw);
    free(gz);
    free(cut);
    free(fake);
    free(missing);
    free(dir);
}

