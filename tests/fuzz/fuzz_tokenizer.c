/* libFuzzer target: the runtime's SentencePiece tokenizer (tokenizer/tokenizer.h) on arbitrary bytes.
 *
 * Input: byte 0 = flags (bit 0 BOS, bit 1 EOS, bit 2 parse special, bit 3 use vocabulary B),
 * the rest = the text.
 *   Vocabulary A: the demo model's tokenizer.model (4096-piece BPE with byte fallback), read at
 *     start-up from $QFORGE_FUZZ_VOCAB or tests/fuzz/corpus/spm/classics-7m.model next to the
 *     binary's bin-fuzz/; when neither exists, a synthetic vocabulary (byte tokens + merges).
 *   Vocabulary B: synthetic, with USER_DEFINED / CONTROL / UNUSED / empty tokens, missing byte
 *     tokens, no space prefix and the phi-3 rstrip rule.
 * Checks: ids in range; BOS/EOS where asked; tok_encode_into agrees with tok_encode and
 * reports the needed size when the buffer is short. With vocabulary A and no special parsing:
 *   - decoding the ids (specials shown) gives back " " + text, U+2581 read as a space;
 *   - for texts up to 256 bytes the ids equal a plain O(n^2) implementation of llama.cpp's
 *     SPM algorithm (highest-score merge first, ties leftmost, byte fallback), which checks
 *     the tokenizer's heap and its split-into-independent-pieces shortcut. */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tokenizer/spm_model.h"
#include "tokenizer/tokenizer.h"
#include "tests/fuzz/support.h"

static tok_model *g_a, *g_b;

/* ---- text -> id for the reference (sorted table) ---- */
typedef struct {
    const char *s;
    size_t n;
    int32_t id;
} entry;
static entry *g_tab;
static int32_t g_ntab;

