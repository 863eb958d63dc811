/* GPTQ calibration through the runtime (see calib.h). */
#include <cblas.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libquant/lq.h"
#include "runtime/calib.h"

#define HESS_MAX_N 65536
#define HESS_BLOCK_ROWS 1024 /* rows summed per dsyrk call */

static rt_error fail(char *msg, rt_error e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static rt_error fail(char *msg, rt_error e, const char *fmt, ...)
{
    if (msg) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, RT_MSG_SIZE, fmt, ap);
        va_end(ap);
    }
    return e;
}

/* ---------------------------------------------------------------- Hessians */

struct rt_hess {
    int n;
    int64_t count;   /* rows added, pending ones included */
    int pending;     /* rows waiting in xd */
    double *S;       /* sum of x x^T over flushed rows, lower triangle */
    double *H;       /* scaled, full */
    double *xd;      /* HESS_BLOCK_ROWS x n rows not yet in S */
};

rt_hess *rt_hess_create(int n)
{
    if (n < 1 || n > HESS_MAX_N)
        return NULL;
    rt_hess *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    const size_t nn = (size_t)n * (size_t)n;
    h->n = n;
    h->S = calloc(nn, sizeof(double));
    h->H = malloc(nn * sizeof(double));
    h->xd = malloc((size_t)HESS_BLOCK_ROWS * (size_t)n * sizeof(double));
    if (!h->S || !h->H || !h->xd) {
        rt_hess_free(h);
        return NULL;
    }
    return h;
}

void rt_hess_free(rt_hess *h)
{
    if (!h)
        return;
    free(h->S);
    free(h->H);
    free(h->xd);
    free(h);
}

void rt_hess_reset(rt_hess *h)
{
    if (!h)
        return;
    memset(h->S, 0, (size_t)h->n * (size_t)h->n * sizeof(double));
    h->count = 0;
    h->pending = 0;
}

int64_t rt_hess_count(const rt_hess *h)
{
    return h ? h->count : 0;
}

/* S += X^T X for the pending rows. Rows are summed in blocks of HESS_BLOCK_ROWS whatever
 * the sizes of the add calls, and OpenBLAS splits a dsyrk over the output only, so S does not
 * depend on how the rows arrived or on thread counts. */
static void hess_flush(rt_hess *h)
{
    if (h->pending)
        cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, h->n, h->pending, 1.0, h->xd, h->n,
                    1.0, h->S, h->n);
    h->pending = 0;
}

rt_error rt_hess_add(rt_hess *h, const float *x, int rows, char *msg)
{
    if (!h || (!x && rows) || rows < 0)
        return fail(msg, RT_ERR_ARG, "rt_hess_add: bad arguments");
    const size_t n = (size_t)h->n;
    for (size_t i = 0; i < (size_t)rows * n; ++i)
        if (!isfinite(x[i]))
            return fail(msg, RT_ERR_ARG, "non-finite activation at row %zu column %zu", i / n,
                        i % n);
    for (int r = 0; r < rows; ++r) {
        if (h->pending == HESS_BLOCK_ROWS)
            hess_flush(h);
        double *d = h->xd + (size_t)h->pending * n;
        const float *xs = x + (size_t)r * n;
        for (size_t j = 0; j < n; ++j)
            d[j] = xs[j];
        h->pending++;
        h->count++;
    }
    return RT_OK;
}

const double *rt_hess_matrix(rt_hess *h)
{
    hess_flush(h);
    const size_t n = (size_t)h->n;
    const double s = h->count ? 2.0 / (double)h->count : 0.0;
    for (size_t i = 0; i < n; ++i)
        for (size_t j = 0; j <= i; ++j)
            h->H[i * n + j] = h->H[j * n + i] = h->S[i * n + j] * s;
    return h->H;
}

/* ---------------------------------------------------------------- chunks */

int32_t *rt_calib_chunks(const int32_t *tokens, size_t n_tokens, int n_ctx, int32_t bos,
                         int max_chunks, int *n_chunks)
{
    *n_chunks = 0;
    if (!tokens || n_ctx < 1)
        return NULL;
    size_t n = n_tokens / (size_t)n_ctx;
    if (max_chunks > 0 && n > (size_t)max_chunks)
        n = (size_t)max_chunks;
    if (n == 0 || n > (size_t)INT32_MAX || n > SIZE_MAX / sizeof(int32_t) / (size_t)n_ctx)
        return NULL;
    int32_t *out = malloc(n * (size_t)n_ctx * sizeof(int32_t));
    if (!out)
        return NULL;
    memcpy(out, tokens, n * (size_t)n_ctx * sizeof(int32_t));
    if (bos >= 0)
        for (size_t c = 0; c < n; ++c)
            out[c * (size_t)n_ctx] = bos;
    *n_chunks = (int)n;
    return out;
}

