/* input sources: the GGUF source, and Hugging Face checkpoints checked against llama.cpp's
 * converter output (the shared reference GGUF) and against a direct computation of the name
 * mapping and the Q/K permutation on synthetic checkpoints (bin/qforge-synth). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libgguf/gguf.h"
#include "libquant/lq.h"
#include "input/safetensors.h"
#include "input/input.h"
#include "tokenizer/tokenizer.h"
#include "tests/testutil.h"

/* ---------------------------------------------------------------- helpers */

static bool value_eq(const gguf_value *a, const gguf_value *b)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case GGUF_VAL_STRING:
        return a->v.str.len == b->v.str.len && memcmp(a->v.str.str, b->v.str.str, a->v.str.len) == 0;
    case GGUF_VAL_ARRAY:
        if (a->elem_type != b->elem_type || a->n != b->n)
            return false;
        if (a->elem_type == GGUF_VAL_STRING) {
            for (uint64_t i = 0; i < a->n; i++)
                if (a->v.strs[i].len != b->v.strs[i].len ||
                    memcmp(a->v.strs[i].str, b->v.strs[i].str, a->v.strs[i].len) != 0)
                    return false;
            return true;
        }
        return memcmp(a->v.arr, b->v.arr, a->n * gguf_value_type_size(a->elem_type)) == 0;
    case GGUF_VAL_F32: case GGUF_VAL_F64:
        return memcmp(&a->v.f64, &b->v.f64, sizeof(double)) == 0;
    case GGUF_VAL_BOOL:
        return a->v.b == b->v.b;
    default:
        return a->v.u64 == b->v.u64;
    }
}

