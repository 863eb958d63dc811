/* AVX-512 (F/BW/VL/DQ) + VNNI kernels, used only when the CPU has them. Entries left NULL fall
 * back to the AVX2 table (F16, BF16 and the forward-pass helpers).
 *
 * Matrix products are blocked GEMMs whose 16 vector lanes are the 16 weight rows of one
 * RT_ROW_BLOCK, so no horizontal sums are needed and each output vector is 16 contiguous
 * outputs of one token:
 *  - once per call, the row block is unpacked into a panel: F32 transposed (k-major), the
 *    quantized types as unsigned bytes u (4 consecutive values per 32-bit lane, k-major) plus
 *    per-block scales laid out 16 rows wide;
 *  - once per matmul (prep), each tile of 16 tokens of converted activations is transposed the
 *    same way, with per-token block data (scales, sums) 16 tokens wide;
 *  - the core then broadcasts one activation value (F32) or 4 activation bytes (int8) per
 *    token against the panel: vfmadd231ps / vpdpbusd, 16 rows at a time, up to 16 tokens.
 * Integer block sums are exact: vpdpbusd(u, x) = sum((w + off) x) and the accumulator starts
 * at -off * sum(x) (Q8_0 class: off = 8, 16, 128 for Q4_0, Q5_0, Q8_0). K-quant sub-block dot
 * products are scaled by their integer scales with vpmulld, and the min / offset corrections
 * sum(c_j * bsum_j) use vpdpwssd, as ggml sums them; block scales are applied in f32.
 * Every output element is computed by the same sequence of operations whatever its position
 * in a tile, so results do not depend on tiling or threads. */
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/kernels.h"
#include "runtime/rt_internal.h"

_Static_assert(RT_ROW_BLOCK == 16 && RT_TOK_TILE == 16, "AVX-512 tiles are 16 rows x 16 tokens");

#define UNROLL _Pragma("GCC unroll 16")

static inline uint32_t pack16(int lo, int hi) { return (uint32_t)(uint16_t)lo | (uint32_t)(uint16_t)hi << 16; }

/* ---------------------------------------------------------------- 16 x 16 transposes */

/* r[i] := column i of the 16 x 16 matrix of 32-bit values whose rows are r[0..15]. */
static inline void tr16(__m512i r[16])
{
    __m512i t[16];
    UNROLL for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    /* r[4i + c], 128-bit lane L: rows 4i..4i+3 of column 4L + c */
    UNROLL for (int i = 0; i < 4; i++) {
        r[4 * i + 0] = _mm512_unpacklo_epi64(t[4 * i + 0], t[4 * i + 2]);
        r[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i + 0], t[4 * i + 2]);
        r[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
        r[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
    }
    UNROLL for (int c = 0; c < 4; c++) {
        const __m512i a = _mm512_shuffle_i32x4(r[c], r[4 + c], 0x44);
        const __m512i b = _mm512_shuffle_i32x4(r[c], r[4 + c], 0xEE);
        const __m512i e = _mm512_shuffle_i32x4(r[8 + c], r[12 + c], 0x44);
        const __m512i f = _mm512_shuffle_i32x4(r[8 + c], r[12 + c], 0xEE);
        t[c] = _mm512_shuffle_i32x4(a, e, 0x88);
        t[4 + c] = _mm512_shuffle_i32x4(a, e, 0xDD);
        t[8 + c] = _mm512_shuffle_i32x4(b, f, 0x88);
        t[12 + c] = _mm512_shuffle_i32x4(b, f, 0xDD);
    }
    UNROLL for (int i = 0; i < 16; i++)
        r[i] = t[i];
}

/* out[k][16] := value k of 16 rows of ndw 32-bit values (rows rs bytes apart; rows >= nr read
 * as zeros). out is 64-byte aligned. */
static void transpose_rows(const void *src, size_t rs, int nr, int64_t ndw, void *out)
{
    const char *s = src;
    int32_t *o = out;
    for (int64_t g = 0; g < ndw; g += 16) {
        const int m = ndw - g >= 16 ? 16 : (int)(ndw - g);
        const __mmask16 mk = (__mmask16)((1u << m) - 1);
        __m512i r[16];
        UNROLL for (int i = 0; i < 16; i++)
            r[i] = i < nr ? _mm512_maskz_loadu_epi32(mk, s + (size_t)i * rs + (size_t)g * 4) : _mm512_setzero_si512();
        tr16(r);
        for (int i = 0; i < m; i++)
            _mm512_store_si512(o + (size_t)(g + i) * 16, r[i]);
    }
}

/* ---------------------------------------------------------------- F32, F16, BF16 */

/* Float matrices as llamafile's sgemm sums them in llama.cpp's AVX-512 build: for each output,
 * 16 lane sums over k (lane L takes k = L, L+16, ... by fma, in k order), then the lanes added
 * as _mm512_reduce_add_ps does. F16 and BF16 weights are widened on load; their (already
 * rounded) activations are widened once per matmul by prep into f32 tiles. With AVX512-BF16
 * the BF16 kernel is vdpbf16ps on 32 values per step instead, as that build does. Tiles of
 * RM rows × RN tokens only share loads; every output is summed the same way. */
static inline __m512 ld_f32(const void *p, int64_t k) { return _mm512_loadu_ps((const float *)p + k); }
static inline __m512 ld_f16(const void *p, int64_t k)
{
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)p + k)));
}
static inline __m512 ld_bf16(const void *p, int64_t k)
{
    return _mm512_castsi512_ps(
        _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)((const uint16_t *)p + k))), 16));
}

#define FLT_TILE(NAME, LD, RM, RN)                                                                   \
    static void NAME##_##RM##x##RN(int64_t n, const char *w, size_t wrs, const float *x, size_t xrs, \
                                   float *y, int64_t ldy)                                            \
    {                                                                                                \
        __m512 acc[RM][RN];                                                                          \
        UNROLL for (int i = 0; i < RM; i++) UNROLL for (int j = 0; j < RN; j++) acc[i][j] = _mm512_setzero_ps(); \
        for (int64_t k = 0; k < n; k += 16) {                                                        \
            __m512 xv[RN];                                                                           \
            UNROLL for (int j = 0; j < RN; j++) xv[j] = _mm512_loadu_ps(x + j * xrs + k);            \
            UNROLL for (int i = 0; i < RM; i++) {                                                    \
                const __m512 wv = LD(w + i * wrs, k);                                                \
                UNROLL for (int j = 0; j < RN; j++) acc[i][j] = _mm512_fmadd_ps(wv, xv[j], acc[i][j]); \
            }                                                                                        \
        }                                                                                            \
        UNROLL for (int i = 0; i < RM; i++) UNROLL for (int j = 0; j < RN; j++)                      \
            y[j * ldy + i] = _mm512_reduce_add_ps(acc[i][j]);                                        \
    }
#define FLT_TILES(NAME, LD)                                                                          \
    FLT_TILE(NAME, LD, 4, 4)                                                                         \
    FLT_TILE(NAME, LD, 4, 1)                                                                         \
    FLT_TILE(NAME, LD, 1, 4)                                                                         \
    FLT_TILE(NAME, LD, 1, 1)
FLT_TILES(t32, ld_f32)
FLT_TILES(t16, ld_f16)
FLT_TILES(tbf, ld_bf16)

typedef void (*flt_tile_fn)(int64_t, const char *, size_t, const float *, size_t, float *, int64_t);
static void gemm_bf16dp(int wtype, int64_t n, const void *wv, size_t wrs, int nr, const void *xv, size_t xrs, int nt,
                        const void *tiles, size_t tile_bytes, void *scratch, float *y, int64_t ldy);

/* nr rows × nt tokens (x: f32 rows xrs floats apart) by 4 × 4 tiles and their edges. */
static void flt_gemm(const flt_tile_fn f[4], int64_t n, const char *w, size_t wrs, int nr, const float *x,
                     size_t xrs, int nt, float *y, int64_t ldy)
{
    int t = 0;
    for (; t + 4 <= nt; t += 4) {
        int r = 0;
        for (; r + 4 <= nr; r += 4)
            f[0](n, w + r * wrs, wrs, x + t * xrs, xrs, y + t * ldy + r, ldy);
        for (; r < nr; r++)
            f[2](n, w + r * wrs, wrs, x + t * xrs, xrs, y + t * ldy + r, ldy);
    }
    for (; t < nt; t++) {
        int r = 0;
        for (; r + 4 <= nr; r += 4)
            f[1](n, w + r * wrs, wrs, x + t * xrs, xrs, y + t * ldy + r, ldy);
        for (; r < nr; r++)
            f[3](n, w + r * wrs, wrs, x + t * xrs, xrs, y + t * ldy + r, ldy);
    }
}

