/* Writing the planned GGUF: metadata, then every tensor converted, quantized or copied chunk
 * by chunk. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/pl_internal.h"
#include "pipeline/pl_mpi.h"

static bool is_float_type(int t) { return t == GGUF_F32 || t == GGUF_F16 || t == GGUF_BF16; }

static const char *tname(int type)
{
    const gguf_type_traits *tr = gguf_type_info(type);
    return tr ? tr->name : "?";
}

/* ---------------------------------------------------------------- metadata */

/* llama-quantize's: the input's metadata, quantization version and file type moved to the end,
 * then the importance matrix's keys. */
static pl_error metadata_mix(pl_job *j, gguf_writer *w)
{
    const pl_opts *o = j->o;
    gguf_error ge = GGUF_OK;
    if (inp_metadata(j->src))
        ge = gguf_writer_copy_kv(w, inp_metadata(j->src));
    if (ge != GGUF_OK)
        return pl_fail(j->msg, pl_from_gguf(ge), "%s: cannot copy metadata: %s", o->input_name,
                       gguf_strerror(ge));
    static const char *const moved[] = {"general.quantization_version", "general.file_type",
                                        "split.no", "split.count", "split.tensors.count"};
    for (size_t i = 0; i < sizeof moved / sizeof moved[0]; i++)
        gguf_writer_remove(w, moved[i]); /* absent is fine */
    ge = gguf_writer_set_u32(w, "general.quantization_version", 2);
    if (ge == GGUF_OK)
        ge = gguf_writer_set_u32(w, "general.file_type", (uint32_t)o->ftype);
    const inp_imatrix *im = o->imatrix;
    if (ge == GGUF_OK && im) {
        char buf[128];
        static const char *const ikeys[] = {"quantize.imatrix.file", "quantize.imatrix.dataset",
                                            "quantize.imatrix.entries_count",
                                            "quantize.imatrix.chunks_count"};
        for (size_t i = 0; i < 4; i++)
            gguf_writer_remove(w, ikeys[i]);
        snprintf(buf, sizeof buf, "%s", o->imatrix_name ? o->imatrix_name : ""); /* llama-quantize keeps 127 bytes */
        ge = gguf_writer_set_str(w, ikeys[0], buf);
        if (ge == GGUF_OK && inp_imatrix_dataset(im)) {
            snprintf(buf, sizeof buf, "%s", inp_imatrix_dataset(im));
            ge = gguf_writer_set_str(w, ikeys[1], buf);
        }
        if (ge == GGUF_OK)
            ge = gguf_writer_set_u32(w, ikeys[2], (uint32_t)inp_imatrix_n_entries(im));
        if (ge == GGUF_OK && inp_imatrix_chunk_count(im) > 0)
            ge = gguf_writer_set_u32(w, ikeys[3], (uint32_t)inp_imatrix_chunk_count(im));
    }
    if (ge != GGUF_OK)
        return pl_fail(j->msg, pl_from_gguf(ge), "cannot set metadata: %s", gguf_strerror(ge));
    return PL_OK;
}

/* qforge-convert's: the input's metadata with general.file_type set in place. */
static pl_error metadata_float(pl_job *j, gguf_writer *w)
{
    const int t = j->o->float_type;
    gguf_error ge = gguf_writer_copy_kv(w, inp_metadata(j->src));
    if (ge == GGUF_OK)
        ge = gguf_writer_set_u32(w, "general.file_type", t == GGUF_F32 ? 0 : t == GGUF_F16 ? 1 : 32);
    if (ge != GGUF_OK)
        return pl_fail(j->msg, pl_from_gguf(ge), "%s: cannot copy the metadata: %s",
                       j->o->input_name, gguf_strerror(ge));
    return PL_OK;
}

