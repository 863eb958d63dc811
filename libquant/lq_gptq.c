/* GPTQ solver into GGUF block types (see lq_gptq.h).
 *
 * Layout of the work: H (permuted when act_order, dead columns fixed, damped) is factorized
 * once in double (lq_gptq_factor.c); U = the upper factor of H^-1, kept in float. Rows are
 * then processed in chunks of CHUNK_ROWS; each chunk keeps its rows' working copy in
 * processing order and writes its blocks to dst. Every working value sees the same sequence
 * of float operations whatever the chunking, lazy-batch width or thread count: the lazy
 * batches (and the sub-batches inside them) only delay the updates of later columns,
 * applying them in the same column order through the blocked kernels of lq_gptq_kern.h.
 * The losses are quadratic forms with the caller's H, blocked the same way in double.
 *
 * The per-type grid machinery (choose a block's scales, pack levels) comes from
 * lq_internal.h; the per-value rounding and decoding below mirror llama.cpp's expressions
 * (and libquant's decoders), which the driver verifies by decoding every output row. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "libquant/lq_gptq.h"
#include "libquant/lq_gptq_kern.h"
#include "libquant/lq_internal.h"
#include "libquant/lq_iq4.h"

#define CHUNK_ROWS 32   /* rows per work item */
#define LOSS_ROWS 128   /* rows per block of the loss pass: 256 error vectors in lanes */
#define LOSS_LD (2 * LOSS_ROWS + 8) /* row stride of the lanes: an odd number of cache lines */
#define LOSS_IB 256     /* rows of H per work item of the loss pass */
#define SUB_COLS 16     /* sub-batch: columns updated one by one before a blocked product */
#define MAX_RETRIES 30  /* cap on opts.max_retries (damping grows 10x per retry) */

/* ---------------------------------------------------------------- per-type adapters */

/* A type's GPTQ grid, from the type table (lq_types.c). */
typedef struct {
    int type;
    int group;    /* columns whose grid is chosen at once: one block */
    int sub;      /* columns sharing one step/offset */
    size_t bsize; /* bytes per block */
} tinfo;

static bool get_tinfo(int type, tinfo *ti)
{
    const lq_type_traits *tr = lq_type_traits_of(type);
    if (!tr || tr->gptq_grid == LQ_GRID_NONE)
        return false;
    *ti = (tinfo){type, (int)tr->gguf->block_size, tr->gptq_sub, tr->gguf->block_bytes};
    return true;
}

static bool is_kquant(int type)
{
    const lq_type_traits *tr = lq_type_traits_of(type);
    return tr && tr->gptq_grid == LQ_GRID_KQUANT;
}

/* One sub-block's grid.
 * Legacy: d, m = the scale and min as chosen (llama.cpp rounds with these, before their fp16
 * rounding), ci = 1/d (0 when d = 0); dd, dm = the fp16-rounded scale and min the block stores.
 * k-quants: dd = the step and dm = the offset the header encodes (value = dd*L - dm for
 * Q2_K/Q4_K/Q5_K; Q3_K/Q6_K are symmetric: value = dd*(L - 4 or 32)). */
typedef struct {
    float d, m, ci, dd, dm;
} gp;

static inline float f16_round(float x)
{
    return lq_f16_to_f32(lq_f32_to_f16(x));
}

static void set_legacy(gp *p, float d, float m)
{
    p->d = d;
    p->m = m;
    p->ci = d ? 1.0f / d : 0.0f;
    p->dd = f16_round(d);
    p->dm = f16_round(m);
}

#define KQ_CHOOSE(BLOCK, CHOOSE, GRID, NSUB)                                                 \
    do {                                                                                     \
        BLOCK y;                                                                             \
        memset(&y, 0, sizeof y);                                                             \
        CHOOSE(x, qw, &y, L);                                                                \
        for (int j = 0; j < (NSUB); ++j)                                                     \
            GRID(&y, j, &p[j].dd, &p[j].dm);                                                 \
        memcpy(blk, &y, sizeof y);                                                           \
    } while (0)

/* IQ4 blocks: the plain/weighted quantizer's scale search writes the header; per group of 32,
 * d = the step the levels are rounded with (before fp16), ci = 1/d, dd = the decoded step. */
static void iq4_choose(int type, const float *x, const float *qw, uint8_t *blk, gp *p, uint8_t *L)
{
    if (type == GGUF_IQ4_NL) {
        lq_block_iq4_nl y;
        memset(&y, 0, sizeof y);
        set_legacy(p, lq_iq4_nl_choose(x, qw, &y), 0);
        lq_iq4_levels(LQ_QK, x, p->d, L);
        memcpy(blk, &y, sizeof y);
        return;
    }
    lq_block_iq4_xs y;
    float step[LQ_QK_K / LQ_QK];
    memset(&y, 0, sizeof y);
    lq_iq4_xs_choose(x, qw, &y, step);
    for (int j = 0; j < LQ_QK_K / LQ_QK; ++j) {
        p[j].d = step[j];
        p[j].m = p[j].dm = 0;
        p[j].ci = step[j] ? 1.0f / step[j] : 0.0f;
        p[j].dd = lq_f16_to_f32(y.d) * (float)lq_iq4_xs_scale(&y, j);
        lq_iq4_levels(LQ_QK, x + LQ_QK * j, step[j], L + LQ_QK * j);
    }
    memcpy(blk, &y, sizeof y);
}

/* Choose the grid of one block from its current values x (t->group of them, original column
 * order), importance qw (NULL: llama.cpp's plain choice) and, for weighted legacy blocks, the
 * row's sigma2. k-quants: writes the header into blk. Writes p[group/sub] and L[group] (the
 * levels of the search, kept where a sub-block's step is 0). */
