/* The plan: which tensors, in which order, to which type, with which importance data. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/pl_internal.h"

static bool is_float_type(int t) { return t == GGUF_F32 || t == GGUF_F16 || t == GGUF_BF16; }

static const char *tname(int type)
{
    const gguf_type_traits *tr = gguf_type_info(type);
    return tr ? tr->name : "?";
}

/* Dimensions as ggml counts them: trailing dimensions of 1 dropped. */
static uint32_t ggml_n_dims(const inp_tensor *t)
{
    uint32_t n = 1;
    for (uint32_t d = 1; d < GGUF_MAX_DIMS; d++)
        if (t->ne[d] > 1)
            n = d + 1;
    return n;
}

static bool ends_with(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcmp(s + n - m, suf) == 0;
}

static int64_t md_int(const gguf_reader *md, const char *arch, const char *suffix, int64_t dflt)
{
    char key[256];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    int64_t v;
    if (gguf_get_int(md, key, &v) != GGUF_OK || v < 0 || v > (1 << 20))
        return dflt;
    return v;
}

/* What the mixture rules need to know of the model. */
static lq_mix_model model_facts(const inp_source *s, char *arch_buf, size_t arch_size)
{
    const gguf_reader *md = inp_metadata(s);
    lq_mix_model m;
    memset(&m, 0, sizeof m);
    const gguf_str *arch = NULL;
    snprintf(arch_buf, arch_size, "%s", "llama");
    if (md && gguf_get_str(md, "general.architecture", &arch) == GGUF_OK)
        snprintf(arch_buf, arch_size, "%s", arch->str);
    m.arch = arch_buf;
    /* block count: from the metadata, else the highest blk.N + 1 */
    int64_t max_blk = -1;
    for (int64_t i = 0; i < inp_n_tensors(s); i++) {
        int b;
        if (sscanf(inp_tensor_at(s, i)->name, "blk.%d.", &b) == 1 && b > max_blk)
            max_blk = b;
    }
    m.n_layer = md ? (int)md_int(md, arch_buf, "block_count", max_blk + 1) : (int)(max_blk + 1);
    if (md) {
        m.n_head = (int)md_int(md, arch_buf, "attention.head_count", 0);
        m.n_head_kv = (int)md_int(md, arch_buf, "attention.head_count_kv", m.n_head);
        m.n_expert = (int)md_int(md, arch_buf, "expert_count", 0);
    }
    return m;
}

/* The mixture's choice for every tensor (already in llama-quantize's order). */
static pl_error plan_mix(pl_job *j)
{
    pl_report *r = j->r;
    const size_t n = r->n_tensors;
    lq_mix_tensor *mt = calloc(n ? n : 1, sizeof *mt);
    lq_mix_choice *ch = calloc(n ? n : 1, sizeof *ch);
    if (!mt || !ch) {
        free(mt);
        free(ch);
        return pl_fail(j->msg, PL_ERR_NOMEM, "out of memory");
    }
    const bool ckpt = inp_is_checkpoint(j->src);
    char arch[128], lmsg[LQ_MSG_SIZE];
    lq_mix_model model = model_facts(j->src, arch, sizeof arch);
    /* the description's tensor categories; an unknown architecture or name: the name rules */
    const arch_desc *ad = arch_find(arch);
    for (size_t k = 0; k < n; k++) {
        const inp_tensor *t = inp_tensor_at(j->src, j->src_index[k]);
        mt[k].name = t->name;
        mt[k].n_dims = t->n_dims;
        memcpy(mt[k].ne, t->ne, sizeof mt[k].ne);
        /* a checkpoint is planned as if converted with --outtype f32 */
        mt[k].type = ckpt ? GGUF_F32 : t->type;
        mt[k].category = arch_mix_category(ad, t->name, &mt[k].layer);
    }
    lq_mix_params mix = j->o->mix;
    mix.has_imatrix = mix.has_imatrix || j->o->imatrix != NULL;
    lq_error le = lq_mix_plan(j->o->ftype, &model, mt, n, &mix, ch, lmsg);
    pl_error e = PL_OK;
    if (le != LQ_OK)
        e = pl_fail(j->msg, le == LQ_ERR_NOMEM ? PL_ERR_NOMEM : PL_ERR_MODEL, "%s: %s",
                    j->o->input_name, lmsg);
    for (size_t k = 0; k < n && e == PL_OK; k++) {
        r->tensors[k].choice = ch[k];
        r->tensors[k].type = ch[k].type;
        for (size_t a = 0; a < j->o->n_assign; a++)
            if (!strcmp(j->o->assign_names[a], r->tensors[k].name)) {
                const int t = j->o->assign_types[a];
                lq_mix_choice *c = &r->tensors[k].choice;
                c->type = c->wanted = r->tensors[k].type = t;
                c->fallback = false;
                c->manual = true;
                c->quantize = t != mt[k].type;
                break;
            }
    }
    free(mt);
    free(ch);
    return e;
}

/* qforge-convert's rule: only float tensors; 1-D and norms F32, the rest float_type. */
static pl_error plan_float(pl_job *j)
{
    for (size_t k = 0; k < j->r->n_tensors; k++) {
        pl_tensor_report *t = &j->r->tensors[k];
        if (!is_float_type(t->input_type))
            return pl_fail(j->msg, PL_ERR_MODEL,
                           "%s: tensor '%s' has type %s; only f32, f16 and bf16 tensors convert",
                           j->o->input_name, t->name, tname(t->input_type));
        t->type = (t->n_dims <= 1 || ends_with(t->name, "_norm.weight")) ? GGUF_F32
                                                                          : j->o->float_type;
        t->choice.type = t->choice.wanted = t->type;
        t->choice.quantize = t->type != t->input_type;
    }
    return PL_OK;
}

