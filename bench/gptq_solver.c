/* GPTQ solver speed (built and run by bench/gptq.sh): lq_gptq_quantize on synthetic problems
 * of given shapes, best of R runs each, with the floating-point operations it performs counted
 * from the shapes, and beside it the runtime's own GEMM (rt_matmul, F32 weights) on the same
 * threads, so the two rates compare on one machine in one process, measured alternately.
 *
 * Flops counted (what the solver runs; multiply and add count 2):
 *   factorization  2/3 n^3        Cholesky of the reversed H (n^3/3) + triangular inverse (n^3/3)
 *   column loop    m n (n-1)      every column's error into every later column of its row
 *   losses         2 m n (n-1)    trace((W-Q) H (W-Q)^T) for GPTQ and for plain rounding
 * (n = columns, m = rows). The GEMM counts 2 * rows * cols * tokens.
 *
 * usage: gptq_solver [-t THREADS] [-r REPEAT] [--no-loss] [--type NAME] [ROWSxCOLS ...]
 * Default shapes: one layer of the 0.8 B synthetic model of bench/quantize.sh (dim 2048, 16
 * heads / 8 KV heads, FFN 5632): q 2048x2048, k 1024x2048, v 1024x2048, o 2048x2048,
 * gate 5632x2048, up 5632x2048, down 2048x5632. H = 2/N X^T X from N = 1024 AR(1) inputs. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "libgguf/gguf.h"
#include "libquant/lq.h"
#include "libquant/lq_gptq.h"
#include "libquant/lq_gptq_kern.h"
#include "runtime/kernels.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static double unif(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0 - 0.5;
}

/* H (n x n, lower triangle filled) = 2/N X^T X, X rows AR(1) along the columns; blocked over
 * samples with the solver's own kernel (C -= A B with A = -X^T). */
static double *make_h(int64_t n, int N, int nt)
{
    double *X = malloc((size_t)N * (size_t)n * sizeof(double));
    double *H = calloc((size_t)n * (size_t)n, sizeof(double));
    if (!X || !H)
        return NULL;
    for (int t = 0; t < N; ++t) {
        double p = unif();
        for (int64_t j = 0; j < n; ++j) {
            p = 0.8 * p + unif();
            X[(size_t)t * n + j] = p * (1.0 + 0.5 * (double)(j % 5));
        }
    }
    const lq_gk *g = lq_gk_best();
    double *Xn = malloc((size_t)N * (size_t)n * sizeof(double));
    if (!Xn)
        return NULL;
    for (size_t i = 0; i < (size_t)N * (size_t)n; ++i)
        Xn[i] = -X[i] * (2.0 / N);
    /* H(i,j) -= sum_t Xn(t,i) X(t,j), i.e. += 2/N sum_t x_i x_j */
    char *ws = aligned_alloc(64, (size_t)nt * LQ_GK_WS);
    double *Xp = malloc(lq_gk_packed_f64(g, N, n) * sizeof(double));
    if (!ws || !Xp)
        return NULL;
    g->pack_f64(N, (int)n, X, n, Xp, 0, lq_gk_tile_f64(g, N));
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int64_t i0 = 0; i0 < n; i0 += 192) {
        const int mb = n - i0 < 192 ? (int)(n - i0) : 192;
        g->fnma_f64(mb, (int)(i0 + mb), N, Xn + i0, n, Xp, lq_gk_tile_f64(g, N), H + i0 * n, n,
                    ws + (size_t)omp_get_thread_num() * LQ_GK_WS);
    }
    free(ws);
    free(Xp);
    free(X);
    free(Xn);
    return H;
}

typedef struct {
    int64_t rows, cols;
    double best, cpu, flops; /* best wall seconds, the CPU seconds of that run */
} shape;

