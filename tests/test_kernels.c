/* Kernels: activation conversion (golden values), every weight type on every ISA this CPU has
 * against the exact product of the dequantized operands, matmul thread independence.
 *
 * Tolerances (stated, see runtime/kernels.h):
 *  - kernel vs exact double dot of the dequantized weight and the dequantized *converted*
 *    activation: |diff| <= 2e-6 * sum|w_i x_i| + 1e-7 (only float rounding of block scales
 *    and sums remains; integer parts are exact);
 *  - kernel vs dequantize-then-F32 dot with the original activations: the activation
 *    rounding is bounded per element (Q8_0/Q8_1: amax_block/254, Q8_K: amax_superblock/254,
 *    F16: 2^-11 |x|, BF16: 2^-8 |x|), so |diff| <= sum |w_i| * bound_i + the above. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "libquant/lq.h"
#include "libquant/lq_blocks.h"
#include "runtime/kernels.h"

static const int k_types[] = {GGUF_F32,  GGUF_F16,  GGUF_BF16, GGUF_Q8_0, GGUF_Q4_0, GGUF_Q4_1, GGUF_Q5_0,
                              GGUF_Q5_1, GGUF_Q2_K, GGUF_Q3_K, GGUF_Q4_K, GGUF_Q5_K, GGUF_Q6_K};
#define N_TYPES (sizeof k_types / sizeof k_types[0])

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float frand(void) /* uniform in [-1, 1) */
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 40) * (1.0 / 8388608.0)) - 1.0f;
}

static void fill(float *x, int64_t n, float scale)
{
    for (int64_t i = 0; i < n; i++) {
        x[i] = frand() * scale;
        if (i % 97 == 5)
            x[i] *= 8; /* outliers, as activations have */
    }
}

static double bound_act(int wtype, const float *x, int64_t n, const float *w_deq)
{
    int vt = rt_vec_dot_type(wtype);
    double b = 0;
    if (vt == GGUF_F32)
        return 0;
    if (vt == GGUF_F16 || vt == GGUF_BF16) {
        double rel = vt == GGUF_F16 ? 1.0 / 2048 : 1.0 / 256;
        for (int64_t i = 0; i < n; i++)
            b += fabs(w_deq[i]) * fabs(x[i]) * rel;
        return b;
    }
    int blk = vt == GGUF_Q8_K ? 256 : 32;
    for (int64_t s = 0; s < n; s += blk) {
        float amax = 0;
        for (int j = 0; j < blk; j++)
            amax = fmaxf(amax, fabsf(x[s + j]));
        for (int j = 0; j < blk; j++)
            b += fabs(w_deq[s + j]) * (amax / 254.0) * 1.0001;
    }
    return b;
}

/* Decode a converted activation row back to floats. */
static void act_decode(int wtype, const void *a, float *x, int64_t n)
{
    int vt = rt_vec_dot_type(wtype);
    if (vt == GGUF_F32) {
        memcpy(x, a, (size_t)n * 4);
    } else if (vt == GGUF_F16) {
        lq_f16_to_f32_row(a, x, (size_t)n);
    } else if (vt == GGUF_BF16) {
        lq_bf16_to_f32_row(a, x, (size_t)n);
    } else if (vt == GGUF_Q8_0) {
        const lq_block_q8_0 *b = a;
        for (int64_t i = 0; i < n; i++)
            x[i] = lq_f16_to_f32(b[i / 32].d) * b[i / 32].qs[i % 32];
    } else if (vt == GGUF_Q8_1) {
        const lq_block_q8_1 *b = a;
        for (int64_t i = 0; i < n; i++)
            x[i] = lq_f16_to_f32(b[i / 32].d) * b[i / 32].qs[i % 32];
    } else {
        const lq_block_q8_K *b = a;
        for (int64_t i = 0; i < n; i++)
            x[i] = b[i / 256].d * b[i / 256].qs[i % 256];
    }
}

