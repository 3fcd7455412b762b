#!/usr/bin/env bash
# A full disk (SPEC §3: "A failed write (disk full, I/O error) refuses new
# records (HTTP 507 with Retry-After) while reads keep being served, and
# ingest resumes by itself once writes succeed again"), through the real
# binary on a small tmpfs that a ballast file fills up:
# 1. `ctrd serve` (also following a query and a click log): chunks are
#    POSTed until the answers turn 507; then every 507 carries Retry-After,
#    /metrics says ctrd_writes_failing 1, /readyz 503, /healthz 200, the
#    failed write is retried 1 s and then 2 s later, and the read API
#    answers exactly the counts of what was acknowledged (the reference
#    over those bodies); followed lines appended meanwhile wait. The
#    ballast goes: ingest resumes without a restart, every refused body is
#    POSTed again, and the counts equal the reference over everything
#    exactly (and so do the answers' counters); everything once more
#    changes nothing; kill -9, `ctrd verify`, restart on a disk full
#    again: the same counts.
#    The retries that failed left no files behind (else each would hold
#    the space that came back, and space freed bit by bit would never let
#    a retry succeed).
# 2. Followed lines while full: the lines whose write failed and those read
#    after are counted once writes succeed again, exactly once.
# 3. SIGTERM while writes fail (followed lines held and queued): exits 0 in
#    bounded time; a restart with space reads those lines, once.
# 4. The write that fails is a checkpoint's rather than the log's: the
#    same refusal, reads and resumption.
# 5. `ctrd ingest` on a full disk: exit 1, one line naming the write that
#    failed, the directory still verifies; rerun with space: it resumes
#    and ends exact.
# Needs root (mount); else it prints SKIP and exits 0. Every wait is
# bounded.
. "$(dirname "$0")/lib.sh"
. "$E2E_DIR/serve_lib.sh"
export LC_ALL=C

MNT="$TMP/mnt"
RESUME_S=40 # bound of the wait for ingest to resume once space is back
COUNTS_S=20 # bound of every wait for followed lines to be counted
helper() { timeout -s KILL "$CLIENT_S" python3 "$E2E_DIR/diskfull.py" "$@"; }

mkdir "$MNT"
if ! mount -t tmpfs -o size=8m tmpfs "$MNT" 2>"$TMP/mount.err"; then
    echo "SKIP diskfull: cannot mount a tmpfs ($(head -1 "$TMP/mount.err"))"
    exit 0
fi
diskfull_cleanup() {
    local pid
    for pid in "${E2E_BG_PIDS[@]}"; do
        kill -9 "$pid" 2>/dev/null
    done
    wait 2>/dev/null
    umount "$MNT" 2>/dev/null || umount -l "$MNT"
    e2e_cleanup
}
trap diskfull_cleanup EXIT

avail() { df --output=avail -B1 "$MNT" | tail -1 | tr -d ' '; }
# fill_leaving KB: a ballast file leaves about KB KiB free.
fill_leaving() {
    local a
    a=$(avail)
    head -c $((a > $1 * 1024 ? a - $1 * 1024 : 0)) /dev/zero >"$MNT/ballast"
}
# fill_up: another ballast file takes every byte left.
fill_up() {
    cat /dev/zero >"$MNT/ballast-top" 2>/dev/null
    [ "$(avail)" = 0 ] || echo "fill_up: $(avail) bytes still free"
}
free_space() { rm -f "$MNT"/ballast*; }

# checks NAME ARGS...: a helper command that prints its own PASS/FAIL lines.
checks() { checked "diskfull_$1" helper "$@"; }
alive() {
    if exited "$SRV_PID"; then fail "$1" "the server exited: $(tail -2 "$TMP/$2.log")"; else
        pass "$1"; fi
}