/* The writer with metadata and tensors declared; the file's size checked against the cap. */
static pl_error declare_output(pl_job *j, gguf_writer **out)
{
    const pl_opts *o = j->o;
    const bool mix = o->plan == PL_PLAN_MIX;
    gguf_writer *w = gguf_writer_create();
    if (!w)
        return pl_fail(j->msg, PL_ERR_NOMEM, "out of memory");
    pl_error e = mix ? metadata_mix(j, w) : metadata_float(j, w);
    char gmsg[GGUF_MSG_SIZE];
    for (size_t k = 0; e == PL_OK && k < j->r->n_tensors; k++) {
        const pl_tensor_report *t = &j->r->tensors[k];
        gguf_error ge = gguf_writer_add_tensor(w, t->name, t->n_dims, t->ne, t->type, gmsg);
        if (ge != GGUF_OK)
            e = pl_fail(j->msg, pl_from_gguf(ge), "%s: tensor '%s': %s",
                        mix ? (o->output ? o->output : "(dry run)") : o->input_name, t->name, gmsg);
    }
    if (e == PL_OK)
        j->r->file_bytes = gguf_writer_total_size(w);
    if (e == PL_OK && o->max_file_bytes && j->r->file_bytes > o->max_file_bytes)
        e = pl_fail(j->msg, PL_ERR_BUDGET, "%s: the file would have %llu bytes, more than the "
                    "%llu allowed", o->output ? o->output : o->input_name,
                    (unsigned long long)j->r->file_bytes, (unsigned long long)o->max_file_bytes);
    if (e != PL_OK) {
        gguf_writer_free(w);
        return e;
    }
    *out = w;
    return PL_OK;
}

/* The declared writer opened on the output (temp file). */
static pl_error open_output(pl_job *j, gguf_writer **out)
{
    const pl_opts *o = j->o;
    gguf_writer *w = NULL;
    pl_error e = declare_output(j, &w);
    if (e != PL_OK)
        return e;
    char gmsg[GGUF_MSG_SIZE];
    if (e == PL_OK) {
        gguf_error ge = gguf_writer_open(w, o->output, gmsg);
        if (ge != GGUF_OK)
            e = pl_fail(j->msg, pl_from_gguf(ge), "%s: %s", o->output, gmsg);
    }
    if (e == PL_OK)
        e = pl_notify(j, (pl_event){.kind = PL_EV_TEMP_OPEN, .text = gguf_writer_temp_path(w)});
    if (e != PL_OK) {
        const bool opened = gguf_writer_temp_path(w) != NULL;
        gguf_writer_free(w); /* removes the temp file */
        if (opened)
            pl_notify(j, (pl_event){.kind = PL_EV_TEMP_CLOSED});
        return e;
    }
    *out = w;
    return PL_OK;
}

/* ---------------------------------------------------------------- buffers */

/* Output is made in chunks of up to chunk_bytes. While the threads make one chunk, the master
 * thread first writes the previous one (kept in the other buffer), so writing overlaps work
 * and there is one OpenMP barrier per chunk, not per few rows. */
typedef struct {
    pl_job *j;
    gguf_writer *w;
    unsigned char *q[2]; /* two chunk buffers */
    int cur;             /* the buffer the next chunk goes to; the other holds `pending` bytes */
    size_t pending;
    size_t pending_k;    /* of tensor pending_k */
    unsigned char *raw;  /* raw copies that cannot be written in place */
    float *rows;         /* per thread: one input row as F32 and its dequantized copy */
    double *rowerr;      /* squared error per row of the chunk */
    size_t cap_bytes;    /* bytes of q[i] and raw */
    int64_t cap_rows;    /* rows of the longest chunk */
    int64_t max_ne0;
    int nthreads;
} buffers;

/* Rows per chunk for rows of rs bytes. */
static int64_t chunk_rows(size_t chunk_bytes, size_t rs, int64_t nrows)
{
    int64_t step = (int64_t)(chunk_bytes / rs);
    if (step < 1)
        step = 1;
    return step < nrows ? step : nrows;
}

