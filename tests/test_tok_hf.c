/* tokenizer/tok_hf: Hugging Face tokenizer.json -> llama.cpp's GGUF tokenizer metadata. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <criterion/criterion.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libgguf/gguf.h"
#include "tokenizer/tok_hf.h"
#include "tests/testutil.h"

/* ---- helpers ---- */

/* The KVs tok_hf_write_kv writes, read back through the GGUF reader. */
static gguf_reader *written_kv(const tok_hf *h, unsigned flags, void **buf)
{
    gguf_writer *w = gguf_writer_create();
    char msg[TOK_MSG_SIZE], gm[GGUF_MSG_SIZE];
    cr_assert_eq(tok_hf_write_kv(h, w, flags, msg), TOK_OK, "%s", msg);
    size_t n;
    cr_assert_eq(gguf_writer_kv_to_memory(w, buf, &n, gm), GGUF_OK, "%s", gm);
    gguf_writer_free(w);
    gguf_reader *r;
    cr_assert_eq(gguf_open_memory(*buf, n, &r, gm), GGUF_OK, "%s", gm);
    return r;
}

/* Python's json.dumps(list, ensure_ascii=False) of a GGUF array, SHA-256 hex. */
static void array_sha256(const gguf_value *v, char out[65])
{
    size_t cap = 1 << 20, len = 0;
    char *s = malloc(cap);
    cr_assert(s);
#define PUT(str, n)                                                                                \
    do {                                                                                           \
        size_t n_ = (n);                                                                           \
        while (len + n_ + 16 > cap)                                                                \
            cr_assert((s = realloc(s, cap *= 2)));                                                 \
        memcpy(s + len, (str), n_);                                                                \
        len += n_;                                                                                 \
    } while (0)
    PUT("[", 1);
    for (uint64_t i = 0; i < v->n; i++) {
        if (i)
            PUT(", ", 2);
        if (v->elem_type == GGUF_VAL_STRING) {
            const gguf_str *g = &v->v.strs[i];
            PUT("\"", 1);
            for (uint64_t j = 0; j < g->len; j++) {
                unsigned char c = (unsigned char)g->str[j];
                char e[8];
                if (c == '"' || c == '\\') {
                    e[0] = '\\', e[1] = (char)c;
                    PUT(e, 2);
                } else if (c < 0x20) {
                    const char *sh = c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : c == '\b' ? "\\b"
                                     : c == '\f' ? "\\f" : NULL;
                    if (sh) {
                        PUT(sh, 2);
                    } else {
                        snprintf(e, sizeof e, "\\u%04x", c);
                        PUT(e, 6);
                    }
                } else {
                    PUT((const char *)&c, 1);
                }
            }
            PUT("\"", 1);
        } else {
            char num[32];
            int k = snprintf(num, sizeof num, "%d", ((const int32_t *)v->v.arr)[i]);
            PUT(num, (size_t)k);
        }
    }
    PUT("]", 1);
#undef PUT
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int ml;
    cr_assert(EVP_Digest(s, len, md, &ml, EVP_sha256(), NULL) && ml == 32);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    free(s);
}

static const char *type_name(const gguf_value *v)
{
    switch (v->type) {
    case GGUF_VAL_STRING: return "string";
    case GGUF_VAL_U32: return "uint32";
    case GGUF_VAL_I32: return "int32";
    case GGUF_VAL_BOOL: return "bool";
    case GGUF_VAL_ARRAY: return v->elem_type == GGUF_VAL_STRING ? "array[STRING]" : v->elem_type == GGUF_VAL_I32 ? "array[INT32]" : "array[?]";
    default: return "?";
    }
}

static int64_t config_vocab_size(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_t *c = json_load_file(path, JSON_DECODE_INT_AS_REAL, NULL);
    cr_assert(c, "%s", path);
    int64_t v = (int64_t)json_number_value(json_object_get(c, "vocab_size"));
    json_decref(c);
    return v;
}

