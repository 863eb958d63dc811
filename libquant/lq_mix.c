/* Mixture rules: the per-tensor type choice of llama-quantize, rewritten from its documented
 * behaviour (src/llama-quant.cpp). See docs/mixtures.md for the table. */
#include "libquant/lq_mix.h"

#include <ctype.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libgguf/gguf.h"
#include "libquant/lq.h"
#include "libquant/lq_types.h"

/* ---------------------------------------------------------------- file types */

static const struct {
    const char *name;
    int ftype;
    int base;
} g_ftypes[] = {
    {"Q4_0", LQ_FTYPE_MOSTLY_Q4_0, GGUF_Q4_0},
    {"Q4_1", LQ_FTYPE_MOSTLY_Q4_1, GGUF_Q4_1},
    {"Q5_0", LQ_FTYPE_MOSTLY_Q5_0, GGUF_Q5_0},
    {"Q5_1", LQ_FTYPE_MOSTLY_Q5_1, GGUF_Q5_1},
    {"Q2_K", LQ_FTYPE_MOSTLY_Q2_K, GGUF_Q2_K},
    {"Q3_K_S", LQ_FTYPE_MOSTLY_Q3_K_S, GGUF_Q3_K},
    {"Q3_K_M", LQ_FTYPE_MOSTLY_Q3_K_M, GGUF_Q3_K},
    {"Q3_K_L", LQ_FTYPE_MOSTLY_Q3_K_L, GGUF_Q3_K},
    {"Q4_K_S", LQ_FTYPE_MOSTLY_Q4_K_S, GGUF_Q4_K},
    {"Q4_K_M", LQ_FTYPE_MOSTLY_Q4_K_M, GGUF_Q4_K},
    {"Q5_K_S", LQ_FTYPE_MOSTLY_Q5_K_S, GGUF_Q5_K},
    {"Q5_K_M", LQ_FTYPE_MOSTLY_Q5_K_M, GGUF_Q5_K},
    {"Q6_K", LQ_FTYPE_MOSTLY_Q6_K, GGUF_Q6_K},
    {"Q8_0", LQ_FTYPE_MOSTLY_Q8_0, GGUF_Q8_0},
    {"F16", LQ_FTYPE_MOSTLY_F16, GGUF_F16},
    {"BF16", LQ_FTYPE_MOSTLY_BF16, GGUF_BF16},
    {"F32", LQ_FTYPE_ALL_F32, GGUF_F32},
};
#define N_FTYPES (sizeof g_ftypes / sizeof g_ftypes[0])

static const struct {
    const char *alias;
    int ftype;
} g_aliases[] = {
    {"Q3_K", LQ_FTYPE_MOSTLY_Q3_K_M},
    {"Q4_K", LQ_FTYPE_MOSTLY_Q4_K_M},
    {"Q5_K", LQ_FTYPE_MOSTLY_Q5_K_M},
};

static bool str_ieq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
            return false;
    return *a == *b;
}

int lq_ftype_from_name(const char *name)
{
    if (!name || !*name)
        return -1;
    for (size_t i = 0; i < N_FTYPES; i++)
        if (str_ieq(name, g_ftypes[i].name))
            return g_ftypes[i].ftype;
    for (size_t i = 0; i < sizeof g_aliases / sizeof g_aliases[0]; i++)
        if (str_ieq(name, g_aliases[i].alias))
            return g_aliases[i].ftype;
    /* a plain decimal id */
    const char *p = name;
    long v = 0;
    for (; *p; p++) {
        if (!isdigit((unsigned char)*p) || v > 1000)
            return -1;
        v = v * 10 + (*p - '0');
    }
    for (size_t i = 0; i < N_FTYPES; i++)
        if (g_ftypes[i].ftype == v)
            return (int)v;
    return -1;
}

const char *lq_ftype_name(int ftype)
{
    for (size_t i = 0; i < N_FTYPES; i++)
        if (g_ftypes[i].ftype == ftype)
            return g_ftypes[i].name;
    return NULL;
}