static pl_error buffers_init(buffers *b, pl_job *j, gguf_writer *w)
{
    memset(b, 0, sizeof *b);
    b->j = j;
    b->w = w;
    b->max_ne0 = 1;
    b->nthreads = j->nthreads;
    for (size_t i = 0; i < j->r->n_tensors; i++) {
        const pl_tensor_report *t = &j->r->tensors[i];
        const int64_t nrows = inp_n_rows(inp_tensor_at(j->src, j->src_index[i]));
        if (t->ne[0] > b->max_ne0)
            b->max_ne0 = t->ne[0];
        const int types[2] = {t->input_type, t->type};
        for (int k = 0; k < 2; k++) {
            size_t rs = gguf_row_size(types[k], t->ne[0]);
            int64_t rows = chunk_rows(j->chunk_bytes, rs, nrows);
            if ((size_t)rows * rs > b->cap_bytes)
                b->cap_bytes = (size_t)rows * rs;
            if (rows > b->cap_rows)
                b->cap_rows = rows;
        }
    }
    if (b->cap_bytes == 0)
        b->cap_bytes = 1;
    /* pages are only touched as far as used */
    b->raw = malloc(b->cap_bytes);
    b->q[0] = malloc(b->cap_bytes);
    b->q[1] = malloc(b->cap_bytes);
    b->rows = malloc((size_t)b->nthreads * 2 * (size_t)b->max_ne0 * sizeof(float));
    b->rowerr = malloc((size_t)(b->cap_rows > 0 ? b->cap_rows : 1) * sizeof(double));
    if (!b->raw || !b->q[0] || !b->q[1] || !b->rows || !b->rowerr)
        return pl_fail(j->msg, PL_ERR_NOMEM, "out of memory for %zu-byte buffers", b->cap_bytes);
    return PL_OK;
}

static void buffers_free(buffers *b)
{
    free(b->raw);
    free(b->q[0]);
    free(b->q[1]);
    free(b->rows);
    free(b->rowerr);
}

/* Tensors are written at their own offsets (gguf_writer_write_tensor): GPTQ hands its tensors
 * over layer by layer, before the others are made. */
static pl_error write_bytes(buffers *b, size_t k, const void *data, size_t n)
{
    char gmsg[GGUF_MSG_SIZE];
    gguf_error e = gguf_writer_write_tensor(b->w, k, data, n, gmsg);
    if (e != GGUF_OK)
        return pl_fail(b->j->msg, pl_from_gguf(e), "%s: %s", b->j->o->output, gmsg);
    return PL_OK;
}

/* Write the chunk still held from the last quantized tensor. */
static pl_error flush_pending(buffers *b)
{
    pl_error e = b->pending ? write_bytes(b, b->pending_k, b->q[b->cur ^ 1], b->pending) : PL_OK;
    b->pending = 0;
    return e;
}

/* ---------------------------------------------------------------- one tensor */

/* The whole tensor in its stored layout when the source maps it in place with rows aligned
 * for their element type, else NULL. */
static const unsigned char *in_place(inp_source *s, int64_t idx)
{
    const unsigned char *data = inp_data(s, idx);
    return data && ((uintptr_t)data % sizeof(float)) == 0 ? data : NULL;
}

static pl_error copy_raw(buffers *b, size_t k)
{
    pl_job *j = b->j;
    pl_tensor_report *t = &j->r->tensors[k];
    const int64_t idx = j->src_index[k], nrows = inp_n_rows(inp_tensor_at(j->src, idx));
    pl_error e = flush_pending(b);
    const size_t rs = gguf_row_size(t->input_type, t->ne[0]);
    const unsigned char *data = in_place(j->src, idx);
    const int64_t step = chunk_rows(j->chunk_bytes, rs, nrows);
    for (int64_t r0 = 0; e == PL_OK && r0 < nrows; r0 += step) {
        int64_t nr = nrows - r0 < step ? nrows - r0 : step;
        const unsigned char *p = data ? data + (size_t)r0 * rs : b->raw;
        if (!data) {
            char msg[INP_MSG_SIZE];
            inp_error ie = inp_read_raw(j->src, idx, r0, nr, b->raw, msg);
            if (ie != INP_OK)
                return pl_fail(j->msg, pl_from_inp(ie), "%s", msg);
        }
        e = write_bytes(b, k, p, (size_t)nr * rs);
    }
    t->rmse = is_float_type(t->input_type) ? 0.0 : -1.0;
    return e;
}

/* Sum of squared differences in a fixed order (8 lanes, then the lanes in order), so the
 * compiler can vectorize it and the result does not depend on threads. */
static double sq_diff(const float *x, const float *y, int64_t n)
{
    double lane[8] = {0};
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int k = 0; k < 8; k++) {
            double e = (double)x[j + k] - (double)y[j + k];
            lane[k] += e * e;
        }
    for (; j < n; j++) {
        double e = (double)x[j] - (double)y[j];
        lane[0] += e * e;
    }
    double acc = 0;
    for (int k = 0; k < 8; k++)
        acc += lane[k];
    return acc;
}