/* Every tokenizer.* key of the reference manifest, in order, equal to what tok_hf writes. */
static void check_reference(const char *model)
{
    TU_REQUIRE_SHARED();
    char rel[256];
    snprintf(rel, sizeof rel, "models/synth-%s", model);
    char *dir = tu_shared_path(rel);
    snprintf(rel, sizeof rel, "reference/synth-%s.json", model);
    char *refp = tu_shared_path(rel);
    json_t *ref = json_load_file(refp, 0, NULL);
    cr_assert(ref, "%s", refp);
    json_t *md = json_object_get(json_object_get(ref, "convert_f32"), "metadata");
    cr_assert(json_is_object(md));

    tok_hf *h;
    char msg[TOK_MSG_SIZE];
    tok_hf_options o = {.vocab_size = config_vocab_size(dir)};
    cr_assert_eq(tok_hf_load(dir, &o, &h, msg), TOK_OK, "%s", msg);
    void *buf;
    gguf_reader *r = written_kv(h, 0, &buf);

    int64_t k = 0;
    const char *key;
    json_t *want;
    json_object_foreach(md, key, want) {
        if (strncmp(key, "tokenizer.", 10) != 0)
            continue;
        cr_assert_lt(k, gguf_n_kv(r), "%s: key %s missing", model, key);
        cr_assert_str_eq(gguf_kv_key(r, k), key, "%s: key %lld is %s, want %s", model, (long long)k, gguf_kv_key(r, k), key);
        const gguf_value *v = gguf_kv_value(r, k);
        const char *wt = json_string_value(json_object_get(want, "type"));
        cr_assert_str_eq(type_name(v), wt, "%s: %s type", model, key);
        json_t *wv = json_object_get(want, "value");
        if (v->type == GGUF_VAL_STRING) {
            cr_assert_str_eq(v->v.str.str, json_string_value(wv), "%s: %s", model, key);
        } else if (v->type == GGUF_VAL_U32) {
            cr_assert_eq((json_int_t)v->v.u64, json_integer_value(wv), "%s: %s", model, key);
        } else if (v->type == GGUF_VAL_BOOL) {
            cr_assert_eq(v->v.b, json_is_true(wv), "%s: %s", model, key);
        } else {
            cr_assert_eq((json_int_t)v->n, json_integer_value(json_object_get(want, "length")), "%s: %s length", model, key);
            char sha[65];
            array_sha256(v, sha);
            cr_assert_str_eq(sha, json_string_value(json_object_get(want, "sha256")), "%s: %s sha256", model, key);
            json_t *head = json_object_get(want, "head");
            for (size_t i = 0; i < json_array_size(head); i++) {
                json_t *hv = json_array_get(head, i);
                if (v->elem_type == GGUF_VAL_STRING)
                    cr_assert_str_eq(v->v.strs[i].str, json_string_value(hv), "%s: %s[%zu]", model, key, i);
                else
                    cr_assert_eq(((const int32_t *)v->v.arr)[i], json_integer_value(hv), "%s: %s[%zu]", model, key, i);
            }
        }
        k++;
    }
    cr_assert_eq(k, gguf_n_kv(r), "%s: %lld keys written, the reference has %lld", model, (long long)gguf_n_kv(r),
                 (long long)k);
    gguf_close(r);
    free(buf);
    tok_hf_free(h);
    json_decref(ref);
    free(dir);
    free(refp);
}

/* ---- llama.cpp's converter output for the shared synth checkpoints ---- */

Test(tok_hf, synth_llama3_equals_reference) { check_reference("llama3"); }
Test(tok_hf, synth_qwen2_equals_reference) { check_reference("qwen2"); }
Test(tok_hf, synth_qwen3_equals_reference) { check_reference("qwen3"); }

Test(tok_hf, pre_tokenizer_detection)
{
    TU_REQUIRE_SHARED();
    static const struct {
        const char *dir, *pre, *hash;
    } cases[] = {
        {"tokenizers/llama3", "llama-bpe", "0ef9807a4087ebef797fc749390439009c3b9eda9ad1a097abbe738f486c01e5"},
        {"tokenizers/qwen3", "qwen2", "e636dc30a262dcc0d8c323492e32ae2b70728f4df7dfe9737d9f920a282b8aea"},
    };
    for (size_t i = 0; i < 2; i++) {
        char *dir = tu_shared_path(cases[i].dir), msg[TOK_MSG_SIZE];
        tok_hf *h;
        cr_assert_eq(tok_hf_load(dir, NULL, &h, msg), TOK_OK, "%s", msg);
        cr_assert_str_eq(tok_hf_pre(h), cases[i].pre);
        cr_assert_str_eq(tok_hf_check_hash(h), cases[i].hash);
        tok_hf_free(h);
        /* --tokenizer-pre: no detection */
        tok_hf_options o = {.pre = "gpt-2"};
        cr_assert_eq(tok_hf_load(dir, &o, &h, msg), TOK_OK, "%s", msg);
        cr_assert_str_eq(tok_hf_pre(h), "gpt-2");
        cr_assert_str_eq(tok_hf_check_hash(h), "");
        tok_hf_free(h);
        free(dir);
    }
}