static void grid_choose(const tinfo *t, const float *x, const float *qw, float sigma2,
                        uint8_t *blk, gp *p, uint8_t *L)
{
    float w[LQ_QK], mn = 0, d;
    switch (t->type) {
    case GGUF_Q4_0:
    case GGUF_Q5_0:
        if (qw) {
            lq_imat_weights(LQ_QK, x, qw, sigma2, w);
            d = t->type == GGUF_Q4_0 ? lq_q4_0_choose_imat(x, w, L) : lq_q5_0_choose_imat(x, w, L);
        } else {
            d = t->type == GGUF_Q4_0 ? lq_q4_0_choose_ref(x) : lq_q5_0_choose_ref(x);
        }
        set_legacy(p, d, 0);
        break;
    case GGUF_Q4_1:
    case GGUF_Q5_1:
        if (qw) {
            lq_imat_weights(LQ_QK, x, qw, sigma2, w);
            d = t->type == GGUF_Q4_1 ? lq_q4_1_choose_imat(x, w, &mn, L)
                                     : lq_q5_1_choose_imat(x, w, &mn, L);
        } else {
            d = t->type == GGUF_Q4_1 ? lq_q4_1_choose_ref(x, &mn) : lq_q5_1_choose_ref(x, &mn);
        }
        set_legacy(p, d, mn);
        break;
    case GGUF_Q8_0: /* llama.cpp has no importance path for Q8_0 */
        set_legacy(p, lq_q8_0_choose_ref(x), 0);
        break;
    case GGUF_Q2_K:
        KQ_CHOOSE(lq_block_q2_K, lq_q2_K_choose, lq_q2_K_grid, LQ_QK_K / 16);
        break;
    case GGUF_Q3_K:
        KQ_CHOOSE(lq_block_q3_K, lq_q3_K_choose, lq_q3_K_grid, LQ_QK_K / 16);
        break;
    case GGUF_Q4_K:
        KQ_CHOOSE(lq_block_q4_K, lq_q4_K_choose, lq_q4_K_grid, LQ_QK_K / 32);
        break;
    case GGUF_Q5_K:
        KQ_CHOOSE(lq_block_q5_K, lq_q5_K_choose, lq_q5_K_grid, LQ_QK_K / 32);
        break;
    case GGUF_Q6_K: {
        lq_block_q6_K y;
        memset(&y, 0, sizeof y);
        if (!lq_q6_K_choose(x, qw, &y, L)) {
            /* (near) zero super-block: llama.cpp writes an all-zero block */
            memset(&y, 0, sizeof y);
            memset(L, 0, LQ_QK_K);
        }
        for (int j = 0; j < LQ_QK_K / 16; ++j)
            lq_q6_K_grid(&y, j, &p[j].dd, &p[j].dm);
        memcpy(blk, &y, sizeof y);
        break;
    }
    case GGUF_IQ4_NL:
    case GGUF_IQ4_XS:
        iq4_choose(t->type, x, qw, blk, p, L);
        break;
    default:
        break;
    }
}

/* Truncation of v to 0..hi as llama.cpp's legacy rounding (int)(v) does for v in range;
 * out-of-range values (possible after error feedback) and NaN clamp instead. */
static inline int trunc_clamp(float v, int hi)
{
    if (!(v > 0.0f))
        return 0;
    if (v >= (float)hi)
        return hi;
    return (int)v;
}

/* nearest_int clamped to lo..hi; equal to clamp(nearest_int(f)) wherever that is defined. */
static inline int round_clamp(float f, int lo, int hi)
{
    if (!(f > (float)lo))
        return lo;
    if (f >= (float)hi)
        return hi;
    return lq_nearest_int(f);
}

/* Level of value x on grid p (llama.cpp's rounding rule for the type). Lcur is kept where the
 * sub-block's step is 0 (every level decodes to the same value there). Q8_0 returns -127..127. */
static inline int grid_level(int type, const gp *p, float x, int Lcur)
{
    switch (type) {
    case GGUF_Q4_0: return trunc_clamp(x * p->ci + 8.5f, 15);
    case GGUF_Q4_1: return trunc_clamp((x - p->m) * p->ci + 0.5f, 15);
    case GGUF_Q5_0: return trunc_clamp(x * p->ci + 16.5f, 31);
    case GGUF_Q5_1: return trunc_clamp((x - p->m) * p->ci + 0.5f, 31);
    case GGUF_Q8_0: {
        const float v = roundf(x * p->ci);
        return !(v > -127.0f) ? -127 : v >= 127.0f ? 127 : (int)v;
    }
    case GGUF_Q2_K: return p->dd ? round_clamp((x + p->dm) / p->dd, 0, 3) : Lcur;
    case GGUF_Q3_K: return p->dd ? round_clamp(x / p->dd, -4, 3) + 4 : Lcur;
    case GGUF_Q4_K: return p->dd ? round_clamp((x + p->dm) / p->dd, 0, 15) : Lcur;
    case GGUF_Q5_K: return p->dd ? round_clamp((x + p->dm) / p->dd, 0, 31) : Lcur;
    case GGUF_Q6_K: return p->dd ? round_clamp(x / p->dd, -32, 31) + 32 : Lcur;
    case GGUF_IQ4_NL:
    case GGUF_IQ4_XS: return lq_iq4_nearest(x * p->ci);
    default: return 0;
    }
}

/* The value level L decodes to, with the decoders' float expressions. */
static inline float grid_value(int type, const gp *p, int L)
{
    switch (type) {
    case GGUF_Q4_0: return (L - 8) * p->dd;
    case GGUF_Q4_1: return L * p->dd + p->dm;
    case GGUF_Q5_0: return (L - 16) * p->dd;
    case GGUF_Q5_1: return L * p->dd + p->dm;
    case GGUF_Q8_0: return L * p->dd;
    case GGUF_Q2_K:
    case GGUF_Q4_K:
    case GGUF_Q5_K: return p->dd * L - p->dm;
    case GGUF_Q3_K: return p->dd * (L - 4);
    case GGUF_Q6_K: return p->dd * (L - 32);
    case GGUF_IQ4_NL:
    case GGUF_IQ4_XS: return p->dd * (float)lq_iq4_grid[L];
    default: return 0;
    }
}

