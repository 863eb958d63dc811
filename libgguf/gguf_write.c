/* libgguf: the streaming writer.
 *
 * Layout as llama.cpp writes it: header, KVs in set order, tensor infos in declaration order,
 * zero padding to the alignment (only when there are tensors, as gguf-py does), then each
 * tensor's bytes followed by zero padding to the alignment (the last one too).
 * Output goes through a 1 MiB buffer and write(); nothing is mapped. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mkostemp */
#endif
#include "libgguf/gguf.h"
#include "libgguf/gguf_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define WBUF_SIZE (1u << 20)
#define TMP_TAG ".qforge-tmp-"
#define TMP_SUFFIX_LEN 6   /* mkstemp's XXXXXX */
#define LOCK_ATTEMPTS 16

typedef struct {
    char *key;
    size_t key_len;
    gguf_value val; /* strings and arrays point into store */
    void *store;
} wkv;

typedef struct {
    char name[GGUF_MAX_NAME];
    uint32_t n_dims;
    int64_t ne[GGUF_MAX_DIMS];
    int type;
    uint64_t offset, nbytes;
} wtensor;

/* Where serialized bytes go: nowhere (measure), a pre-sized memory buffer, or a file. */
typedef struct {
    uint8_t *buf; /* NULL: only count */
    size_t cap, len;
    int fd;       /* -1: memory */
    uint64_t total;
    int err;      /* errno of the first failed write, 0 if none */
} sink;

enum { W_BUILD, W_OPEN, W_DONE, W_FAILED };

struct gguf_writer {
    wkv *kv;
    size_t n_kv, cap_kv;
    gguf_index_ kv_ix;
    wtensor *t;
    size_t n_t, cap_t;
    gguf_index_ t_ix;
    size_t alignment;
    uint64_t data_size;  /* data section with padding */
    uint64_t data_bytes; /* sum of tensor sizes without padding */
    int state;
    char *path, *tmp; /* while open, out.fd holds flock(LOCK_EX) on tmp */
    int stale_removed;
    sink out;
    uint64_t written; /* tensor bytes written so far */
    size_t cur;       /* tensor being written */
    uint64_t cur_done;
    int mode;         /* 0: no data yet, 1: gguf_writer_write, 2: gguf_writer_write_tensor */
    uint64_t *done;   /* mode 2: bytes written per tensor */
};

gguf_writer *gguf_writer_create(void)
{
    gguf_writer *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->alignment = GGUF_DEFAULT_ALIGNMENT;
    w->out.fd = -1;
    if (!gguf_index_init_(&w->kv_ix, 8) || !gguf_index_init_(&w->t_ix, 8)) {
        gguf_writer_free(w);
        return NULL;
    }
    return w;
}

void gguf_writer_free(gguf_writer *w)
{
    if (!w)
        return;
    /* unlink while the lock is still held, so no other process can take the name meanwhile */
    if (w->tmp && w->state != W_DONE)
        unlink(w->tmp);
    if (w->out.fd >= 0)
        close(w->out.fd);
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        free(w->kv[i].store);
    }
    free(w->kv);
    free(w->t);
    free(w->done);
    gguf_index_free_(&w->kv_ix);
    gguf_index_free_(&w->t_ix);
    free(w->out.buf);
    free(w->path);
    free(w->tmp);
    free(w);
}

/* ---- metadata ---- */

static const char *wkey_at(const void *ctx, int64_t i, size_t *len)
{
    const gguf_writer *w = ctx;
    *len = w->kv[i].key_len;
    return w->kv[i].key;
}

static const char *wname_at(const void *ctx, int64_t i, size_t *len)
{
    const gguf_writer *w = ctx;
    *len = strlen(w->t[i].name);
    return w->t[i].name;
}

static bool rebuild_kv_index(gguf_writer *w, size_t room)
{
    gguf_index_ ix;
    if (!gguf_index_init_(&ix, room))
        return false;
    for (size_t i = 0; i < w->n_kv; i++)
        gguf_index_put_(&ix, w->kv[i].key, w->kv[i].key_len, (int64_t)i);
    gguf_index_free_(&w->kv_ix);
    w->kv_ix = ix;
    return true;
}

/* Offsets of every tensor from the current alignment. */
static void relayout(gguf_writer *w)
{
    w->alignment = GGUF_DEFAULT_ALIGNMENT;
    int64_t i = gguf_index_find_(&w->kv_ix, GGUF_KEY_ALIGNMENT, strlen(GGUF_KEY_ALIGNMENT), wkey_at, w);
    if (i >= 0)
        w->alignment = (size_t)w->kv[i].val.v.u64; /* validated as a u32 power of two when set */
    uint64_t off = 0;
    for (size_t k = 0; k < w->n_t; k++) {
        w->t[k].offset = off;
        off += w->t[k].nbytes + (w->alignment - w->t[k].nbytes % w->alignment) % w->alignment;
    }
    w->data_size = off;
}

