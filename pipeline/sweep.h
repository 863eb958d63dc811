/* pipeline — the sweep: one model quantized to many variants (file type × method), each
 * measured against the float model on one or more texts, as qforge-quantize and
 * qforge-perplexity --kl-divergence would measure it, with what the variants share done once:
 *   - the source is opened once by the caller; the float model is loaded once and evaluated
 *     once per text: its log-probabilities go to DIR/base-N.kld (runtime/perplexity.h's file),
 *     which every variant is compared with;
 *   - the importance matrix of the imatrix method is computed once into DIR/imatrix.gguf and
 *     loaded back (the bytes qforge-quantize --imatrix would read);
 *   - each variant is written to DIR/<type>-<method>.gguf by pl_run and evaluated;
 *   - a size budget (bpws) makes a variant per method, DIR/bpw<X>-<method>.gguf, by pl_budget_run
 *     (pipeline/budget.h) as qforge-quantize --target-bpw X does; the sensitivity table of each
 *     quantizer (plain, imatrix, GPTQ) is measured once into DIR/sensitivity-<quantizer>.json and
 *     serves every budget. Its records have type "<X> bpw" and method "<method>-budget".
 * GPTQ calibrates each type on its own (the sequential pass depends on the quantized types).
 *
 * The result is a JSON document (jansson) the caller writes as DIR/report.json; the sweep also
 * rewrites DIR/report.json itself after every variant (temp file, fsync, rename), so an
 * interrupted sweep resumes: given the previous report (prior), a variant whose file exists
 * with the recorded size and whose quantization key (model, type, method, calibration) and
 * evaluation key (texts, n_ctx, chunks) equal the record is taken over as it is; a matching
 * file with another evaluation key is only evaluated again; the importance matrix and base
 * files are reused the same way.
 *
 * Report: {"tool", "version", "model", "n_elements", "options", "imatrix", "sensitivity": [per
 * quantizer: file, key, seconds], "bases": [per text:
 * key, file, ppl, ppl_unc, n_ctx, n_chunk, n_tokens], "variants": [per variant: file, type,
 * method, quant_key, eval_key, file_bytes, tensor_bytes, n_elements, bpw (tensor bits per
 * weight), quantize_seconds, reused, eval: [per text: text, eval_seconds, and rt_kld_stats_json's
 * figures]]}.
 * Errors: pl_error + one line in msg[PL_MSG_SIZE]; never prints, never exits. */
#ifndef QFORGE_PL_SWEEP_H
#define QFORGE_PL_SWEEP_H

#include <stdbool.h>
#include <stddef.h>

#include "input/input.h"
#include "pipeline/pipeline.h"

/* rtn: plain rounding; imatrix: importance-weighted with the float model's importance matrix;
 * gptq: qforge-quantize --gptq; gptq-act-order: --gptq --act-order. */
typedef enum {
    PL_SWEEP_RTN = 0,
    PL_SWEEP_IMATRIX,
    PL_SWEEP_GPTQ,
    PL_SWEEP_GPTQ_ACT,
    PL_SWEEP_N_METHODS
} pl_sweep_method;

const char *pl_sweep_method_name(pl_sweep_method m); /* "rtn", "imatrix", "gptq", "gptq-act-order" */
int pl_sweep_method_from_name(const char *s);        /* -1 when unknown */

typedef enum {
    PL_SW_VARIANT,    /* variant index of n_variants begins (text: "Q4_K_M imatrix"); reused: its
                         record is taken over, nothing is done */
    PL_SW_STEP,       /* a step begins: text ("base eval-classics.txt", "quantize Q4_K_M rtn",
                         "evaluate Q4_K_M rtn", "imatrix"), total units (0: unknown) of unit */
    PL_SW_ADVANCE,    /* done units of the step */
    PL_SW_STEP_DONE,  /* the step ended */
    PL_SW_PIPELINE,   /* pl: an event of the step's pl_run / pl_run_imatrix (the temp file
                         events included: remove it on a signal) */
    PL_SW_TEMP_OPEN,  /* text: a temp file of the sweep's own (base, report) now exists */
    PL_SW_TEMP_CLOSED
} pl_sweep_event_kind;

typedef struct {
    pl_sweep_event_kind kind;
    const char *text, *unit;
    double done, total;
    size_t index, n_variants;
    bool reused;
    const pl_event *pl;
} pl_sweep_event;

/* Nonzero stops the sweep with PL_ERR_STOPPED. */
typedef int (*pl_sweep_progress_fn)(void *user, const pl_sweep_event *ev);

typedef struct {
    const char *model;          /* the source's path: messages, keys */
    const char *dir;            /* existing output directory */
    const int *ftypes;          /* llama.cpp file types (lq_ftype_from_name) */
    size_t n_ftypes;
    const pl_sweep_method *methods;
    size_t n_methods;
    const double *bpws;         /* size budgets in bits per weight (file bytes, metadata
                                   included, <= bpw * weights / 8), each made with every method */
    size_t n_bpws;
    const char *const *texts;   /* evaluation texts (paths, plain or gzip'ed UTF-8) */
    size_t n_texts;
    int n_ctx;                  /* chunk length; <= 0 (default): min(512, model context) */
    int chunks;                 /* at most this many chunks per text (<= 0: all) */
    int n_batch;                /* tokens per forward pass (default 512; same results) */
    int nthreads;               /* <= 0: all cores */
    pl_calib_params calib;      /* imatrix and GPTQ: text (loaded by the caller), name,
                                   samples, ctx, seed, damp, act_order (of gptq), sym,
                                   max_memory;
                                   imatrix_out is ignored */
    const struct json_t *prior; /* the previous report.json, or NULL (borrowed) */
    const char *tool, *version; /* recorded in the report */
    pl_sweep_progress_fn progress;
    void *user;
} pl_sweep_opts;

/* Defaults: n_ctx from the model, n_batch 512, every chunk, the calibration defaults of pl_opts_init. */
void pl_sweep_opts_init(pl_sweep_opts *o);

/* Run the sweep on src (borrowed; a checkpoint or a float GGUF). *report receives the report
 * (caller owns, json_decref), also on failure with the variants done so far (NULL when none
 * could be made). Errors: those of pl_run, pl_run_imatrix and the evaluation (PL_ERR_FORMAT: a
 * text shorter than two chunks), PL_ERR_IO for the files in dir, PL_ERR_ARG. */
pl_error pl_sweep_run(inp_source *src, const pl_sweep_opts *o, struct json_t **report, char *msg);

/* Write j to path through a temp file beside it (fsync, rename); the temp file's path is
 * announced through o's progress (PL_SW_TEMP_OPEN/CLOSED). PL_ERR_IO on failure. */
pl_error pl_sweep_write_json(const pl_sweep_opts *o, const struct json_t *j, const char *path, char *msg);

#endif
