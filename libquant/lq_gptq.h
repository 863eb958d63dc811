/* libquant — GPTQ (Frantar et al. 2022, "GPTQ: Accurate Post-Training Quantization for
 * Generative Pre-trained Transformers") into the stock GGUF block types.
 *
 * The problem: W (nrows x ncols, row-major float, GGUF orientation: a row holds the ncols
 * input features and blocks run along it) and H = 2/N sum x x^T over N calibration inputs x
 * (ncols x ncols). GPTQ quantizes the columns one at a time and spreads each column's
 * rounding error over the not yet quantized columns through the upper Cholesky factor of
 * H^-1, lowering trace((W-Q) H (W-Q)^T) against plain rounding.
 *
 * The quantization grid is the GGUF block format itself:
 *   - Q4_0 Q4_1 Q5_0 Q5_1 Q8_0: each 32-column block's scale (and min) is chosen when the
 *     column loop reaches the block's first column, from the error-updated values of its 32
 *     columns, by llama.cpp's reference rule (GRID_PLAIN, the default) or its imatrix search
 *     weighted by diag(H) (GRID_WEIGHTED);
 *   - Q2_K Q3_K Q4_K Q5_K Q6_K: each 256-column super-block's header (d, dmin, 4/6/8-bit
 *     sub-block scales and mins) is chosen when the loop reaches the super-block, by
 *     llama.cpp's imatrix-weighted search with importance diag(H) (GRID_WEIGHTED, the
 *     default) or its reference search (GRID_PLAIN);
 *   - IQ4_NL / IQ4_XS: each block's step(s) by llama-quantize's IQ4 scale search (plain: weights
 *     x^2, GRID_PLAIN, the default; GRID_WEIGHTED: importance diag(H)) when the loop reaches
 *     the block; columns round to the nearest of the 16 grid levels times the step.
 * Each column is then rounded on that fixed grid with llama.cpp's rounding rule for the type,
 * and its error is the difference to the value the block decodes to (fp16 scales, exactly as
 * lq_dequantize_row computes it). The output is ordinary GGUF blocks; lq_dequantize_row of
 * the output gives exactly the values the solver used (checked on every call).
 *
 * With a diagonal H no error is propagated and the result equals llama.cpp's rounding:
 * lq_quantize_row(W, NULL) for legacy and IQ4 types under GRID_PLAIN, lq_quantize_row(W, diag(H))
 * for k-quants (and IQ4 types) under GRID_WEIGHTED.
 *
 * act_order: columns are processed by descending diag(H). GGUF has no per-column group
 * index, so groups stay the fixed 32/256-column blocks in the original order; their grids are
 * therefore all chosen before the loop from the (dead-column-zeroed) W, as AutoGPTQ's
 * static_groups does. static_groups may also be asked for without act_order.
 *
 * Determinism: rows are independent given H. Rows are processed in chunks by an OpenMP loop,
 * every row with the same sequence of float operations, so the bytes and the losses do not
 * depend on the thread count (nor on block_size). H's factorization (Cholesky of the
 * reversed H, then a triangular inverse: GPTQ's upper factor of H^-1 in 2/3 n^3 flops) runs
 * in double on the solver's own blocked kernels (libquant/lq_gptq_kern.h): every element is
 * one fixed chain of fused multiply-adds, so U, like everything else, is the same on 1..N
 * threads and on the scalar, AVX2 and AVX-512 paths (QFORGE_ISA=scalar|avx2 lowers the
 * choice). The result depends only on the inputs and the options.
 *
 * Ownership: callers own every buffer; nothing allocated here outlives a call. */
#ifndef QFORGE_LQ_GPTQ_H
#define QFORGE_LQ_GPTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "libquant/lq.h"

typedef enum {
    LQ_GPTQ_GRID_AUTO = 0, /* legacy types PLAIN, k-quants WEIGHTED */
    LQ_GPTQ_GRID_PLAIN,    /* llama.cpp's scale choice without an importance matrix */
    LQ_GPTQ_GRID_WEIGHTED  /* llama.cpp's imatrix search with importance diag(H) (Q8_0: plain) */
} lq_gptq_grid;

typedef struct {
    double damp;        /* relative damping: damp * mean(diag H) is added to H's diagonal;
                           default 0.01; >= 0 */
    int max_retries;    /* when a Cholesky factorization fails, retry with 10x the damping at
                           most this often; default 4 */
    int block_size;     /* lazy-batch width in columns, default 128; speed only. Without
                           static groups it is rounded down to a multiple of the grid block
                           (32 or 256) or to a power of two dividing it */
    bool act_order;     /* descending diag(H) order; implies static_groups */
    bool static_groups; /* choose every grid from W before the column loop */
    lq_gptq_grid grid;
    bool skip_loss;     /* leave loss_gptq/loss_rtn at 0 (they cost about as much as GPTQ) */
    int nthreads;       /* <= 0: all cores */
} lq_gptq_opts;

/* Defaults as documented above. */
void lq_gptq_opts_init(lq_gptq_opts *o);

