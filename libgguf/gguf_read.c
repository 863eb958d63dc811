/* libgguf: the validating reader (from an mmap'ed file or a borrowed buffer).
 *
 * The parser walks the buffer once. Every count and length is checked against its cap and
 * the bytes left before anything is allocated, so allocations stay within a small multiple
 * of the input size. Metadata is copied into an arena owned by the reader (strings get a
 * NUL, arrays get native alignment); tensor data stays in the buffer. */
#include "libgguf/gguf.h"
#include "libgguf/gguf_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- arena: bump allocator in chunks, freed all at once ---- */
typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    max_align_t data[];
} chunk;

#define ARENA_CHUNK (1u << 20)

/* chunk_size: the usual chunk capacity (small inputs get small chunks) */
static void *arena_alloc(chunk **head, size_t n, size_t chunk_size)
{
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    if (n == 0)
        n = sizeof(max_align_t);
    chunk *c = *head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > chunk_size ? n : chunk_size;
        if (cap > SIZE_MAX - sizeof(chunk))
            return NULL;
        c = malloc(sizeof(chunk) + cap);
        if (!c)
            return NULL;
        c->used = 0;
        c->cap = cap;
        /* big one-off blocks go behind the current chunk so its free space stays usable */
        if (*head && n > chunk_size / 2) {
            c->next = (*head)->next;
            (*head)->next = c;
        } else {
            c->next = *head;
            *head = c;
        }
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    return p;
}

static void arena_free(chunk *c)
{
    while (c) {
        chunk *n = c->next;
        free(c);
        c = n;
    }
}

struct gguf_reader {
    const uint8_t *base;
    size_t size;
    void *map; /* mmap'ed region (gguf_open) or NULL */
    size_t map_size;
    uint32_t version;
    size_t alignment;
    uint64_t data_offset;
    int64_t n_kv;
    const char **keys;
    size_t *key_lens;
    gguf_value *vals;
    int64_t n_tensors;
    gguf_tensor *tensors;
    gguf_index_ kv_ix, t_ix;
    chunk *arena;
    size_t chunk_size;
};

/* ---- cursor over the untrusted bytes ---- */
typedef struct {
    gguf_reader *r;
    size_t pos;
    char *msg;
} cur;

static size_t left(const cur *c) { return c->r->size - c->pos; }

static gguf_error need(cur *c, size_t n, const char *what)
{
    GGUF_FAIL_IF(left(c) < n, c->msg, GGUF_ERR_TRUNCATED,
                 "%s needs %zu bytes at offset %zu but the file ends at %zu", what, n, c->pos, c->r->size);
    return GGUF_OK;
}

static gguf_error rd_u32(cur *c, uint32_t *v, const char *what)
{
    gguf_error e = need(c, 4, what);
    if (e)
        return e;
    memcpy(v, c->r->base + c->pos, 4);
    c->pos += 4;
    return GGUF_OK;
}

static gguf_error rd_u64(cur *c, uint64_t *v, const char *what)
{
    gguf_error e = need(c, 8, what);
    if (e)
        return e;
    memcpy(v, c->r->base + c->pos, 8);
    c->pos += 8;
    return GGUF_OK;
}

static gguf_error nomem(cur *c)
{
    return gguf_fail_(c->msg, GGUF_ERR_NOMEM, "out of memory at offset %zu", c->pos);
}

/* A string of len bytes at the cursor (len already read), copied with a NUL. */
static gguf_error copy_str(cur *c, uint64_t len, gguf_str *out)
{
    char *s = arena_alloc(&c->r->arena, (size_t)len + 1, c->r->chunk_size);
    if (!s)
        return nomem(c);
    memcpy(s, c->r->base + c->pos, (size_t)len);
    s[len] = 0;
    c->pos += (size_t)len;
    out->str = s;
    out->len = len;
    return GGUF_OK;
}

/* Length of a string value: within GGUF_MAX_STRING and the bytes left. */
static gguf_error str_len(cur *c, uint64_t *len, const char *what)
{
    gguf_error e = rd_u64(c, len, what);
    if (e)
        return e;
    GGUF_FAIL_IF(*len > GGUF_MAX_STRING, c->msg, GGUF_ERR_LIMIT,
                 "%s: string length %llu exceeds the limit %u", what, (unsigned long long)*len,
                 (unsigned)GGUF_MAX_STRING);
    GGUF_FAIL_IF(*len > left(c), c->msg, GGUF_ERR_TRUNCATED,
                 "%s: string of %llu bytes at offset %zu runs past the end (%zu)", what,
                 (unsigned long long)*len, c->pos, c->r->size);
    return GGUF_OK;
}

