/* qforge-synth: write a random-weight Llama checkpoint in Hugging Face layout, for tests and
 * benchmarks: config.json, tokenizer.model (a synthetic SentencePiece BPE model with byte
 * fallback), tokenizer_config.json, and model.safetensors or S shards + index.
 *
 * Weights are approximately N(0, 0.02) (a sum of four uniforms), norms are 1.0. Every tensor's
 * values depend only on --seed and the tensor's name, so the same model comes out whatever
 * the sharding and dtype. Output is streamed a row at a time: memory stays small whatever the
 * model size. Shards follow Hugging Face's conventions: tensors assigned in state_dict order,
 * each shard's header and data sorted by name, header padded with spaces to 8 bytes. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "libgguf/gguf.h"
#include "libquant/lq.h"
#include "tools/cli.h"

typedef struct {
    char name[96];
    uint64_t rows, cols; /* cols 0: 1-D [rows] */
    bool norm;
    int shard;
    uint64_t begin;      /* offset in its shard's data */
} tdesc;

static struct {
    long dim, layers, heads, kv_heads, ffn, vocab, shards, ctx;
    unsigned long long seed;
    bool tied;
    int dtype; /* GGUF_F32 / GGUF_F16 / GGUF_BF16 */
    const char *out;
} o = {.kv_heads = -1, .shards = 1, .ctx = 2048, .seed = 1, .dtype = GGUF_BF16};

static void usage(FILE *f)
{
    fprintf(f, "usage: qforge-synth --dim D --layers L --heads H [--kv-heads K] --ffn F --vocab V\n"
               "                    [--dtype bf16|f16|f32] [--shards S] [--tied] [--ctx N] [--seed N] -o DIR\n"
               "\n"
               "Writes a random-weight LlamaForCausalLM checkpoint into DIR (created if needed):\n"
               "config.json, tokenizer.model, tokenizer_config.json and model.safetensors, or S shards\n"
               "model-0000i-of-0000S.safetensors with model.safetensors.index.json.\n"
               "Defaults: --kv-heads H, --dtype bf16, --shards 1, --ctx 2048, --seed 1. V >= 259.\n"
               "-h, --help  this text; --version  the qforge version\n");
}

/* ---- output helpers ---- */

static char *path_in(const char *name)
{
    size_t n = strlen(o.out) + strlen(name) + 2;
    char *p = malloc(n);
    if (!p)
        cli_die(CLI_INTERNAL, NULL, "out of memory");
    snprintf(p, n, "%s/%s", o.out, name);
    return p;
}

static FILE *create(const char *path)
{
    return cli_create(path);
}

static void put(FILE *f, const void *p, size_t n, const char *path)
{
    if (n && fwrite(p, 1, n, f) != n)
        cli_die(CLI_IO, path, "write error: %s", cli_strerror(errno));
}

static void finish(FILE *f, const char *path) { cli_commit(f, path); }

static void write_json(const char *name, json_t *j)
{
    char *p = path_in(name);
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    if (!s)
        cli_die(CLI_INTERNAL, NULL, "out of memory");
    FILE *f = create(p);
    put(f, s, strlen(s), p);
    put(f, "\n", 1, p);
    finish(f, p);
    free(s);
    free(p);
    json_decref(j);
}

/* ---- random numbers: splitmix64 seeded by (seed, tensor name) ---- */

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t name_seed(const char *name)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return h ^ (o.seed * 0x9E3779B97F4A7C15ull);
}

/* Sum of four 16-bit uniforms, scaled to variance 1, times 0.02. */
static float gauss002(uint64_t *st)
{
    uint64_t r = splitmix(st);
    double s = (double)(r & 0xFFFF) + (double)((r >> 16) & 0xFFFF) + (double)((r >> 32) & 0xFFFF) +
               (double)(r >> 48);
    double z = (s / 65536.0 - 2.0) * 1.7320508075688772; /* var(U) = 1/12 */
    return (float)(0.02 * z);
}

/* ---- tokenizer.model (protobuf) ---- */

typedef struct {
    unsigned char *p;
    size_t n, cap;
} buf;

