/* AVX2 + FMA + F16C kernels (this file is compiled with -mavx2 -mfma -mf16c and only called
 * when the CPU has them).
 *
 * F32: register-tiled dot products, 4 weight rows × 3 tokens per tile.
 * F16/BF16: the same tiles on weights and activations widened to f32 (exact) beforehand.
 * Quantized types: each row block is unpacked once (rt_unpack_row) and one integer core per
 * activation class runs it against every token: 8-bit products summed with maddubs/madd
 * (exact integers), scaled per block in f32 — the same arithmetic as ggml's AVX2 path. */
#include <immintrin.h>
#include <stddef.h>
#include <stdlib.h>

#include "runtime/rt_internal.h"

/* kernels_avxvnni.c compiles this file again with RT_AVX2_VNNI set: the 4-byte dot products
 * then use AVX-VNNI's vpdpbusd (exact, the same integers as maddubs + madd). */
#ifdef RT_AVX2_VNNI
#define RT_AVX2_TABLE rt_kernels_avxvnni
/* 8 lanes of sum_{i<4} a[4l+i] * b[4l+i], a unsigned, b signed bytes */
static inline __m256i dot_u8s8(__m256i a, __m256i b) { return _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), a, b); }
#else
#define RT_AVX2_TABLE rt_kernels_avx2
static inline __m256i dot_u8s8(__m256i a, __m256i b)
{
    return _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), _mm256_set1_epi16(1)); /* no saturation: |a*b| pairs < 2^15 */
}
#endif

static inline float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* ---------------------------------------------------------------- activation converters */

static inline __m256i q8_pack(__m256 v0, __m256 v1, __m256 v2, __m256 v3)
{
    __m256i i0 = _mm256_cvtps_epi32(_mm256_round_ps(v0, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    __m256i i1 = _mm256_cvtps_epi32(_mm256_round_ps(v1, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    __m256i i2 = _mm256_cvtps_epi32(_mm256_round_ps(v2, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    __m256i i3 = _mm256_cvtps_epi32(_mm256_round_ps(v3, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    __m256i a = _mm256_packs_epi32(i0, i1);
    __m256i b = _mm256_packs_epi32(i2, i3);
    __m256i r = _mm256_packs_epi16(a, b);
    /* packs interleave 128-bit lanes: restore element order */
    return _mm256_permutevar8x32_epi32(r, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

static inline float q8_block(const float *x, __m256i *q)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8), v2 = _mm256_loadu_ps(x + 16),
           v3 = _mm256_loadu_ps(x + 24);
    __m256 mx = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1)),
                              _mm256_max_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3)));
    __m128 m4 = _mm_max_ps(_mm256_extractf128_ps(mx, 1), _mm256_castps256_ps128(mx));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float amax = _mm_cvtss_f32(m4);
    const float id = amax != 0.f ? 127.f / amax : 0.f;
    const __m256 mul = _mm256_set1_ps(id);
    *q = q8_pack(_mm256_mul_ps(v0, mul), _mm256_mul_ps(v1, mul), _mm256_mul_ps(v2, mul), _mm256_mul_ps(v3, mul));
    return amax / 127.f;
}

static void quant_q8_0(const float *x, void *dst, int64_t n)
{
    lq_block_q8_0 *y = dst;
    for (int64_t b = 0; b < n / 32; b++) {
        __m256i q;
        y[b].d = rt_f2h(q8_block(x + 32 * b, &q));
        _mm256_storeu_si256((__m256i *)y[b].qs, q);
    }
}

static void quant_q8_1(const float *x, void *dst, int64_t n)
{
    lq_block_q8_1 *y = dst;
    for (int64_t b = 0; b < n / 32; b++) {
        __m256i q;
        const float d = q8_block(x + 32 * b, &q);
        y[b].d = rt_f2h(d);
        _mm256_storeu_si256((__m256i *)y[b].qs, q);
        __m256i s16 = _mm256_maddubs_epi16(_mm256_set1_epi8(1), q);
        __m256i s32 = _mm256_madd_epi16(s16, _mm256_set1_epi16(1));
        __m128i s = _mm_add_epi32(_mm256_castsi256_si128(s32), _mm256_extracti128_si256(s32, 1));
        s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
        s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
        y[b].s = rt_f2h(d * (float)_mm_cvtsi128_si32(s));
    }
}


/* Q8_K, byte-identical to the scalar converter: the first value of largest magnitude maps to
 * -127, q = min(127, round-half-even(x * -127/max)), 16-value sums. */
static void quant_q8_K(const float *x, void *dst, int64_t n)
{
    lq_block_q8_K *y = dst;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t b = 0; b < n / 256; b++, x += 256) {
        __m256 mx = _mm256_setzero_ps();
        for (int j = 0; j < 256; j += 8)
            mx = _mm256_max_ps(mx, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)));
        __m128 m4 = _mm_max_ps(_mm256_extractf128_ps(mx, 1), _mm256_castps256_ps128(mx));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        if (amax == 0.f) {
            memset(&y[b], 0, sizeof y[b]);
            continue;
        }
        float max = amax;
        for (int j = 0; j < 256; j++)
            if (fabsf(x[j]) == amax) {
                max = x[j];
                break;
            }
        const float iscale = -127.f / max;
        const __m256 mul = _mm256_set1_ps(iscale);
        for (int j = 0; j < 256; j += 32) {
            __m256i q = q8_pack(_mm256_mul_ps(_mm256_loadu_ps(x + j), mul), _mm256_mul_ps(_mm256_loadu_ps(x + j + 8), mul),
                                _mm256_mul_ps(_mm256_loadu_ps(x + j + 16), mul),
                                _mm256_mul_ps(_mm256_loadu_ps(x + j + 24), mul));
            _mm256_storeu_si256((__m256i *)(y[b].qs + j), q);
            /* sums of each 16 values: maddubs with ones gives pair sums, madd/hadd the rest */
            __m256i s16 = _mm256_maddubs_epi16(_mm256_set1_epi8(1), q);
            __m256i s32 = _mm256_madd_epi16(s16, _mm256_set1_epi16(1)); /* 8 sums of 4 */
            __m256i h = _mm256_hadd_epi32(s32, s32);                  /* lane: s0+s1, s2+s3 | s4+s5, s6+s7 */
            h = _mm256_hadd_epi32(h, h);
            y[b].bsums[j / 16] = (int16_t)_mm256_extract_epi32(h, 0);
            y[b].bsums[j / 16 + 1] = (int16_t)_mm256_extract_epi32(h, 4);
        }
        y[b].d = 1 / iscale;
    }
}

static void quant_f16(const float *x, void *dst, int64_t n)
{
    uint16_t *y = dst;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++)
        y[i] = rt_f2h(x[i]);
}

/* ---------------------------------------------------------------- float types */

