/* libquant internal — the GPTQ kernels (lq_gptq_kern.h), written once over a small vector
 * abstraction and included by one file per ISA, which defines before including:
 *   vd, WD: double vector type and lanes; vf, WF: float vector type and lanes
 *   vd_load, vd_loadn(p, n) (first n lanes, the rest 0), vd_store, vd_storen(p, v, n),
 *   vd_set1, vd_fnma(a, b, c) = fma(-a, b, c), vd_div; vf_load, vf_loadn, vf_store,
 *   vf_storen, vf_set1, vf_mulsub(a, b, c) = c - a*b (two roundings)
 *   MR_D, NV_D: double tile rows and vectors (MR_D * NV_D accumulators); MR_F, NV_F likewise
 *   GK_FN(name): the name of a static function of this ISA
 * Only the lanes' values differ between ISAs, never the chain of roundings of an element. */
#include <math.h>
#include <string.h>

#define NR_D (NV_D * WD)
#define NR_F (NV_F * WF)
#define KC 256 /* k-block */
#define MB 96  /* row block: its packed A panel (KC x MB) stays in L2 across the column tiles */


#define GK_INLINE static inline __attribute__((always_inline))

/* ---------------------------------------------------------------- double tiles */

/* One mr x (up to NR_D) tile of fnma_f64 from packed panels: a[k*MR_D + r], b[k*NR_D + j];
 * nl = lanes of C used (edge: nl < NR_D). */
GK_INLINE void tile_d(const int mr, const int edge, int nl, int K, const double *a,
                      const double *b, double *c, ptrdiff_t ldc)
{
    vd acc[MR_D][NV_D];
    int n[NV_D];
    for (int v = 0; v < NV_D; ++v) {
        const int left = nl - v * WD;
        n[v] = left < 0 ? 0 : left > WD ? WD : left;
    }
#pragma GCC unroll 16
    for (int r = 0; r < mr; ++r)
#pragma GCC unroll 8
        for (int v = 0; v < NV_D; ++v)
            acc[r][v] = edge ? vd_loadn(c + r * ldc + v * WD, n[v]) : vd_load(c + r * ldc + v * WD);
    for (int k = 0; k < K; ++k) {
        vd bv[NV_D];
#pragma GCC unroll 8
        for (int v = 0; v < NV_D; ++v)
            bv[v] = vd_load(b + k * NR_D + v * WD);
        const double *ak = a + k * MR_D;
#pragma GCC unroll 16
        for (int r = 0; r < mr; ++r) {
            const vd av = vd_set1(ak[r]);
#pragma GCC unroll 8
            for (int v = 0; v < NV_D; ++v)
                acc[r][v] = vd_fnma(av, bv[v], acc[r][v]);
        }
    }
#pragma GCC unroll 16
    for (int r = 0; r < mr; ++r)
#pragma GCC unroll 8
        for (int v = 0; v < NV_D; ++v) {
            if (edge)
                vd_storen(c + r * ldc + v * WD, acc[r][v], n[v]);
            else
                vd_store(c + r * ldc + v * WD, acc[r][v]);
        }
}

#define TILE_D_CASE(R)                                                                       \
    case R:                                                                                  \
        if (nl == NR_D)                                                                      \
            tile_d(R, 0, nl, K, a, b, c, ldc);                                               \
        else                                                                                 \
            tile_d(R, 1, nl, K, a, b, c, ldc);                                               \
        break;

static void GK_FN(tile_d_any)(int mr, int nl, int K, const double *a, const double *b,
                              double *c, ptrdiff_t ldc)
{
    switch (mr) {
        TILE_D_CASE(1)
        TILE_D_CASE(2)
        TILE_D_CASE(3)
        TILE_D_CASE(4)
#if MR_D > 4
        TILE_D_CASE(5)
        TILE_D_CASE(6)
#endif
#if MR_D > 6
        TILE_D_CASE(7)
        TILE_D_CASE(8)
#endif
#if MR_D > 8
        TILE_D_CASE(9)
        TILE_D_CASE(10)
        TILE_D_CASE(11)
        TILE_D_CASE(12)
#endif
    default:
        break;
    }
}