#define KQ_PACK(BLOCK, PACK)                                                                 \
    do {                                                                                     \
        BLOCK y;                                                                             \
        memcpy(&y, blk, sizeof y);                                                           \
        PACK(L, &y);                                                                         \
        memcpy(blk, &y, sizeof y);                                                           \
    } while (0)

/* Write one finished block: legacy header from p[0] and levels; k-quant levels into the
 * header grid_choose wrote. Q8_0 levels are the int8 values. */
static void grid_pack(const tinfo *t, uint8_t *blk, const gp *p, const uint8_t *L)
{
    switch (t->type) {
    case GGUF_Q4_0: {
        lq_block_q4_0 y;
        lq_q4_0_pack(p->d, L, &y);
        memcpy(blk, &y, sizeof y);
        break;
    }
    case GGUF_Q4_1: {
        lq_block_q4_1 y;
        lq_q4_1_pack(p->d, p->m, L, &y);
        memcpy(blk, &y, sizeof y);
        break;
    }
    case GGUF_Q5_0: {
        lq_block_q5_0 y;
        lq_q5_0_pack(p->d, L, &y);
        memcpy(blk, &y, sizeof y);
        break;
    }
    case GGUF_Q5_1: {
        lq_block_q5_1 y;
        lq_q5_1_pack(p->d, p->m, L, &y);
        memcpy(blk, &y, sizeof y);
        break;
    }
    case GGUF_Q8_0: {
        lq_block_q8_0 y;
        y.d = lq_f32_to_f16(p->d);
        for (int j = 0; j < LQ_QK; ++j)
            y.qs[j] = (int8_t)L[j];
        memcpy(blk, &y, sizeof y);
        break;
    }
    case GGUF_Q2_K: KQ_PACK(lq_block_q2_K, lq_q2_K_pack); break;
    case GGUF_Q3_K: KQ_PACK(lq_block_q3_K, lq_q3_K_pack); break;
    case GGUF_Q4_K: KQ_PACK(lq_block_q4_K, lq_q4_K_pack); break;
    case GGUF_Q5_K: KQ_PACK(lq_block_q5_K, lq_q5_K_pack); break;
    case GGUF_Q6_K: KQ_PACK(lq_block_q6_K, lq_q6_K_pack); break;
    case GGUF_IQ4_NL:
    case GGUF_IQ4_XS: { /* levels into the header iq4_choose wrote */
        const int nsub = t->group / LQ_QK;
        uint8_t *qs = blk + t->bsize - 16 * (size_t)nsub; /* qs ends both block layouts */
        uint8_t q[LQ_QK_K / 2];
        lq_iq4_pack(nsub, L, q);
        memcpy(qs, q, 16 * (size_t)nsub);
        break;
    }
    default: break;
    }
}

/* ---------------------------------------------------------------- options */

void lq_gptq_opts_init(lq_gptq_opts *o)
{
    memset(o, 0, sizeof *o);
    o->damp = 0.01;
    o->max_retries = 4;
    o->block_size = 128;
    o->grid = LQ_GPTQ_GRID_AUTO;
}

bool lq_gptq_supports(int type)
{
    const lq_type_traits *t = lq_type_traits_of(type);
    return t && t->gptq_grid != LQ_GRID_NONE;
}

/* ---------------------------------------------------------------- H access */

typedef struct {
    const void *p;
    bool f64;
    int64_t n;
} hmat;

/* H(a, b) from the lower triangle. */
static inline double h_at(const hmat *h, int64_t a, int64_t b)
{
    const int64_t i = a > b ? a : b, j = a > b ? b : a;
    return h->f64 ? ((const double *)h->p)[i * h->n + j] : ((const float *)h->p)[i * h->n + j];
}

/* ---------------------------------------------------------------- factorization */

/* Lower triangle of J M J (J reverses the order): M = H permuted, dead diagonals 1, plus damp
 * on the diagonal; lq_gk_chol_inv and ulay_fill turn it into U with M^-1 = U^T U. */
static void fill_rev(double *A, int64_t lda, const hmat *h, const int64_t *perm,
                     const uint8_t *dead, double damp, int nthreads)
{
    const int64_t n = h->n;
#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
        const int64_t a = n - 1 - i, pa = perm ? perm[a] : a;
        double *row = A + i * lda;
        for (int64_t j = 0; j < i; ++j) {
            const int64_t b = n - 1 - j;
            row[j] = h_at(h, pa, perm ? perm[b] : b);
        }
        row[i] = (dead[pa] ? 1.0 : h_at(h, pa, pa)) + damp;
    }
}

/* A = H symmetric, from H's lower triangle, in double. */
static void fill_sym(double *A, int64_t lda, const hmat *h, int nthreads)
{
    const int64_t n = h->n;
#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j <= i; ++j)
            A[i * lda + j] = A[j * lda + i] = h_at(h, i, j);
}

/* ---------------------------------------------------------------- U */

/* U (upper, n x n) as the column loop reads it. Batches of B columns, each cut into
 * sub-batches of SUB_COLS: the diagonal block of each sub-batch row-major in d (row i at
 * d + i * SUB_COLS, columns s1..s2-1), and packed for mulsub_f32, in loop order, the panel
 * of each sub-batch's rows up to the batch end, then the panel of the batch's rows beyond
 * it (p + off[batch]). */
typedef struct {
    int64_t n;
    int B;
    float *d;      /* n x SUB_COLS */
    float *p;      /* packed panels */
    size_t *off;   /* per batch, its first panel in p; off[nbatch] = total */
} ulay;

static void ulay_free(ulay *u)
{
    free(u->d);
    free(u->p);
    free(u->off);
    memset(u, 0, sizeof *u);
}

