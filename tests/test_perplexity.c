/* Perplexity and KLD math on synthetic logits (closed-form answers), the log-probability file,
 * and — with ../shared — llama.cpp's published perplexities of the demo model on
 * eval-classics.txt (all 159 chunks of 256 tokens, ~41k tokens per model). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "input/input.h"
#include "libquant/lq.h"
#include "runtime/kernels.h"
#include "runtime/perplexity.h"
#include "runtime/runtime.h"
#include "tokenizer/tokenizer.h"
#include "tests/testutil.h"

Test(perplexity, uniform_logits_give_vocab_size)
{
    enum { V = 1000, N = 7 };
    float *lg = malloc(sizeof(float) * V * N);
    for (int i = 0; i < V * N; i++)
        lg[i] = 3.25f;
    int32_t tg[N] = {0, 5, 999, 17, 3, 3, 500};
    double nll[N];
    rt_ppl_row_nll(lg, V, tg, N, nll, 2);
    rt_ppl_acc a = {0};
    rt_ppl_add(&a, nll, N);
    cr_assert_float_eq(rt_ppl_value(&a), 1000.0, 1e-6);
    cr_assert(rt_ppl_uncertainty(&a) < 1e-3, "± %g", rt_ppl_uncertainty(&a)); /* rounding only */
    free(lg);
}

Test(perplexity, two_token_closed_form_and_uncertainty)
{
    /* p(target) = 1/(1+e^-2) for row 0 and 1/(1+e^2) for row 1 */
    float lg[4] = {2.0f, 0.0f, 0.0f, 2.0f};
    int32_t tg[2] = {0, 0};
    double nll[2];
    rt_ppl_row_nll(lg, 2, tg, 2, nll, 1);
    const double a = log1p(exp(-2.0)), b = log1p(exp(2.0));
    cr_assert_float_eq(nll[0], a, 1e-7);
    cr_assert_float_eq(nll[1], b, 1e-7);
    rt_ppl_acc acc = {0};
    rt_ppl_add(&acc, nll, 2);
    const double mean = (a + b) / 2, var = (a * a + b * b) / 2 - mean * mean;
    cr_assert_float_eq(rt_ppl_value(&acc), exp(mean), 1e-6);
    cr_assert_float_eq(rt_ppl_uncertainty(&acc), sqrt(var / 1) * exp(mean), 1e-6);
}

