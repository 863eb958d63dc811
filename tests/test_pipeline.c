/* pipeline/pipeline.c, plan.c, write.c, report.c through the API: float conversion, plain and
 * importance-weighted quantization, GPTQ, the importance matrix alone; bytes independent of
 * the thread count and the chunk size; dry run, events, report, errors. The repository's demo
 * model (models/classics-7m) is enough; the byte comparisons with llama.cpp's files need
 * ../shared and are skipped without it. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "input/imatrix.h"
#include "input/text.h"
#include "libgguf/gguf.h"
#include "libquant/lq.h"
#include "pipeline/pipeline.h"
#include "tests/testutil.h"

TestSuite(pipeline, .init = tu_dir_setup, .fini = tu_dir_teardown);

static inp_source *open_source(const char *path)
{
    inp_source *s = NULL;
    char msg[INP_MSG_SIZE];
    cr_assert_eq(inp_open(path, &s, msg), INP_OK, "%s", msg);
    return s;
}

/* Events seen by a run. */
typedef struct {
    int n[PL_EV_TENSOR + 1];
    int order_bad;       /* a tensor event out of order, or before the plan */
    size_t next;
    char temp[4096];     /* the last temp file announced */
    int stop_at_tensor;  /* > 0: stop at this tensor event */
} events;

static int on_event(void *user, const pl_event *ev)
{
    events *e = user;
    e->n[ev->kind]++;
    if (ev->kind == PL_EV_TENSOR) {
        if (ev->index != e->next++ || !e->n[PL_EV_PLAN])
            e->order_bad++;
        if (e->stop_at_tensor && (int)e->next == e->stop_at_tensor)
            return 1;
    }
    if (ev->kind == PL_EV_TEMP_OPEN)
        snprintf(e->temp, sizeof e->temp, "%s", ev->text);
    return 0;
}

/* pl_run of src to out (NULL: dry run) with o; asserts success; the report. */
static pl_report *run_ok(inp_source *src, pl_opts *o, const char *out, events *ev)
{
    o->output = out;
    o->input_name = "model";
    if (ev) {
        o->progress = on_event;
        o->user = ev;
    }
    pl_report *r = NULL;
    char msg[PL_MSG_SIZE];
    pl_error e = pl_run(src, o, &r, msg);
    cr_assert_eq(e, PL_OK, "pl_run: %s (%s)", msg, pl_strerror(e));
    cr_assert_not_null(r);
    return r;
}

static bool same_file(const char *a, const char *b)
{
    size_t na = 0, nb = 0;
    unsigned char *x = tu_read_file(a, &na), *y = tu_read_file(b, &nb);
    cr_assert(x && y, "cannot read %s or %s", a, b);
    const bool same = na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return same;
}

static bool no_temp_left(void)
{
    return tu_run("ls -A '%s' | grep -q qforge-tmp", tu_dir) == 1;
}

/* ---------------------------------------------------------------- float conversion */

/* Every tensor of the output holds the source's values: exactly (F32) or rounded (F16);
 * norms and 1-D tensors stay F32; the source's order; general.file_type set. */