static float dot_f32(int64_t n, const void *w, const void *xa)
{
    const float *a = w, *b = xa;
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    float s = hsum8(_mm256_add_ps(s0, s1));
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static float dot_f16(int64_t n, const void *w, const void *xa)
{
    const uint16_t *a = w, *b = xa;
    __m256 s0 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(a + i))),
                             _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(b + i))), s0);
    float s = hsum8(s0);
    for (; i < n; i++)
        s += rt_h2f(a[i]) * rt_h2f(b[i]);
    return s;
}

static inline __m256 bf16x8(const uint16_t *p)
{
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}

static float dot_bf16(int64_t n, const void *w, const void *xa)
{
    const uint16_t *a = w, *b = xa;
    __m256 s0 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(bf16x8(a + i), bf16x8(b + i), s0);
    float s = hsum8(s0);
    for (; i < n; i++)
        s += rt_bf2f(a[i]) * rt_bf2f(b[i]);
    return s;
}

/* RM weight rows × RN tokens of F32, n a multiple of 8 handled in SIMD, the rest scalar. */
#define F32_TILE(RM, RN)                                                                           \
    static void f32_tile_##RM##x##RN(int64_t n, const float *w, size_t wrs, const float *x,        \
                                     size_t xrs, float *y, int64_t ldy)                            \
    {                                                                                              \
        __m256 acc[RM][RN];                                                                        \
        _Pragma("GCC unroll 16")                                                                  \
        for (int i = 0; i < RM; i++)                                                               \
            _Pragma("GCC unroll 16")                                                              \
            for (int j = 0; j < RN; j++)                                                           \
                acc[i][j] = _mm256_setzero_ps();                                                   \
        int64_t k = 0;                                                                             \
        for (; k + 8 <= n; k += 8) {                                                               \
            __m256 xv[RN];                                                                         \
            _Pragma("GCC unroll 16")                                                              \
            for (int j = 0; j < RN; j++)                                                           \
                xv[j] = _mm256_loadu_ps(x + j * xrs + k);                                          \
            _Pragma("GCC unroll 16")                                                              \
            for (int i = 0; i < RM; i++) {                                                         \
                __m256 wv = _mm256_loadu_ps(w + i * wrs + k);                                      \
                _Pragma("GCC unroll 16")                                                          \
                for (int j = 0; j < RN; j++)                                                       \
                    acc[i][j] = _mm256_fmadd_ps(wv, xv[j], acc[i][j]);                             \
            }                                                                                      \
        }                                                                                          \
        _Pragma("GCC unroll 16")                                                                  \
        for (int i = 0; i < RM; i++)                                                               \
            _Pragma("GCC unroll 16")                                                              \
            for (int j = 0; j < RN; j++) {                                                         \
                float s = hsum8(acc[i][j]);                                                        \
                for (int64_t kk = k; kk < n; kk++)                                                 \
                    s += w[i * wrs + kk] * x[j * xrs + kk];                                        \
                y[j * ldy + i] = s;                                                                \
            }                                                                                      \
    }
F32_TILE(4, 3)
F32_TILE(1, 3)
F32_TILE(4, 1)
F32_TILE(1, 1)

static void gemm_f32(int wtype, int64_t n, const void *wv, size_t wrs_b, int nr, const void *xv, size_t xrs_b,
                     int nt, const void *tiles, size_t tile_bytes, void *scratch, float *y, int64_t ldy)
{
    const float *w = wv, *x = xv;
    const size_t wrs = wrs_b / 4, xrs = xrs_b / 4;
    int t = 0;
    for (; t + 3 <= nt; t += 3) {
        int r = 0;
        for (; r + 4 <= nr; r += 4)
            f32_tile_4x3(n, w + r * wrs, wrs, x + t * xrs, xrs, y + t * ldy + r, ldy);
        for (; r < nr; r++)
            f32_tile_1x3(n, w + r * wrs, wrs, x + t * xrs, xrs, y + t * ldy + r, ldy);
    }
    for (; t < nt; t++) {
        int r = 0;
        for (; r + 4 <= nr; r += 4)
            f32_tile_4x1(n, w + r * wrs, wrs, x + t * xrs, xrs, y + t * ldy + r, ldy);
        for (; r < nr; r++)
            f32_tile_1x1(n, w + r * wrs, wrs, x + t * xrs, xrs, y + t * ldy + r, ldy);
    }
}

/* F16/BF16 as llamafile's sgemm sums them in llama.cpp's AVX2 build, which is dot_f16 /
 * dot_bf16's order: per output one 8-lane fma chain over k, then hsum8, the tail (n % 8)
 * added in f32. Widening is exact, so the row block's weights are widened once per call into
 * the thread's scratch and each tile of activations once per matmul (prep); the F32 tiles then
 * sum every output in that same order. */
static int flt16(int wtype) { return wtype == GGUF_F16 || wtype == GGUF_BF16; }

static void widen_rows(int wtype, int64_t n, const void *src, size_t rs, int nrows, float *dst)
{
    for (int j = 0; j < nrows; j++) {
        const uint16_t *a = (const uint16_t *)((const char *)src + (size_t)j * rs);
        float *o = dst + (size_t)j * (size_t)n;
        int64_t k = 0;
        if (wtype == GGUF_F16) {
            for (; k + 8 <= n; k += 8)
                _mm256_storeu_ps(o + k, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(a + k))));
            for (; k < n; k++)
                o[k] = rt_h2f(a[k]);
        } else {
            for (; k + 8 <= n; k += 8)
                _mm256_storeu_ps(o + k, bf16x8(a + k));
            for (; k < n; k++)
                o[k] = rt_bf2f(a[k]);
        }
    }
}

static void prep_widen(int wtype, int64_t n, const void *xa, size_t xrs, int nt, void *tile)
{
    if (flt16(wtype))
        widen_rows(wtype, n, xa, xrs, nt, tile);
}

static size_t q80_tile_size(int64_t n);
static size_t tile_size(int wtype, int64_t n)
{
    if (flt16(wtype))
        return (size_t)RT_TOK_TILE * (size_t)n * 4;
    return rt_unpack_class(wtype) == RT_CLS_Q8_0 ? q80_tile_size(n) : 0;
}
static size_t scratch_size(int wtype, int64_t n) { return flt16(wtype) ? (size_t)RT_ROW_BLOCK * (size_t)n * 4 : 0; }

static void gemm_flt16(int wtype, int64_t n, const void *w, size_t wrs, int nr, const void *xa, size_t xrs, int nt,
                       const void *tiles, size_t tile_bytes, void *scratch, float *y, int64_t ldy)
{
    if (!tiles || !scratch || nr > RT_ROW_BLOCK || tile_bytes != tile_size(wtype, n)) {
        const rt_dot_fn dot = wtype == GGUF_F16 ? dot_f16 : dot_bf16;
        for (int t = 0; t < nt; t++)
            for (int r = 0; r < nr; r++)
                y[t * ldy + r] = dot(n, (const char *)w + (size_t)r * wrs, (const char *)xa + (size_t)t * xrs);
        return;
    }
    widen_rows(wtype, n, w, wrs, nr, scratch);
    /* the tiles are RT_TOK_TILE rows of n floats each, back to back: one run over all tokens */
    gemm_f32(GGUF_F32, n, scratch, (size_t)n * 4, nr, tiles, (size_t)n * 4, nt, NULL, 0, NULL, y, ldy);
}

