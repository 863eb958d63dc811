/* qforge-perplexity — perplexity and KL divergence of a GGUF model on a text, computed
 * exactly as llama.cpp's llama-perplexity does (see runtime/perplexity.h and docs/runtime.md). */
#include <errno.h>
#include <jansson.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runtime/perplexity.h"
#include "runtime/runtime.h"
#include "tokenizer/tokenizer.h"
#include "tools/cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: qforge-perplexity -m MODEL.gguf -f TEXT [options]\n"
            "       qforge-perplexity -m MODEL.gguf --kl-divergence-base FILE --kl-divergence [options]\n"
            "\n"
            "Perplexity as llama-perplexity computes it: the text is tokenized with BOS, cut into chunks\n"
            "of N_CTX tokens whose first token becomes BOS, and the second half of each chunk is scored.\n"
            "\n"
            "  -m, --model FILE         model (GGUF file or checkpoint directory)\n"
            "  -f, --file FILE          text to evaluate (UTF-8)\n"
            "  -c, --ctx-size N         chunk length in tokens (default 512)\n"
            "      --chunks N           evaluate at most N chunks (default all)\n"
            "  -t, --threads N          threads (default: all cores)\n"
            "  -b, --batch-size N       tokens per forward pass (default 512): N / N_CTX chunks are\n"
            "                           evaluated together, as llama-perplexity does (same results)\n"
            "      --kl-divergence-base FILE\n"
            "                           without --kl-divergence: also write the model's log-probabilities\n"
            "                           of every scored token to FILE (the base for a later comparison)\n"
            "      --kl-divergence      compare with the base FILE (its tokens are used; -f not needed)\n"
            "      --json FILE          write every figure to FILE as JSON\n"
            "      --max-memory SIZE    refuse to start when the model, its scratch buffers and logits\n"
            "                           need more than SIZE (e.g. 512M, 8G; default: the machine's\n"
            "                           physical memory; 0: no check)\n"
            "  -h, --help               this help\n"
            "      --version            the qforge version\n");
}

typedef struct {
    const char *model, *text, *kld_base, *json;
    int n_ctx, n_ctx_given, chunks, threads, batch, kld;
    uint64_t max_memory; /* 0: no limit */
} opts;

static opts parse(int argc, char **argv)
{
    opts o = {.n_ctx = 512, .chunks = -1, .threads = 0, .batch = 512, .max_memory = cli_phys_memory()};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
#define NEEDVAL()                                                      \
    do {                                                               \
        if (!val)                                                      \
            cli_die(CLI_USAGE, NULL, "%s needs a value", a);           \
        i++;                                                           \
    } while (0)
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            NEEDVAL();
            o.model = val;
        } else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
            NEEDVAL();
            o.text = val;
        } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) {
            NEEDVAL();
            o.n_ctx = (int)cli_parse_long(a, val, 4, RT_MAX_TOKENS);
            o.n_ctx_given = 1;
        } else if (!strcmp(a, "--chunks")) {
            NEEDVAL();
            o.chunks = (int)cli_parse_long(a, val, 1, 1 << 30);
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            NEEDVAL();
            o.threads = (int)cli_parse_long(a, val, 1, 1024);
        } else if (!strcmp(a, "-b") || !strcmp(a, "--batch-size")) {
            NEEDVAL();
            o.batch = (int)cli_parse_long(a, val, 1, 1 << 30);
        } else if (!strcmp(a, "--kl-divergence-base")) {
            NEEDVAL();
            o.kld_base = val;
        } else if (!strcmp(a, "--kl-divergence")) {
            o.kld = 1;
        } else if (!strcmp(a, "--max-memory")) {
            NEEDVAL();
            o.max_memory = cli_parse_size(a, val);
        } else if (!strcmp(a, "--json")) {
            NEEDVAL();
            o.json = val;
        } else {
            usage(stderr);
            cli_die(CLI_USAGE, NULL, "unknown option '%s'", a);
        }
