/* Hugging Face checkpoint directories as a tensor source, for every architecture the registry
 * describes (arch/arch.h): the description gives the class names, the config.json keys and
 * their GGUF names, the tensor names, shapes and which tensors may be absent, the Q/K
 * permutation and the tensors the converter computes (Llama 3's rope_freqs).
 *
 * Files read (DIR/...):
 *   config.json                   required; architectures[0] must be a registered HF class
 *   model.safetensors.index.json  if present: weight_map {tensor: shard file}; else
 *   model.safetensors             the single weights file
 *   tokenizer.model               SentencePiece (tokenizer/spm_model.h), taken when present (llama.cpp
 *                                 tries it first), with:
 *     tokenizer_config.json       optional: add_bos/add_eos, added_tokens_decoder, chat_template,
 *                                 add_prefix_space, *_token strings
 *     tokenizer.json              optional: only its added_tokens, to resolve *_token strings to ids
 *     added_tokens.json           optional: extra user-defined tokens
 *     chat_template.jinja         optional: chat template when tokenizer_config has none
 *   tokenizer.json                else: a byte-level BPE tokenizer (Llama 3, Qwen2/2.5/3), read with
 *                                 its side files by tokenizer/tok_hf.h, which writes every
 *                                 tokenizer.* key (the pre-tokenizer name detected by hash, or
 *                                 inp_open_opts.tokenizer_pre)
 *   neither                       refused (INP_ERR_MISSING)
 *
 * Index rules (decided here; llama.cpp's converter enforces the same set equality): weight_map
 * is an object of tensor -> shard name; shard names are plain file names (no '/', not "." or
 * ".."); every named shard must exist and be valid; every tensor in the map must be in its
 * shard; every tensor in a shard must be in the map and mapped to that shard. Index "metadata"
 * (total_size) is not checked.
 *
 * Tensor order is llama.cpp's: computed tensors first, then shards sorted by file name, tensors
 * within a shard sorted by name (byte order). Names map as the description says;
 * *.rotary_emb.inv_freq, *.attention.masked_bias and *.attention.bias are skipped as llama.cpp
 * does; any other unknown tensor is refused. Permuted rows (ARCH_PERM_Q/K: LlamaModel.permute
 * with n_head / n_head_kv groups) are permuted on read.
 *
 * Metadata is written in the order and with the value types of convert_hf_to_gguf.py:
 * general.{architecture,type,name,[version],[organization],[finetune],[basename],size_label}
 * from the directory name (and config.json _name_or_path) with gguf-py's heuristics, then the
 * description's "{arch}.*" keys around general.file_type, general.quantization_version, then
 * tokenizer.ggml.*. Missing hyperparameters take the defaults of transformers' config class
 * for the HF class (arch_hf_class.defaults), as llama.cpp sees them through AutoConfig.
 * general.file_type describes the source as stored (0 F32, 1 F16, 32 BF16 from the first 2-D
 * tensor); a writer sets its own. Not read: README.md model cards, generation_config.json
 * sampling settings, tokenizer.json post-processor templates, list-form chat templates, the
 * CodeLlama (vocab 32016) and granite (vocab 49152) special cases of llama.cpp's LlamaModel.
 * Vocabulary: config.json's vocab_size entries (tokenizer pieces, then "[PAD<id>]" fillers);
 * a tokenizer with more pieces than vocab_size is refused (llama.cpp's converter fails on it too).
 */
#include "tokenizer/spm_model.h"
#include "tokenizer/tok_hf.h"
#include "arch/arch.h"
#include "input/inp_internal.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define JSON_CAP (64u << 20)        /* config/index/tokenizer_config files */
#define TOKENIZER_JSON_CAP (512u << 20)
#define MAX_SHARDS 65536

typedef struct {
    const char *dir;
    const inp_open_opts *opts;
    tok_hf *hf;            /* the tokenizer.json tokenizer; NULL: SentencePiece */
    char *cfg_path;
    json_t *config, *tok_config, *tok_json, *added;
    const arch_desc *arch;
    const arch_hf_class *cls;
    arch_hparams hp;
    char **shard_names;
    size_t n_shard_names;
} ctx;

/* ---------------------------------------------------------------- helpers */

static size_t digits(const char *s)
{
    size_t n = 0;
    while (isdigit((unsigned char)s[n]))
        n++;
    return n;
}

static char *join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (p) {
        memcpy(p, dir, a);
        p[a] = '/';
        memcpy(p + a + 1, name, b + 1);
    }
    return p;
}

static const char *shown(const char *name, char buf[INP_SHOWN_SIZE])
{
    return inp_printable_(name, strlen(name), buf, INP_SHOWN_SIZE);
}

