/* input/safetensors: validating reader. Valid files round-trip; every malformed case gets
 * its specific error code and message. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libgguf/gguf.h"
#include "input/safetensors.h"
#include "tests/testutil.h"

/* [u64 LE len(header)] header data[data_len] in a malloc'ed buffer. */
static uint8_t *mk(const char *header, const void *data, size_t data_len, size_t *size)
{
    size_t hl = strlen(header);
    *size = 8 + hl + data_len;
    uint8_t *b = malloc(*size ? *size : 1);
    cr_assert(b);
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, header, hl);
    if (data_len)
        memcpy(b + 8 + hl, data, data_len);
    return b;
}

static inp_error open_buf(const uint8_t *b, size_t n, inp_st_file **f, char *msg)
{
    msg[0] = 0;
    return inp_st_open_memory(b, n, "t.safetensors", f, msg);
}

/* Expect failure with code e and a message containing want (and naming the file). */
static void bad(const char *header, size_t data_len, inp_error e, const char *want)
{
    uint8_t zeros[256] = {0};
    cr_assert(data_len <= sizeof zeros);
    size_t n;
    uint8_t *b = mk(header, zeros, data_len, &n);
    inp_st_file *f = NULL;
    char msg[INP_MSG_SIZE];
    inp_error got = open_buf(b, n, &f, msg);
    cr_expect_eq(got, e, "header %s: got %d (%s), want %d", header, got, msg, e);
    cr_expect(f == NULL);
    cr_expect(strstr(msg, want) != NULL, "header %s: message '%s' lacks '%s'", header, msg, want);
    cr_expect(strncmp(msg, "t.safetensors: ", 15) == 0, "message '%s' does not name the file", msg);
    free(b);
}

Test(safetensors, round_trip)
{
    float a[6] = {1, -2, 3.5f, 0, 1e-3f, -7};
    uint16_t h[4] = {0x3f80, 0xc000, 0x0001, 0x7f80}; /* bf16 1, -2, tiny, inf */
    uint8_t data[32];
    memcpy(data, a, 24);
    memcpy(data + 24, h, 8);
    /* names deliberately out of data order in the header; unknown keys in an entry ignored */
    const char *hdr = "{\"z.bf16\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[24,32],\"extra\":1},"
                      "\"__metadata__\":{\"format\":\"pt\",\"k\":\"v\"},"
                      "\"a.f32\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}   ";
    size_t n;
    uint8_t *b = mk(hdr, data, sizeof data, &n);
    inp_st_file *f;
    char msg[INP_MSG_SIZE];
    cr_assert_eq(open_buf(b, n, &f, msg), INP_OK, "%s", msg);
    cr_assert_eq(inp_st_n_tensors(f), 2);
    cr_expect_eq(inp_st_header_size(f), strlen(hdr));
    cr_expect_eq(inp_st_file_size(f), n);
    const inp_st_tensor *t0 = inp_st_tensor_at(f, 0), *t1 = inp_st_tensor_at(f, 1);
    cr_expect_str_eq(t0->name, "a.f32");
    cr_expect_str_eq(t0->dtype, "F32");
    cr_expect_eq(t0->gguf_type, GGUF_F32);
    cr_expect_eq(t0->n_dims, 2);
    cr_expect_eq(t0->shape[0], 2);
    cr_expect_eq(t0->shape[1], 3);
    cr_expect_eq(t0->n_elements, 6);
    cr_expect_eq(t0->begin, 0);
    cr_expect_eq(t0->end, 24);
    cr_expect_str_eq(t1->name, "z.bf16");
    cr_expect_eq(t1->gguf_type, GGUF_BF16);
    cr_expect_eq(t1->dtype_bits, 16);
    cr_expect_eq(memcmp(inp_st_data(f, 0), a, 24), 0);
    cr_expect_eq(memcmp(inp_st_data(f, 1), h, 8), 0);
    cr_expect_eq(inp_st_find(f, "z.bf16"), 1);
    cr_expect_eq(inp_st_find(f, "a.f32"), 0);
    cr_expect_eq(inp_st_find(f, "nope"), -1);
    cr_assert_eq(inp_st_n_metadata(f), 2);
    cr_expect_str_eq(inp_st_metadata_key(f, 0), "format");
    cr_expect_str_eq(inp_st_metadata_value(f, 0), "pt");
    cr_expect_str_eq(inp_st_metadata_key(f, 1), "k");
    cr_expect_str_eq(inp_st_metadata_value(f, 1), "v");
    inp_st_release(f, 0); /* buffers: no-op */
    inp_st_close(f);
    free(b);
}

