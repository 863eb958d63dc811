/* GPTQ calibration through the runtime (see calib.h). */
#include <cblas.h>
#include <omp.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "libquant/lq.h"
#include "runtime/calib.h"
#include "runtime/rt_internal.h"
#include "tokenizer/tokenizer.h"

#define HESS_MAX_N 65536
#define HESS_BLOCK_ROWS 1024 /* rows summed per dsyrk call */

static rt_error fail(char *msg, rt_error e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static rt_error fail(char *msg, rt_error e, const char *fmt, ...)
{
    if (msg) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, RT_MSG_SIZE, fmt, ap);
        va_end(ap);
        rt_msg_clean_(msg);
    }
    return e;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---------------------------------------------------------------- Hessians */

struct rt_hess {
    int n;
    int64_t count;   /* rows added, pending ones included */
    int pending;     /* rows waiting in xd */
    double *S;       /* sum of x x^T over flushed rows, lower triangle */
    double *H;       /* scaled, full */
    double *xd;      /* HESS_BLOCK_ROWS x n rows not yet in S */
};

rt_hess *rt_hess_create(int n)
{
    if (n < 1 || n > HESS_MAX_N)
        return NULL;
    rt_hess *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    const size_t nn = (size_t)n * (size_t)n;
    h->n = n;
    h->S = calloc(nn, sizeof(double));
    h->H = malloc(nn * sizeof(double));
    h->xd = malloc((size_t)HESS_BLOCK_ROWS * (size_t)n * sizeof(double));
    if (!h->S || !h->H || !h->xd) {
        rt_hess_free(h);
        return NULL;
    }
    return h;
}

void rt_hess_free(rt_hess *h)
{
    if (!h)
        return;
    free(h->S);
    free(h->H);
    free(h->xd);
    free(h);
}

void rt_hess_reset(rt_hess *h)
{
    if (!h)
        return;
    memset(h->S, 0, (size_t)h->n * (size_t)h->n * sizeof(double));
    h->count = 0;
    h->pending = 0;
}

int64_t rt_hess_count(const rt_hess *h)
{
    return h ? h->count : 0;
}

/* S += X^T X for the pending rows. Rows are summed in blocks of HESS_BLOCK_ROWS whatever
 * the sizes of the add calls, and OpenBLAS splits a dsyrk over the output only, so S does not
 * depend on how the rows arrived or on thread counts. */
static void hess_flush(rt_hess *h)
{
    if (h->pending)
        cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, h->n, h->pending, 1.0, h->xd, h->n,
                    1.0, h->S, h->n);
    h->pending = 0;
}

rt_error rt_hess_add(rt_hess *h, const float *x, int rows, char *msg)
{
    if (!h || (!x && rows) || rows < 0)
        return fail(msg, RT_ERR_ARG, "rt_hess_add: bad arguments");
    const size_t n = (size_t)h->n;
    for (size_t i = 0; i < (size_t)rows * n; ++i)
        if (!isfinite(x[i]))
            return fail(msg, RT_ERR_ARG, "non-finite activation at row %zu column %zu", i / n,
                        i % n);
    for (int r = 0; r < rows; ++r) {
        if (h->pending == HESS_BLOCK_ROWS)
            hess_flush(h);
        double *d = h->xd + (size_t)h->pending * n;
        const float *xs = x + (size_t)r * n;
        for (size_t j = 0; j < n; ++j)
            d[j] = xs[j];
        h->pending++;
        h->count++;
    }
    return RT_OK;
}

const double *rt_hess_matrix(rt_hess *h)
{
    hess_flush(h);
    const size_t n = (size_t)h->n;
    const double s = h->count ? 2.0 / (double)h->count : 0.0;
    for (size_t i = 0; i < n; ++i)
        for (size_t j = 0; j <= i; ++j)
            h->H[i * n + j] = h->H[j * n + i] = h->S[i * n + j] * s;
    return h->H;
}

/* C += xf^T xq over row pairs, in blocks of HESS_BLOCK_ROWS (the asymmetric target's cross
 * term; same blocking as the Hessian, so the sum does not depend on how rows arrive). */
typedef struct {
    int n, pending;
    int64_t count;
    double *C, *xf, *xq;
} cross_acc;

static void cross_free(cross_acc *c)
{
    if (!c)
        return;
    free(c->C);
    free(c->xf);
    free(c->xq);
    free(c);
}

static cross_acc *cross_create(int n)
{
    cross_acc *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->n = n;
    c->C = calloc((size_t)n * (size_t)n, sizeof(double));
    c->xf = malloc((size_t)HESS_BLOCK_ROWS * (size_t)n * sizeof(double));
    c->xq = malloc((size_t)HESS_BLOCK_ROWS * (size_t)n * sizeof(double));
    if (!c->C || !c->xf || !c->xq) {
        cross_free(c);
        return NULL;
    }
    return c;
}

static void cross_flush(cross_acc *c)
{
    if (c->pending)
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, c->n, c->n, c->pending, 1.0, c->xf,
                    c->n, c->xq, c->n, 1.0, c->C, c->n);
    c->pending = 0;
}

static void cross_add(cross_acc *c, const float *xf, const float *xq, int rows)
{
    const size_t n = (size_t)c->n;
    for (int r = 0; r < rows; ++r) {
        if (c->pending == HESS_BLOCK_ROWS)
            cross_flush(c);
        double *df = c->xf + (size_t)c->pending * n, *dq = c->xq + (size_t)c->pending * n;
        for (size_t j = 0; j < n; ++j) {
            df[j] = xf[(size_t)r * n + j];
            dq[j] = xq[(size_t)r * n + j];
        }
        c->pending++;
        c->count++;
    }
}

/* ---------------------------------------------------------------- chunks */

