#!/usr/bin/env bash
# qforge-quantize command line: help, exit codes, dry run, signal cleanup, byte-identical
# output against llama-quantize's Q8_0 file. (The full matrix is in tests/test_quantize.c.)
set -u
bin="${QFORGE_BIN:-$(cd "$(dirname "$0")/../.." && pwd)/bin}"
root="${QFORGE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}"
shared="$root/../shared"
q="$bin/qforge-quantize"
[ -x "$q" ] || { echo "missing $q"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$q" --help | grep -q 'usage: qforge-quantize' || fail "--help"
"$q" >/dev/null 2>&1; [ $? -eq 1 ] || fail "no arguments should exit 1"
"$q" in.gguf out.gguf Q9_Z >/dev/null 2>&1; [ $? -eq 1 ] || fail "unknown type should exit 1"
"$q" -t 0 in.gguf out.gguf Q8_0 >/dev/null 2>&1; [ $? -eq 1 ] || fail "-t 0 should exit 1"
"$q" "$tmp/none.gguf" "$tmp/out.gguf" Q8_0 >/dev/null 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] || [ $rc -eq 3 ] || fail "missing input: exit $rc"
grep -q '^qforge-quantize: ' "$tmp/err" || fail "error message format: $(cat "$tmp/err")"

[ -d "$shared/reference" ] || { echo "../shared is absent"; exit 77; }
f32="$shared/reference/classics-7m-f32.gguf"

"$q" --dry-run "$f32" "$tmp/dry.gguf" Q4_K_M > "$tmp/plan" || fail "dry run"
[ ! -e "$tmp/dry.gguf" ] || fail "dry run wrote a file"
[ "$(grep -c '^\[' "$tmp/plan")" -eq 57 ] || fail "dry run should list 57 tensors"
grep -q 'blk.5.ffn_down.weight .* f32 -> q6_K' "$tmp/plan" || fail "plan: blk.5.ffn_down should be q6_K"

"$q" -t 2 "$f32" "$tmp/q8.gguf" q8_0 > "$tmp/log" || fail "Q8_0 run"
cmp "$tmp/q8.gguf" "$shared/reference/classics-7m-q8_0.gguf" || fail "Q8_0 differs from llama-quantize"
for t in iq4_nl iq4_xs; do
  "$q" -t 2 "$f32" "$tmp/$t.gguf" "$t" > /dev/null || fail "$t run"
  cmp "$tmp/$t.gguf" "$shared/reference/classics-7m-$t.gguf" || fail "$t differs from llama-quantize"
done
grep -q 'rmse' "$tmp/log" || fail "progress lines without rmse"
grep -q 'bpw' "$tmp/log" || fail "no summary"

# A signal removes the temp file (only checked when the signal lands before the end).
"$q" -t 1 "$f32" "$tmp/sig.gguf" Q4_K_M > /dev/null 2>&1 &
pid=$!
sleep 0.3
kill -TERM "$pid" 2>/dev/null
wait "$pid"; rc=$?
if [ $rc -ne 0 ]; then
  [ $rc -eq 143 ] || fail "SIGTERM: exit $rc"
  ! ls -A "$tmp" | grep -q 'qforge-tmp' || fail "temp file left after SIGTERM"
  [ ! -e "$tmp/sig.gguf" ] || fail "partial output after SIGTERM"
fi
echo ok