Test(safetensors, mapped_file_and_release)
{
    /* a 3-page tensor after a 7-byte header (odd alignment): data readable, again after release */
    size_t cnt = 3 * 4096 / 4;
    float *v = malloc(cnt * sizeof *v);
    cr_assert(v);
    for (size_t i = 0; i < cnt; i++)
        v[i] = (float)i * 0.5f - 100.0f;
    char hdr[128];
    snprintf(hdr, sizeof hdr, "{\"w\":{\"dtype\":\"F32\",\"shape\":[%zu],\"data_offsets\":[0,%zu]}}", cnt, cnt * 4);
    size_t n;
    uint8_t *b = mk(hdr, v, cnt * 4, &n);
    char *dir = tu_mkdtemp();
    cr_assert(dir);
    char path[4096];
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    cr_assert_eq(tu_write_file(path, b, n), 0);
    inp_st_file *f;
    char msg[INP_MSG_SIZE];
    cr_assert_eq(inp_st_open(path, &f, msg), INP_OK, "%s", msg);
    cr_expect_str_eq(inp_st_path(f), path);
    cr_expect_eq(memcmp(inp_st_data(f, 0), v, cnt * 4), 0);
    inp_st_release(f, 0);
    cr_expect_eq(memcmp(inp_st_data(f, 0), v, cnt * 4), 0, "data changed after release");
    inp_st_close(f);
    /* missing file: I/O error naming it */
    snprintf(path, sizeof path, "%s/absent.safetensors", dir);
    cr_expect_eq(inp_st_open(path, &f, msg), INP_ERR_IO);
    cr_expect(strstr(msg, "absent.safetensors: cannot open") != NULL, "%s", msg);
    tu_run("rm -rf '%s'", dir);
    free(dir);
    free(b);
    free(v);
}

Test(safetensors, edge_cases_that_are_valid)
{
    size_t n;
    inp_st_file *f;
    char msg[INP_MSG_SIZE];
    /* no tensors, no data */
    uint8_t *b = mk("{}", NULL, 0, &n);
    cr_expect_eq(open_buf(b, n, &f, msg), INP_OK, "%s", msg);
    cr_expect_eq(inp_st_n_tensors(f), 0);
    inp_st_close(f);
    free(b);
    /* scalar (shape []) and an empty tensor (a zero dimension), null metadata, F4 pairs */
    uint8_t d[8] = {1, 2, 3, 4, 0xAB, 0, 0, 0};
    b = mk("{\"__metadata__\":null,\"s\":{\"dtype\":\"I32\",\"shape\":[],\"data_offsets\":[0,4]},"
           "\"e\":{\"dtype\":\"F16\",\"shape\":[0,5],\"data_offsets\":[4,4]},"
           "\"q\":{\"dtype\":\"F4\",\"shape\":[2],\"data_offsets\":[4,5]},"
           "\"u\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[5,8]}}",
           d, 8, &n);
    cr_assert_eq(open_buf(b, n, &f, msg), INP_OK, "%s", msg);
    cr_expect_eq(inp_st_n_tensors(f), 4);
    int64_t s = inp_st_find(f, "s");
    cr_assert(s >= 0);
    cr_expect_eq(inp_st_tensor_at(f, (size_t)s)->n_dims, 0);
    cr_expect_eq(inp_st_tensor_at(f, (size_t)s)->n_elements, 1);
    cr_expect_eq(inp_st_tensor_at(f, (size_t)s)->gguf_type, -1);
    cr_expect_eq(inp_st_tensor_at(f, (size_t)inp_st_find(f, "e"))->n_elements, 0);
    cr_expect_eq(inp_st_n_metadata(f), 0);
    inp_st_close(f);
    free(b);
}