static uint64_t rs = 12345;
static float frand(void)
{
    rs = rs * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rs >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

/* KLD from records against the exact double computation from both logit sets. */
Test(perplexity, kld_matches_exact_to_1e5)
{
    enum { V = 4096, N = 64 };
    float *base = malloc(sizeof(float) * V * N), *q = malloc(sizeof(float) * V * N);
    int32_t tg[N];
    for (int r = 0; r < N; r++) {
        for (int i = 0; i < V; i++) {
            base[r * V + i] = 4.0f * frand() + (i % 53 == 0 ? 6.0f : 0.0f);
            q[r * V + i] = base[r * V + i] + 0.3f * frand();
        }
        tg[r] = (r * 131) % V;
    }
    const size_t rsz = rt_logp_record_size(V);
    unsigned char *rec = malloc(rsz * N);
    for (int r = 0; r < N; r++)
        rt_logp_encode(base + r * V, V, tg[r], rec + r * rsz);
    rt_kld *k = rt_kld_create();
    char msg[RT_MSG_SIZE];
    cr_assert_eq(rt_kld_add(k, q, V, tg, rec, N, 2, msg), RT_OK, "%s", msg);
    rt_kld_stats s;
    cr_assert_eq(rt_kld_stats_get(k, &s, msg), RT_OK);
    double sum_kld = 0, sum_nll = 0, sum_nllb = 0, sum_dp = 0, kmax = 0;
    int same = 0;
    for (int r = 0; r < N; r++) {
        const float *b = base + r * V, *x = q + r * V;
        double mb = -1e30, mq = -1e30, zb = 0, zq = 0;
        int ab = 0, aq = 0;
        for (int i = 0; i < V; i++) {
            if (b[i] > mb) { mb = b[i]; ab = i; }
            if (x[i] > mq) { mq = x[i]; aq = i; }
        }
        for (int i = 0; i < V; i++) {
            zb += exp(b[i] - mb);
            zq += exp(x[i] - mq);
        }
        double kl = 0;
        for (int i = 0; i < V; i++) {
            const double lpb = b[i] - mb - log(zb), lpq = x[i] - mq - log(zq);
            kl += exp(lpb) * (lpb - lpq);
        }
        const double nb = -(b[tg[r]] - mb - log(zb)), nq = -(x[tg[r]] - mq - log(zq));
        sum_kld += kl;
        kmax = fmax(kmax, kl);
        sum_nll += nq;
        sum_nllb += nb;
        sum_dp += exp(-nq) - exp(-nb);
        same += ab == aq;
    }
    cr_assert(fabs(s.kld - sum_kld / N) < 1e-5, "mean KLD %.8f vs exact %.8f", s.kld, sum_kld / N);
    cr_assert(fabs(s.kld_pct[0] - kmax) < 1e-4, "max KLD %.8f vs %.8f", s.kld_pct[0], kmax);
    cr_assert_float_eq(s.ppl, exp(sum_nll / N), 1e-6 * exp(sum_nll / N));
    cr_assert_float_eq(s.ppl_base, exp(sum_nllb / N), 1e-5 * exp(sum_nllb / N));
    cr_assert(fabs(s.dp - sum_dp / N) < 1e-7);
    cr_assert_float_eq(s.same_top, (double)same / N, 1e-12);
    cr_assert(s.kld > 0.01, "the test distributions should differ (KLD %g)", s.kld);
    /* a model against its own base: KLD ~ 0, same top 100 %, Δp ~ 0 */
    rt_kld *k0 = rt_kld_create();
    cr_assert_eq(rt_kld_add(k0, base, V, tg, rec, N, 1, msg), RT_OK);
    cr_assert_eq(rt_kld_stats_get(k0, &s, msg), RT_OK);
    cr_assert(fabs(s.kld) < 1e-5, "self KLD %g", s.kld);
    cr_assert_float_eq(s.same_top, 1.0, 1e-12);
    cr_assert(fabs(s.dp) < 1e-6);
    cr_assert_float_eq(s.ppl, s.ppl_base, 1e-5 * s.ppl);
    rt_kld_free(k0);
    rt_kld_free(k);
    free(rec);
    free(base);
    free(q);
}

Test(perplexity, logp_file_roundtrip_and_corruption)
{
    char *dir = tu_mkdtemp();
    char path[4096];
    snprintf(path, sizeof path, "%s/base.logp", dir);
    enum { V = 10, CTX = 8, NCH = 2 };
    int32_t toks[CTX * NCH];
    for (int i = 0; i < CTX * NCH; i++)
        toks[i] = i % V;
    rt_logp_header h = {.n_vocab = V, .n_ctx = CTX, .n_chunk = NCH, .first = CTX / 2, .range = RT_LOGP_RANGE};
    FILE *f = fopen(path, "wb");
    char msg[RT_MSG_SIZE];
    cr_assert_eq(rt_logp_write_header(f, &h, toks, msg), RT_OK);
    const size_t rsz = rt_logp_record_size(V);
    unsigned char rec[64];
    float lg[V] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    rt_logp_encode(lg, V, 3, rec);
    float lmax, lt;
    int32_t top;
    memcpy(&lmax, rec, 4);
    memcpy(&lt, rec + 4, 4);
    memcpy(&top, rec + 8, 4);
    double z = 0;
    for (int i = 0; i < V; i++)
        z += exp(lg[i] - 9.0);
    cr_assert_float_eq(lmax, -log(z), 1e-6);
    cr_assert_float_eq(lt, -6.0 - log(z), 1e-6);
    cr_assert_eq(top, 9);
    for (int r = 0; r < NCH * (CTX - 1 - CTX / 2); r++)
        cr_assert_eq(fwrite(rec, rsz, 1, f), 1);
    fclose(f);

    size_t n;
    unsigned char *buf = tu_read_file(path, &n);
    f = fopen(path, "rb");
    rt_logp_header g;
    int32_t *t2;
    cr_assert_eq(rt_logp_read_header(f, n, &g, &t2, msg), RT_OK, "%s", msg);
    cr_assert_eq(g.n_vocab, V);
    cr_assert_eq(g.n_chunk, NCH);
    cr_assert(memcmp(t2, toks, sizeof toks) == 0);
    free(t2);
    fclose(f);
    /* truncated file, bad magic, token out of range */
    tu_write_file(path, buf, n - 1);
    f = fopen(path, "rb");
    cr_assert_eq(rt_logp_read_header(f, n - 1, &g, &t2, msg), RT_ERR_FORMAT);
    cr_assert(strstr(msg, "size"), "%s", msg);
    fclose(f);
    buf[0] = 'X';
    tu_write_file(path, buf, n);
    f = fopen(path, "rb");
    cr_assert_eq(rt_logp_read_header(f, n, &g, &t2, msg), RT_ERR_FORMAT);
    fclose(f);
    buf[0] = 'Q';
    int32_t badtok = V;
    memcpy(buf + 28 + 4 * 5, &badtok, 4);
    tu_write_file(path, buf, n);
    f = fopen(path, "rb");
    cr_assert_eq(rt_logp_read_header(f, n, &g, &t2, msg), RT_ERR_FORMAT);
    cr_assert(strstr(msg, "outside the vocabulary"), "%s", msg);
    fclose(f);
    free(buf);
    free(dir);
}

/* ---------------------------------------------------------------- llama.cpp's figures */

/* PPL of TEXT as llama-perplexity computes it (n_ctx chunks, second halves scored), at most
 * MAX_CHUNKS (0: all), PASS chunks per forward pass as the tool batches them (each chunk's
 * logits are those of its own pass), on one thread (no barriers to wait on on a busy machine);
 * the uncertainty into *unc when unc is not NULL. */
static double chunked_ppl(rt_model *m, tok_model *tok, const char *text, int n_ctx, int max_chunks, int pass,
                          double *unc)
{
    char msg[RT_MSG_SIZE];
    size_t len, ntok;
    char *txt = tu_read_file(text, &len);
    cr_assert_not_null(txt);
    int32_t *ids;
    cr_assert_eq(tok_encode(tok, txt, len, tok_default_flags(tok), &ids, &ntok, msg), RT_OK, "%s", msg);
    const int V = rt_model_hparams(m)->n_vocab, first = n_ctx / 2, ns = n_ctx - 1 - first;
    int n_chunk = (int)(ntok / (size_t)n_ctx);
    if (max_chunks > 0 && n_chunk > max_chunks)
        n_chunk = max_chunks;
    rt_model_set_threads(m, 1);
    float *lg = malloc(sizeof(float) * (size_t)pass * (n_ctx - first) * V);
    double *nll = malloc(sizeof(double) * ns);
    rt_ppl_acc acc = {0};
    for (int c0 = 0; c0 < n_chunk; c0 += pass) {
        const int np = n_chunk - c0 < pass ? n_chunk - c0 : pass;
        cr_assert_eq(rt_ppl_chunks_logits(m, ids + (size_t)c0 * n_ctx, np, n_ctx, tok_bos(tok), lg, msg), RT_OK,
                     "%s", msg);
        for (int i = 0; i < np; i++) {
            const int32_t *ct = ids + (size_t)(c0 + i) * n_ctx;
            rt_ppl_row_nll(lg + (size_t)i * (n_ctx - first) * V, V, ct + first + 1, ns, nll, 1);
            rt_ppl_add(&acc, nll, ns);
        }
    }
    if (unc)
        *unc = rt_ppl_uncertainty(&acc);
    free(lg);
    free(nll);
    free(ids);
    free(txt);
    return rt_ppl_value(&acc);
}

static double eval_ppl(const char *model, const char *text, int n_ctx, double *unc)
{
    char msg[RT_MSG_SIZE > INP_MSG_SIZE ? RT_MSG_SIZE : INP_MSG_SIZE];
    inp_source *src;
    cr_assert_eq(inp_open(model, &src, msg), INP_OK, "%s", msg);
    rt_model *m;
    cr_assert_eq(rt_model_load(src, &m, msg), RT_OK, "%s", msg);
    tok_model *tok;
    cr_assert_eq(tok_from_gguf(inp_metadata(src), &tok, msg), RT_OK, "%s", msg);
    const double ppl = chunked_ppl(m, tok, text, n_ctx, 0, 3, unc);
    tok_free(tok);
    rt_model_free(m);
    inp_close(src);
    return ppl;
}

static void check_model(const char *file, double ref, double ref_unc, double pytorch)
{
    TU_REQUIRE_SHARED();
    char *model = tu_shared_path(file), *text = tu_shared_path("text/eval-classics.txt");
    double unc, ppl = eval_ppl(model, text, 256, &unc);
    const double rel = fabs(ppl - ref) / ref;
    cr_assert(rel <= 2e-4, "%s: PPL %.4f vs llama.cpp %.4f (%.4f %%, limit 0.02 %%)", file, ppl, ref, 100 * rel);
    cr_assert(fabs(unc - ref_unc) / ref_unc <= 1e-3, "%s: ± %.5f vs llama.cpp %.5f", file, unc, ref_unc);
    if (pytorch > 0) {
        const double relp = fabs(ppl - pytorch) / pytorch;
        cr_assert(relp <= 1e-4, "%s: PPL %.6f vs PyTorch %.6f (%.4f %%, limit 0.01 %%)", file, ppl, pytorch,
                  100 * relp);
    }
    free(model);
    free(text);
}

/* ../shared/reference/README.md: eval-classics.txt, all 159 chunks, n_ctx 256. */
Test(perplexity, classics_f32_eval_classics_matches_llama_cpp_and_pytorch, .timeout = 600)
{
    check_model("reference/classics-7m-f32.gguf", 93.7779, 2.04548, 93.777631);
}

Test(perplexity, classics_q8_0_eval_classics_matches_llama_cpp, .timeout = 600)
{
    check_model("reference/classics-7m-q8_0.gguf", 93.8194, 2.04736, 0);
}

Test(perplexity, classics_q4_0_eval_classics_matches_llama_cpp, .timeout = 600)
{
    check_model("reference/classics-7m-q4_0.gguf", 94.1083, 2.05606, 0);
}

Test(perplexity, classics_q4_k_m_eval_classics_matches_llama_cpp, .timeout = 600)
{
    check_model("reference/classics-7m-q4_k_m.gguf", 93.8440, 2.04391, 0);
}

/* ---------------------------------------------------------------- a whole evaluation */

typedef struct {
    int next, bad_order;
    rt_ppl_acc acc;
    uint64_t hash;       /* of every nll and record, in order */
    int n_vocab;
} eval_log;

static int log_chunk(void *user, int c, const rt_ppl_chunk *ch)
{
    eval_log *l = user;
    l->bad_order += c != l->next++;
    rt_ppl_add(&l->acc, ch->nll, ch->n_scored);
    const unsigned char *p = (const unsigned char *)ch->nll;
    for (size_t i = 0; i < (size_t)ch->n_scored * sizeof(double); i++)
        l->hash = (l->hash ^ p[i]) * 1099511628211ull;
    for (size_t i = 0; ch->records && i < (size_t)ch->n_scored * rt_logp_record_size(l->n_vocab); i++)
        l->hash = (l->hash ^ ch->records[i]) * 1099511628211ull;
    return 0;
}

static int stop_at_second(void *user, int c, const rt_ppl_chunk *ch)
{
    (void)user, (void)ch;
    return c == 1;
}

/* rt_ppl_eval: chunks in order, the same figures as chunk-by-chunk evaluation, whatever the
 * thread count and the chunks per pass; the plan's division of the work. Repository model. */
Test(perplexity, eval_is_independent_of_threads_and_batch, .timeout = 600)
{
    char msg[RT_MSG_SIZE > INP_MSG_SIZE ? RT_MSG_SIZE : INP_MSG_SIZE], path[4096];
    snprintf(path, sizeof path, "%s/models/classics-7m", tu_root());
    inp_source *src;
    cr_assert_eq(inp_open(path, &src, msg), INP_OK, "%s", msg);
    rt_model *m;
    cr_assert_eq(rt_model_load(src, &m, msg), RT_OK, "%s", msg);
    tok_model *tok;
    cr_assert_eq(tok_from_gguf(inp_metadata(src), &tok, msg), RT_OK, "%s", msg);
    snprintf(path, sizeof path, "%s/models/eval-classics.txt", tu_root());
    size_t len, ntok;
    char *txt = tu_read_file(path, &len);
    cr_assert_not_null(txt);
    int32_t *ids;
    cr_assert_eq(tok_encode(tok, txt, len < 20000 ? len : 20000, tok_default_flags(tok), &ids, &ntok, msg), RT_OK);
    const int n_ctx = 64, n_chunk = 7, V = rt_model_hparams(m)->n_vocab, first = n_ctx / 2, ns = n_ctx - 1 - first;
    cr_assert_geq(ntok, (size_t)n_chunk * n_ctx);

    /* chunk by chunk, one thread */
    rt_model_set_threads(m, 1);
    float *lg = malloc(sizeof(float) * (size_t)(n_ctx - first) * V);
    double *nll = malloc(sizeof(double) * ns);
    rt_ppl_acc want = {0};
    for (int c = 0; c < n_chunk; c++) {
        cr_assert_eq(rt_ppl_chunk_logits(m, ids + (size_t)c * n_ctx, n_ctx, tok_bos(tok), lg, msg), RT_OK, "%s", msg);
        rt_ppl_row_nll(lg, V, ids + (size_t)c * n_ctx + first + 1, ns, nll, 1);
        rt_ppl_add(&want, nll, ns);
    }
    static const struct {
        int threads, batch, seq, workers;
    } runs[] = {{1, 64, 1, 1}, {3, 128, 2, 3}, {2, 512, 7, 1}, {2, 64, 1, 2}};
    uint64_t first_hash = 0;
    for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
        eval_log l = {.hash = 1469598103934665603ull, .n_vocab = V};
        const rt_ppl_eval_opts o = {.n_ctx = n_ctx, .n_chunk = n_chunk, .n_batch = runs[r].batch,
                                    .nthreads = runs[r].threads, .bos = tok_bos(tok), .nll = true,
                                    .records = true, .chunk = log_chunk, .user = &l};
        rt_ppl_plan p;
        rt_ppl_eval_plan(m, &o, &p);
        cr_assert(p.n_seq == runs[r].seq && p.n_workers == runs[r].workers, "run %zu: %d x %d", r, p.n_seq,
                  p.n_workers);
        cr_assert_eq(rt_ppl_eval(m, ids, &o, msg), RT_OK, "%s", msg);
        cr_assert_eq(l.next, n_chunk);
        cr_assert_eq(l.bad_order, 0);
        cr_assert_eq(l.acc.count, want.count);
        cr_assert_eq(l.acc.nll, want.nll, "run %zu: sum of nll %.17g, chunk by chunk %.17g", r, l.acc.nll, want.nll);
        if (r == 0)
            first_hash = l.hash;
        cr_assert_eq(l.hash, first_hash, "run %zu: nll or records differ", r);
    }
    /* no callback at all, a callback that stops, bad arguments */
    rt_ppl_eval_opts o = {.n_ctx = n_ctx, .n_chunk = 3, .n_batch = 64, .nthreads = 1, .bos = -1};
    cr_assert_eq(rt_ppl_eval(m, ids, &o, msg), RT_OK, "%s", msg);
    o.chunk = stop_at_second;
    cr_assert_eq(rt_ppl_eval(m, ids, &o, msg), RT_ERR_HOOK);
    cr_assert(strstr(msg, "chunk 2: stopped"), "%s", msg);
    cr_assert_eq(rt_ppl_eval(m, ids, &(rt_ppl_eval_opts){.n_ctx = 2, .n_chunk = 1}, msg), RT_ERR_ARG);
    free(lg);
    free(nll);
    free(ids);
    free(txt);
    tok_free(tok);
    rt_model_free(m);
    inp_close(src);
}

