/* pipeline — the calibration job: model and tokenizer from a tensor source, calibration text
 * -> seeded chunks -> sequential GPTQ on a per-tensor type plan (pipeline/gptq.h), or a
 * float-model pass that only collects importance statistics (llama-imatrix).
 * Errors: pl_error + one line in msg[PL_MSG_SIZE]; never prints, never exits. */
#ifndef QFORGE_PL_CALIB_H
#define QFORGE_PL_CALIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "input/input.h"
#include "pipeline/gptq.h"
#include "pipeline/pl_error.h"
#include "runtime/runtime.h"

/* One weight of the plan: GGUF name and the type the mixture picked for it. */
typedef struct {
    const char *name;
    int type;
} pl_calib_plan;

typedef struct {
    int n_samples;        /* chunks, default 128 */
    int n_ctx;            /* tokens per chunk; <= 0 (default): min(512, model context) */
    uint64_t seed;        /* chunk choice (pl_chunks_sample), default 0 */
    int nthreads;         /* runtime, solver and OpenBLAS threads; <= 0: all cores. OpenBLAS's
                             count is process-global: pl_calib_run sets it for its duration and
                             restores it (not safe beside other OpenBLAS users in threads) */
    bool gptq;            /* true: GPTQ; false: only the float model's importance (imatrix) */
    /* GPTQ: the weights to quantize and their types (lq_gptq_supports). Linear weights not
     * listed stay float. Borrowed. */
    const pl_calib_plan *plan;
    size_t n_plan;
    pl_gptq_opts calib;   /* solver options, emit, group_done, user, imatrix, stats; its
                             type_of/default_type are replaced by the plan, and
                             gptq.nthreads by nthreads. pl_calib_opts_init sets asym and the
                             weighted grid (LQ_GPTQ_GRID_WEIGHTED): what measured best on the
                             demo model (docs/gptq.md) */
    uint64_t max_memory;  /* > 0: refuse (PL_ERR_BUDGET) before the large allocations when the
                             job's estimate (pl_calib_bytes) exceeds it */
    int n_ctx_used;       /* out: the chunk length used */
    int n_chunks_used;    /* out: the chunks used (n_samples) */
    size_t n_text_tokens; /* out: tokens of the whole text */
} pl_calib_opts;

void pl_calib_opts_init(pl_calib_opts *o);

/* Memory budget (o->max_memory): the weights are checked before the model is loaded (GPTQ
 * reads a checkpoint layer by layer: one layer's F32 weights, shared by the float reference
 * of the asymmetric target; a GGUF's mapped weights count whole), then, with the chunks
 * known, weights + hidden states of every chunk + the runtime's scratch + the largest group's
 * Hessian, cross term and solver work + one layer's quantized tensors (swapped into the model;
 * each is written to the output as soon as it is final). pl_calib_bytes() gives that estimate. The first refusal's message starts "the weights
 * need", the second's "needs".
 * Load the model of src (float weights), tokenize text (len bytes, as llama-imatrix does:
 * the tokenizer's default specials), draw the chunks (pl_chunks_sample with the tokenizer's
 * BOS), then GPTQ (o->gptq) every weight of the plan through pl_gptq_run — or run
 * pl_imatrix_pass into o->calib.imatrix (required then). Errors: PL_ERR_FORMAT (text shorter
 * than one chunk; a tokenizer format error), PL_ERR_BUDGET, those of rt_model_load (pl_from_rt),
 * the tokenizer's and pl_gptq_run's, PL_ERR_ARG. */
pl_error pl_calib_run(inp_source *src, const char *text, size_t len, pl_calib_opts *o, char *msg);

/* The estimate above for model m (loaded from src) and n_chunks chunks of n_ctx tokens;
 * *weights, *hidden, *work (scratch, Hessians, solver) and *held (quantized tensors) receive
 * its parts when not NULL. */
uint64_t pl_calib_bytes(const rt_model *m, const inp_source *src, const pl_calib_opts *o,
                        int n_chunks, int n_ctx, uint64_t *weights, uint64_t *hidden,
                        uint64_t *work, uint64_t *held);

#endif
