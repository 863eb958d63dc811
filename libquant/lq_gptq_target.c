/* GPTQ targets and losses around the solver (see the second section of lq_gptq.h): the
 * Cholesky helper, the grid rule, the asymmetric target and the H-weighted losses. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "libquant/lq_gptq.h"
#include "libquant/lq_gptq_kern.h"
#include "libquant/lq_types.h"

bool lq_gptq_grid_weighted(int type, lq_gptq_grid grid)
{
    const lq_type_traits *tt = lq_type_traits_of(type);
    const bool kq = tt && tt->gptq_grid == LQ_GRID_KQUANT;
    return grid == LQ_GPTQ_GRID_WEIGHTED || (grid == LQ_GPTQ_GRID_AUTO && kq);
}

lq_error lq_cholesky_lower(double *A, int64_t n)
{
    if (!A || n < 1)
        return LQ_ERR_ARG;
    for (int64_t j = 0; j < n; ++j) {
        double d = A[j * n + j];
        for (int64_t k = 0; k < j; ++k)
            d -= A[j * n + k] * A[j * n + k];
        if (!(d > 0) || !isfinite(d))
            return LQ_ERR_NUMERIC;
        const double ljj = sqrt(d);
        A[j * n + j] = ljj;
        for (int64_t i = j + 1; i < n; ++i) {
            double v = A[i * n + j];
            const double *ri = A + i * n, *rj = A + j * n;
            for (int64_t k = 0; k < j; ++k)
                v -= ri[k] * rj[k];
            A[i * n + j] = v / ljj;
        }
    }
    return LQ_OK;
}

#define ASYM_JB 256 /* columns of C - H per product of the asymmetric target */

/* C - H is formed ASYM_JB columns at a time and W converted to double ASYM_JB rows at a time
 * (2 n x ASYM_JB doubles of work instead of n x n + rows x n). */
lq_error lq_gptq_asym_rhs(const float *W, int64_t rows, int64_t n, const double *H,
                          const double *C, double *M)
{
    if (!W || !H || !C || !M || rows < 1 || n < 1)
        return LQ_ERR_ARG;
    double *Wd = malloc((size_t)n * ASYM_JB * sizeof(double));
    double *Db = malloc((size_t)n * ASYM_JB * sizeof(double));
    if (!Wd || !Db) {
        free(Wd);
        free(Db);
        return LQ_ERR_NOMEM;
    }
    for (int64_t j0 = 0; j0 < n; j0 += ASYM_JB) {
        const int jb = (int)(n - j0 < ASYM_JB ? n - j0 : ASYM_JB);
        for (int64_t k = 0; k < n; ++k)
            for (int j = 0; j < jb; ++j)
                Db[k * jb + j] = C[k * n + j0 + j] - H[k * n + j0 + j];
        for (int64_t r0 = 0; r0 < rows; r0 += ASYM_JB) {
            const int rb = (int)(rows - r0 < ASYM_JB ? rows - r0 : ASYM_JB);
            for (size_t i = 0; i < (size_t)rb * (size_t)n; ++i)
                Wd[i] = W[(size_t)r0 * (size_t)n + i];
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasTrans, jb, rb, (int)n, 1.0, Db, jb, Wd,
                        (int)n, 0.0, M + j0 * rows + r0, (int)rows);
        }
    }
    free(Wd);
    free(Db);
    return LQ_OK;
}

/* M := Hd^-1 M with Hd = H + damp * mean diag (dead diagonals 1): the solver's blocked
 * Cholesky (lq_gptq_kern.h; its result does not depend on the thread count), then two
 * triangular solves. */
static lq_error asym_solve(int64_t rows, int64_t n, const double *H, double damp, double *M,
                           int nthreads)
{
    const int64_t lines = (n + 7) / 8, lda = (lines % 2 ? lines : lines + 1) * 8;
    double *A = malloc((size_t)n * (size_t)lda * sizeof(double));
    if (!A)
        return LQ_ERR_NOMEM;
    double mean = 0;
    for (int64_t i = 0; i < n; ++i)
        mean += H[i * n + i] > 0 ? H[i * n + i] : 1.0;
    mean /= (double)n;
    for (int64_t i = 0; i < n; ++i) {
        memcpy(A + i * lda, H + i * n, (size_t)i * sizeof(double));
        A[i * lda + i] = (H[i * n + i] > 0 ? H[i * n + i] : 1.0) + damp * mean;
    }
    const int fr = lq_gk_chol(lq_gk_best(), A, lda, n, nthreads);
    if (fr == 0) {
        cblas_dtrsm(CblasRowMajor, CblasLeft, CblasLower, CblasNoTrans, CblasNonUnit, (int)n,
                    (int)rows, 1.0, A, (int)lda, M, (int)rows);
        cblas_dtrsm(CblasRowMajor, CblasLeft, CblasLower, CblasTrans, CblasNonUnit, (int)n,
                    (int)rows, 1.0, A, (int)lda, M, (int)rows);
    }
    free(A);
    return fr == 0 ? LQ_OK : fr == -2 ? LQ_ERR_NOMEM : LQ_ERR_NUMERIC;
}