/* ---------------------------------------------------------------- quantized cores */

#define NT 4 /* tokens per tile */

/* Q8_0 class: w signed, aw = |w|; per block f32 scale. xd: block scales of the tokens. */
static void core_q8_0(int64_t n, const rt_unpacked *u, int nr, const int8_t *xq, size_t xts, size_t xbs, int nt,
                      const float *xd, float *y, int64_t ldy)
{
    const int64_t nb = n / 32;
    for (int t0 = 0; t0 < nt; t0 += NT) {
        const int tn = nt - t0 < NT ? nt - t0 : NT;
        const int8_t *xb[NT];
        const float *xdj[NT];
        _Pragma("GCC unroll 16")
        for (int j = 0; j < NT; j++) {
            const size_t tj = (size_t)(t0 + (j < tn ? j : 0));
            xb[j] = xq + tj * xts;
            xdj[j] = xd + tj * nb;
        }
        for (int r = 0; r < nr; r++) {
            __m256 acc[NT];
            _Pragma("GCC unroll 16")
            for (int j = 0; j < NT; j++)
                acc[j] = _mm256_setzero_ps();
            const int8_t *w = u[r].w;
            const uint8_t *aw = u[r].aw;
            const float *wd = u[r].d;
            for (int64_t b = 0; b < nb; b++) {
                const __m256i wv = _mm256_load_si256((const __m256i *)(w + 32 * b));
                const __m256i av = _mm256_load_si256((const __m256i *)(aw + 32 * b));
                _Pragma("GCC unroll 16")
                for (int j = 0; j < NT; j++) {
                    const __m256i xv = _mm256_loadu_si256((const __m256i *)(xb[j] + (size_t)b * xbs));
                    const __m256i p = dot_u8s8(av, _mm256_sign_epi8(xv, wv));
                    acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p),
                                             _mm256_set1_ps(wd[b] * xdj[j][b]), acc[j]);
                }
            }
            _Pragma("GCC unroll 16")
            for (int j = 0; j < tn; j++)
                y[(t0 + j) * ldy + r] = hsum8(acc[j]);
        }
    }
}

/* Q8_1 class: aw unsigned; per block d and m (times the activation's d*sum). */
static void core_q8_1(int64_t n, const rt_unpacked *u, int nr, const void *xa, size_t xrs, int nt,
                      const float *xd, float *y, int64_t ldy)
{
    const int64_t nb = n / 32;
    for (int t = 0; t < nt; t++) {
        const lq_block_q8_1 *xb = (const lq_block_q8_1 *)((const char *)xa + (size_t)t * xrs);
        const float *d = xd + (size_t)t * 2 * nb, *s = d + nb;
        for (int r = 0; r < nr; r++) {
            __m256 acc = _mm256_setzero_ps();
            float accm = 0;
            for (int64_t b = 0; b < nb; b++) {
                const __m256i av = _mm256_load_si256((const __m256i *)(u[r].aw + 32 * b));
                const __m256i xv = _mm256_loadu_si256((const __m256i *)xb[b].qs);
                const __m256i p = dot_u8s8(av, xv);
                acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(u[r].d[b] * d[b]), acc);
                accm = fmaf(u[r].m[b], s[b], accm); /* ggml's build contracts m*s + summs */
            }
            y[t * ldy + r] = hsum8(acc) + accm;
        }
    }
}

/* Q8_K class (k-quants), as ggml's AVX2 vec_dot for each type sums (lane l of the 8-lane
 * integer sums holds bytes 4l..4l+3 of every 32 values, times their sub-block scale):
 *   Q6_K  isum = lanes - bsum pairs · (32 sc) (corr), acc += f32(isum) * (d_w d_x)
 *   Q3_K  the -4 offsets inside the lanes (w - 4 with w = 0..7), acc += f32(lanes) * (d_w d_x)
 *   Q2_K  acc -= f32(bsum pairs · mins) * (dmin_w d_x) first, then acc += f32(lanes) * (d_w d_x)
 *   Q5_K  acc += f32(lanes) * (d_w d_x); summs = fma(-(dmin_w d_x), sum_j m_j bsum32_j, summs)
 * and the result hsum(acc) (+ summs). */
static void core_q8_K(int wtype, int64_t n, const rt_unpacked *u, int nr, const void *xa, size_t xrs, int nt,
                      float *y, int64_t ldy)
{
    const int64_t nsb = n / 256;
    const __m256i four = _mm256_set1_epi8(4);
    for (int t0 = 0; t0 < nt; t0 += NT) {
        const int tn = nt - t0 < NT ? nt - t0 : NT;
        const lq_block_q8_K *xb[NT];
        _Pragma("GCC unroll 16")
        for (int j = 0; j < NT; j++)
            xb[j] = (const lq_block_q8_K *)((const char *)xa + (size_t)(t0 + (j < tn ? j : 0)) * xrs);
        for (int r = 0; r < nr; r++) {
            __m256 acc[NT];
            float summs[NT];
            _Pragma("GCC unroll 16")
            for (int j = 0; j < NT; j++) {
                acc[j] = _mm256_setzero_ps();
                summs[j] = 0;
            }
            for (int64_t b = 0; b < nsb; b++) {
                __m256i iacc[NT];
                _Pragma("GCC unroll 16")
                for (int j = 0; j < NT; j++)
                    iacc[j] = _mm256_setzero_si256();
                const uint8_t *uv = u[r].aw + 256 * b;
                const int16_t *sc = u[r].sc32 + 128 * b;
                _Pragma("GCC unroll 16")
                for (int k = 0; k < 8; k++) {
                    const __m256i wv = _mm256_load_si256((const __m256i *)(uv + 32 * k));
                    const __m256i sv = _mm256_load_si256((const __m256i *)(sc + 16 * k));
                    _Pragma("GCC unroll 16")
                    for (int j = 0; j < NT; j++) {
                        const __m256i xv = _mm256_loadu_si256((const __m256i *)(xb[j][b].qs + 32 * k));
                        __m256i p16 = _mm256_maddubs_epi16(wv, xv);
                        if (wtype == GGUF_Q3_K)
                            p16 = _mm256_sub_epi16(p16, _mm256_maddubs_epi16(four, xv));
                        iacc[j] = _mm256_add_epi32(iacc[j], _mm256_madd_epi16(p16, sv));
                    }
                }
                const __m256i corr = _mm256_load_si256((const __m256i *)(u[r].corr + 16 * b));
                const __m256i mins = _mm256_load_si256((const __m256i *)(u[r].mins + 16 * b));
                const float d = u[r].d[b], dmin = u[r].m[b];
                _Pragma("GCC unroll 16")
                for (int j = 0; j < NT; j++) {
                    const __m256i bs = _mm256_loadu_si256((const __m256i *)xb[j][b].bsums);
                    const float dx = xb[j][b].d;
                    if (wtype == GGUF_Q2_K)
                        acc[j] = _mm256_fnmadd_ps(_mm256_set1_ps(dmin * dx), _mm256_cvtepi32_ps(_mm256_madd_epi16(bs, mins)),
                                                  acc[j]);
                    const __m256i isum = wtype == GGUF_Q6_K ? _mm256_sub_epi32(iacc[j], _mm256_madd_epi16(bs, corr)) : iacc[j];
                    acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(d * dx), acc[j]);
                    if (wtype == GGUF_Q5_K) {
                        const __m256i pm = _mm256_madd_epi16(bs, mins);
                        __m128i h = _mm_add_epi32(_mm256_castsi256_si128(pm), _mm256_extracti128_si256(pm, 1));
                        h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4E));
                        h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xB1));
                        summs[j] = fmaf(-(dx * dmin), (float)_mm_cvtsi128_si32(h), summs[j]);
                    }
                }
            }
            _Pragma("GCC unroll 16")
            for (int j = 0; j < tn; j++)
                y[(t0 + j) * ldy + r] = hsum8(acc[j]) + summs[j];
        }
    }
}

