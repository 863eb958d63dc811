/* input/describe.c: the JSON description of a GGUF file (built here: every value type, a long
 * array cut, a string that is not UTF-8), of the repository's checkpoint and one of its
 * safetensors shards; array elements as scalar values; errors. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "input/describe.h"
#include "libgguf/gguf.h"
#include "tests/testutil.h"

TestSuite(describe, .init = tu_dir_setup, .fini = tu_dir_teardown);

static json_t *meta_value(json_t *root, const char *key, json_t **entry)
{
    json_t *m = json_object_get(root, "metadata");
    for (size_t i = 0; i < json_array_size(m); i++) {
        json_t *e = json_array_get(m, i);
        if (!strcmp(json_string_value(json_object_get(e, "key")), key)) {
            if (entry)
                *entry = e;
            return json_object_get(e, "value");
        }
    }
    cr_assert_fail("no key %s", key);
    return NULL;
}

Test(describe, gguf)
{
    char path[4096], msg[INP_MSG_SIZE], gmsg[GGUF_MSG_SIZE];
    snprintf(path, sizeof path, "%s/m.gguf", tu_dir);
    gguf_writer *w = gguf_writer_create();
    int32_t arr[20];
    for (int i = 0; i < 20; i++)
        arr[i] = -i;
    cr_assert_eq(gguf_writer_set_u32(w, "a.u32", 4000000000u), GGUF_OK);
    cr_assert_eq(gguf_writer_set_i32(w, "a.i32", -7), GGUF_OK);
    cr_assert_eq(gguf_writer_set_f32(w, "a.f32", 0.1f), GGUF_OK);
    cr_assert_eq(gguf_writer_set_bool(w, "a.bool", true), GGUF_OK);
    cr_assert_eq(gguf_writer_set_str(w, "a.str", "caf\xe9"), GGUF_OK);
    cr_assert_eq(gguf_writer_set_array(w, "a.arr", GGUF_VAL_I32, arr, 20), GGUF_OK);
    const int64_t ne[2] = {32, 3};
    cr_assert_eq(gguf_writer_add_tensor(w, "t.weight", 2, ne, GGUF_F32, gmsg), GGUF_OK, "%s", gmsg);
    cr_assert_eq(gguf_writer_open(w, path, gmsg), GGUF_OK, "%s", gmsg);
    float data[96] = {0};
    cr_assert_eq(gguf_writer_write(w, data, sizeof data, gmsg), GGUF_OK, "%s", gmsg);
    cr_assert_eq(gguf_writer_finish(w, gmsg), GGUF_OK, "%s", gmsg);
    gguf_writer_free(w);

    json_t *root = NULL;
    cr_assert_eq(inp_describe_gguf(path, &root, msg), INP_OK, "%s", msg);
    cr_assert_str_eq(json_string_value(json_object_get(root, "format")), "gguf");
    cr_assert_eq(json_integer_value(json_object_get(root, "version")), 3);
    cr_assert_eq(json_integer_value(meta_value(root, "a.u32", NULL)), 4000000000ll);
    cr_assert_eq(json_integer_value(meta_value(root, "a.i32", NULL)), -7);
    cr_assert_eq(json_real_value(meta_value(root, "a.f32", NULL)), (double)0.1f);
    cr_assert(json_is_true(meta_value(root, "a.bool", NULL)));
    cr_assert_str_eq(json_string_value(meta_value(root, "a.str", NULL)), "caf\\xe9");
    json_t *entry = NULL, *a = meta_value(root, "a.arr", &entry);
    cr_assert_eq(json_array_size(a), INP_DESCRIBE_ARRAY);
    cr_assert_eq(json_integer_value(json_array_get(a, 15)), -15);
    cr_assert_eq(json_integer_value(json_object_get(entry, "count")), 20);
    cr_assert(json_is_true(json_object_get(entry, "truncated")));
    cr_assert_str_eq(json_string_value(json_object_get(entry, "elem_type")), "i32");
    json_t *t = json_array_get(json_object_get(root, "tensors"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(t, "name")), "t.weight");
    cr_assert_str_eq(json_string_value(json_object_get(t, "type")), "f32");
    cr_assert_eq(json_integer_value(json_object_get(t, "bytes")), 384);
    cr_assert_eq(json_integer_value(json_array_get(json_object_get(t, "shape"), 1)), 3);
    cr_assert_eq(json_integer_value(json_object_get(root, "tensor_bytes")), 384);
    json_decref(root);

    /* not a GGUF file, no file */
    snprintf(path, sizeof path, "%s/junk", tu_dir);
    cr_assert_eq(tu_write_file(path, "hello, not a model", 18), 0);
    cr_assert_eq(inp_describe_gguf(path, &root, msg), INP_ERR_FORMAT);
    cr_assert(!strncmp(msg, path, strlen(path)), "%s", msg);
    snprintf(path, sizeof path, "%s/none", tu_dir);
    cr_assert_eq(inp_describe_gguf(path, &root, msg), INP_ERR_IO);
    cr_assert_eq(inp_describe_safetensors(path, &root, msg), INP_ERR_IO);
}