lq_error lq_gptq_asym_apply(float *W, int64_t rows, int64_t n, const double *H, double damp,
                            double *M, int nthreads)
{
    if (!W || !H || !M || rows < 1 || n < 1 || !(damp >= 0))
        return LQ_ERR_ARG;
    lq_error e = asym_solve(rows, n, H, damp, M, nthreads);
    for (int64_t r = 0; e == LQ_OK && r < rows; ++r)
        for (int64_t j = 0; j < n; ++j) {
            const float v = (float)((double)W[r * n + j] + M[j * rows + r]);
            if (!isfinite(v)) {
                e = LQ_ERR_NUMERIC;
                break;
            }
            W[r * n + j] = v;
        }
    return e;
}

lq_error lq_gptq_asym_target(float *W, int64_t rows, int64_t n, const double *H, const double *C,
                             double damp, int nthreads)
{
    if (!W || !H || !C || rows < 1 || n < 1 || !(damp >= 0))
        return LQ_ERR_ARG;
    double *M = malloc((size_t)rows * (size_t)n * sizeof(double));
    if (!M)
        return LQ_ERR_NOMEM;
    lq_error e = lq_gptq_asym_rhs(W, rows, n, H, C, M);
    if (e == LQ_OK)
        e = lq_gptq_asym_apply(W, rows, n, H, damp, M, nthreads);
    free(M);
    return e;
}

#define HLOSS_RB 64 /* rows per product of lq_gptq_hloss: H is read once per block, not per row */

double lq_gptq_hloss(const float *T, const float *Q, int64_t rows, int64_t n, const double *H)
{
    double *e = malloc((size_t)HLOSS_RB * (size_t)n * sizeof(double));
    double *he = malloc((size_t)HLOSS_RB * (size_t)n * sizeof(double));
    double acc = 0;
    if (!e || !he) {
        free(e);
        free(he);
        return NAN;
    }
    for (int64_t r0 = 0; r0 < rows; r0 += HLOSS_RB) {
        const int rb = (int)(rows - r0 < HLOSS_RB ? rows - r0 : HLOSS_RB);
        for (size_t i = 0; i < (size_t)rb * (size_t)n; ++i)
            e[i] = (double)T[(size_t)r0 * (size_t)n + i] - Q[(size_t)r0 * (size_t)n + i];
        cblas_dsymm(CblasRowMajor, CblasRight, CblasLower, rb, (int)n, 1.0, H, (int)n, e, (int)n,
                    0.0, he, (int)n);
        for (int r = 0; r < rb; ++r)
            acc += cblas_ddot((int)n, e + (size_t)r * n, 1, he + (size_t)r * n, 1);
    }
    free(e);
    free(he);
    return acc;
}

lq_error lq_gptq_rtn_loss(int type, const float *W, const float *T, int64_t rows, int64_t n,
                          const double *H, lq_gptq_grid grid, double *loss, char *msg)
{
    *loss = 0;
    const size_t rs = lq_row_size(type, n), nel = (size_t)rows * (size_t)n;
    if (!rs)
        return LQ_ERR_SHAPE;
    const bool weighted = lq_gptq_grid_weighted(type, grid);
    void *rq = malloc((size_t)rows * rs);
    float *R = malloc(nel * sizeof(float)), *qw = malloc((size_t)n * sizeof(float));
    lq_error le = LQ_OK;
    if (!rq || !R || !qw)
        le = LQ_ERR_NOMEM;
    for (int64_t j = 0; le == LQ_OK && j < n; ++j)
        qw[j] = (float)(H[j * n + j] > 0 ? H[j * n + j] : 1.0);
    if (le == LQ_OK)
        le = lq_quantize_rows(type, W, rq, rows, n, weighted ? qw : NULL, 1, msg);
    for (int64_t r = 0; le == LQ_OK && r < rows; ++r)
        if (lq_dequantize_row(type, (const char *)rq + (size_t)r * rs, R + (size_t)r * n, n))
            le = LQ_ERR_TYPE;
    free(rq);
    free(qw);
    if (le == LQ_OK)
        *loss = lq_gptq_hloss(T, R, rows, n, H);
    free(R);
    return le;
}
