#!/usr/bin/env bash
# Malformed inputs through qforge-convert and qforge-inspect: every case must exit 2 with
# exactly one stderr line "qforge-X: ...FILE...: problem" naming the offending file, with no
# control bytes (a hostile file must not write escape sequences to the terminal), and
# convert must leave no output (or temp) file behind. Cases are built with python3 (stdlib)
# from small qforge-synth checkpoints.
set -u
BIN=${QFORGE_BIN:-$(cd "$(dirname "$0")/../.." && pwd)/bin}
for t in qforge-convert qforge-inspect qforge-synth; do
  [ -x "$BIN/$t" ] || { echo "missing $BIN/$t"; exit 1; }
done
command -v python3 >/dev/null || { echo "python3 not available"; exit 77; }
T=$(mktemp -d "${TMPDIR:-/tmp}/qforge-badinput-XXXXXX")
trap 'rm -rf "$T"' EXIT

"$BIN/qforge-synth" --dim 32 --layers 2 --heads 4 --kv-heads 2 --ffn 48 --vocab 300 --shards 2 -o "$T/base2" >/dev/null || exit 1
"$BIN/qforge-synth" --dim 32 --layers 2 --heads 4 --kv-heads 2 --ffn 48 --vocab 300 -o "$T/base1" >/dev/null || exit 1
"$BIN/qforge-convert" "$T/base1" -o "$T/good.gguf" --outtype f32 >/dev/null || exit 1
# bases for tokenizer.json cases: Qwen2 weights of the vocab sizes of tests/tools/bad_tokenizers.py
for v in 261 262; do
  "$BIN/qforge-synth" --arch Qwen2ForCausalLM --dim 32 --layers 1 --heads 2 --ffn 32 --vocab $v -o "$T/bpe$v" >/dev/null || exit 1
  rm "$T/bpe$v/tokenizer.model" "$T/bpe$v/tokenizer_config.json"
done
"$BIN/qforge-synth" --arch Qwen3ForCausalLM --dim 32 --layers 1 --heads 2 --kv-heads 1 --head-dim 8 --ffn 32 --vocab 300 \
  -o "$T/base3" >/dev/null || exit 1

# Manifest lines: name|tool(s)|target|file named in the message|extra arguments|regex of the problem
python3 - "$T" "$(cd "$(dirname "$0")" && pwd)" > "$T/manifest" <<'PY'
import json, os, shutil, struct, subprocess, sys
T, HERE = sys.argv[1], sys.argv[2]
B1, B2, B3 = T + "/base1", T + "/base2", T + "/base3"

def case(name, base):
    d = f"{T}/c/{name}"
    shutil.copytree(base, d)
    return d

def st(header, data=b"", raw_len=None):
    h = header.encode() if isinstance(header, str) else header
    n = len(h) if raw_len is None else raw_len
    return struct.pack("<Q", n) + h + data

def put(path, data):
    with open(path, "wb") as f:
        f.write(data)

def emit(name, tools, target, fname, regex, args=""):
    print(f"{name}|{tools}|{target}|{fname}|{args}|{regex}")

def single(name, blob, regex, tools="both"):
    """a bad model.safetensors in an otherwise valid single-file checkpoint"""
    d = case(name, B1)
    put(d + "/model.safetensors", blob)
    if tools in ("both", "convert"):
        emit(name, "convert", d, "model.safetensors", regex)
    if tools in ("both", "inspect"):
        emit(name + "_file", "inspect", d + "/model.safetensors", "model.safetensors", regex)

