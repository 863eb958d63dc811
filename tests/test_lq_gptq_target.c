/* libquant/lq_gptq_target.c: the Cholesky helper, the grid rule, the asymmetric target and the
 * H-weighted losses, against direct computations. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "libquant/lq.h"
#include "libquant/lq_gptq.h"

static double rnd(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(*s >> 11) / 9007199254740992.0 - 0.5;
}

/* H = 2/N X^T X + 0.1 I for N random rows (positive definite), n x n. */
static double *spd(int n, int N, uint64_t seed)
{
    double *H = calloc((size_t)n * n, sizeof(double));
    double *x = malloc((size_t)N * n * sizeof(double));
    for (int i = 0; i < N * n; ++i)
        x[i] = rnd(&seed);
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j) {
            double a = 0;
            for (int t = 0; t < N; ++t)
                a += x[t * n + i] * x[t * n + j];
            H[i * n + j] = 2.0 * a / N + (i == j ? 0.1 : 0.0);
        }
    free(x);
    return H;
}

Test(lq_gptq_target, cholesky)
{
    const int n = 4;
    /* L known, A = L L^T */
    const double L[16] = {2, 0, 0, 0, 0.5, 1.5, 0, 0, -1, 0.25, 3, 0, 0.125, -0.5, 1, 0.75};
    double A[16];
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j) {
            double a = 0;
            for (int k = 0; k < n; ++k)
                a += L[i * n + k] * L[j * n + k];
            A[i * n + j] = a;
        }
    const double upper01 = A[1];
    cr_assert_eq(lq_cholesky_lower(A, n), LQ_OK);
    for (int i = 0; i < n; ++i)
        for (int j = 0; j <= i; ++j)
            cr_assert(fabs(A[i * n + j] - L[i * n + j]) < 1e-14, "L[%d][%d] = %.17g", i, j, A[i * n + j]);
    cr_assert_eq(A[1], upper01, "the upper triangle was touched");
    double B[4] = {1, 2, 2, 1}; /* eigenvalues 3, -1 */
    cr_assert_eq(lq_cholesky_lower(B, 2), LQ_ERR_NUMERIC);
    double Z[1] = {0};
    cr_assert_eq(lq_cholesky_lower(Z, 1), LQ_ERR_NUMERIC);
    cr_assert_eq(lq_cholesky_lower(NULL, 2), LQ_ERR_ARG);
    cr_assert_eq(lq_cholesky_lower(Z, 0), LQ_ERR_ARG);
}

Test(lq_gptq_target, grid_rule)
{
    static const int kq[] = {GGUF_Q2_K, GGUF_Q3_K, GGUF_Q4_K, GGUF_Q5_K, GGUF_Q6_K};
    static const int legacy[] = {GGUF_Q4_0, GGUF_Q4_1, GGUF_Q5_0, GGUF_Q5_1, GGUF_Q8_0};
    for (int i = 0; i < 5; ++i) {
        cr_assert(lq_gptq_grid_weighted(kq[i], LQ_GPTQ_GRID_AUTO));
        cr_assert(!lq_gptq_grid_weighted(legacy[i], LQ_GPTQ_GRID_AUTO));
        cr_assert(lq_gptq_grid_weighted(legacy[i], LQ_GPTQ_GRID_WEIGHTED));
        cr_assert(!lq_gptq_grid_weighted(kq[i], LQ_GPTQ_GRID_PLAIN));
    }
}