static inline int hsum_i32x8(__m256i v)
{
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4E));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xB1));
    return _mm_cvtsi128_si32(h);
}

/* Q4_K as llama.cpp's repacked Q4_K GEMM sums it on x86 (see kernels_avx512.c): per 64
 * values acc = fma(f32(sc0 dot0 + sc1 dot1), d_w d_x, acc), accm likewise with the mins,
 * result acc - accm; one scalar chain per output. */
static void core_q4_K(int64_t n, const rt_unpacked *u, int nr, const void *xa, size_t xrs, int nt, float *y,
                      int64_t ldy)
{
    const int64_t nsb = n / 256;
    for (int t = 0; t < nt; t++) {
        const lq_block_q8_K *xb = (const lq_block_q8_K *)((const char *)xa + (size_t)t * xrs);
        for (int r = 0; r < nr; r++) {
            float acc = 0, accm = 0;
            for (int64_t b = 0; b < nsb; b++) {
                const uint8_t *uv = u[r].aw + 256 * b;
                const int16_t *sc = u[r].sc32 + 128 * b, *mn = u[r].mins + 16 * b;
                const float dd = u[r].d[b] * xb[b].d, dm = u[r].m[b] * xb[b].d;
                const int16_t *bs = xb[b].bsums;
                for (int h = 0; h < 4; h++) {
                    __m256i ia = _mm256_setzero_si256();
                    for (int k = 2 * h; k < 2 * h + 2; k++) {
                        const __m256i wv = _mm256_load_si256((const __m256i *)(uv + 32 * k));
                        const __m256i xv = _mm256_loadu_si256((const __m256i *)(xb[b].qs + 32 * k));
                        ia = _mm256_add_epi32(ia, _mm256_madd_epi16(_mm256_maddubs_epi16(wv, xv),
                                                                    _mm256_load_si256((const __m256i *)(sc + 16 * k))));
                    }
                    const int im = mn[4 * h] * (bs[4 * h] + bs[4 * h + 1]) + mn[4 * h + 2] * (bs[4 * h + 2] + bs[4 * h + 3]);
                    acc = fmaf((float)hsum_i32x8(ia), dd, acc);
                    accm = fmaf((float)im, dm, accm);
                }
            }
            y[t * ldy + r] = acc - accm;
        }
    }
}

/* Q4_0 as llama.cpp's repacked Q4_0 GEMM sums it on x86: one chain per output,
 * acc = fma(f32(block dot), d_w d_x, acc). */
static void core_q4_0(int64_t n, const rt_unpacked *u, int nr, const int8_t *xq, size_t xts, size_t xbs, int nt,
                      const float *xd, float *y, int64_t ldy)
{
    const int64_t nb = n / 32;
    for (int t = 0; t < nt; t++) {
        const int8_t *xb = xq + (size_t)t * xts;
        for (int r = 0; r < nr; r++) {
            float acc = 0;
            for (int64_t b = 0; b < nb; b++) {
                const __m256i wv = _mm256_load_si256((const __m256i *)(u[r].w + 32 * b));
                const __m256i av = _mm256_load_si256((const __m256i *)(u[r].aw + 32 * b));
                const __m256i xv = _mm256_loadu_si256((const __m256i *)(xb + (size_t)b * xbs));
                acc = fmaf((float)hsum_i32x8(dot_u8s8(av, _mm256_sign_epi8(xv, wv))), u[r].d[b] * xd[(size_t)t * nb + b], acc);
            }
            y[t * ldy + r] = acc;
        }
    }
}

/* Lane l := the sum of the 8 int32 lanes of p[l] (exact). */
static inline __m256i hsum_i32x8x8(const __m256i p[8])
{
    const __m256i ab = _mm256_hadd_epi32(_mm256_hadd_epi32(p[0], p[1]), _mm256_hadd_epi32(p[2], p[3]));
    const __m256i cd = _mm256_hadd_epi32(_mm256_hadd_epi32(p[4], p[5]), _mm256_hadd_epi32(p[6], p[7]));
    return _mm256_add_epi32(_mm256_permute2x128_si256(ab, cd, 0x20), _mm256_permute2x128_si256(ab, cd, 0x31));
}

/* core_q4_0 for 8 rows at once, lane l = row l: the same chain per output (the block dot
 * summed exactly, acc = fma(f32(dot), d_w d_x, acc)), 8 outputs per vector. tb: dT [nb][8] the
 * rows' block scales, then pnl [nb][8][8] int32 = bytes 4g..4g+3 of each row as u = w + 8. The
 * block dot is sum(u x) - 8 sum(x): 8 maddubs of the rows' 4 bytes by the broadcast activation
 * bytes summed in int16 (|sum| <= 8 * 2 * 15 * 127 < 2^15, exact), one madd to int32. */
static void core_q4_0_x8(int64_t n, const float *tb, const int8_t *xq, size_t xts, size_t xbs, int nt,
                         const float *xd, float *y, int64_t ldy)
{
    const int64_t nb = n / 32;
    const float *dT = tb;
    const int32_t *pnl = (const int32_t *)(tb + 8 * nb);
    const __m256i ones16 = _mm256_set1_epi16(1), ones8 = _mm256_set1_epi8(1);
    for (int t = 0; t < nt; t++) {
        const int8_t *xb = xq + (size_t)t * xts;
        __m256 acc = _mm256_setzero_ps();
        for (int64_t b = 0; b < nb; b++) {
            const int8_t *xj = xb + (size_t)b * xbs;
            const int32_t *pj = pnl + 64 * b;
            __m256i p16 = _mm256_setzero_si256();
            _Pragma("GCC unroll 8")
            for (int g = 0; g < 8; g++) {
                int32_t x4;
                memcpy(&x4, xj + 4 * g, 4);
                p16 = _mm256_add_epi16(p16, _mm256_maddubs_epi16(_mm256_load_si256((const __m256i *)(pj + 8 * g)),
                                                                 _mm256_set1_epi32(x4)));
            }
            const int sx = hsum_i32x8(_mm256_madd_epi16(_mm256_maddubs_epi16(ones8, _mm256_loadu_si256((const __m256i *)xj)), ones16));
            const __m256i dot = _mm256_sub_epi32(_mm256_madd_epi16(p16, ones16), _mm256_set1_epi32(8 * sx));
            const __m256 dd = _mm256_mul_ps(_mm256_load_ps(dT + 8 * b), _mm256_set1_ps(xd[(size_t)t * nb + b]));
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), dd, acc);
        }
        _mm256_storeu_ps(y + t * ldy, acc);
    }
}

