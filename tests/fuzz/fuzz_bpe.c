/* libFuzzer target: the byte-level BPE tokenizer (tokenizer/tokenizer.h, tok_create_bpe) on a
 * hostile vocabulary, hostile merges and hostile text.
 *
 * Input: byte 0 = pre-tokenizer (index into tok_pre_name(), modulo the count), byte 1 = flags
 * (bit 0: add the 256 GPT-2 byte characters as tokens first; bit 1: parse special tokens;
 * bit 2: BOS; bit 3: EOS; bit 4: keep only merges whose parts and result are tokens), then
 * three parts split on byte 0x00: tokens and merges (each list split on byte 0x01, at most 512
 * entries; a token starting with '<' is CONTROL, with '[' USER_DEFINED) and the text.
 * Checks: creation fails only with a one-line message; encoding fails only with TOK_ERR_LIMIT;
 * ids in range, BOS/EOS where asked, tok_encode_into agrees. Without special tokens:
 *   - the pre-tokenizer's words joined give the text as llama.cpp decodes it (malformed UTF-8
 *     as U+FFFD), byte-level encoded;
 *   - for texts up to 64 bytes and at most 128 merges, the ids equal a plain reference merge
 *     (lowest rank first, ties leftmost, over each word), which checks the heap;
 *   - with bit 4 and the byte characters, strict UTF-8 text decodes back to itself. */
#include <string.h>

#include "tests/fuzz/support.h"
#include "tokenizer/tok_internal.h"
#include "tokenizer/tokenizer.h"

enum { MAX_LIST = 512 };

typedef struct {
    const char *s[MAX_LIST + 256];
    size_t len[MAX_LIST + 256];
    size_t n;
} list;

static char g_bytes[256][3];

static void split(const uint8_t *p, size_t n, list *l)
{
    while (n > 0 && l->n < MAX_LIST + 256) {
        const uint8_t *q = memchr(p, 0x01, n);
        size_t k = q ? (size_t)(q - p) : n;
        if (k) { /* empty entries would become "[EMPTY_<id>]" */
            l->s[l->n] = (const char *)p;
            l->len[l->n++] = k;
        }
        if (!q)
            break;
        n -= k + 1;
        p = q + 1;
    }
}

static int32_t find(const list *v, const char *s, size_t n)
{
    for (size_t i = 0; i < v->n; i++)
        if (v->len[i] == n && memcmp(v->s[i], s, n) == 0)
            return (int32_t)i;
    return -1;
}

/* llama.cpp's rank: merge "first second", split at the first ' ' after byte 0. */
static int32_t rank(const list *m, const char *a, size_t an, const char *b, size_t bn)
{
    for (size_t i = 0; i < m->n; i++) {
        const char *s = m->s[i], *sp = m->len[i] > 1 ? memchr(s + 1, ' ', m->len[i] - 1) : NULL;
        if (sp && (size_t)(sp - s) == an && m->len[i] - an - 1 == bn && memcmp(s, a, an) == 0 &&
            memcmp(sp + 1, b, bn) == 0)
            return (int32_t)i;
    }
    return -1;
}

/* The slow reference of one word; appends ids to out. */
static size_t reference_word(const list *v, const list *m, bool ignore, const char *w, size_t n, int32_t *out)
{
    size_t start[600], len[600], ns = 0, no = 0;
    if (ignore && find(v, w, n) >= 0) {
        out[0] = find(v, w, n);
        return 1;
    }
    for (size_t off = 0; off < n && ns < 600;) {
        size_t l = tok_utf8_len_((uint8_t)w[off]);
        l = l < n - off ? l : n - off;
        start[ns] = off;
        len[ns++] = l;
        off += l;
    }
    for (;;) {
        int32_t best = -1;
        size_t at = 0;
        for (size_t i = 0; i + 1 < ns; i++) {
            int32_t r = rank(m, w + start[i], len[i], w + start[i + 1], len[i + 1]);
            if (r >= 0 && (best < 0 || r < best)) {
                best = r;
                at = i;
            }
        }
        if (best < 0)
            break;
        len[at] += len[at + 1];
        memmove(start + at + 1, start + at + 2, (ns - at - 2) * sizeof *start);
        memmove(len + at + 1, len + at + 2, (ns - at - 2) * sizeof *len);
        ns--;
    }
    for (size_t i = 0; i < ns; i++) {
        int32_t id = find(v, w + start[i], len[i]);
        if (id >= 0) {
            out[no++] = id;
            continue;
        }
        for (size_t j = 0; j < len[i]; j++)
            if ((id = find(v, w + start[i] + j, 1)) >= 0)
                out[no++] = id;
    }
    return no;
}

