/* qforge-quantize's size budget (--target-bpw / --target-size): options, the sensitivity table
 * (measured or loaded), the allocation printed, the budgeted run (pipeline/budget.h). */
#ifndef QFORGE_CLI_BUDGET_H
#define QFORGE_CLI_BUDGET_H

#include <stdbool.h>
#include <stdint.h>

#include "input/input.h"
#include "pipeline/budget.h"
#include "pipeline/pipeline.h"

typedef struct {
    bool active;              /* --target-bpw or --target-size given */
    double bpw;               /* > 0: --target-bpw */
    uint64_t size;            /* > 0: --target-size */
    const char *cand_list;    /* --candidates */
    const char *sens_in, *sens_out;
    int chunks;               /* --sensitivity-chunks */
    bool remeasure;           /* --remeasure: KLD of the written file on the same chunks */
    pl_budget_opts b;
    pl_alloc *alloc;
    pl_sens *sens;
    int cand[PL_SENS_MAX_CAND];
    size_t n_cand;
} cli_budget;

/* Consumes option a (with its value next) when it is one of the budget's; exits 1 on a bad
 * value. */
bool cli_budget_opt(const char *a, const char *next, cli_budget *b);
/* The usage lines of those options. */
const char *cli_budget_usage(void);
/* Sensitivity (loaded with --sensitivity-in or measured on p->calib's text and written with
 * --sensitivity-out), allocation, run; prints the allocation (every tensor with --dry-run)
 * and exits with the pipeline's code on failure. Returns the run's report. */
pl_report *cli_budget_run(cli_budget *b, inp_source *s, pl_opts *p, bool dry_run);
/* The allocation's JSON for --report (NULL before a run). */
struct json_t *cli_budget_json(const cli_budget *b);
void cli_budget_free(cli_budget *b);

#endif
