#!/usr/bin/env bash
# The command line (SPEC §4): exit status 0 ok / 1 runtime failure / 2 usage
# error with one clear line on stderr; --help of every command; queries on
# an empty directory and on an unknown ad give zero totals; exact answers in
# json, csv and table form, with --limit and --from/--to; --click-timeout;
# stdin input; duration and size suffixes; a busy data directory; -h and
# --version everywhere; choices listed; ingest's reject summary, gzip
# inputs, --report opened first, skipped lines, --max-reject-ratio,
# progress without a TTY; query on a directory a server holds.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"

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
help_names_flags query --data --ad --all --from --to --limit --sort --order --format
# Each command's help names every long flag its getopt table takes: the
# flags tried here are all of them (an unknown one is exit 2).
for spec in "ingest --data --queries --clicks --format --report --max-reject-ratio --join-window --click-timeout --checkpoint-every --memory --threads --progress-every --quiet --help --version" \
    "query --data --ad --all --from --to --limit --sort --order --format --help --version" \
    "serve --data --listen --ads --auth --insecure --metrics-public --join-window --click-timeout --checkpoint-every --memory --max-body --max-queue --threads --read-threads --access-log --max-connections --max-connections-per-peer --follow-queries --follow-clicks --cluster --role --name --help --version" \
    "verify --data --help --version" "recover --data --truncate-wal-at-damage --help --version" \
    "demo --data --listen --queries-per-sec --seed --help --version" \
    "plan --queries-per-sec --clicks-per-sec --ads-per-query --join-window --retention --machine-cores --machine-ram --machine-disk --bench --json --help --version" \
    "bench --queries --out --json --threads --help --version"; do
    set -- $spec
    help_names_flags "$@"
done
set --

# -h and --version on ctrd and on every command: exit 0, on stdout.
expect_status cli_top_h 0 -h
grep -q '^usage: ctrd COMMAND' "$TMP/out" || fail cli_top_h_usage "$(head -c 200 "$TMP/out")"
expect_status cli_top_version 0 --version
check cli_top_version_text grep -qx 'ctrd [0-9][0-9.]*' "$TMP/out"
for c in ingest query serve verify recover gen demo plan bench; do
    expect_status "cli_${c}_h" 0 "$c" -h
    grep -q "^usage: ctrd $c" "$TMP/out" || fail "cli_${c}_h_usage" "$(head -c 200 "$TMP/out")"
    expect_status "cli_${c}_version" 0 "$c" --version
    grep -qx 'ctrd [0-9][0-9.]*' "$TMP/out" || fail "cli_${c}_version_text" "$(head -c 200 "$TMP/out")"
done
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
# past 4G one checkpoint's run could hold more ads than a run can (2^32)
expect_status cli_checkpoint_every_too_big 2 ingest --data "$D" --queries "$Q" --checkpoint-every 5G
expect_status cli_checkpoint_every_too_big_serve 2 serve --data "$D" --checkpoint-every 5G
# below 16M the shares of --memory are smaller than a batch
expect_status cli_memory_too_small 2 ingest --data "$D" --queries "$Q" --memory 15M
grep -q -- "--memory: at least 16M" "$TMP/err" ||
    fail cli_memory_too_small_says "$(head -c 200 "$TMP/err")"
