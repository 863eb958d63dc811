/* libquant/lq_types.c: the one type table — its entries, their consistency with libgguf's
 * container table and the block structs, and every "is this type supported" answer derived
 * from it (libquant, the GPTQ solver, the runtime's vec-dot pairing). */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "libgguf/gguf.h"
#include "libquant/lq.h"
#include "libquant/lq_blocks.h"
#include "libquant/lq_gptq.h"
#include "libquant/lq_types.h"
#include "runtime/kernels.h"

/* What the table must say, written out independently: ggml's vec_dot_type pairs, the block
 * structs' sizes and the GPTQ grids. */
#define FL (LQ_TYPE_FLOAT | LQ_TYPE_WRITABLE | LQ_TYPE_KERNEL)
#define WK (LQ_TYPE_WRITABLE | LQ_TYPE_KERNEL)
static const struct {
    int type;
    unsigned flags;
    size_t block_bytes;
    int vec_dot;
    lq_grid_kind grid;
    int sub;
    bool weighted;
} k_want[] = {
    {GGUF_F32, FL, 4, GGUF_F32, LQ_GRID_NONE, 0, false},
    {GGUF_F16, FL, 2, GGUF_F16, LQ_GRID_NONE, 0, false},
    {GGUF_BF16, FL, 2, GGUF_BF16, LQ_GRID_NONE, 0, false},
    {GGUF_Q4_0, WK, sizeof(lq_block_q4_0), GGUF_Q8_0, LQ_GRID_LEGACY, 32, true},
    {GGUF_Q4_1, WK, sizeof(lq_block_q4_1), GGUF_Q8_1, LQ_GRID_LEGACY, 32, true},
    {GGUF_Q5_0, WK, sizeof(lq_block_q5_0), GGUF_Q8_0, LQ_GRID_LEGACY, 32, true},
    {GGUF_Q5_1, WK, sizeof(lq_block_q5_1), GGUF_Q8_1, LQ_GRID_LEGACY, 32, true},
    {GGUF_Q8_0, WK, sizeof(lq_block_q8_0), GGUF_Q8_0, LQ_GRID_LEGACY, 32, false},
    {GGUF_Q8_1, LQ_TYPE_ACTIVATION, sizeof(lq_block_q8_1), -1, LQ_GRID_NONE, 0, false},
    {GGUF_Q2_K, WK, sizeof(lq_block_q2_K), GGUF_Q8_K, LQ_GRID_KQUANT, 16, true},
    {GGUF_Q3_K, WK, sizeof(lq_block_q3_K), GGUF_Q8_K, LQ_GRID_KQUANT, 16, true},
    {GGUF_Q4_K, WK, sizeof(lq_block_q4_K), GGUF_Q8_K, LQ_GRID_KQUANT, 32, true},
    {GGUF_Q5_K, WK, sizeof(lq_block_q5_K), GGUF_Q8_K, LQ_GRID_KQUANT, 32, true},
    {GGUF_Q6_K, WK, sizeof(lq_block_q6_K), GGUF_Q8_K, LQ_GRID_KQUANT, 16, true},
    {GGUF_Q8_K, LQ_TYPE_ACTIVATION, sizeof(lq_block_q8_K), -1, LQ_GRID_NONE, 0, false},
    /* block math only for now: not written, no runtime kernel, no GPTQ grid */
    {GGUF_IQ4_NL, 0, sizeof(lq_block_iq4_nl), GGUF_Q8_0, LQ_GRID_NONE, 0, true},
    {GGUF_IQ4_XS, 0, sizeof(lq_block_iq4_xs), GGUF_Q8_K, LQ_GRID_NONE, 0, true},
};
#define N_WANT (sizeof k_want / sizeof k_want[0])

static int want_index(int type)
{
    for (size_t i = 0; i < N_WANT; ++i)
        if (k_want[i].type == type)
            return (int)i;
    return -1;
}

Test(table, entries)
{
    int n = 0;
    for (int id = 0; id < GGUF_TYPE_MAX_; ++id) {
        const lq_type_traits *t = lq_type_traits_of(id);
        const int w = want_index(id);
        cr_assert_eq(t != NULL, w >= 0, "type %d: in the table %d, expected %d", id, t != NULL, w >= 0);
        if (!t)
            continue;
        n++;
        cr_assert_eq(t->type, id);
        /* name and sizes are libgguf's: the entry points at its row */
        cr_assert_eq(t->gguf, gguf_type_info(id), "type %d", id);
        cr_assert_not_null(t->gguf->name);
        cr_assert_eq(t->gguf->block_bytes, k_want[w].block_bytes, "%s bytes", t->gguf->name);
        cr_assert_eq(t->flags, k_want[w].flags, "%s flags", t->gguf->name);
        cr_assert_eq(t->vec_dot_type, k_want[w].vec_dot, "%s vec-dot type", t->gguf->name);
        cr_assert_eq(t->gptq_grid, k_want[w].grid, "%s GPTQ grid", t->gguf->name);
        cr_assert_eq(t->gptq_sub, k_want[w].sub, "%s GPTQ sub-block", t->gguf->name);
        cr_assert_eq(t->quantize_weighted != NULL, k_want[w].weighted, "%s weighted", t->gguf->name);
        cr_assert_not_null(t->quantize, "%s", t->gguf->name);
        cr_assert_eq(t->dequantize != NULL, id != GGUF_Q8_1, "%s decoder", t->gguf->name);
    }
    cr_assert_eq(n, (int)N_WANT);
    cr_assert_null(lq_type_traits_of(-1));
    cr_assert_null(lq_type_traits_of(4)); /* removed Q4_2 */
    cr_assert_null(lq_type_traits_of(GGUF_TYPE_MAX_));
    cr_assert_null(lq_type_traits_of(1 << 30));
}

