/* qforge-perplexity — perplexity and KL divergence of a GGUF model on a text, computed
 * exactly as llama.cpp's llama-perplexity does (see runtime/perplexity.h and docs/runtime.md). */
#include <errno.h>
#include <jansson.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "input/text.h"
#include "runtime/perplexity.h"
#include "runtime/runtime.h"
#include "tokenizer/tokenizer.h"
#include "tools/cli.h"
#include "tools/kld_lines.h"
#include "tools/progress.h"

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
            "  -f, --file FILE          text to evaluate (UTF-8, or gzip-compressed UTF-8)\n"
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
            "      --quiet              no progress bar (a terminal) or step line (otherwise) on stderr\n"
            "  -h, --help               this help\n"
            "      --version            the qforge version\n");
}

typedef struct {
    const char *model, *text, *kld_base, *json;
    int n_ctx, n_ctx_given, chunks, threads, batch, kld, quiet;
    uint64_t max_memory; /* 0: no limit */
} opts;

/* The value of option a (argv[*i + 1]); dies when it is missing. */
static const char *need(const char *a, const char *val, int *i)
{
    if (!val)
        cli_die(CLI_USAGE, NULL, "%s needs a value", a);
    ++*i;
    return val;
}

static opts parse(int argc, char **argv)
{
    opts o = {.n_ctx = 512, .chunks = -1, .threads = 0, .batch = 512, .max_memory = cli_phys_memory()};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            o.model = need(a, val, &i);
        } else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
            o.text = need(a, val, &i);
        } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) {
            o.n_ctx = (int)cli_parse_long(a, need(a, val, &i), 4, RT_MAX_TOKENS);
            o.n_ctx_given = 1;
        } else if (!strcmp(a, "--chunks")) {
            o.chunks = (int)cli_parse_long(a, need(a, val, &i), 1, 1 << 30);
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            o.threads = (int)cli_parse_long(a, need(a, val, &i), 1, 1024);
        } else if (!strcmp(a, "-b") || !strcmp(a, "--batch-size")) {
            o.batch = (int)cli_parse_long(a, need(a, val, &i), 1, 1 << 30);
        } else if (!strcmp(a, "--kl-divergence-base")) {
            o.kld_base = need(a, val, &i);
        } else if (!strcmp(a, "--kl-divergence")) {
            o.kld = 1;
        } else if (!strcmp(a, "--quiet")) {
            o.quiet = 1;
        } else if (!strcmp(a, "--max-memory")) {
            o.max_memory = cli_parse_size(a, need(a, val, &i));
        } else if (!strcmp(a, "--json")) {
            o.json = need(a, val, &i);
        } else {
            usage(stderr);
            cli_die(CLI_USAGE, NULL, "unknown option '%s'", a);
        }
    }
    if (!o.model)
        cli_die(CLI_USAGE, NULL, "no model given (-m MODEL.gguf); --help for usage");
    if (o.kld && !o.kld_base)
        cli_die(CLI_USAGE, NULL, "--kl-divergence needs --kl-divergence-base FILE");
    if (!o.kld && !o.text)
        cli_die(CLI_USAGE, NULL, "no text given (-f TEXT); --help for usage");
    return o;
}

static int exit_for(rt_error e) { return e == RT_ERR_NOMEM ? CLI_INTERNAL : e == RT_ERR_IO ? CLI_IO : CLI_BAD_INPUT; }

/* What the run needs beside the model: tokens, chunking, the KLD base files, the figures. */
typedef struct {
    const opts *o;
    int n_ctx, n_chunk, n_vocab, nth;
    int32_t *tokens;
    size_t n_tokens;
    int32_t bos;                   /* BOS when the tokenizer adds one, else -1 */
    FILE *base_in, *base_out;
    rt_logp_header bh;
    unsigned char *recs;           /* one chunk's base records (--kl-divergence) */
    rt_kld *kld;
    rt_ppl_acc acc;
    json_t *running;
    bool hold;                     /* a bar shares the terminal with stdout: the running PPLs at the end */
} run;

