/* The sweep: variants of one model, quantized and measured against the float model (sweep.h). */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "input/imatrix.h"
#include "input/text.h"
#include "pipeline/budget.h"
#include "pipeline/pl_internal.h"
#include "pipeline/sweep.h"
#include "runtime/perplexity.h"
#include "tokenizer/tokenizer.h"

#define SW_PATH 4096
#define SW_N_SENS 3 /* pl_sens_method's values: plain, imatrix, GPTQ */

static const char *const method_names[PL_SWEEP_N_METHODS] = {"rtn", "imatrix", "gptq", "gptq-act-order"};

const char *pl_sweep_method_name(pl_sweep_method m)
{
    return (unsigned)m < PL_SWEEP_N_METHODS ? method_names[m] : "?";
}

int pl_sweep_method_from_name(const char *s)
{
    for (int m = 0; s && m < PL_SWEEP_N_METHODS; m++)
        if (!strcmp(s, method_names[m]))
            return m;
    return -1;
}

void pl_sweep_opts_init(pl_sweep_opts *o)
{
    memset(o, 0, sizeof *o);
    pl_opts p;
    pl_opts_init(&p);
    o->calib = p.calib;
    o->n_batch = 512;
}

typedef struct {
    int ftype;           /* a named file type, or the budget's (set when made) */
    double bpw;          /* > 0: a size budget's variant */
    pl_sweep_method method;
    char type[32], method_name[40]; /* as recorded: "Q4_K_M" / "4.5 bpw", "gptq" / "gptq-budget" */
    char file[80], path[SW_PATH];
    json_t *qkey, *ekey; /* owned */
    json_t *rec;         /* the record once made or taken over (owned) */
} variant;

typedef struct {
    const pl_sweep_opts *o;
    inp_source *src;
    char *msg;
    int nthreads;
    json_t *model_key, *ekey;
    variant *v;
    size_t n_v;
    json_t **base;        /* per text: its record (owned) */
    inp_imatrix *im;
    json_t *imatrix;      /* its record */
    char imatrix_path[SW_PATH];
    rt_model *fmodel;     /* the float model, while the bases are made */
    double n_elements;
    pl_sens *sens[SW_N_SENS];     /* per pl_sens_method, once measured or loaded (owned) */
    json_t *sens_rec[SW_N_SENS];  /* their records */
} sweep;

static pl_error notify(sweep *s, pl_sweep_event ev)
{
    if (s->o->progress && s->o->progress(s->o->user, &ev))
        return pl_fail(s->msg, PL_ERR_STOPPED, "stopped by the caller");
    return PL_OK;
}

static int fwd_pl(void *user, const pl_event *ev)
{
    sweep *s = user;
    return s->o->progress ? s->o->progress(s->o->user, &(pl_sweep_event){.kind = PL_SW_PIPELINE, .pl = ev}) : 0;
}

static long long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) ? (long long)st.st_size : -1;
}

/* mkstemp makes 0600: give the file the mode a plain creat() would (0666 less the umask). */
static void plain_mode(int fd)
{
    const mode_t m = umask(0);
    umask(m);
    (void)!fchmod(fd, 0666 & ~m);
}

static json_t *file_key(const char *path)
{
    return json_pack("{s:s, s:I}", "path", path, "bytes", (json_int_t)file_size(path));
}

static json_t *calib_key(const pl_calib_params *c, bool gptq, bool act_order)
{
    json_t *k = json_pack("{s:s, s:I, s:i, s:i, s:I}", "text", c->name ? c->name : "", "bytes", (json_int_t)c->len,
                          "samples", c->samples, "ctx", c->ctx, "seed", (json_int_t)c->seed);
    if (k && gptq)
        json_object_update_new(k, json_pack("{s:f, s:b, s:b}", "damp", c->damp, "act_order", c->act_order || act_order,
                                            "sym", c->sym));
    return k;
}

/* The model's files and their sizes: what a variant was made from. */
static json_t *model_key(const pl_sweep_opts *o, inp_source *src)
{
    json_t *files = json_array();
    for (size_t i = 0; files && i < inp_n_files(src); i++)
        json_array_append_new(files, json_integer((json_int_t)file_size(inp_file(src, i))));
    return json_pack("{s:s, s:o*}", "path", o->model, "file_bytes", files);
}

static json_t *eval_key(const pl_sweep_opts *o)
{
    json_t *t = json_array();
    for (size_t i = 0; t && i < o->n_texts; i++)
        json_array_append_new(t, file_key(o->texts[i]));
    return json_pack("{s:o*, s:i, s:i}", "texts", t, "n_ctx", o->n_ctx, "chunks", o->chunks > 0 ? o->chunks : 0);
}

/* The record of prior[arr] whose "file" is file, or NULL. */
static json_t *prior_find(const pl_sweep_opts *o, const char *arr, const char *file)
{
    json_t *a = o->prior ? json_object_get(o->prior, arr) : NULL, *r;
    size_t i;
    json_array_foreach(a, i, r)
        if (json_is_string(json_object_get(r, "file")) && !strcmp(json_string_value(json_object_get(r, "file")), file))
            return r;
    return NULL;
}

/* The prior record for file when its key equals key and the file has the recorded size. */
static json_t *prior_match(sweep *s, const char *arr, const char *file, const char *path, const char *keyname,
                           const json_t *key)
{
    json_t *r = prior_find(s->o, arr, file);
    if (!r || !json_equal(json_object_get(r, keyname), (json_t *)key))
        return NULL;
    json_t *b = json_object_get(r, "file_bytes");
    return json_is_integer(b) && json_integer_value(b) == file_size(path) ? r : NULL;
}