int32_t *rt_calib_chunks(const int32_t *tokens, size_t n_tokens, int n_ctx, int32_t bos,
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

int32_t *rt_calib_sample(const int32_t *tokens, size_t n_tokens, int n_ctx, int32_t bos,
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

/* ---------------------------------------------------------------- importance statistics */

typedef struct {
    char name[GGUF_MAX_NAME];
    int cols;
    int64_t count;
    double *s2, *s1; /* sum x^2, sum x per column */
} im_entry;

struct rt_imatrix {
    im_entry *e;
    size_t n, cap;
};

rt_imatrix *rt_imatrix_create(void)
{
    return calloc(1, sizeof(rt_imatrix));
}

void rt_imatrix_free(rt_imatrix *im)
{
    if (!im)
        return;
    for (size_t i = 0; i < im->n; ++i) {
        free(im->e[i].s2);
        free(im->e[i].s1);
    }
    free(im->e);
    free(im);
}

size_t rt_imatrix_n_entries(const rt_imatrix *im)
{
    return im ? im->n : 0;
}

static im_entry *im_find(const rt_imatrix *im, const char *name)
{
    for (size_t i = 0; i < im->n; ++i)
        if (!strcmp(im->e[i].name, name))
            return &im->e[i];
    return NULL;
}

rt_error rt_imatrix_add(rt_imatrix *im, const char *name, const float *x, int rows, int cols,
                        char *msg)
{
    if (!im || !name || strlen(name) >= GGUF_MAX_NAME || (!x && rows) || rows < 0 || cols < 1)
        return fail(msg, RT_ERR_ARG, "rt_imatrix_add: bad arguments");
    const size_t n = (size_t)cols;
    for (size_t i = 0; i < (size_t)rows * n; ++i)
        if (!isfinite(x[i]))
            return fail(msg, RT_ERR_ARG, "%s: non-finite activation at row %zu column %zu", name,
                        i / n, i % n);
    im_entry *e = im_find(im, name);
    if (e && e->cols != cols)
        return fail(msg, RT_ERR_ARG, "%s: %d columns, earlier %d", name, cols, e->cols);
    if (!e) {
        if (im->n == im->cap) {
            const size_t cap = im->cap ? 2 * im->cap : 16;
            im_entry *ne = realloc(im->e, cap * sizeof *ne);
            if (!ne)
                return fail(msg, RT_ERR_NOMEM, "out of memory");
            im->e = ne;
            im->cap = cap;
        }
        e = &im->e[im->n];
        memset(e, 0, sizeof *e);
        snprintf(e->name, sizeof e->name, "%s", name);
        e->cols = cols;
        e->s2 = calloc(n, sizeof(double));
        e->s1 = calloc(n, sizeof(double));
        if (!e->s2 || !e->s1) {
            free(e->s2);
            free(e->s1);
            return fail(msg, RT_ERR_NOMEM, "out of memory");
        }
        im->n++;
    }
    for (int r = 0; r < rows; ++r) {
        const float *xr = x + (size_t)r * n;
        for (size_t j = 0; j < n; ++j) {
            const double v = xr[j];
            e->s2[j] += v * v;
            e->s1[j] += v;
        }
    }
    e->count += rows;
    return RT_OK;
}

const double *rt_imatrix_sums(const rt_imatrix *im, const char *name, int *cols,
                              const double **sum, int64_t *count)
{
    const im_entry *e = im && name ? im_find(im, name) : NULL;
    if (!e)
        return NULL;
    if (cols)
        *cols = e->cols;
    if (sum)
        *sum = e->s1;
    if (count)
        *count = e->count;
    return e->s2;
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp((*(const im_entry *const *)a)->name, (*(const im_entry *const *)b)->name);
}

/* The entries in name order (malloc'ed array of pointers), or NULL when out of memory. */
static const im_entry **im_sorted(const rt_imatrix *im)
{
    const im_entry **v = malloc((im->n ? im->n : 1) * sizeof *v);
    if (!v)
        return NULL;
    for (size_t i = 0; i < im->n; ++i)
        v[i] = &im->e[i];
    qsort(v, im->n, sizeof *v, cmp_entry);
    return v;
}

rt_error rt_imatrix_declare(const rt_imatrix *im, gguf_writer *w, const char *dataset,
                            uint32_t chunk_count, uint32_t chunk_size, char *msg)
{
    if (!im || !w || !dataset)
        return fail(msg, RT_ERR_ARG, "rt_imatrix_declare: bad arguments");
    if (im->n == 0)
        return fail(msg, RT_ERR_ARG, "no importance data was collected");
    gguf_error ge = gguf_writer_set_str(w, "general.type", "imatrix");
    if (ge == GGUF_OK)
        ge = gguf_writer_set_str_array(w, "imatrix.datasets", &dataset, 1);
    if (ge == GGUF_OK)
        ge = gguf_writer_set_u32(w, "imatrix.chunk_count", chunk_count);
    if (ge == GGUF_OK)
        ge = gguf_writer_set_u32(w, "imatrix.chunk_size", chunk_size);
    if (ge != GGUF_OK)
        return fail(msg, ge == GGUF_ERR_NOMEM ? RT_ERR_NOMEM : RT_ERR_ARG,
                    "imatrix metadata: %s", gguf_strerror(ge));
    const im_entry **v = im_sorted(im);
    if (!v)
        return fail(msg, RT_ERR_NOMEM, "out of memory");
    rt_error e = RT_OK;
    for (size_t i = 0; i < im->n && e == RT_OK; ++i) {
        static const char *const suffix[3] = {"in_sum2", "counts", "in_sum"};
        for (int k = 0; k < 3 && e == RT_OK; ++k) {
            char name[GGUF_MAX_NAME + 16], gmsg[GGUF_MSG_SIZE];
            snprintf(name, sizeof name, "%s.%s", v[i]->name, suffix[k]);
            const int64_t ne[1] = {k == 1 ? 1 : v[i]->cols};
            ge = gguf_writer_add_tensor(w, name, 1, ne, GGUF_F32, gmsg);
            if (ge != GGUF_OK)
                e = fail(msg, ge == GGUF_ERR_NOMEM ? RT_ERR_NOMEM : RT_ERR_ARG, "%s", gmsg);
        }
    }
    free(v);
    return e;
}

rt_error rt_imatrix_write_data(const rt_imatrix *im, gguf_writer *w, char *msg)
{
    if (!im || !w)
        return fail(msg, RT_ERR_ARG, "rt_imatrix_write_data: bad arguments");
    const im_entry **v = im_sorted(im);
    int maxc = 1;
    for (size_t i = 0; i < im->n; ++i)
        maxc = im->e[i].cols > maxc ? im->e[i].cols : maxc;
    float *buf = malloc((size_t)maxc * sizeof(float));
    rt_error e = RT_OK;
    if (!v || !buf)
        e = fail(msg, RT_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < im->n && e == RT_OK; ++i) {
        for (int k = 0; k < 3 && e == RT_OK; ++k) {
            const int n = k == 1 ? 1 : v[i]->cols;
            for (int j = 0; j < n; ++j)
                buf[j] = k == 1 ? (float)v[i]->count : (float)(k == 0 ? v[i]->s2[j] : v[i]->s1[j]);
            char gmsg[GGUF_MSG_SIZE];
            gguf_error ge = gguf_writer_write(w, buf, (size_t)n * sizeof(float), gmsg);
            if (ge != GGUF_OK)
                e = fail(msg, RT_ERR_IO, "%s", gmsg);
        }
    }
    free(v);
    free(buf);
    return e;
}

/* ---------------------------------------------------------------- sequential GPTQ */

void rt_calib_opts_init(rt_calib_opts *o)
{
    memset(o, 0, sizeof *o);
    lq_gptq_opts_init(&o->gptq);
    o->default_type = GGUF_Q4_K;
}

/* The groups in the order GPTQ visits them inside a layer. */
static const struct {
    rt_hook_point point;
    const char *names[3];
} k_groups[] = {
    {RT_HOOK_ATTN_QKV, {"attn_q", "attn_k", "attn_v"}},
    {RT_HOOK_ATTN_OUT, {"attn_output", NULL, NULL}},
    {RT_HOOK_FFN_GATE_UP, {"ffn_gate", "ffn_up", NULL}},
    {RT_HOOK_FFN_DOWN, {"ffn_down", NULL, NULL}},
};

typedef struct {
    int layer;
    rt_hook_point point;
    rt_hess *h;               /* NULL: importance only */
    int cols;                 /* expected input width */
    rt_error err;             /* first failure inside the hook */
    int seen;
    char *msg;
    rt_imatrix *im;           /* or NULL */
    char names[3][GGUF_MAX_NAME]; /* the group's weights, for im */
    int n_names;
    float *capture;           /* or NULL: receives a copy of the input (n_ctx x cols) */
    double seconds;           /* spent in the accumulation */
} collect_state;

static int collect_hook(void *user, int layer, rt_hook_point point, const float *x, int n_tokens,
                        int n_cols)
{
    collect_state *s = user;
    if (layer != s->layer || point != s->point)
        return 0;
    const double t0 = now();
    s->seen = 1;
    if (n_cols != s->cols)
        s->err = fail(s->msg, RT_ERR_MODEL, "layer %d: the runtime feeds %d columns, the "
                      "weights have %d", layer, n_cols, s->cols);
    else if (s->h)
        s->err = rt_hess_add(s->h, x, n_tokens, s->msg);
    if (s->capture && s->err == RT_OK)
        memcpy(s->capture, x, (size_t)n_tokens * (size_t)n_cols * sizeof(float));
    for (int k = 0; k < s->n_names && s->err == RT_OK; ++k)
        s->err = rt_imatrix_add(s->im, s->names[k], x, n_tokens, n_cols, s->msg);
    s->seconds += now() - t0;
    return 1; /* the rest of the layer is not needed */
}

static rt_error map_lq(lq_error e)
{
    switch (e) {
    case LQ_ERR_NOMEM: return RT_ERR_NOMEM;
    case LQ_ERR_TYPE:
    case LQ_ERR_SHAPE: return RT_ERR_ARG;
    default: return RT_ERR_MODEL;
    }
}

typedef struct {
    char name[GGUF_MAX_NAME];
    int64_t idx, rows, cols;
    int type;
    const float *target; /* asymmetric target, during do_tensor */
} job;

/* In place: the lower triangle of A (n x n, symmetric) := L with A = L L^T. -1 when A is not
 * (numerically) positive definite. */
static int chol_lower(double *A, int64_t n)
{
    for (int64_t j = 0; j < n; ++j) {
        double d = A[j * n + j];
        for (int64_t k = 0; k < j; ++k)
            d -= A[j * n + k] * A[j * n + k];
        if (!(d > 0) || !isfinite(d))
            return -1;
        const double ljj = sqrt(d);
        A[j * n + j] = ljj;
        for (int64_t i = j + 1; i < n; ++i) {
            double v = A[i * n + j];
            const double *ri = A + i * n, *rj = A + j * n;
            for (int64_t k = 0; k < j; ++k)
                v -= ri[k] * rj[k];
            A[i * n + j] = v / ljj;
        }
    }
    return 0;
}

/* The asymmetric target: Wt := W + W (C - H) Hd^-1 (rows x n, in place of W), Hd = H + lambda I
 * with lambda = damp * mean diag(H) (a dead column counts as 1, as in the solver). This
 * minimizes ||W X_f - Wt X_q||^2 + lambda ||Wt - W||^2. -1 when Hd is not positive definite,
 * -2 when out of memory. */
static int asym_target(float *W, int64_t rows, int64_t n, const double *H, const double *C,
                       double damp)
{
    const size_t nn = (size_t)n * (size_t)n, nr = (size_t)rows * (size_t)n;
    double *A = malloc(nn * sizeof(double)), *D = malloc(nn * sizeof(double));
    double *Wd = malloc(nr * sizeof(double)), *M = malloc(nr * sizeof(double));
    int rc = 0;
    if (!A || !D || !Wd || !M) {
        rc = -2;
        goto out;
    }
    double mean = 0;
    for (int64_t i = 0; i < n; ++i)
        mean += H[i * n + i] > 0 ? H[i * n + i] : 1.0;
    mean /= (double)n;
    memcpy(A, H, nn * sizeof(double));
    for (size_t i = 0; i < nn; ++i)
        D[i] = C[i] - H[i];
    for (int64_t i = 0; i < n; ++i)
        A[i * n + i] = (H[i * n + i] > 0 ? H[i * n + i] : 1.0) + damp * mean;
    for (size_t i = 0; i < nr; ++i)
        Wd[i] = W[i];
    /* M (n x rows) = D^T W^T, then M := Hd^-1 M through the Cholesky factor */
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasTrans, (int)n, (int)rows, (int)n, 1.0, D, (int)n,
                Wd, (int)n, 0.0, M, (int)rows);
    if (chol_lower(A, n)) {
        rc = -1;
        goto out;
    }
    cblas_dtrsm(CblasRowMajor, CblasLeft, CblasLower, CblasNoTrans, CblasNonUnit, (int)n,
                (int)rows, 1.0, A, (int)n, M, (int)rows);
    cblas_dtrsm(CblasRowMajor, CblasLeft, CblasLower, CblasTrans, CblasNonUnit, (int)n,
                (int)rows, 1.0, A, (int)n, M, (int)rows);
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t j = 0; j < n; ++j) {
            const float v = (float)(Wd[r * n + j] + M[j * rows + r]);
            if (!isfinite(v)) {
                rc = -1;
                goto out;
            }
            W[r * n + j] = v;
        }
out:
    free(A);
    free(D);
    free(Wd);
    free(M);
    return rc;
}

