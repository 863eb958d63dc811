/* common — half-precision rows (see qf_half.h). */
#include "common/qf_half.h"

void qf_f32_to_f16_row(const float *x, void *y, size_t n)
{
    unsigned char *out = y;
    for (size_t i = 0; i < n; ++i) {
        const uint16_t h = qf_f32_to_f16(x[i]);
        memcpy(out + 2 * i, &h, 2);
    }
}

void qf_f16_to_f32_row(const void *x, float *y, size_t n)
{
    const unsigned char *in = x;
    for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        memcpy(&h, in + 2 * i, 2);
        y[i] = qf_f16_to_f32(h);
    }
}

void qf_f32_to_bf16_row(const float *x, void *y, size_t n)
{
    unsigned char *out = y;
    for (size_t i = 0; i < n; ++i) {
        const uint16_t h = qf_f32_to_bf16(x[i]);
        memcpy(out + 2 * i, &h, 2);
    }
}

void qf_bf16_to_f32_row(const void *x, float *y, size_t n)
{
    const unsigned char *in = x;
    for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        memcpy(&h, in + 2 * i, 2);
        y[i] = qf_bf16_to_f32(h);
    }
}
