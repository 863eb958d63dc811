/* Model assembly from a tensor source, driven by the architecture description (arch/arch.h),
 * and the forward pass. */
#include "runtime/runtime.h"

#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libquant/lq.h"
#include "runtime/rt_internal.h"
#include "tokenizer/tok_error.h"

#define CAP_VOCAB ARCH_MAX_VOCAB

typedef struct {
    char name[GGUF_MAX_NAME];
    int type;
    int64_t ne0, ne1;   /* row length, rows */
    const void *data;   /* into the source's mapping or `owned`; NULL while deferred */
    void *owned;
    size_t owned_size;
    int64_t idx;        /* in the source; -1 when absent */
} rt_weight;

typedef struct {
    float *attn_norm, *ffn_norm; /* owned, n_embd */
    float *bq, *bk, *bv;         /* optional Q/K/V biases (n_head*head_dim, n_head_kv*head_dim) */
    float *q_norm, *k_norm;      /* optional per-head RMS norms before RoPE (head_dim) */
    rt_weight wq, wk, wv, wo, wg, wu, wd;
} rt_layer;

struct rt_model {
    inp_source *src;
    const arch_desc *arch;
    arch_hparams ah; /* the hyper-parameters as the description reads them */
    rt_hparams hp;
    rt_weight tok_embd, output; /* output.data == NULL when tied */
    float *out_norm;
    float *rope_freqs; /* optional, head_dim/2 */
    rt_layer *layers;
    int nthreads;
    rt_isa isa;
    size_t owned_bytes;
    /* scratch, sized for cap tokens */
    int cap;
    float *hidden, *hc, *xn, *q, *k, *v, *kt, *att, *gate, *up, *probs;
    float *rope_cos, *rope_sin; /* rope_cap positions × head_dim/2 */
    int rope_cap;
    size_t probs_cap;           /* floats in probs (attention scratch of each thread) */
    void *act;
    size_t act_cap;
    void *ws; /* matmul workspace (rt_matmul_ws), 64-byte aligned */
    size_t ws_cap;
    unsigned char *used; /* during loading: which source tensors the graph uses */
    bool deferred;       /* rt_model_load_deferred: copied weights are read per layer */
    const rt_model *parent; /* a clone: weights, norms and layers are the parent's */
};

static const char *const err_names[RT_ERR_COUNT_] = {
    [RT_OK] = "ok",
    [RT_ERR_NOMEM] = "out of memory",
    [RT_ERR_IO] = "I/O error",
    [RT_ERR_MODEL] = "invalid model",
    [RT_ERR_UNSUPPORTED] = "unsupported model",
    [RT_ERR_ARG] = "invalid argument",
    [RT_ERR_HOOK] = "stopped by hook",
    [RT_ERR_FORMAT] = "malformed input",
    [RT_ERR_BUDGET] = "over the memory budget",
};

const char *rt_strerror(rt_error e)
{
    return (unsigned)e < RT_ERR_COUNT_ ? err_names[e] : "unknown error";
}

rt_error rt_fail_(char *msg, rt_error e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    qf_msg_vformat(msg, RT_MSG_SIZE, NULL, fmt, ap);
    va_end(ap);
    return e;
}

/* ---------------------------------------------------------------- loading */

rt_error rt_error_from_tok(int e)
{
    switch ((tok_error)e) {
    case TOK_OK: return RT_OK;
    case TOK_ERR_IO: return RT_ERR_IO;
    case TOK_ERR_NOMEM: return RT_ERR_NOMEM;
    case TOK_ERR_FORMAT: return RT_ERR_FORMAT;
    case TOK_ERR_UNSUPPORTED: return RT_ERR_UNSUPPORTED;
    case TOK_ERR_ARG: return RT_ERR_ARG;
    default: return RT_ERR_MODEL;
    }
}

static rt_error get_int_key(const gguf_reader *md, const char *arch, const char *suffix, bool required,
                            int64_t lo, int64_t hi, int64_t *out, char *msg)
{
    char key[256];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    int64_t v;
    gguf_error ge = gguf_get_int(md, key, &v);
    if (ge == GGUF_ERR_NOT_FOUND) {
        if (required)
            return rt_fail_(msg, RT_ERR_MODEL, "metadata key '%s' is missing", key);
        return RT_OK;
    }
    if (ge != GGUF_OK)
        return rt_fail_(msg, RT_ERR_MODEL, "metadata key '%s' is not an integer", key);
    if (v < lo || v > hi)
        return rt_fail_(msg, RT_ERR_MODEL, "metadata key '%s' = %lld is out of range [%lld, %lld]", key,
                    (long long)v, (long long)lo, (long long)hi);
    *out = v;
    return RT_OK;
}

static rt_error get_float_key(const gguf_reader *md, const char *arch, const char *suffix, bool required,
                              float *out, char *msg)
{
    char key[256];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    double v;
    gguf_error ge = gguf_get_float(md, key, &v);
    if (ge == GGUF_ERR_NOT_FOUND) {
        if (required)
            return rt_fail_(msg, RT_ERR_MODEL, "metadata key '%s' is missing", key);
        return RT_OK;
    }
    if (ge != GGUF_OK)
        return rt_fail_(msg, RT_ERR_MODEL, "metadata key '%s' is not a float", key);
    if (!isfinite(v) || v <= 0 || v > 1e30)
        return rt_fail_(msg, RT_ERR_MODEL, "metadata key '%s' = %g is out of range", key, v);
    *out = (float)v;
    return RT_OK;
}

static void *xmalloc(rt_model *m, size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p)
        m->owned_bytes += n;
    return p;
}

static rt_error find_tensor(rt_model *m, const char *name, int64_t ne0, int64_t ne1, bool optional,
                            int64_t *idx, char *msg)
{
    *idx = inp_find_tensor(m->src, name);
    if (*idx < 0) {
        if (optional)
            return RT_OK;
        return rt_fail_(msg, RT_ERR_MODEL, "tensor '%s' is missing", name);
    }
    m->used[*idx] = 1;
    const inp_tensor *t = inp_tensor_at(m->src, *idx);
    bool ok = t->ne[2] == 1 && t->ne[3] == 1 && t->ne[0] == ne0 && t->ne[1] == ne1;
    if (!ok)
        return rt_fail_(msg, RT_ERR_MODEL, "tensor '%s' has shape [%lld, %lld, %lld, %lld], expected [%lld, %lld]",
                    name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3],
                    (long long)ne0, (long long)ne1);
    return RT_OK;
}

static rt_error read_weight(rt_model *m, rt_weight *w, char *msg);

/* A matrix of ne1 rows of ne0 values; missing is an error unless optional (then data NULL). */
static rt_error load_weight(rt_model *m, rt_weight *w, const char *name, int64_t ne0, int64_t ne1,
                            bool optional, char *msg)
{
    memset(w, 0, sizeof *w);
    snprintf(w->name, sizeof w->name, "%s", name);
    w->ne0 = ne0;
    w->ne1 = ne1;
    int64_t idx;
    rt_error e = find_tensor(m, name, ne0, ne1, optional, &idx, msg);
    w->idx = idx;
    if (e != RT_OK || idx < 0)
        return e;
    const inp_tensor *t = inp_tensor_at(m->src, idx);
    const gguf_type_traits *tr = gguf_type_info(t->type);
    if (!rt_kernel_supported(t->type))
        return rt_fail_(msg, RT_ERR_UNSUPPORTED, "tensor '%s' has type %s, which the runtime cannot multiply",
                    name, tr ? tr->name : "unknown");
    if (ne0 % tr->block_size)
        return rt_fail_(msg, RT_ERR_MODEL, "tensor '%s': row length %lld is not a multiple of the %s block size %u",
                    name, (long long)ne0, tr->name, tr->block_size);
    const void *data = inp_data(m->src, idx);
    if (data) {
        w->type = t->type;
        w->data = data;
        return RT_OK;
    }
    w->type = GGUF_F32;
    if (m->deferred)
        return RT_OK; /* read by rt_model_load_layer */
    return read_weight(m, w, msg);
}

