/* GPTQ kernels for AVX2 + FMA (see lq_gptq_kern.h); built with the AVX2 flags. */
#include <immintrin.h>
#include <stdint.h>

#include "libquant/lq_gptq_kern.h"

typedef __m256d vd;
typedef __m256 vf;
#define WD 4
#define WF 8
#define MR_D 6
#define NV_D 2
#define MR_F 4
#define NV_F 2
#define GK_FN(name) avx2_##name

static const int64_t k_mask_d[8] = {-1, -1, -1, -1, 0, 0, 0, 0};
static const int32_t k_mask_f[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

static inline __m256i mask_d(int n)
{
    return _mm256_loadu_si256((const __m256i *)(k_mask_d + 4 - n));
}
static inline __m256i mask_f(int n)
{
    return _mm256_loadu_si256((const __m256i *)(k_mask_f + 8 - n));
}

static inline vd vd_load(const double *p) { return _mm256_loadu_pd(p); }
static inline vd vd_loadn(const double *p, int n) { return _mm256_maskload_pd(p, mask_d(n)); }
static inline void vd_store(double *p, vd v) { _mm256_storeu_pd(p, v); }
static inline void vd_storen(double *p, vd v, int n) { _mm256_maskstore_pd(p, mask_d(n), v); }
static inline vd vd_set1(double x) { return _mm256_set1_pd(x); }
static inline vd vd_fnma(vd a, vd b, vd c) { return _mm256_fnmadd_pd(a, b, c); }
static inline vd vd_div(vd a, vd b) { return _mm256_div_pd(a, b); }
static inline vf vf_load(const float *p) { return _mm256_loadu_ps(p); }
static inline vf vf_loadn(const float *p, int n) { return _mm256_maskload_ps(p, mask_f(n)); }
static inline void vf_store(float *p, vf v) { _mm256_storeu_ps(p, v); }
static inline void vf_storen(float *p, vf v, int n) { _mm256_maskstore_ps(p, mask_f(n), v); }
static inline vf vf_set1(float x) { return _mm256_set1_ps(x); }
static inline vf vf_mulsub(vf a, vf b, vf c) { return _mm256_sub_ps(c, _mm256_mul_ps(a, b)); }

#include "libquant/lq_gptq_kern_tmpl.h"

static const lq_gk k_avx2 = {
    LQ_GK_AVX2,        "avx2",           avx2_mulsub_f32, avx2_pack_f32, NR_F,
    avx2_fnma_f64, avx2_pack_f64, NR_D,         avx2_trsm_f64,  avx2_chol_f64,
};

const lq_gk *lq_gk_avx2_table(void) { return &k_avx2; }
