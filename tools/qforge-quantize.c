/* qforge-quantize: GGUF (F32/F16/BF16) or checkpoint directory -> quantized GGUF, in one
 * streaming pass, choosing tensor types as llama-quantize does (libquant/lq_mix.h). */
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libgguf/gguf.h"
#include "libquant/lq.h"
#include "libquant/lq_mix.h"
#include "input/imatrix.h"
#include "input/input.h"
#include "input/text.h"
#include "runtime/calib.h"
#include "tools/cli.h"

/* Output bytes made per parallel step (at least one row); raw copies go in steps of this too.
 * The environment variable QFORGE_CHUNK_BYTES overrides it (tests use tiny chunks). */
#define CHUNK_BYTES ((size_t)16 << 20)
static size_t g_chunk_bytes = CHUNK_BYTES;

typedef struct {
    const char *input, *output, *type_name;
    int ftype;
    int nthreads;
    bool dry_run;
    const char *imatrix_path;
    const char *report_path;
    lq_mix_params mix;
    lq_mix_overrides *overrides;
    /* calibration: --gptq, --imatrix-out */
    bool gptq, act_order, gptq_sym;
    double damp;
    const char *calib_path, *imatrix_out;
    int calib_samples, calib_ctx, npos;
    uint64_t seed;
    uint64_t max_memory; /* calibration budget, 0: none */
} options;

typedef struct {
    int64_t inp_index;
    const inp_tensor *t;
    lq_mix_choice ch;
    uint32_t n_dims;         /* as written: trailing dimensions of 1 dropped, like ggml */
    int64_t nrows;
    uint64_t in_bytes, out_bytes;
    const float *imat;       /* importance per column (per expert slice), or NULL */
    double rmse;             /* of the dequantized output against the input; < 0: not measured */
    double seconds;
} item;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: qforge-quantize [options] INPUT OUTPUT TYPE\n"
            "       qforge-quantize [calibration options] --imatrix-out FILE INPUT\n"
            "\n"
            "INPUT   a GGUF file (F32/F16/BF16 tensors) or a Hugging Face checkpoint directory\n"
            "OUTPUT  the GGUF file to write (never one of the input files)\n"
            "TYPE    Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K Q8_0 Q4_0 Q4_1\n"
            "        Q5_0 Q5_1 F16 BF16 F32, the aliases Q3_K Q4_K Q5_K (_M), or llama.cpp's id\n"
            "\n"
            "options:\n"
            "  -t, --threads N              worker threads (default: all cores)\n"
            "  --pure                       no mixture: the base type for every quantized tensor\n"
            "  --leave-output-tensor        keep output.weight in its input type\n"
            "  --output-tensor-type T       type for output.weight\n"
            "  --token-embedding-type T     type for token_embd.weight\n"
            "  --tensor-type REGEX=T        type for tensors whose name matches REGEX (POSIX ERE);\n"
            "                               repeatable, the first matching rule wins\n"
            "  --imatrix FILE               importance matrix (llama-imatrix GGUF or legacy .dat)\n"
            "  --dry-run                    print the plan and sizes; write no model\n"
            "  --report FILE.json           per-tensor type, bytes and RMSE as JSON\n"
            "  --gptq                       GPTQ (calibrated) for the linear weights of every layer,\n"
            "                               each at the type the mixture picked; same file size\n"
            "  --act-order                  GPTQ in descending order of activation energy\n"
            "  --gptq-sym                   classic GPTQ objective ||(W-Q)x||^2 on the quantized\n"
            "                               model's inputs (default: ||W x_float - Q x||^2)\n"
            "  --damp X                     GPTQ damping, relative to mean diag(H) (default 0.01)\n"
            "  --calib FILE                 calibration text, UTF-8 or .gz (default: the bundled\n"
            "                               calibration/calibration.txt)\n"
            "  --calib-samples N            calibration chunks (default 128)\n"
            "  --calib-ctx N                tokens per chunk (default min(512, model context))\n"
            "  --seed N                     seed of the random chunk choice (default 0)\n"
            "  --imatrix-out FILE           write llama-imatrix's GGUF: with --gptq from the\n"
            "                               sequential Hessians' inputs; alone (INPUT only) from\n"
            "                               the float model\n"
            "  --max-memory SIZE            refuse a calibration (--gptq, --imatrix-out) whose\n"
            "                               estimated memory exceeds SIZE (e.g. 4G; default: the\n"
            "                               machine's physical memory; 0: no check)\n"
            "  -h, --help                   this text\n"
            "  --version                    the qforge version\n");
}

static int parse_type_opt(const char *opt, const char *val)
{
    int t = val ? gguf_type_from_name(val) : -1;
    if (t < 0 || !lq_mix_type_ok(t))
        cli_die(CLI_USAGE, NULL, "%s: unknown or unsupported tensor type '%s'", opt, val ? val : "");
    return t;
}