static bool starts(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

/* Every KV of ref whose key starts with one of prefixes is in got, at the same position among
 * the selected keys, with the same type and value. */
static void expect_kv_match(const gguf_reader *got, const gguf_reader *ref, const char *const *prefixes, int np)
{
    int64_t ig = 0;
    int compared = 0;
    for (int64_t i = 0; i < gguf_n_kv(ref); i++) {
        const char *k = gguf_kv_key(ref, i);
        bool sel = false;
        for (int p = 0; p < np; p++)
            sel |= starts(k, prefixes[p]);
        if (!sel)
            continue;
        while (ig < gguf_n_kv(got)) {
            bool s2 = false;
            for (int p = 0; p < np; p++)
                s2 |= starts(gguf_kv_key(got, ig), prefixes[p]);
            if (s2)
                break;
            ig++;
        }
        cr_assert(ig < gguf_n_kv(got), "key %s missing (or out of order)", k);
        cr_expect_str_eq(gguf_kv_key(got, ig), k);
        cr_expect(value_eq(gguf_kv_value(got, ig), gguf_kv_value(ref, i)), "value of %s differs", k);
        ig++;
        compared++;
    }
    cr_expect_gt(compared, 10);
}

/* Each tensor of s equals the F32 reference tensor: name, shape, order, and values. */
static void expect_tensors_match_reference(inp_source *s, const gguf_reader *ref)
{
    cr_assert_eq(inp_n_tensors(s), gguf_n_tensors(ref));
    for (int64_t i = 0; i < gguf_n_tensors(ref); i++) {
        const gguf_tensor *rt = gguf_tensor_at(ref, i);
        const inp_tensor *t = inp_tensor_at(s, i);
        cr_assert_str_eq(t->name, rt->name, "tensor %lld", (long long)i);
        cr_expect_eq(t->n_dims, rt->n_dims, "%s", t->name);
        for (int d = 0; d < 4; d++)
            cr_expect_eq(t->ne[d], rt->ne[d], "%s ne[%d]", t->name, d);
        cr_assert_eq(rt->type, GGUF_F32);
        size_t n = (size_t)(t->ne[0] * inp_n_rows(t));
        float *buf = malloc(n * sizeof *buf);
        cr_assert(buf);
        char msg[INP_MSG_SIZE];
        cr_assert_eq(inp_read_f32(s, i, 0, inp_n_rows(t), buf, msg), INP_OK, "%s", msg);
        cr_expect_eq(memcmp(buf, rt->data, n * 4), 0, "data of %s differs", t->name);
        inp_release(s, i);
        free(buf);
    }
}

static char *shared_model(const char *name)
{
    char rel[256];
    snprintf(rel, sizeof rel, "models/%s", name);
    return tu_shared_path(rel);
}

/* ---------------------------------------------------------------- GGUF source */

Test(source, gguf_file)
{
    char *dir = tu_mkdtemp();
    cr_assert(dir);
    char path[4096];
    snprintf(path, sizeof path, "%s/t.gguf", dir);
    gguf_writer *w = gguf_writer_create();
    cr_assert(w);
    cr_assert_eq(gguf_writer_set_str(w, "general.architecture", "llama"), GGUF_OK);
    char gm[GGUF_MSG_SIZE];
    int64_t ne_f[2] = {4, 3}, ne_q[2] = {32, 2};
    cr_assert_eq(gguf_writer_add_tensor(w, "a.f32", 2, ne_f, GGUF_F32, gm), GGUF_OK, "%s", gm);
    cr_assert_eq(gguf_writer_add_tensor(w, "b.f16", 2, ne_f, GGUF_F16, gm), GGUF_OK, "%s", gm);
    cr_assert_eq(gguf_writer_add_tensor(w, "c.bf16", 2, ne_f, GGUF_BF16, gm), GGUF_OK, "%s", gm);
    cr_assert_eq(gguf_writer_add_tensor(w, "d.q8_0", 2, ne_q, GGUF_Q8_0, gm), GGUF_OK, "%s", gm);
    cr_assert_eq(gguf_writer_open(w, path, gm), GGUF_OK, "%s", gm);
    float f[12];
    uint16_t h[12], bh[12];
    for (int i = 0; i < 12; i++) {
        f[i] = (float)i * 0.25f - 1.0f;
        h[i] = lq_f32_to_f16(f[i] * 3);
        bh[i] = lq_f32_to_bf16(f[i] * 5);
    }
    uint8_t q[68];
    for (int i = 0; i < 68; i++)
        q[i] = (uint8_t)i;
    cr_assert_eq(gguf_writer_write(w, f, sizeof f, gm), GGUF_OK, "%s", gm);
    cr_assert_eq(gguf_writer_write(w, h, sizeof h, gm), GGUF_OK, "%s", gm);
    cr_assert_eq(gguf_writer_write(w, bh, sizeof bh, gm), GGUF_OK, "%s", gm);
    cr_assert_eq(gguf_writer_write(w, q, sizeof q, gm), GGUF_OK, "%s", gm);
    cr_assert_eq(gguf_writer_finish(w, gm), GGUF_OK, "%s", gm);
    gguf_writer_free(w);

    inp_source *s;
    char msg[INP_MSG_SIZE];
    cr_assert_eq(inp_open(path, &s, msg), INP_OK, "%s", msg);
    cr_expect(!inp_is_checkpoint(s));
    cr_assert_eq(inp_n_tensors(s), 4);
    cr_expect_eq(inp_n_files(s), 1);
    cr_expect_str_eq(inp_file(s, 0), path);
    cr_expect_eq(gguf_find_kv(inp_metadata(s), "general.architecture"), 0);
    cr_expect_eq(inp_find_tensor(s, "c.bf16"), 2);
    cr_expect_eq(inp_find_tensor(s, "zz"), -1);
    cr_expect_eq(inp_n_rows(inp_tensor_at(s, 0)), 3);
    cr_expect_eq(memcmp(inp_data(s, 0), f, sizeof f), 0);
    cr_expect_eq(memcmp(inp_data(s, 3), q, sizeof q), 0);
    float out[12];
    cr_assert_eq(inp_read_f32(s, 0, 1, 2, out, msg), INP_OK, "%s", msg);
    cr_expect_eq(memcmp(out, f + 4, 8 * sizeof(float)), 0);
    cr_assert_eq(inp_read_f32(s, 1, 0, 3, out, msg), INP_OK, "%s", msg);
    for (int i = 0; i < 12; i++)
        cr_expect_eq(out[i], f[i] * 3, "f16 %d: %g", i, out[i]);
    cr_assert_eq(inp_read_f32(s, 2, 0, 3, out, msg), INP_OK, "%s", msg);
    for (int i = 0; i < 12; i++)
        cr_expect_eq(out[i], lq_bf16_to_f32(bh[i]), "bf16 %d", i);
    /* quantized: raw rows only */
    cr_expect_eq(inp_read_f32(s, 3, 0, 1, out, msg), INP_ERR_UNSUPPORTED);
    cr_expect(strstr(msg, "tensor 'd.q8_0' has type q8_0") != NULL, "%s", msg);
    uint8_t raw[34];
    cr_assert_eq(inp_read_raw(s, 3, 1, 1, raw, msg), INP_OK, "%s", msg);
    cr_expect_eq(memcmp(raw, q + 34, 34), 0);
    /* bad ranges */
    cr_expect_eq(inp_read_f32(s, 0, 2, 2, out, msg), INP_ERR_ARG);
    cr_expect_eq(inp_read_f32(s, 0, -1, 1, out, msg), INP_ERR_ARG);
    cr_expect_eq(inp_read_f32(s, 9, 0, 1, out, msg), INP_ERR_ARG);
    /* released pages come back */
    for (int64_t i = 0; i < 4; i++)
        inp_release(s, i);
    cr_expect_eq(memcmp(inp_data(s, 0), f, sizeof f), 0);
    inp_close(s);

    /* not GGUF, not a directory */
    snprintf(path, sizeof path, "%s/x.bin", dir);
    cr_assert_eq(tu_write_file(path, "hello", 5), 0);
    cr_expect_eq(inp_open(path, &s, msg), INP_ERR_FORMAT);
    cr_expect(strstr(msg, "x.bin: not a GGUF file") != NULL, "%s", msg);
    snprintf(path, sizeof path, "%s/absent", dir);
    cr_expect_eq(inp_open(path, &s, msg), INP_ERR_IO);
    tu_run("rm -rf '%s'", dir);
    free(dir);
}

/* ---------------------------------------------------------------- demo model vs llama.cpp */

Test(checkpoint, classics_bf16_matches_llama_cpp)
{
    TU_REQUIRE_SHARED();
    char *m = shared_model("classics-7m"), *rp = tu_shared_path("reference/classics-7m-f32.gguf");
    inp_source *s;
    gguf_reader *ref;
    char msg[INP_MSG_SIZE], gm[GGUF_MSG_SIZE];
    cr_assert_eq(inp_open(m, &s, msg), INP_OK, "%s", msg);
    cr_assert_eq(gguf_open(rp, &ref, gm), GGUF_OK, "%s", gm);
    cr_expect(inp_is_checkpoint(s));
    cr_expect_eq(inp_n_files(s), 6); /* config, index, 2 shards, tokenizer_config, tokenizer.model */
    cr_expect_eq(inp_data(s, 0), NULL);
    cr_expect_eq(inp_tensor_at(s, 0)->type, GGUF_BF16);
    expect_tensors_match_reference(s, ref);
    /* the directory is named as llama.cpp saw it: every KV matches, in order, except the
     * file type, which describes the source (BF16 = 32) */
    const gguf_reader *md = inp_metadata(s);
    cr_assert_eq(gguf_n_kv(md), gguf_n_kv(ref));
    for (int64_t i = 0; i < gguf_n_kv(ref); i++) {
        cr_expect_str_eq(gguf_kv_key(md, i), gguf_kv_key(ref, i));
        if (strcmp(gguf_kv_key(ref, i), "general.file_type") == 0)
            cr_expect_eq(gguf_kv_value(md, i)->v.u64, 32);
        else
            cr_expect(value_eq(gguf_kv_value(md, i), gguf_kv_value(ref, i)), "%s", gguf_kv_key(ref, i));
    }
    gguf_close(ref);
    inp_close(s);
    free(m);
    free(rp);
}

Test(checkpoint, classics_f32_matches_llama_cpp)
{
    TU_REQUIRE_SHARED();
    char *m = shared_model("classics-7m-f32"), *rp = tu_shared_path("reference/classics-7m-f32.gguf");
    inp_source *s;
    gguf_reader *ref;
    char msg[INP_MSG_SIZE], gm[GGUF_MSG_SIZE];
    cr_assert_eq(inp_open(m, &s, msg), INP_OK, "%s", msg);
    cr_assert_eq(gguf_open(rp, &ref, gm), GGUF_OK, "%s", gm);
    expect_tensors_match_reference(s, ref);
    static const char *const pre[] = {"llama.", "tokenizer.ggml.", "general.architecture", "general.type",
                                      "general.basename", "general.size_label", "general.quantization_version"};
    expect_kv_match(inp_metadata(s), ref, pre, 7);
    const gguf_str *name;
    cr_assert_eq(gguf_get_str(inp_metadata(s), "general.name", &name), GGUF_OK);
    cr_expect_str_eq(name->str, "Classics 7m F32"); /* gguf-py: the directory name, "f32" a type tag */
    gguf_close(ref);
    inp_close(s);
    free(m);
    free(rp);
}

static void file_eq(const char *a, const char *b)
{
    size_t na, nb;
    char *x = tu_read_file(a, &na), *y = tu_read_file(b, &nb);
    cr_assert(x && y, "cannot read %s or %s", a, b);
    cr_expect_eq(na, nb, "%s and %s differ in size", a, b);
    cr_expect(na == nb && memcmp(x, y, na) == 0, "%s and %s differ", a, b);
    free(x);
    free(y);
}

Test(checkpoint, convert_tool_reproduces_llama_cpp_bytes)
{
    TU_REQUIRE_SHARED();
    char *m = shared_model("classics-7m"), *rp = tu_shared_path("reference/classics-7m-f32.gguf");
    char *dir = tu_mkdtemp();
    cr_assert(dir);
    cr_assert_eq(tu_run("'%s/qforge-convert' '%s' -o '%s/a.gguf' --outtype f32 -t 1 > /dev/null", tu_bin(), m, dir), 0);
    char a[4096], b[4096];
    snprintf(a, sizeof a, "%s/a.gguf", dir);
    file_eq(a, rp);
    /* F16 output: 2-D weights rounded to f16 from the exact values, norms kept F32; the same
     * bytes with 1 and 2 threads */
    cr_assert_eq(tu_run("'%s/qforge-convert' '%s' -o '%s/h1.gguf' --outtype f16 -t 1 > /dev/null", tu_bin(), m, dir), 0);
    cr_assert_eq(tu_run("'%s/qforge-convert' '%s' -o '%s/h2.gguf' --outtype f16 -t 2 > /dev/null", tu_bin(), m, dir), 0);
    snprintf(a, sizeof a, "%s/h1.gguf", dir);
    snprintf(b, sizeof b, "%s/h2.gguf", dir);
    file_eq(a, b);
    gguf_reader *h, *ref;
    char gm[GGUF_MSG_SIZE];
    cr_assert_eq(gguf_open(a, &h, gm), GGUF_OK, "%s", gm);
    cr_assert_eq(gguf_open(rp, &ref, gm), GGUF_OK, "%s", gm);
    int64_t ft;
    cr_assert_eq(gguf_get_int(h, "general.file_type", &ft), GGUF_OK);
    cr_expect_eq(ft, 1);
    cr_assert_eq(gguf_n_tensors(h), gguf_n_tensors(ref));
    for (int64_t i = 0; i < gguf_n_tensors(ref); i++) {
        const gguf_tensor *x = gguf_tensor_at(h, i), *r = gguf_tensor_at(ref, i);
        cr_assert_str_eq(x->name, r->name);
        size_t n = (size_t)(r->nbytes / 4);
        const float *rv = r->data;
        if (r->n_dims == 1) {
            cr_expect_eq(x->type, GGUF_F32, "%s", x->name);
            cr_expect_eq(memcmp(x->data, r->data, r->nbytes), 0, "%s", x->name);
            continue;
        }
        cr_expect_eq(x->type, GGUF_F16, "%s", x->name);
        const uint16_t *hv = x->data;
        size_t bad = 0;
        for (size_t k = 0; k < n; k++)
            bad += hv[k] != lq_f32_to_f16(rv[k]);
        cr_expect_eq(bad, 0, "%s: %zu values differ", x->name, bad);
    }
    gguf_close(h);
    gguf_close(ref);
    tu_run("rm -rf '%s'", dir);
    free(dir);
    free(m);
    free(rp);
}

/* ---------------------------------------------------------------- synthetic checkpoints */

typedef struct {
    const char *args;
    int layers, heads, kv, dim, ffn, vocab, type, shards;
    bool tied;
    int head_dim;     /* 0: dim / heads */
    const char *arch; /* GGUF architecture; NULL: llama (Q/K permuted, vocab_size and rope keys) */
    bool llama3;      /* --rope-llama3: rope_freqs.weight first */
} synth_case;

static const char *gguf_name_of(const char *hf, char *out)
{
    static const char *const map[][2] = {
        {"input_layernorm.weight", "attn_norm.weight"}, {"self_attn.q_proj.weight", "attn_q.weight"},
        {"self_attn.k_proj.weight", "attn_k.weight"},   {"self_attn.v_proj.weight", "attn_v.weight"},
        {"self_attn.o_proj.weight", "attn_output.weight"}, {"post_attention_layernorm.weight", "ffn_norm.weight"},
        {"mlp.gate_proj.weight", "ffn_gate.weight"},    {"mlp.up_proj.weight", "ffn_up.weight"},
        {"mlp.down_proj.weight", "ffn_down.weight"},    {"self_attn.q_proj.bias", "attn_q.bias"},
        {"self_attn.k_proj.bias", "attn_k.bias"},       {"self_attn.v_proj.bias", "attn_v.bias"},
        {"self_attn.q_norm.weight", "attn_q_norm.weight"}, {"self_attn.k_norm.weight", "attn_k_norm.weight"}};
    if (!strcmp(hf, "lm_head.weight"))
        return strcpy(out, "output.weight");
    if (!strcmp(hf, "model.embed_tokens.weight"))
        return strcpy(out, "token_embd.weight");
    if (!strcmp(hf, "model.norm.weight"))
        return strcpy(out, "output_norm.weight");
    int l, off = 0;
    cr_assert_eq(sscanf(hf, "model.layers.%d.%n", &l, &off), 1, "%s", hf);
    for (size_t k = 0; k < sizeof map / sizeof map[0]; k++)
        if (!strcmp(hf + off, map[k][0])) {
            sprintf(out, "blk.%d.%s", l, map[k][1]);
            return out;
        }
    cr_assert_fail("unexpected tensor %s", hf);
    return NULL;
}

static int cmp_strp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static float to_f32(int type, const uint8_t *p)
{
    uint16_t h = (uint16_t)(p[0] | p[1] << 8);
    float f;
    switch (type) {
    case GGUF_F32: memcpy(&f, p, 4); return f;
    case GGUF_F16: return lq_f16_to_f32(h);
    default: return lq_bf16_to_f32(h);
    }
}

static void check_synth(const synth_case *c)
{
    char *dir = tu_mkdtemp();
    cr_assert(dir);
    cr_assert_eq(tu_run("'%s/qforge-synth' %s -o '%s' > /dev/null", tu_bin(), c->args, dir), 0, "synth %s", c->args);
    inp_source *s;
    char msg[INP_MSG_SIZE];
    cr_assert_eq(inp_open(dir, &s, msg), INP_OK, "%s", msg);
    const char *A = c->arch ? c->arch : "llama";
    const bool llama = !strcmp(A, "llama");
    const int per_layer = !strcmp(A, "qwen2") ? 12 : !strcmp(A, "qwen3") ? 11 : 9;
    int n_expect = per_layer * c->layers + 2 + (c->tied ? 0 : 1) + c->llama3;
    cr_assert_eq(inp_n_tensors(s), n_expect);
    cr_expect_eq(inp_find_tensor(s, "output.weight") >= 0, !c->tied);

    /* shards in name order, tensors in name order within each: llama.cpp's order */
    char *shards[64];
    int ns = 0;
    if (c->shards == 1) {
        shards[ns++] = strdup("model.safetensors");
    } else {
        for (int k = 1; k <= c->shards; k++) {
            char b[64];
            snprintf(b, sizeof b, "model-%05d-of-%05d.safetensors", k, c->shards);
            shards[ns++] = strdup(b);
        }
    }
    int64_t idx = 0;
    size_t esz = c->type == GGUF_F32 ? 4 : 2;
    int hd = c->head_dim ? c->head_dim : c->dim / c->heads;
    if (c->llama3) { /* computed, first: factor 1 for short wavelengths, 8 for long ones */
        const inp_tensor *t = inp_tensor_at(s, idx);
        cr_assert_str_eq(t->name, "rope_freqs.weight");
        cr_assert_eq(t->type, GGUF_F32);
        cr_assert_eq(t->ne[0], hd / 2);
        float f[512];
        cr_assert_eq(inp_read_f32(s, idx, 0, 1, f, msg), INP_OK, "%s", msg);
        cr_expect_eq(f[0], 1.0f);
        cr_expect_eq(f[hd / 2 - 1], 8.0f);
        inp_release(s, idx);
        idx++;
    }
    for (int k = 0; k < ns; k++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, shards[k]);
        inp_st_file *f;
        cr_assert_eq(inp_st_open(p, &f, msg), INP_OK, "%s", msg);
        size_t nt = inp_st_n_tensors(f);
        char **names = malloc(nt * sizeof *names);
        for (size_t i = 0; i < nt; i++)
            names[i] = (char *)inp_st_tensor_at(f, i)->name;
        qsort(names, nt, sizeof *names, cmp_strp);
        for (size_t i = 0; i < nt; i++, idx++) {
            const inp_st_tensor *st = inp_st_tensor_at(f, (size_t)inp_st_find(f, names[i]));
            const uint8_t *in = inp_st_data(f, (size_t)inp_st_find(f, names[i]));
            char gname[64];
            gguf_name_of(names[i], gname);
            const inp_tensor *t = inp_tensor_at(s, idx);
            cr_assert(t);
            cr_assert_str_eq(t->name, gname, "position %lld", (long long)idx);
            cr_expect_eq(t->type, c->type);
            uint64_t rows = st->n_dims == 2 ? st->shape[0] : 1, cols = st->n_dims == 2 ? st->shape[1] : st->shape[0];
            cr_expect_eq(t->ne[0], (int64_t)cols);
            cr_expect_eq(inp_n_rows(t), (int64_t)rows);
            /* expected GGUF rows: q/k permuted (heads for q, kv heads for k), others as stored */
            int groups = !llama || strstr(gname, ".weight") == NULL ? 0
                         : strstr(gname, "attn_q.") ? c->heads : strstr(gname, "attn_k.") ? c->kv : 0;
            size_t rb = cols * esz;
            uint8_t *want = malloc(rows * rb), *got = malloc(rows * rb);
            cr_assert(want && got);
            if (groups) {
                int half = hd / 2;
                cr_assert_eq((int)rows, groups * hd);
                for (int g = 0; g < groups; g++)
                    for (int j = 0; j < half; j++)
                        for (int b = 0; b < 2; b++)
                            memcpy(want + (size_t)(g * hd + 2 * j + b) * rb, in + (size_t)(g * hd + b * half + j) * rb, rb);
            } else {
                memcpy(want, in, rows * rb);
            }
            cr_assert_eq(inp_read_raw(s, idx, 0, (int64_t)rows, got, msg), INP_OK, "%s", msg);
            cr_expect_eq(memcmp(got, want, rows * rb), 0, "raw rows of %s", gname);
            /* float rows from the middle */
            if (rows >= 3) {
                float *fl = malloc(2 * cols * sizeof *fl);
                cr_assert_eq(inp_read_f32(s, idx, 1, 2, fl, msg), INP_OK, "%s", msg);
                size_t badv = 0;
                for (size_t e = 0; e < 2 * cols; e++)
                    badv += fl[e] != to_f32(c->type, want + rb + e * esz);
                cr_expect_eq(badv, 0, "f32 rows of %s", gname);
                free(fl);
            }
            if (strstr(gname, "norm"))
                cr_expect_eq(to_f32(c->type, want), 1.0f);
            free(want);
            free(got);
        }
        free(names);
        inp_st_close(f);
        free(shards[k]);
    }
    cr_expect_eq(idx, n_expect);

    const gguf_reader *md = inp_metadata(s);
    int64_t v;
    const gguf_str *arch;
    cr_assert_eq(gguf_get_str(md, "general.architecture", &arch), GGUF_OK);
    cr_expect_str_eq(arch->str, A);
    /* "{arch}." keys, then absolute ones; want -1: not written */
    struct { const char *k; int64_t want; } ints[] = {
        {"block_count", c->layers},       {"attention.head_count", c->heads},
        {"attention.head_count_kv", c->kv}, {"embedding_length", c->dim},
        {"feed_forward_length", c->ffn},  {"context_length", 2048},
        {"vocab_size", llama ? c->vocab : -1}, {"rope.dimension_count", llama ? hd : -1},
        {"attention.key_length", c->head_dim ? c->head_dim : -1}, /* only when config.json states head_dim */
        {NULL, 0},
        {"general.file_type", c->type == GGUF_F32 ? 0 : c->type == GGUF_F16 ? 1 : 32},
        {"tokenizer.ggml.bos_token_id", 1},     {"tokenizer.ggml.eos_token_id", 2}};
    bool absolute = false;
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        if (!ints[i].k) {
            absolute = true;
            continue;
        }
        char key[96];
        snprintf(key, sizeof key, "%s%s%s", absolute ? "" : A, absolute ? "" : ".", ints[i].k);
        if (ints[i].want < 0) {
            cr_expect_eq(gguf_get_int(md, key, &v), GGUF_ERR_NOT_FOUND, "%s is written", key);
            continue;
        }
        cr_assert_eq(gguf_get_int(md, key, &v), GGUF_OK, "%s", key);
        cr_expect_eq(v, ints[i].want, "%s = %lld", key, (long long)v);
    }
    const gguf_value *tok, *ty, *sc;
    cr_assert_eq(gguf_get_array(md, "tokenizer.ggml.tokens", &tok), GGUF_OK);
    cr_assert_eq(gguf_get_array(md, "tokenizer.ggml.token_type", &ty), GGUF_OK);
    cr_assert_eq(gguf_get_array(md, "tokenizer.ggml.scores", &sc), GGUF_OK);
    cr_assert_eq(tok->n, (uint64_t)c->vocab);
    cr_expect_str_eq(tok->v.strs[0].str, "<unk>");
    cr_expect_str_eq(tok->v.strs[2].str, "</s>");
    cr_expect_str_eq(tok->v.strs[258].str, "<0xFF>");
    const int32_t *tt = ty->v.arr;
    const float *scv = sc->v.arr;
    cr_expect_eq(tt[0], 2);
    cr_expect_eq(tt[1], 3);
    cr_expect_eq(tt[100], 6);
    if (c->vocab > 261) {
        cr_expect_str_eq(tok->v.strs[259].str, "\xe2\x96\x81");
        cr_expect_str_eq(tok->v.strs[260].str, "!");
        cr_expect_eq(tt[259], 1);
        cr_expect_eq(scv[261], -2.0f);
    }
    inp_close(s);
    tu_run("rm -rf '%s'", dir);
    free(dir);
}

