#!/usr/bin/env bash
# Benchmark: checkpoint -> GGUF conversion of a large synthetic Llama (the model of
# ../shared/reference/README.md: dim 2048, 16 layers, 16/8 heads, FFN 5632, vocab 4096,
# 772 M parameters, BF16 in 4 shards, 1.5 GB), printing wall seconds and peak RSS from
# /usr/bin/time -v against the streaming bound: largest input tensor + 64 MiB.
#
# usage: bash bench/convert.sh [BIN_DIR] [WORK_DIR]
#   BIN_DIR   default: bin/ of this repository
#   WORK_DIR  default: /tmp/qforge-bench-convert (needs ~4.6 GB free; the checkpoint is kept
#             there between runs, delete it when done)
# env: OUTTYPES (default "f16 bf16 f32"), THREADS (default 1, qforge-convert's default)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-$root/bin}
W=${2:-/tmp/qforge-bench-convert}
OUTTYPES=${OUTTYPES:-f16 bf16 f32}
THREADS=${THREADS:-1}
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)"; exit 1; }
for t in qforge-synth qforge-convert qforge-inspect; do
  [ -x "$BIN/$t" ] || { echo "missing $BIN/$t (run make)"; exit 1; }
done
mkdir -p "$W"
ARGS="--dim 2048 --layers 16 --heads 16 --kv-heads 8 --ffn 5632 --vocab 4096 --dtype bf16 --shards 4 --seed 7"
if [ "$(cat "$W/model.args" 2>/dev/null)" != "$ARGS" ]; then
  rm -rf "$W/model"
  echo "synthesizing the checkpoint: qforge-synth $ARGS"
  /usr/bin/time -f "  synth: %e s, max RSS %M KiB" "$BIN/qforge-synth" $ARGS -o "$W/model"
  echo "$ARGS" > "$W/model.args"
fi
du -sh "$W/model" | sed 's/^/  checkpoint size: /'
largest=$("$BIN/qforge-inspect" "$W/model" --json | python3 -c '
import json, sys
j = json.load(sys.stdin)
t = max(j["tensors"], key=lambda t: t["bytes"])
print(t["bytes"], t["name"])')
lbytes=${largest%% *}
bound=$((lbytes + 64 * 1024 * 1024))
printf '  largest tensor: %s, %d bytes (%.1f MiB); RSS bound %.1f MiB\n' "${largest#* }" "$lbytes" \
  "$(echo "$lbytes / 1048576" | bc -l)" "$(echo "$bound / 1048576" | bc -l)"
# warm the page cache so the figures measure conversion, not the first disk read
cat "$W"/model/*.safetensors > /dev/null
echo "  load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores; threads: $THREADS"
status=0
for ot in $OUTTYPES; do
  rm -f "$W/out.gguf"
  /usr/bin/time -v "$BIN/qforge-convert" "$W/model" -o "$W/out.gguf" --outtype "$ot" -t "$THREADS" \
    > "$W/convert.log" 2> "$W/time.log" || { cat "$W/time.log"; exit 1; }
  secs=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$W/time.log" | awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }')
  rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$W/time.log")
  cpu=$(awk -F': ' '/User time \(seconds\)|System time \(seconds\)/ { s += $2 } END { print s }' "$W/time.log")
  size=$(stat -c %s "$W/out.gguf")
  verdict=ok; [ $((rss * 1024)) -le $bound ] || { verdict="OVER the bound"; status=1; }
  printf 'convert bf16 -> %-4s  %6.2f s wall  %6.2f s CPU  peak RSS %6.1f MiB (%s)  output %d bytes\n' \
    "$ot" "$secs" "$cpu" "$(echo "$rss / 1024" | bc -l)" "$verdict" "$size"
done
tail -n 1 "$W/convert.log"
rm -f "$W/out.gguf"
exit $status
