/* Sequential GPTQ and the importance pass through the runtime (see gptq.h). */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/gptq.h"
#include "pipeline/hessian.h"
#include "pipeline/pl_internal.h"
#include "pipeline/pl_mpi.h"

void pl_gptq_opts_init(pl_gptq_opts *o)
{
    memset(o, 0, sizeof *o);
    lq_gptq_opts_init(&o->gptq);
    o->default_type = GGUF_Q4_K;
}

/* ---------------------------------------------------------------- collecting a group's input */

typedef struct {
    int layer;
    rt_hook_point point;
    pl_hess *h;               /* NULL: capture only */
    int cols;                 /* expected input width */
    pl_error err;             /* first failure inside the hook */
    int seen;
    char *msg;
    pl_imatrix_acc *im;       /* or NULL */
    char names[ARCH_GROUP_MAX][GGUF_MAX_NAME]; /* the group's weights, for im */
    int n_names;
    float *capture;           /* or NULL: receives a copy of the input (n_ctx x cols) */
    double seconds;           /* spent in the accumulation */
} collect_state;

static int collect_hook(void *user, int layer, rt_hook_point point, const float *x, int n_tokens,
                        int n_cols)
{
    collect_state *s = user;
    if (layer != s->layer || point != s->point)
        return 0;
    const double t0 = pl_now();
    s->seen = 1;
    if (n_cols != s->cols)
        s->err = pl_fail(s->msg, PL_ERR_MODEL, "layer %d: the runtime feeds %d columns, the "
                         "weights have %d", layer, n_cols, s->cols);
    else if (s->h)
        s->err = pl_hess_add(s->h, x, n_tokens, s->msg);
    if (s->capture && s->err == PL_OK)
        memcpy(s->capture, x, (size_t)n_tokens * (size_t)n_cols * sizeof(float));
    for (int k = 0; k < s->n_names && s->err == PL_OK; ++k)
        s->err = pl_imatrix_acc_add(s->im, s->names[k], x, n_tokens, n_cols, s->msg);
    s->seconds += pl_now() - t0;
    return 1; /* the rest of the layer is not needed */
}

/* Run layer l of one model on a copy of one chunk's hidden states until the hook has seen
 * the group's input. */
static pl_error collect_chunk(rt_model *m, int l, const float *hidden, float *tmp, size_t per,
                              int n_ctx, collect_state *cs, const char *what,
                              pl_calib_stats *st, char *msg)
{
    const rt_hook hook = {collect_hook, cs};
    memcpy(tmp, hidden, per * sizeof(float));
    cs->seen = 0;
    char lmsg[RT_MSG_SIZE];
    const double t0 = pl_now(), h0 = cs->seconds;
    rt_error e = rt_layer_forward(m, l, tmp, n_ctx, &hook, lmsg);
    st->forward += pl_now() - t0 - (cs->seconds - h0);
    if (cs->err != PL_OK)
        return cs->err;
    if (e != RT_ERR_HOOK || !cs->seen) {
        if (e == RT_OK)
            return pl_fail(msg, PL_ERR_MODEL, "layer %d: the runtime never reached the "
                           "inputs of %s", l, what);
        return pl_fail(msg, pl_from_rt(e), "%s", lmsg);
    }
    return PL_OK;
}

/* ---------------------------------------------------------------- one tensor */

typedef struct {
    char name[GGUF_MAX_NAME];
    int64_t idx, rows, cols;
    int type;
} job;

/* W := the asymmetric target (lq_gptq_asym_rhs, then _apply); release (the group's last
 * tensor): the cross term is freed as soon as it has been read, before the factorization. */
static lq_error asym_target(float *W, const job *jb, const double *H, const double *C,
                            pl_cross **release, const lq_gptq_opts *go)
{
    double *M = malloc((size_t)jb->rows * (size_t)jb->cols * sizeof(double));
    if (!M)
        return LQ_ERR_NOMEM;
    lq_error e = lq_gptq_asym_rhs(W, jb->rows, jb->cols, H, C, M);
    if (release && *release) {
        pl_cross_free(*release);
        *release = NULL;
    }
    if (e == LQ_OK)
        e = lq_gptq_asym_apply(W, jb->rows, jb->cols, H, go->damp, M, go->nthreads);
    free(M);
    return e;
}

/* GPTQ of one tensor on H (and C for the asymmetric target) into q (rows x rs bytes); info
 * receives the losses and rmse. release (the group's last tensor): the cross term is freed
 * once the target is made, before the solver allocates. */
