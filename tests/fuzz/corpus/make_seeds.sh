#!/usr/bin/env bash
# Rebuilds the fuzz seed corpora in tests/fuzz/corpus/<target>/ (small files; keep the total
# under 2 MB). Valid seeds come from bin/qforge-synth (+ qforge-convert / qforge-quantize) with
# tiny dimensions and, when ../shared is present, the demo model's small files; bad-input seeds
# are written by the python below and by tests/tools/badinput_runtime.sh (QFORGE_BADINPUT_KEEP).
# Inputs that once failed (or guard a fixed bug) go to tests/fuzz/regress/<target>/ instead: bench/fuzz.sh
# runs each of them once before fuzzing, so a known failure is reported without blocking the run.
# Usage: tests/fuzz/corpus/make_seeds.sh   (from anywhere; needs `make` done first)
set -eu
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
C="$ROOT/tests/fuzz/corpus"
BIN=${QFORGE_BIN:-$ROOT/bin}
SHARED="$ROOT/../shared"
T=$(mktemp -d "${TMPDIR:-/tmp}/qforge-seeds-XXXXXX")
trap 'rm -rf "$T"' EXIT
for d in safetensors st_index config spm gguf model tokenizer text imatrix; do mkdir -p "$C/$d"; done
mkdir -p "$C/../regress/imatrix" "$C/../regress/model" "$C/../regress/config" "$C/../regress/st_index" "$C/../regress/safetensors"

# ---- valid files from the tools
"$BIN/qforge-synth" --dim 8 --layers 1 --heads 2 --kv-heads 1 --ffn 16 --vocab 259 --ctx 64 --dtype bf16 -o "$T/t8" >/dev/null
"$BIN/qforge-synth" --dim 8 --layers 2 --heads 2 --ffn 16 --vocab 260 --ctx 64 --dtype f16 --tied --shards 2 -o "$T/t8s" >/dev/null
"$BIN/qforge-synth" --dim 32 --layers 1 --heads 4 --kv-heads 2 --ffn 64 --vocab 259 --ctx 64 --dtype f32 -o "$T/t32" >/dev/null
cp "$T/t8/model.safetensors" "$C/safetensors/synth-d8-bf16.safetensors"
cp "$T/t8s/model-00001-of-00002.safetensors" "$C/safetensors/synth-d8-f16-shard1.safetensors"
cp "$T/t8/tokenizer.model" "$C/spm/synth-259.model"
cp "$T/t8/config.json" "$C/config/synth-d8-config.json"
cp "$T/t8s/model.safetensors.index.json" "$C/st_index/synth-2shard-index.json"
"$BIN/qforge-convert" "$T/t8" -o "$T/t8-f32.gguf" --outtype f32 >/dev/null
"$BIN/qforge-convert" "$T/t8s" -o "$T/t8s-f16.gguf" --outtype f16 >/dev/null
"$BIN/qforge-quantize" "$T/t32" "$T/t32-q8_0.gguf" Q8_0 >/dev/null
"$BIN/qforge-quantize" --pure "$T/t32" "$T/t32-q4_0.gguf" Q4_0 >/dev/null
for f in t8-f32 t8s-f16 t32-q8_0 t32-q4_0; do cp "$T/$f.gguf" "$C/model/synth-$f.gguf"; done
cp "$T/t8-f32.gguf" "$C/gguf/synth-t8-f32.gguf"
cp "$T/t32-q4_0.gguf" "$C/gguf/synth-t32-q4_0.gguf"

# ---- the demo model's small files (the tokenizer target reads spm/classics-7m.model)
if [ -d "$SHARED/models/classics-7m" ]; then
  cp "$SHARED/models/classics-7m/tokenizer.model" "$C/spm/classics-7m.model"
  cp "$SHARED/models/classics-7m/config.json" "$C/config/classics-7m-config.json"
  cp "$SHARED/models/classics-7m/model.safetensors.index.json" "$C/st_index/classics-7m-index.json"
  { cat "$SHARED/models/classics-7m/config.json"; printf '\n====\n'; cat "$SHARED/models/classics-7m/tokenizer_config.json"; } \
    > "$C/config/classics-7m-config+tokcfg.json"
fi

