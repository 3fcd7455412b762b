#!/usr/bin/env bash
# The side-by-side comparison of BENCHMARKS.md, in one command: the same
# work on ctrd, DuckDB (in-process, npm @duckdb/node-api) and PostgreSQL 15
# (a server of its own on a unix socket), medians of RUNS runs each, every
# result verified equal to ctrd's before the table is printed.
#   bench/compare.sh [QUERIES] [RUNS]    (default 2000000 queries, 3 runs)
# Workload: `ctrd gen --seed 7 --format both` at 5,000 queries/s (no
# --tricky: clean input) for QUERIES/5000 s, with its clicks. Per system,
# timed apart:
#   (a) batch: ctrd ingest of gen's TSV files (the form nearest the peers'
#       input; the same records as the NDJSON ones); the peers load
#       bench/peers/convert.py's flat files (parsed, terms normalised: work
#       ctrd does and the peers get for free), then join and aggregate to
#       per-(ad, term, minute) counts in SQL (bench/peers/sql.js), stored
#       durably (DuckDB file checkpointed; PostgreSQL with an index on ad);
#   (b) the dashboard query: top-100 terms by impressions of the busiest ad
#       over all time: ctrd serve over HTTP (bench/bench_http.c, one
#       connection, 5 s), DuckDB in-process and PostgreSQL over its socket
#       as prepared statements (2000 runs each, after 100 untimed);
#   (c) durable incremental ingest of the same records, queries first:
#       PostgreSQL in 5000-record batches, each one INSERT ... ON CONFLICT
#       DO UPDATE over one connection; ctrd as bench/serve.sh does it, 1 MiB
#       NDJSON bodies POSTed to a fresh `ctrd serve` over 4 connections
#       (bench/serve_load.py; its totals verified on the first run);
# then checks that each peer's (ad, term) totals (and the incremental
# ones) equal `ctrd query --all`'s, to the unit (bench/peers/verify.py:
# the first differences and exit 1 on any). Needs root (PostgreSQL runs as
# the postgres user) and scripts/install-deps (postgresql-15, the npm
# packages of bench/peers). Disk: ~1.5 KB per query.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ctrd=$(realpath "${CTRD:-$here/../build/ctrd}")
peers=$here/peers
queries=${1:-2000000}
runs=${2:-3}
qps=5000
if [ ! -d "$peers/node_modules/@duckdb/node-api" ] || [ ! -d "$peers/node_modules/pg" ]; then
    echo "compare: bench/peers has no node_modules: run scripts/install-deps" >&2
    exit 1
fi
. "$here/lib.sh"
. "$peers/pg.sh"
dir=$(mktemp -d /tmp/ctrd-compare.XXXXXX)
chmod 755 "$dir" # the PostgreSQL server reads $dir/flat as the postgres user
server=
trap 'pg_stop; [ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
trap 'exit 1' INT TERM # the EXIT trap then stops the servers
results=$dir/results.jsonl
echo "compare: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at start" >&2

cc -O2 -o "$dir/bench_http" "$here/bench_http.c"
"$ctrd" gen --out "$dir/logs" --queries-per-sec "$qps" --duration "$((queries / qps))s" --seed 7 \
    --format both >&2
python3 "$peers/convert.py" "$dir/logs/queries.ndjson" "$dir/logs/clicks.ndjson" "$dir/flat"
chmod -R a+rX "$dir/flat"

stop_serve() {
    kill "$server"
    wait "$server" || true
    server=
}

# ctrd: (a), (b) and (c); the totals and the busiest ad from the first run.
for run in $(seq "$runs"); do
    rm -rf "$dir/data"
    /usr/bin/time -f %e -o "$dir/time" "$ctrd" ingest --data "$dir/data" \
        --queries "$dir/logs/queries.tsv" --clicks "$dir/logs/clicks.tsv" --quiet
    if [ "$run" = 1 ]; then
        "$ctrd" query --data "$dir/data" --all --format json >"$dir/ctrd.json"
        ad=$(python3 -c 'import json, sys
print(max((sum(t["impressions"] for t in a["terms"]), a["ad_id"]) for a in map(json.loads, open(sys.argv[1])))[1])' "$dir/ctrd.json")
    fi
    disk=$(du -sb "$dir/data" | cut -f1)
    bench_serve
    "$dir/bench_http" -c 1 -w 1 -d 5 "$port" "/v1/ads/$ad/terms?limit=100" >"$dir/http.txt"
    stop_serve
    # (c) on ctrd: the same records POSTed to a fresh `ctrd serve`.
    rm -rf "$dir/data"
    bench_serve
    python3 "$here/serve_load.py" "$port" "$dir/logs/queries.ndjson" "$dir/logs/clicks.ndjson" 4 >"$dir/stream.txt"
    stop_serve
    if [ "$run" = 1 ]; then
        "$ctrd" query --data "$dir/data" --all --format json >"$dir/stream.json"
        python3 "$peers/verify.py" "$dir/ctrd.json" "ctrd streaming" "$dir/stream.json"
    fi
    python3 - "$dir" "$("$ctrd" --version)" "$disk" >>"$results" <<'PY'
import json, re, sys
d, version, disk = sys.argv[1], sys.argv[2].split()[-1], int(sys.argv[3])
m = re.search(r"status 200: \d+ .*?p50 ([\d.]+) ms, p99 ([\d.]+) ms, p99.9 ([\d.]+) ms", open(f"{d}/http.txt").read())
s = re.search(r"in ([\d.]+) s", open(f"{d}/stream.txt").read())
print(json.dumps({"system": "ctrd", "version": version, "load_s": float(open(f"{d}/time").read().split()[-1]),
                  "disk_bytes": disk, "p50_ms": float(m[1]), "p99_ms": float(m[2]), "p999_ms": float(m[3]),
                  "incremental_s": float(s[1])}))
PY
    echo "compare: ctrd run $run: $(tail -1 "$results")" >&2
done

for run in $(seq "$runs"); do
    rm -f "$dir/duck.db" "$dir/duck.db.wal"
    node "$peers/duckdb.js" --flat "$dir/flat" --db "$dir/duck.db" --ad "$ad" --runs 2000 \
        --totals "$dir/duckdb.tsv" >>"$results"
    python3 "$peers/verify.py" "$dir/ctrd.json" DuckDB "$dir/duckdb.tsv"
    echo "compare: DuckDB run $run: $(tail -1 "$results")" >&2
done
rm -f "$dir/duck.db" "$dir/duck.db.wal"

pg_start "$dir/pg"
for run in $(seq "$runs"); do
    node "$peers/pg.js" --socket "$dir/pg" --port "$pg_port" --db bench --flat "$dir/flat" --ad "$ad" \
        --runs 2000 --batch 5000 --totals "$dir/pg.tsv" --incremental-totals "$dir/pg-inc.tsv" >>"$results"
    python3 "$peers/verify.py" "$dir/ctrd.json" PostgreSQL "$dir/pg.tsv"
    python3 "$peers/verify.py" "$dir/ctrd.json" "PostgreSQL incremental" "$dir/pg-inc.tsv"
    echo "compare: PostgreSQL run $run: $(tail -1 "$results")" >&2
done

echo "compare: load average $(cut -d' ' -f1-3 /proc/loadavg) at the end" >&2
python3 "$peers/table.py" "$results" "$dir/flat/lines.json" \
    "$(python3 -c 'import json, sys; print(sum(len(json.loads(l)["terms"]) for l in open(sys.argv[1])))' "$dir/ctrd.json")" "$ad"
