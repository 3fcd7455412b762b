#!/usr/bin/env bash
# Batch ingest of the same generated logs by two ctrd binaries, alternating,
# RUNS times each: wall seconds, peak RSS and disk of each run. For a change
# whose cost should be measured against the build before it on the same
# day (this machine's speed varies from day to day).
# Usage: bench/ingest_ab.sh BINARY_A BINARY_B [QUERIES_PER_SEC] [RUNS]
# (logs: QUERIES_PER_SEC for 1000 s, default 2000, i.e. 2 M queries).
set -euo pipefail
a=$(realpath "$1") b=$(realpath "$2")
qps=${3:-2000}
runs=${4:-3}
dir=$(mktemp -d /tmp/ctrd-bench-ab.XXXXXX)
trap 'rm -rf "$dir"' EXIT
"$b" gen --out "$dir/logs" --queries-per-sec "$qps" --duration 1000s --seed 7 >/dev/null
sync
for run in $(seq "$runs"); do
    for bin in "$a" "$b"; do
        rm -rf "$dir/data"
        /usr/bin/time -f "%e %M" -o "$dir/time" "$bin" ingest --data "$dir/data" \
            --queries "$dir/logs/queries.ndjson" --clicks "$dir/logs/clicks.ndjson" --quiet
        read -r secs rss_kb <"$dir/time"
        echo "$bin run $run: $secs s, peak RSS $((rss_kb / 1024)) MiB, disk $(du -sb "$dir/data" | cut -f1) B"
    done
done
