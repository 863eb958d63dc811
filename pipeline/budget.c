/* Sensitivity: each weight matrix at each candidate type, KLD of the final logits against the
 * float model, measured through the runtime (see budget.h). */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "arch/arch.h"
#include "pipeline/budget.h"
#include "pipeline/chunks.h"
#include "pipeline/hessian.h"
#include "pipeline/pl_internal.h"
#include "runtime/runtime.h"
#include "tokenizer/tokenizer.h"

/* The default candidates (any type libquant writes and the runtime multiplies may join). */
static const int k_default_cand[] = {
    GGUF_Q2_K, GGUF_Q3_K, GGUF_IQ4_XS, GGUF_Q4_K, GGUF_Q5_K, GGUF_Q6_K, GGUF_Q8_0, GGUF_F16,
};

const int *pl_budget_default_candidates(size_t *n)
{
    *n = sizeof k_default_cand / sizeof k_default_cand[0];
    return k_default_cand;
}

const char *pl_sens_method_name(pl_sens_method m)
{
    return m == PL_SENS_GPTQ ? "gptq" : m == PL_SENS_IMATRIX ? "imatrix" : "plain";
}

void pl_sens_opts_init(pl_sens_opts *o)
{
    memset(o, 0, sizeof *o);
    o->n_chunks = 4;
    o->damp = 0.01;
}

void pl_sens_free(pl_sens *s)
{
    if (!s)
        return;
    for (size_t k = 0; k < s->n; k++)
        free(s->rows[k].name);
    free(s->rows);
    free(s);
}

static bool is_float(int t) { return t == GGUF_F32 || t == GGUF_F16 || t == GGUF_BF16; }

static bool ends_with(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && !strcmp(s + n - m, suf);
}

/* ---------------------------------------------------------------- the measuring context */

typedef struct {
    inp_source *src;
    const pl_sens_opts *o;
    rt_model *m;
    int n_layer, n_embd, n_vocab, n_chunks, n_ctx;
    int32_t *chunks;
    float *base_lp;   /* n_chunks * n_ctx * n_vocab log-probabilities of the float model */
    float *logits;    /* n_ctx * n_vocab */
    double *row_kld;  /* n_ctx */
    float *h_in;      /* n_chunks * n_ctx * n_embd: input of the current layer (float model) */
    float *h_next;    /* the same for the next layer */
    float *h_work;    /* n_ctx * n_embd */
    pl_hess *hess[RT_HOOK_COUNT_];
    pl_hess *hess_out; /* output.weight's H (GPTQ): the final norm of h_in after the last layer */
    char *msg;
} sctx;

static void sctx_free(sctx *c)
{
    rt_model_free(c->m);
    free(c->chunks);
    free(c->base_lp);
    free(c->logits);
    free(c->row_kld);
    free(c->h_in);
    free(c->h_next);
    free(c->h_work);
    for (int p = 0; p < RT_HOOK_COUNT_; p++)
        pl_hess_free(c->hess[p]);
    pl_hess_free(c->hess_out);
}

