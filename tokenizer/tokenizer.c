/* The vocabulary part shared by llama.cpp's SPM and BPE tokenizers: text -> id table, token
 * attributes, special-token partition, the encode driver, GGUF loading and token pieces. The
 * algorithms themselves are in tok_spm.c and tok_bpe.c. */
#include "tokenizer/tokenizer.h"
#include "tokenizer/tok_internal.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tok_default_options(tok_options *o)
{
    *o = (tok_options){.bos_id = 1, .eos_id = 2, .add_space_prefix = true, .add_bos = true,
                       .add_eos = false, .rstrip_special = false};
}

void tok_default_options_bpe(const char *pre, tok_options *o)
{
    const tok_pre_def *d = tok_pre_find_(pre && *pre ? pre : "default");
    unsigned f = d ? d->flags : 0;
    *o = (tok_options){.bos_id = f & TOK_PRE_NO_BOS ? -1 : 11, .eos_id = 11, .add_space_prefix = false,
                       .add_bos = (f & TOK_PRE_ADD_BOS) != 0, .add_eos = false, .rstrip_special = false};
}

/* ---- text -> id table ---- */

static inline uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

int32_t tok_lookup_(const tok_model *t, const char *s, size_t n)
{
    if (n > t->max_len)
        return -1;
    for (size_t h = (size_t)hash_bytes(s, n) & t->mask;; h = (h + 1) & t->mask) {
        int32_t id = t->slot[h];
        if (id < 0)
            return -1;
        if (t->len[id] == n && memcmp(t->arena + t->off[id], s, n) == 0)
            return id;
    }
}

/* Insert id; returns the id already holding the same text, or -1. */
static int32_t insert(tok_model *t, int32_t id)
{
    const char *s = t->arena + t->off[id];
    size_t n = t->len[id];
    for (size_t h = (size_t)hash_bytes(s, n) & t->mask;; h = (h + 1) & t->mask) {
        int32_t j = t->slot[h];
        if (j < 0) {
            t->slot[h] = id;
            return -1;
        }
        if (t->len[j] == n && memcmp(t->arena + t->off[j], s, n) == 0)
            return j;
    }
}

/* ---- creation ---- */

/* Token texts llama.cpp marks CONTROL at load (end-of-generation, end-of-turn, FIM markers). */
static const char *const control_names[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
    "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
    "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>", "[e~[",
    "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<\xef\xbd\x9c" "fim\xe2\x96\x81" "begin\xef\xbd\x9c>",
    "<PRE>", "\xe2\x96\x81<PRE>", "<|code_prefix|>", "<|prefix|>",
    "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<\xef\xbd\x9c" "fim\xe2\x96\x81hole\xef\xbd\x9c>",
    "<SUF>", "\xe2\x96\x81<SUF>", "<|code_suffix|>", "<|suffix|>",
    "<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<\xef\xbd\x9c" "fim\xe2\x96\x81" "end\xef\xbd\x9c>",
    "<MID>", "\xe2\x96\x81<MID>", "<|code_middle|>", "<|middle|>",
    "<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]",
    "<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>", "<|file_sep|>",
};