Test(safetensors, dtype_sizes)
{
    cr_expect_eq(inp_st_dtype_bits("F64"), 64);
    cr_expect_eq(inp_st_dtype_bits("BF16"), 16);
    cr_expect_eq(inp_st_dtype_bits("F8_E4M3"), 8);
    cr_expect_eq(inp_st_dtype_bits("BOOL"), 8);
    cr_expect_eq(inp_st_dtype_bits("F4"), 4);
    cr_expect_eq(inp_st_dtype_bits("bf16"), 0); /* names are case-sensitive */
    cr_expect_eq(inp_st_dtype_bits("Q4_0"), 0);
}

Test(safetensors, truncated_and_oversized)
{
    inp_st_file *f;
    char msg[INP_MSG_SIZE];
    uint8_t small[5] = {1, 0, 0, 0, 0};
    cr_expect_eq(open_buf(small, sizeof small, &f, msg), INP_ERR_FORMAT);
    cr_expect(strstr(msg, "too short for the 8-byte header length") != NULL, "%s", msg);
    /* header length 100,000,001 > cap */
    uint8_t big[16] = {0x01, 0xE1, 0xF5, 0x05, 0, 0, 0, 0, '{', '}'};
    cr_expect_eq(open_buf(big, sizeof big, &f, msg), INP_ERR_LIMIT);
    cr_expect(strstr(msg, "header length 100000001 exceeds the cap of 100000000 bytes") != NULL, "%s", msg);
    /* header length 2^64-1: must not wrap */
    uint8_t huge[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, '{', '}'};
    cr_expect_eq(open_buf(huge, sizeof huge, &f, msg), INP_ERR_LIMIT);
    /* header length past the end of the file */
    uint8_t past[12] = {5, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' '};
    cr_expect_eq(open_buf(past, sizeof past, &f, msg), INP_ERR_FORMAT);
    cr_expect(strstr(msg, "header length 5 runs past the end of the file (12 bytes)") != NULL, "%s", msg);
    /* a valid file cut short inside its data */
    size_t n;
    uint8_t d[8] = {0};
    uint8_t *b = mk("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", d, 8, &n);
    cr_expect_eq(open_buf(b, n - 3, &f, msg), INP_ERR_FORMAT);
    cr_expect(strstr(msg, "run past the end of the data (5 bytes)") != NULL, "%s", msg);
    free(b);
}