static void q8_0_activation_golden(int isa)
{
    /* amax 127 -> scale 1: ties go to even as in ggml's x86 build (2.5 -> 2, 3.5 -> 4, -0.5 -> 0). */
    float x[32] = {127, 2.5f, 3.5f, -0.5f, -1.5f, 0.49f, -127, 10.5f};
    {
        lq_block_q8_0 b;
        rt_quantize_act(isa, GGUF_Q8_0, x, &b, 32);
        cr_assert_eq(b.d, 0x3c00, "%s: d = 0x%04x", rt_isa_name(isa), b.d); /* fp16 1.0 */
        const int8_t expect[8] = {127, 2, 4, 0, -2, 0, -127, 10};
        for (int j = 0; j < 8; j++)
            cr_assert_eq(b.qs[j], expect[j], "%s: q[%d] = %d, expected %d", rt_isa_name(isa), j, b.qs[j], expect[j]);
        lq_block_q8_1 b1;
        rt_quantize_act(isa, GGUF_Q4_1, x, &b1, 32);
        cr_assert_eq(b1.s, lq_f32_to_f16(127 + 2 + 4 - 2 - 127 + 10), "%s: q8_1 sum", rt_isa_name(isa));
    }
}

static void q8_K_activation_golden(int isa)
{
    /* The signed value of largest magnitude maps to -127: here max = -2, iscale = 63.5. */
    float x[256] = {0};
    x[0] = -2.0f;
    x[1] = 1.0f;
    x[2] = 0.5f;
    x[17] = -1.0f;
    lq_block_q8_K b;
    rt_quantize_act(isa, GGUF_Q4_K, x, &b, 256);
    cr_assert_float_eq(b.d, 1.0f / 63.5f, 1e-9f);
    cr_assert_eq(b.qs[0], -127); /* the extreme value maps to -127 */
    cr_assert_eq(b.qs[1], 64);   /* 63.5 rounds to even: 64 */
    cr_assert_eq(b.qs[2], 32);   /* 31.75 -> 32 */
    cr_assert_eq(b.qs[17], -64); /* -63.5 -> -64 */
    cr_assert_eq(b.bsums[0], -127 + 64 + 32);
    cr_assert_eq(b.bsums[1], -64);
}

static void activation_bytes_match_scalar(int isa)
{
    const int64_t n = 1024;
    float *x = malloc(n * sizeof *x);
    fill(x, n, 3.0f);
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        const size_t rs = rt_act_row_size(k_types[ti], n);
        cr_assert(rs > 0);
        unsigned char *ref = malloc(rs), *got = malloc(rs);
        rt_quantize_act(RT_ISA_SCALAR, k_types[ti], x, ref, n);
        {
            rt_quantize_act(isa, k_types[ti], x, got, n);
            cr_assert(memcmp(ref, got, rs) == 0, "%s activations differ on %s", gguf_type_info(k_types[ti])->name,
                      rt_isa_name(isa));
        }
        free(ref);
        free(got);
    }
    free(x);
}

static void vec_dot_matches_exact_product(int isa)
{
    const int64_t n = 768;
    const int rows = 3;
    float *w = malloc(rows * n * sizeof *w), *x = malloc(n * sizeof *x), *wd = malloc(n * sizeof *wd),
          *xd = malloc(n * sizeof *xd);
    fill(w, rows * n, 0.05f);
    fill(x, n, 2.0f);
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        const int type = k_types[ti];
        const char *tn = gguf_type_info(type)->name;
        const size_t wrs = gguf_row_size(type, n);
        unsigned char *wq = malloc(wrs * rows);
        for (int r = 0; r < rows; r++)
            cr_assert_eq(lq_quantize_row(type, w + r * n, wq + r * wrs, n, NULL), wrs);
        unsigned char *act = malloc(rt_act_row_size(type, n));
        rt_quantize_act(RT_ISA_SCALAR, type, x, act, n);
        act_decode(type, act, xd, n);
        for (int r = 0; r < rows; r++) {
            cr_assert_eq(lq_dequantize_row(type, wq + r * wrs, wd, n), 0);
            double exact = 0, mag = 0, orig = 0;
            for (int64_t i = 0; i < n; i++) {
                exact += (double)wd[i] * xd[i];
                mag += fabs((double)wd[i] * xd[i]);
                orig += (double)wd[i] * x[i];
            }
            if (rt_vec_dot_type(type) == GGUF_Q8_1) {
                /* the activation carries s = fp16(d * sum q): the min term uses that rounded sum */
                const lq_block_q8_1 *a = (const lq_block_q8_1 *)act;
                const size_t bs = gguf_type_info(type)->type_size;
                for (int64_t b = 0; b < n / 32; b++) {
                    uint16_t mh;
                    memcpy(&mh, wq + r * wrs + b * bs + 2, 2);
                    int sq = 0;
                    for (int j = 0; j < 32; j++)
                        sq += a[b].qs[j];
                    exact += (double)lq_f16_to_f32(mh) *
                             ((double)lq_f16_to_f32(a[b].s) - (double)lq_f16_to_f32(a[b].d) * sq);
                }
            }
            const double tol = 2e-6 * mag + 1e-7;
            const double tol_orig = bound_act(type, x, n, wd) + tol;
            {
                const float got = rt_vec_dot(isa, type, n, wq + r * wrs, act);
                cr_assert(fabs(got - exact) <= tol, "%s on %s row %d: %.9g vs exact %.9g (tol %.3g)", tn,
                          rt_isa_name(isa), r, got, exact, tol);
                cr_assert(fabs(got - orig) <= tol_orig, "%s on %s row %d: %.9g vs f32 %.9g (bound %.3g)", tn,
                          rt_isa_name(isa), r, got, orig, tol_orig);
            }
        }
        free(act);
        free(wq);
    }
    free(w);
    free(x);
    free(wd);
    free(xd);
}

