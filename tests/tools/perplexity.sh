#!/usr/bin/env bash
# qforge-perplexity smoke test on a tiny synthetic model (qforge-synth + qforge-convert; no
# shared data needed): the run completes with llama-perplexity's exact "Final estimate" line,
# --json agrees with it, a model compared with itself through --kl-divergence-base /
# --kl-divergence gives KLD 0 and "same top p" 100 %, a quantized copy gives KLD > 0, the
# thread count does not change the result, gzip'ed text reads as plain, --max-memory refuses
# what does not fit (exit 2, one line) and its estimate tracks the measured peak RSS, and
# command-line mistakes exit 1.
set -u
BIN=${QFORGE_BIN:-$(cd "$(dirname "$0")/../.." && pwd)/bin}
P="$BIN/qforge-perplexity"
for t in qforge-perplexity qforge-synth qforge-convert qforge-quantize; do
  [ -x "$BIN/$t" ] || { echo "skipped: $BIN/$t is missing"; exit 77; }
done
command -v python3 >/dev/null || { echo "skipped: python3 not available"; exit 77; }
T=$(mktemp -d "${TMPDIR:-/tmp}/qforge-ppl-XXXXXX")
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; [ -s "$T/err" ] && sed 's/^/  stderr: /' "$T/err" | head -n 5; exit 1; }

"$BIN/qforge-synth" --dim 64 --layers 2 --heads 4 --kv-heads 2 --ffn 128 --vocab 300 --ctx 128 --dtype f32 \
  -o "$T/ckpt" >/dev/null 2>"$T/err" || fail "qforge-synth"
"$BIN/qforge-convert" "$T/ckpt" -o "$T/m.gguf" --outtype f32 >/dev/null 2>"$T/err" || fail "qforge-convert"
"$BIN/qforge-quantize" "$T/m.gguf" "$T/q4.gguf" Q4_0 >/dev/null 2>"$T/err" || fail "qforge-quantize"
python3 - "$T/text.txt" <<'PY'
import sys
words = ("it was the best of times it was the worst of times it was the age of wisdom it was the age "
         "of foolishness it was the epoch of belief it was the epoch of incredulity").split()
open(sys.argv[1], "w").write(" ".join(words[(i * 7) % len(words)] for i in range(700)) + "\n")
PY

# --- a plain run: the Final estimate line exactly as llama-perplexity prints it
"$P" -m "$T/m.gguf" -f "$T/text.txt" -c 64 --chunks 4 -t 2 --json "$T/run.json" >"$T/out" 2>"$T/err" ||
  fail "plain run exited $?"
final=$(grep '^Final estimate' "$T/out")
echo "$final" | grep -Eq '^Final estimate: PPL = [0-9]+\.[0-9]{4} \+/- [0-9]+\.[0-9]{5}$' ||
  fail "Final estimate line format: '$final'"
grep -Eq '^\[1\][0-9]+\.[0-9]{4},\[2\][0-9]+\.[0-9]{4},\[3\][0-9]+\.[0-9]{4},\[4\][0-9]+\.[0-9]{4},$' "$T/out" ||
  fail "running perplexities: $(head -n 1 "$T/out")"
python3 - "$T/run.json" "$final" <<'PY' || fail "--json does not parse or disagrees with stdout"
import json, sys
d = json.load(open(sys.argv[1]))
ppl, unc = float(sys.argv[2].split()[4]), float(sys.argv[2].split()[6])
assert d["n_ctx"] == 64 and d["n_chunk"] == 4 and d["threads"] == 2, d
assert d["scored_tokens"] == 4 * (64 - 1 - 32), d["scored_tokens"]
assert len(d["running_ppl"]) == 4 and abs(d["running_ppl"][-1] - d["ppl"]) < 1e-12
assert abs(d["ppl"] - ppl) <= 5e-5 * max(1, ppl) and abs(d["ppl_unc"] - unc) <= 5e-6 * max(1, unc), (d, ppl, unc)
assert 1 < d["ppl"] < 1000 and d["tokens_per_second"] > 0
PY

# --- one thread, or one chunk per pass (-b 64), gives the same numbers
"$P" -m "$T/m.gguf" -f "$T/text.txt" -c 64 --chunks 4 -t 1 >"$T/out1" 2>"$T/err" || fail "1-thread run"
cmp -s <(grep -v '^$' "$T/out") <(grep -v '^$' "$T/out1") || fail "1 and 2 threads differ: $(tail -n 1 "$T/out1")"
"$P" -m "$T/m.gguf" -f "$T/text.txt" -c 64 --chunks 4 -t 3 -b 64 >"$T/out1" 2>"$T/err" || fail "-b 64 run"
cmp -s <(grep -v '^$' "$T/out") <(grep -v '^$' "$T/out1") || fail "-b 64 -t 3 differs: $(tail -n 1 "$T/out1")"