static pl_error solve_tensor(inp_source *src, const job *jb, const double *H, const double *C,
                             pl_cross **release, const pl_gptq_opts *o, pl_calib_stats *st,
                             pl_gptq_info *info, void *q, char *msg)
{
    const size_t nel = (size_t)jb->rows * (size_t)jb->cols;
    double t0 = pl_now();
    float *W = malloc((C ? 3 : 2) * nel * sizeof(float)), *deq = W ? W + nel : NULL;
    float *Wt = C && W ? W + 2 * nel : NULL; /* the asymmetric target */
    pl_error e = PL_OK;
    if (!W) {
        e = pl_fail(msg, PL_ERR_NOMEM, "%s: out of memory", jb->name);
        goto out;
    }
    char smsg[INP_MSG_SIZE];
    inp_error se = inp_read_f32(src, jb->idx, 0, jb->rows, W, smsg);
    if (se != INP_OK) {
        e = pl_fail(msg, se == INP_ERR_NOMEM ? PL_ERR_NOMEM : PL_ERR_MODEL,
                    "%s: GPTQ needs float weights: %s", jb->name, smsg);
        goto out;
    }
    inp_release(src, jb->idx);
    char lmsg[LQ_MSG_SIZE];
    const lq_gptq_opts go = o->gptq;
    double t1 = pl_now();
    st->other += t1 - t0;
    if (Wt) {
        memcpy(Wt, W, nel * sizeof(float));
        const lq_error te = asym_target(Wt, jb, H, C, release, &go);
        if (te != LQ_OK) {
            e = te == LQ_ERR_NOMEM ? pl_fail(msg, PL_ERR_NOMEM, "%s: out of memory", jb->name)
                                   : pl_fail(msg, PL_ERR_MODEL, "%s: the asymmetric target is not "
                                             "defined (H + damping not positive definite)", jb->name);
            goto out;
        }
    }
    if (release && *release) {
        pl_cross_free(*release);
        *release = NULL;
    }
    lq_error le = lq_gptq_quantize(jb->type, Wt ? Wt : W, jb->rows, jb->cols, H, &go, q,
                                   deq, &info->res, lmsg);
    if (le == LQ_OK && Wt && !go.skip_loss)
        le = lq_gptq_rtn_loss(jb->type, W, Wt, jb->rows, jb->cols, H, go.grid,
                              &info->res.loss_rtn, lmsg);
    t0 = pl_now();
    st->solver += t0 - t1;
    if (le != LQ_OK) {
        e = pl_fail(msg, pl_from_lq(le), "%s: GPTQ: %s", jb->name, lmsg);
        goto out;
    }
    double sq = 0;
    for (size_t i = 0; i < nel; ++i) {
        const double d = (double)W[i] - deq[i];
        sq += d * d;
    }
    info->rmse = nel ? sqrt(sq / (double)nel) : 0;
out:
    st->other += pl_now() - t0;
    free(W);
    return e;
}

/* Rank 0's outcome for one tensor to every rank (pl_mpi.h): its status, then the bytes and
 * the figures. */
static pl_error share_tensor(const job *jb, pl_error e, void *q, size_t nbytes,
                             pl_gptq_info *info, char *msg)
{
    int status = (int)e;
    pl_error me = pl_mpi_bcast(&status, sizeof status, msg);
    if (me != PL_OK)
        return me;
    if (status != PL_OK)
        return pl_mpi_rank() == 0 ? e : pl_fail(msg, (pl_error)status, "%s: rank 0 failed", jb->name);
    if ((me = pl_mpi_bcast(q, nbytes, msg)) == PL_OK && (me = pl_mpi_bcast(&info->res, sizeof info->res, msg)) == PL_OK)
        me = pl_mpi_bcast(&info->rmse, sizeof info->rmse, msg);
    return me;
}

/* Quantize one tensor (rank 0; the others receive it), swap it into m, hand it to emit (rank
 * 0); *info receives the figures. */
