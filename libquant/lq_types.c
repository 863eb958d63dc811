/* libquant — the type table (see lq_types.h) and the row functions it points to: each runs
 * a type's block functions over a row, building every block in an aligned local and copying
 * it to the caller's (possibly unaligned) buffer. */
#include "common/qf_half.h"
#include "libquant/lq_internal.h"
#include "libquant/lq_iq4.h"
#include "libquant/lq_types.h"

/* ---- float types ---- */

static void f32_row(const float *x, void *dst, int64_t n) { memcpy(dst, x, (size_t)n * sizeof *x); }
static void f32_deq(const void *src, float *y, int64_t n) { memcpy(y, src, (size_t)n * sizeof *y); }
static void f16_row(const float *x, void *dst, int64_t n) { qf_f32_to_f16_row(x, dst, (size_t)n); }
static void f16_deq(const void *src, float *y, int64_t n) { qf_f16_to_f32_row(src, y, (size_t)n); }
static void bf16_row(const float *x, void *dst, int64_t n) { qf_f32_to_bf16_row(x, dst, (size_t)n); }
static void bf16_deq(const void *src, float *y, int64_t n) { qf_bf16_to_f32_row(src, y, (size_t)n); }

/* ---- row functions from block functions ----
 * ROW: NAME(x, dst, n) runs STMT on each block of QK values xb, filling the local blk.
 * ROW_W: the same with qw = the block's imatrix weights. */
#define ROW(NAME, BLOCK, QK, STMT)                                                             \
    static void NAME(const float *x, void *dst, int64_t n)                                     \
    {                                                                                          \
        uint8_t *out = dst;                                                                    \
        for (int64_t b = 0; b < n / (QK); ++b) {                                               \
            const float *xb = x + b * (QK);                                                    \
            BLOCK blk;                                                                         \
            STMT;                                                                              \
            memcpy(out + b * sizeof blk, &blk, sizeof blk);                                    \
        }                                                                                      \
    }

#define ROW_W(NAME, BLOCK, QK, STMT)                                                           \
    static void NAME(const float *x, void *dst, int64_t n, const float *imatrix)               \
    {                                                                                          \
        uint8_t *out = dst;                                                                    \
        for (int64_t b = 0; b < n / (QK); ++b) {                                               \
            const float *xb = x + b * (QK), *qw = imatrix + b * (QK);                          \
            BLOCK blk;                                                                         \
            STMT;                                                                              \
            memcpy(out + b * sizeof blk, &blk, sizeof blk);                                    \
        }                                                                                      \
    }

/* Legacy importance path: each value weighs qw * sqrt(sigma2 + x^2), sigma2 over the row. */
#define LEGACY_W(NAME, BLOCK, FN)                                                              \
    static void NAME(const float *x, void *dst, int64_t n, const float *imatrix)               \
    {                                                                                          \
        uint8_t *out = dst;                                                                    \
        const float sigma2 = lq_sum_sq(n, x) / n;                                              \
        float w[LQ_QK];                                                                        \
        for (int64_t b = 0; b < n / LQ_QK; ++b) {                                              \
            const float *xb = x + b * LQ_QK;                                                   \
            BLOCK blk;                                                                         \
            lq_imat_weights(LQ_QK, xb, imatrix + b * LQ_QK, sigma2, w);                        \
            FN(xb, w, &blk);                                                                   \
            memcpy(out + b * sizeof blk, &blk, sizeof blk);                                    \
        }                                                                                      \
    }

/* Q4_1/Q5_1 importance path: batches of blocks, so the searches share SIMD lanes. */
#define AFFINE_W(NAME, BLOCK, MULTI)                                                           \
    static void NAME(const float *x, void *dst, int64_t n, const float *imatrix)               \
    {                                                                                          \
        uint8_t *out = dst;                                                                    \
        const int64_t nb = n / LQ_QK;                                                          \
        const float sigma2 = lq_sum_sq(n, x) / n;                                              \
        float w[LQ_AFFINE_BATCH * LQ_QK];                                                      \
        BLOCK blk[LQ_AFFINE_BATCH];                                                            \
        for (int64_t b0 = 0; b0 < nb; b0 += LQ_AFFINE_BATCH) {                                 \
            const int cnt = (int)(nb - b0 < LQ_AFFINE_BATCH ? nb - b0 : LQ_AFFINE_BATCH);      \
            lq_imat_weights(cnt * LQ_QK, x + b0 * LQ_QK, imatrix + b0 * LQ_QK, sigma2, w);     \
            MULTI(cnt, x + b0 * LQ_QK, w, blk);                                                \
            memcpy(out + b0 * sizeof blk[0], blk, (size_t)cnt * sizeof blk[0]);                \
        }                                                                                      \
    }

