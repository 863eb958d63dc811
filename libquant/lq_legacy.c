/* Legacy 32-value blocks: Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 (and Q8_1 for activations).
 *
 * Reference path (no importance): scale from the block's extreme value(s), values rounded
 * with the scale *before* its fp16 rounding, using truncation of x/d + offset + 0.5 as ggml
 * does. Importance path: ggml's weighted searches (lq_search_sym / lq_search_affine); the
 * levels the search settled on are stored unchanged. */
#include <float.h>
#include <math.h>

#include "libquant/lq_internal.h"

#define HALF (LQ_QK / 2)

static inline uint32_t load_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void store_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* Value of largest magnitude, first on ties (0 for an all-zero block). */
static float absmax_value(const float *x)
{
    float amax = 0.0f, vmax = 0.0f;
    for (int j = 0; j < LQ_QK; j++) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            vmax = x[j];
        }
    }
    return vmax;
}

static void minmax(const float *x, float *lo, float *hi)
{
    float mn = FLT_MAX, mx = -FLT_MAX;
    for (int j = 0; j < LQ_QK; j++) {
        if (x[j] < mn)
            mn = x[j];
        if (x[j] > mx)
            mx = x[j];
    }
    *lo = mn;
    *hi = mx;
}

/* (int8_t)(float) the way C compilers on x86 evaluate it, without UB for any input. */
static inline int to_i8(float f)
{
    return (int8_t)lq_trunc_int(f);
}

static void pack_nibbles(const uint8_t *L, uint8_t *qs)
{
    for (int j = 0; j < HALF; ++j)
        qs[j] = (uint8_t)((L[j] & 0x0F) | (L[j + HALF] & 0x0F) << 4);
}

/* Low nibbles into qs, bit 4 of value j into bit j of the little-endian qh word. */
static void pack_5bit(const uint8_t *L, uint8_t *qs, uint8_t *qh)
{
    uint32_t h = 0;
    pack_nibbles(L, qs);
    for (int j = 0; j < HALF; ++j) {
        h |= (uint32_t)((L[j] >> 4) & 1) << j;
        h |= (uint32_t)((L[j + HALF] >> 4) & 1) << (j + HALF);
    }
    store_le32(qh, h);
}

/* ---- Q4_0 ---- */

float lq_q4_0_choose_ref(const float *x)
{
    return absmax_value(x) / -8;
}

float lq_q4_0_choose_imat(const float *x, const float *w, uint8_t *L)
{
    int8_t l8[LQ_QK];
    const float d = lq_search_sym(LQ_QK, 8, x, w, l8);
    for (int j = 0; j < LQ_QK; ++j)
        L[j] = (uint8_t)l8[j];
    return d;
}

void lq_q4_0_levels(const float *x, float d, uint8_t *L)
{
    const float id = d ? 1.0f / d : 0.0f;
    for (int j = 0; j < LQ_QK; ++j) {
        int v = to_i8(x[j] * id + 8.5f);
        L[j] = (uint8_t)(v < 15 ? v : 15);
    }
}

void lq_q4_0_pack(float d, const uint8_t *L, lq_block_q4_0 *y)
{
    y->d = qf_f32_to_f16(d);
    pack_nibbles(L, y->qs);
}

void lq_q4_0_quantize_block(const float *x, const float *w, lq_block_q4_0 *y)
{
    uint8_t L[LQ_QK];
    float d;
    if (w) {
        d = lq_q4_0_choose_imat(x, w, L);
    } else {
        d = lq_q4_0_choose_ref(x);
        lq_q4_0_levels(x, d, L);
    }
    lq_q4_0_pack(d, L, y);
}

void lq_q4_0_dequantize_block(const lq_block_q4_0 *b, float *y)
{
    const float d = qf_f16_to_f32(b->d);
    for (int j = 0; j < HALF; ++j) {
        const int v0 = (b->qs[j] & 0x0F) - 8;
        const int v1 = (b->qs[j] >> 4) - 8;
        y[j] = v0 * d;
        y[j + HALF] = v1 * d;
    }
}

/* ---- Q4_1 ---- */

float lq_q4_1_choose_ref(const float *x, float *min)
{
    float lo, hi;
    minmax(x, &lo, &hi);
    *min = lo;
    return (hi - lo) / 15;
}

float lq_q4_1_choose_imat(const float *x, const float *w, float *min, uint8_t *L)
{
    uint8_t aux[LQ_QK];
    float neg_min;
    const float d = lq_search_affine(LQ_QK, 15, x, w, L, &neg_min, aux, -0.9f, 0.05f, 36,
                                     false, true);
    *min = -neg_min;
    return d;
}

