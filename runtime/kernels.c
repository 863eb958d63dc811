/* Portable scalar kernels (the reference), activation converters, ISA dispatch and the
 * row-parallel matmul driver. */
#include "runtime/kernels.h"

#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "libquant/lq_types.h"
#include "runtime/rt_internal.h"

/* ---------------------------------------------------------------- ISA selection */

/* The CPU features each path's code is compiled for (see the Makefile's rules for
 * kernels_*.c); a path runs only when the CPU has all of them. */
static const char *const isa_features[RT_ISA_COUNT_][8] = {
    [RT_ISA_SCALAR] = {NULL},
    [RT_ISA_AVX2] = {"avx2", "fma", "f16c", NULL},
    [RT_ISA_AVXVNNI] = {"avx2", "fma", "f16c", "avxvnni", NULL},
    [RT_ISA_AVX512] = {"avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512vnni"},
};

static int cpu_has(const char *f)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    /* __builtin_cpu_supports needs a string literal */
#define HAS(name) if (strcmp(f, name) == 0) return __builtin_cpu_supports(name) != 0
    HAS("avx2"); HAS("fma"); HAS("f16c"); HAS("avxvnni"); HAS("avx512f"); HAS("avx512bw");
    HAS("avx512vl"); HAS("avx512dq"); HAS("avx512vnni"); HAS("avx512bf16");
#undef HAS
#endif
    (void)f;
    return 0;
}

const char *rt_isa_missing(rt_isa isa)
{
    if ((unsigned)isa >= RT_ISA_COUNT_)
        return "?";
    for (int i = 0; i < 8 && isa_features[isa][i]; i++)
        if (!cpu_has(isa_features[isa][i]))
            return isa_features[isa][i];
    return NULL;
}

int rt_isa_supported(rt_isa isa) { return rt_isa_missing(isa) == NULL; }

int rt_cpu_has_avx512bf16(void) { return cpu_has("avx512bf16"); }

int rt_isa_from_name(const char *s)
{
    for (int i = 0; s && i < RT_ISA_COUNT_; i++)
        if (strcmp(s, rt_isa_name((rt_isa)i)) == 0)
            return i;
    return -1;
}

rt_isa rt_isa_detect(void)
{
    static int cached = -1;
    int isa = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (isa >= 0)
        return (rt_isa)isa;
    isa = RT_ISA_SCALAR;
    for (int i = RT_ISA_COUNT_ - 1; i > 0; i--)
        if (rt_isa_supported((rt_isa)i)) {
            isa = i;
            break;
        }
    const int want = rt_isa_from_name(getenv("QFORGE_ISA"));
    if (want >= 0 && rt_isa_supported((rt_isa)want))
        isa = want;
    __atomic_store_n(&cached, isa, __ATOMIC_RELAXED);
    return (rt_isa)isa;
}

const char *rt_isa_name(rt_isa isa)
{
    switch (isa) {
    case RT_ISA_SCALAR: return "scalar";
    case RT_ISA_AVX2: return "avx2";
    case RT_ISA_AVXVNNI: return "avxvnni";
    case RT_ISA_AVX512: return "avx512";
    default: return "?";
    }
}

static const rt_kernel_table *table(rt_isa isa)
{
    switch (isa) {
    case RT_ISA_AVX2: return &rt_kernels_avx2;
    case RT_ISA_AVXVNNI: return &rt_kernels_avxvnni;
    case RT_ISA_AVX512: return &rt_kernels_avx512;
    default: return &rt_kernels_scalar;
    }
}

/* The path a table leaves NULL entries to: AVX-512 and AVX-VNNI to AVX2, AVX2 to scalar. */
static rt_isa parent(rt_isa isa) { return isa == RT_ISA_AVX2 ? RT_ISA_SCALAR : isa > RT_ISA_AVX2 ? RT_ISA_AVX2 : RT_ISA_SCALAR; }

/* ---------------------------------------------------------------- type table */

/* Which weight types have kernels, and their activation formats: libquant's type table
 * (LQ_TYPE_KERNEL, vec_dot_type). */
int rt_vec_dot_type(int wtype)
{
    const lq_type_traits *t = lq_type_traits_of(wtype);
    return t && (t->flags & LQ_TYPE_KERNEL) ? t->vec_dot_type : -1;
}

int rt_kernel_supported(int wtype) { return rt_vec_dot_type(wtype) >= 0; }

size_t rt_act_row_size(int wtype, int64_t n)
{
    int vt = rt_vec_dot_type(wtype);
    if (vt < 0 || n <= 0)
        return 0;
    const gguf_type_traits *wt = gguf_type_info(wtype);
    if (!wt || n % wt->block_size)
        return 0;
    return gguf_row_size(vt, n); /* the weight's blocks are whole activation blocks */
}

/* ---------------------------------------------------------------- activation converters */

static void quant_f32(const float *x, void *dst, int64_t n) { memcpy(dst, x, (size_t)n * 4); }

static void quant_f16(const float *x, void *dst, int64_t n) { qf_f32_to_f16_row(x, dst, (size_t)n); }
static void quant_bf16(const float *x, void *dst, int64_t n) { qf_f32_to_bf16_row(x, dst, (size_t)n); }

