/* qforge-inspect: print what a GGUF file, a safetensors file or a checkpoint directory holds:
 * header, metadata (long arrays and strings abbreviated) and the tensor table; --json gives
 * the same as one JSON object. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "libgguf/gguf.h"
#include "input/safetensors.h"
#include "input/input.h"
#include "tools/cli.h"

#define ARRAY_SHOWN 8     /* array items shown in text */
#define ARRAY_SHOWN_JSON 16
#define STRING_SHOWN 72   /* bytes of a string value shown */

static bool g_json;

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

/* jansson string from bytes that may not be UTF-8: invalid bytes become "\xNN" text. */
static json_t *jstr(const char *s, size_t len)
{
    json_t *j = json_stringn(s, len);
    if (j)
        return j;
    char *buf = malloc(len * 4 + 1);
    if (!buf)
        return json_null();
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f)
            buf[o++] = (char)c;
        else
            o += (size_t)sprintf(buf + o, "\\x%02x", c);
    }
    j = json_stringn(buf, o);
    free(buf);
    return j ? j : json_null();
}

static json_t *jnum_elem(int type, const void *arr, uint64_t i)
{
    const unsigned char *p = arr;
    switch (type) {
    case GGUF_VAL_U8: return json_integer(((const uint8_t *)p)[i]);
    case GGUF_VAL_I8: return json_integer(((const int8_t *)p)[i]);
    case GGUF_VAL_U16: return json_integer(((const uint16_t *)p)[i]);
    case GGUF_VAL_I16: return json_integer(((const int16_t *)p)[i]);
    case GGUF_VAL_U32: return json_integer(((const uint32_t *)p)[i]);
    case GGUF_VAL_I32: return json_integer(((const int32_t *)p)[i]);
    case GGUF_VAL_U64: return json_integer((json_int_t)((const uint64_t *)p)[i]);
    case GGUF_VAL_I64: return json_integer(((const int64_t *)p)[i]);
    case GGUF_VAL_F32: return json_real(((const float *)p)[i]);
    case GGUF_VAL_F64: return json_real(((const double *)p)[i]);
    case GGUF_VAL_BOOL: return json_boolean(((const uint8_t *)p)[i] != 0);
    default: return json_null();
    }
}

static void put_num_elem(FILE *f, int type, const void *arr, uint64_t i)
{
    switch (type) {
    case GGUF_VAL_U8: fprintf(f, "%u", ((const uint8_t *)arr)[i]); break;
    case GGUF_VAL_I8: fprintf(f, "%d", ((const int8_t *)arr)[i]); break;
    case GGUF_VAL_U16: fprintf(f, "%u", ((const uint16_t *)arr)[i]); break;
    case GGUF_VAL_I16: fprintf(f, "%d", ((const int16_t *)arr)[i]); break;
    case GGUF_VAL_U32: fprintf(f, "%" PRIu32, ((const uint32_t *)arr)[i]); break;
    case GGUF_VAL_I32: fprintf(f, "%" PRId32, ((const int32_t *)arr)[i]); break;
    case GGUF_VAL_U64: fprintf(f, "%" PRIu64, ((const uint64_t *)arr)[i]); break;
    case GGUF_VAL_I64: fprintf(f, "%" PRId64, ((const int64_t *)arr)[i]); break;
    case GGUF_VAL_F32: fprintf(f, "%.9g", ((const float *)arr)[i]); break;
    case GGUF_VAL_F64: fprintf(f, "%.17g", ((const double *)arr)[i]); break;
    case GGUF_VAL_BOOL: fputs(((const uint8_t *)arr)[i] ? "true" : "false", f); break;
    default: fputs("?", f);
    }
}

static bool is_signed(int t) { return t == GGUF_VAL_I8 || t == GGUF_VAL_I16 || t == GGUF_VAL_I32 || t == GGUF_VAL_I64; }

