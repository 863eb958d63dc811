/* libgguf reader (gguf_read.c): validation of hand-made files (the malformed-input table,
 * every truncation, random mutations), typed getters, file errors, a llama.cpp file's contents. */
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

static gguf_error open_bb(tu_bb *b, gguf_reader **r, char *msg)
{
    *r = NULL;
    return gguf_open_memory(b->p, b->n, r, msg);
}

static const int64_t NE_4x2[2] = {4, 2};
static const int64_t NE_32[1] = {32};

/* A small valid file: 2 KVs, f32 [4,2] at 0 (32 bytes), q8_0 [32] at 32 (34 bytes). */
static void mk_valid(tu_bb *b)
{
    tu_bb_hdr(b, 3, 2, 2);
    tu_bb_kv_str(b, "general.architecture", "llama");
    tu_bb_kv_u32(b, "x.count", 7);
    tu_bb_ti(b, "w", 2, NE_4x2, GGUF_F32, 0);
    tu_bb_ti(b, "q", 1, NE_32, GGUF_Q8_0, 32);
    tu_bb_data(b, 66);
}

/* ======================= reader on hand-made bytes ======================= */

Test(gguf_read, valid_small_file)
{
    tu_bb b = {0};
    mk_valid(&b);
    gguf_reader *r;
    char msg[GGUF_MSG_SIZE] = "";
    cr_assert_eq(open_bb(&b, &r, msg), GGUF_OK, "%s", msg);
    cr_expect_eq(gguf_version(r), 3);
    cr_expect_eq(gguf_alignment(r), 32);
    cr_expect_eq(gguf_n_kv(r), 2);
    cr_expect_eq(gguf_n_tensors(r), 2);
    cr_expect_eq(gguf_file_size(r), b.n);
    cr_expect_eq(gguf_data_offset(r) % 32, 0);
    cr_expect_eq(gguf_data_offset(r) + 66, b.n);
    const gguf_tensor *q = gguf_tensor_at(r, gguf_find_tensor(r, "q"));
    cr_assert_not_null(q);
    cr_expect_str_eq(q->name, "q");
    cr_expect_eq(q->type, GGUF_Q8_0);
    cr_expect_eq(q->nbytes, 34);
    cr_expect_eq(q->ne[0], 32);
    cr_expect_eq(q->ne[1], 1);
    cr_expect_eq(q->ne[3], 1);
    cr_expect_eq((const uint8_t *)q->data - b.p, (ptrdiff_t)(gguf_data_offset(r) + 32));
    cr_expect_eq(((const uint8_t *)q->data)[0], (uint8_t)(32 * 7 + 1));
    const gguf_tensor *w = gguf_tensor_at(r, 0);
    cr_expect_eq(w->n_dims, 2);
    cr_expect_eq(w->ne[1], 2);
    cr_expect_eq(w->nbytes, 32);
    cr_expect_eq(gguf_find_tensor(r, "nope"), -1);
    cr_expect_null(gguf_tensor_at(r, 2));
    cr_expect_null(gguf_kv_key(r, -1));
    cr_expect_str_eq(gguf_kv_key(r, 1), "x.count");
    gguf_close(r);
    free(b.p);
}