/* sum_r (T_r - Q_r) H (T_r - Q_r)^T over rows (T, Q rows x n floats). */
static double hloss(const float *T, const float *Q, int64_t rows, int64_t n, const double *H)
{
    double *e = malloc((size_t)n * sizeof(double)), *he = malloc((size_t)n * sizeof(double));
    double acc = 0;
    if (!e || !he) {
        free(e);
        free(he);
        return NAN;
    }
    for (int64_t r = 0; r < rows; ++r) {
        for (int64_t j = 0; j < n; ++j)
            e[j] = (double)T[r * n + j] - Q[r * n + j];
        cblas_dsymv(CblasRowMajor, CblasLower, (int)n, 1.0, H, (int)n, e, 1, 0.0, he, 1);
        acc += cblas_ddot((int)n, e, 1, he, 1);
    }
    free(e);
    free(he);
    return acc;
}

/* *loss := the objective's excess for llama.cpp's plain rounding of W (the solver's grid rule:
 * importance diag(H) when the grid is weighted), measured against the target Wt = W + (W' - W)
 * that the solver was given: sum_r (Wt_r - R_r) H (Wt_r - R_r)^T. W is kept. */
static lq_error asym_rtn_loss(const job *jb, const float *W, const double *H,
                              const lq_gptq_opts *go, double *loss, char *lmsg)
{
    const int64_t rows = jb->rows, n = jb->cols;
    const size_t rs = lq_row_size(jb->type, n), nel = (size_t)rows * (size_t)n;
    const lq_type_traits *tt = lq_type_traits_of(jb->type);
    const bool kq = tt && tt->gptq_grid == LQ_GRID_KQUANT;
    const bool weighted = go->grid == LQ_GPTQ_GRID_WEIGHTED ||
                          (go->grid == LQ_GPTQ_GRID_AUTO && kq);
    void *rq = malloc((size_t)rows * rs);
    float *R = malloc(nel * sizeof(float)), *qw = malloc((size_t)n * sizeof(float));
    lq_error le = LQ_OK;
    if (!rq || !R || !qw)
        le = LQ_ERR_NOMEM;
    for (int64_t j = 0; le == LQ_OK && j < n; ++j)
        qw[j] = (float)(H[j * n + j] > 0 ? H[j * n + j] : 1.0);
    if (le == LQ_OK)
        le = lq_quantize_rows(jb->type, W, rq, rows, n, weighted ? qw : NULL, 1, lmsg);
    for (int64_t r = 0; le == LQ_OK && r < rows; ++r)
        if (lq_dequantize_row(jb->type, (const char *)rq + (size_t)r * rs, R + (size_t)r * n, n))
            le = LQ_ERR_TYPE;
    free(rq);
    free(qw);
    *loss = 0;
    if (le == LQ_OK)
        *loss = hloss(jb->target, R, rows, n, H);
    free(R);
    return le;
}