static pl_error do_tensor(rt_model *m, inp_source *src, const job *jb, int layer,
                          const double *H, const double *C, pl_cross **release, int64_t hess_rows,
                          const pl_gptq_opts *o, pl_calib_stats *st, pl_gptq_info *info,
                          char *msg)
{
    const size_t rs = lq_row_size(jb->type, jb->cols);
    if (!rs)
        return pl_fail(msg, PL_ERR_ARG, "%s: %lld columns do not fit %s blocks", jb->name,
                       (long long)jb->cols, gguf_type_info(jb->type)->name);
    if ((uint64_t)jb->rows > SIZE_MAX / rs ||
        (uint64_t)jb->rows > SIZE_MAX / sizeof(float) / 3 / (uint64_t)jb->cols)
        return pl_fail(msg, PL_ERR_ARG, "%s: tensor too large", jb->name);
    const bool root = pl_mpi_rank() == 0;
    const size_t nbytes = (size_t)jb->rows * rs;
    void *q = malloc(nbytes);
    if (!q)
        return pl_fail(msg, PL_ERR_NOMEM, "%s: out of memory", jb->name);
    memset(info, 0, sizeof *info);
    info->name = jb->name;
    info->layer = layer;
    info->type = jb->type;
    info->rows = jb->rows;
    info->cols = jb->cols;
    info->hess_rows = hess_rows;
    pl_error e = PL_OK;
    if (root) {
        e = solve_tensor(src, jb, H, C, release, o, st, info, q, msg);
    } else if (release) {
        pl_cross_free(*release);
        *release = NULL;
    }
    if (pl_mpi_size() > 1)
        e = share_tensor(jb, e, q, nbytes, info, msg);
    const double t0 = pl_now();
    if (e == PL_OK) {
        st->n_tensors++;
        st->retries += info->res.retries;
        char rmsg[RT_MSG_SIZE];
        rt_error re = rt_model_set_weight(m, jb->name, jb->type, q, rmsg);
        if (re != RT_OK)
            e = pl_fail(msg, pl_from_rt(re), "%s", rmsg);
        else if (root && o->emit && o->emit(o->user, info, q, nbytes))
            e = pl_fail(msg, PL_ERR_STOPPED, "%s: stopped by the caller", jb->name);
    }
    st->other += pl_now() - t0;
    free(q);
    return e;
}

/* ---------------------------------------------------------------- the driver */

typedef struct {
    rt_model *m;
    inp_source *src;
    pl_gptq_opts o;
    pl_calib_stats st;
    int n_chunks, n_ctx, n_layer;
    size_t per;          /* floats of one chunk's hidden states */
    float *hidden;       /* n_chunks x per: the quantized model's */
    float *tmp;          /* per */
    /* the float reference of the asymmetric target: a float model, its hidden states, and
     * the two inputs of the current chunk */
    rt_model *mf;
    float *hidden_f;
    float *xf, *xq;      /* per worker: n_ctx x wmax, wmax = max(n_ff, n_head * head_dim, n_embd) */
    size_t wmax;
    /* per-thread passes: nw workers, each a model (clones of m and mf beside the originals)
     * running whole chunks on one thread; what they capture is summed in chunk order */
    int nw, nth;
    rt_model **qm, **fm;
    pl_error *errs;
    char (*msgs)[PL_MSG_SIZE];
    char *msg;
} driver;

/* The group's weights to quantize (types from the options) into jobs; *nj of them. */
static pl_error plan_group(driver *d, int l, const arch_group *g, job jobs[ARCH_GROUP_MAX], int *nj)
{
    *nj = 0;
    for (int k = 0; k < ARCH_GROUP_MAX && g->weights[k]; ++k) {
        job *jb = &jobs[*nj];
        snprintf(jb->name, sizeof jb->name, "blk.%d.%s", l, g->weights[k]);
        jb->idx = inp_find_tensor(d->src, jb->name);
        if (jb->idx < 0)
            return pl_fail(d->msg, PL_ERR_MODEL, "%s: not in the tensor source", jb->name);
        const inp_tensor *t = inp_tensor_at(d->src, jb->idx);
        if (t->n_dims != 2)
            return pl_fail(d->msg, PL_ERR_MODEL, "%s: not a matrix", jb->name);
        jb->cols = t->ne[0];
        jb->rows = t->ne[1];
        jb->type = d->o.type_of ? d->o.type_of(d->o.user, jb->name, jb->cols, jb->rows)
                                : d->o.default_type;
        if (jb->type < 0)
            continue;
        if (!lq_gptq_supports(jb->type))
            return pl_fail(d->msg, PL_ERR_ARG, "%s: GPTQ cannot write type %d", jb->name,
                           jb->type);
        if (*nj > 0 && jb->cols != jobs[0].cols)
            return pl_fail(d->msg, PL_ERR_MODEL, "%s: %lld columns, its group has %lld",
                           jb->name, (long long)jb->cols, (long long)jobs[0].cols);
        ++*nj;
    }
    return PL_OK;
}

