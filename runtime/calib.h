/* runtime — GPTQ calibration through the runtime's layer-by-layer forward pass.
 *
 * Hessians: for a linear layer y = W x, H = 2/N sum x x^T over the N calibration token rows
 * x that reach it (accumulated in double). The layers of a group share their input, so
 * attn_q/attn_k/attn_v share one H and ffn_gate/ffn_up another.
 *
 * rt_calib_gptq() quantizes the seven linear weights of every layer with GPTQ, sequentially:
 * the calibration chunks' hidden states enter layer 0 as embeddings; inside a layer the
 * groups are done in the order q,k,v -> attn_output -> gate,up -> down, each group's H being
 * collected with the group's predecessors already quantized (true-sequential); then the
 * layer is run with all its quantized weights and its outputs become the next layer's
 * inputs. So every H describes what the quantized model, not the float one, feeds the layer.
 * Weights are read as F32 from the tensor source (the float originals); each quantized
 * tensor is swapped into the model (rt_model_set_weight) and handed to the caller's emit.
 * token_embd, output and the norms are left to the caller.
 *
 * rt_calib_run() is the whole job as qforge-quantize does it: model and tokenizer from a
 * tensor source, calibration text -> seeded chunks -> rt_calib_gptq() on a per-tensor type
 * plan, or a float-model pass that only collects importance statistics (llama-imatrix).
 * rt_imatrix holds those statistics and writes llama.cpp's imatrix GGUF format.
 *
 * Memory: the hidden states of all chunks (n_chunks * n_ctx * n_embd floats), one H
 * (n_ff^2 doubles at most), one weight in F32 plus its quantized copy; with the asymmetric
 * target also a float model, its hidden states and the cross term C (like H).
 * Determinism: the runtime, the Hessian and cross-term sums (OpenBLAS dsyrk/dgemm over fixed
 * 1024-row blocks; OpenBLAS splits work over the output only) and the solver do not depend on
 * the thread count.
 * Errors: rt_error + one line in msg[RT_MSG_SIZE]; never prints, never exits.
 */
#ifndef QFORGE_RT_CALIB_H
#define QFORGE_RT_CALIB_H

#include <stddef.h>
#include <stdint.h>

#include "libgguf/gguf.h"
#include "libquant/lq_gptq.h"
#include "input/input.h"
#include "runtime/runtime.h"

/* ---- Hessian accumulator ---- */
typedef struct rt_hess rt_hess;

/* An empty n x n accumulator (1 <= n <= 65536); NULL when out of memory or n is bad. */
rt_hess *rt_hess_create(int n);
void rt_hess_free(rt_hess *h);
void rt_hess_reset(rt_hess *h);
/* Add rows x (rows x n floats, row-major). RT_ERR_ARG for bad arguments or a non-finite
 * value, RT_ERR_NOMEM. */
rt_error rt_hess_add(rt_hess *h, const float *x, int rows, char *msg);
int64_t rt_hess_count(const rt_hess *h); /* rows added since the last reset */
/* H = 2/count * sum x x^T, full symmetric n x n (all zero before any row), owned by h and
 * valid until the next add/reset/free. */
const double *rt_hess_matrix(rt_hess *h);

/* ---- calibration chunks ---- */

/* Cut tokens into chunks of n_ctx as llama.cpp's imatrix and perplexity do: chunk c is
 * tokens[c*n_ctx .. (c+1)*n_ctx), its first token replaced by bos (when bos >= 0); at most
 * max_chunks (<= 0: all whole chunks). Returns a malloc'ed array of *n_chunks * n_ctx tokens
 * (caller frees), or NULL when fewer than one chunk fits (*n_chunks = 0) or out of memory. */
int32_t *rt_calib_chunks(const int32_t *tokens, size_t n_tokens, int n_ctx, int32_t bos,
                         int max_chunks, int *n_chunks);

/* n_samples chunks of n_ctx tokens chosen at random with a seeded generator (splitmix64; the
 * same seed gives the same chunks on every machine), first token replaced by bos (>= 0):
 *   - when the text holds at least n_samples whole chunks (cut as rt_calib_chunks does),
 *     n_samples distinct ones of them, in text order;
 *   - otherwise windows at offsets drawn uniformly from 0..n_tokens-n_ctx (they may overlap).
 * Returns a malloc'ed array of n_samples * n_ctx tokens, or NULL when n_tokens < n_ctx, an
 * argument is bad or memory is short. */
int32_t *rt_calib_sample(const int32_t *tokens, size_t n_tokens, int n_ctx, int32_t bos,
                         int n_samples, uint64_t seed);

/* ---- importance statistics (what llama-imatrix collects) ---- */

