#!/usr/bin/env bash
# Integrity end to end (SPEC §3): damaged data is refused with one line that
# names the file and the offset, exit status 1, and nothing changed on
# disk; it is never "recovered" into different counts.
#  1. A served directory (kill -9 after 25 acknowledged POSTs): a bit
#     flipped in log record 2, in record 10's header, record 10's length
#     changed, 4 KiB zeroed amid the log, the segment deleted, the wal/
#     directory deleted. A restart and `ctrd verify` refuse, naming the
#     segment and the record's offset (or the missing position), and change
#     nothing; `ctrd recover --truncate-wal-at-damage` drops exactly the
#     damaged record and all after it, and says so; the restarted service
#     then serves the reference's counts of the requests before the
#     damaged record.
#  2. Torn tails (the last record cut short; zeros after it): verify notes
#     them, the restart cuts them, says so, and serves every record before
#     them.
#  3. MANIFEST deleted (batch and served directories): ingest and serve
#     refuse ("ctrd files but no MANIFEST") and touch nothing.
#  4. A directory that is not ctrd's: ingest and serve refuse and create
#     nothing, not even a LOCK.
#  5. Each file of a checkpointed batch directory (a run, a marks file,
#     pending clicks, the counts' snapshot and a delta, terms.dat,
#     MANIFEST) with a bit flipped at several positions (the issue's rows
#     among them: a count, a term's byte, a marked pair), cut to half,
#     deleted: ingest (the same inputs again), query, serve and verify
#     refuse with one line naming the file (sealed files and terms.dat:
#     and where), recover refuses too, and nothing changes; with the file
#     restored, verify is clean and the counts are those of before.
#  6. `ctrd verify` on clean directories (batch, served) exits 0 and says
#     so; on a directory a running server holds it refuses ("in use"), and
#     so does recover.
# Every command expected to refuse is bounded (REFUSE_S); every server wait
# by serve_lib.sh.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"

REFUSE_S=30 # bound of a command expected to refuse at once
damage() { python3 "$E2E_DIR/damage.py" "$@"; }

# run NAME ARGS...: ctrd ARGS, stdout in $TMP/NAME.out, stderr in
# $TMP/NAME.err, its status in RC. Memory errors and undefined behaviour
# (sanitizer builds) are problems.
run() {
    local name="$1"
    shift
    CTRD_TIMEOUT="$REFUSE_S" ctrd "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"
    RC=$?
    sanitizer_clean "$name"
}
sanitizer_clean() {
    ! grep -qE "Sanitizer|runtime error:" "$TMP/$1.err" ||
        problem "$1: $(grep -m1 -E "Sanitizer|runtime error:" "$TMP/$1.err")"
}

# serve_once NAME DIR: `ctrd serve` on DIR and any free port, expected to
# refuse; output and RC as run's (137 when it got ready instead, or was
# still running after REFUSE_S).
serve_once() {
    local name="$1" pid deadline=$(($(date +%s) + REFUSE_S))
    "$CTRD" serve --data "$2" --listen 127.0.0.1:0 >"$TMP/$name.out" 2>"$TMP/$name.err" &
    pid=$!
    bg_track "$pid"
    while ! exited "$pid"; do
        if grep -qs "ctrd serve: ready" "$TMP/$name.err" || [ "$(date +%s)" -ge "$deadline" ]; then
            kill -9 "$pid"
            break
        fi
        sleep 0.02
    done
    wait "$pid" 2>/dev/null
    RC=$?
    sanitizer_clean "$name"
}

