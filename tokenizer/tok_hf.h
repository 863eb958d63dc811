/* tok_hf — a Hugging Face byte-level BPE tokenizer (tokenizer.json & co.) as the GGUF
 * vocabulary llama.cpp's converter writes (convert_hf_to_gguf.py _set_vocab_gpt2:
 * get_vocab_base, get_vocab_base_pre and gguf-py's SpecialVocab with merges).
 *
 * Files read from DIR: tokenizer.json (required), tokenizer_config.json, config.json,
 * chat_template.jinja (+ additional_chat_templates/<name>.jinja), chat_template.json; every one
 * but tokenizer.json is optional. generation_config.json is not read: llama.cpp takes only
 * general.sampling.* values from it, none of the tokenizer keys.
 *
 * What is written (tok_hf_write_kv), in this order, as llama.cpp writes it:
 *   [tokenizer.ggml.add_space_prefix]  bool, only with TOK_HF_KV_ADD_SPACE_PREFIX and when
 *                                     tokenizer_config.json has add_prefix_space (LlamaModel)
 *   tokenizer.ggml.model              "gpt2"
 *   tokenizer.ggml.pre                the pre-tokenizer name (detected, or given)
 *   tokenizer.ggml.tokens             V strings: id i = the vocab/added token with id i, else
 *                                     "[PAD<i>]"; V = the vocab_size given (config.json's), or
 *                                     the number of distinct tokens
 *   tokenizer.ggml.token_type         V i32: 1 NORMAL (model vocab), 3 CONTROL (added tokens
 *                                     marked special or looking special: "<|...|>", "<｜...｜>",
 *                                     "<unused...>", "<pad>", "<mask>", "<2mass>", "[@BOS@]"),
 *                                     4 USER_DEFINED (other added tokens, U+2581 -> ' '),
 *                                     5 UNUSED (fillers)
 *   tokenizer.ggml.merges             "first second" strings (the ["first","second"] form gets
 *                                     each ' ' inside a part written as U+0120)
 *   tokenizer.ggml.{bos,eos,unknown,seperator,padding,mask,eot,eom}_token_id
 *                                     u32, in the order SpecialVocab finds them: first the
 *                                     tokenizer_config.json *_token texts looked up in
 *                                     tokenizer.json's added_tokens, then config.json's
 *                                     *_token_id (or text_config's); the first value of a kind
 *                                     wins; eot/eom appear only when the post-processor's
 *                                     template ends with a token other than eos_token
 *   tokenizer.ggml.add_{bos,eos,sep}_token
 *                                     bool, from the post-processor (TemplateProcessing,
 *                                     RobertaProcessing) then tokenizer_config.json add_*_token
 *   tokenizer.chat_template.<name>, tokenizer.chat_templates, tokenizer.chat_template
 *                                     tokenizer_config.json's chat_template (string, or a list
 *                                     of {name, template}), else chat_template.jinja (with the
 *                                     additional templates: list form), else chat_template.json
 *   tokenizer.ggml.normalizer.{lowercase,strip_accents}
 *                                     bool, from tokenizer.json's normalizer
 *
 * The pre-tokenizer name: as llama.cpp's get_vocab_base_pre, the check text is tokenized (here
 * with qforge's own BPE, once per distinct pre-tokenizer of tok_pre_name()) and the SHA-256 of
 * the id list's Python repr looked up in llama.cpp's table of known tokenizers. The ids tried
 * are those Hugging Face's encode would give (the post-processor's leading/trailing special
 * tokens, LlamaTokenizerFast's add_bos_token), then the bare ids. An unknown tokenizer is
 * TOK_ERR_UNSUPPORTED naming --tokenizer-pre; opt->pre skips the detection.
 *
 * Checked (each failure one line naming the file): JSON syntax with duplicate keys refused
 * (TOK_ERR_FORMAT); types of every field read (TOK_ERR_FORMAT); sizes against the caps below
 * (TOK_ERR_LIMIT); model.type "BPE" and byte-level (a ByteLevel pre-tokenizer or decoder;
 * byte_fallback false) else TOK_ERR_UNSUPPORTED; token ids >= 0, unique, < vocab_size; token
 * texts non-empty and unique across vocab and added tokens; merges present (the converter would
 * write a file without them that llama.cpp cannot load); every merge of two parts (the
 * string form has exactly one ' '), both parts and their concatenation in the vocab
 * (TOK_ERR_MODEL, as Hugging Face itself refuses such files); special token ids >= 0 and
 * < 2^32 (TOK_ERR_FORMAT). Deviations from the converter, all on files it would mishandle or
 * that no known model has: added tokens are taken from tokenizer.json only (not from
 * tokenizer_config.json's added_tokens_decoder); a non-normalized added token is kept as is
 * (the converter re-encodes and decodes it, which gives it back unchanged); the converter lists
 * named chat templates in Python set order, here in file order; additional templates are read
 * in name order.
 *
 * Ownership: tok_hf_load() returns an object owning copies of everything; free it with
 * tok_hf_free(). Errors: tok_error + one line in msg[TOK_MSG_SIZE]. Never prints or exits.
 */
