/* qforge-quantize end to end: byte-identical to llama-quantize's files for the demo model,
 * from the F32 GGUF and straight from the checkpoints; thread-count independence (chunk-size
 * independence is tested through the library, tests/test_pipeline.c); dry run;
 * report; importance matrices (GGUF and legacy) applied exactly; refusing to overwrite input. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "libgguf/gguf.h"
#include "libquant/lq.h"
#include "tests/testutil.h"

static int quantize(const char *args)
{
    return tu_run("'%s/qforge-quantize' %s > '%s/log.txt' 2>&1", tu_bin(), args, tu_dir);
}

static bool exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* Whole files equal; on a difference say which tensor (or the header) differs. */
static void expect_same_file(const char *got, const char *want)
{
    size_t ng = 0, nw = 0;
    unsigned char *a = tu_read_file(got, &ng), *b = tu_read_file(want, &nw);
    cr_assert(a && b, "cannot read %s or %s", got, want);
    if (ng == nw && memcmp(a, b, ng) == 0) {
        free(a);
        free(b);
        return;
    }
    char msg[GGUF_MSG_SIZE];
    gguf_reader *ra = NULL, *rb = NULL;
    cr_assert_eq(gguf_open(got, &ra, msg), GGUF_OK, "%s: %s", got, msg);
    cr_assert_eq(gguf_open(want, &rb, msg), GGUF_OK, "%s: %s", want, msg);
    cr_expect_eq(gguf_n_kv(ra), gguf_n_kv(rb), "KV count");
    for (int64_t i = 0; i < gguf_n_kv(ra) && i < gguf_n_kv(rb); i++) {
        cr_expect_str_eq(gguf_kv_key(ra, i), gguf_kv_key(rb, i), "KV %lld", (long long)i);
        const gguf_value *va = gguf_kv_value(ra, i), *vb = gguf_kv_value(rb, i);
        cr_expect_eq(va->type, vb->type, "%s: value type", gguf_kv_key(ra, i));
        if (va->type == GGUF_VAL_STRING && vb->type == GGUF_VAL_STRING)
            cr_expect_str_eq(va->v.str.str, vb->v.str.str, "%s: '%s', want '%s'", gguf_kv_key(ra, i),
                             va->v.str.str, vb->v.str.str);
        else if (va->type == vb->type && va->type != GGUF_VAL_ARRAY)
            cr_expect_eq(va->v.u64, vb->v.u64, "%s: value", gguf_kv_key(ra, i));
    }
    cr_assert_eq(gguf_n_tensors(ra), gguf_n_tensors(rb));
    for (int64_t i = 0; i < gguf_n_tensors(ra); i++) {
        const gguf_tensor *x = gguf_tensor_at(ra, i), *y = gguf_tensor_at(rb, i);
        cr_expect_str_eq(x->name, y->name, "tensor %lld", (long long)i);
        cr_expect_eq(x->type, y->type, "%s: type %d, want %d", x->name, x->type, y->type);
        cr_expect_eq(x->nbytes, y->nbytes, "%s: bytes", x->name);
        if (x->nbytes == y->nbytes)
            cr_expect(memcmp(x->data, y->data, x->nbytes) == 0, "%s: data differs", x->name);
    }
    cr_expect_eq(ng, nw, "file size %zu, want %zu", ng, nw);
    cr_expect(0, "%s differs from %s", got, want);
    gguf_close(ra);
    gguf_close(rb);
    free(a);
    free(b);
}

static void against_reference(const char *input_rel, const char *type, const char *ref_rel,
                              const char *extra)
{
    TU_REQUIRE_SHARED();
    char *in = tu_shared_path(input_rel), *ref = tu_shared_path(ref_rel), *out = tu_dir_path("out.gguf");
    char args[4096];
    snprintf(args, sizeof args, "%s '%s' '%s' %s", extra, in, out, type);
    cr_assert_eq(quantize(args), 0, "qforge-quantize %s failed", args);
    expect_same_file(out, ref);
    free(in);
    free(ref);
    free(out);
}

TestSuite(quantize, .init = tu_dir_setup, .fini = tu_dir_teardown);

/* ---------------------------------------------------------------- llama-quantize's bytes */

