/* Llama (GGUF "llama"): LlamaForCausalLM (Llama 1-3.x; Llama 3's rope_scaling "llama3" is
 * computed into rope_freqs.weight) and MistralForCausalLM (the same graph; sliding_window is
 * ignored, as llama.cpp does), as llama.cpp's LlamaModel converts them: Q/K rows permuted
 * for NORM RoPE, vocab_size and rope.dimension_count written after general.file_type,
 * tokenizer_config's add_prefix_space copied. Attention and MLP biases are refused (llama.cpp's
 * converter would permute Q/K biases; no checkpoint qforge targets has them). */
#include "arch/arch_internal.h"

static const arch_key keys[] = {
    ARCH_KEYS_TEXT_MODEL,
    ARCH_KEY_VOCAB("vocab_size"),
    {ARCH_HP_ROPE_DIM, NULL, "rope.dimension_count", ARCH_KV_U32, ARCH_KEY_INFO_ONLY, 2, ARCH_MAX_EMBD, 0},
};

static const arch_tensor globals[] = {
    ARCH_ROW_ROPE_FREQS_LLAMA3,
    ARCH_ROW_TOKEN_EMBD,
    ARCH_ROW_OUTPUT_NORM,
    ARCH_ROW_OUTPUT,
};

static const arch_tensor layer[] = {
    ARCH_ROW_ATTN_Q(ARCH_PERM_Q),
    ARCH_ROW_ATTN_K(ARCH_PERM_K),
    ARCH_ROW_ATTN_V,
    ARCH_ROW_ATTN_OUTPUT,
    ARCH_ROW_FFN_GATE,
    ARCH_ROW_FFN_UP,
    ARCH_ROW_FFN_DOWN,
    ARCH_ROW_ATTN_NORM,
    ARCH_ROW_FFN_NORM,
};

/* transformers' LlamaConfig / MistralConfig defaults for keys config.json leaves out */
static const arch_hf_class classes[] = {
    {"LlamaForCausalLM", "llama", {.n_ctx = 2048, .rope_base = 10000.0, .rms_eps = 1e-6}},
    {"MistralForCausalLM", "mistral", {.n_ctx = 131072, .n_head_kv = 8, .rope_base = 10000.0, .rms_eps = 1e-6}},
};

static const arch_refused refused[] = {
    {"attention_bias", "attention biases"},
    {"mlp_bias", "MLP biases"},
};

const arch_desc arch_llama = {
    .name = "llama",
    ARCH_TABLES,
    ARCH_GROUPS_ATTN_SWIGLU,
    ARCH_REFUSED,
    .hf_layer_prefix = "model.layers.",
    .rope = ARCH_ROPE_NORM,
    .rope_scaling = 1u << ARCH_ROPE_SCALING_LINEAR | 1u << ARCH_ROPE_SCALING_LLAMA3,
    .vocab_add_prefix_space = true,
};