int lq_ftype_default_type(int ftype)
{
    for (size_t i = 0; i < N_FTYPES; i++)
        if (g_ftypes[i].ftype == ftype)
            return g_ftypes[i].base;
    return -1;
}

/* Types a plan may contain: the ones libquant writes (the type table's LQ_TYPE_WRITABLE). */
static bool type_writable(int t) { return lq_can_quantize(t) != 0; }

bool lq_mix_type_ok(int type) { return type_writable(type); }

static bool type_is_quantized(int t)
{
    const lq_type_traits *tr = lq_type_traits_of(t);
    return type_writable(t) && !(tr->flags & LQ_TYPE_FLOAT);
}

static int64_t block_size(int t)
{
    const gguf_type_traits *tr = gguf_type_info(t);
    return tr ? (int64_t)tr->block_size : 0;
}

static const char *type_name(int t)
{
    const gguf_type_traits *tr = gguf_type_info(t);
    return tr ? tr->name : "?";
}

static void set_msg(char *msg, const char *fmt, const char *a, const char *b)
{
    if (msg)
        snprintf(msg, LQ_MSG_SIZE, fmt, a, b);
}

/* ---------------------------------------------------------------- overrides */

typedef struct {
    regex_t re;
    int type;
} override_rule;

struct lq_mix_overrides {
    override_rule *rules;
    size_t n, cap;
};

lq_mix_overrides *lq_mix_overrides_create(void)
{
    return calloc(1, sizeof(lq_mix_overrides));
}

void lq_mix_overrides_free(lq_mix_overrides *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->n; i++)
        regfree(&o->rules[i].re);
    free(o->rules);
    free(o);
}

size_t lq_mix_overrides_count(const lq_mix_overrides *o) { return o ? o->n : 0; }

lq_error lq_mix_overrides_add(lq_mix_overrides *o, const char *spec, char *msg)
{
    if (!o || !spec) {
        set_msg(msg, "%s%s", "no override list or spec", "");
        return LQ_ERR_ARG;
    }
    const char *eq = strchr(spec, '=');
    if (!eq) {
        set_msg(msg, "malformed tensor type '%.200s'%s: expected REGEX=TYPE", spec, "");
        return LQ_ERR_ARG;
    }
    if (eq == spec) {
        set_msg(msg, "missing tensor name pattern in '%.200s'%s", spec, "");
        return LQ_ERR_ARG;
    }
    if (!eq[1]) {
        set_msg(msg, "missing quantization type in '%.200s'%s", spec, "");
        return LQ_ERR_ARG;
    }
    int type = gguf_type_from_name(eq + 1);
    if (type < 0 || !type_writable(type)) {
        set_msg(msg, "invalid tensor type '%.100s' in '%.100s'", eq + 1, spec);
        return LQ_ERR_ARG;
    }
    size_t len = (size_t)(eq - spec);
    char *pat = malloc(len + 1);
    if (!pat) {
        set_msg(msg, "%s%s", "out of memory", "");
        return LQ_ERR_NOMEM;
    }
    for (size_t i = 0; i < len; i++)
        pat[i] = (char)tolower((unsigned char)spec[i]);
    pat[len] = 0;
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 8;
        override_rule *r = realloc(o->rules, cap * sizeof *r);
        if (!r) {
            free(pat);
            set_msg(msg, "%s%s", "out of memory", "");
            return LQ_ERR_NOMEM;
        }
        o->rules = r;
        o->cap = cap;
    }
    int rc = regcomp(&o->rules[o->n].re, pat, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        char err[128];
        regerror(rc, &o->rules[o->n].re, err, sizeof err);
        set_msg(msg, "bad regular expression '%.100s': %.100s", pat, err);
        free(pat);
        return LQ_ERR_ARG;
    }
    free(pat);
    o->rules[o->n].type = type;
    o->n++;
    return LQ_OK;
}

