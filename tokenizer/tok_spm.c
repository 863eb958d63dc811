/* llama.cpp's SPM tokenizer on one raw fragment: U+2581 escaping, score-ordered bigram merging
 * over UTF-8 characters, byte fallback (llm_tokenizer_spm_session). */
#include "tokenizer/tok_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    float score;
    int32_t left, right;
    uint32_t size;
} bigram;

struct tok_spm_work {
    char *buf;           /* escaped fragment */
    size_t buf_cap;
    const char *seg;     /* the piece of buf being merged */
    uint32_t *start, *n; /* symbol i: buf[start[i] .. start[i]+n[i]); n 0 once merged away */
    int32_t *prev, *next;
    size_t sym_cap;
    bigram *heap;
    size_t heap_n, heap_cap;
};

void tok_spm_work_free_(tok_spm_work *w)
{
    if (!w)
        return;
    free(w->buf);
    free(w->start);
    free(w->n);
    free(w->prev);
    free(w->next);
    free(w->heap);
    free(w);
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
    int32_t id = tok_lookup_(t, w->seg + w->start[left], size);
    if (id < 0)
        return true;
    return heap_push(w, (bigram){t->score[id], left, right, (uint32_t)size});
}

/* Room for len symbols; false when out of memory (the arrays stay valid for freeing). */
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

/* llama.cpp's llm_tokenizer_spm_session::tokenize on seg[0..len). */
static tok_error session(const tok_model *t, tok_spm_work *w, const char *seg, size_t len, tok_ivec *out, char *msg)
{
    w->seg = seg;
    if (!reserve_symbols(w, len))
        goto nomem;
    int32_t ns = 0;
    for (size_t off = 0; off < len;) {
        size_t l = tok_utf8_len_((uint8_t)seg[off]);
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
        int32_t id = tok_lookup_(t, s, w->n[i]);
        if (id >= 0) {
            if (!tok_ivec_push_(out, id))
                goto nomem;
            continue;
        }
        for (uint32_t j = 0; j < w->n[i]; j++) {
            uint8_t c = (uint8_t)s[j];
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
