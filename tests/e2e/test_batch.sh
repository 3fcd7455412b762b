#!/usr/bin/env bash
# Batch ingest against the reference (SPEC §2-§3) on generated logs with
# tricky records: every (ad, term) total and a sample of (ad, term, minute)
# buckets equal the reference's; the report's counters and rejects equal
# the reference's (and the generator's manifest); the same counts whatever
# the file order (clicks ingested before their queries, in separate runs),
# from the TSV form, with another join window; re-ingesting (the same
# files, or copies under other names) changes nothing. The data size is the
# fast tier's; tests/soak/test_batch_big.sh runs this on five times more,
# and on gen's default size too (BATCH_GEN_DEFAULT=1).
. "$(dirname "$0")/lib.sh"

RATE="${BATCH_QUERIES_PER_SEC:-40}"
DURATION="${BATCH_DURATION:-10m}"
G="$TMP/gen"
if ! ctrd gen --out "$G" --queries-per-sec "$RATE" --duration "$DURATION" --seed 7 \
    --format both --tricky >"$TMP/gen.out" 2>&1; then
    fail batch_gen "$(head -3 "$TMP/gen.out")"
    finish
fi
pass batch_gen
Q="$G/queries.ndjson" C="$G/clicks.ndjson" QT="$G/queries.tsv" CT="$G/clicks.tsv"
for f in "$Q" "$C" "$QT" "$CT"; do
    [ -s "$f" ] || fail batch_gen_files "missing or empty: $f"
done
echo "generated: $(wc -l <"$Q") query lines, $(wc -l <"$C") click lines"

# Deterministic for a seed.
ctrd gen --out "$TMP/gen2" --queries-per-sec "$RATE" --duration "$DURATION" --seed 7 \
    --format both --tricky >/dev/null 2>&1
same=1
for f in queries.ndjson clicks.ndjson queries.tsv clicks.tsv; do
    cmp -s "$G/$f" "$TMP/gen2/$f" || same=0
done
[ "$same" = 1 ] && pass batch_gen_deterministic || fail batch_gen_deterministic
rm -rf "$TMP/gen2"

reference --queries "$Q" --clicks "$C" --out-json "$TMP/ref.json"
reference --queries "$QT" --clicks "$CT" --out-json "$TMP/ref-tsv.json"
reference --queries "$Q" --clicks "$C" --join-window-ms 3600000 --out-json "$TMP/ref-1h.json"
pycheck batch_gen_has_tricky '
import json, sys
r = json.load(open(sys.argv[1]))
q, c = r["queries"], r["clicks"]
assert q["rejected"] > 0 and c["rejected"] > 0, "no rejects"
assert q["duplicates"] > 0 and c["duplicates"] > 0, "no duplicates"
assert c["joined"] > 100, "few clicks joined"
ratio = c["joined"] / max(1, sum(x[3] for x in r["counts"]))
assert 0.005 < ratio < 0.08, "CTR %.4f is not about 2 %%" % ratio
' "$TMP/ref.json"

# all_json DIR OUT: `query --all --format json` of DIR into OUT.
all_json() { ctrd query --data "$1" --all --format json >"$2" 2>"$TMP/qerr" ||
    echo "query --all: $(head -2 "$TMP/qerr")"; }

# 1. Everything in one invocation.
D1="$TMP/d1"
start=$(now_ms)
if ctrd ingest --data "$D1" --queries "$Q" --clicks "$C" --report "$TMP/r1.json" \
    --quiet >"$TMP/out" 2>&1; then pass batch_ingest; else
    fail batch_ingest "$(head -3 "$TMP/out")"; fi
echo "ingest took $(($(now_ms) - start)) ms"
all_json "$D1" "$TMP/all1.json"
check batch_totals compare totals "$TMP/ref.json" "$TMP/all1.json"
check batch_buckets compare buckets "$TMP/ref.json" "$D1" 60 11
check batch_report compare report "$TMP/ref.json" "$TMP/r1.json"
ctrd query --data "$D1" --all --format csv >"$TMP/all1.csv" 2>/dev/null
check batch_totals_csv compare totals "$TMP/ref.json" "$TMP/all1.csv" --csv
if [ -f "$G/manifest.json" ]; then
    check batch_manifest compare manifest "$G/manifest.json" ndjson="$TMP/ref.json" tsv="$TMP/ref-tsv.json"
else
    fail batch_manifest "gen --tricky wrote no $G/manifest.json"
fi

# 2. Clicks first, in their own invocation; queries in a later one.
D2="$TMP/d2"
ok=1
ctrd ingest --data "$D2" --clicks "$C" --report "$TMP/r2a.json" --quiet >"$TMP/out" 2>&1 || ok=0
ctrd ingest --data "$D2" --queries "$Q" --report "$TMP/r2b.json" --quiet >>"$TMP/out" 2>&1 || ok=0
[ "$ok" = 1 ] && pass batch_clicks_first_ingest || fail batch_clicks_first_ingest "$(head -3 "$TMP/out")"
all_json "$D2" "$TMP/all2.json"
check batch_clicks_first_totals compare totals "$TMP/ref.json" "$TMP/all2.json"
check batch_clicks_first_same_output cmp -s "$TMP/all1.json" "$TMP/all2.json"
pycheck batch_clicks_first_reports '
import json, sys
ref, a, b = (json.load(open(p)) for p in sys.argv[1:4])
c = ref["clicks"]
parse_rejects = sum(n for r, n in c["rejects"].items()
                    if r not in ("click_ad_not_shown", "click_outside_window"))
