#!/usr/bin/env bash
# The demo: convert the bundled model (models/classics-7m, BF16 Hugging Face checkpoint), quantize it
# to several GGUF types by plain rounding, importance weights and GPTQ, and measure each on the
# bundled held-out text against the F32 model. Called by `make demo` as: bash models/demo.sh BIN_DIR
# Everything is written to out/ under the repository root.
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

echo "== F32 baseline on models/eval-classics.txt (n_ctx $ctx)"
"$BIN/qforge-perplexity" -m "$f32" -f "$text" -c $ctx --kl-divergence-base "$out/base.kld" \
  >"$out/f32.ppl.txt" 2>&1 || { cat "$out/f32.ppl.txt"; exit 1; }
grep 'Final estimate' "$out/f32.ppl.txt"

# every tensor of the F32 file is 4 bytes per parameter
n_params=$("$BIN/qforge-inspect" --json "$f32" | grep -o '"bytes": *[0-9]*' | awk -F: '{s+=$2} END {print s/4}')
rows=()
measure() { # name file
  local name=$1 file=$2 log="$out/$1.ppl.txt"
  "$BIN/qforge-perplexity" -m "$file" --kl-divergence-base "$out/base.kld" --kl-divergence -c $ctx >"$log" 2>&1 \
    || { cat "$log"; exit 1; }
  local size ppl kld top
  size=$(stat -c %s "$file")
  ppl=$(awk -F: '/^Mean PPL\(Q\) +:/ {split($2,a," "); print a[1]}' "$log")
  kld=$(awk -F: '/^Mean    KLD/ {split($2,a," "); print a[1]}' "$log")
  top=$(awk -F: '/^Same top p/ {split($2,a," "); print a[1]}' "$log")
  rows+=("$(printf '| %-22s | %9s | %5.2f | %9s | %9s | %7s %% |' "$name" "$size" \
    "$(awk -v s="$size" -v n="$n_params" 'BEGIN {print 8*s/n}')" "$ppl" "$kld" "$top")")
  echo "   $name: $(printf '%s bytes, PPL %s, KLD %s, same top p %s %%' "$size" "$ppl" "$kld" "$top")"
}
quant() { # name type [options...]
  local name=$1 type=$2; shift 2
  echo "== qforge-quantize $* models/classics-7m out/classics-7m-$name.gguf $type"
  "$BIN/qforge-quantize" "$@" "$model" "$out/classics-7m-$name.gguf" "$type" >"$out/$name.quant.txt" 2>&1 \
    || { cat "$out/$name.quant.txt"; exit 1; }
  tail -n 1 "$out/$name.quant.txt"
  measure "$name" "$out/classics-7m-$name.gguf"
}

quant q8_0 Q8_0
for t in Q4_0 Q4_1 Q4_K_M Q3_K_M Q2_K; do
  lt=$(echo "$t" | tr 'A-Z' 'a-z')
  quant "$lt" "$t"
  if "$BIN/qforge-quantize" --help 2>&1 | grep -q -- '--gptq'; then
    [ -f "$out/imatrix.gguf" ] || "$BIN/qforge-quantize" --imatrix-out "$out/imatrix.gguf" "$model" >"$out/imatrix.txt" 2>&1 \
      || { cat "$out/imatrix.txt"; exit 1; }
    quant "$lt-imatrix" "$t" --imatrix "$out/imatrix.gguf"
    quant "$lt-gptq" "$t" --gptq
    quant "$lt-gptq-act-order" "$t" --gptq --act-order
  fi
done

echo
echo "Demo model on models/eval-classics.txt, n_ctx $ctx; KLD vs the F32 model; $n_params parameters"
echo
echo "| model                  |     bytes |   bpw |       PPL |  mean KLD | same top p |"
echo "|------------------------|-----------|-------|-----------|-----------|------------|"
printf '| %-22s | %9s | %5.2f | %9s | %9s | %7s %% |\n' f32 "$(stat -c %s "$f32")" \
  "$(awk -v s="$(stat -c %s "$f32")" -v n="$n_params" 'BEGIN {print 8*s/n}')" \
  "$(awk '/Final estimate/ {print $5}' "$out/f32.ppl.txt")" - 100
printf '%s\n' "${rows[@]}"