F = '{"dtype":"F32","shape":[%s],"data_offsets":[%d,%d]}'
single("st_short", b"\x01\x00\x00", "too short for the 8-byte header length")
single("st_header_cap", struct.pack("<Q", 1 << 62) + b"{}", "exceeds the cap of 100000000 bytes")
single("st_header_past_end", struct.pack("<Q", 1000) + b"{}" + b" " * 90, "runs past the end of the file")
single("st_not_utf8", st(b'{"\xff":1}'), "not valid UTF-8")
single("st_truncated_json", st('{"a":'), "not valid JSON")
single("st_duplicate_key", st('{"w":' + F % ("1", 0, 4) + ',"w":' + F % ("1", 4, 8) + '}', bytes(8)), "duplicate")
single("st_not_object", st("[1, 2]"), "header is not a JSON object")
single("st_metadata_value", st('{"__metadata__":{"format":7}}'), "value of 'format' is not a string")
single("st_unknown_dtype", st('{"w":{"dtype":"Q4","shape":[1],"data_offsets":[0,4]}}', bytes(4)), "unknown dtype 'Q4'")
single("st_negative_shape", st('{"w":' + F % ("-1", 0, 4) + '}', bytes(4)), "shape entry 0 is not a non-negative integer")
single("st_overlap", st('{"a":' + F % ("2", 0, 8) + ',"b":' + F % ("2", 4, 12) + '}', bytes(12)), "overlap tensor 'a'")
single("st_gap", st('{"a":' + F % ("1", 0, 4) + ',"b":' + F % ("1", 8, 12) + '}', bytes(12)), "gap of 4 bytes before tensor 'b'")
single("st_wrong_size", st('{"a":' + F % ("3", 0, 8) + '}', bytes(8)), "hold 8 bytes but shape \\[3\\] of F32 needs 12")
single("st_trailing_bytes", st('{"a":' + F % ("1", 0, 4) + '}', bytes(9)), "5 bytes after the last tensor")
single("st_data_truncated", st('{"a":' + F % ("16", 0, 64) + '}', bytes(20)), "run past the end of the data")
single("st_shape_overflow", st('{"a":' + F % ("4294967296,4294967296", 0, 4) + '}', bytes(4)), "element count overflows")
single("st_offsets_reversed", st('{"a":' + F % ("1", 4, 0) + '}', bytes(4)), "end before they begin")
single("st_offsets_not_pair", st('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}', bytes(4)), "not an array of two integers")
single("st_json_error_control", st(b'{"w\x1b[2J\n":'), "not valid JSON")
single("st_control_name", st('{"a\\nb\\u001b[31m":' + F % ("1", 0, 4) + '}', bytes(4)), "has no llama.cpp name", tools="convert")
single("st_int8_tensor", st('{"model.embed_tokens.weight":{"dtype":"I8","shape":[300,32],"data_offsets":[0,9600]}}', bytes(9600)),
       "tensor 'model.embed_tokens.weight' has unsupported dtype I8", tools="convert")

def ckpt(name, base, fname, regex, mutate):
    d = case(name, base)
    mutate(d)
    emit(name, "convert", d, fname, regex)
    emit(name + "_dir", "inspect", d, fname, regex)

def edit_json(path, fn):
    with open(path) as f:
        j = json.load(f)
    j = fn(j)
    with open(path, "w") as f:
        json.dump(j, f)

S1 = "model-00001-of-00002.safetensors"
S2 = "model-00002-of-00002.safetensors"
IX = "model.safetensors.index.json"
ckpt("idx_missing_shard", B2, IX, f"shard '{S2}' is missing", lambda d: os.remove(f"{d}/{S2}"))
ckpt("idx_not_json", B2, IX, "not valid JSON", lambda d: put(f"{d}/{IX}", b'{"weight_map": {'))
ckpt("idx_not_object", B2, IX, "not a JSON object", lambda d: put(f"{d}/{IX}", b'["weight_map"]'))
ckpt("idx_no_weight_map", B2, IX, 'no "weight_map"', lambda d: put(f"{d}/{IX}", b'{"metadata": {}}'))
def wrong_shard(j):
    wm = j["weight_map"]
    k = next(k for k, v in sorted(wm.items()) if v == S1)
    wm[k] = S2
    return j
ckpt("idx_wrong_shard", B2, IX, f"is mapped to '{S2}', which does not hold it", lambda d: edit_json(f"{d}/{IX}", wrong_shard))
def unlisted(j):
    del j["weight_map"]["model.norm.weight"]
    return j
ckpt("idx_unlisted_tensor", B2, S2, "tensor 'model.norm.weight' is not listed in model.safetensors.index.json",
     lambda d: edit_json(f"{d}/{IX}", unlisted))
