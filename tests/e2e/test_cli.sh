#!/usr/bin/env bash
# The command line (SPEC §4): exit status 0 ok / 1 runtime failure / 2 usage
# error with one clear line on stderr; --help of every command; queries on
# an empty directory and on an unknown ad give zero totals; exact answers in
# json, csv and table form, with --limit and --from/--to; --click-timeout;
# stdin input; duration and size suffixes; a busy data directory.
. "$(dirname "$0")/lib.sh"

D="$TMP/data"
Q="$TMP/q.ndjson"
C="$TMP/c.ndjson"
printf '%s\n' \
    '{"time":1763805600123,"query_id":"7","query":"Running  Shoes","ad_ids":[1001,2002]}' \
    '{"time":1763805660000,"query_id":8,"query":"socks","ad_ids":[1001]}' \
    '{"time":1763805660000,"query_id":9,"query":"running shoes","ad_ids":[1001]}' >"$Q"
printf '%s\n' '{"time":1763805612000,"query_id":7,"ad_id":2002,"click_id":"c-88"}' >"$C"

# expect_status NAME WANT ARGS...: runs ctrd ARGS, checks the exit status;
# for WANT 1 or 2, stderr must be one line "ctrd ...: message" (a second
# line may only be a hint to --help) and stdout empty.
expect_status() {
    local name="$1" want="$2"
    shift 2
    ctrd "$@" >"$TMP/out" 2>"$TMP/err" </dev/null
    local rc=$? why=""
    if [ "$rc" != "$want" ]; then
        why="exit $rc, expected $want"
    elif [ "$want" != 0 ]; then
        local n
        n=$(wc -l <"$TMP/err")
        if ! head -1 "$TMP/err" | grep -q '^ctrd[ :]..*'; then
            why="stderr does not start with 'ctrd ...': $(head -c 200 "$TMP/err")"
        elif [ "$n" -gt 2 ] || { [ "$n" -eq 2 ] && ! sed -n 2p "$TMP/err" | grep -q -- '--help'; }; then
            why="stderr has $n lines: $(head -c 300 "$TMP/err" | tr '\n' '|')"
        elif [ -s "$TMP/out" ]; then
            why="stdout not empty: $(head -c 200 "$TMP/out")"
        fi
    fi
    if [ -z "$why" ]; then pass "$name"; else fail "$name" "ctrd $* -> $why"; fi
}

# --help: top level, then every command it lists, which must include the
# batch ones; each help names every flag of the contract.
expect_status cli_help 0 --help
cmds=$(ctrd --help 2>/dev/null | awk '/^commands:/ {on = 1; next} on && /^  [a-z]/ {print $1}')
for c in ingest query gen; do
    echo " $cmds " | tr '\n' ' ' | grep -q " $c " || fail cli_help_lists_$c "ctrd --help does not list $c"
done
for c in $cmds; do
    expect_status "cli_help_$c" 0 "$c" --help
    grep -q "ctrd $c" "$TMP/out" || fail "cli_help_${c}_usage" "no 'ctrd $c' usage line"
done
help_names_flags() {
    local cmd="$1" missing=""
    shift
    ctrd "$cmd" --help >"$TMP/help" 2>&1
    for f in "$@"; do grep -q -- "$f" "$TMP/help" || missing="$missing $f"; done
    if [ -z "$missing" ]; then pass "cli_help_${cmd}_flags"; else fail "cli_help_${cmd}_flags" "missing:$missing"; fi
}
help_names_flags ingest --data --queries --clicks --format --report --join-window \
    --click-timeout --checkpoint-every --quiet
help_names_flags query --data --ad --all --from --to --limit --format
help_names_flags gen --out --queries-per-sec --duration --seed --format --tricky

# Usage errors: exit 2.
ctrd >/dev/null 2>"$TMP/err"
rc=$?
[ "$rc" = 2 ] && [ -s "$TMP/err" ] && pass cli_no_command ||
    fail cli_no_command "exit $rc, expected 2 and a usage on stderr"