/* ---------------------------------------------------------------- sequential GPTQ */

void rt_calib_opts_init(rt_calib_opts *o)
{
    memset(o, 0, sizeof *o);
    lq_gptq_opts_init(&o->gptq);
    o->default_type = GGUF_Q4_K;
}

/* The groups in the order GPTQ visits them inside a layer. */
static const struct {
    rt_hook_point point;
    const char *names[3];
} k_groups[] = {
    {RT_HOOK_ATTN_QKV, {"attn_q", "attn_k", "attn_v"}},
    {RT_HOOK_ATTN_OUT, {"attn_output", NULL, NULL}},
    {RT_HOOK_FFN_GATE_UP, {"ffn_gate", "ffn_up", NULL}},
    {RT_HOOK_FFN_DOWN, {"ffn_down", NULL, NULL}},
};

typedef struct {
    int layer;
    rt_hook_point point;
    rt_hess *h;
    int cols;       /* expected input width */
    rt_error err;   /* first failure inside the hook */
    int seen;
    char *msg;
} collect_state;

static int collect_hook(void *user, int layer, rt_hook_point point, const float *x, int n_tokens,
                        int n_cols)
{
    collect_state *s = user;
    if (layer != s->layer || point != s->point)
        return 0;
    s->seen = 1;
    if (n_cols != s->cols)
        s->err = fail(s->msg, RT_ERR_MODEL, "layer %d: the runtime feeds %d columns, the "
                      "weights have %d", layer, n_cols, s->cols);
    else
        s->err = rt_hess_add(s->h, x, n_tokens, s->msg);
    return 1; /* the rest of the layer is not needed */
}

static rt_error map_lq(lq_error e)
{
    switch (e) {
    case LQ_ERR_NOMEM: return RT_ERR_NOMEM;
    case LQ_ERR_TYPE:
    case LQ_ERR_SHAPE: return RT_ERR_ARG;
    default: return RT_ERR_MODEL;
    }
}

typedef struct {
    char name[GGUF_MAX_NAME];
    int64_t idx, rows, cols;
    int type;
} job;

/* Quantize one tensor on H, swap it into m, hand it to emit. */
static rt_error do_tensor(rt_model *m, src_source *src, const job *jb, int layer,
                          const double *H, int64_t hess_rows, const rt_calib_opts *o, char *msg)
{
    const size_t rs = lq_row_size(jb->type, jb->cols);
    if (!rs)
        return fail(msg, RT_ERR_ARG, "%s: %lld columns do not fit %s blocks", jb->name,
                    (long long)jb->cols, gguf_type_info(jb->type)->name);
    if ((uint64_t)jb->rows > SIZE_MAX / rs ||
        (uint64_t)jb->rows > SIZE_MAX / sizeof(float) / (uint64_t)jb->cols)
        return fail(msg, RT_ERR_ARG, "%s: tensor too large", jb->name);
    float *W = malloc((size_t)jb->rows * (size_t)jb->cols * sizeof(float));
    void *q = malloc((size_t)jb->rows * rs);
    rt_error e = RT_OK;
    if (!W || !q) {
        e = fail(msg, RT_ERR_NOMEM, "%s: out of memory", jb->name);
        goto out;
    }
    char smsg[SRC_MSG_SIZE];
    src_error se = src_read_f32(src, jb->idx, 0, jb->rows, W, smsg);
    if (se != SRC_OK) {
        e = fail(msg, se == SRC_ERR_NOMEM ? RT_ERR_NOMEM : RT_ERR_MODEL,
                 "%s: GPTQ needs float weights: %s", jb->name, smsg);
        goto out;
    }
    src_release(src, jb->idx);
    rt_calib_info info;
    memset(&info, 0, sizeof info);
    info.name = jb->name;
    info.layer = layer;
    info.type = jb->type;
    info.rows = jb->rows;
    info.cols = jb->cols;
    info.hess_rows = hess_rows;
    char lmsg[LQ_MSG_SIZE];
    lq_error le = lq_gptq_quantize(jb->type, W, jb->rows, jb->cols, H, &o->gptq, q, NULL,
                                   &info.res, lmsg);
    if (le != LQ_OK) {
        e = fail(msg, map_lq(le), "%s: GPTQ: %s", jb->name, lmsg);
        goto out;
    }
    if ((e = rt_model_set_weight(m, jb->name, jb->type, q, msg)) != RT_OK)
        goto out;
    if (o->emit && o->emit(o->user, &info, q, (size_t)jb->rows * rs))
        e = fail(msg, RT_ERR_HOOK, "%s: stopped by the caller", jb->name);
out:
    free(W);
    free(q);
    return e;
}