static void parse_args(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    o->max_memory = cli_phys_memory();
    o->damp = 0.01;
    o->calib_samples = 128;
    o->mix = lq_mix_params_default();
    o->overrides = lq_mix_overrides_create();
    if (!o->overrides)
        cli_die(CLI_INTERNAL, NULL, "out of memory");
    const char *pos[3];
    int npos = 0;
    bool opts_done = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (opts_done || a[0] != '-' || a[1] == 0) {
            if (npos == 3)
                cli_die(CLI_USAGE, NULL, "too many arguments (see --help)");
            pos[npos++] = a;
        } else if (!strcmp(a, "--")) {
            opts_done = true;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            o->nthreads = (int)cli_parse_long(a, next, 1, 4096);
            i++;
        } else if (!strcmp(a, "--pure")) {
            o->mix.pure = true;
        } else if (!strcmp(a, "--leave-output-tensor")) {
            o->mix.leave_output = true;
        } else if (!strcmp(a, "--output-tensor-type")) {
            o->mix.output_tensor_type = parse_type_opt(a, next);
            i++;
        } else if (!strcmp(a, "--token-embedding-type")) {
            o->mix.token_embedding_type = parse_type_opt(a, next);
            i++;
        } else if (!strcmp(a, "--tensor-type")) {
            if (!next)
                cli_die(CLI_USAGE, NULL, "--tensor-type needs REGEX=TYPE");
            char msg[LQ_MSG_SIZE];
            lq_error e = lq_mix_overrides_add(o->overrides, next, msg);
            if (e != LQ_OK)
                cli_die(e == LQ_ERR_NOMEM ? CLI_INTERNAL : CLI_USAGE, NULL, "--tensor-type: %s", msg);
            i++;
        } else if (!strcmp(a, "--imatrix")) {
            if (!next)
                cli_die(CLI_USAGE, NULL, "--imatrix needs a file");
            o->imatrix_path = next;
            i++;
        } else if (!strcmp(a, "--dry-run")) {
            o->dry_run = true;
        } else if (!strcmp(a, "--gptq")) {
            o->gptq = true;
        } else if (!strcmp(a, "--act-order")) {
            o->act_order = true;
        } else if (!strcmp(a, "--gptq-sym")) {
            o->gptq_sym = true;
        } else if (!strcmp(a, "--damp")) {
            char *end = NULL;
            o->damp = next ? strtod(next, &end) : -1;
            if (!next || *end || !(o->damp >= 0) || o->damp > 1e6)
                cli_die(CLI_USAGE, NULL, "--damp needs a number >= 0");
            i++;
        } else if (!strcmp(a, "--calib") || !strcmp(a, "--imatrix-out")) {
            if (!next)
                cli_die(CLI_USAGE, NULL, "%s needs a file", a);
            if (!strcmp(a, "--calib"))
                o->calib_path = next;
            else
                o->imatrix_out = next;
            i++;
        } else if (!strcmp(a, "--calib-samples")) {
            o->calib_samples = (int)cli_parse_long(a, next, 1, 1 << 20);
            i++;
        } else if (!strcmp(a, "--calib-ctx")) {
            o->calib_ctx = (int)cli_parse_long(a, next, 2, 1 << 16);
            i++;
        } else if (!strcmp(a, "--max-memory")) {
            o->max_memory = cli_parse_size(a, next);
            i++;
        } else if (!strcmp(a, "--seed")) {
            o->seed = (uint64_t)cli_parse_long(a, next, 0, 0x7fffffffL);
            i++;
        } else if (!strcmp(a, "--report")) {
            if (!next)
                cli_die(CLI_USAGE, NULL, "--report needs a file");
            o->report_path = next;
            i++;
        } else {
            cli_die(CLI_USAGE, NULL, "unknown option '%s' (see --help)", a);
        }
    }
    o->npos = npos;
    if (o->imatrix_out && npos == 1 && !o->gptq) {
        o->input = pos[0];
        if (o->nthreads <= 0)
            o->nthreads = omp_get_max_threads();
        return;
    }
    if (npos != 3) {
        usage(stderr);
        exit(CLI_USAGE);
    }
    if (o->imatrix_out && !o->gptq)
        cli_die(CLI_USAGE, NULL, "--imatrix-out with OUTPUT and TYPE needs --gptq (alone: "
                "qforge-quantize --imatrix-out FILE INPUT)");
    if ((o->act_order || o->gptq_sym) && !o->gptq)
        cli_die(CLI_USAGE, NULL, "--act-order and --gptq-sym need --gptq");
    o->input = pos[0];
    o->output = pos[1];
    o->type_name = pos[2];
    o->ftype = lq_ftype_from_name(o->type_name);
    if (o->ftype < 0)
        cli_die(CLI_USAGE, NULL, "unknown file type '%s' (see --help)", o->type_name);
    o->mix.overrides = o->overrides;
    if (o->nthreads <= 0)
        o->nthreads = omp_get_max_threads();
}

/* ---------------------------------------------------------------- model facts */

static int64_t md_int(const gguf_reader *md, const char *arch, const char *suffix, int64_t dflt)
{
    char key[256];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    int64_t v;
    if (gguf_get_int(md, key, &v) != GGUF_OK || v < 0 || v > (1 << 20))
        return dflt;
    return v;
}

static lq_mix_model model_facts(const inp_source *s, char *arch_buf, size_t arch_size)
{
    const gguf_reader *md = inp_metadata(s);
    lq_mix_model m;
    memset(&m, 0, sizeof m);
    const gguf_str *arch = NULL;
    snprintf(arch_buf, arch_size, "%s", "llama");
    if (md && gguf_get_str(md, "general.architecture", &arch) == GGUF_OK)
        snprintf(arch_buf, arch_size, "%s", arch->str);
    m.arch = arch_buf;
    /* block count: from the metadata, else the highest blk.N + 1 */
    int64_t max_blk = -1;
    for (int64_t i = 0; i < inp_n_tensors(s); i++) {
        int b;
        if (sscanf(inp_tensor_at(s, i)->name, "blk.%d.", &b) == 1 && b > max_blk)
            max_blk = b;
    }
    m.n_layer = md ? (int)md_int(md, arch_buf, "block_count", max_blk + 1) : (int)(max_blk + 1);
    if (md) {
        m.n_head = (int)md_int(md, arch_buf, "attention.head_count", 0);
        m.n_head_kv = (int)md_int(md, arch_buf, "attention.head_count_kv", m.n_head);
        m.n_expert = (int)md_int(md, arch_buf, "expert_count", 0);
    }
    return m;
}

/* ---------------------------------------------------------------- formatting */

static void fmt_shape(const inp_tensor *t, uint32_t n_dims, char *buf, size_t size)
{
    size_t k = (size_t)snprintf(buf, size, "[");
    for (uint32_t d = 0; d < n_dims && k < size; d++)
        k += (size_t)snprintf(buf + k, size - k, d ? ", %lld" : "%lld", (long long)t->ne[d]);
    if (k < size)
        snprintf(buf + k, size - k, "]");
}

/* 1.2e-4 style (no padded exponent). */
static void fmt_sci(double v, char buf[32])
{
    if (v == 0 || !isfinite(v)) {
        snprintf(buf, 32, "%g", v);
        return;
    }
    int ex = (int)floor(log10(fabs(v)));
    double m = v / pow(10.0, ex);
    if (fabs(m) >= 9.95) { /* rounds up to 10.0 */
        m /= 10;
        ex++;
    }
    snprintf(buf, 32, "%.1fe%d", m, ex);
}

static const char *tname(int type)
{
    const gguf_type_traits *tr = gguf_type_info(type);
    return tr ? tr->name : "?";
}

static uint32_t ggml_n_dims(const inp_tensor *t)
{
    uint32_t n = 1;
    for (uint32_t d = 1; d < GGUF_MAX_DIMS; d++)
        if (t->ne[d] > 1)
            n = d + 1;
    return n;
}

/* ---------------------------------------------------------------- quantizing one tensor */