static int ulay_alloc(ulay *u, const lq_gk *g, int64_t n, int B)
{
    const int64_t nb = (n + B - 1) / B;
    memset(u, 0, sizeof *u);
    u->n = n;
    u->B = B;
    u->off = malloc((size_t)(nb + 1) * sizeof(size_t));
    u->d = malloc((size_t)n * SUB_COLS * sizeof(float));
    if (!u->off || !u->d)
        return -1;
    size_t off = 0;
    for (int64_t b = 0; b < nb; ++b) {
        const int64_t i1 = b * B, i2 = i1 + B < n ? i1 + B : n;
        u->off[b] = off;
        for (int64_t s1 = i1; s1 < i2; s1 += SUB_COLS) {
            const int64_t s2 = s1 + SUB_COLS < i2 ? s1 + SUB_COLS : i2;
            off += lq_gk_packed_f32(g, (int)(s2 - s1), (int)(i2 - s2));
        }
        off += lq_gk_packed_f32(g, (int)(i2 - i1), (int)(n - i2));
    }
    u->off[nb] = off;
    u->p = malloc((off ? off : 1) * sizeof(float));
    return u->p ? 0 : -1;
}

/* U(i,j) = X(n-1-i, n-1-j) (X = L^-1 in A's lower triangle, double) into u, in float. -1 when
 * a value is not finite or a diagonal one not > 0 (H^-1 not positive definite in floating
 * point). rows: nthreads x B x n floats of scratch. */
static int ulay_fill(ulay *u, const lq_gk *g, const double *A, int64_t lda, float *rows,
                     int nthreads)
{
    const int64_t n = u->n, B = u->B, nb = (n + B - 1) / B;
    int bad = 0;
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 1) reduction(| : bad)
    for (int64_t b = 0; b < nb; ++b) {
        const int64_t i1 = b * B, i2 = i1 + B < n ? i1 + B : n;
        float *ur = rows + (size_t)omp_get_thread_num() * (size_t)(B * n);
        for (int64_t i = i1; i < i2; ++i) {
            const double *x = A + (n - 1 - i) * lda + (n - 1 - i);
            float *r = ur + (i - i1) * n;
            for (int64_t j = i; j < n; ++j) {
                r[j] = (float)x[i - j];
                bad |= !isfinite(r[j]);
            }
            bad |= !(r[i] > 0);
        }
        size_t off = u->off[b];
        for (int64_t s1 = i1; s1 < i2; s1 += SUB_COLS) {
            const int64_t s2 = s1 + SUB_COLS < i2 ? s1 + SUB_COLS : i2;
            for (int64_t i = s1; i < s2; ++i)
                memcpy(u->d + i * SUB_COLS, ur + (i - i1) * n + s1,
                       (size_t)(s2 - s1) * sizeof(float));
            g->pack_f32((int)(s2 - s1), (int)(i2 - s2), ur + (s1 - i1) * n + s2, n, u->p + off);
            off += lq_gk_packed_f32(g, (int)(s2 - s1), (int)(i2 - s2));
        }
        g->pack_f32((int)(i2 - i1), (int)(n - i2), ur + i2, n, u->p + off);
    }
    return bad ? -1 : 0;
}

/* ---------------------------------------------------------------- row chunks */

typedef struct {
    const tinfo *t;
    const float *W;
    int64_t nrows, n;
    const double *Hs;     /* H symmetric in double, row stride ldh (loss only) */
    int64_t ldh;
    const ulay *u;        /* U, as the column loop reads it */
    const lq_gk *gk;      /* kernels */
    const int64_t *perm;  /* processing position -> column; NULL: identity */
    const uint8_t *dead;
    const float *qw;      /* grid importance per column, NULL: plain grid */
    bool stat;            /* grids chosen before the loop */
    int B;                /* lazy-batch width */
    bool loss;
    uint8_t *dst;
    size_t row_size;
    float *deq;
} ctx;

typedef struct {
    float *Wc;   /* CHUNK_ROWS x n working rows, processing order */
    float *Qc;   /* CHUNK_ROWS x n decoded values, column order */
    uint8_t *Lc; /* CHUNK_ROWS x n levels, column order */
    gp *P;       /* CHUNK_ROWS x n/sub grids */
    float *E;    /* CHUNK_ROWS x B scaled errors of the current batch */
    float *xrow; /* n */
    float *tmp;  /* n */
    float *sig;  /* CHUNK_ROWS */
} work;

static void work_free(work *w)
{
    free(w->Wc);
    free(w->Qc);
    free(w->Lc);
    free(w->P);
    free(w->E);
    free(w->xrow);
    free(w->tmp);
    free(w->sig);
    memset(w, 0, sizeof *w);
}

static int work_alloc(work *w, const ctx *c)
{
    const size_t R = CHUNK_ROWS, n = (size_t)c->n;
    memset(w, 0, sizeof *w);
    w->Wc = malloc(R * n * sizeof(float));
    w->Qc = malloc(R * n * sizeof(float));
    w->Lc = malloc(R * n);
    w->P = malloc(R * (n / (size_t)c->t->sub) * sizeof(gp));
    w->E = malloc(R * (size_t)c->B * sizeof(float)); /* B x CHUNK_ROWS, k-major */
    w->xrow = malloc(n * sizeof(float));
    w->tmp = malloc(n * sizeof(float));
    w->sig = malloc(R * sizeof(float));
    if (!(w->Wc && w->Qc && w->Lc && w->P && w->E && w->xrow && w->tmp && w->sig)) {
        work_free(w);
        return -1;
    }
    return 0;
}

/* Column i (processing order) of rows r0..r0+R-1: choose the block's grid when i starts one
 * (grids chosen in the loop), round, record the level, decoded value and scaled error, and
 * update the columns i+1..s2-1 of the same sub-batch. */