Test(checkpoint, synthetic_tied_mha_f16)
{
    synth_case c = {"--dim 64 --layers 2 --heads 4 --ffn 96 --vocab 300 --dtype f16 --tied --seed 3",
                    2, 4, 4, 64, 96, 300, GGUF_F16, 1, true, 0, NULL, false};
    check_synth(&c);
}

Test(checkpoint, synthetic_gqa_many_shards_bf16)
{
    /* 12 layers: llama.cpp's name order puts layers.10 before layers.2 */
    synth_case c = {"--dim 64 --layers 12 --heads 8 --kv-heads 2 --ffn 80 --vocab 512 --shards 7",
                    12, 8, 2, 64, 80, 512, GGUF_BF16, 7, false, 0, NULL, false};
    check_synth(&c);
}

Test(checkpoint, synthetic_f32_two_shards_minimal_vocab)
{
    synth_case c = {"--dim 32 --layers 1 --heads 2 --kv-heads 1 --ffn 48 --vocab 259 --dtype f32 --shards 2",
                    1, 2, 1, 32, 48, 259, GGUF_F32, 2, false, 0, NULL, false};
    check_synth(&c);
}

Test(checkpoint, synthetic_gqa_8_to_1_head_dim_not_dim_over_heads)
{
    /* head_dim 16 with dim 64 / 8 heads: Q is 128 rows, K and V 16, attn_output 128 columns */
    synth_case c = {"--dim 64 --layers 3 --heads 8 --kv-heads 1 --head-dim 16 --ffn 96 --vocab 280 --dtype f32 --shards 4",
                    3, 8, 1, 64, 96, 280, GGUF_F32, 4, false, 16, NULL, false};
    check_synth(&c);
}

