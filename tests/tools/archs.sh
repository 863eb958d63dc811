#!/usr/bin/env bash
# Llama 3, Qwen2 and Qwen3 checkpoints as downloaded (tokenizer.json, byte-level BPE) against
# llama.cpp (needs ../shared; skipped without it). For each ../shared/models/synth-*:
#   - qforge-convert --outtype f32 gives every metadata key of reference/synth-*.json (order,
#     type, value; arrays by length, SHA-256 of their JSON text and first entries) and every
#     tensor (name, shape, type, SHA-256 of the bytes);
#   - qforge-quantize of that file to Q8_0 and Q4_K_M gives every tensor llama-quantize wrote;
#   - one-step qforge-quantize CHECKPOINT OUT Q8_0|Q4_K_M is byte-identical to that two-step file;
#   - one-step --gptq Q4_K_M writes the same tensors, types and file size as the plain file;
#   - qforge-perplexity (wiki.test.raw's first 40000 bytes, -c 128, 8 chunks) of F32, Q8_0 and
#     Q4_K_M equals llama-perplexity's figure within 0.02 %: the reference JSON's (llama.cpp's
#     AVX-512 build) on the avx512 kernel path, the AVX2 build's (below) on avx2/avxvnni/scalar.
# --tokenizer-pre overrides the detected name. QFORGE_ISA selects the kernel path as usual.
set -u
ROOT=${QFORGE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${QFORGE_BIN:-$ROOT/bin}
SH=${QFORGE_SHARED:-$ROOT/../shared}
for t in qforge-convert qforge-quantize qforge-perplexity qforge-inspect; do
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
            items = [val(et)[1] for _ in range(n)]
            return "array[%s]" % ("STRING" if et == 8 else VT[et][0].upper()), items
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
bad = 0
def fail(msg):
    global bad
    bad += 1
    print("  " + msg)
if what == "same_plan":  # ref_path is another GGUF: same names, shapes and types
    _, other = read_gguf(ref_path)
    a = [(t["name"], t["shape"], t["type"]) for t in tensors]
    b = [(t["name"], t["shape"], t["type"]) for t in other]
    if a != b:
        fail("tensors differ: %s" % [x for x, y in zip(a, b) if x != y][:3])
    print("%s: %d tensors as in %s, %s" % (got_path.rsplit("/", 1)[-1], len(a), ref_path.rsplit("/", 1)[-1],
                                          "ok" if not bad else "different"))
    sys.exit(1 if bad else 0)
ref = json.load(open(ref_path))
if what == "convert_f32":
    rm = ref["convert_f32"]["metadata"]
    if [k for k, _, _ in kv] != list(rm):
        fail("keys %s, want %s" % ([k for k, _, _ in kv], list(rm)))
    hv = dict((k, (t, v)) for k, t, v in kv)
    for k, w in rm.items():
        if k not in hv:
            continue
        t, v = hv[k]
        if t != w["type"]:
            fail("%s is %s, want %s" % (k, t, w["type"]))
        elif "value" in w:
            if v != w["value"]:
                fail("%s = %r, want %r" % (k, v, w["value"]))
        else:
            h = hashlib.sha256(json.dumps(v, ensure_ascii=False).encode()).hexdigest()
            if len(v) != w["length"] or h != w["sha256"] or v[:len(w["head"])] != w["head"]:
                fail("%s: %d entries (sha256 %.16s, head %r), want %d (sha256 %.16s, head %r)" % (
                    k, len(v), h, v[:4], w["length"], w["sha256"], w["head"][:4]))
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
      "" if what != "convert_f32" else " and %d metadata keys" % len(kv), "ok" if not bad else "%d differences" % bad))
sys.exit(1 if bad else 0)
PY

# llama-perplexity's figures with the ggml libraries of llama.cpp's AVX2 build (GGML_NATIVE=OFF,
# AVX2/FMA/F16C, no AVX-512; see tests/test_perplexity.c), on qforge's F32 conversion and
# quantizations (every tensor and key equal to llama.cpp's own, checked above):
#   LD_LIBRARY_PATH=AVX2-BUILD/bin llama-perplexity -m FILE -f WIKI40K -c 128 --chunks 8 -t 2
# The AVX-512 build's figures are the reference JSON's (reproduced the same way).
avx2_ppl() {
  case "$1" in
    llama3/f32) echo 306432.6230;; llama3/Q8_0) echo 304594.2460;; llama3/Q4_K_M) echo 311759.3492;;
    qwen2/f32) echo 289324.4287;;  qwen2/Q8_0) echo 290010.7585;;  qwen2/Q4_K_M) echo 287837.1931;;
    qwen3/f32) echo 308642.0128;;  qwen3/Q8_0) echo 307966.2929;;  qwen3/Q4_K_M) echo 308135.4159;;
  esac
}
head -c 40000 "$SH/text/wiki.test.raw" > "$T/wiki40k.txt"