/* Per weight: the sum of x^2 and of x per input column over every token row x that entered
 * it, and the number of rows. Opaque; owns its entries. */
typedef struct rt_imatrix rt_imatrix;

rt_imatrix *rt_imatrix_create(void); /* NULL when out of memory */
void rt_imatrix_free(rt_imatrix *im);
/* Add rows x (rows x cols floats) as the input of weight `name` (shorter than GGUF_MAX_NAME).
 * An entry's width is fixed by its first add. RT_ERR_ARG (bad arguments, other width,
 * non-finite value), RT_ERR_NOMEM. */
rt_error rt_imatrix_add(rt_imatrix *im, const char *name, const float *x, int rows, int cols,
                        char *msg);
size_t rt_imatrix_n_entries(const rt_imatrix *im);
/* The sums of weight `name` (cols values each, valid until the next add/free) and its row
 * count; NULL when absent. */
const double *rt_imatrix_sums(const rt_imatrix *im, const char *name, int *cols,
                              const double **sum, int64_t *count);
/* Declare llama.cpp's imatrix GGUF (tools/imatrix/imatrix.cpp, save_imatrix) on an empty
 * writer: KVs general.type = "imatrix", imatrix.datasets = [dataset], imatrix.chunk_count,
 * imatrix.chunk_size (u32); per entry in name order the F32 tensors NAME.in_sum2 [cols, 1],
 * NAME.counts [1, 1] and NAME.in_sum [cols, 1]. Then gguf_writer_open() the writer and call
 * rt_imatrix_write_data(). RT_ERR_ARG (no entries, bad arguments), RT_ERR_NOMEM. */
rt_error rt_imatrix_declare(const rt_imatrix *im, gguf_writer *w, const char *dataset,
                            uint32_t chunk_count, uint32_t chunk_size, char *msg);
/* Write the tensor data declared above. RT_ERR_IO (with the writer's message), RT_ERR_NOMEM. */
rt_error rt_imatrix_write_data(const rt_imatrix *im, gguf_writer *w, char *msg);

/* ---- sequential GPTQ ---- */

/* What GPTQ did to one tensor. */
typedef struct {
    const char *name;     /* "blk.3.attn_q.weight" */
    int layer;
    int type;             /* the type it was quantized to */
    int64_t rows, cols;   /* ne[1], ne[0] */
    lq_gptq_result res;   /* losses, damping, retries, dead columns */
    int64_t hess_rows;    /* calibration token rows behind H */
    double rmse;          /* of the decoded weights against the float ones */
} rt_calib_info;

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
} rt_calib_stats;

typedef struct {
    lq_gptq_opts gptq;    /* solver options (nthreads also used for the Hessians' copies) */
    /* Asymmetric target: minimize sum ||W x_f - Q x_q||^2, x_f the float model's input of
     * the weight, x_q the partly quantized model's (instead of ||(W - Q) x_q||^2). A float
     * model loaded from src runs beside m for that. GPTQ then runs on the corrected target
     * W' = W + W (C - H) (H + lambda I)^-1, C = 2/N sum x_f x_q^T, lambda the damping; the
     * losses are measured in that objective above its minimum (loss_rtn for the plain
     * rounding of W). Where x_f == x_q (layer 0's q,k,v) W' = W. Default false. */
    bool asym;
    /* Type for the linear weight `name` (GGUF name, ne0 x ne1 = cols x rows): a type
     * lq_gptq_supports(), or -1 to leave the weight as it is (float, not swapped). NULL:
     * every weight to default_type. */
    int (*type_of)(void *user, const char *name, int64_t cols, int64_t rows);
    int default_type;
    /* Receives each quantized tensor: nbytes of GGUF data (valid during the call only) and
     * the figures. Return nonzero to stop (rt_calib_gptq then returns RT_ERR_HOOK). May be
     * NULL. */
    int (*emit)(void *user, const rt_calib_info *info, const void *data, size_t nbytes);
    /* Called after each group of a layer with its n (1..3) tensors' figures, in the order
     * quantized; nonzero stops (RT_ERR_HOOK). May be NULL. */
    int (*group_done)(void *user, int layer, int n_layer, const rt_calib_info *infos, int n);
    void *user;
    /* When not NULL, the inputs every H is built from are also added to it under the
     * group's weight names (so its in_sum2 is diag(H) * N / 2), for groups with at least
     * one weight to quantize. Borrowed. */
    rt_imatrix *imatrix;
    /* When not NULL, receives the timings (also on failure). */
    rt_calib_stats *stats;
} rt_calib_opts;

void rt_calib_opts_init(rt_calib_opts *o);

