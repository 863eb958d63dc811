/* qforge-quantize: GGUF (F32/F16/BF16) or checkpoint directory -> quantized GGUF, in one
 * streaming pass, choosing tensor types as llama-quantize does: the command line of the
 * pipeline library (pipeline/pipeline.h), which plans, calibrates, quantizes and writes. */
#include <jansson.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "input/imatrix.h"
#include "input/input.h"
#include "input/text.h"
#include "libgguf/gguf.h"
#include "libquant/lq.h"
#include "libquant/lq_mix.h"
#include "pipeline/pipeline.h"
#include "tools/cli.h"
#include "tools/progress.h"
#include "tools/quantize_lines.h"
#include "tools/cli_budget.h"

typedef struct {
    pl_opts p;                 /* what the pipeline gets (output NULL: dry run) */
    const char *input, *output, *type_name, *report_path;
    const char *tokenizer_pre; /* --tokenizer-pre: for a tokenizer.json checkpoint */
    char *bundled_calib;       /* the bundled calibration text's path when --calib is not given */
    bool dry_run, quiet;
    lq_mix_overrides *overrides;
    cli_budget budget;         /* --target-bpw / --target-size */
    int npos;
    ql_columns cols;           /* tensor line layout */
} options;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: qforge-quantize [options] INPUT OUTPUT TYPE\n"
            "       qforge-quantize [options] --target-bpw X INPUT OUTPUT\n"
            "       qforge-quantize [calibration options] --imatrix-out FILE INPUT\n"
            "\n"
            "INPUT   a GGUF file (F32/F16/BF16 tensors) or a Hugging Face checkpoint directory\n"
            "OUTPUT  the GGUF file to write (never one of the input files)\n"
            "TYPE    Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K Q8_0 Q4_0 Q4_1\n"
            "        Q5_0 Q5_1 F16 BF16 F32, the aliases Q3_K Q4_K Q5_K (_M), or llama.cpp's id\n"
            "\n"
            "options:\n"
            "  -t, --threads N              worker threads (default: all cores)\n"
            "  --pure                       no mixture: the base type for every quantized tensor\n"
            "  --leave-output-tensor        keep output.weight in its input type\n"
            "  --output-tensor-type T       type for output.weight\n"
            "  --token-embedding-type T     type for token_embd.weight\n"
            "  --tensor-type REGEX=T        type for tensors whose name matches REGEX (POSIX ERE);\n"
            "                               repeatable, the first matching rule wins\n"
            "  --imatrix FILE               importance matrix (llama-imatrix GGUF or legacy .dat)\n"
            "  --dry-run                    print the plan and sizes; write no model\n"
            "  --report FILE.json           per-tensor type, bytes and RMSE as JSON\n"
            "  --tokenizer-pre NAME         a checkpoint's tokenizer.json pre-tokenizer (llama-bpe,\n"
            "                               qwen2, gpt-2, ...) when it is not recognized\n"
            "  --gptq                       GPTQ (calibrated) for the linear weights of every layer,\n"
            "                               each at the type the mixture picked; same file size\n"
            "  --act-order                  GPTQ in descending order of activation energy\n"
            "  --gptq-sym                   classic GPTQ objective ||(W-Q)x||^2 on the quantized\n"
            "                               model's inputs (default: ||W x_float - Q x||^2)\n"
            "  --damp X                     GPTQ damping, relative to mean diag(H) (default 0.01)\n"
            "  --calib FILE                 calibration text, UTF-8 or .gz (default: the bundled\n"
            "                               calibration/calibration.txt)\n"
            "  --calib-samples N            calibration chunks (default 128)\n"
            "  --calib-ctx N                tokens per chunk (default min(512, model context))\n"
            "  --seed N                     seed of the random chunk choice (default 0)\n"
            "  --imatrix-out FILE           write llama-imatrix's GGUF: with --gptq from the\n"
            "                               sequential Hessians' inputs; alone (INPUT only) from\n"
            "                               the float model\n"
            "  --max-memory SIZE            refuse a calibration (--gptq, --imatrix-out) whose\n"
            "                               estimated memory exceeds SIZE (e.g. 4G; default: the\n"
            "                               machine's physical memory; 0: no check)\n"
            "  --quiet                      no progress bar on a terminal (stderr)\n"
            "%s"
            "  -h, --help                   this text\n"
            "  --version                    the qforge version\n", cli_budget_usage());
}

