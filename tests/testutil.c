#include "tests/testutil.h"
#include "libgguf/gguf.h"

#include <math.h>
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

char *tu_dir;

void tu_dir_setup(void) { tu_dir = tu_mkdtemp(); }

void tu_dir_teardown(void)
{
    if (tu_dir) {
        tu_run("rm -rf '%s'", tu_dir);
        free(tu_dir);
        tu_dir = NULL;
    }
}

char *tu_path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

char *tu_dir_path(const char *name) { return tu_path_join(tu_dir, name); }

void tu_write_legacy_imatrix(const char *path, const char *name, int32_t nval)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return;
    const int32_t n = 1, len = (int32_t)strlen(name), ncall = 1;
    const float one = 1;
    fwrite(&n, 4, 1, f);
    fwrite(&len, 4, 1, f);
    fwrite(name, 1, (size_t)len, f);
    fwrite(&ncall, 4, 1, f);
    fwrite(&nval, 4, 1, f);
    for (int32_t i = 0; i < nval; i++)
        fwrite(&one, 4, 1, f);
    fclose(f);
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

/* ---- byte builder ---- */

void tu_bb_put(tu_bb *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p)
            abort();
        b->p = p;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->n, d, n);
    b->n += n;
}

void tu_bb_u8(tu_bb *b, uint8_t v) { tu_bb_put(b, &v, 1); }
void tu_bb_u32(tu_bb *b, uint32_t v) { tu_bb_put(b, &v, 4); }
void tu_bb_u64(tu_bb *b, uint64_t v) { tu_bb_put(b, &v, 8); }

void tu_bb_strn(tu_bb *b, const char *s, size_t n)
{
    tu_bb_u64(b, n);
    tu_bb_put(b, s, n);
}

void tu_bb_str(tu_bb *b, const char *s) { tu_bb_strn(b, s, strlen(s)); }

void tu_bb_pad(tu_bb *b, size_t a)
{
    while (b->n % a)
        tu_bb_u8(b, 0);
}

void tu_bb_hdr(tu_bb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
    tu_bb_put(b, "GGUF", 4);
    tu_bb_u32(b, version);
    tu_bb_u64(b, n_tensors);
    tu_bb_u64(b, n_kv);
}

void tu_bb_kv_u32(tu_bb *b, const char *k, uint32_t v)
{
    tu_bb_str(b, k);
    tu_bb_u32(b, GGUF_VAL_U32);
    tu_bb_u32(b, v);
}

void tu_bb_kv_str(tu_bb *b, const char *k, const char *v)
{
    tu_bb_str(b, k);
    tu_bb_u32(b, GGUF_VAL_STRING);
    tu_bb_str(b, v);
}

void tu_bb_ti(tu_bb *b, const char *name, uint32_t n_dims, const int64_t *ne, uint32_t type, uint64_t off)
{
    tu_bb_str(b, name);
    tu_bb_u32(b, n_dims);
    for (uint32_t i = 0; i < n_dims; i++)
        tu_bb_u64(b, (uint64_t)ne[i]);
    tu_bb_u32(b, type);
    tu_bb_u64(b, off);
}

void tu_bb_data(tu_bb *b, size_t n)
{
    tu_bb_pad(b, 32);
    for (size_t i = 0; i < n; i++)
        tu_bb_u8(b, (uint8_t)(i * 7 + 1));
}

uint64_t tu_rng_state;

double tu_rng_u01(void)
{
    tu_rng_state ^= tu_rng_state << 13;
    tu_rng_state ^= tu_rng_state >> 7;
    tu_rng_state ^= tu_rng_state << 17;
    return ((double)(tu_rng_state >> 11) + 0.5) / 9007199254740992.0;
}

double tu_rng_gauss(void)
{
    const double u = tu_rng_u01(), v = tu_rng_u01();
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

float tu_rng_gaussf(void) { return (float)tu_rng_gauss(); }