/* Without config.json the vocabulary is the tokenizer's own tokens; no [PAD] fillers. */
Test(tok_hf, shared_tokenizers_counts_and_types)
{
    TU_REQUIRE_SHARED();
    char *dir = tu_shared_path("tokenizers/llama3"), msg[TOK_MSG_SIZE];
    tok_hf *h;
    cr_assert_eq(tok_hf_load(dir, NULL, &h, msg), TOK_OK, "%s", msg);
    cr_assert_eq(tok_hf_n_tokens(h), 128256);
    cr_assert_eq(tok_hf_n_merges(h), 280147);
    cr_assert_str_eq(tok_hf_token(h, 128000), "<|begin_of_text|>");
    cr_assert_eq(tok_hf_token_type(h, 128000), TOK_CONTROL);
    cr_assert_eq(tok_hf_token_type(h, 127999), TOK_NORMAL);
    cr_assert_str_eq(tok_hf_merge(h, 0), "\xc4\xa0 \xc4\xa0");
    cr_assert_eq(tok_hf_special_id(h, "bos"), 128000);
    cr_assert_eq(tok_hf_special_id(h, "eos"), 128001);
    cr_assert_eq(tok_hf_special_id(h, "pad"), -1);
    cr_assert_eq(tok_hf_n_files(h), 2); /* tokenizer.json, tokenizer_config.json */
    tok_hf_free(h);
    free(dir);
}

/* ---- malformed files: tests/tools/bad_tokenizers.py's table ---- */

static char *make_cases(void)
{
    char *d = tu_mkdtemp();
    cr_assert(d);
    int rc = tu_run("python3 '%s/tests/tools/bad_tokenizers.py' '%s' > '%s/manifest'", tu_root(), d, d);
    cr_assert_eq(rc, 0, "bad_tokenizers.py failed");
    return d;
}

static tok_error error_named(const char *s)
{
    static const char *const names[] = {"TOK_OK", "TOK_ERR_IO", "TOK_ERR_NOMEM", "TOK_ERR_FORMAT", "TOK_ERR_LIMIT",
                                        "TOK_ERR_MODEL", "TOK_ERR_UNSUPPORTED", "TOK_ERR_ARG"};
    for (int i = 0; i < 8; i++)
        if (strcmp(s, names[i]) == 0)
            return (tok_error)i;
    cr_assert_fail("unknown error name %s", s);
    return TOK_OK;
}

static bool matches(const char *re, const char *s)
{
    int err;
    PCRE2_SIZE at;
    pcre2_code *c = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &err, &at, NULL);
    cr_assert(c, "bad regex %s", re);
    pcre2_match_data *m = pcre2_match_data_create_from_pattern(c, NULL);
    int rc = pcre2_match(c, (PCRE2_SPTR)s, strlen(s), 0, 0, m, NULL);
    pcre2_match_data_free(m);
    pcre2_code_free(c);
    return rc >= 0;
}

