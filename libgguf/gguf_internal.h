/* libgguf private helpers shared by the reader and the writer (not part of the contract). */
#ifndef QFORGE_GGUF_INTERNAL_H
#define QFORGE_GGUF_INTERNAL_H

#include "common/qf_msg.h"
#include "libgguf/gguf.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "libgguf assumes a little-endian host"
#endif

#define GGUF_KEY_ALIGNMENT "general.alignment"
/* Smallest encodings, used to bound counts by the bytes left before allocating:
 * a KV is key length (8) + vtype (4) + at least one value byte; a tensor info is
 * name length (8) + n_dims (4) + one dim (8) + type (4) + offset (8). */
#define GGUF_MIN_KV_BYTES 13u
#define GGUF_MIN_TENSOR_INFO_BYTES 32u
#define GGUF_HEADER_BYTES 24u

#define GGUF_PRINT_SIZE 52

/* Write a one-line message into msg[GGUF_MSG_SIZE] (if not NULL) and return e. */
gguf_error gguf_fail_(char *msg, gguf_error e, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* One-line check: if cond, return gguf_fail_(msg, code, fmt, ...). */
#define GGUF_FAIL_IF(cond, msg, code, ...) QF_FAIL_IF(cond, gguf_fail_, msg, code, __VA_ARGS__)
/* A short printable copy of an untrusted name for messages. */
const char *gguf_printable_(const char *s, size_t len, char out[GGUF_PRINT_SIZE]);

/* Open-addressing index from names to item numbers; the names live with the caller. */
typedef const char *(*gguf_name_at_)(const void *ctx, int64_t i, size_t *len);
typedef struct {
    int64_t *slots; /* item + 1, 0 = empty */
    size_t mask;
    size_t count;
} gguf_index_;

uint64_t gguf_hash_(const char *s, size_t len);
/* Room for n names (the caller never puts more than n). */
bool gguf_index_init_(gguf_index_ *ix, size_t n);
void gguf_index_free_(gguf_index_ *ix);
int64_t gguf_index_find_(const gguf_index_ *ix, const char *s, size_t len, gguf_name_at_ name_at,
                         const void *ctx);
void gguf_index_put_(gguf_index_ *ix, const char *s, size_t len, int64_t i);

static inline bool gguf_is_pow2_(uint64_t x) { return x != 0 && (x & (x - 1)) == 0; }

#endif
