/* qforge-inspect: print what a GGUF file, a safetensors file or a checkpoint directory holds:
 * header, metadata (long arrays and strings abbreviated) and the tensor table; --json gives
 * the same as one JSON object (input/describe.h). */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "input/describe.h"
#include "input/input.h"
#include "input/safetensors.h"
#include "libgguf/gguf.h"
#include "tools/cli.h"

#define ARRAY_SHOWN 8     /* array items shown */
#define STRING_SHOWN 72   /* bytes of a string value shown */

static void usage(FILE *f)
{
    fprintf(f, "usage: qforge-inspect FILE [--json]\n"
               "\n"
               "FILE  a GGUF file, a safetensors file, or a Hugging Face checkpoint directory\n"
               "      (shown as the GGUF tensors and metadata qforge-convert would write)\n"
               "--json  print it as JSON; -h, --help  this text; --version  the qforge version\n");
}

/* ---- text helpers ---- */

/* Quoted, escaped, abbreviated string. */
static void put_str(FILE *f, const char *s, uint64_t len, size_t max)
{
    fputc('"', f);
    for (uint64_t i = 0; i < len && i < max; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c < 0x20 || c == 0x7f)
            fprintf(f, "\\x%02x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
    if (len > max)
        fprintf(f, "... (%" PRIu64 " bytes)", len);
}

/* A key or tensor name for the text listing: control bytes written as \xNN so that a file
 * cannot move the cursor or recolor the terminal. Returns s itself when nothing needs escaping. */
static const char *shown(const char *s, char buf[512])
{
    size_t o = 0;
    bool esc = false;
    for (const unsigned char *p = (const unsigned char *)s; *p && o < 500; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            o += (size_t)snprintf(buf + o, 512 - o, "\\x%02x", *p);
            esc = true;
        } else {
            buf[o++] = (char)*p;
        }
    }
    buf[o] = 0;
    return esc ? buf : s;
}

static bool is_signed(int t) { return t == GGUF_VAL_I8 || t == GGUF_VAL_I16 || t == GGUF_VAL_I32 || t == GGUF_VAL_I64; }

static void put_value(FILE *f, const gguf_value *v)
{
    gguf_value e; /* an array element */
    switch (v->type) {
    case GGUF_VAL_STRING: put_str(f, v->v.str.str, v->v.str.len, STRING_SHOWN); break;
    case GGUF_VAL_BOOL: fputs(v->v.b ? "true" : "false", f); break;
    case GGUF_VAL_F32: fprintf(f, "%.9g", v->v.f64); break;
    case GGUF_VAL_F64: fprintf(f, "%.17g", v->v.f64); break;
    case GGUF_VAL_ARRAY:
        fputc('[', f);
        for (uint64_t i = 0; i < v->n && i < ARRAY_SHOWN; i++) {
            if (i)
                fputs(", ", f);
            if (v->elem_type == GGUF_VAL_STRING)
                put_str(f, v->v.strs[i].str, v->v.strs[i].len, 24);
            else
                put_value(f, (e = inp_array_elem(v, i), &e));
        }
        if (v->n > ARRAY_SHOWN)
            fputs(", ...", f);
        fprintf(f, "] (%" PRIu64 " items)", v->n);
        break;
    case GGUF_VAL_COUNT_: fputs("?", f); break;
    default:
        if (is_signed(v->type))
            fprintf(f, "%" PRId64, v->v.i64);
        else
            fprintf(f, "%" PRIu64, v->v.u64);
    }
}

static const char *tname(int type)
{
    const gguf_type_traits *t = gguf_type_info(type);
    return t ? t->name : "?";
}

/* ---- metadata (GGUF file or checkpoint) ---- */

static void metadata(const gguf_reader *r)
{
    char nb[512]; /* shown() */
    int64_t n = gguf_n_kv(r);
    printf("metadata (%lld keys):\n", (long long)n);
    for (int64_t i = 0; i < n; i++) {
        const gguf_value *v = gguf_kv_value(r, i);
        char ty[40];
        if (v->type == GGUF_VAL_ARRAY)
            snprintf(ty, sizeof ty, "%s[]", gguf_value_type_name(v->elem_type));
        else
            snprintf(ty, sizeof ty, "%s", gguf_value_type_name(v->type));
        printf("  %-42s %-8s ", shown(gguf_kv_key(r, i), nb), ty);
        put_value(stdout, v);
        putchar('\n');
    }
}

/* ---- GGUF ---- */

static int inspect_gguf(const char *path)
{
    char nb[512], sh[96], b[32];
    gguf_reader *r;
    char gm[GGUF_MSG_SIZE] = "";
    gguf_error ge = gguf_open(path, &r, gm);
    if (ge != GGUF_OK)
        cli_die(cli_exit_gguf(ge), path, "%s", gm[0] ? gm : gguf_strerror(ge));
    int64_t nt = gguf_n_tensors(r);
    printf("%s: GGUF v%u, %lld tensors, %lld metadata keys, alignment %zu, data at %llu, %llu bytes\n", path,
           gguf_version(r), (long long)nt, (long long)gguf_n_kv(r), gguf_alignment(r),
           (unsigned long long)gguf_data_offset(r), (unsigned long long)gguf_file_size(r));
    metadata(r);
    printf("tensors (%lld):\n  %5s  %-36s %-22s %-6s %12s %12s\n", (long long)nt, "#", "name", "shape", "type",
           "offset", "bytes");
    uint64_t total = 0;
    for (int64_t i = 0; i < nt; i++) {
        const gguf_tensor *t = gguf_tensor_at(r, i);
        total += t->nbytes;
        printf("  %5lld  %-36s %-22s %-6s %12llu %12llu\n", (long long)i, shown(t->name, nb),
               cli_shape(t->n_dims, t->ne, sh, sizeof sh), tname(t->type), (unsigned long long)t->offset,
               (unsigned long long)t->nbytes);
    }
    printf("tensor data: %llu bytes (%s)\n", (unsigned long long)total, cli_bytes((double)total, b));
    gguf_close(r);
    return CLI_OK;
}

