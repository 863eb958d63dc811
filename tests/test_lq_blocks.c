/* libquant block formats: golden bytes from llama.cpp, round-trip error bounds, thread-count
 * independence, internal step API consistency, shape/type errors. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libquant/lq.h"
#include "libquant/lq_internal.h"
#include "tests/testutil.h"

#define GROWS 16
#define GCOLS 512

/* ---------- helpers ---------- */

static void *load_golden(const char *rel, size_t expect)
{
    char *path = tu_shared_path(rel);
    cr_assert_not_null(path);
    size_t n = 0;
    void *buf = tu_read_file(path, &n);
    cr_assert_not_null(buf, "cannot read %s", path);
    cr_assert_eq(n, expect, "%s: %zu bytes, expected %zu", path, n, expect);
    free(path);
    return buf;
}

/* Deterministic N(0,1) samples (xorshift64 + Box-Muller). */
static void fill_gauss(float *x, size_t n, uint64_t seed)
{
    tu_rng_state = seed;
    for (size_t i = 0; i < n; ++i)
        x[i] = tu_rng_gaussf();
}

/* ---------- golden bytes ---------- */

static void check_golden(const char *name, int type, int imat)
{
    TU_REQUIRE_SHARED();
    const size_t rs = lq_row_size(type, GCOLS);
    const int64_t bs = lq_block_size(type);
    cr_assert_gt(rs, 0);
    const size_t bsz = rs / (size_t)(GCOLS / bs);

    float *x = load_golden("golden/quant/input.f32", sizeof(float) * GROWS * GCOLS);
    float *im = load_golden("golden/quant/imatrix.f32", sizeof(float) * GCOLS);
    char rel[128];
    snprintf(rel, sizeof rel, "golden/quant/%s%s.q", name, imat ? ".imat" : "");
    uint8_t *gq = load_golden(rel, rs * GROWS);
    snprintf(rel, sizeof rel, "golden/quant/%s%s.deq.f32", name, imat ? ".imat" : "");
    float *gd = load_golden(rel, sizeof(float) * GROWS * GCOLS);

    uint8_t *q = malloc(rs * GROWS);
    float *y = malloc(sizeof(float) * GROWS * GCOLS);
    cr_assert(q && y);
    char msg[LQ_MSG_SIZE] = "";
    cr_assert_eq(lq_quantize_rows(type, x, q, GROWS, GCOLS, imat ? im : NULL, 1, msg), LQ_OK,
                 "%s", msg);

    for (size_t i = 0; i < rs * GROWS; ++i) {
        if (q[i] != gq[i]) {
            const size_t row = i / rs, blk = (i % rs) / bsz, off = (i % rs) % bsz;
            cr_assert_fail("%s%s: first differing byte %zu: row %zu, block %zu, byte %zu of %zu in the "
                    "block: got 0x%02x, llama.cpp 0x%02x",
                    name, imat ? " (imatrix)" : "", i, row, blk, off, bsz, q[i], gq[i]);
        }
    }

    /* decode llama.cpp's own bytes, so the dequantizer is checked on its own */
    for (int r = 0; r < GROWS; ++r)
        cr_assert_eq(lq_dequantize_row(type, gq + r * rs, y + r * GCOLS, GCOLS), 0);
    for (size_t i = 0; i < (size_t)GROWS * GCOLS; ++i) {
        uint32_t a, b;
        memcpy(&a, &y[i], 4);
        memcpy(&b, &gd[i], 4);
        if (a != b)
            cr_assert_fail("%s%s dequant: first differing value at row %zu, column %zu (block %zu): "
                    "got %a (0x%08x), llama.cpp %a (0x%08x)",
                    name, imat ? " (imatrix)" : "", i / GCOLS, i % GCOLS,
                    (i % GCOLS) / (size_t)bs, y[i], a, gd[i], b);
    }
    free(x);
    free(im);
    free(gq);
    free(gd);
    free(q);
    free(y);
}

