/* Row-level dispatch by GGUF type id, the OpenMP row driver, sizes and error strings.
 * Blocks are built in aligned locals and copied to the caller's buffer, so row buffers
 * need no particular alignment. */
#include <omp.h>
#include <stdio.h>

#include "libquant/lq_internal.h"

typedef struct {
    int type;
    uint32_t block_size;
    uint32_t type_size;
} type_info;

static const type_info k_types[] = {
    {GGUF_F32, 1, 4},
    {GGUF_F16, 1, 2},
    {GGUF_BF16, 1, 2},
    {GGUF_Q4_0, LQ_QK, sizeof(lq_block_q4_0)},
    {GGUF_Q4_1, LQ_QK, sizeof(lq_block_q4_1)},
    {GGUF_Q5_0, LQ_QK, sizeof(lq_block_q5_0)},
    {GGUF_Q5_1, LQ_QK, sizeof(lq_block_q5_1)},
    {GGUF_Q8_0, LQ_QK, sizeof(lq_block_q8_0)},
    {GGUF_Q8_1, LQ_QK, sizeof(lq_block_q8_1)},
    {GGUF_Q2_K, LQ_QK_K, sizeof(lq_block_q2_K)},
    {GGUF_Q3_K, LQ_QK_K, sizeof(lq_block_q3_K)},
    {GGUF_Q4_K, LQ_QK_K, sizeof(lq_block_q4_K)},
    {GGUF_Q5_K, LQ_QK_K, sizeof(lq_block_q5_K)},
    {GGUF_Q6_K, LQ_QK_K, sizeof(lq_block_q6_K)},
    {GGUF_Q8_K, LQ_QK_K, sizeof(lq_block_q8_K)},
};

static const type_info *find_type(int type)
{
    for (size_t i = 0; i < sizeof k_types / sizeof k_types[0]; ++i)
        if (k_types[i].type == type)
            return &k_types[i];
    return NULL;
}

int64_t lq_block_size(int type)
{
    const type_info *t = find_type(type);
    return t ? t->block_size : 0;
}

size_t lq_row_size(int type, int64_t n)
{
    const type_info *t = find_type(type);
    if (!t || n <= 0 || n % t->block_size)
        return 0;
    const uint64_t blocks = (uint64_t)n / t->block_size;
    if (blocks > SIZE_MAX / t->type_size)
        return 0;
    return (size_t)blocks * t->type_size;
}

int lq_can_quantize(int type)
{
    switch (type) {
    case GGUF_F32: case GGUF_F16: case GGUF_BF16:
    case GGUF_Q4_0: case GGUF_Q4_1: case GGUF_Q5_0: case GGUF_Q5_1: case GGUF_Q8_0:
    case GGUF_Q2_K: case GGUF_Q3_K: case GGUF_Q4_K: case GGUF_Q5_K: case GGUF_Q6_K:
        return 1;
    default:
        return 0;
    }
}

const char *lq_strerror(lq_error e)
{
    switch (e) {
    case LQ_OK: return "success";
    case LQ_ERR_TYPE: return "tensor type not supported by libquant";
    case LQ_ERR_SHAPE: return "row length is not a multiple of the block size";
    case LQ_ERR_NOMEM: return "out of memory";
    case LQ_ERR_NUMERIC: return "numerical failure";
    case LQ_ERR_ARG: return "invalid argument";
    default: return "unknown libquant error";
    }
}

/* Legacy blocks: the importance path weighs by qw * sqrt(sigma2 + x^2), sigma2 over the row. */
#define LEGACY_ROW(BLOCK, FN)                                                                \
    do {                                                                                     \
        float sigma2 = 0, w[LQ_QK];                                                          \
        if (imatrix)                                                                         \
            sigma2 = lq_sum_sq(n, x) / n;                                                    \
        for (int64_t b = 0; b < nb; ++b) {                                                   \
            BLOCK blk;                                                                       \
            const float *xb = x + b * LQ_QK;                                                 \
            if (imatrix)                                                                     \
                lq_imat_weights(LQ_QK, xb, imatrix + b * LQ_QK, sigma2, w);                  \
            FN(xb, imatrix ? w : NULL, &blk);                                                \
            memcpy(out + b * sizeof blk, &blk, sizeof blk);                                  \
        }                                                                                    \
    } while (0)