/* core_q4_K for 8 rows at once, lane l = row l, each output summed as core_q4_K sums it.
 * tb: dT [nsb][8], mT [nsb][8] (d, dmin), mn [nsb][4][8] int32 = the pair (m_{4h}, m_{4h+2}) as
 * two int16 (one madd with the (B0, B1) bsum pair gives im exactly), scT [nsb][8][8] int32 =
 * the sub-block scale in both int16 halves, pnl [nsb][64][8] int32 = bytes 4g..4g+3 of each
 * row. Per sub-block the 8 maddubs of the rows' 4 bytes by the broadcast activation bytes are
 * summed in int16 (|sum| <= 8 * 2 * 15 * 127 < 2^15, exact), then scaled by one madd: the
 * same integer sc_a dot_a + sc_b dot_b per 64 values, without horizontal sums. */
static void core_q4_K_x8(int64_t n, const rt_unpacked *u, const float *tb, const void *xa, size_t xrs, int nt,
                         float *y, int64_t ldy)
{
    const int64_t nsb = n / 256;
    const float *dT = tb, *mT = tb + 8 * nsb;
    const int32_t *mn = (const int32_t *)(tb + 16 * nsb), *scT = mn + 32 * nsb, *pnl = scT + 64 * nsb;
    (void)u;
    for (int t = 0; t < nt; t++) {
        const lq_block_q8_K *xb = (const lq_block_q8_K *)((const char *)xa + (size_t)t * xrs);
        __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
        for (int64_t b = 0; b < nsb; b++) {
            const __m256 xdv = _mm256_set1_ps(xb[b].d);
            const __m256 dd = _mm256_mul_ps(_mm256_load_ps(dT + 8 * b), xdv);
            const __m256 dm = _mm256_mul_ps(_mm256_load_ps(mT + 8 * b), xdv);
            const int16_t *bs = xb[b].bsums;
            const int8_t *xq = xb[b].qs;
            const int32_t *pb = pnl + 512 * b;
            for (int h = 0; h < 4; h++) {
                __m256i ia = _mm256_setzero_si256();
                _Pragma("GCC unroll 2")
                for (int s2 = 0; s2 < 2; s2++) {
                    const int j = 2 * h + s2;
                    const int32_t *pj = pb + 64 * j;
                    const int8_t *xj = xq + 32 * j;
                    __m256i p16 = _mm256_setzero_si256();
                    _Pragma("GCC unroll 8")
                    for (int g = 0; g < 8; g++) {
                        int32_t x4;
                        memcpy(&x4, xj + 4 * g, 4);
                        p16 = _mm256_add_epi16(p16, _mm256_maddubs_epi16(_mm256_load_si256((const __m256i *)(pj + 8 * g)),
                                                                         _mm256_set1_epi32(x4)));
                    }
                    ia = _mm256_add_epi32(ia, _mm256_madd_epi16(p16, _mm256_load_si256((const __m256i *)(scT + 64 * b + 8 * j))));
                }
                const int b0 = bs[4 * h] + bs[4 * h + 1], b1 = bs[4 * h + 2] + bs[4 * h + 3];
                const __m256i im = _mm256_madd_epi16(_mm256_load_si256((const __m256i *)(mn + 32 * b + 8 * h)),
                                                     _mm256_set1_epi32((int32_t)((uint32_t)(uint16_t)b0 | (uint32_t)(uint16_t)b1 << 16)));
                acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ia), dd, acc);
                accm = _mm256_fmadd_ps(_mm256_cvtepi32_ps(im), dm, accm);
            }
        }
        _mm256_storeu_ps(y + t * ldy, _mm256_sub_ps(acc, accm));
    }
}

/* The Q4_0 core (the x8 one with tb, else core_q4_0 on u) over the prepped tiles when given,
 * else over the raw rows. */
static void q4_0_over(int64_t n, const float *tb, const rt_unpacked *u, int nr, int nt, const int8_t *xq, size_t xts,
                      size_t xbs, const float *xd, const void *tiles, size_t tile_bytes, float *y, int64_t ldy)
{
    const size_t nb = (size_t)(n / 32);
    const int step = tiles ? RT_TOK_TILE : nt;
    for (int t0 = 0; t0 < nt; t0 += step) {
        const int tn = nt - t0 < step ? nt - t0 : step;
        const int8_t *q = xq;
        const float *d = xd;
        size_t ts = xts, bs = xbs;
        if (tiles) {
            q = (const int8_t *)tiles + (size_t)(t0 / RT_TOK_TILE) * tile_bytes;
            d = (const float *)(q + RT_TOK_TILE * nb * 32);
            ts = nb * 32, bs = 32;
        }
        if (tb)
            core_q4_0_x8(n, tb, q, ts, bs, tn, d, y + (size_t)t0 * ldy, ldy);
        else
            core_q4_0(n, u, nr, q, ts, bs, tn, d, y + (size_t)t0 * ldy, ldy);
    }
}

/* Q4_0 / Q4_K: groups of 8 rows through the x8 cores (their per-row scales transposed into
 * a small buffer), the remaining rows through the one-output cores. */
static void cores_x8(int wtype, int64_t n, const rt_unpacked *u, int nr, const void *xa, size_t xrs, int nt,
                     const int8_t *xq, size_t xts, size_t xbs, const float *xd, const void *tiles, size_t tile_bytes,
                     float *y, int64_t ldy)
{
    const int k4 = wtype == GGUF_Q4_K;
    const int64_t nb = k4 ? n / 256 : n / 32;
    float *tb = aligned_alloc(32, (size_t)nb * (k4 ? 48 + 64 + 512 : 8 + 64) * 4 + 32);
    int r0 = 0;
    for (; tb && r0 + 8 <= nr; r0 += 8) {
        const rt_unpacked *g = u + r0;
        for (int64_t b = 0; b < nb; b++)
            for (int l = 0; l < 8; l++) {
                tb[8 * b + l] = g[l].d[b];
                if (!k4) {
                    for (int q = 0; q < 32; q++)
                        ((uint8_t *)(tb + 8 * nb + 64 * b + 8 * (q / 4) + l))[q % 4] = (uint8_t)(g[l].w[32 * b + q] + 8);
                    continue;
                }
                tb[8 * nb + 8 * b + l] = g[l].m[b];
                for (int h = 0; h < 4; h++) {
                    const int16_t *m = g[l].mins + 16 * b;
                    const uint32_t pair = (uint32_t)(uint16_t)m[4 * h] | (uint32_t)(uint16_t)m[4 * h + 2] << 16;
                    memcpy(tb + 16 * nb + 32 * b + 8 * h + l, &pair, 4);
                }
                for (int j = 0; j < 8; j++) {
                    const uint16_t sc = (uint16_t)g[l].sc32[(8 * b + j) * 16];
                    const uint32_t pair = (uint32_t)sc | (uint32_t)sc << 16;
                    memcpy(tb + 48 * nb + 64 * b + 8 * j + l, &pair, 4);
                }
                for (int q = 0; q < 64; q++)
                    memcpy(tb + 112 * nb + 512 * b + 8 * q + l, g[l].aw + 256 * b + 4 * q, 4);
            }
        if (k4)
            core_q4_K_x8(n, g, tb, xa, xrs, nt, y + r0, ldy);
        else
            q4_0_over(n, tb, NULL, 8, nt, xq, xts, xbs, xd, tiles, tile_bytes, y + r0, ldy);
    }
    free(tb);
    if (r0 < nr) {
        if (k4)
            core_q4_K(n, u + r0, nr - r0, xa, xrs, nt, y + r0, ldy);
        else
            q4_0_over(n, NULL, u + r0, nr - r0, nt, xq, xts, xbs, xd, tiles, tile_bytes, y + r0, ldy);
    }
}

