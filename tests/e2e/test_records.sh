#!/usr/bin/env bash
# Record rules (SPEC §1) through the real binary: every hand-written tricky
# line of cases.py is ingested, and the engine's verdict on each line
# (report first_rejects: file, line, reason), its counters, and the counts
# of the accepted lines (every (ad, term) total and every (ad, minute)
# bucket) must equal the reference's.
. "$(dirname "$0")/lib.sh"

mkdir -p "$TMP/cases"
python3 "$E2E_DIR/cases.py" write "$TMP/cases" >"$TMP/files"

# files GROUP KIND: the group's files of that kind, in order.
files() { awk -v g="$1" -v k="$2" '$1 == g && $2 == k {print $3}' "$TMP/files"; }

for group in q_ndjson c_ndjson q_tsv c_tsv; do
    mapfile -t base < <(files "$group" query)
    mapfile -t clicks < <(files "$group" click)
    data="$TMP/data-$group"
    reference --queries "${base[@]}" --clicks "${clicks[@]}" \
        --out-json "$TMP/ref-$group.json"

    # One invocation per file: each report lists every reject of its file.
    ok=1
    i=0
    for f in "${base[@]}" "${clicks[@]}"; do
        i=$((i + 1))
        if [[ " ${clicks[*]} " == *" $f "* ]]; then
            flag=--clicks
            reference --queries "${base[@]}" --clicks "$f" --out-json "$TMP/ref-one.json"
        else
            flag=--queries
            reference --queries "$f" --out-json "$TMP/ref-one.json"
        fi
        if ! ctrd ingest --data "$data" $flag "$f" --report "$TMP/rep-$group-$i.json" \
            --quiet >"$TMP/out" 2>&1; then
            echo "ingest $flag $(basename "$f") failed:"; head -5 "$TMP/out"
            ok=0
            continue
        fi
        compare rejects-only "$TMP/ref-one.json" "$TMP/rep-$group-$i.json" || ok=0
    done
    if [ "$ok" = 1 ]; then pass "records_${group}_verdicts"; else fail "records_${group}_verdicts"; fi

    ctrd query --data "$data" --all --format json >"$TMP/all-$group.json" 2>"$TMP/err" ||
        { echo "query --all failed: $(head -3 "$TMP/err")"; }
    check "records_${group}_totals" compare totals "$TMP/ref-$group.json" "$TMP/all-$group.json"
    check "records_${group}_buckets" compare buckets "$TMP/ref-$group.json" "$data" 1000 1

    # All files in one invocation, into a fresh directory: the counters.
    inputs=(--queries "${base[@]}")
    [ ${#clicks[@]} -eq 0 ] || inputs+=(--clicks "${clicks[@]}")
    if ctrd ingest --data "$TMP/one-$group" "${inputs[@]}" \
        --report "$TMP/rep-one-$group.json" --quiet >"$TMP/out" 2>&1; then
        check "records_${group}_report" compare report "$TMP/ref-$group.json" "$TMP/rep-one-$group.json"
    else
        fail "records_${group}_report" "ingest failed: $(head -3 "$TMP/out")"
    fi
done
finish
