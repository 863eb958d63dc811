/* Mixture rules (libquant/lq_mix.h): expected types worked out by hand from llama.cpp's
 * llama-quant.cpp rules, and the demo model against llama-quantize's own output files. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/arch.h"
#include "libgguf/gguf.h"
#include "libquant/lq_mix.h"
#include "tests/testutil.h"

/* ---------------------------------------------------------------- a synthetic Llama */

#define MAXT 1024

typedef struct {
    char names[MAXT][64];
    lq_mix_tensor t[MAXT];
    lq_mix_choice c[MAXT];
    size_t n;
    lq_mix_model m;
} model;

static void add(model *md, const char *name, int64_t ne0, int64_t ne1)
{
    cr_assert(md->n < MAXT);
    size_t i = md->n++;
    snprintf(md->names[i], sizeof md->names[i], "%s", name);
    md->t[i].name = md->names[i];
    md->t[i].n_dims = ne1 > 0 ? 2 : 1;
    md->t[i].ne[0] = ne0;
    md->t[i].ne[1] = ne1 > 0 ? ne1 : 1;
    md->t[i].ne[2] = md->t[i].ne[3] = 1;
    md->t[i].type = GGUF_F32;
}

/* Tensors already in llama-quantize's order (non-block names sorted, then each block sorted). */
static void build(model *md, int n_layer, int dim, int kv_dim, int ff, int vocab, bool with_output)
{
    memset(md, 0, sizeof *md);
    char nm[64];
    if (with_output)
        add(md, "output.weight", dim, vocab);
    add(md, "output_norm.weight", dim, 0);
    add(md, "token_embd.weight", dim, vocab);
    for (int l = 0; l < n_layer; l++) {
#define T(s, a, b) snprintf(nm, sizeof nm, "blk.%d." s, l), add(md, nm, a, b)
        T("attn_k.weight", dim, kv_dim);
        T("attn_norm.weight", dim, 0);
        T("attn_output.weight", dim, dim);
        T("attn_q.weight", dim, dim);
        T("attn_v.weight", dim, kv_dim);
        T("ffn_down.weight", ff, dim);
        T("ffn_gate.weight", dim, ff);
        T("ffn_norm.weight", dim, 0);
        T("ffn_up.weight", dim, ff);
#undef T
    }
    md->m.arch = "llama";
    md->m.n_layer = n_layer;
    md->m.n_head = 8;
    md->m.n_head_kv = 8;
}

static void plan(model *md, int ftype, const lq_mix_params *p)
{
    char msg[LQ_MSG_SIZE];
    lq_error e = lq_mix_plan(ftype, &md->m, md->t, md->n, p, md->c, msg);
    cr_assert_eq(e, LQ_OK, "plan failed: %s", msg);
}

static int type_of(const model *md, const char *name)
{
    for (size_t i = 0; i < md->n; i++)
        if (!strcmp(md->names[i], name))
            return md->c[i].type;
    cr_assert_fail("no tensor %s", name);
    return -1;
}

static int layer_type(const model *md, int l, const char *what)
{
    char nm[64];
    snprintf(nm, sizeof nm, "blk.%d.%s.weight", l, what);
    return type_of(md, nm);
}

#define EXPECT(md, nm_, ty_)                                                                        \
    cr_expect_eq(type_of(md, nm_), ty_, "%s: got %s, want %s", nm_,                                 \
                 gguf_type_info(type_of(md, nm_))->name, gguf_type_info(ty_)->name)
#define EXPECT_L(md, l, what, ty_)                                                                  \
    cr_expect_eq(layer_type(md, l, what), ty_, "blk.%d.%s: got %s, want %s", l, what,               \
                 gguf_type_info(layer_type(md, l, what))->name, gguf_type_info(ty_)->name)

static model M; /* large; one test at a time per process */

/* ---------------------------------------------------------------- names and ids */

Test(lq_mix, ftype_names_and_ids)
{
    cr_expect_eq(lq_ftype_from_name("Q4_K_M"), 15);
    cr_expect_eq(lq_ftype_from_name("q4_k_m"), 15);
    cr_expect_eq(lq_ftype_from_name("Q4_K"), 15);
    cr_expect_eq(lq_ftype_from_name("Q3_K"), 12);
    cr_expect_eq(lq_ftype_from_name("Q5_K"), 17);
    cr_expect_eq(lq_ftype_from_name("15"), 15);
    cr_expect_eq(lq_ftype_from_name("Q8_0"), 7);
    cr_expect_eq(lq_ftype_from_name("Q4_0"), 2);
    cr_expect_eq(lq_ftype_from_name("Q4_1"), 3);
    cr_expect_eq(lq_ftype_from_name("Q5_0"), 8);
    cr_expect_eq(lq_ftype_from_name("Q5_1"), 9);
    cr_expect_eq(lq_ftype_from_name("Q2_K"), 10);
    cr_expect_eq(lq_ftype_from_name("Q3_K_S"), 11);
    cr_expect_eq(lq_ftype_from_name("Q3_K_L"), 13);
    cr_expect_eq(lq_ftype_from_name("Q4_K_S"), 14);
    cr_expect_eq(lq_ftype_from_name("Q5_K_S"), 16);
    cr_expect_eq(lq_ftype_from_name("Q6_K"), 18);
    cr_expect_eq(lq_ftype_from_name("F16"), 1);
    cr_expect_eq(lq_ftype_from_name("BF16"), 32);
    cr_expect_eq(lq_ftype_from_name("F32"), 0);
    cr_expect_eq(lq_ftype_from_name("0"), 0);
    cr_expect_eq(lq_ftype_from_name("4"), -1);
    cr_expect_eq(lq_ftype_from_name("Q4_K_X"), -1);
    cr_expect_eq(lq_ftype_from_name("COPY"), -1);
    cr_expect_eq(lq_ftype_from_name(""), -1);
    cr_expect_eq(lq_ftype_from_name("99999999999999999999"), -1);
    cr_expect_str_eq(lq_ftype_name(15), "Q4_K_M");
    cr_expect_null(lq_ftype_name(4));
    cr_expect_eq(lq_ftype_default_type(15), GGUF_Q4_K);
    cr_expect_eq(lq_ftype_default_type(12), GGUF_Q3_K);
    cr_expect_eq(lq_ftype_default_type(32), GGUF_BF16);
}