/* log-softmax of a row, in place (max and sum in double). */
static void log_softmax(float *x, int n)
{
    float mx = x[0];
    for (int i = 1; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    double s = 0;
    for (int i = 0; i < n; i++)
        s += exp((double)x[i] - mx);
    const float lse = (float)(mx + log(s));
    for (int i = 0; i < n; i++)
        x[i] -= lse;
}

/* Sum over the chunk's rows of KL(base || model), rows summed in order. */
static double chunk_kld(sctx *c, int chunk)
{
    const int V = c->n_vocab, n = c->n_ctx;
    const float *base = c->base_lp + (size_t)chunk * n * V;
#pragma omp parallel for num_threads(c->o->nthreads > 0 ? c->o->nthreads : omp_get_max_threads())
    for (int r = 0; r < n; r++) {
        float *l = c->logits + (size_t)r * V;
        const float *b = base + (size_t)r * V;
        log_softmax(l, V);
        double k = 0;
        for (int i = 0; i < V; i++)
            k += exp((double)b[i]) * ((double)b[i] - l[i]);
        c->row_kld[r] = k;
    }
    double s = 0;
    for (int r = 0; r < n; r++)
        s += c->row_kld[r];
    return s;
}

/* The model's mean KLD from layer `layer` on, starting from h (the float model's input of that
 * layer, all chunks), or from the embeddings when layer < 0. */
static pl_error kld_from(sctx *c, int layer, const float *h, double *kld)
{
    const size_t per = (size_t)c->n_ctx * c->n_embd;
    double sum = 0;
    for (int ch = 0; ch < c->n_chunks; ch++) {
        const int32_t *tok = c->chunks + (size_t)ch * c->n_ctx;
        rt_error re = RT_OK;
        if (layer < 0)
            re = rt_embed(c->m, tok, c->n_ctx, c->h_work, c->msg);
        else
            memcpy(c->h_work, h + ch * per, per * sizeof(float));
        for (int l = layer < 0 ? 0 : layer; re == RT_OK && l < c->n_layer; l++)
            re = rt_layer_forward(c->m, l, c->h_work, c->n_ctx, NULL, c->msg);
        if (re == RT_OK)
            re = rt_final_logits(c->m, c->h_work, c->n_ctx, c->logits, c->msg);
        if (re != RT_OK)
            return pl_from_rt(re);
        sum += chunk_kld(c, ch);
    }
    *kld = sum / ((double)c->n_chunks * c->n_ctx);
    return PL_OK;
}

/* Tokens, chunks, the float model's log-probabilities and embeddings. */
static pl_error sctx_init(sctx *c, inp_source *src, const pl_sens_opts *o, char *msg)
{
    memset(c, 0, sizeof *c);
    c->src = src;
    c->o = o;
    c->msg = msg;
    pl_error e = pl_from_rt(rt_model_load(src, &c->m, msg));
    if (e != PL_OK)
        return e;
    rt_model_set_threads(c->m, o->nthreads);
    const rt_hparams *hp = rt_model_hparams(c->m);
    c->n_layer = hp->n_layer;
    c->n_embd = hp->n_embd;
    c->n_vocab = hp->n_vocab;
    c->n_chunks = o->n_chunks > 0 ? o->n_chunks : 4;
    c->n_ctx = o->n_ctx > 0 ? o->n_ctx : hp->n_ctx_train > 0 && hp->n_ctx_train < 256 ? hp->n_ctx_train : 256;
    if (!o->text)
        return pl_fail(msg, PL_ERR_ARG, "sensitivity: no calibration text");
    tok_model *tok = NULL;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    e = pl_from_rt(rt_error_from_tok(tok_from_gguf(inp_metadata(src), &tok, msg)));
    if (e == PL_OK)
        e = pl_from_rt(rt_error_from_tok(tok_encode(tok, o->text, o->len, tok_default_flags(tok),
                                                    &ids, &n_ids, msg)));
    if (e == PL_OK && n_ids < (size_t)c->n_ctx)
        e = pl_fail(msg, PL_ERR_FORMAT, "the calibration text has %zu tokens, fewer than one "
                    "chunk of %d", n_ids, c->n_ctx);
    if (e == PL_OK && !(c->chunks = pl_chunks_sample(ids, n_ids, c->n_ctx, tok_bos(tok),
                                                      c->n_chunks, o->seed)))
        e = pl_fail(msg, PL_ERR_NOMEM, "out of memory");
    free(ids);
    tok_free(tok);
    if (e != PL_OK)
        return e;
    const size_t rows = (size_t)c->n_chunks * c->n_ctx, per = (size_t)c->n_ctx * c->n_embd;
    c->base_lp = malloc(rows * c->n_vocab * sizeof(float));
    c->logits = malloc((size_t)c->n_ctx * c->n_vocab * sizeof(float));
    c->row_kld = malloc((size_t)c->n_ctx * sizeof(double));
    c->h_in = malloc(c->n_chunks * per * sizeof(float));
    c->h_next = malloc(c->n_chunks * per * sizeof(float));
    c->h_work = malloc(per * sizeof(float));
    if (!c->base_lp || !c->logits || !c->row_kld || !c->h_in || !c->h_next || !c->h_work)
        return pl_fail(msg, PL_ERR_NOMEM, "out of memory for the sensitivity buffers");
    for (int ch = 0; ch < c->n_chunks; ch++) {
        const int32_t *tok = c->chunks + (size_t)ch * c->n_ctx;
        float *h = c->h_in + ch * per;
        rt_error re = rt_embed(c->m, tok, c->n_ctx, h, msg);
        memcpy(c->h_work, h, per * sizeof(float));
        for (int l = 0; re == RT_OK && l < c->n_layer; l++)
            re = rt_layer_forward(c->m, l, c->h_work, c->n_ctx, NULL, msg);
        float *lp = c->base_lp + (size_t)ch * c->n_ctx * c->n_vocab;
        if (re == RT_OK)
            re = rt_final_logits(c->m, c->h_work, c->n_ctx, lp, msg);
        if (re != RT_OK)
            return pl_from_rt(re);
        for (int r = 0; r < c->n_ctx; r++)
            log_softmax(lp + (size_t)r * c->n_vocab, c->n_vocab);
    }
    return PL_OK;
}

/* ---------------------------------------------------------------- GPTQ Hessians */

static int hess_hook(void *user, int layer, rt_hook_point point, const float *x, int n_tokens,
                     int n_cols)
{
    sctx *c = user;
    (void)layer;
    if (!c->hess[point] && !(c->hess[point] = pl_hess_create(n_cols)))
        return 1;
    return pl_hess_add(c->hess[point], x, n_tokens, NULL) != PL_OK;
}

/* h_next := layer `layer` of the float model on h_in; with GPTQ the group Hessians too. */
static pl_error advance(sctx *c, int layer, bool hessians)
{
    const size_t per = (size_t)c->n_ctx * c->n_embd;
    for (int p = 0; p < RT_HOOK_COUNT_; p++)
        if (c->hess[p])
            pl_hess_reset(c->hess[p]);
    rt_hook hook = {hess_hook, c};
    for (int ch = 0; ch < c->n_chunks; ch++) {
        float *h = c->h_next + ch * per;
        memcpy(h, c->h_in + ch * per, per * sizeof(float));
        rt_error re = rt_layer_forward(c->m, layer, h, c->n_ctx, hessians ? &hook : NULL, c->msg);
        if (re == RT_ERR_HOOK)
            return pl_fail(c->msg, PL_ERR_NOMEM, "out of memory for the Hessians");
        if (re != RT_OK)
            return pl_from_rt(re);
    }
    return PL_OK;
}

/* hess_out := H of output.weight's input over every chunk: the final norm of h_in (the float
 * model's hidden states after the last layer), as the GPTQ run's output group collects it. */
static pl_error output_hessian(sctx *c)
{
    const size_t per = (size_t)c->n_ctx * c->n_embd;
    if (!(c->hess_out = pl_hess_create(c->n_embd)))
        return pl_fail(c->msg, PL_ERR_NOMEM, "out of memory for the output Hessian");
    pl_error e = PL_OK;
    for (int ch = 0; ch < c->n_chunks && e == PL_OK; ch++) {
        rt_error re = rt_final_norm(c->m, c->h_in + ch * per, c->n_ctx, c->h_work, c->msg);
        e = re != RT_OK ? pl_from_rt(re) : pl_hess_add(c->hess_out, c->h_work, c->n_ctx, c->msg);
    }
    return e;
}

/* The hook point feeding tensor "blk.L.<w>.weight" (the architecture's groups), or -1. */
static int point_of(const rt_model *m, const char *name)
{
    const arch_desc *ad = rt_model_arch(m);
    const char *w = strchr(name + 4, '.');
    if (!ad || strncmp(name, "blk.", 4) || !w)
        return -1;
    w++;
    for (size_t i = 0; i < ad->n_groups; i++)
        for (int k = 0; k < ARCH_GROUP_MAX && ad->groups[i].weights[k]; k++)
            if (!strcmp(w, ad->groups[i].weights[k])) /* the table's names end in ".weight" */
                return (int)ad->groups[i].input;
    return -1;
}

/* ---------------------------------------------------------------- one tensor */

typedef struct {
    float *w;                /* rows x ne0 */
    unsigned char *q;        /* quantized bytes (largest candidate) */
    unsigned char *orig;     /* the model's own weight, to restore */
    int orig_type;
} tbufs;

/* Quantize W of row `r` to type with the method; bytes into q. */
static pl_error quantize_as(sctx *c, const pl_sens_row *r, int type, const tbufs *b)
{
    const pl_sens_opts *o = c->o;
    char lmsg[LQ_MSG_SIZE];
    const int pt = point_of(c->m, r->name);
    pl_hess *H = pt >= 0 ? c->hess[pt] : !strcmp(r->name, "output.weight") ? c->hess_out : NULL;
    lq_error le;
    if (o->method == PL_SENS_GPTQ && H && lq_gptq_supports(type)) {
        lq_gptq_opts go;
        lq_gptq_opts_init(&go);
        go.damp = o->damp;
        go.grid = LQ_GPTQ_GRID_WEIGHTED;
        go.skip_loss = true;
        go.nthreads = o->nthreads;
        le = lq_gptq_quantize(type, b->w, r->rows, r->ne0, pl_hess_matrix(H), &go, b->q,
                              NULL, NULL, lmsg);
    } else {
        size_t ni = 0;
        const float *im = o->imatrix ? inp_imatrix_find(o->imatrix, r->name, &ni) : NULL;
        le = lq_quantize_rows(type, b->w, b->q, r->rows, r->ne0,
                              im && ni == (size_t)r->ne0 ? im : NULL, o->nthreads, lmsg);
    }
    if (le != LQ_OK)
        return pl_fail(c->msg, pl_from_lq(le), "%s: %s", r->name, lmsg);
    return PL_OK;
}

static pl_error measure_tensor(sctx *c, int64_t si, pl_sens_row *r)
{
    const int start = r->layer < 0 ? -1 : r->layer;
    const float *h = c->h_in;
    uint64_t qmax = 0;
    for (int k = 0; k < r->n; k++)
        qmax = r->bytes[k] > qmax ? r->bytes[k] : qmax;
    tbufs b = {0};
    const bool ckpt = inp_is_checkpoint(c->src);
    const int it = inp_tensor_at(c->src, si)->type;
    b.orig_type = ckpt ? GGUF_F32 : it;
    const size_t obytes = (size_t)r->rows * gguf_row_size(b.orig_type, r->ne0);
    b.w = malloc((size_t)r->rows * r->ne0 * sizeof(float));
    b.q = malloc(qmax ? qmax : 1);
    b.orig = malloc(obytes);
    pl_error e = PL_OK;
    char imsg[INP_MSG_SIZE];
    inp_error ie = INP_OK;
    if (!b.w || !b.q || !b.orig)
        e = pl_fail(c->msg, PL_ERR_NOMEM, "out of memory for tensor '%s'", r->name);
    else if ((ie = inp_read_f32(c->src, si, 0, r->rows, b.w, imsg)) != INP_OK ||
             (!ckpt && (ie = inp_read_raw(c->src, si, 0, r->rows, b.orig, imsg)) != INP_OK))
        e = pl_fail(c->msg, pl_from_inp(ie), "%s", imsg);
    if (e == PL_OK && ckpt)
        memcpy(b.orig, b.w, obytes);
    for (int k = 0; e == PL_OK && k < r->n; k++) {
        e = quantize_as(c, r, r->type[k], &b);
        if (e == PL_OK)
            e = pl_from_rt(rt_model_set_weight(c->m, r->name, r->type[k], b.q, c->msg));
        if (e == PL_OK)
            e = kld_from(c, start, h, &r->kld[k]);
    }
    if (e == PL_OK)
        e = pl_from_rt(rt_model_set_weight(c->m, r->name, b.orig_type, b.orig, c->msg));
    inp_release(c->src, si);
    free(b.w);
    free(b.q);
    free(b.orig);
    return e;
}

/* ---------------------------------------------------------------- the table */

/* Rows for every weight matrix the budget allocates: float, 2+ dimensions, not a norm. */
static pl_error make_rows(sctx *c, const int *cand, size_t n_cand, pl_sens *s)
{
    const int64_t nt = inp_n_tensors(c->src);
    s->rows = calloc(nt ? (size_t)nt : 1, sizeof *s->rows);
    if (!s->rows)
        return pl_fail(c->msg, PL_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < nt; i++) {
        const inp_tensor *t = inp_tensor_at(c->src, i);
        if (!is_float(t->type) || t->ne[1] <= 1 || ends_with(t->name, "_norm.weight"))
            continue;
        pl_sens_row *r = &s->rows[s->n];
        r->ne0 = t->ne[0];
        r->rows = inp_n_rows(t);
        int L = c->n_layer;
        if (!strncmp(t->name, "blk.", 4))
            L = atoi(t->name + 4);
        else if (strcmp(t->name, "output.weight"))
            L = -1; /* token_embd and anything else: the whole pass */
        r->layer = L;
        for (size_t k = 0; k < n_cand && r->n < PL_SENS_MAX_CAND; k++) {
            const size_t rs = lq_row_size(cand[k], r->ne0);
            if (!lq_can_quantize(cand[k]) || rs == 0)
                continue;
            r->type[r->n] = cand[k];
            r->bytes[r->n] = (uint64_t)rs * (uint64_t)r->rows;
            r->kld[r->n++] = NAN;
        }
        if (r->n == 0)
            continue;
        if (!(r->name = strdup(t->name)))
            return pl_fail(c->msg, PL_ERR_NOMEM, "out of memory");
        s->n++;
    }
    return PL_OK;
}

static pl_error notify(sctx *c, const pl_sens *s, size_t *done, const pl_sens_row *r)
{
    ++*done;
    if (c->o->progress && c->o->progress(c->o->user, *done, s->n, r))
        return pl_fail(c->msg, PL_ERR_STOPPED, "stopped by the caller");
    return PL_OK;
}

/* Measure every row: token_embd and whole-pass rows first, then layer by layer, then output. */
static pl_error measure_all(sctx *c, pl_sens *s)
{
    size_t done = 0;
    pl_error e = PL_OK;
    for (size_t k = 0; e == PL_OK && k < s->n; k++)
        if (s->rows[k].layer < 0 && (e = measure_tensor(c, inp_find_tensor(c->src, s->rows[k].name),
                                                        &s->rows[k])) == PL_OK)
            e = notify(c, s, &done, &s->rows[k]);
    for (int L = 0; e == PL_OK && L <= c->n_layer; L++) {
        if (L < c->n_layer)
            e = advance(c, L, c->o->method == PL_SENS_GPTQ);
        else if (c->o->method == PL_SENS_GPTQ)
            e = output_hessian(c);
        for (size_t k = 0; e == PL_OK && k < s->n; k++)
            if (s->rows[k].layer == L &&
                (e = measure_tensor(c, inp_find_tensor(c->src, s->rows[k].name), &s->rows[k])) == PL_OK)
                e = notify(c, s, &done, &s->rows[k]);
        if (e == PL_OK && L < c->n_layer) {
            float *t = c->h_in;
            c->h_in = c->h_next;
            c->h_next = t;
        }
    }
    return e;
}

pl_error pl_sens_measure(inp_source *src, const pl_sens_opts *o, pl_sens **out, char *msg)
{
    const double t0 = pl_now();
    *out = NULL;
    if (!src || !o)
        return pl_fail(msg, PL_ERR_ARG, "pl_sens_measure: no source or options");
    size_t n_cand = o->n_cand;
    const int *cand = o->cand;
    if (!cand)
        cand = pl_budget_default_candidates(&n_cand);
    if (n_cand == 0 || n_cand > PL_SENS_MAX_CAND)
        return pl_fail(msg, PL_ERR_ARG, "between 1 and %d candidate types", PL_SENS_MAX_CAND);
    if (o->method == PL_SENS_IMATRIX && !o->imatrix)
        return pl_fail(msg, PL_ERR_ARG, "importance-weighted sensitivity needs an imatrix");
    sctx c;
    pl_sens *s = calloc(1, sizeof *s);
    pl_error e = s ? sctx_init(&c, src, o, msg) : pl_fail(msg, PL_ERR_NOMEM, "out of memory");
    if (e == PL_OK)
        e = make_rows(&c, cand, n_cand, s);
    if (e == PL_OK)
        e = measure_all(&c, s);
    if (s) {
        s->method = o->method;
        s->n_chunks = c.n_chunks;
        s->n_ctx = c.n_ctx;
        s->seed = o->seed;
        s->tokens = (int64_t)c.n_chunks * c.n_ctx;
        s->seconds = pl_now() - t0;
        sctx_free(&c);
    }
    if (e != PL_OK) {
        pl_sens_free(s);
        return e;
    }
    *out = s;
    return PL_OK;
}

/* Mean KLD of a quantized model (qsrc, e.g. the written file) against the float one (src) on
 * the chunks of o: the whole allocation measured at once. */
pl_error pl_sens_kld_file(inp_source *src, inp_source *qsrc, const pl_sens_opts *o, double *kld,
                          char *msg)
{
    sctx c;
    pl_error e = sctx_init(&c, src, o, msg);
    if (e == PL_OK) {
        rt_model_free(c.m);
        c.m = NULL;
        e = pl_from_rt(rt_model_load(qsrc, &c.m, msg));
    }
    if (e == PL_OK) {
        rt_model_set_threads(c.m, o->nthreads);
        e = kld_from(&c, -1, NULL, kld);
    }
    sctx_free(&c);
    return e;
}
