/* Perplexity and KL-divergence math, as llama-perplexity computes them.
 *
 * Perplexity (llama.cpp tools/perplexity, "perplexity()"): the text is tokenized once with
 * BOS, cut into chunks of n_ctx tokens (n_chunk = n_tokens / n_ctx, at least 2 chunks' worth
 * of tokens required), the first token of each chunk is replaced by BOS, and the positions
 * first = n_ctx/2 ... n_ctx-2 are scored on the next token:
 *   nll = max_logit + log(sum_i exp(logit_i - max_logit)) - logit[target]   (sum in double)
 *   PPL = exp(mean nll),  ± PPL * sqrt((mean nll² - mean nll²) / (count - 1)).
 *
 * KL divergence base file ("QFLOGP01", written by --kl-divergence-base), little-endian:
 *   char magic[8] = "QFLOGP01"
 *   u32 n_vocab, u32 n_ctx, u32 n_chunk, u32 first (= n_ctx/2), u32 range_centi (R*100)
 *   i32 tokens[n_chunk * n_ctx]           (the chunks as evaluated, before the BOS swap)
 *   n_chunk * (n_ctx - 1 - first) records, chunk-major, each:
 *     f32 lmax        largest log-probability of the position
 *     f32 ltarget     exact log-probability of the next token
 *     i32 top         index of the largest log-probability (first one on ties)
 *     u16 code[n_vocab]   log p_i = lmax - R + code*R/65535 for code > 0; code 0: p_i < e^-R * p_max
 *                         (treated as 0)
 * With R = 20 nats the log-probabilities are kept to ±1.5e-4 (12 + 2*n_vocab bytes per
 * scored token, like llama.cpp's own file); target log-probabilities and the top token are
 * exact, so base PPL and "same top p" are exact and mean KLD is within ~1e-5.
 *
 * KLD statistics follow llama-perplexity's kl_divergence(): per token
 *   KLD = sum_i p_base_i (log p_base_i - log p_i),  Δp = p(target) - p_base(target),
 * means with llama.cpp's uncertainty formula, percentiles by linear interpolation.
 */
#ifndef QFORGE_RT_PERPLEXITY_H
#define QFORGE_RT_PERPLEXITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "runtime/runtime.h"

#define RT_LOGP_MAGIC "QFLOGP01"
#define RT_LOGP_RANGE 20.0f

/* ---- perplexity ---- */
typedef struct {
    double nll, nll2; /* sums of -log p(target) and its square */
    int64_t count;
} rt_ppl_acc;

/* Logits of one chunk as llama-perplexity evaluates it: chunk[0] is replaced by bos (when
 * bos >= 0), positions 0..n_ctx-1 are run and logits for positions first = n_ctx/2 ..
 * n_ctx-1 are written ((n_ctx - first) × n_vocab floats). Row r predicts chunk[first+r+1]. */
rt_error rt_ppl_chunk_logits(rt_model *m, const int32_t *chunk, int n_ctx, int32_t bos, float *logits, char *msg);
/* The same for n_chunk consecutive chunks (chunks[c*n_ctx ..]) in one pass (as llama-perplexity
 * batches n_batch / n_ctx sequences): n_chunk × (n_ctx - first) rows of logits, chunk after
 * chunk, each identical to rt_ppl_chunk_logits on that chunk. n_chunk * n_ctx <= RT_MAX_TOKENS. */
rt_error rt_ppl_chunks_logits(rt_model *m, const int32_t *chunks, int n_chunk, int n_ctx, int32_t bos, float *logits,
                              char *msg);

/* nll of each of n rows of logits (n_vocab floats each) for its target, in llama.cpp's way
 * (max and target in float, sum of expf in double). nll_out: n doubles. OpenMP over rows. */
void rt_ppl_row_nll(const float *logits, int n_vocab, const int32_t *targets, int n, double *nll_out,
                    int nthreads);
/* Add n nll values in order. */
void rt_ppl_add(rt_ppl_acc *a, const double *nll, int n);
double rt_ppl_value(const rt_ppl_acc *a);       /* exp(mean nll) */
double rt_ppl_uncertainty(const rt_ppl_acc *a); /* llama.cpp's ±; 0 when undefined */

/* ---- log-probability records (KLD base) ---- */
size_t rt_logp_record_size(int n_vocab);
/* Encode one row of logits into a record for target token `target`. */
void rt_logp_encode(const float *logits, int n_vocab, int32_t target, void *record);

typedef struct {
    uint32_t n_vocab, n_ctx, n_chunk, first;
    float range;
} rt_logp_header;

/* Write the header and tokens (n_chunk*n_ctx). */
rt_error rt_logp_write_header(FILE *f, const rt_logp_header *h, const int32_t *tokens, char *msg);
/* Read and validate the header (caps: n_vocab <= 2^24, 2 <= n_ctx <= 2^20, n_chunk <= 2^20,
 * file size consistent) and the tokens (*tokens malloc'ed, caller frees; each in
 * [0, n_vocab)). file_size: bytes of the file (for the consistency check). */
