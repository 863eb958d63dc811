#!/usr/bin/env bash
# GPTQ speed: qforge-quantize --gptq of the demo model (models/classics-7m, BF16 checkpoint) to
# Q4_K_M with the bundled calibration text, 128 chunks x 256 tokens, on 2 threads (target: at most
# 60 s). Prints wall and CPU seconds and peak RSS (/usr/bin/time -v), the shares of the calibration
# forward passes, the Hessian (and cross-term) accumulation and the solver as qforge-quantize
# reports them, and the same for the plain-rounding run for comparison.
#
#   bench/gptq.sh                       # 2 threads, default (asymmetric) GPTQ
#   THREADS="1 2" bench/gptq.sh         # several thread counts
#   VARIANTS="--gptq-sym --act-order" bench/gptq.sh   # extra runs with these options added
#   REPEAT=2 bench/gptq.sh              # runs per configuration (take the best on a shared VM)
#
# On a loaded machine libgomp's default active waiting can make every OpenMP region wait for a
# descheduled partner thread; the tools therefore run with OMP_WAIT_POLICY=passive unless the
# environment sets it (OMP_WAIT_POLICY= , empty, gives libgomp's default). The script prints
# the variable so runs can be compared.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${QFORGE_BIN:-$root/bin}
dir=${BENCH_DIR:-/tmp/qforge-bench-gptq}
threads=${THREADS:-2}
repeat=${REPEAT:-1}
variants=${VARIANTS:-}
model="$root/models/classics-7m"

[ -x /usr/bin/time ] || { echo "bench: /usr/bin/time is missing (apt-get install time)"; exit 1; }
[ -x "$bin/qforge-quantize" ] || { echo "bench: build first: make bin/qforge-quantize"; exit 1; }
mkdir -p "$dir"
cat "$model"/*.safetensors > /dev/null

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); OMP_WAIT_POLICY=${OMP_WAIT_POLICY-(unset: the tools choose passive)}"
echo "model: models/classics-7m (BF16), Q4_K_M, calibration: bundled text, 128 x 256 tokens"
printf '%-34s %10s %10s %10s  %s\n' run wall cpu "max RSS" "calibration: forward / Hessians / solver / other"

run() { # label options...
  local label=$1; shift
  for ((i = 0; i < repeat; i++)); do
    /usr/bin/time -v "$bin/qforge-quantize" "$@" "$model" "$dir/out.gguf" Q4_K_M \
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

for t in $threads; do
  run "plain rounding, -t $t" -t "$t"
  run "--gptq, -t $t" -t "$t" --gptq
  for v in $variants; do
    run "--gptq $v, -t $t" -t "$t" --gptq "$v"
  done
done
rm -f "$dir/out.gguf"