static void check_float(int type, int want_ftype)
{
    char *model = tu_path_join(tu_root(), "models/classics-7m"), *out = tu_dir_path("f.gguf");
    inp_source *src = open_source(model);
    pl_opts o;
    pl_opts_init(&o);
    o.plan = PL_PLAN_FLOAT;
    o.float_type = type;
    o.nthreads = 2;
    o.measure = false;
    events ev = {0};
    pl_report *r = run_ok(src, &o, out, &ev);
    cr_assert_eq(ev.n[PL_EV_TENSOR], 57);
    cr_assert_eq(ev.order_bad, 0);
    cr_assert_eq(ev.n[PL_EV_TEMP_OPEN], 1);
    cr_assert_eq(ev.n[PL_EV_TEMP_CLOSED], 1);
    cr_assert(no_temp_left());
    char msg[GGUF_MSG_SIZE];
    gguf_reader *g = NULL;
    cr_assert_eq(gguf_open(out, &g, msg), GGUF_OK, "%s", msg);
    cr_assert_eq(gguf_n_tensors(g), inp_n_tensors(src));
    cr_assert_eq((uint64_t)gguf_file_size(g), r->file_bytes);
    int64_t ft = -1;
    cr_assert_eq(gguf_get_int(g, "general.file_type", &ft), GGUF_OK);
    cr_assert_eq(ft, want_ftype);
    for (int64_t i = 0; i < gguf_n_tensors(g); i++) {
        const gguf_tensor *t = gguf_tensor_at(g, i);
        const inp_tensor *s = inp_tensor_at(src, i);
        cr_assert_str_eq(t->name, s->name);
        const bool f32 = s->n_dims == 1 || strstr(t->name, "_norm.weight");
        cr_assert_eq(t->type, f32 ? GGUF_F32 : type, "%s", t->name);
        const int64_t n = s->ne[0] * inp_n_rows(s);
        float *x = malloc((size_t)n * sizeof(float));
        char imsg[INP_MSG_SIZE];
        cr_assert_eq(inp_read_f32(src, i, 0, inp_n_rows(s), x, imsg), INP_OK, "%s", imsg);
        for (int64_t k = 0; k < n; k++) {
            const float got = t->type == GGUF_F32 ? ((const float *)t->data)[k]
                              : t->type == GGUF_F16 ? lq_f16_to_f32(((const uint16_t *)t->data)[k])
                                                    : lq_bf16_to_f32(((const uint16_t *)t->data)[k]);
            const float want = t->type == GGUF_F32 ? x[k]
                               : t->type == GGUF_F16 ? lq_f16_to_f32(lq_f32_to_f16(x[k]))
                                                     : lq_bf16_to_f32(lq_f32_to_bf16(x[k]));
            if (got != want)
                cr_assert_fail("%s[%lld] = %g, want %g", t->name, (long long)k, got, want);
        }
        free(x);
    }
    gguf_close(g);
    pl_report_free(r);
    inp_close(src);
    free(model);
    free(out);
}

Test(pipeline, float_conversion_f32) { check_float(GGUF_F32, 0); }
Test(pipeline, float_conversion_f16) { check_float(GGUF_F16, 1); }
Test(pipeline, float_conversion_bf16) { check_float(GGUF_BF16, 32); }

/* The checkpoint converted to F32 is llama.cpp's convert_hf_to_gguf.py file. */
Test(pipeline, float_conversion_is_llama_cpp)
{
    TU_REQUIRE_SHARED();
    char *model = tu_shared_path("models/classics-7m"), *ref = tu_shared_path("reference/classics-7m-f32.gguf");
    char *out = tu_dir_path("f32.gguf");
    inp_source *src = open_source(model);
    pl_opts o;
    pl_opts_init(&o);
    o.plan = PL_PLAN_FLOAT;
    o.float_type = GGUF_F32;
    pl_report_free(run_ok(src, &o, out, NULL));
    cr_assert(same_file(out, ref), "the F32 conversion differs from llama.cpp's");
    inp_close(src);
    free(model);
    free(ref);
    free(out);
}

/* ---------------------------------------------------------------- plain quantization */

static void quantize_to(const char *input, const char *type, int nthreads, size_t chunk, const char *out)
{
    inp_source *src = open_source(input);
    pl_opts o;
    pl_opts_init(&o);
    o.ftype = lq_ftype_from_name(type);
    o.nthreads = nthreads;
    o.chunk_bytes = chunk;
    pl_report_free(run_ok(src, &o, out, NULL));
    inp_close(src);
}

/* llama-quantize's files, from the F32 GGUF and straight from the checkpoint; with tiny chunks
 * (many parallel steps per tensor, each written while the next is made) too. */
