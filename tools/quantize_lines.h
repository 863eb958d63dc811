/* qforge-quantize's progress lines: one per tensor written, per GPTQ group, and for the
 * calibration's start and end. Print to stdout; own nothing. */
#ifndef QFORGE_TOOLS_QUANTIZE_LINES_H
#define QFORGE_TOOLS_QUANTIZE_LINES_H

#include <stddef.h>

#include "pipeline/pipeline.h"

/* Column widths of the tensor lines, set once the plan is known. */
typedef struct {
    size_t name_w, shape_w;
    int wd; /* digits of the tensor count */
} ql_columns;

void ql_plan(ql_columns *c, const pl_report *r);
/* "[k/n] name shape in -> out  bytes -> bytes  rmse ...  gptq loss ..." */
void ql_tensor(const ql_columns *c, const pl_report *r, size_t k);
/* "[gptq] layer 3/6: attn q,k,v  loss 1.2e-3 vs rtn 2.5e-3", plus any damping retries. */
void ql_group(const pl_event *ev);
/* The calibration's start, its figures when done, and the importance matrix written. */
void ql_calib(const pl_opts *o, const pl_event *ev);

#endif
