/* Fuzz build only: the tiny checkpoint fixture and walkers shared by the targets. */
#include "tests/fuzz/support.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

volatile uint64_t fz_sink;

static void cleanup(void);

void fz_fail(const char *file, int line, const char *what)
{
    fprintf(stderr, "fuzz check failed at %s:%d: %s\n", file, line, what);
    cleanup();
    abort();
}

/* ---------------------------------------------------------------- fixture model */

enum { HID = 4, HEADS = 2, KV = 1, HD = HID / HEADS, FFN = 4, LAYERS = 2, VOCAB = 8 };

static const char k_config[] =
    "{\n"
    "  \"architectures\": [\"LlamaForCausalLM\"],\n"
    "  \"model_type\": \"llama\",\n"
    "  \"hidden_size\": 4,\n"
    "  \"intermediate_size\": 4,\n"
    "  \"num_hidden_layers\": 2,\n"
    "  \"num_attention_heads\": 2,\n"
    "  \"num_key_value_heads\": 1,\n"
    "  \"vocab_size\": 8,\n"
    "  \"max_position_embeddings\": 16,\n"
    "  \"rms_norm_eps\": 1e-05,\n"
    "  \"rope_theta\": 10000.0,\n"
    "  \"hidden_act\": \"silu\",\n"
    "  \"tie_word_embeddings\": false,\n"
    "  \"bos_token_id\": 1,\n"
    "  \"eos_token_id\": 2,\n"
    "  \"_name_or_path\": \"fuzz/Tiny-Llama-v0.1-8B-Instruct\"\n"
    "}\n";

const char *fz_fixture_config(void) { return k_config; }

typedef struct {
    char name[64];
    int dtype; /* 0 F32, 1 BF16, 2 F16 */
    int rows, cols; /* cols 0: 1-D */
    int shard;      /* 1 or 2 */
} ftensor;

static ftensor g_t[64];
static int g_nt;

static void add(const char *name, int dtype, int rows, int cols, int shard)
{
    ftensor *t = &g_t[g_nt++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->dtype = dtype;
    t->rows = rows;
    t->cols = cols;
    t->shard = shard;
}

static int cmp_ft(const void *a, const void *b) { return strcmp(((const ftensor *)a)->name, ((const ftensor *)b)->name); }

static void build_table(void)
{
    if (g_nt)
        return;
    add("lm_head.weight", 1, VOCAB, HID, 2);
    add("model.embed_tokens.weight", 1, VOCAB, HID, 1);
    add("model.norm.weight", 0, HID, 0, 2);
    for (int l = 0; l < LAYERS; l++) {
        static const struct { const char *n; int rows, cols; } L[] = {
            {"input_layernorm.weight", HID, 0},   {"self_attn.q_proj.weight", HEADS * HD, HID},
            {"self_attn.k_proj.weight", KV * HD, HID}, {"self_attn.v_proj.weight", KV * HD, HID},
            {"self_attn.o_proj.weight", HID, HEADS * HD}, {"post_attention_layernorm.weight", HID, 0},
            {"mlp.gate_proj.weight", FFN, HID},   {"mlp.up_proj.weight", FFN, HID},
            {"mlp.down_proj.weight", HID, FFN},
        };
        for (size_t k = 0; k < sizeof L / sizeof L[0]; k++) {
            char n[64];
            snprintf(n, sizeof n, "model.layers.%d.%s", l, L[k].n);
            add(n, L[k].cols ? (l == 0 ? 1 : 2) : 0, L[k].rows, L[k].cols, l + 1);
        }
    }
    qsort(g_t, (size_t)g_nt, sizeof g_t[0], cmp_ft);
}

static const char *dtype_name(int d) { return d == 0 ? "F32" : d == 1 ? "BF16" : "F16"; }
static int dtype_size(int d) { return d == 0 ? 4 : 2; }

static uint16_t to_f16(float f) /* normal, small values only */
{
    uint32_t b;
    memcpy(&b, &f, 4);
    uint32_t sign = (b >> 16) & 0x8000, exp = (b >> 23) & 0xff, man = b & 0x7fffff;
    if (exp == 0)
        return (uint16_t)sign;
    return (uint16_t)(sign | ((exp - 112) << 10) | (man >> 13));
}

/* which: 0 every tensor, 1/2 that shard */
uint8_t *fz_fixture_safetensors(int which, size_t *n)
{
    build_table();
    char hdr[8192];
    size_t hl = 0;
    uint64_t off = 0;
    hl += (size_t)snprintf(hdr + hl, sizeof hdr - hl, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < g_nt; i++) {
        const ftensor *t = &g_t[i];
        if (which && t->shard != which)
            continue;
        uint64_t nb = (uint64_t)t->rows * (uint64_t)(t->cols ? t->cols : 1) * (uint64_t)dtype_size(t->dtype);
        if (t->cols)
            hl += (size_t)snprintf(hdr + hl, sizeof hdr - hl,
                                   ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%d,%d],\"data_offsets\":[%llu,%llu]}",
                                   t->name, dtype_name(t->dtype), t->rows, t->cols, (unsigned long long)off,
                                   (unsigned long long)(off + nb));
        else
            hl += (size_t)snprintf(hdr + hl, sizeof hdr - hl,
                                   ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%d],\"data_offsets\":[%llu,%llu]}", t->name,
                                   dtype_name(t->dtype), t->rows, (unsigned long long)off,
                                   (unsigned long long)(off + nb));
        off += nb;
    }
    hl += (size_t)snprintf(hdr + hl, sizeof hdr - hl, "}");
    while (hl % 8)
        hdr[hl++] = ' ';
    size_t total = 8 + hl + (size_t)off;
    uint8_t *buf = malloc(total);
    FZ_CHECK(buf != NULL);
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(buf + 8, hdr, hl);
    uint8_t *p = buf + 8 + hl;
    uint32_t state = 12345;
    for (int i = 0; i < g_nt; i++) {
        const ftensor *t = &g_t[i];
        if (which && t->shard != which)
            continue;
        int ne = t->rows * (t->cols ? t->cols : 1);
        for (int k = 0; k < ne; k++) {
            state = state * 1664525u + 1013904223u;
            float v = t->cols ? ((float)(state >> 8) / 16777216.0f - 0.5f) * 0.25f : 1.0f;
            if (t->dtype == 0) {
                memcpy(p, &v, 4);
                p += 4;
            } else {
                uint32_t b;
                memcpy(&b, &v, 4);
                uint16_t h = t->dtype == 1 ? (uint16_t)(b >> 16) : to_f16(v);
                p[0] = (uint8_t)h;
                p[1] = (uint8_t)(h >> 8);
                p += 2;
            }
        }
    }
    *n = total;
    return buf;
}