void lq_q4_1_quantize_blocks_imat(int nb, const float *x, const float *w, lq_block_q4_1 *y)
{
    uint8_t L[LQ_AFFINE_BATCH * LQ_QK];
    float d[LQ_AFFINE_BATCH], neg_min[LQ_AFFINE_BATCH];
    for (int b0 = 0; b0 < nb; b0 += LQ_AFFINE_BATCH) {
        const int cnt = nb - b0 < LQ_AFFINE_BATCH ? nb - b0 : LQ_AFFINE_BATCH;
        lq_search_affine_multi(cnt, LQ_QK, 15, x + b0 * LQ_QK, w + b0 * LQ_QK, L, d, neg_min,
                               -0.9f, 0.05f, 36, false, true);
        for (int b = 0; b < cnt; ++b)
            lq_q4_1_pack(d[b], -neg_min[b], L + b * LQ_QK, &y[b0 + b]);
    }
}

void lq_q4_1_levels(const float *x, float d, float min, uint8_t *L)
{
    const float id = d ? 1.0f / d : 0.0f;
    for (int j = 0; j < LQ_QK; ++j) {
        int v = to_i8((x[j] - min) * id + 0.5f);
        L[j] = (uint8_t)(v < 15 ? v : 15);
    }
}

void lq_q4_1_pack(float d, float min, const uint8_t *L, lq_block_q4_1 *y)
{
    y->d = qf_f32_to_f16(d);
    y->m = qf_f32_to_f16(min);
    pack_nibbles(L, y->qs);
}

void lq_q4_1_quantize_block(const float *x, const float *w, lq_block_q4_1 *y)
{
    uint8_t L[LQ_QK];
    float d, min;
    if (w) {
        d = lq_q4_1_choose_imat(x, w, &min, L);
    } else {
        d = lq_q4_1_choose_ref(x, &min);
        lq_q4_1_levels(x, d, min, L);
    }
    lq_q4_1_pack(d, min, L, y);
}

void lq_q4_1_dequantize_block(const lq_block_q4_1 *b, float *y)
{
    const float d = qf_f16_to_f32(b->d);
    const float m = qf_f16_to_f32(b->m);
    for (int j = 0; j < HALF; ++j) {
        const int v0 = b->qs[j] & 0x0F;
        const int v1 = b->qs[j] >> 4;
        y[j] = v0 * d + m;
        y[j + HALF] = v1 * d + m;
    }
}

/* ---- Q5_0 ---- */

float lq_q5_0_choose_ref(const float *x)
{
    return absmax_value(x) / -16;
}

float lq_q5_0_choose_imat(const float *x, const float *w, uint8_t *L)
{
    int8_t l8[LQ_QK];
    const float d = lq_search_sym(LQ_QK, 16, x, w, l8);
    for (int j = 0; j < LQ_QK; ++j)
        L[j] = (uint8_t)l8[j];
    return d;
}

void lq_q5_0_levels(const float *x, float d, uint8_t *L)
{
    const float id = d ? 1.0f / d : 0.0f;
    for (int j = 0; j < LQ_QK; ++j) {
        int v = to_i8(x[j] * id + 16.5f);
        L[j] = (uint8_t)(v < 31 ? v : 31);
    }
}

void lq_q5_0_pack(float d, const uint8_t *L, lq_block_q5_0 *y)
{
    y->d = qf_f32_to_f16(d);
    pack_5bit(L, y->qs, y->qh);
}

void lq_q5_0_quantize_block(const float *x, const float *w, lq_block_q5_0 *y)
{
    uint8_t L[LQ_QK];
    float d;
    if (w) {
        d = lq_q5_0_choose_imat(x, w, L);
    } else {
        d = lq_q5_0_choose_ref(x);
        lq_q5_0_levels(x, d, L);
    }
    lq_q5_0_pack(d, L, y);
}

void lq_q5_0_dequantize_block(const lq_block_q5_0 *b, float *y)
{
    const float d = qf_f16_to_f32(b->d);
    const uint32_t qh = load_le32(b->qh);
    for (int j = 0; j < HALF; ++j) {
        const int h0 = (int)((qh >> j) & 1) << 4;
        const int h1 = (int)((qh >> (j + HALF)) & 1) << 4;
        const int v0 = ((b->qs[j] & 0x0F) | h0) - 16;
        const int v1 = ((b->qs[j] >> 4) | h1) - 16;
        y[j] = v0 * d;
        y[j + HALF] = v1 * d;
    }
}

/* ---- Q5_1 ---- */