static bool scalar_fits(const gguf_value *v)
{
    switch (v->type) {
    case GGUF_VAL_U8: return v->v.u64 <= UINT8_MAX;
    case GGUF_VAL_U16: return v->v.u64 <= UINT16_MAX;
    case GGUF_VAL_U32: return v->v.u64 <= UINT32_MAX;
    case GGUF_VAL_I8: return v->v.i64 >= INT8_MIN && v->v.i64 <= INT8_MAX;
    case GGUF_VAL_I16: return v->v.i64 >= INT16_MIN && v->v.i64 <= INT16_MAX;
    case GGUF_VAL_I32: return v->v.i64 >= INT32_MIN && v->v.i64 <= INT32_MAX;
    default: return true;
    }
}

/* Validate v and copy its strings/arrays into one malloc'ed block (*store). */
static gguf_error copy_value(const gguf_value *v, gguf_value *dst, void **store)
{
    *store = NULL;
    if ((unsigned)v->type >= GGUF_VAL_COUNT_)
        return GGUF_ERR_VALUE_TYPE;
    *dst = *v;
    if (v->type == GGUF_VAL_STRING) {
        if (v->v.str.len > GGUF_MAX_STRING)
            return GGUF_ERR_LIMIT;
        if (!v->v.str.str && v->v.str.len)
            return GGUF_ERR_ARG;
        char *s = malloc((size_t)v->v.str.len + 1);
        if (!s)
            return GGUF_ERR_NOMEM;
        if (v->v.str.len)
            memcpy(s, v->v.str.str, (size_t)v->v.str.len);
        s[v->v.str.len] = 0;
        dst->v.str.str = s;
        *store = s;
        return GGUF_OK;
    }
    if (v->type != GGUF_VAL_ARRAY)
        return scalar_fits(v) ? GGUF_OK : GGUF_ERR_ARG;
    if ((unsigned)v->elem_type >= GGUF_VAL_COUNT_ || v->elem_type == GGUF_VAL_ARRAY)
        return GGUF_ERR_VALUE_TYPE;
    if (v->n > GGUF_MAX_ARRAY)
        return GGUF_ERR_LIMIT;
    size_t n = (size_t)v->n;
    if (v->elem_type != GGUF_VAL_STRING) {
        size_t bytes = n * gguf_value_type_size(v->elem_type);
        if (!v->v.arr && n)
            return GGUF_ERR_ARG;
        if (v->elem_type == GGUF_VAL_BOOL)
            for (size_t i = 0; i < n; i++)
                if (((const uint8_t *)v->v.arr)[i] > 1)
                    return GGUF_ERR_VALUE_TYPE;
        void *a = malloc(bytes ? bytes : 1);
        if (!a)
            return GGUF_ERR_NOMEM;
        if (bytes)
            memcpy(a, v->v.arr, bytes);
        dst->v.arr = a;
        *store = a;
        return GGUF_OK;
    }
    if (!v->v.strs && n)
        return GGUF_ERR_ARG;
    size_t text = 0;
    for (size_t i = 0; i < n; i++) {
        if (v->v.strs[i].len > GGUF_MAX_STRING)
            return GGUF_ERR_LIMIT;
        if (!v->v.strs[i].str && v->v.strs[i].len)
            return GGUF_ERR_ARG;
        if (text > SIZE_MAX - v->v.strs[i].len - 1)
            return GGUF_ERR_OVERFLOW;
        text += (size_t)v->v.strs[i].len + 1;
    }
    if (text > SIZE_MAX - n * sizeof(gguf_str))
        return GGUF_ERR_OVERFLOW;
    gguf_str *strs = malloc(n * sizeof(gguf_str) + text + 1);
    if (!strs)
        return GGUF_ERR_NOMEM;
    char *p = (char *)(strs + n);
    for (size_t i = 0; i < n; i++) {
        size_t len = (size_t)v->v.strs[i].len;
        if (len)
            memcpy(p, v->v.strs[i].str, len);
        p[len] = 0;
        strs[i].str = p;
        strs[i].len = len;
        p += len + 1;
    }
    dst->v.strs = strs;
    *store = strs;
    return GGUF_OK;
}

static gguf_error check_key(const char *key, size_t *len)
{
    if (!key)
        return GGUF_ERR_ARG;
    *len = strlen(key);
    if (*len == 0 || *len > GGUF_MAX_KEY)
        return GGUF_ERR_NAME;
    return GGUF_OK;
}

