/* libgguf type table (gguf_types.c): the container's names and sizes as ggml has them, name
 * lookup, row sizes, value types and error strings. */
#include <criterion/criterion.h>
#include <stdint.h>

#include "libgguf/gguf.h"

/* ======================= type table ======================= */

Test(gguf_types, table_matches_ggml)
{
    static const struct { int id; const char *name; uint32_t bs, ts; } want[] = {
        {0, "f32", 1, 4},      {1, "f16", 1, 2},      {2, "q4_0", 32, 18},   {3, "q4_1", 32, 20},
        {6, "q5_0", 32, 22},   {7, "q5_1", 32, 24},   {8, "q8_0", 32, 34},   {9, "q8_1", 32, 36},
        {10, "q2_K", 256, 84}, {11, "q3_K", 256, 110}, {12, "q4_K", 256, 144}, {13, "q5_K", 256, 176},
        {14, "q6_K", 256, 210}, {15, "q8_K", 256, 292}, {20, "iq4_nl", 32, 18}, {23, "iq4_xs", 256, 136},
        {30, "bf16", 1, 2},
    };
    int known = 0;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const gguf_type_traits *t = gguf_type_info(want[i].id);
        cr_assert_not_null(t, "type %d", want[i].id);
        cr_expect_str_eq(t->name, want[i].name);
        cr_expect_eq(t->block_size, want[i].bs, "%s block size", want[i].name);
        cr_expect_eq(t->type_size, want[i].ts, "%s type size", want[i].name);
    }
    for (int id = -5; id < 100; id++)
        known += gguf_type_info(id) != NULL;
    cr_expect_eq(known, 17);
    cr_expect_null(gguf_type_info(4)); /* removed Q4_2 */
    cr_expect_null(gguf_type_info(GGUF_TYPE_MAX_));
}

Test(gguf_types, from_name_and_row_size)
{
    cr_expect_eq(gguf_type_from_name("Q4_K"), GGUF_Q4_K);
    cr_expect_eq(gguf_type_from_name("q4_k"), GGUF_Q4_K);
    cr_expect_eq(gguf_type_from_name("BF16"), GGUF_BF16);
    cr_expect_eq(gguf_type_from_name("q8_0"), GGUF_Q8_0);
    cr_expect_eq(gguf_type_from_name("q4_2"), -1);
    cr_expect_eq(gguf_type_from_name(""), -1);
    cr_expect_eq(gguf_type_from_name(NULL), -1);
    for (int id = 0; id < GGUF_TYPE_MAX_; id++)
        if (gguf_type_info(id))
            cr_expect_eq(gguf_type_from_name(gguf_type_info(id)->name), id);
    cr_expect_eq(gguf_row_size(GGUF_Q4_K, 4096), 16 * 144);
    cr_expect_eq(gguf_row_size(GGUF_Q4_K, 255), 0);
    cr_expect_eq(gguf_row_size(GGUF_Q8_0, 64), 68);
    cr_expect_eq(gguf_row_size(GGUF_F32, 3), 12);
    cr_expect_eq(gguf_row_size(GGUF_BF16, 5), 10);
    cr_expect_eq(gguf_row_size(GGUF_F16, 0), 0);
    cr_expect_eq(gguf_row_size(99, 32), 0);
}

Test(gguf_types, value_types_and_strerror)
{
    cr_expect_str_eq(gguf_value_type_name(GGUF_VAL_U32), "u32");
    cr_expect_str_eq(gguf_value_type_name(GGUF_VAL_STRING), "string");
    cr_expect_str_eq(gguf_value_type_name(GGUF_VAL_F64), "f64");
    cr_expect_str_eq(gguf_value_type_name(13), "?");
    cr_expect_str_eq(gguf_value_type_name(-1), "?");
    static const size_t sizes[GGUF_VAL_COUNT_] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    for (int t = 0; t < GGUF_VAL_COUNT_; t++)
        cr_expect_eq(gguf_value_type_size(t), sizes[t], "vtype %d", t);
    cr_expect_eq(gguf_value_type_size(13), 0);
    for (int e = 0; e < GGUF_ERR_COUNT_; e++) {
        cr_expect_str_neq(gguf_strerror(e), "unknown error", "code %d", e);
        for (int f = 0; f < e; f++)
            cr_expect_str_neq(gguf_strerror(e), gguf_strerror(f), "codes %d and %d", e, f);
    }
    cr_expect_str_eq(gguf_strerror(GGUF_ERR_COUNT_), "unknown error");
}

/* The table is exported for libquant's entries to point into; gguf_type_info() is its checked
 * view, and block_bytes is what ggml calls type_size. */
Test(gguf_types, exported_table)
{
    for (int id = 0; id < GGUF_TYPE_MAX_; id++) {
        const gguf_type_traits *t = gguf_type_info(id);
        cr_expect_eq(t != NULL, gguf_type_table[id].name != NULL, "type %d", id);
        if (!t)
            continue;
        cr_expect_eq(t, &gguf_type_table[id], "type %d", id);
        cr_expect_eq(t->block_bytes, t->type_size, "type %d", id);
        cr_expect_gt(t->block_bytes, 0, "type %d", id);
        cr_expect_gt(t->block_size, 0, "type %d", id);
    }
    cr_expect_eq(gguf_type_info(GGUF_Q6_K)->block_bytes, 210);
}