/* Exact double product of one weight row (dequantized) with one converted activation row
 * (decoded), and sum |w_i x_i| for the tolerance. */
static double exact_dot(int type, const void *wrow, const void *act, int64_t n, double *mag)
{
    float *wd = malloc(n * sizeof *wd), *xd = malloc(n * sizeof *xd);
    cr_assert_eq(lq_dequantize_row(type, wrow, wd, n), 0);
    act_decode(type, act, xd, n);
    double e = 0, m = 0;
    for (int64_t i = 0; i < n; i++) {
        e += (double)wd[i] * xd[i];
        m += fabs((double)wd[i] * xd[i]);
    }
    if (rt_vec_dot_type(type) == GGUF_Q8_1) { /* the min term uses the stored fp16 s = d * sum q */
        const lq_block_q8_1 *a = act;
        const size_t bs = gguf_type_info(type)->type_size;
        for (int64_t b = 0; b < n / 32; b++) {
            uint16_t mh;
            memcpy(&mh, (const unsigned char *)wrow + b * bs + 2, 2);
            int sq = 0;
            for (int j = 0; j < 32; j++)
                sq += a[b].qs[j];
            e += (double)lq_f16_to_f32(mh) * ((double)lq_f16_to_f32(a[b].s) - (double)lq_f16_to_f32(a[b].d) * sq);
        }
    }
    free(wd);
    free(xd);
    *mag = m;
    return e;
}

/* Every matmul element on every ISA against the exact product: 37 rows (two full row blocks
 * and a partial one) × 37 tokens (two full token tiles and a partial one), rows of 768 values
 * (3 super-blocks) and, for the 32-blocks and F32, 96 and 100 (an odd block count, a row that
 * is not a multiple of 16). */
static void matmul_matches_exact_product(int isa)
{
    const int64_t rows = 37, ntok = 37;
    for (int shape = 0; shape < 3; shape++) {
        for (size_t ti = 0; ti < N_TYPES; ti++) {
            const int type = k_types[ti];
            const int64_t n = shape == 0 ? 768 : shape == 1 ? 96 : 100;
            if (n % gguf_type_info(type)->block_size)
                continue;
            const size_t wrs = gguf_row_size(type, n), ars = rt_act_row_size(type, n);
            float *w = malloc(rows * n * sizeof *w), *x = malloc(ntok * n * sizeof *x),
                  *y = malloc(rows * ntok * sizeof *y);
            fill(w, rows * n, 0.05f);
            fill(x, ntok * n, 1.0f);
            unsigned char *wq = malloc(wrs * rows), *act = malloc(ars * ntok), *a1 = malloc(ars);
            for (int r = 0; r < rows; r++)
                lq_quantize_row(type, w + r * n, wq + r * wrs, n, NULL);
            {
                rt_matmul(isa, type, wq, rows, n, x, n, ntok, y, rows, act, 0, 2);
                for (int t = 0; t < ntok; t++) {
                    rt_quantize_act(RT_ISA_SCALAR, type, x + t * n, a1, n);
                    for (int r = 0; r < rows; r++) {
                        double mag;
                        const double e = exact_dot(type, wq + r * wrs, a1, n, &mag);
                        const float got = y[t * rows + r];
                        cr_assert(fabs(got - e) <= 2e-6 * mag + 1e-7, "%s n=%lld on %s [t%d, r%d]: %.9g vs exact %.9g",
                                  gguf_type_info(type)->name, (long long)n, rt_isa_name(isa), t, r, got, e);
                    }
                }
            }
            free(w);
            free(x);
            free(y);
            free(wq);
            free(act);
            free(a1);
        }
    }
}