# --- gzip'ed text (the calibration loader reads it): the same numbers; a text that is not
# UTF-8 is refused with the loader's message (exit 2, one line)
gzip -c "$T/text.txt" >"$T/text.gz"
"$P" -m "$T/m.gguf" -f "$T/text.gz" -c 64 --chunks 4 -t 1 >"$T/out1" 2>"$T/err" || fail "gzip'ed text"
cmp -s <(grep -v '^$' "$T/out") <(grep -v '^$' "$T/out1") || fail "gzip'ed text differs: $(tail -n 1 "$T/out1")"
printf 'it was the best \xff of times\n' >"$T/bad.txt"
"$P" -m "$T/m.gguf" -f "$T/bad.txt" -c 64 >/dev/null 2>"$T/err"; rc=$?
[ $rc -eq 2 ] && [ "$(grep -c '' "$T/err")" -eq 1 ] && grep -q "bad.txt: invalid UTF-8 at byte 16$" "$T/err" ||
  fail "not UTF-8: exit $rc, $(cat "$T/err")"

# --- KL divergence of the model against itself: 0, same top token everywhere
"$P" -m "$T/m.gguf" -f "$T/text.txt" -c 64 --chunks 4 --kl-divergence-base "$T/base.logp" >"$T/out" 2>"$T/err" ||
  fail "writing the KLD base"
[ -s "$T/base.logp" ] || fail "no KLD base file"
"$P" -m "$T/m.gguf" -f "$T/text.txt" -c 64 --chunks 4 -t 1 -b 128 --kl-divergence-base "$T/base1.logp" >/dev/null 2>"$T/err" ||
  fail "writing the KLD base with 1 thread"
cmp -s "$T/base.logp" "$T/base1.logp" || fail "the KLD base differs between thread counts / batch sizes"
"$P" -m "$T/m.gguf" --kl-divergence-base "$T/base.logp" --kl-divergence --json "$T/self.json" >"$T/out" 2>"$T/err" ||
  fail "--kl-divergence against itself"
grep -q '^Mean    KLD:' "$T/out" && grep -q '^Same top p:' "$T/out" || fail "KLD report lines missing"
python3 - "$T/self.json" <<'PY' || fail "self-KLD is not 0 / same top p not 100 %"
import json, sys
k = json.load(open(sys.argv[1]))["kld"]
assert abs(k["kld"]) < 1e-4, k["kld"]
assert k["same_top_p"] == 1.0, k["same_top_p"]
assert abs(k["ppl"] - k["ppl_base"]) <= 1e-6 * k["ppl"], (k["ppl"], k["ppl_base"])
PY
# ... and a Q4_0 copy diverges a little
"$P" -m "$T/q4.gguf" --kl-divergence-base "$T/base.logp" --kl-divergence --json "$T/q4.json" >"$T/out" 2>"$T/err" ||
  fail "--kl-divergence of the Q4_0 copy"
python3 - "$T/q4.json" <<'PY' || fail "Q4_0 KLD should be small but positive"
import json, sys
k = json.load(open(sys.argv[1]))["kld"]
assert 1e-6 < k["kld"] < 1.0, k["kld"]
assert 0.5 < k["same_top_p"] <= 1.0, k["same_top_p"]
PY

# --- command-line mistakes exit 1 with one "qforge-perplexity: " line
usage() {
  local why=$1; shift
  "$P" "$@" >"$T/out" 2>"$T/err"; local rc=$?
  [ $rc -eq 1 ] || fail "$why: exit $rc, want 1"
  grep -q '^qforge-perplexity: ' "$T/err" || fail "$why: message '$(tail -n 1 "$T/err")'"
}
usage "no arguments"
usage "no model" -f "$T/text.txt"
usage "no text" -m "$T/m.gguf"
usage "unknown option" -m "$T/m.gguf" -f "$T/text.txt" --frobnicate
usage "missing value" -m "$T/m.gguf" -f "$T/text.txt" -c
usage "-c 0" -m "$T/m.gguf" -f "$T/text.txt" -c 0
usage "-c not a number" -m "$T/m.gguf" -f "$T/text.txt" -c abc
usage "-t 0" -m "$T/m.gguf" -f "$T/text.txt" -t 0
usage "--chunks 0" -m "$T/m.gguf" -f "$T/text.txt" --chunks 0
usage "--kl-divergence without a base" -m "$T/m.gguf" -f "$T/text.txt" --kl-divergence
usage "-c differs from the base" -m "$T/m.gguf" --kl-divergence-base "$T/base.logp" --kl-divergence -c 32
usage "--max-memory with a unit it does not know" -m "$T/m.gguf" -f "$T/text.txt" --max-memory 12Q
"$P" --help | grep -q '^usage: qforge-perplexity' || fail "--help"

