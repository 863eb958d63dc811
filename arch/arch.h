/* arch — one description per model architecture, and the registry that finds them.
 *
 * A description (arch_desc) is data: it states what a model family looks like on both sides of
 * a conversion — the Hugging Face checkpoint (class names, config.json keys, tensor names) and
 * the GGUF file (general.architecture, "{arch}.*" keys, tensor names) — and what qforge's
 * readers need to know beyond names: which tensors may be absent, the shapes the
 * hyper-parameters imply, the Q/K row permutation, the RoPE style, the linear weights of a
 * layer in true-sequential GPTQ groups and the tensor category each tensor has for the mixture
 * rules (libquant/lq_mix.h). The readers are input/checkpoint.c (names, metadata, permutation),
 * runtime/model.c (loading and the forward pass), the GPTQ driver (groups), the quantizer's
 * plan (categories) and qforge-synth (writing checkpoints).
 *
 * Adding an architecture is one file arch/NAME.c that defines a `const arch_desc arch_NAME`,
 * one line in the registry (arch/arch.c) and its tests (tests/test_arch.c checks every
 * description's consistency; see docs/architecture.md).
 *
 * Everything here is constant data and pure functions: no I/O, no allocation, never prints.
 * Descriptions live for the whole program; pointers to them may be kept.
 */
#ifndef QFORGE_ARCH_H
#define QFORGE_ARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "libquant/lq_mix.h" /* lq_mix_category */

/* ---------------------------------------------------------------- hyper-parameters */

/* Caps on sizes read from config.json or GGUF metadata (far above any released model); the
 * key ranges of the descriptions use them. */
#define ARCH_MAX_LAYERS 4096
#define ARCH_MAX_EMBD (1 << 16)
#define ARCH_MAX_FF (1 << 20)
#define ARCH_MAX_HEADS 4096
#define ARCH_MAX_VOCAB (1 << 24)
#define ARCH_MAX_FLOAT 1e30


/* The hyper-parameters qforge knows. Each has one value field in arch_hparams. */
typedef enum {
    ARCH_HP_N_LAYER = 0,     /* block_count */
    ARCH_HP_N_CTX,           /* context_length */
    ARCH_HP_N_EMBD,          /* embedding_length */
    ARCH_HP_N_FF,            /* feed_forward_length */
    ARCH_HP_N_HEAD,          /* attention.head_count */
    ARCH_HP_N_HEAD_KV,       /* attention.head_count_kv */
    ARCH_HP_ROPE_SCALING_TYPE,   /* rope.scaling.type (a string), written for linear scaling */
    ARCH_HP_ROPE_SCALING_FACTOR, /* rope.scaling.factor */
    ARCH_HP_ROPE_BASE,       /* rope.freq_base */
    ARCH_HP_RMS_EPS,         /* attention.layer_norm_rms_epsilon */
    ARCH_HP_KEY_LENGTH,      /* attention.key_length: the head dimension */
    ARCH_HP_VALUE_LENGTH,    /* attention.value_length: the same head dimension */
    ARCH_HP_FILE_TYPE,       /* general.file_type: marks where the converter writes it */
    ARCH_HP_N_VOCAB,         /* vocab_size */
    ARCH_HP_ROPE_DIM,        /* rope.dimension_count: the head dimension */
    ARCH_HP_COUNT_
} arch_hp;

typedef enum {
    ARCH_ROPE_SCALING_NONE = 0,
    ARCH_ROPE_SCALING_LINEAR = 1, /* positions divided by factor: rope.scaling.{type,factor} */
    ARCH_ROPE_SCALING_LLAMA3 = 2, /* per-frequency factors: the computed rope_freqs.weight */
} arch_rope_scaling_type;

typedef struct {
    arch_rope_scaling_type type;
    double factor;                 /* linear, llama3 */
    double low_freq_factor;        /* llama3 */
    double high_freq_factor;       /* llama3 */
    int64_t original_ctx;          /* llama3: original_max_position_embeddings */
} arch_rope_scaling;