static gguf_error set_common(gguf_writer *w, const char *key, const gguf_value *v)
{
    if (!w || !v)
        return GGUF_ERR_ARG;
    if (w->state != W_BUILD)
        return GGUF_ERR_STATE;
    size_t klen;
    gguf_error e = check_key(key, &klen);
    if (e)
        return e;
    bool is_align = strcmp(key, GGUF_KEY_ALIGNMENT) == 0;
    if (is_align && v->type != GGUF_VAL_U32)
        return GGUF_ERR_VALUE_TYPE;
    if (is_align && !gguf_is_pow2_(v->v.u64))
        return GGUF_ERR_ALIGN;
    int64_t i = gguf_index_find_(&w->kv_ix, key, klen, wkey_at, w);
    if (i < 0 && w->n_kv >= GGUF_MAX_KV)
        return GGUF_ERR_LIMIT;
    gguf_value nv;
    void *store;
    if ((e = copy_value(v, &nv, &store))) {
        free(store);
        return e;
    }
    if (i >= 0) { /* replace in place */
        free(w->kv[i].store);
        w->kv[i].val = nv;
        w->kv[i].store = store;
    } else {
        char *k = strdup(key);
        if (!k) {
            free(store);
            return GGUF_ERR_NOMEM;
        }
        if (w->n_kv == w->cap_kv) {
            size_t cap = w->cap_kv ? 2 * w->cap_kv : 32;
            wkv *nk = realloc(w->kv, cap * sizeof *nk);
            if (!nk) {
                free(k);
                free(store);
                return GGUF_ERR_NOMEM;
            }
            w->kv = nk;
            w->cap_kv = cap;
        }
        if (2 * (w->kv_ix.count + 1) + 2 > w->kv_ix.mask + 1 && !rebuild_kv_index(w, 2 * (w->n_kv + 1))) {
            free(k);
            free(store);
            return GGUF_ERR_NOMEM;
        }
        w->kv[w->n_kv] = (wkv){k, klen, nv, store};
        gguf_index_put_(&w->kv_ix, k, klen, (int64_t)w->n_kv);
        w->n_kv++;
    }
    if (is_align)
        relayout(w);
    return GGUF_OK;
}

gguf_error gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t x)
{
    gguf_value v = {.type = GGUF_VAL_U32, .v.u64 = x};
    return set_common(w, key, &v);
}

gguf_error gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t x)
{
    gguf_value v = {.type = GGUF_VAL_I32, .v.i64 = x};
    return set_common(w, key, &v);
}

gguf_error gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t x)
{
    gguf_value v = {.type = GGUF_VAL_U64, .v.u64 = x};
    return set_common(w, key, &v);
}

gguf_error gguf_writer_set_f32(gguf_writer *w, const char *key, float x)
{
    gguf_value v = {.type = GGUF_VAL_F32, .v.f64 = x};
    return set_common(w, key, &v);
}

gguf_error gguf_writer_set_bool(gguf_writer *w, const char *key, bool x)
{
    gguf_value v = {.type = GGUF_VAL_BOOL, .v.b = x};
    return set_common(w, key, &v);
}

gguf_error gguf_writer_set_str(gguf_writer *w, const char *key, const char *s)
{
    if (!s)
        return GGUF_ERR_ARG;
    gguf_value v = {.type = GGUF_VAL_STRING, .v.str = {s, strlen(s)}};
    return set_common(w, key, &v);
}

gguf_error gguf_writer_set_array(gguf_writer *w, const char *key, enum gguf_value_type elem_type,
                                 const void *data, uint64_t n)
{
    if (elem_type == GGUF_VAL_STRING)
        return GGUF_ERR_ARG; /* use gguf_writer_set_str_array */
    gguf_value v = {.type = GGUF_VAL_ARRAY, .elem_type = elem_type, .n = n, .v.arr = data};
    return set_common(w, key, &v);
}

gguf_error gguf_writer_set_str_array(gguf_writer *w, const char *key, const char *const *strs, uint64_t n)
{
    if (!strs && n)
        return GGUF_ERR_ARG;
    if (n > GGUF_MAX_ARRAY)
        return GGUF_ERR_LIMIT;
    gguf_str *tmp = malloc((n ? (size_t)n : 1) * sizeof *tmp);
    if (!tmp)
        return GGUF_ERR_NOMEM;
    gguf_error e = GGUF_OK;
    for (uint64_t i = 0; i < n; i++) {
        if (!strs[i]) {
            e = GGUF_ERR_ARG;
            break;
        }
        tmp[i] = (gguf_str){strs[i], strlen(strs[i])};
    }
    if (!e) {
        gguf_value v = {.type = GGUF_VAL_ARRAY, .elem_type = GGUF_VAL_STRING, .n = n, .v.strs = tmp};
        e = set_common(w, key, &v);
    }
    free(tmp);
    return e;
}

gguf_error gguf_writer_set_value(gguf_writer *w, const char *key, const gguf_value *v)
{
    return set_common(w, key, v);
}