/* Type of the first matching rule, or -1. */
static int overrides_match(const lq_mix_overrides *o, const char *name)
{
    if (!o)
        return -1;
    for (size_t i = 0; i < o->n; i++)
        if (regexec(&o->rules[i].re, name, 0, NULL, 0) == 0)
            return o->rules[i].type;
    return -1;
}

/* ---------------------------------------------------------------- categories */

static bool is_token_embd(const char *n)
{
    return strcmp(n, "token_embd.weight") == 0 || strcmp(n, "per_layer_token_embd.weight") == 0;
}

lq_mix_category lq_mix_category_of_name(const char *n)
{
    if (strcmp(n, "output.weight") == 0)
        return LQ_CAT_OUTPUT;
    if (is_token_embd(n))
        return LQ_CAT_TOKEN_EMBD;
    static const struct {
        const char *sub;
        lq_mix_category cat;
    } subs[] = {
        {"attn_qkv.weight", LQ_CAT_ATTN_QKV},       {"attn_kv_b.weight", LQ_CAT_ATTN_KV_B},
        {"attn_v.weight", LQ_CAT_ATTN_V},           {"attn_k.weight", LQ_CAT_ATTN_K},
        {"attn_q.weight", LQ_CAT_ATTN_Q},           {"attn_output.weight", LQ_CAT_ATTN_OUTPUT},
        {"ffn_up", LQ_CAT_FFN_UP},                  {"ffn_gate", LQ_CAT_FFN_GATE},
        {"ffn_down", LQ_CAT_FFN_DOWN},
    };
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        if (strstr(n, subs[i].sub))
            return subs[i].cat;
    return LQ_CAT_OTHER;
}

const char *lq_mix_category_name(lq_mix_category c)
{
    static const char *const names[LQ_CAT_COUNT_] = {
        [LQ_CAT_NONE] = "none",           [LQ_CAT_TOKEN_EMBD] = "token_embd", [LQ_CAT_ATTN_Q] = "attn_q",
        [LQ_CAT_ATTN_K] = "attn_k",       [LQ_CAT_ATTN_V] = "attn_v",         [LQ_CAT_ATTN_QKV] = "attn_qkv",
        [LQ_CAT_ATTN_KV_B] = "attn_kv_b", [LQ_CAT_ATTN_OUTPUT] = "attn_output", [LQ_CAT_FFN_UP] = "ffn_up",
        [LQ_CAT_FFN_GATE] = "ffn_gate",   [LQ_CAT_FFN_DOWN] = "ffn_down",     [LQ_CAT_OUTPUT] = "output",
        [LQ_CAT_OTHER] = "other",
    };
    return (unsigned)c < LQ_CAT_COUNT_ ? names[c] : NULL;
}

/* The category the plan uses: the caller's, else the name's. */
static lq_mix_category category_of(const lq_mix_tensor *t)
{
    return t->category != LQ_CAT_NONE ? t->category : lq_mix_category_of_name(t->name);
}

static bool cat_is_attn_v(lq_mix_category c)
{
    return c == LQ_CAT_ATTN_V || c == LQ_CAT_ATTN_QKV || c == LQ_CAT_ATTN_KV_B;
}

/* ---------------------------------------------------------------- what is quantized */

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

