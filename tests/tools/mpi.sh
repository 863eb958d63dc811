#!/usr/bin/env bash
# The MPI build (make MPI=1, bin-mpi/): `mpirun -np 2 qforge-quantize --gptq` splits the
# calibration chunks over two ranks and reduces the Hessians; its file has the same bytes on
# every run, and its KLD against the float model equals the single-process file's within
# noise. Skipped without mpirun/mpicc (Open MPI: make deps MPI=1). Builds bin-mpi/ when needed.
set -u
root="${QFORGE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}"
bin="${QFORGE_BIN:-$root/bin}"
command -v mpirun >/dev/null && command -v mpicc >/dev/null ||
  { echo "skipped: no mpirun/mpicc (make deps MPI=1 installs Open MPI)"; exit 77; }
for t in qforge-quantize qforge-perplexity qforge-convert qforge-synth; do
  [ -x "$bin/$t" ] || { echo "skipped: $bin/$t is missing"; exit 77; }
done
fail() { echo "FAIL: $*"; exit 1; }
make -C "$root" --no-print-directory MPI=1 -j2 all >/dev/null 2>&1 || fail "make MPI=1 does not build"
mq="$root/bin-mpi/qforge-quantize"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
[ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
text="$root/calibration/calibration.txt"
"$bin/qforge-synth" --dim 256 --layers 2 --heads 4 --kv-heads 2 --ffn 512 --vocab 512 --ctx 128 \
  --seed 3 -o "$tmp/m" >/dev/null || fail "qforge-synth"
# 24 chunks of 64 tokens: 1536 rows, more than one 1024-row block of the rank-k updates
cal=(-t 1 --gptq --calib "$text" --calib-samples 24 --calib-ctx 64)
for r in a b; do
  mpirun -np 2 --oversubscribe "$mq" "${cal[@]}" "$tmp/m" "$tmp/np2-$r.gguf" Q4_K_M >"$tmp/log-$r" 2>&1 ||
    fail "mpirun -np 2 ($r): $(tail -n 3 "$tmp/log-$r")"
done
cmp -s "$tmp/np2-a.gguf" "$tmp/np2-b.gguf" || fail "two -np 2 runs wrote different bytes"
[ "$(grep -c '^\[gptq\] layer' "$tmp/log-a")" -eq 16 ] || fail "not two ranks of 8 groups each: $(grep -c '^\[gptq\] layer' "$tmp/log-a")"
"$bin/qforge-quantize" "${cal[@]}" "$tmp/m" "$tmp/np1.gguf" Q4_K_M >/dev/null 2>&1 || fail "single-process GPTQ"
mpirun -np 2 --oversubscribe "$mq" "${cal[@]}" --calib-samples 1 "$tmp/m" "$tmp/x.gguf" Q4_K_M >"$tmp/err" 2>&1 &&
  fail "one chunk for two ranks was accepted"
grep -q 'each rank needs one' "$tmp/err" || fail "one chunk for two ranks: $(grep qforge "$tmp/err" | head -1)"
[ ! -e "$tmp/x.gguf" ] || fail "a failed MPI run left its output"
"$bin/qforge-convert" "$tmp/m" -o "$tmp/f32.gguf" --outtype f32 >/dev/null || fail "qforge-convert"
"$bin/qforge-perplexity" -t 1 -m "$tmp/f32.gguf" -f "$text" -c 64 --chunks 4 --kl-divergence-base "$tmp/base.kld" \
  >/dev/null 2>&1 || fail "base logits"
kld() { "$bin/qforge-perplexity" -t 1 -m "$1" --kl-divergence-base "$tmp/base.kld" --kl-divergence 2>&1 |
  sed -n 's/^Mean *KLD: *\([0-9.e+-]*\) *± *\([0-9.e+-]*\).*/\1 \2/p'; }
read -r k1 e1 <<<"$(kld "$tmp/np1.gguf")"
read -r k2 e2 <<<"$(kld "$tmp/np2-a.gguf")"
[ -n "${k1:-}" ] && [ -n "${k2:-}" ] || fail "no KLD figures"
echo "KLD single process $k1 ± $e1, mpirun -np 2 $k2 ± $e2"
awk -v a="$k1" -v b="$k2" -v ea="$e1" -v eb="$e2" 'BEGIN {
  d = a - b; if (d < 0) d = -d; exit !(a > 0 && d <= 3 * sqrt(ea * ea + eb * eb) + 1e-6) }' ||
  fail "KLD of -np 2 ($k2) differs from the single process's ($k1) beyond noise"
# --imatrix-out beside --gptq: every rank's importance sums (not rank 0's share), so the file
# holds the single process's statistics: the same counts, sums equal but for rounding
mpirun -np 2 --oversubscribe "$mq" "${cal[@]}" --imatrix-out "$tmp/np2.imat" "$tmp/m" "$tmp/y.gguf" Q4_K_M \
  >"$tmp/log-im" 2>&1 || fail "mpirun -np 2 --imatrix-out: $(tail -n 3 "$tmp/log-im")"
"$bin/qforge-quantize" "${cal[@]}" --imatrix-out "$tmp/np1.imat" "$tmp/m" "$tmp/z.gguf" Q4_K_M >/dev/null 2>&1 ||
  fail "single-process --imatrix-out"
off=$("$bin/qforge-inspect" "$tmp/np1.imat" | sed -n 's/.*data at \([0-9]*\),.*/\1/p')
[ -n "$off" ] || fail "qforge-inspect: no data offset"
python3 - "$tmp/np1.imat" "$tmp/np2.imat" "$off" <<'PY' || fail "the -np 2 importance matrix is not the single process's"
import struct, sys
a, b = (open(f, "rb").read() for f in sys.argv[1:3])
off = int(sys.argv[3])
assert len(a) == len(b) and a[:off] == b[:off], "the headers differ"
n = (len(a) - off) // 4  # the f32 sums and counts
fa = struct.unpack("<%df" % n, a[off:off + 4 * n])
fb = struct.unpack("<%df" % n, b[off:off + 4 * n])
bad = [i for i, (x, y) in enumerate(zip(fa, fb)) if abs(x - y) > 1e-5 * max(abs(x), abs(y), 1e-30)]
assert not bad, "%d of %d values differ, e.g. %g vs %g" % (len(bad), n, fa[bad[0]], fb[bad[0]])
PY
echo ok