/* rt_unpack_row for Q8_0 and Q4_0 with AVX2 (the same layout and values: w, aw = |w|, d). */
static void unpack_q8_0_class(int wtype, const void *wrow, int64_t n, void *buf, rt_unpacked *u)
{
    const size_t N = (size_t)n;
    const int64_t nb = n / 32;
    memset(u, 0, sizeof *u);
    u->w = buf;
    u->aw = (uint8_t *)buf + N;
    u->d = (float *)((uint8_t *)buf + 2 * N);
    for (int64_t b = 0; b < nb; b++) {
        __m256i v;
        if (wtype == GGUF_Q8_0) {
            const lq_block_q8_0 *x = (const lq_block_q8_0 *)wrow + b;
            u->d[b] = rt_h2f(x->d);
            v = _mm256_loadu_si256((const __m256i *)x->qs);
        } else {
            const lq_block_q4_0 *x = (const lq_block_q4_0 *)wrow + b;
            u->d[b] = rt_h2f(x->d);
            const __m128i q = _mm_loadu_si128((const __m128i *)x->qs), m = _mm_set1_epi8(0xF);
            v = _mm256_sub_epi8(_mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m), _mm_and_si128(q, m)),
                                _mm256_set1_epi8(8));
        }
        _mm256_store_si256((__m256i *)(u->w + 32 * b), v);
        _mm256_store_si256((__m256i *)(u->aw + 32 * b), _mm256_abs_epi8(v));
    }
}

/* Q8_0-class activations repacked once per matmul (prep), per tile of RT_TOK_TILE tokens:
 * xq [16][nb][32] the quants (32-byte aligned, no block header in between), xd [16][nb] the
 * block scales in f32 — the same values the cores otherwise read from the Q8_0 rows. */
static size_t q80_tile_size(int64_t n) { return (size_t)(n / 32) * RT_TOK_TILE * 36; }

static void prep_q80(int wtype, int64_t n, const void *xa, size_t xrs, int nt, void *tile)
{
    const int64_t nb = n / 32;
    int8_t *xq = tile;
    float *xd = (float *)(xq + (size_t)RT_TOK_TILE * (size_t)nb * 32);
    for (int j = 0; j < nt; j++) {
        const lq_block_q8_0 *xb = (const lq_block_q8_0 *)((const char *)xa + (size_t)j * xrs);
        for (int64_t b = 0; b < nb; b++) {
            _mm256_store_si256((__m256i *)(xq + ((size_t)j * nb + b) * 32), _mm256_loadu_si256((const __m256i *)xb[b].qs));
            xd[(size_t)j * nb + b] = rt_h2f(xb[b].d);
        }
    }
}

/* Unpack the row block, gather the activations' block scales (or read the prepped tiles),
 * run the class core. */
static void gemm_quant(int wtype, int64_t n, const void *w, size_t wrs, int nr, const void *xa, size_t xrs,
                       int nt, const void *tiles, size_t tile_bytes, float *y, int64_t ldy)
{
    const int cls = rt_unpack_class(wtype);
    const size_t us = rt_unpacked_size(wtype, n);
    const int64_t nb = n / 32;
    const size_t xd_n = cls == RT_CLS_Q8_1 ? (size_t)nt * 2 * nb : cls == RT_CLS_Q8_0 && !tiles ? (size_t)nt * nb : 0;
    char *buf = aligned_alloc(32, us * (size_t)nr + ((xd_n * 4 + 31) & ~(size_t)31) + 32);
    if (!buf) { /* out of memory inside a kernel: fall back to the scalar row dot */
        for (int t = 0; t < nt; t++)
            for (int r = 0; r < nr; r++)
                y[t * ldy + r] = rt_kernels_scalar.dot[wtype](n, (const char *)w + r * wrs,
                                                              (const char *)xa + t * xrs);
        return;
    }
    rt_unpacked u[64];
    if (nr > 64)
        nr = 64; /* the driver passes at most RT_ROW_BLOCK rows */
    for (int r = 0; r < nr; r++) {
        if (wtype == GGUF_Q8_0 || wtype == GGUF_Q4_0) /* rt_unpacked_size: 32-aligned w, aw, then d */
            unpack_q8_0_class(wtype, (const char *)w + (size_t)r * wrs, n, buf + (size_t)r * us, &u[r]);
        else
            rt_unpack_row(wtype, (const char *)w + (size_t)r * wrs, n, buf + (size_t)r * us, &u[r]);
    }
    float *xd = (float *)(buf + us * (size_t)nr);
    if (wtype == GGUF_Q4_0 && tiles) {
        cores_x8(wtype, n, u, nr, NULL, 0, nt, NULL, 0, 0, NULL, tiles, tile_bytes, y, ldy);
    } else if (cls == RT_CLS_Q8_0 && tiles) {
        for (int t0 = 0; t0 < nt; t0 += RT_TOK_TILE) {
            const int8_t *tq = (const int8_t *)tiles + (size_t)(t0 / RT_TOK_TILE) * tile_bytes;
            const float *td = (const float *)(tq + (size_t)RT_TOK_TILE * (size_t)nb * 32);
            const int tn = nt - t0 < RT_TOK_TILE ? nt - t0 : RT_TOK_TILE;
            core_q8_0(n, u, nr, tq, (size_t)nb * 32, 32, tn, td, y + (size_t)t0 * ldy, ldy);
        }
    } else if (cls == RT_CLS_Q8_0) {
        for (int t = 0; t < nt; t++) {
            const lq_block_q8_0 *xb = (const lq_block_q8_0 *)((const char *)xa + (size_t)t * xrs);
            for (int64_t b = 0; b < nb; b++)
                xd[(size_t)t * nb + b] = rt_h2f(xb[b].d);
        }
        const int8_t *xq = (const int8_t *)xa + offsetof(lq_block_q8_0, qs);
        if (wtype == GGUF_Q4_0)
            cores_x8(wtype, n, u, nr, NULL, 0, nt, xq, xrs, sizeof(lq_block_q8_0), xd, NULL, 0, y, ldy);
        else
            core_q8_0(n, u, nr, xq, xrs, sizeof(lq_block_q8_0), nt, xd, y, ldy);
    } else if (cls == RT_CLS_Q8_1) {
        for (int t = 0; t < nt; t++) {
            const lq_block_q8_1 *xb = (const lq_block_q8_1 *)((const char *)xa + (size_t)t * xrs);
            for (int64_t b = 0; b < nb; b++) {
                xd[(size_t)t * 2 * nb + b] = rt_h2f(xb[b].d);
                xd[(size_t)t * 2 * nb + nb + b] = rt_h2f(xb[b].s);
            }
        }
        core_q8_1(n, u, nr, xa, xrs, nt, xd, y, ldy);
    } else {
        if (wtype == GGUF_Q4_K)
            cores_x8(wtype, n, u, nr, xa, xrs, nt, NULL, 0, 0, NULL, NULL, 0, y, ldy);
        else
            core_q8_K(wtype, n, u, nr, xa, xrs, nt, y, ldy);
    }
    free(buf);
}