/* Output is made in chunks of up to CHUNK_BYTES. While the threads make one chunk, the master
 * thread first writes the previous one (kept in the other buffer), so writing overlaps work
 * and there is one OpenMP barrier per chunk, not per few rows. */
typedef struct {
    unsigned char *q[2]; /* two chunk buffers */
    int cur;             /* the buffer the next chunk goes to; the other holds `pending` bytes */
    size_t pending;
    unsigned char *raw;  /* raw copies that cannot be written in place */
    float *rows;         /* per thread: one input row as F32 and its dequantized copy */
    double *rowerr;      /* squared error per row of the chunk */
    size_t cap_bytes;    /* bytes of q[i] and raw */
    int64_t cap_rows;    /* rows of the longest chunk */
    int64_t max_ne0;
    int nthreads;
} buffers;

/* Rows per chunk for rows of rs bytes. */
static int64_t chunk_rows(size_t rs, int64_t nrows)
{
    int64_t step = (int64_t)(g_chunk_bytes / rs);
    if (step < 1)
        step = 1;
    return step < nrows ? step : nrows;
}

static void buffers_init(buffers *b, const item *items, size_t n, int nthreads)
{
    memset(b, 0, sizeof *b);
    b->max_ne0 = 1;
    b->nthreads = nthreads;
    for (size_t i = 0; i < n; i++) {
        const item *it = &items[i];
        if (it->t->ne[0] > b->max_ne0)
            b->max_ne0 = it->t->ne[0];
        const int types[2] = {it->t->type, it->ch.type};
        for (int k = 0; k < 2; k++) {
            size_t rs = gguf_row_size(types[k], it->t->ne[0]);
            int64_t rows = chunk_rows(rs, it->nrows);
            if ((size_t)rows * rs > b->cap_bytes)
                b->cap_bytes = (size_t)rows * rs;
            if (rows > b->cap_rows)
                b->cap_rows = rows;
        }
    }
    if (b->cap_bytes == 0)
        b->cap_bytes = 1;
    /* pages are only touched as far as used */
    b->raw = malloc(b->cap_bytes);
    b->q[0] = malloc(b->cap_bytes);
    b->q[1] = malloc(b->cap_bytes);
    b->rows = malloc((size_t)nthreads * 2 * (size_t)b->max_ne0 * sizeof(float));
    b->rowerr = malloc((size_t)(b->cap_rows > 0 ? b->cap_rows : 1) * sizeof(double));
    if (!b->raw || !b->q[0] || !b->q[1] || !b->rows || !b->rowerr)
        cli_die(CLI_INTERNAL, NULL, "out of memory for %zu-byte buffers", b->cap_bytes);
}

static void buffers_free(buffers *b)
{
    free(b->raw);
    free(b->q[0]);
    free(b->q[1]);
    free(b->rows);
    free(b->rowerr);
}

static bool is_float_type(int t) { return t == GGUF_F32 || t == GGUF_F16 || t == GGUF_BF16; }

static void write_or_die(gguf_writer *w, const void *data, size_t n, const char *path)
{
    char msg[GGUF_MSG_SIZE];
    gguf_error e = gguf_writer_write(w, data, n, msg);
    if (e != GGUF_OK)
        cli_die(cli_exit_gguf(e), path, "%s", msg);
}

/* Write the chunk still held from the last quantized tensor. */
static void flush_pending(buffers *b, gguf_writer *w, const options *o)
{
    if (b->pending)
        write_or_die(w, b->q[b->cur ^ 1], b->pending, o->output);
    b->pending = 0;
}

/* The whole tensor in its stored layout when the source maps it in place with rows aligned
 * for their element type, else NULL. */
static const unsigned char *in_place(inp_source *s, const item *it)
{
    const unsigned char *data = inp_data(s, it->inp_index);
    return data && ((uintptr_t)data % sizeof(float)) == 0 ? data : NULL;
}

static void copy_raw(inp_source *s, item *it, gguf_writer *w, buffers *b, const options *o)
{
    flush_pending(b, w, o);
    const size_t rs = gguf_row_size(it->t->type, it->t->ne[0]);
    const unsigned char *data = in_place(s, it);
    const int64_t step = chunk_rows(rs, it->nrows);
    for (int64_t r0 = 0; r0 < it->nrows; r0 += step) {
        int64_t nr = it->nrows - r0 < step ? it->nrows - r0 : step;
        const unsigned char *p = data ? data + (size_t)r0 * rs : b->raw;
        if (!data) {
            char msg[INP_MSG_SIZE];
            inp_error e = inp_read_raw(s, it->inp_index, r0, nr, b->raw, msg);
            if (e != INP_OK)
                cli_die(cli_exit_src(e), NULL, "%s", msg);
        }
        write_or_die(w, p, (size_t)nr * rs, o->output);
    }
    it->rmse = is_float_type(it->t->type) ? 0.0 : -1.0;
}

/* Sum of squared differences in a fixed order (8 lanes, then the lanes in order), so the
 * compiler can vectorize it and the result does not depend on threads. */
static double sq_diff(const float *x, const float *y, int64_t n)
{
    double lane[8] = {0};
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int k = 0; k < 8; k++) {
            double e = (double)x[j + k] - (double)y[j + k];
            lane[k] += e * e;
        }
    for (; j < n; j++) {
        double e = (double)x[j] - (double)y[j];
        lane[0] += e * e;
    }
    double acc = 0;
    for (int k = 0; k < 8; k++)
        acc += lane[k];
    return acc;
}

/* Convert, quantize and measure a tensor chunk by chunk. Every row is read (in place from a
 * GGUF mapping, else with inp_read_f32, which input allows on several threads), converted,
 * quantized and decoded again by one thread: rows are independent, so the bytes do not depend
 * on the thread count, and the error is summed per row, then in row order. Rows are handed out
 * dynamically so the master thread can write the previous chunk first. The last chunk stays
 * pending (flush_pending). */
