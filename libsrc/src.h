/* libsrc — tensor sources: what the quantizer, the writer and the runtime read models from.
 *
 * A source lists tensors under their GGUF names and shapes (ggml order: ne[0] is the row
 * length) and hands out their rows, plus the model's GGUF metadata. Two kinds exist:
 *   - a GGUF file (any tensor types; data stays mmapped, zero copy), and
 *   - a Hugging Face checkpoint directory (config.json, *.safetensors F32/F16/BF16, optional
 *     model.safetensors.index.json, tokenizer.model, tokenizer_config.json), mapped to
 *     llama.cpp's names, with llama.cpp's Q/K row permutation applied on the fly and the
 *     metadata (llama.*, general.*, tokenizer.ggml.*) that llama.cpp's converter writes.
 * Either way the consumer sees the same thing, so convert, quantize-from-checkpoint and
 * calibrate-from-checkpoint are one pipeline.
 *
 * Memory: nothing is read until asked; src_release() drops a tensor's mapped pages once
 * consumed, so streaming a model costs about one tensor of resident memory.
 *
 * Errors: src_error + one-line message in msg[SRC_MSG_SIZE] that starts with the path of the
 * offending file (the shard, index, config.json, tokenizer.model or GGUF file; the directory for
 * problems of the whole checkpoint) and says what is wrong
 * ("DIR/model-00001.safetensors: tensor 'x' data_offsets [4, 12] overlap tensor 'y' ..."), so a
 * tool prints it as is: cli_die(cli_exit_src(e), NULL, "%s", msg). Never prints or exits.
 *
 * Checkpoint rules (details in libsrc/checkpoint.c): LlamaForCausalLM only; tensor order, names,
 * Q/K permutation and metadata (keys, order, value types) as llama.cpp's convert_hf_to_gguf.py;
 * general.file_type describes the source as stored (0 F32, 1 F16, 32 BF16), a writer sets its own.
 * Safetensors validation: libsrc/safetensors.h.
 *
 * Threads: after src_open, src_read_f32/src_read_raw/src_release may be called from several
 * threads at once (they only read the mappings); open/close are not concurrent.
 */
#ifndef QFORGE_SRC_H
#define QFORGE_SRC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "libgguf/gguf.h"

#define SRC_MSG_SIZE 512

typedef enum {
    SRC_OK = 0,
    SRC_ERR_IO,           /* cannot open/read/map a file */
    SRC_ERR_NOMEM,
    SRC_ERR_FORMAT,       /* malformed safetensors / index / JSON / protobuf / GGUF */
    SRC_ERR_LIMIT,        /* a size exceeds a cap */
    SRC_ERR_UNSUPPORTED,  /* valid but not supported (dtype, architecture, tensor type) */
    SRC_ERR_MISSING,      /* a required file, key or tensor is absent */
    SRC_ERR_MODEL,        /* the config and the tensors disagree (shapes, counts) */
    SRC_ERR_ARG,
    SRC_ERR_COUNT_
} src_error;

const char *src_strerror(src_error e);

typedef struct src_source src_source;

typedef struct {
    char name[GGUF_MAX_NAME];  /* GGUF name, e.g. "blk.0.attn_q.weight" */
    uint32_t n_dims;
    int64_t ne[GGUF_MAX_DIMS]; /* unused dimensions are 1 */
    int type;                  /* enum gguf_tensor_type of the data as stored (F32/F16/BF16 for checkpoints) */
} src_tensor;

/* Open a GGUF file or a checkpoint directory (detected). On success *out is owned by the
 * caller; free with src_close(). */
src_error src_open(const char *path, src_source **out, char *msg);
void src_close(src_source *s);

bool src_is_checkpoint(const src_source *s);
/* The model's GGUF metadata as a reader (for a checkpoint, built from config.json and the
 * tokenizer). Owned by the source. */
const gguf_reader *src_metadata(const src_source *s);

int64_t src_n_tensors(const src_source *s);
const src_tensor *src_tensor_at(const src_source *s, int64_t i);
int64_t src_find_tensor(const src_source *s, const char *name); /* -1 if absent */
int64_t src_n_rows(const src_tensor *t);                          /* ne[1]*ne[2]*ne[3] */

/* Rows [row0, row0+nrows) of tensor i as F32 (float types only: F32/F16/BF16 are converted
 * exactly; quantized types give SRC_ERR_UNSUPPORTED). dst holds nrows*ne[0] floats. */
src_error src_read_f32(src_source *s, int64_t i, int64_t row0, int64_t nrows, float *dst, char *msg);
/* The same rows in the stored type's GGUF layout (after any permutation). */
src_error src_read_raw(src_source *s, int64_t i, int64_t row0, int64_t nrows, void *dst, char *msg);
/* Pointer to the whole tensor in GGUF layout when it can be had without copying (GGUF
 * sources: aligned, in the file's mapping), else NULL (always for checkpoints, whose data may be
 * unaligned and permuted). Valid until src_close(). */
const void *src_data(const src_source *s, int64_t i);
/* Drop tensor i's pages from memory (MADV_DONTNEED); later reads map them in again. */
void src_release(src_source *s, int64_t i);

/* Paths of every input file (for refusing to overwrite one); owned by the source. */
size_t src_n_files(const src_source *s);
const char *src_file(const src_source *s, size_t i);

#endif