gguf_error gguf_writer_remove(gguf_writer *w, const char *key)
{
    if (!w || !key)
        return GGUF_ERR_ARG;
    if (w->state != W_BUILD)
        return GGUF_ERR_STATE;
    int64_t i = gguf_index_find_(&w->kv_ix, key, strlen(key), wkey_at, w);
    if (i < 0)
        return GGUF_ERR_NOT_FOUND;
    free(w->kv[i].key);
    free(w->kv[i].store);
    memmove(&w->kv[i], &w->kv[i + 1], (w->n_kv - (size_t)i - 1) * sizeof *w->kv);
    w->n_kv--;
    if (!rebuild_kv_index(w, w->n_kv + 8))
        return GGUF_ERR_NOMEM; /* the index is lost; the writer must be freed */
    relayout(w);
    return GGUF_OK;
}

gguf_error gguf_writer_copy_kv(gguf_writer *w, const gguf_reader *r)
{
    if (!w || !r)
        return GGUF_ERR_ARG;
    for (int64_t i = 0; i < gguf_n_kv(r); i++) {
        gguf_error e = set_common(w, gguf_kv_key(r, i), gguf_kv_value(r, i));
        if (e)
            return e;
    }
    return GGUF_OK;
}

/* ---- tensors ---- */

gguf_error gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t n_dims, const int64_t *ne,
                                  int type, char *msg)
{
    GGUF_FAIL_IF(!w || !name || !ne, msg, GGUF_ERR_ARG, "add_tensor: NULL argument");
    GGUF_FAIL_IF(w->state != W_BUILD, msg, GGUF_ERR_STATE, "add_tensor after open");
    size_t len = strlen(name);
    char pr[GGUF_PRINT_SIZE];
    gguf_printable_(name, len, pr);
    GGUF_FAIL_IF(len == 0 || len >= GGUF_MAX_NAME, msg, GGUF_ERR_NAME,
                 "tensor name \"%s\" has %zu bytes (1..%d allowed)", pr, len, GGUF_MAX_NAME - 1);
    GGUF_FAIL_IF(gguf_index_find_(&w->t_ix, name, len, wname_at, w) >= 0, msg, GGUF_ERR_DUPLICATE,
                 "duplicate tensor name \"%s\"", pr);
    GGUF_FAIL_IF(w->n_t >= GGUF_MAX_TENSORS, msg, GGUF_ERR_LIMIT, "more than %u tensors",
                 (unsigned)GGUF_MAX_TENSORS);
    GGUF_FAIL_IF(n_dims < 1 || n_dims > GGUF_MAX_DIMS, msg, GGUF_ERR_SHAPE,
                 "tensor \"%s\": n_dims %u is not in 1..%d", pr, n_dims, GGUF_MAX_DIMS);
    const gguf_type_traits *tt = gguf_type_info(type);
    GGUF_FAIL_IF(!tt, msg, GGUF_ERR_TENSOR_TYPE, "tensor \"%s\": unknown type %d", pr, type);
    wtensor t = {.n_dims = n_dims, .type = type, .ne = {1, 1, 1, 1}};
    memcpy(t.name, name, len + 1);
    for (uint32_t d = 0; d < n_dims; d++) {
        GGUF_FAIL_IF(ne[d] <= 0, msg, GGUF_ERR_SHAPE, "tensor \"%s\": dimension %u is %lld", pr, d,
                     (long long)ne[d]);
        t.ne[d] = ne[d];
    }
    GGUF_FAIL_IF(t.ne[0] % tt->block_size != 0, msg, GGUF_ERR_SHAPE,
                 "tensor \"%s\": ne[0] = %lld is not a multiple of %u (%s)", pr, (long long)t.ne[0],
                 tt->block_size, tt->name);
    int64_t nel = t.ne[0];
    uint64_t nbytes;
    bool ovf = __builtin_mul_overflow((uint64_t)(t.ne[0] / tt->block_size), (uint64_t)tt->block_bytes,
                                      &nbytes);
    for (int d = 1; d < GGUF_MAX_DIMS; d++)
        if (ovf || __builtin_mul_overflow(nel, t.ne[d], &nel) ||
            __builtin_mul_overflow(nbytes, (uint64_t)t.ne[d], &nbytes))
            return gguf_fail_(msg, GGUF_ERR_OVERFLOW, "tensor \"%s\": size overflows", pr);
    /* data bytes stay below 2^62, so padding (< 2^31 per tensor, 2^20 tensors) never overflows */
    GGUF_FAIL_IF(nbytes > SIZE_MAX || nbytes > ((uint64_t)1 << 62) - w->data_bytes, msg, GGUF_ERR_OVERFLOW,
                 "tensor \"%s\": data section too large", pr);
    t.nbytes = nbytes;
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? 2 * w->cap_t : 64;
        wtensor *nt = realloc(w->t, cap * sizeof *nt);
        GGUF_FAIL_IF(!nt, msg, GGUF_ERR_NOMEM, "out of memory");
        w->t = nt;
        w->cap_t = cap;
    }
    if (2 * (w->t_ix.count + 1) + 2 > w->t_ix.mask + 1) {
        gguf_index_ ix;
        GGUF_FAIL_IF(!gguf_index_init_(&ix, 2 * (w->n_t + 1)), msg, GGUF_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < w->n_t; i++)
            gguf_index_put_(&ix, w->t[i].name, strlen(w->t[i].name), (int64_t)i);
        gguf_index_free_(&w->t_ix);
        w->t_ix = ix;
    }
    t.offset = w->data_size;
    w->t[w->n_t] = t;
    gguf_index_put_(&w->t_ix, w->t[w->n_t].name, len, (int64_t)w->n_t);
    w->n_t++;
    w->data_size += nbytes + (w->alignment - nbytes % w->alignment) % w->alignment;
    w->data_bytes += nbytes;
    return GGUF_OK;
}