/* C == H: nothing to correct. Otherwise W' solves W' (H + lambda I) = W C + lambda W. */
Test(lq_gptq_target, asymmetric_target)
{
    const int n = 24, rows = 5;
    const double damp = 0.05;
    double *H = spd(n, 40, 1), *C = malloc((size_t)n * n * sizeof(double));
    uint64_t s = 7;
    float *W = malloc((size_t)rows * n * sizeof(float)), *Wt = malloc((size_t)rows * n * sizeof(float));
    for (int i = 0; i < rows * n; ++i)
        W[i] = (float)rnd(&s);
    memcpy(Wt, W, (size_t)rows * n * sizeof(float));
    cr_assert_eq(lq_gptq_asym_target(Wt, rows, n, H, H, damp, 0), LQ_OK);
    cr_assert(memcmp(Wt, W, (size_t)rows * n * sizeof(float)) == 0, "C == H changed W");

    for (int i = 0; i < n * n; ++i)
        C[i] = H[i] * 0.9 + 0.01 * rnd(&s);
    cr_assert_eq(lq_gptq_asym_target(Wt, rows, n, H, C, damp, 0), LQ_OK);
    double mean = 0;
    for (int i = 0; i < n; ++i)
        mean += H[i * n + i];
    const double lambda = damp * mean / n;
    double worst = 0, changed = 0;
    for (int r = 0; r < rows; ++r)
        for (int j = 0; j < n; ++j) {
            double lhs = lambda * Wt[r * n + j], rhs = lambda * W[r * n + j];
            for (int k = 0; k < n; ++k) {
                lhs += (double)Wt[r * n + k] * H[k * n + j];
                rhs += (double)W[r * n + k] * C[k * n + j];
            }
            worst = fmax(worst, fabs(lhs - rhs));
            changed = fmax(changed, fabs((double)Wt[r * n + j] - W[r * n + j]));
        }
    cr_assert_lt(worst, 1e-6, "normal equations off by %g", worst);
    cr_assert_gt(changed, 1e-3, "the target did not move");

    /* not positive definite (a dead column, H_ii <= 0, counts as 1: indefinite through an
     * off-diagonal pair) */
    double *neg = calloc((size_t)n * n, sizeof(double));
    for (int i = 0; i < n; ++i)
        neg[i * n + i] = i == 3 ? -50.0 : 1.0;
    neg[1 * n + 2] = neg[2 * n + 1] = 2.0;
    cr_assert_eq(lq_gptq_asym_target(Wt, rows, n, neg, C, 0.0, 0), LQ_ERR_NUMERIC);
    cr_assert_eq(lq_gptq_asym_target(Wt, rows, n, H, C, -1.0, 0), LQ_ERR_ARG);
    free(neg);
    free(H);
    free(C);
    free(W);
    free(Wt);
}

/* n = 300: the Cholesky's panels of 128 and the right-hand side's column blocks of 256 are
 * crossed; the target satisfies its normal equations and does not depend on the thread count
 * (the OpenMP threads of the Cholesky, and OpenBLAS's). */
Test(lq_gptq_target, asymmetric_target_blocked)
{
    const int n = 300, rows = 40;
    const double damp = 0.02;
    double *H = spd(n, 400, 3), *C = malloc((size_t)n * n * sizeof(double));
    uint64_t s = 11;
    for (int i = 0; i < n * n; ++i)
        C[i] = H[i] * 0.95 + 0.005 * rnd(&s);
    const size_t nel = (size_t)rows * n;
    float *W = malloc(nel * sizeof(float)), *T[3];
    for (size_t i = 0; i < nel; ++i)
        W[i] = (float)rnd(&s);
    for (int t = 0; t < 3; ++t) {
        T[t] = malloc(nel * sizeof(float));
        memcpy(T[t], W, nel * sizeof(float));
        cr_assert_eq(lq_gptq_asym_target(T[t], rows, n, H, C, damp, t + 1), LQ_OK);
        cr_assert(memcmp(T[t], T[0], nel * sizeof(float)) == 0, "%d threads differ from 1", t + 1);
    }
    /* the two-step form gives the same floats */
    float *T2 = malloc(nel * sizeof(float));
    double *M = malloc(nel * sizeof(double));
    memcpy(T2, W, nel * sizeof(float));
    cr_assert_eq(lq_gptq_asym_rhs(T2, rows, n, H, C, M), LQ_OK);
    cr_assert_eq(lq_gptq_asym_apply(T2, rows, n, H, damp, M, 2), LQ_OK);
    cr_assert(memcmp(T2, T[0], nel * sizeof(float)) == 0, "rhs + apply differ from the target");
    free(T2);
    free(M);
    double mean = 0;
    for (int i = 0; i < n; ++i)
        mean += H[i * n + i];
    const double lambda = damp * mean / n;
    double worst = 0, scale = 0;
    for (int r = 0; r < rows; ++r)
        for (int j = 0; j < n; ++j) {
            double lhs = lambda * T[0][r * n + j], rhs = lambda * W[r * n + j];
            for (int k = 0; k < n; ++k) {
                lhs += (double)T[0][r * n + k] * H[k * n + j];
                rhs += (double)W[r * n + k] * C[k * n + j];
            }
            worst = fmax(worst, fabs(lhs - rhs));
            scale = fmax(scale, fabs(rhs));
        }
    cr_assert_lt(worst, 1e-5 * scale, "normal equations off by %g (scale %g)", worst, scale);
    for (int t = 0; t < 3; ++t)
        free(T[t]);
    free(W);
    free(H);
    free(C);
}