static void quantize_tensor(inp_source *s, item *it, gguf_writer *w, buffers *b, const options *o)
{
    const inp_tensor *t = it->t;
    const int type = it->ch.type, in_type = t->type;
    const int64_t ne0 = t->ne[0], ne1 = t->ne[1], ne2 = t->ne[2];
    const size_t rs = gguf_row_size(type, ne0), in_rs = gguf_row_size(in_type, ne0);
    const unsigned char *data = in_place(s, it);
    const int64_t step = chunk_rows(rs, it->nrows);
    double sq = 0;
    for (int64_t r0 = 0; r0 < it->nrows;) {
        int64_t nr = it->nrows - r0 < step ? it->nrows - r0 : step;
        const float *imat = NULL;
        if (it->imat) {
            /* one importance vector per expert slice (ne[2]); chunks stay inside a slice */
            int64_t end = (r0 / ne1 + 1) * ne1;
            if (r0 + nr > end)
                nr = end - r0;
            imat = it->imat + ((r0 / ne1) % ne2) * ne0;
        }
        unsigned char *qc = b->q[b->cur];
        const unsigned char *qp = b->q[b->cur ^ 1];
        const size_t pending = b->pending;
        gguf_error werr = GGUF_OK;
        char wmsg[GGUF_MSG_SIZE] = "", rmsg[INP_MSG_SIZE] = "";
        inp_error rerr = INP_OK;
        int bad = 0;
#pragma omp parallel num_threads(b->nthreads) reduction(| : bad)
        {
#pragma omp master
            if (pending)
                werr = gguf_writer_write(w, qp, pending, wmsg);
            float *x = b->rows + (size_t)omp_get_thread_num() * 2 * (size_t)b->max_ne0;
            float *d = x + b->max_ne0;
#pragma omp for schedule(dynamic, 4) nowait
            for (int64_t r = 0; r < nr; r++) {
                b->rowerr[r] = 0;
                if (data) {
                    const unsigned char *src = data + (size_t)(r0 + r) * in_rs;
                    if (in_type == GGUF_F32)
                        memcpy(x, src, (size_t)ne0 * sizeof(float));
                    else if (in_type == GGUF_F16)
                        lq_f16_to_f32_row((const uint16_t *)src, x, (size_t)ne0);
                    else
                        lq_bf16_to_f32_row((const uint16_t *)src, x, (size_t)ne0);
                } else {
                    char m[INP_MSG_SIZE];
                    inp_error e = inp_read_f32(s, it->inp_index, r0 + r, 1, x, m);
                    if (e != INP_OK) {
#pragma omp critical(qforge_read_error)
                        if (rerr == INP_OK) {
                            rerr = e;
                            memcpy(rmsg, m, sizeof rmsg);
                        }
                        continue;
                    }
                }
                unsigned char *q = qc + (size_t)r * rs;
                if (lq_quantize_row(type, x, q, ne0, imat) != rs || lq_dequantize_row(type, q, d, ne0) != 0) {
                    bad = 1;
                    continue;
                }
                b->rowerr[r] = sq_diff(x, d, ne0);
            }
        }
        if (werr != GGUF_OK)
            cli_die(cli_exit_gguf(werr), o->output, "%s", wmsg);
        if (rerr != INP_OK)
            cli_die(cli_exit_src(rerr), NULL, "%s", rmsg);
        if (bad)
            cli_die(CLI_INTERNAL, NULL, "tensor '%s': libquant cannot convert %s to %s", t->name,
                    tname(in_type), tname(type));
        for (int64_t r = 0; r < nr; r++)
            sq += b->rowerr[r];
        b->pending = (size_t)nr * rs;
        b->cur ^= 1;
        r0 += nr;
    }
    double n = (double)it->nrows * (double)ne0;
    it->rmse = n > 0 ? sqrt(sq / n) : 0;
}

/* ---------------------------------------------------------------- report */

/* What GPTQ made, per item (index k of the items), kept until the item is written. */
typedef struct {
    const item *items;
    size_t n;
    unsigned char **data;
    rt_calib_info *info;
    rt_calib_stats st;
    const char *calib;
    int n_ctx;
} gptq_state;
static gptq_state g_gq;

static void write_report(const options *o, const item *items, size_t n, uint64_t in_total,
                         uint64_t out_total, uint64_t file_bytes, double n_elements, double secs)
{
    json_t *root = json_object();
    json_t *arr = json_array();
    if (!root || !arr)
        cli_die(CLI_INTERNAL, NULL, "out of memory");
    json_object_set_new(root, "input", json_string(o->input));
    json_object_set_new(root, "output", o->dry_run ? json_null() : json_string(o->output));
    json_object_set_new(root, "type", json_string(lq_ftype_name(o->ftype)));
    json_object_set_new(root, "file_type", json_integer(o->ftype));
    json_object_set_new(root, "threads", json_integer(o->nthreads));
    json_object_set_new(root, "dry_run", json_boolean(o->dry_run));
    json_object_set_new(root, "imatrix", o->imatrix_path ? json_string(o->imatrix_path) : json_null());
    for (size_t i = 0; i < n; i++) {
        const item *it = &items[i];
        json_t *e = json_object();
        json_t *shape = json_array();
        for (uint32_t d = 0; d < it->n_dims; d++)
            json_array_append_new(shape, json_integer(it->t->ne[d]));
        json_object_set_new(e, "name", json_string(it->t->name));
        json_object_set_new(e, "shape", shape);
        json_object_set_new(e, "input_type", json_string(tname(it->t->type)));
        json_object_set_new(e, "type", json_string(tname(it->ch.type)));
        json_object_set_new(e, "quantized", json_boolean(it->ch.quantize));
        json_object_set_new(e, "manual", json_boolean(it->ch.manual));
        json_object_set_new(e, "fallback", json_boolean(it->ch.fallback));
        json_object_set_new(e, "imatrix", json_boolean(it->imat != NULL));
        json_object_set_new(e, "input_bytes", json_integer((json_int_t)it->in_bytes));
        json_object_set_new(e, "bytes", json_integer((json_int_t)it->out_bytes));
        json_object_set_new(e, "rmse", it->rmse >= 0 ? json_real(it->rmse) : json_null());
        if (o->gptq) {
            const bool g = g_gq.info && g_gq.info[i].name;
            json_object_set_new(e, "gptq_loss", g ? json_real(g_gq.info[i].res.loss_gptq) : json_null());
            json_object_set_new(e, "rtn_loss", g ? json_real(g_gq.info[i].res.loss_rtn) : json_null());
            json_object_set_new(e, "gptq_damp", g ? json_real(g_gq.info[i].res.damp_rel) : json_null());
            json_object_set_new(e, "gptq_retries", g ? json_integer(g_gq.info[i].res.retries) : json_null());
        }
        json_array_append_new(arr, e);
    }
    json_object_set_new(root, "tensors", arr);
    if (o->gptq)
        json_object_set_new(root, "gptq", json_pack("{s:s?, s:i, s:i, s:I, s:f, s:b, s:b, s:f, s:f, s:f, s:f}",
            "calib", g_gq.calib, "calib_samples", o->calib_samples, "calib_ctx", g_gq.n_ctx,
            "seed", (json_int_t)o->seed, "damp", o->damp, "act_order", o->act_order,
            "asymmetric", !o->gptq_sym,
            "seconds_forward", g_gq.st.forward, "seconds_hessian", g_gq.st.hessian,
            "seconds_solver", g_gq.st.solver, "seconds_total", g_gq.st.total));
    uint64_t largest = 0;
    for (size_t i = 0; i < n; i++)
        if (items[i].in_bytes > largest)
            largest = items[i].in_bytes;
    json_object_set_new(root, "input_bytes", json_integer((json_int_t)in_total));
    json_object_set_new(root, "largest_input_tensor_bytes", json_integer((json_int_t)largest));
    json_object_set_new(root, "output_bytes", json_integer((json_int_t)out_total));
    json_object_set_new(root, "file_bytes", file_bytes ? json_integer((json_int_t)file_bytes) : json_null());
    json_object_set_new(root, "n_elements", json_integer((json_int_t)n_elements));
    json_object_set_new(root, "bpw", json_real(n_elements > 0 ? out_total * 8.0 / n_elements : 0));
    json_object_set_new(root, "seconds", json_real(secs));
    cli_write_json(root, o->report_path, JSON_INDENT(1) | JSON_ENSURE_ASCII);
    json_decref(root);
}

