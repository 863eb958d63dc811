/* Internal to the runtime: half-precision helpers and the per-ISA kernel tables. */
#ifndef QFORGE_RT_INTERNAL_H
#define QFORGE_RT_INTERNAL_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "common/qf_half.h"
#include "common/qf_msg.h"
#include "runtime/runtime.h"
#include "libgguf/gguf.h"
#include "libquant/lq_blocks.h"

/* ---- fp16 / bf16: the one codec, common/qf_half.h (round to nearest even, as ggml) ---- */
static inline float rt_f32_from_bits(uint32_t u) { return qf_bits_f32(u); }
static inline uint32_t rt_bits_from_f32(float f) { return qf_f32_bits(f); }
static inline float rt_h2f(uint16_t h) { return qf_f16_to_f32(h); }
static inline uint16_t rt_f2h(float f) { return qf_f32_to_f16(f); }
static inline float rt_bf2f(uint16_t h) { return qf_bf16_to_f32(h); }
static inline uint16_t rt_f2bf(float f) { return qf_f32_to_bf16(f); }

/* Round to nearest, ties to even, for |x| < 2^22 (ggml's nearest_int). */
static inline int rt_nearest_int(float x)
{
    float v = x + 12582912.f;
    int32_t i;
    memcpy(&i, &v, 4);
    return (i & 0x007fffff) - 0x00400000;
}