/* nr workers: one thread each (a lone pass gets them all). The runtime's results do not
 * depend on its thread count. */
static void set_worker_threads(driver *d, int nr)
{
    for (int w = 0; w < nr; ++w) {
        rt_model_set_threads(d->qm[w], nr > 1 ? 1 : d->nth);
        if (d->mf)
            rt_model_set_threads(d->fm[w], nr > 1 ? 1 : d->nth);
    }
}

/* Sum every rank's H (and C; MPI build, nothing to do on one rank), then quantize the nj jobs
 * against them (the last one frees C as soon as it has read it). */
static pl_error solve_group(driver *d, int layer, const job *jobs, int nj, pl_hess *hess, pl_cross **cross,
                            pl_gptq_info *infos)
{
    const double t0 = pl_now();
    pl_error e = pl_hess_reduce(hess, d->msg);
    if (e == PL_OK && *cross)
        e = pl_cross_reduce(*cross, d->msg);
    if (e != PL_OK)
        return e;
    const double *H = pl_hess_matrix(hess);
    const double *C = *cross ? pl_cross_matrix(*cross) : NULL;
    d->st.hessian += pl_now() - t0;
    for (int k = 0; k < nj && e == PL_OK; ++k)
        e = do_tensor(d->m, d->src, &jobs[k], layer, H, C, k == nj - 1 ? cross : NULL, pl_hess_count(hess),
                      &d->o, &d->st, &infos[k], d->msg);
    return e;
}

/* Collect the group's H (and C) over every chunk, then quantize its nj weights. */
static pl_error run_group(driver *d, int l, const arch_group *g, const job *jobs, int nj)
{
    pl_hess *hess = pl_hess_create((int)jobs[0].cols);
    pl_cross *cross = NULL;
    pl_error e = PL_OK;
    if (!hess)
        return pl_fail(d->msg, PL_ERR_NOMEM, "out of memory for a %lld-column Hessian",
                       (long long)jobs[0].cols);
    const int cols = (int)jobs[0].cols;
    char names[ARCH_GROUP_MAX][GGUF_MAX_NAME];
    int n_names = 0;
    if (d->o.imatrix) /* every weight of the group sees this input, quantized or not */
        for (int k = 0; k < ARCH_GROUP_MAX && g->weights[k]; ++k)
            snprintf(names[n_names++], GGUF_MAX_NAME, "blk.%d.%s", l, g->weights[k]);
    if (d->mf && !(cross = pl_cross_create(cols))) {
        e = pl_fail(d->msg, PL_ERR_NOMEM, "out of memory for a %d-column cross term", cols);
        goto out;
    }
    const size_t cap = (size_t)d->n_ctx * d->wmax;
    for (int c0 = 0; c0 < d->n_chunks && e == PL_OK; c0 += d->nw) {
        const int nr = d->n_chunks - c0 < d->nw ? d->n_chunks - c0 : d->nw;
        const double t0 = pl_now();
        set_worker_threads(d, nr);
#pragma omp parallel for schedule(static, 1) num_threads(nr) if (nr > 1)
        for (int w = 0; w < nr; ++w) {
            collect_state cs = {.layer = l, .point = (rt_hook_point)g->input, .cols = cols, .msg = d->msgs[w],
                                .capture = d->xq + (size_t)w * cap};
            pl_calib_stats ws = {0};
            d->errs[w] = collect_chunk(d->qm[w], l, d->hidden + (size_t)(c0 + w) * d->per,
                                       d->tmp + (size_t)w * d->per, d->per, d->n_ctx, &cs,
                                       jobs[0].name, &ws, d->msgs[w]);
            if (d->errs[w] == PL_OK && d->mf) {
                collect_state cf = cs;
                cf.capture = d->xf + (size_t)w * cap;
                d->errs[w] = collect_chunk(d->fm[w], l, d->hidden_f + (size_t)(c0 + w) * d->per,
                                           d->tmp + (size_t)w * d->per, d->per, d->n_ctx, &cf,
                                           jobs[0].name, &ws, d->msgs[w]);
            }
        }
        const double t1 = pl_now();
        d->st.forward += t1 - t0;
        /* in chunk order, whatever the number of workers */
        for (int w = 0; w < nr && e == PL_OK; ++w) {
            const float *xq = d->xq + (size_t)w * cap, *xf = d->xf + (size_t)w * cap;
            if ((e = d->errs[w]) != PL_OK) {
                memcpy(d->msg, d->msgs[w], PL_MSG_SIZE);
                break;
            }
            e = pl_hess_add(hess, xq, d->n_ctx, d->msg);
            for (int k = 0; k < n_names && e == PL_OK; ++k)
                e = pl_imatrix_acc_add(d->o.imatrix, names[k], xq, d->n_ctx, cols, d->msg);
            if (e == PL_OK && cross)
                pl_cross_add(cross, xf, xq, d->n_ctx);
        }
        d->st.hessian += pl_now() - t1;
    }
    pl_gptq_info infos[ARCH_GROUP_MAX];
    if (e != PL_OK || (e = solve_group(d, l, jobs, nj, hess, &cross, infos)) != PL_OK)
        goto out;
    pl_hess_free(hess);
    hess = NULL;
    pl_cross_free(cross);
    cross = NULL;
    if (d->o.group_done && d->o.group_done(d->o.user, l, d->n_layer, infos, nj))
        e = pl_fail(d->msg, PL_ERR_STOPPED, "layer %d: stopped by the caller", l);
out:
    pl_hess_free(hess);
    pl_cross_free(cross);
    return e;
}

