/* libFuzzer target: model.safetensors.index.json (input/checkpoint.c).
 *
 * The input is written as the index of the two-shard fixture checkpoint (tests/fuzz/support.c:
 * config.json, tokenizer.model, model-0000{1,2}-of-00002.safetensors) and the directory is
 * opened with inp_open(). Rules under test: weight_map an object of tensor -> plain file name,
 * every named shard present and valid, the map and the shards' tensor sets equal. A failure
 * must give a one-line message; a success must walk cleanly. */
#include <string.h>

#include "tests/fuzz/support.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *dir = fz_fixture(FZ_SHARDED);
    fz_write(dir, "model.safetensors.index.json", data, size);
    inp_source *s = NULL;
    char msg[INP_MSG_SIZE];
    msg[0] = 0;
    inp_error e = inp_open(dir, &s, msg);
    fz_note("inp_open", e == INP_OK ? NULL : msg);
    if (e != INP_OK) {
        FZ_CHECK(s == NULL && e < INP_ERR_COUNT_);
        fz_check_msg(msg, sizeof msg);
        return 0;
    }
    /* both shards hold tensors, so an accepted index names both */
    FZ_CHECK(inp_n_tensors(s) == 21);
    fz_walk_source(s);
    inp_close(s);
    return 0;
}
