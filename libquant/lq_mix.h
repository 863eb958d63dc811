/* libquant mixtures — which tensor type each tensor of a model gets for a named file type
 * (Q4_K_M, Q8_0, ...), reproducing llama-quantize's choice tensor by tensor
 * (llama.cpp src/llama-quant.cpp; the rules are tabulated in docs/mixtures.md).
 *
 * Works on names and shapes only: no I/O, no tensor data, never prints.
 *
 * Usage:
 *   1. sort the tensors into llama-quantize's order with lq_mix_sort() (the per-layer counters
 *      behind attn_v/ffn_down choices follow that order);
 *   2. optional overrides: lq_mix_overrides_create() + lq_mix_overrides_add("REGEX=TYPE");
 *   3. lq_mix_plan() fills one lq_mix_choice per tensor.
 */
#ifndef QFORGE_LQ_MIX_H
#define QFORGE_LQ_MIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "libquant/lq.h"

/* llama.cpp's LLAMA_FTYPE_* ids: the value of general.file_type. */
typedef enum {
    LQ_FTYPE_ALL_F32 = 0,
    LQ_FTYPE_MOSTLY_F16 = 1,
    LQ_FTYPE_MOSTLY_Q4_0 = 2,
    LQ_FTYPE_MOSTLY_Q4_1 = 3,
    LQ_FTYPE_MOSTLY_Q8_0 = 7,
    LQ_FTYPE_MOSTLY_Q5_0 = 8,
    LQ_FTYPE_MOSTLY_Q5_1 = 9,
    LQ_FTYPE_MOSTLY_Q2_K = 10,
    LQ_FTYPE_MOSTLY_Q3_K_S = 11,
    LQ_FTYPE_MOSTLY_Q3_K_M = 12,
    LQ_FTYPE_MOSTLY_Q3_K_L = 13,
    LQ_FTYPE_MOSTLY_Q4_K_S = 14,
    LQ_FTYPE_MOSTLY_Q4_K_M = 15,
    LQ_FTYPE_MOSTLY_Q5_K_S = 16,
    LQ_FTYPE_MOSTLY_Q5_K_M = 17,
    LQ_FTYPE_MOSTLY_Q6_K = 18,
    LQ_FTYPE_MOSTLY_BF16 = 32
} lq_ftype;

/* File type from a name as llama-quantize accepts it: "Q4_K_M", "q8_0", the aliases "Q3_K",
 * "Q4_K", "Q5_K" (the _M mixtures), or the numeric id ("15"). -1 if unknown. */
int lq_ftype_from_name(const char *name);
/* Canonical name ("Q4_K_M", "F16", ...), or NULL for an id qforge does not support. */
const char *lq_ftype_name(int ftype);
/* The base tensor type of a file type (Q4_K for Q4_K_M, F16 for F16, ...); -1 if unknown. */
int lq_ftype_default_type(int ftype);

/* True for the tensor types a plan may name (and libquant writes): f32 f16 bf16 q4_0 q4_1
 * q5_0 q5_1 q8_0 q2_K q3_K q4_K q5_K q6_K. */
bool lq_mix_type_ok(int type);

/* Model facts some rules depend on. */
typedef struct {
    const char *arch; /* general.architecture; "falcon" has its own rules, 80-layer "llama" (GQA)
                         and "qwen2" models are llama.cpp's 70B type; NULL = "llama" */
    int n_layer;      /* {arch}.block_count */
    int n_head;       /* {arch}.attention.head_count (0 if unknown) */
    int n_head_kv;    /* {arch}.attention.head_count_kv (0 if unknown: taken as n_head) */
    int n_expert;     /* {arch}.expert_count; 0 or 1 for dense models */
} lq_mix_model;

/* What a tensor is to the mixture rules (llama.cpp's tensor_category). The caller states it
 * from the model's architecture description (arch/arch.h); LQ_CAT_NONE lets the plan work it
 * out from the GGUF name as llama-quantize does. */
typedef enum {
    LQ_CAT_NONE = 0,   /* not given: from the name */
    LQ_CAT_TOKEN_EMBD,
    LQ_CAT_ATTN_Q,
    LQ_CAT_ATTN_K,
    LQ_CAT_ATTN_V,
    LQ_CAT_ATTN_QKV,
    LQ_CAT_ATTN_KV_B,
    LQ_CAT_ATTN_OUTPUT,
    LQ_CAT_FFN_UP,
    LQ_CAT_FFN_GATE,
    LQ_CAT_FFN_DOWN,
    LQ_CAT_OUTPUT,
    LQ_CAT_OTHER,      /* norms, biases, RoPE factors, ... */
    LQ_CAT_COUNT_
} lq_mix_category;