float lq_q5_1_choose_ref(const float *x, float *min)
{
    float lo, hi;
    minmax(x, &lo, &hi);
    *min = lo;
    return (hi - lo) / 31;
}

float lq_q5_1_choose_imat(const float *x, const float *w, float *min, uint8_t *L)
{
    uint8_t aux[LQ_QK];
    float neg_min;
    const float d = lq_search_affine(LQ_QK, 31, x, w, L, &neg_min, aux, -0.9f, 0.05f, 36,
                                     false, true);
    *min = -neg_min;
    return d;
}

void lq_q5_1_quantize_blocks_imat(int nb, const float *x, const float *w, lq_block_q5_1 *y)
{
    uint8_t L[LQ_AFFINE_BATCH * LQ_QK];
    float d[LQ_AFFINE_BATCH], neg_min[LQ_AFFINE_BATCH];
    for (int b0 = 0; b0 < nb; b0 += LQ_AFFINE_BATCH) {
        const int cnt = nb - b0 < LQ_AFFINE_BATCH ? nb - b0 : LQ_AFFINE_BATCH;
        lq_search_affine_multi(cnt, LQ_QK, 31, x + b0 * LQ_QK, w + b0 * LQ_QK, L, d, neg_min,
                               -0.9f, 0.05f, 36, false, true);
        for (int b = 0; b < cnt; ++b)
            lq_q5_1_pack(d[b], -neg_min[b], L + b * LQ_QK, &y[b0 + b]);
    }
}

void lq_q5_1_levels(const float *x, float d, float min, uint8_t *L)
{
    const float id = d ? 1.0f / d : 0.0f;
    for (int j = 0; j < LQ_QK; ++j)
        L[j] = (uint8_t)lq_trunc_int((x[j] - min) * id + 0.5f); /* ggml does not clamp here */
}

void lq_q5_1_pack(float d, float min, const uint8_t *L, lq_block_q5_1 *y)
{
    y->d = qf_f32_to_f16(d);
    y->m = qf_f32_to_f16(min);
    pack_5bit(L, y->qs, y->qh);
}

void lq_q5_1_quantize_block(const float *x, const float *w, lq_block_q5_1 *y)
{
    uint8_t L[LQ_QK];
    float d, min;
    if (w) {
        d = lq_q5_1_choose_imat(x, w, &min, L);
    } else {
        d = lq_q5_1_choose_ref(x, &min);
        lq_q5_1_levels(x, d, min, L);
    }
    lq_q5_1_pack(d, min, L, y);
}

void lq_q5_1_dequantize_block(const lq_block_q5_1 *b, float *y)
{
    const float d = qf_f16_to_f32(b->d);
    const float m = qf_f16_to_f32(b->m);
    const uint32_t qh = load_le32(b->qh);
    for (int j = 0; j < HALF; ++j) {
        const int h0 = (int)((qh >> j) & 1) << 4;
        const int h1 = (int)((qh >> (j + HALF)) & 1) << 4;
        const int v0 = (b->qs[j] & 0x0F) | h0;
        const int v1 = (b->qs[j] >> 4) | h1;
        y[j] = v0 * d + m;
        y[j + HALF] = v1 * d + m;
    }
}

/* ---- Q8_0 / Q8_1 ---- */

float lq_q8_0_choose_ref(const float *x)
{
    float amax = 0.0f;
    for (int j = 0; j < LQ_QK; j++) {
        const float a = fabsf(x[j]);
        amax = amax > a ? amax : a;
    }
    return amax / 127;
}

void lq_q8_0_levels(const float *x, float d, int8_t *q)
{
    const float id = d ? 1.0f / d : 0.0f;
    for (int j = 0; j < LQ_QK; ++j)
        q[j] = (int8_t)lq_trunc_int(roundf(x[j] * id));
}

void lq_q8_0_quantize_block(const float *x, lq_block_q8_0 *y)
{
    const float d = lq_q8_0_choose_ref(x);
    y->d = qf_f32_to_f16(d);
    lq_q8_0_levels(x, d, y->qs);
}

void lq_q8_1_quantize_block(const float *x, lq_block_q8_1 *y)
{
    const float d = lq_q8_0_choose_ref(x);
    int sum = 0;
    y->d = qf_f32_to_f16(d);
    lq_q8_0_levels(x, d, y->qs);
    for (int j = 0; j < LQ_QK; ++j)
        sum += y->qs[j];
    y->s = qf_f32_to_f16(sum * d);
}

void lq_q8_0_dequantize_block(const lq_block_q8_0 *b, float *y)
{
    const float d = qf_f16_to_f32(b->d);
    for (int j = 0; j < LQ_QK; ++j)
        y[j] = b->qs[j] * d;
}
