# Sourced by the bench scripts. time_run LABEL CMD...: runs CMD under /usr/bin/time -v (its
# stdout to $dir/run.log) and prints LABEL, wall seconds, CPU seconds (user + system) and peak
# RSS, with the label padded to $TIME_RUN_WIDTH (default 34). On a shared machine compare CPU
# seconds too: wall time includes waiting for other jobs. On failure: the tail of the log, exit 1.
time_run() {
  local label=$1; shift
  /usr/bin/time -v "$@" > "$dir/run.log" 2> "$dir/time.log" || { tail -n 20 "$dir/time.log"; exit 1; }
  local wall cpu rss
  wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$dir/time.log" |
         awk -F: '{ if (NF == 3) print $1*3600 + $2*60 + $3; else print $1*60 + $2 }')
  cpu=$(awk -F': ' '/User time|System time/ { s += $2 } END { print s }' "$dir/time.log")
  rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$dir/time.log")
  awk -v l="$label" -v n="${TIME_RUN_WIDTH:-34}" -v w="$wall" -v c="$cpu" -v r="$rss" \
    'BEGIN { printf "%-*s %8.2f s %8.2f s %9.1f MiB\n", n, l, w, c, r / 1024 }'
}
