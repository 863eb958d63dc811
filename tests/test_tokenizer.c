/* runtime/tokenizer: llama.cpp's SPM tokenizer. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libgguf/gguf.h"
#include "tokenizer/tokenizer.h"
#include "tests/testutil.h"

#define SP "\xe2\x96\x81" /* U+2581 */

/* ---- a tiny hand-built vocabulary ---- */

enum { T_UNK, T_BOS, T_EOS, T_SP, T_A, T_B, T_C, T_AB, T_BC, T_ABAB, T_SPA, T_SPB, T_X_C3, T_X_A9, T_USER, T_N };

static const char *const tiny_text[T_N] = {
    [T_UNK] = "<unk>", [T_BOS] = "<s>", [T_EOS] = "</s>", [T_SP] = SP, [T_A] = "a", [T_B] = "b", [T_C] = "c",
    [T_AB] = "ab", [T_BC] = "bc", [T_ABAB] = "abab", [T_SPA] = SP "a", [T_SPB] = SP "b",
    [T_X_C3] = "<0xC3>", [T_X_A9] = "<0xA9>", [T_USER] = "<u>",
};
static const int32_t tiny_type[T_N] = {
    [T_UNK] = TOK_UNKNOWN, [T_BOS] = TOK_CONTROL, [T_EOS] = TOK_CONTROL, [T_SP] = TOK_NORMAL,
    [T_A] = TOK_NORMAL, [T_B] = TOK_NORMAL, [T_C] = TOK_NORMAL, [T_AB] = TOK_NORMAL,
    [T_BC] = TOK_NORMAL, [T_ABAB] = TOK_NORMAL, [T_SPA] = TOK_NORMAL, [T_SPB] = TOK_NORMAL,
    [T_X_C3] = TOK_BYTE, [T_X_A9] = TOK_BYTE, [T_USER] = TOK_USER_DEFINED,
};

/* Scores of ab, bc, abab; every other token scores -10 (single characters) or 0. */
static tok_model *tiny(float ab, float bc, float abab, bool space_prefix)
{
    float sc[T_N];
    for (int i = 0; i < T_N; i++)
        sc[i] = -10.0f;
    sc[T_UNK] = sc[T_BOS] = sc[T_EOS] = 0.0f;
    sc[T_AB] = ab;
    sc[T_BC] = bc;
    sc[T_ABAB] = abab;
    sc[T_SPA] = -1.0f;
    sc[T_SPB] = -1.0f;
    tok_options o;
    tok_default_options(&o);
    o.add_space_prefix = space_prefix;
    tok_model *t = NULL;
    char msg[TOK_MSG_SIZE];
    tok_error e = tok_create(T_N, tiny_text, NULL, sc, tiny_type, &o, &t, msg);
    cr_assert_eq(e, TOK_OK, "%s", msg);
    return t;
}

static void expect_ids(const tok_model *t, const char *text, size_t len, unsigned flags, const int32_t *want,
                       size_t n_want)
{
    int32_t *ids;
    size_t n;
    char msg[TOK_MSG_SIZE];
    tok_error e = tok_encode(t, text, len, flags, &ids, &n, msg);
    cr_assert_eq(e, TOK_OK, "'%s': %s", text, msg);
    cr_assert_eq(n, n_want, "'%s': %zu tokens, want %zu", text, n, n_want);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(ids[i], want[i], "'%s': token %zu is %d, want %d", text, i, ids[i], want[i]);
    free(ids);
}
#define EXPECT(t, text, flags, ...)                                                                 \
    do {                                                                                            \
        const int32_t want_[] = {__VA_ARGS__};                                                      \
        expect_ids(t, text, strlen(text), flags, want_, sizeof want_ / sizeof *want_);              \
    } while (0)

Test(tokenizer, merge_order_by_score)
{
    tok_model *t = tiny(-2.0f, -3.0f, -20.0f, false);
    EXPECT(t, "abc", 0, T_AB, T_C); /* ab scores higher than bc */
    tok_free(t);
    t = tiny(-3.0f, -2.0f, -20.0f, false);
    EXPECT(t, "abc", 0, T_A, T_BC);
    tok_free(t);
    t = tiny(-2.0f, -2.0f, -20.0f, false);
    EXPECT(t, "abc", 0, T_AB, T_C); /* tie: leftmost pair first */
    EXPECT(t, "cabc", 0, T_C, T_AB, T_C);
    tok_free(t);
    /* merged symbols merge again (ab + ab -> abab), after every better-scored pair */
    t = tiny(-2.0f, -3.0f, -50.0f, false);
    EXPECT(t, "ababc", 0, T_ABAB, T_C);
    EXPECT(t, "abab", 0, T_ABAB);
    EXPECT(t, "abbc", 0, T_AB, T_BC);
    EXPECT(t, "cbab", 0, T_C, T_B, T_AB);
    tok_free(t);
}