Test(quantize, f32_gguf_to_q8_0_is_llama_quantize)
{
    against_reference("reference/classics-7m-f32.gguf", "Q8_0", "reference/classics-7m-q8_0.gguf", "");
}
Test(quantize, f32_gguf_to_q4_0_is_llama_quantize)
{
    against_reference("reference/classics-7m-f32.gguf", "Q4_0", "reference/classics-7m-q4_0.gguf", "");
}
Test(quantize, f32_gguf_to_q4_k_m_is_llama_quantize)
{
    against_reference("reference/classics-7m-f32.gguf", "q4_k_m", "reference/classics-7m-q4_k_m.gguf", "");
}
Test(quantize, one_thread_gives_the_same_bytes)
{
    against_reference("reference/classics-7m-f32.gguf", "Q4_K_M", "reference/classics-7m-q4_k_m.gguf",
                      "-t 1");
}
/* general.name comes from the checkpoint's directory name, and the reference files were made
 * from a directory named classics-7m: give the F32 checkpoint that name (links to its files). */
static void against_reference_f32_checkpoint(const char *type, const char *ref_rel, const char *extra)
{
    TU_REQUIRE_SHARED();
    char *rel = tu_shared_path("models/classics-7m-f32"), *src = realpath(rel, NULL);
    cr_assert(src, "%s: cannot resolve", rel);
    free(rel);
    cr_assert_eq(tu_run("mkdir -p '%s/ck/classics-7m' && ln -sf '%s'/* '%s/ck/classics-7m/'", tu_dir, src, tu_dir), 0);
    char *ref = tu_shared_path(ref_rel), *out = tu_dir_path("out.gguf");
    char args[4096];
    snprintf(args, sizeof args, "%s '%s/ck/classics-7m' '%s' %s", extra, tu_dir, out, type);
    cr_assert_eq(quantize(args), 0, "qforge-quantize %s failed", args);
    expect_same_file(out, ref);
    free(src);
    free(ref);
    free(out);
}
Test(quantize, f32_checkpoint_to_q4_k_m_in_one_step)
{
    against_reference_f32_checkpoint("Q4_K_M", "reference/classics-7m-q4_k_m.gguf", "-t 2");
}
Test(quantize, f32_checkpoint_to_q8_0_in_one_step)
{
    against_reference_f32_checkpoint("Q8_0", "reference/classics-7m-q8_0.gguf", "");
}
Test(quantize, bf16_checkpoint_to_q4_0_in_one_step)
{
    against_reference("models/classics-7m", "Q4_0", "reference/classics-7m-q4_0.gguf", "");
}
Test(quantize, bf16_checkpoint_to_q4_k_m_in_one_step)
{
    against_reference("models/classics-7m", "Q4_K_M", "reference/classics-7m-q4_k_m.gguf", "-t 1");
}

/* ---------------------------------------------------------------- dry run, report */

Test(quantize, dry_run_writes_nothing)
{
    TU_REQUIRE_SHARED();
    char *in = tu_shared_path("reference/classics-7m-f32.gguf"), *out = tu_dir_path("out.gguf");
    char args[4096];
    snprintf(args, sizeof args, "--dry-run '%s' '%s' Q4_K_M", in, out);
    cr_assert_eq(quantize(args), 0);
    cr_expect(!exists(out), "a dry run wrote %s", out);
    char *log = tu_dir_path("log.txt");
    char *text = tu_read_file(log, NULL);
    cr_assert(text);
    cr_expect(strstr(text, "blk.2.attn_v.weight") && strstr(text, "q6_K"), "plan not printed:\n%s", text);
    cr_expect(strstr(text, "[57/57]") || strstr(text, "[ 57/ 57]"), "%s", text);
    /* no temp file left either */
    cr_expect_eq(tu_run("ls -A '%s' | grep -q qforge-tmp", tu_dir), 1);
    free(text);
    free(log);
    free(in);
    free(out);
}