/* ggml x86: d = amax/127 stored in fp16, q = round-half-even(x * (127/amax)). */
void rt_quant_q8_0_scalar(const float *x, void *dst, int64_t n)
{
    lq_block_q8_0 *y = dst;
    for (int64_t b = 0; b < n / 32; b++, x += 32) {
        float amax = 0;
        for (int j = 0; j < 32; j++)
            amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127.f;
        const float id = amax != 0.f ? 127.f / amax : 0.f;
        y[b].d = rt_f2h(d);
        for (int j = 0; j < 32; j++)
            y[b].qs[j] = (int8_t)rt_nearest_int(x[j] * id);
    }
}

void rt_quant_q8_1_scalar(const float *x, void *dst, int64_t n)
{
    lq_block_q8_1 *y = dst;
    for (int64_t b = 0; b < n / 32; b++, x += 32) {
        float amax = 0;
        for (int j = 0; j < 32; j++)
            amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127.f;
        const float id = amax != 0.f ? 127.f / amax : 0.f;
        y[b].d = rt_f2h(d);
        int sum = 0;
        for (int j = 0; j < 32; j++) {
            y[b].qs[j] = (int8_t)rt_nearest_int(x[j] * id);
            sum += y[b].qs[j];
        }
        y[b].s = rt_f2h(d * (float)sum);
    }
}

/* ggml: the signed value of largest magnitude maps to -127; d = 1/iscale in f32. */
void rt_quant_q8_K_scalar(const float *x, void *dst, int64_t n)
{
    lq_block_q8_K *y = dst;
    for (int64_t b = 0; b < n / 256; b++, x += 256) {
        float max = 0, amax = 0;
        for (int j = 0; j < 256; j++) {
            float ax = fabsf(x[j]);
            if (ax > amax) {
                amax = ax;
                max = x[j];
            }
        }
        if (amax == 0.f) {
            memset(&y[b], 0, sizeof y[b]);
            continue;
        }
        const float iscale = -127.f / max;
        for (int j = 0; j < 256; j++) {
            int v = rt_nearest_int(iscale * x[j]);
            y[b].qs[j] = (int8_t)(v < 127 ? v : 127);
        }
        for (int j = 0; j < 16; j++) {
            int s = 0;
            for (int l = 0; l < 16; l++)
                s += y[b].qs[16 * j + l];
            y[b].bsums[j] = (int16_t)s;
        }
        y[b].d = 1 / iscale;
    }
}

/* ---------------------------------------------------------------- scalar dot products */

/* Sum of 8 floats in the order of the AVX2 horizontal add: (lo + hi) halves, then pairs. */
static float hsum8_order(const float v[8])
{
    const float a0 = v[0] + v[4], a1 = v[1] + v[5], a2 = v[2] + v[6], a3 = v[3] + v[7];
    const float b0 = a0 + a2, b1 = a1 + a3;
    return b0 + b1;
}


/* The scalar path computes what llama.cpp's AVX2 build computes, operation by operation
 * (fmaf, 8 lane sums, the horizontal add order), so it gives the AVX2 path's bits: */

/* Float types (llamafile's 8-lane sgemm): lane L sums k = L, L+8, ... by fma in k order. */
#define FLOAT_DOT(NAME, CONV)                                                                        \
    static float NAME(int64_t n, const void *w, const void *xa)                                      \
    {                                                                                                \
        const uint16_t *a16 = w, *b16 = xa;                                                          \
        const float *a32 = w, *b32 = xa;                                                             \
        (void)a16, (void)b16, (void)a32, (void)b32;                                                  \
        float lane[8] = {0};                                                                         \
        int64_t i = 0;                                                                               \
        for (; i + 8 <= n; i += 8)                                                                   \
            for (int l = 0; l < 8; l++)                                                              \
                lane[l] = fmaf(CONV(a, i + l), CONV(b, i + l), lane[l]);                             \
        float s = hsum8_order(lane);                                                                 \
        for (; i < n; i++)                                                                           \
            s += CONV(a, i) * CONV(b, i);                                                            \
        return s;                                                                                    \
    }
#define CONV_F32(p, i) p##32[i]
#define CONV_F16(p, i) rt_h2f(p##16[i])
#define CONV_BF16(p, i) rt_bf2f(p##16[i])
FLOAT_DOT(dot_f32, CONV_F32)
FLOAT_DOT(dot_f16, CONV_F16)
FLOAT_DOT(dot_bf16, CONV_BF16)

/* Sum of the 4 products of bytes 4l..4l+3 of 32 values (an 8-lane integer dot). */
static int dot4(const uint8_t *u, const int8_t *w, const int8_t *x, int l)
{
    int s = 0;
    for (int i = 4 * l; i < 4 * l + 4; i++)
        s += (w ? w[i] : u[i]) * x[i];
    return s;
}

