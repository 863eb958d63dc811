#!/usr/bin/env bash
# Faults while a tool writes its output. Every tool runs the way a user's shell runs a foreground
# job: all signals at their default disposition and none blocked (see $U below), so that a
# tool which leaves a signal at its default (SIGXFSZ, SIGPIPE, ...) is caught here even when the
# test harness passes those signals ignored (Python's subprocess ignores SIGPIPE and SIGXFSZ).
#
# qforge-convert and qforge-quantize, writing a model (each skipped when absent):
#   - SIGINT / SIGTERM / SIGHUP / SIGQUIT mid-write: exit 128+signal, no output, no temp file;
#   - the terminal goes away (a pseudo-terminal's master is closed; the kernel sends SIGHUP):
#     exit 129, no output, no temp;
#   - nohup (SIGHUP ignored on entry): a SIGHUP mid-write is ignored and the run completes;
#   - stdout is a pipe whose reader is gone (`| head -n 1`): the tool ends by SIGPIPE at its next
#     progress line (exit 141), no output, no temp; with SIGPIPE ignored on entry it completes;
#   - kill -9 mid-write: nothing under the final name (a ".NAME.qforge-tmp-*" may remain), and the
#     next run to the same output removes the stale temp of its own;
#   - a full disk: ulimit -f (SIGXFSZ at its default), and a 8 MiB tmpfs when mounting is
#     allowed: exit 3, one stderr line "qforge-X: ...", no output, no temp;
#   - the output is one of the input files (same path, another spelling, a hard link): refused
#     with exit 1 or 2 before anything is written; the input's checksum is unchanged.
# Every other output under ulimit -f (exit 3, one error line naming the file, nothing left):
# quantize --imatrix-out and --report, perplexity --kl-divergence-base and --json, qforge-synth's
# checkpoint; perplexity's --kl-divergence-base with stdout a closed pipe (exit 141, no temp).
# The model written mid-signal is a qforge-synth checkpoint (dim 1024, 8 layers, vocab 4096,
# BF16: 213 MB, about 1.5 s to convert with one thread) so the signal lands during the write.
set -u
BIN=${QFORGE_BIN:-$(cd "$(dirname "$0")/../.." && pwd)/bin}
ROOT=${QFORGE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
SYNTH="$BIN/qforge-synth"
[ -x "$SYNTH" ] || { echo "skipped: $SYNTH is missing"; exit 77; }
command -v python3 >/dev/null || { echo "skipped: python3 is missing (make deps installs it)"; exit 77; }
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
ulimit -c 0 # SIGQUIT would dump core

# $U CMD...: exec CMD with every signal at its default disposition and an empty signal mask.
# A shell cannot do this itself: bash cannot reset a signal that was ignored when it started, runs
# background jobs with SIGINT and SIGQUIT ignored, and `env --default-signal` (coreutils 9.1, as in
# Debian 12) resets dispositions but does not unblock signals. A script file, not a function, so
# that `$U CMD &` gives the tool's own pid in $! (the script execs). With QFORGE_CLOSED_STDOUT=1,
# stdout becomes a pipe whose read end is already closed.
RESET='import os, signal, sys
for s in signal.valid_signals():
    if s not in (signal.SIGKILL, signal.SIGSTOP):
        try:
            signal.signal(s, signal.SIG_DFL)
        except (OSError, ValueError):
            pass
signal.pthread_sigmask(signal.SIG_SETMASK, [])'
printf '#!/usr/bin/env python3\n%s\n%s\n' "$RESET" 'if os.environ.pop("QFORGE_CLOSED_STDOUT", ""):
    r, w = os.pipe()
    os.close(r)
    os.dup2(w, 1)
    os.close(w)
os.execvp(sys.argv[1], sys.argv[1:])' > "$T/user"
chmod +x "$T/user"
U="$T/user"

# hangup DIR MINBYTES CMD...: run CMD as the session leader of a new pseudo-terminal (its stdin,
# stdout and stderr), signals as $U sets them; once a temp file in DIR holds MINBYTES, close
# the terminal's master side as a terminal emulator does when its window is closed. Exits with
# CMD's status as a shell shows it (128+signal), 90 when CMD ended before the temp file grew, 91
# when this system has no pseudo-terminals.
HANGUP='import glob, os, pty, select, sys, time
d, least, cmd = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
try:
    pid, fd = pty.fork()
except OSError:
    sys.exit(91)
if pid == 0:
'"$(sed 's/^/    /' <<<"$RESET")"'
    os.execvp(cmd[0], cmd)
def grown():
    for f in glob.glob(os.path.join(d, ".*.qforge-tmp-*")):
        try:
            if os.stat(f).st_size >= least:
                return True
        except OSError:
            pass
    return False
while not grown():
    if select.select([fd], [], [], 0.01)[0]:
        try:
            os.read(fd, 65536)
        except OSError:
            pass
    done, st = os.waitpid(pid, os.WNOHANG)
    if done:
        sys.exit(90)
os.close(fd)
_, st = os.waitpid(pid, 0)
sys.exit(128 + os.WTERMSIG(st) if os.WIFSIGNALED(st) else os.WEXITSTATUS(st))'
hangup() { python3 -c "$HANGUP" "$@"; }

# The wrapper itself must hand over clean signal state, whatever this script inherited.
# (Signals 1-31 only: 32 and 33 are the C library's own, which no program can set.)
std() { local _ v; while read -r _ v; do printf '%08x\n' $((0x$v & 0x7fffffff)); done; }
state=$("$U" grep -E '^Sig(Blk|Ign):' /proc/self/status | std | sort -u)
[ "$state" = "00000000" ] || { echo "FAIL: the $U wrapper leaves signals blocked or ignored: $state"; exit 1; }
own=$(grep -E '^SigIgn:' /proc/self/status | std)
[ "$own" = "00000000" ] || echo "note: this test was started with ignored signals (SigIgn $own); the tools run without them"

"$SYNTH" --dim 1024 --layers 8 --heads 16 --ffn 2816 --vocab 4096 -o "$T/big" >/dev/null ||
  { echo "FAIL: qforge-synth (big)"; exit 1; }
"$SYNTH" --dim 64 --layers 1 --heads 4 --ffn 96 --vocab 300 --dtype f32 -o "$T/tiny" >/dev/null ||
  { echo "FAIL: qforge-synth (tiny)"; exit 1; }

# cmd TOOL OUT: the command line writing OUT from the big checkpoint
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
# nothing_left NAME DIR FILE: fail unless neither FILE nor a temp file is in DIR
nothing_left() {
  local name=$1 dir=$2 file=$3
  if [ -e "$file" ]; then fail "$name: $file exists"; return 1; fi
  if [ -n "$(temps "$dir")" ]; then fail "$name: temp file left: $(temps "$dir")"; return 1; fi
  return 0
}

for tool in "${tools[@]}"; do
  # ---------------------------------------------------------------- SIGINT, SIGTERM, SIGHUP, SIGQUIT
  for sig in INT TERM HUP QUIT; do
    d="$T/sig-$tool-$sig"; mkdir -p "$d"
    "$U" $(cmd "$tool" "$d/out.gguf") >/dev/null 2>"$d/err" &
    pid=$!
    if wait_temp "$d" 4000000 "$pid"; then
      kill -s "$sig" "$pid"
      wait "$pid" 2>/dev/null; rc=$? # (bash would report the job's signal on stderr)
      want=$((128 + $(kill -l "$sig")))
      if [ "$rc" -ne "$want" ]; then fail "$tool SIG$sig mid-write: exit $rc, want $want"
      elif nothing_left "$tool SIG$sig mid-write" "$d" "$d/out.gguf"; then ok "$tool SIG$sig mid-write: exit $rc, no output, no temp"; fi
    else
      wait "$pid"; rc=$?
      fail "$tool SIG$sig: the run ended (exit $rc) before 4 MB of temp file appeared; cannot test"
      sed 's/^/      /' "$d/err" | head -n 3
    fi
  done

  # ---------------------------------------------------------------- the terminal goes away
  d="$T/pty-$tool"; mkdir -p "$d"
  hangup "$d" 4000000 $(cmd "$tool" "$d/out.gguf"); rc=$?
  if [ "$rc" -eq 91 ]; then echo "note: no pseudo-terminals here; the terminal hangup case is skipped"
  elif [ "$rc" -eq 90 ]; then fail "$tool terminal hangup: the run ended before 4 MB of temp file appeared; cannot test"
  elif [ "$rc" -ne 129 ]; then fail "$tool terminal hangup mid-write: exit $rc, want 129 (SIGHUP)"
  elif nothing_left "$tool terminal hangup" "$d" "$d/out.gguf"; then ok "$tool terminal hangup mid-write: exit 129, no output, no temp"; fi

  # ---------------------------------------------------------------- nohup: SIGHUP ignored on entry
  d="$T/nohup-$tool"; mkdir -p "$d"
  "$U" nohup $(cmd "$tool" "$d/out.gguf") >/dev/null 2>"$d/err" &
  pid=$!
  if wait_temp "$d" 4000000 "$pid"; then
    kill -s HUP "$pid"
    wait "$pid" 2>/dev/null; rc=$?
    if [ "$rc" -ne 0 ]; then fail "$tool under nohup, SIGHUP mid-write: exit $rc, want 0 (the run goes on)"
    elif [ ! -s "$d/out.gguf" ] || [ -n "$(temps "$d")" ]; then fail "$tool under nohup: output missing or temp left: $(ls -A "$d")"
    else ok "$tool under nohup, SIGHUP mid-write: ignored, output written"; fi
  else
    wait "$pid"; rc=$?
    fail "$tool nohup: the run ended (exit $rc) before 4 MB of temp file appeared; cannot test"
  fi

  # ---------------------------------------------------------------- stdout: a closed pipe
  d="$T/pipe-$tool"; mkdir -p "$d"
  "$U" $(cmd "$tool" "$d/out.gguf") 2>"$d/err" | head -n 1 >/dev/null; rc=${PIPESTATUS[0]}
  if [ "$rc" -ne 141 ]; then fail "$tool | head -n 1: exit $rc, want 141 (SIGPIPE): $(head -n 2 "$d/err" | tr '\n' ' ')"
  elif nothing_left "$tool | head -n 1" "$d" "$d/out.gguf"; then ok "$tool | head -n 1: exit 141 (SIGPIPE), no output, no temp"; fi
  # with SIGPIPE ignored on entry (Python's subprocess, some CI runners): the run completes
  d="$T/pipe-ign-$tool"; mkdir -p "$d"
  "$U" env --ignore-signal=PIPE $(cmd "$tool" "$d/out.gguf") 2>"$d/err" | head -n 1 >/dev/null; rc=${PIPESTATUS[0]}
  if [ "$rc" -ne 0 ]; then fail "$tool | head -n 1 with SIGPIPE ignored: exit $rc, want 0: $(head -n 2 "$d/err" | tr '\n' ' ')"
  elif [ ! -s "$d/out.gguf" ] || [ -n "$(temps "$d")" ]; then fail "$tool | head -n 1 with SIGPIPE ignored: output missing or temp left: $(ls -A "$d")"
  else ok "$tool | head -n 1 with SIGPIPE ignored on entry: exit 0, output written"; fi

  # ---------------------------------------------------------------- kill -9, then a rerun
  d="$T/kill-$tool"; mkdir -p "$d"
  "$U" $(cmd "$tool" "$d/out.gguf") >/dev/null 2>"$d/err" &
  pid=$!
  if wait_temp "$d" 4000000 "$pid"; then
    kill -s KILL "$pid"
    wait "$pid" 2>/dev/null; rc=$?
    stale=$(temps "$d")
    if [ "$rc" -ne 137 ]; then fail "$tool kill -9: exit $rc, want 137"
    elif [ -e "$d/out.gguf" ]; then fail "$tool kill -9 mid-write: $d/out.gguf exists"
    else ok "$tool kill -9 mid-write: nothing under the final name (stale temp: ${stale:-none})"; fi
    # the next run to the same output completes and removes the stale temp
    "$U" $(cmd "$tool" "$d/out.gguf" | sed 's/-t 1/-t 2/') >/dev/null 2>"$d/err2"; rc=$?
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
  ( ulimit -f 8192; "$U" $(cmd "$tool" "$d/out.gguf") ) >/dev/null 2>"$d/err"; rc=$?
  if [ "$rc" -ne 3 ]; then fail "$tool file-size limit (8 MiB): exit $rc, want 3 (153: killed by SIGXFSZ): $(head -n2 "$d/err" | tr '\n' ' ')"
  elif ! one_line "$tool" "$d/err"; then fail "$tool file-size limit: stderr is not one 'qforge-$tool: ' line:"; sed 's/^/      /' "$d/err" | head -n 4
  elif nothing_left "$tool file-size limit" "$d" "$d/out.gguf"; then ok "$tool file-size limit: exit 3: $(cat "$d/err")"; fi

  # ---------------------------------------------------------------- full disk: a small tmpfs
  if [ -z "$MNT" ]; then
    mkdir -p "$T/mnt"
    if mount -t tmpfs -o size=8m qforge-faults "$T/mnt" 2>/dev/null; then MNT="$T/mnt"; fi
  fi
  if [ -n "$MNT" ]; then
    rm -rf "${MNT:?}"/* "$MNT"/.[!.]* 2>/dev/null
    "$U" $(cmd "$tool" "$MNT/out.gguf") >/dev/null 2>"$T/enospc-err"; rc=$?
    if [ "$rc" -ne 3 ]; then fail "$tool full tmpfs (8 MiB): exit $rc, want 3: $(head -n2 "$T/enospc-err" | tr '\n' ' ')"
    elif ! one_line "$tool" "$T/enospc-err"; then fail "$tool full tmpfs: stderr is not one 'qforge-$tool: ' line:"; sed 's/^/      /' "$T/enospc-err" | head -n 4
    elif [ -n "$(ls -A "$MNT")" ]; then fail "$tool full tmpfs: files left: $(ls -A "$MNT")"
    else ok "$tool full tmpfs: exit 3: $(cat "$T/enospc-err")"; fi
  else
    echo "note: cannot mount a tmpfs here; the ENOSPC case is covered by the ulimit -f case only"
  fi
done

# ---------------------------------------------------------------- the other outputs under ulimit -f
# limited NAME KIB FILE TOOL ARGS...: run under `ulimit -f KIB`; FILE (the output that outgrows the
# limit) must not exist, nor any temp beside it; exit 3; stderr's last line is the one error line
# "qforge-TOOL: FILE: ...", and no earlier line is an error (perplexity prints progress lines there).
limited() {
  local name=$1 kib=$2 file=$3 tool=$4 rc last; shift 4
  local d; d=$(dirname "$file")
  ( ulimit -f "$kib"; "$U" "$BIN/qforge-$tool" "$@" ) >/dev/null 2>"$T/lim-err"; rc=$?
  last=$(tail -n 1 "$T/lim-err")
  if [ "$rc" -ne 3 ]; then fail "$name under ulimit -f $kib: exit $rc, want 3 (153: killed by SIGXFSZ): $(head -n 2 "$T/lim-err" | tr '\n' ' ')"
  elif [[ "$last" != "qforge-$tool: $file: "* ]] || [ "$(grep -c "^qforge-$tool: $file: " "$T/lim-err")" -ne 1 ] ||
       grep -v "^qforge-$tool: $file: " "$T/lim-err" | grep -qiE 'error|fail|too large|space'; then
    fail "$name under ulimit -f $kib: not one error line 'qforge-$tool: $file: ...':"; sed 's/^/      /' "$T/lim-err" | head -n 4
  elif nothing_left "$name under ulimit -f $kib" "$d" "$file"; then ok "$name under ulimit -f $kib: exit 3: $last"; fi
}
ck="$T/tiny"
EVAL="$ROOT/models/eval-classics.txt"
if [ -x "$BIN/qforge-quantize" ]; then
  mkdir -p "$T/lim-q"
  # the importance matrix of the tiny model is 5.5 KB; the report of a dry run 3.5 KB
  limited "quantize --imatrix-out" 4 "$T/lim-q/im.gguf" quantize --imatrix-out "$T/lim-q/im.gguf" \
    --calib-samples 4 --calib-ctx 64 "$ck"
  limited "quantize --dry-run --report" 2 "$T/lim-q/report.json" quantize --dry-run --report "$T/lim-q/report.json" \
    "$ck" "$T/lim-q/x.gguf" Q8_0
fi
if [ -x "$BIN/qforge-perplexity" ] && [ -x "$BIN/qforge-convert" ] && [ -f "$EVAL" ]; then
  mkdir -p "$T/lim-p"
  "$BIN/qforge-convert" "$ck" -o "$T/lim-p/tiny.gguf" --outtype f32 >/dev/null || fail "convert tiny checkpoint"
  # 4 chunks of 64 tokens over a 300-token vocabulary: a 77 KB base file; 300 chunks: a 5 KB --json
  limited "perplexity --kl-divergence-base" 32 "$T/lim-p/base.kld" perplexity -m "$T/lim-p/tiny.gguf" -f "$EVAL" \
    -c 64 --chunks 4 -t 1 --kl-divergence-base "$T/lim-p/base.kld"
  limited "perplexity --json" 1 "$T/lim-p/ppl.json" perplexity -m "$T/lim-p/tiny.gguf" -f "$EVAL" \
    -c 64 --chunks 300 -t 1 --json "$T/lim-p/ppl.json"
  # stdout a pipe without a reader, while the base file is open: the first "[1]..." figure (written
  # after the first chunk, the base file's temp then exists) ends the run by SIGPIPE
  QFORGE_CLOSED_STDOUT=1 "$U" "$BIN/qforge-perplexity" -m "$T/lim-p/tiny.gguf" -f "$EVAL" -c 64 --chunks 4 -t 1 \
    --kl-divergence-base "$T/lim-p/pipe.kld" 2>"$T/lim-err"; rc=$?
  if [ "$rc" -ne 141 ]; then fail "perplexity --kl-divergence-base, stdout a closed pipe: exit $rc, want 141 (SIGPIPE)"
  elif nothing_left "perplexity --kl-divergence-base, stdout a closed pipe" "$T/lim-p" "$T/lim-p/pipe.kld"; then
    ok "perplexity --kl-divergence-base, stdout a closed pipe: exit 141 (SIGPIPE), no base file, no temp"; fi
else
  echo "note: qforge-perplexity, qforge-convert or $EVAL is missing; the perplexity output cases are skipped"
fi
# qforge-synth writes the largest file first: model.safetensors (74 KB for the tiny shape)
limited "synth checkpoint" 16 "$T/lim-s/model.safetensors" synth --dim 64 --layers 1 --heads 4 --ffn 96 --vocab 300 \
  --dtype f32 -o "$T/lim-s"

# ---------------------------------------------------------------- output = an input file
# refuse NAME PROTECTED-FILE COMMAND...: exit 1 or 2, PROTECTED-FILE unchanged, no temp beside it
refuse() {
  local name=$1 file=$2; shift 2
  local before after rc
  before=$(sha256sum < "$file")
  "$U" "$@" >/dev/null 2>"$T/refuse-err"; rc=$?
  after=$(sha256sum < "$file")
  if [ "$rc" -ne 1 ] && [ "$rc" -ne 2 ]; then fail "$name: exit $rc, want 1 or 2"
  elif [ "$before" != "$after" ]; then fail "$name: $file was modified"
  elif [ -n "$(temps "$(dirname "$file")")" ]; then fail "$name: a temp file was created: $(temps "$(dirname "$file")")"
  elif [ "$(grep -c '' "$T/refuse-err")" -ne 1 ]; then fail "$name: stderr is not one line:"; sed 's/^/      /' "$T/refuse-err" | head -n 4
  else ok "$name: exit $rc: $(cat "$T/refuse-err")"; fi
}
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