/* The output matrix after the layers: H (and C) from the final norm of every chunk's hidden
 * states, then one solve, as a group of its own (reported with layer = n_layer). A tied output
 * (no output.weight) or one left float is skipped. */
static pl_error output_group(driver *d)
{
    job jb = {.name = "output.weight"};
    jb.idx = inp_find_tensor(d->src, jb.name);
    if (jb.idx < 0)
        return PL_OK;
    const inp_tensor *t = inp_tensor_at(d->src, jb.idx);
    jb.cols = t->ne[0];
    jb.rows = t->n_dims == 2 ? t->ne[1] : 0;
    jb.type = d->o.type_of ? d->o.type_of(d->o.user, jb.name, jb.cols, jb.rows) : d->o.default_type;
    if (jb.type < 0 || jb.rows < 1 || !lq_gptq_supports(jb.type))
        return PL_OK;
    const int cols = (int)jb.cols;
    pl_hess *hess = pl_hess_create(cols);
    pl_cross *cross = d->mf ? pl_cross_create(cols) : NULL;
    pl_error e = hess && (cross || !d->mf) ? PL_OK : pl_fail(d->msg, PL_ERR_NOMEM, "%s: out of memory", jb.name);
    const double t0 = pl_now();
    char rmsg[RT_MSG_SIZE];
    for (int c = 0; c < d->n_chunks && e == PL_OK; ++c) {
        rt_error re = rt_final_norm(d->m, d->hidden + (size_t)c * d->per, d->n_ctx, d->xq, rmsg);
        if (re == RT_OK && d->mf)
            re = rt_final_norm(d->mf, d->hidden_f + (size_t)c * d->per, d->n_ctx, d->xf, rmsg);
        if (re != RT_OK)
            e = pl_fail(d->msg, pl_from_rt(re), "%s: %s", jb.name, rmsg);
        else if ((e = pl_hess_add(hess, d->xq, d->n_ctx, d->msg)) == PL_OK && cross)
            pl_cross_add(cross, d->xf, d->xq, d->n_ctx);
    }
    d->st.hessian += pl_now() - t0;
    pl_gptq_info info;
    if (e == PL_OK)
        e = solve_group(d, d->n_layer, &jb, 1, hess, &cross, &info);
    pl_hess_free(hess);
    pl_cross_free(cross);
    if (e == PL_OK && d->o.group_done && d->o.group_done(d->o.user, d->n_layer, d->n_layer, &info, 1))
        e = pl_fail(d->msg, PL_ERR_STOPPED, "output: stopped by the caller");
    return e;
}

/* With the asymmetric target the quantized model embeds with token_embd as the file will
 * hold it (rounded without importance data, as the writer does), so every layer's target
 * makes up for the embedding's rounding too. A type GPTQ does not plan (-1, F32) leaves it. */