#define GOLDEN(NAME, TYPE)                                                                   \
    Test(golden, NAME##_plain) { check_golden(#NAME, TYPE, 0); }                             \
    Test(golden, NAME##_imat) { check_golden(#NAME, TYPE, 1); }

GOLDEN(q4_0, GGUF_Q4_0)
GOLDEN(q4_1, GGUF_Q4_1)
GOLDEN(q5_0, GGUF_Q5_0)
GOLDEN(q5_1, GGUF_Q5_1)
GOLDEN(q8_0, GGUF_Q8_0)
GOLDEN(q2_K, GGUF_Q2_K)
GOLDEN(q3_K, GGUF_Q3_K)
GOLDEN(q4_K, GGUF_Q4_K)
GOLDEN(q5_K, GGUF_Q5_K)
GOLDEN(q6_K, GGUF_Q6_K)

/* ---------- round trip on Gaussian data ---------- */

#define RROWS 64
#define RCOLS 1024

/* RMS(dequant(quant(x)) - x) / RMS(x) for x ~ N(0,1), 64 x 1024. */
static double roundtrip_error(int type, int imat)
{
    float *x = malloc(sizeof(float) * RROWS * RCOLS);
    float *y = malloc(sizeof(float) * RROWS * RCOLS);
    float im[RCOLS];
    const size_t rs = lq_row_size(type, RCOLS);
    uint8_t *q = malloc(rs * RROWS);
    cr_assert(x && y && q);
    fill_gauss(x, (size_t)RROWS * RCOLS, 0x9e3779b97f4a7c15ull);
    tu_rng_state = 12345;
    for (int i = 0; i < RCOLS; ++i)
        im[i] = 0.5f + 1.5f * (float)tu_rng_u01();
    cr_assert_eq(lq_quantize_rows(type, x, q, RROWS, RCOLS, imat ? im : NULL, 0, NULL), LQ_OK);
    double err = 0, ref = 0;
    for (int r = 0; r < RROWS; ++r)
        cr_assert_eq(lq_dequantize_row(type, q + r * rs, y + r * RCOLS, RCOLS), 0);
    for (size_t i = 0; i < (size_t)RROWS * RCOLS; ++i) {
        const double d = (double)y[i] - x[i];
        err += d * d;
        ref += (double)x[i] * x[i];
    }
    free(x);
    free(y);
    free(q);
    return sqrt(err / ref);
}

/* Bounds: measured relative RMSE (plain / imatrix) + ~15% margin.
 * q4_0 .0857/.0816  q4_1 .0785/.0705  q5_0 .0427/.0406  q5_1 .0380/.0340  q8_0 .0054
 * q2_K .2963/.2697  q3_K .1511/.1452  q4_K .0715/.0713  q5_K .0362/.0355  q6_K .0178/.0175 */
#define ROUNDTRIP(NAME, TYPE, BOUND)                                                         \
    Test(roundtrip, NAME)                                                                    \
    {                                                                                        \
        const double e0 = roundtrip_error(TYPE, 0), e1 = roundtrip_error(TYPE, 1);           \
        cr_expect_lt(e0, BOUND, #NAME " plain: relative RMSE %.5f >= %.4f", e0, BOUND);      \
        cr_expect_lt(e1, BOUND, #NAME " imatrix: relative RMSE %.5f >= %.4f", e1, BOUND);    \
        cr_expect_gt(e0, (BOUND) / 3, #NAME ": error %.5f implausibly small", e0);           \
    }

ROUNDTRIP(q4_0, GGUF_Q4_0, 0.098)
ROUNDTRIP(q4_1, GGUF_Q4_1, 0.090)
ROUNDTRIP(q5_0, GGUF_Q5_0, 0.049)
ROUNDTRIP(q5_1, GGUF_Q5_1, 0.044)
ROUNDTRIP(q8_0, GGUF_Q8_0, 0.0065)
ROUNDTRIP(q2_K, GGUF_Q2_K, 0.34)
ROUNDTRIP(q3_K, GGUF_Q3_K, 0.175)
ROUNDTRIP(q4_K, GGUF_Q4_K, 0.083)
ROUNDTRIP(q5_K, GGUF_Q5_K, 0.042)
ROUNDTRIP(q6_K, GGUF_Q6_K, 0.021)

/* F32/F16/BF16 through the same entry points. */
Test(roundtrip, float_types)
{
    float x[64], y[64];
    uint8_t buf[256];
    fill_gauss(x, 64, 7);
    cr_assert_eq(lq_quantize_row(GGUF_F32, x, buf, 64, NULL), 256);
    cr_assert_eq(lq_dequantize_row(GGUF_F32, buf, y, 64), 0);
    cr_assert_eq(memcmp(x, y, sizeof x), 0);
    cr_assert_eq(lq_quantize_row(GGUF_F16, x, buf + 1, 64, NULL), 128); /* unaligned on purpose */
    cr_assert_eq(lq_dequantize_row(GGUF_F16, buf + 1, y, 64), 0);
    for (int i = 0; i < 64; ++i)
        cr_assert_leq(fabsf(y[i] - x[i]), fabsf(x[i]) * 0x1p-11f, "f16 element %d", i);
    cr_assert_eq(lq_quantize_row(GGUF_BF16, x, buf, 64, NULL), 128);
    cr_assert_eq(lq_dequantize_row(GGUF_BF16, buf, y, 64), 0);
    for (int i = 0; i < 64; ++i)
        cr_assert_leq(fabsf(y[i] - x[i]), fabsf(x[i]) * 0x1p-8f, "bf16 element %d", i);
}

/* ---------- thread-count independence ---------- */

static const int k_qtypes[] = {GGUF_Q4_0, GGUF_Q4_1, GGUF_Q5_0, GGUF_Q5_1, GGUF_Q8_0,
                               GGUF_Q2_K, GGUF_Q3_K, GGUF_Q4_K, GGUF_Q5_K, GGUF_Q6_K,
                               GGUF_F16, GGUF_BF16};

Test(threads, same_bytes_any_thread_count)
{
    enum { R = 37, C = 512 };
    float *x = malloc(sizeof(float) * R * C);
    float im[C];
    cr_assert_not_null(x);
    fill_gauss(x, (size_t)R * C, 99);
    for (int i = 0; i < C; ++i)
        im[i] = 0.1f + (float)(i % 7);
    for (size_t t = 0; t < sizeof k_qtypes / sizeof k_qtypes[0]; ++t) {
        const int type = k_qtypes[t];
        const size_t rs = lq_row_size(type, C);
        uint8_t *a = malloc(rs * R), *b = malloc(rs * R), *c = malloc(rs * R);
        cr_assert(a && b && c);
        for (int imat = 0; imat < 2; ++imat) {
            memset(a, 0xAA, rs * R);
            memset(b, 0x55, rs * R);
            memset(c, 0x11, rs * R);
            const float *w = imat ? im : NULL;
            cr_assert_eq(lq_quantize_rows(type, x, a, R, C, w, 1, NULL), LQ_OK);
            cr_assert_eq(lq_quantize_rows(type, x, b, R, C, w, 2, NULL), LQ_OK);
            cr_assert_eq(lq_quantize_rows(type, x, c, R, C, w, 0, NULL), LQ_OK);
            cr_assert_eq(memcmp(a, b, rs * R), 0, "type %d imat %d: 1 vs 2 threads differ", type, imat);
            cr_assert_eq(memcmp(a, c, rs * R), 0, "type %d imat %d: 1 vs default threads differ", type, imat);
            /* and the driver equals the single-row entry point */
            uint8_t *row = malloc(rs);
            cr_assert_eq(lq_quantize_row(type, x + 5 * C, row, C, w), rs);
            cr_assert_eq(memcmp(row, a + 5 * rs, rs), 0, "type %d: row 5 differs from driver", type);
            free(row);
        }
        free(a);
        free(b);
        free(c);
    }
    free(x);
}

/* ---------- internal step API (what GPTQ reuses) ---------- */

/* Requantizing a k-quant's own dequantized values on its stored grid must give back the
 * same levels and bytes; the grid functions must describe the dequantized values. */
#define KQ_IDEMPOTENT(T, NSUB, SUBLEN)                                                        \
    Test(steps, T##_grid_and_levels)                                                         \
    {                                                                                        \
        float x[LQ_QK_K], y[LQ_QK_K], qw[LQ_QK_K];                                           \
        uint8_t L[LQ_QK_K], L2[LQ_QK_K];                                                     \
        for (int seed = 1; seed <= 20; ++seed) {                                             \
            fill_gauss(x, LQ_QK_K, (uint64_t)seed * 7919);                                   \
            for (int i = 0; i < LQ_QK_K; ++i)                                                \
                qw[i] = 1.0f + (float)(i % 5);                                               \
            lq_block_##T a, b;                                                               \
            memset(&a, 0, sizeof a);                                                         \
            lq_##T##_quantize_block(x, seed % 2 ? qw : NULL, &a);                            \
            lq_##T##_dequantize_block(&a, y);                                                \
            b = a;                                                                           \
            memset(L2, 0, sizeof L2);                                                        \
            lq_##T##_levels(y, &b, L2);                                                      \
            lq_##T##_pack(L2, &b);                                                           \
            cr_assert_eq(memcmp(&a, &b, sizeof a), 0, #T " seed %d: requantize changed bytes", seed); \
            lq_##T##_levels(x, &a, L);                                                       \
            for (int j = 0; j < NSUB; ++j) {                                                 \
                float d, m;                                                                  \
                lq_##T##_grid(&a, j, &d, &m);                                                \
                for (int i = j * SUBLEN; i < (j + 1) * SUBLEN; ++i) {                        \
                    const float v = d * L2[i] - m;                                           \
                    cr_assert_leq(fabsf(v - y[i]), 1e-5f * (fabsf(y[i]) + fabsf(m) + 1e-6f), \
                                  #T " seed %d sub %d elem %d: grid %g vs dequant %g", seed, j, i, v, y[i]); \
                }                                                                            \
            }                                                                                \
        }                                                                                    \
    }

KQ_IDEMPOTENT(q2_K, 16, 16)
KQ_IDEMPOTENT(q3_K, 16, 16)
KQ_IDEMPOTENT(q4_K, 8, 32)
KQ_IDEMPOTENT(q5_K, 8, 32)
KQ_IDEMPOTENT(q6_K, 16, 16)

/* Assorted value distributions for the search equivalence tests. */
static void fill_group(float *x, int n, int kind)
{
    for (int i = 0; i < n; ++i) {
        const float g = tu_rng_gaussf();
        switch (kind % 8) {
        case 0: x[i] = g; break;
        case 1: x[i] = fabsf(g) + 0.1f; break;                 /* all positive */
        case 2: x[i] = -fabsf(g) - 0.5f; break;                /* all negative */
        case 3: x[i] = 0.25f; break;                           /* constant */
        case 4: x[i] = (i % 7 == 3) ? 3.0f : 0.0f; break;      /* sparse spikes */
        case 5: x[i] = 1e-6f * g; break;                       /* tiny */
        case 6: x[i] = 300.f * g; break;                       /* huge */
        default: x[i] = (float)(i % 4) - 1.5f + 0.01f * g; break; /* structured */
        }
    }
}

Test(steps, search_sym_matches_reference)
{
    float x[32], w[32];
    int8_t La[32], Lb[32];
    tu_rng_state = 4242;
    const int nmaxes[] = {4, 8, 16, 32};
    for (int it = 0; it < 20000; ++it) {
        const int n = it % 2 ? 32 : 16, nmax = nmaxes[(it / 2) % 4];
        fill_group(x, n, it / 8);
        for (int i = 0; i < n; ++i)
            w[i] = (it % 3 == 0) ? 0.0f : (float)tu_rng_u01();
        const float *wp = (it % 5 == 0) ? NULL : w;
        const float a = lq_search_sym(n, nmax, x, wp, La);
        const float b = lq_search_sym_serial(n, nmax, x, wp, Lb);
        cr_assert(memcmp(&a, &b, 4) == 0 && memcmp(La, Lb, (size_t)n) == 0,
                  "iteration %d (n %d, nmax %d): scale %a vs reference %a", it, n, nmax, a, b);
    }
}

Test(steps, search_affine_multi_matches_single)
{
    enum { MAXG = 20 };
    static float x[MAXG * 32], w[MAXG * 32];
    uint8_t La[MAXG * 32], Lb[32], aux[32];
    float sa[MAXG], ma[MAXG];
    /* the parameter sets ggml uses: q2_K ref, q4_K ref, q5_K ref, importance paths */
    const struct { int n, nmax; float rmin, rdelta; int nstep; bool mad, clamp; } cfg[] = {
        {16, 3, -0.5f, 0.1f, 15, true, false},  {32, 15, -1.f, 0.1f, 20, false, false},
        {32, 31, -0.5f, 0.1f, 15, false, false}, {16, 3, -0.9f, 0.05f, 36, false, true},
        {32, 15, -0.9f, 0.05f, 36, false, true}, {32, 31, -0.9f, 0.05f, 36, false, true},
    };
    tu_rng_state = 777;
    for (int it = 0; it < 600; ++it) {
        const int c = it % 6, n = cfg[c].n, count = 1 + (it * 7) % MAXG;
        for (int g = 0; g < count; ++g) {
            fill_group(x + g * n, n, it + g);
            for (int i = 0; i < n; ++i)
                w[g * n + i] = (g % 4 == 3) ? fabsf(x[g * n + i]) : 0.01f + (float)tu_rng_u01();
        }
        const float *wp = (it % 7 == 0) ? NULL : w;
        lq_search_affine_multi(count, n, cfg[c].nmax, x, wp, La, sa, ma, cfg[c].rmin,
                               cfg[c].rdelta, cfg[c].nstep, cfg[c].mad, cfg[c].clamp);
        for (int g = 0; g < count; ++g) {
            float mb;
            const float sb = lq_search_affine(n, cfg[c].nmax, x + g * n, wp ? wp + g * n : NULL,
                                              Lb, &mb, aux, cfg[c].rmin, cfg[c].rdelta,
                                              cfg[c].nstep, cfg[c].mad, cfg[c].clamp);
            cr_assert(memcmp(&sa[g], &sb, 4) == 0 && memcmp(&ma[g], &mb, 4) == 0 &&
                          memcmp(La + g * n, Lb, (size_t)n) == 0,
                      "iteration %d config %d group %d/%d: scale %a/%a min %a/%a", it, c, g,
                      count, sa[g], sb, ma[g], mb);
        }
    }
}

Test(steps, legacy_ref_split_matches_block)
{
    float x[LQ_QK];
    uint8_t L[LQ_QK];
    for (int seed = 1; seed <= 20; ++seed) {
        fill_gauss(x, LQ_QK, (uint64_t)seed);
        lq_block_q4_0 a, b;
        lq_q4_0_quantize_block(x, NULL, &a);
        const float d = lq_q4_0_choose_ref(x);
        lq_q4_0_levels(x, d, L);
        lq_q4_0_pack(d, L, &b);
        cr_assert_eq(memcmp(&a, &b, sizeof a), 0);
        lq_block_q5_1 c, e;
        float mn;
        lq_q5_1_quantize_block(x, NULL, &c);
        const float d1 = lq_q5_1_choose_ref(x, &mn);
        lq_q5_1_levels(x, d1, mn, L);
        lq_q5_1_pack(d1, mn, L, &e);
        cr_assert_eq(memcmp(&c, &e, sizeof c), 0);
    }
    /* importance path: batched blocks equal block-by-block */
    enum { NB = 11 };
    float xs[NB * LQ_QK], ws[NB * LQ_QK];
    lq_block_q4_1 a1[NB], b1[NB];
    lq_block_q5_1 a2[NB], b2[NB];
    fill_gauss(xs, NB * LQ_QK, 31);
    for (int i = 0; i < NB * LQ_QK; ++i)
        ws[i] = 0.5f + (float)(i % 9);
    lq_q4_1_quantize_blocks_imat(NB, xs, ws, a1);
    lq_q5_1_quantize_blocks_imat(NB, xs, ws, a2);
    for (int b = 0; b < NB; ++b) {
        lq_q4_1_quantize_block(xs + b * LQ_QK, ws + b * LQ_QK, &b1[b]);
        lq_q5_1_quantize_block(xs + b * LQ_QK, ws + b * LQ_QK, &b2[b]);
    }
    cr_assert_eq(memcmp(a1, b1, sizeof a1), 0);
    cr_assert_eq(memcmp(a2, b2, sizeof a2), 0);
}

/* ---------- sizes, shapes and errors ---------- */

Test(shape, row_sizes_match_gguf)
{
    /* README of golden/quant: row bytes for 512 columns */
    const struct { int type; size_t bytes; } k[] = {
        {GGUF_Q4_0, 288}, {GGUF_Q4_1, 320}, {GGUF_Q5_0, 352}, {GGUF_Q5_1, 384}, {GGUF_Q8_0, 544},
        {GGUF_Q2_K, 168}, {GGUF_Q3_K, 220}, {GGUF_Q4_K, 288}, {GGUF_Q5_K, 352}, {GGUF_Q6_K, 420},
        {GGUF_F32, 2048}, {GGUF_F16, 1024}, {GGUF_BF16, 1024}, {GGUF_Q8_K, 584}};
    for (size_t i = 0; i < sizeof k / sizeof k[0]; ++i)
        cr_assert_eq(lq_row_size(k[i].type, 512), k[i].bytes, "type %d", k[i].type);
    cr_assert_eq(lq_row_size(GGUF_Q4_K, 0), 0);
    cr_assert_eq(lq_row_size(GGUF_Q4_K, -256), 0);
    cr_assert_eq(lq_row_size(999, 256), 0);
}

Test(shape, not_a_block_multiple)
{
    float x[1024] = {0};
    uint8_t buf[4096];
    char msg[LQ_MSG_SIZE] = "";
    cr_assert_eq(lq_quantize_rows(GGUF_Q4_K, x, buf, 2, 500, NULL, 1, msg), LQ_ERR_SHAPE);
    cr_assert_neq(msg[0], '\0');
    cr_assert_not_null(strstr(msg, "500"), "message should name the column count: %s", msg);
    cr_assert_eq(lq_quantize_rows(GGUF_Q4_0, x, buf, 2, 48, NULL, 1, NULL), LQ_ERR_SHAPE);
    cr_assert_eq(lq_quantize_rows(GGUF_Q6_K, x, buf, 1, 128, NULL, 1, NULL), LQ_ERR_SHAPE);
    cr_assert_eq(lq_quantize_row(GGUF_Q5_0, x, buf, 40, NULL), 0);
    cr_assert_eq(lq_quantize_row(GGUF_Q3_K, x, buf, 255, NULL), 0);
    cr_assert_eq(lq_dequantize_row(GGUF_Q2_K, buf, x, 300), -1);
    cr_assert_eq(lq_dequantize_row(GGUF_Q8_0, buf, x, 33), -1);
    /* a correct shape still works after the failures */
    cr_assert_eq(lq_quantize_rows(GGUF_Q4_K, x, buf, 2, 512, NULL, 1, msg), LQ_OK);
}

Test(shape, bad_type_and_args)
{
    float x[256] = {0};
    uint8_t buf[1024];
    char msg[LQ_MSG_SIZE] = "";
    cr_assert_eq(lq_quantize_rows(999, x, buf, 1, 256, NULL, 1, msg), LQ_ERR_TYPE);
    cr_assert_neq(msg[0], '\0');
    cr_assert_eq(lq_quantize_rows(GGUF_Q8_K, x, buf, 1, 256, NULL, 1, NULL), LQ_ERR_TYPE);
    cr_assert_eq(lq_quantize_rows(GGUF_Q4_K, x, buf, -1, 256, NULL, 1, NULL), LQ_ERR_ARG);
    cr_assert_eq(lq_quantize_rows(GGUF_Q4_K, NULL, buf, 1, 256, NULL, 1, NULL), LQ_ERR_ARG);
    cr_assert_eq(lq_quantize_rows(GGUF_Q4_K, x, buf, 0, 256, NULL, 1, NULL), LQ_OK);
    cr_assert_eq(lq_quantize_row(999, x, buf, 256, NULL), 0);
    cr_assert_eq(lq_dequantize_row(999, buf, x, 256), -1);
    cr_assert(lq_can_quantize(GGUF_Q4_K) && lq_can_quantize(GGUF_BF16));
    cr_assert(!lq_can_quantize(GGUF_Q8_K) && !lq_can_quantize(GGUF_Q8_1) && !lq_can_quantize(-1));
    for (int e = LQ_OK; e < LQ_ERR_COUNT_; ++e)
        for (int f = e + 1; f < LQ_ERR_COUNT_; ++f)
            cr_assert_str_neq(lq_strerror((lq_error)e), lq_strerror((lq_error)f));
    cr_assert_not_null(lq_strerror((lq_error)1234));
}

/* Non-finite and extreme inputs must not crash (and, under UBSan, not hit UB). */
Test(shape, hostile_values)
{
    float x[512];
    uint8_t buf[1024];
    float y[512];
    for (int i = 0; i < 512; ++i)
        x[i] = (i % 3 == 0) ? NAN : (i % 3 == 1) ? INFINITY : -3.4e38f;
    for (size_t t = 0; t < sizeof k_qtypes / sizeof k_qtypes[0]; ++t) {
        cr_assert_gt(lq_quantize_row(k_qtypes[t], x, buf, 512, NULL), 0);
        cr_assert_gt(lq_quantize_row(k_qtypes[t], x, buf, 512, x), 0);
        cr_assert_eq(lq_dequantize_row(k_qtypes[t], buf, y, 512), 0);
    }
}

/* Q8_K activation format: reference rounding and bsums. */
Test(shape, q8_K_activation)
{
    float x[256], y[256];
    uint8_t buf[292];
    fill_gauss(x, 256, 3);
    cr_assert_eq(lq_quantize_row(GGUF_Q8_K, x, buf, 256, NULL), 292);
    lq_block_q8_K b;
    memcpy(&b, buf, sizeof b);
    for (int j = 0; j < 16; ++j) {
        int s = 0;
        for (int i = 0; i < 16; ++i)
            s += b.qs[16 * j + i];
        cr_assert_eq(b.bsums[j], s);
    }
    cr_assert_eq(lq_dequantize_row(GGUF_Q8_K, buf, y, 256), 0);
    for (int i = 0; i < 256; ++i)
        cr_assert_leq(fabsf(y[i] - x[i]), fabsf(b.d) * 0.5001f);
}
