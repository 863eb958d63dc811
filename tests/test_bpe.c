/* tokenizer: llama.cpp's byte-level BPE (tok_bpe.c, tok_pretok.c) and its GGUF path. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libgguf/gguf.h"
#include "tokenizer/tok_hf.h"
#include "tokenizer/tok_internal.h"
#include "tokenizer/tokenizer.h"
#include "tests/testutil.h"

#define G "\xc4\xa0" /* U+0120: the byte ' ' */
#define C "\xc4\x8a" /* U+010A: the byte '\n' */

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
#define EXPECT_NONE(t, text, flags) expect_ids(t, text, strlen(text), flags, NULL, 0)

/* ---- a tiny hand-built vocabulary ---- */

enum { A, B, CC, AB, BC, ABC, SP, SPA, END, USER, AA, CA3, CA9, N_TOK };
static const char *const tiny_text[N_TOK] = {
    [A] = "a", [B] = "b", [CC] = "c", [AB] = "ab", [BC] = "bc", [ABC] = "abc", [SP] = G, [SPA] = G "a",
    [END] = "<|end|>", [USER] = "<u>", [AA] = "aa", [CA3] = "\xc3\x83", [CA9] = "\xc2\xa9",
};

static tok_model *tiny(const char *pre, const char *const *merges, int64_t n_merges)
{
    int32_t types[N_TOK];
    for (int i = 0; i < N_TOK; i++)
        types[i] = TOK_NORMAL;
    types[END] = TOK_CONTROL;
    types[USER] = TOK_USER_DEFINED;
    tok_model *t;
    char msg[TOK_MSG_SIZE];
    cr_assert_eq(tok_create_bpe(N_TOK, tiny_text, NULL, types, n_merges, merges, NULL, pre, NULL, &t, msg), TOK_OK,
                 "%s", msg);
    return t;
}

Test(bpe, merges_by_rank_ties_leftmost)
{
    const char *m1[] = {"a b", "b c"};
    tok_model *t = tiny("gpt-2", m1, 2);
    EXPECT(t, "abc", 0, AB, CC); /* rank 0 (a b) before rank 1 (b c) */
    EXPECT(t, "aaa", 0, A, A, A); /* no "a a" merge */
    tok_free(t);
    const char *m2[] = {"b c", "a b", "a a"};
    t = tiny("gpt-2", m2, 3);
    EXPECT(t, "abc", 0, A, BC);
    EXPECT(t, "aaa", 0, AA, A); /* the same rank twice: leftmost first */
    tok_free(t);
    const char *m3[] = {"a b", "ab c"};
    t = tiny("gpt-2", m3, 2);
    EXPECT(t, "abc", 0, ABC);
    tok_free(t);
}

Test(bpe, ignore_merges_pre_tokenizers)
{
    const char *m[] = {"a b"};
    tok_model *t = tiny("gpt-2", m, 1);
    EXPECT(t, "abc", 0, AB, CC);
    tok_free(t);
    t = tiny("llama-bpe", m, 1); /* a word that is a token is taken whole */
    EXPECT(t, "abc", 0, ABC);
    tok_free(t);
}

Test(bpe, byte_level_and_unknown_symbols)
{
    const char *m[] = {G " a", "not-a-pair", " x y"};
    tok_model *t = tiny("gpt-2", m, 3);
    EXPECT(t, " a", 0, SPA);     /* ' ' is U+0120 */
    EXPECT(t, "\xc3\xa9", 0, CA3, CA9); /* é = C3 A9: the characters U+00C3, U+00A9 */
    EXPECT_NONE(t, "d", 0);       /* neither the symbol nor its one byte is a token: dropped */
    EXPECT(t, "d a", 0, SPA);
    tok_free(t);
}

