/* GPTQ solver: Cholesky factor and its inverse (see lq_gptq_kern.h).
 *
 * With B = J M J (J reverses the index order) and B = L L^T, M = (JLJ)(JLJ)^T, so
 * M^-1 = U^T U with U = J L^-1 J: one Cholesky and one triangular inverse (2/3 n^3 flops)
 * give GPTQ's upper factor of M^-1 without forming M^-1 (the usual Cholesky, inverse,
 * Cholesky costs 4/3 n^3).
 *
 * Element chains (double, each step an fma, in increasing k):
 *   L(i,j) = sqrt(t) (i == j) or t / L(j,j), t = B(i,j) - sum_{k<j} L(i,k) L(j,k);
 *   X = L^-1: X(j,j) = 1 / L(j,j); X(i,j) = t / L(i,i), t = 0 - sum_{k=j}^{i-1} L(i,k) X(k,j).
 * The blocked, threaded code below applies exactly these chains, so the result does not
 * depend on the thread count or on the instruction set.
 *
 * Storage during the work (A row-major n x n, row stride lda): Cholesky runs right-looking in
 * panels of NB columns; a panel's rows below the diagonal block are solved transposed (rows
 * in vector lanes) in PT, and every finished column of L is copied, transposed, into A's
 * strict upper triangle, L's diagonal into d. The inverse then overwrites the lower triangle
 * (diagonal included) column block by column block, reading L from the upper triangle; the
 * column blocks are independent and run in parallel. */
#include <omp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "libquant/lq_gptq_kern.h"

#define NB 128 /* Cholesky panel width */
#define CB 128 /* column block of the inverse */
#define RB 96  /* row block of the inverse */
#define RBS 384 /* row block of the trailing update */
#define LB 256 /* lanes per work item of the panel solve */

/* Cholesky step: panel j0..j0+nb. Returns -1 (same value in every thread) when a pivot fails.
 * A: n x n, row stride la; PT: nb rows of stride lp. */
static int chol_panel(const lq_gk *g, double *A, int64_t la, int64_t n, int64_t j0, int nb,
                      double *PT, int64_t lp, double *PTp, double *d, int *status, void *ws)
{
    const int64_t j1 = j0 + nb, m = n - j1;
    double *Ad = A + j0 * la + j0;
#pragma omp single
    {
        if (g->chol_f64(nb, Ad, la) != 0) {
            *status = -1;
        } else {
            for (int i = 0; i < nb; ++i) {
                d[j0 + i] = Ad[(int64_t)i * la + i];
                for (int k = 0; k < i; ++k)
                    Ad[(int64_t)k * la + i] = Ad[(int64_t)i * la + k];
            }
        }
    }
    if (*status)
        return -1;
    /* PT(kk, ii) = B(j1 + ii, j0 + kk), then solved in place: rows kk, lanes ii */
#pragma omp for schedule(static)
    for (int64_t l0 = 0; l0 < m; l0 += LB) {
        const int64_t l1 = l0 + LB < m ? l0 + LB : m;
        for (int64_t ii = l0; ii < l1; ++ii) {
            const double *src = A + (j1 + ii) * la + j0;
            for (int kk = 0; kk < nb; ++kk)
                PT[kk * lp + ii] = src[kk];
        }
        g->trsm_f64(nb, (int)(l1 - l0), Ad, la, PT + l0, lp, PT + l0, lp, d + j0);
        for (int kk = 0; kk < nb; ++kk)
            memcpy(A + (j0 + kk) * la + j1 + l0, PT + kk * lp + l0,
                   (size_t)(l1 - l0) * sizeof(double));
        g->pack_f64(nb, (int)(l1 - l0), PT + l0, lp, PTp + l0 / g->nr_f64 * lq_gk_tile_f64(g, nb),
                    0, lq_gk_tile_f64(g, nb));
    }
    /* trailing update of the lower triangle (tiles on the diagonal are computed whole; what
     * lands above the diagonal is overwritten by later panels' transposed copies) */
#pragma omp for schedule(dynamic, 1)
    for (int64_t r0 = 0; r0 < m; r0 += RBS) {
        const int mb = m - r0 < RBS ? (int)(m - r0) : RBS;
        g->fnma_f64(mb, (int)(r0 + mb), nb, PT + r0, lp, PTp, lq_gk_tile_f64(g, nb),
                    A + (j1 + r0) * la + j1, la, ws);
    }
    return 0;
}

/* Column block j0..j0+cb of X = L^-1 into A's lower triangle. Xd: cb x cb scratch; Xp: the
 * block's rows of X packed as they are finished (tiles of (n - j0) rows). */
