/* qforge-sweep — a model quantized to many variants (file types × methods), each measured against
 * the float model, with the report a user chooses from: DIR/report.json, report.md and plots.
 * The command line of pipeline/sweep.h (the variant loop) and report/report.h (the views). */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "input/text.h"
#include "libquant/lq_mix.h"
#include "pipeline/sweep.h"
#include "report/report.h"
#include "tools/cli.h"
#include "tools/progress.h"

#define MAX_LIST 64

static void usage(FILE *f)
{
    fprintf(f,
            "usage: qforge-sweep MODEL -o DIR [options]\n"
            "\n"
            "Quantize MODEL (a Hugging Face checkpoint directory or a float GGUF) to every TYPE x METHOD,\n"
            "measure each against the float model (PPL, KL divergence, same top token) and write\n"
            "DIR/report.json, DIR/report.md and the plots DIR/kld.png, DIR/ppl.png (and .svg). Variants\n"
            "already in DIR with a matching record in DIR/report.json are not made again.\n"
            "\n"
            "  -o, --output DIR         directory of the variants and the report (created)\n"
            "      --types LIST         file types, comma-separated (default\n"
            "                           Q8_0,Q6_K,Q5_K_M,Q4_K_M,Q4_0,Q3_K_M,Q2_K; none when only\n"
            "                           --target-bpw is given)\n"
            "      --target-bpw LIST    size budgets in bits per weight, comma-separated: each with\n"
            "                           every method, as qforge-quantize --target-bpw (the\n"
            "                           sensitivity of each quantizer measured once, kept in DIR)\n"
            "      --methods LIST       rtn, imatrix, gptq, gptq-act-order, comma-separated (default\n"
            "                           rtn,imatrix)\n"
            "  -f, --file TEXT          evaluation text, repeatable (default: the bundled held-out\n"
            "                           eval-classics.txt)\n"
            "  -c, --ctx-size N         chunk length in tokens (default min(512, model context))\n"
            "      --chunks N           evaluate at most N chunks of each text (default all)\n"
            "  -b, --batch-size N       tokens per forward pass (default 512; same results)\n"
            "  -t, --threads N          threads (default: all cores)\n"
            "      --calib FILE         calibration text of imatrix and gptq (default: the bundled\n"
            "                           calibration.txt)\n"
            "      --calib-samples N    calibration chunks (default 128)\n"
            "      --calib-ctx N        tokens per calibration chunk (default min(512, model context))\n"
            "      --seed N             seed of the calibration chunk choice (default 0)\n"
            "      --damp X             GPTQ damping relative to mean diag(H) (default 0.01)\n"
            "      --act-order          the gptq method in descending order of activation energy too\n"
            "      --max-memory SIZE    refuse a calibration whose estimate exceeds SIZE (default:\n"
            "                           physical memory; 0: no check)\n"
            "  -q, --quiet              no progress output\n"
            "  -h, --help               this help\n"
            "      --version            the qforge version\n");
}

typedef struct {
    pl_sweep_opts s;
    const char *model;
    int ftypes[MAX_LIST];
    double bpws[MAX_LIST];
    pl_sweep_method methods[PL_SWEEP_N_METHODS];
    const char *texts[MAX_LIST];
    bool quiet;
    char prefix[96];  /* the variant being made: the pipeline's steps' label */
} tool;

static const char *need(const char *a, const char *val, int *i)
{
    if (!val)
        cli_die(CLI_USAGE, NULL, "%s needs a value", a);
    ++*i;
    return val;
}

