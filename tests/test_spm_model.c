/* input/spm: SentencePiece tokenizer.model reader. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libgguf/gguf.h"
#include "tokenizer/spm_model.h"
#include "tests/testutil.h"

/* ---- a tiny protobuf writer for hand-built models ---- */

typedef struct {
    uint8_t *p;
    size_t n, cap;
} pbuf;

static void put(pbuf *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        cr_assert(b->p);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void put_varint(pbuf *b, uint64_t v)
{
    do {
        uint8_t c = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            c |= 0x80;
        put(b, &c, 1);
    } while (v);
}
static void put_key(pbuf *b, uint32_t field, int wt) { put_varint(b, (uint64_t)field << 3 | (uint64_t)wt); }
static void put_len(pbuf *b, uint32_t field, const void *d, size_t n)
{
    put_key(b, field, 2);
    put_varint(b, n);
    put(b, d, n);
}
static void put_f32(pbuf *b, uint32_t field, float f)
{
    uint8_t le[4];
    uint32_t u;
    memcpy(&u, &f, 4);
    for (int i = 0; i < 4; i++)
        le[i] = (uint8_t)(u >> (8 * i));
    put_key(b, field, 5);
    put(b, le, 4);
}
static void put_int(pbuf *b, uint32_t field, int64_t v)
{
    put_key(b, field, 0);
    put_varint(b, (uint64_t)v); /* negative int32: 10-byte sign-extended, as protobuf writes it */
}
/* A SentencePiece message (type 0: field absent) appended as ModelProto.pieces. */
static void put_piece(pbuf *b, const char *text, size_t len, float score, int type)
{
    pbuf m = {0};
    put_len(&m, 1, text, len);
    put_f32(&m, 2, score);
    if (type)
        put_int(&m, 3, type);
    put_len(b, 1, m.p, m.n);
    free(m.p);
}

static tok_error load(const pbuf *b, tok_spm_model **m, char *msg)
{
    msg[0] = 0;
    return tok_spm_load_memory(b->p, b->n, m, msg);
}

/* ---- golden: converting the .model must give llama.cpp's GGUF vocabulary arrays ---- */

static void check_against_gguf(const char *model_rel, const char *gguf_rel, int64_t expect_n)
{
    char *mp = tu_shared_path(model_rel), *gp = tu_shared_path(gguf_rel);
    char msg[TOK_MSG_SIZE], gmsg[GGUF_MSG_SIZE];
    tok_spm_model *m = NULL;
    tok_error e = tok_spm_load_file(mp, &m, msg);
    cr_assert_eq(e, TOK_OK, "%s", msg);
    gguf_reader *r = NULL;
    gguf_error ge = gguf_open(gp, &r, gmsg);
    cr_assert_eq(ge, GGUF_OK, "%s: %s", gp, gmsg);
    const gguf_value *tok, *sc, *ty;
    cr_assert_eq(gguf_get_array(r, "tokenizer.ggml.tokens", &tok), GGUF_OK);
    cr_assert_eq(gguf_get_array(r, "tokenizer.ggml.scores", &sc), GGUF_OK);
    cr_assert_eq(gguf_get_array(r, "tokenizer.ggml.token_type", &ty), GGUF_OK);
    cr_assert_eq(tok->elem_type, GGUF_VAL_STRING);
    cr_assert_eq(sc->elem_type, GGUF_VAL_F32);
    cr_assert_eq(ty->elem_type, GGUF_VAL_I32);
    cr_assert_eq(tok_spm_n_pieces(m), expect_n);
    cr_assert_eq((int64_t)tok->n, expect_n);
    cr_assert_eq((int64_t)sc->n, expect_n);
    cr_assert_eq((int64_t)ty->n, expect_n);
    const float *scores = sc->v.arr;
    const int32_t *types = ty->v.arr;
    for (int64_t i = 0; i < expect_n; i++) {
        size_t len;
        const char *p = tok_spm_piece(m, i, &len);
        cr_assert(p);
        cr_assert_eq(len, tok->v.strs[i].len, "piece %lld: length %zu vs %llu", (long long)i, len,
                     (unsigned long long)tok->v.strs[i].len);
        cr_assert(memcmp(p, tok->v.strs[i].str, len) == 0, "piece %lld: bytes differ", (long long)i);
        cr_assert_eq(p[len], 0);
        float s = tok_spm_score(m, i);
        cr_assert(memcmp(&s, &scores[i], sizeof s) == 0, "piece %lld: score %.9g vs %.9g", (long long)i,
                  (double)s, (double)scores[i]);
        cr_assert_eq(tok_spm_token_type(m, i), types[i], "piece %lld: type %d vs %d", (long long)i,
                     tok_spm_token_type(m, i), types[i]);
    }
    gguf_close(r);
    tok_spm_free(m);
    free(mp);
    free(gp);
}

Test(spm, llama2_model_matches_llama_cpp_vocab)
{
    TU_REQUIRE_SHARED();
    check_against_gguf("golden/tokenizer/llama2-tokenizer.model", "golden/tokenizer/ggml-vocab-llama-spm.gguf", 32000);

    char *mp = tu_shared_path("golden/tokenizer/llama2-tokenizer.model");
    char msg[TOK_MSG_SIZE];
    tok_spm_model *m;
    cr_assert_eq(tok_spm_load_file(mp, &m, msg), TOK_OK, "%s", msg);
    const tok_spm_spec *s = tok_spm_get_spec(m);
    cr_expect_eq(s->model_type, 2); /* BPE */
    cr_expect_eq(s->vocab_size, 32000);
    cr_expect(s->byte_fallback);
    cr_expect_eq(s->unk_id, 0);
    cr_expect_eq(s->bos_id, 1);
    cr_expect_eq(s->eos_id, 2);
    cr_expect_eq(s->pad_id, -1);
    cr_expect(s->add_dummy_prefix);
    cr_expect(!s->remove_extra_whitespaces);
    size_t len;
    cr_expect_str_eq(tok_spm_piece(m, 0, &len), "<unk>");
    cr_expect_eq(tok_spm_type(m, 0), TOK_SPM_UNKNOWN);
    cr_expect_str_eq(tok_spm_piece(m, 1, &len), "<s>");
    cr_expect_eq(tok_spm_type(m, 1), TOK_SPM_CONTROL);
    cr_expect_str_eq(tok_spm_piece(m, 3, &len), "<0x00>");
    cr_expect_eq(tok_spm_type(m, 3), TOK_SPM_BYTE);
    tok_spm_free(m);
    free(mp);
}

Test(spm, classics_model_matches_converted_gguf)
{
    TU_REQUIRE_SHARED();
    check_against_gguf("models/classics-7m/tokenizer.model", "reference/classics-7m-f32.gguf", 4096);
}

Test(spm, load_memory_equals_load_file)
{
    TU_REQUIRE_SHARED();
    char *mp = tu_shared_path("models/classics-7m/tokenizer.model");
    size_t n;
    void *buf = tu_read_file(mp, &n);
    cr_assert(buf);
    char msg[TOK_MSG_SIZE];
    tok_spm_model *a, *b;
    cr_assert_eq(tok_spm_load_memory(buf, n, &a, msg), TOK_OK, "%s", msg);
    memset(buf, 0, n); /* the model must not keep pointers into the caller's buffer */
    cr_assert_eq(tok_spm_load_file(mp, &b, msg), TOK_OK, "%s", msg);
    cr_assert_eq(tok_spm_n_pieces(a), tok_spm_n_pieces(b));
    for (int64_t i = 0; i < tok_spm_n_pieces(a); i++) {
        size_t la, lb;
        const char *pa = tok_spm_piece(a, i, &la), *pb = tok_spm_piece(b, i, &lb);
        cr_assert(la == lb && memcmp(pa, pb, la) == 0);
    }
    tok_spm_free(a);
    tok_spm_free(b);
    free(buf);
    free(mp);
}

/* ---- hand-built models ---- */

Test(spm, fields_defaults_and_unknown_fields)
{
    pbuf b = {0};
    put_piece(&b, "<unk>", 5, 0.0f, TOK_SPM_UNKNOWN);
    put_piece(&b, "\xe2\x96\x81the", 6, -1.5f, 0);          /* type absent: NORMAL */
    put_piece(&b, "<0x41>", 6, 0.0f, TOK_SPM_BYTE);
    put_piece(&b, "<user>", 6, 0.0f, TOK_SPM_USER_DEFINED);
    put_piece(&b, "<unused>", 8, 0.0f, TOK_SPM_UNUSED);
    put_piece(&b, "x", 1, 2.0f, 9);                          /* unknown enum value */
    /* unknown top-level fields of every skippable wire type */
    put_int(&b, 7, 12345);
    put_key(&b, 8, 1);
    put(&b, "12345678", 8);
    put_len(&b, 9, "junk", 4);
    put_key(&b, 10, 5);
    put(&b, "1234", 4);
    tok_spm_model *m;
    char msg[TOK_MSG_SIZE];
    cr_assert_eq(load(&b, &m, msg), TOK_OK, "%s", msg);
    cr_assert_eq(tok_spm_n_pieces(m), 6);
    size_t len;
    cr_assert_str_eq(tok_spm_piece(m, 1, &len), "\xe2\x96\x81the");
    cr_assert_eq(len, 6);
    cr_assert_eq(tok_spm_score(m, 1), -1.5f);
    cr_assert_eq(tok_spm_score(m, 5), 2.0f);
    int want_type[6] = {TOK_SPM_UNKNOWN, TOK_SPM_NORMAL, TOK_SPM_BYTE, TOK_SPM_USER_DEFINED, TOK_SPM_UNUSED, TOK_SPM_NORMAL};
    int want_tok[6] = {TOK_SPM_TOKEN_UNKNOWN, TOK_SPM_TOKEN_NORMAL, TOK_SPM_TOKEN_BYTE, TOK_SPM_TOKEN_NORMAL,
                       TOK_SPM_TOKEN_UNUSED, TOK_SPM_TOKEN_NORMAL};
    for (int i = 0; i < 6; i++) {
        cr_assert_eq(tok_spm_type(m, i), want_type[i], "piece %d", i);
        cr_assert_eq(tok_spm_token_type(m, i), want_tok[i], "piece %d", i);
    }
    cr_assert_null(tok_spm_piece(m, 6, &len));
    cr_assert_null(tok_spm_piece(m, -1, &len));
    cr_assert_eq(tok_spm_token_type(m, 6), 0);
    const tok_spm_spec *s = tok_spm_get_spec(m);
    cr_assert_eq(s->model_type, 1);
    cr_assert_eq(s->vocab_size, 8000);
    cr_assert(!s->byte_fallback);
    cr_assert_eq(s->unk_id, 0);
    cr_assert_eq(s->bos_id, 1);
    cr_assert_eq(s->eos_id, 2);
    cr_assert_eq(s->pad_id, -1);
    cr_assert(s->add_dummy_prefix && s->remove_extra_whitespaces && s->escape_whitespaces);
    tok_spm_free(m);
    free(b.p);
}

Test(spm, trainer_and_normalizer_fields)
{
    pbuf t = {0}, nrm = {0}, b = {0};
    put_len(&t, 1, "corpus.txt", 10); /* repeated string input: skipped */
    put_int(&t, 3, 2);
    put_int(&t, 4, 4096);
    put_f32(&t, 10, 0.9995f);         /* character_coverage: skipped */
    put_int(&t, 35, 1);
    put_int(&t, 40, 3);
    put_int(&t, 41, -1);              /* 10-byte negative varint */
    put_int(&t, 42, 7);
    put_int(&t, 43, 0);
    put_len(&nrm, 1, "identity", 8);
    put_int(&nrm, 3, 0);
    put_int(&nrm, 4, 0);
    put_int(&nrm, 5, 0);
    put_piece(&b, "a", 1, 0.0f, 0);
    put_len(&b, 2, t.p, t.n);
    put_len(&b, 3, nrm.p, nrm.n);
    tok_spm_model *m;
    char msg[TOK_MSG_SIZE];
    cr_assert_eq(load(&b, &m, msg), TOK_OK, "%s", msg);
    const tok_spm_spec *s = tok_spm_get_spec(m);
    cr_assert_eq(s->model_type, 2);
    cr_assert_eq(s->vocab_size, 4096);
    cr_assert(s->byte_fallback);
    cr_assert_eq(s->unk_id, 3);
    cr_assert_eq(s->bos_id, -1);
    cr_assert_eq(s->eos_id, 7);
    cr_assert_eq(s->pad_id, 0);
    cr_assert(!s->add_dummy_prefix && !s->remove_extra_whitespaces && !s->escape_whitespaces);
    tok_spm_free(m);
    free(t.p);
    free(nrm.p);
    free(b.p);
}

Test(spm, non_utf8_and_nul_bytes_are_kept)
{
    pbuf b = {0};
    put_piece(&b, "\xff\xfe", 2, 1.0f, 0);
    put_piece(&b, "a\0b", 3, 1.0f, 0);
    tok_spm_model *m;
    char msg[TOK_MSG_SIZE];
    cr_assert_eq(load(&b, &m, msg), TOK_OK, "%s", msg);
    size_t len;
    const char *p = tok_spm_piece(m, 0, &len);
    cr_assert(len == 2 && memcmp(p, "\xff\xfe", 2) == 0);
    p = tok_spm_piece(m, 1, &len);
    cr_assert(len == 3 && memcmp(p, "a\0b", 3) == 0);
    tok_spm_free(m);
    free(b.p);
}

Test(spm, empty_input_is_an_empty_model)
{
    tok_spm_model *m;
    char msg[TOK_MSG_SIZE];
    cr_assert_eq(tok_spm_load_memory(NULL, 0, &m, msg), TOK_OK, "%s", msg);
    cr_assert_eq(tok_spm_n_pieces(m), 0);
    cr_assert_eq(tok_spm_get_spec(m)->eos_id, 2);
    tok_spm_free(m);
}

Test(spm, pad_text)
{
    char buf[TOK_SPM_PAD_TEXT_SIZE];
    cr_assert_eq(tok_spm_pad_text(7, buf), 6);
    cr_assert_str_eq(buf, "[PAD7]");
    cr_assert_eq(tok_spm_pad_text(32001, buf), 10);
    cr_assert_str_eq(buf, "[PAD32001]");
}

/* ---- malformed input ---- */

static void expect_reject(const void *data, size_t n, tok_error want, const char *what)
{
    tok_spm_model *m = (tok_spm_model *)1;
    char msg[TOK_MSG_SIZE] = "";
    tok_error e = tok_spm_load_memory(data, n, &m, msg);
    cr_assert_eq(e, want, "%s: got %d (%s)", what, e, msg);
    cr_assert_null(m, "%s", what);
    cr_assert(msg[0], "%s: empty message", what);
}

Test(spm, truncated_varint)
{
    static const uint8_t key_only[] = {0x80};               /* key varint cut */
    static const uint8_t len_cut[] = {0x0a, 0x85};          /* pieces length varint cut */
    expect_reject(key_only, sizeof key_only, TOK_ERR_FORMAT, "key");
    expect_reject(len_cut, sizeof len_cut, TOK_ERR_FORMAT, "length");
    static const uint8_t in_piece[] = {0x0a, 0x04, 0x0a, 0x01, 'a', 0x18}; /* type key, no value */
    expect_reject(in_piece, sizeof in_piece, TOK_ERR_FORMAT, "piece type");
    static const uint8_t in_trainer[] = {0x12, 0x03, 0xd8, 0x02, 0xff};    /* pad_id value cut */
    expect_reject(in_trainer, sizeof in_trainer, TOK_ERR_FORMAT, "trainer pad_id");
}

Test(spm, length_past_end)
{
    static const uint8_t top[] = {0x0a, 0x05, 0x0a, 0x01, 'a'};          /* message claims 5, has 3 */
    static const uint8_t inner[] = {0x0a, 0x03, 0x0a, 0x05, 'a'};        /* text claims 5 inside 3 */
    static const uint8_t huge[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
    expect_reject(top, sizeof top, TOK_ERR_FORMAT, "top");
    expect_reject(inner, sizeof inner, TOK_ERR_FORMAT, "inner");
    expect_reject(huge, sizeof huge, TOK_ERR_FORMAT, "2^63 length");
}

Test(spm, overlong_varint)
{
    /* eleven bytes with the continuation bit, then a 10-byte varint whose last byte is > 1 */
    static const uint8_t eleven[] = {0x38, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    static const uint8_t over64[] = {0x38, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
    static const uint8_t max64[] = {0x38, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    expect_reject(eleven, sizeof eleven, TOK_ERR_FORMAT, "11 bytes");
    expect_reject(over64, sizeof over64, TOK_ERR_FORMAT, "65 bits");
    tok_spm_model *m;
    char msg[TOK_MSG_SIZE];
    cr_assert_eq(tok_spm_load_memory(max64, sizeof max64, &m, msg), TOK_OK, "%s", msg); /* UINT64_MAX is fine */
    tok_spm_free(m);
    static const uint8_t bigkey[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x01};          /* key > 2^32 */
    expect_reject(bigkey, sizeof bigkey, TOK_ERR_FORMAT, "key over 32 bits");
    static const uint8_t field0[] = {0x00, 0x00};                                  /* field number 0 */
    expect_reject(field0, sizeof field0, TOK_ERR_FORMAT, "field 0");
}

Test(spm, group_and_invalid_wire_types)
{
    static const uint8_t sgroup[] = {(5 << 3) | 3, (5 << 3) | 4};
    static const uint8_t egroup[] = {(5 << 3) | 4};
    static const uint8_t wt6[] = {(5 << 3) | 6, 0};
    static const uint8_t wt7[] = {(5 << 3) | 7, 0};
    static const uint8_t pieces_varint[] = {(1 << 3) | 0, 1};      /* pieces must be length-delimited */
    static const uint8_t group_in_piece[] = {0x0a, 0x05, 0x0a, 0x01, 'a', (4 << 3) | 3, (4 << 3) | 4};
    static const uint8_t group_in_trainer[] = {0x12, 0x02, (5 << 3) | 3, 0};
    expect_reject(sgroup, sizeof sgroup, TOK_ERR_FORMAT, "start group");
    expect_reject(egroup, sizeof egroup, TOK_ERR_FORMAT, "end group");
    expect_reject(wt6, sizeof wt6, TOK_ERR_FORMAT, "wire type 6");
    expect_reject(wt7, sizeof wt7, TOK_ERR_FORMAT, "wire type 7");
    expect_reject(pieces_varint, sizeof pieces_varint, TOK_ERR_FORMAT, "pieces as varint");
    expect_reject(group_in_piece, sizeof group_in_piece, TOK_ERR_FORMAT, "group in piece");
    expect_reject(group_in_trainer, sizeof group_in_trainer, TOK_ERR_FORMAT, "group in trainer");
}

Test(spm, huge_piece_count)
{
    /* TOK_SPM_MAX_PIECES + 1 empty piece messages: refused by the count before anything else. */
    size_t n = (size_t)TOK_SPM_MAX_PIECES + 1;
    uint8_t *buf = malloc(2 * n);
    cr_assert(buf);
    for (size_t i = 0; i < n; i++) {
        buf[2 * i] = 0x0a;
        buf[2 * i + 1] = 0x00;
    }
    expect_reject(buf, 2 * n, TOK_ERR_LIMIT, "too many pieces");
    free(buf);
}

Test(spm, piece_too_long)
{
    size_t n = TOK_SPM_MAX_PIECE_LEN + 1;
    char *text = malloc(n);
    cr_assert(text);
    memset(text, 'a', n);
    pbuf b = {0};
    put_piece(&b, text, n, 0.0f, 0);
    expect_reject(b.p, b.n, TOK_ERR_LIMIT, "65537-byte piece");
    free(b.p);
    b = (pbuf){0};
    put_piece(&b, text, n - 1, 0.0f, 0); /* exactly the limit is accepted */
    tok_spm_model *m;
    char msg[TOK_MSG_SIZE];
    cr_assert_eq(load(&b, &m, msg), TOK_OK, "%s", msg);
    size_t len;
    tok_spm_piece(m, 0, &len);
    cr_assert_eq(len, TOK_SPM_MAX_PIECE_LEN);
    tok_spm_free(m);
    free(b.p);
    free(text);
}

Test(spm, bad_score_field)
{
    /* score as length-delimited (4 bytes) instead of fixed32 */
    static const uint8_t as_len[] = {0x0a, 0x09, 0x0a, 0x01, 'a', 0x12, 0x04, 0, 0, 0x80, 0x3f};
    /* score as fixed64 */
    static const uint8_t as_i64[] = {0x0a, 0x0c, 0x0a, 0x01, 'a', 0x11, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f};
    /* fixed32 cut after 2 bytes */
    static const uint8_t cut[] = {0x0a, 0x05, 0x0a, 0x01, 'a', 0x15, 0x00};
    static const uint8_t cut_top[] = {0x0a, 0x06, 0x0a, 0x01, 'a', 0x15, 0x00, 0x00};
    expect_reject(as_len, sizeof as_len, TOK_ERR_FORMAT, "score wire type 2");
    expect_reject(as_i64, sizeof as_i64, TOK_ERR_FORMAT, "score wire type 1");
    expect_reject(cut, sizeof cut, TOK_ERR_FORMAT, "score cut inside the message");
    expect_reject(cut_top, sizeof cut_top, TOK_ERR_FORMAT, "score cut by the message length");
    static const uint8_t type_len[] = {0x0a, 0x06, 0x0a, 0x01, 'a', 0x1a, 0x01, 0x01};
    expect_reject(type_len, sizeof type_len, TOK_ERR_FORMAT, "type as length-delimited");
}

Test(spm, empty_and_duplicate_pieces)
{
    pbuf b = {0};
    put_piece(&b, "", 0, 0.0f, 0);
    expect_reject(b.p, b.n, TOK_ERR_FORMAT, "empty piece");
    free(b.p);
    static const uint8_t no_text[] = {0x0a, 0x05, 0x15, 0, 0, 0, 0};
    expect_reject(no_text, sizeof no_text, TOK_ERR_FORMAT, "piece without text");
    b = (pbuf){0};
    put_piece(&b, "ab", 2, 0.0f, 0);
    put_piece(&b, "a", 1, 0.0f, 0);
    put_piece(&b, "ab", 2, -1.0f, 0);
    expect_reject(b.p, b.n, TOK_ERR_FORMAT, "duplicate piece");
    free(b.p);
}

/* Every strict prefix of a valid model is either a valid model (cut at a top-level message
 * boundary) or rejected as malformed: never a crash, never a half-read model. */
Test(spm, every_truncation)
{
    pbuf t = {0}, b = {0};
    put_int(&t, 3, 2);
    put_int(&t, 43, -1);
    put_piece(&b, "<unk>", 5, 0.0f, TOK_SPM_UNKNOWN);
    size_t bound[8];
    int nb = 0;
    bound[nb++] = 0;
    bound[nb++] = b.n;
    put_piece(&b, "\xe2\x96\x81hello", 8, -3.25f, 0);
    bound[nb++] = b.n;
    put_len(&b, 2, t.p, t.n);
    bound[nb++] = b.n;
    put_piece(&b, "lo", 2, -7.0f, TOK_SPM_NORMAL);
    bound[nb++] = b.n;
    for (size_t cut = 0; cut < b.n; cut++) {
        tok_spm_model *m = NULL;
        char msg[TOK_MSG_SIZE];
        uint8_t *copy = malloc(cut ? cut : 1); /* exact-size copy so ASan sees any over-read */
        memcpy(copy, b.p, cut);
        tok_error e = tok_spm_load_memory(copy, cut, &m, msg);
        bool at_bound = false;
        for (int i = 0; i < nb; i++)
            at_bound |= bound[i] == cut;
        if (at_bound) {
            cr_assert_eq(e, TOK_OK, "cut %zu: %s", cut, msg);
            tok_spm_free(m);
        } else {
            cr_assert_eq(e, TOK_ERR_FORMAT, "cut %zu: got %d", cut, e);
            cr_assert_null(m);
        }
        free(copy);
    }
    free(t.p);
    free(b.p);
}

Test(spm, file_errors)
{
    tok_spm_model *m;
    char msg[TOK_MSG_SIZE];
    cr_assert_eq(tok_spm_load_file("/nonexistent/tokenizer.model", &m, msg), TOK_ERR_IO);
    cr_assert(strstr(msg, "/nonexistent/tokenizer.model"), "%s", msg);
    cr_assert_eq(tok_spm_load_file("/", &m, msg), TOK_ERR_IO);
    char *dir = tu_mkdtemp();
    cr_assert(dir);
    char path[4096];
    snprintf(path, sizeof path, "%s/bad.model", dir);
    static const uint8_t bad[] = {0x0a, 0x05, 0x0a};
    cr_assert_eq(tu_write_file(path, bad, sizeof bad), 0);
    cr_assert_eq(tok_spm_load_file(path, &m, msg), TOK_ERR_FORMAT);
    cr_assert(strncmp(msg, path, strlen(path)) == 0, "message should name the file: %s", msg);
    remove(path);
    rmdir(dir);
    free(dir);
    cr_assert_eq(tok_spm_load_memory(NULL, 5, &m, msg), TOK_ERR_ARG);
}