Test(tok_hf, malformed_tokenizers_table, .timeout = 120)
{
    char *d = make_cases();
    char path[4096];
    snprintf(path, sizeof path, "%s/manifest", d);
    size_t n;
    char *man = tu_read_file(path, &n);
    cr_assert(man);
    int count = 0;
    for (char *line = strtok(man, "\n"); line; line = strtok(NULL, "\n")) {
        char *f[6], *save = NULL;
        int k = 0;
        for (char *p = strtok_r(line, "|", &save); p && k < 6; p = strtok_r(NULL, "|", &save))
            f[k++] = p;
        cr_assert_eq(k, 6, "manifest line with %d fields", k);
        snprintf(path, sizeof path, "%s/%s", d, f[0]);
        tok_hf_options o = {.vocab_size = atoll(f[4]), .pre = strcmp(f[5], "-") ? f[5] : NULL};
        tok_hf *h = (tok_hf *)1;
        char msg[TOK_MSG_SIZE] = "";
        tok_error e = tok_hf_load(path, &o, &h, msg);
        cr_expect_eq(e, error_named(f[1]), "%s: %s, want %s: %s", f[0], tok_strerror(e), f[1], msg);
        cr_expect_null(h, "%s: output set on failure", f[0]);
        cr_expect(msg[0] && !strchr(msg, '\n') && strlen(msg) < TOK_MSG_SIZE, "%s: message '%s'", f[0], msg);
        cr_expect(strcmp(f[2], "-") == 0 || strstr(msg, f[2]), "%s: message does not name %s: %s", f[0], f[2], msg);
        cr_expect(matches(f[3], msg), "%s: message '%s' does not match /%s/", f[0], msg, f[3]);
        count++;
    }
    cr_assert_geq(count, 77, "only %d cases", count);
    /* the base of every case is valid */
    snprintf(path, sizeof path, "%s/good", d);
    tok_hf *h;
    char msg[TOK_MSG_SIZE];
    tok_hf_options o = {.vocab_size = 261, .pre = "gpt-2"};
    cr_assert_eq(tok_hf_load(path, &o, &h, msg), TOK_OK, "%s", msg);
    tok_hf_free(h);
    free(man);
    tu_run("rm -rf '%s'", d);
    free(d);
}

/* ---- SpecialVocab and get_vocab_base behaviours, on edits of the valid tiny tokenizer ---- */

typedef struct {
    char *root, *dir;
} fixture;

static fixture good_copy(void)
{
    fixture f = {make_cases(), NULL};
    size_t n = strlen(f.root) + 8;
    f.dir = malloc(n);
    snprintf(f.dir, n, "%s/good", f.root);
    return f;
}

static void fixture_free(fixture *f)
{
    tu_run("rm -rf '%s'", f->root);
    free(f->root);
    free(f->dir);
}

/* Replace the value at a '/'-separated path of DIR/FILE (created as {} when absent). */
static void edit(const fixture *f, const char *file, const char *path, json_t *value)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", f->dir, file);
    json_t *root = json_load_file(p, 0, NULL);
    if (!root)
        root = json_object();
    json_t *o = root;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    char *save = NULL, *k = strtok_r(buf, "/", &save);
    for (char *next; (next = strtok_r(NULL, "/", &save)) != NULL; k = next) {
        json_t *c = json_object_get(o, k);
        if (!c) {
            c = json_object();
            json_object_set_new(o, k, c);
        }
        o = c;
    }
    if (value)
        json_object_set_new(o, k, value);
    else
        json_object_del(o, k);
    cr_assert_eq(json_dump_file(root, p, 0), 0);
    json_decref(root);
}

static void write_text(const fixture *f, const char *name, const char *text)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", f->dir, name);
    cr_assert_eq(tu_write_file(p, text, strlen(text)), 0);
}