Test(bpe, special_tokens_and_flags)
{
    tok_model *t = tiny("llama-bpe", NULL, 0);
    EXPECT(t, "a<|end|>b", TOK_PARSE_SPECIAL, A, END, B);
    EXPECT(t, "a<u>b", 0, A, USER, B); /* USER_DEFINED always */
    int32_t *ids;
    size_t n;
    char msg[TOK_MSG_SIZE];
    cr_assert_eq(tok_encode(t, "a<|end|>", 8, 0, &ids, &n, msg), TOK_OK, "%s", msg);
    cr_assert(n == 1 && ids[0] == A); /* parsed as text, whose bytes have no tokens here */
    free(ids);
    cr_assert_eq(tok_kind(t), TOK_KIND_BPE);
    cr_assert_str_eq(tok_pre(t), "llama-bpe");
    cr_assert_eq(tok_default_flags(t), TOK_ADD_BOS); /* llama-bpe adds BOS; bos 11 here */
    cr_assert_eq(tok_bos(t), 11);
    tok_free(t);
    t = tiny("gpt-2", NULL, 0);
    cr_assert_eq(tok_default_flags(t), 0u);
    tok_free(t);
    t = tiny("glm4", NULL, 0);
    cr_assert_eq(tok_bos(t), -1);
    tok_free(t);
    t = tiny(NULL, NULL, 0);
    cr_assert_str_eq(tok_pre(t), "default");
    tok_free(t);
    cr_assert_eq(tok_create_bpe(N_TOK, tiny_text, NULL, NULL, 0, NULL, NULL, "kimi-k2", NULL, &t, msg),
                 TOK_ERR_UNSUPPORTED);
    cr_assert(strstr(msg, "kimi-k2"), "%s", msg);
}

Test(bpe, pieces)
{
    tok_model *t = tiny("gpt-2", NULL, 0);
    char buf[64];
    cr_assert_eq(tok_piece(t, SPA, false, buf, sizeof buf), 2);
    cr_assert(memcmp(buf, " a", 2) == 0);
    cr_assert_eq(tok_piece(t, CA3, false, buf, sizeof buf), 1);
    cr_assert_eq((uint8_t)buf[0], 0xc3);
    cr_assert_eq(tok_piece(t, END, false, buf, sizeof buf), 0);
    cr_assert_eq(tok_piece(t, END, true, buf, sizeof buf), 7);
    cr_assert_eq(tok_piece(t, USER, false, buf, sizeof buf), 3);
    tok_free(t);
    /* a character that is not one of the 256: llama.cpp's marker */
    const char *texts[] = {"\xe4\xb8\x80"};
    cr_assert_eq(tok_create_bpe(1, texts, NULL, NULL, 0, NULL, NULL, "gpt-2", NULL, &t, NULL), TOK_OK);
    int64_t n = tok_piece(t, 0, false, buf, sizeof buf);
    cr_assert_eq(n, 22);
    cr_assert(memcmp(buf, "[UNK_BYTE_0xe4b880\xe4\xb8\x80]", 22) == 0);
    tok_free(t);
}

Test(bpe, pre_tokenizer_names)
{
    static const char *const required[] = {"llama-bpe", "qwen2", "deepseek-llm", "deepseek-v3", "gpt-2",
                                           "smollm", "tekken", "falcon", "starcoder", "default"};
    for (size_t i = 0; i < sizeof required / sizeof *required; i++) {
        bool found = false;
        for (size_t j = 0; tok_pre_name(j); j++)
            found |= strcmp(tok_pre_name(j), required[i]) == 0;
        cr_assert(found, "%s missing", required[i]);
    }
    cr_assert_null(tok_pre_name(tok_pre_count()));
}

/* ---- the pre-tokenizer's words ---- */