/* Quantize one tensor on H, swap it into m, hand it to emit; *info receives the figures. */
static rt_error do_tensor(rt_model *m, inp_source *src, const job *jb, int layer,
                          const double *H, const double *C, int64_t hess_rows,
                          const rt_calib_opts *o, rt_calib_stats *st, rt_calib_info *info,
                          char *msg)
{
    const size_t rs = lq_row_size(jb->type, jb->cols);
    if (!rs)
        return fail(msg, RT_ERR_ARG, "%s: %lld columns do not fit %s blocks", jb->name,
                    (long long)jb->cols, gguf_type_info(jb->type)->name);
    if ((uint64_t)jb->rows > SIZE_MAX / rs ||
        (uint64_t)jb->rows > SIZE_MAX / sizeof(float) / 2 / (uint64_t)jb->cols)
        return fail(msg, RT_ERR_ARG, "%s: tensor too large", jb->name);
    const size_t nel = (size_t)jb->rows * (size_t)jb->cols;
    double t0 = now();
    float *W = malloc((C ? 3 : 2) * nel * sizeof(float)), *deq = W ? W + nel : NULL;
    float *Wt = C && W ? W + 2 * nel : NULL; /* the asymmetric target */
    void *q = malloc((size_t)jb->rows * rs);
    rt_error e = RT_OK;
    if (!W || !q) {
        e = fail(msg, RT_ERR_NOMEM, "%s: out of memory", jb->name);
        goto out;
    }
    char smsg[INP_MSG_SIZE];
    inp_error se = inp_read_f32(src, jb->idx, 0, jb->rows, W, smsg);
    if (se != INP_OK) {
        e = fail(msg, se == INP_ERR_NOMEM ? RT_ERR_NOMEM : RT_ERR_MODEL,
                 "%s: GPTQ needs float weights: %s", jb->name, smsg);
        goto out;
    }
    inp_release(src, jb->idx);
    memset(info, 0, sizeof *info);
    info->name = jb->name;
    info->layer = layer;
    info->type = jb->type;
    info->rows = jb->rows;
    info->cols = jb->cols;
    info->hess_rows = hess_rows;
    char lmsg[LQ_MSG_SIZE];
    const lq_gptq_opts go = o->gptq;
    double t1 = now();
    st->other += t1 - t0;
    if (Wt) {
        memcpy(Wt, W, nel * sizeof(float));
        const int rc = asym_target(Wt, jb->rows, jb->cols, H, C, go.damp);
        if (rc) {
            e = rc == -2 ? fail(msg, RT_ERR_NOMEM, "%s: out of memory", jb->name)
                         : fail(msg, RT_ERR_MODEL, "%s: the asymmetric target is not "
                                "defined (H + damping not positive definite)", jb->name);
            goto out;
        }
    }
    job jt = *jb;
    jt.target = Wt;
    lq_error le = lq_gptq_quantize(jb->type, Wt ? Wt : W, jb->rows, jb->cols, H, &go, q,
                                   deq, &info->res, lmsg);
    if (le == LQ_OK && Wt && !go.skip_loss)
        le = asym_rtn_loss(&jt, W, H, &go, &info->res.loss_rtn, lmsg);
    t0 = now();
    st->solver += t0 - t1;
    st->retries += info->res.retries;
    if (le != LQ_OK) {
        e = fail(msg, map_lq(le), "%s: GPTQ: %s", jb->name, lmsg);
        goto out;
    }
    double sq = 0;
    for (size_t i = 0; i < nel; ++i) {
        const double d = (double)W[i] - deq[i];
        sq += d * d;
    }
    info->rmse = nel ? sqrt(sq / (double)nel) : 0;
    st->n_tensors++;
    if ((e = rt_model_set_weight(m, jb->name, jb->type, q, msg)) != RT_OK)
        goto out;
    if (o->emit && o->emit(o->user, info, q, (size_t)jb->rows * rs))
        e = fail(msg, RT_ERR_HOOK, "%s: stopped by the caller", jb->name);
out:
    st->other += now() - t0;
    free(W);
    free(q);
    return e;
}

