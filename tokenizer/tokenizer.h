/* tok_model — llama.cpp's SentencePiece ("llama", SPM) and byte-level BPE ("gpt2") tokenizers.
 *
 * Built from plain arrays (token bytes, scores, GGUF token types, BPE merges), so it does not
 * depend on a file format; tok_from_gguf() fills them from a GGUF's tokenizer.ggml.* metadata.
 *
 * Both algorithms share the vocabulary part (src/llama-vocab.cpp, llama_vocab::tokenize):
 *  1. The text is split around special tokens: CONTROL/UNKNOWN tokens only with
 *     TOK_PARSE_SPECIAL, USER_DEFINED tokens always; longest token text first.
 *  2. BOS first when asked; EOS last when asked.
 * SPM, on each remaining fragment:
 *  3. A leading ' ' when add_space_prefix is set and the fragment starts the text or follows a
 *     special token; ' ' becomes U+2581.
 *  4. The fragment is split into characters by the high bits of each lead byte, as llama.cpp
 *     does (0x00-0xBF: 1 byte, 0xC0-0xDF: 2, 0xE0-0xEF: 3, 0xF0-0xFF: 4, cut short at the end);
 *     adjacent symbols whose concatenation is a token are merged, highest token score first,
 *     ties to the leftmost pair, until nothing merges.
 *  5. Each final symbol is its token, or else one byte token per byte ("<0xXX>", falling back
 *     to the one-byte token).
 * BPE (the GPT-2 scheme), on each remaining fragment:
 *  3. The pre-tokenizer named by tokenizer.ggml.pre splits the fragment into words with
 *     llama.cpp's regexes for that name, run through PCRE2 (tokenizer/tok_pretok.c says how
 *     llama.cpp's regex engine is reproduced); every byte of a word becomes its GPT-2 unicode
 *     character.
 *  4. Within a word, adjacent symbols (starting from characters) are merged by merge rank,
 *     lowest rank first, ties to the leftmost pair. With the "ignore merges" pre-tokenizers
 *     (llama-bpe, tekken, ...) a word that is itself a token is taken whole.
 *  5. Each final symbol is its token; a symbol that is not a token gives the token of each of
 *     its single bytes that is one (others are dropped, as llama.cpp does).
 * llama-perplexity tokenizes its whole input at once with add_special and parse_special =
 * false: flags tok_default_flags().
 *
 * Vocabulary fix-ups done as llama.cpp does at load: empty tokens get the text "[EMPTY_<id>]";
 * a repeated token text is an error; tokens named like end-of-generation / FIM markers
 * ("</s>", "<|im_end|>", "<|fim_prefix|>", ...) gain the CONTROL attribute; gpt-oss's
 * "<|channel|>", "<|message|>", "<|start|>", "<|constrain|>" become USER_DEFINED (BPE); with
 * rstrip_special (llama.cpp does it when general.name contains "phi3"/"phi-3") special tokens
 * swallow following whitespace. Deviations, none affecting Llama/Qwen-style vocabularies:
 * llama.cpp marks only the first FIM name of each kind (and none when the GGUF gives its id),
 * sorts equal-length special tokens in no defined order (here: by id).
 *
 * Memory/threads: a tok_model is immutable after creation and owns copies of everything; encode
 * uses only local scratch, so one tokenizer may be shared by threads.
 * Errors: tok_error (tokenizer/tok_error.h) + one line in msg[TOK_MSG_SIZE] (msg may be
 * NULL): TOK_ERR_NOMEM; TOK_ERR_ARG (bad argument, text too long, id out of range, BOS/EOS asked
 * for but absent, output buffer too small); TOK_ERR_MODEL (unusable vocabulary: duplicate token,
 * bad special id, missing arrays, a byte with no byte-fallback token); TOK_ERR_UNSUPPORTED
 * (tokenizer.ggml.model other than "llama"/"gpt2", a pre-tokenizer not in the table);
 * TOK_ERR_LIMIT (a text whose pre-tokenization exceeds PCRE2's match limits). Never prints or exits.
 */
#ifndef QFORGE_TOKENIZER_H
#define QFORGE_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "libgguf/gguf.h"
#include "tokenizer/tok_error.h"

#define TOK_MAX_TOKENS (1 << 24)        /* vocabulary entries */
#define TOK_MAX_TEXT ((size_t)1 << 30)  /* bytes of one encode input (after escaping) */
#define TOK_MAX_MERGES (1 << 24)        /* BPE merges */

/* GGUF token types (tokenizer.ggml.token_type). */
enum tok_type {
    TOK_UNDEFINED = 0, TOK_NORMAL = 1, TOK_UNKNOWN = 2, TOK_CONTROL = 3,
    TOK_USER_DEFINED = 4, TOK_UNUSED = 5, TOK_BYTE = 6
};

/* Encode flags. */
enum {
    TOK_ADD_BOS = 1,        /* prepend the BOS token */
    TOK_ADD_EOS = 2,        /* append the EOS token */
    TOK_PARSE_SPECIAL = 4,  /* CONTROL/UNKNOWN token texts in the input become those tokens */
};

