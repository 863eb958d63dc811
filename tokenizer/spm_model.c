/* SentencePiece tokenizer.model reader: a bounds-checked protobuf wire-format walk. */
#include "tokenizer/spm_model.h"
#include "tokenizer/tok_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct tok_spm_model {
    int64_t n;
    uint32_t *off;   /* piece i = arena + off[i], len[i] bytes, then a NUL */
    uint32_t *len;
    float *score;
    uint8_t *type;
    char *arena;
    tok_spm_spec spec;
};

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_SGROUP = 3, WT_EGROUP = 4, WT_I32 = 5 };

/* A bounded view of the input; base is the start of the whole buffer (for offsets). */
typedef struct {
    const uint8_t *p, *end, *base;
} pb_reader;

static size_t pb_left(const pb_reader *r) { return (size_t)(r->end - r->p); }
static size_t pb_pos(const pb_reader *r) { return (size_t)(r->p - r->base); }

static tok_error pb_varint(pb_reader *r, uint64_t *v, const char *what, char *msg)
{
    size_t at = pb_pos(r);
    uint64_t x = 0;
    for (int i = 0; i < 10; i++) {
        if (r->p >= r->end) {
            tok_set_msg_(msg, "protobuf: truncated varint (%s) at byte %zu", what, at);
            return TOK_ERR_FORMAT;
        }
        uint8_t b = *r->p++;
        if (i == 9 && b > 1) {
            tok_set_msg_(msg, "protobuf: varint (%s) at byte %zu is longer than 10 bytes or exceeds 64 bits",
                    what, at);
            return TOK_ERR_FORMAT;
        }
        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *v = x;
            return TOK_OK;
        }
    }
    /* unreachable: the tenth byte either ends the varint or is rejected above */
    tok_set_msg_(msg, "protobuf: bad varint (%s) at byte %zu", what, at);
    return TOK_ERR_FORMAT;
}

/* Field key: field number (1 .. 2^29-1) and wire type. */
static tok_error pb_key(pb_reader *r, uint32_t *field, int *wt, char *msg)
{
    size_t at = pb_pos(r);
    uint64_t k;
    tok_error e = pb_varint(r, &k, "field key", msg);
    if (e)
        return e;
    if (k > UINT32_MAX || (k >> 3) == 0) {
        tok_set_msg_(msg, "protobuf: invalid field key %" PRIu64 " at byte %zu", k, at);
        return TOK_ERR_FORMAT;
    }
    *field = (uint32_t)(k >> 3);
    *wt = (int)(k & 7);
    return TOK_OK;
}

/* A length-delimited payload: *sub views its bytes and r moves past them. */
static tok_error pb_bytes(pb_reader *r, pb_reader *sub, const char *what, char *msg)
{
    size_t at = pb_pos(r);
    uint64_t n;
    tok_error e = pb_varint(r, &n, what, msg);
    if (e)
        return e;
    if (n > pb_left(r)) {
        tok_set_msg_(msg, "protobuf: %s at byte %zu: length %" PRIu64 " runs past the end (%zu bytes left)",
                what, at, n, pb_left(r));
        return TOK_ERR_FORMAT;
    }
    sub->base = r->base;
    sub->p = r->p;
    sub->end = r->p + n;
    r->p += n;
    return TOK_OK;
}

static tok_error pb_fixed(pb_reader *r, size_t n, uint8_t *out, const char *what, char *msg)
{
    if (pb_left(r) < n) {
        tok_set_msg_(msg, "protobuf: truncated %zu-byte value (%s) at byte %zu (%zu bytes left)", n, what,
                pb_pos(r), pb_left(r));
        return TOK_ERR_FORMAT;
    }
    if (out)
        memcpy(out, r->p, n);
    r->p += n;
    return TOK_OK;
}

static tok_error pb_skip(pb_reader *r, uint32_t field, int wt, char *msg)
{
    uint64_t v;
    pb_reader sub;
    switch (wt) {
    case WT_VARINT: return pb_varint(r, &v, "unknown field", msg);
    case WT_I64: return pb_fixed(r, 8, NULL, "unknown field", msg);
    case WT_LEN: return pb_bytes(r, &sub, "unknown field", msg);
    case WT_I32: return pb_fixed(r, 4, NULL, "unknown field", msg);
    case WT_SGROUP:
    case WT_EGROUP:
        tok_set_msg_(msg, "protobuf: field %" PRIu32 " at byte %zu uses a group wire type (%d), not supported",
                field, pb_pos(r), wt);
        return TOK_ERR_FORMAT;
    default:
        tok_set_msg_(msg, "protobuf: field %" PRIu32 " at byte %zu has invalid wire type %d", field, pb_pos(r), wt);
        return TOK_ERR_FORMAT;
    }
}

