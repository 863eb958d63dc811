/* Tensor sources: dispatch, the GGUF source, and row reads shared with checkpoints. */
#include "common/qf_half.h"
#include "input/inp_internal.h"
#include "tokenizer/tok_error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

inp_error inp_error_from_tok(int e)
{
    switch ((tok_error)e) {
    case TOK_OK: return INP_OK;
    case TOK_ERR_IO: return INP_ERR_IO;
    case TOK_ERR_NOMEM: return INP_ERR_NOMEM;
    case TOK_ERR_FORMAT: return INP_ERR_FORMAT;
    case TOK_ERR_LIMIT: return INP_ERR_LIMIT;
    case TOK_ERR_UNSUPPORTED: return INP_ERR_UNSUPPORTED;
    case TOK_ERR_ARG: return INP_ERR_ARG;
    default: return INP_ERR_MODEL;
    }
}

const char *inp_strerror(inp_error e)
{
    static const char *const names[INP_ERR_COUNT_] = {
        [INP_OK] = "success",
        [INP_ERR_IO] = "I/O error",
        [INP_ERR_NOMEM] = "out of memory",
        [INP_ERR_FORMAT] = "malformed input",
        [INP_ERR_LIMIT] = "size exceeds a limit",
        [INP_ERR_UNSUPPORTED] = "unsupported input",
        [INP_ERR_MISSING] = "missing file, key or tensor",
        [INP_ERR_MODEL] = "config and tensors disagree",
        [INP_ERR_ARG] = "invalid argument",
    };
    return (unsigned)e < INP_ERR_COUNT_ && names[e] ? names[e] : "unknown error";
}

inp_error inp_fail(char *msg, inp_error e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    qf_msg_vformat(msg, INP_MSG_SIZE, NULL, fmt, ap);
    va_end(ap);
    return e;
}

void inp_msg_clean_(char *msg) { qf_msg_clean(msg); }

inp_error inp_add_file(inp_source *s, const char *path, char *msg)
{
    char **f = realloc(s->files, (s->n_files + 1) * sizeof *f);
    INP_FAIL_IF(!f, msg, INP_ERR_NOMEM, "%s: out of memory", path);
    s->files = f;
    INP_FAIL_IF(!(f[s->n_files] = strdup(path)), msg, INP_ERR_NOMEM, "%s: out of memory", path);
    s->n_files++;
    return INP_OK;
}

/* ---- accessors ---- */

bool inp_is_checkpoint(const inp_source *s) { return s->ckpt; }
const gguf_reader *inp_metadata(const inp_source *s) { return s->meta; }
int64_t inp_n_tensors(const inp_source *s) { return s->n; }

const inp_tensor *inp_tensor_at(const inp_source *s, int64_t i)
{
    return i >= 0 && i < s->n ? &s->t[i] : NULL;
}

int64_t inp_find_tensor(const inp_source *s, const char *name)
{
    for (int64_t i = 0; i < s->n; i++)
        if (strcmp(s->t[i].name, name) == 0)
            return i;
    return -1;
}

int64_t inp_n_rows(const inp_tensor *t) { return t->ne[1] * t->ne[2] * t->ne[3]; }

size_t inp_n_files(const inp_source *s) { return s->n_files; }
const char *inp_file(const inp_source *s, size_t i) { return i < s->n_files ? s->files[i] : NULL; }

const void *inp_data(const inp_source *s, int64_t i)
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

static inp_error check_rows(const inp_source *s, int64_t i, int64_t row0, int64_t nrows, const void *dst,
                            char *msg)
{
    INP_FAIL_IF(i < 0 || i >= s->n, msg, INP_ERR_ARG, "%s: tensor index %lld out of range", s->path,
                (long long)i);
    int64_t rows = inp_n_rows(&s->t[i]);
    INP_FAIL_IF(row0 < 0 || nrows < 0 || row0 > rows || nrows > rows - row0, msg, INP_ERR_ARG,
                "%s: rows [%lld, %lld) out of range for '%s' (%lld rows)", s->path, (long long)row0,
                (long long)(row0 + nrows), s->t[i].name, (long long)rows);
    INP_FAIL_IF(!dst && nrows > 0, msg, INP_ERR_ARG, "%s: NULL destination", s->path);
    return INP_OK;
}