#ifndef QFORGE_TOK_HF_H
#define QFORGE_TOK_HF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "libgguf/gguf.h"
#include "tokenizer/tok_error.h"
#include "tokenizer/tokenizer.h"

#define TOK_HF_MAX_JSON (256u << 20)      /* bytes of tokenizer.json */
#define TOK_HF_MAX_SMALL_JSON (64u << 20) /* tokenizer_config.json, config.json, chat_template.json */
#define TOK_HF_MAX_TOKEN_LEN (64u << 10)  /* bytes of one token text or merge */
#define TOK_HF_MAX_TEMPLATES 256          /* additional chat templates */

typedef struct tok_hf tok_hf;

typedef struct {
    int64_t vocab_size; /* config.json's vocab_size as the caller read it; <= 0: the token count */
    const char *pre;    /* --tokenizer-pre NAME: use this pre-tokenizer, no detection; NULL: detect */
} tok_hf_options;

/* Read DIR's tokenizer files. opt NULL: defaults. */
tok_error tok_hf_load(const char *dir, const tok_hf_options *opt, tok_hf **out, char *msg);
void tok_hf_free(tok_hf *h);

enum {
    TOK_HF_KV_ADD_SPACE_PREFIX = 1, /* write tokenizer_config's add_prefix_space first (LlamaModel does) */
};
/* Append the tokenizer KVs above to w (after whatever the caller set before). */
tok_error tok_hf_write_kv(const tok_hf *h, gguf_writer *w, unsigned flags, char *msg);

int64_t tok_hf_n_tokens(const tok_hf *h);            /* V */
const char *tok_hf_pre(const tok_hf *h);             /* tokenizer.ggml.pre */
const char *tok_hf_check_hash(const tok_hf *h);      /* SHA-256 hex of the matched check ids; "" if given */
int64_t tok_hf_n_merges(const tok_hf *h);
const char *tok_hf_token(const tok_hf *h, int64_t i); /* as written; NULL out of range */
int tok_hf_token_type(const tok_hf *h, int64_t i);   /* enum tok_type; -1 out of range */
const char *tok_hf_merge(const tok_hf *h, int64_t i);
/* Special token id of a kind ("bos", "eos", "unk", "sep", "pad", "mask", "eot", "eom"), -1 if unset. */
int64_t tok_hf_special_id(const tok_hf *h, const char *kind);
/* Files read (full paths), for the caller's list of inputs; i < tok_hf_n_files(). */
size_t tok_hf_n_files(const tok_hf *h);
const char *tok_hf_file(const tok_hf *h, size_t i);

/* The runtime tokenizer llama.cpp would build from the KVs written (bos/eos ids and add_bos/
 * add_eos from them, else the pre-tokenizer's defaults). *out freed with tok_free(). */
tok_error tok_hf_tokenizer(const tok_hf *h, tok_model **out, char *msg);

#endif
