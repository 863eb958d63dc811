/* Importance matrix reader (GGUF and legacy .dat). See imatrix.h for the formats. */
#include "input/imatrix.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "libgguf/gguf.h"
#include "input/inp_internal.h"

#define IM_MAX_FILE (4ull << 30)   /* legacy files larger than this are refused */
#define IM_MAX_NAME 4096           /* legacy entry name length */

typedef struct {
    char *name;
    float *values;
    size_t n;
} im_entry;

struct inp_imatrix {
    im_entry *e;
    size_t n, cap;
    int64_t chunk_count;
    char *dataset;
    bool legacy;
};

static void fail(char *msg, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(char *msg, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    qf_msg_vformat(msg, INP_MSG_SIZE, path, fmt, ap);
    va_end(ap);
}

/* A printable excerpt of an entry or tensor name (from the file) for messages. */
static const char *shown(const char *name, size_t len, char buf[INP_SHOWN_SIZE])
{
    return inp_printable_(name, len, buf, INP_SHOWN_SIZE);
}

void inp_imatrix_free(inp_imatrix *im)
{
    if (!im)
        return;
    for (size_t i = 0; i < im->n; i++) {
        free(im->e[i].name);
        free(im->e[i].values);
    }
    free(im->e);
    free(im->dataset);
    free(im);
}

/* Append an entry taking ownership of name and values (freed on failure). */
static inp_error add_entry(inp_imatrix *im, char *name, float *values, size_t n)
{
    if (im->n == im->cap) {
        size_t cap = im->cap ? im->cap * 2 : 64;
        im_entry *e = realloc(im->e, cap * sizeof *e);
        if (!e) {
            free(name);
            free(values);
            return INP_ERR_NOMEM;
        }
        im->e = e;
        im->cap = cap;
    }
    im->e[im->n].name = name;
    im->e[im->n].values = values;
    im->e[im->n].n = n;
    im->n++;
    return INP_OK;
}

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const im_entry *)a)->name, ((const im_entry *)b)->name);
}

/* Sort by name; duplicates are an error. */
static inp_error finish(inp_imatrix *im, const char *path, char *msg)
{
    if (im->n == 0) {
        fail(msg, path, "no importance matrix entries");
        return INP_ERR_FORMAT;
    }
    qsort(im->e, im->n, sizeof *im->e, entry_cmp);
    char b[INP_SHOWN_SIZE];
    for (size_t i = 1; i < im->n; i++)
        if (strcmp(im->e[i - 1].name, im->e[i].name) == 0) {
            fail(msg, path, "duplicate entry '%s'", shown(im->e[i].name, strlen(im->e[i].name), b));
            return INP_ERR_FORMAT;
        }
    for (size_t i = 0; i < im->n; i++)
        for (size_t j = 0; j < im->e[i].n; j++)
            if (!isfinite(im->e[i].values[j])) {
                fail(msg, path, "entry '%s' contains a non-finite value",
                     shown(im->e[i].name, strlen(im->e[i].name), b));
                return INP_ERR_FORMAT;
            }
    return INP_OK;
}

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

/* ---------------------------------------------------------------- GGUF */

static bool strip_suffix(const char *name, const char *suffix, size_t *base_len)
{
    size_t n = strlen(name), m = strlen(suffix);
    if (n <= m || memcmp(name + n - m, suffix, m) != 0)
        return false;
    *base_len = n - m;
    return true;
}

