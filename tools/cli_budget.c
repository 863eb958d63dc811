/* The size budget of qforge-quantize (see cli_budget.h). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libgguf/gguf.h"
#include "libquant/lq.h"
#include "tools/cli.h"
#include "tools/cli_budget.h"

const char *cli_budget_usage(void)
{
    return "  --target-bpw X               size budget in bits per weight: the file (metadata\n"
           "                               included) holds at most X * weights / 8 bytes; TYPE\n"
           "                               may then be left out (types chosen per tensor)\n"
           "  --target-size SIZE           size budget in bytes (K/M/G suffixes)\n"
           "  --candidates LIST            types to choose from, comma-separated (default\n"
           "                               Q2_K,Q3_K,Q4_K,Q5_K,Q6_K,Q8_0,F16)\n"
           "  --sensitivity-out FILE.json  write the measured sensitivity table\n"
           "  --sensitivity-in FILE.json   use a table written before (no measurement)\n"
           "  --sensitivity-chunks N       calibration chunks of the measurement (default 4)\n"
           "  --remeasure                  measure the written file's KLD on the same chunks\n";
}

static void parse_cand(cli_budget *b, const char *list)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", list);
    b->n_cand = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        const int type = gguf_type_from_name(t);
        if (type < 0 || !lq_can_quantize(type) || b->n_cand == PL_SENS_MAX_CAND)
            cli_die(CLI_USAGE, NULL, "--candidates: unknown or unsupported type '%s'", t);
        b->cand[b->n_cand++] = type;
    }
    if (b->n_cand == 0)
        cli_die(CLI_USAGE, NULL, "--candidates needs at least one type");
}

bool cli_budget_opt(const char *a, const char *next, cli_budget *b)
{
    if (!strcmp(a, "--target-bpw")) {
        char *end = NULL;
        b->bpw = next ? strtod(next, &end) : 0;
        if (!next || *end || !(b->bpw > 0) || b->bpw > 64)
            cli_die(CLI_USAGE, NULL, "--target-bpw needs a number in (0, 64]");
        b->active = true;
    } else if (!strcmp(a, "--target-size")) {
        b->size = cli_parse_size(a, next);
        if (b->size == 0)
            cli_die(CLI_USAGE, NULL, "--target-size needs a size > 0");
        b->active = true;
    } else if (!strcmp(a, "--candidates")) {
        if (!next)
            cli_die(CLI_USAGE, NULL, "--candidates needs a list");
        b->cand_list = next;
    } else if (!strcmp(a, "--sensitivity-out") || !strcmp(a, "--sensitivity-in")) {
        if (!next)
            cli_die(CLI_USAGE, NULL, "%s needs a file", a);
        *(a[14] == 'o' ? &b->sens_out : &b->sens_in) = next;
    } else if (!strcmp(a, "--sensitivity-chunks")) {
        b->chunks = (int)cli_parse_long(a, next, 1, 4096);
    } else {
        return false;
    }
    return true;
}

static int sens_progress(void *user, size_t i, size_t n, const pl_sens_row *r)
{
    (void)user;
    printf("[sensitivity] %3zu/%zu %-28s", i, n, r->name);
    for (int k = 0; k < r->n; k++) {
        const gguf_type_traits *tr = gguf_type_info(r->type[k]);
        printf(" %s %.3g", tr ? tr->name : "?", r->kld[k]);
    }
    putchar('\n');
    fflush(stdout);
    return 0;
}

static void print_alloc(const cli_budget *b, bool all)
{
    const pl_sens *s = b->sens;
    const pl_alloc *a = b->alloc;
    for (size_t k = 0; all && k < s->n; k++) {
        const pl_sens_row *r = &s->rows[k];
        const int c = a->cand[k];
        const gguf_type_traits *tr = gguf_type_info(r->type[c]);
        printf("[budget] %-28s %-5s %10llu bytes  kld %.4g\n", r->name, tr ? tr->name : "?",
               (unsigned long long)r->bytes[c], r->kld[c]);
    }
    printf("[budget] budget %llu bytes: file %llu = tensors %llu + fixed %llu (metadata, norms); "
           "predicted KLD (sum of single-tensor KLDs) %.5f; file type %d\n",
           (unsigned long long)b->b.budget, (unsigned long long)(a->bytes + b->b.fixed),
           (unsigned long long)a->bytes, (unsigned long long)b->b.fixed, a->kld_sum, b->b.ftype);
}

pl_report *cli_budget_run(cli_budget *b, inp_source *s, pl_opts *p, bool dry_run)
{
    char msg[PL_MSG_SIZE];
    pl_sens_opts so;
    pl_sens_opts_init(&so);
    if (b->cand_list)
        parse_cand(b, b->cand_list);
    so.cand = b->n_cand ? b->cand : NULL;
    so.n_cand = b->n_cand;
    so.method = p->gptq ? PL_SENS_GPTQ : p->imatrix ? PL_SENS_IMATRIX : PL_SENS_PLAIN;
    so.imatrix = p->imatrix;
    so.text = p->calib.text;
    so.len = p->calib.len;
    so.n_chunks = b->chunks > 0 ? b->chunks : 4;
    so.seed = p->calib.seed;
    so.damp = p->calib.damp;
    so.nthreads = p->nthreads;
    so.progress = sens_progress;
    pl_error e;
    if (b->sens_in) {
        if ((e = pl_sens_load(b->sens_in, s, &b->sens, msg)) != PL_OK)
            cli_die(cli_exit_pl(e), NULL, "--sensitivity-in: %s", msg);
        if (b->sens->method != so.method)
            cli_warn(b->sens_in, "measured with method %s, this run quantizes with %s",
                     pl_sens_method_name(b->sens->method), pl_sens_method_name(so.method));
    } else {
        if ((e = pl_sens_measure(s, &so, &b->sens, msg)) != PL_OK)
            cli_die(cli_exit_pl(e), NULL, "%s", msg);
        printf("[sensitivity] %zu tensors, %s, %d x %d tokens: %.1f s\n", b->sens->n,
               pl_sens_method_name(so.method), b->sens->n_chunks, b->sens->n_ctx, b->sens->seconds);
    }
    if (b->sens_out) {
        json_t *js = pl_sens_json(b->sens);
        if (!js)
            cli_die(CLI_INTERNAL, b->sens_out, "out of memory");
        cli_write_json(js, b->sens_out, JSON_INDENT(1) | JSON_ENSURE_ASCII);
        json_decref(js);
    }
    double n_el = 0;
    for (int64_t i = 0; i < inp_n_tensors(s); i++)
        n_el += (double)inp_n_rows(inp_tensor_at(s, i)) * (double)inp_tensor_at(s, i)->ne[0];
    b->b.budget = b->size ? b->size : (uint64_t)(b->bpw * n_el / 8);
    b->b.remeasure = b->remeasure && !dry_run;
    b->b.sens_opts = &so;
    pl_report *r = NULL;
    e = pl_budget_run(s, p, b->sens, &b->b, &b->alloc, &r, msg);
    if (e != PL_OK)
        cli_die(cli_exit_pl(e), NULL, "%s", msg);
    p->ftype = b->b.ftype;
    print_alloc(b, dry_run);
    if (b->b.kld_measured >= 0)
        printf("[budget] measured KLD of the written file on the same chunks: %.5f (predicted %.5f)\n",
               b->b.kld_measured, b->alloc->kld_sum);
    b->b.sens_opts = NULL;
    return r;
}

json_t *cli_budget_json(const cli_budget *b)
{
    return b->alloc ? pl_alloc_json(b->sens, b->alloc, &b->b) : NULL;
}

void cli_budget_free(cli_budget *b)
{
    pl_alloc_free(b->alloc);
    pl_sens_free(b->sens);
}