/* Merges may cross an escaped space when the vocabulary has such tokens. */
Test(tokenizer, merge_across_space)
{
    const char *texts[] = {"<unk>", "a", "b", SP, "a" SP, "a" SP "b"};
    const float scores[] = {0, -5, -5, -5, -1, -2};
    tok_options o;
    tok_default_options(&o);
    o.add_space_prefix = false;
    o.bos_id = o.eos_id = -1;
    tok_model *t;
    char msg[TOK_MSG_SIZE];
    cr_assert_eq(tok_create(6, texts, NULL, scores, NULL, &o, &t, msg), TOK_OK, "%s", msg);
    EXPECT(t, "a b b a b", 0, 5, 3, 2, 3, 5);
    tok_free(t);
}

Test(tokenizer, space_prefix_and_escaping)
{
    tok_model *t = tiny(-2.0f, -3.0f, -20.0f, true);
    EXPECT(t, "a b", 0, T_SPA, T_SPB);
    EXPECT(t, "a b", TOK_ADD_BOS, T_BOS, T_SPA, T_SPB);
    EXPECT(t, "  a", 0, T_SP, T_SP, T_SPA);
    EXPECT(t, "c", 0, T_SP, T_C);
    tok_free(t);
    t = tiny(-2.0f, -3.0f, -20.0f, false);
    EXPECT(t, "a b", 0, T_A, T_SPB);
    EXPECT(t, " ", 0, T_SP);
    tok_free(t);
}

Test(tokenizer, byte_fallback)
{
    tok_model *t = tiny(-2.0f, -3.0f, -20.0f, false);
    EXPECT(t, "a\xc3\xa9", 0, T_A, T_X_C3, T_X_A9); /* é is not in the vocabulary */
    EXPECT(t, "\xc3", 0, T_X_C3);                   /* truncated UTF-8 sequence */
    int32_t *ids;
    size_t n;
    char msg[TOK_MSG_SIZE];
    cr_assert_eq(tok_encode(t, "z", 1, 0, &ids, &n, msg), TOK_ERR_MODEL); /* no <0x7A> */
    cr_assert(strstr(msg, "0x7A"), "%s", msg);
    cr_assert_null(ids);
    tok_free(t);

    /* No <0xXX> tokens: the one-byte token is the fallback (llama.cpp's byte_to_token). */
    const char *texts[] = {"<unk>", "a", "\xc3", "\xa9"};
    tok_options o;
    tok_default_options(&o);
    o.add_space_prefix = false;
    tok_model *u;
    cr_assert_eq(tok_create(4, texts, NULL, NULL, NULL, &o, &u, msg), TOK_OK, "%s", msg);
    EXPECT(u, "\xc3\xa9" "a", 0, 2, 3, 1);
    tok_free(u);
}

Test(tokenizer, empty_input)
{
    tok_model *t = tiny(-2.0f, -3.0f, -20.0f, true);
    int32_t *ids = (int32_t *)1;
    size_t n = 99;
    char msg[TOK_MSG_SIZE];
    cr_assert_eq(tok_encode(t, "", 0, 0, &ids, &n, msg), TOK_OK);
    cr_assert_eq(n, 0);
    free(ids);
    cr_assert_eq(tok_encode(t, NULL, 0, 0, &ids, &n, msg), TOK_OK);
    cr_assert_eq(n, 0);
    free(ids);
    EXPECT(t, "", TOK_ADD_BOS, T_BOS);
    EXPECT(t, "", TOK_ADD_BOS | TOK_ADD_EOS, T_BOS, T_EOS);
    EXPECT(t, "a", TOK_ADD_EOS, T_SPA, T_EOS);
    tok_free(t);
}