waiting = c["lines"] - parse_rejects
got = (a["clicks"]["joined"], a["clicks"]["pending"], a["clicks"]["rejected"])
assert got == (0, waiting, parse_rejects), \
    "clicks run: joined/pending/rejected %r, expected %r" % (got, (0, waiting, parse_rejects))
got = (b["clicks"]["joined"], b["clicks"]["duplicates"], b["clicks"]["pending"],
       b["clicks"]["rejected"])
want = (c["joined"], c["duplicates"], c["unknown_query"],
        c["rejected"] - parse_rejects)
assert got == want, "queries run: clicks joined/duplicates/pending/rejected %r, expected %r" % (got, want)
' "$TMP/ref.json" "$TMP/r2a.json" "$TMP/r2b.json"

# 3. The TSV form.
D3="$TMP/d3"
if ctrd ingest --data "$D3" --queries "$QT" --clicks "$CT" --report "$TMP/r3.json" \
    --quiet >"$TMP/out" 2>&1; then pass batch_tsv_ingest; else
    fail batch_tsv_ingest "$(head -3 "$TMP/out")"; fi
all_json "$D3" "$TMP/all3.json"
check batch_tsv_totals compare totals "$TMP/ref-tsv.json" "$TMP/all3.json"
check batch_tsv_report compare report "$TMP/ref-tsv.json" "$TMP/r3.json"
check batch_tsv_same_as_ndjson compare same-totals "$TMP/ref.json" "$TMP/ref-tsv.json"

# 4. Another join window.
D4="$TMP/d4"
ctrd ingest --data "$D4" --queries "$Q" --clicks "$C" --join-window 1h --report "$TMP/r4.json" \
    --quiet >"$TMP/out" 2>&1 || fail batch_join_window_ingest "$(head -3 "$TMP/out")"
all_json "$D4" "$TMP/all4.json"
check batch_join_window_totals compare totals "$TMP/ref-1h.json" "$TMP/all4.json"
check batch_join_window_report compare report "$TMP/ref-1h.json" "$TMP/r4.json"
rm -rf "$D2" "$D3" "$D4"

# 5. Re-ingest into D1: the same files, then copies under other names.
ok=1
ctrd ingest --data "$D1" --queries "$Q" --clicks "$C" --quiet >"$TMP/out" 2>&1 || ok=0
mkdir "$TMP/copy"
cp "$Q" "$TMP/copy/q-again.ndjson"
cp "$C" "$TMP/copy/c-again.ndjson"
ctrd ingest --data "$D1" --queries "$TMP/copy/q-again.ndjson" --clicks "$TMP/copy/c-again.ndjson" \
    --report "$TMP/r5.json" --quiet >>"$TMP/out" 2>&1 || ok=0
[ "$ok" = 1 ] && pass batch_reingest || fail batch_reingest "$(head -3 "$TMP/out")"
all_json "$D1" "$TMP/all5.json"
check batch_reingest_same_output cmp -s "$TMP/all1.json" "$TMP/all5.json"
pycheck batch_reingest_copy_report '
import json, sys
ref, rep = (json.load(open(p)) for p in sys.argv[1:3])
q, c = rep["queries"], rep["clicks"]
assert q["accepted"] == 0 and c["joined"] == 0, "re-ingest counted: %r" % rep
assert q["duplicates"] == ref["queries"]["accepted"] + ref["queries"]["duplicates"], q
' "$TMP/ref.json" "$TMP/r5.json"

# 6. gen's default size (--tricky, NDJSON only): totals and its manifest.
rm -rf "$D1" "$G"
[ "${BATCH_GEN_DEFAULT:-0}" = 1 ] || finish
G0="$TMP/gen0" D0="$TMP/d0"
if ctrd gen --out "$G0" --tricky >"$TMP/out" 2>&1 &&
    ctrd ingest --data "$D0" --queries "$G0/queries.ndjson" --clicks "$G0/clicks.ndjson" \
        --report "$TMP/r0.json" --quiet >"$TMP/out" 2>&1; then
    reference --queries "$G0/queries.ndjson" --clicks "$G0/clicks.ndjson" --out-json "$TMP/ref0.json"
    all_json "$D0" "$TMP/all0.json"
    check batch_default_totals compare totals "$TMP/ref0.json" "$TMP/all0.json"
    check batch_default_report compare report "$TMP/ref0.json" "$TMP/r0.json"
    check batch_default_manifest compare manifest "$G0/manifest.json" ndjson="$TMP/ref0.json"
else
    fail batch_default "$(head -3 "$TMP/out")"
fi
finish
