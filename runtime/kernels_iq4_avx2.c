/* IQ4_NL and IQ4_XS weights with AVX2 + FMA + F16C (compiled with -mavx2 -mfma -mf16c, called
 * only when the CPU has them). The sums are kernels_iq4.c's, operation for operation:
 *   IQ4_NL: groups of 8 weight rows are decoded once (grid values and their magnitudes, the
 *     block scales 8 rows wide); per token and block, the 8 rows' exact integer dot products
 *     land in the 8 lanes of one vector, and acc = fma(f32(isum), d_w * d_x, acc) runs in
 *     those lanes — one chain per output, as llama.cpp's repacked 8-row GEMM;
 *   IQ4_XS: per weight row and token, ggml_vec_dot_iq4_xs_q8_K's 8 lanes (4 values each per
 *     sub-block, scaled by the sub-block's ls - 32 in integers), fma per super-block, the
 *     AVX2 horizontal sum at the end.
 * 8-bit products go through maddubs + madd: |grid| <= 127 and |x| <= 127, so the 16-bit pair
 * sums never saturate and every integer is exact. */
#include <immintrin.h>
#include <stdlib.h>

#include "libquant/lq_iq4.h"
#include "runtime/rt_internal.h"

static inline __m256i dot_u8s8(__m256i a, __m256i b)
{
    return _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), _mm256_set1_epi16(1));
}

/* The 32 grid values of one sub-block (16 bytes of nibbles) as signed bytes, in value order. */
static inline __m256i decode32(const uint8_t *qs)
{
    const __m128i grid = _mm_loadu_si128((const __m128i *)lq_iq4_grid), m4 = _mm_set1_epi8(15);
    const __m128i q = _mm_loadu_si128((const __m128i *)qs);
    const __m128i lo = _mm_shuffle_epi8(grid, _mm_and_si128(q, m4));
    const __m128i hi = _mm_shuffle_epi8(grid, _mm_and_si128(_mm_srli_epi16(q, 4), m4));
    return _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
}

static inline float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* ---------------------------------------------------------------- IQ4_NL */

/* 8 vectors of 8 int32 -> one vector whose lane r is the sum of p[r]'s lanes. */
static inline __m256i reduce8(const __m256i p[8])
{
    const __m256i a = _mm256_hadd_epi32(_mm256_hadd_epi32(p[0], p[1]), _mm256_hadd_epi32(p[2], p[3]));
    const __m256i b = _mm256_hadd_epi32(_mm256_hadd_epi32(p[4], p[5]), _mm256_hadd_epi32(p[6], p[7]));
    return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20), _mm256_permute2x128_si256(a, b, 0x31));
}

/* nr <= 8 rows of IQ4_NL (the others zero) into values w[b][r][32], magnitudes aw, and the
 * block scales d[b][8]. */
static void nl_decode_rows(int64_t nb, const void *w, size_t wrs, int nr, int8_t *v, uint8_t *av, float *d)
{
    for (int r = 0; r < 8; r++) {
        const lq_block_iq4_nl *x = (const lq_block_iq4_nl *)((const char *)w + (size_t)r * wrs);
        for (int64_t b = 0; b < nb; b++) {
            const __m256i q = r < nr ? decode32(x[b].qs) : _mm256_setzero_si256();
            _mm256_store_si256((__m256i *)(v + (b * 8 + r) * 32), q);
            _mm256_store_si256((__m256i *)(av + (b * 8 + r) * 32), _mm256_sign_epi8(q, q));
            d[b * 8 + r] = r < nr ? rt_h2f(x[b].d) : 0.f;
        }
    }
}

static void gemm_iq4_nl(int wtype, int64_t n, const void *w, size_t wrs, int nr, const void *xa, size_t xrs, int nt,
                        const void *tiles, size_t tile_bytes, void *scratch, float *y, int64_t ldy)
{
    const int64_t nb = n / 32;
    char *buf = aligned_alloc(32, (size_t)nb * (8 * 32 * 2 + 32));
    if (!buf) { /* out of memory inside a kernel: the scalar dot products */
        for (int t = 0; t < nt; t++)
            for (int r = 0; r < nr; r++)
                y[t * ldy + r] = rt_kernels_iq4_scalar.dot[wtype](n, (const char *)w + r * wrs, (const char *)xa + t * xrs);
        return;
    }
    int8_t *v = (int8_t *)buf;
    uint8_t *av = (uint8_t *)buf + nb * 256;
    float *d = (float *)(buf + nb * 512);
    for (int r0 = 0; r0 < nr; r0 += 8) {
        const int rn = nr - r0 < 8 ? nr - r0 : 8;
        nl_decode_rows(nb, (const char *)w + (size_t)r0 * wrs, wrs, rn, v, av, d);
        for (int t = 0; t < nt; t++) {
            const lq_block_q8_0 *x = (const lq_block_q8_0 *)((const char *)xa + (size_t)t * xrs);
            __m256 acc = _mm256_setzero_ps();
            for (int64_t b = 0; b < nb; b++) {
                const __m256i xv = _mm256_loadu_si256((const __m256i *)x[b].qs);
                __m256i p[8];
                for (int r = 0; r < 8; r++) {
                    const __m256i wv = _mm256_load_si256((const __m256i *)(v + (b * 8 + r) * 32));
                    const __m256i aw = _mm256_load_si256((const __m256i *)(av + (b * 8 + r) * 32));
                    p[r] = dot_u8s8(aw, _mm256_sign_epi8(xv, wv));
                }
                const __m256 sc = _mm256_mul_ps(_mm256_load_ps(d + b * 8), _mm256_set1_ps(rt_h2f(x[b].d)));
                acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(reduce8(p)), sc, acc);
            }
            float o[8];
            _mm256_storeu_ps(o, acc);
            for (int r = 0; r < rn; r++)
                y[t * ldy + r0 + r] = o[r];
        }
    }
    free(buf);
}