# --- OpenMP wait policy: passive unless the environment chooses (the tool re-executes itself)
grep -q "\"omp_wait_policy\": \"${OMP_WAIT_POLICY-passive}\"" "$T/run.json" || fail "OMP_WAIT_POLICY is not ${OMP_WAIT_POLICY-passive}"
OMP_WAIT_POLICY=active "$P" -m "$T/m.gguf" -f "$T/text.txt" -c 64 --chunks 2 -t 2 --json "$T/active.json" >/dev/null 2>"$T/err" ||
  fail "run with OMP_WAIT_POLICY=active"
grep -q '"omp_wait_policy": "active"' "$T/active.json" || fail "OMP_WAIT_POLICY=active was not kept"

# --- --max-memory: refused before loading when the weights alone do not fit, before the
# buffers when the whole run does not; the estimate tracks the measured peak RSS
one_line() { [ "$(grep -c '' "$T/err")" -eq 1 ] || fail "$1: $(grep -c '' "$T/err") stderr lines"; }
"$P" -m "$T/m.gguf" -f "$T/text.txt" -c 64 -t 2 --max-memory 100K >"$T/out" 2>"$T/err"; rc=$?
[ $rc -eq 2 ] || fail "--max-memory 100K: exit $rc, want 2"
one_line "--max-memory 100K"
grep -Eq "^qforge-perplexity: $T/m.gguf: the weights need [0-9.]+ KiB, more than --max-memory 100.0 KiB$" "$T/err" ||
  fail "--max-memory 100K message: $(cat "$T/err")"
wbytes=$(stat -c %s "$T/m.gguf")
"$P" -m "$T/m.gguf" -f "$T/text.txt" -c 64 -t 2 --max-memory $((wbytes / 1024 + 1))K >"$T/out" 2>"$T/err"; rc=$?
[ $rc -eq 2 ] || fail "--max-memory just above the weights: exit $rc, want 2"
tail -n 1 "$T/err" | grep -Eq 'needs [0-9.]+ [KM]iB \(weights .*, scratch for 2 pass\(es\) of [0-9]+ x 64 tokens .*\), more than --max-memory' "$T/err" ||
  fail "--max-memory message: $(cat "$T/err")"
need_k=$(sed -n 's/.*: needs \([0-9.]*\) \([KM]\)iB.*/\1 \2/p' "$T/err" | awk '{print ($2 == "M") ? $1 * 1024 : $1}')
/usr/bin/time -f '%M' -o "$T/rss" "$P" -m "$T/m.gguf" -f "$T/text.txt" -c 64 -t 2 --max-memory "$(awk -v n="$need_k" 'BEGIN { printf "%.0f", n + 103 }')K" \
  >"$T/out" 2>"$T/err" || fail "a budget of the estimate ($need_k KiB, rounded up) is refused"
grep -q '^Final estimate' "$T/out" || fail "no Final estimate within the budget"
# (a sanitizer build's shadow memory makes RSS meaningless: `make asan` leaves build/.san)
if [ -s "${QFORGE_BUILD:-/nonexistent}/.san" ]; then
  echo "note: sanitizer build, estimate vs RSS not compared"
else
  awk -v need="$need_k" -v rss="$(cat "$T/rss")" 'BEGIN { exit !(rss <= need + 16384 && rss >= need * 0.5) }' ||
    fail "estimate $need_k KiB vs peak RSS $(cat "$T/rss") KiB (allowed: RSS <= estimate + 16 MiB of program, >= half)"
fi
"$P" -m "$T/m.gguf" -f "$T/text.txt" -c 64 -t 2 --max-memory 0 >"$T/out" 2>"$T/err" || fail "--max-memory 0 (no check)"
echo "qforge-perplexity smoke test passed"
