#!/usr/bin/env bash
# Man pages and --version. For every tool bin/qforge-*:
#   - man/TOOL.1 exists and renders with `man -l` (ASCII and UTF-8) without a groff warning;
#   - its .TH header names the version in the VERSION file;
#   - the options its OPTIONS section lists are exactly those TOOL --help prints (both ways), and
#     every option in its SYNOPSIS is one of them;
#   - TOOL --version prints "TOOL (qforge) VERSION" and exits 0, wherever --version stands;
# then `make install PREFIX=TMP` installs every tool, the calibration text and the man pages.
set -u
BIN=${QFORGE_BIN:-$(cd "$(dirname "$0")/../.." && pwd)/bin}
ROOT=${QFORGE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
command -v man >/dev/null || { echo "skipped: man is missing (make deps installs man-db)"; exit 77; }
command -v python3 >/dev/null || { echo "skipped: python3 is missing (make deps installs it)"; exit 77; }
VERSION=$(cat "$ROOT/VERSION") || { echo "FAIL: no VERSION file"; exit 1; }
T=$(mktemp -d "${TMPDIR:-/tmp}/qforge-man-XXXXXX")
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
ok() { echo "ok   $*"; }

# options TEXT-FILE [SECTION]: the option words (-x, --long-name) of a file, one per line, sorted;
# with SECTION, only those in that section of a rendered man page (up to the next heading).
OPTS='import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
if len(sys.argv) > 2:
    m = re.search(r"^" + sys.argv[2] + r"\n(.*?)(?=^\S)", text, re.S | re.M)
    text = m.group(1) if m else ""
print("\n".join(sorted(set(re.findall(r"(?<![\w-])--?[A-Za-z][A-Za-z0-9-]*", text)))))'
options() { python3 -c "$OPTS" "$@"; }

tools=()
for t in "$BIN"/qforge-*; do [ -x "$t" ] && tools+=("$(basename "$t")"); done
[ ${#tools[@]} -gt 0 ] || { echo "skipped: no tools in $BIN"; exit 77; }

for tool in "${tools[@]}"; do
  page="$ROOT/man/$tool.1"
  if [ ! -f "$page" ]; then fail "$tool: no man page man/$tool.1"; continue; fi
  # ---------------------------------------------------------------- renders, no warnings
  for loc in C C.UTF-8; do
    LC_ALL=$loc MANWIDTH=80 man --warnings -l "$page" >"$T/$tool.$loc" 2>"$T/$tool.warn"; rc=$?
    if [ $rc -ne 0 ] || [ -s "$T/$tool.warn" ]; then
      fail "$tool: man -l ($loc) exit $rc:"; sed 's/^/      /' "$T/$tool.warn" | head -n 5
    elif ! grep -q "^NAME" "$T/$tool.$loc" || ! grep -q "^       $tool - " "$T/$tool.$loc"; then
      fail "$tool: the rendered page ($loc) has no 'NAME' section naming $tool"
    fi
  done
  ok "$tool: man -l renders $(grep -c '' "$T/$tool.C") lines, no warnings"
  for s in SYNOPSIS DESCRIPTION OPTIONS "EXIT STATUS" EXAMPLES "SEE ALSO"; do
    grep -q "^$s\$" "$T/$tool.C" || fail "$tool: the man page has no $s section"
  done
  grep -q "^\.TH .* \"qforge $VERSION\"" "$page" ||
    fail "$tool: the .TH line of man/$tool.1 does not name \"qforge $VERSION\" (the VERSION file): $(grep '^\.TH' "$page")"

  # ---------------------------------------------------------------- options: --help = OPTIONS
  "$BIN/$tool" --help >"$T/$tool.help" 2>&1; rc=$?
  if [ $rc -ne 0 ] || ! grep -q "^usage: $tool" "$T/$tool.help"; then fail "$tool --help: exit $rc, or no 'usage: $tool' line"; continue; fi
  options "$T/$tool.help" >"$T/$tool.hopts"
  options "$T/$tool.C" OPTIONS >"$T/$tool.mopts"
  options "$T/$tool.C" SYNOPSIS >"$T/$tool.sopts"
  only_help=$(comm -23 "$T/$tool.hopts" "$T/$tool.mopts" | tr '\n' ' ')
  only_man=$(comm -13 "$T/$tool.hopts" "$T/$tool.mopts" | tr '\n' ' ')
  only_syn=$(comm -13 "$T/$tool.hopts" "$T/$tool.sopts" | tr '\n' ' ')
  if [ ! -s "$T/$tool.hopts" ]; then fail "$tool: --help prints no option"
  elif [ -n "$only_help" ] || [ -n "$only_man" ] || [ -n "$only_syn" ]; then
    fail "$tool: --help and man/$tool.1 differ: only in --help: ${only_help:-none}; only in OPTIONS: ${only_man:-none}; only in SYNOPSIS: ${only_syn:-none}"
  else ok "$tool: the $(grep -c '' "$T/$tool.hopts") options of --help are those of the man page"; fi

  # ---------------------------------------------------------------- --version
  for args in "--version" "in.gguf --version"; do
    out=$("$BIN/$tool" $args 2>&1); rc=$?
    if [ $rc -ne 0 ] || [ "$out" != "$tool (qforge) $VERSION" ]; then fail "$tool $args: exit $rc, printed '$out', want '$tool (qforge) $VERSION'"; fi
  done
done

# ---------------------------------------------------------------- make install PREFIX=...
# Only for the default bin/ (the Makefile's install takes its tools from there).
if [ "$(cd "$BIN" && pwd)" = "$(cd "$ROOT" && pwd)/bin" ] && command -v make >/dev/null; then
  P="$T/prefix"
  if ! make -C "$ROOT" --no-print-directory -s install PREFIX="$P" >"$T/install.log" 2>&1; then
    fail "make install PREFIX=$P:"; tail -n 5 "$T/install.log" | sed 's/^/      /'
  else
    missing=""
    [ -f "$P/share/qforge/calibration.txt" ] || missing="$missing share/qforge/calibration.txt"
    for tool in "${tools[@]}"; do
      [ -x "$P/bin/$tool" ] || missing="$missing bin/$tool"
      [ "$(MANPATH="$P/share/man" man -w "$tool" 2>/dev/null)" = "$P/share/man/man1/$tool.1" ] || missing="$missing man1/$tool.1"
    done
    out=$("$P/bin/qforge-quantize" --version 2>&1)
    if [ -n "$missing" ]; then fail "make install PREFIX=...: missing or not found by man:$missing"
    elif [ "$out" != "qforge-quantize (qforge) $VERSION" ]; then fail "installed qforge-quantize --version: '$out'"
    else ok "make install PREFIX=...: ${#tools[@]} tools, calibration text and man pages (found by man -w)"; fi
  fi
else
  echo "note: $BIN is not the repository's bin/; the make install check is skipped"
fi

if [ $fails -gt 0 ]; then echo "$fails man page check(s) failed"; exit 1; fi
echo "all man page checks passed"