Test(checkpoint, synthetic_qwen2_biases_tied_bf16)
{
    synth_case c = {"--arch Qwen2ForCausalLM --dim 64 --layers 2 --heads 4 --kv-heads 2 --ffn 96 --vocab 300 --tied --shards 3",
                    2, 4, 2, 64, 96, 300, GGUF_BF16, 3, true, 0, "qwen2", false};
    check_synth(&c);
}

Test(checkpoint, synthetic_qwen3_norms_head_dim_f16)
{
    synth_case c = {"--arch Qwen3ForCausalLM --dim 64 --layers 2 --heads 4 --kv-heads 1 --head-dim 32 --ffn 96 "
                    "--vocab 300 --dtype f16",
                    2, 4, 1, 64, 96, 300, GGUF_F16, 1, false, 32, "qwen3", false};
    check_synth(&c);
}

Test(checkpoint, synthetic_llama3_rope_freqs_tied)
{
    synth_case c = {"--dim 64 --layers 2 --heads 4 --kv-heads 2 --ffn 96 --vocab 300 --tied --rope-llama3 "
                    "--rope-theta 500000 --shards 2",
                    2, 4, 2, 64, 96, 300, GGUF_BF16, 2, true, 0, NULL, true};
    check_synth(&c);
}

Test(checkpoint, synthetic_mistral_is_llama)
{
    synth_case c = {"--arch MistralForCausalLM --dim 64 --layers 2 --heads 8 --kv-heads 2 --ffn 96 --vocab 300 --dtype f32",
                    2, 8, 2, 64, 96, 300, GGUF_F32, 1, false, 0, NULL, false};
    check_synth(&c);
}