expect_status cli_memory_too_small_serve 2 serve --data "$D" --memory 1K
expect_status cli_memory_bad_size 2 ingest --data "$D" --queries "$Q" --memory lots
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
expect_status cli_query_bad_sort 2 query --data "$D" --ad 1 --sort foo
check cli_query_bad_sort_choices grep -q "'foo' is not one of: impressions, clicks, ctr, term" "$TMP/err"
expect_status cli_query_bad_order 2 query --data "$D" --ad 1 --order up
check cli_query_bad_order_choices grep -q "is not one of: desc, asc" "$TMP/err"
check cli_query_bad_format_choices grep -q "is not one of: table, json, csv" <(ctrd query --data "$D" --ad 1 --format xml 2>&1)
check cli_ingest_bad_format_choices grep -q "is not one of: ndjson, tsv" <(ctrd ingest --data "$D" --queries "$Q" --format xml 2>&1)
expect_status cli_query_operand 2 query --data "$D" --ad 1 extra
expect_status cli_serve_bad_listen 2 serve --data "$D" --listen nonsense
expect_status cli_serve_bad_listen_port 2 serve --data "$D" --listen 127.0.0.1:70000
expect_status cli_serve_bad_listen_host 2 serve --data "$D" --listen 300.1.2.3:8080
expect_status cli_serve_bad_metrics_public 2 serve --data "$D" --metrics-public maybe
check cli_serve_bad_metrics_public_choices grep -q "is not one of: no, yes" "$TMP/err"
expect_status cli_serve_unknown_flag 2 serve --data "$D" --bogus
expect_status cli_verify_unknown_flag 2 verify --data "$D" --bogus
expect_status cli_recover_no_repair 2 recover --data "$D"
expect_status cli_ingest_bad_ratio 2 ingest --data "$D" --queries "$Q" --max-reject-ratio 1.5
expect_status cli_ingest_bad_ratio_text 2 ingest --data "$D" --queries "$Q" --max-reject-ratio half
expect_status cli_ingest_bad_progress 2 ingest --data "$D" --queries "$Q" --progress-every 0
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
# ---- ingest: rejects, gzip, --report, re-ingest, --max-reject-ratio,
# progress ----

# A log with one bad line in four: exit 0 (the default stops only when
# every line is rejected), and
# the rejects summarised on stderr without --report, also with --quiet.
R="$TMP/rej.ndjson"
{ cat "$Q"; echo 'not json'; } >"$R"
ctrd ingest --data "$TMP/rej" --queries "$R" --quiet >"$TMP/out" 2>"$TMP/err"
rc=$?
if [ "$rc" = 0 ] && grep -qx 'ctrd ingest: 1 rejected line: bad_json 1' "$TMP/err" &&
    grep -qx "ctrd ingest:   $R:4: bad_json" "$TMP/err"; then pass cli_ingest_reject_summary; else
    fail cli_ingest_reject_summary "exit $rc: $(head -c 400 "$TMP/err" | tr '\n' '|')"; fi

# 100 % garbage: exit 1 after the summary (per reason, the first five by
# file:line) and the report; nothing committed, so the same data ingests
# once the file is fixed.
G="$TMP/garbage.ndjson"
for i in 1 2 3 4 5 6 7; do echo "garbage $i"; done >"$G"
ctrd ingest --data "$TMP/garb" --queries "$G" --report "$TMP/garb.json" >"$TMP/out" 2>"$TMP/err"
rc=$?
if [ "$rc" = 1 ] && grep -qx 'ctrd ingest: 7 rejected lines: bad_json 7' "$TMP/err" &&
    grep -qx "ctrd ingest:   $G:5: bad_json" "$TMP/err" && ! grep -q "$G:6:" "$TMP/err" &&
    grep -q "ctrd ingest:   ... 2 more (the first 100 are in $TMP/garb.json)" "$TMP/err" &&
    tail -1 "$TMP/err" | grep -qx 'ctrd ingest: all 7 lines rejected: not committed (the right file and --format?)'; then
    pass cli_ingest_all_garbage; else
    fail cli_ingest_all_garbage "exit $rc: $(head -c 600 "$TMP/err" | tr '\n' '|')"; fi
pycheck cli_ingest_all_garbage_report '
import json, sys
r = json.load(open(sys.argv[1]))
assert r["queries"]["rejected"] == 7 and r["rejects"] == {"bad_json": 7}, r
assert [x["line"] for x in r["first_rejects"]] == list(range(1, 8)), r
' "$TMP/garb.json"
cp "$Q" "$G"
ctrd ingest --data "$TMP/garb" --queries "$G" --quiet --report "$TMP/garb2.json" >/dev/null 2>&1
pycheck cli_ingest_garbage_not_committed '
import json, sys
q = json.load(open(sys.argv[1]))["queries"]
assert (q["lines"], q["accepted"]) == (3, 3), q
' "$TMP/garb2.json"
expect_status cli_ingest_garbage_ratio_1 0 ingest --data "$TMP/garb1" --queries "$R" --quiet --max-reject-ratio 1
ctrd ingest --data "$TMP/garb0" --queries "$R" --quiet --max-reject-ratio 0.2 >/dev/null 2>"$TMP/err"
rc=$?
[ "$rc" = 1 ] && tail -1 "$TMP/err" | grep -qx 'ctrd ingest: 1 of 4 lines rejected (25.0%), more than --max-reject-ratio 0.2: not committed' &&
    pass cli_ingest_ratio || fail cli_ingest_ratio "exit $rc: $(tail -1 "$TMP/err")"