static pl_error quantize_embd(driver *d)
{
    const char *name = "token_embd.weight";
    const int64_t k = d->mf && d->o.type_of ? inp_find_tensor(d->src, name) : -1;
    if (k < 0)
        return PL_OK;
    const inp_tensor *t = inp_tensor_at(d->src, k);
    const int64_t cols = t->ne[0], rows = t->n_dims == 2 ? t->ne[1] : 0, batch = 256;
    const int type = d->o.type_of(d->o.user, name, cols, rows);
    const size_t rs = type >= 0 && type != GGUF_F32 ? lq_row_size(type, cols) : 0;
    if (!rs || rows < 1)
        return PL_OK;
    if ((uint64_t)rows > SIZE_MAX / rs || (uint64_t)cols > SIZE_MAX / sizeof(float) / (uint64_t)batch)
        return pl_fail(d->msg, PL_ERR_ARG, "%s: tensor too large", name);
    unsigned char *q = malloc((size_t)rows * rs);
    float *x = malloc((size_t)batch * (size_t)cols * sizeof(float));
    pl_error e = q && x ? PL_OK : pl_fail(d->msg, PL_ERR_NOMEM, "%s: out of memory", name);
    char m[INP_MSG_SIZE > LQ_MSG_SIZE ? INP_MSG_SIZE : LQ_MSG_SIZE];
    for (int64_t r0 = 0; e == PL_OK && r0 < rows; r0 += batch) {
        const int64_t n = rows - r0 < batch ? rows - r0 : batch;
        inp_error ie = inp_read_f32(d->src, k, r0, n, x, m);
        if (ie != INP_OK)
            e = pl_fail(d->msg, pl_from_inp(ie), "%s", m);
        else if (lq_quantize_rows(type, x, q + (size_t)r0 * rs, n, cols, NULL, d->nth, m) != LQ_OK)
            e = pl_fail(d->msg, PL_ERR_INTERNAL, "%s: %s", name, m);
    }
    char rmsg[RT_MSG_SIZE];
    rt_error re = e == PL_OK ? rt_model_set_weight(d->m, name, type, q, rmsg) : RT_OK;
    if (re != RT_OK)
        e = pl_fail(d->msg, pl_from_rt(re), "%s", rmsg);
    free(q);
    free(x);
    return e;
}

/* Buffers, the float reference (asymmetric target), and the embeddings of every chunk. */
static pl_error driver_start(driver *d, const int32_t *chunks)
{
    const rt_hparams *hp = rt_model_hparams(d->m);
    pl_error e = PL_OK;
    const int qd = hp->n_head * hp->head_dim, fe = hp->n_ff > hp->n_embd ? hp->n_ff : hp->n_embd;
    d->wmax = (size_t)(fe > qd ? fe : qd);
    d->nth = d->o.gptq.nthreads > 0 ? d->o.gptq.nthreads : omp_get_max_threads();
    d->nw = d->nth < d->n_chunks ? d->nth : d->n_chunks;
    const size_t cap = (size_t)d->nw * (size_t)d->n_ctx * d->wmax;
    d->hidden = malloc((size_t)d->n_chunks * d->per * sizeof(float));
    d->tmp = malloc((size_t)d->nw * d->per * sizeof(float));
    d->xq = malloc(cap * sizeof(float));
    d->qm = calloc((size_t)d->nw, sizeof *d->qm);
    d->fm = calloc((size_t)d->nw, sizeof *d->fm);
    d->errs = calloc((size_t)d->nw, sizeof *d->errs);
    d->msgs = calloc((size_t)d->nw, sizeof *d->msgs);
    if (!d->hidden || !d->tmp || !d->xq || !d->qm || !d->fm || !d->errs || !d->msgs)
        return pl_fail(d->msg, PL_ERR_NOMEM, "out of memory for %d chunks of hidden states",
                       d->n_chunks);
    if (d->o.asym) {
        rt_error re = rt_model_load_deferred(d->src, &d->mf, d->msg);
        if (re != RT_OK)
            return pl_from_rt(re);
        rt_model_set_threads(d->mf, d->o.gptq.nthreads);
        d->hidden_f = malloc((size_t)d->n_chunks * d->per * sizeof(float));
        d->xf = malloc(cap * sizeof(float));
        if (!d->hidden_f || !d->xf)
            return pl_fail(d->msg, PL_ERR_NOMEM, "out of memory for the float reference");
    }
    d->qm[0] = d->m;
    d->fm[0] = d->mf;
    for (int w = 1; w < d->nw; ++w) {
        rt_error re = rt_model_clone(d->m, &d->qm[w], d->msg);
        if (re == RT_OK && d->mf)
            re = rt_model_clone(d->mf, &d->fm[w], d->msg);
        if (re != RT_OK)
            return pl_from_rt(re);
    }
    if ((e = quantize_embd(d)) != PL_OK)
        return e;
    const double t0 = pl_now();
    rt_error re = RT_OK;
    for (int c = 0; c < d->n_chunks && re == RT_OK; ++c)
        re = rt_embed(d->m, chunks + (size_t)c * d->n_ctx, d->n_ctx, d->hidden + (size_t)c * d->per,
                      d->msg);
    for (int c = 0; d->mf && c < d->n_chunks && re == RT_OK; ++c)
        re = rt_embed(d->mf, chunks + (size_t)c * d->n_ctx, d->n_ctx,
                      d->hidden_f + (size_t)c * d->per, d->msg);
    d->st.forward += pl_now() - t0;
    if (re != RT_OK)
        e = pl_from_rt(re);
    return e;
}

