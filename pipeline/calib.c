/* The calibration job (see calib.h). */
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/calib.h"
#include "pipeline/chunks.h"
#include "pipeline/hessian.h"
#include "pipeline/pl_internal.h"
#include "tokenizer/tokenizer.h"

void pl_calib_opts_init(pl_calib_opts *o)
{
    memset(o, 0, sizeof *o);
    o->n_samples = 128;
    o->gptq = true;
    pl_gptq_opts_init(&o->calib);
    o->calib.asym = true;
    o->calib.gptq.grid = LQ_GPTQ_GRID_WEIGHTED;
}

/* The caller's user pointer travels beside the plan: type_of gets the plan, the other
 * callbacks the caller's pointer. */
typedef struct {
    const pl_calib_plan *plan;
    size_t n_plan;
    const pl_gptq_opts *caller;
} run_ctx;

static int run_type_of(void *user, const char *name, int64_t cols, int64_t rows)
{
    const run_ctx *r = user;
    (void)cols, (void)rows;
    for (size_t i = 0; i < r->n_plan; ++i)
        if (r->plan[i].name && !strcmp(r->plan[i].name, name))
            return r->plan[i].type;
    return -1;
}

static int run_emit(void *user, const pl_gptq_info *info, const void *data, size_t nbytes)
{
    const pl_gptq_opts *c = ((run_ctx *)user)->caller;
    return c->emit ? c->emit(c->user, info, data, nbytes) : 0;
}

static int run_group_done(void *user, int layer, int n_layer, const pl_gptq_info *infos, int n)
{
    const pl_gptq_opts *c = ((run_ctx *)user)->caller;
    return c->group_done ? c->group_done(c->user, layer, n_layer, infos, n) : 0;
}

/* The linear weights of the largest layer as F32. */
static uint64_t layer_f32_bytes(const inp_source *src)
{
    uint64_t best = 0;
    for (int l = 0;; l++) {
        char pre[32];
        const int np = snprintf(pre, sizeof pre, "blk.%d.", l);
        uint64_t sum = 0;
        int found = 0;
        for (int64_t i = 0; i < inp_n_tensors(src); i++) {
            const inp_tensor *t = inp_tensor_at(src, i);
            if (strncmp(t->name, pre, (size_t)np) || t->n_dims != 2)
                continue;
            found = 1;
            sum += (uint64_t)t->ne[0] * (uint64_t)t->ne[1] * sizeof(float);
        }
        if (!found)
            return best;
        if (sum > best)
            best = sum;
    }
}

/* The weights of the job. GPTQ reads a checkpoint layer by layer (rt_model_load_deferred): one
 * layer's F32 weights, the float reference's and the quantized model's shared; a GGUF's are
 * used where they are mapped. The importance pass loads the model whole. */
static uint64_t weights_bytes(const inp_source *src, const pl_calib_opts *o)
{
    if (o->gptq && inp_is_checkpoint(src))
        return layer_f32_bytes(src);
    return rt_weights_bytes(src);
}

/* Mirrors pl_gptq_run's allocations: hidden states (and the float reference's), the group's
 * Hessian + cross term, and the larger of the asymmetric target's and the solver's work for
 * the largest planned tensor. */
uint64_t pl_calib_bytes(const rt_model *m, const inp_source *src, const pl_calib_opts *o,
                        int n_chunks, int n_ctx, uint64_t *weights, uint64_t *hidden,
                        uint64_t *work, uint64_t *held)
{
    const rt_hparams *hp = rt_model_hparams(m);
    const bool asym = o->gptq && o->calib.asym;
    const int nth = o->nthreads > 0 ? o->nthreads : omp_get_max_threads();
    const uint64_t E = (uint64_t)hp->n_embd, F = (uint64_t)hp->n_ff,
                   QD = (uint64_t)hp->n_head * (uint64_t)hp->head_dim;
    const uint64_t wb = weights_bytes(src, o);
    const uint64_t per = (uint64_t)n_ctx * E * sizeof(float);
    uint64_t hid = o->gptq ? (uint64_t)n_chunks * per * (asym ? 2 : 1) + per : per; /* imatrix: chunk by chunk */
    uint64_t wk = rt_model_scratch_bytes(m, 1, n_ctx, nth) * (asym ? 2 : 1);
    uint64_t q = 0;
    if (asym) {
        const uint64_t wmax = (uint64_t)n_ctx * (F > QD ? (F > E ? F : E) : QD);
        hid += 2 * wmax * sizeof(float);
    }
    if (o->gptq) {
        uint64_t n = 0, nel = 0;
        for (size_t i = 0; i < o->n_plan; i++) {
            const int64_t k = inp_find_tensor(src, o->plan[i].name);
            if (k < 0)
                continue;
            const inp_tensor *t = inp_tensor_at(src, k);
            const uint64_t cols = (uint64_t)t->ne[0], rows = (uint64_t)t->ne[1];
            /* the quantized copies swapped into the model: one layer's (the plan's first) */
            int layer = -1;
            if (sscanf(o->plan[i].name, "blk.%d.", &layer) == 1 && layer == 0)
                q += (uint64_t)gguf_row_size(o->plan[i].type, t->ne[0]) * rows;
            if (cols > n)
                n = cols;
            if (cols * rows > nel)
                nel = cols * rows;
        }
        const uint64_t nn = n * n;
        uint64_t group = nn * sizeof(double) + PL_HESS_BLOCK_ROWS * n * sizeof(double); /* pl_hess */
        if (asym)
            group += nn * sizeof(double) + 2 * PL_HESS_BLOCK_ROWS * n * sizeof(double); /* pl_cross */
        group += (asym ? 3 : 2) * nel * sizeof(float) + nel;                           /* do_tensor */
        const uint64_t target = asym ? 2 * nn * sizeof(double) + 2 * nel * sizeof(double) : 0;
        const uint64_t solver = nn * (sizeof(double) + sizeof(float)) + 3 * nel * sizeof(double);
        wk += group + (target > solver ? target : solver);
    } else {
        const arch_desc *ad = rt_model_arch(m);
        uint64_t per_layer = 0; /* linear weights of a layer (7 in Llama) */
        for (size_t g = 0; g < ad->n_groups; g++)
            for (int k = 0; k < ARCH_GROUP_MAX && ad->groups[g].weights[k]; k++)
                per_layer++;
        wk += 2 * (uint64_t)hp->n_layer * per_layer * (F > E ? F : E) * sizeof(double); /* importance sums */
    }
    if (weights)
        *weights = wb;
    if (hidden)
        *hidden = hid;
    if (work)
        *work = wk;
    if (held)
        *held = q;
    return wb + hid + wk + q;
}