/* Rules any entry, present or future, must keep. */
Test(table, invariants)
{
    for (int id = 0; id < GGUF_TYPE_MAX_; ++id) {
        const lq_type_traits *t = lq_type_traits_of(id);
        if (!t)
            continue;
        const char *nm = t->gguf->name;
        if (t->flags & LQ_TYPE_FLOAT)
            cr_assert_eq(t->gguf->block_size, 1, "%s", nm);
        if (t->flags & LQ_TYPE_ACTIVATION) {
            cr_assert(!(t->flags & (LQ_TYPE_WRITABLE | LQ_TYPE_KERNEL)), "%s", nm);
            cr_assert_eq(t->vec_dot_type, -1, "%s", nm);
        } else {
            /* its activations can be made, and their blocks line up with the weight's */
            const lq_type_traits *a = lq_type_traits_of(t->vec_dot_type);
            cr_assert(a && a->quantize, "%s: vec-dot type %d", nm, t->vec_dot_type);
            cr_assert_eq(t->gguf->block_size % a->gguf->block_size, 0, "%s", nm);
        }
        if (t->flags & LQ_TYPE_WRITABLE) {
            cr_assert(t->quantize && t->dequantize, "%s", nm);
            /* what qforge writes, qforge-perplexity runs */
            cr_assert(t->flags & LQ_TYPE_KERNEL, "%s", nm);
        }
        switch (t->gptq_grid) {
        case LQ_GRID_NONE: cr_assert_eq(t->gptq_sub, 0, "%s", nm); break;
        case LQ_GRID_LEGACY:
            cr_assert_eq(t->gguf->block_size, 32, "%s", nm);
            cr_assert_eq(t->gptq_sub, 32, "%s", nm);
            break;
        case LQ_GRID_KQUANT:
            cr_assert_eq(t->gguf->block_size, 256, "%s", nm);
            cr_assert(t->gptq_sub == 16 || t->gptq_sub == 32, "%s", nm);
            break;
        }
        if (t->gptq_grid != LQ_GRID_NONE)
            cr_assert(t->flags & LQ_TYPE_WRITABLE, "%s", nm);
    }
}

/* Every support question is the table's answer, the runtime's kernels and vec-dot pairing
 * included (tests/test_kernels.c checks that its type list is the table's kernel types). */
Test(table, support_checks_derive_from_it)
{
    for (int id = -5; id < 100; ++id) {
        const lq_type_traits *t = lq_type_traits_of(id);
        const bool writable = t && (t->flags & LQ_TYPE_WRITABLE);
        const bool kernel = t && (t->flags & LQ_TYPE_KERNEL);
        cr_assert_eq(!!lq_can_quantize(id), writable, "type %d", id);
        cr_assert_eq(lq_gptq_supports(id), t && t->gptq_grid != LQ_GRID_NONE, "type %d", id);
        cr_assert_eq(lq_block_size(id), t ? (int64_t)t->gguf->block_size : 0, "type %d", id);
        cr_assert_eq(lq_row_size(id, 512), t ? gguf_row_size(id, 512) : 0, "type %d", id);
        cr_assert_eq(rt_vec_dot_type(id), kernel ? t->vec_dot_type : -1, "type %d", id);
        cr_assert_eq(!!rt_kernel_supported(id), kernel, "type %d", id);
        cr_assert_eq(rt_act_row_size(id, 512), kernel ? gguf_row_size(t->vec_dot_type, 512) : 0, "type %d", id);
    }
}

/* lq_quantize_row runs the weighted quantizer exactly when given an imatrix and the type has
 * one; lq_dequantize_row runs the decoder. */
Test(table, dispatch)
{
    enum { N = 512 };
    float x[N], qw[N], y[N], z[N];
    uint8_t a[N * 4], b[N * 4], c[N * 4];
    for (int i = 0; i < N; ++i) {
        x[i] = sinf(0.37f * (float)i) * (1.0f + (float)(i % 7));
        qw[i] = 0.1f + (float)((i * 13) % 17);
    }
    for (size_t k = 0; k < N_WANT; ++k) {
        const lq_type_traits *t = lq_type_traits_of(k_want[k].type);
        const char *nm = t->gguf->name;
        const size_t rs = gguf_row_size(t->type, N);
        cr_assert_eq(lq_quantize_row(t->type, x, a, N, NULL), rs, "%s", nm);
        t->quantize(x, b, N);
        cr_assert_eq(memcmp(a, b, rs), 0, "%s plain", nm);
        cr_assert_eq(lq_quantize_row(t->type, x, c, N, qw), rs, "%s", nm);
        if (t->quantize_weighted) {
            t->quantize_weighted(x, b, N, qw);
            cr_assert_eq(memcmp(c, b, rs), 0, "%s weighted", nm);
            if (!(t->flags & LQ_TYPE_FLOAT))
                cr_assert_neq(memcmp(a, c, rs), 0, "%s: the imatrix changes nothing", nm);
        } else {
            cr_assert_eq(memcmp(a, c, rs), 0, "%s ignores the imatrix", nm);
        }
        if (t->dequantize) {
            cr_assert_eq(lq_dequantize_row(t->type, a, y, N), 0, "%s", nm);
            t->dequantize(a, z, N);
            cr_assert_eq(memcmp(y, z, sizeof y), 0, "%s", nm);
        } else {
            cr_assert_eq(lq_dequantize_row(t->type, a, y, N), -1, "%s", nm);
        }
    }
}
