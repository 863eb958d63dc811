/* pipeline/imatrix_acc.c: importance sums as llama-imatrix collects them, handed to input's
 * writer and read back by its reader (input/imatrix.c). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "input/imatrix.h"
#include "libgguf/gguf.h"
#include "pipeline/imatrix_acc.h"
#include "tests/testutil.h"

Test(imatrix_acc, sums_and_llama_format)
{
    const int n = 5;
    float x[3 * 5], y[2 * 3];
    for (int i = 0; i < 15; ++i)
        x[i] = (float)(i % 7) - 2.5f;
    for (int i = 0; i < 6; ++i)
        y[i] = 0.25f * (float)(i + 1);
    pl_imatrix_acc *im = pl_imatrix_acc_create();
    cr_assert_not_null(im);
    char msg[PL_MSG_SIZE];
    cr_assert_eq(pl_imatrix_acc_add(im, "blk.0.ffn_up.weight", x, 2, n, msg), PL_OK, "%s", msg);
    cr_assert_eq(pl_imatrix_acc_add(im, "blk.0.ffn_up.weight", x + 2 * n, 1, n, msg), PL_OK, "%s", msg);
    cr_assert_eq(pl_imatrix_acc_add(im, "blk.0.attn_k.weight", y, 2, 3, msg), PL_OK, "%s", msg);
    cr_assert_eq(pl_imatrix_acc_add(im, "blk.0.attn_k.weight", y, 1, 4, msg), PL_ERR_ARG);
    float bad[3] = {1, NAN, 2};
    cr_assert_eq(pl_imatrix_acc_add(im, "blk.0.attn_k.weight", bad, 1, 3, msg), PL_ERR_ARG);
    cr_assert_eq(pl_imatrix_acc_n_entries(im), 2);
    int cols;
    int64_t count;
    const double *s1;
    const double *s2 = pl_imatrix_acc_sums(im, "blk.0.ffn_up.weight", &cols, &s1, &count);
    cr_assert(s2 && cols == n && count == 3);
    for (int j = 0; j < n; ++j) {
        double a = 0, b = 0;
        for (int r = 0; r < 3; ++r) {
            a += (double)x[r * n + j] * x[r * n + j];
            b += x[r * n + j];
        }
        cr_assert_eq(s2[j], a);
        cr_assert_eq(s1[j], b);
    }
    cr_assert_null(pl_imatrix_acc_sums(im, "nope", NULL, NULL, NULL));

    /* written as llama-imatrix does, read back by input's imatrix reader */
    char *dir = tu_mkdtemp(), path[4096];
    snprintf(path, sizeof path, "%s/im.gguf", dir);
    gguf_writer *w = gguf_writer_create();
    char gmsg[GGUF_MSG_SIZE];
    size_t ne;
    const inp_imatrix_sums *ent = pl_imatrix_acc_entries(im, &ne);
    cr_assert_eq(ne, 2);
    char smsg[INP_MSG_SIZE];
    cr_assert_eq(inp_imatrix_declare(w, ent, ne, "cal.txt", 7, 64, smsg), INP_OK, "%s", smsg);
    cr_assert_eq(gguf_writer_open(w, path, gmsg), GGUF_OK, "%s", gmsg);
    cr_assert_eq(inp_imatrix_write_data(w, ent, ne, smsg), INP_OK, "%s", smsg);
    cr_assert_eq(gguf_writer_finish(w, gmsg), GGUF_OK, "%s", gmsg);
    gguf_writer_free(w);
    inp_imatrix *li;
    cr_assert_eq(inp_imatrix_load(path, &li, smsg), INP_OK, "%s", smsg);
    cr_assert_eq(inp_imatrix_n_entries(li), 2);
    cr_assert_eq(inp_imatrix_chunk_count(li), 7);
    cr_assert_str_eq(inp_imatrix_dataset(li), "cal.txt");
    size_t nv;
    const float *v = inp_imatrix_find(li, "blk.0.ffn_up.weight", &nv);
    cr_assert(v && nv == (size_t)n);
    for (int j = 0; j < n; ++j)
        cr_assert_eq(v[j], (float)s2[j] / 3.0f);
    v = inp_imatrix_find(li, "blk.0.attn_k.weight", &nv);
    cr_assert(v && nv == 3);
    cr_assert_eq(v[2], (0.75f * 0.75f + 1.5f * 1.5f) / 2.0f);
    inp_imatrix_free(li);

    /* the raw file: keys, tensor names, shapes and the in_sum tensor */
    gguf_reader *r;
    cr_assert_eq(gguf_open(path, &r, gmsg), GGUF_OK, "%s", gmsg);
    const gguf_str *gt;
    cr_assert_eq(gguf_get_str(r, "general.type", &gt), GGUF_OK);
    cr_assert_str_eq(gt->str, "imatrix");
    int64_t cs;
    cr_assert_eq(gguf_get_int(r, "imatrix.chunk_size", &cs), GGUF_OK);
    cr_assert_eq(cs, 64);
    cr_assert_eq(gguf_n_tensors(r), 6);
    static const char *const names[] = {"blk.0.attn_k.weight.in_sum2", "blk.0.attn_k.weight.counts",
                                        "blk.0.attn_k.weight.in_sum", "blk.0.ffn_up.weight.in_sum2",
                                        "blk.0.ffn_up.weight.counts", "blk.0.ffn_up.weight.in_sum"};
    for (int i = 0; i < 6; ++i)
        cr_assert_str_eq(gguf_tensor_at(r, i)->name, names[i]);
    const gguf_tensor *t = gguf_tensor_at(r, 5);
    cr_assert(t->type == GGUF_F32 && t->n_dims == 1 && t->ne[0] == n);
    for (int j = 0; j < n; ++j)
        cr_assert_eq(((const float *)t->data)[j], (float)s1[j]);
    cr_assert_eq(((const float *)gguf_tensor_at(r, 4)->data)[0], 3.0f);
    gguf_close(r);

    pl_imatrix_acc *empty = pl_imatrix_acc_create();
    ent = pl_imatrix_acc_entries(empty, &ne);
    cr_assert_eq(ne, 0);
    w = gguf_writer_create();
    cr_assert_eq(inp_imatrix_declare(w, ent, ne, "x", 1, 1, smsg), INP_ERR_ARG);
    cr_assert(strstr(smsg, "no importance data"), "%s", smsg);
    gguf_writer_free(w);
    pl_imatrix_acc_free(empty);
    pl_imatrix_acc_free(im);
    free(dir);
}

/* One process: the reduction leaves the sums as they are (tests/tools/mpi.sh checks two ranks). */
Test(imatrix_acc, reduce_on_one_rank)
{
    char msg[PL_MSG_SIZE];
    pl_imatrix_acc *im = pl_imatrix_acc_create();
    const float x[4] = {1, -2, 3, 0.5f};
    cr_assert_eq(pl_imatrix_acc_add(im, "a", x, 2, 2, msg), PL_OK, "%s", msg);
    cr_assert_eq(pl_imatrix_acc_reduce(im, msg), PL_OK, "%s", msg);
    int cols = 0;
    const double *s1 = NULL;
    int64_t count = 0;
    const double *s2 = pl_imatrix_acc_sums(im, "a", &cols, &s1, &count);
    cr_assert(s2 && cols == 2 && count == 2);
    cr_assert(s2[0] == 10 && s2[1] == 4.25 && s1[0] == 4 && s1[1] == -1.5);
    cr_assert_eq(pl_imatrix_acc_reduce(NULL, msg), PL_ERR_ARG);
    pl_imatrix_acc_free(im);
}