static gguf_error bad_bool(cur *c, unsigned v, const char *what)
{
    return gguf_fail_(c->msg, GGUF_ERR_VALUE_TYPE, "%s: bool value %u at offset %zu is not 0 or 1",
                      what, v, c->pos);
}

/* One scalar of type t at the cursor into v (widened). */
static gguf_error rd_scalar(cur *c, enum gguf_value_type t, gguf_value *v, const char *what)
{
    size_t n = gguf_value_type_size(t);
    gguf_error e = need(c, n, what);
    if (e)
        return e;
    const uint8_t *p = c->r->base + c->pos;
    uint8_t u8; uint16_t u16; uint32_t u32; uint64_t u64;
    int8_t i8; int16_t i16; int32_t i32; int64_t i64;
    float f; double d;
    switch (t) {
    case GGUF_VAL_U8: memcpy(&u8, p, 1); v->v.u64 = u8; break;
    case GGUF_VAL_I8: memcpy(&i8, p, 1); v->v.i64 = i8; break;
    case GGUF_VAL_U16: memcpy(&u16, p, 2); v->v.u64 = u16; break;
    case GGUF_VAL_I16: memcpy(&i16, p, 2); v->v.i64 = i16; break;
    case GGUF_VAL_U32: memcpy(&u32, p, 4); v->v.u64 = u32; break;
    case GGUF_VAL_I32: memcpy(&i32, p, 4); v->v.i64 = i32; break;
    case GGUF_VAL_U64: memcpy(&u64, p, 8); v->v.u64 = u64; break;
    case GGUF_VAL_I64: memcpy(&i64, p, 8); v->v.i64 = i64; break;
    case GGUF_VAL_F32: memcpy(&f, p, 4); v->v.f64 = f; break;
    case GGUF_VAL_F64: memcpy(&d, p, 8); v->v.f64 = d; break;
    case GGUF_VAL_BOOL:
        if (p[0] > 1)
            return bad_bool(c, p[0], what);
        v->v.b = p[0] == 1;
        break;
    default:
        return gguf_fail_(c->msg, GGUF_ERR_VALUE_TYPE, "%s: not a scalar type", what);
    }
    c->pos += n;
    return GGUF_OK;
}

static gguf_error rd_array(cur *c, gguf_value *v, const char *what)
{
    uint32_t et;
    uint64_t n;
    gguf_error e = rd_u32(c, &et, what);
    if (e)
        return e;
    GGUF_FAIL_IF(et == GGUF_VAL_ARRAY, c->msg, GGUF_ERR_VALUE_TYPE, "%s: nested arrays are not supported",
                 what);
    GGUF_FAIL_IF(et >= GGUF_VAL_COUNT_, c->msg, GGUF_ERR_VALUE_TYPE, "%s: unknown array element type %u",
                 what, et);
    if ((e = rd_u64(c, &n, what)))
        return e;
    GGUF_FAIL_IF(n > GGUF_MAX_ARRAY, c->msg, GGUF_ERR_LIMIT,
                 "%s: array of %llu elements exceeds the limit %u", what, (unsigned long long)n,
                 (unsigned)GGUF_MAX_ARRAY);
    v->elem_type = (enum gguf_value_type)et;
    v->n = n;
    if (et != GGUF_VAL_STRING) {
        size_t es = gguf_value_type_size((int)et);
        if (n > left(c) / es) /* n * es never overflows past this */
            return gguf_fail_(c->msg, GGUF_ERR_TRUNCATED,
                              "%s: array of %llu %s at offset %zu runs past the end (%zu)", what,
                              (unsigned long long)n, gguf_value_type_name((int)et), c->pos,
                              c->r->size);
        size_t bytes = (size_t)n * es;
        const uint8_t *p = c->r->base + c->pos;
        if (et == GGUF_VAL_BOOL)
            for (size_t i = 0; i < bytes; i++)
                if (p[i] > 1) {
                    c->pos += i;
                    return bad_bool(c, p[i], what);
                }
        void *a = arena_alloc(&c->r->arena, bytes, c->r->chunk_size);
        if (!a)
            return nomem(c);
        memcpy(a, p, bytes);
        c->pos += bytes;
        v->v.arr = a;
        return GGUF_OK;
    }
    /* strings: every entry takes at least 8 bytes */
    GGUF_FAIL_IF(n > left(c) / 8, c->msg, GGUF_ERR_TRUNCATED,
                 "%s: array of %llu strings at offset %zu runs past the end (%zu)", what,
                 (unsigned long long)n, c->pos, c->r->size);
    /* first pass: validate the lengths and size the copy (total <= bytes left + n) */
    size_t start = c->pos, text = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t len;
        if ((e = str_len(c, &len, what)))
            return e;
        c->pos += (size_t)len;
        text += (size_t)len + 1;
    }
    size_t head = (size_t)n * sizeof(gguf_str);
    GGUF_FAIL_IF(text > SIZE_MAX - head, c->msg, GGUF_ERR_OVERFLOW, "%s: string array too large", what);
    gguf_str *strs = arena_alloc(&c->r->arena, head + text, c->r->chunk_size);
    if (!strs)
        return nomem(c);
    char *dst = (char *)(strs + n);
    c->pos = start;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t len;
        memcpy(&len, c->r->base + c->pos, 8);
        c->pos += 8;
        memcpy(dst, c->r->base + c->pos, (size_t)len);
        dst[len] = 0;
        strs[i].str = dst;
        strs[i].len = len;
        dst += len + 1;
        c->pos += (size_t)len;
    }
    v->v.strs = strs;
    return GGUF_OK;
}