/* A checkpoint's matrix read as F32 into memory we own. */
static rt_error read_weight(rt_model *m, rt_weight *w, char *msg)
{
    const char *name = w->name;
    const int64_t ne0 = w->ne0, ne1 = w->ne1, idx = w->idx;
    if ((uint64_t)ne0 * (uint64_t)ne1 > SIZE_MAX / 4)
        return rt_fail_(msg, RT_ERR_MODEL, "tensor '%s' is too large", name);
    size_t n = (size_t)ne0 * (size_t)ne1 * 4;
    float *buf = xmalloc(m, n);
    if (!buf)
        return rt_fail_(msg, RT_ERR_NOMEM, "out of memory reading tensor '%s' (%zu bytes)", name, n);
    char smsg[INP_MSG_SIZE];
    inp_error se = inp_read_f32(m->src, idx, 0, ne1, buf, smsg);
    if (se != INP_OK) {
        free(buf);
        return rt_fail_(msg, se == INP_ERR_NOMEM ? RT_ERR_NOMEM : RT_ERR_IO, "%s", smsg);
    }
    inp_release(m->src, idx);
    w->type = GGUF_F32;
    w->data = buf;
    w->owned = buf;
    w->owned_size = n;
    return RT_OK;
}

/* A vector of n floats (norm weights, rope factors), always copied as F32. */
static rt_error load_vec(rt_model *m, float **out, const char *name, int64_t n, bool optional, char *msg)
{
    *out = NULL;
    int64_t idx = inp_find_tensor(m->src, name);
    if (idx < 0) {
        if (optional)
            return RT_OK;
        return rt_fail_(msg, RT_ERR_MODEL, "tensor '%s' is missing", name);
    }
    m->used[idx] = 1;
    const inp_tensor *t = inp_tensor_at(m->src, idx);
    if (t->ne[0] != n || t->ne[1] != 1 || t->ne[2] != 1 || t->ne[3] != 1)
        return rt_fail_(msg, RT_ERR_MODEL, "tensor '%s' has shape [%lld, %lld], expected [%lld]", name,
                    (long long)t->ne[0], (long long)t->ne[1], (long long)n);
    if (t->type != GGUF_F32 && t->type != GGUF_F16 && t->type != GGUF_BF16) {
        const gguf_type_traits *tr = gguf_type_info(t->type);
        return rt_fail_(msg, RT_ERR_UNSUPPORTED, "tensor '%s' has type %s; vectors must be f32, f16 or bf16",
                    name, tr ? tr->name : "unknown");
    }
    float *buf = xmalloc(m, (size_t)n * 4);
    if (!buf)
        return rt_fail_(msg, RT_ERR_NOMEM, "out of memory");
    char smsg[INP_MSG_SIZE];
    inp_error se = inp_read_f32(m->src, idx, 0, 1, buf, smsg);
    if (se != INP_OK) {
        free(buf);
        return rt_fail_(msg, se == INP_ERR_NOMEM ? RT_ERR_NOMEM : RT_ERR_IO, "%s", smsg);
    }
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(buf[i])) {
            free(buf);
            return rt_fail_(msg, RT_ERR_MODEL, "tensor '%s' has a non-finite value at %lld", name, (long long)i);
        }
    *out = buf;
    return RT_OK;
}

/* The description's "{arch}.*" keys into m->ah (absent optional ones take their GGUF default;
 * head_count_kv and key_length default to head_count and embedding_length / head_count). */
static rt_error read_keys(rt_model *m, const gguf_reader *md, char *msg)
{
    arch_hparams *h = &m->ah;
    const char *a = m->arch->name;
    rt_error e;
    for (size_t i = 0; i < m->arch->n_keys; i++) {
        const arch_key *k = &m->arch->keys[i];
        if (!k->gguf || (k->flags & ARCH_KEY_INFO_ONLY))
            continue;
        const bool req = k->flags & ARCH_KEY_GGUF_REQUIRED;
        double dv = k->gguf_def;
        if (k->id == ARCH_HP_N_HEAD_KV)
            dv = (double)h->n_head;
        else if (k->id == ARCH_HP_KEY_LENGTH)
            dv = h->n_embd % h->n_head ? 0 : (double)(h->n_embd / h->n_head);
        else if (k->id == ARCH_HP_VALUE_LENGTH)
            dv = (double)h->head_dim;
        if (k->type == ARCH_KV_F32) {
            float f = (float)dv;
            if ((e = get_float_key(md, a, k->gguf, req, &f, msg)) != RT_OK)
                return e;
            arch_hp_set(h, k->id, f);
            continue;
        }
        int64_t v = (int64_t)dv;
        if ((e = get_int_key(md, a, k->gguf, req, (int64_t)k->lo, (int64_t)k->hi, &v, msg)) != RT_OK)
            return e;
        if (k->id == ARCH_HP_KEY_LENGTH && v == 0)
            return rt_fail_(msg, RT_ERR_MODEL,
                        "embedding_length %lld is not a multiple of head_count %lld and no key_length is given",
                        (long long)h->n_embd, (long long)h->n_head);
        if (k->id == ARCH_HP_VALUE_LENGTH) {
            if (v != h->head_dim)
                return rt_fail_(msg, RT_ERR_UNSUPPORTED, "value_length %lld differs from key_length %lld", (long long)v,
                            (long long)h->head_dim);
            continue;
        }
        arch_hp_set(h, k->id, (double)v);
    }
    return RT_OK;
}

