#!/usr/bin/env bash
# qforge-inspect: the text listing and --json (input/describe.c) agree on a GGUF file, a
# safetensors file and a checkpoint directory; control bytes in names are escaped; errors exit
# 1 (usage), 2 (not a model), 3 (missing).
set -u
root="${QFORGE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}"
bin="${QFORGE_BIN:-$root/bin}"
I="$bin/qforge-inspect"
for t in qforge-inspect qforge-synth qforge-convert; do [ -x "$bin/$t" ] || { echo "missing $bin/$t"; exit 1; }; done
command -v python3 >/dev/null || { echo "skipped: python3 not available"; exit 77; }
T=$(mktemp -d "${TMPDIR:-/tmp}/qforge-inspect-XXXXXX"); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$bin/qforge-synth" --dim 64 --layers 2 --heads 4 --kv-heads 2 --ffn 96 --vocab 300 -o "$T/m" >/dev/null || fail "synth"
"$bin/qforge-convert" "$T/m" -o "$T/m.gguf" --outtype f16 >/dev/null || fail "convert"
# text and JSON: same tensors, names, types and sizes
agree() { # path
  "$I" "$1" >"$T/text" || fail "$1: text listing"
  "$I" "$1" --json >"$T/json" || fail "$1: --json"
  python3 - "$T/text" "$T/json" <<'PY' || fail "$1: text and JSON disagree"
import json, re, sys
text = open(sys.argv[1]).read().splitlines()
j = json.load(open(sys.argv[2]))
rows = [l.split() for l in text if re.match(r"^ +[0-9]+  \S", l)]
assert len(rows) == len(j["tensors"]) > 0, (len(rows), len(j["tensors"]))
for r, t in zip(rows, j["tensors"]):
    assert r[1] == t["name"], (r, t)
    assert int(r[-1]) == t["bytes"], (r, t)
    assert r[-2 if "offset" not in t else -3] == t.get("type", t.get("dtype")), (r, t)
if j["format"] != "safetensors":
    keys = [l.split()[0] for l in text if l.startswith("  ") and not re.match(r"^ +[0-9]+  ", l) and not l.startswith("   ")]
    assert keys == [m["key"] for m in j["metadata"]], (keys[:3], j["metadata"][:3])
PY
}
agree "$T/m.gguf"
agree "$T/m"
agree "$T/m/$(ls "$T/m" | grep safetensors | head -n 1)"
grep -q '"format": "checkpoint"' <("$I" "$T/m" --json) || fail "checkpoint format"

ov="$root/tests/fuzz/regress/model/gguf-overlap-control-names.gguf"
if [ -f "$ov" ]; then
  "$I" "$ov" >"$T/out" 2>"$T/err"; rc=$?
  [ $rc -eq 2 ] || fail "overlapping tensors: exit $rc"
  LC_ALL=C grep -q '[[:cntrl:]]' "$T/err" && fail "control bytes reached the message"
fi
"$I" >/dev/null 2>&1; [ $? -eq 1 ] || fail "no argument: exit 1"
"$I" "$T/m.gguf" --bogus >/dev/null 2>&1; [ $? -eq 1 ] || fail "unknown option: exit 1"
"$I" "$T/none.gguf" --json >/dev/null 2>&1; [ $? -eq 3 ] || fail "missing file: exit 3"
printf 'not a model at all' >"$T/junk"
"$I" "$T/junk" --json >/dev/null 2>"$T/err"; rc=$?
[ $rc -eq 2 ] && grep -q "^qforge-inspect: $T/junk" "$T/err" || fail "junk: exit $rc, $(cat "$T/err")"
echo ok