static void gemm_q(int wtype, int64_t n, const void *w, size_t wrs, int nr, const void *xa, size_t xrs, int nt,
                   const void *tiles, size_t tile_bytes, void *scratch, float *y, int64_t ldy)
{
    gemm_quant(wtype, n, w, wrs, nr, xa, xrs, nt, tile_bytes ? tiles : NULL, tile_bytes, y, ldy);
}

/* Single dot products through the same cores (one row, one token). */
#define DOT_Q(T)                                                                                   \
    static float dotq_##T(int64_t n, const void *w, const void *xa)                                \
    {                                                                                              \
        float y;                                                                                   \
        gemm_quant(GGUF_##T, n, w, 0, 1, xa, 0, 1, NULL, 0, &y, 1);                                \
        return y;                                                                                  \
    }
DOT_Q(Q4_0)
DOT_Q(Q4_1)
DOT_Q(Q5_0)
DOT_Q(Q5_1)
DOT_Q(Q8_0)
DOT_Q(Q2_K)
DOT_Q(Q3_K)
DOT_Q(Q4_K)
DOT_Q(Q5_K)
DOT_Q(Q6_K)

/* ---------------------------------------------------------------- forward-pass helpers */

/* ggml's AVX2 vector expf (the same operations, so the same bits as llama.cpp's AVX2 build;
 * rt_expf_avx2_lane is one lane of it): e^x = 2^n (1 + j(b)), x = n ln2 + b. */
static inline __m256 gexp8(__m256 x)
{
    const __m256 r = _mm256_set1_ps(0x1.8p23f);
    const __m256 z = _mm256_fmadd_ps(x, _mm256_set1_ps(0x1.715476p+0f), r);
    const __m256 n = _mm256_sub_ps(z, r);
    const __m256 b = _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.7f7d1cp-20f),
                                      _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.62e4p-1f), x));
    const __m256i e = _mm256_slli_epi32(_mm256_castps_si256(z), 23);
    const __m256 k = _mm256_castsi256_ps(_mm256_add_epi32(e, _mm256_castps_si256(_mm256_set1_ps(1))));
    const __m256 an = _mm256_andnot_ps(_mm256_set1_ps(-0.f), n);
    const __m256 c = _mm256_cmp_ps(an, _mm256_set1_ps(126), _CMP_GT_OQ);
    const __m256 u = _mm256_mul_ps(b, b);
    const __m256 j = _mm256_fmadd_ps(
        _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_set1_ps(0x1.0e4020p-7f), b, _mm256_set1_ps(0x1.573e2ep-5f)), u,
                        _mm256_fmadd_ps(_mm256_set1_ps(0x1.555e66p-3f), b, _mm256_set1_ps(0x1.fffdb6p-2f))),
        u, _mm256_mul_ps(_mm256_set1_ps(0x1.ffffecp-1f), b));
    if (!_mm256_movemask_ps(c))
        return _mm256_fmadd_ps(j, k, k);
    const __m256i g = _mm256_and_si256(_mm256_castps_si256(_mm256_cmp_ps(n, _mm256_setzero_ps(), _CMP_LE_OQ)),
                                       _mm256_set1_epi32((int)0x82000000u));
    const __m256 s1 = _mm256_castsi256_ps(_mm256_add_epi32(g, _mm256_set1_epi32(0x7f000000)));
    const __m256 s2 = _mm256_castsi256_ps(_mm256_sub_epi32(e, g));
    const __m256 d = _mm256_cmp_ps(an, _mm256_set1_ps(192), _CMP_GT_OQ);
    const __m256 big = _mm256_mul_ps(_mm256_fmadd_ps(s2, j, s2), s1);
    return _mm256_or_ps(_mm256_and_ps(d, _mm256_mul_ps(s1, s1)),
                        _mm256_andnot_ps(d, _mm256_or_ps(_mm256_and_ps(c, big),
                                                         _mm256_andnot_ps(c, _mm256_fmadd_ps(k, j, k)))));
}

