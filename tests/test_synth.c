/* input/synth: checkpoints of each registered class, read back through the checkpoint source;
 * values independent of sharding and dtype; refused options. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/arch.h"
#include "input/input.h"
#include "input/synth.h"
#include "libgguf/gguf.h"
#include "libquant/lq.h"
#include "tests/testutil.h"

static inp_synth_opts small(void)
{
    inp_synth_opts o = inp_synth_defaults();
    o.dim = 32, o.layers = 2, o.heads = 4, o.kv_heads = 2, o.ffn = 48, o.vocab = 300;
    return o;
}

static char *write_to(const char *dir, const char *name, const inp_synth_opts *o, inp_synth_summary *sum)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char msg[INP_MSG_SIZE];
    cr_assert_eq(inp_synth_write(path, o, sum, msg), INP_OK, "%s", msg);
    return path;
}

/* Every tensor of a and b: same names and shapes, F32 values equal (or b = a rounded to bf16). */
static void expect_same_model(const char *pa, const char *pb, bool b_is_bf16)
{
    inp_source *a, *b;
    char msg[INP_MSG_SIZE];
    cr_assert_eq(inp_open(pa, &a, msg), INP_OK, "%s", msg);
    cr_assert_eq(inp_open(pb, &b, msg), INP_OK, "%s", msg);
    cr_assert_eq(inp_n_tensors(a), inp_n_tensors(b));
    for (int64_t i = 0; i < inp_n_tensors(a); i++) {
        const inp_tensor *ta = inp_tensor_at(a, i);
        int64_t j = inp_find_tensor(b, ta->name); /* the order follows the shards */
        cr_assert_geq(j, 0, "%s", ta->name);
        const inp_tensor *tb = inp_tensor_at(b, j);
        cr_assert_eq(ta->ne[0], tb->ne[0]);
        cr_assert_eq(ta->ne[1], tb->ne[1]);
        size_t n = (size_t)(ta->ne[0] * ta->ne[1]);
        float *x = malloc(n * 4), *y = malloc(n * 4);
        cr_assert_eq(inp_read_f32(a, i, 0, ta->ne[1], x, msg), INP_OK, "%s", msg);
        cr_assert_eq(inp_read_f32(b, j, 0, tb->ne[1], y, msg), INP_OK, "%s", msg);
        size_t bad = 0;
        for (size_t k = 0; k < n; k++)
            bad += (b_is_bf16 ? lq_bf16_to_f32(lq_f32_to_bf16(x[k])) : x[k]) != y[k];
        cr_expect_eq(bad, 0, "%s: %zu values differ", ta->name, bad);
        free(x);
        free(y);
    }
    inp_close(a);
    inp_close(b);
}

Test(synth, values_do_not_depend_on_shards_or_dtype)
{
    char *dir = tu_mkdtemp();
    cr_assert(dir);
    inp_synth_opts o = small();
    o.dtype = GGUF_F32;
    inp_synth_summary s1, s3, sb;
    char p1[4096], p3[4096];
    snprintf(p1, sizeof p1, "%s", write_to(dir, "one", &o, &s1));
    o.shards = 3;
    snprintf(p3, sizeof p3, "%s", write_to(dir, "three", &o, &s3));
    expect_same_model(p1, p3, false);
    o.dtype = GGUF_BF16;
    expect_same_model(p1, write_to(dir, "bf16", &o, &sb), true);
    /* embedding 300x32, per layer q 32x32, k/v 16x32, o 32x32, gate/up/down 48x32, 2 norms of 32;
     * final norm 32; lm_head 300x32 */
    const uint64_t layer = 32 * 32 + 2 * 16 * 32 + 32 * 32 + 3 * 48 * 32 + 2 * 32;
    const uint64_t params = 2 * 300 * 32 + 2 * layer + 32;
    cr_expect_eq(s1.params, params);
    cr_expect_eq(s1.bytes, 4 * params);
    cr_expect_eq(sb.bytes, 2 * params);
    cr_expect_eq(s3.n_tensors, 2 + 2 * 9 + 1);
    tu_run("rm -rf '%s'", dir);
    free(dir);
}

