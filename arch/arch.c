/* The registry of architecture descriptions and the helpers every reader shares. */
#include "arch/arch_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- registry */

extern const arch_desc arch_llama, arch_qwen2, arch_qwen3;

/* One line per architecture (the first one of a GGUF name is the one arch_find returns). */
static const arch_desc *const registry[] = {
    &arch_llama,
    &arch_qwen2,
    &arch_qwen3,
};
#define N_ARCH (sizeof registry / sizeof registry[0])

size_t arch_count(void) { return N_ARCH; }

const arch_desc *arch_at(size_t i) { return i < N_ARCH ? registry[i] : NULL; }

const arch_desc *arch_find(const char *gguf_name)
{
    for (size_t i = 0; gguf_name && i < N_ARCH; i++)
        if (strcmp(registry[i]->name, gguf_name) == 0)
            return registry[i];
    return NULL;
}

const arch_desc *arch_find_hf(const char *hf_class, const arch_hf_class **cls)
{
    for (size_t i = 0; hf_class && i < N_ARCH; i++)
        for (size_t c = 0; c < registry[i]->n_classes; c++)
            if (strcmp(registry[i]->classes[c].name, hf_class) == 0) {
                if (cls)
                    *cls = &registry[i]->classes[c];
                return registry[i];
            }
    return NULL;
}

void arch_list_names(bool hf, char *out, size_t n)
{
    size_t o = 0;
    if (n)
        out[0] = 0;
    for (size_t i = 0; i < N_ARCH; i++) {
        size_t nc = hf ? registry[i]->n_classes : 1;
        for (size_t c = 0; c < nc; c++) {
            const char *name = hf ? registry[i]->classes[c].name : registry[i]->name;
            if (!hf && arch_find(name) != registry[i])
                continue; /* a GGUF name already listed */
            int k = snprintf(out + o, n > o ? n - o : 0, "%s%s", o ? ", " : "", name);
            if (k < 0 || (size_t)k >= (n > o ? n - o : 0))
                return;
            o += (size_t)k;
        }
    }
}

/* ---------------------------------------------------------------- hyper-parameters */

double arch_hp_get(const arch_hparams *hp, arch_hp id)
{
    switch (id) {
    case ARCH_HP_N_LAYER: return (double)hp->n_layer;
    case ARCH_HP_N_CTX: return (double)hp->n_ctx;
    case ARCH_HP_N_EMBD: return (double)hp->n_embd;
    case ARCH_HP_N_FF: return (double)hp->n_ff;
    case ARCH_HP_N_HEAD: return (double)hp->n_head;
    case ARCH_HP_N_HEAD_KV: return (double)hp->n_head_kv;
    case ARCH_HP_ROPE_SCALING_TYPE: return (double)hp->rope_scaling.type;
    case ARCH_HP_ROPE_SCALING_FACTOR: return hp->rope_scaling.factor;
    case ARCH_HP_ROPE_BASE: return hp->rope_base;
    case ARCH_HP_RMS_EPS: return hp->rms_eps;
    case ARCH_HP_KEY_LENGTH: case ARCH_HP_VALUE_LENGTH: case ARCH_HP_ROPE_DIM: return (double)hp->head_dim;
    case ARCH_HP_N_VOCAB: return (double)hp->n_vocab;
    default: return 0;
    }
}

void arch_hp_set(arch_hparams *hp, arch_hp id, double v)
{
    switch (id) {
    case ARCH_HP_N_LAYER: hp->n_layer = (int64_t)v; break;
    case ARCH_HP_N_CTX: hp->n_ctx = (int64_t)v; break;
    case ARCH_HP_N_EMBD: hp->n_embd = (int64_t)v; break;
    case ARCH_HP_N_FF: hp->n_ff = (int64_t)v; break;
    case ARCH_HP_N_HEAD: hp->n_head = (int64_t)v; break;
    case ARCH_HP_N_HEAD_KV: hp->n_head_kv = (int64_t)v; break;
    case ARCH_HP_ROPE_SCALING_FACTOR: hp->rope_scaling.factor = v; break;
    case ARCH_HP_ROPE_BASE: hp->rope_base = v; break;
    case ARCH_HP_RMS_EPS: hp->rms_eps = v; break;
    case ARCH_HP_KEY_LENGTH: case ARCH_HP_VALUE_LENGTH: hp->head_dim = (int64_t)v; break;
    case ARCH_HP_N_VOCAB: hp->n_vocab = (int64_t)v; break;
    default: break;
    }
}

bool arch_key_written(const arch_key *k, const arch_hparams *hp)
{
    if (!k->gguf)
        return false;
    if ((k->flags & ARCH_KEY_IF_GIVEN) && !hp->head_dim_given)
        return false;
    if (k->id == ARCH_HP_ROPE_SCALING_TYPE || k->id == ARCH_HP_ROPE_SCALING_FACTOR)
        return hp->rope_scaling.type == ARCH_ROPE_SCALING_LINEAR;
    return true;
}

/* ---------------------------------------------------------------- tensors */

int64_t arch_dim_value(arch_dim d, const arch_hparams *hp)
{
    switch (d) {
    case ARCH_DIM_1: return 1;
    case ARCH_DIM_EMBD: return hp->n_embd;
    case ARCH_DIM_FF: return hp->n_ff;
    case ARCH_DIM_VOCAB: return hp->n_vocab;
    case ARCH_DIM_Q: return hp->n_head * hp->head_dim;
    case ARCH_DIM_KV: return hp->n_head_kv * hp->head_dim;
    case ARCH_DIM_HEAD: return hp->head_dim;
    case ARCH_DIM_ROPE: return hp->head_dim / 2;
    default: return 0;
    }
}

