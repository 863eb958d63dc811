/* Helpers shared by the Criterion suites: where ../shared is, reading files, temp dirs. */
#ifndef QFORGE_TESTUTIL_H
#define QFORGE_TESTUTIL_H

#include <stddef.h>

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
/* Run a shell command; returns its exit status (0..255) or -1. */
int tu_run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Skip the current test when ../shared is absent. */
#define TU_REQUIRE_SHARED()                                                                     \
    do {                                                                                        \
        if (!tu_shared())                                                                       \
            cr_skip_test("../shared is absent: test skipped");                                  \
    } while (0)

#endif