Test(safetensors, malformed_headers)
{
    bad("{\"a\":1", 0, INP_ERR_FORMAT, "header is not valid JSON");
    bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
        "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
        8, INP_ERR_FORMAT, "duplicate");
    bad("[1,2]", 0, INP_ERR_FORMAT, "header is not a JSON object");
    bad("\"str\"", 0, INP_ERR_FORMAT, "header is not a JSON object");
    bad("{\"a\":1} x", 0, INP_ERR_FORMAT, "header is not valid JSON");
    bad("{\"\xc3\x28\":1}", 0, INP_ERR_FORMAT, "header is not valid UTF-8 (byte 2 of the header)");
    bad("{\"\xed\xa0\x80\":1}", 0, INP_ERR_FORMAT, "not valid UTF-8"); /* a surrogate */
    bad("{\"__metadata__\":[1]}", 0, INP_ERR_FORMAT, "\"__metadata__\" is not a JSON object");
    bad("{\"__metadata__\":{\"a\":1}}", 0, INP_ERR_FORMAT, "\"__metadata__\" value of 'a' is not a string");
    bad("{\"w\":5}", 0, INP_ERR_FORMAT, "tensor 'w' entry is not a JSON object");
    bad("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, INP_ERR_FORMAT, "tensor 'w' has no \"dtype\"");
    bad("{\"w\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, INP_ERR_FORMAT, "\"dtype\" is not a string");
    bad("{\"w\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, INP_ERR_FORMAT,
        "tensor 'w' has unknown dtype 'Q4'");
    bad("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, INP_ERR_FORMAT, "tensor 'w' has no \"shape\"");
    bad("{\"w\":{\"dtype\":\"F32\",\"shape\":4,\"data_offsets\":[0,4]}}", 4, INP_ERR_FORMAT, "\"shape\" is not an array");
    bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, INP_ERR_FORMAT,
        "tensor 'w' shape entry 0 is not a non-negative integer");
    bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", 4, INP_ERR_FORMAT,
        "shape entry 0 is not a non-negative integer");
    bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, INP_ERR_FORMAT, "tensor 'w' has no \"data_offsets\"");
    bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 4, INP_ERR_FORMAT,
        "\"data_offsets\" is not an array of two integers");
    bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,-4]}}", 4, INP_ERR_FORMAT,
        "\"data_offsets\" are not non-negative integers");
    bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4, INP_ERR_FORMAT,
        "data_offsets [4, 0] end before they begin");
    bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
        INP_ERR_LIMIT, "17 dimensions, more than the cap of 16");
    bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", 4, INP_ERR_FORMAT,
        "tensor 'w' element count overflows");
    bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[9223372036854775807],\"data_offsets\":[0,4]}}", 4, INP_ERR_FORMAT,
        "element count overflows"); /* elements x 4 bytes would overflow */
    bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,4]}}", 4, INP_ERR_FORMAT,
        "not valid JSON"); /* beyond 64-bit integers */
}

Test(safetensors, malformed_layout)
{
    bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
        12, INP_ERR_FORMAT, "tensor 'b' data_offsets [4, 12] overlap tensor 'a' (which ends at 8)");
    bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
        12, INP_ERR_FORMAT, "gap of 4 bytes before tensor 'b' (data_offsets [8, 12], previous data ends at 4)");
    bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, INP_ERR_FORMAT,
        "gap of 4 bytes before tensor 'a'");
    bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, INP_ERR_FORMAT,
        "tensor 'a' data_offsets [0, 8] hold 8 bytes but shape [3] of F32 needs 12");
    bad("{\"a\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 6, INP_ERR_FORMAT,
        "2 bytes after the last tensor's data (data is 6 bytes, tensors cover 4)");
    bad("{}", 3, INP_ERR_FORMAT, "3 bytes after the last tensor's data");
    bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, INP_ERR_FORMAT,
        "tensor 'a' data_offsets [0, 16] run past the end of the data (8 bytes)");
    bad("{\"a\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}", 2, INP_ERR_FORMAT,
        "tensor 'a' of dtype F4 has 3 elements, which do not fill whole bytes");
}

Test(safetensors, hostile_names_are_sanitized)
{
    /* a control character in a tensor name is shown as '?' and a long name is cut */
    bad("{\"a\\u0007b\":{\"dtype\":\"Q9\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, INP_ERR_FORMAT,
        "tensor 'a?b' has unknown dtype 'Q9'");
    char hdr[512];
    char name[201];
    memset(name, 'x', 200);
    name[200] = 0;
    snprintf(hdr, sizeof hdr, "{\"%s\":{\"dtype\":\"Q9\",\"shape\":[1],\"data_offsets\":[0,4]}}", name);
    bad(hdr, 4, INP_ERR_FORMAT, "xxxx...' has unknown dtype");
}
