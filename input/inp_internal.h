/* input internals shared by source.c (dispatch, GGUF source, row reads) and checkpoint.c
 * (Hugging Face checkpoint directories). Not part of the public contract. */
#ifndef QFORGE_INP_INTERNAL_H
#define QFORGE_INP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/qf_msg.h"
#include "input/safetensors.h"
#include "input/input.h"

/* Where one tensor's bytes are and how its rows are ordered. */
typedef struct {
    const uint8_t *data;   /* first byte of the tensor as stored */
    uint64_t nbytes;
    size_t row_bytes;      /* bytes of one ggml row (ne[0] elements) */
    int64_t perm_groups;   /* > 0: llama.cpp's Q/K row permutation with this many heads */
    int shard;             /* checkpoint: index into shards; -1 for GGUF and computed tensors */
    size_t st_index;       /* checkpoint: tensor index in its shard */
} inp_slot;

struct inp_source {
    bool ckpt;
    char *path;
    /* metadata */
    gguf_reader *meta;
    void *meta_buf;        /* checkpoint: serialized KV set the reader borrows */
    /* tensors, in file (GGUF) or conversion (checkpoint) order */
    int64_t n;
    inp_tensor *t;
    inp_slot *slot;
    /* GGUF: our own read-only mapping of the file, so pages can be dropped safely */
    uint8_t *map;
    size_t map_size;
    /* checkpoint */
    inp_st_file **shards;
    size_t n_shards;
    /* checkpoint: tensors the converter computes (F32), owned */
    float *gen;
    /* every input file */
    char **files;
    size_t n_files;
};

/* Fills s (already zeroed; s->path set) from a checkpoint directory. */
inp_error inp_ckpt_open(const char *dir, const inp_open_opts *opts, inp_source *s, char *msg);

/* One-line message "fmt..." into msg[INP_MSG_SIZE] (may be NULL; common/qf_msg.h); returns e. */
inp_error inp_fail(char *msg, inp_error e, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* One-line check: if cond, return inp_fail(msg, code, fmt, ...). */
#define INP_FAIL_IF(cond, msg, code, ...) QF_FAIL_IF(cond, inp_fail, msg, code, __VA_ARGS__)

/* Message-safe copy of untrusted bytes s[0..len) into out[size] (size >= 4): C0/C1 control
 * characters, DEL, U+2028/U+2029 and bytes that are not UTF-8 become '?'; when it does not fit,
 * it is cut at a character boundary and ends in "...". Returns out. (input/safetensors.c) */
const char *inp_printable_(const char *s, size_t len, char *out, size_t size);
#define INP_SHOWN_SIZE 80 /* out size for names shown in messages */
/* Defense in depth for one-line messages: control bytes left in msg become '?' (qf_msg_clean;
 * kept for existing callers). */
void inp_msg_clean_(char *msg);

/* Appends a copy of path to s->files. */
inp_error inp_add_file(inp_source *s, const char *path, char *msg);

#endif
