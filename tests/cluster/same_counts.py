#!/usr/bin/env python3
"""same_counts: do a cluster's counts equal one process's, to the unit?

  same_counts.py EXPECTED.ndjson API_URL [--wait SECONDS]

EXPECTED is `ctrd query --all --format json` of a single-process `ctrd
ingest` of the same files (one object per ad). Every ad's whole-range
per-term table is read from API_URL (GET /v1/ads/{id}/terms?limit=10000);
each (ad, term) must have the same impressions and clicks, and no term
may be missing or extra (a table of exactly the limit is a difference:
it may be cut). Ads only the cluster counts are not looked for.
With --wait, retries until equal or the time is up (freshness), then
prints the seconds it took. Exit 0 when equal, 1 with the first
differences otherwise.
"""
import json
import sys
import time
import urllib.request

LIMIT = 10000


def expected_counts(path):
    want = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            ad = json.loads(line)
            want[ad["ad_id"]] = {t["term"]: (t["impressions"], t["clicks"])
                                 for t in ad["terms"]}
    return want


def cluster_counts(api, ad):
    url = "%s/v1/ads/%s/terms?limit=%d" % (api, ad, LIMIT)
    with urllib.request.urlopen(url, timeout=10) as r:
        body = json.load(r)
    if len(body["terms"]) >= LIMIT:
        raise OSError("%d terms: the table may be cut" % len(body["terms"]))
    return {t["term"]: (t["impressions"], t["clicks"]) for t in body["terms"]}


def differences(want, api):
    diffs = []
    for ad, terms in want.items():
        try:
            got = cluster_counts(api, ad)
        except OSError as e:
            return ["ad %s: %s" % (ad, e)]
        for term in sorted(set(terms) | set(got)):
            w, g = terms.get(term, (0, 0)), got.get(term, (0, 0))
            if w != g:
                diffs.append("ad %s term %r: want (impressions, clicks) %s, "
                             "cluster has %s" % (ad, term, w, g))
    return diffs


def main():
    args = sys.argv[1:]
    wait = 0.0
    if "--wait" in args:
        i = args.index("--wait")
        wait = float(args[i + 1])
        del args[i:i + 2]
    want = expected_counts(args[0])
    start = time.monotonic()
    while True:
        diffs = differences(want, args[1])
        took = time.monotonic() - start
        if not diffs or took >= wait:
            break
        time.sleep(0.5)
    if diffs:
        for d in diffs[:10]:
            print(d)
        print("%d differences over %d ads after %.1f s" %
              (len(diffs), len(want), took))
        return 1
    print("equal: %d ads, %d (ad, term) rows, after %.1f s" %
          (len(want), sum(len(t) for t in want.values()), took))
    return 0


if __name__ == "__main__":
    sys.exit(main())
