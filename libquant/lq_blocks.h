/* libquant — on-disk block layouts of the GGUF quantized types (identical to ggml's).
 *
 * All multi-byte fields are little-endian; fp16 fields are stored as raw uint16_t bits
 * (decode with qf_f16_to_f32, common/qf_half.h). Each struct's size is the GGUF type size, checked below.
 *
 * Legacy types use blocks of LQ_QK (32) values; k-quants use super-blocks of LQ_QK_K (256)
 * values split into sub-blocks of 16 or 32.
 */
#ifndef QFORGE_LQ_BLOCKS_H
#define QFORGE_LQ_BLOCKS_H

#include <stdint.h>

#define LQ_QK 32     /* values per legacy block */
#define LQ_QK_K 256  /* values per k-quant super-block */

/* x = d * (q - 8), q in 0..15. qs[j] holds element j (low nibble) and j+16 (high nibble). */
typedef struct {
    uint16_t d;
    uint8_t qs[LQ_QK / 2];
} lq_block_q4_0;

/* x = d * q + m, q in 0..15; nibble layout as q4_0. */
typedef struct {
    uint16_t d;
    uint16_t m;
    uint8_t qs[LQ_QK / 2];
} lq_block_q4_1;

/* x = d * (q - 16), q in 0..31: low 4 bits as q4_0, bit 4 of element j in bit j of qh. */
typedef struct {
    uint16_t d;
    uint8_t qh[4];
    uint8_t qs[LQ_QK / 2];
} lq_block_q5_0;

/* x = d * q + m, q in 0..31; bit layout as q5_0. */
typedef struct {
    uint16_t d;
    uint16_t m;
    uint8_t qh[4];
    uint8_t qs[LQ_QK / 2];
} lq_block_q5_1;

/* x = d * q, q in -127..127 (-128 never written by the quantizer). */
typedef struct {
    uint16_t d;
    int8_t qs[LQ_QK];
} lq_block_q8_0;

/* As q8_0 plus s = d * sum(q) (fp16); activation format for dot products. */
typedef struct {
    uint16_t d;
    uint16_t s;
    int8_t qs[LQ_QK];
} lq_block_q8_1;

/* 16 sub-blocks of 16: x = d*sc*q - dmin*mn, q in 0..3, scales[j] = sc | mn << 4.
 * qs: within each half of 128 values, byte l holds values l, l+32, l+64, l+96 (2 bits each,
 * lowest first). */
typedef struct {
    uint8_t scales[LQ_QK_K / 16];
    uint8_t qs[LQ_QK_K / 4];
    uint16_t d;
    uint16_t dmin;
} lq_block_q2_K;

/* 16 sub-blocks of 16: x = d * (sc - 32) * (q - 4), q in 0..7, sc in 0..63.
 * Low 2 bits of q in qs (as q2_K); bit 2 of value j in bit j/32 of hmask[j%32].
 * scales: low 4 bits of sc j in scales[j%8] (nibble j/8), high 2 bits in scales[8 + j%4]
 * (bits 2*(j/4)). */
typedef struct {
    uint8_t hmask[LQ_QK_K / 8];
    uint8_t qs[LQ_QK_K / 4];
    uint8_t scales[12];
    uint16_t d;
} lq_block_q3_K;

/* 8 sub-blocks of 32: x = d*sc*q - dmin*mn, q in 0..15, sc and mn 6 bits each packed in
 * scales[12] (see lq_kq_get_scale_min). qs: each 64-value chunk is 32 bytes, values 0..31 in
 * low nibbles, 32..63 in high nibbles. */
typedef struct {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[12];
    uint8_t qs[LQ_QK_K / 2];
} lq_block_q4_K;

/* As q4_K with q in 0..31; bit 4 of value 64*c + j (j < 32) in bit 2c of qh[j], of value
 * 64*c + 32 + j in bit 2c+1. */
typedef struct {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[12];
    uint8_t qh[LQ_QK_K / 8];
    uint8_t qs[LQ_QK_K / 2];
} lq_block_q5_K;

/* 16 sub-blocks of 16: x = d * sc * (q - 32), q in 0..63, sc int8.
 * Per 128-value half: ql[l] = low nibbles of values l (lo) and l+64 (hi), ql[l+32] of values
 * l+32 and l+96; qh[l] = high 2 bits of values l, l+32, l+64, l+96 (bits 0,2,4,6). */
typedef struct {
    uint8_t ql[LQ_QK_K / 2];
    uint8_t qh[LQ_QK_K / 4];
    int8_t scales[LQ_QK_K / 16];
    uint16_t d;
} lq_block_q6_K;

/* Activation format for k-quant dot products: x = d * q, bsums = sums of 16 values. */
typedef struct {
    float d;
    int8_t qs[LQ_QK_K];
    int16_t bsums[LQ_QK_K / 16];
} lq_block_q8_K;

/* ---- IQ4 (non-linear 4-bit grid lq_iq4_grid, see libquant/lq_iq4.h) ---- */

/* 32 values: x = d * grid[q], q in 0..15; qs[j] holds element j (low nibble) and j+16 (high). */
typedef struct {
    uint16_t d;
    uint8_t qs[LQ_QK / 2];
} lq_block_iq4_nl;

/* 8 sub-blocks of 32: x = d * (ls - 32) * grid[q], ls in 0..63: low 4 bits of sub-block j's ls
 * in scales_l[j/2] (nibble j%2), high 2 bits in bits 2j..2j+1 of scales_h. qs: 16 bytes per
 * sub-block, nibble layout as iq4_nl. */
typedef struct {
    uint16_t d;
    uint16_t scales_h;
    uint8_t scales_l[LQ_QK_K / 64];
    uint8_t qs[LQ_QK_K / 2];
} lq_block_iq4_xs;

_Static_assert(sizeof(lq_block_q4_0) == 18, "q4_0 block size");
_Static_assert(sizeof(lq_block_q4_1) == 20, "q4_1 block size");
_Static_assert(sizeof(lq_block_q5_0) == 22, "q5_0 block size");
_Static_assert(sizeof(lq_block_q5_1) == 24, "q5_1 block size");
_Static_assert(sizeof(lq_block_q8_0) == 34, "q8_0 block size");
_Static_assert(sizeof(lq_block_q8_1) == 36, "q8_1 block size");
_Static_assert(sizeof(lq_block_q2_K) == 84, "q2_K block size");
_Static_assert(sizeof(lq_block_q3_K) == 110, "q3_K block size");
_Static_assert(sizeof(lq_block_q4_K) == 144, "q4_K block size");
_Static_assert(sizeof(lq_block_q5_K) == 176, "q5_K block size");
_Static_assert(sizeof(lq_block_q6_K) == 210, "q6_K block size");
_Static_assert(sizeof(lq_block_q8_K) == 292, "q8_K block size");
_Static_assert(sizeof(lq_block_iq4_nl) == 18, "iq4_nl block size");
_Static_assert(sizeof(lq_block_iq4_xs) == 136, "iq4_xs block size");

#endif