Test(checkpoint, synthetic_convert_bf16_to_f16)
{
    char *dir = tu_mkdtemp();
    cr_assert(dir);
    cr_assert_eq(tu_run("'%s/qforge-synth' --dim 64 --layers 2 --heads 4 --kv-heads 2 --ffn 64 --vocab 320 --shards 3 "
                        "-o '%s/m' > /dev/null && '%s/qforge-convert' '%s/m' -o '%s/o.gguf' --outtype f16 > /dev/null",
                        tu_bin(), dir, tu_bin(), dir, dir),
                 0);
    char p[4096], m[4096];
    snprintf(p, sizeof p, "%s/o.gguf", dir);
    snprintf(m, sizeof m, "%s/m", dir);
    gguf_reader *r;
    inp_source *s;
    char gm[GGUF_MSG_SIZE], msg[INP_MSG_SIZE];
    cr_assert_eq(gguf_open(p, &r, gm), GGUF_OK, "%s", gm);
    cr_assert_eq(inp_open(m, &s, msg), INP_OK, "%s", msg);
    cr_assert_eq(gguf_n_tensors(r), inp_n_tensors(s));
    for (int64_t i = 0; i < gguf_n_tensors(r); i++) {
        const gguf_tensor *t = gguf_tensor_at(r, i);
        const inp_tensor *st = inp_tensor_at(s, i);
        cr_assert_str_eq(t->name, st->name);
        size_t n = (size_t)(st->ne[0] * inp_n_rows(st));
        float *x = malloc(n * sizeof *x);
        cr_assert_eq(inp_read_f32(s, i, 0, inp_n_rows(st), x, msg), INP_OK, "%s", msg);
        size_t bad = 0;
        if (st->n_dims == 1) {
            cr_expect_eq(t->type, GGUF_F32, "%s", t->name);
            bad = memcmp(t->data, x, n * 4) != 0;
        } else {
            cr_expect_eq(t->type, GGUF_F16, "%s", t->name);
            for (size_t k = 0; k < n; k++)
                bad += ((const uint16_t *)t->data)[k] != lq_f32_to_f16(x[k]);
        }
        cr_expect_eq(bad, 0, "%s", t->name);
        free(x);
    }
    inp_close(s);
    gguf_close(r);
    tu_run("rm -rf '%s'", dir);
    free(dir);
}

/* ---------------------------------------------------------------- refused checkpoints */

static void expect_open_fails(const char *dir, inp_error e, const char *want)
{
    inp_source *s = NULL;
    char msg[INP_MSG_SIZE] = "";
    inp_error got = inp_open(dir, &s, msg);
    cr_expect_eq(got, e, "got %d (%s), want %d", got, msg, e);
    cr_expect(s == NULL);
    cr_expect(strstr(msg, want) != NULL, "message '%s' lacks '%s'", msg, want);
}

Test(checkpoint, refused)
{
    char *dir = tu_mkdtemp();
    cr_assert(dir);
    const char *syn = "--dim 32 --layers 2 --heads 2 --ffn 32 --vocab 260 --shards 3";
    char d[4096];
    snprintf(d, sizeof d, "%s/m", dir);
#define FRESH() cr_assert_eq(tu_run("rm -rf '%s' && '%s/qforge-synth' %s -o '%s' > /dev/null", d, tu_bin(), syn, d), 0)
    FRESH();
    cr_assert_eq(tu_run("sed -i 's/LlamaForCausalLM/GPT2LMHeadModel/' '%s/config.json'", d), 0);
    expect_open_fails(d, INP_ERR_UNSUPPORTED,
                      "config.json: architecture 'GPT2LMHeadModel' is not supported (only LlamaForCausalLM, "
                      "MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM)");
    /* rope_scaling: llama3 is Llama's only; its factors must make sense */
    FRESH();
    cr_assert_eq(tu_run("sed -i 's/LlamaForCausalLM/Qwen2ForCausalLM/; s/\\(\"rope_theta\"\\)/\"rope_scaling\": "
                        "{\"rope_type\": \"llama3\", \"factor\": 8.0}, \\1/' '%s/config.json'", d),
                 0);
    expect_open_fails(d, INP_ERR_UNSUPPORTED, "rope_scaling type 'llama3' is not supported for Qwen2ForCausalLM (only linear)");
    FRESH();
    cr_assert_eq(tu_run("sed -i 's/\\(\"rope_theta\"\\)/\"rope_scaling\": {\"rope_type\": \"llama3\", "
                        "\"factor\": 8.0, \"low_freq_factor\": 2.0, \"high_freq_factor\": 2.0}, \\1/' '%s/config.json'", d),
                 0);
    expect_open_fails(d, INP_ERR_MODEL, "rope_scaling high_freq_factor 2 is not above low_freq_factor 2");
    FRESH();
    cr_assert_eq(tu_run("sed -i 's/LlamaForCausalLM/Qwen3ForCausalLM/; s/\"attention_bias\": false/\"attention_bias\": true/' "
                        "'%s/config.json'", d),
                 0);
    expect_open_fails(d, INP_ERR_UNSUPPORTED, "\"attention_bias\" is true: attention biases are not supported");
    FRESH(); /* a Llama checkpoint read as Qwen3: without head_dim, Qwen3Config's 128 */
    cr_assert_eq(tu_run("sed -i 's/LlamaForCausalLM/Qwen3ForCausalLM/' '%s/config.json'", d), 0);
    expect_open_fails(d, INP_ERR_MODEL, "'model.layers.0.self_attn.k_proj.weight' has shape [32, 32] but config.json "
                                        "implies [256, 32]");
    cr_assert_eq(tu_run("sed -i 's/\\(\"rope_theta\"\\)/\"head_dim\": 16, \\1/' '%s/config.json'", d), 0);
    expect_open_fails(d, INP_ERR_MISSING, "no tensor 'model.layers.0.self_attn.k_norm.weight' in the checkpoint");
    FRESH();
    cr_assert_eq(tu_run("rm '%s/model-00002-of-00003.safetensors'", d), 0);
    expect_open_fails(d, INP_ERR_MISSING, "model.safetensors.index.json: shard 'model-00002-of-00003.safetensors' is missing");
    FRESH();
    cr_assert_eq(tu_run("sed -i 's/\"hidden_size\": 32/\"hidden_size\": 64/' '%s/config.json'", d), 0);
    expect_open_fails(d, INP_ERR_MODEL, "but config.json implies");
    FRESH();
    cr_assert_eq(tu_run("sed -i 's/\"num_hidden_layers\": 2/\"num_hidden_layers\": 1/' '%s/config.json'", d), 0);
    expect_open_fails(d, INP_ERR_MODEL, "is beyond the 1 layers of config.json");
    FRESH();
    cr_assert_eq(tu_run("sed -i 's/\"num_hidden_layers\": 2/\"num_hidden_layers\": 3/' '%s/config.json'", d), 0);
    expect_open_fails(d, INP_ERR_MISSING, "no tensor 'model.layers.2.input_layernorm.weight' in the checkpoint");
    FRESH();
    cr_assert_eq(tu_run("rm '%s/tokenizer.model'", d), 0);
    expect_open_fails(d, INP_ERR_MISSING, "tokenizer.model: not found");
    FRESH();
    cr_assert_eq(tu_run("sed -i 's/\"vocab_size\": 260/\"vocab_size\": 259/' '%s/config.json'", d), 0);
    expect_open_fails(d, INP_ERR_MODEL, "but config.json implies [259, 32]");
    FRESH();
    cr_assert_eq(tu_run("rm '%s/model.safetensors.index.json'", d), 0);
    expect_open_fails(d, INP_ERR_MISSING, "no model.safetensors and no model.safetensors.index.json");
#undef FRESH
    tu_run("rm -rf '%s'", dir);
    free(dir);
}

