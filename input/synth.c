/* Random-weight Hugging Face checkpoints of any registered architecture (see input/synth.h). */
#include "input/synth.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arch/arch.h"
#include "input/inp_internal.h"
#include "libquant/lq.h"

#define MAX_TENSOR_NAME 96

typedef struct {
    char name[MAX_TENSOR_NAME];
    uint64_t rows, cols; /* cols 0: 1-D [rows] */
    bool norm;
    int64_t shard;
    uint64_t begin;      /* offset in its shard's data */
} tdesc;

/* The state of one write: options, where, and the first error. */
typedef struct {
    const inp_synth_opts *o;
    const char *dir;
    char *msg;
    inp_error e;
} wctx;

inp_synth_opts inp_synth_defaults(void)
{
    inp_synth_opts o;
    memset(&o, 0, sizeof o);
    o.hf_class = "LlamaForCausalLM";
    o.ctx = 2048;
    o.shards = 1;
    o.dtype = GGUF_BF16;
    o.seed = 1;
    o.rope_theta = 10000.0;
    o.rms_eps = 1e-5;
    return o;
}

/* ---------------------------------------------------------------- files */

static char *path_in(wctx *w, const char *name)
{
    size_t n = strlen(w->dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", w->dir, name);
    else if (w->e == INP_OK)
        w->e = inp_fail(w->msg, INP_ERR_NOMEM, "out of memory");
    return p;
}

static void put(wctx *w, FILE *f, const void *p, size_t n, const char *path)
{
    if (w->e == INP_OK && n && fwrite(p, 1, n, f) != n)
        w->e = inp_fail(w->msg, INP_ERR_IO, "%s: write error: %s", path, strerror(errno));
}

/* Opens a temp file beside path for writing (temp_hook told), or sets the error. */
static FILE *open_temp(wctx *w, const char *path, char **temp)
{
    *temp = NULL;
    if (w->e != INP_OK)
        return NULL;
    const char *slash = strrchr(path, '/');
    const size_t dlen = slash ? (size_t)(slash - path + 1) : 0;
    const char *base = path + dlen;
    size_t n = strlen(path) + 32;
    char *t = malloc(n);
    if (!t) {
        w->e = inp_fail(w->msg, INP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    snprintf(t, n, "%.*s.%s.qforge-tmp-XXXXXX", (int)dlen, path, base);
    int fd = mkstemp(t);
    FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!f) {
        w->e = inp_fail(w->msg, INP_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(t);
        }
        free(t);
        return NULL;
    }
    if (w->o->temp_hook)
        w->o->temp_hook(w->o->temp_user, t);
    *temp = t;
    return f;
}

/* Flushes, fsyncs and closes f, then renames temp onto path; on any earlier or present error
 * removes temp instead. */
static void close_temp(wctx *w, FILE *f, char *temp, const char *path)
{
    if (!f)
        return;
    bool ok = w->e == INP_OK && fflush(f) == 0 && !ferror(f) && fsync(fileno(f)) == 0;
    int err = errno;
    if (fclose(f) != 0 && ok) {
        ok = false;
        err = errno;
    }
    if (ok && rename(temp, path) != 0) {
        ok = false;
        err = errno;
    }
    if (!ok) {
        unlink(temp);
        if (w->e == INP_OK)
            w->e = inp_fail(w->msg, INP_ERR_IO, "%s: write error: %s", path, strerror(err));
    }
    if (w->o->temp_hook)
        w->o->temp_hook(w->o->temp_user, NULL);
    free(temp);
}

/* Writes data[n] to DIR/name. */
static void write_file(wctx *w, const char *name, const void *data, size_t n)
{
    char *p = path_in(w, name), *temp;
    if (!p)
        return;
    FILE *f = open_temp(w, p, &temp);
    if (f)
        put(w, f, data, n, p);
    close_temp(w, f, temp, p);
    free(p);
}

static void write_json(wctx *w, const char *name, json_t *j)
{
    char *s = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17)) : NULL;
    if (!s) {
        if (w->e == INP_OK)
            w->e = inp_fail(w->msg, INP_ERR_NOMEM, "out of memory");
    } else {
        size_t n = strlen(s);
        s[n] = '\n'; /* json_dumps leaves room for the NUL: replace it, write n + 1 bytes */
        write_file(w, name, s, n + 1);
    }
    free(s);
    json_decref(j);
}

