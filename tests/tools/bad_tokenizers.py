#!/usr/bin/env python3
"""Malformed Hugging Face byte-level BPE tokenizers, for the tokenizer.json reader's tests.

    bad_tokenizers.py OUTDIR

writes OUTDIR/<case>/ (tokenizer.json, tokenizer_config.json, config.json and, for some cases,
chat_template files) for every case, plus OUTDIR/good/ (a valid tiny tokenizer: 256 byte
characters, 4 merges, one added special token), and prints one manifest line per case:

    name|error|file|regex|vocab_size|pre

error: the tok_error the reader must return (TOK_ERR_FORMAT, ...); file: the file name the
one-line message must name; regex: what the message must say (Python/ERE syntax, no '|');
vocab_size: what the caller passes (config.json's vocab_size; 0 = none); pre: the
--tokenizer-pre value passed ("-" = none). A tool test can copy model weights and config keys
into each directory and expect exit 2 (exit 1 for TOK_ERR_ARG, 3 for TOK_ERR_IO).
Standard library only.
"""
import json
import os
import sys


def bytes_to_unicode():
    keep = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    m, n = {}, 0
    for b in range(256):
        if b in keep:
            m[b] = chr(b)
        else:
            m[b] = chr(256 + n)
            n += 1
    return m


B2U = bytes_to_unicode()
G = B2U[ord(" ")]  # "Ġ"


def base():
    vocab = {B2U[b]: b for b in range(256)}
    merges = [G + " t", "h e", G + "t he", "i n"]
    for i, m in enumerate(merges):
        a, b = m.split(" ")
        vocab[a + b] = 256 + i
    tok = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [{"id": 260, "content": "<|endoftext|>", "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": True}],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "vocab": vocab,
                  "merges": merges},
    }
    cfg = {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "tokenizer_class": "GPT2Tokenizer"}
    config = {"vocab_size": 261, "bos_token_id": 260, "eos_token_id": 260}
    return tok, cfg, config


def write(d, name, data):
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else json.dumps(data, ensure_ascii=False).encode())


OUT = sys.argv[1]
os.makedirs(OUT, exist_ok=True)


def case(name, error, file, regex, edit=None, vocab_size=261, pre="gpt-2", raw=None, extra=None, skip=()):
    """edit(tok, cfg, config) changes the base; raw = {file: bytes} replaces files whole."""
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    tok, cfg, config = base()
    if edit:
        edit(tok, cfg, config)
    files = {"tokenizer.json": tok, "tokenizer_config.json": cfg, "config.json": config}
    files.update(raw or {})
    for f, data in files.items():
        if f not in skip:
            write(d, f, data)
    for f, data in (extra or {}).items():
        os.makedirs(os.path.dirname(os.path.join(d, f)), exist_ok=True)
        write(d, f, data)
    if name != "good":
        print(f"{name}|{error}|{file}|{regex}|{vocab_size}|{pre}")


def setp(path, value):
    """edit function: set tok[path...] = value (path through dicts/lists)"""
    def f(tok, cfg, config):
        o = {"tok": tok, "cfg": cfg, "config": config}[path[0]]
        for k in path[1:-1]:
            o = o[k]
        o[path[-1]] = value
    return f


def delp(path):
    def f(tok, cfg, config):
        o = {"tok": tok, "cfg": cfg, "config": config}[path[0]]
        for k in path[1:-1]:
            o = o[k]
        del o[path[-1]]
    return f


good_tok = json.dumps(base()[0], ensure_ascii=False)
case("good", "TOK_OK", "-", "-")

# tokenizer.json: syntax and types
case("json_truncated", "TOK_ERR_FORMAT", "tokenizer.json", "tokenizer.json:[0-9]+:[0-9]+: ",
     raw={"tokenizer.json": good_tok[:200].encode()})
case("json_duplicate_key", "TOK_ERR_FORMAT", "tokenizer.json", "duplicate",
     raw={"tokenizer.json": ('{"model": {}, ' + good_tok[1:]).encode()})