/* Run layer l of one model on a copy of one chunk's hidden states until the hook has seen
 * the group's input. */
static rt_error collect_chunk(rt_model *m, int l, const float *hidden, float *tmp, size_t per,
                              int n_ctx, collect_state *cs, const char *what,
                              rt_calib_stats *st, char *msg)
{
    const rt_hook hook = {collect_hook, cs};
    memcpy(tmp, hidden, per * sizeof(float));
    cs->seen = 0;
    char lmsg[RT_MSG_SIZE];
    const double t0 = now(), h0 = cs->seconds;
    rt_error e = rt_layer_forward(m, l, tmp, n_ctx, &hook, lmsg);
    st->forward += now() - t0 - (cs->seconds - h0);
    if (cs->err != RT_OK)
        return cs->err;
    if (e != RT_ERR_HOOK || !cs->seen) {
        if (e == RT_OK)
            return fail(msg, RT_ERR_MODEL, "layer %d: the runtime never reached the "
                        "inputs of %s", l, what);
        return fail(msg, e, "%s", lmsg);
    }
    return RT_OK;
}

/* The float reference of the asymmetric target: a float model, its hidden states, and the
 * two inputs of the current chunk. */
typedef struct {
    rt_model *mf;
    float *hidden;   /* n_chunks x per */
    float *xf, *xq;  /* n_ctx x n_ff at most */
} asym_ref;