/* One chunk: rows r0..r0+nr of tensor k into b->q[b->cur], while the master thread writes the
 * pending chunk. Every row is read (in place from a GGUF mapping, else with inp_read_f32,
 * which input allows on several threads), converted, quantized and decoded again by one
 * thread: rows are independent, so the bytes do not depend on the thread count. */
static pl_error quantize_chunk(buffers *b, size_t k, const unsigned char *data, int64_t r0,
                               int64_t nr, const float *imat)
{
    pl_job *j = b->j;
    const pl_tensor_report *t = &j->r->tensors[k];
    const int type = t->type, in_type = t->input_type;
    const int64_t ne0 = t->ne[0], idx = j->src_index[k];
    const size_t rs = gguf_row_size(type, ne0), in_rs = gguf_row_size(in_type, ne0);
    const bool measure = j->o->measure;
    unsigned char *qc = b->q[b->cur];
    const unsigned char *qp = b->q[b->cur ^ 1];
    const size_t pending = b->pending, pending_k = b->pending_k;
    gguf_error werr = GGUF_OK;
    char wmsg[GGUF_MSG_SIZE] = "", rmsg[INP_MSG_SIZE] = "";
    inp_error rerr = INP_OK;
    int bad = 0;
#pragma omp parallel num_threads(b->nthreads) reduction(| : bad)
    {
#pragma omp master
        if (pending)
            werr = gguf_writer_write_tensor(b->w, pending_k, qp, pending, wmsg);
        float *x = b->rows + (size_t)omp_get_thread_num() * 2 * (size_t)b->max_ne0;
        float *d = x + b->max_ne0;
#pragma omp for schedule(dynamic, 4) nowait
        for (int64_t r = 0; r < nr; r++) {
            b->rowerr[r] = 0;
            if (data) {
                const unsigned char *src = data + (size_t)(r0 + r) * in_rs;
                if (in_type == GGUF_F32)
                    memcpy(x, src, (size_t)ne0 * sizeof(float));
                else if (in_type == GGUF_F16)
                    lq_f16_to_f32_row((const uint16_t *)src, x, (size_t)ne0);
                else
                    lq_bf16_to_f32_row((const uint16_t *)src, x, (size_t)ne0);
            } else {
                char m[INP_MSG_SIZE];
                inp_error e = inp_read_f32(j->src, idx, r0 + r, 1, x, m);
                if (e != INP_OK) {
#pragma omp critical(qforge_read_error)
                    if (rerr == INP_OK) {
                        rerr = e;
                        memcpy(rmsg, m, sizeof rmsg);
                    }
                    continue;
                }
            }
            unsigned char *q = qc + (size_t)r * rs;
            if (lq_quantize_row(type, x, q, ne0, imat) != rs ||
                (measure && lq_dequantize_row(type, q, d, ne0) != 0)) {
                bad = 1;
                continue;
            }
            if (measure)
                b->rowerr[r] = sq_diff(x, d, ne0);
        }
    }
    b->pending = 0;
    if (werr != GGUF_OK)
        return pl_fail(j->msg, pl_from_gguf(werr), "%s: %s", j->o->output, wmsg);
    if (rerr != INP_OK)
        return pl_fail(j->msg, pl_from_inp(rerr), "%s", rmsg);
    if (bad)
        return pl_fail(j->msg, PL_ERR_INTERNAL, "tensor '%s': libquant cannot convert %s to %s",
                       t->name, tname(in_type), tname(type));
    b->pending = (size_t)nr * rs;
    b->pending_k = k;
    b->cur ^= 1;
    return PL_OK;
}

/* Convert, quantize and measure tensor k chunk by chunk; the error is summed per row, then in
 * row order. Rows are handed out dynamically so the master thread can write the previous chunk
 * first. The last chunk stays pending (flush_pending). */
