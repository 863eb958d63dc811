/* Importance statistics (see imatrix_acc.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/imatrix_acc.h"
#include "pipeline/pl_internal.h"
#include "pipeline/pl_mpi.h"

struct pl_imatrix_acc {
    inp_imatrix_sums *e; /* name, sum2 and sum owned here */
    size_t n, cap;
};

pl_imatrix_acc *pl_imatrix_acc_create(void)
{
    return calloc(1, sizeof(pl_imatrix_acc));
}

void pl_imatrix_acc_free(pl_imatrix_acc *im)
{
    if (!im)
        return;
    for (size_t i = 0; i < im->n; ++i) {
        free((char *)im->e[i].name);
        free((double *)im->e[i].sum2);
        free((double *)im->e[i].sum);
    }
    free(im->e);
    free(im);
}

size_t pl_imatrix_acc_n_entries(const pl_imatrix_acc *im)
{
    return im ? im->n : 0;
}

static inp_imatrix_sums *find(const pl_imatrix_acc *im, const char *name)
{
    for (size_t i = 0; i < im->n; ++i)
        if (!strcmp(im->e[i].name, name))
            return &im->e[i];
    return NULL;
}

static pl_error add_entry(pl_imatrix_acc *im, const char *name, int cols, char *msg)
{
    if (im->n == im->cap) {
        const size_t cap = im->cap ? 2 * im->cap : 16;
        inp_imatrix_sums *ne = realloc(im->e, cap * sizeof *ne);
        if (!ne)
            return pl_fail(msg, PL_ERR_NOMEM, "out of memory");
        im->e = ne;
        im->cap = cap;
    }
    inp_imatrix_sums *e = &im->e[im->n];
    memset(e, 0, sizeof *e);
    char *nm = strdup(name);
    double *s2 = calloc((size_t)cols, sizeof(double)), *s1 = calloc((size_t)cols, sizeof(double));
    if (!nm || !s2 || !s1) {
        free(nm);
        free(s2);
        free(s1);
        return pl_fail(msg, PL_ERR_NOMEM, "out of memory");
    }
    e->name = nm;
    e->cols = cols;
    e->sum2 = s2;
    e->sum = s1;
    im->n++;
    return PL_OK;
}

pl_error pl_imatrix_acc_add(pl_imatrix_acc *im, const char *name, const float *x, int rows,
                            int cols, char *msg)
{
    if (!im || !name || strlen(name) >= GGUF_MAX_NAME || (!x && rows) || rows < 0 || cols < 1)
        return pl_fail(msg, PL_ERR_ARG, "pl_imatrix_acc_add: bad arguments");
    const size_t n = (size_t)cols;
    for (size_t i = 0; i < (size_t)rows * n; ++i)
        if (!isfinite(x[i]))
            return pl_fail(msg, PL_ERR_ARG, "%s: non-finite activation at row %zu column %zu",
                           name, i / n, i % n);
    inp_imatrix_sums *e = find(im, name);
    if (e && e->cols != cols)
        return pl_fail(msg, PL_ERR_ARG, "%s: %d columns, earlier %d", name, cols, e->cols);
    if (!e) {
        pl_error err = add_entry(im, name, cols, msg);
        if (err != PL_OK)
            return err;
        e = &im->e[im->n - 1];
    }
    double *s2 = (double *)e->sum2, *s1 = (double *)e->sum;
    for (int r = 0; r < rows; ++r) {
        const float *xr = x + (size_t)r * n;
        for (size_t j = 0; j < n; ++j) {
            const double v = xr[j];
            s2[j] += v * v;
            s1[j] += v;
        }
    }
    e->count += rows;
    return PL_OK;
}

const double *pl_imatrix_acc_sums(const pl_imatrix_acc *im, const char *name, int *cols,
                                  const double **sum, int64_t *count)
{
    const inp_imatrix_sums *e = im && name ? find(im, name) : NULL;
    if (!e)
        return NULL;
    if (cols)
        *cols = e->cols;
    if (sum)
        *sum = e->sum;
    if (count)
        *count = e->count;
    return e->sum2;
}

const inp_imatrix_sums *pl_imatrix_acc_entries(const pl_imatrix_acc *im, size_t *n)
{
    *n = im ? im->n : 0;
    return im ? im->e : NULL;
}

pl_error pl_imatrix_acc_reduce(pl_imatrix_acc *im, char *msg)
{
    if (!im)
        return pl_fail(msg, PL_ERR_ARG, "pl_imatrix_acc_reduce: no accumulator");
    const int size = pl_mpi_size();
    if (size == 1)
        return PL_OK;
    /* every rank must hold the same entries; all ranks agree on the verdict before summing */
    int64_t n = (int64_t)im->n, total = n, bad;
    pl_error e = pl_mpi_sum_i64(&total, msg);
    bad = total != n * size;
    if (e == PL_OK)
        e = pl_mpi_sum_i64(&bad, msg);
    if (e == PL_OK && bad)
        e = pl_fail(msg, PL_ERR_INTERNAL, "importance sums: the ranks hold different entries");
    for (size_t i = 0; i < im->n && e == PL_OK; ++i) {
        inp_imatrix_sums *x = &im->e[i];
        if ((e = pl_mpi_sum((double *)x->sum2, (size_t)x->cols, msg)) == PL_OK &&
            (e = pl_mpi_sum((double *)x->sum, (size_t)x->cols, msg)) == PL_OK)
            e = pl_mpi_sum_i64(&x->count, msg);
    }
    return e;
}