/* 6-bit scale and min j (0..7) of a q4_K/q5_K super-block. */
static inline void rt_kq_scale_min(int j, const uint8_t *q, int *sc, int *mn)
{
    if (j < 4) {
        *sc = q[j] & 63;
        *mn = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *mn = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

/* 16 6-bit scales of a q3_K super-block, minus 32. */
static inline void rt_q3k_scales(const uint8_t *s, int8_t out[16])
{
    for (int j = 0; j < 16; j++) {
        int lo = j < 8 ? (s[j] & 0xF) : (s[j - 8] >> 4);
        int hi = (s[8 + (j % 4)] >> (2 * (j / 4))) & 3;
        out[j] = (int8_t)((lo | (hi << 4)) - 32);
    }
}

/* ---- kernel tables ---- */
typedef void (*rt_quant_fn)(const float *x, void *dst, int64_t n);
typedef float (*rt_dot_fn)(int64_t n, const void *w, const void *xa);

/* Activations are handled in tiles of RT_TOK_TILE tokens. A table may repack each tile of
 * converted activations once per matmul (prep) into tile_size(wtype, n) bytes, 64-byte
 * aligned; its gemm then reads the tiles (tiles, tile_bytes apart) instead of xa. */
#define RT_TOK_TILE 16
/* Keys per online-softmax step of llama.cpp's CPU flash attention. */
#define RT_FA_TILE 64
/* One lane of ggml's AVX2 vector expf (bit-exact emulation). */
float rt_expf_avx2_lane(float x);
typedef void (*rt_prep_fn)(int wtype, int64_t n, const void *xa, size_t xrs, int nt, void *tile);

/* nr (<= RT_ROW_BLOCK) weight rows (wrs bytes apart) × nt activation rows (xrs bytes apart,
 * or the prepped tiles) -> y[t*ldy + r]. scratch: scratch_size(wtype, n) bytes private to the
 * calling thread, 64-byte aligned (NULL when the table has no scratch_size). */
typedef void (*rt_gemm_fn)(int wtype, int64_t n, const void *w, size_t wrs, int nr, const void *xa,
                           size_t xrs, int nt, const void *tiles, size_t tile_bytes, void *scratch,
                           float *y, int64_t ldy);

/* One causal-attention query row over n keys, as llama.cpp's CPU flash attention (tiled path)
 * computes it: s_j = scale * (q · k_j) (an fma chain over d; k_j column j of kt, hd rows of
 * ldk floats), then per tile of RT_FA_TILE keys an online softmax — running max M, sum S,
 * out rescaled by expf(M_old - M_new) when M grows, e_j = exp(s_j - M) by the path's
 * vector expf, S += (per-vector float sums added in double), out[d] = fma(v_j[d], e_j, out[d])
 * in key order — and finally out *= 1/S (v: n rows of ldv floats). p: n floats of scratch. */
typedef void (*rt_attn_fn)(const float *q, const float *kt, int64_t ldk, const float *v, int64_t ldv, int n,
                           int hd, float scale, float *p, float *out);
/* Rows i0..i0+m-1 (m <= 16) of causal attention for one head: row i is q + (i-i0)*ldq and
 * attends keys 0..i, its output goes to out + (i-i0)*ldo. Same math as rt_attn_fn per row.
 * s: scratch of 16 * (i0 + m + 16) + 16 * hd floats. */
typedef void (*rt_attn_rows_fn)(const float *q, int64_t ldq, int i0, int m, const float *kt, int64_t ldk,
                                const float *v, int64_t ldv, int hd, float scale, float *s, float *out,
                                int64_t ldo);
/* *mx = max x[i]; returns sum_i expf(x[i] - *mx) with each term rounded to f32 and summed
 * in double (llama-perplexity's log-softmax). */
typedef double (*rt_sum_exp_fn)(const float *x, int64_t n, float *mx);
/* y = x * (1/sqrtf(mean(x*x) + eps)) * w, the squares (f32 products) summed in double. */
typedef void (*rt_rms_norm_fn)(const float *x, const float *w, int64_t n, float eps, float *y);
/* dst[c*ldd + r] = src[r*lds + c], r < rows, c < cols */
typedef void (*rt_transpose_fn)(const float *src, int64_t lds, int64_t rows, int64_t cols, float *dst, int64_t ldd);
/* g[i] = silu(g[i]) * u[i] */
typedef void (*rt_swiglu_fn)(float *g, const float *u, int64_t n);
/* x[i] = fp16-rounded x[i] */
typedef void (*rt_round_fn)(float *x, int64_t n);

typedef struct {
    rt_attn_fn attn;
    rt_attn_rows_fn attn_rows; /* NULL: row by row with attn */
    rt_sum_exp_fn sum_exp;
    rt_rms_norm_fn rms_norm;
    rt_transpose_fn transpose;
    rt_swiglu_fn swiglu;
    rt_round_fn round_f16;
    rt_quant_fn quant[GGUF_TYPE_MAX_]; /* by vec-dot type; NULL: use the scalar one */
    rt_dot_fn dot[GGUF_TYPE_MAX_];     /* by weight type; NULL: scalar */
    rt_gemm_fn gemm[GGUF_TYPE_MAX_];   /* by weight type; NULL: loops of dot */
    rt_prep_fn prep[GGUF_TYPE_MAX_];   /* by weight type; NULL: the gemm reads xa */
    size_t (*tile_size)(int wtype, int64_t n);
    size_t (*scratch_size)(int wtype, int64_t n);
} rt_kernel_table;

extern const rt_kernel_table rt_kernels_scalar;
extern const rt_kernel_table rt_kernels_avx2;
extern const rt_kernel_table rt_kernels_avxvnni;
extern const rt_kernel_table rt_kernels_avx512;

/* ---- unpacked weight rows for the SIMD cores ----
 * A SIMD gemm call unpacks its block of weight rows once into byte-per-value form plus
 * scales, then runs one integer core per activation class over all tokens.
 *   RT_CLS_Q8_0 (Q4_0, Q5_0, Q8_0): w = signed value, aw = |w|, d[nb] block scales;
 *       W·x = sum_b d[b] * dx[b] * sum(w*xq).
 *   RT_CLS_Q8_1 (Q4_1, Q5_1): u = unsigned value, d[nb], m[nb];
 *       W·x = sum_b d[b] * dx[b] * sum(u*xq) + m[b] * sx[b].
 *   RT_CLS_Q8_K (k-quants): u = unsigned value (u - off is the signed level), per 32 values
 *       sc32[16] = the int16 scales of its two sub-blocks of 16 (8 lanes each), per super-block
 *       corr[16] = off * sc_j, mins[16] = m_j (per sub-block of 16), d, dmin;
 *       W·x = sum_sb dx * (d * (sum_j sc_j * sum(u*xq) - sum_j corr_j * bsum_j)
 *                          - dmin * sum_j mins_j * bsum_j). */
enum { RT_CLS_Q8_0 = 0, RT_CLS_Q8_1, RT_CLS_Q8_K };

typedef struct {
    int8_t *w;       /* Q8_0 class */
    uint8_t *aw;     /* Q8_0 class |w|; other classes: the unsigned values */
    float *d, *m;    /* per block (Q8_0/Q8_1) or per super-block (d, m = dmin) */
    int16_t *sc32;   /* Q8_K: n/32 × 16 */
    int16_t *corr;   /* Q8_K: n/256 × 16 */
    int16_t *mins;   /* Q8_K: n/256 × 16 */
} rt_unpacked;

/* Class of a quantized weight type, -1 for float types. */
int rt_unpack_class(int wtype);
/* Bytes of one unpacked row of n values (including alignment slack). */
size_t rt_unpacked_size(int wtype, int64_t n);
/* Unpack one weight row into buf (rt_unpacked_size bytes, 32-byte aligned), setting u's
 * pointers into it. */
void rt_unpack_row(int wtype, const void *w, int64_t n, void *buf, rt_unpacked *u);

/* Scalar activation converters, shared by the SIMD tables for the odd cases. */
void rt_quant_q8_0_scalar(const float *x, void *dst, int64_t n);
void rt_quant_q8_1_scalar(const float *x, void *dst, int64_t n);
void rt_quant_q8_K_scalar(const float *x, void *dst, int64_t n);

/* One line into msg[RT_MSG_SIZE] (control bytes from names in a file shown as '?'); returns e. */
rt_error rt_fail_(char *msg, rt_error e, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