const char *fz_fixture_index(void)
{
    static char buf[4096];
    if (buf[0])
        return buf;
    build_table();
    size_t o = (size_t)snprintf(buf, sizeof buf, "{\n  \"metadata\": {\"total_size\": 0},\n  \"weight_map\": {");
    for (int i = 0; i < g_nt; i++)
        o += (size_t)snprintf(buf + o, sizeof buf - o, "%s\n    \"%s\": \"model-0000%d-of-00002.safetensors\"",
                              i ? "," : "", g_t[i].name, g_t[i].shard);
    snprintf(buf + o, sizeof buf - o, "\n  }\n}\n");
    return buf;
}

/* ---- tokenizer.model: a hand-written ModelProto ---- */

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    do {
        p[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return n;
}

const uint8_t *fz_fixture_spm(size_t *n)
{
    static uint8_t buf[512];
    static size_t len;
    if (!len) {
        static const struct { const char *s; float score; int type; } P[VOCAB] = {
            {"<unk>", 0, 2}, {"<s>", 0, 3}, {"</s>", 0, 3}, {"\xe2\x96\x81", -1, 1},
            {"a", -2, 1},    {"b", -3, 1},  {"\xe2\x96\x81" "a", -4, 1}, {"ab", -5, 1},
        };
        size_t o = 0;
        for (int i = 0; i < VOCAB; i++) {
            uint8_t piece[64];
            size_t pl = 0, sl = strlen(P[i].s);
            piece[pl++] = 0x0a; /* field 1, LEN */
            pl += put_varint(piece + pl, sl);
            memcpy(piece + pl, P[i].s, sl);
            pl += sl;
            piece[pl++] = 0x15; /* field 2, fixed32 */
            memcpy(piece + pl, &P[i].score, 4);
            pl += 4;
            piece[pl++] = 0x18; /* field 3, varint */
            pl += put_varint(piece + pl, (uint64_t)P[i].type);
            buf[o++] = 0x0a; /* ModelProto.pieces */
            o += put_varint(buf + o, pl);
            memcpy(buf + o, piece, pl);
            o += pl;
        }
        /* trainer_spec { model_type: BPE, vocab_size: 8 } */
        const uint8_t ts[] = {0x18, 0x02, 0x20, VOCAB};
        buf[o++] = 0x12;
        o += put_varint(buf + o, sizeof ts);
        memcpy(buf + o, ts, sizeof ts);
        o += sizeof ts;
        len = o;
    }
    *n = len;
    return buf;
}

/* ---- files ---- */

void fz_write(const char *dir, const char *name, const void *buf, size_t n)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (!f) {
        fprintf(stderr, "fuzz fixture: cannot create %s: %s\n", p, strerror(errno));
        abort();
    }
    if ((n && fwrite(buf, 1, n, f) != n) || fclose(f) != 0) {
        fprintf(stderr, "fuzz fixture: cannot write %s\n", p);
        abort();
    }
}