static const char *key_at(const void *ctx, int64_t i, size_t *len)
{
    const gguf_reader *r = ctx;
    *len = r->key_lens[i];
    return r->keys[i];
}

static const char *tname_at(const void *ctx, int64_t i, size_t *len)
{
    const gguf_reader *r = ctx;
    *len = strlen(r->tensors[i].name);
    return r->tensors[i].name;
}

static gguf_error parse_kv(cur *c, int64_t i)
{
    gguf_reader *r = c->r;
    char what[96], pr[GGUF_PRINT_SIZE];
    snprintf(what, sizeof what, "kv %lld key", (long long)i);
    uint64_t len;
    gguf_error e = rd_u64(c, &len, what);
    if (e)
        return e;
    GGUF_FAIL_IF(len == 0, c->msg, GGUF_ERR_NAME, "kv %lld: empty key", (long long)i);
    GGUF_FAIL_IF(len > GGUF_MAX_KEY, c->msg, GGUF_ERR_NAME, "kv %lld: key length %llu exceeds %u",
                 (long long)i, (unsigned long long)len, (unsigned)GGUF_MAX_KEY);
    GGUF_FAIL_IF(len > left(c), c->msg, GGUF_ERR_TRUNCATED,
                 "kv %lld: key of %llu bytes at offset %zu runs past the end (%zu)", (long long)i,
                 (unsigned long long)len, c->pos, r->size);
    const char *k = (const char *)r->base + c->pos;
    GGUF_FAIL_IF(memchr(k, 0, (size_t)len), c->msg, GGUF_ERR_NAME, "kv %lld: key contains a NUL byte",
                 (long long)i);
    gguf_printable_(k, (size_t)len, pr);
    GGUF_FAIL_IF(gguf_index_find_(&r->kv_ix, k, (size_t)len, key_at, r) >= 0, c->msg, GGUF_ERR_DUPLICATE,
                 "kv %lld: duplicate key \"%s\"", (long long)i, pr);
    gguf_str ks;
    if ((e = copy_str(c, len, &ks)))
        return e;
    r->keys[i] = ks.str;
    r->key_lens[i] = (size_t)len;
    gguf_index_put_(&r->kv_ix, ks.str, (size_t)len, i);

    snprintf(what, sizeof what, "kv \"%s\"", pr);
    uint32_t vt;
    if ((e = rd_u32(c, &vt, what)))
        return e;
    GGUF_FAIL_IF(vt >= GGUF_VAL_COUNT_, c->msg, GGUF_ERR_VALUE_TYPE, "%s: unknown value type %u", what, vt);
    gguf_value *v = &r->vals[i];
    v->type = (enum gguf_value_type)vt;
    if (vt == GGUF_VAL_STRING) {
        if ((e = str_len(c, &len, what)))
            return e;
        return copy_str(c, len, &v->v.str);
    }
    if (vt == GGUF_VAL_ARRAY)
        return rd_array(c, v, what);
    return rd_scalar(c, v->type, v, what);
}

