/* Row-level dispatch through the type table, the OpenMP row driver, sizes and error strings. */
#include <omp.h>
#include <stdarg.h>

#include "libquant/lq_internal.h"
#include "libquant/lq_types.h"

lq_error lq_fail_(char *msg, lq_error e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    qf_msg_vformat(msg, LQ_MSG_SIZE, NULL, fmt, ap);
    va_end(ap);
    return e;
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

int64_t lq_block_size(int type)
{
    const lq_type_traits *t = lq_type_traits_of(type);
    return t ? (int64_t)t->gguf->block_size : 0;
}

size_t lq_row_size(int type, int64_t n)
{
    return lq_type_traits_of(type) ? gguf_row_size(type, n) : 0;
}

int lq_can_quantize(int type)
{
    const lq_type_traits *t = lq_type_traits_of(type);
    return t && (t->flags & LQ_TYPE_WRITABLE);
}

size_t lq_quantize_row(int type, const float *x, void *dst, int64_t n, const float *imatrix)
{
    const lq_type_traits *t = lq_type_traits_of(type);
    const size_t size = lq_row_size(type, n);
    if (!t || !t->quantize || !size || !x || !dst)
        return 0;
    if (imatrix && t->quantize_weighted)
        t->quantize_weighted(x, dst, n, imatrix);
    else
        t->quantize(x, dst, n);
    return size;
}

int lq_dequantize_row(int type, const void *src, float *y, int64_t n)
{
    const lq_type_traits *t = lq_type_traits_of(type);
    if (!t || !t->dequantize || !lq_row_size(type, n) || !src || !y)
        return -1;
    t->dequantize(src, y, n);
    return 0;
}

lq_error lq_quantize_rows(int type, const float *x, void *dst, int64_t nrows, int64_t ncols,
                          const float *imatrix, int nthreads, char *msg)
{
    LQ_FAIL_IF(!lq_can_quantize(type), msg, LQ_ERR_TYPE, "tensor type %d cannot be quantized by libquant",
               type);
    LQ_FAIL_IF(nrows < 0 || ncols <= 0, msg, LQ_ERR_ARG, "row count must be >= 0 and column count > 0");
    const size_t row_size = lq_row_size(type, ncols);
    LQ_FAIL_IF(!row_size, msg, LQ_ERR_SHAPE, "%lld columns is not a multiple of the block size %lld",
               (long long)ncols, (long long)lq_block_size(type));
    if (nrows == 0)
        return LQ_OK;
    LQ_FAIL_IF(!x || !dst, msg, LQ_ERR_ARG, "NULL input or output buffer");
    LQ_FAIL_IF((uint64_t)nrows > SIZE_MAX / row_size || (uint64_t)ncols > SIZE_MAX / (uint64_t)nrows, msg,
               LQ_ERR_ARG, "tensor too large");

    const int nt = nthreads > 0 ? nthreads : omp_get_max_threads();
    uint8_t *out = dst;
    /* rows are independent, so the bytes do not depend on the thread count */
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && nrows > 1)
    for (int64_t r = 0; r < nrows; ++r)
        lq_quantize_row(type, x + r * ncols, out + (size_t)r * row_size, ncols, imatrix);
    return LQ_OK;
}