/* ---------------------------------------------------------------- every type on every path */

/* The demo F32 model with every matrix (token_embd and output too) quantized to `type` by
 * libquant's plain rounding, which is byte-identical to `llama-quantize --pure`. */
static rt_model *pure_model(inp_source *src, int type)
{
    char msg[RT_MSG_SIZE > INP_MSG_SIZE ? RT_MSG_SIZE : INP_MSG_SIZE];
    rt_model *m;
    cr_assert_eq(rt_model_load(src, &m, msg), RT_OK, "%s", msg);
    for (int64_t i = 0; type != GGUF_F32 && i < inp_n_tensors(src); i++) {
        const inp_tensor *t = inp_tensor_at(src, i);
        if (t->n_dims != 2)
            continue;
        const int64_t n = t->ne[0], rows = t->ne[1];
        const size_t rs = gguf_row_size(type, n);
        float *f = malloc(sizeof(float) * (size_t)(n * rows));
        unsigned char *q = malloc(rs * (size_t)rows);
        cr_assert_eq(inp_read_f32(src, i, 0, rows, f, msg), INP_OK, "%s", msg);
        for (int64_t r = 0; r < rows; r++)
            cr_assert_eq(lq_quantize_row(type, f + r * n, q + (size_t)r * rs, n, NULL), rs);
        cr_assert_eq(rt_model_set_weight(m, t->name, type, q, msg), RT_OK, "%s: %s", t->name, msg);
        free(f);
        free(q);
    }
    return m;
}

