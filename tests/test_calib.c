/* runtime/calib.c: Hessian accumulator, chunking, importance statistics, and sequential GPTQ of the demo model against plain rounding (needs
 * ../shared; skipped without it). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libquant/lq.h"
#include "input/imatrix.h"
#include "input/text.h"
#include "runtime/calib.h"
#include "runtime/perplexity.h"
#include "tokenizer/tokenizer.h"
#include "tests/testutil.h"

/* ---------- Hessians and chunks ---------- */

Test(calib, hessian_matches_direct_sum)
{
    const int n = 37, rows[] = {5, 1100, 0, 3};
    int total = 0;
    for (int i = 0; i < 4; ++i)
        total += rows[i];
    float *x = malloc((size_t)total * n * sizeof(float));
    uint64_t s = 12345;
    for (int i = 0; i < total * n; ++i) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((double)(s >> 11) / 9007199254740992.0 - 0.5);
    }
    rt_hess *h = rt_hess_create(n);
    cr_assert_not_null(h);
    const double *H0 = rt_hess_matrix(h);
    for (int i = 0; i < n * n; ++i)
        cr_assert_eq(H0[i], 0.0);
    int off = 0;
    for (int i = 0; i < 4; ++i) {
        cr_assert_eq(rt_hess_add(h, x + (size_t)off * n, rows[i], NULL), RT_OK);
        off += rows[i];
    }
    cr_assert_eq(rt_hess_count(h), total);
    const double *H = rt_hess_matrix(h);
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j) {
            double want = 0;
            for (int t = 0; t < total; ++t)
                want += (double)x[t * n + i] * x[t * n + j];
            want *= 2.0 / total;
            cr_assert(fabs(H[i * n + j] - want) <= 1e-12 * fabs(want) + 1e-15,
                      "H[%d][%d] = %.17g, want %.17g", i, j, H[i * n + j], want);
            cr_assert_eq(H[i * n + j], H[j * n + i]);
        }
    x[3] = NAN;
    char msg[RT_MSG_SIZE];
    cr_assert_eq(rt_hess_add(h, x, 1, msg), RT_ERR_ARG);
    cr_assert_eq(rt_hess_count(h), total);
    rt_hess_reset(h);
    cr_assert_eq(rt_hess_count(h), 0);
    cr_assert_eq(rt_hess_matrix(h)[5], 0.0);
    rt_hess_free(h);
    cr_assert_null(rt_hess_create(0));
    cr_assert_null(rt_hess_create(70000));
    free(x);
}

Test(calib, chunks)
{
    int32_t tok[1000];
    for (int i = 0; i < 1000; ++i)
        tok[i] = i + 10;
    int n;
    int32_t *c = rt_calib_chunks(tok, 1000, 300, 1, 0, &n);
    cr_assert_eq(n, 3);
    for (int k = 0; k < 3; ++k) {
        cr_assert_eq(c[k * 300], 1);
        for (int i = 1; i < 300; ++i)
            cr_assert_eq(c[k * 300 + i], tok[k * 300 + i]);
    }
    free(c);
    c = rt_calib_chunks(tok, 1000, 100, -1, 4, &n);
    cr_assert_eq(n, 4);
    cr_assert_eq(c[100], tok[100]);
    free(c);
    cr_assert_null(rt_calib_chunks(tok, 99, 100, 1, 0, &n));
    cr_assert_eq(n, 0);
}

