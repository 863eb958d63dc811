/* libgguf writer (gguf_write.c): golden layout, round trips of every value type, argument
 * and state errors, temp files (stale, live, killed writers), and byte-identical rewrites of
 * llama.cpp's files. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <dirent.h>
#include <unistd.h>

#include "libgguf/gguf.h"
#include "tests/testutil.h"

/* ======================= writer ======================= */

/* Write a writer's declared tensors with data[i] = byte pattern, in pieces of `piece` bytes. */
static void write_pattern(gguf_writer *w, const char *path, uint64_t data_bytes, size_t piece)
{
    char msg[GGUF_MSG_SIZE] = "";
    cr_assert_eq(gguf_writer_open(w, path, msg), GGUF_OK, "%s", msg);
    uint8_t *buf = malloc(data_bytes ? data_bytes : 1);
    for (uint64_t i = 0; i < data_bytes; i++)
        buf[i] = (uint8_t)(i * 13 + 5);
    for (uint64_t off = 0; off < data_bytes; off += piece) {
        size_t k = data_bytes - off < piece ? (size_t)(data_bytes - off) : piece;
        cr_assert_eq(gguf_writer_write(w, buf + off, k, msg), GGUF_OK, "%s", msg);
    }
    cr_assert_eq(gguf_writer_finish(w, msg), GGUF_OK, "%s", msg);
    free(buf);
}

/* The exact bytes of a tiny file, built by hand from the GGUF spec as llama.cpp writes it. */
Test(gguf_write, golden_layout)
{
    gguf_writer *w = gguf_writer_create();
    int64_t ne[1] = {2};
    cr_assert_eq(gguf_writer_set_u32(w, "k", 5), GGUF_OK);
    cr_assert_eq(gguf_writer_add_tensor(w, "t", 1, ne, GGUF_F32, NULL), GGUF_OK);
    cr_assert_eq(gguf_writer_add_tensor(w, "u", 1, ne, GGUF_F16, NULL), GGUF_OK);
    char *dir = tu_mkdtemp(), path[4096];
    snprintf(path, sizeof path, "%s/g.gguf", dir);
    write_pattern(w, path, 12, 5);
    static const uint8_t want[] = {
        'G', 'G', 'U', 'F', 3, 0, 0, 0,                   /* magic, version 3 */
        2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0,   /* 2 tensors, 1 kv */
        1, 0, 0, 0, 0, 0, 0, 0, 'k', 4, 0, 0, 0, 5, 0, 0, 0, /* "k" u32 5 */
        1, 0, 0, 0, 0, 0, 0, 0, 't', 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, /* "t" n_dims 1 ne 2 */
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,               /* F32, offset 0 */
        1, 0, 0, 0, 0, 0, 0, 0, 'u', 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0,
        1, 0, 0, 0, 32, 0, 0, 0, 0, 0, 0, 0,              /* F16, offset 32 */
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* pad 107 -> 128 */
        5, 18, 31, 44, 57, 70, 83, 96,                    /* t's 8 bytes */
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        109, 122, 135, 148,                               /* u's 4 bytes */
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    };
    size_t n;
    uint8_t *got = tu_read_file(path, &n);
    cr_assert_not_null(got);
    cr_expect_eq(n, sizeof want);
    cr_expect_eq(gguf_writer_total_size(w), sizeof want);
    for (size_t i = 0; i < n && i < sizeof want; i++)
        cr_expect_eq(got[i], want[i], "byte %zu: %u != %u", i, got[i], want[i]);
    free(got);
    unlink(path);
    rmdir(dir);
    free(dir);
    gguf_writer_free(w);
}

