/* gguf-py's SpecialVocab (vocab.py, _try_load_from_tokenizer_json and _try_load_from_config_json)
 * as _set_vocab_gpt2 uses it: special token ids, add_* flags, chat templates, normalizer flags.
 * Where the Python code would raise (a wrong type where it indexes or calls .get), the file is
 * refused with TOK_ERR_FORMAT. */
#include "tokenizer/tok_hf_internal.h"
#include "tokenizer/tok_internal.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_name[ST_N] = {"bos", "eos", "unk", "sep", "pad", "cls", "mask", "eot", "eom"};

typedef struct {
    tok_hf *h;
    const char *path;        /* tokenizer.json, for messages */
    int kinds[ST_N], n_kinds; /* special_token_types */
    const json_t *entry[ST_N]; /* tokenizer_config's <kind>_token, as the code rewrites it */
    bool tc;                 /* tokenizer_config is truthy (a non-empty object) */
} sv_state;

static void set_add(tok_hf *h, int kind, bool v)
{
    if (h->add[kind] < 0)
        h->add_kind[h->n_add++] = kind;
    h->add[kind] = v;
}

/* _set_special_token: ints only (a JSON boolean counts, as Python's bool is an int); the first
 * value of a kind wins. */
static tok_error set_id(sv_state *s, int kind, const json_t *v, const char *where, char *msg)
{
    json_int_t id;
    double r = json_is_real(v) ? json_real_value(v) : 0.5;
    if (json_is_integer(v))
        id = json_integer_value(v);
    else if ((s->h->real_ints & 2) && r >= -9007199254740992.0 && r <= 9007199254740992.0 && r == (double)(json_int_t)r)
        id = (json_int_t)r; /* config.json read with integers as reals */
    else if (json_is_boolean(v))
        id = json_is_true(v);
    else
        return TOK_OK;
    if (id < 0 || id > (json_int_t)UINT32_MAX)
        return tok_hf_fail_(msg, TOK_ERR_FORMAT, "%s: %s token id %" JSON_INTEGER_FORMAT " is %s", where,
                            kind_name[kind], id, id < 0 ? "negative" : "beyond 2^32");
    if (s->h->id[kind] >= 0)
        return TOK_OK;
    s->h->id[kind] = id;
    s->h->id_kind[s->h->n_id++] = kind;
    return TOK_OK;
}

static bool has_kind(const sv_state *s, int kind)
{
    for (int i = 0; i < s->n_kinds; i++)
        if (s->kinds[i] == kind)
            return true;
    return false;
}

/* item.get('<field>', {}).get('id'): *id NULL when absent. */
static tok_error tmpl_id(const sv_state *s, const json_t *item, const char *field, const json_t **id, char *msg)
{
    *id = NULL;
    if (!json_is_object(item))
        return tok_hf_fail_(msg, TOK_ERR_FORMAT, "%s: a TemplateProcessing entry is not an object", s->path);
    const json_t *f = json_object_get(item, field);
    if (!f)
        return TOK_OK;
    if (!json_is_object(f))
        return tok_hf_fail_(msg, TOK_ERR_FORMAT, "%s: a TemplateProcessing %s is not an object", s->path, field);
    *id = json_object_get(f, "id");
    return TOK_OK;
}

static bool eq(const json_t *a, const json_t *b)
{
    return a && b && json_equal((json_t *)a, (json_t *)b);
}