Test(calib, sample)
{
    int32_t tok[1000];
    for (int i = 0; i < 1000; ++i)
        tok[i] = i;
    /* golden: chunk starts drawn by splitmix64 (checked against an independent Python
     * implementation of the documented rule) */
    static const struct {
        size_t n;
        int ns;
        uint64_t seed;
        int32_t start[5];
    } g[] = {
        {1000, 4, 7, {0, 400, 600, 700}},       /* 10 whole chunks: 4 distinct ones */
        {1000, 4, 8, {100, 200, 300, 500}},
        {250, 5, 7, {16, 25, 38, 72, 140}},     /* 2 whole chunks < 5: windows anywhere */
    };
    for (size_t k = 0; k < sizeof g / sizeof g[0]; ++k) {
        int32_t *c = rt_calib_sample(tok, g[k].n, 100, -1, g[k].ns, g[k].seed);
        cr_assert_not_null(c);
        for (int i = 0; i < g[k].ns; ++i) {
            cr_assert_eq(c[i * 100], g[k].start[i], "case %zu chunk %d: %d", k, i, c[i * 100]);
            for (int t = 1; t < 100; ++t)
                cr_assert_eq(c[i * 100 + t], c[i * 100] + t);
        }
        free(c);
    }
    int32_t *c = rt_calib_sample(tok, 1000, 100, 1, 10, 3); /* all ten, BOS first */
    cr_assert_not_null(c);
    for (int i = 0; i < 10; ++i) {
        cr_assert_eq(c[i * 100], 1);
        cr_assert_eq(c[i * 100 + 1], i * 100 + 1);
    }
    free(c);
    cr_assert_null(rt_calib_sample(tok, 99, 100, 1, 1, 0));
    cr_assert_null(rt_calib_sample(tok, 1000, 100, 1, 0, 0));
    cr_assert_null(rt_calib_sample(NULL, 1000, 100, 1, 1, 0));
}

/* ---------- importance statistics ---------- */

Test(imatrix, sums_and_llama_format)
{
    const int n = 5;
    float x[3 * 5], y[2 * 3];
    for (int i = 0; i < 15; ++i)
        x[i] = (float)(i % 7) - 2.5f;
    for (int i = 0; i < 6; ++i)
        y[i] = 0.25f * (float)(i + 1);
    rt_imatrix *im = rt_imatrix_create();
    cr_assert_not_null(im);
    char msg[RT_MSG_SIZE];
    cr_assert_eq(rt_imatrix_add(im, "blk.0.ffn_up.weight", x, 2, n, msg), RT_OK, "%s", msg);
    cr_assert_eq(rt_imatrix_add(im, "blk.0.ffn_up.weight", x + 2 * n, 1, n, msg), RT_OK, "%s", msg);
    cr_assert_eq(rt_imatrix_add(im, "blk.0.attn_k.weight", y, 2, 3, msg), RT_OK, "%s", msg);
    cr_assert_eq(rt_imatrix_add(im, "blk.0.attn_k.weight", y, 1, 4, msg), RT_ERR_ARG);
    float bad[3] = {1, NAN, 2};
    cr_assert_eq(rt_imatrix_add(im, "blk.0.attn_k.weight", bad, 1, 3, msg), RT_ERR_ARG);
    cr_assert_eq(rt_imatrix_n_entries(im), 2);
    int cols;
    int64_t count;
    const double *s1;
    const double *s2 = rt_imatrix_sums(im, "blk.0.ffn_up.weight", &cols, &s1, &count);
    cr_assert(s2 && cols == n && count == 3);
    for (int j = 0; j < n; ++j) {
        double a = 0, b = 0;
        for (int r = 0; r < 3; ++r) {
            a += (double)x[r * n + j] * x[r * n + j];
            b += x[r * n + j];
        }
        cr_assert_eq(s2[j], a);
        cr_assert_eq(s1[j], b);
    }
    cr_assert_null(rt_imatrix_sums(im, "nope", NULL, NULL, NULL));

    /* written as llama-imatrix does, read back by input's imatrix reader */
    char *dir = tu_mkdtemp(), path[4096];
    snprintf(path, sizeof path, "%s/im.gguf", dir);
    gguf_writer *w = gguf_writer_create();
    char gmsg[GGUF_MSG_SIZE];
    cr_assert_eq(rt_imatrix_declare(im, w, "cal.txt", 7, 64, msg), RT_OK, "%s", msg);
    cr_assert_eq(gguf_writer_open(w, path, gmsg), GGUF_OK, "%s", gmsg);
    cr_assert_eq(rt_imatrix_write_data(im, w, msg), RT_OK, "%s", msg);
    cr_assert_eq(gguf_writer_finish(w, gmsg), GGUF_OK, "%s", gmsg);
    gguf_writer_free(w);
    inp_imatrix *li;
    char smsg[INP_MSG_SIZE];
    cr_assert_eq(inp_imatrix_load(path, &li, smsg), INP_OK, "%s", smsg);
    cr_assert_eq(inp_imatrix_n_entries(li), 2);
    cr_assert_eq(inp_imatrix_chunk_count(li), 7);
    cr_assert_str_eq(inp_imatrix_dataset(li), "cal.txt");
    size_t nv;
    const float *v = inp_imatrix_find(li, "blk.0.ffn_up.weight", &nv);
    cr_assert(v && nv == (size_t)n);
    for (int j = 0; j < n; ++j)
        cr_assert_eq(v[j], (float)s2[j] / 3.0f);
    v = inp_imatrix_find(li, "blk.0.attn_k.weight", &nv);
    cr_assert(v && nv == 3);
    cr_assert_eq(v[2], (0.75f * 0.75f + 1.5f * 1.5f) / 2.0f);
    inp_imatrix_free(li);

    /* the raw file: keys, tensor names, shapes and the in_sum tensor */
    gguf_reader *r;
    cr_assert_eq(gguf_open(path, &r, gmsg), GGUF_OK, "%s", gmsg);
    const gguf_str *gt;
    cr_assert_eq(gguf_get_str(r, "general.type", &gt), GGUF_OK);
    cr_assert_str_eq(gt->str, "imatrix");
    int64_t cs;
    cr_assert_eq(gguf_get_int(r, "imatrix.chunk_size", &cs), GGUF_OK);
    cr_assert_eq(cs, 64);
    cr_assert_eq(gguf_n_tensors(r), 6);
    static const char *const names[] = {"blk.0.attn_k.weight.in_sum2", "blk.0.attn_k.weight.counts",
                                        "blk.0.attn_k.weight.in_sum", "blk.0.ffn_up.weight.in_sum2",
                                        "blk.0.ffn_up.weight.counts", "blk.0.ffn_up.weight.in_sum"};
    for (int i = 0; i < 6; ++i)
        cr_assert_str_eq(gguf_tensor_at(r, i)->name, names[i]);
    const gguf_tensor *t = gguf_tensor_at(r, 5);
    cr_assert(t->type == GGUF_F32 && t->n_dims == 1 && t->ne[0] == n);
    for (int j = 0; j < n; ++j)
        cr_assert_eq(((const float *)t->data)[j], (float)s1[j]);
    cr_assert_eq(((const float *)gguf_tensor_at(r, 4)->data)[0], 3.0f);
    gguf_close(r);

    rt_imatrix *empty = rt_imatrix_create();
    w = gguf_writer_create();
    cr_assert_eq(rt_imatrix_declare(empty, w, "x", 1, 1, msg), RT_ERR_ARG);
    gguf_writer_free(w);
    rt_imatrix_free(empty);
    rt_imatrix_free(im);
    free(dir);
}