/* ---------------------------------------------------------------- random numbers */

/* splitmix64 seeded by (seed, tensor name) */
static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t name_seed(uint64_t seed, const char *name)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return h ^ (seed * 0x9E3779B97F4A7C15ull);
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

/* ---------------------------------------------------------------- tokenizer.model (protobuf) */

typedef struct {
    unsigned char *p;
    size_t n, cap;
    bool oom;
} buf;

static void bput(buf *b, const void *d, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n > b->cap) {
        size_t c = b->cap ? b->cap * 2 : 4096;
        while (c < b->n + n)
            c *= 2;
        unsigned char *q = realloc(b->p, c);
        if (!q) {
            b->oom = true;
            return;
        }
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
    b->oom |= m.oom;
    pb_bytes(b, 1, m.p, m.n);
    free(m.p);
}

/* The i-th normal piece: "▁", the 94 printable ASCII characters, then lowercase words of
 * length 2, 3, ... each as "▁word" and "word". All distinct. */
static void normal_piece(int64_t i, char *out)
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
    int64_t j = i - 95, count = 2 * 26 * 26;
    int len = 2;
    while (j >= count) {
        j -= count;
        len++;
        count *= 26;
    }
    bool prefix = (j % 2) == 0;
    int64_t wd = j / 2;
    char word[16];
    for (int k = len - 1; k >= 0; k--) {
        word[k] = (char)('a' + wd % 26);
        wd /= 26;
    }
    word[len] = 0;
    sprintf(out, "%s%s", prefix ? sp : "", word);
}

static void write_tokenizer(wctx *w)
{
    buf b = {0}, ts = {0}, ns = {0};
    piece(&b, "<unk>", 0.0f, 2);
    piece(&b, "<s>", 0.0f, 3);
    piece(&b, "</s>", 0.0f, 3);
    for (int c = 0; c < 256; c++) {
        char t[8];
        snprintf(t, sizeof t, "<0x%02X>", c);
        piece(&b, t, 0.0f, 6);
    }
    for (int64_t i = 0; i < w->o->vocab - 259; i++) {
        char t[32];
        normal_piece(i, t);
        piece(&b, t, -(float)i, 1);
    }
    pb_int(&ts, 3, 2);           /* model_type BPE */
    pb_int(&ts, 4, w->o->vocab); /* vocab_size */
    pb_int(&ts, 35, 1);          /* byte_fallback */
    pb_int(&ts, 40, 0);          /* unk_id */
    pb_int(&ts, 41, 1);          /* bos_id */
    pb_int(&ts, 42, 2);          /* eos_id */
    pb_int(&ts, 43, -1);         /* pad_id */
    pb_bytes(&b, 2, ts.p, ts.n);
    pb_bytes(&ns, 1, "identity", 8);
    pb_int(&ns, 3, 1);           /* add_dummy_prefix */
    pb_int(&ns, 4, 0);           /* remove_extra_whitespaces */
    pb_int(&ns, 5, 1);           /* escape_whitespaces */
    pb_bytes(&b, 3, ns.p, ns.n);
    if (b.oom || ts.oom || ns.oom) {
        if (w->e == INP_OK)
            w->e = inp_fail(w->msg, INP_ERR_NOMEM, "out of memory for tokenizer.model");
    } else {
        write_file(w, "tokenizer.model", b.p, b.n);
    }
    free(b.p);
    free(ts.p);
    free(ns.p);
}

/* ---------------------------------------------------------------- tokenizer.json (byte-level BPE) */

/* GPT-2's byte-to-unicode order: id k < 188 is the k-th byte of 0x21-0x7E, 0xA1-0xAC, 0xAE-0xFF
 * (shown as itself), the others the remaining bytes in order, shown as U+0100 + n. UTF-8 into
 * out[3]. */
static void byte_char(int k, char out[3])
{
    unsigned cp;
    if (k < 94)
        cp = 0x21u + (unsigned)k;
    else if (k < 106)
        cp = 0xA1u + (unsigned)(k - 94);
    else if (k < 188)
        cp = 0xAEu + (unsigned)(k - 106);
    else
        cp = 0x100u + (unsigned)(k - 188);
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
    } else {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        out[2] = 0;
    }
}

#define G_SPACE "\xc4\xa0" /* Ġ: the byte-level form of ' ' */

/* The m-th merge's parts: ("Ġ", letter) for m < 26, then per word length L = 2, 3, ... each
 * lowercase word w as (w[:-1], w[-1]) and ("Ġ" w[:-1], w[-1]). */