rt_error rt_calib_gptq(rt_model *m, inp_source *src, const int32_t *chunks, int n_chunks,
                       int n_ctx, const rt_calib_opts *o_in, char *msg)
{
    const double t_start = now();
    rt_calib_opts o;
    if (o_in)
        o = *o_in;
    else
        rt_calib_opts_init(&o);
    rt_calib_stats st;
    memset(&st, 0, sizeof st);
    if (!m || !src || !chunks || n_chunks < 1 || n_ctx < 1 || n_ctx > RT_MAX_TOKENS)
        return fail(msg, RT_ERR_ARG, "rt_calib_gptq: bad arguments");
    const rt_hparams *hp = rt_model_hparams(m);
    const size_t E = (size_t)hp->n_embd, per = (size_t)n_ctx * E;
    if ((size_t)n_chunks > SIZE_MAX / sizeof(float) / per)
        return fail(msg, RT_ERR_ARG, "too many calibration chunks");
    st.tokens = (int64_t)n_chunks * n_ctx;
    float *hidden = malloc((size_t)n_chunks * per * sizeof(float));
    float *tmp = malloc(per * sizeof(float));
    rt_hess *hess = NULL;
    cross_acc *cross = NULL;
    asym_ref ar;
    memset(&ar, 0, sizeof ar);
    rt_error e = RT_OK;
    if (!hidden || !tmp) {
        e = fail(msg, RT_ERR_NOMEM, "out of memory for %d chunks of hidden states", n_chunks);
        goto out;
    }
    if (o.asym) {
        const size_t wmax = (size_t)n_ctx * (size_t)(hp->n_ff > hp->n_head * hp->head_dim
                                                         ? (hp->n_ff > hp->n_embd ? hp->n_ff : hp->n_embd)
                                                         : hp->n_head * hp->head_dim);
        if ((e = rt_model_load(src, &ar.mf, msg)) != RT_OK)
            goto out;
        rt_model_set_threads(ar.mf, o.gptq.nthreads);
        ar.hidden = malloc((size_t)n_chunks * per * sizeof(float));
        ar.xf = malloc(wmax * sizeof(float));
        ar.xq = malloc(wmax * sizeof(float));
        if (!ar.hidden || !ar.xf || !ar.xq) {
            e = fail(msg, RT_ERR_NOMEM, "out of memory for the float reference");
            goto out;
        }
    }
    double t0 = now();
    for (int c = 0; c < n_chunks && e == RT_OK; ++c)
        e = rt_embed(m, chunks + (size_t)c * n_ctx, n_ctx, hidden + (size_t)c * per, msg);
    for (int c = 0; ar.mf && c < n_chunks && e == RT_OK; ++c)
        e = rt_embed(ar.mf, chunks + (size_t)c * n_ctx, n_ctx, ar.hidden + (size_t)c * per, msg);
    st.forward += now() - t0;
    if (e != RT_OK)
        goto out;

    for (int l = 0; l < hp->n_layer; ++l) {
        for (size_t g = 0; g < sizeof k_groups / sizeof k_groups[0]; ++g) {
            job jobs[3];
            int nj = 0;
            for (int k = 0; k < 3 && k_groups[g].names[k]; ++k) {
                job *jb = &jobs[nj];
                snprintf(jb->name, sizeof jb->name, "blk.%d.%s.weight", l, k_groups[g].names[k]);
                jb->idx = inp_find_tensor(src, jb->name);
                if (jb->idx < 0) {
                    e = fail(msg, RT_ERR_MODEL, "%s: not in the tensor source", jb->name);
                    goto out;
                }
                const inp_tensor *t = inp_tensor_at(src, jb->idx);
                if (t->n_dims != 2) {
                    e = fail(msg, RT_ERR_MODEL, "%s: not a matrix", jb->name);
                    goto out;
                }
                jb->cols = t->ne[0];
                jb->rows = t->ne[1];
                jb->type = o.type_of ? o.type_of(o.user, jb->name, jb->cols, jb->rows)
                                     : o.default_type;
                if (jb->type < 0)
                    continue;
                if (!lq_gptq_supports(jb->type)) {
                    e = fail(msg, RT_ERR_ARG, "%s: GPTQ cannot write type %d", jb->name,
                             jb->type);
                    goto out;
                }
                if (nj > 0 && jb->cols != jobs[0].cols) {
                    e = fail(msg, RT_ERR_MODEL, "%s: %lld columns, its group has %lld",
                             jb->name, (long long)jb->cols, (long long)jobs[0].cols);
                    goto out;
                }
                ++nj;
            }
            if (nj == 0)
                continue;

            hess = rt_hess_create((int)jobs[0].cols);
            if (!hess) {
                e = fail(msg, RT_ERR_NOMEM, "out of memory for a %lld-column Hessian",
                         (long long)jobs[0].cols);
                goto out;
            }
            collect_state cs;
            memset(&cs, 0, sizeof cs);
            cs.layer = l;
            cs.point = k_groups[g].point;
            cs.h = hess;
            cs.cols = (int)jobs[0].cols;
            cs.msg = msg;
            if (o.imatrix) {
                /* every weight of the group sees this input, quantized or not */
                cs.im = o.imatrix;
                for (int k = 0; k < 3 && k_groups[g].names[k]; ++k)
                    snprintf(cs.names[cs.n_names++], GGUF_MAX_NAME, "blk.%d.%s.weight", l,
                             k_groups[g].names[k]);
            }
            collect_state cf; /* the float model's side: capture only */
            memset(&cf, 0, sizeof cf);
            cf.layer = l;
            cf.point = k_groups[g].point;
            cf.cols = cs.cols;
            cf.msg = msg;
            cf.capture = ar.xf;
            cs.capture = ar.xq;
            if (ar.mf && !(cross = cross_create(cs.cols))) {
                e = fail(msg, RT_ERR_NOMEM, "out of memory for a %d-column cross term", cs.cols);
                goto out;
            }
            for (int c = 0; c < n_chunks; ++c) {
                if ((e = collect_chunk(m, l, hidden + (size_t)c * per, tmp, per, n_ctx, &cs,
                                       jobs[0].name, &st, msg)) != RT_OK)
                    goto out;
                if (!ar.mf)
                    continue;
                if ((e = collect_chunk(ar.mf, l, ar.hidden + (size_t)c * per, tmp, per, n_ctx,
                                       &cf, jobs[0].name, &st, msg)) != RT_OK)
                    goto out;
                t0 = now();
                cross_add(cross, ar.xf, ar.xq, n_ctx);
                st.hessian += now() - t0;
            }
            t0 = now();
            const double *H = rt_hess_matrix(hess);
            double *C = NULL;
            if (cross) {
                /* scaled like H: 2/N sum x_f x_q^T */
                cross_flush(cross);
                C = cross->C;
                const double sc = cross->count ? 2.0 / (double)cross->count : 0.0;
                for (size_t i = 0; i < (size_t)cs.cols * (size_t)cs.cols; ++i)
                    C[i] *= sc;
            }
            st.hessian += cs.seconds + cf.seconds + (now() - t0);
            rt_calib_info infos[3];
            for (int k = 0; k < nj; ++k)
                if ((e = do_tensor(m, src, &jobs[k], l, H, C, rt_hess_count(hess), &o, &st,
                                   &infos[k], msg)) != RT_OK)
                    goto out;
            rt_hess_free(hess);
            hess = NULL;
            cross_free(cross);
            cross = NULL;
            if (o.group_done && o.group_done(o.user, l, hp->n_layer, infos, nj)) {
                e = fail(msg, RT_ERR_HOOK, "layer %d: stopped by the caller", l);
                goto out;
            }
        }
        /* the layer with all its quantized weights feeds the next one */
        t0 = now();
        for (int c = 0; c < n_chunks && e == RT_OK; ++c)
            e = rt_layer_forward(m, l, hidden + (size_t)c * per, n_ctx, NULL, msg);
        for (int c = 0; ar.mf && c < n_chunks && e == RT_OK; ++c)
            e = rt_layer_forward(ar.mf, l, ar.hidden + (size_t)c * per, n_ctx, NULL, msg);
        st.forward += now() - t0;
        if (e != RT_OK)
            goto out;
    }
out:
    rt_hess_free(hess);
    cross_free(cross);
    rt_model_free(ar.mf);
    free(ar.hidden);
    free(ar.xf);
    free(ar.xq);
    free(hidden);
    free(tmp);
    st.total = now() - t_start;
    if (o.stats)
        *o.stats = st;
    return e;
}