/* rt_matmul against per-element dots, and bit-identical results for 1, 2 and 3 threads. */
static void matmul_matches_dots_and_is_thread_independent(int isa)
{
    const int64_t n = 512, rows = 37, ntok = 27; /* odd sizes exercise every tile edge */
    float *w = malloc(rows * n * sizeof *w), *x = malloc(ntok * n * sizeof *x);
    fill(w, rows * n, 0.05f);
    fill(x, ntok * n, 1.0f);
    float *y1 = malloc(rows * ntok * sizeof *y1), *y2 = malloc(rows * ntok * sizeof *y2);
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        const int type = k_types[ti];
        const size_t wrs = gguf_row_size(type, n), ars = rt_act_row_size(type, n);
        unsigned char *wq = malloc(wrs * rows), *act = malloc(ars * ntok);
        for (int r = 0; r < rows; r++)
            lq_quantize_row(type, w + r * n, wq + r * wrs, n, NULL);
        {
            rt_matmul(isa, type, wq, rows, n, x, n, ntok, y1, rows, act, 0, 1);
            for (int nth = 2; nth <= 3; nth++) {
                rt_matmul(isa, type, wq, rows, n, x, n, ntok, y2, rows, act, 0, nth);
                cr_assert(memcmp(y1, y2, rows * ntok * sizeof *y1) == 0, "%s on %s: %d threads differ",
                          gguf_type_info(type)->name, rt_isa_name(isa), nth);
            }
            for (int t = 0; t < ntok; t++) {
                rt_quantize_act(isa, type, x + t * n, act, n);
                for (int r = 0; r < rows; r++) {
                    const float d = rt_vec_dot(isa, type, n, wq + r * wrs, act);
                    cr_assert(fabsf(d - y1[t * rows + r]) <= 1e-5f * (1 + fabsf(d)), "%s on %s: [%d,%d] %g vs %g",
                              gguf_type_info(type)->name, rt_isa_name(isa), t, r, y1[t * rows + r], d);
                }
            }
        }
        free(wq);
        free(act);
    }
    free(w);
    free(x);
    free(y1);
    free(y2);
}