static void bput(buf *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        size_t c = b->cap ? b->cap * 2 : 4096;
        while (c < b->n + n)
            c *= 2;
        unsigned char *q = realloc(b->p, c);
        if (!q)
            cli_die(CLI_INTERNAL, NULL, "out of memory");
        b->p = q;
        b->cap = c;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void pb_varint(buf *b, uint64_t v)
{
    unsigned char t[10];
    size_t n = 0;
    do {
        t[n++] = (unsigned char)((v & 0x7F) | (v >= 0x80 ? 0x80 : 0));
        v >>= 7;
    } while (v);
    bput(b, t, n);
}

static void pb_key(buf *b, unsigned field, unsigned wire) { pb_varint(b, ((uint64_t)field << 3) | wire); }

static void pb_bytes(buf *b, unsigned field, const void *d, size_t n)
{
    pb_key(b, field, 2);
    pb_varint(b, n);
    bput(b, d, n);
}

static void pb_int(buf *b, unsigned field, int64_t v)
{
    pb_key(b, field, 0);
    pb_varint(b, (uint64_t)v); /* negative int32: 10-byte two's complement, as protobuf does */
}

static void pb_float(buf *b, unsigned field, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    unsigned char t[4] = {(unsigned char)u, (unsigned char)(u >> 8), (unsigned char)(u >> 16), (unsigned char)(u >> 24)};
    pb_key(b, field, 5);
    bput(b, t, 4);
}

static void piece(buf *b, const char *text, float score, int type)
{
    buf m = {0};
    pb_bytes(&m, 1, text, strlen(text));
    pb_float(&m, 2, score);
    if (type != 1) /* NORMAL is the default */
        pb_int(&m, 3, type);
    pb_bytes(b, 1, m.p, m.n);
    free(m.p);
}

/* The i-th normal piece: "▁", the 94 printable ASCII characters, then lowercase words of
 * length 2, 3, ... each as "▁word" and "word". All distinct. */
static void normal_piece(long i, char *out)
{
    static const char sp[] = "\xe2\x96\x81";
    if (i == 0) {
        strcpy(out, sp);
        return;
    }
    if (i <= 94) {
        out[0] = (char)(32 + i);
        out[1] = 0;
        return;
    }
    long j = i - 95;
    int len = 2;
    long count = 2 * 26 * 26;
    while (j >= count) {
        j -= count;
        len++;
        count *= 26;
    }
    bool prefix = (j % 2) == 0;
    long w = j / 2;
    char word[16];
    for (int k = len - 1; k >= 0; k--) {
        word[k] = (char)('a' + w % 26);
        w /= 26;
    }
    word[len] = 0;
    sprintf(out, "%s%s", prefix ? sp : "", word);
}

static void write_tokenizer(void)
{
    buf b = {0};
    piece(&b, "<unk>", 0.0f, 2);
    piece(&b, "<s>", 0.0f, 3);
    piece(&b, "</s>", 0.0f, 3);
    for (int c = 0; c < 256; c++) {
        char t[8];
        snprintf(t, sizeof t, "<0x%02X>", c);
        piece(&b, t, 0.0f, 6);
    }
    for (long i = 0; i < o.vocab - 259; i++) {
        char t[32];
        normal_piece(i, t);
        piece(&b, t, -(float)i, 1);
    }
    buf ts = {0};
    pb_int(&ts, 3, 2);        /* model_type BPE */
    pb_int(&ts, 4, o.vocab);  /* vocab_size */
    pb_int(&ts, 35, 1);       /* byte_fallback */
    pb_int(&ts, 40, 0);       /* unk_id */
    pb_int(&ts, 41, 1);       /* bos_id */
    pb_int(&ts, 42, 2);       /* eos_id */
    pb_int(&ts, 43, -1);      /* pad_id */
    pb_bytes(&b, 2, ts.p, ts.n);
    buf ns = {0};
    pb_bytes(&ns, 1, "identity", 8);
    pb_int(&ns, 3, 1);        /* add_dummy_prefix */
    pb_int(&ns, 4, 0);        /* remove_extra_whitespaces */
    pb_int(&ns, 5, 1);        /* escape_whitespaces */
    pb_bytes(&b, 3, ns.p, ns.n);
    char *p = path_in("tokenizer.model");
    FILE *f = create(p);
    put(f, b.p, b.n, p);
    finish(f, p);
    free(p);
    free(b.p);
    free(ts.p);
    free(ns.p);
}

/* ---- tensors ---- */

static size_t esize(void) { return o.dtype == GGUF_F32 ? 4 : 2; }
static uint64_t tbytes(const tdesc *t) { return t->rows * (t->cols ? t->cols : 1) * esize(); }

static int cmp_name(const void *a, const void *b)
{
    return strcmp((*(tdesc *const *)a)->name, (*(tdesc *const *)b)->name);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

static void write_shard(const char *fname, tdesc **ts, size_t n)
{
    qsort(ts, n, sizeof *ts, cmp_name);
    json_t *h = json_object();
    json_t *meta = json_object();
    json_object_set_new(meta, "format", json_string("pt"));
    json_object_set_new(h, "__metadata__", meta);
    uint64_t off = 0;
    const char *dt = o.dtype == GGUF_F32 ? "F32" : o.dtype == GGUF_F16 ? "F16" : "BF16";
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_object(), *sh = json_array(), *of = json_array();
        json_array_append_new(sh, json_integer((json_int_t)ts[i]->rows));
        if (ts[i]->cols)
            json_array_append_new(sh, json_integer((json_int_t)ts[i]->cols));
        ts[i]->begin = off;
        json_array_append_new(of, json_integer((json_int_t)off));
        off += tbytes(ts[i]);
        json_array_append_new(of, json_integer((json_int_t)off));
        json_object_set_new(e, "dtype", json_string(dt));
        json_object_set_new(e, "shape", sh);
        json_object_set_new(e, "data_offsets", of);
        json_object_set_new(h, ts[i]->name, e);
    }
    char *hs = json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(h);
    if (!hs)
        cli_die(CLI_INTERNAL, NULL, "out of memory");
    size_t hl = strlen(hs), pad = (8 - hl % 8) % 8;
    uint64_t N = hl + pad;
    unsigned char le[8];
    for (int k = 0; k < 8; k++)
        le[k] = (unsigned char)(N >> (8 * k));
    char *p = path_in(fname);
    FILE *f = create(p);
    put(f, le, 8, p);
    put(f, hs, hl, p);
    put(f, "        ", pad, p);
    free(hs);
    uint64_t maxc = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t c = ts[i]->cols ? ts[i]->cols : ts[i]->rows;
        if (c > maxc)
            maxc = c;
    }
    float *row = malloc(maxc * sizeof *row);
    void *cvt = malloc(maxc * 4);
    if (!row || !cvt)
        cli_die(CLI_INTERNAL, NULL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const tdesc *t = ts[i];
        uint64_t st = name_seed(t->name);
        uint64_t rows = t->cols ? t->rows : 1, cols = t->cols ? t->cols : t->rows;
        for (uint64_t r = 0; r < rows; r++) {
            for (uint64_t c = 0; c < cols; c++)
                row[c] = t->norm ? 1.0f : gauss002(&st);
            if (o.dtype == GGUF_F32) {
                put(f, row, cols * 4, p); /* little-endian host assumed, as everywhere in qforge */
            } else {
                if (o.dtype == GGUF_F16)
                    lq_f32_to_f16_row(row, cvt, cols);
                else
                    lq_f32_to_bf16_row(row, cvt, cols);
                put(f, cvt, cols * 2, p);
            }
        }
    }
    free(row);
    free(cvt);
    finish(f, p);
    free(p);
}

