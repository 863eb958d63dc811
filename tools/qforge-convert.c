/* qforge-convert: Hugging Face checkpoint directory (or float GGUF) -> F32/F16/BF16 GGUF.
 *
 * Streams tensor by tensor in row chunks through input (names, Q/K permutation and metadata
 * as llama.cpp's convert_hf_to_gguf.py) into the streaming GGUF writer; each tensor's input
 * pages are dropped once written, so memory stays near one tensor. 1-D tensors and *_norm
 * weights stay F32 whatever the output type, as in llama.cpp. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libgguf/gguf.h"
#include "libquant/lq.h"
#include "input/input.h"
#include "tools/cli.h"

/* floats converted per step: 4 MiB of F32 (at least one row) */
#define CHUNK_FLOATS ((int64_t)1 << 20)

static void usage(FILE *f)
{
    fprintf(f,
            "usage: qforge-convert MODEL -o OUT.gguf [--outtype f32|f16|bf16] [-t N]\n"
            "\n"
            "MODEL   a Hugging Face Llama checkpoint directory (config.json, *.safetensors,\n"
            "        tokenizer.model) or a GGUF file with F32/F16/BF16 tensors\n"
            "-o      the GGUF file to write (written to a temp file, then renamed)\n"
            "--outtype  type of the 2-D weights (default f16); 1-D tensors and norms stay f32\n"
            "-t, --threads N  conversion threads (default 1: a plain rounding is memory-bound, and\n"
            "                 OpenMP barriers cost more than they save on a busy machine)\n"
            "-h, --help  this text; --version  the qforge version\n");
}

static bool ends_with(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcmp(s + n - m, suf) == 0;
}

static const char *type_name(int type)
{
    const gguf_type_traits *t = gguf_type_info(type);
    return t ? t->name : "?";
}