/* Tokens from the text (tokenized with BOS as llama-perplexity does) or the KLD base file. */
static void load_tokens(run *r, inp_source *src)
{
    const opts *o = r->o;
    char tmsg[RT_MSG_SIZE];
    tok_model *tok = NULL;
    rt_error te = rt_error_from_tok(tok_from_gguf(inp_metadata(src), &tok, tmsg));
    if (te != RT_OK)
        cli_die(exit_for(te), o->model, "tokenizer: %s", tmsg);
    if (tok_n_tokens(tok) != r->n_vocab)
        cli_die(CLI_BAD_INPUT, o->model, "tokenizer has %d tokens but the model %d", tok_n_tokens(tok), r->n_vocab);
    r->bos = (tok_default_flags(tok) & TOK_ADD_BOS) && tok_bos(tok) >= 0 ? tok_bos(tok) : -1;
    if (o->kld) {
        tok_free(tok);
        return;
    }
    /* plain or gzip'ed UTF-8 (input/text.h: the calibration loader) */
    struct stat st;
    if (stat(o->text, &st) == 0 && !S_ISREG(st.st_mode))
        cli_die(CLI_IO, o->text, "not a regular file");
    char msg[INP_MSG_SIZE], *text = NULL;
    size_t len;
    inp_error ie = inp_text_load(o->text, &text, &len, msg);
    if (ie != INP_OK)
        cli_die(cli_exit_src(ie), NULL, "%s", msg);
    const double t0 = cli_now();
    te = rt_error_from_tok(tok_encode(tok, text, len, tok_default_flags(tok), &r->tokens, &r->n_tokens, tmsg));
    free(text);
    tok_free(tok);
    if (te != RT_OK)
        cli_die(exit_for(te), o->text, "tokenizer: %s", tmsg);
    r->n_ctx = o->n_ctx;
    if (r->n_tokens < 2 * (size_t)r->n_ctx)
        cli_die(CLI_BAD_INPUT, o->text,
                "text too short: %zu tokens, perplexity with -c %d needs at least %d (two chunks' worth, as "
                "llama-perplexity)",
                r->n_tokens, r->n_ctx, 2 * r->n_ctx);
    r->n_chunk = (int)(r->n_tokens / (size_t)r->n_ctx);
    if (o->chunks > 0 && o->chunks < r->n_chunk)
        r->n_chunk = o->chunks;
    /* informational lines only once the input is known to be usable */
    fprintf(stderr, "%s: tokenized %zu bytes into %zu tokens in %.2f s\n", cli_prog(), len, r->n_tokens,
            cli_now() - t0);
}

/* --kl-divergence: the base file's header and tokens. */
static void open_base(run *r)
{
    const opts *o = r->o;
    char msg[RT_MSG_SIZE];
    r->base_in = fopen(o->kld_base, "rb");
    if (!r->base_in)
        cli_die(CLI_IO, o->kld_base, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fileno(r->base_in), &st) != 0)
        cli_die(CLI_IO, o->kld_base, "cannot stat: %s", strerror(errno));
    rt_error re = rt_logp_read_header(r->base_in, (uint64_t)st.st_size, &r->bh, &r->tokens, msg);
    if (re != RT_OK)
        cli_die(exit_for(re), o->kld_base, "%s", msg);
    if ((int)r->bh.n_vocab != r->n_vocab)
        cli_die(CLI_BAD_INPUT, o->kld_base, "written for a vocabulary of %u tokens, the model has %d", r->bh.n_vocab,
                r->n_vocab);
    if (o->n_ctx_given && o->n_ctx != (int)r->bh.n_ctx)
        cli_die(CLI_USAGE, o->kld_base, "written with -c %u, not -c %d", r->bh.n_ctx, o->n_ctx);
    if (r->bh.n_ctx > RT_MAX_TOKENS)
        cli_die(CLI_BAD_INPUT, o->kld_base, "context %u is too long", r->bh.n_ctx);
    r->n_ctx = (int)r->bh.n_ctx;
    r->n_tokens = (size_t)r->bh.n_chunk * r->bh.n_ctx;
    r->n_chunk = (int)r->bh.n_chunk;
    if (o->chunks > 0 && o->chunks < r->n_chunk)
        r->n_chunk = o->chunks;
}