Test(gguf_write, roundtrip_every_value_type)
{
    gguf_writer *w = gguf_writer_create();
    cr_assert_not_null(w);
    const gguf_value scalars[] = {
        {.type = GGUF_VAL_U8, .v.u64 = 200},          {.type = GGUF_VAL_I8, .v.i64 = -100},
        {.type = GGUF_VAL_U16, .v.u64 = 65000},       {.type = GGUF_VAL_I16, .v.i64 = -30000},
        {.type = GGUF_VAL_U32, .v.u64 = 4000000000u}, {.type = GGUF_VAL_I32, .v.i64 = -2000000000},
        {.type = GGUF_VAL_F32, .v.f64 = 1.5},         {.type = GGUF_VAL_BOOL, .v.b = true},
        {.type = GGUF_VAL_U64, .v.u64 = UINT64_MAX},  {.type = GGUF_VAL_I64, .v.i64 = INT64_MIN},
        {.type = GGUF_VAL_F64, .v.f64 = -1e300},
    };
    char key[32];
    for (size_t i = 0; i < sizeof scalars / sizeof scalars[0]; i++) {
        snprintf(key, sizeof key, "scalar.%s", gguf_value_type_name(scalars[i].type));
        cr_assert_eq(gguf_writer_set_value(w, key, &scalars[i]), GGUF_OK, "%s", key);
    }
    cr_assert_eq(gguf_writer_set_str(w, "str", "héllo"), GGUF_OK);
    gguf_value nul = {.type = GGUF_VAL_STRING, .v.str = {"a\0b", 3}};
    cr_assert_eq(gguf_writer_set_value(w, "str.nul", &nul), GGUF_OK);
    cr_assert_eq(gguf_writer_set_str(w, "str.empty", ""), GGUF_OK);
    uint8_t u8s[3] = {1, 2, 255};
    int16_t i16s[2] = {-2, 7};
    float f32s[3] = {0.25f, -1.0f, 3e38f};
    double f64s[1] = {2.5};
    bool bools[4] = {true, false, false, true};
    int64_t i64s[2] = {INT64_MAX, -1};
    cr_assert_eq(gguf_writer_set_array(w, "arr.u8", GGUF_VAL_U8, u8s, 3), GGUF_OK);
    cr_assert_eq(gguf_writer_set_array(w, "arr.i16", GGUF_VAL_I16, i16s, 2), GGUF_OK);
    cr_assert_eq(gguf_writer_set_array(w, "arr.f32", GGUF_VAL_F32, f32s, 3), GGUF_OK);
    cr_assert_eq(gguf_writer_set_array(w, "arr.f64", GGUF_VAL_F64, f64s, 1), GGUF_OK);
    cr_assert_eq(gguf_writer_set_array(w, "arr.bool", GGUF_VAL_BOOL, bools, 4), GGUF_OK);
    cr_assert_eq(gguf_writer_set_array(w, "arr.i64", GGUF_VAL_I64, i64s, 2), GGUF_OK);
    cr_assert_eq(gguf_writer_set_array(w, "arr.empty", GGUF_VAL_U32, NULL, 0), GGUF_OK);
    const char *strs[] = {"<unk>", "", "▁the", "z"};
    cr_assert_eq(gguf_writer_set_str_array(w, "arr.str", strs, 4), GGUF_OK);
    cr_expect_eq(gguf_writer_set_array(w, "arr.nested", GGUF_VAL_ARRAY, u8s, 1), GGUF_ERR_VALUE_TYPE);
    cr_expect_eq(gguf_writer_set_array(w, "arr.bad", (enum gguf_value_type)13, u8s, 1), GGUF_ERR_VALUE_TYPE);
    uint8_t badbool = 2;
    cr_expect_eq(gguf_writer_set_array(w, "arr.badbool", GGUF_VAL_BOOL, &badbool, 1), GGUF_ERR_VALUE_TYPE);
    gguf_value over = {.type = GGUF_VAL_U8, .v.u64 = 256};
    cr_expect_eq(gguf_writer_set_value(w, "over", &over), GGUF_ERR_ARG);
    cr_expect_eq(gguf_writer_set_u32(w, "", 1), GGUF_ERR_NAME);

    char *dir = tu_mkdtemp(), path[4096], msg[GGUF_MSG_SIZE];
    snprintf(path, sizeof path, "%s/v.gguf", dir);
    write_pattern(w, path, 0, 1);
    gguf_reader *r;
    cr_assert_eq(gguf_open(path, &r, msg), GGUF_OK, "%s", msg);
    cr_expect_eq(gguf_n_kv(r), 11 + 3 + 8);
    cr_expect_eq(gguf_n_tensors(r), 0);
    for (size_t i = 0; i < sizeof scalars / sizeof scalars[0]; i++) {
        snprintf(key, sizeof key, "scalar.%s", gguf_value_type_name(scalars[i].type));
        int64_t k = gguf_find_kv(r, key);
        cr_assert_eq(k, (int64_t)i, "%s", key);
        const gguf_value *v = gguf_kv_value(r, k);
        cr_expect_eq(v->type, scalars[i].type, "%s", key);
        if (v->type == GGUF_VAL_F32 || v->type == GGUF_VAL_F64)
            cr_expect_eq(v->v.f64, scalars[i].v.f64, "%s", key);
        else if (v->type == GGUF_VAL_BOOL)
            cr_expect_eq(v->v.b, scalars[i].v.b, "%s", key);
        else
            cr_expect_eq(v->v.u64, scalars[i].v.u64, "%s", key);
    }
    const gguf_str *s;
    cr_assert_eq(gguf_get_str(r, "str", &s), GGUF_OK);
    cr_expect_str_eq(s->str, "héllo");
    cr_assert_eq(gguf_get_str(r, "str.nul", &s), GGUF_OK);
    cr_expect_eq(s->len, 3);
    cr_expect_eq(memcmp(s->str, "a\0b", 4), 0);
    cr_assert_eq(gguf_get_str(r, "str.empty", &s), GGUF_OK);
    cr_expect_eq(s->len, 0);
    cr_expect_str_eq(s->str, "");
    const gguf_value *a;
    cr_assert_eq(gguf_get_array(r, "arr.u8", &a), GGUF_OK);
    cr_expect_eq(memcmp(a->v.arr, u8s, 3), 0);
    cr_assert_eq(gguf_get_array(r, "arr.i16", &a), GGUF_OK);
    cr_expect_eq(memcmp(a->v.arr, i16s, sizeof i16s), 0);
    cr_expect_eq((uintptr_t)a->v.arr % _Alignof(int16_t), 0);
    cr_assert_eq(gguf_get_array(r, "arr.f32", &a), GGUF_OK);
    cr_expect_eq(((const float *)a->v.arr)[2], 3e38f);
    cr_assert_eq(gguf_get_array(r, "arr.f64", &a), GGUF_OK);
    cr_expect_eq((uintptr_t)a->v.arr % _Alignof(double), 0);
    cr_expect_eq(((const double *)a->v.arr)[0], 2.5);
    cr_assert_eq(gguf_get_array(r, "arr.bool", &a), GGUF_OK);
    cr_expect_eq(memcmp(a->v.arr, bools, 4), 0);
    cr_assert_eq(gguf_get_array(r, "arr.i64", &a), GGUF_OK);
    cr_expect_eq(((const int64_t *)a->v.arr)[0], INT64_MAX);
    cr_expect_eq((uintptr_t)a->v.arr % _Alignof(int64_t), 0);
    cr_assert_eq(gguf_get_array(r, "arr.empty", &a), GGUF_OK);
    cr_expect_eq(a->n, 0);
    cr_expect_eq(a->elem_type, GGUF_VAL_U32);
    cr_assert_eq(gguf_get_array(r, "arr.str", &a), GGUF_OK);
    cr_assert_eq(a->elem_type, GGUF_VAL_STRING);
    cr_assert_eq(a->n, 4);
    for (int i = 0; i < 4; i++) {
        cr_expect_str_eq(a->v.strs[i].str, strs[i]);
        cr_expect_eq(a->v.strs[i].len, strlen(strs[i]));
    }
    cr_expect_eq(gguf_find_kv(r, "over"), -1);
    gguf_close(r);
    unlink(path);
    rmdir(dir);
    free(dir);
    gguf_writer_free(w);
}

Test(gguf_write, replace_in_place_and_remove)
{
    gguf_writer *w = gguf_writer_create();
    cr_assert_eq(gguf_writer_set_u32(w, "a", 1), GGUF_OK);
    cr_assert_eq(gguf_writer_set_str(w, "b", "x"), GGUF_OK);
    cr_assert_eq(gguf_writer_set_u32(w, "c", 3), GGUF_OK);
    cr_assert_eq(gguf_writer_set_str(w, "a", "now a string"), GGUF_OK);
    cr_assert_eq(gguf_writer_remove(w, "b"), GGUF_OK);
    cr_expect_eq(gguf_writer_remove(w, "b"), GGUF_ERR_NOT_FOUND);
    cr_assert_eq(gguf_writer_set_u32(w, "d", 4), GGUF_OK);
    void *buf;
    size_t n;
    gguf_reader *r;
    cr_assert_eq(gguf_writer_kv_to_memory(w, &buf, &n, NULL), GGUF_OK);
    cr_assert_eq(gguf_open_memory(buf, n, &r, NULL), GGUF_OK);
    cr_assert_eq(gguf_n_kv(r), 3);
    cr_expect_str_eq(gguf_kv_key(r, 0), "a");
    cr_expect_str_eq(gguf_kv_key(r, 1), "c");
    cr_expect_str_eq(gguf_kv_key(r, 2), "d");
    cr_expect_str_eq(gguf_kv_value(r, 0)->v.str.str, "now a string");
    cr_expect_eq(gguf_find_kv(r, "b"), -1);
    gguf_close(r);
    free(buf);
    gguf_writer_free(w);
}