Test(lq_mix, use_more_bits)
{
    /* n_layer 6 (the demo model): layers 2 and 5 */
    bool want6[6] = {false, false, true, false, false, true};
    for (int i = 0; i < 6; i++)
        cr_expect_eq(lq_mix_use_more_bits(i, 6), want6[i], "layer %d of 6", i);
    /* n_layer 32: < 4, >= 28, (i-4)%3 == 2 */
    int more = 0;
    for (int i = 0; i < 32; i++)
        more += lq_mix_use_more_bits(i, 32);
    cr_expect_eq(more, 4 + 4 + 8); /* 6,9,...,27 is 8 layers */
    cr_expect(lq_mix_use_more_bits(6, 32));
    cr_expect(!lq_mix_use_more_bits(7, 32));
}

Test(lq_mix, order_like_llama_quantize)
{
    const char *names[] = {"blk.10.attn_q.weight", "token_embd.weight", "blk.2.ffn_up.weight",
                           "blk.2.attn_k.weight", "output.weight",     "blk.9.attn_q.weight",
                           "output_norm.weight",  "rope_freqs.weight"};
    size_t order[8];
    cr_assert_eq(lq_mix_sort(names, 8, order), LQ_OK);
    const char *want[] = {"output.weight",       "output_norm.weight",  "rope_freqs.weight",
                          "token_embd.weight",   "blk.2.attn_k.weight", "blk.2.ffn_up.weight",
                          "blk.9.attn_q.weight", "blk.10.attn_q.weight"};
    for (int i = 0; i < 8; i++)
        cr_expect_str_eq(names[order[i]], want[i], "position %d", i);
    cr_expect_lt(lq_mix_name_cmp("blk.9.x", "blk.10.x"), 0);
    cr_expect_lt(lq_mix_name_cmp("zzz.weight", "blk.0.x"), 0);
}

Test(lq_mix, what_is_quantized)
{
    int64_t ne2[4] = {256, 256, 1, 1}, ne1[4] = {256, 1, 1, 1};
    cr_expect(lq_mix_allows_quantization("blk.0.attn_q.weight", 2, ne2, false));
    cr_expect(!lq_mix_allows_quantization("blk.0.attn_norm.weight", 1, ne1, false));
    /* 1-D by ggml's count even when stored with a trailing 1 */
    cr_expect(!lq_mix_allows_quantization("blk.0.attn_q.weight", 2, ne1, false));
    cr_expect(!lq_mix_allows_quantization("blk.0.attn_norm.weight", 2, ne2, false));
    cr_expect(!lq_mix_allows_quantization("blk.0.attn_q.bias", 2, ne2, false));
    cr_expect(!lq_mix_allows_quantization("blk.0.ffn_gate_inp.weight", 2, ne2, false));
    cr_expect(!lq_mix_allows_quantization("position_embd.weight", 2, ne2, false));
    cr_expect(lq_mix_allows_quantization("output.weight", 2, ne2, false));
    cr_expect(!lq_mix_allows_quantization("output.weight", 2, ne2, true));
}

/* ---------------------------------------------------------------- mixtures, by hand */

Test(lq_mix, q4_k_m_small)
{
    /* the demo model's shape: 6 layers; use_more_bits -> layers 2 and 5 */
    build(&M, 6, 256, 128, 768, 4096, true);
    plan(&M, LQ_FTYPE_MOSTLY_Q4_K_M, NULL);
    EXPECT(&M, "output.weight", GGUF_Q6_K);
    EXPECT(&M, "token_embd.weight", GGUF_Q4_K);
    EXPECT(&M, "output_norm.weight", GGUF_F32);
    for (int l = 0; l < 6; l++) {
        int more = l == 2 || l == 5 ? GGUF_Q6_K : GGUF_Q4_K;
        EXPECT_L(&M, l, "attn_v", more);
        EXPECT_L(&M, l, "ffn_down", more);
        EXPECT_L(&M, l, "attn_q", GGUF_Q4_K);
        EXPECT_L(&M, l, "attn_k", GGUF_Q4_K);
        EXPECT_L(&M, l, "attn_output", GGUF_Q4_K);
        EXPECT_L(&M, l, "ffn_gate", GGUF_Q4_K);
        EXPECT_L(&M, l, "ffn_up", GGUF_Q4_K);
        EXPECT_L(&M, l, "attn_norm", GGUF_F32);
        EXPECT_L(&M, l, "ffn_norm", GGUF_F32);
    }
}

