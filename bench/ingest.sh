#!/usr/bin/env bash
# Batch ingest benchmark: generates N queries (default 10 M) with their
# clicks, ingests them with the real binary and prints events/s, peak RSS and
# disk bytes per query. Usage: bench/ingest.sh [QUERIES_PER_SEC] [DURATION]
# (10 M queries = 10000 queries/s for 1000s). Needs ~3 GB of free disk.
set -euo pipefail
ctrd=${CTRD:-build/ctrd}
qps=${1:-10000}
duration=${2:-1000s}
dir=$(mktemp -d /tmp/ctrd-bench.XXXXXX)
trap 'rm -rf "$dir"' EXIT
"$ctrd" gen --out "$dir/logs" --queries-per-sec "$qps" --duration "$duration" --seed 7
sync
/usr/bin/time -f "%e %M" -o "$dir/time" "$ctrd" ingest --data "$dir/data" \
    --queries "$dir/logs/queries.ndjson" --clicks "$dir/logs/clicks.ndjson" \
    --report "$dir/report.json" --quiet
read -r secs rss_kb < "$dir/time"
python3 - "$dir" "$secs" "$rss_kb" <<'PY'
import json, os, sys
d, secs, rss_kb = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
r = json.load(open(os.path.join(d, "report.json")))
q, c = r["queries"], r["clicks"]
events = q["lines"] + c["lines"]
data = os.path.join(d, "data")
disk = sum(os.path.getsize(os.path.join(data, f)) for f in os.listdir(data))
logs = sum(os.path.getsize(os.path.join(d, "logs", f)) for f in os.listdir(os.path.join(d, "logs")))
print(f"queries {q['lines']:,}  clicks {c['lines']:,}  input {logs/1e9:.2f} GB")
print(f"ingest  {secs:.2f} s  {events/secs/1e6:.2f} M events/s  ({logs/secs/1e6:.0f} MB/s)")
print(f"peak RSS {rss_kb/1024:.0f} MiB")
print(f"disk    {disk/1e6:.0f} MB = {disk/max(q['accepted'],1):.1f} bytes per query")
PY