Test(quantize, report_has_an_entry_per_tensor)
{
    TU_REQUIRE_SHARED();
    char *in = tu_shared_path("reference/classics-7m-f32.gguf"), *out = tu_dir_path("out.gguf");
    char *rep = tu_dir_path("report.json");
    char args[4096];
    snprintf(args, sizeof args, "--report '%s' '%s' '%s' Q4_K_M", rep, in, out);
    cr_assert_eq(quantize(args), 0);
    json_error_t err;
    json_t *root = json_load_file(rep, JSON_REJECT_DUPLICATES, &err);
    cr_assert(root, "report does not parse: %s", err.text);
    json_t *ts = json_object_get(root, "tensors");
    cr_assert(json_is_array(ts));
    char msg[GGUF_MSG_SIZE];
    gguf_reader *r = NULL;
    cr_assert_eq(gguf_open(out, &r, msg), GGUF_OK, "%s", msg);
    cr_assert_eq((int64_t)json_array_size(ts), gguf_n_tensors(r));
    json_int_t sum = 0;
    for (size_t i = 0; i < json_array_size(ts); i++) {
        json_t *e = json_array_get(ts, i);
        const gguf_tensor *t = gguf_tensor_at(r, (int64_t)i);
        cr_expect_str_eq(json_string_value(json_object_get(e, "name")), t->name);
        cr_expect_str_eq(json_string_value(json_object_get(e, "type")), gguf_type_info(t->type)->name);
        cr_expect_eq(json_integer_value(json_object_get(e, "bytes")), (json_int_t)t->nbytes);
        sum += json_integer_value(json_object_get(e, "bytes"));
        double rmse = json_real_value(json_object_get(e, "rmse"));
        if (t->type == GGUF_F32)
            cr_expect_eq(rmse, 0.0, "%s", t->name);
        else /* 4-6 bit weights of std ~0.02-0.05: errors of 1e-4 .. 1e-2 */
            cr_expect(rmse > 1e-5 && rmse < 2e-2, "%s: rmse %g", t->name, rmse);
    }
    cr_expect_eq(json_integer_value(json_object_get(root, "output_bytes")), sum);
    cr_expect_eq(json_integer_value(json_object_get(root, "file_bytes")), 4331136);
    /* q6_K beats q4_K on the same matrices */
    json_t *v2 = NULL, *v1 = NULL;
    for (size_t i = 0; i < json_array_size(ts); i++) {
        const char *nm = json_string_value(json_object_get(json_array_get(ts, i), "name"));
        if (!strcmp(nm, "blk.2.attn_v.weight"))
            v2 = json_array_get(ts, i);
        if (!strcmp(nm, "blk.1.attn_v.weight"))
            v1 = json_array_get(ts, i);
    }
    cr_assert(v1 && v2);
    cr_expect_lt(json_real_value(json_object_get(v2, "rmse")), json_real_value(json_object_get(v1, "rmse")));
    gguf_close(r);
    json_decref(root);
    free(rep);
    free(in);
    free(out);
}

/* ---------------------------------------------------------------- options */

Test(quantize, overrides_reach_the_file)
{
    TU_REQUIRE_SHARED();
    char *in = tu_shared_path("reference/classics-7m-f32.gguf"), *out = tu_dir_path("out.gguf");
    char args[4096];
    snprintf(args, sizeof args,
             "--tensor-type 'blk\\.[01]\\.attn_v=q8_0' --tensor-type attn_v=q5_K "
             "--output-tensor-type q8_0 --token-embedding-type q6_K '%s' '%s' Q4_K_M",
             in, out);
    cr_assert_eq(quantize(args), 0);
    char msg[GGUF_MSG_SIZE];
    gguf_reader *r = NULL;
    cr_assert_eq(gguf_open(out, &r, msg), GGUF_OK, "%s", msg);
    struct {
        const char *name;
        int type;
    } want[] = {
        {"output.weight", GGUF_Q8_0},       {"token_embd.weight", GGUF_Q6_K},
        {"blk.0.attn_v.weight", GGUF_Q8_0}, {"blk.1.attn_v.weight", GGUF_Q8_0},
        {"blk.2.attn_v.weight", GGUF_Q5_K}, {"blk.5.attn_v.weight", GGUF_Q5_K},
        {"blk.2.ffn_down.weight", GGUF_Q6_K}, {"blk.3.ffn_down.weight", GGUF_Q4_K},
        {"blk.3.ffn_norm.weight", GGUF_F32},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        int64_t k = gguf_find_tensor(r, want[i].name);
        cr_assert_geq(k, 0, "%s", want[i].name);
        cr_expect_eq(gguf_tensor_at(r, k)->type, want[i].type, "%s", want[i].name);
    }
    int64_t ft = 0;
    cr_expect_eq(gguf_get_int(r, "general.file_type", &ft), GGUF_OK);
    cr_expect_eq(ft, 15);
    gguf_close(r);

    snprintf(args, sizeof args, "--pure '%s' '%s' Q4_K_M", in, out);
    cr_assert_eq(quantize(args), 0);
    cr_assert_eq(gguf_open(out, &r, msg), GGUF_OK, "%s", msg);
    for (int64_t i = 0; i < gguf_n_tensors(r); i++) {
        const gguf_tensor *t = gguf_tensor_at(r, i);
        cr_expect_eq(t->type, t->n_dims == 1 ? GGUF_F32 : GGUF_Q4_K, "%s", t->name);
    }
    gguf_close(r);
    free(in);
    free(out);
}