# Logs: HTTP bodies from one generator run with tricky records (24 query
# and 24 click chunks, POSTed as pairs in order), followed lines from
# another, plain, with query ids of their own (6 parts).
if ! ctrd gen --out "$TMP/gh" --queries-per-sec 20 --duration 4m --seed 41 --ads 150 \
    --terms 300 --tricky >"$TMP/gen.out" 2>&1 ||
    ! ctrd gen --out "$TMP/gf" --queries-per-sec 10 --duration 3m --seed 42 --ads 150 \
        --terms 300 >>"$TMP/gen.out" 2>&1; then
    fail diskfull_gen "$(head -3 "$TMP/gen.out")"
    finish
fi
mkdir "$TMP/h" "$TMP/f"
split -n l/24 -d -a 2 --additional-suffix=.ndjson "$TMP/gh/queries.ndjson" "$TMP/h/q"
split -n l/24 -d -a 2 --additional-suffix=.ndjson "$TMP/gh/clicks.ndjson" "$TMP/h/c"
for k in queries clicks; do
    helper other-ids "$TMP/gf/$k.ndjson" "$TMP/gf/$k-own.ndjson"
    split -n l/6 -a 1 --numeric-suffixes=1 --additional-suffix=.ndjson \
        "$TMP/gf/$k-own.ndjson" "$TMP/f/${k:0:1}"
done
PAIRS=()
for i in $(seq -w 0 23); do PAIRS+=("queries:$TMP/h/q$i.ndjson" "clicks:$TMP/h/c$i.ndjson"); done
HQ=("$TMP"/h/q*.ndjson) HC=("$TMP"/h/c*.ndjson)
LOGS="$TMP/logs"
mkdir "$LOGS"
FQ="$LOGS/queries.ndjson" FC="$LOGS/clicks.ndjson"
: >"$FQ"
: >"$FC"
# follow N: appends part N of the followed logs.
follow() {
    cat "$TMP/f/q$1.ndjson" >>"$FQ"
    cat "$TMP/f/c$1.ndjson" >>"$FC"
}
# ref NAME HTTP_QUERIES HTTP_CLICKS PARTS: the reference over HTTP bodies and
# followed parts 1..PARTS.
ref() {
    local parts_q=() parts_c=() n
    for ((n = 1; n <= $4; n++)); do
        parts_q+=("$TMP/f/q$n.ndjson") parts_c+=("$TMP/f/c$n.ndjson")
    done
    reference --queries "$2" "${parts_q[@]}" --clicks "$3" "${parts_c[@]}" \
        --out-json "$TMP/$1.json"
}
cat "${HQ[@]}" >"$TMP/hq.ndjson"
cat "${HC[@]}" >"$TMP/hc.ndjson"
reference --queries "${HQ[@]}" --clicks "${HC[@]}" --out-json "$TMP/ref-http.json"
: >"$TMP/none.ndjson"
ref ref-f1 "$TMP/none.ndjson" "$TMP/none.ndjson" 1
ref ref-all "$TMP/hq.ndjson" "$TMP/hc.ndjson" 6
client sample "$TMP/ref-all.json" "$TMP/sample.json" 3
echo "generated: $(wc -l <"$TMP/hq.ndjson") query and $(wc -l <"$TMP/hc.ndjson") click lines" \
    "to POST, $(wc -l <"$TMP/gf/queries-own.ndjson") and $(wc -l <"$TMP/gf/clicks-own.ndjson")" \
    "to follow"