Test(gguf_write, many_keys_and_tensors)
{
    /* enough entries to grow the writer's and reader's indexes several times */
    gguf_writer *w = gguf_writer_create();
    char key[32];
    for (int i = 0; i < 3000; i++) {
        snprintf(key, sizeof key, "k.%d", i);
        cr_assert_eq(gguf_writer_set_u32(w, key, (uint32_t)i), GGUF_OK);
    }
    int64_t ne[1] = {1};
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof key, "t.%d", i);
        cr_assert_eq(gguf_writer_add_tensor(w, key, 1, ne, GGUF_F32, NULL), GGUF_OK);
    }
    cr_expect_eq(gguf_writer_add_tensor(w, "t.1999", 1, ne, GGUF_F32, NULL), GGUF_ERR_DUPLICATE);
    char *dir = tu_mkdtemp(), path[4096], msg[GGUF_MSG_SIZE];
    snprintf(path, sizeof path, "%s/m.gguf", dir);
    write_pattern(w, path, 2000 * 4, 3);
    gguf_reader *r;
    cr_assert_eq(gguf_open(path, &r, msg), GGUF_OK, "%s", msg);
    cr_expect_eq(gguf_file_size(r), gguf_writer_total_size(w));
    for (int i = 0; i < 3000; i += 7) {
        snprintf(key, sizeof key, "k.%d", i);
        int64_t v;
        cr_expect_eq(gguf_get_int(r, key, &v), GGUF_OK);
        cr_expect_eq(v, i);
    }
    for (int i = 0; i < 2000; i += 13) {
        snprintf(key, sizeof key, "t.%d", i);
        const gguf_tensor *t = gguf_tensor_at(r, gguf_find_tensor(r, key));
        cr_assert_not_null(t, "%s", key);
        cr_expect_eq(t->offset, (uint64_t)i * 32);
        cr_expect_eq(((const uint8_t *)t->data)[3], (uint8_t)((4 * i + 3) * 13 + 5));
    }
    gguf_close(r);
    unlink(path);
    rmdir(dir);
    free(dir);
    gguf_writer_free(w);
}

typedef struct {
    uint32_t alignment; /* 0: not set */
} align_case;

