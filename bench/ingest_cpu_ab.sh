#!/usr/bin/env bash
# Batch ingest of existing generated logs by two ctrd binaries, alternating,
# RUNS times each: wall, user and system seconds and peak RSS of each run,
# then a check that both binaries' directories hold the same counts (every
# ad's per-term table). CPU seconds are the steadier figure on a shared
# machine; wall seconds show what the user waits.
# Usage: bench/ingest_cpu_ab.sh BINARY_A BINARY_B LOG_DIR [RUNS] [ARGS...]
# (LOG_DIR from `ctrd gen --out LOG_DIR ...`; ARGS go to `ctrd ingest`).
set -euo pipefail
a=$(realpath "$1") b=$(realpath "$2") logs=$(realpath "$3")
runs=${4:-3}
shift $(($# < 4 ? $# : 4))
dir=$(mktemp -d /tmp/ctrd-cpu-ab.XXXXXX)
trap 'rm -rf "$dir"' EXIT
for run in $(seq "$runs"); do
    for side in a b; do
        bin=$a
        [ "$side" = b ] && bin=$b
        rm -rf "$dir/data-$side"
        /usr/bin/time -f "%e %U %S %M" -o "$dir/time" "$bin" ingest \
            --data "$dir/data-$side" --queries "$logs/queries.ndjson" \
            --clicks "$logs/clicks.ndjson" --quiet "$@" 2>/dev/null
        read -r wall user sys rss_kb <"$dir/time"
        echo "$side run $run: wall $wall s, user $user s, sys $sys s," \
            "peak RSS $((rss_kb / 1024)) MiB"
    done
done
for side in a b; do
    "$b" query --data "$dir/data-$side" --all --sort term --format csv \
        >"$dir/counts-$side.csv" 2>/dev/null
done
if cmp -s "$dir/counts-a.csv" "$dir/counts-b.csv"; then
    echo "counts equal ($(wc -l <"$dir/counts-a.csv") rows)"
else
    echo "COUNTS DIFFER" && exit 1
fi