/* ---------- sequential GPTQ on the demo model ---------- */

typedef struct {
    int count;
    int bad_order;
    int not_better;
    char names[64][GGUF_MAX_NAME];
    double ratio_max;
} emit_log;

static int log_emit(void *user, const rt_calib_info *info, const void *data, size_t nbytes)
{
    emit_log *l = user;
    static const char *const order[] = {"attn_q", "attn_k", "attn_v", "attn_output",
                                        "ffn_gate", "ffn_up", "ffn_down"};
    char want[GGUF_MAX_NAME];
    snprintf(want, sizeof want, "blk.%d.%s.weight", l->count / 7, order[l->count % 7]);
    if (strcmp(want, info->name) || info->layer != l->count / 7)
        l->bad_order++;
    if (nbytes != lq_row_size(info->type, info->cols) * (size_t)info->rows)
        l->bad_order++;
    const double r = info->res.loss_gptq / info->res.loss_rtn;
    if (!(r < 1))
        l->not_better++;
    if (r > l->ratio_max)
        l->ratio_max = r;
    if (l->count < 64)
        snprintf(l->names[l->count], GGUF_MAX_NAME, "%s", info->name);
    l->count++;
    (void)data;
    return 0;
}

/* The shared text `rel` tokenized with src's vocabulary and cut into at most max_chunks chunks
 * of n_ctx tokens (BOS 1 first); *n_chunks receives their number. */
static int32_t *shared_chunks(inp_source *src, const char *rel, int n_ctx, int max_chunks, int *n_chunks)
{
    char *path = tu_shared_path(rel), *text, msg[RT_MSG_SIZE];
    size_t len, n;
    cr_assert_eq(inp_text_load(path, &text, &len, msg), INP_OK, "%s", msg);
    tok_model *tok;
    cr_assert_eq(tok_from_gguf(inp_metadata(src), &tok, msg), RT_OK, "%s", msg);
    int32_t *ids;
    cr_assert_eq(tok_encode(tok, text, len, tok_default_flags(tok), &ids, &n, msg), RT_OK,
                 "%s", msg);
    int32_t *chunks = rt_calib_chunks(ids, n, n_ctx, 1, max_chunks, n_chunks);
    cr_assert_not_null(chunks);
    tok_free(tok);
    free(ids);
    free(text);
    free(path);
    return chunks;
}