case("json_not_utf8", "TOK_ERR_FORMAT", "tokenizer.json", "unable to decode byte",
     raw={"tokenizer.json": good_tok.replace('"dropout"', '"dr\udcffopout"').encode("utf-8", "surrogateescape")})
case("json_deep_nesting", "TOK_ERR_FORMAT", "tokenizer.json", "depth",
     raw={"tokenizer.json": ("[" * 5000 + "]" * 5000).encode()})
case("json_not_object", "TOK_ERR_FORMAT", "tokenizer.json", "not a JSON object", raw={"tokenizer.json": b"[1, 2]"})
case("json_missing", "TOK_ERR_IO", "tokenizer.json", "No such file", skip=("tokenizer.json",))
case("model_missing", "TOK_ERR_FORMAT", "tokenizer.json", "\"model\" is missing", edit=delp(["tok", "model"]))
case("model_unigram", "TOK_ERR_UNSUPPORTED", "tokenizer.json", "model type 'Unigram'",
     edit=setp(["tok", "model", "type"], "Unigram"))
case("model_byte_fallback", "TOK_ERR_UNSUPPORTED", "tokenizer.json", "byte_fallback",
     edit=setp(["tok", "model", "byte_fallback"], True))


def no_byte_level(tok, cfg, config):
    tok["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581"}
    tok["decoder"] = {"type": "Metaspace", "replacement": "\u2581"}


case("not_byte_level", "TOK_ERR_UNSUPPORTED", "tokenizer.json", "ByteLevel", edit=no_byte_level)
case("vocab_not_object", "TOK_ERR_FORMAT", "tokenizer.json", "model.vocab", edit=setp(["tok", "model", "vocab"], []))
case("vocab_id_string", "TOK_ERR_FORMAT", "tokenizer.json", "no integer id", edit=setp(["tok", "model", "vocab", "a"], "97"))
case("vocab_id_negative", "TOK_ERR_FORMAT", "tokenizer.json", "negative id", edit=setp(["tok", "model", "vocab", "a"], -1))
case("vocab_id_huge", "TOK_ERR_LIMIT", "tokenizer.json", "beyond the cap", edit=setp(["tok", "model", "vocab", "a"], 1 << 40))
case("vocab_duplicate_id", "TOK_ERR_MODEL", "tokenizer.json", "id 97 is given to both",
     edit=setp(["tok", "model", "vocab", "zz"], 97))
case("vocab_empty_text", "TOK_ERR_MODEL", "tokenizer.json", "empty text", edit=setp(["tok", "model", "vocab", ""], 261),
     vocab_size=262)
case("vocab_id_beyond_size", "TOK_ERR_MODEL", "tokenizer.json", "not below vocab_size 200", vocab_size=200)
case("vocab_size_beyond_cap", "TOK_ERR_LIMIT", "tokenizer.json", "beyond the cap", vocab_size=1 << 25)


def empty(tok, cfg, config):
    tok["model"]["vocab"] = {}
    tok["added_tokens"] = []


case("vocab_empty", "TOK_ERR_MODEL", "tokenizer.json", "vocabulary is empty", edit=empty, vocab_size=0)
case("token_too_long", "TOK_ERR_LIMIT", "tokenizer.json", "more than 65536",
     edit=setp(["tok", "model", "vocab", "x" * 70000], 261), vocab_size=262)
# merges
case("merges_empty", "TOK_ERR_MODEL", "tokenizer.json", "model.merges is empty", edit=setp(["tok", "model", "merges"], []))
case("merges_missing", "TOK_ERR_FORMAT", "tokenizer.json", "model.merges", edit=delp(["tok", "model", "merges"]))
case("merge_unknown_token", "TOK_ERR_MODEL", "tokenizer.json", "merges\\[1\\] names 'q9', which is not in the vocab",
     edit=setp(["tok", "model", "merges", 1], "h q9"))