ParameterizedTestParameters(gguf_write, alignment_variants)
{
    static align_case cases[] = {{0}, {1}, {8}, {32}, {64}, {4096}};
    return cr_make_param_array(align_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(align_case *ac, gguf_write, alignment_variants)
{
    gguf_writer *w = gguf_writer_create();
    int64_t ne_a[2] = {3, 5}, ne_b[1] = {256}, ne_c[3] = {32, 2, 2};
    cr_assert_eq(gguf_writer_set_str(w, "general.name", "t"), GGUF_OK);
    cr_assert_eq(gguf_writer_add_tensor(w, "a", 2, ne_a, GGUF_F32, NULL), GGUF_OK);
    /* alignment set after a tensor was added: offsets are recomputed */
    if (ac->alignment)
        cr_assert_eq(gguf_writer_set_u32(w, "general.alignment", ac->alignment), GGUF_OK);
    cr_assert_eq(gguf_writer_add_tensor(w, "b", 1, ne_b, GGUF_Q6_K, NULL), GGUF_OK);
    cr_assert_eq(gguf_writer_add_tensor(w, "c", 3, ne_c, GGUF_Q4_0, NULL), GGUF_OK);
    const uint64_t sizes[3] = {60, 210, 4 * 18};
    char *dir = tu_mkdtemp(), path[4096], msg[GGUF_MSG_SIZE];
    snprintf(path, sizeof path, "%s/a.gguf", dir);
    write_pattern(w, path, 60 + 210 + 72, 50);
    size_t fsize;
    uint8_t *bytes = tu_read_file(path, &fsize);
    gguf_reader *r;
    cr_assert_eq(gguf_open_memory(bytes, fsize, &r, msg), GGUF_OK, "%s", msg);
    size_t a = ac->alignment ? ac->alignment : 32;
    cr_expect_eq(gguf_alignment(r), a);
    cr_expect_eq(gguf_data_offset(r) % a, 0);
    cr_expect_eq(fsize, gguf_writer_total_size(w));
    uint64_t off = 0, pat = 0;
    for (int i = 0; i < 3; i++) {
        const gguf_tensor *t = gguf_tensor_at(r, i);
        cr_expect_eq(t->offset, off, "alignment %zu tensor %d", a, i);
        cr_expect_eq(t->nbytes, sizes[i]);
        for (uint64_t k = 0; k < sizes[i]; k++, pat++)
            cr_assert_eq(((const uint8_t *)t->data)[k], (uint8_t)(pat * 13 + 5));
        uint64_t padded = (sizes[i] + a - 1) / a * a;
        for (uint64_t k = sizes[i]; k < padded; k++)
            cr_assert_eq(((const uint8_t *)t->data)[k], 0, "padding byte %llu", (unsigned long long)k);
        off += padded;
    }
    cr_expect_eq(gguf_data_offset(r) + off, fsize);
    gguf_close(r);
    free(bytes);
    unlink(path);
    rmdir(dir);
    free(dir);
    gguf_writer_free(w);
}

Test(gguf_write, argument_and_state_errors)
{
    gguf_writer *w = gguf_writer_create();
    char msg[GGUF_MSG_SIZE];
    int64_t ne[4] = {32, 2, 1, 1}, zero[2] = {32, 0}, neg[1] = {-32}, big[2] = {1ll << 40, 1ll << 40};
    char n64[65];
    memset(n64, 'n', 64);
    n64[64] = 0;
    cr_expect_eq(gguf_writer_set_u32(w, "general.alignment", 3), GGUF_ERR_ALIGN);
    cr_expect_eq(gguf_writer_set_u32(w, "general.alignment", 0), GGUF_ERR_ALIGN);
    cr_expect_eq(gguf_writer_set_i32(w, "general.alignment", 32), GGUF_ERR_VALUE_TYPE);
    cr_expect_eq(gguf_writer_set_u64(w, "general.alignment", 32), GGUF_ERR_VALUE_TYPE);
    cr_expect_eq(gguf_writer_add_tensor(w, "", 1, ne, GGUF_F32, msg), GGUF_ERR_NAME);
    cr_expect_eq(gguf_writer_add_tensor(w, n64, 1, ne, GGUF_F32, msg), GGUF_ERR_NAME);
    cr_expect_eq(gguf_writer_add_tensor(w, n64 + 1, 1, ne, GGUF_F32, msg), GGUF_OK, "%s", msg);
    cr_expect_eq(gguf_writer_add_tensor(w, n64 + 1, 1, ne, GGUF_F32, msg), GGUF_ERR_DUPLICATE);
    cr_expect_eq(gguf_writer_add_tensor(w, "x", 0, ne, GGUF_F32, msg), GGUF_ERR_SHAPE);
    cr_expect_eq(gguf_writer_add_tensor(w, "x", 5, ne, GGUF_F32, msg), GGUF_ERR_SHAPE);
    cr_expect_eq(gguf_writer_add_tensor(w, "x", 2, zero, GGUF_F32, msg), GGUF_ERR_SHAPE);
    cr_expect_eq(gguf_writer_add_tensor(w, "x", 1, neg, GGUF_F32, msg), GGUF_ERR_SHAPE);
    cr_expect_eq(gguf_writer_add_tensor(w, "x", 2, big, GGUF_F32, msg), GGUF_ERR_OVERFLOW);
    int64_t wrap[1] = {1ll << 62};
    cr_expect_eq(gguf_writer_add_tensor(w, "x", 1, wrap, GGUF_F32, msg), GGUF_ERR_OVERFLOW);
    cr_expect_eq(gguf_writer_add_tensor(w, "x", 1, ne, 5, msg), GGUF_ERR_TENSOR_TYPE);
    cr_expect_eq(gguf_writer_add_tensor(w, "x", 1, ne, GGUF_Q4_K, msg), GGUF_ERR_SHAPE);
    cr_expect(strstr(msg, "x") != NULL, "%s", msg);
    cr_expect_eq(gguf_writer_add_tensor(w, "x", 4, ne, GGUF_Q8_0, msg), GGUF_OK);
    /* data: 32 f32 (128 bytes) + 2 q8_0 blocks (68 bytes) = 196; nothing may be written before open */
    cr_expect_eq(gguf_writer_write(w, "x", 1, msg), GGUF_ERR_STATE);
    cr_expect_eq(gguf_writer_finish(w, msg), GGUF_ERR_STATE);
    char *dir = tu_mkdtemp(), path[4096];
    snprintf(path, sizeof path, "%s/s.gguf", dir);
    cr_assert_eq(gguf_writer_open(w, path, msg), GGUF_OK, "%s", msg);
    cr_expect_eq(gguf_writer_open(w, path, msg), GGUF_ERR_STATE);
    cr_expect_eq(gguf_writer_set_u32(w, "late", 1), GGUF_ERR_STATE);
    cr_expect_eq(gguf_writer_add_tensor(w, "late", 1, ne, GGUF_F32, msg), GGUF_ERR_STATE);
    static uint8_t data[400];
    cr_expect_eq(gguf_writer_write(w, data, 197, msg), GGUF_ERR_STATE);
    cr_expect_eq(gguf_writer_write(w, data, 150, msg), GGUF_OK);
    cr_expect_eq(gguf_writer_finish(w, msg), GGUF_ERR_STATE);
    cr_expect_eq(gguf_writer_write(w, data, 47, msg), GGUF_ERR_STATE);
    cr_expect_eq(gguf_writer_write(w, data, 46, msg), GGUF_OK);
    cr_expect_eq(gguf_writer_finish(w, msg), GGUF_OK, "%s", msg);
    cr_expect_eq(gguf_writer_finish(w, msg), GGUF_ERR_STATE);
    cr_expect_null(gguf_writer_temp_path(w));
    gguf_writer_free(w);
    struct stat st;
    cr_expect_eq(stat(path, &st), 0);
    /* header 24 + infos 95 + 57 = 176 -> 192, data 128 + 68 -> 96 */
    cr_expect_eq(st.st_size, 192 + 128 + 96);
    unlink(path);
    rmdir(dir);
    free(dir);
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    if (d)
        closedir(d);
    return n;
}

Test(gguf_write, temp_file_and_free_before_finish)
{
    gguf_writer *w = gguf_writer_create();
    int64_t ne[1] = {64};
    cr_assert_eq(gguf_writer_add_tensor(w, "t", 1, ne, GGUF_F32, NULL), GGUF_OK);
    char *dir = tu_mkdtemp(), path[4096], msg[GGUF_MSG_SIZE];
    snprintf(path, sizeof path, "%s/out.gguf", dir);
    cr_expect_null(gguf_writer_temp_path(w));
    cr_assert_eq(gguf_writer_open(w, path, msg), GGUF_OK, "%s", msg);
    const char *tmp = gguf_writer_temp_path(w);
    cr_assert_not_null(tmp);
    char prefix[4200];
    snprintf(prefix, sizeof prefix, "%s/.out.gguf.qforge-tmp-", dir);
    cr_expect_eq(strncmp(tmp, prefix, strlen(prefix)), 0, "temp %s", tmp);
    cr_expect_eq(strlen(tmp), strlen(prefix) + 6);
    cr_expect_eq(access(tmp, F_OK), 0);
    cr_expect_neq(access(path, F_OK), 0);
    char tcopy[4200];
    snprintf(tcopy, sizeof tcopy, "%s", tmp);
    static uint8_t data[256];
    cr_assert_eq(gguf_writer_write(w, data, 100, msg), GGUF_OK);
    gguf_writer_free(w);
    cr_expect_neq(access(tcopy, F_OK), 0, "temp file survived free");
    cr_expect_neq(access(path, F_OK), 0);
    cr_expect_eq(count_entries(dir), 0);

    /* a finished file replaces an existing one and gets a normal mode */
    cr_assert_eq(tu_write_file(path, "old", 3), 0);
    w = gguf_writer_create();
    cr_assert_eq(gguf_writer_add_tensor(w, "t", 1, ne, GGUF_F32, NULL), GGUF_OK);
    mode_t um = umask(022);
    write_pattern(w, path, 256, 256);
    umask(um);
    gguf_writer_free(w);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0644);
    cr_expect_eq(st.st_size, 64 + 256); /* header 24 + info 33 -> 64, data 256 */
    cr_expect_eq(count_entries(dir), 1);
    unlink(path);
    rmdir(dir);
    free(dir);
}

/* ---- stale temp files from interrupted runs ---- */

static const int64_t NE_STALE[1] = {64}; /* one f32 tensor of 256 bytes */

static gguf_writer *stale_writer(void)
{
    gguf_writer *w = gguf_writer_create();
    cr_assert_not_null(w);
    cr_assert_eq(gguf_writer_add_tensor(w, "t", 1, NE_STALE, GGUF_F32, NULL), GGUF_OK);
    return w;
}

/* Name of the single entry of dir starting with prefix into out; how many there are. */
static int find_prefixed(const char *dir, const char *prefix, char *out, size_t size)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0 && n++ == 0)
            snprintf(out, size, "%s/%s", dir, e->d_name);
    if (d)
        closedir(d);
    return n;
}

