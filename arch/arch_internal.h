/* Building blocks for descriptions: rows a new arch/NAME.c can pick instead of spelling them
 * out again. Not part of the public contract (arch/arch.h is). */
#ifndef QFORGE_ARCH_INTERNAL_H
#define QFORGE_ARCH_INTERNAL_H

#include <stdint.h>

#include "arch/arch.h"

/* The hyper-parameters llama.cpp's converter writes for every text model (TextModel), in its
 * order, ending with general.file_type. */
#define ARCH_HF_GGUF_REQ (ARCH_KEY_HF_REQUIRED | ARCH_KEY_GGUF_REQUIRED)
#define ARCH_KEYS_TEXT_MODEL                                                                                     \
    {ARCH_HP_N_LAYER, "num_hidden_layers", "block_count", ARCH_KV_U32, ARCH_HF_GGUF_REQ, 1, ARCH_MAX_LAYERS, 0}, \
    {ARCH_HP_N_CTX, "max_position_embeddings", "context_length", ARCH_KV_U32, 0, 0, INT32_MAX, 0},              \
    {ARCH_HP_N_EMBD, "hidden_size", "embedding_length", ARCH_KV_U32, ARCH_HF_GGUF_REQ, 1, ARCH_MAX_EMBD, 0},      \
    {ARCH_HP_N_FF, "intermediate_size", "feed_forward_length", ARCH_KV_U32, ARCH_HF_GGUF_REQ, 1, ARCH_MAX_FF, 0}, \
    {ARCH_HP_N_HEAD, "num_attention_heads", "attention.head_count", ARCH_KV_U32, ARCH_HF_GGUF_REQ, 1,             \
     ARCH_MAX_HEADS, 0},                                                                                         \
    {ARCH_HP_N_HEAD_KV, "num_key_value_heads", "attention.head_count_kv", ARCH_KV_U32, 0, 1, ARCH_MAX_HEADS, -1},  \
    {ARCH_HP_ROPE_SCALING_TYPE, NULL, "rope.scaling.type", ARCH_KV_STR, ARCH_KEY_INFO_ONLY, 0, 0, 0},                             \
    {ARCH_HP_ROPE_SCALING_FACTOR, NULL, "rope.scaling.factor", ARCH_KV_F32, ARCH_KEY_INFO_ONLY, 0, ARCH_MAX_FLOAT, 0},             \
    {ARCH_HP_ROPE_BASE, "rope_theta", "rope.freq_base", ARCH_KV_F32, 0, 0, ARCH_MAX_FLOAT, 10000.0},              \
    {ARCH_HP_RMS_EPS, "rms_norm_eps", "attention.layer_norm_rms_epsilon", ARCH_KV_F32, ARCH_KEY_GGUF_REQUIRED, 0, \
     ARCH_MAX_FLOAT, 0},                                                                                         \
    {ARCH_HP_KEY_LENGTH, "head_dim", "attention.key_length", ARCH_KV_U32, ARCH_KEY_IF_GIVEN, 2, ARCH_MAX_EMBD, -1},\
    {ARCH_HP_VALUE_LENGTH, "head_dim", "attention.value_length", ARCH_KV_U32, ARCH_KEY_IF_GIVEN, 2,               \
     ARCH_MAX_EMBD, -1},                                                                                         \
    {ARCH_HP_FILE_TYPE, NULL, NULL, ARCH_KV_U32, 0, 0, 0, 0}

/* vocab_size: read from config.json; written only by architectures whose converter does. */
#define ARCH_KEY_VOCAB(gguf_suffix) \
    {ARCH_HP_N_VOCAB, "vocab_size", gguf_suffix, ARCH_KV_U32, ARCH_KEY_HF_REQUIRED | ARCH_KEY_INFO_ONLY, 1, ARCH_MAX_VOCAB, 0}

/* Tensors of the Hugging Face Llama family layout (model.embed_tokens, model.layers.N.self_attn.*,
 * model.layers.N.mlp.*, model.norm, lm_head), as llama.cpp names them. */
#define ARCH_ROW_TOKEN_EMBD \
    {ARCH_ROLE_TOKEN_EMBD, "token_embd.weight", "model.embed_tokens.weight", ARCH_DIM_EMBD, ARCH_DIM_VOCAB, ARCH_PERM_NONE, LQ_CAT_TOKEN_EMBD, 0, NULL}
#define ARCH_ROW_OUTPUT_NORM \
    {ARCH_ROLE_OUTPUT_NORM, "output_norm.weight", "model.norm.weight", ARCH_DIM_EMBD, ARCH_DIM_1, ARCH_PERM_NONE, LQ_CAT_OTHER, 0, NULL}
#define ARCH_ROW_OUTPUT \
    {ARCH_ROLE_OUTPUT, "output.weight", "lm_head.weight", ARCH_DIM_EMBD, ARCH_DIM_VOCAB, ARCH_PERM_NONE, LQ_CAT_OUTPUT, ARCH_T_TIED, NULL}
#define ARCH_ROW_ROPE_FREQS_LLAMA3 \
    {ARCH_ROLE_ROPE_FREQS, "rope_freqs.weight", NULL, ARCH_DIM_ROPE, ARCH_DIM_1, ARCH_PERM_NONE, LQ_CAT_OTHER, ARCH_T_COMPUTED | ARCH_T_OPTIONAL, arch_rope_freqs_llama3}

