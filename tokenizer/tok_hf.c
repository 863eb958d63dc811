/* tokenizer.json (byte-level BPE) -> llama.cpp's GGUF vocabulary: files, vocabulary, merges,
 * pre-tokenizer detection and the KV writer. SpecialVocab's part is in tok_hf_special.c. */
#include "common/qf_msg.h"
#include "tokenizer/tok_hf_internal.h"
#include "tokenizer/tok_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- files ---- */

tok_error tok_hf_fail_(char *msg, tok_error e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    qf_msg_vformat(msg, msg ? TOK_MSG_SIZE : 0, NULL, fmt, ap);
    va_end(ap);
    return e;
}

char *tok_hf_path_(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (p) {
        memcpy(p, dir, a);
        p[a] = '/';
        memcpy(p + a + 1, name, b + 1);
    }
    return p;
}

tok_error tok_hf_read_(const char *path, size_t cap, bool optional, char **buf, size_t *len, char *msg)
{
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (optional && errno == ENOENT)
            return TOK_OK;
        return tok_hf_fail_(msg, TOK_ERR_IO, "%s: %s", path, strerror(errno));
    }
    struct stat st;
    tok_error e = TOK_OK;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        e = tok_hf_fail_(msg, TOK_ERR_IO, "%s: not a regular file", path);
    } else if ((uint64_t)st.st_size > cap) {
        e = tok_hf_fail_(msg, TOK_ERR_LIMIT, "%s: %llu bytes, more than the cap of %zu", path,
                         (unsigned long long)st.st_size, cap);
    } else if (!(*buf = malloc((size_t)st.st_size + 1))) {
        e = tok_hf_fail_(msg, TOK_ERR_NOMEM, "%s: out of memory", path);
    } else if (fread(*buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
        e = tok_hf_fail_(msg, TOK_ERR_IO, "%s: read failed", path);
    } else {
        (*buf)[st.st_size] = 0;
        *len = (size_t)st.st_size;
    }
    fclose(f);
    if (e) {
        free(*buf);
        *buf = NULL;
    }
    return e;
}

tok_error tok_hf_note_file_(tok_hf *h, const char *path, char *msg)
{
    char **p = realloc(h->file, (h->n_file + 1) * sizeof *p);
    if (!p || !(p[h->n_file] = strdup(path))) {
        if (p)
            h->file = p;
        return tok_hf_fail_(msg, TOK_ERR_NOMEM, "out of memory");
    }
    h->file = p;
    h->n_file++;
    return TOK_OK;
}

tok_error tok_hf_json_(tok_hf *h, const char *path, size_t cap, bool optional, json_t **out, char *msg)
{
    char *buf;
    size_t len;
    *out = NULL;
    tok_error e = tok_hf_read_(path, cap, optional, &buf, &len, msg);
    if (e || !buf)
        return e;
    json_error_t je;
    *out = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    if (!*out && json_error_code(&je) == json_error_numeric_overflow && cap == TOK_HF_MAX_SMALL_JSON) {
        /* Python reads any integer (tokenizer_config's model_max_length is often 1e30 written
         * out): read the small files again with numbers as reals; ids stay exact below 2^53 */
        *out = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &je);
        if (*out)
            h->real_ints |= 1u << (strstr(path, "/config.json") ? 1 : 0);
    }
    free(buf);
    if (!*out)
        return tok_hf_fail_(msg, TOK_ERR_FORMAT, "%s:%d:%d: %s", path, je.line, je.column, je.text);
    if ((e = tok_hf_note_file_(h, path, msg)) != TOK_OK) {
        json_decref(*out);
        *out = NULL;
    }
    return e;
}

bool tok_hf_truthy_(const json_t *j)
{
    if (!j)
        return false;
    switch (json_typeof(j)) {
    case JSON_OBJECT: return json_object_size(j) > 0;
    case JSON_ARRAY: return json_array_size(j) > 0;
    case JSON_STRING: return json_string_length(j) > 0;
    case JSON_INTEGER: return json_integer_value(j) != 0;
    case JSON_REAL: return json_real_value(j) != 0.0;
    case JSON_TRUE: return true;
    default: return false;
    }
}

/* ---- string arena: offsets while growing, pointers once complete ---- */

static bool arena_add(tok_hf *h, const char *s, size_t n, size_t *off)
{
    if (h->arena_len + n + 1 > h->arena_cap) {
        size_t c = h->arena_cap ? h->arena_cap : 1 << 20;
        while (c < h->arena_len + n + 1)
            c *= 2;
        char *p = realloc(h->arena, c);
        if (!p)
            return false;
        h->arena = p;
        h->arena_cap = c;
    }
    *off = h->arena_len;
    memcpy(h->arena + h->arena_len, s, n);
    h->arena[h->arena_len + n] = 0;
    h->arena_len += n + 1;
    return true;
}

void tok_hf_free(tok_hf *h)
{
    if (!h)
        return;
    free(h->dir);
    free(h->text);
    free(h->type);
    free(h->merge);
    free(h->arena);
    for (size_t i = 0; i < h->n_tmpl; i++) {
        free(h->tmpl[i].name);
        free(h->tmpl[i].text);
    }
    free(h->tmpl);
    for (size_t i = 0; i < h->n_file; i++)
        free(h->file[i]);
    free(h->file);
    free(h);
}

/* ---- the model: checks, vocabulary ---- */

/* A ByteLevel pre-tokenizer anywhere in a Sequence, or a ByteLevel decoder. */
static bool has_byte_level(const json_t *pt, int depth)
{
    if (!json_is_object(pt) || depth > 16)
        return false;
    const char *type = json_string_value(json_object_get(pt, "type"));
    if (type && strcmp(type, "ByteLevel") == 0)
        return true;
    const json_t *seq = json_object_get(pt, "pretokenizers");
    if (!seq)
        seq = json_object_get(pt, "decoders");
    for (size_t i = 0; json_is_array(seq) && i < json_array_size(seq); i++)
        if (has_byte_level(json_array_get(seq, i), depth + 1))
            return true;
    return false;
}