static pl_error join(sweep *s, char *out, const char *name)
{
    if (snprintf(out, SW_PATH, "%s/%s", s->o->dir, name) >= SW_PATH)
        return pl_fail(s->msg, PL_ERR_ARG, "%s: path too long", s->o->dir);
    return PL_OK;
}

/* ---------------------------------------------------------------- report */

static json_t *report_json(const sweep *s)
{
    const pl_sweep_opts *o = s->o;
    json_t *types = json_array(), *methods = json_array(), *bases = json_array(), *vars = json_array();
    json_t *bpws = json_array(), *sens = json_array();
    for (size_t i = 0; types && i < o->n_ftypes; i++)
        json_array_append_new(types, json_string(lq_ftype_name(o->ftypes[i])));
    for (size_t i = 0; bpws && i < o->n_bpws; i++)
        json_array_append_new(bpws, json_real(o->bpws[i]));
    for (int m = 0; sens && m < SW_N_SENS; m++)
        if (s->sens_rec[m])
            json_array_append(sens, s->sens_rec[m]);
    for (size_t i = 0; methods && i < o->n_methods; i++)
        json_array_append_new(methods, json_string(pl_sweep_method_name(o->methods[i])));
    for (size_t i = 0; bases && i < o->n_texts; i++)
        if (s->base[i])
            json_array_append(bases, s->base[i]);
    for (size_t i = 0; vars && i < s->n_v; i++)
        if (s->v[i].rec)
            json_array_append(vars, s->v[i].rec);
    json_t *opts = json_pack("{s:o*, s:o*, s:o*, s:O*, s:i, s:i, s:i, s:i, s:o*}", "types", types, "bpws", bpws,
                             "methods", methods,
                             "eval", s->ekey, "n_ctx", o->n_ctx, "chunks", o->chunks > 0 ? o->chunks : 0,
                             "n_batch", o->n_batch, "threads", s->nthreads, "calib", calib_key(&o->calib, true, false));
    return json_pack("{s:s, s:s, s:s, s:O*, s:f, s:o*, s:O*, s:o*, s:o*, s:o*}", "tool", o->tool ? o->tool : "",
                     "version", o->version ? o->version : "", "model", o->model, "model_key", s->model_key,
                     "n_elements", s->n_elements, "options", opts, "imatrix", s->imatrix ? s->imatrix : json_null(),
                     "sensitivity", sens, "bases", bases, "variants", vars);
}