#undef NEEDVAL
    }
    if (!o.model)
        cli_die(CLI_USAGE, NULL, "no model given (-m MODEL.gguf); --help for usage");
    if (o.kld && !o.kld_base)
        cli_die(CLI_USAGE, NULL, "--kl-divergence needs --kl-divergence-base FILE");
    if (!o.kld && !o.text)
        cli_die(CLI_USAGE, NULL, "no text given (-f TEXT); --help for usage");
    return o;
}

/* Offset of the first byte that breaks UTF-8, or -1 if the text is valid. */
static long long utf8_invalid_at(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return (long long)i;
        }
        if (i + len > n)
            return (long long)i;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return (long long)i;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return (long long)i;
        i += len;
    }
    return -1;
}

static char *read_text(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        cli_die(CLI_IO, path, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode))
        cli_die(CLI_IO, path, "not a regular file");
    if ((uint64_t)st.st_size > TOK_MAX_TEXT)
        cli_die(CLI_BAD_INPUT, path, "text is too large (%lld bytes; at most %zu)", (long long)st.st_size,
                (size_t)TOK_MAX_TEXT);
    char *buf = malloc((size_t)st.st_size + 1);
    if (!buf)
        cli_die(CLI_INTERNAL, path, "out of memory");
    size_t got = fread(buf, 1, (size_t)st.st_size, f);
    if (got != (size_t)st.st_size || ferror(f))
        cli_die(CLI_IO, path, "read failed");
    fclose(f);
    buf[got] = 0;
    *n = got;
    return buf;
}

static int exit_for(rt_error e) { return e == RT_ERR_NOMEM ? CLI_INTERNAL : e == RT_ERR_IO ? CLI_IO : CLI_BAD_INPUT; }

static void json_put_kld(json_t *o, const rt_kld_stats *s)
{
    json_t *k = json_object();
    json_object_set_new(k, "count", json_integer(s->count));
    json_object_set_new(k, "ppl", json_real(s->ppl));
    json_object_set_new(k, "ppl_unc", json_real(s->ppl_unc));
    json_object_set_new(k, "ppl_base", json_real(s->ppl_base));
    json_object_set_new(k, "ppl_base_unc", json_real(s->ppl_base_unc));
    json_object_set_new(k, "cor_ln_ppl", json_real(s->cor));
    json_object_set_new(k, "mean_ln_ppl_ratio", json_real(s->ln_ratio));
    json_object_set_new(k, "mean_ln_ppl_ratio_unc", json_real(s->ln_ratio_unc));
    json_object_set_new(k, "ppl_ratio", json_real(s->ppl_ratio));
    json_object_set_new(k, "ppl_ratio_unc", json_real(s->ppl_ratio_unc));
    json_object_set_new(k, "ppl_diff", json_real(s->ppl_diff));
    json_object_set_new(k, "ppl_diff_unc", json_real(s->ppl_diff_unc));
    json_object_set_new(k, "kld", json_real(s->kld));
    json_object_set_new(k, "kld_unc", json_real(s->kld_unc));
    static const char *kn[11] = {"max", "99.9", "99", "95", "90", "median", "10", "5", "1", "0.1", "min"};
    json_t *kp = json_object();
    for (int i = 0; i < 11; i++)
        json_object_set_new(kp, kn[i], json_real(s->kld_pct[i]));
    json_object_set_new(k, "kld_percentiles", kp);
    json_object_set_new(k, "mean_dp", json_real(s->dp));
    json_object_set_new(k, "mean_dp_unc", json_real(s->dp_unc));
    static const char *pn[13] = {"max", "99.9", "99", "95", "90", "75", "median", "25", "10", "5", "1", "0.1", "min"};
    json_t *pp = json_object();
    for (int i = 0; i < 13; i++)
        json_object_set_new(pp, pn[i], json_real(s->dp_pct[i]));
    json_object_set_new(k, "dp_percentiles", pp);
    json_object_set_new(k, "rms_dp", json_real(s->rms_dp));
    json_object_set_new(k, "rms_dp_unc", json_real(s->rms_dp_unc));
    json_object_set_new(k, "same_top_p", json_real(s->same_top));
    json_object_set_new(k, "same_top_p_unc", json_real(s->same_top_unc));
    json_object_set_new(o, "kld", k);
}