/* ---- serialization ---- */

static void write_all(sink *s, const uint8_t *p, size_t n)
{
    while (n > 0 && !s->err) {
        ssize_t k = write(s->fd, p, n > (1u << 30) ? (1u << 30) : n);
        if (k < 0) {
            if (errno != EINTR)
                s->err = errno;
            continue;
        }
        if (k == 0) {
            s->err = EIO;
            break;
        }
        p += k;
        n -= (size_t)k;
    }
}

static void flush(sink *s)
{
    if (s->fd >= 0 && s->len > 0) {
        write_all(s, s->buf, s->len);
        s->len = 0;
    }
}

static void put(sink *s, const void *data, size_t n)
{
    s->total += n;
    if (!s->buf || s->err)
        return;
    const uint8_t *p = data;
    if (s->fd < 0) { /* memory, sized by a measuring pass */
        memcpy(s->buf + s->len, p, n);
        s->len += n;
        return;
    }
    while (n > 0 && !s->err) {
        if (s->len == 0 && n >= s->cap) {
            write_all(s, p, n);
            return;
        }
        size_t k = s->cap - s->len < n ? s->cap - s->len : n;
        memcpy(s->buf + s->len, p, k);
        s->len += k;
        p += k;
        n -= k;
        if (s->len == s->cap)
            flush(s);
    }
}

static void put_u32(sink *s, uint32_t v) { put(s, &v, 4); }
static void put_u64(sink *s, uint64_t v) { put(s, &v, 8); }

static void put_str(sink *s, const char *p, uint64_t len)
{
    put_u64(s, len);
    put(s, p, (size_t)len);
}

static void put_pad(sink *s, size_t alignment)
{
    static const uint8_t zeros[4096];
    uint64_t n = (alignment - s->total % alignment) % alignment;
    while (n > 0) {
        size_t k = n > sizeof zeros ? sizeof zeros : (size_t)n;
        put(s, zeros, k);
        n -= k;
    }
}

static void put_value(sink *s, const gguf_value *v)
{
    uint8_t u8; uint16_t u16; uint32_t u32; float f;
    switch (v->type) {
    case GGUF_VAL_U8: case GGUF_VAL_I8: u8 = (uint8_t)v->v.u64; put(s, &u8, 1); break;
    case GGUF_VAL_U16: case GGUF_VAL_I16: u16 = (uint16_t)v->v.u64; put(s, &u16, 2); break;
    case GGUF_VAL_U32: case GGUF_VAL_I32: u32 = (uint32_t)v->v.u64; put(s, &u32, 4); break;
    case GGUF_VAL_U64: case GGUF_VAL_I64: put_u64(s, v->v.u64); break;
    case GGUF_VAL_F32: f = (float)v->v.f64; put(s, &f, 4); break;
    case GGUF_VAL_F64: put(s, &v->v.f64, 8); break;
    case GGUF_VAL_BOOL: u8 = v->v.b ? 1 : 0; put(s, &u8, 1); break;
    case GGUF_VAL_STRING: put_str(s, v->v.str.str, v->v.str.len); break;
    case GGUF_VAL_ARRAY:
        put_u32(s, v->elem_type);
        put_u64(s, v->n);
        if (v->elem_type == GGUF_VAL_STRING)
            for (uint64_t i = 0; i < v->n; i++)
                put_str(s, v->v.strs[i].str, v->v.strs[i].len);
        else
            put(s, v->v.arr, (size_t)v->n * gguf_value_type_size(v->elem_type));
        break;
    default: break; /* rejected when set */
    }
}

