/* libFuzzer target: the safetensors reader (input/safetensors.h) on a buffer in memory.
 *
 * A rejected buffer must give a one-line message; an accepted one must satisfy the rules the
 * header promises: tensors in data order tiling the data buffer from 0 with no gap, overlap
 * or trailing byte, each end - begin = elements x dtype bits / 8, names found by lookup.
 * Every tensor byte and metadata string is read. An accepted file with F32/F16/BF16 tensors
 * is then also used as the model.safetensors of the fixture checkpoint and opened with
 * inp_open(), so the Llama name/shape mapping of input/checkpoint.c sees fuzzed tables. */
#include <string.h>

#include "input/safetensors.h"
#include "tests/fuzz/support.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    inp_st_file *f = NULL;
    char msg[INP_MSG_SIZE];
    msg[0] = 0;
    inp_error e = inp_st_open_memory(data, size, "fuzz.safetensors", &f, msg);
    fz_note("inp_st_open_memory", e == INP_OK ? NULL : msg);
    if (e != INP_OK) {
        FZ_CHECK(f == NULL && e < INP_ERR_COUNT_);
        fz_check_msg(msg, sizeof msg);
        FZ_CHECK(strncmp(msg, "fuzz.safetensors: ", 18) == 0);
        return 0;
    }
    uint64_t n = inp_st_header_size(f);
    FZ_CHECK(inp_st_file_size(f) == size && n <= size - 8);
    const uint8_t *base = data + 8 + n;
    uint64_t data_size = size - 8 - n, pos = 0;
    bool convertible = true;
    for (size_t i = 0; i < inp_st_n_tensors(f); i++) {
        const inp_st_tensor *t = inp_st_tensor_at(f, i);
        FZ_CHECK(t != NULL && t->name != NULL);
        FZ_CHECK(inp_st_find(f, t->name) == (int64_t)i);
        FZ_CHECK(t->begin == pos && t->end >= t->begin && t->end <= data_size);
        FZ_CHECK(t->n_dims <= INP_ST_MAX_DIMS);
        uint64_t nel = 1;
        for (uint32_t d = 0; d < t->n_dims; d++)
            nel *= t->shape[d];
        FZ_CHECK(nel == t->n_elements);
        FZ_CHECK(t->dtype_bits == inp_st_dtype_bits(t->dtype) && t->dtype_bits > 0);
        FZ_CHECK((t->end - t->begin) * 8 == t->n_elements * t->dtype_bits);
        const uint8_t *p = inp_st_data(f, i);
        FZ_CHECK(p == base + t->begin);
        uint64_t h = 0;
        for (uint64_t k = 0; k < t->end - t->begin; k++)
            h += p[k];
        fz_sink += h;
        inp_st_release(f, i);
        pos = t->end;
        if (t->gguf_type < 0)
            convertible = false;
    }
    FZ_CHECK(pos == data_size);
    FZ_CHECK(inp_st_tensor_at(f, inp_st_n_tensors(f)) == NULL);
    for (size_t i = 0; i < inp_st_n_metadata(f); i++) {
        const char *k = inp_st_metadata_key(f, i), *v = inp_st_metadata_value(f, i);
        FZ_CHECK(k != NULL);
        fz_sink += strlen(k) + (v ? strlen(v) : 0);
    }
    inp_st_close(f);

    if (convertible) {
        const char *dir = fz_fixture(FZ_SINGLE);
        fz_write(dir, "model.safetensors", data, size);
        inp_source *s = NULL;
        e = inp_open(dir, &s, msg);
        fz_note("inp_open (as the fixture's model.safetensors)", e == INP_OK ? NULL : msg);
        if (e == INP_OK) {
            fz_walk_source(s);
            inp_close(s);
        } else {
            FZ_CHECK(s == NULL);
            fz_check_msg(msg, sizeof msg);
        }
    }
    return 0;
}
