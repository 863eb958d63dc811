/* input/imatrix.c: importance matrices in llama.cpp's GGUF and legacy .dat formats — the
 * values handed to the quantizers, and every malformed file refused with one line that names
 * the file and holds no control bytes. Files are built here; no shared data needed. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libgguf/gguf.h"
#include "input/imatrix.h"
#include "tests/testutil.h"

TestSuite(imatrix, .init = tu_dir_setup, .fini = tu_dir_teardown);

static const char *path_of(const char *name)
{
    static char p[4096];
    snprintf(p, sizeof p, "%s/%s", tu_dir, name);
    return p;
}

/* Load must fail with `want`, one line starting with the path, containing `needle`, no
 * control bytes. */
static void refused(const char *path, inp_error want, const char *needle)
{
    inp_imatrix *im = (inp_imatrix *)1;
    char msg[INP_MSG_SIZE];
    msg[0] = 0;
    inp_error e = inp_imatrix_load(path, &im, msg);
    cr_assert_eq(e, want, "%s: got error %d (%s), want %d", path, (int)e, msg, (int)want);
    cr_assert_null(im);
    cr_assert_eq(strncmp(msg, path, strlen(path)), 0, "message does not start with the path: %s", msg);
    cr_assert(strstr(msg, needle), "message '%s' lacks '%s'", msg, needle);
    for (const char *c = msg; *c; c++)
        cr_assert((unsigned char)*c >= 0x20 && *c != 0x7f, "control byte 0x%02x in '%s'", (unsigned char)*c, msg);
    cr_assert_null(strstr(msg + strlen(path) + 1, path), "path printed twice: %s", msg);
}

static inp_imatrix *loaded(const char *path)
{
    inp_imatrix *im = NULL;
    char msg[INP_MSG_SIZE];
    cr_assert_eq(inp_imatrix_load(path, &im, msg), INP_OK, "%s", msg);
    cr_assert_not_null(im);
    return im;
}

/* ---------------------------------------------------------------- legacy .dat */

typedef struct {
    unsigned char b[8192];
    size_t n;
} buf;

static void put(buf *b, const void *p, size_t n)
{
    cr_assert_leq(b->n + n, sizeof b->b);
    memcpy(b->b + b->n, p, n);
    b->n += n;
}
static void put_i32(buf *b, int32_t v) { put(b, &v, 4); }
static void put_entry(buf *b, const char *name, size_t name_len, int32_t ncall, const float *v, int32_t nval)
{
    put_i32(b, (int32_t)name_len);
    put(b, name, name_len);
    put_i32(b, ncall);
    put_i32(b, nval);
    put(b, v, (size_t)nval * sizeof(float));
}

static const char *write_buf(const char *name, const buf *b)
{
    const char *p = path_of(name);
    cr_assert_eq(tu_write_file(p, b->b, b->n), 0);
    return p;
}

static const float k_up[4] = {4.0f, 8.0f, 2.0f, 6.0f};
static const float k_q[3] = {0.5f, 1.5f, 3.0f};

/* two entries (the second stored first: the reader sorts), ncall 4 and 0, trailer */
static buf legacy_valid(bool trailer)
{
    buf b = {.n = 0};
    put_i32(&b, 2);
    put_entry(&b, "blk.0.ffn_up.weight", 19, 4, k_up, 4);
    put_entry(&b, "blk.0.attn_q.weight", 19, 0, k_q, 3);
    if (trailer) {
        put_i32(&b, 12);
        put_i32(&b, 8);
        put(&b, "wiki.txt", 8);
    }
    return b;
}

