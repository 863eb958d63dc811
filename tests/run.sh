#!/usr/bin/env bash
# Runs the Criterion suites given as arguments, then the tool tests in tests/tools/*.sh,
# and prints one closing line "N passed, N failed, N skipped" over all of them.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
export QFORGE_ROOT="$root" QFORGE_BIN="${QFORGE_BIN:-$root/bin}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$root/tests/lsan.supp:print_suppressions=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
[ -d "$root/../shared" ] || echo "note: ../shared is absent; tests that need the shared data are skipped"
pass=0; fail=0; skip=0; failed=()
for t in "$@"; do
  out=$(cd "$root" && "$t" -j2 --short-filename --verbose 2>&1); rc=$? # --verbose: [SKIP] lines
  line=$(printf '%s\n' "$out" | grep -a 'Synthesis:' | tail -n1)
  p=$(sed -n 's/.*Passing: \([0-9]*\).*/\1/p' <<<"$line"); f=$(sed -n 's/.*Failing: \([0-9]*\).*/\1/p' <<<"$line")
  c=$(sed -n 's/.*Crashing: \([0-9]*\).*/\1/p' <<<"$line"); s=$(grep -ac '^\[SKIP\]' <<<"$out")
  p=${p:-0}; f=${f:-0}; c=${c:-0}; s=${s:-0}
  if [ -z "$line" ] || [ $rc -ne 0 ] && [ $((f + c)) -eq 0 ]; then f=$((f + 1)); fi
  printf '%-28s %s%s\n' "$(basename "$t")" "${line:-no synthesis (exit $rc)}" "$([ "${s:-0}" -gt 0 ] && echo " | Skipped: $s")"
  if [ $((f + c)) -gt 0 ]; then printf '%s\n' "$out" | grep -av '^\[----\]\|^\[RUN \]\|^\[PASS\]' | tail -n 40; failed+=("$(basename "$t")"); fi
  pass=$((pass + p)); fail=$((fail + f + c)); skip=$((skip + s))
done
for t in "$root"/tests/tools/*.sh; do
  [ -e "$t" ] || continue
  out=$(bash "$t" 2>&1); rc=$?
  name=$(basename "$t")
  if [ $rc -eq 0 ]; then pass=$((pass + 1)); printf '%-28s ok\n' "$name"
  elif [ $rc -eq 77 ]; then skip=$((skip + 1)); printf '%-28s skipped: %s\n' "$name" "$(tail -n1 <<<"$out")"
  else fail=$((fail + 1)); failed+=("$name"); printf '%-28s FAILED\n%s\n' "$name" "$(tail -n 30 <<<"$out")"; fi
done
[ ${#failed[@]} -gt 0 ] && echo "failed: ${failed[*]}"
echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