static long opt_long(int argc, char **argv, int *i, long lo, long hi)
{
    if (*i + 1 >= argc)
        cli_die(CLI_USAGE, NULL, "%s needs a value", argv[*i]);
    (*i)++;
    return cli_parse_long(argv[*i - 1], argv[*i], lo, hi);
}

int main(int argc, char **argv)
{
    cli_init(argc, argv);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return CLI_OK;
        } else if (!strcmp(a, "--dim")) o.dim = opt_long(argc, argv, &i, 2, 1 << 16);
        else if (!strcmp(a, "--layers")) o.layers = opt_long(argc, argv, &i, 1, 1024);
        else if (!strcmp(a, "--heads")) o.heads = opt_long(argc, argv, &i, 1, 4096);
        else if (!strcmp(a, "--kv-heads")) o.kv_heads = opt_long(argc, argv, &i, 1, 4096);
        else if (!strcmp(a, "--ffn")) o.ffn = opt_long(argc, argv, &i, 1, 1 << 18);
        else if (!strcmp(a, "--vocab")) o.vocab = opt_long(argc, argv, &i, 259, 1 << 20);
        else if (!strcmp(a, "--shards")) o.shards = opt_long(argc, argv, &i, 1, 99999);
        else if (!strcmp(a, "--ctx")) o.ctx = opt_long(argc, argv, &i, 1, 1 << 24);
        else if (!strcmp(a, "--seed")) o.seed = (unsigned long long)opt_long(argc, argv, &i, 0, 0x7fffffffL);
        else if (!strcmp(a, "--tied")) o.tied = true;
        else if (!strcmp(a, "--dtype")) {
            if (++i >= argc)
                cli_die(CLI_USAGE, NULL, "--dtype needs bf16, f16 or f32");
            o.dtype = !strcmp(argv[i], "bf16") ? GGUF_BF16 : !strcmp(argv[i], "f16") ? GGUF_F16
                                                          : !strcmp(argv[i], "f32") ? GGUF_F32 : -1;
            if (o.dtype < 0)
                cli_die(CLI_USAGE, NULL, "--dtype must be bf16, f16 or f32, not '%s'", argv[i]);
        } else if (!strcmp(a, "-o")) {
            if (++i >= argc)
                cli_die(CLI_USAGE, NULL, "-o needs a directory");
            o.out = argv[i];
        } else {
            cli_die(CLI_USAGE, NULL, "unknown argument '%s' (see --help)", a);
        }
    }
    if (!o.dim || !o.layers || !o.heads || !o.ffn || !o.vocab || !o.out) {
        usage(stderr);
        return CLI_USAGE;
    }
    if (o.kv_heads < 0)
        o.kv_heads = o.heads;
    if (o.dim % o.heads)
        cli_die(CLI_USAGE, NULL, "--dim %ld is not a multiple of --heads %ld", o.dim, o.heads);
    if (o.heads % o.kv_heads)
        cli_die(CLI_USAGE, NULL, "--heads %ld is not a multiple of --kv-heads %ld", o.heads, o.kv_heads);
    if ((o.dim / o.heads) % 2)
        cli_die(CLI_USAGE, NULL, "head dimension %ld is odd", o.dim / o.heads);
    if (mkdir(o.out, 0777) != 0 && errno != EEXIST)
        cli_die(CLI_IO, o.out, "cannot create directory: %s", strerror(errno));

    /* tensors in state_dict order */
    long hd = o.dim / o.heads;
    size_t nt = (size_t)o.layers * 9 + 3;
    tdesc *t = calloc(nt, sizeof *t);
    if (!t)
        cli_die(CLI_INTERNAL, NULL, "out of memory");
    size_t n = 0;