static void print_kld(const rt_kld_stats *s)
{
    printf("====== Perplexity statistics ======\n");
    printf("Mean PPL(Q)                   : %10.6f ± %10.6f\n", s->ppl, s->ppl_unc);
    printf("Mean PPL(base)                : %10.6f ± %10.6f\n", s->ppl_base, s->ppl_base_unc);
    printf("Cor(ln(PPL(Q)), ln(PPL(base))): %6.2f%%\n", 100.0 * s->cor);
    printf("Mean ln(PPL(Q)/PPL(base))     : %10.6f ± %10.6f\n", s->ln_ratio, s->ln_ratio_unc);
    printf("Mean PPL(Q)/PPL(base)         : %10.6f ± %10.6f\n", s->ppl_ratio, s->ppl_ratio_unc);
    printf("Mean PPL(Q)-PPL(base)         : %10.6f ± %10.6f\n", s->ppl_diff, s->ppl_diff_unc);
    printf("\n====== KL divergence statistics ======\n");
    printf("Mean    KLD: %10.6f ± %10.6f\n", s->kld, s->kld_unc);
    static const char *kn[11] = {"Maximum KLD", "99.9%   KLD", "99.0%   KLD", "95.0%   KLD", "90.0%   KLD",
                                 "Median  KLD", "10.0%   KLD", " 5.0%   KLD", " 1.0%   KLD", " 0.1%   KLD",
                                 "Minimum KLD"};
    for (int i = 0; i < 11; i++)
        printf("%s: %10.6f\n", kn[i], s->kld_pct[i]);
    printf("\n====== Token probability statistics ======\n");
    printf("Mean    Δp: %6.3f ± %5.3f %%\n", 100.0 * s->dp, 100.0 * s->dp_unc);
    static const char *pn[13] = {"Maximum Δp", "99.9%   Δp", "99.0%   Δp", "95.0%   Δp", "90.0%   Δp",
                                 "75.0%   Δp", "Median  Δp", "25.0%   Δp", "10.0%   Δp", " 5.0%   Δp",
                                 " 1.0%   Δp", " 0.1%   Δp", "Minimum Δp"};
    for (int i = 0; i < 13; i++)
        printf("%s: %6.3f%%\n", pn[i], 100.0 * s->dp_pct[i]);
    printf("RMS Δp    : %6.3f ± %5.3f %%\n", 100.0 * s->rms_dp, 100.0 * s->rms_dp_unc);
    printf("Same top p: %6.3f ± %5.3f %%\n", 100.0 * s->same_top, 100.0 * s->same_top_unc);
}

