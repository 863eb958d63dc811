/* pipeline — sequential GPTQ and the importance pass, through the runtime's layer-by-layer
 * forward pass (runtime/runtime.h: rt_embed, rt_layer_forward with a hook, rt_model_set_weight).
 *
 * pl_gptq_run() quantizes the linear weights of every layer with GPTQ, true-sequentially: the
 * calibration chunks' hidden states enter layer 0 as embeddings; inside a layer the groups
 * (the architecture description's groups, rt_model_arch(m)->groups; Llama: q,k,v ->
 * attn_output -> gate,up -> down) are done in order, each group's
 * H (pipeline/hessian.h) being collected with the group's predecessors already quantized; then
 * the layer is run with all its quantized weights and its outputs become the next layer's
 * inputs. So every H describes what the quantized model, not the float one, feeds the layer.
 * Weights are read as F32 from the tensor source (the float originals); each quantized tensor
 * is swapped into the model (rt_model_set_weight) and handed to the caller's emit. token_embd,
 * output and the norms are left to the caller. A model from rt_model_load_deferred has each
 * layer read before it is done and dropped after (rt_model_load_layer / _drop_layer), so the
 * weights in memory are one layer's; the float reference of the asymmetric target is always
 * loaded so, and the quantized model borrows its float weights until they are swapped.
 *
 * pl_imatrix_pass() runs the float model over the chunks and adds every linear weight's input
 * to an importance accumulator (what llama-imatrix collects).
 *
 * Memory: the hidden states of all chunks (n_chunks * n_ctx * n_embd floats), one H (n_ff^2
 * doubles at most), one weight in F32 plus its quantized copy, the model's weights (one layer's
 * when deferred); with the asymmetric target also the float reference's hidden states and the
 * cross term C (like H).
 * Determinism: the runtime, the Hessian and cross-term sums and the solver do not depend on the
 * thread count.
 * Errors: pl_error + one line in msg[PL_MSG_SIZE]; never prints, never exits. */
#ifndef QFORGE_PL_GPTQ_H
#define QFORGE_PL_GPTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "input/input.h"
#include "libquant/lq_gptq.h"
#include "pipeline/imatrix_acc.h"
#include "pipeline/pl_error.h"
#include "runtime/runtime.h"

/* What GPTQ did to one tensor. */
typedef struct {
    const char *name;     /* "blk.3.attn_q.weight" */
    int layer;
    int type;             /* the type it was quantized to */
    int64_t rows, cols;   /* ne[1], ne[0] */
    lq_gptq_result res;   /* losses, damping, retries, dead columns */
    int64_t hess_rows;    /* calibration token rows behind H */
    double rmse;          /* of the decoded weights against the float ones */
} pl_gptq_info;

/* Where the time of a calibration went (seconds, wall clock). */
typedef struct {
    double forward;       /* the runtime's passes (embeddings and layers) */
    double hessian;       /* H and importance sums: copying the inputs, dsyrk, scaling */
    double solver;        /* lq_gptq_quantize */
    double other;         /* reading weights, swapping them in, emit callbacks */
    double total;
    int64_t tokens;       /* n_chunks * n_ctx */
    int n_tensors;        /* weights quantized */
    int retries;          /* failed factorizations over all weights (damping raised) */
} pl_calib_stats;

typedef struct {
    lq_gptq_opts gptq;    /* solver options (nthreads also used for the Hessians' copies) */
    /* Asymmetric target: minimize sum ||W x_f - Q x_q||^2, x_f the float model's input of
     * the weight, x_q the partly quantized model's (instead of ||(W - Q) x_q||^2). A float
     * model loaded from src runs beside m for that. GPTQ then runs on the corrected target
     * (lq_gptq_asym_target); the losses are measured in that objective above its minimum
     * (loss_rtn for the plain rounding of W). Where x_f == x_q (layer 0's q,k,v) W' = W.
     * Default false. */
    bool asym;
    /* Type for the linear weight `name` (GGUF name, ne0 x ne1 = cols x rows): a type
     * lq_gptq_supports(), or -1 to leave the weight as it is (float, not swapped). NULL:
     * every weight to default_type. */
    int (*type_of)(void *user, const char *name, int64_t cols, int64_t rows);
    int default_type;
    /* Receives each quantized tensor: nbytes of GGUF data (valid during the call only) and
     * the figures. Return nonzero to stop (PL_ERR_STOPPED). May be NULL. */
    int (*emit)(void *user, const pl_gptq_info *info, const void *data, size_t nbytes);
    /* Called after each group of a layer with its n (1..ARCH_GROUP_MAX) tensors' figures, in
     * the order quantized; nonzero stops (PL_ERR_STOPPED). May be NULL. */
    int (*group_done)(void *user, int layer, int n_layer, const pl_gptq_info *infos, int n);
    void *user;
    /* When not NULL, the inputs every H is built from are also added to it under the
     * group's weight names (so its in_sum2 is diag(H) * N / 2), for groups with at least
     * one weight to quantize. Borrowed. */
    pl_imatrix_acc *imatrix;
    /* When not NULL, receives the timings (also on failure). */
    pl_calib_stats *stats;
} pl_gptq_opts;

void pl_gptq_opts_init(pl_gptq_opts *o);

/* Quantize every layer's linear weights of m with GPTQ on n_chunks chunks of n_ctx tokens
 * (chunks[n_chunks * n_ctx], e.g. from pl_chunks_cut), reading float weights from src (the
 * source m was loaded from, or any source with the same tensors in F32/F16/BF16). m ends up
 * holding the quantized weights (unless loaded deferred: then its layers are dropped). Errors: PL_ERR_ARG (bad arguments, token out of range, a type
 * the solver cannot write), PL_ERR_MODEL (a weight missing from src or not float: "GPTQ needs
 * float weights"; the solver's failures, e.g. H not factorizable), PL_ERR_NOMEM,
 * PL_ERR_STOPPED (emit or group_done asked to stop), the runtime's errors (pl_from_rt). */
pl_error pl_gptq_run(rt_model *m, inp_source *src, const int32_t *chunks, int n_chunks,
                     int n_ctx, const pl_gptq_opts *o, char *msg);

/* The float model on the chunks (no weight changed): every linear weight's input added to im.
 * stats may be NULL. Errors: the runtime's (pl_from_rt), the accumulator's, PL_ERR_ARG. */
pl_error pl_imatrix_pass(rt_model *m, const int32_t *chunks, int n_chunks, int n_ctx,
                         pl_imatrix_acc *im, pl_calib_stats *stats, char *msg);

#endif