static void put_value(FILE *f, const gguf_value *v)
{
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
                put_num_elem(f, v->elem_type, v->v.arr, i);
        }
        if (v->n > ARRAY_SHOWN)
            fputs(", ...", f);
        fprintf(f, "] (%" PRIu64 " items)", v->n);
        break;
    default:
        if (is_signed(v->type))
            fprintf(f, "%" PRId64, v->v.i64);
        else
            fprintf(f, "%" PRIu64, v->v.u64);
    }
}

static json_t *jvalue(const gguf_value *v)
{
    switch (v->type) {
    case GGUF_VAL_STRING: return jstr(v->v.str.str, (size_t)v->v.str.len);
    case GGUF_VAL_BOOL: return json_boolean(v->v.b);
    case GGUF_VAL_F32: case GGUF_VAL_F64: return json_real(v->v.f64);
    case GGUF_VAL_ARRAY: {
        json_t *a = json_array();
        for (uint64_t i = 0; i < v->n && i < ARRAY_SHOWN_JSON; i++)
            json_array_append_new(a, v->elem_type == GGUF_VAL_STRING
                                         ? jstr(v->v.strs[i].str, (size_t)v->v.strs[i].len)
                                         : jnum_elem(v->elem_type, v->v.arr, i));
        return a;
    }
    default: return is_signed(v->type) ? json_integer(v->v.i64) : json_integer((json_int_t)v->v.u64);
    }
}

static void shape_text(char *buf, size_t n, uint32_t n_dims, const int64_t *ne)
{
    size_t o = (size_t)snprintf(buf, n, "[");
    for (uint32_t d = 0; d < n_dims && o < n; d++)
        o += (size_t)snprintf(buf + o, n - o, "%s%lld", d ? ", " : "", (long long)ne[d]);
    if (o < n)
        snprintf(buf + o, n - o, "]");
}

static const char *tname(int type)
{
    const gguf_type_traits *t = gguf_type_info(type);
    return t ? t->name : "?";
}

/* ---- metadata (GGUF file or checkpoint) ---- */

