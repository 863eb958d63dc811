/* libquant IQ4_NL / IQ4_XS: byte identity with llama-quantize's reference files, an independent
 * reference quantizer (importance-weighted and plain), decoding, error properties, awkward
 * inputs, argument errors. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libgguf/gguf.h"
#include "libquant/lq.h"
#include "libquant/lq_iq4.h"
#include "tests/testutil.h"

/* ---------- helpers (random numbers: tests/testutil.h) ---------- */

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; ++i) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

static int block_of(int type) { return type == GGUF_IQ4_NL ? 32 : 256; }
static size_t bytes_of(int type) { return type == GGUF_IQ4_NL ? 18 : 136; }

static const int8_t GRID[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

/* ---------- straightforward decoder, from the byte layout ---------- */

static double half_bits_to_double(unsigned h)
{
    const int e = (h >> 10) & 31, m = h & 1023;
    const double mag = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
    return h & 0x8000 ? -mag : mag;
}

/* Step of group g (of 32) of one block of bytes: d (NL) or d * (ls - 32) (XS). This is exact in
 * float for every finite fp16 d (at most 11 + 6 significant bits), and so is step * grid
 * (+ 7 bits): computing in double gives ggml's floats. */
static double block_step(int type, const uint8_t *b, int g)
{
    const double d = half_bits_to_double(b[0] | b[1] << 8);
    if (type == GGUF_IQ4_NL)
        return d;
    const unsigned sh = b[2] | b[3] << 8;
    const int ls = ((b[4 + g / 2] >> 4 * (g % 2)) & 15) | ((sh >> 2 * g) & 3) << 4;
    return d * (ls - 32);
}

/* One block of bytes -> floats. */
static void simple_decode(int type, const uint8_t *b, float *y)
{
    const int nsub = type == GGUF_IQ4_NL ? 1 : 8;
    const uint8_t *qs = b + (type == GGUF_IQ4_NL ? 2 : 8);
    for (int g = 0; g < nsub; ++g, qs += 16) {
        const double step = block_step(type, b, g);
        for (int j = 0; j < 32; ++j)
            y[32 * g + j] = (float)(step * GRID[j < 16 ? qs[j] & 15 : qs[j - 16] >> 4]);
    }
}

/* ---------- independent reference quantizer ----------
 * Written from the algorithm as described in libquant/lq_iq4.h (llama.cpp's IQ4 search), not
 * from lq_iq4.c: nearest level by exhaustive search instead of bisection, the 16 inverse scales
 * of a group as one list, bytes written field by field. It checks that the library implements
 * that description exactly — in particular the importance-weighted path, which the reference
 * GGUF files (made without an imatrix) do not exercise. Float operations in the order of the
 * description (w*q*x as (w*q)*x, sums in index order), so results are bit-exact. */

static int ref_nearest(float v)
{
    if (v <= -127.f)
        return 0;
    if (v >= 113.f)
        return 15;
    int best = 15; /* NaN stays at the top level */
    float bd = INFINITY;
    for (int k = 0; k < 16; ++k) {
        const float dist = fabsf(v - (float)GRID[k]);
        if (dist <= bd) { /* '<=': a tie goes to the upper level */
            bd = dist;
            best = k;
        }
    }
    return best;
}

static float ref_group_scale(const float *x, const float *w)
{
    float m = 0;
    for (int j = 0; j < 32; ++j)
        if (fabsf(x[j]) > fabsf(m))
            m = x[j];
    if (fabsf(m) < 1e-15f)
        return 0;
    float inv[16];
    inv[0] = 1.f / (m / 127.f);
    for (int t = -7; t <= 7; ++t)
        inv[t + 8] = (float)(t - 127) / m;
    float s = 0, best = 0;
    for (int c = 0; c < 16; ++c) {
        float sqx = 0, sq2 = 0;
        for (int j = 0; j < 32; ++j) {
            const float q = (float)GRID[ref_nearest(inv[c] * x[j])];
            sqx += (w[j] * q) * x[j];
            sq2 += (w[j] * q) * q;
        }
        if (c == 0) {
            s = sq2 > 0 ? sqx / sq2 : 0.f;
            best = s * sqx;
        } else if (sq2 > 0 && sqx * sqx > best * sq2) {
            s = sqx / sq2;
            best = s * sqx;
        }
    }
    return s;
}

/* Round to nearest even as ggml's nearest_int does for |v| < 2^22; a NaN gives 0 there. */
static int ref_round(float v)
{
    if (isnan(v))
        return 0;
    v = fminf(fmaxf(v, -64.f), 64.f);
    return (int)rintf(v);
}

/* One block (NL) / super-block (XS) of x -> bytes. */
static void ref_quantize(int type, const float *x, const float *qw, uint8_t *out)
{
    const int n = block_of(type), nsub = n / 32;
    float w[256], s[8], step[8];
    float sigma2 = 0;
    for (int j = 0; j < n; ++j)
        sigma2 += x[j] * x[j];
    sigma2 *= 2.f / (float)n;
    for (int j = 0; j < n; ++j)
        w[j] = qw ? qw[j] * sqrtf(sigma2 + x[j] * x[j]) : x[j] * x[j];
    for (int g = 0; g < nsub; ++g)
        s[g] = ref_group_scale(x + 32 * g, w + 32 * g);
    uint8_t *qs;
    if (type == GGUF_IQ4_NL) {
        const uint16_t h = lq_f32_to_f16(s[0]);
        out[0] = (uint8_t)h;
        out[1] = (uint8_t)(h >> 8);
        step[0] = s[0];
        qs = out + 2;
    } else {
        float smax = 0;
        for (int g = 0; g < 8; ++g)
            if (fabsf(s[g]) > fabsf(smax))
                smax = s[g];
        const float D = -smax / 32.f, invD = D != 0 ? 1.f / D : 0.f;
        const uint16_t h = lq_f32_to_f16(D);
        unsigned sh = 0;
        memset(out, 0, 8);
        out[0] = (uint8_t)h;
        out[1] = (uint8_t)(h >> 8);
        for (int g = 0; g < 8; ++g) {
            int l = ref_round(invD * s[g]);
            l = l < -32 ? -32 : l > 31 ? 31 : l;
            step[g] = D * (float)l;
            out[4 + g / 2] |= (uint8_t)(((l + 32) & 15) << 4 * (g % 2));
            sh |= (unsigned)((l + 32) >> 4) << 2 * g;
        }
        out[2] = (uint8_t)sh;
        out[3] = (uint8_t)(sh >> 8);
        qs = out + 8;
    }
    for (int g = 0; g < nsub; ++g) {
        const float inv = step[g] != 0 ? 1.f / step[g] : 0.f;
        uint8_t L[32];
        for (int j = 0; j < 32; ++j)
            L[j] = (uint8_t)ref_nearest(inv * x[32 * g + j]);
        for (int j = 0; j < 16; ++j)
            qs[16 * g + j] = (uint8_t)(L[j] | L[j + 16] << 4);
    }
}

/* Quantize n values with the library and with the reference; assert equal bytes. */
static void check_against_ref(int type, const float *x, int64_t n, const float *qw, const char *what)
{
    const size_t bs = bytes_of(type), nb = (size_t)(n / block_of(type));
    uint8_t *got = malloc(nb * bs), *want = malloc(nb * bs);
    cr_assert(got && want);
    cr_assert_eq(lq_iq4_quantize_row(type, x, got, n, qw), nb * bs);
    for (size_t b = 0; b < nb; ++b)
        ref_quantize(type, x + b * (size_t)block_of(type), qw ? qw + b * (size_t)block_of(type) : NULL,
                     want + b * bs);
    for (size_t i = 0; i < nb * bs; ++i)
        if (got[i] != want[i])
            cr_assert_fail("%s %s%s: first differing byte %zu (block %zu, byte %zu): got 0x%02x, reference 0x%02x",
                           type == GGUF_IQ4_NL ? "iq4_nl" : "iq4_xs", what, qw ? " (imatrix)" : "", i, i / bs,
                           i % bs, got[i], want[i]);
    free(got);
    free(want);
}

/* ---------- the reference GGUF files made by llama-quantize (no imatrix) ---------- */

/* Every tensor of the reference file is reproduced from the F32 file: IQ4 tensors with
 * lq_iq4_quantize_row, the Q6_K output tensor with lq_quantize_row, F32 tensors as copies.
 * Also decodes each IQ4 tensor (library vs simple_decode, bitwise) and bounds its error. */
static void check_reference_file(const char *rel, int type, int expect_iq4, double max_rel_rmse)
{
    TU_REQUIRE_SHARED();
    char *fp = tu_shared_path("reference/classics-7m-f32.gguf"), *qp = tu_shared_path(rel);
    char msg[GGUF_MSG_SIZE];
    gguf_reader *rf = NULL, *rq = NULL;
    cr_assert_eq(gguf_open(fp, &rf, msg), GGUF_OK, "%s", msg);
    cr_assert_eq(gguf_open(qp, &rq, msg), GGUF_OK, "%s", msg);
    int n_iq4 = 0, n_other = 0;
    double err = 0, ref = 0;
    for (int64_t i = 0; i < gguf_n_tensors(rq); ++i) {
        const gguf_tensor *tq = gguf_tensor_at(rq, i);
        const int64_t fi = gguf_find_tensor(rf, tq->name);
        cr_assert_geq(fi, 0, "%s: no F32 tensor '%s'", rel, tq->name);
        const gguf_tensor *tf = gguf_tensor_at(rf, fi);
        cr_assert_eq(tf->type, GGUF_F32);
        const int64_t ncols = tf->ne[0], nrows = tf->ne[1] * tf->ne[2] * tf->ne[3];
        const float *x = tf->data;
        if (tq->type == GGUF_F32) {
            cr_assert_eq(tq->nbytes, tf->nbytes);
            cr_assert_eq(memcmp(tq->data, tf->data, tf->nbytes), 0, "%s differs", tq->name);
            n_other++;
            continue;
        }
        const size_t rs = gguf_row_size(tq->type, ncols);
        cr_assert_gt(rs, 0, "%s: type %d", tq->name, tq->type);
        cr_assert_eq(tq->nbytes, rs * (size_t)nrows);
        uint8_t *q = malloc(tq->nbytes);
        float *y = malloc(sizeof(float) * (size_t)ncols), *ys = malloc(sizeof(float) * (size_t)ncols);
        cr_assert(q && y && ys);
        const bool iq4 = tq->type == type;
        for (int64_t r = 0; r < nrows; ++r) {
            const size_t got = iq4 ? lq_iq4_quantize_row(type, x + r * ncols, q + r * rs, ncols, NULL)
                                   : lq_quantize_row(tq->type, x + r * ncols, q + r * rs, ncols, NULL);
            cr_assert_eq(got, rs, "%s row %lld", tq->name, (long long)r);
        }
        const uint8_t *want = tq->data;
        for (size_t k = 0; k < tq->nbytes; ++k)
            if (q[k] != want[k])
                cr_assert_fail("%s: tensor %s (%s): first differing byte %zu (row %zu, byte %zu of the row): "
                               "got 0x%02x, llama-quantize 0x%02x",
                               rel, tq->name, gguf_type_info(tq->type)->name, k, k / rs, k % rs, q[k], want[k]);
        if (iq4) {
            n_iq4++;
            for (int64_t r = 0; r < nrows; ++r) {
                cr_assert_eq(lq_iq4_dequantize_row(type, want + r * rs, y, ncols), 0);
                for (int64_t b = 0; b < ncols / block_of(type); ++b)
                    simple_decode(type, want + r * rs + b * bytes_of(type), ys + b * block_of(type));
                cr_assert_eq(memcmp(y, ys, sizeof(float) * (size_t)ncols), 0, "%s row %lld decodes differently",
                             tq->name, (long long)r);
                for (int64_t c = 0; c < ncols; ++c) {
                    const double d = (double)y[c] - x[r * ncols + c];
                    err += d * d;
                    ref += (double)x[r * ncols + c] * x[r * ncols + c];
                }
            }
        } else {
            n_other++;
        }
        free(q);
        free(y);
        free(ys);
    }
    cr_expect_eq(n_iq4, expect_iq4, "%s: %d tensors of the IQ4 type", rel, n_iq4);
    cr_expect_eq(n_iq4 + n_other, 57);
    const double e = sqrt(err / ref);
    cr_expect_lt(e, max_rel_rmse, "%s: relative RMSE of the IQ4 tensors %.5f", rel, e);
    cr_expect_gt(e, max_rel_rmse / 3, "%s: relative RMSE %.5f implausibly small", rel, e);
    gguf_close(rf);
    gguf_close(rq);
    free(fp);
    free(qp);
}

/* 43 IQ4 tensors (token_embd + 7 per layer); relative RMSE measured .07610 (NL), .07669 (XS),
 * bounds ~15% above. */
Test(reference, iq4_nl_file) { check_reference_file("reference/classics-7m-iq4_nl.gguf", GGUF_IQ4_NL, 43, 0.0875); }
Test(reference, iq4_xs_file) { check_reference_file("reference/classics-7m-iq4_xs.gguf", GGUF_IQ4_XS, 43, 0.0882); }

/* ---------- golden inputs of ../shared/golden/quant ---------- */

/* FNV-1a 64 of the 16 x 512 golden rows quantized by ggml_quantize_chunk of the reference
 * llama.cpp build (measured side by side), plain and with golden/quant/imatrix.f32. */
Test(golden, hashes_match_ggml)
{
    TU_REQUIRE_SHARED();
    static const struct { int type; int imat; uint64_t h; } want[] = {
        {GGUF_IQ4_NL, 0, 0xf12e3b44b749c0d9ull},
        {GGUF_IQ4_NL, 1, 0x2bf5826049d84d63ull},
        {GGUF_IQ4_XS, 0, 0xb13ff15458d0577dull},
        {GGUF_IQ4_XS, 1, 0xc5829914802615daull},
    };
    char *xp = tu_shared_path("golden/quant/input.f32"), *ip = tu_shared_path("golden/quant/imatrix.f32");
    size_t nx = 0, ni = 0;
    float *x = tu_read_file(xp, &nx), *im = tu_read_file(ip, &ni);
    cr_assert(x && im && nx == 16 * 512 * 4 && ni == 512 * 4);
    uint8_t q[16 * 512 / 32 * 18];
    for (size_t k = 0; k < sizeof want / sizeof want[0]; ++k) {
        const size_t rs = 512 / (size_t)block_of(want[k].type) * bytes_of(want[k].type);
        for (int r = 0; r < 16; ++r)
            cr_assert_eq(lq_iq4_quantize_row(want[k].type, x + r * 512, q + r * rs, 512, want[k].imat ? im : NULL), rs);
        cr_expect_eq(fnv1a(q, 16 * rs), want[k].h, "%s%s: hash %016llx", want[k].type == GGUF_IQ4_NL ? "iq4_nl" : "iq4_xs",
                     want[k].imat ? " imatrix" : "", (unsigned long long)fnv1a(q, 16 * rs));
        for (int r = 0; r < 16; ++r)
            check_against_ref(want[k].type, x + r * 512, 512, want[k].imat ? im : NULL, "golden row");
    }
    free(x);
    free(im);
    free(xp);
    free(ip);
}

/* ---------- against the independent reference ---------- */

#define NCOLS 2048

/* Rows of several kinds, each with a log-normal imatrix (some columns 0), plain and weighted. */
Test(independent, random_rows_plain_and_weighted)
{
    float *x = malloc(sizeof(float) * NCOLS), *qw = malloc(sizeof(float) * NCOLS);
    cr_assert(x && qw);
    tu_rng_state = 0x243f6a8885a308d3ull;
    for (int kind = 0; kind < 8; ++kind) {
        for (int i = 0; i < NCOLS; ++i) {
            const float g = tu_rng_gaussf();
            switch (kind) {
            case 0: x[i] = 0.02f * g; break;                                          /* weight-like */
            case 1: x[i] = tu_rng_u01() < 0.01 ? 0.5f * g : 0.02f * g; break;            /* outliers */
            case 2: x[i] = (float)(2 * tu_rng_u01() - 1); break;                         /* uniform */
            case 3: x[i] = tu_rng_u01() < 0.05 ? g : 0.f; break;                         /* sparse */
            case 4: x[i] = -fabsf(g); break;                                          /* negative only */
            case 5: x[i] = 1e4f * g; break;                                           /* large */
            case 6: x[i] = (i / 32) % 3 == 0 ? 0.f : g; break;                        /* zero groups */
            default: x[i] = (float)(i % 32) - 15.5f; break;                           /* ramp */
            }
            qw[i] = tu_rng_u01() < 0.05 ? 0.f : (float)exp(1.5 * tu_rng_gaussf());
        }
        for (int z = 0; z < 32; ++z)
            qw[64 + z] = 0.f; /* one group with no importance at all: its scale is 0 */
        for (int t = 0; t < 2; ++t) {
            const int type = t ? GGUF_IQ4_XS : GGUF_IQ4_NL;
            check_against_ref(type, x, NCOLS, NULL, "random");
            check_against_ref(type, x, NCOLS, qw, "random");
        }
    }
    free(x);
    free(qw);
}

/* ---------- properties ---------- */

/* With importance weights, the error weighted by them is lower than plain rounding's: over
 * 64 rows of N(0,1) with 1% outliers (x8), log-normal weights (sigma 1.5). Measured ratio of
 * total weighted squared error imatrix/plain: NL .780, XS .815; every row lower. */
Test(properties, weighted_error_not_above_plain)
{
    enum { R = 64, C = 1024 };
    float *x = malloc(sizeof(float) * R * C), *y = malloc(sizeof(float) * C), im[C];
    uint8_t *q = malloc(C / 32 * 18);
    cr_assert(x && y && q);
    tu_rng_state = 1234567;
    for (int i = 0; i < R * C; ++i) {
        x[i] = tu_rng_gaussf();
        if (tu_rng_u01() < 0.01)
            x[i] *= 8;
    }
    for (int i = 0; i < C; ++i)
        im[i] = (float)exp(1.5 * tu_rng_gaussf());
    for (int t = 0; t < 2; ++t) {
        const int type = t ? GGUF_IQ4_XS : GGUF_IQ4_NL;
        double tot[2] = {0, 0};
        for (int r = 0; r < R; ++r) {
            double e[2];
            for (int m = 0; m < 2; ++m) {
                cr_assert_gt(lq_iq4_quantize_row(type, x + r * C, q, C, m ? im : NULL), 0);
                cr_assert_eq(lq_iq4_dequantize_row(type, q, y, C), 0);
                e[m] = 0;
                for (int i = 0; i < C; ++i)
                    e[m] += im[i] * ((double)y[i] - x[r * C + i]) * ((double)y[i] - x[r * C + i]);
                tot[m] += e[m];
            }
            cr_expect_leq(e[1], e[0], "type %d row %d: weighted error %.4f > plain %.4f", type, r, e[1], e[0]);
        }
        cr_expect_lt(tot[1] / tot[0], t ? 0.86 : 0.83, "type %d: ratio %.4f", type, tot[1] / tot[0]);
    }
    free(x);
    free(y);
    free(q);
}

/* ---------- awkward inputs ---------- */

Test(awkward, zeros_and_denormals_give_the_zero_block)
{
    float x[256] = {0}, dn[256], y[256];
    for (int i = 0; i < 256; ++i)
        dn[i] = (i % 2 ? -1.f : 1.f) * 1e-40f * (float)(i + 1); /* subnormal, below 1e-15 */
    uint8_t q[136];
    /* NL: d = +0, every level 8 (grid value 1, the nearest to 0) */
    for (int k = 0; k < 2; ++k) {
        cr_assert_eq(lq_iq4_quantize_row(GGUF_IQ4_NL, k ? dn : x, q, 32, NULL), 18);
        cr_expect(q[0] == 0 && q[1] == 0);
        for (int i = 2; i < 18; ++i)
            cr_expect_eq(q[i], 0x88);
        /* XS: D = -0.0 (stored 0x8000), every ls = 32 (scales_h 0xaaaa, scales_l 0), levels 8 */
        cr_assert_eq(lq_iq4_quantize_row(GGUF_IQ4_XS, k ? dn : x, q, 256, NULL), 136);
        cr_expect(q[0] == 0x00 && q[1] == 0x80 && q[2] == 0xaa && q[3] == 0xaa, "%02x %02x %02x %02x", q[0],
                  q[1], q[2], q[3]);
        for (int i = 4; i < 8; ++i)
            cr_expect_eq(q[i], 0);
        for (int i = 8; i < 136; ++i)
            cr_expect_eq(q[i], 0x88);
        cr_assert_eq(lq_iq4_dequantize_row(GGUF_IQ4_XS, q, y, 256), 0);
        for (int i = 0; i < 256; ++i)
            cr_expect_eq(y[i], 0.f);
    }
}

/* One huge value among small ones: fp16 d overflows to inf in that (super-)block exactly as in
 * ggml; the other blocks are unaffected. A large but representable spike is kept accurately. */
Test(awkward, one_huge_value)
{
    float x[512], y[512];
    tu_rng_state = 99;
    for (int i = 0; i < 512; ++i)
        x[i] = 0.01f * tu_rng_gaussf();
    x[37] = 3e38f;
    uint8_t q[512 / 32 * 18]; /* NL: 16 blocks of 18 (XS needs 272) */
    float w[512];
    for (int i = 0; i < 512; ++i)
        w[i] = 1.f + (float)(i % 5);
    for (int t = 0; t < 2; ++t) {
        const int type = t ? GGUF_IQ4_XS : GGUF_IQ4_NL;
        check_against_ref(type, x, 512, NULL, "huge");
        check_against_ref(type, x, 512, w, "huge");
        cr_assert_gt(lq_iq4_quantize_row(type, x, q, 512, NULL), 0);
        cr_assert_eq(lq_iq4_dequantize_row(type, q, y, 512), 0);
        for (int i = 256; i < 512; ++i)
            cr_expect(isfinite(y[i]) && fabsf(y[i] - x[i]) < 0.01f, "element %d: %g vs %g", i, y[i], x[i]);
    }
    x[37] = 1000.f;
    for (int t = 0; t < 2; ++t) {
        const int type = t ? GGUF_IQ4_XS : GGUF_IQ4_NL;
        check_against_ref(type, x, 512, NULL, "spike");
        cr_assert_gt(lq_iq4_quantize_row(type, x, q, 512, NULL), 0);
        cr_assert_eq(lq_iq4_dequantize_row(type, q, y, 512), 0);
        cr_expect(fabsf(y[37] - 1000.f) < 5.f, "spike decodes to %g", y[37]);
    }
}

/* Negative-only input. The trial inverse scales (t - 127)/m put the largest magnitude at the
 * grid's -127 end, so the chosen scale is positive and values near 0 round to the level +1:
 * nothing decodes above that smallest positive level 1*|step| of its group. Relative RMSE on
 * -|N(0,1)| measured .0886 (NL), .0900 (XS). */
Test(awkward, negative_only)
{
    float x[256], y[256];
    uint8_t q[8 * 18];
    tu_rng_state = 7;
    for (int i = 0; i < 256; ++i)
        x[i] = -fabsf(tu_rng_gaussf()) - 1e-3f;
    for (int t = 0; t < 2; ++t) {
        const int type = t ? GGUF_IQ4_XS : GGUF_IQ4_NL;
        check_against_ref(type, x, 256, NULL, "negative");
        cr_assert_gt(lq_iq4_quantize_row(type, x, q, 256, NULL), 0);
        cr_assert_eq(lq_iq4_dequantize_row(type, q, y, 256), 0);
        double err = 0, ref = 0;
        int positive = 0;
        for (int i = 0; i < 256; ++i) {
            const double step = t ? block_step(type, q, i / 32) : block_step(type, q + (i / 32) * 18, 0);
            cr_expect_leq(y[i], fabs(step), "element %d decodes to %g, above 1*|step| = %g", i, y[i], fabs(step));
            positive += y[i] > 0;
            err += ((double)y[i] - x[i]) * ((double)y[i] - x[i]);
            ref += (double)x[i] * x[i];
        }
        cr_expect_gt(positive, 0, "the +1 level is used for values near 0");
        cr_expect_lt(sqrt(err / ref), 0.10, "relative RMSE %.4f", sqrt(err / ref));
    }
}

/* Finite extremes: +-FLT_MAX, the fp16 limit, mixed huge and tiny. The search overflows to
 * inf/NaN inside; the bytes still equal the reference's and nothing traps (run under UBSan). */
Test(awkward, finite_extremes)
{
    float x[256];
    tu_rng_state = 3;
    for (int kind = 0; kind < 4; ++kind) {
        for (int i = 0; i < 256; ++i) {
            switch (kind) {
            case 0: x[i] = i % 2 ? FLT_MAX : -FLT_MAX; break;
            case 1: x[i] = (float)(2 * tu_rng_u01() - 1) * FLT_MAX; break;
            case 2: x[i] = i % 7 ? 65504.f : -65504.f; break;
            default: x[i] = i % 2 ? FLT_MAX : FLT_MIN; break;
            }
        }
        for (int t = 0; t < 2; ++t) {
            const int type = t ? GGUF_IQ4_XS : GGUF_IQ4_NL;
            check_against_ref(type, x, 256, NULL, "extreme");
            float w[256];
            for (int i = 0; i < 256; ++i)
                w[i] = (float)(i % 3);
            check_against_ref(type, x, 256, w, "extreme");
        }
    }
    /* the fp16 limit itself: d = 65504/127 stays finite, signs and magnitudes survive */
    float y[32];
    uint8_t q[18];
    for (int i = 0; i < 32; ++i)
        x[i] = i % 2 ? 65504.f : -65504.f;
    cr_assert_eq(lq_iq4_quantize_row(GGUF_IQ4_NL, x, q, 32, NULL), 18);
    cr_assert_eq(lq_iq4_dequantize_row(GGUF_IQ4_NL, q, y, 32), 0);
    for (int i = 0; i < 32; ++i)
        cr_expect(isfinite(y[i]) && (y[i] > 0) == (x[i] > 0) && fabsf(y[i] - x[i]) < 0.25f * 65504.f,
                  "element %d: %g", i, y[i]);
}

/* ---------- pieces ---------- */

Test(pieces, nearest_level)
{
    for (int k = 0; k < 16; ++k)
        cr_expect_eq(lq_iq4_nearest((float)GRID[k]), k);
    cr_expect_eq(lq_iq4_nearest(-1e30f), 0);
    cr_expect_eq(lq_iq4_nearest(-INFINITY), 0);
    cr_expect_eq(lq_iq4_nearest(1e30f), 15);
    cr_expect_eq(lq_iq4_nearest(INFINITY), 15);
    cr_expect_eq(lq_iq4_nearest(NAN), 15);
    cr_expect_eq(lq_iq4_nearest(0.f), 8);
    cr_expect_eq(lq_iq4_nearest(-4.5f), 8);  /* tie between -10 and 1: upper */
    cr_expect_eq(lq_iq4_nearest(-4.51f), 7);
    cr_expect_eq(lq_iq4_nearest(101.f), 15); /* tie between 89 and 113 */
    for (float v = -140.f; v <= 130.f; v += 0.37f)
        cr_expect_eq(lq_iq4_nearest(v), ref_nearest(v), "v = %g", v);
    for (int k = 0; k < 16; ++k)
        cr_expect_eq(lq_iq4_grid[k], GRID[k]);
}

/* choose + levels + pack rebuild the block quantizers' bytes; the stored XS scales decode. */
Test(pieces, steps_rebuild_blocks)
{
    float x[256], qw[256];
    tu_rng_state = 11;
    for (int i = 0; i < 256; ++i) {
        x[i] = tu_rng_gaussf();
        qw[i] = (float)tu_rng_u01();
    }
    for (int m = 0; m < 2; ++m) {
        const float *w = m ? qw : NULL;
        lq_block_iq4_nl a, b;
        lq_iq4_nl_quantize_block(x, w, &a);
        uint8_t L[256];
        lq_iq4_levels(32, x, lq_iq4_nl_choose(x, w, &b), L);
        lq_iq4_pack(1, L, b.qs);
        cr_expect_eq(memcmp(&a, &b, sizeof a), 0);

        lq_block_iq4_xs c, e;
        float step[8];
        lq_iq4_xs_quantize_block(x, w, &c);
        lq_iq4_xs_choose(x, w, &e, step);
        for (int g = 0; g < 8; ++g) {
            lq_iq4_levels(32, x + 32 * g, step[g], L + 32 * g);
            /* the stored grid is fp16(D) * (ls - 32); step is D * (ls - 32) before rounding */
            const float stored = lq_f16_to_f32(e.d) * (float)lq_iq4_xs_scale(&e, g);
            cr_expect_leq(fabsf(stored - step[g]), fabsf(step[g]) * 0x1p-10f, "group %d", g);
        }
        lq_iq4_pack(8, L, e.qs);
        cr_expect_eq(memcmp(&c, &e, sizeof c), 0);
    }
}

Test(pieces, bad_arguments)
{
    float x[512] = {0}, y[512];
    uint8_t q[512];
    cr_expect_eq(lq_iq4_quantize_row(GGUF_IQ4_NL, x, q, 48, NULL), 0);
    cr_expect_eq(lq_iq4_quantize_row(GGUF_IQ4_NL, x, q, 0, NULL), 0);
    cr_expect_eq(lq_iq4_quantize_row(GGUF_IQ4_NL, x, q, -32, NULL), 0);
    cr_expect_eq(lq_iq4_quantize_row(GGUF_IQ4_XS, x, q, 128, NULL), 0);
    cr_expect_eq(lq_iq4_quantize_row(GGUF_Q4_0, x, q, 32, NULL), 0);
    cr_expect_eq(lq_iq4_quantize_row(GGUF_IQ4_NL, NULL, q, 32, NULL), 0);
    cr_expect_eq(lq_iq4_quantize_row(GGUF_IQ4_NL, x, NULL, 32, NULL), 0);
    cr_expect_eq(lq_iq4_dequantize_row(GGUF_IQ4_XS, q, y, 32), -1);
    cr_expect_eq(lq_iq4_dequantize_row(GGUF_Q4_K, q, y, 256), -1);
    cr_expect_eq(lq_iq4_dequantize_row(GGUF_IQ4_NL, NULL, y, 32), -1);
    /* unaligned buffers give the same bytes and values */
    uint8_t *buf = malloc(2 * 136 + 1);
    cr_assert(buf);
    tu_rng_state = 5;
    for (int i = 0; i < 512; ++i)
        x[i] = tu_rng_gaussf();
    for (int t = 0; t < 2; ++t) {
        const int type = t ? GGUF_IQ4_XS : GGUF_IQ4_NL;
        const size_t n = t ? 2 * 136 : 2 * 18, cnt = t ? 512 : 64;
        cr_assert_eq(lq_iq4_quantize_row(type, x, q, (int64_t)cnt, NULL), n);
        cr_assert_eq(lq_iq4_quantize_row(type, x, buf + 1, (int64_t)cnt, NULL), n);
        cr_expect_eq(memcmp(q, buf + 1, n), 0);
        cr_assert_eq(lq_iq4_dequantize_row(type, buf + 1, y, (int64_t)cnt), 0);
        for (size_t b = 0; b < n / bytes_of(type); ++b) {
            float ys[256];
            simple_decode(type, q + b * bytes_of(type), ys);
            cr_expect_eq(memcmp(ys, y + b * (size_t)block_of(type), sizeof(float) * (size_t)block_of(type)), 0);
        }
    }
    free(buf);
}

Test(pieces, gguf_type_traits)
{
    const gguf_type_traits *nl = gguf_type_info(GGUF_IQ4_NL), *xs = gguf_type_info(GGUF_IQ4_XS);
    cr_assert(nl && xs);
    cr_expect_str_eq(nl->name, "iq4_nl");
    cr_expect_str_eq(xs->name, "iq4_xs");
    cr_expect(nl->block_size == 32 && nl->type_size == sizeof(lq_block_iq4_nl));
    cr_expect(xs->block_size == 256 && xs->type_size == sizeof(lq_block_iq4_xs));
    cr_expect_eq(gguf_type_from_name("IQ4_XS"), 23);
    cr_expect_eq(gguf_type_from_name("iq4_nl"), 20);
}