Test(imatrix, legacy_values_are_sums_over_calls)
{
    buf b = legacy_valid(true);
    inp_imatrix *im = loaded(write_buf("a.dat", &b));
    cr_assert(inp_imatrix_is_legacy(im));
    cr_assert_eq(inp_imatrix_n_entries(im), 2);
    cr_assert_str_eq(inp_imatrix_name(im, 0), "blk.0.attn_q.weight");
    cr_assert_str_eq(inp_imatrix_name(im, 1), "blk.0.ffn_up.weight");
    cr_assert_null(inp_imatrix_name(im, 2));
    cr_assert_eq(inp_imatrix_chunk_count(im), 12);
    cr_assert_str_eq(inp_imatrix_dataset(im), "wiki.txt");
    size_t n = 0;
    const float *v = inp_imatrix_find(im, "blk.0.ffn_up.weight", &n);
    cr_assert(v && n == 4);
    cr_assert(v[0] == 1.0f && v[1] == 2.0f && v[2] == 0.5f && v[3] == 1.5f);
    v = inp_imatrix_find(im, "blk.0.attn_q.weight", &n); /* ncall 0: the sums as stored */
    cr_assert(v && n == 3);
    cr_assert(memcmp(v, k_q, sizeof k_q) == 0);
    cr_assert_null(inp_imatrix_find(im, "blk.0.attn_k.weight", &n));
    inp_imatrix_free(im);

    b = legacy_valid(false);
    im = loaded(write_buf("b.dat", &b));
    cr_assert_eq(inp_imatrix_chunk_count(im), 0);
    cr_assert_null(inp_imatrix_dataset(im));
    inp_imatrix_free(im);
}

Test(imatrix, legacy_malformed_files_are_refused)
{
    float inf[2] = {1.0f, INFINITY};
    char big[4097];
    memset(big, 'a', sizeof big);
    struct {
        const char *name, *needle;
        buf b;
    } c[16];
    int n = 0;
#define CASE(nm, nd) (c[n].name = (nm), c[n].needle = (nd), c[n].b.n = 0, &c[n++].b)
    buf *b = CASE("zero-entries", "no entries");
    put_i32(b, 0);
    b = CASE("negative-entries", "no entries");
    put_i32(b, -5);
    b = CASE("three-bytes", "no entries");
    put(b, "\1\0\0", 3);
    b = CASE("name-length-0", "entry 1: bad name length");
    put_i32(b, 1);
    put_i32(b, 0);
    b = CASE("name-length-4097", "entry 1: bad name length");
    put_i32(b, 1);
    put_entry(b, big, 4097, 1, k_q, 1);
    b = CASE("name-past-end", "entry 2: bad name length");
    put_i32(b, 2);
    put_entry(b, "x", 1, 1, k_q, 1);
    put_i32(b, 100);
    put(b, "abc", 3);
    b = CASE("name-with-nul", "entry 1: name contains a NUL byte");
    put_i32(b, 1);
    put_entry(b, "ab\0c", 4, 1, k_q, 1);
    b = CASE("nval-0", "entry 1: bad value count");
    put_i32(b, 1);
    put_entry(b, "x", 1, 1, k_q, 0);
    b = CASE("nval-past-end", "entry 1: bad value count");
    put_i32(b, 1);
    put_i32(b, 1);
    put(b, "x", 1);
    put_i32(b, 1);
    put_i32(b, 3);
    put(b, k_q, 8);
    b = CASE("nval-huge", "entry 1: bad value count");
    put_i32(b, 1);
    put_i32(b, 1);
    put(b, "x", 1);
    put_i32(b, 1);
    put_i32(b, INT32_MAX);
    b = CASE("duplicate", "duplicate entry 'blk.0.ffn_up.weight'");
    put_i32(b, 2);
    put_entry(b, "blk.0.ffn_up.weight", 19, 1, k_up, 4);
    put_entry(b, "blk.0.ffn_up.weight", 19, 1, k_up, 4);
    b = CASE("infinite", "entry 'w' contains a non-finite value");
    put_i32(b, 1);
    put_entry(b, "w", 1, 1, inf, 2);
    b = CASE("control-bytes-in-name", "duplicate entry");
    put_i32(b, 2);
    put_entry(b, "a\n\033[31mb", 8, 1, k_q, 1);
    put_entry(b, "a\n\033[31mb", 8, 1, k_q, 1);
    b = CASE("empty-file", "file of 0 bytes");
#undef CASE
    for (int i = 0; i < n; i++)
        refused(write_buf(c[i].name, &c[i].b), INP_ERR_FORMAT, c[i].needle);
}