/* Q4_1/Q5_1 importance path: batches of blocks so the searches share SIMD lanes. */
#define AFFINE_LEGACY_ROW(BLOCK, FN, MULTI)                                                  \
    do {                                                                                     \
        if (!imatrix) {                                                                      \
            LEGACY_ROW(BLOCK, FN);                                                           \
            break;                                                                           \
        }                                                                                    \
        const float sigma2 = lq_sum_sq(n, x) / n;                                            \
        float w[LQ_AFFINE_BATCH * LQ_QK];                                                    \
        BLOCK blk[LQ_AFFINE_BATCH];                                                          \
        for (int64_t b0 = 0; b0 < nb; b0 += LQ_AFFINE_BATCH) {                               \
            const int cnt = (int)(nb - b0 < LQ_AFFINE_BATCH ? nb - b0 : LQ_AFFINE_BATCH);    \
            lq_imat_weights(cnt * LQ_QK, x + b0 * LQ_QK, imatrix + b0 * LQ_QK, sigma2, w);   \
            MULTI(cnt, x + b0 * LQ_QK, w, blk);                                              \
            memcpy(out + b0 * sizeof blk[0], blk, (size_t)cnt * sizeof blk[0]);              \
        }                                                                                    \
    } while (0)

#define KQUANT_ROW(BLOCK, FN)                                                                \
    do {                                                                                     \
        for (int64_t b = 0; b < nb; ++b) {                                                   \
            BLOCK blk;                                                                       \
            FN(x + b * LQ_QK_K, imatrix ? imatrix + b * LQ_QK_K : NULL, &blk);               \
            memcpy(out + b * sizeof blk, &blk, sizeof blk);                                  \
        }                                                                                    \
    } while (0)

#define PLAIN_ROW(BLOCK, FN, QK)                                                             \
    do {                                                                                     \
        for (int64_t b = 0; b < nb; ++b) {                                                   \
            BLOCK blk;                                                                       \
            FN(x + b * (QK), &blk);                                                          \
            memcpy(out + b * sizeof blk, &blk, sizeof blk);                                  \
        }                                                                                    \
    } while (0)

size_t lq_quantize_row(int type, const float *x, void *dst, int64_t n, const float *imatrix)
{
    const size_t size = lq_row_size(type, n);
    if (!size || !x || !dst)
        return 0;
    uint8_t *out = dst;
    const int64_t nb = n / lq_block_size(type);
    switch (type) {
    case GGUF_F32:
        memcpy(dst, x, size);
        break;
    case GGUF_F16:
    case GGUF_BF16:
        for (int64_t i = 0; i < n; ++i) {
            const uint16_t h = type == GGUF_F16 ? lq_f32_to_f16(x[i]) : lq_f32_to_bf16(x[i]);
            memcpy(out + 2 * i, &h, 2);
        }
        break;
    case GGUF_Q4_0: LEGACY_ROW(lq_block_q4_0, lq_q4_0_quantize_block); break;
    case GGUF_Q4_1: AFFINE_LEGACY_ROW(lq_block_q4_1, lq_q4_1_quantize_block, lq_q4_1_quantize_blocks_imat); break;
    case GGUF_Q5_0: LEGACY_ROW(lq_block_q5_0, lq_q5_0_quantize_block); break;
    case GGUF_Q5_1: AFFINE_LEGACY_ROW(lq_block_q5_1, lq_q5_1_quantize_block, lq_q5_1_quantize_blocks_imat); break;
    case GGUF_Q8_0: PLAIN_ROW(lq_block_q8_0, lq_q8_0_quantize_block, LQ_QK); break; /* no imatrix use */
    case GGUF_Q8_1: PLAIN_ROW(lq_block_q8_1, lq_q8_1_quantize_block, LQ_QK); break;
    case GGUF_Q2_K: KQUANT_ROW(lq_block_q2_K, lq_q2_K_quantize_block); break;
    case GGUF_Q3_K: KQUANT_ROW(lq_block_q3_K, lq_q3_K_quantize_block); break;
    case GGUF_Q4_K: KQUANT_ROW(lq_block_q4_K, lq_q4_K_quantize_block); break;
    case GGUF_Q5_K: KQUANT_ROW(lq_block_q5_K, lq_q5_K_quantize_block); break;
    case GGUF_Q6_K: KQUANT_ROW(lq_block_q6_K, lq_q6_K_quantize_block); break;
    case GGUF_Q8_K: PLAIN_ROW(lq_block_q8_K, lq_q8_K_quantize_block, LQ_QK_K); break;
    default:
        return 0;
    }
    return size;
}

