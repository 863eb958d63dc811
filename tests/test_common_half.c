/* common/qf_half: fp16 / bf16 conversions: golden files from ggml, exact edge cases, and an
 * independent double-precision reference for round-to-nearest-even. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/qf_half.h"
#include "libquant/lq.h"
#include "runtime/rt_internal.h"
#include "tests/testutil.h"

#define NVAL (16 * 512)

static uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void *load(const char *rel, size_t expect)
{
    char *path = tu_shared_path(rel);
    cr_assert_not_null(path);
    size_t n = 0;
    void *buf = tu_read_file(path, &n);
    cr_assert_not_null(buf, "cannot read %s", path);
    cr_assert_eq(n, expect, "%s: %zu bytes, expected %zu", path, n, expect);
    free(path);
    return buf;
}

Test(golden, f16)
{
    TU_REQUIRE_SHARED();
    float *x = load("golden/quant/input.f32", NVAL * 4);
    uint16_t *g = load("golden/quant/input.f16", NVAL * 2);
    uint16_t h[NVAL];
    float y[NVAL];
    qf_f32_to_f16_row(x, h, NVAL);
    for (int i = 0; i < NVAL; ++i)
        if (h[i] != g[i])
            cr_assert_fail("f16 element %d (row %d col %d): %a -> 0x%04x, ggml 0x%04x", i, i / 512,
                    i % 512, x[i], h[i], g[i]);
    /* back to f32 is exact: converting again gives the same half */
    qf_f16_to_f32_row(g, y, NVAL);
    for (int i = 0; i < NVAL; ++i) {
        cr_assert_eq(qf_f32_to_f16(y[i]), g[i], "element %d", i);
        cr_assert_leq(fabsf(y[i] - x[i]), fabsf(x[i]) * 0x1p-11f + 0x1p-25f, "element %d", i);
    }
    free(x);
    free(g);
}

Test(golden, bf16)
{
    TU_REQUIRE_SHARED();
    float *x = load("golden/quant/input.f32", NVAL * 4);
    uint16_t *g = load("golden/quant/input.bf16", NVAL * 2);
    uint16_t h[NVAL];
    float y[NVAL];
    qf_f32_to_bf16_row(x, h, NVAL);
    for (int i = 0; i < NVAL; ++i)
        if (h[i] != g[i])
            cr_assert_fail("bf16 element %d (row %d col %d): %a -> 0x%04x, ggml 0x%04x", i, i / 512,
                    i % 512, x[i], h[i], g[i]);
    qf_bf16_to_f32_row(g, y, NVAL);
    for (int i = 0; i < NVAL; ++i)
        cr_assert_eq(bits(y[i]), (uint32_t)g[i] << 16, "element %d", i);
    free(x);
    free(g);
}

Test(f16, edge_cases)
{
    const struct { uint32_t in; uint16_t out; } k[] = {
        {0x00000000, 0x0000}, {0x80000000, 0x8000}, /* signed zeros */
        {0x3f800000, 0x3c00},                       /* 1 */
        {0xc0000000, 0xc000},                       /* -2 */
        {0x477fe000, 0x7bff},                       /* 65504, largest half */
        {0x477fefff, 0x7bff},                       /* just below the 65520 tie */
        {0x477ff000, 0x7c00},                       /* 65520: tie, rounds to even = inf */
        {0x7f800000, 0x7c00}, {0xff800000, 0xfc00}, /* infinities */
        {0x7f7fffff, 0x7c00},                       /* FLT_MAX overflows */
        {0x7fc00000, 0x7e00}, {0xffc00001, 0xfe00}, {0x7f800001, 0x7e00}, /* NaNs -> quiet */
        {0x3f801000, 0x3c00},                       /* 1 + 2^-11: tie to even (down) */
        {0x3f803000, 0x3c02},                       /* 1 + 3*2^-11: tie to even (up) */
        {0x3f801001, 0x3c01},                       /* just above the tie */
        {0x38800000, 0x0400},                       /* 2^-14, smallest normal */
        {0x387fc000, 0x03ff},                       /* largest subnormal */
        {0x387fe000, 0x0400},                       /* rounds up into the normals */
        {0x33800000, 0x0001},                       /* 2^-24, smallest subnormal */
        {0x33000000, 0x0000},                       /* 2^-25: tie, rounds to even = 0 */
        {0x33000001, 0x0001},                       /* just above 2^-25 */
        {0x33c00000, 0x0002},                       /* 1.5 * 2^-24: tie to even (up) */
        {0x34200000, 0x0002},                       /* 2.5 * 2^-24: tie to even (down) */
        {0x00000001, 0x0000}, {0x80000001, 0x8000}, /* float subnormals */
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; ++i)
        cr_expect_eq(qf_f32_to_f16(from_bits(k[i].in)), k[i].out, "0x%08x -> 0x%04x, want 0x%04x",
                     k[i].in, qf_f32_to_f16(from_bits(k[i].in)), k[i].out);
}