static tok_error check_model(const char *path, const json_t *root, const json_t **model, char *msg)
{
    if (!json_is_object(root))
        return tok_hf_fail_(msg, TOK_ERR_FORMAT, "%s: not a JSON object", path);
    const json_t *m = json_object_get(root, "model");
    if (!json_is_object(m))
        return tok_hf_fail_(msg, TOK_ERR_FORMAT, "%s: \"model\" is missing or not an object", path);
    const json_t *type = json_object_get(m, "type");
    if (type && (!json_is_string(type) || strcmp(json_string_value(type), "BPE") != 0))
        return tok_hf_fail_(msg, TOK_ERR_UNSUPPORTED, "%s: model type %.32s%s%s is not supported (byte-level BPE only)",
                            path, json_is_string(type) ? "'" : "", json_is_string(type) ? json_string_value(type) : "(not a string)",
                            json_is_string(type) ? "'" : "");
    if (json_is_true(json_object_get(m, "byte_fallback")))
        return tok_hf_fail_(msg, TOK_ERR_UNSUPPORTED,
                            "%s: a BPE with byte_fallback (SentencePiece style) is not a byte-level BPE; convert it "
                            "from tokenizer.model", path);
    if (!has_byte_level(json_object_get(root, "pre_tokenizer"), 0) &&
        !has_byte_level(json_object_get(root, "decoder"), 0))
        return tok_hf_fail_(msg, TOK_ERR_UNSUPPORTED,
                            "%s: no ByteLevel pre-tokenizer or decoder: not a byte-level BPE tokenizer", path);
    *model = m;
    return TOK_OK;
}

/* Token id -> text and added-token flags, before V is known. */
typedef struct {
    const char **by_id;   /* [cap] */
    uint8_t *added;       /* [cap]: 1 added, 2 added and special */
    int64_t cap, max_id, count;
} id_table;

static tok_error read_vocab(const char *path, const json_t *model, id_table *t, char *msg)
{
    const json_t *vocab = json_object_get(model, "vocab");
    if (!json_is_object(vocab))
        return tok_hf_fail_(msg, TOK_ERR_FORMAT, "%s: model.vocab is missing or not an object", path);
    if (json_object_size(vocab) > TOK_MAX_TOKENS)
        return tok_hf_fail_(msg, TOK_ERR_LIMIT, "%s: %zu vocab entries, more than the cap of %d", path,
                            json_object_size(vocab), TOK_MAX_TOKENS);
    const char *k;
    json_t *v;
    t->max_id = -1;
    json_object_foreach((json_t *)vocab, k, v) {
        if (!json_is_integer(v))
            return tok_hf_fail_(msg, TOK_ERR_FORMAT, "%s: vocab entry '%.64s' has no integer id", path, k);
        json_int_t id = json_integer_value(v);
        if (id < 0)
            return tok_hf_fail_(msg, TOK_ERR_FORMAT, "%s: vocab entry '%.64s' has the negative id %" JSON_INTEGER_FORMAT,
                                path, k, id);
        if (id >= TOK_MAX_TOKENS)
            return tok_hf_fail_(msg, TOK_ERR_LIMIT, "%s: vocab id %" JSON_INTEGER_FORMAT " is beyond the cap of %d",
                                path, id, TOK_MAX_TOKENS);
        size_t l = strlen(k);
        if (l == 0)
            return tok_hf_fail_(msg, TOK_ERR_MODEL, "%s: vocab id %" JSON_INTEGER_FORMAT " has an empty text", path, id);
        if (l > TOK_HF_MAX_TOKEN_LEN)
            return tok_hf_fail_(msg, TOK_ERR_LIMIT, "%s: vocab id %" JSON_INTEGER_FORMAT " has %zu bytes, more than %u",
                                path, id, l, TOK_HF_MAX_TOKEN_LEN);
        if (id > t->max_id)
            t->max_id = id;
    }
    return TOK_OK;
}

static tok_error fill_vocab(const char *path, const json_t *model, id_table *t, char *msg)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)json_object_get(model, "vocab"), k, v) {
        int64_t id = json_integer_value(v);
        if (t->by_id[id])
            return tok_hf_fail_(msg, TOK_ERR_MODEL, "%s: id %" PRId64 " is given to both '%.64s' and '%.64s'", path, id,
                                t->by_id[id], k);
        t->by_id[id] = k;
        t->count++;
    }
    return TOK_OK;
}