static int bf16_dp(void)
{
    static int has = -1;
    if (has < 0)
        has = rt_cpu_has_avx512bf16();
    return has;
}

/* F16/BF16 activations of one tile of tokens widened to f32 rows of n (not needed when BF16
 * runs on vdpbf16ps, nor for rows that are not a multiple of 16). */
static void prep_widen(int wtype, int64_t n, const void *xa, size_t xrs, int nt, void *tile)
{
    if ((wtype == GGUF_BF16 && bf16_dp()) || n % 16)
        return;
    float *o = tile;
    for (int j = 0; j < nt; j++) {
        const char *row = (const char *)xa + (size_t)j * xrs;
        for (int64_t k = 0; k < n; k += 16)
            _mm512_storeu_ps(o + (size_t)j * n + k, wtype == GGUF_F16 ? ld_f16(row, k) : ld_bf16(row, k));
    }
}

static void gemm_flt(int wtype, int64_t n, const void *w, size_t wrs, int nr, const void *xa, size_t xrs, int nt,
                     const void *tiles, size_t tile_bytes, void *scratch, float *y, int64_t ldy)
{
    static const flt_tile_fn f32[4] = {t32_4x4, t32_4x1, t32_1x4, t32_1x1};
    static const flt_tile_fn f16[4] = {t16_4x4, t16_4x1, t16_1x4, t16_1x1};
    static const flt_tile_fn fbf[4] = {tbf_4x4, tbf_4x1, tbf_1x4, tbf_1x1};
    if (n % 16) { /* llamafile's sgemm declines these; ggml's dot products (AVX2 order) */
        for (int t = 0; t < nt; t++)
            for (int r = 0; r < nr; r++)
                y[t * ldy + r] = rt_kernels_avx2.dot[wtype](n, (const char *)w + r * wrs, (const char *)xa + t * xrs);
        return;
    }
    if (wtype == GGUF_BF16 && bf16_dp()) {
        if (n % 32 == 0) {
            gemm_bf16dp(wtype, n, w, wrs, nr, xa, xrs, nt, tiles, tile_bytes, scratch, y, ldy);
            return;
        }
        for (int t = 0; t < nt; t++)
            for (int r = 0; r < nr; r++)
                y[t * ldy + r] = rt_kernels_avx2.dot[wtype](n, (const char *)w + r * wrs, (const char *)xa + t * xrs);
        return;
    }
    if (wtype == GGUF_F32) {
        flt_gemm(f32, n, w, wrs, nr, xa, xrs / 4, nt, y, ldy);
        return;
    }
    for (int t0 = 0; t0 < nt; t0 += 16) {
        const float *X = (const float *)((const char *)tiles + (size_t)(t0 / 16) * tile_bytes);
        flt_gemm(wtype == GGUF_F16 ? f16 : fbf, n, w, wrs, nr, X, (size_t)n, nt - t0 < 16 ? nt - t0 : 16,
                 y + (size_t)t0 * ldy, ldy);
    }
}

/* BF16 with AVX512-BF16: vdpbf16ps on the bf16 weights and activations, 32 values per step
 * (lane L takes the pairs 2L, 2L+1 of each step: the odd one, then the even one, added with
 * one rounding each). */
#define BF_TILE(RM, RN)                                                                              \
    __attribute__((target("avx512bf16"))) static void bf_##RM##x##RN(int64_t n, const char *w, size_t wrs, \
                                                                     const char *x, size_t xrs, float *y, int64_t ldy) \
    {                                                                                                \
        __m512 acc[RM][RN];                                                                          \
        UNROLL for (int i = 0; i < RM; i++) UNROLL for (int j = 0; j < RN; j++) acc[i][j] = _mm512_setzero_ps(); \
        for (int64_t k = 0; k < n; k += 32) {                                                        \
            __m512i xv[RN];                                                                          \
            UNROLL for (int j = 0; j < RN; j++) xv[j] = _mm512_loadu_si512(x + j * xrs + 2 * k);     \
            UNROLL for (int i = 0; i < RM; i++) {                                                    \
                const __m512i wv = _mm512_loadu_si512(w + i * wrs + 2 * k);                          \
                UNROLL for (int j = 0; j < RN; j++)                                                  \
                    acc[i][j] = _mm512_dpbf16_ps(acc[i][j], (__m512bh)wv, (__m512bh)xv[j]);          \
            }                                                                                        \
        }                                                                                            \
        UNROLL for (int i = 0; i < RM; i++) UNROLL for (int j = 0; j < RN; j++)                      \
            y[j * ldy + i] = _mm512_reduce_add_ps(acc[i][j]);                                        \
    }
BF_TILE(4, 4)
BF_TILE(4, 1)
BF_TILE(1, 4)
BF_TILE(1, 1)

static void gemm_bf16dp(int wtype, int64_t n, const void *wv, size_t wrs, int nr, const void *xv, size_t xrs, int nt,
                        const void *tiles, size_t tile_bytes, void *scratch, float *y, int64_t ldy)
{
    const char *w = wv, *x = xv;
    int t = 0;
    for (; t + 4 <= nt; t += 4) {
        int r = 0;
        for (; r + 4 <= nr; r += 4)
            bf_4x4(n, w + r * wrs, wrs, x + t * xrs, xrs, y + t * ldy + r, ldy);
        for (; r < nr; r++)
            bf_1x4(n, w + r * wrs, wrs, x + t * xrs, xrs, y + t * ldy + r, ldy);
    }
    for (; t < nt; t++) {
        int r = 0;
        for (; r + 4 <= nr; r += 4)
            bf_4x1(n, w + r * wrs, wrs, x + t * xrs, xrs, y + t * ldy + r, ldy);
        for (; r < nr; r++)
            bf_1x1(n, w + r * wrs, wrs, x + t * xrs, xrs, y + t * ldy + r, ldy);
    }
}

/* ---------------------------------------------------------------- activation tiles (int8) */

/* Q8_0 / Q8_1 tile: xq int32 [nb][8][16] (4 bytes of block b, step k, token j), xd f32 [nb][16]
 * (block scales), xc [nb][16] (Q8_0 class: int32 -off*sum(q); Q8_1: f32 d*sum as stored). */
static size_t q8b_tile_size(int64_t n) { return (size_t)(n / 32) * (512 + 64 + 64); }
/* Q8_K tile: xq int32 [nsb][64][16], xd f32 [nsb][16], xbp int32 [nsb][8][16] (pairs of the
 * 16-value sums, or for Q4_K/Q5_K pairs of the 32-value sums). */
static size_t q8k_tile_size(int64_t n) { return (size_t)(n / 256) * (4096 + 64 + 512); }

static int q8_0_offset(int wtype) { return wtype == GGUF_Q4_0 ? 8 : wtype == GGUF_Q5_0 ? 16 : 128; }

