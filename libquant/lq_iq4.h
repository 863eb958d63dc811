/* libquant — IQ4_NL and IQ4_XS: 4-bit indices into a fixed non-linear grid of 16 levels
 * (lq_iq4_grid, llama.cpp's kvalues_iq4nl), bit-exact with llama-quantize.
 *
 *   IQ4_NL (GGUF_IQ4_NL, 20): blocks of 32, x = d * grid[q]                      (18 bytes)
 *   IQ4_XS (GGUF_IQ4_XS, 23): super-blocks of 256 = 8 sub-blocks of 32,
 *                             x = d * (ls - 32) * grid[q], ls 6 bits            (136 bytes)
 * Layouts: lq_block_iq4_nl / lq_block_iq4_xs in libquant/lq_blocks.h.
 *
 * Quantizing (both types use the same per-32 search):
 *   - weights: imatrix NULL: w = x^2 (what llama-quantize does without an importance matrix —
 *     not ggml's quantize_row_*_ref, which skips the scale search); imatrix given:
 *     w = qw * sqrt(sigma2 + x^2), sigma2 = 2 * mean(x^2) over the block (NL) / super-block (XS);
 *   - per group of 32 with largest |x| = |m| >= 1e-15 (else s = 0): the least-squares scale s
 *     of the rounding q = nearest(x * (1/(m/127))), then for each of the 15 inverse scales
 *     (t - 127)/m, t = -7..7, the least-squares scale of that rounding, kept if it lowers
 *     sum w (x - s*grid[q])^2 (strictly: sumqx^2 > best * sumq2);
 *   - NL: d = fp16(s); XS: D = -s_max/32 with s_max the group scale of largest magnitude
 *     (first on ties; -0.0 when all are 0), d = fp16(D), ls = clamp(round(s * (1/D)), -32, 31)
 *     + 32 (round: to nearest even; 1/D := 0 when D = 0; a NaN scale rounds to 0);
 *   - levels: q = nearest grid index of x * (1/step), step = s (NL) or D * (ls - 32) (XS),
 *     both before fp16 rounding; ties go to the upper index.
 * Ownership: callers own every buffer; nothing is allocated here.
 */
#ifndef QFORGE_LQ_IQ4_H
#define QFORGE_LQ_IQ4_H

#include <stddef.h>
#include <stdint.h>

#include "libquant/lq_blocks.h"

extern const int8_t lq_iq4_grid[16];

/* Index of the grid level nearest to v (v below/above the grid: 0/15; a tie: the upper one;
 * NaN: 15). */
int lq_iq4_nearest(float v);

/* ---- rows (type GGUF_IQ4_NL or GGUF_IQ4_XS): lq_quantize_row / lq_dequantize_row limited
 * to the two types (both are entries of the type table, libquant/lq_types.h) ----
 * Quantize n floats (n a multiple of 32 / 256) into dst (no alignment needed); imatrix: n
 * weights, one per column, or NULL. Returns bytes written, 0 on a bad type, n or pointer. */
size_t lq_iq4_quantize_row(int type, const float *x, void *dst, int64_t n, const float *imatrix);
/* Decode n elements, bit-exact with ggml's dequantize_row_iq4_nl/xs. 0, or -1 on bad args. */
int lq_iq4_dequantize_row(int type, const void *src, float *y, int64_t n);

/* ---- blocks (steps reusable by a caller with its own rounding order) ----
 * choose: the scale search above; writes the header (d; XS also scales_h/scales_l) and returns
 *   the unrounded step(s) the levels are rounded with (NL: return value; XS: step[8]).
 * levels: L[i] = lq_iq4_nearest(x[i] * (1/step)), step 0 -> every x maps to 0 (level 8).
 * pack: levels of nsub groups of 32 -> qs (16 bytes per group). */
float lq_iq4_nl_choose(const float *x, const float *qw, lq_block_iq4_nl *y);
void lq_iq4_xs_choose(const float *x, const float *qw, lq_block_iq4_xs *y, float step[8]);
void lq_iq4_levels(int n, const float *x, float step, uint8_t *L);
void lq_iq4_pack(int nsub, const uint8_t *L, uint8_t *qs);
/* Sub-block j's stored ls - 32 (-32..31). */
int lq_iq4_xs_scale(const lq_block_iq4_xs *y, int j);

/* qw: the block's 32 / 256 importance weights or NULL. */
void lq_iq4_nl_quantize_block(const float *x, const float *qw, lq_block_iq4_nl *y);
void lq_iq4_xs_quantize_block(const float *x, const float *qw, lq_block_iq4_xs *y);
void lq_iq4_nl_dequantize_block(const lq_block_iq4_nl *b, float *y);
void lq_iq4_xs_dequantize_block(const lq_block_iq4_xs *b, float *y);

#endif
