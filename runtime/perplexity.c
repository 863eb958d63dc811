/* Perplexity, log-probability records and KL-divergence statistics (see perplexity.h). */
#include "runtime/perplexity.h"
#include "runtime/rt_internal.h"

#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define CAP_VOCAB (1u << 24)
#define CAP_CTX (1u << 20)
#define CAP_CHUNK (1u << 20)


static int nthreads_or_default(int n) { return n > 0 ? n : omp_get_max_threads(); }

/* ---------------------------------------------------------------- perplexity */

rt_error rt_ppl_chunks_logits(rt_model *m, const int32_t *chunks, int n_chunk, int n_ctx, int32_t bos, float *logits,
                              char *msg)
{
    if (!m || !chunks || !logits || n_ctx < 4 || n_ctx > RT_MAX_TOKENS || n_chunk < 1 ||
        (int64_t)n_chunk * n_ctx > RT_MAX_TOKENS)
        return rt_fail_(msg, RT_ERR_ARG, "rt_ppl_chunks_logits: bad arguments");
    const size_t n = (size_t)n_chunk * n_ctx;
    int32_t *t = malloc(n * sizeof *t);
    if (!t)
        return rt_fail_(msg, RT_ERR_NOMEM, "out of memory");
    memcpy(t, chunks, n * sizeof *t);
    if (bos >= 0)
        for (int c = 0; c < n_chunk; c++)
            t[(size_t)c * n_ctx] = bos;
    rt_error e = rt_forward_seqs(m, t, n_chunk, n_ctx, n_ctx / 2, logits, msg);
    free(t);
    return e;
}

rt_error rt_ppl_chunk_logits(rt_model *m, const int32_t *chunk, int n_ctx, int32_t bos, float *logits, char *msg)
{
    return rt_ppl_chunks_logits(m, chunk, 1, n_ctx, bos, logits, msg);
}

/* llama-perplexity's log-softmax: max, sum of expf(logit - max) in double. */
static double row_nll(const float *lg, int n_vocab, int32_t tok)
{
    float mx;
    const double sum = rt_sum_exp(rt_isa_detect(), lg, n_vocab, &mx);
    return -((double)(lg[tok] - mx) - log(sum));
}

void rt_ppl_row_nll(const float *logits, int n_vocab, const int32_t *targets, int n, double *nll_out,
                    int nthreads)
{
#pragma omp parallel for schedule(static) num_threads(nthreads_or_default(nthreads)) if (n > 8)
    for (int r = 0; r < n; r++)
        nll_out[r] = row_nll(logits + (size_t)r * n_vocab, n_vocab, targets[r]);
}

void rt_ppl_add(rt_ppl_acc *a, const double *nll, int n)
{
    for (int i = 0; i < n; i++) {
        a->nll += nll[i];
        a->nll2 += nll[i] * nll[i];
    }
    a->count += n;
}

double rt_ppl_value(const rt_ppl_acc *a) { return a->count ? exp(a->nll / a->count) : 0; }

double rt_ppl_uncertainty(const rt_ppl_acc *a)
{
    if (a->count < 2)
        return 0;
    const double mean = a->nll / a->count;
    double var = a->nll2 / a->count - mean * mean;
    if (!(var > 0))
        return 0;
    return sqrt(var / (a->count - 1)) * exp(mean);
}

/* ---------------------------------------------------------------- log-prob records */

size_t rt_logp_record_size(int n_vocab) { return 12 + 2 * (size_t)n_vocab; }

