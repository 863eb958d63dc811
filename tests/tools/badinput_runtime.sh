#!/usr/bin/env bash
# Bad inputs a runtime meets, through qforge-perplexity: each broken model or text must exit 2
# with exactly one stderr line (warnings aside) that starts "qforge-perplexity: ", names the
# offending file and holds no control bytes; a context longer than the model's must only warn
# (exit 0).
# The broken GGUFs are edits (python3, stdlib only) of a tiny model made here with
# qforge-synth + qforge-convert (1 layer, n_embd 8, 2 heads / 1 KV head, FFN 16, vocab 259,
# context 64, F32). Set QFORGE_BADINPUT_KEEP=DIR to keep the cases (tests/fuzz seeds use it).
set -u
BIN=${QFORGE_BIN:-$(cd "$(dirname "$0")/../.." && pwd)/bin}
P="$BIN/qforge-perplexity"
for t in qforge-perplexity qforge-synth qforge-convert; do
  [ -x "$BIN/$t" ] || { echo "skipped: $BIN/$t is missing"; exit 77; }
done
command -v python3 >/dev/null || { echo "skipped: python3 not available"; exit 77; }
T=$(mktemp -d "${TMPDIR:-/tmp}/qforge-badrt-XXXXXX")
trap 'rm -rf "$T"' EXIT

"$BIN/qforge-synth" --dim 8 --layers 1 --heads 2 --kv-heads 1 --ffn 16 --vocab 259 --ctx 64 --dtype f32 \
  -o "$T/ckpt" >/dev/null || { echo "FAIL: qforge-synth"; exit 1; }
"$BIN/qforge-convert" "$T/ckpt" -o "$T/good.gguf" --outtype f32 >/dev/null || { echo "FAIL: qforge-convert"; exit 1; }

# Texts: good.txt is ~3 KB of English (hundreds of tokens), short.txt far less than two chunks.
python3 - "$T" <<'PY'
import sys
T = sys.argv[1]
words = ("the quick brown fox jumps over the lazy dog while seven wizards quietly judge "
         "boxing matches near the old river bank and pack my box with five dozen liquor jugs ").split()
text = " ".join(words[i % len(words)] for i in range(600)) + "\n"
open(f"{T}/good.txt", "w").write(text)
open(f"{T}/short.txt", "w").write("Too short.\n")
open(f"{T}/latin1.txt", "wb").write(text[:1500].encode() + b"caf\xe9 na\xefve\n" + text[:1500].encode())
PY

# ---------------------------------------------------------------- GGUF editing
python3 - "$T" > "$T/manifest" <<'PY'
import struct, sys
T = sys.argv[1]
SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
STRING, ARRAY = 8, 9
TYPE_SIZE = {0: (1, 4), 1: (1, 2), 30: (1, 2), 8: (32, 34)}  # f32, f16, bf16, q8_0

class R:
    def __init__(s, b): s.b, s.o = b, 0
    def take(s, n):
        v = s.b[s.o:s.o + n]; s.o += n; return v
    def u(s, fmt): return struct.unpack(fmt, s.take(struct.calcsize(fmt)))[0]
    def str(s): return s.take(s.u("<Q"))

def read_value(r, t):
    if t in SCALAR: return r.u(SCALAR[t])
    if t == STRING: return r.str()
    et, n = r.u("<I"), r.u("<Q")
    return (et, [read_value(r, et) for _ in range(n)])

def enc_value(t, v):
    if t in SCALAR: return struct.pack(SCALAR[t], v)
    if t == STRING: return struct.pack("<Q", len(v)) + v
    et, items = v
    return struct.pack("<IQ", et, len(items)) + b"".join(enc_value(et, x) for x in items)

