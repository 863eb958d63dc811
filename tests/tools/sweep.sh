#!/usr/bin/env bash
# qforge-sweep on the bundled demo model (Q4_0, Q4_K_M x rtn, imatrix, gptq; 3 chunks of 256 tokens, 8
# calibration chunks): every file equals qforge-quantize's byte for byte (its imatrix.gguf and base-1.kld
# those of qforge-quantize --imatrix-out and qforge-perplexity --kl-divergence-base), every figure of
# report.json equals qforge-perplexity --kl-divergence --json's; a second run reuses everything; another
# evaluation text only re-evaluates; report.md ranks by size with Pareto marks, the plots are PNG and SVG;
# progress is a bar under a pseudo-terminal (script), one line per step in a pipe, nothing with --quiet;
# under a file size limit it exits 3 with one line and no temp file; command-line mistakes exit 1.
set -u
BIN=${QFORGE_BIN:-$(cd "$(dirname "$0")/../.." && pwd)/bin}
ROOT=${QFORGE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
for t in qforge-sweep qforge-quantize qforge-perplexity; do
  [ -x "$BIN/$t" ] || { echo "skipped: $BIN/$t is missing"; exit 77; }
done
command -v python3 >/dev/null || { echo "skipped: python3 not available"; exit 77; }
T=$(mktemp -d "${TMPDIR:-/tmp}/qforge-sweep-XXXXXX")
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; [ -s "$T/err" ] && sed 's/^/  stderr: /' "$T/err" | head -n 8; exit 1; }
S="$BIN/qforge-sweep"
model="$ROOT/models/classics-7m"
text="$ROOT/models/eval-classics.txt"
D="$T/sw"
common=(-t 2 --chunks 3 --calib-samples 8 -f "$text")

# ---------------------------------------------------------------- the sweep, in a pipe
"$S" "$model" -o "$D" --types Q4_0,Q4_K_M --methods rtn,imatrix,gptq "${common[@]}" >"$T/out" 2>"$T/err" ||
  fail "sweep exited $?"
for f in report.json report.md kld.png ppl.png kld.svg ppl.svg imatrix.gguf base-1.kld q4_0-rtn.gguf \
         q4_0-imatrix.gguf q4_0-gptq.gguf q4_k_m-rtn.gguf q4_k_m-imatrix.gguf q4_k_m-gptq.gguf; do
  [ -s "$D/$f" ] || fail "$f was not written"
done
ls -a "$D" | grep -q 'qforge-tmp' && fail "a temp file was left: $(ls -a "$D")"
grep -q $'\r' "$T/err" && fail "a progress bar (carriage return) went into a pipe"
grep -q 'evaluate: 3 chunks in' "$T/err" || fail "no step line 'evaluate: 3 chunks in' in a pipe"
grep -q 'calibration: 6 layers in' "$T/err" || fail "no GPTQ step line 'calibration: 6 layers in'"
[ "$(grep -c '\.gguf ' "$T/out")" = 6 ] || fail "stdout does not list 6 variants: $(cat "$T/out")"

# ---------------------------------------------------------------- the same files and figures, made separately
Q="$BIN/qforge-quantize"; P="$BIN/qforge-perplexity"
"$Q" --imatrix-out "$T/im.gguf" --calib-samples 8 "$model" >/dev/null 2>"$T/err" || fail "qforge-quantize --imatrix-out"
cmp -s "$T/im.gguf" "$D/imatrix.gguf" || fail "imatrix.gguf differs from qforge-quantize --imatrix-out's"
"$P" -m "$model" -f "$text" -c 256 --chunks 3 -t 2 --kl-divergence-base "$T/base.kld" >"$T/base.out" 2>"$T/err" ||
  fail "qforge-perplexity base"
cmp -s "$T/base.kld" "$D/base-1.kld" || fail "base-1.kld differs from qforge-perplexity --kl-divergence-base's"
for ty in Q4_0 Q4_K_M; do
  lt=$(echo "$ty" | tr 'A-Z' 'a-z')
  for m in rtn imatrix gptq; do
    opt=(); [ $m = imatrix ] && opt=(--imatrix "$D/imatrix.gguf"); [ $m = gptq ] && opt=(--gptq --calib-samples 8)
    "$Q" -t 2 "${opt[@]}" "$model" "$T/$lt-$m.gguf" "$ty" >/dev/null 2>"$T/err" || fail "qforge-quantize $ty $m"
    cmp -s "$T/$lt-$m.gguf" "$D/$lt-$m.gguf" || fail "$lt-$m.gguf differs from qforge-quantize's"
    "$P" -m "$T/$lt-$m.gguf" --kl-divergence-base "$T/base.kld" --kl-divergence -t 2 --json "$T/$lt-$m.json" \
      >/dev/null 2>"$T/err" || fail "qforge-perplexity $lt-$m"
  done