static void expect_words(const char *pre, const char *text, size_t len, const char *const *want, size_t n_want)
{
    tok_pretok *p;
    char msg[TOK_MSG_SIZE];
    cr_assert_eq(tok_pretok_create_(tok_pre_find_(pre), &p, msg), TOK_OK, "%s", msg);
    tok_words w = {0};
    cr_assert_eq(tok_pretok_split_(p, text, len, &w, msg), TOK_OK, "%s", msg);
    cr_assert_eq(w.n, n_want, "%s: %zu words, want %zu", pre, w.n, n_want);
    for (size_t i = 0; i < w.n; i++) {
        size_t a = i ? w.end[i - 1] : 0;
        cr_assert(w.end[i] - a == strlen(want[i]) && memcmp(w.buf + a, want[i], w.end[i] - a) == 0,
                  "%s: word %zu is '%.*s', want '%s'", pre, i, (int)(w.end[i] - a), w.buf + a, want[i]);
    }
    tok_words_free_(&w);
    tok_pretok_free_(p);
}
#define WORDS(pre, text, ...)                                                                       \
    do {                                                                                            \
        const char *const want_[] = {__VA_ARGS__};                                                  \
        expect_words(pre, text, sizeof text - 1, want_, sizeof want_ / sizeof *want_);              \
    } while (0)

Test(bpe, pre_tokenizer_words)
{
    WORDS("llama-bpe", "Hello world's 12345\n\n  x", "Hello", G "world", "'s", G, "123", "45", C C, G, G "x");
    WORDS("qwen2", "ab 12", "ab", G, "1", "2");
    /* malformed UTF-8 is U+FFFD (EF BF BD, each byte its GPT-2 character) */
    WORDS("gpt-2", "a\xff", "a", "\xc3\xaf\xc2\xbf\xc2\xbd");
    /* U+0085 is white space to llama.cpp (PCRE2's \s alone would not take it) */
    WORDS("gpt-2", "a\xc2\x85\xc2\x85" "b", "a", "\xc3\x82\xc4\xa7", "\xc3\x82\xc4\xa7", "b");
    /* llama.cpp's collapsed \p{S} lacks '~' */
    WORDS("deepseek-v3", "~\n", "~", C);
    WORDS("deepseek-v3", "a+\n", "a", "+" C);
    /* \p{Lu} is \p{L} to llama.cpp: one word, not split at the case change */
    WORDS("youtu", "abCD", "abCD");
}

/* ---- llama.cpp's tokenizer test vectors ---- */

static void run_vectors(const tok_model *t, const char *name)
{
    char rel[256];
    snprintf(rel, sizeof rel, "golden/tokenizer/ggml-vocab-%s.gguf.inp", name);
    char *ip = tu_shared_path(rel);
    snprintf(rel, sizeof rel, "golden/tokenizer/ggml-vocab-%s.gguf.out", name);
    char *op = tu_shared_path(rel);
    size_t in_len, out_len;
    char *in = tu_read_file(ip, &in_len), *out = tu_read_file(op, &out_len);
    cr_assert(in && out, "%s", ip);
    static const char sep[] = "\n__ggml_vocab_test__\n";
    char *case_start = in, *line = out;
    int n_cases = 0;
    for (char *end; (end = memmem(case_start, in_len - (size_t)(case_start - in), sep, sizeof sep - 1)) != NULL;) {
        char *eol = strchr(line, '\n');
        cr_assert(eol, "%s case %d: no expected line", name, n_cases);
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
        cr_assert_eq(tok_encode(t, case_start, len, 0, &ids, &n, msg), TOK_OK, "%s case %d: %s", name, n_cases, msg);
        bool same = n == n_want;
        for (size_t i = 0; same && i < n; i++)
            same = ids[i] == want[i];
        cr_assert(same, "%s case %d '%.*s': want '%s'", name, n_cases, (int)len, case_start, line);
        free(ids);
        n_cases++;
        case_start = end + sizeof sep - 1;
        line = eol + 1;
    }
    cr_assert_eq(n_cases, 46, "%s: %d cases", name, n_cases);
    cr_assert_eq(line, out + out_len, "%s: expected ids left over", name);
    free(in);
    free(out);
    free(ip);
    free(op);
}