/* ---------------------------------------------------------------- optional metadata paths */

static void edit_json(const char *path, void (*fn)(json_t *))
{
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    cr_assert(j, "%s: %s", path, je.text);
    fn(j);
    cr_assert_eq(json_dump_file(j, path, JSON_INDENT(1)), 0);
    json_decref(j);
}

static void cfg_options(json_t *j)
{
    json_object_set_new(j, "_name_or_path", json_string("acme/Tiny-Chat-v1"));
    json_object_set_new(j, "head_dim", json_integer(16));
    json_object_set_new(j, "pad_token_id", json_integer(0));
    json_object_set_new(j, "unk_token_id", json_integer(0));
    json_object_set_new(j, "sep_token_id", json_integer(5000)); /* out of range: ignored, as llama.cpp */
    json_t *rs = json_object();
    json_object_set_new(rs, "type", json_string("linear"));
    json_object_set_new(rs, "factor", json_real(2.0));
    json_object_set_new(j, "rope_scaling", rs);
    json_object_del(j, "rope_theta"); /* transformers' default 10000 */
}

static void tok_config_options(json_t *j)
{
    json_object_set_new(j, "add_prefix_space", json_false());
    json_object_set_new(j, "chat_template", json_string("{{ messages }}"));
    json_t *atd = json_object(), *a = json_object(), *b = json_object();
    json_object_set_new(a, "content", json_string("<|im_end|>"));
    json_object_set_new(a, "special", json_false());
    json_object_set_new(b, "content", json_string("\xe2\x96\x81hello"));
    json_object_set_new(b, "special", json_false());
    json_object_set_new(atd, "299", a);
    json_object_set_new(atd, "298", b);
    json_object_set_new(j, "added_tokens_decoder", atd);
}

Test(checkpoint, optional_metadata)
{
    char *dir = tu_mkdtemp();
    cr_assert(dir);
    char d[2048], p[4096];
    snprintf(d, sizeof d, "%.2000s/m", dir);
    cr_assert_eq(tu_run("'%s/qforge-synth' --dim 64 --layers 1 --heads 4 --ffn 64 --vocab 300 -o '%s' > /dev/null",
                        tu_bin(), d),
                 0);
    snprintf(p, sizeof p, "%s/config.json", d);
    edit_json(p, cfg_options);
    snprintf(p, sizeof p, "%s/tokenizer_config.json", d);
    edit_json(p, tok_config_options);
    snprintf(p, sizeof p, "%s/added_tokens.json", d);
    const char *added = "{\"<extra>\": 297, \"<far>\": 9999}";
    cr_assert_eq(tu_write_file(p, added, strlen(added)), 0);
    inp_source *s;
    char msg[INP_MSG_SIZE];
    cr_assert_eq(inp_open(d, &s, msg), INP_OK, "%s", msg);
    cr_expect_eq(inp_n_files(s), 5); /* config, shard, tokenizer_config, added_tokens, tokenizer.model */
    const gguf_reader *md = inp_metadata(s);
    static const char *const keys[] = {
        "general.architecture", "general.type", "general.name", "general.version", "general.organization",
        "general.finetune", "general.basename", "general.size_label", "llama.block_count", "llama.context_length",
        "llama.embedding_length", "llama.feed_forward_length", "llama.attention.head_count",
        "llama.attention.head_count_kv", "llama.rope.scaling.type", "llama.rope.scaling.factor",
        "llama.rope.freq_base", "llama.attention.layer_norm_rms_epsilon", "llama.attention.key_length",
        "llama.attention.value_length", "general.file_type", "llama.vocab_size", "llama.rope.dimension_count",
        "general.quantization_version", "tokenizer.ggml.add_space_prefix", "tokenizer.ggml.model",
        "tokenizer.ggml.pre", "tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type",
        "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id",
        "tokenizer.ggml.padding_token_id", "tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_eos_token",
        "tokenizer.chat_template"};
    size_t nk = sizeof keys / sizeof keys[0];
    cr_assert_eq(gguf_n_kv(md), (int64_t)nk);
    for (size_t i = 0; i < nk; i++)
        cr_expect_str_eq(gguf_kv_key(md, (int64_t)i), keys[i]);
    const gguf_str *str;
    struct { const char *k, *v; } strs[] = {
        {"general.name", "Tiny Chat v1"}, {"general.version", "v1"},   {"general.organization", "Acme"},
        {"general.finetune", "Chat"},     {"general.basename", "Tiny"}, {"general.size_label", "67K"},
        {"llama.rope.scaling.type", "linear"}, {"tokenizer.chat_template", "{{ messages }}"}};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        cr_assert_eq(gguf_get_str(md, strs[i].k, &str), GGUF_OK, "%s", strs[i].k);
        cr_expect_str_eq(str->str, strs[i].v, "%s", strs[i].k);
    }
    double f;
    cr_assert_eq(gguf_get_float(md, "llama.rope.scaling.factor", &f), GGUF_OK);
    cr_expect_eq(f, 2.0);
    cr_assert_eq(gguf_get_float(md, "llama.rope.freq_base", &f), GGUF_OK);
    cr_expect_eq(f, 10000.0);
    int64_t v;
    cr_assert_eq(gguf_get_int(md, "llama.attention.key_length", &v), GGUF_OK);
    cr_expect_eq(v, 16);
    cr_assert_eq(gguf_get_int(md, "tokenizer.ggml.padding_token_id", &v), GGUF_OK);
    cr_expect_eq(v, 0);
    bool b = true;
    cr_assert_eq(gguf_get_bool(md, "tokenizer.ggml.add_space_prefix", &b), GGUF_OK);
    cr_expect(!b);
    const gguf_value *tok, *ty, *sc;
    cr_assert_eq(gguf_get_array(md, "tokenizer.ggml.tokens", &tok), GGUF_OK);
    cr_assert_eq(gguf_get_array(md, "tokenizer.ggml.token_type", &ty), GGUF_OK);
    cr_assert_eq(gguf_get_array(md, "tokenizer.ggml.scores", &sc), GGUF_OK);
    const int32_t *tt = ty->v.arr;
    const float *scv = sc->v.arr;
    cr_expect_str_eq(tok->v.strs[299].str, "<|im_end|>"); /* looks special: CONTROL */
    cr_expect_eq(tt[299], 3);
    cr_expect_eq(scv[299], -1000.0f);
    cr_expect_str_eq(tok->v.strs[298].str, " hello"); /* user-defined, U+2581 -> ' ' */
    cr_expect_eq(tt[298], 4);
    cr_expect_str_eq(tok->v.strs[297].str, "<extra>"); /* added_tokens.json */
    cr_expect_eq(tt[297], 4);
    cr_expect_eq(scv[297], -1000.0f);
    inp_close(s);
    tu_run("rm -rf '%s'", dir);
    free(dir);
}

