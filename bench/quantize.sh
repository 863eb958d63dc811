#!/usr/bin/env bash
# qforge-quantize speed and memory: a synthetic Llama checkpoint (by default the reference README's
# 772 M-parameter shape: dim 2048, 16 layers, 16/8 heads, FFN 5632, vocab 4096, BF16 in 4 shards)
# quantized in one step (checkpoint -> GGUF) to Q8_0, Q4_0 and Q4_K_M with 1 and 2 threads.
# Prints wall seconds and peak RSS (/usr/bin/time -v) per run, and the largest tensor for the
# "largest tensor + 64 MiB" memory bound.
#
#   bench/quantize.sh                 # all of it
#   TYPES="Q4_K_M" THREADS="2" bench/quantize.sh
#   GGUF=1 bench/quantize.sh          # also time F16 GGUF input (needs bin/qforge-convert)
#   REPEAT=3 bench/quantize.sh        # runs per configuration (default 2; take the best: on a
#                                     # shared VM the first write of fresh memory is often slow)
#
# The checkpoint is made once in $BENCH_DIR (default /tmp/qforge-bench-quantize) and kept.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${QFORGE_BIN:-$root/bin}
dir=${BENCH_DIR:-/tmp/qforge-bench-quantize}
types=${TYPES:-"Q8_0 Q4_0 Q4_K_M"}
threads=${THREADS:-"1 2"}
repeat=${REPEAT:-2}
ckpt="$dir/synth-772m-bf16"

[ -x /usr/bin/time ] || { echo "bench: /usr/bin/time is missing (apt-get install time)"; exit 1; }
[ -x "$bin/qforge-quantize" ] || { echo "bench: build first: make bin/qforge-quantize"; exit 1; }
mkdir -p "$dir"

if [ ! -f "$ckpt/config.json" ]; then
  [ -x "$bin/qforge-synth" ] || { echo "bench: need bin/qforge-synth to make the checkpoint"; exit 1; }
  echo "making $ckpt ..."
  "$bin/qforge-synth" --dim 2048 --layers 16 --heads 16 --kv-heads 8 --ffn 5632 --vocab 4096 \
    --shards 4 --dtype bf16 -o "$ckpt"
fi
cat "$ckpt"/*.safetensors > /dev/null # warm page cache, as the llama.cpp figures were taken

. "$root/bench/time_run.sh"

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-34s %10s %10s %13s\n' "run" "wall" "CPU" "max RSS"
for type in $types; do
  for t in $threads; do
    out="$dir/out-$type.gguf"
    for r in $(seq 1 "$repeat"); do
      time_run "checkpoint -> $type, $t thread(s)" \
        "$bin/qforge-quantize" -t "$t" --report "$dir/report-$type.json" "$ckpt" "$out" "$type"
      rm -f "$out"
    done
  done
done

if [ "${GGUF:-0}" = 1 ] && [ -x "$bin/qforge-convert" ]; then
  f16="$dir/synth-772m-f16.gguf"
  [ -f "$f16" ] || "$bin/qforge-convert" "$ckpt" -o "$f16" --outtype f16 > /dev/null
  cat "$f16" > /dev/null
  for type in $types; do
    for t in $threads; do
      for r in $(seq 1 "$repeat"); do
        time_run "F16 GGUF -> $type, $t thread(s)" "$bin/qforge-quantize" -t "$t" "$f16" "$dir/out.gguf" "$type"
        rm -f "$dir/out.gguf"
      done
    done
  done
fi

# the memory bound: the largest input tensor + 64 MiB
rep=$(ls "$dir"/report-*.json | head -n1)
largest=$(sed -n 's/.*"largest_input_tensor_bytes": \([0-9]*\).*/\1/p' "$rep")
awk -v b="$largest" 'BEGIN { printf "largest tensor: %.1f MiB; bound (largest + 64 MiB): %.1f MiB\n", b / 1048576, b / 1048576 + 64 }'
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