expect_status cli_unknown_command 2 frobnicate
expect_status cli_unknown_flag_ingest 2 ingest --data "$D" --bogus
expect_status cli_unknown_flag_query 2 query --data "$D" --ad 1 --bogus
expect_status cli_bad_duration 2 ingest --data "$D" --queries "$Q" --join-window 5x
expect_status cli_negative_duration 2 ingest --data "$D" --queries "$Q" --click-timeout -1m
expect_status cli_bad_size 2 ingest --data "$D" --queries "$Q" --checkpoint-every 1X
expect_status cli_bad_format_ingest 2 ingest --data "$D" --queries "$Q" --format xml
expect_status cli_missing_value 2 ingest --data "$D" --queries "$Q" --report
expect_status cli_query_no_ad 2 query --data "$D"
expect_status cli_query_ad_and_all 2 query --data "$D" --ad 1 --all
expect_status cli_query_bad_ad 2 query --data "$D" --ad abc
expect_status cli_query_ad_over_u64 2 query --data "$D" --ad 18446744073709551616
expect_status cli_query_bad_from 2 query --data "$D" --ad 1 --from yesterday
expect_status cli_query_bad_limit 2 query --data "$D" --ad 1 --limit x
expect_status cli_query_bad_format 2 query --data "$D" --ad 1 --format xml
expect_status cli_gen_bad_rate 2 gen --out "$TMP/g" --queries-per-sec abc
expect_status cli_gen_bad_duration 2 gen --out "$TMP/g" --duration forever
expect_status cli_gen_bad_format 2 gen --out "$TMP/g" --format xml
[ ! -e "$D" ] && pass cli_usage_error_creates_nothing ||
    fail cli_usage_error_creates_nothing "a usage error created $D"

# Runtime failures: exit 1.
expect_status cli_missing_file 1 ingest --data "$D" --queries "$TMP/absent.ndjson"
expect_status cli_missing_click_file 1 ingest --data "$D" --queries "$Q" --clicks "$TMP/absent.ndjson"
touch "$TMP/plainfile"
expect_status cli_data_is_a_file 1 ingest --data "$TMP/plainfile" --queries "$Q"

# An empty directory (an empty input ingested): zero totals.
: >"$TMP/empty.ndjson"
expect_status cli_ingest_empty_file 0 ingest --data "$TMP/empty" --queries "$TMP/empty.ndjson" --quiet
expect_status cli_query_empty_dir 0 query --data "$TMP/empty" --ad 1001 --format json
pycheck cli_query_empty_dir_zero '
import json, sys
o = json.load(open(sys.argv[1]))
assert o["ad_id"] == "1001", o
t = o["totals"]
assert (t["impressions"], t["clicks"], t["ctr"]) == (0, 0, 0), o
assert o["terms"] == [], o
' "$TMP/out"
expect_status cli_query_all_empty_dir 0 query --data "$TMP/empty" --all --format json
check cli_query_all_empty_dir_no_ads test ! -s "$TMP/out"

# A directory whose only query shows no ad: accepted, nothing counted.
printf '%s\n' '{"time":1763805600000,"query_id":5,"query":"no ads","ad_ids":[]}' >"$TMP/noads.ndjson"
expect_status cli_ingest_query_without_ads 0 ingest --data "$TMP/noads" \
    --queries "$TMP/noads.ndjson" --report "$TMP/noads.json" --quiet
pycheck cli_ingest_query_without_ads_report '
import json, sys
q = json.load(open(sys.argv[1]))["queries"]
assert (q["lines"], q["accepted"], q["rejected"]) == (1, 1, 0), q
' "$TMP/noads.json"

# A small directory: exact answers in every format.
expect_status cli_ingest 0 ingest --data "$D" --queries "$Q" --clicks "$C" --quiet \
    --join-window 24h --click-timeout 10m --checkpoint-every 64K
expect_status cli_query_json 0 query --data "$D" --ad 1001 --format json
pycheck cli_query_json_values '
import json, sys
o = json.load(open(sys.argv[1]))
assert o["ad_id"] == "1001", o
t = o["totals"]
assert (t["impressions"], t["clicks"], t["ctr"]) == (3, 0, 0), t
assert [(x["term"], x["impressions"], x["clicks"]) for x in o["terms"]] == \
    [("running shoes", 2, 0), ("socks", 1, 0)], o["terms"]
for k in ("from", "to", "as_of"):
    assert k in o, k
' "$TMP/out"
expect_status cli_query_csv 0 query --data "$D" --all --format csv
printf 'ad_id,term,impressions,clicks,ctr\n1001,running shoes,2,0,X\n1001,socks,1,0,X\n2002,running shoes,1,1,X\n' >"$TMP/want.csv"
pycheck cli_query_csv_values '
import csv, sys
got = list(csv.reader(open(sys.argv[1], newline="")))
want = list(csv.reader(open(sys.argv[2], newline="")))
assert [r[:4] for r in got] == [r[:4] for r in want], got
assert got[0] == want[0], got[0]
assert [float(r[4]) for r in got[1:]] == [0, 0, 1], got
' "$TMP/out" "$TMP/want.csv"
expect_status cli_query_limit 0 query --data "$D" --ad 1001 --limit 1 --format json
pycheck cli_query_limit_one '
import json, sys
o = json.load(open(sys.argv[1]))
assert [x["term"] for x in o["terms"]] == ["running shoes"], o
assert o["totals"]["impressions"] in (2, 3), o
' "$TMP/out"
expect_status cli_query_range 0 query --data "$D" --ad 1001 --format json \
    --from 2025-11-22T10:01:00Z --to 1763805720000