/* Keys and values written, as one string "key=value;..." (arrays as their length and first entries). */
static char *kv_string(const fixture *f, int64_t vocab, unsigned flags)
{
    tok_hf *h;
    char msg[TOK_MSG_SIZE];
    tok_hf_options o = {.vocab_size = vocab, .pre = "gpt-2"};
    cr_assert_eq(tok_hf_load(f->dir, &o, &h, msg), TOK_OK, "%s", msg);
    void *buf;
    gguf_reader *r = written_kv(h, flags, &buf);
    size_t cap = 1 << 16, len = 0;
    char *s = calloc(1, cap);
    for (int64_t i = 0; i < gguf_n_kv(r); i++) {
        const char *k = gguf_kv_key(r, i);
        const gguf_value *v = gguf_kv_value(r, i);
        const char *short_k = strncmp(k, "tokenizer.ggml.", 15) == 0 ? k + 15 : strncmp(k, "tokenizer.", 10) == 0 ? k + 10 : k;
        if (strcmp(short_k, "tokens") == 0 || strcmp(short_k, "token_type") == 0 || strcmp(short_k, "merges") == 0) {
            len += (size_t)snprintf(s + len, cap - len, "%s[%llu];", short_k, (unsigned long long)v->n);
            continue;
        }
        if (v->type == GGUF_VAL_STRING)
            len += (size_t)snprintf(s + len, cap - len, "%s=%s;", short_k, v->v.str.str);
        else if (v->type == GGUF_VAL_BOOL)
            len += (size_t)snprintf(s + len, cap - len, "%s=%s;", short_k, v->v.b ? "true" : "false");
        else if (v->type == GGUF_VAL_U32)
            len += (size_t)snprintf(s + len, cap - len, "%s=%llu;", short_k, (unsigned long long)v->v.u64);
        else if (v->type == GGUF_VAL_ARRAY && v->elem_type == GGUF_VAL_STRING) {
            len += (size_t)snprintf(s + len, cap - len, "%s=", short_k);
            for (uint64_t j = 0; j < v->n; j++)
                len += (size_t)snprintf(s + len, cap - len, "%s%s", j ? "," : "", v->v.strs[j].str);
            len += (size_t)snprintf(s + len, cap - len, ";");
        }
    }
    gguf_close(r);
    free(buf);
    tok_hf_free(h);
    return s;
}

#define EXPECT_KV(f, vocab, flags, want)                                                            \
    do {                                                                                            \
        char *got_ = kv_string(f, vocab, flags);                                                    \
        cr_expect_str_eq(got_, want);                                                               \
        free(got_);                                                                                 \
    } while (0)

#define BASE "model=gpt2;pre=gpt-2;tokens[261];token_type[261];merges[4];"

Test(tok_hf, special_vocab_base)
{
    fixture f = good_copy();
    /* tokenizer_config's texts first, then config.json's ids (already set) */
    EXPECT_KV(&f, 261, 0, BASE "bos_token_id=260;eos_token_id=260;");
    edit(&f, "config.json", "pad_token_id", json_integer(3));
    edit(&f, "tokenizer_config.json", "add_eos_token", json_false());
    edit(&f, "tokenizer_config.json", "add_bos_token", json_true());
    EXPECT_KV(&f, 261, 0, BASE "bos_token_id=260;eos_token_id=260;padding_token_id=3;add_bos_token=true;add_eos_token=false;");
    /* dict-form token, config.json ids through text_config, PAD fillers */
    edit(&f, "tokenizer_config.json", "bos_token", json_pack("{s:s,s:b}", "content", "<|endoftext|>", "lstrip", 0));
    edit(&f, "config.json", "bos_token_id", NULL);
    edit(&f, "config.json", "text_config/unk_token_id", json_integer(7));
    EXPECT_KV(&f, 265, 0,
              "model=gpt2;pre=gpt-2;tokens[265];token_type[265];merges[4];"
              "bos_token_id=260;eos_token_id=260;unknown_token_id=7;padding_token_id=3;add_bos_token=true;"
              "add_eos_token=false;");
    tok_hf *h;
    char msg[TOK_MSG_SIZE];
    tok_hf_options o = {.vocab_size = 265, .pre = "gpt-2"};
    cr_assert_eq(tok_hf_load(f.dir, &o, &h, msg), TOK_OK, "%s", msg);
    cr_expect_str_eq(tok_hf_token(h, 262), "[PAD262]");
    cr_expect_eq(tok_hf_token_type(h, 262), TOK_UNUSED);
    cr_expect_eq(tok_hf_token_type(h, 260), TOK_CONTROL);
    cr_expect_str_eq(tok_hf_token(h, 32), "\xc4\xa0"); /* byte ' ' */
    tok_hf_free(h);
    fixture_free(&f);
}