static tok_model *from_gguf_file(const char *rel)
{
    char *p = tu_shared_path(rel), gm[GGUF_MSG_SIZE], msg[TOK_MSG_SIZE];
    gguf_reader *r;
    cr_assert_eq(gguf_open(p, &r, gm), GGUF_OK, "%s: %s", p, gm);
    tok_model *t;
    cr_assert_eq(tok_from_gguf(r, &t, msg), TOK_OK, "%s", msg);
    gguf_close(r);
    free(p);
    return t;
}

static tok_model *from_tokenizer_dir(const char *rel, const char *want_pre)
{
    char *dir = tu_shared_path(rel), msg[TOK_MSG_SIZE];
    tok_hf *h;
    cr_assert_eq(tok_hf_load(dir, NULL, &h, msg), TOK_OK, "%s", msg);
    cr_assert_str_eq(tok_hf_pre(h), want_pre);
    tok_model *t;
    cr_assert_eq(tok_hf_tokenizer(h, &t, msg), TOK_OK, "%s", msg);
    tok_hf_free(h);
    free(dir);
    return t;
}

Test(bpe, vectors_gpt2)
{
    TU_REQUIRE_SHARED();
    tok_model *t = from_gguf_file("golden/tokenizer/ggml-vocab-gpt-2.gguf");
    cr_assert_str_eq(tok_pre(t), "gpt-2");
    run_vectors(t, "gpt-2");
    tok_free(t);
}

Test(bpe, vectors_deepseek_llm)
{
    TU_REQUIRE_SHARED();
    tok_model *t = from_gguf_file("golden/tokenizer/ggml-vocab-deepseek-llm.gguf");
    cr_assert_str_eq(tok_pre(t), "deepseek-llm");
    cr_assert_eq(tok_default_flags(t), TOK_ADD_BOS);
    run_vectors(t, "deepseek-llm");
    tok_free(t);
}

Test(bpe, vectors_llama_bpe_from_tokenizer_json)
{
    TU_REQUIRE_SHARED();
    tok_model *t = from_tokenizer_dir("tokenizers/llama3", "llama-bpe");
    run_vectors(t, "llama-bpe");
    tok_free(t);
}

Test(bpe, vectors_qwen2_from_tokenizer_json)
{
    TU_REQUIRE_SHARED();
    tok_model *t = from_tokenizer_dir("tokenizers/qwen3", "qwen2");
    run_vectors(t, "qwen2");
    tok_free(t);
}

/* ---- whole text: the first 40000 bytes of wiki.test.raw against llama-tokenize's ids, through
 * the GGUF metadata qforge writes for the synth checkpoints (what qforge-perplexity reads) ---- */

