#!/usr/bin/env bash
# The oracle's own tests: tests/reference.py against the hand-written
# verdicts of cases.py (every tricky line, and a small whole-file counting
# example), then the reference command line on the case files.
. "$(dirname "$0")/lib.sh"

python3 "$E2E_DIR/cases.py" check "$TMP" || E2E_FAILED=1

mkdir -p "$TMP/cases"
python3 "$E2E_DIR/cases.py" write "$TMP/cases" >"$TMP/files"
mapfile -t q < <(awk '$2 == "query" && $1 ~ /^q_ndjson/ {print $3}' "$TMP/files")
check reference_cli_json reference --queries "${q[@]}" --out-json "$TMP/ref.json"
check reference_cli_json_shape python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
assert set(r) == {"counts", "queries", "clicks", "first_rejects"}, r.keys()
assert r["counts"] and all(len(c) == 5 for c in r["counts"])
assert len(r["first_rejects"]) == 100
assert r["queries"]["rejected"] == sum(r["queries"]["rejects"].values())
' "$TMP/ref.json"

# The SPEC's own examples, through the command line and --format csv.
printf '%s\n' '{"time":1763805600123,"query_id":"18446744073709551615","query":"Running  Shoes","ad_ids":[1001,2002,3003]}' >"$TMP/q.ndjson"
printf '%s\n' '{"time":1763805612000,"query_id":"18446744073709551615","ad_id":2002,"click_id":"c-88"}' >"$TMP/c.ndjson"
reference --queries "$TMP/q.ndjson" --clicks "$TMP/c.ndjson" --csv "$TMP/out.csv"
printf 'ad_id,term,impressions,clicks\n1001,running shoes,1,0\n2002,running shoes,1,1\n3003,running shoes,1,0\n' >"$TMP/want.csv"
check reference_cli_csv cmp -s "$TMP/out.csv" "$TMP/want.csv"
reference --queries "$TMP/q.ndjson" --clicks "$TMP/c.ndjson" --join-window-ms 11876 --csv "$TMP/out2.csv"
check reference_cli_join_window grep -qx '2002,running shoes,1,0' "$TMP/out2.csv"
finish