Test(pipeline, plain_is_llama_quantize)
{
    TU_REQUIRE_SHARED();
    static const struct {
        const char *input, *type, *ref;
        int nthreads;
        size_t chunk;
    } c[] = {
        {"reference/classics-7m-f32.gguf", "Q4_K_M", "reference/classics-7m-q4_k_m.gguf", 0, 0},
        {"reference/classics-7m-f32.gguf", "Q4_K_M", "reference/classics-7m-q4_k_m.gguf", 2, 5000},
        {"reference/classics-7m-f32.gguf", "Q8_0", "reference/classics-7m-q8_0.gguf", 1, 0},
        {"models/classics-7m", "Q8_0", "reference/classics-7m-q8_0.gguf", 2, 5000},
        {"models/classics-7m", "Q4_0", "reference/classics-7m-q4_0.gguf", 1, 1},
    };
    char *out = tu_dir_path("q.gguf");
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        char *in = tu_shared_path(c[i].input), *ref = tu_shared_path(c[i].ref);
        quantize_to(in, c[i].type, c[i].nthreads, c[i].chunk, out);
        cr_assert(same_file(out, ref), "%s %s (%d threads, chunk %zu) differs from llama-quantize's",
                  c[i].input, c[i].type, c[i].nthreads, c[i].chunk);
        free(in);
        free(ref);
    }
    free(out);
}

/* The same bytes whatever the thread count and chunk size (one row per step included). */
Test(pipeline, threads_and_chunk_size_do_not_change_bytes)
{
    char *model = tu_path_join(tu_root(), "models/classics-7m"), *a = tu_dir_path("a.gguf"), *b = tu_dir_path("b.gguf");
    static const char *const types[] = {"Q4_K_M", "Q5_1"};
    for (int t = 0; t < 2; t++) {
        quantize_to(model, types[t], 1, 0, a);
        quantize_to(model, types[t], 2, 5000, b);
        cr_assert(same_file(a, b), "%s: 1 thread vs 2 threads with 5000-byte chunks", types[t]);
        quantize_to(model, types[t], 3, 1, b);
        cr_assert(same_file(a, b), "%s: 1 thread vs 3 threads with one row per chunk", types[t]);
    }
    free(model);
    free(a);
    free(b);
}

/* ---------------------------------------------------------------- dry run, report, events */

Test(pipeline, dry_run_plans_and_writes_nothing)
{
    char *model = tu_path_join(tu_root(), "models/classics-7m");
    inp_source *src = open_source(model);
    pl_opts o;
    pl_opts_init(&o);
    o.ftype = lq_ftype_from_name("Q4_K_M");
    events ev = {0};
    pl_report *r = run_ok(src, &o, NULL, &ev);
    cr_assert_eq(ev.n[PL_EV_PLAN], 1);
    cr_assert_eq(ev.n[PL_EV_TENSOR], 57);
    cr_assert_eq(ev.n[PL_EV_TEMP_OPEN], 0);
    cr_assert_eq(ev.order_bad, 0);
    cr_assert_eq(r->n_tensors, 57);
    cr_assert_eq(r->file_bytes, 4331136); /* the size of llama-quantize's Q4_K_M file */
    uint64_t sum = 0;
    double elements = 0;
    for (size_t k = 0; k < r->n_tensors; k++) {
        sum += r->tensors[k].out_bytes;
        elements += (double)r->tensors[k].ne[0] * r->tensors[k].ne[1] * r->tensors[k].ne[2] * r->tensors[k].ne[3];
        if (!strcmp(r->tensors[k].name, "blk.5.ffn_down.weight"))
            cr_assert_eq(r->tensors[k].type, GGUF_Q6_K);
        if (!strcmp(r->tensors[k].name, "blk.3.ffn_down.weight"))
            cr_assert_eq(r->tensors[k].type, GGUF_Q4_K);
        if (r->tensors[k].n_dims == 1)
            cr_assert_eq(r->tensors[k].type, GGUF_F32);
        cr_assert_eq(r->tensors[k].input_type, GGUF_BF16);
    }
    cr_assert_eq(sum, r->out_bytes);
    cr_assert_eq(elements, r->n_elements);
    /* llama-quantize's order */
    for (size_t k = 1; k < r->n_tensors; k++)
        cr_assert_leq(lq_mix_name_cmp(r->tensors[k - 1].name, r->tensors[k].name), 0, "%s before %s",
                      r->tensors[k - 1].name, r->tensors[k].name);
    cr_assert(strncmp(r->tensors[0].name, "blk.", 4) && !strncmp(r->tensors[56].name, "blk.5.", 6));
    cr_assert_eq(tu_run("ls -A '%s' | grep -q .", tu_dir), 1, "a dry run wrote something");
    pl_report_free(r);
    inp_close(src);
    free(model);
}

