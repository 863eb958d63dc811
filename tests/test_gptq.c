/* pipeline/gptq.c: sequential GPTQ of the demo model against plain rounding, thread-count
 * independence, selection and errors, the asymmetric target and the importance pass (needs
 * ../shared; skipped without it); the groups of every registered architecture (synthetic
 * checkpoints). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/arch.h"
#include "input/synth.h"
#include "input/text.h"
#include "libquant/lq.h"
#include "pipeline/chunks.h"
#include "pipeline/gptq.h"
#include "runtime/perplexity.h"
#include "tests/testutil.h"
#include "tokenizer/tokenizer.h"

/* ---------- sequential GPTQ on the demo model ---------- */

typedef struct {
    int count;
    int bad_order;
    int not_better;
    char names[64][GGUF_MAX_NAME];
    double ratio_max;
} emit_log;

static int log_emit(void *user, const pl_gptq_info *info, const void *data, size_t nbytes)
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
    char *path = tu_shared_path(rel), *text, msg[PL_MSG_SIZE];
    size_t len, n;
    cr_assert_eq(inp_text_load(path, &text, &len, msg), INP_OK, "%s", msg);
    tok_model *tok;
    cr_assert_eq(tok_from_gguf(inp_metadata(src), &tok, msg), RT_OK, "%s", msg);
    int32_t *ids;
    cr_assert_eq(tok_encode(tok, text, len, tok_default_flags(tok), &ids, &n, msg), RT_OK,
                 "%s", msg);
    int32_t *chunks = pl_chunks_cut(ids, n, n_ctx, 1, max_chunks, n_chunks);
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
    char msg[PL_MSG_SIZE];
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
    char *dir = tu_shared_path("models/classics-7m"), msg[PL_MSG_SIZE];
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
    pl_gptq_opts o;
    pl_gptq_opts_init(&o);
    o.default_type = type;
    o.gptq.nthreads = 1;
    emit_log log;
    memset(&log, 0, sizeof log);
    o.emit = log_emit;
    o.user = &log;
    cr_assert_eq(pl_gptq_run(mg, src, cchunks, ncal, n_ctx, &o, msg), PL_OK, "%s", msg);
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

Test(gptq, demo_gptq_q4_0) { check_demo_gptq(GGUF_Q4_0, 1.0); }
Test(gptq, demo_gptq_q3_K) { check_demo_gptq(GGUF_Q3_K, 1.0); }

/* ---------- thread-count independence of the whole calibration ---------- */

typedef struct {
    uint64_t hash;
    int count;
} hash_log;

static int hash_emit(void *user, const pl_gptq_info *info, const void *data, size_t nbytes)
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
    char msg[PL_MSG_SIZE];
    rt_model *m;
    cr_assert_eq(rt_model_load(src, &m, msg), RT_OK, "%s", msg);
    rt_model_set_threads(m, nt);
    pl_gptq_opts o;
    pl_gptq_opts_init(&o);
    o.default_type = GGUF_Q4_K;
    o.gptq.nthreads = nt;
    o.gptq.act_order = true;
    o.asym = asym;
    hash_log h = {1469598103934665603ull, 0};
    o.emit = hash_emit;
    o.user = &h;
    cr_assert_eq(pl_gptq_run(m, src, chunks, nch, n_ctx, &o, msg), PL_OK, "%s", msg);
    cr_assert_eq(h.count, 7 * rt_model_hparams(m)->n_layer);
    rt_model_free(m);
    return h.hash;
}