static void quantize_column(const ctx *c, work *w, int64_t r0, int R, int64_t i, int64_t i1,
                            int64_t s1, int64_t s2)
{
    const tinfo *t = c->t;
    const int64_t n = c->n, G = t->group, S = t->sub, nsub = n / S;
    const int64_t col = c->perm ? c->perm[i] : i;
    if (!c->stat && col % G == 0) {
        /* no permutation here, and batches never split a block's pending updates:
         * columns col..col+G-1 hold their current values */
        for (int r = 0; r < R; ++r)
            grid_choose(t, w->Wc + (size_t)r * n + col, c->qw ? c->qw + col : NULL, w->sig[r],
                        c->dst + (size_t)(r0 + r) * c->row_size + (col / G) * t->bsize,
                        w->P + r * nsub + col / S, w->Lc + (size_t)r * n + col);
    }
    const float *restrict urow = c->u->d + i * SUB_COLS - s1; /* U(i, j) = urow[j], j < s2 */
    const float uii = urow[i];
    float *ET = w->E + (i - i1) * CHUNK_ROWS;
    for (int r = 0; r < R; ++r) {
        float *restrict Wr = w->Wc + (size_t)r * n;
        uint8_t *Lr = w->Lc + (size_t)r * n;
        const gp *p = w->P + r * nsub + col / S;
        const float x = Wr[i];
        const int L = grid_level(t->type, p, x, Lr[col]);
        const float q = grid_value(t->type, p, L);
        Lr[col] = (uint8_t)L;
        w->Qc[(size_t)r * n + col] = q;
        const float e = (x - q) / uii;
        ET[r] = e;
#pragma omp simd
        for (int64_t j = i + 1; j < s2; ++j)
            Wr[j] -= e * urow[j];
    }
}

/* Quantize rows r0..r0+R-1. Returns 0, or 1 when a decoded row differs from the solver's
 * values (an internal inconsistency). */
static int process_chunk(const ctx *c, work *w, int64_t r0, int R)
{
    const tinfo *t = c->t;
    const int64_t n = c->n, G = t->group, S = t->sub, nsub = n / S;
    const int B = c->B;
    const bool weighted_legacy = c->qw && !is_kquant(t->type);

    for (int r = 0; r < R; ++r) {
        const float *wrow = c->W + (r0 + r) * n;
        float *Wr = w->Wc + (size_t)r * n;
        for (int64_t col = 0; col < n; ++col)
            w->xrow[col] = c->dead[col] ? 0.0f : wrow[col];
        for (int64_t i = 0; i < n; ++i)
            Wr[i] = w->xrow[c->perm ? c->perm[i] : i];
        w->sig[r] = weighted_legacy ? lq_sum_sq(n, w->xrow) / n : 0.0f;
        memset(w->Lc + (size_t)r * n, 0, (size_t)n);
        if (c->stat) {
            uint8_t *drow = c->dst + (size_t)(r0 + r) * c->row_size;
            for (int64_t g = 0; g < n / G; ++g)
                grid_choose(t, w->xrow + g * G, c->qw ? c->qw + g * G : NULL, w->sig[r],
                            drow + g * t->bsize, w->P + r * nsub + g * (G / S),
                            w->Lc + (size_t)r * n + g * G);
        }
    }

    /* Column i's scaled errors go to ET[(i - i1) * CHUNK_ROWS + r] (k-major for the kernel).
     * Inside a sub-batch of SUB_COLS columns each error updates the sub-batch's later columns
     * at once; the rest of the batch, then the columns beyond it, get the sub-batch's or the
     * batch's errors in one blocked product with the same per-element order (increasing i). */
    float *ET = w->E;
    const lq_gk *g = c->gk;
    for (int64_t i1 = 0; i1 < n; i1 += B) {
        const int64_t i2 = i1 + B < n ? i1 + B : n;
        const float *up = c->u->p + c->u->off[i1 / B];
        for (int64_t s1 = i1; s1 < i2; s1 += SUB_COLS) {
            const int64_t s2 = s1 + SUB_COLS < i2 ? s1 + SUB_COLS : i2;
            for (int64_t i = s1; i < s2; ++i)
                quantize_column(c, w, r0, R, i, i1, s1, s2);
            if (s2 < i2)
                g->mulsub_f32(R, (int)(i2 - s2), (int)(s2 - s1), ET + (s1 - i1) * CHUNK_ROWS,
                              CHUNK_ROWS, up, w->Wc + s2, n);
            up += lq_gk_packed_f32(g, (int)(s2 - s1), (int)(i2 - s2));
        }
        if (i2 < n)
            g->mulsub_f32(R, (int)(n - i2), (int)(i2 - i1), ET, CHUNK_ROWS, up, w->Wc + i2, n);
    }

    int bad = 0;
    for (int r = 0; r < R; ++r) {
        uint8_t *drow = c->dst + (size_t)(r0 + r) * c->row_size;
        const float *Qr = w->Qc + (size_t)r * n;
        for (int64_t g = 0; g < n / G; ++g)
            grid_pack(t, drow + g * t->bsize, w->P + r * nsub + g * (G / S),
                      w->Lc + (size_t)r * n + g * G);
        /* the contract: the blocks decode to exactly the values the errors were taken from */
        if (lq_dequantize_row(t->type, drow, w->tmp, n) != 0)
            bad = 1;
        for (int64_t col = 0; col < n && !bad; ++col)
            if (w->tmp[col] != Qr[col] && memcmp(&w->tmp[col], &Qr[col], sizeof(float)))
                bad = 1;
        if (c->deq)
            memcpy(c->deq + (r0 + r) * n, Qr, (size_t)n * sizeof(float));
    }
    return bad;
}

