/* libquant internals shared by the block quantizers and (later) the GPTQ solver.
 *
 * Each quantizer is split in two reusable steps so that a caller with its own rounding
 * order (GPTQ) can use them separately:
 *   (a) choose:  pick a block's scale(s)/min(s) from the values and per-column importance,
 *                writing the block header (and the levels the search found);
 *   (b) levels:  quantize values on a given, fixed grid (the header's fp16 scales for
 *                k-quants, an explicit scale for legacy types: a caller that wants the
 *                stored grid passes the fp16-rounded scale);
 * plus a pack step that stores integer levels into the block's bit layout.
 * lq_quantize_row() chains them exactly as ggml does, so the bytes equal llama.cpp's.
 *
 * Levels are always unsigned and in element order: q4_0 0..15, q4_1 0..15, q5_0/q5_1 0..31,
 * q2_K 0..3, q3_K 0..7, q4_K 0..15, q5_K 0..31, q6_K 0..63.
 * Blocks are passed as struct pointers to properly aligned local copies; the row functions
 * copy to and from the caller's (possibly unaligned) buffer.
 */
#ifndef QFORGE_LQ_INTERNAL_H
#define QFORGE_LQ_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "common/qf_half.h"
#include "common/qf_msg.h"
#include "libquant/lq.h"
#include "libquant/lq_blocks.h"

