/* Allocation under a size budget: hulls, the greedy Lagrangian walk, the budgeted run, and the
 * sensitivity table's JSON (see budget.h). */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/budget.h"
#include "pipeline/pl_internal.h"

static uint64_t pad(uint64_t n, size_t align) { return (n + align - 1) / align * align; }

size_t pl_hull(const uint64_t *bytes, const double *err, size_t n, size_t *idx)
{
    /* sort indices by bytes, then error, then index (insertion sort: n is small) */
    size_t *ord = idx, m = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(err[i]))
            continue;
        size_t p = m++;
        while (p > 0) {
            const size_t q = ord[p - 1];
            if (bytes[q] < bytes[i] || (bytes[q] == bytes[i] && (err[q] < err[i] || (err[q] == err[i] && q < i))))
                break;
            ord[p] = q;
            p--;
        }
        ord[p] = i;
    }
    /* lower-left convex hull: keep points with strictly less error, pop non-convex ones */
    size_t h = 0;
    for (size_t a = 0; a < m; a++) {
        const size_t i = ord[a];
        if (h > 0 && err[i] >= err[idx[h - 1]])
            continue; /* dominated (also equal bytes: the first, lower error, is kept) */
        while (h >= 2) {
            const size_t p = idx[h - 2], q = idx[h - 1];
            /* q lies on or above the segment p -> i: drop it */
            const double lhs = (err[q] - err[p]) * (double)(bytes[i] - bytes[p]);
            const double rhs = (err[i] - err[p]) * (double)(bytes[q] - bytes[p]);
            if (lhs < rhs)
                break;
            h--;
        }
        idx[h++] = i;
    }
    return h;
}

void pl_alloc_free(pl_alloc *a)
{
    if (!a)
        return;
    free(a->cand);
    free(a);
}

typedef struct {
    size_t row, from, to; /* hull positions */
    double gain;          /* KLD saved per byte */
    uint64_t cost;
} step;

static int step_cmp(const void *pa, const void *pb)
{
    const step *a = pa, *b = pb;
    if (a->gain != b->gain)
        return a->gain > b->gain ? -1 : 1;
    if (a->row != b->row)
        return a->row < b->row ? -1 : 1;
    return a->from < b->from ? -1 : a->from > b->from;
}

pl_error pl_budget_allocate(const pl_sens *s, uint64_t budget, size_t align, pl_alloc **out,
                            char *msg)
{
    *out = NULL;
    if (!s || align == 0 || (align & (align - 1)))
        return pl_fail(msg, PL_ERR_ARG, "pl_budget_allocate: bad arguments");
    pl_alloc *a = calloc(1, sizeof *a);
    size_t *hull = calloc(s->n * PL_SENS_MAX_CAND + 1, sizeof *hull), *nh = calloc(s->n + 1, sizeof *nh);
    step *st = calloc(s->n * PL_SENS_MAX_CAND + 1, sizeof *st);
    size_t *at = calloc(s->n + 1, sizeof *at);
    pl_error e = PL_OK;
    if (!a || !hull || !nh || !st || !at || !(a->cand = calloc(s->n + 1, sizeof *a->cand))) {
        e = pl_fail(msg, PL_ERR_NOMEM, "out of memory");
        goto out;
    }
    a->n = s->n;
    size_t ns = 0;
    for (size_t k = 0; k < s->n && e == PL_OK; k++) {
        const pl_sens_row *r = &s->rows[k];
        uint64_t pb[PL_SENS_MAX_CAND];
        for (int c = 0; c < r->n; c++)
            pb[c] = pad(r->bytes[c], align);
        size_t *hk = hull + k * PL_SENS_MAX_CAND;
        nh[k] = pl_hull(pb, r->kld, (size_t)r->n, hk);
        if (nh[k] == 0) {
            e = pl_fail(msg, PL_ERR_FORMAT, "tensor '%s' has no measured candidate", r->name);
            break;
        }
        a->cand[k] = (int)hk[0];
        a->bytes += pb[hk[0]];
        a->kld_sum += r->kld[hk[0]];
        for (size_t i = 0; i + 1 < nh[k]; i++) {
            const uint64_t cost = pb[hk[i + 1]] - pb[hk[i]];
            st[ns++] = (step){k, i, i + 1, (r->kld[hk[i]] - r->kld[hk[i + 1]]) / (double)cost, cost};
        }
    }
    if (e == PL_OK && a->bytes > budget) {
        e = pl_fail(msg, PL_ERR_BUDGET, "the budget leaves %llu bytes for the weights; the "
                    "smallest candidates need %llu", (unsigned long long)budget,
                    (unsigned long long)a->bytes);
        goto out;
    }
    qsort(st, ns, sizeof *st, step_cmp);
    /* take the steps in order of gain; a step that does not fit blocks its tensor's later
     * steps (they follow it on the hull) but not other tensors' */
    bool *blocked = (bool *)calloc(s->n + 1, sizeof(bool));
    if (!blocked && e == PL_OK)
        e = pl_fail(msg, PL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; e == PL_OK && i < ns; i++) {
        const step *p = &st[i];
        if (blocked[p->row] || at[p->row] != p->from)
            continue;
        if (a->bytes + p->cost > budget) {
            blocked[p->row] = true;
            continue;
        }
        const pl_sens_row *r = &s->rows[p->row];
        const size_t *hk = hull + p->row * PL_SENS_MAX_CAND;
        a->bytes += p->cost;
        a->kld_sum -= r->kld[hk[p->from]] - r->kld[hk[p->to]];
        a->cand[p->row] = (int)hk[p->to];
        at[p->row] = p->to;
        a->lambda = p->gain;
    }
    free(blocked);
out:
    free(hull);
    free(nh);
    free(st);
    free(at);
    if (e != PL_OK) {
        pl_alloc_free(a);
        return e;
    }
    *out = a;
    return PL_OK;
}

