#!/usr/bin/env bash
# `ctrd serve --follow-queries Q --follow-clicks C` end to end (SPEC §3, §4:
# "tails files like a log shipper, surviving rotation"), through the real
# binary, against the reference run over exactly the lines written.
# Generated logs with tricky records are appended to Q and C in chunks, with
# short pauses, by a writer that does what logging programs do:
# - starts before the files exist;
# - writes a line in two pieces, a pause between them;
# - rotates Q: renames it to Q.1, goes on writing to its open handle, then
#   creates a new Q and writes there;
# - truncates C in copytruncate style (copy, truncate to 0, append again)
#   once everything in it was read.
# Each time the writer pauses, /metrics must say that every line written
# was read exactly once (query records by outcome, clicks joined, duplicate,
# rejected, waiting) and GET /v1/ads/{id}/terms of every ad must equal the
# reference's counts. Then: kill -9, lines appended while the server is
# down, restart: those lines are read, nothing twice; SIGTERM (exit 0) and
# restart read nothing again and then follow on; after the last SIGTERM
# `ctrd query --all` equals the reference. Every wait is bounded.
. "$(dirname "$0")/lib.sh"
. "$E2E_DIR/serve_lib.sh"
export LC_ALL=C # lines are bytes

FOLLOW_S=20 # bound of every wait for the followed lines to be read
helper() { timeout -s KILL "$CLIENT_S" python3 "$E2E_DIR/follow_sse.py" "$@"; }

G="$TMP/gen"
if ! ctrd gen --out "$G" --queries-per-sec 20 --duration 5m --seed 7 --ads 200 \
    --terms 400 --tricky >"$TMP/gen.out" 2>&1; then
    fail follow_gen "$(head -3 "$TMP/gen.out")"
    finish
fi
SQ="$G/queries.ndjson" SC="$G/clicks.ndjson" # the source of every line
NQ=$(wc -l <"$SQ") NC=$(wc -l <"$SC")
F="$TMP/logs" D="$TMP/data"
mkdir "$F"
Q="$F/queries.ndjson" C="$F/clicks.ndjson"
WQ="$TMP/written-queries.ndjson" WC="$TMP/written-clicks.ndjson" # all written
: >"$WQ"
: >"$WC"

# lines SRC FROM TO: lines FROM..TO of SRC.
lines() { sed -n "$2,$3p" "$1"; }
# put_q FROM TO / put_c FROM TO: appends source lines to Q / C (and to the
# record of what was written).
put_q() { lines "$SQ" "$1" "$2" | tee -a "$WQ" >>"$Q"; }
put_c() { lines "$SC" "$1" "$2" | tee -a "$WC" >>"$C"; }
# feed QFROM QTO CFROM CTO N: both ranges in N chunks each, alternately,
# 50 ms apart.
feed() {
    local qa=$1 qb=$2 ca=$3 cb=$4 n=$5 i
    for ((i = 0; i < n; i++)); do
        put_q $((qa + (qb - qa + 1) * i / n)) $((qa + (qb - qa + 1) * (i + 1) / n - 1))
        put_c $((ca + (cb - ca + 1) * i / n)) $((ca + (cb - ca + 1) * (i + 1) / n - 1))
        sleep 0.05
    done
}
# in_two SRC N DEST RECORD: line N of SRC appended to DEST in two pieces,
# 300 ms apart (a follower must wait for the LF).
in_two() {
    lines "$1" "$2" "$2" >"$TMP/line"
    head -c 7 "$TMP/line" >>"$3"
    sleep 0.3
    tail -c +8 "$TMP/line" >>"$3"
    cat "$TMP/line" >>"$4"
}
# snapshot NAME: the reference over everything written so far.
snapshot() { reference --queries "$WQ" --clicks "$WC" --out-json "$TMP/$1.json"; }
# read_once NAME REF [BEFORE]: PASS NAME when every line written is read,
# once (BEFORE: the reference of the lines written before this server
# started), and the counts of every ad equal REF's.
read_once() {
    local name="$1" ref="$TMP/$2.json" before=()
    [ -n "${3:-}" ] && before=(--before "$TMP/$3.json")
    check "${name}_read_once" helper wait-follow "$SRV_URL" "$ref" "${before[@]}" "$FOLLOW_S"
    check "${name}_counts" helper check-counts "$SRV_URL" "$ref" 10
}
echo "generated: $NQ query and $NC click lines"

# 1. Following from before the files exist: chunks, a line in two pieces,
# a rotation of Q with writes to the renamed file, a copytruncate of C.
start=$(now_ms)
if start_server follow_a "$D" --follow-queries "$Q" --follow-clicks "$C"; then
    feed 1 1500 1 120 6
    in_two "$SQ" 1501 "$Q" "$WQ"
    in_two "$SC" 121 "$C" "$WC"
    # The writer's handle on Q: lines, a pause (the follower is at the end),
    # the rename, lines to the renamed file through the handle, a pause
    # (the path is missing: the follower stays on the old file), more
    # lines, and at once the new Q (the old file has unread lines).
    exec 3>>"$Q"
    lines "$SQ" 1502 2000 | tee -a "$WQ" >&3
    sleep 0.3
    mv "$Q" "$F/queries.ndjson.1"
    lines "$SQ" 2001 2200 | tee -a "$WQ" >&3
    put_c 122 160
    sleep 0.3
    lines "$SQ" 2201 2400 | tee -a "$WQ" >&3
    put_q 2401 2450
    exec 3>&-
    put_c 161 200
    feed 2451 3600 201 260 4
    snapshot ref1
    read_once follow_rotation ref1

    # copytruncate, once every line of C was read (read_once): a copy, the
    # truncation, at once a few lines (shorter than what was read), a pause
    # (pollers notice a truncation only while the file is shorter than
    # their position), then chunks.
    cp "$C" "$F/clicks.ndjson.1"
    : >"$C"
    put_c 261 265
    sleep 0.3
    feed 3601 4200 266 340 4
    snapshot ref2
    read_once follow_copytruncate ref2

    # 2. kill -9, lines appended while down, restart.
    kill -9 "$SRV_PID"
    wait_exit "$SRV_PID"
    feed 4201 5000 341 420 2
    snapshot ref3
    if start_server follow_b "$D" --follow-queries "$Q" --follow-clicks "$C"; then
        read_once follow_kill9_restart ref3 ref2

        # 3. SIGTERM, restart: nothing read again; then following on.
        stop_server follow_sigterm_exit0
        if start_server follow_c "$D" --follow-queries "$Q" --follow-clicks "$C"; then
            read_once follow_sigterm_restart ref3 ref3
            feed 5001 "$NQ" 421 "$NC" 4
            snapshot ref4
            read_once follow_after_restarts ref4 ref3
            stop_server follow_c_exit0
            ctrd query --data "$D" --all --format json >"$TMP/all.json" 2>"$TMP/query.err" ||
                echo "query --all: $(head -2 "$TMP/query.err")"
            check follow_query_all compare totals "$TMP/ref4.json" "$TMP/all.json"
        fi
    fi
fi
echo "follow scenario took $(($(now_ms) - start)) ms"
logs_clean follow_logs_clean
finish
