#!/usr/bin/env bash
# qforge-convert / qforge-inspect / qforge-synth behaviour: usage errors, progress and summary
# lines, refusing to overwrite an input, GGUF input, --json output, SIGINT cleanup, and (with
# ../shared) byte equality with llama.cpp's converter on the demo model.
set -u
ROOT=${QFORGE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${QFORGE_BIN:-$ROOT/bin}
for t in qforge-convert qforge-inspect qforge-synth; do
  [ -x "$BIN/$t" ] || { echo "missing $BIN/$t"; exit 1; }
done
T=$(mktemp -d "${TMPDIR:-/tmp}/qforge-convert-XXXXXX")
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
expect_rc() { # want_rc description command...
  local want=$1 what=$2; shift 2
  "$@" >"$T/stdout" 2>"$T/stderr"; local rc=$?
  [ $rc -eq "$want" ] || { fail "$what: exit $rc, want $want"; sed 's/^/    /' "$T/stderr" | head -n 3; }
}

# usage errors: exit 1
expect_rc 1 "no arguments" "$BIN/qforge-convert"
expect_rc 1 "missing -o" "$BIN/qforge-convert" "$T"
expect_rc 1 "bad --outtype" "$BIN/qforge-convert" "$T" -o "$T/x.gguf" --outtype q4_0
expect_rc 1 "unknown option" "$BIN/qforge-convert" "$T" -o "$T/x.gguf" --frobnicate
expect_rc 1 "-t 0" "$BIN/qforge-convert" "$T" -o "$T/x.gguf" -t 0
expect_rc 1 "inspect without file" "$BIN/qforge-inspect"
expect_rc 1 "synth: dim not a multiple of heads" "$BIN/qforge-synth" --dim 30 --layers 1 --heads 4 --ffn 8 --vocab 300 -o "$T/s"
expect_rc 1 "synth: vocab below 259" "$BIN/qforge-synth" --dim 32 --layers 1 --heads 4 --ffn 8 --vocab 100 -o "$T/s"
# I/O errors: exit 3
expect_rc 3 "missing input" "$BIN/qforge-convert" "$T/nope" -o "$T/x.gguf"
expect_rc 3 "inspect missing file" "$BIN/qforge-inspect" "$T/nope.gguf"

# a small checkpoint: progress lines, summary, outputs
"$BIN/qforge-synth" --dim 64 --layers 3 --heads 4 --kv-heads 2 --ffn 96 --vocab 400 --shards 2 -o "$T/m" > /dev/null \
  || { echo "synth failed"; exit 1; }
expect_rc 0 "convert f16" "$BIN/qforge-convert" "$T/m" -o "$T/m.gguf" --outtype f16 -t 2
n=$(grep -cE '^\[ ?[0-9]+/30\] [a-z0-9_.]+ \[[0-9]+(, [0-9]+)?\] bf16 -> (f16|f32)  [0-9.]+ (B|KiB|MiB) -> [0-9.]+ (B|KiB|MiB)$' "$T/stdout")
[ "$n" = 30 ] || fail "expected 30 progress lines, got $n"
grep -qE '^converted 30 tensors: .* bytes written to .*m\.gguf in [0-9.]+ s$' "$T/stdout" || fail "no summary line"
grep -q '^\[ 1/30\] token_embd.weight \[64, 400\] bf16 -> f16  50.0 KiB -> 50.0 KiB$' "$T/stdout" || fail "first progress line"
grep -q 'blk.0.attn_norm.weight \[64\] bf16 -> f32  128 B -> 256 B$' "$T/stdout" || fail "norms must stay f32"
[ -s "$T/stderr" ] && fail "stderr not empty on success: $(head -n 1 "$T/stderr")"
ls -a "$T" | grep -q qforge-tmp && fail "temp file left after success"

# refuses to overwrite any input file, which stays intact
cp "$T/m/config.json" "$T/config.before"
expect_rc 1 "overwrite config.json" "$BIN/qforge-convert" "$T/m" -o "$T/m/config.json"
cmp -s "$T/m/config.json" "$T/config.before" || fail "config.json was modified"
grep -q 'is an input file' "$T/stderr" || fail "overwrite message"
expect_rc 1 "overwrite a shard" "$BIN/qforge-convert" "$T/m" -o "$T/m/model-00001-of-00002.safetensors"
expect_rc 1 "overwrite the GGUF input" "$BIN/qforge-convert" "$T/m.gguf" -o "$T/m.gguf"

# GGUF input: f16 GGUF -> f32 GGUF, readable, types as expected
expect_rc 0 "convert GGUF f16 -> f32" "$BIN/qforge-convert" "$T/m.gguf" -o "$T/m32.gguf" --outtype f32
expect_rc 0 "inspect --json" "$BIN/qforge-inspect" "$T/m32.gguf" --json
python3 - "$T/stdout" <<'PY' || fail "inspect --json content"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["format"] == "gguf" and j["version"] == 3, j["format"]
assert len(j["tensors"]) == 30
assert all(t["type"] == "f32" for t in j["tensors"])
kv = {m["key"]: m for m in j["metadata"]}
assert kv["general.file_type"]["value"] == 0
assert kv["tokenizer.ggml.tokens"]["count"] == 400 and kv["tokenizer.ggml.tokens"]["truncated"]
assert kv["llama.attention.head_count_kv"]["value"] == 2
PY
expect_rc 0 "inspect text" "$BIN/qforge-inspect" "$T/m.gguf"
grep -qE '^  tokenizer.ggml.tokens +string\[\] +\["<unk>", "<s>", .*, \.\.\.\] \(400 items\)$' "$T/stdout" || fail "abbreviated array"
grep -qE '^ +[0-9]+  blk.2.ffn_down.weight +\[96, 64\] +f16 +[0-9]+ +12288$' "$T/stdout" || fail "tensor table row"
expect_rc 0 "inspect safetensors" "$BIN/qforge-inspect" "$T/m/model-00002-of-00002.safetensors" --json
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["format"]=="safetensors" and j["metadata"]=={"format":"pt"} and all(t["dtype"]=="BF16" for t in j["tensors"])' \
  "$T/stdout" || fail "safetensors --json"

# SIGINT while writing: exit 130, no output, no temp file (skipped when conversion wins the race)
"$BIN/qforge-synth" --dim 512 --layers 4 --heads 8 --ffn 1408 --vocab 4000 --dtype f32 -o "$T/big" > /dev/null || fail "big synth"
mkdir -p "$T/out"
# (a script's background job starts with SIGINT ignored, and the tools keep it so: reset it)
env --default-signal=INT "$BIN/qforge-convert" "$T/big" -o "$T/out/big.gguf" --outtype f16 -t 1 > /dev/null 2>&1 &
pid=$!
caught=0
for _ in $(seq 1 400); do
  if ls -a "$T/out" | grep -q qforge-tmp; then kill -INT $pid; caught=1; break; fi
  sleep 0.005
done
wait $pid; rc=$?
if [ $caught = 1 ]; then
  [ $rc -eq 130 ] || fail "SIGINT: exit $rc, want 130"
  ls -a "$T/out" | grep -q qforge-tmp && fail "SIGINT left the temp file"
  [ -e "$T/out/big.gguf" ] && fail "SIGINT left an output"
else
  echo "note: conversion finished before SIGINT could be sent; SIGINT check skipped"
fi

# the demo model: identical bytes to llama.cpp's convert_hf_to_gguf.py --outtype f32
SH="$ROOT/../shared"
if [ -d "$SH/models/classics-7m" ]; then
  expect_rc 0 "convert classics-7m" "$BIN/qforge-convert" "$SH/models/classics-7m" -o "$T/c.gguf" --outtype f32
  cmp -s "$T/c.gguf" "$SH/reference/classics-7m-f32.gguf" || fail "classics-7m F32 differs from llama.cpp's"
else
  echo "note: ../shared absent; llama.cpp byte comparison skipped"
fi

[ $fails -eq 0 ] && echo "convert.sh: all checks passed"
[ $fails -eq 0 ]