static inp_error load_gguf(gguf_reader *r, inp_imatrix *im, const char *path, char *msg)
{
    /* the metadata llama-quantize insists on */
    static const char *const keys[] = {"imatrix.datasets", "imatrix.chunk_count", "imatrix.chunk_size"};
    for (size_t i = 0; i < 3; i++)
        if (gguf_find_kv(r, keys[i]) < 0) {
            fail(msg, path, "missing imatrix metadata '%s'", keys[i]);
            return INP_ERR_FORMAT;
        }
    int64_t v;
    if (gguf_get_int(r, "imatrix.chunk_count", &v) == GGUF_OK && v > 0)
        im->chunk_count = v;
    const gguf_value *ds;
    if (gguf_get_array(r, "imatrix.datasets", &ds) == GGUF_OK && ds->elem_type == GGUF_VAL_STRING &&
        ds->n > 0) {
        im->dataset = dup_n(ds->v.strs[0].str, strlen(ds->v.strs[0].str));
        if (!im->dataset)
            return INP_ERR_NOMEM;
    }

    const int64_t nt = gguf_n_tensors(r);
    char b[INP_SHOWN_SIZE];
    for (int64_t i = 0; i < nt; i++) {
        const char *tn = gguf_tensor_at(r, i)->name;
        size_t base;
        if (!strip_suffix(tn, ".counts", &base))
            continue;
        char s2name[GGUF_MAX_NAME + 16];
        snprintf(s2name, sizeof s2name, "%.*s.in_sum2", (int)base, tn);
        if (gguf_find_tensor(r, s2name) < 0) {
            fail(msg, path, "mismatched sums and counts for '%s'", shown(tn, base, b));
            return INP_ERR_FORMAT;
        }
    }
    for (int64_t i = 0; i < nt; i++) {
        const gguf_tensor *s2 = gguf_tensor_at(r, i);
        size_t base;
        if (!strip_suffix(s2->name, ".in_sum2", &base))
            continue;
        char cname[GGUF_MAX_NAME + 16];
        snprintf(cname, sizeof cname, "%.*s.counts", (int)base, s2->name);
        int64_t ci = gguf_find_tensor(r, cname);
        if (ci < 0) {
            fail(msg, path, "mismatched sums and counts for '%s'", shown(s2->name, base, b));
            return INP_ERR_FORMAT;
        }
        const gguf_tensor *ct = gguf_tensor_at(r, ci);
        if (s2->type != GGUF_F32 || ct->type != GGUF_F32) {
            fail(msg, path, "sums and counts for '%s' must be F32", shown(s2->name, base, b));
            return INP_ERR_FORMAT;
        }
        /* the reader checked nbytes = elements * 4 and that the data lies in the file */
        const size_t nval = (size_t)(s2->nbytes / sizeof(float));
        const size_t ncounts = (size_t)(ct->nbytes / sizeof(float));
        if (nval == 0 || ncounts == 0 || nval % ncounts != 0) {
            fail(msg, path, "'%s': %zu sums do not split into %zu matrices", shown(s2->name, base, b), nval,
                 ncounts);
            return INP_ERR_FORMAT;
        }
        char sname[GGUF_MAX_NAME + 16];
        snprintf(sname, sizeof sname, "%.*s.in_sum", (int)base, s2->name);
        int64_t si = gguf_find_tensor(r, sname);
        if (si >= 0) {
            const gguf_tensor *st = gguf_tensor_at(r, si);
            if (st->type != GGUF_F32 || st->nbytes != s2->nbytes) {
                fail(msg, path, "mismatched sums and counts for '%s'", shown(s2->name, base, b));
                return INP_ERR_FORMAT;
            }
        }
        const size_t ne0 = nval / ncounts;
        float *values = malloc(nval * sizeof(float));
        char *name = dup_n(s2->name, base);
        if (!values || !name) {
            free(values);
            free(name);
            return INP_ERR_NOMEM;
        }
        /* tensor data is only aligned to general.alignment, which may be 1: copy, never cast */
        memcpy(values, s2->data, nval * sizeof(float));
        const unsigned char *counts = ct->data;
        for (size_t j = 0; j < ncounts; j++) {
            float c;
            memcpy(&c, counts + j * sizeof(float), sizeof c);
            if (!isfinite(c) || c < 0 || c > 9.2e18f) {
                free(values);
                free(name);
                fail(msg, path, "'%s': bad count", shown(s2->name, base, b));
                return INP_ERR_FORMAT;
            }
            const float count = (float)llroundf(c);
            for (size_t k = 0; k < ne0; k++)
                values[j * ne0 + k] = count > 0.0f ? values[j * ne0 + k] / count : 1.0f;
        }
        inp_error e = add_entry(im, name, values, nval);
        if (e)
            return e;
    }
    return finish(im, path, msg);
}

/* ---------------------------------------------------------------- legacy */

typedef struct {
    const unsigned char *p;
    size_t left;
} cursor;

static bool take(cursor *c, void *dst, size_t n)
{
    if (c->left < n)
        return false;
    memcpy(dst, c->p, n);
    c->p += n;
    c->left -= n;
    return true;
}