static void bpe_merge(int64_t m, char *left, char *right)
{
    if (m < 26) {
        strcpy(left, G_SPACE);
        right[0] = (char)('a' + m), right[1] = 0;
        return;
    }
    int64_t j = m - 26, count = 2 * 26 * 26;
    int len = 2;
    while (j >= count) {
        j -= count;
        len++;
        count *= 26;
    }
    bool space = j % 2;
    int64_t wd = j / 2;
    char word[16];
    for (int k = len - 1; k >= 0; k--) {
        word[k] = (char)('a' + wd % 26);
        wd /= 26;
    }
    right[0] = word[len - 1], right[1] = 0;
    word[len - 1] = 0;
    sprintf(left, "%s%s", space ? G_SPACE : "", word);
}

static json_t *added_token(int64_t id, const char *text)
{
    json_t *a = json_object();
    json_object_set_new(a, "id", json_integer((json_int_t)id));
    json_object_set_new(a, "content", json_string(text));
    json_object_set_new(a, "single_word", json_false());
    json_object_set_new(a, "lstrip", json_false());
    json_object_set_new(a, "rstrip", json_false());
    json_object_set_new(a, "normalized", json_false());
    json_object_set_new(a, "special", json_true());
    return a;
}

static json_t *byte_level(bool prefix, bool trim)
{
    json_t *b = json_object();
    json_object_set_new(b, "type", json_string("ByteLevel"));
    json_object_set_new(b, "add_prefix_space", json_boolean(prefix));
    json_object_set_new(b, "trim_offsets", json_boolean(trim));
    json_object_set_new(b, "use_regex", json_false());
    return b;
}

/* {"SpecialToken"|"Sequence": {"id": id, "type_id": type_id}} */
static json_t *template_piece(const char *kind, const char *id, int type_id)
{
    json_t *e = json_object(), *in = json_object();
    json_object_set_new(in, "id", json_string(id));
    json_object_set_new(in, "type_id", json_integer(type_id));
    json_object_set_new(e, kind, in);
    return e;
}

static const char *const k_llama3_special[3] = {"<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"};
static const char *const k_qwen_special[3] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};

/* Llama 3's style for the llama architecture, Qwen's for the others. */
static bool llama3_style(const arch_desc *d) { return strcmp(d->name, "llama") == 0; }