/* Header, KVs and (when with_tensors) the tensor infos; no padding. */
static void put_header(sink *s, const gguf_writer *w, bool with_tensors)
{
    put(s, "GGUF", 4);
    put_u32(s, 3);
    put_u64(s, with_tensors ? w->n_t : 0);
    put_u64(s, w->n_kv);
    for (size_t i = 0; i < w->n_kv; i++) {
        put_str(s, w->kv[i].key, w->kv[i].key_len);
        put_u32(s, w->kv[i].val.type);
        put_value(s, &w->kv[i].val);
    }
    if (!with_tensors)
        return;
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        put_str(s, t->name, strlen(t->name));
        put_u32(s, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++)
            put_u64(s, (uint64_t)t->ne[d]);
        put_u32(s, (uint32_t)t->type);
        put_u64(s, t->offset);
    }
}

static uint64_t data_start(const gguf_writer *w)
{
    sink m = {.fd = -1};
    put_header(&m, w, true);
    if (w->n_t > 0)
        put_pad(&m, w->alignment);
    return m.total;
}

uint64_t gguf_writer_total_size(const gguf_writer *w)
{
    return data_start(w) + (w->n_t > 0 ? w->data_size : 0);
}

gguf_error gguf_writer_kv_to_memory(const gguf_writer *w, void **buf, size_t *size, char *msg)
{
    GGUF_FAIL_IF(!w || !buf || !size, msg, GGUF_ERR_ARG, "kv_to_memory: NULL argument");
    sink m = {.fd = -1};
    put_header(&m, w, false);
    GGUF_FAIL_IF(m.total > SIZE_MAX, msg, GGUF_ERR_OVERFLOW, "metadata too large");
    sink s = {.fd = -1, .cap = (size_t)m.total};
    s.buf = malloc(s.cap);
    GGUF_FAIL_IF(!s.buf, msg, GGUF_ERR_NOMEM, "out of memory for %zu bytes", s.cap);
    put_header(&s, w, false);
    *buf = s.buf;
    *size = s.len;
    return GGUF_OK;
}

/* ---- file output ---- */

static gguf_error io_fail(gguf_writer *w, int err, const char *what, char *msg)
{
    if (w->tmp)
        unlink(w->tmp); /* before close: the lock still guards the name */
    if (w->out.fd >= 0)
        close(w->out.fd);
    w->out.fd = -1;
    free(w->tmp);
    w->tmp = NULL;
    w->state = W_FAILED;
    return gguf_fail_(msg, GGUF_ERR_IO, "%s: %s%s", what, strerror(err),
                      err == EFBIG ? " (over the file size limit, ulimit -f, or the file system's largest file)" : "");
}

const char *gguf_writer_temp_path(const gguf_writer *w)
{
    return w && w->state == W_OPEN ? w->tmp : NULL;
}

int gguf_writer_stale_removed(const gguf_writer *w)
{
    return w ? w->stale_removed : 0;
}

/* Directory part of path ("." when there is none), malloc'ed; NULL on out of memory. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
}

/* Whether name is exactly "." base TMP_TAG followed by six of mkstemp's characters [A-Za-z0-9]. */
static bool is_temp_name_of(const char *name, const char *base, size_t blen)
{
    if (name[0] != '.' || strncmp(name + 1, base, blen) != 0)
        return false;
    const char *p = name + 1 + blen;
    if (strncmp(p, TMP_TAG, strlen(TMP_TAG)) != 0)
        return false;
    p += strlen(TMP_TAG);
    for (int i = 0; i < TMP_SUFFIX_LEN; i++) {
        char c = p[i]; /* the NUL fails this test, so p[i] never runs past the name */
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
            return false;
    }
    return p[TMP_SUFFIX_LEN] == 0;
}

/* Remove the temp files of base in dir that no live writer holds: a writer keeps flock(LOCK_EX)
 * on its temp file until it is finished or freed, and the kernel drops that lock when the
 * process dies (kill -9 included), so a temp file we can lock is stale. Only regular files
 * are touched (symlinks are not followed). Best effort: a directory we cannot read, or an
 * entry we cannot open, lock or unlink, is left as it is. Returns how many were removed. */
static int remove_stale_temps(const char *dir, const char *base)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return 0;
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return 0;
    }
    size_t blen = strlen(base);
    int removed = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (!is_temp_name_of(e->d_name, base, blen))
            continue;
        struct stat sn, sf;
        /* skip FIFOs and devices before opening them (opening can block or have effects) */
        if (fstatat(dfd, e->d_name, &sn, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(sn.st_mode))
            continue;
        int fd = openat(dfd, e->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (fd < 0)
            continue;
        /* Unlink only while holding the lock, and only if the name still is the file we locked:
         * a writer that finished has renamed it away, and a new writer gets a new name. */
        if (fstat(fd, &sf) == 0 && S_ISREG(sf.st_mode) && flock(fd, LOCK_EX | LOCK_NB) == 0 &&
            fstatat(dfd, e->d_name, &sn, AT_SYMLINK_NOFOLLOW) == 0 && sn.st_dev == sf.st_dev &&
            sn.st_ino == sf.st_ino && unlinkat(dfd, e->d_name, 0) == 0)
            removed++;
        close(fd);
    }
    closedir(d);
    return removed;
}