static void prep_q8b(int wtype, int64_t n, const void *xa, size_t xrs, int nt, void *tile)
{
    const int64_t nb = n / 32;
    const int q81 = rt_vec_dot_type(wtype) == GGUF_Q8_1;
    const size_t bs = q81 ? sizeof(lq_block_q8_1) : sizeof(lq_block_q8_0), qo = q81 ? 4 : 2;
    int32_t *xq = tile;
    float *xd = (float *)(xq + nb * 128);
    int32_t *xc = (int32_t *)(xd + nb * 16);
    const char *x = xa;
    const __m512i ones = _mm512_set1_epi8(1), moff = _mm512_set1_epi32(-q8_0_offset(wtype));
    for (int64_t b = 0; b < nb; b += 2) {
        const int two = b + 1 < nb;
        __m512i r[16];
        for (int j = 0; j < 16; j++) {
            if (j >= nt) {
                r[j] = _mm512_setzero_si512();
                continue;
            }
            const char *p = x + (size_t)j * xrs + (size_t)b * bs + qo;
            const __m256i lo = _mm256_loadu_si256((const __m256i *)p);
            const __m256i hi = two ? _mm256_loadu_si256((const __m256i *)(p + bs)) : _mm256_setzero_si256();
            r[j] = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
        }
        tr16(r);
        for (int h = 0; h <= two; h++) {
            __m512i s = _mm512_setzero_si512();
            UNROLL for (int k = 0; k < 8; k++) {
                _mm512_store_si512(xq + ((b + h) * 8 + k) * 16, r[8 * h + k]);
                s = _mm512_dpbusd_epi32(s, ones, r[8 * h + k]);
            }
            if (!q81)
                _mm512_store_si512(xc + (b + h) * 16, _mm512_mullo_epi32(s, moff));
        }
    }
    for (int j = 0; j < nt; j++) {
        const char *row = x + (size_t)j * xrs;
        for (int64_t b = 0; b < nb; b++) {
            uint16_t d;
            memcpy(&d, row + (size_t)b * bs, 2);
            xd[b * 16 + j] = rt_h2f(d);
            if (q81) {
                uint16_t sh;
                memcpy(&sh, row + (size_t)b * bs + 2, 2);
                ((float *)xc)[b * 16 + j] = rt_h2f(sh);
            }
        }
    }
}

static int kq_sub32(int wtype) { return wtype == GGUF_Q4_K || wtype == GGUF_Q5_K; }

static void prep_q8k(int wtype, int64_t n, const void *xa, size_t xrs, int nt, void *tile)
{
    const int64_t nsb = n / 256;
    int32_t *xq = tile;
    float *xd = (float *)(xq + nsb * 1024);
    uint32_t *xbp = (uint32_t *)(xd + nsb * 16);
    const int s32 = kq_sub32(wtype);
    const char *x = xa;
    for (int64_t sb = 0; sb < nsb; sb++) {
        for (int g = 0; g < 4; g++) {
            __m512i r[16];
            UNROLL for (int j = 0; j < 16; j++)
                r[j] = j < nt ? _mm512_loadu_si512((const void *)(x + (size_t)j * xrs + (size_t)sb * sizeof(lq_block_q8_K) +
                                                                  4 + 64 * g))
                              : _mm512_setzero_si512();
            tr16(r);
            UNROLL for (int i = 0; i < 16; i++)
                _mm512_store_si512(xq + (sb * 64 + 16 * g + i) * 16, r[i]);
        }
        for (int j = 0; j < nt; j++) {
            const lq_block_q8_K *blk = (const lq_block_q8_K *)(x + (size_t)j * xrs) + sb;
            const int16_t *bs = blk->bsums;
            xd[sb * 16 + j] = blk->d;
            for (int i = 0; i < 8; i++)
                xbp[(sb * 8 + i) * 16 + j] = !s32 ? pack16(bs[2 * i], bs[2 * i + 1])
                                             : i < 4 ? pack16(bs[4 * i] + bs[4 * i + 1], bs[4 * i + 2] + bs[4 * i + 3])
                                                     : 0;
        }
    }
}

/* ---------------------------------------------------------------- weight panels (int8) */

/* In the scratch of one call: rows (16 × n unsigned values, row-major), P (the same
 * transposed: [n/4][16] 32-bit lanes), per-row data 16 wide: s0/s1 per block (Q8_0 class: d;
 * Q8_1: d, m) or per super-block (k-quants: d, dmin), sc [nsb][16][16] int32 sub-block scales,
 * pr [nsb][8][16] int16 pairs (k-quants: mins, or -offset*scale). */
typedef struct {
    uint8_t *rows, *P;
    float *s0, *s1;
    int32_t *sc;
    uint32_t *pr;
} qpanel;

static size_t q_scratch_size(int64_t n)
{
    const size_t N = (size_t)n;
    return 32 * N + 2 * 64 * (N / 32) + (N / 256) * (1024 + 512) + 64;
}

static qpanel q_layout(void *scratch, int64_t n)
{
    const size_t N = (size_t)n, nbs = (N / 32 > 1 ? N / 32 : 1);
    qpanel p;
    p.rows = scratch;
    p.P = p.rows + 16 * N;
    p.s0 = (float *)(p.P + 16 * N);
    p.s1 = p.s0 + 16 * nbs;
    p.sc = (int32_t *)(p.s1 + 16 * nbs);
    p.pr = (uint32_t *)(p.sc + (N / 256) * 256);
    return p;
}

static inline void nibbles32(const uint8_t *qs, __m256i hbits, uint8_t *dst)
{
    const __m128i v = _mm_loadu_si128((const __m128i *)qs), m = _mm_set1_epi8(0x0F);
    const __m256i u = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), m), _mm_and_si128(v, m));
    _mm256_storeu_si256((__m256i *)dst, _mm256_or_si256(u, hbits));
}

/* Byte i = 0x10 if bit i of qh is set, else 0. */
static inline __m256i bit4_bytes(const uint8_t qh[4])
{
    uint32_t x;
    memcpy(&x, qh, 4);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)x),
                                    _mm256_setr_epi64x(0, 0x0101010101010101LL, 0x0202020202020202LL,
                                                       0x0303030303030303LL));
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit), _mm256_set1_epi8(0x10));
}

/* bytes of v with bit `bit` set -> val, else 0 */
static inline __m256i bit_bytes(__m256i v, int bit, char val)
{
    const __m256i m = _mm256_set1_epi8((char)(1 << bit));
    return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(v, m), m), _mm256_set1_epi8(val));
}

static inline __m256i srl16(__m256i v, int s) { return _mm256_srl_epi16(v, _mm_cvtsi32_si128(s)); }