Test(gguf_read, getters)
{
    gguf_writer *w = gguf_writer_create();
    cr_assert_not_null(w);
    gguf_value big = {.type = GGUF_VAL_U64, .v.u64 = UINT64_MAX};
    gguf_value neg = {.type = GGUF_VAL_I8, .v.i64 = -5};
    gguf_value f64 = {.type = GGUF_VAL_F64, .v.f64 = 0.1};
    cr_assert_eq(gguf_writer_set_value(w, "big", &big), GGUF_OK);
    cr_assert_eq(gguf_writer_set_value(w, "neg", &neg), GGUF_OK);
    cr_assert_eq(gguf_writer_set_value(w, "f64", &f64), GGUF_OK);
    cr_assert_eq(gguf_writer_set_u64(w, "u64", 1ull << 40), GGUF_OK);
    cr_assert_eq(gguf_writer_set_f32(w, "f32", 0.5f), GGUF_OK);
    cr_assert_eq(gguf_writer_set_bool(w, "yes", true), GGUF_OK);
    cr_assert_eq(gguf_writer_set_str(w, "s", "hello"), GGUF_OK);
    int32_t arr[2] = {1, -1};
    cr_assert_eq(gguf_writer_set_array(w, "arr", GGUF_VAL_I32, arr, 2), GGUF_OK);
    void *buf;
    size_t n;
    char msg[GGUF_MSG_SIZE];
    cr_assert_eq(gguf_writer_kv_to_memory(w, &buf, &n, msg), GGUF_OK, "%s", msg);
    gguf_reader *r;
    cr_assert_eq(gguf_open_memory(buf, n, &r, msg), GGUF_OK, "%s", msg);
    int64_t i;
    double d;
    bool bo;
    const gguf_str *s;
    const gguf_value *a;
    cr_expect_eq(gguf_get_int(r, "big", &i), GGUF_ERR_OVERFLOW);
    cr_expect_eq(gguf_get_int(r, "neg", &i), GGUF_OK);
    cr_expect_eq(i, -5);
    cr_expect_eq(gguf_get_int(r, "u64", &i), GGUF_OK);
    cr_expect_eq(i, 1ll << 40);
    cr_expect_eq(gguf_get_int(r, "f32", &i), GGUF_ERR_VALUE_TYPE);
    cr_expect_eq(gguf_get_int(r, "yes", &i), GGUF_ERR_VALUE_TYPE);
    cr_expect_eq(gguf_get_int(r, "missing", &i), GGUF_ERR_NOT_FOUND);
    cr_expect_eq(gguf_get_float(r, "f32", &d), GGUF_OK);
    cr_expect_eq(d, 0.5);
    cr_expect_eq(gguf_get_float(r, "f64", &d), GGUF_OK);
    cr_expect_eq(d, 0.1);
    cr_expect_eq(gguf_get_float(r, "u64", &d), GGUF_ERR_VALUE_TYPE);
    cr_expect_eq(gguf_get_bool(r, "yes", &bo), GGUF_OK);
    cr_expect(bo);
    cr_expect_eq(gguf_get_bool(r, "s", &bo), GGUF_ERR_VALUE_TYPE);
    cr_expect_eq(gguf_get_str(r, "s", &s), GGUF_OK);
    cr_expect_str_eq(s->str, "hello");
    cr_expect_eq(s->len, 5);
    cr_expect_eq(gguf_get_str(r, "arr", &s), GGUF_ERR_VALUE_TYPE);
    cr_expect_eq(gguf_get_array(r, "arr", &a), GGUF_OK);
    cr_expect_eq(a->elem_type, GGUF_VAL_I32);
    cr_expect_eq(a->n, 2);
    cr_expect_eq(((const int32_t *)a->v.arr)[1], -1);
    cr_expect_eq(gguf_get_array(r, "s", &a), GGUF_ERR_VALUE_TYPE);
    cr_expect_eq(gguf_get_array(r, "nope", &a), GGUF_ERR_NOT_FOUND);
    gguf_close(r);
    free(buf);
    gguf_writer_free(w);
}

/* ---- the malformed-input table ---- */
typedef void (*mk_fn)(tu_bb *b);
typedef struct {
    const char *name;
    mk_fn mk;
    gguf_error want;
} bad_case;

static const int64_t NE_256[1] = {256};