Test(tokenizer, special_tokens_in_text)
{
    tok_model *t = tiny(-2.0f, -3.0f, -20.0f, true);
    /* USER_DEFINED tokens always split the text; the text after one gets the space prefix. */
    EXPECT(t, "a<u>b", 0, T_SPA, T_USER, T_SPB);
    EXPECT(t, "<u><u>", 0, T_USER, T_USER);
    /* CONTROL tokens are plain text unless parse_special: "<s>" is bytes here. */
    int32_t *ids;
    size_t n;
    char msg[TOK_MSG_SIZE];
    cr_assert_eq(tok_encode(t, "<s>", 3, 0, &ids, &n, msg), TOK_ERR_MODEL); /* no <0x3C> */
    EXPECT(t, "<s>a", TOK_PARSE_SPECIAL, T_BOS, T_SPA);
    EXPECT(t, "a</s>", TOK_PARSE_SPECIAL, T_SPA, T_EOS);
    tok_free(t);
}

Test(tokenizer, encode_into_and_pieces)
{
    tok_model *t = tiny(-2.0f, -3.0f, -20.0f, true);
    int32_t out[8];
    size_t n;
    char msg[TOK_MSG_SIZE];
    cr_assert_eq(tok_encode_into(t, "a b", 3, TOK_ADD_BOS, out, 2, &n, msg), TOK_ERR_ARG);
    cr_assert_eq(n, 3);
    cr_assert_eq(tok_encode_into(t, "a b", 3, TOK_ADD_BOS, out, 3, &n, msg), TOK_OK, "%s", msg);
    cr_assert(n == 3 && out[0] == T_BOS && out[1] == T_SPA && out[2] == T_SPB);

    char buf[16];
    cr_assert_eq(tok_piece(t, T_SPA, false, buf, sizeof buf), 2);
    cr_assert(memcmp(buf, " a", 2) == 0);
    cr_assert_eq(tok_piece(t, T_X_C3, false, buf, sizeof buf), 1);
    cr_assert_eq((uint8_t)buf[0], 0xc3);
    cr_assert_eq(tok_piece(t, T_BOS, false, buf, sizeof buf), 0);
    cr_assert_eq(tok_piece(t, T_BOS, true, buf, sizeof buf), 3);
    cr_assert(memcmp(buf, "<s>", 3) == 0);
    cr_assert_eq(tok_piece(t, T_USER, false, buf, sizeof buf), 3);
    cr_assert_eq(tok_piece(t, T_SPA, false, NULL, 0), 2);
    cr_assert_eq(tok_piece(t, T_N, false, buf, sizeof buf), -1);
    size_t len;
    cr_assert_str_eq(tok_text(t, T_SPA, &len), SP "a");
    cr_assert_eq(len, 4);
    cr_assert_eq(tok_type(t, T_X_A9), TOK_BYTE);
    cr_assert_eq(tok_bos(t), 1);
    cr_assert_eq(tok_eos(t), 2);
    cr_assert_eq(tok_default_flags(t), TOK_ADD_BOS);
    tok_free(t);
}

Test(tokenizer, bad_vocabularies)
{
    char msg[TOK_MSG_SIZE];
    tok_model *t;
    const char *dup[] = {"<unk>", "a", "b", "a"};
    cr_assert_eq(tok_create(4, dup, NULL, NULL, NULL, NULL, &t, msg), TOK_ERR_MODEL);
    cr_assert(strstr(msg, "duplicate"), "%s", msg);
    const char *two[] = {"<unk>", "a"};
    cr_assert_eq(tok_create(2, two, NULL, NULL, NULL, NULL, &t, msg), TOK_ERR_MODEL); /* eos 2 >= 2 */
    tok_options o;
    tok_default_options(&o);
    o.bos_id = o.eos_id = -1;
    cr_assert_eq(tok_create(2, two, NULL, NULL, NULL, &o, &t, msg), TOK_OK, "%s", msg);
    int32_t *ids;
    size_t n;
    cr_assert_eq(tok_encode(t, "a", 1, TOK_ADD_BOS, &ids, &n, msg), TOK_ERR_ARG);
    tok_free(t);
    /* empty token texts become "[EMPTY_<id>]", as in llama.cpp */
    const char *empty[] = {"<unk>", "", ""};
    o.bos_id = 0;
    cr_assert_eq(tok_create(3, empty, NULL, NULL, NULL, &o, &t, msg), TOK_OK, "%s", msg);
    cr_assert_str_eq(tok_text(t, 2, NULL), "[EMPTY_2]");
    tok_free(t);
}

/* ---- llama.cpp's own tokenizer test for the Llama-2 vocabulary ---- */