/* Row r of the panel: unsigned values into u (n bytes), scales into column r. */
static void unpack_row(int wtype, const void *wrow, int64_t n, uint8_t *u, int r, const qpanel *p)
{
    const int64_t nb = n / 32, nsb = n / 256;
    const __m256i m3 = _mm256_set1_epi8(3), m15 = _mm256_set1_epi8(15);
    switch (wtype) {
    case GGUF_Q8_0: {
        const lq_block_q8_0 *x = wrow;
        const __m256i flip = _mm256_set1_epi8((char)0x80);
        for (int64_t b = 0; b < nb; b++) {
            p->s0[b * 16 + r] = rt_h2f(x[b].d);
            _mm256_storeu_si256((__m256i *)(u + 32 * b),
                                _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)x[b].qs), flip));
        }
        break;
    }
    case GGUF_Q4_0: {
        const lq_block_q4_0 *x = wrow;
        for (int64_t b = 0; b < nb; b++) {
            p->s0[b * 16 + r] = rt_h2f(x[b].d);
            nibbles32(x[b].qs, _mm256_setzero_si256(), u + 32 * b);
        }
        break;
    }
    case GGUF_Q5_0: {
        const lq_block_q5_0 *x = wrow;
        for (int64_t b = 0; b < nb; b++) {
            p->s0[b * 16 + r] = rt_h2f(x[b].d);
            nibbles32(x[b].qs, bit4_bytes(x[b].qh), u + 32 * b);
        }
        break;
    }
    case GGUF_Q4_1: {
        const lq_block_q4_1 *x = wrow;
        for (int64_t b = 0; b < nb; b++) {
            p->s0[b * 16 + r] = rt_h2f(x[b].d);
            p->s1[b * 16 + r] = rt_h2f(x[b].m);
            nibbles32(x[b].qs, _mm256_setzero_si256(), u + 32 * b);
        }
        break;
    }
    case GGUF_Q5_1: {
        const lq_block_q5_1 *x = wrow;
        for (int64_t b = 0; b < nb; b++) {
            p->s0[b * 16 + r] = rt_h2f(x[b].d);
            p->s1[b * 16 + r] = rt_h2f(x[b].m);
            nibbles32(x[b].qs, bit4_bytes(x[b].qh), u + 32 * b);
        }
        break;
    }
    case GGUF_Q2_K: {
        const lq_block_q2_K *x = wrow;
        for (int64_t sb = 0; sb < nsb; sb++) {
            uint8_t *o = u + 256 * sb;
            for (int h = 0; h < 2; h++) {
                const __m256i q = _mm256_loadu_si256((const __m256i *)(x[sb].qs + 32 * h));
                for (int s4 = 0; s4 < 4; s4++)
                    _mm256_storeu_si256((__m256i *)(o + 128 * h + 32 * s4), _mm256_and_si256(srl16(q, 2 * s4), m3));
            }
            p->s0[sb * 16 + r] = rt_h2f(x[sb].d);
            p->s1[sb * 16 + r] = rt_h2f(x[sb].dmin);
            for (int j = 0; j < 16; j++)
                p->sc[(sb * 16 + j) * 16 + r] = x[sb].scales[j] & 0xF;
            for (int i = 0; i < 8; i++)
                p->pr[(sb * 8 + i) * 16 + r] = pack16(x[sb].scales[2 * i] >> 4, x[sb].scales[2 * i + 1] >> 4);
        }
        break;
    }
    case GGUF_Q3_K: {
        const lq_block_q3_K *x = wrow;
        for (int64_t sb = 0; sb < nsb; sb++) {
            uint8_t *o = u + 256 * sb;
            const __m256i hm = _mm256_loadu_si256((const __m256i *)x[sb].hmask);
            for (int h = 0; h < 2; h++) {
                const __m256i q = _mm256_loadu_si256((const __m256i *)(x[sb].qs + 32 * h));
                for (int s4 = 0; s4 < 4; s4++)
                    _mm256_storeu_si256((__m256i *)(o + 128 * h + 32 * s4),
                                        _mm256_or_si256(_mm256_and_si256(srl16(q, 2 * s4), m3), bit_bytes(hm, 4 * h + s4, 4)));
            }
            int8_t sc[16];
            rt_q3k_scales(x[sb].scales, sc);
            p->s0[sb * 16 + r] = rt_h2f(x[sb].d);
            p->s1[sb * 16 + r] = 0;
            for (int j = 0; j < 16; j++)
                p->sc[(sb * 16 + j) * 16 + r] = sc[j];
            for (int i = 0; i < 8; i++)
                p->pr[(sb * 8 + i) * 16 + r] = pack16(-4 * sc[2 * i], -4 * sc[2 * i + 1]);
        }
        break;
    }
    case GGUF_Q4_K:
    case GGUF_Q5_K: {
        const int five = wtype == GGUF_Q5_K;
        const size_t bsz = five ? sizeof(lq_block_q5_K) : sizeof(lq_block_q4_K);
        for (int64_t sb = 0; sb < nsb; sb++) {
            const uint8_t *blk = (const uint8_t *)wrow + (size_t)sb * bsz;
            uint16_t d, dmin;
            memcpy(&d, blk, 2);
            memcpy(&dmin, blk + 2, 2);
            const uint8_t *scales = blk + 4, *ql = five ? blk + 48 : blk + 16;
            const __m256i qh = five ? _mm256_loadu_si256((const __m256i *)(blk + 16)) : _mm256_setzero_si256();
            uint8_t *o = u + 256 * sb;
            for (int c = 0; c < 4; c++) {
                const __m256i v = _mm256_loadu_si256((const __m256i *)(ql + 32 * c));
                __m256i lo = _mm256_and_si256(v, m15), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m15);
                if (five) {
                    lo = _mm256_or_si256(lo, bit_bytes(qh, 2 * c, 0x10));
                    hi = _mm256_or_si256(hi, bit_bytes(qh, 2 * c + 1, 0x10));
                }
                _mm256_storeu_si256((__m256i *)(o + 64 * c), lo);
                _mm256_storeu_si256((__m256i *)(o + 64 * c + 32), hi);
            }
            int mn[8];
            for (int j = 0; j < 8; j++) {
                int sc;
                rt_kq_scale_min(j, scales, &sc, &mn[j]);
                p->sc[(sb * 16 + j) * 16 + r] = sc;
            }
            for (int i = 0; i < 8; i++)
                p->pr[(sb * 8 + i) * 16 + r] = i < 4 ? pack16(mn[2 * i], mn[2 * i + 1]) : 0;
            p->s0[sb * 16 + r] = rt_h2f(d);
            p->s1[sb * 16 + r] = rt_h2f(dmin);
        }
        break;
    }
    case GGUF_Q6_K: {
        const lq_block_q6_K *x = wrow;
        for (int64_t sb = 0; sb < nsb; sb++) {
            uint8_t *o = u + 256 * sb;
            for (int h = 0; h < 2; h++) {
                const __m256i a = _mm256_loadu_si256((const __m256i *)(x[sb].ql + 64 * h));
                const __m256i b = _mm256_loadu_si256((const __m256i *)(x[sb].ql + 64 * h + 32));
                const __m256i q = _mm256_loadu_si256((const __m256i *)(x[sb].qh + 32 * h));
                const __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(q, m3), 4);
                const __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(q, 2), m3), 4);
                const __m256i h2 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(q, 4), m3), 4);
                const __m256i h3 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(q, 6), m3), 4);
                _mm256_storeu_si256((__m256i *)(o + 128 * h), _mm256_or_si256(_mm256_and_si256(a, m15), h0));
                _mm256_storeu_si256((__m256i *)(o + 128 * h + 32), _mm256_or_si256(_mm256_and_si256(b, m15), h1));
                _mm256_storeu_si256((__m256i *)(o + 128 * h + 64),
                                    _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(a, 4), m15), h2));
                _mm256_storeu_si256((__m256i *)(o + 128 * h + 96),
                                    _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b, 4), m15), h3));
            }
            p->s0[sb * 16 + r] = rt_h2f(x[sb].d);
            p->s1[sb * 16 + r] = 0;
            for (int j = 0; j < 16; j++)
                p->sc[(sb * 16 + j) * 16 + r] = x[sb].scales[j];
            for (int i = 0; i < 8; i++)
                p->pr[(sb * 8 + i) * 16 + r] = pack16(-32 * x[sb].scales[2 * i], -32 * x[sb].scales[2 * i + 1]);
        }
        break;
    }
    default:
        break;
    }
}

/* Unpack nr rows (the rest zero) and transpose them into the panel. */
static void build_panel(int wtype, int64_t n, const void *w, size_t wrs, int nr, const qpanel *p)
{
    const int kq = rt_unpack_class(wtype) == RT_CLS_Q8_K;
    const int64_t nblk = kq ? n / 256 : n / 32;
    for (int r = 0; r < 16; r++) {
        uint8_t *u = p->rows + (size_t)r * n;
        if (r < nr) {
            unpack_row(wtype, (const char *)w + (size_t)r * wrs, n, u, r, p);
            continue;
        }
        memset(u, 0, (size_t)n);
        for (int64_t b = 0; b < nblk; b++)
            p->s0[b * 16 + r] = p->s1[b * 16 + r] = 0;
        for (int64_t i = 0; kq && i < nblk * 16; i++)
            p->sc[i * 16 + r] = 0;
        for (int64_t i = 0; kq && i < nblk * 8; i++)
            p->pr[i * 16 + r] = 0;
    }
    transpose_rows(p->rows, (size_t)n, 16, n / 4, p->P);
}

/* ---------------------------------------------------------------- integer cores */

/* Q8_0 class: per block, acc += f32(-off*sum(x) + sum(u*x)) * (d_w * d_x). */
#define Q80_CORE(RN)                                                                                 \
    static void q80_core_##RN(int64_t nb, const uint8_t *P, const float *dw, const int32_t *xq,      \
                              const float *xd, const int32_t *xc, float *y, int64_t ldy, __mmask16 om) \
    {                                                                                                \
        __m512 acc[RN];                                                                              \
        UNROLL for (int j = 0; j < RN; j++) acc[j] = _mm512_setzero_ps();                            \
        for (int64_t b = 0; b < nb; b++) {                                                           \
            const __m512i *wp = (const __m512i *)P + 8 * b;                                          \
            __m512i W[8];                                                                            \
            UNROLL for (int k = 0; k < 8; k++) W[k] = _mm512_load_si512(wp + k);                     \
            const __m512 dv = _mm512_load_ps(dw + 16 * b);                                           \
            const int32_t *q = xq + 128 * b;                                                         \
            UNROLL for (int j = 0; j < RN; j++) {                                                    \
                __m512i ia = _mm512_set1_epi32(xc[16 * b + j]);                                      \
                UNROLL for (int k = 0; k < 8; k++) ia =                                              \
                    _mm512_dpbusd_epi32(ia, W[k], _mm512_set1_epi32(q[16 * k + j]));                 \
                acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia),                                     \
                                         _mm512_mul_ps(dv, _mm512_set1_ps(xd[16 * b + j])), acc[j]); \
            }                                                                                        \
        }                                                                                            \
        UNROLL for (int j = 0; j < RN; j++) _mm512_mask_storeu_ps(y + j * ldy, om, acc[j]);         \
    }
