/* pipeline/budget.c, budget_alloc.c through the API: the convex hull, the allocation (hits the
 * budget, never over it, deterministic, optimal on small cases, error below the smallest
 * candidates), the sensitivity table measured on the demo model (models/classics-7m) and its
 * JSON round trip, and the budgeted run (file size within the budget, file type). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "input/text.h"
#include "libgguf/gguf.h"
#include "pipeline/budget.h"
#include "tests/testutil.h"

TestSuite(budget, .init = tu_dir_setup, .fini = tu_dir_teardown);

Test(budget, hull)
{
    /* (bytes, err): 0:(10,9) 1:(20,5) 2:(30,4.5: above the segment 1-3) 3:(40,2)
     * 4:(50,2: dominated) 5:(60,0.5) 6:(15,NAN: not measured) 7:(20,6: same bytes, worse) */
    const uint64_t b[] = {10, 20, 30, 40, 50, 60, 15, 20};
    const double e[] = {9, 5, 4.5, 2, 2, 0.5, NAN, 6};
    size_t idx[8];
    const size_t n = pl_hull(b, e, 8, idx);
    const size_t want[] = {0, 1, 3, 5};
    cr_assert_eq(n, 4);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(idx[i], want[i], "hull[%zu] = %zu", i, idx[i]);
    /* a single point, and none */
    cr_assert_eq(pl_hull(b, e, 1, idx), 1);
    cr_assert_eq(pl_hull(b + 6, e + 6, 1, idx), 0);
    /* collinear middle point is dropped (slopes strictly increasing) */
    const uint64_t b2[] = {0, 10, 20};
    const double e2[] = {2, 1, 0};
    cr_assert_eq(pl_hull(b2, e2, 3, idx), 2);
    cr_assert(idx[0] == 0 && idx[1] == 2);
}

/* A table of n rows with candidates of sizes k*unit*(1 + row) and errors falling as 4^-k. */
static pl_sens *synth_table(size_t n, int n_cand)
{
    pl_sens *s = calloc(1, sizeof *s);
    s->rows = calloc(n, sizeof *s->rows);
    s->n = n;
    for (size_t k = 0; k < n; k++) {
        pl_sens_row *r = &s->rows[k];
        r->name = malloc(32);
        snprintf(r->name, 32, "t%zu", k);
        r->ne0 = 256;
        r->rows = 1;
        r->n = n_cand;
        for (int c = 0; c < n_cand; c++) {
            r->type[c] = GGUF_Q2_K + c;
            r->bytes[c] = (uint64_t)(c + 2) * 32 * (k % 3 + 1);
            r->kld[c] = (1.0 + 0.37 * (double)k) * pow(4.0, -c);
        }
    }
    return s;
}

/* Brute force over all choices: the least error within the budget. */
static double brute(const pl_sens *s, uint64_t budget, size_t k, uint64_t used)
{
    if (k == s->n)
        return 0;
    double best = INFINITY;
    for (int c = 0; c < s->rows[k].n; c++) {
        const uint64_t b = (s->rows[k].bytes[c] + 31) / 32 * 32;
        if (used + b > budget)
            continue;
        const double v = s->rows[k].kld[c] + brute(s, budget, k + 1, used + b);
        best = v < best ? v : best;
    }
    return best;
}

