#!/usr/bin/env bash
# The demo: convert the bundled model (models/classics-7m, BF16 Hugging Face checkpoint) to an
# F32 GGUF in out/ and show what it holds. Called by `make demo` as: bash models/demo.sh BIN_DIR
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-$root/bin}
out="$root/out"
mkdir -p "$out"
model="$root/models/classics-7m"
f32="$out/classics-7m-f32.gguf"

echo "== qforge-convert $model -> $f32 (F32)"
"$BIN/qforge-convert" "$model" -o "$f32" --outtype f32 | tail -n 3
ref="$root/../shared/reference/classics-7m-f32.gguf"
if [ -f "$ref" ]; then
  if cmp -s "$f32" "$ref"; then
    echo "   identical to llama.cpp's convert_hf_to_gguf.py output ($ref)"
  else
    echo "   DIFFERS from llama.cpp's output ($ref)"; exit 1
  fi
fi
echo
echo "== qforge-inspect $f32"
"$BIN/qforge-inspect" "$f32"
