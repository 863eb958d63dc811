/* runtime — the reference forward pass of the registered architectures (arch/arch.h: llama
 * and its relatives), as llama.cpp computes it on the CPU.
 *
 * A model is assembled from a tensor source (input/input.h) as its architecture description
 * says: hyper-parameters from the GGUF metadata ("{arch}.*" keys), the tensors it lists (optional
 * ones may be absent), weights zero-copy from a mapped GGUF (inp_data) or, for a checkpoint
 * source, read as F32 into memory the model owns. Everything is validated on load
 * (architecture, every tensor present with the shape the hyper-parameters imply, types the
 * kernels know, no tensor the graph does not use); failures return an rt_error with a one-line
 * message.
 *
 * The forward pass processes a whole sequence of tokens at positions 0..n-1 at once:
 *   embedding lookup -> n_layer × { RMSNorm, Q/K/V (+ biases when present, + per-head RMS
 *   norms of Q and K when present), RoPE (the description's style: NORM = adjacent pairs,
 *   NEOX = halves; rope_freqs factors when present), causal attention with grouped KV heads
 *   (K, V and Q rounded to fp16 as in llama.cpp's default f16 KV cache), output projection,
 *   residual, RMSNorm, SwiGLU FFN, residual } -> final RMSNorm -> output projection
 *   (token_embd when output.weight is absent) -> F32 logits.
 * Matrix products use the kernels of runtime/kernels.h (activations quantized like ggml).
 *
 * The same pass is exposed layer by layer: the hook API the calibration (pipeline/gptq.h:
 * sequential GPTQ, importance statistics) drives the model through, and nothing more:
 *   rt_embed() -> rt_layer_forward() for each layer, with an optional hook that sees the
 *   input of each group of linear layers before it is used -> rt_final_logits().
 * rt_model_set_weight() swaps a weight (e.g. for its freshly quantized version).
 *
 * Threads: matrix products and attention run OpenMP loops over output rows / heads inside
 * each call; results do not depend on the thread count. A model is not safe for concurrent
 * calls (it owns its scratch buffers); rt_model_clone gives another model on the same
 * weights for a concurrent pass.
 * Errors: functions that can fail return rt_error and write one line into msg[RT_MSG_SIZE]
 * when msg is not NULL. The library never prints and never exits.
 */
#ifndef QFORGE_RUNTIME_H
#define QFORGE_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arch/arch.h"
#include "input/input.h"
#include "runtime/kernels.h"

#define RT_MSG_SIZE 512
#define RT_MAX_TOKENS (1 << 16) /* longest sequence one forward call accepts */

typedef enum {
    RT_OK = 0,
    RT_ERR_NOMEM,
    RT_ERR_IO,          /* reading a checkpoint tensor failed */
    RT_ERR_MODEL,       /* missing/inconsistent metadata or tensors */
    RT_ERR_UNSUPPORTED, /* architecture or tensor type the runtime cannot run */
    RT_ERR_ARG,         /* bad argument (token id out of range, n_tokens, layer, name) */
    RT_ERR_HOOK,        /* a hook asked to stop */
    RT_ERR_FORMAT,      /* malformed input file (perplexity: log-prob file, text) */
    RT_ERR_BUDGET,      /* the job would need more memory than its budget allows */
    RT_ERR_COUNT_
} rt_error;

const char *rt_strerror(rt_error e);
/* The runtime's code for a tokenizer error (tokenizer/tok_error.h): same meaning, LIMIT -> MODEL. */
rt_error rt_error_from_tok(int tok_error_code);

typedef struct {
    int n_layer;
    int n_embd;       /* hidden size */
    int n_ff;         /* FFN size */
    int n_head;
    int n_head_kv;
    int head_dim;     /* {arch}.attention.key_length, else n_embd / n_head */
    int n_vocab;      /* entries of tokenizer.ggml.tokens (else rows of token_embd) */
    int n_ctx_train;  /* {arch}.context_length (0 if absent) */
    float rope_base;  /* {arch}.rope.freq_base (default 10000) */
    float rms_eps;    /* {arch}.attention.layer_norm_rms_epsilon */
    bool tied_output; /* no output.weight: logits use token_embd */
} rt_hparams;

typedef struct rt_model rt_model;

/* Build a model on a source. The source is borrowed: it must outlive the model (GGUF weights
 * stay in its mapping). *out is owned by the caller; free with rt_model_free(). */
rt_error rt_model_load(inp_source *src, rt_model **out, char *msg);
void rt_model_free(rt_model *m);

/* Layer by layer (GPTQ, whatever the model size): like rt_model_load (every tensor checked),
 * but the matrices a checkpoint would copy as F32 are left unread; weights in a GGUF's mapping
 * are used in place as always. rt_embed reads the rows it needs. rt_model_load_layer(m, l,
 * from) reads layer l's matrices (l == -1: token_embd and output) — or, when from is not NULL
 * and holds them, borrows from's (from must keep them while m uses them; rt_model_set_weight
 * on m then replaces the borrowed pointer by a copy of its own). rt_model_drop_layer frees
 * what load_layer or set_weight put there (a borrowed pointer is just forgotten).
 * rt_layer_forward refuses a layer not loaded, rt_forward and rt_final_logits a model not
 * wholly loaded (RT_ERR_ARG). */