/* ---------------------------------------------------------------- calibration (GPTQ, imatrix) */

static int gptq_emit(void *user, const rt_calib_info *info, const void *data, size_t nbytes)
{
    gptq_state *g = user;
    for (size_t k = 0; k < g->n; k++)
        if (!strcmp(g->items[k].t->name, info->name)) {
            if (nbytes != g->items[k].out_bytes || !(g->data[k] = malloc(nbytes)))
                cli_die(CLI_INTERNAL, NULL, "%s: cannot keep %zu GPTQ bytes", info->name, nbytes);
            memcpy(g->data[k], data, nbytes);
            g->info[k] = *info;
            g->info[k].name = g->items[k].t->name;
            return 0;
        }
    cli_die(CLI_INTERNAL, NULL, "%s: GPTQ made a tensor the plan does not have", info->name);
}

/* "[gptq] layer 3/6: attn q,k,v  loss 1.2e-3 vs rtn 2.5e-3", plus any damping retries. */
static int gptq_group_done(void *user, int layer, int n_layer, const rt_calib_info *in, int n)
{
    (void)user;
    char label[96] = "", ls[32], lr[32];
    double lg = 0, lrt = 0;
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        /* "blk.3.attn_q.weight": group prefix "attn", member "q" */
        const char *nm = strchr(in[i].name + 4, '.') + 1, *dot = strchr(nm, '.');
        const char *us = strchr(nm, '_');
        const int plen = (int)(dot - nm), pre = us && us < dot ? (int)(us - nm) : plen;
        const int mem = pre < plen ? plen - pre - 1 : 0;
        if (n == 1)
            snprintf(label, sizeof label, "%.*s", plen, nm);
        else if (i == 0)
            k = (size_t)snprintf(label, sizeof label, "%.*s %.*s", pre, nm, mem, nm + pre + 1);
        else if (k < sizeof label)
            k += (size_t)snprintf(label + k, sizeof label - k, ",%.*s", mem, nm + pre + 1);
        lg += in[i].res.loss_gptq;
        lrt += in[i].res.loss_rtn;
    }
    fmt_sci(lg, ls);
    fmt_sci(lrt, lr);
    printf("[gptq] layer %d/%d: %-12s loss %s vs rtn %s\n", layer + 1, n_layer, label, ls, lr);
    for (int i = 0; i < n; i++)
        if (in[i].res.retries)
            printf("[gptq] %s: H not positive definite; damping raised to %g x mean diag(H) "
                   "after %d retr%s\n", in[i].name, in[i].res.damp_rel, in[i].res.retries,
                   in[i].res.retries == 1 ? "y" : "ies");
    fflush(stdout);
    return 0;
}

