#!/usr/bin/env bash
# bench/fuzz.sh [SECONDS] [TARGET...] — run every libFuzzer target (tests/fuzz/fuzz_*.c, built by
# `make fuzz` into bin-fuzz/) for SECONDS each (default 60), one after the other, one thread
# each, and print executions, coverage and findings per target.
#
# Regression inputs: tests/fuzz/regress/<target>/* run once each before fuzzing (a failure is a
# finding). Seeds: tests/fuzz/corpus/<seed dirs> (read only). New inputs go to build-fuzz/run/corpus/<target>
# (kept between runs, so a longer run continues from a shorter one); crashes, leaks, timeouts
# and OOMs to build-fuzz/run/findings/<target>/, logs to build-fuzz/run/logs/<target>.log.
# Limits: -rss_limit_mb=2048 -malloc_limit_mb=1024 (a single allocation above 1 GiB is an OOM
# finding: sizes from a file must be capped before allocating), -timeout=10 s per input.
# After a finding the target is restarted for its remaining time (at most 5 runs per target).
# Messages of refused inputs must be one line without control bytes; QFORGE_FUZZ_LAX_MSG=1 only
# requires them non-empty (to fuzz past a known message bug; the run says so).
# Exit status: 0 when no target found anything, 1 otherwise.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECS=${1:-60}
shift || true
case $SECS in ''|*[!0-9]*) echo "usage: bench/fuzz.sh [SECONDS] [TARGET...]" >&2; exit 1 ;; esac
all=(gguf safetensors st_index config spm tokenizer model text imatrix tokenizer_json bpe)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

make -C "$ROOT" --no-print-directory -j2 fuzz >/dev/null 2>"$ROOT/build-fuzz.log" ||
  { echo "make fuzz failed:"; tail -n 20 "$ROOT/build-fuzz.log"; exit 1; }
rm -f "$ROOT/build-fuzz.log"

W="$ROOT/build-fuzz/run"
C="$ROOT/tests/fuzz/corpus"
export OMP_NUM_THREADS=1
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"

seeds() {
  case $1 in
    gguf) echo "$C/gguf $C/model" ;;
    model) echo "$C/model $C/gguf" ;;
    *) echo "$C/$1" ;;
  esac
}
maxlen() {
  case $1 in
    tokenizer) echo 4096 ;;
    bpe) echo 8192 ;;
    text) echo 8192 ;;
    st_index|config) echo 16384 ;;
    *) echo 65536 ;;
  esac
}

[ -n "${QFORGE_FUZZ_LAX_MSG:-}" ] && echo "note: QFORGE_FUZZ_LAX_MSG is set: control bytes in error messages are not checked"
total_findings=0
printf '%-12s %6s %12s %9s %7s %7s %7s  %s\n' target seconds execs exec/s cov ft corpus 'findings (new, regressions failing)'
summary=()
for t in "${targets[@]}"; do
  bin="$ROOT/bin-fuzz/fuzz_$t"
  [ -x "$bin" ] || { echo "no $bin (known targets: ${all[*]})"; exit 1; }
  mkdir -p "$W/corpus/$t" "$W/findings/$t" "$W/logs"
  log="$W/logs/$t.log"
  : > "$log"
  before=$(ls "$W/findings/$t" | grep -cE '^(crash|leak|timeout|oom)-')
  start=$(date +%s)
  # known inputs first: each one runs once; a failure is reported, the fuzzing goes on
  regress_fail=0
  for r in "$ROOT/tests/fuzz/regress/$t"/*; do
    [ -f "$r" ] || continue
    if ! "$bin" -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 "$r" >"$log.run" 2>&1; then
      regress_fail=$((regress_fail + 1))
      summary+=("$t: regression input fails: $r" "    $(grep -a -m1 -E 'runtime error|SUMMARY|ERROR: libFuzzer|fuzz check failed' "$log.run")")
    fi
    cat "$log.run" >>"$log"
  done
  total_findings=$((total_findings + regress_fail))
  execs=0 runs=0 cov=0 ft=0
  while :; do
    left=$((SECS - ($(date +%s) - start)))
    [ "$left" -ge 2 ] && [ "$runs" -lt 5 ] || break
    runs=$((runs + 1))
    # shellcheck disable=SC2046
    "$bin" -max_total_time="$left" -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 \
      -max_len="$(maxlen "$t")" -print_final_stats=1 -artifact_prefix="$W/findings/$t/" \
      "$W/corpus/$t" $(seeds "$t") >"$log.run" 2>&1
    rc=$?
    cat "$log.run" >>"$log"
    n=$(grep -a 'stat::number_of_executed_units' "$log.run" | tail -n1 | awk '{print $2}')
    if [ -z "$n" ]; then # no final stats (a crash): the last progress line's count
      n=$(grep -aoE '^#[0-9]+' "$log.run" | tail -n1 | tr -d '#')
    fi
    execs=$((execs + ${n:-0}))
    line=$(grep -aE '^#[0-9]+.*cov: ' "$log.run" | tail -n1)
    c=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$line"); f=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$line")
    [ -n "$c" ] && cov=$c
    [ -n "$f" ] && ft=$f
    [ $rc -eq 0 ] && break
    echo "--- run $runs of $t ended with exit $rc" >>"$log"
  done
  rm -f "$log.run"
  secs=$(($(date +%s) - start))
  after=$(ls "$W/findings/$t" | grep -cE '^(crash|leak|timeout|oom)-')
  new=$((after - before))
  total_findings=$((total_findings + new))
  corpus=$(ls "$W/corpus/$t" | wc -l)
  rate=$((secs > 0 ? execs / secs : 0))
  printf '%-12s %6d %12d %9d %7s %7s %7d  %d, %d\n' "$t" "$secs" "$execs" "$rate" "$cov" "$ft" "$corpus" "$new" "$regress_fail"
  if [ "$new" -gt 0 ]; then
    summary+=("$t: $(grep -a -m1 -E 'SUMMARY|ERROR: libFuzzer|fuzz check failed' "$log")")
    for a in $(ls -t "$W/findings/$t" | grep -E '^(crash|leak|timeout|oom)-' | head -n "$new"); do
      summary+=("    $W/findings/$t/$a")
    done
  fi
done
if [ ${#summary[@]} -gt 0 ]; then
  echo
  echo "findings (logs in $W/logs/):"
  printf '%s\n' "${summary[@]}"
fi
[ "$total_findings" -eq 0 ]