/* The category llama-quantize gives a GGUF tensor name (never LQ_CAT_NONE). */
lq_mix_category lq_mix_category_of_name(const char *name);
/* "attn_v", "ffn_down", ... ("none" for LQ_CAT_NONE, NULL when out of range). */
const char *lq_mix_category_name(lq_mix_category c);

/* One tensor as the plan sees it. type = the type it is stored in (kept when the tensor is
 * not quantized, e.g. norms); for a checkpoint pass GGUF_F32, as converting with
 * --outtype f32 would store it. A zeroed struct plus name, shape and type is a valid tensor
 * (category and layer then come from the name). */
typedef struct {
    const char *name;
    uint32_t n_dims;
    int64_t ne[4]; /* unused dimensions are 1 */
    int type;
    lq_mix_category category; /* LQ_CAT_NONE: from the name */
    int layer;                /* with a category: the block index, -1 outside the blocks */
} lq_mix_tensor;

/* --tensor-type REGEX=TYPE rules, tried in the order added; the first whose POSIX extended
 * regex matches anywhere in the tensor name wins (the pattern is lower-cased first, as
 * llama-quantize does). Opaque; the list owns its compiled regexes. */
typedef struct lq_mix_overrides lq_mix_overrides;

lq_mix_overrides *lq_mix_overrides_create(void); /* NULL on out of memory */
void lq_mix_overrides_free(lq_mix_overrides *o);
/* Parse and compile "REGEX=TYPE" (TYPE a tensor type name such as q8_0, q4_K, f16).
 * LQ_ERR_ARG with a message on a malformed spec, a bad regex or an unknown type. */
lq_error lq_mix_overrides_add(lq_mix_overrides *o, const char *spec, char *msg);
size_t lq_mix_overrides_count(const lq_mix_overrides *o);

typedef struct {
    bool pure;                 /* --pure: no mixture rules, the base type everywhere */
    bool leave_output;         /* --leave-output-tensor: output.weight keeps its type */
    bool has_imatrix;          /* an importance matrix is given (some rules depend on it) */
    int output_tensor_type;    /* --output-tensor-type; -1 = by the rules */
    int token_embedding_type;  /* --token-embedding-type; -1 = by the rules */
    const lq_mix_overrides *overrides; /* --tensor-type rules; NULL = none (borrowed) */
} lq_mix_params;

/* Defaults: nothing forced (types -1, flags false, no overrides). */
lq_mix_params lq_mix_params_default(void);

typedef struct {
    int type;           /* the tensor type to write */
    bool quantize;      /* false: llama-quantize leaves this tensor alone (type = input type) */
    bool manual;        /* chosen by a --tensor-type rule or an explicit output/embedding type */
    bool fallback;      /* the wanted type did not fit ne[0]; a fallback type was taken */
    int wanted;         /* the type before the fallback (== type unless fallback) */
} lq_mix_choice;

/* Choose a type for each of n tensors (given in llama-quantize's order, see lq_mix_sort).
 * Errors: LQ_ERR_ARG (unknown ftype, bad arguments), LQ_ERR_SHAPE (no type fits a tensor's
 * row length, e.g. an explicit type whose block does not divide ne[0]), LQ_ERR_TYPE (a type
 * libquant cannot write). The message names the tensor. */
lq_error lq_mix_plan(int ftype, const lq_mix_model *model, const lq_mix_tensor *tensors, size_t n,
                     const lq_mix_params *params, lq_mix_choice *out, char *msg);

/* llama.cpp's tensor order (weight_name_comparer): tensors outside blocks first, then block
 * by block ("blk.N."), by name (strcmp) within each group. <0, 0, >0 like strcmp. */
int lq_mix_name_cmp(const char *a, const char *b);
/* Fill order[0..n) with the indices of names in that order (stable). LQ_ERR_NOMEM possible. */
lq_error lq_mix_sort(const char *const *names, size_t n, size_t *order);

/* Rule helpers, exposed for tests and docs. */
bool lq_mix_use_more_bits(int i_layer, int n_layer);
/* Would llama-quantize quantize a tensor of this name and shape at all? */
bool lq_mix_allows_quantization(const char *name, uint32_t n_dims, const int64_t *ne,
                                bool leave_output);

#endif