Q80_CORE(16)
Q80_CORE(8)
Q80_CORE(4)
Q80_CORE(2)
Q80_CORE(1)

/* Q8_1 class: per block, acc += f32(sum(u*x)) * (d_w * d_x) + m_w * s_x. */
#define Q81_CORE(RN)                                                                                 \
    static void q81_core_##RN(int64_t nb, const uint8_t *P, const float *dw, const float *mw,        \
                              const int32_t *xq, const float *xd, const float *xs, float *y, int64_t ldy, \
                              __mmask16 om)                                                          \
    {                                                                                                \
        __m512 acc[RN];                                                                              \
        UNROLL for (int j = 0; j < RN; j++) acc[j] = _mm512_setzero_ps();                            \
        for (int64_t b = 0; b < nb; b++) {                                                           \
            const __m512i *wp = (const __m512i *)P + 8 * b;                                          \
            __m512i W[8];                                                                            \
            UNROLL for (int k = 0; k < 8; k++) W[k] = _mm512_load_si512(wp + k);                     \
            const __m512 dv = _mm512_load_ps(dw + 16 * b), mv = _mm512_load_ps(mw + 16 * b);         \
            const int32_t *q = xq + 128 * b;                                                         \
            UNROLL for (int j = 0; j < RN; j++) {                                                    \
                __m512i ia = _mm512_setzero_si512();                                                 \
                UNROLL for (int k = 0; k < 8; k++) ia =                                              \
                    _mm512_dpbusd_epi32(ia, W[k], _mm512_set1_epi32(q[16 * k + j]));                 \
                acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia),                                     \
                                         _mm512_mul_ps(dv, _mm512_set1_ps(xd[16 * b + j])), acc[j]); \
                acc[j] = _mm512_fmadd_ps(mv, _mm512_set1_ps(xs[16 * b + j]), acc[j]);                \
            }                                                                                        \
        }                                                                                            \
        UNROLL for (int j = 0; j < RN; j++) _mm512_mask_storeu_ps(y + j * ldy, om, acc[j]);         \
    }
Q81_CORE(16)
Q81_CORE(8)
Q81_CORE(4)
Q81_CORE(2)
Q81_CORE(1)

/* K-quants, NSUB sub-blocks per super-block: isum = sum_j sc_j * sum(u*x over sub-block j)
 * (+ sum_i corr pairs · bsum pairs when !MIN); acc += f32(isum) * (d_w d_x)
 * (- f32(sum_i min pairs · bsum pairs) * (dmin_w d_x) when MIN). */
#define QK_CORE(NAME, RN, NSUB, MIN)                                                                 \
    static void NAME##_##RN(int64_t nsb, const uint8_t *P, const float *dw, const float *dmw,        \
                            const int32_t *sc, const uint32_t *pr, const int32_t *xq, const float *xd, \
                            const uint32_t *xbp, float *y, int64_t ldy, __mmask16 om)                \
    {                                                                                                \
        enum { STEPS = 64 / NSUB, NPAIR = NSUB / 2 };                                                \
        __m512 acc[RN];                                                                              \
        UNROLL for (int j = 0; j < RN; j++) acc[j] = _mm512_setzero_ps();                            \
        for (int64_t sb = 0; sb < nsb; sb++) {                                                       \
            __m512i is[RN];                                                                          \
            UNROLL for (int j = 0; j < RN; j++) is[j] = _mm512_setzero_si512();                      \
            const __m512i *wp = (const __m512i *)P + 64 * sb;                                        \
            const int32_t *q = xq + 1024 * sb;                                                       \
            for (int s = 0; s < NSUB; s++) {                                                         \
                __m512i W[STEPS];                                                                    \
                UNROLL for (int k = 0; k < STEPS; k++) W[k] = _mm512_load_si512(wp + STEPS * s + k); \
                const __m512i scv = _mm512_load_si512(sc + (16 * sb + s) * 16);                      \
                const int32_t *qs = q + STEPS * s * 16;                                              \
                UNROLL for (int j = 0; j < RN; j++) {                                                \
                    __m512i t = _mm512_dpbusd_epi32(_mm512_setzero_si512(), W[0],                    \
                                                    _mm512_set1_epi32(qs[j]));                       \
                    UNROLL for (int k = 1; k < STEPS; k++) t =                                       \
                        _mm512_dpbusd_epi32(t, W[k], _mm512_set1_epi32(qs[16 * k + j]));             \
                    is[j] = _mm512_add_epi32(is[j], _mm512_mullo_epi32(t, scv));                     \
                }                                                                                    \
            }                                                                                        \
            __m512i PR[NPAIR];                                                                       \
            UNROLL for (int i = 0; i < NPAIR; i++) PR[i] = _mm512_load_si512(pr + (8 * sb + i) * 16); \
            const __m512 dv = _mm512_load_ps(dw + 16 * sb);                                          \
            const __m512 dmv = MIN ? _mm512_load_ps(dmw + 16 * sb) : _mm512_setzero_ps();            \
            const uint32_t *bp = xbp + 128 * sb;                                                     \
            UNROLL for (int j = 0; j < RN; j++) {                                                    \
                const __m512 dx = _mm512_set1_ps(xd[16 * sb + j]);                                   \
                __m512i m = _mm512_setzero_si512();                                                  \
                UNROLL for (int i = 0; i < NPAIR; i++) {                                             \
                    const __m512i b2 = _mm512_set1_epi32((int)bp[16 * i + j]);                       \
                    if (MIN)                                                                         \
                        m = _mm512_dpwssd_epi32(m, PR[i], b2);                                       \
                    else                                                                             \
                        is[j] = _mm512_dpwssd_epi32(is[j], PR[i], b2);                               \
                }                                                                                    \
                acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is[j]), _mm512_mul_ps(dv, dx), acc[j]);  \
                if (MIN)                                                                             \
                    acc[j] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(m), _mm512_mul_ps(dmv, dx), acc[j]); \
            }                                                                                        \
        }                                                                                            \
        UNROLL for (int j = 0; j < RN; j++) _mm512_mask_storeu_ps(y + j * ldy, om, acc[j]);         \
    }
/* Q4_K and Q2_K as llama.cpp's repacked GEMMs (its x86 path for them) sum: per group of G
 * sub-blocks (64 values for Q4_K, 128 for Q2_K) acc += f32(sum_j sc_j dot_j) * (d_w d_x) and
 * accm += f32(sum_j m_j bsum_j) * (dmin_w d_x); the result is acc - accm. */