/* Importance data for tensor k when it is requantized to a block type. */
static pl_error match_imatrix(pl_job *j, size_t k)
{
    pl_tensor_report *t = &j->r->tensors[k];
    const inp_tensor *it = inp_tensor_at(j->src, j->src_index[k]);
    if (!j->o->imatrix || t->type == t->input_type || is_float_type(t->type))
        return PL_OK;
    size_t ni = 0;
    const float *v = inp_imatrix_find(j->o->imatrix, t->name, &ni);
    if (!v) {
        char w[GGUF_MAX_NAME + 64];
        snprintf(w, sizeof w, "%s: no importance data for this tensor", t->name);
        return pl_notify(j, (pl_event){.kind = PL_EV_WARNING, .text = w});
    }
    if (ni != (size_t)(it->ne[0] * it->ne[2])) {
        if (strcmp(t->name, "token_embd.weight") && strcmp(t->name, "per_layer_token_embd.weight"))
            return pl_fail(j->msg, PL_ERR_FORMAT,
                           "%s: importance data for '%s' has %zu values, the tensor needs %lld",
                           j->o->imatrix_name, t->name, ni, (long long)(it->ne[0] * it->ne[2]));
        return PL_OK;
    }
    j->imat[k] = v;
    t->imatrix = true;
    j->r->n_imatrix++;
    return PL_OK;
}

/* Every planned type can be written from the input; sizes, warnings, importance data. */
static pl_error check_plan(pl_job *j)
{
    pl_report *r = j->r;
    for (size_t k = 0; k < r->n_tensors; k++) {
        pl_tensor_report *t = &r->tensors[k];
        const int64_t ne0 = t->ne[0];
        if (!lq_can_quantize(t->type) && t->type != t->input_type)
            return pl_fail(j->msg, PL_ERR_MODEL, "%s: tensor '%s': cannot write type %s",
                           j->o->input_name, t->name, tname(t->type));
        if (t->type != t->input_type && !is_float_type(t->input_type))
            return pl_fail(j->msg, PL_ERR_MODEL, "%s: tensor '%s': requantizing from %s is not "
                           "supported", j->o->input_name, t->name, tname(t->input_type));
        t->out_bytes = (uint64_t)inp_n_rows(inp_tensor_at(j->src, j->src_index[k])) *
                       gguf_row_size(t->type, ne0);
        r->out_bytes += t->out_bytes;
        pl_error e = PL_OK;
        if (t->choice.fallback) {
            r->n_fallback++;
            char w[GGUF_MAX_NAME + 128];
            snprintf(w, sizeof w, "%s: row length %lld does not fit %s, using %s", t->name,
                     (long long)ne0, tname(t->choice.wanted), tname(t->type));
            e = pl_notify(j, (pl_event){.kind = PL_EV_WARNING, .text = w});
        }
        if (e == PL_OK)
            e = match_imatrix(j, k);
        if (e != PL_OK)
            return e;
    }
    return PL_OK;
}

pl_error pl_plan(pl_job *j)
{
    pl_report *r = j->r;
    const size_t n = (size_t)inp_n_tensors(j->src);
    const bool mix = j->o->plan == PL_PLAN_MIX;
    r->tensors = calloc(n ? n : 1, sizeof *r->tensors);
    j->src_index = calloc(n ? n : 1, sizeof *j->src_index);
    j->imat = calloc(n ? n : 1, sizeof *j->imat);
    const char **names = calloc(n ? n : 1, sizeof *names);
    size_t *order = calloc(n ? n : 1, sizeof *order);
    pl_error e = PL_OK;
    if (!r->tensors || !j->src_index || !j->imat || !names || !order)
        e = pl_fail(j->msg, PL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; e == PL_OK && i < n; i++) {
        names[i] = inp_tensor_at(j->src, (int64_t)i)->name;
        order[i] = i;
    }
    /* tensors in llama-quantize's order, or the source's */
    if (e == PL_OK && mix && lq_mix_sort(names, n, order) != LQ_OK)
        e = pl_fail(j->msg, PL_ERR_NOMEM, "out of memory");
    for (size_t k = 0; e == PL_OK && k < n; k++) {
        pl_tensor_report *t = &r->tensors[k];
        const inp_tensor *it = inp_tensor_at(j->src, (int64_t)order[k]);
        j->src_index[k] = (int64_t)order[k];
        t->name = it->name;
        t->n_dims = mix ? ggml_n_dims(it) : it->n_dims;
        memcpy(t->ne, it->ne, sizeof t->ne);
        t->input_type = t->type = it->type;
        t->in_bytes = (uint64_t)inp_n_rows(it) * gguf_row_size(it->type, it->ne[0]);
        t->rmse = -1;
        r->in_bytes += t->in_bytes;
        if (t->in_bytes > r->largest_in_bytes)
            r->largest_in_bytes = t->in_bytes;
        r->n_elements += (double)inp_n_rows(it) * (double)it->ne[0];
    }
    r->n_tensors = e == PL_OK ? n : 0;
    free(names);
    free(order);
    if (e == PL_OK)
        e = mix ? plan_mix(j) : plan_float(j);
    if (e == PL_OK)
        e = check_plan(j);
    return e;
}