#define ARCH_ROW_ATTN_NORM \
    {ARCH_ROLE_ATTN_NORM, "attn_norm.weight", "input_layernorm.weight", ARCH_DIM_EMBD, ARCH_DIM_1, ARCH_PERM_NONE, LQ_CAT_OTHER, 0, NULL}
#define ARCH_ROW_ATTN_Q(perm) \
    {ARCH_ROLE_ATTN_Q, "attn_q.weight", "self_attn.q_proj.weight", ARCH_DIM_EMBD, ARCH_DIM_Q, perm, LQ_CAT_ATTN_Q, 0, NULL}
#define ARCH_ROW_ATTN_K(perm) \
    {ARCH_ROLE_ATTN_K, "attn_k.weight", "self_attn.k_proj.weight", ARCH_DIM_EMBD, ARCH_DIM_KV, perm, LQ_CAT_ATTN_K, 0, NULL}
#define ARCH_ROW_ATTN_V \
    {ARCH_ROLE_ATTN_V, "attn_v.weight", "self_attn.v_proj.weight", ARCH_DIM_EMBD, ARCH_DIM_KV, ARCH_PERM_NONE, LQ_CAT_ATTN_V, 0, NULL}
#define ARCH_ROW_ATTN_Q_BIAS(flags) \
    {ARCH_ROLE_ATTN_Q_BIAS, "attn_q.bias", "self_attn.q_proj.bias", ARCH_DIM_Q, ARCH_DIM_1, ARCH_PERM_NONE, LQ_CAT_OTHER, flags, NULL}
#define ARCH_ROW_ATTN_K_BIAS(flags) \
    {ARCH_ROLE_ATTN_K_BIAS, "attn_k.bias", "self_attn.k_proj.bias", ARCH_DIM_KV, ARCH_DIM_1, ARCH_PERM_NONE, LQ_CAT_OTHER, flags, NULL}
#define ARCH_ROW_ATTN_V_BIAS(flags) \
    {ARCH_ROLE_ATTN_V_BIAS, "attn_v.bias", "self_attn.v_proj.bias", ARCH_DIM_KV, ARCH_DIM_1, ARCH_PERM_NONE, LQ_CAT_OTHER, flags, NULL}
#define ARCH_ROW_ATTN_Q_NORM \
    {ARCH_ROLE_ATTN_Q_NORM, "attn_q_norm.weight", "self_attn.q_norm.weight", ARCH_DIM_HEAD, ARCH_DIM_1, ARCH_PERM_NONE, LQ_CAT_OTHER, 0, NULL}
#define ARCH_ROW_ATTN_K_NORM \
    {ARCH_ROLE_ATTN_K_NORM, "attn_k_norm.weight", "self_attn.k_norm.weight", ARCH_DIM_HEAD, ARCH_DIM_1, ARCH_PERM_NONE, LQ_CAT_OTHER, 0, NULL}
#define ARCH_ROW_ATTN_OUTPUT \
    {ARCH_ROLE_ATTN_OUTPUT, "attn_output.weight", "self_attn.o_proj.weight", ARCH_DIM_Q, ARCH_DIM_EMBD, ARCH_PERM_NONE, LQ_CAT_ATTN_OUTPUT, 0, NULL}
#define ARCH_ROW_FFN_NORM \
    {ARCH_ROLE_FFN_NORM, "ffn_norm.weight", "post_attention_layernorm.weight", ARCH_DIM_EMBD, ARCH_DIM_1, ARCH_PERM_NONE, LQ_CAT_OTHER, 0, NULL}
#define ARCH_ROW_FFN_GATE \
    {ARCH_ROLE_FFN_GATE, "ffn_gate.weight", "mlp.gate_proj.weight", ARCH_DIM_EMBD, ARCH_DIM_FF, ARCH_PERM_NONE, LQ_CAT_FFN_GATE, 0, NULL}
#define ARCH_ROW_FFN_UP \
    {ARCH_ROLE_FFN_UP, "ffn_up.weight", "mlp.up_proj.weight", ARCH_DIM_EMBD, ARCH_DIM_FF, ARCH_PERM_NONE, LQ_CAT_FFN_UP, 0, NULL}
#define ARCH_ROW_FFN_DOWN \
    {ARCH_ROLE_FFN_DOWN, "ffn_down.weight", "mlp.down_proj.weight", ARCH_DIM_FF, ARCH_DIM_EMBD, ARCH_PERM_NONE, LQ_CAT_FFN_DOWN, 0, NULL}

/* The GPTQ groups of a pre-norm attention + SwiGLU FFN layer (Q/K/V, O, gate/up, down). */
extern const arch_group arch_groups_attn_swiglu[4];
#define ARCH_GROUPS_ATTN_SWIGLU .groups = arch_groups_attn_swiglu, .n_groups = 4

#define ARCH_COUNT(a) (sizeof(a) / sizeof((a)[0]))
/* The table fields of a description from its file's static arrays classes, keys, globals and layer. */
#define ARCH_TABLES                                                                              \
    .classes = classes, .n_classes = ARCH_COUNT(classes), .keys = keys, .n_keys = ARCH_COUNT(keys), \
    .globals = globals, .n_globals = ARCH_COUNT(globals), .layer = layer, .n_layer = ARCH_COUNT(layer)
#define ARCH_REFUSED .refused = refused, .n_refused = ARCH_COUNT(refused)

#endif
