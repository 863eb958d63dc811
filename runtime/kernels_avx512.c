/* AVX-512 (F/BW/VL/DQ) + VNNI kernels, used only when the CPU has them. Entries left NULL fall
 * back to the AVX2 table.
 *
 * F32: 4 weight rows × 6 tokens per tile in 24 zmm accumulators, masked tail loads.
 * Q8_0 class (Q4_0, Q5_0, Q8_0): vpdpbusd on |w| and sign(x, w) (exact int32 block sums).
 * Q8_K class (k-quants): two 32-value chunks per 512-bit maddubs/madd step.
 * Both quantized cores run on the rows rt_unpack_row prepared, as the AVX2 ones do. */
#include <immintrin.h>
#include <stdlib.h>

#include "runtime/rt_internal.h"

static inline float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float hsum16(__m512 v)
{
    return hsum8(_mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1)));
}

/* ---------------------------------------------------------------- F32 */

#define F32_TILE(RM, RN)                                                                           \
    static void f32_tile_##RM##x##RN(int64_t n, const float *w, size_t wrs, const float *x,        \
                                     size_t xrs, float *y, int64_t ldy)                            \
    {                                                                                              \
        __m512 acc[RM][RN];                                                                        \
        _Pragma("GCC unroll 8") for (int i = 0; i < RM; i++)                                       \
            _Pragma("GCC unroll 8") for (int j = 0; j < RN; j++) acc[i][j] = _mm512_setzero_ps();  \
        for (int64_t k = 0; k < n; k += 16) {                                                      \
            const __mmask16 mk = n - k >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - k)) - 1); \
            __m512 xv[RN];                                                                         \
            _Pragma("GCC unroll 8") for (int j = 0; j < RN; j++) xv[j] =                           \
                _mm512_maskz_loadu_ps(mk, x + j * xrs + k);                                        \
            _Pragma("GCC unroll 8") for (int i = 0; i < RM; i++)                                   \
            {                                                                                      \
                const __m512 wv = _mm512_maskz_loadu_ps(mk, w + i * wrs + k);                      \
                _Pragma("GCC unroll 8") for (int j = 0; j < RN; j++) acc[i][j] =                   \
                    _mm512_fmadd_ps(wv, xv[j], acc[i][j]);                                         \
            }                                                                                      \
        }                                                                                          \
        _Pragma("GCC unroll 8") for (int i = 0; i < RM; i++)                                       \
            _Pragma("GCC unroll 8") for (int j = 0; j < RN; j++) y[j * ldy + i] = hsum16(acc[i][j]); \
    }
F32_TILE(4, 6)
F32_TILE(1, 6)
F32_TILE(4, 1)
F32_TILE(1, 1)

static void gemm_f32(int64_t n, const void *wv, size_t wrs_b, int nr, const void *xv, size_t xrs_b, int nt,
                     float *y, int64_t ldy)
{
    const float *w = wv, *x = xv;
    const size_t wrs = wrs_b / 4, xrs = xrs_b / 4;
    int t = 0;
    for (; t + 6 <= nt; t += 6) {
        int r = 0;
        for (; r + 4 <= nr; r += 4)
            f32_tile_4x6(n, w + r * wrs, wrs, x + t * xrs, xrs, y + t * ldy + r, ldy);
        for (; r < nr; r++)
            f32_tile_1x6(n, w + r * wrs, wrs, x + t * xrs, xrs, y + t * ldy + r, ldy);
    }
    for (; t < nt; t++) {
        int r = 0;
        for (; r + 4 <= nr; r += 4)
            f32_tile_4x1(n, w + r * wrs, wrs, x + t * xrs, xrs, y + t * ldy + r, ldy);
        for (; r < nr; r++)
            f32_tile_1x1(n, w + r * wrs, wrs, x + t * xrs, xrs, y + t * ldy + r, ldy);
    }
}

static float dot_f32(int64_t n, const void *w, const void *xa)
{
    float y;
    f32_tile_1x1(n, w, 0, xa, 0, &y, 1);
    return y;
}

/* ---------------------------------------------------------------- quantized cores */

#define NT 4

