/* Progress of the tools' long steps on stderr: on a terminal a bar redrawn in place (done/total,
 * rate, ETA), otherwise one line per finished step ("PROG: STEP: 12.5 MiB in 3.1 s, 4.0 MiB/s"),
 * nothing when quiet. One step at a time; tools only (global state, not thread-safe: call it
 * from the thread that runs the callbacks). */
#ifndef QFORGE_PROGRESS_H
#define QFORGE_PROGRESS_H

#include <stdbool.h>

#include "pipeline/pipeline.h"

typedef enum {
    PROG_AUTO = 0, /* a bar when stderr is a terminal (and TERM is not "dumb"), else lines */
    PROG_QUIET,    /* nothing */
    PROG_LINES,
    PROG_BAR,
    PROG_BAR_ONLY  /* a bar on a terminal, nothing otherwise: for tools whose standard output
                      already lists each step (qforge-convert, qforge-quantize) */
} prog_mode;

void prog_init(prog_mode m);
bool prog_is_bar(void);

/* A step: label (copied), total units (<= 0: unknown; shown as elapsed time), unit name
 * ("chunks", "MiB", "layers"; borrowed, a literal). A step still open is ended first. */
void prog_begin(const char *label, double total, const char *unit);
void prog_total(double total);
void prog_update(double done);
/* End the step: the bar's last state stays on its line; in line mode its one line. */
void prog_end(void);
/* Drop the step (a failure follows): no step line; a bar's line is ended as it stands. */
void prog_abort(void);
/* Erase the bar before writing other lines to the terminal (it is redrawn on the next update). */
void prog_clear(void);

/* The pipeline's events as steps: calibration ("PREFIX calibration": GPTQ by layers, the
 * imatrix pass by elapsed time) and writing ("PREFIX write": MiB of input consumed, tensor by
 * tensor). prefix may be NULL. Returns 0 (never stops the run). */
int prog_pl_event(const pl_event *ev, const char *prefix);

#endif
