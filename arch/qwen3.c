/* Qwen3 (GGUF "qwen3"): Qwen3ForCausalLM, as llama.cpp's Qwen3Model converts it: per-head RMS
 * norms of Q and K (attn_q_norm / attn_k_norm, head_dim values) applied before NEOX RoPE, a
 * head dimension of its own (config.json head_dim, written as key_length / value_length; 128
 * by default), no Q/K permutation, tied embeddings on the small models. Attention biases
 * (attention_bias true) are refused. */
#include "arch/arch_internal.h"

static const arch_key keys[] = {
    ARCH_KEYS_TEXT_MODEL,
    ARCH_KEY_VOCAB(NULL),
};

static const arch_tensor globals[] = {
    ARCH_ROW_TOKEN_EMBD,
    ARCH_ROW_OUTPUT_NORM,
    ARCH_ROW_OUTPUT,
};

static const arch_tensor layer[] = {
    ARCH_ROW_ATTN_Q(ARCH_PERM_NONE),
    ARCH_ROW_ATTN_K(ARCH_PERM_NONE),
    ARCH_ROW_ATTN_V,
    ARCH_ROW_ATTN_OUTPUT,
    ARCH_ROW_ATTN_Q_NORM,
    ARCH_ROW_ATTN_K_NORM,
    ARCH_ROW_FFN_GATE,
    ARCH_ROW_FFN_UP,
    ARCH_ROW_FFN_DOWN,
    ARCH_ROW_ATTN_NORM,
    ARCH_ROW_FFN_NORM,
};

/* transformers' Qwen3Config defaults (head_dim 128 is stated, so AutoConfig shows it) */
static const arch_hf_class classes[] = {
    {"Qwen3ForCausalLM", "qwen3",
     {.n_ctx = 32768, .n_head_kv = 32, .head_dim = 128, .rope_base = 10000.0, .rms_eps = 1e-6}},
};

static const arch_refused refused[] = {
    {"attention_bias", "attention biases"},
};

const arch_desc arch_qwen3 = {
    .name = "qwen3",
    ARCH_TABLES,
    ARCH_GROUPS_ATTN_SWIGLU,
    ARCH_REFUSED,
    .hf_layer_prefix = "model.layers.",
    .rope = ARCH_ROPE_NEOX,
    .rope_scaling = 1u << ARCH_ROPE_SCALING_LINEAR,
};