void rt_logp_encode(const float *logits, int n_vocab, int32_t target, void *record)
{
    float mx = logits[0];
    int32_t top = 0;
    for (int i = 1; i < n_vocab; i++)
        if (logits[i] > mx) {
            mx = logits[i];
            top = i;
        }
    double sum = 0;
    for (int i = 0; i < n_vocab; i++)
        sum += exp((double)logits[i] - mx);
    const double lse = mx + log(sum); /* log p_i = logit_i - lse */
    const float lmax = (float)(mx - lse);
    const float ltarget = (float)(logits[target] - lse);
    unsigned char *r = record;
    memcpy(r, &lmax, 4);
    memcpy(r + 4, &ltarget, 4);
    memcpy(r + 8, &top, 4);
    const double lo = (double)mx - RT_LOGP_RANGE, step = RT_LOGP_RANGE / 65535.0;
    for (int i = 0; i < n_vocab; i++) {
        double c = ((double)logits[i] - lo) / step;
        uint16_t code = c <= 0.5 ? 0 : c >= 65535 ? 65535 : (uint16_t)lrint(c);
        if (code == 0 && c > 0)
            code = 1; /* inside the window: never store as "absent" */
        memcpy(r + 12 + 2 * (size_t)i, &code, 2);
    }
}

static int put_u32(FILE *f, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    return fwrite(b, 1, 4, f) == 4 ? 0 : -1;
}

static int get_u32(FILE *f, uint32_t *v)
{
    unsigned char b[4];
    if (fread(b, 1, 4, f) != 4)
        return -1;
    *v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    return 0;
}

rt_error rt_logp_write_header(FILE *f, const rt_logp_header *h, const int32_t *tokens, char *msg)
{
    if (fwrite(RT_LOGP_MAGIC, 1, 8, f) != 8 || put_u32(f, h->n_vocab) || put_u32(f, h->n_ctx) ||
        put_u32(f, h->n_chunk) || put_u32(f, h->first) || put_u32(f, (uint32_t)lrintf(h->range * 100)))
        return rt_fail_(msg, RT_ERR_IO, "write failed");
    size_t n = (size_t)h->n_chunk * h->n_ctx;
    if (fwrite(tokens, sizeof(int32_t), n, f) != n)
        return rt_fail_(msg, RT_ERR_IO, "write failed");
    return RT_OK;
}

rt_error rt_logp_read_header(FILE *f, uint64_t file_size, rt_logp_header *h, int32_t **tokens, char *msg)
{
    *tokens = NULL;
    char magic[8];
    uint32_t range_centi;
    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, RT_LOGP_MAGIC, 8) != 0)
        return rt_fail_(msg, RT_ERR_FORMAT, "not a qforge log-probability file (magic %s expected)", RT_LOGP_MAGIC);
    if (get_u32(f, &h->n_vocab) || get_u32(f, &h->n_ctx) || get_u32(f, &h->n_chunk) || get_u32(f, &h->first) ||
        get_u32(f, &range_centi))
        return rt_fail_(msg, RT_ERR_FORMAT, "truncated header");
    if (h->n_vocab < 1 || h->n_vocab > CAP_VOCAB || h->n_ctx < 2 || h->n_ctx > CAP_CTX || h->n_chunk < 1 ||
        h->n_chunk > CAP_CHUNK || h->first != h->n_ctx / 2 || range_centi != (uint32_t)lrintf(RT_LOGP_RANGE * 100))
        return rt_fail_(msg, RT_ERR_FORMAT, "header out of range (n_vocab %u, n_ctx %u, n_chunk %u, first %u, range %u)",
                    h->n_vocab, h->n_ctx, h->n_chunk, h->first, range_centi);
    h->range = RT_LOGP_RANGE;
    const uint64_t ntok = (uint64_t)h->n_chunk * h->n_ctx;
    const uint64_t nrec = (uint64_t)h->n_chunk * (h->n_ctx - 1 - h->first);
    const uint64_t expect = 28 + ntok * 4 + nrec * rt_logp_record_size((int)h->n_vocab);
    if (expect != file_size)
        return rt_fail_(msg, RT_ERR_FORMAT, "file size %llu does not match its header (%llu bytes expected)",
                    (unsigned long long)file_size, (unsigned long long)expect);
    int32_t *t = malloc(ntok * sizeof *t);
    if (!t)
        return rt_fail_(msg, RT_ERR_NOMEM, "out of memory");
    if (fread(t, sizeof *t, ntok, f) != ntok) {
        free(t);
        return rt_fail_(msg, RT_ERR_FORMAT, "truncated token list");
    }
    for (uint64_t i = 0; i < ntok; i++)
        if (t[i] < 0 || (uint32_t)t[i] >= h->n_vocab) {
            const int32_t bad = t[i];
            free(t);
            return rt_fail_(msg, RT_ERR_FORMAT, "token %lld = %d is outside the vocabulary", (long long)i, bad);
        }
    *tokens = t;
    return RT_OK;
}

