#!/usr/bin/env bash
# ctrd plan (SPEC §4): with no flags, the seed chapter's own arithmetic
# (seeds/nalsd-adwords-ctr.txt) reproduced — every derived figure equal to
# the chapter's stated value or to its exact arithmetic, in the table and
# in --json; a workload's machines from a bench file, by hand; without
# one, the figures said missing; usage errors exit 2; --help lists every
# flag.
. "$(dirname "$0")/lib.sh"

# The chapter's inputs and, per figure, (ctrd's exact arithmetic, the
# chapter's stated value or None, the seed line).
SEED='
q, c, day, rec, idb = 5e5, 1e4, 8.64e4, 2e3, 8
ads = 1e7 * 10 * 8
tasks = 2 * (q + c) / 40
task_bits = 2 * (q + c) * rec * 8 / tasks
want = {
    "queries_per_day": (4.32e10, None, 132),
    "clicks_per_day": (8.64e8, None, 132),
    "ctr": (c / q, 0.02, 128),
    "query_log_bytes_per_day": (8.64e13, 8.64e13, 132),
    "log_bytes_per_day": (88.128e12, 1e14, 134),
    "disks_for_query_iops": (2500, 2500, 140),
    "machines_for_day_in_ram": (1563, 1563, 146),
    "logjoiner_click_bits_per_sec": (1.6e8, 1.6e8, 192),
    "querystore_lookup_bits_per_sec": (6.4e5, 6.4e5, 196),
    "querystore_reply_bits_per_sec": (1.6e8, 1.6e8, 197),
    "clickmap_write_bits_per_sec": (8e7, 8e7, 201),
    "logjoiner_total_bits_per_sec": (4.0064e8, 4e8, 203),
    "ad_id_bytes": (8e8, 8e8, 205),
    "clickmap_bytes_per_day": (1.3824e10, 1.4e10, 207),
    "clickmap_with_ad_ids_bytes_per_day": (1.4624e10, 2e10, 209),
    "querymap_bytes_per_day": (2.0736e12, 2e12, 213),
    "paxos_ops_per_sec_per_process": (40, 40, 274),
    "paxos_click_processes_per_dc": (250, 250, 274),
    "replicated_events_per_sec": (1.02e6, 1.02e6, 282),
    "paxos_tasks": (25500, 25500, 282),
    "ram_per_dc_bytes": (4e12, 4e12, 304),
    "ram_per_task_bytes": (4e12 / 25500, 1.57e8, 286),
    "tasks_per_machine": (408, 408, 290),
    "network_bits_per_sec": (1.632e10, 1.6e10, 294),
    "network_bits_per_sec_per_task": (6.4e5, 6.4e5, 298),
    "network_bits_per_sec_per_machine": (2.6112e8, 2.56e8, 302),
    "machines_per_dc": (63, 64, 304),
    "network_share_per_machine": (0.26112, 0.25, 304),
}
'

ctrd plan >"$TMP/plan.txt" 2>"$TMP/err"
rc=$?
[ "$rc" = 0 ] && [ ! -s "$TMP/err" ] && pass plan_runs || fail plan_runs "exit $rc: $(head -c 300 "$TMP/err")"

# The table: one line per figure, its ctrd and chapter columns, the mark
# (same / differs / unstated) and the seed line.
pycheck plan_table_figures "$SEED"'
import sys
rows = {}
for line in open(sys.argv[1]):
    f = line.split()
    if f and f[0] in want:
        rows[f[0]] = line
assert sorted(rows) == sorted(want), sorted(set(want) ^ set(rows))
def shown(v):
    for p, s in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if v >= p:
            return "%.4g %s" % (v / p, s)
    return "%.4g " % v
for k, (mine, theirs, line) in want.items():
    r = rows[k]
    mark = "unstated" if theirs is None else "same" if mine == theirs else "differs"
    assert (" %s " % mark) in r and (" %d " % line) in r, r
    unit = "bytes" in k or "bits" in k
    for v in (mine,) + (() if theirs is None else (theirs,)):
        text = shown(v) if unit else "%.12g" % v
        assert text in r, (k, text, r)