/* The bundled calibration text: ../calibration/ next to bin/, or PREFIX/share/qforge/. */
static const char *default_calib(char *buf, size_t size)
{
    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    char *slash = len > 0 ? (exe[len] = 0, strrchr(exe, '/')) : NULL;
    if (!slash)
        cli_die(CLI_IO, NULL, "cannot locate the executable to find calibration.txt; use --calib FILE");
    *slash = 0;
    static const char *const rel[] = {"../calibration/calibration.txt", "../share/qforge/calibration.txt"};
    for (int i = 0; i < 2; i++) {
        char path[4200], real[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", exe, rel[i]);
        if (access(path, R_OK) == 0) {
            snprintf(buf, size, "%s", realpath(path, real) ? real : path);
            return buf;
        }
    }
    cli_die(CLI_IO, NULL, "no calibration text: neither %s/%s nor %s/%s exists; use --calib FILE",
            exe, rel[0], exe, rel[1]);
}

/* Run the calibration (GPTQ of the planned weights, or the float pass) and write the imatrix
 * when asked. items NULL: importance only. */
static void run_calibration(const options *o, inp_source *s, const item *items, size_t n)
{
    static char pbuf[4200]; /* the default path; the report refers to it */
    char msg[RT_MSG_SIZE > INP_MSG_SIZE ? RT_MSG_SIZE : INP_MSG_SIZE];
    const char *calib = o->calib_path ? o->calib_path : default_calib(pbuf, sizeof pbuf);
    bool clash = o->imatrix_out && (cli_same_file(o->imatrix_out, o->input) ||
                                    cli_same_file(o->imatrix_out, calib) ||
                                    (items && !strcmp(o->imatrix_out, o->output)));
    for (size_t i = 0; o->imatrix_out && i < inp_n_files(s); i++)
        clash = clash || cli_same_file(o->imatrix_out, inp_file(s, i));
    if (clash)
        cli_die(CLI_USAGE, o->imatrix_out, "is an input or the output; refusing to overwrite it");
    char *text = NULL;
    size_t len = 0;
    inp_error se = inp_text_load(calib, &text, &len, msg);
    if (se != INP_OK)
        cli_die(cli_exit_src(se), NULL, "--calib: %s", msg);
    rt_calib_plan *plan = calloc(n ? n : 1, sizeof *plan);
    memset(&g_gq, 0, sizeof g_gq);
    g_gq.items = items;
    g_gq.n = n;
    g_gq.data = calloc(n ? n : 1, sizeof(unsigned char *));
    g_gq.info = calloc(n ? n : 1, sizeof(rt_calib_info));
    g_gq.calib = calib;
    rt_imatrix *im = o->imatrix_out ? rt_imatrix_create() : NULL;
    if (!plan || !g_gq.data || !g_gq.info || (o->imatrix_out && !im))
        cli_die(CLI_INTERNAL, NULL, "out of memory");
    rt_calib_run_opts ro;
    rt_calib_run_opts_init(&ro);
    for (size_t k = 0; k < n; k++)
        if (items[k].ch.type != items[k].t->type && lq_gptq_supports(items[k].ch.type))
            plan[ro.n_plan++] = (rt_calib_plan){items[k].t->name, items[k].ch.type};
    ro.plan = plan;
    ro.gptq = items != NULL;
    ro.n_samples = o->calib_samples;
    ro.n_ctx = o->calib_ctx;
    ro.seed = o->seed;
    ro.max_memory = o->max_memory;
    ro.nthreads = o->nthreads;
    ro.calib.gptq.damp = o->damp;
    ro.calib.gptq.act_order = o->act_order;
    ro.calib.asym = !o->gptq_sym;
    ro.calib.emit = gptq_emit;
    ro.calib.group_done = gptq_group_done;
    ro.calib.user = &g_gq;
    ro.calib.imatrix = im;
    ro.calib.stats = &g_gq.st;
    printf("[%s] calibration text %s (%zu bytes), %d chunks (seed %llu)%s\n",
           items ? "gptq" : "imatrix", calib, len, o->calib_samples, (unsigned long long)o->seed,
           items ? (o->act_order ? (o->gptq_sym ? ", act-order, symmetric" : ", act-order")
                                 : (o->gptq_sym ? ", symmetric" : ""))
                 : ", float model");
    fflush(stdout);
    rt_error e = rt_calib_run(s, text, len, &ro, msg);
    if (e != RT_OK)
        cli_die(e == RT_ERR_NOMEM || e == RT_ERR_HOOK ? CLI_INTERNAL : e == RT_ERR_IO ? CLI_IO : CLI_BAD_INPUT,
                e == RT_ERR_FORMAT ? calib : e == RT_ERR_BUDGET ? o->input : NULL, "%s%s", msg,
                e == RT_ERR_BUDGET && !strncmp(msg, "needs", 5) ? "; lower --calib-samples or --calib-ctx, or raise --max-memory"
                                                                 : "");
    g_gq.n_ctx = ro.n_ctx_used;
    const rt_calib_stats *st = &g_gq.st;
    const double tt = st->total > 0 ? st->total : 1;
    if (items)
        printf("[gptq] %d tensors, %lld tokens (%zu in the text, %d x %d): %.2f s = forward %.2f s "
               "(%.0f%%), Hessians %.2f s (%.0f%%), solver %.2f s (%.0f%%), other %.2f s; %d damping "
               "retries\n", st->n_tensors, (long long)st->tokens, ro.n_text_tokens, ro.n_chunks_used,
               ro.n_ctx_used, st->total, st->forward, 100 * st->forward / tt, st->hessian,
               100 * st->hessian / tt, st->solver, 100 * st->solver / tt, st->other, st->retries);
    else
        printf("[imatrix] float model on %lld tokens (%zu in the text, %d x %d): %.2f s = forward "
               "%.2f s, sums %.2f s\n", (long long)st->tokens, ro.n_text_tokens, ro.n_chunks_used,
               ro.n_ctx_used, st->total, st->forward, st->hessian);
    if (im) {
        gguf_writer *w = gguf_writer_create();
        char gmsg[GGUF_MSG_SIZE];
        if (!w)
            cli_die(CLI_INTERNAL, NULL, "out of memory");
        e = rt_imatrix_declare(im, w, calib, (uint32_t)ro.n_chunks_used, (uint32_t)ro.n_ctx_used, msg);
        if (e != RT_OK)
            cli_die(CLI_INTERNAL, o->imatrix_out, "%s", msg);
        /* on failure the writer is freed first (it removes its temp file), so that LeakSanitizer
         * finds nothing lost at exit */
        gguf_error ge = gguf_writer_open(w, o->imatrix_out, gmsg);
        if (ge != GGUF_OK)
            gguf_writer_free(w), cli_die(cli_exit_gguf(ge), o->imatrix_out, "%s", gmsg);
        cli_set_temp(gguf_writer_temp_path(w));
        if ((e = rt_imatrix_write_data(im, w, msg)) != RT_OK)
            gguf_writer_free(w), cli_die(e == RT_ERR_IO ? CLI_IO : CLI_INTERNAL, o->imatrix_out, "%s", msg);
        if ((ge = gguf_writer_finish(w, gmsg)) != GGUF_OK)
            gguf_writer_free(w), cli_die(cli_exit_gguf(ge), o->imatrix_out, "%s", gmsg);
        cli_set_temp(NULL);
        gguf_writer_free(w);
        printf("[%s] importance matrix: %zu entries -> %s\n", items ? "gptq" : "imatrix",
               rt_imatrix_n_entries(im), o->imatrix_out);
        rt_imatrix_free(im);
    }
    fflush(stdout);
    free(plan);
    free(text);
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv)
{
    cli_passive_omp(argv);
    cli_init(argc, argv);
    options o;
    parse_args(argc, argv, &o);
    const char *cb = getenv("QFORGE_CHUNK_BYTES");
    if (cb && *cb)
        g_chunk_bytes = (size_t)cli_parse_long("QFORGE_CHUNK_BYTES", cb, 1, 1L << 40);
    const double t0 = cli_now();

    char msg[INP_MSG_SIZE];
    inp_source *s = NULL;
    inp_error se = inp_open(o.input, &s, msg);
    if (se != INP_OK)
        cli_die(cli_exit_src(se), NULL, "%s", msg);
    if (o.npos == 1) { /* --imatrix-out FILE INPUT */
        run_calibration(&o, s, NULL, 0);
        inp_close(s);
        lq_mix_overrides_free(o.overrides);
        return 0;
    }

    /* never overwrite an input (model, any of its files, the imatrix) */
    if (!o.dry_run) {
        bool clash = cli_same_file(o.output, o.input) ||
                     (o.imatrix_path && cli_same_file(o.output, o.imatrix_path));
        for (size_t i = 0; !clash && i < inp_n_files(s); i++)
            clash = cli_same_file(o.output, inp_file(s, i));
        if (clash)
            cli_die(CLI_USAGE, o.output, "is an input file; refusing to overwrite it");
    }
    if (o.report_path) {
        bool clash = cli_same_file(o.report_path, o.input) ||
                     (!o.dry_run && cli_same_file(o.report_path, o.output)) ||
                     (o.imatrix_path && cli_same_file(o.report_path, o.imatrix_path));
        for (size_t i = 0; !clash && i < inp_n_files(s); i++)
            clash = cli_same_file(o.report_path, inp_file(s, i));
        if (clash || !strcmp(o.report_path, o.output))
            cli_die(CLI_USAGE, o.report_path, "the report would overwrite an input or the output");
    }

    inp_imatrix *im = NULL;
    if (o.imatrix_path) {
        se = inp_imatrix_load(o.imatrix_path, &im, msg);
        if (se != INP_OK)
            cli_die(cli_exit_src(se), NULL, "%s", msg);
        o.mix.has_imatrix = true;
    }

    /* tensors in llama-quantize's order */
    const size_t n = (size_t)inp_n_tensors(s);
    item *items = calloc(n ? n : 1, sizeof *items);
    const char **names = calloc(n ? n : 1, sizeof *names);
    size_t *order = calloc(n ? n : 1, sizeof *order);
    lq_mix_tensor *mt = calloc(n ? n : 1, sizeof *mt);
    lq_mix_choice *ch = calloc(n ? n : 1, sizeof *ch);
    if (!items || !names || !order || !mt || !ch)
        cli_die(CLI_INTERNAL, NULL, "out of memory");
    for (size_t i = 0; i < n; i++)
        names[i] = inp_tensor_at(s, (int64_t)i)->name;
    if (lq_mix_sort(names, n, order) != LQ_OK)
        cli_die(CLI_INTERNAL, NULL, "out of memory");
    const bool ckpt = inp_is_checkpoint(s);
    double n_elements = 0;
    uint64_t in_total = 0;
    for (size_t k = 0; k < n; k++) {
        item *it = &items[k];
        it->inp_index = (int64_t)order[k];
        it->t = inp_tensor_at(s, it->inp_index);
        it->n_dims = ggml_n_dims(it->t);
        it->nrows = inp_n_rows(it->t);
        it->in_bytes = (uint64_t)it->nrows * gguf_row_size(it->t->type, it->t->ne[0]);
        it->rmse = -1;
        in_total += it->in_bytes;
        n_elements += (double)it->nrows * (double)it->t->ne[0];
        mt[k].name = it->t->name;
        mt[k].n_dims = it->t->n_dims;
        memcpy(mt[k].ne, it->t->ne, sizeof mt[k].ne);
        /* a checkpoint is planned as if converted with --outtype f32 */
        mt[k].type = ckpt ? GGUF_F32 : it->t->type;
    }

    char arch[128];
    lq_mix_model model = model_facts(s, arch, sizeof arch);
    char lmsg[LQ_MSG_SIZE];
    lq_error le = lq_mix_plan(o.ftype, &model, mt, n, &o.mix, ch, lmsg);
    if (le != LQ_OK)
        cli_die(le == LQ_ERR_NOMEM ? CLI_INTERNAL : CLI_BAD_INPUT, o.input, "%s", lmsg);

    size_t name_w = 0, shape_w = 0;
    size_t n_fallback = 0, n_imat = 0;
    for (size_t k = 0; k < n; k++) {
        item *it = &items[k];
        it->ch = ch[k];
        const int type = it->ch.type;
        if (!lq_can_quantize(type) && type != it->t->type)
            cli_die(CLI_BAD_INPUT, o.input, "tensor '%s': cannot write type %s", it->t->name,
                    tname(type));
        if (type != it->t->type && !is_float_type(it->t->type))
            cli_die(CLI_BAD_INPUT, o.input, "tensor '%s': requantizing from %s is not supported",
                    it->t->name, tname(it->t->type));
        it->out_bytes = (uint64_t)it->nrows * gguf_row_size(type, it->t->ne[0]);
        if (strlen(it->t->name) > name_w)
            name_w = strlen(it->t->name);
        char shape[96];
        fmt_shape(it->t, it->n_dims, shape, sizeof shape);
        if (strlen(shape) > shape_w)
            shape_w = strlen(shape);
        if (it->ch.fallback) {
            n_fallback++;
            cli_warn(NULL, "%s: row length %lld does not fit %s, using %s", it->t->name,
                     (long long)it->t->ne[0], tname(it->ch.wanted), tname(type));
        }
        /* importance only where the data is actually requantized to a block type */
        bool converts = type != it->t->type;
        if (im && converts && type != GGUF_F32 && type != GGUF_F16 && type != GGUF_BF16) {
            size_t ni = 0;
            const float *v = inp_imatrix_find(im, it->t->name, &ni);
            if (!v) {
                cli_warn(NULL, "%s: no importance data for this tensor", it->t->name);
            } else if (ni != (size_t)(it->t->ne[0] * it->t->ne[2])) {
                if (strcmp(it->t->name, "token_embd.weight") &&
                    strcmp(it->t->name, "per_layer_token_embd.weight"))
                    cli_die(CLI_BAD_INPUT, o.imatrix_path,
                            "importance data for '%s' has %zu values, the tensor needs %lld",
                            it->t->name, ni, (long long)(it->t->ne[0] * it->t->ne[2]));
            } else {
                it->imat = v;
                n_imat++;
            }
        }
    }

    if (o.gptq && !o.dry_run)
        run_calibration(&o, s, items, n);

    /* the output file: the input's metadata, file type moved to the end as llama-quantize does */
    gguf_writer *w = NULL;
    if (!o.dry_run) {
        w = gguf_writer_create();
        if (!w)
            cli_die(CLI_INTERNAL, NULL, "out of memory");
        gguf_error ge = GGUF_OK;
        if (inp_metadata(s))
            ge = gguf_writer_copy_kv(w, inp_metadata(s));
        if (ge != GGUF_OK)
            cli_die(cli_exit_gguf(ge), o.input, "cannot copy metadata: %s", gguf_strerror(ge));
        static const char *const moved[] = {"general.quantization_version", "general.file_type",
                                            "split.no", "split.count", "split.tensors.count"};
        for (size_t i = 0; i < sizeof moved / sizeof moved[0]; i++)
            gguf_writer_remove(w, moved[i]); /* absent is fine */
        ge = gguf_writer_set_u32(w, "general.quantization_version", 2);
        if (ge == GGUF_OK)
            ge = gguf_writer_set_u32(w, "general.file_type", (uint32_t)o.ftype);
        if (ge == GGUF_OK && im) {
            char buf[128];
            static const char *const ikeys[] = {"quantize.imatrix.file", "quantize.imatrix.dataset",
                                                "quantize.imatrix.entries_count",
                                                "quantize.imatrix.chunks_count"};
            for (size_t i = 0; i < 4; i++)
                gguf_writer_remove(w, ikeys[i]);
            snprintf(buf, sizeof buf, "%s", o.imatrix_path); /* llama-quantize keeps 127 bytes */
            ge = gguf_writer_set_str(w, ikeys[0], buf);
            if (ge == GGUF_OK && inp_imatrix_dataset(im)) {
                snprintf(buf, sizeof buf, "%s", inp_imatrix_dataset(im));
                ge = gguf_writer_set_str(w, ikeys[1], buf);
            }
            if (ge == GGUF_OK)
                ge = gguf_writer_set_u32(w, ikeys[2], (uint32_t)inp_imatrix_n_entries(im));
            if (ge == GGUF_OK && inp_imatrix_chunk_count(im) > 0)
                ge = gguf_writer_set_u32(w, ikeys[3], (uint32_t)inp_imatrix_chunk_count(im));
        }
        if (ge != GGUF_OK)
            cli_die(cli_exit_gguf(ge), NULL, "cannot set metadata: %s", gguf_strerror(ge));
        char gmsg[GGUF_MSG_SIZE];
        for (size_t k = 0; k < n; k++) {
            ge = gguf_writer_add_tensor(w, items[k].t->name, items[k].n_dims, items[k].t->ne,
                                        items[k].ch.type, gmsg);
            if (ge != GGUF_OK)
                cli_die(cli_exit_gguf(ge), o.output, "tensor '%s': %s", items[k].t->name, gmsg);
        }
        ge = gguf_writer_open(w, o.output, gmsg);
        if (ge != GGUF_OK)
            cli_die(cli_exit_gguf(ge), o.output, "%s", gmsg);
        cli_set_temp(gguf_writer_temp_path(w));
    }

    buffers b;
    memset(&b, 0, sizeof b);
    if (!o.dry_run)
        buffers_init(&b, items, n, o.nthreads);
    int wd = 3;
    for (size_t v = n; v >= 1000; v /= 10)
        wd++;
    uint64_t out_total = 0;
    for (size_t k = 0; k < n; k++) {
        item *it = &items[k];
        const double ts = cli_now();
        const rt_calib_info *gi = g_gq.data && g_gq.data[k] ? &g_gq.info[k] : NULL;
        if (!o.dry_run && gi) {
            flush_pending(&b, w, &o);
            write_or_die(w, g_gq.data[k], it->out_bytes, o.output);
            free(g_gq.data[k]);
            it->rmse = gi->rmse;
        } else if (!o.dry_run) {
            if (it->ch.type == it->t->type)
                copy_raw(s, it, w, &b, &o);
            else
                quantize_tensor(s, it, w, &b, &o);
            inp_release(s, it->inp_index);
        }
        it->seconds = cli_now() - ts;
        out_total += it->out_bytes;
        char shape[96], ib[32], ob[32], rm[32];
        fmt_shape(it->t, it->n_dims, shape, sizeof shape);
        cli_bytes((double)it->in_bytes, ib);
        cli_bytes((double)it->out_bytes, ob);
        printf("[%*zu/%*zu] %-*s %-*s %4s -> %-4s %10s -> %-10s", wd, k + 1, wd, n, (int)name_w,
               it->t->name, (int)shape_w, shape, tname(it->t->type), tname(it->ch.type), ib, ob);
        if (it->rmse >= 0) {
            fmt_sci(it->rmse, rm);
            printf("  rmse %s", rm);
        }
        if (gi) {
            char lg[32], lr[32];
            printf("  gptq loss %s vs rtn %s", (fmt_sci(gi->res.loss_gptq, lg), lg),
                   (fmt_sci(gi->res.loss_rtn, lr), lr));
        }
        putchar('\n');
        fflush(stdout);
    }

    uint64_t file_bytes = 0;
    if (!o.dry_run) {
        flush_pending(&b, w, &o);
        file_bytes = gguf_writer_total_size(w);
        char gmsg[GGUF_MSG_SIZE];
        gguf_error ge = gguf_writer_finish(w, gmsg);
        if (ge != GGUF_OK)
            cli_die(cli_exit_gguf(ge), o.output, "%s", gmsg);
        cli_set_temp(NULL);
        gguf_writer_free(w);
    }
    const double secs = cli_now() - t0;

    char ib[32], ob[32];
    printf("%s: %zu tensors, %.0f weights, type %s (file type %d)%s\n", cli_prog(), n, n_elements,
           lq_ftype_name(o.ftype), o.ftype, o.dry_run ? ", dry run: nothing written" : "");
    printf("  input  %10s  %6.2f bpw\n", cli_bytes((double)in_total, ib),
           n_elements > 0 ? in_total * 8.0 / n_elements : 0.0);
    printf("  output %10s  %6.2f bpw", cli_bytes((double)out_total, ob),
           n_elements > 0 ? out_total * 8.0 / n_elements : 0.0);
    if (!o.dry_run)
        printf("  (%s: %llu bytes)", o.output, (unsigned long long)file_bytes);
    printf("\n");
    if (n_fallback)
        printf("  %zu tensor(s) used a fallback type\n", n_fallback);
    if (im)
        printf("  importance matrix applied to %zu tensor(s)\n", n_imat);
    printf("  %.2f s, %d thread(s)\n", secs, o.nthreads);

    if (o.report_path)
        write_report(&o, items, n, in_total, out_total, file_bytes, n_elements, secs);

    buffers_free(&b);
    free(g_gq.data);
    free(g_gq.info);
    free(items);
    free(names);
    free(order);
    free(mt);
    free(ch);
    inp_imatrix_free(im);
    lq_mix_overrides_free(o.overrides);
    inp_close(s);
    return 0;
}
