/* pipeline/chunks.c: cutting and seeded sampling of calibration chunks. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>

#include "pipeline/chunks.h"

Test(chunks, cut)
{
    int32_t tok[1000];
    for (int i = 0; i < 1000; ++i)
        tok[i] = i + 10;
    int n;
    int32_t *c = pl_chunks_cut(tok, 1000, 300, 1, 0, &n);
    cr_assert_eq(n, 3);
    for (int k = 0; k < 3; ++k) {
        cr_assert_eq(c[k * 300], 1);
        for (int i = 1; i < 300; ++i)
            cr_assert_eq(c[k * 300 + i], tok[k * 300 + i]);
    }
    free(c);
    c = pl_chunks_cut(tok, 1000, 100, -1, 4, &n);
    cr_assert_eq(n, 4);
    cr_assert_eq(c[100], tok[100]);
    free(c);
    cr_assert_null(pl_chunks_cut(tok, 99, 100, 1, 0, &n));
    cr_assert_eq(n, 0);
}

Test(chunks, sample)
{
    int32_t tok[1000];
    for (int i = 0; i < 1000; ++i)
        tok[i] = i;
    /* golden: chunk starts drawn by splitmix64 (checked against an independent Python
     * implementation of the documented rule) */
    static const struct {
        size_t n;
        int ns;
        uint64_t seed;
        int32_t start[5];
    } g[] = {
        {1000, 4, 7, {0, 400, 600, 700}},       /* 10 whole chunks: 4 distinct ones */
        {1000, 4, 8, {100, 200, 300, 500}},
        {250, 5, 7, {16, 25, 38, 72, 140}},     /* 2 whole chunks < 5: windows anywhere */
    };
    for (size_t k = 0; k < sizeof g / sizeof g[0]; ++k) {
        int32_t *c = pl_chunks_sample(tok, g[k].n, 100, -1, g[k].ns, g[k].seed);
        cr_assert_not_null(c);
        for (int i = 0; i < g[k].ns; ++i) {
            cr_assert_eq(c[i * 100], g[k].start[i], "case %zu chunk %d: %d", k, i, c[i * 100]);
            for (int t = 1; t < 100; ++t)
                cr_assert_eq(c[i * 100 + t], c[i * 100] + t);
        }
        free(c);
    }
    int32_t *c = pl_chunks_sample(tok, 1000, 100, 1, 10, 3); /* all ten, BOS first */
    cr_assert_not_null(c);
    for (int i = 0; i < 10; ++i) {
        cr_assert_eq(c[i * 100], 1);
        cr_assert_eq(c[i * 100 + 1], i * 100 + 1);
    }
    free(c);
    cr_assert_null(pl_chunks_sample(tok, 99, 100, 1, 1, 0));
    cr_assert_null(pl_chunks_sample(tok, 1000, 100, 1, 0, 0));
    cr_assert_null(pl_chunks_sample(NULL, 1000, 100, 1, 1, 0));
}