static void wiki_ids(const char *model)
{
    TU_REQUIRE_SHARED();
    char rel[256], msg[TOK_MSG_SIZE], gm[GGUF_MSG_SIZE];
    snprintf(rel, sizeof rel, "models/synth-%s", model);
    char *dir = tu_shared_path(rel);
    snprintf(rel, sizeof rel, "reference/synth-%s.json", model);
    char *refp = tu_shared_path(rel);
    json_t *ref = json_load_file(refp, 0, NULL);
    cr_assert(ref, "%s", refp);
    json_t *want = json_object_get(ref, "llama_tokenize_ids");
    cr_assert(json_array_size(want) > 8000);

    snprintf(rel, sizeof rel, "%s/config.json", dir);
    json_t *cfg = json_load_file(rel, 0, NULL);
    tok_hf_options o = {.vocab_size = json_integer_value(json_object_get(cfg, "vocab_size"))};
    json_decref(cfg);
    tok_hf *h;
    cr_assert_eq(tok_hf_load(dir, &o, &h, msg), TOK_OK, "%s", msg);
    gguf_writer *w = gguf_writer_create();
    cr_assert_eq(gguf_writer_set_str(w, "general.architecture", "llama"), GGUF_OK);
    cr_assert_eq(tok_hf_write_kv(h, w, 0, msg), TOK_OK, "%s", msg);
    void *buf;
    size_t n;
    cr_assert_eq(gguf_writer_kv_to_memory(w, &buf, &n, gm), GGUF_OK, "%s", gm);
    gguf_reader *r;
    cr_assert_eq(gguf_open_memory(buf, n, &r, gm), GGUF_OK, "%s", gm);
    tok_model *t, *t2;
    cr_assert_eq(tok_from_gguf(r, &t, msg), TOK_OK, "%s", msg);
    cr_assert_eq(tok_hf_tokenizer(h, &t2, msg), TOK_OK, "%s", msg);

    char *tp = tu_shared_path("text/wiki.test.raw");
    size_t text_len;
    char *text = tu_read_file(tp, &text_len);
    cr_assert(text && text_len > 40000);
    const tok_model *models[2] = {t, t2};
    for (int k = 0; k < 2; k++) {
        int32_t *ids;
        size_t ni;
        cr_assert_eq(tok_encode(models[k], text, 40000, tok_default_flags(models[k]), &ids, &ni, msg), TOK_OK, "%s", msg);
        cr_assert_eq(ni, json_array_size(want), "%s: %zu ids, llama-tokenize %zu", model, ni, json_array_size(want));
        for (size_t i = 0; i < ni; i++)
            cr_assert_eq(ids[i], json_integer_value(json_array_get(want, i)), "%s: id %zu", model, i);
        free(ids);
    }
    tok_free(t);
    tok_free(t2);
    gguf_close(r);
    free(buf);
    gguf_writer_free(w);
    tok_hf_free(h);
    free(text);
    free(tp);
    json_decref(ref);
    free(refp);
    free(dir);
}

Test(bpe, wiki_ids_llama3) { wiki_ids("llama3"); }
Test(bpe, wiki_ids_qwen3) { wiki_ids("qwen3"); }

/* ---- GGUF metadata the runtime refuses ---- */

static tok_error gguf_case(const char *pre, bool merges, char *msg)
{
    gguf_writer *w = gguf_writer_create();
    const char *tokens[] = {"a", "b", "ab"};
    const char *m[] = {"a b"};
    gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    if (pre)
        gguf_writer_set_str(w, "tokenizer.ggml.pre", pre);
    gguf_writer_set_str_array(w, "tokenizer.ggml.tokens", tokens, 3);
    if (merges)
        gguf_writer_set_str_array(w, "tokenizer.ggml.merges", m, 1);
    void *buf;
    size_t n;
    char gm[GGUF_MSG_SIZE];
    cr_assert_eq(gguf_writer_kv_to_memory(w, &buf, &n, gm), GGUF_OK, "%s", gm);
    gguf_reader *r;
    cr_assert_eq(gguf_open_memory(buf, n, &r, gm), GGUF_OK, "%s", gm);
    tok_model *t = NULL;
    tok_error e = tok_from_gguf(r, &t, msg);
    if (!e)
        EXPECT(t, "abab", 0, 2, 2);
    tok_free(t);
    gguf_close(r);
    free(buf);
    gguf_writer_free(w);
    return e;
}

Test(bpe, gguf_metadata)
{
    char msg[TOK_MSG_SIZE];
    cr_assert_eq(gguf_case("gpt-2", true, msg), TOK_OK, "%s", msg);
    cr_assert_eq(gguf_case(NULL, true, msg), TOK_OK, "%s", msg); /* no pre: "default", as llama.cpp */
    cr_assert_eq(gguf_case("gpt-2", false, msg), TOK_ERR_MODEL);
    cr_assert(strstr(msg, "tokenizer.ggml.merges"), "%s", msg);
    cr_assert_eq(gguf_case("kimi-k2", true, msg), TOK_ERR_UNSUPPORTED);
    cr_assert(strstr(msg, "'kimi-k2'"), "%s", msg);
}