static void inv_block(const lq_gk *g, double *A, int64_t la, int64_t n, int64_t j0, int cb,
                      const double *d, double *Xd, double *Xp, void *ws)
{
    const int64_t j1 = j0 + cb;
    const ptrdiff_t ts = lq_gk_tile_f64(g, n - j0);
    memset(Xd, 0, (size_t)cb * cb * sizeof(double));
    for (int i = 0; i < cb; ++i)
        Xd[i * cb + i] = 1.0; /* X(i,i) = (1 - nothing) / L(i,i) */
    g->trsm_f64(cb, cb, A + j0 * la + j0, la, Xd, cb, Xd, cb, d + j0);
    g->pack_f64(cb, cb, Xd, cb, Xp, 0, ts);
    for (int64_t i0 = j1; i0 < n; i0 += RB) {
        const int mb = n - i0 < RB ? (int)(n - i0) : RB;
        double *C = A + i0 * la + j0;
        for (int r = 0; r < mb; ++r)
            memset(C + r * la, 0, (size_t)cb * sizeof(double));
        /* k from j0 to i0 - 1 (X's rows of this block so far), then the triangle */
        g->fnma_f64(mb, cb, (int)(i0 - j0), A + j0 * la + i0, la, Xp, ts, C, la, ws);
        g->trsm_f64(mb, cb, A + i0 * la + i0, la, C, la, C, la, d + i0);
        g->pack_f64(mb, cb, C, la, Xp, (int)(i0 - j0), ts);
    }
    for (int i = 0; i < cb; ++i)
        memcpy(A + (j0 + i) * la + j0, Xd + i * cb, (size_t)(i + 1) * sizeof(double));
}

/* L^T (strict upper triangle) and d (diagonal) into the lower triangle: A's lower triangle
 * becomes L. Rows split among the threads. */
static void chol_to_lower(double *A, int64_t la, int64_t n, const double *d)
{
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
        double *row = A + i * la;
        for (int64_t k = 0; k < i; ++k)
            row[k] = A[k * la + i];
        row[i] = d[i];
    }
}

/* The Cholesky panels, then (inverse) X = L^-1 into the lower triangle or (!inverse) L. */
static int factor(const lq_gk *g, double *A, int64_t lda, int64_t n, int nthreads, bool inverse)
{
    const int nbk = (int)((n + CB - 1) / CB);
    /* PT's stride: like lda, an odd number of cache lines */
    const int64_t lp = (n + 7) / 8 % 2 ? (n + 7) / 8 * 8 : (n + 7) / 8 * 8 + 8;
    int nt = nthreads > 0 ? nthreads : omp_get_max_threads();
    const size_t xps = lq_gk_packed_f64(g, n, CB);
    double *PT = malloc((size_t)NB * (size_t)lp * sizeof(double));
    double *PTp = malloc(lq_gk_packed_f64(g, NB, n) * sizeof(double));
    double *d = malloc((size_t)n * sizeof(double));
    double *Xd = malloc((size_t)nt * CB * CB * sizeof(double));
    double *Xp = malloc((size_t)nt * xps * sizeof(double));
    char *ws = aligned_alloc(64, (size_t)nt * LQ_GK_WS);
    if (!PT || !PTp || !d || !Xd || !Xp || !ws) {
        free(PT);
        free(PTp);
        free(d);
        free(Xd);
        free(Xp);
        free(ws);
        return -2;
    }
    int status = 0;
#pragma omp parallel num_threads(nt)
    {
        void *mws = ws + (size_t)omp_get_thread_num() * LQ_GK_WS;
        for (int64_t j0 = 0; j0 < n; j0 += NB) {
            const int nb = n - j0 < NB ? (int)(n - j0) : NB;
            if (chol_panel(g, A, lda, n, j0, nb, PT, lp, PTp, d, &status, mws))
                break;
        }
        if (!status && !inverse)
            chol_to_lower(A, lda, n, d);
        if (!status && inverse) {
            double *xd = Xd + (size_t)omp_get_thread_num() * CB * CB;
            double *xp = Xp + (size_t)omp_get_thread_num() * xps;
#pragma omp for schedule(dynamic, 1)
            for (int b = 0; b < nbk; ++b) {
                const int64_t j0 = (int64_t)b * CB;
                inv_block(g, A, lda, n, j0, n - j0 < CB ? (int)(n - j0) : CB, d, xd, xp, mws);
            }
        }
    }
    free(PT);
    free(PTp);
    free(d);
    free(Xd);
    free(Xp);
    free(ws);
    return status;
}

int lq_gk_chol_inv(const lq_gk *g, double *A, int64_t lda, int64_t n, int nthreads)
{
    return factor(g, A, lda, n, nthreads, true);
}

int lq_gk_chol(const lq_gk *g, double *A, int64_t lda, int64_t n, int nthreads)
{
    return factor(g, A, lda, n, nthreads, false);
}