/* ---------------------------------------------------------------- KL divergence */

struct rt_kld {
    double sum_nll, sum_nll2, sum_nll_base, sum_nll_base2, sum_nll_nll_base;
    double sum_kld, sum_kld2, sum_dp, sum_dp2, sum_dp4;
    int64_t n_same_top, count;
    float *kld_values, *dp_values;
    size_t cap;
};

rt_kld *rt_kld_create(void) { return calloc(1, sizeof(rt_kld)); }

void rt_kld_free(rt_kld *k)
{
    if (!k)
        return;
    free(k->kld_values);
    free(k->dp_values);
    free(k);
}

typedef struct {
    double nll, nll_base, kld, dp;
    int same_top, bad;
} kld_row;

static kld_row kld_one(const float *lg, int n_vocab, int32_t tok, const unsigned char *rec)
{
    kld_row r = {0};
    float mx = lg[0];
    int imax = 0;
    for (int i = 1; i < n_vocab; i++)
        if (lg[i] > mx) {
            mx = lg[i];
            imax = i;
        }
    double sum = 0;
    for (int i = 0; i < n_vocab; i++)
        sum += exp((double)lg[i] - mx);
    const double lse = mx + log(sum);
    float lmax, ltarget;
    int32_t top;
    memcpy(&lmax, rec, 4);
    memcpy(&ltarget, rec + 4, 4);
    memcpy(&top, rec + 8, 4);
    if (!(lmax <= 0.f) || !(lmax > -1e6f) || !(ltarget <= 0.f) || top < 0 || top >= n_vocab) {
        r.bad = 1;
        return r;
    }
    r.nll = lse - lg[tok];
    r.nll_base = -(double)ltarget;
    const double lo = (double)lmax - RT_LOGP_RANGE, step = RT_LOGP_RANGE / 65535.0;
    double kld = 0;
    for (int i = 0; i < n_vocab; i++) {
        uint16_t code;
        memcpy(&code, rec + 12 + 2 * (size_t)i, 2);
        if (!code)
            continue;
        const double lpb = lo + code * step;
        kld += exp(lpb) * (lpb - ((double)lg[i] - lse));
    }
    r.kld = kld;
    r.dp = exp(-r.nll) - exp(-r.nll_base);
    r.same_top = imax == top;
    return r;
}

rt_error rt_kld_add(rt_kld *k, const float *logits, int n_vocab, const int32_t *targets, const void *records,
                    int n, int nthreads, char *msg)
{
    if (n <= 0)
        return RT_OK;
    if ((size_t)k->count + (size_t)n > k->cap) {
        size_t cap = k->cap ? k->cap : 4096;
        while (cap < (size_t)k->count + (size_t)n)
            cap *= 2;
        float *a = realloc(k->kld_values, cap * sizeof *a);
        if (!a)
            return rt_fail_(msg, RT_ERR_NOMEM, "out of memory");
        k->kld_values = a;
        float *b = realloc(k->dp_values, cap * sizeof *b);
        if (!b)
            return rt_fail_(msg, RT_ERR_NOMEM, "out of memory");
        k->dp_values = b;
        k->cap = cap;
    }
    kld_row *rows = malloc((size_t)n * sizeof *rows);
    if (!rows)
        return rt_fail_(msg, RT_ERR_NOMEM, "out of memory");
    const size_t rs = rt_logp_record_size(n_vocab);
#pragma omp parallel for schedule(static) num_threads(nthreads_or_default(nthreads)) if (n > 8)
    for (int r = 0; r < n; r++)
        rows[r] = kld_one(logits + (size_t)r * n_vocab, n_vocab, targets[r], (const unsigned char *)records + r * rs);
    for (int r = 0; r < n; r++) {
        const kld_row *x = &rows[r];
        if (x->bad) {
            free(rows);
            return rt_fail_(msg, RT_ERR_FORMAT, "log-probability record %lld is corrupt", (long long)(k->count));
        }
        k->sum_nll += x->nll;
        k->sum_nll2 += x->nll * x->nll;
        k->sum_nll_base += x->nll_base;
        k->sum_nll_base2 += x->nll_base * x->nll_base;
        k->sum_nll_nll_base += x->nll * x->nll_base;
        k->sum_kld += x->kld;
        k->sum_kld2 += x->kld * x->kld;
        k->sum_dp += x->dp;
        k->sum_dp2 += x->dp * x->dp;
        k->sum_dp4 += x->dp * x->dp * x->dp * x->dp;
        k->n_same_top += x->same_top;
        k->kld_values[k->count] = (float)x->kld;
        k->dp_values[k->count] = (float)x->dp;
        k->count++;
    }
    free(rows);
    return RT_OK;
}