static inp_error load_legacy(const unsigned char *buf, size_t size, inp_imatrix *im,
                             const char *path, char *msg)
{
    cursor c = {buf, size};
    int32_t n_entries;
    if (!take(&c, &n_entries, 4) || n_entries < 1) {
        fail(msg, path, "not an imatrix file (no entries)");
        return INP_ERR_FORMAT;
    }
    for (int32_t i = 0; i < n_entries; i++) {
        int32_t len;
        if (!take(&c, &len, 4) || len < 1 || len > IM_MAX_NAME || (size_t)len > c.left) {
            fail(msg, path, "entry %d: bad name length", (int)i + 1);
            return INP_ERR_FORMAT;
        }
        char *name = dup_n((const char *)c.p, (size_t)len);
        if (!name)
            return INP_ERR_NOMEM;
        c.p += len;
        c.left -= (size_t)len;
        if (strlen(name) != (size_t)len) {
            free(name);
            fail(msg, path, "entry %d: name contains a NUL byte", (int)i + 1);
            return INP_ERR_FORMAT;
        }
        int32_t ncall, nval;
        if (!take(&c, &ncall, 4) || !take(&c, &nval, 4) || nval < 1 ||
            (size_t)nval > c.left / sizeof(float)) {
            free(name);
            fail(msg, path, "entry %d: bad value count", (int)i + 1);
            return INP_ERR_FORMAT;
        }
        float *values = malloc((size_t)nval * sizeof(float));
        if (!values) {
            free(name);
            return INP_ERR_NOMEM;
        }
        take(&c, values, (size_t)nval * sizeof(float));
        if (ncall > 0)
            for (int32_t k = 0; k < nval; k++)
                values[k] = values[k] / (float)ncall;
        inp_error e = add_entry(im, name, values, (size_t)nval);
        if (e)
            return e;
    }
    /* optional trailer: chunk count and dataset name */
    int32_t chunks, len;
    if (take(&c, &chunks, 4)) {
        im->chunk_count = chunks > 0 ? chunks : 0;
        if (take(&c, &len, 4) && len > 0 && (size_t)len <= c.left && len <= IM_MAX_NAME) {
            im->dataset = dup_n((const char *)c.p, (size_t)len);
            if (!im->dataset)
                return INP_ERR_NOMEM;
            im->dataset[strnlen(im->dataset, (size_t)len)] = 0;
        }
    }
    im->legacy = true;
    return finish(im, path, msg);
}

static inp_error read_whole(const char *path, unsigned char **buf, size_t *size, char *msg)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fail(msg, path, "cannot open: %s", strerror(errno));
        return INP_ERR_IO;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        fail(msg, path, "not a regular file");
        return INP_ERR_IO;
    }
    if ((uint64_t)st.st_size > IM_MAX_FILE) {
        fclose(f);
        fail(msg, path, "file too large for a legacy imatrix");
        return INP_ERR_LIMIT;
    }
    size_t n = (size_t)st.st_size;
    unsigned char *b = malloc(n ? n : 1);
    if (!b) {
        fclose(f);
        return INP_ERR_NOMEM;
    }
    if (fread(b, 1, n, f) != n) {
        free(b);
        fclose(f);
        fail(msg, path, "read failed");
        return INP_ERR_IO;
    }
    fclose(f);
    *buf = b;
    *size = n;
    return INP_OK;
}

inp_error inp_imatrix_load(const char *path, inp_imatrix **out, char *msg)
{
    if (!path || !out) {
        if (msg)
            snprintf(msg, INP_MSG_SIZE, "inp_imatrix_load: bad arguments");
        return INP_ERR_ARG;
    }
    *out = NULL;
    inp_imatrix *im = calloc(1, sizeof *im);
    if (!im)
        return INP_ERR_NOMEM;
    char gmsg[GGUF_MSG_SIZE];
    gguf_reader *r = NULL;
    gguf_error ge = gguf_open(path, &r, gmsg);
    inp_error e;
    if (ge == GGUF_OK) {
        e = load_gguf(r, im, path, msg);
        gguf_close(r);
    } else if (ge == GGUF_ERR_MAGIC) {
        unsigned char *buf = NULL;
        size_t size = 0;
        e = read_whole(path, &buf, &size, msg);
        if (e == INP_OK)
            e = load_legacy(buf, size, im, path, msg);
        free(buf);
    } else {
        fail(msg, path, "%s", gmsg);
        e = ge == GGUF_ERR_IO ? INP_ERR_IO : ge == GGUF_ERR_NOMEM ? INP_ERR_NOMEM : INP_ERR_FORMAT;
    }
    if (e != INP_OK) {
        if (e == INP_ERR_NOMEM && msg)
            fail(msg, path, "out of memory");
        inp_imatrix_free(im);
        return e;
    }
    *out = im;
    return INP_OK;
}

size_t inp_imatrix_n_entries(const inp_imatrix *im) { return im ? im->n : 0; }

const char *inp_imatrix_name(const inp_imatrix *im, size_t i)
{
    return im && i < im->n ? im->e[i].name : NULL;
}

const float *inp_imatrix_find(const inp_imatrix *im, const char *name, size_t *n)
{
    if (!im || !name)
        return NULL;
    im_entry key = {(char *)name, NULL, 0};
    const im_entry *e = bsearch(&key, im->e, im->n, sizeof *im->e, entry_cmp);
    if (!e)
        return NULL;
    if (n)
        *n = e->n;
    return e->values;
}

int64_t inp_imatrix_chunk_count(const inp_imatrix *im) { return im ? im->chunk_count : 0; }
const char *inp_imatrix_dataset(const inp_imatrix *im) { return im ? im->dataset : NULL; }
bool inp_imatrix_is_legacy(const inp_imatrix *im) { return im && im->legacy; }

