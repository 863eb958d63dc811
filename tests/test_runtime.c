/* Runtime: model validation, forward pass against a plain double-precision implementation
 * written here, layer-by-layer API and hooks, weight swapping, thread independence.
 *
 * Tolerance vs the plain forward: the runtime rounds Q, K, V and the attention probabilities
 * to fp16 (llama.cpp's f16 KV cache), so logits differ by up to ~1e-3 relative; we require
 * max |Δlogit| <= 0.01 * (1 + max |logit|) and the same argmax on every row. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libgguf/gguf.h"
#include "libquant/lq.h"
#include "input/input.h"
#include "runtime/perplexity.h"
#include "runtime/runtime.h"
#include "tokenizer/tokenizer.h"
#include "tests/testutil.h"

/* ---------------------------------------------------------------- a tiny synthetic model */

typedef struct {
    const char *arch;       /* general.architecture */
    const char *skip;       /* tensor to leave out */
    const char *bad_shape;  /* tensor written with a wrong row count */
    int head_kv;            /* llama.attention.head_count_kv */
    int no_block_count;
    const char *extra;      /* an extra [TE] tensor the graph does not use */
    int bos;                /* > 0: tokenizer.ggml.bos_token_id */
    const char *bos_str;    /* tokenizer.ggml.bos_token_id written as a string */
    int head_dim;           /* > 0: {arch}.attention.key_length/value_length and that head size */
    int rope_freqs;         /* write rope_freqs.weight (Llama 3 factors) */
    int biases;             /* write attn_{q,k,v}.bias (Qwen2) */
    int qk_norms;           /* write attn_{q,k}_norm.weight (Qwen3) */
} tiny_opts;

enum { TE = 64, TF = 96, TH = 4, THD = 16, TV = 40, TL = 2 };

static uint64_t rng_state;
static float frand(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng_state >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

static char *write_tiny(const tiny_opts *o)
{
    static char path[4096];
    char *dir = tu_mkdtemp();
    cr_assert_not_null(dir);
    snprintf(path, sizeof path, "%s/tiny.gguf", dir);
    free(dir);
    const int hkv = o->head_kv ? o->head_kv : 2, HD = o->head_dim ? o->head_dim : THD;
    gguf_writer *w = gguf_writer_create();
    cr_assert_not_null(w);
    gguf_writer_set_str(w, "general.architecture", o->arch ? o->arch : "llama");
    const char *a = o->arch ? o->arch : "llama";
    char key[128];
#define KEY(s) (snprintf(key, sizeof key, "%s.%s", a, s), key)
    if (!o->no_block_count)
        gguf_writer_set_u32(w, KEY("block_count"), TL);
    gguf_writer_set_u32(w, KEY("embedding_length"), TE);
    gguf_writer_set_u32(w, KEY("feed_forward_length"), TF);
    gguf_writer_set_u32(w, KEY("attention.head_count"), TH);
    gguf_writer_set_u32(w, KEY("attention.head_count_kv"), (uint32_t)hkv);
    gguf_writer_set_u32(w, KEY("context_length"), 64);
    gguf_writer_set_f32(w, KEY("rope.freq_base"), 10000.0f);
    gguf_writer_set_f32(w, KEY("attention.layer_norm_rms_epsilon"), 1e-5f);
    if (o->head_dim) {
        gguf_writer_set_u32(w, KEY("attention.key_length"), (uint32_t)HD);
        gguf_writer_set_u32(w, KEY("attention.value_length"), (uint32_t)HD);
    }
#undef KEY
    if (o->bos > 0)
        gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)o->bos);
    if (o->bos_str)
        gguf_writer_set_str(w, "tokenizer.ggml.bos_token_id", o->bos_str);
    struct {
        char name[64];
        int64_t ne0, ne1;
        float scale, bias;
    } t[64];
    int nt = 0;
#define T(nm, a0, a1, sc, bi)                                                                      \
    do {                                                                                           \
        snprintf(t[nt].name, sizeof t[nt].name, "%s", nm);                                         \
        t[nt].ne0 = a0;                                                                            \
        t[nt].ne1 = a1;                                                                            \
        t[nt].scale = sc;                                                                          \
        t[nt].bias = bi;                                                                           \
        nt++;                                                                                      \
    } while (0)
    T("token_embd.weight", TE, TV, 1.0f, 0);
    T("output_norm.weight", TE, 1, 0.2f, 1.0f);
    T("output.weight", TE, TV, 0.3f, 0);
    if (o->rope_freqs)
        T("rope_freqs.weight", HD / 2, 1, 4.0f, 5.0f); /* factors in [1, 9] */
    for (int l = 0; l < TL; l++) {
        char nm[64];
#define LT(s, a0, a1, sc, bi)                                                                 \
    do {                                                                                       \
        snprintf(nm, sizeof nm, "blk.%d.%s.weight", l, s);                                     \
        T(nm, a0, a1, sc, bi);                                                                 \
    } while (0)
        LT("attn_norm", TE, 1, 0.2f, 1.0f);
        LT("attn_q", TE, TH * HD, 0.25f, 0);
        LT("attn_k", TE, hkv * HD, 0.25f, 0);
        LT("attn_v", TE, hkv * HD, 0.25f, 0);
        LT("attn_output", TH * HD, TE, 0.25f, 0);
        if (o->qk_norms) {
            LT("attn_q_norm", HD, 1, 0.3f, 1.0f);
            LT("attn_k_norm", HD, 1, 0.3f, 1.0f);
        }
        if (o->biases) {
            const char *bn[3] = {"attn_q", "attn_k", "attn_v"};
            const int br[3] = {TH * HD, hkv * HD, hkv * HD};
            for (int b = 0; b < 3; b++) {
                snprintf(nm, sizeof nm, "blk.%d.%s.bias", l, bn[b]);
                T(nm, br[b], 1, 0.5f, 0);
            }
        }
        LT("ffn_norm", TE, 1, 0.2f, 1.0f);
        LT("ffn_gate", TE, TF, 0.25f, 0);
        LT("ffn_up", TE, TF, 0.25f, 0);
        LT("ffn_down", TF, TE, 0.2f, 0);
#undef LT
    }
    if (o->extra)
        T(o->extra, TE, 1, 0.1f, 0);
