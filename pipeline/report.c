/* The JSON report of a run (qforge-quantize --report). */
#include <stdbool.h>
#include <jansson.h>

#include "pipeline/pl_internal.h"

static const char *tname(int type)
{
    const gguf_type_traits *tr = gguf_type_info(type);
    return tr ? tr->name : "?";
}

static json_t *tensor_json(const pl_tensor_report *t, bool gptq)
{
    json_t *e = json_object();
    json_t *shape = json_array();
    for (uint32_t d = 0; d < t->n_dims; d++)
        json_array_append_new(shape, json_integer(t->ne[d]));
    json_object_set_new(e, "name", json_string(t->name));
    json_object_set_new(e, "shape", shape);
    json_object_set_new(e, "input_type", json_string(tname(t->input_type)));
    json_object_set_new(e, "type", json_string(tname(t->type)));
    json_object_set_new(e, "quantized", json_boolean(t->choice.quantize));
    json_object_set_new(e, "manual", json_boolean(t->choice.manual));
    json_object_set_new(e, "fallback", json_boolean(t->choice.fallback));
    json_object_set_new(e, "imatrix", json_boolean(t->imatrix));
    json_object_set_new(e, "input_bytes", json_integer((json_int_t)t->in_bytes));
    json_object_set_new(e, "bytes", json_integer((json_int_t)t->out_bytes));
    json_object_set_new(e, "rmse", t->rmse >= 0 ? json_real(t->rmse) : json_null());
    if (gptq) {
        const bool g = t->gptq;
        const lq_gptq_result *res = &t->gptq_info.res;
        json_object_set_new(e, "gptq_loss", g ? json_real(res->loss_gptq) : json_null());
        json_object_set_new(e, "rtn_loss", g ? json_real(res->loss_rtn) : json_null());
        json_object_set_new(e, "gptq_damp", g ? json_real(res->damp_rel) : json_null());
        json_object_set_new(e, "gptq_retries", g ? json_integer(res->retries) : json_null());
    }
    return e;
}

json_t *pl_report_json(const pl_report *r, const pl_opts *o)
{
    json_t *root = r && o ? json_object() : NULL;
    json_t *arr = root ? json_array() : NULL;
    if (!arr) {
        json_decref(root);
        return NULL;
    }
    json_object_set_new(root, "input", json_string(o->input_name));
    json_object_set_new(root, "output", o->output ? json_string(o->output) : json_null());
    json_object_set_new(root, "type", json_string(lq_ftype_name(o->ftype)));
    json_object_set_new(root, "file_type", json_integer(o->ftype));
    json_object_set_new(root, "threads", json_integer(r->nthreads));
    json_object_set_new(root, "dry_run", json_boolean(o->output == NULL));
    json_object_set_new(root, "imatrix", o->imatrix_name ? json_string(o->imatrix_name) : json_null());
    for (size_t i = 0; i < r->n_tensors; i++)
        json_array_append_new(arr, tensor_json(&r->tensors[i], o->gptq));
    json_object_set_new(root, "tensors", arr);
    const pl_calib_params *c = &o->calib;
    const pl_calib_stats *st = &r->calib.stats;
    if (o->gptq)
        json_object_set_new(root, "gptq", json_pack("{s:s?, s:i, s:i, s:I, s:f, s:b, s:b, s:f, s:f, s:f, s:f}",
            "calib", r->calib.ran ? c->name : NULL, "calib_samples", c->samples,
            "calib_ctx", r->calib.n_ctx, "seed", (json_int_t)c->seed, "damp", c->damp,
            "act_order", c->act_order, "asymmetric", !c->sym,
            "seconds_forward", st->forward, "seconds_hessian", st->hessian,
            "seconds_solver", st->solver, "seconds_total", st->total));
    json_object_set_new(root, "input_bytes", json_integer((json_int_t)r->in_bytes));
    json_object_set_new(root, "largest_input_tensor_bytes", json_integer((json_int_t)r->largest_in_bytes));
    json_object_set_new(root, "output_bytes", json_integer((json_int_t)r->out_bytes));
    json_object_set_new(root, "file_bytes", r->file_bytes ? json_integer((json_int_t)r->file_bytes) : json_null());
    json_object_set_new(root, "n_elements", json_integer((json_int_t)r->n_elements));
    json_object_set_new(root, "bpw", json_real(r->n_elements > 0 ? r->out_bytes * 8.0 / r->n_elements : 0));
    json_object_set_new(root, "seconds", json_real(r->seconds));
    return root;
}
