#!/usr/bin/env bash
# Sustained durable ingest over HTTP: how the rate and the service's RSS
# move as the store grows. Generates QUERIES queries (default 30 M, ~3.5 GB
# of NDJSON), posts them and their clicks to a fresh `ctrd serve` over 4
# connections (bench/serve_load.py: 1 MiB bodies, each answered once
# fsynced), and every 5 s prints the records acknowledged in that window
# (ctrd_records_total from /metrics), the rate, and the service's RSS.
# Usage: bench/sustained.sh [QUERIES]
set -euo pipefail
ctrd=$(realpath "${CTRD:-build/ctrd}")
here=$(cd "$(dirname "$0")" && pwd)
queries=${1:-30000000}
. "$here/lib.sh"
bench_dir sustained
"$ctrd" gen --out "$dir/logs" --queries-per-sec 5000 --duration "$((queries / 5000))s" --seed 7 >/dev/null
bench_serve
python3 "$here/serve_load.py" "$port" "$dir/logs/queries.ndjson" "$dir/logs/clicks.ndjson" 4 \
    >"$dir/load.out" &
load=$!
echo "| t, s | records acknowledged in window | events/s | serve RSS, MiB |"
echo "|---|---|---|---|"
records() {
    curl -s "http://127.0.0.1:$port/metrics" |
        awk '$1 ~ /^ctrd_records_total/ {n += $2} END {printf "%d\n", n}'
}
t=0 last=$(records)
while kill -0 "$load" 2>/dev/null; do
    sleep 5
    t=$((t + 5))
    now=$(records)
    rss=$(awk '/^VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$server/status")
    echo "| $t | $((now - last)) | $(((now - last) / 5)) | $rss |"
    last=$now
done
wait "$load"
cat "$dir/load.out"