#undef T
    for (int i = 0; i < nt; i++) {
        if (o->skip && !strcmp(o->skip, t[i].name))
            continue;
        int64_t ne[2] = {t[i].ne0, t[i].ne1};
        if (o->bad_shape && !strcmp(o->bad_shape, t[i].name))
            ne[1] += 1;
        cr_assert_eq(gguf_writer_add_tensor(w, t[i].name, t[i].ne1 == 1 ? 1 : 2, ne, GGUF_F32, NULL), GGUF_OK);
    }
    char msg[GGUF_MSG_SIZE];
    cr_assert_eq(gguf_writer_open(w, path, msg), GGUF_OK, "%s", msg);
    rng_state = 42;
    for (int i = 0; i < nt; i++) {
        if (o->skip && !strcmp(o->skip, t[i].name))
            continue;
        int64_t n = t[i].ne0 * (t[i].ne1 + (o->bad_shape && !strcmp(o->bad_shape, t[i].name)));
        float *d = malloc((size_t)n * sizeof *d);
        for (int64_t j = 0; j < n; j++)
            d[j] = t[i].bias + t[i].scale * frand();
        cr_assert_eq(gguf_writer_write(w, d, (size_t)n * 4, msg), GGUF_OK, "%s", msg);
        free(d);
    }
    cr_assert_eq(gguf_writer_finish(w, msg), GGUF_OK, "%s", msg);
    gguf_writer_free(w);
    return path;
}

static rt_error load(const char *path, inp_source **src, rt_model **m, char *msg)
{
    char smsg[INP_MSG_SIZE];
    inp_error se = inp_open(path, src, smsg);
    cr_assert_eq(se, INP_OK, "%s", smsg);
    return rt_model_load(*src, m, msg);
}

/* ---------------------------------------------------------------- plain reference forward */

static const float *tensor_f32(inp_source *s, const char *name, int64_t *ne0, int64_t *ne1)
{
    int64_t i = inp_find_tensor(s, name);
    cr_assert(i >= 0, "%s missing", name);
    const inp_tensor *t = inp_tensor_at(s, i);
    cr_assert_eq(t->type, GGUF_F32);
    if (ne0)
        *ne0 = t->ne[0];
    if (ne1)
        *ne1 = t->ne[1];
    return inp_data(s, i);
}

/* y[o] = sum_i W[o][i] x[i], W with rows of n_in. */
static void mv(const float *W, const double *x, int n_in, int n_out, double *y)
{
    for (int o = 0; o < n_out; o++) {
        double s = 0;
        for (int i = 0; i < n_in; i++)
            s += (double)W[(size_t)o * n_in + i] * x[i];
        y[o] = s;
    }
}

static void rmsnorm(const double *x, const float *w, int n, double eps, double *y)
{
    double ss = 0;
    for (int i = 0; i < n; i++)
        ss += x[i] * x[i];
    double sc = 1.0 / sqrt(ss / n + eps);
    for (int i = 0; i < n; i++)
        y[i] = x[i] * sc * w[i];
}

/* An optional F32 tensor of the source, NULL when absent. */
static const float *opt_f32(inp_source *s, const char *name)
{
    return inp_find_tensor(s, name) >= 0 ? tensor_f32(s, name, NULL, NULL) : NULL;
}

/* RoPE on one head vector at position t: NEOX rotates (i, i + D/2), NORM (2i, 2i+1); factors
 * (rope_freqs) divide the angles. */
static void naive_rope(double *vec, int t, int D, double base, bool neox, const float *factors)
{
    for (int i = 0; i < D / 2; i++) {
        double th = t * pow(base, -2.0 * i / D) / (factors ? factors[i] : 1.0);
        double *p0 = neox ? vec + i : vec + 2 * i, *p1 = neox ? vec + i + D / 2 : vec + 2 * i + 1;
        double a0 = *p0, a1 = *p1;
        *p0 = a0 * cos(th) - a1 * sin(th);
        *p1 = a0 * sin(th) + a1 * cos(th);
    }
}

/* The forward pass of llama / qwen2 / qwen3 in double, written from the models' definitions
 * (biases, Q/K norms and rope_freqs when the file has them; NEOX RoPE for the Qwen models):
 * logits (T × V). */
