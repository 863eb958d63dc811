/* libquant internal — dense kernels of the GPTQ solver (lq_gptq.c).
 *
 * Every output element is defined as one chain of roundings in a fixed order, written next
 * to each function. The blocked, vectorized versions apply exactly that chain (fused
 * multiply-adds where the chain says fma, a rounded product and a rounded difference where it
 * says so), whatever the tile shapes, cache blocking, thread split or instruction set. So
 * the scalar, AVX2 and AVX-512 versions give the same bits, and so do 1, 2 or 3 threads.
 *
 * Operand layout shared by every function (row-major, leading dimensions in elements):
 *   A(i,k) = a[k*lda + i]   (k-major: for one k, the i's are contiguous)
 *   B(k,j) = b[k*ldb + j]
 *   C(i,j) = c[i*ldc + j]
 * Nothing is allocated: fnma_f64 packs its A operand into ws, a per-thread workspace of
 * LQ_GK_WS bytes (64-byte aligned); the functions are thread-safe on disjoint outputs and
 * workspaces. */
#ifndef QFORGE_LQ_GPTQ_KERN_H
#define QFORGE_LQ_GPTQ_KERN_H

#include <stddef.h>
#include <stdint.h>

/* Workspace of fnma_f64: its packed A panel (up to (96 + 16) x 256 doubles). */
#define LQ_GK_WS ((size_t)(112 * 256) * sizeof(double))

typedef enum { LQ_GK_SCALAR = 0, LQ_GK_AVX2, LQ_GK_AVX512, LQ_GK_COUNT } lq_gk_isa;

typedef struct {
    lq_gk_isa isa;
    const char *name;
    /* C(i,j) = C(i,j) - A(i,k)*B(k,j) for k = 0..K-1 in order, i < M, j < N: the product
     * rounded to float, then the difference rounded (no fused multiply-add). B comes packed
     * by pack_f32 (the same B serves many calls). */
    void (*mulsub_f32)(int M, int N, int K, const float *a, ptrdiff_t lda, const float *bp,
                       float *c, ptrdiff_t ldc);
    /* B (K x N, row stride ldb) into bp, lq_gk_packed_f32(g, K, N) floats. */
    void (*pack_f32)(int K, int N, const float *b, ptrdiff_t ldb, float *bp);
    int nr_f32; /* column tile of the packed B */
    /* C(i,j) = fma(-A(i,k), B(k,j), C(i,j)) for k = 0..K-1 in order, i < M, j < N. B comes
     * packed by pack_f64 (rows 0..K-1 of it, tiles bstride apart). */
    void (*fnma_f64)(int M, int N, int K, const double *a, ptrdiff_t lda, const double *bp,
                     ptrdiff_t bstride, double *c, ptrdiff_t ldc, void *ws);
    /* Rows k0..k0+K-1 of a packed B from B (K x N, row stride ldb): tiles of nr_f64 lanes,
     * tile t at bp + t * bstride (bstride >= nr_f64 * every row count used), lanes past N 0.
     * A B may be packed in pieces, rows appended as they become final. */
    void (*pack_f64)(int K, int N, const double *b, ptrdiff_t ldb, double *bp, int k0,
                     ptrdiff_t bstride);
    int nr_f64;
    /* Rows in order i = 0..M-1: t = C(i,j); t = fma(-A(i,k), B(k,j), t) for k = 0..i-1;
     * C(i,j) = d ? t / d[i] : t, for j < N. B may be C itself (b == c, ldb == ldc): row k
     * is then final before row i reads it. */
    void (*trsm_f64)(int M, int N, const double *a, ptrdiff_t lda, const double *b,
                     ptrdiff_t ldb, double *c, ptrdiff_t ldc, const double *d);
    /* In-place lower Cholesky of the n x n block at c (row-major, ldc), lower triangle:
     * column j = 0..n-1: for i = j..n-1: t = C(i,j); t = fma(-C(i,k), C(j,k), t) for
     * k = 0..j-1; C(j,j) = sqrt(t) (t must be > 0), C(i,j) = t / C(j,j). The upper triangle
     * is not touched. Returns 0, or -1 when a pivot is not > 0 (or not finite). */
    int (*chol_f64)(int n, double *c, ptrdiff_t ldc);
} lq_gk;

/* Floats of B (K x N) packed by g->pack_f32. */
static inline size_t lq_gk_packed_f32(const lq_gk *g, int K, int N)
{
    return (size_t)K * (size_t)((N + g->nr_f32 - 1) / g->nr_f32 * g->nr_f32);
}

/* Doubles of one tile of a packed B with K rows (the bstride for K rows). */
static inline ptrdiff_t lq_gk_tile_f64(const lq_gk *g, int64_t K)
{
    return (ptrdiff_t)(K * g->nr_f64);
}
/* Doubles of a packed B of K rows x N lanes. */
static inline size_t lq_gk_packed_f64(const lq_gk *g, int64_t K, int64_t N)
{
    return (size_t)((N + g->nr_f64 - 1) / g->nr_f64) * (size_t)lq_gk_tile_f64(g, K);
}

/* X = L^-1 in A's lower triangle (diagonal included), where on entry A's lower triangle holds
 * B = L L^T (A: n x n double, row stride lda; the strict upper triangle is used as workspace
 * and ends up holding L^T). With B = J M J (J reverses the index order), U = J X J is the
 * upper factor of M^-1 = U^T U that GPTQ uses. Element chains, fma by fma in increasing k:
 *   L(i,j) = sqrt(t) (i == j) or t / L(j,j), t = B(i,j) - sum_{k<j} L(i,k) L(j,k);
 *   X(j,j) = 1 / L(j,j); X(i,j) = t / L(i,i), t = 0 - sum_{k=j}^{i-1} L(i,k) X(k,j).
 * Runs on nthreads threads (<= 0: all); the result does not depend on them. Returns 0, -1
 * when a pivot is not > 0 (B not positive definite in floating point), -2 out of memory. */
int lq_gk_chol_inv(const lq_gk *g, double *A, int64_t lda, int64_t n, int nthreads);

/* The same Cholesky alone: on return A's lower triangle (diagonal included) holds L with
 * B = L L^T (the chains above, bit for bit) and the strict upper triangle L^T. Returns 0, -1
 * (B not positive definite in floating point), -2 out of memory. */
int lq_gk_chol(const lq_gk *g, double *A, int64_t lda, int64_t n, int nthreads);

/* The kernels of the best ISA the CPU runs; QFORGE_ISA=scalar|avx2 (read at each call)
 * lowers the choice, as for the runtime's kernels. */
const lq_gk *lq_gk_best(void);
/* The kernels of one ISA, or NULL when the CPU (or the build) cannot run them. */
const lq_gk *lq_gk_get(lq_gk_isa isa);

/* Per-ISA tables (lq_gptq_kern.c, lq_gptq_avx2.c, lq_gptq_avx512.c). */
const lq_gk *lq_gk_scalar_table(void);
const lq_gk *lq_gk_avx2_table(void);
const lq_gk *lq_gk_avx512_table(void);

#endif