/* Every prefix that cuts into the entries is refused; cuts inside the optional trailer are
 * accepted (the trailer is informational). */
Test(imatrix, legacy_every_truncation)
{
    buf full = legacy_valid(true);
    const size_t entries_end = full.n - 16;
    for (size_t len = 0; len < full.n; len++) {
        buf b = full;
        b.n = len;
        const char *p = write_buf("cut.dat", &b);
        inp_imatrix *im = NULL;
        char msg[INP_MSG_SIZE];
        inp_error e = inp_imatrix_load(p, &im, msg);
        if (len < entries_end) {
            cr_assert_eq(e, INP_ERR_FORMAT, "prefix %zu accepted", len);
            cr_assert_null(im);
        } else {
            cr_assert_eq(e, INP_OK, "prefix %zu: %s", len, msg);
            cr_assert_eq(inp_imatrix_n_entries(im), 2);
            inp_imatrix_free(im);
        }
    }
}

Test(imatrix, file_errors)
{
    refused(path_of("absent.dat"), INP_ERR_IO, "cannot open");
    refused(tu_dir, INP_ERR_IO, "");
    inp_imatrix *im;
    char msg[INP_MSG_SIZE];
    cr_assert_eq(inp_imatrix_load(NULL, &im, msg), INP_ERR_ARG);
    cr_assert_eq(inp_imatrix_load("x", NULL, msg), INP_ERR_ARG);
    cr_assert_eq(inp_imatrix_n_entries(NULL), 0);
    cr_assert_null(inp_imatrix_find(NULL, "x", NULL));
    inp_imatrix_free(NULL);
}

/* ---------------------------------------------------------------- GGUF */

typedef struct {
    const char *name;
    int type;          /* GGUF_F32 or GGUF_F16 */
    int64_t ne0, ne1;
    const float *data; /* ne0*ne1 floats (F16 tensors: written as zero halves) */
} gt;

/* A GGUF imatrix with the given tensors. meta_mask bit i drops key i of datasets /
 * chunk_count / chunk_size; pad adds a string key of that many bytes (moves the data). */
static const char *write_gguf(const char *file, const gt *t, int nt, unsigned meta_mask, uint32_t alignment,
                              int pad)
{
    const char *p = path_of(file);
    gguf_writer *w = gguf_writer_create();
    cr_assert_not_null(w);
    char msg[GGUF_MSG_SIZE];
    if (alignment)
        cr_assert_eq(gguf_writer_set_u32(w, "general.alignment", alignment), GGUF_OK);
    cr_assert_eq(gguf_writer_set_str(w, "general.type", "imatrix"), GGUF_OK);
    if (pad) {
        char s[8] = "xxxxxxx";
        s[pad] = 0;
        cr_assert_eq(gguf_writer_set_str(w, "pad", s), GGUF_OK);
    }
    const char *ds[1] = {"calibration.txt"};
    if (!(meta_mask & 1))
        cr_assert_eq(gguf_writer_set_str_array(w, "imatrix.datasets", ds, 1), GGUF_OK);
    if (!(meta_mask & 2))
        cr_assert_eq(gguf_writer_set_u32(w, "imatrix.chunk_count", 9), GGUF_OK);
    if (!(meta_mask & 4))
        cr_assert_eq(gguf_writer_set_u32(w, "imatrix.chunk_size", 512), GGUF_OK);
    for (int i = 0; i < nt; i++) {
        int64_t ne[2] = {t[i].ne0, t[i].ne1};
        cr_assert_eq(gguf_writer_add_tensor(w, t[i].name, 2, ne, t[i].type, msg), GGUF_OK, "%s", msg);
    }
    cr_assert_eq(gguf_writer_open(w, p, msg), GGUF_OK, "%s", msg);
    for (int i = 0; i < nt; i++) {
        size_t n = (size_t)(t[i].ne0 * t[i].ne1);
        if (t[i].type == GGUF_F32) {
            cr_assert_eq(gguf_writer_write(w, t[i].data, n * sizeof(float), msg), GGUF_OK, "%s", msg);
        } else {
            uint16_t z[64] = {0};
            cr_assert_leq(n, 64);
            cr_assert_eq(gguf_writer_write(w, z, n * 2, msg), GGUF_OK, "%s", msg);
        }
    }
    cr_assert_eq(gguf_writer_finish(w, msg), GGUF_OK, "%s", msg);
    gguf_writer_free(w);
    return p;
}