static void naive_forward(inp_source *s, const rt_hparams *hp, const int32_t *tok, int T, double *logits)
{
    const int E = hp->n_embd, F = hp->n_ff, H = hp->n_head, KV = hp->n_head_kv, D = hp->head_dim, V = hp->n_vocab;
    const gguf_str *arch;
    cr_assert_eq(gguf_get_str(inp_metadata(s), "general.architecture", &arch), GGUF_OK);
    const bool neox = strcmp(arch->str, "llama") != 0;
    const float *factors = opt_f32(s, "rope_freqs.weight");
    double *x = calloc((size_t)T * E, sizeof *x), *xn = malloc(E * sizeof *xn);
    double *q = malloc((size_t)T * H * D * sizeof *q), *k = malloc((size_t)T * KV * D * sizeof *k),
           *v = malloc((size_t)T * KV * D * sizeof *v), *att = malloc((size_t)H * D * sizeof *att),
           *o = malloc(E * sizeof *o), *g = malloc(F * sizeof *g), *u = malloc(F * sizeof *u),
           *sc = malloc(T * sizeof *sc);
    const float *emb = tensor_f32(s, "token_embd.weight", NULL, NULL);
    for (int t = 0; t < T; t++)
        for (int i = 0; i < E; i++)
            x[(size_t)t * E + i] = emb[(size_t)tok[t] * E + i];
    char nm[64];
    for (int l = 0; l < hp->n_layer; l++) {
#define W(s) (snprintf(nm, sizeof nm, "blk.%d.%s.weight", l, s), tensor_f32(s_, nm, NULL, NULL))
#define OPT(s) (snprintf(nm, sizeof nm, "blk.%d.%s", l, s), opt_f32(s_, nm))
        inp_source *s_ = s;
        const float *an = W("attn_norm"), *wq = W("attn_q"), *wk = W("attn_k"), *wv = W("attn_v"),
                    *wo = W("attn_output"), *fn = W("ffn_norm"), *wg = W("ffn_gate"), *wu = W("ffn_up"),
                    *wd = W("ffn_down");
        const float *bq = OPT("attn_q.bias"), *bk = OPT("attn_k.bias"), *bv = OPT("attn_v.bias"),
                    *qn = OPT("attn_q_norm.weight"), *kn = OPT("attn_k_norm.weight");
#undef W
#undef OPT
        for (int t = 0; t < T; t++) {
            rmsnorm(x + (size_t)t * E, an, E, hp->rms_eps, xn);
            mv(wq, xn, E, H * D, q + (size_t)t * H * D);
            mv(wk, xn, E, KV * D, k + (size_t)t * KV * D);
            mv(wv, xn, E, KV * D, v + (size_t)t * KV * D);
            for (int i = 0; bq && i < H * D; i++)
                q[(size_t)t * H * D + i] += bq[i];
            for (int i = 0; bk && i < KV * D; i++)
                k[(size_t)t * KV * D + i] += bk[i], v[(size_t)t * KV * D + i] += bv[i];
            for (int h = 0; h < H + KV; h++) {
                double *vec = h < H ? q + ((size_t)t * H + h) * D : k + ((size_t)t * KV + h - H) * D;
                const float *nw = h < H ? qn : kn;
                if (nw)
                    rmsnorm(vec, nw, D, hp->rms_eps, vec);
                naive_rope(vec, t, D, hp->rope_base, neox, factors);
            }
        }
        for (int t = 0; t < T; t++) {
            for (int h = 0; h < H; h++) {
                const int gk = h / (H / KV);
                double mx = -1e300, sum = 0;
                for (int j = 0; j <= t; j++) {
                    double d = 0;
                    for (int i = 0; i < D; i++)
                        d += q[((size_t)t * H + h) * D + i] * k[((size_t)j * KV + gk) * D + i];
                    sc[j] = d / sqrt(D);
                    mx = fmax(mx, sc[j]);
                }
                for (int j = 0; j <= t; j++)
                    sum += (sc[j] = exp(sc[j] - mx));
                for (int i = 0; i < D; i++) {
                    double a = 0;
                    for (int j = 0; j <= t; j++)
                        a += sc[j] / sum * v[((size_t)j * KV + gk) * D + i];
                    att[h * D + i] = a;
                }
            }
            mv(wo, att, H * D, E, o);
            for (int i = 0; i < E; i++)
                x[(size_t)t * E + i] += o[i];
        }
        for (int t = 0; t < T; t++) {
            rmsnorm(x + (size_t)t * E, fn, E, hp->rms_eps, xn);
            mv(wg, xn, E, F, g);
            mv(wu, xn, E, F, u);
            for (int i = 0; i < F; i++)
                g[i] = g[i] / (1 + exp(-g[i])) * u[i];
            mv(wd, g, F, E, o);
            for (int i = 0; i < E; i++)
                x[(size_t)t * E + i] += o[i];
        }
    }
    const float *onorm = tensor_f32(s, "output_norm.weight", NULL, NULL);
    const float *out = inp_find_tensor(s, "output.weight") >= 0 ? tensor_f32(s, "output.weight", NULL, NULL) : emb;
    for (int t = 0; t < T; t++) {
        rmsnorm(x + (size_t)t * E, onorm, E, hp->rms_eps, xn);
        mv(out, xn, E, V, logits + (size_t)t * V);
    }
    free(x); free(xn); free(q); free(k); free(v); free(att); free(o); free(g); free(u); free(sc);
}

static void compare_logits(const float *got, const double *ref, int T, int V, const char *what)
{
    for (int t = 0; t < T; t++) {
        double mx = 0, dmax = 0;
        int ag = 0, ar = 0;
        for (int i = 0; i < V; i++) {
            const double r = ref[(size_t)t * V + i], g = got[(size_t)t * V + i];
            mx = fmax(mx, fabs(r));
            dmax = fmax(dmax, fabs(g - r));
            if (g > got[(size_t)t * V + ag])
                ag = i;
            if (r > ref[(size_t)t * V + ar])
                ar = i;
        }
        cr_assert(dmax <= 0.01 * (1 + mx), "%s: row %d max |Δlogit| %g (max |logit| %g)", what, t, dmax, mx);
        cr_assert_eq(ag, ar, "%s: row %d argmax %d vs %d", what, t, ag, ar);
    }
}

/* ---------------------------------------------------------------- tests on the tiny model */

Test(runtime, tiny_model_matches_plain_forward_on_every_isa)
{
    inp_source *src;
    rt_model *m;
    char msg[RT_MSG_SIZE];
    cr_assert_eq(load(write_tiny(&(tiny_opts){0}), &src, &m, msg), RT_OK, "%s", msg);
    const rt_hparams *hp = rt_model_hparams(m);
    cr_assert_eq(hp->n_layer, TL);
    cr_assert_eq(hp->n_head_kv, 2);
    cr_assert_eq(hp->head_dim, THD);
    cr_assert_eq(hp->n_vocab, TV);
    cr_assert(!hp->tied_output);
    const int T = 21;
    int32_t tok[21];
    for (int i = 0; i < T; i++)
        tok[i] = (i * 7 + 3) % TV;
    double *ref = malloc((size_t)T * TV * sizeof *ref);
    naive_forward(src, hp, tok, T, ref);
    float *lg = malloc((size_t)T * TV * sizeof *lg);
    for (int isa = 0; isa < RT_ISA_COUNT_; isa++) {
        if (!rt_isa_supported(isa))
            continue;
        cr_assert_eq(rt_model_set_isa(m, isa), RT_OK);
        cr_assert_eq(rt_forward(m, tok, T, 0, lg, msg), RT_OK, "%s", msg);
        compare_logits(lg, ref, T, TV, rt_isa_name(isa));
    }
    /* logits for a suffix equal the same rows of the full pass */
    float *lg2 = malloc((size_t)T * TV * sizeof *lg2);
    cr_assert_eq(rt_forward(m, tok, T, 5, lg2, msg), RT_OK);
    compare_logits(lg2, ref + 5 * TV, T - 5, TV, "suffix");
    free(lg2);
    /* three sequences in one pass: each bit-identical to its own pass, on every ISA and with
     * 1 or 3 threads (first = 0 and first > 0: the last layer keeps only the needed rows) */
    enum { NS = 3 };
    int32_t toks[NS * 21];
    for (int i = 0; i < NS * T; i++)
        toks[i] = (i * 13 + 1) % TV;
    float *one = malloc((size_t)T * TV * sizeof *one), *all = malloc((size_t)NS * T * TV * sizeof *all);
    for (int isa = 0; isa < RT_ISA_COUNT_; isa++) {
        if (!rt_isa_supported(isa))
            continue;
        rt_model_set_isa(m, isa);
        for (int first = 0; first <= 9; first += 9)
            for (int nth = 1; nth <= 3; nth += 2) {
                rt_model_set_threads(m, nth);
                cr_assert_eq(rt_forward_seqs(m, toks, NS, T, first, all, msg), RT_OK, "%s", msg);
                for (int s = 0; s < NS; s++) {
                    cr_assert_eq(rt_forward(m, toks + s * T, T, first, one, msg), RT_OK, "%s", msg);
                    cr_assert(memcmp(one, all + (size_t)s * (T - first) * TV, (size_t)(T - first) * TV * sizeof *one) == 0,
                              "%s, %d threads, first %d: sequence %d differs from its own pass", rt_isa_name(isa), nth,
                              first, s);
                }
            }
    }
    cr_assert_eq(rt_forward_seqs(m, toks, 0, T, 0, all, msg), RT_ERR_ARG);
    cr_assert_eq(rt_forward_seqs(m, toks, RT_MAX_TOKENS / T + 1, T, 0, all, msg), RT_ERR_ARG);
    free(one);
    free(all);
    free(ref);
    free(lg);
    rt_model_free(m);
    inp_close(src);
}

