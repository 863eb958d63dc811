/* arch: every registered description is consistent (names, categories, shapes, flags, GPTQ
 * groups, keys), the look-ups round-trip, and the computed tensors and helpers give known
 * values. A new architecture file is checked by these tests without adding any. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "arch/arch.h"
#include "libquant/lq_mix.h"

#define FOR_EACH_ARCH(d) \
    for (size_t i_ = 0; i_ < arch_count(); i_++) \
        for (const arch_desc *d = arch_at(i_); d; d = NULL)

/* ---------------------------------------------------------------- registry */

Test(arch, registry_names_unique_and_found)
{
    cr_assert_geq(arch_count(), 1);
    cr_expect_null(arch_at(arch_count()));
    cr_expect_null(arch_find("gpt2"));
    cr_expect_null(arch_find(NULL));
    cr_expect_null(arch_find_hf("GPT2LMHeadModel", NULL));
    cr_expect_eq(arch_find("llama"), arch_find_hf("LlamaForCausalLM", NULL));
    FOR_EACH_ARCH(d) {
        cr_assert_not_null(d->name);
        /* the first description of a GGUF name is the one found */
        for (size_t j = 0; j < i_; j++)
            if (!strcmp(arch_at(j)->name, d->name))
                cr_expect_neq(arch_find(d->name), d);
        cr_assert_geq(d->n_classes, 1, "%s", d->name);
        for (size_t c = 0; c < d->n_classes; c++) {
            const arch_hf_class *cls = NULL;
            cr_expect_eq(arch_find_hf(d->classes[c].name, &cls), d, "%s", d->classes[c].name);
            cr_expect_eq(cls, &d->classes[c]);
            cr_expect_gt(strlen(d->classes[c].model_type), 0);
            cr_expect(d->classes[c].defaults.rope_base > 0 && d->classes[c].defaults.rms_eps > 0,
                      "%s defaults", d->classes[c].name);
        }
    }
    char names[256], hf[512];
    arch_list_names(false, names, sizeof names);
    arch_list_names(true, hf, sizeof hf);
    cr_expect(strstr(names, "llama") == names, "%s", names);
    cr_expect(strstr(hf, "LlamaForCausalLM") != NULL, "%s", hf);
    char small[8];
    arch_list_names(true, small, sizeof small); /* cut, still a string */
    cr_expect_lt(strlen(small), sizeof small);
}

/* ---------------------------------------------------------------- keys */

Test(arch, keys_consistent)
{
    FOR_EACH_ARCH(d) {
        int file_type = 0;
        bool seen[ARCH_HP_COUNT_] = {false};
        for (size_t i = 0; i < d->n_keys; i++) {
            const arch_key *k = &d->keys[i];
            cr_assert_lt((unsigned)k->id, ARCH_HP_COUNT_, "%s key %zu", d->name, i);
            if (k->id == ARCH_HP_FILE_TYPE) {
                file_type++;
                cr_expect_null(k->gguf);
                continue;
            }
            cr_expect_not(seen[k->id], "%s: %s twice", d->name, k->gguf ? k->gguf : k->hf);
            seen[k->id] = true;
            cr_expect(k->hf || k->gguf, "%s key %zu names nothing", d->name, i);
            cr_expect_leq(k->lo, k->hi, "%s %s", d->name, k->gguf);
            if (k->flags & ARCH_KEY_HF_REQUIRED)
                cr_expect_not_null(k->hf, "%s: a required key without a config.json name", d->name);
            if (k->flags & ARCH_KEY_GGUF_REQUIRED)
                cr_expect_not_null(k->gguf);
            /* GGUF suffixes are unique */
            for (size_t j = 0; j < i; j++)
                if (k->gguf && d->keys[j].gguf)
                    cr_expect_str_neq(k->gguf, d->keys[j].gguf, "%s", d->name);
        }
        cr_expect_eq(file_type, 1, "%s: general.file_type placed %d times", d->name, file_type);
        /* what the readers need */
        arch_hp need[] = {ARCH_HP_N_LAYER, ARCH_HP_N_EMBD, ARCH_HP_N_FF, ARCH_HP_N_HEAD, ARCH_HP_N_HEAD_KV,
                          ARCH_HP_RMS_EPS, ARCH_HP_ROPE_BASE, ARCH_HP_N_VOCAB, ARCH_HP_KEY_LENGTH};
        for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
            cr_expect(seen[need[i]], "%s lacks hyper-parameter %d", d->name, need[i]);
    }
}