void fz_remove(const char *dir, const char *name)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    if (unlink(p) != 0 && errno != ENOENT)
        abort();
}

static char g_dirs[2][4096];

static void cleanup(void)
{
    static const char *const names[] = {"config.json", "tokenizer.model", "model.safetensors",
                                        "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                                        "model.safetensors.index.json", "tokenizer_config.json", "tokenizer.json",
                                        "added_tokens.json", "chat_template.jinja"};
    for (int k = 0; k < 2; k++) {
        if (!g_dirs[k][0])
            continue;
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            fz_remove(g_dirs[k], names[i]);
        rmdir(g_dirs[k]);
    }
}

/* Fixture directories of fuzz processes that died (a crash skips atexit) are removed by the
 * next one. */
static void remove_stale(const char *base)
{
    DIR *dir = opendir(base);
    if (!dir)
        return;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        int pid;
        char tail[64];
        if (sscanf(e->d_name, "qforge-fuzz-%d-%63s", &pid, tail) != 2 || pid <= 0)
            continue;
        if (kill(pid, 0) == 0 || errno != ESRCH)
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", base, e->d_name);
        DIR *sub = opendir(path);
        if (sub) {
            struct dirent *f;
            while ((f = readdir(sub)) != NULL)
                if (strcmp(f->d_name, ".") && strcmp(f->d_name, ".."))
                    fz_remove(path, f->d_name);
            closedir(sub);
        }
        rmdir(path);
    }
    closedir(dir);
}

const char *fz_fixture(int kind)
{
    char *d = g_dirs[kind];
    if (d[0])
        return d;
    const char *base = getenv("TMPDIR");
    struct stat st;
    if (!base || !*base)
        base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp";
    remove_stale(base);
    snprintf(d, sizeof g_dirs[0], "%s/qforge-fuzz-%d-XXXXXX", base, (int)getpid());
    if (!mkdtemp(d)) {
        fprintf(stderr, "fuzz fixture: mkdtemp %s: %s\n", d, strerror(errno));
        abort();
    }
    static int registered;
    if (!registered++)
        atexit(cleanup);
    fz_write(d, "config.json", k_config, strlen(k_config));
    size_t n;
    const uint8_t *spm = fz_fixture_spm(&n);
    fz_write(d, "tokenizer.model", spm, n);
    if (kind == FZ_SINGLE) {
        uint8_t *b = fz_fixture_safetensors(0, &n);
        fz_write(d, "model.safetensors", b, n);
        free(b);
    } else {
        for (int s = 1; s <= 2; s++) {
            char name[64];
            snprintf(name, sizeof name, "model-0000%d-of-00002.safetensors", s);
            uint8_t *b = fz_fixture_safetensors(s, &n);
            fz_write(d, name, b, n);
            free(b);
        }
    }
    return d;
}

/* ---------------------------------------------------------------- walkers */

static uint64_t touch(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = 0;
    for (size_t i = 0; i < n; i++)
        h = h * 31 + b[i];
    return h;
}

void fz_note(const char *stage, const char *msg)
{
    static int verbose = -1;
    if (verbose < 0)
        verbose = getenv("QFORGE_FUZZ_VERBOSE") != NULL;
    if (verbose)
        fprintf(stderr, "%s: %s\n", stage, msg ? msg : "ok");
}

void fz_check_msg(const char *msg, size_t cap)
{
    const char *end = memchr(msg, 0, cap);
    FZ_CHECK(end != NULL);
    FZ_CHECK(end > msg);
    static int lax = -1;
    if (lax < 0)
        lax = getenv("QFORGE_FUZZ_LAX_MSG") != NULL;
    if (lax) /* known-bug mode: only "non-empty and terminated" */
        return;
    FZ_CHECK(memchr(msg, '\n', (size_t)(end - msg)) == NULL);
    /* nor any other control byte: messages reach terminals (ESC sequences) and logs */
    for (const char *p = msg; p < end; p++)
        FZ_CHECK((unsigned char)*p >= 0x20 && *p != 0x7f);
}

