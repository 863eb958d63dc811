/* tokenizer internals shared by its files. Not part of the public contract.
 *
 * tokenizer.c  the vocabulary (text -> id table, token attributes, special tokens), the
 *              special-token partition and the encode driver common to both algorithms
 * tok_symbols.c the merge loop both algorithms share (symbols, bigram queue)
 * tok_spm.c    llama.cpp's SentencePiece algorithm on one text fragment
 * tok_bpe.c    llama.cpp's byte-level BPE algorithm on one text fragment, merge ranks
 * tok_pretok.c the BPE pre-tokenizers: regexes per name (PCRE2), byte <-> unicode mapping,
 *              the check-text hashes of known tokenizers
 */
#ifndef QFORGE_TOK_INTERNAL_H
#define QFORGE_TOK_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenizer/tok_error.h"
#include "tokenizer/tokenizer.h"

/* Defense in depth for one-line messages: control bytes left in msg become '?'. */
void tok_msg_clean_(char *msg);
/* printf into msg[TOK_MSG_SIZE] (msg may be NULL), then tok_msg_clean_. */
void tok_set_msg_(char *msg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* llama.cpp's token attributes (llama_token_attr). */
enum {
    TOK_ATTR_UNKNOWN = 1 << 0, TOK_ATTR_UNUSED = 1 << 1, TOK_ATTR_NORMAL = 1 << 2, TOK_ATTR_CONTROL = 1 << 3,
    TOK_ATTR_USER_DEFINED = 1 << 4, TOK_ATTR_BYTE = 1 << 5, TOK_ATTR_LSTRIP = 1 << 7, TOK_ATTR_RSTRIP = 1 << 8,
};

typedef struct {
    int32_t *v;
    size_t n, cap;
} tok_ivec;
bool tok_ivec_push_(tok_ivec *a, int32_t x);

/* UTF-8 sequence length from the lead byte as llama.cpp counts it (no validation). */
static inline size_t tok_utf8_len_(uint8_t lead)
{
    static const uint8_t len[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return len[lead >> 4];
}

typedef struct tok_bpe_ranks tok_bpe_ranks;
typedef struct tok_pretok tok_pretok;

/* Pre-tokenizer flags (what llama.cpp sets per tokenizer.ggml.pre). */
enum { TOK_PRE_IGNORE_MERGES = 1, TOK_PRE_ADD_BOS = 2, TOK_PRE_NO_BOS = 4 };

typedef struct {
    const char *name;
    const char *const *regex; /* NULL-terminated, applied in order */
    unsigned flags;
} tok_pre_def;

struct tok_model {
    int kind;              /* TOK_KIND_SPM / TOK_KIND_BPE */
    int32_t n;
    char *arena;           /* every token text, each followed by a NUL */
    size_t *off;           /* text of token i = arena + off[i], len[i] bytes */
    uint32_t *len;
    float *score;
    int32_t *type;         /* as given */
    uint32_t *attr;
    int32_t *slot;         /* open-addressing table text -> id, -1 empty */
    size_t mask;
    size_t max_len;        /* longest token text */
    uint8_t pair[256][32]; /* SPM: bit (x, y): bytes x, y are adjacent in some token text */
    int32_t byte_tok[256]; /* SPM: byte fallback token per byte, -1 if none */
    int32_t *special;      /* CONTROL/USER_DEFINED/UNKNOWN tokens, longest text first */
    int32_t n_special;
    tok_options opt;
    /* BPE only */
    const tok_pre_def *pre;
    tok_pretok *pretok;
    tok_bpe_ranks *ranks;
};

/* Token id of the n bytes at s, -1 if none. */
int32_t tok_lookup_(const tok_model *t, const char *s, size_t n);

/* Encode text (no BOS/EOS, specials not parsed) with t's vocabulary and merges but the
 * pre-tokenizer def (compiled on the fly): the pre-tokenizer detection's tool. */
tok_error tok_encode_as_(const tok_model *t, const tok_pre_def *def, const char *text, size_t len, tok_ivec *out,
                         char *msg);

/* ---- the merge loop shared by SPM and BPE (tok_symbols.c) ---- */
typedef struct {
    double key;            /* smaller merges first: SPM -score, BPE rank; ties: leftmost */
    int32_t left, right;
    uint32_t size;         /* bytes of both sides when queued (stale once it differs) */
} tok_bigram;

typedef struct {
    const char *text;      /* the piece being merged */
    uint32_t *start, *n;   /* symbol i: text[start[i] .. start[i]+n[i]); n 0 once merged away */
    int32_t *prev, *next;
    size_t cap;
    tok_bigram *heap;
    size_t heap_n, heap_cap;
} tok_symbols;

/* Split text[0..len) into characters (llama.cpp's lead-byte lengths, cut short at the end),
 * linked in order; returns their count, -1 when out of memory. */
int32_t tok_symbols_init_(tok_symbols *s, const char *text, size_t len);
/* Queue the merge of symbols left and right (adjacent) with its key; false: out of memory. */
bool tok_symbols_push_(tok_symbols *s, double key, int32_t left, int32_t right);
/* pair(ctx, s, l, r) queues the merge of adjacent symbols l, r when there is one (false: out of
 * memory). run: queue every adjacent pair of the ns symbols, then merge the best queued pair
 * and queue its new neighbours until nothing is left, as llama.cpp's sessions do. */
typedef bool (*tok_pair_fn)(const void *ctx, tok_symbols *s, int32_t l, int32_t r);
bool tok_symbols_run_(tok_symbols *s, int32_t ns, tok_pair_fn pair, const void *ctx);
void tok_symbols_free_(tok_symbols *s);

/* ---- SPM (tok_spm.c): one raw fragment, with the U+2581 escaping and the optional
 * leading space; *work is scratch created on first use, freed with tok_spm_work_free_. */
typedef struct tok_spm_work tok_spm_work;
tok_error tok_spm_fragment_(const tok_model *t, tok_spm_work **work, const char *text, size_t len, bool prefix,
                            tok_ivec *out, char *msg);
void tok_spm_work_free_(tok_spm_work *w);

/* ---- BPE (tok_bpe.c) ---- */
/* Merge ranks from "first second" strings (llama.cpp splits at the first ' ' after byte 0;
 * an entry without one is ignored; a repeated pair keeps its first rank). */
tok_error tok_bpe_ranks_create_(int64_t n, const char *const *merges, const size_t *lens, tok_bpe_ranks **out,
                                char *msg);
void tok_bpe_ranks_free_(tok_bpe_ranks *r);
typedef struct tok_bpe_work tok_bpe_work;
tok_error tok_bpe_fragment_(const tok_model *t, tok_bpe_work **work, const char *text, size_t len, tok_ivec *out,
                            char *msg);
void tok_bpe_work_free_(tok_bpe_work *w);

/* ---- pre-tokenizer (tok_pretok.c) ---- */
const tok_pre_def *tok_pre_find_(const char *name);
const tok_pre_def *tok_pre_def_at_(size_t i); /* i < tok_pre_count(), else NULL */
/* Name llama.cpp's converter gives to the SHA-256 (hex) of a check-text encoding, or NULL. */
const char *tok_pre_hash_name_(const char *sha256_hex);
/* llama.cpp's check text (get_vocab_base_pre's chktxt), NUL-terminated. */
extern const char tok_pre_check_text_[];
tok_error tok_pretok_create_(const tok_pre_def *def, tok_pretok **out, char *msg);
void tok_pretok_free_(tok_pretok *p);

/* The words of one fragment: word i is buf[end[i-1] .. end[i]) (end[-1] = 0), already
 * byte-level encoded (every byte of the word's UTF-8 as its GPT-2 unicode character). */
typedef struct {
    char *buf;
    size_t len, cap;
    size_t *end;
    size_t n, end_cap;
    /* scratch */
    uint32_t *cpt;       /* code points of the fragment */
    size_t cpt_cap;
    char *subj;          /* what the regexes see */
    size_t subj_cap;
    size_t *subj_off;    /* byte offset in subj of code point i (n + 1 entries) */
    size_t subj_off_cap;
    size_t *seg, *seg2;  /* segment boundaries in code points */
    size_t seg_cap, seg2_cap;
    void *match;         /* pcre2 match data, match context, JIT stack */
    void *mctx;
    void *jit_stack;
} tok_words;
tok_error tok_pretok_split_(const tok_pretok *p, const char *text, size_t len, tok_words *w, char *msg);
void tok_words_free_(tok_words *w);

/* llama.cpp's UTF-8 decoding (unicode_cpts_from_utf8): the code point at s[*i], advancing *i;
 * a malformed sequence gives U+FFFD and advances one byte. Overlong forms and surrogates are
 * accepted as llama.cpp accepts them; sequences above U+10FFFF (which make llama.cpp throw)
 * count as malformed. */
uint32_t tok_utf8_decode_(const char *s, size_t n, size_t *i);
/* Strict UTF-8 (as Python decodes it: no overlong forms, surrogates or code points above
 * U+10FFFF). */
bool tok_utf8_valid_(const char *s, size_t n);
/* UTF-8 of a code point <= 0x10FFFF (surrogates included) into out; returns 1..4. */
size_t tok_utf8_encode_(uint32_t cpt, char out[4]);

/* GPT-2 byte <-> unicode mapping: byte b as UTF-8 (1 or 2 bytes) into out, returns length. */
size_t tok_byte_to_utf8_(uint8_t b, char out[2]);
/* The byte a code point stands for, or -1 when it is not one of the 256. */
int tok_cpt_to_byte_(uint32_t cpt);

#endif