Test(budget, allocation_hits_the_budget_and_never_exceeds_it)
{
    pl_sens *s = synth_table(6, 4);
    char msg[PL_MSG_SIZE];
    uint64_t min = 0, max = 0;
    for (size_t k = 0; k < s->n; k++) {
        min += s->rows[k].bytes[0];
        max += s->rows[k].bytes[3];
    }
    double prev = INFINITY;
    int optimal = 0, cases = 0;
    for (uint64_t budget = min; budget <= max + 64; budget += 32) {
        pl_alloc *a = NULL, *a2 = NULL;
        cr_assert_eq(pl_budget_allocate(s, budget, 32, &a, msg), PL_OK, "%s", msg);
        cr_assert_leq(a->bytes, budget);
        /* the sum is what the choice adds up to */
        uint64_t b = 0;
        double e = 0;
        for (size_t k = 0; k < s->n; k++) {
            b += s->rows[k].bytes[a->cand[k]];
            e += s->rows[k].kld[a->cand[k]];
        }
        cr_assert_eq(b, a->bytes);
        cr_assert_float_eq(e, a->kld_sum, 1e-12);
        /* more budget never costs error; the last budget takes the best of everything */
        cr_assert_leq(a->kld_sum, prev + 1e-12);
        prev = a->kld_sum;
        if (budget >= max)
            for (size_t k = 0; k < s->n; k++)
                cr_assert_eq(a->cand[k], 3);
        /* within 1.3x of the exact optimum, and exact in most cases */
        const double opt = brute(s, budget, 0, 0);
        cr_assert_leq(a->kld_sum, opt * 1.3 + 1e-12, "budget %llu: %g vs optimum %g",
                      (unsigned long long)budget, a->kld_sum, opt);
        optimal += fabs(a->kld_sum - opt) < 1e-12;
        cases++;
        /* deterministic */
        cr_assert_eq(pl_budget_allocate(s, budget, 32, &a2, msg), PL_OK);
        cr_assert_eq(memcmp(a->cand, a2->cand, s->n * sizeof *a->cand), 0);
        pl_alloc_free(a);
        pl_alloc_free(a2);
    }
    cr_assert_geq(optimal * 10, cases * 6, "optimal in %d of %d budgets", optimal, cases);
    pl_sens_free(s);
}

Test(budget, below_the_smallest_candidates)
{
    pl_sens *s = synth_table(3, 2);
    char msg[PL_MSG_SIZE];
    pl_alloc *a = (pl_alloc *)1;
    uint64_t min = 0;
    for (size_t k = 0; k < s->n; k++)
        min += s->rows[k].bytes[0];
    cr_assert_eq(pl_budget_allocate(s, min - 1, 32, &a, msg), PL_ERR_BUDGET);
    cr_assert_null(a);
    cr_assert(strstr(msg, "smallest"), "%s", msg);
    cr_assert_eq(pl_budget_allocate(s, min, 32, &a, msg), PL_OK);
    for (size_t k = 0; k < s->n; k++)
        cr_assert_eq(a->cand[k], 0);
    pl_alloc_free(a);
    cr_assert_eq(pl_budget_allocate(s, min, 3, &a, msg), PL_ERR_ARG); /* not a power of two */
    pl_sens_free(s);
}

/* ---------------------------------------------------------------- the demo model */

static inp_source *demo(void)
{
    char *p = tu_path_join(tu_root(), "models/classics-7m");
    inp_source *s = NULL;
    char msg[INP_MSG_SIZE];
    cr_assert_eq(inp_open(p, &s, msg), INP_OK, "%s", msg);
    free(p);
    return s;
}

static pl_sens *measure_demo_as(inp_source *src, int nthreads, pl_sens_method method, char **text)
{
    char *cp = tu_path_join(tu_root(), "calibration/calibration.txt"), msg[PL_MSG_SIZE];
    size_t len = 0;
    cr_assert_eq(inp_text_load(cp, text, &len, msg), INP_OK, "%s", msg);
    free(cp);
    static const int cand[] = {GGUF_Q2_K, GGUF_Q4_K, GGUF_Q8_0};
    pl_sens_opts o;
    pl_sens_opts_init(&o);
    o.cand = cand;
    o.n_cand = 3;
    o.text = *text;
    o.len = len;
    o.n_chunks = 1;
    o.n_ctx = 32;
    o.nthreads = nthreads;
    o.method = method;
    pl_sens *s = NULL;
    cr_assert_eq(pl_sens_measure(src, &o, &s, msg), PL_OK, "%s", msg);
    return s;
}

static pl_sens *measure_demo(inp_source *src, int nthreads, char **text)
{
    return measure_demo_as(src, nthreads, PL_SENS_PLAIN, text);
}