static void walk_value(const gguf_value *v)
{
    uint64_t h = 0;
    switch (v->type) {
    case GGUF_VAL_STRING:
        FZ_CHECK(v->v.str.str != NULL && v->v.str.str[v->v.str.len] == 0);
        h += touch(v->v.str.str, (size_t)v->v.str.len);
        break;
    case GGUF_VAL_ARRAY:
        FZ_CHECK(v->elem_type != GGUF_VAL_ARRAY && v->elem_type < GGUF_VAL_COUNT_);
        if (v->elem_type == GGUF_VAL_STRING) {
            for (uint64_t i = 0; i < v->n; i++) {
                FZ_CHECK(v->v.strs[i].str[v->v.strs[i].len] == 0);
                h += touch(v->v.strs[i].str, (size_t)v->v.strs[i].len);
            }
        } else {
            h += touch(v->v.arr, (size_t)v->n * gguf_value_type_size(v->elem_type));
        }
        break;
    default:
        FZ_CHECK(v->type < GGUF_VAL_COUNT_);
        h += v->v.u64;
        break;
    }
    fz_sink += h;
}

void fz_walk_gguf(const gguf_reader *r)
{
    for (int64_t i = 0; i < gguf_n_kv(r); i++) {
        const char *k = gguf_kv_key(r, i);
        FZ_CHECK(k != NULL);
        FZ_CHECK(gguf_find_kv(r, k) == i);
        const gguf_value *v = gguf_kv_value(r, i);
        FZ_CHECK(v != NULL);
        walk_value(v);
        int64_t iv;
        double dv;
        gguf_error e = gguf_get_int(r, k, &iv);
        FZ_CHECK(e == GGUF_OK || e == GGUF_ERR_VALUE_TYPE);
        e = gguf_get_float(r, k, &dv);
        FZ_CHECK(e == GGUF_OK || e == GGUF_ERR_VALUE_TYPE);
    }
    FZ_CHECK(gguf_kv_key(r, gguf_n_kv(r)) == NULL);
    FZ_CHECK(gguf_kv_value(r, -1) == NULL);
    for (int64_t i = 0; i < gguf_n_tensors(r); i++) {
        const gguf_tensor *t = gguf_tensor_at(r, i);
        FZ_CHECK(t != NULL && gguf_find_tensor(r, t->name) == i);
        FZ_CHECK(memchr(t->name, 0, sizeof t->name) != NULL);
        FZ_CHECK(t->n_dims >= 1 && t->n_dims <= GGUF_MAX_DIMS);
        FZ_CHECK(gguf_type_info(t->type) != NULL);
        if (t->nbytes)
            fz_sink += touch(t->data, (size_t)t->nbytes);
    }
    FZ_CHECK(gguf_tensor_at(r, gguf_n_tensors(r)) == NULL);
}

void fz_walk_source(inp_source *s)
{
    const gguf_reader *meta = inp_metadata(s);
    FZ_CHECK(meta != NULL);
    fz_walk_gguf(meta);
    for (size_t i = 0; i < inp_n_files(s); i++)
        FZ_CHECK(inp_file(s, i) != NULL);
    char msg[INP_MSG_SIZE];
    for (int64_t i = 0; i < inp_n_tensors(s); i++) {
        const inp_tensor *t = inp_tensor_at(s, i);
        FZ_CHECK(t != NULL && inp_find_tensor(s, t->name) >= 0);
        FZ_CHECK(t->ne[0] > 0 && inp_n_rows(t) > 0);
        size_t row = gguf_row_size(t->type, t->ne[0]);
        FZ_CHECK(row > 0);
        /* bounded by the fuzz input size, which the caller caps */
        int64_t rows = inp_n_rows(t);
        if ((uint64_t)rows * (uint64_t)t->ne[0] > ((uint64_t)1 << 24))
            continue;
        bool is_float = t->type == GGUF_F32 || t->type == GGUF_F16 || t->type == GGUF_BF16;
        float *f = malloc((size_t)rows * (size_t)t->ne[0] * sizeof *f);
        void *raw = malloc((size_t)rows * row);
        FZ_CHECK(f && raw);
        inp_error e = inp_read_raw(s, i, 0, rows, raw, msg);
        FZ_CHECK(e == INP_OK);
        fz_sink += touch(raw, (size_t)rows * row);
        e = inp_read_f32(s, i, 0, rows, f, msg);
        FZ_CHECK(is_float ? e == INP_OK : e == INP_ERR_UNSUPPORTED);
        if (rows > 1) { /* a row range reads the same bytes as the whole */
            e = inp_read_raw(s, i, 1, rows - 1, f, msg);
            FZ_CHECK(e == INP_OK && memcmp(f, (uint8_t *)raw + row, (size_t)(rows - 1) * row) == 0);
        }
        e = inp_read_raw(s, i, rows, 1, raw, msg);
        FZ_CHECK(e == INP_ERR_ARG);
        const void *d = inp_data(s, i);
        FZ_CHECK(inp_is_checkpoint(s) ? d == NULL : d != NULL);
        inp_release(s, i);
        free(f);
        free(raw);
    }
}