/* llama-perplexity's figures for the demo model (../shared/reference/classics-7m-f32.gguf and
 * `llama-quantize --pure` of it to each type), n_ctx 256, made on an AMD EPYC (Zen 4: AVX-512
 * with VNNI and BF16, no AVX-VNNI) with the llama.cpp of ../shared/reference:
 *   [0] its GGML_NATIVE build (AVX-512, AVX512-BF16; llamafile sgemm and CPU repack on);
 *   [1] the same llama-perplexity with the ggml libraries of a build configured with
 *       GGML_NATIVE=OFF GGML_AVX=ON GGML_AVX2=ON GGML_FMA=ON GGML_F16C=ON GGML_AVX512=OFF
 *       (LD_LIBRARY_PATH; its system_info shows no AVX-512);
 *   OMP_WAIT_POLICY=passive llama-perplexity -m MODEL -f TEXT -c 256 -t 1 [--chunks 40]
 * (the thread count does not change its figures: F32 wiki is 524.5113 with -t 1 and -t 2).
 * wiki: wiki.test.raw, first 40 chunks; classics: eval-classics.txt, all 159 chunks. 0: no
 * figure was made (the machine was too busy to finish them); that text is then not checked
 * for the type on that path. */
typedef struct {
    int type;
    double wiki[2], classics[2];
} ref_row;

