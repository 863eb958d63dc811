/* Importance matrices as llama.cpp's llama-imatrix writes them: read for quantization, and
 * written from the statistics a calibration collected (the GGUF format only).
 *
 * Formats:
 *   - GGUF (current): for each weight W, tensors "W.in_sum2" (F32, [n_per_row, n_mat]: sums of
 *     squared activations per input column) and "W.counts" (F32, [1, n_mat]: how many
 *     activations were summed), optionally "W.in_sum" (ignored). Metadata imatrix.datasets
 *     (string array), imatrix.chunk_count and imatrix.chunk_size (u32) must be present.
 *   - legacy .dat: i32 n_entries; per entry i32 name length, name, i32 ncall, i32 nval,
 *     nval f32; optionally i32 chunk count, i32 length, dataset name.
 *
 * The importance of column i of matrix j is in_sum2[j][i] / round(counts[j]) (1 when the count
 * is 0); for legacy files sums / ncall (the sums as stored when ncall is 0) — exactly what
 * llama-quantize feeds its quantizers. Non-finite values are rejected, as llama-quantize does.
 *
 * Errors use input's inp_error and INP_MSG_SIZE messages. Never prints or exits.
 */
#ifndef QFORGE_INP_IMATRIX_H
#define QFORGE_INP_IMATRIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "libgguf/gguf.h"
#include "input/input.h"

typedef struct inp_imatrix inp_imatrix;

/* Read a GGUF or legacy imatrix file. On success *out is owned by the caller. */
inp_error inp_imatrix_load(const char *path, inp_imatrix **out, char *msg);
void inp_imatrix_free(inp_imatrix *im);

size_t inp_imatrix_n_entries(const inp_imatrix *im);
const char *inp_imatrix_name(const inp_imatrix *im, size_t i); /* sorted by name */
/* Importance values of weight `name` (n = n_per_row * n_mat floats), NULL if absent.
 * Valid until inp_imatrix_free(). */
const float *inp_imatrix_find(const inp_imatrix *im, const char *name, size_t *n);
/* Chunks the matrix was computed on (0 if unknown). */
int64_t inp_imatrix_chunk_count(const inp_imatrix *im);
/* First dataset name, or NULL. */
const char *inp_imatrix_dataset(const inp_imatrix *im);
bool inp_imatrix_is_legacy(const inp_imatrix *im);

/* ---- writing llama-imatrix's GGUF (tools/imatrix/imatrix.cpp, save_imatrix) ---- */

/* The statistics of one weight: per input column the sums of x^2 and of x over `count` token
 * rows. Borrowed by the calls below. */
typedef struct {
    const char *name;     /* GGUF weight name ("blk.0.attn_q.weight"), < GGUF_MAX_NAME bytes */
    int cols;
    int64_t count;
    const double *sum2;   /* cols values */
    const double *sum;    /* cols values */
} inp_imatrix_sums;

/* Declare the file on an empty writer: KVs general.type = "imatrix", imatrix.datasets =
 * [dataset], imatrix.chunk_count, imatrix.chunk_size (u32); per entry in name order the F32
 * tensors NAME.in_sum2 [cols], NAME.counts [1] and NAME.in_sum [cols]. Then gguf_writer_open()
 * the writer and call inp_imatrix_write_data() with the same entries. INP_ERR_ARG (no entries,
 * bad arguments, a name the writer refuses), INP_ERR_NOMEM. */
inp_error inp_imatrix_declare(gguf_writer *w, const inp_imatrix_sums *e, size_t n,
                              const char *dataset, uint32_t chunk_count, uint32_t chunk_size,
                              char *msg);
/* Write the tensor data declared above (sums and counts rounded to F32). INP_ERR_IO (with the
 * writer's message), INP_ERR_NOMEM, INP_ERR_ARG. */
inp_error inp_imatrix_write_data(gguf_writer *w, const inp_imatrix_sums *e, size_t n, char *msg);

#endif
