#!/usr/bin/env bash
# qforge-perplexity and llama-perplexity side by side on the same GGUF files of the demo model:
# whole-process wall time (load and tokenization included), run alternately, best of N, and
# the ratio qforge / llama.cpp, per type and kernel path; the perplexities of both are printed
# too (they agree to the printed digits on whole batches, see docs/runtime.md).
#
# usage: bench/perplexity.sh [--quick]        (--quick: 40 chunks instead of the whole text)
# env:   QFORGE_BIN       qforge tools (default bin/)
#        LLAMA_BIN        directory with llama-perplexity (e.g. /work/llama.cpp/build/bin); without
#                         it only qforge is timed
#        LLAMA_AVX2_BIN   a llama.cpp build without AVX-512 for the avx2 rows (default: LLAMA_BIN)
#        QFORGE_REPEAT=N  runs per program and case, the fastest kept (default 3)
#        QFORGE_TYPES     default "F32 F16 BF16 Q8_0 Q4_0 Q4_K_M Q6_K"
#        QFORGE_PATHS     kernel paths for qforge (QFORGE_ISA values; "native" = the default
#                         choice), default "native avx2"
#        QFORGE_TEXT      default models/eval-classics.txt
# The models are made by the tools themselves: qforge-convert models/classics-7m (F32), then
# qforge-quantize to each type. Both programs use 2 threads, n_ctx 256 and their default batch.
# Timings taken on a busy machine are not final: the load average is printed before and after;
# alternating the two programs keeps the ratio fair under a steady load.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${QFORGE_BIN:-$root/bin}
llama=${LLAMA_BIN:-}
llama2=${LLAMA_AVX2_BIN:-$llama}
repeat=${QFORGE_REPEAT:-3}
types=${QFORGE_TYPES:-F32 F16 BF16 Q8_0 Q4_0 Q4_K_M Q6_K}
paths=${QFORGE_PATHS:-native avx2}
text=${QFORGE_TEXT:-$root/models/eval-classics.txt}
chunks=()
[ "${1:-}" = "--quick" ] && chunks=(--chunks 40)
for t in qforge-perplexity qforge-convert qforge-quantize; do
  [ -x "$bin/$t" ] || { echo "build first: make ($bin/$t missing)" >&2; exit 1; }
done
[ -z "$llama" ] || [ -x "$llama/llama-perplexity" ] || { echo "no llama-perplexity in $llama" >&2; exit 1; }
[ -z "$llama2" ] || [ -x "$llama2/llama-perplexity" ] || { echo "no llama-perplexity in $llama2" >&2; exit 1; }
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 1; }

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$bin/qforge-convert" "$root/models/classics-7m" -o "$tmp/F32.gguf" --outtype f32 >/dev/null || exit 1
for ty in $types; do
  [ "$ty" = F32 ] && continue
  "$bin/qforge-quantize" -t 2 "$tmp/F32.gguf" "$tmp/$ty.gguf" "$ty" >/dev/null 2>&1 || { echo "quantize $ty failed" >&2; exit 1; }
done

# timed V command...: runs it once; keeps the fastest wall time in V_best and its PPL in V_ppl
timed() {
  local var=$1; shift
  /usr/bin/time -f %e -o "$tmp/time" "$@" >"$tmp/out" 2>&1 || { echo "FAILED: $*" >&2; tail -n 5 "$tmp/out" >&2; exit 1; }
  local w; w=$(tail -n 1 "$tmp/time")
  local cur; eval "cur=\${${var}_best:-}"
  if [ -z "$cur" ] || awk -v a="$w" -v b="$cur" 'BEGIN{exit !(a < b)}'; then eval "${var}_best=$w"; fi
  eval "${var}_ppl=\$(sed -n 's/.*Final estimate: PPL = \\([0-9.]*\\).*/\\1/p' \"$tmp/out\" | tail -n 1)"
}

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
echo "text: $(basename "$text") ${chunks[*]:-(all chunks)}, n_ctx 256, 2 threads, best of $repeat, alternating"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-7s %-7s %12s %12s %9s %9s %7s\n' type path "qforge PPL" "llama PPL" "qforge s" "llama s" ratio
for path in $paths; do
  isa=""; [ "$path" = native ] || isa=$path
  lb=$llama; [ "$path" = native ] || lb=$llama2
  for ty in $types; do
    m=$tmp/$ty.gguf
    unset q_best l_best q_ppl l_ppl
    for ((i = 0; i < repeat; i++)); do
      if [ -n "$lb" ]; then
        timed l "$lb/llama-perplexity" -m "$m" -f "$text" -c 256 -t 2 "${chunks[@]}"
      fi
      timed q env QFORGE_ISA="$isa" "$bin/qforge-perplexity" -m "$m" -f "$text" -c 256 -t 2 "${chunks[@]}"
    done
    ratio="-"
    [ -n "$lb" ] && ratio=$(awk -v a="$q_best" -v b="$l_best" 'BEGIN{printf "%.2f", a/b}')
    printf '%-7s %-7s %12s %12s %9s %9s %7s\n' "$ty" "$path" "$q_ppl" "${l_ppl:--}" "$q_best" "${l_best:--}" "$ratio"
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
[ -n "$llama" ] && [ "$llama2" = "$llama" ] && case " $paths " in *" avx2 "*)
  echo "note: the avx2 rows time llama.cpp's native build (set LLAMA_AVX2_BIN to a build without AVX-512)";; esac
exit 0
