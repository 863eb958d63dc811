/* llama.cpp's SPM tokenizer: special-token partition, U+2581 escaping, score-ordered bigram
 * merging over UTF-8 characters, byte fallback. */
#include "tokenizer/tokenizer.h"
#include "tokenizer/tok_internal.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* llama.cpp's token attributes (llama_token_attr), internal. */
enum {
    ATTR_UNKNOWN = 1 << 0, ATTR_UNUSED = 1 << 1, ATTR_NORMAL = 1 << 2, ATTR_CONTROL = 1 << 3,
    ATTR_USER_DEFINED = 1 << 4, ATTR_BYTE = 1 << 5, ATTR_LSTRIP = 1 << 7, ATTR_RSTRIP = 1 << 8,
};

struct tok_model {
    int32_t n;
    char *arena;       /* every token text, each followed by a NUL */
    size_t *off;       /* text of token i = arena + off[i], len[i] bytes */
    uint32_t *len;
    float *score;
    int32_t *type;     /* as given */
    uint32_t *attr;
    int32_t *slot;     /* open-addressing table text -> id, -1 empty */
    size_t mask;
    size_t max_len;    /* longest token text */
    uint8_t pair[256][32]; /* bit (x, y): bytes x, y are adjacent in some token text */
    int32_t byte_tok[256]; /* byte fallback token per byte, -1 if none */
    int32_t *special;  /* CONTROL/USER_DEFINED/UNKNOWN tokens, longest text first */
    int32_t n_special;
    tok_options opt;
};

static void set_msg(char *msg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_msg(char *msg, const char *fmt, ...)
{
    if (!msg)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, TOK_MSG_SIZE, fmt, ap);
    va_end(ap);
    tok_msg_clean_(msg);
}

void tok_default_options(tok_options *o)
{
    *o = (tok_options){.bos_id = 1, .eos_id = 2, .add_space_prefix = true, .add_bos = true,
                          .add_eos = false, .rstrip_special = false};
}

/* ---- text -> id table ---- */

static inline uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static int32_t lookup(const tok_model *t, const char *s, size_t n)
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