D="$MNT/serve"
SERVE_ARGS=(--checkpoint-every 1M --follow-queries "$FQ" --follow-clicks "$FC")
start=$(now_ms)
if start_server df_a "$D" "${SERVE_ARGS[@]}"; then
    # 1. Until the disk is full.
    follow 1
    check diskfull_followed_before helper counts "$SRV_URL" "$TMP/ref-f1.json" "$COUNTS_S"
    fill_leaving 256
    checks post "$SRV_URL" "$TMP/p1.json" diskfull --until-refused 2 \
        --acked-queries "$TMP/acked-q.ndjson" --acked-clicks "$TMP/acked-c.ndjson" \
        --rest "$TMP/rest" "${PAIRS[@]}" >"$TMP/p1.out"
    grep -v '^refused_at' "$TMP/p1.out"
    refused_at=$(sed -n 's/^refused_at //p' "$TMP/p1.out")
    # No retry can succeed until the test frees space: the disk full but
    # for 16 KiB, which the first retry (its counts alone need more) may
    # use and must give back when it fails.
    fill_up
    truncate -s -16K "$MNT/ballast"
    if [ -z "$refused_at" ]; then
        fail diskfull_never_full
        finish
    fi
    ref ref1 "$TMP/acked-q.ndjson" "$TMP/acked-c.ndjson" 1 & # meanwhile
    ref1=$!
    checks outage "$SRV_URL" "$refused_at" 12
    helper state-files "$D" "$TMP/at-outage.json"
    follow 2
    check diskfull_followed_lines_wait helper wait-metric "$SRV_URL" ctrd_ingest_queue_bytes \
        "$(cat "$TMP/f/q2.ndjson" "$TMP/f/c2.ndjson" | wc -c)" "$COUNTS_S"
    wait "$ref1"
    check diskfull_reads_while_full helper counts "$SRV_URL" "$TMP/ref1.json" 0 \
        --ads-of "$TMP/ref-all.json"
    client snapshot "$SRV_URL" "$TMP/sample.json" "$TMP/snap1.json"
    check diskfull_read_api_while_full client check-snapshot "$TMP/ref1.json" \
        "$TMP/sample.json" "$TMP/snap1.json"
    check diskfull_still_failing helper wait-metric "$SRV_URL" ctrd_writes_failing 1 1
    alive diskfull_alive_while_full df_a
    grep -m1 "refusing records" "$TMP/df_a.log"

    # Space again: ingest resumes by itself; the refused bodies again.
    free_space
    check diskfull_resumes helper wait-metric "$SRV_URL" ctrd_writes_failing 0 "$RESUME_S"
    check diskfull_failed_retries_leave_nothing helper leftovers "$D" "$TMP/at-outage.json"
    check diskfull_ready_again client wait-ready "$SRV_URL" 5
    mapfile -t REST <"$TMP/rest"
    checks post "$SRV_URL" "$TMP/p2.json" diskfull_repost_refused "${REST[@]}"
    ref ref2 "$TMP/hq.ndjson" "$TMP/hc.ndjson" 2
    check diskfull_exact_after_resume helper counts "$SRV_URL" "$TMP/ref2.json" "$COUNTS_S"
    client snapshot "$SRV_URL" "$TMP/sample.json" "$TMP/snap2.json"
    check diskfull_read_api_after_resume client check-snapshot "$TMP/ref2.json" \
        "$TMP/sample.json" "$TMP/snap2.json"
    helper acked "$TMP/acked.json" "$TMP/p1.json" "$TMP/p2.json"
    check diskfull_answers_exact client check-ingest "$TMP/ref-http.json" "$TMP/acked.json"
    checks post "$SRV_URL" "$TMP/p3.json" diskfull_repost_all "${PAIRS[@]}"
    check diskfull_repost_all_answers client check-ingest --repost "$TMP/ref-http.json" \
        "$TMP/p3.json"
    client snapshot "$SRV_URL" "$TMP/sample.json" "$TMP/snap3.json"
    check diskfull_repost_all_changes_nothing client same-snapshot "$TMP/snap2.json" \
        "$TMP/snap3.json"
    check diskfull_repost_all_exact helper counts "$SRV_URL" "$TMP/ref2.json" 0

    # kill -9: the directory verifies; a restart on a disk full again
    # recovers (writing nothing) and counts the same.
    kill -9 "$SRV_PID"
    wait_exit "$SRV_PID"
    check diskfull_verify_after_kill9 ctrd verify --data "$D"
    fill_up