/* Tokenizer algorithms (tokenizer.ggml.model "llama" / "gpt2"). */
enum tok_kind { TOK_KIND_SPM = 1, TOK_KIND_BPE = 2 };

typedef struct {
    int32_t bos_id;         /* -1: none. Default 1 (llama.cpp's SPM default; BPE: 11) */
    int32_t eos_id;         /* -1: none. Default 2 (BPE: 11) */
    bool add_space_prefix;  /* tokenizer.ggml.add_space_prefix; default true (SPM only) */
    bool add_bos;           /* tokenizer.ggml.add_bos_token; default true (see tok_default_flags) */
    bool add_eos;           /* tokenizer.ggml.add_eos_token; default false */
    bool rstrip_special;    /* phi-3 rule, see above; default false */
} tok_options;

void tok_default_options(tok_options *o);
/* llama.cpp's BPE defaults for a pre-tokenizer name: bos = eos = 11, add_bos true for the
 * llama-bpe and tekken families, no BOS for glm4/chatglm-bpe, add_eos false. */
void tok_default_options_bpe(const char *pre, tok_options *o);

typedef struct tok_model tok_model;

/* Build a tokenizer from n tokens: texts[i] of lens[i] bytes (lens NULL: NUL-terminated),
 * scores (NULL: all 0), types (enum tok_type; NULL: all NORMAL), opt (NULL: defaults).
 * Everything is copied. bos_id/eos_id must be -1 or < n. *out is freed with tok_free(). */
tok_error tok_create(int32_t n, const char *const *texts, const size_t *lens, const float *scores,
                           const int32_t *types, const tok_options *opt, tok_model **out, char *msg);
/* From GGUF metadata: tokenizer.ggml.model "llama" (SPM) or "gpt2" (BPE: merges and pre too);
 * tokens, scores (F32), token_type (I32), bos/eos ids, add_space_prefix, add_bos_token,
 * add_eos_token and general.name as llama.cpp reads them (out-of-range special ids keep the
 * defaults, as llama.cpp does). */
tok_error tok_from_gguf(const gguf_reader *r, tok_model **out, char *msg);
/* Byte-level BPE from n tokens (types NULL: all NORMAL; no scores), n_merges "first second"
 * strings (merge_lens NULL: NUL-terminated) in rank order, and a pre-tokenizer name from
 * tok_pre_name() (NULL or "": "default", as llama.cpp does for a missing
 * tokenizer.ggml.pre). opt NULL: tok_default_options_bpe(pre), a default id >= n disabled.
 * *out freed with tok_free(). */
tok_error tok_create_bpe(int32_t n, const char *const *texts, const size_t *lens, const int32_t *types,
                         int64_t n_merges, const char *const *merges, const size_t *merge_lens, const char *pre,
                         const tok_options *opt, tok_model **out, char *msg);
void tok_free(tok_model *t);

int tok_kind(const tok_model *t);            /* enum tok_kind; 0 for NULL */
const char *tok_pre(const tok_model *t);      /* BPE: the pre-tokenizer name; SPM: NULL */
int32_t tok_n_tokens(const tok_model *t);
int32_t tok_bos(const tok_model *t);          /* -1 if none */
int32_t tok_eos(const tok_model *t);          /* -1 if none */
/* What llama.cpp's add_special means for this vocabulary: TOK_ADD_BOS / TOK_ADD_EOS bits. */
unsigned tok_default_flags(const tok_model *t);
/* Token text as stored (SPM: U+2581 for spaces; BPE: GPT-2 byte characters), owned by t; NULL
 * if id is out of range. */
const char *tok_text(const tok_model *t, int32_t id, size_t *len);
float tok_score(const tok_model *t, int32_t id);
int tok_type(const tok_model *t, int32_t id); /* as given at creation; -1 if out of range */

/* Tokenize len bytes of text (any bytes; NUL is an ordinary byte). On success *ids is a
 * malloc'ed array of *n_ids tokens that the caller frees (NULL when *n_ids is 0). */
tok_error tok_encode(const tok_model *t, const char *text, size_t len, unsigned flags, int32_t **ids,
                           size_t *n_ids, char *msg);
/* The same into out[cap]; TOK_ERR_ARG with *n_out = tokens needed (> cap) when cap is too small. */
tok_error tok_encode_into(const tok_model *t, const char *text, size_t len, unsigned flags, int32_t *out,
                                size_t cap, size_t *n_out, char *msg);

/* llama.cpp's token_to_piece: NORMAL tokens with U+2581 turned into ' ' (SPM) or decoded from
 * the GPT-2 byte characters (BPE; a character that is not one becomes "[UNK_BYTE_0x<hex><token>]"
 * as in llama.cpp), BYTE tokens as their byte, USER_DEFINED as stored, CONTROL/UNKNOWN as
 * stored only when special (else empty), UNUSED/UNDEFINED empty.
 * Writes min(length, cap) bytes (no NUL) and returns the full length, or -1 for an invalid id. */
int64_t tok_piece(const tok_model *t, int32_t id, bool special, char *buf, size_t cap);

/* The pre-tokenizer names tok_create_bpe() knows, i < tok_pre_count(); NULL past the end. */
size_t tok_pre_count(void);
const char *tok_pre_name(size_t i);

#endif