def load(path):
    r = R(open(path, "rb").read())
    assert r.take(4) == b"GGUF"
    ver, nt, nkv = r.u("<I"), r.u("<Q"), r.u("<Q")
    kv = []
    for _ in range(nkv):
        k = r.str().decode(); t = r.u("<I"); kv.append([k, t, read_value(r, t)])
    infos = []
    for _ in range(nt):
        name = r.str().decode(); nd = r.u("<I")
        ne = [r.u("<Q") for _ in range(nd)]; ty = r.u("<I"); off = r.u("<Q")
        infos.append((name, ne, ty, off))
    align = next((v for k, t, v in kv if k == "general.alignment"), 32)
    base = (r.o + align - 1) // align * align
    tensors = []
    for name, ne, ty, off in infos:
        n = 1
        for d in ne: n *= d
        bs, ts = TYPE_SIZE[ty]
        tensors.append([name, ne, ty, r.b[base + off: base + off + n // bs * ts]])
    return {"kv": kv, "t": tensors}

def save(m, path):
    align = 32
    out = [b"GGUF", struct.pack("<IQQ", 3, len(m["t"]), len(m["kv"]))]
    for k, t, v in m["kv"]:
        kb = k.encode()
        out.append(struct.pack("<Q", len(kb)) + kb + struct.pack("<I", t) + enc_value(t, v))
    off = 0
    offs = []
    for name, ne, ty, data in m["t"]:
        offs.append(off)
        off += (len(data) + align - 1) // align * align
    for (name, ne, ty, data), o in zip(m["t"], offs):
        nb = name.encode()
        out.append(struct.pack("<Q", len(nb)) + nb + struct.pack("<I", len(ne)) +
                   b"".join(struct.pack("<Q", d) for d in ne) + struct.pack("<IQ", ty, o))
    head = b"".join(out)
    head += b"\0" * ((-len(head)) % align)
    body = b""
    for name, ne, ty, data in m["t"]:
        body += data + b"\0" * ((-len(data)) % align)
    open(path, "wb").write(head + body)

def kv_get(m, k):
    return next(e for e in m["kv"] if e[0] == k)
def kv_set(m, k, t, v):
    for e in m["kv"]:
        if e[0] == k: e[1], e[2] = t, v; return
    m["kv"].append([k, t, v])
def kv_del(m, k): m["kv"] = [e for e in m["kv"] if e[0] != k]
def t_get(m, name): return next(e for e in m["t"] if e[0] == name)
def t_del(m, name): m["t"] = [e for e in m["t"] if e[0] != name]
def t_reshape(m, name, ne):
    e = t_get(m, name)
    n = 1
    for d in ne: n *= d
    e[1] = ne
    e[3] = (e[3] * (4 * n // max(1, len(e[3])) + 1))[:4 * n]

good = load(f"{T}/good.gguf")
import copy
cases = []
# the problem each message must state (an extended regex)
RE = {
 "tokens-i32": "tokenizer.ggml.tokens is missing or not a string array",
 "tokens-short": "tokenizer.ggml.tokens has 258 entries but token_embd.weight has 259 rows",
 "tokens-missing": "tokenizer.ggml.tokens is missing or not a string array",
 "tokens-duplicate": "duplicate token in vocabulary: '<0x08>' has ids 10 and 11",
 "tokens-scalar": "tokenizer.ggml.tokens is missing or not a string array",
 "scores-strings": "tokenizer.ggml.scores is not an f32/i32 array of at least 259 entries",
 "scores-short": "tokenizer.ggml.scores is not an f32/i32 array of at least 259 entries",
 "token-type-f32": "tokenizer.ggml.token_type is not an i32 array of at least 259 entries",
 "token-type-short": "tokenizer.ggml.token_type is not an i32 array of at least 259 entries",
 "tokenizer-model-gpt2": "tokenizer.ggml.merges is missing or not a string array",
 "bos-out-of-range": "'tokenizer.ggml.bos_token_id' = 1000 is outside the vocabulary \\(259 tokens\\)",
 "eos-out-of-range": "'tokenizer.ggml.eos_token_id' = 259 is outside the vocabulary",
 "bos-wrong-type": "'tokenizer.ggml.bos_token_id' is not an integer",
 "arch-missing": "'general.architecture' is missing",
 "arch-gpt2": "architecture 'gpt2' is not supported",
 "arch-control-bytes": "architecture 'll\\?\\[2J\\?ma' is not supported",
 "tokenizer-model-control-bytes": "tokenizer.ggml.model is 'x\\?\\?y'",
 "rope-scaling-control-bytes": "RoPE scaling 'yarn\\?rm -rf' is not supported",
 "block-count-high": "tensor 'blk.1.attn_q.weight' is missing",
 "block-count-low": "tensor 'blk.1.attn_norm.weight' belongs to layer 1 but block_count is 1",
 "block-count-zero": "'llama.block_count' = 0 is out of range",
 "block-count-missing": "'llama.block_count' is missing",
 "block-count-string": "'llama.block_count' is not an integer",
 "heads-not-dividing": "embedding_length 8 is not a multiple of head_count 3",
 "heads-vs-tensors": "head_count_kv 1 × head dimension 2 = 2, but tensor 'blk.0.attn_k.weight' has 4 rows",
 "kv-heads-not-dividing": "head_count 2 is not a multiple of head_count_kv 3",
 "kv-heads-zero": "'llama.attention.head_count_kv' = 0 is out of range",
 "embd-vs-tensors": "embedding_length 16, but tensor 'token_embd.weight' has rows of 8 values",
 "ffn-vs-tensors": "tensor 'blk.0.ffn_gate.weight' has shape \\[8, 16, 1, 1\\], expected \\[8, 32\\]",
 "eps-missing": "'llama.attention.layer_norm_rms_epsilon' is missing",
 "eps-negative": "'llama.attention.layer_norm_rms_epsilon' = -1 is out of range",
 "rope-dims": "partial RoPE \\(dimension_count 2 of 4\\) is not supported",
 "shape-attn-q": "head_count 2 × head dimension 4 = 8, but tensor 'blk.0.attn_q.weight' has 4 rows",
 "shape-embd-3d": "tensor 'token_embd.weight' has shape \\[8, 259, 2, 1\\], expected \\[8, 259\\]",
 "shape-norm": "tensor 'blk.0.attn_norm.weight' has shape \\[16, 1\\], expected \\[8\\]",
 "shape-output-rows": "tensor 'output.weight' has shape \\[8, 258, 1, 1\\], expected \\[8, 259\\]",
 "missing-ffn-up": "tensor 'blk.0.ffn_up.weight' is missing",
 "missing-output-norm": "tensor 'output_norm.weight' is missing",
 "missing-token-embd": "tensor 'token_embd.weight' is missing",
 "norm-nan": "tensor 'blk.0.ffn_norm.weight' has a non-finite value",
 "unknown-tensor": "tensor 'blk.0.attn_q.bias' is not used by the llama graph",
}
def case(name, expect, why):
    m = copy.deepcopy(good)
    def deco(f):
        f(m)
        save(m, f"{T}/{name}.gguf")
        cases.append((name, expect, why, RE[name]))
    return deco

toks = kv_get(good, "tokenizer.ggml.tokens")[2][1]
V = len(toks)

@case("tokens-i32", 2, "tokenizer.ggml.tokens is an i32 array, not strings")
def _(m): kv_set(m, "tokenizer.ggml.tokens", ARRAY, (5, list(range(V))))
@case("tokens-short", 2, "tokenizer.ggml.tokens has one entry fewer than token_embd rows")
def _(m): kv_get(m, "tokenizer.ggml.tokens")[2][1].pop()
@case("tokens-missing", 2, "no tokenizer.ggml.tokens")
def _(m): kv_del(m, "tokenizer.ggml.tokens")
@case("tokens-duplicate", 2, "two tokens with the same text")
def _(m): kv_get(m, "tokenizer.ggml.tokens")[2][1][10] = kv_get(m, "tokenizer.ggml.tokens")[2][1][11]
@case("tokens-scalar", 2, "tokenizer.ggml.tokens is a string, not an array")
def _(m): kv_set(m, "tokenizer.ggml.tokens", STRING, b"abc")
@case("scores-strings", 2, "tokenizer.ggml.scores is a string array")
def _(m): kv_set(m, "tokenizer.ggml.scores", ARRAY, (STRING, [b"0"] * V))
@case("scores-short", 2, "tokenizer.ggml.scores shorter than the vocabulary")
def _(m): kv_get(m, "tokenizer.ggml.scores")[2][1].pop()
@case("token-type-f32", 2, "tokenizer.ggml.token_type is an f32 array")
def _(m): kv_set(m, "tokenizer.ggml.token_type", ARRAY, (6, [1.0] * V))
@case("token-type-short", 2, "tokenizer.ggml.token_type shorter than the vocabulary")
def _(m): kv_get(m, "tokenizer.ggml.token_type")[2][1].pop()
@case("tokenizer-model-gpt2", 2, "tokenizer.ggml.model is gpt2 (BPE) with no merges")
def _(m): kv_set(m, "tokenizer.ggml.model", STRING, b"gpt2")
@case("bos-out-of-range", 2, "tokenizer.ggml.bos_token_id = vocab + 741")
def _(m): kv_set(m, "tokenizer.ggml.bos_token_id", 4, 1000)
@case("eos-out-of-range", 2, "tokenizer.ggml.eos_token_id = vocab")
def _(m): kv_set(m, "tokenizer.ggml.eos_token_id", 4, V)
@case("bos-wrong-type", 2, "tokenizer.ggml.bos_token_id is a string")
def _(m): kv_set(m, "tokenizer.ggml.bos_token_id", STRING, b"1")
@case("arch-missing", 2, "no general.architecture")
def _(m): kv_del(m, "general.architecture")
@case("arch-gpt2", 2, "general.architecture = gpt2")
def _(m): kv_set(m, "general.architecture", STRING, b"gpt2")
@case("arch-control-bytes", 2, "general.architecture holds ESC[2J and a newline (found by fuzz_model)")
def _(m): kv_set(m, "general.architecture", STRING, b"ll\x1b[2J\nma")
@case("tokenizer-model-control-bytes", 2, "tokenizer.ggml.model holds a BEL and a carriage return")
def _(m): kv_set(m, "tokenizer.ggml.model", STRING, b"x\x07\ry")
@case("rope-scaling-control-bytes", 2, "llama.rope.scaling.type holds a newline")
def _(m): kv_set(m, "llama.rope.scaling.type", STRING, b"yarn\nrm -rf")
@case("block-count-high", 2, "llama.block_count = 2 with tensors for 1 layer")
def _(m): kv_set(m, "llama.block_count", 4, 2)
@case("block-count-low", 2, "llama.block_count = 1 but tensors for 2 layers (llama.cpp: wrong number of tensors)")
def _(m):
    extra = [copy.deepcopy(e) for e in m["t"] if e[0].startswith("blk.0.")]
    for e in extra: e[0] = e[0].replace("blk.0.", "blk.1.")
    m["t"] += extra
@case("block-count-zero", 2, "llama.block_count = 0")
def _(m): kv_set(m, "llama.block_count", 4, 0)
@case("block-count-missing", 2, "no llama.block_count")
def _(m): kv_del(m, "llama.block_count")
@case("block-count-string", 2, "llama.block_count is a string")
def _(m): kv_set(m, "llama.block_count", STRING, b"1")
@case("heads-not-dividing", 2, "llama.attention.head_count = 3 does not divide n_embd 8")
def _(m): kv_set(m, "llama.attention.head_count", 4, 3)
@case("heads-vs-tensors", 2, "head_count 4 / head_count_kv 1 imply attn_k [8, 2], tensor is [8, 4]")
def _(m): kv_set(m, "llama.attention.head_count", 4, 4)
@case("kv-heads-not-dividing", 2, "head_count_kv 3 does not divide head_count 2")
def _(m): kv_set(m, "llama.attention.head_count_kv", 4, 3)
@case("kv-heads-zero", 2, "head_count_kv = 0")
def _(m): kv_set(m, "llama.attention.head_count_kv", 4, 0)
@case("embd-vs-tensors", 2, "embedding_length 16 but tensors have 8")
def _(m): kv_set(m, "llama.embedding_length", 4, 16)
@case("ffn-vs-tensors", 2, "feed_forward_length 32 but tensors have 16")
def _(m): kv_set(m, "llama.feed_forward_length", 4, 32)
@case("eps-missing", 2, "no llama.attention.layer_norm_rms_epsilon")
def _(m): kv_del(m, "llama.attention.layer_norm_rms_epsilon")
@case("eps-negative", 2, "layer_norm_rms_epsilon = -1")
def _(m): kv_set(m, "llama.attention.layer_norm_rms_epsilon", 6, -1.0)
@case("rope-dims", 2, "rope.dimension_count 2 of head_dim 4")
def _(m): kv_set(m, "llama.rope.dimension_count", 4, 2)
@case("shape-attn-q", 2, "blk.0.attn_q.weight is [8, 4] instead of [8, 8]")
def _(m): t_reshape(m, "blk.0.attn_q.weight", [8, 4])
@case("shape-embd-3d", 2, "token_embd.weight is [8, 259, 2]")
def _(m): t_reshape(m, "token_embd.weight", [8, V, 2])
@case("shape-norm", 2, "blk.0.attn_norm.weight is [16]")
def _(m): t_reshape(m, "blk.0.attn_norm.weight", [16])
@case("shape-output-rows", 2, "output.weight has 258 rows, the vocabulary 259")
def _(m): t_reshape(m, "output.weight", [8, V - 1])
@case("missing-ffn-up", 2, "no blk.0.ffn_up.weight")
def _(m): t_del(m, "blk.0.ffn_up.weight")
@case("missing-output-norm", 2, "no output_norm.weight")
def _(m): t_del(m, "output_norm.weight")
@case("missing-token-embd", 2, "no token_embd.weight")
def _(m): t_del(m, "token_embd.weight")
@case("norm-nan", 2, "blk.0.ffn_norm.weight holds a NaN")
def _(m):
    e = t_get(m, "blk.0.ffn_norm.weight"); e[3] = struct.pack("<f", float("nan")) + e[3][4:]
@case("unknown-tensor", 2, "an extra tensor 'blk.0.attn_q.bias' the llama graph does not use (llama.cpp refuses)")
def _(m): m["t"].append(["blk.0.attn_q.bias", [8], 0, b"\0" * 32])

for name, expect, why, regex in cases:
    print(f"{name}|{expect}|{why}|{regex}")
PY
[ -s "$T/manifest" ] || { echo "FAIL: could not build the cases"; exit 1; }
if [ -n "${QFORGE_BADINPUT_KEEP:-}" ]; then
  mkdir -p "$QFORGE_BADINPUT_KEEP" && cp "$T"/*.gguf "$QFORGE_BADINPUT_KEEP"/
fi

fails=0; unhandled=()
# run NAME EXPECTED-EXIT FILE-TO-BE-NAMED WHY PROBLEM-REGEX ARGS...
run() {
  local name=$1 want=$2 file=$3 why=$4 re=$5; shift 5
  "$P" -t 1 "$@" >"$T/out" 2>"$T/err"; local rc=$?
  local lines; lines=$(grep -v '^qforge-perplexity: warning: ' "$T/err" | grep -c '')
  local bad=""
  if [ "$rc" -ne "$want" ]; then bad="exit $rc, want $want"
  elif [ "$want" -ne 0 ]; then
    if [ "$lines" -ne 1 ]; then bad="$lines stderr lines (want 1)"
    elif ! grep -v ': warning: ' "$T/err" | grep -q '^qforge-perplexity: '; then bad="message does not start with 'qforge-perplexity: '"
    elif ! grep -v ': warning: ' "$T/err" | grep -qF "$file"; then bad="message does not name $file"
    elif LC_ALL=C grep -q '[[:cntrl:]]' "$T/err"; then bad="control bytes in the message: $(cat -v "$T/err")"
    elif ! grep -v ': warning: ' "$T/err" | grep -qE -- "$re"; then bad="message does not state /$re/"
    fi
  fi
  if [ -n "$bad" ]; then
    fails=$((fails + 1)); unhandled+=("$name")
    printf 'FAIL %-22s %s: %s\n' "$name" "$why" "$bad"
    sed 's/^/      stderr: /' "$T/err" | head -n 4
  else
    printf 'ok   %-22s %s\n' "$name" "$(grep -v ': warning: ' "$T/err" | head -n1)"
  fi
}

# the base model and text work (else every case below would be meaningless)
"$P" -t 1 -m "$T/good.gguf" -f "$T/good.txt" -c 16 --chunks 2 >"$T/out" 2>"$T/err" ||
  { echo "FAIL: the unmodified model does not run:"; cat "$T/err"; exit 1; }
grep -q '^Final estimate: PPL = ' "$T/out" || { echo "FAIL: no Final estimate for the unmodified model"; exit 1; }

while IFS='|' read -r name want why re; do
  run "$name" "$want" "$T/$name.gguf" "$why" "$re" -m "$T/$name.gguf" -f "$T/good.txt" -c 16 --chunks 1
done < "$T/manifest"

# text problems
run text-not-utf8 2 "$T/latin1.txt" "ISO-8859-1 bytes in the text" "invalid UTF-8 at byte 1503" -m "$T/good.gguf" -f "$T/latin1.txt" -c 16
run text-too-short 2 "$T/short.txt" "fewer tokens than two chunks of -c 16" "text too short: [0-9]+ tokens, perplexity with -c 16 needs at least 32" -m "$T/good.gguf" -f "$T/short.txt" -c 16
run text-missing 3 "$T/none.txt" "the text file does not exist" "cannot open: No such file" -m "$T/good.gguf" -f "$T/none.txt" -c 16
run text-directory 3 "$T" "the text is a directory" "not a regular file" -m "$T/good.gguf" -f "$T" -c 16
: > "$T/empty.txt"
run text-empty 2 "$T/empty.txt" "an empty text" "text too short" -m "$T/good.gguf" -f "$T/empty.txt" -c 16
# the model file itself
head -c 100 "$T/good.gguf" > "$T/truncated.gguf"
run model-truncated 2 "$T/truncated.gguf" "GGUF cut after 100 bytes" "need at least [0-9]+ bytes, 76 are left" -m "$T/truncated.gguf" -f "$T/good.txt" -c 16
run model-text-file 2 "$T/good.txt" "a text file given as the model" "not a GGUF file" -m "$T/good.txt" -f "$T/good.txt" -c 16
# tensor names with a newline and an ESC sequence, overlapping (from tests/fuzz/regress/model/)
root=${QFORGE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
ov="$root/tests/fuzz/regress/model/gguf-overlap-control-names.gguf"
if [ -f "$ov" ]; then
  cp "$ov" "$T/control-names.gguf"
  run model-control-names 2 "$T/control-names.gguf" "tensor names holding a newline and ESC[31m" "tensors \"a\\?\\[31m\" and \"b\\?next\" overlap" \
    -m "$T/control-names.gguf" -f "$T/good.txt" -c 16
fi

# -c beyond the model's context (64): a warning, and the run still completes
"$P" -t 1 -m "$T/good.gguf" -f "$T/good.txt" -c 128 --chunks 1 >"$T/out" 2>"$T/err"; rc=$?
if [ $rc -eq 0 ] && grep -q '^qforge-perplexity: warning: .*' "$T/err" && grep -q '^Final estimate' "$T/out"; then
  printf 'ok   %-22s %s\n' ctx-beyond-training "$(grep warning "$T/err" | head -n1)"
else
  fails=$((fails + 1)); unhandled+=(ctx-beyond-training)
  printf 'FAIL %-22s -c 128 > context 64 should warn and run: exit %d\n' ctx-beyond-training $rc
  sed 's/^/      stderr: /' "$T/err" | head -n 4
fi

if [ $fails -gt 0 ]; then
  echo "$fails case(s) not handled: ${unhandled[*]}"
  exit 1
fi
echo "all runtime bad-input cases handled"