static void write_tokenizer_json(wctx *w, const arch_desc *d)
{
    const int64_t V = w->o->vocab, n_merges = V - 256 - 3;
    const bool l3 = llama3_style(d);
    const char *const *sp = l3 ? k_llama3_special : k_qwen_special;
    json_t *vocab = json_object(), *merges = json_array(), *added = json_array();
    char tok[64], left[32], right[8];
    for (int k = 0; k < 256; k++) {
        byte_char(k, tok);
        json_object_set_new(vocab, tok, json_integer(k));
    }
    for (int64_t m = 0; m < n_merges; m++) {
        bpe_merge(m, left, right);
        snprintf(tok, sizeof tok, "%s%s", left, right);
        json_object_set_new(vocab, tok, json_integer((json_int_t)(256 + m)));
        if (l3) {
            snprintf(tok, sizeof tok, "%s %s", left, right);
            json_array_append_new(merges, json_string(tok));
        } else {
            json_t *pair = json_array();
            json_array_append_new(pair, json_string(left));
            json_array_append_new(pair, json_string(right));
            json_array_append_new(merges, pair);
        }
    }
    for (int k = 0; k < 3; k++)
        json_array_append_new(added, added_token(V - 3 + k, sp[k]));
    json_t *model = json_object();
    json_object_set_new(model, "type", json_string("BPE"));
    json_object_set_new(model, "dropout", json_null());
    json_object_set_new(model, "unk_token", json_null());
    json_object_set_new(model, "continuing_subword_prefix", l3 ? json_null() : json_string(""));
    json_object_set_new(model, "end_of_word_suffix", l3 ? json_null() : json_string(""));
    json_object_set_new(model, "fuse_unk", json_false());
    json_object_set_new(model, "byte_fallback", json_false());
    json_object_set_new(model, "ignore_merges", json_boolean(l3));
    json_object_set_new(model, "vocab", vocab);
    json_object_set_new(model, "merges", merges);

    json_t *split = json_object(), *pat = json_object(), *seq = json_array(), *pre = json_object();
    json_object_set_new(pat, "Regex", json_string(l3 ? "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
                                                       "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
                                                     : "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
                                                       "\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"));
    json_object_set_new(split, "type", json_string("Split"));
    json_object_set_new(split, "pattern", pat);
    json_object_set_new(split, "behavior", json_string("Isolated"));
    json_object_set_new(split, "invert", json_false());
    json_array_append_new(seq, split);
    json_array_append_new(seq, byte_level(false, l3));
    json_object_set_new(pre, "type", json_string("Sequence"));
    json_object_set_new(pre, "pretokenizers", seq);

    json_t *post = byte_level(l3, false);
    if (l3) { /* then BOS first, as the Llama 3 releases of 2024 */
        json_t *tp = json_object(), *single = json_array(), *pair = json_array(), *st = json_object(),
               *bos = json_object(), *ids = json_array(), *toks = json_array(), *procs = json_array();
        json_array_append_new(single, template_piece("SpecialToken", sp[0], 0));
        json_array_append_new(single, template_piece("Sequence", "A", 0));
        json_array_append_new(pair, template_piece("SpecialToken", sp[0], 0));
        json_array_append_new(pair, template_piece("Sequence", "A", 0));
        json_array_append_new(pair, template_piece("SpecialToken", sp[0], 1));
        json_array_append_new(pair, template_piece("Sequence", "B", 1));
        json_array_append_new(ids, json_integer((json_int_t)(V - 3)));
        json_array_append_new(toks, json_string(sp[0]));
        json_object_set_new(bos, "id", json_string(sp[0]));
        json_object_set_new(bos, "ids", ids);
        json_object_set_new(bos, "tokens", toks);
        json_object_set_new(st, sp[0], bos);
        json_object_set_new(tp, "type", json_string("TemplateProcessing"));
        json_object_set_new(tp, "single", single);
        json_object_set_new(tp, "pair", pair);
        json_object_set_new(tp, "special_tokens", st);
        json_array_append_new(procs, post);
        json_array_append_new(procs, tp);
        post = json_object();
        json_object_set_new(post, "type", json_string("Sequence"));
        json_object_set_new(post, "processors", procs);
    }
    json_t *t = json_object();
    json_object_set_new(t, "version", json_string("1.0"));
    json_object_set_new(t, "truncation", json_null());
    json_object_set_new(t, "padding", json_null());
    json_object_set_new(t, "added_tokens", added);
    json_t *nfc = json_object();
    json_object_set_new(nfc, "type", json_string("NFC"));
    json_object_set_new(t, "normalizer", l3 ? (json_decref(nfc), json_null()) : nfc);
    json_object_set_new(t, "pre_tokenizer", pre);
    json_object_set_new(t, "post_processor", post);
    json_object_set_new(t, "decoder", byte_level(l3, l3));
    json_object_set_new(t, "model", model);
    write_json(w, "tokenizer.json", t);
}

/* ---------------------------------------------------------------- config files */