static void attn_avx2(const float *q, const float *kt, int64_t ldk, const float *v, int64_t ldv, int n, int hd,
                      float scale, float *p, float *out)
{
    if (hd % 8) {
        rt_kernels_scalar.attn(q, kt, ldk, v, ldv, n, hd, scale, p, out);
        return;
    }
    const __m256 vscale = _mm256_set1_ps(scale);
    int j = 0;
    for (; j + 32 <= n; j += 32) {
        __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
        for (int d = 0; d < hd; d++) {
            const __m256 qd = _mm256_set1_ps(q[d]);
            const float *kd = kt + d * ldk + j;
            s0 = _mm256_fmadd_ps(qd, _mm256_loadu_ps(kd), s0);
            s1 = _mm256_fmadd_ps(qd, _mm256_loadu_ps(kd + 8), s1);
            s2 = _mm256_fmadd_ps(qd, _mm256_loadu_ps(kd + 16), s2);
            s3 = _mm256_fmadd_ps(qd, _mm256_loadu_ps(kd + 24), s3);
        }
        _mm256_storeu_ps(p + j, _mm256_mul_ps(s0, vscale));
        _mm256_storeu_ps(p + j + 8, _mm256_mul_ps(s1, vscale));
        _mm256_storeu_ps(p + j + 16, _mm256_mul_ps(s2, vscale));
        _mm256_storeu_ps(p + j + 24, _mm256_mul_ps(s3, vscale));
    }
    for (; j + 8 <= n; j += 8) {
        __m256 s0 = _mm256_setzero_ps();
        for (int d = 0; d < hd; d++)
            s0 = _mm256_fmadd_ps(_mm256_set1_ps(q[d]), _mm256_loadu_ps(kt + d * ldk + j), s0);
        _mm256_storeu_ps(p + j, _mm256_mul_ps(s0, vscale));
    }
    for (; j < n; j++) {
        float s = 0;
        for (int d = 0; d < hd; d++)
            s = fmaf(q[d], kt[d * ldk + j], s);
        p[j] = s * scale;
    }
    /* flash attention's online softmax, RT_FA_TILE keys at a time (see rt_attn_fn) */
    float M = -INFINITY, S = 0;
    for (int d = 0; d < hd; d++)
        out[d] = 0;
    for (int t0 = 0; t0 < n; t0 += RT_FA_TILE) {
        const int nt = n - t0 < RT_FA_TILE ? n - t0 : RT_FA_TILE;
        float mx = -INFINITY;
        for (j = 0; j < nt; j++)
            mx = p[t0 + j] > mx ? p[t0 + j] : mx;
        const float Mn = fmaxf(M, mx);
        if (Mn > M && M != -INFINITY) {
            const __m256 ms = _mm256_set1_ps(expf(M - Mn));
            for (int d = 0; d < hd; d += 8)
                _mm256_storeu_ps(out + d, _mm256_mul_ps(_mm256_loadu_ps(out + d), ms));
            S *= expf(M - Mn);
        }
        M = Mn;
        const __m256 vm = _mm256_set1_ps(M);
        double sum = 0;
        for (j = 0; j < nt; j += 8) {
            __m256 x;
            if (nt - j >= 8) {
                x = _mm256_loadu_ps(p + t0 + j);
            } else {
                float tmp[8];
                for (int l = 0; l < 8; l++)
                    tmp[l] = j + l < nt ? p[t0 + j + l] : -INFINITY;
                x = _mm256_loadu_ps(tmp);
            }
            const __m256 e = gexp8(_mm256_sub_ps(x, vm));
            if (nt - j >= 8) {
                _mm256_storeu_ps(p + t0 + j, e);
            } else {
                float tmp[8];
                _mm256_storeu_ps(tmp, e);
                for (int l = 0; j + l < nt; l++)
                    p[t0 + j + l] = tmp[l];
            }
            sum += (double)hsum8(e);
        }
        S = (float)((double)S + sum);
        for (int d0 = 0; d0 < hd; d0 += 32) {
            const int nv = hd - d0 >= 32 ? 4 : (hd - d0) / 8;
            if (nv == 4) { /* accumulators in registers */
                __m256 a0 = _mm256_loadu_ps(out + d0), a1 = _mm256_loadu_ps(out + d0 + 8);
                __m256 a2 = _mm256_loadu_ps(out + d0 + 16), a3 = _mm256_loadu_ps(out + d0 + 24);
                for (j = 0; j < nt; j++) {
                    const __m256 pj = _mm256_set1_ps(p[t0 + j]);
                    const float *vj = v + (int64_t)(t0 + j) * ldv + d0;
                    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(vj), pj, a0);
                    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(vj + 8), pj, a1);
                    a2 = _mm256_fmadd_ps(_mm256_loadu_ps(vj + 16), pj, a2);
                    a3 = _mm256_fmadd_ps(_mm256_loadu_ps(vj + 24), pj, a3);
                }
                _mm256_storeu_ps(out + d0, a0);
                _mm256_storeu_ps(out + d0 + 8, a1);
                _mm256_storeu_ps(out + d0 + 16, a2);
                _mm256_storeu_ps(out + d0 + 24, a3);
                continue;
            }
            __m256 a[4];
            for (int c = 0; c < nv; c++)
                a[c] = _mm256_loadu_ps(out + d0 + 8 * c);
            for (j = 0; j < nt; j++) {
                const __m256 pj = _mm256_set1_ps(p[t0 + j]);
                const float *vj = v + (int64_t)(t0 + j) * ldv + d0;
                for (int c = 0; c < nv; c++)
                    a[c] = _mm256_fmadd_ps(_mm256_loadu_ps(vj + 8 * c), pj, a[c]);
            }
            for (int c = 0; c < nv; c++)
                _mm256_storeu_ps(out + d0 + 8 * c, a[c]);
        }
    }
    const __m256 inv = _mm256_set1_ps(1.0f / S);
    for (int d = 0; d < hd; d += 8)
        _mm256_storeu_ps(out + d, _mm256_mul_ps(_mm256_loadu_ps(out + d), inv));
}

static void swiglu_avx2(float *g, const float *u, int64_t n)
{
    int64_t i = 0;
    const __m256 one = _mm256_set1_ps(1.0f);
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_loadu_ps(g + i);
        const __m256 e = gexp8(_mm256_sub_ps(_mm256_setzero_ps(), x));
        _mm256_storeu_ps(g + i, _mm256_mul_ps(_mm256_div_ps(x, _mm256_add_ps(one, e)), _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++)
        g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

static void round_f16_avx2(float *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT)));
    for (; i < n; i++)
        x[i] = rt_h2f(rt_f2h(x[i]));
}

const rt_kernel_table RT_AVX2_TABLE = {
    .attn = attn_avx2,
    .swiglu = swiglu_avx2,
    .round_f16 = round_f16_avx2,
    .quant = {[GGUF_Q8_0] = quant_q8_0, [GGUF_Q8_1] = quant_q8_1, [GGUF_Q8_K] = quant_q8_K, [GGUF_F16] = quant_f16},
    .dot = {
        [GGUF_F32] = dot_f32, [GGUF_F16] = dot_f16, [GGUF_BF16] = dot_bf16,
        [GGUF_Q4_0] = dotq_Q4_0, [GGUF_Q4_1] = dotq_Q4_1, [GGUF_Q5_0] = dotq_Q5_0, [GGUF_Q5_1] = dotq_Q5_1,
        [GGUF_Q8_0] = dotq_Q8_0, [GGUF_Q2_K] = dotq_Q2_K, [GGUF_Q3_K] = dotq_Q3_K, [GGUF_Q4_K] = dotq_Q4_K,
        [GGUF_Q5_K] = dotq_Q5_K, [GGUF_Q6_K] = dotq_Q6_K,
    },
    .gemm = {
        [GGUF_F32] = gemm_f32, [GGUF_F16] = gemm_flt16, [GGUF_BF16] = gemm_flt16,
        [GGUF_Q4_0] = gemm_q, [GGUF_Q4_1] = gemm_q, [GGUF_Q5_0] = gemm_q, [GGUF_Q5_1] = gemm_q,
        [GGUF_Q8_0] = gemm_q, [GGUF_Q2_K] = gemm_q, [GGUF_Q3_K] = gemm_q, [GGUF_Q4_K] = gemm_q,
        [GGUF_Q5_K] = gemm_q, [GGUF_Q6_K] = gemm_q,
    },
    .prep = {[GGUF_F16] = prep_widen, [GGUF_BF16] = prep_widen, [GGUF_Q4_0] = prep_q80, [GGUF_Q5_0] = prep_q80,
             [GGUF_Q8_0] = prep_q80},
    .tile_size = tile_size,
    .scratch_size = scratch_size,
};
