/* report — what a sweep's report.json (pipeline/sweep.h) shows a reader: the markdown table and
 * the plots.
 *
 * rp_markdown: one table per evaluation text, rows ranked by file size, with file, type,
 * method, size, bits per weight, PPL, its change against the float model, mean / median / 99 % /
 * 99.9 % / max KLD and same-top-p; a row is marked Pareto-optimal when no other variant is at
 * most as large with at most its mean KLD (one of both strictly).
 * rp_plot: mean KLD or PPL (first text) against bits per weight, one curve per method, the
 * float model's PPL as a dashed line, the KLD on a logarithmic axis; drawn by PLplot's cairo drivers
 * (pngcairo, svgcairo) into a FILE the caller opened (needs no display).
 * Errors: rp_error + one line in msg[RP_MSG_SIZE]. Never prints (PLplot itself may warn on
 * stderr), never exits. PLplot keeps global state: not for concurrent use. */
#ifndef QFORGE_REPORT_H
#define QFORGE_REPORT_H

#include <stdio.h>

#include <jansson.h>

#define RP_MSG_SIZE 512

typedef enum { RP_OK = 0, RP_ERR_NOMEM, RP_ERR_FORMAT, RP_ERR_PLOT, RP_ERR_COUNT_ } rp_error;

const char *rp_strerror(rp_error e);

/* The markdown text (malloc'ed, caller frees) of report, or NULL with *err and msg set. */
char *rp_markdown(const json_t *report, rp_error *err, char *msg);

typedef enum { RP_PLOT_KLD = 0, RP_PLOT_PPL } rp_plot_kind;

/* Draw the plot into f (borrowed; written, not closed) with device "pngcairo" or "svgcairo". */
rp_error rp_plot(const json_t *report, rp_plot_kind kind, const char *device, FILE *f, char *msg);

#endif