Test(quantize, refuses_to_overwrite_its_input)
{
    TU_REQUIRE_SHARED();
    char *src = tu_shared_path("reference/classics-7m-f32.gguf"), *in = tu_dir_path("in.gguf");
    cr_assert_eq(tu_run("cp '%s' '%s' && ln -s in.gguf '%s/link.gguf'", src, in, tu_dir), 0);
    char args[4096];
    snprintf(args, sizeof args, "'%s' '%s' Q8_0", in, in);
    cr_expect_eq(quantize(args), 1);
    snprintf(args, sizeof args, "'%s' '%s/link.gguf' Q8_0", in, tu_dir);
    cr_expect_eq(quantize(args), 1);
    cr_expect_eq(tu_run("cmp -s '%s' '%s'", src, in), 0, "the input was modified");
    cr_expect_eq(tu_run("ls -A '%s' | grep -q qforge-tmp", tu_dir), 1, "temp file left behind");
    /* a checkpoint's own files are inputs too */
    char *ck = tu_dir_path("ckpt");
    cr_assert_eq(tu_run("mkdir '%s' && cp %s/models/classics-7m-f32/* '%s/'", ck, tu_shared(), ck), 0);
    snprintf(args, sizeof args, "'%s' '%s/model.safetensors' Q8_0", ck, ck);
    cr_expect_eq(quantize(args), 1);
    cr_expect_eq(tu_run("cmp -s '%s/models/classics-7m-f32/model.safetensors' '%s/model.safetensors'",
                        tu_shared(), ck), 0);
    free(ck);
    free(src);
    free(in);
}

Test(quantize, usage_and_input_errors)
{
    char *out = tu_dir_path("out.gguf");
    char args[4096];
    snprintf(args, sizeof args, "'%s/nope.gguf' '%s' Q4_K_M", tu_dir, out);
    int rc = quantize(args);
    cr_expect(rc == 2 || rc == 3, "missing input: exit %d", rc);
    snprintf(args, sizeof args, "x.gguf '%s' Q4_K_X", out);
    cr_expect_eq(quantize(args), 1);
    snprintf(args, sizeof args, "x.gguf '%s'", out);
    cr_expect_eq(quantize(args), 1);
    snprintf(args, sizeof args, "--tensor-type 'attn_v' x.gguf '%s' Q4_K_M", out);
    cr_expect_eq(quantize(args), 1);
    snprintf(args, sizeof args, "--bogus x.gguf '%s' Q4_K_M", out);
    cr_expect_eq(quantize(args), 1);
    /* not a GGUF file */
    char *junk = tu_dir_path("junk.gguf");
    cr_assert_eq(tu_write_file(junk, "hello world, not a model", 24), 0);
    snprintf(args, sizeof args, "'%s' '%s' Q4_K_M", junk, out);
    cr_expect_eq(quantize(args), 2);
    cr_expect(!exists(out));
    free(junk);
    free(out);
}

/* ---------------------------------------------------------------- importance matrices */

/* Importance of column i of a tensor with n columns (any positive pattern will do). */
static float imp(const char *name, int64_t i)
{
    return 0.25f + (float)((i * 37 + (int64_t)strlen(name) * 11) % 101) / 16.0f;
}

#define IM_COUNT 7.0f