/* The "pair" template: does it put a separator between A and B? */
static tok_error template_pair(sv_state *s, const json_t *pair, const json_t *first, const json_t *last, char *msg)
{
    size_t n = json_array_size(pair), lo = 0, hi = n;
    const json_t *id;
    tok_error e;
    if (tok_hf_truthy_(first)) {
        if ((e = tmpl_id(s, json_array_get(pair, 0), "SpecialToken", &id, msg)))
            return e;
        lo = eq(id, first) ? 1 : 0;
    }
    if (tok_hf_truthy_(last)) {
        if ((e = tmpl_id(s, json_array_get(pair, n - 1), "SpecialToken", &id, msg)))
            return e;
        hi = eq(id, last) ? n - 1 : n;
    }
    if (hi <= lo)
        return TOK_OK;
    const json_t *a, *b;
    if ((e = tmpl_id(s, json_array_get(pair, lo), "Sequence", &a, msg)) ||
        (e = tmpl_id(s, json_array_get(pair, hi - 1), "Sequence", &b, msg)))
        return e;
    if (!json_is_string(a) || strcmp(json_string_value(a), "A") != 0 || !json_is_string(b) ||
        strcmp(json_string_value(b), "B") != 0 || hi - lo <= 2)
        return TOK_OK;
    lo++;
    hi--; /* the middle: A [sep] [eos] B */
    bool add_sep = false;
    const json_t *sep = s->entry[ST_SEP], *eos = s->entry[ST_EOS];
    if ((e = tmpl_id(s, json_array_get(pair, lo), "SpecialToken", &id, msg)))
        return e;
    if (tok_hf_truthy_(id) && (eq(id, sep) || eq(id, eos)) && !tok_hf_truthy_(last))
        add_sep = true;
    if (hi - lo == 2) {
        if ((e = tmpl_id(s, json_array_get(pair, lo + 1), "SpecialToken", &id, msg)))
            return e;
        if (tok_hf_truthy_(id) && (eq(id, sep) || eq(id, eos)))
            add_sep = true;
    }
    set_add(s->h, ST_SEP, add_sep);
    if (add_sep && !tok_hf_truthy_(sep) && s->tc)
        s->entry[ST_SEP] = eos;
    return TOK_OK;
}

/* TemplateProcessing: BOS/EOS from the single template's first/last special tokens. */
static tok_error template_processing(sv_state *s, const json_t *p, char *msg)
{
    const json_t *single = json_object_get(p, "single"), *pair = json_object_get(p, "pair");
    if ((single && !json_is_array(single)) || (pair && !json_is_array(pair)))
        return tok_hf_fail_(msg, TOK_ERR_FORMAT, "%s: TemplateProcessing single/pair is not a list", s->path);
    const json_t *first = NULL, *last = NULL;
    tok_error e;
    if (json_array_size(single) > 1) {
        if ((e = tmpl_id(s, json_array_get(single, 0), "SpecialToken", &first, msg)))
            return e;
        if (tok_hf_truthy_(first)) {
            if (!s->tc) { /* no tokenizer_config: the code's local bos becomes first */
                s->entry[ST_BOS] = first;
            } else if (!eq(first, s->entry[ST_BOS]) && !eq(first, s->entry[ST_CLS])) {
                if (!tok_hf_truthy_(s->entry[ST_BOS]))
                    s->entry[ST_BOS] = first;
                if (!tok_hf_truthy_(s->entry[ST_CLS]))
                    s->entry[ST_CLS] = first;
            }
            set_add(s->h, ST_BOS, eq(first, s->entry[ST_BOS]) || eq(first, s->entry[ST_CLS]));
        }
        if ((e = tmpl_id(s, json_array_get(single, json_array_size(single) - 1), "SpecialToken", &last, msg)))
            return e;
        if (tok_hf_truthy_(last)) {
            if (!s->tc) {
                s->entry[ST_EOS] = last;
            } else if (!eq(last, s->entry[ST_EOS])) { /* the old eos becomes eot (or eom) */
                if (!has_kind(s, ST_EOT)) {
                    s->kinds[s->n_kinds++] = ST_EOT;
                    s->entry[ST_EOT] = s->entry[ST_EOS];
                } else if (!has_kind(s, ST_EOM)) {
                    s->kinds[s->n_kinds++] = ST_EOM;
                    s->entry[ST_EOM] = s->entry[ST_EOS];
                }
                s->entry[ST_EOS] = last;
            }
            set_add(s->h, ST_EOS, eq(last, s->entry[ST_EOS]));
        }
    }
    return tok_hf_truthy_(pair) ? template_pair(s, pair, first, last, msg) : TOK_OK;
}