/* A one-line message into msg[LQ_MSG_SIZE] (if not NULL); returns e. */
lq_error lq_fail_(char *msg, lq_error e, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* One-line check: if cond, return lq_fail_(msg, code, fmt, ...). */
#define LQ_FAIL_IF(cond, msg, code, ...) QF_FAIL_IF(cond, lq_fail_, msg, code, __VA_ARGS__)

/* Bit-exactness needs every a*b+c rounded twice, as ggml's reference build does: forbid fused
 * multiply-add contraction even if the build enables it (gcc -std=gnu11 with FMA, clang). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

/* Round to the nearest integer, ties to even, by adding 1.5*2^23 (ggml's nearest_int).
 * Exact for |f| < 2^22; other inputs (including NaN/inf) give some int, never UB. */
static inline int lq_nearest_int(float f)
{
    float v = f + 12582912.f;
    int32_t i;
    memcpy(&i, &v, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

/* C's float->int truncation where it is defined; INT32_MIN (what x86 cvttss2si returns)
 * for NaN and out-of-range values, so corrupt inputs never hit undefined behaviour. */
static inline int32_t lq_trunc_int(float f)
{
    return (f > -2147483648.f && f < 2147483648.f) ? (int32_t)f : INT32_MIN;
}

/* Values whose largest magnitude is below this are treated as all zero (ggml's GROUP_MAX_EPS). */
#define LQ_GROUP_EPS 1e-15f

/* ---- scale searches (the ggml make_*_quants family); groups of n <= 32 values ---- */

/* Symmetric grid L - nmax, L in 0..2*nmax-1, minimizing sum w*(x - s*(L-nmax))^2: rounds with
 * the inverse scale -nmax/max and 18 trials -(nmax + 0.1*k)/max, k = -9..9 (k != 0), each
 * refit by least squares. w NULL: w = x^2. Returns the scale s (0 if all |x| < LQ_GROUP_EPS,
 * then L = 0). */
float lq_search_sym(int n, int nmax, const float *x, const float *w, int8_t *L);

/* Q3_K reference search: start from -nmax/max rounding, then up to 5 passes of per-element
 * coordinate descent on sum x^2 (x - s*l)^2. L in 0..2*nmax-1. Returns s. */
float lq_search_sym_refine(int n, int nmax, const float *x, int8_t *L);

/* Affine grid x ~ s*L - m, L in 0..nmax, m >= 0: tries nstep+1 inverse scales
 * (rmin + rdelta*k + nmax)/(max - min), each refit by weighted least squares for (s, m),
 * keeping the lowest weighted error (|err| if use_mad, else err^2). w NULL: w = x^2.
 * `clamp_first` selects ggml's newer overflow-safe rounding inside the trials (used by the
 * importance-weighted path, make_qkx3); false reproduces make_qkx2. Laux: n bytes scratch.
 * Returns s and stores m in *neg_min. */
float lq_search_affine(int n, int nmax, const float *x, const float *w, uint8_t *L,
                       float *neg_min, uint8_t *Laux, float rmin, float rdelta, int nstep,
                       bool use_mad, bool clamp_first);

/* Non-negative grid x ~ s*L, L in 0..nmax (for quantizing the sub-block scales themselves),
 * weighted by w; 8 trial scales then coordinate descent. Returns s (0 if max < LQ_GROUP_EPS). */
float lq_search_pos(int n, int nmax, const float *x, const float *w, uint8_t *L);

/* lq_search_affine on `count` independent groups of n values at once (SIMD lanes): group g
 * is x[g*n ..], weights w[g*n ..] (w NULL: x^2), levels to L[g*n ..], results scale[g] and
 * neg_min[g]. Bit-identical to calling lq_search_affine per group; n <= 32, any count
 * (runs LQ_AFFINE_BATCH groups per pass). */
#define LQ_AFFINE_BATCH 8
void lq_search_affine_multi(int count, int n, int nmax, const float *x, const float *w,
                            uint8_t *L, float *scale, float *neg_min, float rmin, float rdelta,
                            int nstep, bool use_mad, bool clamp_first);

/* One-trial-at-a-time version of lq_search_sym (same results, bit for bit; kept as the
 * readable reference and for the equivalence tests). */
float lq_search_sym_serial(int n, int nmax, const float *x, const float *w, int8_t *L);

/* Importance of each value for the imatrix paths: w[i] = qw[i] * sqrt(sigma2 + x[i]^2). */
void lq_imat_weights(int n, const float *x, const float *qw, float sigma2, float *w);

/* Sum of squares in index order, in float (as ggml accumulates it). */
float lq_sum_sq(int64_t n, const float *x);

/* ---- legacy blocks (32 values) ----
 * choose_ref:   ggml's reference scale (and min) from the block alone.
 * choose_imat:  ggml's weighted search with w = lq_imat_weights(qw, row sigma2 = sum x^2 / n);
 *               also returns the levels that search picked (ggml stores those as they are).
 * levels:       round on the grid given by d (and m): the reference quantizer's rounding,
 *               with d the scale (before fp16 rounding for byte-exact reference output).
 * pack:         header fields + levels -> block. */
float lq_q4_0_choose_ref(const float *x);
float lq_q4_0_choose_imat(const float *x, const float *w, uint8_t *L);
void lq_q4_0_levels(const float *x, float d, uint8_t *L);
void lq_q4_0_pack(float d, const uint8_t *L, lq_block_q4_0 *y);

float lq_q4_1_choose_ref(const float *x, float *min);
float lq_q4_1_choose_imat(const float *x, const float *w, float *min, uint8_t *L);
void lq_q4_1_levels(const float *x, float d, float min, uint8_t *L);
void lq_q4_1_pack(float d, float min, const uint8_t *L, lq_block_q4_1 *y);

float lq_q5_0_choose_ref(const float *x);
float lq_q5_0_choose_imat(const float *x, const float *w, uint8_t *L);
void lq_q5_0_levels(const float *x, float d, uint8_t *L);
void lq_q5_0_pack(float d, const uint8_t *L, lq_block_q5_0 *y);

float lq_q5_1_choose_ref(const float *x, float *min);
float lq_q5_1_choose_imat(const float *x, const float *w, float *min, uint8_t *L);
void lq_q5_1_levels(const float *x, float d, float min, uint8_t *L);
void lq_q5_1_pack(float d, float min, const uint8_t *L, lq_block_q5_1 *y);

float lq_q8_0_choose_ref(const float *x);
void lq_q8_0_levels(const float *x, float d, int8_t *q);

/* Whole-block quantizers: w NULL = reference path. */
void lq_q4_0_quantize_block(const float *x, const float *w, lq_block_q4_0 *y);
void lq_q4_1_quantize_block(const float *x, const float *w, lq_block_q4_1 *y);
void lq_q5_0_quantize_block(const float *x, const float *w, lq_block_q5_0 *y);
void lq_q5_1_quantize_block(const float *x, const float *w, lq_block_q5_1 *y);
void lq_q8_0_quantize_block(const float *x, lq_block_q8_0 *y);
void lq_q8_1_quantize_block(const float *x, lq_block_q8_1 *y);
/* Importance path of nb consecutive blocks (w = their combined weights), searches in SIMD
 * lanes; same bytes as lq_q4_1/q5_1_quantize_block per block. */
void lq_q4_1_quantize_blocks_imat(int nb, const float *x, const float *w, lq_block_q4_1 *y);
void lq_q5_1_quantize_blocks_imat(int nb, const float *x, const float *w, lq_block_q5_1 *y);

void lq_q4_0_dequantize_block(const lq_block_q4_0 *b, float *y);
void lq_q4_1_dequantize_block(const lq_block_q4_1 *b, float *y);
void lq_q5_0_dequantize_block(const lq_block_q5_0 *b, float *y);
void lq_q5_1_dequantize_block(const lq_block_q5_1 *b, float *y);
void lq_q8_0_dequantize_block(const lq_block_q8_0 *b, float *y);

/* ---- k-quants (super-blocks of 256) ----
 * choose(x, qw, y, L): x = 256 values, qw = their 256 imatrix weights or NULL (reference
 *   path). Writes every header field of y (d, dmin, scales) and L = the levels of the
 *   per-sub-block search; those stand for sub-blocks whose quantized scale is 0.
 * levels(x, y, L): requantize every sub-block with a non-zero scale on the grid decoded from
 *   y's header (fp16 d/dmin times the 4/6/8-bit sub-scales), round to nearest, clamp.
 * grid(y, j, &d, &m): sub-block j's effective step and offset: value = d*level - m
 *   (levels as above, so symmetric types report m = d * offset).
 * pack(L, y): store levels into y's quant bits (header untouched).
 * q6_K's choose returns false when the whole super-block is (near) zero; ggml then writes an
 *   all-zero block and levels/pack must be skipped. */
void lq_q2_K_choose(const float *x, const float *qw, lq_block_q2_K *y, uint8_t *L);
void lq_q2_K_levels(const float *x, const lq_block_q2_K *y, uint8_t *L);
void lq_q2_K_grid(const lq_block_q2_K *y, int j, float *d, float *m);
void lq_q2_K_pack(const uint8_t *L, lq_block_q2_K *y);

void lq_q3_K_choose(const float *x, const float *qw, lq_block_q3_K *y, uint8_t *L);
void lq_q3_K_levels(const float *x, const lq_block_q3_K *y, uint8_t *L);
void lq_q3_K_grid(const lq_block_q3_K *y, int j, float *d, float *m);
void lq_q3_K_pack(const uint8_t *L, lq_block_q3_K *y);

void lq_q4_K_choose(const float *x, const float *qw, lq_block_q4_K *y, uint8_t *L);
void lq_q4_K_levels(const float *x, const lq_block_q4_K *y, uint8_t *L);
void lq_q4_K_grid(const lq_block_q4_K *y, int j, float *d, float *m);
void lq_q4_K_pack(const uint8_t *L, lq_block_q4_K *y);

void lq_q5_K_choose(const float *x, const float *qw, lq_block_q5_K *y, uint8_t *L);
void lq_q5_K_levels(const float *x, const lq_block_q5_K *y, uint8_t *L);
void lq_q5_K_grid(const lq_block_q5_K *y, int j, float *d, float *m);
void lq_q5_K_pack(const uint8_t *L, lq_block_q5_K *y);

bool lq_q6_K_choose(const float *x, const float *qw, lq_block_q6_K *y, uint8_t *L);
void lq_q6_K_levels(const float *x, const lq_block_q6_K *y, uint8_t *L);
void lq_q6_K_grid(const lq_block_q6_K *y, int j, float *d, float *m);
void lq_q6_K_pack(const uint8_t *L, lq_block_q6_K *y);

/* 6-bit scale/min pair j (0..7) of a q4_K/q5_K scales[12] array, and its inverse. */
void lq_kq_get_scale_min(int j, const uint8_t *s, uint8_t *sc, uint8_t *mn);
void lq_kq_set_scale_min(int j, uint8_t *s, uint8_t sc, uint8_t mn);
/* 6-bit scale j (0..15) of a q3_K scales[12] array, as stored (0..63). */
int lq_q3_K_get_scale(const uint8_t *s, int j);

void lq_q2_K_quantize_block(const float *x, const float *qw, lq_block_q2_K *y);
void lq_q3_K_quantize_block(const float *x, const float *qw, lq_block_q3_K *y);
void lq_q4_K_quantize_block(const float *x, const float *qw, lq_block_q4_K *y);
void lq_q5_K_quantize_block(const float *x, const float *qw, lq_block_q5_K *y);
void lq_q6_K_quantize_block(const float *x, const float *qw, lq_block_q6_K *y);
void lq_q8_K_quantize_block(const float *x, lq_block_q8_K *y);

void lq_q2_K_dequantize_block(const lq_block_q2_K *b, float *y);
void lq_q3_K_dequantize_block(const lq_block_q3_K *b, float *y);
void lq_q4_K_dequantize_block(const lq_block_q4_K *b, float *y);
void lq_q5_K_dequantize_block(const lq_block_q5_K *b, float *y);
void lq_q6_K_dequantize_block(const lq_block_q6_K *b, float *y);
void lq_q8_K_dequantize_block(const lq_block_q8_K *b, float *y);

#endif