#define DEQ(NAME, BLOCK, QK, FN)                                                               \
    static void NAME(const void *src, float *y, int64_t n)                                     \
    {                                                                                          \
        const uint8_t *in = src;                                                               \
        for (int64_t b = 0; b < n / (QK); ++b) {                                               \
            BLOCK blk;                                                                         \
            memcpy(&blk, in + b * sizeof blk, sizeof blk);                                     \
            FN(&blk, y + b * (QK));                                                            \
        }                                                                                      \
    }

/* ---- legacy blocks of 32 ---- */
ROW(q4_0_row, lq_block_q4_0, LQ_QK, lq_q4_0_quantize_block(xb, NULL, &blk))
ROW(q4_1_row, lq_block_q4_1, LQ_QK, lq_q4_1_quantize_block(xb, NULL, &blk))
ROW(q5_0_row, lq_block_q5_0, LQ_QK, lq_q5_0_quantize_block(xb, NULL, &blk))
ROW(q5_1_row, lq_block_q5_1, LQ_QK, lq_q5_1_quantize_block(xb, NULL, &blk))
ROW(q8_0_row, lq_block_q8_0, LQ_QK, lq_q8_0_quantize_block(xb, &blk))
ROW(q8_1_row, lq_block_q8_1, LQ_QK, lq_q8_1_quantize_block(xb, &blk))
LEGACY_W(q4_0_row_w, lq_block_q4_0, lq_q4_0_quantize_block)
AFFINE_W(q4_1_row_w, lq_block_q4_1, lq_q4_1_quantize_blocks_imat)
LEGACY_W(q5_0_row_w, lq_block_q5_0, lq_q5_0_quantize_block)
AFFINE_W(q5_1_row_w, lq_block_q5_1, lq_q5_1_quantize_blocks_imat)
DEQ(q4_0_deq, lq_block_q4_0, LQ_QK, lq_q4_0_dequantize_block)
DEQ(q4_1_deq, lq_block_q4_1, LQ_QK, lq_q4_1_dequantize_block)
DEQ(q5_0_deq, lq_block_q5_0, LQ_QK, lq_q5_0_dequantize_block)
DEQ(q5_1_deq, lq_block_q5_1, LQ_QK, lq_q5_1_dequantize_block)
DEQ(q8_0_deq, lq_block_q8_0, LQ_QK, lq_q8_0_dequantize_block)

/* ---- k-quant super-blocks of 256 ---- */
ROW(q2_K_row, lq_block_q2_K, LQ_QK_K, lq_q2_K_quantize_block(xb, NULL, &blk))
ROW(q3_K_row, lq_block_q3_K, LQ_QK_K, lq_q3_K_quantize_block(xb, NULL, &blk))
ROW(q4_K_row, lq_block_q4_K, LQ_QK_K, lq_q4_K_quantize_block(xb, NULL, &blk))
ROW(q5_K_row, lq_block_q5_K, LQ_QK_K, lq_q5_K_quantize_block(xb, NULL, &blk))
ROW(q6_K_row, lq_block_q6_K, LQ_QK_K, lq_q6_K_quantize_block(xb, NULL, &blk))
ROW(q8_K_row, lq_block_q8_K, LQ_QK_K, lq_q8_K_quantize_block(xb, &blk))
ROW_W(q2_K_row_w, lq_block_q2_K, LQ_QK_K, lq_q2_K_quantize_block(xb, qw, &blk))
ROW_W(q3_K_row_w, lq_block_q3_K, LQ_QK_K, lq_q3_K_quantize_block(xb, qw, &blk))
ROW_W(q4_K_row_w, lq_block_q4_K, LQ_QK_K, lq_q4_K_quantize_block(xb, qw, &blk))
ROW_W(q5_K_row_w, lq_block_q5_K, LQ_QK_K, lq_q5_K_quantize_block(xb, qw, &blk))
ROW_W(q6_K_row_w, lq_block_q6_K, LQ_QK_K, lq_q6_K_quantize_block(xb, qw, &blk))
DEQ(q2_K_deq, lq_block_q2_K, LQ_QK_K, lq_q2_K_dequantize_block)
DEQ(q3_K_deq, lq_block_q3_K, LQ_QK_K, lq_q3_K_dequantize_block)
DEQ(q4_K_deq, lq_block_q4_K, LQ_QK_K, lq_q4_K_dequantize_block)
DEQ(q5_K_deq, lq_block_q5_K, LQ_QK_K, lq_q5_K_dequantize_block)
DEQ(q6_K_deq, lq_block_q6_K, LQ_QK_K, lq_q6_K_dequantize_block)
DEQ(q8_K_deq, lq_block_q8_K, LQ_QK_K, lq_q8_K_dequantize_block)