static void attention_row_and_helpers_match_scalar(int isa)
{
    const int T = 45, hd = 32;
    const int64_t ldk = 64, ldv = 96;
    float *q = malloc(hd * sizeof *q), *kt = malloc(hd * ldk * sizeof *kt), *v = malloc(T * ldv * sizeof *v);
    float p[64], ref[32], got[32];
    fill(q, hd, 1.0f);
    fill(kt, hd * ldk, 1.0f);
    fill(v, T * ldv, 1.0f);
    rt_round_f16(RT_ISA_SCALAR, q, hd);
    /* exact softmax-weighted sum for the scalar reference */
    double s[64], mx = -1e30, sum = 0;
    for (int j = 0; j < T; j++) {
        s[j] = 0;
        for (int d = 0; d < hd; d++)
            s[j] += (double)q[d] * kt[d * ldk + j];
        s[j] *= 1.0 / sqrt(hd);
        mx = fmax(mx, s[j]);
    }
    for (int j = 0; j < T; j++)
        sum += exp(s[j] - mx);
    rt_attn_row(RT_ISA_SCALAR, q, kt, ldk, v, ldv, T, hd, 1.0f / sqrtf(hd), p, ref);
    for (int d = 0; d < hd; d++) {
        double e = 0;
        for (int j = 0; j < T; j++)
            e += exp(s[j] - mx) / sum * v[j * ldv + d];
        cr_assert(fabs(ref[d] - e) < 2e-3, "scalar attention [%d] %g vs %g", d, ref[d], e); /* fp16 probabilities */
    }
    {
        rt_attn_row(isa, q, kt, ldk, v, ldv, T, hd, 1.0f / sqrtf(hd), p, got);
        for (int d = 0; d < hd; d++)
            cr_assert(fabsf(got[d] - ref[d]) < 1e-3f, "%s attention [%d] %g vs %g", rt_isa_name(isa), d, got[d], ref[d]);
        float g1[67], g2[67], u[67];
        fill(g1, 67, 6.0f);
        fill(u, 67, 1.0f);
        memcpy(g2, g1, sizeof g1);
        rt_swiglu(RT_ISA_SCALAR, g1, u, 67);
        rt_swiglu(isa, g2, u, 67);
        for (int i = 0; i < 67; i++)
            cr_assert(fabsf(g1[i] - g2[i]) <= 1e-6f * (1 + fabsf(g1[i])), "%s swiglu [%d]", rt_isa_name(isa), i);
        fill(g1, 67, 100.0f);
        memcpy(g2, g1, sizeof g1);
        rt_round_f16(RT_ISA_SCALAR, g1, 67);
        rt_round_f16(isa, g2, 67);
        cr_assert(memcmp(g1, g2, sizeof g1) == 0, "%s fp16 rounding differs", rt_isa_name(isa));
    }
    free(q);
    free(kt);
    free(v);
}

/* Multi-row attention tiles against the scalar row kernel: tiles at the start, in the middle
 * and partial, head sizes 32 and 48 (an odd number of 16-wide column groups), 64-byte
 * aligned scratch as the model gives it. */
static void attention_rows_match_row_kernel(int isa)
{
    const int T = 45;
    const int64_t ldq = 100, ldk = 64, ldv = 96, ldo = 72;
    float *q = malloc(T * ldq * sizeof *q), *kt = malloc(48 * ldk * sizeof *kt), *v = malloc(T * ldv * sizeof *v);
    float *ref = malloc(T * ldo * sizeof *ref), *got = malloc(T * ldo * sizeof *got);
    float *p = aligned_alloc(64, rt_attn_scratch(T, 48) * sizeof(float) + 64);
    fill(q, T * ldq, 1.0f);
    fill(kt, 48 * ldk, 1.0f);
    fill(v, T * ldv, 1.0f);
    rt_round_f16(RT_ISA_SCALAR, q, T * ldq);
    rt_round_f16(RT_ISA_SCALAR, kt, 48 * ldk);
    rt_round_f16(RT_ISA_SCALAR, v, T * ldv);
    const int tiles[][2] = {{0, 16}, {16, 16}, {29, 16}, {40, 5}, {3, 1}};
    for (int hd = 32; hd <= 48; hd += 16) {
        const float scale = 1.0f / sqrtf((float)hd);
        for (int i = 0; i < T; i++)
            rt_attn_row(RT_ISA_SCALAR, q + i * ldq, kt, ldk, v, ldv, i + 1, hd, scale, p, ref + i * ldo);
        {
            for (size_t k = 0; k < sizeof tiles / sizeof tiles[0]; k++) {
                const int i0 = tiles[k][0], m = tiles[k][1];
                memset(got, 0, T * ldo * sizeof *got);
                rt_attn_rows(isa, q + i0 * ldq, ldq, i0, m, kt, ldk, v, ldv, hd, scale, p, got + i0 * ldo, ldo);
                for (int r = 0; r < m; r++)
                    for (int d = 0; d < hd; d++) {
                        const float a = got[(i0 + r) * ldo + d], b = ref[(i0 + r) * ldo + d];
                        cr_assert(fabsf(a - b) <= 1e-3f, "%s hd %d tile %d+%d row %d [%d]: %g vs %g", rt_isa_name(isa),
                                  hd, i0, m, i0 + r, d, a, b);
                    }
                if (i0 + m < T) /* nothing written past the tile */
                    cr_assert_eq(got[(i0 + m) * ldo], 0.0f);
            }
        }
    }
    free(q);
    free(kt);
    free(v);
    free(ref);
    free(got);
    free(p);
}