/* Quantized types from the unpacked row (rt_unpack_row) and the activation blocks. */
static float dot_quant_emul(int wtype, int64_t n, const rt_unpacked *u, const void *xa)
{
    const int64_t nb = n / 32, nsb = n / 256;
    float lane[8] = {0}, acc = 0, accm = 0, summs = 0;
    switch (wtype) {
    case GGUF_Q4_0: /* repacked GEMM: one chain, per block */
        for (int64_t b = 0; b < nb; b++) {
            const lq_block_q8_0 *x = (const lq_block_q8_0 *)xa + b;
            int s = 0;
            for (int l = 0; l < 8; l++)
                s += dot4(NULL, u->w + 32 * b, x->qs, l);
            acc = fmaf((float)s, u->d[b] * rt_h2f(x->d), acc);
        }
        return acc;
    case GGUF_Q8_0: case GGUF_Q5_0: /* llamafile's Q8_0 kernel: 8 lanes per block */
        for (int64_t b = 0; b < nb; b++) {
            const lq_block_q8_0 *x = (const lq_block_q8_0 *)xa + b;
            const float d = u->d[b] * rt_h2f(x->d);
            for (int l = 0; l < 8; l++)
                lane[l] = fmaf(d, (float)dot4(NULL, u->w + 32 * b, x->qs, l), lane[l]);
        }
        return hsum8_order(lane);
    case GGUF_Q4_1: case GGUF_Q5_1: /* vec_dot: 8 lanes, the min term fma'd apart */
        for (int64_t b = 0; b < nb; b++) {
            const lq_block_q8_1 *x = (const lq_block_q8_1 *)xa + b;
            summs = fmaf(u->m[b], rt_h2f(x->s), summs);
            const float d = u->d[b] * rt_h2f(x->d);
            for (int l = 0; l < 8; l++)
                lane[l] = fmaf(d, (float)dot4(u->aw + 32 * b, NULL, x->qs, l), lane[l]);
        }
        return hsum8_order(lane) + summs;
    case GGUF_Q4_K: /* repacked GEMM: per 64 values, mins apart */
        for (int64_t b = 0; b < nsb; b++) {
            const lq_block_q8_K *x = (const lq_block_q8_K *)xa + b;
            const int16_t *mn = u->mins + 16 * b, *bs = x->bsums;
            for (int h = 0; h < 4; h++) {
                int s = 0;
                for (int k = 2 * h; k < 2 * h + 2; k++)
                    for (int l = 0; l < 8; l++)
                        s += u->sc32[(8 * b + k) * 16] * dot4(u->aw + 256 * b + 32 * k, NULL, x->qs + 32 * k, l);
                const int m = mn[4 * h] * (bs[4 * h] + bs[4 * h + 1]) + mn[4 * h + 2] * (bs[4 * h + 2] + bs[4 * h + 3]);
                acc = fmaf((float)s, u->d[b] * x->d, acc);
                accm = fmaf((float)m, u->m[b] * x->d, accm);
            }
        }
        return acc - accm;
    default: /* Q2_K, Q3_K, Q5_K, Q6_K: vec_dot's 8 lanes (see kernels_avx2.c core_q8_K) */
        for (int64_t b = 0; b < nsb; b++) {
            const lq_block_q8_K *x = (const lq_block_q8_K *)xa + b;
            const int16_t *bs = x->bsums, *mn = u->mins + 16 * b, *cr = u->corr + 16 * b;
            const float d = u->d[b] * x->d, dm = u->m[b] * x->d;
            if (wtype == GGUF_Q2_K)
                for (int l = 0; l < 8; l++)
                    lane[l] = fmaf(-dm, (float)(bs[2 * l] * mn[2 * l] + bs[2 * l + 1] * mn[2 * l + 1]), lane[l]);
            for (int l = 0; l < 8; l++) {
                int s = 0;
                for (int k = 0; k < 8; k++) {
                    const uint8_t *uv = u->aw + 256 * b + 32 * k;
                    const int8_t *xq = x->qs + 32 * k;
                    int p = dot4(uv, NULL, xq, l);
                    if (wtype == GGUF_Q3_K)
                        for (int i = 4 * l; i < 4 * l + 4; i++)
                            p -= 4 * xq[i];
                    s += u->sc32[(8 * b + k) * 16 + 2 * l] * p;
                }
                if (wtype == GGUF_Q6_K)
                    s -= bs[2 * l] * cr[2 * l] + bs[2 * l + 1] * cr[2 * l + 1];
                lane[l] = fmaf((float)s, d, lane[l]);
            }
            if (wtype == GGUF_Q5_K) {
                int m = 0;
                for (int j = 0; j < 16; j++)
                    m += bs[j] * mn[j];
                summs = fmaf(-dm, (float)m, summs);
            }
        }
        return hsum8_order(lane) + summs;
    }
}

static float dot_quant(int wtype, int64_t n, const void *w, const void *xa)
{
    const size_t us = rt_unpacked_size(wtype, n);
    void *buf = aligned_alloc(32, (us + 31) & ~(size_t)31);
    if (!buf)
        return 0; /* out of memory inside a kernel; the SIMD paths allocate far more */
    rt_unpacked u;
    rt_unpack_row(wtype, w, n, buf, &u);
    const float r = dot_quant_emul(wtype, n, &u, xa);
    free(buf);
    return r;
}

#define DOT_Q(t, T)                                                                                  \
    static float dot_##t(int64_t n, const void *w, const void *xa) { return dot_quant(GGUF_##T, n, w, xa); }
DOT_Q(q8_0, Q8_0)
DOT_Q(q4_0, Q4_0)
DOT_Q(q4_1, Q4_1)
DOT_Q(q5_0, Q5_0)
DOT_Q(q5_1, Q5_1)
DOT_Q(q2_K, Q2_K)
DOT_Q(q3_K, Q3_K)
DOT_Q(q4_K, Q4_K)
DOT_Q(q5_K, Q5_K)
DOT_Q(q6_K, Q6_K)

/* ---------------------------------------------------------------- forward-pass helpers */

/* ggml's 8-lane AVX2 expf, lane by lane (the same operations, so the same bits): an
 * exp2 split with a degree-5 polynomial, |x| beyond ~88 to infinity or zero. */