static rt_error read_hparams(rt_model *m, char *msg)
{
    const gguf_reader *md = inp_metadata(m->src);
    if (!md)
        return rt_fail_(msg, RT_ERR_MODEL, "the source has no metadata");
    const gguf_str *arch = NULL;
    if (gguf_get_str(md, "general.architecture", &arch) != GGUF_OK)
        return rt_fail_(msg, RT_ERR_MODEL, "metadata key 'general.architecture' is missing");
    if (!(m->arch = arch_find(arch->str))) {
        char names[128];
        arch_list_names(false, names, sizeof names);
        return rt_fail_(msg, RT_ERR_UNSUPPORTED, "architecture '%.64s' is not supported (only %s)", arch->str, names);
    }
    const char *a = m->arch->name;
    rt_hparams *hp = &m->hp;
    rt_error e = read_keys(m, md, msg);
    if (e != RT_OK)
        return e;
    const arch_hparams *h = &m->ah;
    hp->n_layer = (int)h->n_layer;
    hp->n_embd = (int)h->n_embd;
    hp->n_ff = (int)h->n_ff;
    hp->n_head = (int)h->n_head;
    hp->n_head_kv = (int)h->n_head_kv;
    hp->n_ctx_train = (int)h->n_ctx;
    hp->head_dim = (int)h->head_dim;
    hp->rope_base = (float)h->rope_base;
    hp->rms_eps = (float)h->rms_eps;
    if (hp->head_dim % 2)
        return rt_fail_(msg, RT_ERR_MODEL, "head dimension %d is odd", hp->head_dim);
    if (hp->n_head % hp->n_head_kv)
        return rt_fail_(msg, RT_ERR_MODEL, "head_count %d is not a multiple of head_count_kv %d", hp->n_head,
                    hp->n_head_kv);
    if ((int64_t)hp->n_head * hp->head_dim > ARCH_MAX_EMBD * 4)
        return rt_fail_(msg, RT_ERR_MODEL, "head_count × head dimension is too large");
    /* The tensors' own sizes before the RoPE keys: a wrong embedding_length or head count
     * is reported as such, not as a RoPE dimension mismatch it implies. */
    static const struct {
        const char *tensor;
        int dim; /* 0: columns (ne[0]) = n_embd; 1: rows = n_head·head_dim; 2: rows = n_head_kv·head_dim */
    } core[] = {{"token_embd.weight", 0}, {"blk.0.attn_q.weight", 1}, {"blk.0.attn_k.weight", 2}};
    for (size_t i = 0; i < sizeof core / sizeof core[0]; i++) {
        int64_t k = inp_find_tensor(m->src, core[i].tensor);
        if (k < 0)
            continue; /* reported with the other missing tensors */
        const inp_tensor *t = inp_tensor_at(m->src, k);
        if (core[i].dim == 0 && t->ne[0] != hp->n_embd)
            return rt_fail_(msg, RT_ERR_MODEL, "embedding_length %d, but tensor '%s' has rows of %lld values", hp->n_embd,
                        core[i].tensor, (long long)t->ne[0]);
        const int heads = core[i].dim == 1 ? hp->n_head : hp->n_head_kv;
        if (core[i].dim > 0 && t->ne[1] != (int64_t)heads * hp->head_dim)
            return rt_fail_(msg, RT_ERR_MODEL, "%s %d × head dimension %d = %lld, but tensor '%s' has %lld rows",
                        core[i].dim == 1 ? "head_count" : "head_count_kv", heads, hp->head_dim,
                        (long long)heads * hp->head_dim, core[i].tensor, (long long)t->ne[1]);
    }
    /* Scaled RoPE variants change the math: refuse rather than compute something else. */
    char key[256];
    snprintf(key, sizeof key, "%s.rope.scaling.type", a);
    const gguf_str *st = NULL;
    if (gguf_get_str(md, key, &st) == GGUF_OK && strcmp(st->str, "none") != 0)
        return rt_fail_(msg, RT_ERR_UNSUPPORTED, "RoPE scaling '%.32s' is not supported", st->str);
    snprintf(key, sizeof key, "%s.rope.dimension_count", a);
    int64_t nrot;
    if (gguf_get_int(md, key, &nrot) == GGUF_OK && nrot != hp->head_dim)
        return rt_fail_(msg, RT_ERR_UNSUPPORTED, "partial RoPE (dimension_count %lld of %d) is not supported",
                    (long long)nrot, hp->head_dim);

    /* vocabulary: tokenizer.ggml.tokens, else the rows of token_embd */
    int64_t ti = inp_find_tensor(m->src, "token_embd.weight");
    if (ti < 0)
        return rt_fail_(msg, RT_ERR_MODEL, "tensor 'token_embd.weight' is missing");
    const inp_tensor *te = inp_tensor_at(m->src, ti);
    const gguf_value *toks = NULL;
    if (gguf_get_array(md, "tokenizer.ggml.tokens", &toks) == GGUF_OK) {
        if (toks->n != (uint64_t)te->ne[1])
            return rt_fail_(msg, RT_ERR_MODEL, "tokenizer.ggml.tokens has %llu entries but token_embd.weight has %lld rows",
                        (unsigned long long)toks->n, (long long)te->ne[1]);
    }
    if (te->ne[1] < 1 || te->ne[1] > CAP_VOCAB)
        return rt_fail_(msg, RT_ERR_MODEL, "vocabulary size %lld is out of range", (long long)te->ne[1]);
    hp->n_vocab = (int)te->ne[1];
    m->ah.n_vocab = te->ne[1];

    /* Special token ids (tokenizer.ggml.bos_token_id, eos_, unknown_, padding_ ...): integers
     * inside the vocabulary, else the file is broken; refuse it rather than guess. */
    const int64_t nkv = gguf_n_kv(md);
    for (int64_t i = 0; i < nkv; i++) {
        const char *k = gguf_kv_key(md, i);
        const size_t kl = strlen(k);
        if (strncmp(k, "tokenizer.ggml.", 15) != 0 || kl < 24 || strcmp(k + kl - 9, "_token_id") != 0)
            continue;
        int64_t id;
        if (gguf_get_int(md, k, &id) != GGUF_OK)
            return rt_fail_(msg, RT_ERR_MODEL, "metadata key '%.200s' is not an integer", k);
        if (id < 0 || id >= hp->n_vocab)
            return rt_fail_(msg, RT_ERR_MODEL, "metadata key '%.200s' = %lld is outside the vocabulary (%d tokens)", k,
                        (long long)id, hp->n_vocab);
    }
    return RT_OK;
}

/* llama.cpp refuses a file whose tensors are not all used by the graph ("wrong number of
 * tensors"): name the first one we did not load. */
static rt_error check_unused_tensors(rt_model *m, const unsigned char *used, char *msg)
{
    const int64_t nt = inp_n_tensors(m->src);
    for (int64_t i = 0; i < nt; i++) {
        if (used[i])
            continue;
        /* names come from the file: control bytes never reach a message */
        char name[GGUF_MAX_NAME];
        snprintf(name, sizeof name, "%s", inp_tensor_at(m->src, i)->name);
        for (char *c = name; *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f)
                *c = '?';
        int layer;
        if (sscanf(name, "blk.%d.", &layer) == 1 && layer >= m->hp.n_layer)
            return rt_fail_(msg, RT_ERR_MODEL, "tensor '%s' belongs to layer %d but block_count is %d", name, layer,
                        m->hp.n_layer);
        int64_t n_used = 0;
        for (int64_t j = 0; j < nt; j++)
            n_used += used[j] != 0;
        return rt_fail_(msg, RT_ERR_MODEL, "tensor '%s' is not used by the %s graph (%lld tensors, %lld used)", name,
                    m->arch->name, (long long)nt, (long long)n_used);
    }
    return RT_OK;
}

static void weight_free(rt_weight *w)
{
    free(w->owned);
    w->owned = NULL;
}

static void free_scratch(rt_model *m)
{
    float *bufs[] = {m->hidden, m->hc, m->xn, m->q, m->k, m->v, m->kt, m->att, m->gate, m->up, m->probs,
                     m->rope_cos, m->rope_sin};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        free(bufs[i]);
    free(m->act);
    free(m->ws);
}

void rt_model_free(rt_model *m)
{
    if (!m)
        return;
    if (m->parent) {
        free_scratch(m);
        free(m);
        return;
    }
    weight_free(&m->tok_embd);
    weight_free(&m->output);
    free(m->out_norm);
    free(m->rope_freqs);
    if (m->layers) {
        for (int l = 0; l < m->hp.n_layer; l++) {
            rt_layer *L = &m->layers[l];
            float *vs[] = {L->attn_norm, L->ffn_norm, L->bq, L->bk, L->bv, L->q_norm, L->k_norm};
            for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++)
                free(vs[i]);
            rt_weight *ws[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->wg, &L->wu, &L->wd};
            for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
                weight_free(ws[i]);
        }
        free(m->layers);
    }
    free_scratch(m);
    free(m->used);
    free(m);
}

/* Where the runtime keeps a tensor of this role (L: the layer, NULL for globals); NULL when
 * the runtime has no use for the role (a description the forward pass does not implement). */