static gguf_error parse_tensor(cur *c, int64_t i)
{
    gguf_reader *r = c->r;
    gguf_tensor *t = &r->tensors[i];
    char what[96], pr[GGUF_PRINT_SIZE];
    snprintf(what, sizeof what, "tensor %lld name", (long long)i);
    uint64_t len;
    gguf_error e = rd_u64(c, &len, what);
    if (e)
        return e;
    GGUF_FAIL_IF(len == 0, c->msg, GGUF_ERR_NAME, "tensor %lld: empty name", (long long)i);
    GGUF_FAIL_IF(len >= GGUF_MAX_NAME, c->msg, GGUF_ERR_NAME, "tensor %lld: name length %llu is not below %d",
                 (long long)i, (unsigned long long)len, GGUF_MAX_NAME);
    if ((e = need(c, (size_t)len, what)))
        return e;
    memcpy(t->name, r->base + c->pos, (size_t)len);
    t->name[len] = 0;
    c->pos += (size_t)len;
    GGUF_FAIL_IF(strlen(t->name) != len, c->msg, GGUF_ERR_NAME, "tensor %lld: name contains a NUL byte",
                 (long long)i);
    gguf_printable_(t->name, (size_t)len, pr);
    GGUF_FAIL_IF(gguf_index_find_(&r->t_ix, t->name, (size_t)len, tname_at, r) >= 0, c->msg,
                 GGUF_ERR_DUPLICATE, "tensor %lld: duplicate name \"%s\"", (long long)i, pr);
    gguf_index_put_(&r->t_ix, t->name, (size_t)len, i);

    snprintf(what, sizeof what, "tensor \"%s\"", pr);
    if ((e = rd_u32(c, &t->n_dims, what)))
        return e;
    GGUF_FAIL_IF(t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS, c->msg, GGUF_ERR_SHAPE,
                 "%s: n_dims %u is not in 1..%d", what, t->n_dims, GGUF_MAX_DIMS);
    for (int d = 0; d < GGUF_MAX_DIMS; d++)
        t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        uint64_t u;
        if ((e = rd_u64(c, &u, what)))
            return e;
        t->ne[d] = (int64_t)u;
        GGUF_FAIL_IF(t->ne[d] <= 0, c->msg, GGUF_ERR_SHAPE, "%s: dimension %u is %lld", what, d,
                     (long long)t->ne[d]);
    }
    uint32_t type;
    if ((e = rd_u32(c, &type, what)))
        return e;
    const gguf_type_traits *tt = gguf_type_info((int)type);
    GGUF_FAIL_IF(!tt, c->msg, GGUF_ERR_TENSOR_TYPE, "%s: unknown tensor type %u", what, type);
    t->type = (int)type;
    GGUF_FAIL_IF(t->ne[0] % tt->block_size != 0, c->msg, GGUF_ERR_SHAPE,
                 "%s: ne[0] = %lld is not a multiple of %s's block of %u", what, (long long)t->ne[0],
                 tt->name, tt->block_size);
    int64_t nel = t->ne[0];
    uint64_t nbytes;
    bool ovf = __builtin_mul_overflow((uint64_t)(t->ne[0] / tt->block_size), (uint64_t)tt->block_bytes,
                                      &nbytes);
    for (int d = 1; d < GGUF_MAX_DIMS; d++)
        if (ovf || __builtin_mul_overflow(nel, t->ne[d], &nel) ||
            __builtin_mul_overflow(nbytes, (uint64_t)t->ne[d], &nbytes))
            return gguf_fail_(c->msg, GGUF_ERR_OVERFLOW, "%s: element count or byte size overflows", what);
    GGUF_FAIL_IF(nbytes > SIZE_MAX, c->msg, GGUF_ERR_OVERFLOW, "%s: %llu bytes do not fit in memory", what,
                 (unsigned long long)nbytes);
    t->nbytes = nbytes;
    if ((e = rd_u64(c, &t->offset, what)))
        return e;
    GGUF_FAIL_IF(t->offset % r->alignment != 0, c->msg, GGUF_ERR_ALIGN,
                 "%s: offset %llu is not a multiple of the alignment %zu", what,
                 (unsigned long long)t->offset, r->alignment);
    return GGUF_OK;
}

typedef struct {
    uint64_t off, end;
    int64_t i;
} span;

static int span_cmp(const void *a, const void *b)
{
    const span *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}