/* The report's figures and its JSON: one entry per tensor, sizes adding up, the file's size;
 * the rmse measured (0 for copies, small for 4-6 bit types, smaller for q6_K than q4_K). */
Test(pipeline, report)
{
    char *model = tu_path_join(tu_root(), "models/classics-7m"), *out = tu_dir_path("q.gguf"), *js = tu_dir_path("r.json");
    inp_source *src = open_source(model);
    pl_opts o;
    pl_opts_init(&o);
    o.ftype = lq_ftype_from_name("Q4_K_M");
    pl_report *r = run_ok(src, &o, out, NULL);
    struct stat st;
    cr_assert_eq(stat(out, &st), 0);
    cr_assert_eq((uint64_t)st.st_size, r->file_bytes);
    const pl_tensor_report *v1 = NULL, *v2 = NULL;
    for (size_t k = 0; k < r->n_tensors; k++) {
        const pl_tensor_report *t = &r->tensors[k];
        if (t->type == GGUF_F32)
            cr_assert_eq(t->rmse, 0.0, "%s", t->name);
        else
            cr_assert(t->rmse > 1e-5 && t->rmse < 2e-2, "%s: rmse %g", t->name, t->rmse);
        v1 = strcmp(t->name, "blk.1.attn_v.weight") ? v1 : t;
        v2 = strcmp(t->name, "blk.2.attn_v.weight") ? v2 : t;
    }
    cr_assert(v1 && v2 && v1->type == GGUF_Q4_K && v2->type == GGUF_Q6_K);
    cr_assert_lt(v2->rmse, v1->rmse);
    json_t *made = pl_report_json(r, &o);
    cr_assert_not_null(made);
    cr_assert_eq(json_dump_file(made, js, JSON_INDENT(1) | JSON_ENSURE_ASCII), 0);
    json_decref(made);
    json_error_t err;
    json_t *root = json_load_file(js, JSON_REJECT_DUPLICATES, &err);
    cr_assert(root, "%s", err.text);
    cr_assert_eq(json_array_size(json_object_get(root, "tensors")), 57);
    cr_assert_eq(json_integer_value(json_object_get(root, "file_bytes")), (json_int_t)r->file_bytes);
    cr_assert_eq(json_integer_value(json_object_get(root, "output_bytes")), (json_int_t)r->out_bytes);
    cr_assert_str_eq(json_string_value(json_object_get(root, "type")), "Q4_K_M");
    cr_assert_null(json_object_get(root, "gptq"));
    json_t *t0 = json_array_get(json_object_get(root, "tensors"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(t0, "name")), r->tensors[0].name);
    cr_assert_eq(json_integer_value(json_object_get(t0, "bytes")), (json_int_t)r->tensors[0].out_bytes);
    json_decref(root);
    cr_assert_null(pl_report_json(NULL, &o));
    pl_report_free(r);
    inp_close(src);
    free(model);
    free(out);
    free(js);
}

/* ---------------------------------------------------------------- importance, GPTQ */

static char *calib_text(size_t *len)
{
    char *path = tu_path_join(tu_root(), "calibration/calibration.txt"), *text = NULL, msg[INP_MSG_SIZE];
    cr_assert_eq(inp_text_load(path, &text, len, msg), INP_OK, "%s", msg);
    free(path);
    return text;
}

