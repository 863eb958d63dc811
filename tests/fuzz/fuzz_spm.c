/* libFuzzer target: SentencePiece tokenizer.model parsing (tok_spm_load_memory, tokenizer/spm_model.h).
 *
 * A rejected buffer must give a one-line message. An accepted model must honour the header:
 * piece count within TOK_SPM_MAX_PIECES, each piece 1..TOK_SPM_MAX_PIECE_LEN bytes, NUL-terminated,
 * unique; types and GGUF token types in range; out-of-range getters give their documented
 * defaults. The pieces then build a runtime tokenizer the way the converter's GGUF would
 * (tok_create with tok_spm_token_type) which must encode a fixed text with in-range ids
 * (or refuse the vocabulary with TOK_ERR_MODEL). */
#include <string.h>

#include "tokenizer/spm_model.h"
#include "tokenizer/tokenizer.h"
#include "tests/fuzz/support.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tok_spm_model *m = NULL;
    char msg[TOK_MSG_SIZE];
    msg[0] = 0;
    tok_error e = tok_spm_load_memory(data, size, &m, msg);
    fz_note("tok_spm_load_memory", e == TOK_OK ? NULL : msg);
    if (e != TOK_OK) {
        FZ_CHECK(m == NULL && e < TOK_ERR_COUNT_);
        fz_check_msg(msg, sizeof msg);
        return 0;
    }
    int64_t n = tok_spm_n_pieces(m);
    FZ_CHECK(n >= 0 && n <= (int64_t)TOK_SPM_MAX_PIECES);
    const tok_spm_spec *spec = tok_spm_get_spec(m);
    FZ_CHECK(spec != NULL);
    fz_sink += (uint64_t)spec->vocab_size + (uint64_t)spec->bos_id;
    const char **texts = malloc((size_t)(n ? n : 1) * sizeof *texts);
    size_t *lens = malloc((size_t)(n ? n : 1) * sizeof *lens);
    float *scores = malloc((size_t)(n ? n : 1) * sizeof *scores);
    int32_t *types = malloc((size_t)(n ? n : 1) * sizeof *types);
    FZ_CHECK(texts && lens && scores && types);
    for (int64_t i = 0; i < n; i++) {
        size_t len = 0;
        const char *p = tok_spm_piece(m, i, &len);
        FZ_CHECK(p != NULL && len >= 1 && len <= TOK_SPM_MAX_PIECE_LEN && p[len] == 0);
        int ty = tok_spm_type(m, i), gt = tok_spm_token_type(m, i);
        FZ_CHECK(ty >= TOK_SPM_NORMAL && ty <= TOK_SPM_BYTE);
        FZ_CHECK(gt >= TOK_SPM_TOKEN_NORMAL && gt <= TOK_SPM_TOKEN_BYTE && gt != TOK_SPM_TOKEN_USER_DEFINED);
        texts[i] = p;
        lens[i] = len;
        scores[i] = tok_spm_score(m, i);
        types[i] = gt;
    }
    FZ_CHECK(tok_spm_piece(m, n, NULL) == NULL && tok_spm_piece(m, -1, NULL) == NULL);
    FZ_CHECK(tok_spm_type(m, n) == 0 && tok_spm_token_type(m, -1) == 0 && tok_spm_score(m, n) == 0.0f);

    tok_options o;
    tok_default_options(&o);
    o.bos_id = n > 1 ? 1 : -1;
    o.eos_id = n > 2 ? 2 : -1;
    tok_model *t = NULL;
    char rmsg[TOK_MSG_SIZE];
    rmsg[0] = 0;
    tok_error re = tok_create((int32_t)n, texts, lens, scores, types, &o, &t, rmsg);
    fz_note("tok_create", re == TOK_OK ? NULL : rmsg);
    if (re == TOK_OK) {
        static const char text[] = "Hello, world! \xc3\xa9t\xc3\xa9 <s> ab\xe2\x96\x81" "a \xff\xfe end";
        int32_t *ids = NULL;
        size_t n_ids = 0;
        re = tok_encode(t, text, sizeof text - 1, (o.bos_id >= 0 ? TOK_ADD_BOS : 0u) | TOK_PARSE_SPECIAL, &ids,
                           &n_ids, rmsg);
        if (re == TOK_OK) {
            for (size_t i = 0; i < n_ids; i++)
                FZ_CHECK(ids[i] >= 0 && ids[i] < (int32_t)n);
        } else {
            FZ_CHECK(re == TOK_ERR_MODEL); /* a byte without a byte-fallback token */
            fz_check_msg(rmsg, sizeof rmsg);
        }
        free(ids);
        tok_free(t);
    } else {
        FZ_CHECK(t == NULL && (re == TOK_ERR_MODEL || re == TOK_ERR_NOMEM));
        fz_check_msg(rmsg, sizeof rmsg);
    }
    free(texts);
    free(lens);
    free(scores);
    free(types);
    tok_spm_free(m);
    return 0;
}