/* ---------------------------------------------------------------- tokenizer.json checkpoints */

/* ../shared/models/synth-* as downloaded (tokenizer.json only): the source lists the tokenizer
 * files, writes llama.cpp's pre-tokenizer name, and its vocabulary tokenizes the first 40000
 * bytes of wiki.test.raw to llama-tokenize's ids (what qforge-perplexity -m CHECKPOINT and the
 * calibration do). */
static void bpe_reference(const char *name, const char *pre)
{
    TU_REQUIRE_SHARED();
    char rel[128], msg[INP_MSG_SIZE], tm[TOK_MSG_SIZE];
    snprintf(rel, sizeof rel, "synth-%s", name);
    char *dir = shared_model(rel);
    snprintf(rel, sizeof rel, "reference/synth-%s.json", name);
    char *refp = tu_shared_path(rel);
    json_t *ref = json_load_file(refp, 0, NULL);
    cr_assert(ref, "%s", refp);
    inp_source *s;
    cr_assert_eq(inp_open(dir, &s, msg), INP_OK, "%s", msg);
    bool listed[3] = {false, false, false};
    static const char *const want_files[3] = {"/tokenizer.json", "/tokenizer_config.json", "/config.json"};
    for (size_t i = 0; i < inp_n_files(s); i++)
        for (int k = 0; k < 3; k++)
            if (strstr(inp_file(s, i), want_files[k]) && strlen(strstr(inp_file(s, i), want_files[k])) == strlen(want_files[k])) {
                cr_expect(!listed[k], "%s listed twice", want_files[k]);
                listed[k] = true;
            }
    cr_expect(listed[0] && listed[1] && listed[2], "tokenizer files not all listed");
    const gguf_reader *md = inp_metadata(s);
    const gguf_str *p;
    cr_assert_eq(gguf_get_str(md, "tokenizer.ggml.pre", &p), GGUF_OK);
    cr_expect_str_eq(p->str, pre);
    tok_model *t;
    cr_assert_eq(tok_from_gguf(md, &t, tm), TOK_OK, "%s", tm);
    char *tp = tu_shared_path("text/wiki.test.raw");
    size_t len;
    char *text = tu_read_file(tp, &len);
    cr_assert(text && len > 40000);
    int32_t *ids;
    size_t n;
    cr_assert_eq(tok_encode(t, text, 40000, tok_default_flags(t), &ids, &n, tm), TOK_OK, "%s", tm);
    json_t *want = json_object_get(ref, "llama_tokenize_ids");
    cr_assert_eq(n, json_array_size(want), "%s: %zu ids, llama-tokenize %zu", name, n, json_array_size(want));
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(ids[i], json_integer_value(json_array_get(want, i)), "%s: id %zu", name, i);
    free(ids);
    free(text);
    free(tp);
    tok_free(t);
    inp_close(s);
    json_decref(ref);
    free(refp);
    free(dir);
}

Test(checkpoint, bpe_llama3_tokenizes_as_llama_tokenize) { bpe_reference("llama3", "llama-bpe"); }
Test(checkpoint, bpe_qwen2_tokenizes_as_llama_tokenize) { bpe_reference("qwen2", "qwen2"); }
Test(checkpoint, bpe_qwen3_tokenizes_as_llama_tokenize) { bpe_reference("qwen3", "qwen2"); }

/* qforge-synth --tokenizer bpe: the vocabulary, merges and special tokens it documents, read
 * back through tokenizer.json with the pre-tokenizer given; every shape the shared models lack
 * (untied, GQA 8:1, head_dim != dim / heads, three shards). */