bool arch_tensor_is_layer(const arch_desc *d, const arch_tensor *t)
{
    return t >= d->layer && t < d->layer + d->n_layer;
}

/* name = PREFIX "N." suffix, N decimal without leading zeros (as formatted), at most 6 digits:
 * the row of rows[] whose field at offset off equals the suffix. */
static const arch_tensor *find_in(const arch_desc *d, const char *name, const char *prefix, bool hf, int *layer)
{
    *layer = -1;
    size_t pl = strlen(prefix);
    if (strncmp(name, prefix, pl) == 0) {
        const char *p = name + pl;
        size_t nd = strspn(p, "0123456789");
        if (nd == 0 || nd > 6 || p[nd] != '.' || (nd > 1 && p[0] == '0'))
            return NULL;
        for (size_t i = 0; i < d->n_layer; i++) {
            const char *suffix = hf ? d->layer[i].hf : d->layer[i].gguf;
            if (suffix && strcmp(p + nd + 1, suffix) == 0) {
                int l = 0;
                for (size_t k = 0; k < nd; k++)
                    l = l * 10 + (p[k] - '0');
                *layer = l;
                return &d->layer[i];
            }
        }
        return NULL;
    }
    for (size_t i = 0; i < d->n_globals; i++) {
        const char *full = hf ? d->globals[i].hf : d->globals[i].gguf;
        if (full && strcmp(name, full) == 0)
            return &d->globals[i];
    }
    return NULL;
}

const arch_tensor *arch_tensor_find(const arch_desc *d, const char *name, int *layer)
{
    return find_in(d, name, "blk.", false, layer);
}

const arch_tensor *arch_tensor_find_hf(const arch_desc *d, const char *name, int *layer)
{
    return find_in(d, name, d->hf_layer_prefix, true, layer);
}

const arch_tensor *arch_tensor_by_role(const arch_desc *d, arch_role role)
{
    for (size_t i = 0; i < d->n_globals; i++)
        if (d->globals[i].role == role)
            return &d->globals[i];
    for (size_t i = 0; i < d->n_layer; i++)
        if (d->layer[i].role == role)
            return &d->layer[i];
    return NULL;
}

bool arch_tensor_name(const arch_desc *d, const arch_tensor *t, int layer, char *out, size_t n)
{
    int k = arch_tensor_is_layer(d, t) ? snprintf(out, n, "blk.%d.%s", layer, t->gguf)
                                       : snprintf(out, n, "%s", t->gguf);
    return k >= 0 && (size_t)k < n;
}

bool arch_tensor_hf_name(const arch_desc *d, const arch_tensor *t, int layer, char *out, size_t n)
{
    if (!t->hf)
        return false;
    int k = arch_tensor_is_layer(d, t) ? snprintf(out, n, "%s%d.%s", d->hf_layer_prefix, layer, t->hf)
                                       : snprintf(out, n, "%s", t->hf);
    return k >= 0 && (size_t)k < n;
}

lq_mix_category arch_mix_category(const arch_desc *d, const char *gguf_name, int *layer)
{
    const arch_tensor *t = d ? arch_tensor_find(d, gguf_name, layer) : NULL;
    if (!t) {
        *layer = -1;
        return LQ_CAT_NONE;
    }
    return t->cat;
}

bool arch_hf_ignored(const char *hf)
{
    static const char *const suffixes[] = {".rotary_emb.inv_freq", ".attention.masked_bias", ".attention.bias"};
    size_t n = strlen(hf);
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        size_t m = strlen(suffixes[i]);
        if (n >= m && memcmp(hf + n - m, suffixes[i], m) == 0)
            return true;
    }
    return false;
}

/* ---------------------------------------------------------------- shared pieces */

const arch_group arch_groups_attn_swiglu[4] = {
    {ARCH_INPUT_ATTN, {"attn_q.weight", "attn_k.weight", "attn_v.weight", NULL}},
    {ARCH_INPUT_ATTN_OUT, {"attn_output.weight", NULL}},
    {ARCH_INPUT_FFN, {"ffn_gate.weight", "ffn_up.weight", NULL}},
    {ARCH_INPUT_FFN_DOWN, {"ffn_down.weight", NULL}},
};

/* LlamaModel.generate_extra_tensors: every step in float32 as torch does it there. */
bool arch_rope_freqs_llama3(const arch_hparams *hp, float *out)
{
    const arch_rope_scaling *rs = &hp->rope_scaling;
    if (rs->type != ARCH_ROPE_SCALING_LLAMA3)
        return false;
    const int64_t dim = hp->head_dim;
    const float base = (float)hp->rope_base, factor = (float)rs->factor, lo = (float)rs->low_freq_factor,
                old = (float)rs->original_ctx;
    /* Python floats meeting float32 tensors: converted to float32 first */
    const float low_wavelen = (float)((double)rs->original_ctx / rs->low_freq_factor),
                high_wavelen = (float)((double)rs->original_ctx / rs->high_freq_factor);
    const float span = (float)(rs->high_freq_factor - rs->low_freq_factor);
    for (int64_t i = 0; i < dim / 2; i++) {
        const float freq = 1.0f / powf(base, (float)(2 * i) / (float)dim);
        const float wavelen = (float)(2 * M_PI) / freq;
        if (wavelen < high_wavelen) {
            out[i] = 1.0f;
        } else if (wavelen > low_wavelen) {
            out[i] = factor;
        } else {
            const float smooth = (old / wavelen - lo) / span;
            out[i] = 1.0f / ((1.0f - smooth) / factor + smooth);
        }
    }
    return true;
}