/* Write an imatrix GGUF (or a legacy .dat) for every 2-D tensor of reader r. */
static void write_imatrix_gguf(const gguf_reader *r, const char *path)
{
    gguf_writer *w = gguf_writer_create();
    const char *ds[] = {"calibration.txt"};
    cr_assert_eq(gguf_writer_set_str(w, "general.type", "imatrix"), GGUF_OK);
    cr_assert_eq(gguf_writer_set_str_array(w, "imatrix.datasets", ds, 1), GGUF_OK);
    cr_assert_eq(gguf_writer_set_u32(w, "imatrix.chunk_count", 12), GGUF_OK);
    cr_assert_eq(gguf_writer_set_u32(w, "imatrix.chunk_size", 256), GGUF_OK);
    char msg[GGUF_MSG_SIZE], nm[GGUF_MAX_NAME + 16];
    for (int64_t i = 0; i < gguf_n_tensors(r); i++) {
        const gguf_tensor *t = gguf_tensor_at(r, i);
        if (t->n_dims < 2)
            continue;
        int64_t ne[2] = {t->ne[0], 1}, one[2] = {1, 1};
        snprintf(nm, sizeof nm, "%s.in_sum2", t->name);
        cr_assert_eq(gguf_writer_add_tensor(w, nm, 2, ne, GGUF_F32, msg), GGUF_OK, "%s", msg);
        snprintf(nm, sizeof nm, "%s.counts", t->name);
        cr_assert_eq(gguf_writer_add_tensor(w, nm, 2, one, GGUF_F32, msg), GGUF_OK, "%s", msg);
    }
    cr_assert_eq(gguf_writer_open(w, path, msg), GGUF_OK, "%s", msg);
    for (int64_t i = 0; i < gguf_n_tensors(r); i++) {
        const gguf_tensor *t = gguf_tensor_at(r, i);
        if (t->n_dims < 2)
            continue;
        for (int64_t j = 0; j < t->ne[0]; j++) {
            float v = imp(t->name, j) * IM_COUNT;
            cr_assert_eq(gguf_writer_write(w, &v, 4, msg), GGUF_OK, "%s", msg);
        }
        float c = IM_COUNT;
        cr_assert_eq(gguf_writer_write(w, &c, 4, msg), GGUF_OK, "%s", msg);
    }
    cr_assert_eq(gguf_writer_finish(w, msg), GGUF_OK, "%s", msg);
    gguf_writer_free(w);
}

static void write_imatrix_legacy(const gguf_reader *r, const char *path)
{
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    int32_t n = 0;
    for (int64_t i = 0; i < gguf_n_tensors(r); i++)
        n += gguf_tensor_at(r, i)->n_dims >= 2;
    fwrite(&n, 4, 1, f);
    for (int64_t i = 0; i < gguf_n_tensors(r); i++) {
        const gguf_tensor *t = gguf_tensor_at(r, i);
        if (t->n_dims < 2)
            continue;
        int32_t len = (int32_t)strlen(t->name), ncall = 7, nval = (int32_t)t->ne[0];
        fwrite(&len, 4, 1, f);
        fwrite(t->name, 1, (size_t)len, f);
        fwrite(&ncall, 4, 1, f);
        fwrite(&nval, 4, 1, f);
        for (int64_t j = 0; j < t->ne[0]; j++) {
            float v = imp(t->name, j) * IM_COUNT;
            fwrite(&v, 4, 1, f);
        }
    }
    int32_t chunks = 12, dlen = 15;
    fwrite(&chunks, 4, 1, f);
    fwrite(&dlen, 4, 1, f);
    fwrite("calibration.txt", 1, 15, f);
    cr_assert_eq(fclose(f), 0);
}

/* Quantize the F32 model with the imatrix through the tool and check every quantized
 * tensor equals libquant's weighted quantizer fed sums/count. */