expect_status cli_ingest_ratio_under 0 ingest --data "$TMP/garb3" --queries "$R" --quiet --max-reject-ratio 0.25

# A .gz input counts exactly as the plain file: the same report (but the
# file name) and the same answers; by magic bytes too, whatever the name.
gzip -c "$R" >"$TMP/rej.ndjson.gz"
gzip -c "$R" >"$TMP/rej-gz-named-plain.ndjson"
ctrd ingest --data "$TMP/plain" --queries "$R" --clicks "$C" --quiet --report "$TMP/plain.json" >/dev/null 2>&1
ctrd ingest --data "$TMP/gz" --queries "$TMP/rej.ndjson.gz" --clicks "$C" --quiet --report "$TMP/gz.json" >/dev/null 2>"$TMP/err"
rc=$?
ctrd ingest --data "$TMP/gz2" --queries "$TMP/rej-gz-named-plain.ndjson" --clicks "$C" --quiet --report "$TMP/gz2.json" >/dev/null 2>&1
pycheck cli_ingest_gzip_same_counts '
import json, sys
a, b, c = (json.load(open(p)) for p in sys.argv[1:4])
for r in (a, b, c):
    for x in r["first_rejects"]:
        x["file"] = "-"
assert a == b == c, (a, b, c)
assert a["queries"]["accepted"] == 3 and a["clicks"]["joined"] == 1, a
' "$TMP/plain.json" "$TMP/gz.json" "$TMP/gz2.json"
ctrd query --data "$TMP/plain" --all --format csv >"$TMP/plain.csv" 2>&1
ctrd query --data "$TMP/gz" --all --format csv >"$TMP/gz.csv" 2>&1
[ "$rc" = 0 ] && [ -s "$TMP/plain.csv" ] && cmp -s "$TMP/plain.csv" "$TMP/gz.csv" && pass cli_ingest_gzip_same_answers ||
    fail cli_ingest_gzip_same_answers "exit $rc: $(diff "$TMP/plain.csv" "$TMP/gz.csv" | head -5)"
# Re-ingesting the .gz skips what was read (its progress is the inflated
# offset), and says so.
ctrd ingest --data "$TMP/gz" --queries "$TMP/rej.ndjson.gz" --report "$TMP/gz3.json" >/dev/null 2>"$TMP/err"
rc=$?
if [ "$rc" = 0 ] && grep -qx 'ctrd ingest: nothing new: 4 lines already ingested by an earlier run (skipped)' "$TMP/err"; then
    pass cli_ingest_gzip_reingest_skips; else fail cli_ingest_gzip_reingest_skips "exit $rc: $(head -c 300 "$TMP/err")"; fi
# A truncated gzip file is an error (exit 1) naming the file.
head -c 30 "$TMP/rej.ndjson.gz" >"$TMP/cut.ndjson.gz"
ctrd ingest --data "$TMP/cut" --queries "$TMP/cut.ndjson.gz" >/dev/null 2>"$TMP/err"
rc=$?
[ "$rc" = 1 ] && grep -qx "ctrd ingest: cannot read $TMP/cut.ndjson.gz: unexpected end of file" "$TMP/err" &&
    pass cli_ingest_gzip_truncated || fail cli_ingest_gzip_truncated "exit $rc: $(head -c 300 "$TMP/err")"

# Re-ingesting the same plain files: the skipped lines are said, not
# "0 query lines".
ctrd ingest --data "$TMP/plain" --queries "$R" --clicks "$C" >/dev/null 2>"$TMP/err"
rc=$?
if [ "$rc" = 0 ] && grep -qx 'ctrd ingest: nothing new: 5 lines already ingested by an earlier run (skipped)' "$TMP/err" &&
    ! grep -q '0 query lines' "$TMP/err"; then pass cli_ingest_reingest_says_skipped; else
    fail cli_ingest_reingest_says_skipped "exit $rc: $(head -c 300 "$TMP/err" | tr '\n' '|')"; fi
# A file that grew (past its first 4 KiB, which identify it): the new
# lines counted, the old ones said skipped.
for i in $(seq 100 199); do
    echo '{"time":1763805600000,"query_id":'$i',"query":"filler query number '$i'","ad_ids":[7]}'