static const ref_row k_refs[] = {
    {GGUF_F32, {524.5113, 524.5110}, {93.7779, 0}},  {GGUF_F16, {524.5013, 0}, {93.7776, 0}},
    {GGUF_BF16, {524.4626, 524.4491}, {93.7775, 0}}, {GGUF_Q8_0, {524.2469, 524.1806}, {0, 0}},
    {GGUF_Q4_0, {517.0265, 517.0417}, {0, 0}},       {GGUF_Q4_1, {529.6760, 0}, {0, 0}},
    {GGUF_Q5_0, {527.4291, 0}, {93.8355, 0}},            {GGUF_Q5_1, {520.1849, 0}, {93.7557, 0}},
    {GGUF_Q2_K, {498.4894, 498.2647}, {101.4409, 0}}, {GGUF_Q3_K, {528.9844, 0}, {0, 0}},
    {GGUF_Q4_K, {526.1573, 0}, {93.6957, 0}},        {GGUF_Q5_K, {519.2551, 0}, {93.8845, 0}},
    {GGUF_Q6_K, {523.5855, 0}, {93.8961, 0}},
};

/* Each path computes what one of those builds computes: avx512 the AVX-512 build, avx2 and
 * avxvnni the AVX2 build (AVX-VNNI changes only exact integer sums). On wiki.test.raw (40
 * chunks = 5 whole llama.cpp batches of 8 sequences) the logits are llama.cpp's bit for bit,
 * so the figures agree to the printed digits (limit 1e-6). On eval-classics the last batch
 * has 7 sequences; llama.cpp then splits them into ubatches of 73 tokens per sequence and runs
 * its small-batch kernels (non-tiled flash attention, gemv), which moves chunks 153-159
 * slightly (Q2_K: 101.4386 vs 101.4409, 2.3e-5): limit 5e-5, four times inside the 0.02 %
 * promise. (The two builds differ from each
 * other by up to 0.045 %: Q2_K wiki 498.4894 vs 498.2647.) The scalar path must give the AVX2
 * path's logits bit for bit. */
