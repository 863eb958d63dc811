/* Internal to the pipeline library: messages, time, error mapping. */
#ifndef QFORGE_PL_INTERNAL_H
#define QFORGE_PL_INTERNAL_H

#include "input/input.h"
#include "libgguf/gguf.h"
#include "libquant/lq.h"
#include "pipeline/pipeline.h"
#include "pipeline/pl_error.h"
#include "runtime/runtime.h"

/* Format one line into msg[PL_MSG_SIZE] (control bytes shown as '?'); returns e. */
pl_error pl_fail(char *msg, pl_error e, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Seconds on a monotonic clock. */
double pl_now(void);

pl_error pl_from_rt(rt_error e);
pl_error pl_from_inp(inp_error e);
pl_error pl_from_gguf(gguf_error e);
pl_error pl_from_lq(lq_error e);

/* ---- one run of pl_run (pipeline.c, plan.c, write.c) ---- */

typedef struct pl_out pl_out;

typedef struct {
    inp_source *src;
    const pl_opts *o;
    pl_report *r;
    int64_t *src_index;          /* per tensor of the report: its index in the source */
    const float **imat;          /* per tensor: importance values, or NULL */
    pl_out *out;                 /* the output while open (write.c), or NULL */
    int nthreads;
    size_t chunk_bytes;
    char *msg;
} pl_job;

/* The progress callback: PL_ERR_STOPPED when it asks to stop. */
pl_error pl_notify(pl_job *j, pl_event ev);
/* Fill j->r->tensors with the plan of j->o (plan.c); warnings go to the callback. */
pl_error pl_plan(pl_job *j);
/* The output GGUF j->o->output (write.c): pl_write_open creates the temp file with every
 * tensor's offset known from the plan and checks the size against max_file_bytes (a dry run:
 * only the size and its check); pl_write_gptq writes tensor k's GPTQ bytes as soon as they are
 * final (the report's entry marked gptq); pl_write makes and writes the other tensors and
 * renames the file into place; pl_write_close frees the writer (removing the temp file unless
 * finished). Tensors may reach the file in any order, the bytes are those of a sequential
 * write. */
pl_error pl_write_open(pl_job *j);
pl_error pl_write_gptq(pl_job *j, size_t k, const void *data, size_t nbytes);
pl_error pl_write(pl_job *j);
void pl_write_close(pl_job *j);

#endif
