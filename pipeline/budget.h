/* pipeline — the best file for a size budget: measured sensitivity -> per-tensor types.
 *
 * 1. pl_sens_measure(): for every weight matrix of the model (token_embd, output and each
 *    layer's linear weights) and every candidate type, the mean KL divergence of the final
 *    logits against the float model's on calibration chunks, with that one tensor quantized
 *    and all others float, measured through the runtime (rt_embed / rt_layer_forward /
 *    rt_final_logits). Hidden states are cached so a tensor of layer L only reruns layers
 *    L..n-1. The quantizer is the one the final run uses: plain rounding, importance-weighted
 *    rounding (imatrix), or GPTQ (each linear weight solved against H of its float-model
 *    inputs, output.weight against the final norm of the last hidden states, as the GPTQ run
 *    solves them; token_embd, a lookup, by rounding).
 *    The table is cached as JSON (pl_sens_json / pl_sens_load) so another budget skips it.
 * 2. pl_budget_allocate(): per tensor the lower convex hull of (bytes, KLD); the hull steps of
 *    all tensors taken greedily in order of KLD saved per byte (the Lagrangian solution for
 *    every multiplier the budget admits), then any remaining step that still fits. Bytes are
 *    padded to the GGUF alignment; the result never exceeds the budget. Deterministic.
 * 3. pl_budget_run(): the file's fixed bytes (metadata, norms) from a dry plan, the allocation,
 *    then pl_run with those types (general.file_type from the type holding most weights) and
 *    a hard cap on the file size; then optionally the allocation re-measured as a whole
 *    (the tensors' errors interact; see docs/mixed-precision.md).
 *
 * Candidates: pl_budget_default_candidates() (Q2_K Q3_K Q4_K Q5_K Q6_K Q8_0 F16); a type is a
 * candidate of a tensor only when its rows split into whole blocks.
 * Memory of the measurement: the float model, the base log-probabilities (tokens x n_vocab
 * floats), two copies of the hidden states (tokens x n_embd), one weight as float and
 * quantized, and with GPTQ the Hessians of one layer (n_ff^2 doubles at most).
 * Errors: pl_error + one line in msg[PL_MSG_SIZE]; never prints, never exits. */
#ifndef QFORGE_PL_BUDGET_H
#define QFORGE_PL_BUDGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "input/imatrix.h"
#include "input/input.h"
#include "pipeline/pipeline.h"
#include "pipeline/pl_error.h"

#define PL_SENS_MAX_CAND 16

/* The default candidate types (GGUF type ids), n in *n. */
const int *pl_budget_default_candidates(size_t *n);

typedef enum { PL_SENS_PLAIN = 0, PL_SENS_IMATRIX, PL_SENS_GPTQ } pl_sens_method;
const char *pl_sens_method_name(pl_sens_method m);

/* One tensor's row of the table: its candidates in the order given, KLD per candidate. */
typedef struct {
    char *name;               /* owned */
    int64_t ne0, rows;
    int layer;                /* blk.N -> N; token_embd -1; output and others n_layer */
    int n;
    int type[PL_SENS_MAX_CAND];
    uint64_t bytes[PL_SENS_MAX_CAND]; /* rows * row size, unpadded */
    double kld[PL_SENS_MAX_CAND];     /* mean KLD (nats/token) with only this tensor quantized */
} pl_sens_row;

typedef struct {
    pl_sens_row *rows;        /* in the source's order */
    size_t n;
    pl_sens_method method;
    int n_chunks, n_ctx;
    uint64_t seed;
    int64_t tokens;           /* scored positions */
    double seconds;           /* of the measurement (0 when loaded) */
} pl_sens;

void pl_sens_free(pl_sens *s);

