/* The symbol list and bigram queue both llama.cpp merge loops use (SPM: best score first; BPE:
 * lowest rank first; ties to the leftmost pair). */
#include "tokenizer/tok_internal.h"

#include <stdlib.h>

void tok_symbols_free_(tok_symbols *s)
{
    free(s->start);
    free(s->n);
    free(s->prev);
    free(s->next);
    free(s->heap);
}

/* Room for len symbols; false when out of memory (the arrays stay valid for freeing). */
static bool reserve(tok_symbols *s, size_t len)
{
    if (len <= s->cap)
        return true;
    uint32_t *start = realloc(s->start, len * sizeof *start);
    if (start)
        s->start = start;
    uint32_t *n = start ? realloc(s->n, len * sizeof *n) : NULL;
    if (n)
        s->n = n;
    int32_t *prev = n ? realloc(s->prev, len * sizeof *prev) : NULL;
    if (prev)
        s->prev = prev;
    int32_t *next = prev ? realloc(s->next, len * sizeof *next) : NULL;
    if (!next)
        return false;
    s->next = next;
    s->cap = len;
    return true;
}

int32_t tok_symbols_init_(tok_symbols *s, const char *text, size_t len)
{
    if (len > INT32_MAX || !reserve(s, len))
        return -1;
    s->text = text;
    s->heap_n = 0;
    int32_t ns = 0;
    for (size_t off = 0; off < len;) {
        size_t l = tok_utf8_len_((uint8_t)text[off]);
        if (l > len - off)
            l = len - off;
        s->start[ns] = (uint32_t)off;
        s->n[ns] = (uint32_t)l;
        s->prev[ns] = ns - 1;
        off += l;
        s->next[ns] = off == len ? -1 : ns + 1;
        ns++;
    }
    return ns;
}

static inline bool before(const tok_bigram *a, const tok_bigram *b)
{
    return a->key < b->key || (a->key == b->key && a->left < b->left);
}

bool tok_symbols_push_(tok_symbols *s, double key, int32_t left, int32_t right)
{
    if (s->heap_n == s->heap_cap) {
        size_t c = s->heap_cap ? s->heap_cap * 2 : 256;
        tok_bigram *p = realloc(s->heap, c * sizeof *p);
        if (!p)
            return false;
        s->heap = p;
        s->heap_cap = c;
    }
    tok_bigram x = {key, left, right, s->n[left] + s->n[right]};
    size_t i = s->heap_n++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!before(&x, &s->heap[up]))
            break;
        s->heap[i] = s->heap[up];
        i = up;
    }
    s->heap[i] = x;
    return true;
}

static tok_bigram pop(tok_symbols *s)
{
    tok_bigram top = s->heap[0];
    tok_bigram x = s->heap[--s->heap_n];
    size_t i = 0, n = s->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && before(&s->heap[c + 1], &s->heap[c]))
            c++;
        if (!before(&s->heap[c], &x))
            break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (n)
        s->heap[i] = x;
    return top;
}

bool tok_symbols_run_(tok_symbols *s, int32_t ns, tok_pair_fn pair, const void *ctx)
{
    for (int32_t i = 1; i < ns; i++)
        if (!pair(ctx, s, i - 1, i))
            return false;
    while (s->heap_n) {
        tok_bigram b = pop(s);
        int32_t l = b.left, r = b.right;
        /* stale when either side changed: a symbol only grows, so the sizes tell */
        if (s->n[l] == 0 || s->n[r] == 0 || s->n[l] + s->n[r] != b.size)
            continue;
        s->n[l] += s->n[r];
        s->n[r] = 0;
        s->next[l] = s->next[r];
        if (s->next[r] >= 0)
            s->prev[s->next[r]] = l;
        if ((s->prev[l] >= 0 && !pair(ctx, s, s->prev[l], l)) || (s->next[l] >= 0 && !pair(ctx, s, l, s->next[l])))
            return false;
    }
    return true;
}