/* ---- safetensors ---- */

static int inspect_safetensors(const char *path)
{
    char nb[512], sh[160];
    inp_st_file *f;
    char msg[INP_MSG_SIZE];
    inp_error e = inp_st_open(path, &f, msg);
    if (e != INP_OK)
        cli_die(cli_exit_src(e), NULL, "%s", msg);
    size_t nt = inp_st_n_tensors(f), nm = inp_st_n_metadata(f);
    uint64_t data = inp_st_file_size(f) - 8 - inp_st_header_size(f);
    printf("%s: safetensors, header %llu bytes, %zu tensors, data %llu bytes at %llu, %llu bytes\n", path,
           (unsigned long long)inp_st_header_size(f), nt, (unsigned long long)data,
           (unsigned long long)(8 + inp_st_header_size(f)), (unsigned long long)inp_st_file_size(f));
    printf("metadata (%zu keys):\n", nm);
    for (size_t i = 0; i < nm; i++) {
        printf("  %-42s ", inp_st_metadata_key(f, i));
        put_str(stdout, inp_st_metadata_value(f, i), strlen(inp_st_metadata_value(f, i)), STRING_SHOWN);
        putchar('\n');
    }
    printf("tensors (%zu, in data order; shape as stored, outermost first):\n  %5s  %-48s %-16s %-8s %12s %12s\n",
           nt, "#", "name", "shape", "dtype", "offset", "bytes");
    for (size_t i = 0; i < nt; i++) {
        const inp_st_tensor *t = inp_st_tensor_at(f, i);
        int64_t ne[INP_ST_MAX_DIMS];
        for (uint32_t d = 0; d < t->n_dims; d++)
            ne[d] = (int64_t)t->shape[d];
        printf("  %5zu  %-48s %-16s %-8s %12llu %12llu\n", i, shown(t->name, nb), cli_shape(t->n_dims, ne, sh, sizeof sh),
               t->dtype, (unsigned long long)t->begin, (unsigned long long)(t->end - t->begin));
    }
    inp_st_close(f);
    return CLI_OK;
}

/* ---- checkpoint directory ---- */

static int inspect_checkpoint(const char *path)
{
    char nb[512], sh[96];
    inp_source *s;
    char msg[INP_MSG_SIZE];
    inp_error e = inp_open(path, &s, msg);
    if (e != INP_OK)
        cli_die(cli_exit_src(e), NULL, "%s", msg);
    int64_t nt = inp_n_tensors(s);
    printf("%s: Hugging Face checkpoint, %zu input files, %lld tensors as GGUF\n", path, inp_n_files(s),
           (long long)nt);
    metadata(inp_metadata(s));
    printf("tensors (%lld, GGUF names and order):\n  %5s  %-36s %-22s %-6s %12s\n", (long long)nt, "#", "name",
           "shape", "type", "bytes");
    for (int64_t i = 0; i < nt; i++) {
        const inp_tensor *t = inp_tensor_at(s, i);
        uint64_t bytes = gguf_row_size(t->type, t->ne[0]) * (uint64_t)inp_n_rows(t);
        printf("  %5lld  %-36s %-22s %-6s %12llu\n", (long long)i, shown(t->name, nb),
               cli_shape(t->n_dims, t->ne, sh, sizeof sh), tname(t->type), (unsigned long long)bytes);
    }
    inp_close(s);
    return CLI_OK;
}

/* --json: the description input/describe.h makes. */
static int inspect_json(const char *path, char kind)
{
    json_t *root = NULL;
    char msg[INP_MSG_SIZE];
    inp_error e = kind == 'd' ? inp_describe_checkpoint(path, &root, msg)
                  : kind == 'g' ? inp_describe_gguf(path, &root, msg)
                                : inp_describe_safetensors(path, &root, msg);
    if (e != INP_OK)
        cli_die(cli_exit_src(e), NULL, "%s", msg);
    json_dumpf(root, stdout, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    putchar('\n');
    json_decref(root);
    return CLI_OK;
}

int main(int argc, char **argv)
{
    cli_init(argc, argv);
    const char *path = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = true;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return CLI_OK;
        } else if (argv[i][0] == '-' && argv[i][1])
            cli_die(CLI_USAGE, NULL, "unknown option '%s' (see --help)", argv[i]);
        else if (!path)
            path = argv[i];
        else
            cli_die(CLI_USAGE, NULL, "unexpected argument '%s' (see --help)", argv[i]);
    }
    if (!path) {
        usage(stderr);
        return CLI_USAGE;
    }
    struct stat st;
    if (stat(path, &st) != 0)
        cli_die(CLI_IO, path, "cannot open: %s", strerror(errno));
    char kind = 'd'; /* directory, GGUF, safetensors */
    if (!S_ISDIR(st.st_mode)) {
        FILE *f = fopen(path, "rb");
        if (!f)
            cli_die(CLI_IO, path, "cannot open: %s", strerror(errno));
        char magic[4] = {0};
        size_t got = fread(magic, 1, 4, f);
        fclose(f);
        kind = got == 4 && memcmp(magic, "GGUF", 4) == 0 ? 'g' : 's';
    }
    if (json)
        return inspect_json(path, kind);
    return kind == 'd' ? inspect_checkpoint(path) : kind == 'g' ? inspect_gguf(path) : inspect_safetensors(path);
}