static tok_error want_wt(int wt, int expect, const char *what, const pb_reader *r, char *msg)
{
    if (wt == expect)
        return TOK_OK;
    tok_set_msg_(msg, "protobuf: %s at byte %zu has wire type %d, expected %d", what, pb_pos(r), wt, expect);
    return TOK_ERR_FORMAT;
}

/* int32/enum/bool scalar fields (varint). */
static tok_error read_int32(pb_reader *r, int wt, const char *what, int32_t *out, char *msg)
{
    tok_error e = want_wt(wt, WT_VARINT, what, r, msg);
    uint64_t v = 0;
    if (!e)
        e = pb_varint(r, &v, what, msg);
    if (!e)
        *out = (int32_t)(uint32_t)v; /* protobuf keeps the low 32 bits */
    return e;
}

static tok_error read_bool(pb_reader *r, int wt, const char *what, bool *out, char *msg)
{
    tok_error e = want_wt(wt, WT_VARINT, what, r, msg);
    uint64_t v = 0;
    if (!e)
        e = pb_varint(r, &v, what, msg);
    if (!e)
        *out = v != 0;
    return e;
}

static tok_error parse_trainer(pb_reader r, tok_spm_spec *s, char *msg)
{
    while (r.p < r.end) {
        uint32_t f;
        int wt;
        tok_error e = pb_key(&r, &f, &wt, msg);
        if (e)
            return e;
        switch (f) {
        case 3: e = read_int32(&r, wt, "trainer_spec.model_type", &s->model_type, msg); break;
        case 4: e = read_int32(&r, wt, "trainer_spec.vocab_size", &s->vocab_size, msg); break;
        case 24: e = read_bool(&r, wt, "trainer_spec.treat_whitespace_as_suffix", &s->treat_whitespace_as_suffix, msg); break;
        case 35: e = read_bool(&r, wt, "trainer_spec.byte_fallback", &s->byte_fallback, msg); break;
        case 40: e = read_int32(&r, wt, "trainer_spec.unk_id", &s->unk_id, msg); break;
        case 41: e = read_int32(&r, wt, "trainer_spec.bos_id", &s->bos_id, msg); break;
        case 42: e = read_int32(&r, wt, "trainer_spec.eos_id", &s->eos_id, msg); break;
        case 43: e = read_int32(&r, wt, "trainer_spec.pad_id", &s->pad_id, msg); break;
        default: e = pb_skip(&r, f, wt, msg); break;
        }
        if (e)
            return e;
    }
    return TOK_OK;
}

static tok_error parse_normalizer(pb_reader r, tok_spm_spec *s, char *msg)
{
    while (r.p < r.end) {
        uint32_t f;
        int wt;
        tok_error e = pb_key(&r, &f, &wt, msg);
        if (e)
            return e;
        switch (f) {
        case 3: e = read_bool(&r, wt, "normalizer_spec.add_dummy_prefix", &s->add_dummy_prefix, msg); break;
        case 4: e = read_bool(&r, wt, "normalizer_spec.remove_extra_whitespaces", &s->remove_extra_whitespaces, msg); break;
        case 5: e = read_bool(&r, wt, "normalizer_spec.escape_whitespaces", &s->escape_whitespaces, msg); break;
        default: e = pb_skip(&r, f, wt, msg); break;
        }
        if (e)
            return e;
    }
    return TOK_OK;
}

/* One SentencePiece message; the piece bytes are copied to the arena at *arena_used. */
static tok_error parse_piece(pb_reader r, tok_spm_model *m, int64_t i, size_t *arena_used, char *msg)
{
    const uint8_t *text = NULL;
    size_t text_len = 0;
    float score = 0.0f;
    int32_t type = TOK_SPM_NORMAL;
    size_t start = pb_pos(&r);
    while (r.p < r.end) {
        uint32_t f;
        int wt;
        tok_error e = pb_key(&r, &f, &wt, msg);
        if (e)
            return e;
        if (f == 1) {
            pb_reader s;
            e = want_wt(wt, WT_LEN, "piece text", &r, msg);
            if (!e)
                e = pb_bytes(&r, &s, "piece text", msg);
            if (!e && pb_left(&s) > TOK_SPM_MAX_PIECE_LEN) {
                tok_set_msg_(msg, "protobuf: piece %" PRId64 " is %zu bytes long (limit %u)", i, pb_left(&s),
                        TOK_SPM_MAX_PIECE_LEN);
                return TOK_ERR_LIMIT;
            }
            if (!e) {
                text = s.p;
                text_len = pb_left(&s);
            }
        } else if (f == 2) {
            uint8_t b[4];
            e = want_wt(wt, WT_I32, "piece score", &r, msg);
            if (!e)
                e = pb_fixed(&r, 4, b, "piece score", msg);
            if (!e) {
                uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
                memcpy(&score, &u, sizeof score);
            }
        } else if (f == 3) {
            e = read_int32(&r, wt, "piece type", &type, msg);
        } else {
            e = pb_skip(&r, f, wt, msg);
        }
        if (e)
            return e;
    }
    if (text_len == 0) {
        tok_set_msg_(msg, "protobuf: piece %" PRId64 " (at byte %zu) has an empty or missing text", i, start);
        return TOK_ERR_FORMAT;
    }
    if (type < TOK_SPM_NORMAL || type > TOK_SPM_BYTE)
        type = TOK_SPM_NORMAL; /* unknown enum value: protobuf reads the default */
    memcpy(m->arena + *arena_used, text, text_len);
    m->arena[*arena_used + text_len] = 0;
    m->off[i] = (uint32_t)*arena_used;
    m->len[i] = (uint32_t)text_len;
    m->score[i] = score;
    m->type[i] = (uint8_t)type;
    *arena_used += text_len + 1;
    return TOK_OK;
}

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