bool lq_mix_allows_quantization(const char *name, uint32_t n_dims, const int64_t *ne,
                                bool leave_output)
{
    /* ggml counts dimensions up to the last one larger than 1 */
    int dims = 1;
    for (uint32_t i = 1; i < n_dims && i < 4; i++)
        if (ne[i] > 1)
            dims = (int)i + 1;
    if (dims < 2)
        return false;
    if (!ends_with(name, "weight"))
        return false;
    if (leave_output && strcmp(name, "output.weight") == 0)
        return false;
    static const char *const never[] = {
        "_norm.weight", "ffn_gate_inp.weight", "ffn_gate_tid2eid.weight", "altup", "laurel",
        "per_layer_model_proj", "ssm_conv1d", "shortconv.conv.weight", "indexer.k_proj.weight",
        "indexer.q_proj.weight", "time_mix_first.weight", "time_mix_w0.weight",
        "time_mix_w1.weight", "time_mix_w2.weight", "time_mix_v0.weight", "time_mix_v1.weight",
        "time_mix_v2.weight", "time_mix_a0.weight", "time_mix_a1.weight", "time_mix_a2.weight",
        "time_mix_g1.weight", "time_mix_g2.weight", "time_mix_decay_w1.weight",
        "time_mix_decay_w2.weight", "time_mix_lerp_fused.weight", "attn_rel_b.weight",
        ".position_embd", "sam.pos_embd", "sam.neck.", "sam.net_", ".rel_pos", ".patch_embd",
        ".patch_merger", "a.rvq.codebook", "mm.a.code_embd",
    };
    for (size_t i = 0; i < sizeof never / sizeof never[0]; i++)
        if (strstr(name, never[i]))
            return false;
    if (strcmp(name, "position_embd.weight") == 0 || strcmp(name, "token_types.weight") == 0)
        return false;
    return true;
}

/* ---------------------------------------------------------------- the rules */

bool lq_mix_use_more_bits(int i_layer, int n_layer)
{
    return i_layer < n_layer / 8 || i_layer >= 7 * n_layer / 8 || (i_layer - n_layer / 8) % 3 == 2;
}

typedef struct {
    int ftype;
    bool falcon;
    bool is_70b;
    int n_gqa;
    int n_expert;
    int n_layer;
    bool has_imatrix;
    bool tied;              /* no output.weight: token_embd doubles as the output */
    int output_tensor_type; /* -1 = rules */
    int n_attention_wv, i_attention_wv;
    int n_ffn_down, i_ffn_down;
    int n_ffn_gate, i_ffn_gate;
    int n_ffn_up, i_ffn_up;
} plan_state;

/* Layer of a tensor: the running counter for dense models; for MoE the caller's layer when it
 * gave a category, else the name's. */
static int layer_of(const plan_state *st, int counter, const lq_mix_tensor *t, char *msg)
{
    if (st->n_expert > 1) {
        int il = t->layer;
        if (t->category == LQ_CAT_NONE && sscanf(t->name, "blk.%d.", &il) != 1) {
            set_msg(msg, "cannot tell the layer of tensor '%s'%s", t->name, "");
            return -1;
        }
        if (il < 0 || il >= st->n_layer) {
            set_msg(msg, "tensor '%s': layer out of range%s", t->name, "");
            return -1;
        }
        return il;
    }
    return counter;
}

/* The mixture's choice for a tensor of a quantized file type (llama_tensor_get_type_impl).
 * Returns the type, or -1 on error (message set). */
