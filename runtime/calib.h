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
 * Memory: the hidden states of all chunks (n_chunks * n_ctx * n_embd floats), one H
 * (n_ff^2 doubles at most), one weight in F32 plus its quantized copy.
 * Determinism: the runtime, the Hessian sums (OpenBLAS dsyrk, which splits work over
 * the output only) and the solver do not depend on the thread count.
 * Errors: rt_error + one line in msg[RT_MSG_SIZE]; never prints, never exits.
 */
#ifndef QFORGE_RT_CALIB_H
#define QFORGE_RT_CALIB_H

#include <stddef.h>
#include <stdint.h>

#include "libquant/lq_gptq.h"
#include "libsrc/src.h"
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

/* ---- sequential GPTQ ---- */

/* What GPTQ did to one tensor. */
typedef struct {
    const char *name;     /* "blk.3.attn_q.weight" */
    int layer;
    int type;             /* the type it was quantized to */
    int64_t rows, cols;   /* ne[1], ne[0] */
    lq_gptq_result res;   /* losses, damping, retries, dead columns */
    int64_t hess_rows;    /* calibration token rows behind H */
} rt_calib_info;

typedef struct {
    lq_gptq_opts gptq;    /* solver options (nthreads also used for the Hessians' copies) */
    /* Type for the linear weight `name` (GGUF name, ne0 x ne1 = cols x rows): a type
     * lq_gptq_supports(), or -1 to leave the weight as it is (float, not swapped). NULL:
     * every weight to default_type. */
    int (*type_of)(void *user, const char *name, int64_t cols, int64_t rows);
    int default_type;
    /* Receives each quantized tensor: nbytes of GGUF data (valid during the call only) and
     * the figures. Return nonzero to stop (rt_calib_gptq then returns RT_ERR_HOOK). May be
     * NULL. */
    int (*emit)(void *user, const rt_calib_info *info, const void *data, size_t nbytes);
    void *user;
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
rt_error rt_calib_gptq(rt_model *m, src_source *src, const int32_t *chunks, int n_chunks,
                       int n_ctx, const rt_calib_opts *o, char *msg);

#endif