case("merge_result_unknown", "TOK_ERR_MODEL", "tokenizer.json", "merges\\[3\\] makes 'ab'",
     edit=setp(["tok", "model", "merges", 3], "a b"))
case("merge_three_parts", "TOK_ERR_FORMAT", "tokenizer.json", "one space", edit=setp(["tok", "model", "merges", 2], "a b c"))
case("merge_no_space", "TOK_ERR_FORMAT", "tokenizer.json", "one space", edit=setp(["tok", "model", "merges", 0], "ab"))
case("merge_mixed_forms", "TOK_ERR_FORMAT", "tokenizer.json", "like the first merge",
     edit=setp(["tok", "model", "merges", 1], ["h", "e"]))
case("merge_pair_bad", "TOK_ERR_FORMAT", "tokenizer.json", "pair of strings",
     edit=setp(["tok", "model", "merges"], [[G, "t"], ["h"]]))
case("merge_part_too_long", "TOK_ERR_LIMIT", "tokenizer.json", "longer than",
     edit=setp(["tok", "model", "merges", 3], "i " + "n" * 70000))
# added tokens
case("added_not_array", "TOK_ERR_FORMAT", "tokenizer.json", "added_tokens is not an array",
     edit=setp(["tok", "added_tokens"], {"id": 260}))
case("added_no_id", "TOK_ERR_FORMAT", "tokenizer.json", "added_tokens\\[0\\]", edit=delp(["tok", "added_tokens", 0, "id"]))
case("added_duplicate_id", "TOK_ERR_MODEL", "tokenizer.json", "id 97 is given to both",
     edit=setp(["tok", "added_tokens", 0, "id"], 97))
case("added_text_two_ids", "TOK_ERR_MODEL", "tokenizer.json", "token 'a' has ids 97 and 260",
     edit=setp(["tok", "added_tokens", 0, "content"], "a"))


def added_twice(tok, cfg, config):
    tok["added_tokens"].append(dict(tok["added_tokens"][0], id=261))


case("added_twice", "TOK_ERR_MODEL", "tokenizer.json", "has ids 260 and 261", edit=added_twice, vocab_size=262)
case("added_id_beyond_size", "TOK_ERR_MODEL", "tokenizer.json", "not below vocab_size 261",
     edit=setp(["tok", "added_tokens", 0, "id"], 300))
# post-processor, normalizer
case("post_processor_list", "TOK_ERR_FORMAT", "tokenizer.json", "post_processor is not an object",
     edit=setp(["tok", "post_processor"], [1]))
case("template_single_string", "TOK_ERR_FORMAT", "tokenizer.json", "single/pair is not a list",
     edit=setp(["tok", "post_processor"], {"type": "TemplateProcessing", "single": "$A", "pair": [], "special_tokens": {}}))
case("template_entry_not_object", "TOK_ERR_FORMAT", "tokenizer.json", "TemplateProcessing entry is not an object",
     edit=setp(["tok", "post_processor"], {"type": "TemplateProcessing", "single": [1, 2], "special_tokens": {}}))
case("normalizer_bad", "TOK_ERR_FORMAT", "tokenizer.json", "normalizer",
     edit=setp(["tok", "normalizer"], {"type": "Sequence", "normalizers": ["x"]}))
# the other files
case("config_syntax", "TOK_ERR_FORMAT", "tokenizer_config.json", "tokenizer_config.json:1:",
     raw={"tokenizer_config.json": b'{"bos_token": '})
case("config_not_object", "TOK_ERR_FORMAT", "tokenizer_config.json", "not a JSON object",
     raw={"tokenizer_config.json": b'[1]'})
case("config_json_not_object", "TOK_ERR_FORMAT", "config.json", "not a JSON object", raw={"config.json": b"[]"})
case("config_negative_id", "TOK_ERR_FORMAT", "config.json", "pad token id -1 is negative",
     edit=setp(["config", "pad_token_id"], -1))