/* gpt-oss tokens llama.cpp always renders (attribute set to USER_DEFINED). */
static const char *const user_names[] = {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"};

static uint32_t attr_of_type(int32_t type)
{
    switch (type) {
    case TOK_NORMAL: return TOK_ATTR_NORMAL;
    case TOK_UNKNOWN: return TOK_ATTR_UNKNOWN;
    case TOK_CONTROL: return TOK_ATTR_CONTROL;
    case TOK_USER_DEFINED: return TOK_ATTR_USER_DEFINED;
    case TOK_UNUSED: return TOK_ATTR_UNUSED;
    case TOK_BYTE: return TOK_ATTR_BYTE;
    default: return 0; /* UNDEFINED */
    }
}

static int cmp_special(const void *a, const void *b, void *ctx)
{
    const tok_model *t = ctx;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    uint32_t lx = t->len[x], ly = t->len[y];
    if (lx != ly)
        return lx > ly ? -1 : 1;
    return x < y ? -1 : x > y;
}

void tok_free(tok_model *t)
{
    if (!t)
        return;
    free(t->arena);
    free(t->off);
    free(t->len);
    free(t->score);
    free(t->type);
    free(t->attr);
    free(t->slot);
    free(t->special);
    tok_pretok_free_(t->pretok);
    tok_bpe_ranks_free_(t->ranks);
    free(t);
}

/* Checks and copies the texts; *out has everything but the attribute fix-ups. */
static tok_error vocab_copy(int32_t n, const char *const *texts, const size_t *lens, const float *scores,
                            const int32_t *types, const tok_options *o, tok_model **out, char *msg)
{
    if (n > TOK_MAX_TOKENS) {
        tok_set_msg_(msg, "%" PRId32 " tokens exceeds the limit of %d", n, TOK_MAX_TOKENS);
        return TOK_ERR_MODEL;
    }
    if (o->bos_id < -1 || o->bos_id >= n || o->eos_id < -1 || o->eos_id >= n) {
        tok_set_msg_(msg, "special token ids bos=%" PRId32 " eos=%" PRId32 " outside the %" PRId32 "-token vocabulary",
                     o->bos_id, o->eos_id, n);
        return TOK_ERR_MODEL;
    }
    /* Arena size; empty texts become "[EMPTY_<id>]" as in llama.cpp. */
    size_t total = 1;
    for (int32_t i = 0; i < n; i++) {
        if (!texts[i]) {
            tok_set_msg_(msg, "token %" PRId32 " has no text", i);
            return TOK_ERR_ARG;
        }
        size_t l = lens ? lens[i] : strlen(texts[i]);
        if (l > UINT32_MAX - 64 || total > SIZE_MAX - l - 64) {
            tok_set_msg_(msg, "token %" PRId32 " is too long", i);
            return TOK_ERR_MODEL;
        }
        total += (l ? l : 32) + 1;
    }
    tok_model *t = calloc(1, sizeof *t);
    if (!t)
        goto nomem;
    t->n = n;
    t->opt = *o;
    size_t k = n ? (size_t)n : 1;
    size_t cap = 16;
    while (cap < k * 2)
        cap *= 2;
    t->mask = cap - 1;
    t->arena = malloc(total);
    t->off = malloc(k * sizeof *t->off);
    t->len = malloc(k * sizeof *t->len);
    t->score = malloc(k * sizeof *t->score);
    t->type = malloc(k * sizeof *t->type);
    t->attr = malloc(k * sizeof *t->attr);
    t->slot = malloc(cap * sizeof *t->slot);
    t->special = malloc(k * sizeof *t->special);
    if (!t->arena || !t->off || !t->len || !t->score || !t->type || !t->attr || !t->slot || !t->special)
        goto nomem;
    memset(t->slot, 0xff, cap * sizeof *t->slot);
    size_t pos = 0;
    for (int32_t i = 0; i < n; i++) {
        size_t l = lens ? lens[i] : strlen(texts[i]);
        t->off[i] = pos;
        if (l)
            memcpy(t->arena + pos, texts[i], l);
        else
            l = (size_t)snprintf(t->arena + pos, 32, "[EMPTY_%" PRId32 "]", i);
        t->len[i] = (uint32_t)l;
        t->arena[pos + l] = 0;
        pos += l + 1;
        if (l > t->max_len)
            t->max_len = l;
        t->score[i] = scores ? scores[i] : 0.0f;
        t->type[i] = types ? types[i] : TOK_NORMAL;
        t->attr[i] = attr_of_type(t->type[i]);
        int32_t dup = insert(t, i);
        if (dup >= 0) {
            tok_set_msg_(msg, "duplicate token in vocabulary: '%.64s' has ids %" PRId32 " and %" PRId32,
                         t->arena + t->off[i], dup, i);
            tok_free(t);
            return TOK_ERR_MODEL;
        }
    }
    *out = t;
    return TOK_OK;
nomem:
    tok_free(t);
    tok_set_msg_(msg, "out of memory for a %" PRId32 "-token vocabulary", n);
    return TOK_ERR_NOMEM;
}

/* llama.cpp's load-time fix-ups, the SPM helper tables and the special-token list. */
static void vocab_finish(tok_model *t)
{
    for (size_t j = 0; j < sizeof control_names / sizeof *control_names; j++) {
        int32_t id = tok_lookup_(t, control_names[j], strlen(control_names[j]));
        if (id >= 0)
            t->attr[id] |= TOK_ATTR_CONTROL;
    }
    if (t->kind == TOK_KIND_BPE)
        for (size_t j = 0; j < sizeof user_names / sizeof *user_names; j++) {
            int32_t id = tok_lookup_(t, user_names[j], strlen(user_names[j]));
            if (id >= 0)
                t->attr[id] = TOK_ATTR_USER_DEFINED;
        }
    for (int32_t i = 0; i < t->n; i++) {
        const uint8_t *s = (const uint8_t *)t->arena + t->off[i];
        for (uint32_t j = 1; j < t->len[i]; j++)
            t->pair[s[j - 1]][s[j] >> 3] |= (uint8_t)(1u << (s[j] & 7));
    }
    for (int b = 0; b < 256; b++) {
        char hex[7];
        snprintf(hex, sizeof hex, "<0x%02X>", b);
        int32_t id = tok_lookup_(t, hex, 6);
        if (id < 0) {
            char c = (char)b;
            id = tok_lookup_(t, &c, 1);
        }
        t->byte_tok[b] = id;
    }
    for (int32_t i = 0; i < t->n; i++)
        if (t->attr[i] & (TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED | TOK_ATTR_UNKNOWN))
            t->special[t->n_special++] = i;
    qsort_r(t->special, (size_t)t->n_special, sizeof *t->special, cmp_special, t);
    if (t->opt.rstrip_special) {
        for (int32_t j = 0; j < t->n_special; j++)
            t->attr[t->special[j]] |= TOK_ATTR_RSTRIP;
        static const char *const keep[] = {"<unk>", "<s>", "<|endoftext|>"};
        int32_t id = tok_lookup_(t, "</s>", 4);
        if (id >= 0)
            t->attr[id] |= TOK_ATTR_RSTRIP;
        for (size_t j = 0; j < 3; j++)
            if ((id = tok_lookup_(t, keep[j], strlen(keep[j]))) >= 0)
                t->attr[id] &= ~(uint32_t)TOK_ATTR_RSTRIP;
    }
}

tok_error tok_create(int32_t n, const char *const *texts, const size_t *lens, const float *scores,
                     const int32_t *types, const tok_options *opt, tok_model **out, char *msg)
{
    if (!out || n < 0 || (n > 0 && !texts)) {
        tok_set_msg_(msg, "tok_create: invalid argument");
        return TOK_ERR_ARG;
    }
    *out = NULL;
    tok_options o;
    if (opt)
        o = *opt;
    else
        tok_default_options(&o);
    tok_model *t;
    tok_error e = vocab_copy(n, texts, lens, scores, types, &o, &t, msg);
    if (e)
        return e;
    t->kind = TOK_KIND_SPM;
    vocab_finish(t);
    *out = t;
    return TOK_OK;
}

tok_error tok_create_bpe(int32_t n, const char *const *texts, const size_t *lens, const int32_t *types,
                         int64_t n_merges, const char *const *merges, const size_t *merge_lens, const char *pre,
                         const tok_options *opt, tok_model **out, char *msg)
{
    if (!out || n < 0 || (n > 0 && !texts) || n_merges < 0 || (n_merges > 0 && !merges)) {
        tok_set_msg_(msg, "tok_create_bpe: invalid argument");
        return TOK_ERR_ARG;
    }
    *out = NULL;
    if (!pre || !*pre)
        pre = "default";
    const tok_pre_def *def = tok_pre_find_(pre);
    if (!def) {
        tok_set_msg_(msg, "BPE pre-tokenizer '%.64s' is not supported", pre);
        return TOK_ERR_UNSUPPORTED;
    }
    tok_options o;
    if (opt) {
        o = *opt;
    } else { /* as llama.cpp: a default id outside the vocabulary is disabled */
        tok_default_options_bpe(pre, &o);
        o.bos_id = o.bos_id < n ? o.bos_id : -1;
        o.eos_id = o.eos_id < n ? o.eos_id : -1;
    }
    tok_model *t;
    tok_error e = vocab_copy(n, texts, lens, NULL, types, &o, &t, msg);
    if (e)
        return e;
    t->kind = TOK_KIND_BPE;
    t->pre = def;
    if ((e = tok_bpe_ranks_create_(n_merges, merges, merge_lens, &t->ranks, msg)) != TOK_OK ||
        (e = tok_pretok_create_(def, &t->pretok, msg)) != TOK_OK) {
        tok_free(t);
        return e;
    }
    vocab_finish(t);
    *out = t;
    return TOK_OK;
}

/* ---- GGUF ---- */

/* tokenizer.ggml.tokens (and token_type) as arrays for the create functions. */
typedef struct {
    int32_t n;
    const char **texts;
    size_t *lens;
    float *scores;
    const int32_t *types;
} gguf_vocab;

static void gguf_vocab_free(gguf_vocab *v)
{
    free(v->texts);
    free(v->lens);
    free(v->scores);
}

static tok_error gguf_vocab_read(const gguf_reader *r, bool want_scores, gguf_vocab *v, char *msg)
{
    const gguf_value *tok, *sc = NULL, *ty = NULL;
    if (gguf_get_array(r, "tokenizer.ggml.tokens", &tok) != GGUF_OK || tok->elem_type != GGUF_VAL_STRING) {
        tok_set_msg_(msg, "tokenizer.ggml.tokens is missing or not a string array");
        return TOK_ERR_MODEL;
    }
    if (tok->n > TOK_MAX_TOKENS) {
        tok_set_msg_(msg, "%" PRIu64 " tokens exceeds the limit of %d", tok->n, TOK_MAX_TOKENS);
        return TOK_ERR_MODEL;
    }
    int32_t n = (int32_t)tok->n;
    if (want_scores && gguf_find_kv(r, "tokenizer.ggml.scores") >= 0) {
        if (gguf_get_array(r, "tokenizer.ggml.scores", &sc) != GGUF_OK ||
            (sc->elem_type != GGUF_VAL_F32 && sc->elem_type != GGUF_VAL_I32) || sc->n < tok->n) {
            tok_set_msg_(msg, "tokenizer.ggml.scores is not an f32/i32 array of at least %" PRId32 " entries", n);
            return TOK_ERR_MODEL;
        }
    }
    if (gguf_find_kv(r, "tokenizer.ggml.token_type") >= 0) {
        if (gguf_get_array(r, "tokenizer.ggml.token_type", &ty) != GGUF_OK || ty->elem_type != GGUF_VAL_I32 ||
            ty->n < tok->n) {
            tok_set_msg_(msg, "tokenizer.ggml.token_type is not an i32 array of at least %" PRId32 " entries", n);
            return TOK_ERR_MODEL;
        }
    }
    size_t k = n ? (size_t)n : 1;
    *v = (gguf_vocab){.n = n, .types = ty ? (const int32_t *)ty->v.arr : NULL};
    v->texts = malloc(k * sizeof *v->texts);
    v->lens = malloc(k * sizeof *v->lens);
    v->scores = sc ? malloc(k * sizeof *v->scores) : NULL;
    if (!v->texts || !v->lens || (sc && !v->scores)) {
        gguf_vocab_free(v);
        tok_set_msg_(msg, "out of memory");
        return TOK_ERR_NOMEM;
    }
    for (int32_t i = 0; i < n; i++) {
        v->texts[i] = tok->v.strs[i].str;
        v->lens[i] = (size_t)tok->v.strs[i].len;
        if (sc)
            v->scores[i] = sc->elem_type == GGUF_VAL_F32 ? ((const float *)sc->v.arr)[i]
                                                         : (float)((const int32_t *)sc->v.arr)[i];
    }
    return TOK_OK;
}

/* Special ids, add_* flags and the phi-3 rule over the defaults in *o, as llama.cpp reads them. */
static void gguf_options(const gguf_reader *r, int32_t n, tok_options *o)
{
    /* llama.cpp: a default id outside the vocabulary is disabled; a stored id outside it is ignored. */
    int32_t *ids[2] = {&o->bos_id, &o->eos_id};
    const char *keys[2] = {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"};
    for (int j = 0; j < 2; j++) {
        if (*ids[j] >= n)
            *ids[j] = -1;
        int64_t v;
        if (gguf_get_int(r, keys[j], &v) == GGUF_OK && v >= 0 && v < n)
            *ids[j] = (int32_t)v;
    }
    bool b;
    if (gguf_get_bool(r, "tokenizer.ggml.add_space_prefix", &b) == GGUF_OK)
        o->add_space_prefix = b;
    if (gguf_get_bool(r, "tokenizer.ggml.add_bos_token", &b) == GGUF_OK)
        o->add_bos = b;
    if (gguf_get_bool(r, "tokenizer.ggml.add_eos_token", &b) == GGUF_OK)
        o->add_eos = b;
    const gguf_str *name;
    if (gguf_get_str(r, "general.name", &name) == GGUF_OK) {
        char low[256];
        size_t l = name->len < sizeof low - 1 ? (size_t)name->len : sizeof low - 1;
        for (size_t i = 0; i < l; i++)
            low[i] = (char)tolower((unsigned char)name->str[i]);
        low[l] = 0;
        o->rstrip_special = strstr(low, "phi-3") || strstr(low, "phi3");
    }
}

static tok_error from_gguf_bpe(const gguf_reader *r, tok_model **out, char *msg)
{
    const gguf_value *mg;
    if (gguf_get_array(r, "tokenizer.ggml.merges", &mg) != GGUF_OK || mg->elem_type != GGUF_VAL_STRING) {
        tok_set_msg_(msg, "tokenizer.ggml.merges is missing or not a string array");
        return TOK_ERR_MODEL;
    }
    const char *pre = "default";
    const gguf_str *ps;
    if (gguf_find_kv(r, "tokenizer.ggml.pre") >= 0) {
        if (gguf_get_str(r, "tokenizer.ggml.pre", &ps) != GGUF_OK) {
            tok_set_msg_(msg, "tokenizer.ggml.pre is not a string");
            return TOK_ERR_MODEL;
        }
        if (ps->len > 0)
            pre = ps->str;
    }
    if (!tok_pre_find_(pre)) {
        tok_set_msg_(msg, "tokenizer.ggml.pre is '%.64s', a BPE pre-tokenizer qforge does not support", pre);
        return TOK_ERR_UNSUPPORTED;
    }
    gguf_vocab v;
    tok_error e = gguf_vocab_read(r, false, &v, msg);
    if (e)
        return e;
    tok_options o;
    tok_default_options_bpe(pre, &o);
    gguf_options(r, v.n, &o);
    size_t nm = mg->n ? (size_t)mg->n : 1;
    const char **merges = malloc(nm * sizeof *merges);
    size_t *mlens = malloc(nm * sizeof *mlens);
    if (!merges || !mlens) {
        e = TOK_ERR_NOMEM;
        tok_set_msg_(msg, "out of memory");
    } else {
        for (uint64_t i = 0; i < mg->n; i++) {
            merges[i] = mg->v.strs[i].str;
            mlens[i] = (size_t)mg->v.strs[i].len;
        }
        e = tok_create_bpe(v.n, v.texts, v.lens, v.types, (int64_t)mg->n, merges, mlens, pre, &o, out, msg);
    }
    free(merges);
    free(mlens);
    gguf_vocab_free(&v);
    return e;
}

tok_error tok_from_gguf(const gguf_reader *r, tok_model **out, char *msg)
{
    if (!r || !out) {
        tok_set_msg_(msg, "tok_from_gguf: invalid argument");
        return TOK_ERR_ARG;
    }
    *out = NULL;
    const gguf_str *model;
    if (gguf_get_str(r, "tokenizer.ggml.model", &model) != GGUF_OK) {
        tok_set_msg_(msg, "tokenizer.ggml.model is missing or not a string");
        return TOK_ERR_MODEL;
    }
    if (strcmp(model->str, "gpt2") == 0)
        return from_gguf_bpe(r, out, msg);
    if (strcmp(model->str, "llama") != 0) {
        tok_set_msg_(msg, "tokenizer.ggml.model is '%.64s'; only 'llama' (SentencePiece) and 'gpt2' (byte-level BPE) "
                     "are supported", model->str);
        return TOK_ERR_UNSUPPORTED;
    }
    gguf_vocab v;
    tok_error e = gguf_vocab_read(r, true, &v, msg);
    if (e)
        return e;
    tok_options o;
    tok_default_options(&o);
    gguf_options(r, v.n, &o);
    e = tok_create(v.n, v.texts, v.lens, v.scores, v.types, &o, out, msg);
    gguf_vocab_free(&v);
    return e;
}

/* ---- queries ---- */

int tok_kind(const tok_model *t) { return t ? t->kind : 0; }
const char *tok_pre(const tok_model *t) { return t && t->pre ? t->pre->name : NULL; }
int32_t tok_n_tokens(const tok_model *t) { return t ? t->n : 0; }
int32_t tok_bos(const tok_model *t) { return t ? t->opt.bos_id : -1; }
int32_t tok_eos(const tok_model *t) { return t ? t->opt.eos_id : -1; }

unsigned tok_default_flags(const tok_model *t)
{
    if (!t)
        return 0;
    return (t->opt.add_bos ? TOK_ADD_BOS : 0u) | (t->opt.add_eos ? TOK_ADD_EOS : 0u);
}

const char *tok_text(const tok_model *t, int32_t id, size_t *len)
{
    if (!t || id < 0 || id >= t->n)
        return NULL;
    if (len)
        *len = t->len[id];
    return t->arena + t->off[id];
}

float tok_score(const tok_model *t, int32_t id)
{
    return (t && id >= 0 && id < t->n) ? t->score[id] : 0.0f;
}

int tok_type(const tok_model *t, int32_t id)
{
    return (t && id >= 0 && id < t->n) ? t->type[id] : -1;
}

/* ---- pieces ---- */

static inline void put(char *buf, size_t cap, size_t *o, char c)
{
    if (*o < cap)
        buf[*o] = c;
    (*o)++;
}

/* llama_decode_text: each code point's byte, or "[UNK_BYTE_0x<hex of its UTF-8><token>]". */
static size_t bpe_decode(const char *s, size_t n, char *buf, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        uint32_t c = tok_utf8_decode_(s, n, &i);
        int b = tok_cpt_to_byte_(c);
        if (b >= 0) {
            put(buf, cap, &o, (char)b);
            continue;
        }
        char u[4], hex[4];
        size_t ul = tok_utf8_encode_(c, u);
        for (const char *p = "[UNK_BYTE_0x"; *p; p++)
            put(buf, cap, &o, *p);
        for (size_t j = 0; j < ul; j++) {
            snprintf(hex, sizeof hex, "%02x", (uint8_t)u[j]);
            put(buf, cap, &o, hex[0]);
            put(buf, cap, &o, hex[1]);
        }
        for (size_t j = 0; j < n; j++)
            put(buf, cap, &o, s[j]);
        put(buf, cap, &o, ']');
    }
    return o;
}

int64_t tok_piece(const tok_model *t, int32_t id, bool special, char *buf, size_t cap)
{
    if (!t || id < 0 || id >= t->n || (!buf && cap))
        return -1;
    uint32_t a = t->attr[id];
    const char *s = t->arena + t->off[id];
    size_t n = t->len[id];
    if (!special && (a & (TOK_ATTR_UNKNOWN | TOK_ATTR_CONTROL)))
        return 0;
    if (a & (TOK_ATTR_UNKNOWN | TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED)) {
        if (cap)
            memcpy(buf, s, n < cap ? n : cap);
        return (int64_t)n;
    }
    if ((a & TOK_ATTR_NORMAL) && t->kind == TOK_KIND_BPE)
        return (int64_t)bpe_decode(s, n, buf, cap);
    if (a & TOK_ATTR_NORMAL) { /* U+2581 -> ' ' */
        size_t o = 0;
        for (size_t i = 0; i < n; i++) {
            char c = s[i];
            if (i + 2 < n && (uint8_t)s[i] == 0xe2 && (uint8_t)s[i + 1] == 0x96 && (uint8_t)s[i + 2] == 0x81) {
                c = ' ';
                i += 2;
            }
            put(buf, cap, &o, c);
        }
        return (int64_t)o;
    }
    if (a & TOK_ATTR_BYTE) {
        unsigned v = 0;
        if (t->kind == TOK_KIND_BPE) { /* the byte its GPT-2 character stands for */
            char tmp[1];
            if (bpe_decode(s, n, tmp, 1) >= 1)
                v = (uint8_t)tmp[0];
        } else { /* "<0xXX>" */
            for (size_t i = 3; i < 5 && i < n; i++) {
                char c = s[i];
                v = v * 16 + (unsigned)(c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                        : c >= 'a' && c <= 'f' ? c - 'a' + 10 : 0);
            }
        }
        if (cap)
            buf[0] = (char)v;
        return 1;
    }
    return 0;
}

/* ---- encoding ---- */

/* A fragment of the input: raw text (tok < 0) or a special token. */
typedef struct {
    int32_t tok;
    size_t off, len;
} frag;

typedef struct {
    frag *v;
    size_t n, cap;
} fvec;

static bool fvec_push(fvec *a, int32_t tok, size_t off, size_t len)
{
    if (a->n == a->cap) {
        size_t c = a->cap ? a->cap * 2 : 16;
        frag *p = realloc(a->v, c * sizeof *p);
        if (!p)
            return false;
        a->v = p;
        a->cap = c;
    }
    a->v[a->n++] = (frag){tok, off, len};
    return true;
}

static inline bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* Split raw fragments around every occurrence of special token id (llama.cpp's
 * tokenizer_st_partition for one token), from src into dst. */
static bool partition(const tok_model *t, int32_t id, const char *text, const fvec *src, fvec *dst)
{
    const char *tt = t->arena + t->off[id];
    size_t tl = t->len[id];
    uint32_t a = t->attr[id];
    dst->n = 0;
    for (size_t k = 0; k < src->n; k++) {
        frag f = src->v[k];
        if (f.tok >= 0) {
            if (!fvec_push(dst, f.tok, 0, 0))
                return false;
            continue;
        }
        size_t off = f.off, len = f.len;
        const char *m;
        while (len > 0 && (m = memmem(text + off, len, tt, tl)) != NULL) {
            size_t at = (size_t)(m - text);
            size_t left = at - off;
            if (a & TOK_ATTR_LSTRIP)
                while (left > 0 && is_space(text[off + left - 1]))
                    left--;
            if (left > 0 && !fvec_push(dst, -1, off, left))
                return false;
            if (!fvec_push(dst, id, 0, 0))
                return false;
            size_t roff = at + tl, rlen = off + len - roff;
            if (a & TOK_ATTR_RSTRIP)
                while (rlen > 0 && is_space(text[roff])) {
                    roff++;
                    rlen--;
                }
            off = roff;
            len = rlen;
        }
        if (len > 0 && !fvec_push(dst, -1, off, len))
            return false;
    }
    return true;
}

static tok_error encode(const tok_model *t, const char *text, size_t len, unsigned flags, tok_ivec *out, char *msg)
{
    if (!t || (!text && len)) {
        tok_set_msg_(msg, "tok_encode: invalid argument");
        return TOK_ERR_ARG;
    }
    if (len > TOK_MAX_TEXT) {
        tok_set_msg_(msg, "text of %zu bytes exceeds the limit of %zu", len, TOK_MAX_TEXT);
        return TOK_ERR_ARG;
    }
    if (((flags & TOK_ADD_BOS) && t->opt.bos_id < 0) || ((flags & TOK_ADD_EOS) && t->opt.eos_id < 0)) {
        tok_set_msg_(msg, "BOS/EOS asked for but the vocabulary has none");
        return TOK_ERR_ARG;
    }

    tok_error e = TOK_OK;
    fvec fa = {0}, fb = {0};
    tok_spm_work *spm = NULL;
    tok_bpe_work *bpe = NULL;
    if (len > 0 && !fvec_push(&fa, -1, 0, len))
        goto nomem;
    bool parse_special = flags & TOK_PARSE_SPECIAL;
    for (int32_t j = 0; j < t->n_special && len > 0; j++) {
        int32_t id = t->special[j];
        if (!parse_special && (t->attr[id] & (TOK_ATTR_CONTROL | TOK_ATTR_UNKNOWN)))
            continue;
        if (!partition(t, id, text, &fa, &fb))
            goto nomem;
        fvec tmp = fa;
        fa = fb;
        fb = tmp;
    }

    if ((flags & TOK_ADD_BOS) && !tok_ivec_push_(out, t->opt.bos_id))
        goto nomem;
    bool prev_special = true;
    for (size_t k = 0; k < fa.n && !e; k++) {
        frag f = fa.v[k];
        if (f.tok >= 0) {
            if (!tok_ivec_push_(out, f.tok))
                goto nomem;
            prev_special = true;
            continue;
        }
        if (t->kind == TOK_KIND_BPE)
            e = tok_bpe_fragment_(t, &bpe, text + f.off, f.len, out, msg);
        else
            e = tok_spm_fragment_(t, &spm, text + f.off, f.len, t->opt.add_space_prefix && prev_special, out, msg);
        prev_special = false;
    }
    if (!e && (flags & TOK_ADD_EOS) && !tok_ivec_push_(out, t->opt.eos_id))
        goto nomem;
    goto done;
nomem:
    tok_set_msg_(msg, "out of memory tokenizing %zu bytes", len);
    e = TOK_ERR_NOMEM;
done:
    free(fa.v);
    free(fb.v);
    tok_spm_work_free_(spm);
    tok_bpe_work_free_(bpe);
    return e;
}

tok_error tok_encode_as_(const tok_model *t, const tok_pre_def *def, const char *text, size_t len, tok_ivec *out,
                         char *msg)
{
    if (!t || t->kind != TOK_KIND_BPE) {
        tok_set_msg_(msg, "tok_encode_as_: not a BPE tokenizer");
        return TOK_ERR_ARG;
    }
    tok_model tmp = *t;
    tmp.pre = def;
    tok_error e = tok_pretok_create_(def, &tmp.pretok, msg);
    if (!e)
        e = encode(&tmp, text, len, 0, out, msg);
    tok_pretok_free_(tmp.pretok);
    return e;
}

tok_error tok_encode(const tok_model *t, const char *text, size_t len, unsigned flags, int32_t **ids,
                     size_t *n_ids, char *msg)
{
    if (!ids || !n_ids) {
        tok_set_msg_(msg, "tok_encode: invalid argument");
        return TOK_ERR_ARG;
    }
    *ids = NULL;
    *n_ids = 0;
    tok_ivec out = {0};
    tok_error e = encode(t, text, len, flags, &out, msg);
    if (e) {
        free(out.v);
        return e;
    }
    *ids = out.v;
    *n_ids = out.n;
    return TOK_OK;
}

tok_error tok_encode_into(const tok_model *t, const char *text, size_t len, unsigned flags, int32_t *out,
                          size_t cap, size_t *n_out, char *msg)
{
    if (!n_out || (!out && cap)) {
        tok_set_msg_(msg, "tok_encode_into: invalid argument");
        return TOK_ERR_ARG;
    }
    *n_out = 0;
    tok_ivec v = {0};
    tok_error e = encode(t, text, len, flags, &v, msg);
    if (!e) {
        *n_out = v.n;
        if (v.n > cap) {
            tok_set_msg_(msg, "%zu tokens do not fit in %zu", v.n, cap);
            e = TOK_ERR_ARG;
        } else if (v.n) {
            memcpy(out, v.v, v.n * sizeof *out);
        }
    }
    free(v.v);
    return e;
}