static void check_output(const char *path)
{
    gguf_reader *r;
    char msg[GGUF_MSG_SIZE] = "";
    cr_assert_eq(gguf_open(path, &r, msg), GGUF_OK, "%s", msg);
    cr_expect_eq(gguf_n_tensors(r), 1);
    cr_expect_eq(gguf_tensor_at(r, 0)->nbytes, 256);
    gguf_close(r);
}

/* A writer killed with SIGKILL in the middle of writing leaves its temp file; so might any
 * crash. The next open removes it, and an unlocked file of the same pattern, and says so. */
Test(gguf_write, stale_temp_of_killed_writer_removed, .timeout = 30)
{
    char *dir = tu_mkdtemp(), path[4096], msg[GGUF_MSG_SIZE] = "", stale[4300], plain[4300];
    cr_assert_not_null(dir);
    snprintf(path, sizeof path, "%s/out.gguf", dir);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) { /* the interrupted run */
        gguf_writer *w = stale_writer();
        static uint8_t data[100];
        if (gguf_writer_open(w, path, NULL) != GGUF_OK || gguf_writer_write(w, data, sizeof data, NULL) != GGUF_OK)
            _exit(1);
        raise(SIGKILL);
        _exit(2);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child status %d", status);
    cr_assert_eq(find_prefixed(dir, ".out.gguf.qforge-tmp-", stale, sizeof stale), 1);
    snprintf(plain, sizeof plain, "%s/.out.gguf.qforge-tmp-Ab3xZ9", dir);
    cr_assert_eq(tu_write_file(plain, "junk", 4), 0);
    cr_assert_eq(count_entries(dir), 2);

    gguf_writer *w = stale_writer();
    cr_expect_eq(gguf_writer_stale_removed(w), 0);
    cr_expect_eq(gguf_writer_stale_removed(NULL), 0);
    cr_assert_eq(gguf_writer_open(w, path, msg), GGUF_OK, "%s", msg);
    cr_expect_eq(gguf_writer_stale_removed(w), 2);
    cr_expect_neq(access(stale, F_OK), 0, "%s survived", stale);
    cr_expect_neq(access(plain, F_OK), 0, "%s survived", plain);
    cr_expect_eq(count_entries(dir), 1); /* our own temp file */
    static uint8_t data[256];
    cr_assert_eq(gguf_writer_write(w, data, sizeof data, msg), GGUF_OK, "%s", msg);
    cr_assert_eq(gguf_writer_finish(w, msg), GGUF_OK, "%s", msg);
    cr_expect_eq(gguf_writer_stale_removed(w), 2);
    gguf_writer_free(w);
    check_output(path);
    cr_expect_eq(count_entries(dir), 1);

    /* nothing left to clean: the next run reports 0 */
    w = stale_writer();
    cr_assert_eq(gguf_writer_open(w, path, msg), GGUF_OK, "%s", msg);
    cr_expect_eq(gguf_writer_stale_removed(w), 0);
    gguf_writer_free(w);
    cr_expect_eq(count_entries(dir), 1);
    unlink(path);
    rmdir(dir);
    free(dir);
}

/* A relative output path with no directory part cleans the current directory. */
Test(gguf_write, stale_temp_relative_path)
{
    char *dir = tu_mkdtemp(), msg[GGUF_MSG_SIZE] = "";
    cr_assert_not_null(dir);
    cr_assert_eq(chdir(dir), 0); /* each Criterion test runs in its own process */
    cr_assert_eq(tu_write_file(".rel.gguf.qforge-tmp-000000", "x", 1), 0);
    gguf_writer *w = stale_writer();
    cr_assert_eq(gguf_writer_open(w, "rel.gguf", msg), GGUF_OK, "%s", msg);
    cr_expect_eq(gguf_writer_stale_removed(w), 1);
    cr_expect_neq(access(".rel.gguf.qforge-tmp-000000", F_OK), 0);
    gguf_writer_free(w);
    cr_expect_eq(count_entries("."), 0);
    cr_assert_eq(chdir("/"), 0);
    rmdir(dir);
    free(dir);
}

/* Temp files of processes still writing the same output are locked and must survive: a
 * child runs a real writer (and holds a flock on a hand-made file) while we open, write and
 * finish; then the child finishes too, which needs its temp file intact. */