/* Values of the hyper-parameters (from config.json or from GGUF metadata). */
typedef struct {
    int64_t n_layer, n_ctx, n_embd, n_ff, n_head, n_head_kv;
    int64_t head_dim;       /* per head, for Q, K and V */
    int64_t n_vocab;
    double rope_base, rms_eps;
    bool head_dim_given;    /* stated (config.json head_dim / GGUF key_length), not implied */
    bool tied;              /* config.json tie_word_embeddings */
    arch_rope_scaling rope_scaling;
} arch_hparams;

typedef enum { ARCH_KV_U32 = 0, ARCH_KV_F32, ARCH_KV_STR } arch_kv_type;

/* arch_key.flags */
enum {
    ARCH_KEY_HF_REQUIRED = 1u,   /* config.json must state it (else the class default applies) */
    ARCH_KEY_GGUF_REQUIRED = 2u, /* a GGUF must hold it (else gguf_def applies) */
    ARCH_KEY_IF_GIVEN = 4u,      /* written only when config.json states it (head_dim) */
    ARCH_KEY_INFO_ONLY = 8u,     /* the runtime does not read it as a value (it may check it) */
};

/* One hyper-parameter as a description states it. In a description's list the rows are in the
 * order the converter writes the GGUF keys (ARCH_HP_FILE_TYPE marks general.file_type). */
typedef struct {
    arch_hp id;
    const char *hf;        /* config.json key; NULL: derived from other values (RoPE) */
    const char *gguf;      /* key suffix under "{arch}."; NULL: not written to GGUF */
    arch_kv_type type;
    unsigned flags;        /* ARCH_KEY_* */
    double lo, hi;         /* accepted values, both sides (F32: lo is exclusive when 0) */
    double gguf_def;       /* value when a GGUF lacks the key (and it is not required) */
} arch_key;

/* The value of hyper-parameter id in hp (KEY/VALUE_LENGTH and ROPE_DIM are head_dim;
 * ROPE_SCALING_TYPE is the arch_rope_scaling_type; FILE_TYPE is 0). */
double arch_hp_get(const arch_hparams *hp, arch_hp id);
/* Store v (integer fields take it rounded toward zero). No effect for FILE_TYPE, ROPE_DIM and
 * ROPE_SCALING_TYPE. */
void arch_hp_set(arch_hparams *hp, arch_hp id, double v);
/* Whether the converter writes key k for these values: false for rows without a GGUF suffix,
 * ARCH_KEY_IF_GIVEN rows without head_dim_given, rope.scaling.* rows without linear scaling. */
bool arch_key_written(const arch_key *k, const arch_hparams *hp);

/* ---------------------------------------------------------------- tensors */

/* A tensor's part in the graph; the runtime maps each role to what it computes with. */
typedef enum {
    ARCH_ROLE_TOKEN_EMBD = 0,
    ARCH_ROLE_OUTPUT_NORM,
    ARCH_ROLE_OUTPUT,
    ARCH_ROLE_ROPE_FREQS,
    ARCH_ROLE_ATTN_NORM,
    ARCH_ROLE_ATTN_Q,
    ARCH_ROLE_ATTN_K,
    ARCH_ROLE_ATTN_V,
    ARCH_ROLE_ATTN_Q_BIAS,
    ARCH_ROLE_ATTN_K_BIAS,
    ARCH_ROLE_ATTN_V_BIAS,
    ARCH_ROLE_ATTN_Q_NORM,   /* per-head RMS norm of Q before RoPE */
    ARCH_ROLE_ATTN_K_NORM,
    ARCH_ROLE_ATTN_OUTPUT,
    ARCH_ROLE_FFN_NORM,
    ARCH_ROLE_FFN_GATE,
    ARCH_ROLE_FFN_UP,
    ARCH_ROLE_FFN_DOWN,
    ARCH_ROLE_COUNT_
} arch_role;