/* Mean KL(float || model) over the second half of each chunk, and the perplexity. */
static void eval_model(rt_model *m, const int32_t *chunks, int nch, int n_ctx,
                       const float *base_logits, float *logits_out, double *kld, double *ppl)
{
    const int V = rt_model_hparams(m)->n_vocab, first = n_ctx / 2, nr = n_ctx - first - 1;
    float *lg = malloc((size_t)(n_ctx - first) * V * sizeof(float));
    double sum = 0, *nll = malloc((size_t)nr * sizeof(double));
    int64_t cnt = 0;
    rt_ppl_acc acc = {0, 0, 0};
    char msg[RT_MSG_SIZE];
    for (int c = 0; c < nch; ++c) {
        const int32_t *tk = chunks + (size_t)c * n_ctx;
        cr_assert_eq(rt_forward(m, tk, n_ctx, first, lg, msg), RT_OK, "%s", msg);
        rt_ppl_row_nll(lg, V, tk + first + 1, nr, nll, 1);
        rt_ppl_add(&acc, nll, nr);
        for (int r = 0; r < nr; ++r) {
            const float *a = lg + (size_t)r * V;
            const size_t boff = ((size_t)c * nr + r) * V;
            if (logits_out)
                memcpy(logits_out + boff, a, (size_t)V * sizeof(float));
            if (!base_logits)
                continue;
            const float *b = base_logits + boff;
            double ma = a[0], mb = b[0], sa = 0, sb = 0;
            for (int i = 1; i < V; ++i) {
                ma = a[i] > ma ? a[i] : ma;
                mb = b[i] > mb ? b[i] : mb;
            }
            for (int i = 0; i < V; ++i) {
                sa += exp(a[i] - ma);
                sb += exp(b[i] - mb);
            }
            const double la = ma + log(sa), lb = mb + log(sb);
            double k = 0;
            for (int i = 0; i < V; ++i) {
                const double pb = exp(b[i] - lb);
                k += pb * ((b[i] - lb) - (a[i] - la));
            }
            sum += k;
            cnt++;
        }
    }
    *kld = cnt ? sum / (double)cnt : 0;
    *ppl = rt_ppl_value(&acc);
    free(lg);
    free(nll);
}