static void core_q8_0(int64_t n, const rt_unpacked *u, int nr, const void *xa, size_t xrs, int nt,
                      const float *xd, float *y, int64_t ldy)
{
    const int64_t nb = n / 32;
    for (int t0 = 0; t0 < nt; t0 += NT) {
        const int tn = nt - t0 < NT ? nt - t0 : NT;
        const lq_block_q8_0 *xb[NT];
        const float *xdj[NT];
        for (int j = 0; j < NT; j++) {
            const size_t tj = (size_t)(t0 + (j < tn ? j : 0));
            xb[j] = (const lq_block_q8_0 *)((const char *)xa + tj * xrs);
            xdj[j] = xd + tj * nb;
        }
        for (int r = 0; r < nr; r++) {
            __m256 acc[NT];
            _Pragma("GCC unroll 8") for (int j = 0; j < NT; j++) acc[j] = _mm256_setzero_ps();
            const int8_t *w = u[r].w;
            const uint8_t *aw = u[r].aw;
            const float *wd = u[r].d;
            for (int64_t b = 0; b < nb; b++) {
                const __m256i wv = _mm256_load_si256((const __m256i *)(w + 32 * b));
                const __m256i av = _mm256_load_si256((const __m256i *)(aw + 32 * b));
                _Pragma("GCC unroll 8") for (int j = 0; j < NT; j++)
                {
                    const __m256i xv = _mm256_loadu_si256((const __m256i *)xb[j][b].qs);
                    const __m256i p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), av, _mm256_sign_epi8(xv, wv));
                    acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(wd[b] * xdj[j][b]), acc[j]);
                }
            }
            for (int j = 0; j < tn; j++)
                y[(t0 + j) * ldy + r] = hsum8(acc[j]);
        }
    }
}

static void core_q8_K(int64_t n, const rt_unpacked *u, int nr, const void *xa, size_t xrs, int nt, float *y,
                      int64_t ldy)
{
    const int64_t nsb = n / 256;
    for (int t0 = 0; t0 < nt; t0 += NT) {
        const int tn = nt - t0 < NT ? nt - t0 : NT;
        const lq_block_q8_K *xb[NT];
        for (int j = 0; j < NT; j++)
            xb[j] = (const lq_block_q8_K *)((const char *)xa + (size_t)(t0 + (j < tn ? j : 0)) * xrs);
        for (int r = 0; r < nr; r++) {
            __m256 acc[NT];
            _Pragma("GCC unroll 8") for (int j = 0; j < NT; j++) acc[j] = _mm256_setzero_ps();
            for (int64_t b = 0; b < nsb; b++) {
                __m512i iacc[NT];
                _Pragma("GCC unroll 8") for (int j = 0; j < NT; j++) iacc[j] = _mm512_setzero_si512();
                const uint8_t *uv = u[r].aw + 256 * b;
                const int16_t *sc = u[r].sc32 + 128 * b;
                _Pragma("GCC unroll 4") for (int k = 0; k < 4; k++)
                {
                    const __m512i wv = _mm512_loadu_si512((const void *)(uv + 64 * k));
                    const __m512i sv = _mm512_loadu_si512((const void *)(sc + 32 * k));
                    _Pragma("GCC unroll 8") for (int j = 0; j < NT; j++)
                    {
                        const __m512i xv = _mm512_loadu_si512((const void *)(xb[j][b].qs + 64 * k));
                        iacc[j] = _mm512_add_epi32(iacc[j], _mm512_madd_epi16(_mm512_maddubs_epi16(wv, xv), sv));
                    }
                }
                const __m256i corr = _mm256_load_si256((const __m256i *)(u[r].corr + 16 * b));
                const __m256i mins = _mm256_load_si256((const __m256i *)(u[r].mins + 16 * b));
                const float d = u[r].d[b], dmin = u[r].m[b];
                _Pragma("GCC unroll 8") for (int j = 0; j < NT; j++)
                {
                    const __m256i bs = _mm256_loadu_si256((const __m256i *)xb[j][b].bsums);
                    const __m256i i8 = _mm256_add_epi32(_mm512_castsi512_si256(iacc[j]),
                                                        _mm512_extracti64x4_epi64(iacc[j], 1));
                    const __m256i isum = _mm256_sub_epi32(i8, _mm256_madd_epi16(bs, corr));
                    const float dx = xb[j][b].d;
                    acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(d * dx), acc[j]);
                    acc[j] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(bs, mins)), _mm256_set1_ps(dmin * dx),
                                              acc[j]);
                }
            }
            for (int j = 0; j < tn; j++)
                y[(t0 + j) * ldy + r] = hsum8(acc[j]);
        }
    }
}