#define DEQ_ROW(BLOCK, FN, QK)                                                               \
    do {                                                                                     \
        for (int64_t b = 0; b < nb; ++b) {                                                   \
            BLOCK blk;                                                                       \
            memcpy(&blk, in + b * sizeof blk, sizeof blk);                                   \
            FN(&blk, y + b * (QK));                                                          \
        }                                                                                    \
    } while (0)

int lq_dequantize_row(int type, const void *src, float *y, int64_t n)
{
    if (!lq_row_size(type, n) || !src || !y)
        return -1;
    const uint8_t *in = src;
    const int64_t nb = n / lq_block_size(type);
    switch (type) {
    case GGUF_F32:
        memcpy(y, src, (size_t)n * sizeof(float));
        break;
    case GGUF_F16:
    case GGUF_BF16:
        for (int64_t i = 0; i < n; ++i) {
            uint16_t h;
            memcpy(&h, in + 2 * i, 2);
            y[i] = type == GGUF_F16 ? lq_f16_to_f32(h) : lq_bf16_to_f32(h);
        }
        break;
    case GGUF_Q4_0: DEQ_ROW(lq_block_q4_0, lq_q4_0_dequantize_block, LQ_QK); break;
    case GGUF_Q4_1: DEQ_ROW(lq_block_q4_1, lq_q4_1_dequantize_block, LQ_QK); break;
    case GGUF_Q5_0: DEQ_ROW(lq_block_q5_0, lq_q5_0_dequantize_block, LQ_QK); break;
    case GGUF_Q5_1: DEQ_ROW(lq_block_q5_1, lq_q5_1_dequantize_block, LQ_QK); break;
    case GGUF_Q8_0: DEQ_ROW(lq_block_q8_0, lq_q8_0_dequantize_block, LQ_QK); break;
    case GGUF_Q2_K: DEQ_ROW(lq_block_q2_K, lq_q2_K_dequantize_block, LQ_QK_K); break;
    case GGUF_Q3_K: DEQ_ROW(lq_block_q3_K, lq_q3_K_dequantize_block, LQ_QK_K); break;
    case GGUF_Q4_K: DEQ_ROW(lq_block_q4_K, lq_q4_K_dequantize_block, LQ_QK_K); break;
    case GGUF_Q5_K: DEQ_ROW(lq_block_q5_K, lq_q5_K_dequantize_block, LQ_QK_K); break;
    case GGUF_Q6_K: DEQ_ROW(lq_block_q6_K, lq_q6_K_dequantize_block, LQ_QK_K); break;
    case GGUF_Q8_K: DEQ_ROW(lq_block_q8_K, lq_q8_K_dequantize_block, LQ_QK_K); break;
    default: /* Q8_1 is an activation format without a decoder here */
        return -1;
    }
    return 0;
}

static lq_error fail(char *msg, lq_error e, const char *what)
{
    if (msg)
        snprintf(msg, LQ_MSG_SIZE, "%s", what);
    return e;
}

lq_error lq_quantize_rows(int type, const float *x, void *dst, int64_t nrows, int64_t ncols,
                          const float *imatrix, int nthreads, char *msg)
{
    if (!lq_can_quantize(type)) {
        if (msg)
            snprintf(msg, LQ_MSG_SIZE, "tensor type %d cannot be quantized by libquant", type);
        return LQ_ERR_TYPE;
    }
    if (nrows < 0 || ncols <= 0)
        return fail(msg, LQ_ERR_ARG, "row count must be >= 0 and column count > 0");
    const size_t row_size = lq_row_size(type, ncols);
    if (!row_size) {
        if (msg)
            snprintf(msg, LQ_MSG_SIZE, "%lld columns is not a multiple of the block size %lld",
                     (long long)ncols, (long long)lq_block_size(type));
        return LQ_ERR_SHAPE;
    }
    if (nrows == 0)
        return LQ_OK;
    if (!x || !dst)
        return fail(msg, LQ_ERR_ARG, "NULL input or output buffer");
    if ((uint64_t)nrows > SIZE_MAX / row_size || (uint64_t)ncols > SIZE_MAX / (uint64_t)nrows)
        return fail(msg, LQ_ERR_ARG, "tensor too large");

    const int nt = nthreads > 0 ? nthreads : omp_get_max_threads();
    uint8_t *out = dst;
    /* rows are independent, so the bytes do not depend on the thread count */
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && nrows > 1)
    for (int64_t r = 0; r < nrows; ++r)
        lq_quantize_row(type, x + r * ncols, out + (size_t)r * row_size, ncols, imatrix);
    return LQ_OK;
}