/* Llama 3 (rope_freqs), Qwen2 (Q/K/V biases, NEOX RoPE, GQA 4:1) and Qwen3 (Q/K norms, NEOX,
 * head_dim 24 != 64 / 4) against the plain forward pass, on every ISA. */
Test(runtime, arch_variants_match_plain_forward)
{
    const tiny_opts cases[] = {
        {.rope_freqs = 1},
        {.arch = "qwen2", .biases = 1, .head_kv = 1},
        {.arch = "qwen3", .qk_norms = 1, .head_dim = 24},
    };
    const int T = 19;
    int32_t tok[19];
    for (int i = 0; i < T; i++)
        tok[i] = (i * 11 + 5) % TV;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        inp_source *src;
        rt_model *m;
        char msg[RT_MSG_SIZE];
        cr_assert_eq(load(write_tiny(&cases[c]), &src, &m, msg), RT_OK, "case %zu: %s", c, msg);
        const rt_hparams *hp = rt_model_hparams(m);
        cr_assert_eq(hp->head_dim, cases[c].head_dim ? cases[c].head_dim : THD);
        cr_assert_str_eq(rt_model_arch(m)->name, cases[c].arch ? cases[c].arch : "llama");
        double *ref = malloc((size_t)T * TV * sizeof *ref);
        float *lg = malloc((size_t)T * TV * sizeof *lg);
        naive_forward(src, hp, tok, T, ref);
        for (int isa = 0; isa < RT_ISA_COUNT_; isa++) {
            if (!rt_isa_supported(isa))
                continue;
            cr_assert_eq(rt_model_set_isa(m, isa), RT_OK);
            cr_assert_eq(rt_forward(m, tok, T, 0, lg, msg), RT_OK, "%s", msg);
            char what[64];
            snprintf(what, sizeof what, "%s %s", cases[c].arch ? cases[c].arch : "llama+rope_freqs", rt_isa_name(isa));
            compare_logits(lg, ref, T, TV, what);
        }
        /* the extra vectors can be swapped like the norms (a zero bias / unit norm changes the logits) */
        const char *vec = cases[c].biases ? "blk.1.attn_v.bias" : cases[c].qk_norms ? "blk.1.attn_k_norm.weight" : NULL;
        if (vec) {
            const int n = cases[c].biases ? hp->n_head_kv * hp->head_dim : hp->head_dim;
            float *z = calloc((size_t)n, sizeof *z);
            float *lg2 = malloc((size_t)T * TV * sizeof *lg2);
            cr_assert_eq(rt_model_set_weight(m, vec, GGUF_F32, z, msg), RT_OK, "%s", msg);
            cr_assert_eq(rt_forward(m, tok, T, 0, lg2, msg), RT_OK, "%s", msg);
            cr_expect_neq(memcmp(lg, lg2, (size_t)T * TV * sizeof *lg), 0, "%s had no effect", vec);
            free(z);
            free(lg2);
        }
        cr_expect_eq(rt_model_set_weight(m, "rope_freqs.weight", GGUF_F32, lg, msg), RT_ERR_ARG);
        free(ref);
        free(lg);
        rt_model_free(m);
        inp_close(src);
    }
}