/* llama.cpp's mean and uncertainty of the mean. */
static void mean_unc(double sum, double sum2, int64_t count, double *mean, double *unc)
{
    *mean = sum / count;
    double var = sum2 / count - *mean * *mean;
    *unc = var > 0 && count > 10 ? sqrt(var / (count - 1)) : 0;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static double percentile(const float *v, size_t n, double fraction)
{
    if (fraction <= 0)
        return v[0];
    if (fraction >= 1)
        return v[n - 1];
    double p = fraction * (double)(n - 1);
    size_t ip = (size_t)p;
    p -= (double)ip;
    size_t ip1 = ip + 1 < n ? ip + 1 : n - 1;
    return (1 - p) * v[ip] + p * v[ip1];
}

static double median(const float *v, size_t n)
{
    return n % 2 == 0 ? 0.5 * ((double)v[n / 2] + v[n / 2 - 1]) : v[n / 2];
}

rt_error rt_kld_stats_get(const rt_kld *k, rt_kld_stats *s, char *msg)
{
    memset(s, 0, sizeof *s);
    if (k->count < 2)
        return rt_fail_(msg, RT_ERR_ARG, "too few scored tokens (%lld) for statistics", (long long)k->count);
    const int64_t n = k->count;
    s->count = n;
    double lp, lp_unc, lb, lb_unc;
    mean_unc(k->sum_nll, k->sum_nll2, n, &lp, &lp_unc);
    mean_unc(k->sum_nll_base, k->sum_nll_base2, n, &lb, &lb_unc);
    s->ppl = exp(lp);
    s->ppl_unc = s->ppl * lp_unc;
    s->ppl_base = exp(lb);
    s->ppl_base_unc = s->ppl_base * lb_unc;
    double cov = 0;
    if (n >= 10)
        cov = (k->sum_nll_nll_base / n - (k->sum_nll / n) * (k->sum_nll_base / n)) / (n - 1);
    s->cor = lp_unc > 0 && lb_unc > 0 ? cov / (lp_unc * lb_unc) : 0;
    s->ln_ratio = lp - lb;
    double v = lp_unc * lp_unc + lb_unc * lb_unc - 2.0 * cov;
    s->ln_ratio_unc = v > 0 ? sqrt(v) : 0;
    s->ppl_ratio = exp(s->ln_ratio);
    s->ppl_ratio_unc = s->ppl_ratio * s->ln_ratio_unc;
    s->ppl_diff = s->ppl - s->ppl_base;
    v = s->ppl_unc * s->ppl_unc + s->ppl_base_unc * s->ppl_base_unc - 2.0 * s->ppl * s->ppl_base * cov;
    s->ppl_diff_unc = v > 0 ? sqrt(v) : 0;
    mean_unc(k->sum_kld, k->sum_kld2, n, &s->kld, &s->kld_unc);
    mean_unc(k->sum_dp, k->sum_dp2, n, &s->dp, &s->dp_unc);
    double mse, mse_unc;
    mean_unc(k->sum_dp2, k->sum_dp4, n, &mse, &mse_unc);
    s->rms_dp = sqrt(mse);
    s->rms_dp_unc = s->rms_dp > 0 ? 0.5 / s->rms_dp * mse_unc : 0;
    s->same_top = (double)k->n_same_top / n;
    s->same_top_unc = sqrt(s->same_top * (1 - s->same_top) / (n - 1));

    float *a = malloc((size_t)n * sizeof *a);
    if (!a)
        return rt_fail_(msg, RT_ERR_NOMEM, "out of memory");
    memcpy(a, k->kld_values, (size_t)n * sizeof *a);
    qsort(a, (size_t)n, sizeof *a, cmp_float);
    static const double kf[11] = {1, 0.999, 0.99, 0.95, 0.90, -1, 0.10, 0.05, 0.01, 0.001, 0};
    for (int i = 0; i < 11; i++)
        s->kld_pct[i] = kf[i] < 0 ? median(a, (size_t)n) : percentile(a, (size_t)n, kf[i]);
    memcpy(a, k->dp_values, (size_t)n * sizeof *a);
    qsort(a, (size_t)n, sizeof *a, cmp_float);
    static const double pf[13] = {1, 0.999, 0.99, 0.95, 0.90, 0.75, -1, 0.25, 0.10, 0.05, 0.01, 0.001, 0};
    for (int i = 0; i < 13; i++)
        s->dp_pct[i] = pf[i] < 0 ? median(a, (size_t)n) : percentile(a, (size_t)n, pf[i]);
    free(a);
    return RT_OK;
}

/* ---------------------------------------------------------------- a whole evaluation */

void rt_ppl_eval_plan(const rt_model *m, const rt_ppl_eval_opts *o, rt_ppl_plan *p)
{
    const int nth = nthreads_or_default(o->nthreads), n_ctx = o->n_ctx;
    const int n_vocab = rt_model_hparams(m)->n_vocab, first = n_ctx / 2, n_scored = n_ctx - 1 - first;
    /* chunks per forward pass, as llama-perplexity's n_batch / n_ctx sequences */
    int n_seq = o->n_batch / n_ctx;
    if (n_seq > RT_MAX_TOKENS / n_ctx)
        n_seq = RT_MAX_TOKENS / n_ctx;
    if (n_seq > o->n_chunk)
        n_seq = o->n_chunk;
    if (n_seq < 1)
        n_seq = 1;
    const int n_group = (o->n_chunk + n_seq - 1) / n_seq;
    const int nw = nth < n_group ? nth : n_group;
    const uint64_t rows = (uint64_t)nw * (uint64_t)n_seq * (uint64_t)n_scored;
    p->n_seq = n_seq;
    p->n_workers = nw;
    p->scratch = rt_model_scratch_bytes(m, n_seq, n_ctx, nth) +
                 (uint64_t)(nw - 1) * rt_model_scratch_bytes(m, n_seq, n_ctx, 1);
    p->buffers = (uint64_t)nw * n_seq * (uint64_t)(n_ctx - first) * n_vocab * sizeof(float) +
                 rows * sizeof(double) + (o->records ? rows * rt_logp_record_size(n_vocab) : 0);
}

typedef struct {
    rt_model **models;
    float *logits;
    double *nll;
    unsigned char *recs;
    rt_error *errs;
    char (*msgs)[RT_MSG_SIZE];
} eval_bufs;

/* Worker w: the chunks of pass g (logits, then nll and records per scored row). */
static void eval_pass(const rt_ppl_eval_opts *o, const rt_ppl_plan *p, eval_bufs *b, const int32_t *tokens,
                      int w, int g, int nthreads)
{
    const int n_ctx = o->n_ctx, first = n_ctx / 2, n_scored = n_ctx - 1 - first;
    const int n_vocab = rt_model_hparams(b->models[w])->n_vocab;
    const size_t per_chunk = (size_t)(n_ctx - first) * n_vocab, rec_size = rt_logp_record_size(n_vocab);
    const int c0 = g * p->n_seq, ns = o->n_chunk - c0 < p->n_seq ? o->n_chunk - c0 : p->n_seq;
    float *lg = b->logits + (size_t)w * p->n_seq * per_chunk;
    b->errs[w] = rt_ppl_chunks_logits(b->models[w], tokens + (size_t)c0 * n_ctx, ns, n_ctx, o->bos, lg, b->msgs[w]);
    for (int i = 0; b->errs[w] == RT_OK && i < ns; i++) {
        const int32_t *targets = tokens + (size_t)(c0 + i) * n_ctx + first + 1;
        const float *li = lg + (size_t)i * per_chunk;
        const size_t k = (size_t)w * p->n_seq + i;
        if (o->nll)
            rt_ppl_row_nll(li, n_vocab, targets, n_scored, b->nll + k * n_scored, nthreads);
        for (int r = 0; o->records && r < n_scored; r++)
            rt_logp_encode(li + (size_t)r * n_vocab, n_vocab, targets[r], b->recs + (k * n_scored + (size_t)r) * rec_size);
    }
}

/* Hand the chunks of worker w's pass g to the caller, in order. */
static rt_error eval_deliver(const rt_ppl_eval_opts *o, const rt_ppl_plan *p, const eval_bufs *b,
                             const int32_t *tokens, int w, int g, char *msg)
{
    const int n_ctx = o->n_ctx, first = n_ctx / 2, n_scored = n_ctx - 1 - first;
    const int n_vocab = rt_model_hparams(b->models[w])->n_vocab;
    const size_t per_chunk = (size_t)(n_ctx - first) * n_vocab, rec_size = rt_logp_record_size(n_vocab);
    const int c0 = g * p->n_seq, ns = o->n_chunk - c0 < p->n_seq ? o->n_chunk - c0 : p->n_seq;
    if (b->errs[w] != RT_OK)
        return rt_fail_(msg, b->errs[w], "chunks %d-%d: %s", c0 + 1, c0 + ns, b->msgs[w]);
    for (int i = 0; i < ns; i++) {
        const size_t k = (size_t)w * p->n_seq + i;
        const rt_ppl_chunk out = {b->logits + k * per_chunk, tokens + (size_t)(c0 + i) * n_ctx + first + 1,
                                  o->nll ? b->nll + k * n_scored : NULL,
                                  o->records ? b->recs + k * n_scored * rec_size : NULL, n_scored};
        if (o->chunk && o->chunk(o->user, c0 + i, &out))
            return rt_fail_(msg, RT_ERR_HOOK, "chunk %d: stopped by the caller", c0 + i + 1);
    }
    return RT_OK;
}

rt_error rt_ppl_eval(rt_model *m, const int32_t *tokens, const rt_ppl_eval_opts *o, char *msg)
{
    if (!m || !tokens || !o || o->n_ctx < 4 || o->n_ctx > RT_MAX_TOKENS || o->n_chunk < 1)
        return rt_fail_(msg, RT_ERR_ARG, "rt_ppl_eval: bad arguments");
    const int nth = nthreads_or_default(o->nthreads);
    rt_ppl_plan p;
    rt_ppl_eval_plan(m, o, &p);
    const int nw = p.n_workers, n_group = (o->n_chunk + p.n_seq - 1) / p.n_seq;
    const int n_ctx = o->n_ctx, first = n_ctx / 2, n_scored = n_ctx - 1 - first;
    const size_t n_vocab = (size_t)rt_model_hparams(m)->n_vocab, rows = (size_t)nw * p.n_seq * n_scored;
    eval_bufs b;
    b.models = calloc((size_t)nw, sizeof *b.models);
    b.logits = malloc((size_t)nw * p.n_seq * (n_ctx - first) * n_vocab * sizeof(float));
    b.nll = malloc(rows * sizeof(double)); /* counted in the plan whether used or not */
    b.recs = o->records ? malloc(rows * rt_logp_record_size((int)n_vocab)) : NULL;
    b.errs = calloc((size_t)nw, sizeof *b.errs);
    b.msgs = calloc((size_t)nw, sizeof *b.msgs);
    rt_error e = RT_OK;
    if (!b.models || !b.logits || !b.nll || (o->records && !b.recs) || !b.errs || !b.msgs)
        e = rt_fail_(msg, RT_ERR_NOMEM, "out of memory");
    if (e == RT_OK)
        b.models[0] = m;
    for (int w = 1; e == RT_OK && w < nw; w++)
        e = rt_model_clone(m, &b.models[w], msg);
    for (int w = 0; e == RT_OK && w < nw; w++)
        rt_model_set_threads(b.models[w], nw > 1 ? 1 : nth);
    for (int g0 = 0; e == RT_OK && g0 < n_group; g0 += nw) {
        const int nr = n_group - g0 < nw ? n_group - g0 : nw;
        if (nw > 1 && nr == 1) /* a last lone pass: all threads on it */
            rt_model_set_threads(b.models[0], nth);
#pragma omp parallel for schedule(static, 1) num_threads(nr) if (nr > 1)
        for (int w = 0; w < nr; w++)
            eval_pass(o, &p, &b, tokens, w, g0 + w, nr > 1 ? 1 : nth);
        for (int w = 0; e == RT_OK && w < nr; w++)
            e = eval_deliver(o, &p, &b, tokens, w, g0 + w, msg);
    }
    for (int w = 1; b.models && w < nw; w++)
        rt_model_free(b.models[w]);
    free(b.models);
    free(b.logits);
    free(b.nll);
    free(b.recs);
    free(b.errs);
    free(b.msgs);
    return e;
}

/* ---------------------------------------------------------------- the statistics as JSON */

json_t *rt_kld_stats_json(const rt_kld_stats *s)
{
    json_t *k = json_object(), *kp = json_object(), *pp = json_object();
    if (!k || !kp || !pp) {
        json_decref(k);
        json_decref(kp);
        json_decref(pp);
        return NULL;
    }
    json_object_set_new(k, "count", json_integer(s->count));
    json_object_set_new(k, "ppl", json_real(s->ppl));
    json_object_set_new(k, "ppl_unc", json_real(s->ppl_unc));
    json_object_set_new(k, "ppl_base", json_real(s->ppl_base));
    json_object_set_new(k, "ppl_base_unc", json_real(s->ppl_base_unc));
    json_object_set_new(k, "cor_ln_ppl", json_real(s->cor));
    json_object_set_new(k, "mean_ln_ppl_ratio", json_real(s->ln_ratio));
    json_object_set_new(k, "mean_ln_ppl_ratio_unc", json_real(s->ln_ratio_unc));
    json_object_set_new(k, "ppl_ratio", json_real(s->ppl_ratio));
    json_object_set_new(k, "ppl_ratio_unc", json_real(s->ppl_ratio_unc));
    json_object_set_new(k, "ppl_diff", json_real(s->ppl_diff));
    json_object_set_new(k, "ppl_diff_unc", json_real(s->ppl_diff_unc));
    json_object_set_new(k, "kld", json_real(s->kld));
    json_object_set_new(k, "kld_unc", json_real(s->kld_unc));
    static const char *kn[11] = {"max", "99.9", "99", "95", "90", "median", "10", "5", "1", "0.1", "min"};
    for (int i = 0; i < 11; i++)
        json_object_set_new(kp, kn[i], json_real(s->kld_pct[i]));
    json_object_set_new(k, "kld_percentiles", kp);
    json_object_set_new(k, "mean_dp", json_real(s->dp));
    json_object_set_new(k, "mean_dp_unc", json_real(s->dp_unc));
    static const char *pn[13] = {"max", "99.9", "99", "95", "90", "75", "median", "25", "10", "5", "1", "0.1", "min"};
    for (int i = 0; i < 13; i++)
        json_object_set_new(pp, pn[i], json_real(s->dp_pct[i]));
    json_object_set_new(k, "dp_percentiles", pp);
    json_object_set_new(k, "rms_dp", json_real(s->rms_dp));
    json_object_set_new(k, "rms_dp_unc", json_real(s->rms_dp_unc));
    json_object_set_new(k, "same_top_p", json_real(s->same_top));
    json_object_set_new(k, "same_top_p_unc", json_real(s->same_top_unc));
    return k;
}
