/* input/safetensors — a validating safetensors reader (mmap, zero copy).
 *
 * Layout: u64 LE header length N, N bytes of UTF-8 JSON, then the data buffer.
 * Validation follows the reference implementation (huggingface/safetensors, tensor.rs):
 *   - N ≤ 100,000,000 and 8 + N ≤ file size;
 *   - the header is valid UTF-8 holding one JSON object (duplicate keys rejected);
 *   - optional "__metadata__": an object of string -> string (or null);
 *   - every other key is a tensor: an object with "dtype" (a known name), "shape" (array of
 *     non-negative integers) and "data_offsets" ([begin, end], begin ≤ end); other keys in a
 *     tensor entry are ignored, as the reference does;
 *   - sorted by (begin, end), the tensors tile the data buffer from 0 with no gap or overlap;
 *   - end - begin == product(shape) × dtype size (overflow-checked; sub-byte dtypes must fill
 *     whole bytes);
 *   - the last end equals the data buffer size (file size - 8 - N): no trailing bytes.
 * Beyond the reference, qforge caps a tensor's rank at INP_ST_MAX_DIMS.
 *
 * Tensors are listed in data order (by begin offset). Errors use input's inp_error and a
 * one-line message "LABEL: what is wrong", LABEL being the path (or the label given for a
 * buffer). Never prints or exits.
 */
#ifndef QFORGE_INP_SAFETENSORS_H
#define QFORGE_INP_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "input/input.h"

#define INP_ST_MAX_HEADER 100000000ull /* the reference implementation's cap */
#define INP_ST_MAX_DIMS 16

typedef struct inp_st_file inp_st_file;

typedef struct {
    const char *name;          /* owned by the file */
    const char *dtype;         /* canonical spelling, e.g. "BF16" */
    int gguf_type;             /* GGUF_F32 / GGUF_F16 / GGUF_BF16, or -1 when not convertible */
    uint32_t dtype_bits;       /* bits per element */
    uint32_t n_dims;           /* 0 for a scalar */
    uint64_t shape[INP_ST_MAX_DIMS]; /* safetensors order: shape[n_dims-1] is contiguous */
    uint64_t n_elements;
    uint64_t begin, end;       /* byte offsets in the data buffer */
} inp_st_tensor;

/* Map and validate a file. On success *out owns the mapping; free with inp_st_close(). */
inp_error inp_st_open(const char *path, inp_st_file **out, char *msg);
/* Validate a buffer in memory (borrowed; must outlive the file object). label names it in
 * messages. */
inp_error inp_st_open_memory(const void *buf, size_t size, const char *label, inp_st_file **out,
                             char *msg);
void inp_st_close(inp_st_file *f);

const char *inp_st_path(const inp_st_file *f);
uint64_t inp_st_header_size(const inp_st_file *f);   /* N */
uint64_t inp_st_file_size(const inp_st_file *f);

size_t inp_st_n_tensors(const inp_st_file *f);
const inp_st_tensor *inp_st_tensor_at(const inp_st_file *f, size_t i); /* data order */
int64_t inp_st_find(const inp_st_file *f, const char *name);         /* -1 if absent */
/* The tensor's bytes (end - begin of them). Valid until inp_st_close(). */
const void *inp_st_data(const inp_st_file *f, size_t i);
/* Drop the pages holding tensor i from memory (mapped files only; no-op for buffers). */
void inp_st_release(inp_st_file *f, size_t i);

/* "__metadata__" entries, in header order. */
size_t inp_st_n_metadata(const inp_st_file *f);
const char *inp_st_metadata_key(const inp_st_file *f, size_t i);
const char *inp_st_metadata_value(const inp_st_file *f, size_t i);

/* Element size in bits of a dtype name (exact, case-sensitive as the format requires);
 * 0 if unknown. */
uint32_t inp_st_dtype_bits(const char *dtype);

#endif
