#!/usr/bin/env bash
# GPTQ speed.
#
# 1. The solver alone (bench/gptq_solver.c, compiled here against build/lib): lq_gptq_quantize on
#    the seven weight shapes of one layer of the 0.8 B synthetic model (Q4_K, H from 1024 inputs),
#    its sustained GFLOP/s counted from the shapes (the flops it runs: 2/3 n^3 factorization,
#    rows*n*(n-1) column loop, 2*rows*n*(n-1) losses), beside the runtime's own F32 GEMM
#    (rt_matmul, 4096 x 4096 weights x 512 tokens) on the same threads, measured alternately.
#    Target (issue 13): solver >= 30 % of the runtime GEMM's rate.
# 2. qforge-quantize --gptq of the demo model (models/classics-7m, BF16 checkpoint) to Q4_K_M with
#    the bundled calibration text, 128 chunks x 256 tokens (target: at most 15 s on 2 threads):
#    wall and CPU seconds and peak RSS (/usr/bin/time -v), the shares of the calibration forward
#    passes, the Hessian (and cross-term) accumulation and the solver as qforge-quantize reports
#    them, and the plain-rounding run for comparison.
# 3. With SYNTH=1 also the 0.8 B synthetic model (bench/quantize.sh's qforge-synth shape, made once
#    in BENCH_DIR) with 8 x 128 calibration tokens (target: at most 5 minutes).
#
#   bench/gptq.sh                       # 2 threads, default (asymmetric) GPTQ
#   THREADS="1 2" bench/gptq.sh         # several thread counts
#   VARIANTS="--gptq-sym --act-order" bench/gptq.sh   # extra runs with these options added
#   REPEAT=2 bench/gptq.sh              # runs per configuration (take the best on a shared VM)
#   SOLVER=0 bench/gptq.sh              # skip part 1;  SYNTH=1: add part 3
#
# On a loaded machine libgomp's default active waiting can make every OpenMP region wait for a
# descheduled partner thread; the tools therefore run with OMP_WAIT_POLICY=passive unless the
# environment sets it (OMP_WAIT_POLICY= , empty, gives libgomp's default). The script prints
# the variable so runs can be compared; part 1 runs with passive unless it is set.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${QFORGE_BIN:-$root/bin}
build=${QFORGE_BUILD:-$root/build}
dir=${BENCH_DIR:-/tmp/qforge-bench-gptq}
threads=${THREADS:-2}
repeat=${REPEAT:-1}
variants=${VARIANTS:-}
solver=${SOLVER:-1}
synth=${SYNTH:-0}
model="$root/models/classics-7m"

[ -x /usr/bin/time ] || { echo "bench: /usr/bin/time is missing (apt-get install time)"; exit 1; }
[ -x "$bin/qforge-quantize" ] || { echo "bench: build first: make bin/qforge-quantize"; exit 1; }
mkdir -p "$dir"
cat "$model"/*.safetensors > /dev/null

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); OMP_WAIT_POLICY=${OMP_WAIT_POLICY-(unset: the tools choose passive)}"

if [ "$solver" = 1 ]; then
  libs=""
  for l in pipeline runtime input tokenizer arch libquant libgguf; do
    [ -f "$build/lib/$l.a" ] && libs="$libs $build/lib/$l.a"
  done
  [ -n "$libs" ] || { echo "bench: build first: make"; exit 1; }
  pkgs=$(pkg-config --libs gsl openblas jansson zlib | sed 's/-lgslcblas//')
  cc -O2 -std=c11 -D_GNU_SOURCE -fopenmp -I"$root" $(pkg-config --cflags openblas) \
    -o "$dir/gptq_solver" "$root/bench/gptq_solver.c" $libs $pkgs -lm
  for t in $threads; do
    echo
    OMP_WAIT_POLICY=${OMP_WAIT_POLICY-passive} "$dir/gptq_solver" -t "$t" -r "$((repeat > 1 ? repeat : 2))"
  done
fi

# time_quantize LABEL MODEL OUT TYPE options...: one row of the table below
printf '\n%-34s %10s %10s %10s  %s\n' run wall cpu "max RSS" "calibration: forward / Hessians / solver / other"
time_quantize() {
  local label=$1 m=$2 out=$3 type=$4; shift 4
  for ((i = 0; i < repeat; i++)); do
    /usr/bin/time -v "$bin/qforge-quantize" "$@" "$m" "$out" "$type" \
      > "$dir/run.log" 2> "$dir/time.log" || { cat "$dir/time.log"; exit 1; }
    local wall cpu rss split
    wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$dir/time.log" |
           awk -F: '{ if (NF == 3) print $1*3600 + $2*60 + $3; else print $1*60 + $2 }')
    cpu=$(awk -F': ' '/User time|System time/ { s += $2 } END { print s }' "$dir/time.log")
    rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$dir/time.log")
    # "[gptq] 42 tensors, ...: T s = forward F s (P%), Hessians H s (P%), solver S s (P%), other O s; ..."
    split=$(sed -n 's/^\[gptq\] [0-9]* tensors.*: \([0-9.]* s\) = forward \([0-9.]* s ([0-9]*%)\), Hessians \([0-9.]* s ([0-9]*%)\), solver \([0-9.]* s ([0-9]*%)\), other \([0-9.]* s\).*/\1: \2 \/ \3 \/ \4 \/ \5/p' "$dir/run.log")
    awk -v l="$label" -v w="$wall" -v c="$cpu" -v r="$rss" -v s="$split" \
      'BEGIN { printf "%-34s %8.2f s %8.2f s %6.1f MiB  %s\n", l, w, c, r / 1024, s }'
  done
}

echo "demo model: models/classics-7m (BF16), Q4_K_M, calibration: bundled text, 128 x 256 tokens"
for t in $threads; do
  time_quantize "plain rounding, -t $t" "$model" "$dir/out.gguf" Q4_K_M -t "$t"
  time_quantize "--gptq, -t $t" "$model" "$dir/out.gguf" Q4_K_M -t "$t" --gptq
  for v in $variants; do
    time_quantize "--gptq $v, -t $t" "$model" "$dir/out.gguf" Q4_K_M -t "$t" --gptq "$v"
  done
done

if [ "$synth" = 1 ]; then
  ckpt="$dir/synth-772m-bf16"
  if [ ! -f "$ckpt/config.json" ]; then
    echo "making $ckpt ..."
    "$bin/qforge-synth" --dim 2048 --layers 16 --heads 16 --kv-heads 8 --ffn 5632 --vocab 4096 \
      --shards 4 --dtype bf16 -o "$ckpt" > /dev/null
  fi
  cat "$ckpt"/*.safetensors > /dev/null
  echo "0.8 B synthetic model (dim 2048, FFN 5632, 16 layers), Q4_K_M, calibration: 8 x 128 tokens"
  for t in $threads; do
    time_quantize "--gptq, -t $t" "$ckpt" "$dir/synth.gguf" Q4_K_M -t "$t" --gptq \
      --calib-samples 8 --calib-ctx 128
  done
  rm -f "$dir/synth.gguf"
fi
rm -f "$dir/out.gguf"