#define SPLIT_CORE(NAME, RN, NSUB, G)                                                                \
    static void NAME##_##RN(int64_t nsb, const uint8_t *P, const float *dw, const float *dmw,        \
                            const int32_t *sc, const uint32_t *pr, const int32_t *xq, const float *xd, \
                            const uint32_t *xbp, float *y, int64_t ldy, __mmask16 om)                \
    {                                                                                                \
        enum { STEPS = 64 / NSUB, GP = G / 2 };                                                      \
        __m512 acc[RN], accm[RN];                                                                    \
        UNROLL for (int j = 0; j < RN; j++) acc[j] = accm[j] = _mm512_setzero_ps();                  \
        for (int64_t sb = 0; sb < nsb; sb++) {                                                       \
            const __m512i *wp = (const __m512i *)P + 64 * sb;                                        \
            const int32_t *q = xq + 1024 * sb;                                                       \
            const __m512 dv = _mm512_load_ps(dw + 16 * sb), dmv = _mm512_load_ps(dmw + 16 * sb);     \
            const uint32_t *bp = xbp + 128 * sb;                                                     \
            for (int h = 0; h < NSUB / G; h++) {                                                     \
                __m512i is[RN];                                                                      \
                UNROLL for (int j = 0; j < RN; j++) is[j] = _mm512_setzero_si512();                  \
                for (int s2 = 0; s2 < G; s2++) {                                                     \
                    const int s = G * h + s2;                                                        \
                    __m512i W[STEPS];                                                                \
                    UNROLL for (int k = 0; k < STEPS; k++) W[k] = _mm512_load_si512(wp + STEPS * s + k); \
                    const __m512i scv = _mm512_load_si512(sc + (16 * sb + s) * 16);                  \
                    const int32_t *qs = q + STEPS * s * 16;                                          \
                    UNROLL for (int j = 0; j < RN; j++) {                                            \
                        __m512i t = _mm512_dpbusd_epi32(_mm512_setzero_si512(), W[0], _mm512_set1_epi32(qs[j])); \
                        UNROLL for (int k = 1; k < STEPS; k++) t =                                   \
                            _mm512_dpbusd_epi32(t, W[k], _mm512_set1_epi32(qs[16 * k + j]));         \
                        is[j] = _mm512_add_epi32(is[j], _mm512_mullo_epi32(t, scv));                 \
                    }                                                                                \
                }                                                                                    \
                __m512i PR[GP];                                                                      \
                UNROLL for (int i = 0; i < GP; i++) PR[i] = _mm512_load_si512(pr + (8 * sb + GP * h + i) * 16); \
                UNROLL for (int j = 0; j < RN; j++) {                                                \
                    const __m512 dx = _mm512_set1_ps(xd[16 * sb + j]);                               \
                    __m512i m = _mm512_setzero_si512();                                              \
                    UNROLL for (int i = 0; i < GP; i++)                                              \
                        m = _mm512_dpwssd_epi32(m, PR[i], _mm512_set1_epi32((int)bp[16 * (GP * h + i) + j])); \
                    acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is[j]), _mm512_mul_ps(dv, dx), acc[j]); \
                    accm[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(m), _mm512_mul_ps(dmv, dx), accm[j]); \
                }                                                                                    \
            }                                                                                        \
        }                                                                                            \
        UNROLL for (int j = 0; j < RN; j++)                                                          \
            _mm512_mask_storeu_ps(y + j * ldy, om, _mm512_sub_ps(acc[j], accm[j]));                 \
    }
#define SPLIT_CORES(NAME, NSUB, G)                                                                   \
    SPLIT_CORE(NAME, 8, NSUB, G)                                                                     \
    SPLIT_CORE(NAME, 4, NSUB, G)                                                                     \
    SPLIT_CORE(NAME, 2, NSUB, G)                                                                     \
    SPLIT_CORE(NAME, 1, NSUB, G)
SPLIT_CORES(q4k, 8, 2)
SPLIT_CORES(q2k, 16, 8)

#define QK_CORES(NAME, NSUB, MIN)                                                                    \
    QK_CORE(NAME, 8, NSUB, MIN)                                                                      \
    QK_CORE(NAME, 4, NSUB, MIN)                                                                      \
    QK_CORE(NAME, 2, NSUB, MIN)                                                                      \
    QK_CORE(NAME, 1, NSUB, MIN)
QK_CORES(qk16c, 16, 0) /* Q3_K, Q6_K */
QK_CORES(qk8m, 8, 1)   /* Q4_K, Q5_K */

typedef void (*qk_core_fn)(int64_t, const uint8_t *, const float *, const float *, const int32_t *,
                           const uint32_t *, const int32_t *, const float *, const uint32_t *, float *, int64_t,
                           __mmask16);

static void gemm_q(int wtype, int64_t n, const void *w, size_t wrs, int nr, const void *xa, size_t xrs, int nt,
                   const void *tiles, size_t tile_bytes, void *scratch, float *y, int64_t ldy)
{
    const qpanel p = q_layout(scratch, n);
    build_panel(wtype, n, w, wrs, nr, &p);
    const __mmask16 om = (__mmask16)((1u << nr) - 1);
    const int cls = rt_unpack_class(wtype);
    const int64_t nb = n / 32, nsb = n / 256;
    const qk_core_fn *qk = NULL;
    static const qk_core_fn qk16c[4] = {qk16c_8, qk16c_4, qk16c_2, qk16c_1};
    static const qk_core_fn qk8m[4] = {qk8m_8, qk8m_4, qk8m_2, qk8m_1};
    static const qk_core_fn q4k[4] = {q4k_8, q4k_4, q4k_2, q4k_1};
    static const qk_core_fn q2k[4] = {q2k_8, q2k_4, q2k_2, q2k_1};
    if (cls == RT_CLS_Q8_K)
        qk = wtype == GGUF_Q2_K ? q2k : wtype == GGUF_Q4_K ? q4k : kq_sub32(wtype) ? qk8m : qk16c;
    for (int t0 = 0; t0 < nt; t0 += 16) {
        const char *tile = (const char *)tiles + (size_t)(t0 / 16) * tile_bytes;
        const int tn = nt - t0 < 16 ? nt - t0 : 16;
        float *yt = y + (size_t)t0 * ldy;
        if (cls == RT_CLS_Q8_K) {
            const int32_t *xq = (const int32_t *)tile;
            const float *xd = (const float *)(xq + nsb * 1024);
            const uint32_t *xbp = (const uint32_t *)(xd + nsb * 16);
            for (int j = 0; j < tn;) {
                const int k = tn - j >= 8 ? 0 : tn - j >= 4 ? 1 : tn - j >= 2 ? 2 : 3;
                qk[k](nsb, p.P, p.s0, p.s1, p.sc, p.pr, xq + j, xd + j, xbp + j, yt + (size_t)j * ldy, ldy, om);
                j += 8 >> k;
            }
            continue;
        }
        const int32_t *xq = (const int32_t *)tile;
        const float *xd = (const float *)(xq + nb * 128);
        const void *xc = xd + nb * 16;
#define RUN(RN)                                                                                      \
    do {                                                                                             \
        if (cls == RT_CLS_Q8_0)                                                                      \
            q80_core_##RN(nb, p.P, p.s0, xq + j, xd + j, (const int32_t *)xc + j, yt + (size_t)j * ldy, ldy, om); \
        else                                                                                         \
            q81_core_##RN(nb, p.P, p.s0, p.s1, xq + j, xd + j, (const float *)xc + j, yt + (size_t)j * ldy, ldy, om); \
        j += RN;                                                                                     \
    } while (0)
        int j = 0;
        if (tn == 16)
            RUN(16);
        if (tn - j >= 8)
            RUN(8);
        if (tn - j >= 4)
            RUN(4);
        if (tn - j >= 2)
            RUN(2);
        if (tn - j >= 1)
            RUN(1);
#undef RUN
    }
}

/* ---------------------------------------------------------------- attention */

/* ggml's AVX-512 vector expf (the same operations, so the same bits as llama.cpp's AVX-512
 * build; it differs from the AVX2 one in its last steps): e^x = 2^n (1 + b c(b)). */
static inline __m512 gexp16(__m512 x)
{
    const __m512 r = _mm512_set1_ps(0x1.8p23f);
    const __m512 z = _mm512_fmadd_ps(x, _mm512_set1_ps(0x1.715476p+0f), r);
    const __m512 n = _mm512_sub_ps(z, r);
    const __m512 b = _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.7f7d1cp-20f),
                                      _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.62e4p-1f), x));
    const __mmask16 d = _mm512_cmp_ps_mask(_mm512_abs_ps(n), _mm512_set1_ps(192), _CMP_GT_OQ);
    const __m512 u = _mm512_mul_ps(b, b);
    const __m512 j = _mm512_fmadd_ps(
        _mm512_fmadd_ps(_mm512_fmadd_ps(_mm512_set1_ps(0x1.0e4020p-7f), b, _mm512_set1_ps(0x1.573e2ep-5f)), u,
                        _mm512_fmadd_ps(_mm512_set1_ps(0x1.555e66p-3f), b, _mm512_set1_ps(0x1.fffdb6p-2f))),
        u, _mm512_fmadd_ps(_mm512_set1_ps(0x1.ffffecp-1f), b, _mm512_set1_ps(1.0f)));
    const __m512 res = _mm512_scalef_ps(j, n);
    if (!d)
        return res;
    const __m512 alt = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(n, _mm512_setzero_ps(), _CMP_LE_OQ),
                                            _mm512_set1_ps(INFINITY), _mm512_setzero_ps());
    return _mm512_mask_blend_ps(d, res, alt);
}