static pl_error quantize_tensor(buffers *b, size_t k)
{
    pl_job *j = b->j;
    pl_tensor_report *t = &j->r->tensors[k];
    const int64_t ne0 = t->ne[0], ne1 = t->ne[1], ne2 = t->ne[2];
    const int64_t nrows = inp_n_rows(inp_tensor_at(j->src, j->src_index[k]));
    const unsigned char *data = in_place(j->src, j->src_index[k]);
    const int64_t step = chunk_rows(j->chunk_bytes, gguf_row_size(t->type, ne0), nrows);
    double sq = 0;
    for (int64_t r0 = 0; r0 < nrows;) {
        int64_t nr = nrows - r0 < step ? nrows - r0 : step;
        const float *imat = NULL;
        if (j->imat[k]) {
            /* one importance vector per expert slice (ne[2]); chunks stay inside a slice */
            int64_t end = (r0 / ne1 + 1) * ne1;
            if (r0 + nr > end)
                nr = end - r0;
            imat = j->imat[k] + ((r0 / ne1) % ne2) * ne0;
        }
        pl_error e = quantize_chunk(b, k, data, r0, nr, imat);
        if (e != PL_OK)
            return e;
        for (int64_t r = 0; r < nr; r++)
            sq += b->rowerr[r];
        r0 += nr;
    }
    const double n = (double)nrows * (double)ne0;
    if (j->o->measure)
        t->rmse = n > 0 ? sqrt(sq / n) : 0;
    return PL_OK;
}

/* ---------------------------------------------------------------- the file */

/* The output while it is written: opened before the calibration, so GPTQ's tensors go to the
 * file as they are made. */
struct pl_out {
    gguf_writer *w;
    buffers b;
};

pl_error pl_write_open(pl_job *j)
{
    if (!j->o->output || pl_mpi_rank() != 0) { /* a dry run (MPI build: rank 0 writes) */
        gguf_writer *w = NULL;           /* only the file's size, and its cap checked */
        pl_error e = declare_output(j, &w);
        gguf_writer_free(w);
        return e;
    }
    pl_out *out = calloc(1, sizeof *out);
    if (!out)
        return pl_fail(j->msg, PL_ERR_NOMEM, "out of memory");
    j->out = out;
    pl_error e = open_output(j, &out->w);
    if (e == PL_OK)
        e = buffers_init(&out->b, j, out->w);
    return e;
}

pl_error pl_write_gptq(pl_job *j, size_t k, const void *data, size_t nbytes)
{
    if (!j->out || !j->out->w)
        return PL_OK; /* a dry run */
    return write_bytes(&j->out->b, k, data, nbytes);
}

void pl_write_close(pl_job *j)
{
    pl_out *out = j->out;
    if (!out)
        return;
    buffers_free(&out->b);
    if (out->w) {
        gguf_writer_free(out->w);
        pl_notify(j, (pl_event){.kind = PL_EV_TEMP_CLOSED});
    }
    free(out);
    j->out = NULL;
}

/* Tensor k: converted and quantized or copied; GPTQ's were written already. */
static pl_error write_tensor(buffers *b, size_t k)
{
    pl_job *j = b->j;
    pl_tensor_report *t = &j->r->tensors[k];
    if (t->gptq) {
        t->rmse = t->gptq_info.rmse;
        return PL_OK;
    }
    pl_error e = t->type == t->input_type ? copy_raw(b, k) : quantize_tensor(b, k);
    inp_release(j->src, j->src_index[k]);
    return e;
}

/* The tensors not written yet, then the file renamed into place (pl_write_open first). */
pl_error pl_write(pl_job *j)
{
    const bool dry = j->o->output == NULL || pl_mpi_rank() != 0;
    if (!dry && (!j->out || !j->out->w))
        return pl_fail(j->msg, PL_ERR_INTERNAL, "pl_write: the output is not open");
    buffers *b = dry ? NULL : &j->out->b;
    pl_error e = PL_OK;
    for (size_t k = 0; e == PL_OK && k < j->r->n_tensors; k++) {
        const double ts = pl_now();
        if (!dry)
            e = write_tensor(b, k);
        j->r->tensors[k].seconds += pl_now() - ts;
        if (e == PL_OK)
            e = pl_notify(j, (pl_event){.kind = PL_EV_TENSOR, .index = k});
    }
    if (e == PL_OK && !dry)
        e = flush_pending(b);
    if (e == PL_OK && !dry) {
        gguf_writer *w = j->out->w;
        j->r->file_bytes = gguf_writer_total_size(w);
        char gmsg[GGUF_MSG_SIZE];
        gguf_error ge = gguf_writer_finish(w, gmsg);
        if (ge != GGUF_OK)
            e = pl_fail(j->msg, pl_from_gguf(ge), "%s: %s", j->o->output, gmsg);
    }
    return e;
}