static void mk_bad_magic(tu_bb *b) { mk_valid(b); b->p[3] = 'G'; }
static void mk_version1(tu_bb *b) { mk_valid(b); b->p[4] = 1; }
static void mk_version4(tu_bb *b) { mk_valid(b); b->p[4] = 4; }
static void mk_version2(tu_bb *b) { mk_valid(b); b->p[4] = 2; }
static void mk_empty(tu_bb *b) { (void)b; }
static void mk_short_magic(tu_bb *b) { tu_bb_put(b, "GG", 2); }
static void mk_short_other(tu_bb *b) { tu_bb_put(b, "PK", 2); }
static void mk_header_only_20(tu_bb *b) { tu_bb_hdr(b, 3, 0, 0); b->n = 20; }
static void mk_huge_n_kv(tu_bb *b) { tu_bb_hdr(b, 3, 0, 1ull << 40); tu_bb_kv_u32(b, "a", 1); }
static void mk_huge_n_kv_max(tu_bb *b) { tu_bb_hdr(b, 3, 0, UINT64_MAX); }
static void mk_huge_n_tensors(tu_bb *b) { tu_bb_hdr(b, 3, (1ull << 20) + 1, 0); }
static void mk_n_kv_vs_bytes(tu_bb *b) { tu_bb_hdr(b, 3, 0, 1000); tu_bb_kv_u32(b, "a", 1); }
static void mk_n_tensors_vs_bytes(tu_bb *b) { tu_bb_hdr(b, 3, 100, 0); tu_bb_ti(b, "w", 1, NE_32, GGUF_F32, 0); tu_bb_data(b, 128); }
static void mk_empty_key(tu_bb *b) { tu_bb_hdr(b, 3, 0, 1); tu_bb_kv_u32(b, "", 1); }
static void mk_key_64k(tu_bb *b)
{
    tu_bb_hdr(b, 3, 0, 1);
    tu_bb_u64(b, GGUF_MAX_KEY + 1);
    for (int i = 0; i <= GGUF_MAX_KEY; i++)
        tu_bb_u8(b, 'k');
    tu_bb_u32(b, GGUF_VAL_U8);
    tu_bb_u8(b, 0);
}
static void mk_key_past_end(tu_bb *b) { tu_bb_hdr(b, 3, 0, 1); tu_bb_u64(b, 30); tu_bb_put(b, "abcdefghijklm", 13); }
static void mk_key_nul(tu_bb *b) { tu_bb_hdr(b, 3, 0, 1); tu_bb_strn(b, "a\0b", 3); tu_bb_u32(b, GGUF_VAL_U8); tu_bb_u8(b, 0); }
static void mk_huge_string(tu_bb *b)
{
    tu_bb_hdr(b, 3, 0, 1);
    tu_bb_str(b, "s");
    tu_bb_u32(b, GGUF_VAL_STRING);
    tu_bb_u64(b, 1ull << 62);
    tu_bb_put(b, "xxxxxxxxxxxxxxxx", 16);
}
static void mk_string_past_end(tu_bb *b)
{
    tu_bb_hdr(b, 3, 0, 1);
    tu_bb_str(b, "s");
    tu_bb_u32(b, GGUF_VAL_STRING);
    tu_bb_u64(b, 100);
    tu_bb_put(b, "xxxxxxxxxxxxxxxx", 16);
}
static void mk_huge_array(tu_bb *b)
{
    tu_bb_hdr(b, 3, 0, 1);
    tu_bb_str(b, "a");
    tu_bb_u32(b, GGUF_VAL_ARRAY);
    tu_bb_u32(b, GGUF_VAL_U8);
    tu_bb_u64(b, 1ull << 40);
    tu_bb_u64(b, 0);
}
static void mk_array_past_end(tu_bb *b)
{
    tu_bb_hdr(b, 3, 0, 1);
    tu_bb_str(b, "a");
    tu_bb_u32(b, GGUF_VAL_ARRAY);
    tu_bb_u32(b, GGUF_VAL_U32);
    tu_bb_u64(b, 1000);
    tu_bb_u64(b, 0);
}
static void mk_str_array_past_end(tu_bb *b)
{
    tu_bb_hdr(b, 3, 0, 1);
    tu_bb_str(b, "a");
    tu_bb_u32(b, GGUF_VAL_ARRAY);
    tu_bb_u32(b, GGUF_VAL_STRING);
    tu_bb_u64(b, 1u << 27);
    tu_bb_str(b, "one");
    tu_bb_str(b, "two");
}
static void mk_str_array_elem_huge(tu_bb *b)
{
    tu_bb_hdr(b, 3, 0, 1);
    tu_bb_str(b, "a");
    tu_bb_u32(b, GGUF_VAL_ARRAY);
    tu_bb_u32(b, GGUF_VAL_STRING);
    tu_bb_u64(b, 2);
    tu_bb_str(b, "one");
    tu_bb_u64(b, UINT64_MAX);
    tu_bb_put(b, "xxxxxxxx", 8);
}
static void mk_nested_array(tu_bb *b)
{
    tu_bb_hdr(b, 3, 0, 1);
    tu_bb_str(b, "a");
    tu_bb_u32(b, GGUF_VAL_ARRAY);
    tu_bb_u32(b, GGUF_VAL_ARRAY);
    tu_bb_u64(b, 1);
    tu_bb_u32(b, GGUF_VAL_U8);
    tu_bb_u64(b, 1);
    tu_bb_u8(b, 0);
}
static void mk_array_bad_elem(tu_bb *b)
{
    tu_bb_hdr(b, 3, 0, 1);
    tu_bb_str(b, "a");
    tu_bb_u32(b, GGUF_VAL_ARRAY);
    tu_bb_u32(b, 13);
    tu_bb_u64(b, 1);
    tu_bb_u64(b, 0);
}
static void mk_bad_vtype(tu_bb *b) { tu_bb_hdr(b, 3, 0, 1); tu_bb_str(b, "a"); tu_bb_u32(b, 13); tu_bb_u64(b, 0); }
static void mk_bad_vtype_huge(tu_bb *b) { tu_bb_hdr(b, 3, 0, 1); tu_bb_str(b, "a"); tu_bb_u32(b, 0x80000000u); tu_bb_u64(b, 0); }
static void mk_dup_key(tu_bb *b) { tu_bb_hdr(b, 3, 0, 2); tu_bb_kv_u32(b, "a.b", 1); tu_bb_kv_str(b, "a.b", "x"); }
static void mk_bool_2(tu_bb *b) { tu_bb_hdr(b, 3, 0, 1); tu_bb_str(b, "b"); tu_bb_u32(b, GGUF_VAL_BOOL); tu_bb_u8(b, 2); }
static void mk_bool_array_2(tu_bb *b)
{
    tu_bb_hdr(b, 3, 0, 1);
    tu_bb_str(b, "b");
    tu_bb_u32(b, GGUF_VAL_ARRAY);
    tu_bb_u32(b, GGUF_VAL_BOOL);
    tu_bb_u64(b, 3);
    tu_bb_u8(b, 0);
    tu_bb_u8(b, 1);
    tu_bb_u8(b, 0xff);
}
static void mk_scalar_past_end(tu_bb *b) { tu_bb_hdr(b, 3, 0, 1); tu_bb_str(b, "abcdef"); tu_bb_u32(b, GGUF_VAL_F64); tu_bb_u32(b, 0); }
static void mk_dup_tensor(tu_bb *b)
{
    tu_bb_hdr(b, 3, 2, 0);
    tu_bb_ti(b, "w", 1, NE_32, GGUF_F32, 0);
    tu_bb_ti(b, "w", 1, NE_32, GGUF_F32, 128);
    tu_bb_data(b, 256);
}
static void mk_empty_tname(tu_bb *b) { tu_bb_hdr(b, 3, 1, 0); tu_bb_ti(b, "", 1, NE_32, GGUF_F32, 0); tu_bb_data(b, 128); }
static const char NAME63[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_";
static void mk_name_63(tu_bb *b) { tu_bb_hdr(b, 3, 1, 0); tu_bb_ti(b, NAME63, 1, NE_32, GGUF_F32, 0); tu_bb_data(b, 128); }
static void mk_name_64(tu_bb *b)
{
    char n[65];
    memcpy(n, NAME63, 63);
    n[63] = 'x';
    n[64] = 0;
    tu_bb_hdr(b, 3, 1, 0);
    tu_bb_ti(b, n, 1, NE_32, GGUF_F32, 0);
    tu_bb_data(b, 128);
}
static void mk_tname_nul(tu_bb *b)
{
    tu_bb_hdr(b, 3, 1, 0);
    tu_bb_strn(b, "w\0x", 3);
    tu_bb_u32(b, 1);
    tu_bb_u64(b, 32);
    tu_bb_u32(b, GGUF_F32);
    tu_bb_u64(b, 0);
    tu_bb_data(b, 128);
}
static void mk_ndims(tu_bb *b, uint32_t nd)
{
    static const int64_t ne[5] = {32, 1, 1, 1, 1};
    tu_bb_hdr(b, 3, 1, 0);
    tu_bb_ti(b, "w", nd, ne, GGUF_F32, 0);
    tu_bb_data(b, 128);
}
static void mk_ndims0(tu_bb *b) { mk_ndims(b, 0); }
static void mk_ndims5(tu_bb *b) { mk_ndims(b, 5); }
static void mk_ndims4(tu_bb *b) { mk_ndims(b, 4); }
static void mk_dims(tu_bb *b, int64_t d0, int64_t d1, int type)
{
    int64_t ne[2] = {d0, d1};
    tu_bb_hdr(b, 3, 1, 0);
    tu_bb_ti(b, "w", 2, ne, (uint32_t)type, 0);
    tu_bb_data(b, 256);
}
static void mk_zero_dim(tu_bb *b) { mk_dims(b, 32, 0, GGUF_F32); }
static void mk_neg_dim(tu_bb *b) { mk_dims(b, -32, 1, GGUF_F32); }
static void mk_overflow_elems(tu_bb *b) { mk_dims(b, 1ll << 32, 1ll << 32, GGUF_F32); }
static void mk_overflow_bytes(tu_bb *b) { mk_dims(b, 1ll << 31, 1ll << 31, GGUF_F32); }
static void mk_overflow_row(tu_bb *b) { mk_dims(b, 1ll << 62, 1, GGUF_F32); }
static void mk_bad_ttype(tu_bb *b) { mk_dims(b, 32, 1, 4); }
static void mk_bad_ttype_big(tu_bb *b) { mk_dims(b, 32, 1, 1000); }
static void mk_not_block_multiple(tu_bb *b) { mk_dims(b, 128, 1, GGUF_Q4_K); }
static void mk_misaligned(tu_bb *b) { tu_bb_hdr(b, 3, 1, 0); tu_bb_ti(b, "w", 1, NE_32, GGUF_F32, 16); tu_bb_data(b, 256); }
static void mk_offset_beyond(tu_bb *b) { tu_bb_hdr(b, 3, 1, 0); tu_bb_ti(b, "w", 1, NE_32, GGUF_F32, 1ull << 40); tu_bb_data(b, 128); }
static void mk_offset_wraps(tu_bb *b) { tu_bb_hdr(b, 3, 1, 0); tu_bb_ti(b, "w", 1, NE_32, GGUF_F32, UINT64_MAX - 31); tu_bb_data(b, 128); }
static void mk_tensor_straddles(tu_bb *b) { tu_bb_hdr(b, 3, 1, 0); tu_bb_ti(b, "w", 1, NE_32, GGUF_F32, 0); tu_bb_data(b, 127); }
static void mk_data_past_end(tu_bb *b) { tu_bb_hdr(b, 3, 1, 0); tu_bb_ti(b, "w", 1, NE_32, GGUF_F32, 0); }
static void mk_overlap(tu_bb *b)
{
    tu_bb_hdr(b, 3, 3, 0);
    tu_bb_ti(b, "a", 1, NE_32, GGUF_F32, 256);
    tu_bb_ti(b, "b", 1, NE_32, GGUF_F32, 0);
    tu_bb_ti(b, "c", 1, NE_32, GGUF_F32, 96); /* b covers 0..128 */
    tu_bb_data(b, 512);
}
static void mk_same_offset(tu_bb *b)
{
    tu_bb_hdr(b, 3, 2, 0);
    tu_bb_ti(b, "a", 1, NE_32, GGUF_F32, 0);
    tu_bb_ti(b, "b", 1, NE_32, GGUF_F32, 0);
    tu_bb_data(b, 512);
}
static void mk_unordered_ok(tu_bb *b)
{
    tu_bb_hdr(b, 3, 2, 0);
    tu_bb_ti(b, "a", 1, NE_32, GGUF_F32, 128);
    tu_bb_ti(b, "b", 1, NE_32, GGUF_F32, 0);
    tu_bb_data(b, 256);
}
static void mk_align(tu_bb *b, uint32_t vtype, uint64_t a)
{
    tu_bb_hdr(b, 3, 1, 1);
    tu_bb_str(b, "general.alignment");
    tu_bb_u32(b, vtype);
    if (vtype == GGUF_VAL_U64)
        tu_bb_u64(b, a);
    else
        tu_bb_u32(b, (uint32_t)a);
    tu_bb_ti(b, "w", 1, NE_256, GGUF_Q4_K, 0);
    tu_bb_pad(b, 64);
    for (int i = 0; i < 144; i++)
        tu_bb_u8(b, 1);
}
static void mk_align0(tu_bb *b) { mk_align(b, GGUF_VAL_U32, 0); }
static void mk_align3(tu_bb *b) { mk_align(b, GGUF_VAL_U32, 3); }
static void mk_align_u64(tu_bb *b) { mk_align(b, GGUF_VAL_U64, 32); }
static void mk_align_i32(tu_bb *b) { mk_align(b, GGUF_VAL_I32, 32); }
static void mk_align64_ok(tu_bb *b) { mk_align(b, GGUF_VAL_U32, 64); }
static void mk_align64_misaligned(tu_bb *b)
{
    tu_bb_hdr(b, 3, 2, 1);
    tu_bb_kv_u32(b, "general.alignment", 64);
    tu_bb_ti(b, "a", 1, NE_32, GGUF_F32, 0);
    tu_bb_ti(b, "b", 1, NE_32, GGUF_F32, 160); /* 32-aligned only */
    tu_bb_pad(b, 64);
    for (int i = 0; i < 320; i++)
        tu_bb_u8(b, 1);
}

static const bad_case bad_cases[] = {
    {"bad magic", mk_bad_magic, GGUF_ERR_MAGIC},
    {"version 1", mk_version1, GGUF_ERR_VERSION},
    {"version 4", mk_version4, GGUF_ERR_VERSION},
    {"version 2 accepted", mk_version2, GGUF_OK},
    {"empty buffer", mk_empty, GGUF_ERR_TRUNCATED},
    {"2 bytes of magic", mk_short_magic, GGUF_ERR_TRUNCATED},
    {"2 bytes, not magic", mk_short_other, GGUF_ERR_MAGIC},
    {"header cut at 20", mk_header_only_20, GGUF_ERR_TRUNCATED},
    {"n_kv 2^40", mk_huge_n_kv, GGUF_ERR_LIMIT},
    {"n_kv UINT64_MAX", mk_huge_n_kv_max, GGUF_ERR_LIMIT},
    {"n_tensors 2^20+1", mk_huge_n_tensors, GGUF_ERR_LIMIT},
    {"n_kv vs bytes left", mk_n_kv_vs_bytes, GGUF_ERR_TRUNCATED},
    {"n_tensors vs bytes left", mk_n_tensors_vs_bytes, GGUF_ERR_TRUNCATED},
    {"empty key", mk_empty_key, GGUF_ERR_NAME},
    {"key of 65536 bytes", mk_key_64k, GGUF_ERR_NAME},
    {"key past end", mk_key_past_end, GGUF_ERR_TRUNCATED},
    {"key with NUL", mk_key_nul, GGUF_ERR_NAME},
    {"string length 2^62", mk_huge_string, GGUF_ERR_LIMIT},
    {"string past end", mk_string_past_end, GGUF_ERR_TRUNCATED},
    {"array count 2^40", mk_huge_array, GGUF_ERR_LIMIT},
    {"u32 array past end", mk_array_past_end, GGUF_ERR_TRUNCATED},
    {"string array count past end", mk_str_array_past_end, GGUF_ERR_TRUNCATED},
    {"string array element length huge", mk_str_array_elem_huge, GGUF_ERR_LIMIT},
    {"nested array", mk_nested_array, GGUF_ERR_VALUE_TYPE},
    {"array element type 13", mk_array_bad_elem, GGUF_ERR_VALUE_TYPE},
    {"value type 13", mk_bad_vtype, GGUF_ERR_VALUE_TYPE},
    {"value type 2^31", mk_bad_vtype_huge, GGUF_ERR_VALUE_TYPE},
    {"duplicate key", mk_dup_key, GGUF_ERR_DUPLICATE},
    {"bool 2", mk_bool_2, GGUF_ERR_VALUE_TYPE},
    {"bool array with 0xff", mk_bool_array_2, GGUF_ERR_VALUE_TYPE},
    {"f64 past end", mk_scalar_past_end, GGUF_ERR_TRUNCATED},
    {"duplicate tensor", mk_dup_tensor, GGUF_ERR_DUPLICATE},
    {"empty tensor name", mk_empty_tname, GGUF_ERR_NAME},
    {"tensor name of 63 accepted", mk_name_63, GGUF_OK},
    {"tensor name of 64", mk_name_64, GGUF_ERR_NAME},
    {"tensor name with NUL", mk_tname_nul, GGUF_ERR_NAME},
    {"n_dims 0", mk_ndims0, GGUF_ERR_SHAPE},
    {"n_dims 5", mk_ndims5, GGUF_ERR_SHAPE},
    {"n_dims 4 accepted", mk_ndims4, GGUF_OK},
    {"zero dim", mk_zero_dim, GGUF_ERR_SHAPE},
    {"negative dim", mk_neg_dim, GGUF_ERR_SHAPE},
    {"element count overflow", mk_overflow_elems, GGUF_ERR_OVERFLOW},
    {"byte size overflow", mk_overflow_bytes, GGUF_ERR_OVERFLOW},
    {"row byte size wraps (f32 ne[0] 2^62)", mk_overflow_row, GGUF_ERR_OVERFLOW},
    {"tensor type 4", mk_bad_ttype, GGUF_ERR_TENSOR_TYPE},
    {"tensor type 1000", mk_bad_ttype_big, GGUF_ERR_TENSOR_TYPE},
    {"q4_K ne[0] 128", mk_not_block_multiple, GGUF_ERR_SHAPE},
    {"misaligned offset", mk_misaligned, GGUF_ERR_ALIGN},
    {"offset beyond file", mk_offset_beyond, GGUF_ERR_OFFSET},
    {"offset + size wraps", mk_offset_wraps, GGUF_ERR_OFFSET},
    {"tensor straddles end", mk_tensor_straddles, GGUF_ERR_OFFSET},
    {"data section past end", mk_data_past_end, GGUF_ERR_TRUNCATED},
    {"overlapping tensors", mk_overlap, GGUF_ERR_OFFSET},
    {"same offset twice", mk_same_offset, GGUF_ERR_OFFSET},
    {"offsets out of order accepted", mk_unordered_ok, GGUF_OK},
    {"alignment 0", mk_align0, GGUF_ERR_ALIGN},
    {"alignment 3", mk_align3, GGUF_ERR_ALIGN},
    {"alignment as u64", mk_align_u64, GGUF_ERR_VALUE_TYPE},
    {"alignment as i32", mk_align_i32, GGUF_ERR_VALUE_TYPE},
    {"alignment 64 accepted", mk_align64_ok, GGUF_OK},
    {"offset misaligned for 64", mk_align64_misaligned, GGUF_ERR_ALIGN},
};

#define N_BAD_CASES (sizeof bad_cases / sizeof bad_cases[0])

/* Criterion runs each parameter in a fresh process, so the parameter is an index (plain data),
 * not pointers into this process. */
ParameterizedTestParameters(gguf_read, malformed)
{
    static int idx[N_BAD_CASES];
    for (size_t i = 0; i < N_BAD_CASES; i++)
        idx[i] = (int)i;
    return cr_make_param_array(int, idx, N_BAD_CASES);
}

ParameterizedTest(int *ci, gguf_read, malformed)
{
    const bad_case *c = &bad_cases[*ci];
    tu_bb b = {0};
    c->mk(&b);
    gguf_reader *r = (gguf_reader *)1;
    char msg[GGUF_MSG_SIZE] = "";
    gguf_error e = open_bb(&b, &r, msg);
    cr_expect_eq(e, c->want, "case \"%s\": got %s (%s), want %s", c->name, gguf_strerror(e), msg,
                 gguf_strerror(c->want));
    if (e == GGUF_OK) {
        cr_expect_not_null(r, "case \"%s\"", c->name);
        gguf_close(r);
    } else {
        cr_expect_null(r, "case \"%s\": reader set on failure", c->name);
        cr_expect(msg[0] != 0 && strchr(msg, '\n') == NULL, "case \"%s\": message \"%s\"", c->name, msg);
    }
    free(b.p);
}

Test(gguf_read, every_truncation)
{
    tu_bb b = {0};
    mk_valid(&b);
    gguf_reader *r;
    char msg[GGUF_MSG_SIZE];
    cr_assert_eq(open_bb(&b, &r, msg), GGUF_OK);
    size_t data_off = gguf_data_offset(r);
    gguf_close(r);
    int n_trunc = 0, n_off = 0;
    for (size_t len = 0; len < b.n; len++) {
        /* a fresh exact-size copy so ASan catches any read past len */
        uint8_t *p = malloc(len ? len : 1);
        memcpy(p, b.p, len);
        gguf_error e = gguf_open_memory(p, len, &r, msg);
        gguf_error want = len < data_off ? GGUF_ERR_TRUNCATED : GGUF_ERR_OFFSET;
        cr_expect_eq(e, want, "prefix of %zu bytes: got %s (%s)", len, gguf_strerror(e), msg);
        n_trunc += e == GGUF_ERR_TRUNCATED;
        n_off += e == GGUF_ERR_OFFSET;
        free(p);
    }
    cr_expect_eq(n_trunc, (int)data_off);
    cr_expect_eq(n_off, (int)(b.n - data_off));
    free(b.p);
}

/* Deterministic random byte mutations of a valid file: never a crash or a sanitizer report,
 * every refusal carries a message, and both outcomes occur. */
Test(gguf_read, random_mutations)
{
    tu_bb b = {0};
    tu_bb_hdr(&b, 3, 2, 3);
    tu_bb_kv_u32(&b, "general.alignment", 32);
    tu_bb_str(&b, "tok");
    tu_bb_u32(&b, GGUF_VAL_ARRAY);
    tu_bb_u32(&b, GGUF_VAL_STRING);
    tu_bb_u64(&b, 3);
    tu_bb_str(&b, "a");
    tu_bb_str(&b, "");
    tu_bb_str(&b, "xyz");
    tu_bb_str(&b, "f");
    tu_bb_u32(&b, GGUF_VAL_ARRAY);
    tu_bb_u32(&b, GGUF_VAL_F32);
    tu_bb_u64(&b, 2);
    tu_bb_u64(&b, 0);
    tu_bb_ti(&b, "w", 2, NE_4x2, GGUF_F32, 0);
    tu_bb_ti(&b, "q", 1, NE_32, GGUF_Q8_0, 32);
    tu_bb_data(&b, 66);
    uint64_t x = 88172645463325252ull;
    int ok = 0, bad = 0;
    char msg[GGUF_MSG_SIZE];
    for (int it = 0; it < 20000; it++) {
        size_t len = b.n;
        uint8_t *p = malloc(len);
        memcpy(p, b.p, len);
        int nmut = 1 + it % 3;
        for (int m = 0; m < nmut; m++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            size_t pos = (size_t)(x % len);
            p[pos] = (uint8_t)(x >> 32);
            if ((x >> 40) % 4 == 0) /* favour small and extreme values */
                p[pos] = (x >> 44) % 2 ? 0xff : (uint8_t)((x >> 48) % 6);
        }
        gguf_reader *r;
        msg[0] = 0;
        gguf_error e = gguf_open_memory(p, len, &r, msg);
        cr_assert(e >= 0 && e < GGUF_ERR_COUNT_);
        if (e == GGUF_OK) {
            ok++;
            unsigned sum = 0;
            for (int64_t i = 0; i < gguf_n_tensors(r); i++) {
                const gguf_tensor *t = gguf_tensor_at(r, i);
                for (uint64_t k = 0; k < t->nbytes; k++)
                    sum += ((const uint8_t *)t->data)[k];
            }
            for (int64_t i = 0; i < gguf_n_kv(r); i++)
                cr_assert_eq(gguf_find_kv(r, gguf_kv_key(r, i)), i);
            (void)sum;
            gguf_close(r);
        } else {
            bad++;
            cr_assert(msg[0] != 0, "iteration %d: error %s without a message", it, gguf_strerror(e));
        }
        free(p);
    }
    cr_expect_gt(ok, 1000);
    cr_expect_gt(bad, 1000);
    free(b.p);
}

Test(gguf_read, open_file_errors)
{
    gguf_reader *r;
    char msg[GGUF_MSG_SIZE];
    char *dir = tu_mkdtemp();
    cr_assert_not_null(dir);
    char path[4096];
    snprintf(path, sizeof path, "%s/missing.gguf", dir);
    cr_expect_eq(gguf_open(path, &r, msg), GGUF_ERR_IO);
    cr_expect(strstr(msg, strerror(ENOENT)) != NULL, "%s", msg);
    cr_expect_eq(gguf_open(dir, &r, msg), GGUF_ERR_IO);
    snprintf(path, sizeof path, "%s/empty.gguf", dir);
    cr_assert_eq(tu_write_file(path, "", 0), 0);
    cr_expect_eq(gguf_open(path, &r, msg), GGUF_ERR_TRUNCATED);
    tu_bb b = {0};
    mk_valid(&b);
    cr_assert_eq(tu_write_file(path, b.p, b.n), 0);
    cr_assert_eq(gguf_open(path, &r, msg), GGUF_OK, "%s", msg);
    cr_expect_eq(memcmp(gguf_tensor_at(r, 1)->data, b.p + gguf_data_offset(r) + 32, 34), 0);
    gguf_close(r);
    unlink(path);
    rmdir(dir);
    free(dir);
    free(b.p);
}

/* ======================= reference file from llama.cpp ======================= */

Test(gguf_reference, f32_contents)
{
    TU_REQUIRE_SHARED();
    char *src = tu_shared_path("reference/classics-7m-f32.gguf");
    char msg[GGUF_MSG_SIZE] = "";
    gguf_reader *r;
    cr_assert_eq(gguf_open(src, &r, msg), GGUF_OK, "%s", msg);
    cr_expect_eq(gguf_version(r), 3);
    cr_expect_eq(gguf_alignment(r), 32);
    cr_expect_eq(gguf_data_offset(r), 95360);
    cr_expect_eq(gguf_file_size(r), 27371648);
    const gguf_str *s;
    cr_assert_eq(gguf_get_str(r, "general.architecture", &s), GGUF_OK);
    cr_expect_str_eq(s->str, "llama");
    int64_t v;
    cr_assert_eq(gguf_get_int(r, "llama.vocab_size", &v), GGUF_OK);
    cr_expect_eq(v, 4096);
    cr_assert_eq(gguf_get_int(r, "llama.attention.head_count_kv", &v), GGUF_OK);
    cr_expect_eq(v, 4);
    double eps;
    cr_assert_eq(gguf_get_float(r, "llama.attention.layer_norm_rms_epsilon", &eps), GGUF_OK);
    cr_expect_eq(eps, (double)1e-5f);
    bool bos;
    cr_assert_eq(gguf_get_bool(r, "tokenizer.ggml.add_bos_token", &bos), GGUF_OK);
    cr_expect(bos);
    const gguf_value *toks;
    cr_assert_eq(gguf_get_array(r, "tokenizer.ggml.tokens", &toks), GGUF_OK);
    cr_expect_eq(toks->elem_type, GGUF_VAL_STRING);
    cr_expect_eq(toks->n, 4096);
    cr_expect_str_eq(toks->v.strs[1].str, "<s>");
    const gguf_tensor *t = gguf_tensor_at(r, gguf_find_tensor(r, "token_embd.weight"));
    cr_assert_not_null(t);
    cr_expect_eq(t->type, GGUF_F32);
    cr_expect_eq(t->n_dims, 2);
    cr_expect_eq(t->ne[0], 256);
    cr_expect_eq(t->ne[1], 4096);
    cr_expect_eq(t->offset, 4194304);
    cr_expect_eq(t->nbytes, 4194304);
    gguf_close(r);
    free(src);
}