/* --kl-divergence-base without --kl-divergence: the file the records go to. */
static void create_base(run *r)
{
    const opts *o = r->o;
    char msg[RT_MSG_SIZE];
    if (cli_same_file(o->kld_base, o->model) || cli_same_file(o->kld_base, o->text))
        cli_die(CLI_USAGE, o->kld_base, "refusing to overwrite an input file");
    r->base_out = cli_create(o->kld_base);
    const int first = r->n_ctx / 2;
    r->bh = (rt_logp_header){.n_vocab = (uint32_t)r->n_vocab, .n_ctx = (uint32_t)r->n_ctx,
                             .n_chunk = (uint32_t)r->n_chunk, .first = (uint32_t)first, .range = RT_LOGP_RANGE};
    if (rt_logp_write_header(r->base_out, &r->bh, r->tokens, msg) != RT_OK)
        cli_die(CLI_IO, o->kld_base, "%s", msg);
}

/* Refuse a run whose model, scratch buffers and logits need more than --max-memory. */
static void check_memory(const run *r, const rt_model *m, const rt_ppl_eval_opts *e, uint64_t weights)
{
    rt_ppl_plan p;
    rt_ppl_eval_plan(m, e, &p);
    /* + the tokens, and one chunk's base records unless the evaluation holds records */
    const uint64_t buffers = p.buffers + (uint64_t)r->n_tokens * sizeof(int32_t) +
                             (e->records ? 0 : (uint64_t)(r->n_ctx - 1 - r->n_ctx / 2) * rt_logp_record_size(r->n_vocab));
    const uint64_t need = weights + p.scratch + buffers; /* norms copied on load: a few KiB per layer */
    char b1[32], b2[32], b3[32], b4[32], b5[32];
    if (need > r->o->max_memory)
        cli_die(CLI_BAD_INPUT, r->o->model,
                "needs %s (weights %s, scratch for %d pass(es) of %d x %d tokens %s, logits %s), more than "
                "--max-memory %s; lower -b or -t",
                cli_bytes((double)need, b1), cli_bytes((double)weights, b2), p.n_workers, p.n_seq, r->n_ctx,
                cli_bytes((double)p.scratch, b3), cli_bytes((double)buffers, b4),
                cli_bytes((double)r->o->max_memory, b5));
}

/* One chunk's results, in chunk order: the running figures, and the base records. */
static int on_chunk(void *user, int c, const rt_ppl_chunk *ch)
{
    run *r = user;
    const opts *o = r->o;
    const size_t rec_size = rt_logp_record_size(r->n_vocab);
    if (o->kld) {
        char msg[RT_MSG_SIZE];
        if (fread(r->recs, rec_size, (size_t)ch->n_scored, r->base_in) != (size_t)ch->n_scored)
            cli_die(CLI_BAD_INPUT, o->kld_base, "truncated at chunk %d", c + 1);
        rt_error re = rt_kld_add(r->kld, ch->logits, r->n_vocab, ch->targets, r->recs, ch->n_scored, r->nth, msg);
        if (re != RT_OK)
            cli_die(exit_for(re), o->kld_base, "chunk %d: %s", c + 1, msg);
        rt_kld_stats s;
        prog_clear();
        if (rt_kld_stats_get(r->kld, &s, NULL) == RT_OK)
            printf("%4d    %9.4f ± %9.4f    %10.5f ± %10.5f    %10.5f ± %10.5f    %6.3f ± %6.3f %%    %6.3f ± %6.3f %%\n",
                   c + 1, s.ppl, s.ppl_unc, s.ln_ratio, s.ln_ratio_unc, s.kld, s.kld_unc, 100 * s.rms_dp,
                   100 * s.rms_dp_unc, 100 * s.same_top, 100 * s.same_top_unc);
        fflush(stdout);
        prog_update(c + 1);
        return 0;
    }
    rt_ppl_add(&r->acc, ch->nll, ch->n_scored);
    if (r->base_out && fwrite(ch->records, rec_size, (size_t)ch->n_scored, r->base_out) != (size_t)ch->n_scored)
        cli_die(CLI_IO, o->kld_base, "write failed: %s", cli_strerror(errno));
    const double ppl = rt_ppl_value(&r->acc);
    json_array_append_new(r->running, json_real(ppl));
    if (!r->hold)
        printf("[%d]%.4f,", c + 1, ppl);
    fflush(stdout);
    prog_update(c + 1);
    return 0;
}