static void write_configs(wctx *w, const arch_desc *d, const arch_hf_class *cls, const arch_hparams *hp)
{
    const inp_synth_opts *o = w->o;
    json_t *c = json_object(), *arch = json_array();
    json_array_append_new(arch, json_string(cls->name));
    json_object_set_new(c, "architectures", arch);
    json_object_set_new(c, "model_type", json_string(cls->model_type));
    for (size_t i = 0; i < d->n_keys; i++) {
        const arch_key *k = &d->keys[i];
        if (!k->hf || json_object_get(c, k->hf) || ((k->flags & ARCH_KEY_IF_GIVEN) && !hp->head_dim_given))
            continue;
        double v = arch_hp_get(hp, k->id);
        json_object_set_new(c, k->hf, k->type == ARCH_KV_F32 ? json_real(v) : json_integer((json_int_t)v));
    }
    json_object_set_new(c, "hidden_act", json_string("silu"));
    json_object_set_new(c, "tie_word_embeddings", json_boolean(o->tied));
    const bool bpe = o->tokenizer == INP_SYNTH_TOK_BPE, l3 = llama3_style(d);
    const int64_t V = o->vocab;
    json_object_set_new(c, "bos_token_id", json_integer(bpe ? V - 3 : 1));
    json_object_set_new(c, "eos_token_id", json_integer(bpe ? (l3 ? V - 2 : V - 1) : 2));
    json_object_set_new(c, "torch_dtype", json_string(o->dtype == GGUF_F32   ? "float32"
                                                      : o->dtype == GGUF_F16 ? "float16"
                                                                             : "bfloat16"));
    for (size_t i = 0; i < d->n_refused; i++)
        json_object_set_new(c, d->refused[i].key, json_false());
    if (o->rope_llama3) {
        json_t *rs = json_object();
        json_object_set_new(rs, "factor", json_real(8.0));
        json_object_set_new(rs, "low_freq_factor", json_real(1.0));
        json_object_set_new(rs, "high_freq_factor", json_real(4.0));
        json_object_set_new(rs, "original_max_position_embeddings", json_integer(8192));
        json_object_set_new(rs, "rope_type", json_string("llama3"));
        json_object_set_new(c, "rope_scaling", rs);
    }
    json_object_set_new(c, "initializer_range", json_real(0.02));
    write_json(w, "config.json", c);

    json_t *tc = json_object();
    if (bpe && l3) { /* as Llama 3's */
        json_object_set_new(tc, "tokenizer_class", json_string("PreTrainedTokenizerFast"));
        json_object_set_new(tc, "bos_token", json_string(k_llama3_special[0]));
        json_object_set_new(tc, "eos_token", json_string(k_llama3_special[1]));
        json_object_set_new(tc, "chat_template",
                            json_string("{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
                                        "{{ m['content'] }}<|eot_id|>{% endfor %}"));
    } else if (bpe) { /* as Qwen2's and Qwen3's */
        json_object_set_new(tc, "tokenizer_class", json_string("Qwen2Tokenizer"));
        json_object_set_new(tc, "add_bos_token", json_false());
        json_object_set_new(tc, "add_prefix_space", json_false());
        json_object_set_new(tc, "bos_token", json_null());
        json_object_set_new(tc, "eos_token", json_string(k_qwen_special[2]));
        json_object_set_new(tc, "pad_token", json_string(k_qwen_special[0]));
        json_object_set_new(tc, "unk_token", json_null());
        json_object_set_new(tc, "chat_template",
                            json_string("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}"
                                        "<|im_end|>\n{% endfor %}"));
    } else {
        json_object_set_new(tc, "tokenizer_class", json_string("LlamaTokenizer"));
        json_object_set_new(tc, "add_bos_token", json_true());
        json_object_set_new(tc, "add_eos_token", json_false());
        json_object_set_new(tc, "bos_token", json_string("<s>"));
        json_object_set_new(tc, "eos_token", json_string("</s>"));
        json_object_set_new(tc, "unk_token", json_string("<unk>"));
        json_object_set_new(tc, "legacy", json_true());
    }
    json_object_set_new(tc, "model_max_length", json_integer(o->ctx));
    write_json(w, "tokenizer_config.json", tc);
}

/* ---------------------------------------------------------------- tensors */

static size_t esize(const inp_synth_opts *o) { return o->dtype == GGUF_F32 ? 4 : 2; }
static uint64_t tbytes(const inp_synth_opts *o, const tdesc *t) { return t->rows * (t->cols ? t->cols : 1) * esize(o); }

static int cmp_name(const void *a, const void *b)
{
    return strcmp((*(tdesc *const *)a)->name, (*(tdesc *const *)b)->name);
}

/* The safetensors header of ts[0..n) (sorted by name), offsets filled in; NULL on OOM. */
static char *shard_header(const inp_synth_opts *o, tdesc **ts, size_t n)
{
    json_t *h = json_object(), *meta = json_object();
    json_object_set_new(meta, "format", json_string("pt"));
    json_object_set_new(h, "__metadata__", meta);
    uint64_t off = 0;
    const char *dt = o->dtype == GGUF_F32 ? "F32" : o->dtype == GGUF_F16 ? "F16" : "BF16";
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_object(), *sh = json_array(), *of = json_array();
        json_array_append_new(sh, json_integer((json_int_t)ts[i]->rows));
        if (ts[i]->cols)
            json_array_append_new(sh, json_integer((json_int_t)ts[i]->cols));
        ts[i]->begin = off;
        json_array_append_new(of, json_integer((json_int_t)off));
        off += tbytes(o, ts[i]);
        json_array_append_new(of, json_integer((json_int_t)off));
        json_object_set_new(e, "dtype", json_string(dt));
        json_object_set_new(e, "shape", sh);
        json_object_set_new(e, "data_offsets", of);
        json_object_set_new(h, ts[i]->name, e);
    }
    char *hs = json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(h);
    return hs;
}