/* ---------------------------------------------------------------- IQ4_XS */

/* One row of IQ4_XS decoded: values v[n], magnitudes av[n], ls - 32 per sub-block, d per
 * super-block. */
static void xs_decode_row(int64_t n, const lq_block_iq4_xs *x, int8_t *v, uint8_t *av, int32_t *ls, float *d)
{
    for (int64_t b = 0; b < n / 256; b++) {
        for (int j = 0; j < 8; j++) {
            const __m256i q = decode32(x[b].qs + 16 * j);
            _mm256_store_si256((__m256i *)(v + 256 * b + 32 * j), q);
            _mm256_store_si256((__m256i *)(av + 256 * b + 32 * j), _mm256_sign_epi8(q, q));
            ls[8 * b + j] = lq_iq4_xs_scale(&x[b], j);
        }
        d[b] = rt_h2f(x[b].d);
    }
}

static float xs_dot(int64_t nsb, const int8_t *v, const uint8_t *av, const int32_t *ls, const float *d,
                    const lq_block_q8_K *x)
{
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < nsb; b++) {
        __m256i is = _mm256_setzero_si256();
        for (int j = 0; j < 8; j++) {
            const __m256i wv = _mm256_load_si256((const __m256i *)(v + 256 * b + 32 * j));
            const __m256i aw = _mm256_load_si256((const __m256i *)(av + 256 * b + 32 * j));
            const __m256i xv = _mm256_loadu_si256((const __m256i *)(x[b].qs + 32 * j));
            const __m256i p = dot_u8s8(aw, _mm256_sign_epi8(xv, wv));
            is = _mm256_add_epi32(is, _mm256_mullo_epi32(p, _mm256_set1_epi32(ls[8 * b + j])));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d[b] * x[b].d), _mm256_cvtepi32_ps(is), acc);
    }
    return hsum8(acc);
}

static void gemm_iq4_xs(int wtype, int64_t n, const void *w, size_t wrs, int nr, const void *xa, size_t xrs, int nt,
                        const void *tiles, size_t tile_bytes, void *scratch, float *y, int64_t ldy)
{
    const int64_t nsb = n / 256;
    char *buf = aligned_alloc(32, (size_t)n * 2 + (size_t)nsb * 64);
    if (!buf) {
        for (int t = 0; t < nt; t++)
            for (int r = 0; r < nr; r++)
                y[t * ldy + r] = rt_kernels_iq4_scalar.dot[wtype](n, (const char *)w + r * wrs, (const char *)xa + t * xrs);
        return;
    }
    int8_t *v = (int8_t *)buf;
    uint8_t *av = (uint8_t *)buf + n;
    int32_t *ls = (int32_t *)(buf + 2 * n);
    float *d = (float *)(ls + 8 * nsb);
    for (int r = 0; r < nr; r++) {
        xs_decode_row(n, (const lq_block_iq4_xs *)((const char *)w + (size_t)r * wrs), v, av, ls, d);
        for (int t = 0; t < nt; t++)
            y[t * ldy + r] = xs_dot(nsb, v, av, ls, d, (const lq_block_q8_K *)((const char *)xa + (size_t)t * xrs));
    }
    free(buf);
}

/* Single dot products through the same code (one row, one token). */
static float dot_nl(int64_t n, const void *w, const void *xa)
{
    float y;
    gemm_iq4_nl(GGUF_IQ4_NL, n, w, 0, 1, xa, 0, 1, NULL, 0, NULL, &y, 1);
    return y;
}

static float dot_xs(int64_t n, const void *w, const void *xa)
{
    float y;
    gemm_iq4_xs(GGUF_IQ4_XS, n, w, 0, 1, xa, 0, 1, NULL, 0, NULL, &y, 1);
    return y;
}

const rt_kernel_table rt_kernels_iq4_avx2 = {
    .dot = {[GGUF_IQ4_NL] = dot_nl, [GGUF_IQ4_XS] = dot_xs},
    .gemm = {[GGUF_IQ4_NL] = gemm_iq4_nl, [GGUF_IQ4_XS] = gemm_iq4_xs},
};
