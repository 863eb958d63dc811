/* GPTQ kernels for AVX-512 (see lq_gptq_kern.h); built with the AVX-512 flags. Uses
 * AVX-512F intrinsics only (no VNNI, no AVX-VNNI); chosen when the CPU has F/BW/VL/DQ. */
#include <immintrin.h>

#include "libquant/lq_gptq_kern.h"

typedef __m512d vd;
typedef __m512 vf;
#define WD 8
#define WF 16
#define MR_D 12
#define NV_D 2
#define MR_F 4
#define NV_F 4
#define GK_FN(name) avx512_##name

static inline vd vd_load(const double *p) { return _mm512_loadu_pd(p); }
static inline vd vd_loadn(const double *p, int n)
{
    return _mm512_maskz_loadu_pd((__mmask8)((1u << n) - 1), p);
}
static inline void vd_store(double *p, vd v) { _mm512_storeu_pd(p, v); }
static inline void vd_storen(double *p, vd v, int n)
{
    _mm512_mask_storeu_pd(p, (__mmask8)((1u << n) - 1), v);
}
static inline vd vd_set1(double x) { return _mm512_set1_pd(x); }
static inline vd vd_fnma(vd a, vd b, vd c) { return _mm512_fnmadd_pd(a, b, c); }
static inline vd vd_div(vd a, vd b) { return _mm512_div_pd(a, b); }
static inline vf vf_load(const float *p) { return _mm512_loadu_ps(p); }
static inline vf vf_loadn(const float *p, int n)
{
    return _mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), p);
}
static inline void vf_store(float *p, vf v) { _mm512_storeu_ps(p, v); }
static inline void vf_storen(float *p, vf v, int n)
{
    _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1), v);
}
static inline vf vf_set1(float x) { return _mm512_set1_ps(x); }
static inline vf vf_mulsub(vf a, vf b, vf c) { return _mm512_sub_ps(c, _mm512_mul_ps(a, b)); }

#include "libquant/lq_gptq_kern_tmpl.h"

static const lq_gk k_avx512 = {
    LQ_GK_AVX512,        "avx512",           avx512_mulsub_f32, avx512_pack_f32, NR_F,
    avx512_fnma_f64, avx512_pack_f64, NR_D,         avx512_trsm_f64,  avx512_chol_f64,
};

const lq_gk *lq_gk_avx512_table(void) { return &k_avx512; }