/* ffn_up: 4 columns × 2 matrices (an expert pair), counts 2 and 0; attn_q: 3 columns, count 2.6 */
static const float k_sums8[8] = {2, 4, 6, 8, 1, 3, 5, 7};
static const float k_counts2[2] = {2.0f, 0.0f};
static const float k_sums3[3] = {3, 6, 9};
static const float k_count26[1] = {2.6f};

#define UP_SUMS {"blk.0.ffn_up.weight.in_sum2", GGUF_F32, 4, 2, k_sums8}
#define UP_COUNTS {"blk.0.ffn_up.weight.counts", GGUF_F32, 1, 2, k_counts2}
#define Q_SUMS {"blk.0.attn_q.weight.in_sum2", GGUF_F32, 3, 1, k_sums3}
#define Q_COUNTS {"blk.0.attn_q.weight.counts", GGUF_F32, 1, 1, k_count26}

static void check_valid_gguf(const char *p)
{
    inp_imatrix *im = loaded(p);
    cr_assert_not(inp_imatrix_is_legacy(im));
    cr_assert_eq(inp_imatrix_n_entries(im), 2);
    cr_assert_str_eq(inp_imatrix_name(im, 0), "blk.0.attn_q.weight");
    cr_assert_eq(inp_imatrix_chunk_count(im), 9);
    cr_assert_str_eq(inp_imatrix_dataset(im), "calibration.txt");
    size_t n;
    const float *v = inp_imatrix_find(im, "blk.0.ffn_up.weight", &n);
    cr_assert(v && n == 8);
    const float want_up[8] = {1, 2, 3, 4, 1, 1, 1, 1}; /* count 0: importance 1 */
    cr_assert(memcmp(v, want_up, sizeof want_up) == 0);
    v = inp_imatrix_find(im, "blk.0.attn_q.weight", &n);
    cr_assert(v && n == 3);
    cr_assert(v[0] == 1.0f && v[1] == 2.0f && v[2] == 3.0f, "count 2.6 rounds to 3");
    inp_imatrix_free(im);
}

Test(imatrix, gguf_values_are_sums_over_rounded_counts)
{
    const float in_sum[8] = {0};
    const gt t[] = {UP_SUMS, UP_COUNTS, Q_SUMS, Q_COUNTS,
                    {"blk.0.ffn_up.weight.in_sum", GGUF_F32, 4, 2, in_sum}}; /* ignored */
    check_valid_gguf(write_gguf("ok.gguf", t, 5, 0, 0, 0));
}

/* general.alignment 1 puts the F32 data at any byte offset: values are copied, never cast
 * (UBSan checks the misaligned case in the sanitizer run). */
Test(imatrix, gguf_unaligned_data)
{
    const gt t[] = {UP_SUMS, UP_COUNTS, Q_SUMS, Q_COUNTS};
    int misaligned = 0;
    for (int pad = 0; pad < 4; pad++) {
        const char *p = write_gguf("align1.gguf", t, 4, 0, 1, pad);
        gguf_reader *r;
        char msg[GGUF_MSG_SIZE];
        cr_assert_eq(gguf_open(p, &r, msg), GGUF_OK, "%s", msg);
        misaligned += (uintptr_t)gguf_tensor_at(r, 0)->data % 4 != 0;
        gguf_close(r);
        check_valid_gguf(p);
    }
    cr_assert_eq(misaligned, 3);
}