static tok_error post_processor(sv_state *s, const json_t *pp, char *msg)
{
    if (!tok_hf_truthy_(pp))
        return TOK_OK;
    if (!json_is_object(pp))
        return tok_hf_fail_(msg, TOK_ERR_FORMAT, "%s: post_processor is not an object", s->path);
    const json_t *list = json_object_get(pp, "processors");
    if (list && !json_is_array(list))
        return tok_hf_fail_(msg, TOK_ERR_FORMAT, "%s: post_processor.processors is not a list", s->path);
    size_t n = list ? json_array_size(list) : 1;
    for (size_t i = 0; i < n; i++) {
        const json_t *p = list ? json_array_get(list, i) : pp;
        if (!json_is_object(p))
            return tok_hf_fail_(msg, TOK_ERR_FORMAT, "%s: a post-processor is not an object", s->path);
        const char *type = json_string_value(json_object_get(p, "type"));
        tok_error e;
        if (type && strcmp(type, "RobertaProcessing") == 0) {
            set_add(s->h, ST_BOS, true);
            set_add(s->h, ST_EOS, true);
            set_add(s->h, ST_SEP, true);
            const char *keys[2] = {"cls", "sep"};
            const int kind[2] = {ST_CLS, ST_SEP}, fallback[2] = {ST_BOS, ST_EOS};
            for (int k = 0; k < 2; k++) {
                if (tok_hf_truthy_(s->entry[kind[k]]) || !s->tc)
                    continue;
                const json_t *v = json_object_get(p, keys[k]);
                if (!v) {
                    s->entry[kind[k]] = s->entry[fallback[k]];
                } else if (!json_is_array(v) || json_array_size(v) == 0) {
                    return tok_hf_fail_(msg, TOK_ERR_FORMAT, "%s: RobertaProcessing %s is not a non-empty list",
                                        s->path, keys[k]);
                } else {
                    s->entry[kind[k]] = json_array_get(v, 0);
                }
            }
        } else if (type && strcmp(type, "TemplateProcessing") == 0) {
            if ((e = template_processing(s, p, msg)) != TOK_OK)
                return e;
        }
    }
    return TOK_OK;
}

/* ---- chat templates ---- */

/* A text file as Python's open(encoding='utf-8').read() gives it: strict UTF-8, "\r\n" and "\r"
 * read as "\n". NUL bytes are refused (a GGUF string here is a C string). */
static tok_error read_text(tok_hf *h, const char *path, bool optional, char **out, char *msg)
{
    size_t len;
    tok_error e = tok_hf_read_(path, GGUF_MAX_STRING, optional, out, &len, msg);
    if (e || !*out)
        return e;
    if (!tok_utf8_valid_(*out, len) || memchr(*out, 0, len)) {
        free(*out);
        *out = NULL;
        return tok_hf_fail_(msg, TOK_ERR_FORMAT, "%s: not UTF-8 text (or holds a NUL byte)", path);
    }
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if ((*out)[i] == '\r') {
            (*out)[o++] = '\n';
            if (i + 1 < len && (*out)[i + 1] == '\n')
                i++;
        } else {
            (*out)[o++] = (*out)[i];
        }
    }
    (*out)[o] = 0;
    return tok_hf_note_file_(h, path, msg);
}

/* Template name as gguf-py filters it: every code point other than [A-Za-z0-9] becomes '_'. */
static char *sanitize(const char *s)
{
    size_t n = strlen(s), o = 0;
    char *r = malloc(n + 1);
    if (!r)
        return NULL;
    for (size_t i = 0; i < n;) {
        char c = s[i];
        bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        r[o++] = alnum ? c : '_';
        (void)tok_utf8_decode_(s, n, &i);
    }
    r[o] = 0;
    return r;
}