for a in llama3 qwen2 qwen3; do
  ck="$SH/models/synth-$a" ref="$SH/reference/synth-$a.json" f32="$T/$a-f32.gguf"
  "$BIN/qforge-convert" "$ck" -o "$f32" --outtype f32 >/dev/null 2>"$T/err" \
    || { fail "$a: qforge-convert: $(cat "$T/err")"; continue; }
  python3 "$T/cmp.py" "$f32" "$ref" convert_f32 || fail "$a: conversion"
  for q in Q8_0 Q4_K_M; do
    "$BIN/qforge-quantize" "$f32" "$T/$a-$q.gguf" "$q" >/dev/null 2>"$T/err" \
      || { fail "$a: qforge-quantize $q: $(cat "$T/err")"; continue; }
    python3 "$T/cmp.py" "$T/$a-$q.gguf" "$ref" "$q" || fail "$a: $q"
    "$BIN/qforge-quantize" "$ck" "$T/$a-$q-1.gguf" "$q" >/dev/null 2>"$T/err" \
      || { fail "$a: one-step qforge-quantize $q: $(cat "$T/err")"; continue; }
    cmp -s "$T/$a-$q-1.gguf" "$T/$a-$q.gguf" && echo "$a-$q: one step = two steps" \
      || fail "$a: one-step $q differs from quantizing the F32 conversion"
    rm -f "$T/$a-$q-1.gguf"
  done
  "$BIN/qforge-quantize" --gptq --calib-samples 4 --calib-ctx 64 "$ck" "$T/$a-gptq.gguf" Q4_K_M >/dev/null 2>"$T/err" \
    || fail "$a: one-step --gptq: $(tail -n 1 "$T/err")"
  if [ -f "$T/$a-gptq.gguf" ] && [ -f "$T/$a-Q4_K_M.gguf" ]; then
    python3 "$T/cmp.py" "$T/$a-gptq.gguf" "$T/$a-Q4_K_M.gguf" same_plan || fail "$a: --gptq tensors"
    [ "$(stat -c %s "$T/$a-gptq.gguf")" = "$(stat -c %s "$T/$a-Q4_K_M.gguf")" ] || fail "$a: --gptq file size"
    cmp -s "$T/$a-gptq.gguf" "$T/$a-Q4_K_M.gguf" && fail "$a: --gptq wrote the plain rounding"
  fi
  rm -f "$T/$a-gptq.gguf"
  for q in f32 Q8_0 Q4_K_M; do
    m="$T/$a-$q.gguf"
    [ "$q" = f32 ] && m="$f32"
    [ -f "$m" ] || continue
    "$BIN/qforge-perplexity" -m "$m" -f "$T/wiki40k.txt" -c 128 --chunks 8 -t 2 >"$T/out" 2>&1 \
      || { fail "$a $q: qforge-perplexity: $(tail -n 1 "$T/out")"; continue; }
    got=$(sed -n 's/.*Final estimate: PPL = \([0-9.]*\).*/\1/p' "$T/out")
    isa=$(sed -n 's/.*threads, \([a-z0-9]*\) kernels$/\1/p' "$T/out" | head -n 1)
    if [ "$isa" = avx512 ]; then
      want=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["llama_perplexity"]["ppl"][sys.argv[2]])' "$ref" "$q")
    else
      want=$(avx2_ppl "$a/$q")
    fi
    python3 - "$a $q ($isa kernels)" "$got" "$want" <<'PY' || fail "$a $q: perplexity"
import sys
what, got, want = sys.argv[1], float(sys.argv[2] or "nan"), float(sys.argv[3])
d = 100 * (got / want - 1)
print("%s: PPL %.4f, llama-perplexity %.4f (%+.5f %%)" % (what, got, want, d))
sys.exit(0 if abs(d) <= 0.02 else 1)
PY
  done
  rm -f "$T/$a-"*.gguf
done

# --tokenizer-pre: the name written instead of the detected one
"$BIN/qforge-convert" "$SH/models/synth-qwen3" -o "$T/pre.gguf" --tokenizer-pre gpt-2 >/dev/null 2>"$T/err" \
  || fail "--tokenizer-pre gpt-2: $(cat "$T/err")"
"$BIN/qforge-inspect" "$T/pre.gguf" 2>/dev/null | grep -q 'tokenizer.ggml.pre  *string  *"gpt-2"' \
  || fail "--tokenizer-pre gpt-2 is not what tokenizer.ggml.pre holds"
[ $fails -eq 0 ] || exit 1
