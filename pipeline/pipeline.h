/* pipeline — source -> plan -> (calibrate) -> quantize -> write: the one pipeline behind
 * qforge-quantize and qforge-convert.
 *
 * pl_run() takes an opened tensor source (input/input.h) and
 *   1. plans a type per tensor: llama-quantize's mixture for a file type (PL_PLAN_MIX: its
 *      tensor order, libquant/lq_mix.h) or a float conversion (PL_PLAN_FLOAT: qforge-convert's
 *      rule, the source's order), and matches importance data to the tensors;
 *   2. opens the output GGUF (the source's metadata with the plan's file type; every
 *      tensor's offset is known from the plan);
 *   3. with gptq, runs the calibration (pipeline/calib.h) on the planned types, each GPTQ
 *      tensor written at its offset as soon as it is final (memory stays near one layer's);
 *   4. writes the other tensors, converted and quantized chunk by chunk on nthreads threads
 *      while the previous chunk is written (plain or importance-weighted rounding,
 *      libquant/lq.h), or copied as stored; renames the file into place; then writes the
 *      importance statistics the calibration saw when asked (imatrix_out).
 * pl_run_imatrix() is the calibration alone on the float model (llama-imatrix): it writes the
 * importance matrix and no model.
 *
 * Progress goes through a callback (pl_event); the figures of every tensor and the totals
 * are in a pl_report the caller frees (pl_report_json gives it as JSON). Outputs are written to a temp file in the destination
 * directory, fsync'ed and renamed (libgguf's writer); PL_EV_TEMP_OPEN names the temp file so
 * a tool can remove it on a signal, and on failure nothing is left.
 * Determinism: the bytes written do not depend on nthreads or chunk_bytes.
 * Errors: pl_error + one line in msg[PL_MSG_SIZE], naming the file at fault first; never
 * prints, never exits, no global state (OpenBLAS's thread count is set for the duration of a
 * calibration, see calib.h). */
#ifndef QFORGE_PIPELINE_H
#define QFORGE_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "input/imatrix.h"
#include "input/input.h"
#include "libquant/lq_mix.h"
#include "pipeline/gptq.h"
#include "pipeline/pl_error.h"

#define PL_CHUNK_BYTES ((size_t)16 << 20) /* default output bytes made per parallel step */

typedef enum {
    PL_PLAN_MIX = 0, /* llama-quantize: the mixture of ftype, its tensor order and metadata
                        (general.quantization_version and general.file_type moved to the end,
                        trailing dimensions of 1 dropped); a checkpoint is planned as if
                        converted to F32 first */
    PL_PLAN_FLOAT    /* qforge-convert: tensors of 2 or more dimensions to float_type, 1-D
                        tensors and *_norm.weight F32; the source's order and dimensions; the
                        source's metadata with general.file_type 0/1/32 */
} pl_plan_kind;

/* Calibration (GPTQ, importance statistics). */
typedef struct {
    const char *text;        /* calibration text (UTF-8, e.g. from inp_text_load), borrowed */
    size_t len;
    const char *name;        /* its path: messages, the report, the imatrix's dataset */
    int samples;             /* chunks, default 128 */
    int ctx;                 /* tokens per chunk; <= 0 (default): min(512, model context) */
    uint64_t seed;           /* chunk choice, default 0 */
    double damp;             /* GPTQ damping relative to mean diag(H), default 0.01 */
    bool act_order;
    bool sym;                /* classic objective ||(W-Q)x||^2 instead of the asymmetric target */
    uint64_t max_memory;     /* > 0: refuse a job whose estimate exceeds it (PL_ERR_BUDGET) */
    const char *imatrix_out; /* or NULL: write the importance statistics of the calibration */
} pl_calib_params;

/* What one tensor became. */
typedef struct {
    const char *name;        /* borrowed from the source */
    uint32_t n_dims;         /* as written */
    int64_t ne[4];
    int input_type, type;
    lq_mix_choice choice;    /* PL_PLAN_MIX: the mixture's choice (PL_PLAN_FLOAT: type only) */
    bool imatrix;            /* importance data applied */
    uint64_t in_bytes, out_bytes;
    double rmse;             /* of the dequantized output against the input; < 0: not measured */
    double seconds;          /* making and writing it */
    bool gptq;               /* quantized by GPTQ: gptq_info holds the figures */
    pl_gptq_info gptq_info;  /* gptq_info.name == name */
} pl_tensor_report;

typedef struct {
    bool ran;                /* the calibration ran (not in a dry run) */
    size_t text_bytes;
    int n_ctx, n_chunks;     /* used */
    size_t n_text_tokens;
    pl_calib_stats stats;
    size_t imatrix_entries;  /* written to imatrix_out */
} pl_calib_report;