/* Independent reference: nearest representable half in double arithmetic, ties to even. */
static uint16_t ref_f16(float f)
{
    const uint16_t sign = signbit(f) ? 0x8000 : 0;
    if (isnan(f))
        return sign | 0x7e00;
    const double a = fabs((double)f);
    if (a >= 65520.0)
        return sign | 0x7c00;
    int e;
    frexp(a, &e);              /* a = m * 2^e, m in [0.5, 1) */
    int ex = e - 1;            /* a in [2^ex, 2^(ex+1)) */
    if (ex < -14)
        ex = -14;              /* subnormal spacing */
    const double ulp = ldexp(1.0, ex - 10);
    const double q = nearbyint(a / ulp); /* default rounding mode: nearest even */
    const double v = q * ulp;
    if (v == 0)
        return sign;
    int ve;
    frexp(v, &ve);
    if (ve - 1 < -14)          /* subnormal result */
        return sign | (uint16_t)(v / ldexp(1.0, -24));
    const int biased = ve - 1 + 15;
    const uint16_t mant = (uint16_t)(v / ldexp(1.0, ve - 1 - 10) - 1024);
    return sign | (uint16_t)(biased << 10) | mant;
}

Test(f16, matches_reference_on_sampled_floats)
{
    /* every 97th bit pattern: 44 million values covering all exponents and both signs */
    for (uint64_t u = 0; u <= 0xffffffffu; u += 97) {
        const float f = from_bits((uint32_t)u);
        const uint16_t got = qf_f32_to_f16(f), want = ref_f16(f);
        if (got != want)
            cr_assert_fail("0x%08x (%a): 0x%04x, reference 0x%04x", (uint32_t)u, f, got, want);
    }
}

Test(f16, half_to_float_exhaustive)
{
    for (uint32_t h = 0; h < 65536; ++h) {
        const float f = qf_f16_to_f32((uint16_t)h);
        const int e = (h >> 10) & 0x1f, m = h & 0x3ff;
        const double mag = e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
        if (e == 0x1f) {
            cr_assert(m ? isnan(f) : isinf(f), "0x%04x", h);
            if (m) /* NaN payload kept, made quiet */
                cr_assert_eq(bits(f) & 0x7fffffffu, 0x7fc00000u | (uint32_t)m << 13, "0x%04x", h);
            continue;
        }
        cr_assert_eq((double)fabsf(f), mag, "0x%04x", h);
        cr_assert_eq(!!signbit(f), !!(h & 0x8000), "0x%04x sign", h);
        cr_assert_eq(qf_f32_to_f16(f), h, "0x%04x does not round-trip", h);
    }
}