/* Comma-separated names into out[] (at most max) through conv (< 0: unknown). */
static size_t list(const char *opt, const char *val, int (*conv)(const char *), int *out, size_t max)
{
    char buf[1024], *save = NULL;
    size_t n = 0;
    snprintf(buf, sizeof buf, "%s", val);
    for (char *w = strtok_r(buf, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
        const int v = conv(w);
        if (v < 0)
            cli_die(CLI_USAGE, NULL, "%s: unknown '%s' (see --help)", opt, w);
        for (size_t k = 0; k < n; k++)
            if (out[k] == v)
                cli_die(CLI_USAGE, NULL, "%s: '%s' given twice", opt, w);
        if (n == max)
            cli_die(CLI_USAGE, NULL, "%s: more than %zu entries", opt, max);
        out[n++] = v;
    }
    if (!n)
        cli_die(CLI_USAGE, NULL, "%s: empty list", opt);
    return n;
}

/* Comma-separated bits per weight in (0, 64] into t->bpws. */
static void bpw_list(tool *t, const char *val)
{
    char buf[1024], *save = NULL;
    snprintf(buf, sizeof buf, "%s", val);
    t->s.n_bpws = 0;
    for (char *w = strtok_r(buf, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
        char *end = NULL;
        const double x = strtod(w, &end);
        if (*end || !(x > 0 && x <= 64))
            cli_die(CLI_USAGE, NULL, "--target-bpw: '%s' is not a number in (0, 64]", w);
        for (size_t k = 0; k < t->s.n_bpws; k++)
            if (t->bpws[k] == x)
                cli_die(CLI_USAGE, NULL, "--target-bpw: '%s' given twice", w);
        if (t->s.n_bpws == MAX_LIST)
            cli_die(CLI_USAGE, NULL, "--target-bpw: more than %d entries", MAX_LIST);
        t->bpws[t->s.n_bpws++] = x;
    }
    if (!t->s.n_bpws)
        cli_die(CLI_USAGE, NULL, "--target-bpw: empty list");
}

static int ftype_conv(const char *s)
{
    const int t = lq_ftype_from_name(s);
    return t >= 0 && lq_ftype_name(t) && strncmp(lq_ftype_name(t), "F", 1) && strncmp(lq_ftype_name(t), "BF", 2) ? t : -1;
}

static bool value_opt(tool *t, const char *a, const char *v, int *i)
{
    pl_sweep_opts *s = &t->s;
    if (!strcmp(a, "-o") || !strcmp(a, "--output"))
        s->dir = need(a, v, i);
    else if (!strcmp(a, "--types"))
        s->n_ftypes = list(a, need(a, v, i), ftype_conv, t->ftypes, MAX_LIST);
    else if (!strcmp(a, "--target-bpw"))
        bpw_list(t, need(a, v, i));
    else if (!strcmp(a, "--methods"))
        s->n_methods = list(a, need(a, v, i), pl_sweep_method_from_name, (int *)t->methods, PL_SWEEP_N_METHODS);
    else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
        if (s->n_texts == MAX_LIST)
            cli_die(CLI_USAGE, NULL, "more than %d texts", MAX_LIST);
        t->texts[s->n_texts++] = need(a, v, i);
    } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size"))
        s->n_ctx = (int)cli_parse_long(a, need(a, v, i), 4, 1 << 16);
    else if (!strcmp(a, "--chunks"))
        s->chunks = (int)cli_parse_long(a, need(a, v, i), 1, 1 << 30);
    else if (!strcmp(a, "-b") || !strcmp(a, "--batch-size"))
        s->n_batch = (int)cli_parse_long(a, need(a, v, i), 1, 1 << 30);
    else if (!strcmp(a, "-t") || !strcmp(a, "--threads"))
        s->nthreads = (int)cli_parse_long(a, need(a, v, i), 1, 4096);
    else if (!strcmp(a, "--calib"))
        s->calib.name = need(a, v, i);
    else if (!strcmp(a, "--calib-samples"))
        s->calib.samples = (int)cli_parse_long(a, need(a, v, i), 1, 1 << 20);
    else if (!strcmp(a, "--calib-ctx"))
        s->calib.ctx = (int)cli_parse_long(a, need(a, v, i), 2, 1 << 16);
    else if (!strcmp(a, "--seed"))
        s->calib.seed = (uint64_t)cli_parse_long(a, need(a, v, i), 0, 0x7fffffffL);
    else if (!strcmp(a, "--max-memory"))
        s->calib.max_memory = cli_parse_size(a, need(a, v, i));
    else if (!strcmp(a, "--damp")) {
        char *end = NULL;
        s->calib.damp = strtod(need(a, v, i), &end);
        if (*end || !(s->calib.damp >= 0) || s->calib.damp > 1e6)
            cli_die(CLI_USAGE, NULL, "--damp needs a number >= 0");
    } else
        return false;
    return true;
}

static void parse(tool *t, int argc, char **argv)
{
    static const int def_types[] = {7, 18, 17, 15, 2, 12, 10}; /* Q8_0 Q6_K Q5_K_M Q4_K_M Q4_0 Q3_K_M Q2_K */
    pl_sweep_opts_init(&t->s);
    t->s.calib.max_memory = cli_phys_memory();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            t->quiet = true;
        } else if (!strcmp(a, "--act-order")) {
            t->s.calib.act_order = true;
        } else if (a[0] == '-' && a[1] && !value_opt(t, a, v, &i)) {
            cli_die(CLI_USAGE, NULL, "unknown option '%s' (see --help)", a);
        } else if (a[0] != '-' || !a[1]) {
            if (t->model)
                cli_die(CLI_USAGE, NULL, "more than one MODEL (see --help)");
            t->model = a;
        }
    }
    if (!t->model || !t->s.dir)
        cli_die(CLI_USAGE, NULL, "usage: qforge-sweep MODEL -o DIR [options] (see --help)");
    if (!t->s.n_ftypes && !t->s.n_bpws)
        for (size_t k = 0; k < sizeof def_types / sizeof *def_types; k++)
            t->ftypes[t->s.n_ftypes++] = def_types[k];
    if (!t->s.n_methods) {
        t->methods[t->s.n_methods++] = PL_SWEEP_RTN;
        t->methods[t->s.n_methods++] = PL_SWEEP_IMATRIX;
    }
    t->s.model = t->model;
    t->s.ftypes = t->ftypes;
    t->s.methods = t->methods;
    t->s.bpws = t->bpws;
    t->s.texts = t->texts;
}

