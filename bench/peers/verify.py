#!/usr/bin/env python3
"""verify.py: a peer's (ad, term) totals equal ctrd's, to the unit.

    verify.py CTRD_JSON NAME TOTALS

CTRD_JSON: `ctrd query --all --format json` (one object per ad per line).
TOTALS: another such file (*.json: ctrd's streaming run), or a .tsv of the
peer's rows ad, term, impressions, clicks (CSV quoting
with '"'), ads as signed 64-bit (convert.py's mapping, undone here).
Prints the first differences and exits 1 on any; prints the row count
and exits 0 when equal."""
import csv
import json
import sys


def ctrd_totals(path):
    totals = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            ad = json.loads(line)
            for t in ad["terms"]:
                totals[(int(ad["ad_id"]), t["term"])] = (t["impressions"], t["clicks"])
    return totals


def peer_totals(path):
    totals = {}
    with open(path, encoding="utf-8", newline="") as f:
        for ad, term, imp, clk in csv.reader(f, delimiter="\t"):
            totals[(int(ad) % (1 << 64), term)] = (int(imp), int(clk))
    return totals


def main():
    ref, name, peer = ctrd_totals(sys.argv[1]), sys.argv[2], (ctrd_totals if sys.argv[3].endswith(".json") else peer_totals)(sys.argv[3])
    diffs = [(k, ref.get(k), peer.get(k)) for k in sorted(ref.keys() | peer.keys()) if ref.get(k) != peer.get(k)]
    for (ad, term), want, got in diffs[:10]:
        print(f"verify: {name} ad {ad} term {term!r}: ctrd (impressions, clicks) {want}, {name} {got}", file=sys.stderr)
    if diffs:
        print(f"verify: {name} differs from ctrd on {len(diffs)} of {len(ref)} (ad, term) rows", file=sys.stderr)
        sys.exit(1)
    print(f"verify: {name} equals ctrd on all {len(ref)} (ad, term) rows", file=sys.stderr)


if __name__ == "__main__":
    main()