/* Word invariant and the reference merge, on a tokenizer without special tokens. */
static void check_words(const tok_model *t, const list *v, const list *m, const char *text, size_t len,
                        const int32_t *ids, size_t n_ids)
{
    tok_words w = {0};
    char msg[TOK_MSG_SIZE];
    tok_error e = tok_pretok_split_(t->pretok, text, len, &w, msg);
    if (e) {
        FZ_CHECK(e == TOK_ERR_LIMIT);
        tok_words_free_(&w);
        return;
    }
    /* joined words == the decoded text, each byte as its GPT-2 character */
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        char u[4], b[2];
        size_t ul = tok_utf8_encode_(tok_utf8_decode_(text, len, &i), u);
        for (size_t j = 0; j < ul; j++) {
            size_t bl = tok_byte_to_utf8_((uint8_t)u[j], b);
            FZ_CHECK(o + bl <= w.len && memcmp(w.buf + o, b, bl) == 0);
            o += bl;
        }
    }
    FZ_CHECK(o == w.len && (w.n == 0 || w.end[w.n - 1] == w.len));
    for (size_t i = 0; i < w.n; i++)
        FZ_CHECK(w.end[i] > (i ? w.end[i - 1] : 0));
    if (len <= 64 && m->n <= 128) {
        int32_t ref[64 * 8 + 8];
        size_t nr = 0;
        bool ignore = t->pre->flags & TOK_PRE_IGNORE_MERGES;
        for (size_t i = 0; i < w.n; i++) {
            size_t a = i ? w.end[i - 1] : 0;
            nr += reference_word(v, m, ignore, w.buf + a, w.end[i] - a, ref + nr);
        }
        FZ_CHECK(nr == n_ids && (nr == 0 || memcmp(ref, ids, nr * sizeof *ref) == 0));
    }
    tok_words_free_(&w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    if (!g_bytes[1][0])
        for (int b = 0; b < 256; b++)
            g_bytes[b][tok_byte_to_utf8_((uint8_t)b, g_bytes[b])] = 0;
    const char *pre = tok_pre_name(data[0] % tok_pre_count());
    unsigned fl = data[1];
    const uint8_t *p = data + 2, *end = data + size;
    const uint8_t *z1 = memchr(p, 0, (size_t)(end - p));
    const uint8_t *z2 = z1 ? memchr(z1 + 1, 0, (size_t)(end - z1 - 1)) : NULL;
    static list v, m, mall;
    v.n = m.n = mall.n = 0;
    if (fl & 1)
        for (int b = 0; b < 256; b++) {
            v.s[v.n] = g_bytes[b];
            v.len[v.n++] = strlen(g_bytes[b]);
        }
    split(p, (size_t)((z1 ? z1 : end) - p), &v);
    if (z1)
        split(z1 + 1, (size_t)((z2 ? z2 : end) - z1 - 1), &mall);
    for (size_t i = 0; i < mall.n && m.n < MAX_LIST; i++) { /* bit 4: merges HF would accept */
        const char *s = mall.s[i], *sp = mall.len[i] > 1 ? memchr(s + 1, ' ', mall.len[i] - 1) : NULL;
        char cat[1024];
        size_t al = sp ? (size_t)(sp - s) : 0, bl = sp ? mall.len[i] - al - 1 : 0;
        if ((fl & 16) && (!sp || al + bl > sizeof cat || find(&v, s, al) < 0 || find(&v, sp + 1, bl) < 0 ||
                          (memcpy(cat, s, al), memcpy(cat + al, sp + 1, bl), find(&v, cat, al + bl) < 0)))
            continue;
        m.s[m.n] = s;
        m.len[m.n++] = mall.len[i];
    }
    const char *text = z2 ? (const char *)z2 + 1 : "";
    size_t len = z2 ? (size_t)(end - z2 - 1) : 0;
    int32_t types[MAX_LIST + 256];
    for (size_t i = 0; i < v.n; i++)
        types[i] = v.len[i] && v.s[i][0] == '<' ? TOK_CONTROL : v.len[i] && v.s[i][0] == '[' ? TOK_USER_DEFINED : TOK_NORMAL;

    tok_model *t = NULL;
    char msg[TOK_MSG_SIZE];
    msg[0] = 0;
    tok_error e = tok_create_bpe((int32_t)v.n, v.s, v.len, types, (int64_t)m.n, m.s, m.len, pre, NULL, &t, msg);
    fz_note("tok_create_bpe", e ? msg : NULL);
    if (e) {
        FZ_CHECK(t == NULL && (e == TOK_ERR_MODEL || e == TOK_ERR_NOMEM)); /* duplicate token texts */
        fz_check_msg(msg, sizeof msg);
        return 0;
    }
    unsigned flags = (fl & 2 ? TOK_PARSE_SPECIAL : 0u) | (fl & 4 && tok_bos(t) >= 0 ? TOK_ADD_BOS : 0u) |
                     (fl & 8 && tok_eos(t) >= 0 ? TOK_ADD_EOS : 0u);
    int32_t *ids = NULL;
    size_t n_ids = 0;
    e = tok_encode(t, text, len, flags, &ids, &n_ids, msg);
    fz_note("tok_encode", e ? msg : NULL);
    if (e) {
        FZ_CHECK(e == TOK_ERR_LIMIT && ids == NULL);
        fz_check_msg(msg, sizeof msg);
        tok_free(t);
        return 0;
    }
    for (size_t i = 0; i < n_ids; i++)
        FZ_CHECK(ids[i] >= 0 && ids[i] < (int32_t)v.n);
    if (flags & TOK_ADD_BOS)
        FZ_CHECK(n_ids >= 1 && ids[0] == tok_bos(t));
    if (flags & TOK_ADD_EOS)
        FZ_CHECK(n_ids >= 1 && ids[n_ids - 1] == tok_eos(t));
    int32_t *again = malloc((n_ids ? n_ids : 1) * sizeof *again);
    size_t n2 = 0;
    FZ_CHECK(again && tok_encode_into(t, text, len, flags, again, n_ids, &n2, msg) == TOK_OK);
    FZ_CHECK(n2 == n_ids && (n_ids == 0 || memcmp(again, ids, n_ids * sizeof *ids) == 0));
    free(again);

    if (t->n_special == 0 && !(flags & (TOK_ADD_BOS | TOK_ADD_EOS))) {
        check_words(t, &v, &m, text, len, ids, n_ids);
        if ((fl & 16) && (fl & 1) && tok_utf8_valid_(text, len)) { /* round trip */
            size_t cap = len + 16, dl = 0;
            char *dec = malloc(cap);
            FZ_CHECK(dec != NULL);
            for (size_t i = 0; i < n_ids; i++) {
                int64_t k = tok_piece(t, ids[i], false, dec + dl, cap - dl);
                FZ_CHECK(k >= 0 && (size_t)k <= cap - dl);
                dl += (size_t)k;
            }
            FZ_CHECK(dl == len && memcmp(dec, text, len) == 0);
            free(dec);
        }
    }
    free(ids);
    tok_free(t);
    return 0;
}
