/* IQ4_NL and IQ4_XS weights: the portable (scalar) kernels. The SIMD ones are in
 * kernels_iq4_avx2.c; kernels.c looks both tables up after the path's own table.
 *
 * What llama.cpp's x86 CPU builds compute (the AVX2 and the AVX-512 build alike, so every
 * path here has the same bits):
 *   IQ4_NL × Q8_0 — the repacked 8-row GEMM of the CPU "repack" buffer (rows in multiples of
 *     8): per output one f32 chain over the blocks of 32,
 *       acc = fma(f32(sum_i grid[q_i] * x_i), d_w * d_x, acc);
 *   IQ4_XS × Q8_K — ggml_vec_dot_iq4_xs_q8_K: 8 f32 lanes, lane l holding, per super-block,
 *       isum_l = sum over the 8 sub-blocks j of (ls_j - 32) * sum_{i=4l..4l+3} grid[q_ji] * x_ji
 *     (an exact integer), lane_l = fma(d_w * d_x, f32(isum_l), lane_l); the result is the
 *     8 lanes added as the AVX2 horizontal sum does ((l, l+4) pairs, then (0,2), (1,3), then the two).
 * The integer sums are exact on every path (|grid| <= 127, |x| <= 127: no 16-bit saturation). */
#include "runtime/rt_internal.h"

#include "libquant/lq_iq4.h"

/* Lanes 0..7 summed in the AVX2 horizontal-add order. */
static float hsum8_order(const float v[8])
{
    const float a0 = v[0] + v[4], a1 = v[1] + v[5], a2 = v[2] + v[6], a3 = v[3] + v[7];
    return (a0 + a2) + (a1 + a3);
}

int rt_iq4_is(int wtype) { return wtype == GGUF_IQ4_NL || wtype == GGUF_IQ4_XS; }

/* Sum of grid[q] * x over the 32 values of a sub-block whose 16 bytes qs hold value i in the
 * low nibble of byte i and value i + 16 in the high one; lanes l = values 4l..4l+3 when lane
 * is given. */
static int sub_dot(const uint8_t *qs, const int8_t *x, int lane[8])
{
    int s = 0;
    for (int i = 0; i < 32; i++) {
        const int q = i < 16 ? qs[i] & 15 : qs[i - 16] >> 4;
        const int p = lq_iq4_grid[q] * x[i];
        s += p;
        if (lane)
            lane[i / 4] += p;
    }
    return s;
}

static float dot_iq4_nl(int64_t n, const void *w, const void *xa)
{
    const lq_block_iq4_nl *x = w;
    const lq_block_q8_0 *y = xa;
    float acc = 0;
    for (int64_t b = 0; b < n / 32; b++)
        acc = fmaf((float)sub_dot(x[b].qs, y[b].qs, NULL), rt_h2f(x[b].d) * rt_h2f(y[b].d), acc);
    return acc;
}

static float dot_iq4_xs(int64_t n, const void *w, const void *xa)
{
    const lq_block_iq4_xs *x = w;
    const lq_block_q8_K *y = xa;
    float lane[8] = {0};
    for (int64_t b = 0; b < n / 256; b++) {
        int isum[8] = {0};
        for (int j = 0; j < 8; j++) {
            int l4[8] = {0};
            sub_dot(x[b].qs + 16 * j, y[b].qs + 32 * j, l4);
            const int ls = lq_iq4_xs_scale(&x[b], j);
            for (int l = 0; l < 8; l++)
                isum[l] += ls * l4[l];
        }
        const float d = rt_h2f(x[b].d) * y[b].d;
        for (int l = 0; l < 8; l++)
            lane[l] = fmaf(d, (float)isum[l], lane[l]);
    }
    return hsum8_order(lane);
}

const rt_kernel_table rt_kernels_iq4_scalar = {
    .dot = {[GGUF_IQ4_NL] = dot_iq4_nl, [GGUF_IQ4_XS] = dot_iq4_xs},
};
