/* qforge-synth: write a random-weight checkpoint of a registered architecture in Hugging Face
 * layout, for tests and benchmarks. The checkpoint itself is input/synth.h's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/arch.h"
#include "input/synth.h"
#include "libgguf/gguf.h"
#include "tools/cli.h"

static void usage(FILE *f)
{
    char classes[256];
    arch_list_names(true, classes, sizeof classes);
    fprintf(f,
            "usage: qforge-synth --dim D --layers L --heads H [--kv-heads K] [--head-dim HD] --ffn F --vocab V\n"
            "                    [--arch CLASS] [--dtype bf16|f16|f32] [--shards S] [--tied] [--ctx N]\n"
            "                    [--rope-theta X] [--rope-llama3] [--tokenizer spm|bpe] [--seed N] -o DIR\n"
            "\n"
            "Writes a random-weight checkpoint into DIR (created if needed): config.json, tokenizer.model\n"
            "(--tokenizer spm, the default) or tokenizer.json (bpe: byte-level BPE, Llama 3's special\n"
            "tokens for LlamaForCausalLM, Qwen's for the others; convert it with --tokenizer-pre\n"
            "llama-bpe or qwen2), tokenizer_config.json and model.safetensors, or S shards\n"
            "model-0000i-of-0000S.safetensors with model.safetensors.index.json.\n"
            "CLASS: %s (default LlamaForCausalLM).\n"
            "--head-dim writes head_dim to config.json (default D / H, not written). --rope-llama3 adds\n"
            "Llama 3's rope_scaling (factor 8, low 1, high 4, original context 8192).\n"
            "Defaults: --kv-heads H, --dtype bf16, --shards 1, --ctx 2048, --rope-theta 10000, --seed 1.\n"
            "V >= 259 (260 with --tokenizer bpe).\n"
            "-h, --help  this text; --version  the qforge version\n",
            classes);
}

static long opt_long(int argc, char **argv, int *i, long lo, long hi)
{
    if (*i + 1 >= argc)
        cli_die(CLI_USAGE, NULL, "%s needs a value", argv[*i]);
    (*i)++;
    return cli_parse_long(argv[*i - 1], argv[*i], lo, hi);
}

static const char *opt_str(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc)
        cli_die(CLI_USAGE, NULL, "%s needs a value", argv[*i]);
    return argv[++*i];
}

static int parse_dtype(const char *s)
{
    int t = !strcmp(s, "bf16") ? GGUF_BF16 : !strcmp(s, "f16") ? GGUF_F16 : !strcmp(s, "f32") ? GGUF_F32 : -1;
    if (t < 0)
        cli_die(CLI_USAGE, NULL, "--dtype must be bf16, f16 or f32, not '%s'", s);
    return t;
}

static int parse_tokenizer(const char *s)
{
    if (strcmp(s, "spm") && strcmp(s, "bpe"))
        cli_die(CLI_USAGE, NULL, "--tokenizer must be spm or bpe, not '%s'", s);
    return strcmp(s, "bpe") ? INP_SYNTH_TOK_SPM : INP_SYNTH_TOK_BPE;
}

static double parse_positive(const char *opt, const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || !(v > 0) || v > 1e30)
        cli_die(CLI_USAGE, NULL, "%s needs a positive number, not '%s'", opt, s);
    return v;
}

static void set_temp(void *user, const char *path)
{
    (void)user;
    cli_set_temp(path);
}

int main(int argc, char **argv)
{
    cli_init(argc, argv);
    inp_synth_opts o = inp_synth_defaults();
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return CLI_OK;
        } else if (!strcmp(a, "--dim")) o.dim = opt_long(argc, argv, &i, 2, 1 << 16);
        else if (!strcmp(a, "--layers")) o.layers = opt_long(argc, argv, &i, 1, 1024);
        else if (!strcmp(a, "--heads")) o.heads = opt_long(argc, argv, &i, 1, 4096);
        else if (!strcmp(a, "--kv-heads")) o.kv_heads = opt_long(argc, argv, &i, 1, 4096);
        else if (!strcmp(a, "--head-dim")) o.head_dim = opt_long(argc, argv, &i, 2, 1 << 16);
        else if (!strcmp(a, "--ffn")) o.ffn = opt_long(argc, argv, &i, 1, 1 << 18);
        else if (!strcmp(a, "--vocab")) o.vocab = opt_long(argc, argv, &i, 259, 1 << 20);
        else if (!strcmp(a, "--shards")) o.shards = opt_long(argc, argv, &i, 1, 99999);
        else if (!strcmp(a, "--ctx")) o.ctx = opt_long(argc, argv, &i, 1, 1 << 24);
        else if (!strcmp(a, "--seed")) o.seed = (uint64_t)opt_long(argc, argv, &i, 0, 0x7fffffffL);
        else if (!strcmp(a, "--tied")) o.tied = true;
        else if (!strcmp(a, "--rope-llama3")) o.rope_llama3 = true;
        else if (!strcmp(a, "--tokenizer")) o.tokenizer = parse_tokenizer(opt_str(argc, argv, &i));
        else if (!strcmp(a, "--rope-theta")) o.rope_theta = parse_positive(a, opt_str(argc, argv, &i));
        else if (!strcmp(a, "--dtype")) o.dtype = parse_dtype(opt_str(argc, argv, &i));
        else if (!strcmp(a, "--arch")) o.hf_class = opt_str(argc, argv, &i);
        else if (!strcmp(a, "-o")) out = opt_str(argc, argv, &i);
        else
            cli_die(CLI_USAGE, NULL, "unknown argument '%s' (see --help)", a);
    }
    if (!o.dim || !o.layers || !o.heads || !o.ffn || !o.vocab || !out) {
        usage(stderr);
        return CLI_USAGE;
    }
    if (!arch_find_hf(o.hf_class, NULL)) {
        char classes[256];
        arch_list_names(true, classes, sizeof classes);
        cli_die(CLI_USAGE, NULL, "--arch '%s' is not one of %s", o.hf_class, classes);
    }
    o.temp_hook = set_temp;
    char msg[INP_MSG_SIZE];
    inp_synth_summary sum;
    inp_error e = inp_synth_write(out, &o, &sum, msg);
    if (e == INP_ERR_ARG)
        cli_die(CLI_USAGE, NULL, "%s", msg);
    if (e != INP_OK)
        cli_die(cli_exit_src(e), NULL, "%s", msg);
    printf("wrote %s: %llu parameters, %lld shard%s, %llu bytes of weights\n", out, (unsigned long long)sum.params,
           (long long)o.shards, o.shards > 1 ? "s" : "", (unsigned long long)sum.bytes);
    return CLI_OK;
}
