/* Model files as JSON (see describe.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "input/describe.h"
#include "input/inp_internal.h"
#include "input/safetensors.h"

gguf_value inp_array_elem(const gguf_value *a, uint64_t i)
{
    gguf_value v = {.type = a->elem_type};
    const void *arr = a->v.arr;
    switch (a->elem_type) {
    case GGUF_VAL_U8: v.v.u64 = ((const uint8_t *)arr)[i]; break;
    case GGUF_VAL_I8: v.v.i64 = ((const int8_t *)arr)[i]; break;
    case GGUF_VAL_U16: v.v.u64 = ((const uint16_t *)arr)[i]; break;
    case GGUF_VAL_I16: v.v.i64 = ((const int16_t *)arr)[i]; break;
    case GGUF_VAL_U32: v.v.u64 = ((const uint32_t *)arr)[i]; break;
    case GGUF_VAL_I32: v.v.i64 = ((const int32_t *)arr)[i]; break;
    case GGUF_VAL_U64: v.v.u64 = ((const uint64_t *)arr)[i]; break;
    case GGUF_VAL_I64: v.v.i64 = ((const int64_t *)arr)[i]; break;
    case GGUF_VAL_F32: v.v.f64 = ((const float *)arr)[i]; break;
    case GGUF_VAL_F64: v.v.f64 = ((const double *)arr)[i]; break;
    case GGUF_VAL_BOOL: v.v.b = ((const uint8_t *)arr)[i] != 0; break;
    default: v.type = GGUF_VAL_COUNT_;
    }
    return v;
}

/* jansson string from bytes that may not be UTF-8: invalid bytes become "\xNN" text. */
static json_t *jstr(const char *s, size_t len)
{
    json_t *j = json_stringn(s, len);
    if (j)
        return j;
    char *buf = malloc(len * 4 + 1);
    if (!buf)
        return json_null();
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f)
            buf[o++] = (char)c;
        else
            o += (size_t)sprintf(buf + o, "\\x%02x", c);
    }
    j = json_stringn(buf, o);
    free(buf);
    return j ? j : json_null();
}

static bool is_signed(int t) { return t == GGUF_VAL_I8 || t == GGUF_VAL_I16 || t == GGUF_VAL_I32 || t == GGUF_VAL_I64; }

static json_t *jvalue(const gguf_value *v)
{
    switch (v->type) {
    case GGUF_VAL_STRING: return jstr(v->v.str.str, (size_t)v->v.str.len);
    case GGUF_VAL_BOOL: return json_boolean(v->v.b);
    case GGUF_VAL_F32: case GGUF_VAL_F64: return json_real(v->v.f64);
    case GGUF_VAL_COUNT_: return json_null();
    case GGUF_VAL_ARRAY: {
        json_t *a = json_array();
        for (uint64_t i = 0; i < v->n && i < INP_DESCRIBE_ARRAY; i++) {
            const gguf_value e = inp_array_elem(v, i);
            json_array_append_new(a, v->elem_type == GGUF_VAL_STRING
                                         ? jstr(v->v.strs[i].str, (size_t)v->v.strs[i].len)
                                         : jvalue(&e));
        }
        return a;
    }
    default: return is_signed(v->type) ? json_integer(v->v.i64) : json_integer((json_int_t)v->v.u64);
    }
}

static json_t *jmetadata(const gguf_reader *r)
{
    json_t *a = json_array();
    for (int64_t i = 0; i < gguf_n_kv(r); i++) {
        const gguf_value *v = gguf_kv_value(r, i);
        json_t *o = json_object();
        json_object_set_new(o, "key", jstr(gguf_kv_key(r, i), strlen(gguf_kv_key(r, i))));
        json_object_set_new(o, "type", json_string(gguf_value_type_name(v->type)));
        if (v->type == GGUF_VAL_ARRAY) {
            json_object_set_new(o, "elem_type", json_string(gguf_value_type_name(v->elem_type)));
            json_object_set_new(o, "count", json_integer((json_int_t)v->n));
            json_object_set_new(o, "truncated", json_boolean(v->n > INP_DESCRIBE_ARRAY));
        }
        json_object_set_new(o, "value", jvalue(v));
        json_array_append_new(a, o);
    }
    return a;
}

/* One tensor (type under tkey; offset < 0: none). */
static json_t *jtensor(const char *name, uint32_t n_dims, const int64_t *ne, const char *tkey, const char *type,
                       int64_t offset, uint64_t bytes)
{
    json_t *o = json_object(), *sh = json_array();
    json_object_set_new(o, "name", jstr(name, strlen(name)));
    for (uint32_t d = 0; d < n_dims; d++)
        json_array_append_new(sh, json_integer(ne[d]));
    json_object_set_new(o, "shape", sh);
    json_object_set_new(o, tkey, json_string(type));
    if (offset >= 0)
        json_object_set_new(o, "offset", json_integer(offset));
    json_object_set_new(o, "bytes", json_integer((json_int_t)bytes));
    return o;
}