static inline __mmask16 tail16(int left) { return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1); }

/* Flash attention's online softmax and P·V for one query row whose n scaled scores are in
 * row (overwritten), as the AVX-512 build does it (see rt_attn_fn). */
static void fa_row(float *row, int n, const float *v, int64_t ldv, int hd, float *out)
{
    float M = -INFINITY, S = 0;
    for (int d = 0; d < hd; d += 16)
        _mm512_mask_storeu_ps(out + d, tail16(hd - d), _mm512_setzero_ps());
    for (int t0 = 0; t0 < n; t0 += RT_FA_TILE) {
        const int nt = n - t0 < RT_FA_TILE ? n - t0 : RT_FA_TILE;
        __m512 vmx = _mm512_set1_ps(-INFINITY);
        for (int j = 0; j < nt; j += 16)
            vmx = _mm512_mask_max_ps(vmx, tail16(nt - j), vmx, _mm512_maskz_loadu_ps(tail16(nt - j), row + t0 + j));
        const float Mn = fmaxf(M, _mm512_reduce_max_ps(vmx));
        if (Mn > M && M != -INFINITY) {
            const float ms = expf(M - Mn);
            for (int d = 0; d < hd; d += 16) {
                const __mmask16 mk = tail16(hd - d);
                _mm512_mask_storeu_ps(out + d, mk, _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, out + d), _mm512_set1_ps(ms)));
            }
            S *= ms;
        }
        M = Mn;
        const __m512 vm = _mm512_set1_ps(M);
        double sum = 0;
        for (int j = 0; j < nt; j += 16) {
            const __mmask16 mk = tail16(nt - j);
            const __m512 x = _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), mk, row + t0 + j);
            const __m512 e = gexp16(_mm512_sub_ps(x, vm));
            _mm512_mask_storeu_ps(row + t0 + j, mk, e);
            sum += (double)_mm512_reduce_add_ps(e);
        }
        S = (float)((double)S + sum);
        for (int d0 = 0; d0 < hd; d0 += 64) {
            __m512 a[4];
            const int nv = hd - d0 >= 64 ? 4 : (hd - d0 + 15) / 16;
            UNROLL for (int c = 0; c < 4; c++)
                a[c] = c < nv ? _mm512_maskz_loadu_ps(tail16(hd - d0 - 16 * c), out + d0 + 16 * c) : _mm512_setzero_ps();
            for (int j = 0; j < nt; j++) {
                const __m512 pj = _mm512_set1_ps(row[t0 + j]);
                const float *vj = v + (int64_t)(t0 + j) * ldv + d0;
                UNROLL for (int c = 0; c < 4; c++)
                    if (c < nv)
                        a[c] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail16(hd - d0 - 16 * c), vj + 16 * c), pj, a[c]);
            }
            UNROLL for (int c = 0; c < 4; c++)
                if (c < nv)
                    _mm512_mask_storeu_ps(out + d0 + 16 * c, tail16(hd - d0 - 16 * c), a[c]);
        }
    }
    const __m512 inv = _mm512_set1_ps(1.0f / S);
    for (int d = 0; d < hd; d += 16) {
        const __mmask16 mk = tail16(hd - d);
        _mm512_mask_storeu_ps(out + d, mk, _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, out + d), inv));
    }
}

/* One query row (rt_attn_fn) with the AVX-512 build's arithmetic. */
static void attn_row(const float *q, const float *kt, int64_t ldk, const float *v, int64_t ldv, int n, int hd,
                     float scale, float *p, float *out)
{
    for (int j = 0; j < n; j += 16) {
        const __mmask16 mk = tail16(n - j);
        __m512 acc = _mm512_setzero_ps();
        for (int d = 0; d < hd; d++)
            acc = _mm512_fmadd_ps(_mm512_set1_ps(q[d]), _mm512_maskz_loadu_ps(mk, kt + (size_t)d * ldk + j), acc);
        _mm512_mask_storeu_ps(p + j, mk, _mm512_mul_ps(acc, _mm512_set1_ps(scale)));
    }
    fa_row(p, n, v, ldv, hd, out);
}

static void attn_rows(const float *q, int64_t ldq, int i0, int m, const float *kt, int64_t ldk, const float *v,
                      int64_t ldv, int hd, float scale, float *s, float *out, int64_t ldo)
{
    if (hd % 16 || m > 16 || ((uintptr_t)s & 63)) {
        for (int r = 0; r < m; r++)
            attn_row(q + r * ldq, kt, ldk, v, ldv, i0 + r + 1, hd, scale, s, out + r * ldo);
        return;
    }
    const int nk = i0 + m, ls = (nk + 15) & ~15;
    float *qt = s + (size_t)16 * ls; /* the 16 query rows transposed: hd × 16 */
    transpose_rows(q, (size_t)ldq * 4, m, hd, qt);
    /* scores: s_j = scale * sum_d q[d] k_j[d], the sum in d order as the row kernels do */
    const __m512 vscale = _mm512_set1_ps(scale);
    for (int j = 0; j < nk; j += 16) {
        const __mmask16 mk = tail16(nk - j);
        __m512 acc[16];
        UNROLL for (int r = 0; r < 16; r++) acc[r] = _mm512_setzero_ps();
        for (int d = 0; d < hd; d++) {
            const __m512 kv = _mm512_maskz_loadu_ps(mk, kt + (size_t)d * ldk + j);
            const float *qd = qt + 16 * d;
            UNROLL for (int r = 0; r < 16; r++) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(qd[r]), kv, acc[r]);
        }
        UNROLL for (int r = 0; r < 16; r++) _mm512_store_ps(s + (size_t)r * ls + j, _mm512_mul_ps(acc[r], vscale));
    }
    /* flash attention's online softmax and P·V, row by row */
    for (int r = 0; r < m; r++)
        fa_row(s + (size_t)r * ls, i0 + r + 1, v, ldv, hd, out + (size_t)r * ldo);
}

/* ---------------------------------------------------------------- log-sum-exp */

/* expf(x) for 8 floats (x <= 0 in use), computed in double (|relative error| < 1e-14 before
 * the final rounding, so the f32 result is libm's but for rare near-ties). */
static inline __m256 expf_via_double(__m256 xf)
{
    __m512d x = _mm512_max_pd(_mm512_cvtps_pd(xf), _mm512_set1_pd(-120.0));
    const __m512d n = _mm512_roundscale_pd(_mm512_mul_pd(x, _mm512_set1_pd(1.4426950408889634)),
                                           _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512d r = _mm512_fnmadd_pd(n, _mm512_set1_pd(6.93147180369123816490e-01), x);
    r = _mm512_fnmadd_pd(n, _mm512_set1_pd(1.90821492927058770002e-10), r);
    /* Taylor series to r^11: |r| <= 0.35 gives a truncation error below 7e-15 */
    static const double c[12] = {1.0 / 39916800, 1.0 / 3628800, 1.0 / 362880, 1.0 / 40320, 1.0 / 5040, 1.0 / 720,
                                 1.0 / 120,       1.0 / 24,      1.0 / 6,      0.5,         1.0,        1.0};
    __m512d p = _mm512_set1_pd(c[0]);
    for (int i = 1; i < 12; i++)
        p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(c[i]));
    return _mm512_cvtpd_ps(_mm512_scalef_pd(p, n));
}

static double sum_exp(const float *x, int64_t n, float *mx)
{
    __m512 vm = _mm512_set1_ps(-INFINITY);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 mk = tail16((int)(n - i < 16 ? n - i : 16));
        vm = _mm512_mask_max_ps(vm, mk, vm, _mm512_maskz_loadu_ps(mk, x + i));
    }
    const float m = _mm512_reduce_max_ps(vm);
    const __m256 vmf = _mm256_set1_ps(m);
    __m512d s = _mm512_setzero_pd();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        s = _mm512_add_pd(s, _mm512_cvtps_pd(expf_via_double(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmf))));
    double sum = _mm512_reduce_add_pd(s);
    for (; i < n; i++)
        sum += expf(x[i] - m);
    *mx = m;
    return sum;
}

