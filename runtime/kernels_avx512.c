/* AVX-512 + VNNI kernels (used only when the CPU has them). Entries left NULL fall back to
 * the AVX2 table. */
#include "runtime/rt_internal.h"

const rt_kernel_table rt_kernels_avx512 = {.attn = NULL};