Test(arch, hp_get_set_round_trip)
{
    arch_hparams hp;
    memset(&hp, 0, sizeof hp);
    const arch_hp ids[] = {ARCH_HP_N_LAYER, ARCH_HP_N_CTX, ARCH_HP_N_EMBD, ARCH_HP_N_FF, ARCH_HP_N_HEAD,
                           ARCH_HP_N_HEAD_KV, ARCH_HP_ROPE_SCALING_FACTOR, ARCH_HP_ROPE_BASE, ARCH_HP_RMS_EPS,
                           ARCH_HP_KEY_LENGTH, ARCH_HP_N_VOCAB};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        arch_hp_set(&hp, ids[i], 100.0 + (double)i);
        cr_expect_eq(arch_hp_get(&hp, ids[i]), 100.0 + (double)i, "id %d", ids[i]);
    }
    cr_expect_eq(arch_hp_get(&hp, ARCH_HP_VALUE_LENGTH), hp.head_dim);
    cr_expect_eq(arch_hp_get(&hp, ARCH_HP_ROPE_DIM), hp.head_dim);
    arch_hp_set(&hp, ARCH_HP_FILE_TYPE, 7); /* no effect */
    cr_expect_eq(arch_hp_get(&hp, ARCH_HP_FILE_TYPE), 0);

    /* what the converter writes */
    const arch_desc *d = arch_find("llama");
    cr_assert_not_null(d);
    memset(&hp, 0, sizeof hp);
    for (size_t i = 0; i < d->n_keys; i++) {
        const arch_key *k = &d->keys[i];
        bool rope = k->id == ARCH_HP_ROPE_SCALING_TYPE || k->id == ARCH_HP_ROPE_SCALING_FACTOR;
        bool hd = k->id == ARCH_HP_KEY_LENGTH || k->id == ARCH_HP_VALUE_LENGTH;
        cr_expect_eq(arch_key_written(k, &hp), k->gguf && !rope && !hd, "%s", k->gguf ? k->gguf : "file_type");
    }
    hp.head_dim_given = true;
    hp.rope_scaling.type = ARCH_ROPE_SCALING_LINEAR;
    for (size_t i = 0; i < d->n_keys; i++)
        cr_expect_eq(arch_key_written(&d->keys[i], &hp), d->keys[i].gguf != NULL);
    hp.rope_scaling.type = ARCH_ROPE_SCALING_LLAMA3; /* a tensor, no keys */
    for (size_t i = 0; i < d->n_keys; i++)
        if (d->keys[i].id == ARCH_HP_ROPE_SCALING_TYPE)
            cr_expect_not(arch_key_written(&d->keys[i], &hp));
}

/* ---------------------------------------------------------------- tensors */