static uint32_t attr_of_type(int32_t type)
{
    switch (type) {
    case TOK_NORMAL: return ATTR_NORMAL;
    case TOK_UNKNOWN: return ATTR_UNKNOWN;
    case TOK_CONTROL: return ATTR_CONTROL;
    case TOK_USER_DEFINED: return ATTR_USER_DEFINED;
    case TOK_UNUSED: return ATTR_UNUSED;
    case TOK_BYTE: return ATTR_BYTE;
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
    free(t);
}

tok_error tok_create(int32_t n, const char *const *texts, const size_t *lens, const float *scores,
                           const int32_t *types, const tok_options *opt, tok_model **out, char *msg)
{
    if (!out || n < 0 || (n > 0 && !texts)) {
        set_msg(msg, "tok_create: invalid argument");
        return TOK_ERR_ARG;
    }
    *out = NULL;
    if (n > TOK_MAX_TOKENS) {
        set_msg(msg, "%" PRId32 " tokens exceeds the limit of %d", n, TOK_MAX_TOKENS);
        return TOK_ERR_MODEL;
    }
    tok_options o;
    if (opt)
        o = *opt;
    else
        tok_default_options(&o);
    if (o.bos_id < -1 || o.bos_id >= n || o.eos_id < -1 || o.eos_id >= n) {
        set_msg(msg, "special token ids bos=%" PRId32 " eos=%" PRId32 " outside the %" PRId32 "-token vocabulary",
                o.bos_id, o.eos_id, n);
        return TOK_ERR_MODEL;
    }

    /* Arena size; empty texts become "[EMPTY_<id>]" as in llama.cpp. */
    size_t total = 1;
    for (int32_t i = 0; i < n; i++) {
        if (!texts[i]) {
            set_msg(msg, "token %" PRId32 " has no text", i);
            return TOK_ERR_ARG;
        }
        size_t l = lens ? lens[i] : strlen(texts[i]);
        if (l > UINT32_MAX - 64 || total > SIZE_MAX - l - 64) {
            set_msg(msg, "token %" PRId32 " is too long", i);
            return TOK_ERR_MODEL;
        }
        total += (l ? l : 32) + 1;
    }

    tok_model *t = calloc(1, sizeof *t);
    if (!t)
        goto nomem;
    t->n = n;
    t->opt = o;
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
            set_msg(msg, "duplicate token in vocabulary: '%.64s' has ids %" PRId32 " and %" PRId32,
                    t->arena + t->off[i], dup, i);
            tok_free(t);
            return TOK_ERR_MODEL;
        }
    }

    for (int32_t i = 0; i < n; i++) {
        const uint8_t *s = (const uint8_t *)t->arena + t->off[i];
        for (uint32_t j = 1; j < t->len[i]; j++)
            t->pair[s[j - 1]][s[j] >> 3] |= (uint8_t)(1u << (s[j] & 7));
    }

    for (size_t j = 0; j < sizeof control_names / sizeof *control_names; j++) {
        int32_t id = lookup(t, control_names[j], strlen(control_names[j]));
        if (id >= 0)
            t->attr[id] |= ATTR_CONTROL;
    }

    for (int b = 0; b < 256; b++) {
        char hex[7];
        snprintf(hex, sizeof hex, "<0x%02X>", b);
        int32_t id = lookup(t, hex, 6);
        if (id < 0) {
            char c = (char)b;
            id = lookup(t, &c, 1);
        }
        t->byte_tok[b] = id;
    }

    for (int32_t i = 0; i < n; i++)
        if (t->attr[i] & (ATTR_CONTROL | ATTR_USER_DEFINED | ATTR_UNKNOWN))
            t->special[t->n_special++] = i;
    qsort_r(t->special, (size_t)t->n_special, sizeof *t->special, cmp_special, t);

    if (o.rstrip_special) {
        for (int32_t j = 0; j < t->n_special; j++)
            t->attr[t->special[j]] |= ATTR_RSTRIP;
        static const char *const keep[] = {"<unk>", "<s>", "<|endoftext|>"};
        int32_t id = lookup(t, "</s>", 4);
        if (id >= 0)
            t->attr[id] |= ATTR_RSTRIP;
        for (size_t j = 0; j < 3; j++)
            if ((id = lookup(t, keep[j], strlen(keep[j]))) >= 0)
                t->attr[id] &= ~(uint32_t)ATTR_RSTRIP;
    }

    *out = t;
    return TOK_OK;
nomem:
    tok_free(t);
    set_msg(msg, "out of memory for a %" PRId32 "-token vocabulary", n);
    return TOK_ERR_NOMEM;
}

