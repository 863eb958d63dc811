#!/usr/bin/env bash
# Size budgets on the demo model (docs/mixed-precision.md).
#
#   bench/budget.sh time     sensitivity measurement (GPTQ method, default candidates, 4 x 256
#                            tokens) on THREADS (default 2): wall and CPU seconds, peak RSS
#   bench/budget.sh table    (or: budgets, mixtures: one half of the table) budgeted files (--gptq, BPWS) against the named mixtures (plain,
#                            imatrix, GPTQ) and llama.cpp's Q4_K_M: file bytes and mean KLD vs F32
#                            measured by qforge-perplexity on eval-classics (all chunks) and
#                            wiki.test.raw (first WIKI_CHUNKS chunks, default 100), n_ctx 256
#   bench/budget.sh sweep    the same comparison in one qforge-sweep (named mixtures TYPES x rtn,
#                            imatrix, gptq and the budgets BPWS plus llama.cpp Q4_K_M's size, each
#                            with every method), both texts cut to WIKI_CHUNKS chunks (the rtn
#                            rows are llama.cpp's files: checked for Q4_K_M against the reference).
#                            Writes BENCH_DIR/sweep/report.md and the plots kld.png, ppl.png
# env: QFORGE_BIN, QFORGE_SHARED, BENCH_DIR (default /tmp/qforge-bench-budget), THREADS,
#      BPWS (default "3.0 3.5 4.0 4.5 5.0 6.0"), TYPES (named mixtures), VARIANTS ("plain imatrix gptq")
# Figures taken on a loaded machine are noisy: the load average is printed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${QFORGE_BIN:-$root/bin}
shared=${QFORGE_SHARED:-$root/../shared}
dir=${BENCH_DIR:-/tmp/qforge-bench-budget}
threads=${THREADS:-2}
bpws=${BPWS:-3.0 3.5 4.0 4.5 5.0 6.0}
types=${TYPES:-Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K}
variants=${VARIANTS:-plain imatrix gptq}
wiki_chunks=${WIKI_CHUNKS:-100}
q=$bin/qforge-quantize
ppl=$bin/qforge-perplexity
f32=$shared/reference/classics-7m-f32.gguf
[ -x "$q" ] && [ -x "$ppl" ] || { echo "bench: build first (make)"; exit 1; }
[ -f "$f32" ] || { echo "bench: no shared data at $shared"; exit 77; }
[ -x /usr/bin/time ] || { echo "bench: /usr/bin/time is missing (apt-get install time)"; exit 1; }
mkdir -p "$dir"
echo "machine: $(nproc) cores; load average: $(cut -d' ' -f1-3 /proc/loadavg)"

sens=$dir/sens-gptq.json
measure() {
  /usr/bin/time -v "$q" -t "$threads" --gptq --dry-run --target-bpw 4 --sensitivity-out "$sens" \
    "$f32" "$dir/dry.gguf" > "$dir/sens.log" 2> "$dir/time.log" || { cat "$dir/time.log"; exit 1; }
  local wall cpu rss
  wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$dir/time.log" |
         awk -F: '{ if (NF == 3) print $1*3600 + $2*60 + $3; else print $1*60 + $2 }')
  cpu=$(awk -F': ' '/User time|System time/ { s += $2 } END { print s }' "$dir/time.log")
  rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$dir/time.log")
  grep '^\[sensitivity\] [0-9]* tensors' "$dir/sens.log"
  awk -v w="$wall" -v c="$cpu" -v r="$rss" -v t="$threads" \
    'BEGIN { printf "sensitivity: %d threads: wall %.1f s, cpu %.1f s, peak RSS %.1f MiB\n", t, w, c, r / 1024 }'
}

if [ "${1:-table}" = time ]; then measure; echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"; exit 0; fi

