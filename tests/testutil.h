/* Helpers shared by the Criterion suites: where ../shared is, reading files, temp dirs. */
#ifndef QFORGE_TESTUTIL_H
#define QFORGE_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Directory of the shared data (env QFORGE_SHARED, else ../shared from the repo root), or
 * NULL when absent. */
const char *tu_shared(void);
/* shared path + "/" + rel into a static-per-call malloc'ed string (caller frees); NULL if
 * the shared data is absent. */
char *tu_shared_path(const char *rel);
/* Repository root (env QFORGE_ROOT, else the current directory). */
const char *tu_root(void);
/* Directory of the built tools (env QFORGE_BIN, else bin). */
const char *tu_bin(void);
/* Whole file into a malloc'ed buffer (NUL-terminated past *n); NULL on error. */
void *tu_read_file(const char *path, size_t *n);
int tu_write_file(const char *path, const void *data, size_t n);
/* Fresh empty directory under $TMPDIR; caller frees the string (the directory stays). */
char *tu_mkdtemp(void);
/* A suite's scratch directory: TestSuite(name, .init = tu_dir_setup, .fini = tu_dir_teardown)
 * makes tu_dir a fresh directory for each test and removes it afterwards. */
extern char *tu_dir;
void tu_dir_setup(void);
void tu_dir_teardown(void);
/* "DIR/NAME" (or "tu_dir/NAME"), malloc'ed; the caller frees it. */
char *tu_path_join(const char *dir, const char *name);
char *tu_dir_path(const char *name);
/* A legacy (llama.cpp imatrix.dat) file with one entry NAME of NVAL ones, called once. */
void tu_write_legacy_imatrix(const char *path, const char *name, int32_t nval);
/* Run a shell command; returns its exit status (0..255) or -1. */
int tu_run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- deterministic random numbers: xorshift64 (state tu_rng_state, set it to seed; not 0)
 * and Box-Muller ---- */
extern uint64_t tu_rng_state;
double tu_rng_u01(void);     /* uniform in (0, 1) */
double tu_rng_gauss(void);   /* N(0, 1), two tu_rng_u01 draws */
float tu_rng_gaussf(void);   /* the same rounded to float */

/* ---- a little-endian byte builder for hand-made files (GGUF and others) ----
 * tu_bb b = {0}; append with the functions below (they abort on out of memory); free(b.p). */
typedef struct {
    uint8_t *p;
    size_t n, cap;
} tu_bb;

void tu_bb_put(tu_bb *b, const void *d, size_t n);
void tu_bb_u8(tu_bb *b, uint8_t v);
void tu_bb_u32(tu_bb *b, uint32_t v);
void tu_bb_u64(tu_bb *b, uint64_t v);
void tu_bb_strn(tu_bb *b, const char *s, size_t n); /* GGUF string: u64 length + bytes */
void tu_bb_str(tu_bb *b, const char *s);
void tu_bb_pad(tu_bb *b, size_t a);                 /* zero bytes up to a multiple of a */
/* GGUF pieces: header, a u32 / string KV, a tensor info, and the data section (pad to 32, then
 * n pattern bytes (i * 7 + 1)). */
void tu_bb_hdr(tu_bb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv);
void tu_bb_kv_u32(tu_bb *b, const char *k, uint32_t v);
void tu_bb_kv_str(tu_bb *b, const char *k, const char *v);
void tu_bb_ti(tu_bb *b, const char *name, uint32_t n_dims, const int64_t *ne, uint32_t type, uint64_t off);
void tu_bb_data(tu_bb *b, size_t n);

/* Skip the current test when ../shared is absent. */
#define TU_REQUIRE_SHARED()                                                                     \
    do {                                                                                        \
        if (!tu_shared())                                                                       \
            cr_skip_test("../shared is absent: test skipped");                                  \
    } while (0)

#endif