static rt_weight *weight_slot(rt_model *m, rt_layer *L, arch_role r)
{
    switch (r) {
    case ARCH_ROLE_TOKEN_EMBD: return L ? NULL : &m->tok_embd;
    case ARCH_ROLE_OUTPUT: return L ? NULL : &m->output;
    case ARCH_ROLE_ATTN_Q: return L ? &L->wq : NULL;
    case ARCH_ROLE_ATTN_K: return L ? &L->wk : NULL;
    case ARCH_ROLE_ATTN_V: return L ? &L->wv : NULL;
    case ARCH_ROLE_ATTN_OUTPUT: return L ? &L->wo : NULL;
    case ARCH_ROLE_FFN_GATE: return L ? &L->wg : NULL;
    case ARCH_ROLE_FFN_UP: return L ? &L->wu : NULL;
    case ARCH_ROLE_FFN_DOWN: return L ? &L->wd : NULL;
    default: return NULL;
    }
}

static float **vec_slot(rt_model *m, rt_layer *L, arch_role r)
{
    switch (r) {
    case ARCH_ROLE_OUTPUT_NORM: return L ? NULL : &m->out_norm;
    case ARCH_ROLE_ROPE_FREQS: return L ? NULL : &m->rope_freqs;
    case ARCH_ROLE_ATTN_NORM: return L ? &L->attn_norm : NULL;
    case ARCH_ROLE_FFN_NORM: return L ? &L->ffn_norm : NULL;
    case ARCH_ROLE_ATTN_Q_BIAS: return L ? &L->bq : NULL;
    case ARCH_ROLE_ATTN_K_BIAS: return L ? &L->bk : NULL;
    case ARCH_ROLE_ATTN_V_BIAS: return L ? &L->bv : NULL;
    case ARCH_ROLE_ATTN_Q_NORM: return L ? &L->q_norm : NULL;
    case ARCH_ROLE_ATTN_K_NORM: return L ? &L->k_norm : NULL;
    default: return NULL;
    }
}

/* One tensor of the description (layer < 0: a global). */
static rt_error load_tensor(rt_model *m, const arch_tensor *at, int layer, char *msg)
{
    rt_layer *L = layer >= 0 ? &m->layers[layer] : NULL;
    char name[GGUF_MAX_NAME];
    arch_tensor_name(m->arch, at, layer, name, sizeof name);
    const int64_t ne0 = arch_dim_value(at->ne0, &m->ah), ne1 = arch_dim_value(at->ne1, &m->ah);
    const bool optional = at->flags & (ARCH_T_OPTIONAL | ARCH_T_TIED | ARCH_T_COMPUTED);
    if (arch_tensor_is_matrix(at)) {
        rt_weight *w = weight_slot(m, L, at->role);
        if (w)
            return load_weight(m, w, name, ne0, ne1, optional, msg);
    } else {
        float **v = vec_slot(m, L, at->role);
        if (v)
            return load_vec(m, v, name, ne0, optional, msg);
    }
    return rt_fail_(msg, RT_ERR_UNSUPPORTED, "the runtime cannot compute with tensor '%s' of the %s architecture", name,
                m->arch->name);
}

static rt_error model_load(inp_source *src, bool deferred, rt_model **out, char *msg)
{
    if (!src || !out)
        return rt_fail_(msg, RT_ERR_ARG, "rt_model_load: NULL argument");
    *out = NULL;
    rt_model *m = calloc(1, sizeof *m);
    if (!m)
        return rt_fail_(msg, RT_ERR_NOMEM, "out of memory");
    m->src = src;
    m->deferred = deferred;
    m->isa = rt_isa_detect();
    m->used = calloc((size_t)inp_n_tensors(src) + 1, 1);
    if (!m->used) {
        free(m);
        return rt_fail_(msg, RT_ERR_NOMEM, "out of memory");
    }
    rt_error e = read_hparams(m, msg);
    if (e != RT_OK)
        goto bad;
    const arch_desc *d = m->arch;
    m->tok_embd.idx = m->output.idx = -1; /* absent until loaded */
    for (size_t i = 0; i < d->n_globals; i++)
        if ((e = load_tensor(m, &d->globals[i], -1, msg)) != RT_OK)
            goto bad;
    m->hp.tied_output = m->output.idx < 0;
    m->layers = calloc((size_t)m->hp.n_layer, sizeof *m->layers);
    if (!m->layers) {
        e = rt_fail_(msg, RT_ERR_NOMEM, "out of memory");
        goto bad;
    }
    for (int l = 0; l < m->hp.n_layer; l++) {
        rt_layer *L = &m->layers[l];
        rt_weight *ws[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->wg, &L->wu, &L->wd};
        for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
            ws[i]->idx = -1;
    }
    for (int l = 0; l < m->hp.n_layer; l++)
        for (size_t i = 0; i < d->n_layer; i++)
            if ((e = load_tensor(m, &d->layer[i], l, msg)) != RT_OK)
                goto bad;
    if ((e = check_unused_tensors(m, m->used, msg)) != RT_OK)
        goto bad;
    free(m->used);
    m->used = NULL;
    *out = m;
    return RT_OK;
bad:
    rt_model_free(m);
    return e;
}

rt_error rt_model_load(inp_source *src, rt_model **out, char *msg)
{
    return model_load(src, false, out, msg);
}

rt_error rt_model_load_deferred(inp_source *src, rt_model **out, char *msg)
{
    return model_load(src, true, out, msg);
}

/* The matrices of layer l, or token_embd and output for l == -1. */
static int layer_weights(rt_model *m, int l, rt_weight **ws)
{
    if (l < 0) {
        ws[0] = &m->tok_embd;
        ws[1] = &m->output;
        return 2;
    }
    rt_layer *L = &m->layers[l];
    rt_weight *list[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->wg, &L->wu, &L->wd};
    memcpy(ws, list, sizeof list);
    return 7;
}

rt_error rt_model_load_layer(rt_model *m, int layer, const rt_model *from, char *msg)
{
    if (!m || m->parent || layer < -1 || layer >= m->hp.n_layer ||
        (from && (from->hp.n_layer != m->hp.n_layer || from->hp.n_embd != m->hp.n_embd)))
        return rt_fail_(msg, RT_ERR_ARG, "rt_model_load_layer: bad arguments");
    rt_weight *ws[7], *fs[7];
    const int n = layer_weights(m, layer, ws);
    if (from)
        layer_weights((rt_model *)from, layer, fs);
    for (int i = 0; i < n; i++) {
        if (ws[i]->data || ws[i]->idx < 0)
            continue;
        if (from && fs[i]->data && fs[i]->ne0 == ws[i]->ne0 && fs[i]->ne1 == ws[i]->ne1) {
            ws[i]->data = fs[i]->data; /* borrowed */
            ws[i]->type = fs[i]->type;
            continue;
        }
        rt_error e = read_weight(m, ws[i], msg);
        if (e != RT_OK)
            return e;
    }
    return RT_OK;
}

void rt_model_drop_layer(rt_model *m, int layer)
{
    if (!m || m->parent || !m->deferred || layer < -1 || layer >= m->hp.n_layer)
        return;
    rt_weight *ws[7];
    const int n = layer_weights(m, layer, ws);
    for (int i = 0; i < n; i++) {
        if (ws[i]->idx < 0 || inp_data(m->src, ws[i]->idx))
            continue; /* absent, or in the source's mapping */
        if (ws[i]->owned) {
            m->owned_bytes -= ws[i]->owned_size;
            free(ws[i]->owned);
        }
        ws[i]->owned = NULL;
        ws[i]->owned_size = 0;
        ws[i]->data = NULL;
        ws[i]->type = GGUF_F32;
    }
}