if [ "${1:-table}" = sweep ]; then
  # llama.cpp Q4_K_M's file size as bits per weight of the demo model's 6,819,072 weights
  q4km=$(awk 'BEGIN { printf "%.5f", 4331136 * 8 / 6819072 }')
  "$bin/qforge-sweep" "$f32" -o "$dir/sweep" -t "$threads" -c 256 --chunks "$wiki_chunks" \
    -f "$shared/text/eval-classics.txt" -f "$shared/text/wiki.test.raw" --methods rtn,imatrix,gptq \
    --types "$(echo $types | tr ' ' ,)" --target-bpw "$(echo $bpws $q4km | tr ' ' ,)" > "$dir/sweep.log"
  cat "$dir/sweep/report.md"
  echo
  # plain rounding is llama-quantize's bytes: the rtn rows are llama.cpp's files
  if cmp -s "$dir/sweep/q4_k_m-rtn.gguf" "$shared/reference/classics-7m-q4_k_m.gguf"; then
    echo "q4_k_m-rtn.gguf is byte for byte llama.cpp's classics-7m-q4_k_m.gguf"
  else
    echo "q4_k_m-rtn.gguf DIFFERS from llama.cpp's classics-7m-q4_k_m.gguf"
  fi
  echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
  exit 0
fi

# KLD bases of the float model
base() { # name text [args]
  [ -s "$dir/base-$1.bin" ] || "$ppl" -m "$f32" -f "$2" -c 256 -t "$threads" "${@:3}" \
    --kl-divergence-base "$dir/base-$1.bin" > /dev/null 2>&1
}
base classics "$shared/text/eval-classics.txt"
base wiki "$shared/text/wiki.test.raw" --chunks "$wiki_chunks"
kld() { # model base -> mean KLD
  "$ppl" -m "$1" -c 256 -t "$threads" --kl-divergence-base "$dir/base-$2.bin" --kl-divergence \
    --json "$dir/k.json" > /dev/null 2>&1 || { echo nan; return; }
  python3 -c 'import json,sys; print("%.6f" % json.load(open(sys.argv[1]))["kld"]["kld"])' "$dir/k.json" 2>/dev/null ||
    sed -n 's/.*"kld": \([0-9.e-]*\),.*/\1/p' "$dir/k.json" | head -1
}
row() { # label file
  local c w
  c=$(kld "$2" classics); w=$(kld "$2" wiki)
  printf '%-24s %10d %6.3f %10s %10s\n' "$1" "$(stat -c %s "$2")" \
    "$(awk -v b="$(stat -c %s "$2")" 'BEGIN { print b * 8 / 6819072 }')" "$c" "$w"
}

[ -s "$sens" ] || measure
[ -s "$dir/imatrix.gguf" ] || "$q" -t "$threads" --imatrix-out "$dir/imatrix.gguf" "$f32" > /dev/null
mode=${1:-table}
printf '%-24s %10s %6s %10s %10s\n' file bytes bpw kld-classics kld-wiki
[ "$mode" = mixtures ] || row "llama.cpp Q4_K_M" "$shared/reference/classics-7m-q4_k_m.gguf"
[ "$mode" = mixtures ] && bpws=
for b in $bpws ${bpws:+4331136B}; do
  if [ "$b" = 4331136B ]; then opt=(--target-size 4331136); else opt=(--target-bpw "$b"); fi
  "$q" -t "$threads" --gptq "${opt[@]}" --sensitivity-in "$sens" --report "$dir/budget-$b.json" \
    "$f32" "$dir/budget-$b.gguf" > "$dir/budget-$b.log"
  row "budget $b gptq" "$dir/budget-$b.gguf"
done
[ "$mode" = budgets ] && types=
for t in $types; do
  for v in $variants; do
    case $v in plain) opt=() ;; imatrix) opt=(--imatrix "$dir/imatrix.gguf") ;; gptq) opt=(--gptq) ;; esac
    "$q" -t "$threads" "${opt[@]}" "$f32" "$dir/$t-$v.gguf" "$t" > /dev/null
    row "$t $v" "$dir/$t-$v.gguf"
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