typedef struct {
    const int *cand;          /* candidate types; NULL: the defaults */
    size_t n_cand;
    pl_sens_method method;
    const inp_imatrix *imatrix; /* PL_SENS_IMATRIX: importance data (borrowed) */
    const char *text;         /* calibration text (borrowed) */
    size_t len;
    int n_chunks;             /* default 4 */
    int n_ctx;                /* <= 0: min(256, model context) */
    uint64_t seed;
    double damp;              /* GPTQ damping (default 0.01) */
    int nthreads;             /* <= 0: all cores */
    /* Called after each tensor (i of n); nonzero stops (PL_ERR_STOPPED). May be NULL. */
    int (*progress)(void *user, size_t i, size_t n, const pl_sens_row *row);
    void *user;
} pl_sens_opts;

void pl_sens_opts_init(pl_sens_opts *o);

/* Measure the table for src (float weights). Errors: PL_ERR_FORMAT (text shorter than the
 * chunks), PL_ERR_MODEL, PL_ERR_ARG, PL_ERR_NOMEM, PL_ERR_STOPPED, the runtime's. */
pl_error pl_sens_measure(inp_source *src, const pl_sens_opts *o, pl_sens **out, char *msg);

/* Mean KLD of a quantized model (qsrc, e.g. a written file) against the float model src on
 * the chunks o describes: an allocation measured as a whole. */
pl_error pl_sens_kld_file(inp_source *src, inp_source *qsrc, const pl_sens_opts *o, double *kld,
                          char *msg);

/* The table as JSON (the caller owns it); NULL when out of memory. */
struct json_t *pl_sens_json(const pl_sens *s);
/* Read a table written from pl_sens_json; it must match src (every row's tensor present with
 * its shape). Errors: PL_ERR_IO, PL_ERR_FORMAT (malformed, or another model's), PL_ERR_NOMEM. */
pl_error pl_sens_load(const char *path, const inp_source *src, pl_sens **out, char *msg);

/* Indices of the lower convex hull of n points (bytes, err): bytes ascending, err strictly
 * descending, slopes increasing (less error saved per byte further on). Points that are
 * dominated (more bytes, no less error) or above the hull are left out; ties in bytes keep
 * the lower error, then the lower index. Returns the count written to idx[n]. */
size_t pl_hull(const uint64_t *bytes, const double *err, size_t n, size_t *idx);

/* The choice per row of a table. */
typedef struct {
    size_t n;
    int *cand;                /* per row: index into rows[k].type */
    uint64_t bytes;           /* sum of the chosen rows' padded bytes */
    double kld_sum;           /* sum of their KLDs: the additive prediction */
    double lambda;            /* KLD per byte of the last hull step taken (0: none) */
} pl_alloc;

void pl_alloc_free(pl_alloc *a);

/* Choose a candidate per row with sum of padded bytes <= budget (align: the GGUF alignment,
 * a power of two). PL_ERR_BUDGET when even the smallest candidates do not fit. */
pl_error pl_budget_allocate(const pl_sens *s, uint64_t budget, size_t align, pl_alloc **out,
                            char *msg);

typedef struct {
    uint64_t budget;          /* file bytes, metadata included */
    uint64_t fixed;           /* out: bytes outside the allocated tensors (metadata, norms) */
    int ftype;                /* out: general.file_type written */
    bool remeasure;           /* measure the whole allocation's KLD (o->nthreads, text below) */
    const pl_sens_opts *sens_opts; /* for remeasure: text, chunks, method (borrowed) */
    double kld_measured;      /* out: remeasure's mean KLD, or -1 */
} pl_budget_opts;

/* Allocate s under b->budget and run the pipeline with o (copied; its plan must be
 * PL_PLAN_MIX; its ftype is replaced). *alloc and *report receive the results (also on a
 * failure of pl_run). Errors: PL_ERR_BUDGET (budget below the smallest allocation), pl_run's. */
pl_error pl_budget_run(inp_source *src, const pl_opts *o, const pl_sens *s, pl_budget_opts *b,
                       pl_alloc **alloc, pl_report **report, char *msg);

/* The allocation as JSON: per row name, the sensitivity row {type: {bytes, kld}}, the chosen
 * type, its bytes and KLD, and the totals. */
struct json_t *pl_alloc_json(const pl_sens *s, const pl_alloc *a, const pl_budget_opts *b);

#endif