/* Unpack the row block and run the class core; the Q8_1 class stays on the AVX2 kernels. */
static void gemm_quant(int wtype, int64_t n, const void *w, size_t wrs, int nr, const void *xa, size_t xrs, int nt,
                       float *y, int64_t ldy)
{
    const int cls = rt_unpack_class(wtype);
    const size_t us = rt_unpacked_size(wtype, n);
    const int64_t nb = n / 32;
    const size_t xd_n = cls == RT_CLS_Q8_0 ? (size_t)nt * nb : 0;
    if (nr > 64)
        nr = 64; /* the driver passes at most RT_ROW_BLOCK rows */
    char *buf = aligned_alloc(64, ((us * (size_t)nr + xd_n * 4 + 63) & ~(size_t)63) + 64);
    if (!buf) {
        for (int t = 0; t < nt; t++)
            for (int r = 0; r < nr; r++)
                y[t * ldy + r] = rt_kernels_scalar.dot[wtype](n, (const char *)w + r * wrs, (const char *)xa + t * xrs);
        return;
    }
    rt_unpacked u[64];
    for (int r = 0; r < nr; r++)
        rt_unpack_row(wtype, (const char *)w + (size_t)r * wrs, n, buf + (size_t)r * us, &u[r]);
    if (cls == RT_CLS_Q8_0) {
        float *xd = (float *)(buf + us * (size_t)nr);
        for (int t = 0; t < nt; t++) {
            const lq_block_q8_0 *xb = (const lq_block_q8_0 *)((const char *)xa + (size_t)t * xrs);
            for (int64_t b = 0; b < nb; b++)
                xd[(size_t)t * nb + b] = rt_h2f(xb[b].d);
        }
        core_q8_0(n, u, nr, xa, xrs, nt, xd, y, ldy);
    } else {
        core_q8_K(n, u, nr, xa, xrs, nt, y, ldy);
    }
    free(buf);
}

#define GEMM_Q(T)                                                                                  \
    static void gemm_##T(int64_t n, const void *w, size_t wrs, int nr, const void *xa, size_t xrs, \
                         int nt, float *y, int64_t ldy)                                            \
    {                                                                                              \
        gemm_quant(GGUF_##T, n, w, wrs, nr, xa, xrs, nt, y, ldy);                                  \
    }                                                                                              \
    static float dotq_##T(int64_t n, const void *w, const void *xa)                                \
    {                                                                                              \
        float y;                                                                                   \
        gemm_quant(GGUF_##T, n, w, 0, 1, xa, 0, 1, &y, 1);                                         \
        return y;                                                                                  \
    }
GEMM_Q(Q4_0)
GEMM_Q(Q5_0)
GEMM_Q(Q8_0)
GEMM_Q(Q2_K)
GEMM_Q(Q3_K)
GEMM_Q(Q4_K)
GEMM_Q(Q5_K)
GEMM_Q(Q6_K)

const rt_kernel_table rt_kernels_avx512 = {
    .dot = {
        [GGUF_F32] = dot_f32,
        [GGUF_Q4_0] = dotq_Q4_0, [GGUF_Q5_0] = dotq_Q5_0, [GGUF_Q8_0] = dotq_Q8_0, [GGUF_Q2_K] = dotq_Q2_K,
        [GGUF_Q3_K] = dotq_Q3_K, [GGUF_Q4_K] = dotq_Q4_K, [GGUF_Q5_K] = dotq_Q5_K, [GGUF_Q6_K] = dotq_Q6_K,
    },
    .gemm = {
        [GGUF_F32] = gemm_f32,
        [GGUF_Q4_0] = gemm_Q4_0, [GGUF_Q5_0] = gemm_Q5_0, [GGUF_Q8_0] = gemm_Q8_0, [GGUF_Q2_K] = gemm_Q2_K,
        [GGUF_Q3_K] = gemm_Q3_K, [GGUF_Q4_K] = gemm_Q4_K, [GGUF_Q5_K] = gemm_Q5_K, [GGUF_Q6_K] = gemm_Q6_K,
    },
};