static void check_type(int isa, int type)
{
    TU_REQUIRE_SHARED();
    if (!rt_isa_supported(isa))
        cr_skip_test("the %s path needs %s, which this CPU lacks", rt_isa_name(isa), rt_isa_missing(isa));
    if (isa == RT_ISA_AVX512 && type == GGUF_BF16 && !rt_cpu_has_avx512bf16())
        cr_skip_test("the AVX-512 BF16 figure was made with AVX512-BF16, which this CPU lacks");
    const ref_row *ref = NULL;
    for (size_t i = 0; i < sizeof k_refs / sizeof k_refs[0]; i++)
        if (k_refs[i].type == type)
            ref = &k_refs[i];
    cr_assert_not_null(ref, "no reference row for type %d", type);
    char msg[RT_MSG_SIZE > INP_MSG_SIZE ? RT_MSG_SIZE : INP_MSG_SIZE];
    char *model = tu_shared_path("reference/classics-7m-f32.gguf");
    inp_source *src;
    cr_assert_eq(inp_open(model, &src, msg), INP_OK, "%s", msg);
    tok_model *tok;
    cr_assert_eq(tok_from_gguf(inp_metadata(src), &tok, msg), RT_OK, "%s", msg);
    rt_model *m = pure_model(src, type);
    cr_assert_eq(rt_model_set_isa(m, (rt_isa)isa), RT_OK);
    const char *tn = gguf_type_info(type)->name;
    if (isa == RT_ISA_SCALAR) {
        /* the scalar path is slow (software fmaf): it must give the AVX2 path's logits bit for
         * bit, on one chunk of 64 tokens (a whole flash-attention tile) */
        if (!rt_isa_supported(RT_ISA_AVX2))
            cr_skip_test("the scalar path is checked against the AVX2 path, which this CPU lacks");
        char *tf = tu_shared_path("text/wiki.test.raw");
        size_t len, ntok;
        char *txt = tu_read_file(tf, &len);
        int32_t *ids;
        cr_assert_eq(tok_encode(tok, txt, len < 4096 ? len : 4096, tok_default_flags(tok), &ids, &ntok, msg), RT_OK);
        const int V = rt_model_hparams(m)->n_vocab;
        float *a = malloc(sizeof(float) * 32 * V), *c = malloc(sizeof(float) * 32 * V);
        rt_model_set_threads(m, 1);
        cr_assert_eq(rt_ppl_chunks_logits(m, ids, 1, 64, tok_bos(tok), a, msg), RT_OK, "%s", msg);
        cr_assert_eq(rt_model_set_isa(m, RT_ISA_AVX2), RT_OK);
        cr_assert_eq(rt_ppl_chunks_logits(m, ids, 1, 64, tok_bos(tok), c, msg), RT_OK, "%s", msg);
        cr_assert(memcmp(a, c, sizeof(float) * 32 * V) == 0, "%s: scalar logits differ from the AVX2 path's", tn);
        free(a);
        free(c);
        free(ids);
        free(txt);
        free(tf);
    } else {
        const int b = isa == RT_ISA_AVX512 ? 0 : 1;
        if (ref->wiki[b] == 0 && ref->classics[b] == 0)
            cr_skip_test("no llama.cpp figure for %s on the %s build yet", tn, b ? "AVX2" : "AVX-512");
        char *wt = tu_shared_path("text/wiki.test.raw"), *ct = tu_shared_path("text/eval-classics.txt");
        if (ref->wiki[b] > 0) {
            const double w = chunked_ppl(m, tok, wt, 256, 40, 2, NULL), rw = fabs(w - ref->wiki[b]) / ref->wiki[b];
            cr_assert(rw <= 1e-6, "%s on %s, wiki 40 chunks: PPL %.4f vs llama.cpp %.4f (%.5f %%)", tn, rt_isa_name(isa), w,
                      ref->wiki[b], 100 * rw);
        }
        if (ref->classics[b] > 0) {
            const double c = chunked_ppl(m, tok, ct, 256, 0, 2, NULL), rc = fabs(c - ref->classics[b]) / ref->classics[b];
            cr_assert(rc <= 5e-5, "%s on %s, eval-classics: PPL %.4f vs llama.cpp %.4f (%.5f %%)", tn, rt_isa_name(isa), c,
                      ref->classics[b], 100 * rc);
        }
        free(wt);
        free(ct);
    }
    rt_model_free(m);
    tok_free(tok);
    inp_close(src);
    free(model);
}