static void check_demo_gptq(int type, double min_gain)
{
    TU_REQUIRE_SHARED();
    char *dir = tu_shared_path("models/classics-7m"), msg[RT_MSG_SIZE];
    inp_source *src;
    cr_assert_eq(inp_open(dir, &src, msg), INP_OK, "%s", msg);
    rt_model *mf, *mg, *mr;
    cr_assert_eq(rt_model_load(src, &mf, msg), RT_OK, "%s", msg);
    cr_assert_eq(rt_model_load(src, &mg, msg), RT_OK, "%s", msg);
    cr_assert_eq(rt_model_load(src, &mr, msg), RT_OK, "%s", msg);
    const rt_hparams *hp = rt_model_hparams(mf);
    const int n_ctx = 128;
    /* one thread: this machine is shared, and idle OpenMP threads spinning cost more than
     * they bring on a model this small */
    rt_model_set_threads(mf, 1);
    rt_model_set_threads(mg, 1);
    rt_model_set_threads(mr, 1);

    int ncal, nev;
    int32_t *cchunks = shared_chunks(src, "text/calibration.txt", n_ctx, 32, &ncal);
    int32_t *echunks = shared_chunks(src, "text/eval-classics.txt", n_ctx, 16, &nev);
    cr_assert_eq(ncal, 32);
    cr_assert_eq(nev, 16);

    /* GPTQ, sequential */
    rt_calib_opts o;
    rt_calib_opts_init(&o);
    o.default_type = type;
    o.gptq.nthreads = 1;
    emit_log log;
    memset(&log, 0, sizeof log);
    o.emit = log_emit;
    o.user = &log;
    cr_assert_eq(rt_calib_gptq(mg, src, cchunks, ncal, n_ctx, &o, msg), RT_OK, "%s", msg);
    cr_assert_eq(log.count, 7 * hp->n_layer);
    cr_assert_eq(log.bad_order, 0, "emitted out of order, first: %s", log.names[0]);
    cr_assert_eq(log.not_better, 0, "GPTQ loss not below rounding (worst ratio %.3f)",
                 log.ratio_max);

    /* the same tensors rounded by llama.cpp's rule (imatrix-free) */
    for (int64_t i = 0; i < inp_n_tensors(src); ++i) {
        const inp_tensor *t = inp_tensor_at(src, i);
        if (strncmp(t->name, "blk.", 4) || t->n_dims != 2)
            continue;
        float *w = malloc((size_t)(t->ne[0] * t->ne[1]) * sizeof(float));
        void *q = malloc(lq_row_size(type, t->ne[0]) * (size_t)t->ne[1]);
        cr_assert_eq(inp_read_f32(src, i, 0, t->ne[1], w, msg), INP_OK, "%s", msg);
        cr_assert_eq(lq_quantize_rows(type, w, q, t->ne[1], t->ne[0], NULL, 0, msg), LQ_OK);
        cr_assert_eq(rt_model_set_weight(mr, t->name, type, q, msg), RT_OK, "%s", msg);
        free(w);
        free(q);
    }

    const int V = hp->n_vocab, nr = n_ctx - n_ctx / 2 - 1;
    float *base = malloc((size_t)nev * nr * V * sizeof(float));
    double kf, pf, kg, pg, kr, pr;
    eval_model(mf, echunks, nev, n_ctx, NULL, base, &kf, &pf);
    eval_model(mg, echunks, nev, n_ctx, base, NULL, &kg, &pg);
    eval_model(mr, echunks, nev, n_ctx, base, NULL, &kr, &pr);
    cr_log_info("%s: PPL float %.4f rtn %.4f gptq %.4f; KLD rtn %.6f gptq %.6f (%.2fx)",
                gguf_type_info(type)->name, pf, pr, pg, kr, kg, kr / kg);
    cr_assert(kg * min_gain < kr, "%s: KLD gptq %.6f vs rounding %.6f",
              gguf_type_info(type)->name, kg, kr);
    free(base);
    free(cchunks);
    free(echunks);
    rt_model_free(mf);
    rt_model_free(mg);
    rt_model_free(mr);
    inp_close(src);
    free(dir);
}

Test(calib, demo_gptq_q4_0) { check_demo_gptq(GGUF_Q4_0, 1.0); }
Test(calib, demo_gptq_q3_K) { check_demo_gptq(GGUF_Q3_K, 1.0); }

/* ---------- thread-count independence of the whole calibration ---------- */

typedef struct {
    uint64_t hash;
    int count;
} hash_log;

static int hash_emit(void *user, const rt_calib_info *info, const void *data, size_t nbytes)
{
    hash_log *h = user;
    const unsigned char *p = data;
    for (size_t i = 0; i < nbytes; ++i)
        h->hash = (h->hash ^ p[i]) * 1099511628211ull;
    h->count++;
    (void)info;
    return 0;
}

static uint64_t calib_hash(inp_source *src, const int32_t *chunks, int nch, int n_ctx, int nt,
                           bool asym)
{
    char msg[RT_MSG_SIZE];
    rt_model *m;
    cr_assert_eq(rt_model_load(src, &m, msg), RT_OK, "%s", msg);
    rt_model_set_threads(m, nt);
    rt_calib_opts o;
    rt_calib_opts_init(&o);
    o.default_type = GGUF_Q4_K;
    o.gptq.nthreads = nt;
    o.gptq.act_order = true;
    o.asym = asym;
    hash_log h = {1469598103934665603ull, 0};
    o.emit = hash_emit;
    o.user = &h;
    cr_assert_eq(rt_calib_gptq(m, src, chunks, nch, n_ctx, &o, msg), RT_OK, "%s", msg);
    cr_assert_eq(h.count, 7 * rt_model_hparams(m)->n_layer);
    rt_model_free(m);
    return h.hash;
}