/* ---------------------------------------------------------------- progress */

static int on_event(void *user, const pl_sweep_event *ev)
{
    tool *t = user;
    switch (ev->kind) {
    case PL_SW_VARIANT:
        snprintf(t->prefix, sizeof t->prefix, "[%zu/%zu] %s", ev->index + 1, ev->n_variants, ev->text);
        if (ev->reused && !t->quiet) {
            prog_clear();
            fprintf(stderr, "%s: %s: reused\n", cli_prog(), t->prefix);
        }
        break;
    case PL_SW_STEP:
        if (ev->unit) { /* an evaluation; a quantization's steps come as pipeline events */
            char label[160];
            const bool base = !strncmp(ev->text, "base", 4), eval = !strncmp(ev->text, "evaluate", 8);
            snprintf(label, sizeof label, "%s%s%s", base ? "" : t->prefix, base ? "" : " ",
                     eval ? "evaluate" : ev->text);
            prog_begin(label, ev->total, ev->unit);
        }
        break;
    case PL_SW_ADVANCE: prog_update(ev->done); break;
    case PL_SW_STEP_DONE: prog_end(); break;
    case PL_SW_TEMP_OPEN: cli_set_temp(ev->text); break;
    case PL_SW_TEMP_CLOSED: cli_set_temp(NULL); break;
    case PL_SW_PIPELINE:
        if (ev->pl->kind == PL_EV_TEMP_OPEN)
            cli_set_temp(ev->pl->text);
        else if (ev->pl->kind == PL_EV_TEMP_CLOSED)
            cli_set_temp(NULL);
        else if (ev->pl->kind == PL_EV_WARNING && !t->quiet) {
            prog_clear();
            cli_warn(NULL, "%s", ev->pl->text);
        } else
            prog_pl_event(ev->pl, t->s.dir && ev->pl->kind == PL_EV_CALIB_START && !t->prefix[0] ? "imatrix"
                                                                                                  : t->prefix);
        break;
    }
    return 0;
}

/* ---------------------------------------------------------------- outputs */

