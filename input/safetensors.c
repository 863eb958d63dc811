/* Validating safetensors reader; rules in input/safetensors.h. */
#include "input/safetensors.h"
#include "common/qf_msg.h"
#include "common/qf_utf8.h"
#include "input/inp_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct name_ix {
    const char *name;
    size_t i;
};

struct inp_st_file {
    char *path;            /* label used in messages */
    const uint8_t *buf;    /* whole file */
    size_t size;
    bool mapped;
    uint64_t header_len;   /* N */
    inp_st_tensor *t;      /* data order */
    size_t nt;
    struct name_ix *by_name; /* sorted by name */
    char **mkey, **mval;
    size_t nm;
};

static const struct {
    const char *name;
    uint32_t bits;
    int gguf_type;
} k_dtypes[] = {
    {"BOOL", 8, -1},      {"U8", 8, -1},        {"I8", 8, -1},
    {"F8_E5M2", 8, -1},   {"F8_E4M3", 8, -1},   {"F8_E8M0", 8, -1},
    {"F4", 4, -1},        {"F6_E2M3", 6, -1},   {"F6_E3M2", 6, -1},
    {"I16", 16, -1},      {"U16", 16, -1},      {"F16", 16, GGUF_F16},
    {"BF16", 16, GGUF_BF16}, {"I32", 32, -1},   {"U32", 32, -1},
    {"F32", 32, GGUF_F32}, {"F64", 64, -1},     {"C64", 64, -1},
    {"I64", 64, -1},      {"U64", 64, -1},
};

static int dtype_index(const char *s)
{
    for (size_t i = 0; i < sizeof k_dtypes / sizeof k_dtypes[0]; i++)
        if (strcmp(s, k_dtypes[i].name) == 0)
            return (int)i;
    return -1;
}

uint32_t inp_st_dtype_bits(const char *dtype)
{
    int i = dtype ? dtype_index(dtype) : -1;
    return i < 0 ? 0 : k_dtypes[i].bits;
}

