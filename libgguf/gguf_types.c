/* libgguf: error strings, the tensor type table and the metadata value types. */
#include "libgguf/gguf.h"
#include "libgguf/gguf_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

const char *gguf_strerror(gguf_error e)
{
    switch (e) {
    case GGUF_OK: return "success";
    case GGUF_ERR_IO: return "I/O error";
    case GGUF_ERR_NOMEM: return "out of memory";
    case GGUF_ERR_MAGIC: return "not a GGUF file";
    case GGUF_ERR_VERSION: return "unsupported GGUF version";
    case GGUF_ERR_TRUNCATED: return "truncated file";
    case GGUF_ERR_LIMIT: return "count or length exceeds its limit";
    case GGUF_ERR_OVERFLOW: return "size overflow";
    case GGUF_ERR_DUPLICATE: return "duplicate key or tensor name";
    case GGUF_ERR_VALUE_TYPE: return "bad value type";
    case GGUF_ERR_TENSOR_TYPE: return "unknown tensor type";
    case GGUF_ERR_SHAPE: return "bad tensor shape";
    case GGUF_ERR_ALIGN: return "bad alignment";
    case GGUF_ERR_OFFSET: return "tensor data outside the file or overlapping";
    case GGUF_ERR_NAME: return "empty or over-long name";
    case GGUF_ERR_NOT_FOUND: return "not found";
    case GGUF_ERR_ARG: return "invalid argument";
    case GGUF_ERR_STATE: return "call out of order";
    case GGUF_ERR_COUNT_: break;
    }
    return "unknown error";
}

/* Block sizes and bytes per block as in ggml (ggml-common.h block structs); libquant's
 * lq_blocks.h checks its structs against the same figures. */
#define T(name, block, bytes) {name, block, {bytes}}
const gguf_type_traits gguf_type_table[GGUF_TYPE_MAX_] = {
    [GGUF_F32] = T("f32", 1, 4),
    [GGUF_F16] = T("f16", 1, 2),
    [GGUF_Q4_0] = T("q4_0", 32, 2 + 16),
    [GGUF_Q4_1] = T("q4_1", 32, 2 + 2 + 16),
    [GGUF_Q5_0] = T("q5_0", 32, 2 + 4 + 16),
    [GGUF_Q5_1] = T("q5_1", 32, 2 + 2 + 4 + 16),
    [GGUF_Q8_0] = T("q8_0", 32, 2 + 32),
    [GGUF_Q8_1] = T("q8_1", 32, 2 + 2 + 32),
    [GGUF_Q2_K] = T("q2_K", 256, 16 + 64 + 2 + 2),
    [GGUF_Q3_K] = T("q3_K", 256, 32 + 64 + 12 + 2),
    [GGUF_Q4_K] = T("q4_K", 256, 2 + 2 + 12 + 128),
    [GGUF_Q5_K] = T("q5_K", 256, 2 + 2 + 12 + 32 + 128),
    [GGUF_Q6_K] = T("q6_K", 256, 128 + 64 + 16 + 2),
    [GGUF_Q8_K] = T("q8_K", 256, 4 + 256 + 16 * 2),
    [GGUF_IQ4_NL] = T("iq4_nl", 32, 2 + 16),
    [GGUF_IQ4_XS] = T("iq4_xs", 256, 2 + 2 + 4 + 128),
    [GGUF_BF16] = T("bf16", 1, 2),
};
#undef T

const gguf_type_traits *gguf_type_info(int type)
{
    if (type < 0 || type >= GGUF_TYPE_MAX_ || gguf_type_table[type].name == NULL)
        return NULL;
    return &gguf_type_table[type];
}

int gguf_type_from_name(const char *name)
{
    if (!name)
        return -1;
    for (int t = 0; t < GGUF_TYPE_MAX_; t++)
        if (gguf_type_table[t].name && strcasecmp(gguf_type_table[t].name, name) == 0)
            return t;
    return -1;
}

size_t gguf_row_size(int type, int64_t ne0)
{
    const gguf_type_traits *tt = gguf_type_info(type);
    if (!tt || ne0 <= 0 || ne0 % tt->block_size != 0)
        return 0;
    uint64_t blocks = (uint64_t)ne0 / tt->block_size, bytes;
    if (__builtin_mul_overflow(blocks, (uint64_t)tt->block_bytes, &bytes) || bytes > SIZE_MAX)
        return 0;
    return (size_t)bytes;
}

static const char *const vtype_names[GGUF_VAL_COUNT_] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64",
};
static const unsigned char vtype_sizes[GGUF_VAL_COUNT_] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

const char *gguf_value_type_name(int vtype)
{
    return vtype >= 0 && vtype < GGUF_VAL_COUNT_ ? vtype_names[vtype] : "?";
}

size_t gguf_value_type_size(int vtype)
{
    return vtype >= 0 && vtype < GGUF_VAL_COUNT_ ? vtype_sizes[vtype] : 0;
}

/* ---- internal helpers shared by reader and writer ---- */

gguf_error gguf_fail_(char *msg, gguf_error e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    qf_msg_vformat(msg, GGUF_MSG_SIZE, NULL, fmt, ap);
    va_end(ap);
    return e;
}

const char *gguf_printable_(const char *s, size_t len, char out[GGUF_PRINT_SIZE])
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 4 < GGUF_PRINT_SIZE; i++) {
        unsigned char c = (unsigned char)s[i];
        out[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (len > 0 && o + 4 >= GGUF_PRINT_SIZE && o < len) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = 0;
    return out;
}

uint64_t gguf_hash_(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

bool gguf_index_init_(gguf_index_ *ix, size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n + 2)
        cap *= 2;
    ix->slots = calloc(cap, sizeof *ix->slots);
    ix->mask = ix->slots ? cap - 1 : 0;
    ix->count = 0;
    return ix->slots != NULL;
}

void gguf_index_free_(gguf_index_ *ix)
{
    free(ix->slots);
    ix->slots = NULL;
    ix->mask = ix->count = 0;
}

int64_t gguf_index_find_(const gguf_index_ *ix, const char *s, size_t len, gguf_name_at_ name_at,
                         const void *ctx)
{
    if (!ix->slots)
        return -1;
    for (size_t h = (size_t)gguf_hash_(s, len) & ix->mask;; h = (h + 1) & ix->mask) {
        int64_t v = ix->slots[h];
        if (v == 0)
            return -1;
        size_t l2;
        const char *s2 = name_at(ctx, v - 1, &l2);
        if (l2 == len && memcmp(s, s2, len) == 0)
            return v - 1;
    }
}

void gguf_index_put_(gguf_index_ *ix, const char *s, size_t len, int64_t i)
{
    size_t h = (size_t)gguf_hash_(s, len) & ix->mask;
    while (ix->slots[h] != 0)
        h = (h + 1) & ix->mask;
    ix->slots[h] = i + 1;
    ix->count++;
}
