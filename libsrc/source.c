/* Tensor sources: dispatch, the GGUF source, and row reads shared with checkpoints. */
#include "libsrc/src_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

const char *src_strerror(src_error e)
{
    static const char *const names[SRC_ERR_COUNT_] = {
        [SRC_OK] = "success",
        [SRC_ERR_IO] = "I/O error",
        [SRC_ERR_NOMEM] = "out of memory",
        [SRC_ERR_FORMAT] = "malformed input",
        [SRC_ERR_LIMIT] = "size exceeds a limit",
        [SRC_ERR_UNSUPPORTED] = "unsupported input",
        [SRC_ERR_MISSING] = "missing file, key or tensor",
        [SRC_ERR_MODEL] = "config and tensors disagree",
        [SRC_ERR_ARG] = "invalid argument",
    };
    return (unsigned)e < SRC_ERR_COUNT_ && names[e] ? names[e] : "unknown error";
}

src_error src_fail(char *msg, src_error e, const char *fmt, ...)
{
    if (msg) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, SRC_MSG_SIZE, fmt, ap);
        va_end(ap);
        src_msg_clean_(msg);
    }
    return e;
}

void src_msg_clean_(char *msg)
{
    for (unsigned char *p = (unsigned char *)msg; p && *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            *p = '?';
}

src_error src_add_file(src_source *s, const char *path, char *msg)
{
    char **f = realloc(s->files, (s->n_files + 1) * sizeof *f);
    if (!f)
        return src_fail(msg, SRC_ERR_NOMEM, "%s: out of memory", path);
    s->files = f;
    if (!(f[s->n_files] = strdup(path)))
        return src_fail(msg, SRC_ERR_NOMEM, "%s: out of memory", path);
    s->n_files++;
    return SRC_OK;
}

/* ---- half precision (exact; byte loads, so any alignment works) ---- */

static float f16_bits_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1F, man = h & 0x3FF, bits;
    if (exp == 0x1F) {
        bits = sign | 0x7F800000u | (man << 13);
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    } else if (man == 0) {
        bits = sign;
    } else { /* subnormal: normalize */
        int e = -1;
        do {
            e++;
            man <<= 1;
        } while (!(man & 0x400));
        bits = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3FF) << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static float bf16_bits_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static void f16_bytes_to_f32(const uint8_t *p, float *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = f16_bits_to_f32((uint16_t)(p[2 * i] | (p[2 * i + 1] << 8)));
}

static void bf16_bytes_to_f32(const uint8_t *p, float *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = bf16_bits_to_f32((uint16_t)(p[2 * i] | (p[2 * i + 1] << 8)));
}

void src_f16_to_f32(const uint16_t *x, float *y, size_t n) { f16_bytes_to_f32((const uint8_t *)x, y, n); }
void src_bf16_to_f32(const uint16_t *x, float *y, size_t n) { bf16_bytes_to_f32((const uint8_t *)x, y, n); }

/* ---- accessors ---- */

bool src_is_checkpoint(const src_source *s) { return s->ckpt; }
const gguf_reader *src_metadata(const src_source *s) { return s->meta; }
int64_t src_n_tensors(const src_source *s) { return s->n; }

const src_tensor *src_tensor_at(const src_source *s, int64_t i)
{
    return i >= 0 && i < s->n ? &s->t[i] : NULL;
}

int64_t src_find_tensor(const src_source *s, const char *name)
{
    for (int64_t i = 0; i < s->n; i++)
        if (strcmp(s->t[i].name, name) == 0)
            return i;
    return -1;
}

int64_t src_n_rows(const src_tensor *t) { return t->ne[1] * t->ne[2] * t->ne[3]; }

size_t src_n_files(const src_source *s) { return s->n_files; }
const char *src_file(const src_source *s, size_t i) { return i < s->n_files ? s->files[i] : NULL; }

const void *src_data(const src_source *s, int64_t i)
{
    if (i < 0 || i >= s->n || s->ckpt)
        return NULL;
    return s->slot[i].data;
}

/* ---- rows ---- */

/* llama.cpp's LlamaModel.permute on rows: view the rows as [groups][2][half] and swap the
 * last two axes, so output row r holds input row perm_row(r). */
static int64_t perm_row(int64_t r, int64_t rows, int64_t groups)
{
    int64_t half = rows / groups / 2;
    int64_t h = r / (2 * half), rem = r % (2 * half);
    return h * 2 * half + (rem % 2) * half + rem / 2;
}

static src_error check_rows(const src_source *s, int64_t i, int64_t row0, int64_t nrows, const void *dst,
                            char *msg)
{
    if (i < 0 || i >= s->n)
        return src_fail(msg, SRC_ERR_ARG, "%s: tensor index %lld out of range", s->path, (long long)i);
    int64_t rows = src_n_rows(&s->t[i]);
    if (row0 < 0 || nrows < 0 || row0 > rows || nrows > rows - row0)
        return src_fail(msg, SRC_ERR_ARG, "%s: rows [%lld, %lld) out of range for '%s' (%lld rows)", s->path,
                        (long long)row0, (long long)(row0 + nrows), s->t[i].name, (long long)rows);
    if (!dst && nrows > 0)
        return src_fail(msg, SRC_ERR_ARG, "%s: NULL destination", s->path);
    return SRC_OK;
}

static const uint8_t *row_ptr(const src_source *s, int64_t i, int64_t r)
{
    const src_slot *sl = &s->slot[i];
    if (sl->perm_groups > 0)
        r = perm_row(r, src_n_rows(&s->t[i]), sl->perm_groups);
    return sl->data + (size_t)r * sl->row_bytes;
}

src_error src_read_raw(src_source *s, int64_t i, int64_t row0, int64_t nrows, void *dst, char *msg)
{
    src_error e = check_rows(s, i, row0, nrows, dst, msg);
    if (e != SRC_OK)
        return e;
    const src_slot *sl = &s->slot[i];
    uint8_t *out = dst;
    if (sl->perm_groups == 0) {
        if (nrows > 0)
            memcpy(out, sl->data + (size_t)row0 * sl->row_bytes, (size_t)nrows * sl->row_bytes);
        return SRC_OK;
    }
    for (int64_t r = 0; r < nrows; r++)
        memcpy(out + (size_t)r * sl->row_bytes, row_ptr(s, i, row0 + r), sl->row_bytes);
    return SRC_OK;
}

src_error src_read_f32(src_source *s, int64_t i, int64_t row0, int64_t nrows, float *dst, char *msg)
{
    src_error e = check_rows(s, i, row0, nrows, dst, msg);
    if (e != SRC_OK)
        return e;
    const src_tensor *t = &s->t[i];
    size_t ne0 = (size_t)t->ne[0];
    switch (t->type) {
    case GGUF_F32:
        return src_read_raw(s, i, row0, nrows, dst, msg);
    case GGUF_F16:
        for (int64_t r = 0; r < nrows; r++)
            f16_bytes_to_f32(row_ptr(s, i, row0 + r), dst + (size_t)r * ne0, ne0);
        return SRC_OK;
    case GGUF_BF16:
        for (int64_t r = 0; r < nrows; r++)
            bf16_bytes_to_f32(row_ptr(s, i, row0 + r), dst + (size_t)r * ne0, ne0);
        return SRC_OK;
    default: {
        const gguf_type_traits *tr = gguf_type_info(t->type);
        return src_fail(msg, SRC_ERR_UNSUPPORTED,
                        "%s: tensor '%s' has type %s; only f32, f16 and bf16 can be read as floats",
                        s->path, t->name, tr ? tr->name : "?");
    }
    }
}

void src_release(src_source *s, int64_t i)
{
    if (i < 0 || i >= s->n)
        return;
    const src_slot *sl = &s->slot[i];
    if (s->ckpt) {
        src_st_release(s->shards[sl->shard], sl->st_index);
        return;
    }
    if (!s->map || sl->nbytes == 0)
        return;
    long pg = sysconf(_SC_PAGESIZE);
    size_t page = pg > 0 ? (size_t)pg : 4096;
    size_t a = (size_t)(sl->data - s->map);
    size_t b = a + (size_t)sl->nbytes;
    a -= a % page;
    if (b % page)
        b += page - b % page;
    madvise(s->map + a, b - a, MADV_DONTNEED);
}

/* ---- open/close ---- */

void src_close(src_source *s)
{
    if (!s)
        return;
    gguf_close(s->meta);
    free(s->meta_buf);
    if (s->map)
        munmap(s->map, s->map_size);
    for (size_t i = 0; i < s->n_shards; i++)
        src_st_close(s->shards[i]);
    free(s->shards);
    for (size_t i = 0; i < s->n_files; i++)
        free(s->files[i]);
    free(s->files);
    free(s->t);
    free(s->slot);
    free(s->path);
    free(s);
}

static src_error from_gguf(gguf_error g)
{
    switch (g) {
    case GGUF_OK: return SRC_OK;
    case GGUF_ERR_IO: return SRC_ERR_IO;
    case GGUF_ERR_NOMEM: return SRC_ERR_NOMEM;
    case GGUF_ERR_LIMIT: return SRC_ERR_LIMIT;
    case GGUF_ERR_ARG: return SRC_ERR_ARG;
    default: return SRC_ERR_FORMAT;
    }
}

static src_error open_gguf(const char *path, src_source *s, char *msg)
{
    char gm[GGUF_MSG_SIZE] = "";
    gguf_error g = gguf_open(path, &s->meta, gm);
    if (g != GGUF_OK)
        return src_fail(msg, from_gguf(g), "%s: %s", path, gm[0] ? gm : gguf_strerror(g));
    /* Our own mapping: src_release() may drop its pages whatever the reader does with its own. */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return src_fail(msg, SRC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || (uint64_t)st.st_size != gguf_file_size(s->meta) || st.st_size <= 0) {
        close(fd);
        return src_fail(msg, SRC_ERR_IO, "%s: file changed while being opened", path);
    }
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int err = errno;
    close(fd);
    if (m == MAP_FAILED)
        return src_fail(msg, SRC_ERR_IO, "%s: cannot map: %s", path, strerror(err));
    s->map = m;
    s->map_size = (size_t)st.st_size;
    int64_t n = gguf_n_tensors(s->meta);
    s->t = calloc(n > 0 ? (size_t)n : 1, sizeof *s->t);
    s->slot = calloc(n > 0 ? (size_t)n : 1, sizeof *s->slot);
    if (!s->t || !s->slot)
        return src_fail(msg, SRC_ERR_NOMEM, "%s: out of memory for %lld tensors", path, (long long)n);
    uint64_t base = gguf_data_offset(s->meta);
    for (int64_t i = 0; i < n; i++) {
        const gguf_tensor *gt = gguf_tensor_at(s->meta, i);
        src_tensor *t = &s->t[i];
        memcpy(t->name, gt->name, sizeof t->name);
        t->n_dims = gt->n_dims;
        for (int d = 0; d < GGUF_MAX_DIMS; d++)
            t->ne[d] = gt->ne[d];
        t->type = gt->type;
        /* the reader validated these; recheck against our mapping anyway */
        if (base > s->map_size || gt->offset > s->map_size - base || gt->nbytes > s->map_size - base - gt->offset)
            return src_fail(msg, SRC_ERR_FORMAT, "%s: tensor '%s' data lies outside the file", path, t->name);
        s->slot[i].data = s->map + base + gt->offset;
        s->slot[i].nbytes = gt->nbytes;
        s->slot[i].row_bytes = gguf_row_size(gt->type, gt->ne[0]);
        s->slot[i].shard = -1;
    }
    s->n = n;
    return src_add_file(s, path, msg);
}

src_error src_open(const char *path, src_source **out, char *msg)
{
    if (!out || !path)
        return src_fail(msg, SRC_ERR_ARG, "src_open: invalid argument");
    *out = NULL;
    struct stat st;
    if (stat(path, &st) != 0)
        return src_fail(msg, SRC_ERR_IO, "%s: %s", path, strerror(errno));
    src_source *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        free(s);
        return src_fail(msg, SRC_ERR_NOMEM, "%s: out of memory", path);
    }
    src_error e;
    if (S_ISDIR(st.st_mode)) {
        s->ckpt = true;
        e = src_ckpt_open(path, s, msg);
    } else if (S_ISREG(st.st_mode)) {
        unsigned char magic[4] = {0};
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t got = fd >= 0 ? read(fd, magic, 4) : -1;
        int err = errno;
        if (fd >= 0)
            close(fd);
        if (got < 0)
            e = src_fail(msg, SRC_ERR_IO, "%s: cannot read: %s", path, strerror(err));
        else if (got == 4 && memcmp(magic, "GGUF", 4) == 0)
            e = open_gguf(path, s, msg);
        else
            e = src_fail(msg, SRC_ERR_FORMAT,
                         "%s: not a GGUF file (give a checkpoint as its directory, with config.json)", path);
    } else {
        e = src_fail(msg, SRC_ERR_IO, "%s: neither a regular file nor a directory", path);
    }
    if (e != SRC_OK) {
        src_close(s);
        return e;
    }
    *out = s;
    return SRC_OK;
}