/* mkostemp on the template w->tmp and take flock(LOCK_EX) on it. Between mkostemp and flock,
 * another process cleaning stale temps may lock and unlink the new file; then the lock is
 * busy or the name no longer leads to our file, and we start again with a new name.
 * Returns the descriptor, or -1 with errno set. */
static int create_locked_temp(char *tmpl)
{
    size_t n = strlen(tmpl);
    for (int attempt = 0; attempt < LOCK_ATTEMPTS; attempt++) {
        memset(tmpl + n - TMP_SUFFIX_LEN, 'X', TMP_SUFFIX_LEN);
        int fd = mkostemp(tmpl, O_CLOEXEC);
        if (fd < 0)
            return -1;
        int rc;
        while ((rc = flock(fd, LOCK_EX | LOCK_NB)) != 0 && errno == EINTR)
            ;
        if (rc != 0 && errno != EWOULDBLOCK) {
            int err = errno;
            unlink(tmpl);
            close(fd);
            errno = err;
            return -1;
        }
        struct stat sf, sn;
        if (rc == 0 && fstat(fd, &sf) == 0 && lstat(tmpl, &sn) == 0 && sf.st_dev == sn.st_dev &&
            sf.st_ino == sn.st_ino)
            return fd;
        close(fd); /* the name is not ours any more; the cleaner that took it removes it */
    }
    errno = EBUSY;
    return -1;
}

gguf_error gguf_writer_open(gguf_writer *w, const char *path, char *msg)
{
    GGUF_FAIL_IF(!w || !path || !*path, msg, GGUF_ERR_ARG, "writer_open: no path");
    GGUF_FAIL_IF(w->state != W_BUILD, msg, GGUF_ERR_STATE, "writer already opened");
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    GGUF_FAIL_IF(!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0, msg, GGUF_ERR_ARG,
                 "output path names a directory");
    size_t dlen = slash ? (size_t)(slash - path) : 0;
    size_t n = dlen + strlen(base) + 40;
    free(w->path);
    free(w->tmp);
    free(w->out.buf);
    w->path = strdup(path);
    w->tmp = malloc(n);
    w->out.buf = malloc(WBUF_SIZE);
    free(w->done);
    w->done = calloc(w->n_t ? w->n_t : 1, sizeof *w->done);
    char *dir = dir_of(path);
    if (!w->path || !w->tmp || !w->out.buf || !w->done || !dir) {
        free(dir);
        return gguf_fail_(msg, GGUF_ERR_NOMEM, "out of memory");
    }
    w->stale_removed = remove_stale_temps(dir, base);
    free(dir);
    if (!slash)
        snprintf(w->tmp, n, ".%s.qforge-tmp-XXXXXX", base);
    else if (dlen == 0)
        snprintf(w->tmp, n, "/.%s.qforge-tmp-XXXXXX", base);
    else
        snprintf(w->tmp, n, "%.*s/.%s.qforge-tmp-XXXXXX", (int)dlen, path, base);
    int fd = create_locked_temp(w->tmp);
    if (fd < 0) {
        int err = errno;
        free(w->tmp);
        w->tmp = NULL;
        return gguf_fail_(msg, GGUF_ERR_IO, "cannot create and lock a temp file next to the output: %s",
                          strerror(err));
    }
    w->out.fd = fd;
    w->out.cap = WBUF_SIZE;
    /* mkstemp makes 0600; give the file the mode a plain create would */
    mode_t um = umask(0);
    umask(um);
    if (fchmod(fd, 0666 & ~um) != 0)
        return io_fail(w, errno, "chmod", msg);
    relayout(w);
    put_header(&w->out, w, true);
    if (w->n_t > 0)
        put_pad(&w->out, w->alignment);
    if (w->out.err)
        return io_fail(w, w->out.err, "write", msg);
    w->state = W_OPEN;
    w->cur = 0;
    w->cur_done = 0;
    w->written = 0;
    w->mode = 0;
    return GGUF_OK;
}

