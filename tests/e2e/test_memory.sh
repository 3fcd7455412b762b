#!/usr/bin/env bash
# --memory (issue 11): the store's RAM is bounded by configuration, and no
# count changes. A log of several hours (many minutes of counts) is
# ingested with the least budget (16M: the counts keep 6M in RAM and spill
# the rest to a scratch file, the runs' pages are released, commits come
# early) and with the default (1G: nothing spills at this size):
# - both hold the same counts, and the small budget's peak RSS is lower;
# - `ctrd serve --memory 16M` loads by spilling, takes the rest of the
#   clicks (late clicks read spilled minutes back into RAM) and answers
#   /terms and /series exactly as the reference and the unbounded server;
#   its metrics show the spill and the counts' RAM within their share;
# - the spill file has no name in the data directory (only the process
#   holds it), so kill -9 leaves nothing behind (`ctrd verify` is clean)
#   and the restart answers the same;
# - a flipped byte in the spill file makes the reads of the spilled groups
#   it hits fail with 500 naming counts.spill, never a different count;
#   the server goes on, and a restart (which spills anew from the
#   committed counts) answers exactly again.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"

G="$TMP/gen"
ctrd gen --out "$G" --queries-per-sec 15 --duration 4h --seed 21 >/dev/null
Q="$G/queries.ndjson" C="$G/clicks.ndjson"
half=$(($(wc -l <"$C") / 2))
head -n "$half" "$C" >"$TMP/c1.ndjson"
tail -n +"$((half + 1))" "$C" >"$TMP/c2.ndjson"
reference --queries "$Q" --clicks "$C" --out-json "$TMP/ref.json"
client sample "$TMP/ref.json" "$TMP/sample.json" 5

# peak_rss_kb CMD...: runs CMD, prints its peak RSS in KiB (its status
# fails the caller).
peak_rss_kb() {
    python3 -c '
import resource, subprocess, sys
rc = subprocess.run(sys.argv[1:]).returncode
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(rc)' "$@"
}

for run in small:16M default:1G; do
    name=${run%%:*}
    if ! peak_rss_kb "$CTRD" ingest --data "$TMP/$name" --queries "$Q" \
        --clicks "$TMP/c1.ndjson" --memory "${run#*:}" --quiet \
        >"$TMP/$name.rss" 2>"$TMP/$name.err"; then
        fail "memory_ingest_$name" "$(head -2 "$TMP/$name.err")"
        finish
    fi
    ctrd query --data "$TMP/$name" --all | sort >"$TMP/$name.counts"
done
check memory_ingest_same_counts cmp -s "$TMP/small.counts" "$TMP/default.counts"
rss_small=$(cat "$TMP/small.rss") rss_default=$(cat "$TMP/default.rss")
echo "peak RSS of the ingest: --memory 16M $rss_small KiB, 1G $rss_default KiB"
# (~0.7 here: the counts are about half of the unbounded run's RSS. A
# sanitizer's shadow memory and quarantine make RSS say nothing.)
if grep -q __asan_init "$CTRD"; then
    echo "SKIP memory_ingest_rss_lower: a sanitizer build"
else
    check memory_ingest_rss_lower [ "$((rss_small * 5))" -lt "$((rss_default * 4))" ]
fi

# metric URL NAME: the value of a metric (the whole line's name part).
metric() {
    curl -s "$1/metrics" | awk -v n="$2" '$1 == n { print int($2) }'
}