done
python3 - "$D/report.json" "$T" "$T/base.out" <<'PY' || fail "report.json disagrees with the separate runs"
import json, re, sys
rep = json.load(open(sys.argv[1]))
final = re.search(r"Final estimate: PPL = ([0-9.]+)", open(sys.argv[3]).read()).group(1)
assert "%.4f" % rep["bases"][0]["ppl"] == final, (rep["bases"][0]["ppl"], final)
assert rep["tool"] == "qforge-sweep" and rep["version"], rep["version"]
assert len(rep["variants"]) == 6
for v in rep["variants"]:
    sep = json.load(open("%s/%s.json" % (sys.argv[2], v["file"][:-5])))["kld"]
    got = {k: x for k, x in v["eval"][0].items() if k not in ("text", "eval_seconds")}
    assert got == sep, (v["file"], [(k, got.get(k), sep.get(k)) for k in sep if got.get(k) != sep[k]])
    assert v["bpw"] > 4 and v["file_bytes"] > 0 and not v["reused"]
print("figures equal for", len(rep["variants"]), "variants")
PY

# ---------------------------------------------------------------- the report
python3 - "$D/report.md" "$D/report.json" <<'PY' || fail "report.md"
import json, sys
md = open(sys.argv[1]).read().splitlines()
rows = [l.split("|")[1:-1] for l in md if l.startswith("| q")]
assert len(rows) == 6, md
size = [float(r[3]) for r in rows]
assert size == sorted(size), size                      # ranked by size
kld = [float(r[7]) for r in rows]
for i, r in enumerate(rows):                           # Pareto: no other row as small with as low a KLD
    dominated = any(j != i and size[j] <= size[i] and kld[j] <= kld[i] and (size[j] < size[i] or kld[j] < kld[i])
                    for j in range(len(rows)))
    assert (r[13].strip() == "◆") == (not dominated), (r, dominated)
assert sum(r[13].strip() == "◆" for r in rows) >= 1
PY
head -c 8 "$D/kld.png" | od -An -c | grep -q 'P   N   G' || fail "kld.png is not a PNG"
grep -q '<svg' "$D/ppl.svg" || fail "ppl.svg is not SVG"

# ---------------------------------------------------------------- resume
t0=$(date +%s.%N)
"$S" "$model" -o "$D" --types Q4_0,Q4_K_M --methods rtn,imatrix,gptq "${common[@]}" >"$T/out2" 2>"$T/err" ||
  fail "second run exited $?"
t1=$(date +%s.%N)
[ "$(grep -c '(reused)' "$T/out2")" = 6 ] || fail "the second run did not reuse all 6 variants: $(cat "$T/out2")"
grep -q 'evaluate\|write\|calibration' "$T/err" && fail "the second run made something: $(cat "$T/err")"
python3 -c "import sys; d = float(sys.argv[2]) - float(sys.argv[1]); assert d < 10, d" "$t0" "$t1" ||
  fail "the second run took more than 10 s"
echo "second run: $(python3 -c "import sys; print('%.2f s' % (float(sys.argv[2]) - float(sys.argv[1])))" "$t0" "$t1")"
# fewer chunks: the files stay, every variant is evaluated again
"$S" "$model" -o "$D" --types Q4_0 --methods rtn -t 2 --chunks 2 -f "$text" >"$T/out3" 2>"$T/err" || fail "third run"
grep -q 'write' "$T/err" && fail "the third run quantized again"
grep -q 'evaluate: 2 chunks' "$T/err" || fail "the third run did not evaluate 2 chunks"

# ---------------------------------------------------------------- a terminal: a bar; --quiet: nothing
if command -v script >/dev/null; then
  script -qec "'$S' '$model' -o '$T/pty' --types Q4_0 --methods rtn -t 2 --chunks 2 -f '$text'" /dev/null \
    >"$T/pty.out" 2>&1 || fail "sweep under script exited $?"
  grep -q $'\r' "$T/pty.out" && grep -q 'ETA' "$T/pty.out" && grep -q '\[#' "$T/pty.out" ||
    fail "no progress bar under a pseudo-terminal: $(head -c 300 "$T/pty.out" | od -c | head)"