/* A size the hyper-parameters imply. */
typedef enum {
    ARCH_DIM_1 = 0,   /* 1 (ne1 of a vector) */
    ARCH_DIM_EMBD,    /* n_embd */
    ARCH_DIM_FF,      /* n_ff */
    ARCH_DIM_VOCAB,   /* n_vocab */
    ARCH_DIM_Q,       /* n_head * head_dim */
    ARCH_DIM_KV,      /* n_head_kv * head_dim */
    ARCH_DIM_HEAD,    /* head_dim */
    ARCH_DIM_ROPE,    /* head_dim / 2 */
} arch_dim;

int64_t arch_dim_value(arch_dim d, const arch_hparams *hp);

/* llama.cpp's LlamaModel.permute of Q/K rows, applied when converting. */
typedef enum {
    ARCH_PERM_NONE = 0,
    ARCH_PERM_Q,   /* groups of n_head */
    ARCH_PERM_K,   /* groups of n_head_kv */
} arch_perm;

/* arch_tensor.flags */
enum {
    ARCH_T_OPTIONAL = 1u, /* may be absent; the graph does without it */
    ARCH_T_TIED = 2u,     /* may be absent; token_embd stands in (tie_word_embeddings) */
    ARCH_T_COMPUTED = 4u, /* not in a checkpoint: the converter computes it (compute) */
};

/* Fills out (ne0 * ne1 floats) for these values; returns false when the tensor is not part of
 * this model (e.g. rope_freqs without llama3 scaling). */
typedef bool (*arch_compute_fn)(const arch_hparams *hp, float *out);

typedef struct {
    arch_role role;
    const char *gguf;      /* GGUF name; a layer tensor's after "blk.N." */
    const char *hf;        /* HF name; a layer tensor's after the layer prefix; NULL if computed */
    arch_dim ne0, ne1;     /* GGUF shape, ne[0] the row length; ne1 ARCH_DIM_1: a vector */
    arch_perm perm;
    lq_mix_category cat;   /* for the mixture rules */
    unsigned flags;        /* ARCH_T_* */
    arch_compute_fn compute; /* ARCH_T_COMPUTED only */
} arch_tensor;

static inline bool arch_tensor_is_matrix(const arch_tensor *t) { return t->ne1 != ARCH_DIM_1; }

/* ---------------------------------------------------------------- GPTQ groups */

/* Where the runtime lets a hook see the input a group of linear weights shares (the values of
 * rt_hook_point, runtime/runtime.h). */
typedef enum {
    ARCH_INPUT_ATTN = 0,  /* RMSNorm'ed hidden state before attention (n_embd columns) */
    ARCH_INPUT_ATTN_OUT,  /* the attention result (n_head * head_dim columns) */
    ARCH_INPUT_FFN,       /* RMSNorm'ed hidden state before the FFN (n_embd columns) */
    ARCH_INPUT_FFN_DOWN,  /* silu(gate) * up (n_ff columns) */
    ARCH_INPUT_COUNT_
} arch_input;

#define ARCH_GROUP_MAX 4

/* The linear weights of a layer that share one input, in the order GPTQ treats them. */
typedef struct {
    arch_input input;
    const char *weights[ARCH_GROUP_MAX + 1]; /* GGUF names after "blk.N.", NULL-terminated */
} arch_group;

/* ---------------------------------------------------------------- descriptions */

typedef enum {
    ARCH_ROPE_NORM = 0, /* rotate adjacent pairs (2i, 2i+1): llama.cpp's NORM mode */
    ARCH_ROPE_NEOX,     /* rotate (i, i + head_dim/2): llama.cpp's NEOX mode */
} arch_rope_style;

/* A config.json boolean the description cannot honour when true ("attention_bias"). */
typedef struct {
    const char *key;
    const char *what;      /* "attention biases" */
} arch_refused;

