/* libFuzzer target: a checkpoint's JSON files as input/checkpoint.c reads them.
 *
 * The input is split on the line "\n====\n" into up to five parts, written into the fixture
 * checkpoint (tests/fuzz/support.c: single model.safetensors, tokenizer.model) as
 *   config.json, tokenizer_config.json, tokenizer.json, added_tokens.json, chat_template.jinja
 * (a missing or empty part: that file is absent; config.json is always written). The directory is opened with inp_open(); a failure
 * must give a one-line message, a success must walk cleanly (metadata, every tensor row).
 * This covers the config.json -> GGUF metadata mapping (hyper-parameters, rope_scaling,
 * tie_word_embeddings, general.* name heuristics from _name_or_path, special token ids,
 * added tokens). */
#include <string.h>

#include "tests/fuzz/support.h"

#define SEP "\n====\n"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"config.json", "tokenizer_config.json", "tokenizer.json",
                                        "added_tokens.json", "chat_template.jinja"};
    enum { NPART = sizeof names / sizeof names[0] };
    const char *dir = fz_fixture(FZ_SINGLE);
    const uint8_t *p = data, *end = data + size;
    size_t sl = strlen(SEP);
    for (int k = 0; k < NPART; k++) {
        if (!p) {
            fz_remove(dir, names[k]);
            continue;
        }
        const uint8_t *q = memmem(p, (size_t)(end - p), SEP, sl);
        size_t n = q ? (size_t)(q - p) : (size_t)(end - p);
        if (n || k == 0)
            fz_write(dir, names[k], p, n);
        else
            fz_remove(dir, names[k]);
        p = q ? q + sl : NULL;
    }
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
    FZ_CHECK(inp_is_checkpoint(s));
    fz_walk_source(s);
    inp_close(s);
    return 0;
}