Test(gptq, thread_count_independent)
{
    TU_REQUIRE_SHARED();
    char *dir = tu_shared_path("models/classics-7m"), msg[PL_MSG_SIZE];
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

static int count_emit(void *user, const pl_gptq_info *info, const void *data, size_t nbytes)
{
    (void)info, (void)data, (void)nbytes;
    return ++*(int *)user >= 2; /* stop after the second tensor */
}

Test(gptq, selection_and_errors)
{
    TU_REQUIRE_SHARED();
    char *dir = tu_shared_path("models/classics-7m"), msg[PL_MSG_SIZE];
    inp_source *src;
    cr_assert_eq(inp_open(dir, &src, msg), INP_OK, "%s", msg);
    rt_model *m;
    cr_assert_eq(rt_model_load(src, &m, msg), RT_OK, "%s", msg);
    rt_model_set_threads(m, 1);
    int nch;
    int32_t *chunks = shared_chunks(src, "text/calibration.txt", 32, 2, &nch);

    pl_gptq_opts o;
    pl_gptq_opts_init(&o);
    o.gptq.nthreads = 1;
    o.type_of = only_down;
    int n = 0;
    o.emit = count_emit;
    o.user = &n;
    cr_assert_eq(pl_gptq_run(m, src, chunks, nch, 32, &o, msg), PL_ERR_STOPPED);
    cr_assert_eq(n, 2);
    cr_assert(strstr(msg, "blk.1.ffn_down.weight"), "%s", msg);

    o.type_of = NULL;
    o.default_type = GGUF_F16;
    cr_assert_eq(pl_gptq_run(m, src, chunks, nch, 32, &o, msg), PL_ERR_ARG);
    o.default_type = GGUF_Q4_0;
    cr_assert_eq(pl_gptq_run(m, src, chunks, 0, 32, &o, msg), PL_ERR_ARG);
    int32_t badtok[32];
    memcpy(badtok, chunks, sizeof badtok);
    badtok[5] = 1 << 30;
    cr_assert_eq(pl_gptq_run(m, src, badtok, 1, 32, &o, msg), PL_ERR_ARG);
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

static int hashes_emit(void *user, const pl_gptq_info *info, const void *data, size_t nbytes)
{
    tensor_hashes *t = user;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < nbytes; ++i)
        h = (h ^ ((const unsigned char *)data)[i]) * 1099511628211ull;
    if (t->n < 64)
        t->h[t->n] = h;
    t->n++;
    char msg[PL_MSG_SIZE];
    if (t->eval)
        cr_assert_eq(rt_model_set_weight(t->eval, info->name, info->type, data, msg), RT_OK,
                     "%s", msg);
    return 0;
}

Test(gptq, asymmetric_target)
{
    TU_REQUIRE_SHARED();
    char *dir = tu_shared_path("models/classics-7m"), msg[PL_MSG_SIZE];
    inp_source *src;
    cr_assert_eq(inp_open(dir, &src, msg), INP_OK, "%s", msg);
    const int n_ctx = 128;
    int ncal, nev;
    int32_t *cchunks = shared_chunks(src, "text/calibration.txt", n_ctx, 32, &ncal);
    int32_t *echunks = shared_chunks(src, "text/eval-classics.txt", n_ctx, 16, &nev);

    tensor_hashes th[2];
    pl_imatrix_acc *im[2];
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
        im[a] = pl_imatrix_acc_create();
        pl_gptq_opts o;
        pl_gptq_opts_init(&o);
        o.default_type = GGUF_Q4_0;
        o.gptq.nthreads = 1;
        o.asym = a == 1;
        o.emit = hashes_emit;
        o.user = &th[a];
        o.imatrix = im[a];
        pl_calib_stats st;
        o.stats = &st;
        cr_assert_eq(pl_gptq_run(m, src, cchunks, ncal, n_ctx, &o, msg), PL_OK, "%s", msg);
        cr_assert_eq(th[a].n, 42);
        cr_assert_eq(st.n_tensors, 42);
        cr_assert_eq(st.tokens, (int64_t)ncal * n_ctx);
        cr_assert(st.forward > 0 && st.hessian > 0 && st.solver > 0 && st.total >= st.solver);
        cr_assert_eq(pl_imatrix_acc_n_entries(im[a]), 42);
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
    pl_imatrix_acc *fl = pl_imatrix_acc_create();
    pl_calib_stats st;
    cr_assert_eq(pl_imatrix_pass(mf, cchunks, ncal, n_ctx, fl, &st, msg), PL_OK, "%s", msg);
    cr_assert_eq(pl_imatrix_acc_n_entries(fl), 42);
    int cols, cols2;
    int64_t cnt, cnt2;
    const double *a0 = pl_imatrix_acc_sums(fl, "blk.0.attn_v.weight", &cols, NULL, &cnt);
    const double *b0 = pl_imatrix_acc_sums(im[0], "blk.0.attn_v.weight", &cols2, NULL, &cnt2);
    cr_assert(a0 && b0 && cols == cols2 && cnt == cnt2 && cnt == (int64_t)ncal * n_ctx);
    for (int j = 0; j < cols; ++j)
        cr_assert_eq(a0[j], b0[j]);
    a0 = pl_imatrix_acc_sums(fl, "blk.1.ffn_down.weight", &cols, NULL, NULL);
    b0 = pl_imatrix_acc_sums(im[0], "blk.1.ffn_down.weight", NULL, NULL, NULL);
    cr_assert_eq(cols, rt_model_hparams(mf)->n_ff);
    int same = 0;
    for (int j = 0; j < cols; ++j)
        same += a0[j] == b0[j];
    cr_assert_lt(same, cols / 2);
    pl_imatrix_acc_free(fl);
    pl_imatrix_acc_free(im[0]);
    pl_imatrix_acc_free(im[1]);
    free(base);
    free(cchunks);
    free(echunks);
    rt_model_free(mf);
    inp_close(src);
    free(dir);
}

/* ---------- the groups come from the architecture description ---------- */

typedef struct {
    const arch_desc *d;
    int count, bad_order, bad_loss;
} arch_log;

/* Tensor number count must be the description's next weight: layer by layer, group by group. */
static int arch_emit(void *user, const pl_gptq_info *info, const void *data, size_t nbytes)
{
    arch_log *l = user;
    int per_layer = 0, k = l->count, found = 0;
    for (size_t g = 0; g < l->d->n_groups; ++g)
        for (int w = 0; w < ARCH_GROUP_MAX && l->d->groups[g].weights[w]; ++w)
            per_layer++;
    char want[GGUF_MAX_NAME];
    for (size_t g = 0; g < l->d->n_groups && !found; ++g)
        for (int w = 0; w < ARCH_GROUP_MAX && l->d->groups[g].weights[w] && !found; ++w)
            if (k % per_layer == 0) {
                snprintf(want, sizeof want, "blk.%d.%s", l->count / per_layer, l->d->groups[g].weights[w]);
                found = 1;
            } else
                k--;
    if (!found || strcmp(want, info->name) || nbytes != lq_row_size(info->type, info->cols) * (size_t)info->rows)
        l->bad_order++;
    if (!(info->res.loss_gptq <= info->res.loss_rtn) || !isfinite(info->res.loss_gptq))
        l->bad_loss++;
    l->count++;
    (void)data;
    return 0;
}

/* Every registered architecture (Llama, Qwen2 with Q/K/V biases, Qwen3 with Q/K norms): a small
 * synthetic checkpoint is quantized true-sequentially in its description's groups, each weight
 * once, GPTQ's loss never above plain rounding's. Needs no shared data. */
Test(gptq, groups_of_every_architecture)
{
    char *dir = tu_mkdtemp(), msg[PL_MSG_SIZE], path[4096];
    cr_assert_not_null(dir);
    for (size_t i = 0; i < arch_count(); i++) {
        const arch_desc *d = arch_at(i);
        inp_synth_opts so = inp_synth_defaults();
        so.hf_class = d->classes[0].name;
        so.dim = 64, so.layers = 2, so.heads = 4, so.kv_heads = 2, so.head_dim = 16, so.ffn = 96,
        so.vocab = 300, so.dtype = GGUF_F32;
        snprintf(path, sizeof path, "%s/%s", dir, d->name);
        cr_assert_eq(inp_synth_write(path, &so, NULL, msg), INP_OK, "%s: %s", d->name, msg);
        inp_source *src;
        cr_assert_eq(inp_open(path, &src, msg), INP_OK, "%s: %s", d->name, msg);
        rt_model *m;
        cr_assert_eq(rt_model_load(src, &m, msg), RT_OK, "%s: %s", d->name, msg);
        cr_assert_eq(rt_model_arch(m), d);
        rt_model_set_threads(m, 1);
        enum { NCH = 4, CTX = 32 };
        int32_t chunks[NCH * CTX];
        uint32_t x = 12345;
        for (int k = 0; k < NCH * CTX; k++) {
            x = x * 1664525u + 1013904223u;
            chunks[k] = k % CTX == 0 ? 1 : (int32_t)(3 + (x >> 8) % 290);
        }
        pl_gptq_opts o;
        pl_gptq_opts_init(&o);
        o.gptq.nthreads = 1;
        o.default_type = GGUF_Q4_0;
        arch_log l = {.d = d};
        o.emit = arch_emit;
        o.user = &l;
        cr_assert_eq(pl_gptq_run(m, src, chunks, NCH, CTX, &o, msg), PL_OK, "%s: %s", d->name, msg);
        int matrices = 0; /* the layer's matrices: each a weight of one group */
        for (size_t t = 0; t < d->n_layer; t++)
            matrices += arch_tensor_is_matrix(&d->layer[t]);
        cr_expect_eq(l.count, 2 * matrices, "%s: %d tensors", d->name, l.count);
        cr_expect_eq(l.bad_order, 0, "%s", d->name);
        cr_expect_eq(l.bad_loss, 0, "%s", d->name);
        rt_model_free(m);
        inp_close(src);
    }
    tu_run("rm -rf '%s'", dir);
    free(dir);
}
