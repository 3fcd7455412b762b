#!/usr/bin/env bash
# Exactly-once through kill -9 (SPEC §3): an ingest is killed at random
# moments (small checkpoints, a 32nd of the query log, so kills land in
# every phase: start-up and recovery, parsing, joining, checkpoint
# writing), rerun, killed again ...
# until it completes; the counts must then equal the reference exactly, and
# one more run must change nothing. Rounds alternate between one invocation
# for both files and clicks-first in separate invocations; there are at
# least two. The defaults are the fast tier's; tests/soak/test_kill_matrix.sh
# runs this with more data and many more kills.
. "$(dirname "$0")/lib.sh"

RATE="${CRASH_QUERIES_PER_SEC:-100}"
DURATION="${CRASH_DURATION:-5m}"
MIN_KILLS="${CRASH_KILLS:-6}"
BUDGET_S="${CRASH_BUDGET_S:-60}"   # wall-clock bound of the kill loop
MAX_ITER=400

G="$TMP/gen"
if ! ctrd gen --out "$G" --queries-per-sec "$RATE" --duration "$DURATION" --seed 11 \
    --tricky >"$TMP/out" 2>&1; then
    fail crash_gen "$(head -3 "$TMP/out")"
    finish
fi
Q="$G/queries.ndjson" C="$G/clicks.ndjson"
echo "generated: $(wc -l <"$Q") query lines, $(wc -l <"$C") click lines"
reference --queries "$Q" --clicks "$C" --out-json "$TMP/ref.json"
CKPT=$(($(stat -c %s "$Q") / 32))

# One uninterrupted run: the baseline, and the scale of the random sleeps.
start=$(now_ms)
if ! ctrd ingest --data "$TMP/full" --queries "$Q" --clicks "$C" --checkpoint-every "$CKPT" \
    --quiet >"$TMP/out" 2>&1; then
    fail crash_baseline "$(head -3 "$TMP/out")"
    finish
fi
run_ms=$(($(now_ms) - start))
echo "uninterrupted ingest: $run_ms ms"
ctrd query --data "$TMP/full" --all --format json >"$TMP/full.json" 2>/dev/null
check crash_baseline compare totals "$TMP/ref.json" "$TMP/full.json"
rm -rf "$TMP/full"
# Sleeps up to 0.7 of a whole run: most kills land, and a round (a data
# directory taken from empty to complete) takes a few of them; later runs
# of a round have less left to do, so kills reach the final phases too.
max_sleep_ms=$((run_ms * 7 / 10 + 20))

# verify_round DIR ROUND: counts equal the reference; one more run of the
# whole input changes nothing. Failures are listed in bad_rounds.
bad_rounds="" rerun_changed="" verified=0
verify_round() {
    local dir="$1" round="$2"
    verified=$((verified + 1))
    ctrd query --data "$dir" --all --format json >"$TMP/got.json" 2>"$TMP/err" ||
        echo "round $round: query: $(head -2 "$TMP/err")"
    # The uninterrupted run's output matched the reference: byte-equal
    # output is quick to check; the reference explains any difference.
    if ! cmp -s "$TMP/full.json" "$TMP/got.json"; then
        bad_rounds="$bad_rounds $round"
        compare totals "$TMP/ref.json" "$TMP/got.json" | sed "s/^/round $round: /"
    fi
    ctrd ingest --data "$dir" --queries "$Q" --clicks "$C" --quiet >/dev/null 2>&1
    ctrd query --data "$dir" --all --format json >"$TMP/again.json" 2>/dev/null
    cmp -s "$TMP/got.json" "$TMP/again.json" || rerun_changed="$rerun_changed $round"
}

kills=0 iter=0 round=0 step=0 deadline=$(($(date +%s) + BUDGET_S))
dir=""
steps=()
RANDOM=4242
while [ "$iter" -lt "$MAX_ITER" ] && [ "$(date +%s)" -lt $((deadline + 60)) ]; do
    if [ -z "$dir" ]; then
        [ "$kills" -ge "$MIN_KILLS" ] && [ "$round" -ge 2 ] && break
        [ "$(date +%s)" -ge "$deadline" ] && break
        round=$((round + 1))
        dir="$TMP/round$round"
        step=0
        if [ $((round % 2)) = 1 ]; then
            steps=("--queries $Q --clicks $C")
        else
            steps=("--clicks $C" "--queries $Q")
        fi
        round_kills=0
    fi
    iter=$((iter + 1))
    # shellcheck disable=SC2086  # steps hold word lists of temp paths
    "$CTRD" ingest --data "$dir" ${steps[$step]} --checkpoint-every "$CKPT" --quiet \
        >"$TMP/run.out" 2>&1 &
    pid=$!
    bg_track "$pid"
    sleep_ms=$(((RANDOM * 32768 + RANDOM) % max_sleep_ms))
    sleep "$((sleep_ms / 1000)).$(printf '%03d' $((sleep_ms % 1000)))"
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    rc=$?
    if [ "$rc" = 137 ]; then
        kills=$((kills + 1))
        round_kills=$((round_kills + 1))
    elif [ "$rc" = 0 ]; then
        step=$((step + 1))
        if [ "$step" -ge "${#steps[@]}" ]; then
            echo "round $round: $round_kills kills, ${#steps[@]} step(s)"
            verify_round "$dir" "$round"
            rm -rf "$dir"
            dir=""
        fi
    else
        fail "crash_round${round}_restart" "ingest exit $rc after $round_kills kills: $(head -3 "$TMP/run.out")"
        rm -rf "$dir"
        dir=""
    fi
done
# Finish a round that the bounds interrupted.
if [ -n "$dir" ]; then
    ok=1
    while [ "$step" -lt "${#steps[@]}" ]; do
        # shellcheck disable=SC2086
        ctrd ingest --data "$dir" ${steps[$step]} --quiet >"$TMP/run.out" 2>&1 || { ok=0; break; }
        step=$((step + 1))
    done
    if [ "$ok" = 1 ]; then verify_round "$dir" "$round"; else
        fail "crash_round${round}_restart" "$(head -3 "$TMP/run.out")"; fi
fi
echo "$kills kills of a running ingest in $iter runs, $round rounds"
if [ "$verified" = 0 ]; then
    fail crash_counts_exact "no round completed"
elif [ -z "$bad_rounds" ]; then
    pass crash_counts_exact
else
    fail crash_counts_exact "counts differ from the reference after rounds$bad_rounds"
fi
[ -z "$rerun_changed" ] && pass crash_rerun_unchanged ||
    fail crash_rerun_unchanged "one more ingest changed the counts after rounds$rerun_changed"
[ "$kills" -ge "$MIN_KILLS" ] && pass crash_enough_kills ||
    fail crash_enough_kills "only $kills kills landed (wanted $MIN_KILLS)"
finish