static int rule_type(plan_state *st, int type, const lq_mix_tensor *t, lq_mix_category cat, char *msg)
{
    const int ft = st->ftype;

    if (cat == LQ_CAT_OUTPUT || (st->tied && cat == LQ_CAT_TOKEN_EMBD)) {
        if (st->output_tensor_type >= 0)
            return st->output_tensor_type;
        int64_t qk = block_size(type);
        if (st->falcon || qk == 0 || t->ne[0] % qk != 0)
            return GGUF_Q8_0;
        return type != GGUF_Q8_0 ? GGUF_Q6_K : type;
    }
    if (cat == LQ_CAT_TOKEN_EMBD)
        return type; /* only the IQ/TQ file types change it */

    if (cat_is_attn_v(cat)) {
        if (ft == LQ_FTYPE_MOSTLY_Q2_K)
            type = st->n_gqa >= 4 ? GGUF_Q4_K : GGUF_Q3_K;
        else if (ft == LQ_FTYPE_MOSTLY_Q3_K_M)
            type = st->i_attention_wv < 2 ? GGUF_Q5_K : GGUF_Q4_K;
        else if (ft == LQ_FTYPE_MOSTLY_Q3_K_L)
            type = GGUF_Q5_K;
        else if ((ft == LQ_FTYPE_MOSTLY_Q4_K_M || ft == LQ_FTYPE_MOSTLY_Q5_K_M) &&
                 lq_mix_use_more_bits(st->i_attention_wv, st->n_attention_wv))
            type = GGUF_Q6_K;
        else if (ft == LQ_FTYPE_MOSTLY_Q4_K_S && st->i_attention_wv < 4)
            type = GGUF_Q5_K;
        if (st->is_70b && (type == GGUF_Q3_K || type == GGUF_Q4_K))
            type = GGUF_Q5_K;
        if (st->n_expert == 8)
            type = GGUF_Q8_0;
        st->i_attention_wv++;
        return type;
    }
    if (cat == LQ_CAT_ATTN_K) {
        if (st->n_expert == 8)
            type = GGUF_Q8_0;
        return type;
    }
    if (cat == LQ_CAT_FFN_DOWN) {
        int il = layer_of(st, st->i_ffn_down, t, msg);
        if (il < 0)
            return -1;
        int nl = st->n_ffn_down;
        if (ft == LQ_FTYPE_MOSTLY_Q2_K)
            type = GGUF_Q3_K;
        else if (ft == LQ_FTYPE_MOSTLY_Q3_K_M)
            type = il < nl / 16                                 ? GGUF_Q5_K
                   : !st->falcon || lq_mix_use_more_bits(il, nl) ? GGUF_Q4_K
                                                                 : GGUF_Q3_K;
        else if (ft == LQ_FTYPE_MOSTLY_Q3_K_L)
            type = st->falcon ? GGUF_Q4_K : GGUF_Q5_K;
        else if (ft == LQ_FTYPE_MOSTLY_Q4_K_M) {
            if (st->falcon)
                type = il < nl / 16 ? GGUF_Q6_K : lq_mix_use_more_bits(il, nl) ? GGUF_Q5_K : GGUF_Q4_K;
            else if (lq_mix_use_more_bits(il, nl))
                type = GGUF_Q6_K;
        } else if (ft == LQ_FTYPE_MOSTLY_Q5_K_M && lq_mix_use_more_bits(il, nl))
            type = GGUF_Q6_K;
        else if (ft == LQ_FTYPE_MOSTLY_Q4_K_S && !st->falcon && il < nl / 8)
            type = GGUF_Q5_K;
        else if ((ft == LQ_FTYPE_MOSTLY_Q4_0 || ft == LQ_FTYPE_MOSTLY_Q5_0) && st->has_imatrix &&
                 il < nl / 8)
            type = ft == LQ_FTYPE_MOSTLY_Q4_0 ? GGUF_Q4_1 : GGUF_Q5_1;
        st->i_ffn_down++;
        return type;
    }
    if (cat == LQ_CAT_ATTN_OUTPUT) {
        if (!st->falcon) {
            if (st->n_expert == 8) {
                if (ft == LQ_FTYPE_MOSTLY_Q2_K || ft == LQ_FTYPE_MOSTLY_Q3_K_S ||
                    ft == LQ_FTYPE_MOSTLY_Q3_K_M || ft == LQ_FTYPE_MOSTLY_Q4_K_S ||
                    ft == LQ_FTYPE_MOSTLY_Q4_K_M)
                    type = GGUF_Q5_K;
            } else {
                if (ft == LQ_FTYPE_MOSTLY_Q2_K)
                    type = GGUF_Q3_K;
                else if (ft == LQ_FTYPE_MOSTLY_Q3_K_M)
                    type = GGUF_Q4_K;
                else if (ft == LQ_FTYPE_MOSTLY_Q3_K_L)
                    type = GGUF_Q5_K;
            }
        } else if (ft == LQ_FTYPE_MOSTLY_Q3_K_L) {
            type = GGUF_Q4_K;
        }
        return type;
    }
    /* attn_qkv is caught by the attn_v branch above, as in llama.cpp */
    if (cat == LQ_CAT_FFN_GATE) {
        if (layer_of(st, st->i_ffn_gate, t, msg) < 0)
            return -1;
        st->i_ffn_gate++; /* only the IQ3_XS mixture uses this layer */
        return type;
    }
    if (cat == LQ_CAT_FFN_UP) {
        if (layer_of(st, st->i_ffn_up, t, msg) < 0)
            return -1;
        st->i_ffn_up++;
        return type;
    }
    return type;
}