#define ADD(r, c, isnorm, ...)                                                                                         \
    do {                                                                                                               \
        snprintf(t[n].name, sizeof t[n].name, __VA_ARGS__);                                                           \
        t[n].rows = (uint64_t)(r), t[n].cols = (uint64_t)(c), t[n].norm = (isnorm);                                    \
        n++;                                                                                                           \
    } while (0)
    ADD(o.vocab, o.dim, false, "model.embed_tokens.weight");
    for (long l = 0; l < o.layers; l++) {
        ADD(o.heads * hd, o.dim, false, "model.layers.%ld.self_attn.q_proj.weight", l);
        ADD(o.kv_heads * hd, o.dim, false, "model.layers.%ld.self_attn.k_proj.weight", l);
        ADD(o.kv_heads * hd, o.dim, false, "model.layers.%ld.self_attn.v_proj.weight", l);
        ADD(o.dim, o.heads * hd, false, "model.layers.%ld.self_attn.o_proj.weight", l);
        ADD(o.ffn, o.dim, false, "model.layers.%ld.mlp.gate_proj.weight", l);
        ADD(o.ffn, o.dim, false, "model.layers.%ld.mlp.up_proj.weight", l);
        ADD(o.dim, o.ffn, false, "model.layers.%ld.mlp.down_proj.weight", l);
        ADD(o.dim, 0, true, "model.layers.%ld.input_layernorm.weight", l);
        ADD(o.dim, 0, true, "model.layers.%ld.post_attention_layernorm.weight", l);
    }
    ADD(o.dim, 0, true, "model.norm.weight");
    if (!o.tied)
        ADD(o.vocab, o.dim, false, "lm_head.weight");
