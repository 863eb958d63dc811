/* libquant — GGUF block formats and the math that fills them. No file I/O, never prints.
 *
 * Types are the GGUF tensor type ids of libgguf/gguf.h (GGUF_Q4_0, GGUF_Q4_K, ...).
 * Every quantizer reproduces llama.cpp's (ggml-quants.c) bytes exactly:
 *   - plain (imatrix == NULL): the reference round-to-nearest quantizer llama.cpp uses when no
 *     importance matrix is given;
 *   - importance-weighted (imatrix = one weight per column): llama.cpp's weighted search.
 * Block layouts are in libquant/lq_blocks.h.
 *
 * Ownership: callers own every buffer; nothing here allocates memory that outlives a call.
 */
#ifndef QFORGE_LQ_H
#define QFORGE_LQ_H

#include <stddef.h>
#include <stdint.h>

#include "common/qf_half.h"
#include "libgguf/gguf.h"
#include "libquant/lq_types.h"

#define LQ_MSG_SIZE 256

typedef enum {
    LQ_OK = 0,
    LQ_ERR_TYPE,      /* type cannot be quantized/dequantized here */
    LQ_ERR_SHAPE,     /* row length not a multiple of the block size */
    LQ_ERR_NOMEM,
    LQ_ERR_NUMERIC,   /* e.g. Cholesky failed after every damping retry */
    LQ_ERR_ARG,
    LQ_ERR_COUNT_
} lq_error;

const char *lq_strerror(lq_error e);

/* ---- half precision: aliases of the one codec, common/qf_half.h (kept for existing callers;
 * new code calls qf_* directly) ---- */
static inline uint16_t lq_f32_to_f16(float f) { return qf_f32_to_f16(f); }
static inline float lq_f16_to_f32(uint16_t h) { return qf_f16_to_f32(h); }
static inline uint16_t lq_f32_to_bf16(float f) { return qf_f32_to_bf16(f); }
static inline float lq_bf16_to_f32(uint16_t h) { return qf_bf16_to_f32(h); }
static inline void lq_f32_to_f16_row(const float *x, uint16_t *y, size_t n) { qf_f32_to_f16_row(x, y, n); }
static inline void lq_f16_to_f32_row(const uint16_t *x, float *y, size_t n) { qf_f16_to_f32_row(x, y, n); }
static inline void lq_f32_to_bf16_row(const float *x, uint16_t *y, size_t n) { qf_f32_to_bf16_row(x, y, n); }
static inline void lq_bf16_to_f32_row(const uint16_t *x, float *y, size_t n) { qf_bf16_to_f32_row(x, y, n); }

/* ---- what libquant supports: answered by the type table (libquant/lq_types.h) ---- */

/* True if libquant writes this type (the table's LQ_TYPE_WRITABLE: F32, F16, BF16,
 * Q4_0 ... Q6_K). */
int lq_can_quantize(int type);

/* Sizes of the table's types (libgguf's figures). lq_block_size: elements per block, 0 for a
 * type not in the table. lq_row_size: bytes of n elements; 0 if the type is not in the table,
 * n <= 0 or n is not a multiple of the block size. */
int64_t lq_block_size(int type);
size_t lq_row_size(int type, int64_t n);

/* Quantize one row of n floats (n a multiple of the block size) into dst; imatrix (n weights,
 * one per column) or NULL. Returns bytes written (gguf_row_size), 0 on bad type/shape.
 * Any type with a quantizer in the table: F32/F16/BF16 are plain conversions; types without a
 * weighted quantizer (Q8_0, as llama.cpp) ignore imatrix; the activation formats Q8_1 and Q8_K
 * round as ggml's reference does; IQ4_NL/IQ4_XS (not yet written by the tools) as
 * llama-quantize. dst needs no alignment. */
size_t lq_quantize_row(int type, const float *x, void *dst, int64_t n, const float *imatrix);
/* Decode one row of n elements of any type with a decoder in the table (every type qforge
 * writes, Q8_K, IQ4_NL and IQ4_XS) into floats, bit-exact with ggml's to_float. Returns 0, or -1 on bad
 * type/shape/NULL. */
int lq_dequantize_row(int type, const void *src, float *y, int64_t n);

/* Row-parallel driver (OpenMP, nthreads <= 0: all cores). Output is identical whatever the
 * thread count. x is nrows*ncols floats, dst nrows*gguf_row_size(type, ncols) bytes. */
lq_error lq_quantize_rows(int type, const float *x, void *dst, int64_t nrows, int64_t ncols,
                          const float *imatrix, int nthreads, char *msg);

#endif
