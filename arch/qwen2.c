/* Qwen2 (GGUF "qwen2"): Qwen2ForCausalLM (Qwen2, Qwen2.5), as llama.cpp's Qwen2Model converts
 * it: Q/K/V projections with biases (kept F32), NEOX RoPE so no Q/K permutation, tied
 * embeddings on the small models, no vocab_size or rope.dimension_count key. */
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
    ARCH_ROW_ATTN_Q_BIAS(ARCH_T_OPTIONAL),
    ARCH_ROW_ATTN_K(ARCH_PERM_NONE),
    ARCH_ROW_ATTN_K_BIAS(ARCH_T_OPTIONAL),
    ARCH_ROW_ATTN_V,
    ARCH_ROW_ATTN_V_BIAS(ARCH_T_OPTIONAL),
    ARCH_ROW_ATTN_OUTPUT,
    ARCH_ROW_FFN_GATE,
    ARCH_ROW_FFN_UP,
    ARCH_ROW_FFN_DOWN,
    ARCH_ROW_ATTN_NORM,
    ARCH_ROW_FFN_NORM,
};

/* transformers' Qwen2Config defaults */
static const arch_hf_class classes[] = {
    {"Qwen2ForCausalLM", "qwen2", {.n_ctx = 32768, .n_head_kv = 32, .rope_base = 10000.0, .rms_eps = 1e-6}},
};

const arch_desc arch_qwen2 = {
    .name = "qwen2",
    ARCH_TABLES,
    ARCH_GROUPS_ATTN_SWIGLU,
    .hf_layer_prefix = "model.layers.",
    .rope = ARCH_ROPE_NEOX,
    .rope_scaling = 1u << ARCH_ROPE_SCALING_LINEAR,
};