/* Rows r0..r0+R-1 (all chunks in parallel); 0, 1 internal mismatch, 2 out of memory. */
static int run_chunks(const ctx *c, int nt)
{
    const int64_t nchunks = (c->nrows + CHUNK_ROWS - 1) / CHUNK_ROWS;
    if (nt > nchunks)
        nt = (int)nchunks;
    int status = 0;
#pragma omp parallel num_threads(nt)
    {
        work wk;
        const int mine = work_alloc(&wk, c) ? 2 : 0;
        if (mine) {
#pragma omp atomic write
            status = mine;
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t k = 0; k < nchunks; ++k) {
            int st;
#pragma omp atomic read
            st = status;
            if (st || mine)
                continue;
            const int64_t r0 = k * CHUNK_ROWS;
            const int R = (int)(c->nrows - r0 < CHUNK_ROWS ? c->nrows - r0 : CHUNK_ROWS);
            if (process_chunk(c, &wk, r0, R)) {
#pragma omp atomic write
                status = 1;
            }
        }
        work_free(&wk);
    }
    return status;
}

/* ---------------------------------------------------------------- losses */

/* sg[r], sr[r] = e^T H e for the GPTQ and the rounding errors e of every row r, H = Hs
 * (symmetric, double). Per error vector, T_i = 0 - sum_{j<i} H_ij e_j is one fma chain in
 * increasing j (blocked: LOSS_ROWS rows of W at a time, their 2 x LOSS_ROWS error vectors in
 * the lanes of EL, the rows of H split among the threads), then s = sum over i in order of
 * e_i (H_ii e_i - 2 T_i). 0, or -1 out of memory. */
static int losses(const ctx *c, int nt, double *sg, double *sr)
{
    const int64_t n = c->n, ld = LOSS_LD, nib = (n + LOSS_IB - 1) / LOSS_IB;
    const int type = c->t->type;
    const ptrdiff_t ts = lq_gk_tile_f64(c->gk, n);
    double *EL = malloc((size_t)(n * ld) * sizeof(double));
    double *ELp = malloc(lq_gk_packed_f64(c->gk, n, 2 * LOSS_ROWS) * sizeof(double));
    double *TL = malloc((size_t)(n * ld) * sizeof(double));
    char *ws = aligned_alloc(64, (size_t)nt * LQ_GK_WS);
    uint8_t *rq = malloc((size_t)nt * c->row_size);
    float *QX = malloc((size_t)(2 * LOSS_ROWS) * (size_t)n * sizeof(float));
    const int ok = EL && ELp && TL && ws && rq && QX;
    for (int64_t r0 = 0; ok && r0 < c->nrows; r0 += LOSS_ROWS) {
        const int L = (int)(c->nrows - r0 < LOSS_ROWS ? c->nrows - r0 : LOSS_ROWS);
        const float *W = c->W + r0 * n;
#pragma omp parallel num_threads(nt)
        {
            const int me = omp_get_thread_num();
            /* rows of QX: the decoded GPTQ rows, then llama.cpp's rounding of the same rows */
#pragma omp for schedule(dynamic, 1)
            for (int l = 0; l < L; ++l) {
                uint8_t *q = rq + (size_t)me * c->row_size;
                lq_dequantize_row(type, c->dst + (size_t)(r0 + l) * c->row_size, QX + l * n, n);
                lq_quantize_row(type, W + l * n, q, n, c->qw);
                lq_dequantize_row(type, q, QX + (L + l) * n, n);
            }
            /* EL(col, lane) = W - QX, transposed in blocks of 64 columns */
#pragma omp for schedule(static)
            for (int64_t c0 = 0; c0 < n; c0 += 64) {
                const int64_t c1 = c0 + 64 < n ? c0 + 64 : n;
                for (int l = 0; l < 2 * L; ++l) {
                    const float *w = W + (l < L ? l : l - L) * n, *qx = QX + l * n;
                    for (int64_t col = c0; col < c1; ++col)
                        EL[col * ld + l] = (double)w[col] - qx[col];
                }
            }
            /* EL packed for the products, 64 lanes per work item */
#pragma omp for schedule(static)
            for (int l0 = 0; l0 < 2 * L; l0 += 64)
                c->gk->pack_f64((int)n, 2 * L - l0 < 64 ? 2 * L - l0 : 64, EL + l0, ld,
                                ELp + l0 / c->gk->nr_f64 * ts, 0, ts);
            /* T, largest row blocks of H first */
#pragma omp for schedule(dynamic, 1)
            for (int64_t b = nib - 1; b >= 0; --b) {
                const int64_t i0 = b * LOSS_IB;
                const int mb = (int)(n - i0 < LOSS_IB ? n - i0 : LOSS_IB);
                double *T = TL + i0 * ld;
                for (int i = 0; i < mb; ++i)
                    memset(T + i * ld, 0, (size_t)(2 * L) * sizeof(double));
                if (i0 > 0)
                    c->gk->fnma_f64(mb, 2 * L, (int)i0, c->Hs + i0, c->ldh, ELp, ts, T, ld,
                                    ws + (size_t)me * LQ_GK_WS);
                c->gk->trsm_f64(mb, 2 * L, c->Hs + i0 * c->ldh + i0, c->ldh, EL + i0 * ld, ld, T,
                                ld, NULL);
            }
            /* the sums, lanes in blocks of 32 */
#pragma omp for schedule(static)
            for (int l0 = 0; l0 < 2 * L; l0 += 32) {
                const int l1 = l0 + 32 < 2 * L ? l0 + 32 : 2 * L;
                double sum[32] = {0};
                for (int64_t i = 0; i < n; ++i) {
                    const double hii = c->Hs[i * c->ldh + i];
                    const double *e = EL + i * ld, *t = TL + i * ld;
                    for (int l = l0; l < l1; ++l)
                        sum[l - l0] += e[l] * (hii * e[l] - 2 * t[l]);
                }
                for (int l = l0; l < l1; ++l) {
                    if (l < L)
                        sg[r0 + l] = sum[l - l0];
                    else
                        sr[r0 + l - L] = sum[l - l0];
                }
            }
        }
    }
    free(EL);
    free(ELp);
    free(TL);
    free(ws);
    free(rq);
    free(QX);
    return ok ? 0 : -1;
}