case("config_huge_id", "TOK_ERR_FORMAT", "config.json", "beyond 2\\^32", edit=setp(["config", "pad_token_id"], 1 << 33))
case("config_text_config", "TOK_ERR_FORMAT", "config.json", "text_config is not an object",
     edit=setp(["config", "text_config"], 7))
case("chat_template_entry", "TOK_ERR_FORMAT", "tokenizer_config.json", "chat_template\\[0\\] is not an object",
     edit=setp(["cfg", "chat_template"], ["x"]))
case("chat_template_jinja_not_utf8", "TOK_ERR_FORMAT", "chat_template.jinja", "not UTF-8",
     extra={"chat_template.jinja": b"{{ bos }}\xc3\x28"})
case("chat_template_json_not_object", "TOK_ERR_FORMAT", "chat_template.json", "not a JSON object",
     extra={"chat_template.json": b"[]"})
# more syntax and types: JSON text, the model object, merges, added tokens, the side files
case("json_empty", "TOK_ERR_FORMAT", "tokenizer.json", "tokenizer.json:1:0: ", raw={"tokenizer.json": b""})
case("json_bom", "TOK_ERR_FORMAT", "tokenizer.json", "tokenizer.json:1:1: ",
     raw={"tokenizer.json": b"\xef\xbb\xbf" + good_tok.encode()})
case("json_trailing", "TOK_ERR_FORMAT", "tokenizer.json", "end of file expected",
     raw={"tokenizer.json": (good_tok + " {}").encode()})
case("model_not_object", "TOK_ERR_FORMAT", "tokenizer.json", "\"model\" is missing or not an object",
     edit=setp(["tok", "model"], "BPE"))
case("model_type_number", "TOK_ERR_UNSUPPORTED", "tokenizer.json", "model type \\(not a string\\) is not supported",
     edit=setp(["tok", "model", "type"], 1))
case("vocab_id_float", "TOK_ERR_FORMAT", "tokenizer.json", "vocab entry 'a' has no integer id",
     edit=setp(["tok", "model", "vocab", "a"], 97.5))
case("vocab_key_nul", "TOK_ERR_FORMAT", "tokenizer.json", "NUL byte in object key",
     edit=setp(["tok", "model", "vocab", "a\u0000b"], 261), vocab_size=262)
case("merges_not_list", "TOK_ERR_FORMAT", "tokenizer.json", "model.merges is missing or not an array",
     edit=setp(["tok", "model", "merges"], {"h": "e"}))
case("merge_number", "TOK_ERR_FORMAT", "tokenizer.json", "merges\\[0\\] is not a pair of strings",
     edit=setp(["tok", "model", "merges"], [7, "h e"]))
case("merge_pair_three", "TOK_ERR_FORMAT", "tokenizer.json", "merges\\[1\\] is not a pair of strings",
     edit=setp(["tok", "model", "merges"], [[G, "t"], ["h", "e", "x"]]))
case("merge_pair_not_string", "TOK_ERR_FORMAT", "tokenizer.json", "merges\\[1\\] is not a pair of strings",
     edit=setp(["tok", "model", "merges"], [[G, "t"], ["h", 5]]))
case("merge_pair_empty_part", "TOK_ERR_MODEL", "tokenizer.json", "merges\\[1\\] names '', which is not in the vocab",
     edit=setp(["tok", "model", "merges"], [[G, "t"], ["", "e"]]))
case("merge_leading_space", "TOK_ERR_MODEL", "tokenizer.json", "merges\\[0\\] names ''",
     edit=setp(["tok", "model", "merges", 0], " t"))
case("merge_two_spaces", "TOK_ERR_FORMAT", "tokenizer.json", "is not two parts separated by one space",
     edit=setp(["tok", "model", "merges", 0], G + "  t"))
case("added_empty_text", "TOK_ERR_MODEL", "tokenizer.json", "added token 260 has an empty",
     edit=setp(["tok", "added_tokens", 0, "content"], ""))
