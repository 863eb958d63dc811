/* input/synth — random-weight Hugging Face checkpoints of any registered architecture
 * (arch/arch.h), for tests and benchmarks: what a reader of checkpoints (input/input.h) is
 * tested on.
 *
 * Writes into a directory: config.json (the description's keys under their config.json names,
 * the HF class and model_type), a tokenizer, tokenizer_config.json, and model.safetensors or S
 * shards model-0000i-of-0000S.safetensors with model.safetensors.index.json. The tokenizer is
 *   INP_SYNTH_TOK_SPM: tokenizer.model, a synthetic SentencePiece BPE model with byte fallback:
 *     <unk> <s> </s>, 256 byte pieces, then "▁", the printable ASCII characters and lowercase
 *     words;
 *   INP_SYNTH_TOK_BPE: tokenizer.json, a synthetic byte-level BPE tokenizer: the 256 byte
 *     characters (GPT-2's byte-to-unicode order), then merge results — "Ġa".."Ġz", then each
 *     lowercase word w of length 2, 3, ... as w and "Ġ"w, each made by the merge (w minus its
 *     last letter, the last letter) — and three special added tokens at the top ids: Llama 3's
 *     <|begin_of_text|> <|end_of_text|> <|eot_id|> (llama architecture: merges as "a b"
 *     strings, BOS through a TemplateProcessing post-processor) or Qwen's <|endoftext|>
 *     <|im_start|> <|im_end|> (other architectures: merges as ["a", "b"] pairs, NFC, no BOS).
 *     Its ids hash to no known tokenizer: convert with a pre-tokenizer name (inp_open_opts,
 *     --tokenizer-pre llama-bpe / qwen2).
 *
 * Tensors: the description's, with the HF names and shapes the options imply, in HF state_dict
 * order (embedding, layers, the rest; computed tensors are not written, output is left out when
 * tied). Norm weights are 1.0; everything else approximately N(0, 0.02) (a sum of four
 * uniforms), each tensor's values depending only on the seed and the tensor's name, so the same
 * model comes out whatever the sharding and dtype. Shards follow Hugging Face's conventions:
 * tensors assigned to contiguous byte-balanced groups in state_dict order, each shard's header
 * and data sorted by name, header padded with spaces to 8 bytes. Output is streamed a row at a
 * time: memory stays small whatever the model size.
 *
 * Files are written in place (this is test data, not a product output); a failure can leave a
 * partial directory. Errors: inp_error + one line in msg[INP_MSG_SIZE]; never prints.
 */
#ifndef QFORGE_INP_SYNTH_H
#define QFORGE_INP_SYNTH_H

#include <stdbool.h>
#include <stdint.h>

#include "input/input.h"

typedef struct {
    const char *hf_class;     /* config.json architectures[0]; default "LlamaForCausalLM" */
    int64_t dim, layers, heads, ffn, vocab; /* required */
    int64_t kv_heads;         /* 0: = heads */
    int64_t head_dim;         /* 0: dim / heads, not written to config.json */
    int64_t ctx;              /* max_position_embeddings */
    int64_t shards;           /* >= 1 */
    bool tied;                /* tie_word_embeddings: no lm_head.weight */
    int dtype;                /* GGUF_F32, GGUF_F16 or GGUF_BF16 */
    uint64_t seed;
    double rope_theta, rms_eps;
    bool rope_llama3;         /* rope_scaling {rope_type llama3, factor 8, low 1, high 4, original 8192} */
    int tokenizer;            /* INP_SYNTH_TOK_SPM (default) or INP_SYNTH_TOK_BPE (vocab >= 260) */
    /* Called with the temp file being written (".NAME.qforge-tmp-XXXXXX" in dir), then with NULL once
     * it is renamed or removed, so a tool can remove it on a signal. NULL: not called. */
    void (*temp_hook)(void *user, const char *temp_path);
    void *temp_user;
} inp_synth_opts;

enum { INP_SYNTH_TOK_SPM = 0, INP_SYNTH_TOK_BPE = 1 };

/* Defaults: LlamaForCausalLM, ctx 2048, 1 shard, BF16, seed 1, rope_theta 10000, rms_eps 1e-5. */
inp_synth_opts inp_synth_defaults(void);

typedef struct {
    uint64_t params;          /* weights written (elements) */
    uint64_t bytes;           /* bytes of weights */
    int64_t n_tensors;
} inp_synth_summary;

/* Writes the checkpoint into dir (created if needed; files of an earlier run are replaced, a
 * stale index removed). Each file is written to a temp file beside it, fsync'ed and renamed: a
 * failed write leaves no partial file under the final name. INP_ERR_ARG for options that do not make a model of that class (the
 * message says which), INP_ERR_UNSUPPORTED for an unknown class, INP_ERR_IO / NOMEM. */
inp_error inp_synth_write(const char *dir, const inp_synth_opts *o, inp_synth_summary *sum, char *msg);

#endif