/* The values of ts[0..n) row by row, converted to the dtype. */
static void shard_data(wctx *w, FILE *f, const char *p, tdesc **ts, size_t n)
{
    const inp_synth_opts *o = w->o;
    uint64_t maxc = 1;
    for (size_t i = 0; i < n; i++) {
        uint64_t c = ts[i]->cols ? ts[i]->cols : ts[i]->rows;
        maxc = c > maxc ? c : maxc;
    }
    float *row = malloc(maxc * sizeof *row);
    void *cvt = malloc(maxc * 4);
    if (!row || !cvt)
        w->e = inp_fail(w->msg, INP_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n && w->e == INP_OK; i++) {
        const tdesc *t = ts[i];
        uint64_t st = name_seed(o->seed, t->name);
        uint64_t rows = t->cols ? t->rows : 1, cols = t->cols ? t->cols : t->rows;
        for (uint64_t r = 0; r < rows && w->e == INP_OK; r++) {
            for (uint64_t c = 0; c < cols; c++)
                row[c] = t->norm ? 1.0f : gauss002(&st);
            if (o->dtype == GGUF_F32) {
                put(w, f, row, cols * 4, p); /* little-endian host assumed, as everywhere in qforge */
            } else {
                if (o->dtype == GGUF_F16)
                    lq_f32_to_f16_row(row, cvt, (int64_t)cols);
                else
                    lq_f32_to_bf16_row(row, cvt, (int64_t)cols);
                put(w, f, cvt, cols * 2, p);
            }
        }
    }
    free(row);
    free(cvt);
}

static void write_shard(wctx *w, const char *fname, tdesc **ts, size_t n)
{
    qsort(ts, n, sizeof *ts, cmp_name);
    char *hs = shard_header(w->o, ts, n);
    char *p = path_in(w, fname), *temp = NULL;
    if (w->e == INP_OK && !hs)
        w->e = inp_fail(w->msg, INP_ERR_NOMEM, "out of memory");
    FILE *f = hs && p ? open_temp(w, p, &temp) : NULL;
    if (f) {
        size_t hl = strlen(hs), pad = (8 - hl % 8) % 8;
        uint64_t N = hl + pad;
        unsigned char le[8];
        for (int k = 0; k < 8; k++)
            le[k] = (unsigned char)(N >> (8 * k));
        put(w, f, le, 8, p);
        put(w, f, hs, hl, p);
        put(w, f, "        ", pad, p);
        shard_data(w, f, p, ts, n);
    }
    close_temp(w, f, temp, p);
    free(hs);
    free(p);
}

static bool is_norm(arch_role r)
{
    return r == ARCH_ROLE_ATTN_NORM || r == ARCH_ROLE_FFN_NORM || r == ARCH_ROLE_OUTPUT_NORM ||
           r == ARCH_ROLE_ATTN_Q_NORM || r == ARCH_ROLE_ATTN_K_NORM;
}

static void add_tensor(const arch_desc *d, const arch_tensor *at, int layer, const arch_hparams *hp, tdesc *t)
{
    arch_tensor_hf_name(d, at, layer, t->name, sizeof t->name);
    uint64_t ne0 = (uint64_t)arch_dim_value(at->ne0, hp), ne1 = (uint64_t)arch_dim_value(at->ne1, hp);
    t->rows = arch_tensor_is_matrix(at) ? ne1 : ne0;
    t->cols = arch_tensor_is_matrix(at) ? ne0 : 0;
    t->norm = is_norm(at->role);
}

/* The checkpoint's tensors in state_dict order into t; returns how many. */
static size_t list_tensors(const arch_desc *d, const arch_hparams *hp, bool tied, tdesc *t)
{
    size_t n = 0;
    for (size_t i = 0; i < d->n_globals; i++)
        if (d->globals[i].role == ARCH_ROLE_TOKEN_EMBD)
            add_tensor(d, &d->globals[i], -1, hp, &t[n++]);
    for (int l = 0; l < hp->n_layer; l++)
        for (size_t i = 0; i < d->n_layer; i++)
            add_tensor(d, &d->layer[i], l, hp, &t[n++]);
    for (size_t i = 0; i < d->n_globals; i++) {
        const arch_tensor *at = &d->globals[i];
        if (at->role == ARCH_ROLE_TOKEN_EMBD || (at->flags & ARCH_T_COMPUTED) || (tied && (at->flags & ARCH_T_TIED)))
            continue;
        add_tensor(d, at, -1, hp, &t[n++]);
    }
    return n;
}