Test(calib, thread_count_independent)
{
    TU_REQUIRE_SHARED();
    char *dir = tu_shared_path("models/classics-7m"), msg[RT_MSG_SIZE];
    inp_source *src;
    cr_assert_eq(inp_open(dir, &src, msg), INP_OK, "%s", msg);
    int nch;
    int32_t *chunks = shared_chunks(src, "text/calibration.txt", 64, 6, &nch);
    cr_assert_eq(nch, 6);
    const uint64_t a = calib_hash(src, chunks, nch, 64, 1, false);
    const uint64_t b = calib_hash(src, chunks, nch, 64, 2, false);
    cr_assert_eq(a, b, "quantized bytes differ between 1 and 2 threads");
    const uint64_t c = calib_hash(src, chunks, nch, 64, 1, true);
    const uint64_t d = calib_hash(src, chunks, nch, 64, 2, true);
    cr_assert_eq(c, d, "asymmetric: quantized bytes differ between 1 and 2 threads");
    cr_assert_neq(a, c);
    free(chunks);
    inp_close(src);
    free(dir);
}

/* A tensor left out (type_of -1) stays float; a weight source without the tensors, or a type
 * the solver cannot write, fails cleanly. */
static int only_down(void *user, const char *name, int64_t cols, int64_t rows)
{
    (void)user, (void)cols, (void)rows;
    return strstr(name, "ffn_down") ? GGUF_Q8_0 : -1;
}

static int count_emit(void *user, const rt_calib_info *info, const void *data, size_t nbytes)
{
    (void)info, (void)data, (void)nbytes;
    return ++*(int *)user >= 2; /* stop after the second tensor */
}

Test(calib, selection_and_errors)
{
    TU_REQUIRE_SHARED();
    char *dir = tu_shared_path("models/classics-7m"), msg[RT_MSG_SIZE];
    inp_source *src;
    cr_assert_eq(inp_open(dir, &src, msg), INP_OK, "%s", msg);
    rt_model *m;
    cr_assert_eq(rt_model_load(src, &m, msg), RT_OK, "%s", msg);
    rt_model_set_threads(m, 1);
    int nch;
    int32_t *chunks = shared_chunks(src, "text/calibration.txt", 32, 2, &nch);

    rt_calib_opts o;
    rt_calib_opts_init(&o);
    o.gptq.nthreads = 1;
    o.type_of = only_down;
    int n = 0;
    o.emit = count_emit;
    o.user = &n;
    cr_assert_eq(rt_calib_gptq(m, src, chunks, nch, 32, &o, msg), RT_ERR_HOOK);
    cr_assert_eq(n, 2);
    cr_assert(strstr(msg, "blk.1.ffn_down.weight"), "%s", msg);

    o.type_of = NULL;
    o.default_type = GGUF_F16;
    cr_assert_eq(rt_calib_gptq(m, src, chunks, nch, 32, &o, msg), RT_ERR_ARG);
    o.default_type = GGUF_Q4_0;
    cr_assert_eq(rt_calib_gptq(m, src, chunks, 0, 32, &o, msg), RT_ERR_ARG);
    int32_t badtok[32];
    memcpy(badtok, chunks, sizeof badtok);
    badtok[5] = 1 << 30;
    cr_assert_eq(rt_calib_gptq(m, src, badtok, 1, 32, &o, msg), RT_ERR_ARG);
    free(chunks);
    rt_model_free(m);
    inp_close(src);
    free(dir);
}

/* Asymmetric target: where the float and the quantized model feed a group the same input
 * (layer 0's q,k,v: nothing is quantized before them) W' = W, so the bytes equal classic
 * GPTQ's; later they differ. The importance collected during GPTQ equals the float pass's for
 * that first group and not after it. And on held-out text the asymmetric target lowers the KL
 * divergence below the classic one's (measured at 128 x 256 in docs/gptq.md; here 32 x 128). */
typedef struct {
    uint64_t h[64];
    int n;
    rt_model *eval; /* or NULL: the tensors are swapped into it */
} tensor_hashes;

static int hashes_emit(void *user, const rt_calib_info *info, const void *data, size_t nbytes)
{
    tensor_hashes *t = user;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < nbytes; ++i)
        h = (h ^ ((const unsigned char *)data)[i]) * 1099511628211ull;
    if (t->n < 64)
        t->h[t->n] = h;
    t->n++;
    char msg[RT_MSG_SIZE];
    if (t->eval)
        cr_assert_eq(rt_model_set_weight(t->eval, info->name, info->type, data, msg), RT_OK,
                     "%s", msg);
    return 0;
}

