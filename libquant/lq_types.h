/* libquant — the type table: one entry per GGML type qforge handles, the one place that
 * says what each type is and what can be done with it.
 *
 * Name, block size and bytes per block are the container's (libgguf's gguf_type_table; an
 * entry points at its row there). The entry adds the block math (row quantizers and the
 * decoder), what the GPTQ solver can do with the type, the activation (vec-dot) format the
 * runtime multiplies weights of the type with, and flags. Every "is this type supported"
 * question is answered from here: lq_can_quantize, lq_quantize_row / lq_dequantize_row,
 * lq_row_size, the GPTQ solver's lq_gptq_supports, the mixture rules, and the runtime's
 * rt_kernel_supported / rt_vec_dot_type (LQ_TYPE_KERNEL and vec_dot_type).
 *
 * Adding a block type: its id, name and sizes in libgguf (gguf.h enum, gguf_types.c table),
 * its block math in its own libquant file, one entry in lq_types.c (flags 0 until qforge
 * writes it: then LQ_TYPE_WRITABLE, which needs the runtime kernels and LQ_TYPE_KERNEL), and
 * the runtime kernels (runtime/kernels*.c, tests/test_kernels.c's list).
 */
#ifndef QFORGE_LQ_TYPES_H
#define QFORGE_LQ_TYPES_H

#include <stddef.h>
#include <stdint.h>

#include "libgguf/gguf.h"

/* Flags of a type. */
enum {
    LQ_TYPE_FLOAT = 1u << 0,      /* F32/F16/BF16: element-wise conversion, no blocks */
    LQ_TYPE_WRITABLE = 1u << 1,   /* a target of quantize/convert (lq_can_quantize) */
    LQ_TYPE_ACTIVATION = 1u << 2, /* an activation format only (Q8_1, Q8_K): the runtime converts
                                     activations to it; never written as a weight */
    LQ_TYPE_KERNEL = 1u << 3,     /* the runtime multiplies weights of this type (its vec-dot
                                     kernels exist on every path: rt_kernel_supported) */
};

/* The grid the GPTQ solver can round a type's columns on. */
typedef enum {
    LQ_GRID_NONE = 0, /* GPTQ cannot write this type */
    LQ_GRID_LEGACY,   /* blocks of 32 columns, one scale (and min) each: Q4_0 ... Q8_0 */
    LQ_GRID_KQUANT,   /* super-blocks of 256 columns whose header holds sub-block scales */
} lq_grid_kind;

/* One row of n values (n > 0, a multiple of the block size; the dispatcher checks), to or from
 * the type's bytes at dst/src, which need no alignment. */
typedef void (*lq_quantize_fn)(const float *x, void *dst, int64_t n);
/* The same with imatrix: one importance weight per column (n values, never NULL). */
typedef void (*lq_quantize_weighted_fn)(const float *x, void *dst, int64_t n, const float *imatrix);
typedef void (*lq_dequantize_fn)(const void *src, float *y, int64_t n);

typedef struct {
    int type;                               /* GGUF type id (enum gguf_tensor_type) */
    const gguf_type_traits *gguf;           /* name, block_size, block_bytes (libgguf's row) */
    unsigned flags;                         /* LQ_TYPE_* */
    lq_quantize_fn quantize;                /* plain: llama.cpp without an importance matrix */
    lq_quantize_weighted_fn quantize_weighted; /* llama.cpp's importance-weighted search; NULL:
                                               the type ignores an imatrix (floats, Q8_0) */
    lq_dequantize_fn dequantize;            /* bit-exact with ggml's to_float; NULL: none (Q8_1) */
    lq_grid_kind gptq_grid;                 /* LQ_GRID_NONE: lq_gptq cannot write it */
    int gptq_sub;                           /* columns sharing one step/offset in that grid
                                               (32 legacy, 16 or 32 k-quants; 0 with NONE) */
    int vec_dot_type;                       /* GGUF id of the activation format weights of
                                               this type pair with (ggml's vec_dot_type; the
                                               runtime's when LQ_TYPE_KERNEL); -1 for
                                               activation-only types */
} lq_type_traits;

/* The entry of a type, or NULL when libquant does not know it (then nothing here supports
 * it). To list the table, ask for every id below GGUF_TYPE_MAX_. */
const lq_type_traits *lq_type_traits_of(int type);

#endif