static void small_calib(pl_opts *o, const char *text, size_t len)
{
    o->calib.text = text;
    o->calib.len = len;
    o->calib.name = "calibration.txt";
    o->calib.samples = 3;
    o->calib.ctx = 64;
}

/* The float model's importance matrix, written and read back; quantizing with it gives
 * exactly libquant's weighted rounding with sums / count, tensor by tensor. */
Test(pipeline, imatrix_out_then_applied)
{
    char *model = tu_path_join(tu_root(), "models/classics-7m"), *imf = tu_dir_path("im.gguf"), *out = tu_dir_path("q.gguf");
    size_t len;
    char *text = calib_text(&len), msg[PL_MSG_SIZE];
    inp_source *src = open_source(model);
    pl_opts o;
    pl_opts_init(&o);
    small_calib(&o, text, len);
    o.calib.imatrix_out = imf;
    o.nthreads = 2;
    events ev = {0};
    o.progress = on_event;
    o.user = &ev;
    pl_report *r = NULL;
    cr_assert_eq(pl_run_imatrix(src, &o, &r, msg), PL_OK, "%s", msg);
    cr_assert_eq(r->calib.imatrix_entries, 42);
    cr_assert_eq(r->calib.n_ctx, 64);
    cr_assert_eq(r->calib.n_chunks, 3);
    cr_assert_eq(r->calib.stats.tokens, 192);
    cr_assert_eq(ev.n[PL_EV_CALIB_START], 1);
    cr_assert_eq(ev.n[PL_EV_CALIB_DONE], 1);
    cr_assert_eq(ev.n[PL_EV_IMATRIX_DONE], 1);
    cr_assert_eq(ev.n[PL_EV_TEMP_OPEN], 1);
    cr_assert_eq(ev.n[PL_EV_TEMP_CLOSED], 1);
    pl_report_free(r);

    inp_imatrix *im = NULL;
    char imsg[INP_MSG_SIZE];
    cr_assert_eq(inp_imatrix_load(imf, &im, imsg), INP_OK, "%s", imsg);
    cr_assert_eq(inp_imatrix_n_entries(im), 42);
    cr_assert_str_eq(inp_imatrix_dataset(im), "calibration.txt");
    pl_opts_init(&o);
    o.ftype = lq_ftype_from_name("Q4_K_M");
    o.imatrix = im;
    o.imatrix_name = imf;
    r = run_ok(src, &o, out, NULL);
    cr_assert_eq(r->n_imatrix, 42);
    gguf_reader *g = NULL;
    cr_assert_eq(gguf_open(out, &g, imsg), GGUF_OK, "%s", imsg);
    const gguf_str *s = NULL;
    cr_assert_eq(gguf_get_str(g, "quantize.imatrix.file", &s), GGUF_OK);
    cr_assert_str_eq(s->str, imf);
    int checked = 0;
    for (size_t k = 0; k < r->n_tensors; k++) {
        const pl_tensor_report *t = &r->tensors[k];
        if (!t->imatrix)
            continue;
        const gguf_tensor *gt = gguf_tensor_at(g, gguf_find_tensor(g, t->name));
        const int64_t i = inp_find_tensor(src, t->name), rows = t->ne[1], ne0 = t->ne[0];
        size_t nv;
        const float *w = inp_imatrix_find(im, t->name, &nv);
        float *x = malloc((size_t)(rows * ne0) * sizeof(float));
        unsigned char *q = malloc(gt->nbytes);
        cr_assert_eq(inp_read_f32(src, i, 0, rows, x, imsg), INP_OK, "%s", imsg);
        cr_assert_eq(lq_quantize_rows(t->type, x, q, rows, ne0, w, 1, imsg), LQ_OK);
        cr_assert(memcmp(q, gt->data, gt->nbytes) == 0, "%s: not quantized with the imatrix", t->name);
        free(x);
        free(q);
        checked++;
    }
    cr_assert_eq(checked, 42);
    gguf_close(g);
    pl_report_free(r);
    /* the same bytes on 3 threads in 3000-byte chunks */
    char *out2 = tu_dir_path("q2.gguf");
    o.nthreads = 3;
    o.chunk_bytes = 3000;
    pl_report_free(run_ok(src, &o, out2, NULL));
    cr_assert(same_file(out, out2), "importance-weighted bytes depend on threads or chunk size");
    free(out2);
    inp_imatrix_free(im);
    inp_close(src);
    free(text);
    free(model);
    free(imf);
    free(out);
}

