/* input — a model file described as one JSON object (what qforge-inspect --json prints).
 *
 *   GGUF:        file, format "gguf", version, alignment, data_offset, file_size, metadata,
 *                tensors [{name, shape, type, offset, bytes}], tensor_bytes
 *   safetensors: file, format "safetensors", header_size, data_offset, file_size, metadata
 *                {key: value}, tensors [{name, shape (as stored), dtype, offset, bytes}]
 *   checkpoint:  file, format "checkpoint", files, metadata, tensors [{name, shape, type, bytes}]
 *                (the GGUF tensors and metadata qforge-convert would write)
 * metadata of GGUF and checkpoints: [{key, type, (elem_type, count, truncated), value}], arrays
 * cut to their first INP_DESCRIBE_ARRAY items. Strings that are not UTF-8 show their other bytes
 * as "\xNN" text. Errors: inp_error + one line starting with the path (GGUF reader errors:
 * INP_ERR_IO, INP_ERR_NOMEM, INP_ERR_ARG, else INP_ERR_FORMAT). Never prints. */
#ifndef QFORGE_INP_DESCRIBE_H
#define QFORGE_INP_DESCRIBE_H

#include <jansson.h>

#include "input/input.h"
#include "libgguf/gguf.h"

#define INP_DESCRIBE_ARRAY 16

/* *out (the caller json_decref's it) describes the file or directory at path. */
inp_error inp_describe_gguf(const char *path, json_t **out, char *msg);
inp_error inp_describe_safetensors(const char *path, json_t **out, char *msg);
inp_error inp_describe_checkpoint(const char *path, json_t **out, char *msg);

/* Element i (< a->n) of a numeric or bool array value as a scalar value; type
 * GGUF_VAL_COUNT_ for an element type that is neither. */
gguf_value inp_array_elem(const gguf_value *a, uint64_t i);

#endif