/* Float pass: every group's input goes to the imatrix, and the layer runs on. */
typedef struct {
    rt_imatrix *im;
    rt_error err;
    char *msg;
    double seconds;
} imatrix_pass;

static int imatrix_hook(void *user, int layer, rt_hook_point point, const float *x, int n_tokens,
                        int n_cols)
{
    imatrix_pass *p = user;
    const double t0 = now();
    for (size_t g = 0; g < sizeof k_groups / sizeof k_groups[0]; ++g) {
        if (k_groups[g].point != point)
            continue;
        for (int k = 0; k < 3 && k_groups[g].names[k] && p->err == RT_OK; ++k) {
            char name[GGUF_MAX_NAME];
            snprintf(name, sizeof name, "blk.%d.%s.weight", layer, k_groups[g].names[k]);
            p->err = rt_imatrix_add(p->im, name, x, n_tokens, n_cols, p->msg);
        }
    }
    p->seconds += now() - t0;
    return p->err != RT_OK;
}

rt_error rt_calib_imatrix(rt_model *m, const int32_t *chunks, int n_chunks, int n_ctx,
                          rt_imatrix *im, rt_calib_stats *stats, char *msg)
{
    const double t_start = now();
    rt_calib_stats st;
    memset(&st, 0, sizeof st);
    if (!m || !chunks || !im || n_chunks < 1 || n_ctx < 1 || n_ctx > RT_MAX_TOKENS)
        return fail(msg, RT_ERR_ARG, "rt_calib_imatrix: bad arguments");
    const rt_hparams *hp = rt_model_hparams(m);
    const size_t per = (size_t)n_ctx * (size_t)hp->n_embd;
    float *hidden = malloc(per * sizeof(float));
    if (!hidden)
        return fail(msg, RT_ERR_NOMEM, "out of memory");
    st.tokens = (int64_t)n_chunks * n_ctx;
    imatrix_pass ip = {im, RT_OK, msg, 0.0};
    const rt_hook hook = {imatrix_hook, &ip};
    rt_error e = RT_OK;
    const double t0 = now();
    for (int c = 0; c < n_chunks && e == RT_OK; ++c) {
        e = rt_embed(m, chunks + (size_t)c * n_ctx, n_ctx, hidden, msg);
        for (int l = 0; l < hp->n_layer && e == RT_OK; ++l)
            e = rt_layer_forward(m, l, hidden, n_ctx, &hook, msg);
    }
    if (ip.err != RT_OK)
        e = ip.err;
    st.hessian = ip.seconds;
    st.forward = now() - t0 - ip.seconds;
    free(hidden);
    st.total = now() - t_start;
    if (stats)
        *stats = st;
    return e;
}

/* ---------------------------------------------------------------- the whole job */

void rt_calib_run_opts_init(rt_calib_run_opts *o)
{
    memset(o, 0, sizeof *o);
    o->n_samples = 128;
    o->gptq = true;
    rt_calib_opts_init(&o->calib);
    o->calib.asym = true;
    o->calib.gptq.grid = LQ_GPTQ_GRID_WEIGHTED;
}

/* The caller's user pointer travels beside the plan: type_of gets the plan, the other
 * callbacks the caller's pointer. */
typedef struct {
    const rt_calib_plan *plan;
    size_t n_plan;
    const rt_calib_opts *caller;
} run_ctx;

static int run_type_of(void *user, const char *name, int64_t cols, int64_t rows)
{
    const run_ctx *r = user;
    (void)cols, (void)rows;
    for (size_t i = 0; i < r->n_plan; ++i)
        if (r->plan[i].name && !strcmp(r->plan[i].name, name))
            return r->plan[i].type;
    return -1;
}

static int run_emit(void *user, const rt_calib_info *info, const void *data, size_t nbytes)
{
    const rt_calib_opts *c = ((run_ctx *)user)->caller;
    return c->emit ? c->emit(c->user, info, data, nbytes) : 0;
}

static int run_group_done(void *user, int layer, int n_layer, const rt_calib_info *infos, int n)
{
    const rt_calib_opts *c = ((run_ctx *)user)->caller;
    return c->group_done ? c->group_done(c->user, layer, n_layer, infos, n) : 0;
}

/* The weights of the job: the model's, and with the asymmetric target a float model's beside
 * it (a second F32 copy for a checkpoint; a GGUF's mapping is shared). */
static uint64_t run_weights_bytes(const inp_source *src, const rt_calib_run_opts *o)
{
    return rt_weights_bytes(src) * (o->gptq && o->calib.asym && inp_is_checkpoint(src) ? 2 : 1);
}

/* See calib.h (Memory budget). Mirrors rt_calib_gptq's allocations: hidden states (and the
 * float reference's), the group's Hessian + cross term, and the larger of the asymmetric
 * target's and the solver's work for the largest planned tensor. */