static gguf_error parse(gguf_reader *r, char *msg)
{
    cur c = {r, 0, msg};
    static const uint8_t magic[4] = {'G', 'G', 'U', 'F'};
    size_t m = r->size < 4 ? r->size : 4;
    GGUF_FAIL_IF(memcmp(r->base ? r->base : magic, magic, m) != 0, msg, GGUF_ERR_MAGIC,
                 "bad magic (not a GGUF file)");
    GGUF_FAIL_IF(r->size < GGUF_HEADER_BYTES, msg, GGUF_ERR_TRUNCATED,
                 "file of %zu bytes is shorter than the %u-byte header", r->size, GGUF_HEADER_BYTES);
    c.pos = 4;
    uint64_t n_tensors, n_kv;
    gguf_error e = rd_u32(&c, &r->version, "version");
    if (e)
        return e;
    GGUF_FAIL_IF(r->version != 2 && r->version != 3, msg, GGUF_ERR_VERSION,
                 "GGUF version %u is not supported (2 or 3)", r->version);
    if ((e = rd_u64(&c, &n_tensors, "tensor count")) || (e = rd_u64(&c, &n_kv, "kv count")))
        return e;
    GGUF_FAIL_IF(n_tensors > GGUF_MAX_TENSORS, msg, GGUF_ERR_LIMIT, "%llu tensors exceed the limit %u",
                 (unsigned long long)n_tensors, (unsigned)GGUF_MAX_TENSORS);
    GGUF_FAIL_IF(n_kv > GGUF_MAX_KV, msg, GGUF_ERR_LIMIT, "%llu metadata entries exceed the limit %u",
                 (unsigned long long)n_kv, (unsigned)GGUF_MAX_KV);
    /* both counts are capped at 2^20, so these products cannot overflow 64 bits */
    uint64_t min_bytes = n_kv * GGUF_MIN_KV_BYTES + n_tensors * GGUF_MIN_TENSOR_INFO_BYTES;
    GGUF_FAIL_IF(min_bytes > left(&c), msg, GGUF_ERR_TRUNCATED,
                 "%llu kv and %llu tensor infos need at least %llu bytes, %zu are left",
                 (unsigned long long)n_kv, (unsigned long long)n_tensors, (unsigned long long)min_bytes,
                 left(&c));
    size_t per_kv = sizeof(char *) + sizeof(size_t) + sizeof(gguf_value);
    GGUF_FAIL_IF(n_kv > SIZE_MAX / per_kv || n_tensors > SIZE_MAX / sizeof(gguf_tensor), msg,
                 GGUF_ERR_OVERFLOW, "counts too large for this machine");

    r->n_kv = (int64_t)n_kv;
    r->n_tensors = (int64_t)n_tensors;
    r->keys = calloc(n_kv ? n_kv : 1, sizeof *r->keys);
    r->key_lens = calloc(n_kv ? n_kv : 1, sizeof *r->key_lens);
    r->vals = calloc(n_kv ? n_kv : 1, sizeof *r->vals);
    r->tensors = calloc(n_tensors ? n_tensors : 1, sizeof *r->tensors);
    if (!r->keys || !r->key_lens || !r->vals || !r->tensors || !gguf_index_init_(&r->kv_ix, n_kv) ||
        !gguf_index_init_(&r->t_ix, n_tensors))
        return gguf_fail_(msg, GGUF_ERR_NOMEM, "out of memory for %llu kv and %llu tensors",
                          (unsigned long long)n_kv, (unsigned long long)n_tensors);

    for (int64_t i = 0; i < r->n_kv; i++)
        if ((e = parse_kv(&c, i)))
            return e;

    r->alignment = GGUF_DEFAULT_ALIGNMENT;
    int64_t ai = gguf_find_kv(r, GGUF_KEY_ALIGNMENT);
    if (ai >= 0) {
        const gguf_value *v = &r->vals[ai];
        GGUF_FAIL_IF(v->type != GGUF_VAL_U32, msg, GGUF_ERR_VALUE_TYPE, "%s has type %s, not u32",
                     GGUF_KEY_ALIGNMENT, gguf_value_type_name(v->type));
        GGUF_FAIL_IF(!gguf_is_pow2_(v->v.u64), msg, GGUF_ERR_ALIGN, "%s = %llu is not a power of two",
                     GGUF_KEY_ALIGNMENT, (unsigned long long)v->v.u64);
        r->alignment = (size_t)v->v.u64;
    }

    for (int64_t i = 0; i < r->n_tensors; i++)
        if ((e = parse_tensor(&c, i)))
            return e;

    /* the data section starts at the next multiple of the alignment */
    uint64_t pad = (r->alignment - c.pos % r->alignment) % r->alignment;
    r->data_offset = (uint64_t)c.pos + pad;
    if (r->n_tensors == 0)
        return GGUF_OK;
    GGUF_FAIL_IF(r->data_offset > r->size, msg, GGUF_ERR_TRUNCATED,
                 "the data section (offset %llu) starts past the end (%zu)",
                 (unsigned long long)r->data_offset, r->size);
    uint64_t avail = r->size - r->data_offset;
    span *sp = malloc((size_t)r->n_tensors * sizeof *sp);
    GGUF_FAIL_IF(!sp, msg, GGUF_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < r->n_tensors; i++) {
        gguf_tensor *t = &r->tensors[i];
        if (t->offset > avail || t->nbytes > avail - t->offset) {
            free(sp);
            char pr[GGUF_PRINT_SIZE];
            return gguf_fail_(msg, GGUF_ERR_OFFSET,
                              "tensor \"%s\": %llu bytes at data offset %llu run past the end of the file",
                              gguf_printable_(t->name, strlen(t->name), pr), (unsigned long long)t->nbytes,
                              (unsigned long long)t->offset);
        }
        t->data = r->base + r->data_offset + t->offset;
        sp[i] = (span){t->offset, t->offset + t->nbytes, i};
    }
    qsort(sp, (size_t)r->n_tensors, sizeof *sp, span_cmp);
    for (int64_t i = 1; i < r->n_tensors; i++)
        if (sp[i].off < sp[i - 1].end) {
            const char *a = r->tensors[sp[i - 1].i].name, *b = r->tensors[sp[i].i].name;
            char pa[GGUF_PRINT_SIZE], pb[GGUF_PRINT_SIZE];
            gguf_error oe = gguf_fail_(msg, GGUF_ERR_OFFSET, "tensors \"%s\" and \"%s\" overlap",
                                       gguf_printable_(a, strlen(a), pa), gguf_printable_(b, strlen(b), pb));
            free(sp);
            return oe;
        }
    free(sp);
    return GGUF_OK;
}