float rt_expf_avx2_lane(float x)
{
    const float r = 0x1.8p23f, z = fmaf(x, 0x1.715476p+0f, r), n = z - r;
    const float b = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, x));
    const uint32_t e = rt_bits_from_f32(z) << 23;
    const float k = rt_f32_from_bits(e + rt_bits_from_f32(1.0f));
    const float u = b * b;
    const float j = fmaf(fmaf(fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)), u,
                         0x1.ffffecp-1f * b);
    if (!(fabsf(n) > 126))
        return fmaf(k, j, k);
    const uint32_t g = n <= 0 ? 0x82000000u : 0;
    const float s1 = rt_f32_from_bits(g + 0x7f000000u), s2 = rt_f32_from_bits(e - g);
    return fabsf(n) > 192 ? s1 * s1 : fmaf(s2, j, s2) * s1;
}

/* One query row of llama.cpp's CPU flash attention (the tiled path), see rt_attn_fn: the
 * AVX2 build's exp and sums, done lane by lane. */
static void attn_scalar(const float *q, const float *kt, int64_t ldk, const float *v, int64_t ldv, int n, int hd,
                        float scale, float *p, float *out)
{
    for (int j = 0; j < n; j++) {
        float s = 0;
        for (int d = 0; d < hd; d++)
            s = fmaf(q[d], kt[d * ldk + j], s);
        p[j] = s * scale;
    }
    float M = -INFINITY, S = 0;
    for (int d = 0; d < hd; d++)
        out[d] = 0;
    for (int t0 = 0; t0 < n; t0 += RT_FA_TILE) {
        const int nt = n - t0 < RT_FA_TILE ? n - t0 : RT_FA_TILE;
        float mx = -INFINITY;
        for (int j = 0; j < nt; j++)
            mx = p[t0 + j] > mx ? p[t0 + j] : mx;
        const float Mn = fmaxf(M, mx);
        if (Mn > M && M != -INFINITY) {
            const float ms = expf(M - Mn);
            for (int d = 0; d < hd; d++)
                out[d] *= ms;
            S *= ms;
        }
        M = Mn;
        double sum = 0;
        for (int j0 = 0; j0 < RT_FA_TILE; j0 += 8) {
            float e[8];
            for (int l = 0; l < 8; l++)
                e[l] = j0 + l < nt ? rt_expf_avx2_lane(p[t0 + j0 + l] - M) : 0.0f;
            for (int l = 0; l < 8 && j0 + l < nt; l++)
                p[t0 + j0 + l] = e[l];
            sum += (double)hsum8_order(e);
        }
        S = (float)((double)S + sum);
        for (int j = 0; j < nt; j++) {
            const float pj = p[t0 + j], *vj = v + (int64_t)(t0 + j) * ldv;
            for (int d = 0; d < hd; d++)
                out[d] = fmaf(vj[d], pj, out[d]);
        }
    }
    const float inv = 1.0f / S;
    for (int d = 0; d < hd; d++)
        out[d] *= inv;
}

static double sum_exp_scalar(const float *x, int64_t n, float *mx)
{
    float m = x[0];
    for (int64_t i = 1; i < n; i++)
        m = x[i] > m ? x[i] : m;
    double sum = 0;
    for (int64_t i = 0; i < n; i++)
        sum += expf(x[i] - m);
    *mx = m;
    return sum;
}

static void rms_norm_scalar(const float *x, const float *w, int64_t n, float eps, float *y)
{
    double sum = 0;
    for (int64_t i = 0; i < n; i++)
        sum += (double)(x[i] * x[i]);
    const float mean = (float)(sum / (double)n);
    const float scale = 1.0f / sqrtf(mean + eps);
    for (int64_t i = 0; i < n; i++)
        y[i] = (x[i] * scale) * w[i];
}

static void transpose_scalar(const float *src, int64_t lds, int64_t rows, int64_t cols, float *dst, int64_t ldd)
{
    for (int64_t r0 = 0; r0 < rows; r0 += 16)
        for (int64_t c0 = 0; c0 < cols; c0 += 16)
            for (int64_t c = c0; c < cols && c < c0 + 16; c++)
                for (int64_t r = r0; r < rows && r < r0 + 16; r++)
                    dst[c * ldd + r] = src[r * lds + c];
}

/* ggml's swiglu: silu(g) * u with silu(x) = x / (1 + e^-x), e^-x by the AVX2 build's expf in
 * blocks of 8, libm's expf for the rest. */