/* ---------------------------------------------------------------- the budgeted run */

/* llama.cpp's file type named after the type holding most weights. */
static int ftype_of(const pl_sens *s, const pl_alloc *a)
{
    static const struct {
        int type, ftype;
    } map[] = {{GGUF_Q2_K, 10}, {GGUF_Q3_K, 12}, {GGUF_Q4_K, 15}, {GGUF_Q5_K, 17}, {GGUF_Q6_K, 18},
               {GGUF_Q8_0, 7}, {GGUF_F16, 1}, {GGUF_F32, 0}, {GGUF_Q4_0, 2}, {GGUF_Q4_1, 3},
               {GGUF_Q5_0, 8}, {GGUF_Q5_1, 9}, {GGUF_BF16, 32}};
    const size_t nm = sizeof map / sizeof map[0];
    double w[sizeof map / sizeof map[0]] = {0};
    for (size_t k = 0; k < s->n; k++)
        for (size_t i = 0; i < nm; i++)
            if (map[i].type == s->rows[k].type[a->cand[k]])
                w[i] += (double)s->rows[k].ne0 * (double)s->rows[k].rows;
    size_t best = 2;
    for (size_t i = 0; i < nm; i++)
        if (w[i] > w[best])
            best = i;
    return map[best].ftype;
}

static size_t alignment_of(const inp_source *src)
{
    int64_t v;
    const gguf_reader *md = inp_metadata(src);
    if (md && gguf_get_int(md, "general.alignment", &v) == GGUF_OK && v > 0 && v <= 1 << 20 &&
        !(v & (v - 1)))
        return (size_t)v;
    return GGUF_DEFAULT_ALIGNMENT;
}

pl_error pl_budget_run(inp_source *src, const pl_opts *o, const pl_sens *s, pl_budget_opts *b,
                       pl_alloc **alloc, pl_report **report, char *msg)
{
    *alloc = NULL;
    *report = NULL;
    b->kld_measured = -1;
    if (o->plan != PL_PLAN_MIX)
        return pl_fail(msg, PL_ERR_ARG, "a size budget needs a quantization plan");
    const size_t align = alignment_of(src);
    const char **names = calloc(s->n + 1, sizeof *names);
    int *types = calloc(s->n + 1, sizeof *types);
    if (!names || !types) {
        free(names);
        free(types);
        return pl_fail(msg, PL_ERR_NOMEM, "out of memory");
    }
    /* the fixed bytes: a dry plan with every allocated tensor at its first candidate */
    for (size_t k = 0; k < s->n; k++) {
        names[k] = s->rows[k].name;
        types[k] = s->rows[k].type[0];
    }
    pl_opts d = *o;
    d.output = NULL;
    d.gptq = false;
    d.progress = NULL;
    d.max_file_bytes = 0;
    d.ftype = o->ftype >= 0 ? o->ftype : 15;
    d.assign_names = names;
    d.assign_types = types;
    d.n_assign = s->n;
    pl_report *dr = NULL;
    pl_error e = pl_run(src, &d, &dr, msg);
    uint64_t alloc_bytes = 0;
    for (size_t k = 0; e == PL_OK && k < s->n; k++)
        alloc_bytes += pad(s->rows[k].bytes[0], align);
    if (e == PL_OK && dr->file_bytes < alloc_bytes)
        e = pl_fail(msg, PL_ERR_INTERNAL, "the dry plan's file is smaller than its tensors");
    if (e == PL_OK) {
        b->fixed = dr->file_bytes - alloc_bytes;
        if (b->budget <= b->fixed)
            e = pl_fail(msg, PL_ERR_BUDGET, "%s: a budget of %llu bytes does not even hold the "
                        "metadata and fixed tensors (%llu bytes)", o->input_name,
                        (unsigned long long)b->budget, (unsigned long long)b->fixed);
    }
    pl_report_free(dr);
    if (e == PL_OK && (e = pl_budget_allocate(s, b->budget - b->fixed, align, alloc, msg)) != PL_OK) {
        char m[PL_MSG_SIZE];
        memcpy(m, msg, sizeof m);
        pl_fail(msg, e, "%s: budget %llu bytes (%llu fixed): %s", o->input_name,
                (unsigned long long)b->budget, (unsigned long long)b->fixed, m);
    }
    if (e == PL_OK) {
        for (size_t k = 0; k < s->n; k++)
            types[k] = s->rows[k].type[(*alloc)->cand[k]];
        d = *o;
        d.assign_names = names;
        d.assign_types = types;
        d.n_assign = s->n;
        d.ftype = b->ftype = ftype_of(s, *alloc);
        d.max_file_bytes = b->budget;
        e = pl_run(src, &d, report, msg);
    }
    if (e == PL_OK && b->remeasure && o->output && b->sens_opts) {
        inp_source *q = NULL;
        e = pl_from_inp(inp_open(o->output, &q, msg));
        if (e == PL_OK)
            e = pl_sens_kld_file(src, q, b->sens_opts, &b->kld_measured, msg);
        inp_close(q);
    }
    free(names);
    free(types);
    return e;
}