rt_error rt_calib_gptq(rt_model *m, src_source *src, const int32_t *chunks, int n_chunks,
                       int n_ctx, const rt_calib_opts *o_in, char *msg)
{
    rt_calib_opts o;
    if (o_in)
        o = *o_in;
    else
        rt_calib_opts_init(&o);
    if (!m || !src || !chunks || n_chunks < 1 || n_ctx < 1 || n_ctx > RT_MAX_TOKENS)
        return fail(msg, RT_ERR_ARG, "rt_calib_gptq: bad arguments");
    const rt_hparams *hp = rt_model_hparams(m);
    const size_t E = (size_t)hp->n_embd, per = (size_t)n_ctx * E;
    if ((size_t)n_chunks > SIZE_MAX / sizeof(float) / per)
        return fail(msg, RT_ERR_ARG, "too many calibration chunks");
    float *hidden = malloc((size_t)n_chunks * per * sizeof(float));
    float *tmp = malloc(per * sizeof(float));
    rt_hess *hess = NULL;
    rt_error e = RT_OK;
    if (!hidden || !tmp) {
        e = fail(msg, RT_ERR_NOMEM, "out of memory for %d chunks of hidden states", n_chunks);
        goto out;
    }
    for (int c = 0; c < n_chunks && e == RT_OK; ++c)
        e = rt_embed(m, chunks + (size_t)c * n_ctx, n_ctx, hidden + (size_t)c * per, msg);
    if (e != RT_OK)
        goto out;

    for (int l = 0; l < hp->n_layer; ++l) {
        for (size_t g = 0; g < sizeof k_groups / sizeof k_groups[0]; ++g) {
            job jobs[3];
            int nj = 0;
            for (int k = 0; k < 3 && k_groups[g].names[k]; ++k) {
                job *jb = &jobs[nj];
                snprintf(jb->name, sizeof jb->name, "blk.%d.%s.weight", l, k_groups[g].names[k]);
                jb->idx = src_find_tensor(src, jb->name);
                if (jb->idx < 0) {
                    e = fail(msg, RT_ERR_MODEL, "%s: not in the tensor source", jb->name);
                    goto out;
                }
                const src_tensor *t = src_tensor_at(src, jb->idx);
                if (t->n_dims != 2) {
                    e = fail(msg, RT_ERR_MODEL, "%s: not a matrix", jb->name);
                    goto out;
                }
                jb->cols = t->ne[0];
                jb->rows = t->ne[1];
                jb->type = o.type_of ? o.type_of(o.user, jb->name, jb->cols, jb->rows)
                                     : o.default_type;
                if (jb->type < 0)
                    continue;
                if (!lq_gptq_supports(jb->type)) {
                    e = fail(msg, RT_ERR_ARG, "%s: GPTQ cannot write type %d", jb->name,
                             jb->type);
                    goto out;
                }
                if (nj > 0 && jb->cols != jobs[0].cols) {
                    e = fail(msg, RT_ERR_MODEL, "%s: %lld columns, its group has %lld",
                             jb->name, (long long)jb->cols, (long long)jobs[0].cols);
                    goto out;
                }
                ++nj;
            }
            if (nj == 0)
                continue;

            hess = rt_hess_create((int)jobs[0].cols);
            if (!hess) {
                e = fail(msg, RT_ERR_NOMEM, "out of memory for a %lld-column Hessian",
                         (long long)jobs[0].cols);
                goto out;
            }
            collect_state st = {l, k_groups[g].point, hess, (int)jobs[0].cols, RT_OK, 0, msg};
            const rt_hook hook = {collect_hook, &st};
            for (int c = 0; c < n_chunks; ++c) {
                memcpy(tmp, hidden + (size_t)c * per, per * sizeof(float));
                st.seen = 0;
                char lmsg[RT_MSG_SIZE];
                e = rt_layer_forward(m, l, tmp, n_ctx, &hook, lmsg);
                if (st.err != RT_OK) {
                    e = st.err;
                    goto out;
                }
                if (e != RT_ERR_HOOK || !st.seen) {
                    if (e == RT_OK)
                        e = fail(msg, RT_ERR_MODEL, "layer %d: the runtime never reached the "
                                 "inputs of %s", l, jobs[0].name);
                    else
                        fail(msg, e, "%s", lmsg);
                    goto out;
                }
                e = RT_OK;
            }
            const double *H = rt_hess_matrix(hess);
            for (int k = 0; k < nj; ++k)
                if ((e = do_tensor(m, src, &jobs[k], l, H, rt_hess_count(hess), &o, msg)) != RT_OK)
                    goto out;
            rt_hess_free(hess);
            hess = NULL;
        }
        /* the layer with all its quantized weights feeds the next one */
        for (int c = 0; c < n_chunks; ++c)
            if ((e = rt_layer_forward(m, l, hidden + (size_t)c * per, n_ctx, NULL, msg)) != RT_OK)
                goto out;
    }
out:
    rt_hess_free(hess);
    free(hidden);
    free(tmp);
    return e;
}