typedef struct {
    double loss_gptq;   /* trace((W-Q) H (W-Q)^T), Q = decoded output, the caller's H */
    double loss_rtn;    /* the same for llama.cpp's plain rounding of W with the same grid
                           choice: lq_quantize_row(W, imatrix) with imatrix = diag(H) when the
                           grid is WEIGHTED, NULL when PLAIN */
    double mean_diag;   /* mean of diag(H) after dead columns got H_ii = 1 */
    double damp;        /* absolute damping finally added to the diagonal */
    double damp_rel;    /* damp / mean_diag */
    int retries;        /* factorizations that failed before the one used */
    int64_t dead_cols;  /* columns with H_ii == 0: their weights were set to 0 */
    int block_size;     /* lazy-batch width used */
} lq_gptq_result;

/* True for the types the solver writes: Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K Q4_K Q5_K Q6_K
 * IQ4_NL IQ4_XS. */
bool lq_gptq_supports(int type);

/* Quantize W (nrows x ncols) to `type` with Hessian H (ncols x ncols; only the lower
 * triangle i >= j is read; H_ii must be >= 0 and finite, W finite). dst receives
 * nrows * lq_row_size(type, ncols) bytes. deq (nrows x ncols floats) or NULL receives the
 * decoded output. res or NULL receives the figures above (also on LQ_ERR_NUMERIC, with the
 * damping tried last). opts NULL: defaults.
 * Errors: LQ_ERR_TYPE, LQ_ERR_SHAPE (ncols not a multiple of the block), LQ_ERR_ARG (NULL
 * buffer, non-finite value, negative H_ii, bad option), LQ_ERR_NOMEM, LQ_ERR_NUMERIC (H not
 * factorizable after every retry). */
lq_error lq_gptq_quantize(int type, const float *W, int64_t nrows, int64_t ncols,
                          const double *H, const lq_gptq_opts *opts, void *dst, float *deq,
                          lq_gptq_result *res, char *msg);
/* The same with H in float. */
lq_error lq_gptq_quantize_f32(int type, const float *W, int64_t nrows, int64_t ncols,
                              const float *H, const lq_gptq_opts *opts, void *dst, float *deq,
                              lq_gptq_result *res, char *msg);

/* ---- around the solver: targets and losses (libquant/lq_gptq_target.c) ----
 * What a calibration driver needs beside lq_gptq_quantize. Matrices are row-major; H is
 * symmetric n x n (the full matrix is read unless said otherwise). */

/* The grid rule of lq_gptq_opts.grid: true when type's grids are chosen with importance
 * diag(H) (GRID_WEIGHTED, or GRID_AUTO and a k-quant). */
bool lq_gptq_grid_weighted(int type, lq_gptq_grid grid);

/* In place: the lower triangle of A (n x n, symmetric) := L with A = L L^T (the upper triangle
 * is left as it was). LQ_ERR_NUMERIC when A is not (numerically) positive definite,
 * LQ_ERR_ARG for NULL or n < 1. */
lq_error lq_cholesky_lower(double *A, int64_t n);

/* The asymmetric target: W := W + W (C - H) Hd^-1 (rows x n, in place), Hd = H + lambda I with
 * lambda = damp * mean diag(H) (a dead column, H_ii <= 0, counts as 1 as in the solver). With
 * C = 2/N sum x_f x_q^T and H = 2/N sum x_q x_q^T this minimizes
 * ||W X_f - W' X_q||^2 + lambda ||W' - W||^2 over W'. Where C == H, W is unchanged (up to
 * rounding). LQ_ERR_NUMERIC when Hd is not positive definite or a result is not finite (W is
 * then partly written), LQ_ERR_NOMEM, LQ_ERR_ARG. Hd's Cholesky on the solver's kernels over
 * nthreads threads (<= 0: all; the result does not depend on them), then OpenBLAS (dgemm,
 * dtrsm). Work memory: n^2 + 2 rows*n doubles, n^2 of them only after the last read of C. */
lq_error lq_gptq_asym_target(float *W, int64_t rows, int64_t n, const double *H, const double *C,
                             double damp, int nthreads);

/* The same in two steps, so that a caller can free C in between: lq_gptq_asym_rhs writes
 * M (n x rows doubles, row stride rows) = (C - H)^T W^T (the last read of C);
 * lq_gptq_asym_apply then does W := W + (Hd^-1 M)^T (M is overwritten). Same results and
 * errors as lq_gptq_asym_target. */
lq_error lq_gptq_asym_rhs(const float *W, int64_t rows, int64_t n, const double *H,
                          const double *C, double *M);
lq_error lq_gptq_asym_apply(float *W, int64_t rows, int64_t n, const double *H, double damp,
                            double *M, int nthreads);

/* sum_r (T_r - Q_r) H (T_r - Q_r)^T over rows (T, Q rows x n floats; H's lower triangle is
 * read). NAN when out of memory. */
double lq_gptq_hloss(const float *T, const float *Q, int64_t rows, int64_t n, const double *H);

/* *loss := lq_gptq_hloss(T, R) for R = llama.cpp's plain rounding of W to type with the grid
 * rule above (importance diag(H) when weighted): the loss_rtn of a solver run whose target T
 * differs from W (the asymmetric target). LQ_ERR_SHAPE, LQ_ERR_NOMEM, lq_quantize_rows' errors
 * (msg[LQ_MSG_SIZE]). */
lq_error lq_gptq_rtn_loss(int type, const float *W, const float *T, int64_t rows, int64_t n,
                          const double *H, lq_gptq_grid grid, double *loss, char *msg);

#endif