static void imatrix_case(bool legacy)
{
    TU_REQUIRE_SHARED();
    char *in = tu_shared_path("reference/classics-7m-f32.gguf"), *out = tu_dir_path("out.gguf");
    char *imf = tu_dir_path(legacy ? "imatrix.dat" : "imatrix.gguf");
    char msg[GGUF_MSG_SIZE];
    gguf_reader *src = NULL, *r = NULL;
    cr_assert_eq(gguf_open(in, &src, msg), GGUF_OK, "%s", msg);
    if (legacy)
        write_imatrix_legacy(src, imf);
    else
        write_imatrix_gguf(src, imf);
    char args[4096];
    snprintf(args, sizeof args, "--imatrix '%s' '%s' '%s' Q4_K_M", imf, in, out);
    cr_assert_eq(quantize(args), 0, "imatrix run failed");
    cr_assert_eq(gguf_open(out, &r, msg), GGUF_OK, "%s", msg);

    const gguf_str *s = NULL;
    int64_t v = 0;
    cr_expect_eq(gguf_get_str(r, "quantize.imatrix.file", &s), GGUF_OK);
    cr_expect(s && strcmp(s->str, imf) == 0);
    cr_expect_eq(gguf_get_str(r, "quantize.imatrix.dataset", &s), GGUF_OK);
    cr_expect(s && strcmp(s->str, "calibration.txt") == 0);
    cr_expect_eq(gguf_get_int(r, "quantize.imatrix.entries_count", &v), GGUF_OK);
    cr_expect_eq(v, 44); /* 6 layers x 7 matrices + output + token_embd */
    cr_expect_eq(gguf_get_int(r, "quantize.imatrix.chunks_count", &v), GGUF_OK);
    cr_expect_eq(v, 12);
    /* the imatrix keys come right after general.file_type, at the end */
    int64_t nkv = gguf_n_kv(r);
    cr_expect_str_eq(gguf_kv_key(r, nkv - 5), "general.file_type");
    cr_expect_str_eq(gguf_kv_key(r, nkv - 1), "quantize.imatrix.chunks_count");

    int checked = 0;
    for (int64_t i = 0; i < gguf_n_tensors(r); i++) {
        const gguf_tensor *t = gguf_tensor_at(r, i);
        if (t->type == GGUF_F32)
            continue;
        const gguf_tensor *x = gguf_tensor_at(src, gguf_find_tensor(src, t->name));
        int64_t ne0 = t->ne[0], nrows = t->ne[1];
        float *w = malloc((size_t)ne0 * sizeof(float));
        for (int64_t j = 0; j < ne0; j++)
            w[j] = imp(t->name, j) * IM_COUNT / IM_COUNT; /* sums / count, in float */
        unsigned char *q = malloc(t->nbytes);
        char qmsg[LQ_MSG_SIZE];
        cr_assert_eq(lq_quantize_rows(t->type, x->data, q, nrows, ne0, w, 1, qmsg), LQ_OK, "%s", qmsg);
        cr_expect(memcmp(q, t->data, t->nbytes) == 0, "%s: not quantized with the imatrix", t->name);
        /* and the importance changed something (so the check above can fail) */
        if (t->type != GGUF_Q8_0) {
            unsigned char *plain = malloc(t->nbytes);
            cr_assert_eq(lq_quantize_rows(t->type, x->data, plain, nrows, ne0, NULL, 1, qmsg), LQ_OK);
            cr_expect(memcmp(plain, t->data, t->nbytes) != 0, "%s: same bytes as without imatrix", t->name);
            free(plain);
        }
        free(q);
        free(w);
        checked++;
    }
    cr_expect_eq(checked, 44);
    gguf_close(r);
    gguf_close(src);
    free(imf);
    free(in);
    free(out);
}

Test(quantize, imatrix_gguf_is_applied) { imatrix_case(false); }
Test(quantize, imatrix_legacy_dat_is_applied) { imatrix_case(true); }

Test(quantize, imatrix_of_the_wrong_size_is_refused)
{
    TU_REQUIRE_SHARED();
    char *in = tu_shared_path("reference/classics-7m-f32.gguf"), *out = tu_dir_path("out.gguf");
    char *imf = tu_dir_path("bad.dat");
    tu_write_legacy_imatrix(imf, "blk.0.attn_q.weight", 100);
    char args[4096];
    snprintf(args, sizeof args, "--imatrix '%s' '%s' '%s' Q4_K_M", imf, in, out);
    cr_expect_eq(quantize(args), 2);
    cr_expect(!exists(out));
    /* truncated legacy file */
    cr_assert_eq(tu_run("head -c 30 '%s' > '%s.cut'", imf, imf), 0);
    snprintf(args, sizeof args, "--imatrix '%s.cut' '%s' '%s' Q4_K_M", imf, in, out);
    cr_expect_eq(quantize(args), 2);
    free(imf);
    free(in);
    free(out);
}
