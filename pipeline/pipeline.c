/* The pipeline's runs: plan, calibrate, write (see pipeline.h). */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/calib.h"
#include "pipeline/pl_internal.h"
#include "pipeline/pl_mpi.h"

void pl_opts_init(pl_opts *o)
{
    memset(o, 0, sizeof *o);
    o->plan = PL_PLAN_MIX;
    o->ftype = -1;
    o->mix = lq_mix_params_default();
    o->float_type = GGUF_F16;
    o->measure = true;
    o->calib.samples = 128;
    o->calib.damp = 0.01;
}

void pl_report_free(pl_report *r)
{
    if (!r)
        return;
    free(r->tensors);
    free(r);
}

pl_error pl_notify(pl_job *j, pl_event ev)
{
    if (!j->o->progress)
        return PL_OK;
    ev.report = j->r;
    if (j->o->progress(j->o->user, &ev))
        return pl_fail(j->msg, PL_ERR_STOPPED, "stopped by the caller");
    return PL_OK;
}

/* ---------------------------------------------------------------- calibration */

typedef struct {
    pl_job *j;
    pl_error err;            /* a failure of the callbacks below */
    char msg[PL_MSG_SIZE];
} calib_ctx;

/* Each GPTQ tensor goes to the output as soon as it is final. */
static int gptq_emit(void *user, const pl_gptq_info *info, const void *data, size_t nbytes)
{
    calib_ctx *c = user;
    pl_report *r = c->j->r;
    for (size_t k = 0; k < r->n_tensors; k++) {
        pl_tensor_report *t = &r->tensors[k];
        if (strcmp(t->name, info->name))
            continue;
        if (nbytes != t->out_bytes || t->gptq) {
            c->err = pl_fail(c->msg, PL_ERR_INTERNAL, "%s: %zu GPTQ bytes, the plan has %llu%s",
                             info->name, nbytes, (unsigned long long)t->out_bytes,
                             t->gptq ? " (written already)" : "");
            return 1;
        }
        const double t0 = pl_now();
        pl_error e = pl_write_gptq(c->j, k, data, nbytes);
        t->seconds += pl_now() - t0;
        if (e != PL_OK) {
            c->err = e;
            memcpy(c->msg, c->j->msg, PL_MSG_SIZE);
            return 1;
        }
        t->gptq = true;
        t->gptq_info = *info;
        t->gptq_info.name = t->name;
        return 0;
    }
    c->err = pl_fail(c->msg, PL_ERR_INTERNAL, "%s: GPTQ made a tensor the plan does not have",
                     info->name);
    return 1;
}

/* The group's label: "attn q,k,v", "attn_output", "ffn gate,up", "ffn_down", "output". */
static void group_label(const pl_gptq_info *in, int n, char *label, size_t size)
{
    size_t k = 0;
    label[0] = 0;
    if (n == 1 && strncmp(in[0].name, "blk.", 4)) { /* "output.weight": "output" */
        const char *dot = strchr(in[0].name, '.');
        snprintf(label, size, "%.*s", dot ? (int)(dot - in[0].name) : (int)strlen(in[0].name), in[0].name);
        return;
    }
    for (int i = 0; i < n; i++) {
        /* "blk.3.attn_q.weight": group prefix "attn", member "q" */
        const char *nm = strchr(in[i].name + 4, '.') + 1, *dot = strchr(nm, '.');
        const char *us = strchr(nm, '_');
        const int plen = (int)(dot - nm), pre = us && us < dot ? (int)(us - nm) : plen;
        const int mem = pre < plen ? plen - pre - 1 : 0;
        if (n == 1)
            snprintf(label, size, "%.*s", plen, nm);
        else if (i == 0)
            k = (size_t)snprintf(label, size, "%.*s %.*s", pre, nm, mem, nm + pre + 1);
        else if (k < size)
            k += (size_t)snprintf(label + k, size - k, ",%.*s", mem, nm + pre + 1);
    }
}

static int gptq_group_done(void *user, int layer, int n_layer, const pl_gptq_info *in, int n)
{
    calib_ctx *c = user;
    char label[96];
    group_label(in, n, label, sizeof label);
    return pl_notify(c->j, (pl_event){.kind = PL_EV_CALIB_GROUP, .text = label, .layer = layer,
                                      .n_layer = n_layer, .gptq = in, .n_gptq = n}) != PL_OK;
}

