/* libgguf — the GGUF container: type table, validating reader, streaming writer.
 *
 * File layout (GGUF v3; v2 is read too), all integers little-endian:
 *
 *   magic      "GGUF" (4 bytes)
 *   version    u32 (2 or 3)
 *   n_tensors  u64                      capped at GGUF_MAX_TENSORS
 *   n_kv       u64                      capped at GGUF_MAX_KV
 *   n_kv times:
 *     key      string                   (u64 length + bytes, no NUL), unique, length ≤ GGUF_MAX_KEY
 *     vtype    u32 (enum gguf_value_type)
 *     value    scalar: its bytes (bool = 1 byte, 0 or 1)
 *              string: u64 length + bytes (≤ GGUF_MAX_STRING)
 *              array:  u32 element vtype (no nested arrays) + u64 count (≤ GGUF_MAX_ARRAY) + elements
 *   n_tensors times:
 *     name     string, unique, length < GGUF_MAX_NAME (64)
 *     n_dims   u32, 1..4
 *     ne[n_dims] i64 each, > 0, ne[0] a multiple of the type's block size, product without overflow
 *     type     u32 (enum gguf_tensor_type)
 *     offset   u64 relative to the data section, a multiple of the alignment
 *   padding to `general.alignment` (u32, power of two; default 32)
 *   data section: each tensor's bytes at its offset, inside the file, no overlaps.
 *
 * Every count and length read from a file is checked against its cap, the bytes left and
 * SIZE_MAX before anything is allocated; the reader never trusts a size it has not checked.
 *
 * Errors: functions that can fail return a gguf_error and, when `msg` is not NULL, write a
 * one-line description (no file name, no newline) into msg[GGUF_MSG_SIZE].
 * The library never prints and never exits.
 */
#ifndef QFORGE_GGUF_H
#define QFORGE_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GGUF_MSG_SIZE 256
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_NAME 64               /* tensor names are shorter than this */
#define GGUF_MAX_KEY 65535
#define GGUF_MAX_STRING (64u << 20)    /* one string value */
#define GGUF_MAX_ARRAY (1u << 28)      /* elements in one array */
#define GGUF_MAX_KV (1u << 20)
#define GGUF_MAX_TENSORS (1u << 20)
#define GGUF_MAX_DIMS 4

typedef enum {
    GGUF_OK = 0,
    GGUF_ERR_IO,          /* open/read/write/fsync/rename failed (errno in message) */
    GGUF_ERR_NOMEM,
    GGUF_ERR_MAGIC,       /* not a GGUF file */
    GGUF_ERR_VERSION,     /* unsupported version */
    GGUF_ERR_TRUNCATED,   /* a field runs past the end of the file */
    GGUF_ERR_LIMIT,       /* a count or length exceeds its cap */
    GGUF_ERR_OVERFLOW,    /* a size computation overflows */
    GGUF_ERR_DUPLICATE,   /* duplicate key or tensor name */
    GGUF_ERR_VALUE_TYPE,  /* unknown value type, nested array, wrong type for a known key */
    GGUF_ERR_TENSOR_TYPE, /* unknown or unsupported tensor type */
    GGUF_ERR_SHAPE,       /* bad n_dims, non-positive dim, ne[0] not a block multiple */
    GGUF_ERR_ALIGN,       /* bad alignment value or misaligned offset */
    GGUF_ERR_OFFSET,      /* tensor data outside the file or overlapping */
    GGUF_ERR_NAME,        /* empty or over-long name/key */
    GGUF_ERR_NOT_FOUND,   /* key or tensor absent */
    GGUF_ERR_ARG,         /* invalid argument from the caller */
    GGUF_ERR_STATE,       /* call out of order (e.g. writing more bytes than declared) */
    GGUF_ERR_COUNT_
} gguf_error;

const char *gguf_strerror(gguf_error e);

/* ---- tensor types (ids as in ggml / the GGUF spec) ---- */
enum gguf_tensor_type {
    GGUF_F32 = 0, GGUF_F16 = 1, GGUF_Q4_0 = 2, GGUF_Q4_1 = 3,
    GGUF_Q5_0 = 6, GGUF_Q5_1 = 7, GGUF_Q8_0 = 8, GGUF_Q8_1 = 9,
    GGUF_Q2_K = 10, GGUF_Q3_K = 11, GGUF_Q4_K = 12, GGUF_Q5_K = 13, GGUF_Q6_K = 14, GGUF_Q8_K = 15,
    GGUF_IQ4_NL = 20, GGUF_IQ4_XS = 23,
    GGUF_BF16 = 30,
    GGUF_TYPE_MAX_ = 40
};