Test(describe, checkpoint_and_safetensors)
{
    char path[4096], msg[INP_MSG_SIZE];
    snprintf(path, sizeof path, "%s/models/classics-7m", tu_root());
    json_t *root = NULL;
    cr_assert_eq(inp_describe_checkpoint(path, &root, msg), INP_OK, "%s", msg);
    cr_assert_str_eq(json_string_value(json_object_get(root, "format")), "checkpoint");
    json_t *ts = json_object_get(root, "tensors");
    cr_assert_eq(json_array_size(ts), 57);
    json_t *t0 = NULL;
    for (size_t i = 0; i < json_array_size(ts); i++)
        if (!strcmp(json_string_value(json_object_get(json_array_get(ts, i), "name")), "token_embd.weight"))
            t0 = json_array_get(ts, i);
    cr_assert_not_null(t0);
    cr_assert_str_eq(json_string_value(json_object_get(t0, "type")), "bf16");
    cr_assert_eq(json_integer_value(json_array_get(json_object_get(t0, "shape"), 0)), 256);
    cr_assert_eq(json_integer_value(json_array_get(json_object_get(t0, "shape"), 1)), 4096);
    cr_assert_null(json_object_get(t0, "offset"));
    cr_assert_str_eq(json_string_value(meta_value(root, "general.architecture", NULL)), "llama");
    cr_assert_eq(json_integer_value(meta_value(root, "llama.block_count", NULL)), 6);
    cr_assert_geq(json_array_size(json_object_get(root, "files")), 3);
    json_decref(root);

    snprintf(path, sizeof path, "%s/models/classics-7m/model-00002-of-00002.safetensors", tu_root());
    cr_assert_eq(inp_describe_safetensors(path, &root, msg), INP_OK, "%s", msg);
    cr_assert_str_eq(json_string_value(json_object_get(root, "format")), "safetensors");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(root, "metadata"), "format")), "pt");
    ts = json_object_get(root, "tensors");
    cr_assert_gt(json_array_size(ts), 0);
    for (size_t i = 0; i < json_array_size(ts); i++)
        cr_assert_str_eq(json_string_value(json_object_get(json_array_get(ts, i), "dtype")), "BF16");
    json_decref(root);
    snprintf(path, sizeof path, "%s/models", tu_root());
    cr_assert_neq(inp_describe_checkpoint(path, &root, msg), INP_OK);
}

Test(describe, array_elements)
{
    const uint16_t u16[2] = {7, 65535};
    const int8_t i8[2] = {-3, 4};
    const double f64[1] = {-0.25};
    const uint8_t b[2] = {0, 2};
    gguf_value a = {.type = GGUF_VAL_ARRAY, .elem_type = GGUF_VAL_U16, .n = 2, .v.arr = u16};
    cr_assert_eq(inp_array_elem(&a, 1).v.u64, 65535);
    cr_assert_eq(inp_array_elem(&a, 1).type, GGUF_VAL_U16);
    a.elem_type = GGUF_VAL_I8;
    a.v.arr = i8;
    cr_assert_eq(inp_array_elem(&a, 0).v.i64, -3);
    a.elem_type = GGUF_VAL_F64;
    a.v.arr = f64;
    cr_assert_eq(inp_array_elem(&a, 0).v.f64, -0.25);
    a.elem_type = GGUF_VAL_BOOL;
    a.v.arr = b;
    cr_assert(!inp_array_elem(&a, 0).v.b && inp_array_elem(&a, 1).v.b);
    a.elem_type = GGUF_VAL_STRING;
    cr_assert_eq(inp_array_elem(&a, 0).type, GGUF_VAL_COUNT_);
}
