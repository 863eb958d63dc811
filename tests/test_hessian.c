/* pipeline/hessian.c: the Hessian accumulator against a direct sum, and the cross term. */
#include <cblas.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/hessian.h"

Test(hessian, matches_direct_sum)
{
    const int n = 37, rows[] = {5, 1100, 0, 3};
    int total = 0;
    for (int i = 0; i < 4; ++i)
        total += rows[i];
    float *x = malloc((size_t)total * n * sizeof(float));
    uint64_t s = 12345;
    for (int i = 0; i < total * n; ++i) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((double)(s >> 11) / 9007199254740992.0 - 0.5);
    }
    pl_hess *h = pl_hess_create(n);
    cr_assert_not_null(h);
    const double *H0 = pl_hess_matrix(h);
    for (int i = 0; i < n * n; ++i)
        cr_assert_eq(H0[i], 0.0);
    int off = 0;
    for (int i = 0; i < 4; ++i) {
        cr_assert_eq(pl_hess_add(h, x + (size_t)off * n, rows[i], NULL), PL_OK);
        off += rows[i];
    }
    cr_assert_eq(pl_hess_count(h), total);
    const double *H = pl_hess_matrix(h);
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j) {
            double want = 0;
            for (int t = 0; t < total; ++t)
                want += (double)x[t * n + i] * x[t * n + j];
            want *= 2.0 / total;
            cr_assert(fabs(H[i * n + j] - want) <= 1e-12 * fabs(want) + 1e-15,
                      "H[%d][%d] = %.17g, want %.17g", i, j, H[i * n + j], want);
            cr_assert_eq(H[i * n + j], H[j * n + i]);
        }
    x[3] = NAN;
    char msg[PL_MSG_SIZE];
    cr_assert_eq(pl_hess_add(h, x, 1, msg), PL_ERR_ARG);
    cr_assert_eq(pl_hess_count(h), total);
    pl_hess_reset(h);
    cr_assert_eq(pl_hess_count(h), 0);
    cr_assert_eq(pl_hess_matrix(h)[5], 0.0);
    pl_hess_free(h);
    cr_assert_null(pl_hess_create(0));
    cr_assert_null(pl_hess_create(70000));
    free(x);
}

/* C = 2/N sum x_f x_q^T (not symmetric), the same whatever the sizes of the adds; no rows
 * after the result. */
Test(hessian, cross_term_matches_direct_sum)
{
    const int n = 11, rows[] = {700, 1, 600};
    const int total = 1301;
    float *xf = malloc((size_t)total * n * sizeof(float)), *xq = malloc((size_t)total * n * sizeof(float));
    uint64_t s = 99;
    for (int i = 0; i < total * n; ++i) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        xf[i] = (float)((double)(s >> 11) / 9007199254740992.0 - 0.5);
        xq[i] = xf[i] * 0.75f + (float)(i % 5) * 0.01f;
    }
    pl_cross *c = pl_cross_create(n), *one = pl_cross_create(n);
    cr_assert(c && one);
    int off = 0;
    for (int i = 0; i < 3; ++i) {
        pl_cross_add(c, xf + (size_t)off * n, xq + (size_t)off * n, rows[i]);
        off += rows[i];
    }
    pl_cross_add(one, xf, xq, total);
    const double *C = pl_cross_matrix(c), *C1 = pl_cross_matrix(one);
    bool asym = false;
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j) {
            double want = 0;
            for (int t = 0; t < total; ++t)
                want += (double)xf[t * n + i] * xq[t * n + j];
            want *= 2.0 / total;
            cr_assert(fabs(C[i * n + j] - want) <= 1e-12 * fabs(want) + 1e-15,
                      "C[%d][%d] = %.17g, want %.17g", i, j, C[i * n + j], want);
            cr_assert_eq(C[i * n + j], C1[i * n + j], "C depends on how the rows arrived");
            asym = asym || C[i * n + j] != C[j * n + i];
        }
    cr_assert(asym, "the cross term of different inputs is not symmetric");
    const double c00 = C[0];
    pl_cross_add(c, xf, xq, 10); /* ignored */
    cr_assert_eq(pl_cross_matrix(c)[0], c00);
    pl_cross_free(c);
    pl_cross_free(one);
    cr_assert_null(pl_cross_create(0));
    free(xf);
    free(xq);
}

/* The rank-k updates give the same bits on 1 and 2 OpenBLAS threads (a size OpenBLAS splits). */
Test(hessian, same_bits_on_any_thread_count)
{
    const int n = 384, total = 2100;
    float *x = malloc((size_t)total * n * sizeof(float));
    uint64_t s = 777;
    for (int i = 0; i < total * n; ++i) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((double)(s >> 11) / 9007199254740992.0 - 0.5);
    }
    const int saved = openblas_get_num_threads();
    double *H[2];
    for (int k = 0; k < 2; ++k) {
        openblas_set_num_threads(k + 1);
        pl_hess *h = pl_hess_create(n);
        cr_assert_not_null(h);
        cr_assert_eq(pl_hess_add(h, x, 1500, NULL), PL_OK);
        cr_assert_eq(pl_hess_add(h, x + (size_t)1500 * n, total - 1500, NULL), PL_OK);
        H[k] = malloc((size_t)n * n * sizeof(double));
        memcpy(H[k], pl_hess_matrix(h), (size_t)n * n * sizeof(double));
        cr_assert_eq(pl_hess_add(h, x, 1, NULL), PL_ERR_ARG, "rows accepted after the matrix was taken");
        pl_hess_free(h);
    }
    openblas_set_num_threads(saved);
    cr_assert(memcmp(H[0], H[1], (size_t)n * n * sizeof(double)) == 0, "H depends on the thread count");
    cr_assert_neq(H[0][0], 0.0);
    free(H[0]);
    free(H[1]);
    free(x);
}