Test(lq_mix, q3_k_m)
{
    build(&M, 16, 512, 128, 1024, 1024, true);
    M.m.n_head = 32;
    M.m.n_head_kv = 8;
    plan(&M, LQ_FTYPE_MOSTLY_Q3_K_M, NULL);
    EXPECT(&M, "output.weight", GGUF_Q6_K);
    EXPECT(&M, "token_embd.weight", GGUF_Q3_K);
    for (int l = 0; l < 16; l++) {
        EXPECT_L(&M, l, "attn_v", l < 2 ? GGUF_Q5_K : GGUF_Q4_K);  /* first two attn_v */
        EXPECT_L(&M, l, "ffn_down", l < 1 ? GGUF_Q5_K : GGUF_Q4_K); /* n_layer/16 = 1 */
        EXPECT_L(&M, l, "attn_output", GGUF_Q4_K);
        EXPECT_L(&M, l, "attn_q", GGUF_Q3_K);
        EXPECT_L(&M, l, "attn_k", GGUF_Q3_K);
        EXPECT_L(&M, l, "ffn_gate", GGUF_Q3_K);
        EXPECT_L(&M, l, "ffn_up", GGUF_Q3_K);
    }
}

Test(lq_mix, q3_k_s_and_q3_k_l)
{
    build(&M, 8, 256, 256, 512, 512, true);
    plan(&M, LQ_FTYPE_MOSTLY_Q3_K_S, NULL);
    EXPECT(&M, "output.weight", GGUF_Q6_K);
    EXPECT(&M, "token_embd.weight", GGUF_Q3_K);
    for (int l = 0; l < 8; l++) {
        EXPECT_L(&M, l, "attn_v", GGUF_Q3_K);
        EXPECT_L(&M, l, "ffn_down", GGUF_Q3_K);
        EXPECT_L(&M, l, "attn_output", GGUF_Q3_K);
        EXPECT_L(&M, l, "ffn_up", GGUF_Q3_K);
    }
    plan(&M, LQ_FTYPE_MOSTLY_Q3_K_L, NULL);
    for (int l = 0; l < 8; l++) {
        EXPECT_L(&M, l, "attn_v", GGUF_Q5_K);
        EXPECT_L(&M, l, "ffn_down", GGUF_Q5_K);
        EXPECT_L(&M, l, "attn_output", GGUF_Q5_K);
        EXPECT_L(&M, l, "attn_q", GGUF_Q3_K);
    }
}

Test(lq_mix, q5_k_m_and_q5_k_s)
{
    build(&M, 16, 256, 256, 512, 512, true);
    plan(&M, LQ_FTYPE_MOSTLY_Q5_K_M, NULL);
    /* use_more_bits(i, 16): i < 2, i >= 14, (i - 2) % 3 == 2 -> 0 1 4 7 10 13 14 15 */
    const int more[] = {0, 1, 4, 7, 10, 13, 14, 15};
    for (int l = 0; l < 16; l++) {
        bool m = false;
        for (size_t k = 0; k < sizeof more / sizeof more[0]; k++)
            m |= more[k] == l;
        EXPECT_L(&M, l, "attn_v", m ? GGUF_Q6_K : GGUF_Q5_K);
        EXPECT_L(&M, l, "ffn_down", m ? GGUF_Q6_K : GGUF_Q5_K);
        EXPECT_L(&M, l, "attn_output", GGUF_Q5_K);
        EXPECT_L(&M, l, "ffn_gate", GGUF_Q5_K);
    }
    EXPECT(&M, "output.weight", GGUF_Q6_K);
    EXPECT(&M, "token_embd.weight", GGUF_Q5_K);
    plan(&M, LQ_FTYPE_MOSTLY_Q5_K_S, NULL);
    for (int l = 0; l < 16; l++) {
        EXPECT_L(&M, l, "attn_v", GGUF_Q5_K);
        EXPECT_L(&M, l, "ffn_down", GGUF_Q5_K);
    }
    EXPECT(&M, "output.weight", GGUF_Q6_K);
}

Test(lq_mix, q2_k)
{
    build(&M, 8, 256, 256, 512, 512, true);
    plan(&M, LQ_FTYPE_MOSTLY_Q2_K, NULL); /* no GQA: attn_v Q3_K */
    EXPECT(&M, "output.weight", GGUF_Q6_K);
    EXPECT(&M, "token_embd.weight", GGUF_Q2_K);
    for (int l = 0; l < 8; l++) {
        EXPECT_L(&M, l, "attn_v", GGUF_Q3_K);
        EXPECT_L(&M, l, "ffn_down", GGUF_Q3_K);
        EXPECT_L(&M, l, "attn_output", GGUF_Q3_K);
        EXPECT_L(&M, l, "attn_q", GGUF_Q2_K);
        EXPECT_L(&M, l, "attn_k", GGUF_Q2_K);
        EXPECT_L(&M, l, "ffn_up", GGUF_Q2_K);
        EXPECT_L(&M, l, "ffn_gate", GGUF_Q2_K);
    }
    M.m.n_head = 32;
    M.m.n_head_kv = 8; /* GQA 4: attn_v Q4_K */
    plan(&M, LQ_FTYPE_MOSTLY_Q2_K, NULL);
    for (int l = 0; l < 8; l++)
        EXPECT_L(&M, l, "attn_v", GGUF_Q4_K);
}

Test(lq_mix, q4_k_s)
{
    build(&M, 16, 256, 256, 512, 512, true);
    plan(&M, LQ_FTYPE_MOSTLY_Q4_K_S, NULL);
    for (int l = 0; l < 16; l++) {
        EXPECT_L(&M, l, "attn_v", l < 4 ? GGUF_Q5_K : GGUF_Q4_K);  /* first four attn_v */
        EXPECT_L(&M, l, "ffn_down", l < 2 ? GGUF_Q5_K : GGUF_Q4_K); /* n_layer/8 = 2 */
        EXPECT_L(&M, l, "attn_output", GGUF_Q4_K);
    }
    EXPECT(&M, "output.weight", GGUF_Q6_K);
    EXPECT(&M, "token_embd.weight", GGUF_Q4_K);
}

