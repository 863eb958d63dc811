#!/usr/bin/env bash
# An 8B-class model on this machine: qforge-synth writes a Llama-3-8B-shaped checkpoint (dim 4096,
# 32 layers, 32/8 heads, FFN 14336, vocab 128256, BF16 in 4 shards, about 16 GB) and the script
# times, with /usr/bin/time (wall, CPU, peak RSS):
#   quantize   qforge-quantize checkpoint -> Q4_K_M in one step; beside it, when LLAMA_CPP is a
#              llama.cpp checkout with built tools, its convert_hf_to_gguf.py (F16) + llama-quantize
#   gptq       qforge-quantize --gptq Q4_K_M with a reduced calibration (GPTQ_SAMPLES x GPTQ_CTX
#              tokens, default 16 x 512)
#   f16        qforge-convert checkpoint -> F16 GGUF, then F16 -> Q4_K_M by qforge-quantize and, when
#              LLAMA_BIN holds llama-quantize, by llama-quantize on the same file (alternating)
#   ppl        qforge-perplexity on the Q4_K_M file (PPL_CHUNKS chunks of 512 tokens): tokens/s
#
#   bench/large.sh                    # all steps
#   STEPS="quantize ppl" bench/large.sh
#   STEPS=f16 LLAMA_BIN=/path/to/llama.cpp/build/bin bench/large.sh
#   LLAMA_CPP=/path/to/llama.cpp bench/large.sh
# env: QFORGE_BIN, BENCH_DIR (default /tmp/qforge-bench-large; needs about 40 GB free with
#      llama.cpp, 22 GB without), THREADS (default 2), KEEP=1 keeps the checkpoint afterwards.
# Random weights: the perplexity is meaningless, the speed and memory are not.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${QFORGE_BIN:-$root/bin}
dir=${BENCH_DIR:-/tmp/qforge-bench-large}
threads=${THREADS:-2}
steps=${STEPS:-quantize gptq ppl}
ckpt=$dir/synth-8b-bf16
text=$root/models/eval-classics.txt
[ -x "$bin/qforge-quantize" ] && [ -x "$bin/qforge-synth" ] || { echo "bench: build first (make)"; exit 1; }
[ -x /usr/bin/time ] || { echo "bench: /usr/bin/time is missing (apt-get install time)"; exit 1; }
mkdir -p "$dir"
cleanup() { [ "${KEEP:-0}" = 1 ] || rm -rf "$ckpt" "$dir/llama-f16.gguf" "$dir/f16.gguf"; }
trap cleanup EXIT

TIME_RUN_WIDTH=44
. "$root/bench/time_run.sh"

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')," \
     "$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); disk free in $dir: $(df -h "$dir" | awk 'NR == 2 { print $4 }')"
printf '%-44s %11s %11s %13s\n' run wall CPU "peak RSS"
if [ ! -f "$ckpt/config.json" ]; then
  time_run "qforge-synth 8B shape (BF16, 4 shards)" "$bin/qforge-synth" --dim 4096 --layers 32 --heads 32 \
    --kv-heads 8 --ffn 14336 --vocab 128256 --ctx 8192 --rope-theta 500000 --shards 4 --dtype bf16 -o "$ckpt"
fi
du -sh "$ckpt" | awk '{ print "checkpoint: " $1 }'

for s in $steps; do
  case $s in
  quantize)
    time_run "qforge-quantize checkpoint -> Q4_K_M" "$bin/qforge-quantize" -t "$threads" "$ckpt" "$dir/q4_k_m.gguf" Q4_K_M
    if [ -n "${LLAMA_CPP:-}" ]; then
      (cd "$LLAMA_CPP" && time_run "llama.cpp convert_hf_to_gguf.py -> F16" \
        env PYTHONPATH="gguf-py:$root/../shared/tools/llama-convert" /usr/bin/python3 \
        "$root/../shared/tools/llama-convert/convert_ref.py" "$ckpt" --outfile "$dir/llama-f16.gguf" --outtype f16)
      time_run "llama-quantize F16 -> Q4_K_M" "$LLAMA_CPP/build/bin/llama-quantize" "$dir/llama-f16.gguf" \
        "$dir/llama-q4_k_m.gguf" Q4_K_M "$threads"
      cmp -s "$dir/q4_k_m.gguf" "$dir/llama-q4_k_m.gguf" && echo "Q4_K_M files: byte-identical" ||
        echo "Q4_K_M files differ (metadata from the stand-in converter may differ; compare with qforge-inspect)"
      rm -f "$dir/llama-f16.gguf" "$dir/llama-q4_k_m.gguf"
    fi ;;
  f16)
    time_run "qforge-convert checkpoint -> F16" "$bin/qforge-convert" "$ckpt" -o "$dir/f16.gguf" --outtype f16
    time_run "qforge-quantize F16 -> Q4_K_M" "$bin/qforge-quantize" -t "$threads" "$dir/f16.gguf" "$dir/q-f16.gguf" Q4_K_M
    if [ -n "${LLAMA_BIN:-}" ]; then
      time_run "llama-quantize F16 -> Q4_K_M" "$LLAMA_BIN/llama-quantize" "$dir/f16.gguf" "$dir/l-f16.gguf" \
        Q4_K_M "$threads"
      cmp -s "$dir/q-f16.gguf" "$dir/l-f16.gguf" && echo "Q4_K_M from F16: byte-identical" ||
        echo "Q4_K_M from F16: the files DIFFER"
      rm -f "$dir/l-f16.gguf"
    fi
    rm -f "$dir/q-f16.gguf" ;;
  gptq)
    time_run "qforge-quantize --gptq Q4_K_M (${GPTQ_SAMPLES:-16} x ${GPTQ_CTX:-512})" "$bin/qforge-quantize" \
      -t "$threads" --gptq --calib-samples "${GPTQ_SAMPLES:-16}" --calib-ctx "${GPTQ_CTX:-512}" \
      "$ckpt" "$dir/q4_k_m-gptq.gguf" Q4_K_M
    grep '^\[gptq\] [0-9]* tensors' "$dir/run.log" || true ;;
  ppl)
    [ -f "$dir/q4_k_m.gguf" ] || "$bin/qforge-quantize" -t "$threads" "$ckpt" "$dir/q4_k_m.gguf" Q4_K_M > /dev/null
    time_run "qforge-perplexity Q4_K_M, ${PPL_CHUNKS:-2} x 512 tokens" "$bin/qforge-perplexity" -m "$dir/q4_k_m.gguf" \
      -f "$text" -c 512 --chunks "${PPL_CHUNKS:-2}" -t "$threads"
    awk -v n="${PPL_CHUNKS:-2}" -v w="$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$dir/time.log" |
         awk -F: '{ if (NF == 3) print $1*3600 + $2*60 + $3; else print $1*60 + $2 }')" \
      'BEGIN { printf "qforge-perplexity: %.1f tokens/s (whole process, load included)\n", n * 512 / w }' ;;
  *) echo "bench: unknown step $s"; exit 1 ;;
  esac
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