def traversal(j):
    j["weight_map"]["model.norm.weight"] = "../" + S2
    return j
ckpt("idx_path_traversal", B2, IX, "not a file in the directory", lambda d: edit_json(f"{d}/{IX}", traversal))
ckpt("cfg_missing", B1, "config.json", "not found", lambda d: os.remove(f"{d}/config.json"))
ckpt("cfg_not_object", B1, "config.json", "not a JSON object", lambda d: put(f"{d}/config.json", b"42"))
ckpt("cfg_duplicate_key", B1, "config.json", "duplicate",
     lambda d: put(f"{d}/config.json", b'{"architectures":["LlamaForCausalLM"],"hidden_size":32,"hidden_size":64}'))
def arch(j):
    j["architectures"] = ["GPT2LMHeadModel"]
    return j
ckpt("cfg_architecture", B1, "config.json", "architecture 'GPT2LMHeadModel' is not supported", lambda d: edit_json(f"{d}/config.json", arch))
def dim(j):
    j["hidden_size"] = 64
    return j
ckpt("cfg_shape_mismatch", B1, "model.safetensors", "but config.json implies", lambda d: edit_json(f"{d}/config.json", dim))
def heads(j):
    j["num_key_value_heads"] = 3
    return j
ckpt("cfg_kv_heads", B1, "config.json", "not a multiple of num_key_value_heads 3", lambda d: edit_json(f"{d}/config.json", heads))
def noint(j):
    j["num_hidden_layers"] = "two"
    return j
ckpt("cfg_not_integer", B1, "config.json", '"num_hidden_layers" is not an integer', lambda d: edit_json(f"{d}/config.json", noint))
ckpt("tok_missing", B1, "tokenizer.model", "not found", lambda d: os.remove(f"{d}/tokenizer.model"))
ckpt("tok_garbage", B1, "tokenizer.model", "protobuf", lambda d: put(f"{d}/tokenizer.model", b"\x0a\xff\xff\xff\xff\x0f"))
# config.json values: ranges, divisibility, unsupported features
def cfg_set(key, val):
    def fn(j):
        if val is None:
            del j[key]
        else:
            j[key] = val
        return j
    return lambda d: edit_json(f"{d}/config.json", fn)
for name, key, val, regex in [
        ("cfg_layers_zero", "num_hidden_layers", 0, r'"num_hidden_layers" = 0 is outside \[1, 4096\]'),
        ("cfg_layers_huge", "num_hidden_layers", 5000, r'"num_hidden_layers" = 5000 is outside'),
        ("cfg_vocab_huge", "vocab_size", 1 << 25, r'"vocab_size" = 33554432 is outside \[1, 16777216\]'),
        ("cfg_ffn_huge", "intermediate_size", 1 << 21, r'"intermediate_size" = 2097152 is outside'),
        ("cfg_ctx_huge", "max_position_embeddings", 1 << 40, r'"max_position_embeddings" = 1099511627776 is outside'),
        ("cfg_float_size", "hidden_size", 32.5, r'"hidden_size" is not an integer'),
        ("cfg_heads_not_dividing", "num_attention_heads", 5, "hidden_size 32 is not a multiple of num_attention_heads 5"),
        ("cfg_head_dim_odd", "head_dim", 3, r"head dimension 3 is odd"),
        ("cfg_eps_negative", "rms_norm_eps", -1, r'"rms_norm_eps" is not a positive number'),
        ("cfg_rope_theta_zero", "rope_theta", 0, r'"rope_theta" is not a positive number'),
        ("cfg_attention_bias", "attention_bias", True, "attention biases are not supported"),
        ("cfg_mlp_bias", "mlp_bias", True, "MLP biases are not supported"),
        ("cfg_act_gelu", "hidden_act", "gelu", r'"hidden_act" must be "silu"'),
        ("cfg_rope_yarn", "rope_scaling", {"type": "yarn", "factor": 4.0}, "rope_scaling type 'yarn' is not supported"),
        ("cfg_rope_factor_zero", "rope_scaling", {"type": "linear", "factor": 0}, r'rope_scaling "factor" is not a positive number'),
        ("cfg_tie_not_bool", "tie_word_embeddings", "yes", r'"tie_word_embeddings" is not a boolean'),
        ("cfg_arch_empty", "architectures", [], r'"architectures" is not a non-empty array of strings'),
        ("cfg_arch_missing", "architectures", None, r'no "architectures"'),
        ("cfg_bos_negative", "bos_token_id", -1, r'"bos_token_id" is negative')]:
    ckpt(name, B1, "config.json", regex, cfg_set(key, val))