static int parse_type_opt(const char *opt, const char *val)
{
    int t = val ? gguf_type_from_name(val) : -1;
    if (t < 0 || !lq_mix_type_ok(t))
        cli_die(CLI_USAGE, NULL, "%s: unknown or unsupported tensor type '%s'", opt, val ? val : "");
    return t;
}

/* Options without a value. */
static bool flag_opt(const char *a, options *o)
{
    const struct {
        const char *name;
        bool *v;
    } f[] = {{"--pure", &o->p.mix.pure}, {"--leave-output-tensor", &o->p.mix.leave_output},
             {"--dry-run", &o->dry_run}, {"--gptq", &o->p.gptq}, {"--act-order", &o->p.calib.act_order},
             {"--gptq-sym", &o->p.calib.sym}, {"--quiet", &o->quiet},
             {"--remeasure", &o->budget.remeasure}};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (!strcmp(a, f[i].name))
            return *f[i].v = true;
    return false;
}

/* Options whose value is a file name. */
static bool file_opt(const char *a, const char *next, options *o)
{
    const struct {
        const char *name;
        const char **v;
    } f[] = {{"--imatrix", &o->p.imatrix_name}, {"--calib", &o->p.calib.name},
             {"--imatrix-out", &o->p.calib.imatrix_out}, {"--report", &o->report_path}};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (!strcmp(a, f[i].name)) {
            if (!next)
                cli_die(CLI_USAGE, NULL, "%s needs a file", a);
            *f[i].v = next;
            return true;
        }
    return false;
}

/* Options with a number, type, size or rule. */
static bool value_opt(const char *a, const char *next, options *o)
{
    pl_calib_params *c = &o->p.calib;
    if (cli_budget_opt(a, next, &o->budget)) {
    } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
        o->p.nthreads = (int)cli_parse_long(a, next, 1, 4096);
    } else if (!strcmp(a, "--output-tensor-type")) {
        o->p.mix.output_tensor_type = parse_type_opt(a, next);
    } else if (!strcmp(a, "--token-embedding-type")) {
        o->p.mix.token_embedding_type = parse_type_opt(a, next);
    } else if (!strcmp(a, "--tensor-type")) {
        if (!next)
            cli_die(CLI_USAGE, NULL, "--tensor-type needs REGEX=TYPE");
        char msg[LQ_MSG_SIZE];
        lq_error e = lq_mix_overrides_add(o->overrides, next, msg);
        if (e != LQ_OK)
            cli_die(e == LQ_ERR_NOMEM ? CLI_INTERNAL : CLI_USAGE, NULL, "--tensor-type: %s", msg);
    } else if (!strcmp(a, "--damp")) {
        char *end = NULL;
        c->damp = next ? strtod(next, &end) : -1;
        if (!next || *end || !(c->damp >= 0) || c->damp > 1e6)
            cli_die(CLI_USAGE, NULL, "--damp needs a number >= 0");
    } else if (!strcmp(a, "--calib-samples")) {
        c->samples = (int)cli_parse_long(a, next, 1, 1 << 20);
    } else if (!strcmp(a, "--calib-ctx")) {
        c->ctx = (int)cli_parse_long(a, next, 2, 1 << 16);
    } else if (!strcmp(a, "--max-memory")) {
        c->max_memory = cli_parse_size(a, next);
    } else if (!strcmp(a, "--seed")) {
        c->seed = (uint64_t)cli_parse_long(a, next, 0, 0x7fffffffL);
    } else if (!strcmp(a, "--tokenizer-pre")) {
        if (!next)
            cli_die(CLI_USAGE, NULL, "--tokenizer-pre needs a name");
        o->tokenizer_pre = next;
    } else {
        return false;
    }
    return true;
}

