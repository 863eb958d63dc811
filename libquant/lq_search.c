/* Scale searches shared by the quantizers. Every float expression keeps the operand order of
 * ggml's make_*_quants helpers: the searches compare near-equal errors, so a different
 * association would pick different scales and change the output bytes.
 *
 * Two SIMD versions (GCC vector extensions, 4 lanes): lq_search_sym runs its 18 independent
 * trial scales in lanes; lq_search_affine_multi runs up to 8 independent groups in lanes. Each
 * lane performs exactly the scalar operation sequence, so results are bit-identical to the
 * plain loops (lq_search_sym_serial, lq_search_affine); the tests compare them. */
#include <math.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "libquant/lq_internal.h"

#define LQ_SEARCH_MAX 32 /* longest group any search is used on */

static inline int clampi(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

float lq_sum_sq(int64_t n, const float *x)
{
    float s = 0;
    for (int64_t i = 0; i < n; ++i)
        s += x[i] * x[i];
    return s;
}

void lq_imat_weights(int n, const float *x, const float *qw, float sigma2, float *w)
{
    for (int i = 0; i < n; ++i)
        w[i] = qw[i] * sqrtf(sigma2 + x[i] * x[i]);
}

/* Value of largest magnitude (the first one on ties) and that magnitude. */
static float signed_absmax(int n, const float *x, float *amax_out)
{
    float amax = 0, vmax = 0;
    for (int i = 0; i < n; ++i) {
        float a = fabsf(x[i]);
        if (a > amax) {
            amax = a;
            vmax = x[i];
        }
    }
    *amax_out = amax;
    return vmax;
}

float lq_search_sym_serial(int n, int nmax, const float *x, const float *w_in, int8_t *L)
{
    float w[LQ_SEARCH_MAX];
    int8_t trial[LQ_SEARCH_MAX];
    float amax;
    const float vmax = signed_absmax(n, x, &amax);
    if (amax < LQ_GROUP_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    for (int i = 0; i < n; ++i)
        w[i] = w_in ? w_in[i] : x[i] * x[i];

    float inv = -nmax / vmax;
    float sxl = 0, sll = 0;
    for (int i = 0; i < n; ++i) {
        int l = clampi(lq_nearest_int(inv * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)(l + nmax);
        sxl += w[i] * x[i] * l;
        sll += w[i] * l * l;
    }
    float scale = sll ? sxl / sll : 0.0f;
    float best = scale * sxl;
    for (int k = -9; k <= 9; ++k) {
        if (k == 0)
            continue;
        inv = -(nmax + 0.1f * k) / vmax;
        sxl = sll = 0;
        for (int i = 0; i < n; ++i) {
            int l = clampi(lq_nearest_int(inv * x[i]), -nmax, nmax - 1);
            trial[i] = (int8_t)(l + nmax);
            sxl += w[i] * x[i] * l;
            sll += w[i] * l * l;
        }
        /* maximizing sxl^2/sll minimizes the refit error */
        if (sll > 0 && sxl * sxl > best * sll) {
            memcpy(L, trial, (size_t)n);
            scale = sxl / sll;
            best = scale * sxl;
        }
    }
    return scale;
}

float lq_search_sym_refine(int n, int nmax, const float *x, int8_t *L)
{
    float amax;
    const float vmax = signed_absmax(n, x, &amax);
    if (amax < LQ_GROUP_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    const float inv = -nmax / vmax;
    float sxl = 0, sll = 0;
    for (int i = 0; i < n; ++i) {
        int l = clampi(lq_nearest_int(inv * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)l;
        float w = x[i] * x[i];
        sxl += w * x[i] * l;
        sll += w * l * l;
    }
    for (int pass = 0; pass < 5; ++pass) {
        int changed = 0;
        for (int i = 0; i < n; ++i) {
            float w = x[i] * x[i];
            float sxl_i = sxl - w * x[i] * L[i];
            if (!(sxl_i > 0))
                continue;
            float sll_i = sll - w * L[i] * L[i];
            int l = clampi(lq_nearest_int(x[i] * sll_i / sxl_i), -nmax, nmax - 1);
            if (l == L[i])
                continue;
            sxl_i += w * x[i] * l;
            sll_i += w * l * l;
            if (sll_i > 0 && sxl_i * sxl_i * sll > sxl * sxl * sll_i) {
                L[i] = (int8_t)l;
                sxl = sxl_i;
                sll = sll_i;
                ++changed;
            }
        }
        if (!changed)
            break;
    }
    for (int i = 0; i < n; ++i)
        L[i] = (int8_t)(L[i] + nmax);
    return sll > 0.0f ? sxl / sll : 0.0f;
}

float lq_search_affine(int n, int nmax, const float *x, const float *w_in, uint8_t *L,
                       float *neg_min, uint8_t *Laux, float rmin, float rdelta, int nstep,
                       bool use_mad, bool clamp_first)
{
    float w[LQ_SEARCH_MAX] = {0};
    for (int i = 0; i < n; ++i)
        w[i] = w_in ? w_in[i] : x[i] * x[i];

    float lo = x[0], hi = x[0];
    float sum_w = w[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; ++i) {
        if (x[i] < lo)
            lo = x[i];
        if (x[i] > hi)
            hi = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (lo > 0)
        lo = 0;
    if (!(hi > lo)) {
        memset(L, 0, (size_t)n);
        *neg_min = -lo;
        return 0.f;
    }
    float inv = nmax / (hi - lo);
    float scale = 1 / inv;
    float best = 0;
    for (int i = 0; i < n; ++i) {
        int l = clampi(lq_nearest_int(inv * (x[i] - lo)), 0, nmax);
        L[i] = (uint8_t)l;
        float diff = scale * L[i] + lo - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        best += w[i] * diff;
    }
    if (nstep < 1) {
        *neg_min = -lo;
        return scale;
    }
    for (int k = 0; k <= nstep; ++k) {
        inv = (rmin + rdelta * k + nmax) / (hi - lo);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; ++i) {
            int l;
            if (clamp_first) {
                /* lo may have moved close to hi, so v can be huge, inf or NaN */
                const float v = inv * (x[i] - lo);
                l = v > 0 ? lq_nearest_int(v < nmax ? v : (float)nmax) : 0;
            } else {
                l = clampi(lq_nearest_int(inv * (x[i] - lo)), 0, nmax);
            }
            Laux[i] = (uint8_t)l;
            sum_l += w[i] * l;
            sum_l2 += w[i] * l * l;
            sum_xl += w[i] * l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float s = (sum_w * sum_xl - sum_x * sum_l) / D;
            float m = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (m > 0) {
                m = 0;
                s = sum_xl / sum_l2;
            }
            float err = 0;
            for (int i = 0; i < n; ++i) {
                float diff = s * Laux[i] + m - x[i];
                diff = use_mad ? fabsf(diff) : diff * diff;
                err += w[i] * diff;
            }
            if (err < best) {
                memcpy(L, Laux, (size_t)n);
                best = err;
                scale = s;
                lo = m;
            }
        }
    }
    *neg_min = -lo;
    return scale;
}

float lq_search_pos(int n, int nmax, const float *x, const float *w, uint8_t *L)
{
    float vmax = 0;
    for (int i = 0; i < n; ++i)
        vmax = vmax > x[i] ? vmax : x[i];
    if (vmax < LQ_GROUP_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float inv = nmax / vmax;
    for (int i = 0; i < n; ++i)
        L[i] = (uint8_t)lq_nearest_int(inv * x[i]);
    float scale = 1 / inv;
    float best = 0;
    for (int i = 0; i < n; ++i) {
        float diff = x[i] - scale * L[i];
        best += w[i] * diff * diff;
    }
    for (int k = -4; k <= 4; ++k) {
        if (k == 0)
            continue;
        const float inv_k = (0.1f * k + nmax) / vmax;
        const float scale_k = 1 / inv_k;
        float err = 0;
        for (int i = 0; i < n; ++i) {
            int l = lq_nearest_int(inv_k * x[i]);
            if (l > nmax)
                l = nmax;
            float diff = x[i] - scale_k * l;
            err += w[i] * diff * diff;
        }
        if (err < best) {
            best = err;
            inv = inv_k;
        }
    }
    float sxl = 0, sll = 0;
    for (int i = 0; i < n; ++i) {
        int l = lq_nearest_int(inv * x[i]);
        if (l > nmax)
            l = nmax;
        L[i] = (uint8_t)l;
        sxl += w[i] * x[i] * l;
        sll += w[i] * l * l;
    }
    for (int pass = 0; pass < 5; ++pass) {
        int changed = 0;
        for (int i = 0; i < n; ++i) {
            float sxl_i = sxl - w[i] * x[i] * L[i];
            float sll_i = sll - w[i] * L[i] * L[i];
            if (!(sxl_i > 0 && sll_i > 0))
                continue;
            int l = lq_nearest_int(x[i] * sll_i / sxl_i);
            if (l > nmax)
                l = nmax;
            if (l == L[i])
                continue;
            sxl_i += w[i] * x[i] * l;
            sll_i += w[i] * l * l;
            if (sxl_i * sxl_i * sll > sxl * sxl * sll_i) {
                L[i] = (uint8_t)l;
                sxl = sxl_i;
                sll = sll_i;
                ++changed;
            }
        }
        if (!changed)
            break;
    }
    return sll > 0.0f ? sxl / sll : 0.0f;
}

/* ---- trial-parallel versions ---- */

#define NL 4 /* lanes per vector (one SSE register) */
typedef float vf __attribute__((vector_size(NL * sizeof(float))));
typedef int32_t vi __attribute__((vector_size(NL * sizeof(int32_t))));

static inline vf vf_splat(float a)
{
    return (vf){a, a, a, a};
}

static inline vi vi_splat(int32_t a)
{
    return (vi){a, a, a, a};
}

static inline vf vf_from_bits(vi b)
{
    vf f;
    memcpy(&f, &b, sizeof f);
    return f;
}

static inline vi vi_from_bits(vf f)
{
    vi b;
    memcpy(&b, &f, sizeof b);
    return b;
}

/* lane-wise lq_nearest_int */
static inline vi v_nearest(vf v)
{
    const vi b = vi_from_bits(v + vf_splat(12582912.f));
    return (b & vi_splat(0x007fffff)) - vi_splat(0x00400000);
}

/* lane-wise min(max(l, lo), hi) */
static inline vi v_clamp(vi l, int32_t lo, int32_t hi)
{
    const vi vlo = vi_splat(lo), vhi = vi_splat(hi);
    const vi below = l < vlo, above = l > vhi;
    l = (l & ~below) | (vlo & below);
    return (l & ~above) | (vhi & above);
}

static inline vf v_select(vi mask, vf a, vf b) /* mask ? a : b */
{
    return vf_from_bits((vi_from_bits(a) & mask) | (vi_from_bits(b) & ~mask));
}

static inline vf v_float(vi l)
{
    return __builtin_convertvector(l, vf);
}

/* lane-wise a < b ? a : b and a > b ? a : b (NaN in a gives b, as the scalar ternaries) */
static inline vf v_min(vf a, vf b)
{
#ifdef __SSE2__
    return (vf)_mm_min_ps((__m128)a, (__m128)b);
#else
    return v_select(a < b, a, b);
#endif
}

static inline vf v_max(vf a, vf b)
{
#ifdef __SSE2__
    return (vf)_mm_max_ps((__m128)a, (__m128)b);
#else
    return v_select(a > b, a, b);
#endif
}

float lq_search_sym(int n, int nmax, const float *x, const float *w_in, int8_t *L)
{
    float w[LQ_SEARCH_MAX], wx[LQ_SEARCH_MAX];
    float amax;
    const float vmax = signed_absmax(n, x, &amax);
    if (amax < LQ_GROUP_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    for (int i = 0; i < n; ++i) {
        w[i] = w_in ? w_in[i] : x[i] * x[i];
        wx[i] = w[i] * x[i];
    }

    /* first guess: inverse scale -nmax/max */
    const float inv0 = -nmax / vmax;
    float sxl = 0, sll = 0;
    for (int i = 0; i < n; ++i) {
        int l = clampi(lq_nearest_int(inv0 * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)(l + nmax);
        sxl += wx[i] * l;
        sll += w[i] * l * l;
    }
    float scale = sll ? sxl / sll : 0.0f;
    float best = scale * sxl;

    /* the 18 trials k = -9..-1, 1..9 are independent: evaluate all in one pass (5 vectors,
     * last 2 lanes padding), then run the acceptance tests in ggml's order */
    enum { NV = 5 };
    static const int ks[NV * NL] = {-9, -8, -7, -6, -5, -4, -3, -2, -1, 1,
                                    2,  3,  4,  5,  6,  7,  8,  9,  9,  9};
    vf inv[NV], vsxl[NV], vsll[NV];
    vi lv[LQ_SEARCH_MAX][NV];
    for (int p = 0; p < NV; ++p) {
        for (int j = 0; j < NL; ++j)
            inv[p][j] = -(nmax + 0.1f * ks[p * NL + j]) / vmax;
        vsxl[p] = vsll[p] = vf_splat(0);
    }
    for (int i = 0; i < n; ++i) {
        const vf xi = vf_splat(x[i]), wxi = vf_splat(wx[i]), wi = vf_splat(w[i]);
        for (int p = 0; p < NV; ++p) {
            const vi l = v_clamp(v_nearest(inv[p] * xi), -nmax, nmax - 1);
            const vf lf = v_float(l);
            lv[i][p] = l;
            vsxl[p] += wxi * lf;
            vsll[p] += wi * lf * lf;
        }
    }
    for (int t = 0; t < 18; ++t) {
        const int p = t / NL, j = t % NL;
        const float a = vsxl[p][j], b = vsll[p][j];
        /* maximizing sxl^2/sll minimizes the refit error */
        if (b > 0 && a * a > best * b) {
            for (int i = 0; i < n; ++i)
                L[i] = (int8_t)(lv[i][p][j] + nmax);
            scale = a / b;
            best = scale * a;
        }
    }
    return scale;
}

/* Up to 8 affine searches side by side: lane g of the two vectors runs group g's search.
 * Per-lane state (lo, best, scale, levels) is updated with masks, so every lane follows its
 * own scalar path exactly, acceptances included. */
enum { MV = LQ_AFFINE_BATCH / NL };

static inline __attribute__((always_inline)) void
affine_multi(int n, int nmax, const vf (*xs)[MV], const vf (*ws)[MV], vf (*Lf)[MV], vf *scale_out,
             vf *lo_out, vi *degenerate, float rmin, float rdelta, int nstep, bool use_mad,
             bool clamp_first)
{
    const vf zero = vf_splat(0), vnmax = vf_splat((float)nmax);
    const vi sign_off = vi_splat(0x7fffffff);
    vf lo[MV], hi[MV], sum_w[MV], sum_x[MV], scale[MV], best[MV], span[MV];
    for (int p = 0; p < MV; ++p) {
        lo[p] = hi[p] = xs[0][p];
        sum_w[p] = ws[0][p];
        sum_x[p] = sum_w[p] * xs[0][p];
    }
    for (int i = 1; i < n; ++i) {
        for (int p = 0; p < MV; ++p) {
            lo[p] = v_select(xs[i][p] < lo[p], xs[i][p], lo[p]);
            hi[p] = v_select(xs[i][p] > hi[p], xs[i][p], hi[p]);
            sum_w[p] += ws[i][p];
            sum_x[p] += ws[i][p] * xs[i][p];
        }
    }
    for (int p = 0; p < MV; ++p) {
        lo[p] = v_select(lo[p] > zero, zero, lo[p]);
        degenerate[p] = ~(hi[p] > lo[p]);
        lo_out[p] = lo[p]; /* what a degenerate lane reports */
        span[p] = hi[p] - lo[p];
        const vf inv0 = vnmax / span[p];
        scale[p] = vf_splat(1) / inv0;
        best[p] = zero;
        for (int i = 0; i < n; ++i) {
            const vf lf = v_min(v_max(v_float(v_nearest(inv0 * (xs[i][p] - lo[p]))), zero), vnmax);
            Lf[i][p] = lf;
            vf diff = scale[p] * lf + lo[p] - xs[i][p];
            diff = use_mad ? vf_from_bits(vi_from_bits(diff) & sign_off) : diff * diff;
            best[p] += ws[i][p] * diff;
        }
    }
    for (int k = 0; k <= nstep; ++k) {
        const vf num = vf_splat(rmin + rdelta * k + nmax);
        vf inv[MV], s_l[MV], s_l2[MV], s_xl[MV], err[MV];
        vf lv[LQ_SEARCH_MAX][MV];
        for (int p = 0; p < MV; ++p) {
            inv[p] = num / (hi[p] - lo[p]);
            s_l[p] = s_l2[p] = s_xl[p] = err[p] = zero;
        }
        for (int i = 0; i < n; ++i) {
            for (int p = 0; p < MV; ++p) {
                const vf v = inv[p] * (xs[i][p] - lo[p]);
                vf lf;
                if (clamp_first) /* v > 0 ? nearest(min(v, nmax)) : 0; v can be huge near hi */
                    lf = v_float(v_nearest(v_min(v, vnmax)) & (v > zero));
                else /* clamping the (exact) float value equals clamping the int */
                    lf = v_min(v_max(v_float(v_nearest(v)), zero), vnmax);
                lv[i][p] = lf;
                const vf wl = ws[i][p] * lf;
                s_l[p] += wl;
                s_l2[p] += wl * lf;
                s_xl[p] += wl * xs[i][p];
            }
        }
        vf s[MV], m[MV];
        vi take[MV];
        for (int p = 0; p < MV; ++p) {
            const vf D = sum_w[p] * s_l2[p] - s_l[p] * s_l[p];
            s[p] = (sum_w[p] * s_xl[p] - sum_x[p] * s_l[p]) / D;
            m[p] = (s_l2[p] * sum_x[p] - s_l[p] * s_xl[p]) / D;
            const vi pos = m[p] > zero;
            m[p] = v_select(pos, zero, m[p]);
            s[p] = v_select(pos, s_xl[p] / s_l2[p], s[p]);
            take[p] = D > zero;
        }
        for (int i = 0; i < n; ++i) {
            for (int p = 0; p < MV; ++p) {
                vf diff = s[p] * lv[i][p] + m[p] - xs[i][p];
                diff = use_mad ? vf_from_bits(vi_from_bits(diff) & sign_off) : diff * diff;
                err[p] += ws[i][p] * diff;
            }
        }
        int any = 0;
        for (int p = 0; p < MV; ++p) {
            take[p] &= err[p] < best[p];
            for (int j = 0; j < NL; ++j)
                any |= take[p][j];
        }
        if (!any)
            continue;
        for (int p = 0; p < MV; ++p) {
            best[p] = v_select(take[p], err[p], best[p]);
            scale[p] = v_select(take[p], s[p], scale[p]);
            lo[p] = v_select(take[p], m[p], lo[p]);
            for (int i = 0; i < n; ++i)
                Lf[i][p] = v_select(take[p], lv[i][p], Lf[i][p]);
        }
    }
    for (int p = 0; p < MV; ++p) {
        scale_out[p] = scale[p];
        lo_out[p] = v_select(degenerate[p], lo_out[p], lo[p]);
    }
}

void lq_search_affine_multi(int count, int n, int nmax, const float *x, const float *w,
                            uint8_t *L, float *scale, float *neg_min, float rmin, float rdelta,
                            int nstep, bool use_mad, bool clamp_first)
{
    for (; count > LQ_AFFINE_BATCH; count -= LQ_AFFINE_BATCH) {
        lq_search_affine_multi(LQ_AFFINE_BATCH, n, nmax, x, w, L, scale, neg_min, rmin, rdelta,
                               nstep, use_mad, clamp_first);
        x += LQ_AFFINE_BATCH * n;
        w = w ? w + LQ_AFFINE_BATCH * n : NULL;
        L += LQ_AFFINE_BATCH * n;
        scale += LQ_AFFINE_BATCH;
        neg_min += LQ_AFFINE_BATCH;
    }
    if (count <= 0)
        return;
    if (nstep < 1 || n > LQ_SEARCH_MAX) {
        uint8_t aux[LQ_SEARCH_MAX];
        for (int g = 0; g < count; ++g)
            scale[g] = lq_search_affine(n, nmax, x + g * n, w ? w + g * n : NULL, L + g * n,
                                        &neg_min[g], aux, rmin, rdelta, nstep, use_mad,
                                        clamp_first);
        return;
    }
    /* transpose: lane g holds group g (missing groups repeat group 0; their results are
     * dropped) */
    vf xs[LQ_SEARCH_MAX][MV], ws[LQ_SEARCH_MAX][MV], Lf[LQ_SEARCH_MAX][MV];
    for (int p = 0; p < MV; ++p) {
        for (int j = 0; j < NL; ++j) {
            const int g = p * NL + j < count ? p * NL + j : 0;
            const float *xg = x + g * n;
            for (int i = 0; i < n; ++i) {
                xs[i][p][j] = xg[i];
                ws[i][p][j] = w ? w[g * n + i] : xg[i] * xg[i];
            }
        }
    }
    vf sc[MV], lo[MV];
    vi degenerate[MV];
    if (clamp_first && use_mad)
        affine_multi(n, nmax, xs, ws, Lf, sc, lo, degenerate, rmin, rdelta, nstep, true, true);
    else if (clamp_first)
        affine_multi(n, nmax, xs, ws, Lf, sc, lo, degenerate, rmin, rdelta, nstep, false, true);
    else if (use_mad)
        affine_multi(n, nmax, xs, ws, Lf, sc, lo, degenerate, rmin, rdelta, nstep, true, false);
    else
        affine_multi(n, nmax, xs, ws, Lf, sc, lo, degenerate, rmin, rdelta, nstep, false, false);
    for (int g = 0; g < count; ++g) {
        const int p = g / NL, j = g % NL;
        neg_min[g] = -lo[p][j];
        if (degenerate[p][j]) {
            memset(L + g * n, 0, (size_t)n);
            scale[g] = 0.f;
            continue;
        }
        scale[g] = sc[p][j];
        for (int i = 0; i < n; ++i)
            L[g * n + i] = (uint8_t)(int)Lf[i][p][j];
    }
}