ckpt("cfg_trailing_json", B1, "config.json", "not valid JSON: end of file expected",
     lambda d: put(f"{d}/config.json", b'{"architectures":["LlamaForCausalLM"]}\n{"x":1}'))
# index contents
def wm_first(v):
    def fn(j):
        j["weight_map"][sorted(j["weight_map"])[0]] = v
        return j
    return fn
ckpt("idx_weight_map_array", B2, IX, '"weight_map" is not an object',
     lambda d: edit_json(f"{d}/{IX}", lambda j: {"weight_map": sorted(j["weight_map"].items())}))
ckpt("idx_empty", B2, IX, '"weight_map" is empty', lambda d: put(f"{d}/{IX}", b'{"weight_map": {}}'))
ckpt("idx_absolute_path", B2, IX, "names '/etc/passwd', not a file in the directory",
     lambda d: edit_json(f"{d}/{IX}", wm_first("/etc/passwd")))
ckpt("idx_dotdot", B2, IX, "names '..', not a file in the directory", lambda d: edit_json(f"{d}/{IX}", wm_first("..")))
ckpt("idx_entry_not_string", B2, IX, "is not a string", lambda d: edit_json(f"{d}/{IX}", wm_first(7)))
# tokenizer side files
ckpt("added_tokens_negative", B1, "added_tokens.json", "id of '<x>' is not a non-negative integer",
     lambda d: put(f"{d}/added_tokens.json", b'{"<x>": -1}'))
ckpt("tokcfg_key_not_id", B1, "tokenizer_config.json", "added_tokens_decoder key 'abc' is not a token id",
     lambda d: put(f"{d}/tokenizer_config.json", b'{"added_tokens_decoder": {"abc": {"content": "x"}}}'))
ckpt("tokcfg_no_content", B1, "tokenizer_config.json", 'added token 5 has no "content" string',
     lambda d: put(f"{d}/tokenizer_config.json", b'{"added_tokens_decoder": {"5": {"special": true}}}'))
def tokjson_negative(d):
    put(f"{d}/tokenizer_config.json", b'{"bos_token": "<s>"}')
    put(f"{d}/tokenizer.json", b'{"added_tokens": [{"id": -3, "content": "<s>"}]}')
ckpt("tokjson_negative_id", B1, "tokenizer.json", "negative id for 'bos_token'", tokjson_negative)
ckpt("template_nul", B1, "chat_template.jinja", "contains a NUL byte",
     lambda d: put(f"{d}/chat_template.jinja", b"{{ x }}\0"))
# size caps, checked before reading: sparse files cost no disk
def sparse(rel, size):
    def m(d):
        with open(f"{d}/{rel}", "ab") as f:
            f.truncate(size)
    return m
ckpt("cap_config", B1, "config.json", "67108865 bytes, more than the cap of 67108864", sparse("config.json", (64 << 20) + 1))
ckpt("cap_index", B2, IX, "67108865 bytes, more than the cap of 67108864", sparse(IX, (64 << 20) + 1))
ckpt("cap_tokenizer_config", B1, "tokenizer_config.json", "more than the cap of 67108864",
     sparse("tokenizer_config.json", (64 << 20) + 1))
ckpt("cap_tokenizer_json", B1, "tokenizer.json", "536870913 bytes, more than the cap of 536870912",
     sparse("tokenizer.json", (512 << 20) + 1))
ckpt("cap_chat_template", B1, "chat_template.jinja", "more than the cap of 67108864", sparse("chat_template.jinja", (64 << 20) + 1))
ckpt("cap_tokenizer_model", B1, "tokenizer.model", "268435457 bytes exceeds the 268435456-byte limit",
     sparse("tokenizer.model", (256 << 20) + 1))
