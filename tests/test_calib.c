/* GPTQ calibration: text loader (libsrc/text.h), Hessian accumulator and chunking
 * (runtime/calib.h), and sequential GPTQ of the demo model against plain rounding (needs
 * ../shared; skipped without it). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "libquant/lq.h"
#include "libsrc/text.h"
#include "runtime/calib.h"
#include "runtime/perplexity.h"
#include "runtime/tokenizer.h"
#include "tests/testutil.h"

/* ---------- text loader ---------- */

static char *tmpfile_with(const char *dir, const char *name, const void *data, size_t n)
{
    char *path = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(path, "%s/%s", dir, name);
    cr_assert_eq(tu_write_file(path, data, n), 0);
    return path;
}

static char *gz_file(const char *dir, const char *name, const char *const *parts, int nparts)
{
    char *path = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(path, "%s/%s", dir, name);
    FILE *out = fopen(path, "wb");
    cr_assert_not_null(out);
    for (int i = 0; i < nparts; ++i) { /* one gzip member per part */
        unsigned char buf[4096];
        z_stream z;
        memset(&z, 0, sizeof z);
        cr_assert_eq(deflateInit2(&z, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY), Z_OK);
        z.next_in = (unsigned char *)parts[i];
        z.avail_in = (unsigned)strlen(parts[i]);
        int r;
        do {
            z.next_out = buf;
            z.avail_out = sizeof buf;
            r = deflate(&z, Z_FINISH);
            fwrite(buf, 1, sizeof buf - z.avail_out, out);
        } while (r != Z_STREAM_END);
        deflateEnd(&z);
    }
    fclose(out);
    return path;
}

static src_error load(const char *path, char **text, size_t *len, char *msg)
{
    msg[0] = 0;
    return src_text_load(path, text, len, msg);
}

Test(text, plain_and_gzip)
{
    char *dir = tu_mkdtemp();
    const char *s = "Der Fluß — \xF0\x9F\x98\x80 war breit.\r\nZweite Zeile\n";
    char *p1 = tmpfile_with(dir, "a.txt", s, strlen(s));
    const char *parts[] = {"erster Teil, ", "zweiter Teil\n"};
    char *p2 = gz_file(dir, "b.txt", parts, 1); /* gzip whatever the name */
    char *p3 = gz_file(dir, "c.gz", parts, 2);  /* two members */
    char *p4 = tmpfile_with(dir, "empty.txt", "", 0);
    char *text, msg[SRC_MSG_SIZE];
    size_t len;

    cr_assert_eq(load(p1, &text, &len, msg), SRC_OK, "%s", msg);
    cr_assert_eq(len, strlen(s));
    cr_assert(memcmp(text, s, len) == 0 && text[len] == 0);
    free(text);
    cr_assert_eq(load(p2, &text, &len, msg), SRC_OK, "%s", msg);
    cr_assert_str_eq(text, "erster Teil, ");
    free(text);
    cr_assert_eq(load(p3, &text, &len, msg), SRC_OK, "%s", msg);
    cr_assert_str_eq(text, "erster Teil, zweiter Teil\n");
    cr_assert_eq(len, 26);
    free(text);
    cr_assert_eq(load(p4, &text, &len, msg), SRC_OK, "%s", msg);
    cr_assert_eq(len, 0);
    cr_assert(text && text[0] == 0);
    free(text);
    free(p1);
    free(p2);
    free(p3);
    free(p4);
    free(dir);
}

Test(text, rejects_bad_input)
{
    char *dir = tu_mkdtemp();
    char *text = (char *)1, msg[SRC_MSG_SIZE];
    size_t len = 7;
    static const struct {
        const char *bytes;
        size_t n;
        size_t offset;
    } bad[] = {
        {"ab\xC0\x80", 4, 2},          /* overlong NUL */
        {"abc\xED\xA0\x80x", 7, 3},    /* surrogate */
        {"\xF4\x90\x80\x80", 4, 0},    /* above U+10FFFF */
        {"ok \xE2\x82", 5, 3},         /* cut off at the end */
        {"x\x80y", 3, 1},              /* stray continuation byte */
        {"x\xF5\x80\x80\x80", 5, 1},   /* F5 lead */
        {"nul\0byte", 8, 3},           /* NUL */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
        cr_assert_eq(src_text_check(bad[i].bytes, bad[i].n), bad[i].offset, "case %zu", i);
        char *p = tmpfile_with(dir, "bad.txt", bad[i].bytes, bad[i].n);
        cr_assert_eq(load(p, &text, &len, msg), SRC_ERR_FORMAT, "case %zu", i);
        char want[64];
        snprintf(want, sizeof want, "at byte %zu", bad[i].offset);
        cr_assert(strstr(msg, want), "case %zu: %s", i, msg);
        cr_assert_null(text);
        cr_assert_eq(len, 0);
        free(p);
    }
    cr_assert_eq(src_text_check("\xF0\x9F\x98\x80\xC3\xA9", 6), 6);

    /* a gzip stream cut short, and bytes that only look like gzip */
    const char *parts[] = {"some text that will be compressed and then truncated, repeated "
                           "some text that will be compressed and then truncated\n"};
    char *gz = gz_file(dir, "t.gz", parts, 1);
    size_t n;
    unsigned char *raw = tu_read_file(gz, &n);
    cr_assert(raw && n > 20);
    char *cut = tmpfile_with(dir, "cut.gz", raw, n - 6);
    cr_assert_eq(load(cut, &text, &len, msg), SRC_ERR_FORMAT, "%s", msg);
    cr_assert(strstr(msg, "gzip"), "%s", msg);
    char *fake = tmpfile_with(dir, "fake.txt", "\x1f\x8b garbage that is not deflate", 30);
    cr_assert_eq(load(fake, &text, &len, msg), SRC_ERR_FORMAT, "%s", msg);

    char *missing = malloc(strlen(dir) + 16);
    sprintf(missing, "%s/nope.txt", dir);
    cr_assert_eq(load(missing, &text, &len, msg), SRC_ERR_IO);
    cr_assert(strstr(msg, "nope.txt"), "%s", msg);
    cr_assert_eq(load(dir, &text, &len, msg), SRC_ERR_IO, "%s", msg); /* a directory */
    cr_assert_eq(src_text_load(NULL, &text, &len, NULL), SRC_ERR_ARG);
    free(raw);
    free(gz);
    free(cut);
    free(fake);
    free(missing);
    free(dir);
}

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

