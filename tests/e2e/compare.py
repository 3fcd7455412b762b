#!/usr/bin/env python3
"""compare: checks ctrd's output against tests/reference.py's result.

Each subcommand prints at most a few lines per difference (the first ones),
and exits 0 when everything matched, 1 otherwise.

  compare.py totals REF.json OUT [--csv]
      OUT is `ctrd query --all --format json` (NDJSON, one object per ad)
      or, with --csv, `--format csv`. Checks every (ad, term) total, the
      per-ad totals, ctr values, and the order of ads and terms.
  compare.py buckets REF.json DATA_DIR N SEED
      runs `ctrd query --data DATA_DIR --ad A --from M --to M+60000
      --format json` for N random (ad, minute) buckets of the reference (all
      of them if fewer), plus one range over several minutes and an ad with
      no counts, and compares each answer with the reference.
  compare.py report REF.json REPORT.json [--no-lines]
      the ingest report of an invocation that read exactly the reference's
      inputs into an empty data dir: queries and clicks counters, rejects by
      reason, and first_rejects (file, line, reason).
  compare.py rejects-only REF.json REPORT.json
      just the per-reason reject counts and first_rejects.
  compare.py manifest MANIFEST.json [ndjson=REF.json] [tsv=REF.json]
      every figure of gen's manifest.json (one format, or both) equals the
      reference's on the generated files.
  compare.py same-totals A.json B.json
      two reference results give the same (ad, term) totals.
CTRD (environment) names the binary for `buckets`.
"""
import csv
import io
import json
import os
import random
import subprocess
import sys

MINUTE_MS = 60000
FIRST_REJECTS_MAX = 100
TIME_MAX_MS = 253402300799999
MAX_SHOWN = 10


class Diff:
    def __init__(self, what):
        self.what = what
        self.n = 0

    def __call__(self, msg):
        self.n += 1
        if self.n <= MAX_SHOWN:
            print("%s: %s" % (self.what, msg))

    def done(self):
        if self.n > MAX_SHOWN:
            print("%s: ... %d differences in all" % (self.what, self.n))
        return 1 if self.n else 0