static void swiglu_scalar(float *g, const float *u, int64_t n)
{
    const int64_t nv = n & ~(int64_t)7;
    int64_t i = 0;
    for (; i < nv; i++)
        g[i] = g[i] / (1.0f + rt_expf_avx2_lane(0.0f - g[i])) * u[i];
    for (; i < n; i++)
        g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

static void round_f16_scalar(float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = rt_h2f(rt_f2h(x[i]));
}

const rt_kernel_table rt_kernels_scalar = {
    .attn = attn_scalar,
    .sum_exp = sum_exp_scalar,
    .rms_norm = rms_norm_scalar,
    .transpose = transpose_scalar,
    .swiglu = swiglu_scalar,
    .round_f16 = round_f16_scalar,
    .quant = {
        [GGUF_F32] = quant_f32, [GGUF_F16] = quant_f16, [GGUF_BF16] = quant_bf16,
        [GGUF_Q8_0] = rt_quant_q8_0_scalar, [GGUF_Q8_1] = rt_quant_q8_1_scalar,
        [GGUF_Q8_K] = rt_quant_q8_K_scalar,
    },
    .dot = {
        [GGUF_F32] = dot_f32, [GGUF_F16] = dot_f16, [GGUF_BF16] = dot_bf16,
        [GGUF_Q8_0] = dot_q8_0, [GGUF_Q4_0] = dot_q4_0, [GGUF_Q4_1] = dot_q4_1,
        [GGUF_Q5_0] = dot_q5_0, [GGUF_Q5_1] = dot_q5_1,
        [GGUF_Q2_K] = dot_q2_K, [GGUF_Q3_K] = dot_q3_K, [GGUF_Q4_K] = dot_q4_K,
        [GGUF_Q5_K] = dot_q5_K, [GGUF_Q6_K] = dot_q6_K,
    },
};


/* ---------------------------------------------------------------- unpacking for SIMD cores */

int rt_unpack_class(int wtype)
{
    switch (wtype) {
    case GGUF_Q4_0: case GGUF_Q5_0: case GGUF_Q8_0: return RT_CLS_Q8_0;
    case GGUF_Q4_1: case GGUF_Q5_1: return RT_CLS_Q8_1;
    case GGUF_Q2_K: case GGUF_Q3_K: case GGUF_Q4_K: case GGUF_Q5_K: case GGUF_Q6_K: return RT_CLS_Q8_K;
    default: return -1;
    }
}

static size_t al32(size_t n) { return (n + 31) & ~(size_t)31; }

size_t rt_unpacked_size(int wtype, int64_t n)
{
    const size_t N = (size_t)n;
    switch (rt_unpack_class(wtype)) {
    case RT_CLS_Q8_0: return al32(N) * 2 + al32(N / 32 * 4);
    case RT_CLS_Q8_1: return al32(N) + 2 * al32(N / 32 * 4);
    case RT_CLS_Q8_K: return al32(N) + al32(N / 32 * 32) + 2 * al32(N / 256 * 32) + 2 * al32(N / 256 * 4);
    default: return 0;
    }
}

void rt_unpack_row(int wtype, const void *wrow, int64_t n, void *buf, rt_unpacked *u)
{
    memset(u, 0, sizeof *u);
    char *p = buf;
    const size_t N = (size_t)n;
    const int64_t nb = n / 32, nsb = n / 256;
    switch (rt_unpack_class(wtype)) {
    case RT_CLS_Q8_0:
        u->w = (int8_t *)p, p += al32(N);
        u->aw = (uint8_t *)p, p += al32(N);
        u->d = (float *)p;
        break;
    case RT_CLS_Q8_1:
        u->aw = (uint8_t *)p, p += al32(N);
        u->d = (float *)p, p += al32(N / 32 * 4);
        u->m = (float *)p;
        break;
    case RT_CLS_Q8_K:
        u->aw = (uint8_t *)p, p += al32(N);
        u->sc32 = (int16_t *)p, p += al32(N / 32 * 32);
        u->corr = (int16_t *)p, p += al32(N / 256 * 32);
        u->mins = (int16_t *)p, p += al32(N / 256 * 32);
        u->d = (float *)p, p += al32(N / 256 * 4);
        u->m = (float *)p;
        break;
    default:
        return;
    }
    switch (wtype) {
    case GGUF_Q8_0: {
        const lq_block_q8_0 *x = wrow;
        for (int64_t b = 0; b < nb; b++) {
            u->d[b] = rt_h2f(x[b].d);
            memcpy(u->w + 32 * b, x[b].qs, 32);
        }
        break;
    }
    case GGUF_Q4_0: {
        const lq_block_q4_0 *x = wrow;
        for (int64_t b = 0; b < nb; b++) {
            u->d[b] = rt_h2f(x[b].d);
            for (int j = 0; j < 16; j++) {
                u->w[32 * b + j] = (int8_t)((x[b].qs[j] & 0xF) - 8);
                u->w[32 * b + j + 16] = (int8_t)((x[b].qs[j] >> 4) - 8);
            }
        }
        break;
    }
    case GGUF_Q5_0: {
        const lq_block_q5_0 *x = wrow;
        for (int64_t b = 0; b < nb; b++) {
            uint32_t qh;
            memcpy(&qh, x[b].qh, 4);
            u->d[b] = rt_h2f(x[b].d);
            for (int j = 0; j < 16; j++) {
                u->w[32 * b + j] = (int8_t)(((x[b].qs[j] & 0xF) | (((qh >> j) & 1) << 4)) - 16);
                u->w[32 * b + j + 16] = (int8_t)(((x[b].qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) - 16);
            }
        }
        break;
    }
    case GGUF_Q4_1: {
        const lq_block_q4_1 *x = wrow;
        for (int64_t b = 0; b < nb; b++) {
            u->d[b] = rt_h2f(x[b].d);
            u->m[b] = rt_h2f(x[b].m);
            for (int j = 0; j < 16; j++) {
                u->aw[32 * b + j] = x[b].qs[j] & 0xF;
                u->aw[32 * b + j + 16] = x[b].qs[j] >> 4;
            }
        }
        break;
    }
    case GGUF_Q5_1: {
        const lq_block_q5_1 *x = wrow;
        for (int64_t b = 0; b < nb; b++) {
            uint32_t qh;
            memcpy(&qh, x[b].qh, 4);
            u->d[b] = rt_h2f(x[b].d);
            u->m[b] = rt_h2f(x[b].m);
            for (int j = 0; j < 16; j++) {
                u->aw[32 * b + j] = (uint8_t)((x[b].qs[j] & 0xF) | (((qh >> j) & 1) << 4));
                u->aw[32 * b + j + 16] = (uint8_t)((x[b].qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4));
            }
        }
        break;
    }
    case GGUF_Q2_K: {
        const lq_block_q2_K *x = wrow;
        for (int64_t b = 0; b < nsb; b++) {
            uint8_t *o = u->aw + 256 * b;
            int16_t sc[16];
            for (int half = 0; half < 2; half++) {
                const uint8_t *q = x[b].qs + 32 * half;
                for (int s4 = 0; s4 < 4; s4++)
                    for (int l = 0; l < 32; l++)
                        o[128 * half + 32 * s4 + l] = (q[l] >> (2 * s4)) & 3;
            }
            for (int j = 0; j < 16; j++) {
                sc[j] = x[b].scales[j] & 0xF;
                u->mins[16 * b + j] = x[b].scales[j] >> 4;
                u->corr[16 * b + j] = 0;
            }
            for (int k = 0; k < 8; k++)
                for (int l = 0; l < 8; l++) {
                    u->sc32[(8 * b + k) * 16 + l] = sc[2 * k];
                    u->sc32[(8 * b + k) * 16 + 8 + l] = sc[2 * k + 1];
                }
            u->d[b] = rt_h2f(x[b].d);
            u->m[b] = rt_h2f(x[b].dmin);
        }
        break;
    }
    case GGUF_Q3_K: {
        const lq_block_q3_K *x = wrow;
        for (int64_t b = 0; b < nsb; b++) {
            uint8_t *o = u->aw + 256 * b;
            int8_t sc[16];
            rt_q3k_scales(x[b].scales, sc);
            int m = 0;
            for (int half = 0; half < 2; half++) {
                const uint8_t *q = x[b].qs + 32 * half;
                for (int s4 = 0; s4 < 4; s4++, m++)
                    for (int l = 0; l < 32; l++)
                        o[128 * half + 32 * s4 + l] =
                            (uint8_t)(((q[l] >> (2 * s4)) & 3) + ((x[b].hmask[l] >> m) & 1) * 4);
            }
            for (int j = 0; j < 16; j++) {
                u->mins[16 * b + j] = 0;
                u->corr[16 * b + j] = (int16_t)(4 * sc[j]);
            }
            for (int k = 0; k < 8; k++)
                for (int l = 0; l < 8; l++) {
                    u->sc32[(8 * b + k) * 16 + l] = sc[2 * k];
                    u->sc32[(8 * b + k) * 16 + 8 + l] = sc[2 * k + 1];
                }
            u->d[b] = rt_h2f(x[b].d);
            u->m[b] = 0;
        }
        break;
    }
    case GGUF_Q4_K:
    case GGUF_Q5_K: {
        const int five = wtype == GGUF_Q5_K;
        const size_t bs = five ? sizeof(lq_block_q5_K) : sizeof(lq_block_q4_K);
        for (int64_t b = 0; b < nsb; b++) {
            const unsigned char *blk = (const unsigned char *)wrow + (size_t)b * bs;
            uint16_t d, dmin;
            memcpy(&d, blk, 2);
            memcpy(&dmin, blk + 2, 2);
            const uint8_t *scales = blk + 4;
            const uint8_t *qh = five ? blk + 16 : NULL;
            const uint8_t *ql = five ? blk + 48 : blk + 16;
            uint8_t *o = u->aw + 256 * b;
            for (int c = 0; c < 4; c++) {
                for (int l = 0; l < 32; l++) {
                    int lo = ql[32 * c + l] & 0xF, hi = ql[32 * c + l] >> 4;
                    if (five) {
                        lo |= ((qh[l] >> (2 * c)) & 1) << 4;
                        hi |= ((qh[l] >> (2 * c + 1)) & 1) << 4;
                    }
                    o[64 * c + l] = (uint8_t)lo;
                    o[64 * c + 32 + l] = (uint8_t)hi;
                }
            }
            for (int j = 0; j < 8; j++) {
                int sc, mn;
                rt_kq_scale_min(j, scales, &sc, &mn);
                for (int l = 0; l < 16; l++)
                    u->sc32[(8 * b + j) * 16 + l] = (int16_t)sc;
                u->mins[16 * b + 2 * j] = u->mins[16 * b + 2 * j + 1] = (int16_t)mn;
                u->corr[16 * b + 2 * j] = u->corr[16 * b + 2 * j + 1] = 0;
            }
            u->d[b] = rt_h2f(d);
            u->m[b] = rt_h2f(dmin);
        }
        break;
    }
    case GGUF_Q6_K: {
        const lq_block_q6_K *x = wrow;
        for (int64_t b = 0; b < nsb; b++) {
            uint8_t *o = u->aw + 256 * b;
            for (int half = 0; half < 2; half++) {
                const uint8_t *ql = x[b].ql + 64 * half, *qh = x[b].qh + 32 * half;
                uint8_t *oh = o + 128 * half;
                for (int l = 0; l < 32; l++) {
                    oh[l] = (uint8_t)((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4));
                    oh[l + 32] = (uint8_t)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4));
                    oh[l + 64] = (uint8_t)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4));
                    oh[l + 96] = (uint8_t)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4));
                }
            }
            for (int j = 0; j < 16; j++) {
                u->mins[16 * b + j] = 0;
                u->corr[16 * b + j] = (int16_t)(32 * x[b].scales[j]);
            }
            for (int k = 0; k < 8; k++)
                for (int l = 0; l < 8; l++) {
                    u->sc32[(8 * b + k) * 16 + l] = x[b].scales[2 * k];
                    u->sc32[(8 * b + k) * 16 + 8 + l] = x[b].scales[2 * k + 1];
                }
            u->d[b] = rt_h2f(x[b].d);
            u->m[b] = 0;
        }
        break;
    }
    default:
        break;
    }
    if (u->w)
        for (size_t i = 0; i < N; i++)
            u->aw[i] = (uint8_t)(u->w[i] < 0 ? -u->w[i] : u->w[i]);
}