int main(int argc, char **argv)
{
    cli_init(argc, argv);
    const char *input = NULL, *output = NULL;
    int outtype = GGUF_F16, nthreads = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return CLI_OK;
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

    double t0 = cli_now();
    char msg[INP_MSG_SIZE];
    inp_source *s = NULL;
    inp_error se = inp_open(input, &s, msg);
    if (se != INP_OK)
        cli_die(cli_exit_src(se), NULL, "%s", msg);
    for (size_t i = 0; i < inp_n_files(s); i++)
        if (cli_same_file(output, inp_file(s, i)))
            cli_die(CLI_USAGE, output, "is an input file (%s); refusing to overwrite it", inp_file(s, i));

    int64_t n = inp_n_tensors(s);
    int *otype = malloc((n ? (size_t)n : 1) * sizeof *otype);
    if (!otype)
        cli_die(CLI_INTERNAL, NULL, "out of memory");
    gguf_writer *w = gguf_writer_create();
    if (!w)
        cli_die(CLI_INTERNAL, NULL, "out of memory");
    gguf_error ge = gguf_writer_copy_kv(w, inp_metadata(s));
    if (ge == GGUF_OK)
        ge = gguf_writer_set_u32(w, "general.file_type", outtype == GGUF_F32 ? 0 : outtype == GGUF_F16 ? 1 : 32);
    if (ge != GGUF_OK)
        cli_die(cli_exit_gguf(ge), input, "cannot copy the metadata: %s", gguf_strerror(ge));
    char gm[GGUF_MSG_SIZE];
    uint64_t in_total = 0, out_total = 0;
    int64_t max_row = 1;
    for (int64_t i = 0; i < n; i++) {
        const inp_tensor *t = inp_tensor_at(s, i);
        if (t->type != GGUF_F32 && t->type != GGUF_F16 && t->type != GGUF_BF16)
            cli_die(CLI_BAD_INPUT, input, "tensor '%s' has type %s; only f32, f16 and bf16 tensors convert", t->name,
                    type_name(t->type));
        otype[i] = (t->n_dims <= 1 || ends_with(t->name, "_norm.weight")) ? GGUF_F32 : outtype;
        if ((ge = gguf_writer_add_tensor(w, t->name, t->n_dims, t->ne, otype[i], gm)) != GGUF_OK)
            cli_die(cli_exit_gguf(ge), input, "tensor '%s': %s", t->name, gm);
        in_total += gguf_row_size(t->type, t->ne[0]) * (uint64_t)inp_n_rows(t);
        out_total += gguf_row_size(otype[i], t->ne[0]) * (uint64_t)inp_n_rows(t);
        if (t->ne[0] > max_row)
            max_row = t->ne[0];
    }
    if ((ge = gguf_writer_open(w, output, gm)) != GGUF_OK)
        cli_die(cli_exit_gguf(ge), output, "%s", gm);
    cli_set_temp(gguf_writer_temp_path(w));

    int64_t chunk_floats = CHUNK_FLOATS > max_row ? CHUNK_FLOATS : max_row;
    float *fbuf = malloc((size_t)chunk_floats * sizeof *fbuf);
    void *obuf = malloc((size_t)chunk_floats * sizeof(float));
    if (!fbuf || !obuf)
        cli_die(CLI_INTERNAL, NULL, "out of memory");
    int width = 1;
    for (int64_t k = n; k >= 10; k /= 10)
        width++;
    for (int64_t i = 0; i < n; i++) {
        const inp_tensor *t = inp_tensor_at(s, i);
        int64_t rows = inp_n_rows(t), ne0 = t->ne[0];
        int64_t step = chunk_floats / ne0;
        size_t in_row = gguf_row_size(t->type, ne0), out_row = gguf_row_size(otype[i], ne0);
        for (int64_t r = 0; r < rows; r += step) {
            int64_t nr = rows - r < step ? rows - r : step;
            const void *out;
            if (t->type == otype[i]) {
                se = inp_read_raw(s, i, r, nr, obuf, msg);
                out = obuf;
            } else {
                se = inp_read_f32(s, i, r, nr, fbuf, msg);
                out = fbuf;
                if (se == INP_OK && otype[i] != GGUF_F32) {
                    char lm[LQ_MSG_SIZE] = "";
                    lq_error le = lq_quantize_rows(otype[i], fbuf, obuf, nr, ne0, NULL, nthreads, lm);
                    if (le != LQ_OK)
                        cli_die(CLI_INTERNAL, NULL, "tensor '%s': %s", t->name, lm[0] ? lm : lq_strerror(le));
                    out = obuf;
                }
            }
            if (se != INP_OK)
                cli_die(cli_exit_src(se), NULL, "%s", msg);
            if ((ge = gguf_writer_write(w, out, (size_t)nr * out_row, gm)) != GGUF_OK)
                cli_die(cli_exit_gguf(ge), output, "%s", gm);
        }
        inp_release(s, i);
        char shape[96], a[32], b[32];
        size_t o = (size_t)snprintf(shape, sizeof shape, "[");
        for (uint32_t d = 0; d < t->n_dims && o < sizeof shape; d++)
            o += (size_t)snprintf(shape + o, sizeof shape - o, "%s%lld", d ? ", " : "", (long long)t->ne[d]);
        if (o < sizeof shape)
            snprintf(shape + o, sizeof shape - o, "]");
        printf("[%*lld/%lld] %s %s %s -> %s  %s -> %s\n", width, (long long)(i + 1), (long long)n, t->name, shape,
               type_name(t->type), type_name(otype[i]), cli_bytes((double)in_row * (double)rows, a),
               cli_bytes((double)out_row * (double)rows, b));
        fflush(stdout);
    }
    if ((ge = gguf_writer_finish(w, gm)) != GGUF_OK)
        cli_die(cli_exit_gguf(ge), output, "%s", gm);
    cli_set_temp(NULL);
    uint64_t file_size = gguf_writer_total_size(w);
    char a[32], b[32];
    printf("converted %lld tensors: %s -> %s of tensor data, %llu bytes written to %s in %.2f s\n", (long long)n,
           cli_bytes((double)in_total, a), cli_bytes((double)out_total, b), (unsigned long long)file_size, output,
           cli_now() - t0);
    gguf_writer_free(w);
    free(fbuf);
    free(obuf);
    free(otype);
    inp_close(s);
    return CLI_OK;
}
