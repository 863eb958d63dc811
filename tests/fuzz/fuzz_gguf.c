/* libFuzzer target for the GGUF reader (not built by default).
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. tests/fuzz/fuzz_gguf.c \
 *         libgguf/gguf_types.c libgguf/gguf_read.c libgguf/gguf_write.c -o fuzz_gguf
 *   ./fuzz_gguf -max_len=65536 CORPUS_DIR     (seed it with small .gguf files)
 *
 * Opens the input with gguf_open_memory and, when it is accepted, touches every key, value,
 * array element and tensor byte, checks the reader's invariants, then serializes the
 * metadata with the writer and requires the result to read back with the same KV count.
 * Any violated invariant aborts.
 * Hardening note: the round trip also checks keys/types in order and that a second
 * serialization is byte-identical to the first. Built by `make fuzz`, run by bench/fuzz.sh. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "libgguf/gguf.h"

#define CHECK(c)                                                                                    \
    do {                                                                                            \
        if (!(c))                                                                                   \
            abort();                                                                                \
    } while (0)

static volatile uint64_t sink;

static uint64_t touch(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = 0;
    for (size_t i = 0; i < n; i++)
        h = h * 31 + b[i];
    return h;
}

static void walk_value(const gguf_value *v)
{
    uint64_t h = 0;
    switch (v->type) {
    case GGUF_VAL_STRING:
        CHECK(v->v.str.str != NULL && v->v.str.str[v->v.str.len] == 0);
        h += touch(v->v.str.str, (size_t)v->v.str.len);
        break;
    case GGUF_VAL_ARRAY:
        CHECK(v->elem_type != GGUF_VAL_ARRAY && v->elem_type < GGUF_VAL_COUNT_);
        if (v->elem_type == GGUF_VAL_STRING) {
            for (uint64_t i = 0; i < v->n; i++) {
                CHECK(v->v.strs[i].str[v->v.strs[i].len] == 0);
                h += touch(v->v.strs[i].str, (size_t)v->v.strs[i].len);
            }
        } else {
            h += touch(v->v.arr, (size_t)v->n * gguf_value_type_size(v->elem_type));
            if (v->elem_type == GGUF_VAL_BOOL)
                for (uint64_t i = 0; i < v->n; i++)
                    CHECK(((const uint8_t *)v->v.arr)[i] <= 1);
        }
        break;
    default:
        CHECK(v->type < GGUF_VAL_COUNT_);
        h += v->v.u64;
        break;
    }
    sink += h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gguf_reader *r = NULL;
    char msg[GGUF_MSG_SIZE];
    msg[0] = 0;
    gguf_error e = gguf_open_memory(data, size, &r, msg);
    if (e != GGUF_OK) {
        CHECK(r == NULL && msg[0] != 0 && e < GGUF_ERR_COUNT_);
        CHECK(memchr(msg, 0, GGUF_MSG_SIZE) != NULL);
        return 0;
    }
    size_t align = gguf_alignment(r);
    CHECK(align != 0 && (align & (align - 1)) == 0);
    CHECK(gguf_data_offset(r) % align == 0);
    for (int64_t i = 0; i < gguf_n_kv(r); i++) {
        const char *k = gguf_kv_key(r, i);
        CHECK(k != NULL && k[0] != 0);
        CHECK(gguf_find_kv(r, k) == i);
        walk_value(gguf_kv_value(r, i));
    }
    for (int64_t i = 0; i < gguf_n_tensors(r); i++) {
        const gguf_tensor *t = gguf_tensor_at(r, i);
        CHECK(gguf_find_tensor(r, t->name) == i);
        CHECK(t->n_dims >= 1 && t->n_dims <= GGUF_MAX_DIMS);
        const gguf_type_traits *tt = gguf_type_info(t->type);
        CHECK(tt != NULL);
        CHECK(t->offset % align == 0);
        const uint8_t *p = t->data;
        CHECK(p >= data + gguf_data_offset(r) && t->nbytes <= (uint64_t)(data + size - p));
        CHECK(gguf_row_size(t->type, t->ne[0]) * (uint64_t)(t->ne[1] * t->ne[2] * t->ne[3]) == t->nbytes);
        sink += touch(p, (size_t)t->nbytes);
    }
    /* the metadata must survive a write/read cycle */
    gguf_writer *w = gguf_writer_create();
    if (w) {
        if (gguf_writer_copy_kv(w, r) == GGUF_OK) {
            void *buf;
            size_t n;
            if (gguf_writer_kv_to_memory(w, &buf, &n, msg) == GGUF_OK) {
                gguf_reader *r2;
                CHECK(gguf_open_memory(buf, n, &r2, msg) == GGUF_OK);
                CHECK(gguf_n_kv(r2) == gguf_n_kv(r));
                /* (hardening) same keys in the same order, and serializing again gives the same bytes */
                for (int64_t i = 0; i < gguf_n_kv(r); i++)
                    CHECK(strcmp(gguf_kv_key(r, i), gguf_kv_key(r2, i)) == 0 &&
                          gguf_kv_value(r, i)->type == gguf_kv_value(r2, i)->type);
                gguf_writer *w2 = gguf_writer_create();
                if (w2) {
                    void *buf2;
                    size_t n2;
                    CHECK(gguf_writer_copy_kv(w2, r2) == GGUF_OK);
                    if (gguf_writer_kv_to_memory(w2, &buf2, &n2, msg) == GGUF_OK) {
                        CHECK(n2 == n && memcmp(buf, buf2, n) == 0);
                        free(buf2);
                    }
                    gguf_writer_free(w2);
                }
                gguf_close(r2);
                free(buf);
            }
        } else {
            abort(); /* a KV the reader accepted must be accepted by the writer */
        }
        gguf_writer_free(w);
    }
    gguf_close(r);
    return 0;
}