Test(tok_hf, special_vocab_template_processing)
{
    fixture f = good_copy();
    /* "<|endoftext|> $A <|eot|>": add_bos; the trailing token is not eos_token, so eos
     * becomes it and the old eos becomes eot */
    edit(&f, "tokenizer.json", "added_tokens",
         json_pack("[{s:i,s:s,s:b},{s:i,s:s,s:b}]", "id", 260, "content", "<|endoftext|>", "special", 1, "id", 261,
                   "content", "<|eot|>", "special", 1));
    json_t *pp = json_pack(
        "{s:s,s:[{s:{s:s,s:i}},{s:{s:s,s:i}},{s:{s:s,s:i}}],s:[{s:{s:s,s:i}},{s:{s:s,s:i}},{s:{s:s,s:i}},"
        "{s:{s:s,s:i}},{s:{s:s,s:i}}],s:{}}",
        "type", "TemplateProcessing", "single", "SpecialToken", "id", "<|endoftext|>", "type_id", 0, "Sequence", "id",
        "A", "type_id", 0, "SpecialToken", "id", "<|eot|>", "type_id", 0, "pair", "SpecialToken", "id", "<|endoftext|>",
        "type_id", 0, "Sequence", "id", "A", "type_id", 0, "SpecialToken", "id", "<|endoftext|>", "type_id", 0,
        "Sequence", "id", "B", "type_id", 1, "SpecialToken", "id", "<|eot|>", "type_id", 1, "special_tokens");
    edit(&f, "tokenizer.json", "post_processor", json_pack("{s:s,s:[{s:s},o]}", "type", "Sequence", "processors", "type",
                                                           "ByteLevel", pp));
    EXPECT_KV(&f, 262, 0,
              "model=gpt2;pre=gpt-2;tokens[262];token_type[262];merges[4];"
              "bos_token_id=260;eos_token_id=261;eot_token_id=260;add_bos_token=true;add_eos_token=true;"
              "add_sep_token=false;");
    /* without a tokenizer_config: add_bos/add_eos from the template alone, ids from config.json */
    char p[4096];
    snprintf(p, sizeof p, "%s/tokenizer_config.json", f.dir);
    remove(p);
    EXPECT_KV(&f, 262, 0,
              "model=gpt2;pre=gpt-2;tokens[262];token_type[262];merges[4];"
              "bos_token_id=260;eos_token_id=260;add_bos_token=true;add_eos_token=true;add_sep_token=false;");
    fixture_free(&f);
}

Test(tok_hf, special_vocab_roberta_and_sep)
{
    fixture f = good_copy();
    edit(&f, "tokenizer.json", "post_processor",
         json_pack("{s:s,s:[s,i],s:[s,i]}", "type", "RobertaProcessing", "sep", "<|endoftext|>", 260, "cls", "h", 104));
    /* sep_token and cls_token come from the processor; "h" is not an added token: no cls id */
    EXPECT_KV(&f, 261, 0,
              BASE "bos_token_id=260;eos_token_id=260;seperator_token_id=260;add_bos_token=true;add_eos_token=true;"
                   "add_sep_token=true;");
    fixture_free(&f);
}

Test(tok_hf, token_types_and_merge_forms)
{
    fixture f = good_copy();
    /* an added non-special token: USER_DEFINED with U+2581 as ' '; one that looks special: CONTROL */
    edit(&f, "tokenizer.json", "added_tokens",
         json_pack("[{s:i,s:s,s:b},{s:i,s:s,s:b},{s:i,s:s,s:b},{s:i,s:s,s:b}]", "id", 260, "content", "<|endoftext|>",
                   "special", 1, "id", 261, "content", "\xe2\x96\x81hi\xe2\x96\x81", "special", 0, "id", 262, "content",
                   "<|x|>", "special", 0, "id", 263, "content", "<unused7>", "special", 0));
    /* the pair form, with a space inside a part: written with U+0120 */
    edit(&f, "tokenizer.json", "model/vocab/a b", json_integer(264));
    edit(&f, "tokenizer.json", "model/vocab/a bc", json_integer(265));
    edit(&f, "tokenizer.json", "model/merges",
         json_pack("[[s,s],[s,s],[s,s]]", "h", "e", "a b", "c", "\xc4\xa0", "t"));
    edit(&f, "tokenizer.json", "model/vocab/a", json_integer(97));
    tok_hf *h;
    char msg[TOK_MSG_SIZE];
    tok_hf_options o = {.vocab_size = 266, .pre = "gpt-2"};
    cr_assert_eq(tok_hf_load(f.dir, &o, &h, msg), TOK_OK, "%s", msg);
    cr_expect_str_eq(tok_hf_token(h, 261), " hi ");
    cr_expect_eq(tok_hf_token_type(h, 261), TOK_USER_DEFINED);
    cr_expect_eq(tok_hf_token_type(h, 262), TOK_CONTROL);
    cr_expect_eq(tok_hf_token_type(h, 263), TOK_CONTROL);
    cr_expect_eq(tok_hf_token_type(h, 264), TOK_NORMAL);
    cr_assert_eq(tok_hf_n_merges(h), 3);
    cr_expect_str_eq(tok_hf_merge(h, 0), "h e");
    cr_expect_str_eq(tok_hf_merge(h, 1), "a\xc4\xa0" "b c");
    cr_expect_str_eq(tok_hf_merge(h, 2), "\xc4\xa0 t");
    tok_hf_free(h);
    fixture_free(&f);
}

