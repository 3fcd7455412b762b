#!/usr/bin/env bash
# How ctrd's cost grows with the work: for each SIZE (queries), `ctrd gen
# --seed 7` at 5,000 queries/s for SIZE/5000 s (no --tricky), one `ctrd
# ingest` of the NDJSON files into a fresh data directory, then `ctrd
# serve` on it and the dashboard read of the busiest ad over HTTP
# (bench/bench_http.c, one connection, 5 s).
#   bench/growth.sh [SIZE...]    (default 500000 2000000 10000000; add
#                                 50000000 for the 50 M point: ~10 GB of disk)
# Writes ${OUT:-.}/growth.csv, one row per size:
#   queries, clicks, events_per_s, peak_rss_mib, disk_bytes_per_query,
#   write_amplification, p50_ms, p99_ms, p999_ms
# and plots it to ${OUT:-.}/growth.svg (bench/plot_growth.py). Peak RSS and
# bytes written come from /usr/bin/time (%M; %O, the ingest's block writes
# in 512-byte units as the kernel accounts them when pages are dirtied, its
# compactions included); write amplification = those bytes / the input
# files' bytes; disk = the data directory's bytes once the ingest is done.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ctrd=$(realpath "${CTRD:-$here/../build/ctrd}")
out=$(realpath "${OUT:-.}")
qps=5000
[ $# -gt 0 ] || set -- 500000 2000000 10000000
. "$here/lib.sh"
bench_dir growth
cc -O2 -o "$dir/bench_http" "$here/bench_http.c"
csv=$out/growth.csv
echo "queries,clicks,events_per_s,peak_rss_mib,disk_bytes_per_query,write_amplification,p50_ms,p99_ms,p999_ms" >"$csv"
for size in "$@"; do
    rm -rf "$dir/logs" "$dir/data"
    "$ctrd" gen --out "$dir/logs" --queries-per-sec "$qps" --duration "$((size / qps))s" --seed 7 >&2
    sync
    /usr/bin/time -f "%e %M %O" -o "$dir/time" "$ctrd" ingest --data "$dir/data" \
        --queries "$dir/logs/queries.ndjson" --clicks "$dir/logs/clicks.ndjson" \
        --report "$dir/report.json" --quiet
    ad=$("$ctrd" query --data "$dir/data" --all --format json | python3 -c 'import json, sys
print(max((a["totals"]["impressions"], a["ad_id"]) for a in map(json.loads, sys.stdin))[1])')
    bench_serve
    "$dir/bench_http" -c 1 -w 1 -d 5 "$port" "/v1/ads/$ad/terms?limit=100" >"$dir/http.txt"
    kill "$server"
    wait "$server" || true
    server=
    python3 - "$dir" >>"$csv" <<'PY'
import json, os, re, sys
d = sys.argv[1]
secs, rss_kb, blocks = open(f"{d}/time").read().split()[-3:]
r = json.load(open(f"{d}/report.json"))
q, c = r["queries"], r["clicks"]
size = lambda top: sum(os.path.getsize(os.path.join(p, f)) for p, _, fs in os.walk(top) for f in fs)
data = size(f"{d}/data")
inputs = os.path.getsize(f"{d}/logs/queries.ndjson") + os.path.getsize(f"{d}/logs/clicks.ndjson")
m = re.search(r"status 200: \d+ .*?p50 ([\d.]+) ms, p99 ([\d.]+) ms, p99.9 ([\d.]+) ms", open(f"{d}/http.txt").read())
print(f"{q['lines']},{c['lines']},{(q['lines'] + c['lines']) / float(secs):.0f},{int(rss_kb) / 1024:.1f},"
      f"{data / q['accepted']:.1f},{int(blocks) * 512 / inputs:.3f},{m[1]},{m[2]},{m[3]}")
PY
    echo "growth: $(tail -1 "$csv")" >&2
done
python3 "$here/plot_growth.py" "$csv" "$out/growth.svg"
cat "$csv"