/* Write the importance statistics to o->calib.imatrix_out. */
static pl_error write_imatrix(pl_job *j, const pl_imatrix_acc *im)
{
    const pl_calib_params *c = &j->o->calib;
    const pl_calib_report *cr = &j->r->calib;
    size_t n;
    const inp_imatrix_sums *e = pl_imatrix_acc_entries(im, &n);
    char imsg[INP_MSG_SIZE], gmsg[GGUF_MSG_SIZE];
    gguf_writer *w = gguf_writer_create();
    if (!w)
        return pl_fail(j->msg, PL_ERR_NOMEM, "out of memory");
    pl_error err = PL_OK;
    inp_error ie = inp_imatrix_declare(w, e, n, c->name ? c->name : "", (uint32_t)cr->n_chunks,
                                       (uint32_t)cr->n_ctx, imsg);
    if (ie != INP_OK)
        err = pl_fail(j->msg, ie == INP_ERR_NOMEM ? PL_ERR_NOMEM : PL_ERR_INTERNAL, "%s: %s",
                      c->imatrix_out, imsg);
    gguf_error ge = err == PL_OK ? gguf_writer_open(w, c->imatrix_out, gmsg) : GGUF_OK;
    if (ge != GGUF_OK)
        err = pl_fail(j->msg, pl_from_gguf(ge), "%s: %s", c->imatrix_out, gmsg);
    const bool opened = err == PL_OK;
    if (opened)
        err = pl_notify(j, (pl_event){.kind = PL_EV_TEMP_OPEN, .text = gguf_writer_temp_path(w)});
    if (err == PL_OK && (ie = inp_imatrix_write_data(w, e, n, imsg)) != INP_OK)
        err = pl_fail(j->msg, ie == INP_ERR_IO ? PL_ERR_IO : ie == INP_ERR_NOMEM ? PL_ERR_NOMEM
                                                                                 : PL_ERR_INTERNAL,
                      "%s: %s", c->imatrix_out, imsg);
    if (err == PL_OK && (ge = gguf_writer_finish(w, gmsg)) != GGUF_OK)
        err = pl_fail(j->msg, pl_from_gguf(ge), "%s: %s", c->imatrix_out, gmsg);
    gguf_writer_free(w);
    if (opened)
        pl_notify(j, (pl_event){.kind = PL_EV_TEMP_CLOSED});
    if (err == PL_OK) {
        j->r->calib.imatrix_entries = n;
        err = pl_notify(j, (pl_event){.kind = PL_EV_IMATRIX_DONE, .text = c->imatrix_out});
    }
    return err;
}

/* The calibration's failure as pl_run reports it: the file at fault first. */
static pl_error calib_failure(pl_job *j, calib_ctx *cc, pl_error e)
{
    const pl_opts *o = j->o;
    if (e == PL_ERR_STOPPED && cc->err != PL_OK) {
        memcpy(j->msg, cc->msg, PL_MSG_SIZE);
        return cc->err;
    }
    if (e == PL_ERR_FORMAT || e == PL_ERR_BUDGET) {
        char m[PL_MSG_SIZE];
        memcpy(m, j->msg, sizeof m);
        pl_fail(j->msg, e, "%s: %s", e == PL_ERR_FORMAT ? o->calib.name : o->input_name, m);
    }
    /* a bad argument inside the calibration is the model's or the text's, not the caller's */
    return e == PL_ERR_ARG ? PL_ERR_MODEL : e;
}

/* GPTQ of the planned linear weights (gptq) or the float model's pass, then the importance
 * matrix when asked: written here, or handed over in *keep (when not NULL) for the caller to
 * write with write_imatrix once the model's output is closed. */
static pl_error calibrate(pl_job *j, bool gptq, pl_imatrix_acc **keep)
{
    const pl_opts *o = j->o;
    const pl_calib_params *c = &o->calib;
    pl_report *r = j->r;
    if (!c->text)
        return pl_fail(j->msg, PL_ERR_ARG, "no calibration text");
    pl_calib_plan *plan = calloc(r->n_tensors ? r->n_tensors : 1, sizeof *plan);
    pl_imatrix_acc *im = c->imatrix_out ? pl_imatrix_acc_create() : NULL;
    calib_ctx cc = {.j = j, .err = PL_OK};
    pl_error e = PL_OK;
    if (!plan || (c->imatrix_out && !im)) {
        e = pl_fail(j->msg, PL_ERR_NOMEM, "out of memory");
        goto out;
    }
    pl_calib_opts ro;
    pl_calib_opts_init(&ro);
    for (size_t k = 0; k < r->n_tensors; k++)
        if (r->tensors[k].type != r->tensors[k].input_type && lq_gptq_supports(r->tensors[k].type))
            plan[ro.n_plan++] = (pl_calib_plan){r->tensors[k].name, r->tensors[k].type};
    ro.plan = plan;
    ro.gptq = gptq;
    ro.n_samples = c->samples;
    ro.n_ctx = c->ctx;
    ro.seed = c->seed;
    ro.max_memory = c->max_memory;
    ro.nthreads = j->nthreads;
    ro.calib.gptq.damp = c->damp;
    ro.calib.gptq.act_order = c->act_order;
    ro.calib.asym = !c->sym;
    ro.calib.emit = gptq_emit;
    ro.calib.group_done = gptq_group_done;
    ro.calib.user = &cc;
    ro.calib.imatrix = im;
    ro.calib.stats = &r->calib.stats;
    r->calib.ran = true;
    r->calib.text_bytes = c->len;
    if ((e = pl_notify(j, (pl_event){.kind = PL_EV_CALIB_START})) != PL_OK)
        goto out;
    e = pl_calib_run(j->src, c->text, c->len, &ro, j->msg);
    if (e != PL_OK) {
        e = calib_failure(j, &cc, e);
        goto out;
    }
    /* GPTQ split the chunks over the MPI ranks: every rank's importance sums */
    if (gptq && im && (e = pl_imatrix_acc_reduce(im, j->msg)) != PL_OK)
        goto out;
    r->calib.n_ctx = ro.n_ctx_used;
    r->calib.n_chunks = ro.n_chunks_used;
    r->calib.n_text_tokens = ro.n_text_tokens;
    e = pl_notify(j, (pl_event){.kind = PL_EV_CALIB_DONE});
    if (e == PL_OK && im && keep) {
        *keep = im;
        im = NULL;
    } else if (e == PL_OK && im) {
        e = write_imatrix(j, im);
    }
out:
    free(plan);
    pl_imatrix_acc_free(im);
    return e;
}