typedef struct {
    const char *name;        /* "f32", "q4_0", "q4_K", ... (ggml's spelling) */
    uint32_t block_size;     /* elements per block */
    union {
        uint32_t block_bytes; /* bytes per block */
        uint32_t type_size;   /* ggml's name for block_bytes (kept for existing callers) */
    };
} gguf_type_traits;

/* The container's type table, the one place that states each type's name, block size and
 * bytes per block (libquant's type table points into it). Indexed by type id; ids qforge
 * does not know have name == NULL. gguf_type_info() is the checked way in. */
extern const gguf_type_traits gguf_type_table[GGUF_TYPE_MAX_];

/* Traits of a tensor type qforge knows, or NULL for an unknown id. */
const gguf_type_traits *gguf_type_info(int type);
/* Type id from a name, case-insensitive ("Q4_K", "q4_k", "bf16"); -1 if unknown. */
int gguf_type_from_name(const char *name);
/* Bytes of one row of ne0 elements; 0 if ne0 is not a multiple of the block size or type unknown. */
size_t gguf_row_size(int type, int64_t ne0);

/* ---- metadata value types ---- */
enum gguf_value_type {
    GGUF_VAL_U8 = 0, GGUF_VAL_I8 = 1, GGUF_VAL_U16 = 2, GGUF_VAL_I16 = 3,
    GGUF_VAL_U32 = 4, GGUF_VAL_I32 = 5, GGUF_VAL_F32 = 6, GGUF_VAL_BOOL = 7,
    GGUF_VAL_STRING = 8, GGUF_VAL_ARRAY = 9, GGUF_VAL_U64 = 10, GGUF_VAL_I64 = 11,
    GGUF_VAL_F64 = 12,
    GGUF_VAL_COUNT_
};
const char *gguf_value_type_name(int vtype); /* "u32", "string", ...; "?" if unknown */
size_t gguf_value_type_size(int vtype);      /* bytes of a scalar; 0 for string/array/unknown */

typedef struct {
    const char *str;      /* NUL-terminated copy owned by the reader/writer */
    uint64_t len;         /* bytes, not counting the NUL (strings may contain NUL bytes) */
} gguf_str;

/* One metadata value. Owned by the reader it came from; valid until gguf_close(). */
typedef struct {
    enum gguf_value_type type;
    enum gguf_value_type elem_type; /* arrays only */
    uint64_t n;                     /* arrays only: element count */
    union {
        uint64_t u64; int64_t i64;  /* every integer type, widened (signed types sign-extended) */
        double f64;                 /* F32 and F64, widened */
        bool b;
        gguf_str str;
        const void *arr;            /* numeric/bool arrays: n elements of elem_type, native layout, aligned */
        const gguf_str *strs;       /* string arrays: n entries */
    } v;
} gguf_value;

/* ---- reader ---- */
typedef struct gguf_reader gguf_reader;

typedef struct {
    char name[GGUF_MAX_NAME];  /* NUL-terminated */
    uint32_t n_dims;
    int64_t ne[GGUF_MAX_DIMS]; /* unused dimensions are 1 */
    int type;                  /* enum gguf_tensor_type */
    uint64_t offset;           /* relative to the data section */
    uint64_t nbytes;
    const void *data;          /* into the mapping or buffer; valid until gguf_close() */
} gguf_tensor;

/* Map and validate a file. On success *out owns the mapping; free with gguf_close(). */
gguf_error gguf_open(const char *path, gguf_reader **out, char *msg);
/* Validate a buffer in memory. The buffer is borrowed and must outlive the reader. */
gguf_error gguf_open_memory(const void *buf, size_t size, gguf_reader **out, char *msg);
void gguf_close(gguf_reader *r);

uint32_t gguf_version(const gguf_reader *r);
size_t gguf_alignment(const gguf_reader *r);
uint64_t gguf_data_offset(const gguf_reader *r);   /* file offset of the data section */
uint64_t gguf_file_size(const gguf_reader *r);

int64_t gguf_n_kv(const gguf_reader *r);
const char *gguf_kv_key(const gguf_reader *r, int64_t i);
const gguf_value *gguf_kv_value(const gguf_reader *r, int64_t i);
int64_t gguf_find_kv(const gguf_reader *r, const char *key);     /* -1 if absent */

/* Typed getters by key: GGUF_ERR_NOT_FOUND if absent, GGUF_ERR_VALUE_TYPE if of another kind.
 * get_int accepts every integer type (range-checked into int64), get_float F32/F64. */
gguf_error gguf_get_int(const gguf_reader *r, const char *key, int64_t *out);
gguf_error gguf_get_float(const gguf_reader *r, const char *key, double *out);
gguf_error gguf_get_bool(const gguf_reader *r, const char *key, bool *out);
gguf_error gguf_get_str(const gguf_reader *r, const char *key, const gguf_str **out);
gguf_error gguf_get_array(const gguf_reader *r, const char *key, const gguf_value **out);