rt_error rt_model_clone(const rt_model *m, rt_model **out, char *msg)
{
    if (!m || !out)
        return rt_fail_(msg, RT_ERR_ARG, "rt_model_clone: NULL argument");
    *out = NULL;
    rt_model *c = malloc(sizeof *c);
    if (!c)
        return rt_fail_(msg, RT_ERR_NOMEM, "out of memory");
    *c = *m;
    c->parent = m->parent ? m->parent : m;
    c->owned_bytes = 0;
    c->cap = c->rope_cap = 0;
    c->hidden = c->hc = c->xn = c->q = c->k = c->v = c->kt = c->att = c->gate = c->up = c->probs = NULL;
    c->rope_cos = c->rope_sin = NULL;
    c->probs_cap = c->act_cap = c->ws_cap = 0;
    c->act = c->ws = NULL;
    c->used = NULL;
    *out = c;
    return RT_OK;
}

const rt_hparams *rt_model_hparams(const rt_model *m) { return &m->hp; }

void rt_model_set_threads(rt_model *m, int nthreads) { m->nthreads = nthreads > 0 ? nthreads : 0; }

rt_error rt_model_set_isa(rt_model *m, rt_isa isa)
{
    if ((unsigned)isa >= RT_ISA_COUNT_ || !rt_isa_supported(isa))
        return RT_ERR_ARG;
    m->isa = isa;
    return RT_OK;
}

size_t rt_model_owned_bytes(const rt_model *m) { return m->owned_bytes; }

static rt_weight *weight_by_name(rt_model *m, const char *name)
{
    int layer;
    const arch_tensor *at = arch_tensor_find(m->arch, name, &layer);
    if (!at || !arch_tensor_is_matrix(at) || layer >= m->hp.n_layer)
        return NULL;
    rt_weight *w = weight_slot(m, layer >= 0 ? &m->layers[layer] : NULL, at->role);
    return w && w->data ? w : NULL; /* an absent (tied) output is no weight */
}

/* A vector the forward pass reads (norms, biases; not the RoPE factors, cached in tables). */
static float **vec_by_name(rt_model *m, const char *name, int64_t *n)
{
    int layer;
    const arch_tensor *at = arch_tensor_find(m->arch, name, &layer);
    if (!at || arch_tensor_is_matrix(at) || at->role == ARCH_ROLE_ROPE_FREQS || layer >= m->hp.n_layer)
        return NULL;
    float **v = vec_slot(m, layer >= 0 ? &m->layers[layer] : NULL, at->role);
    *n = arch_dim_value(at->ne0, &m->ah);
    return v && *v ? v : NULL;
}

const arch_desc *rt_model_arch(const rt_model *m) { return m->arch; }

rt_error rt_model_set_weight(rt_model *m, const char *name, int type, const void *data, char *msg)
{
    if (!m || !name || !data)
        return rt_fail_(msg, RT_ERR_ARG, "rt_model_set_weight: NULL argument");
    if (m->parent)
        return rt_fail_(msg, RT_ERR_ARG, "rt_model_set_weight: a clone shares its parent's weights");
    int64_t n;
    float **vec = vec_by_name(m, name, &n);
    if (vec) {
        if (type != GGUF_F32)
            return rt_fail_(msg, RT_ERR_UNSUPPORTED, "'%s' must be f32", name);
        memcpy(*vec, data, (size_t)n * 4);
        return RT_OK;
    }
    rt_weight *w = weight_by_name(m, name);
    if (!w)
        return rt_fail_(msg, RT_ERR_ARG, "no weight named '%s'", name);
    const gguf_type_traits *tr = gguf_type_info(type);
    if (!tr || !rt_kernel_supported(type))
        return rt_fail_(msg, RT_ERR_UNSUPPORTED, "'%s': type %s cannot be multiplied", name, tr ? tr->name : "unknown");
    if (w->ne0 % tr->block_size)
        return rt_fail_(msg, RT_ERR_ARG, "'%s': row length %lld is not a multiple of the %s block size", name,
                    (long long)w->ne0, tr->name);
    size_t bytes = gguf_row_size(type, w->ne0) * (size_t)w->ne1;
    void *buf = w->owned && w->owned_size == bytes ? w->owned : NULL;
    if (!buf) {
        buf = malloc(bytes);
        if (!buf)
            return rt_fail_(msg, RT_ERR_NOMEM, "out of memory");
        if (w->owned) {
            m->owned_bytes -= w->owned_size;
            free(w->owned);
        }
        m->owned_bytes += bytes;
    }
    memcpy(buf, data, bytes);
    w->owned = buf;
    w->owned_size = bytes;
    w->data = buf;
    w->type = type;
    return RT_OK;
}

/* ---------------------------------------------------------------- scratch */

static size_t max_act_row(const rt_model *m)
{
    const rt_hparams *hp = &m->hp;
    size_t mx = rt_act_row_size(m->tok_embd.type, hp->n_embd);
    if (!hp->tied_output && rt_act_row_size(m->output.type, hp->n_embd) > mx)
        mx = rt_act_row_size(m->output.type, hp->n_embd);
    for (int l = 0; l < hp->n_layer; l++) {
        const rt_layer *L = &m->layers[l];
        const rt_weight *ws[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->wg, &L->wu, &L->wd};
        for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++) {
            size_t s = rt_act_row_size(ws[i]->type, ws[i]->ne0);
            if (s > mx)
                mx = s;
        }
    }
    return mx;
}

/* Buffers for N token rows and RoPE tables for positions 0..P-1. */
static rt_error ensure_scratch(rt_model *m, int N, int P, char *msg)
{
    const rt_hparams *hp = &m->hp;
    size_t act_need = max_act_row(m) * (size_t)N;
    if (act_need > m->act_cap) {
        free(m->act);
        m->act = malloc(act_need);
        m->act_cap = m->act ? act_need : 0;
        if (!m->act)
            return rt_fail_(msg, RT_ERR_NOMEM, "out of memory for activations");
    }
    const size_t E = (size_t)hp->n_embd, F = (size_t)hp->n_ff, QD = (size_t)hp->n_head * hp->head_dim,
                 KD = (size_t)hp->n_head_kv * hp->head_dim, H2 = (size_t)hp->head_dim / 2;
    if (N > m->cap) {
        const size_t t = (size_t)N;
        float **bufs[] = {&m->hidden, &m->hc, &m->xn, &m->q, &m->k, &m->v, &m->kt, &m->att, &m->gate, &m->up};
        size_t sizes[] = {t * E, t * E, t * (E > QD ? E : QD), t * QD, t * KD, t * KD, t * KD, t * QD, t * F, t * F};
        for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
            free(*bufs[i]);
            *bufs[i] = malloc(sizes[i] * sizeof(float));
            if (!*bufs[i]) {
                m->cap = 0;
                return rt_fail_(msg, RT_ERR_NOMEM, "out of memory for %d tokens", N);
            }
        }
        m->cap = N;
    }
    if (P > m->rope_cap) {
        free(m->rope_cos);
        free(m->rope_sin);
        m->rope_cos = malloc((size_t)P * H2 * sizeof(float));
        m->rope_sin = malloc((size_t)P * H2 * sizeof(float));
        if (!m->rope_cos || !m->rope_sin) {
            m->rope_cap = 0;
            return rt_fail_(msg, RT_ERR_NOMEM, "out of memory for %d positions", P);
        }
        m->rope_cap = P;
        /* RoPE table as ggml builds it: theta = pos, multiplied by base^(-2/head_dim) per pair. */
        const float theta_scale = powf(hp->rope_base, -2.0f / (float)hp->head_dim);
        for (int p = 0; p < P; p++) {
            float theta = (float)p;
            for (size_t i = 0; i < H2; i++) {
                float th = m->rope_freqs ? theta / m->rope_freqs[i] : theta;
                m->rope_cos[(size_t)p * H2 + i] = cosf(th);
                m->rope_sin[(size_t)p * H2 + i] = sinf(th);
                theta *= theta_scale;
            }
        }
    }
    return RT_OK;
}