case("added_content_number", "TOK_ERR_FORMAT", "tokenizer.json", "added_tokens\\[0\\] lacks an integer id or a content string",
     edit=setp(["tok", "added_tokens", 0, "content"], 5))
case("added_id_float", "TOK_ERR_FORMAT", "tokenizer.json", "added_tokens\\[0\\] lacks an integer id",
     edit=setp(["tok", "added_tokens", 0, "id"], 260.5))
case("added_entry_string", "TOK_ERR_FORMAT", "tokenizer.json", "added_tokens\\[0\\] lacks",
     edit=setp(["tok", "added_tokens", 0], "<|endoftext|>"))
case("added_id_negative", "TOK_ERR_FORMAT", "tokenizer.json", "has the id -2, outside 0..16777215",
     edit=setp(["tok", "added_tokens", 0, "id"], -2))
case("added_id_huge", "TOK_ERR_LIMIT", "tokenizer.json", "has the id 1099511627776, outside",
     edit=setp(["tok", "added_tokens", 0, "id"], 1 << 40))
case("added_nul", "TOK_ERR_FORMAT", "tokenizer.json", "is not allowed without JSON_ALLOW_NUL",
     edit=setp(["tok", "added_tokens", 0, "content"], "<|a\u0000b|>"))
case("post_processor_seq_not_list", "TOK_ERR_FORMAT", "tokenizer.json", "post_processor.processors is not a list",
     edit=setp(["tok", "post_processor"], {"type": "Sequence", "processors": {"a": 1}}))
case("roberta_sep_bad", "TOK_ERR_FORMAT", "tokenizer.json", "RobertaProcessing sep is not a non-empty list",
     edit=setp(["tok", "post_processor"], {"type": "RobertaProcessing", "sep": 5, "cls": ["<s>", 0]}))
case("normalizer_seq_not_list", "TOK_ERR_FORMAT", "tokenizer.json", "normalizer.normalizers is not a list",
     edit=setp(["tok", "normalizer"], {"type": "Sequence", "normalizers": {"a": 1}}))
case("config_not_utf8", "TOK_ERR_FORMAT", "tokenizer_config.json", "unable to decode byte 0xff",
     raw={"tokenizer_config.json": b'{"bos_token": "\xff"}'})
case("config_duplicate_key", "TOK_ERR_FORMAT", "tokenizer_config.json", "duplicate object key",
     raw={"tokenizer_config.json": b'{"bos_token": "a", "bos_token": "b"}'})
case("config_bos_id_huge", "TOK_ERR_FORMAT", "config.json", "bos token id 1099511627776 is beyond 2\\^32",
     edit=setp(["config", "bos_token_id"], 1 << 40))
case("text_config_negative_id", "TOK_ERR_FORMAT", "config.json", "pad token id -1 is negative",
     edit=setp(["config", "text_config"], {"pad_token_id": -1}))
case("chat_template_name_number", "TOK_ERR_FORMAT", "tokenizer_config.json", "chat_template\\[0\\] name/template is not a string",
     edit=setp(["cfg", "chat_template"], [{"name": 5, "template": "x"}]))
case("chat_template_json_syntax", "TOK_ERR_FORMAT", "chat_template.json", "chat_template.json:1:[0-9]+: ",
     extra={"chat_template.json": b'{"chat_template": '})
case("chat_template_jinja_nul", "TOK_ERR_FORMAT", "chat_template.jinja", "not UTF-8 text \\(or holds a NUL byte\\)",
     extra={"chat_template.jinja": b"{{ x }}\0"})
# pre-tokenizer
case("pre_unknown", "TOK_ERR_UNSUPPORTED", "tokenizer.json", "--tokenizer-pre NAME", pre="-")
case("pre_override_bad", "TOK_ERR_ARG", "-", "unknown pre-tokenizer 'no-such-pre'", pre="no-such-pre")
