#!/usr/bin/env bash
# ctrd demo: the URL line names a busy ad whose counts the API shows
# growing; malformed lines are rejected and counted in /metrics; clicks
# join; the traffic outlives the first generated part without repeating a
# query; SIGINT stops it all with exit 0, and the data directory it leaves
# is clean and holds at least what the API showed last. A usage error exits
# 2; a data directory that is not ctrd's is refused and nothing is left;
# run again on its data directory, the demo posts new queries, not repeats.
source "$(dirname "$0")/lib.sh"
source "$E2E_DIR/serve_lib.sh"
export TMPDIR="$TMP" # the demo's directory, removed with $TMP

# get URL: the body of GET URL on stdout (non-zero when not 200).
get() {
    python3 -c 'import sys, urllib.request
sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' "$1"
}
# metric NAME_AND_LABELS: the value of one /metrics sample (0 when absent).
metric() {
    get "$URL/metrics" | awk -v k="$1" '$1 == k { v = $2 } END { print v + 0 }'
}
# metric_sum NAME: the sum of a metric's samples.
metric_sum() {
    get "$URL/metrics" | awk -v k="$1" 'index($1, k "{") == 1 { s += $2 } END { print s + 0 }'
}
# totals: "impressions clicks" of the ad, from the API.
totals() {
    get "$URL/v1/ads/$AD/terms?limit=1" | python3 -c 'import json, sys
t = json.load(sys.stdin)["totals"]; print(t["impressions"], t["clicks"])'
}

ctrd demo --help >"$TMP/help"
rc=$?
missing=
for f in "usage: ctrd demo" --data --listen --queries-per-sec --seed --version; do
    grep -q -- "$f" "$TMP/help" || missing="$missing $f"
done
if [ "$rc" = 0 ] && [ -z "$missing" ]; then pass help; else
    fail help "exit $rc, missing:$missing"; fi
check version [ "$(ctrd demo --version)" = "$(ctrd --version)" ]
ctrd demo --queries-per-sec 0 2>"$TMP/usage.log"
rc=$?
check usage_exit_2 [ "$rc" = 2 ]
ctrd demo --listen nowhere 2>>"$TMP/usage.log"
rc=$?
check listen_usage_exit_2 [ "$rc" = 2 ]

mkdir "$TMP/foreign" && echo keep >"$TMP/foreign/notes.txt"
ctrd demo --data "$TMP/foreign" --listen 127.0.0.1:0 >/dev/null 2>"$TMP/foreign.log"
rc=$?
if [ "$rc" = 1 ] && [ "$(ls "$TMP/foreign")" = notes.txt ]; then
    pass foreign_dir_refused
else
    fail foreign_dir_refused "exit $rc: $(tail -1 "$TMP/foreign.log")"
fi
check foreign_leaves_nothing [ -z "$(ls -d "$TMP"/ctrd-demo.* 2>/dev/null)" ]

# start_demo NAME ARGS...: `ctrd demo --listen 127.0.0.1:0 ARGS` in the
# background (stdout in $TMP/NAME.out, stderr in $TMP/NAME.log); reads its
# URL line into URL, AD and DATA (PID: the demo). PASS NAME_url_line, or
# FAIL and the test ends.
start_demo() {
    local name="$1" line deadline=$(($(date +%s) + READY_S))
    shift
    "$CTRD" demo --listen 127.0.0.1:0 "$@" >"$TMP/$name.out" 2>"$TMP/$name.log" &
    PID=$!
    bg_track "$PID"
    until [ -s "$TMP/$name.out" ] || exited "$PID" || [ "$(date +%s)" -ge "$deadline" ]; do
        sleep 0.05
    done
    line=$(head -1 "$TMP/$name.out")
    URL=$(sed -n 's|^ctrd demo: dashboard at \(http://127\.0\.0\.1:[0-9]*\)/?ad=[0-9]*, API at .*/v1/ (data in .*; Ctrl-C stops)$|\1|p' <<<"$line")
    AD=$(sed -n 's|.*/?ad=\([0-9]*\),.*|\1|p' <<<"$line")
    DATA=$(sed -n 's|.*(data in \(.*\); Ctrl-C stops)$|\1|p' <<<"$line")
    if [ -z "$URL" ] || [ -z "$AD" ] || [ -z "$DATA" ]; then
        fail "${name}_url_line" "'$line' $(tail -2 "$TMP/$name.log")"
        finish
    fi
    pass "${name}_url_line"
}