static tok_error add_template(tok_hf *h, const char *name, const char *text, char *msg)
{
    if (h->n_tmpl >= TOK_HF_MAX_TEMPLATES + 1)
        return tok_hf_fail_(msg, TOK_ERR_LIMIT, "%s: more than %d chat templates", h->dir, TOK_HF_MAX_TEMPLATES);
    tok_hf_template *t = realloc(h->tmpl, (h->n_tmpl + 1) * sizeof *t);
    if (!t)
        return tok_hf_fail_(msg, TOK_ERR_NOMEM, "out of memory");
    h->tmpl = t;
    char *nm = name ? sanitize(name) : strdup(""), *tx = strdup(text);
    if (!nm || !tx) {
        free(nm);
        free(tx);
        return tok_hf_fail_(msg, TOK_ERR_NOMEM, "out of memory");
    }
    if (strcmp(nm, "default") == 0)
        nm[0] = 0;
    for (size_t i = 0; i < h->n_tmpl; i++) /* a repeated name keeps its place, the later text wins */
        if (strcmp(h->tmpl[i].name, nm) == 0) {
            free(h->tmpl[i].text);
            h->tmpl[i].text = tx;
            free(nm);
            return TOK_OK;
        }
    h->tmpl[h->n_tmpl++] = (tok_hf_template){nm, tx};
    return TOK_OK;
}