static int32_t *tokenize_file(src_source *src, const char *rel, size_t *n)
{
    char *path = tu_shared_path(rel), *text, msg[RT_MSG_SIZE];
    size_t len;
    cr_assert_eq(src_text_load(path, &text, &len, msg), SRC_OK, "%s", msg);
    rt_tok *tok;
    cr_assert_eq(rt_tok_from_gguf(src_metadata(src), &tok, msg), RT_OK, "%s", msg);
    int32_t *ids;
    cr_assert_eq(rt_tok_encode(tok, text, len, rt_tok_default_flags(tok), &ids, n, msg), RT_OK,
                 "%s", msg);
    rt_tok_free(tok);
    free(text);
    free(path);
    return ids;
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
    src_source *src;
    cr_assert_eq(src_open(dir, &src, msg), SRC_OK, "%s", msg);
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

    size_t nc, ne;
    int32_t *cal = tokenize_file(src, "text/calibration.txt", &nc);
    int32_t *ev = tokenize_file(src, "text/eval-classics.txt", &ne);
    int ncal, nev;
    int32_t *cchunks = rt_calib_chunks(cal, nc, n_ctx, 1, 32, &ncal);
    int32_t *echunks = rt_calib_chunks(ev, ne, n_ctx, 1, 16, &nev);
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
    for (int64_t i = 0; i < src_n_tensors(src); ++i) {
        const src_tensor *t = src_tensor_at(src, i);
        if (strncmp(t->name, "blk.", 4) || t->n_dims != 2)
            continue;
        float *w = malloc((size_t)(t->ne[0] * t->ne[1]) * sizeof(float));
        void *q = malloc(lq_row_size(type, t->ne[0]) * (size_t)t->ne[1]);
        cr_assert_eq(src_read_f32(src, i, 0, t->ne[1], w, msg), SRC_OK, "%s", msg);
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
    free(cal);
    free(ev);
    free(cchunks);
    free(echunks);
    rt_model_free(mf);
    rt_model_free(mg);
    rt_model_free(mr);
    src_close(src);
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

static uint64_t calib_hash(src_source *src, const int32_t *chunks, int nch, int n_ctx, int nt)
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
    src_source *src;
    cr_assert_eq(src_open(dir, &src, msg), SRC_OK, "%s", msg);
    size_t nc;
    int32_t *cal = tokenize_file(src, "text/calibration.txt", &nc);
    int nch;
    int32_t *chunks = rt_calib_chunks(cal, nc, 64, 1, 6, &nch);
    cr_assert_eq(nch, 6);
    const uint64_t a = calib_hash(src, chunks, nch, 64, 1);
    const uint64_t b = calib_hash(src, chunks, nch, 64, 2);
    cr_assert_eq(a, b, "quantized bytes differ between 1 and 2 threads");
    free(cal);
    free(chunks);
    src_close(src);
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
    src_source *src;
    cr_assert_eq(src_open(dir, &src, msg), SRC_OK, "%s", msg);
    rt_model *m;
    cr_assert_eq(rt_model_load(src, &m, msg), RT_OK, "%s", msg);
    rt_model_set_threads(m, 1);
    size_t nc;
    int32_t *cal = tokenize_file(src, "text/calibration.txt", &nc);
    int nch;
    int32_t *chunks = rt_calib_chunks(cal, nc, 32, 1, 2, &nch);

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
    free(cal);
    free(chunks);
    rt_model_free(m);
    src_close(src);
    free(dir);
}