tok_error tok_from_gguf(const gguf_reader *r, tok_model **out, char *msg)
{
    if (!r || !out) {
        set_msg(msg, "tok_from_gguf: invalid argument");
        return TOK_ERR_ARG;
    }
    *out = NULL;
    const gguf_str *model;
    if (gguf_get_str(r, "tokenizer.ggml.model", &model) != GGUF_OK) {
        set_msg(msg, "tokenizer.ggml.model is missing or not a string");
        return TOK_ERR_MODEL;
    }
    if (strcmp(model->str, "llama") != 0) {
        set_msg(msg, "tokenizer.ggml.model is '%.64s'; only 'llama' (SentencePiece) is supported", model->str);
        return TOK_ERR_UNSUPPORTED;
    }
    const gguf_value *tok, *sc = NULL, *ty = NULL;
    if (gguf_get_array(r, "tokenizer.ggml.tokens", &tok) != GGUF_OK || tok->elem_type != GGUF_VAL_STRING) {
        set_msg(msg, "tokenizer.ggml.tokens is missing or not a string array");
        return TOK_ERR_MODEL;
    }
    if (tok->n > TOK_MAX_TOKENS) {
        set_msg(msg, "%" PRIu64 " tokens exceeds the limit of %d", tok->n, TOK_MAX_TOKENS);
        return TOK_ERR_MODEL;
    }
    int32_t n = (int32_t)tok->n;
    if (gguf_find_kv(r, "tokenizer.ggml.scores") >= 0) {
        if (gguf_get_array(r, "tokenizer.ggml.scores", &sc) != GGUF_OK ||
            (sc->elem_type != GGUF_VAL_F32 && sc->elem_type != GGUF_VAL_I32) || sc->n < tok->n) {
            set_msg(msg, "tokenizer.ggml.scores is not an f32/i32 array of at least %" PRId32 " entries", n);
            return TOK_ERR_MODEL;
        }
    }
    if (gguf_find_kv(r, "tokenizer.ggml.token_type") >= 0) {
        if (gguf_get_array(r, "tokenizer.ggml.token_type", &ty) != GGUF_OK || ty->elem_type != GGUF_VAL_I32 ||
            ty->n < tok->n) {
            set_msg(msg, "tokenizer.ggml.token_type is not an i32 array of at least %" PRId32 " entries", n);
            return TOK_ERR_MODEL;
        }
    }

    tok_options o;
    tok_default_options(&o);
    /* llama.cpp: a default id outside the vocabulary is disabled; a stored id outside it is ignored. */
    int32_t *ids[2] = {&o.bos_id, &o.eos_id};
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
        o.add_space_prefix = b;
    if (gguf_get_bool(r, "tokenizer.ggml.add_bos_token", &b) == GGUF_OK)
        o.add_bos = b;
    if (gguf_get_bool(r, "tokenizer.ggml.add_eos_token", &b) == GGUF_OK)
        o.add_eos = b;
    const gguf_str *name;
    if (gguf_get_str(r, "general.name", &name) == GGUF_OK) {
        char low[256];
        size_t l = name->len < sizeof low - 1 ? (size_t)name->len : sizeof low - 1;
        for (size_t i = 0; i < l; i++)
            low[i] = (char)tolower((unsigned char)name->str[i]);
        low[l] = 0;
        o.rstrip_special = strstr(low, "phi-3") || strstr(low, "phi3");
    }

    size_t k = n ? (size_t)n : 1;
    const char **texts = malloc(k * sizeof *texts);
    size_t *lens = malloc(k * sizeof *lens);
    float *scores = sc ? malloc(k * sizeof *scores) : NULL;
    if (!texts || !lens || (sc && !scores)) {
        free(texts);
        free(lens);
        free(scores);
        set_msg(msg, "out of memory");
        return TOK_ERR_NOMEM;
    }
    for (int32_t i = 0; i < n; i++) {
        texts[i] = tok->v.strs[i].str;
        lens[i] = (size_t)tok->v.strs[i].len;
        if (sc)
            scores[i] = sc->elem_type == GGUF_VAL_F32 ? ((const float *)sc->v.arr)[i]
                                                      : (float)((const int32_t *)sc->v.arr)[i];
    }
    tok_error e = tok_create(n, texts, lens, scores, ty ? (const int32_t *)ty->v.arr : NULL, &o, out, msg);
    free(texts);
    free(lens);
    free(scores);
    return e;
}

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

int64_t tok_piece(const tok_model *t, int32_t id, bool special, char *buf, size_t cap)
{
    if (!t || id < 0 || id >= t->n || (!buf && cap))
        return -1;
    uint32_t a = t->attr[id];
    const char *s = t->arena + t->off[id];
    size_t n = t->len[id];
    if (!special && (a & (ATTR_UNKNOWN | ATTR_CONTROL)))
        return 0;
    if (a & (ATTR_UNKNOWN | ATTR_CONTROL | ATTR_USER_DEFINED)) {
        if (cap)
            memcpy(buf, s, n < cap ? n : cap);
        return (int64_t)n;
    }
    if (a & ATTR_NORMAL) { /* U+2581 -> ' ' */
        size_t o = 0;
        for (size_t i = 0; i < n; i++) {
            char c = s[i];
            if (i + 2 < n && (uint8_t)s[i] == 0xe2 && (uint8_t)s[i + 1] == 0x96 && (uint8_t)s[i + 2] == 0x81) {
                c = ' ';
                i += 2;
            }
            if (o < cap)
                buf[o] = c;
            o++;
        }
        return (int64_t)o;
    }
    if (a & ATTR_BYTE) { /* "<0xXX>" */
        unsigned v = 0;
        for (size_t i = 3; i < 5 && i < n; i++) {
            char c = s[i];
            v = v * 16 + (unsigned)(c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                    : c >= 'a' && c <= 'f' ? c - 'a' + 10 : 0);
        }
        if (cap)
            buf[0] = (char)v;
        return 1;
    }
    return 0;
}

