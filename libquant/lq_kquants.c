/* K-quants: super-blocks of 256 values with quantized per-sub-block scales.
 *
 * Every type follows the same three steps (see lq_internal.h):
 *   choose  per-sub-block search for scale (and min), then quantize those scales against a
 *           super-block fp16 scale (d, dmin) into the header;
 *   levels  requantize each value on the grid the stored header really encodes;
 *   pack    store the levels in the type's bit layout.
 * Reference path (qw == NULL) and importance path follow ggml's *_ref and *_impl variants,
 * which differ in the searches and in how the sub-block scales are quantized. */
#include <math.h>

#include "libquant/lq_internal.h"

#define NSUB16 (LQ_QK_K / 16)
#define NSUB32 (LQ_QK_K / 32)

static inline int clampi(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* ---- shared packing helpers ---- */

/* 2-bit levels: within each 128-value half, byte l holds values l, l+32, l+64, l+96. */
static void pack_2bit(const uint8_t *L, uint8_t *qs)
{
    for (int h = 0; h < LQ_QK_K; h += 128)
        for (int l = 0; l < 32; ++l)
            qs[h / 4 + l] = (uint8_t)((L[h + l] & 3) | (L[h + l + 32] & 3) << 2 |
                                      (L[h + l + 64] & 3) << 4 | (L[h + l + 96] & 3) << 6);
}

void lq_kq_get_scale_min(int j, const uint8_t *s, uint8_t *sc, uint8_t *mn)
{
    if (j < 4) {
        *sc = s[j] & 63;
        *mn = s[j + 4] & 63;
    } else {
        *sc = (uint8_t)((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4));
        *mn = (uint8_t)((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
    }
}

/* Inverse of lq_kq_get_scale_min for j visited in order 0..7 (j < 4 assigns, j >= 4 adds
 * the high bits to bytes written earlier). sc/mn above 63 spill exactly as ggml's do. */
void lq_kq_set_scale_min(int j, uint8_t *s, uint8_t sc, uint8_t mn)
{
    if (j < 4) {
        s[j] = sc;
        s[j + 4] = mn;
    } else {
        s[j + 4] = (uint8_t)((sc & 0xF) | ((mn & 0xF) << 4));
        s[j - 4] = (uint8_t)(s[j - 4] | ((sc >> 4) << 6));
        s[j] = (uint8_t)(s[j] | ((mn >> 4) << 6));
    }
}

int lq_q3_K_get_scale(const uint8_t *s, int j)
{
    const int lo = j < 8 ? s[j] & 0xF : s[j - 8] >> 4;
    const int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    return lo | hi << 4;
}

/* Store 6-bit q3_K scale l (0..63) for sub-block j into zeroed scales[12]. */
static void q3_set_scale(uint8_t *s, int j, int l)
{
    if (j < 8)
        s[j] = (uint8_t)(l & 0xF);
    else
        s[j - 8] = (uint8_t)(s[j - 8] | (l & 0xF) << 4);
    s[j % 4 + 8] = (uint8_t)(s[j % 4 + 8] | ((l >> 4) & 3) << (2 * (j / 4)));
}

/* ===================== Q2_K ===================== */

void lq_q2_K_choose(const float *x, const float *qw, lq_block_q2_K *y, uint8_t *L)
{
    float scales[NSUB16], mins[NSUB16];

    if (!qw) {
        float max_scale = 0, max_min = 0;
        float wall[LQ_QK_K];
        for (int i = 0; i < LQ_QK_K; ++i)
            wall[i] = fabsf(x[i]);
        lq_search_affine_multi(NSUB16, 16, 3, x, wall, L, scales, mins, -0.5f, 0.1f, 15, true,
                               false);
        for (int j = 0; j < NSUB16; ++j) {
            if (scales[j] > max_scale)
                max_scale = scales[j];
            if (mins[j] > max_min)
                max_min = mins[j];
        }
        if (max_scale > 0) {
            const float inv = 15.f / max_scale;
            for (int j = 0; j < NSUB16; ++j)
                y->scales[j] = (uint8_t)lq_nearest_int(inv * scales[j]);
            y->d = qf_f32_to_f16(max_scale / 15.f);
        } else {
            memset(y->scales, 0, sizeof y->scales);
            y->d = qf_f32_to_f16(0.f);
        }
        if (max_min > 0) {
            const float inv = 15.f / max_min;
            for (int j = 0; j < NSUB16; ++j) {
                const unsigned l = (unsigned)lq_nearest_int(inv * mins[j]);
                y->scales[j] = (uint8_t)(y->scales[j] | (l << 4));
            }
            y->dmin = qf_f32_to_f16(max_min / 15.f);
        } else {
            y->dmin = qf_f32_to_f16(0.f);
        }
        return;
    }

    float sw[NSUB16], wall[LQ_QK_K];
    uint8_t Ls[NSUB16], Lm[NSUB16];
    const float sigma2 = lq_sum_sq(LQ_QK_K, x) / LQ_QK_K;
    lq_imat_weights(LQ_QK_K, x, qw, sigma2, wall);
    for (int j = 0; j < NSUB16; ++j) {
        sw[j] = 0;
        for (int l = 0; l < 16; ++l)
            sw[j] += wall[16 * j + l];
    }
    lq_search_affine_multi(NSUB16, 16, 3, x, wall, L, scales, mins, -0.9f, 0.05f, 36, false,
                           true);
    const float dm = lq_search_pos(NSUB16, 15, scales, sw, Ls);
    const float mm = lq_search_pos(NSUB16, 15, mins, sw, Lm);
    y->d = qf_f32_to_f16(dm);
    y->dmin = qf_f32_to_f16(mm);
    for (int j = 0; j < NSUB16; ++j)
        y->scales[j] = (uint8_t)(Ls[j] | Lm[j] << 4);
}

void lq_q2_K_grid(const lq_block_q2_K *y, int j, float *d, float *m)
{
    *d = qf_f16_to_f32(y->d) * (y->scales[j] & 0xF);
    *m = qf_f16_to_f32(y->dmin) * (y->scales[j] >> 4);
}

void lq_q2_K_levels(const float *x, const lq_block_q2_K *y, uint8_t *L)
{
    for (int j = 0; j < NSUB16; ++j) {
        float d, m;
        lq_q2_K_grid(y, j, &d, &m);
        if (!d)
            continue;
        for (int i = 0; i < 16; ++i)
            L[16 * j + i] = (uint8_t)clampi(lq_nearest_int((x[16 * j + i] + m) / d), 0, 3);
    }
}

void lq_q2_K_pack(const uint8_t *L, lq_block_q2_K *y)
{
    pack_2bit(L, y->qs);
}

void lq_q2_K_quantize_block(const float *x, const float *qw, lq_block_q2_K *y)
{
    uint8_t L[LQ_QK_K];
    lq_q2_K_choose(x, qw, y, L);
    lq_q2_K_levels(x, y, L);
    lq_q2_K_pack(L, y);
}

void lq_q2_K_dequantize_block(const lq_block_q2_K *b, float *y)
{
    const float d = qf_f16_to_f32(b->d);
    const float dmin = qf_f16_to_f32(b->dmin);
    for (int h = 0; h < 2; ++h) {
        const uint8_t *q = b->qs + 32 * h;
        for (int s = 0; s < 4; ++s) {
            for (int half = 0; half < 2; ++half) {
                const uint8_t sc = b->scales[8 * h + 2 * s + half];
                const float dl = d * (sc & 0xF);
                const float ml = dmin * (sc >> 4);
                for (int l = 0; l < 16; ++l)
                    *y++ = dl * ((q[16 * half + l] >> (2 * s)) & 3) - ml;
            }
        }
    }
}

/* ===================== Q3_K ===================== */

void lq_q3_K_choose(const float *x, const float *qw, lq_block_q3_K *y, uint8_t *L)
{
    float scales[NSUB16];
    int8_t l8[LQ_QK_K];

    memset(y->scales, 0, sizeof y->scales);
    if (!qw) {
        float amax = 0, max_scale = 0;
        for (int j = 0; j < NSUB16; ++j) {
            scales[j] = lq_search_sym_refine(16, 4, x + 16 * j, l8 + 16 * j);
            if (fabsf(scales[j]) > amax) {
                amax = fabsf(scales[j]);
                max_scale = scales[j];
            }
        }
        if (max_scale) {
            const float inv = -32.f / max_scale;
            for (int j = 0; j < NSUB16; ++j) {
                int l = (int8_t)lq_nearest_int(inv * scales[j]);
                q3_set_scale(y->scales, j, clampi(l, -32, 31) + 32);
            }
            y->d = qf_f32_to_f16(1 / inv);
        } else {
            y->d = qf_f32_to_f16(0.f);
        }
    } else {
        float w[16], sw[NSUB16];
        int8_t Ls[NSUB16];
        const float sigma2 = 2 * lq_sum_sq(LQ_QK_K, x) / LQ_QK_K;
        for (int j = 0; j < NSUB16; ++j) {
            lq_imat_weights(16, x + 16 * j, qw + 16 * j, sigma2, w);
            float sumw = 0;
            for (int l = 0; l < 16; ++l)
                sumw += w[l];
            sw[j] = sumw;
            scales[j] = lq_search_sym(16, 4, x + 16 * j, w, l8 + 16 * j);
        }
        const float d = lq_search_sym(NSUB16, 32, scales, sw, Ls);
        for (int j = 0; j < NSUB16; ++j)
            q3_set_scale(y->scales, j, Ls[j]);
        y->d = qf_f32_to_f16(d);
    }
    for (int i = 0; i < LQ_QK_K; ++i)
        L[i] = (uint8_t)l8[i];
}

void lq_q3_K_grid(const lq_block_q3_K *y, int j, float *d, float *m)
{
    const int8_t sc = (int8_t)(lq_q3_K_get_scale(y->scales, j) - 32);
    *d = qf_f16_to_f32(y->d) * sc;
    *m = 4 * *d;
}

void lq_q3_K_levels(const float *x, const lq_block_q3_K *y, uint8_t *L)
{
    const float D = qf_f16_to_f32(y->d);
    for (int j = 0; j < NSUB16; ++j) {
        const int8_t sc = (int8_t)(lq_q3_K_get_scale(y->scales, j) - 32);
        const float d = D * sc;
        if (!d)
            continue;
        for (int i = 0; i < 16; ++i)
            L[16 * j + i] = (uint8_t)(clampi(lq_nearest_int(x[16 * j + i] / d), -4, 3) + 4);
    }
}

void lq_q3_K_pack(const uint8_t *L, lq_block_q3_K *y)
{
    uint8_t low[LQ_QK_K];
    memset(y->hmask, 0, sizeof y->hmask);
    /* bit 2 of value i goes to bit i/32 of hmask[i%32] */
    for (int i = 0; i < LQ_QK_K; ++i) {
        low[i] = L[i];
        if (L[i] > 3) {
            y->hmask[i % 32] = (uint8_t)(y->hmask[i % 32] | 1u << (i / 32));
            low[i] = (uint8_t)(L[i] - 4);
        }
    }
    pack_2bit(low, y->qs);
}

void lq_q3_K_quantize_block(const float *x, const float *qw, lq_block_q3_K *y)
{
    uint8_t L[LQ_QK_K];
    lq_q3_K_choose(x, qw, y, L);
    lq_q3_K_levels(x, y, L);
    lq_q3_K_pack(L, y);
}

void lq_q3_K_dequantize_block(const lq_block_q3_K *b, float *y)
{
    const float D = qf_f16_to_f32(b->d);
    for (int h = 0; h < 2; ++h) {
        const uint8_t *q = b->qs + 32 * h;
        for (int s = 0; s < 4; ++s) {
            const int bit = 4 * h + s;
            for (int half = 0; half < 2; ++half) {
                const int j = 8 * h + 2 * s + half;
                const float dl = D * (lq_q3_K_get_scale(b->scales, j) - 32);
                for (int l = 16 * half; l < 16 * half + 16; ++l) {
                    const int lo = (q[l] >> (2 * s)) & 3;
                    const int v = lo - (((b->hmask[l] >> bit) & 1) ? 0 : 4);
                    *y++ = dl * v;
                }
            }
        }
    }
}

/* ===================== Q4_K / Q5_K (shared scale machinery) ===================== */

/* Sub-block searches and 6-bit scale quantization common to q4_K (nmax 15) and q5_K
 * (nmax 31). Writes d, dmin, scales[12] and the search levels. */
static void kq_choose_affine(const float *x, const float *qw, int nmax, float ref_rmin,
                             int ref_nstep, bool clamp_ls, uint16_t *d_out,
                             uint16_t *dmin_out, uint8_t *s, uint8_t *L)
{
    float scales[NSUB32], mins[NSUB32], w[LQ_QK_K];

    if (!qw) {
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < NSUB32; ++j) {
            const float *xb = x + 32 * j;
            float sum_x2 = 0;
            for (int l = 0; l < 32; ++l)
                sum_x2 += xb[l] * xb[l];
            const float av_x = sqrtf(sum_x2 / 32);
            for (int l = 0; l < 32; ++l)
                w[32 * j + l] = av_x + fabsf(xb[l]);
        }
        lq_search_affine_multi(NSUB32, 32, nmax, x, w, L, scales, mins, ref_rmin, 0.1f,
                               ref_nstep, false, false);
        for (int j = 0; j < NSUB32; ++j) {
            if (scales[j] > max_scale)
                max_scale = scales[j];
            if (mins[j] > max_min)
                max_min = mins[j];
        }
        const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
        const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
        for (int j = 0; j < NSUB32; ++j) {
            uint8_t ls = (uint8_t)lq_nearest_int(inv_scale * scales[j]);
            uint8_t lm = (uint8_t)lq_nearest_int(inv_min * mins[j]);
            lq_kq_set_scale_min(j, s, ls < 63 ? ls : 63, lm < 63 ? lm : 63);
        }
        *d_out = qf_f32_to_f16(max_scale / 63.f);
        *dmin_out = qf_f32_to_f16(max_min / 63.f);
        return;
    }

    float sw[NSUB32];
    uint8_t Ls[NSUB32], Lm[NSUB32];
    const float sigma2 = 2 * lq_sum_sq(LQ_QK_K, x) / LQ_QK_K;
    lq_imat_weights(LQ_QK_K, x, qw, sigma2, w);
    for (int j = 0; j < NSUB32; ++j) {
        float sumw = 0;
        for (int l = 0; l < 32; ++l)
            sumw += w[32 * j + l];
        sw[j] = sumw;
    }
    lq_search_affine_multi(NSUB32, 32, nmax, x, w, L, scales, mins, -0.9f, 0.05f, 36, false,
                           true);
    const float d_block = lq_search_pos(NSUB32, 63, scales, sw, Ls);
    const float m_block = lq_search_pos(NSUB32, 63, mins, sw, Lm);
    for (int j = 0; j < NSUB32; ++j) {
        uint8_t ls = Ls[j], lm = Lm[j];
        if (clamp_ls) { /* ggml clamps here for q5_K but not for q4_K */
            ls = ls < 63 ? ls : 63;
            lm = lm < 63 ? lm : 63;
        }
        lq_kq_set_scale_min(j, s, ls, lm);
    }
    *d_out = qf_f32_to_f16(d_block);
    *dmin_out = qf_f32_to_f16(m_block);
}

static void kq_grid(uint16_t d16, uint16_t dmin16, const uint8_t *s, int j, float *d, float *m)
{
    uint8_t sc, mn;
    lq_kq_get_scale_min(j, s, &sc, &mn);
    *d = qf_f16_to_f32(d16) * sc;
    *m = qf_f16_to_f32(dmin16) * mn;
}

static void kq_levels(const float *x, uint16_t d16, uint16_t dmin16, const uint8_t *s,
                      int nmax, uint8_t *L)
{
    for (int j = 0; j < NSUB32; ++j) {
        float d, m;
        kq_grid(d16, dmin16, s, j, &d, &m);
        if (!d)
            continue;
        for (int i = 0; i < 32; ++i)
            L[32 * j + i] = (uint8_t)clampi(lq_nearest_int((x[32 * j + i] + m) / d), 0, nmax);
    }
}

/* ===================== Q4_K ===================== */

void lq_q4_K_choose(const float *x, const float *qw, lq_block_q4_K *y, uint8_t *L)
{
    kq_choose_affine(x, qw, 15, -1.f, 20, false, &y->d, &y->dmin, y->scales, L);
}

void lq_q4_K_grid(const lq_block_q4_K *y, int j, float *d, float *m)
{
    kq_grid(y->d, y->dmin, y->scales, j, d, m);
}

void lq_q4_K_levels(const float *x, const lq_block_q4_K *y, uint8_t *L)
{
    kq_levels(x, y->d, y->dmin, y->scales, 15, L);
}

void lq_q4_K_pack(const uint8_t *L, lq_block_q4_K *y)
{
    for (int c = 0; c < LQ_QK_K / 64; ++c)
        for (int l = 0; l < 32; ++l)
            y->qs[32 * c + l] = (uint8_t)((L[64 * c + l] & 0xF) | (L[64 * c + l + 32] & 0xF) << 4);
}

void lq_q4_K_quantize_block(const float *x, const float *qw, lq_block_q4_K *y)
{
    uint8_t L[LQ_QK_K];
    lq_q4_K_choose(x, qw, y, L);
    lq_q4_K_levels(x, y, L);
    lq_q4_K_pack(L, y);
}

void lq_q4_K_dequantize_block(const lq_block_q4_K *b, float *y)
{
    for (int c = 0; c < LQ_QK_K / 64; ++c) {
        const uint8_t *q = b->qs + 32 * c;
        float d1, m1, d2, m2;
        lq_q4_K_grid(b, 2 * c, &d1, &m1);
        lq_q4_K_grid(b, 2 * c + 1, &d2, &m2);
        for (int l = 0; l < 32; ++l)
            *y++ = d1 * (q[l] & 0xF) - m1;
        for (int l = 0; l < 32; ++l)
            *y++ = d2 * (q[l] >> 4) - m2;
    }
}

/* ===================== Q5_K ===================== */

void lq_q5_K_choose(const float *x, const float *qw, lq_block_q5_K *y, uint8_t *L)
{
    kq_choose_affine(x, qw, 31, -0.5f, 15, true, &y->d, &y->dmin, y->scales, L);
}

void lq_q5_K_grid(const lq_block_q5_K *y, int j, float *d, float *m)
{
    kq_grid(y->d, y->dmin, y->scales, j, d, m);
}

void lq_q5_K_levels(const float *x, const lq_block_q5_K *y, uint8_t *L)
{
    kq_levels(x, y->d, y->dmin, y->scales, 31, L);
}

void lq_q5_K_pack(const uint8_t *L, lq_block_q5_K *y)
{
    memset(y->qh, 0, sizeof y->qh);
    for (int c = 0; c < LQ_QK_K / 64; ++c) {
        for (int j = 0; j < 32; ++j) {
            int l1 = L[64 * c + j], l2 = L[64 * c + j + 32];
            if (l1 > 15) {
                l1 -= 16;
                y->qh[j] = (uint8_t)(y->qh[j] | 1u << (2 * c));
            }
            if (l2 > 15) {
                l2 -= 16;
                y->qh[j] = (uint8_t)(y->qh[j] | 2u << (2 * c));
            }
            y->qs[32 * c + j] = (uint8_t)((l1 & 0xF) | (l2 & 0xF) << 4);
        }
    }
}

void lq_q5_K_quantize_block(const float *x, const float *qw, lq_block_q5_K *y)
{
    uint8_t L[LQ_QK_K];
    lq_q5_K_choose(x, qw, y, L);
    lq_q5_K_levels(x, y, L);
    lq_q5_K_pack(L, y);
}

void lq_q5_K_dequantize_block(const lq_block_q5_K *b, float *y)
{
    for (int c = 0; c < LQ_QK_K / 64; ++c) {
        const uint8_t *ql = b->qs + 32 * c;
        float d1, m1, d2, m2;
        lq_q5_K_grid(b, 2 * c, &d1, &m1);
        lq_q5_K_grid(b, 2 * c + 1, &d2, &m2);
        const unsigned u1 = 1u << (2 * c), u2 = 2u << (2 * c);
        for (int l = 0; l < 32; ++l)
            *y++ = d1 * ((ql[l] & 0xF) + ((b->qh[l] & u1) ? 16 : 0)) - m1;
        for (int l = 0; l < 32; ++l)
            *y++ = d2 * ((ql[l] >> 4) + ((b->qh[l] & u2) ? 16 : 0)) - m2;
    }
}

/* ===================== Q6_K ===================== */

bool lq_q6_K_choose(const float *x, const float *qw, lq_block_q6_K *y, uint8_t *L)
{
    float scales[NSUB16];
    int8_t l8[LQ_QK_K];
    float max_scale = 0, max_abs = 0;

    /* importance path: the raw imatrix weights are used as they are */
    for (int j = 0; j < NSUB16; ++j) {
        scales[j] = lq_search_sym(16, 32, x + 16 * j, qw ? qw + 16 * j : NULL, l8 + 16 * j);
        if (fabsf(scales[j]) > max_abs) {
            max_abs = fabsf(scales[j]);
            max_scale = scales[j];
        }
    }
    if (max_abs < LQ_GROUP_EPS) {
        memset(y, 0, sizeof *y);
        y->d = qf_f32_to_f16(0.f);
        return false;
    }
    const float inv = -128.f / max_scale;
    y->d = qf_f32_to_f16(1 / inv);
    for (int j = 0; j < NSUB16; ++j) {
        const int l = lq_nearest_int(inv * scales[j]);
        y->scales[j] = (int8_t)(l < 127 ? l : 127);
    }
    for (int i = 0; i < LQ_QK_K; ++i)
        L[i] = (uint8_t)l8[i];
    return true;
}

void lq_q6_K_grid(const lq_block_q6_K *y, int j, float *d, float *m)
{
    *d = qf_f16_to_f32(y->d) * y->scales[j];
    *m = 32 * *d;
}

void lq_q6_K_levels(const float *x, const lq_block_q6_K *y, uint8_t *L)
{
    const float D = qf_f16_to_f32(y->d);
    for (int j = 0; j < NSUB16; ++j) {
        const float d = D * y->scales[j];
        if (!d)
            continue;
        for (int i = 0; i < 16; ++i)
            L[16 * j + i] = (uint8_t)(clampi(lq_nearest_int(x[16 * j + i] / d), -32, 31) + 32);
    }
}

void lq_q6_K_pack(const uint8_t *L, lq_block_q6_K *y)
{
    for (int h = 0; h < 2; ++h) {
        const uint8_t *Lh = L + 128 * h;
        uint8_t *ql = y->ql + 64 * h;
        uint8_t *qh = y->qh + 32 * h;
        for (int l = 0; l < 32; ++l) {
            ql[l] = (uint8_t)((Lh[l] & 0xF) | (Lh[l + 64] & 0xF) << 4);
            ql[l + 32] = (uint8_t)((Lh[l + 32] & 0xF) | (Lh[l + 96] & 0xF) << 4);
            qh[l] = (uint8_t)(((Lh[l] >> 4) & 3) | ((Lh[l + 32] >> 4) & 3) << 2 |
                              ((Lh[l + 64] >> 4) & 3) << 4 | ((Lh[l + 96] >> 4) & 3) << 6);
        }
    }
}

void lq_q6_K_quantize_block(const float *x, const float *qw, lq_block_q6_K *y)
{
    uint8_t L[LQ_QK_K];
    if (!lq_q6_K_choose(x, qw, y, L))
        return;
    lq_q6_K_levels(x, y, L);
    lq_q6_K_pack(L, y);
}

void lq_q6_K_dequantize_block(const lq_block_q6_K *b, float *y)
{
    const float d = qf_f16_to_f32(b->d);
    for (int h = 0; h < 2; ++h) {
        const uint8_t *ql = b->ql + 64 * h;
        const uint8_t *qh = b->qh + 32 * h;
        const int8_t *sc = b->scales + 8 * h;
        float *yh = y + 128 * h;
        for (int l = 0; l < 32; ++l) {
            const int is = l / 16;
            const int q1 = ((ql[l] & 0xF) | ((qh[l] >> 0) & 3) << 4) - 32;
            const int q2 = ((ql[l + 32] & 0xF) | ((qh[l] >> 2) & 3) << 4) - 32;
            const int q3 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
            const int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
            yh[l] = d * sc[is + 0] * q1;
            yh[l + 32] = d * sc[is + 2] * q2;
            yh[l + 64] = d * sc[is + 4] * q3;
            yh[l + 96] = d * sc[is + 6] * q4;
        }
    }
}

/* ===================== Q8_K (activations) ===================== */

void lq_q8_K_quantize_block(const float *x, lq_block_q8_K *y)
{
    float amax = 0, vmax = 0;
    for (int j = 0; j < LQ_QK_K; ++j) {
        if (fabsf(x[j]) > amax) {
            amax = fabsf(x[j]);
            vmax = x[j];
        }
    }
    if (!amax) {
        memset(y, 0, sizeof *y);
        return;
    }
    const float inv = -127.f / vmax;
    for (int j = 0; j < LQ_QK_K; ++j) {
        const int v = lq_nearest_int(inv * x[j]);
        y->qs[j] = (int8_t)(v < 127 ? v : 127);
    }
    for (int j = 0; j < LQ_QK_K / 16; ++j) {
        int sum = 0;
        for (int i = 0; i < 16; ++i)
            sum += y->qs[16 * j + i];
        y->bsums[j] = (int16_t)sum;
    }
    y->d = 1 / inv;
}

void lq_q8_K_dequantize_block(const lq_block_q8_K *b, float *y)
{
    for (int j = 0; j < LQ_QK_K; ++j)
        y[j] = b->d * b->qs[j];
}
