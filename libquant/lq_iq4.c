/* IQ4_NL / IQ4_XS: the per-32 scale search on the non-linear grid, the two block builders,
 * decoding and the row entry points. Float operations keep ggml's order (bit-exactness). */
#include <math.h>

#include "libquant/lq_internal.h"
#include "libquant/lq_iq4.h"

const int8_t lq_iq4_grid[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

/* The grid as floats (exact), and the trial range of the scale search. */
static const float G[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
#define IQ4_TRIALS 7
#define IQ4_GROUP 32

int lq_iq4_nearest(float v)
{
    if (v <= G[0])
        return 0;
    if (v >= G[15])
        return 15;
    int lo = 0, hi = 15; /* G[lo] <= v < G[hi] (NaN ends at lo = 14) */
    while (hi - lo > 1) {
        const int mid = (lo + hi) / 2;
        if (v < G[mid])
            hi = mid;
        else
            lo = mid;
    }
    return v - G[lo] < G[hi] - v ? lo : hi;
}

/* Weighted least-squares fit of x ~ s * grid[nearest(x * inv)]: sums of w*q*x and w*q*q. */
static void fit(const float *x, const float *w, float inv, float *sqx, float *sq2)
{
    float sumqx = 0, sumq2 = 0;
    for (int j = 0; j < IQ4_GROUP; ++j) {
        const float q = G[lq_iq4_nearest(inv * x[j])];
        sumqx += w[j] * q * x[j];
        sumq2 += w[j] * q * q;
    }
    *sqx = sumqx;
    *sq2 = sumq2;
}

/* Scale of one group of 32 (0 if every |x| < LQ_GROUP_EPS): start from the rounding at inverse
 * scale 127/m (m the value of largest magnitude, first on ties), then keep the best of the
 * trials (t - 127)/m, t = -7..7, by the weighted error reduction sumqx^2 / sumq2. */
static float group_scale(const float *x, const float *w)
{
    float amax = 0, m = 0;
    for (int j = 0; j < IQ4_GROUP; ++j) {
        const float a = fabsf(x[j]);
        if (a > amax) {
            amax = a;
            m = x[j];
        }
    }
    if (amax < LQ_GROUP_EPS)
        return 0;
    float sumqx, sumq2;
    fit(x, w, 1 / (-m / G[0]), &sumqx, &sumq2);
    float s = sumq2 > 0 ? sumqx / sumq2 : 0.f;
    float best = s * sumqx;
    for (int t = -IQ4_TRIALS; t <= IQ4_TRIALS; ++t) {
        fit(x, w, (float)(t + lq_iq4_grid[0]) / m, &sumqx, &sumq2);
        if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
            s = sumqx / sumq2;
            best = s * sumqx;
        }
    }
    return s;
}

/* Search weights of n values: qw * sqrt(sigma2 + x^2) with sigma2 = 2 * mean(x^2) over all n,
 * or x^2 without importance weights. */
static void search_weights(int n, const float *x, const float *qw, float *w)
{
    if (!qw) {
        for (int j = 0; j < n; ++j)
            w[j] = x[j] * x[j];
        return;
    }
    float sigma2 = 0;
    for (int j = 0; j < n; ++j)
        sigma2 += x[j] * x[j];
    sigma2 *= 2.f / n;
    lq_imat_weights(n, x, qw, sigma2, w);
}

void lq_iq4_levels(int n, const float *x, float step, uint8_t *L)
{
    const float inv = step ? 1 / step : 0.f;
    for (int j = 0; j < n; ++j)
        L[j] = (uint8_t)lq_iq4_nearest(inv * x[j]);
}

void lq_iq4_pack(int nsub, const uint8_t *L, uint8_t *qs)
{
    for (int g = 0; g < nsub; ++g)
        for (int j = 0; j < IQ4_GROUP / 2; ++j)
            qs[16 * g + j] = (uint8_t)(L[32 * g + j] | L[32 * g + 16 + j] << 4);
}

float lq_iq4_nl_choose(const float *x, const float *qw, lq_block_iq4_nl *y)
{
    float w[IQ4_GROUP];
    search_weights(IQ4_GROUP, x, qw, w);
    const float s = group_scale(x, w);
    y->d = qf_f32_to_f16(s);
    return s;
}

void lq_iq4_xs_choose(const float *x, const float *qw, lq_block_iq4_xs *y, float step[8])
{
    float w[LQ_QK_K], s[8];
    search_weights(LQ_QK_K, x, qw, w);
    float smax = 0, amax = 0;
    for (int g = 0; g < 8; ++g) {
        s[g] = group_scale(x + IQ4_GROUP * g, w + IQ4_GROUP * g);
        if (fabsf(s[g]) > amax) {
            amax = fabsf(s[g]);
            smax = s[g];
        }
    }
    const float d = -smax / 32.f; /* -0.0 for an all-zero super-block, stored as such */
    const float inv = d ? 1 / d : 0.f;
    y->d = qf_f32_to_f16(d);
    y->scales_h = 0;
    memset(y->scales_l, 0, sizeof y->scales_l);
    for (int g = 0; g < 8; ++g) {
        int l = lq_nearest_int(inv * s[g]);
        l = l < -32 ? -32 : l > 31 ? 31 : l;
        step[g] = d * (float)l;
        const unsigned ls = (unsigned)(l + 32);
        y->scales_l[g / 2] |= (uint8_t)((ls & 15) << 4 * (g % 2));
        y->scales_h |= (uint16_t)((ls >> 4) << 2 * g);
    }
}

int lq_iq4_xs_scale(const lq_block_iq4_xs *y, int j)
{
    const int ls = ((y->scales_l[j / 2] >> 4 * (j % 2)) & 15) | ((y->scales_h >> 2 * j) & 3) << 4;
    return ls - 32;
}

void lq_iq4_nl_quantize_block(const float *x, const float *qw, lq_block_iq4_nl *y)
{
    uint8_t L[IQ4_GROUP];
    lq_iq4_levels(IQ4_GROUP, x, lq_iq4_nl_choose(x, qw, y), L);
    lq_iq4_pack(1, L, y->qs);
}

void lq_iq4_xs_quantize_block(const float *x, const float *qw, lq_block_iq4_xs *y)
{
    uint8_t L[LQ_QK_K];
    float step[8];
    lq_iq4_xs_choose(x, qw, y, step);
    for (int g = 0; g < 8; ++g)
        lq_iq4_levels(IQ4_GROUP, x + IQ4_GROUP * g, step[g], L + IQ4_GROUP * g);
    lq_iq4_pack(8, L, y->qs);
}

static void decode_group(float d, const uint8_t *qs, float *y)
{
    for (int j = 0; j < IQ4_GROUP / 2; ++j) {
        y[j] = d * G[qs[j] & 15];
        y[j + 16] = d * G[qs[j] >> 4];
    }
}

void lq_iq4_nl_dequantize_block(const lq_block_iq4_nl *b, float *y)
{
    decode_group(qf_f16_to_f32(b->d), b->qs, y);
}

void lq_iq4_xs_dequantize_block(const lq_block_iq4_xs *b, float *y)
{
    const float d = qf_f16_to_f32(b->d);
    for (int g = 0; g < 8; ++g)
        decode_group(d * (float)lq_iq4_xs_scale(b, g), b->qs + 16 * g, y + IQ4_GROUP * g);
}

/* The rows are the type table's (lq_types.c, the same block functions); these keep the
 * IQ4-only entry points. */
static bool is_iq4(int type) { return type == GGUF_IQ4_NL || type == GGUF_IQ4_XS; }

size_t lq_iq4_quantize_row(int type, const float *x, void *dst, int64_t n, const float *imatrix)
{
    return is_iq4(type) ? lq_quantize_row(type, x, dst, n, imatrix) : 0;
}

int lq_iq4_dequantize_row(int type, const void *src, float *y, int64_t n)
{
    return is_iq4(type) ? lq_dequantize_row(type, src, y, n) : -1;
}