Test(calib, asymmetric_target)
{
    TU_REQUIRE_SHARED();
    char *dir = tu_shared_path("models/classics-7m"), msg[RT_MSG_SIZE];
    inp_source *src;
    cr_assert_eq(inp_open(dir, &src, msg), INP_OK, "%s", msg);
    const int n_ctx = 128;
    int ncal, nev;
    int32_t *cchunks = shared_chunks(src, "text/calibration.txt", n_ctx, 32, &ncal);
    int32_t *echunks = shared_chunks(src, "text/eval-classics.txt", n_ctx, 16, &nev);

    tensor_hashes th[2];
    rt_imatrix *im[2];
    double kld[2], ppl[2];
    rt_model *mf;
    cr_assert_eq(rt_model_load(src, &mf, msg), RT_OK, "%s", msg);
    rt_model_set_threads(mf, 1);
    const int V = rt_model_hparams(mf)->n_vocab, nr = n_ctx - n_ctx / 2 - 1;
    float *base = malloc((size_t)nev * nr * V * sizeof(float));
    double kf, pf;
    eval_model(mf, echunks, nev, n_ctx, NULL, base, &kf, &pf);
    for (int a = 0; a < 2; ++a) {
        rt_model *m, *e;
        cr_assert_eq(rt_model_load(src, &m, msg), RT_OK, "%s", msg);
        cr_assert_eq(rt_model_load(src, &e, msg), RT_OK, "%s", msg);
        rt_model_set_threads(m, 1);
        rt_model_set_threads(e, 1);
        memset(&th[a], 0, sizeof th[a]);
        th[a].eval = e;
        im[a] = rt_imatrix_create();
        rt_calib_opts o;
        rt_calib_opts_init(&o);
        o.default_type = GGUF_Q4_0;
        o.gptq.nthreads = 1;
        o.asym = a == 1;
        o.emit = hashes_emit;
        o.user = &th[a];
        o.imatrix = im[a];
        rt_calib_stats st;
        o.stats = &st;
        cr_assert_eq(rt_calib_gptq(m, src, cchunks, ncal, n_ctx, &o, msg), RT_OK, "%s", msg);
        cr_assert_eq(th[a].n, 42);
        cr_assert_eq(st.n_tensors, 42);
        cr_assert_eq(st.tokens, (int64_t)ncal * n_ctx);
        cr_assert(st.forward > 0 && st.hessian > 0 && st.solver > 0 && st.total >= st.solver);
        cr_assert_eq(rt_imatrix_n_entries(im[a]), 42);
        eval_model(e, echunks, nev, n_ctx, base, NULL, &kld[a], &ppl[a]);
        rt_model_free(m);
        rt_model_free(e);
    }
    cr_log_info("Q4_0 32x128: KLD classic %.6f asymmetric %.6f", kld[0], kld[1]);
    for (int i = 0; i < 3; ++i)
        cr_assert_eq(th[0].h[i], th[1].h[i], "layer 0 tensor %d differs", i);
    int differ = 0;
    for (int i = 3; i < 42; ++i)
        differ += th[0].h[i] != th[1].h[i];
    cr_assert_geq(differ, 30);
    cr_assert_lt(kld[1], kld[0]);

    /* importance: layer 0's q,k,v input is the float one; ffn_down of layer 1 is not */
    rt_imatrix *fl = rt_imatrix_create();
    rt_calib_stats st;
    cr_assert_eq(rt_calib_imatrix(mf, cchunks, ncal, n_ctx, fl, &st, msg), RT_OK, "%s", msg);
    cr_assert_eq(rt_imatrix_n_entries(fl), 42);
    int cols, cols2;
    int64_t cnt, cnt2;
    const double *a0 = rt_imatrix_sums(fl, "blk.0.attn_v.weight", &cols, NULL, &cnt);
    const double *b0 = rt_imatrix_sums(im[0], "blk.0.attn_v.weight", &cols2, NULL, &cnt2);
    cr_assert(a0 && b0 && cols == cols2 && cnt == cnt2 && cnt == (int64_t)ncal * n_ctx);
    for (int j = 0; j < cols; ++j)
        cr_assert_eq(a0[j], b0[j]);
    a0 = rt_imatrix_sums(fl, "blk.1.ffn_down.weight", &cols, NULL, NULL);
    b0 = rt_imatrix_sums(im[0], "blk.1.ffn_down.weight", NULL, NULL, NULL);
    cr_assert_eq(cols, rt_model_hparams(mf)->n_ff);
    int same = 0;
    for (int j = 0; j < cols; ++j)
        same += a0[j] == b0[j];
    cr_assert_lt(same, cols / 2);
    rt_imatrix_free(fl);
    rt_imatrix_free(im[0]);
    rt_imatrix_free(im[1]);
    free(base);
    free(cchunks);
    free(echunks);
    rt_model_free(mf);
    inp_close(src);
    free(dir);
}