Test(bf16, edge_cases_and_rounding)
{
    const struct { uint32_t in; uint16_t out; } k[] = {
        {0x3f800000, 0x3f80}, {0x80000000, 0x8000},
        {0x3f808000, 0x3f80}, /* tie, even stays */
        {0x3f818000, 0x3f82}, /* tie, odd rounds up */
        {0x3f808001, 0x3f81}, /* above the tie */
        {0x7f7fffff, 0x7f80}, /* FLT_MAX rounds to inf */
        {0x7f800000, 0x7f80}, {0xff800000, 0xff80},
        {0x7f800001, 0x7fc0}, /* signalling NaN made quiet */
        {0xffc12345, 0xffc1}, /* quiet NaN keeps sign and top payload */
        {0x00000001, 0x0000}, {0x00018000, 0x0002}, /* subnormals are rounded, not flushed */
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; ++i)
        cr_expect_eq(qf_f32_to_bf16(from_bits(k[i].in)), k[i].out, "0x%08x -> 0x%04x, want 0x%04x",
                     k[i].in, qf_f32_to_bf16(from_bits(k[i].in)), k[i].out);
    /* sampled: result is one of the two neighbours and the nearer one (ties to even) */
    for (uint64_t u = 0; u < 0x7f800000u; u += 4099) {
        const uint16_t h = qf_f32_to_bf16(from_bits((uint32_t)u));
        const uint32_t lo = (uint32_t)u & 0xffff0000u, rest = (uint32_t)u & 0xffffu;
        const uint32_t want = rest > 0x8000 || (rest == 0x8000 && ((lo >> 16) & 1)) ? (lo >> 16) + 1 : lo >> 16;
        cr_assert_eq(h, want, "0x%08x", (uint32_t)u);
        cr_assert_eq(bits(qf_bf16_to_f32(h)), (uint32_t)h << 16);
    }
}

/* Rows take the 16-bit side at any alignment and equal the scalar conversions. */
Test(rows, unaligned_and_equal_to_scalar)
{
    enum { N = 257 };
    float x[N], y[N];
    unsigned char buf[2 * N + 1];
    for (int i = 0; i < N; ++i)
        x[i] = from_bits(0x9e3779b9u * (uint32_t)(i + 1)); /* spread over every exponent */
    x[0] = 1.0f / 3;
    for (int bf = 0; bf < 2; ++bf) {
        unsigned char *h = buf + 1; /* odd address */
        if (bf)
            qf_f32_to_bf16_row(x, h, N);
        else
            qf_f32_to_f16_row(x, h, N);
        for (int i = 0; i < N; ++i) {
            const uint16_t got = (uint16_t)(h[2 * i] | h[2 * i + 1] << 8);
            const uint16_t want = bf ? qf_f32_to_bf16(x[i]) : qf_f32_to_f16(x[i]);
            cr_assert_eq(got, want, "%s element %d", bf ? "bf16" : "f16", i);
        }
        if (bf)
            qf_bf16_to_f32_row(h, y, N);
        else
            qf_f16_to_f32_row(h, y, N);
        for (int i = 0; i < N; ++i) {
            const uint16_t v = (uint16_t)(h[2 * i] | h[2 * i + 1] << 8);
            const float want = bf ? qf_bf16_to_f32(v) : qf_f16_to_f32(v);
            cr_assert_eq(bits(y[i]), bits(want), "%s element %d", bf ? "bf16" : "f16", i);
        }
    }
    cr_assert_eq(qf_f32_to_f16(x[0]), 0x3555);  /* 1/3 */
    cr_assert_eq(qf_f32_to_bf16(x[0]), 0x3eab);
}

/* libquant's and the runtime's names are aliases of the one codec. */
Test(rows, libquant_and_runtime_aliases_are_the_codec)
{
    for (uint32_t h = 0; h < 65536; ++h) {
        const uint32_t f = bits(qf_f16_to_f32((uint16_t)h)), b = bits(qf_bf16_to_f32((uint16_t)h));
        cr_assert_eq(bits(lq_f16_to_f32((uint16_t)h)), f, "0x%04x", h);
        cr_assert_eq(bits(rt_h2f((uint16_t)h)), f, "0x%04x", h);
        cr_assert_eq(bits(lq_bf16_to_f32((uint16_t)h)), b, "0x%04x", h);
        cr_assert_eq(bits(rt_bf2f((uint16_t)h)), b, "0x%04x", h);
    }
    for (uint64_t u = 0; u <= 0xffffffffu; u += 7919) {
        const float f = from_bits((uint32_t)u);
        const uint16_t h = qf_f32_to_f16(f), b = qf_f32_to_bf16(f);
        cr_assert_eq(lq_f32_to_f16(f), h, "0x%08x", (uint32_t)u);
        cr_assert_eq(rt_f2h(f), h, "0x%08x", (uint32_t)u);
        cr_assert_eq(lq_f32_to_bf16(f), b, "0x%08x", (uint32_t)u);
        cr_assert_eq(rt_f2bf(f), b, "0x%08x", (uint32_t)u);
    }
}
