#!/usr/bin/env bash
# Liveness under gzip bombs: GET /healthz latency (p50, p99, max) while
# 32 clients at once POST a gzip bomb each (at most 127 KiB of gzip that
# inflates to ~130 MB, past the default --max-body of 64 MiB: every one is
# answered 413 once the ingest thread inflated 64 MiB of it), round after
# round for SECONDS. /healthz is served by the HTTP loop, which never
# inflates; the target is < 100 ms (p99 and max). Measured twice: by wrk
# (one connection, its own process) and by the bombing client's poller
# (a thread beside the 32 bombers). Usage: bench/gzip_bombs.sh [SECONDS]
# (default 20).
set -euo pipefail
ctrd=$(realpath "${CTRD:-build/ctrd}")
here=$(cd "$(dirname "$0")" && pwd)
secs=${1:-20}
. "$here/lib.sh"
bench_dir gzip
bench_serve
cat > "$dir/lat.lua" <<'LUA'
done = function(summary, latency, requests)
  io.write(string.format("wrk: GET /healthz %d requests: p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms, errors %d\n",
    summary.requests, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000, latency.max / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout))
end
LUA
echo "== 32 concurrent gzip bombs, round after round for ${secs} s; /healthz meanwhile ($ctrd)"
python3 "$here/../tests/e2e/gzip_client.py" bombs "http://127.0.0.1:$port" 32 \
    --for-seconds "$secs" --healthz-max-ms 100 --name target >"$dir/bombs.out" &
bombs=$!
sleep 1 # the first round is under way
wrk -t1 -c1 -d"$((secs - 2))s" -s "$dir/lat.lua" "http://127.0.0.1:$port/healthz" | tail -1
wait "$bombs" || true
grep -v '^PASS' "$dir/bombs.out"
