#!/usr/bin/env bash
# GPTQ peak memory: qforge-quantize --gptq Q4_K_M (default asymmetric target) on the demo model
# (models/classics-7m, 128 x 256 tokens) and on a 0.8 B synthetic checkpoint (qforge-synth: dim
# 2048, FFN 5632, 16 layers, 16 heads, vocab 32000, BF16; 8 x 128 tokens), printing the peak RSS
# (/usr/bin/time) next to the bound "one layer's F32 weights + Hessians + activations + 64 MiB":
#   layer F32     the 7 linear weights of one layer as F32
#   Hessians      the n x n doubles of one layer's groups (q,k,v / attn_output / gate,up / down),
#                 counted once each
#   activations   the hidden states of every chunk (n_chunks x n_ctx x dim floats), twice with the
#                 asymmetric target (the float reference's)
#
#   bench/gptq_rss.sh                   # both models, 2 threads
#   MODELS=demo bench/gptq_rss.sh       # demo only (MODELS=synth: the 0.8 B one only)
#   KEEP=1 ...                          # keep the synthetic checkpoint in $BENCH_DIR
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${QFORGE_BIN:-$root/bin}
dir=${BENCH_DIR:-/tmp/qforge-bench-gptq-rss}
threads=${THREADS:-2}
models=${MODELS:-demo synth}
[ -x /usr/bin/time ] || { echo "bench: /usr/bin/time is missing (apt-get install time)"; exit 1; }
[ -x "$bin/qforge-quantize" ] || { echo "bench: build first (make)"; exit 1; }
mkdir -p "$dir"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), -t $threads"
printf '%-44s %10s %10s %12s  %s\n' run wall "peak RSS" bound "layer F32 + Hessians + activations + 64 MiB"

# bound DIM FFN QD KD CHUNKS CTX ASYM: MiB
bound() {
  awk -v E="$1" -v F="$2" -v QD="$3" -v KD="$4" -v N="$5" -v T="$6" -v A="$7" 'BEGIN {
    w = (E*QD + 2*E*KD + QD*E + 3*E*F) * 4
    h = (E*E + QD*QD + E*E + F*F) * 8
    a = N * T * E * 4 * (A ? 2 : 1)
    printf "%.1f %.1f %.1f %.1f", (w + h + a) / 1048576 + 64, w / 1048576, h / 1048576, a / 1048576 }'
}

run() { # label model chunks ctx dim ffn qd kd
  local label=$1 model=$2 n=$3 ctx=$4
  /usr/bin/time -f "%e %M" -o "$dir/time.txt" "$bin/qforge-quantize" -t "$threads" --gptq \
    --calib-samples "$n" --calib-ctx "$ctx" "$model" "$dir/out.gguf" Q4_K_M > "$dir/run.log" 2>&1 ||
    { tail -3 "$dir/run.log"; exit 1; }
  read -r wall kib < "$dir/time.txt"
  read -r b w h a <<< "$(bound "$5" "$6" "$7" "$8" "$n" "$ctx" 1)"
  awk -v l="$label" -v t="$wall" -v r="$kib" -v b="$b" -v w="$w" -v h="$h" -v a="$a" 'BEGIN {
    printf "%-44s %8.1f s %6.1f MiB %8.1f MiB  %.1f + %.1f + %.1f + 64 (%s)\n", l, t, r / 1024, b, w, h, a,
           r / 1024 <= b ? "within" : "OVER" }'
  rm -f "$dir/out.gguf"
}

for m in $models; do
  case $m in
  demo) run "demo classics-7m, 128 x 256" "$root/models/classics-7m" 128 256 256 768 256 128 ;;
  synth)
    ck="$dir/synth-0.8b"
    [ -f "$ck/config.json" ] || "$bin/qforge-synth" --dim 2048 --ffn 5632 --layers 16 --heads 16 \
      --vocab 32000 -o "$ck" > /dev/null
    run "synthetic 0.8 B (2048/5632/16), 8 x 128" "$ck" 8 128 2048 5632 2048 2048
    [ -n "${KEEP:-}" ] || rm -rf "$ck" ;;
  *) echo "bench: unknown model '$m' (demo, synth)"; exit 1 ;;
  esac
done
