#include "tests/testutil.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

const char *tu_root(void)
{
    const char *r = getenv("QFORGE_ROOT");
    return r && *r ? r : ".";
}

const char *tu_bin(void)
{
    const char *b = getenv("QFORGE_BIN");
    return b && *b ? b : "bin";
}

const char *tu_shared(void)
{
    static char path[4096];
    static int state = -1;
    if (state < 0) {
        const char *e = getenv("QFORGE_SHARED");
        if (e && *e)
            snprintf(path, sizeof path, "%s", e);
        else
            snprintf(path, sizeof path, "%s/../shared", tu_root());
        struct stat st;
        state = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
    }
    return state ? path : NULL;
}

char *tu_shared_path(const char *rel)
{
    const char *s = tu_shared();
    if (!s)
        return NULL;
    size_t n = strlen(s) + strlen(rel) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", s, rel);
    return p;
}

void *tu_read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = len >= 0 ? malloc((size_t)len + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)len, f) != (size_t)len) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[len] = 0;
        if (n)
            *n = (size_t)len;
    }
    return buf;
}

int tu_write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(data, 1, n, f);
    return (fclose(f) == 0 && w == n) ? 0 : -1;
}

char *tu_mkdtemp(void)
{
    const char *t = getenv("TMPDIR");
    char buf[4096];
    snprintf(buf, sizeof buf, "%s/qforge-test-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(buf))
        return NULL;
    return strdup(buf);
}

int tu_run(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    if (st == -1 || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}