static void check_tensor_row(const arch_desc *d, const arch_tensor *t, bool layer)
{
    cr_assert_not_null(t->gguf, "%s", d->name);
    cr_expect_lt((unsigned)t->role, ARCH_ROLE_COUNT_, "%s %s", d->name, t->gguf);
    cr_expect(t->cat > LQ_CAT_NONE && t->cat < LQ_CAT_COUNT_, "%s %s: category not set", d->name, t->gguf);
    /* the mixture rules see the same category through the name fallback */
    char name[64];
    cr_assert(arch_tensor_name(d, t, 3, name, sizeof name));
    cr_expect_eq(lq_mix_category_of_name(name), t->cat, "%s %s: %s by name", d->name, name,
                 lq_mix_category_name(lq_mix_category_of_name(name)));
    cr_expect_eq(strncmp(name, "blk.", 4) == 0, layer, "%s", name);
    /* computed tensors have no HF name, all others do */
    bool computed = t->flags & ARCH_T_COMPUTED;
    cr_expect_eq(t->hf == NULL, computed, "%s %s", d->name, t->gguf);
    cr_expect_eq(t->compute != NULL, computed, "%s %s", d->name, t->gguf);
    if (computed)
        cr_expect(t->flags & ARCH_T_OPTIONAL, "%s: a computed tensor depends on the config", t->gguf);
    cr_expect(!(t->flags & ARCH_T_TIED) || t->role == ARCH_ROLE_OUTPUT, "%s: only output is tied", t->gguf);
    /* permutation only on Q/K weights, each its own */
    if (t->perm == ARCH_PERM_Q)
        cr_expect_eq(t->role, ARCH_ROLE_ATTN_Q);
    if (t->perm == ARCH_PERM_K)
        cr_expect_eq(t->role, ARCH_ROLE_ATTN_K);
    /* vectors are never quantized: categories of matrices only */
    if (!arch_tensor_is_matrix(t))
        cr_expect_eq(t->cat, LQ_CAT_OTHER, "%s %s", d->name, t->gguf);
    cr_expect_neq(t->ne0, ARCH_DIM_1, "%s %s", d->name, t->gguf);
}

Test(arch, tensors_consistent)
{
    FOR_EACH_ARCH(d) {
        bool role_seen[ARCH_ROLE_COUNT_] = {false};
        for (int pass = 0; pass < 2; pass++) {
            const arch_tensor *rows = pass ? d->layer : d->globals;
            size_t n = pass ? d->n_layer : d->n_globals;
            for (size_t i = 0; i < n; i++) {
                check_tensor_row(d, &rows[i], pass == 1);
                cr_expect_not(role_seen[rows[i].role], "%s: role %d twice", d->name, rows[i].role);
                role_seen[rows[i].role] = true;
                for (size_t j = 0; j < i; j++) {
                    cr_expect_str_neq(rows[i].gguf, rows[j].gguf, "%s", d->name);
                    if (rows[i].hf && rows[j].hf)
                        cr_expect_str_neq(rows[i].hf, rows[j].hf, "%s", d->name);
                }
            }
        }
        /* what every graph needs */
        arch_role need[] = {ARCH_ROLE_TOKEN_EMBD, ARCH_ROLE_OUTPUT_NORM, ARCH_ROLE_OUTPUT, ARCH_ROLE_ATTN_NORM,
                            ARCH_ROLE_ATTN_Q, ARCH_ROLE_ATTN_K, ARCH_ROLE_ATTN_V, ARCH_ROLE_ATTN_OUTPUT,
                            ARCH_ROLE_FFN_NORM, ARCH_ROLE_FFN_DOWN};
        for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
            const arch_tensor *t = arch_tensor_by_role(d, need[i]);
            cr_expect_not_null(t, "%s lacks role %d", d->name, need[i]);
            if (t && need[i] != ARCH_ROLE_OUTPUT)
                cr_expect_eq(t->flags & (ARCH_T_OPTIONAL | ARCH_T_TIED), 0u, "%s: %s is required", d->name, t->gguf);
        }
        cr_expect_not_null(d->hf_layer_prefix);
        cr_expect_eq(d->rope_scaling & ~((1u << ARCH_ROPE_SCALING_LINEAR) | (1u << ARCH_ROPE_SCALING_LLAMA3)), 0u);
    }
}