' "$TMP/plan.txt"
grep -q '^  queries_per_sec  *500000  *line 79$' "$TMP/plan.txt" &&
    grep -q '^  paxos_op_ms  *25  *line 274$' "$TMP/plan.txt" && pass plan_table_inputs ||
    fail plan_table_inputs "$(head -c 600 "$TMP/plan.txt")"

# --json: the same figures, exactly (full double precision).
ctrd plan --json >"$TMP/plan.json" 2>"$TMP/err"
rc=$?
[ "$rc" = 0 ] && pass plan_json_runs || fail plan_json_runs "exit $rc: $(head -c 300 "$TMP/err")"
pycheck plan_json_figures "$SEED"'
import json, sys
o = json.load(open(sys.argv[1]))
fig = o["figures"]
assert sorted(fig) == sorted(want), sorted(set(want) ^ set(fig))
for k, (mine, theirs, line) in want.items():
    got = fig[k]
    assert (got["ctrd"], got["chapter"], got["line"]) == (mine, theirs, line), (k, got)
    assert got["from"], k
i = o["inputs"]
assert (i["queries_per_sec"]["value"], i["clicks_per_sec"]["value"]) == (q, c), i
assert (i["ads_per_query"]["value"], i["machine_ram_bytes"]["value"]) == (3, 6.4e10), i
assert all(isinstance(v["line"], int) and v["line"] > 0 for v in i.values()), i
' "$TMP/plan.json"

# A workload sized from a bench file (a fixture of `ctrd bench`'s keys):
# every record on 2 shards; 20000 q/s + 5000 c/s = 50000 events/s;
# cores 50000 x (1/100000 + 1/50000) = 1.5 -> 1 machine of 4 cores;
# RAM 2 x 20000 x 600 s x 500 B = 12 GB -> 12e9 / 4 GiB = 2.79 -> 3;
# disk 2 x 20000 x 7200 s x 1000 B = 288 GB -> 288e9 / 100 GiB = 2.68 -> 3.
printf '{"parse_events_per_core_s": 100000, "join_events_per_core_s": 50000,\n "bytes_per_query_disk": 1000, "ram_bytes_per_query": 500, "build": "fixture"}\n' >"$TMP/bench.json"
W="--queries-per-sec 20000 --clicks-per-sec 5000 --ads-per-query 2 --join-window 10m
   --retention 2h --machine-cores 4 --machine-ram 4G --machine-disk 100G --bench $TMP/bench.json"
ctrd plan $W --json >"$TMP/w.json" 2>"$TMP/err"
rc=$?
[ "$rc" = 0 ] && pass plan_workload_runs || fail plan_workload_runs "exit $rc: $(head -c 300 "$TMP/err")"
pycheck plan_workload_machines '
import json, math, sys
o = json.load(open(sys.argv[1]))
n = {k: v["value"] for k, v in o["needs"].items()}
assert o["missing"] == [], o["missing"]
assert n["impressions_per_sec"] == 40000, n
assert n["replicated_events_per_sec"] == 50000, n
assert n["cores"] == 50000 * (1 / 100000 + 1 / 50000) and round(n["cores"], 9) == 1.5, n
assert n["ram_bytes"] == 12e9 and n["disk_bytes"] == 288e9, n
assert (n["machines_for_cores"], n["machines_for_ram"], n["machines_for_disk"]) == (1, 3, 3), n
assert n["machines"] == 3 == math.ceil(12e9 / 4 / 2**30), n
assert n["network_bits_per_sec"] == 50000 * 2000 * 8, n
assert n["network_bits_per_sec_per_machine"] == 50000 * 2000 * 8 / 3, n
assert "= 2 x 20000 x 600 x 500" in o["needs"]["ram_bytes"]["arithmetic"], o["needs"]["ram_bytes"]
' "$TMP/w.json"
ctrd plan $W >"$TMP/w.txt" 2>&1
grep -Eq '^machines +3 +max\(machines_for_cores, machines_for_ram, machines_for_disk\) = max\(1, 3, 3\)$' "$TMP/w.txt" &&
    pass plan_workload_table || fail plan_workload_table "$(head -c 800 "$TMP/w.txt")"

