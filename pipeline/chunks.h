/* pipeline — calibration chunks: token sequences cut from a tokenized text.
 *
 * Both functions return a malloc'ed array of chunks * n_ctx tokens (the caller frees) whose
 * chunks each start with bos (when bos >= 0), or NULL (bad argument, too few tokens, out of
 * memory). Never prints. */
#ifndef QFORGE_PL_CHUNKS_H
#define QFORGE_PL_CHUNKS_H

#include <stddef.h>
#include <stdint.h>

/* Cut tokens into chunks of n_ctx as llama.cpp's imatrix and perplexity do: chunk c is
 * tokens[c*n_ctx .. (c+1)*n_ctx), its first token replaced by bos; at most max_chunks (<= 0:
 * all whole chunks). *n_chunks receives their number (0 on NULL). */
int32_t *pl_chunks_cut(const int32_t *tokens, size_t n_tokens, int n_ctx, int32_t bos,
                       int max_chunks, int *n_chunks);

/* n_samples chunks of n_ctx tokens chosen at random with a seeded generator (splitmix64; the
 * same seed gives the same chunks on every machine):
 *   - when the text holds at least n_samples whole chunks (cut as pl_chunks_cut does),
 *     n_samples distinct ones of them, in text order;
 *   - otherwise windows at offsets drawn uniformly from 0..n_tokens-n_ctx (they may overlap).
 * NULL when n_tokens < n_ctx, an argument is bad or memory is short. */
int32_t *pl_chunks_sample(const int32_t *tokens, size_t n_tokens, int n_ctx, int32_t bos,
                          int n_samples, uint64_t seed);

#endif