/* ---- IQ4: non-linear grid (lq_iq4.c); plain = llama-quantize without an imatrix ---- */
ROW(iq4_nl_row, lq_block_iq4_nl, LQ_QK, lq_iq4_nl_quantize_block(xb, NULL, &blk))
ROW(iq4_xs_row, lq_block_iq4_xs, LQ_QK_K, lq_iq4_xs_quantize_block(xb, NULL, &blk))
ROW_W(iq4_nl_row_w, lq_block_iq4_nl, LQ_QK, lq_iq4_nl_quantize_block(xb, qw, &blk))
ROW_W(iq4_xs_row_w, lq_block_iq4_xs, LQ_QK_K, lq_iq4_xs_quantize_block(xb, qw, &blk))
DEQ(iq4_nl_deq, lq_block_iq4_nl, LQ_QK, lq_iq4_nl_dequantize_block)
DEQ(iq4_xs_deq, lq_block_iq4_xs, LQ_QK_K, lq_iq4_xs_dequantize_block)

/* ---- the table ----
 * T(id, flags, plain, weighted, dequantize, GPTQ grid, GPTQ sub-block, vec-dot type) */
#define T(id, flags, q, qw, dq, grid, sub, vdt)                                                \
    [id] = {id, &gguf_type_table[id], flags, q, qw, dq, grid, sub, vdt}
#define FLOAT (LQ_TYPE_FLOAT | LQ_TYPE_WRITABLE | LQ_TYPE_KERNEL)
#define W (LQ_TYPE_WRITABLE | LQ_TYPE_KERNEL)
#define ACT LQ_TYPE_ACTIVATION
static const lq_type_traits k_types[GGUF_TYPE_MAX_] = {
    T(GGUF_F32, FLOAT, f32_row, NULL, f32_deq, LQ_GRID_NONE, 0, GGUF_F32),
    T(GGUF_F16, FLOAT, f16_row, NULL, f16_deq, LQ_GRID_NONE, 0, GGUF_F16),
    T(GGUF_BF16, FLOAT, bf16_row, NULL, bf16_deq, LQ_GRID_NONE, 0, GGUF_BF16),
    T(GGUF_Q4_0, W, q4_0_row, q4_0_row_w, q4_0_deq, LQ_GRID_LEGACY, LQ_QK, GGUF_Q8_0),
    T(GGUF_Q4_1, W, q4_1_row, q4_1_row_w, q4_1_deq, LQ_GRID_LEGACY, LQ_QK, GGUF_Q8_1),
    T(GGUF_Q5_0, W, q5_0_row, q5_0_row_w, q5_0_deq, LQ_GRID_LEGACY, LQ_QK, GGUF_Q8_0),
    T(GGUF_Q5_1, W, q5_1_row, q5_1_row_w, q5_1_deq, LQ_GRID_LEGACY, LQ_QK, GGUF_Q8_1),
    /* Q8_0 ignores an imatrix, as llama.cpp does */
    T(GGUF_Q8_0, W, q8_0_row, NULL, q8_0_deq, LQ_GRID_LEGACY, LQ_QK, GGUF_Q8_0),
    T(GGUF_Q8_1, ACT, q8_1_row, NULL, NULL, LQ_GRID_NONE, 0, -1),
    T(GGUF_Q2_K, W, q2_K_row, q2_K_row_w, q2_K_deq, LQ_GRID_KQUANT, 16, GGUF_Q8_K),
    T(GGUF_Q3_K, W, q3_K_row, q3_K_row_w, q3_K_deq, LQ_GRID_KQUANT, 16, GGUF_Q8_K),
    T(GGUF_Q4_K, W, q4_K_row, q4_K_row_w, q4_K_deq, LQ_GRID_KQUANT, 32, GGUF_Q8_K),
    T(GGUF_Q5_K, W, q5_K_row, q5_K_row_w, q5_K_deq, LQ_GRID_KQUANT, 32, GGUF_Q8_K),
    T(GGUF_Q6_K, W, q6_K_row, q6_K_row_w, q6_K_deq, LQ_GRID_KQUANT, 16, GGUF_Q8_K),
    T(GGUF_Q8_K, ACT, q8_K_row, NULL, q8_K_deq, LQ_GRID_NONE, 0, -1),
    /* block math only: not written by the tools, no runtime kernel, no GPTQ grid yet */
    T(GGUF_IQ4_NL, 0, iq4_nl_row, iq4_nl_row_w, iq4_nl_deq, LQ_GRID_NONE, 0, GGUF_Q8_0),
    T(GGUF_IQ4_XS, 0, iq4_xs_row, iq4_xs_row_w, iq4_xs_deq, LQ_GRID_NONE, 0, GGUF_Q8_K),
};
#undef T
#undef FLOAT
#undef W
#undef ACT

const lq_type_traits *lq_type_traits_of(int type)
{
    if (type < 0 || type >= GGUF_TYPE_MAX_ || !k_types[type].gguf)
        return NULL;
    return &k_types[type];
}
