/* IEEE half (binary16) and bfloat16 conversions, round to nearest even, in integer arithmetic
 * so the result never depends on the FPU mode or compiler. NaNs become quiet NaNs of the same
 * sign: f16 0x7e00 (ggml's portable conversion), bf16 keeps the top payload bits. */
#include <string.h>

#include "libquant/lq.h"

static inline uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Shift m right by s (1..31) rounding to nearest, ties to even. */
static inline uint32_t shift_rne(uint32_t m, unsigned s)
{
    uint32_t q = m >> s;
    uint32_t rest = m & ((1u << s) - 1);
    uint32_t half = 1u << (s - 1);
    if (rest > half || (rest == half && (q & 1)))
        q++;
    return q;
}

uint16_t lq_f32_to_f16(float f)
{
    const uint32_t u = f32_bits(f);
    const uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    const uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u)                  /* NaN */
        return sign | 0x7e00;
    if (a >= 0x477ff000u)                 /* >= 65520 (incl. inf) rounds to inf */
        return sign | 0x7c00;
    if (a >= 0x38800000u) {               /* normal half: rebias 127 -> 15, drop 13 bits */
        /* a carry out of the mantissa correctly bumps the exponent */
        return sign | (uint16_t)shift_rne(a - 0x38000000u, 13);
    }
    if (a <= 0x33000000u)                 /* <= 2^-25: rounds to (signed) zero */
        return sign;
    /* subnormal half: value / 2^-24 = m * 2^(e-126), with e = 102..112 */
    const uint32_t e = a >> 23;
    const uint32_t m = (a & 0x7fffffu) | 0x800000u;
    return sign | (uint16_t)shift_rne(m, 126 - e);
}

float lq_f16_to_f32(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    const uint32_t e = (h >> 10) & 0x1f;
    const uint32_t m = h & 0x3ffu;
    if (e == 0x1f)                        /* inf, or NaN made quiet */
        return bits_f32(sign | 0x7f800000u | (m << 13) | (m ? 0x400000u : 0));
    if (e == 0) {                         /* zero or subnormal: m * 2^-24, exact */
        const float v = (float)m * 0x1p-24f;
        return bits_f32(sign | f32_bits(v));
    }
    return bits_f32(sign | ((e + 112) << 23) | (m << 13));
}

uint16_t lq_f32_to_bf16(float f)
{
    const uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)  /* NaN: keep sign and payload top, set quiet bit */
        return (uint16_t)((u >> 16) | 0x40);
    /* round to nearest even on the low 16 bits; overflow carries into inf correctly */
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
}

float lq_bf16_to_f32(uint16_t h)
{
    return bits_f32((uint32_t)h << 16);
}

void lq_f32_to_f16_row(const float *x, uint16_t *y, size_t n)
{
    for (size_t i = 0; i < n; ++i)
        y[i] = lq_f32_to_f16(x[i]);
}

void lq_f16_to_f32_row(const uint16_t *x, float *y, size_t n)
{
    for (size_t i = 0; i < n; ++i)
        y[i] = lq_f16_to_f32(x[i]);
}

void lq_f32_to_bf16_row(const float *x, uint16_t *y, size_t n)
{
    for (size_t i = 0; i < n; ++i)
        y[i] = lq_f32_to_bf16(x[i]);
}

void lq_bf16_to_f32_row(const uint16_t *x, float *y, size_t n)
{
    for (size_t i = 0; i < n; ++i)
        y[i] = lq_bf16_to_f32(x[i]);
}