Test(lq_mix, legacy_and_float_types)
{
    build(&M, 4, 256, 256, 512, 512, true);
    plan(&M, LQ_FTYPE_MOSTLY_Q8_0, NULL);
    EXPECT(&M, "output.weight", GGUF_Q8_0);
    EXPECT(&M, "token_embd.weight", GGUF_Q8_0);
    EXPECT_L(&M, 2, "attn_v", GGUF_Q8_0);
    plan(&M, LQ_FTYPE_MOSTLY_Q4_0, NULL);
    EXPECT(&M, "output.weight", GGUF_Q6_K); /* output goes to Q6_K unless the base is Q8_0 */
    EXPECT(&M, "token_embd.weight", GGUF_Q4_0);
    EXPECT_L(&M, 0, "ffn_down", GGUF_Q4_0);
    plan(&M, LQ_FTYPE_MOSTLY_Q5_1, NULL);
    EXPECT(&M, "output.weight", GGUF_Q6_K);
    EXPECT_L(&M, 1, "attn_q", GGUF_Q5_1);
    /* with an importance matrix, Q4_0 gives the first n_layer/8 ffn_down Q4_1 (none for 4 layers) */
    build(&M, 16, 256, 256, 512, 512, true);
    lq_mix_params p = lq_mix_params_default();
    p.has_imatrix = true;
    plan(&M, LQ_FTYPE_MOSTLY_Q4_0, &p);
    EXPECT_L(&M, 0, "ffn_down", GGUF_Q4_1);
    EXPECT_L(&M, 1, "ffn_down", GGUF_Q4_1);
    EXPECT_L(&M, 2, "ffn_down", GGUF_Q4_0);
    plan(&M, LQ_FTYPE_MOSTLY_Q5_0, &p);
    EXPECT_L(&M, 1, "ffn_down", GGUF_Q5_1);
    EXPECT_L(&M, 2, "ffn_down", GGUF_Q5_0);
    /* float file types: every 2-D weight converted, norms kept */
    plan(&M, LQ_FTYPE_MOSTLY_F16, NULL);
    EXPECT(&M, "output.weight", GGUF_F16);
    EXPECT(&M, "token_embd.weight", GGUF_F16);
    EXPECT_L(&M, 3, "attn_v", GGUF_F16);
    EXPECT_L(&M, 3, "attn_norm", GGUF_F32);
    plan(&M, LQ_FTYPE_MOSTLY_BF16, NULL);
    EXPECT_L(&M, 3, "ffn_down", GGUF_BF16);
    plan(&M, LQ_FTYPE_ALL_F32, NULL);
    EXPECT_L(&M, 3, "ffn_down", GGUF_F32);
}

Test(lq_mix, tied_embeddings)
{
    build(&M, 4, 256, 256, 512, 512, false); /* no output.weight */
    plan(&M, LQ_FTYPE_MOSTLY_Q4_K_M, NULL);
    EXPECT(&M, "token_embd.weight", GGUF_Q6_K);
    plan(&M, LQ_FTYPE_MOSTLY_Q8_0, NULL);
    EXPECT(&M, "token_embd.weight", GGUF_Q8_0);
    plan(&M, LQ_FTYPE_MOSTLY_Q4_0, NULL);
    EXPECT(&M, "token_embd.weight", GGUF_Q6_K);
    lq_mix_params p = lq_mix_params_default();
    p.output_tensor_type = GGUF_Q5_0; /* applies to the tied embedding */
    plan(&M, LQ_FTYPE_MOSTLY_Q4_K_M, &p);
    EXPECT(&M, "token_embd.weight", GGUF_Q5_0);
}

Test(lq_mix, moe_and_70b_rules)
{
    build(&M, 8, 256, 256, 512, 512, true);
    M.m.n_expert = 8;
    plan(&M, LQ_FTYPE_MOSTLY_Q4_K_M, NULL);
    EXPECT_L(&M, 0, "attn_v", GGUF_Q8_0);
    EXPECT_L(&M, 0, "attn_k", GGUF_Q8_0);
    EXPECT_L(&M, 0, "attn_output", GGUF_Q5_K);
    EXPECT_L(&M, 0, "attn_q", GGUF_Q4_K);
    /* layers come from the names for MoE: blk.1 gets use_more_bits(1, 8) = false */
    EXPECT_L(&M, 1, "ffn_down", GGUF_Q4_K);
    EXPECT_L(&M, 0, "ffn_down", GGUF_Q6_K);

    build(&M, 80, 256, 256, 512, 512, true);
    M.m.n_head = 64;
    M.m.n_head_kv = 8; /* a 70B Llama: Q3_K/Q4_K attn_v become Q5_K */
    plan(&M, LQ_FTYPE_MOSTLY_Q4_K_M, NULL);
    EXPECT_L(&M, 5, "attn_v", GGUF_Q6_K);  /* use_more_bits: i < 10 */
    EXPECT_L(&M, 10, "attn_v", GGUF_Q5_K); /* (10 - 10) % 3 = 0: Q4_K, raised to Q5_K */
    EXPECT_L(&M, 11, "attn_v", GGUF_Q5_K);
    EXPECT_L(&M, 12, "attn_v", GGUF_Q6_K); /* (12 - 10) % 3 = 2 */
    EXPECT_L(&M, 12, "attn_q", GGUF_Q4_K);
    plan(&M, LQ_FTYPE_MOSTLY_Q3_K_S, NULL);
    EXPECT_L(&M, 40, "attn_v", GGUF_Q5_K);
    /* 80 layers, no GQA: llama.cpp's 65B, no raise; an 80-layer Qwen2 is 70B with or without */
    M.m.n_head_kv = 64;
    plan(&M, LQ_FTYPE_MOSTLY_Q3_K_S, NULL);
    EXPECT_L(&M, 40, "attn_v", GGUF_Q3_K);
    M.m.arch = "qwen2";
    plan(&M, LQ_FTYPE_MOSTLY_Q3_K_S, NULL);
    EXPECT_L(&M, 40, "attn_v", GGUF_Q5_K);
    M.m.arch = "qwen3"; /* Qwen3 has no 80-layer type */
    M.m.n_head_kv = 8;
    plan(&M, LQ_FTYPE_MOSTLY_Q3_K_S, NULL);
    EXPECT_L(&M, 40, "attn_v", GGUF_Q3_K);
}

