/* GPTQ targets and losses around the solver (see the second section of lq_gptq.h): the
 * Cholesky helper, the grid rule, the asymmetric target and the H-weighted losses. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "libquant/lq_gptq.h"
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

lq_error lq_gptq_asym_target(float *W, int64_t rows, int64_t n, const double *H, const double *C,
                             double damp)
{
    if (!W || !H || !C || rows < 1 || n < 1 || !(damp >= 0))
        return LQ_ERR_ARG;
    const size_t nn = (size_t)n * (size_t)n, nr = (size_t)rows * (size_t)n;
    double *A = malloc(nn * sizeof(double)), *D = malloc(nn * sizeof(double));
    double *Wd = malloc(nr * sizeof(double)), *M = malloc(nr * sizeof(double));
    lq_error e = LQ_OK;
    if (!A || !D || !Wd || !M) {
        e = LQ_ERR_NOMEM;
        goto out;
    }
    double mean = 0;
    for (int64_t i = 0; i < n; ++i)
        mean += H[i * n + i] > 0 ? H[i * n + i] : 1.0;
    mean /= (double)n;
    memcpy(A, H, nn * sizeof(double));
    for (size_t i = 0; i < nn; ++i)
        D[i] = C[i] - H[i];
    for (int64_t i = 0; i < n; ++i)
        A[i * n + i] = (H[i * n + i] > 0 ? H[i * n + i] : 1.0) + damp * mean;
    for (size_t i = 0; i < nr; ++i)
        Wd[i] = W[i];
    /* M (n x rows) = D^T W^T, then M := Hd^-1 M through the Cholesky factor */
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasTrans, (int)n, (int)rows, (int)n, 1.0, D, (int)n,
                Wd, (int)n, 0.0, M, (int)rows);
    if ((e = lq_cholesky_lower(A, n)) != LQ_OK)
        goto out;
    cblas_dtrsm(CblasRowMajor, CblasLeft, CblasLower, CblasNoTrans, CblasNonUnit, (int)n,
                (int)rows, 1.0, A, (int)n, M, (int)rows);
    cblas_dtrsm(CblasRowMajor, CblasLeft, CblasLower, CblasTrans, CblasNonUnit, (int)n,
                (int)rows, 1.0, A, (int)n, M, (int)rows);
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t j = 0; j < n; ++j) {
            const float v = (float)(Wd[r * n + j] + M[j * rows + r]);
            if (!isfinite(v)) {
                e = LQ_ERR_NUMERIC;
                goto out;
            }
            W[r * n + j] = v;
        }
out:
    free(A);
    free(D);
    free(Wd);
    free(M);
    return e;
}

double lq_gptq_hloss(const float *T, const float *Q, int64_t rows, int64_t n, const double *H)
{
    double *e = malloc((size_t)n * sizeof(double)), *he = malloc((size_t)n * sizeof(double));
    double acc = 0;
    if (!e || !he) {
        free(e);
        free(he);
        return NAN;
    }
    for (int64_t r = 0; r < rows; ++r) {
        for (int64_t j = 0; j < n; ++j)
            e[j] = (double)T[r * n + j] - Q[r * n + j];
        cblas_dsymv(CblasRowMajor, CblasLower, (int)n, 1.0, H, (int)n, e, 1, 0.0, he, 1);
        acc += cblas_ddot((int)n, e, 1, he, 1);
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