/* Contiguous, non-empty, byte-balanced groups in state_dict order; returns the total bytes. */
static uint64_t assign_shards(const inp_synth_opts *o, tdesc *t, size_t n)
{
    uint64_t total = 0, cum = 0;
    for (size_t i = 0; i < n; i++)
        total += tbytes(o, &t[i]);
    size_t idx = 0;
    for (int64_t k = 0; k < o->shards; k++) {
        size_t left_after = (size_t)(o->shards - k - 1);
        if (left_after == 0) {
            for (; idx < n; idx++)
                t[idx].shard = k, cum += tbytes(o, &t[idx]);
            break;
        }
        double target = (double)total * (double)(k + 1) / (double)o->shards;
        t[idx].shard = k, cum += tbytes(o, &t[idx]), idx++;
        while (idx < n - left_after && (double)cum + (double)tbytes(o, &t[idx]) / 2 <= target)
            t[idx].shard = k, cum += tbytes(o, &t[idx]), idx++;
    }
    return total;
}

/* The shards, and the index (weight_map sorted by name, as transformers writes it) or, for one
 * shard, no index: a stale one from an earlier sharded run would take precedence. */
static void write_weights(wctx *w, tdesc *t, size_t n, uint64_t total)
{
    const inp_synth_opts *o = w->o;
    tdesc **ts = malloc(n * sizeof *ts);
    char(*fnames)[64] = malloc((size_t)o->shards * sizeof *fnames);
    if (!ts || !fnames)
        w->e = inp_fail(w->msg, INP_ERR_NOMEM, "out of memory");
    for (int64_t k = 0; k < o->shards && w->e == INP_OK; k++) {
        if (o->shards == 1)
            snprintf(fnames[k], sizeof fnames[k], "model.safetensors");
        else
            snprintf(fnames[k], sizeof fnames[k], "model-%05lld-of-%05lld.safetensors", (long long)k + 1,
                     (long long)o->shards);
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (t[i].shard == k)
                ts[m++] = &t[i];
        write_shard(w, fnames[k], ts, m);
    }
    if (w->e == INP_OK && o->shards > 1) {
        for (size_t i = 0; i < n; i++)
            ts[i] = &t[i];
        qsort(ts, n, sizeof *ts, cmp_name);
        json_t *wm = json_object(), *idx = json_object(), *meta = json_object();
        for (size_t a = 0; a < n; a++)
            json_object_set_new(wm, ts[a]->name, json_string(fnames[ts[a]->shard]));
        json_object_set_new(meta, "total_size", json_integer((json_int_t)total));
        json_object_set_new(idx, "metadata", meta);
        json_object_set_new(idx, "weight_map", wm);
        write_json(w, "model.safetensors.index.json", idx);
    } else if (w->e == INP_OK) {
        char *ip = path_in(w, "model.safetensors.index.json");
        if (ip && unlink(ip) != 0 && errno != ENOENT)
            w->e = inp_fail(w->msg, INP_ERR_IO, "%s: cannot remove: %s", ip, strerror(errno));
        free(ip);
    }
    free(ts);
    free(fnames);
}

/* ---------------------------------------------------------------- entry */