static void parse_args(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    pl_opts_init(&o->p);
    o->p.calib.max_memory = cli_phys_memory();
    o->overrides = lq_mix_overrides_create();
    if (!o->overrides)
        cli_die(CLI_INTERNAL, NULL, "out of memory");
    const char *pos[3];
    bool opts_done = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (opts_done || a[0] != '-' || a[1] == 0) {
            if (o->npos == 3)
                cli_die(CLI_USAGE, NULL, "too many arguments (see --help)");
            pos[o->npos++] = a;
        } else if (!strcmp(a, "--")) {
            opts_done = true;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        } else if (!flag_opt(a, o)) {
            if (!file_opt(a, next, o) && !value_opt(a, next, o))
                cli_die(CLI_USAGE, NULL, "unknown option '%s' (see --help)", a);
            i++;
        }
    }
    o->p.input_name = o->input = pos[0];
    if (o->p.calib.imatrix_out && o->npos == 1 && !o->p.gptq)
        return;
    const bool budget = o->budget.active;
    if (o->npos != 3 && !(budget && o->npos == 2)) {
        usage(stderr);
        exit(CLI_USAGE);
    }
    if (o->p.calib.imatrix_out && !o->p.gptq)
        cli_die(CLI_USAGE, NULL, "--imatrix-out with OUTPUT and TYPE needs --gptq (alone: "
                "qforge-quantize --imatrix-out FILE INPUT)");
    if ((o->p.calib.act_order || o->p.calib.sym) && !o->p.gptq)
        cli_die(CLI_USAGE, NULL, "--act-order and --gptq-sym need --gptq");
    o->output = pos[1];
    o->p.output = o->dry_run ? NULL : o->output;
    if (budget && o->npos == 3)
        cli_die(CLI_USAGE, NULL, "a size budget chooses the types: give INPUT OUTPUT, no TYPE");
    o->type_name = budget ? "budget" : pos[2];
    o->p.ftype = budget ? -1 : lq_ftype_from_name(o->type_name);
    if (o->p.ftype < 0 && !budget)
        cli_die(CLI_USAGE, NULL, "unknown file type '%s' (see --help)", o->type_name);
    o->p.mix.overrides = o->overrides;
}

/* ---------------------------------------------------------------- printing */

static int progress(void *user, const pl_event *ev)
{
    options *o = user;
    prog_clear();
    switch (ev->kind) {
    case PL_EV_WARNING: cli_warn(NULL, "%s", ev->text); break;
    case PL_EV_PLAN: ql_plan(&o->cols, ev->report); break;
    case PL_EV_CALIB_GROUP: ql_group(ev); break;
    case PL_EV_CALIB_START: case PL_EV_CALIB_DONE: case PL_EV_IMATRIX_DONE: ql_calib(&o->p, ev); break;
    case PL_EV_TEMP_OPEN: cli_set_temp(ev->text); break;
    case PL_EV_TEMP_CLOSED: cli_set_temp(NULL); break;
    case PL_EV_TENSOR: ql_tensor(&o->cols, ev->report, ev->index); break;
    }
    fflush(stdout);
    return prog_pl_event(ev, NULL);
}

static void summary(const options *o, const pl_report *r)
{
    char ib[32], ob[32];
    const double ne = r->n_elements;
    printf("%s: %zu tensors, %.0f weights, type %s (file type %d)%s\n", cli_prog(), r->n_tensors, ne,
           lq_ftype_name(o->p.ftype), o->p.ftype, o->dry_run ? ", dry run: nothing written" : "");
    printf("  input  %10s  %6.2f bpw\n", cli_bytes((double)r->in_bytes, ib),
           ne > 0 ? r->in_bytes * 8.0 / ne : 0.0);
    printf("  output %10s  %6.2f bpw", cli_bytes((double)r->out_bytes, ob),
           ne > 0 ? r->out_bytes * 8.0 / ne : 0.0);
    if (!o->dry_run)
        printf("  (%s: %llu bytes)", o->output, (unsigned long long)r->file_bytes);
    printf("\n");
    if (r->n_fallback)
        printf("  %zu tensor(s) used a fallback type\n", r->n_fallback);
    if (o->p.imatrix)
        printf("  importance matrix applied to %zu tensor(s)\n", r->n_imatrix);
    printf("  %.2f s, %d thread(s)\n", r->seconds, r->nthreads);
}

/* ---------------------------------------------------------------- inputs */

/* The calibration text (the bundled one unless --calib), after refusing an --imatrix-out that
 * would overwrite an input or the output. */