Test(lq_mix, falcon_rules)
{
    build(&M, 16, 256, 256, 512, 512, true);
    M.m.arch = "falcon";
    plan(&M, LQ_FTYPE_MOSTLY_Q4_K_M, NULL);
    EXPECT(&M, "output.weight", GGUF_Q8_0);
    EXPECT_L(&M, 0, "ffn_down", GGUF_Q6_K); /* < n_layer/16 */
    EXPECT_L(&M, 1, "ffn_down", GGUF_Q5_K); /* use_more_bits(1, 16) */
    EXPECT_L(&M, 2, "ffn_down", GGUF_Q4_K);
    plan(&M, LQ_FTYPE_MOSTLY_Q3_K_M, NULL);
    EXPECT_L(&M, 0, "ffn_down", GGUF_Q5_K);
    EXPECT_L(&M, 1, "ffn_down", GGUF_Q4_K);
    EXPECT_L(&M, 2, "ffn_down", GGUF_Q3_K);
    EXPECT_L(&M, 2, "attn_output", GGUF_Q3_K);
}

/* ---------------------------------------------------------------- categories from the caller */

Test(lq_mix, category_names)
{
    cr_expect_eq(lq_mix_category_of_name("output.weight"), LQ_CAT_OUTPUT);
    cr_expect_eq(lq_mix_category_of_name("token_embd.weight"), LQ_CAT_TOKEN_EMBD);
    cr_expect_eq(lq_mix_category_of_name("blk.3.attn_v.weight"), LQ_CAT_ATTN_V);
    cr_expect_eq(lq_mix_category_of_name("blk.3.attn_qkv.weight"), LQ_CAT_ATTN_QKV);
    cr_expect_eq(lq_mix_category_of_name("blk.3.ffn_down_exps.weight"), LQ_CAT_FFN_DOWN);
    cr_expect_eq(lq_mix_category_of_name("blk.3.attn_q.bias"), LQ_CAT_OTHER);
    cr_expect_eq(lq_mix_category_of_name("blk.3.attn_q_norm.weight"), LQ_CAT_OTHER);
    cr_expect_str_eq(lq_mix_category_name(LQ_CAT_FFN_DOWN), "ffn_down");
    cr_expect_str_eq(lq_mix_category_name(LQ_CAT_NONE), "none");
    cr_expect_null(lq_mix_category_name(LQ_CAT_COUNT_));
}

/* The same model with every category and layer stated gives the same plan as by names. */
Test(lq_mix, stated_categories_match_names)
{
    static model byname;
    build(&byname, 12, 256, 128, 512, 512, true);
    plan(&byname, LQ_FTYPE_MOSTLY_Q4_K_M, NULL);
    build(&M, 12, 256, 128, 512, 512, true);
    for (size_t i = 0; i < M.n; i++) {
        M.t[i].category = lq_mix_category_of_name(M.names[i]);
        if (sscanf(M.names[i], "blk.%d.", &M.t[i].layer) != 1)
            M.t[i].layer = -1;
    }
    plan(&M, LQ_FTYPE_MOSTLY_Q4_K_M, NULL);
    for (size_t i = 0; i < M.n; i++)
        cr_expect_eq(M.c[i].type, byname.c[i].type, "%s", M.names[i]);
}

/* A stated category wins over the name: here the names say nothing, the categories all. */
Test(lq_mix, stated_category_wins)
{
    build(&M, 8, 256, 256, 512, 512, true);
    for (size_t i = 0; i < M.n; i++) {
        int l = -1;
        sscanf(M.names[i], "blk.%d.", &l);
        M.t[i].category = lq_mix_category_of_name(M.names[i]);
        M.t[i].layer = l;
        if (M.t[i].category == LQ_CAT_ATTN_V || M.t[i].category == LQ_CAT_FFN_DOWN) /* the name no longer tells */
            snprintf(M.names[i], sizeof M.names[i], "blk.%d.%s.weight", l,
                     M.t[i].category == LQ_CAT_ATTN_V ? "vvv" : "down2");
    }
    plan(&M, LQ_FTYPE_MOSTLY_Q4_K_M, NULL);
    EXPECT(&M, "blk.0.vvv.weight", GGUF_Q6_K); /* use_more_bits(0, 8) */
    EXPECT(&M, "blk.1.vvv.weight", GGUF_Q4_K);
    EXPECT(&M, "blk.0.down2.weight", GGUF_Q6_K);
    EXPECT(&M, "blk.1.down2.weight", GGUF_Q4_K);
    /* MoE: the stated layer, not the name's, picks the rule */
    M.m.n_expert = 4;
    for (size_t i = 0; i < M.n; i++)
        if (!strcmp(M.names[i], "blk.1.down2.weight"))
            M.t[i].layer = 0;
    plan(&M, LQ_FTYPE_MOSTLY_Q4_K_M, NULL);
    EXPECT(&M, "blk.1.down2.weight", GGUF_Q6_K);
    for (size_t i = 0; i < M.n; i++)
        if (!strcmp(M.names[i], "blk.1.down2.weight"))
            M.t[i].layer = 8; /* out of range */
    char msg[LQ_MSG_SIZE];
    cr_expect_eq(lq_mix_plan(LQ_FTYPE_MOSTLY_Q4_K_M, &M.m, M.t, M.n, NULL, M.c, msg), LQ_ERR_ARG);
    cr_expect(strstr(msg, "layer out of range"), "%s", msg);
    M.t[0].category = LQ_CAT_COUNT_;
    cr_expect_eq(lq_mix_plan(LQ_FTYPE_MOSTLY_Q4_K_M, &M.m, M.t, M.n, NULL, M.c, msg), LQ_ERR_ARG);
    cr_expect(strstr(msg, "unknown category"), "%s", msg);
}

