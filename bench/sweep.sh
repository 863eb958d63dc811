#!/usr/bin/env bash
# qforge-sweep against the same variants made by hand: one sweep (TYPES x METHODS of the demo
# model, evaluated on the bundled eval-classics.txt) and the separate runs a user would do
# (qforge-quantize --imatrix-out once, qforge-perplexity --kl-divergence-base once, then per
# variant qforge-quantize and qforge-perplexity --kl-divergence), alternating, REPEAT times.
# Prints wall and CPU seconds of each run and the best of each.
#
#   bench/sweep.sh
#   TYPES=Q4_0,Q4_K_M METHODS=rtn,imatrix,gptq CHUNKS=40 REPEAT=2 bench/sweep.sh
#
# env: QFORGE_BIN, BENCH_DIR (default /tmp/qforge-bench-sweep), THREADS (default 2),
#      CHUNKS (evaluated chunks, default all), CALIB_SAMPLES (default 128)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${QFORGE_BIN:-$root/bin}
dir=${BENCH_DIR:-/tmp/qforge-bench-sweep}
types=${TYPES:-Q8_0,Q6_K,Q5_K_M,Q4_K_M,Q4_0,Q3_K_M,Q2_K}
methods=${METHODS:-rtn,imatrix,gptq}
threads=${THREADS:-2}
repeat=${REPEAT:-1}
samples=${CALIB_SAMPLES:-128}
model=$root/models/classics-7m
text=$root/models/eval-classics.txt
chunks=(); [ -n "${CHUNKS:-}" ] && chunks=(--chunks "$CHUNKS")
for t in qforge-sweep qforge-quantize qforge-perplexity; do
  [ -x "$bin/$t" ] || { echo "bench: build first (make)"; exit 1; }
done
[ -x /usr/bin/time ] || { echo "bench: /usr/bin/time is missing (apt-get install time)"; exit 1; }
mkdir -p "$dir"
echo "machine: $(nproc) cores; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "variants: $types x $methods; $threads threads; calibration $samples chunks"

# wall and cpu seconds of one command (appended to $dir/times)
timed() {
  /usr/bin/time -f '%e %U %S' -o "$dir/t" "$@" > /dev/null 2>> "$dir/log" || { tail -n 5 "$dir/log"; exit 1; }
  awk '{ w += $1; c += $2 + $3 } END { printf "%.2f %.2f\n", w, c }' "$dir/t" >> "$dir/times"
}
sum_times() { awk '{ w += $1; c += $2 } END { printf "%.1f %.1f", w, c }' "$dir/times"; }

sweep_once() {
  rm -rf "$dir/sw" "$dir/times"
  timed "$bin/qforge-sweep" "$model" -o "$dir/sw" -t "$threads" -f "$text" "${chunks[@]}" \
    --calib-samples "$samples" --types "$types" --methods "$methods" -q
  sum_times
}

separate_once() {
  rm -rf "$dir/sep" "$dir/times"
  mkdir -p "$dir/sep"
  local s=$dir/sep
  case ",$methods," in *,imatrix,*)
    timed "$bin/qforge-quantize" -t "$threads" --calib-samples "$samples" --imatrix-out "$s/imatrix.gguf" "$model" ;;
  esac
  timed "$bin/qforge-perplexity" -m "$model" -f "$text" -t "$threads" "${chunks[@]}" --kl-divergence-base "$s/base.kld"
  local ty m opt
  for ty in ${types//,/ }; do
    for m in ${methods//,/ }; do
      case $m in
        rtn) opt=() ;;
        imatrix) opt=(--imatrix "$s/imatrix.gguf") ;;
        gptq) opt=(--gptq --calib-samples "$samples") ;;
        gptq-act-order) opt=(--gptq --act-order --calib-samples "$samples") ;;
      esac
      timed "$bin/qforge-quantize" -t "$threads" "${opt[@]}" "$model" "$s/$ty-$m.gguf" "$ty"
      timed "$bin/qforge-perplexity" -m "$s/$ty-$m.gguf" -t "$threads" --kl-divergence-base "$s/base.kld" \
        --kl-divergence
    done
  done
  sum_times
}

best_sw="" best_sep=""
for r in $(seq 1 "$repeat"); do
  a=$(sweep_once); b=$(separate_once)
  echo "run $r: sweep wall $(echo "$a" | cut -d' ' -f1) s cpu $(echo "$a" | cut -d' ' -f2) s;" \
       "separate runs wall $(echo "$b" | cut -d' ' -f1) s cpu $(echo "$b" | cut -d' ' -f2) s"
  best_sw=$(printf '%s\n%s\n' "$best_sw" "$a" | awk 'NF { print }' | sort -n | head -n 1)
  best_sep=$(printf '%s\n%s\n' "$best_sep" "$b" | awk 'NF { print }' | sort -n | head -n 1)
done
awk -v a="$best_sw" -v b="$best_sep" 'BEGIN { split(a, x, " "); split(b, y, " ");
  printf "best wall: sweep %.1f s, separate runs %.1f s (sweep/separate %.3f)\n", x[1], y[1], x[1] / y[1] }'
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