static gguf_error open_buffer(const void *buf, size_t size, void *map, gguf_reader **out, char *msg)
{
    gguf_reader *r = calloc(1, sizeof *r);
    if (!r) {
        if (map)
            munmap(map, size);
        return gguf_fail_(msg, GGUF_ERR_NOMEM, "out of memory");
    }
    r->base = buf;
    r->size = size;
    r->map = map;
    r->map_size = size;
    r->chunk_size = size < ARENA_CHUNK ? (size | 4095) + 1 : ARENA_CHUNK;
    gguf_error e = parse(r, msg);
    if (e) {
        gguf_close(r);
        return e;
    }
    *out = r;
    return GGUF_OK;
}

gguf_error gguf_open_memory(const void *buf, size_t size, gguf_reader **out, char *msg)
{
    GGUF_FAIL_IF(!out || (!buf && size > 0), msg, GGUF_ERR_ARG, "gguf_open_memory: NULL argument");
    *out = NULL;
    return open_buffer(buf, size, NULL, out, msg);
}

gguf_error gguf_open(const char *path, gguf_reader **out, char *msg)
{
    GGUF_FAIL_IF(!path || !out, msg, GGUF_ERR_ARG, "gguf_open: NULL argument");
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    GGUF_FAIL_IF(fd < 0, msg, GGUF_ERR_IO, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int err = errno;
        close(fd);
        return gguf_fail_(msg, GGUF_ERR_IO, "cannot stat: %s", strerror(err));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return gguf_fail_(msg, GGUF_ERR_IO, "not a regular file");
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        return gguf_fail_(msg, GGUF_ERR_OVERFLOW, "file too large to map");
    }
    size_t size = (size_t)st.st_size;
    void *map = NULL;
    if (size > 0) {
        map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            int err = errno;
            close(fd);
            return gguf_fail_(msg, GGUF_ERR_IO, "cannot map: %s", strerror(err));
        }
    }
    close(fd);
    return open_buffer(map, size, map, out, msg);
}