# The problems of the current case, reported in one FAIL line by verdict.
PROBLEMS=()
problem() { PROBLEMS+=("$*"); }
verdict() {
    if [ ${#PROBLEMS[@]} = 0 ]; then pass "$1"; else
        fail "$1" "$(printf '%s; ' "${PROBLEMS[@]}" | head -c 1500)"; fi
    PROBLEMS=()
}

# says_position LINE POS: LINE names a place that holds byte POS: "bytes
# A..B" with A <= POS <= B, or "offset N" of the structure that holds it
# (a term record of at most 520 bytes, a 24-byte trailer): N <= POS <
# N + 1024.
says_position() {
    local n a b
    while read -r n; do
        [ -n "$n" ] && [ "$n" -le "$2" ] && [ "$2" -lt $((n + 1024)) ] && return 0
    done < <(grep -oE 'offset [0-9]+' <<<"$1" | cut -d' ' -f2)
    while read -r a b; do
        [ -n "$a" ] && [ "$a" -le "$2" ] && [ "$2" -le "$b" ] && return 0
    done < <(grep -oE 'bytes [0-9]+\.\.[0-9]+' <<<"$1" | sed 's/bytes //; s/\.\./ /')
    return 1
}

# expect NAME STATUS [--last] [--pos P] [--size S] [TEXT...]: the last run
# exited STATUS; with more arguments, its stderr is exactly one line (--last:
# its last line is the one) holding every TEXT; --pos: naming where byte P
# is (says_position); --size: saying the file is S bytes long ("S bytes" or
# "offset S").
expect() {
    local name="$1" status="$2" last=0 pos="" size="" line
    shift 2
    if [ "$RC" != "$status" ]; then
        problem "$name: exit $RC, expected $status ($(tail -1 "$TMP/$name.err" | head -c 300))"
        return
    fi
    while [ $# -gt 0 ]; do
        case "$1" in
        --last) last=1 ;;
        --pos) pos="$2" && shift ;;
        --size) size="$2" && shift ;;
        *) break ;;
        esac
        shift
    done
    [ $# = 0 ] && [ -z "$pos$size" ] && return
    line=$(tail -1 "$TMP/$name.err")
    if [ "$last" = 0 ] && [ "$(wc -l <"$TMP/$name.err")" != 1 ]; then
        problem "$name: $(wc -l <"$TMP/$name.err") lines on stderr: $(head -c 300 "$TMP/$name.err")"
        return
    fi
    local text
    for text in "$@"; do
        [[ "$line" == *"$text"* ]] || problem "$name: does not say '$text': $line"
    done
    if [ -n "$pos" ] && ! says_position "$line" "$pos"; then
        problem "$name: names no place that holds byte $pos: $line"
    fi
    if [ -n "$size" ] && ! grep -qE "\b$size bytes\b|offset $size\b" <<<"$line"; then
        problem "$name: does not say the file is $size bytes long: $line"
    fi
}

# fingerprint DIR OUT: every directory and file under DIR, files with their
# SHA-256, one a line.
fingerprint() {
    (
        cd "$1" &&
            { find . -mindepth 1 -type d -printf 'directory  %p\n'
              find . -mindepth 1 ! -type d ! -type f -printf 'other  %p\n'
              find . -type f -exec sha256sum {} +; } | sort -k2
    ) >"$2"
}
EMPTY_SHA256=$(sha256sum </dev/null | cut -c1-64)
# unchanged WHAT BEFORE DIR [strict]: DIR is as fingerprinted in BEFORE, but
# for an empty LOCK that did not exist (unless strict).
unchanged() {
    local what="$1" before="$2" dir="$3"
    fingerprint "$dir" "$TMP/after.fp"
    if [ "${4:-}" != strict ] && ! grep -q ' \./LOCK$' "$before"; then
        grep -vxF "$EMPTY_SHA256  ./LOCK" "$TMP/after.fp" >"$TMP/after-nolock.fp"
        mv "$TMP/after-nolock.fp" "$TMP/after.fp"
    fi
    cmp -s "$before" "$TMP/after.fp" ||
        problem "$what changed the directory: $(diff "$before" "$TMP/after.fp" | grep '^[<>]' |
            head -4 | tr '\n' ' ')"
}

# The served log's size: the fast tier's; tests/soak/test_damage_big.sh
# runs this on 2.5 times as much, and flips the content of sealed files in
# the middle and at the end too (DAMAGE_EVERY_POSITION=1).
RATE="${DAMAGE_QUERIES_PER_SEC:-40}"
G="$TMP/gen"
if ! ctrd gen --out "$G/serve" --queries-per-sec "$RATE" --duration 200s --seed 31 --tricky \
    >"$TMP/gen.out" 2>&1 ||
    ! ctrd gen --out "$G/batch" --queries-per-sec 100 --duration 40s --seed 32 --tricky \
        >"$TMP/gen.out" 2>&1; then
    fail damage_gen "$(head -3 "$TMP/gen.out")"
    finish
