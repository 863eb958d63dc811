/* Fuzz build only: clang 14's __builtin_cpu_supports() knows neither "f16c", "avxvnni" nor
 * "avx512bf16",
 * which runtime/kernels.c asks for, so the fuzz build compiles kernels.c with
 * -D'__builtin_cpu_supports(f)=qforge_fuzz_cpu_supports(f)' and answers here from CPUID. */
#include <cpuid.h>
#include <string.h>

int qforge_fuzz_cpu_supports(const char *f);

static int bit(unsigned leaf, unsigned sub, int reg, int b)
{
    unsigned r[4];
    if ((unsigned)__get_cpuid_max(0, NULL) < leaf)
        return 0;
    __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]);
    return (int)((r[reg] >> b) & 1u);
}

int qforge_fuzz_cpu_supports(const char *f)
{
    enum { EAX, EBX, ECX, EDX };
    __builtin_cpu_init();
    if (!strcmp(f, "f16c")) return bit(1, 0, ECX, 29);
    if (!strcmp(f, "avxvnni")) return bit(7, 1, EAX, 4);
    if (!strcmp(f, "avx512bf16")) return bit(7, 1, EAX, 5) && __builtin_cpu_supports("avx512f");
    if (!strcmp(f, "avx2")) return __builtin_cpu_supports("avx2");
    if (!strcmp(f, "fma")) return __builtin_cpu_supports("fma");
    if (!strcmp(f, "avx512f")) return __builtin_cpu_supports("avx512f");
    if (!strcmp(f, "avx512bw")) return __builtin_cpu_supports("avx512bw");
    if (!strcmp(f, "avx512vl")) return __builtin_cpu_supports("avx512vl");
    if (!strcmp(f, "avx512dq")) return __builtin_cpu_supports("avx512dq");
    if (!strcmp(f, "avx512vnni")) return __builtin_cpu_supports("avx512vnni");
    return 0;
}