/* ---- encoding ---- */

typedef struct {
    int32_t *v;
    size_t n, cap;
} ivec;

static bool ivec_push(ivec *a, int32_t x)
{
    if (a->n == a->cap) {
        size_t c = a->cap ? a->cap * 2 : 256;
        int32_t *p = realloc(a->v, c * sizeof *p);
        if (!p)
            return false;
        a->v = p;
        a->cap = c;
    }
    a->v[a->n++] = x;
    return true;
}

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

typedef struct {
    float score;
    int32_t left, right;
    uint32_t size;
} bigram;

/* Scratch of one encode call. */
typedef struct {
    char *buf;          /* escaped fragment */
    size_t buf_cap;
    const char *seg;    /* the piece of buf being merged */
    uint32_t *start, *n; /* symbol i: buf[start[i] .. start[i]+n[i]); n 0 once merged away */
    int32_t *prev, *next;
    size_t sym_cap;
    bigram *heap;
    size_t heap_n, heap_cap;
} tok_spm_work;

static void work_free(tok_spm_work *w)
{
    free(w->buf);
    free(w->start);
    free(w->n);
    free(w->prev);
    free(w->next);
    free(w->heap);
}

/* Highest score first; equal scores: leftmost first (llama.cpp's llm_bigram_spm order). */
static inline bool before(const bigram *a, const bigram *b)
{
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static bool heap_push(tok_spm_work *w, bigram x)
{
    if (w->heap_n == w->heap_cap) {
        size_t c = w->heap_cap ? w->heap_cap * 2 : 1024;
        bigram *p = realloc(w->heap, c * sizeof *p);
        if (!p)
            return false;
        w->heap = p;
        w->heap_cap = c;
    }
    size_t i = w->heap_n++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!before(&x, &w->heap[up]))
            break;
        w->heap[i] = w->heap[up];
        i = up;
    }
    w->heap[i] = x;
    return true;
}

static bigram heap_pop(tok_spm_work *w)
{
    bigram top = w->heap[0];
    bigram x = w->heap[--w->heap_n];
    size_t i = 0, n = w->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && before(&w->heap[c + 1], &w->heap[c]))
            c++;
        if (!before(&w->heap[c], &x))
            break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n)
        w->heap[i] = x;
    return top;
}

static bool try_bigram(const tok_model *t, tok_spm_work *w, int32_t left, int32_t right)
{
    if (left < 0 || right < 0)
        return true;
    size_t size = (size_t)w->n[left] + w->n[right];
    int32_t id = lookup(t, w->seg + w->start[left], size);
    if (id < 0)
        return true;
    return heap_push(w, (bigram){t->score[id], left, right, (uint32_t)size});
}

/* Room for len symbols; false when out of memory (the arrays stay valid for work_free). */
static bool reserve_symbols(tok_spm_work *w, size_t len)
{
    if (len <= w->sym_cap)
        return true;
    uint32_t *start = realloc(w->start, len * sizeof *start);
    if (start)
        w->start = start;
    uint32_t *n = start ? realloc(w->n, len * sizeof *n) : NULL;
    if (n)
        w->n = n;
    int32_t *prev = n ? realloc(w->prev, len * sizeof *prev) : NULL;
    if (prev)
        w->prev = prev;
    int32_t *next = prev ? realloc(w->next, len * sizeof *next) : NULL;
    if (!next)
        return false;
    w->next = next;
    w->sym_cap = len;
    return true;
}

static const uint8_t utf8_len[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};