gguf_error gguf_writer_write(gguf_writer *w, const void *data, size_t n, char *msg)
{
    GGUF_FAIL_IF(!w || (!data && n), msg, GGUF_ERR_ARG, "writer_write: NULL argument");
    GGUF_FAIL_IF(w->state != W_OPEN, msg, GGUF_ERR_STATE, "writer is not open");
    GGUF_FAIL_IF(w->mode == 2, msg, GGUF_ERR_STATE, "writer_write after writer_write_tensor");
    w->mode = 1;
    GGUF_FAIL_IF(n > w->data_bytes - w->written, msg, GGUF_ERR_STATE,
                 "%zu bytes written but only %llu remain to be written", n,
                 (unsigned long long)(w->data_bytes - w->written));
    const uint8_t *p = data;
    while (n > 0) {
        wtensor *t = &w->t[w->cur];
        uint64_t room = t->nbytes - w->cur_done;
        size_t k = room < n ? (size_t)room : n;
        put(&w->out, p, k);
        p += k;
        n -= k;
        w->cur_done += k;
        w->written += k;
        if (w->cur_done == t->nbytes) {
            put_pad(&w->out, w->alignment);
            w->cur++;
            w->cur_done = 0;
        }
        if (w->out.err)
            return io_fail(w, w->out.err, "write", msg);
    }
    return GGUF_OK;
}

gguf_error gguf_writer_write_tensor(gguf_writer *w, size_t i, const void *data, size_t n, char *msg)
{
    GGUF_FAIL_IF(!w || (!data && n), msg, GGUF_ERR_ARG, "writer_write_tensor: NULL argument");
    GGUF_FAIL_IF(w->state != W_OPEN, msg, GGUF_ERR_STATE, "writer is not open");
    GGUF_FAIL_IF(w->mode == 1, msg, GGUF_ERR_STATE, "writer_write_tensor after writer_write");
    GGUF_FAIL_IF(i >= w->n_t, msg, GGUF_ERR_ARG, "writer_write_tensor: no tensor %zu", i);
    const wtensor *t = &w->t[i];
    GGUF_FAIL_IF(n > t->nbytes - w->done[i], msg, GGUF_ERR_STATE,
                 "tensor '%s': %zu bytes written but only %llu remain", t->name, n,
                 (unsigned long long)(t->nbytes - w->done[i]));
    if (w->mode == 0) {
        flush(&w->out); /* the header: pwrite below leaves the file offset alone */
        if (w->out.err)
            return io_fail(w, w->out.err, "write", msg);
        w->mode = 2;
    }
    uint64_t off = data_start(w) + t->offset + w->done[i];
    const uint8_t *p = data;
    size_t left = n;
    while (left > 0) {
        ssize_t k = pwrite(w->out.fd, p, left > (1u << 30) ? (1u << 30) : left, (off_t)off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return io_fail(w, k < 0 ? errno : EIO, "write", msg);
        p += k;
        left -= (size_t)k;
        off += (uint64_t)k;
    }
    w->done[i] += n;
    w->written += n;
    return GGUF_OK;
}

gguf_error gguf_writer_finish(gguf_writer *w, char *msg)
{
    GGUF_FAIL_IF(!w, msg, GGUF_ERR_ARG, "writer_finish: NULL writer");
    GGUF_FAIL_IF(w->state != W_OPEN, msg, GGUF_ERR_STATE, "writer is not open");
    GGUF_FAIL_IF(w->written != w->data_bytes, msg, GGUF_ERR_STATE,
                 "only %llu of %llu tensor data bytes were written", (unsigned long long)w->written,
                 (unsigned long long)w->data_bytes);
    flush(&w->out);
    if (w->out.err)
        return io_fail(w, w->out.err, "write", msg);
    if (w->mode == 2) {
        /* the padding between tensors is a hole; the last one's is made by the size */
        if (w->out.total != data_start(w))
            return io_fail(w, EIO, "internal size mismatch", msg);
        if (ftruncate(w->out.fd, (off_t)gguf_writer_total_size(w)) != 0)
            return io_fail(w, errno, "write", msg);
    } else if (w->out.total != gguf_writer_total_size(w)) {
        return io_fail(w, EIO, "internal size mismatch", msg);
    }
    if (fsync(w->out.fd) != 0)
        return io_fail(w, errno, "fsync", msg);
    /* rename while the lock is held, so no cleaner can remove the temp file in between */
    if (rename(w->tmp, w->path) != 0)
        return io_fail(w, errno, "rename", msg);
    w->state = W_DONE;
    /* the data is on disk after fsync; close can no longer report a lost write */
    close(w->out.fd);
    w->out.fd = -1;
    /* make the rename durable */
    char *dir = dir_of(w->path);
    GGUF_FAIL_IF(!dir, msg, GGUF_ERR_NOMEM, "out of memory");
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    GGUF_FAIL_IF(dfd < 0, msg, GGUF_ERR_IO, "cannot open the output directory: %s", strerror(errno));
    int rc = fsync(dfd), err = errno;
    close(dfd);
    GGUF_FAIL_IF(rc != 0 && err != EINVAL, msg, GGUF_ERR_IO, "fsync of the output directory: %s",
                 strerror(err));
    return GGUF_OK;
}