/* Layer l's float weights (models loaded with rt_model_load_deferred read them now): the
 * float reference's, which the quantized model borrows until each is swapped. */
static pl_error load_layer(driver *d, int l)
{
    const double t0 = pl_now();
    rt_error re = d->mf ? rt_model_load_layer(d->mf, l, NULL, d->msg) : RT_OK;
    if (re == RT_OK)
        re = rt_model_load_layer(d->m, l, d->mf, d->msg);
    d->st.other += pl_now() - t0;
    return pl_from_rt(re);
}

/* Layer l with all its quantized weights (and the float reference's) feeds the next one. */
static pl_error forward_layer(driver *d, int l)
{
    const double t0 = pl_now();
    pl_error e = PL_OK;
    for (int c0 = 0; c0 < d->n_chunks && e == PL_OK; c0 += d->nw) {
        const int nr = d->n_chunks - c0 < d->nw ? d->n_chunks - c0 : d->nw;
        set_worker_threads(d, nr);
#pragma omp parallel for schedule(static, 1) num_threads(nr) if (nr > 1)
        for (int w = 0; w < nr; ++w) {
            rt_error re = rt_layer_forward(d->qm[w], l, d->hidden + (size_t)(c0 + w) * d->per,
                                           d->n_ctx, NULL, d->msgs[w]);
            if (re == RT_OK && d->mf)
                re = rt_layer_forward(d->fm[w], l, d->hidden_f + (size_t)(c0 + w) * d->per,
                                      d->n_ctx, NULL, d->msgs[w]);
            d->errs[w] = pl_from_rt(re);
        }
        for (int w = 0; w < nr && e == PL_OK; ++w)
            if ((e = d->errs[w]) != PL_OK)
                memcpy(d->msg, d->msgs[w], PL_MSG_SIZE);
    }
    d->st.forward += pl_now() - t0;
    return e;
}

pl_error pl_gptq_run(rt_model *m, inp_source *src, const int32_t *chunks, int n_chunks,
                     int n_ctx, const pl_gptq_opts *o, char *msg)
{
    const double t_start = pl_now();
    driver d;
    memset(&d, 0, sizeof d);
    if (o)
        d.o = *o;
    else
        pl_gptq_opts_init(&d.o);
    if (!m || !src || !chunks || n_chunks < 1 || n_ctx < 1 || n_ctx > RT_MAX_TOKENS)
        return pl_fail(msg, PL_ERR_ARG, "pl_gptq_run: bad arguments");
    const rt_hparams *hp = rt_model_hparams(m);
    d.m = m;
    d.src = src;
    d.n_chunks = n_chunks;
    d.n_ctx = n_ctx;
    d.n_layer = hp->n_layer;
    d.per = (size_t)n_ctx * (size_t)hp->n_embd;
    d.msg = msg;
    if ((size_t)n_chunks > SIZE_MAX / sizeof(float) / d.per)
        return pl_fail(msg, PL_ERR_ARG, "too many calibration chunks");
    d.st.tokens = (int64_t)n_chunks * n_ctx;
    /* MPI build under mpirun: chunk c is rank (c mod size)'s */
    const int size = pl_mpi_size(), rank = pl_mpi_rank();
    int32_t *mine = NULL;
    if (size > 1) {
        if (n_chunks < size)
            return pl_fail(msg, PL_ERR_ARG, "%d calibration chunks for %d MPI ranks: each rank needs one",
                           n_chunks, size);
        mine = malloc((size_t)((n_chunks + size - 1) / size) * (size_t)n_ctx * sizeof(int32_t));
        if (!mine)
            return pl_fail(msg, PL_ERR_NOMEM, "out of memory");
        int k = 0;
        for (int c = rank; c < n_chunks; c += size, ++k)
            memcpy(mine + (size_t)k * n_ctx, chunks + (size_t)c * n_ctx, (size_t)n_ctx * sizeof(int32_t));
        chunks = mine;
        d.n_chunks = n_chunks = k;
    }
    const arch_desc *ad = rt_model_arch(m);
    const arch_group *groups = ad->groups;
    const size_t n_groups = ad->n_groups;
    pl_error e = driver_start(&d, chunks);
    for (int l = 0; l < hp->n_layer && e == PL_OK; ++l) {
        e = load_layer(&d, l);
        for (size_t g = 0; g < n_groups && e == PL_OK; ++g) {
            job jobs[ARCH_GROUP_MAX];
            int nj = 0;
            e = plan_group(&d, l, &groups[g], jobs, &nj);
            if (e == PL_OK && nj > 0)
                e = run_group(&d, l, &groups[g], jobs, nj);
        }
        if (e == PL_OK)
            e = forward_layer(&d, l);
        /* a deferred model forgets the layer: its tensors were handed to emit */
        rt_model_drop_layer(d.m, l);
        rt_model_drop_layer(d.mf, l);
    }
    if (e == PL_OK)
        e = output_group(&d);
    for (int w = 1; w < d.nw; ++w) {
        rt_model_free(d.qm ? d.qm[w] : NULL);
        rt_model_free(d.fm ? d.fm[w] : NULL);
    }
    free(d.qm);
    free(d.fm);
    free(d.errs);
    free(d.msgs);
    rt_model_free(d.mf);
    free(d.hidden_f);
    free(d.xf);
    free(d.xq);
    free(d.hidden);
    free(d.tmp);
    free(mine);
    d.st.total = pl_now() - t_start;
    if (d.o.stats)
        *d.o.stats = d.st;
    return e;
}