# ---- runtime bad inputs (GGUF edits of a tiny model)
QFORGE_BIN="$BIN" QFORGE_BADINPUT_KEEP="$T/bad" bash "$ROOT/tests/tools/badinput_runtime.sh" >/dev/null || true
for f in "$T"/bad/*.gguf; do
  case $(basename "$f") in good.gguf) continue ;; esac
  cp "$f" "$C/model/bad-$(basename "$f")"
done

# ---- hand-made seeds, valid and broken
python3 - "$C" <<'PY'
import json, struct, sys
C = sys.argv[1]
def w(path, data):
    open(f"{C}/{path}", "wb").write(data if isinstance(data, bytes) else data.encode())

# safetensors
def st(header, data=b"", pad=True):
    h = header if isinstance(header, bytes) else json.dumps(header, separators=(",", ":")).encode()
    if pad: h += b" " * ((-len(h)) % 8)
    return struct.pack("<Q", len(h)) + h + data
F32 = lambda n: b"\0\0\x80\x3f" * n
w("safetensors/two-f32-meta.safetensors", st({"__metadata__": {"format": "pt"}, "a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}, "b": {"dtype": "F32", "shape": [3], "data_offsets": [16, 28]}}, F32(7)))
w("safetensors/scalar-and-empty.safetensors", st({"s": {"dtype": "F32", "shape": [], "data_offsets": [0, 4]}, "e": {"dtype": "BF16", "shape": [0, 5], "data_offsets": [4, 4]}}, F32(1)))
w("safetensors/all-dtypes.safetensors", st({"u8": {"dtype": "U8", "shape": [8], "data_offsets": [0, 8]}, "i16": {"dtype": "I16", "shape": [4], "data_offsets": [8, 16]}, "f64": {"dtype": "F64", "shape": [1], "data_offsets": [16, 24]}, "f4": {"dtype": "F4", "shape": [16], "data_offsets": [24, 32]}}, b"\1" * 32))
w("safetensors/bad-header-huge.safetensors", struct.pack("<Q", 1 << 40) + b"{}")
w("safetensors/bad-header-past-end.safetensors", struct.pack("<Q", 100) + b"{}      ")
w("safetensors/bad-not-utf8.safetensors", st(b'{"\xff":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', F32(1)))
w("safetensors/bad-not-object.safetensors", st(b"[1,2,3]"))
w("safetensors/bad-duplicate-key.safetensors", st(b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', F32(2)))
w("safetensors/bad-gap.safetensors", st({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}}, F32(3)))
w("safetensors/bad-overlap.safetensors", st({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, F32(3)))
w("safetensors/bad-trailing.safetensors", st({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, F32(2)))
w("safetensors/bad-dtype.safetensors", st({"a": {"dtype": "f32", "shape": [1], "data_offsets": [0, 4]}}, F32(1)))
w("safetensors/bad-size.safetensors", st({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, F32(2)))
w("safetensors/bad-reversed.safetensors", st({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}}, F32(1)))
w("safetensors/bad-negative-shape.safetensors", st({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, F32(1)))
w("safetensors/bad-overflow-shape.safetensors", st({"a": {"dtype": "F32", "shape": [4294967296, 4294967296, 16], "data_offsets": [0, 4]}}, F32(1)))
w("safetensors/bad-rank17.safetensors", st({"a": {"dtype": "F32", "shape": [1] * 17, "data_offsets": [0, 4]}}, F32(1)))
w("safetensors/bad-meta-nested.safetensors", st({"__metadata__": {"k": {"x": 1}}, "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, F32(1)))
w("safetensors/bad-f4-odd.safetensors", st({"a": {"dtype": "F4", "shape": [3], "data_offsets": [0, 1]}}, b"\0"))
w("safetensors/bad-short.safetensors", b"\x08\0\0")

# index (for the fuzz_st_index fixture: tests/fuzz/support.c)
names = ["lm_head.weight", "model.embed_tokens.weight", "model.norm.weight"]
layer = ["input_layernorm.weight", "self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight",
         "self_attn.o_proj.weight", "post_attention_layernorm.weight", "mlp.gate_proj.weight", "mlp.up_proj.weight",
         "mlp.down_proj.weight"]
shard = {"lm_head.weight": 2, "model.embed_tokens.weight": 1, "model.norm.weight": 2}
for l in range(2):
    for s in layer:
        n = f"model.layers.{l}.{s}"; names.append(n); shard[n] = l + 1
wm = {n: f"model-0000{shard[n]}-of-00002.safetensors" for n in sorted(names)}
def idx(m, extra=None):
    d = {"metadata": {"total_size": 0}, "weight_map": m}
    if extra: d.update(extra)
    return json.dumps(d, indent=2)
w("st_index/fixture-valid.json", idx(wm))
w("st_index/bad-no-weight-map.json", json.dumps({"metadata": {}}))
w("st_index/bad-weight-map-array.json", json.dumps({"weight_map": list(wm)}))
w("st_index/bad-entry-not-string.json", idx({**wm, "lm_head.weight": 2}))
w("st_index/bad-traversal.json", idx({**wm, "lm_head.weight": "../model-00002-of-00002.safetensors"}))
w("st_index/bad-absolute.json", idx({**wm, "lm_head.weight": "/etc/passwd"}))
w("st_index/bad-dotdot.json", idx({**wm, "lm_head.weight": ".."}))
w("st_index/bad-empty.json", idx({}))
w("st_index/bad-missing-shard.json", idx({**wm, "lm_head.weight": "model-00003-of-00003.safetensors"}))
w("st_index/bad-wrong-shard.json", idx({**wm, "lm_head.weight": "model-00001-of-00002.safetensors"}))
m2 = dict(wm); del m2["model.norm.weight"]
w("st_index/bad-tensor-unlisted.json", idx(m2))
w("st_index/bad-extra-tensor.json", idx({**wm, "model.layers.0.extra.weight": "model-00001-of-00002.safetensors"}))
w("st_index/bad-not-a-shard.json", idx({**wm, "lm_head.weight": "config.json"}))
w("st_index/bad-duplicate-key.json", '{"weight_map": {"a": "x.safetensors", "a": "y.safetensors"}}')
w("st_index/bad-not-json.json", '{"weight_map": {')

# config.json (+ tokenizer_config.json, tokenizer.json, added_tokens.json, chat_template.jinja after "\n====\n")
base = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4, "intermediate_size": 4,
        "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1, "vocab_size": 8,
        "max_position_embeddings": 16, "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "hidden_act": "silu",
        "tie_word_embeddings": False, "bos_token_id": 1, "eos_token_id": 2,
        "_name_or_path": "fuzz/Tiny-Llama-v0.1-8B-Instruct"}
SEP = "\n====\n"
def cfg(**kw):
    d = dict(base); d.update(kw)
    return json.dumps({k: v for k, v in d.items() if v is not None}, indent=2)
w("config/fixture-valid.json", cfg())
tokcfg = {"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": {"content": "</s>"},
          "add_prefix_space": False, "chat_template": "{% for m in messages %}{{ m.content }}{% endfor %}",
          "added_tokens_decoder": {"6": {"content": "<|user|>", "special": True}, "7": {"content": "\u2581hi", "special": False}}}
tokjson = {"added_tokens": [{"id": 1, "content": "<s>"}, {"id": 2, "content": "</s>"}]}
w("config/fixture-all-files.json", cfg() + SEP + json.dumps(tokcfg) + SEP + json.dumps(tokjson) + SEP +
  json.dumps({"<extra>": 5, "<big>": 99}) + SEP + "{{ bos_token }}")
w("config/fixture-template-file.json", cfg() + SEP + "{}" + SEP + SEP + SEP + "{% if x %}{{ x }}{% endif %}")
w("config/fixture-rope-linear.json", cfg(rope_scaling={"type": "linear", "factor": 2.0}, head_dim=2))
w("config/fixture-tied.json", cfg(tie_word_embeddings=True))
for i, nop in enumerate(["Qwen/Qwen2.5-Coder-7B-Instruct-GGUF", "a-b-c-d-e-f-g-h-i-j-k-l-m-n-o-p-q-r-s-t-u-v-w-x-y-z",
                         "meta-llama/Llama-3.1-8x7B-v2.1-iter3-A2.7B-finetune", "-" * 300, "x/" * 40, "1B-2B-3B",
                         "\u00e9\u00e8\u2581-v1-7b"]):
    w(f"config/name-or-path-{i}.json", cfg(_name_or_path=nop))
w("config/fixture-llama3-rope.json", cfg(rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                                     "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}))
w("config/fixture-rope-parameters.json", cfg(rope_theta=None, rope_parameters={"rope_type": "default", "rope_theta": 5e5}))
w("config/fixture-mistral.json", cfg(architectures=["MistralForCausalLM"], model_type="mistral"))
w("config/fixture-qwen2.json", cfg(architectures=["Qwen2ForCausalLM"], model_type="qwen2", tie_word_embeddings=True))
w("config/fixture-qwen3.json", cfg(architectures=["Qwen3ForCausalLM"], model_type="qwen3", head_dim=2))
w("config/bad-arch.json", cfg(architectures=["GPT2LMHeadModel"]))
w("config/bad-arch-missing.json", cfg(architectures=None))
w("config/bad-arch-empty.json", cfg(architectures=[]))
w("config/bad-heads.json", cfg(num_attention_heads=3))
w("config/bad-kv-heads.json", cfg(num_key_value_heads=3))
w("config/bad-head-dim-odd.json", cfg(head_dim=3))
w("config/bad-rope-yarn.json", cfg(rope_scaling={"rope_type": "yarn", "factor": 4.0}))
w("config/bad-vocab.json", cfg(vocab_size=9))
w("config/bad-vocab-huge.json", cfg(vocab_size=2 ** 40))
w("config/bad-layers-zero.json", cfg(num_hidden_layers=0))
w("config/bad-eps-negative.json", cfg(rms_norm_eps=-1))
w("config/bad-float-size.json", cfg(hidden_size=4.0))
w("config/bad-bias.json", cfg(attention_bias=True))
w("config/bad-act.json", cfg(hidden_act="gelu"))
w("config/bad-tokcfg-decoder.json", cfg() + SEP + json.dumps({"added_tokens_decoder": {"x": {"content": "a"}, "99": {"content": "b"}}}))
w("config/bad-added-tokens.json", cfg() + SEP + "{}" + SEP + SEP + json.dumps({"<x>": -1}))
w("config/bad-negative-token-id.json", cfg(bos_token_id=-5))
w("config/bad-not-json.json", '{"architectures": ["LlamaForCausalLM"],')

# tokenizer.model pieces (protobuf)
def varint(v):
    out = b""
    while True:
        b = v & 0x7f; v >>= 7
        out += bytes([b | (0x80 if v else 0)])
        if not v: return out
def fld(n, wt, payload):
    key = varint(n << 3 | wt)
    if wt == 2: return key + varint(len(payload)) + payload
    return key + payload
def piece(s, score=0.0, ty=None):
    p = fld(1, 2, s) + fld(2, 5, struct.pack("<f", score))
    if ty is not None: p += fld(3, 0, varint(ty))
    return fld(1, 2, p)
pieces = piece(b"<unk>", 0, 2) + piece(b"<s>", 0, 3) + piece(b"</s>", 0, 3) + b"".join(
    piece(f"<0x{b:02X}>".encode(), 0, 6) for b in range(256)) + piece(b"\xe2\x96\x81", -1) + piece(b"a", -2)
trainer = fld(2, 2, fld(3, 0, varint(2)) + fld(4, 0, varint(261)) + fld(35, 0, varint(1)) + fld(40, 0, varint(0)) +
              fld(41, 0, varint(1)) + fld(42, 0, varint(2)) + fld(43, 0, varint(2 ** 64 - 1)))
norm = fld(3, 2, fld(1, 2, b"identity") + fld(3, 0, varint(0)) + fld(4, 0, varint(1)) + fld(5, 0, varint(1)))
w("spm/bytes-bpe.model", pieces + trainer + norm)
w("spm/unknown-fields.model", piece(b"a") + fld(99, 2, b"xyz") + fld(100, 0, varint(5)) + fld(101, 1, b"12345678") + fld(102, 5, b"1234"))
w("spm/bad-truncated.model", (pieces + trainer)[:-3])
w("spm/bad-varint-11.model", fld(2, 2, b"\x20" + b"\xff" * 10 + b"\x01"))
w("spm/bad-group.model", b"\x0b\x0c")
w("spm/bad-wire-6.model", b"\x0e")
w("spm/bad-piece-wrong-wire.model", fld(1, 2, b"\x08\x01"))
w("spm/bad-duplicate.model", piece(b"a") + piece(b"a"))
w("spm/bad-empty-piece.model", piece(b""))
w("spm/bad-length-past-end.model", b"\x0a\xff\xff\x03" + b"\x0a\x01a")
w("spm/bad-huge-length.model", b"\x0a" + varint(2 ** 62) + b"x")

# GGUF headers and broken headers
def gstr(s): s = s.encode() if isinstance(s, str) else s; return struct.pack("<Q", len(s)) + s
def kv(k, t, v): return gstr(k) + struct.pack("<I", t) + v
def gguf(kvs, tinfos=b"", nt=0, ver=3, data=b"", align=32):
    h = b"GGUF" + struct.pack("<IQQ", ver, nt, len(kvs)) + b"".join(kvs) + tinfos
    if nt: h += b"\0" * ((-len(h)) % align)
    return h + data
u32 = lambda v: struct.pack("<I", v)
arr = lambda et, items: struct.pack("<IQ", et, len(items)) + b"".join(items)
w("gguf/kv-all-types.gguf", gguf([kv("u8", 0, b"\x01"), kv("i8", 1, b"\xff"), kv("u16", 2, b"\1\0"), kv("i16", 3, b"\xff\xff"),
    kv("u32", 4, u32(7)), kv("i32", 5, u32(2 ** 32 - 1)), kv("f32", 6, struct.pack("<f", 1.5)), kv("bool", 7, b"\1"),
    kv("str", 8, gstr("hello")), kv("u64", 10, struct.pack("<Q", 2 ** 63)), kv("i64", 11, struct.pack("<q", -1)),
    kv("f64", 12, struct.pack("<d", 2.5)), kv("arr.str", 9, arr(8, [gstr("a"), gstr(""), gstr("c\0d")])),
    kv("arr.bool", 9, arr(7, [b"\0", b"\1"])), kv("arr.f32", 9, arr(6, [struct.pack("<f", 0.5)] * 3)),
    kv("general.alignment", 4, u32(64))]))
ti = gstr("t") + u32(2) + struct.pack("<qq", 32, 2) + u32(8) + struct.pack("<Q", 0)
w("gguf/one-q8_0-tensor.gguf", gguf([kv("general.architecture", 8, gstr("llama"))], ti, 1, data=b"\0" * 68))
w("gguf/v2-header.gguf", gguf([kv("a", 4, u32(1))], ver=2))
w("gguf/bad-version.gguf", gguf([], ver=4))
w("gguf/bad-magic.gguf", b"GGUG" + b"\0" * 20)
w("gguf/bad-n-kv-huge.gguf", b"GGUF" + struct.pack("<IQQ", 3, 0, 2 ** 40))
w("gguf/bad-string-huge.gguf", b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 2 ** 63) + b"k")
w("gguf/bad-nested-array.gguf", gguf([kv("a", 9, struct.pack("<IQ", 9, 1) + struct.pack("<IQ", 4, 0))]))
w("gguf/bad-dup-key.gguf", gguf([kv("a", 4, u32(1)), kv("a", 4, u32(2))]))
w("gguf/bad-bool.gguf", gguf([kv("b", 7, b"\x02")]))
w("gguf/bad-alignment.gguf", gguf([kv("general.alignment", 4, u32(48))]))
w("gguf/bad-tensor-dims.gguf", gguf([], gstr("t") + u32(5) + struct.pack("<qqqqq", 1, 1, 1, 1, 1) + u32(0) + struct.pack("<Q", 0), 1, data=b"\0" * 4))
w("gguf/bad-tensor-neg.gguf", gguf([], gstr("t") + u32(1) + struct.pack("<q", -4) + u32(0) + struct.pack("<Q", 0), 1, data=b"\0" * 16))
w("gguf/bad-tensor-overflow.gguf", gguf([], gstr("t") + u32(4) + struct.pack("<qqqq", 2 ** 31, 2 ** 31, 2 ** 31, 2 ** 31) + u32(0) + struct.pack("<Q", 0), 1))
w("gguf/bad-tensor-type.gguf", gguf([], gstr("t") + u32(1) + struct.pack("<q", 32) + u32(4) + struct.pack("<Q", 0), 1, data=b"\0" * 64))
w("gguf/bad-tensor-block.gguf", gguf([], gstr("t") + u32(1) + struct.pack("<q", 31) + u32(8) + struct.pack("<Q", 0), 1, data=b"\0" * 64))
w("gguf/bad-tensor-offset.gguf", gguf([], gstr("t") + u32(1) + struct.pack("<q", 4) + u32(0) + struct.pack("<Q", 64), 1, data=b"\0" * 16))
w("gguf/bad-tensor-misaligned.gguf", gguf([], gstr("t") + u32(1) + struct.pack("<q", 4) + u32(0) + struct.pack("<Q", 4), 1, data=b"\0" * 64))
two = gstr("a") + u32(1) + struct.pack("<q", 8) + u32(0) + struct.pack("<Q", 0) + gstr("b") + u32(1) + struct.pack("<q", 8) + u32(0) + struct.pack("<Q", 0)
w("gguf/bad-tensor-overlap.gguf", gguf([], two, 2, data=b"\0" * 64))
w("gguf/bad-tensor-name-long.gguf", gguf([], gstr("n" * 64) + u32(1) + struct.pack("<q", 4) + u32(0) + struct.pack("<Q", 0), 1, data=b"\0" * 32))
w("gguf/bad-truncated.gguf", gguf([kv("s", 8, gstr("hello"))])[:-3])

# tokenizer texts: byte 0 = flags (1 BOS, 2 EOS, 4 parse special, 8 vocabulary B)
texts = {
    "plain": (1, "The old prince was at his desk, and Natasha ran into the room laughing."),
    "spaces": (0, "  two  spaces \t tab\nnewline\r\n   "),
    "specials": (5, "<s>hello</s> <unk> <|user|> text"),
    "specials-b": (12, "<|user|> hi <|end|>   after</s>x ab [PAD7] <s2>"),
    "unicode": (3, "caf\u00e9 \u2014 \u4e2d\u6587 \U0001F600 \u2581\u2581 na\u00efve"),
    "bytes": (0, "<0x41> <0xFF>"),
    "invalid-utf8": (1, b"\xff\xfe\xc3 \xe2\x96 \xf0\x9f\x98 \xed\xa0\x80 end \x00 nul"),
    "empty": (3, ""),
    "b-no-fallback": (8, b"\x03\x0a\x11 missing bytes"),
}
for name, (flags, t) in texts.items():
    b = t if isinstance(t, bytes) else t.encode()
    w(f"tokenizer/{name}.txt", bytes([flags]) + b)

# text files (plain or gzip)
import gzip, zlib
para = ("Prince Andrew looked at the sky. \u00c9t\u00e9, na\u00efve \u2014 \u4e2d\u6587 \U0001F600\n" * 20).encode()
w("text/plain.txt", para)
w("text/empty.txt", b"")
w("text/gzip.txt.gz", gzip.compress(para, mtime=0))
w("text/gzip-two-members.gz", gzip.compress(para[:300], mtime=0) + gzip.compress(para[300:], mtime=0))
w("text/gzip-empty.gz", gzip.compress(b"", mtime=0))
g = bytearray(gzip.compress(para, mtime=0)); g[-8] ^= 1
w("text/bad-gzip-crc.gz", bytes(g))
w("text/bad-gzip-truncated.gz", gzip.compress(para, mtime=0)[:40])
w("text/bad-gzip-trailing-garbage.gz", gzip.compress(para, mtime=0) + b"garbage")
hdr = b"\x1f\x8b\x08\x1c" + b"\0" * 4 + b"\0\xff" + b"\x04\0abcd" + b"name\0" + b"comment\0"
co = zlib.compressobj(9, zlib.DEFLATED, -15); raw = co.compress(para) + co.flush()
w("text/gzip-extra-name-comment.gz", hdr + raw + struct.pack("<II", zlib.crc32(para), len(para)))
w("text/bad-utf8.txt", b"caf\xe9 au lait\n")
w("text/bad-nul.txt", b"a\0b")
w("text/bad-gzip-of-latin1.gz", gzip.compress(b"caf\xe9", mtime=0))
w("text/gzip-bomb-1m.gz", gzip.compress(b"a" * (1 << 20), 9, mtime=0))

# importance matrices: legacy .dat and GGUF
def dat(entries, trailer=None):
    out = struct.pack("<i", len(entries))
    for name, ncall, vals in entries:
        nb = name.encode()
        out += struct.pack("<i", len(nb)) + nb + struct.pack("<ii", ncall, len(vals)) + struct.pack(f"<{len(vals)}f", *vals)
    if trailer:
        ds = trailer[1].encode()
        out += struct.pack("<ii", trailer[0], len(ds)) + ds
    return out
w("imatrix/legacy.dat", dat([("blk.0.attn_q.weight", 10, [1.0, 2.0, 3.0, 4.0]), ("output.weight", 0, [0.5] * 8)], (10, "calibration.txt")))
w("imatrix/bad-legacy-dup.dat", dat([("a", 1, [1.0]), ("a", 1, [2.0])]))
w("imatrix/bad-legacy-nan.dat", dat([("a", 1, [float("nan")])]))
w("imatrix/bad-legacy-count.dat", struct.pack("<ii", 1, 1) + b"a" + struct.pack("<ii", 1, 1 << 30))
w("imatrix/bad-legacy-name.dat", struct.pack("<ii", 1, -5))
w("imatrix/bad-legacy-empty.dat", struct.pack("<i", 0))
def imx(tensors, kvs=None, align=None):
    kvs = list(kvs if kvs is not None else [kv("imatrix.datasets", 9, arr(8, [gstr("calibration.txt")])),
                                            kv("imatrix.chunk_count", 4, u32(10)), kv("imatrix.chunk_size", 4, u32(512))])
    if align: kvs.append(kv("general.alignment", 4, u32(align)))
    al = align or 32
    infos, data = b"", b""
    for name, ne, vals in tensors:
        data += b"\0" * ((-len(data)) % al)
        infos += gstr(name) + u32(len(ne)) + b"".join(struct.pack("<q", d) for d in ne) + u32(0) + struct.pack("<Q", len(data))
        data += struct.pack(f"<{len(vals)}f", *vals)
    return gguf(kvs, infos, len(tensors), data=data, align=al)
good = [("blk.0.ffn_up.weight.in_sum2", [4, 2], [1.0] * 8), ("blk.0.ffn_up.weight.counts", [1, 2], [2.0, 0.0]),
        ("blk.0.ffn_up.weight.in_sum", [4, 2], [0.5] * 8)]
w("imatrix/gguf.imatrix", imx(good))
w("../regress/imatrix/gguf-align1-misaligned.imatrix", imx(good, kvs=[kv("imatrix.datasets", 9, arr(8, [gstr("c.txt")])), kv("imatrix.chunk_count", 4, u32(1)),
                                              kv("imatrix.chunk_size", 4, u32(512)), kv("pad", 8, gstr("x"))], align=1))  # data at an odd offset
w("imatrix/bad-gguf-no-meta.imatrix", imx(good, kvs=[]))
w("imatrix/bad-gguf-no-counts.imatrix", imx(good[:1]))
w("imatrix/bad-gguf-split.imatrix", imx([("w.in_sum2", [3], [1.0] * 3), ("w.counts", [1, 2], [1.0, 1.0])]))
w("imatrix/bad-gguf-count-inf.imatrix", imx([("w.in_sum2", [2], [1.0] * 2), ("w.counts", [1], [float("inf")])]))
# regression inputs for the message bugs (control bytes from the file reach error messages);
# regress/model/model-align1-misaligned.gguf and gemm-f32-tail-store.gguf are kept as files
R = "../regress"
h = st(b'{"a\\\n":1}', pad=False)
w(f"{R}/safetensors/json-error-newline.safetensors", h)
w(f"{R}/config/json-error-newline.json", b'{"architectures": ["LlamaForCausalLM"], "model_type": "llama\\\n"}\n')
w(f"{R}/st_index/json-error-control.json", b'{"weight_map": {\x1b[2J}}')
ov = b""
for n in (b"a\x1b[31m", b"b\nnext"):
    ov += gstr(n) + u32(1) + struct.pack("<q", 8) + u32(0) + struct.pack("<Q", 0)
w(f"{R}/model/gguf-overlap-control-names.gguf", gguf([], ov, 2, data=b"\0" * 64))
def ent(name, vals): return struct.pack("<i", len(name)) + name + struct.pack("<ii", 1, len(vals)) + struct.pack(f"<{len(vals)}f", *vals)
w(f"{R}/imatrix/legacy-control-name.dat", struct.pack("<i", 2) + ent(b"a\n\x1b[2J", [1.0]) + ent(b"a\n\x1b[2J", [2.0]))
PY
du -sh "$C"
du -sh "$C"/*