/* ---------------------------------------------------------------- driver */

/* Descending diag(H); ties keep column order, so the permutation is fully determined. */
static int cmp_desc(const void *a, const void *b, void *arg)
{
    const double *diag = arg;
    const int64_t i = *(const int64_t *)a, j = *(const int64_t *)b;
    if (diag[i] != diag[j])
        return diag[i] > diag[j] ? -1 : 1;
    return i < j ? -1 : i > j;
}

/* Row stride of the n x n work matrices: a whole number of cache lines, an odd one, so that
 * a tile's rows spread over the cache sets. */
static uint64_t work_ld(uint64_t n)
{
    const uint64_t lines = (n + 7) / 8;
    return (lines % 2 ? lines : lines + 1) * 8;
}

/* Shape, options and (for a non-empty tensor) input values; one line in msg on the first
 * problem. */
static lq_error check_args(int type, const tinfo *t, const float *W, int64_t nrows,
                           int64_t ncols, const hmat *h, const lq_gptq_opts *o, const void *dst,
                           char *msg)
{
    if (nrows < 0 || ncols <= 0)
        return lq_fail_(msg, LQ_ERR_ARG, "bad shape %lld x %lld", (long long)nrows,
                        (long long)ncols);
    if (ncols % t->group)
        return lq_fail_(msg, LQ_ERR_SHAPE, "%lld columns is not a multiple of the block size %d",
                        (long long)ncols, t->group);
    if (!W || !h->p || !dst)
        return lq_fail_(msg, LQ_ERR_ARG, "NULL W, H or output buffer");
    if (!(o->damp >= 0) || !isfinite(o->damp))
        return lq_fail_(msg, LQ_ERR_ARG, "damping must be finite and >= 0");
    if (o->max_retries < 0 || o->max_retries > MAX_RETRIES)
        return lq_fail_(msg, LQ_ERR_ARG, "max_retries must be 0..%d", MAX_RETRIES);
    if (o->grid < LQ_GPTQ_GRID_AUTO || o->grid > LQ_GPTQ_GRID_WEIGHTED)
        return lq_fail_(msg, LQ_ERR_ARG, "unknown grid mode %d", (int)o->grid);
    const size_t row_size = lq_row_size(type, ncols);
    const uint64_t n = (uint64_t)ncols;
    if (!row_size || n > (1u << 24) || n * work_ld(n) > SIZE_MAX / sizeof(double) ||
        (uint64_t)nrows > SIZE_MAX / row_size || (uint64_t)nrows > SIZE_MAX / sizeof(float) / n)
        return lq_fail_(msg, LQ_ERR_ARG, "tensor too large");
    if (nrows == 0)
        return LQ_OK;
    for (uint64_t i = 0; i < (uint64_t)nrows * n; ++i)
        if (!isfinite(W[i]))
            return lq_fail_(msg, LQ_ERR_ARG, "W has a non-finite value at row %llu column %llu",
                            (unsigned long long)(i / n), (unsigned long long)(i % n));
    for (int64_t i = 0; i < ncols; ++i) {
        for (int64_t j = 0; j <= i; ++j) {
            const double v = h_at(h, i, j);
            if (!isfinite(v))
                return lq_fail_(msg, LQ_ERR_ARG, "H has a non-finite value at (%lld, %lld)",
                                (long long)i, (long long)j);
        }
        if (h_at(h, i, i) < 0)
            return lq_fail_(msg, LQ_ERR_ARG, "H has a negative diagonal entry at %lld",
                            (long long)i);
    }
    return LQ_OK;
}

/* The column block: as asked (default 128), at most the row; without static groups a multiple
 * of the type's group, or the largest power of two below it. */
static int block_cols(const lq_gptq_opts *o, const tinfo *t, int64_t ncols, bool stat)
{
    int B = o->block_size > 0 ? o->block_size : 128;
    if (B > ncols)
        B = (int)ncols;
    if (!stat) {
        if (B >= t->group) {
            B -= B % t->group;
        } else {
            int p = 1;
            while (p * 2 <= B)
                p *= 2;
            B = p;
        }
    }
    return B;
}

/* diag(H) with dead columns (H_ii = 0) set to 1, their flags, the mean, and the float
 * importance for the weighted grid (qw may be NULL). */
static lq_error scan_diag(const hmat *h, int64_t ncols, double *diag, uint8_t *dead, float *qw,
                          lq_gptq_result *res, char *msg)
{
    double sum = 0;
    for (int64_t i = 0; i < ncols; ++i) {
        const double d = h_at(h, i, i);
        dead[i] = d == 0;
        res->dead_cols += dead[i];
        diag[i] = dead[i] ? 1.0 : d;
        sum += diag[i];
        if (qw) {
            qw[i] = (float)diag[i];
            if (!isfinite(qw[i]))
                return lq_fail_(msg, LQ_ERR_ARG, "H_ii at %lld does not fit a float importance",
                                (long long)i);
        }
    }
    res->mean_diag = sum / (double)ncols;
    return LQ_OK;
}

/* U for H (permuted, dead columns, damping), raising the damping 10x after each failure
 * (res: damp, damp_rel, retries). A: n x lda scratch. */