/* added_tokens: [{id, content, special, ...}]; ids may extend the table. */
static tok_error read_added(const char *path, const json_t *root, const json_t *model, id_table *t, char *msg)
{
    const json_t *added = json_object_get(root, "added_tokens");
    if (!added || json_is_null(added))
        return TOK_OK;
    if (!json_is_array(added))
        return tok_hf_fail_(msg, TOK_ERR_FORMAT, "%s: added_tokens is not an array", path);
    const json_t *vocab = json_object_get(model, "vocab");
    for (size_t i = 0; i < json_array_size(added); i++) {
        const json_t *a = json_array_get(added, i), *id = json_object_get(a, "id"), *c = json_object_get(a, "content");
        if (!json_is_object(a) || !json_is_integer(id) || !json_is_string(c))
            return tok_hf_fail_(msg, TOK_ERR_FORMAT, "%s: added_tokens[%zu] lacks an integer id or a content string",
                                path, i);
        json_int_t n = json_integer_value(id);
        const char *s = json_string_value(c);
        size_t l = json_string_length(c);
        if (n < 0 || n >= TOK_MAX_TOKENS)
            return tok_hf_fail_(msg, n < 0 ? TOK_ERR_FORMAT : TOK_ERR_LIMIT,
                                "%s: added token '%.64s' has the id %" JSON_INTEGER_FORMAT ", outside 0..%d", path, s, n,
                                TOK_MAX_TOKENS - 1);
        if (l == 0 || l > TOK_HF_MAX_TOKEN_LEN || strlen(s) != l)
            return tok_hf_fail_(msg, l > TOK_HF_MAX_TOKEN_LEN ? TOK_ERR_LIMIT : TOK_ERR_MODEL,
                                "%s: added token %" JSON_INTEGER_FORMAT " has an empty, over-long or NUL-holding text",
                                path, n);
        const json_t *vid = json_object_get(vocab, s);
        if (vid && json_integer_value(vid) != n)
            return tok_hf_fail_(msg, TOK_ERR_MODEL, "%s: token '%.64s' has ids %" JSON_INTEGER_FORMAT " and %" JSON_INTEGER_FORMAT,
                                path, s, json_integer_value(vid), n);
        if (n < t->cap && t->by_id[n] && strcmp(t->by_id[n], s) != 0)
            return tok_hf_fail_(msg, TOK_ERR_MODEL, "%s: id %" JSON_INTEGER_FORMAT " is given to both '%.64s' and '%.64s'",
                                path, n, t->by_id[n], s);
        if (n >= t->cap) {
            int64_t cap = t->cap;
            while (cap <= n)
                cap *= 2;
            if (cap > TOK_MAX_TOKENS)
                cap = TOK_MAX_TOKENS;
            const char **b = realloc(t->by_id, (size_t)cap * sizeof *b);
            uint8_t *ad = b ? realloc(t->added, (size_t)cap) : NULL;
            if (b)
                t->by_id = b;
            if (!ad)
                return tok_hf_fail_(msg, TOK_ERR_NOMEM, "%s: out of memory", path);
            t->added = ad;
            memset(t->by_id + t->cap, 0, (size_t)(cap - t->cap) * sizeof *b);
            memset(t->added + t->cap, 0, (size_t)(cap - t->cap));
            t->cap = cap;
        }
        if (!t->by_id[n]) {
            t->by_id[n] = s;
            t->count++;
        }
        if (n > t->max_id)
            t->max_id = n;
        t->added[n] = json_is_true(json_object_get(a, "special")) ? 2 : 1;
    }
    /* the same text twice among the added tokens */
    json_t *seen = json_object();
    if (!seen)
        return tok_hf_fail_(msg, TOK_ERR_NOMEM, "%s: out of memory", path);
    tok_error e = TOK_OK;
    for (size_t i = 0; i < json_array_size(added) && !e; i++) {
        const json_t *a = json_array_get(added, i);
        const char *s = json_string_value(json_object_get(a, "content"));
        json_int_t n = json_integer_value(json_object_get(a, "id"));
        const json_t *prev = json_object_get(seen, s);
        if (prev && json_integer_value(prev) != n)
            e = tok_hf_fail_(msg, TOK_ERR_MODEL, "%s: added token '%.64s' has ids %" JSON_INTEGER_FORMAT " and %" JSON_INTEGER_FORMAT,
                             path, s, json_integer_value(prev), n);
        else if (json_object_set_new(seen, s, json_integer(n)) != 0)
            e = tok_hf_fail_(msg, TOK_ERR_NOMEM, "%s: out of memory", path);
    }
    json_decref(seen);
    return e;
}

/* convert_hf_to_gguf's does_token_look_special. */
static bool looks_special(const char *s)
{
    size_t n = strlen(s);
    static const char *const exact[] = {"<pad>", "<mask>", "<2mass>", "[@BOS@]"};
    for (size_t i = 0; i < 4; i++)
        if (strcmp(s, exact[i]) == 0)
            return true;
    static const char *const pairs[][2] = {
        {"<|", "|>"}, {"<\xef\xbd\x9c", "\xef\xbd\x9c>"}, {"<unused", ">"}};
    for (size_t i = 0; i < 3; i++) {
        size_t a = strlen(pairs[i][0]), b = strlen(pairs[i][1]);
        if (n >= a && n >= b && memcmp(s, pairs[i][0], a) == 0 && memcmp(s + n - b, pairs[i][1], b) == 0)
            return true;
    }
    return false;
}

/* get_vocab_base: V texts and types. */
static tok_error build_tokens(tok_hf *h, const char *path, const id_table *t, int64_t V, char *msg)
{
    size_t *off = malloc((size_t)(V ? V : 1) * sizeof *off);
    h->type = malloc((size_t)(V ? V : 1) * sizeof *h->type);
    h->text = malloc((size_t)(V ? V : 1) * sizeof *h->text);
    if (!off || !h->type || !h->text) {
        free(off);
        return tok_hf_fail_(msg, TOK_ERR_NOMEM, "%s: out of memory for %" PRId64 " tokens", path, V);
    }
    for (int64_t i = 0; i < V; i++) {
        const char *s = i < t->cap ? t->by_id[i] : NULL;
        char pad[32];
        bool ok;
        if (!s) {
            snprintf(pad, sizeof pad, "[PAD%" PRId64 "]", i);
            ok = arena_add(h, pad, strlen(pad), &off[i]);
            h->type[i] = TOK_UNUSED;
        } else if (!t->added[i]) {
            ok = arena_add(h, s, strlen(s), &off[i]);
            h->type[i] = TOK_NORMAL;
        } else if (t->added[i] == 2 || looks_special(s)) {
            ok = arena_add(h, s, strlen(s), &off[i]);
            h->type[i] = TOK_CONTROL;
        } else { /* user-defined: U+2581 written as ' ' */
            size_t n = strlen(s), o = 0;
            char *u = malloc(n + 1);
            if (!u) {
                free(off);
                return tok_hf_fail_(msg, TOK_ERR_NOMEM, "%s: out of memory", path);
            }
            for (size_t j = 0; j < n; j++) {
                if (j + 2 < n && memcmp(s + j, "\xe2\x96\x81", 3) == 0) {
                    u[o++] = ' ';
                    j += 2;
                } else {
                    u[o++] = s[j];
                }
            }
            ok = arena_add(h, u, o, &off[i]);
            free(u);
            h->type[i] = TOK_USER_DEFINED;
        }
        if (!ok) {
            free(off);
            return tok_hf_fail_(msg, TOK_ERR_NOMEM, "%s: out of memory for the token texts", path);
        }
    }
    for (int64_t i = 0; i < V; i++)
        h->text[i] = (char *)(uintptr_t)off[i]; /* pointers once the arena stops moving */
    free(off);
    h->n = V;
    return TOK_OK;
}

