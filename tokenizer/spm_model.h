/* spm — reader for SentencePiece `tokenizer.model` files (protobuf ModelProto, wire format).
 *
 * What is read (field numbers of sentencepiece_model.proto):
 *   ModelProto      1 pieces (repeated SentencePiece), 2 trainer_spec, 3 normalizer_spec
 *   SentencePiece   1 piece (bytes), 2 score (float, fixed32), 3 type (enum, default NORMAL)
 *   TrainerSpec     3 model_type, 4 vocab_size, 24 treat_whitespace_as_suffix, 35 byte_fallback,
 *                   40 unk_id, 41 bos_id, 42 eos_id, 43 pad_id
 *   NormalizerSpec  3 add_dummy_prefix, 4 remove_extra_whitespaces, 5 escape_whitespaces
 * Every other field is skipped by its wire type. Absent fields take the .proto defaults.
 *
 * Validation: every varint (≤ 10 bytes, ≤ 64 bits) and length is checked against the bytes
 * left; group wire types (3, 4) and wire types 6, 7 are rejected; a known field with the wrong
 * wire type is rejected; at most TOK_SPM_MAX_PIECES pieces (counted before anything is allocated),
 * each 1..TOK_SPM_MAX_PIECE_LEN bytes; piece strings must be unique (SentencePiece itself refuses
 * empty and duplicate pieces). Pieces need not be valid UTF-8: they are kept as bytes.
 * Unknown `type` values read as NORMAL, as protobuf does for a closed proto2 enum.
 * Errors: TOK_ERR_FORMAT (malformed/truncated), TOK_ERR_LIMIT (a cap), TOK_ERR_IO, TOK_ERR_NOMEM,
 * TOK_ERR_ARG, with a one-line message in msg[TOK_MSG_SIZE] (msg may be NULL).
 *
 * GGUF mapping (llama.cpp convert_hf_to_gguf.py, _create_vocab_sentencepiece): with V =
 * config.json's vocab_size (or tok_spm_n_pieces() when absent), the arrays
 * tokenizer.ggml.tokens/scores/token_type have V entries:
 *   - id < min(V, n_pieces): the piece bytes, its score, tok_spm_token_type();
 *   - id ≥ n_pieces (V larger): "[PAD<id>]" (tok_spm_pad_text()), score -10000.0, UNUSED (5);
 *   - pieces with id ≥ V are dropped.
 * Then, in the converter (not here, they need JSON): each added_tokens.json entry {text: id < V}
 * becomes (text, -1000.0, USER_DEFINED); each tokenizer_config.json added_tokens_decoder entry
 * with id < V becomes score -1000.0 and CONTROL when "special" is true or the text looks
 * special, else USER_DEFINED with U+2581 replaced by ' '. tokenizer.ggml.model = "llama",
 * tokenizer.ggml.pre = "default".
 */
#ifndef QFORGE_TOK_SPM_MODEL_H
#define QFORGE_TOK_SPM_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenizer/tok_error.h"

#define TOK_SPM_MAX_PIECES (1u << 22)      /* pieces in one model */
#define TOK_SPM_MAX_PIECE_LEN (64u << 10)  /* bytes of one piece */
#define TOK_SPM_MAX_FILE (256u << 20)      /* bytes of a tokenizer.model file */
#define TOK_SPM_PAD_TEXT_SIZE 32           /* buffer for tok_spm_pad_text() */

/* SentencePiece piece types (ModelProto.SentencePiece.Type). */
enum tok_spm_piece_type {
    TOK_SPM_NORMAL = 1, TOK_SPM_UNKNOWN = 2, TOK_SPM_CONTROL = 3, TOK_SPM_USER_DEFINED = 4, TOK_SPM_UNUSED = 5, TOK_SPM_BYTE = 6
};

/* GGUF tokenizer.ggml.token_type values (llama.cpp's LLAMA_TOKEN_TYPE_*). */
enum tok_spm_gguf_token_type {
    TOK_SPM_TOKEN_NORMAL = 1, TOK_SPM_TOKEN_UNKNOWN = 2, TOK_SPM_TOKEN_CONTROL = 3,
    TOK_SPM_TOKEN_USER_DEFINED = 4, TOK_SPM_TOKEN_UNUSED = 5, TOK_SPM_TOKEN_BYTE = 6
};

/* Trainer and normalizer settings; absent fields hold the .proto defaults shown. */
typedef struct {
    int32_t model_type;              /* 1 UNIGRAM (default), 2 BPE, 3 WORD, 4 CHAR */
    int32_t vocab_size;              /* trainer's vocab_size (default 8000) */
    bool treat_whitespace_as_suffix; /* default false */
    bool byte_fallback;              /* default false */
    int32_t unk_id;                  /* default 0 */
    int32_t bos_id;                  /* default 1 */
    int32_t eos_id;                  /* default 2 */
    int32_t pad_id;                  /* default -1 */
    bool add_dummy_prefix;           /* default true */
    bool remove_extra_whitespaces;   /* default true */
    bool escape_whitespaces;         /* default true */
} tok_spm_spec;

typedef struct tok_spm_model tok_spm_model;

/* Parse a ModelProto held in memory. The model copies what it keeps (buf may be freed after).
 * On success *out is owned by the caller; free with tok_spm_free(). */
tok_error tok_spm_load_memory(const void *buf, size_t n, tok_spm_model **out, char *msg);
/* Read and parse a file (at most TOK_SPM_MAX_FILE bytes); messages start with the path. */
tok_error tok_spm_load_file(const char *path, tok_spm_model **out, char *msg);
void tok_spm_free(tok_spm_model *m);

int64_t tok_spm_n_pieces(const tok_spm_model *m);
/* Piece i's bytes, NUL-terminated (a piece may itself contain NUL bytes: use *len), owned by
 * the model; len may be NULL. NULL when i is out of range. */
const char *tok_spm_piece(const tok_spm_model *m, int64_t i, size_t *len);
float tok_spm_score(const tok_spm_model *m, int64_t i);     /* 0 when out of range */
int tok_spm_type(const tok_spm_model *m, int64_t i);        /* enum tok_spm_piece_type; 0 when out of range */
/* GGUF token_type of piece i as llama.cpp's converter derives it: UNKNOWN, CONTROL, UNUSED and
 * BYTE map to themselves, everything else (NORMAL and USER_DEFINED) to NORMAL. 0 if out of range. */
int tok_spm_token_type(const tok_spm_model *m, int64_t i);
const tok_spm_spec *tok_spm_get_spec(const tok_spm_model *m);

/* The converter's filler text for id ("[PAD<id>]") into buf; returns its length. */
size_t tok_spm_pad_text(int64_t id, char buf[TOK_SPM_PAD_TEXT_SIZE]);

#endif