static lq_error factor_u(const hmat *h, const int64_t *perm, const uint8_t *dead,
                         const lq_gptq_opts *o, const lq_gk *gk, double *A, int64_t lda,
                         ulay *u, int nt, lq_gptq_result *res, char *msg)
{
    float *rows = malloc((size_t)nt * (size_t)u->B * (size_t)u->n * sizeof(float));
    if (!rows)
        return lq_fail_(msg, LQ_ERR_NOMEM, "out of memory for the factorization");
    lq_error err = LQ_OK;
    double rel = o->damp;
    for (int attempt = 0;; ++attempt) {
        res->damp_rel = rel;
        res->damp = rel * res->mean_diag;
        res->retries = attempt;
        fill_rev(A, lda, h, perm, dead, res->damp, nt);
        const int fr = lq_gk_chol_inv(gk, A, lda, h->n, nt);
        if (fr == -2) {
            err = lq_fail_(msg, LQ_ERR_NOMEM, "out of memory for the factorization");
            break;
        }
        if (fr == 0 && ulay_fill(u, gk, A, lda, rows, nt) == 0)
            break;
        if (attempt == o->max_retries) {
            err = lq_fail_(msg, LQ_ERR_NUMERIC,
                           "Cholesky of H failed %d times (last damping %.3g x mean diag)",
                           attempt + 1, rel);
            break;
        }
        rel = rel > 0 ? rel * 10 : 0.01;
    }
    free(rows);
    return err;
}

/* The column loop over all rows, then (c->loss) the losses, summed in row order. */
static lq_error solve_rows(const ctx *c, int nt, lq_gptq_result *res, char *msg)
{
    const int status = run_chunks(c, nt);
    if (status == 2)
        return lq_fail_(msg, LQ_ERR_NOMEM, "out of memory for the row workspaces");
    if (status == 1)
        return lq_fail_(msg, LQ_ERR_NUMERIC,
                        "internal: decoded %s blocks differ from the solver's values",
                        gguf_type_info(c->t->type) ? gguf_type_info(c->t->type)->name : "?");
    if (!c->loss)
        return LQ_OK;
    double *sg = malloc((size_t)c->nrows * 2 * sizeof(double));
    if (!sg || losses(c, nt, sg, sg + c->nrows)) {
        free(sg);
        return lq_fail_(msg, LQ_ERR_NOMEM, "out of memory for the losses");
    }
    for (int64_t r = 0; r < c->nrows; ++r) {
        res->loss_gptq += sg[r];
        res->loss_rtn += sg[c->nrows + r];
    }
    free(sg);
    return LQ_OK;
}

static lq_error gptq_run(int type, const float *W, int64_t nrows, int64_t ncols, hmat h,
                         const lq_gptq_opts *opts_in, void *dst, float *deq,
                         lq_gptq_result *res_out, char *msg)
{
    lq_gptq_opts o;
    lq_gptq_result res;
    memset(&res, 0, sizeof res);
    if (res_out)
        *res_out = res;
    if (opts_in)
        o = *opts_in;
    else
        lq_gptq_opts_init(&o);

    tinfo ti;
    if (!get_tinfo(type, &ti))
        return lq_fail_(msg, LQ_ERR_TYPE, "GPTQ cannot write tensor type %d", type);
    const tinfo *t = &ti;
    lq_error err = check_args(type, t, W, nrows, ncols, &h, &o, dst, msg);
    if (err || nrows == 0)
        return err;

    const uint64_t n = (uint64_t)ncols, lda = work_ld(n);
    const bool weighted = lq_gptq_grid_weighted(type, o.grid);
    const bool stat = o.static_groups || o.act_order;
    const int B = block_cols(&o, t, ncols, stat);
    const int nt = o.nthreads > 0 ? o.nthreads : omp_get_max_threads();
    const lq_gk *gk = lq_gk_best();
    res.block_size = B;

    double *diag = malloc(n * sizeof(double));
    uint8_t *dead = malloc(n);
    int64_t *perm = o.act_order ? malloc(n * sizeof(int64_t)) : NULL;
    float *qw = weighted ? malloc(n * sizeof(float)) : NULL;
    double *A = malloc(n * lda * sizeof(double));
    ulay u = {0};
    if (!diag || !dead || (o.act_order && !perm) || (weighted && !qw) || !A ||
        ulay_alloc(&u, gk, ncols, B)) {
        err = lq_fail_(msg, LQ_ERR_NOMEM, "out of memory for a %llu-column Hessian",
                       (unsigned long long)n);
        goto done;
    }
    if ((err = scan_diag(&h, ncols, diag, dead, qw, &res, msg)) != LQ_OK)
        goto done;
    if (perm) {
        for (int64_t i = 0; i < ncols; ++i)
            perm[i] = i;
        qsort_r(perm, n, sizeof *perm, cmp_desc, diag);
    }
    if ((err = factor_u(&h, perm, dead, &o, gk, A, (int64_t)lda, &u, nt, &res, msg)) != LQ_OK)
        goto done;
    if (o.skip_loss) {
        free(A);
        A = NULL;
    } else {
        fill_sym(A, (int64_t)lda, &h, nt); /* the loss's H, in the factorization's buffer */
    }

    const ctx c = {
        .t = t, .W = W, .nrows = nrows, .n = ncols, .Hs = A, .ldh = (int64_t)lda, .u = &u,
        .gk = gk, .perm = perm, .dead = dead, .qw = qw, .stat = stat, .B = B,
        .loss = !o.skip_loss, .dst = dst, .row_size = lq_row_size(type, ncols), .deq = deq,
    };
    err = solve_rows(&c, nt, &res, msg);

done:
    free(diag);
    free(dead);
    free(perm);
    free(qw);
    free(A);
    ulay_free(&u);
    if (res_out)
        *res_out = res;
    return err;
}

lq_error lq_gptq_quantize(int type, const float *W, int64_t nrows, int64_t ncols,
                          const double *H, const lq_gptq_opts *opts, void *dst, float *deq,
                          lq_gptq_result *res, char *msg)
{
    const hmat h = {H, true, ncols};
    return gptq_run(type, W, nrows, ncols, h, opts, dst, deq, res, msg);
}

lq_error lq_gptq_quantize_f32(int type, const float *W, int64_t nrows, int64_t ncols,
                              const float *H, const lq_gptq_opts *opts, void *dst, float *deq,
                              lq_gptq_result *res, char *msg)
{
    const hmat h = {H, false, ncols};
    return gptq_run(type, W, nrows, ncols, h, opts, dst, deq, res, msg);
}