Test(tok_hf, chat_templates)
{
    fixture f = good_copy();
    /* chat_template.jinja (CRLF read as LF) when tokenizer_config has none */
    write_text(&f, "chat_template.jinja", "{{ a }}\r\n{{ b }}\r");
    EXPECT_KV(&f, 261, 0, BASE "bos_token_id=260;eos_token_id=260;chat_template={{ a }}\n{{ b }}\n;");
    /* with additional templates: the list form */
    char p[4096];
    snprintf(p, sizeof p, "%s/additional_chat_templates", f.dir);
    cr_assert_eq(tu_run("mkdir -p '%s' && printf 'T' > '%s/tool-use.jinja' && printf 'R' > '%s/rag.jinja'", p, p, p), 0);
    EXPECT_KV(&f, 261, 0,
              BASE "bos_token_id=260;eos_token_id=260;chat_template.rag=R;chat_template.tool_use=T;"
                   "chat_templates=rag,tool_use;chat_template={{ a }}\n{{ b }}\n;");
    /* tokenizer_config's own template wins, the list form with names sanitized */
    edit(&f, "tokenizer_config.json", "chat_template",
         json_pack("[{s:s,s:s},{s:s,s:s},{s:s},{s:s,s:s}]", "name", "default", "template", "D", "name", "b\xc3\xa9ta x",
                   "template", "B", "name", "no template", "name", "", "template", "E"));
    EXPECT_KV(&f, 261, 0, BASE "bos_token_id=260;eos_token_id=260;chat_template.b_ta_x=B;chat_templates=b_ta_x;chat_template=D;");
    /* present but null: no template at all */
    edit(&f, "tokenizer_config.json", "chat_template", json_null());
    EXPECT_KV(&f, 261, 0, BASE "bos_token_id=260;eos_token_id=260;");
    /* chat_template.json when there is no .jinja */
    edit(&f, "tokenizer_config.json", "chat_template", NULL);
    snprintf(p, sizeof p, "%s/chat_template.jinja", f.dir);
    remove(p);
    write_text(&f, "chat_template.json", "{\"chat_template\": \"J\"}");
    EXPECT_KV(&f, 261, 0, BASE "bos_token_id=260;eos_token_id=260;chat_template=J;");
    fixture_free(&f);
}

Test(tok_hf, normalizer_and_space_prefix)
{
    fixture f = good_copy();
    edit(&f, "tokenizer.json", "normalizer",
         json_pack("{s:s,s:[{s:s},{s:s,s:b}]}", "type", "Sequence", "normalizers", "type", "Lowercase", "type",
                   "BertNormalizer", "strip_accents", 0));
    edit(&f, "tokenizer_config.json", "add_prefix_space", json_true());
    EXPECT_KV(&f, 261, TOK_HF_KV_ADD_SPACE_PREFIX,
              "add_space_prefix=true;" BASE "bos_token_id=260;eos_token_id=260;normalizer.lowercase=true;"
              "normalizer.strip_accents=false;");
    EXPECT_KV(&f, 261, 0, BASE "bos_token_id=260;eos_token_id=260;normalizer.lowercase=true;normalizer.strip_accents=false;");
    fixture_free(&f);
}

/* A tokenizer.json with a large integer elsewhere in tokenizer_config.json (Llama 3's
 * model_max_length is 1e30 written out) still loads; the tiny tokenizer has no known hash. */