pycheck cli_query_range_values '
import json, sys
o = json.load(open(sys.argv[1]))
assert [(x["term"], x["impressions"]) for x in o["terms"]] == \
    [("running shoes", 1), ("socks", 1)], o
' "$TMP/out"
expect_status cli_query_table 0 query --data "$D" --ad 1001
grep -q 'running shoes' "$TMP/out" && pass cli_query_table_terms ||
    fail cli_query_table_terms "table lacks the term: $(head -c 300 "$TMP/out")"
expect_status cli_query_unknown_ad 0 query --data "$D" --ad 424242 --format json
pycheck cli_query_unknown_ad_zero '
import json, sys
o = json.load(open(sys.argv[1]))
assert o["ad_id"] == "424242" and o["terms"] == [], o
assert (o["totals"]["impressions"], o["totals"]["clicks"]) == (0, 0), o
' "$TMP/out"
expect_status cli_query_unknown_ad_csv 0 query --data "$D" --ad 424242 --format csv
check cli_query_unknown_ad_csv_header_only \
    test "$(cat "$TMP/out")" = "ad_id,term,impressions,clicks,ctr"

# --click-timeout: a click whose query comes later than that is dropped
# and reported as unjoined; within it, it is joined.
ctrd ingest --data "$TMP/late" --clicks "$C" --click-timeout 1ms --quiet >/dev/null 2>&1
sleep 0.2
ctrd ingest --data "$TMP/late" --queries "$Q" --click-timeout 1ms --report "$TMP/late.json" \
    --quiet >/dev/null 2>&1
ctrd ingest --data "$TMP/soon" --clicks "$C" --click-timeout 1h --quiet >/dev/null 2>&1
ctrd ingest --data "$TMP/soon" --queries "$Q" --click-timeout 1h --report "$TMP/soon.json" \
    --quiet >/dev/null 2>&1
ctrd query --data "$TMP/late" --ad 2002 --format csv >"$TMP/late.csv" 2>&1
ctrd query --data "$TMP/soon" --ad 2002 --format csv >"$TMP/soon.csv" 2>&1
pycheck cli_click_timeout '
import json, sys
late, soon = (json.load(open(p))["clicks"] for p in sys.argv[1:3])
assert (late["joined"], late["unjoined"], late["pending"]) == (0, 1, 0), "late: %r" % late
assert (soon["joined"], soon["unjoined"], soon["pending"]) == (1, 0, 0), "soon: %r" % soon
late_csv, soon_csv = (open(p).read().splitlines()[1:] for p in sys.argv[3:5])
assert late_csv[0].startswith("2002,running shoes,1,0,"), late_csv
assert soon_csv[0].startswith("2002,running shoes,1,1,"), soon_csv
' "$TMP/late.json" "$TMP/soon.json" "$TMP/late.csv" "$TMP/soon.csv"

# Standard input ('-') with --format.
ctrd ingest --data "$TMP/stdin" --queries - --format ndjson --quiet <"$Q" >/dev/null 2>"$TMP/err"
rc=$?
ctrd query --data "$TMP/stdin" --ad 1001 --format csv >"$TMP/out" 2>>"$TMP/err"
if [ "$rc" = 0 ] && grep -q '^1001,running shoes,2,0,' "$TMP/out"; then pass cli_stdin; else
    fail cli_stdin "exit $rc: $(head -c 300 "$TMP/out" "$TMP/err")"; fi

# A directory in use by another ingest (held open on a FIFO) is refused
# with exit 1, promptly; the holder still finishes correctly.
mkfifo "$TMP/fifo"
ctrd ingest --data "$TMP/busy" --queries - --format ndjson --quiet <"$TMP/fifo" >/dev/null 2>&1 &
holder=$!
bg_track "$holder"
exec 7>"$TMP/fifo"
head -1 "$Q" >&7
sleep 0.5
start=$(now_ms)
CTRD_TIMEOUT=20 expect_status cli_busy_dir 1 ingest --data "$TMP/busy" --queries "$Q"
[ $(($(now_ms) - start)) -lt 10000 ] && pass cli_busy_dir_prompt || fail cli_busy_dir_prompt "took > 10 s"
exec 7>&-
wait "$holder"
rc=$?
ctrd query --data "$TMP/busy" --ad 2002 --format csv >"$TMP/out" 2>&1
if [ "$rc" = 0 ] && grep -q '^2002,running shoes,1,0,' "$TMP/out"; then pass cli_busy_holder_ok; else
    fail cli_busy_holder_ok "holder exit $rc: $(head -c 300 "$TMP/out")"; fi
finish
