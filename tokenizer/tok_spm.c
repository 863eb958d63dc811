/* llama.cpp's SPM tokenizer on one raw fragment: U+2581 escaping, score-ordered bigram merging
 * over UTF-8 characters, byte fallback (llm_tokenizer_spm_session). */
#include "tokenizer/tok_internal.h"

#include <stdlib.h>
#include <string.h>

struct tok_spm_work {
    char *buf;           /* escaped fragment */
    size_t buf_cap;
    tok_symbols sym;
};

void tok_spm_work_free_(tok_spm_work *w)
{
    if (!w)
        return;
    free(w->buf);
    tok_symbols_free_(&w->sym);
    free(w);
}

/* A pair merges when its concatenation is a token; the best score goes first. */
static bool spm_pair(const void *ctx, tok_symbols *s, int32_t l, int32_t r)
{
    const tok_model *t = ctx;
    int32_t id = tok_lookup_(t, s->text + s->start[l], (size_t)s->n[l] + s->n[r]);
    return id < 0 || tok_symbols_push_(s, -(double)t->score[id], l, r);
}

/* llama.cpp's llm_tokenizer_spm_session::tokenize on seg[0..len). */
static tok_error session(const tok_model *t, tok_spm_work *w, const char *seg, size_t len, tok_ivec *out, char *msg)
{
    tok_symbols *s = &w->sym;
    int32_t ns = tok_symbols_init_(s, seg, len);
    if (ns < 0 || !tok_symbols_run_(s, ns, spm_pair, t))
        goto nomem;
    for (int32_t i = ns ? 0 : -1; i != -1; i = s->next[i]) {
        const char *p = seg + s->start[i];
        int32_t id = tok_lookup_(t, p, s->n[i]);
        if (id >= 0) {
            if (!tok_ivec_push_(out, id))
                goto nomem;
            continue;
        }
        for (uint32_t j = 0; j < s->n[i]; j++) {
            uint8_t c = (uint8_t)p[j];
            if (t->byte_tok[c] < 0) {
                tok_set_msg_(msg, "byte 0x%02X needs byte fallback but the vocabulary has neither <0x%02X> nor the byte",
                             c, c);
                return TOK_ERR_MODEL;
            }
            if (!tok_ivec_push_(out, t->byte_tok[c]))
                goto nomem;
        }
    }
    return TOK_OK;
nomem:
    tok_set_msg_(msg, "out of memory tokenizing %zu bytes", len);
    return TOK_ERR_NOMEM;
}

static inline bool pair_in_vocab(const tok_model *t, uint8_t x, uint8_t y)
{
    return t->pair[x][y >> 3] >> (y & 7) & 1;
}

/* Merge w->buf[0..len) in independent pieces: no token contains the bytes on both sides of a
 * character boundary whose two bytes are never adjacent in a token, so no merge can cross it
 * and the pieces give exactly the tokens of one pass over the whole text, much faster. */
static tok_error merge_text(const tok_model *t, tok_spm_work *w, size_t len, tok_ivec *out, char *msg)
{
    const char *b = w->buf;
    size_t start = 0, off = 0;
    while (off < len) {
        size_t l = tok_utf8_len_((uint8_t)b[off]);
        off = l < len - off ? off + l : len;
        if (off < len && !pair_in_vocab(t, (uint8_t)b[off - 1], (uint8_t)b[off])) {
            tok_error e = session(t, w, b + start, off - start, out, msg);
            if (e)
                return e;
            start = off;
        }
    }
    return session(t, w, b + start, len - start, out, msg);
}

tok_error tok_spm_fragment_(const tok_model *t, tok_spm_work **work, const char *text, size_t len, bool prefix,
                            tok_ivec *out, char *msg)
{
    if (!*work && !(*work = calloc(1, sizeof **work)))
        goto nomem;
    tok_spm_work *w = *work;
    size_t spaces = 0;
    for (size_t i = 0; i < len; i++)
        spaces += text[i] == ' ';
    size_t n = len + 2 * spaces + (prefix ? 3 : 0);
    if (n > TOK_MAX_TEXT) {
        tok_set_msg_(msg, "escaped text of %zu bytes exceeds the limit of %zu", n, TOK_MAX_TEXT);
        return TOK_ERR_ARG;
    }
    if (n > w->buf_cap) {
        char *nb = realloc(w->buf, n);
        if (!nb)
            goto nomem;
        w->buf = nb;
        w->buf_cap = n;
    }
    char *p = w->buf;
    if (prefix) {
        memcpy(p, "\xe2\x96\x81", 3);
        p += 3;
    }
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (c == ' ') {
            memcpy(p, "\xe2\x96\x81", 3);
            p += 3;
        } else {
            *p++ = c;
        }
    }
    return merge_text(t, w, n, out, msg);
nomem:
    tok_set_msg_(msg, "out of memory tokenizing %zu bytes", len);
    return TOK_ERR_NOMEM;
}