/* ---------------------------------------------------------------- fallbacks */

Test(lq_mix, fallback_not_multiple_of_256)
{
    /* dim 96: a multiple of 32, not of 256 */
    build(&M, 6, 96, 96, 512, 512, true);
    plan(&M, LQ_FTYPE_MOSTLY_Q4_K_M, NULL);
    EXPECT(&M, "output.weight", GGUF_Q8_0);     /* output rule, not a fallback */
    EXPECT(&M, "token_embd.weight", GGUF_Q5_0); /* Q4_K -> Q5_0 */
    EXPECT_L(&M, 0, "attn_q", GGUF_Q5_0);
    EXPECT_L(&M, 2, "attn_v", GGUF_Q8_0);      /* Q6_K -> Q8_0 */
    EXPECT_L(&M, 2, "ffn_down", GGUF_Q6_K);    /* its rows are 512 long */
    EXPECT_L(&M, 0, "ffn_down", GGUF_Q4_K);
    size_t i = 0;
    while (strcmp(M.names[i], "token_embd.weight"))
        i++;
    cr_expect(M.c[i].fallback);
    cr_expect_eq(M.c[i].wanted, GGUF_Q4_K);
    plan(&M, LQ_FTYPE_MOSTLY_Q5_K_S, NULL);
    EXPECT_L(&M, 0, "attn_q", GGUF_Q5_1); /* Q5_K -> Q5_1 */
    plan(&M, LQ_FTYPE_MOSTLY_Q2_K, NULL);
    EXPECT_L(&M, 0, "attn_q", GGUF_Q4_0); /* Q2_K -> Q4_0 */
    EXPECT_L(&M, 0, "attn_v", GGUF_Q4_0); /* Q3_K -> Q4_0 */
    plan(&M, LQ_FTYPE_MOSTLY_Q3_K_M, NULL);
    EXPECT_L(&M, 0, "attn_q", GGUF_Q4_0);
}

Test(lq_mix, fallback_not_multiple_of_32)
{
    build(&M, 2, 80, 80, 512, 512, true); /* 80: not a multiple of 32 */
    /* output.weight: Q8_0 by the output rule, and Q8_0 has no fallback: llama.cpp gives up */
    char msg[LQ_MSG_SIZE];
    cr_expect_eq(lq_mix_plan(LQ_FTYPE_MOSTLY_Q4_K_M, &M.m, M.t, M.n, NULL, M.c, msg), LQ_ERR_SHAPE);
    cr_expect(strstr(msg, "output.weight"), "%s", msg);
    lq_mix_params p = lq_mix_params_default();
    p.output_tensor_type = GGUF_F16; /* explicit: no rule, no fallback */
    plan(&M, LQ_FTYPE_MOSTLY_Q4_K_M, &p);
    EXPECT(&M, "output.weight", GGUF_F16);
    EXPECT(&M, "token_embd.weight", GGUF_F16); /* Q4_K -> Q5_0 does not fit -> F16 */
    EXPECT_L(&M, 0, "attn_q", GGUF_F16);
    EXPECT_L(&M, 0, "attn_v", GGUF_F16);
    EXPECT_L(&M, 0, "ffn_down", GGUF_Q4_K); /* rows of 512; use_more_bits(0, 2) = false */
    EXPECT_L(&M, 1, "ffn_down", GGUF_Q6_K); /* use_more_bits(1, 2) = true */
}

Test(lq_mix, no_fallback_is_an_error)
{
    build(&M, 2, 80, 80, 512, 512, false); /* tied, so no output.weight to trip first */
    char msg[LQ_MSG_SIZE];
    /* Q4_0 rows of 80 cannot be made and llama.cpp defines no fallback for Q4_0 */
    cr_expect_eq(lq_mix_plan(LQ_FTYPE_MOSTLY_Q4_0, &M.m, M.t, M.n, NULL, M.c, msg), LQ_ERR_SHAPE);
    cr_expect(strstr(msg, "token_embd.weight") || strstr(msg, "attn"), "%s", msg);
    lq_mix_params p = lq_mix_params_default();
    p.token_embedding_type = GGUF_Q4_K; /* an explicit type that does not fit */
    cr_expect_eq(lq_mix_plan(LQ_FTYPE_MOSTLY_F16, &M.m, M.t, M.n, &p, M.c, msg), LQ_ERR_SHAPE);
    cr_expect(strstr(msg, "token_embd.weight"), "%s", msg);
}

/* ---------------------------------------------------------------- overrides */