void gguf_close(gguf_reader *r)
{
    if (!r)
        return;
    if (r->map)
        munmap(r->map, r->map_size);
    free(r->keys);
    free(r->key_lens);
    free(r->vals);
    free(r->tensors);
    gguf_index_free_(&r->kv_ix);
    gguf_index_free_(&r->t_ix);
    arena_free(r->arena);
    free(r);
}

uint32_t gguf_version(const gguf_reader *r) { return r->version; }
size_t gguf_alignment(const gguf_reader *r) { return r->alignment; }
uint64_t gguf_data_offset(const gguf_reader *r) { return r->data_offset; }
uint64_t gguf_file_size(const gguf_reader *r) { return r->size; }
int64_t gguf_n_kv(const gguf_reader *r) { return r->n_kv; }
int64_t gguf_n_tensors(const gguf_reader *r) { return r->n_tensors; }

const char *gguf_kv_key(const gguf_reader *r, int64_t i)
{
    return i >= 0 && i < r->n_kv ? r->keys[i] : NULL;
}

const gguf_value *gguf_kv_value(const gguf_reader *r, int64_t i)
{
    return i >= 0 && i < r->n_kv ? &r->vals[i] : NULL;
}

int64_t gguf_find_kv(const gguf_reader *r, const char *key)
{
    if (!r || !key)
        return -1;
    return gguf_index_find_(&r->kv_ix, key, strlen(key), key_at, r);
}

const gguf_tensor *gguf_tensor_at(const gguf_reader *r, int64_t i)
{
    return i >= 0 && i < r->n_tensors ? &r->tensors[i] : NULL;
}

int64_t gguf_find_tensor(const gguf_reader *r, const char *name)
{
    if (!r || !name)
        return -1;
    return gguf_index_find_(&r->t_ix, name, strlen(name), tname_at, r);
}

/* ---- typed getters ---- */

static gguf_error lookup(const gguf_reader *r, const char *key, const gguf_value **v)
{
    int64_t i = gguf_find_kv(r, key);
    if (i < 0)
        return GGUF_ERR_NOT_FOUND;
    *v = &r->vals[i];
    return GGUF_OK;
}

gguf_error gguf_get_int(const gguf_reader *r, const char *key, int64_t *out)
{
    const gguf_value *v;
    gguf_error e = lookup(r, key, &v);
    if (e)
        return e;
    switch (v->type) {
    case GGUF_VAL_U8: case GGUF_VAL_U16: case GGUF_VAL_U32: case GGUF_VAL_U64:
        if (v->v.u64 > INT64_MAX)
            return GGUF_ERR_OVERFLOW;
        *out = (int64_t)v->v.u64;
        return GGUF_OK;
    case GGUF_VAL_I8: case GGUF_VAL_I16: case GGUF_VAL_I32: case GGUF_VAL_I64:
        *out = v->v.i64;
        return GGUF_OK;
    default:
        return GGUF_ERR_VALUE_TYPE;
    }
}

gguf_error gguf_get_float(const gguf_reader *r, const char *key, double *out)
{
    const gguf_value *v;
    gguf_error e = lookup(r, key, &v);
    if (e)
        return e;
    if (v->type != GGUF_VAL_F32 && v->type != GGUF_VAL_F64)
        return GGUF_ERR_VALUE_TYPE;
    *out = v->v.f64;
    return GGUF_OK;
}

gguf_error gguf_get_bool(const gguf_reader *r, const char *key, bool *out)
{
    const gguf_value *v;
    gguf_error e = lookup(r, key, &v);
    if (e)
        return e;
    if (v->type != GGUF_VAL_BOOL)
        return GGUF_ERR_VALUE_TYPE;
    *out = v->v.b;
    return GGUF_OK;
}

gguf_error gguf_get_str(const gguf_reader *r, const char *key, const gguf_str **out)
{
    const gguf_value *v;
    gguf_error e = lookup(r, key, &v);
    if (e)
        return e;
    if (v->type != GGUF_VAL_STRING)
        return GGUF_ERR_VALUE_TYPE;
    *out = &v->v.str;
    return GGUF_OK;
}

gguf_error gguf_get_array(const gguf_reader *r, const char *key, const gguf_value **out)
{
    const gguf_value *v;
    gguf_error e = lookup(r, key, &v);
    if (e)
        return e;
    if (v->type != GGUF_VAL_ARRAY)
        return GGUF_ERR_VALUE_TYPE;
    *out = v;
    return GGUF_OK;
}