static tok_model *from_gguf(const char *rel)
{
    char *p = tu_shared_path(rel);
    gguf_reader *r;
    char gmsg[GGUF_MSG_SIZE], msg[TOK_MSG_SIZE];
    cr_assert_eq(gguf_open(p, &r, gmsg), GGUF_OK, "%s: %s", p, gmsg);
    tok_model *t;
    cr_assert_eq(tok_from_gguf(r, &t, msg), TOK_OK, "%s", msg);
    gguf_close(r);
    free(p);
    return t;
}

Test(tokenizer, llama_cpp_vocab_test_cases)
{
    TU_REQUIRE_SHARED();
    tok_model *t = from_gguf("golden/tokenizer/ggml-vocab-llama-spm.gguf");
    cr_assert_eq(tok_n_tokens(t), 32000);
    cr_assert_eq(tok_bos(t), 1);
    cr_assert_eq(tok_default_flags(t), TOK_ADD_BOS);
    char *ip = tu_shared_path("golden/tokenizer/ggml-vocab-llama-spm.gguf.inp");
    char *op = tu_shared_path("golden/tokenizer/ggml-vocab-llama-spm.gguf.out");
    size_t in_len, out_len;
    char *in = tu_read_file(ip, &in_len), *out = tu_read_file(op, &out_len);
    cr_assert(in && out);
    static const char sep[] = "\n__ggml_vocab_test__\n";
    const size_t sep_len = sizeof sep - 1;
    char *case_start = in, *line = out;
    int n_cases = 0;
    for (;;) {
        char *end = memmem(case_start, in_len - (size_t)(case_start - in), sep, sep_len);
        if (!end)
            break;
        cr_assert(line < out + out_len, "case %d: no expected line", n_cases);
        char *eol = strchr(line, '\n');
        cr_assert(eol, "case %d: unterminated expected line", n_cases);
        *eol = 0;
        int32_t want[512];
        size_t n_want = 0;
        for (char *p = line, *q;; p = q) {
            long v = strtol(p, &q, 10);
            if (q == p)
                break;
            cr_assert(n_want < 512);
            want[n_want++] = (int32_t)v;
        }
        int32_t *ids;
        size_t n;
        char msg[TOK_MSG_SIZE];
        size_t len = (size_t)(end - case_start);
        cr_assert_eq(tok_encode(t, case_start, len, 0, &ids, &n, msg), TOK_OK, "case %d: %s", n_cases, msg);
        bool same = n == n_want;
        for (size_t i = 0; same && i < n; i++)
            same = ids[i] == want[i];
        if (!same) {
            char got[4096] = "";
            for (size_t i = 0, o = 0; i < n && o < sizeof got - 16; i++)
                o += (size_t)snprintf(got + o, sizeof got - o, " %d", ids[i]);
            cr_assert_fail("case %d '%.*s':\n  want%s\n  got %s", n_cases, (int)len, case_start, line, got);
        }
        free(ids);
        n_cases++;
        case_start = end + sep_len;
        line = eol + 1;
    }
    cr_assert_eq(n_cases, 46);
    cr_assert_eq(line, out + out_len, "expected ids left over");
    free(in);
    free(out);
    free(ip);
    free(op);
    tok_free(t);
}

Test(tokenizer, wiki_test_raw_with_demo_vocab)
{
    TU_REQUIRE_SHARED();
    tok_model *t = from_gguf("reference/classics-7m-f32.gguf");
    cr_assert_eq(tok_n_tokens(t), 4096);
    char *tp = tu_shared_path("text/wiki.test.raw"), *ip = tu_shared_path("golden/tokenizer/wiki.test.ids");
    size_t text_len, ids_len;
    char *text = tu_read_file(tp, &text_len), *want_txt = tu_read_file(ip, &ids_len);
    cr_assert(text && want_txt);
    int32_t *ids;
    size_t n;
    char msg[TOK_MSG_SIZE];
    cr_assert_eq(tok_encode(t, text, text_len, tok_default_flags(t), &ids, &n, msg), TOK_OK, "%s", msg);
    size_t i = 0;
    for (char *p = want_txt, *q;; p = q, i++) {
        long v = strtol(p, &q, 10);
        if (q == p)
            break;
        cr_assert(i < n, "only %zu tokens, expected more", n);
        cr_assert_eq(ids[i], v, "token %zu: %d, want %ld", i, ids[i], v);
    }
    cr_assert_eq(i, 492151);
    cr_assert_eq(n, i, "%zu tokens, want %zu", n, i);
    cr_assert_eq(ids[0], 1); /* BOS */
    free(ids);
    free(text);
    free(want_txt);
    free(tp);
    free(ip);
    tok_free(t);
}