fi

# ---- 1, 2: the write-ahead log of a served directory ----

# 20 query chunks and 5 click chunks (fewer if one is empty), posted one at
# a time: the log holds one record per request, in this order (a click
# chunk after every fourth query chunk, from the first on).
mkdir "$TMP/qc" "$TMP/cc"
split -n l/20 -d -a 2 --additional-suffix=.ndjson "$G/serve/queries.ndjson" "$TMP/qc/q"
split -n l/5 -d -a 2 --additional-suffix=.ndjson "$G/serve/clicks.ndjson" "$TMP/cc/c"
# (an empty chunk, after a long tricky line, is no request)
find "$TMP/qc" "$TMP/cc" -empty -delete
QCHUNKS=("$TMP"/qc/*) CCHUNKS=("$TMP"/cc/*)
ITEMS=()
for i in "${!QCHUNKS[@]}"; do
    ITEMS+=("q:${QCHUNKS[$i]}")
    [ $((i % 4)) = 0 ] && [ $((i / 4)) -lt ${#CCHUNKS[@]} ] && ITEMS+=("c:${CCHUNKS[$((i / 4))]}")
done
echo "posting $(wc -l <"$G/serve/queries.ndjson") query and" \
    "$(wc -l <"$G/serve/clicks.ndjson") click lines in ${#ITEMS[@]} requests"
reference --queries "$G/serve/queries.ndjson" --clicks "$G/serve/clicks.ndjson" \
    --out-json "$TMP/ref-${#ITEMS[@]}.json"
client sample "$TMP/ref-${#ITEMS[@]}.json" "$TMP/sample.json" 5

SV="$TMP/served"
start_server serve_w "$SV" || finish
check damage_serve_posts damage post "$SRV_URL" "$TMP/posts.json" "${ITEMS[@]}"
# 6: verify and recover refuse a directory a running server holds
run verify_held verify --data "$SV"
expect verify_held 1 "in use"
run recover_held recover --data "$SV" --truncate-wal-at-damage
expect recover_held 1 "in use"
verdict damage_verify_recover_refuse_in_use
kill -9 "$SRV_PID"
wait_exit "$SRV_PID"
expect_exit damage_serve_killed 137
if ! damage wal-map "$SV" "$TMP/posts.json" "$TMP/map.json"; then
    fail damage_wal_map "the log is not the posted requests"
    finish
fi
pass damage_wal_map
run verify_served verify --data "$SV"
expect verify_served 0
grep -q ": clean (" "$TMP/verify_served.out" ||
    problem "verify does not say clean: $(cat "$TMP/verify_served.out")"
verdict damage_verify_clean_served

# served_counts NAME DIR K: `ctrd serve` on DIR starts and serves the
# reference's counts of the first K requests; after a SIGTERM `ctrd query
# --all` gives them all too. The server's stderr is $TMP/NAME.log.
served_counts() {
    local name="$1" dir="$2" k="$3" ref="$TMP/ref-$3.json"
    if [ ! -e "$ref" ]; then
        damage prefix "$TMP/posts.json" "$k" "$TMP/pq.ndjson" "$TMP/pc.ndjson"
        reference --queries "$TMP/pq.ndjson" --clicks "$TMP/pc.ndjson" --out-json "$ref"
    fi
    start_server "$name" "$dir" || return
    client snapshot "$SRV_URL" "$TMP/sample.json" "$TMP/snap.json"
    check "${name}_served_counts" client check-snapshot "$ref" "$TMP/sample.json" "$TMP/snap.json"
    stop_server "${name}_exit0"
    ctrd query --data "$dir" --all --format json >"$TMP/all.json" 2>"$TMP/q.err" ||
        echo "query --all: $(head -2 "$TMP/q.err")"
    check "${name}_all_counts" compare totals "$ref" "$TMP/all.json"
}

# wal_damage CASE: row 1 for one damage of the log (damage.py wal-damage).
wal_damage() {
    local c="$1" d="$TMP/w-$1" env at KEPT OFF POS INTACT DROP SEG
    rm -rf "$d"
    cp -a "$SV" "$d"
    if ! env=$(damage wal-damage "$d" "$TMP/map.json" "$c"); then
        fail "damage_wal_${c}" "$env"
        return
    fi
    eval "$env"
    fingerprint "$d" "$TMP/before.fp"
    # where the damage is, as every refusal must say
    if [ "$c" = delete ] || [ "$c" = rmdir ]; then
        at=("$d/wal: the log from position $POS" "missing")
    else
        at=("$d/wal/$SEG: offset $OFF:")
    fi
    serve_once serve "$d"
    expect serve 1 --last "${at[@]}"
    run verify verify --data "$d"
    expect verify 1
    grep -qF "damaged: ${at[0]}" "$TMP/verify.out" ||
        problem "verify: no 'damaged: ${at[0]}' line: $(head -3 "$TMP/verify.out")"
    unchanged "serve and verify" "$TMP/before.fp" "$d"
    verdict "damage_wal_${c}_refused"

    run recover recover --data "$d" --truncate-wal-at-damage
    expect recover 0
    grep -qF "dropped the log from position $POS on: $DROP bytes, $INTACT intact records" \
        "$TMP/recover.out" ||
        problem "recover: $(cat "$TMP/recover.out" "$TMP/recover.err" | head -c 400)"
    if [ "$OFF" != 0 ] && ! head -c "$OFF" "$SV/wal/$SEG" | cmp -s - "$d/wal/$SEG"; then
        problem "recover: the segment is not its first $OFF bytes"
    fi
    run verify_repaired verify --data "$d"
    expect verify_repaired 0
    grep -q ": clean (" "$TMP/verify_repaired.out" ||
        problem "verify after recover: $(cat "$TMP/verify_repaired.out")"
    verdict "damage_wal_${c}_recovered"
    echo "wal $c: $KEPT records before the damage"
    served_counts "damage_wal_${c}" "$d" "$KEPT"
    rm -rf "$d"
}
for c in flip2 flip10 len10 zero4k delete rmdir; do
    wal_damage "$c"
done

# torn_tail CASE: row 2.
torn_tail() {
    local c="$1" d="$TMP/t-$1" env KEPT OFF TORN SEG
    rm -rf "$d"
    cp -a "$SV" "$d"
    if ! env=$(damage wal-damage "$d" "$TMP/map.json" "$c"); then
        fail "damage_torn_${c}" "$env"
        return
    fi
    eval "$env"
    fingerprint "$d" "$TMP/before.fp"
    run verify verify --data "$d"
    expect verify 0
    grep -q "^note: .*torn tail of $TORN bytes" "$TMP/verify.out" ||
        problem "verify: no torn-tail note: $(cat "$TMP/verify.out")"
    unchanged verify "$TMP/before.fp" "$d"
    verdict "damage_torn_${c}_verify_notes"
    served_counts "damage_torn_${c}" "$d" "$KEPT"
    if grep -qF "$SEG: cut a torn tail of $TORN bytes at offset $OFF " "$TMP/damage_torn_${c}.log"; then
        pass "damage_torn_${c}_says_cut"
    else
        fail "damage_torn_${c}_says_cut" "$(head -3 "$TMP/damage_torn_${c}.log")"
    fi
    rm -rf "$d"
}
torn_tail cut
torn_tail zeros

# ---- 5, 6: the files of a checkpointed batch directory ----

BQ="$G/batch/queries.ndjson" BC="$G/batch/clicks.ndjson"
BD="$TMP/batch"
reference --queries "$BQ" --clicks "$BC" --out-json "$TMP/ref-batch.json"
if ! ctrd ingest --data "$BD" --queries "$BQ" --clicks "$BC" --checkpoint-every 64K --quiet \
    >"$TMP/ingest.out" 2>&1; then
    fail damage_batch_ingest "$(head -3 "$TMP/ingest.out")"
    finish
fi
ctrd query --data "$BD" --all --format json >"$TMP/golden.json" 2>"$TMP/q.err"
check damage_batch_counts compare totals "$TMP/ref-batch.json" "$TMP/golden.json"
# every kind of file, more than one run, clicks pending
for kind in run marks pending counts countdelta; do
    [ "$(grep -c "^$kind " "$BD/MANIFEST")" -ge "$([ $kind = run ] && echo 2 || echo 1)" ] ||
        problem "the MANIFEST names no (or one) $kind file"
done
[ "$(grep "^pending " "$BD/MANIFEST" | cut -d' ' -f3)" -gt 24 ] || problem "no pending click"
verdict damage_batch_layout
run verify_batch verify --data "$BD"
expect verify_batch 0
grep -q ": clean (" "$TMP/verify_batch.out" || problem "verify: $(cat "$TMP/verify_batch.out")"
verdict damage_verify_clean_batch

# batch_damage LABEL FILE HOW POS: row 5 for one damaged copy of the batch
# directory (damage.py batch-variants).
batch_damage() {
    local label="$1" file="$2" how="$3" pos="$4" d="$TMP/variants/$1" where=()
    # sealed files and terms.dat say where; the MANIFEST is named
    case "$file:$how" in
    MANIFEST:*) ;;
    *:flip) where=(--pos "$pos") ;;
    *:truncate) where=(--size "$pos") ;;
    esac
    local said="$d/$file"
    [ "$file:$how" = MANIFEST:delete ] && said="$d holds ctrd files"
    fingerprint "$d" "$TMP/before.fp"
    run ingest ingest --data "$d" --queries "$BQ" --clicks "$BC" --quiet
    expect ingest 1 "${where[@]}" "$said"
    run query query --data "$d" --all --format json
    expect query 1 "${where[@]}" "$said"
    serve_once serve "$d"
    expect serve 1 "${where[@]}" "$said"
    run verify verify --data "$d"
    expect verify 1
    grep -qF "$said" "$TMP/verify.out" "$TMP/verify.err" ||
        problem "verify does not name $said: $(cat "$TMP/verify.out" "$TMP/verify.err" | head -c 300)"
    run recover recover --data "$d" --truncate-wal-at-damage
    expect recover 1
    unchanged "ingest, query, serve, verify and recover" "$TMP/before.fp" "$d"
    # the file restored: clean, and the counts of before
    cp -p "$BD/$file" "$d/$file"
    run verify_restored verify --data "$d"
    expect verify_restored 0
    run query_restored query --data "$d" --all --format json
    cmp -s "$TMP/query_restored.out" "$TMP/golden.json" ||
        problem "restored: query --all differs from before"
    verdict "damage_batch_$label"
    rm -rf "$d"
}
damage batch-variants "$BD" "$TMP/variants"
while read -r label file how pos; do
    # the fast tier flips a sealed file's content at its start only
    case "$label:${DAMAGE_EVERY_POSITION:-0}" in
    *_flip_content_middle:0 | *_flip_content_end:0) continue ;;
    esac
    batch_damage "$label" "$file" "$how" "$pos"
done <"$TMP/variants/list"

# ---- 3: the MANIFEST deleted, of a batch and of a served directory ----
for d in "$BD" "$SV"; do
    m="$TMP/nomanifest"
    rm -rf "$m"
    cp -a "$d" "$m"
    rm "$m/MANIFEST"
    fingerprint "$m" "$TMP/before.fp"
    run ingest ingest --data "$m" --queries "$BQ" --clicks "$BC" --quiet
    expect ingest 1 "$m holds ctrd files" "but no MANIFEST"
    unchanged ingest "$TMP/before.fp" "$m"
    serve_once serve "$m"
    expect serve 1 "$m holds ctrd files" "but no MANIFEST"
    unchanged serve "$TMP/before.fp" "$m"
    verdict "damage_no_manifest_$(basename "$d")"
done

# ---- 4: a directory that is not ctrd's ----
F="$TMP/foreign"
mkdir -p "$F/sub"
echo "my notes" >"$F/notes.txt"
echo "more" >"$F/sub/x"
fingerprint "$F" "$TMP/before.fp"
run ingest ingest --data "$F" --queries "$BQ" --clicks "$BC" --quiet
expect ingest 1 "$F is not a ctrd data directory"
unchanged ingest "$TMP/before.fp" "$F" strict
serve_once serve "$F"
expect serve 1 "$F is not a ctrd data directory"
unchanged serve "$TMP/before.fp" "$F" strict
verdict damage_foreign_dir_refused

logs_clean damage_logs_clean
finish
