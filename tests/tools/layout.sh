#!/usr/bin/env bash
# Layout rules of docs/architecture.md, checked on the source tree:
#   - no function over 150 lines except those listed under "Long functions" in docs/architecture.md
#     (tests/tools/funclen.py lists them), and every listed exception still exists;
#   - no file in tools/ over 400 lines;
#   - runtime/ writes no GGUF and holds no GPTQ solver (inference only).
set -u
ROOT=${QFORGE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
command -v python3 >/dev/null || { echo "skipped: python3 is missing (make deps installs it)"; exit 77; }
fails=0
fail() { echo "FAIL $*"; fails=$((fails + 1)); }

# Exceptions: lines "- `FILE:FUNCTION` — reason" in the "Long functions" section.
allowed=$(sed -n '/^## Long functions/,/^## /p' "$ROOT/docs/architecture.md" |
          sed -n 's/^- `\([^`:]*\):\([A-Za-z_0-9]*\)`.*/\1:\2/p' | sort -u)
[ -n "$allowed" ] || fail "docs/architecture.md has no \"## Long functions\" list"
long=$(python3 "$ROOT/tests/tools/funclen.py" --limit 150 | awk '{ split($2, a, ":"); print a[1] ":" $3 }' | sort -u)
for f in $long; do
  grep -qxF "$f" <<<"$allowed" || fail "$f is over 150 lines and not a documented exception"
done
for f in $allowed; do
  grep -qxF "$f" <<<"$long" || fail "$f is listed as a long function but is not over 150 lines (remove it)"
done

for f in "$ROOT"/tools/*.c; do
  n=$(wc -l <"$f")
  [ "$n" -le 400 ] || fail "tools/$(basename "$f") has $n lines (limit 400)"
done

hits=$(grep -lE 'gguf_writer_|lq_gptq' "$ROOT"/runtime/*.[ch] 2>/dev/null)
[ -z "$hits" ] || fail "runtime/ uses a GGUF writer or the GPTQ solver: $hits"

[ $fails -eq 0 ] && echo "layout ok"
[ $fails -eq 0 ]
