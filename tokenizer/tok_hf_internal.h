/* tok_hf internals shared by tok_hf.c (files, vocabulary, merges, pre-tokenizer, writing) and
 * tok_hf_special.c (gguf-py's SpecialVocab: special ids, add_* flags, chat templates,
 * normalizer flags). Not part of the public contract. */
#ifndef QFORGE_TOK_HF_INTERNAL_H
#define QFORGE_TOK_HF_INTERNAL_H

#include <jansson.h>

#include "tokenizer/tok_hf.h"

/* Special token kinds in SpecialVocab's order. */
enum { ST_BOS, ST_EOS, ST_UNK, ST_SEP, ST_PAD, ST_CLS, ST_MASK, ST_EOT, ST_EOM, ST_N };

typedef struct {
    char *name;     /* sanitized; "" for the default template */
    char *text;
} tok_hf_template;

struct tok_hf {
    char *dir;
    int64_t n;            /* V */
    char **text;          /* V token texts (into arena) */
    int32_t *type;
    int64_t n_merges;
    char **merge;         /* into arena */
    char *arena;
    size_t arena_len, arena_cap;
    char pre[64];
    char check_hash[65];
    /* SpecialVocab */
    int n_id, id_kind[ST_N];
    int64_t id[ST_N];     /* by kind, -1 unset */
    int n_add, add_kind[ST_N];
    int add[ST_N];        /* by kind, -1 unset */
    int lowercase, strip_accents, add_prefix_space; /* -1 absent, else 0/1 */
    tok_hf_template *tmpl; /* named templates in file order, then the default (name "") if any */
    size_t n_tmpl;
    char **file;
    size_t n_file;
    unsigned real_ints;   /* bit 1: config.json was read with integers as reals (one overflowed) */
};

/* Messages: "PATH: what" into msg; returns e. */
tok_error tok_hf_fail_(char *msg, tok_error e, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* DIR/NAME, malloc'ed (NULL when out of memory). */
char *tok_hf_path_(const char *dir, const char *name);
/* Whole file into a malloc'ed NUL-terminated buffer. Absent file: TOK_OK with *buf NULL when
 * optional. Not a regular file, larger than cap: errors. */
tok_error tok_hf_read_(const char *path, size_t cap, bool optional, char **buf, size_t *len, char *msg);
/* A JSON file through jansson with duplicate keys refused; absent optional file: *out NULL. */
tok_error tok_hf_json_(tok_hf *h, const char *path, size_t cap, bool optional, json_t **out, char *msg);
/* Remember a file read. */
tok_error tok_hf_note_file_(tok_hf *h, const char *path, char *msg);
/* Python truthiness of a JSON value (NULL: false). */
bool tok_hf_truthy_(const json_t *j);

/* SpecialVocab(dir, load_merges=True) minus the merges, from the parsed files (tc, config
 * may be NULL). Reads the chat template files itself. */
tok_error tok_hf_special_(tok_hf *h, const json_t *tokenizer, const json_t *tc, const json_t *config, char *msg);

#endif