static const uint8_t *row_ptr(const inp_source *s, int64_t i, int64_t r)
{
    const inp_slot *sl = &s->slot[i];
    if (sl->perm_groups > 0)
        r = perm_row(r, inp_n_rows(&s->t[i]), sl->perm_groups);
    return sl->data + (size_t)r * sl->row_bytes;
}

inp_error inp_read_raw(inp_source *s, int64_t i, int64_t row0, int64_t nrows, void *dst, char *msg)
{
    inp_error e = check_rows(s, i, row0, nrows, dst, msg);
    if (e != INP_OK)
        return e;
    const inp_slot *sl = &s->slot[i];
    uint8_t *out = dst;
    if (sl->perm_groups == 0) {
        if (nrows > 0)
            memcpy(out, sl->data + (size_t)row0 * sl->row_bytes, (size_t)nrows * sl->row_bytes);
        return INP_OK;
    }
    for (int64_t r = 0; r < nrows; r++)
        memcpy(out + (size_t)r * sl->row_bytes, row_ptr(s, i, row0 + r), sl->row_bytes);
    return INP_OK;
}

inp_error inp_read_f32(inp_source *s, int64_t i, int64_t row0, int64_t nrows, float *dst, char *msg)
{
    inp_error e = check_rows(s, i, row0, nrows, dst, msg);
    if (e != INP_OK)
        return e;
    const inp_tensor *t = &s->t[i];
    size_t ne0 = (size_t)t->ne[0];
    switch (t->type) {
    case GGUF_F32:
        return inp_read_raw(s, i, row0, nrows, dst, msg);
    case GGUF_F16:
        for (int64_t r = 0; r < nrows; r++)
            qf_f16_to_f32_row(row_ptr(s, i, row0 + r), dst + (size_t)r * ne0, ne0);
        return INP_OK;
    case GGUF_BF16:
        for (int64_t r = 0; r < nrows; r++)
            qf_bf16_to_f32_row(row_ptr(s, i, row0 + r), dst + (size_t)r * ne0, ne0);
        return INP_OK;
    default: {
        const gguf_type_traits *tr = gguf_type_info(t->type);
        return inp_fail(msg, INP_ERR_UNSUPPORTED,
                        "%s: tensor '%s' has type %s; only f32, f16 and bf16 can be read as floats",
                        s->path, t->name, tr ? tr->name : "?");
    }
    }
}

