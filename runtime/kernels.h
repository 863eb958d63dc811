/* runtime kernels — weight matrix × activations, as llama.cpp does it on the CPU.
 *
 * A weight row of type T is multiplied with an activation row converted to T's "vec-dot
 * type" (ggml's vec_dot_type):
 *   F32  × F32                          F16  × F16 (activations rounded to fp16)
 *   BF16 × BF16                          Q8_0, Q4_0, Q5_0 × Q8_0 (activation blocks of 32)
 *   Q4_1, Q5_1 × Q8_1 (Q8_0 plus d*sum)  Q2_K … Q6_K × Q8_K (super-blocks of 256)
 * Activations are quantized exactly as ggml's x86 build does (Q8_0/Q8_1: d = amax/127 in
 * fp16, q = round-half-even(x * 127/amax); Q8_K: d = max/-127 in f32 with the signed
 * maximum, q = min(127, round-half-even(x/d))), and the quantized dot products are integer
 * sums scaled per block, so our logits follow llama.cpp's to float rounding.
 *
 * Every kernel exists for four paths chosen at run time (rt_isa). Each path sums in the order
 * of one llama.cpp CPU build — avx512: the AVX-512 build; avx2, avxvnni and scalar: the AVX2
 * build — type by type (docs/runtime.md has the table), so logits are llama.cpp's bit for bit
 * on the matching build; the two builds differ by float rounding only (tests/test_kernels.c
 * states the bounds against the exact product).
 *
 * Thread independence: rt_matmul splits the output rows into fixed blocks of
 * RT_ROW_BLOCK rows, aligned to row 0; every output element is computed by one call on one
 * block whatever the thread count, so results do not depend on it.
 */
#ifndef QFORGE_RT_KERNELS_H
#define QFORGE_RT_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* Kernel paths, each asking only for the CPU features its code uses:
 *   AVX2     AVX2 + FMA + F16C
 *   AVXVNNI  the AVX2 path with AVX-VNNI's VEX-encoded vpdpbusd (Intel Alder Lake and later
 *            without AVX-512); same results as AVX2
 *   AVX512   AVX-512 F/BW/VL/DQ/VNNI (+ AVX2/FMA/F16C), no AVX-VNNI needed (AMD Zen 4/5 lack
 *            it); BF16 matrices use AVX512-BF16 when the CPU has it.
 * Order is preference: the highest supported one is the default. */
typedef enum {
    RT_ISA_SCALAR = 0,
    RT_ISA_AVX2 = 1,
    RT_ISA_AVXVNNI = 2,
    RT_ISA_AVX512 = 3,
    RT_ISA_COUNT_
} rt_isa;

#define RT_ROW_BLOCK 16

/* Best ISA this CPU supports (cached). The environment variable
 * QFORGE_ISA=scalar|avx2|avxvnni|avx512 chooses another one the CPU supports (a name the CPU
 * cannot run, or an unknown one, is ignored). */
rt_isa rt_isa_detect(void);
/* True if the CPU (and the OS, for the AVX-512 state) can run isa. */
int rt_isa_supported(rt_isa isa);
/* Why isa cannot run here: the first missing CPU feature ("avx512vnni", ...), NULL if it can. */
const char *rt_isa_missing(rt_isa isa);
const char *rt_isa_name(rt_isa isa);
/* The isa named s (as rt_isa_name), -1 if none. */
int rt_isa_from_name(const char *s);
/* True when the CPU has AVX512-BF16 (the AVX-512 path then uses vdpbf16ps for BF16). */
int rt_cpu_has_avx512bf16(void);

/* True if weights of this GGUF type can be multiplied here. */
int rt_kernel_supported(int wtype);
/* The activation format (a GGUF type id: F32, F16, BF16, Q8_0, Q8_1 or Q8_K) for wtype; -1 if
 * unsupported. */
int rt_vec_dot_type(int wtype);
/* Bytes of one activation row of n values converted for wtype; 0 if n is not a multiple of
 * the weight's block size or the type is unsupported. */
size_t rt_act_row_size(int wtype, int64_t n);