static void synth_bpe(const char *cls, const char *pre, bool llama3_tokens)
{
    char *dir = tu_mkdtemp();
    cr_assert(dir);
    char d[4096], msg[INP_MSG_SIZE], tm[TOK_MSG_SIZE];
    snprintf(d, sizeof d, "%s/m", dir);
    const int V = 1400;
    cr_assert_eq(tu_run("'%s/qforge-synth' --arch %s --dim 64 --layers 2 --heads 8 --kv-heads 1 --head-dim 16 --ffn 96 "
                        "--vocab %d --shards 3 --dtype f16 --tokenizer bpe -o '%s' > /dev/null",
                        tu_bin(), cls, V, d),
                 0);
    inp_source *s = NULL;
    /* its ids hash to no known tokenizer: refused, naming the option */
    cr_expect_eq(inp_open(d, &s, msg), INP_ERR_UNSUPPORTED);
    cr_expect(strstr(msg, "tokenizer.json: unknown BPE pre-tokenizer") && strstr(msg, "--tokenizer-pre NAME"), "%s", msg);
    cr_assert_eq(inp_open_ex(d, &(inp_open_opts){.tokenizer_pre = pre}, &s, msg), INP_OK, "%s", msg);
    cr_expect_eq(inp_n_files(s), 7); /* config, index, 3 shards, tokenizer.json, tokenizer_config.json */
    const gguf_reader *md = inp_metadata(s);
    const gguf_str *str;
    const gguf_value *tok, *ty, *mg;
    int64_t v;
    cr_assert_eq(gguf_get_str(md, "tokenizer.ggml.model", &str), GGUF_OK);
    cr_expect_str_eq(str->str, "gpt2");
    cr_assert_eq(gguf_get_str(md, "tokenizer.ggml.pre", &str), GGUF_OK);
    cr_expect_str_eq(str->str, pre);
    cr_assert_eq(gguf_get_array(md, "tokenizer.ggml.tokens", &tok), GGUF_OK);
    cr_assert_eq(gguf_get_array(md, "tokenizer.ggml.token_type", &ty), GGUF_OK);
    cr_assert_eq(gguf_get_array(md, "tokenizer.ggml.merges", &mg), GGUF_OK);
    cr_assert_eq(tok->n, (uint64_t)V);
    cr_assert_eq(mg->n, (uint64_t)V - 259);
    cr_expect_str_eq(tok->v.strs[0].str, "!");
    cr_expect_str_eq(tok->v.strs[187].str, "\xc3\xbf");   /* ÿ: the last byte shown as itself */
    cr_expect_str_eq(tok->v.strs[188].str, "\xc4\x80");   /* byte 0 as U+0100 */
    cr_expect_str_eq(tok->v.strs[255].str, "\xc5\x83");   /* byte 0xAD as U+0143 */
    cr_expect_str_eq(tok->v.strs[256].str, "\xc4\xa0" "a");
    cr_expect_str_eq(tok->v.strs[282].str, "aa");
    cr_expect_str_eq(tok->v.strs[283].str, "\xc4\xa0" "aa");
    cr_expect_str_eq(mg->v.strs[0].str, "\xc4\xa0 a");
    cr_expect_str_eq(mg->v.strs[27].str, "\xc4\xa0" "a a");
    cr_expect_str_eq(mg->v.strs[V - 260].str, "v l"); /* the last: 2-letter word 557, plain */
    cr_expect_str_eq(tok->v.strs[V - 3].str, llama3_tokens ? "<|begin_of_text|>" : "<|endoftext|>");
    cr_expect_str_eq(tok->v.strs[V - 1].str, llama3_tokens ? "<|eot_id|>" : "<|im_end|>");
    const int32_t *tt = ty->v.arr;
    cr_expect_eq(tt[0], 1);
    cr_expect_eq(tt[V - 4], 1);
    for (int k = 1; k <= 3; k++)
        cr_expect_eq(tt[V - k], 3, "token %d is not CONTROL", V - k);
    cr_assert_eq(gguf_get_int(md, "tokenizer.ggml.bos_token_id", &v), GGUF_OK);
    cr_expect_eq(v, V - 3);
    cr_assert_eq(gguf_get_int(md, "tokenizer.ggml.eos_token_id", &v), GGUF_OK);
    cr_expect_eq(v, llama3_tokens ? V - 2 : V - 1);
    cr_assert_eq(gguf_get_str(md, "tokenizer.chat_template", &str), GGUF_OK);
    /* shapes: untied (output.weight present), Q 8 x 16 rows, K/V one head of 16 */
    cr_expect_geq(inp_find_tensor(s, "output.weight"), 0);
    const inp_tensor *q = inp_tensor_at(s, inp_find_tensor(s, "blk.1.attn_q.weight"));
    const inp_tensor *k = inp_tensor_at(s, inp_find_tensor(s, "blk.1.attn_k.weight"));
    cr_expect(q->ne[0] == 64 && q->ne[1] == 128 && k->ne[0] == 64 && k->ne[1] == 16);
    /* the tokenizer round-trips text through merges */
    tok_model *t;
    cr_assert_eq(tok_from_gguf(md, &t, tm), TOK_OK, "%s", tm);
    const char *text = "the cat sat on a mat, and 42 dogs ran.\nab abc";
    int32_t *ids;
    size_t n;
    cr_assert_eq(tok_encode(t, text, strlen(text), 0, &ids, &n, tm), TOK_OK, "%s", tm);
    cr_expect_lt(n, strlen(text) * 3 / 4, "%zu ids: few merges applied", n);
    char out[256] = "", piece[64];
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t pl = tok_piece(t, ids[i], false, piece, sizeof piece);
        cr_assert(pl >= 0 && o + (size_t)pl < sizeof out);
        memcpy(out + o, piece, (size_t)pl);
        o += (size_t)pl;
    }
    out[o] = 0;
    cr_expect_str_eq(out, text);
    free(ids);
    tok_free(t);
    inp_close(s);
    tu_run("rm -rf '%s'", dir);
    free(dir);
}

Test(checkpoint, synthetic_bpe_llama3) { synth_bpe("LlamaForCausalLM", "llama-bpe", true); }
Test(checkpoint, synthetic_bpe_qwen2) { synth_bpe("Qwen2ForCausalLM", "qwen2", false); }
Test(checkpoint, synthetic_bpe_qwen3) { synth_bpe("Qwen3ForCausalLM", "qwen2", false); }

/* inp_open_opts.tokenizer_pre where it cannot apply, an unknown name, no tokenizer at all */
Test(checkpoint, tokenizer_pre_refused)
{
    char *dir = tu_mkdtemp();
    cr_assert(dir);
    char d[4096], b[4096], g[4096], msg[INP_MSG_SIZE];
    snprintf(d, sizeof d, "%s/spm", dir);
    snprintf(b, sizeof b, "%s/bpe", dir);
    snprintf(g, sizeof g, "%s/m.gguf", dir);
    const char *syn = "--arch Qwen2ForCausalLM --dim 32 --layers 1 --heads 2 --ffn 32 --vocab 300";
    cr_assert_eq(tu_run("'%s/qforge-synth' %s -o '%s' > /dev/null && '%s/qforge-synth' %s --tokenizer bpe -o '%s' > /dev/null"
                        " && '%s/qforge-convert' '%s' -o '%s' > /dev/null",
                        tu_bin(), syn, d, tu_bin(), syn, b, tu_bin(), d, g),
                 0);
    inp_source *s = NULL;
    inp_open_opts o = {.tokenizer_pre = "qwen2"};
    cr_expect_eq(inp_open_ex(d, &o, &s, msg), INP_ERR_ARG);
    cr_expect(strstr(msg, "spm/tokenizer.model: a pre-tokenizer name (--tokenizer-pre) applies only to a byte-level BPE"),
              "%s", msg);
    cr_expect_eq(inp_open_ex(g, &o, &s, msg), INP_ERR_ARG);
    cr_expect(strstr(msg, "m.gguf: a pre-tokenizer name (--tokenizer-pre) applies only to a checkpoint"), "%s", msg);
    o.tokenizer_pre = "no-such-pre";
    cr_expect_eq(inp_open_ex(b, &o, &s, msg), INP_ERR_ARG);
    cr_expect(strstr(msg, "unknown pre-tokenizer 'no-such-pre' (known: "), "%s", msg);
    cr_expect(s == NULL);
    /* tokenizer.model wins over tokenizer.json, as in llama.cpp's converter */
    cr_assert_eq(tu_run("cp '%s/tokenizer.json' '%s/'", b, d), 0);
    cr_assert_eq(inp_open(d, &s, msg), INP_OK, "%s", msg);
    const gguf_str *m;
    cr_assert_eq(gguf_get_str(inp_metadata(s), "tokenizer.ggml.model", &m), GGUF_OK);
    cr_expect_str_eq(m->str, "llama");
    inp_close(s);
    s = NULL;
    cr_assert_eq(tu_run("rm '%s/tokenizer.model' '%s/tokenizer.json'", d, d), 0);
    cr_expect_eq(inp_open(d, &s, msg), INP_ERR_MISSING);
    cr_expect(strstr(msg, "spm/tokenizer.model: not found, nor tokenizer.json"), "%s", msg);
    tu_run("rm -rf '%s'", dir);
    free(dir);
}