/* ---- merges ---- */

/* One merge as its two parts; the string form splits at its only ' '. */
static tok_error merge_parts(const char *path, size_t i, const json_t *m, bool string_form, const char **a, size_t *al,
                             const char **b, size_t *bl, char *msg)
{
    if (string_form) {
        if (!json_is_string(m))
            return tok_hf_fail_(msg, TOK_ERR_FORMAT, "%s: merges[%zu] is not a string like the first merge", path, i);
        const char *s = json_string_value(m);
        size_t n = json_string_length(m);
        const char *sp = memchr(s, ' ', n);
        if (!sp || memchr(sp + 1, ' ', n - (size_t)(sp - s) - 1) || strlen(s) != n)
            return tok_hf_fail_(msg, TOK_ERR_FORMAT, "%s: merges[%zu] '%.64s' is not two parts separated by one space",
                                path, i, s);
        *a = s;
        *al = (size_t)(sp - s);
        *b = sp + 1;
        *bl = n - *al - 1;
        return TOK_OK;
    }
    if (!json_is_array(m) || json_array_size(m) != 2 || !json_is_string(json_array_get(m, 0)) ||
        !json_is_string(json_array_get(m, 1)))
        return tok_hf_fail_(msg, TOK_ERR_FORMAT, "%s: merges[%zu] is not a pair of strings like the first merge", path, i);
    *a = json_string_value(json_array_get(m, 0));
    *al = json_string_length(json_array_get(m, 0));
    *b = json_string_value(json_array_get(m, 1));
    *bl = json_string_length(json_array_get(m, 1));
    if (strlen(*a) != *al || strlen(*b) != *bl)
        return tok_hf_fail_(msg, TOK_ERR_FORMAT, "%s: merges[%zu] holds a NUL character", path, i);
    return TOK_OK;
}

/* part into out with each ' ' as U+0120 when escape (gguf-py's encoding of the pair form). */
static size_t put_part(char *out, const char *s, size_t n, bool escape)
{
    size_t o = 0;
    for (size_t j = 0; j < n; j++) {
        if (escape && s[j] == ' ') {
            out[o++] = '\xc4';
            out[o++] = '\xa0';
        } else {
            out[o++] = s[j];
        }
    }
    return o;
}

static tok_error read_merges(tok_hf *h, const char *path, const json_t *model, char *msg)
{
    const json_t *merges = json_object_get(model, "merges"), *vocab = json_object_get(model, "vocab");
    if (!json_is_array(merges))
        return tok_hf_fail_(msg, TOK_ERR_FORMAT, "%s: model.merges is missing or not an array", path);
    size_t n = json_array_size(merges);
    if (n == 0) /* the converter would write a file without merges, which llama.cpp cannot load */
        return tok_hf_fail_(msg, TOK_ERR_MODEL, "%s: model.merges is empty: a BPE vocabulary needs merges", path);
    if (n > TOK_MAX_MERGES)
        return tok_hf_fail_(msg, TOK_ERR_LIMIT, "%s: %zu merges, more than the cap of %d", path, n, TOK_MAX_MERGES);
    const char *pfx = json_string_value(json_object_get(model, "continuing_subword_prefix"));
    size_t pl = pfx ? strlen(pfx) : 0;
    bool string_form = n > 0 && json_is_string(json_array_get(merges, 0));
    size_t *off = malloc((n ? n : 1) * sizeof *off);
    char *cat = malloc(2 * TOK_HF_MAX_TOKEN_LEN + 1), *line = malloc(4 * TOK_HF_MAX_TOKEN_LEN + 2);
    tok_error e = TOK_OK;
    if (!off || !cat || !line) {
        e = tok_hf_fail_(msg, TOK_ERR_NOMEM, "%s: out of memory for %zu merges", path, n);
        goto out;
    }
    for (size_t i = 0; i < n && !e; i++) {
        const char *a = NULL, *b = NULL;
        size_t al = 0, bl = 0;
        if ((e = merge_parts(path, i, json_array_get(merges, i), string_form, &a, &al, &b, &bl, msg)) != TOK_OK)
            break;
        if (al > TOK_HF_MAX_TOKEN_LEN || bl > TOK_HF_MAX_TOKEN_LEN) {
            e = tok_hf_fail_(msg, TOK_ERR_LIMIT, "%s: merges[%zu] has a part longer than %u bytes", path, i,
                             TOK_HF_MAX_TOKEN_LEN);
            break;
        }
        memcpy(cat, a, al);
        cat[al] = 0;
        if (!json_object_get(vocab, cat)) {
            e = tok_hf_fail_(msg, TOK_ERR_MODEL, "%s: merges[%zu] names '%.64s', which is not in the vocab", path, i, cat);
            break;
        }
        memcpy(cat, b, bl);
        cat[bl] = 0;
        if (!json_object_get(vocab, cat)) {
            e = tok_hf_fail_(msg, TOK_ERR_MODEL, "%s: merges[%zu] names '%.64s', which is not in the vocab", path, i, cat);
            break;
        }
        size_t skip = pl && bl >= pl && memcmp(b, pfx, pl) == 0 ? pl : 0; /* Hugging Face drops the prefix */
        memcpy(cat, a, al);
        memcpy(cat + al, b + skip, bl - skip);
        cat[al + bl - skip] = 0;
        if (!json_object_get(vocab, cat)) {
            e = tok_hf_fail_(msg, TOK_ERR_MODEL, "%s: merges[%zu] makes '%.64s', which is not in the vocab", path, i, cat);
            break;
        }
        size_t ll = put_part(line, a, al, !string_form);
        line[ll++] = ' ';
        ll += put_part(line + ll, b, bl, !string_form);
        if (!arena_add(h, line, ll, &off[i])) {
            e = tok_hf_fail_(msg, TOK_ERR_NOMEM, "%s: out of memory for the merges", path);
            break;
        }
    }
    if (!e) {
        if (!(h->merge = malloc((n ? n : 1) * sizeof *h->merge))) {
            e = tok_hf_fail_(msg, TOK_ERR_NOMEM, "%s: out of memory for the merges", path);
        } else {
            for (size_t i = 0; i < n; i++)
                h->merge[i] = (char *)(uintptr_t)off[i];
            h->n_merges = (int64_t)n;
        }
    }
out:
    free(off);
    free(cat);
    free(line);
    return e;
}