rt_error rt_model_load_deferred(inp_source *src, rt_model **out, char *msg);
rt_error rt_model_load_layer(rt_model *m, int layer, const rt_model *from, char *msg);
void rt_model_drop_layer(rt_model *m, int layer);

/* A second model on the same weights, with scratch buffers of its own, so that two passes
 * can run at once (one per thread). Nothing is copied: m must outlive the clone and keep its
 * weights (rt_model_set_weight on m while a clone runs is a race; on a clone it is refused).
 * Free with rt_model_free. */
rt_error rt_model_clone(const rt_model *m, rt_model **out, char *msg);

const rt_hparams *rt_model_hparams(const rt_model *m);
/* The model's architecture description (its GPTQ groups, tensor categories, ...). */
const arch_desc *rt_model_arch(const rt_model *m);
/* Threads for the OpenMP loops (<= 0: OpenMP's default). */
void rt_model_set_threads(rt_model *m, int nthreads);
/* Kernel ISA (default rt_isa_detect()); RT_ERR_ARG if the CPU lacks it. */
rt_error rt_model_set_isa(rt_model *m, rt_isa isa);
/* Bytes of weights the model owns (checkpoint tensors, swapped weights, norms). */
size_t rt_model_owned_bytes(const rt_model *m);

/* Memory, for a budget check before anything large is allocated (qforge-perplexity
 * --max-memory). rt_weights_bytes: the weights of a source once loaded — a GGUF's tensor data
 * (used where it is mapped, resident as it is read) or, for a checkpoint, F32 copies.
 * rt_model_scratch_bytes: what one model (or clone) allocates for passes of n_seq sequences
 * of seq_len tokens on nthreads threads (<= 0: OpenMP's default). */
uint64_t rt_weights_bytes(const inp_source *src);
uint64_t rt_model_scratch_bytes(const rt_model *m, int n_seq, int seq_len, int nthreads);

/* Replace weight `name` (a matrix such as "blk.3.ffn_down.weight", "token_embd.weight",
 * "output.weight", or an F32 norm vector) by `data` in GGUF layout of `type`, same shape.
 * The data is copied. RT_ERR_ARG for an unknown name, RT_ERR_UNSUPPORTED for a type the
 * kernels cannot run. */
rt_error rt_model_set_weight(rt_model *m, const char *name, int type, const void *data, char *msg);

/* ---- layer-by-layer forward ---- */

/* The inputs a hook sees, each shared by a group of linear layers (arch_group.input names the
 * point of each GPTQ group of a description). */
typedef enum {
    RT_HOOK_ATTN_QKV = ARCH_INPUT_ATTN,        /* input of attn_q, attn_k, attn_v: RMSNorm'ed hidden, n_embd cols */
    RT_HOOK_ATTN_OUT = ARCH_INPUT_ATTN_OUT,    /* input of attn_output: attention result, n_head*head_dim cols */
    RT_HOOK_FFN_GATE_UP = ARCH_INPUT_FFN,      /* input of ffn_gate, ffn_up: RMSNorm'ed hidden, n_embd cols */
    RT_HOOK_FFN_DOWN = ARCH_INPUT_FFN_DOWN,    /* input of ffn_down: silu(gate)*up, n_ff cols */
    RT_HOOK_COUNT_ = ARCH_INPUT_COUNT_
} rt_hook_point;

/* Called with x = n_tokens rows of n_cols floats (row-major), valid during the call only.
 * Return 0 to continue, anything else to stop the pass with RT_ERR_HOOK. */
typedef int (*rt_hook_fn)(void *user, int layer, rt_hook_point point, const float *x,
                          int n_tokens, int n_cols);
typedef struct {
    rt_hook_fn fn;
    void *user;
} rt_hook;

/* hidden (n_tokens × n_embd floats) := embeddings of tokens. */
rt_error rt_embed(rt_model *m, const int32_t *tokens, int n_tokens, float *hidden, char *msg);
/* hidden := layer `layer` applied to hidden (tokens at positions 0..n_tokens-1). hook may
 * be NULL. */
rt_error rt_layer_forward(rt_model *m, int layer, float *hidden, int n_tokens,
                          const rt_hook *hook, char *msg);
/* logits (n_rows × n_vocab) := output(RMSNorm(hidden rows))  for n_rows rows of hidden. */
rt_error rt_final_logits(rt_model *m, const float *hidden, int n_rows, float *logits, char *msg);

/* The whole pass: logits for positions first..n_tokens-1 ((n_tokens-first) × n_vocab). */
rt_error rt_forward(rt_model *m, const int32_t *tokens, int n_tokens, int first,
                    float *logits, char *msg);
/* n_seq independent sequences of n_tokens each in one pass (tokens[s*n_tokens + t], positions
 * 0..n_tokens-1 each; n_seq * n_tokens <= RT_MAX_TOKENS): logits for positions
 * first..n_tokens-1 of every sequence, sequence after sequence. Each sequence's logits are
 * bit-identical to rt_forward on it alone; batching only amortizes the weight passes. */
rt_error rt_forward_seqs(rt_model *m, const int32_t *tokens, int n_seq, int n_tokens, int first,
                         float *logits, char *msg);

#endif
