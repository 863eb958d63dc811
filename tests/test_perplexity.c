/* Perplexity and KLD math on synthetic logits (closed-form answers), the log-probability file,
 * and — with ../shared — llama.cpp's published perplexities of the demo model on
 * eval-classics.txt (all 159 chunks of 256 tokens, ~41k tokens per model). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "input/input.h"
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

static double eval_ppl(const char *model, const char *text, int n_ctx, double *unc)
{
    char msg[RT_MSG_SIZE > INP_MSG_SIZE ? RT_MSG_SIZE : INP_MSG_SIZE];
    inp_source *src;
    cr_assert_eq(inp_open(model, &src, msg), INP_OK, "%s", msg);
    rt_model *m;
    cr_assert_eq(rt_model_load(src, &m, msg), RT_OK, "%s", msg);
    tok_model *tok;
    cr_assert_eq(tok_from_gguf(inp_metadata(src), &tok, msg), RT_OK, "%s", msg);
    size_t len, ntok;
    char *txt = tu_read_file(text, &len);
    cr_assert_not_null(txt);
    int32_t *ids;
    cr_assert_eq(tok_encode(tok, txt, len, tok_default_flags(tok), &ids, &ntok, msg), RT_OK, "%s", msg);
    const int V = rt_model_hparams(m)->n_vocab, first = n_ctx / 2, ns = n_ctx - 1 - first;
    const int n_chunk = (int)(ntok / (size_t)n_ctx);
    /* one thread (no barriers to wait on when the machine is busy), three chunks per pass as
     * the tool batches them (each chunk's logits are those of its own pass) */
    enum { PASS = 3 };
    rt_model_set_threads(m, 1);
    float *lg = malloc(sizeof(float) * (size_t)PASS * (n_ctx - first) * V);
    double *nll = malloc(sizeof(double) * ns);
    rt_ppl_acc acc = {0};
    for (int c0 = 0; c0 < n_chunk; c0 += PASS) {
        const int np = n_chunk - c0 < PASS ? n_chunk - c0 : PASS;
        cr_assert_eq(rt_ppl_chunks_logits(m, ids + (size_t)c0 * n_ctx, np, n_ctx, tok_bos(tok), lg, msg), RT_OK,
                     "%s", msg);
        for (int i = 0; i < np; i++) {
            const int32_t *ct = ids + (size_t)(c0 + i) * n_ctx;
            rt_ppl_row_nll(lg + (size_t)i * (n_ctx - first) * V, V, ct + first + 1, ns, nll, 1);
            rt_ppl_add(&acc, nll, ns);
        }
    }
    *unc = rt_ppl_uncertainty(&acc);
    free(lg);
    free(nll);
    free(ids);
    free(txt);
    tok_free(tok);
    rt_model_free(m);
    inp_close(src);
    return rt_ppl_value(&acc);
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