fi
if [ -n "${refused_at:-}" ] && start_server df_b "$D" "${SERVE_ARGS[@]}"; then
    check diskfull_kill9_restart_exact helper counts "$SRV_URL" "$TMP/ref2.json" 0
    client snapshot "$SRV_URL" "$TMP/sample.json" "$TMP/snap4.json"
    check diskfull_kill9_restart_read_api client check-snapshot "$TMP/ref2.json" \
        "$TMP/sample.json" "$TMP/snap4.json"

    # 2. Followed lines while full: part 3's write fails (held), part 4
    # is read meanwhile (queued); both count once writes succeed.
    follow 3
    check diskfull_follow_write_fails helper wait-metric "$SRV_URL" ctrd_writes_failing 1 \
        "$COUNTS_S"
    follow 4
    check diskfull_follow_queued helper wait-metric "$SRV_URL" ctrd_ingest_queue_bytes 1 \
        "$COUNTS_S" --at-least
    check diskfull_follow_nothing_counted_while_full helper counts "$SRV_URL" \
        "$TMP/ref2.json" 0
    checks post "$SRV_URL" "$TMP/p5.json" diskfull_follow_full_post --expect 507 "${PAIRS[0]}"
    free_space
    check diskfull_follow_resumes helper wait-metric "$SRV_URL" ctrd_writes_failing 0 \
        "$RESUME_S"
    ref ref3 "$TMP/hq.ndjson" "$TMP/hc.ndjson" 4
    check diskfull_follow_counted_once helper counts "$SRV_URL" "$TMP/ref3.json" "$COUNTS_S"

    # 3. SIGTERM while writes fail, followed lines held and queued.
    fill_up
    follow 5
    check diskfull_sigterm_write_fails helper wait-metric "$SRV_URL" ctrd_writes_failing 1 \
        "$COUNTS_S"
    follow 6
    check diskfull_sigterm_queued helper wait-metric "$SRV_URL" ctrd_ingest_queue_bytes 1 \
        "$COUNTS_S" --at-least
    stop_server diskfull_sigterm_while_full_exit0
    free_space
    check diskfull_verify_after_sigterm ctrd verify --data "$D"
fi
if [ -n "${refused_at:-}" ] && start_server df_c "$D" "${SERVE_ARGS[@]}"; then
    check diskfull_sigterm_restart_counted_once helper counts "$SRV_URL" \
        "$TMP/ref-all.json" "$COUNTS_S"
    stop_server diskfull_final_exit0
    ctrd query --data "$D" --all --format json >"$TMP/all-serve.json" 2>"$TMP/query.err" ||
        echo "query --all: $(head -2 "$TMP/query.err")"
    check diskfull_serve_query_all compare totals "$TMP/ref-all.json" "$TMP/all-serve.json"
fi
rm -rf "$D"

# 4. A checkpoint's write fails: answered requests stay counted, the next
# are refused, and it resumes as above. A checkpoint after every request,
# and requests of 5 lines: an append to the log needs at most one more
# page of the tmpfs, a checkpoint one for each of its new files (run,
# marks, counts delta, pending clicks, MANIFEST) and now and then a new
# counts snapshot; so as the disk fills, a checkpoint is the first write
# to find it full.
K="$MNT/ckpt"
KPAIRS=()
mkdir "$TMP/k"
for i in $(seq -w 0 23); do
    split -l 5 -d -a 3 --additional-suffix=.ndjson "$TMP/h/q$i.ndjson" "$TMP/k/q$i-"
    split -l 5 -d -a 3 --additional-suffix=.ndjson "$TMP/h/c$i.ndjson" "$TMP/k/c$i-"
    for f in "$TMP/k/q$i-"*; do [ -e "$f" ] && KPAIRS+=("queries:$f"); done
    for f in "$TMP/k/c$i-"*; do [ -e "$f" ] && KPAIRS+=("clicks:$f"); done