# spill_fd PID DIR: the /proc path of the process's open file that was in
# DIR but has no name there (the spill file), or nothing.
spill_fd() {
    local fd
    for fd in /proc/"$1"/fd/*; do
        case "$(readlink "$fd")" in "$2"/*" (deleted)") echo "$fd"; return ;; esac
    done
}

# no_spill_names DIR: no file of DIR is a spill file by its name.
no_spill_names() { ! ls "$1" | grep -q spill; }

# The unbounded server: posts the rest of the clicks, keeps its answers.
start_server default "$TMP/default" || finish
curl -s -o /dev/null -w "%{http_code}" --data-binary @"$TMP/c2.ndjson" \
    -H "Content-Type: application/x-ndjson" "$SRV_URL/v1/clicks" >"$TMP/post.status"
check memory_default_post [ "$(cat "$TMP/post.status")" = 200 ]
client snapshot "$SRV_URL" "$TMP/sample.json" "$TMP/snap_default.json"
stop_server memory_default_stop

start_server small "$TMP/small" --memory 16M || finish
small_pid=$SRV_PID
check memory_spill_file_unnamed [ -n "$(spill_fd "$SRV_PID" "$TMP/small")" ]
check memory_spill_no_name no_spill_names "$TMP/small"
check memory_spill_file_bytes [ "$(metric "$SRV_URL" ctrd_counts_spill_file_bytes)" -gt 0 ]
spilled=$(metric "$SRV_URL" ctrd_counts_spilled_bytes)
counts_ram=$(metric "$SRV_URL" 'ctrd_memory_bytes{part="counts"}')
echo "after the load: counts in RAM $counts_ram B, spilled $spilled B"
check memory_load_spills [ "${spilled:-0}" -gt 0 ]
check memory_budget_metric [ "$(metric "$SRV_URL" ctrd_memory_budget_bytes)" = $((16 << 20)) ]
curl -s -o /dev/null -w "%{http_code}" --data-binary @"$TMP/c2.ndjson" \
    -H "Content-Type: application/x-ndjson" "$SRV_URL/v1/clicks" >"$TMP/post.status"
check memory_late_clicks_post [ "$(cat "$TMP/post.status")" = 200 ]
client snapshot "$SRV_URL" "$TMP/sample.json" "$TMP/snap_small.json"
check memory_read_api client check-snapshot "$TMP/ref.json" "$TMP/sample.json" \
    "$TMP/snap_small.json"
check memory_same_as_unbounded client same-snapshot "$TMP/snap_default.json" \
    "$TMP/snap_small.json"

# kill -9: the spill file goes with the process.
kill -9 "$small_pid"
wait_exit "$small_pid"
check memory_kill9_leaves_nothing no_spill_names "$TMP/small"
ctrd verify --data "$TMP/small" >"$TMP/verify.out" 2>&1
verify_rc=$?
check memory_verify_clean [ "$verify_rc" = 0 ]
start_server small "$TMP/small" --memory 16M || finish
client snapshot "$SRV_URL" "$TMP/sample.json" "$TMP/snap_restart.json"
check memory_restart_answers client check-snapshot "$TMP/ref.json" "$TMP/sample.json" \
    "$TMP/snap_restart.json"

# Damage to the spill file: reads that meet it fail and say so. A byte
# of every 4 KiB is flipped, so every spilled group the snapshot reads is
# hit.
python3 -c '
import sys
with open(sys.argv[1], "r+b") as f:
    data = bytearray(f.read())
    for at in range(2048, len(data), 4096):
        data[at] ^= 0xff
    f.seek(0); f.write(data)' "$(spill_fd "$SRV_PID" "$TMP/small")"
client snapshot "$SRV_URL" "$TMP/sample.json" "$TMP/snap_damaged.json"
pycheck memory_damage_reported '
import json, sys
snap = json.load(open(sys.argv[1])); good = {json.dumps(x["path"]): x for x in json.load(open(sys.argv[2]))}
bad = [x for x in snap if x["status"] == 500]
assert bad, "no read met the damaged block"
for x in bad:
    assert "counts.spill: offset" in json.dumps(x["body"]), "500 without the spill file named: %r" % x["body"]
for x in snap:
    if x["status"] != 500:
        y = good[json.dumps(x["path"])]
        x["body"].pop("as_of", None) if isinstance(x["body"], dict) else None
        y["body"].pop("as_of", None) if isinstance(y["body"], dict) else None
        assert (x["status"], x["body"]) == (y["status"], y["body"]), "GET %s changed" % x["path"]
print(len(bad), "reads failed naming counts.spill")' "$TMP/snap_damaged.json" "$TMP/snap_restart.json"
check memory_damage_server_alive curl -sf -o /dev/null "$SRV_URL/healthz"
# Its last checkpoint may need the damaged groups (a snapshot of the
# counts): then it fails naming the damage, and exits 1 with the last
# commit intact (the restart replays the log after it).
kill -TERM "$SRV_PID"
wait_exit "$SRV_PID"
if [ "$EXIT_RC" = 0 ] || { [ "$EXIT_RC" = 1 ] &&
    grep -q "counts.spill: offset" "$TMP/small.log"; }; then
    pass memory_damaged_stop
else
    fail memory_damaged_stop "exit status $EXIT_RC: $(tail -1 "$TMP/small.log")"
fi
start_server small "$TMP/small" --memory 16M || finish
client snapshot "$SRV_URL" "$TMP/sample.json" "$TMP/snap_rewritten.json"
check memory_spill_rewritten client check-snapshot "$TMP/ref.json" "$TMP/sample.json" \
    "$TMP/snap_rewritten.json"
stop_server memory_small_stop
check memory_stop_leaves_nothing no_spill_names "$TMP/small"
ctrd query --data "$TMP/small" --all | sort >"$TMP/small.final"
ctrd query --data "$TMP/default" --all | sort >"$TMP/default.final"
check memory_final_counts_equal cmp -s "$TMP/small.final" "$TMP/default.final"
logs_clean memory_logs_clean
finish
