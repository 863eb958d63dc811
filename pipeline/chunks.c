/* Calibration chunks (see chunks.h). */
#include <stdlib.h>
#include <string.h>

#include "pipeline/chunks.h"

int32_t *pl_chunks_cut(const int32_t *tokens, size_t n_tokens, int n_ctx, int32_t bos,
                       int max_chunks, int *n_chunks)
{
    *n_chunks = 0;
    if (!tokens || n_ctx < 1)
        return NULL;
    size_t n = n_tokens / (size_t)n_ctx;
    if (max_chunks > 0 && n > (size_t)max_chunks)
        n = (size_t)max_chunks;
    if (n == 0 || n > (size_t)INT32_MAX || n > SIZE_MAX / sizeof(int32_t) / (size_t)n_ctx)
        return NULL;
    int32_t *out = malloc(n * (size_t)n_ctx * sizeof(int32_t));
    if (!out)
        return NULL;
    memcpy(out, tokens, n * (size_t)n_ctx * sizeof(int32_t));
    if (bos >= 0)
        for (size_t c = 0; c < n; ++c)
            out[c * (size_t)n_ctx] = bos;
    *n_chunks = (int)n;
    return out;
}

/* splitmix64: a tiny generator whose sequence is fixed by the seed on every platform. */
static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in 0..n-1 (n >= 1), without modulo bias. */
static uint64_t uniform(uint64_t *state, uint64_t n)
{
    const uint64_t lim = UINT64_MAX - UINT64_MAX % n;
    uint64_t r;
    do
        r = splitmix64(state);
    while (r >= lim);
    return r % n;
}

static int cmp_size(const void *a, const void *b)
{
    const size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

int32_t *pl_chunks_sample(const int32_t *tokens, size_t n_tokens, int n_ctx, int32_t bos,
                          int n_samples, uint64_t seed)
{
    if (!tokens || n_ctx < 1 || n_samples < 1 || n_tokens < (size_t)n_ctx ||
        (size_t)n_samples > SIZE_MAX / sizeof(int32_t) / (size_t)n_ctx)
        return NULL;
    const size_t whole = n_tokens / (size_t)n_ctx, ns = (size_t)n_samples;
    size_t *off = malloc((whole > ns ? whole : ns) * sizeof(size_t));
    int32_t *out = malloc(ns * (size_t)n_ctx * sizeof(int32_t));
    if (!off || !out) {
        free(off);
        free(out);
        return NULL;
    }
    uint64_t st = seed;
    if (whole >= ns) {
        /* the first ns entries of a seeded Fisher-Yates shuffle of the chunk starts */
        for (size_t c = 0; c < whole; ++c)
            off[c] = c * (size_t)n_ctx;
        for (size_t i = 0; i < ns; ++i) {
            const size_t j = i + (size_t)uniform(&st, whole - i);
            const size_t t = off[i];
            off[i] = off[j];
            off[j] = t;
        }
    } else {
        for (size_t i = 0; i < ns; ++i)
            off[i] = (size_t)uniform(&st, n_tokens - (size_t)n_ctx + 1);
    }
    qsort(off, ns, sizeof *off, cmp_size);
    for (size_t i = 0; i < ns; ++i) {
        int32_t *dst = out + i * (size_t)n_ctx;
        memcpy(dst, tokens + off[i], (size_t)n_ctx * sizeof(int32_t));
        if (bos >= 0)
            dst[0] = bos;
    }
    free(off);
    return out;
}
