/* Hessian and cross-term accumulators (see hessian.h). */
#include <cblas.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/hessian.h"
#include "pipeline/pl_internal.h"
#include "pipeline/pl_mpi.h"

struct pl_hess {
    int n;
    int64_t count;   /* rows added, pending ones included */
    int pending;     /* rows waiting in xd */
    double *S;       /* sum of x x^T over flushed rows, lower triangle; H once scaled */
    bool scaled;     /* S holds H: no more rows until a reset */
    double *xd;      /* PL_HESS_BLOCK_ROWS x n rows not yet in S */
};

pl_hess *pl_hess_create(int n)
{
    if (n < 1 || n > PL_HESS_MAX_N)
        return NULL;
    pl_hess *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    const size_t nn = (size_t)n * (size_t)n;
    h->n = n;
    h->S = calloc(nn, sizeof(double));
    h->xd = malloc((size_t)PL_HESS_BLOCK_ROWS * (size_t)n * sizeof(double));
    if (!h->S || !h->xd) {
        pl_hess_free(h);
        return NULL;
    }
    return h;
}

void pl_hess_free(pl_hess *h)
{
    if (!h)
        return;
    free(h->S);
    free(h->xd);
    free(h);
}

void pl_hess_reset(pl_hess *h)
{
    if (!h)
        return;
    memset(h->S, 0, (size_t)h->n * (size_t)h->n * sizeof(double));
    if (!h->xd)
        h->xd = malloc((size_t)PL_HESS_BLOCK_ROWS * (size_t)h->n * sizeof(double));
    h->count = 0;
    h->pending = 0;
    h->scaled = false;
}

int64_t pl_hess_count(const pl_hess *h)
{
    return h ? h->count : 0;
}

/* S += X^T X for the pending rows. */
static void hess_flush(pl_hess *h)
{
    if (h->pending)
        cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, h->n, h->pending, 1.0, h->xd, h->n,
                    1.0, h->S, h->n);
    h->pending = 0;
}

pl_error pl_hess_add(pl_hess *h, const float *x, int rows, char *msg)
{
    if (!h || (!x && rows) || rows < 0)
        return pl_fail(msg, PL_ERR_ARG, "pl_hess_add: bad arguments");
    if (h->scaled)
        return pl_fail(msg, PL_ERR_ARG, "pl_hess_add: the matrix was taken; reset first");
    if (!h->xd)
        return pl_fail(msg, PL_ERR_NOMEM, "pl_hess_add: out of memory");
    const size_t n = (size_t)h->n;
    for (size_t i = 0; i < (size_t)rows * n; ++i)
        if (!isfinite(x[i]))
            return pl_fail(msg, PL_ERR_ARG, "non-finite activation at row %zu column %zu", i / n,
                           i % n);
    for (int r = 0; r < rows; ++r) {
        if (h->pending == PL_HESS_BLOCK_ROWS)
            hess_flush(h);
        double *d = h->xd + (size_t)h->pending * n;
        const float *xs = x + (size_t)r * n;
        for (size_t j = 0; j < n; ++j)
            d[j] = xs[j];
        h->pending++;
        h->count++;
    }
    return PL_OK;
}

/* Scaled in place (one n x n matrix, not two): the lower triangle is read before its mirror
 * is written. */
const double *pl_hess_matrix(pl_hess *h)
{
    if (h->scaled || !h->count)
        return h->S; /* H, or all zero */
    hess_flush(h);
    const size_t n = (size_t)h->n;
    const double s = 2.0 / (double)h->count;
    for (size_t i = 0; i < n; ++i)
        for (size_t j = 0; j <= i; ++j)
            h->S[i * n + j] = h->S[j * n + i] = h->S[i * n + j] * s;
    h->scaled = true;
    free(h->xd); /* no more rows until a reset */
    h->xd = NULL;
    return h->S;
}

pl_error pl_hess_reduce(pl_hess *h, char *msg)
{
    if (h->scaled)
        return pl_fail(msg, PL_ERR_ARG, "pl_hess_reduce: the matrix was taken");
    hess_flush(h);
    pl_error e = pl_mpi_sum(h->S, (size_t)h->n * (size_t)h->n, msg);
    return e == PL_OK ? pl_mpi_sum_i64(&h->count, msg) : e;
}

/* ---------------------------------------------------------------- cross term */

struct pl_cross {
    int n, pending;
    bool scaled;     /* C holds the result: the accumulator is spent */
    int64_t count;
    double *C, *xf, *xq;
};

void pl_cross_free(pl_cross *c)
{
    if (!c)
        return;
    free(c->C);
    free(c->xf);
    free(c->xq);
    free(c);
}

pl_cross *pl_cross_create(int n)
{
    if (n < 1 || n > PL_HESS_MAX_N)
        return NULL;
    pl_cross *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->n = n;
    c->C = calloc((size_t)n * (size_t)n, sizeof(double));
    c->xf = malloc((size_t)PL_HESS_BLOCK_ROWS * (size_t)n * sizeof(double));
    c->xq = malloc((size_t)PL_HESS_BLOCK_ROWS * (size_t)n * sizeof(double));
    if (!c->C || !c->xf || !c->xq) {
        pl_cross_free(c);
        return NULL;
    }
    return c;
}

static void cross_flush(pl_cross *c)
{
    if (c->pending)
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, c->n, c->n, c->pending, 1.0, c->xf,
                    c->n, c->xq, c->n, 1.0, c->C, c->n);
    c->pending = 0;
}

void pl_cross_add(pl_cross *c, const float *xf, const float *xq, int rows)
{
    if (!c || c->scaled)
        return;
    const size_t n = (size_t)c->n;
    for (int r = 0; r < rows; ++r) {
        if (c->pending == PL_HESS_BLOCK_ROWS)
            cross_flush(c);
        double *df = c->xf + (size_t)c->pending * n, *dq = c->xq + (size_t)c->pending * n;
        for (size_t j = 0; j < n; ++j) {
            df[j] = xf[(size_t)r * n + j];
            dq[j] = xq[(size_t)r * n + j];
        }
        c->pending++;
        c->count++;
    }
}

pl_error pl_cross_reduce(pl_cross *c, char *msg)
{
    if (c->scaled)
        return pl_fail(msg, PL_ERR_ARG, "pl_cross_reduce: the matrix was taken");
    cross_flush(c);
    pl_error e = pl_mpi_sum(c->C, (size_t)c->n * (size_t)c->n, msg);
    return e == PL_OK ? pl_mpi_sum_i64(&c->count, msg) : e;
}

const double *pl_cross_matrix(pl_cross *c)
{
    if (!c->scaled) {
        /* scaled in place, like H: 2/N sum x_f x_q^T */
        cross_flush(c);
        const size_t nn = (size_t)c->n * (size_t)c->n;
        const double sc = c->count ? 2.0 / (double)c->count : 0.0;
        for (size_t i = 0; i < nn; ++i)
            c->C[i] *= sc;
        c->scaled = true;
        free(c->xf); /* the accumulator is spent */
        free(c->xq);
        c->xf = c->xq = NULL;
    }
    return c->C;
}
