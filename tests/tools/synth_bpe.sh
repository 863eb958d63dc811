#!/usr/bin/env bash
# Checkpoints with a tokenizer.json (qforge-synth --tokenizer bpe) of each BPE architecture, in
# the shapes the shared models lack (untied, GQA 8:1, head_dim 16 != 64 / 8, three shards):
#   - without --tokenizer-pre the synthetic vocabulary is refused: exit 2, one line naming the
#     option; an unknown name is a usage error (exit 1);
#   - qforge-convert --tokenizer-pre writes the name; one-step qforge-quantize CHECKPOINT OUT
#     Q8_0|Q4_K_M --tokenizer-pre is byte-identical to quantizing the F32 conversion; --gptq
#     works in one step;
#   - qforge-perplexity evaluates F32, Q8_0 and Q4_K_M: near-uniform predictions of a random
#     model (PPL within 10 % of the vocabulary size), Q8_0 within 0.5 % of F32.
set -u
ROOT=${QFORGE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${QFORGE_BIN:-$ROOT/bin}
for t in qforge-synth qforge-convert qforge-quantize qforge-perplexity qforge-inspect; do
  [ -x "$BIN/$t" ] || { echo "missing $BIN/$t"; exit 1; }
done
T=$(mktemp -d "${TMPDIR:-/tmp}/qforge-synth-bpe-XXXXXX")
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
V=2000
head -c 30000 "$ROOT/calibration/calibration.txt" > "$T/text.txt"

for spec in LlamaForCausalLM:llama-bpe Qwen2ForCausalLM:qwen2 Qwen3ForCausalLM:qwen2; do
  c=${spec%%:*} pre=${spec#*:} d="$T/$c"
  "$BIN/qforge-synth" --arch "$c" --dim 64 --layers 2 --heads 8 --kv-heads 1 --head-dim 16 --ffn 96 --vocab $V \
    --shards 3 --tokenizer bpe -o "$d" >/dev/null || { fail "$c: qforge-synth"; continue; }
  "$BIN/qforge-convert" "$d" -o "$T/x.gguf" >/dev/null 2>"$T/err"; rc=$?
  [ $rc -eq 2 ] && [ "$(wc -l <"$T/err")" -eq 1 ] \
    && grep -q "^qforge-convert: $d/tokenizer.json: unknown BPE pre-tokenizer.*--tokenizer-pre NAME" "$T/err" \
    || { fail "$c: unrecognized tokenizer: exit $rc"; cat "$T/err"; }
  "$BIN/qforge-quantize" --tokenizer-pre no-such "$d" "$T/x.gguf" Q8_0 >/dev/null 2>"$T/err"; rc=$?
  [ $rc -eq 1 ] && grep -q "unknown pre-tokenizer 'no-such'" "$T/err" || fail "$c: --tokenizer-pre no-such: exit $rc"
  [ -e "$T/x.gguf" ] && fail "$c: a refused run left its output"
  "$BIN/qforge-convert" "$d" -o "$T/f32.gguf" --outtype f32 --tokenizer-pre "$pre" >/dev/null 2>"$T/err" \
    || { fail "$c: qforge-convert: $(cat "$T/err")"; continue; }
  "$BIN/qforge-inspect" "$T/f32.gguf" >"$T/ins" 2>&1
  grep -q "tokenizer.ggml.pre  *string  *\"$pre\"" "$T/ins" || fail "$c: tokenizer.ggml.pre is not $pre"
  grep -q "attention.head_count_kv  *u32  *1$" "$T/ins" || fail "$c: head_count_kv"
  grep -q "output.weight" "$T/ins" || fail "$c: untied output.weight missing"
  for q in Q8_0 Q4_K_M; do
    "$BIN/qforge-quantize" "$T/f32.gguf" "$T/$q.gguf" $q >/dev/null 2>&1 || fail "$c: quantize $q"
    "$BIN/qforge-quantize" --tokenizer-pre "$pre" "$d" "$T/$q-1.gguf" $q >/dev/null 2>"$T/err" \
      || fail "$c: one-step $q: $(tail -n 1 "$T/err")"
    cmp -s "$T/$q.gguf" "$T/$q-1.gguf" || fail "$c: one-step $q differs from quantizing the F32 conversion"
  done
  "$BIN/qforge-quantize" --gptq --calib-samples 4 --calib-ctx 64 --tokenizer-pre "$pre" "$d" "$T/gptq.gguf" Q4_K_M \
    >/dev/null 2>"$T/err" || fail "$c: one-step --gptq: $(tail -n 1 "$T/err")"
  [ "$(stat -c %s "$T/gptq.gguf" 2>/dev/null)" = "$(stat -c %s "$T/Q4_K_M.gguf")" ] || fail "$c: --gptq file size"
  ppl=()
  for q in f32 Q8_0 Q4_K_M; do
    "$BIN/qforge-perplexity" -m "$T/$q.gguf" -f "$T/text.txt" -c 128 --chunks 6 -t 2 >"$T/out" 2>&1 \
      || { fail "$c $q: qforge-perplexity: $(tail -n 1 "$T/out")"; continue; }
    ppl+=("$(sed -n 's/.*Final estimate: PPL = \([0-9.]*\).*/\1/p' "$T/out")")
  done
  python3 - "$c" "$V" "${ppl[@]}" <<'PY' || fail "$c: perplexity"
import math, sys
c, V, p = sys.argv[1], int(sys.argv[2]), [float(x) for x in sys.argv[3:]]
print("%s: PPL f32 %.3f, Q8_0 %.3f, Q4_K_M %.3f (vocab %d)" % (c, p[0], p[1], p[2], V))
ok = len(p) == 3 and all(abs(math.log(x / V)) < 0.1 for x in p) and abs(p[1] / p[0] - 1) < 0.005
sys.exit(0 if ok else 1)
PY
  rm -rf "$d" "$T"/*.gguf
done
[ $fails -eq 0 ] || exit 1