/* Quantize every layer's linear weights of m with GPTQ on n_chunks chunks of n_ctx tokens
 * (chunks[n_chunks * n_ctx], e.g. from rt_calib_chunks), reading float weights from src (the
 * source m was loaded from, or any source with the same tensors in F32/F16/BF16).
 * m ends up holding the quantized weights. Errors: RT_ERR_ARG (bad arguments, token out of
 * range, a type the solver cannot write), RT_ERR_MODEL (a weight missing from src or not
 * float: "GPTQ needs float weights"), RT_ERR_NOMEM, RT_ERR_UNSUPPORTED (a type the runtime
 * cannot run), RT_ERR_HOOK (emit asked to stop), and the solver's failures as RT_ERR_MODEL
 * with its message (e.g. H not factorizable). */
rt_error rt_calib_gptq(rt_model *m, inp_source *src, const int32_t *chunks, int n_chunks,
                       int n_ctx, const rt_calib_opts *o, char *msg);

/* The float model on the chunks (no weight changed): every linear weight's input added to
 * im (llama-imatrix's statistics). stats may be NULL. Errors as rt_layer_forward, RT_ERR_NOMEM. */
rt_error rt_calib_imatrix(rt_model *m, const int32_t *chunks, int n_chunks, int n_ctx,
                          rt_imatrix *im, rt_calib_stats *stats, char *msg);

/* ---- the whole job ---- */

/* One weight of the plan: GGUF name and the type the mixture picked for it. */
typedef struct {
    const char *name;
    int type;
} rt_calib_plan;

typedef struct {
    int n_samples;        /* chunks, default 128 */
    int n_ctx;            /* tokens per chunk; <= 0 (default): min(512, model context) */
    uint64_t seed;        /* chunk choice (rt_calib_sample), default 0 */
    int nthreads;         /* runtime, solver and OpenBLAS threads; <= 0: all cores. OpenBLAS's
                             count is process-global: rt_calib_run sets it for its duration and
                             restores it (not safe beside other OpenBLAS users in threads) */
    bool gptq;            /* true: GPTQ; false: only the float model's importance (imatrix) */
    /* GPTQ: the weights to quantize and their types (lq_gptq_supports). Linear weights not
     * listed stay float. Borrowed. */
    const rt_calib_plan *plan;
    size_t n_plan;
    rt_calib_opts calib;  /* solver options, emit, group_done, user, imatrix, stats; its
                             type_of/default_type are replaced by the plan, and
                             gptq.nthreads by nthreads. rt_calib_run_opts_init sets asym and
                             the weighted grid (LQ_GPTQ_GRID_WEIGHTED): what measured best on
                             the demo model (docs/gptq.md) */
    uint64_t max_memory;  /* > 0: refuse (RT_ERR_BUDGET) before the large allocations when the
                             job's estimate (rt_calib_run's comment) exceeds it */
    int n_ctx_used;       /* out: the chunk length used */
    int n_chunks_used;    /* out: the chunks used (n_samples) */
    size_t n_text_tokens; /* out: tokens of the whole text */
} rt_calib_run_opts;

void rt_calib_run_opts_init(rt_calib_run_opts *o);

/* Memory budget (o->max_memory): the weights are checked before the model is loaded (with the
 * asymmetric target a checkpoint's F32 weights count twice: a float model runs beside), then,
 * with the chunks known, weights + hidden states of every chunk + the runtime's scratch + the
 * largest group's Hessian, cross term and solver work + every quantized tensor twice (the
 * copy swapped into the model and the one emit hands over, which the caller is assumed to
 * keep). rt_calib_run_bytes() gives that estimate.
 * Load the model of src (float weights), tokenize text (len bytes, as llama-imatrix does:
 * the tokenizer's default specials), draw the chunks (rt_calib_sample with the tokenizer's
 * BOS), then GPTQ (o->gptq) every weight of the plan through rt_calib_gptq — or run
 * rt_calib_imatrix into o->calib.imatrix (required then). Errors: RT_ERR_FORMAT (text shorter
 * than one chunk), those of rt_model_load/tok_from_gguf/rt_calib_gptq, RT_ERR_ARG. */
rt_error rt_calib_run(inp_source *src, const char *text, size_t len, rt_calib_run_opts *o,
                      char *msg);
/* The estimate above for model m (loaded from src) and n_chunks chunks of n_ctx tokens;
 * *weights, *hidden, *work (scratch, Hessians, solver) and *held (quantized tensors) receive
 * its parts when not NULL. */
uint64_t rt_calib_run_bytes(const rt_model *m, const inp_source *src, const rt_calib_run_opts *o,
                            int n_chunks, int n_ctx, uint64_t *weights, uint64_t *hidden,
                            uint64_t *work, uint64_t *held);

#endif