/* One Hugging Face class of an architecture, with the defaults transformers' config class of
 * that model_type gives for keys config.json leaves out (n_head_kv 0: = n_head; head_dim 0:
 * n_embd / n_head, not given). */
typedef struct {
    const char *name;         /* config.json architectures[0]: "LlamaForCausalLM" */
    const char *model_type;   /* config.json model_type: "llama" */
    arch_hparams defaults;
} arch_hf_class;

typedef struct {
    const char *name;                 /* general.architecture: "llama" */
    const arch_hf_class *classes;     /* the HF classes converted to it */
    size_t n_classes;
    const arch_key *keys;             /* hyper-parameters, in GGUF write order */
    size_t n_keys;
    const char *hf_layer_prefix;      /* "model.layers." (then "N.") */
    const arch_tensor *globals;       /* outside the layers, in HF state_dict order */
    size_t n_globals;
    const arch_tensor *layer;         /* of each layer, in HF state_dict order */
    size_t n_layer;
    const arch_group *groups;         /* true-sequential GPTQ order */
    size_t n_groups;
    const arch_refused *refused;      /* config.json booleans that must not be true */
    size_t n_refused;
    arch_rope_style rope;
    unsigned rope_scaling;            /* bit (1 << arch_rope_scaling_type) per type supported */
    bool vocab_add_prefix_space;      /* the converter copies tokenizer_config's add_prefix_space */
} arch_desc;

/* ---------------------------------------------------------------- registry and look-ups */

size_t arch_count(void);
const arch_desc *arch_at(size_t i);                      /* NULL when i >= arch_count() */
const arch_desc *arch_find(const char *gguf_name);       /* by general.architecture; NULL if none */
/* By config.json class name; *cls (if not NULL) is set to the class. NULL if none. */
const arch_desc *arch_find_hf(const char *hf_class, const arch_hf_class **cls);
/* For messages: "llama, qwen2, ..." (every registered GGUF name) or, with hf, every HF class
 * name, into out[n] (cut when it does not fit). */
void arch_list_names(bool hf, char *out, size_t n);

/* The tensor a GGUF name denotes: *layer = N for "blk.N.<suffix>" (-1 for globals). NULL when
 * the description has no such tensor or N is not a plain decimal. */
const arch_tensor *arch_tensor_find(const arch_desc *d, const char *gguf_name, int *layer);
/* The tensor a checkpoint's tensor name denotes (*layer as above). NULL when unknown. */
const arch_tensor *arch_tensor_find_hf(const arch_desc *d, const char *hf_name, int *layer);
/* The first tensor with this role (global or per-layer), NULL if none. */
const arch_tensor *arch_tensor_by_role(const arch_desc *d, arch_role role);
bool arch_tensor_is_layer(const arch_desc *d, const arch_tensor *t);
/* Full names into out[n]: "blk.3.attn_q.weight" / "model.layers.3.self_attn.q_proj.weight"
 * (layer ignored for globals). False when out is too small or the tensor has no HF name. */
bool arch_tensor_name(const arch_desc *d, const arch_tensor *t, int layer, char *out, size_t n);
bool arch_tensor_hf_name(const arch_desc *d, const arch_tensor *t, int layer, char *out, size_t n);

/* Mixture category and layer of a GGUF tensor name for lq_mix_tensor: LQ_CAT_NONE and -1 when
 * the description does not know the name (the plan then falls back to the name). */
lq_mix_category arch_mix_category(const arch_desc *d, const char *gguf_name, int *layer);

/* Tensors the converter skips in every checkpoint (rotary inv_freq buffers and the like). */
bool arch_hf_ignored(const char *hf_name);

/* llama.cpp's Llama 3 RoPE frequency factors (rope_freqs.weight, head_dim/2 floats), computed
 * in single precision as its converter does. False without llama3 scaling. */
bool arch_rope_freqs_llama3(const arch_hparams *hp, float *out);

#endif
