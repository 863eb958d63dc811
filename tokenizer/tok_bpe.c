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

struct tok_bpe_work {
    tok_words words;
    tok_symbols sym;
};

void tok_bpe_work_free_(tok_bpe_work *w)
{
    if (!w)
        return;
    tok_words_free_(&w->words);
    tok_symbols_free_(&w->sym);
    free(w);
}

/* A pair merges when it is a merge; the lowest rank goes first. */
static bool bpe_pair(const void *ctx, tok_symbols *s, int32_t l, int32_t r)
{
    const tok_model *t = ctx;
    int32_t rk = rank_of(t->ranks, s->text + s->start[l], s->n[l], s->text + s->start[r], s->n[r]);
    return rk < 0 || tok_symbols_push_(s, rk, l, r);
}

/* Merge one word by rank and emit its tokens. False only when out of memory. */
static bool word_tokens(const tok_model *t, tok_symbols *s, const char *word, size_t len, tok_ivec *out)
{
    if ((t->pre->flags & TOK_PRE_IGNORE_MERGES)) {
        int32_t id = tok_lookup_(t, word, len);
        if (id >= 0)
            return tok_ivec_push_(out, id);
    }
    int32_t ns = tok_symbols_init_(s, word, len);
    if (ns < 0 || !tok_symbols_run_(s, ns, bpe_pair, t))
        return false;
    for (int32_t i = ns ? 0 : -1; i != -1; i = s->next[i]) {
        const char *p = word + s->start[i];
        int32_t id = tok_lookup_(t, p, s->n[i]);
        if (id >= 0) {
            if (!tok_ivec_push_(out, id))
                return false;
            continue;
        }
        for (uint32_t j = 0; j < s->n[i]; j++) /* single bytes that are tokens; others dropped */
            if ((id = tok_lookup_(t, p + j, 1)) >= 0 && !tok_ivec_push_(out, id))
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
        if (!word_tokens(t, &w->sym, ws->buf + a, ws->end[i] - a, out))
            goto nomem;
    }
    return TOK_OK;
nomem:
    tok_set_msg_(msg, "out of memory tokenizing %zu bytes", len);
    return TOK_ERR_NOMEM;
}
