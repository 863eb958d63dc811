#!/usr/bin/env bash
# Llama 3, Qwen2 and Qwen3 against llama.cpp (needs ../shared; skipped without it): qforge-convert
# of ../shared/models/synth-* (F32) gives every tensor (name, shape, type, SHA-256 of the bytes)
# and every non-tokenizer metadata key (order, type, value) of reference/synth-*.json, and
# qforge-quantize of that F32 file to Q8_0 and Q4_K_M every tensor llama-quantize wrote.
# The checkpoints' tokenizer.json (byte-level BPE) is not read here: each copy gets a synthetic
# SentencePiece tokenizer.model of the config's vocab_size (qforge-synth's), which the
# converters accept for these classes too; the tokenizer.* keys are not compared.
set -u
ROOT=${QFORGE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${QFORGE_BIN:-$ROOT/bin}
SH=${QFORGE_SHARED:-$ROOT/../shared}
for t in qforge-synth qforge-convert qforge-quantize; do
  [ -x "$BIN/$t" ] || { echo "missing $BIN/$t"; exit 1; }
done
[ -f "$SH/reference/synth-qwen3.json" ] || { echo "../shared/reference/synth-*.json absent"; exit 77; }
T=$(mktemp -d "${TMPDIR:-/tmp}/qforge-archs-XXXXXX")
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

cat > "$T/cmp.py" <<'PY'
import hashlib, json, struct, sys
TYPES = {0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20), 6: ("Q5_0", 32, 22),
         7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110),
         12: ("Q4_K", 256, 144), 13: ("Q5_K", 256, 176), 14: ("Q6_K", 256, 210), 30: ("BF16", 1, 2)}
VT = {0: ("uint8", "<B"), 1: ("int8", "<b"), 2: ("uint16", "<H"), 3: ("int16", "<h"), 4: ("uint32", "<I"),
      5: ("int32", "<i"), 6: ("float32", "<f"), 7: ("bool", "<?"), 10: ("uint64", "<Q"), 11: ("int64", "<q"),
      12: ("float64", "<d")}

def read_gguf(path):
    b = open(path, "rb").read()
    assert b[:4] == b"GGUF", path
    pos = 8
    def u(fmt):
        nonlocal pos
        v = struct.unpack_from(fmt, b, pos)[0]
        pos += struct.calcsize(fmt)
        return v
    def s():
        n = u("<Q")
        nonlocal pos
        v = b[pos:pos + n].decode("utf-8")
        pos += n
        return v
    def val(t):
        if t == 8:
            return "string", s()
        if t == 9:
            et, n = u("<I"), u("<Q")
            return "array", [val(et)[1] for _ in range(n)]
        name, fmt = VT[t]
        return name, u(fmt)
    nt, nkv = u("<Q"), u("<Q")
    kv = []
    for _ in range(nkv):
        k = s()
        kv.append((k,) + val(u("<I")))
    infos = []
    for _ in range(nt):
        name = s()
        nd = u("<I")
        ne = [u("<Q") for _ in range(nd)]
        infos.append((name, ne, u("<I"), u("<Q")))
    align = dict((k, v) for k, _, v in kv).get("general.alignment", 32)
    base = (pos + align - 1) // align * align
    tensors = []
    for name, ne, t, off in infos:
        tn, bs, bb = TYPES[t]
        n = 1
        for x in ne[1:]:
            n *= x
        size = ne[0] // bs * bb * n
        tensors.append({"name": name, "shape": ne, "type": tn,
                        "sha256": hashlib.sha256(b[base + off:base + off + size]).hexdigest()})
    return kv, tensors

got_path, ref_path, what = sys.argv[1:4]
kv, tensors = read_gguf(got_path)
ref = json.load(open(ref_path))
bad = 0
def fail(msg):
    global bad
    bad += 1
    print("  " + msg)
if what == "convert_f32":
    rm = ref["convert_f32"]["metadata"]
    want = [(k, v) for k, v in rm.items() if not k.startswith("tokenizer.")]
    have = [(k, t, v) for k, t, v in kv if not k.startswith("tokenizer.")]
    if [k for k, _ in want] != [k for k, _, _ in have]:
        fail("keys %s, want %s" % ([k for k, _, _ in have], [k for k, _ in want]))
    hv = dict((k, (t, v)) for k, t, v in have)
    for k, w in want:
        if k in hv and (hv[k][0] != w["type"] or hv[k][1] != w["value"]):
            fail("%s = %s %r, want %s %r" % (k, hv[k][0], hv[k][1], w["type"], w["value"]))
    rt = ref["convert_f32"]["tensors"]
    fields = ("name", "shape", "type", "sha256")
else:
    rt = ref["llama_quantize"][what]
    fields = ("name", "type", "sha256")
if len(tensors) != len(rt):
    fail("%d tensors, want %d" % (len(tensors), len(rt)))
for g, w in zip(tensors, rt):
    for f in fields:
        if g[f] != w[f]:
            fail("%s: %s %r, want %r" % (w["name"], f, g[f], w[f]))
print("%s %s: %d tensors%s, %s" % (got_path.rsplit("/", 1)[-1], what, len(tensors),
      "" if what != "convert_f32" else " and %d metadata keys" % len(want), "ok" if not bad else "%d differences" % bad))
sys.exit(1 if bad else 0)
PY

for a in llama3 qwen2 qwen3; do
  src="$SH/models/synth-$a" d="$T/synth-$a"
  mkdir -p "$d"
  ln -s "$src/config.json" "$src/model.safetensors" "$d/"
  vocab=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["vocab_size"])' "$src/config.json")
  "$BIN/qforge-synth" --dim 2 --layers 1 --heads 1 --ffn 1 --vocab "$vocab" -o "$T/tok-$a" >/dev/null \
    && cp "$T/tok-$a/tokenizer.model" "$d/" || { fail "$a: synthetic tokenizer"; continue; }
  "$BIN/qforge-convert" "$d" -o "$T/$a-f32.gguf" --outtype f32 >/dev/null 2>"$T/err" \
    || { fail "$a: qforge-convert: $(cat "$T/err")"; continue; }
  python3 "$T/cmp.py" "$T/$a-f32.gguf" "$SH/reference/synth-$a.json" convert_f32 || fail "$a: conversion"
  for q in Q8_0 Q4_K_M; do
    "$BIN/qforge-quantize" "$T/$a-f32.gguf" "$T/$a-$q.gguf" "$q" >/dev/null 2>"$T/err" \
      || { fail "$a: qforge-quantize $q: $(cat "$T/err")"; continue; }
    python3 "$T/cmp.py" "$T/$a-$q.gguf" "$SH/reference/synth-$a.json" "$q" || fail "$a: $q"
  done
done
[ $fails -eq 0 ] || exit 1