/* The log-sum-exp helper of the perplexity: the same max and (to 1e-9) the same sum as libm's
 * expf summed in double, for rows with a wide range and lengths not a multiple of 16. */
static void sum_exp_matches_libm(int isa)
{
    const int lens[] = {1, 7, 16, 37, 4096};
    float *x = malloc(4096 * sizeof *x);
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        const int n = lens[li];
        fill(x, n, 30.0f); /* logits in [-240, 240]: many terms underflow to 0 */
        double ref = 0;
        float m = x[0];
        for (int i = 1; i < n; i++)
            m = fmaxf(m, x[i]);
        for (int i = 0; i < n; i++)
            ref += expf(x[i] - m);
        {
            float mx;
            const double got = rt_sum_exp(isa, x, n, &mx);
            cr_assert_eq(mx, m, "%s n=%d: max %g vs %g", rt_isa_name(isa), n, mx, m);
            cr_assert(fabs(got - ref) <= 1e-9 * ref, "%s n=%d: %.17g vs %.17g", rt_isa_name(isa), n, got, ref);
        }
    }
    free(x);
}

/* RMSNorm against a double computation, and transposes of odd shapes, on every ISA. */
static void rms_norm_and_transpose(int isa)
{
    const int n = 259;
    float x[259], w[259], y[259];
    fill(x, n, 3.0f);
    fill(w, n, 1.0f);
    double ss = 0;
    for (int i = 0; i < n; i++)
        ss += (double)x[i] * x[i];
    const double sc = 1.0 / sqrt(ss / n + 1e-5);
    float src[37 * 21], dst[21 * 40];
    for (int i = 0; i < 37 * 21; i++)
        src[i] = (float)i;
    {
        rt_rms_norm(isa, x, w, n, 1e-5f, y);
        for (int i = 0; i < n; i++)
            cr_assert(fabs(y[i] - x[i] * sc * w[i]) <= 1e-6 * (1 + fabs(x[i] * sc * w[i])), "%s rms_norm [%d]",
                      rt_isa_name(isa), i);
        memset(dst, 0, sizeof dst);
        rt_transpose(isa, src, 21, 37, 19, dst, 40); /* 37 rows of 19 of the 21 columns */
        for (int r = 0; r < 37; r++)
            for (int c = 0; c < 21; c++)
                cr_assert_eq(dst[c * 40 + r], c < 19 ? src[r * 21 + c] : 0.0f, "%s transpose [%d,%d]", rt_isa_name(isa),
                             r, c);
        for (int c = 0; c < 21; c++)
            for (int r = 37; r < 40; r++)
                cr_assert_eq(dst[c * 40 + r], 0.0f, "%s transpose wrote outside", rt_isa_name(isa));
    }
}

Test(kernels, type_table)
{
    cr_assert_eq(rt_vec_dot_type(GGUF_Q4_0), GGUF_Q8_0);
    cr_assert_eq(rt_vec_dot_type(GGUF_Q5_1), GGUF_Q8_1);
    cr_assert_eq(rt_vec_dot_type(GGUF_Q6_K), GGUF_Q8_K);
    cr_assert_eq(rt_vec_dot_type(GGUF_F16), GGUF_F16);
    cr_assert_eq(rt_vec_dot_type(GGUF_Q8_K), -1);
    cr_assert_eq(rt_act_row_size(GGUF_Q4_K, 512), 2 * sizeof(lq_block_q8_K));
    cr_assert_eq(rt_act_row_size(GGUF_Q4_K, 500), 0);
    cr_assert_eq(rt_vec_dot_type(GGUF_IQ4_NL), -1); /* no IQ4 kernels yet */
    /* the types these tests multiply are exactly the table's kernel types */
    int n = 0;
    for (int id = 0; id < GGUF_TYPE_MAX_; id++) {
        bool listed = false;
        for (size_t ti = 0; ti < N_TYPES; ti++)
            listed |= k_types[ti] == id;
        cr_assert_eq(rt_kernel_supported(id) != 0, listed, "type %d", id);
        n += listed;
    }
    cr_assert_eq(n, (int)N_TYPES);
    cr_assert(rt_isa_supported(RT_ISA_SCALAR));
    cr_assert(rt_isa_supported(rt_isa_detect()));
}