uint64_t rt_calib_run_bytes(const rt_model *m, const inp_source *src, const rt_calib_run_opts *o,
                            int n_chunks, int n_ctx, uint64_t *weights, uint64_t *hidden,
                            uint64_t *work, uint64_t *held)
{
    const rt_hparams *hp = rt_model_hparams(m);
    const bool asym = o->gptq && o->calib.asym;
    const int nth = o->nthreads > 0 ? o->nthreads : omp_get_max_threads();
    const uint64_t E = (uint64_t)hp->n_embd, F = (uint64_t)hp->n_ff,
                   QD = (uint64_t)hp->n_head * (uint64_t)hp->head_dim;
    const uint64_t wb = run_weights_bytes(src, o);
    const uint64_t per = (uint64_t)n_ctx * E * sizeof(float);
    uint64_t hid = o->gptq ? (uint64_t)n_chunks * per * (asym ? 2 : 1) + per : per; /* imatrix: chunk by chunk */
    uint64_t wk = rt_model_scratch_bytes(m, 1, n_ctx, nth) * (asym ? 2 : 1);
    uint64_t q = 0;
    if (asym) {
        const uint64_t wmax = (uint64_t)n_ctx * (F > QD ? (F > E ? F : E) : QD);
        hid += 2 * wmax * sizeof(float);
    }
    if (o->gptq) {
        uint64_t n = 0, nel = 0;
        for (size_t i = 0; i < o->n_plan; i++) {
            const int64_t k = inp_find_tensor(src, o->plan[i].name);
            if (k < 0)
                continue;
            const inp_tensor *t = inp_tensor_at(src, k);
            const uint64_t cols = (uint64_t)t->ne[0], rows = (uint64_t)t->ne[1];
            q += 2 * (uint64_t)gguf_row_size(o->plan[i].type, t->ne[0]) * rows;
            if (cols > n)
                n = cols;
            if (cols * rows > nel)
                nel = cols * rows;
        }
        const uint64_t nn = n * n;
        uint64_t group = 2 * nn * sizeof(double) + HESS_BLOCK_ROWS * n * sizeof(double); /* rt_hess */
        if (asym)
            group += nn * sizeof(double) + 2 * HESS_BLOCK_ROWS * n * sizeof(double); /* cross term */
        group += (asym ? 3 : 2) * nel * sizeof(float) + nel;                        /* do_tensor */
        const uint64_t target = asym ? 2 * nn * sizeof(double) + 2 * nel * sizeof(double) : 0;
        const uint64_t solver = nn * (sizeof(double) + sizeof(float)) + 3 * nel * sizeof(double);
        wk += group + (target > solver ? target : solver);
    } else {
        wk += 2 * (uint64_t)hp->n_layer * 7 * (F > E ? F : E) * sizeof(double); /* importance sums */
    }
    if (weights)
        *weights = wb;
    if (hidden)
        *hidden = hid;
    if (work)
        *work = wk;
    if (held)
        *held = q;
    return wb + hid + wk + q;
}

rt_error rt_calib_run(inp_source *src, const char *text, size_t len, rt_calib_run_opts *o,
                      char *msg)
{
    if (!src || !text || !o || o->n_samples < 1 || o->n_ctx > RT_MAX_TOKENS ||
        (!o->gptq && !o->calib.imatrix) || (o->gptq && o->n_plan && !o->plan))
        return fail(msg, RT_ERR_ARG, "rt_calib_run: bad arguments");
    const int blas_threads = openblas_get_num_threads();
    if (o->nthreads > 0)
        openblas_set_num_threads(o->nthreads);
    rt_model *m = NULL;
    tok_model *tok = NULL;
    int32_t *ids = NULL, *chunks = NULL;
    size_t n_ids = 0;
    rt_error e = RT_OK;
    const uint64_t wb = run_weights_bytes(src, o);
    if (o->max_memory && wb > o->max_memory) {
        e = fail(msg, RT_ERR_BUDGET, "the weights need %.1f MiB%s, more than the memory budget of %.1f MiB",
                 (double)wb / 1048576, wb != rt_weights_bytes(src) ? " (a float model runs beside)" : "",
                 (double)o->max_memory / 1048576);
        goto out;
    }
    e = rt_model_load(src, &m, msg);
    if (e != RT_OK)
        goto out;
    rt_model_set_threads(m, o->nthreads);
    if ((e = rt_error_from_tok(tok_from_gguf(inp_metadata(src), &tok, msg))) != RT_OK)
        goto out;
    if ((e = rt_error_from_tok(tok_encode(tok, text, len, tok_default_flags(tok), &ids, &n_ids, msg))) != RT_OK)
        goto out;
    const rt_hparams *hp = rt_model_hparams(m);
    int n_ctx = o->n_ctx;
    if (n_ctx <= 0)
        n_ctx = hp->n_ctx_train > 0 && hp->n_ctx_train < 512 ? hp->n_ctx_train : 512;
    o->n_ctx_used = n_ctx;
    o->n_text_tokens = n_ids;
    if (n_ids < (size_t)n_ctx) {
        e = fail(msg, RT_ERR_FORMAT, "the calibration text has %zu tokens, fewer than one "
                 "chunk of %d", n_ids, n_ctx);
        goto out;
    }
    chunks = rt_calib_sample(ids, n_ids, n_ctx, tok_bos(tok), o->n_samples, o->seed);
    if (!chunks) {
        e = fail(msg, RT_ERR_NOMEM, "out of memory for %d chunks of %d tokens", o->n_samples,
                 n_ctx);
        goto out;
    }
    o->n_chunks_used = o->n_samples;
    if (o->max_memory) {
        uint64_t w, h, k, q;
        const uint64_t need = rt_calib_run_bytes(m, src, o, o->n_samples, n_ctx, &w, &h, &k, &q);
        if (need > o->max_memory) {
            e = fail(msg, RT_ERR_BUDGET,
                     "needs %.1f MiB (weights %.1f, hidden states of %d x %d tokens %.1f, scratch and "
                     "solver %.1f, quantized tensors %.1f), more than the memory budget of %.1f MiB",
                     (double)need / 1048576, (double)w / 1048576, o->n_samples, n_ctx, (double)h / 1048576,
                     (double)k / 1048576, (double)q / 1048576, (double)o->max_memory / 1048576);
            goto out;
        }
    }
    if (!o->gptq) {
        e = rt_calib_imatrix(m, chunks, o->n_samples, n_ctx, o->calib.imatrix, o->calib.stats,
                             msg);
        goto out;
    }
    run_ctx rc = {o->plan, o->n_plan, &o->calib};
    rt_calib_opts c = o->calib;
    c.type_of = run_type_of;
    c.emit = run_emit;
    c.group_done = run_group_done;
    c.user = &rc;
    c.gptq.nthreads = o->nthreads;
    e = rt_calib_gptq(m, src, chunks, o->n_samples, n_ctx, &c, msg);
out:
    openblas_set_num_threads(blas_threads);
    free(chunks);
    free(ids);
    tok_free(tok);
    rt_model_free(m);
    return e;
}