Test(lq_mix, overrides_first_match_wins)
{
    build(&M, 8, 256, 256, 512, 512, true);
    lq_mix_overrides *o = lq_mix_overrides_create();
    char msg[LQ_MSG_SIZE];
    cr_assert_eq(lq_mix_overrides_add(o, "blk\\.1\\.=q5_0", msg), LQ_OK, "%s", msg);
    cr_assert_eq(lq_mix_overrides_add(o, "ATTN_V=Q8_0", msg), LQ_OK, "%s", msg); /* lower-cased */
    cr_assert_eq(lq_mix_overrides_add(o, "ffn_(up|gate)=f16", msg), LQ_OK, "%s", msg);
    cr_expect_eq(lq_mix_overrides_count(o), 3);
    lq_mix_params p = lq_mix_params_default();
    p.overrides = o;
    plan(&M, LQ_FTYPE_MOSTLY_Q4_K_M, &p);
    EXPECT_L(&M, 1, "attn_v", GGUF_Q5_0); /* first rule wins over the attn_v rule */
    EXPECT_L(&M, 1, "attn_q", GGUF_Q5_0);
    EXPECT_L(&M, 1, "ffn_up", GGUF_Q5_0);
    EXPECT_L(&M, 1, "attn_norm", GGUF_F32); /* never quantized, whatever the rules say */
    EXPECT_L(&M, 0, "attn_v", GGUF_Q8_0);
    EXPECT_L(&M, 0, "ffn_up", GGUF_F16);
    EXPECT_L(&M, 3, "ffn_gate", GGUF_F16);
    EXPECT_L(&M, 0, "ffn_down", GGUF_Q6_K); /* untouched: rules */
    EXPECT_L(&M, 3, "ffn_down", GGUF_Q4_K);
    /* overrides only act for quantized file types */
    plan(&M, LQ_FTYPE_MOSTLY_F16, &p);
    EXPECT_L(&M, 0, "attn_v", GGUF_F16);
    lq_mix_overrides_free(o);
}

Test(lq_mix, overrides_skip_the_attn_v_counter)
{
    /* llama.cpp counts attn_v only when its rules run, so overriding blk.0.attn_v shifts
     * the counter: blk.1.attn_v is then the first and gets use_more_bits(0, 8) = true. */
    build(&M, 8, 256, 256, 512, 512, true);
    lq_mix_overrides *o = lq_mix_overrides_create();
    char msg[LQ_MSG_SIZE];
    cr_assert_eq(lq_mix_overrides_add(o, "^blk\\.0\\.attn_v=q4_K", msg), LQ_OK, "%s", msg);
    lq_mix_params p = lq_mix_params_default();
    p.overrides = o;
    plan(&M, LQ_FTYPE_MOSTLY_Q4_K_M, &p);
    EXPECT_L(&M, 0, "attn_v", GGUF_Q4_K);
    EXPECT_L(&M, 1, "attn_v", GGUF_Q6_K);
    plan(&M, LQ_FTYPE_MOSTLY_Q4_K_M, NULL);
    EXPECT_L(&M, 0, "attn_v", GGUF_Q6_K);
    EXPECT_L(&M, 1, "attn_v", GGUF_Q4_K);
    lq_mix_overrides_free(o);
}

Test(lq_mix, override_parse_errors)
{
    lq_mix_overrides *o = lq_mix_overrides_create();
    char msg[LQ_MSG_SIZE];
    cr_expect_eq(lq_mix_overrides_add(o, "attn_v", msg), LQ_ERR_ARG);
    cr_expect_eq(lq_mix_overrides_add(o, "=q8_0", msg), LQ_ERR_ARG);
    cr_expect_eq(lq_mix_overrides_add(o, "attn_v=", msg), LQ_ERR_ARG);
    cr_expect_eq(lq_mix_overrides_add(o, "attn_v=q9_9", msg), LQ_ERR_ARG);
    cr_expect_eq(lq_mix_overrides_add(o, "attn_v=q8_K", msg), LQ_ERR_ARG); /* not writable */
    cr_expect_eq(lq_mix_overrides_add(o, "attn_(v=q8_0", msg), LQ_ERR_ARG);
    cr_expect(strstr(msg, "regular expression"), "%s", msg);
    cr_expect_eq(lq_mix_overrides_count(o), 0);
    lq_mix_overrides_free(o);
}

Test(lq_mix, override_falls_back_too)
{
    build(&M, 2, 96, 96, 512, 512, true);
    lq_mix_overrides *o = lq_mix_overrides_create();
    char msg[LQ_MSG_SIZE];
    cr_assert_eq(lq_mix_overrides_add(o, "attn_q=q6_K", msg), LQ_OK);
    lq_mix_params p = lq_mix_params_default();
    p.overrides = o;
    plan(&M, LQ_FTYPE_MOSTLY_Q4_K_M, &p);
    EXPECT_L(&M, 0, "attn_q", GGUF_Q8_0); /* Q6_K -> Q8_0 */
    lq_mix_overrides_free(o);
}

