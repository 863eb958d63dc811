/* pipeline/calib.c: the whole calibration job (model, tokenizer, chunk choice, plan) on the
 * demo model (needs ../shared; skipped without it). */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "input/text.h"
#include "libquant/lq.h"
#include "pipeline/calib.h"
#include "tests/testutil.h"

/* The whole job: model, tokenizer, chunk choice and plan from pl_calib_run. */
static int count_only(void *user, const pl_gptq_info *info, const void *data, size_t nbytes)
{
    (void)data;
    int *n = user;
    cr_assert_eq(nbytes, lq_row_size(info->type, info->cols) * (size_t)info->rows);
    cr_assert(!strcmp(info->name, "blk.0.ffn_down.weight") || !strcmp(info->name, "blk.1.attn_v.weight"),
              "%s", info->name);
    cr_assert_eq(info->type, strstr(info->name, "ffn_down") ? GGUF_Q4_K : GGUF_Q8_0);
    cr_assert(info->res.loss_gptq < info->res.loss_rtn, "%s: %g vs %g", info->name,
              info->res.loss_gptq, info->res.loss_rtn);
    ++*n;
    return 0;
}

Test(calib, run)
{
    TU_REQUIRE_SHARED();
    char *dir = tu_shared_path("models/classics-7m"), *tp = tu_shared_path("text/calibration.txt");
    char msg[PL_MSG_SIZE], *text;
    size_t len;
    cr_assert_eq(inp_text_load(tp, &text, &len, msg), INP_OK, "%s", msg);
    inp_source *src;
    cr_assert_eq(inp_open(dir, &src, msg), INP_OK, "%s", msg);
    const pl_calib_plan plan[] = {{"blk.0.ffn_down.weight", GGUF_Q4_K},
                                  {"token_embd.weight", GGUF_Q4_K}, /* not a layer weight */
                                  {"blk.1.attn_v.weight", GGUF_Q8_0}};
    pl_calib_opts o;
    pl_calib_opts_init(&o);
    cr_assert_eq(o.n_samples, 128);
    cr_assert(o.gptq && o.calib.asym && o.calib.gptq.grid == LQ_GPTQ_GRID_WEIGHTED);
    o.n_samples = 3;
    o.nthreads = 1;
    o.plan = plan;
    o.n_plan = 3;
    int n = 0;
    o.calib.emit = count_only;
    o.calib.user = &n;
    pl_calib_stats st;
    o.calib.stats = &st;
    cr_assert_eq(pl_calib_run(src, text, len, &o, msg), PL_OK, "%s", msg);
    cr_assert_eq(n, 2);
    cr_assert_eq(o.n_ctx_used, 256); /* min(512, the model's 256) */
    cr_assert_eq(o.n_chunks_used, 3);
    cr_assert_gt(o.n_text_tokens, 40000);
    cr_assert_eq(st.tokens, 768);

    /* float pass: importance only */
    o.gptq = false;
    o.n_ctx = 32;
    cr_assert_eq(pl_calib_run(src, text, len, &o, msg), PL_ERR_ARG); /* no imatrix given */
    o.calib.imatrix = pl_imatrix_acc_create();
    cr_assert_eq(pl_calib_run(src, text, len, &o, msg), PL_OK, "%s", msg);
    cr_assert_eq(pl_imatrix_acc_n_entries(o.calib.imatrix), 42);
    int64_t cnt;
    cr_assert_not_null(pl_imatrix_acc_sums(o.calib.imatrix, "blk.5.ffn_up.weight", NULL, NULL, &cnt));
    cr_assert_eq(cnt, 96);
    pl_imatrix_acc_free(o.calib.imatrix);

    /* a text shorter than one chunk */
    o.gptq = true;
    o.n_ctx = 0;
    cr_assert_eq(pl_calib_run(src, "Too short.", 10, &o, msg), PL_ERR_FORMAT);
    cr_assert(strstr(msg, "fewer than one chunk of 256"), "%s", msg);
    free(text);
    free(tp);
    inp_close(src);
    free(dir);
}