/* "LABEL: fmt..." into msg (common/qf_msg.h); returns e. */
static inp_error fail(char *msg, inp_error e, const char *label, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static inp_error fail(char *msg, inp_error e, const char *label, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    qf_msg_vformat(msg, INP_MSG_SIZE, label, fmt, ap);
    va_end(ap);
    return e;
}
/* One-line check: if cond, return fail(msg, code, label, fmt, ...). */
#define FAIL_IF(cond, msg, code, ...) QF_FAIL_IF(cond, fail, msg, code, __VA_ARGS__)

const char *inp_printable_(const char *s, size_t len, char *out, size_t size)
{
    size_t o = 0, mark = 0, i = 0;
    while (i < len) {
        const unsigned char c = (unsigned char)s[i];
        size_t n = 1;       /* input bytes of this character */
        bool keep = c >= 0x20 && c < 0x7f;
        const size_t cl = c >= 0x80 ? qf_utf8_char_len(s + i, len - i) : 0;
        if (cl > 0) {
            n = cl;
            const unsigned char c1 = (unsigned char)s[i + 1], c2 = n > 2 ? (unsigned char)s[i + 2] : 0;
            /* not C1 controls (U+0080..U+009F, e.g. CSI) nor U+2028/U+2029 line breaks */
            keep = !(c == 0xC2 && c1 < 0xA0) && !(c == 0xE2 && c1 == 0x80 && (c2 == 0xA8 || c2 == 0xA9));
        }
        const size_t w = keep ? n : 1;
        if (o + w > size - 1) { /* does not fit: cut at the last character that leaves room for "..." */
            memcpy(out + mark, "...", 3);
            o = mark + 3;
            break;
        }
        if (keep)
            memcpy(out + o, s + i, n);
        else
            out[o] = '?';
        o += w;
        i += n;
        if (o + 3 <= size - 1)
            mark = o;
    }
    out[o] = 0;
    return out;
}

static const char *shown(const char *name, char buf[INP_SHOWN_SIZE])
{
    return inp_printable_(name, strlen(name), buf, INP_SHOWN_SIZE);
}

static void free_parts(inp_st_file *f)
{
    if (f->t)
        for (size_t i = 0; i < f->nt; i++)
            free((char *)f->t[i].name);
    free(f->t);
    free(f->by_name);
    for (size_t i = 0; i < f->nm; i++) {
        free(f->mkey[i]);
        free(f->mval[i]);
    }
    free(f->mkey);
    free(f->mval);
    free(f->path);
}

void inp_st_close(inp_st_file *f)
{
    if (!f)
        return;
    if (f->mapped && f->buf)
        munmap((void *)f->buf, f->size);
    free_parts(f);
    free(f);
}

static int cmp_offsets(const void *a, const void *b)
{
    const inp_st_tensor *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(((const struct name_ix *)a)->name, ((const struct name_ix *)b)->name);
}

static void shape_str(const inp_st_tensor *t, char *buf, size_t n)
{
    size_t o = (size_t)snprintf(buf, n, "[");
    for (uint32_t d = 0; d < t->n_dims && o < n; d++)
        o += (size_t)snprintf(buf + o, n - o, "%s%" PRIu64, d ? ", " : "", t->shape[d]);
    if (o < n)
        snprintf(buf + o, n - o, "]");
}

/* Reads a non-negative JSON integer. */
static bool get_uint(const json_t *v, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return false;
    *out = (uint64_t)json_integer_value(v);
    return true;
}

static inp_error parse_tensor(inp_st_file *f, const char *name, json_t *v, inp_st_tensor *t,
                              char *msg)
{
    char nb[INP_SHOWN_SIZE];
    const char *L = f->path;
    const char *nm = shown(name, nb);
    FAIL_IF(!json_is_object(v), msg, INP_ERR_FORMAT, L, "tensor '%s' entry is not a JSON object", nm);
    json_t *dt = json_object_get(v, "dtype");
    json_t *sh = json_object_get(v, "shape");
    json_t *of = json_object_get(v, "data_offsets");
    FAIL_IF(!dt, msg, INP_ERR_FORMAT, L, "tensor '%s' has no \"dtype\"", nm);
    FAIL_IF(!json_is_string(dt), msg, INP_ERR_FORMAT, L, "tensor '%s' \"dtype\" is not a string", nm);
    int di = dtype_index(json_string_value(dt));
    if (di < 0) {
        char db[INP_SHOWN_SIZE];
        return fail(msg, INP_ERR_FORMAT, L, "tensor '%s' has unknown dtype '%s'", nm,
                    shown(json_string_value(dt), db));
    }
    FAIL_IF(!sh, msg, INP_ERR_FORMAT, L, "tensor '%s' has no \"shape\"", nm);
    FAIL_IF(!json_is_array(sh), msg, INP_ERR_FORMAT, L, "tensor '%s' \"shape\" is not an array", nm);
    FAIL_IF(!of, msg, INP_ERR_FORMAT, L, "tensor '%s' has no \"data_offsets\"", nm);
    FAIL_IF(!json_is_array(of) || json_array_size(of) != 2, msg, INP_ERR_FORMAT, L,
            "tensor '%s' \"data_offsets\" is not an array of two integers", nm);
    size_t rank = json_array_size(sh);
    FAIL_IF(rank > INP_ST_MAX_DIMS, msg, INP_ERR_LIMIT, L,
            "tensor '%s' has %zu dimensions, more than the cap of %d", nm, rank, INP_ST_MAX_DIMS);
    t->dtype = k_dtypes[di].name;
    t->dtype_bits = k_dtypes[di].bits;
    t->gguf_type = k_dtypes[di].gguf_type;
    t->n_dims = (uint32_t)rank;
    uint64_t nel = 1;
    bool overflow = false;
    for (size_t d = 0; d < rank; d++) {
        FAIL_IF(!get_uint(json_array_get(sh, d), &t->shape[d]), msg, INP_ERR_FORMAT, L,
                "tensor '%s' shape entry %zu is not a non-negative integer", nm, d);
        if (t->shape[d] != 0 && nel > UINT64_MAX / t->shape[d])
            overflow = true;
        else
            nel *= t->shape[d];
    }
    FAIL_IF(!get_uint(json_array_get(of, 0), &t->begin) || !get_uint(json_array_get(of, 1), &t->end), msg,
            INP_ERR_FORMAT, L, "tensor '%s' \"data_offsets\" are not non-negative integers", nm);
    FAIL_IF(t->end < t->begin, msg, INP_ERR_FORMAT, L,
            "tensor '%s' data_offsets [%" PRIu64 ", %" PRIu64 "] end before they begin", nm, t->begin,
            t->end);
    FAIL_IF(overflow || nel > SIZE_MAX / 64, msg, INP_ERR_FORMAT, L, "tensor '%s' element count overflows",
            nm);
    t->n_elements = nel;
    return INP_OK;
}

static inp_error parse(inp_st_file *f, char *msg)
{
    const char *L = f->path;
    FAIL_IF(f->size < 8, msg, INP_ERR_FORMAT, L, "file is %zu bytes, too short for the 8-byte header length",
            f->size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = (n << 8) | f->buf[i];
    FAIL_IF(n > INP_ST_MAX_HEADER, msg, INP_ERR_LIMIT, L,
            "header length %" PRIu64 " exceeds the cap of %llu bytes", n, INP_ST_MAX_HEADER);
    FAIL_IF(n > f->size - 8, msg, INP_ERR_FORMAT, L,
            "header length %" PRIu64 " runs past the end of the file (%zu bytes)", n, f->size);
    f->header_len = n;
    const uint8_t *h = f->buf + 8;
    size_t bad = qf_utf8_invalid_at(h, (size_t)n);
    FAIL_IF(bad < n, msg, INP_ERR_FORMAT, L, "header is not valid UTF-8 (byte %zu of the header)", bad);
    json_error_t jerr;
    json_t *root = json_loadb((const char *)h, (size_t)n, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
                              &jerr);
    if (!root) {
        char tb[JSON_ERROR_TEXT_LENGTH];
        return fail(msg, INP_ERR_FORMAT, L, "header is not valid JSON: %s (line %d, column %d)",
                    inp_printable_(jerr.text, strlen(jerr.text), tb, sizeof tb), jerr.line, jerr.column);
    }
    inp_error e = INP_OK;
    if (!json_is_object(root)) {
        e = fail(msg, INP_ERR_FORMAT, L, "header is not a JSON object");
        goto out;
    }
    size_t total = json_object_size(root);
    json_t *meta = json_object_get(root, "__metadata__");
    size_t nt = total - (meta ? 1 : 0);
    f->t = calloc(nt ? nt : 1, sizeof *f->t);
    f->by_name = malloc((nt ? nt : 1) * sizeof *f->by_name);
    if (!f->t || !f->by_name) {
        e = fail(msg, INP_ERR_NOMEM, L, "out of memory for %zu tensor entries", nt);
        goto out;
    }
    if (meta && !json_is_null(meta)) {
        if (!json_is_object(meta)) {
            e = fail(msg, INP_ERR_FORMAT, L, "\"__metadata__\" is not a JSON object");
            goto out;
        }
        size_t nm = json_object_size(meta);
        f->mkey = calloc(nm ? nm : 1, sizeof *f->mkey);
        f->mval = calloc(nm ? nm : 1, sizeof *f->mval);
        if (!f->mkey || !f->mval) {
            e = fail(msg, INP_ERR_NOMEM, L, "out of memory for metadata");
            goto out;
        }
        const char *k;
        json_t *v;
        json_object_foreach(meta, k, v) {
            char kb[INP_SHOWN_SIZE];
            if (!json_is_string(v)) {
                e = fail(msg, INP_ERR_FORMAT, L, "\"__metadata__\" value of '%s' is not a string",
                         shown(k, kb));
                goto out;
            }
            f->mkey[f->nm] = strdup(k);
            f->mval[f->nm] = strdup(json_string_value(v));
            f->nm++;
            if (!f->mkey[f->nm - 1] || !f->mval[f->nm - 1]) {
                e = fail(msg, INP_ERR_NOMEM, L, "out of memory for metadata");
                goto out;
            }
        }
    }
    {
        const char *k;
        json_t *v;
        json_object_foreach(root, k, v) {
            if (strcmp(k, "__metadata__") == 0)
                continue;
            inp_st_tensor *t = &f->t[f->nt];
            t->name = strdup(k);
            if (!t->name) {
                e = fail(msg, INP_ERR_NOMEM, L, "out of memory for tensor names");
                goto out;
            }
            f->nt++;
            if ((e = parse_tensor(f, k, v, t, msg)) != INP_OK)
                goto out;
        }
    }
    /* Data order: the tensors must tile the data buffer exactly. */
    qsort(f->t, f->nt, sizeof *f->t, cmp_offsets);
    uint64_t data_size = (uint64_t)f->size - 8 - n;
    uint64_t start = 0;
    for (size_t i = 0; i < f->nt; i++) {
        inp_st_tensor *t = &f->t[i];
        char nb[INP_SHOWN_SIZE], pb[INP_SHOWN_SIZE];
        if (t->begin != start) {
            if (t->begin < start)
                e = fail(msg, INP_ERR_FORMAT, L,
                         "tensor '%s' data_offsets [%" PRIu64 ", %" PRIu64
                         "] overlap tensor '%s' (which ends at %" PRIu64 ")",
                         shown(t->name, nb), t->begin, t->end, shown(f->t[i - 1].name, pb), start);
            else
                e = fail(msg, INP_ERR_FORMAT, L,
                         "gap of %" PRIu64 " bytes before tensor '%s' (data_offsets [%" PRIu64
                         ", %" PRIu64 "], previous data ends at %" PRIu64 ")",
                         t->begin - start, shown(t->name, nb), t->begin, t->end, start);
            goto out;
        }
        uint64_t bits = t->n_elements * t->dtype_bits; /* n_elements ≤ SIZE_MAX/64 */
        if (bits % 8 != 0) {
            e = fail(msg, INP_ERR_FORMAT, L,
                     "tensor '%s' of dtype %s has %" PRIu64 " elements, which do not fill whole bytes",
                     shown(t->name, nb), t->dtype, t->n_elements);
            goto out;
        }
        if (t->end - t->begin != bits / 8) {
            char sb[200];
            shape_str(t, sb, sizeof sb);
            e = fail(msg, INP_ERR_FORMAT, L,
                     "tensor '%s' data_offsets [%" PRIu64 ", %" PRIu64 "] hold %" PRIu64
                     " bytes but shape %s of %s needs %" PRIu64,
                     shown(t->name, nb), t->begin, t->end, t->end - t->begin, sb, t->dtype, bits / 8);
            goto out;
        }
        if (t->end > data_size) {
            e = fail(msg, INP_ERR_FORMAT, L,
                     "tensor '%s' data_offsets [%" PRIu64 ", %" PRIu64
                     "] run past the end of the data (%" PRIu64 " bytes)",
                     shown(t->name, nb), t->begin, t->end, data_size);
            goto out;
        }
        start = t->end;
    }
    if (start != data_size) {
        e = fail(msg, INP_ERR_FORMAT, L,
                 "%" PRIu64 " bytes after the last tensor's data (data is %" PRIu64
                 " bytes, tensors cover %" PRIu64 ")",
                 data_size - start, data_size, start);
        goto out;
    }
    for (size_t i = 0; i < f->nt; i++) {
        f->by_name[i].name = f->t[i].name;
        f->by_name[i].i = i;
    }
    qsort(f->by_name, f->nt, sizeof *f->by_name, cmp_names);
out:
    json_decref(root);
    return e;
}

static inp_error finish_open(inp_st_file *f, inp_st_file **out, char *msg)
{
    inp_error e = parse(f, msg);
    if (e != INP_OK) {
        inp_st_close(f);
        return e;
    }
    *out = f;
    return INP_OK;
}

inp_error inp_st_open_memory(const void *buf, size_t size, const char *label, inp_st_file **out,
                             char *msg)
{
    FAIL_IF(!out || (!buf && size), msg, INP_ERR_ARG, label ? label : "(buffer)", "invalid argument");
    *out = NULL;
    inp_st_file *f = calloc(1, sizeof *f);
    FAIL_IF(!f, msg, INP_ERR_NOMEM, label ? label : "(buffer)", "out of memory");
    f->path = strdup(label ? label : "(buffer)");
    if (!f->path) {
        free(f);
        return fail(msg, INP_ERR_NOMEM, label ? label : "(buffer)", "out of memory");
    }
    f->buf = buf;
    f->size = size;
    return finish_open(f, out, msg);
}

inp_error inp_st_open(const char *path, inp_st_file **out, char *msg)
{
    FAIL_IF(!out || !path, msg, INP_ERR_ARG, path ? path : "(null)", "invalid argument");
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    FAIL_IF(fd < 0, msg, INP_ERR_IO, path, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int err = errno;
        close(fd);
        return fail(msg, INP_ERR_IO, path, "cannot stat: %s", strerror(err));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return fail(msg, INP_ERR_IO, path, "not a regular file");
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        return fail(msg, INP_ERR_LIMIT, path, "file too large to map");
    }
    size_t size = (size_t)st.st_size;
    inp_st_file *f = calloc(1, sizeof *f);
    char *p = strdup(path);
    if (!f || !p) {
        free(f);
        free(p);
        close(fd);
        return fail(msg, INP_ERR_NOMEM, path, "out of memory");
    }
    f->path = p;
    f->size = size;
    if (size > 0) {
        void *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            int err = errno;
            close(fd);
            free_parts(f);
            free(f);
            return fail(msg, INP_ERR_IO, path, "cannot map: %s", strerror(err));
        }
        f->buf = m;
        f->mapped = true;
    } else {
        f->buf = (const uint8_t *)"";
    }
    close(fd);
    return finish_open(f, out, msg);
}

const char *inp_st_path(const inp_st_file *f) { return f->path; }
uint64_t inp_st_header_size(const inp_st_file *f) { return f->header_len; }
uint64_t inp_st_file_size(const inp_st_file *f) { return f->size; }
size_t inp_st_n_tensors(const inp_st_file *f) { return f->nt; }

const inp_st_tensor *inp_st_tensor_at(const inp_st_file *f, size_t i)
{
    return i < f->nt ? &f->t[i] : NULL;
}

int64_t inp_st_find(const inp_st_file *f, const char *name)
{
    size_t lo = 0, hi = f->nt;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(f->by_name[mid].name, name);
        if (c == 0)
            return (int64_t)f->by_name[mid].i;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

const void *inp_st_data(const inp_st_file *f, size_t i)
{
    if (i >= f->nt)
        return NULL;
    return f->buf + 8 + f->header_len + f->t[i].begin;
}

void inp_st_release(inp_st_file *f, size_t i)
{
    if (!f->mapped || i >= f->nt || f->t[i].end == f->t[i].begin)
        return;
    long pg = sysconf(_SC_PAGESIZE);
    size_t page = pg > 0 ? (size_t)pg : 4096;
    size_t a = (size_t)(8 + f->header_len + f->t[i].begin);
    size_t b = (size_t)(8 + f->header_len + f->t[i].end);
    a -= a % page;
    b = b % page ? b + (page - b % page) : b;
    if (b > f->size)
        b = f->size + (f->size % page ? page - f->size % page : 0);
    madvise((void *)(f->buf + a), b - a, MADV_DONTNEED);
}

size_t inp_st_n_metadata(const inp_st_file *f) { return f->nm; }
const char *inp_st_metadata_key(const inp_st_file *f, size_t i) { return i < f->nm ? f->mkey[i] : NULL; }
const char *inp_st_metadata_value(const inp_st_file *f, size_t i) { return i < f->nm ? f->mval[i] : NULL; }