QPS=500
STARTED=$(date +%s%N)
start_demo demo --queries-per-sec $QPS
check data_in_tmpdir [ "$(dirname "$(dirname "$DATA")")" = "$TMP" ]
if get "$URL/v1/advertisers/1/ads" | grep -q "\"$AD\""; then
    pass advertiser_has_ad
else
    fail advertiser_has_ad "advertiser 1 lacks ad $AD"
fi

# The traffic starts as the URL is printed: wait (3 s at most) for the
# first impressions of the ad, then for more.
for _ in $(seq 30); do
    read -r imp1 _ < <(totals)
    [ "${imp1:-0}" -gt 0 ] && break
    sleep 0.1
done
sleep 1.5
read -r imp2 _ < <(totals)
if [ "${imp1:-0}" -gt 0 ] && [ "${imp2:-0}" -gt "${imp1:-0}" ]; then
    pass impressions_grow
else
    fail impressions_grow "impressions $imp1 then $imp2"
fi

rejects=$(metric_sum ctrd_rejects_total)
check rejects_counted [ "$rejects" -gt 0 ]

# Clicks join as they come (most within a minute of their query).
deadline=$(($(date +%s) + 10))
until [ "$(metric 'ctrd_clicks_total{result="joined"}')" -gt 0 ] ||
    [ "$(date +%s)" -ge "$deadline" ]; do
    sleep 0.2
done
joined=$(metric 'ctrd_clicks_total{result="joined"}')
check clicks_joined [ "$joined" -gt 0 ]

# Past the first 10 s part: the second one's queries are new, not repeats.
until [ $(($(date +%s%N) - STARTED)) -ge 13000000000 ]; do sleep 0.2; done
accepted=$(metric 'ctrd_records_total{kind="query",result="accepted"}')
dups=$(metric 'ctrd_records_total{kind="query",result="duplicate"}')
if [ "$accepted" -gt $((QPS * 11)) ] && [ "$dups" -lt $((accepted / 100)) ]; then
    pass second_part_new
else
    fail second_part_new "$accepted queries accepted, $dups duplicates"
fi

read -r last_imp last_clicks < <(totals)
kill -INT "$PID"
EXIT_S=10
wait_exit "$PID"
expect_exit sigint_exit_0 0
check server_stopped_cleanly grep -q "^ctrd serve: stopped cleanly" "$TMP/demo.log"
if ctrd verify --data "$DATA" >"$TMP/verify.out" 2>&1; then
    pass verify_clean
else
    fail verify_clean "$(tail -1 "$TMP/verify.out")"
fi
read -r q_imp q_clicks < <(ctrd query --data "$DATA" --ad "$AD" --format json |
    python3 -c 'import json, sys
t = json.load(sys.stdin)["totals"]; print(t["impressions"], t["clicks"])')
if [ "${q_imp:-0}" -ge "${last_imp:-1}" ] && [ "${q_clicks:-0}" -ge "${last_clicks:-1}" ]; then
    pass query_has_api_totals
else
    fail query_has_api_totals "query $q_imp/$q_clicks, API last $last_imp/$last_clicks"
fi
check no_scratch_left [ ! -e "$(dirname "$DATA")/gen" ]

# Run again on that data directory: its queries are new ones, not repeats.
start_demo again --data "$DATA" --queries-per-sec $QPS
sleep 2
accepted=$(metric 'ctrd_records_total{kind="query",result="accepted"}')
dups=$(metric 'ctrd_records_total{kind="query",result="duplicate"}')
if [ "$accepted" -gt "$QPS" ] && [ "$dups" -lt $((accepted / 100)) ]; then
    pass again_new_queries
else
    fail again_new_queries "$accepted queries accepted, $dups duplicates"
fi
kill -TERM "$PID"
wait_exit "$PID"
expect_exit again_sigterm_exit_0 0
logs_clean sanitizers_quiet
finish