/* GPTQ: every linear weight of every layer, losses below plain rounding, group events, the
 * plain file's size, other bytes than plain rounding, the same bytes on 1 and 2 threads. */
Test(pipeline, gptq)
{
    char *model = tu_path_join(tu_root(), "models/classics-7m"), *out = tu_dir_path("g.gguf"), *out2 = tu_dir_path("g2.gguf");
    char *plain = tu_dir_path("p.gguf"), *imf = tu_dir_path("im.gguf");
    size_t len;
    char *text = calib_text(&len);
    inp_source *src = open_source(model);
    pl_opts o;
    pl_opts_init(&o);
    o.ftype = lq_ftype_from_name("Q4_0");
    o.gptq = true;
    o.nthreads = 1;
    small_calib(&o, text, len);
    o.calib.imatrix_out = imf;
    events ev = {0};
    pl_report *r = run_ok(src, &o, out, &ev);
    cr_assert_eq(ev.n[PL_EV_CALIB_GROUP], 6 * 4);
    cr_assert_eq(ev.n[PL_EV_TEMP_OPEN], 2); /* the model, then the imatrix */
    cr_assert_eq(r->calib.stats.n_tensors, 42);
    cr_assert_eq(r->calib.imatrix_entries, 42);
    int n_gptq = 0;
    for (size_t k = 0; k < r->n_tensors; k++) {
        const pl_tensor_report *t = &r->tensors[k];
        if (!t->gptq)
            continue;
        n_gptq++;
        cr_assert_str_eq(t->gptq_info.name, t->name);
        cr_assert_lt(t->gptq_info.res.loss_gptq, t->gptq_info.res.loss_rtn, "%s", t->name);
        cr_assert_eq(t->rmse, t->gptq_info.rmse);
    }
    cr_assert_eq(n_gptq, 42);
    quantize_to(model, "Q4_0", 1, 0, plain);
    struct stat a, b;
    cr_assert(stat(out, &a) == 0 && stat(plain, &b) == 0);
    cr_assert_eq(a.st_size, b.st_size);
    cr_assert(!same_file(out, plain), "GPTQ wrote the plain bytes");
    pl_report_free(r);

    o.nthreads = 2;
    o.calib.imatrix_out = NULL;
    pl_report_free(run_ok(src, &o, out2, NULL));
    cr_assert(same_file(out, out2), "GPTQ bytes depend on the thread count");
    inp_close(src);
    free(text);
    free(model);
    free(out);
    free(out2);
    free(plain);
    free(imf);
}

/* ---------------------------------------------------------------- errors */

static pl_error run_err(inp_source *src, pl_opts *o, char *msg)
{
    o->input_name = "model";
    pl_report *r = NULL;
    pl_error e = pl_run(src, o, &r, msg);
    pl_report_free(r);
    return e;
}