def load_ref(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def ref_totals(ref):
    """{(ad_str, term): [impressions, clicks]}"""
    totals = {}
    for ad, term, _minute, imps, clicks in ref["counts"]:
        t = totals.setdefault((ad, term), [0, 0])
        t[0] += imps
        t[1] += clicks
    return totals


def ratio_ok(ctr, clicks, imps):
    want = clicks / imps if imps else 0.0
    return isinstance(ctr, (int, float)) and abs(ctr - want) <= 5e-6


def term_key(row):
    """Engine order inside an ad: impressions desc, then term bytes asc."""
    return (-row[1], row[0].encode("utf-8"))


def parse_json_lines(text, diff):
    """NDJSON of per-ad objects -> [(ad_str, totals, [(term, i, c, ctr)])]."""
    ads = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            terms = [(t["term"], t["impressions"], t["clicks"], t["ctr"])
                     for t in obj["terms"]]
            ads.append((obj["ad_id"], obj["totals"], terms))
        except (ValueError, KeyError, TypeError) as e:
            diff("output line %d is not a per-ad object (%s): %r"
                 % (n, e, line[:200]))
    return ads


def parse_csv(text, diff):
    """csv with header ad_id,term,impressions,clicks,ctr -> same shape as
    parse_json_lines (totals computed)."""
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows or rows[0] != ["ad_id", "term", "impressions", "clicks", "ctr"]:
        diff("csv header is %r" % (rows[:1],))
        return []
    ads = []
    for n, row in enumerate(rows[1:], 2):
        if len(row) != 5:
            diff("csv row %d has %d fields: %r" % (n, len(row), row))
            continue
        try:
            imps, clicks, ctr = int(row[2]), int(row[3]), float(row[4])
        except ValueError:
            diff("csv row %d is not numeric: %r" % (n, row))
            continue
        if not ads or ads[-1][0] != row[0]:
            ads.append((row[0], None, []))
        ads[-1][2].append((row[1], imps, clicks, ctr))
    return ads


def cmd_totals(ref_path, out_path, is_csv):
    ref = load_ref(ref_path)
    want = ref_totals(ref)
    diff = Diff("totals")
    with open(out_path, encoding="utf-8", newline="") as f:
        text = f.read()
    ads = parse_csv(text, diff) if is_csv else parse_json_lines(text, diff)
    got = {}
    prev_ad = None
    for ad, totals, terms in ads:
        if not isinstance(ad, str) or not ad.isdigit():
            diff("ad_id %r is not a decimal string" % (ad,))
            continue
        if prev_ad is not None and int(ad) <= prev_ad:
            diff("ad %s comes after ad %d: ads not ascending" % (ad, prev_ad))
        prev_ad = int(ad)
        if [term_key(t) for t in terms] != sorted(term_key(t) for t in terms):
            diff("ad %s: terms not by impressions desc, term asc" % ad)
        sum_i = sum(t[1] for t in terms)
        sum_c = sum(t[2] for t in terms)
        if totals is not None:
            if (totals.get("impressions"), totals.get("clicks")) != (sum_i,
                                                                     sum_c):
                diff("ad %s: totals %r, terms sum to %d/%d"
                     % (ad, totals, sum_i, sum_c))
            if not ratio_ok(totals.get("ctr"), sum_c, sum_i):
                diff("ad %s: totals ctr %r" % (ad, totals.get("ctr")))
        for term, imps, clicks, ctr in terms:
            if (ad, term) in got:
                diff("ad %s term %r listed twice" % (ad, term))
            got[(ad, term)] = [imps, clicks]
            if not ratio_ok(ctr, clicks, imps):
                diff("ad %s term %r: ctr %r for %d/%d"
                     % (ad, term, ctr, clicks, imps))
    for key in sorted(set(want) | set(got)):
        w = want.get(key, [0, 0])
        g = got.get(key, [0, 0])
        if w != g:
            diff("ad %s term %r: expected impressions/clicks %d/%d, got %d/%d"
                 % (key[0], key[1], w[0], w[1], g[0], g[1]))
    if not diff.n:
        print("totals: %d (ad, term) pairs match" % len(want))
    return diff.done()


def run_query(data_dir, args):
    cmd = ["timeout", "60", os.environ["CTRD"], "query", "--data", data_dir,
           "--format", "json"] + args
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return p.returncode, p.stdout.decode("utf-8", "replace"), \
        p.stderr.decode("utf-8", "replace")


def check_answer(diff, data_dir, ad, lo, hi, want):
    """want: {term: [imps, clicks]} for ad over minutes [lo, hi)."""
    args = ["--ad", ad]
    if lo is not None:
        args += ["--from", str(lo)]
    if hi is not None and hi <= TIME_MAX_MS:
        args += ["--to", str(hi)]  # a larger to is not a time: all after
    rc, out, err = run_query(data_dir, args)
    where = "ad %s [%s, %s)" % (ad, lo, hi)
    if rc != 0:
        diff("%s: exit %d: %s" % (where, rc, err.strip()[:200]))
        return
    try:
        obj = json.loads(out)
        got = {t["term"]: [t["impressions"], t["clicks"]] for t in obj["terms"]}
        totals = [obj["totals"]["impressions"], obj["totals"]["clicks"]]
    except (ValueError, KeyError, TypeError) as e:
        diff("%s: not the --ad JSON object (%s): %r" % (where, e, out[:200]))
        return
    if obj.get("ad_id") != ad:
        diff("%s: ad_id %r" % (where, obj.get("ad_id")))
    if got != want:
        for term in sorted(set(got) | set(want)):
            if got.get(term, [0, 0]) != want.get(term, [0, 0]):
                diff("%s term %r: expected %r, got %r"
                     % (where, term, want.get(term, [0, 0]),
                        got.get(term, [0, 0])))
    want_totals = [sum(v[0] for v in want.values()),
                   sum(v[1] for v in want.values())]
    if totals != want_totals:
        diff("%s: totals %r, expected %r" % (where, totals, want_totals))


def cmd_buckets(ref_path, data_dir, n, seed):
    ref = load_ref(ref_path)
    buckets = {}  # (ad, minute) -> {term: [i, c]}
    for ad, term, minute, imps, clicks in ref["counts"]:
        buckets.setdefault((ad, minute), {})[term] = [imps, clicks]
    keys = sorted(buckets, key=lambda k: (int(k[0]), k[1]))
    rng = random.Random(seed)
    sample = keys if len(keys) <= n else rng.sample(keys, n)
    diff = Diff("buckets")
    for ad, minute in sample:
        check_answer(diff, data_dir, ad, minute, minute + MINUTE_MS,
                     buckets[(ad, minute)])
    if keys:
        # a range of several minutes of one ad: the sum of its buckets
        ad, minute = keys[len(keys) // 2]
        lo, hi = max(0, minute - 5 * MINUTE_MS), minute + 7 * MINUTE_MS
        want = {}
        for (a, m), terms in buckets.items():
            if a == ad and lo <= m < hi:
                for term, (i, c) in terms.items():
                    w = want.setdefault(term, [0, 0])
                    w[0] += i
                    w[1] += c
        check_answer(diff, data_dir, ad, lo, hi, want)
        # the minute just before a bucket: [m - 60000, m) excludes it
        if minute >= MINUTE_MS:
            check_answer(diff, data_dir, ad, minute - MINUTE_MS, minute,
                         buckets.get((ad, minute - MINUTE_MS), {}))
    used = {k[0] for k in keys}
    unused = next(str(a) for a in range(987654321, 987654400)
                  if str(a) not in used)
    check_answer(diff, data_dir, unused, None, None, {})
    if not diff.n:
        print("buckets: %d buckets and 3 ranges match" % len(sample))
    return diff.done()


def compare_rejects(diff, ref, rep):
    want = {}
    for side in ("queries", "clicks"):
        for reason, n in ref[side]["rejects"].items():
            want[reason] = want.get(reason, 0) + n
    got = rep.get("rejects")
    if not isinstance(got, dict):
        diff("report has no rejects object")
        return
    got = {k: v for k, v in got.items() if v}
    for reason in sorted(set(want) | set(got)):
        if want.get(reason, 0) != got.get(reason, 0):
            diff("rejects[%s]: expected %d, got %d"
                 % (reason, want.get(reason, 0), got.get(reason, 0)))
    samples = rep.get("first_rejects")
    if not isinstance(samples, list):
        diff("report has no first_rejects list")
        return
    compare_first_rejects(diff, ref["first_rejects"], samples)


def compare_first_rejects(diff, wanted, samples):
    """Same (file, line, reason) entries, in the same order. Compared as
    maps from (file, line) to reason, so that one line judged differently
    shows as one difference; where a list is full (the cap), only up to the
    last place both lists cover."""
    files = []
    for w in wanted:
        real = os.path.realpath(w["file"])
        if real not in files:
            files.append(real)

    def key(entry):
        real = os.path.realpath(str(entry.get("file")))
        if real not in files:
            files.append(real)
        return (files.index(real), entry.get("line"))

    want = {key(w): w["reason"] for w in wanted}
    got = {}
    for g in samples:
        if not isinstance(g, dict) or not isinstance(g.get("line"), int):
            diff("first_rejects entry %r" % (g,))
            return
        got[key(g)] = g.get("reason")
    if [key(g) for g in samples] != sorted(got):
        diff("first_rejects not in input order")
    limit = None
    if len(wanted) >= FIRST_REJECTS_MAX or len(samples) >= FIRST_REJECTS_MAX:
        limit = min(max(want, default=(0, 0)), max(got, default=(0, 0)))
    for k in sorted(set(want) | set(got)):
        if limit is not None and k > limit:
            break
        if want.get(k) != got.get(k):
            diff("first_rejects: %s line %d: expected %s, got %s"
                 % (os.path.basename(files[k[0]]), k[1],
                    want.get(k, "no reject"), got.get(k, "no reject")))
    if len(samples) > FIRST_REJECTS_MAX:
        diff("first_rejects has %d entries, more than %d"
             % (len(samples), FIRST_REJECTS_MAX))


def cmd_report(ref_path, rep_path, check_lines):
    ref = load_ref(ref_path)
    with open(rep_path, encoding="utf-8") as f:
        rep = json.load(f)
    diff = Diff("report")
    q, c = ref["queries"], ref["clicks"]
    want = {
        ("queries", "accepted"): q["accepted"],
        ("queries", "duplicates"): q["duplicates"],
        ("queries", "rejected"): q["rejected"],
        ("clicks", "joined"): c["joined"],
        ("clicks", "duplicates"): c["duplicates"],
        ("clicks", "rejected"): c["rejected"],
        ("clicks", "pending"): c["unknown_query"],
        ("clicks", "unjoined"): 0,
    }
    if check_lines:
        want[("queries", "lines")] = q["lines"]
        want[("clicks", "lines")] = c["lines"]
    for (side, key), n in sorted(want.items()):
        got = rep.get(side, {}).get(key) if isinstance(rep.get(side),
                                                       dict) else None
        if got != n:
            diff("%s.%s: expected %d, got %r" % (side, key, n, got))
    compare_rejects(diff, ref, rep)
    if not diff.n:
        print("report: counters, %d reject reasons and %d first_rejects match"
              % (len(rep.get("rejects", {})), len(ref["first_rejects"])))
    return diff.done()


def cmd_rejects_only(ref_path, rep_path):
    ref = load_ref(ref_path)
    with open(rep_path, encoding="utf-8") as f:
        rep = json.load(f)
    diff = Diff("rejects")
    compare_rejects(diff, ref, rep)
    return diff.done()


def cmd_same_totals(a_path, b_path):
    a, b = ref_totals(load_ref(a_path)), ref_totals(load_ref(b_path))
    diff = Diff("same-totals")
    for key in sorted(set(a) | set(b)):
        if a.get(key, [0, 0]) != b.get(key, [0, 0]):
            diff("ad %s term %r: %r vs %r" % (key[0], key[1], a.get(key),
                                             b.get(key)))
    return diff.done()


def manifest_expect(ref):
    """What gen's manifest.json says of one format, from a reference
    result."""
    q, c = ref["queries"], ref["clicks"]
    return {
        "queries": {"lines": q["lines"],
                    "empty_lines": q["empty_lines"],
                    "accepted": q["accepted"], "duplicates": q["duplicates"],
                    "impressions": sum(x[3] for x in ref["counts"]),
                    "rejects": q["rejects"]},
        "clicks": {"lines": c["lines"],
                   "empty_lines": c["empty_lines"], "joined": c["joined"],
                   "duplicates": c["duplicates"],
                   "unknown_query": c["unknown_query"],
                   "rejects": c["rejects"]},
    }


def cmd_manifest(man_path, ref_paths):
    """ref_paths: {"ndjson": path, "tsv": path} of the formats written."""
    with open(man_path, encoding="utf-8") as f:
        man = json.load(f)
    diff = Diff("manifest")
    if len(ref_paths) == 1:
        (fmt, path), = ref_paths.items()
        if man.get("format") != fmt:
            diff("format %r, expected %r" % (man.get("format"), fmt))
        parts = {fmt: (man, path)}
    else:
        parts = {fmt: (man.get(fmt, {}), path)
                 for fmt, path in ref_paths.items()}
    for fmt, (got, path) in parts.items():
        want = manifest_expect(load_ref(path))
        for side in ("queries", "clicks"):
            g = got.get(side) if isinstance(got, dict) else None
            if not isinstance(g, dict):
                diff("%s: no %s object" % (fmt, side))
                continue
            for key, w in want[side].items():
                if g.get(key) != w:
                    diff("%s.%s.%s: manifest says %r, reference %r"
                         % (fmt, side, key, g.get(key), w))
    if not diff.n:
        print("manifest: every figure of %s matches"
              % " and ".join(sorted(ref_paths)))
    return diff.done()


def main():
    a = sys.argv[1:]
    if len(a) in (3, 4) and a[0] == "totals":
        return cmd_totals(a[1], a[2], a[3:] == ["--csv"])
    if len(a) == 5 and a[0] == "buckets":
        return cmd_buckets(a[1], a[2], int(a[3]), int(a[4]))
    if len(a) in (3, 4) and a[0] == "report":
        return cmd_report(a[1], a[2], a[3:] != ["--no-lines"])
    if len(a) == 3 and a[0] == "rejects-only":
        return cmd_rejects_only(a[1], a[2])
    if len(a) in (3, 4) and a[0] == "manifest":
        refs = dict(x.split("=", 1) for x in a[2:])
        if not set(refs) <= {"ndjson", "tsv"}:
            print(__doc__, file=sys.stderr)
            return 2
        return cmd_manifest(a[1], refs)
    if len(a) == 3 and a[0] == "same-totals":
        return cmd_same_totals(a[1], a[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