/* The closing figures on stdout and into the JSON document. */
static void finish(run *r, json_t *js)
{
    char msg[RT_MSG_SIZE];
    if (r->o->kld) {
        rt_kld_stats s;
        rt_error re = rt_kld_stats_get(r->kld, &s, msg);
        if (re != RT_OK)
            cli_die(CLI_BAD_INPUT, r->o->kld_base, "%s", msg);
        printf("\n");
        kld_print(&s);
        json_object_set_new(js, "kld", rt_kld_stats_json(&s));
        return;
    }
    const double ppl = rt_ppl_value(&r->acc), unc = rt_ppl_uncertainty(&r->acc);
    if (unc > 0)
        printf("Final estimate: PPL = %.4f +/- %.5f\n", ppl, unc);
    else
        fprintf(stderr, "%s: unexpected negative standard deviation of log(prob)\n", cli_prog());
    json_object_set_new(js, "ppl", json_real(ppl));
    json_object_set_new(js, "ppl_unc", json_real(unc));
    json_object_set_new(js, "scored_tokens", json_integer(r->acc.count));
    json_object_set_new(js, "running_ppl", r->running);
    r->running = NULL;
}

int main(int argc, char **argv)
{
    cli_passive_omp(argv);
    cli_init(argc, argv);
    const double t_start = cli_now();
    opts o = parse(argc, argv);
    prog_init(o.quiet ? PROG_QUIET : PROG_AUTO);
    if (o.threads > 0)
        omp_set_num_threads(o.threads);
    run r = {.o = &o, .nth = o.threads > 0 ? o.threads : omp_get_max_threads()};

    char msg[RT_MSG_SIZE > INP_MSG_SIZE ? RT_MSG_SIZE : INP_MSG_SIZE];
    inp_source *src = NULL;
    inp_error se = inp_open(o.model, &src, msg);
    if (se != INP_OK) /* input messages start with the file's path already */
        cli_die(cli_exit_src(se), NULL, "%s", msg);
    /* the weights alone, before a checkpoint is read into memory */
    const uint64_t weights = rt_weights_bytes(src);
    char b1[32], b2[32];
    if (o.max_memory && weights > o.max_memory)
        cli_die(CLI_BAD_INPUT, o.model, "the weights need %s, more than --max-memory %s", cli_bytes((double)weights, b1),
                cli_bytes((double)o.max_memory, b2));
    rt_model *model = NULL;
    rt_error re = rt_model_load(src, &model, msg);
    if (re != RT_OK) /* a input message passed on (reading a checkpoint shard) names its file */
        cli_die(exit_for(re), strncmp(msg, o.model, strlen(o.model)) == 0 ? NULL : o.model, "%s", msg);
    rt_model_set_threads(model, r.nth);
    const rt_hparams *hp = rt_model_hparams(model);
    r.n_vocab = hp->n_vocab;
    load_tokens(&r, src);
    if (o.kld)
        open_base(&r);
    if (hp->n_ctx_train > 0 && r.n_ctx > hp->n_ctx_train)
        cli_warn(o.model, "-c %d exceeds the model's training context (%d); positions beyond it are extrapolated",
                 r.n_ctx, hp->n_ctx_train);
    if (!o.kld && o.kld_base)
        create_base(&r);
    fprintf(stderr, "%s: %s: %d layers, n_embd %d, vocab %d; %zu tokens, %d chunks of %d, %d threads, %s kernels\n",
            cli_prog(), o.model, hp->n_layer, hp->n_embd, r.n_vocab, r.n_tokens, r.n_chunk, r.n_ctx, r.nth,
            rt_isa_name(rt_isa_detect()));

    const rt_ppl_eval_opts e = {.n_ctx = r.n_ctx, .n_chunk = r.n_chunk, .n_batch = o.batch, .nthreads = r.nth,
                                .bos = r.bos, .nll = !o.kld, .records = r.base_out != NULL,
                                .chunk = on_chunk, .user = &r};
    if (o.max_memory) /* everything large, before it is allocated */
        check_memory(&r, model, &e, weights);
    r.running = json_array();
    r.kld = o.kld ? rt_kld_create() : NULL;
    r.recs = o.kld ? malloc((size_t)(r.n_ctx - 1 - r.n_ctx / 2) * rt_logp_record_size(r.n_vocab)) : NULL;
    if (!r.running || (o.kld && (!r.kld || !r.recs)))
        cli_die(CLI_INTERNAL, NULL, "out of memory");
    const double t_eval = cli_now();
    if (o.kld)
        printf("chunk             PPL               ln(PPL(Q)/PPL(base))          KL Divergence              Δp RMS            Same top p\n");
    r.hold = !o.kld && prog_is_bar() && isatty(STDOUT_FILENO);
    prog_begin(o.kld ? "kl-divergence" : "perplexity", r.n_chunk, "chunks");
    if ((re = rt_ppl_eval(model, r.tokens, &e, msg)) != RT_OK)
        cli_die(exit_for(re), o.model, "%s", msg);
    prog_end();
    for (size_t c = 0; r.hold && c < json_array_size(r.running); c++)
        printf("[%zu]%.4f,", c + 1, json_real_value(json_array_get(r.running, c)));
    const double t_done = cli_now(), secs = t_done - t_eval, n_eval = (double)r.n_chunk * r.n_ctx;
    printf("\n");

    json_t *js = json_object();
    json_object_set_new(js, "model", json_string(o.model));
    if (o.text)
        json_object_set_new(js, "text", json_string(o.text));
    json_object_set_new(js, "n_ctx", json_integer(r.n_ctx));
    json_object_set_new(js, "n_chunk", json_integer(r.n_chunk));
    json_object_set_new(js, "n_tokens_text", json_integer((json_int_t)r.n_tokens));
    json_object_set_new(js, "threads", json_integer(r.nth));
    json_object_set_new(js, "isa", json_string(rt_isa_name(rt_isa_detect())));
    json_object_set_new(js, "omp_wait_policy", json_string(getenv("OMP_WAIT_POLICY") ? getenv("OMP_WAIT_POLICY") : ""));
    finish(&r, js);
    fprintf(stderr, "%s: evaluated %.0f tokens in %.2f s: %.1f tokens/s (%.2f s since start)\n", cli_prog(), n_eval,
            secs, n_eval / secs, t_done - t_start);
    json_object_set_new(js, "eval_seconds", json_real(secs));
    json_object_set_new(js, "tokens_per_second", json_real(n_eval / secs));
    json_object_set_new(js, "total_seconds", json_real(cli_now() - t_start));

    if (r.base_out)
        cli_commit(r.base_out, o.kld_base);
    if (r.base_in)
        fclose(r.base_in);
    if (o.json)
        cli_write_json(js, o.json, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
    json_decref(js);
    json_decref(r.running);
    rt_kld_free(r.kld);
    free(r.recs);
    free(r.tokens);
    rt_model_free(model);
    inp_close(src);
    return 0;
}