rt_error rt_logp_read_header(FILE *f, uint64_t file_size, rt_logp_header *h, int32_t **tokens, char *msg);

/* ---- KL divergence ---- */
typedef struct rt_kld rt_kld;

rt_kld *rt_kld_create(void);
void rt_kld_free(rt_kld *k);
/* Compare n rows of logits (n_vocab each) with n base records for targets. OpenMP over rows;
 * accumulation in row order. RT_ERR_NOMEM or RT_ERR_FORMAT (a record's top index or lmax out
 * of range). */
rt_error rt_kld_add(rt_kld *k, const float *logits, int n_vocab, const int32_t *targets, const void *records,
                    int n, int nthreads, char *msg);

typedef struct {
    int64_t count;
    double ppl, ppl_unc, ppl_base, ppl_base_unc;
    double cor;                          /* correlation of ln PPL(Q) and ln PPL(base), fraction */
    double ln_ratio, ln_ratio_unc;       /* mean ln(PPL(Q)/PPL(base)) */
    double ppl_ratio, ppl_ratio_unc;
    double ppl_diff, ppl_diff_unc;
    double kld, kld_unc;
    /* max, 99.9, 99, 95, 90, median, 10, 5, 1, 0.1 %, min */
    double kld_pct[11];
    double dp, dp_unc;                   /* mean Δp (fraction, not %) */
    /* max, 99.9, 99, 95, 90, 75, median, 25, 10, 5, 1, 0.1 %, min */
    double dp_pct[13];
    double rms_dp, rms_dp_unc;
    double same_top, same_top_unc;       /* fraction */
} rt_kld_stats;

/* Statistics so far (percentiles sort a copy). RT_ERR_NOMEM or RT_ERR_ARG when count < 2. */
rt_error rt_kld_stats_get(const rt_kld *k, rt_kld_stats *s, char *msg);

/* s as a JSON object (jansson; the caller owns it): count, ppl, ppl_unc, ppl_base,
 * ppl_base_unc, cor_ln_ppl, mean_ln_ppl_ratio(_unc), ppl_ratio(_unc), ppl_diff(_unc), kld,
 * kld_unc, kld_percentiles {max, 99.9, ..., min}, mean_dp(_unc), dp_percentiles, rms_dp(_unc),
 * same_top_p(_unc) (fractions, not %). NULL when out of memory. */
struct json_t *rt_kld_stats_json(const rt_kld_stats *s);

/* ---- a whole evaluation, as qforge-perplexity runs it ---- */

/* What one chunk gave, handed over in chunk order. */
typedef struct {
    const float *logits;           /* (n_ctx - first) x n_vocab; row r predicts targets[r] */
    const int32_t *targets;        /* the n_scored next tokens (chunk[first + 1 ..]) */
    const double *nll;             /* n_scored values (rt_ppl_row_nll), or NULL */
    const unsigned char *records;  /* n_scored log-probability records (rt_logp_encode), or NULL */
    int n_scored;                  /* n_ctx - 1 - first */
} rt_ppl_chunk;

typedef struct {
    int n_ctx;             /* chunk length (4..RT_MAX_TOKENS) */
    int n_chunk;           /* chunks of tokens to evaluate */
    int n_batch;           /* tokens per forward pass (llama-perplexity's -b): n_batch / n_ctx
                              chunks are evaluated together (at least 1) */
    int nthreads;          /* <= 0: OpenMP's default */
    int32_t bos;           /* replaces each chunk's first token when >= 0 */
    bool nll;              /* compute the nll of every scored row */
    bool records;          /* encode every scored row's log-probability record */
    /* Receives chunk c (0, 1, ... in order); nonzero stops the evaluation (RT_ERR_HOOK). */
    int (*chunk)(void *user, int c, const rt_ppl_chunk *out);
    void *user;
} rt_ppl_eval_opts;

/* How rt_ppl_eval divides the work and what it allocates: n_seq chunks per pass, n_workers
 * passes at once (each on a clone of the model with one thread, or the model itself on all
 * threads when there is one worker); scratch = the models' scratch buffers, buffers = logits,
 * nll values (allocated whether asked for or not) and records. */
typedef struct {
    int n_seq, n_workers;
    uint64_t scratch, buffers;
} rt_ppl_plan;

void rt_ppl_eval_plan(const rt_model *m, const rt_ppl_eval_opts *o, rt_ppl_plan *p);

/* Evaluate o->n_chunk chunks of tokens (tokens[c * n_ctx ..]) as llama-perplexity does
 * (rt_ppl_chunks_logits on n_seq chunks per pass). With several threads and several passes each
 * worker makes passes of its own on its own clone of m, so there is no synchronization inside a
 * pass; results are handed to o->chunk in chunk order and do not depend on the thread count or
 * n_batch. m's thread count is changed. Errors: those of rt_model_clone and the forward pass
 * ("chunks 3-4: ..."), RT_ERR_NOMEM, RT_ERR_ARG, RT_ERR_HOOK. */
rt_error rt_ppl_eval(rt_model *m, const int32_t *tokens, const rt_ppl_eval_opts *o, char *msg);

#endif