Test(budget, sensitivity_of_the_demo_model, .timeout = 600)
{
    inp_source *src = demo();
    char *text = NULL, *text2 = NULL;
    pl_sens *s = measure_demo(src, 1, &text);
    /* token_embd, output and 6 x 7 linear weights */
    cr_assert_eq(s->n, 44);
    cr_assert_eq(s->tokens, 32);
    size_t n_out = 0;
    for (size_t k = 0; k < s->n; k++) {
        const pl_sens_row *r = &s->rows[k];
        cr_assert_eq(r->n, 3, "%s", r->name);
        /* fewer bits, more error; all clearly above zero except Q8_0's */
        cr_assert_gt(r->kld[0], r->kld[1], "%s: q2_K %g <= q4_K %g", r->name, r->kld[0], r->kld[1]);
        cr_assert_gt(r->kld[1], r->kld[2], "%s: q4_K %g <= q8_0 %g", r->name, r->kld[1], r->kld[2]);
        cr_assert_gt(r->kld[1], 1e-7, "%s", r->name);
        cr_assert_eq(r->bytes[1], (uint64_t)r->rows * (r->ne0 / 256) * 144);
        if (!strcmp(r->name, "output.weight")) {
            n_out++;
            cr_assert_eq(r->layer, 6);
        }
        if (!strcmp(r->name, "token_embd.weight"))
            cr_assert_eq(r->layer, -1);
    }
    cr_assert_eq(n_out, 1);
    /* the thread count does not change the figures */
    pl_sens *s2 = measure_demo(src, 2, &text2);
    for (size_t k = 0; k < s->n; k++)
        for (int c = 0; c < 3; c++)
            cr_assert_eq(s->rows[k].kld[c], s2->rows[k].kld[c], "%s", s->rows[k].name);
    /* JSON round trip */
    char *jp = tu_path_join(tu_dir, "sens.json"), msg[PL_MSG_SIZE];
    json_t *js = pl_sens_json(s);
    cr_assert_eq(json_dump_file(js, jp, JSON_INDENT(1)), 0);
    json_decref(js);
    pl_sens *l = NULL;
    cr_assert_eq(pl_sens_load(jp, src, &l, msg), PL_OK, "%s", msg);
    cr_assert_eq(l->n, s->n);
    for (size_t k = 0; k < s->n; k++) {
        cr_assert_str_eq(l->rows[k].name, s->rows[k].name);
        for (int c = 0; c < 3; c++) {
            cr_assert_eq(l->rows[k].type[c], s->rows[k].type[c]);
            cr_assert_eq(l->rows[k].bytes[c], s->rows[k].bytes[c]);
            cr_assert_float_eq(l->rows[k].kld[c], s->rows[k].kld[c], 1e-15 + 1e-12 * s->rows[k].kld[c]);
        }
    }
    pl_sens_free(l);
    /* another model's table, a malformed one */
    tu_run("sed -i 's/\"ne0\": 256/\"ne0\": 128/' '%s'", jp);
    cr_assert_eq(pl_sens_load(jp, src, &l, msg), PL_ERR_FORMAT);
    cr_assert(strstr(msg, "another model"), "%s", msg);
    tu_write_file(jp, "{\"qforge_sensitivity\": 1, \"a\": 1, \"a\": 2}", 42);
    cr_assert_eq(pl_sens_load(jp, src, &l, msg), PL_ERR_FORMAT);
    free(jp);
    jp = tu_path_join(tu_dir, "none.json");
    cr_assert_eq(pl_sens_load(jp, src, &l, msg), PL_ERR_IO, "%s", msg);
    free(jp);
    pl_sens_free(s);
    pl_sens_free(s2);
    free(text);
    free(text2);
    inp_close(src);
}

static const pl_sens_row *row_named(const pl_sens *s, const char *name)
{
    for (size_t k = 0; k < s->n; k++)
        if (!strcmp(s->rows[k].name, name))
            return &s->rows[k];
    cr_assert_fail("no row %s", name);
    return NULL;
}

/* GPTQ's table fills every matrix by GPTQ, output.weight too (H from the final norm), as the
 * GPTQ run does: every row's Q2_K error is below plain rounding's. */
