/* The AVX2 kernels compiled for AVX2 + FMA + F16C + AVX-VNNI (Intel cores without AVX-512):
 * the same code and results as kernels_avx2.c, with vpdpbusd for the 4-byte dot products. */
#define RT_AVX2_VNNI 1
#include "runtime/kernels_avx2.c"