#define TYPE_TESTS(SUITE, ISA)                                                                       \
    Test(SUITE, f32, .timeout = 900) { check_type(ISA, GGUF_F32); }                                  \
    Test(SUITE, f16, .timeout = 900) { check_type(ISA, GGUF_F16); }                                  \
    Test(SUITE, bf16, .timeout = 900) { check_type(ISA, GGUF_BF16); }                                \
    Test(SUITE, q8_0, .timeout = 900) { check_type(ISA, GGUF_Q8_0); }                                \
    Test(SUITE, q4_0, .timeout = 900) { check_type(ISA, GGUF_Q4_0); }                                \
    Test(SUITE, q4_1, .timeout = 900) { check_type(ISA, GGUF_Q4_1); }                                \
    Test(SUITE, q5_0, .timeout = 900) { check_type(ISA, GGUF_Q5_0); }                                \
    Test(SUITE, q5_1, .timeout = 900) { check_type(ISA, GGUF_Q5_1); }                                \
    Test(SUITE, q2_k, .timeout = 900) { check_type(ISA, GGUF_Q2_K); }                                \
    Test(SUITE, q3_k, .timeout = 900) { check_type(ISA, GGUF_Q3_K); }                                \
    Test(SUITE, q4_k, .timeout = 900) { check_type(ISA, GGUF_Q4_K); }                                \
    Test(SUITE, q5_k, .timeout = 900) { check_type(ISA, GGUF_Q5_K); }                                \
    Test(SUITE, q6_k, .timeout = 900) { check_type(ISA, GGUF_Q6_K); }
TYPE_TESTS(ppl_scalar, RT_ISA_SCALAR)
TYPE_TESTS(ppl_avx2, RT_ISA_AVX2)
TYPE_TESTS(ppl_avxvnni, RT_ISA_AVXVNNI)
TYPE_TESTS(ppl_avx512, RT_ISA_AVX512)