static const char *tname(int type)
{
    const gguf_type_traits *t = gguf_type_info(type);
    return t ? t->name : "?";
}

static json_t *root_of(const char *path, const char *format)
{
    json_t *root = json_object();
    json_object_set_new(root, "file", jstr(path, strlen(path)));
    json_object_set_new(root, "format", json_string(format));
    return root;
}

inp_error inp_describe_gguf(const char *path, json_t **out, char *msg)
{
    gguf_reader *r;
    char gm[GGUF_MSG_SIZE] = "";
    gguf_error ge = gguf_open(path, &r, gm);
    if (ge != GGUF_OK)
        return inp_fail(msg, ge == GGUF_ERR_IO ? INP_ERR_IO : ge == GGUF_ERR_NOMEM ? INP_ERR_NOMEM
                             : ge == GGUF_ERR_ARG ? INP_ERR_ARG : INP_ERR_FORMAT,
                        "%s: %s", path, gm[0] ? gm : gguf_strerror(ge));
    json_t *root = root_of(path, "gguf"), *ta = json_array();
    json_object_set_new(root, "version", json_integer(gguf_version(r)));
    json_object_set_new(root, "alignment", json_integer((json_int_t)gguf_alignment(r)));
    json_object_set_new(root, "data_offset", json_integer((json_int_t)gguf_data_offset(r)));
    json_object_set_new(root, "file_size", json_integer((json_int_t)gguf_file_size(r)));
    json_object_set_new(root, "metadata", jmetadata(r));
    uint64_t total = 0;
    for (int64_t i = 0; i < gguf_n_tensors(r); i++) {
        const gguf_tensor *t = gguf_tensor_at(r, i);
        total += t->nbytes;
        json_array_append_new(ta, jtensor(t->name, t->n_dims, t->ne, "type", tname(t->type), (int64_t)t->offset,
                                          t->nbytes));
    }
    json_object_set_new(root, "tensors", ta);
    json_object_set_new(root, "tensor_bytes", json_integer((json_int_t)total));
    gguf_close(r);
    *out = root;
    return INP_OK;
}

inp_error inp_describe_safetensors(const char *path, json_t **out, char *msg)
{
    inp_st_file *f;
    inp_error e = inp_st_open(path, &f, msg);
    if (e != INP_OK)
        return e;
    json_t *root = root_of(path, "safetensors"), *m = json_object(), *ta = json_array();
    json_object_set_new(root, "header_size", json_integer((json_int_t)inp_st_header_size(f)));
    json_object_set_new(root, "data_offset", json_integer((json_int_t)(8 + inp_st_header_size(f))));
    json_object_set_new(root, "file_size", json_integer((json_int_t)inp_st_file_size(f)));
    for (size_t i = 0; i < inp_st_n_metadata(f); i++)
        json_object_set_new(m, inp_st_metadata_key(f, i),
                            jstr(inp_st_metadata_value(f, i), strlen(inp_st_metadata_value(f, i))));
    json_object_set_new(root, "metadata", m);
    for (size_t i = 0; i < inp_st_n_tensors(f); i++) {
        const inp_st_tensor *t = inp_st_tensor_at(f, i);
        int64_t ne[INP_ST_MAX_DIMS];
        for (uint32_t d = 0; d < t->n_dims; d++)
            ne[d] = (int64_t)t->shape[d];
        json_array_append_new(ta, jtensor(t->name, t->n_dims, ne, "dtype", t->dtype, (int64_t)t->begin,
                                          t->end - t->begin));
    }
    json_object_set_new(root, "tensors", ta);
    inp_st_close(f);
    *out = root;
    return INP_OK;
}

inp_error inp_describe_checkpoint(const char *path, json_t **out, char *msg)
{
    inp_source *s;
    inp_error e = inp_open(path, &s, msg);
    if (e != INP_OK)
        return e;
    json_t *root = root_of(path, "checkpoint"), *fa = json_array(), *ta = json_array();
    for (size_t i = 0; i < inp_n_files(s); i++)
        json_array_append_new(fa, jstr(inp_file(s, i), strlen(inp_file(s, i))));
    json_object_set_new(root, "files", fa);
    json_object_set_new(root, "metadata", jmetadata(inp_metadata(s)));
    for (int64_t i = 0; i < inp_n_tensors(s); i++) {
        const inp_tensor *t = inp_tensor_at(s, i);
        const uint64_t bytes = gguf_row_size(t->type, t->ne[0]) * (uint64_t)inp_n_rows(t);
        json_array_append_new(ta, jtensor(t->name, t->n_dims, t->ne, "type", tname(t->type), -1, bytes));
    }
    json_object_set_new(root, "tensors", ta);
    inp_close(s);
    *out = root;
    return INP_OK;
}
