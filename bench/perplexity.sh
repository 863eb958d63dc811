#!/usr/bin/env bash
# qforge-perplexity against llama.cpp's published figures for the demo model
# (../shared/reference/README.md): perplexity of the four reference GGUFs on wiki.test.raw
# (first 400 chunks) and eval-classics.txt (all chunks) at n_ctx 256, and whole-process
# tokens/s (load and tokenization included, as the README's figures) at 1 and 2 threads.
#
# usage: bench/perplexity.sh [--quick]      (--quick: eval-classics only, 2 threads only)
# env:   QFORGE_BIN (default bin/), QFORGE_SHARED (default ../shared)
#        QFORGE_REPEAT=N   run each case N times and keep the fastest (default 1)
#        QFORGE_BASELINE=FILE  another qforge-perplexity binary (e.g. an older build) timed
#                          the same way, interleaved with ours: on a shared machine compare
#                          the two columns rather than absolute figures
# Needs an otherwise idle machine for meaningful absolute speed figures; the load average is
# printed before and after.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${QFORGE_BIN:-$root/bin}
shared=${QFORGE_SHARED:-$root/../shared}
ppl=$bin/qforge-perplexity
base=${QFORGE_BASELINE:-}
repeat=${QFORGE_REPEAT:-1}
quick=0
[ "${1:-}" = "--quick" ] && quick=1
[ -x "$ppl" ] || { echo "build first: make bin/qforge-perplexity" >&2; exit 1; }
[ -z "$base" ] || [ -x "$base" ] || { echo "QFORGE_BASELINE=$base is not executable" >&2; exit 1; }
[ -d "$shared/reference" ] || { echo "no shared data at $shared" >&2; exit 77; }
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 1; }

# llama.cpp's figures: text model PPL tokens/s(2 threads)
ref() {
  case "$1 $2" in
    "wiki f32") echo "536.7232 11437" ;;  "wiki q8_0") echo "536.7218 11185" ;;
    "wiki q4_0") echo "533.8521 13926" ;; "wiki q4_k_m") echo "533.0990 11919" ;;
    "classics f32") echo "93.7779 10426" ;; "classics q8_0") echo "93.8194 8645" ;;
    "classics q4_0") echo "94.1083 10117" ;; "classics q4_k_m") echo "93.8440 9138" ;;
  esac
}

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# run BIN MODEL TEXT THREADS ARGS... -> sets wall, rss, got (PPL), ntok; fastest of $repeat runs
run() {
  local b=$1 model=$2 text=$3 t=$4; shift 4
  wall=""; rss=""
  for ((i = 0; i < repeat; i++)); do
    /usr/bin/time -v -o "$tmp/time" "$b" -m "$shared/reference/classics-7m-$model.gguf" -f "$text" -c 256 "$@" \
      -t "$t" --json "$tmp/out.json" >"$tmp/out" 2>"$tmp/err" || { echo "FAILED: $b $model $text"; cat "$tmp/err"; exit 1; }
    local w r
    w=$(awk -F': ' '/Elapsed \(wall clock\)/{n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$tmp/time")
    r=$(awk -F': ' '/Maximum resident set size/{printf "%.0fMiB", $2/1024}' "$tmp/time")
    if [ -z "$wall" ] || awk -v a="$w" -v b="$wall" 'BEGIN{exit !(a < b)}'; then wall=$w; rss=$r; fi
  done
  got=$(sed -n 's/^Final estimate: PPL = \([0-9.]*\) .*/\1/p' "$tmp/out")
  ntok=$(python3 -c "import json;d=json.load(open('$tmp/out.json'));print(d['n_chunk']*d['n_ctx'])" 2>/dev/null ||
         grep -o '"n_chunk": [0-9]*' "$tmp/out.json" | awk '{print $2*256}')
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-9s %-7s %-3s %12s %12s %9s %10s %10s %7s %9s' text model thr PPL llama.cpp diff% tok/s llama "ratio" peakRSS
[ -n "$base" ] && printf ' %10s %7s' "base tok/s" "vs base"
printf '\n'
texts="classics"; [ $quick = 0 ] && texts="wiki classics"
threads="2"; [ $quick = 0 ] && threads="1 2"
for text in $texts; do
  if [ $text = wiki ]; then f=$shared/text/wiki.test.raw; chunks="--chunks 400"; else f=$shared/text/eval-classics.txt; chunks=""; fi
  for model in f32 q8_0 q4_0 q4_k_m; do
    for t in $threads; do
      [ $t = 1 ] && [ $model = q4_0 ] && continue
      if [ -n "$base" ]; then
        run "$base" $model "$f" $t $chunks
        btps=$(awk -v n="$ntok" -v w="$wall" 'BEGIN{printf "%.0f", n/w}')
      fi
      run "$ppl" $model "$f" $t $chunks
      read -r rppl rtps <<<"$(ref $text $model)"
      tps=$(awk -v n="$ntok" -v w="$wall" 'BEGIN{printf "%.0f", n/w}')
      diff=$(awk -v a="$got" -v b="$rppl" 'BEGIN{printf "%+.4f", 100*(a-b)/b}')
      ratio=$(awk -v a="$tps" -v b="$rtps" 'BEGIN{printf "%.2f", a/b}')
      [ $t = 2 ] || ratio="-"
      printf '%-9s %-7s %-3s %12s %12s %9s %10s %10s %7s %9s' $text $model $t "$got" "$rppl" "$diff" "$tps" "$rtps" "$ratio" "$rss"
      [ -n "$base" ] && printf ' %10s %7s' "$btps" "$(awk -v a="$tps" -v b="$btps" 'BEGIN{printf "%.2f", a/b}')"
      printf '\n'
    done
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "PyTorch fp32: wiki 536.715950, classics 93.777631 (compare the f32 rows; limit 0.01 %)"
echo "llama.cpp tokens/s are 2-thread whole-process figures from ../shared/reference/README.md"