/* ---------------------------------------------------------------- runs */

static pl_error check_opts(const pl_opts *o, bool imatrix_only, char *msg)
{
    if (!o)
        return pl_fail(msg, PL_ERR_ARG, "pl_run: no options");
    if (imatrix_only) {
        if (!o->calib.imatrix_out || !o->calib.text)
            return pl_fail(msg, PL_ERR_ARG, "pl_run_imatrix: needs imatrix_out and a text");
        return PL_OK;
    }
    if (o->plan == PL_PLAN_MIX && !lq_ftype_name(o->ftype))
        return pl_fail(msg, PL_ERR_ARG, "unknown file type %d", o->ftype);
    if (o->plan == PL_PLAN_FLOAT && o->float_type != GGUF_F32 && o->float_type != GGUF_F16 &&
        o->float_type != GGUF_BF16)
        return pl_fail(msg, PL_ERR_ARG, "a float conversion writes f32, f16 or bf16");
    if (o->plan != PL_PLAN_MIX && o->plan != PL_PLAN_FLOAT)
        return pl_fail(msg, PL_ERR_ARG, "unknown plan kind %d", (int)o->plan);
    if (o->gptq && o->plan != PL_PLAN_MIX)
        return pl_fail(msg, PL_ERR_ARG, "GPTQ needs a quantization plan");
    if (o->gptq && o->output && !o->calib.text)
        return pl_fail(msg, PL_ERR_ARG, "GPTQ needs a calibration text");
    return PL_OK;
}

static pl_error run(inp_source *src, const pl_opts *o, bool imatrix_only, pl_report **report,
                    char *msg)
{
    const double t0 = pl_now();
    if (report)
        *report = NULL;
    pl_error e = src ? check_opts(o, imatrix_only, msg) : pl_fail(msg, PL_ERR_ARG, "pl_run: no source");
    if (e != PL_OK)
        return e;
    pl_report *r = calloc(1, sizeof *r);
    if (!r)
        return pl_fail(msg, PL_ERR_NOMEM, "out of memory");
    pl_job j = {.src = src, .o = o, .r = r, .msg = msg};
    j.nthreads = o->nthreads > 0 ? o->nthreads : omp_get_max_threads();
    j.chunk_bytes = o->chunk_bytes ? o->chunk_bytes : PL_CHUNK_BYTES;
    r->nthreads = j.nthreads;
    pl_imatrix_acc *im = NULL;
    if (imatrix_only) {
        e = calibrate(&j, false, NULL);
    } else {
        /* the output is open before GPTQ runs: each tensor is written once final, so memory
         * stays near one layer's; the importance matrix is written after the model */
        e = pl_plan(&j);
        if (e == PL_OK)
            e = pl_notify(&j, (pl_event){.kind = PL_EV_PLAN});
        if (e == PL_OK)
            e = pl_write_open(&j);
        if (e == PL_OK && o->gptq && o->output)
            e = calibrate(&j, true, &im);
        if (e == PL_OK)
            e = pl_write(&j);
        pl_write_close(&j);
        if (e == PL_OK && im && pl_mpi_rank() == 0)
            e = write_imatrix(&j, im);
    }
    pl_imatrix_acc_free(im);
    free(j.src_index);
    free((void *)j.imat);
    r->seconds = pl_now() - t0;
    if (report)
        *report = r;
    else
        pl_report_free(r);
    return e;
}

pl_error pl_run(inp_source *src, const pl_opts *o, pl_report **report, char *msg)
{
    return run(src, o, false, report, msg);
}

pl_error pl_run_imatrix(inp_source *src, const pl_opts *o, pl_report **report, char *msg)
{
    return run(src, o, true, report, msg);
}