/* Each registered class comes back through the checkpoint source under its GGUF architecture,
 * tied and with a head dimension other than dim / heads. */
Test(synth, every_class_reads_back)
{
    char *dir = tu_mkdtemp();
    cr_assert(dir);
    for (size_t i = 0; i < arch_count(); i++) {
        const arch_desc *d = arch_at(i);
        for (size_t c = 0; c < d->n_classes; c++) {
            inp_synth_opts o = small();
            o.hf_class = d->classes[c].name;
            o.tied = true;
            o.head_dim = 12;
            char name[64];
            snprintf(name, sizeof name, "m%zu_%zu", i, c);
            inp_synth_summary sum;
            const char *p = write_to(dir, name, &o, &sum);
            inp_source *s;
            char msg[INP_MSG_SIZE];
            cr_assert_eq(inp_open(p, &s, msg), INP_OK, "%s: %s", o.hf_class, msg);
            const gguf_str *a;
            cr_assert_eq(gguf_get_str(inp_metadata(s), "general.architecture", &a), GGUF_OK);
            cr_expect_str_eq(a->str, d->name);
            cr_expect_lt(inp_find_tensor(s, "output.weight"), 0);
            int64_t q = inp_find_tensor(s, "blk.1.attn_q.weight");
            cr_assert_geq(q, 0);
            cr_expect_eq(inp_tensor_at(s, q)->ne[1], 4 * 12);
            cr_expect_eq(inp_n_tensors(s), sum.n_tensors);
            inp_close(s);
        }
    }
    tu_run("rm -rf '%s'", dir);
    free(dir);
}

Test(synth, refused_options)
{
    char *dir = tu_mkdtemp();
    cr_assert(dir);
    char p[4096], msg[INP_MSG_SIZE];
    snprintf(p, sizeof p, "%s/m", dir);
    inp_synth_opts o = small();
    o.heads = 5;
    cr_expect_eq(inp_synth_write(p, &o, NULL, msg), INP_ERR_ARG);
    cr_expect(strstr(msg, "dim 32 is not a multiple of heads 5"), "%s", msg);
    o = small();
    o.kv_heads = 3;
    cr_expect_eq(inp_synth_write(p, &o, NULL, msg), INP_ERR_ARG);
    cr_expect(strstr(msg, "heads 4 is not a multiple of kv-heads 3"), "%s", msg);
    o = small();
    o.head_dim = 7;
    cr_expect_eq(inp_synth_write(p, &o, NULL, msg), INP_ERR_ARG);
    cr_expect(strstr(msg, "head dimension 7"), "%s", msg);
    o = small();
    o.vocab = 100;
    cr_expect_eq(inp_synth_write(p, &o, NULL, msg), INP_ERR_ARG);
    o = small();
    o.shards = 22; /* 2 + 2*9 + 1 = 21 tensors */
    cr_expect_eq(inp_synth_write(p, &o, NULL, msg), INP_ERR_ARG);
    cr_expect(strstr(msg, "22 shards are more than the 21 tensors"), "%s", msg);
    o = small();
    o.hf_class = "GPT2LMHeadModel";
    cr_expect_eq(inp_synth_write(p, &o, NULL, msg), INP_ERR_UNSUPPORTED);
    cr_expect(strstr(msg, "GPT2LMHeadModel"), "%s", msg);
    /* nothing was written for refused options */
    cr_expect_neq(tu_run("test -e '%s'", p), 0);
    o = small();
    snprintf(p, sizeof p, "%s/no/such/dir", dir);
    cr_expect_eq(inp_synth_write(p, &o, NULL, msg), INP_ERR_IO);
    tu_run("rm -rf '%s'", dir);
    free(dir);
}

