/* GPTQ kernels: the portable scalar version (the reference) and the ISA choice. */
#include "libquant/lq_gptq_kern.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef double vd;
typedef float vf;
#define WD 1
#define WF 1
#define MR_D 4
#define NV_D 4
#define MR_F 4
#define NV_F 4
#define GK_FN(name) scalar_##name

static inline vd vd_load(const double *p) { return *p; }
static inline vd vd_loadn(const double *p, int n) { return n ? *p : 0.0; }
static inline void vd_store(double *p, vd v) { *p = v; }
static inline void vd_storen(double *p, vd v, int n)
{
    if (n)
        *p = v;
}
static inline vd vd_set1(double x) { return x; }
static inline vd vd_fnma(vd a, vd b, vd c) { return fma(-a, b, c); }
static inline vd vd_div(vd a, vd b) { return a / b; }
static inline vf vf_load(const float *p) { return *p; }
static inline vf vf_loadn(const float *p, int n) { return n ? *p : 0.0f; }
static inline void vf_store(float *p, vf v) { *p = v; }
static inline void vf_storen(float *p, vf v, int n)
{
    if (n)
        *p = v;
}
static inline vf vf_set1(float x) { return x; }
static inline vf vf_mulsub(vf a, vf b, vf c)
{
    const float p = a * b;
    return c - p;
}

#include "libquant/lq_gptq_kern_tmpl.h"

static const lq_gk k_scalar = {
    LQ_GK_SCALAR,        "scalar",           scalar_mulsub_f32, scalar_pack_f32, NR_F,
    scalar_fnma_f64, scalar_pack_f64, NR_D,         scalar_trsm_f64,  scalar_chol_f64,
};

const lq_gk *lq_gk_scalar_table(void) { return &k_scalar; }

static int cpu_has(lq_gk_isa isa)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    switch (isa) {
    case LQ_GK_SCALAR:
        return 1;
    case LQ_GK_AVX2:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case LQ_GK_AVX512: /* the file is built with F/BW/VL/DQ: the compiler may use any of them */
        return cpu_has(LQ_GK_AVX2) && __builtin_cpu_supports("avx512f") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512dq");
    default:
        return 0;
    }
#else
    return isa == LQ_GK_SCALAR;
#endif
}

const lq_gk *lq_gk_get(lq_gk_isa isa)
{
    if (isa < 0 || isa >= LQ_GK_COUNT || !cpu_has(isa))
        return NULL;
#if defined(__x86_64__) || defined(__i386__)
    if (isa == LQ_GK_AVX512)
        return lq_gk_avx512_table();
    if (isa == LQ_GK_AVX2)
        return lq_gk_avx2_table();
#endif
    return lq_gk_scalar_table();
}

const lq_gk *lq_gk_best(void)
{
    int isa = LQ_GK_COUNT - 1;
    while (isa > 0 && !cpu_has((lq_gk_isa)isa))
        --isa;
    const char *e = getenv("QFORGE_ISA");
    if (e && strcmp(e, "scalar") == 0)
        isa = LQ_GK_SCALAR;
    else if (e && strcmp(e, "avx2") == 0 && isa > LQ_GK_AVX2)
        isa = LQ_GK_AVX2;
    return lq_gk_get((lq_gk_isa)isa);
}