static int cmp_bytes(const char *a, size_t an, const char *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    return c ? c : (an > bn) - (an < bn);
}
static int cmp_entry(const void *x, const void *y)
{
    const entry *a = x, *b = y;
    return cmp_bytes(a->s, a->n, b->s, b->n);
}
static int32_t ref_lookup(const char *s, size_t n)
{
    int32_t lo = 0, hi = g_ntab - 1;
    while (lo <= hi) {
        int32_t mid = lo + (hi - lo) / 2;
        int c = cmp_bytes(g_tab[mid].s, g_tab[mid].n, s, n);
        if (c == 0)
            return g_tab[mid].id;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

static tok_model *from_spm(const uint8_t *buf, size_t n)
{
    tok_spm_model *m = NULL;
    char msg[INP_MSG_SIZE];
    if (tok_spm_load_memory(buf, n, &m, msg) != INP_OK) {
        fprintf(stderr, "fuzz_tokenizer: vocabulary: %s\n", msg);
        return NULL;
    }
    int32_t np = (int32_t)tok_spm_n_pieces(m);
    const char **texts = malloc((size_t)np * sizeof *texts);
    size_t *lens = malloc((size_t)np * sizeof *lens);
    float *scores = malloc((size_t)np * sizeof *scores);
    int32_t *types = malloc((size_t)np * sizeof *types);
    FZ_CHECK(texts && lens && scores && types);
    for (int32_t i = 0; i < np; i++) {
        texts[i] = tok_spm_piece(m, i, &lens[i]);
        scores[i] = tok_spm_score(m, i);
        types[i] = tok_spm_token_type(m, i);
    }
    tok_model *t = NULL;
    char rmsg[TOK_MSG_SIZE];
    if (tok_create(np, texts, lens, scores, types, NULL, &t, rmsg) != TOK_OK)
        fprintf(stderr, "fuzz_tokenizer: vocabulary: %s\n", rmsg);
    free(texts);
    free(lens);
    free(scores);
    free(types);
    tok_spm_free(m);
    return t;
}

/* Byte tokens, then pieces made of pairs of common letters. */
static tok_model *synthetic(bool variant_b)
{
    enum { MAXT = 1024 };
    static char store[MAXT][16];
    const char *texts[MAXT];
    float scores[MAXT];
    int32_t types[MAXT];
    int32_t n = 0;
    const char *head[] = {"<unk>", "<s>", "</s>"};
    for (int i = 0; i < 3; i++) {
        snprintf(store[n], 16, "%s", head[i]);
        types[n] = i == 0 ? TOK_UNKNOWN : TOK_CONTROL;
        scores[n] = 0;
        n++;
    }
    for (int b = 0; b < 256; b++) {
        if (variant_b && (b % 7 == 3))
            continue; /* some bytes have no fallback token */
        snprintf(store[n], 16, "<0x%02X>", b);
        types[n] = TOK_BYTE;
        scores[n] = 0;
        n++;
    }
    const char *units[] = {"e", "t", "a", "o", "i", "n", "\xe2\x96\x81", "s", "h", "r"};
    float sc = -1;
    for (int i = 0; i < 10; i++) {
        snprintf(store[n], 16, "%s", units[i]);
        types[n] = TOK_NORMAL;
        scores[n] = sc--;
        n++;
    }
    for (int i = 0; i < 10; i++)
        for (int j = 0; j < 10; j++) {
            snprintf(store[n], 16, "%s%s", units[i], units[j]);
            types[n] = TOK_NORMAL;
            scores[n] = (float)((i * 7 + j * 3) % 11) - 20.0f; /* ties on purpose */
            n++;
        }
    for (int i = 0; i < 10; i++) {
        snprintf(store[n], 16, "%s%s%s", units[i], units[(i + 1) % 10], units[(i + 2) % 10]);
        types[n] = TOK_NORMAL;
        scores[n] = -5.0f - (float)i;
        n++;
    }
    if (variant_b) {
        const char *extra[] = {"<|user|>", "<|end|>", "</s>x", "ab", "", "[PAD7]", "<s>"};
        const int32_t ety[] = {TOK_USER_DEFINED, TOK_USER_DEFINED, TOK_CONTROL, TOK_USER_DEFINED,
                               TOK_NORMAL, TOK_UNUSED, TOK_UNDEFINED};
        for (int i = 0; i < 7; i++) {
            if (i == 6) /* "<s>" already exists: make a distinct UNDEFINED token instead */
                snprintf(store[n], 16, "<s2>");
            else
                snprintf(store[n], 16, "%s", extra[i]);
            types[n] = ety[i];
            scores[n] = -1000;
            n++;
        }
    }
    for (int32_t i = 0; i < n; i++)
        texts[i] = store[i];
    tok_options o;
    tok_default_options(&o);
    if (variant_b) {
        o.add_space_prefix = false;
        o.rstrip_special = true;
        o.add_eos = true;
    }
    tok_model *t = NULL;
    char msg[TOK_MSG_SIZE];
    if (tok_create(n, texts, NULL, scores, types, &o, &t, msg) != TOK_OK) {
        fprintf(stderr, "fuzz_tokenizer: synthetic vocabulary: %s\n", msg);
        abort();
    }
    return t;
}

static uint8_t *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    uint8_t *buf = NULL;
    size_t cap = 0, len = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 65536;
            buf = realloc(buf, cap);
            FZ_CHECK(buf != NULL);
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    fclose(f);
    *n = len;
    return buf;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char path[PATH_MAX];
    const char *env = getenv("QFORGE_FUZZ_VOCAB");
    if (env && *env) {
        snprintf(path, sizeof path, "%s", env);
    } else {
        char exe[PATH_MAX];
        ssize_t l = readlink("/proc/self/exe", exe, sizeof exe - 1);
        exe[l > 0 ? l : 0] = 0;
        char *slash = strrchr(exe, '/');
        if (slash)
            *slash = 0;
        snprintf(path, sizeof path, "%.3000s/../tests/fuzz/corpus/spm/classics-7m.model", exe);
    }
    size_t n = 0;
    uint8_t *buf = read_all(path, &n);
    if (buf) {
        g_a = from_spm(buf, n);
        free(buf);
    }
    if (!g_a) {
        fprintf(stderr, "fuzz_tokenizer: %s not usable; vocabulary A is synthetic\n", path);
        g_a = synthetic(false);
    }
    g_b = synthetic(true);
    g_ntab = tok_n_tokens(g_a);
    g_tab = malloc((size_t)g_ntab * sizeof *g_tab);
    FZ_CHECK(g_tab != NULL);
    for (int32_t i = 0; i < g_ntab; i++) {
        g_tab[i].s = tok_text(g_a, i, &g_tab[i].n);
        g_tab[i].id = i;
    }
    qsort(g_tab, (size_t)g_ntab, sizeof *g_tab, cmp_entry);
    return 0;
}

/* llama.cpp's SPM session, the slow obvious way, on s[0..n) (already escaped). Appends to out. */
static size_t reference(const char *s, size_t n, int32_t *out)
{
    static const uint8_t ulen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    size_t start[1024], len[1024], ns = 0, no = 0;
    for (size_t off = 0; off < n;) {
        size_t l = ulen[(uint8_t)s[off] >> 4];
        if (l > n - off)
            l = n - off;
        start[ns] = off;
        len[ns++] = l;
        off += l;
    }
    /* symbols stay in position order; a merge removes the right one */
    for (;;) {
        size_t best = SIZE_MAX;
        float best_score = 0;
        for (size_t i = 0; i + 1 < ns; i++) {
            int32_t id = ref_lookup(s + start[i], len[i] + len[i + 1]);
            if (id < 0)
                continue;
            float sc = tok_score(g_a, id);
            if (best == SIZE_MAX || sc > best_score) {
                best = i;
                best_score = sc;
            }
        }
        if (best == SIZE_MAX)
            break;
        len[best] += len[best + 1];
        memmove(start + best + 1, start + best + 2, (ns - best - 2) * sizeof *start);
        memmove(len + best + 1, len + best + 2, (ns - best - 2) * sizeof *len);
        ns--;
    }
    for (size_t i = 0; i < ns; i++) {
        int32_t id = ref_lookup(s + start[i], len[i]);
        if (id >= 0) {
            out[no++] = id;
            continue;
        }
        for (size_t j = 0; j < len[i]; j++) {
            char hex[8];
            snprintf(hex, sizeof hex, "<0x%02X>", (uint8_t)s[start[i] + j]);
            int32_t b = ref_lookup(hex, 6);
            if (b < 0)
                b = ref_lookup(s + start[i] + j, 1);
            out[no++] = b; /* -1 when the byte has no token: the tokenizer must fail then */
        }
    }
    return no;
}

/* Replace every U+2581 by ' ' in place; returns the new length. */
static size_t unescape(char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (i + 2 < n && (uint8_t)s[i] == 0xe2 && (uint8_t)s[i + 1] == 0x96 && (uint8_t)s[i + 2] == 0x81) {
            s[o++] = ' ';
            i += 2;
        } else {
            s[o++] = s[i];
        }
    }
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned sel = data[0];
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    unsigned flags = (sel & 1 ? TOK_ADD_BOS : 0u) | (sel & 2 ? TOK_ADD_EOS : 0u) |
                     (sel & 4 ? TOK_PARSE_SPECIAL : 0u);
    const tok_model *t = sel & 8 ? g_b : g_a;
    int32_t nt = tok_n_tokens(t);
    int32_t *ids = NULL;
    size_t n_ids = 0;
    char msg[TOK_MSG_SIZE];
    msg[0] = 0;
    tok_error e = tok_encode(t, text, len, flags, &ids, &n_ids, msg);
    if (e != TOK_OK) {
        FZ_CHECK(ids == NULL && n_ids == 0);
        FZ_CHECK(e == TOK_ERR_MODEL && t == g_b); /* only B lacks byte tokens */
        fz_check_msg(msg, sizeof msg);
        return 0;
    }
    for (size_t i = 0; i < n_ids; i++)
        FZ_CHECK(ids[i] >= 0 && ids[i] < nt);
    if (flags & TOK_ADD_BOS)
        FZ_CHECK(n_ids >= 1 && ids[0] == tok_bos(t));
    if (flags & TOK_ADD_EOS)
        FZ_CHECK(n_ids >= 1 && ids[n_ids - 1] == tok_eos(t));

    /* encode_into: same ids; a short buffer reports the size needed */
    int32_t *again = malloc((n_ids ? n_ids : 1) * sizeof *again);
    FZ_CHECK(again != NULL);
    size_t n2 = 0;
    FZ_CHECK(tok_encode_into(t, text, len, flags, again, n_ids, &n2, msg) == TOK_OK);
    FZ_CHECK(n2 == n_ids && (n_ids == 0 || memcmp(again, ids, n_ids * sizeof *ids) == 0));
    if (n_ids > 0) {
        FZ_CHECK(tok_encode_into(t, text, len, flags, again, n_ids - 1, &n2, msg) == TOK_ERR_ARG);
        FZ_CHECK(n2 == n_ids);
    }
    free(again);

    if (t == g_a && !(flags & TOK_PARSE_SPECIAL)) {
        size_t lo = (flags & TOK_ADD_BOS) ? 1 : 0, hi = n_ids - ((flags & TOK_ADD_EOS) ? 1 : 0);
        /* round trip */
        size_t cap = 3 * len + 16, dl = 0;
        char *dec = malloc(cap);
        FZ_CHECK(dec != NULL);
        for (size_t i = lo; i < hi; i++) {
            int64_t k = tok_piece(t, ids[i], true, dec + dl, cap - dl);
            FZ_CHECK(k >= 0 && (size_t)k <= cap - dl);
            dl += (size_t)k;
        }
        dl = unescape(dec, dl);
        char *want = malloc(len + 2);
        FZ_CHECK(want != NULL);
        size_t wl = 0;
        if (len) {
            want[0] = ' ';
            memcpy(want + 1, text, len);
            wl = unescape(want, len + 1);
        }
        FZ_CHECK(dl == wl && memcmp(dec, want, wl) == 0);
        free(dec);
        free(want);
        /* the slow reference */
        if (len > 0 && len <= 256) {
            char esc[3 + 3 * 256];
            size_t el = 0;
            memcpy(esc, "\xe2\x96\x81", 3);
            el = 3;
            for (size_t i = 0; i < len; i++) {
                if (text[i] == ' ') {
                    memcpy(esc + el, "\xe2\x96\x81", 3);
                    el += 3;
                } else {
                    esc[el++] = text[i];
                }
            }
            int32_t ref[1024 + 3 * 256 * 4];
            size_t nr = reference(esc, el, ref);
            FZ_CHECK(nr == hi - lo);
            FZ_CHECK(memcmp(ref, ids + lo, nr * sizeof *ref) == 0);
        }
    }
    free(ids);
    return 0;
}