static void load_calib(options *o, inp_source *s)
{
    pl_calib_params *c = &o->p.calib;
    char msg[INP_MSG_SIZE], *text = NULL;
    if (!c->name)
        c->name = o->bundled_calib = (char *)cli_bundled("calibration", "calibration.txt", "--calib");
    if (c->imatrix_out && (cli_same_file(c->imatrix_out, o->input) || cli_same_file(c->imatrix_out, c->name) ||
                           (o->output && !strcmp(c->imatrix_out, o->output)) || cli_input_file(c->imatrix_out, s)))
        cli_die(CLI_USAGE, c->imatrix_out, "is an input or the output; refusing to overwrite it");
    inp_error se = inp_text_load(c->name, &text, &c->len, msg);
    if (se != INP_OK)
        cli_die(cli_exit_src(se), NULL, "--calib: %s", msg);
    c->text = text;
}

/* Never overwrite an input (model, any of its files, the imatrix) with the output or report. */
static void refuse_clashes(const options *o, inp_source *s)
{
    const char *im = o->p.imatrix_name, *rep = o->report_path;
    if (!o->dry_run && (cli_same_file(o->output, o->input) || (im && cli_same_file(o->output, im)) ||
                        cli_input_file(o->output, s)))
        cli_die(CLI_USAGE, o->output, "is an input file; refusing to overwrite it");
    if (rep && (cli_same_file(rep, o->input) || (!o->dry_run && cli_same_file(rep, o->output)) ||
                (im && cli_same_file(rep, im)) || cli_input_file(rep, s) || !strcmp(rep, o->output)))
        cli_die(CLI_USAGE, rep, "the report would overwrite an input or the output");
}

/* ---------------------------------------------------------------- main */

static noreturn void die_pl(pl_error e, const char *msg)
{
    const bool hint = e == PL_ERR_BUDGET && strstr(msg, ": needs ");
    cli_die(cli_exit_pl(e), NULL, "%s%s", msg,
            hint ? "; lower --calib-samples or --calib-ctx, or raise --max-memory" : "");
}

int main(int argc, char **argv)
{
    cli_passive_omp(argv);
    cli_init(argc, argv);
    options o;
    parse_args(argc, argv, &o);
    prog_init(o.quiet || o.dry_run ? PROG_QUIET : PROG_BAR_ONLY);
    o.p.progress = progress;
    o.p.user = &o;
    const double t0 = cli_now();
    char msg[PL_MSG_SIZE];
    inp_source *s = NULL;
    inp_error se = inp_open_ex(o.input, &(inp_open_opts){.tokenizer_pre = o.tokenizer_pre}, &s, msg);
    if (se != INP_OK)
        cli_die(cli_exit_src(se), NULL, "%s", msg);
    pl_report *r = NULL;
    pl_error e;
    inp_imatrix *im = NULL;
    if (o.npos == 1) { /* --imatrix-out FILE INPUT */
        load_calib(&o, s);
        if ((e = pl_run_imatrix(s, &o.p, &r, msg)) != PL_OK)
            die_pl(e, msg);
    } else {
        refuse_clashes(&o, s);
        if (o.p.imatrix_name && (se = inp_imatrix_load(o.p.imatrix_name, &im, msg)) != INP_OK)
            cli_die(cli_exit_src(se), NULL, "%s", msg);
        o.p.imatrix = im;
        if ((o.p.gptq && !o.dry_run) || (o.budget.active && (!o.budget.sens_in || o.budget.remeasure)))
            load_calib(&o, s);
        if (o.budget.active)
            r = cli_budget_run(&o.budget, s, &o.p, o.dry_run);
        else if ((e = pl_run(s, &o.p, &r, msg)) != PL_OK)
            die_pl(e, msg);
        r->seconds = cli_now() - t0;
        summary(&o, r);
        if (o.report_path) {
            json_t *js = pl_report_json(r, &o.p);
            if (js && o.budget.active)
                json_object_set_new(js, "budget", cli_budget_json(&o.budget));
            if (!js)
                cli_die(CLI_INTERNAL, o.report_path, "out of memory");
            cli_write_json(js, o.report_path, JSON_INDENT(1) | JSON_ENSURE_ASCII);
            json_decref(js);
        }
    }
    pl_report_free(r);
    inp_imatrix_free(im);
    free((char *)o.p.calib.text);
    free(o.bundled_calib);
    lq_mix_overrides_free(o.overrides);
    cli_budget_free(&o.budget);
    inp_close(s);
    return 0;
}