# bytes from the file that would break the one-line message or drive the terminal
ckpt("cfg_json_error_control", B1, "config.json", "not valid JSON",
     lambda d: put(f"{d}/config.json", b'{"a\x1b[31m\n": tru'))
ckpt("idx_json_error_control", B2, IX, "not valid JSON", lambda d: put(f"{d}/{IX}", b'{"weight_map": {"\x1b]0;x\x07'))
def extra_tensor(d):
    p = f"{d}/model.safetensors"
    with open(p, "rb") as f:
        b = f.read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    data = b[8 + n:]
    h["model.extra.weight"] = {"dtype": "BF16", "shape": [2], "data_offsets": [len(data), len(data) + 4]}
    hb = json.dumps(h).encode()
    put(p, struct.pack("<Q", len(hb)) + hb + data + bytes(4))
ckpt("unexpected_tensor", B1, "model.safetensors", "tensor 'model.extra.weight' has no llama.cpp name", extra_tensor)

# byte-level BPE tokenizers (tokenizer.json, merges, added tokens, special ids, chat templates):
# the library table of bad_tokenizers.py through a checkpoint, its files over Qwen2 weights of the
# case's vocab_size (cases the tool cannot reach that way -- a missing file, an option error, a
# vocab_size the config range or the weights would refuse first -- are left to test_tok_hf)
man = subprocess.run([sys.executable, HERE + "/bad_tokenizers.py", T + "/bt"], check=True, capture_output=True,
                     text=True).stdout
for line in man.splitlines():
    name, error, fname, regex, vsize, pre = line.split("|")
    if error in ("TOK_ERR_IO", "TOK_ERR_ARG") or vsize not in ("261", "262"):
        continue
    src, d = f"{T}/bt/{name}", case("bpe_" + name, f"{T}/bpe{vsize}")
    for root, _, files in os.walk(src):
        for f in files:
            rel = os.path.relpath(os.path.join(root, f), src)
            os.makedirs(os.path.dirname(os.path.join(d, rel)), exist_ok=True)
            if rel == "config.json":  # the case's keys over the weights' config
                try:
                    extra = json.load(open(os.path.join(src, rel)))
                except ValueError:
                    extra = None
                if isinstance(extra, dict):
                    edit_json(f"{d}/config.json", lambda j: dict(j, **{k: v for k, v in extra.items() if k != "vocab_size"}))
                    continue
            shutil.copy(os.path.join(root, f), os.path.join(d, rel))
    emit("bpe_" + name, "convert", d, fname, regex, "" if pre == "-" else "--tokenizer-pre " + pre)
def bpe_case(name, fname, regex, mutate, args="--tokenizer-pre gpt-2"):
    d = case("bpe_" + name, f"{T}/bt/good")
    for f in os.listdir(f"{T}/bpe261"):
        if f != "config.json":
            shutil.copy(f"{T}/bpe261/{f}", d)
    edit_json(f"{d}/config.json", lambda j: dict(json.load(open(f"{T}/bpe261/config.json")), **{k: v for k, v in j.items() if k != "vocab_size"}))
    mutate(d)
    emit("bpe_" + name, "convert", d, fname, regex, args)