/* ---------------------------------------------------------------- JSON */

static const char *tname(int t)
{
    const gguf_type_traits *tr = gguf_type_info(t);
    return tr ? tr->name : "?";
}

static json_t *row_json(const pl_sens_row *r)
{
    json_t *o = json_object(), *c = json_object();
    if (!o || !c) {
        json_decref(o);
        json_decref(c);
        return NULL;
    }
    json_object_set_new(o, "name", json_string(r->name));
    json_object_set_new(o, "ne0", json_integer(r->ne0));
    json_object_set_new(o, "rows", json_integer(r->rows));
    json_object_set_new(o, "layer", json_integer(r->layer));
    for (int k = 0; k < r->n; k++)
        json_object_set_new(c, tname(r->type[k]), json_pack("{s:I,s:f}", "bytes", (json_int_t)r->bytes[k],
                                                           "kld", r->kld[k]));
    json_object_set_new(o, "candidates", c);
    return o;
}

json_t *pl_sens_json(const pl_sens *s)
{
    json_t *root = json_object(), *rows = json_array();
    if (!root || !rows) {
        json_decref(root);
        json_decref(rows);
        return NULL;
    }
    json_object_set_new(root, "qforge_sensitivity", json_integer(1));
    json_object_set_new(root, "method", json_string(pl_sens_method_name(s->method)));
    json_object_set_new(root, "chunks", json_integer(s->n_chunks));
    json_object_set_new(root, "ctx", json_integer(s->n_ctx));
    json_object_set_new(root, "seed", json_integer((json_int_t)s->seed));
    json_object_set_new(root, "tokens", json_integer(s->tokens));
    json_object_set_new(root, "seconds", json_real(s->seconds));
    for (size_t k = 0; k < s->n; k++)
        json_array_append_new(rows, row_json(&s->rows[k]));
    json_object_set_new(root, "tensors", rows);
    return root;
}

static pl_error load_row(json_t *jr, const inp_source *src, pl_sens_row *r, const char *path,
                         char *msg)
{
    const char *name = NULL;
    json_int_t ne0 = 0, rows = 0, layer = 0;
    json_t *cand = NULL;
    if (json_unpack(jr, "{s:s,s:I,s:I,s:I,s:o}", "name", &name, "ne0", &ne0, "rows", &rows, "layer",
                    &layer, "candidates", &cand) || !json_is_object(cand))
        return pl_fail(msg, PL_ERR_FORMAT, "%s: a tensor entry lacks name, ne0, rows, layer or "
                       "candidates", path);
    const int64_t i = inp_find_tensor(src, name);
    const inp_tensor *t = i >= 0 ? inp_tensor_at(src, i) : NULL;
    if (!t || t->ne[0] != ne0 || inp_n_rows(t) != rows)
        return pl_fail(msg, PL_ERR_FORMAT, "%s: tensor '%s' is not in the model with that shape "
                       "(another model's table?)", path, name);
    if (!(r->name = strdup(name)))
        return pl_fail(msg, PL_ERR_NOMEM, "out of memory");
    r->ne0 = ne0;
    r->rows = rows;
    r->layer = (int)layer;
    const char *tn;
    json_t *v;
    json_object_foreach(cand, tn, v) {
        const int type = gguf_type_from_name(tn);
        double kld = NAN;
        json_int_t bytes = 0;
        if (r->n == PL_SENS_MAX_CAND || type < 0 || json_unpack(v, "{s:I,s:F}", "bytes", &bytes, "kld", &kld) ||
            lq_row_size(type, ne0) == 0 || (uint64_t)bytes != lq_row_size(type, ne0) * (uint64_t)rows ||
            !isfinite(kld))
            return pl_fail(msg, PL_ERR_FORMAT, "%s: tensor '%s': bad candidate '%s'", path, name, tn);
        r->type[r->n] = type;
        r->bytes[r->n] = (uint64_t)bytes;
        r->kld[r->n++] = kld;
    }
    return PL_OK;
}

