/* Internal to the report library: the rows of one text's table. */
#ifndef QFORGE_REPORT_INTERNAL_H
#define QFORGE_REPORT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "report/report.h"

typedef struct {
    const char *file, *type, *method; /* borrowed from the report */
    double bytes, bpw, ppl, ppl_base, kld, median, p99, p999, max, same_top;
    bool pareto;
} rp_row;

rp_error rp_fail(char *msg, rp_error e, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The evaluated variants' figures on text `text`, ranked by file size, Pareto marks set.
 * *rows is malloc'ed (caller frees). */
rp_error rp_rows(const json_t *report, size_t text, rp_row **rows, size_t *n, char *msg);

#endif