/* ---------------------------------------------------------------- the float pass */

/* Every group's input goes to the accumulator, and the layer runs on. */
typedef struct {
    const arch_desc *arch;    /* its groups name the weights each hook point feeds */
    pl_imatrix_acc *im;
    pl_error err;
    char *msg;
    double seconds;
} imatrix_pass;

static int imatrix_hook(void *user, int layer, rt_hook_point point, const float *x, int n_tokens,
                        int n_cols)
{
    imatrix_pass *p = user;
    const double t0 = pl_now();
    const arch_group *groups = p->arch->groups;
    for (size_t g = 0; g < p->arch->n_groups; ++g) {
        if ((rt_hook_point)groups[g].input != point)
            continue;
        for (int k = 0; k < ARCH_GROUP_MAX && groups[g].weights[k] && p->err == PL_OK; ++k) {
            char name[GGUF_MAX_NAME];
            snprintf(name, sizeof name, "blk.%d.%s", layer, groups[g].weights[k]);
            p->err = pl_imatrix_acc_add(p->im, name, x, n_tokens, n_cols, p->msg);
        }
    }
    p->seconds += pl_now() - t0;
    return p->err != PL_OK;
}

pl_error pl_imatrix_pass(rt_model *m, const int32_t *chunks, int n_chunks, int n_ctx,
                         pl_imatrix_acc *im, pl_calib_stats *stats, char *msg)
{
    const double t_start = pl_now();
    pl_calib_stats st;
    memset(&st, 0, sizeof st);
    if (!m || !chunks || !im || n_chunks < 1 || n_ctx < 1 || n_ctx > RT_MAX_TOKENS)
        return pl_fail(msg, PL_ERR_ARG, "pl_imatrix_pass: bad arguments");
    const rt_hparams *hp = rt_model_hparams(m);
    const size_t per = (size_t)n_ctx * (size_t)hp->n_embd;
    float *hidden = malloc(per * sizeof(float));
    if (!hidden)
        return pl_fail(msg, PL_ERR_NOMEM, "out of memory");
    st.tokens = (int64_t)n_chunks * n_ctx;
    imatrix_pass ip = {rt_model_arch(m), im, PL_OK, msg, 0.0};
    const rt_hook hook = {imatrix_hook, &ip};
    rt_error re = RT_OK;
    const double t0 = pl_now();
    for (int c = 0; c < n_chunks && re == RT_OK; ++c) {
        re = rt_embed(m, chunks + (size_t)c * n_ctx, n_ctx, hidden, msg);
        for (int l = 0; l < hp->n_layer && re == RT_OK; ++l)
            re = rt_layer_forward(m, l, hidden, n_ctx, &hook, msg);
    }
    pl_error e = ip.err != PL_OK ? ip.err : pl_from_rt(re);
    st.hessian = ip.seconds;
    st.forward = pl_now() - t0 - ip.seconds;
    free(hidden);
    st.total = pl_now() - t_start;
    if (stats)
        *stats = st;
    return e;
}