/* ---------------------------------------------------------------- dispatch and drivers */

static int omp_default_threads(void) { return omp_get_max_threads(); }

/* Look-ups fall back along parent() for entries a table leaves NULL. */
static rt_quant_fn quant_fn(rt_isa isa, int vt)
{
    for (rt_isa i = isa; i != RT_ISA_SCALAR; i = parent(i))
        if (table(i)->quant[vt])
            return table(i)->quant[vt];
    return rt_kernels_scalar.quant[vt];
}

static rt_dot_fn dot_fn(rt_isa isa, int wtype)
{
    for (rt_isa i = isa; i != RT_ISA_SCALAR; i = parent(i))
        if (table(i)->dot[wtype])
            return table(i)->dot[wtype];
    return rt_kernels_scalar.dot[wtype];
}

/* The gemm for wtype and the table it comes from (its prep and sizes go with it). */
static rt_gemm_fn gemm_fn(rt_isa isa, int wtype, const rt_kernel_table **from)
{
    for (rt_isa i = isa; i != RT_ISA_SCALAR; i = parent(i))
        if (table(i)->gemm[wtype]) {
            *from = table(i);
            return table(i)->gemm[wtype];
        }
    *from = NULL;
    return NULL;
}

/* A forward-pass helper of isa's table, else its parent's. */
#define HELPER(field) \
    (table(isa)->field ? table(isa)->field : table(parent(isa))->field ? table(parent(isa))->field \
                                                                        : rt_kernels_scalar.field)