# Without --bench (or with a key missing): those figures are said missing,
# none invented; what needs no bench figure is still stated.
ctrd plan --queries-per-sec 20000 --json >"$TMP/nb.json" 2>"$TMP/err"
rc=$?
printf '{"parse_events_per_core_s": 100000, "join_events_per_core_s": 50000, "bytes_per_query_disk": 1000}\n' >"$TMP/part.json"
ctrd plan --bench "$TMP/part.json" --json >"$TMP/part.out" 2>>"$TMP/err"
pycheck plan_workload_missing '
import json, sys
o, p = (json.load(open(f)) for f in sys.argv[1:3])
n = {k: v["value"] for k, v in o["needs"].items()}
assert o["missing"] == ["parse_events_per_core_s", "join_events_per_core_s",
    "bytes_per_query_disk", "ram_bytes_per_query"], o["missing"]
for k in ("cores", "ram_bytes", "disk_bytes", "machines", "network_bits_per_sec_per_machine"):
    assert n[k] is None, (k, n[k])
assert n["replicated_events_per_sec"] == 2 * (20000 + 10000), n
m = {k: v["value"] for k, v in p["needs"].items()}
assert p["missing"] == ["ram_bytes_per_query"], p["missing"]
assert m["ram_bytes"] is None and m["machines"] is None and m["disk_bytes"] == 2 * 5e5 * 86400 * 1000, m
' "$TMP/nb.json" "$TMP/part.out"
[ "$rc" = 0 ] && ctrd plan --queries-per-sec 20000 | grep -q '^missing per-core figures (run `ctrd bench` and pass --bench FILE): parse_events_per_core_s' &&
    pass plan_workload_missing_said || fail plan_workload_missing_said "exit $rc"

# A bench file that cannot be read, or with a value that is not a
# positive number: exit 1, one line naming it.
printf '{"parse_events_per_core_s": -3}\n' >"$TMP/bad.json"
for f in "$TMP/none.json" "$TMP/bad.json"; do
    ctrd plan --bench "$f" >"$TMP/out" 2>"$TMP/err"
    rc=$?
    [ "$rc" = 1 ] && [ ! -s "$TMP/out" ] && [ "$(wc -l <"$TMP/err")" = 1 ] && grep -q "^ctrd plan: .*$f" "$TMP/err" &&
        pass "plan_bad_bench $(basename "$f")" || fail "plan_bad_bench $(basename "$f")" "exit $rc: $(head -c 200 "$TMP/err")"
done

# Usage errors: exit 2, one line on stderr, nothing on stdout.
for args in "--no-such-flag" "operand" "--json=1" "--queries-per-sec 0" "--clicks-per-sec x" \
    "--ads-per-query -1" "--join-window 5q" "--retention 0" "--machine-cores" "--machine-ram 1X" \
    "--machine-disk -4G"; do
    ctrd plan $args >"$TMP/out" 2>"$TMP/err"
    rc=$?
    if [ "$rc" = 2 ] && [ ! -s "$TMP/out" ] && head -1 "$TMP/err" | grep -q '^ctrd plan: '; then
        pass "plan_usage_error ${args}"; else
        fail "plan_usage_error ${args}" "exit $rc: $(head -c 200 "$TMP/err")"; fi
done

# --help: exit 0, every flag named.
ctrd plan --help >"$TMP/help" 2>&1
rc=$?
missing=""
for f in --queries-per-sec --clicks-per-sec --ads-per-query --join-window --retention \
    --machine-cores --machine-ram --machine-disk --bench --json --help -h --version; do grep -q -- "$f" "$TMP/help" || missing="$missing $f"; done
[ "$rc" = 0 ] && [ -z "$missing" ] && grep -q '^usage: ctrd plan' "$TMP/help" && pass plan_help ||
    fail plan_help "exit $rc, missing:$missing"
finish
