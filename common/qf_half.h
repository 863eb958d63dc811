/* common — IEEE half (binary16) and bfloat16 conversions, round to nearest even as ggml does.
 *
 * Integer arithmetic only, so results never depend on the FPU mode or the compiler.
 * NaNs: f32 -> f16 gives the quiet NaN 0x7e00 of the same sign (ggml's portable conversion);
 * f32 -> bf16 keeps the sign and top payload bits and sets the quiet bit; f16 -> f32 keeps the
 * payload and sets the quiet bit. Every other value converts exactly as ggml (values beyond
 * the f16 range become infinities, subnormals are rounded, never flushed).
 *
 * The scalar conversions are inline (hot loops use them); the row functions take the 16-bit
 * side as bytes, so rows need no alignment. */
#ifndef QFORGE_QF_HALF_H
#define QFORGE_QF_HALF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint32_t qf_f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float qf_bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* m >> s (s in 1..31), rounded to nearest, ties to even. */
static inline uint32_t qf_shift_rne_(uint32_t m, unsigned s)
{
    const uint32_t q = m >> s, rest = m & ((1u << s) - 1), half = 1u << (s - 1);
    return q + (rest > half || (rest == half && (q & 1)));
}

static inline uint16_t qf_f32_to_f16(float f)
{
    const uint32_t u = qf_f32_bits(f);
    const uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    const uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u)                 /* NaN */
        return sign | 0x7e00;
    if (a >= 0x477ff000u)                /* >= 65520 (inf included) rounds to inf */
        return sign | 0x7c00;
    if (a >= 0x38800000u)                /* normal half: rebias 127 -> 15, drop 13 bits; */
        return sign | (uint16_t)qf_shift_rne_(a - 0x38000000u, 13); /* a carry bumps the exponent */
    if (a <= 0x33000000u)                /* <= 2^-25: rounds to (signed) zero */
        return sign;
    /* subnormal half: value / 2^-24 = m * 2^(e-126), e = 102..112 */
    const uint32_t e = a >> 23, m = (a & 0x7fffffu) | 0x800000u;
    return sign | (uint16_t)qf_shift_rne_(m, 126 - e);
}

static inline float qf_f16_to_f32(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    const uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ffu;
    if (e == 0x1f)                       /* inf, or NaN made quiet */
        return qf_bits_f32(sign | 0x7f800000u | (m << 13) | (m ? 0x400000u : 0));
    if (e == 0)                          /* zero or subnormal: m * 2^-24, exact */
        return qf_bits_f32(sign | qf_f32_bits((float)m * 0x1p-24f));
    return qf_bits_f32(sign | ((e + 112) << 23) | (m << 13));
}

static inline uint16_t qf_f32_to_bf16(float f)
{
    const uint32_t u = qf_f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN: keep sign and payload top, set the quiet bit */
        return (uint16_t)((u >> 16) | 0x40);
    /* nearest even on the low 16 bits; an overflow carries into inf correctly */
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
}

static inline float qf_bf16_to_f32(uint16_t h) { return qf_bits_f32((uint32_t)h << 16); }

/* Rows of n values; the 16-bit side is n halves in host order (little-endian: libgguf requires
 * it) at any alignment. */
void qf_f32_to_f16_row(const float *x, void *y, size_t n);
void qf_f16_to_f32_row(const void *x, float *y, size_t n);
void qf_f32_to_bf16_row(const float *x, void *y, size_t n);
void qf_bf16_to_f32_row(const void *x, float *y, size_t n);

#endif
