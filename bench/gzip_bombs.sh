#!/usr/bin/env bash
# Liveness under gzip bombs: GET /healthz latency (p50, p99, max) while
# 32 clients at once POST a gzip bomb each (at most 127 KiB of gzip that
# inflates to ~130 MB, past the default --max-body of 64 MiB: every one is
# answered 413 after the ingest thread inflated 64 MiB of it), for ROUNDS
# rounds. /healthz is served by the HTTP loop, which never inflates: the
# target is < 100 ms at p99 and max. Usage: bench/gzip_bombs.sh [ROUNDS]
# (default 5).
set -euo pipefail
ctrd=$(realpath "${CTRD:-build/ctrd}")
here=$(cd "$(dirname "$0")" && pwd)
rounds=${1:-5}
dir=$(mktemp -d /tmp/ctrd-bench-gzip.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
"$ctrd" serve --data "$dir/data" --listen "127.0.0.1:$port" 2>"$dir/serve.log" &
server=$!
for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break
    sleep 0.1
done
echo "== $rounds rounds of 32 concurrent gzip bombs, /healthz polled meanwhile ($ctrd)"
python3 "$here/../tests/e2e/gzip_client.py" bombs "http://127.0.0.1:$port" 32 \
    --rounds "$rounds" --healthz-max-ms 100 --name target | grep -v '^PASS'