/* Convert one activation row of n floats to wtype's vec-dot format (dst holds
 * rt_act_row_size bytes). Identical bytes on every ISA. */
void rt_quantize_act(rt_isa isa, int wtype, const float *x, void *dst, int64_t n);

/* Dot product of one weight row (n values of wtype) with one converted activation row. */
float rt_vec_dot(rt_isa isa, int wtype, int64_t n, const void *w, const void *xa);

/* y[t*ldy + r] = W[r] · x[t] for rows r in [0, nrows) and tokens t in [0, ntok).
 * w: nrows rows of ncols values of wtype, rows contiguous. x: ntok rows of ncols floats,
 * row stride ldx floats. act: scratch of ntok * rt_act_row_size(wtype, ncols) bytes (may be
 * NULL for F32 weights), or an already converted activation block when `act_ready` is set.
 * nthreads <= 0: OpenMP default. */
void rt_matmul(rt_isa isa, int wtype, const void *w, int64_t nrows, int64_t ncols,
               const float *x, int64_t ldx, int64_t ntok, float *y, int64_t ldy,
               void *act, int act_ready, int nthreads);

/* rt_matmul with a caller-owned workspace for the kernels' repacked activations and
 * per-thread weight panels: ws (64-byte aligned) of ws_size bytes, see rt_matmul_workspace.
 * A smaller (or NULL) workspace makes the call allocate its own. act_ready = 2 says that,
 * besides act, ws holds the repacked activations of the previous call on it, made for a
 * weight of the same type and row length on the same ntok activations. */
size_t rt_matmul_workspace(rt_isa isa, int wtype, int64_t ncols, int64_t ntok, int nthreads);
void rt_matmul_ws(rt_isa isa, int wtype, const void *w, int64_t nrows, int64_t ncols,
                  const float *x, int64_t ldx, int64_t ntok, float *y, int64_t ldy,
                  void *act, int act_ready, int nthreads, void *ws, size_t ws_size);

/* Elementwise helpers of the forward pass, per ISA (see rt_internal.h for the exact math). */
void rt_attn_row(rt_isa isa, const float *q, const float *kt, int64_t ldk, const float *v, int64_t ldv, int n,
                 int hd, float scale, float *p, float *out);
/* Rows i0..i0+m-1 of causal attention for one head (row i attends keys 0..i): queries
 * q + (i-i0)*ldq, outputs out + (i-i0)*ldo, each as rt_attn_row computes it. p: scratch of
 * rt_attn_scratch(i0 + m, hd) floats. */
void rt_attn_rows(rt_isa isa, const float *q, int64_t ldq, int i0, int m, const float *kt, int64_t ldk,
                  const float *v, int64_t ldv, int hd, float scale, float *p, float *out, int64_t ldo);
size_t rt_attn_scratch(int n, int hd);
void rt_swiglu(rt_isa isa, float *g, const float *u, int64_t n);
/* ggml's rms_norm followed by the weight: y[i] = (x[i] * (1/sqrtf(mean + eps))) * w[i] with
 * mean = (float)(sum of the f32 squares, in double / n). y may be x. */
void rt_rms_norm(rt_isa isa, const float *x, const float *w, int64_t n, float eps, float *y);
/* dst[c*ldd + r] = src[r*lds + c] for r < rows, c < cols (no overlap). */
void rt_transpose(rt_isa isa, const float *src, int64_t lds, int64_t rows, int64_t cols, float *dst, int64_t ldd);
/* *mx = max of x[0..n); returns sum expf(x[i] - *mx), each term an f32 (within 1 ulp of
 * libm's expf on every ISA), summed in double. n >= 1. */
double rt_sum_exp(rt_isa isa, const float *x, int64_t n, float *mx);
void rt_round_f16(rt_isa isa, float *x, int64_t n);

/* Convert ntok activation rows (stride ldx) for wtype into act (ntok rows of
 * rt_act_row_size bytes), in parallel over rows. */
void rt_quantize_act_rows(rt_isa isa, int wtype, const float *x, int64_t ldx, int64_t ntok,
                          int64_t ncols, void *act, int nthreads);

#endif
