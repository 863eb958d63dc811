#!/usr/bin/env bash
# qforge-synth: usage errors (exit 1, one line naming the problem), --help listing the
# architectures, a checkpoint per registered class that qforge-convert reads, the summary line.
set -u
ROOT=${QFORGE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${QFORGE_BIN:-$ROOT/bin}
for t in qforge-synth qforge-inspect; do
  [ -x "$BIN/$t" ] || { echo "missing $BIN/$t"; exit 1; }
done
T=$(mktemp -d "${TMPDIR:-/tmp}/qforge-synth-XXXXXX")
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
expect_err() { # want_rc regex description command...
  local want=$1 re=$2 what=$3; shift 3
  "$@" >"$T/stdout" 2>"$T/stderr"; local rc=$?
  [ $rc -eq "$want" ] || fail "$what: exit $rc, want $want"
  [ "$want" -eq 0 ] && return
  [ "$(wc -l <"$T/stderr")" -eq 1 ] || fail "$what: stderr is not one line"
  grep -qE "^qforge-synth: .*$re" "$T/stderr" || { fail "$what: stderr lacks '$re'"; cat "$T/stderr"; }
}
S=(--dim 32 --layers 2 --heads 4 --ffn 48 --vocab 300)
expect_err 1 "unknown argument '--frob'" "unknown option" "$BIN/qforge-synth" "${S[@]}" --frob -o "$T/x"
expect_err 1 "--arch 'GPT2LMHeadModel' is not one of .*LlamaForCausalLM" "unknown class" \
  "$BIN/qforge-synth" "${S[@]}" --arch GPT2LMHeadModel -o "$T/x"
expect_err 1 "heads 4 is not a multiple of kv-heads 3" "kv heads" "$BIN/qforge-synth" "${S[@]}" --kv-heads 3 -o "$T/x"
expect_err 1 "head dimension 7 is odd" "odd head_dim" "$BIN/qforge-synth" "${S[@]}" --head-dim 7 -o "$T/x"
expect_err 1 "40 shards are more than the 21 tensors" "shards" "$BIN/qforge-synth" "${S[@]}" --shards 40 -o "$T/x"
expect_err 1 "--dtype must be bf16, f16 or f32" "dtype" "$BIN/qforge-synth" "${S[@]}" --dtype q8 -o "$T/x"
expect_err 1 "--rope-theta needs a positive number" "rope theta" "$BIN/qforge-synth" "${S[@]}" --rope-theta -1 -o "$T/x"
expect_err 1 "--tokenizer must be spm or bpe, not 'wordpiece'" "tokenizer kind" "$BIN/qforge-synth" "${S[@]}" --tokenizer wordpiece -o "$T/x"
expect_err 1 "a BPE tokenizer needs vocab >= 260" "bpe vocab" "$BIN/qforge-synth" --dim 32 --layers 1 --heads 4 --ffn 8 \
  --vocab 259 --tokenizer bpe -o "$T/x"
[ -e "$T/x" ] && fail "a refused run left $T/x"
"$BIN/qforge-synth" --help >"$T/help" || fail "--help"
grep -q "LlamaForCausalLM" "$T/help" || fail "--help does not list the classes"

# one checkpoint per class: the GGUF architecture it converts to, head_dim 12 != 32/4
classes=$(sed -n 's/^CLASS: \(.*\) (default.*/\1/p' "$T/help" | tr -d ',')
[ -n "$classes" ] || fail "no classes in --help"
for c in $classes; do
  "$BIN/qforge-synth" "${S[@]}" --kv-heads 1 --head-dim 12 --tied --shards 3 --arch "$c" -o "$T/$c" >"$T/out" \
    || { fail "synth --arch $c"; continue; }
  grep -qE "^wrote $T/$c: [0-9]+ parameters, 3 shards, [0-9]+ bytes of weights$" "$T/out" || fail "$c: summary line"
  "$BIN/qforge-inspect" "$T/$c" >"$T/ins" 2>&1 || { fail "inspect $c"; continue; }
  grep -q "blk.1.attn_q.weight" "$T/ins" || fail "$c: no blk.1.attn_q.weight"
done
[ $fails -eq 0 ] || exit 1