int64_t gguf_n_tensors(const gguf_reader *r);
const gguf_tensor *gguf_tensor_at(const gguf_reader *r, int64_t i);
int64_t gguf_find_tensor(const gguf_reader *r, const char *name); /* -1 if absent */

/* ---- streaming writer ----
 * 1. gguf_writer_create(); set metadata (kept in call order; setting a key again replaces
 *    its value in place); declare tensors in file order with gguf_writer_add_tensor().
 * 2. gguf_writer_open(path): first removes stale temp files of NAME left by interrupted runs
 *    (see gguf_writer_stale_removed), then creates ".NAME.qforge-tmp-XXXXXX" in the
 *    destination directory, holds flock(LOCK_EX) on it until finish/free (the kernel drops it
 *    when the process dies, kill -9 included), and writes the header, tensor infos (offsets
 *    computed up front) and padding.
 * 3. gguf_writer_write(): the tensors' data, in declaration order, in as many pieces as
 *    wanted; alignment padding is inserted after each completed tensor. Or
 *    gguf_writer_write_tensor(): tensor by tensor in any order (below).
 * 4. gguf_writer_finish(): checks every byte was written, fsyncs, renames onto path and
 *    fsyncs the directory. gguf_writer_free() before finish removes the temp file.
 * The writer copies every key, string and array it is given. */
typedef struct gguf_writer gguf_writer;

gguf_writer *gguf_writer_create(void);   /* NULL on out of memory */
void gguf_writer_free(gguf_writer *w);   /* removes the temp file unless finished */

gguf_error gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v);
gguf_error gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v);
gguf_error gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t v);
gguf_error gguf_writer_set_f32(gguf_writer *w, const char *key, float v);
gguf_error gguf_writer_set_bool(gguf_writer *w, const char *key, bool v);
gguf_error gguf_writer_set_str(gguf_writer *w, const char *key, const char *s);
/* Numeric/bool array: n elements of elem_type in native layout. */
gguf_error gguf_writer_set_array(gguf_writer *w, const char *key, enum gguf_value_type elem_type,
                                 const void *data, uint64_t n);
gguf_error gguf_writer_set_str_array(gguf_writer *w, const char *key, const char *const *strs, uint64_t n);
/* Copy a value as read (any type, arrays included). */
gguf_error gguf_writer_set_value(gguf_writer *w, const char *key, const gguf_value *v);
gguf_error gguf_writer_remove(gguf_writer *w, const char *key); /* GGUF_ERR_NOT_FOUND if absent */
/* Copy every KV of a reader, in its order. */
gguf_error gguf_writer_copy_kv(gguf_writer *w, const gguf_reader *r);

gguf_error gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t n_dims,
                                  const int64_t *ne, int type, char *msg);
uint64_t gguf_writer_total_size(const gguf_writer *w); /* bytes of the finished file */

gguf_error gguf_writer_open(gguf_writer *w, const char *path, char *msg);
/* Path of the temp file while open (for a signal handler to unlink), else NULL. */
const char *gguf_writer_temp_path(const gguf_writer *w);
/* How many stale temp files gguf_writer_open() removed (0 before open, or for NULL): regular
 * files (never symlinks) in the destination directory named exactly ".NAME.qforge-tmp-" plus
 * six characters [A-Za-z0-9], which no live process holds locked. A temp file of another
 * process still writing the same output is locked and left alone. Cleaning is best effort:
 * what cannot be opened, locked or unlinked stays and does not make open fail. */
int gguf_writer_stale_removed(const gguf_writer *w);
gguf_error gguf_writer_write(gguf_writer *w, const void *data, size_t n, char *msg);
/* Instead of gguf_writer_write (a writer takes one or the other: GGUF_ERR_STATE on mixing):
 * append n bytes to tensor i (declaration index) at its own offset, so tensors can be written
 * in any order as they become ready; pieces of one tensor go in order. The padding between
 * tensors is left as a hole (reads as zeros) and the file is sized at finish, so the bytes
 * equal a sequential write's. GGUF_ERR_STATE when more than the tensor's bytes arrive. */
gguf_error gguf_writer_write_tensor(gguf_writer *w, size_t i, const void *data, size_t n, char *msg);
gguf_error gguf_writer_finish(gguf_writer *w, char *msg);

/* Serialize the metadata alone (n_tensors = 0) into a malloc'ed buffer the caller frees;
 * reading it back with gguf_open_memory() gives the same KV set. */
gguf_error gguf_writer_kv_to_memory(const gguf_writer *w, void **buf, size_t *size, char *msg);

#endif