static double direct_hloss(const float *T, const float *Q, int rows, int n, const double *H)
{
    double acc = 0;
    for (int r = 0; r < rows; ++r)
        for (int i = 0; i < n; ++i)
            for (int j = 0; j < n; ++j)
                acc += ((double)T[r * n + i] - Q[r * n + i]) * H[i * n + j] *
                       ((double)T[r * n + j] - Q[r * n + j]);
    return acc;
}

Test(lq_gptq_target, losses)
{
    const int n = 256, rows = 70; /* 70: row blocks of 64 and 6 in lq_gptq_hloss */
    double *H = spd(n, 300, 3);
    uint64_t s = 11;
    float *W = malloc((size_t)rows * n * sizeof(float)), *T = malloc((size_t)rows * n * sizeof(float));
    float *R = malloc((size_t)rows * n * sizeof(float)), *qw = malloc((size_t)n * sizeof(float));
    for (int i = 0; i < rows * n; ++i) {
        W[i] = (float)rnd(&s);
        T[i] = W[i] + 0.01f * (float)rnd(&s);
    }
    const double h = lq_gptq_hloss(T, W, rows, n, H), want = direct_hloss(T, W, rows, n, H);
    cr_assert(fabs(h - want) <= 1e-10 * fabs(want), "hloss %.17g, want %.17g", h, want);
    cr_assert_eq(lq_gptq_hloss(W, W, rows, n, H), 0.0);

    /* rtn loss: llama.cpp's rounding with importance diag(H) (weighted) or none (plain) */
    const size_t rs = lq_row_size(GGUF_Q4_K, n);
    void *q = malloc(rs * rows);
    char msg[LQ_MSG_SIZE];
    for (int j = 0; j < n; ++j)
        qw[j] = (float)H[j * n + j];
    for (int weighted = 0; weighted < 2; ++weighted) {
        cr_assert_eq(lq_quantize_rows(GGUF_Q4_K, W, q, rows, n, weighted ? qw : NULL, 1, msg), LQ_OK);
        for (int r = 0; r < rows; ++r)
            cr_assert_eq(lq_dequantize_row(GGUF_Q4_K, (const char *)q + r * rs, R + r * n, n), 0);
        double loss = -1;
        const lq_gptq_grid g = weighted ? LQ_GPTQ_GRID_AUTO : LQ_GPTQ_GRID_PLAIN;
        cr_assert_eq(lq_gptq_rtn_loss(GGUF_Q4_K, W, T, rows, n, H, g, &loss, msg), LQ_OK, "%s", msg);
        cr_assert_eq(loss, lq_gptq_hloss(T, R, rows, n, H), "weighted %d", weighted);
        cr_assert_gt(loss, 0);
    }
    double l1, l2;
    cr_assert_eq(lq_gptq_rtn_loss(GGUF_Q4_K, W, T, rows, n, H, LQ_GPTQ_GRID_PLAIN, &l1, msg), LQ_OK);
    cr_assert_eq(lq_gptq_rtn_loss(GGUF_Q4_K, W, T, rows, n, H, LQ_GPTQ_GRID_WEIGHTED, &l2, msg), LQ_OK);
    cr_assert_neq(l1, l2, "the grid rule made no difference");
    cr_assert_eq(lq_gptq_rtn_loss(GGUF_Q4_K, W, T, rows, 100, H, LQ_GPTQ_GRID_PLAIN, &l1, msg),
                 LQ_ERR_SHAPE);
    free(q);
    free(H);
    free(W);
    free(T);
    free(R);
    free(qw);
}