/* What ensure_scratch, matmul and attention allocate for passes of N = n_seq·seq_len tokens:
 * kept next to them so the two stay in step. */
uint64_t rt_model_scratch_bytes(const rt_model *m, int n_seq, int seq_len, int nthreads)
{
    if (!m || n_seq < 1 || seq_len < 1)
        return 0;
    const rt_hparams *hp = &m->hp;
    const uint64_t N = (uint64_t)n_seq * (uint64_t)seq_len, E = (uint64_t)hp->n_embd, F = (uint64_t)hp->n_ff,
                   QD = (uint64_t)hp->n_head * hp->head_dim, KD = (uint64_t)hp->n_head_kv * hp->head_dim,
                   H2 = (uint64_t)hp->head_dim / 2;
    const int nth = nthreads > 0 ? nthreads : omp_get_max_threads();
    uint64_t floats = N * (E + E + (E > QD ? E : QD) + QD + 3 * KD + QD + 2 * F); /* ensure_scratch's buffers */
    floats += 2 * (uint64_t)seq_len * H2;                                         /* RoPE tables */
    floats += (uint64_t)nth * ((rt_attn_scratch(seq_len, hp->head_dim) + 15) & ~(size_t)15);
    uint64_t ws = 0;
    const rt_weight *out = hp->tied_output ? &m->tok_embd : &m->output;
    for (int l = -1; l < hp->n_layer; l++) {
        const rt_layer *L = l >= 0 ? &m->layers[l] : NULL;
        const rt_weight *list[] = {L ? &L->wq : out, L ? &L->wk : out, L ? &L->wv : out, L ? &L->wo : out,
                                   L ? &L->wg : out, L ? &L->wu : out, L ? &L->wd : out};
        for (size_t i = 0; i < sizeof list / sizeof list[0]; i++) {
            const uint64_t need = rt_matmul_workspace(m->isa, list[i]->type, list[i]->ne0, (int64_t)N, nth);
            if (need > ws)
                ws = need;
        }
    }
    return floats * sizeof(float) + max_act_row(m) * N + ws + 4096; /* + allocator headers, small buffers */
}

uint64_t rt_weights_bytes(const inp_source *src)
{
    uint64_t total = 0;
    const int64_t n = inp_n_tensors(src);
    for (int64_t i = 0; i < n; i++) {
        const inp_tensor *t = inp_tensor_at(src, i);
        uint64_t rows = 1;
        for (uint32_t d = 1; d < GGUF_MAX_DIMS; d++)
            rows *= (uint64_t)t->ne[d];
        /* a GGUF is used where it is mapped; a checkpoint's tensors are read as F32 */
        const uint64_t b = inp_is_checkpoint(src) ? (uint64_t)t->ne[0] * rows * sizeof(float)
                                                  : (uint64_t)gguf_row_size(t->type, t->ne[0]) * rows;
        total += b;
    }
    return total;
}

/* ---------------------------------------------------------------- building blocks */

static int nthreads(const rt_model *m) { return m->nthreads > 0 ? m->nthreads : omp_get_max_threads(); }

/* y = W x for T tokens; reuse (see reuse_level): 1 when act holds x converted for a weight
 * of the same vec-dot type and row length, 2 when the workspace also holds its repacked tiles
 * (the previous matmul had the same weight type) — the shared inputs of q/k/v and gate/up. */
static void matmul(rt_model *m, const rt_weight *w, const float *x, int T, float *y, int reuse)
{
    const int nth = nthreads(m);
    const size_t need = rt_matmul_workspace(m->isa, w->type, w->ne0, T, nth);
    if (need > m->ws_cap) { /* kept across calls: large buffers freed each call cost page faults */
        free(m->ws);
        m->ws = aligned_alloc(64, (need + 63) & ~(size_t)63);
        m->ws_cap = m->ws ? need : 0; /* without it rt_matmul_ws allocates for itself */
    }
    rt_matmul_ws(m->isa, w->type, w->data, w->ne1, w->ne0, x, w->ne0, T, y, w->ne1, m->act, reuse, nth, m->ws,
                 m->ws_cap);
}

/* How much of the previous matmul's input preparation (for weight a, same input) weight b can
 * reuse: 2 = converted activations and repacked tiles, 1 = converted activations, 0 = none. */
static int reuse_level(const rt_weight *a, const rt_weight *b)
{
    if (a->ne0 != b->ne0)
        return 0;
    if (a->type == b->type)
        return 2;
    return rt_vec_dot_type(a->type) == rt_vec_dot_type(b->type) && a->type != GGUF_F32 ? 1 : 0;
}

/* ggml's rms_norm (sum of squares in double) followed by the weight multiply. */
static void rms_norm_rows(const rt_model *m, const float *x, const float *w, int T, int n, float eps, float *y,
                          int nth)
{
#pragma omp parallel for schedule(static) num_threads(nth) if (T > 16)
    for (int t = 0; t < T; t++)
        rt_rms_norm(m->isa, x + (size_t)t * n, w, n, eps, y + (size_t)t * n);
}

/* h += d, n floats */
static void add_rows(float *restrict h, const float *restrict d, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h[i] += d[i];
}

/* Row t of out := row src(t) of a + row t of d; then xn := RMSNorm(out) * w when w is set.
 * Row map: for S sequences of T rows of a, out keeps rows r0..T-1 of each (R = T - r0). */
static void residual_rows(const rt_model *m, float *out, const float *a, const float *d, int S, int T, int r0,
                          const float *w, float *xn, int nth)
{
    const int E = m->hp.n_embd, R = T - r0, NR = S * R;
#pragma omp parallel for schedule(static) num_threads(nth) if (NR > 16)
    for (int t = 0; t < NR; t++) {
        float *o = out + (size_t)t * E;
        const float *src = a + ((size_t)(t / R) * T + r0 + (size_t)(t % R)) * E;
        if (o != src)
            memcpy(o, src, (size_t)E * sizeof(float));
        add_rows(o, d + (size_t)t * E, (size_t)E);
        if (w)
            rt_rms_norm(m->isa, o, w, E, m->hp.rms_eps, xn + (size_t)t * E);
    }
}

/* RoPE in place on one row x of nh heads of hd at position t: NORM mode rotates the pairs
 * (2i, 2i+1), NEOX mode the pairs (i, i + hd/2); same angles. */
static void rope_row(const rt_model *m, float *x, int t, int nh, int hd)
{
    const int H2 = hd / 2;
    const float *c = m->rope_cos + (size_t)t * H2, *s = m->rope_sin + (size_t)t * H2;
    const int stride = m->arch->rope == ARCH_ROPE_NEOX ? 1 : 2, off = m->arch->rope == ARCH_ROPE_NEOX ? H2 : 1;
    for (int h = 0; h < nh; h++) {
        float *v = x + (size_t)h * hd;
        for (int i = 0; i < H2; i++) {
            float *p0 = v + (size_t)i * stride, *p1 = p0 + off;
            const float x0 = *p0, x1 = *p1;
            /* as ggml's build contracts x0*cos - x1*sin and x0*sin + x1*cos */
            *p0 = fmaf(x0, c[i], -(x1 * s[i]));
            *p1 = fmaf(x0, s[i], x1 * c[i]);
        }
    }
}