/* ---------------------------------------------------------------- row helpers */

static void rms_norm(const float *x, const float *w, int64_t n, float eps, float *y)
{
    double sum = 0; /* in order, as ggml's rms_norm */
    for (int64_t i = 0; i < n; i++)
        sum += (double)(x[i] * x[i]);
    const float mean = (float)(sum / (double)n);
    const __m512 scale = _mm512_set1_ps(1.0f / sqrtf(mean + eps));
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 mk = tail16((int)(n - i < 16 ? n - i : 16));
        const __m512 v = _mm512_maskz_loadu_ps(mk, x + i);
        _mm512_mask_storeu_ps(y + i, mk, _mm512_mul_ps(_mm512_mul_ps(v, scale), _mm512_maskz_loadu_ps(mk, w + i)));
    }
}

/* ggml's swiglu on the AVX-512 build: silu(g) * u by 16 lanes with its expf, the rest with
 * libm's expf. */
static void swiglu(float *g, const float *u, int64_t n)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 x = _mm512_loadu_ps(g + i);
        const __m512 e = gexp16(_mm512_sub_ps(_mm512_setzero_ps(), x));
        _mm512_storeu_ps(g + i, _mm512_mul_ps(_mm512_div_ps(x, _mm512_add_ps(one, e)), _mm512_loadu_ps(u + i)));
    }
    for (; i < n; i++)
        g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

/* Activation converters, byte-identical to the scalar ones (round half to even, as ggml). */
static inline float amax16(__m512 a, __m512 b)
{
    return _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(a), _mm512_abs_ps(b)));
}

static void quant_q8_0(const float *x, void *dst, int64_t n)
{
    lq_block_q8_0 *y = dst;
    for (int64_t b = 0; b < n / 32; b++, x += 32) {
        const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
        const float amax = amax16(v0, v1);
        const __m512 id = _mm512_set1_ps(amax != 0.f ? 127.f / amax : 0.f);
        y[b].d = rt_f2h(amax / 127.f);
        _mm_storeu_si128((__m128i *)y[b].qs, _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(v0, id))));
        _mm_storeu_si128((__m128i *)(y[b].qs + 16), _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(v1, id))));
    }
}

static void quant_q8_K(const float *x, void *dst, int64_t n)
{
    lq_block_q8_K *y = dst;
    for (int64_t b = 0; b < n / 256; b++, x += 256) {
        __m512 m = _mm512_setzero_ps();
        for (int j = 0; j < 256; j += 16)
            m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_loadu_ps(x + j)));
        const float amax = _mm512_reduce_max_ps(m);
        if (amax == 0.f) {
            memset(&y[b], 0, sizeof y[b]);
            continue;
        }
        float max = amax; /* the first value of largest magnitude, with its sign */
        for (int j = 0; j < 256; j++)
            if (fabsf(x[j]) == amax) {
                max = x[j];
                break;
            }
        const float iscale = -127.f / max;
        const __m512 vs = _mm512_set1_ps(iscale);
        for (int j = 0; j < 256; j += 16) {
            const __m512i q = _mm512_min_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + j), vs)),
                                               _mm512_set1_epi32(127));
            _mm_storeu_si128((__m128i *)(y[b].qs + j), _mm512_cvtsepi32_epi8(q));
            y[b].bsums[j / 16] = (int16_t)_mm512_reduce_add_epi32(q);
        }
        y[b].d = 1 / iscale;
    }
}

static void transpose(const float *src, int64_t lds, int64_t rows, int64_t cols, float *dst, int64_t ldd)
{
    for (int64_t r0 = 0; r0 < rows; r0 += 16) {
        const int nr = rows - r0 < 16 ? (int)(rows - r0) : 16;
        for (int64_t c0 = 0; c0 < cols; c0 += 16) {
            const int nc = cols - c0 < 16 ? (int)(cols - c0) : 16;
            __m512i r[16];
            UNROLL for (int i = 0; i < 16; i++)
                r[i] = i < nr ? _mm512_maskz_loadu_epi32(tail16(nc), src + (r0 + i) * lds + c0) : _mm512_setzero_si512();
            tr16(r);
            for (int i = 0; i < nc; i++)
                _mm512_mask_storeu_epi32(dst + (c0 + i) * ldd + r0, tail16(nr), r[i]);
        }
    }
}

/* ---------------------------------------------------------------- sizes, single dots */

static size_t tile_size(int wtype, int64_t n)
{
    switch (rt_vec_dot_type(wtype)) {
    case GGUF_F32: return 0;
    case GGUF_F16: case GGUF_BF16: return (size_t)n * 64;
    case GGUF_Q8_0: case GGUF_Q8_1: return q8b_tile_size(n);
    case GGUF_Q8_K: return q8k_tile_size(n);
    default: return 0;
    }
}

static size_t scratch_size(int wtype, int64_t n) { return rt_unpack_class(wtype) < 0 ? 0 : q_scratch_size(n); }

static float dot_via_gemm(int wtype, int64_t n, const void *w, const void *xa)
{
    const size_t ts = (tile_size(wtype, n) + 63) & ~(size_t)63, ss = (scratch_size(wtype, n) + 63) & ~(size_t)63;
    char *buf = aligned_alloc(64, ts + ss);
    if (!buf)
        return rt_kernels_scalar.dot[wtype](n, w, xa);
    const size_t xrs = rt_act_row_size(wtype, n);
    float y;
    if (rt_unpack_class(wtype) < 0) {
        if (wtype != GGUF_F32)
            prep_widen(wtype, n, xa, xrs, 1, buf);
        gemm_flt(wtype, n, w, 0, 1, xa, xrs, 1, buf, ts, NULL, &y, 1);
    } else {
        (rt_vec_dot_type(wtype) == GGUF_Q8_K ? prep_q8k : prep_q8b)(wtype, n, xa, xrs, 1, buf);
        gemm_q(wtype, n, w, 0, 1, xa, xrs, 1, buf, ts, buf + ts, &y, 1);
    }
    free(buf);
    return y;
}

#define DOT(T)                                                                                       \
    static float dot_##T(int64_t n, const void *w, const void *xa) { return dot_via_gemm(GGUF_##T, n, w, xa); }
DOT(F32)
DOT(F16)
DOT(BF16)
DOT(Q4_0)
DOT(Q2_K)
DOT(Q4_K)

const rt_kernel_table rt_kernels_avx512 = {
    .attn = attn_row,
    .attn_rows = attn_rows,
    .sum_exp = sum_exp,
    .rms_norm = rms_norm,
    .transpose = transpose,
    .swiglu = swiglu,
    .quant = {[GGUF_Q8_0] = quant_q8_0, [GGUF_Q8_K] = quant_q8_K},
    /* Only the types llama.cpp's AVX-512 build multiplies with kernels of its own (F32 through
     * llamafile's 16-lane sgemm, Q4_0/Q4_K/Q2_K through its repacked GEMMs) are here; the
     * others run ggml's AVX2 arithmetic there too (llamafile's 8-lane Q8_0/Q5_0 kernel, the
     * AVX2 vec_dots), so they fall back to the AVX2 table, which sums as those do. */
    .dot = {[GGUF_F32] = dot_F32, [GGUF_F16] = dot_F16, [GGUF_BF16] = dot_BF16, [GGUF_Q4_0] = dot_Q4_0,
            [GGUF_Q2_K] = dot_Q2_K, [GGUF_Q4_K] = dot_Q4_K},
    .gemm = {[GGUF_F32] = gemm_flt, [GGUF_F16] = gemm_flt, [GGUF_BF16] = gemm_flt, [GGUF_Q4_0] = gemm_q,
             [GGUF_Q2_K] = gemm_q, [GGUF_Q4_K] = gemm_q},
    .prep = {[GGUF_F16] = prep_widen, [GGUF_BF16] = prep_widen, [GGUF_Q4_0] = prep_q8b, [GGUF_Q2_K] = prep_q8k,
             [GGUF_Q4_K] = prep_q8k},
    .tile_size = tile_size,
    .scratch_size = scratch_size,
};