Test(arch, names_round_trip)
{
    FOR_EACH_ARCH(d) {
        const int layers[] = {0, 7, 12, 999999};
        for (int pass = 0; pass < 2; pass++) {
            const arch_tensor *rows = pass ? d->layer : d->globals;
            size_t n = pass ? d->n_layer : d->n_globals;
            for (size_t i = 0; i < n; i++) {
                for (size_t k = 0; k < (pass ? 4u : 1u); k++) {
                    char g[64], h[128];
                    int layer = -2;
                    cr_assert(arch_tensor_name(d, &rows[i], layers[k], g, sizeof g));
                    cr_expect_eq(arch_tensor_find(d, g, &layer), &rows[i], "%s", g);
                    cr_expect_eq(layer, pass ? layers[k] : -1, "%s", g);
                    cr_expect_eq(arch_tensor_is_layer(d, &rows[i]), pass == 1);
                    lq_mix_category c = arch_mix_category(d, g, &layer);
                    cr_expect_eq(c, rows[i].cat);
                    cr_expect_eq(layer, pass ? layers[k] : -1);
                    if (!rows[i].hf) {
                        cr_expect_not(arch_tensor_hf_name(d, &rows[i], layers[k], h, sizeof h));
                        continue;
                    }
                    cr_assert(arch_tensor_hf_name(d, &rows[i], layers[k], h, sizeof h));
                    cr_expect_eq(arch_tensor_find_hf(d, h, &layer), &rows[i], "%s", h);
                    cr_expect_eq(layer, pass ? layers[k] : -1, "%s", h);
                    cr_expect_not(arch_hf_ignored(h), "%s", h);
                }
            }
        }
        /* names that are not the description's */
        int layer = 5;
        const char *bad[] = {"blk.01.attn_q.weight", "blk..attn_q.weight", "blk.1234567.attn_q.weight",
                             "blk.0.attn_q", "attn_q.weight", "blk.0.nothing.weight", "blk.-1.attn_q.weight", ""};
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            cr_expect_null(arch_tensor_find(d, bad[i], &layer), "%s", bad[i]);
            cr_expect_eq(arch_mix_category(d, bad[i], &layer), LQ_CAT_NONE);
            cr_expect_eq(layer, -1);
        }
        cr_expect_null(arch_tensor_find_hf(d, "model.layers.00.input_layernorm.weight", &layer));
        cr_expect_null(arch_tensor_find_hf(d, "model.extra.weight", &layer));
        char tiny[8];
        cr_expect_not(arch_tensor_name(d, &d->layer[0], 10, tiny, sizeof tiny));
    }
    int layer;
    cr_expect_eq(arch_mix_category(NULL, "blk.0.attn_q.weight", &layer), LQ_CAT_NONE);
}

/* ---------------------------------------------------------------- GPTQ groups */

/* The input width a hook point sees. */
static arch_dim input_dim(arch_input in)
{
    return in == ARCH_INPUT_ATTN_OUT ? ARCH_DIM_Q : in == ARCH_INPUT_FFN_DOWN ? ARCH_DIM_FF : ARCH_DIM_EMBD;
}

Test(arch, groups_cover_the_linear_weights_once)
{
    FOR_EACH_ARCH(d) {
        int covered[64] = {0};
        cr_assert_lt(d->n_layer, 64u);
        int last_input = -1;
        for (size_t g = 0; g < d->n_groups; g++) {
            const arch_group *gr = &d->groups[g];
            cr_expect_lt((unsigned)gr->input, ARCH_INPUT_COUNT_);
            cr_expect_gt((int)gr->input, last_input, "%s: groups out of order", d->name);
            last_input = (int)gr->input;
            cr_expect_not_null(gr->weights[0], "%s: empty group", d->name);
            for (int w = 0; w <= ARCH_GROUP_MAX && gr->weights[w]; w++) {
                char name[64];
                snprintf(name, sizeof name, "blk.0.%s", gr->weights[w]);
                int layer;
                const arch_tensor *t = arch_tensor_find(d, name, &layer);
                cr_assert_not_null(t, "%s: group weight %s is no layer tensor", d->name, name);
                cr_expect(arch_tensor_is_matrix(t), "%s: %s is not a matrix", d->name, name);
                cr_expect_eq(t->ne0, input_dim(gr->input), "%s: %s does not read the group's input", d->name, name);
                covered[t - d->layer]++;
            }
            cr_expect_null(gr->weights[ARCH_GROUP_MAX]);
        }
        for (size_t i = 0; i < d->n_layer; i++)
            cr_expect_eq(covered[i], arch_tensor_is_matrix(&d->layer[i]) ? 1 : 0, "%s: %s in %d groups", d->name,
                         d->layer[i].gguf, covered[i]);
        /* global matrices are not GPTQ'd: token_embd and output only */
        for (size_t i = 0; i < d->n_globals; i++)
            if (arch_tensor_is_matrix(&d->globals[i]))
                cr_expect(d->globals[i].role == ARCH_ROLE_TOKEN_EMBD || d->globals[i].role == ARCH_ROLE_OUTPUT);
    }
}