/* Before RoPE: Q/K/V biases (added in f32 as ggml_add) and the per-head RMS norms of Q and K. */
static void qkv_prepare(const rt_model *m, const rt_layer *L, float *q, float *k, float *v)
{
    const rt_hparams *hp = &m->hp;
    const int hd = hp->head_dim;
    const size_t QD = (size_t)hp->n_head * hd, KD = (size_t)hp->n_head_kv * hd;
    if (L->bq)
        add_rows(q, L->bq, QD);
    if (L->bk)
        add_rows(k, L->bk, KD);
    if (L->bv)
        add_rows(v, L->bv, KD);
    for (int h = 0; L->q_norm && h < hp->n_head; h++)
        rt_rms_norm(m->isa, q + (size_t)h * hd, L->q_norm, hd, hp->rms_eps, q + (size_t)h * hd);
    for (int h = 0; L->k_norm && h < hp->n_head_kv; h++)
        rt_rms_norm(m->isa, k + (size_t)h * hd, L->k_norm, hd, hp->rms_eps, k + (size_t)h * hd);
}

/* Causal attention within each of S sequences of T tokens: q (S*T × nh*hd), k, v (S*T ×
 * nkv*hd) straight from their projections; biases and Q/K norms (qkv_prepare) and RoPE are
 * applied to q and k, and k and v are rounded to fp16 (llama.cpp's f16 KV cache) first. The
 * outputs of query rows r0..T-1 of each sequence go to att, S*(T-r0) rows. As llama.cpp's CPU
 * flash attention (its default): f32 Q, online softmax in tiles of keys (rt_attn_fn). K is
 * transposed per sequence and KV head (kt: nkv × hd
 * rows of T) so scores vectorize. */
static rt_error attention(rt_model *m, const rt_layer *L, int S, int T, int r0, char *msg)
{
    const rt_hparams *hp = &m->hp;
    const int nh = hp->n_head, nkv = hp->n_head_kv, hd = hp->head_dim, grp = nh / nkv, R = T - r0, N = S * T;
    const size_t QD = (size_t)nh * hd, KD = (size_t)nkv * hd;
    const float scale = 1.0f / sqrtf((float)hd);
    const int nth = nthreads(m);
    const size_t per = (rt_attn_scratch(T, hd) + 15) & ~(size_t)15; /* floats per thread */
    if (per * nth > m->probs_cap) {
        free(m->probs);
        m->probs = aligned_alloc(64, per * nth * sizeof(float));
        m->probs_cap = m->probs ? per * nth : 0;
        if (!m->probs)
            return rt_fail_(msg, RT_ERR_NOMEM, "out of memory for attention scores");
    }
    /* work items: (sequence, head, tile of 16 query rows r0..T-1) */
    const int ntile = (R + 15) / 16;
    const int64_t nwork = (int64_t)S * nh * ntile;
#pragma omp parallel num_threads(nth) if (N > 16)
    {
#pragma omp for schedule(static)
        for (int r = 0; r < N; r++) {
            float *q = m->q + (size_t)r * QD, *k = m->k + (size_t)r * KD;
            qkv_prepare(m, L, q, k, m->v + (size_t)r * KD);
            rope_row(m, q, r % T, nh, hd);
            rope_row(m, k, r % T, nkv, hd);
            rt_round_f16(m->isa, k, (int64_t)KD);
            rt_round_f16(m->isa, m->v + (size_t)r * KD, (int64_t)KD);
        }
#pragma omp for schedule(static)
        for (int sg = 0; sg < S * nkv; sg++) {
            const int s = sg / nkv, g = sg % nkv;
            rt_transpose(m->isa, m->k + (size_t)s * T * KD + (size_t)g * hd, (int64_t)KD, T, hd,
                         m->kt + (size_t)s * KD * T + (size_t)g * hd * T, T);
        }
        float *p = m->probs + (size_t)omp_get_thread_num() * per;
#pragma omp for schedule(static)
        for (int64_t wi = 0; wi < nwork; wi++) {
            const int s = (int)(wi / ((int64_t)nh * ntile)), rem = (int)(wi % ((int64_t)nh * ntile));
            const int h = rem / ntile, i0 = r0 + 16 * (rem % ntile), g = h / grp;
            const int rows = T - i0 < 16 ? T - i0 : 16;
            rt_attn_rows(m->isa, m->q + ((size_t)s * T + i0) * QD + (size_t)h * hd, (int64_t)QD, i0, rows,
                         m->kt + (size_t)s * KD * T + (size_t)g * hd * T, T,
                         m->v + (size_t)s * T * KD + (size_t)g * hd, (int64_t)KD, hd, scale, p,
                         m->att + ((size_t)s * R + (size_t)(i0 - r0)) * QD + (size_t)h * hd, (int64_t)QD);
        }
    }
    return RT_OK;
}

static void swiglu_rows(const rt_model *m, float *gate, const float *up, int T, int F, int nth)
{
#pragma omp parallel for schedule(static) num_threads(nth) if (T > 16)
    for (int t = 0; t < T; t++)
        rt_swiglu(m->isa, gate + (size_t)t * F, up + (size_t)t * F, F);
}

static int call_hook(const rt_hook *hook, int layer, rt_hook_point pt, const float *x, int T, int n)
{
    return hook && hook->fn ? hook->fn(hook->user, layer, pt, x, T, n) : 0;
}

/* ---------------------------------------------------------------- public passes */

/* Every matrix the layer has is in memory (absent ones do not count). */
static bool layer_loaded(const rt_model *m, int l)
{
    const rt_layer *L = &m->layers[l];
    const rt_weight *ws[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->wg, &L->wu, &L->wd};
    for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
        if (!ws[i]->data && ws[i]->idx >= 0)
            return false;
    return true;
}

/* Every matrix of a deferred model present (the whole passes need them all). */
static bool all_loaded(const rt_model *m)
{
    if (!m->deferred)
        return true;
    for (int l = 0; l < m->hp.n_layer; l++)
        if (!layer_loaded(m, l))
            return false;
    return (m->tok_embd.data || m->tok_embd.idx < 0) && (m->output.data || m->output.idx < 0);
}

rt_error rt_embed(rt_model *m, const int32_t *tokens, int n_tokens, float *hidden, char *msg)
{
    if (!m || !tokens || !hidden || n_tokens < 1 || n_tokens > RT_MAX_TOKENS)
        return rt_fail_(msg, RT_ERR_ARG, "rt_embed: bad arguments");
    const int E = m->hp.n_embd;
    const size_t rs = gguf_row_size(m->tok_embd.type, E);
    for (int t = 0; t < n_tokens; t++) {
        const int32_t id = tokens[t];
        if (id < 0 || id >= m->hp.n_vocab)
            return rt_fail_(msg, RT_ERR_ARG, "token id %d at position %d is outside the vocabulary (%d)", id, t,
                        m->hp.n_vocab);
        float *dst = hidden + (size_t)t * E;
        if (!m->tok_embd.data) { /* deferred: the row alone */
            char smsg[INP_MSG_SIZE];
            inp_error se = inp_read_f32(m->src, m->tok_embd.idx, id, 1, dst, smsg);
            if (se != INP_OK)
                return rt_fail_(msg, se == INP_ERR_NOMEM ? RT_ERR_NOMEM : RT_ERR_IO, "%s", smsg);
            continue;
        }
        const void *row = (const char *)m->tok_embd.data + (size_t)id * rs;
        if (m->tok_embd.type == GGUF_F32)
            memcpy(dst, row, (size_t)E * 4);
        else if (lq_dequantize_row(m->tok_embd.type, row, dst, E) != 0)
            return rt_fail_(msg, RT_ERR_UNSUPPORTED, "cannot decode token_embd rows of this type");
    }
    return RT_OK;
}