/* Packing: A(i, k0+k) for rows i0..i0+mb into tiles of MR rows, [tile][k][MR] (rows past
 * mb zero); B(k0+k, j) for columns j0..j0+nc into tiles of NR lanes, [tile][k][NR] (lanes
 * past nc zero). */
#define GK_PACK_A(T, NAME, MR)                                                               \
    static void GK_FN(NAME##_a)(T *ap, const T *a, ptrdiff_t lda, int mb, int kc)           \
    {                                                                                        \
        for (int t = 0; t < mb; t += MR) {                                                   \
            const int mr = mb - t < MR ? mb - t : MR;                                        \
            T *dst = ap + (ptrdiff_t)t * kc;                                                 \
            if (mr == MR) {                                                                  \
                for (int k = 0; k < kc; ++k)                                                 \
                    memcpy(dst + k * MR, a + k * lda + t, MR * sizeof(T));                   \
            } else {                                                                         \
                memset(dst, 0, (size_t)kc * MR * sizeof(T));                                 \
                for (int k = 0; k < kc; ++k)                                                 \
                    memcpy(dst + k * MR, a + k * lda + t, (size_t)mr * sizeof(T));           \
            }                                                                                \
        }                                                                                    \
    }
#define GK_PACK_B(T, NAME, NR)                                                               \
    static void GK_FN(NAME##_b)(T *bp, const T *b, ptrdiff_t ldb, int kc, int nc)           \
    {                                                                                        \
        for (int t = 0; t < nc; t += NR) {                                                   \
            const int nl = nc - t < NR ? nc - t : NR;                                        \
            T *dst = bp + (ptrdiff_t)t * kc;                                                 \
            if (nl == NR) {                                                                  \
                for (int k = 0; k < kc; ++k)                                                 \
                    memcpy(dst + k * NR, b + k * ldb + t, NR * sizeof(T));                   \
            } else {                                                                         \
                memset(dst, 0, (size_t)kc * NR * sizeof(T));                                 \
                for (int k = 0; k < kc; ++k)                                                 \
                    memcpy(dst + k * NR, b + k * ldb + t, (size_t)nl * sizeof(T));           \
            }                                                                                \
        }                                                                                    \
    }
GK_PACK_A(double, pack_d, MR_D)
GK_PACK_B(float, pack_f, NR_F)

/* B packed by pack_f64 (tile t at bp + t * bstride, k-major inside). Row blocks of MB: their
 * A panel is packed once and serves every column tile; a B tile (KC x NR_D) serves the MB/MR_D
 * row tiles of the block. */
static void GK_FN(fnma_f64)(int M, int N, int K, const double *a, ptrdiff_t lda,
                            const double *bp, ptrdiff_t bstride, double *c, ptrdiff_t ldc,
                            void *ws)
{
    double *ap = ws;
    for (int k0 = 0; k0 < K; k0 += KC) {
        const int kc = K - k0 < KC ? K - k0 : KC;
        const double *ak = a + (ptrdiff_t)k0 * lda;
        for (int i0 = 0; i0 < M; i0 += MB) {
            const int mb = M - i0 < MB ? M - i0 : MB;
            GK_FN(pack_d_a)(ap, ak + i0, lda, mb, kc);
            for (int j = 0; j < N; j += NR_D) {
                const int nl = N - j < NR_D ? N - j : NR_D;
                const double *bt = bp + (ptrdiff_t)(j / NR_D) * bstride + (ptrdiff_t)k0 * NR_D;
                for (int i = 0; i < mb; i += MR_D)
                    GK_FN(tile_d_any)(mb - i < MR_D ? mb - i : MR_D, nl, kc, ap + (ptrdiff_t)i * kc,
                                      bt, c + (ptrdiff_t)(i0 + i) * ldc + j, ldc);
            }
        }
    }
}

/* Rows k0..k0+K-1 of a packed B with tiles of bstride (>= the rows ever packed) doubles. */
static void GK_FN(pack_f64)(int K, int N, const double *b, ptrdiff_t ldb, double *bp, int k0,
                            ptrdiff_t bstride)
{
    for (int t = 0; t < N; t += NR_D) {
        const int nl = N - t < NR_D ? N - t : NR_D;
        double *dst = bp + (ptrdiff_t)(t / NR_D) * bstride + (ptrdiff_t)k0 * NR_D;
        for (int k = 0; k < K; ++k) {
            memcpy(dst + k * NR_D, b + k * ldb + t, (size_t)nl * sizeof(double));
            if (nl < NR_D)
                memset(dst + k * NR_D + nl, 0, (size_t)(NR_D - nl) * sizeof(double));
        }
    }
}

/* Rows in groups of TG: the group's rows first take every k below the group together (TG
 * rows x TV vectors in registers, one B load per TG fmas), then the group's own triangle row
 * by row, each row stored as soon as it is final (B may be C). Same chain per element. */
#define TG 4
#define TV 4
GK_INLINE void trsm_group(const int gm, int nl, int g0, const double *a, ptrdiff_t lda,
                          const double *b, ptrdiff_t ldb, double *c, ptrdiff_t ldc,
                          const double *d)
{
    int n[TV];
    for (int v = 0; v < TV; ++v) {
        const int left = nl - v * WD;
        n[v] = left < 0 ? 0 : left > WD ? WD : left;
    }
    vd t[TG][TV];
#pragma GCC unroll 4
    for (int r = 0; r < gm; ++r)
#pragma GCC unroll 4
        for (int v = 0; v < TV; ++v)
            t[r][v] = vd_loadn(c + (ptrdiff_t)(g0 + r) * ldc + v * WD, n[v]);
    for (int k = 0; k < g0; ++k) {
        vd bv[TV];
        const double *bk = b + (ptrdiff_t)k * ldb;
#pragma GCC unroll 4
        for (int v = 0; v < TV; ++v)
            bv[v] = vd_loadn(bk + v * WD, n[v]);
        const double *ak = a + (ptrdiff_t)k * lda + g0;
#pragma GCC unroll 4
        for (int r = 0; r < gm; ++r) {
            const vd av = vd_set1(ak[r]);
#pragma GCC unroll 4
            for (int v = 0; v < TV; ++v)
                t[r][v] = vd_fnma(av, bv[v], t[r][v]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < gm; ++r) {
        for (int k = g0; k < g0 + r; ++k) {
            const vd av = vd_set1(a[(ptrdiff_t)k * lda + g0 + r]);
            const double *bk = b + (ptrdiff_t)k * ldb;
#pragma GCC unroll 4
            for (int v = 0; v < TV; ++v)
                t[r][v] = vd_fnma(av, vd_loadn(bk + v * WD, n[v]), t[r][v]);
        }
        if (d) {
            const vd dv = vd_set1(d[g0 + r]);
#pragma GCC unroll 4
            for (int v = 0; v < TV; ++v)
                t[r][v] = vd_div(t[r][v], dv);
        }
#pragma GCC unroll 4
        for (int v = 0; v < TV; ++v)
            vd_storen(c + (ptrdiff_t)(g0 + r) * ldc + v * WD, t[r][v], n[v]);
    }
}

static void GK_FN(trsm_f64)(int M, int N, const double *a, ptrdiff_t lda, const double *b,
                            ptrdiff_t ldb, double *c, ptrdiff_t ldc, const double *d)
{
    for (int j0 = 0; j0 < N; j0 += TV * WD) {
        const int nl = N - j0 < TV * WD ? N - j0 : TV * WD;
        for (int g0 = 0; g0 < M; g0 += TG) {
            switch (M - g0 < TG ? M - g0 : TG) {
            case 1: trsm_group(1, nl, g0, a, lda, b + j0, ldb, c + j0, ldc, d); break;
            case 2: trsm_group(2, nl, g0, a, lda, b + j0, ldb, c + j0, ldc, d); break;
            case 3: trsm_group(3, nl, g0, a, lda, b + j0, ldb, c + j0, ldc, d); break;
            default: trsm_group(4, nl, g0, a, lda, b + j0, ldb, c + j0, ldc, d); break;
            }
        }
    }
}

/* Unblocked: small diagonal blocks only. Scalar fma, the same instruction on every ISA. */
static int GK_FN(chol_f64)(int n, double *c, ptrdiff_t ldc)
{
    for (int j = 0; j < n; ++j) {
        double *cj = c + (ptrdiff_t)j * ldc;
        double t = cj[j];
        for (int k = 0; k < j; ++k)
            t = fma(-cj[k], cj[k], t);
        if (!(t > 0) || !isfinite(t))
            return -1;
        const double djj = sqrt(t);
        cj[j] = djj;
        for (int i = j + 1; i < n; ++i) {
            double *ci = c + (ptrdiff_t)i * ldc;
            double s = ci[j];
            for (int k = 0; k < j; ++k)
                s = fma(-ci[k], cj[k], s);
            ci[j] = s / djj;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- float tiles */

/* One mr x (up to NR_F) tile of mulsub_f32: A(i,k) = a[k*lda + i], B packed b[k*NR_F + j]. */
GK_INLINE void tile_f(const int mr, const int edge, int nl, int K, const float *a, ptrdiff_t lda,
                      const float *b, float *c, ptrdiff_t ldc)
{
    vf acc[MR_F][NV_F];
    int n[NV_F];
    for (int v = 0; v < NV_F; ++v) {
        const int left = nl - v * WF;
        n[v] = left < 0 ? 0 : left > WF ? WF : left;
    }
#pragma GCC unroll 16
    for (int r = 0; r < mr; ++r)
#pragma GCC unroll 8
        for (int v = 0; v < NV_F; ++v)
            acc[r][v] = edge ? vf_loadn(c + r * ldc + v * WF, n[v]) : vf_load(c + r * ldc + v * WF);
    for (int k = 0; k < K; ++k) {
        vf bv[NV_F];
#pragma GCC unroll 8
        for (int v = 0; v < NV_F; ++v)
            bv[v] = vf_load(b + k * NR_F + v * WF);
        const float *ak = a + k * lda;
#pragma GCC unroll 16
        for (int r = 0; r < mr; ++r) {
            const vf av = vf_set1(ak[r]);
#pragma GCC unroll 8
            for (int v = 0; v < NV_F; ++v)
                acc[r][v] = vf_mulsub(av, bv[v], acc[r][v]);
        }
    }
#pragma GCC unroll 16
    for (int r = 0; r < mr; ++r)
#pragma GCC unroll 8
        for (int v = 0; v < NV_F; ++v) {
            if (edge)
                vf_storen(c + r * ldc + v * WF, acc[r][v], n[v]);
            else
                vf_store(c + r * ldc + v * WF, acc[r][v]);
        }
}

#define TILE_F_CASE(R)                                                                       \
    case R:                                                                                  \
        if (nl == NR_F)                                                                      \
            tile_f(R, 0, nl, K, a, lda, b, c, ldc);                                          \
        else                                                                                 \
            tile_f(R, 1, nl, K, a, lda, b, c, ldc);                                          \
        break;

static void GK_FN(tile_f_any)(int mr, int nl, int K, const float *a, ptrdiff_t lda,
                              const float *b, float *c, ptrdiff_t ldc)
{
    switch (mr) {
        TILE_F_CASE(1)
        TILE_F_CASE(2)
        TILE_F_CASE(3)
        TILE_F_CASE(4)
#if MR_F > 4
        TILE_F_CASE(5)
        TILE_F_CASE(6)
#endif
#if MR_F > 6
        TILE_F_CASE(7)
        TILE_F_CASE(8)
#endif
    default:
        break;
    }
}

/* B packed once by pack_f32 and shared: column tiles outer, so a B tile (K x NR_F) is read
 * from cache by every row tile; A (a few rows) stays in L1. */
static void GK_FN(mulsub_f32)(int M, int N, int K, const float *a, ptrdiff_t lda,
                              const float *bp, float *c, ptrdiff_t ldc)
{
    for (int j = 0; j < N; j += NR_F) {
        const int nl = N - j < NR_F ? N - j : NR_F;
        for (int i = 0; i < M; i += MR_F)
            GK_FN(tile_f_any)(M - i < MR_F ? M - i : MR_F, nl, K, a + i, lda,
                              bp + (ptrdiff_t)j * K, c + (ptrdiff_t)i * ldc + j, ldc);
    }
}

static void GK_FN(pack_f32)(int K, int N, const float *b, ptrdiff_t ldb, float *bp)
{
    GK_FN(pack_f_b)(bp, b, ldb, K, N);
}

#undef TILE_D_CASE
#undef TILE_F_CASE
