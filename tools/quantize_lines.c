/* The lines qforge-quantize prints on standard output for the pipeline's events. */
#include "tools/quantize_lines.h"

#include <stdio.h>
#include <string.h>

#include "libgguf/gguf.h"
#include "tools/cli.h"

static const char *tname(int type)
{
    const gguf_type_traits *tr = gguf_type_info(type);
    return tr ? tr->name : "?";
}

/* Column widths once the plan is known. */
void ql_plan(ql_columns *o, const pl_report *r)
{
    for (size_t k = 0; k < r->n_tensors; k++) {
        char shape[96];
        cli_shape(r->tensors[k].n_dims, r->tensors[k].ne, shape, sizeof shape);
        if (strlen(r->tensors[k].name) > o->name_w)
            o->name_w = strlen(r->tensors[k].name);
        if (strlen(shape) > o->shape_w)
            o->shape_w = strlen(shape);
    }
    o->wd = 3;
    for (size_t v = r->n_tensors; v >= 1000; v /= 10)
        o->wd++;
}

void ql_tensor(const ql_columns *o, const pl_report *r, size_t k)
{
    const pl_tensor_report *t = &r->tensors[k];
    char shape[96], ib[32], ob[32], rm[32], lg[32], lr[32];
    printf("[%*zu/%*zu] %-*s %-*s %4s -> %-4s %10s -> %-10s", o->wd, k + 1, o->wd, r->n_tensors,
           (int)o->name_w, t->name, (int)o->shape_w, cli_shape(t->n_dims, t->ne, shape, sizeof shape),
           tname(t->input_type), tname(t->type), cli_bytes((double)t->in_bytes, ib),
           cli_bytes((double)t->out_bytes, ob));
    if (t->rmse >= 0)
        printf("  rmse %s", cli_sci(t->rmse, rm));
    if (t->gptq)
        printf("  gptq loss %s vs rtn %s", cli_sci(t->gptq_info.res.loss_gptq, lg),
               cli_sci(t->gptq_info.res.loss_rtn, lr));
    putchar('\n');
}

/* "[gptq] layer 3/6: attn q,k,v  loss 1.2e-3 vs rtn 2.5e-3", plus any damping retries. */
void ql_group(const pl_event *ev)
{
    char ls[32], lr[32];
    double lg = 0, lrt = 0;
    for (int i = 0; i < ev->n_gptq; i++) {
        lg += ev->gptq[i].res.loss_gptq;
        lrt += ev->gptq[i].res.loss_rtn;
    }
    printf("[gptq] layer %d/%d: %-12s loss %s vs rtn %s\n", ev->layer + 1, ev->n_layer, ev->text,
           cli_sci(lg, ls), cli_sci(lrt, lr));
    for (int i = 0; i < ev->n_gptq; i++) {
        const lq_gptq_result *res = &ev->gptq[i].res;
        if (res->retries)
            printf("[gptq] %s: H not positive definite; damping raised to %g x mean diag(H) "
                   "after %d retr%s\n", ev->gptq[i].name, res->damp_rel, res->retries,
                   res->retries == 1 ? "y" : "ies");
    }
}

void ql_calib(const pl_opts *o, const pl_event *ev)
{
    const pl_calib_params *p = &o->calib;
    const bool gptq = o->gptq;
    const pl_calib_report *c = &ev->report->calib;
    const pl_calib_stats *st = &c->stats;
    const double tt = st->total > 0 ? st->total : 1;
    if (ev->kind == PL_EV_CALIB_START)
        printf("[%s] calibration text %s (%zu bytes), %d chunks (seed %llu)%s\n",
               gptq ? "gptq" : "imatrix", p->name, c->text_bytes, p->samples,
               (unsigned long long)p->seed,
               gptq ? (p->act_order ? (p->sym ? ", act-order, symmetric" : ", act-order")
                                    : (p->sym ? ", symmetric" : ""))
                    : ", float model");
    else if (ev->kind == PL_EV_CALIB_DONE && gptq)
        printf("[gptq] %d tensors, %lld tokens (%zu in the text, %d x %d): %.2f s = forward %.2f s "
               "(%.0f%%), Hessians %.2f s (%.0f%%), solver %.2f s (%.0f%%), other %.2f s; %d damping "
               "retries\n", st->n_tensors, (long long)st->tokens, c->n_text_tokens, c->n_chunks,
               c->n_ctx, st->total, st->forward, 100 * st->forward / tt, st->hessian,
               100 * st->hessian / tt, st->solver, 100 * st->solver / tt, st->other, st->retries);
    else if (ev->kind == PL_EV_CALIB_DONE)
        printf("[imatrix] float model on %lld tokens (%zu in the text, %d x %d): %.2f s = forward "
               "%.2f s, sums %.2f s\n", (long long)st->tokens, c->n_text_tokens, c->n_chunks,
               c->n_ctx, st->total, st->forward, st->hessian);
    else
        printf("[%s] importance matrix: %zu entries -> %s\n", gptq ? "gptq" : "imatrix",
               c->imatrix_entries, ev->text);
}