pl_error pl_sens_load(const char *path, const inp_source *src, pl_sens **out, char *msg)
{
    *out = NULL;
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return pl_fail(msg, strstr(je.text, "unable to open") ? PL_ERR_IO : PL_ERR_FORMAT, "%s: %s",
                       path, je.text);
    json_t *rows = NULL;
    const char *method = NULL;
    json_int_t ver = 0, chunks = 0, ctx = 0, seed = 0, tokens = 0;
    pl_sens *s = calloc(1, sizeof *s);
    pl_error e = s ? PL_OK : pl_fail(msg, PL_ERR_NOMEM, "out of memory");
    if (e == PL_OK && (json_unpack(root, "{s:I,s:s,s:I,s:I,s:I,s:I,s:o}", "qforge_sensitivity", &ver,
                                   "method", &method, "chunks", &chunks, "ctx", &ctx, "seed", &seed,
                                   "tokens", &tokens, "tensors", &rows) ||
                       ver != 1 || !json_is_array(rows) || json_array_size(rows) > (1u << 20)))
        e = pl_fail(msg, PL_ERR_FORMAT, "%s: not a qforge sensitivity table (version 1)", path);
    if (e == PL_OK) {
        s->method = !strcmp(method, "gptq") ? PL_SENS_GPTQ : !strcmp(method, "imatrix") ? PL_SENS_IMATRIX
                                                                                     : PL_SENS_PLAIN;
        s->n_chunks = (int)chunks;
        s->n_ctx = (int)ctx;
        s->seed = (uint64_t)seed;
        s->tokens = tokens;
        if (!(s->rows = calloc(json_array_size(rows) + 1, sizeof *s->rows)))
            e = pl_fail(msg, PL_ERR_NOMEM, "out of memory");
    }
    for (size_t k = 0; e == PL_OK && k < json_array_size(rows); k++) {
        e = load_row(json_array_get(rows, k), src, &s->rows[k], path, msg);
        s->n = k + 1;
    }
    json_decref(root);
    if (e != PL_OK) {
        pl_sens_free(s);
        return e;
    }
    *out = s;
    return PL_OK;
}

json_t *pl_alloc_json(const pl_sens *s, const pl_alloc *a, const pl_budget_opts *b)
{
    json_t *root = json_object(), *rows = json_array();
    if (!root || !rows) {
        json_decref(root);
        json_decref(rows);
        return NULL;
    }
    json_object_set_new(root, "budget_bytes", json_integer((json_int_t)b->budget));
    json_object_set_new(root, "fixed_bytes", json_integer((json_int_t)b->fixed));
    json_object_set_new(root, "tensor_bytes", json_integer((json_int_t)a->bytes));
    json_object_set_new(root, "predicted_kld", json_real(a->kld_sum));
    if (b->kld_measured >= 0)
        json_object_set_new(root, "measured_kld", json_real(b->kld_measured));
    json_object_set_new(root, "lambda", json_real(a->lambda));
    json_object_set_new(root, "file_type", json_integer(b->ftype));
    json_object_set_new(root, "method", json_string(pl_sens_method_name(s->method)));
    for (size_t k = 0; k < s->n; k++) {
        json_t *r = row_json(&s->rows[k]);
        const int c = a->cand[k];
        json_object_set_new(r, "type", json_string(tname(s->rows[k].type[c])));
        json_object_set_new(r, "bytes", json_integer((json_int_t)s->rows[k].bytes[c]));
        json_object_set_new(r, "kld", json_real(s->rows[k].kld[c]));
        json_array_append_new(rows, r);
    }
    json_object_set_new(root, "tensors", rows);
    return root;
}