/* SentencePiece refuses a model whose pieces repeat. */
static tok_error check_unique(const tok_spm_model *m, char *msg)
{
    if (m->n == 0)
        return TOK_OK;
    size_t cap = 16;
    while (cap < (size_t)m->n * 2)
        cap *= 2;
    int32_t *slot = malloc(cap * sizeof *slot);
    if (!slot) {
        tok_set_msg_(msg, "out of memory");
        return TOK_ERR_NOMEM;
    }
    memset(slot, 0xff, cap * sizeof *slot);
    tok_error e = TOK_OK;
    for (int64_t i = 0; i < m->n && !e; i++) {
        const char *t = m->arena + m->off[i];
        size_t h = (size_t)hash_bytes(t, m->len[i]) & (cap - 1);
        for (;; h = (h + 1) & (cap - 1)) {
            int32_t j = slot[h];
            if (j < 0) {
                slot[h] = (int32_t)i;
                break;
            }
            if (m->len[j] == m->len[i] && memcmp(m->arena + m->off[j], t, m->len[i]) == 0) {
                tok_set_msg_(msg, "protobuf: piece %" PRId64 " repeats piece %" PRId32, i, j);
                e = TOK_ERR_FORMAT;
                break;
            }
        }
    }
    free(slot);
    return e;
}

static tok_spm_model *model_alloc(int64_t n, size_t arena)
{
    tok_spm_model *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    size_t k = n ? (size_t)n : 1;
    m->off = malloc(k * sizeof *m->off);
    m->len = malloc(k * sizeof *m->len);
    m->score = malloc(k * sizeof *m->score);
    m->type = malloc(k);
    m->arena = malloc(arena);
    if (!m->off || !m->len || !m->score || !m->type || !m->arena) {
        tok_spm_free(m);
        return NULL;
    }
    m->spec = (tok_spm_spec){.model_type = 1, .vocab_size = 8000, .treat_whitespace_as_suffix = false,
                         .byte_fallback = false, .unk_id = 0, .bos_id = 1, .eos_id = 2, .pad_id = -1,
                         .add_dummy_prefix = true, .remove_extra_whitespaces = true,
                         .escape_whitespaces = true};
    return m;
}

void tok_spm_free(tok_spm_model *m)
{
    if (!m)
        return;
    free(m->off);
    free(m->len);
    free(m->score);
    free(m->type);
    free(m->arena);
    free(m);
}

