#!/usr/bin/env bash
# Cluster benchmark (docs/scale-out.md): the simulated three-host cluster of
# scripts/cluster on this one machine.
#   1. throughput with 3, 2 and 1 joiners: three clients (one per front
#      end) post the queries, then the clicks, in requests of 5,000 lines;
#      "acknowledged" is events / time until the last answer (replicated in
#      JetStream), "counted" is events / time until a front end's counts
#      equal `ctrd ingest` of the same files;
#   2. freshness through each failure: a part is posted right after the
#      failure is made; the time from the failure to the last answer and to
#      counts equal again (all three front ends).
# Usage: bench/cluster.sh [QUERIES_PER_SEC [DURATION]] (default 1000 5m,
# 300 k queries). Every count is checked against `ctrd ingest`.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
export CTRD="${CTRD:-$ROOT/build/ctrd}"
qps=${1:-1000}
duration=${2:-5m}
dir=$(mktemp -d /tmp/ctrd-bench-cluster.XXXXXX)
cl() { "$ROOT/scripts/cluster" "$@"; }
trap 'cl down "$dir/c" >/dev/null 2>&1; rm -rf "$dir"' EXIT
FRONTS=(http://127.0.0.11:8080 http://127.0.0.12:8080 http://127.0.0.13:8080)
now() { date +%s.%N; }
since() { python3 -c "import sys; print('%.1f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$1" "$(now)"; }

# expect NAME QUERIES CLICKS: $dir/NAME.want, what ctrd ingest counts.
expect() {
    "$CTRD" ingest --data "$dir/ref-$1" --queries "$2" --clicks "$3" --quiet >/dev/null
    "$CTRD" query --data "$dir/ref-$1" --all --format json >"$dir/$1.want"
}
equal() { python3 "$ROOT/tests/cluster/same_counts.py" "$dir/$1.want" "$2" --wait 300 >/dev/null; }

# post_parallel FILE KIND: three clients, a third of FILE each.
post_parallel() {
    local i pids=()
    split -n l/3 -d -a 1 "$1" "$dir/split."
    for i in 0 1 2; do
        python3 "$ROOT/tests/cluster/post.py" "$dir/split.$i" "$2" \
            "${FRONTS[$i]}" "${FRONTS[@]}" --lines 5000 >/dev/null &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i"; done
}

"$CTRD" gen --out "$dir/gen" --queries-per-sec "$qps" --duration "$duration" --seed 7 >/dev/null
q="$dir/gen/queries.ndjson" c="$dir/gen/clicks.ndjson"
events=$(($(wc -l <"$q") + $(wc -l <"$c")))
expect all "$q" "$c"

echo "## throughput: $(wc -l <"$q") queries + $(wc -l <"$c") clicks"
echo "| joiners | acknowledged, events/s | counted, events/s |"
echo "|---|---|---|"
for joiners in 3 2 1; do
    cl up "$dir/c" >/dev/null 2>&1
    for ((n = 3; n > joiners; n--)); do cl kill "$dir/c" "joiner-$n"; done
    sleep 8 # the killed joiners' leases expire, their partitions move
    t0=$(now)
    post_parallel "$q" queries
    post_parallel "$c" clicks
    acked=$(since "$t0")
    equal all "${FRONTS[0]}"
    counted=$(since "$t0")
    python3 -c "import sys; e=int(sys.argv[1]); print('| %s | %.0f | %.0f |' % (sys.argv[2], e/float(sys.argv[3]), e/float(sys.argv[4])))" \
        "$events" "$joiners" "$acked" "$counted"
    cl down "$dir/c" >/dev/null 2>&1
    rm -rf "$dir/c"
done

# ---- freshness through failures: one part per failure ----
failures=("joiner-2 killed:kill joiner-2"
    "joiner-3 paused 8 s (past its 5 s lease):pause joiner-3"
    "stream leader killed:kill LEADER"
    "etcd-1 killed:kill etcd-1"
    "front-1 killed:kill front-1")
parts=${#failures[@]}
(cd "$dir/gen" && split -n l/$((parts + 1)) -d -a 1 queries.ndjson q. &&
    split -n l/$((parts + 1)) -d -a 1 clicks.ndjson c.)
cl up "$dir/c" >/dev/null 2>&1
cat "$dir/gen/q.0" >"$dir/q-prefix.ndjson"
cat "$dir/gen/c.0" >"$dir/c-prefix.ndjson"
python3 "$ROOT/tests/cluster/post.py" "$dir/gen/q.0" queries "${FRONTS[@]}" --lines 2000 >/dev/null
python3 "$ROOT/tests/cluster/post.py" "$dir/gen/c.0" clicks "${FRONTS[@]}" --lines 2000 >/dev/null
expect p0 "$dir/q-prefix.ndjson" "$dir/c-prefix.ndjson"
echo
echo "## freshness through failures (3 joiners; a part of ~$((events / (parts + 1))) events posted right after each)"
echo "| failure | last answer after, s | counts equal on all front ends after, s |"
echo "|---|---|---|"
for ((i = 1; i <= parts; i++)); do
    name=${failures[i - 1]%%:*}
    read -r verb target <<<"${failures[i - 1]#*:}"
    if [ "$target" = LEADER ]; then
        target=$(curl -s "http://127.0.0.11:8222/jsz?accounts=true&streams=true" | python3 -c '
import json, sys
for a in json.load(sys.stdin).get("account_details", []):
    for s in a.get("stream_detail", []):
        if s["name"] == "CTRD_IN": print(s["cluster"]["leader"])')
        name="$name ($target)"
    fi
    cat "$dir/gen/q.$i" >>"$dir/q-prefix.ndjson"
    cat "$dir/gen/c.$i" >>"$dir/c-prefix.ndjson"
    expect "p$i" "$dir/q-prefix.ndjson" "$dir/c-prefix.ndjson"
    for f in "${FRONTS[@]}"; do equal "p$((i - 1))" "$f" 2>/dev/null || true; done
    t0=$(now)
    cl "$verb" "$dir/c" "$target"
    [ "$verb" = pause ] && (sleep 8 && cl resume "$dir/c" "$target") &
    python3 "$ROOT/tests/cluster/post.py" "$dir/gen/q.$i" queries "${FRONTS[@]}" --lines 2000 >/dev/null
    python3 "$ROOT/tests/cluster/post.py" "$dir/gen/c.$i" clicks "${FRONTS[@]}" --lines 2000 >/dev/null
    acked=$(since "$t0")
    [ "$verb" = kill ] && cl start "$dir/c" "$target"
    for f in "${FRONTS[@]}"; do equal "p$i" "$f"; done
    echo "| $name | $acked | $(since "$t0") |"
    wait
done
