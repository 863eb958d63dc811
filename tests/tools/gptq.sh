#!/usr/bin/env bash
# qforge-quantize --gptq / --imatrix-out on a tiny synthetic model (qforge-synth): GPTQ runs for
# Q4_0 and Q4_K_M, its files have the plain-rounding file's size, load and evaluate in
# qforge-perplexity, do not depend on the thread count; the imatrix it writes is accepted by
# --imatrix; bad calibration input gives the documented exit codes and one-line messages.
set -u
bin="${QFORGE_BIN:-$(cd "$(dirname "$0")/../.." && pwd)/bin}"
root="${QFORGE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}"
q="$bin/qforge-quantize"
ppl="$bin/qforge-perplexity"
for b in "$q" "$ppl" "$bin/qforge-synth"; do [ -x "$b" ] || { echo "missing $b"; exit 1; }; done
[ -f "$root/calibration/calibration.txt" ] || { echo "missing calibration/calibration.txt"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$q" --help | grep -q -- '--gptq' || fail "--help does not mention --gptq"

# dim 256 so that every k-quant fits; 2 layers; the calibration kept small
"$bin/qforge-synth" --dim 256 --layers 2 --heads 4 --kv-heads 2 --ffn 512 --vocab 512 --ctx 128 \
  --seed 3 -o "$tmp/m" >/dev/null || fail "qforge-synth"
cal=(--calib-samples 4 --calib-ctx 64)
text="$root/calibration/calibration.txt"
eval_ppl() { # model -> "Final estimate" line
  "$ppl" -t 1 -m "$1" -f "$text" -c 64 --chunks 2 2>/dev/null | grep 'Final estimate'
}

for t in Q4_0 Q4_K_M; do
  "$q" -t 1 "$tmp/m" "$tmp/plain-$t.gguf" $t >/dev/null || fail "plain $t"
  "$q" -t 1 --gptq "${cal[@]}" --report "$tmp/r-$t.json" "$tmp/m" "$tmp/gptq-$t.gguf" $t >"$tmp/log-$t" \
    || fail "--gptq $t: $(tail -n 3 "$tmp/log-$t")"
  [ "$(stat -c %s "$tmp/gptq-$t.gguf")" = "$(stat -c %s "$tmp/plain-$t.gguf")" ] \
    || fail "$t: GPTQ file size differs from the plain file's"
  ! cmp -s "$tmp/gptq-$t.gguf" "$tmp/plain-$t.gguf" || fail "$t: GPTQ wrote the plain bytes"
  grep -q '^\[gptq\] layer 1/2: attn q,k,v .*loss .* vs rtn ' "$tmp/log-$t" || fail "$t: no per-layer progress"
  grep -q '^\[gptq\] layer 2/2: ffn_down ' "$tmp/log-$t" || fail "$t: progress misses layer 2"
  grep -q '^\[gptq\] 14 tensors, 256 tokens' "$tmp/log-$t" || fail "$t: summary line: $(grep '^\[gptq\] [0-9]' "$tmp/log-$t")"
  [ "$(grep -c '"gptq_loss": [0-9]' "$tmp/r-$t.json")" -eq 14 ] || fail "$t: report lacks 14 gptq_loss"
  [ "$(grep -c '"rtn_loss": [0-9]' "$tmp/r-$t.json")" -eq 14 ] || fail "$t: report lacks 14 rtn_loss"
  grep -q '"gptq_loss": null' "$tmp/r-$t.json" || fail "$t: non-GPTQ tensors should have gptq_loss null"
  a=$(eval_ppl "$tmp/gptq-$t.gguf"); b=$(eval_ppl "$tmp/gptq-$t.gguf")
  [ -n "$a" ] || fail "$t: the GPTQ file does not evaluate"
  [ "$a" = "$b" ] || fail "$t: perplexity differs between runs ($a / $b)"
done

# the same bytes with another thread count, and with act-order a different but equal-size file
"$q" -t 2 --gptq "${cal[@]}" "$tmp/m" "$tmp/gptq-t2.gguf" Q4_K_M >/dev/null || fail "--gptq -t 2"
cmp -s "$tmp/gptq-t2.gguf" "$tmp/gptq-Q4_K_M.gguf" || fail "GPTQ bytes depend on the thread count"
"$q" -t 1 --gptq --act-order --damp 0.05 --seed 9 "${cal[@]}" "$tmp/m" "$tmp/act.gguf" Q4_K_M >/dev/null \
  || fail "--act-order"
[ "$(stat -c %s "$tmp/act.gguf")" = "$(stat -c %s "$tmp/plain-Q4_K_M.gguf")" ] || fail "act-order size"
[ -n "$(eval_ppl "$tmp/act.gguf")" ] || fail "the act-order file does not evaluate"

# importance matrix: float model alone, and from GPTQ's Hessians; both accepted by --imatrix
"$q" -t 1 "${cal[@]}" --imatrix-out "$tmp/im.gguf" "$tmp/m" >"$tmp/log-im" || fail "--imatrix-out alone"
grep -q 'importance matrix: 14 entries' "$tmp/log-im" || fail "imatrix entries: $(tail -n 1 "$tmp/log-im")"
"$q" -t 1 --imatrix "$tmp/im.gguf" "$tmp/m" "$tmp/im-q.gguf" Q4_K_M >"$tmp/log-imq" || fail "--imatrix of ours"
grep -q 'importance matrix applied to 14 tensor' "$tmp/log-imq" || fail "imatrix not applied"
"$q" -t 1 --gptq "${cal[@]}" --imatrix-out "$tmp/im2.gguf" "$tmp/m" "$tmp/g2.gguf" Q4_0 >/dev/null \
  || fail "--gptq --imatrix-out"
"$q" -t 1 --imatrix "$tmp/im2.gguf" "$tmp/m" "$tmp/im2-q.gguf" Q4_0 >/dev/null || fail "--imatrix of GPTQ's"

# errors: usage 1; bad calibration text 2 (invalid UTF-8, too short), missing file 3; one line each
"$q" --imatrix-out "$tmp/x.gguf" "$tmp/m" "$tmp/o.gguf" Q4_0 >/dev/null 2>&1; [ $? -eq 1 ] \
  || fail "--imatrix-out with OUTPUT TYPE but no --gptq should exit 1"
"$q" --act-order "$tmp/m" "$tmp/o.gguf" Q4_0 >/dev/null 2>&1; [ $? -eq 1 ] || fail "--act-order alone should exit 1"
"$q" --gptq --damp -1 "$tmp/m" "$tmp/o.gguf" Q4_0 >/dev/null 2>&1; [ $? -eq 1 ] || fail "--damp -1 should exit 1"
printf 'valid start \xC3\x28 then broken\n' >"$tmp/bad.txt"
printf 'too short\n' >"$tmp/short.txt"
for c in bad short missing; do
  "$q" -t 1 --gptq --calib "$tmp/$c.txt" "${cal[@]}" "$tmp/m" "$tmp/o.gguf" Q4_0 >/dev/null 2>"$tmp/err"; rc=$?
  want=2; [ $c = missing ] && want=3
  [ $rc -eq $want ] || fail "--calib $c: exit $rc, want $want"
  [ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "--calib $c: stderr is not one line: $(cat "$tmp/err")"
  grep -q "^qforge-quantize: .*$c.txt" "$tmp/err" || fail "--calib $c: message: $(cat "$tmp/err")"
  [ ! -e "$tmp/o.gguf" ] || fail "--calib $c: an output was written"
done
grep -q 'at byte 12' <("$q" --gptq --calib "$tmp/bad.txt" "$tmp/m" "$tmp/o.gguf" Q4_0 2>&1) \
  || fail "bad UTF-8 message should name the byte offset"

# --max-memory: the weights refused before loading, the whole job before its buffers (exit 2,
# one line, no output); a budget of the estimate runs, and the estimate tracks the peak RSS
budget() { # expected-regex args...
  local re=$1; shift
  "$q" -t 1 "$@" >/dev/null 2>"$tmp/err"; local rc=$?
  [ $rc -eq 2 ] || fail "--max-memory $*: exit $rc, want 2"
  [ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "--max-memory: stderr is not one line: $(cat "$tmp/err")"
  grep -Eq "^qforge-quantize: $tmp/m: $re" "$tmp/err" || fail "--max-memory message: $(cat "$tmp/err")"
  [ ! -e "$tmp/o.gguf" ] || fail "--max-memory: an output was written"
}
budget 'the weights need [0-9.]+ MiB \(one layer'"'"'s: GPTQ reads them layer by layer\), more than the memory budget of 1.0 MiB$' \
  --gptq "${cal[@]}" --max-memory 1M "$tmp/m" "$tmp/o.gguf" Q4_0
budget 'needs [0-9.]+ MiB \(weights [0-9.]+, hidden states of 4 x 64 tokens [0-9.]+, scratch and solver [0-9.]+, quantized tensors [0-9.]+\), more than the memory budget of 12.0 MiB; lower --calib-samples' \
  --gptq "${cal[@]}" --max-memory 12M "$tmp/m" "$tmp/o.gguf" Q4_0
budget 'needs [0-9.]+ MiB .*, more than the memory budget of 6.0 MiB' \
  "${cal[@]}" --max-memory 6M --imatrix-out "$tmp/imx.gguf" "$tmp/m"
[ ! -e "$tmp/imx.gguf" ] || fail "--max-memory: an imatrix was written"
need=$("$q" -t 1 --gptq "${cal[@]}" --max-memory 13M "$tmp/m" "$tmp/o.gguf" Q4_0 2>&1 | sed -n 's/.*: needs \([0-9.]*\) MiB.*/\1/p')
[ -n "$need" ] || fail "no estimate at --max-memory 13M"
/usr/bin/time -f '%M' -o "$tmp/rss" "$q" -t 1 --gptq "${cal[@]}" --max-memory "$(awk -v n="$need" 'BEGIN { printf "%.0f", n * 1024 + 103 }')K" \
  "$tmp/m" "$tmp/o.gguf" Q4_0 >/dev/null 2>"$tmp/err" || fail "a budget of the estimate ($need MiB) is refused: $(cat "$tmp/err")"
if [ -s "${QFORGE_BUILD:-/nonexistent}/.san" ]; then
  echo "note: sanitizer build, estimate vs RSS not compared"
else
  awk -v need="$need" -v rss="$(cat "$tmp/rss")" 'BEGIN { exit !(rss <= need * 1024 + 16384 && rss >= need * 1024 * 0.5) }' ||
    fail "estimate $need MiB vs peak RSS $(cat "$tmp/rss") KiB (allowed: RSS <= estimate + 16 MiB, >= half)"
fi
echo ok