/* The whole job: model, tokenizer, chunk choice and plan from rt_calib_run. */
static int count_only(void *user, const rt_calib_info *info, const void *data, size_t nbytes)
{
    (void)data;
    int *n = user;
    cr_assert_eq(nbytes, lq_row_size(info->type, info->cols) * (size_t)info->rows);
    cr_assert(!strcmp(info->name, "blk.0.ffn_down.weight") || !strcmp(info->name, "blk.1.attn_v.weight"),
              "%s", info->name);
    cr_assert_eq(info->type, strstr(info->name, "ffn_down") ? GGUF_Q4_K : GGUF_Q8_0);
    cr_assert(info->res.loss_gptq < info->res.loss_rtn, "%s: %g vs %g", info->name,
              info->res.loss_gptq, info->res.loss_rtn);
    ++*n;
    return 0;
}

Test(calib, run)
{
    TU_REQUIRE_SHARED();
    char *dir = tu_shared_path("models/classics-7m"), *tp = tu_shared_path("text/calibration.txt");
    char msg[RT_MSG_SIZE], *text;
    size_t len;
    cr_assert_eq(inp_text_load(tp, &text, &len, msg), INP_OK, "%s", msg);
    inp_source *src;
    cr_assert_eq(inp_open(dir, &src, msg), INP_OK, "%s", msg);
    const rt_calib_plan plan[] = {{"blk.0.ffn_down.weight", GGUF_Q4_K},
                                  {"token_embd.weight", GGUF_Q4_K}, /* not a layer weight */
                                  {"blk.1.attn_v.weight", GGUF_Q8_0}};
    rt_calib_run_opts o;
    rt_calib_run_opts_init(&o);
    cr_assert_eq(o.n_samples, 128);
    cr_assert(o.gptq && o.calib.asym && o.calib.gptq.grid == LQ_GPTQ_GRID_WEIGHTED);
    o.n_samples = 3;
    o.nthreads = 1;
    o.plan = plan;
    o.n_plan = 3;
    int n = 0;
    o.calib.emit = count_only;
    o.calib.user = &n;
    rt_calib_stats st;
    o.calib.stats = &st;
    cr_assert_eq(rt_calib_run(src, text, len, &o, msg), RT_OK, "%s", msg);
    cr_assert_eq(n, 2);
    cr_assert_eq(o.n_ctx_used, 256); /* min(512, the model's 256) */
    cr_assert_eq(o.n_chunks_used, 3);
    cr_assert_gt(o.n_text_tokens, 40000);
    cr_assert_eq(st.tokens, 768);

    /* float pass: importance only */
    o.gptq = false;
    o.n_ctx = 32;
    cr_assert_eq(rt_calib_run(src, text, len, &o, msg), RT_ERR_ARG); /* no imatrix given */
    o.calib.imatrix = rt_imatrix_create();
    cr_assert_eq(rt_calib_run(src, text, len, &o, msg), RT_OK, "%s", msg);
    cr_assert_eq(rt_imatrix_n_entries(o.calib.imatrix), 42);
    int64_t cnt;
    cr_assert_not_null(rt_imatrix_sums(o.calib.imatrix, "blk.5.ffn_up.weight", NULL, NULL, &cnt));
    cr_assert_eq(cnt, 96);
    rt_imatrix_free(o.calib.imatrix);

    /* a text shorter than one chunk */
    o.gptq = true;
    o.n_ctx = 0;
    cr_assert_eq(rt_calib_run(src, "Too short.", 10, &o, msg), RT_ERR_FORMAT);
    cr_assert(strstr(msg, "fewer than one chunk of 256"), "%s", msg);
    free(text);
    free(tp);
    inp_close(src);
    free(dir);
}
