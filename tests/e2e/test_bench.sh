#!/usr/bin/env bash
# ctrd bench (SPEC §4): a small run (20,000 queries) through the real
# binary exits 0 after its own check (batch = streaming, ad by ad and term
# by term; tests/unit/test_bench.c shows that check failing on a count off
# by one), prints every figure with its unit, writes them all to --json
# with sane values, keeps its files with --out, and `ctrd plan --bench`
# sizes a workload from that file; an --out that is not empty is refused
# (exit 1, no figure); usage errors exit 2; --help names every flag.
. "$(dirname "$0")/lib.sh"

KEYS='parse_events_per_core_s join_events_per_core_s bytes_per_query_disk
ram_bytes_per_query batch_events_per_s batch_wall_s batch_cores_busy
http_events_per_s http_wall_s dashboard_samples dashboard_p50_ms
dashboard_p99_ms dashboard_p999_ms freshness_samples freshness_p50_ms
freshness_p99_ms freshness_p999_ms peak_rss_bytes serve_peak_rss_bytes
queries clicks body_lines'

ctrd bench --queries 20000 --threads 2 --out "$TMP/run" --json "$TMP/bench.json" >"$TMP/out" 2>"$TMP/err"
rc=$?
[ "$rc" = 0 ] && [ ! -s "$TMP/err" ] && pass bench_runs || fail bench_runs "exit $rc: $(head -c 400 "$TMP/err")"
grep -q '^ctrd bench [0-9.]*: 20000 queries, [0-9]* clicks (gen seed 1); counts verified: batch = streaming' "$TMP/out" &&
    pass bench_verified_said || fail bench_verified_said "$(head -c 300 "$TMP/out")"

# The table: one line per figure, "  KEY VALUE UNIT".
missing=
for k in $KEYS; do grep -Eq "^  $k +[0-9.e+-]+  [a-z/]+$" "$TMP/out" || missing="$missing $k"; done
[ -z "$missing" ] && pass bench_table_figures || fail bench_table_figures "missing:$missing"

pycheck bench_json_figures '
import json, sys
b = json.load(open(sys.argv[1]))
keys = sys.argv[2].split()
assert sorted(set(keys) - set(b)) == [], sorted(set(keys) - set(b))
assert isinstance(b["version"], str) and b["version"], b["version"]
assert b["queries"] == 20000 and b["clicks"] > 0, (b["queries"], b["clicks"])
for k in keys:
    assert isinstance(b[k], (int, float)) and b[k] > 0, (k, b[k])
for p in ("dashboard", "freshness"):
    v = [b[p + "_p50_ms"], b[p + "_p99_ms"], b[p + "_p999_ms"]]
    assert v == sorted(v), (p, v)
assert 10 <= b["bytes_per_query_disk"] <= 500, b["bytes_per_query_disk"]
assert b["freshness_samples"] == 100, b["freshness_samples"]
assert b["dashboard_samples"] >= 1, b["dashboard_samples"]
assert b["parse_events_per_core_s"] == b["join_events_per_core_s"]
events = b["queries"] + b["clicks"]
# Each per-core figure is the batch rate over the cores it kept busy.
per_core = b["batch_events_per_s"] / b["batch_cores_busy"]
assert abs(per_core / b["parse_events_per_core_s"] - 1) < 1e-6, per_core
assert abs(events / b["batch_wall_s"] / b["batch_events_per_s"] - 1) < 1e-6
assert abs(events / b["http_wall_s"] / b["http_events_per_s"] - 1) < 1e-6
assert abs(b["ram_bytes_per_query"] * b["queries"] / b["peak_rss_bytes"] - 1) < 1e-6
' "$TMP/bench.json" "$KEYS"

# --out keeps the workload, both data directories and both dumps, equal.
[ -s "$TMP/run/gen/queries.ndjson" ] && [ -s "$TMP/run/batch.csv" ] &&
    cmp -s "$TMP/run/batch.csv" "$TMP/run/stream.csv" && ctrd verify --data "$TMP/run/stream" >/dev/null 2>&1 &&
    pass bench_out_kept || fail bench_out_kept "$(ls "$TMP/run" | tr '\n' ' ')"
# The disk figure is the batch data directory's bytes over the queries.
pycheck bench_disk_figure '
import json, os, sys
b = json.load(open(sys.argv[1]))
size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(sys.argv[2]) for f in fs)
assert abs(size / 20000 - b["bytes_per_query_disk"]) < 1e-6, (size, b["bytes_per_query_disk"])
' "$TMP/bench.json" "$TMP/run/batch"

# ctrd plan sizes a workload from the file: no figure missing, and the
# cores from the bench per-core figures.
ctrd plan --bench "$TMP/bench.json" --json >"$TMP/plan.json" 2>"$TMP/err"
rc=$?
[ "$rc" = 0 ] && pass bench_plan_reads || fail bench_plan_reads "exit $rc: $(head -c 300 "$TMP/err")"
pycheck bench_plan_uses_figures '
import json, sys
b = json.load(open(sys.argv[1]))
p = json.load(open(sys.argv[2]))
assert p["missing"] == [], p["missing"]
w = p["workload"]
ev = 2 * (w["queries_per_sec"] + w["clicks_per_sec"])
want = ev * (1 / b["parse_events_per_core_s"] + 1 / b["join_events_per_core_s"])
got = p["needs"]["cores"]["value"]
assert abs(got / want - 1) < 1e-9, (got, want)
' "$TMP/bench.json" "$TMP/plan.json"

# An --out that holds anything: refused before any work, no figure.
ctrd bench --queries 1000 --out "$TMP/run" >"$TMP/out" 2>"$TMP/err"
rc=$?
[ "$rc" = 1 ] && [ ! -s "$TMP/out" ] && grep -q '^ctrd bench: --out .*: not empty$' "$TMP/err" &&
    pass bench_out_not_empty || fail bench_out_not_empty "exit $rc: $(head -c 200 "$TMP/err")"

# Usage errors: exit 2, one line, nothing run.
for args in "--queries 999" "--queries x" "--threads 0" "--threads" "--nope" "extra"; do
    ctrd bench $args >"$TMP/out" 2>"$TMP/err"
    rc=$?
    if [ "$rc" = 2 ] && [ ! -s "$TMP/out" ] && [ "$(wc -l <"$TMP/err")" = 1 ] &&
        grep -q '^ctrd bench: ' "$TMP/err"; then
        pass "bench_usage_error ${args}"; else
        fail "bench_usage_error ${args}" "exit $rc: $(head -c 200 "$TMP/err")"; fi
done

# --help: exit 0, every flag named; --version.
ctrd bench --help >"$TMP/help" 2>&1
rc=$?
missing=
for f in --queries --out --json --threads --help -h --version; do grep -q -- "$f" "$TMP/help" || missing="$missing $f"; done
[ "$rc" = 0 ] && [ -z "$missing" ] && grep -q '^usage: ctrd bench' "$TMP/help" && pass bench_help ||
    fail bench_help "exit $rc, missing:$missing"
ctrd bench --version >"$TMP/out" 2>&1 && grep -qx 'ctrd [0-9][0-9.]*' "$TMP/out" && pass bench_version ||
    fail bench_version "$(head -c 200 "$TMP/out")"
ctrd --help | grep -q '^  bench ' && pass bench_listed || fail bench_listed

finish