Test(imatrix, gguf_malformed_files_are_refused)
{
    static const float nan_count[1] = {NAN}, neg_count[1] = {-1.0f}, huge_count[1] = {1e19f};
    static const float counts4[4] = {1, 1, 1, 1}, sums_nan[3] = {1, NAN, 2}, in_sum6[6] = {0};
    struct {
        const char *file, *needle;
        gt t[4];
        int nt;
        unsigned meta_mask;
    } c[] = {
        {"no-datasets.gguf", "missing imatrix metadata 'imatrix.datasets'", {UP_SUMS, UP_COUNTS}, 2, 1},
        {"no-chunk-count.gguf", "missing imatrix metadata 'imatrix.chunk_count'", {UP_SUMS, UP_COUNTS}, 2, 2},
        {"no-chunk-size.gguf", "missing imatrix metadata 'imatrix.chunk_size'", {UP_SUMS, UP_COUNTS}, 2, 4},
        {"no-entries.gguf", "no importance matrix entries", {{0}}, 0, 0},
        {"counts-alone.gguf", "mismatched sums and counts for 'blk.0.ffn_up.weight'", {UP_COUNTS, Q_SUMS, Q_COUNTS}, 3, 0},
        {"sums-alone.gguf", "mismatched sums and counts for 'blk.0.ffn_up.weight'", {UP_SUMS, Q_SUMS, Q_COUNTS}, 3, 0},
        {"sums-f16.gguf", "sums and counts for 'blk.0.ffn_up.weight' must be F32",
         {{"blk.0.ffn_up.weight.in_sum2", GGUF_F16, 4, 2, NULL}, UP_COUNTS}, 2, 0},
        {"counts-f16.gguf", "must be F32", {UP_SUMS, {"blk.0.ffn_up.weight.counts", GGUF_F16, 1, 2, NULL}}, 2, 0},
        {"split.gguf", "'blk.0.attn_q.weight': 3 sums do not split into 4 matrices",
         {Q_SUMS, {"blk.0.attn_q.weight.counts", GGUF_F32, 4, 1, counts4}}, 2, 0},
        {"count-nan.gguf", "'blk.0.attn_q.weight': bad count",
         {Q_SUMS, {"blk.0.attn_q.weight.counts", GGUF_F32, 1, 1, nan_count}}, 2, 0},
        {"count-negative.gguf", "bad count", {Q_SUMS, {"blk.0.attn_q.weight.counts", GGUF_F32, 1, 1, neg_count}}, 2, 0},
        {"count-huge.gguf", "bad count", {Q_SUMS, {"blk.0.attn_q.weight.counts", GGUF_F32, 1, 1, huge_count}}, 2, 0},
        {"sums-nan.gguf", "entry 'blk.0.attn_q.weight' contains a non-finite value",
         {{"blk.0.attn_q.weight.in_sum2", GGUF_F32, 3, 1, sums_nan}, Q_COUNTS}, 2, 0},
        {"in-sum-size.gguf", "mismatched sums and counts for 'blk.0.attn_q.weight'",
         {Q_SUMS, Q_COUNTS, {"blk.0.attn_q.weight.in_sum", GGUF_F32, 6, 1, in_sum6}}, 3, 0},
        {"control-name.gguf", "mismatched sums and counts for 'a",
         {{"a\n\033[31m.counts", GGUF_F32, 1, 1, k_count26}}, 1, 0},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
        refused(write_gguf(c[i].file, c[i].t, c[i].nt, c[i].meta_mask, 0, 0), INP_ERR_FORMAT, c[i].needle);
}

/* A broken GGUF (not an imatrix problem) is reported with libgguf's reason, path once. */
Test(imatrix, broken_gguf_container)
{
    const gt t[] = {UP_SUMS, UP_COUNTS};
    const char *p = write_gguf("whole.gguf", t, 2, 0, 0, 0);
    size_t n;
    unsigned char *b = tu_read_file(p, &n);
    cr_assert_not_null(b);
    buf cut = {.n = 0};
    cr_assert_lt(n, sizeof cut.b);
    put(&cut, b, n - 40); /* into the data: the last 24 bytes are alignment padding */
    free(b);
    refused(write_buf("cut.gguf", &cut), INP_ERR_FORMAT, "");
}

/* ---------------------------------------------------------------- writing */

/* The writer: llama-imatrix's keys, tensors in name order (in_sum2, counts, in_sum), values
 * rounded to F32, read back by the reader as sums / count. */
Test(imatrix, writer_round_trip)
{
    const double up2[4] = {1.5, 2.25, 9, 0}, up1[4] = {-1, 0.5, 3, 0};
    const double k2[2] = {7, 1.0 / 3.0}, k1[2] = {2, -0.125};
    const inp_imatrix_sums e[2] = {{"blk.1.ffn_up.weight", 4, 3, up2, up1},
                                   {"blk.0.attn_k.weight", 2, 5, k2, k1}};
    const char *path = path_of("written.gguf");
    gguf_writer *w = gguf_writer_create();
    char msg[INP_MSG_SIZE], gmsg[GGUF_MSG_SIZE];
    cr_assert_eq(inp_imatrix_declare(w, e, 2, "cal.txt", 9, 128, msg), INP_OK, "%s", msg);
    cr_assert_eq(gguf_writer_open(w, path, gmsg), GGUF_OK, "%s", gmsg);
    cr_assert_eq(inp_imatrix_write_data(w, e, 2, msg), INP_OK, "%s", msg);
    cr_assert_eq(gguf_writer_finish(w, gmsg), GGUF_OK, "%s", gmsg);
    gguf_writer_free(w);

    gguf_reader *r;
    cr_assert_eq(gguf_open(path, &r, gmsg), GGUF_OK, "%s", gmsg);
    const gguf_str *gt;
    cr_assert_eq(gguf_get_str(r, "general.type", &gt), GGUF_OK);
    cr_assert_str_eq(gt->str, "imatrix");
    int64_t v;
    cr_assert_eq(gguf_get_int(r, "imatrix.chunk_count", &v), GGUF_OK);
    cr_assert_eq(v, 9);
    cr_assert_eq(gguf_get_int(r, "imatrix.chunk_size", &v), GGUF_OK);
    cr_assert_eq(v, 128);
    static const char *const names[] = {"blk.0.attn_k.weight.in_sum2", "blk.0.attn_k.weight.counts",
                                        "blk.0.attn_k.weight.in_sum", "blk.1.ffn_up.weight.in_sum2",
                                        "blk.1.ffn_up.weight.counts", "blk.1.ffn_up.weight.in_sum"};
    cr_assert_eq(gguf_n_tensors(r), 6);
    for (int i = 0; i < 6; ++i) {
        const gguf_tensor *t = gguf_tensor_at(r, i);
        cr_assert_str_eq(t->name, names[i]);
        cr_assert(t->type == GGUF_F32 && t->n_dims == 1);
        cr_assert_eq(t->ne[0], i % 3 == 1 ? 1 : i < 3 ? 2 : 4);
    }
    cr_assert_eq(((const float *)gguf_tensor_at(r, 1)->data)[0], 5.0f);
    cr_assert_eq(((const float *)gguf_tensor_at(r, 0)->data)[1], (float)(1.0 / 3.0));
    cr_assert_eq(((const float *)gguf_tensor_at(r, 5)->data)[1], 0.5f);
    gguf_close(r);

    inp_imatrix *im;
    cr_assert_eq(inp_imatrix_load(path, &im, msg), INP_OK, "%s", msg);
    cr_assert_str_eq(inp_imatrix_dataset(im), "cal.txt");
    cr_assert_eq(inp_imatrix_chunk_count(im), 9);
    size_t n;
    const float *x = inp_imatrix_find(im, "blk.1.ffn_up.weight", &n);
    cr_assert(x && n == 4);
    cr_assert_eq(x[2], 9.0f / 3.0f);
    inp_imatrix_free(im);

    /* nothing to write, or a broken entry: refused before anything is declared */
    w = gguf_writer_create();
    cr_assert_eq(inp_imatrix_declare(w, e, 0, "x", 1, 1, msg), INP_ERR_ARG);
    cr_assert(strstr(msg, "no importance data was collected"), "%s", msg);
    const inp_imatrix_sums bad = {"blk.0.attn_q.weight", 0, 1, up2, up1};
    cr_assert_eq(inp_imatrix_declare(w, &bad, 1, "x", 1, 1, msg), INP_ERR_ARG);
    gguf_writer_free(w);
}