/* Tensors of one architecture in a file of another, missing per-head norms. */
Test(runtime, arch_variant_errors)
{
    struct {
        tiny_opts o;
        const char *want;
    } cases[] = {
        {{.arch = "qwen2", .rope_freqs = 1}, "'rope_freqs.weight' is not used by the qwen2 graph"},
        {{.biases = 1}, "'blk.0.attn_q.bias' is not used by the llama graph"},
        {{.arch = "qwen3"}, "tensor 'blk.0.attn_q_norm.weight' is missing"},
        {{.arch = "qwen3", .qk_norms = 1, .skip = "blk.1.attn_k_norm.weight"}, "tensor 'blk.1.attn_k_norm.weight' is missing"},
        {{.arch = "gptx"}, "architecture 'gptx' is not supported (only llama, qwen2, qwen3)"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        inp_source *src;
        rt_model *m = NULL;
        char msg[RT_MSG_SIZE] = "";
        rt_error e = load(write_tiny(&cases[c].o), &src, &m, msg);
        cr_expect_neq(e, RT_OK, "case %zu loaded", c);
        cr_expect(strstr(msg, cases[c].want), "case %zu: '%s' lacks '%s'", c, msg, cases[c].want);
        rt_model_free(m);
        inp_close(src);
    }
}

typedef struct {
    int calls[RT_HOOK_COUNT_];
    int cols[RT_HOOK_COUNT_];
    int stop_at;
} hook_state;

static int hook_fn(void *user, int layer, rt_hook_point pt, const float *x, int n_tokens, int n_cols)
{
    hook_state *h = user;
    h->calls[pt]++;
    h->cols[pt] = n_cols;
    cr_assert(isfinite(x[(size_t)n_tokens * n_cols - 1]));
    return h->stop_at && layer == 1 && pt == RT_HOOK_FFN_DOWN;
}

/* Clones share the weights and run concurrently (one per OpenMP thread) with the parent's
 * results; a clone refuses to swap a weight; clone and parent free independently. */
Test(runtime, clones_run_concurrently)
{
    inp_source *src;
    rt_model *m, *c[2] = {NULL, NULL};
    char msg[RT_MSG_SIZE];
    cr_assert_eq(load(write_tiny(&(tiny_opts){0}), &src, &m, msg), RT_OK, "%s", msg);
    enum { T = 19 };
    int32_t tok[3][T];
    for (int s = 0; s < 3; s++)
        for (int i = 0; i < T; i++)
            tok[s][i] = (i * 5 + s * 17 + 2) % TV;
    float *ref = malloc((size_t)3 * T * TV * sizeof *ref), *got = malloc((size_t)3 * T * TV * sizeof *got);
    for (int s = 0; s < 3; s++)
        cr_assert_eq(rt_forward(m, tok[s], T, 0, ref + (size_t)s * T * TV, msg), RT_OK, "%s", msg);
    cr_assert_eq(rt_model_clone(m, &c[0], msg), RT_OK, "%s", msg);
    cr_assert_eq(rt_model_clone(c[0], &c[1], msg), RT_OK, "%s", msg); /* a clone of a clone */
    rt_model *all[3] = {m, c[0], c[1]};
    rt_error e[3];
#pragma omp parallel for num_threads(3)
    for (int s = 0; s < 3; s++) {
        rt_model_set_threads(all[s], 1);
        e[s] = rt_forward(all[s], tok[s], T, 0, got + (size_t)s * T * TV, NULL);
    }
    for (int s = 0; s < 3; s++) {
        cr_assert_eq(e[s], RT_OK);
        cr_assert(memcmp(ref + (size_t)s * T * TV, got + (size_t)s * T * TV, (size_t)T * TV * sizeof *got) == 0,
                  "model %d differs", s);
    }
    float norm[TE];
    for (int i = 0; i < TE; i++)
        norm[i] = 1.0f;
    cr_assert_eq(rt_model_set_weight(c[0], "output_norm.weight", GGUF_F32, norm, msg), RT_ERR_ARG);
    rt_model_free(c[0]);
    cr_assert_eq(rt_forward(c[1], tok[0], T, 0, got, msg), RT_OK, "%s", msg);
    cr_assert(memcmp(ref, got, (size_t)T * TV * sizeof *got) == 0);
    rt_model_free(c[1]);
    rt_model_free(m);
    free(ref);
    free(got);
    inp_close(src);
}

Test(runtime, layer_api_hooks_and_weight_swap)
{
    inp_source *src;
    rt_model *m;
    char msg[RT_MSG_SIZE];
    cr_assert_eq(load(write_tiny(&(tiny_opts){0}), &src, &m, msg), RT_OK, "%s", msg);
    const int T = 17;
    int32_t tok[17];
    for (int i = 0; i < T; i++)
        tok[i] = (i * 11 + 1) % TV;
    float *full = malloc((size_t)T * TV * sizeof *full), *lg = malloc((size_t)T * TV * sizeof *lg);
    float *hidden = malloc((size_t)T * TE * sizeof *hidden);
    cr_assert_eq(rt_forward(m, tok, T, 0, full, msg), RT_OK);

    hook_state hs = {0};
    rt_hook hook = {hook_fn, &hs};
    cr_assert_eq(rt_embed(m, tok, T, hidden, msg), RT_OK);
    for (int l = 0; l < TL; l++)
        cr_assert_eq(rt_layer_forward(m, l, hidden, T, &hook, msg), RT_OK, "%s", msg);
    cr_assert_eq(rt_final_logits(m, hidden, T, lg, msg), RT_OK);
    cr_assert(memcmp(lg, full, (size_t)T * TV * sizeof *lg) == 0, "layer-by-layer differs from rt_forward");
    for (int p = 0; p < RT_HOOK_COUNT_; p++)
        cr_assert_eq(hs.calls[p], TL, "hook point %d called %d times", p, hs.calls[p]);
    cr_assert_eq(hs.cols[RT_HOOK_ATTN_QKV], TE);
    cr_assert_eq(hs.cols[RT_HOOK_ATTN_OUT], TH * THD);
    cr_assert_eq(hs.cols[RT_HOOK_FFN_GATE_UP], TE);
    cr_assert_eq(hs.cols[RT_HOOK_FFN_DOWN], TF);
    hs.stop_at = 1;
    cr_assert_eq(rt_embed(m, tok, T, hidden, msg), RT_OK);
    cr_assert_eq(rt_layer_forward(m, 0, hidden, T, &hook, msg), RT_OK);
    cr_assert_eq(rt_layer_forward(m, 1, hidden, T, &hook, msg), RT_ERR_HOOK);

    /* swap blk.0.ffn_down for its Q8_0 quantization: close, not equal; then back: identical */
    int64_t ne0, ne1;
    const float *wd = tensor_f32(src, "blk.0.ffn_down.weight", &ne0, &ne1);
    const size_t rs = gguf_row_size(GGUF_Q8_0, ne0);
    unsigned char *q = malloc(rs * (size_t)ne1);
    for (int64_t r = 0; r < ne1; r++)
        lq_quantize_row(GGUF_Q8_0, wd + r * ne0, q + r * rs, ne0, NULL);
    float *copy = malloc((size_t)ne0 * ne1 * sizeof *copy);
    memcpy(copy, wd, (size_t)ne0 * ne1 * sizeof *copy);
    cr_assert_eq(rt_model_set_weight(m, "blk.0.ffn_down.weight", GGUF_Q8_0, q, msg), RT_OK, "%s", msg);
    cr_assert_eq(rt_forward(m, tok, T, 0, lg, msg), RT_OK);
    double dmax = 0;
    for (int i = 0; i < T * TV; i++)
        dmax = fmax(dmax, fabs(lg[i] - full[i]));
    cr_assert(dmax > 0 && dmax < 0.05, "Q8_0 swap changed logits by %g", dmax);
    cr_assert(rt_model_owned_bytes(m) >= rs * (size_t)ne1);
    cr_assert_eq(rt_model_set_weight(m, "blk.0.ffn_down.weight", GGUF_F32, copy, msg), RT_OK);
    cr_assert_eq(rt_forward(m, tok, T, 0, lg, msg), RT_OK);
    cr_assert(memcmp(lg, full, (size_t)T * TV * sizeof *lg) == 0, "swapping back did not restore the logits");
    cr_assert_eq(rt_model_set_weight(m, "blk.9.ffn_down.weight", GGUF_F32, copy, msg), RT_ERR_ARG);
    cr_assert_eq(rt_model_set_weight(m, "blk.0.ffn_down.weight", GGUF_Q8_K, q, msg), RT_ERR_UNSUPPORTED);
    cr_assert_eq(rt_model_set_weight(m, "blk.0.ffn_down.weight", GGUF_Q4_K, q, msg), RT_ERR_ARG); /* 96 % 256 */

    int32_t bad[2] = {0, TV};
    cr_assert_eq(rt_forward(m, bad, 2, 0, lg, msg), RT_ERR_ARG);
    cr_assert(strstr(msg, "outside the vocabulary"), "%s", msg);
    cr_assert_eq(rt_layer_forward(m, TL, hidden, T, NULL, msg), RT_ERR_ARG);
    free(q);
    free(copy);
    free(full);
    free(lg);
    free(hidden);
    rt_model_free(m);
    inp_close(src);
}

Test(runtime, validation_errors_name_the_problem)
{
    inp_source *src;
    rt_model *m = NULL;
    char msg[RT_MSG_SIZE];
    cr_assert_eq(load(write_tiny(&(tiny_opts){.skip = "blk.1.ffn_up.weight"}), &src, &m, msg), RT_ERR_MODEL);
    cr_assert(strstr(msg, "'blk.1.ffn_up.weight' is missing"), "%s", msg);
    cr_assert_null(m);
    inp_close(src);
    cr_assert_eq(load(write_tiny(&(tiny_opts){.bad_shape = "blk.0.attn_k.weight"}), &src, &m, msg), RT_ERR_MODEL);
    cr_assert(strstr(msg, "head_count_kv 2 × head dimension 16 = 32, but tensor 'blk.0.attn_k.weight' has 33 rows"), "%s", msg);
    inp_close(src);
    cr_assert_eq(load(write_tiny(&(tiny_opts){.arch = "gpt2"}), &src, &m, msg), RT_ERR_UNSUPPORTED);
    cr_assert(strstr(msg, "gpt2"), "%s", msg);
    inp_close(src);
    cr_assert_eq(load(write_tiny(&(tiny_opts){.no_block_count = 1}), &src, &m, msg), RT_ERR_MODEL);
    cr_assert(strstr(msg, "llama.block_count"), "%s", msg);
    inp_close(src);
    cr_assert_eq(load(write_tiny(&(tiny_opts){.head_kv = 3}), &src, &m, msg), RT_ERR_MODEL);
    inp_close(src);
    /* tensors the graph does not use are refused, as llama.cpp does */
    cr_assert_eq(load(write_tiny(&(tiny_opts){.extra = "blk.2.attn_norm.weight"}), &src, &m, msg), RT_ERR_MODEL);
    cr_assert(strstr(msg, "'blk.2.attn_norm.weight' belongs to layer 2 but block_count is 2"), "%s", msg);
    inp_close(src);
    cr_assert_eq(load(write_tiny(&(tiny_opts){.extra = "blk.0.attn_q.bias"}), &src, &m, msg), RT_ERR_MODEL);
    cr_assert(strstr(msg, "'blk.0.attn_q.bias' is not used by the llama graph"), "%s", msg);
    inp_close(src);
    /* special token ids: integers inside the vocabulary */
    cr_assert_eq(load(write_tiny(&(tiny_opts){.bos = TV}), &src, &m, msg), RT_ERR_MODEL);
    cr_assert(strstr(msg, "'tokenizer.ggml.bos_token_id' = 40 is outside the vocabulary"), "%s", msg);
    inp_close(src);
    cr_assert_eq(load(write_tiny(&(tiny_opts){.bos_str = "1"}), &src, &m, msg), RT_ERR_MODEL);
    cr_assert(strstr(msg, "'tokenizer.ggml.bos_token_id' is not an integer"), "%s", msg);
    inp_close(src);
    cr_assert_eq(load(write_tiny(&(tiny_opts){.bos = TV - 1}), &src, &m, msg), RT_OK, "%s", msg);
    rt_model_free(m);
    inp_close(src);
    /* tied output: no output.weight uses token_embd */
    cr_assert_eq(load(write_tiny(&(tiny_opts){.skip = "output.weight"}), &src, &m, msg), RT_OK, "%s", msg);
    cr_assert(rt_model_hparams(m)->tied_output);
    int32_t tok[5] = {1, 2, 3, 4, 5};
    double ref[5 * TV];
    float lg[5 * TV];
    naive_forward(src, rt_model_hparams(m), tok, 5, ref);
    cr_assert_eq(rt_forward(m, tok, 5, 0, lg, msg), RT_OK);
    compare_logits(lg, ref, 5, TV, "tied");
    rt_model_free(m);
    inp_close(src);
}

/* ---------------------------------------------------------------- the demo model */

Test(runtime, classics_f32_matches_plain_forward_and_threads)
{
    TU_REQUIRE_SHARED();
    char *path = tu_shared_path("reference/classics-7m-f32.gguf");
    inp_source *src;
    rt_model *m;
    char msg[RT_MSG_SIZE];
    cr_assert_eq(load(path, &src, &m, msg), RT_OK, "%s", msg);
    free(path);
    const rt_hparams *hp = rt_model_hparams(m);
    cr_assert_eq(hp->n_layer, 6);
    cr_assert_eq(hp->n_embd, 256);
    cr_assert_eq(hp->n_ff, 768);
    cr_assert_eq(hp->n_head, 8);
    cr_assert_eq(hp->n_head_kv, 4);
    cr_assert_eq(hp->head_dim, 32);
    cr_assert_eq(hp->n_vocab, 4096);
    cr_assert_eq(hp->n_ctx_train, 256);
    cr_assert_float_eq(hp->rope_base, 10000.0f, 1e-3f);
    cr_assert_float_eq(hp->rms_eps, 1e-5f, 1e-9f);
    const int T = 40, V = hp->n_vocab;
    int32_t tok[40];
    tok[0] = 1;
    for (int i = 1; i < T; i++)
        tok[i] = 3 + (i * 977) % (V - 3);
    double *ref = malloc((size_t)T * V * sizeof *ref);
    naive_forward(src, hp, tok, T, ref);
    float *lg = malloc((size_t)T * V * sizeof *lg), *lg2 = malloc((size_t)T * V * sizeof *lg2);
    for (int isa = 0; isa < RT_ISA_COUNT_; isa++) {
        if (!rt_isa_supported(isa))
            continue;
        rt_model_set_isa(m, isa);
        rt_model_set_threads(m, 1);
        cr_assert_eq(rt_forward(m, tok, T, 0, lg, msg), RT_OK, "%s", msg);
        compare_logits(lg, ref, T, V, rt_isa_name(isa));
        for (int nth = 2; nth <= 3; nth++) {
            rt_model_set_threads(m, nth);
            cr_assert_eq(rt_forward(m, tok, T, 0, lg2, msg), RT_OK);
            cr_assert(memcmp(lg, lg2, (size_t)T * V * sizeof *lg) == 0, "%s: %d threads change the logits",
                      rt_isa_name(isa), nth);
        }
    }
    free(ref);
    free(lg);
    free(lg2);
    rt_model_free(m);
    inp_close(src);
}

/* rt_model_scratch_bytes (the --max-memory estimate) against what a pass really allocates:
 * the heap in use (glibc mallinfo2) before and after the first pass of a fresh clone. */
Test(runtime, scratch_estimate_matches_allocation)
{
    inp_source *src;
    rt_model *m, *c;
    char msg[RT_MSG_SIZE];
    const char *path = write_tiny(&(tiny_opts){0});
    cr_assert_eq(load(path, &src, &m, msg), RT_OK, "%s", msg);
    const int S = 3, T = 48, V = rt_model_hparams(m)->n_vocab;
    int32_t *tok = malloc((size_t)S * T * sizeof *tok);
    float *lg = malloc((size_t)S * T * V * sizeof *lg);
    for (int i = 0; i < S * T; i++)
        tok[i] = (i * 13 + 5) % V;
    for (int nth = 1; nth <= 2; nth++) {
        cr_assert_eq(rt_model_clone(m, &c, msg), RT_OK, "%s", msg);
        rt_model_set_threads(c, nth);
        const uint64_t est = rt_model_scratch_bytes(c, S, T, nth);
        struct mallinfo2 a = mallinfo2();
        cr_assert_eq(rt_forward_seqs(c, tok, S, T, 0, lg, msg), RT_OK, "%s", msg);
        struct mallinfo2 b = mallinfo2();
        const double used = (double)(b.uordblks + b.hblkhd) - (double)(a.uordblks + a.hblkhd);
        if (used <= 0) { /* a sanitizer's allocator: mallinfo2 does not see it */
            rt_model_free(c);
            cr_skip_test("mallinfo2 does not report this allocator");
        }
        cr_assert(used <= (double)est && used >= 0.9 * (double)est,
                  "%d thread(s): estimate %llu bytes, allocated %.0f", nth, (unsigned long long)est, used);
        rt_model_free(c);
    }
    cr_assert_eq(rt_model_scratch_bytes(NULL, S, T, 1), 0);
    cr_assert_eq(rt_model_scratch_bytes(m, 0, T, 1), 0);
    /* weights: a GGUF's tensor bytes as mapped */
    gguf_reader *r;
    char gmsg[GGUF_MSG_SIZE];
    cr_assert_eq(gguf_open(path, &r, gmsg), GGUF_OK, "%s", gmsg);
    uint64_t sum = 0;
    for (int64_t i = 0; i < gguf_n_tensors(r); i++)
        sum += gguf_tensor_at(r, i)->nbytes;
    gguf_close(r);
    cr_assert_eq(rt_weights_bytes(src), sum);
    free(tok);
    free(lg);
    rt_model_free(m);
    inp_close(src);
}

/* ---------------------------------------------------------------- llama.cpp's figures on Llama 3, Qwen2, Qwen3 */

/* llama-perplexity's figures with the ggml libraries of llama.cpp's AVX2 build (no AVX-512; see
 * tests/test_perplexity.c), which qforge's avx2, avxvnni and scalar paths reproduce, on the same
 * files (qforge's conversion and quantization, equal to llama.cpp's: tests/tools/archs.sh):
 *   LD_LIBRARY_PATH=AVX2-BUILD/bin llama-perplexity -m FILE -f WIKI40K -c 128 --chunks 8 -t 2
 * The AVX-512 build's figures (the avx512 path) are the reference JSON's. f32, Q8_0, Q4_K_M. */
static const struct {
    const char *name;
    double ppl[3];
} k_synth_avx2[] = {
    {"llama3", {306432.6230, 304594.2460, 311759.3492}},
    {"qwen2", {289324.4287, 290010.7585, 287837.1931}},
    {"qwen3", {308642.0128, 307966.2929, 308135.4159}},
};

/* llama-perplexity's figure for n_chunk chunks of n_ctx of the given ids. */
static double ppl_of(rt_model *m, const int32_t *ids, int n_chunk, int n_ctx, int32_t bos)
{
    const int first = n_ctx / 2, n_scored = n_ctx - 1 - first, V = rt_model_hparams(m)->n_vocab;
    float *lg = malloc((size_t)(n_ctx - first) * V * sizeof *lg);
    double *nll = malloc((size_t)n_scored * sizeof *nll);
    cr_assert(lg && nll);
    rt_ppl_acc acc = {0};
    char msg[RT_MSG_SIZE];
    for (int c = 0; c < n_chunk; c++) {
        const int32_t *chunk = ids + (size_t)c * n_ctx;
        cr_assert_eq(rt_ppl_chunk_logits(m, chunk, n_ctx, bos, lg, msg), RT_OK, "%s", msg);
        rt_ppl_row_nll(lg, V, chunk + first + 1, n_scored, nll, 0);
        rt_ppl_add(&acc, nll, n_scored);
    }
    free(lg);
    free(nll);
    return rt_ppl_value(&acc);
}

static void check_reference_ppl(const char *name)
{
    TU_REQUIRE_SHARED();
    char rel[64];
    snprintf(rel, sizeof rel, "reference/synth-%s.json", name);
    char *rp = tu_shared_path(rel);
    json_error_t je;
    json_t *ref = json_load_file(rp, 0, &je);
    cr_assert_not_null(ref, "%s: %s", rp, je.text);
    json_t *ids = json_object_get(ref, "llama_tokenize_ids"), *pp = json_object_get(ref, "llama_perplexity");
    json_t *md = json_object_get(json_object_get(ref, "convert_f32"), "metadata");
    const int n_ctx = (int)json_integer_value(json_object_get(pp, "n_ctx"));
    const int n_chunk = (int)json_integer_value(json_object_get(pp, "chunks"));
    cr_assert(n_ctx > 0 && n_chunk > 0 && json_array_size(ids) >= (size_t)(n_ctx * n_chunk));
    int32_t *tok = malloc((size_t)n_ctx * n_chunk * sizeof *tok);
    for (int i = 0; i < n_ctx * n_chunk; i++)
        tok[i] = (int32_t)json_integer_value(json_array_get(ids, (size_t)i));
    /* BOS replaces each chunk's first token where the model adds one (the ids start with it) */
    const int32_t bos_id = (int32_t)json_integer_value(
        json_object_get(json_object_get(md, "tokenizer.ggml.bos_token_id"), "value"));
    const int32_t bos = tok[0] == bos_id ? bos_id : -1;
    char *dir = tu_mkdtemp(), ck[4096];
    cr_assert(dir);
    char *models = tu_shared_path("models");
    snprintf(ck, sizeof ck, "%s/synth-%s", models, name); /* read as downloaded: tokenizer.json */
    free(models);
    static const char *const kinds[] = {"f32", "Q8_0", "Q4_K_M"};
    for (int k = 0; k < 3; k++) {
        char path[4096];
        snprintf(path, sizeof path, "%s", ck);
        if (k > 0) { /* through qforge-convert and qforge-quantize, as a user would */
            snprintf(path, sizeof path, "%s/%s.gguf", dir, kinds[k]);
            cr_assert_eq(tu_run("[ -e '%s/f32.gguf' ] || '%s/qforge-convert' '%s' -o '%s/f32.gguf' --outtype f32 > /dev/null; "
                                "'%s/qforge-quantize' '%s/f32.gguf' '%s' %s > /dev/null 2>&1",
                                dir, tu_bin(), ck, dir, tu_bin(), dir, path, kinds[k]),
                         0);
        }
        inp_source *src;
        rt_model *m;
        char msg[RT_MSG_SIZE];
        cr_assert_eq(load(path, &src, &m, msg), RT_OK, "%s: %s", path, msg);
        const double got = ppl_of(m, tok, n_chunk, n_ctx, bos);
        const rt_isa isa = rt_isa_detect();
        double want = json_number_value(json_object_get(json_object_get(pp, "ppl"), kinds[k]));
        if (isa != RT_ISA_AVX512)
            for (size_t r = 0; r < sizeof k_synth_avx2 / sizeof *k_synth_avx2; r++)
                if (!strcmp(k_synth_avx2[r].name, name))
                    want = k_synth_avx2[r].ppl[k];
        /* measured: equal to the printed digits on both paths */
        const double limit = 2e-4;
        cr_expect(fabs(got / want - 1) <= limit, "%s %s (%s): PPL %.4f, llama-perplexity %.4f (%+.5f %%, limit %.2f %%)",
                  name, kinds[k], rt_isa_name(isa), got, want, 100 * (got / want - 1), 100 * limit);
        rt_model_free(m);
        inp_close(src);
    }
    tu_run("rm -rf '%s'", dir);
    free(dir);
    free(tok);
    free(rp);
    json_decref(ref);
}

Test(runtime_reference, llama3_rope_freqs_tied, .timeout = 600) { check_reference_ppl("llama3"); }
Test(runtime_reference, qwen2_biases_neox, .timeout = 600) { check_reference_ppl("qwen2"); }
Test(runtime_reference, qwen3_qk_norms_head_dim, .timeout = 600) { check_reference_ppl("qwen3"); }

/* ---------------------------------------------------------------- synthetic tokenizer.json checkpoints */

/* qforge-synth --tokenizer bpe of each class with the shapes the shared models lack (untied,
 * GQA 8:1, head_dim 16 != 64 / 8, three shards), converted by qforge-convert --tokenizer-pre:
 * the runtime's logits on text tokenized by the file's own vocabulary equal the plain forward
 * pass on every ISA. */
static void synth_bpe_forward(const char *cls, const char *pre, const char *arch)
{
    char *dir = tu_mkdtemp();
    cr_assert(dir);
    cr_assert_eq(tu_run("'%s/qforge-synth' --arch %s --dim 64 --layers 2 --heads 8 --kv-heads 1 --head-dim 16 --ffn 96 "
                        "--vocab 1500 --shards 3 --tokenizer bpe --seed 7 -o '%s/m' > /dev/null && "
                        "'%s/qforge-convert' '%s/m' -o '%s/m.gguf' --outtype f32 --tokenizer-pre %s > /dev/null",
                        tu_bin(), cls, dir, tu_bin(), dir, dir, pre),
                 0);
    char path[4096], msg[RT_MSG_SIZE], tm[TOK_MSG_SIZE];
    snprintf(path, sizeof path, "%s/m.gguf", dir);
    inp_source *src;
    rt_model *m;
    cr_assert_eq(load(path, &src, &m, msg), RT_OK, "%s", msg);
    const rt_hparams *hp = rt_model_hparams(m);
    cr_assert_str_eq(rt_model_arch(m)->name, arch);
    cr_assert(hp->n_head == 8 && hp->n_head_kv == 1 && hp->head_dim == 16 && hp->n_embd == 64 && !hp->tied_output);
    tok_model *t;
    cr_assert_eq(tok_from_gguf(inp_metadata(src), &t, tm), TOK_OK, "%s", tm);
    const char *text = "The quick brown fox jumps over the lazy dog; 1234 bees buzz.\n  Indented.";
    int32_t *tok;
    size_t T;
    cr_assert_eq(tok_encode(t, text, strlen(text), tok_default_flags(t), &tok, &T, tm), TOK_OK, "%s", tm);
    cr_assert(T > 10 && T < 64, "%zu tokens", T);
    const int V = hp->n_vocab;
    double *ref = malloc(T * V * sizeof *ref);
    float *lg = malloc(T * V * sizeof *lg);
    naive_forward(src, hp, tok, (int)T, ref);
    for (int isa = 0; isa < RT_ISA_COUNT_; isa++) {
        if (!rt_isa_supported(isa))
            continue;
        cr_assert_eq(rt_model_set_isa(m, isa), RT_OK);
        cr_assert_eq(rt_forward(m, tok, (int)T, 0, lg, msg), RT_OK, "%s", msg);
        char what[64];
        snprintf(what, sizeof what, "%s %s", cls, rt_isa_name(isa));
        compare_logits(lg, ref, (int)T, V, what);
    }
    free(ref);
    free(lg);
    free(tok);
    tok_free(t);
    rt_model_free(m);
    inp_close(src);
    tu_run("rm -rf '%s'", dir);
    free(dir);
}

Test(runtime, synth_bpe_llama3_matches_plain_forward) { synth_bpe_forward("LlamaForCausalLM", "llama-bpe", "llama"); }
Test(runtime, synth_bpe_qwen2_matches_plain_forward) { synth_bpe_forward("Qwen2ForCausalLM", "qwen2", "qwen2"); }
Test(runtime, synth_bpe_qwen3_matches_plain_forward) { synth_bpe_forward("Qwen3ForCausalLM", "qwen2", "qwen3"); }