typedef struct {
    pl_tensor_report *tensors; /* in the order written */
    size_t n_tensors;
    double n_elements;
    uint64_t in_bytes, out_bytes, largest_in_bytes;
    uint64_t file_bytes;     /* of the file (in a dry run: the file it would be) */
    size_t n_fallback;       /* tensors that took a fallback type */
    size_t n_imatrix;        /* tensors quantized with importance data */
    int nthreads;            /* used */
    double seconds;          /* of pl_run */
    pl_calib_report calib;
} pl_report;

void pl_report_free(pl_report *r);

typedef enum {
    PL_EV_WARNING,      /* text: a tensor falls back to another type or lacks importance data */
    PL_EV_PLAN,         /* the plan is made: tensors[] hold names, shapes, types and sizes */
    PL_EV_CALIB_START,  /* the calibration begins (calib.text_bytes) */
    PL_EV_CALIB_GROUP,  /* GPTQ quantized a group: layer, n_layer, gptq[0..n_gptq), text: the
                           group's label ("attn q,k,v", "attn_output", "ffn gate,up") */
    PL_EV_CALIB_DONE,   /* the calibration ended: calib holds its figures */
    PL_EV_IMATRIX_DONE, /* text: the importance matrix was written there (calib.imatrix_entries) */
    PL_EV_TEMP_OPEN,    /* text: an output temp file now exists (remove it on a signal) */
    PL_EV_TEMP_CLOSED,  /* the temp file is gone: renamed into place or removed */
    PL_EV_TENSOR        /* tensors[index] is written (in a dry run: planned) */
} pl_event_kind;

typedef struct {
    pl_event_kind kind;
    const pl_report *report; /* as far as known */
    const char *text;
    size_t index;
    int layer, n_layer;
    const pl_gptq_info *gptq;
    int n_gptq;
} pl_event;

/* Nonzero stops the run with PL_ERR_STOPPED. */
typedef int (*pl_progress_fn)(void *user, const pl_event *ev);

typedef struct {
    pl_plan_kind plan;
    int ftype;               /* PL_PLAN_MIX: llama.cpp's file type (lq_ftype_from_name) */
    lq_mix_params mix;       /* PL_PLAN_MIX: the rules (has_imatrix is set from imatrix) */
    int float_type;          /* PL_PLAN_FLOAT: GGUF_F32, GGUF_F16 or GGUF_BF16 */
    const char *input_name;  /* the model's path: messages */
    const char *output;      /* the GGUF to write; NULL: dry run (plan and sizes only) */
    const inp_imatrix *imatrix; /* importance for the block types, or NULL (borrowed) */
    const char *imatrix_name;   /* its path: messages, quantize.imatrix.file */
    int nthreads;            /* <= 0: all cores */
    size_t chunk_bytes;      /* output bytes made per parallel step (at least one row); 0:
                                PL_CHUNK_BYTES */
    bool measure;            /* the rmse of every converted tensor (default true) */
    bool gptq;               /* GPTQ for the linear weights of every layer (PL_PLAN_MIX) */
    /* PL_PLAN_MIX: types that replace the mixture's for the named tensors (e.g. a size
     * budget's allocation, pipeline/budget.h), or NULL; borrowed */
    const char *const *assign_names;
    const int *assign_types;
    size_t n_assign;
    uint64_t max_file_bytes; /* > 0: PL_ERR_BUDGET before writing a larger file (a dry run
                                checks too) */
    pl_calib_params calib;
    pl_progress_fn progress; /* or NULL */
    void *user;
} pl_opts;

/* Defaults: PL_PLAN_MIX, mixture defaults, measure, the calibration defaults above. */
void pl_opts_init(pl_opts *o);

/* Run the pipeline on src (borrowed). *report (may be NULL) receives the figures, also on
 * failure as far as known; free with pl_report_free. Errors: PL_ERR_ARG (options, an output
 * path the writer refuses), PL_ERR_MODEL (a type that cannot be written, requantization,
 * non-float tensors to convert), PL_ERR_FORMAT (importance data of the wrong size, a
 * calibration text shorter than one chunk), PL_ERR_IO, PL_ERR_BUDGET, PL_ERR_NOMEM,
 * PL_ERR_STOPPED, PL_ERR_INTERNAL. */
pl_error pl_run(inp_source *src, const pl_opts *o, pl_report **report, char *msg);

/* The float model's importance statistics over the calibration text, written to
 * o->calib.imatrix_out (required); o->calib, nthreads, progress and user are used. */
pl_error pl_run_imatrix(inp_source *src, const pl_opts *o, pl_report **report, char *msg);

/* The report as qforge-quantize --report writes it: a JSON object (jansson; the caller owns it,
 * writes it with JSON_INDENT(1) | JSON_ENSURE_ASCII) holding the options, every tensor and
 * the totals. NULL when out of memory or r/o is NULL. */
struct json_t *pl_report_json(const pl_report *r, const pl_opts *o);

#endif
