#!/usr/bin/env bash
# The soak tier's kill -9 matrix (SPEC §3): exactly once through at least
# KILLS (default 50) kill -9s of batch ingest and as many of the service.
#   batch: tests/e2e/test_crash.sh with KILLS kills (random moments of runs
#          that alternate one invocation for both logs and clicks first) on
#          ten times the fast tier's data (1000 queries/s for 5 minutes);
#   serve: ROUNDS rounds, each on a fresh directory: POST everything
#          (clicks mostly first, on several connections) and kill -9 after a
#          random number of acknowledged query chunks; restart: everything
#          acknowledged is counted (plus at most the chunk in flight); POST
#          everything again and kill -9 at a random moment; restart, POST
#          everything once more: the counts equal the reference exactly.
# Run with `make soak`; a few minutes.
. "$(dirname "$0")/../e2e/lib.sh"
. "$(dirname "$0")/../e2e/serve_lib.sh"

KILLS="${KILLS:-50}"
ROUNDS=$(((KILLS + 1) / 2))

CRASH_KILLS="$KILLS" CRASH_BUDGET_S=$((KILLS * 15)) CRASH_QUERIES_PER_SEC=1000 \
    "$(dirname "$0")/../e2e/test_crash.sh" | sed 's/^\(PASS\|FAIL\) crash_/\1 soak_batch_/'
[ "${PIPESTATUS[0]}" = 0 ] || E2E_FAILED=1

G="$TMP/gen"
if ! ctrd gen --out "$G" --queries-per-sec 50 --duration 10m --seed 77 --tricky \
    >"$TMP/gen.out" 2>&1; then
    fail soak_gen "$(head -3 "$TMP/gen.out")"
    finish
fi
mkdir "$TMP/qc" "$TMP/cc"
split -l 200 -d -a 4 --additional-suffix=.ndjson "$G/queries.ndjson" "$TMP/qc/q"
split -l 50 -d -a 4 --additional-suffix=.ndjson "$G/clicks.ndjson" "$TMP/cc/c"
QCHUNKS=("$TMP"/qc/*) CCHUNKS=("$TMP"/cc/*)
reference --queries "$G/queries.ndjson" --clicks "$G/clicks.ndjson" --out-json "$TMP/ref.json"
client sample "$TMP/ref.json" "$TMP/sample.json" 9

RANDOM=777
kills=0 lost="" inexact=""
for round in $(seq 1 "$ROUNDS"); do
    D="$TMP/serve$round"
    start_server "soak_r$round" "$D" || break
    after=$((1 + RANDOM % (${#QCHUNKS[@]} - 1)))
    client ingest "$SRV_URL" "$TMP/in.json" --queries "${QCHUNKS[@]}" --clicks "${CCHUNKS[@]}" \
        --click-conns 3 --signal-after "$SRV_PID" "$after" --signal KILL >/dev/null 2>&1
    wait_exit "$SRV_PID"
    [ "$EXIT_RC" = 137 ] && kills=$((kills + 1))
    client interrupted --killed "$TMP/in.json" "$TMP/q.ndjson" "$TMP/c.ndjson" \
        "$TMP/q-maybe.ndjson" >/dev/null 2>&1 || lost="$lost $round(answers)"
    reference --queries "$TMP/q.ndjson" --clicks "$TMP/c.ndjson" --out-json "$TMP/ref-acked.json"
    reference --queries "$TMP/q-maybe.ndjson" --clicks "$TMP/c.ndjson" \
        --out-json "$TMP/ref-maybe.json"
    start_server "soak_r${round}_a" "$D" || break
    client snapshot "$SRV_URL" "$TMP/sample.json" "$TMP/snap.json"
    client check-snapshot "$TMP/ref-acked.json" "$TMP/sample.json" "$TMP/snap.json" \
        >/dev/null 2>&1 ||
        client check-snapshot "$TMP/ref-maybe.json" "$TMP/sample.json" "$TMP/snap.json" \
            >/dev/null 2>&1 || lost="$lost $round"
    # A kill at a random moment of a full re-POST.
    client ingest "$SRV_URL" "$TMP/in2.json" --queries "${QCHUNKS[@]}" \
        --clicks "${CCHUNKS[@]}" --click-conns 3 >/dev/null 2>&1 &
    poster=$!
    sleep "0.$((RANDOM % 9 + 1))"
    kill -9 "$SRV_PID" 2>/dev/null && kills=$((kills + 1))
    wait "$poster" 2>/dev/null
    wait_exit "$SRV_PID"
    start_server "soak_r${round}_b" "$D" || break
    client ingest "$SRV_URL" "$TMP/in3.json" --queries "${QCHUNKS[@]}" \
        --clicks "${CCHUNKS[@]}" --click-conns 3 >/dev/null 2>&1 || inexact="$inexact $round(post)"
    client snapshot "$SRV_URL" "$TMP/sample.json" "$TMP/snap.json"
    client check-snapshot "$TMP/ref.json" "$TMP/sample.json" "$TMP/snap.json" >/dev/null 2>&1 ||
        inexact="$inexact $round"
    stop_server "soak_r${round}_stop"
    rm -rf "$D"
done
echo "$kills kills of a serving ctrd in $ROUNDS rounds"
[ -z "$lost" ] && pass soak_serve_acknowledged_counted ||
    fail soak_serve_acknowledged_counted "rounds$lost"
[ -z "$inexact" ] && pass soak_serve_exact || fail soak_serve_exact "rounds$inexact"
[ "$kills" -ge "$KILLS" ] && pass soak_serve_enough_kills ||
    fail soak_serve_enough_kills "$kills kills, wanted $KILLS"
logs_clean soak_logs_clean
finish