Test(budget, gptq_sensitivity_solves_every_matrix, .timeout = 600)
{
    inp_source *src = demo();
    char *t1 = NULL, *t2 = NULL;
    pl_sens *plain = measure_demo_as(src, 2, PL_SENS_PLAIN, &t1);
    pl_sens *gptq = measure_demo_as(src, 2, PL_SENS_GPTQ, &t2);
    cr_assert_eq(gptq->n, plain->n);
    for (size_t k = 0; k < gptq->n; k++) {
        const char *name = gptq->rows[k].name;
        if (!strcmp(name, "token_embd.weight"))
            continue;
        const pl_sens_row *p = row_named(plain, name), *g = &gptq->rows[k];
        cr_assert_lt(g->kld[0], 0.9 * p->kld[0], "%s: gptq %g, plain %g", name, g->kld[0], p->kld[0]);
    }
    /* token_embd is a lookup: rounded in both tables */
    cr_assert_eq(row_named(gptq, "token_embd.weight")->kld[0], row_named(plain, "token_embd.weight")->kld[0]);
    pl_sens_free(plain);
    pl_sens_free(gptq);
    free(t1);
    free(t2);
    inp_close(src);
}

Test(budget, budgeted_run, .timeout = 600)
{
    inp_source *src = demo();
    char *text = NULL, msg[PL_MSG_SIZE];
    pl_sens *s = measure_demo(src, 2, &text);
    char *out = tu_path_join(tu_dir, "b.gguf");
    const uint64_t budgets[] = {2600000, 3300000, 4331136};
    double prev = INFINITY;
    for (size_t i = 0; i < 3; i++) {
        pl_opts o;
        pl_opts_init(&o);
        o.input_name = "classics-7m";
        o.output = i == 0 ? NULL : out;
        o.nthreads = 2;
        pl_budget_opts b = {.budget = budgets[i]};
        pl_alloc *a = NULL;
        pl_report *r = NULL;
        cr_assert_eq(pl_budget_run(src, &o, s, &b, &a, &r, msg), PL_OK, "%s", msg);
        cr_assert_leq(r->file_bytes, budgets[i]);
        cr_assert_eq(r->file_bytes, b.fixed + a->bytes);
        /* within one step of the largest candidate (Q8_0 of output.weight) of the budget */
        cr_assert_gt(r->file_bytes + 1114112 - 344064, budgets[i]);
        cr_assert_lt(a->kld_sum, prev);
        prev = a->kld_sum;
        if (o.output) {
            struct stat st;
            cr_assert_eq(stat(out, &st), 0);
            cr_assert_eq((uint64_t)st.st_size, r->file_bytes);
            gguf_reader *g = NULL;
            cr_assert_eq(gguf_open(out, &g, msg), GGUF_OK, "%s", msg);
            int64_t ft = -1;
            cr_assert_eq(gguf_get_int(g, "general.file_type", &ft), GGUF_OK);
            cr_assert_eq(ft, b.ftype);
            for (size_t k = 0; k < s->n; k++) {
                const gguf_tensor *t = gguf_tensor_at(g, gguf_find_tensor(g, s->rows[k].name));
                cr_assert_eq((int)t->type, s->rows[k].type[a->cand[k]], "%s", s->rows[k].name);
            }
            gguf_close(g);
        }
        json_t *js = pl_alloc_json(s, a, &b);
        cr_assert_eq(json_array_size(json_object_get(js, "tensors")), 44);
        json_decref(js);
        pl_alloc_free(a);
        pl_report_free(r);
    }
    /* below the smallest candidates: a clear error, nothing written */
    pl_opts o;
    pl_opts_init(&o);
    o.input_name = "classics-7m";
    o.output = tu_path_join(tu_dir, "small.gguf");
    pl_budget_opts b = {.budget = 2000000};
    pl_alloc *a = NULL;
    pl_report *r = NULL;
    cr_assert_eq(pl_budget_run(src, &o, s, &b, &a, &r, msg), PL_ERR_BUDGET);
    cr_assert(strstr(msg, "smallest"), "%s", msg);
    struct stat st;
    cr_assert_neq(stat(o.output, &st), 0);
    free((char *)o.output);
    /* the pipeline's own cap: a plan bigger than max_file_bytes is refused before writing */
    pl_opts_init(&o);
    o.ftype = 15;
    o.output = out;
    o.max_file_bytes = 4331135;
    cr_assert_eq(pl_run(src, &o, &r, msg), PL_ERR_BUDGET);
    cr_assert_eq(r->file_bytes, 4331136);
    pl_report_free(r);
    pl_sens_free(s);
    free(out);
    free(text);
    inp_close(src);
}