Test(pipeline, errors)
{
    char *model = tu_path_join(tu_root(), "models/classics-7m"), *out = tu_dir_path("q.gguf");
    inp_source *src = open_source(model);
    char msg[PL_MSG_SIZE];
    pl_opts o;
    pl_opts_init(&o);
    cr_assert_eq(run_err(src, &o, msg), PL_ERR_ARG, "no file type"); /* ftype -1 */
    o.ftype = lq_ftype_from_name("Q4_0");
    char dirslash[4200];
    snprintf(dirslash, sizeof dirslash, "%s/", tu_dir); /* names a directory */
    o.output = dirslash;
    cr_assert_eq(run_err(src, &o, msg), PL_ERR_ARG, "%s", msg);
    cr_assert(strncmp(msg, dirslash, strlen(dirslash)) == 0 && strstr(msg, "directory"), "%s", msg);
    o.output = tu_dir; /* a directory, found out at the rename */
    cr_assert_eq(run_err(src, &o, msg), PL_ERR_IO, "%s", msg);
    o.output = out;
    o.gptq = true; /* without a text */
    cr_assert_eq(run_err(src, &o, msg), PL_ERR_ARG);
    o.calib.text = "Too short.";
    o.calib.len = 10;
    o.calib.name = "short.txt";
    cr_assert_eq(run_err(src, &o, msg), PL_ERR_FORMAT);
    cr_assert(strstr(msg, "short.txt: the calibration text has"), "%s", msg);
    cr_assert_eq(tu_run("ls -A '%s' | grep -q .", tu_dir), 1, "a failed run left a file");
    o.gptq = false;
    o.plan = PL_PLAN_FLOAT;
    o.float_type = GGUF_Q4_0;
    cr_assert_eq(run_err(src, &o, msg), PL_ERR_ARG);

    /* stopped by the callback while writing: nothing left */
    pl_opts_init(&o);
    o.ftype = lq_ftype_from_name("Q8_0");
    o.output = out;
    events ev = {.stop_at_tensor = 5};
    o.progress = on_event;
    o.user = &ev;
    cr_assert_eq(run_err(src, &o, msg), PL_ERR_STOPPED);
    cr_assert(ev.temp[0] && ev.n[PL_EV_TEMP_CLOSED] == 1);
    cr_assert(no_temp_left());
    cr_assert_eq(tu_run("test -e '%s'", out), 1);
    inp_close(src);

    /* requantizing a quantized model, and converting it, are refused */
    pl_opts_init(&o);
    o.ftype = lq_ftype_from_name("Q8_0");
    quantize_to(model, "Q8_0", 0, 0, out);
    src = open_source(out);
    o.ftype = lq_ftype_from_name("Q4_0");
    o.output = NULL;
    cr_assert_eq(run_err(src, &o, msg), PL_ERR_MODEL);
    cr_assert(strstr(msg, "requantizing from q8_0 is not supported"), "%s", msg);
    o.plan = PL_PLAN_FLOAT;
    o.float_type = GGUF_F16;
    cr_assert_eq(run_err(src, &o, msg), PL_ERR_MODEL);
    cr_assert(strstr(msg, "only f32, f16 and bf16 tensors convert"), "%s", msg);
    inp_close(src);
    free(model);
    free(out);
}

/* Importance data of the wrong width is refused with the imatrix's name. */
Test(pipeline, imatrix_of_the_wrong_size)
{
    char *model = tu_path_join(tu_root(), "models/classics-7m"), *imf = tu_dir_path("bad.dat");
    tu_write_legacy_imatrix(imf, "blk.0.attn_q.weight", 100);
    inp_imatrix *im = NULL;
    char msg[PL_MSG_SIZE];
    cr_assert_eq(inp_imatrix_load(imf, &im, msg), INP_OK, "%s", msg);
    inp_source *src = open_source(model);
    pl_opts o;
    pl_opts_init(&o);
    o.ftype = lq_ftype_from_name("Q4_K_M");
    o.imatrix = im;
    o.imatrix_name = imf;
    events ev = {0};
    o.progress = on_event;
    o.user = &ev;
    cr_assert_eq(run_err(src, &o, msg), PL_ERR_FORMAT);
    cr_assert(strstr(msg, "has 100 values, the tensor needs 256") && !strncmp(msg, imf, strlen(imf)), "%s", msg);
    cr_assert_gt(ev.n[PL_EV_WARNING], 0, "tensors without importance data should warn");
    inp_imatrix_free(im);
    inp_close(src);
    free(model);
    free(imf);
}