/* One layer on S sequences of T tokens (row s*T + t of hidden at position t). Only rows
 * r0..T-1 of each sequence are computed (the last layer of a forward pass needs no more):
 * they go to out, S*(T-r0) rows in sequence order; out may be hidden when r0 == 0.
 * normed: m->xn already holds RMSNorm(hidden) with this layer's attn_norm. next_norm: also
 * leave RMSNorm(out) with these weights in m->xn (the next step's first operation). */
static rt_error layer_forward(rt_model *m, int layer, float *hidden, int S, int T, int r0, float *out, int normed,
                              const float *next_norm, const rt_hook *hook, char *msg)
{
    const int N = S * T, R = T - r0, NR = S * R;
    rt_error e = ensure_scratch(m, N, T, msg);
    if (e != RT_OK)
        return e;
    const rt_hparams *hp = &m->hp;
    const rt_layer *L = &m->layers[layer];
    const int E = hp->n_embd, F = hp->n_ff, hd = hp->head_dim;
    const int QD = hp->n_head * hd;
    const int nth = nthreads(m);

    /* attention block: Q, K and V for every row, the rest for rows r0.. of each sequence */
    if (!normed)
        rms_norm_rows(m, hidden, L->attn_norm, N, E, hp->rms_eps, m->xn, nth);
    if (call_hook(hook, layer, RT_HOOK_ATTN_QKV, m->xn, N, E))
        return rt_fail_(msg, RT_ERR_HOOK, "layer %d: stopped by the hook", layer);
    matmul(m, &L->wk, m->xn, N, m->k, 0);
    matmul(m, &L->wv, m->xn, N, m->v, reuse_level(&L->wk, &L->wv));
    /* act now holds x converted for V's vec-dot type, whatever K's was */
    matmul(m, &L->wq, m->xn, N, m->q, reuse_level(&L->wv, &L->wq));
    if ((e = attention(m, L, S, T, r0, msg)) != RT_OK)
        return e;
    if (call_hook(hook, layer, RT_HOOK_ATTN_OUT, m->att, NR, QD))
        return rt_fail_(msg, RT_ERR_HOOK, "layer %d: stopped by the hook", layer);
    matmul(m, &L->wo, m->att, NR, m->xn, 0);
    /* residual and the feed-forward norm (each row of xn is read before it is overwritten) */
    residual_rows(m, out, hidden, m->xn, S, T, r0, L->ffn_norm, m->xn, nth);

    /* feed-forward block */
    if (call_hook(hook, layer, RT_HOOK_FFN_GATE_UP, m->xn, NR, E))
        return rt_fail_(msg, RT_ERR_HOOK, "layer %d: stopped by the hook", layer);
    matmul(m, &L->wg, m->xn, NR, m->gate, 0);
    matmul(m, &L->wu, m->xn, NR, m->up, reuse_level(&L->wg, &L->wu));
    swiglu_rows(m, m->gate, m->up, NR, F, nth);
    if (call_hook(hook, layer, RT_HOOK_FFN_DOWN, m->gate, NR, F))
        return rt_fail_(msg, RT_ERR_HOOK, "layer %d: stopped by the hook", layer);
    matmul(m, &L->wd, m->gate, NR, m->xn, 0);
    /* the residual, and with next_norm the norm the next step applies to these rows */
    residual_rows(m, out, out, m->xn, S, R, 0, next_norm, m->xn, nth);
    return RT_OK;
}

rt_error rt_layer_forward(rt_model *m, int layer, float *hidden, int n_tokens, const rt_hook *hook, char *msg)
{
    if (!m || !hidden || n_tokens < 1 || n_tokens > RT_MAX_TOKENS)
        return rt_fail_(msg, RT_ERR_ARG, "rt_layer_forward: bad arguments");
    if (layer < 0 || layer >= m->hp.n_layer)
        return rt_fail_(msg, RT_ERR_ARG, "layer %d is out of range (%d layers)", layer, m->hp.n_layer);
    if (!layer_loaded(m, layer))
        return rt_fail_(msg, RT_ERR_ARG, "layer %d's weights are not loaded (rt_model_load_layer)", layer);
    return layer_forward(m, layer, hidden, 1, n_tokens, 0, hidden, 0, NULL, hook, msg);
}

/* logits of n_rows rows: output(RMSNorm(hidden)); normed: m->xn holds RMSNorm(hidden). */
static rt_error final_logits(rt_model *m, const float *hidden, int n_rows, int normed, float *logits, char *msg)
{
    rt_error e = ensure_scratch(m, n_rows, 0, msg);
    if (e != RT_OK)
        return e;
    const rt_hparams *hp = &m->hp;
    if (!normed)
        rms_norm_rows(m, hidden, m->out_norm, n_rows, hp->n_embd, hp->rms_eps, m->xn, nthreads(m));
    const rt_weight *w = hp->tied_output ? &m->tok_embd : &m->output;
    matmul(m, w, m->xn, n_rows, logits, 0);
    return RT_OK;
}

rt_error rt_final_logits(rt_model *m, const float *hidden, int n_rows, float *logits, char *msg)
{
    if (!m || !hidden || !logits || n_rows < 1 || n_rows > RT_MAX_TOKENS)
        return rt_fail_(msg, RT_ERR_ARG, "rt_final_logits: bad arguments");
    if (!all_loaded(m))
        return rt_fail_(msg, RT_ERR_ARG, "rt_final_logits: the model's weights are not all loaded");
    return final_logits(m, hidden, n_rows, 0, logits, msg);
}

rt_error rt_forward_seqs(rt_model *m, const int32_t *tokens, int n_seq, int n_tokens, int first, float *logits,
                         char *msg)
{
    if (!m || !tokens || !logits || n_seq < 1 || n_tokens < 1 || n_tokens > RT_MAX_TOKENS ||
        (int64_t)n_seq * n_tokens > RT_MAX_TOKENS || first < 0 || first >= n_tokens)
        return rt_fail_(msg, RT_ERR_ARG, "rt_forward: bad arguments");
    if (!all_loaded(m))
        return rt_fail_(msg, RT_ERR_ARG, "rt_forward: the model's weights are not all loaded");
    const int N = n_seq * n_tokens;
    rt_error e = ensure_scratch(m, N, n_tokens, msg);
    if (e != RT_OK)
        return e;
    float *hidden = m->hidden;
    if ((e = rt_embed(m, tokens, N, hidden, msg)) != RT_OK)
        return e;
    const int L = m->hp.n_layer;
    float *last = first ? m->hc : hidden;
    /* each layer leaves the next step's norm of its output in m->xn */
    for (int l = 0; l < L; l++) {
        const int end = l == L - 1;
        e = layer_forward(m, l, hidden, n_seq, n_tokens, end ? first : 0, end ? last : hidden, l > 0,
                          end ? m->out_norm : m->layers[l + 1].attn_norm, NULL, msg);
        if (e != RT_OK)
            return e;
    }
    return final_logits(m, last, n_seq * (n_tokens - first), 1, logits, msg);
}

rt_error rt_forward(rt_model *m, const int32_t *tokens, int n_tokens, int first, float *logits, char *msg)
{
    return rt_forward_seqs(m, tokens, 1, n_tokens, first, logits, msg);
}