/* Write the views of the report: report.md and the plots (temp file, rename). */
static void views(const tool *t, const json_t *report)
{
    char path[4200], msg[RP_MSG_SIZE];
    rp_error e;
    char *md = rp_markdown(report, &e, msg);
    if (!md)
        cli_die(e == RP_ERR_NOMEM ? CLI_INTERNAL : CLI_BAD_INPUT, NULL, "report.md: %s", msg);
    snprintf(path, sizeof path, "%s/report.md", t->s.dir);
    FILE *f = cli_create(path);
    fputs(md, f);
    cli_commit(f, path);
    free(md);
    static const char *const names[] = {"kld.png", "ppl.png", "kld.svg", "ppl.svg"};
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", t->s.dir, names[i]);
        f = cli_create(path);
        if ((e = rp_plot(report, i % 2 ? RP_PLOT_PPL : RP_PLOT_KLD, i < 2 ? "pngcairo" : "svgcairo", f, msg)) != RP_OK)
            cli_die(e == RP_ERR_NOMEM ? CLI_INTERNAL : CLI_IO, path, "%s", msg);
        cli_commit(f, path);
    }
}

static void summary(const json_t *report)
{
    const json_t *v;
    size_t i;
    json_array_foreach(json_object_get(report, "variants"), i, v) {
        const json_t *ev = json_array_get(json_object_get(v, "eval"), 0);
        char b[32];
        printf("%-22s %10s %6.3f bpw  PPL %9.4f  mean KLD %9.6f  same top p %6.2f %%%s\n",
               json_string_value(json_object_get(v, "file")),
               cli_bytes(json_number_value(json_object_get(v, "file_bytes")), b),
               json_number_value(json_object_get(v, "bpw")), json_number_value(json_object_get(ev, "ppl")),
               json_number_value(json_object_get(ev, "kld")), 100 * json_number_value(json_object_get(ev, "same_top_p")),
               json_is_true(json_object_get(v, "reused")) ? "  (reused)" : "");
    }
}

int main(int argc, char **argv)
{
    cli_passive_omp(argv);
    cli_init(argc, argv);
    tool t = {0};
    parse(&t, argc, argv);
    prog_init(t.quiet ? PROG_QUIET : PROG_AUTO);
    char *def_text = t.s.n_texts ? NULL : (char *)cli_bundled("models", "eval-classics.txt", "-f");
    if (def_text)
        t.texts[t.s.n_texts++] = def_text;
    char msg[PL_MSG_SIZE], path[4200];
    const char *calib_name = t.s.calib.name; /* the bundled one is malloc'ed */
    inp_source *src = NULL;
    inp_error se = inp_open(t.model, &src, msg);
    if (se != INP_OK)
        cli_die(cli_exit_src(se), NULL, "%s", msg);
    if (mkdir(t.s.dir, 0777) != 0 && errno != EEXIST)
        cli_die(CLI_IO, t.s.dir, "cannot create the directory: %s", strerror(errno));
    for (size_t m = 0; m < t.s.n_methods; m++)
        if ((t.methods[m] != PL_SWEEP_RTN || t.s.n_bpws) && !t.s.calib.text) { /* a budget measures on it */
            if (!t.s.calib.name)
                t.s.calib.name = cli_bundled("calibration", "calibration.txt", "--calib");
            char *text = NULL;
            if ((se = inp_text_load(t.s.calib.name, &text, &t.s.calib.len, msg)) != INP_OK)
                cli_die(cli_exit_src(se), NULL, "--calib: %s", msg);
            t.s.calib.text = text;
        }
    snprintf(path, sizeof path, "%s/report.json", t.s.dir);
    json_error_t jerr;
    json_t *prior = access(path, F_OK) == 0 ? json_load_file(path, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    if (access(path, F_OK) == 0 && !prior)
        cli_warn(path, "unreadable (%s, line %d); every variant is made again", jerr.text, jerr.line);
    t.s.prior = prior;
    t.s.tool = cli_prog();
    t.s.version = cli_version();
    t.s.progress = on_event;
    t.s.user = &t;
    json_t *report = NULL;
    pl_error e = pl_sweep_run(src, &t.s, &report, msg);
    if (e != PL_OK) {
        prog_abort();
        cli_die(cli_exit_pl(e), NULL, "%s", msg);
    }
    prog_end();
    views(&t, report);
    summary(report);
    printf("%s: %s/report.md, report.json, kld.png, ppl.png\n", cli_prog(), t.s.dir);
    json_decref(report);
    json_decref(prior);
    free((char *)t.s.calib.text);
    free(def_text);
    if (calib_name != t.s.calib.name)
        free((char *)t.s.calib.name);
    inp_close(src);
    return 0;
}
