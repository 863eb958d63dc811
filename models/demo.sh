#!/usr/bin/env bash
# The demo: convert the bundled model (models/classics-7m, BF16 Hugging Face checkpoint), then one
# qforge-sweep: quantize it to several GGUF types by plain rounding, importance weights and GPTQ
# (plain and act-order), and measure each on the bundled held-out text against the float model.
# Called by `make demo` as: bash models/demo.sh BIN_DIR. Everything is written to out/ under the
# repository root; the sweep's report (report.md, kld.png, ppl.png) to out/sweep/. A second run
# reuses the variants already made.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-$root/bin}
out="$root/out"
mkdir -p "$out"
model="$root/models/classics-7m"
text="$root/models/eval-classics.txt"
f32="$out/classics-7m-f32.gguf"
ctx=256

echo "== qforge-convert models/classics-7m -> out/classics-7m-f32.gguf (F32)"
"$BIN/qforge-convert" "$model" -o "$f32" --outtype f32 | tail -n 2
ref="$root/../shared/reference/classics-7m-f32.gguf"
if [ -f "$ref" ]; then
  if cmp -s "$f32" "$ref"; then
    echo "   identical to llama.cpp's convert_hf_to_gguf.py output"
  else
    echo "   DIFFERS from llama.cpp's output ($ref)"; exit 1
  fi
fi
echo
echo "== qforge-inspect out/classics-7m-f32.gguf (abridged)"
"$BIN/qforge-inspect" "$f32" | head -n 40
echo

echo "== qforge-sweep: the demo model's variants, each measured against the float model on"
echo "   models/eval-classics.txt (n_ctx $ctx, KL divergence as llama-perplexity), 2 threads"
"$BIN/qforge-sweep" "$model" -o "$out/sweep" -t 2 -c $ctx -f "$text" \
  --types Q8_0,Q4_0,Q4_1,Q4_K_M,Q3_K_M,Q2_K --methods rtn,imatrix,gptq,gptq-act-order
echo
cat "$out/sweep/report.md"
