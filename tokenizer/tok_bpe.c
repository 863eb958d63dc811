/* llama.cpp's byte-level BPE on one raw fragment (llm_tokenizer_bpe_session): pre-tokenize into
 * words, then merge adjacent symbols of each word by merge rank. */
#include "tokenizer/tok_internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* ---- merge ranks: (first, second) -> rank ---- */

typedef struct {
    size_t off;          /* first at arena + off, second right after it */
    uint32_t first_len, second_len;
} pair_entry;

struct tok_bpe_ranks {
    char *arena;
    pair_entry *e;       /* e[rank] */
    int32_t *slot;       /* rank, -1 empty */
    size_t mask;
    int64_t n;
};

static inline uint64_t hash_pair(const char *a, size_t an, const char *b, size_t bn)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < an; i++)
        h = (h ^ (uint8_t)a[i]) * 1099511628211ull;
    h = (h ^ 0x1ff) * 1099511628211ull; /* separator outside the byte range */
    for (size_t i = 0; i < bn; i++)
        h = (h ^ (uint8_t)b[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

/* Rank of the merge (a, b), -1 if none. */
static int32_t rank_of(const tok_bpe_ranks *r, const char *a, size_t an, const char *b, size_t bn)
{
    if (!r->n)
        return -1;
    for (size_t h = (size_t)hash_pair(a, an, b, bn) & r->mask;; h = (h + 1) & r->mask) {
        int32_t k = r->slot[h];
        if (k < 0)
            return -1;
        const pair_entry *p = &r->e[k];
        const char *s = r->arena + p->off;
        if (p->first_len == an && p->second_len == bn && memcmp(s, a, an) == 0 && memcmp(s + an, b, bn) == 0)
            return k;
    }
}

void tok_bpe_ranks_free_(tok_bpe_ranks *r)
{
    if (!r)
        return;
    free(r->arena);
    free(r->e);
    free(r->slot);
    free(r);
}

tok_error tok_bpe_ranks_create_(int64_t n, const char *const *merges, const size_t *lens, tok_bpe_ranks **out,
                                char *msg)
{
    *out = NULL;
    if (n > TOK_MAX_MERGES) {
        tok_set_msg_(msg, "%" PRId64 " merges exceeds the limit of %d", n, TOK_MAX_MERGES);
        return TOK_ERR_MODEL;
    }
    size_t total = 1;
    for (int64_t i = 0; i < n; i++) {
        size_t l = lens ? lens[i] : strlen(merges[i]);
        if (l > UINT32_MAX || total > SIZE_MAX - l) {
            tok_set_msg_(msg, "merge %" PRId64 " is too long", i);
            return TOK_ERR_MODEL;
        }
        total += l;
    }
    tok_bpe_ranks *r = calloc(1, sizeof *r);
    size_t k = n ? (size_t)n : 1, cap = 16;
    while (cap < k * 2)
        cap *= 2;
    if (!r || !(r->arena = malloc(total)) || !(r->e = malloc(k * sizeof *r->e)) ||
        !(r->slot = malloc(cap * sizeof *r->slot))) {
        tok_bpe_ranks_free_(r);
        tok_set_msg_(msg, "out of memory for %" PRId64 " merges", n);
        return TOK_ERR_NOMEM;
    }
    memset(r->slot, 0xff, cap * sizeof *r->slot);
    r->mask = cap - 1;
    size_t pos = 0;
    for (int64_t i = 0; i < n; i++) {
        const char *s = merges[i];
        size_t l = lens ? lens[i] : strlen(s);
        const char *sp = l > 1 ? memchr(s + 1, ' ', l - 1) : NULL;
        /* rank i is kept even when unusable, so that ranks stay the merge indices */
        r->e[i] = (pair_entry){pos, 0, 0};
        r->n = i + 1;
        if (!sp)
            continue; /* llama.cpp maps it to the pair ("", ""), which never matches */
        size_t fl = (size_t)(sp - s), sl = l - fl - 1;
        memcpy(r->arena + pos, s, fl);
        memcpy(r->arena + pos + fl, sp + 1, sl);
        r->e[i] = (pair_entry){pos, (uint32_t)fl, (uint32_t)sl};
        pos += fl + sl;
        if (rank_of(r, s, fl, sp + 1, sl) >= 0)
            continue; /* a repeated pair keeps its first rank */
        for (size_t h = (size_t)hash_pair(s, fl, sp + 1, sl) & r->mask;; h = (h + 1) & r->mask)
            if (r->slot[h] < 0) {
                r->slot[h] = (int32_t)i;
                break;
            }
    }
    *out = r;
    return TOK_OK;
}

/* ---- one word ---- */

typedef struct {
    int32_t rank, left, right;
    uint32_t size;
} bigram;

struct tok_bpe_work {
    tok_words words;
    uint32_t *start, *n; /* symbol i: word[start[i] .. start[i]+n[i]); n 0 once merged away */
    int32_t *prev, *next;
    size_t sym_cap;
    bigram *heap;
    size_t heap_n, heap_cap;
};

void tok_bpe_work_free_(tok_bpe_work *w)
{
    if (!w)
        return;
    tok_words_free_(&w->words);
    free(w->start);
    free(w->n);
    free(w->prev);
    free(w->next);
    free(w->heap);
    free(w);
}

/* Lowest rank first; equal ranks: leftmost first (llama.cpp's llm_bigram_bpe order). */
static inline bool before(const bigram *a, const bigram *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static bool heap_push(tok_bpe_work *w, bigram x)
{
    if (w->heap_n == w->heap_cap) {
        size_t c = w->heap_cap ? w->heap_cap * 2 : 256;
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

static bigram heap_pop(tok_bpe_work *w)
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

static bool try_bigram(const tok_model *t, tok_bpe_work *w, const char *word, int32_t left, int32_t right)
{
    if (left < 0 || right < 0)
        return true;
    int32_t r = rank_of(t->ranks, word + w->start[left], w->n[left], word + w->start[right], w->n[right]);
    if (r < 0)
        return true;
    return heap_push(w, (bigram){r, left, right, w->n[left] + w->n[right]});
}

static bool reserve_symbols(tok_bpe_work *w, size_t len)
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

/* Merge one word by rank and emit its tokens. False only when out of memory. */
static bool word_tokens(const tok_model *t, tok_bpe_work *w, const char *word, size_t len, tok_ivec *out)
{
    if ((t->pre->flags & TOK_PRE_IGNORE_MERGES)) {
        int32_t id = tok_lookup_(t, word, len);
        if (id >= 0)
            return tok_ivec_push_(out, id);
    }
    if (len > INT32_MAX || !reserve_symbols(w, len))
        return false;
    int32_t ns = 0;
    for (size_t off = 0; off < len;) {
        size_t l = tok_utf8_len_((uint8_t)word[off]);
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
        if (!try_bigram(t, w, word, i - 1, i))
            return false;
    while (w->heap_n) {
        bigram b = heap_pop(w);
        int32_t l = b.left, r = b.right;
        /* stale when either side changed: a symbol only grows, so the sizes tell */
        if (w->n[l] == 0 || w->n[r] == 0 || w->n[l] + w->n[r] != b.size)
            continue;
        w->n[l] += w->n[r];
        w->n[r] = 0;
        w->next[l] = w->next[r];
        if (w->next[r] >= 0)
            w->prev[w->next[r]] = l;
        if (!try_bigram(t, w, word, w->prev[l], l) || !try_bigram(t, w, word, l, w->next[l]))
            return false;
    }
    for (int32_t i = ns ? 0 : -1; i != -1; i = w->next[i]) {
        const char *s = word + w->start[i];
        int32_t id = tok_lookup_(t, s, w->n[i]);
        if (id >= 0) {
            if (!tok_ivec_push_(out, id))
                return false;
            continue;
        }
        for (uint32_t j = 0; j < w->n[i]; j++) /* single bytes that are tokens; others dropped */
            if ((id = tok_lookup_(t, s + j, 1)) >= 0 && !tok_ivec_push_(out, id))
                return false;
    }
    return true;
}

tok_error tok_bpe_fragment_(const tok_model *t, tok_bpe_work **work, const char *text, size_t len, tok_ivec *out,
                            char *msg)
{
    if (!*work && !(*work = calloc(1, sizeof **work)))
        goto nomem;
    tok_bpe_work *w = *work;
    tok_error e = tok_pretok_split_(t->pretok, text, len, &w->words, msg);
    if (e)
        return e;
    const tok_words *ws = &w->words;
    for (size_t i = 0; i < ws->n; i++) {
        size_t a = i ? ws->end[i - 1] : 0;
        if (!word_tokens(t, w, ws->buf + a, ws->end[i] - a, out))
            goto nomem;
    }
    return TOK_OK;
nomem:
    tok_set_msg_(msg, "out of memory tokenizing %zu bytes", len);
    return TOK_ERR_NOMEM;
}