/* Every check above on every kernel path: a path this CPU cannot run is reported as skipped
 * with the feature it lacks. */
static void need(int isa)
{
    if (!rt_isa_supported(isa))
        cr_skip_test("the %s path needs %s, which this CPU lacks", rt_isa_name(isa), rt_isa_missing(isa));
}
#define PATH_TESTS(SUITE, ISA) \
    Test(SUITE, q8_0_activation_golden) { need(ISA); q8_0_activation_golden(ISA); } \
    Test(SUITE, q8_K_activation_golden) { need(ISA); q8_K_activation_golden(ISA); } \
    Test(SUITE, activation_bytes_match_scalar) { need(ISA); activation_bytes_match_scalar(ISA); } \
    Test(SUITE, vec_dot_matches_exact_product) { need(ISA); vec_dot_matches_exact_product(ISA); } \
    Test(SUITE, matmul_matches_exact_product) { need(ISA); matmul_matches_exact_product(ISA); } \
    Test(SUITE, matmul_matches_dots_and_is_thread_independent) { need(ISA); matmul_matches_dots_and_is_thread_independent(ISA); } \
    Test(SUITE, attention_row_and_helpers_match_scalar) { need(ISA); attention_row_and_helpers_match_scalar(ISA); } \
    Test(SUITE, attention_rows_match_row_kernel) { need(ISA); attention_rows_match_row_kernel(ISA); } \
    Test(SUITE, sum_exp_matches_libm) { need(ISA); sum_exp_matches_libm(ISA); } \
    Test(SUITE, rms_norm_and_transpose) { need(ISA); rms_norm_and_transpose(ISA); }
PATH_TESTS(scalar, RT_ISA_SCALAR)
PATH_TESTS(avx2, RT_ISA_AVX2)
PATH_TESTS(avxvnni, RT_ISA_AVXVNNI)
PATH_TESTS(avx512, RT_ISA_AVX512)

/* The scalar path reproduces llama.cpp's AVX2 build lane by lane, as the AVX2 and AVX-VNNI
 * paths do with vectors: their products must be the same bits, for every type. */
static void matmul_bit_identical_to_scalar(int isa)
{
    const int64_t rows = 37, ntok = 21, n = 768;
    float *w = malloc(rows * n * sizeof *w), *x = malloc(ntok * n * sizeof *x);
    float *y0 = malloc(rows * ntok * sizeof *y0), *y1 = malloc(rows * ntok * sizeof *y1);
    fill(w, rows * n, 0.05f);
    fill(x, ntok * n, 1.0f);
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        const int type = k_types[ti];
        const size_t wrs = gguf_row_size(type, n);
        unsigned char *wq = malloc(wrs * rows), *act = malloc(rt_act_row_size(type, n) * ntok);
        for (int r = 0; r < rows; r++)
            lq_quantize_row(type, w + r * n, wq + r * wrs, n, NULL);
        rt_matmul(RT_ISA_SCALAR, type, wq, rows, n, x, n, ntok, y0, rows, act, 0, 1);
        rt_matmul(isa, type, wq, rows, n, x, n, ntok, y1, rows, act, 0, 2);
        for (int64_t i = 0; i < rows * ntok; i++)
            cr_assert(memcmp(&y0[i], &y1[i], 4) == 0, "%s on %s [t%d r%d]: %.9g vs scalar %.9g", gguf_type_info(type)->name,
                      rt_isa_name(isa), (int)(i / rows), (int)(i % rows), y1[i], y0[i]);
        free(wq);
        free(act);
    }
    free(w);
    free(x);
    free(y0);
    free(y1);
}
Test(avx2, matmul_bit_identical_to_scalar) { need(RT_ISA_AVX2); matmul_bit_identical_to_scalar(RT_ISA_AVX2); }
Test(avxvnni, matmul_bit_identical_to_scalar) { need(RT_ISA_AVXVNNI); matmul_bit_identical_to_scalar(RT_ISA_AVXVNNI); }