else
  echo "note: script(1) missing, the terminal case is not checked"
fi
"$S" "$model" -o "$T/q" --types Q4_0 --methods rtn -t 2 --chunks 2 -f "$text" --quiet >/dev/null 2>"$T/err" ||
  fail "--quiet run"
[ -s "$T/err" ] && fail "--quiet printed on stderr: $(head -n 3 "$T/err")"

# ---------------------------------------------------------------- a file size limit: exit 3, one line, no temp file
(ulimit -f 1024; exec "$S" "$model" -o "$T/lim" --types Q4_0 --methods rtn -t 2 --chunks 2 -f "$text" \
  >/dev/null 2>"$T/err"); rc=$?
[ $rc = 3 ] || fail "under ulimit -f 1024: exit $rc, not 3"
[ "$(wc -l <"$T/err")" = 1 ] && grep -q 'File too large' "$T/err" || fail "under ulimit -f: $(cat "$T/err")"
ls -a "$T/lim" | grep -q 'qforge-tmp' && fail "under ulimit -f: a temp file was left: $(ls -a "$T/lim")"

# ---------------------------------------------------------------- size budgets: the sensitivity measured once
B="$T/bud"
"$S" "$model" -o "$B" --target-bpw 4.5 --methods rtn "${common[@]}" >"$T/outb" 2>"$T/err" || fail "budget sweep exited $?"
[ -s "$B/bpw4.5-rtn.gguf" ] && [ -s "$B/sensitivity-plain.json" ] || fail "budget sweep: $(ls "$B")"
grep -q 'sensitivity plain' "$T/err" || fail "budget sweep: no sensitivity step line"
"$Q" -t 2 --target-bpw 4.5 --sensitivity-in "$B/sensitivity-plain.json" "$model" "$T/b45.gguf" >/dev/null 2>"$T/err" ||
  fail "qforge-quantize --target-bpw 4.5"
cmp -s "$T/b45.gguf" "$B/bpw4.5-rtn.gguf" || fail "bpw4.5-rtn.gguf differs from qforge-quantize --target-bpw 4.5's"
"$S" "$model" -o "$B" --target-bpw 4.5,5 --methods rtn "${common[@]}" >"$T/outb2" 2>"$T/err" || fail "second budget sweep"
grep -q 'sensitivity' "$T/err" && fail "the second budget sweep measured the sensitivity again"
grep -q 'bpw4.5-rtn.gguf.*(reused)' "$T/outb2" && grep -q 'bpw5-rtn.gguf' "$T/outb2" || fail "second budget sweep: $(cat "$T/outb2")"
python3 - "$B/report.json" "$(stat -c %s "$B/bpw5-rtn.gguf")" <<'PY' || fail "budget records"
import json, sys
rep = json.load(open(sys.argv[1]))
v = {x["file"]: x for x in rep["variants"]}
b = v["bpw5-rtn.gguf"]
assert b["type"] == "5 bpw" and b["method"] == "rtn-budget", b
assert int(sys.argv[2]) == b["file_bytes"] <= b["budget"]["bytes"] == int(5 * rep["n_elements"] / 8), b
assert b["eval"][0]["kld"] < v["bpw4.5-rtn.gguf"]["eval"][0]["kld"], "5 bpw not better than 4.5 bpw"
assert [s["file"] for s in rep["sensitivity"]] == ["sensitivity-plain.json"], rep["sensitivity"]
PY
"$S" "$model" -o "$T/x" --target-bpw 0 >/dev/null 2>"$T/err"; [ $? = 1 ] || fail "--target-bpw 0: not exit 1"

# ---------------------------------------------------------------- mistakes
"$S" "$model" >/dev/null 2>"$T/err"; [ $? = 1 ] || fail "no -o: not exit 1"
"$S" "$model" -o "$T/x" --types Q9_9 >/dev/null 2>"$T/err"; [ $? = 1 ] || fail "--types Q9_9: not exit 1"
"$S" "$model" -o "$T/x" --methods awq >/dev/null 2>"$T/err"; [ $? = 1 ] || fail "--methods awq: not exit 1"
[ "$(wc -l <"$T/err")" = 1 ] || fail "more than one line for a usage error"
echo "ok"