void inp_release(inp_source *s, int64_t i)
{
    if (i < 0 || i >= s->n)
        return;
    const inp_slot *sl = &s->slot[i];
    if (s->ckpt) {
        if (sl->shard >= 0) /* computed tensors stay */
            inp_st_release(s->shards[sl->shard], sl->st_index);
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

void inp_close(inp_source *s)
{
    if (!s)
        return;
    gguf_close(s->meta);
    free(s->meta_buf);
    if (s->map)
        munmap(s->map, s->map_size);
    for (size_t i = 0; i < s->n_shards; i++)
        inp_st_close(s->shards[i]);
    free(s->shards);
    free(s->gen);
    for (size_t i = 0; i < s->n_files; i++)
        free(s->files[i]);
    free(s->files);
    free(s->t);
    free(s->slot);
    free(s->path);
    free(s);
}

static inp_error from_gguf(gguf_error g)
{
    switch (g) {
    case GGUF_OK: return INP_OK;
    case GGUF_ERR_IO: return INP_ERR_IO;
    case GGUF_ERR_NOMEM: return INP_ERR_NOMEM;
    case GGUF_ERR_LIMIT: return INP_ERR_LIMIT;
    case GGUF_ERR_ARG: return INP_ERR_ARG;
    default: return INP_ERR_FORMAT;
    }
}

static inp_error open_gguf(const char *path, inp_source *s, char *msg)
{
    char gm[GGUF_MSG_SIZE] = "";
    gguf_error g = gguf_open(path, &s->meta, gm);
    INP_FAIL_IF(g != GGUF_OK, msg, from_gguf(g), "%s: %s", path, gm[0] ? gm : gguf_strerror(g));
    /* Our own mapping: inp_release() may drop its pages whatever the reader does with its own. */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    INP_FAIL_IF(fd < 0, msg, INP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || (uint64_t)st.st_size != gguf_file_size(s->meta) || st.st_size <= 0) {
        close(fd);
        return inp_fail(msg, INP_ERR_IO, "%s: file changed while being opened", path);
    }
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int err = errno;
    close(fd);
    INP_FAIL_IF(m == MAP_FAILED, msg, INP_ERR_IO, "%s: cannot map: %s", path, strerror(err));
    s->map = m;
    s->map_size = (size_t)st.st_size;
    int64_t n = gguf_n_tensors(s->meta);
    s->t = calloc(n > 0 ? (size_t)n : 1, sizeof *s->t);
    s->slot = calloc(n > 0 ? (size_t)n : 1, sizeof *s->slot);
    INP_FAIL_IF(!s->t || !s->slot, msg, INP_ERR_NOMEM, "%s: out of memory for %lld tensors", path,
                (long long)n);
    uint64_t base = gguf_data_offset(s->meta);
    for (int64_t i = 0; i < n; i++) {
        const gguf_tensor *gt = gguf_tensor_at(s->meta, i);
        inp_tensor *t = &s->t[i];
        memcpy(t->name, gt->name, sizeof t->name);
        t->n_dims = gt->n_dims;
        for (int d = 0; d < GGUF_MAX_DIMS; d++)
            t->ne[d] = gt->ne[d];
        t->type = gt->type;
        /* the reader validated these; recheck against our mapping anyway */
        const bool inside = base <= s->map_size && gt->offset <= s->map_size - base &&
                            gt->nbytes <= s->map_size - base - gt->offset;
        INP_FAIL_IF(!inside, msg, INP_ERR_FORMAT, "%s: tensor '%s' data lies outside the file", path, t->name);
        s->slot[i].data = s->map + base + gt->offset;
        s->slot[i].nbytes = gt->nbytes;
        s->slot[i].row_bytes = gguf_row_size(gt->type, gt->ne[0]);
        s->slot[i].shard = -1;
    }
    s->n = n;
    return inp_add_file(s, path, msg);
}

inp_error inp_open(const char *path, inp_source **out, char *msg)
{
    return inp_open_ex(path, NULL, out, msg);
}

inp_error inp_open_ex(const char *path, const inp_open_opts *opts, inp_source **out, char *msg)
{
    static const inp_open_opts none = {0};
    if (!opts)
        opts = &none;
    INP_FAIL_IF(!out || !path, msg, INP_ERR_ARG, "inp_open: invalid argument");
    *out = NULL;
    struct stat st;
    INP_FAIL_IF(stat(path, &st) != 0, msg, INP_ERR_IO, "%s: %s", path, strerror(errno));
    inp_source *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        free(s);
        return inp_fail(msg, INP_ERR_NOMEM, "%s: out of memory", path);
    }
    inp_error e;
    if (S_ISDIR(st.st_mode)) {
        s->ckpt = true;
        e = inp_ckpt_open(path, opts, s, msg);
    } else if (S_ISREG(st.st_mode)) {
        unsigned char magic[4] = {0};
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t got = fd >= 0 ? read(fd, magic, 4) : -1;
        int err = errno;
        if (fd >= 0)
            close(fd);
        if (got < 0)
            e = inp_fail(msg, INP_ERR_IO, "%s: cannot read: %s", path, strerror(err));
        else if (got == 4 && memcmp(magic, "GGUF", 4) == 0 && opts->tokenizer_pre)
            e = inp_fail(msg, INP_ERR_ARG, "%s: a pre-tokenizer name (--tokenizer-pre) applies only to a checkpoint "
                         "with tokenizer.json, not to a GGUF file", path);
        else if (got == 4 && memcmp(magic, "GGUF", 4) == 0)
            e = open_gguf(path, s, msg);
        else
            e = inp_fail(msg, INP_ERR_FORMAT,
                         "%s: not a GGUF file (give a checkpoint as its directory, with config.json)", path);
    } else {
        e = inp_fail(msg, INP_ERR_IO, "%s: neither a regular file nor a directory", path);
    }
    if (e != INP_OK) {
        inp_close(s);
        return e;
    }
    *out = s;
    return INP_OK;
}
