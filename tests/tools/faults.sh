#!/usr/bin/env bash
# Faults while writing a model, for qforge-convert and qforge-quantize (each skipped when absent):
#   - SIGINT / SIGTERM mid-write: exit 128+signal, no file at the destination, no temp file left;
#   - kill -9 mid-write: nothing under the final name (a ".NAME.qforge-tmp-*" may remain), and the
#     next run to the same output removes the stale temp of its own;
#   - a full disk (ulimit -f with SIGXFSZ ignored; and a 8 MiB tmpfs when mounting is allowed):
#     exit 3, one stderr line "qforge-X: ...", no output, no temp;
#   - the output is one of the input files (same path, another spelling, a hard link): refused
#     with exit 1 or 2 before anything is written; the input's checksum is unchanged.
# The model written mid-signal is a qforge-synth checkpoint (dim 1024, 8 layers, vocab 4096,
# BF16: 213 MB, about 1.5 s to convert with one thread) so the signal lands during the write.
set -u
BIN=${QFORGE_BIN:-$(cd "$(dirname "$0")/../.." && pwd)/bin}
SYNTH="$BIN/qforge-synth"
[ -x "$SYNTH" ] || { echo "skipped: $SYNTH is missing"; exit 77; }
tools=()
[ -x "$BIN/qforge-convert" ] && tools+=(convert) || echo "note: $BIN/qforge-convert is missing; its cases are skipped"
[ -x "$BIN/qforge-quantize" ] && tools+=(quantize) || echo "note: $BIN/qforge-quantize is missing; its cases are skipped"
[ ${#tools[@]} -gt 0 ] || { echo "skipped: neither qforge-convert nor qforge-quantize exists"; exit 77; }

T=$(mktemp -d "${TMPDIR:-/tmp}/qforge-faults-XXXXXX")
MNT=""
cleanup() {
  [ -n "$MNT" ] && umount "$MNT" 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
fails=0
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
ok() { echo "ok   $*"; }

"$SYNTH" --dim 1024 --layers 8 --heads 16 --ffn 2816 --vocab 4096 -o "$T/big" >/dev/null ||
  { echo "FAIL: qforge-synth (big)"; exit 1; }
"$SYNTH" --dim 64 --layers 1 --heads 4 --ffn 96 --vocab 300 --dtype f32 -o "$T/tiny" >/dev/null ||
  { echo "FAIL: qforge-synth (tiny)"; exit 1; }

# cmd TOOL OUT [extra args]: the command line writing OUT from the big checkpoint
cmd() {
  local tool=$1 out=$2
  case $tool in
    convert) echo "$BIN/qforge-convert -t 1 $T/big -o $out" ;;
    quantize) echo "$BIN/qforge-quantize -t 1 $T/big $out Q4_K_M" ;;
  esac
}
temps() { find "$1" -maxdepth 1 -name '.*.qforge-tmp-*' 2>/dev/null; }
# wait_temp DIR MINBYTES PID: true once a temp file in DIR holds MINBYTES, false if PID ends first
wait_temp() {
  local dir=$1 min=$2 pid=$3 f sz
  for _ in $(seq 1 3000); do
    kill -0 "$pid" 2>/dev/null || return 1
    for f in $(temps "$dir"); do
      sz=$(stat -c %s "$f" 2>/dev/null || echo 0)
      [ "$sz" -ge "$min" ] && return 0
    done
    sleep 0.01
  done
  return 1
}
# stderr lines of a failed run must be exactly one "qforge-X: ..." line
one_line() {
  local tool=$1 err=$2
  [ "$(grep -c '' "$err")" -eq 1 ] && grep -q "^qforge-$tool: " "$err"
}

for tool in "${tools[@]}"; do
  # ---------------------------------------------------------------- SIGINT, SIGTERM
  for sig in INT TERM; do
    d="$T/sig-$tool-$sig"; mkdir -p "$d"
    $(cmd "$tool" "$d/out.gguf") >/dev/null 2>"$d/err" &
    pid=$!
    if wait_temp "$d" 4000000 "$pid"; then
      kill -s "$sig" "$pid"
      wait "$pid"; rc=$?
      want=$((128 + $(kill -l "$sig")))
      left=$(temps "$d")
      if [ "$rc" -ne "$want" ]; then fail "$tool SIG$sig mid-write: exit $rc, want $want"
      elif [ -e "$d/out.gguf" ]; then fail "$tool SIG$sig mid-write: $d/out.gguf exists"
      elif [ -n "$left" ]; then fail "$tool SIG$sig mid-write: temp file left: $left"
      else ok "$tool SIG$sig mid-write: exit $rc, no output, no temp"; fi
    else
      wait "$pid"; rc=$?
      fail "$tool SIG$sig: the run ended (exit $rc) before 4 MB of temp file appeared; cannot test"
      sed 's/^/      /' "$d/err" | head -n 3
    fi
  done

  # ---------------------------------------------------------------- kill -9, then a rerun
  d="$T/kill-$tool"; mkdir -p "$d"
  $(cmd "$tool" "$d/out.gguf") >/dev/null 2>"$d/err" &
  pid=$!
  if wait_temp "$d" 4000000 "$pid"; then
    kill -s KILL "$pid"
    wait "$pid" 2>/dev/null; rc=$?
    stale=$(temps "$d")
    if [ "$rc" -ne 137 ]; then fail "$tool kill -9: exit $rc, want 137"
    elif [ -e "$d/out.gguf" ]; then fail "$tool kill -9 mid-write: $d/out.gguf exists"
    else ok "$tool kill -9 mid-write: nothing under the final name (stale temp: ${stale:-none})"; fi
    # the next run to the same output completes and removes the stale temp
    $(cmd "$tool" "$d/out.gguf" | sed 's/-t 1/-t 2/') >/dev/null 2>"$d/err2"; rc=$?
    still=""
    for f in $stale; do [ -e "$f" ] && still="$still $f"; done
    if [ "$rc" -ne 0 ]; then fail "$tool rerun after kill -9: exit $rc: $(head -n1 "$d/err2")"
    elif [ ! -s "$d/out.gguf" ]; then fail "$tool rerun after kill -9: no output"
    elif [ -n "$(temps "$d")" ] && [ -z "$still" ]; then fail "$tool rerun after kill -9: a temp file is left: $(temps "$d")"
    elif [ -n "$still" ]; then
      fail "$tool rerun after kill -9: the stale temp of the killed run is still there:$still" \
           "(the tools/writer do not clean stale '.NAME.qforge-tmp-*' files)"
    else ok "$tool rerun after kill -9: output written, stale temp removed"; fi
  else
    wait "$pid"; rc=$?
    fail "$tool kill -9: the run ended (exit $rc) before 4 MB of temp file appeared; cannot test"
  fi

  # ---------------------------------------------------------------- full disk: ulimit -f
  d="$T/xfsz-$tool"; mkdir -p "$d"
  ( trap '' XFSZ; ulimit -f 8192; exec $(cmd "$tool" "$d/out.gguf") ) >/dev/null 2>"$d/err"; rc=$?
  if [ "$rc" -ne 3 ]; then fail "$tool file-size limit (8 MiB): exit $rc, want 3: $(head -n2 "$d/err" | tr '\n' ' ')"
  elif ! one_line "$tool" "$d/err"; then fail "$tool file-size limit: stderr is not one 'qforge-$tool: ' line:"; sed 's/^/      /' "$d/err" | head -n 4
  elif [ -e "$d/out.gguf" ] || [ -n "$(temps "$d")" ]; then fail "$tool file-size limit: output or temp left: $(ls -A "$d")"
  else ok "$tool file-size limit: exit 3: $(cat "$d/err")"; fi

  # ---------------------------------------------------------------- full disk: a small tmpfs
  if [ -z "$MNT" ]; then
    mkdir -p "$T/mnt"
    if mount -t tmpfs -o size=8m qforge-faults "$T/mnt" 2>/dev/null; then MNT="$T/mnt"; fi
  fi
  if [ -n "$MNT" ]; then
    rm -rf "${MNT:?}"/* "$MNT"/.[!.]* 2>/dev/null
    $(cmd "$tool" "$MNT/out.gguf") >/dev/null 2>"$T/enospc-err"; rc=$?
    if [ "$rc" -ne 3 ]; then fail "$tool full tmpfs (8 MiB): exit $rc, want 3: $(head -n2 "$T/enospc-err" | tr '\n' ' ')"
    elif ! one_line "$tool" "$T/enospc-err"; then fail "$tool full tmpfs: stderr is not one 'qforge-$tool: ' line:"; sed 's/^/      /' "$T/enospc-err" | head -n 4
    elif [ -n "$(ls -A "$MNT")" ]; then fail "$tool full tmpfs: files left: $(ls -A "$MNT")"
    else ok "$tool full tmpfs: exit 3: $(cat "$T/enospc-err")"; fi
  else
    echo "note: cannot mount a tmpfs here; the ENOSPC case is covered by the ulimit -f case only"
  fi
done

# ---------------------------------------------------------------- output = an input file
# refuse NAME PROTECTED-FILE COMMAND...: exit 1 or 2, PROTECTED-FILE unchanged, no temp beside it
refuse() {
  local name=$1 file=$2; shift 2
  local before after rc
  before=$(sha256sum < "$file")
  "$@" >/dev/null 2>"$T/refuse-err"; rc=$?
  after=$(sha256sum < "$file")
  if [ "$rc" -ne 1 ] && [ "$rc" -ne 2 ]; then fail "$name: exit $rc, want 1 or 2"
  elif [ "$before" != "$after" ]; then fail "$name: $file was modified"
  elif [ -n "$(temps "$(dirname "$file")")" ]; then fail "$name: a temp file was created: $(temps "$(dirname "$file")")"
  elif [ "$(grep -c '' "$T/refuse-err")" -ne 1 ]; then fail "$name: stderr is not one line:"; sed 's/^/      /' "$T/refuse-err" | head -n 4
  else ok "$name: exit $rc: $(cat "$T/refuse-err")"; fi
}
ck="$T/tiny"
ln "$ck/model.safetensors" "$T/hardlink.safetensors"
if [ -x "$BIN/qforge-convert" ]; then
  C="$BIN/qforge-convert"
  "$C" "$ck" -o "$T/tiny.gguf" --outtype f32 >/dev/null || fail "convert tiny checkpoint"
  refuse "convert -o the checkpoint's safetensors" "$ck/model.safetensors" "$C" "$ck" -o "$ck/model.safetensors"
  refuse "convert -o its config.json" "$ck/config.json" "$C" "$ck" -o "$ck/config.json"
  refuse "convert -o its tokenizer.model" "$ck/tokenizer.model" "$C" "$ck" -o "$ck/tokenizer.model"
  refuse "convert -o the safetensors spelled dir/../dir/" "$ck/model.safetensors" \
    "$C" "$ck" -o "$ck/../$(basename "$ck")/model.safetensors"
  refuse "convert -o a hard link to the safetensors" "$ck/model.safetensors" "$C" "$ck" -o "$T/hardlink.safetensors"
  refuse "convert GGUF -o the same GGUF" "$T/tiny.gguf" "$C" "$T/tiny.gguf" -o "$T/tiny.gguf"
fi
if [ -x "$BIN/qforge-quantize" ]; then
  Q="$BIN/qforge-quantize"
  [ -e "$T/tiny.gguf" ] || "$Q" "$ck" "$T/tiny.gguf" F32 >/dev/null || fail "quantize tiny checkpoint to F32"
  refuse "quantize GGUF onto itself" "$T/tiny.gguf" "$Q" "$T/tiny.gguf" "$T/tiny.gguf" Q8_0
  refuse "quantize GGUF onto itself (./ spelling)" "$T/tiny.gguf" "$Q" "$T/tiny.gguf" "$T/./tiny.gguf" Q8_0
  refuse "quantize checkpoint onto its safetensors" "$ck/model.safetensors" "$Q" "$ck" "$ck/model.safetensors" Q8_0
  refuse "quantize checkpoint onto its tokenizer.model" "$ck/tokenizer.model" "$Q" "$ck" "$ck/tokenizer.model" Q8_0
  refuse "quantize checkpoint onto a hard link of its safetensors" "$ck/model.safetensors" \
    "$Q" "$ck" "$T/hardlink.safetensors" Q8_0
fi

if [ $fails -gt 0 ]; then echo "$fails fault case(s) failed"; exit 1; fi
echo "all fault cases passed"