void rt_attn_row(rt_isa isa, const float *q, const float *kt, int64_t ldk, const float *v, int64_t ldv, int n,
                 int hd, float scale, float *p, float *out)
{
    HELPER(attn)(q, kt, ldk, v, ldv, n, hd, scale, p, out);
}

size_t rt_attn_scratch(int n, int hd) { return (size_t)16 * (size_t)(n + 16) + (size_t)16 * (size_t)hd + 16; }

void rt_attn_rows(rt_isa isa, const float *q, int64_t ldq, int i0, int m, const float *kt, int64_t ldk,
                  const float *v, int64_t ldv, int hd, float scale, float *p, float *out, int64_t ldo)
{
    const rt_attn_rows_fn rows = HELPER(attn_rows);
    if (rows && m <= 16) {
        rows(q, ldq, i0, m, kt, ldk, v, ldv, hd, scale, p, out, ldo);
        return;
    }
    for (int r = 0; r < m; r++)
        HELPER(attn)(q + r * ldq, kt, ldk, v, ldv, i0 + r + 1, hd, scale, p, out + r * ldo);
}

void rt_swiglu(rt_isa isa, float *g, const float *u, int64_t n) { HELPER(swiglu)(g, u, n); }

double rt_sum_exp(rt_isa isa, const float *x, int64_t n, float *mx) { return HELPER(sum_exp)(x, n, mx); }

void rt_rms_norm(rt_isa isa, const float *x, const float *w, int64_t n, float eps, float *y)
{
    HELPER(rms_norm)(x, w, n, eps, y);
}

void rt_transpose(rt_isa isa, const float *src, int64_t lds, int64_t rows, int64_t cols, float *dst, int64_t ldd)
{
    HELPER(transpose)(src, lds, rows, cols, dst, ldd);
}

void rt_round_f16(rt_isa isa, float *x, int64_t n) { HELPER(round_f16)(x, n); }

void rt_quantize_act(rt_isa isa, int wtype, const float *x, void *dst, int64_t n)
{
    int vt = rt_vec_dot_type(wtype);
    if (vt >= 0)
        quant_fn(isa, vt)(x, dst, n);
}

float rt_vec_dot(rt_isa isa, int wtype, int64_t n, const void *w, const void *xa)
{
    if (!rt_kernel_supported(wtype))
        return 0;
    return dot_fn(isa, wtype)(n, w, xa);
}

void rt_quantize_act_rows(rt_isa isa, int wtype, const float *x, int64_t ldx, int64_t ntok,
                          int64_t ncols, void *act, int nthreads)
{
    const int vt = rt_vec_dot_type(wtype);
    if (vt < 0)
        return;
    const rt_quant_fn q = quant_fn(isa, vt);
    const size_t rs = rt_act_row_size(wtype, ncols);
    if (nthreads <= 0)
        nthreads = omp_default_threads();
#pragma omp parallel for schedule(static) num_threads(nthreads) if (ntok > 1)
    for (int64_t t = 0; t < ntok; t++)
        q(x + t * ldx, (char *)act + (size_t)t * rs, ncols);
}

static void gemm_by_dot(rt_dot_fn dot, int64_t n, const void *w, size_t wrs, int nr,
                        const void *xa, size_t xrs, int nt, float *y, int64_t ldy)
{
    for (int t = 0; t < nt; t++) {
        const void *xt = (const char *)xa + (size_t)t * xrs;
        for (int r = 0; r < nr; r++)
            y[t * ldy + r] = dot(n, (const char *)w + (size_t)r * wrs, xt);
    }
}