int main(int argc, char **argv)
{
    cli_passive_omp(argv);
    cli_init(argc, argv);
    const double t_start = cli_now();
    opts o = parse(argc, argv);
    if (o.threads > 0)
        omp_set_num_threads(o.threads);
    const int nth = o.threads > 0 ? o.threads : omp_get_max_threads();

    char msg[RT_MSG_SIZE > INP_MSG_SIZE ? RT_MSG_SIZE : INP_MSG_SIZE];
    inp_source *src = NULL;
    inp_error se = inp_open(o.model, &src, msg);
    if (se != INP_OK) /* input messages start with the file's path already */
        cli_die(cli_exit_src(se), NULL, "%s", msg);
    /* the weights alone, before a checkpoint is read into memory */
    const uint64_t weights = rt_weights_bytes(src);
    char b1[32], b2[32], b3[32], b4[32], b5[32];
    if (o.max_memory && weights > o.max_memory)
        cli_die(CLI_BAD_INPUT, o.model, "the weights need %s, more than --max-memory %s", cli_bytes((double)weights, b1),
                cli_bytes((double)o.max_memory, b2));
    rt_model *model = NULL;
    rt_error re = rt_model_load(src, &model, msg);
    if (re != RT_OK) /* a input message passed on (reading a checkpoint shard) names its file */
        cli_die(exit_for(re), strncmp(msg, o.model, strlen(o.model)) == 0 ? NULL : o.model, "%s", msg);
    rt_model_set_threads(model, nth);
    const rt_hparams *hp = rt_model_hparams(model);
    const int n_vocab = hp->n_vocab;

    /* tokens: from the text, or from the KLD base file */
    int32_t *tokens = NULL;
    size_t n_tokens = 0;
    int n_ctx = o.n_ctx, n_chunk;
    FILE *base_in = NULL, *base_out = NULL;
    rt_logp_header bh = {0};
    int32_t bos = -1;
    int add_bos = 0;
    size_t text_len = 0;
    double t_tok = 0;
    {
        char tmsg[RT_MSG_SIZE];
        tok_model *tok = NULL;
        rt_error te = rt_error_from_tok(tok_from_gguf(inp_metadata(src), &tok, tmsg));
        if (te != RT_OK)
            cli_die(exit_for(te), o.model, "tokenizer: %s", tmsg);
        if (tok_n_tokens(tok) != n_vocab)
            cli_die(CLI_BAD_INPUT, o.model, "tokenizer has %d tokens but the model %d", tok_n_tokens(tok), n_vocab);
        bos = tok_bos(tok);
        add_bos = (tok_default_flags(tok) & TOK_ADD_BOS) && bos >= 0;
        if (!o.kld) {
            size_t len;
            char *text = read_text(o.text, &len);
            long long bad = utf8_invalid_at((const unsigned char *)text, len);
            if (bad >= 0) {
                free(text);
                tok_free(tok);
                cli_die(CLI_BAD_INPUT, o.text, "not UTF-8 text (invalid byte at offset %lld)", bad);
            }
            const double t0 = cli_now();
            te = rt_error_from_tok(tok_encode(tok, text, len, tok_default_flags(tok), &tokens, &n_tokens, tmsg));
            free(text);
            if (te != RT_OK) {
                tok_free(tok);
                cli_die(exit_for(te), o.text, "tokenizer: %s", tmsg);
            }
            t_tok = cli_now() - t0;
            text_len = len;
        }
        tok_free(tok);
    }

    if (o.kld) {
        base_in = fopen(o.kld_base, "rb");
        if (!base_in)
            cli_die(CLI_IO, o.kld_base, "cannot open: %s", strerror(errno));
        struct stat st;
        if (fstat(fileno(base_in), &st) != 0)
            cli_die(CLI_IO, o.kld_base, "cannot stat: %s", strerror(errno));
        re = rt_logp_read_header(base_in, (uint64_t)st.st_size, &bh, &tokens, msg);
        if (re != RT_OK)
            cli_die(exit_for(re), o.kld_base, "%s", msg);
        if ((int)bh.n_vocab != n_vocab)
            cli_die(CLI_BAD_INPUT, o.kld_base, "written for a vocabulary of %u tokens, the model has %d", bh.n_vocab,
                    n_vocab);
        if (o.n_ctx_given && o.n_ctx != (int)bh.n_ctx)
            cli_die(CLI_USAGE, o.kld_base, "written with -c %u, not -c %d", bh.n_ctx, o.n_ctx);
        if (bh.n_ctx > RT_MAX_TOKENS)
            cli_die(CLI_BAD_INPUT, o.kld_base, "context %u is too long", bh.n_ctx);
        n_ctx = (int)bh.n_ctx;
        n_tokens = (size_t)bh.n_chunk * bh.n_ctx;
        n_chunk = (int)bh.n_chunk;
        if (o.chunks > 0 && o.chunks < n_chunk)
            n_chunk = o.chunks;
    } else {
        if (n_tokens < 2 * (size_t)n_ctx)
            cli_die(CLI_BAD_INPUT, o.text,
                    "text too short: %zu tokens, perplexity with -c %d needs at least %d (two chunks' worth, as "
                    "llama-perplexity)",
                    n_tokens, n_ctx, 2 * n_ctx);
        n_chunk = (int)(n_tokens / (size_t)n_ctx);
        if (o.chunks > 0 && o.chunks < n_chunk)
            n_chunk = o.chunks;
        /* informational lines only once the input is known to be usable */
        fprintf(stderr, "%s: tokenized %zu bytes into %zu tokens in %.2f s\n", cli_prog(), text_len, n_tokens,
                t_tok);
    }
    if (hp->n_ctx_train > 0 && n_ctx > hp->n_ctx_train)
        cli_warn(o.model, "-c %d exceeds the model's training context (%d); positions beyond it are extrapolated",
                 n_ctx, hp->n_ctx_train);

    const int first = n_ctx / 2, n_scored = n_ctx - 1 - first;
    const size_t rec_size = rt_logp_record_size(n_vocab);
    if (!o.kld && o.kld_base) {
        if (cli_same_file(o.kld_base, o.model) || cli_same_file(o.kld_base, o.text))
            cli_die(CLI_USAGE, o.kld_base, "refusing to overwrite an input file");
        base_out = cli_create(o.kld_base);
        bh = (rt_logp_header){.n_vocab = (uint32_t)n_vocab, .n_ctx = (uint32_t)n_ctx, .n_chunk = (uint32_t)n_chunk,
                              .first = (uint32_t)first, .range = RT_LOGP_RANGE};
        if (rt_logp_write_header(base_out, &bh, tokens, msg) != RT_OK)
            cli_die(CLI_IO, o.kld_base, "%s", msg);
    }

    fprintf(stderr, "%s: %s: %d layers, n_embd %d, vocab %d; %zu tokens, %d chunks of %d, %d threads, %s kernels\n",
            cli_prog(), o.model, hp->n_layer, hp->n_embd, n_vocab, n_tokens, n_chunk, n_ctx, nth,
            rt_isa_name(rt_isa_detect()));

    /* chunks per forward pass, as llama-perplexity's n_batch / n_ctx sequences */
    int n_seq = o.batch / n_ctx;
    if (n_seq > RT_MAX_TOKENS / n_ctx)
        n_seq = RT_MAX_TOKENS / n_ctx;
    if (n_seq > n_chunk)
        n_seq = n_chunk;
    if (n_seq < 1)
        n_seq = 1;
    /* Workers: with several threads and several passes to make, each thread evaluates passes of
     * its own on its own clone of the model, so there is no synchronization inside a pass (on a
     * busy machine every barrier can cost a time slice). Results are taken in chunk order and
     * each chunk's logits do not depend on the threads, so the output does not either. */
    const int n_group = (n_chunk + n_seq - 1) / n_seq;
    const int nw = nth < n_group ? nth : n_group;
    const size_t logits_per_chunk = (size_t)(n_ctx - first) * n_vocab, per_w = (size_t)n_seq * logits_per_chunk;
    const size_t n_recs = base_out ? (size_t)nw * n_seq * n_scored : (size_t)n_scored;
    if (o.max_memory) { /* everything large, before it is allocated */
        const uint64_t scratch = rt_model_scratch_bytes(model, n_seq, n_ctx, nth) +
                                 (uint64_t)(nw - 1) * rt_model_scratch_bytes(model, n_seq, n_ctx, 1);
        const uint64_t buffers = (uint64_t)nw * per_w * sizeof(float) + (uint64_t)nw * n_seq * n_scored * sizeof(double) +
                                 (uint64_t)n_recs * rec_size + (uint64_t)n_tokens * sizeof(int32_t);
        const uint64_t need = weights + scratch + buffers; /* norms copied on load: a few KiB per layer */
        if (need > o.max_memory)
            cli_die(CLI_BAD_INPUT, o.model,
                    "needs %s (weights %s, scratch for %d pass(es) of %d x %d tokens %s, logits %s), more than "
                    "--max-memory %s; lower -b or -t",
                    cli_bytes((double)need, b1), cli_bytes((double)weights, b2), nw, n_seq, n_ctx,
                    cli_bytes((double)scratch, b3), cli_bytes((double)buffers, b4), cli_bytes((double)o.max_memory, b5));
    }
    rt_model **models = calloc((size_t)nw, sizeof *models);
    if (!models)
        cli_die(CLI_INTERNAL, NULL, "out of memory");
    models[0] = model;
    for (int w = 1; w < nw; w++)
        if ((re = rt_model_clone(model, &models[w], msg)) != RT_OK)
            cli_die(exit_for(re), o.model, "%s", msg);
    for (int w = 0; w < nw; w++)
        rt_model_set_threads(models[w], nw > 1 ? 1 : nth);
    float *logits = malloc((size_t)nw * per_w * sizeof(float));
    double *nll = malloc((size_t)nw * n_seq * n_scored * sizeof *nll);
    unsigned char *recs = malloc(n_recs * rec_size);
    rt_error *errs = calloc((size_t)nw, sizeof *errs);
    char(*msgs)[RT_MSG_SIZE] = calloc((size_t)nw, sizeof *msgs);
    json_t *running = json_array();
    rt_kld *kld = o.kld ? rt_kld_create() : NULL;
    if (!logits || !nll || !recs || !errs || !msgs || !running || (o.kld && !kld))
        cli_die(CLI_INTERNAL, NULL, "out of memory");
    rt_ppl_acc acc = {0};

    const double t_eval = cli_now();
    if (o.kld)
        printf("chunk             PPL               ln(PPL(Q)/PPL(base))          KL Divergence              Δp RMS            Same top p\n");
    for (int g0 = 0; g0 < n_group; g0 += nw) {
        const int nr = n_group - g0 < nw ? n_group - g0 : nw;
        if (nw > 1 && nr == 1) /* a last lone pass: all threads on it */
            rt_model_set_threads(models[0], nth);
#pragma omp parallel for schedule(static, 1) num_threads(nr) if (nr > 1)
        for (int w = 0; w < nr; w++) {
            const int c0 = (g0 + w) * n_seq, ns = n_chunk - c0 < n_seq ? n_chunk - c0 : n_seq;
            float *lg = logits + (size_t)w * per_w;
            errs[w] = rt_ppl_chunks_logits(models[w], tokens + (size_t)c0 * n_ctx, ns, n_ctx, add_bos ? bos : -1, lg,
                                           msgs[w]);
            for (int i = 0; errs[w] == RT_OK && !o.kld && i < ns; i++) {
                const int32_t *targets = tokens + (size_t)(c0 + i) * n_ctx + first + 1;
                const float *li = lg + (size_t)i * logits_per_chunk;
                const size_t k = (size_t)w * n_seq + i;
                rt_ppl_row_nll(li, n_vocab, targets, n_scored, nll + k * n_scored, nr > 1 ? 1 : nth);
                for (int r = 0; base_out && r < n_scored; r++)
                    rt_logp_encode(li + (size_t)r * n_vocab, n_vocab, targets[r],
                                   recs + (k * n_scored + (size_t)r) * rec_size);
            }
        }
        /* in chunk order */
        for (int w = 0; w < nr; w++) {
            const int c0 = (g0 + w) * n_seq, ns = n_chunk - c0 < n_seq ? n_chunk - c0 : n_seq;
            if (errs[w] != RT_OK)
                cli_die(exit_for(errs[w]), o.model, "chunks %d-%d: %s", c0 + 1, c0 + ns, msgs[w]);
            for (int i = 0; i < ns; i++) {
                const int c = c0 + i;
                const size_t k = (size_t)w * n_seq + i;
                const int32_t *targets = tokens + (size_t)c * n_ctx + first + 1;
                if (o.kld) {
                    if (fread(recs, rec_size, (size_t)n_scored, base_in) != (size_t)n_scored)
                        cli_die(CLI_BAD_INPUT, o.kld_base, "truncated at chunk %d", c + 1);
                    re = rt_kld_add(kld, logits + (size_t)w * per_w + (size_t)i * logits_per_chunk, n_vocab, targets,
                                    recs, n_scored, nth, msg);
                    if (re != RT_OK)
                        cli_die(exit_for(re), o.kld_base, "chunk %d: %s", c + 1, msg);
                    rt_kld_stats s;
                    if (rt_kld_stats_get(kld, &s, NULL) == RT_OK)
                        printf("%4d    %9.4f ± %9.4f    %10.5f ± %10.5f    %10.5f ± %10.5f    %6.3f ± %6.3f %%    %6.3f ± %6.3f %%\n",
                               c + 1, s.ppl, s.ppl_unc, s.ln_ratio, s.ln_ratio_unc, s.kld, s.kld_unc, 100 * s.rms_dp,
                               100 * s.rms_dp_unc, 100 * s.same_top, 100 * s.same_top_unc);
                    fflush(stdout);
                    continue;
                }
                rt_ppl_add(&acc, nll + k * n_scored, n_scored);
                if (base_out &&
                    fwrite(recs + k * n_scored * rec_size, rec_size, (size_t)n_scored, base_out) != (size_t)n_scored)
                    cli_die(CLI_IO, o.kld_base, "write failed: %s", cli_strerror(errno));
                const double ppl = rt_ppl_value(&acc);
                json_array_append_new(running, json_real(ppl));
                printf("[%d]%.4f,", c + 1, ppl);
                fflush(stdout);
            }
        }
    }
    const double t_done = cli_now();
    const double secs = t_done - t_eval;
    const double n_eval = (double)n_chunk * n_ctx;
    printf("\n");

    json_t *js = json_object();
    json_object_set_new(js, "model", json_string(o.model));
    if (o.text)
        json_object_set_new(js, "text", json_string(o.text));
    json_object_set_new(js, "n_ctx", json_integer(n_ctx));
    json_object_set_new(js, "n_chunk", json_integer(n_chunk));
    json_object_set_new(js, "n_tokens_text", json_integer((json_int_t)n_tokens));
    json_object_set_new(js, "threads", json_integer(nth));
    json_object_set_new(js, "isa", json_string(rt_isa_name(rt_isa_detect())));
    json_object_set_new(js, "omp_wait_policy", json_string(getenv("OMP_WAIT_POLICY") ? getenv("OMP_WAIT_POLICY") : ""));

    if (o.kld) {
        rt_kld_stats s;
        re = rt_kld_stats_get(kld, &s, msg);
        if (re != RT_OK)
            cli_die(CLI_BAD_INPUT, o.kld_base, "%s", msg);
        printf("\n");
        print_kld(&s);
        json_put_kld(js, &s);
    } else {
        const double ppl = rt_ppl_value(&acc), unc = rt_ppl_uncertainty(&acc);
        if (unc > 0)
            printf("Final estimate: PPL = %.4f +/- %.5f\n", ppl, unc);
        else
            fprintf(stderr, "%s: unexpected negative standard deviation of log(prob)\n", cli_prog());
        json_object_set_new(js, "ppl", json_real(ppl));
        json_object_set_new(js, "ppl_unc", json_real(unc));
        json_object_set_new(js, "scored_tokens", json_integer(acc.count));
        json_object_set_new(js, "running_ppl", running);
        running = NULL;
    }
    fprintf(stderr, "%s: evaluated %.0f tokens in %.2f s: %.1f tokens/s (%.2f s since start)\n", cli_prog(), n_eval,
            secs, n_eval / secs, t_done - t_start);
    json_object_set_new(js, "eval_seconds", json_real(secs));
    json_object_set_new(js, "tokens_per_second", json_real(n_eval / secs));
    json_object_set_new(js, "total_seconds", json_real(cli_now() - t_start));

    if (base_out)
        cli_commit(base_out, o.kld_base);
    if (base_in)
        fclose(base_in);
    if (o.json)
        cli_write_json(js, o.json, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
    json_decref(js);
    json_decref(running);
    rt_kld_free(kld);
    free(logits);
    free(nll);
    free(recs);
    free(errs);
    free(msgs);
    for (int w = 1; w < nw; w++)
        rt_model_free(models[w]);
    free(models);
    free(tokens);
    rt_model_free(model);
    inp_close(src);
    return 0;
}