/* Reads a JSON object file. *out = NULL and INP_OK when the file is absent and optional. */
static inp_error load_json(inp_source *s, const char *path, size_t cap, bool required, json_t **out,
                           char *msg)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT && !required)
            return INP_OK;
        if (errno == ENOENT)
            return inp_fail(msg, INP_ERR_MISSING, "%s: not found", path);
        return inp_fail(msg, INP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return inp_fail(msg, INP_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > cap) {
        fclose(f);
        return inp_fail(msg, INP_ERR_LIMIT, "%s: %lld bytes, more than the cap of %zu", path,
                        (long long)st.st_size, cap);
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n ? n : 1);
    if (!buf) {
        fclose(f);
        return inp_fail(msg, INP_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t got = fread(buf, 1, n, f);
    int rerr = ferror(f);
    fclose(f);
    if (got != n || rerr) {
        free(buf);
        return inp_fail(msg, INP_ERR_IO, "%s: read error", path);
    }
    json_error_t je;
    json_t *j = json_loadb(buf, n, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    free(buf);
    if (!j) {
        char tb[JSON_ERROR_TEXT_LENGTH];
        return inp_fail(msg, INP_ERR_FORMAT, "%s: not valid JSON: %s (line %d, column %d)", path,
                        inp_printable_(je.text, strlen(je.text), tb, sizeof tb), je.line, je.column);
    }
    if (!json_is_object(j)) {
        json_decref(j);
        return inp_fail(msg, INP_ERR_FORMAT, "%s: not a JSON object", path);
    }
    inp_error e = inp_add_file(s, path, msg);
    if (e != INP_OK) {
        json_decref(j);
        return e;
    }
    *out = j;
    return INP_OK;
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Integer key: required, or *v keeps its default when absent/null. */
static inp_error cfg_int(ctx *x, const char *key, int64_t *v, bool required, int64_t lo, int64_t hi,
                         char *msg)
{
    json_t *j = json_object_get(x->config, key);
    if (!j || json_is_null(j)) {
        if (required)
            return inp_fail(msg, INP_ERR_MISSING, "%s: no \"%s\"", x->cfg_path, key);
        return INP_OK;
    }
    if (!json_is_integer(j))
        return inp_fail(msg, INP_ERR_FORMAT, "%s: \"%s\" is not an integer", x->cfg_path, key);
    json_int_t i = json_integer_value(j);
    if (i < lo || i > hi)
        return inp_fail(msg, INP_ERR_MODEL, "%s: \"%s\" = %lld is outside [%lld, %lld]", x->cfg_path, key,
                        (long long)i, (long long)lo, (long long)hi);
    *v = i;
    return INP_OK;
}

/* Positive finite number at most hi: required, or *v keeps its default when absent/null. */
static inp_error num_in(ctx *x, json_t *obj, const char *where, const char *key, double *v, double hi, char *msg)
{
    json_t *j = json_object_get(obj, key);
    if (!j || json_is_null(j))
        return INP_OK;
    if (!json_is_number(j) || !isfinite(json_number_value(j)) || json_number_value(j) <= 0)
        return inp_fail(msg, INP_ERR_FORMAT, "%s: %s\"%s\" is not a positive number", x->cfg_path, where, key);
    if (json_number_value(j) > hi)
        return inp_fail(msg, INP_ERR_MODEL, "%s: %s\"%s\" = %g is above %g", x->cfg_path, where, key,
                        json_number_value(j), hi);
    *v = json_number_value(j);
    return INP_OK;
}

static inp_error cfg_bool_false(ctx *x, const char *key, const char *what, char *msg)
{
    json_t *j = json_object_get(x->config, key);
    if (json_is_true(j))
        return inp_fail(msg, INP_ERR_UNSUPPORTED, "%s: \"%s\" is true: %s are not supported", x->cfg_path,
                        key, what);
    return INP_OK;
}

/* ---------------------------------------------------------------- config.json */

/* The description's keys config.json states (absent ones keep the class defaults). */
static inp_error read_keys(ctx *x, char *msg)
{
    arch_hparams *hp = &x->hp;
    inp_error e;
    for (size_t i = 0; i < x->arch->n_keys; i++) {
        const arch_key *k = &x->arch->keys[i];
        if (!k->hf)
            continue;
        if (k->id == ARCH_HP_KEY_LENGTH || k->id == ARCH_HP_VALUE_LENGTH) {
            json_t *hd = json_object_get(x->config, k->hf);
            if (!hd || json_is_null(hd))
                continue;
            if ((e = cfg_int(x, k->hf, &hp->head_dim, true, (int64_t)k->lo, (int64_t)k->hi, msg)))
                return e;
            hp->head_dim_given = true;
        } else if (k->type == ARCH_KV_U32) {
            int64_t v = (int64_t)arch_hp_get(hp, k->id);
            if ((e = cfg_int(x, k->hf, &v, k->flags & ARCH_KEY_HF_REQUIRED, (int64_t)k->lo, (int64_t)k->hi, msg)))
                return e;
            arch_hp_set(hp, k->id, (double)v);
        } else {
            double v = arch_hp_get(hp, k->id);
            if ((e = num_in(x, x->config, "", k->hf, &v, k->hi, msg)))
                return e;
            arch_hp_set(hp, k->id, v);
        }
    }
    return INP_OK;
}

/* Head counts and the head dimension agree. */
static inp_error check_heads(ctx *x, char *msg)
{
    arch_hparams *c = &x->hp;
    const char *P = x->cfg_path;
    if (c->n_head_kv == 0) /* transformers: num_key_value_heads = num_attention_heads */
        c->n_head_kv = c->n_head;
    if (!c->head_dim_given && x->cls->defaults.head_dim > 0) {
        c->head_dim = x->cls->defaults.head_dim; /* the config class states it: AutoConfig shows it */
        c->head_dim_given = true;
    }
    if (!c->head_dim_given) {
        if (c->n_embd % c->n_head != 0)
            return inp_fail(msg, INP_ERR_MODEL, "%s: hidden_size %lld is not a multiple of num_attention_heads %lld",
                            P, (long long)c->n_embd, (long long)c->n_head);
        c->head_dim = c->n_embd / c->n_head;
    }
    if (c->n_head % c->n_head_kv != 0)
        return inp_fail(msg, INP_ERR_MODEL, "%s: num_attention_heads %lld is not a multiple of num_key_value_heads %lld",
                        P, (long long)c->n_head, (long long)c->n_head_kv);
    if (c->head_dim % 2 != 0)
        return inp_fail(msg, INP_ERR_MODEL, "%s: head dimension %lld is odd (RoPE needs pairs)", P,
                        (long long)c->head_dim);
    if (c->n_head * c->head_dim > ARCH_MAX_EMBD * 4)
        return inp_fail(msg, INP_ERR_LIMIT, "%s: heads x head_dim exceeds %d", P, ARCH_MAX_EMBD * 4);
    return INP_OK;
}

/* rope_parameters (transformers 5) or rope_scaling: the type the description supports, and
 * rope_theta when it is given there (it takes precedence, as in llama.cpp's converter). */
static inp_error parse_rope(ctx *x, char *msg)
{
    const char *P = x->cfg_path;
    json_t *rs = json_object_get(x->config, "rope_parameters");
    const char *what = "rope_parameters";
    if (!rs || json_is_null(rs)) {
        rs = json_object_get(x->config, "rope_scaling");
        what = "rope_scaling";
    }
    if (!rs || json_is_null(rs))
        return INP_OK;
    if (!json_is_object(rs))
        return inp_fail(msg, INP_ERR_FORMAT, "%s: \"%s\" is not an object", P, what);
    arch_rope_scaling *r = &x->hp.rope_scaling;
    char where[32];
    snprintf(where, sizeof where, "%s ", what);
    inp_error e = num_in(x, rs, where, "rope_theta", &x->hp.rope_base, ARCH_MAX_FLOAT, msg);
    if (e != INP_OK)
        return e;
    json_t *ty = json_object_get(rs, "rope_type");
    if (!ty)
        ty = json_object_get(rs, "type");
    const char *tys = json_is_string(ty) ? json_string_value(ty) : "";
    const unsigned ok = x->arch->rope_scaling;
    if (strcmp(tys, "default") == 0 || (!ty && !json_object_get(rs, "factor")))
        return INP_OK; /* plain RoPE */
    if (strcmp(tys, "linear") == 0 && (ok & 1u << ARCH_ROPE_SCALING_LINEAR)) {
        json_t *fa = json_object_get(rs, "factor");
        if (!json_is_number(fa) || !isfinite(json_number_value(fa)) || json_number_value(fa) <= 0)
            return inp_fail(msg, INP_ERR_FORMAT, "%s: %s \"factor\" is not a positive number", P, what);
        r->type = ARCH_ROPE_SCALING_LINEAR;
        r->factor = json_number_value(fa);
        return INP_OK;
    }
    if (strcmp(tys, "llama3") == 0 && (ok & 1u << ARCH_ROPE_SCALING_LLAMA3)) {
        r->type = ARCH_ROPE_SCALING_LLAMA3; /* llama.cpp's defaults for absent values */
        r->factor = 8.0;
        r->low_freq_factor = 1.0;
        r->high_freq_factor = 4.0;
        double orig = 8192;
        if ((e = num_in(x, rs, where, "factor", &r->factor, ARCH_MAX_FLOAT, msg)) ||
            (e = num_in(x, rs, where, "low_freq_factor", &r->low_freq_factor, ARCH_MAX_FLOAT, msg)) ||
            (e = num_in(x, rs, where, "high_freq_factor", &r->high_freq_factor, ARCH_MAX_FLOAT, msg)) ||
            (e = num_in(x, rs, where, "original_max_position_embeddings", &orig, INT32_MAX, msg)))
            return e;
        if (!(r->high_freq_factor > r->low_freq_factor))
            return inp_fail(msg, INP_ERR_MODEL, "%s: %s high_freq_factor %g is not above low_freq_factor %g", P, what,
                            r->high_freq_factor, r->low_freq_factor);
        r->original_ctx = (int64_t)orig;
        return INP_OK;
    }
    char b[INP_SHOWN_SIZE], sup[64] = "";
    if (ok & 1u << ARCH_ROPE_SCALING_LINEAR)
        snprintf(sup, sizeof sup, "linear");
    if (ok & 1u << ARCH_ROPE_SCALING_LLAMA3)
        snprintf(sup + strlen(sup), sizeof sup - strlen(sup), "%sllama3", sup[0] ? ", " : "");
    return inp_fail(msg, INP_ERR_UNSUPPORTED, "%s: %s type '%s' is not supported for %s (only %s)", P, what,
                    shown(tys, b), x->cls->name, sup[0] ? sup : "none");
}

static inp_error parse_config(inp_source *s, ctx *x, char *msg)
{
    inp_error e = load_json(s, x->cfg_path, JSON_CAP, true, &x->config, msg);
    if (e != INP_OK)
        return e;
    const char *P = x->cfg_path;
    json_t *arch = json_object_get(x->config, "architectures");
    if (!arch)
        return inp_fail(msg, INP_ERR_MISSING, "%s: no \"architectures\"", P);
    if (!json_is_array(arch) || json_array_size(arch) == 0 || !json_is_string(json_array_get(arch, 0)))
        return inp_fail(msg, INP_ERR_FORMAT, "%s: \"architectures\" is not a non-empty array of strings", P);
    const char *a = json_string_value(json_array_get(arch, 0));
    if (!(x->arch = arch_find_hf(a, &x->cls))) {
        char b[INP_SHOWN_SIZE], names[256];
        arch_list_names(true, names, sizeof names);
        return inp_fail(msg, INP_ERR_UNSUPPORTED, "%s: architecture '%s' is not supported (only %s)", P, shown(a, b),
                        names);
    }
    x->hp = x->cls->defaults;
    if ((e = read_keys(x, msg)) || (e = check_heads(x, msg)))
        return e;
    json_t *tie = json_object_get(x->config, "tie_word_embeddings");
    if (tie && !json_is_null(tie) && !json_is_boolean(tie))
        return inp_fail(msg, INP_ERR_FORMAT, "%s: \"tie_word_embeddings\" is not a boolean", P);
    x->hp.tied = tie && !json_is_null(tie) ? json_is_true(tie) : x->cls->defaults.tied;
    for (size_t i = 0; i < x->arch->n_refused; i++)
        if ((e = cfg_bool_false(x, x->arch->refused[i].key, x->arch->refused[i].what, msg)))
            return e;
    json_t *act = json_object_get(x->config, "hidden_act");
    if (act && !json_is_null(act) && (!json_is_string(act) || strcmp(json_string_value(act), "silu") != 0))
        return inp_fail(msg, INP_ERR_UNSUPPORTED, "%s: \"hidden_act\" must be \"silu\"", P);
    return parse_rope(x, msg);
}

/* ---------------------------------------------------------------- shards and index */

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* A file in the directory, shown as is in messages (no control characters). */
static bool plain_file_name(const char *n)
{
    size_t len = strlen(n);
    char pr[256];
    return len > 0 && len < sizeof pr && strchr(n, '/') == NULL && strcmp(n, ".") != 0 && strcmp(n, "..") != 0 &&
           strcmp(inp_printable_(n, len, pr, sizeof pr), n) == 0;
}

static inp_error open_shard(inp_source *s, ctx *x, const char *name, const char *referrer, char *msg)
{
    char *p = join(x->dir, name);
    if (!p)
        return inp_fail(msg, INP_ERR_NOMEM, "out of memory");
    inp_error e;
    if (!file_exists(p)) {
        char b[INP_SHOWN_SIZE];
        e = referrer ? inp_fail(msg, INP_ERR_MISSING, "%s: shard '%s' is missing", referrer, shown(name, b))
                     : inp_fail(msg, INP_ERR_MISSING, "%s: not found", p);
        free(p);
        return e;
    }
    inp_st_file *f;
    e = inp_st_open(p, &f, msg);
    if (e == INP_OK) {
        s->shards[s->n_shards++] = f;
        e = inp_add_file(s, p, msg);
    }
    free(p);
    return e;
}

static inp_error open_weights(inp_source *s, ctx *x, char *msg)
{
    char *ipath = join(x->dir, "model.safetensors.index.json");
    if (!ipath)
        return inp_fail(msg, INP_ERR_NOMEM, "out of memory");
    json_t *index = NULL;
    inp_error e = load_json(s, ipath, JSON_CAP, false, &index, msg);
    if (e != INP_OK)
        goto out;
    if (!index) {
        s->shards = calloc(1, sizeof *s->shards);
        if (!s->shards) {
            e = inp_fail(msg, INP_ERR_NOMEM, "out of memory");
            goto out;
        }
        char *single = join(x->dir, "model.safetensors");
        bool have = single && file_exists(single);
        free(single);
        if (!have) {
            e = inp_fail(msg, INP_ERR_MISSING, "%s: no model.safetensors and no model.safetensors.index.json",
                         x->dir);
            goto out;
        }
        e = open_shard(s, x, "model.safetensors", NULL, msg);
        goto out;
    }
    json_t *wm = json_object_get(index, "weight_map");
    if (!wm) {
        e = inp_fail(msg, INP_ERR_MISSING, "%s: no \"weight_map\"", ipath);
        goto out;
    }
    if (!json_is_object(wm)) {
        e = inp_fail(msg, INP_ERR_FORMAT, "%s: \"weight_map\" is not an object", ipath);
        goto out;
    }
    /* distinct shard names, sorted */
    size_t nw = json_object_size(wm);
    char **names = calloc(nw ? nw : 1, sizeof *names);
    if (!names) {
        e = inp_fail(msg, INP_ERR_NOMEM, "out of memory");
        goto out;
    }
    size_t nn = 0;
    const char *k;
    json_t *v;
    json_object_foreach(wm, k, v) {
        char b[INP_SHOWN_SIZE], b2[INP_SHOWN_SIZE];
        if (!json_is_string(v)) {
            e = inp_fail(msg, INP_ERR_FORMAT, "%s: weight_map entry '%s' is not a string", ipath, shown(k, b));
            free(names);
            goto out;
        }
        if (!plain_file_name(json_string_value(v))) {
            e = inp_fail(msg, INP_ERR_FORMAT, "%s: weight_map entry '%s' names '%s', not a file in the directory",
                         ipath, shown(k, b), shown(json_string_value(v), b2));
            free(names);
            goto out;
        }
        names[nn++] = (char *)json_string_value(v);
    }
    if (nn == 0) {
        e = inp_fail(msg, INP_ERR_FORMAT, "%s: \"weight_map\" is empty", ipath);
        free(names);
        goto out;
    }
    qsort(names, nn, sizeof *names, cmp_str);
    size_t nu = 0;
    for (size_t i = 0; i < nn; i++)
        if (nu == 0 || strcmp(names[nu - 1], names[i]) != 0)
            names[nu++] = names[i];
    if (nu > MAX_SHARDS) {
        e = inp_fail(msg, INP_ERR_LIMIT, "%s: %zu shards, more than the cap of %d", ipath, nu, MAX_SHARDS);
        free(names);
        goto out;
    }
    s->shards = calloc(nu, sizeof *s->shards);
    x->shard_names = calloc(nu, sizeof *x->shard_names);
    if (!s->shards || !x->shard_names) {
        free(names);
        e = inp_fail(msg, INP_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < nu; i++) {
        if (!(x->shard_names[i] = strdup(names[i]))) {
            free(names);
            e = inp_fail(msg, INP_ERR_NOMEM, "out of memory");
            goto out;
        }
        x->n_shard_names++;
    }
    free(names);
    for (size_t i = 0; i < nu; i++)
        if ((e = open_shard(s, x, x->shard_names[i], ipath, msg)) != INP_OK)
            goto out;
    /* every mapped tensor is in its shard */
    json_object_foreach(wm, k, v) {
        const char *sn = json_string_value(v);
        char **hit = bsearch(&sn, x->shard_names, nu, sizeof *x->shard_names, cmp_str);
        size_t si = (size_t)(hit - x->shard_names);
        if (inp_st_find(s->shards[si], k) < 0) {
            char b[INP_SHOWN_SIZE], b2[INP_SHOWN_SIZE];
            e = inp_fail(msg, INP_ERR_FORMAT, "%s: tensor '%s' is mapped to '%s', which does not hold it", ipath,
                         shown(k, b), shown(sn, b2));
            goto out;
        }
    }
    /* every shard tensor is mapped, to that shard */
    for (size_t si = 0; si < nu; si++) {
        for (size_t ti = 0; ti < inp_st_n_tensors(s->shards[si]); ti++) {
            const char *tn = inp_st_tensor_at(s->shards[si], ti)->name;
            json_t *m = json_object_get(wm, tn);
            char b[INP_SHOWN_SIZE], b2[INP_SHOWN_SIZE];
            if (!m) {
                e = inp_fail(msg, INP_ERR_FORMAT, "%s: tensor '%s' is not listed in %s",
                             inp_st_path(s->shards[si]), shown(tn, b), "model.safetensors.index.json");
                goto out;
            }
            if (strcmp(json_string_value(m), x->shard_names[si]) != 0) {
                e = inp_fail(msg, INP_ERR_FORMAT, "%s: holds tensor '%s', which the index maps to '%s'",
                             inp_st_path(s->shards[si]), shown(tn, b), shown(json_string_value(m), b2));
                goto out;
            }
        }
    }
out:
    json_decref(index);
    free(ipath);
    return e;
}

/* ---------------------------------------------------------------- tensor mapping */

typedef struct {
    const char *hf;
    size_t shard, st;
} hf_ref;

static int cmp_ref(const void *a, const void *b)
{
    const hf_ref *x = a, *y = b;
    if (x->shard != y->shard)
        return x->shard < y->shard ? -1 : 1;
    return strcmp(x->hf, y->hf);
}

/* Tensors the converter computes (Llama 3's rope_freqs), first in the file as llama.cpp puts
 * them; their F32 data lives in s->gen. */
static inp_error add_computed(inp_source *s, ctx *x, char *msg)
{
    const arch_desc *d = x->arch;
    size_t total = 0;
    for (size_t i = 0; i < d->n_globals; i++)
        if (d->globals[i].flags & ARCH_T_COMPUTED)
            total += (size_t)(arch_dim_value(d->globals[i].ne0, &x->hp) * arch_dim_value(d->globals[i].ne1, &x->hp));
    if (total == 0)
        return INP_OK;
    if (!(s->gen = calloc(total, sizeof *s->gen)))
        return inp_fail(msg, INP_ERR_NOMEM, "out of memory");
    float *out = s->gen;
    for (size_t i = 0; i < d->n_globals; i++) {
        const arch_tensor *at = &d->globals[i];
        if (!(at->flags & ARCH_T_COMPUTED) || !at->compute(&x->hp, out))
            continue;
        int64_t ne0 = arch_dim_value(at->ne0, &x->hp), ne1 = arch_dim_value(at->ne1, &x->hp);
        inp_tensor *t = &s->t[s->n];
        inp_slot *sl = &s->slot[s->n];
        snprintf(t->name, sizeof t->name, "%s", at->gguf);
        t->n_dims = at->ne1 == ARCH_DIM_1 ? 1 : 2;
        t->ne[0] = ne0;
        t->ne[1] = ne1;
        t->ne[2] = t->ne[3] = 1;
        t->type = GGUF_F32;
        sl->data = (const uint8_t *)out;
        sl->nbytes = (uint64_t)(ne0 * ne1) * sizeof(float);
        sl->row_bytes = (size_t)ne0 * sizeof(float);
        sl->shard = -1;
        out += ne0 * ne1;
        s->n++;
    }
    return INP_OK;
}

/* The safetensors shape of st against the description ([rows, cols], or [n] for a vector). */
static inp_error check_shape(ctx *x, const arch_tensor *at, const inp_st_tensor *st, const char *SP, const char *hf,
                             char *msg)
{
    uint64_t rows, cols;
    if (arch_tensor_is_matrix(at))
        rows = (uint64_t)arch_dim_value(at->ne1, &x->hp), cols = (uint64_t)arch_dim_value(at->ne0, &x->hp);
    else
        rows = (uint64_t)arch_dim_value(at->ne0, &x->hp), cols = 0;
    bool ok = cols ? (st->n_dims == 2 && st->shape[0] == rows && st->shape[1] == cols)
                   : (st->n_dims == 1 && st->shape[0] == rows);
    if (ok)
        return INP_OK;
    char got[160] = "[", want[64], b[INP_SHOWN_SIZE];
    size_t o = 1;
    for (uint32_t d = 0; d < st->n_dims && o < sizeof got; d++)
        o += (size_t)snprintf(got + o, sizeof got - o, "%s%" PRIu64, d ? ", " : "", st->shape[d]);
    if (o < sizeof got)
        snprintf(got + o, sizeof got - o, "]");
    if (cols)
        snprintf(want, sizeof want, "[%" PRIu64 ", %" PRIu64 "]", rows, cols);
    else
        snprintf(want, sizeof want, "[%" PRIu64 "]", rows);
    return inp_fail(msg, INP_ERR_MODEL, "%s: tensor '%s' has shape %s but config.json implies %s", SP, shown(hf, b),
                    got, want);
}

/* Everything the model needs is there: per layer (the first missing one in name order, as
 * the file would list it), then the globals. */
static inp_error check_complete(ctx *x, const bool *seen, char *msg)
{
    const arch_desc *d = x->arch;
    const size_t nl = d->n_layer;
    for (int64_t l = 0; l < x->hp.n_layer; l++) {
        const char *first = NULL;
        for (size_t k = 0; k < nl; k++)
            if (!seen[(size_t)l * nl + k] && !(d->layer[k].flags & ARCH_T_OPTIONAL) &&
                (!first || strcmp(d->layer[k].hf, first) < 0))
                first = d->layer[k].hf;
        if (first)
            return inp_fail(msg, INP_ERR_MISSING, "%s: no tensor '%s%lld.%s' in the checkpoint", x->dir,
                            d->hf_layer_prefix, (long long)l, first);
    }
    const size_t g = (size_t)x->hp.n_layer * nl;
    for (size_t k = 0; k < d->n_globals; k++) {
        const arch_tensor *at = &d->globals[k];
        if (seen[g + k] || (at->flags & (ARCH_T_OPTIONAL | ARCH_T_COMPUTED)))
            continue;
        if (!(at->flags & ARCH_T_TIED))
            return inp_fail(msg, INP_ERR_MISSING, "%s: no tensor '%s' in the checkpoint", x->dir, at->hf);
        if (!x->hp.tied)
            return inp_fail(msg, INP_ERR_MISSING,
                            "%s: no tensor '%s' in the checkpoint and tie_word_embeddings is false", x->dir, at->hf);
    }
    return INP_OK;
}

static inp_error map_tensors(inp_source *s, ctx *x, char *msg)
{
    const arch_desc *d = x->arch;
    const arch_hparams *c = &x->hp;
    size_t total = 0;
    for (size_t i = 0; i < s->n_shards; i++)
        total += inp_st_n_tensors(s->shards[i]);
    const size_t cap = total + d->n_globals; /* + computed tensors */
    hf_ref *refs = malloc((total ? total : 1) * sizeof *refs);
    size_t nseen = (size_t)c->n_layer * d->n_layer + d->n_globals;
    bool *seen = calloc(nseen, 1);
    s->t = calloc(cap, sizeof *s->t);
    s->slot = calloc(cap, sizeof *s->slot);
    inp_error e = INP_OK;
    if (!refs || !seen || !s->t || !s->slot) {
        e = inp_fail(msg, INP_ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((e = add_computed(s, x, msg)) != INP_OK)
        goto out;
    size_t nr = 0;
    for (size_t i = 0; i < s->n_shards; i++)
        for (size_t j = 0; j < inp_st_n_tensors(s->shards[i]); j++)
            refs[nr++] = (hf_ref){inp_st_tensor_at(s->shards[i], j)->name, i, j};
    qsort(refs, nr, sizeof *refs, cmp_ref);

    for (size_t r = 0; r < nr; r++) {
        const char *hf = refs[r].hf;
        inp_st_file *sf = s->shards[refs[r].shard];
        const inp_st_tensor *st = inp_st_tensor_at(sf, refs[r].st);
        const char *SP = inp_st_path(sf);
        char b[INP_SHOWN_SIZE];
        if (arch_hf_ignored(hf))
            continue;
        if (st->gguf_type < 0) {
            e = inp_fail(msg, INP_ERR_UNSUPPORTED, "%s: tensor '%s' has unsupported dtype %s", SP, shown(hf, b),
                         st->dtype);
            goto out;
        }
        int layer;
        const arch_tensor *at = arch_tensor_find_hf(d, hf, &layer);
        if (!at || (at->flags & ARCH_T_COMPUTED)) {
            e = inp_fail(msg, INP_ERR_UNSUPPORTED, "%s: tensor '%s' has no llama.cpp name (unexpected tensor)", SP,
                         shown(hf, b));
            goto out;
        }
        if (layer >= c->n_layer) {
            e = inp_fail(msg, INP_ERR_MODEL, "%s: tensor '%s' is beyond the %lld layers of config.json", SP,
                         shown(hf, b), (long long)c->n_layer);
            goto out;
        }
        size_t seen_ix = layer >= 0 ? (size_t)layer * d->n_layer + (size_t)(at - d->layer)
                                    : (size_t)c->n_layer * d->n_layer + (size_t)(at - d->globals);
        if (seen[seen_ix]) { /* unreachable with the index checks; kept as a guard */
            e = inp_fail(msg, INP_ERR_FORMAT, "%s: tensor '%s' appears twice", SP, shown(hf, b));
            goto out;
        }
        seen[seen_ix] = true;
        if ((e = check_shape(x, at, st, SP, hf, msg)) != INP_OK)
            goto out;
        inp_tensor *t = &s->t[s->n];
        inp_slot *sl = &s->slot[s->n];
        arch_tensor_name(d, at, layer, t->name, sizeof t->name);
        t->n_dims = st->n_dims;
        t->ne[0] = arch_dim_value(at->ne0, c);
        t->ne[1] = arch_dim_value(at->ne1, c);
        t->ne[2] = t->ne[3] = 1;
        t->type = st->gguf_type;
        sl->data = inp_st_data(sf, refs[r].st);
        sl->nbytes = st->end - st->begin;
        sl->row_bytes = (size_t)t->ne[0] * (st->dtype_bits / 8);
        sl->perm_groups = at->perm == ARCH_PERM_Q ? c->n_head : at->perm == ARCH_PERM_K ? c->n_head_kv : 0;
        sl->shard = (int)refs[r].shard;
        sl->st_index = refs[r].st;
        s->n++;
    }
    e = check_complete(x, seen, msg);
out:
    free(refs);
    free(seen);
    return e;
}

/* ---------------------------------------------------------------- general.* heuristics (gguf-py metadata.py) */

enum { T_VERSION = 1, T_TYPE = 2, T_SIZE = 4, T_FINETUNE = 8, T_BASENAME = 16 };

/* Model ids (config.json's _name_or_path, the directory name) longer than this are not used for
 * the names; Hugging Face ids are at most 96 bytes and a file name at most 255. An id of
 * MODEL_ID_MAX bytes has at most MODEL_ID_MAX / 2 + 1 non-empty parts, each at most MODEL_ID_MAX
 * bytes, and any join of its normalized parts (normalize_size adds at most one byte to a part of
 * at least 3 bytes) fits in MODEL_ID_BUF: nothing below is ever cut. */
#define MODEL_ID_MAX 255
#define MODEL_ID_BUF (2 * (MODEL_ID_MAX + 1))
#define MODEL_ID_PARTS (MODEL_ID_MAX / 2 + 1)

static bool ieq(const char *a, const char *b) { return strcasecmp(a, b) == 0; }


/* (v|iter)?\d+([.]\d+)* */
static bool re_version(const char *s)
{
    if (strncasecmp(s, "iter", 4) == 0 && isdigit((unsigned char)s[4]))
        s += 4;
    else if ((s[0] == 'v' || s[0] == 'V') && isdigit((unsigned char)s[1]))
        s += 1;
    size_t n = digits(s);
    if (!n)
        return false;
    s += n;
    while (*s == '.') {
        n = digits(s + 1);
        if (!n)
            return false;
        s += 1 + n;
    }
    return *s == 0;
}

static bool is_word(int c) { return isalnum(c) || c == '_'; }

/* i?q\d(_\w)*|b?fp?(16|32) */
static bool re_type(const char *s)
{
    const char *p = s;
    if (*p == 'i' || *p == 'I')
        p++;
    if ((*p == 'q' || *p == 'Q') && isdigit((unsigned char)p[1])) {
        p += 2;
        while (p[0] == '_' && p[1] && is_word((unsigned char)p[1]))
            p += 2;
        if (*p == 0)
            return true;
    }
    p = s;
    if (*p == 'b' || *p == 'B')
        p++;
    if (*p != 'f' && *p != 'F')
        return false;
    p++;
    if (*p == 'p' || *p == 'P')
        p++;
    return strcmp(p, "16") == 0 || strcmp(p, "32") == 0;
}

static bool is_kmbt(int c) { return c && strchr("KMBTkmbt", c) != NULL; }

/* \d+([._]\d+)?[KMBT]\d? from p to the end */
static bool re_size_tail(const char *p)
{
    size_t n = digits(p);
    if (!n)
        return false;
    p += n;
    if (*p == '.' || *p == '_') {
        n = digits(p + 1);
        if (!n)
            return false;
        p += 1 + n;
    }
    if (!is_kmbt((unsigned char)*p))
        return false;
    p++;
    if (isdigit((unsigned char)*p))
        p++;
    return *p == 0;
}

/* (([A]|\d+[x])?\d+([._]\d+)?[KMBT][\d]?|small|mini|medium|large|x?xl) */
static bool re_size(const char *s)
{
    if (ieq(s, "small") || ieq(s, "mini") || ieq(s, "medium") || ieq(s, "large") || ieq(s, "xl") || ieq(s, "xxl"))
        return true;
    if (re_size_tail(s))
        return true;
    if ((s[0] == 'a' || s[0] == 'A') && re_size_tail(s + 1))
        return true;
    size_t n = digits(s);
    return n && (s[n] == 'x' || s[n] == 'X') && re_size_tail(s + n + 1);
}

/* A\d+([._]\d+)?[KMBT][\d]? */
static bool re_active(const char *s) { return (s[0] == 'a' || s[0] == 'A') && re_size_tail(s + 1); }

static void normalize_size(char *l)
{
    for (char *p = l; *p; p++)
        if (*p == '_')
            *p = '.';
    size_t n = strlen(l);
    if (n >= 2 && isdigit((unsigned char)l[n - 1])) { /* bloom-7b1 -> 7.1b */
        char a = l[n - 2], b = l[n - 1];
        l[n - 2] = '.';
        l[n - 1] = b;
        l[n] = a;
        l[n + 1] = 0;
        n++;
    }
    if (n > 1 && isdigit((unsigned char)l[n - 2]) && strchr("kmbt", l[n - 1]))
        l[n - 1] = (char)toupper((unsigned char)l[n - 1]);
}

/* float(label[:-1]) * 1000 ** " KMBT".find(label[-1]); false when not a number */
static bool size_params(const char *l, double *out)
{
    size_t n = strlen(l);
    if (n < 2)
        return false;
    char num[MODEL_ID_BUF];
    if (n - 1 >= sizeof num)
        return false;
    memcpy(num, l, n - 1);
    num[n - 1] = 0;
    for (size_t i = 0; i < n - 1; i++)
        if (!isdigit((unsigned char)num[i]) && num[i] != '.')
            return false;
    char *end;
    double v = strtod(num, &end);
    if (*end)
        return false;
    const char *f = strchr(" KMBT", l[n - 1]);
    int pos = f ? (int)(f - " KMBT") : -1;
    *out = v * pow(1000.0, pos);
    return true;
}

/* Python's str.title() on ASCII: a letter after a non-letter is upper-cased, others lowered. */
static void py_title(char *w)
{
    bool prev_cased = false;
    for (char *p = w; *p; p++) {
        if (isalpha((unsigned char)*p)) {
            *p = (char)(prev_cased ? tolower((unsigned char)*p) : toupper((unsigned char)*p));
            prev_cased = true;
        } else {
            prev_cased = false;
        }
    }
}

static bool py_islower(const char *w)
{
    bool cased = false;
    for (; *w; w++) {
        if (isupper((unsigned char)*w))
            return false;
        if (islower((unsigned char)*w))
            cased = true;
    }
    return cased;
}

/* Metadata.id_to_title into out (size n). */
static void id_to_title(const char *id, char *out, size_t n)
{
    char *tmp = strdup(id);
    size_t o = 0;
    out[0] = 0;
    if (!tmp)
        return;
    for (char *p = tmp; *p; p++)
        if (*p == '-')
            *p = ' ';
    char *save = NULL;
    for (char *w = strtok_r(tmp, " \t\n\r\f\v", &save); w; w = strtok_r(NULL, " \t\n\r\f\v", &save)) {
        /* ^(v\d+(?:\.\d+)*|\d.*)$ */
        bool keep = isdigit((unsigned char)w[0]) || (w[0] == 'v' && isdigit((unsigned char)w[1]) && re_version(w));
        if (py_islower(w) && !keep)
            py_title(w);
        int k = snprintf(out + o, n - o, "%s%s", o ? " " : "", w);
        if (k < 0 || (size_t)k >= n - o)
            break;
        o += (size_t)k;
    }
    free(tmp);
}

typedef struct {
    char name[MODEL_ID_BUF], org[MODEL_ID_BUF], basename[MODEL_ID_BUF], finetune[MODEL_ID_BUF],
        version[MODEL_ID_BUF], size_label[MODEL_ID_BUF];
    bool has_name, has_org, has_basename, has_finetune, has_version, has_size;
} model_id;

/* The parts of the kinds in want (and none in exclude) joined with '-' into out[n], which
 * MODEL_ID_BUF always holds (see MODEL_ID_MAX). */
static void join_parts(char *const *parts, const int *types, size_t np, int want, int exclude, bool dedup, char *out,
                       size_t n, bool *has)
{
    size_t o = 0;
    out[0] = 0;
    *has = false;
    for (size_t i = 0; i < np; i++) {
        if (!(types[i] & want) || (types[i] & exclude))
            continue;
        bool dup = false;
        for (size_t j = 0; dedup && j < i; j++)
            if ((types[j] & want) && !(types[j] & exclude) && strcmp(parts[j], parts[i]) == 0)
                dup = true;
        if (dup)
            continue;
        int k = snprintf(out + o, n - o, "%s%s", *has ? "-" : "", parts[i]);
        if (k > 0 && (size_t)k < n - o)
            o += (size_t)k;
        *has = true;
    }
}

/* Metadata.get_model_id_components for an id of at most MODEL_ID_MAX bytes. */
static void model_id_components(const char *mid, int64_t total_params, model_id *m)
{
    memset(m, 0, sizeof *m);
    if (strlen(mid) > MODEL_ID_MAX)
        return;
    if (strchr(mid, ' ')) {
        snprintf(m->name, sizeof m->name, "%s", mid);
        m->has_name = true;
        return;
    }
    const char *full = mid;
    const char *slash = strchr(mid, '/');
    if (slash) {
        size_t ol = (size_t)(slash - mid);
        if (ol > 0 && mid[0] != '.' && ol < sizeof m->org) {
            memcpy(m->org, mid, ol);
            m->org[ol] = 0;
            m->has_org = true;
        }
        full = slash + 1;
    }
    snprintf(m->name, sizeof m->name, "%s", full);
    m->has_name = true;
    /* the non-empty '-'-separated parts, each followed by its NUL and one spare byte for
     * normalize_size: at most MODEL_ID_MAX + 2 * MODEL_ID_PARTS <= MODEL_ID_BUF bytes */
    char store[MODEL_ID_BUF];
    char *parts[MODEL_ID_PARTS];
    int types[MODEL_ID_PARTS] = {0};
    size_t np = 0, used = 0;
    for (const char *p = full; *p;) {
        size_t len = strcspn(p, "-");
        if (len > 0) {
            parts[np] = store + used;
            memcpy(parts[np], p, len);
            parts[np][len] = 0;
            used += len + 2;
            np++;
        }
        p += len;
        if (*p == '-')
            p++;
    }
    for (size_t i = 0; i < np; i++) {
        char *part = parts[i];
        if (re_version(part)) {
            types[i] |= T_VERSION;
        } else if (re_type(part)) {
            types[i] |= T_TYPE;
            for (char *c = part; *c; c++)
                *c = (char)toupper((unsigned char)*c);
        } else if (i > 0 && re_size(part)) {
            normalize_size(part);
            double lp, np2;
            if (total_params != 0 && size_params(part, &lp)) {
                char next[MODEL_ID_MAX + 2] = "";
                bool follows = false;
                if (i + 1 < np) {
                    memcpy(next, parts[i + 1], strlen(parts[i + 1]) + 1);
                    normalize_size(next);
                    follows = re_active(next) && size_params(next + 1, &np2) &&
                              fabs(np2 - (double)llabs(total_params)) <= (double)(7 * llabs(total_params) / 8);
                }
                if (!follows && ((total_params < 0 && lp < (double)(llabs(total_params) / 8)) ||
                                 (total_params > 0 && fabs(lp - (double)total_params) > (double)(7 * total_params / 8)))) {
                    types[i] |= T_FINETUNE;
                    size_t n = strlen(part);
                    part[n - 1] = (char)tolower((unsigned char)part[n - 1]);
                }
            }
            if (!types[i])
                types[i] |= T_SIZE;
        } else if (i > 0 && (ieq(part, "chat") || ieq(part, "instruct") || ieq(part, "vision") || ieq(part, "lora"))) {
            types[i] |= T_FINETUNE;
        }
    }
    /* word-based size labels give way to number-based ones */
    bool numeric = false;
    for (size_t i = 0; i < np; i++)
        if ((types[i] & T_SIZE) && strpbrk(parts[i], "0123456789"))
            numeric = true;
    if (numeric)
        for (size_t i = 0; i < np; i++) {
            bool alpha = true;
            for (const char *c = parts[i]; *c; c++)
                if (!isalpha((unsigned char)*c))
                    alpha = false;
            if ((types[i] & T_SIZE) && alpha)
                types[i] &= ~T_SIZE;
        }
    bool at_start = true;
    for (size_t i = 0; i < np; i++) {
        if (at_start && ((types[i] == 0 && (isalpha((unsigned char)parts[i][0]) || (unsigned char)parts[i][0] >= 0x80)) ||
                         (types[i] & T_VERSION))) {
            types[i] |= T_BASENAME;
        } else {
            at_start = false;
            if (types[i] == 0)
                types[i] |= T_FINETUNE;
        }
    }
    for (size_t i = np; i-- > 0;) {
        if ((types[i] & T_BASENAME) && (types[i] & ~T_BASENAME))
            types[i] &= ~T_BASENAME;
        else
            break;
    }
    join_parts(parts, types, np, T_BASENAME, 0, false, m->basename, sizeof m->basename, &m->has_basename);
    join_parts(parts, types, np, T_SIZE, 0, true, m->size_label, sizeof m->size_label, &m->has_size);
    join_parts(parts, types, np, T_FINETUNE, 0, false, m->finetune, sizeof m->finetune, &m->has_finetune);
    join_parts(parts, types, np, T_VERSION, T_BASENAME, false, m->version, sizeof m->version, &m->has_version);
    if (!m->has_size && !m->has_finetune && !m->has_version)
        m->has_basename = false;
}

/* gguf-py model_weight_count_rounded_notation(n, 2) */
static void size_notation(int64_t n, char *out, size_t sz)
{
    double v;
    const char *suf;
    if (n >= 1000000000000LL) v = (double)n * 1e-12, suf = "T";
    else if (n >= 1000000000LL) v = (double)n * 1e-9, suf = "B";
    else if (n >= 1000000LL) v = (double)n * 1e-6, suf = "M";
    else v = (double)n * 1e-3, suf = "K";
    char r[64];
    snprintf(r, sizeof r, "%.0f", nearbyint(v));
    const char *d = r;
    while (*d == '0')
        d++;
    int fix = 2 - (int)strlen(d);
    if (fix < 0)
        fix = 0;
    snprintf(out, sz, "%.*f%s", fix, v, suf);
}

/* ---------------------------------------------------------------- metadata */

#define W(call)                                                                                     \
    do {                                                                                            \
        gguf_error ge_ = (call);                                                                    \
        if (ge_ != GGUF_OK) {                                                                       \
            e = inp_fail(msg, ge_ == GGUF_ERR_NOMEM ? INP_ERR_NOMEM : INP_ERR_FORMAT,               \
                         "%s: cannot build metadata: %s", x->dir, gguf_strerror(ge_));              \
            goto out;                                                                               \
        }                                                                                           \
    } while (0)

static bool looks_special(const char *t)
{
    size_t n = strlen(t);
    if (!strcmp(t, "<pad>") || !strcmp(t, "<mask>") || !strcmp(t, "<2mass>") || !strcmp(t, "[@BOS@]"))
        return true;
    if (n >= 4 && !strncmp(t, "<|", 2) && !strcmp(t + n - 2, "|>"))
        return true;
    if (n >= 8 && !strncmp(t, "<\xef\xbd\x9c", 4) && !strcmp(t + n - 4, "\xef\xbd\x9c>")) /* <｜ ... ｜> */
        return true;
    return n >= 8 && !strncmp(t, "<unused", 7) && t[n - 1] == '>';
}

static char *replace_spaces(const char *t) /* U+2581 -> ' ' */
{
    char *o = malloc(strlen(t) + 1), *q = o;
    if (!o)
        return NULL;
    for (const char *p = t; *p;) {
        if (!strncmp(p, "\xe2\x96\x81", 3)) {
            *q++ = ' ';
            p += 3;
        } else {
            *q++ = *p++;
        }
    }
    *q = 0;
    return o;
}

/* Vocabulary arrays per _create_vocab_sentencepiece. */
typedef struct {
    int64_t n;
    const char **text;
    char **owned;
    float *score;
    int32_t *type;
} vocab;

static void vocab_free(vocab *v)
{
    if (v->owned)
        for (int64_t i = 0; i < v->n; i++)
            free(v->owned[i]);
    free(v->owned);
    free(v->text);
    free(v->score);
    free(v->type);
}

static inp_error vocab_set(vocab *v, int64_t id, const char *text, float score, int32_t type, char *msg)
{
    char *c = strdup(text);
    if (!c)
        return inp_fail(msg, INP_ERR_NOMEM, "out of memory");
    free(v->owned[id]);
    v->owned[id] = c;
    v->text[id] = c;
    v->score[id] = score;
    v->type[id] = type;
    return INP_OK;
}

static inp_error build_vocab(inp_source *s, ctx *x, vocab *v, char *msg)
{
    char *tp = join(x->dir, "tokenizer.model");
    if (!tp)
        return inp_fail(msg, INP_ERR_NOMEM, "out of memory");
    tok_spm_model *m = NULL;
    inp_error e = inp_error_from_tok(tok_spm_load_file(tp, &m, msg));
    if (e == INP_OK)
        e = inp_add_file(s, tp, msg);
    if (e != INP_OK)
        goto out;
    int64_t V = x->hp.n_vocab, np = tok_spm_n_pieces(m);
    if (np > V) {
        e = inp_fail(msg, INP_ERR_MODEL, "%s: %lld pieces, more than config.json's vocab_size %lld", tp,
                     (long long)np, (long long)V);
        goto out;
    }
    v->n = V;
    v->text = calloc((size_t)V, sizeof *v->text);
    v->owned = calloc((size_t)V, sizeof *v->owned);
    v->score = calloc((size_t)V, sizeof *v->score);
    v->type = calloc((size_t)V, sizeof *v->type);
    if (!v->text || !v->owned || !v->score || !v->type) {
        e = inp_fail(msg, INP_ERR_NOMEM, "out of memory for the vocabulary");
        goto out;
    }
    for (int64_t i = 0; i < V; i++) {
        if (i < np) {
            size_t len;
            const char *p = tok_spm_piece(m, i, &len);
            if (strlen(p) != len) {
                e = inp_fail(msg, INP_ERR_UNSUPPORTED, "%s: piece %lld contains a NUL byte", tp, (long long)i);
                goto out;
            }
            if ((e = vocab_set(v, i, p, tok_spm_score(m, i), tok_spm_token_type(m, i), msg)) != INP_OK)
                goto out;
        } else {
            char pad[TOK_SPM_PAD_TEXT_SIZE];
            tok_spm_pad_text(i, pad);
            if ((e = vocab_set(v, i, pad, -10000.0f, TOK_SPM_TOKEN_UNUSED, msg)) != INP_OK)
                goto out;
        }
    }
    /* added_tokens.json: {text: id} */
    char *ap = join(x->dir, "added_tokens.json");
    if (!ap) {
        e = inp_fail(msg, INP_ERR_NOMEM, "out of memory");
        goto out;
    }
    e = load_json(s, ap, JSON_CAP, false, &x->added, msg);
    if (e == INP_OK && x->added) {
        const char *k;
        json_t *j;
        json_object_foreach(x->added, k, j) {
            char b[INP_SHOWN_SIZE];
            if (!json_is_integer(j) || json_integer_value(j) < 0) {
                e = inp_fail(msg, INP_ERR_FORMAT, "%s: id of '%s' is not a non-negative integer", ap, shown(k, b));
                break;
            }
            if (json_integer_value(j) >= V)
                continue; /* llama.cpp ignores out-of-range ids */
            if ((e = vocab_set(v, json_integer_value(j), k, -1000.0f, TOK_SPM_TOKEN_USER_DEFINED, msg)) != INP_OK)
                break;
        }
    }
    free(ap);
    if (e != INP_OK)
        goto out;
    /* tokenizer_config.json added_tokens_decoder: {"id": {"content": ..., "special": ...}} */
    json_t *atd = x->tok_config ? json_object_get(x->tok_config, "added_tokens_decoder") : NULL;
    if (atd && json_is_object(atd)) {
        const char *k;
        json_t *j;
        json_object_foreach(atd, k, j) {
            char b[INP_SHOWN_SIZE];
            char *end;
            errno = 0;
            long long id = strtoll(k, &end, 10);
            json_t *content = json_object_get(j, "content");
            if (!*k || *end || errno || id < 0) {
                e = inp_fail(msg, INP_ERR_FORMAT, "%s/tokenizer_config.json: added_tokens_decoder key '%s' is not a token id",
                             x->dir, shown(k, b));
                goto out;
            }
            if (id >= V) {
                e = inp_fail(msg, INP_ERR_MODEL, "%s/tokenizer_config.json: added token id %lld is beyond vocab_size %lld",
                             x->dir, id, (long long)V);
                goto out;
            }
            if (!json_is_string(content)) {
                e = inp_fail(msg, INP_ERR_FORMAT, "%s/tokenizer_config.json: added token %lld has no \"content\" string",
                             x->dir, id);
                goto out;
            }
            const char *txt = json_string_value(content);
            if (json_is_true(json_object_get(j, "special")) || looks_special(txt)) {
                e = vocab_set(v, id, txt, -1000.0f, TOK_SPM_TOKEN_CONTROL, msg);
            } else {
                char *r = replace_spaces(txt);
                e = r ? vocab_set(v, id, r, -1000.0f, TOK_SPM_TOKEN_USER_DEFINED, msg)
                      : inp_fail(msg, INP_ERR_NOMEM, "out of memory");
                free(r);
            }
            if (e != INP_OK)
                goto out;
        }
    }
out:
    tok_spm_free(m);
    free(tp);
    return e;
}

static int64_t tensor_params(const inp_source *s)
{
    int64_t n = 0;
    for (int64_t i = 0; i < s->n; i++)
        n += s->t[i].ne[0] * s->t[i].ne[1] * s->t[i].ne[2] * s->t[i].ne[3];
    return n;
}

/* The last component of dir (resolved) into out[n]; false when it does not fit. */
static bool dir_basename(const char *dir, char *out, size_t n)
{
    char *rp = realpath(dir, NULL);
    const char *p = rp ? rp : dir;
    size_t len = strlen(p);
    while (len > 1 && p[len - 1] == '/')
        len--;
    size_t st = len;
    while (st > 0 && p[st - 1] != '/')
        st--;
    size_t k = len - st;
    bool fits = k < n;
    if (fits) {
        memcpy(out, p + st, k);
        out[k] = 0;
    }
    free(rp);
    return fits;
}

/* general.*: architecture, type and the names gguf-py derives from the model id */
static inp_error put_general(gguf_writer *w, const inp_source *s, ctx *x, char *msg)
{
    inp_error e = INP_OK;
    int64_t total = tensor_params(s);
    char name[MODEL_ID_BUF] = "", org[MODEL_ID_BUF] = "", basename[MODEL_ID_BUF] = "", finetune[MODEL_ID_BUF] = "",
         version[MODEL_ID_BUF] = "", size_label[MODEL_ID_BUF] = "";
    bool h_name = false, h_org = false, h_base = false, h_fine = false, h_ver = false, h_size = false;
    model_id m;
    json_t *nop = json_object_get(x->config, "_name_or_path");
    const char *ids[2] = {NULL, NULL};
    char dname[MODEL_ID_MAX + 1];
    if (json_is_string(nop)) {
        int slashes = 0;
        for (const char *p = json_string_value(nop); *p; p++)
            slashes += *p == '/';
        if (slashes <= 1)
            ids[0] = json_string_value(nop);
    }
    if (dir_basename(x->dir, dname, sizeof dname))
        ids[1] = dname;
    for (int k = 0; k < 2; k++) {
        if (!ids[k])
            continue;
        model_id_components(ids[k], total, &m);
        if (!h_name && m.has_name) id_to_title(m.name, name, sizeof name), h_name = true;
        if (!h_org && m.has_org) id_to_title(m.org, org, sizeof org), h_org = true;
        if (!h_base && m.has_basename) snprintf(basename, sizeof basename, "%s", m.basename), h_base = true;
        if (!h_fine && m.has_finetune) snprintf(finetune, sizeof finetune, "%s", m.finetune), h_fine = true;
        if (!h_ver && m.has_version) snprintf(version, sizeof version, "%s", m.version), h_ver = true;
        if (!h_size && m.has_size) snprintf(size_label, sizeof size_label, "%s", m.size_label), h_size = true;
    }
    if (!h_size && total > 0) {
        size_notation(total, size_label, sizeof size_label);
        h_size = true;
    }
    W(gguf_writer_set_str(w, "general.architecture", x->arch->name));
    W(gguf_writer_set_str(w, "general.type", "model"));
    W(gguf_writer_set_str(w, "general.name", name));
    if (h_ver) W(gguf_writer_set_str(w, "general.version", version));
    if (h_org) W(gguf_writer_set_str(w, "general.organization", org));
    if (h_fine) W(gguf_writer_set_str(w, "general.finetune", finetune));
    if (h_base) W(gguf_writer_set_str(w, "general.basename", basename));
    if (h_size) W(gguf_writer_set_str(w, "general.size_label", size_label));
out:
    return e;
}

/* {arch}.* around general.file_type, in the description's order */
static inp_error put_arch_keys(gguf_writer *w, const inp_source *s, ctx *x, char *msg)
{
    inp_error e = INP_OK;
    const arch_hparams *c = &x->hp;
    for (size_t i = 0; i < x->arch->n_keys; i++) {
        const arch_key *k = &x->arch->keys[i];
        if (k->id == ARCH_HP_FILE_TYPE) {
            uint32_t ftype = 0;
            for (int64_t t = 0; t < s->n; t++)
                if (s->t[t].n_dims >= 2) {
                    ftype = s->t[t].type == GGUF_BF16 ? 32 : s->t[t].type == GGUF_F16 ? 1 : 0;
                    break;
                }
            W(gguf_writer_set_u32(w, "general.file_type", ftype));
            continue;
        }
        if (!arch_key_written(k, c))
            continue;
        char key[GGUF_MAX_NAME];
        snprintf(key, sizeof key, "%s.%s", x->arch->name, k->gguf);
        double v = arch_hp_get(c, k->id);
        if (k->type == ARCH_KV_STR) /* rope.scaling.type: written for linear scaling only */
            W(gguf_writer_set_str(w, key, "linear"));
        else if (k->type == ARCH_KV_F32)
            W(gguf_writer_set_f32(w, key, (float)v));
        else
            W(gguf_writer_set_u32(w, key, (uint32_t)v));
    }
    W(gguf_writer_set_u32(w, "general.quantization_version", 2));
out:
    return e;
}

/* tokenizer.ggml.* vocabulary (SentencePiece) */
static inp_error put_vocab(gguf_writer *w, ctx *x, const vocab *v, char *msg)
{
    inp_error e = INP_OK;
    json_t *tc = x->tok_config;
    json_t *aps = tc && x->arch->vocab_add_prefix_space ? json_object_get(tc, "add_prefix_space") : NULL;
    if (json_is_boolean(aps))
        W(gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", json_is_true(aps)));
    W(gguf_writer_set_str(w, "tokenizer.ggml.model", "llama"));
    W(gguf_writer_set_str(w, "tokenizer.ggml.pre", "default"));
    W(gguf_writer_set_str_array(w, "tokenizer.ggml.tokens", v->text, (uint64_t)v->n));
    W(gguf_writer_set_array(w, "tokenizer.ggml.scores", GGUF_VAL_F32, v->score, (uint64_t)v->n));
    W(gguf_writer_set_array(w, "tokenizer.ggml.token_type", GGUF_VAL_I32, v->type, (uint64_t)v->n));
out:
    return e;
}

/* Special token ids (gguf-py SpecialVocab), add_*_token flags, a string chat template */
static inp_error put_special(gguf_writer *w, ctx *x, char *msg)
{
    inp_error e = INP_OK;
    const arch_hparams *c = &x->hp;
    json_t *tc = x->tok_config;
    /* first *_token strings resolved through
     * tokenizer.json's added_tokens, then config.json's *_token_id, first value wins */
    static const char *const types[] = {"bos", "eos", "unk", "sep", "pad", "cls", "mask"};
    static const char *const keys[] = {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                                       "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.seperator_token_id",
                                       "tokenizer.ggml.padding_token_id", NULL, "tokenizer.ggml.mask_token_id"};
    enum { NT = 7 };
    int64_t id_of[NT];
    int order[NT], n_order = 0;
    for (int k = 0; k < NT; k++)
        id_of[k] = -1;
    json_t *added = x->tok_json ? json_object_get(x->tok_json, "added_tokens") : NULL;
    if (tc && json_is_array(added)) {
        for (int k = 0; k < NT; k++) {
            char key[32];
            snprintf(key, sizeof key, "%s_token", types[k]);
            json_t *ent = json_object_get(tc, key);
            const char *content = json_is_string(ent) ? json_string_value(ent)
                                  : json_is_object(ent) && json_is_string(json_object_get(ent, "content"))
                                      ? json_string_value(json_object_get(ent, "content"))
                                      : NULL;
            if (!content)
                continue;
            for (size_t a = 0; a < json_array_size(added); a++) {
                json_t *at = json_array_get(added, a);
                json_t *ac = json_object_get(at, "content");
                if (json_is_string(ac) && strcmp(json_string_value(ac), content) == 0) {
                    json_t *aid = json_object_get(at, "id");
                    if (json_is_integer(aid)) {
                        if (json_integer_value(aid) < 0) {
                            e = inp_fail(msg, INP_ERR_FORMAT, "%s/tokenizer.json: negative id for '%s'", x->dir, key);
                            goto out;
                        }
                        if (json_integer_value(aid) < c->n_vocab) {
                            id_of[k] = json_integer_value(aid);
                            order[n_order++] = k;
                        }
                    }
                    break;
                }
            }
        }
    }
    for (int k = 0; k < NT; k++) {
        char key[32];
        snprintf(key, sizeof key, "%s_token_id", types[k]);
        json_t *j = json_object_get(x->config, key);
        if (!json_is_integer(j))
            continue;
        if (json_integer_value(j) < 0) {
            e = inp_fail(msg, INP_ERR_FORMAT, "%s: \"%s\" is negative", x->cfg_path, key);
            goto out;
        }
        if (id_of[k] >= 0 || json_integer_value(j) >= c->n_vocab)
            continue;
        id_of[k] = json_integer_value(j);
        order[n_order++] = k;
    }
    for (int i = 0; i < n_order; i++)
        if (keys[order[i]]) /* llama.cpp has no key for cls */
            W(gguf_writer_set_u32(w, keys[order[i]], (uint32_t)id_of[order[i]]));
    if (tc) {
        static const char *const add_keys[] = {"tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_eos_token", NULL,
                                               "tokenizer.ggml.add_sep_token"};
        for (int k = 0; k < 4; k++) {
            char key[32];
            snprintf(key, sizeof key, "add_%s_token", types[k]);
            json_t *j = json_object_get(tc, key);
            if (json_is_boolean(j) && add_keys[k])
                W(gguf_writer_set_bool(w, add_keys[k], json_is_true(j)));
        }
        json_t *ct = json_object_get(tc, "chat_template");
        if (json_is_string(ct))
            W(gguf_writer_set_str(w, "tokenizer.chat_template", json_string_value(ct)));
    }
out:
    return e;
}

/* chat_template.jinja when tokenizer_config.json has no chat_template */
static inp_error put_chat_template_file(gguf_writer *w, inp_source *s, ctx *x, char *msg)
{
    inp_error e = INP_OK;
    json_t *tc = x->tok_config;
    if (tc && !json_object_get(tc, "chat_template")) { /* llama.cpp reads it only with a tokenizer_config */
        char *jp = join(x->dir, "chat_template.jinja");
        FILE *f = jp ? fopen(jp, "rb") : NULL;
        if (f) {
            struct stat st;
            char *txt = NULL;
            if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
                e = inp_fail(msg, INP_ERR_IO, "%s: not a regular file", jp);
            } else if ((uint64_t)st.st_size > GGUF_MAX_STRING) {
                e = inp_fail(msg, INP_ERR_LIMIT, "%s: %llu bytes, more than the cap of %u", jp,
                             (unsigned long long)st.st_size, GGUF_MAX_STRING);
            } else if (!(txt = malloc((size_t)st.st_size + 1))) {
                e = inp_fail(msg, INP_ERR_NOMEM, "%s: out of memory", jp);
            } else if (fread(txt, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
                e = inp_fail(msg, INP_ERR_IO, "%s: read failed", jp);
            } else if (memchr(txt, 0, (size_t)st.st_size)) {
                e = inp_fail(msg, INP_ERR_FORMAT, "%s: contains a NUL byte", jp);
            } else {
                txt[st.st_size] = 0;
                gguf_error ge = gguf_writer_set_str(w, "tokenizer.chat_template", txt);
                if (ge != GGUF_OK)
                    e = inp_fail(msg, INP_ERR_FORMAT, "%s: cannot store the chat template: %s", jp, gguf_strerror(ge));
                else
                    e = inp_add_file(s, jp, msg);
            }
            free(txt);
            fclose(f);
        }
        free(jp);
        if (e != INP_OK)
            goto out;
    }
out:
    return e;
}

static inp_error build_metadata(inp_source *s, ctx *x, char *msg)
{
    gguf_writer *w = gguf_writer_create();
    vocab v = {0};
    void *buf = NULL;
    size_t size = 0;
    inp_error e = INP_OK;
    if (!w)
        return inp_fail(msg, INP_ERR_NOMEM, "out of memory");
    if (x->hf) { /* tok_hf writes every tokenizer key, in the converter's order */
        unsigned fl = x->arch->vocab_add_prefix_space ? TOK_HF_KV_ADD_SPACE_PREFIX : 0;
        if ((e = put_general(w, s, x, msg)) || (e = put_arch_keys(w, s, x, msg)) ||
            (e = inp_error_from_tok(tok_hf_write_kv(x->hf, w, fl, msg))))
            goto out;
    } else if ((e = build_vocab(s, x, &v, msg)) || (e = put_general(w, s, x, msg)) ||
               (e = put_arch_keys(w, s, x, msg)) || (e = put_vocab(w, x, &v, msg)) || (e = put_special(w, x, msg)) ||
               (e = put_chat_template_file(w, s, x, msg))) {
        goto out;
    }
    char gm[GGUF_MSG_SIZE] = "";
    gguf_error ge = gguf_writer_kv_to_memory(w, &buf, &size, gm);
    if (ge != GGUF_OK) {
        e = inp_fail(msg, ge == GGUF_ERR_NOMEM ? INP_ERR_NOMEM : INP_ERR_FORMAT, "%s: cannot build metadata: %s",
                     x->dir, gm);
        goto out;
    }
    ge = gguf_open_memory(buf, size, &s->meta, gm);
    if (ge != GGUF_OK) {
        e = inp_fail(msg, INP_ERR_FORMAT, "%s: metadata does not read back: %s", x->dir, gm);
        goto out;
    }
    s->meta_buf = buf;
    buf = NULL;
out:
    free(buf);
    vocab_free(&v);
    gguf_writer_free(w);
    return e;
}

/* ---------------------------------------------------------------- entry */

/* SentencePiece when tokenizer.model exists (its side files loaded into x), else the
 * tokenizer.json BPE tokenizer (x->hf), else refused. */
static inp_error open_tokenizer(inp_source *s, ctx *x, char *msg)
{
    char *mp = join(x->dir, "tokenizer.model"), *tcp = join(x->dir, "tokenizer_config.json"),
         *tjp = join(x->dir, "tokenizer.json");
    inp_error e = INP_OK;
    if (!mp || !tcp || !tjp) {
        e = inp_fail(msg, INP_ERR_NOMEM, "out of memory");
    } else if (file_exists(mp)) {
        if (x->opts->tokenizer_pre)
            e = inp_fail(msg, INP_ERR_ARG, "%s: a pre-tokenizer name (--tokenizer-pre) applies only to a byte-level BPE "
                         "tokenizer.json, and this checkpoint's tokenizer is SentencePiece", mp);
        else if ((e = load_json(s, tcp, JSON_CAP, false, &x->tok_config, msg)) == INP_OK && x->tok_config)
            e = load_json(s, tjp, TOKENIZER_JSON_CAP, false, &x->tok_json, msg);
    } else if (file_exists(tjp)) {
        tok_hf_options to = {.vocab_size = x->hp.n_vocab, .pre = x->opts->tokenizer_pre};
        e = inp_error_from_tok(tok_hf_load(x->dir, &to, &x->hf, msg));
        for (size_t i = 0; e == INP_OK && i < tok_hf_n_files(x->hf); i++) {
            bool listed = false; /* config.json is read by both */
            for (size_t j = 0; j < s->n_files && !listed; j++)
                listed = strcmp(s->files[j], tok_hf_file(x->hf, i)) == 0;
            if (!listed)
                e = inp_add_file(s, tok_hf_file(x->hf, i), msg);
        }
    } else {
        e = inp_fail(msg, INP_ERR_MISSING, "%s: not found, nor tokenizer.json (a SentencePiece or a byte-level BPE "
                     "tokenizer is needed)", mp);
    }
    free(mp);
    free(tcp);
    free(tjp);
    return e;
}

inp_error inp_ckpt_open(const char *dir, const inp_open_opts *opts, inp_source *s, char *msg)
{
    ctx x = {.dir = dir, .opts = opts};
    inp_error e = INP_OK;
    if (!(x.cfg_path = join(dir, "config.json"))) {
        e = inp_fail(msg, INP_ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((e = parse_config(s, &x, msg)) != INP_OK)
        goto out;
    if ((e = open_weights(s, &x, msg)) != INP_OK)
        goto out;
    if ((e = map_tensors(s, &x, msg)) != INP_OK)
        goto out;
    if ((e = open_tokenizer(s, &x, msg)) != INP_OK)
        goto out;
    e = build_metadata(s, &x, msg);
out:
    tok_hf_free(x.hf);
    json_decref(x.config);
    json_decref(x.tok_config);
    json_decref(x.tok_json);
    json_decref(x.added);
    for (size_t i = 0; i < x.n_shard_names; i++)
        free(x.shard_names[i]);
    free(x.shard_names);
    free(x.cfg_path);
    return e;
}
