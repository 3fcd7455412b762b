#!/usr/bin/env bash
# Service benchmark: durable ingest over HTTP, and dashboard latency
# (GET /v1/ads/{busiest}/terms) while that ingest runs, with wrk on
# loopback. Usage: bench/serve.sh [QUERIES_PER_SEC] [DURATION]
# (default 2000 queries/s for 10m = 1.2 M queries with their clicks).
set -euo pipefail
ctrd=$(realpath "${CTRD:-build/ctrd}")
here=$(cd "$(dirname "$0")" && pwd)
qps=${1:-2000}
duration=${2:-10m}
. "$here/lib.sh"
bench_dir serve
"$ctrd" gen --out "$dir/logs" --queries-per-sec "$qps" --duration "$duration" --seed 7
bench_serve
cat > "$dir/p999.lua" <<'LUA'
done = function(summary, latency, requests)
  io.write(string.format("dashboard  %d requests, %.0f req/s: p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms, errors %d\n",
    summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000, latency.max / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout))
end
LUA
# Seed the store so the dashboard reads real tables, then measure both.
head -n 20000 "$dir/logs/queries.ndjson" | curl -sf -H 'Content-Type: application/x-ndjson' \
    --data-binary @- "http://127.0.0.1:$port/v1/queries" >/dev/null
echo "== ingest alone"
python3 "$here/serve_load.py" "$port" "$dir/logs/queries.ndjson" "$dir/logs/clicks.ndjson" 4
echo "== dashboard alone (wrk -t1 -c8 -d5s)"
wrk -t1 -c8 -d5s -s "$dir/p999.lua" "http://127.0.0.1:$port/v1/ads/1000/terms?limit=20" | tail -1
echo "== dashboard while the same ingest runs again (duplicates: the full parse, join and fsync path)"
python3 "$here/serve_load.py" "$port" "$dir/logs/queries.ndjson" "$dir/logs/clicks.ndjson" 4 &
load=$!
sleep 1
wrk -t1 -c8 -d5s -s "$dir/p999.lua" "http://127.0.0.1:$port/v1/ads/1000/terms?limit=20" | tail -1
wait "$load"