static void metadata(const gguf_reader *r, json_t *root)
{
    char nb[512]; /* shown() */
    int64_t n = gguf_n_kv(r);
    if (g_json) {
        json_t *a = json_array();
        for (int64_t i = 0; i < n; i++) {
            const gguf_value *v = gguf_kv_value(r, i);
            json_t *o = json_object();
            json_object_set_new(o, "key", jstr(gguf_kv_key(r, i), strlen(gguf_kv_key(r, i))));
            json_object_set_new(o, "type", json_string(gguf_value_type_name(v->type)));
            if (v->type == GGUF_VAL_ARRAY) {
                json_object_set_new(o, "elem_type", json_string(gguf_value_type_name(v->elem_type)));
                json_object_set_new(o, "count", json_integer((json_int_t)v->n));
                json_object_set_new(o, "truncated", json_boolean(v->n > ARRAY_SHOWN_JSON));
            }
            json_object_set_new(o, "value", jvalue(v));
            json_array_append_new(a, o);
        }
        json_object_set_new(root, "metadata", a);
        return;
    }
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
    char nb[512]; /* shown() */
    gguf_reader *r;
    char gm[GGUF_MSG_SIZE] = "";
    gguf_error ge = gguf_open(path, &r, gm);
    if (ge != GGUF_OK)
        cli_die(cli_exit_gguf(ge), path, "%s", gm[0] ? gm : gguf_strerror(ge));
    json_t *root = g_json ? json_object() : NULL;
    int64_t nt = gguf_n_tensors(r);
    if (g_json) {
        json_object_set_new(root, "file", jstr(path, strlen(path)));
        json_object_set_new(root, "format", json_string("gguf"));
        json_object_set_new(root, "version", json_integer(gguf_version(r)));
        json_object_set_new(root, "alignment", json_integer((json_int_t)gguf_alignment(r)));
        json_object_set_new(root, "data_offset", json_integer((json_int_t)gguf_data_offset(r)));
        json_object_set_new(root, "file_size", json_integer((json_int_t)gguf_file_size(r)));
    } else {
        printf("%s: GGUF v%u, %lld tensors, %lld metadata keys, alignment %zu, data at %llu, %llu bytes\n", path,
               gguf_version(r), (long long)nt, (long long)gguf_n_kv(r), gguf_alignment(r),
               (unsigned long long)gguf_data_offset(r), (unsigned long long)gguf_file_size(r));
    }
    metadata(r, root);
    json_t *ta = g_json ? json_array() : NULL;
    if (!g_json)
        printf("tensors (%lld):\n  %5s  %-36s %-22s %-6s %12s %12s\n", (long long)nt, "#", "name", "shape", "type",
               "offset", "bytes");
    uint64_t total = 0;
    for (int64_t i = 0; i < nt; i++) {
        const gguf_tensor *t = gguf_tensor_at(r, i);
        total += t->nbytes;
        if (g_json) {
            json_t *o = json_object(), *sh = json_array();
            json_object_set_new(o, "name", jstr(t->name, strlen(t->name)));
            for (uint32_t d = 0; d < t->n_dims; d++)
                json_array_append_new(sh, json_integer(t->ne[d]));
            json_object_set_new(o, "shape", sh);
            json_object_set_new(o, "type", json_string(tname(t->type)));
            json_object_set_new(o, "offset", json_integer((json_int_t)t->offset));
            json_object_set_new(o, "bytes", json_integer((json_int_t)t->nbytes));
            json_array_append_new(ta, o);
        } else {
            char sh[96];
            shape_text(sh, sizeof sh, t->n_dims, t->ne);
            printf("  %5lld  %-36s %-22s %-6s %12llu %12llu\n", (long long)i, shown(t->name, nb), sh, tname(t->type),
                   (unsigned long long)t->offset, (unsigned long long)t->nbytes);
        }
    }
    if (g_json) {
        json_object_set_new(root, "tensors", ta);
        json_object_set_new(root, "tensor_bytes", json_integer((json_int_t)total));
    } else {
        char b[32];
        printf("tensor data: %llu bytes (%s)\n", (unsigned long long)total, cli_bytes((double)total, b));
    }
    if (root) {
        json_dumpf(root, stdout, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
        putchar('\n');
        json_decref(root);
    }
    gguf_close(r);
    return CLI_OK;
}

/* ---- safetensors ---- */

static int inspect_safetensors(const char *path)
{
    char nb[512]; /* shown() */
    inp_st_file *f;
    char msg[INP_MSG_SIZE];
    inp_error e = inp_st_open(path, &f, msg);
    if (e != INP_OK)
        cli_die(cli_exit_src(e), NULL, "%s", msg);
    size_t nt = inp_st_n_tensors(f), nm = inp_st_n_metadata(f);
    uint64_t data = inp_st_file_size(f) - 8 - inp_st_header_size(f);
    json_t *root = NULL, *ta = NULL;
    if (g_json) {
        root = json_object();
        json_object_set_new(root, "file", jstr(path, strlen(path)));
        json_object_set_new(root, "format", json_string("safetensors"));
        json_object_set_new(root, "header_size", json_integer((json_int_t)inp_st_header_size(f)));
        json_object_set_new(root, "data_offset", json_integer((json_int_t)(8 + inp_st_header_size(f))));
        json_object_set_new(root, "file_size", json_integer((json_int_t)inp_st_file_size(f)));
        json_t *m = json_object();
        for (size_t i = 0; i < nm; i++)
            json_object_set_new(m, inp_st_metadata_key(f, i),
                                jstr(inp_st_metadata_value(f, i), strlen(inp_st_metadata_value(f, i))));
        json_object_set_new(root, "metadata", m);
        ta = json_array();
    } else {
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
    }
    for (size_t i = 0; i < nt; i++) {
        const inp_st_tensor *t = inp_st_tensor_at(f, i);
        if (g_json) {
            json_t *o = json_object(), *sh = json_array();
            json_object_set_new(o, "name", jstr(t->name, strlen(t->name)));
            for (uint32_t d = 0; d < t->n_dims; d++)
                json_array_append_new(sh, json_integer((json_int_t)t->shape[d]));
            json_object_set_new(o, "shape", sh);
            json_object_set_new(o, "dtype", json_string(t->dtype));
            json_object_set_new(o, "offset", json_integer((json_int_t)t->begin));
            json_object_set_new(o, "bytes", json_integer((json_int_t)(t->end - t->begin)));
            json_array_append_new(ta, o);
        } else {
            int64_t ne[INP_ST_MAX_DIMS];
            for (uint32_t d = 0; d < t->n_dims; d++)
                ne[d] = (int64_t)t->shape[d];
            char sh[160];
            shape_text(sh, sizeof sh, t->n_dims, ne);
            printf("  %5zu  %-48s %-16s %-8s %12llu %12llu\n", i, shown(t->name, nb), sh, t->dtype,
                   (unsigned long long)t->begin, (unsigned long long)(t->end - t->begin));
        }
    }
    if (root) {
        json_object_set_new(root, "tensors", ta);
        json_dumpf(root, stdout, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
        putchar('\n');
        json_decref(root);
    }
    inp_st_close(f);
    return CLI_OK;
}

/* ---- checkpoint directory ---- */

static int inspect_checkpoint(const char *path)
{
    char nb[512]; /* shown() */
    inp_source *s;
    char msg[INP_MSG_SIZE];
    inp_error e = inp_open(path, &s, msg);
    if (e != INP_OK)
        cli_die(cli_exit_src(e), NULL, "%s", msg);
    int64_t nt = inp_n_tensors(s);
    json_t *root = NULL, *ta = NULL;
    if (g_json) {
        root = json_object();
        json_object_set_new(root, "file", jstr(path, strlen(path)));
        json_object_set_new(root, "format", json_string("checkpoint"));
        json_t *fa = json_array();
        for (size_t i = 0; i < inp_n_files(s); i++)
            json_array_append_new(fa, jstr(inp_file(s, i), strlen(inp_file(s, i))));
        json_object_set_new(root, "files", fa);
    } else {
        printf("%s: Hugging Face checkpoint, %zu input files, %lld tensors as GGUF\n", path, inp_n_files(s),
               (long long)nt);
    }
    metadata(inp_metadata(s), root);
    if (g_json)
        ta = json_array();
    else
        printf("tensors (%lld, GGUF names and order):\n  %5s  %-36s %-22s %-6s %12s\n", (long long)nt, "#", "name",
               "shape", "type", "bytes");
    for (int64_t i = 0; i < nt; i++) {
        const inp_tensor *t = inp_tensor_at(s, i);
        uint64_t bytes = gguf_row_size(t->type, t->ne[0]) * (uint64_t)inp_n_rows(t);
        if (g_json) {
            json_t *o = json_object(), *sh = json_array();
            json_object_set_new(o, "name", json_string(t->name));
            for (uint32_t d = 0; d < t->n_dims; d++)
                json_array_append_new(sh, json_integer(t->ne[d]));
            json_object_set_new(o, "shape", sh);
            json_object_set_new(o, "type", json_string(tname(t->type)));
            json_object_set_new(o, "bytes", json_integer((json_int_t)bytes));
            json_array_append_new(ta, o);
        } else {
            char sh[96];
            shape_text(sh, sizeof sh, t->n_dims, t->ne);
            printf("  %5lld  %-36s %-22s %-6s %12llu\n", (long long)i, shown(t->name, nb), sh, tname(t->type),
                   (unsigned long long)bytes);
        }
    }
    if (root) {
        json_object_set_new(root, "tensors", ta);
        json_dumpf(root, stdout, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
        putchar('\n');
        json_decref(root);
    }
    inp_close(s);
    return CLI_OK;
}

int main(int argc, char **argv)
{
    cli_init(argc, argv);
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            g_json = true;
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
    if (S_ISDIR(st.st_mode))
        return inspect_checkpoint(path);
    FILE *f = fopen(path, "rb");
    if (!f)
        cli_die(CLI_IO, path, "cannot open: %s", strerror(errno));
    char magic[4] = {0};
    size_t got = fread(magic, 1, 4, f);
    fclose(f);
    if (got == 4 && memcmp(magic, "GGUF", 4) == 0)
        return inspect_gguf(path);
    return inspect_safetensors(path);
}