/* The options as hyper-parameters of the class; INP_ERR_ARG when they make no model. */
static inp_error check_opts(const inp_synth_opts *o, const arch_desc *d, arch_hparams *hp, char *msg)
{
    if (o->dim < 2 || o->dim > ARCH_MAX_EMBD || o->layers < 1 || o->layers > 1024 || o->heads < 1 ||
        o->heads > ARCH_MAX_HEADS || o->ffn < 1 || o->ffn > ARCH_MAX_FF || o->vocab < 259 || o->vocab > (1 << 20) ||
        o->kv_heads < 0 || o->head_dim < 0 || o->head_dim > ARCH_MAX_EMBD || o->ctx < 1 || o->ctx > INT32_MAX ||
        o->shards < 1 || !(o->rope_theta > 0) || !(o->rms_eps > 0) ||
        (o->dtype != GGUF_F32 && o->dtype != GGUF_F16 && o->dtype != GGUF_BF16))
        return inp_fail(msg, INP_ERR_ARG, "a size, count or type is out of range");
    memset(hp, 0, sizeof *hp);
    hp->n_layer = o->layers, hp->n_ctx = o->ctx, hp->n_embd = o->dim, hp->n_ff = o->ffn, hp->n_head = o->heads;
    hp->n_head_kv = o->kv_heads ? o->kv_heads : o->heads, hp->n_vocab = o->vocab;
    hp->rope_base = o->rope_theta, hp->rms_eps = o->rms_eps, hp->tied = o->tied;
    hp->head_dim_given = o->head_dim > 0;
    if (!hp->head_dim_given && o->dim % o->heads)
        return inp_fail(msg, INP_ERR_ARG, "dim %lld is not a multiple of heads %lld", (long long)o->dim,
                        (long long)o->heads);
    hp->head_dim = hp->head_dim_given ? o->head_dim : o->dim / o->heads;
    if (hp->n_head % hp->n_head_kv)
        return inp_fail(msg, INP_ERR_ARG, "heads %lld is not a multiple of kv-heads %lld", (long long)hp->n_head,
                        (long long)hp->n_head_kv);
    if (hp->head_dim % 2 || hp->n_head * hp->head_dim > ARCH_MAX_EMBD * 4)
        return inp_fail(msg, INP_ERR_ARG, "head dimension %lld is odd or too large", (long long)hp->head_dim);
    if (o->tokenizer != INP_SYNTH_TOK_SPM && o->tokenizer != INP_SYNTH_TOK_BPE)
        return inp_fail(msg, INP_ERR_ARG, "tokenizer kind %d is neither SentencePiece nor BPE", o->tokenizer);
    if (o->tokenizer == INP_SYNTH_TOK_BPE && o->vocab < 260)
        return inp_fail(msg, INP_ERR_ARG, "a BPE tokenizer needs vocab >= 260 (256 bytes, a merge, 3 special tokens)");
    if (o->rope_llama3 && !(d->rope_scaling & 1u << ARCH_ROPE_SCALING_LLAMA3))
        return inp_fail(msg, INP_ERR_ARG, "%s has no llama3 RoPE scaling", d->name);
    return INP_OK;
}

inp_error inp_synth_write(const char *dir, const inp_synth_opts *o, inp_synth_summary *sum, char *msg)
{
    const arch_hf_class *cls;
    const arch_desc *d = arch_find_hf(o->hf_class ? o->hf_class : "LlamaForCausalLM", &cls);
    if (!d)
        return inp_fail(msg, INP_ERR_UNSUPPORTED, "architecture '%s' is not registered", o->hf_class);
    arch_hparams hp;
    inp_error e = check_opts(o, d, &hp, msg);
    if (e != INP_OK)
        return e;
    size_t cap = (size_t)o->layers * d->n_layer + d->n_globals;
    tdesc *t = calloc(cap, sizeof *t);
    if (!t)
        return inp_fail(msg, INP_ERR_NOMEM, "out of memory");
    size_t n = list_tensors(d, &hp, o->tied, t);
    if ((uint64_t)o->shards > n) {
        free(t);
        return inp_fail(msg, INP_ERR_ARG, "%lld shards are more than the %zu tensors", (long long)o->shards, n);
    }
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        free(t);
        return inp_fail(msg, INP_ERR_IO, "%s: cannot create directory: %s", dir, strerror(errno));
    }
    wctx w = {o, dir, msg, INP_OK};
    uint64_t total = assign_shards(o, t, n);
    write_weights(&w, t, n, total);
    write_configs(&w, d, cls, &hp);
    /* the other kind's file from an earlier run would be read instead (or beside) */
    char *stale = path_in(&w, o->tokenizer == INP_SYNTH_TOK_BPE ? "tokenizer.model" : "tokenizer.json");
    if (stale && unlink(stale) != 0 && errno != ENOENT && w.e == INP_OK)
        w.e = inp_fail(msg, INP_ERR_IO, "%s: cannot remove: %s", stale, strerror(errno));
    free(stale);
    if (o->tokenizer == INP_SYNTH_TOK_BPE)
        write_tokenizer_json(&w, d);
    else
        write_tokenizer(&w);
    free(t);
    if (w.e == INP_OK && sum) {
        sum->bytes = total;
        sum->params = total / esize(o);
        sum->n_tensors = (int64_t)n;
    }
    return w.e;
}