/* llama.cpp's llm_tokenizer_spm_session::tokenize on seg[0..len). */
static tok_error tok_spm_session(const tok_model *t, tok_spm_work *w, const char *seg, size_t len, ivec *out, char *msg)
{
    w->seg = seg;
    if (!reserve_symbols(w, len))
        goto nomem;
    int32_t ns = 0;
    for (size_t off = 0; off < len;) {
        size_t l = utf8_len[(uint8_t)seg[off] >> 4];
        if (l > len - off)
            l = len - off;
        w->start[ns] = (uint32_t)off;
        w->n[ns] = (uint32_t)l;
        w->prev[ns] = ns - 1;
        off += l;
        w->next[ns] = off == len ? -1 : ns + 1;
        ns++;
    }
    w->heap_n = 0;
    for (int32_t i = 1; i < ns; i++)
        if (!try_bigram(t, w, i - 1, i))
            goto nomem;
    while (w->heap_n) {
        bigram b = heap_pop(w);
        int32_t l = b.left, r = b.right;
        if (w->n[l] == 0 || w->n[r] == 0 || w->n[l] + w->n[r] != b.size)
            continue; /* stale: one side already merged */
        w->n[l] += w->n[r];
        w->n[r] = 0;
        w->next[l] = w->next[r];
        if (w->next[r] >= 0)
            w->prev[w->next[r]] = l;
        if (!try_bigram(t, w, w->prev[l], l) || !try_bigram(t, w, l, w->next[l]))
            goto nomem;
    }
    for (int32_t i = ns ? 0 : -1; i != -1; i = w->next[i]) {
        const char *s = seg + w->start[i];
        int32_t id = lookup(t, s, w->n[i]);
        if (id >= 0) {
            if (!ivec_push(out, id))
                goto nomem;
            continue;
        }
        for (uint32_t j = 0; j < w->n[i]; j++) {
            uint8_t c = (uint8_t)s[j];
            if (t->byte_tok[c] < 0) {
                set_msg(msg, "byte 0x%02X needs byte fallback but the vocabulary has neither <0x%02X> nor the byte",
                        c, c);
                return TOK_ERR_MODEL;
            }
            if (!ivec_push(out, t->byte_tok[c]))
                goto nomem;
        }
    }
    return TOK_OK;
nomem:
    set_msg(msg, "out of memory tokenizing %zu bytes", len);
    return TOK_ERR_NOMEM;
}

static inline bool pair_in_vocab(const tok_model *t, uint8_t x, uint8_t y)
{
    return t->pair[x][y >> 3] >> (y & 7) & 1;
}

/* Merge w->buf[0..len) in independent pieces: no token contains the bytes on both sides of a
 * character boundary whose two bytes are never adjacent in a token, so no merge can cross it
 * and the pieces give exactly the tokens of one pass over the whole text, much faster. */