done
if start_server df_k "$K" --checkpoint-every 1; then
    fill_leaving 250
    checks post "$SRV_URL" "$TMP/k1.json" diskfull_ckpt --until-refused 1 \
        --acked-queries "$TMP/k-acked-q.ndjson" --acked-clicks "$TMP/k-acked-c.ndjson" \
        --rest "$TMP/k-rest" "${KPAIRS[@]}" >"$TMP/k1.out"
    grep -v '^refused_at' "$TMP/k1.out"
    line=$(grep -m1 "refusing records" "$TMP/df_k.log")
    echo "$line"
    if grep -qF "cannot write $K/" <<<"$line"; then pass diskfull_ckpt_failed; else
        fail diskfull_ckpt_failed "not a checkpoint's write: $line"; fi
    reference --queries "$TMP/k-acked-q.ndjson" --clicks "$TMP/k-acked-c.ndjson" \
        --out-json "$TMP/ref-k1.json"
    check diskfull_ckpt_reads_while_full helper counts "$SRV_URL" "$TMP/ref-k1.json" 0 \
        --ads-of "$TMP/ref-http.json"
    free_space
    check diskfull_ckpt_resumes helper wait-metric "$SRV_URL" ctrd_writes_failing 0 "$RESUME_S"
    mapfile -t REST <"$TMP/k-rest"
    checks post "$SRV_URL" "$TMP/k2.json" diskfull_ckpt_repost_refused "${REST[@]}"
    check diskfull_ckpt_exact_after_resume helper counts "$SRV_URL" "$TMP/ref-http.json" 0
    stop_server diskfull_ckpt_exit0
fi
echo "serve scenarios took $(($(now_ms) - start)) ms"
rm -rf "$K"

# 5. Batch ingest on a full disk: every chunk a file, a checkpoint after
# each, so that some are committed before the disk fills.
B="$MNT/batch"
INGEST=(ingest --data "$B" --checkpoint-every 1 --queries "${HQ[@]}" --clicks "${HC[@]}")
fill_leaving 200
ctrd "${INGEST[@]}" >"$TMP/b1.out" 2>"$TMP/b1.err"
rc=$?
if [ "$rc" = 1 ] && [ "$(wc -l <"$TMP/b1.err")" = 1 ] &&
    grep -q "No space left on device" "$TMP/b1.err" && grep -qF "$B/" "$TMP/b1.err"; then
    pass diskfull_batch_exit1_one_line
else
    fail diskfull_batch_exit1_one_line "exit $rc, stderr: $(head -c 400 "$TMP/b1.err")"
fi
cat "$TMP/b1.err"
check diskfull_batch_verify_after_failure ctrd verify --data "$B"
free_space
ctrd "${INGEST[@]}" >"$TMP/b2.out" 2>"$TMP/b2.err"
rc=$?
if [ "$rc" = 0 ]; then pass diskfull_batch_rerun_exit0; else
    fail diskfull_batch_rerun_exit0 "exit $rc: $(head -c 400 "$TMP/b2.err")"; fi
cat "$TMP/b2.err"
# the rerun resumed: it read fewer query lines than there are
read_q=$(sed -n 's/^ctrd ingest: \([0-9]*\) query lines.*/\1/p' "$TMP/b2.err")
total_q=$(grep -c . "$TMP/hq.ndjson")
if [ -n "$read_q" ] && [ "$read_q" -lt "$total_q" ]; then pass diskfull_batch_rerun_resumes; else
    fail diskfull_batch_rerun_resumes "the rerun read ${read_q:-?} of $total_q query lines"; fi
ctrd query --data "$B" --all --format json >"$TMP/all-batch.json" 2>"$TMP/query.err" ||
    echo "query --all: $(head -2 "$TMP/query.err")"
check diskfull_batch_exact compare totals "$TMP/ref-http.json" "$TMP/all-batch.json"

logs_clean diskfull_logs_clean
finish