/* A type whose block divides ne[0] (tensor_type_fallback); -1 when none is defined. */
static int fallback_type(int type, int64_t ncols, bool *fell_back)
{
    int64_t qk = block_size(type);
    *fell_back = false;
    if (qk > 0 && ncols % qk == 0)
        return type;
    *fell_back = true;
    int r;
    switch (type) {
    case GGUF_Q2_K: case GGUF_Q3_K: r = GGUF_Q4_0; break;
    case GGUF_Q4_K: r = GGUF_Q5_0; break;
    case GGUF_Q5_K: r = GGUF_Q5_1; break;
    case GGUF_Q6_K: r = GGUF_Q8_0; break;
    default: return -1;
    }
    if (ncols % block_size(r) != 0)
        r = GGUF_F16;
    return r;
}

static bool fits(int type, int64_t ncols)
{
    int64_t qk = block_size(type);
    return qk > 0 && ncols % qk == 0;
}

lq_mix_params lq_mix_params_default(void)
{
    lq_mix_params p;
    memset(&p, 0, sizeof p);
    p.output_tensor_type = -1;
    p.token_embedding_type = -1;
    return p;
}

lq_error lq_mix_plan(int ftype, const lq_mix_model *model, const lq_mix_tensor *tensors, size_t n,
                     const lq_mix_params *params, lq_mix_choice *out, char *msg)
{
    if (msg)
        msg[0] = 0;
    const int base = lq_ftype_default_type(ftype);
    if (base < 0) {
        if (msg)
            snprintf(msg, LQ_MSG_SIZE, "unsupported file type %d", ftype);
        return LQ_ERR_ARG;
    }
    if ((n > 0 && (!tensors || !out)) || !model || model->n_layer < 0) {
        set_msg(msg, "%s%s", "bad arguments to lq_mix_plan", "");
        return LQ_ERR_ARG;
    }
    lq_mix_params defaults = lq_mix_params_default();
    const lq_mix_params *p = params ? params : &defaults;
    if ((p->output_tensor_type >= 0 && !type_writable(p->output_tensor_type)) ||
        (p->token_embedding_type >= 0 && !type_writable(p->token_embedding_type))) {
        set_msg(msg, "%s%s", "output or token embedding type cannot be written", "");
        return LQ_ERR_TYPE;
    }

    plan_state st;
    memset(&st, 0, sizeof st);
    st.ftype = ftype;
    const char *arch = model->arch ? model->arch : "llama";
    st.falcon = strcmp(arch, "falcon") == 0;
    /* llama.cpp's LLM_TYPE_70B (the only model type the rules read): an 80-layer Llama with
     * grouped KV heads (else 65B), any 80-layer Qwen2 (Qwen2/2.5-72B) */
    st.is_70b = model->n_layer == 80 &&
                ((strcmp(arch, "llama") == 0 && model->n_head_kv > 0 && model->n_head != model->n_head_kv) ||
                 strcmp(arch, "qwen2") == 0);
    int n_head_kv = model->n_head_kv > 0 ? model->n_head_kv : model->n_head;
    st.n_gqa = n_head_kv > 0 ? model->n_head / n_head_kv : 0;
    st.n_expert = model->n_expert;
    st.n_layer = model->n_layer;
    st.has_imatrix = p->has_imatrix;
    st.output_tensor_type = p->output_tensor_type;
    st.tied = true;
    for (size_t i = 0; i < n; i++) {
        if (!tensors[i].name) {
            set_msg(msg, "%s%s", "tensor without a name", "");
            return LQ_ERR_ARG;
        }
        if ((unsigned)tensors[i].category >= LQ_CAT_COUNT_) {
            set_msg(msg, "tensor '%s': unknown category%s", tensors[i].name, "");
            return LQ_ERR_ARG;
        }
        lq_mix_category c = category_of(&tensors[i]);
        if (cat_is_attn_v(c))
            st.n_attention_wv++;
        if (c == LQ_CAT_OUTPUT)
            st.tied = false;
    }
    st.n_ffn_down = st.n_ffn_gate = st.n_ffn_up = model->n_layer;

    for (size_t i = 0; i < n; i++) {
        const lq_mix_tensor *t = &tensors[i];
        lq_mix_choice *c = &out[i];
        memset(c, 0, sizeof *c);
        c->type = c->wanted = t->type;
        if (!lq_mix_allows_quantization(t->name, t->n_dims, t->ne, p->leave_output))
            continue;
        c->quantize = true;
        lq_mix_category cat = category_of(t);
        int type = base;
        if (p->token_embedding_type >= 0 && cat == LQ_CAT_TOKEN_EMBD) {
            type = p->token_embedding_type;
            c->manual = true;
        } else if (p->output_tensor_type >= 0 && cat == LQ_CAT_OUTPUT) {
            type = p->output_tensor_type;
            c->manual = true;
        } else if (type_is_quantized(base)) {
            int forced = overrides_match(p->overrides, t->name);
            if (forced >= 0) {
                type = forced;
                c->manual = true;
            } else if (!p->pure) {
                type = rule_type(&st, type, t, cat, msg);
                if (type < 0)
                    return LQ_ERR_ARG;
            }
            c->wanted = type;
            bool fell;
            int fb = fallback_type(type, t->ne[0], &fell);
            if (fb < 0) {
                if (msg)
                    snprintf(msg, LQ_MSG_SIZE,
                             "tensor '%s': row length %lld is not a multiple of %lld (type %s) and "
                             "no fallback type is defined",
                             t->name, (long long)t->ne[0], (long long)block_size(type),
                             type_name(type));
                return LQ_ERR_SHAPE;
            }
            c->fallback = fell;
            c->type = fb;
            continue;
        }
        c->wanted = c->type = type;
        if (!fits(type, t->ne[0])) {
            if (msg)
                snprintf(msg, LQ_MSG_SIZE,
                         "tensor '%s': row length %lld is not a multiple of %lld (type %s)",
                         t->name, (long long)t->ne[0], (long long)block_size(type),
                         type_name(type));
            return LQ_ERR_SHAPE;
        }
    }
    return LQ_OK;
}

