/* qforge-convert: Hugging Face checkpoint directory (or float GGUF) -> F32/F16/BF16 GGUF.
 *
 * Streams tensor by tensor in row chunks through input (names, Q/K permutation and metadata
 * as llama.cpp's convert_hf_to_gguf.py) into the streaming GGUF writer; each tensor's input
 * pages are dropped once written, so memory stays near one tensor. 1-D tensors and *_norm
 * weights stay F32 whatever the output type, as in llama.cpp. The work is the pipeline
 * library's float plan (pipeline/pipeline.h, PL_PLAN_FLOAT). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "input/input.h"
#include "libgguf/gguf.h"
#include "pipeline/pipeline.h"
#include "tools/cli.h"
#include "tools/progress.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: qforge-convert MODEL -o OUT.gguf [--outtype f32|f16|bf16] [-t N] [--quiet]\n"
            "                      [--tokenizer-pre NAME]\n"
            "\n"
            "MODEL   a Hugging Face checkpoint directory (config.json, *.safetensors, tokenizer.model\n"
            "        or tokenizer.json) of Llama, Llama 3, Mistral, Qwen2 or Qwen3, or a GGUF file\n"
            "        with F32/F16/BF16 tensors\n"
            "-o      the GGUF file to write (written to a temp file, then renamed)\n"
            "--outtype  type of the 2-D weights (default f16); 1-D tensors and norms stay f32\n"
            "-t, --threads N  conversion threads (default 1: a plain rounding is memory-bound, and\n"
            "                 OpenMP barriers cost more than they save on a busy machine)\n"
            "--quiet     no progress bar on a terminal (stderr)\n"
            "--tokenizer-pre NAME  tokenizer.json's pre-tokenizer (llama-bpe, qwen2, gpt-2, ...) when\n"
            "                 it is not recognized (default: detected as llama.cpp does)\n"
            "-h, --help  this text; --version  the qforge version\n");
}

static const char *type_name(int type)
{
    const gguf_type_traits *t = gguf_type_info(type);
    return t ? t->name : "?";
}

static void progress_line(const pl_event *ev)
{
    if (ev->kind != PL_EV_TENSOR)
        return;
    const pl_report *r = ev->report;
    const pl_tensor_report *t = &r->tensors[ev->index];
    int width = 1;
    for (size_t k = r->n_tensors; k >= 10; k /= 10)
        width++;
    char shape[96], a[32], b[32];
    printf("[%*zu/%zu] %s %s %s -> %s  %s -> %s\n", width, ev->index + 1, r->n_tensors, t->name,
           cli_shape(t->n_dims, t->ne, shape, sizeof shape),
           type_name(t->input_type), type_name(t->type), cli_bytes((double)t->in_bytes, a),
           cli_bytes((double)t->out_bytes, b));
    fflush(stdout);
}

/* One line per tensor, the progress bar, the temp file registered for signal cleanup. */
static int progress(void *user, const pl_event *ev)
{
    (void)user;
    if (ev->kind == PL_EV_PLAN || ev->kind == PL_EV_TENSOR) {
        prog_clear();
        progress_line(ev);
        prog_pl_event(ev, "convert");
    } else if (ev->kind == PL_EV_TEMP_OPEN)
        cli_set_temp(ev->text);
    else if (ev->kind == PL_EV_TEMP_CLOSED)
        cli_set_temp(NULL);
    return 0;
}

int main(int argc, char **argv)
{
    cli_init(argc, argv);
    const char *input = NULL, *output = NULL, *tokenizer_pre = NULL;
    int outtype = GGUF_F16, nthreads = 1;
    bool quiet = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return CLI_OK;
        } else if (!strcmp(a, "--quiet")) {
            quiet = true;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (++i >= argc)
                cli_die(CLI_USAGE, NULL, "%s needs a file name", a);
            output = argv[i];
        } else if (!strcmp(a, "--outtype")) {
            if (++i >= argc)
                cli_die(CLI_USAGE, NULL, "--outtype needs f32, f16 or bf16");
            if (!strcmp(argv[i], "f32"))
                outtype = GGUF_F32;
            else if (!strcmp(argv[i], "f16"))
                outtype = GGUF_F16;
            else if (!strcmp(argv[i], "bf16"))
                outtype = GGUF_BF16;
            else
                cli_die(CLI_USAGE, NULL, "--outtype must be f32, f16 or bf16, not '%s'", argv[i]);
        } else if (!strcmp(a, "--tokenizer-pre")) {
            if (++i >= argc)
                cli_die(CLI_USAGE, NULL, "--tokenizer-pre needs a name");
            tokenizer_pre = argv[i];
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (++i >= argc)
                cli_die(CLI_USAGE, NULL, "%s needs a number", a);
            nthreads = (int)cli_parse_long(a, argv[i], 1, 4096);
        } else if (a[0] == '-' && a[1]) {
            cli_die(CLI_USAGE, NULL, "unknown option '%s' (see --help)", a);
        } else if (!input) {
            input = a;
        } else {
            cli_die(CLI_USAGE, NULL, "unexpected argument '%s' (see --help)", a);
        }
    }
    if (!input || !output) {
        usage(stderr);
        return CLI_USAGE;
    }

    prog_init(quiet ? PROG_QUIET : PROG_BAR_ONLY);
    double t0 = cli_now();
    char msg[PL_MSG_SIZE];
    inp_source *s = NULL;
    inp_error se = inp_open_ex(input, &(inp_open_opts){.tokenizer_pre = tokenizer_pre}, &s, msg);
    if (se != INP_OK)
        cli_die(cli_exit_src(se), NULL, "%s", msg);
    const char *clash = cli_input_file(output, s);
    if (clash)
        cli_die(CLI_USAGE, output, "is an input file (%s); refusing to overwrite it", clash);

    pl_opts p;
    pl_opts_init(&p);
    p.plan = PL_PLAN_FLOAT;
    p.float_type = outtype;
    p.input_name = input;
    p.output = output;
    p.nthreads = nthreads;
    p.chunk_bytes = (size_t)4 << 20; /* 4 MiB steps: memory stays near one tensor */
    p.measure = false;
    p.progress = progress;
    pl_report *r = NULL;
    pl_error e = pl_run(s, &p, &r, msg);
    if (e != PL_OK)
        cli_die(cli_exit_pl(e), NULL, "%s", msg);
    char a[32], b[32];
    printf("converted %zu tensors: %s -> %s of tensor data, %llu bytes written to %s in %.2f s\n", r->n_tensors,
           cli_bytes((double)r->in_bytes, a), cli_bytes((double)r->out_bytes, b), (unsigned long long)r->file_bytes,
           output, cli_now() - t0);
    pl_report_free(r);
    inp_close(s);
    return CLI_OK;
}