int main(int argc, char **argv)
{
    int nt = 2, repeat = 2, type = GGUF_Q4_K;
    bool loss = true;
    shape sh[64];
    int ns = 0;
    for (int i = 1; i < argc; ++i) {
        if (!strcmp(argv[i], "-t") && i + 1 < argc) {
            nt = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "-r") && i + 1 < argc) {
            repeat = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--no-loss")) {
            loss = false;
        } else if (!strcmp(argv[i], "--type") && i + 1 < argc) {
            type = -1;
            ++i;
            for (int t = 0; t < 64; ++t)
                if (gguf_type_info(t) && !strcmp(gguf_type_info(t)->name, argv[i]))
                    type = t;
            if (type < 0 || !lq_gptq_supports(type)) {
                fprintf(stderr, "gptq_solver: unknown or unsupported type %s\n", argv[i]);
                return 1;
            }
        } else if (ns < 64 && sscanf(argv[i], "%ldx%ld", &sh[ns].rows, &sh[ns].cols) == 2) {
            ++ns;
        } else {
            fprintf(stderr, "usage: gptq_solver [-t THREADS] [-r REPEAT] [--no-loss] "
                            "[--type NAME] [ROWSxCOLS ...]\n");
            return 1;
        }
    }
    if (ns == 0) {
        const int64_t def[7][2] = {{2048, 2048}, {1024, 2048}, {1024, 2048}, {2048, 2048},
                                   {5632, 2048}, {5632, 2048}, {2048, 5632}};
        for (ns = 0; ns < 7; ++ns)
            sh[ns] = (shape){def[ns][0], def[ns][1], 0, 0, 0};
    }

    /* the runtime GEMM: 4096 x 4096 F32 weights times 512 tokens */
    const int64_t gr = 4096, gc = 4096, gt = 512;
    float *gw = malloc((size_t)(gr * gc) * sizeof(float));
    float *gx = malloc((size_t)(gt * gc) * sizeof(float));
    float *gy = malloc((size_t)(gt * gr) * sizeof(float));
    if (!gw || !gx || !gy)
        return 4;
    for (int64_t i = 0; i < gr * gc; ++i)
        gw[i] = (float)unif();
    for (int64_t i = 0; i < gt * gc; ++i)
        gx[i] = (float)unif();
    const rt_isa isa = rt_isa_detect();
    double gbest = 1e30, gcpu = 0;

    printf("solver kernels: %s, %d threads, %s, losses %s; runtime GEMM: rt_matmul F32 %s\n",
           lq_gk_best()->name, nt, gguf_type_info(type)->name, loss ? "on" : "off",
           rt_isa_name(isa));
    for (int s = 0; s < ns; ++s) {
        const double n = (double)sh[s].cols, m = (double)sh[s].rows;
        sh[s].flops = 2.0 / 3.0 * n * n * n + m * n * (n - 1) * (loss ? 3 : 1);
        sh[s].best = 1e30;
    }
    for (int rep = 0; rep < repeat; ++rep) {
        for (int s = 0; s < ns; ++s) {
            const int64_t m = sh[s].rows, n = sh[s].cols;
            rng = 0x9E3779B97F4A7C15ull + (uint64_t)n;
            double *H = make_h(n, 1024, nt);
            float *W = malloc((size_t)(m * n) * sizeof(float));
            void *q = malloc(lq_row_size(type, n) * (size_t)m);
            if (!H || !W || !q) {
                fprintf(stderr, "gptq_solver: out of memory\n");
                return 4;
            }
            for (int64_t i = 0; i < m * n; ++i)
                W[i] = (float)(0.05 * unif());
            lq_gptq_opts o;
            lq_gptq_opts_init(&o);
            o.nthreads = nt;
            o.skip_loss = !loss;
            char msg[LQ_MSG_SIZE];
            const double t0 = now(), c0 = cpu_now();
            const lq_error e = lq_gptq_quantize(type, W, m, n, H, &o, q, NULL, NULL, msg);
            const double dt = now() - t0, dc = cpu_now() - c0;
            if (e != LQ_OK) {
                fprintf(stderr, "gptq_solver: %s\n", msg);
                return 4;
            }
            if (dt < sh[s].best) {
                sh[s].best = dt;
                sh[s].cpu = dc;
            }
            free(H);
            free(W);
            free(q);
        }
        const double t0 = now(), c0 = cpu_now();
        rt_matmul(isa, GGUF_F32, gw, gr, gc, gx, gc, gt, gy, gr, NULL, 0, nt);
        const double dt = now() - t0, dc = cpu_now() - c0;
        if (dt < gbest) {
            gbest = dt;
            gcpu = dc;
        }
    }
    /* wall-time rates, and per CPU second (what each busy core did: less disturbed by other
     * jobs on a shared machine; with passive OpenMP waiting, idle waits cost no CPU) */
    double tf = 0, tt = 0, tc = 0;
    printf("%-12s %9s %9s %9s %9s %12s\n", "rows x cols", "seconds", "CPU s", "GFLOP", "GFLOP/s",
           "GFLOP/CPU-s");
    for (int s = 0; s < ns; ++s) {
        printf("%5ldx%-6ld %9.3f %9.3f %9.1f %9.1f %12.1f\n", (long)sh[s].rows, (long)sh[s].cols,
               sh[s].best, sh[s].cpu, sh[s].flops / 1e9, sh[s].flops / sh[s].best / 1e9,
               sh[s].flops / sh[s].cpu / 1e9);
        tf += sh[s].flops;
        tt += sh[s].best;
        tc += sh[s].cpu;
    }
    const double gfl = 2.0 * gr * gc * gt;
    const double srate = tf / tt / 1e9, grate = gfl / gbest / 1e9;
    printf("solver sustained: %.1f GFLOP in %.3f s (%.3f CPU s) = %.1f GFLOP/s (%.1f per CPU s)\n",
           tf / 1e9, tt, tc, srate, tf / tc / 1e9);
    printf("runtime GEMM (F32 %ldx%ld x %ld tokens): %.3f s (%.3f CPU s) = %.1f GFLOP/s (%.1f per "
           "CPU s)\n", (long)gr, (long)gc, (long)gt, gbest, gcpu, grate, gfl / gcpu / 1e9);
    printf("solver / runtime GEMM: %.0f %% (per CPU s: %.0f %%)\n", 100 * srate / grate,
           100 * (tf / tc) / (gfl / gcpu));
    free(gw);
    free(gx);
    free(gy);
    return 0;
}
