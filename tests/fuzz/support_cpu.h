/* Fuzz build only; see support_cpu.c. */
int qforge_fuzz_cpu_supports(const char *f);
