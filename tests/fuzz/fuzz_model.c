/* libFuzzer target: a GGUF model as the runtime loads it (inp_open on a GGUF file ->
 * tok_from_gguf -> rt_model_load -> a 3-token rt_forward).
 *
 * The input is written to a memfd and opened through /proc/self/fd/N, so the file path of
 * input's GGUF source (mmap) is what runs. Every failure must come back as an error with a
 * one-line message; an accepted model must have hyper-parameters in range, accept a short
 * forward pass on in-range token ids giving the same bits with 1 and 2 threads, and refuse an
 * out-of-range id with RT_ERR_ARG.
 * Seeds: tiny models from qforge-synth + qforge-convert/qforge-quantize and the runtime's
 * bad-input cases (tests/fuzz/corpus/model/). */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "runtime/runtime.h"
#include "tokenizer/tokenizer.h"
#include "tests/fuzz/support.h"

static int g_fd = -1;
static char g_path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (g_fd < 0) {
        g_fd = memfd_create("fuzz_model.gguf", MFD_CLOEXEC);
        FZ_CHECK(g_fd >= 0);
        snprintf(g_path, sizeof g_path, "/proc/self/fd/%d", g_fd);
    }
    FZ_CHECK(ftruncate(g_fd, 0) == 0);
    FZ_CHECK(pwrite(g_fd, data, size, 0) == (ssize_t)size);

    inp_source *s = NULL;
    char msg[RT_MSG_SIZE > INP_MSG_SIZE ? RT_MSG_SIZE : INP_MSG_SIZE];
    msg[0] = 0;
    inp_error se = inp_open(g_path, &s, msg);
    fz_note("inp_open", se == INP_OK ? NULL : msg);
    if (se != INP_OK) {
        FZ_CHECK(s == NULL);
        fz_check_msg(msg, INP_MSG_SIZE);
        return 0;
    }
    FZ_CHECK(!inp_is_checkpoint(s));

    tok_model *tok = NULL;
    msg[0] = 0;
    rt_error e = rt_error_from_tok(tok_from_gguf(inp_metadata(s), &tok, msg));
    fz_note("tok_from_gguf", e == RT_OK ? NULL : msg);
    if (e == RT_OK) {
        static const char text[] = "The quick brown fox \xe2\x80\x94 <s> jumps\n\xff";
        int32_t *ids = NULL;
        size_t n = 0;
        e = rt_error_from_tok(tok_encode(tok, text, sizeof text - 1, tok_default_flags(tok), &ids, &n, msg));
        if (e == RT_OK)
            for (size_t i = 0; i < n; i++)
                FZ_CHECK(ids[i] >= 0 && ids[i] < tok_n_tokens(tok));
        else
            fz_check_msg(msg, RT_MSG_SIZE);
        free(ids);
        tok_free(tok);
    } else {
        FZ_CHECK(tok == NULL);
        fz_check_msg(msg, RT_MSG_SIZE);
    }

    rt_model *m = NULL;
    msg[0] = 0;
    e = rt_model_load(s, &m, msg);
    fz_note("rt_model_load", e == RT_OK ? NULL : msg);
    if (e != RT_OK) {
        FZ_CHECK(m == NULL && e < RT_ERR_COUNT_);
        fz_check_msg(msg, RT_MSG_SIZE);
        inp_close(s);
        return 0;
    }
    const rt_hparams *hp = rt_model_hparams(m);
    FZ_CHECK(hp->n_layer >= 1 && hp->n_embd >= 1 && hp->n_ff >= 1 && hp->n_head >= 1);
    FZ_CHECK(hp->n_head_kv >= 1 && hp->n_head % hp->n_head_kv == 0);
    FZ_CHECK(hp->head_dim >= 2 && hp->head_dim % 2 == 0 && hp->n_vocab >= 1);
    rt_model_set_threads(m, 1);
    /* a short pass when the model is small (the input size bounds it anyway) */
    uint64_t work = (uint64_t)hp->n_layer * ((uint64_t)hp->n_embd * (uint64_t)(hp->n_ff + hp->n_head * hp->head_dim)) +
                    (uint64_t)hp->n_vocab * (uint64_t)hp->n_embd;
    if (work < ((uint64_t)1 << 22)) {
        int32_t toks[3] = {0, hp->n_vocab > 1 ? 1 : 0, hp->n_vocab - 1};
        float *logits = malloc(3 * (size_t)hp->n_vocab * sizeof *logits);
        FZ_CHECK(logits != NULL);
        e = rt_forward(m, toks, 3, 0, logits, msg);
        FZ_CHECK(e == RT_OK);
        uint64_t h = 0;
        for (size_t i = 0; i < 3 * (size_t)hp->n_vocab; i++)
            h += logits[i] > 0;
        fz_sink += h;
        /* results must not depend on the thread count (bit for bit, NaNs included) */
        float *again = malloc(3 * (size_t)hp->n_vocab * sizeof *again);
        FZ_CHECK(again != NULL);
        rt_model_set_threads(m, 2);
        FZ_CHECK(rt_forward(m, toks, 3, 0, again, msg) == RT_OK);
        FZ_CHECK(memcmp(logits, again, 3 * (size_t)hp->n_vocab * sizeof *again) == 0);
        free(again);
        toks[1] = hp->n_vocab;
        FZ_CHECK(rt_forward(m, toks, 3, 0, logits, msg) == RT_ERR_ARG);
        fz_check_msg(msg, RT_MSG_SIZE);
        free(logits);
    }
    rt_model_free(m);
    inp_close(s);
    return 0;
}