Test(tok_hf, big_integers_and_unknown_pre)
{
    fixture f = good_copy();
    write_text(&f, "tokenizer_config.json",
               "{\"bos_token\": \"<|endoftext|>\", \"model_max_length\": 1000000000000000019884624838656}");
    write_text(&f, "config.json", "{\"vocab_size\": 261, \"pad_token_id\": 5, \"x\": 1000000000000000019884624838656}");
    EXPECT_KV(&f, 261, 0, BASE "bos_token_id=260;padding_token_id=5;");
    tok_hf *h = (tok_hf *)1;
    char msg[TOK_MSG_SIZE];
    cr_assert_eq(tok_hf_load(f.dir, NULL, &h, msg), TOK_ERR_UNSUPPORTED);
    cr_expect(strstr(msg, "--tokenizer-pre NAME") && strstr(msg, "tokenizer.json"), "%s", msg);
    cr_expect_null(h);
    fixture_free(&f);
}

/* llama.cpp's two vocab-only GGUFs written back as tokenizer.json: the check-text hash names
 * the pre-tokenizer they were converted with (deepseek-llm adds BOS as LlamaTokenizerFast,
 * gpt-2 does not). */
static void detect_from_gguf(const char *name, const char *cls)
{
    TU_REQUIRE_SHARED();
    char rel[256], gm[GGUF_MSG_SIZE], msg[TOK_MSG_SIZE];
    snprintf(rel, sizeof rel, "golden/tokenizer/ggml-vocab-%s.gguf", name);
    char *p = tu_shared_path(rel);
    gguf_reader *r;
    cr_assert_eq(gguf_open(p, &r, gm), GGUF_OK, "%s", gm);
    const gguf_value *tok, *ty, *mg;
    const gguf_str *pre;
    int64_t bos;
    cr_assert(gguf_get_array(r, "tokenizer.ggml.tokens", &tok) == GGUF_OK &&
              gguf_get_array(r, "tokenizer.ggml.token_type", &ty) == GGUF_OK &&
              gguf_get_array(r, "tokenizer.ggml.merges", &mg) == GGUF_OK &&
              gguf_get_str(r, "tokenizer.ggml.pre", &pre) == GGUF_OK &&
              gguf_get_int(r, "tokenizer.ggml.bos_token_id", &bos) == GGUF_OK);
    json_t *vocab = json_object(), *added = json_array(), *merges = json_array();
    for (uint64_t i = 0; i < tok->n; i++) {
        int32_t type = ((const int32_t *)ty->v.arr)[i];
        if (type == 1)
            json_object_set_new(vocab, tok->v.strs[i].str, json_integer((json_int_t)i));
        else if (type == 3 || type == 4)
            json_array_append_new(added, json_pack("{s:I,s:s,s:b}", "id", (json_int_t)i, "content", tok->v.strs[i].str,
                                                   "special", type == 3));
    }
    for (uint64_t i = 0; i < mg->n; i++)
        json_array_append_new(merges, json_string(mg->v.strs[i].str));
    json_t *tj = json_pack("{s:o,s:{s:s},s:{s:s,s:o,s:o}}", "added_tokens", added, "pre_tokenizer", "type", "ByteLevel",
                           "model", "type", "BPE", "vocab", vocab, "merges", merges);
    json_t *tc = json_pack("{s:s,s:s}", "bos_token", tok->v.strs[bos].str, "tokenizer_class", cls);
    char *d = tu_mkdtemp();
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", d);
    cr_assert_eq(json_dump_file(tj, path, 0), 0);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", d);
    cr_assert_eq(json_dump_file(tc, path, 0), 0);
    tok_hf *h;
    tok_hf_options o = {.vocab_size = (int64_t)tok->n};
    cr_assert_eq(tok_hf_load(d, &o, &h, msg), TOK_OK, "%s: %s", name, msg);
    cr_assert_str_eq(tok_hf_pre(h), pre->str);
    tok_hf_free(h);
    json_decref(tj);
    json_decref(tc);
    gguf_close(r);
    tu_run("rm -rf '%s'", d);
    free(d);
    free(p);
}

Test(tok_hf, detection_deepseek_llm) { detect_from_gguf("deepseek-llm", "LlamaTokenizerFast"); }
Test(tok_hf, detection_gpt2) { detect_from_gguf("gpt-2", "GPT2Tokenizer"); }
