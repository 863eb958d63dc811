/* libFuzzer target: the Hugging Face tokenizer reader (tokenizer/tok_hf.h) on arbitrary files.
 *
 * Input: byte 0 = flags (bit 0: pass --tokenizer-pre gpt-2, else detect by the check-text hash;
 * bit 1: vocab_size 300, else the tokenizer's own count), then up to four parts split on the
 * line "\n====\n", written into a fixture directory as
 *   tokenizer.json, tokenizer_config.json, config.json, chat_template.jinja
 * (a missing or empty part: that file is absent). A failure must give one line; a success
 * must write its KVs, read back as a GGUF whose tokenizer (tok_from_gguf) encodes a fixed text
 * with ids in range and equal to tok_hf_tokenizer's. */
#include <string.h>

#include "tests/fuzz/support.h"
#include "tokenizer/tok_hf.h"

#define SEP "\n====\n"

static void check_tokenizer(const tok_hf *h)
{
    char msg[TOK_MSG_SIZE], gm[GGUF_MSG_SIZE];
    gguf_writer *w = gguf_writer_create();
    FZ_CHECK(w != NULL);
    tok_error e = tok_hf_write_kv(h, w, TOK_HF_KV_ADD_SPACE_PREFIX, msg);
    fz_note("tok_hf_write_kv", e ? msg : NULL);
    if (e) { /* only a template or name the GGUF writer refuses */
        FZ_CHECK(e == TOK_ERR_FORMAT || e == TOK_ERR_NOMEM);
        fz_check_msg(msg, sizeof msg);
        gguf_writer_free(w);
        return;
    }
    void *buf = NULL;
    size_t n = 0;
    FZ_CHECK(gguf_writer_kv_to_memory(w, &buf, &n, gm) == GGUF_OK);
    gguf_reader *r = NULL;
    FZ_CHECK(gguf_open_memory(buf, n, &r, gm) == GGUF_OK);
    fz_walk_gguf(r);
    tok_model *a = NULL, *b = NULL;
    tok_error ea = tok_from_gguf(r, &a, msg);
    fz_note("tok_from_gguf", ea ? msg : NULL);
    tok_error eb = tok_hf_tokenizer(h, &b, msg);
    FZ_CHECK(ea == eb);
    if (!ea) {
        static const char text[] = "Hello world's 123 <|endoftext|>\n\n\xe4\xb8\xad \xff~";
        int32_t *ia = NULL, *ib = NULL;
        size_t na = 0, nb = 0;
        unsigned flags = tok_default_flags(a) | TOK_PARSE_SPECIAL;
        FZ_CHECK(tok_encode(a, text, sizeof text - 1, flags, &ia, &na, msg) == TOK_OK);
        FZ_CHECK(tok_encode(b, text, sizeof text - 1, flags, &ib, &nb, msg) == TOK_OK);
        FZ_CHECK(na == nb && (na == 0 || memcmp(ia, ib, na * sizeof *ia) == 0));
        for (size_t i = 0; i < na; i++)
            FZ_CHECK(ia[i] >= 0 && ia[i] < tok_n_tokens(a));
        FZ_CHECK(tok_n_tokens(a) == tok_hf_n_tokens(h));
        free(ia);
        free(ib);
    } else {
        fz_check_msg(msg, sizeof msg);
    }
    tok_free(a);
    tok_free(b);
    gguf_close(r);
    free(buf);
    gguf_writer_free(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"tokenizer.json", "tokenizer_config.json", "config.json",
                                        "chat_template.jinja"};
    enum { NPART = sizeof names / sizeof names[0] };
    if (size < 1)
        return 0;
    const char *dir = fz_fixture(FZ_SINGLE);
    unsigned flags = data[0];
    const uint8_t *p = data + 1, *end = data + size;
    size_t sl = strlen(SEP);
    for (int k = 0; k < NPART; k++) {
        const uint8_t *q = p ? memmem(p, (size_t)(end - p), SEP, sl) : NULL;
        size_t n = p ? (q ? (size_t)(q - p) : (size_t)(end - p)) : 0;
        if (n)
            fz_write(dir, names[k], p, n);
        else
            fz_remove(dir, names[k]);
        p = q ? q + sl : NULL;
    }
    tok_hf_options o = {.vocab_size = flags & 2 ? 300 : 0, .pre = flags & 1 ? "gpt-2" : NULL};
    tok_hf *h = NULL;
    char msg[TOK_MSG_SIZE];
    msg[0] = 0;
    tok_error e = tok_hf_load(dir, &o, &h, msg);
    fz_note("tok_hf_load", e ? msg : NULL);
    if (e) {
        FZ_CHECK(h == NULL && e < TOK_ERR_COUNT_);
        fz_check_msg(msg, sizeof msg);
        return 0;
    }
    FZ_CHECK(tok_hf_n_tokens(h) > 0 && tok_hf_pre(h)[0]);
    for (int64_t i = 0; i < tok_hf_n_tokens(h); i++)
        FZ_CHECK(tok_hf_token(h, i) && tok_hf_token_type(h, i) >= TOK_NORMAL && tok_hf_token_type(h, i) <= TOK_UNUSED);
    check_tokenizer(h);
    tok_hf_free(h);
    return 0;
}
