/* pipeline — Hessian and cross-term accumulators of the GPTQ calibration.
 *
 * For a linear layer y = W x, H = 2/N sum x x^T over the N calibration token rows x that reach
 * it (accumulated in double). The asymmetric target also needs C = 2/N sum x_f x_q^T, x_f the
 * float model's input and x_q the partly quantized model's (pl_cross).
 *
 * Rank-k updates: rows are summed in blocks of PL_HESS_BLOCK_ROWS tokens through OpenBLAS
 * (dsyrk for H, dgemm for C), whatever the sizes of the add calls; OpenBLAS splits these over
 * the output only, so the sums do not depend on how rows arrive or on thread counts
 * (test_hessian checks 1 against 2 OpenBLAS threads bit for bit).
 * Errors: pl_error + one line in msg[PL_MSG_SIZE]. */
#ifndef QFORGE_PL_HESSIAN_H
#define QFORGE_PL_HESSIAN_H

#include <stdint.h>

#include "pipeline/pl_error.h"

#define PL_HESS_MAX_N 65536
#define PL_HESS_BLOCK_ROWS 1024 /* rows summed per BLAS call */

typedef struct pl_hess pl_hess;

/* An empty n x n accumulator (1 <= n <= PL_HESS_MAX_N); NULL when out of memory or n is bad. */
pl_hess *pl_hess_create(int n);
void pl_hess_free(pl_hess *h);
void pl_hess_reset(pl_hess *h);
/* Add rows x (rows x n floats, row-major). PL_ERR_ARG for bad arguments, a non-finite value
 * (nothing added then), or rows after pl_hess_matrix took the matrix (reset first). */
pl_error pl_hess_add(pl_hess *h, const float *x, int rows, char *msg);
int64_t pl_hess_count(const pl_hess *h); /* rows added since the last reset */
/* H = 2/count * sum x x^T, full symmetric n x n (all zero before any row), owned by h and
 * valid until the next reset/free. The sum is scaled in place (memory: one n x n matrix plus
 * PL_HESS_BLOCK_ROWS rows until then), so once there were rows the accumulator takes no more
 * until a reset (PL_ERR_NOMEM from add when the reset could not get the row block back). */
const double *pl_hess_matrix(pl_hess *h);

/* Sum every rank's rows (pipeline/pl_mpi.h; nothing to do with one rank), before the
 * matrix is taken. */
pl_error pl_hess_reduce(pl_hess *h, char *msg);

/* C accumulator: sum x_f x_q^T over row pairs. */
typedef struct pl_cross pl_cross;

pl_cross *pl_cross_create(int n); /* NULL when out of memory or n is bad */
void pl_cross_free(pl_cross *c);
/* Add rows row pairs (xf, xq: rows x n floats each); ignored once pl_cross_matrix was called. */
void pl_cross_add(pl_cross *c, const float *xf, const float *xq, int rows);
/* C = 2/count * sum x_f x_q^T (n x n, not symmetric), owned by c, scaled in place: the
 * accumulator takes no more rows afterwards. */
const double *pl_cross_matrix(pl_cross *c);
pl_error pl_cross_reduce(pl_cross *c, char *msg); /* as pl_hess_reduce */

#endif