/* ---------------------------------------------------------------- order */

static int layer_number(const char *name)
{
    int il = -1;
    if (sscanf(name, "blk.%d.", &il) != 1)
        il = -1;
    return il;
}

int lq_mix_name_cmp(const char *a, const char *b)
{
    int la = layer_number(a), lb = layer_number(b);
    if (la != lb)
        return la < lb ? -1 : 1;
    return strcmp(a, b);
}

typedef struct {
    int layer;
    const char *name;
    size_t index;
} sort_key;

static int sort_key_cmp(const void *pa, const void *pb)
{
    const sort_key *a = pa, *b = pb;
    if (a->layer != b->layer)
        return a->layer < b->layer ? -1 : 1;
    int c = strcmp(a->name, b->name);
    if (c)
        return c;
    return a->index < b->index ? -1 : a->index > b->index; /* keeps equal names stable */
}

lq_error lq_mix_sort(const char *const *names, size_t n, size_t *order)
{
    if (n == 0)
        return LQ_OK;
    sort_key *k = malloc(n * sizeof *k);
    if (!k)
        return LQ_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        k[i].layer = layer_number(names[i]);
        k[i].name = names[i];
        k[i].index = i;
    }
    qsort(k, n, sizeof *k, sort_key_cmp);
    for (size_t i = 0; i < n; i++)
        order[i] = k[i].index;
    free(k);
    return LQ_OK;
}