pl_error pl_sweep_write_json(const pl_sweep_opts *o, const json_t *j, const char *path, char *msg)
{
    char tmp[SW_PATH + 32];
    const char *slash = strrchr(path, '/');
    const int dl = slash ? (int)(slash - path + 1) : 0;
    if (snprintf(tmp, sizeof tmp, "%.*s.%s.qforge-tmp-XXXXXX", dl, path, path + dl) >= (int)sizeof tmp)
        return pl_fail(msg, PL_ERR_ARG, "%s: path too long", path);
    int fd = mkstemp(tmp);
    if (fd < 0)
        return pl_fail(msg, PL_ERR_IO, "%s: cannot create a temp file: %s", path, strerror(errno));
    plain_mode(fd);
    sweep s = {.o = o, .msg = msg};
    pl_error e = notify(&s, (pl_sweep_event){.kind = PL_SW_TEMP_OPEN, .text = tmp});
    FILE *f = fdopen(fd, "w");
    if (e == PL_OK && (!f || json_dumpf(j, f, JSON_INDENT(1) | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(10)) != 0 ||
                       fputc('\n', f) == EOF || fflush(f) != 0 || fsync(fd) != 0))
        e = pl_fail(msg, PL_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    if (f ? fclose(f) != 0 && e == PL_OK : close(fd) != 0)
        e = pl_fail(msg, PL_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    if (e == PL_OK && rename(tmp, path) != 0)
        e = pl_fail(msg, PL_ERR_IO, "%s: cannot rename the temp file: %s", path, strerror(errno));
    if (e != PL_OK)
        unlink(tmp);
    notify(&s, (pl_sweep_event){.kind = PL_SW_TEMP_CLOSED});
    return e;
}

static pl_error checkpoint(sweep *s)
{
    char path[SW_PATH];
    pl_error e = join(s, path, "report.json");
    json_t *j = e == PL_OK ? report_json(s) : NULL;
    if (e == PL_OK && !j)
        e = pl_fail(s->msg, PL_ERR_NOMEM, "out of memory");
    if (e == PL_OK)
        e = pl_sweep_write_json(s->o, j, path, s->msg);
    json_decref(j);
    return e;
}

/* ---------------------------------------------------------------- shared passes */

static void pipeline_opts(const sweep *s, pl_opts *p)
{
    pl_opts_init(p);
    p->input_name = s->o->model;
    p->nthreads = s->nthreads;
    p->calib = s->o->calib;
    p->calib.imatrix_out = NULL;
    p->progress = fwd_pl;
    p->user = (void *)s;
}

/* The float model's importance matrix (DIR/imatrix.gguf), made once and loaded back. */
static pl_error imatrix(sweep *s)
{
    pl_error e = join(s, s->imatrix_path, "imatrix.gguf");
    json_t *key = json_pack("{s:O, s:o}", "model", s->model_key, "calib", calib_key(&s->o->calib, false, false));
    json_t *prior = NULL, *r = s->o->prior ? json_object_get(s->o->prior, "imatrix") : NULL;
    if (!key)
        e = pl_fail(s->msg, PL_ERR_NOMEM, "out of memory");
    if (json_is_object(r) && json_equal(json_object_get(r, "key"), key) &&
        json_integer_value(json_object_get(r, "file_bytes")) == file_size(s->imatrix_path))
        prior = r;
    if (e == PL_OK && !prior) {
        pl_opts p;
        pipeline_opts(s, &p);
        p.calib.imatrix_out = s->imatrix_path;
        pl_report *r = NULL;
        const double t0 = pl_now();
        if ((e = notify(s, (pl_sweep_event){.kind = PL_SW_STEP, .text = "imatrix"})) == PL_OK)
            e = pl_run_imatrix(s->src, &p, &r, s->msg);
        pl_report_free(r);
        if (e == PL_OK)
            e = notify(s, (pl_sweep_event){.kind = PL_SW_STEP_DONE});
        if (e == PL_OK)
            s->imatrix = json_pack("{s:s, s:O, s:I, s:f}", "file", "imatrix.gguf", "key", key, "file_bytes",
                                   (json_int_t)file_size(s->imatrix_path), "seconds", pl_now() - t0);
    } else if (e == PL_OK) {
        s->imatrix = json_deep_copy(prior);
    }
    json_decref(key);
    char imsg[INP_MSG_SIZE];
    inp_error ie = e == PL_OK ? inp_imatrix_load(s->imatrix_path, &s->im, imsg) : INP_OK;
    if (ie != INP_OK)
        e = pl_fail(s->msg, pl_from_inp(ie), "%s", imsg);
    return e;
}

/* ---------------------------------------------------------------- base */

typedef struct {
    sweep *s;
    const char *path; /* of f */
    FILE *f;          /* base: records written; variant: records read */
    size_t rec_size;
    rt_ppl_acc acc;
    rt_kld *kld;
    unsigned char *recs;
    int n_vocab, n_chunk;
    pl_error err;
} eval_ctx;

static int base_chunk(void *user, int c, const rt_ppl_chunk *ch)
{
    eval_ctx *x = user;
    rt_ppl_add(&x->acc, ch->nll, ch->n_scored);
    if (fwrite(ch->records, x->rec_size, (size_t)ch->n_scored, x->f) != (size_t)ch->n_scored) {
        x->err = pl_fail(x->s->msg, PL_ERR_IO, "%s: write failed: %s", x->path, strerror(errno));
        return 1;
    }
    x->err = notify(x->s, (pl_sweep_event){.kind = PL_SW_ADVANCE, .done = c + 1, .total = x->n_chunk});
    return x->err != PL_OK;
}

/* Tokens of text k, as qforge-perplexity -f tokenizes them; *bos: the chunks' first token. */
static pl_error tokenize(sweep *s, size_t k, int32_t **tokens, size_t *n, int32_t *bos)
{
    char tmsg[TOK_MSG_SIZE], imsg[INP_MSG_SIZE], *text = NULL;
    size_t len;
    tok_model *tok = NULL;
    int te = tok_from_gguf(inp_metadata(s->src), &tok, tmsg);
    if (te != 0)
        return pl_fail(s->msg, pl_from_rt(rt_error_from_tok(te)), "%s: tokenizer: %s", s->o->model, tmsg);
    *bos = (tok_default_flags(tok) & TOK_ADD_BOS) && tok_bos(tok) >= 0 ? tok_bos(tok) : -1;
    inp_error ie = inp_text_load(s->o->texts[k], &text, &len, imsg);
    pl_error e = ie == INP_OK ? PL_OK : pl_fail(s->msg, pl_from_inp(ie), "%s", imsg);
    if (e == PL_OK && (te = tok_encode(tok, text, len, tok_default_flags(tok), tokens, n, tmsg)) != 0)
        e = pl_fail(s->msg, pl_from_rt(rt_error_from_tok(te)), "%s: tokenizer: %s", s->o->texts[k], tmsg);
    free(text);
    tok_free(tok);
    if (e == PL_OK && *n < 2 * (size_t)s->o->n_ctx)
        e = pl_fail(s->msg, PL_ERR_FORMAT, "%s: text too short: %zu tokens, perplexity with n_ctx %d needs %d",
                    s->o->texts[k], *n, s->o->n_ctx, 2 * s->o->n_ctx);
    return e;
}

/* The float model on text k: its perplexity, and its records written to path (temp, rename). */
static pl_error base_eval(sweep *s, size_t k, const char *path, json_t *key)
{
    const pl_sweep_opts *o = s->o;
    int32_t *tokens = NULL, bos = -1;
    size_t n_tok = 0;
    char rmsg[RT_MSG_SIZE];
    pl_error e = PL_OK;
    rt_error re;
    if (!s->fmodel && (re = rt_model_load(s->src, &s->fmodel, rmsg)) != RT_OK)
        return pl_fail(s->msg, pl_from_rt(re), "%s: %s", o->model, rmsg);
    rt_model_set_threads(s->fmodel, s->nthreads);
    if ((e = tokenize(s, k, &tokens, &n_tok, &bos)) != PL_OK)
        goto out;
    const int n_vocab = rt_model_hparams(s->fmodel)->n_vocab;
    int n_chunk = (int)(n_tok / (size_t)o->n_ctx);
    if (o->chunks > 0 && o->chunks < n_chunk)
        n_chunk = o->chunks;
    char tmp[SW_PATH + 32];
    snprintf(tmp, sizeof tmp, "%s.qforge-tmp-XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd >= 0)
        plain_mode(fd);
    eval_ctx x = {.s = s, .path = path, .f = fd >= 0 ? fdopen(fd, "wb") : NULL, .rec_size = rt_logp_record_size(n_vocab),
                  .n_chunk = n_chunk};
    if (!x.f) {
        e = pl_fail(s->msg, PL_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
        goto out;
    }
    char label[SW_PATH];
    const char *base = strrchr(o->texts[k], '/');
    snprintf(label, sizeof label, "base %s", base ? base + 1 : o->texts[k]);
    const double t0 = pl_now();
    rt_logp_header h = {.n_vocab = (uint32_t)n_vocab, .n_ctx = (uint32_t)o->n_ctx, .n_chunk = (uint32_t)n_chunk,
                        .first = (uint32_t)(o->n_ctx / 2), .range = RT_LOGP_RANGE};
    if ((e = notify(s, (pl_sweep_event){.kind = PL_SW_TEMP_OPEN, .text = tmp})) == PL_OK &&
        (e = notify(s, (pl_sweep_event){.kind = PL_SW_STEP, .text = label, .total = n_chunk, .unit = "chunks"})) ==
            PL_OK &&
        (re = rt_logp_write_header(x.f, &h, tokens, rmsg)) != RT_OK)
        e = pl_fail(s->msg, pl_from_rt(re), "%s: %s", path, rmsg);
    const rt_ppl_eval_opts eo = {.n_ctx = o->n_ctx, .n_chunk = n_chunk, .n_batch = o->n_batch,
                                 .nthreads = s->nthreads, .bos = bos, .nll = true, .records = true,
                                 .chunk = base_chunk, .user = &x};
    if (e == PL_OK && (re = rt_ppl_eval(s->fmodel, tokens, &eo, rmsg)) != RT_OK)
        e = x.err != PL_OK ? x.err : pl_fail(s->msg, pl_from_rt(re), "%s: %s", o->model, rmsg);
    if (e == PL_OK && (fflush(x.f) != 0 || fsync(fileno(x.f)) != 0))
        e = pl_fail(s->msg, PL_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    if (fclose(x.f) != 0 && e == PL_OK)
        e = pl_fail(s->msg, PL_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    if (e == PL_OK && rename(tmp, path) != 0)
        e = pl_fail(s->msg, PL_ERR_IO, "%s: cannot rename the temp file: %s", path, strerror(errno));
    if (e != PL_OK)
        unlink(tmp);
    notify(s, (pl_sweep_event){.kind = PL_SW_TEMP_CLOSED});
    if (e == PL_OK && (e = notify(s, (pl_sweep_event){.kind = PL_SW_STEP_DONE})) == PL_OK) {
        const char *file = strrchr(path, '/') + 1;
        s->base[k] = json_pack("{s:s, s:s, s:O, s:I, s:f, s:f, s:i, s:i, s:I, s:I, s:i, s:f}", "text", o->texts[k],
                               "file", file, "key", key, "file_bytes", (json_int_t)file_size(path), "ppl",
                               rt_ppl_value(&x.acc), "ppl_unc", rt_ppl_uncertainty(&x.acc), "n_ctx", o->n_ctx,
                               "n_chunk", n_chunk, "n_tokens", (json_int_t)n_tok, "scored_tokens",
                               (json_int_t)x.acc.count, "bos", (int)bos, "seconds", pl_now() - t0);
        if (!s->base[k])
            e = pl_fail(s->msg, PL_ERR_NOMEM, "out of memory");
    }
out:
    free(tokens);
    return e;
}

/* Every text's base file: taken over from the prior report or made (when an evaluation needs
 * it: make). */
static pl_error bases(sweep *s, bool make)
{
    pl_error e = PL_OK;
    for (size_t k = 0; e == PL_OK && k < s->o->n_texts; k++) {
        char name[64], path[SW_PATH];
        snprintf(name, sizeof name, "base-%zu.kld", k + 1);
        if ((e = join(s, path, name)) != PL_OK)
            break;
        json_t *key = json_pack("{s:O, s:o, s:i, s:i}", "model", s->model_key, "text", file_key(s->o->texts[k]),
                                "n_ctx", s->o->n_ctx, "chunks", s->o->chunks > 0 ? s->o->chunks : 0);
        json_t *prior = key ? prior_match(s, "bases", name, path, "key", key) : NULL;
        json_t *any = key && !make ? prior_find(s->o, "bases", name) : NULL;
        if (any && json_equal(json_object_get(any, "key"), key))
            prior = any;
        if (!key)
            e = pl_fail(s->msg, PL_ERR_NOMEM, "out of memory");
        else if (prior)
            s->base[k] = json_deep_copy(prior);
        else if (make)
            e = base_eval(s, k, path, key);
        json_decref(key);
    }
    rt_model_free(s->fmodel);
    s->fmodel = NULL;
    return e;
}

/* ---------------------------------------------------------------- size budgets */

static pl_sens_method sens_method(pl_sweep_method m)
{
    return m == PL_SWEEP_RTN ? PL_SENS_PLAIN : m == PL_SWEEP_IMATRIX ? PL_SENS_IMATRIX : PL_SENS_GPTQ;
}

/* The default candidates' names: a table measured for other candidates is not reused. */
static json_t *cand_key(void)
{
    size_t n = 0;
    const int *c = pl_budget_default_candidates(&n);
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_string(gguf_type_info(c[i]) ? gguf_type_info(c[i])->name : "?"));
    return a;
}

static int sens_progress(void *user, size_t i, size_t n, const pl_sens_row *row)
{
    (void)row;
    sweep *s = user;
    return notify(s, (pl_sweep_event){.kind = PL_SW_ADVANCE, .done = (double)i + 1, .total = (double)n}) != PL_OK;
}

static void sens_opts(sweep *s, pl_sens_method m, pl_sens_opts *so)
{
    pl_sens_opts_init(so);
    so->method = m;
    so->imatrix = s->im;
    so->text = s->o->calib.text;
    so->len = s->o->calib.len;
    so->seed = s->o->calib.seed;
    so->damp = s->o->calib.damp;
    so->nthreads = s->nthreads;
    so->progress = sens_progress;
    so->user = s;
}

/* Measure quantizer m's table into path (JSON through a temp file). */
static pl_error sens_measure(sweep *s, pl_sens_method m, const char *path)
{
    pl_sens_opts so;
    sens_opts(s, m, &so);
    char label[64];
    snprintf(label, sizeof label, "sensitivity %s", pl_sens_method_name(m));
    pl_error e = notify(s, (pl_sweep_event){.kind = PL_SW_STEP, .text = label, .unit = "tensors"});
    if (e == PL_OK)
        e = pl_sens_measure(s->src, &so, &s->sens[m], s->msg);
    if (e == PL_OK)
        e = notify(s, (pl_sweep_event){.kind = PL_SW_STEP_DONE});
    json_t *j = e == PL_OK ? pl_sens_json(s->sens[m]) : NULL;
    if (e == PL_OK && !j)
        e = pl_fail(s->msg, PL_ERR_NOMEM, "out of memory");
    if (e == PL_OK)
        e = pl_sweep_write_json(s->o, j, path, s->msg);
    json_decref(j);
    return e;
}

/* The file name of quantizer m's sensitivity table in DIR. */
static void sens_file(pl_sens_method m, char file[64])
{
    snprintf(file, 64, "sensitivity-%s.json", pl_sens_method_name(m));
}

/* Bumped when a table measured by an older build must not be reused (2: GPTQ tables before it
 * were measured with plain rounding for the layer weights). */
#define SENS_MEASURE_VERSION 2

/* Quantizer m's sensitivity table: DIR/sensitivity-<m>.json when its record matches, else
 * measured and written there. Every budget of that quantizer uses it. */
static pl_error sensitivity(sweep *s, pl_sens_method m)
{
    if (s->sens[m])
        return PL_OK;
    char file[64], path[SW_PATH];
    sens_file(m, file);
    pl_error e = join(s, path, file);
    pl_sens_opts so;
    sens_opts(s, m, &so);
    json_t *key = json_pack("{s:O, s:s, s:o*, s:o*, s:i, s:i}", "model", s->model_key, "method",
                            pl_sens_method_name(m), "calib", calib_key(&s->o->calib, m == PL_SENS_GPTQ, false),
                            "candidates", cand_key(), "chunks", so.n_chunks, "measure", SENS_MEASURE_VERSION);
    if (e == PL_OK && !key)
        e = pl_fail(s->msg, PL_ERR_NOMEM, "out of memory");
    json_t *prior = e == PL_OK ? prior_match(s, "sensitivity", file, path, "key", key) : NULL;
    const double t0 = pl_now();
    if (e == PL_OK)
        e = prior ? pl_sens_load(path, s->src, &s->sens[m], s->msg) : sens_measure(s, m, path);
    if (e == PL_OK) {
        json_decref(s->sens_rec[m]);
        s->sens_rec[m] = prior ? json_deep_copy(prior)
                               : json_pack("{s:s, s:O, s:I, s:f}", "file", file, "key", key, "file_bytes",
                                           (json_int_t)file_size(path), "seconds", pl_now() - t0);
        if (!s->sens_rec[m])
            e = pl_fail(s->msg, PL_ERR_NOMEM, "out of memory");
    }
    json_decref(key);
    return e;
}

/* The prior report's tables that still match their files stay in the report, used or not. */
static void carry_sensitivity(sweep *s)
{
    json_t *a = s->o->prior ? json_object_get(s->o->prior, "sensitivity") : NULL, *r;
    size_t i;
    json_array_foreach(a, i, r) {
        const char *file = json_string_value(json_object_get(r, "file"));
        char path[SW_PATH];
        for (int m = 0; file && m < SW_N_SENS; m++) {
            char want[64];
            sens_file(m, want);
            if (!strcmp(file, want) && !s->sens_rec[m] && join(s, path, file) == PL_OK &&
                json_integer_value(json_object_get(r, "file_bytes")) == file_size(path))
                s->sens_rec[m] = json_deep_copy(r);
        }
    }
}

/* The weights of src: a budget of X bpw is X * weights / 8 file bytes (qforge-quantize's rule). */
static double n_weights(inp_source *src)
{
    double n = 0;
    for (int64_t i = 0; i < inp_n_tensors(src); i++)
        n += (double)inp_n_rows(inp_tensor_at(src, i)) * (double)inp_tensor_at(src, i)->ne[0];
    return n;
}

/* pl_run, or pl_budget_run for a budget's variant (the record gets its "budget" object). */
static pl_error make_variant(sweep *s, variant *v, pl_opts *p, pl_report **r, json_t **budget)
{
    if (v->bpw <= 0)
        return pl_run(s->src, p, r, s->msg);
    const pl_sens_method m = sens_method(v->method);
    pl_error e = sensitivity(s, m);
    if (e != PL_OK)
        return e;
    pl_budget_opts b;
    memset(&b, 0, sizeof b);
    b.budget = (uint64_t)(v->bpw * n_weights(s->src) / 8);
    pl_alloc *a = NULL;
    p->ftype = -1;
    e = pl_budget_run(s->src, p, s->sens[m], &b, &a, r, s->msg);
    if (e == PL_OK) {
        v->ftype = b.ftype;
        *budget = json_pack("{s:f, s:I, s:I, s:s, s:f}", "bpw", v->bpw, "bytes", (json_int_t)b.budget, "fixed",
                            (json_int_t)b.fixed, "file_type", lq_ftype_name(b.ftype) ? lq_ftype_name(b.ftype) : "?",
                            "predicted_kld", a->kld_sum);
    }
    pl_alloc_free(a);
    return e;
}

/* ---------------------------------------------------------------- variants */

static pl_error quantize(sweep *s, variant *v)
{
    pl_opts p;
    pipeline_opts(s, &p);
    p.ftype = v->ftype;
    p.output = v->path;
    if (v->method == PL_SWEEP_IMATRIX) {
        p.imatrix = s->im;
        p.imatrix_name = s->imatrix_path;
    }
    p.gptq = v->method == PL_SWEEP_GPTQ || v->method == PL_SWEEP_GPTQ_ACT;
    p.calib.act_order |= v->method == PL_SWEEP_GPTQ_ACT;
    char label[96];
    snprintf(label, sizeof label, "quantize %s %s", v->type, v->method_name);
    pl_report *r = NULL;
    json_t *budget = NULL;
    pl_error e = notify(s, (pl_sweep_event){.kind = PL_SW_STEP, .text = label});
    if (e == PL_OK)
        e = make_variant(s, v, &p, &r, &budget);
    if (e == PL_OK)
        e = notify(s, (pl_sweep_event){.kind = PL_SW_STEP_DONE});
    if (e == PL_OK) {
        s->n_elements = r->n_elements;
        v->rec = json_pack("{s:s, s:s, s:s, s:O, s:I, s:I, s:f, s:f, s:f, s:b}", "file", v->file, "type",
                           v->type, "method", v->method_name, "quant_key",
                           v->qkey, "file_bytes", (json_int_t)r->file_bytes, "tensor_bytes",
                           (json_int_t)r->out_bytes, "n_elements", r->n_elements, "bpw",
                           r->n_elements > 0 ? r->out_bytes * 8.0 / r->n_elements : 0.0, "quantize_seconds",
                           r->seconds, "reused", false);
        if (!v->rec || (budget && json_object_set(v->rec, "budget", budget) != 0))
            e = pl_fail(s->msg, PL_ERR_NOMEM, "out of memory");
    }
    json_decref(budget);
    pl_report_free(r);
    return e;
}

static int kld_chunk(void *user, int c, const rt_ppl_chunk *ch)
{
    eval_ctx *x = user;
    char rmsg[RT_MSG_SIZE];
    if (fread(x->recs, x->rec_size, (size_t)ch->n_scored, x->f) != (size_t)ch->n_scored) {
        x->err = pl_fail(x->s->msg, PL_ERR_FORMAT, "%s: truncated at chunk %d", x->path, c + 1);
        return 1;
    }
    rt_error re = rt_kld_add(x->kld, ch->logits, x->n_vocab, ch->targets, x->recs, ch->n_scored, x->s->nthreads,
                             rmsg);
    if (re != RT_OK) {
        x->err = pl_fail(x->s->msg, pl_from_rt(re), "%s: chunk %d: %s", x->path, c + 1, rmsg);
        return 1;
    }
    x->err = notify(x->s, (pl_sweep_event){.kind = PL_SW_ADVANCE, .done = c + 1, .total = x->n_chunk});
    return x->err != PL_OK;
}

/* The variant's model against base file k: qforge-perplexity --kl-divergence's figures. */
static pl_error kld_eval(sweep *s, rt_model *m, size_t k, json_t **out)
{
    char path[SW_PATH], rmsg[RT_MSG_SIZE];
    pl_error e = join(s, path, json_string_value(json_object_get(s->base[k], "file")));
    eval_ctx x = {.s = s, .path = path, .n_vocab = rt_model_hparams(m)->n_vocab};
    rt_logp_header h;
    int32_t *tokens = NULL;
    if (e == PL_OK && !(x.f = fopen(path, "rb")))
        e = pl_fail(s->msg, PL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    rt_error re = e == PL_OK ? rt_logp_read_header(x.f, (uint64_t)file_size(path), &h, &tokens, rmsg) : RT_OK;
    if (re != RT_OK)
        e = pl_fail(s->msg, pl_from_rt(re), "%s: %s", path, rmsg);
    if (e == PL_OK && (int)h.n_vocab != x.n_vocab)
        e = pl_fail(s->msg, PL_ERR_FORMAT, "%s: written for %u tokens, the model has %d", path, h.n_vocab, x.n_vocab);
    x.rec_size = rt_logp_record_size(x.n_vocab);
    x.n_chunk = e == PL_OK ? (int)h.n_chunk : 0;
    x.kld = rt_kld_create();
    x.recs = malloc((size_t)(h.n_ctx - 1 - h.n_ctx / 2 + 1) * x.rec_size);
    if (e == PL_OK && (!x.kld || !x.recs))
        e = pl_fail(s->msg, PL_ERR_NOMEM, "out of memory");
    const double t0 = pl_now();
    const rt_ppl_eval_opts eo = {.n_ctx = (int)h.n_ctx, .n_chunk = x.n_chunk, .n_batch = s->o->n_batch,
                                 .nthreads = s->nthreads,
                                 .bos = (int32_t)json_integer_value(json_object_get(s->base[k], "bos")),
                                 .chunk = kld_chunk, .user = &x};
    if (e == PL_OK && (re = rt_ppl_eval(m, tokens, &eo, rmsg)) != RT_OK)
        e = x.err != PL_OK ? x.err : pl_fail(s->msg, pl_from_rt(re), "%s", rmsg);
    rt_kld_stats st;
    if (e == PL_OK && (re = rt_kld_stats_get(x.kld, &st, rmsg)) != RT_OK)
        e = pl_fail(s->msg, pl_from_rt(re), "%s: %s", path, rmsg);
    if (e == PL_OK && (*out = rt_kld_stats_json(&st)) != NULL) {
        json_object_set_new(*out, "text", json_string(s->o->texts[k]));
        json_object_set_new(*out, "eval_seconds", json_real(pl_now() - t0));
    } else if (e == PL_OK) {
        e = pl_fail(s->msg, PL_ERR_NOMEM, "out of memory");
    }
    if (x.f)
        fclose(x.f);
    free(tokens);
    free(x.recs);
    rt_kld_free(x.kld);
    return e;
}

static pl_error evaluate(sweep *s, variant *v)
{
    char rmsg[PL_MSG_SIZE > INP_MSG_SIZE ? PL_MSG_SIZE : INP_MSG_SIZE], label[96];
    inp_source *src = NULL;
    rt_model *m = NULL;
    inp_error ie = inp_open(v->path, &src, rmsg);
    if (ie != INP_OK)
        return pl_fail(s->msg, pl_from_inp(ie), "%s", rmsg);
    rt_error re = rt_model_load(src, &m, rmsg);
    pl_error e = re == RT_OK ? PL_OK : pl_fail(s->msg, pl_from_rt(re), "%s: %s", v->path, rmsg);
    if (m)
        rt_model_set_threads(m, s->nthreads);
    json_t *evs = json_array();
    for (size_t k = 0; e == PL_OK && k < s->o->n_texts; k++) {
        json_t *ev = NULL;
        snprintf(label, sizeof label, "evaluate %s %s", v->type, v->method_name);
        if ((e = notify(s, (pl_sweep_event){.kind = PL_SW_STEP, .text = label, .unit = "chunks",
                                            .total = (double)json_integer_value(
                                                json_object_get(s->base[k], "n_chunk"))})) == PL_OK &&
            (e = kld_eval(s, m, k, &ev)) == PL_OK)
            e = notify(s, (pl_sweep_event){.kind = PL_SW_STEP_DONE});
        if (ev)
            json_array_append_new(evs, ev);
    }
    rt_model_free(m);
    inp_close(src);
    if (e == PL_OK) {
        json_object_set(v->rec, "eval_key", s->ekey);
        json_object_set_new(v->rec, "eval", evs);
    } else {
        json_decref(evs);
    }
    return e;
}

/* ---------------------------------------------------------------- the run */

/* Variant v's names, path and key (v->ftype or v->bpw, and v->method, set). */
static pl_error name_variant(sweep *s, variant *v)
{
    const char *mn = pl_sweep_method_name(v->method);
    if (v->bpw > 0) {
        snprintf(v->type, sizeof v->type, "%g bpw", v->bpw);
        snprintf(v->method_name, sizeof v->method_name, "%s-budget", mn);
        snprintf(v->file, sizeof v->file, "bpw%g-%s.gguf", v->bpw, mn);
    } else {
        snprintf(v->type, sizeof v->type, "%s", lq_ftype_name(v->ftype));
        snprintf(v->method_name, sizeof v->method_name, "%s", mn);
        snprintf(v->file, sizeof v->file, "%s-%s.gguf", v->type, mn);
    }
    for (char *c = v->file; *c; c++)
        *c = (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
    pl_error e = join(s, v->path, v->file);
    if (e != PL_OK)
        return e;
    json_t *calib = v->method == PL_SWEEP_RTN ? NULL
                                              : calib_key(&s->o->calib, v->method >= PL_SWEEP_GPTQ,
                                                          v->method == PL_SWEEP_GPTQ_ACT);
    v->qkey = json_pack("{s:O, s:s, s:s, s:o*}", "model", s->model_key, "type", v->type, "method", v->method_name,
                        "calib", calib);
    if (v->qkey && v->bpw > 0) {
        json_object_set_new(v->qkey, "candidates", cand_key());
        json_object_set_new(v->qkey, "measure", json_integer(SENS_MEASURE_VERSION));
    }
    return v->qkey ? PL_OK : pl_fail(s->msg, PL_ERR_NOMEM, "out of memory");
}

/* What a prior report holds of v; *need_im, *need_eval as plan's. */
static void take_prior(sweep *s, variant *v, bool *need_im, bool *need_eval)
{
    json_t *p = prior_match(s, "variants", v->file, v->path, "quant_key", v->qkey);
    if (p && (v->rec = json_deep_copy(p)) != NULL) {
        json_object_set_new(v->rec, "reused", json_true());
        if (!json_equal(json_object_get(p, "eval_key"), s->ekey)) {
            json_object_del(v->rec, "eval");
            json_object_del(v->rec, "eval_key");
            *need_eval = true;
        }
        s->n_elements = json_number_value(json_object_get(p, "n_elements"));
    } else {
        *need_im |= v->method == PL_SWEEP_IMATRIX;
        *need_eval = true;
    }
}

/* Each variant's name, keys and what a prior report holds of it (named types first, then the
 * budgets); *need_im, *need_eval: whether an imatrix variant must be made and whether any
 * variant must be evaluated. */
static pl_error plan(sweep *s, bool *need_im, bool *need_eval)
{
    const pl_sweep_opts *o = s->o;
    *need_im = *need_eval = false;
    for (size_t t = 0; t < o->n_ftypes + o->n_bpws; t++)
        for (size_t m = 0; m < o->n_methods; m++) {
            variant *v = &s->v[s->n_v++];
            v->ftype = t < o->n_ftypes ? o->ftypes[t] : -1;
            v->bpw = t < o->n_ftypes ? 0 : o->bpws[t - o->n_ftypes];
            v->method = o->methods[m];
            pl_error e = name_variant(s, v);
            if (e != PL_OK)
                return e;
            take_prior(s, v, need_im, need_eval);
        }
    return PL_OK;
}

static pl_error run_variants(sweep *s)
{
    pl_error e = PL_OK;
    for (size_t i = 0; e == PL_OK && i < s->n_v; i++) {
        variant *v = &s->v[i];
        char label[96];
        snprintf(label, sizeof label, "%s %s", v->type, v->method_name);
        const bool done = v->rec && json_object_get(v->rec, "eval");
        e = notify(s, (pl_sweep_event){.kind = PL_SW_VARIANT, .text = label, .index = i, .n_variants = s->n_v,
                                       .reused = done});
        if (e != PL_OK || done)
            continue;
        if (!v->rec && (e = quantize(s, v)) != PL_OK)
            break;
        if ((e = evaluate(s, v)) == PL_OK)
            e = checkpoint(s);
    }
    return e;
}

/* min(512, the model's training context): qforge-quantize's calibration default. */
static int default_ctx(inp_source *src)
{
    const gguf_str *a = NULL;
    int64_t v = 0;
    char key[256];
    const gguf_reader *md = inp_metadata(src);
    if (gguf_get_str(md, "general.architecture", &a) == GGUF_OK &&
        snprintf(key, sizeof key, "%s.context_length", a->str) < (int)sizeof key &&
        gguf_get_int(md, key, &v) == GGUF_OK && v >= 4 && v < 512)
        return (int)v;
    return 512;
}

pl_error pl_sweep_run(inp_source *src, const pl_sweep_opts *opts, json_t **report, char *msg)
{
    if (report)
        *report = NULL;
    pl_sweep_opts oc;
    if (opts) {
        oc = *opts;
        if (oc.n_ctx <= 0 && src)
            oc.n_ctx = default_ctx(src);
    }
    const pl_sweep_opts *o = opts ? &oc : NULL;
    if (!src || !o || !o->dir || !o->model || !(o->n_ftypes + o->n_bpws) || (o->n_bpws && !o->bpws) || !o->n_methods || !o->n_texts || o->n_ctx < 4 ||
        o->n_ctx > RT_MAX_TOKENS)
        return pl_fail(msg, PL_ERR_ARG, "pl_sweep_run: missing or bad options");
    for (size_t m = 0; m < o->n_methods; m++)
        if ((unsigned)o->methods[m] >= PL_SWEEP_N_METHODS)
            return pl_fail(msg, PL_ERR_ARG, "unknown method %d", (int)o->methods[m]);
    for (size_t t = 0; t < o->n_ftypes; t++)
        if (!lq_ftype_name(o->ftypes[t]))
            return pl_fail(msg, PL_ERR_ARG, "unknown file type %d", o->ftypes[t]);
    for (size_t t = 0; t < o->n_bpws; t++)
        if (!(o->bpws[t] > 0 && o->bpws[t] <= 64))
            return pl_fail(msg, PL_ERR_ARG, "a size budget of %g bits per weight", o->bpws[t]);
    sweep s = {.o = o, .src = src, .msg = msg, .nthreads = o->nthreads > 0 ? o->nthreads : omp_get_max_threads()};
    s.v = calloc((o->n_ftypes + o->n_bpws) * o->n_methods, sizeof *s.v);
    s.base = calloc(o->n_texts, sizeof *s.base);
    s.model_key = model_key(o, src);
    s.ekey = eval_key(o);
    pl_error e = s.v && s.base && s.model_key && s.ekey ? PL_OK : pl_fail(msg, PL_ERR_NOMEM, "out of memory");
    bool need_im = false, need_eval = false;
    if (e == PL_OK)
        e = plan(&s, &need_im, &need_eval);
    if (e == PL_OK)
        carry_sensitivity(&s);
    if (e == PL_OK && need_im)
        e = imatrix(&s);
    if (e == PL_OK)
        e = bases(&s, need_eval);
    if (e == PL_OK)
        e = run_variants(&s);
    if (e == PL_OK)
        e = checkpoint(&s);
    if (report && s.v && s.base)
        *report = report_json(&s);
    for (size_t i = 0; s.v && i < s.n_v; i++) {
        json_decref(s.v[i].qkey);
        json_decref(s.v[i].rec);
    }
    for (size_t k = 0; s.base && k < o->n_texts; k++)
        json_decref(s.base[k]);
    free(s.v);
    free(s.base);
    json_decref(s.model_key);
    json_decref(s.ekey);
    json_decref(s.imatrix);
    inp_imatrix_free(s.im);
    for (int m = 0; m < SW_N_SENS; m++) {
        pl_sens_free(s.sens[m]);
        json_decref(s.sens_rec[m]);
    }
    return e;
}