/* ---------------------------------------------------------------- writing */

static int sums_cmp(const void *a, const void *b)
{
    return strcmp((*(const inp_imatrix_sums *const *)a)->name,
                  (*(const inp_imatrix_sums *const *)b)->name);
}

/* The entries in name order (malloc'ed array of pointers), or NULL when out of memory. */
static const inp_imatrix_sums **sums_sorted(const inp_imatrix_sums *e, size_t n)
{
    const inp_imatrix_sums **v = malloc((n ? n : 1) * sizeof *v);
    if (!v)
        return NULL;
    for (size_t i = 0; i < n; ++i)
        v[i] = &e[i];
    qsort(v, n, sizeof *v, sums_cmp);
    return v;
}

inp_error inp_imatrix_declare(gguf_writer *w, const inp_imatrix_sums *e, size_t n,
                              const char *dataset, uint32_t chunk_count, uint32_t chunk_size,
                              char *msg)
{
    if (!w || (!e && n) || !dataset)
        return inp_fail(msg, INP_ERR_ARG, "inp_imatrix_declare: bad arguments");
    if (n == 0)
        return inp_fail(msg, INP_ERR_ARG, "no importance data was collected");
    for (size_t i = 0; i < n; ++i)
        if (!e[i].name || e[i].cols < 1 || !e[i].sum2 || !e[i].sum)
            return inp_fail(msg, INP_ERR_ARG, "inp_imatrix_declare: bad entry %zu", i);
    gguf_error ge = gguf_writer_set_str(w, "general.type", "imatrix");
    if (ge == GGUF_OK)
        ge = gguf_writer_set_str_array(w, "imatrix.datasets", &dataset, 1);
    if (ge == GGUF_OK)
        ge = gguf_writer_set_u32(w, "imatrix.chunk_count", chunk_count);
    if (ge == GGUF_OK)
        ge = gguf_writer_set_u32(w, "imatrix.chunk_size", chunk_size);
    if (ge != GGUF_OK)
        return inp_fail(msg, ge == GGUF_ERR_NOMEM ? INP_ERR_NOMEM : INP_ERR_ARG,
                        "imatrix metadata: %s", gguf_strerror(ge));
    const inp_imatrix_sums **v = sums_sorted(e, n);
    if (!v)
        return inp_fail(msg, INP_ERR_NOMEM, "out of memory");
    inp_error err = INP_OK;
    for (size_t i = 0; i < n && err == INP_OK; ++i) {
        static const char *const suffix[3] = {"in_sum2", "counts", "in_sum"};
        for (int k = 0; k < 3 && err == INP_OK; ++k) {
            char name[GGUF_MAX_NAME + 16], gmsg[GGUF_MSG_SIZE];
            snprintf(name, sizeof name, "%s.%s", v[i]->name, suffix[k]);
            const int64_t ne[1] = {k == 1 ? 1 : v[i]->cols};
            ge = gguf_writer_add_tensor(w, name, 1, ne, GGUF_F32, gmsg);
            if (ge != GGUF_OK)
                err = inp_fail(msg, ge == GGUF_ERR_NOMEM ? INP_ERR_NOMEM : INP_ERR_ARG, "%s", gmsg);
        }
    }
    free(v);
    return err;
}

inp_error inp_imatrix_write_data(gguf_writer *w, const inp_imatrix_sums *e, size_t n, char *msg)
{
    if (!w || (!e && n))
        return inp_fail(msg, INP_ERR_ARG, "inp_imatrix_write_data: bad arguments");
    const inp_imatrix_sums **v = sums_sorted(e, n);
    int maxc = 1;
    for (size_t i = 0; i < n; ++i)
        maxc = e[i].cols > maxc ? e[i].cols : maxc;
    float *buf = malloc((size_t)maxc * sizeof(float));
    inp_error err = INP_OK;
    if (!v || !buf)
        err = inp_fail(msg, INP_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n && err == INP_OK; ++i) {
        for (int k = 0; k < 3 && err == INP_OK; ++k) {
            const int c = k == 1 ? 1 : v[i]->cols;
            for (int j = 0; j < c; ++j)
                buf[j] = k == 1 ? (float)v[i]->count : (float)(k == 0 ? v[i]->sum2[j] : v[i]->sum[j]);
            char gmsg[GGUF_MSG_SIZE];
            gguf_error ge = gguf_writer_write(w, buf, (size_t)c * sizeof(float), gmsg);
            if (ge != GGUF_OK)
                err = inp_fail(msg, ge == GGUF_ERR_NOMEM ? INP_ERR_NOMEM : INP_ERR_IO, "%s", gmsg);
        }
    }
    free(v);
    free(buf);
    return err;
}