/* Arena offsets -> pointers (the arena no longer moves). */
static void fix_pointers(tok_hf *h)
{
    for (int64_t i = 0; i < h->n; i++)
        h->text[i] = h->arena + (uintptr_t)h->text[i];
    for (int64_t i = 0; i < h->n_merges; i++)
        h->merge[i] = h->arena + (uintptr_t)h->merge[i];
}

/* ---- pre-tokenizer detection ---- */

static void sha256_hex(const char *s, size_t n, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int ml = 0;
    if (!EVP_Digest(s, n, md, &ml, EVP_sha256(), NULL) || ml != 32) {
        out[0] = 0;
        return;
    }
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* SHA-256 of the Python repr of pre + ids + post ("[1, 2, 3]"). */
static bool ids_hash(const int32_t *pre, size_t np, const int32_t *ids, size_t n, const int32_t *post, size_t npost,
                     char out[65])
{
    size_t total = np + n + npost;
    char *s = malloc(total * 13 + 3), *p = s;
    if (!s)
        return false;
    *p++ = '[';
    for (size_t i = 0; i < total; i++) {
        int32_t v = i < np ? pre[i] : i < np + n ? ids[i - np] : post[i - np - n];
        p += sprintf(p, "%s%" PRId32, i ? ", " : "", v);
    }
    *p++ = ']';
    sha256_hex(s, (size_t)(p - s), out);
    free(s);
    return true;
}

/* Token id of a special token text or {"content": text}, -1 if not a token. */
static int32_t token_id_of(const tok_hf *h, const tok_model *t, const json_t *entry)
{
    const char *s = json_is_string(entry) ? json_string_value(entry)
                    : json_is_object(entry) ? json_string_value(json_object_get(entry, "content")) : NULL;
    (void)h;
    return s ? tok_lookup_(t, s, strlen(s)) : -1;
}

/* What Hugging Face's encode adds around the ids: LlamaTokenizerFast's add_bos/add_eos, else
 * the post-processor's TemplateProcessing (leading/trailing special tokens of "single") or
 * Roberta/BertProcessing (cls ... sep). At most 8 ids each side. */
static void hf_added(const tok_hf *h, const tok_model *t, const json_t *root, const json_t *tc, int32_t *pre,
                     size_t *np, int32_t *post, size_t *npost)
{
    *np = *npost = 0;
    const char *cls = json_string_value(json_object_get(tc, "tokenizer_class"));
    if (cls && (strstr(cls, "LlamaTokenizer") || strstr(cls, "GemmaTokenizer"))) {
        const json_t *ab = json_object_get(tc, "add_bos_token"), *ae = json_object_get(tc, "add_eos_token");
        int32_t b = token_id_of(h, t, json_object_get(tc, "bos_token")), e = token_id_of(h, t, json_object_get(tc, "eos_token"));
        if (!json_is_false(ab) && b >= 0)
            pre[(*np)++] = b;
        if (json_is_true(ae) && e >= 0)
            post[(*npost)++] = e;
        return;
    }
    const json_t *pp = json_object_get(root, "post_processor");
    const json_t *list = json_object_get(pp, "processors");
    size_t n = json_is_array(list) ? json_array_size(list) : 1;
    for (size_t k = 0; k < n; k++) {
        const json_t *p = json_is_array(list) ? json_array_get(list, k) : pp;
        const char *type = json_string_value(json_object_get(p, "type"));
        if (!type)
            continue;
        if (strcmp(type, "RobertaProcessing") == 0 || strcmp(type, "BertProcessing") == 0) {
            const json_t *c = json_array_get(json_object_get(p, "cls"), 1), *s = json_array_get(json_object_get(p, "sep"), 1);
            if (json_is_integer(c) && *np < 8)
                pre[(*np)++] = (int32_t)json_integer_value(c);
            if (json_is_integer(s) && *npost < 8)
                post[(*npost)++] = (int32_t)json_integer_value(s);
        }
        if (strcmp(type, "TemplateProcessing") != 0)
            continue;
        const json_t *single = json_object_get(p, "single"), *sp = json_object_get(p, "special_tokens");
        bool seen_seq = false;
        for (size_t i = 0; json_is_array(single) && i < json_array_size(single); i++) {
            const json_t *it = json_array_get(single, i);
            if (json_object_get(it, "Sequence")) {
                seen_seq = true;
                continue;
            }
            const char *id = json_string_value(json_object_get(json_object_get(it, "SpecialToken"), "id"));
            const json_t *ids = id ? json_object_get(json_object_get(sp, id), "ids") : NULL;
            for (size_t j = 0; json_is_array(ids) && j < json_array_size(ids); j++) {
                const json_t *v = json_array_get(ids, j);
                if (!json_is_integer(v))
                    continue;
                if (!seen_seq && *np < 8)
                    pre[(*np)++] = (int32_t)json_integer_value(v);
                else if (seen_seq && *npost < 8)
                    post[(*npost)++] = (int32_t)json_integer_value(v);
            }
        }
    }
}

/* get_vocab_base_pre with qforge's tokenizer: each distinct pre-tokenizer of the table tokenizes
 * the check text; the first whose ids hash to a known tokenizer of that same pre-tokenizer wins. */
static tok_error detect_pre(tok_hf *h, const char *path, const json_t *root, const json_t *tc, char *msg)
{
    tok_model *t;
    tok_error e = tok_hf_tokenizer(h, &t, msg);
    if (e)
        return e;
    /* the id lists tried, in order: tokenizer_config's bos_token first (transformers 5 adds it for
     * Llama-family checkpoints whatever the post-processor says, and llama.cpp's llama-bpe hash
     * has it), then the post-processor's / LlamaTokenizerFast's additions, then the bare ids */
    int32_t pre[3][8], post[3][8];
    size_t np[3] = {0, 0, 0}, npost[3] = {0, 0, 0}, nv = 0;
    int32_t bos = token_id_of(h, t, json_object_get(tc, "bos_token"));
    if (bos >= 0) {
        pre[0][0] = bos;
        np[nv++] = 1;
    }
    hf_added(h, t, root, tc, pre[nv], &np[nv], post[nv], &npost[nv]);
    nv++;
    nv++; /* bare: np = npost = 0 */
    const char *text = tok_pre_check_text_;
    char first[65] = "";
    for (size_t i = 0; tok_pre_def_at_(i) && !h->pre[0]; i++) {
        const tok_pre_def *d = tok_pre_def_at_(i);
        bool done = false; /* a pre-tokenizer with the same regexes and flags was tried already */
        for (size_t j = 0; j < i && !done; j++)
            done = tok_pre_def_at_(j)->regex == d->regex &&
                   (tok_pre_def_at_(j)->flags & TOK_PRE_IGNORE_MERGES) == (d->flags & TOK_PRE_IGNORE_MERGES);
        if (done)
            continue;
        tok_ivec ids = {0};
        if ((e = tok_encode_as_(t, d, text, strlen(text), &ids, msg)) != TOK_OK) {
            free(ids.v);
            break;
        }
        for (size_t v = 0; v < nv && !h->pre[0]; v++) {
            char hex[65];
            if (!ids_hash(pre[v], np[v], ids.v, ids.n, post[v], npost[v], hex)) {
                e = tok_hf_fail_(msg, TOK_ERR_NOMEM, "out of memory");
                break;
            }
            if (!first[0] && v == nv - 1 && d->regex == tok_pre_find_("llama-bpe")->regex)
                memcpy(first, hex, sizeof hex);
            const char *name = tok_pre_hash_name_(hex);
            const tok_pre_def *nd = name ? tok_pre_find_(name) : NULL;
            if (nd && nd->regex == d->regex && (nd->flags & TOK_PRE_IGNORE_MERGES) == (d->flags & TOK_PRE_IGNORE_MERGES)) {
                snprintf(h->pre, sizeof h->pre, "%s", name);
                memcpy(h->check_hash, hex, sizeof hex);
            }
        }
        free(ids.v);
        if (e)
            break;
    }
    tok_free(t);
    if (e || h->pre[0])
        return e;
    return tok_hf_fail_(msg, TOK_ERR_UNSUPPORTED,
                        "%s: unknown BPE pre-tokenizer (the check text's ids match no known tokenizer; llama-bpe regexes "
                        "give sha256 %.16s...); choose one with --tokenizer-pre NAME (e.g. llama-bpe, qwen2, gpt-2, "
                        "deepseek-v3, tekken)", path, first);
}

/* ---- load ---- */

static tok_error choose_pre(const char *name, tok_hf *h, char *msg)
{
    if (tok_pre_find_(name)) {
        snprintf(h->pre, sizeof h->pre, "%s", name);
        return TOK_OK;
    }
    char list[400] = "";
    size_t o = 0;
    for (size_t i = 0; tok_pre_name(i) && o + 40 < sizeof list; i++)
        o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", i ? ", " : "", tok_pre_name(i));
    return tok_hf_fail_(msg, TOK_ERR_ARG, "unknown pre-tokenizer '%.64s' (known: %s%s)", name, list,
                        tok_pre_name(tok_pre_count() - 1) && o + 40 >= sizeof list ? ", ..." : "");
}

static tok_error load(tok_hf *h, const tok_hf_options *o, json_t **js, char *msg)
{
    char *path = tok_hf_path_(h->dir, "tokenizer.json");
    char *tcp = tok_hf_path_(h->dir, "tokenizer_config.json"), *cfp = tok_hf_path_(h->dir, "config.json");
    id_table t = {0};
    const json_t *model = NULL;
    tok_error e;
    if (!path || !tcp || !cfp) {
        e = tok_hf_fail_(msg, TOK_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (o->pre && (e = choose_pre(o->pre, h, msg)) != TOK_OK)
        goto out;
    if ((e = tok_hf_json_(h, path, TOK_HF_MAX_JSON, false, &js[0], msg)) || (e = check_model(path, js[0], &model, msg)) ||
        (e = read_vocab(path, model, &t, msg)))
        goto out;
    t.cap = t.max_id + 1 > 16 ? t.max_id + 1 : 16;
    t.by_id = calloc((size_t)t.cap, sizeof *t.by_id);
    t.added = calloc((size_t)t.cap, 1);
    if (!t.by_id || !t.added) {
        e = tok_hf_fail_(msg, TOK_ERR_NOMEM, "%s: out of memory", path);
        goto out;
    }
    if ((e = fill_vocab(path, model, &t, msg)) || (e = read_added(path, js[0], model, &t, msg)))
        goto out;
    int64_t V = o->vocab_size > 0 ? o->vocab_size : t.count;
    if (V > TOK_MAX_TOKENS) {
        e = tok_hf_fail_(msg, TOK_ERR_LIMIT, "%s: vocab_size %" PRId64 " is beyond the cap of %d", path, V, TOK_MAX_TOKENS);
        goto out;
    }
    if (V == 0) {
        e = tok_hf_fail_(msg, TOK_ERR_MODEL, "%s: the vocabulary is empty", path);
        goto out;
    }
    if (t.max_id >= V) {
        e = tok_hf_fail_(msg, TOK_ERR_MODEL, "%s: token '%.64s' has the id %" PRId64 ", not below vocab_size %" PRId64,
                         path, t.by_id[t.max_id], t.max_id, V);
        goto out;
    }
    if ((e = build_tokens(h, path, &t, V, msg)) || (e = read_merges(h, path, model, msg)))
        goto out;
    fix_pointers(h);
    if ((e = tok_hf_json_(h, tcp, TOK_HF_MAX_SMALL_JSON, true, &js[1], msg)) ||
        (e = tok_hf_json_(h, cfp, TOK_HF_MAX_SMALL_JSON, true, &js[2], msg)))
        goto out;
    if (js[1] && !json_is_object(js[1])) {
        e = tok_hf_fail_(msg, TOK_ERR_FORMAT, "%s: not a JSON object", tcp);
        goto out;
    }
    if (js[2] && !json_is_object(js[2])) {
        e = tok_hf_fail_(msg, TOK_ERR_FORMAT, "%s: not a JSON object", cfp);
        goto out;
    }
    const json_t *aps = json_object_get(js[1], "add_prefix_space");
    h->add_prefix_space = aps && !json_is_null(aps) ? tok_hf_truthy_(aps) : -1;
    if ((e = tok_hf_special_(h, js[0], js[1], js[2], msg)) != TOK_OK)
        goto out;
    if (!h->pre[0])
        e = detect_pre(h, path, js[0], js[1], msg);
out:
    free(t.by_id);
    free(t.added);
    free(path);
    free(tcp);
    free(cfp);
    return e;
}

tok_error tok_hf_load(const char *dir, const tok_hf_options *opt, tok_hf **out, char *msg)
{
    if (!dir || !out)
        return tok_hf_fail_(msg, TOK_ERR_ARG, "tok_hf_load: invalid argument");
    *out = NULL;
    tok_hf_options o = {0};
    if (opt)
        o = *opt;
    tok_hf *h = calloc(1, sizeof *h);
    if (!h || !(h->dir = strdup(dir))) {
        free(h);
        return tok_hf_fail_(msg, TOK_ERR_NOMEM, "out of memory");
    }
    h->lowercase = h->strip_accents = h->add_prefix_space = -1;
    for (int k = 0; k < ST_N; k++)
        h->id[k] = h->add[k] = -1;
    json_t *js[3] = {NULL, NULL, NULL};
    tok_error e = load(h, &o, js, msg);
    for (int i = 0; i < 3; i++)
        json_decref(js[i]);
    if (e) {
        tok_hf_free(h);
        return e;
    }
    *out = h;
    return TOK_OK;
}

/* ---- queries ---- */

int64_t tok_hf_n_tokens(const tok_hf *h) { return h ? h->n : 0; }
const char *tok_hf_pre(const tok_hf *h) { return h ? h->pre : NULL; }
const char *tok_hf_check_hash(const tok_hf *h) { return h ? h->check_hash : NULL; }
int64_t tok_hf_n_merges(const tok_hf *h) { return h ? h->n_merges : 0; }
size_t tok_hf_n_files(const tok_hf *h) { return h ? h->n_file : 0; }
const char *tok_hf_file(const tok_hf *h, size_t i) { return h && i < h->n_file ? h->file[i] : NULL; }

const char *tok_hf_token(const tok_hf *h, int64_t i)
{
    return h && i >= 0 && i < h->n ? h->text[i] : NULL;
}

int tok_hf_token_type(const tok_hf *h, int64_t i)
{
    return h && i >= 0 && i < h->n ? h->type[i] : -1;
}

const char *tok_hf_merge(const tok_hf *h, int64_t i)
{
    return h && i >= 0 && i < h->n_merges ? h->merge[i] : NULL;
}

static const char *const kind_name[ST_N] = {"bos", "eos", "unk", "sep", "pad", "cls", "mask", "eot", "eom"};

int64_t tok_hf_special_id(const tok_hf *h, const char *kind)
{
    for (int k = 0; h && kind && k < ST_N; k++)
        if (strcmp(kind, kind_name[k]) == 0)
            return h->id[k];
    return -1;
}

tok_error tok_hf_tokenizer(const tok_hf *h, tok_model **out, char *msg)
{
    if (!h || !out)
        return tok_hf_fail_(msg, TOK_ERR_ARG, "tok_hf_tokenizer: invalid argument");
    tok_options o;
    tok_default_options_bpe(h->pre[0] ? h->pre : "default", &o);
    if (o.bos_id >= h->n)
        o.bos_id = -1;
    if (o.eos_id >= h->n)
        o.eos_id = -1;
    if (h->id[ST_BOS] >= 0 && h->id[ST_BOS] < h->n)
        o.bos_id = (int32_t)h->id[ST_BOS];
    if (h->id[ST_EOS] >= 0 && h->id[ST_EOS] < h->n)
        o.eos_id = (int32_t)h->id[ST_EOS];
    if (h->add[ST_BOS] >= 0)
        o.add_bos = h->add[ST_BOS];
    if (h->add[ST_EOS] >= 0)
        o.add_eos = h->add[ST_EOS];
    return tok_create_bpe((int32_t)h->n, (const char *const *)h->text, NULL, h->type, h->n_merges,
                          (const char *const *)h->merge, NULL, h->pre[0] ? h->pre : "default", &o, out, msg);
}

/* ---- writing ---- */

static const char *const id_key[ST_N] = {
    "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id",
    "tokenizer.ggml.seperator_token_id", "tokenizer.ggml.padding_token_id", NULL, "tokenizer.ggml.mask_token_id",
    "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"};
static const char *const add_key[ST_N] = {"tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_eos_token", NULL,
                                          "tokenizer.ggml.add_sep_token"};

static tok_error write_templates(const tok_hf *h, gguf_writer *w, char *msg)
{
    size_t n_named = 0;
    const tok_hf_template *def = NULL;
    for (size_t i = 0; i < h->n_tmpl; i++) {
        const tok_hf_template *t = &h->tmpl[i];
        if (!t->name[0]) {
            def = t;
            continue;
        }
        size_t kl = strlen(t->name) + 32;
        char *key = malloc(kl);
        if (!key)
            return tok_hf_fail_(msg, TOK_ERR_NOMEM, "out of memory");
        snprintf(key, kl, "tokenizer.chat_template.%s", t->name);
        gguf_error ge = gguf_writer_set_str(w, key, t->text);
        free(key);
        if (ge)
            return tok_hf_fail_(msg, ge == GGUF_ERR_NOMEM ? TOK_ERR_NOMEM : TOK_ERR_FORMAT,
                                "%s: chat template '%.64s' cannot be stored: %s", h->dir, t->name, gguf_strerror(ge));
        n_named++;
    }
    if (n_named) { /* the names, each once, in file order */
        const char **names = malloc(n_named * sizeof *names);
        size_t k = 0;
        if (!names)
            return tok_hf_fail_(msg, TOK_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < h->n_tmpl; i++) {
            bool dup = !h->tmpl[i].name[0];
            for (size_t j = 0; j < k && !dup; j++)
                dup = strcmp(names[j], h->tmpl[i].name) == 0;
            if (!dup)
                names[k++] = h->tmpl[i].name;
        }
        gguf_error ge = gguf_writer_set_str_array(w, "tokenizer.chat_templates", names, k);
        free(names);
        if (ge)
            return tok_hf_fail_(msg, TOK_ERR_NOMEM, "%s: cannot store the chat template names: %s", h->dir,
                                gguf_strerror(ge));
    }
    if (def && gguf_writer_set_str(w, "tokenizer.chat_template", def->text) != GGUF_OK)
        return tok_hf_fail_(msg, TOK_ERR_FORMAT, "%s: the chat template cannot be stored", h->dir);
    return TOK_OK;
}

tok_error tok_hf_write_kv(const tok_hf *h, gguf_writer *w, unsigned flags, char *msg)
{
    if (!h || !w)
        return tok_hf_fail_(msg, TOK_ERR_ARG, "tok_hf_write_kv: invalid argument");
    gguf_error ge = GGUF_OK;
#define W(call)                                                                                    \
    do {                                                                                           \
        if ((ge = (call)) != GGUF_OK)                                                              \
            goto fail;                                                                             \
    } while (0)
    if ((flags & TOK_HF_KV_ADD_SPACE_PREFIX) && h->add_prefix_space >= 0)
        W(gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", h->add_prefix_space));
    W(gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2"));
    W(gguf_writer_set_str(w, "tokenizer.ggml.pre", h->pre));
    W(gguf_writer_set_str_array(w, "tokenizer.ggml.tokens", (const char *const *)h->text, (uint64_t)h->n));
    W(gguf_writer_set_array(w, "tokenizer.ggml.token_type", GGUF_VAL_I32, h->type, (uint64_t)h->n));
    W(gguf_writer_set_str_array(w, "tokenizer.ggml.merges", (const char *const *)h->merge, (uint64_t)h->n_merges));
    for (int i = 0; i < h->n_id; i++)
        if (id_key[h->id_kind[i]])
            W(gguf_writer_set_u32(w, id_key[h->id_kind[i]], (uint32_t)h->id[h->id_kind[i]]));
    for (int i = 0; i < h->n_add; i++)
        if (h->add_kind[i] < 4 && add_key[h->add_kind[i]])
            W(gguf_writer_set_bool(w, add_key[h->add_kind[i]], h->add[h->add_kind[i]]));
    tok_error e = write_templates(h, w, msg);
    if (e)
        return e;
    if (h->lowercase >= 0)
        W(gguf_writer_set_bool(w, "tokenizer.ggml.normalizer.lowercase", h->lowercase));
    if (h->strip_accents >= 0)
        W(gguf_writer_set_bool(w, "tokenizer.ggml.normalizer.strip_accents", h->strip_accents));
#undef W
    return TOK_OK;
fail:
    return tok_hf_fail_(msg, ge == GGUF_ERR_NOMEM ? TOK_ERR_NOMEM : TOK_ERR_FORMAT,
                        "%s: cannot store the tokenizer metadata: %s", h->dir, gguf_strerror(ge));
}