/* ---------------------------------------------------------------- shapes and helpers */

Test(arch, dims)
{
    arch_hparams hp = {.n_embd = 64, .n_ff = 128, .n_vocab = 1000, .n_head = 4, .n_head_kv = 2, .head_dim = 32};
    cr_expect_eq(arch_dim_value(ARCH_DIM_1, &hp), 1);
    cr_expect_eq(arch_dim_value(ARCH_DIM_EMBD, &hp), 64);
    cr_expect_eq(arch_dim_value(ARCH_DIM_FF, &hp), 128);
    cr_expect_eq(arch_dim_value(ARCH_DIM_VOCAB, &hp), 1000);
    cr_expect_eq(arch_dim_value(ARCH_DIM_Q, &hp), 128);
    cr_expect_eq(arch_dim_value(ARCH_DIM_KV, &hp), 64);
    cr_expect_eq(arch_dim_value(ARCH_DIM_HEAD, &hp), 32);
    cr_expect_eq(arch_dim_value(ARCH_DIM_ROPE, &hp), 16);
}

Test(arch, hf_ignored)
{
    cr_expect(arch_hf_ignored("model.layers.0.self_attn.rotary_emb.inv_freq"));
    cr_expect(arch_hf_ignored("h.0.attention.masked_bias"));
    cr_expect(arch_hf_ignored("h.0.attention.bias"));
    cr_expect_not(arch_hf_ignored("model.layers.0.self_attn.q_proj.bias"));
    cr_expect_not(arch_hf_ignored("inv_freq"));
}

/* Llama 3.x factors as llama.cpp's converter computes them: synth-llama3 (head_dim 16,
 * rope_theta 500000, factor 32, low 1, high 4, original 8192) gives these bytes (its
 * reference rope_freqs.weight sha256 starts 14264418). */
Test(arch, rope_freqs_llama3)
{
    arch_hparams hp = {.head_dim = 16, .rope_base = 500000.0};
    float out[8];
    cr_expect_not(arch_rope_freqs_llama3(&hp, out));
    hp.rope_scaling = (arch_rope_scaling){ARCH_ROPE_SCALING_LLAMA3, 32.0, 1.0, 4.0, 8192};
    cr_assert(arch_rope_freqs_llama3(&hp, out));
    const float want[8] = {1, 1, 1, 1, 3.29226279f, 32, 32, 32};
    for (int i = 0; i < 8; i++)
        cr_expect_eq(out[i], want[i], "factor %d: %.9g", i, out[i]);
    /* Llama 3.1 8B: head_dim 128, theta 500000, factor 8: 1 for short wavelengths, 8 for long,
     * smooth in between */
    hp = (arch_hparams){.head_dim = 128, .rope_base = 500000.0};
    hp.rope_scaling = (arch_rope_scaling){ARCH_ROPE_SCALING_LLAMA3, 8.0, 1.0, 4.0, 8192};
    float f[64];
    cr_assert(arch_rope_freqs_llama3(&hp, f));
    cr_expect_eq(f[0], 1.0f);
    cr_expect_eq(f[63], 8.0f);
    int mid = 0;
    for (int i = 1; i < 64; i++) {
        cr_expect_geq(f[i], f[i - 1], "monotone at %d", i);
        mid += f[i] > 1.0f && f[i] < 8.0f;
    }
    cr_expect_gt(mid, 0);
}