tok_error tok_spm_load_memory(const void *buf, size_t n, tok_spm_model **out, char *msg)
{
    if (!out || (!buf && n)) {
        tok_set_msg_(msg, "tok_spm_load_memory: invalid argument");
        return TOK_ERR_ARG;
    }
    *out = NULL;
    if (n > TOK_SPM_MAX_FILE) {
        tok_set_msg_(msg, "protobuf: %zu bytes exceeds the %u-byte limit for a tokenizer model", n, TOK_SPM_MAX_FILE);
        return TOK_ERR_LIMIT;
    }
    static const uint8_t empty[1];
    const uint8_t *b = n ? buf : empty;

    /* Pass 1: walk the top level, count pieces, check every length. */
    pb_reader r = {b, b + n, b};
    int64_t n_pieces = 0;
    while (r.p < r.end) {
        uint32_t f;
        int wt;
        pb_reader sub;
        tok_error e = pb_key(&r, &f, &wt, msg);
        if (!e && f >= 1 && f <= 3)
            e = want_wt(wt, WT_LEN, f == 1 ? "pieces" : f == 2 ? "trainer_spec" : "normalizer_spec", &r, msg);
        if (!e)
            e = f <= 3 ? pb_bytes(&r, &sub, "message", msg) : pb_skip(&r, f, wt, msg);
        if (e)
            return e;
        if (f == 1 && ++n_pieces > TOK_SPM_MAX_PIECES) {
            tok_set_msg_(msg, "protobuf: more than %u pieces", TOK_SPM_MAX_PIECES);
            return TOK_ERR_LIMIT;
        }
    }

    /* Pass 2: parse. Piece texts total at most n bytes, plus a NUL each. */
    tok_spm_model *m = model_alloc(n_pieces, n + (size_t)n_pieces + 1);
    if (!m) {
        tok_set_msg_(msg, "out of memory for %" PRId64 " pieces", n_pieces);
        return TOK_ERR_NOMEM;
    }
    r = (pb_reader){b, b + n, b};
    size_t arena_used = 0;
    tok_error e = TOK_OK;
    while (r.p < r.end && !e) {
        uint32_t f;
        int wt;
        pb_reader sub;
        e = pb_key(&r, &f, &wt, msg);
        if (e)
            break;
        if (f > 3) {
            e = pb_skip(&r, f, wt, msg);
            continue;
        }
        e = pb_bytes(&r, &sub, "message", msg);
        if (e)
            break;
        if (f == 1)
            e = parse_piece(sub, m, m->n++, &arena_used, msg);
        else if (f == 2)
            e = parse_trainer(sub, &m->spec, msg);
        else
            e = parse_normalizer(sub, &m->spec, msg);
    }
    if (!e)
        e = check_unique(m, msg);
    if (e) {
        tok_spm_free(m);
        return e;
    }
    *out = m;
    return TOK_OK;
}

tok_error tok_spm_load_file(const char *path, tok_spm_model **out, char *msg)
{
    if (!path || !out) {
        tok_set_msg_(msg, "tok_spm_load_file: invalid argument");
        return TOK_ERR_ARG;
    }
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        tok_set_msg_(msg, "%s: cannot open: %s", path, strerror(errno));
        return TOK_ERR_IO;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        tok_set_msg_(msg, "%s: not a regular file", path);
        fclose(f);
        return TOK_ERR_IO;
    }
    if ((uint64_t)st.st_size > TOK_SPM_MAX_FILE) {
        tok_set_msg_(msg, "%s: %lld bytes exceeds the %u-byte limit for a tokenizer model", path,
                (long long)st.st_size, TOK_SPM_MAX_FILE);
        fclose(f);
        return TOK_ERR_LIMIT;
    }
    size_t n = (size_t)st.st_size;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        tok_set_msg_(msg, "%s: out of memory", path);
        fclose(f);
        return TOK_ERR_NOMEM;
    }
    size_t got = fread(buf, 1, n, f);
    int err = ferror(f) ? errno : 0;
    fclose(f);
    if (got != n) {
        tok_set_msg_(msg, "%s: read failed: %s", path, err ? strerror(err) : "file shrank while reading");
        free(buf);
        return TOK_ERR_IO;
    }
    char inner[TOK_MSG_SIZE];
    tok_error e = tok_spm_load_memory(buf, n, out, inner);
    free(buf);
    if (e)
        tok_set_msg_(msg, "%s: %s", path, inner);
    return e;
}

int64_t tok_spm_n_pieces(const tok_spm_model *m) { return m ? m->n : 0; }

const char *tok_spm_piece(const tok_spm_model *m, int64_t i, size_t *len)
{
    if (!m || i < 0 || i >= m->n)
        return NULL;
    if (len)
        *len = m->len[i];
    return m->arena + m->off[i];
}

float tok_spm_score(const tok_spm_model *m, int64_t i)
{
    return (m && i >= 0 && i < m->n) ? m->score[i] : 0.0f;
}

int tok_spm_type(const tok_spm_model *m, int64_t i)
{
    return (m && i >= 0 && i < m->n) ? m->type[i] : 0;
}

int tok_spm_token_type(const tok_spm_model *m, int64_t i)
{
    switch (tok_spm_type(m, i)) {
    case 0: return 0;
    case TOK_SPM_UNKNOWN: return TOK_SPM_TOKEN_UNKNOWN;
    case TOK_SPM_CONTROL: return TOK_SPM_TOKEN_CONTROL;
    case TOK_SPM_UNUSED: return TOK_SPM_TOKEN_UNUSED;
    case TOK_SPM_BYTE: return TOK_SPM_TOKEN_BYTE;
    default: return TOK_SPM_TOKEN_NORMAL; /* NORMAL and USER_DEFINED */
    }
}

const tok_spm_spec *tok_spm_get_spec(const tok_spm_model *m) { return m ? &m->spec : NULL; }

size_t tok_spm_pad_text(int64_t id, char buf[TOK_SPM_PAD_TEXT_SIZE])
{
    int k = snprintf(buf, TOK_SPM_PAD_TEXT_SIZE, "[PAD%" PRId64 "]", id);
    return k > 0 ? (size_t)k : 0;
}