done >"$TMP/grow.ndjson"
ctrd ingest --data "$TMP/grow" --queries "$TMP/grow.ndjson" --quiet >/dev/null 2>&1
echo '{"time":1763805720000,"query_id":10,"query":"hats","ad_ids":[1001]}' >>"$TMP/grow.ndjson"
ctrd ingest --data "$TMP/grow" --queries "$TMP/grow.ndjson" >/dev/null 2>"$TMP/err"
if grep -q '^ctrd ingest: 1 query lines (1 accepted' "$TMP/err" &&
    grep -qx 'ctrd ingest: 100 lines already ingested by an earlier run (skipped)' "$TMP/err"; then
    pass cli_ingest_grown_file; else fail cli_ingest_grown_file "$(head -c 300 "$TMP/err" | tr '\n' '|')"; fi

# --report to a path that cannot be written: exit 1 before any work, no
# data directory made; an existing directory is left unchanged.
expect_status cli_ingest_bad_report 1 ingest --data "$TMP/rep" --queries "$Q" --report "$TMP/no/such/dir/r.json"
check cli_ingest_bad_report_message grep -q "cannot write the report $TMP/no/such/dir/r.json" "$TMP/err"
check cli_ingest_bad_report_no_dir test ! -e "$TMP/rep"
(cd "$D" && find . -type f -exec sha256sum {} + | sort) >"$TMP/before.sum"
expect_status cli_ingest_bad_report_existing 1 ingest --data "$D" --queries "$R" --report "$TMP/no/r.json"
(cd "$D" && find . -type f -exec sha256sum {} + | sort) >"$TMP/after.sum"
check cli_ingest_bad_report_unchanged cmp -s "$TMP/before.sum" "$TMP/after.sum"

# Progress when stderr is a file: a line per --progress-every with lines/s
# and the share done (one worker reads 4 MiB at a time: 12 MiB give a
# few); none with --quiet.
python3 -c '
import sys
line = "{\"time\":1763805600000,\"query_id\":%d,\"query\":\"%s\",\"ad_ids\":[7]}\n"
with open(sys.argv[1], "w") as f:
    for i in range(1, 120001):
        f.write(line % (i, "q" * 60))
' "$TMP/big.ndjson"
ctrd ingest --data "$TMP/prog" --queries "$TMP/big.ndjson" --threads 1 --progress-every 1ms \
    >/dev/null 2>"$TMP/prog.err"
n=$(grep -Ec "^ctrd ingest: $TMP/big.ndjson: [0-9]+ lines, [0-9.]+ M lines/s, [0-9]+%, ETA [0-9]+ s\$" "$TMP/prog.err")
[ "$n" -ge 2 ] && ! grep -q $'\r' "$TMP/prog.err" && pass cli_ingest_progress_no_tty ||
    fail cli_ingest_progress_no_tty "$n progress lines: $(head -c 400 "$TMP/prog.err" | tr '\n' '|')"
ctrd ingest --data "$TMP/prog2" --queries "$TMP/big.ndjson" --threads 1 --progress-every 1ms --quiet \
    >/dev/null 2>"$TMP/prog2.err"
check cli_ingest_progress_quiet test ! -s "$TMP/prog2.err"

# ---- query on a directory a running server holds: a note on stderr
# naming the checkpoint and its age; the answer is that checkpoint's ----
ctrd query --data "$D" --ad 1001 --format csv >"$TMP/out" 2>"$TMP/err"
check cli_query_no_note_when_free test ! -s "$TMP/err"
if start_server cliserve "$D"; then
    ctrd query --data "$D" --ad 1001 --format csv >"$TMP/out" 2>"$TMP/err"
    rc=$?
    if [ "$rc" = 0 ] && grep -q '^1001,running shoes,2,0,' "$TMP/out" &&
        grep -Eq "^ctrd query: note: $D is in use by a running ctrd \(serve or ingest\); this shows its last checkpoint \(#[0-9]+, written [0-9]+ s ago\)" "$TMP/err"; then
        pass cli_query_served_note; else
        fail cli_query_served_note "exit $rc: $(head -c 400 "$TMP/err")"; fi
    stop_server cli_query_served_stop
fi
finish
