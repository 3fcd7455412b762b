#!/usr/bin/env bash
# Overload and connection-hygiene benchmark of `ctrd serve` (issue 7):
# answers by status with their share and p50/p99/p99.9/max latency, at 16,
# 400 and 1000 connections asking GET /v1/ads/{busiest}/terms?limit=20 as
# fast as answered (bench/bench_http.c, built here: wrk reports one
# latency for every status, so it cannot tell the admitted reads' latency
# from the shed ones'; wrk -c16 runs too, as the issue measured it); then a
# canary's latency while 5,000 connections that never send a byte are
# open (from 20 loopback addresses). Loopback, load generators on the same
# cores as the server.
# Usage: bench/http_limits.sh [QUERIES_PER_SEC] [DURATION] [SECONDS]
# (default: the store of 2000 queries/s for 10m, as bench/serve.sh; each
# measurement SECONDS long, default 5, after 1 s of warm-up).
set -euo pipefail
ctrd=$(realpath "${CTRD:-build/ctrd}")
here=$(cd "$(dirname "$0")" && pwd)
qps=${1:-2000}
duration=${2:-10m}
secs=${3:-5}
. "$here/lib.sh"
bench_dir limits
ulimit -n "$(ulimit -Hn)"
cc -O2 -o "$dir/bench_http" "$here/bench_http.c"
"$ctrd" gen --out "$dir/logs" --queries-per-sec "$qps" --duration "$duration" --seed 7 2>/dev/null
bench_serve
python3 "$here/serve_load.py" "$port" "$dir/logs/queries.ndjson" "$dir/logs/clicks.ndjson" 4 >/dev/null
path="/v1/ads/1000/terms?limit=20"
echo "== $path: $(curl -s "http://127.0.0.1:$port$path" | head -c 120)..."
echo "== wrk -t2 -c16 -d${secs}s"
wrk -t2 -c16 -d"${secs}s" "http://127.0.0.1:$port$path" |
    grep -E 'Latency|requests in|Non-2xx' | sed 's/^ */   /'
for c in 16 400 1000; do
    echo "== $c connections"
    "$dir/bench_http" -c "$c" -w 1 -d "$secs" "$port" "$path"
done
echo "== canary (1 connection) while 5000 idle connections are open"
"$dir/bench_http" -c 1 -i 5000 -w 1 -d "$secs" "$port" "$path"
echo "== server: $(curl -s "http://127.0.0.1:$port/metrics" | grep -E '^ctrd_http_shed_total')"