Test(lq_mix, output_and_embedding_types_and_pure)
{
    build(&M, 6, 256, 128, 768, 4096, true);
    lq_mix_params p = lq_mix_params_default();
    p.output_tensor_type = GGUF_Q8_0;
    p.token_embedding_type = GGUF_F16;
    plan(&M, LQ_FTYPE_MOSTLY_Q4_K_M, &p);
    EXPECT(&M, "output.weight", GGUF_Q8_0);
    EXPECT(&M, "token_embd.weight", GGUF_F16);
    EXPECT_L(&M, 2, "attn_v", GGUF_Q6_K);
    /* explicit types apply to float file types as well */
    plan(&M, LQ_FTYPE_MOSTLY_BF16, &p);
    EXPECT(&M, "output.weight", GGUF_Q8_0);
    EXPECT(&M, "token_embd.weight", GGUF_F16);
    EXPECT_L(&M, 2, "attn_v", GGUF_BF16);

    lq_mix_params pure = lq_mix_params_default();
    pure.pure = true;
    plan(&M, LQ_FTYPE_MOSTLY_Q4_K_M, &pure);
    EXPECT(&M, "output.weight", GGUF_Q4_K);
    EXPECT(&M, "token_embd.weight", GGUF_Q4_K);
    EXPECT_L(&M, 2, "attn_v", GGUF_Q4_K);
    EXPECT_L(&M, 5, "ffn_down", GGUF_Q4_K);
    EXPECT_L(&M, 5, "ffn_norm", GGUF_F32);
    pure.output_tensor_type = GGUF_Q6_K;
    plan(&M, LQ_FTYPE_MOSTLY_Q4_K_M, &pure);
    EXPECT(&M, "output.weight", GGUF_Q6_K);

    lq_mix_params leave = lq_mix_params_default();
    leave.leave_output = true;
    plan(&M, LQ_FTYPE_MOSTLY_Q4_K_M, &leave);
    EXPECT(&M, "output.weight", GGUF_F32);
}

Test(lq_mix, bad_arguments)
{
    build(&M, 2, 256, 256, 512, 512, true);
    char msg[LQ_MSG_SIZE];
    cr_expect_eq(lq_mix_plan(4, &M.m, M.t, M.n, NULL, M.c, msg), LQ_ERR_ARG);
    cr_expect_eq(lq_mix_plan(15, NULL, M.t, M.n, NULL, M.c, msg), LQ_ERR_ARG);
    lq_mix_params p = lq_mix_params_default();
    p.output_tensor_type = GGUF_Q8_K;
    cr_expect_eq(lq_mix_plan(15, &M.m, M.t, M.n, &p, M.c, msg), LQ_ERR_TYPE);
    cr_expect_eq(lq_mix_plan(15, &M.m, NULL, 0, NULL, NULL, msg), LQ_OK);
}

/* ---------------------------------------------------------------- the demo model vs llama.cpp */

/* with_arch: categories and layers from the architecture description, as the quantizer's
 * plan fills them. */
static void check_reference(const char *ref, int ftype, bool with_arch)
{
    TU_REQUIRE_SHARED();
    char *fp = tu_shared_path("reference/classics-7m-f32.gguf");
    char *rp = tu_shared_path(ref);
    char msg[GGUF_MSG_SIZE];
    gguf_reader *in = NULL, *out = NULL;
    cr_assert_eq(gguf_open(fp, &in, msg), GGUF_OK, "%s: %s", fp, msg);
    cr_assert_eq(gguf_open(rp, &out, msg), GGUF_OK, "%s: %s", rp, msg);
    size_t n = (size_t)gguf_n_tensors(in);
    cr_assert_eq((int64_t)n, gguf_n_tensors(out));
    const char **names = calloc(n, sizeof *names);
    size_t *order = calloc(n, sizeof *order);
    lq_mix_tensor *t = calloc(n, sizeof *t);
    lq_mix_choice *c = calloc(n, sizeof *c);
    for (size_t i = 0; i < n; i++)
        names[i] = gguf_tensor_at(in, (int64_t)i)->name;
    cr_assert_eq(lq_mix_sort(names, n, order), LQ_OK);
    for (size_t k = 0; k < n; k++) {
        const gguf_tensor *g = gguf_tensor_at(in, (int64_t)order[k]);
        t[k].name = g->name;
        t[k].n_dims = g->n_dims;
        memcpy(t[k].ne, g->ne, sizeof t[k].ne);
        t[k].type = g->type;
        if (with_arch) {
            t[k].category = arch_mix_category(arch_find("llama"), g->name, &t[k].layer);
            cr_assert_neq(t[k].category, LQ_CAT_NONE, "%s", g->name);
        }
    }
    int64_t nl = 0, nh = 0, nkv = 0;
    cr_assert_eq(gguf_get_int(in, "llama.block_count", &nl), GGUF_OK);
    cr_assert_eq(gguf_get_int(in, "llama.attention.head_count", &nh), GGUF_OK);
    cr_assert_eq(gguf_get_int(in, "llama.attention.head_count_kv", &nkv), GGUF_OK);
    lq_mix_model m = {"llama", (int)nl, (int)nh, (int)nkv, 0};
    char lmsg[LQ_MSG_SIZE];
    cr_assert_eq(lq_mix_plan(ftype, &m, t, n, NULL, c, lmsg), LQ_OK, "%s", lmsg);
    for (size_t k = 0; k < n; k++) {
        /* same order as llama-quantize wrote, same type */
        const gguf_tensor *r = gguf_tensor_at(out, (int64_t)k);
        cr_expect_str_eq(r->name, t[k].name, "position %zu", k);
        cr_expect_eq(c[k].type, r->type, "%s: planned %s, llama-quantize wrote %s", t[k].name,
                     gguf_type_info(c[k].type)->name, gguf_type_info(r->type)->name);
    }
    free(names);
    free(order);
    free(t);
    free(c);
    gguf_close(in);
    gguf_close(out);
    free(fp);
    free(rp);
}

Test(lq_mix_reference, q4_k_m) { check_reference("reference/classics-7m-q4_k_m.gguf", 15, false); }
Test(lq_mix_reference, q8_0) { check_reference("reference/classics-7m-q8_0.gguf", 7, false); }
Test(lq_mix_reference, q4_0) { check_reference("reference/classics-7m-q4_0.gguf", 2, false); }
Test(lq_mix_reference, q4_k_m_arch_categories) { check_reference("reference/classics-7m-q4_k_m.gguf", 15, true); }