/* gguf-py's add_chat_template for a string or a list of {name, template}. */
static tok_error use_template(tok_hf *h, const char *where, const json_t *ct, char *msg)
{
    if (json_is_string(ct)) {
        if (strlen(json_string_value(ct)) != json_string_length(ct))
            return tok_hf_fail_(msg, TOK_ERR_FORMAT, "%s: the chat template holds a NUL character", where);
        return add_template(h, NULL, json_string_value(ct), msg);
    }
    if (!json_is_array(ct))
        return TOK_OK; /* None or a bad type: no template (the converter warns) */
    if (json_array_size(ct) > TOK_HF_MAX_TEMPLATES)
        return tok_hf_fail_(msg, TOK_ERR_LIMIT, "%s: more than %d chat templates", where, TOK_HF_MAX_TEMPLATES);
    for (size_t i = 0; i < json_array_size(ct); i++) {
        const json_t *c = json_array_get(ct, i);
        if (!json_is_object(c))
            return tok_hf_fail_(msg, TOK_ERR_FORMAT, "%s: chat_template[%zu] is not an object", where, i);
        const json_t *name = json_object_get(c, "name"), *tmpl = json_object_get(c, "template");
        if ((name && !json_is_string(name)) || (tmpl && !json_is_null(tmpl) && !json_is_string(tmpl)))
            return tok_hf_fail_(msg, TOK_ERR_FORMAT, "%s: chat_template[%zu] name/template is not a string", where, i);
        if (!name || json_string_length(name) == 0 || !json_is_string(tmpl))
            continue;
        if (strlen(json_string_value(tmpl)) != json_string_length(tmpl) ||
            strlen(json_string_value(name)) != json_string_length(name))
            return tok_hf_fail_(msg, TOK_ERR_FORMAT, "%s: chat_template[%zu] holds a NUL character", where, i);
        tok_error e = add_template(h, json_string_value(name), json_string_value(tmpl), msg);
        if (e)
            return e;
    }
    return TOK_OK;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* chat_template.jinja plus additional_chat_templates/<name>.jinja (name order) as a list. */
static tok_error jinja_templates(tok_hf *h, char *jinja, json_t **alt, char *msg)
{
    char *adir = tok_hf_path_(h->dir, "additional_chat_templates");
    char **names = NULL;
    size_t n = 0;
    tok_error e = TOK_OK;
    DIR *d = adir ? opendir(adir) : NULL;
    for (struct dirent *de; d && (de = readdir(d)) != NULL && !e;) {
        size_t l = strlen(de->d_name);
        if (l <= 6 || strcmp(de->d_name + l - 6, ".jinja") != 0)
            continue;
        char **p = n < TOK_HF_MAX_TEMPLATES ? realloc(names, (n + 1) * sizeof *names) : NULL;
        if (!p) {
            e = n < TOK_HF_MAX_TEMPLATES ? tok_hf_fail_(msg, TOK_ERR_NOMEM, "out of memory")
                                         : tok_hf_fail_(msg, TOK_ERR_LIMIT, "%s: more than %d templates", adir,
                                                        TOK_HF_MAX_TEMPLATES);
            break;
        }
        names = p;
        if (!(names[n] = strdup(de->d_name))) {
            e = tok_hf_fail_(msg, TOK_ERR_NOMEM, "out of memory");
            break;
        }
        n++;
    }
    if (d)
        closedir(d);
    if (!e && n) {
        qsort(names, n, sizeof *names, cmp_str);
        json_t *list = json_array();
        e = list ? TOK_OK : tok_hf_fail_(msg, TOK_ERR_NOMEM, "out of memory");
        if (!e && json_array_append_new(list, json_pack("{s:s,s:s}", "name", "default", "template", jinja)) != 0)
            e = tok_hf_fail_(msg, TOK_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < n && !e; i++) {
            char *p = tok_hf_path_(adir, names[i]), *txt = NULL;
            e = p ? read_text(h, p, false, &txt, msg) : tok_hf_fail_(msg, TOK_ERR_NOMEM, "out of memory");
            names[i][strlen(names[i]) - 6] = 0;
            if (!e && json_array_append_new(list, json_pack("{s:s,s:s}", "name", names[i], "template", txt)) != 0)
                e = tok_hf_fail_(msg, TOK_ERR_NOMEM, "out of memory");
            free(p);
            free(txt);
        }
        if (e)
            json_decref(list);
        else
            *alt = list;
    } else if (!e) {
        *alt = json_string(jinja);
        if (!*alt)
            e = tok_hf_fail_(msg, TOK_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(adir);
    return e;
}

static tok_error chat_template(tok_hf *h, const json_t *tc, const char *tcp, char *msg)
{
    char *jp = tok_hf_path_(h->dir, "chat_template.jinja"), *cp = tok_hf_path_(h->dir, "chat_template.json");
    char *jinja = NULL;
    json_t *alt = NULL, *cj = NULL;
    tok_error e = jp && cp ? read_text(h, jp, true, &jinja, msg) : tok_hf_fail_(msg, TOK_ERR_NOMEM, "out of memory");
    if (!e && jinja) {
        e = jinja_templates(h, jinja, &alt, msg);
    } else if (!e && (e = tok_hf_json_(h, cp, TOK_HF_MAX_SMALL_JSON, true, &cj, msg)) == TOK_OK && cj) {
        if (!json_is_object(cj))
            e = tok_hf_fail_(msg, TOK_ERR_FORMAT, "%s: not a JSON object", cp);
        else if ((alt = json_object_get(cj, "chat_template")) != NULL)
            json_incref(alt);
    }
    if (!e) {
        const json_t *ct = json_object_get(tc, "chat_template"); /* present (even null) wins over the files */
        e = use_template(h, ct ? tcp : jinja ? jp : cp, ct ? ct : alt, msg);
    }
    json_decref(alt);
    json_decref(cj);
    free(jinja);
    free(jp);
    free(cp);
    return e;
}

/* ---- normalizer ---- */

static tok_error normalizer(tok_hf *h, const char *path, const json_t *nm, int depth, char *msg)
{
    if (!json_is_object(nm) || depth > 32)
        return tok_hf_fail_(msg, TOK_ERR_FORMAT, "%s: a normalizer is not an object", path);
    const char *type = json_string_value(json_object_get(nm, "type"));
    if (!type)
        return TOK_OK;
    if (strcmp(type, "Lowercase") == 0) {
        h->lowercase = 1;
    } else if (strcmp(type, "StripAccents") == 0) {
        h->strip_accents = 1;
    } else if (strcmp(type, "BertNormalizer") == 0) {
        if (json_object_get(nm, "lowercase"))
            h->lowercase = tok_hf_truthy_(json_object_get(nm, "lowercase"));
        if (json_object_get(nm, "strip_accents"))
            h->strip_accents = tok_hf_truthy_(json_object_get(nm, "strip_accents"));
    } else if (strcmp(type, "Sequence") == 0) {
        const json_t *list = json_object_get(nm, "normalizers");
        if (list && !json_is_array(list))
            return tok_hf_fail_(msg, TOK_ERR_FORMAT, "%s: normalizer.normalizers is not a list", path);
        for (size_t i = 0; i < json_array_size(list); i++) {
            tok_error e = normalizer(h, path, json_array_get(list, i), depth + 1, msg);
            if (e)
                return e;
        }
    }
    return TOK_OK;
}

/* ---- SpecialVocab ---- */

/* tokenizer_config's <kind>_token texts looked up in tokenizer.json's added_tokens. */
static tok_error config_tokens(sv_state *s, const json_t *tokenizer, const json_t *tc, const char *tcp, char *msg)
{
    const json_t *added = json_object_get(tokenizer, "added_tokens");
    for (int i = 0; i < s->n_kinds; i++) {
        int k = s->kinds[i];
        char key[32];
        snprintf(key, sizeof key, "add_%s_token", kind_name[k]);
        const json_t *add = json_object_get(tc, key);
        if (json_is_boolean(add))
            set_add(s->h, k, json_is_true(add));
        const json_t *ent = s->entry[k];
        const char *content = json_is_string(ent) ? json_string_value(ent)
                              : json_is_object(ent) ? json_string_value(json_object_get(ent, "content")) : NULL;
        if (!content)
            continue;
        for (size_t j = 0; json_is_array(added) && j < json_array_size(added); j++) {
            const json_t *a = json_array_get(added, j), *c = json_object_get(a, "content");
            if (json_is_string(c) && strcmp(json_string_value(c), content) == 0) {
                tok_error e = set_id(s, k, json_object_get(a, "id"), tcp, msg);
                if (e)
                    return e;
                break;
            }
        }
    }
    return TOK_OK;
}

static tok_error config_ids(sv_state *s, const json_t *config, const char *cfp, char *msg)
{
    const json_t *text = json_object_get(config, "text_config");
    for (int i = 0; i < s->n_kinds; i++) {
        int k = s->kinds[i];
        char key[32];
        snprintf(key, sizeof key, "%s_token_id", kind_name[k]);
        const json_t *v = json_object_get(config, key);
        if ((!v || json_is_null(v)) && text) {
            if (!json_is_object(text))
                return tok_hf_fail_(msg, TOK_ERR_FORMAT, "%s: text_config is not an object", cfp);
            v = json_object_get(text, key);
        }
        tok_error e = set_id(s, k, v, cfp, msg);
        if (e)
            return e;
    }
    return TOK_OK;
}

tok_error tok_hf_special_(tok_hf *h, const json_t *tokenizer, const json_t *tc, const json_t *config, char *msg)
{
    char *path = tok_hf_path_(h->dir, "tokenizer.json"), *tcp = tok_hf_path_(h->dir, "tokenizer_config.json"),
         *cfp = tok_hf_path_(h->dir, "config.json");
    sv_state s = {.h = h, .path = path, .tc = tok_hf_truthy_(tc)};
    tok_error e = TOK_OK;
    if (!path || !tcp || !cfp) {
        e = tok_hf_fail_(msg, TOK_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (int k = 0; k <= ST_MASK; k++) {
        s.kinds[s.n_kinds++] = k;
        char key[32];
        snprintf(key, sizeof key, "%s_token", kind_name[k]);
        s.entry[k] = json_object_get(tc, key);
    }
    const json_t *nm = json_object_get(tokenizer, "normalizer");
    if (tok_hf_truthy_(nm) && (e = normalizer(h, path, nm, 0, msg)) != TOK_OK)
        goto out;
    if (!tok_hf_truthy_(s.entry[ST_BOS]) && tok_hf_truthy_(s.entry[ST_CLS]) && s.tc)
        s.entry[ST_BOS] = s.entry[ST_CLS];
    if (!tok_hf_truthy_(s.entry[ST_EOS]) && tok_hf_truthy_(s.entry[ST_SEP]) && s.tc)
        s.entry[ST_EOS] = s.entry[ST_SEP];
    if ((e = post_processor(&s, json_object_get(tokenizer, "post_processor"), msg)) != TOK_OK)
        goto out;
    if (s.tc && ((e = chat_template(h, tc, tcp, msg)) != TOK_OK || (e = config_tokens(&s, tokenizer, tc, tcp, msg)) != TOK_OK))
        goto out;
    if (config)
        e = config_ids(&s, config, cfp, msg);
out:
    free(path);
    free(tcp);
    free(cfp);
    return e;
}