#undef ADD
    if ((size_t)o.shards > n)
        cli_die(CLI_USAGE, NULL, "--shards %ld is more than the %zu tensors", o.shards, n);

    /* contiguous, non-empty, byte-balanced groups */
    uint64_t total = 0, cum = 0;
    for (size_t i = 0; i < n; i++)
        total += tbytes(&t[i]);
    size_t idx = 0;
    for (long k = 0; k < o.shards; k++) {
        size_t left_after = (size_t)(o.shards - k - 1);
        if (left_after == 0) {
            for (; idx < n; idx++)
                t[idx].shard = (int)k, cum += tbytes(&t[idx]);
            break;
        }
        double target = (double)total * (double)(k + 1) / (double)o.shards;
        t[idx].shard = (int)k, cum += tbytes(&t[idx]), idx++;
        while (idx < n - left_after && (double)cum + (double)tbytes(&t[idx]) / 2 <= target)
            t[idx].shard = (int)k, cum += tbytes(&t[idx]), idx++;
    }

    /* shards */
    tdesc **ts = malloc(n * sizeof *ts);
    json_t *wm = json_object();
    if (!ts || !wm)
        cli_die(CLI_INTERNAL, NULL, "out of memory");
    for (long k = 0; k < o.shards; k++) {
        char fname[64];
        if (o.shards == 1)
            snprintf(fname, sizeof fname, "model.safetensors");
        else
            snprintf(fname, sizeof fname, "model-%05ld-of-%05ld.safetensors", k + 1, o.shards);
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (t[i].shard == k) {
                ts[m++] = &t[i];
                json_object_set_new(wm, t[i].name, json_string(fname));
            }
        write_shard(fname, ts, m);
    }
    free(ts);
    if (o.shards > 1) {
        /* weight_map sorted by name, as transformers writes it */
        const char **names = malloc(n * sizeof *names);
        if (!names)
            cli_die(CLI_INTERNAL, NULL, "out of memory");
        size_t k = 0;
        const char *key;
        json_t *v;
        json_object_foreach(wm, key, v) names[k++] = key;
        qsort(names, k, sizeof *names, cmp_str);
        json_t *sorted = json_object();
        for (size_t a = 0; a < k; a++)
            json_object_set(sorted, names[a], json_object_get(wm, names[a]));
        free(names);
        json_t *idxj = json_object(), *meta = json_object();
        json_object_set_new(meta, "total_size", json_integer((json_int_t)total));
        json_object_set_new(idxj, "metadata", meta);
        json_object_set_new(idxj, "weight_map", sorted);
        write_json("model.safetensors.index.json", idxj);
    }
    json_decref(wm);
    if (o.shards == 1) { /* a stale index from an earlier sharded run would take precedence */
        char *ip = path_in("model.safetensors.index.json");
        if (unlink(ip) != 0 && errno != ENOENT)
            cli_die(CLI_IO, ip, "cannot remove: %s", strerror(errno));
        free(ip);
    }

    json_t *c = json_object(), *arch = json_array();
    json_array_append_new(arch, json_string("LlamaForCausalLM"));
    json_object_set_new(c, "architectures", arch);
    json_object_set_new(c, "model_type", json_string("llama"));
    json_object_set_new(c, "hidden_size", json_integer(o.dim));
    json_object_set_new(c, "intermediate_size", json_integer(o.ffn));
    json_object_set_new(c, "num_hidden_layers", json_integer(o.layers));
    json_object_set_new(c, "num_attention_heads", json_integer(o.heads));
    json_object_set_new(c, "num_key_value_heads", json_integer(o.kv_heads));
    json_object_set_new(c, "max_position_embeddings", json_integer(o.ctx));
    json_object_set_new(c, "rms_norm_eps", json_real(1e-5));
    json_object_set_new(c, "rope_theta", json_real(10000.0));
    json_object_set_new(c, "vocab_size", json_integer(o.vocab));
    json_object_set_new(c, "hidden_act", json_string("silu"));
    json_object_set_new(c, "tie_word_embeddings", json_boolean(o.tied));
    json_object_set_new(c, "bos_token_id", json_integer(1));
    json_object_set_new(c, "eos_token_id", json_integer(2));
    json_object_set_new(c, "torch_dtype", json_string(o.dtype == GGUF_F32 ? "float32" : o.dtype == GGUF_F16 ? "float16"
                                                                                                          : "bfloat16"));
    json_object_set_new(c, "attention_bias", json_false());
    json_object_set_new(c, "mlp_bias", json_false());
    json_object_set_new(c, "initializer_range", json_real(0.02));
    write_json("config.json", c);

    json_t *tc = json_object();
    json_object_set_new(tc, "tokenizer_class", json_string("LlamaTokenizer"));
    json_object_set_new(tc, "add_bos_token", json_true());
    json_object_set_new(tc, "add_eos_token", json_false());
    json_object_set_new(tc, "bos_token", json_string("<s>"));
    json_object_set_new(tc, "eos_token", json_string("</s>"));
    json_object_set_new(tc, "unk_token", json_string("<unk>"));
    json_object_set_new(tc, "model_max_length", json_integer(o.ctx));
    json_object_set_new(tc, "legacy", json_true());
    write_json("tokenizer_config.json", tc);

    write_tokenizer();
    free(t);
    uint64_t params = total / esize();
    printf("wrote %s: %llu parameters, %ld shard%s, %llu bytes of weights\n", o.out, (unsigned long long)params,
           o.shards, o.shards > 1 ? "s" : "", (unsigned long long)total);
    return CLI_OK;
}
