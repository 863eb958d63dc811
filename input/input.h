/* input — tensor sources: what the quantizer, the writer and the runtime read models from.
 *
 * A source lists tensors under their GGUF names and shapes (ggml order: ne[0] is the row
 * length) and hands out their rows, plus the model's GGUF metadata. Two kinds exist:
 *   - a GGUF file (any tensor types; data stays mmapped, zero copy), and
 *   - a Hugging Face checkpoint directory (config.json, *.safetensors F32/F16/BF16, optional
 *     model.safetensors.index.json, tokenizer.model or tokenizer.json, tokenizer_config.json) of a registered
 *     architecture (arch/arch.h), mapped to llama.cpp's names, with llama.cpp's Q/K row
 *     permutation applied on the fly where the architecture has it, the tensors llama.cpp's
 *     converter computes (Llama 3's rope_freqs) and the metadata ({arch}.*, general.*,
 *     tokenizer.ggml.*) it writes.
 * Either way the consumer sees the same thing, so convert, quantize-from-checkpoint and
 * calibrate-from-checkpoint are one pipeline.
 *
 * Memory: nothing is read until asked; inp_release() drops a tensor's mapped pages once
 * consumed, so streaming a model costs about one tensor of resident memory.
 *
 * Errors: inp_error + one-line message in msg[INP_MSG_SIZE] that starts with the path of the
 * offending file (the shard, index, config.json, tokenizer.model or GGUF file; the directory for
 * problems of the whole checkpoint) and says what is wrong
 * ("DIR/model-00001.safetensors: tensor 'x' data_offsets [4, 12] overlap tensor 'y' ..."), so a
 * tool prints it as is: cli_die(cli_exit_src(e), NULL, "%s", msg). Never prints or exits.
 *
 * Checkpoint rules (details in input/checkpoint.c): the HF classes of arch/; tensor order, names,
 * Q/K permutation and metadata (keys, order, value types) as llama.cpp's convert_hf_to_gguf.py;
 * general.file_type describes the source as stored (0 F32, 1 F16, 32 BF16), a writer sets its own.
 * Safetensors validation: input/safetensors.h.
 *
 * Threads: after inp_open, inp_read_f32/inp_read_raw/inp_release may be called from several
 * threads at once (they only read the mappings); open/close are not concurrent.
 */
#ifndef QFORGE_INP_H
#define QFORGE_INP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "libgguf/gguf.h"

#define INP_MSG_SIZE 512

typedef enum {
    INP_OK = 0,
    INP_ERR_IO,           /* cannot open/read/map a file */
    INP_ERR_NOMEM,
    INP_ERR_FORMAT,       /* malformed safetensors / index / JSON / protobuf / GGUF */
    INP_ERR_LIMIT,        /* a size exceeds a cap */
    INP_ERR_UNSUPPORTED,  /* valid but not supported (dtype, architecture, tensor type) */
    INP_ERR_MISSING,      /* a required file, key or tensor is absent */
    INP_ERR_MODEL,        /* the config and the tensors disagree (shapes, counts) */
    INP_ERR_ARG,
    INP_ERR_COUNT_
} inp_error;

const char *inp_strerror(inp_error e);
/* The input layer's code for a tokenizer error (tokenizer/tok_error.h), same meaning. */
inp_error inp_error_from_tok(int tok_error_code);

typedef struct inp_source inp_source;

typedef struct {
    char name[GGUF_MAX_NAME];  /* GGUF name, e.g. "blk.0.attn_q.weight" */
    uint32_t n_dims;
    int64_t ne[GGUF_MAX_DIMS]; /* unused dimensions are 1 */
    int type;                  /* enum gguf_tensor_type of the data as stored (F32/F16/BF16 for checkpoints) */
} inp_tensor;

/* Open a GGUF file or a checkpoint directory (detected). On success *out is owned by the
 * caller; free with inp_close(). */
inp_error inp_open(const char *path, inp_source **out, char *msg);

/* Options of inp_open_ex; all zero ({0}) is inp_open. */
typedef struct {
    /* A checkpoint read through tokenizer.json (byte-level BPE): write this tokenizer.ggml.pre
     * (a name of tokenizer/tok_pretok: llama-bpe, qwen2, gpt-2, ...) instead of detecting it.
     * NULL: detect it as llama.cpp does; an unknown tokenizer is INP_ERR_UNSUPPORTED with a
     * message naming --tokenizer-pre. An unknown name is INP_ERR_ARG; so is a name given for
     * any other input (a GGUF file, a SentencePiece checkpoint), where it would do nothing. */
    const char *tokenizer_pre;
} inp_open_opts;

inp_error inp_open_ex(const char *path, const inp_open_opts *opts, inp_source **out, char *msg);
void inp_close(inp_source *s);

bool inp_is_checkpoint(const inp_source *s);
/* The model's GGUF metadata as a reader (for a checkpoint, built from config.json and the
 * tokenizer). Owned by the source. */
const gguf_reader *inp_metadata(const inp_source *s);

int64_t inp_n_tensors(const inp_source *s);
const inp_tensor *inp_tensor_at(const inp_source *s, int64_t i);
int64_t inp_find_tensor(const inp_source *s, const char *name); /* -1 if absent */
int64_t inp_n_rows(const inp_tensor *t);                          /* ne[1]*ne[2]*ne[3] */

/* Rows [row0, row0+nrows) of tensor i as F32 (float types only: F32/F16/BF16 are converted
 * exactly; quantized types give INP_ERR_UNSUPPORTED). dst holds nrows*ne[0] floats. */
inp_error inp_read_f32(inp_source *s, int64_t i, int64_t row0, int64_t nrows, float *dst, char *msg);
/* The same rows in the stored type's GGUF layout (after any permutation). */
inp_error inp_read_raw(inp_source *s, int64_t i, int64_t row0, int64_t nrows, void *dst, char *msg);
/* Pointer to the whole tensor in GGUF layout when it can be had without copying (GGUF
 * sources: aligned, in the file's mapping), else NULL (always for checkpoints, whose data may be
 * unaligned and permuted). Valid until inp_close(). */
const void *inp_data(const inp_source *s, int64_t i);
/* Drop tensor i's pages from memory (MADV_DONTNEED); later reads map them in again. */
void inp_release(inp_source *s, int64_t i);

/* Paths of every input file (for refusing to overwrite one); owned by the source. */
size_t inp_n_files(const inp_source *s);
const char *inp_file(const inp_source *s, size_t i);

#endif