bpe_case("no_tokenizer", "tokenizer.model", "not found, nor tokenizer.json", lambda d: os.remove(f"{d}/tokenizer.json"))
bpe_case("unknown_pre_tokenizer", "tokenizer.json", "unknown BPE pre-tokenizer .*--tokenizer-pre NAME", lambda d: None, "")
# config.json keys of the new architectures: RoPE scaling types and their parameters, classes
for name, base, key, val, regex in [
        ("cfg_rope_dynamic", B1, "rope_scaling", {"type": "dynamic", "factor": 2.0}, "rope_scaling type 'dynamic' is not supported for LlamaForCausalLM \\(only linear, llama3\\)"),
        ("cfg_rope_longrope", B1, "rope_scaling", {"rope_type": "longrope", "factor": 2.0}, "type 'longrope' is not supported"),
        ("cfg_rope_type_number", B1, "rope_scaling", {"rope_type": 3, "factor": 2.0}, "rope_scaling type '' is not supported"),
        ("cfg_rope_not_object", B1, "rope_scaling", "linear", '"rope_scaling" is not an object'),
        ("cfg_rope_params_not_object", B1, "rope_parameters", [1], '"rope_parameters" is not an object'),
        ("cfg_rope_params_theta_zero", B1, "rope_parameters", {"rope_type": "default", "rope_theta": 0},
         'rope_parameters "rope_theta" is not a positive number'),
        ("cfg_rope_llama3_low_negative", B1, "rope_scaling", {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": -1},
         'rope_scaling "low_freq_factor" is not a positive number'),
        ("cfg_rope_llama3_factor_string", B1, "rope_scaling", {"rope_type": "llama3", "factor": "8"},
         'rope_scaling "factor" is not a positive number'),
        ("cfg_rope_llama3_orig_huge", B1, "rope_scaling", {"rope_type": "llama3", "original_max_position_embeddings": 1 << 40},
         'rope_scaling "original_max_position_embeddings" = 1.09951e\\+12 is above'),
        ("cfg_rope_llama3_freqs_equal", B1, "rope_scaling", {"rope_type": "llama3", "low_freq_factor": 4.0, "high_freq_factor": 4.0},
         "high_freq_factor 4 is not above low_freq_factor 4"),
        ("cfg_qwen3_rope_llama3", B3, "rope_scaling", {"rope_type": "llama3", "factor": 8.0},
         "rope_scaling type 'llama3' is not supported for Qwen3ForCausalLM \\(only linear\\)"),
        ("cfg_qwen3_attention_bias", B3, "attention_bias", True, '"attention_bias" is true: attention biases are not supported'),
        ("cfg_qwen3_head_dim_odd", B3, "head_dim", 7, "head dimension 7 is odd"),
        ("cfg_qwen3_head_dim_zero", B3, "head_dim", 0, '"head_dim" = 0 is outside'),
        ("cfg_qwen3_head_dim_wrong", B3, "head_dim", 16, "but config.json implies"),
        ("cfg_arch_qwen2_moe", B1, "architectures", ["Qwen2MoeForCausalLM"], "architecture 'Qwen2MoeForCausalLM' is not supported \\(only .*Qwen3ForCausalLM\\)"),
        ("cfg_arch_mixtral", B1, "architectures", ["MixtralForCausalLM"], "architecture 'MixtralForCausalLM' is not supported"),
        ]:
    if regex:
        ckpt(name, base, "config.json", regex, cfg_set(key, val))

# GGUF inputs
with open(f"{T}/good.gguf", "rb") as f:
    g = f.read()
os.makedirs(f"{T}/g", exist_ok=True)
def gguf(name, blob, regex, tools="both"):
    p = f"{T}/g/{name}.gguf"
    put(p, blob)
    for tool in (["convert", "inspect"] if tools == "both" else [tools]):
        emit(f"{name}_{tool}", tool, p, f"{name}.gguf", regex)
gguf("gguf_truncated", g[:len(g) // 2], "past the end|truncat")
gguf("gguf_bad_version", g[:4] + struct.pack("<I", 99) + g[8:], "version")
gguf("gguf_huge_kv_count", g[:16] + struct.pack("<Q", 1 << 60) + g[24:], "limit|exceed|cap")
gguf("gguf_header_only", g[:10], "short|truncat")
# a valid GGUF holding a Q8_0 tensor: converts refuse it (inspect reads it fine)
def s(x):
    x = x.encode()
    return struct.pack("<Q", len(x)) + x
hdr = b"GGUF" + struct.pack("<IQQ", 3, 1, 1) + s("general.architecture") + struct.pack("<I", 8) + s("llama")
hdr += s("w.weight") + struct.pack("<I", 2) + struct.pack("<qq", 32, 1) + struct.pack("<IQ", 8, 0)
hdr += bytes((-len(hdr)) % 32)
gguf("gguf_quantized", hdr + bytes(34) + bytes(30), "tensor 'w.weight' has type q8_0", tools="convert")
PY
[ -s "$T/manifest" ] || { echo "could not build the cases"; exit 1; }

# Allocation cap: every case runs with 256 MiB of address space, so a size taken from the
# file and allocated before it is checked fails the case (sanitizer builds reserve terabytes
# of shadow address space: no cap there).
vcap=262144
[ -s "${QFORGE_BUILD:-/nonexistent}/.san" ] && vcap=unlimited
n=0; fails=0
while IFS='|' read -r name tool target fname args regex; do
  n=$((n + 1))
  rm -f "$T/out.gguf"
  if [ "$tool" = convert ]; then
    # shellcheck disable=SC2086 # args: zero or more words
    ( ulimit -v $vcap; exec "$BIN/qforge-convert" "$target" -o "$T/out.gguf" --outtype f16 $args ) >/dev/null 2>"$T/err"; rc=$?
  else
    ( ulimit -v $vcap; exec "$BIN/qforge-inspect" "$target" ) >/dev/null 2>"$T/err"; rc=$?
  fi
  lines=$(wc -l < "$T/err")
  msg=$(head -n 1 "$T/err")
  problem=""
  [ $rc -eq 2 ] || problem="exit $rc, want 2"
  [ -z "$problem" ] && [ "$lines" -ne 1 ] && problem="$lines stderr lines, want 1"
  [ -z "$problem" ] && [ "$(head -c -1 "$T/err" | LC_ALL=C tr -d '\040-\176\200-\377' | wc -c)" -ne 0 ] &&
    problem="control bytes in the message"
  [ -z "$problem" ] && case "$msg" in "qforge-$tool: "*) ;; *) problem="message does not start with the program name";; esac
  [ -z "$problem" ] && { grep -qF -- "$fname" <<<"$msg" || problem="message does not name $fname"; }
  [ -z "$problem" ] && { grep -qE -- "$regex" <<<"$msg" || problem="message does not match /$regex/"; }
  [ -z "$problem" ] && [ -e "$T/out.gguf" ] && problem="output file left behind"
  [ -z "$problem" ] && ls -a "$T" | grep -q 'qforge-tmp' && problem="temp file left behind"
  if [ -n "$problem" ]; then
    fails=$((fails + 1))
    echo "FAIL $name ($tool): $problem"
    sed 's/^/    /' "$T/err" | head -n 3
  fi
done < "$T/manifest"
# Valid files with hostile names: qforge-inspect lists them (exit 0) with control bytes escaped
python3 - "$T" <<'PY'
import json, struct, sys
T = sys.argv[1]
def s(x):
    return struct.pack("<Q", len(x)) + x
h = b"GGUF" + struct.pack("<IQQ", 3, 1, 2)
h += s(b"general.name") + struct.pack("<I", 8) + s(b"evil\x1b[31mRED\x07\nline2")
h += s(b"k\x1b[1mey") + struct.pack("<II", 4, 1)
h += s(b"w\x1b]0;title\x07") + struct.pack("<IQIQ", 1, 8, 0, 0)
h += bytes((-len(h)) % 32) + bytes(32)
open(f"{T}/hostile.gguf", "wb").write(h)
hdr = json.dumps({"a\nb\u001b[2J": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
open(f"{T}/hostile.safetensors", "wb").write(struct.pack("<Q", len(hdr)) + hdr + bytes(4))
PY
for f in hostile.gguf hostile.safetensors; do
  n=$((n + 1))
  "$BIN/qforge-inspect" "$T/$f" >"$T/out" 2>"$T/err"; rc=$?
  if [ $rc -ne 0 ]; then
    fails=$((fails + 1)); echo "FAIL inspect $f: exit $rc"; head -n 3 "$T/err"
  elif [ "$(LC_ALL=C tr -d '\n\040-\176\200-\377' < "$T/out" | wc -c)" -ne 0 ]; then
    fails=$((fails + 1)); echo "FAIL inspect $f: control bytes in the listing"; cat -v "$T/out" | head -n 8
  fi
done

echo "badinput: $n cases, $fails failed"
[ $n -ge 150 ] && [ $fails -eq 0 ]