/* Sizes of the two parts of a matmul workspace: repacked activation tiles, per-thread scratch. */
static void ws_parts(const rt_kernel_table *gt, int wtype, int64_t ncols, int64_t ntok, int nthreads,
                     size_t *tile_bytes, size_t *tiles, size_t *per_thread)
{
    const int64_t ntiles = (ntok + RT_TOK_TILE - 1) / RT_TOK_TILE;
    *tile_bytes = gt && gt->prep[wtype] && gt->tile_size ? gt->tile_size(wtype, ncols) : 0;
    *tiles = ((size_t)ntiles * *tile_bytes + 63) & ~(size_t)63;
    *per_thread = gt && gt->scratch_size ? (gt->scratch_size(wtype, ncols) + 63) & ~(size_t)63 : 0;
    (void)nthreads;
}

size_t rt_matmul_workspace(rt_isa isa, int wtype, int64_t ncols, int64_t ntok, int nthreads)
{
    if (!rt_kernel_supported(wtype) || ntok <= 0)
        return 0;
    if (nthreads <= 0)
        nthreads = omp_default_threads();
    const rt_kernel_table *gt;
    if (!gemm_fn(isa, wtype, &gt))
        return 0;
    size_t tb, tiles, per;
    ws_parts(gt, wtype, ncols, ntok, nthreads, &tb, &tiles, &per);
    return tiles + (size_t)nthreads * per;
}

void rt_matmul(rt_isa isa, int wtype, const void *w, int64_t nrows, int64_t ncols,
               const float *x, int64_t ldx, int64_t ntok, float *y, int64_t ldy,
               void *act, int act_ready, int nthreads)
{
    rt_matmul_ws(isa, wtype, w, nrows, ncols, x, ldx, ntok, y, ldy, act, act_ready, nthreads, NULL, 0);
}

void rt_matmul_ws(rt_isa isa, int wtype, const void *w, int64_t nrows, int64_t ncols,
                  const float *x, int64_t ldx, int64_t ntok, float *y, int64_t ldy,
                  void *act, int act_ready, int nthreads, void *ws, size_t ws_size)
{
    if (!rt_kernel_supported(wtype) || nrows <= 0 || ntok <= 0)
        return;
    if (nthreads <= 0)
        nthreads = omp_default_threads();
    const size_t wrs = gguf_row_size(wtype, ncols);
    const size_t xrs = rt_act_row_size(wtype, ncols);
    const int vt = rt_vec_dot_type(wtype);
    /* F32 weights use the activations as they are */
    const int direct = wtype == GGUF_F32 && ldx == ncols;
    const void *xa = direct ? (const void *)x : act;
    const rt_quant_fn quant = act_ready || direct ? NULL : quant_fn(isa, vt);
    const rt_kernel_table *gt;
    rt_gemm_fn gemm = gemm_fn(isa, wtype, &gt);
    const rt_dot_fn dot = dot_fn(isa, wtype);
    rt_prep_fn prep = gemm ? gt->prep[wtype] : NULL;
    const int64_t ntiles = (ntok + RT_TOK_TILE - 1) / RT_TOK_TILE;
    size_t tile_bytes = 0, tiles_size = 0, ss = 0;
    if (gemm)
        ws_parts(gt, wtype, ncols, ntok, nthreads, &tile_bytes, &tiles_size, &ss);
    const size_t need = tiles_size + (size_t)nthreads * ss;
    char *own = NULL, *base = ws;
    if (need && (!ws || ws_size < need || ((uintptr_t)ws & 63))) {
        base = own = aligned_alloc(64, (need + 63) & ~(size_t)63);
        if (!own) /* out of memory: plain dot products */
            gemm = NULL, prep = NULL;
    }
    if (act_ready >= 2 && !own)
        prep = NULL; /* the workspace holds this activation's tiles already */
    char *tiles = tile_bytes ? base : NULL, *scratch = ss ? base + tiles_size : NULL;
    const int64_t nblocks = (nrows + RT_ROW_BLOCK - 1) / RT_ROW_BLOCK;
#pragma omp parallel num_threads(nthreads) if (nblocks > 1 || ntiles > 1)
    {
        /* convert and repack the activations, one tile of tokens at a time */
        if (quant || (gemm && tile_bytes && prep)) {
#pragma omp for schedule(static)
            for (int64_t ti = 0; ti < ntiles; ti++) {
                const int64_t t0 = ti * RT_TOK_TILE;
                const int nt = (int)(ntok - t0 < RT_TOK_TILE ? ntok - t0 : RT_TOK_TILE);
                for (int64_t t = t0; quant && t < t0 + nt; t++)
                    quant(x + t * ldx, (char *)act + (size_t)t * xrs, ncols);
                if (gemm && tile_bytes && prep)
                    prep(wtype, ncols, (const char *)xa + (size_t)t0 * xrs, xrs, nt, tiles + (size_t)ti * tile_bytes);
            }
        }
        char *my_scratch = scratch ? scratch + (size_t)omp_get_thread_num() * ss : NULL;
#pragma omp for schedule(static)
        for (int64_t bi = 0; bi < nblocks; bi++) {
            const int64_t r0 = bi * RT_ROW_BLOCK;
            const int nr = (int)(nrows - r0 < RT_ROW_BLOCK ? nrows - r0 : RT_ROW_BLOCK);
            const void *wb = (const char *)w + (size_t)r0 * wrs;
            if (gemm)
                gemm(wtype, ncols, wb, wrs, nr, xa, xrs, (int)ntok, tiles, tile_bytes, my_scratch, y + r0, ldy);
            else
                gemm_by_dot(dot, ncols, wb, wrs, nr, xa, xrs, (int)ntok, y + r0, ldy);
        }
    }
    free(own);
}