/* The tokenizer kind changes only the tokenizer files (and config.json's bos/eos ids): the same
 * weights; the other kind's file of an earlier run into the directory is removed. */
Test(synth, bpe_tokenizer_same_weights_and_no_stale_file)
{
    char *dir = tu_mkdtemp();
    cr_assert(dir);
    inp_synth_opts o = small();
    o.hf_class = "Qwen2ForCausalLM";
    inp_synth_summary a, b;
    char pa[4096], pb[4096], msg[INP_MSG_SIZE];
    snprintf(pa, sizeof pa, "%s", write_to(dir, "spm", &o, &a));
    o.tokenizer = INP_SYNTH_TOK_BPE;
    snprintf(pb, sizeof pb, "%s", write_to(dir, "bpe", &o, &b));
    cr_expect_eq(a.bytes, b.bytes);
    cr_expect_eq(tu_run("test -f '%s/tokenizer.json' && ! test -e '%s/tokenizer.model'", pb, pb), 0);
    inp_source *s;
    cr_expect_eq(inp_open(pb, &s, msg), INP_ERR_UNSUPPORTED); /* synthetic ids: no known pre-tokenizer */
    cr_expect(strstr(msg, "--tokenizer-pre"), "%s", msg);
    /* read with a name, the weights are the SentencePiece twin's */
    inp_source *x, *y;
    cr_assert_eq(inp_open(pa, &x, msg), INP_OK, "%s", msg);
    cr_assert_eq(inp_open_ex(pb, &(inp_open_opts){.tokenizer_pre = "qwen2"}, &y, msg), INP_OK, "%s", msg);
    cr_assert_eq(inp_n_tensors(x), inp_n_tensors(y));
    for (int64_t i = 0; i < inp_n_tensors(x); i++) {
        const inp_tensor *t = inp_tensor_at(x, i);
        size_t n = (size_t)(t->ne[0] * inp_n_rows(t));
        float *u = malloc(n * 4), *v = malloc(n * 4);
        cr_assert_eq(inp_read_f32(x, i, 0, inp_n_rows(t), u, msg), INP_OK, "%s", msg);
        cr_assert_eq(inp_read_f32(y, i, 0, inp_n_rows(t), v, msg), INP_OK, "%s", msg);
        cr_expect_eq(memcmp(u, v, n * 4), 0, "%s", t->name);
        free(u);
        free(v);
    }
    inp_close(x);
    inp_close(y);
    /* SentencePiece again into the BPE directory: tokenizer.json goes */
    o.tokenizer = INP_SYNTH_TOK_SPM;
    write_to(dir, "bpe", &o, &b);
    cr_expect_eq(tu_run("test -f '%s/tokenizer.model' && ! test -e '%s/tokenizer.json'", pb, pb), 0);
    /* a BPE vocabulary needs 256 bytes, a merge and 3 special tokens */
    o.tokenizer = INP_SYNTH_TOK_BPE;
    o.vocab = 259;
    snprintf(pa, sizeof pa, "%s/small", dir);
    cr_expect_eq(inp_synth_write(pa, &o, NULL, msg), INP_ERR_ARG);
    cr_expect(strstr(msg, "a BPE tokenizer needs vocab >= 260"), "%s", msg);
    o.vocab = 260;
    cr_expect_eq(inp_synth_write(pa, &o, NULL, msg), INP_OK, "%s", msg);
    cr_expect_eq(inp_open_ex(pa, &(inp_open_opts){.tokenizer_pre = "qwen2"}, &y, msg), INP_OK, "%s", msg);
    inp_close(y);
    o.tokenizer = 2;
    cr_expect_eq(inp_synth_write(pa, &o, NULL, msg), INP_ERR_ARG);
    cr_expect(strstr(msg, "tokenizer kind 2 is neither"), "%s", msg);
    tu_run("rm -rf '%s'", dir);
    free(dir);
}