static tok_error merge_text(const tok_model *t, tok_spm_work *w, size_t len, ivec *out, char *msg)
{
    const char *b = w->buf;
    size_t start = 0, off = 0;
    while (off < len) {
        size_t l = utf8_len[(uint8_t)b[off] >> 4];
        off = l < len - off ? off + l : len;
        if (off < len && !pair_in_vocab(t, (uint8_t)b[off - 1], (uint8_t)b[off])) {
            tok_error e = tok_spm_session(t, w, b + start, off - start, out, msg);
            if (e)
                return e;
            start = off;
        }
    }
    return tok_spm_session(t, w, b + start, len - start, out, msg);
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
            if (a & ATTR_LSTRIP)
                while (left > 0 && is_space(text[off + left - 1]))
                    left--;
            if (left > 0 && !fvec_push(dst, -1, off, left))
                return false;
            if (!fvec_push(dst, id, 0, 0))
                return false;
            size_t roff = at + tl, rlen = off + len - roff;
            if (a & ATTR_RSTRIP)
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

static tok_error encode(const tok_model *t, const char *text, size_t len, unsigned flags, ivec *out, char *msg)
{
    if (!t || (!text && len)) {
        set_msg(msg, "tok_encode: invalid argument");
        return TOK_ERR_ARG;
    }
    if (len > TOK_MAX_TEXT) {
        set_msg(msg, "text of %zu bytes exceeds the limit of %zu", len, TOK_MAX_TEXT);
        return TOK_ERR_ARG;
    }
    if (((flags & TOK_ADD_BOS) && t->opt.bos_id < 0) || ((flags & TOK_ADD_EOS) && t->opt.eos_id < 0)) {
        set_msg(msg, "BOS/EOS asked for but the vocabulary has none");
        return TOK_ERR_ARG;
    }

    tok_error e = TOK_OK;
    fvec fa = {0}, fb = {0};
    tok_spm_work w = {0};
    if (len > 0 && !fvec_push(&fa, -1, 0, len))
        goto nomem;
    bool parse_special = flags & TOK_PARSE_SPECIAL;
    for (int32_t j = 0; j < t->n_special && len > 0; j++) {
        int32_t id = t->special[j];
        if (!parse_special && (t->attr[id] & (ATTR_CONTROL | ATTR_UNKNOWN)))
            continue;
        if (!partition(t, id, text, &fa, &fb))
            goto nomem;
        fvec tmp = fa;
        fa = fb;
        fb = tmp;
    }

    if ((flags & TOK_ADD_BOS) && !ivec_push(out, t->opt.bos_id))
        goto nomem;
    bool prev_special = true;
    for (size_t k = 0; k < fa.n; k++) {
        frag f = fa.v[k];
        if (f.tok >= 0) {
            if (!ivec_push(out, f.tok))
                goto nomem;
            prev_special = true;
            continue;
        }
        size_t spaces = 0;
        for (size_t i = 0; i < f.len; i++)
            spaces += text[f.off + i] == ' ';
        bool prefix = t->opt.add_space_prefix && prev_special;
        size_t n = f.len + 2 * spaces + (prefix ? 3 : 0);
        if (n > TOK_MAX_TEXT) {
            set_msg(msg, "escaped text of %zu bytes exceeds the limit of %zu", n, TOK_MAX_TEXT);
            e = TOK_ERR_ARG;
            goto done;
        }
        if (n > w.buf_cap) {
            char *nb = realloc(w.buf, n);
            if (!nb)
                goto nomem;
            w.buf = nb;
            w.buf_cap = n;
        }
        char *p = w.buf;
        if (prefix) {
            memcpy(p, "\xe2\x96\x81", 3);
            p += 3;
        }
        for (size_t i = 0; i < f.len; i++) {
            char c = text[f.off + i];
            if (c == ' ') {
                memcpy(p, "\xe2\x96\x81", 3);
                p += 3;
            } else {
                *p++ = c;
            }
        }
        e = merge_text(t, &w, n, out, msg);
        if (e)
            goto done;
        prev_special = false;
    }
    if ((flags & TOK_ADD_EOS) && !ivec_push(out, t->opt.eos_id))
        goto nomem;
    goto done;
nomem:
    set_msg(msg, "out of memory tokenizing %zu bytes", len);
    e = TOK_ERR_NOMEM;
done:
    free(fa.v);
    free(fb.v);
    work_free(&w);
    return e;
}

tok_error tok_encode(const tok_model *t, const char *text, size_t len, unsigned flags, int32_t **ids,
                           size_t *n_ids, char *msg)
{
    if (!ids || !n_ids) {
        set_msg(msg, "tok_encode: invalid argument");
        return TOK_ERR_ARG;
    }
    *ids = NULL;
    *n_ids = 0;
    ivec out = {0};
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
        set_msg(msg, "tok_encode_into: invalid argument");
        return TOK_ERR_ARG;
    }
    *n_out = 0;
    ivec v = {0};
    tok_error e = encode(t, text, len, flags, &v, msg);
    if (!e) {
        *n_out = v.n;
        if (v.n > cap) {
            set_msg(msg, "%zu tokens do not fit in %zu", v.n, cap);
            e = TOK_ERR_ARG;
        } else if (v.n) {
            memcpy(out, v.v, v.n * sizeof *out);
        }
    }
    free(v.v);
    return e;
}