/* Tokens of the text and the chunks drawn from them; the chunk length into o. */
static pl_error make_chunks(inp_source *src, const rt_model *m, const char *text, size_t len,
                            pl_calib_opts *o, int32_t **chunks, char *msg)
{
    tok_model *tok = NULL;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    pl_error e = pl_from_rt(rt_error_from_tok(tok_from_gguf(inp_metadata(src), &tok, msg)));
    if (e == PL_OK)
        e = pl_from_rt(rt_error_from_tok(tok_encode(tok, text, len, tok_default_flags(tok), &ids,
                                                    &n_ids, msg)));
    if (e != PL_OK)
        goto out;
    const rt_hparams *hp = rt_model_hparams(m);
    int n_ctx = o->n_ctx;
    if (n_ctx <= 0)
        n_ctx = hp->n_ctx_train > 0 && hp->n_ctx_train < 512 ? hp->n_ctx_train : 512;
    o->n_ctx_used = n_ctx;
    o->n_text_tokens = n_ids;
    if (n_ids < (size_t)n_ctx) {
        e = pl_fail(msg, PL_ERR_FORMAT, "the calibration text has %zu tokens, fewer than one "
                    "chunk of %d", n_ids, n_ctx);
        goto out;
    }
    *chunks = pl_chunks_sample(ids, n_ids, n_ctx, tok_bos(tok), o->n_samples, o->seed);
    if (!*chunks)
        e = pl_fail(msg, PL_ERR_NOMEM, "out of memory for %d chunks of %d tokens", o->n_samples,
                    n_ctx);
    else
        o->n_chunks_used = o->n_samples;
out:
    free(ids);
    tok_free(tok);
    return e;
}

pl_error pl_calib_run(inp_source *src, const char *text, size_t len, pl_calib_opts *o, char *msg)
{
    if (!src || !text || !o || o->n_samples < 1 || o->n_ctx > RT_MAX_TOKENS ||
        (!o->gptq && !o->calib.imatrix) || (o->gptq && o->n_plan && !o->plan))
        return pl_fail(msg, PL_ERR_ARG, "pl_calib_run: bad arguments");
    const int blas_threads = openblas_get_num_threads();
    if (o->nthreads > 0)
        openblas_set_num_threads(o->nthreads);
    rt_model *m = NULL;
    int32_t *chunks = NULL;
    pl_error e = PL_OK;
    const uint64_t wb = weights_bytes(src, o);
    if (o->max_memory && wb > o->max_memory) {
        e = pl_fail(msg, PL_ERR_BUDGET, "the weights need %.1f MiB%s, more than the memory budget of %.1f MiB",
                    (double)wb / 1048576, wb != rt_weights_bytes(src) ? " (one layer's: GPTQ reads them layer by layer)" : "",
                    (double)o->max_memory / 1048576);
        goto out;
    }
    /* GPTQ reads a checkpoint's weights layer by layer; the importance pass runs whole
     * chunks through every layer */
    if ((e = pl_from_rt(o->gptq ? rt_model_load_deferred(src, &m, msg) : rt_model_load(src, &m, msg))) != PL_OK)
        goto out;
    rt_model_set_threads(m, o->nthreads);
    if ((e = make_chunks(src, m, text, len, o, &chunks, msg)) != PL_OK)
        goto out;
    const int n_ctx = o->n_ctx_used;
    if (o->max_memory) {
        uint64_t w, h, k, q;
        const uint64_t need = pl_calib_bytes(m, src, o, o->n_samples, n_ctx, &w, &h, &k, &q);
        if (need > o->max_memory) {
            e = pl_fail(msg, PL_ERR_BUDGET,
                        "needs %.1f MiB (weights %.1f, hidden states of %d x %d tokens %.1f, scratch and "
                        "solver %.1f, quantized tensors %.1f), more than the memory budget of %.1f MiB",
                        (double)need / 1048576, (double)w / 1048576, o->n_samples, n_ctx, (double)h / 1048576,
                        (double)k / 1048576, (double)q / 1048576, (double)o->max_memory / 1048576);
            goto out;
        }
    }
    if (!o->gptq) {
        e = pl_imatrix_pass(m, chunks, o->n_samples, n_ctx, o->calib.imatrix, o->calib.stats, msg);
        goto out;
    }
    run_ctx rc = {o->plan, o->n_plan, &o->calib};
    pl_gptq_opts c = o->calib;
    c.type_of = run_type_of;
    c.emit = run_emit;
    c.group_done = run_group_done;
    c.user = &rc;
    c.gptq.nthreads = o->nthreads;
    e = pl_gptq_run(m, src, chunks, o->n_samples, n_ctx, &c, msg);
out:
    openblas_set_num_threads(blas_threads);
    free(chunks);
    rt_model_free(m);
    return e;
}