Test(gguf_write, live_temp_left_alone, .timeout = 30)
{
    char *dir = tu_mkdtemp(), path[4096], held[4300], msg[GGUF_MSG_SIZE] = "";
    cr_assert_not_null(dir);
    snprintf(path, sizeof path, "%s/out.gguf", dir);
    snprintf(held, sizeof held, "%s/.out.gguf.qforge-tmp-Held00", dir);
    int ready[2], go[2];
    cr_assert_eq(pipe(ready), 0);
    cr_assert_eq(pipe(go), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) { /* the other run, still alive */
        close(ready[0]);
        close(go[1]);
        int hfd = open(held, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (hfd < 0 || flock(hfd, LOCK_EX) != 0)
            _exit(10);
        gguf_writer *w = stale_writer();
        static uint8_t data[256];
        if (gguf_writer_open(w, path, NULL) != GGUF_OK || gguf_writer_write(w, data, 100, NULL) != GGUF_OK)
            _exit(11);
        char tmp[4300];
        snprintf(tmp, sizeof tmp, "%s", gguf_writer_temp_path(w));
        if (write(ready[1], tmp, strlen(tmp) + 1) != (ssize_t)strlen(tmp) + 1)
            _exit(12);
        char c;
        if (read(go[0], &c, 1) != 1) /* EOF: the parent test failed and exited */
            _exit(13);
        if (gguf_writer_write(w, data + 100, 156, NULL) != GGUF_OK || gguf_writer_finish(w, NULL) != GGUF_OK)
            _exit(14);
        gguf_writer_free(w);
        _exit(access(held, F_OK) == 0 ? 0 : 15);
    }
    close(ready[1]);
    close(go[0]);
    char child_tmp[4300] = "";
    size_t got = 0;
    for (ssize_t k; got < sizeof child_tmp - 1 && (k = read(ready[0], child_tmp + got, sizeof child_tmp - 1 - got)) > 0;) {
        got += (size_t)k;
        if (child_tmp[got - 1] == 0)
            break;
    }
    cr_assert(got > 0 && child_tmp[got - 1] == 0, "child sent no temp path");
    cr_assert_eq(access(child_tmp, F_OK), 0);
    cr_assert_eq(count_entries(dir), 2);

    gguf_writer *w = stale_writer();
    cr_assert_eq(gguf_writer_open(w, path, msg), GGUF_OK, "%s", msg);
    cr_expect_eq(gguf_writer_stale_removed(w), 0);
    cr_expect_eq(access(child_tmp, F_OK), 0, "live temp %s was removed", child_tmp);
    cr_expect_eq(access(held, F_OK), 0, "locked %s was removed", held);
    cr_expect_eq(count_entries(dir), 3);
    static uint8_t data[256];
    cr_assert_eq(gguf_writer_write(w, data, sizeof data, msg), GGUF_OK, "%s", msg);
    cr_assert_eq(gguf_writer_finish(w, msg), GGUF_OK, "%s", msg);
    gguf_writer_free(w);
    cr_expect_eq(access(child_tmp, F_OK), 0);

    cr_assert_eq(write(go[1], "g", 1), 1);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    close(ready[0]);
    close(go[1]);
    check_output(path);
    cr_expect_neq(access(child_tmp, F_OK), 0); /* renamed onto path by the child */

    /* the child is gone, so its hand-made locked file is stale now */
    w = stale_writer();
    cr_assert_eq(gguf_writer_open(w, path, msg), GGUF_OK, "%s", msg);
    cr_expect_eq(gguf_writer_stale_removed(w), 1);
    cr_expect_neq(access(held, F_OK), 0);
    gguf_writer_free(w);
    cr_expect_eq(count_entries(dir), 1);
    unlink(path);
    rmdir(dir);
    free(dir);
}

/* Only ".out.gguf.qforge-tmp-" + 6 of [A-Za-z0-9], regular files: everything else stays,
 * symlinks and their targets included, and a FIFO does not block the open. */
Test(gguf_write, stale_cleanup_other_names_untouched, .timeout = 30)
{
    char *dir = tu_mkdtemp(), path[4096], p[4400], msg[GGUF_MSG_SIZE] = "";
    cr_assert_not_null(dir);
    snprintf(path, sizeof path, "%s/out.gguf", dir);
    static const char *const files[] = {
        ".OTHER.qforge-tmp-1", ".other.gguf.qforge-tmp-abc123", "out.gguf",
        ".out.gguf.qforge-tmp-abc12", ".out.gguf.qforge-tmp-abc1234", ".out.gguf.qforge-tmp-ab-123",
        ".out.gguf.qforge-tmp-", "x.out.gguf.qforge-tmp-abc123", "out.gguf.qforge-tmp-abc123",
        ".out.gguf.qforge-tmp-XXXXXX.qforge-tmp-abc123", ".out.gguf2.qforge-tmp-abc123",
        ".out.qforge-tmp-abc123", "victim",
    };
    size_t nf = sizeof files / sizeof *files;
    for (size_t i = 0; i < nf; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        cr_assert_eq(tu_write_file(p, files[i], strlen(files[i])), 0);
    }
    snprintf(p, sizeof p, "%s/.out.gguf.qforge-tmp-sym123", dir);
    cr_assert_eq(symlink("victim", p), 0);
    snprintf(p, sizeof p, "%s/.out.gguf.qforge-tmp-dir123", dir);
    cr_assert_eq(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/.out.gguf.qforge-tmp-fif123", dir);
    cr_assert_eq(mkfifo(p, 0644), 0);
    int before = count_entries(dir);
    cr_assert_eq(before, (int)nf + 3);

    gguf_writer *w = stale_writer();
    cr_assert_eq(gguf_writer_open(w, path, msg), GGUF_OK, "%s", msg);
    cr_expect_eq(gguf_writer_stale_removed(w), 0);
    cr_expect_eq(count_entries(dir), before + 1);
    for (size_t i = 0; i < nf; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        size_t n = 0;
        char *got = tu_read_file(p, &n);
        cr_expect(got && n == strlen(files[i]) && memcmp(got, files[i], n) == 0, "%s changed", files[i]);
        free(got);
    }
    struct stat st;
    snprintf(p, sizeof p, "%s/.out.gguf.qforge-tmp-sym123", dir);
    cr_expect(lstat(p, &st) == 0 && S_ISLNK(st.st_mode));
    snprintf(p, sizeof p, "%s/.out.gguf.qforge-tmp-dir123", dir);
    cr_expect(lstat(p, &st) == 0 && S_ISDIR(st.st_mode));
    snprintf(p, sizeof p, "%s/.out.gguf.qforge-tmp-fif123", dir);
    cr_expect(lstat(p, &st) == 0 && S_ISFIFO(st.st_mode));
    gguf_writer_free(w);
    cr_expect_eq(count_entries(dir), before);

    for (size_t i = 0; i < nf; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        unlink(p);
    }
    static const char *const special[] = {".out.gguf.qforge-tmp-sym123", ".out.gguf.qforge-tmp-fif123"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, special[i]);
        unlink(p);
    }
    snprintf(p, sizeof p, "%s/.out.gguf.qforge-tmp-dir123", dir);
    rmdir(p);
    cr_expect_eq(count_entries(dir), 0);
    rmdir(dir);
    free(dir);
}

Test(gguf_write, bad_arguments)
{
    gguf_writer *w = gguf_writer_create();
    const char *strs[3] = {"a", NULL, "c"};
    uint8_t u8 = 1;
    cr_expect_eq(gguf_writer_set_str_array(w, "s", strs, 3), GGUF_ERR_ARG);
    cr_expect_eq(gguf_writer_set_str_array(w, "s", strs, 1), GGUF_OK);
    cr_expect_eq(gguf_writer_set_array(w, "a", GGUF_VAL_STRING, strs, 1), GGUF_ERR_ARG);
    cr_expect_eq(gguf_writer_set_array(w, "a", GGUF_VAL_U8, NULL, 1), GGUF_ERR_ARG);
    cr_expect_eq(gguf_writer_set_array(w, "a", GGUF_VAL_U8, &u8, (uint64_t)GGUF_MAX_ARRAY + 1), GGUF_ERR_LIMIT);
    cr_expect_eq(gguf_writer_set_value(w, "v", NULL), GGUF_ERR_ARG);
    cr_expect_eq(gguf_writer_set_str(w, "v", NULL), GGUF_ERR_ARG);
    cr_expect_eq(gguf_writer_set_str(w, NULL, "x"), GGUF_ERR_ARG);
    gguf_value bad = {.type = (enum gguf_value_type)13};
    cr_expect_eq(gguf_writer_set_value(w, "v", &bad), GGUF_ERR_VALUE_TYPE);
    gguf_value longstr = {.type = GGUF_VAL_STRING, .v.str = {"x", (uint64_t)GGUF_MAX_STRING + 1}};
    cr_expect_eq(gguf_writer_set_value(w, "v", &longstr), GGUF_ERR_LIMIT);
    cr_expect_eq(gguf_writer_remove(w, "v"), GGUF_ERR_NOT_FOUND);
    void *buf;
    size_t n;
    gguf_reader *r;
    cr_assert_eq(gguf_writer_kv_to_memory(w, &buf, &n, NULL), GGUF_OK);
    cr_assert_eq(gguf_open_memory(buf, n, &r, NULL), GGUF_OK);
    cr_expect_eq(gguf_n_kv(r), 1); /* only the valid "s" */
    gguf_close(r);
    free(buf);
    gguf_writer_free(w);
}

Test(gguf_write, open_errors)
{
    gguf_writer *w = gguf_writer_create();
    char msg[GGUF_MSG_SIZE] = "";
    cr_expect_eq(gguf_writer_open(w, "/nonexistent-dir-qforge/x.gguf", msg), GGUF_ERR_IO);
    cr_expect(strstr(msg, strerror(ENOENT)) != NULL, "%s", msg);
    cr_expect_eq(gguf_writer_open(w, "somedir/", msg), GGUF_ERR_ARG);
    gguf_writer_free(w);
}

/* EFBIG from a file-size limit (SIGXFSZ ignored) must come back as GGUF_ERR_IO with errno text,
 * and the temp file must be gone. Each Criterion test runs in its own process. */
Test(gguf_write, write_error_is_io)
{
    gguf_writer *w = gguf_writer_create();
    int64_t ne[2] = {1024, 1024};
    cr_assert_eq(gguf_writer_add_tensor(w, "big", 2, ne, GGUF_F32, NULL), GGUF_OK);
    char *dir = tu_mkdtemp(), path[4096], msg[GGUF_MSG_SIZE] = "";
    snprintf(path, sizeof path, "%s/big.gguf", dir);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = {100000, 100000};
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
    cr_assert_eq(gguf_writer_open(w, path, msg), GGUF_OK, "%s", msg);
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s", gguf_writer_temp_path(w));
    uint8_t *data = calloc(1, 1 << 16);
    gguf_error e = GGUF_OK;
    for (int i = 0; i < 64 && e == GGUF_OK; i++)
        e = gguf_writer_write(w, data, 1 << 16, msg);
    if (e == GGUF_OK)
        e = gguf_writer_finish(w, msg);
    cr_expect_eq(e, GGUF_ERR_IO, "%s", gguf_strerror(e));
    cr_expect(strstr(msg, strerror(EFBIG)) != NULL, "message: %s", msg);
    cr_expect_eq(gguf_writer_write(w, data, 1, msg), GGUF_ERR_STATE);
    cr_expect_neq(access(tmp, F_OK), 0);
    gguf_writer_free(w);
    cr_expect_eq(count_entries(dir), 0);
    free(data);
    rmdir(dir);
    free(dir);
}

Test(gguf_write, kv_to_memory_and_no_tensor_layout)
{
    gguf_writer *w = gguf_writer_create();
    cr_assert_eq(gguf_writer_set_str(w, "general.architecture", "llama"), GGUF_OK);
    cr_assert_eq(gguf_writer_set_u32(w, "x", 9), GGUF_OK);
    int64_t ne[1] = {8};
    cr_assert_eq(gguf_writer_add_tensor(w, "t", 1, ne, GGUF_F32, NULL), GGUF_OK);
    void *buf;
    size_t n;
    cr_assert_eq(gguf_writer_kv_to_memory(w, &buf, &n, NULL), GGUF_OK);
    /* 24 header + (8+20+4+8+5) + (8+1+4+4) = 86, no padding, n_tensors 0 */
    cr_expect_eq(n, 86);
    uint64_t nt;
    memcpy(&nt, (uint8_t *)buf + 8, 8);
    cr_expect_eq(nt, 0);
    tu_bb b = {0};
    tu_bb_hdr(&b, 3, 0, 2);
    tu_bb_kv_str(&b, "general.architecture", "llama");
    tu_bb_kv_u32(&b, "x", 9);
    cr_assert_eq(b.n, n);
    cr_expect_eq(memcmp(b.p, buf, n), 0);
    gguf_reader *r;
    cr_assert_eq(gguf_open_memory(buf, n, &r, NULL), GGUF_OK);
    cr_expect_eq(gguf_n_kv(r), 2);
    cr_expect_eq(gguf_data_offset(r), 96); /* aligned, past the end: there is no data */
    gguf_close(r);
    free(buf);
    free(b.p);
    gguf_writer_free(w);
}

/* ======================= reference files from llama.cpp ======================= */

/* Read a shared GGUF, write it back with the writer (all KVs, all tensors, in order, data in
 * uneven pieces) and require identical bytes. */
static void byte_identical_rewrite(const char *rel, int64_t want_tensors, int64_t want_kv)
{
    TU_REQUIRE_SHARED();
    char *src = tu_shared_path(rel);
    char msg[GGUF_MSG_SIZE] = "";
    gguf_reader *r;
    cr_assert_eq(gguf_open(src, &r, msg), GGUF_OK, "%s: %s", rel, msg);
    cr_expect_eq(gguf_n_tensors(r), want_tensors);
    cr_expect_eq(gguf_n_kv(r), want_kv);
    gguf_writer *w = gguf_writer_create();
    cr_assert_eq(gguf_writer_copy_kv(w, r), GGUF_OK);
    for (int64_t i = 0; i < gguf_n_tensors(r); i++) {
        const gguf_tensor *t = gguf_tensor_at(r, i);
        cr_assert_eq(gguf_writer_add_tensor(w, t->name, t->n_dims, t->ne, t->type, msg), GGUF_OK, "%s", msg);
    }
    cr_expect_eq(gguf_writer_total_size(w), gguf_file_size(r));
    char *dir = tu_mkdtemp(), path[4096];
    snprintf(path, sizeof path, "%s/copy.gguf", dir);
    cr_assert_eq(gguf_writer_open(w, path, msg), GGUF_OK, "%s", msg);
    for (int64_t i = 0; i < gguf_n_tensors(r); i++) {
        const gguf_tensor *t = gguf_tensor_at(r, i);
        for (uint64_t off = 0; off < t->nbytes; off += 77777) {
            size_t k = t->nbytes - off < 77777 ? (size_t)(t->nbytes - off) : 77777;
            cr_assert_eq(gguf_writer_write(w, (const uint8_t *)t->data + off, k, msg), GGUF_OK, "%s", msg);
        }
    }
    cr_assert_eq(gguf_writer_finish(w, msg), GGUF_OK, "%s", msg);
    gguf_writer_free(w);
    size_t na, nb;
    uint8_t *a = tu_read_file(src, &na), *b = tu_read_file(path, &nb);
    cr_assert(a && b);
    cr_expect_eq(nb, na, "%s: size %zu vs %zu", rel, nb, na);
    size_t first = 0;
    while (first < na && first < nb && a[first] == b[first])
        first++;
    cr_expect(first == na && na == nb, "%s: first difference at byte %zu", rel, first);
    free(a);
    free(b);
    gguf_close(r);
    unlink(path);
    rmdir(dir);
    free(dir);
    free(src);
}

Test(gguf_reference, f32_byte_identical, .timeout = 120)
{
    byte_identical_rewrite("reference/classics-7m-f32.gguf", 57, 26);
}

Test(gguf_reference, q4_k_m_byte_identical, .timeout = 120)
{
    byte_identical_rewrite("reference/classics-7m-q4_k_m.gguf", 57, 26);
}

Test(gguf_reference, vocab_byte_identical, .timeout = 120)
{
    byte_identical_rewrite("golden/tokenizer/ggml-vocab-llama-spm.gguf", 0, 22);
}

Test(gguf_reference, q4_0_byte_identical, .timeout = 120)
{
    byte_identical_rewrite("reference/classics-7m-q4_0.gguf", 57, 26);
}

Test(gguf_reference, q8_0_byte_identical, .timeout = 120)
{
    byte_identical_rewrite("reference/classics-7m-q8_0.gguf", 57, 26);
}

/* A vocab-only file is all metadata: kv_to_memory must reproduce it exactly. */
Test(gguf_reference, vocab_kv_to_memory_identical)
{
    TU_REQUIRE_SHARED();
    char *src = tu_shared_path("golden/tokenizer/ggml-vocab-llama-spm.gguf");
    size_t n;
    uint8_t *bytes = tu_read_file(src, &n);
    cr_assert_not_null(bytes);
    gguf_reader *r;
    char msg[GGUF_MSG_SIZE];
    cr_assert_eq(gguf_open_memory(bytes, n, &r, msg), GGUF_OK, "%s", msg);
    const gguf_value *toks;
    cr_assert_eq(gguf_get_array(r, "tokenizer.ggml.tokens", &toks), GGUF_OK);
    cr_expect_eq(toks->n, 32000);
    cr_expect_str_eq(toks->v.strs[0].str, "<unk>");
    gguf_writer *w = gguf_writer_create();
    cr_assert_eq(gguf_writer_copy_kv(w, r), GGUF_OK);
    void *buf;
    size_t bn;
    cr_assert_eq(gguf_writer_kv_to_memory(w, &buf, &bn, msg), GGUF_OK, "%s", msg);
    cr_expect_eq(bn, n);
    cr_expect(bn == n && memcmp(buf, bytes, n) == 0);
    free(buf);
    gguf_writer_free(w);
    gguf_close(r);
    free(bytes);
    free(src);
}

/* Tensors written out of order, each in pieces, give the bytes of a sequential write (the
 * padding between them is a hole that reads as zeros); mixing the two kinds is refused. */
Test(gguf_write, tensors_out_of_order)
{
    char *dir = tu_mkdtemp(), pa[4096], pb[4096], msg[GGUF_MSG_SIZE] = "";
    snprintf(pa, sizeof pa, "%s/seq.gguf", dir);
    snprintf(pb, sizeof pb, "%s/pos.gguf", dir);
    const int64_t ne[3][2] = {{5, 3}, {64, 2}, {7, 1}}; /* f32 60 B, q8_0 136 B, f16 14 B */
    const int types[3] = {GGUF_F32, GGUF_Q8_0, GGUF_F16};
    const size_t nb[3] = {60, 136, 14}, start[3] = {0, 60, 196};
    uint8_t data[210];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 7 + 1);
    gguf_writer *w[2];
    for (int k = 0; k < 2; k++) {
        w[k] = gguf_writer_create();
        cr_assert_eq(gguf_writer_set_str(w[k], "general.name", "x"), GGUF_OK);
        for (int t = 0; t < 3; t++) {
            char name[16];
            snprintf(name, sizeof name, "t%d", t);
            cr_assert_eq(gguf_writer_add_tensor(w[k], name, 2, ne[t], types[t], msg), GGUF_OK, "%s", msg);
        }
        cr_assert_eq(gguf_writer_open(w[k], k ? pb : pa, msg), GGUF_OK, "%s", msg);
    }
    cr_assert_eq(gguf_writer_write(w[0], data, sizeof data, msg), GGUF_OK, "%s", msg);
    cr_expect_eq(gguf_writer_write_tensor(w[0], 0, data, 1, msg), GGUF_ERR_STATE);
    cr_assert_eq(gguf_writer_finish(w[0], msg), GGUF_OK, "%s", msg);
    /* t2, then t1 in two pieces, then t0; the last tensor is complete before the first */
    cr_assert_eq(gguf_writer_write_tensor(w[1], 2, data + start[2], nb[2], msg), GGUF_OK, "%s", msg);
    cr_expect_eq(gguf_writer_write_tensor(w[1], 2, data, 1, msg), GGUF_ERR_STATE);
    cr_expect_eq(gguf_writer_write_tensor(w[1], 3, data, 1, msg), GGUF_ERR_ARG);
    cr_expect_eq(gguf_writer_write(w[1], data, 1, msg), GGUF_ERR_STATE);
    cr_assert_eq(gguf_writer_write_tensor(w[1], 1, data + start[1], 100, msg), GGUF_OK, "%s", msg);
    cr_expect_eq(gguf_writer_finish(w[1], msg), GGUF_ERR_STATE); /* bytes missing */
    cr_assert_eq(gguf_writer_write_tensor(w[1], 1, data + start[1] + 100, 36, msg), GGUF_OK, "%s", msg);
    cr_assert_eq(gguf_writer_write_tensor(w[1], 0, data, nb[0], msg), GGUF_OK, "%s", msg);
    cr_assert_eq(gguf_writer_finish(w[1], msg), GGUF_OK, "%s", msg);
    size_t na = 0, nbb = 0;
    unsigned char *a = tu_read_file(pa, &na), *b = tu_read_file(pb, &nbb);
    cr_assert(a && b);
    cr_expect_eq(na, gguf_writer_total_size(w[0]));
    cr_expect_eq(na, nbb);
    cr_expect(na == nbb && memcmp(a, b, na) == 0, "the out-of-order file differs");
    for (int k = 0; k < 2; k++)
        gguf_writer_free(w[k]);
    free(a);
    free(b);
    unlink(pa);
    unlink(pb);
    rmdir(dir);
    free(dir);
}
