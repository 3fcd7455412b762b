#!/usr/bin/env python3
"""diskfull: the HTTP driver of tests/e2e/test_diskfull.sh — `ctrd serve`
whose disk fills up and frees again (SPEC §3: a failed write refuses
records with 507 and Retry-After while reads go on, and ingest resumes by
itself once writes succeed). Reuses serve_client.py's client and checks and
follow_sse.py's metrics and count checks. Python 3 standard library only.

  diskfull.py post URL OUT.json NAME [--expect STATUS | --until-refused N
          [--acked-queries F --acked-clicks F --rest F]] KIND:CHUNK...
      POSTs the chunks in order on one connection (KIND: queries or
      clicks) and stores every request and answer in OUT.json (the shape
      of serve_client.py ingest's, for its check-ingest). Without
      --until-refused every answer must be STATUS (default 200; 507: with
      Retry-After and a JSON error). With it the posting stops
      at the first 507 and N more chunks (each must be 507 too); before
      it every answer must be 200, and every 507 must carry Retry-After
      (delta-seconds >= 1) and a JSON error. --acked-*: the concatenation
      of the chunks answered 200, by kind; --rest: the KIND:CHUNK of every
      chunk from the first 507 on, one a line. Prints PASS/FAIL lines
      NAME_..., and last the line "refused_at MS": when the first 507
      came, in ms since the epoch.
  diskfull.py outage URL REFUSED_AT_MS SECONDS
      a server whose writes fail since REFUSED_AT_MS: ctrd_writes_failing
      1, ctrd_ready 0, ctrd_write_errors_total >= 1, GET /readyz 503,
      GET /healthz 200; then watches ctrd_write_errors_total (at most
      SECONDS) until two retries were seen: the first about 1 s after the
      failure, the next about 2 s after that (backoff doubling from 1 s),
      none sooner. Prints PASS/FAIL lines.
  diskfull.py wait-metric URL NAME VALUE SECONDS [--at-least]
      waits until /metrics has NAME (no labels) == VALUE (--at-least: >=);
      exit 1 after SECONDS.
  diskfull.py counts URL REF.json SECONDS [--ads-of OTHER.json]
      GET /v1/ads/{id}/terms of every ad of REF (and of OTHER: ads REF
      has no counts for must have none) equals REF's per-term totals,
      retried until SECONDS.
  diskfull.py state-files DIR OUT.json
      records the checkpoint files in data directory DIR (name and size)
      and which of them its MANIFEST names.
  diskfull.py leftovers DIR AT.json
      after a checkpoint succeeded: every checkpoint file AT.json saw
      (while writes failed) was named by the MANIFEST then or is named by
      the MANIFEST now; anything else was left by a failed checkpoint and
      held its disk space while the disk was full.
  diskfull.py acked OUT.json RESULT.json...
      writes the requests answered 200 of the RESULTs as one result.
  diskfull.py other-ids IN.ndjson OUT.ndjson
      a log of valid NDJSON records and empty lines (`ctrd gen` without
      --tricky) with every query_id v replaced by v XOR 2^62: `ctrd gen`
      numbers queries the same way whatever the seed, and the test's two
      logs must not share queries (which copy of a query_id counts would
      depend on the order of arrival between them).
Exit status 0 when every check passed, 1 otherwise.
"""
import argparse
import http.client
import json
import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import compare  # noqa: E402  (tests/e2e/compare.py)
import follow_sse as fs  # noqa: E402  (tests/e2e/follow_sse.py)
import serve_client as sc  # noqa: E402  (tests/e2e/serve_client.py)

POLL_S = 0.05
# datadir.h: the files a checkpoint writes
STATE_FILE = re.compile(r"MANIFEST\.tmp|(counts|pending)-[0-9]+\.dat|"
                        r"q[0-9]+-[0-9]+-[0-9]+\.run|m[0-9]+-[0-9]+-[0-9]+"
                        r"\.marks")
RETRY_FIRST_S = 1.0  # SPEC-level promise of serve.c: 1 s, doubling to 16 s
SLACK_EARLY_S = 0.15  # a retry may be seen this much before its time
SLACK_LATE_S = 4.0  # ... and this much after it (a busy box, sanitizers)


def metric_value(client, name):
    """The sample of name without labels in /metrics, or None."""
    m = fs.metrics(client)
    v = m.get((name, frozenset()))
    return None if v is None else int(v)


# ---- post ----

def cmd_post(args):
    ck = sc.Checks(args.name)
    chunks = []
    for spec in args.chunks:
        kind, _sep, path = spec.partition(":")
        if kind not in ("queries", "clicks") or not path:
            print("post: %r is not KIND:CHUNK" % spec)
            return 2
        chunks.append((kind, path))
    c = sc.Client(args.url)
    recs, refused_at, after_refusal = [], None, 0
    for kind, path in chunks:
        if refused_at is not None and after_refusal >= args.until_refused:
            break
        with open(path, "rb") as f:
            body = f.read()
        rec = {"kind": kind, "chunk": path, "status": None, "answer": None,
               "retry_after": None, "t1": None, "error": None}
        try:
            status, hdrs, data = c.request("POST", "/v1/" + kind, body,
                                           sc.post_headers("ndjson", False))
            rec["status"], rec["retry_after"] = status, hdrs.get(
                "retry-after")
            text = data.decode("utf-8", "replace")
            try:
                rec["answer"] = json.loads(text)
            except ValueError:
                rec["answer"] = text[:300]
        except (OSError, http.client.HTTPException) as e:
            rec["error"] = "%s: %s" % (type(e).__name__, e)
            c.close()
        rec["t1"] = time.time() * 1000
        recs.append(rec)
        if refused_at is not None:
            after_refusal += 1
        elif args.until_refused is not None and rec["status"] == 507:
            refused_at = rec["t1"]
    c.close()
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump({"requests": recs}, f)
    statuses = [r["status"] or r["error"] for r in recs]
    print("post: %d requests, statuses %s" % (len(recs), compact(statuses)))
    if args.until_refused is None:
        bad = [r for r in recs if r["status"] != args.expect]
        ck("all_%d" % args.expect, not bad and len(recs) == len(chunks),
           "%d of %d answered otherwise, first: %s %s: %s %r"
           % (len(bad), len(chunks), bad and bad[0]["kind"],
              bad and os.path.basename(bad[0]["chunk"]),
              bad and (bad[0]["status"] or bad[0]["error"]),
              bad and str(bad[0]["answer"])[:150]))
        if args.expect == 507:
            check_refusals(ck, recs)
        return ck.failed
    first = next((i for i, r in enumerate(recs) if r["status"] == 507), None)
    if first is None:
        ck("refused_507", False, "no 507 in %d requests: %s"
           % (len(recs), compact(statuses)))
        return ck.failed
    before, after = recs[:first], recs[first:]
    ck("accepted_until_full", before and all(
        r["status"] == 200 for r in before),
       "before the first 507: %s" % compact(statuses[:first]))
    ck("refused_507", len(after) == args.until_refused + 1 and all(
        r["status"] == 507 for r in after),
       "from the first 507 on: %s" % compact(statuses[first:]))
    check_refusals(ck, after)
    for kind, out in (("queries", args.acked_queries),
                      ("clicks", args.acked_clicks)):
        if out:
            sc.write_concatenation(out, [r["chunk"] for r in before
                                         if r["kind"] == kind])
    if args.rest:
        with open(args.rest, "w", encoding="utf-8") as f:
            for kind, path in chunks[first:]:
                f.write("%s:%s\n" % (kind, path))
    print("post: %d chunks acknowledged before the disk was full"
          % len(before))
    print("refused_at %d" % refused_at)
    return ck.failed


def check_refusals(ck, recs):
    """Every 507 carries Retry-After (delta-seconds >= 1) and a JSON
    error."""
    refused = [r for r in recs if r["status"] == 507]
    bad_ra = [r["retry_after"] for r in refused
              if not (r["retry_after"] or "").isdigit()
              or int(r["retry_after"]) < 1]
    ck("507_retry_after", refused and not bad_ra,
       "Retry-After of the 507 answers: %r" % [r["retry_after"]
                                               for r in refused])
    bad_body = [r["answer"] for r in refused
                if not (isinstance(r["answer"], dict)
                        and isinstance(r["answer"].get("error"), str))]
    ck("507_json_error", refused and not bad_body,
       "bodies %r" % bad_body[:2])


def compact(values):
    """[200, 200, 507] -> '200x2 507x1'."""
    out = []
    for v in values:
        if out and out[-1][0] == v:
            out[-1][1] += 1
        else:
            out.append([v, 1])
    return " ".join("%sx%d" % (v, n) for v, n in out)


# ---- outage ----

def cmd_outage(args):
    ck = sc.Checks("diskfull_outage")
    c = sc.Client(args.url)
    m = fs.metrics(c)
    got = {n: m.get((n, frozenset())) for n in (
        "ctrd_writes_failing", "ctrd_ready", "ctrd_write_errors_total",
        "ctrd_up")}
    ck("writes_failing_gauge", got["ctrd_writes_failing"] == 1
       and got["ctrd_ready"] == 0, "metrics %r" % got)
    ck("write_errors_counted", (got["ctrd_write_errors_total"] or 0) >= 1,
       "metrics %r" % got)
    st = ck.status("readyz_503", c, "GET", "/readyz", 503)
    ck("readyz_says_writes_fail", st is not None and b"write" in st[2],
       "body %r" % (st and st[2]))
    ck.status("healthz_200", c, "GET", "/healthz", 200)
    # Retries: ctrd_write_errors_total counts the first failure and every
    # failed retry; retry k (k = 1, 2, ...) comes 2^k - 1 s after the
    # failure (1 s, then doubling). Retry k happened after not_yet[k] (when
    # the last poll that did not see its count was sent) and before
    # seen[k] (when the first poll that saw it was answered): on a busy
    # box a poll may be late, and the bounds widen instead of lying.
    t0 = args.refused_at / 1000.0
    deadline = time.monotonic() + args.seconds
    seen, not_yet = {}, {}
    last = None
    while time.monotonic() < deadline:
        sent = time.time()
        try:
            last = metric_value(c, "ctrd_write_errors_total")
        except (OSError, RuntimeError):
            c.close()
            last = None
        now = time.time()
        if last is not None and last - 1 not in seen:
            seen[last - 1] = now
        if last is not None:
            not_yet[last] = sent
        if any(k >= 1 and k + 1 in seen for k in seen):
            break
        time.sleep(POLL_S)
    retries = sorted(k for k in seen if k >= 1)
    print("outage: retries seen %s" % ", ".join(
        "#%d at +%.2f s" % (k, seen[k] - t0) for k in retries))
    ck("writes_retried", len(retries) >= 2,
       "ctrd_write_errors_total went %r in %ss" % (last, args.seconds))
    problems = []
    for k in retries:
        # retry k comes at 2^k - 1 s (the cap of 16 s is far away)
        due = (2 ** k - 1) * RETRY_FIRST_S
        if k == min(retries) and seen[k] - t0 < due - SLACK_EARLY_S:
            problems.append("retry %d at +%.2f s, due at +%.0f s"
                            % (k, seen[k] - t0, due))
        if k + 1 in seen:
            want = 2 ** k * RETRY_FIRST_S
            most = seen[k + 1] - not_yet.get(k, seen[k] - POLL_S)
            least = not_yet.get(k + 1, seen[k + 1] - POLL_S) - seen[k]
            if most < want - SLACK_EARLY_S or least > want + SLACK_LATE_S:
                problems.append("retries %d and %d %.2f to %.2f s apart, "
                                "expected %.0f s" % (k, k + 1, least, most,
                                                     want))
    ck("retry_backoff", retries and not problems, "; ".join(problems))
    m = fs.metrics(c)
    ck("still_failing", m.get(("ctrd_writes_failing", frozenset())) == 1,
       "ctrd_writes_failing %r" % m.get(("ctrd_writes_failing",
                                           frozenset())))
    return ck.failed


# ---- waiting, counts ----

def cmd_wait_metric(args):
    c = sc.Client(args.url)
    start = time.monotonic()
    deadline = start + args.seconds
    v = None
    while time.monotonic() < deadline:
        try:
            v = metric_value(c, args.name)
        except (OSError, RuntimeError):
            c.close()
        if v is not None and (v >= args.value if args.at_least
                              else v == args.value):
            print("wait-metric: %s %d after %.1f s"
                  % (args.name, v, time.monotonic() - start))
            return 0
        time.sleep(POLL_S)
    print("wait-metric: %s is %r after %ss, expected %s%d"
          % (args.name, v, args.seconds, ">= " if args.at_least else "",
             args.value))
    return 1


def cmd_counts(args):
    ref = compare.load_ref(args.ref)
    ads = {row[0] for row in ref["counts"]}
    if args.ads_of:
        ads |= {row[0] for row in compare.load_ref(args.ads_of)["counts"]}
    ads = sorted(ads, key=int)
    c = sc.Client(args.url)
    start = time.monotonic()
    deadline = start + args.seconds
    while True:
        diff = fs.counts_diff(c, ref, ads)
        if not diff.n or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    if diff.n:
        print("\n".join(diff.lines))
        if diff.n > compare.MAX_SHOWN:
            print("counts: ... %d differences in all" % diff.n)
        return 1
    print("counts: every term of %d ads equals the reference (%.1f s)"
          % (len(ads), time.monotonic() - start))
    return 0


def named(data_dir):
    """The checkpoint files DIR/MANIFEST names."""
    with open(os.path.join(data_dir, "MANIFEST"), encoding="utf-8") as f:
        return {w for w in f.read().split() if STATE_FILE.fullmatch(w)}


def state_files(data_dir):
    return {n: os.path.getsize(os.path.join(data_dir, n))
            for n in os.listdir(data_dir) if STATE_FILE.fullmatch(n)}


def cmd_state_files(args):
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump({"files": state_files(args.dir),
                   "named": sorted(named(args.dir))}, f)
    return 0


def cmd_leftovers(args):
    with open(args.at, encoding="utf-8") as f:
        at = json.load(f)
    now = named(args.dir)
    left = {n: size for n, size in at["files"].items()
            if n not in at["named"] and n not in now}
    if left:
        print("leftovers: %d files of failed checkpoints (%d bytes) were on "
              "the full disk: %s" % (len(left), sum(left.values()),
                                     ", ".join("%s (%d bytes)" % kv
                                               for kv in sorted(
                                                   left.items()))))
        return 1
    print("leftovers: none of the %d checkpoint files seen while writes "
          "failed was a failed checkpoint's" % len(at["files"]))
    return 0


def cmd_acked(args):
    recs = []
    for path in args.results:
        with open(path, encoding="utf-8") as f:
            recs += [r for r in json.load(f)["requests"]
                     if r["status"] == 200]
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump({"requests": recs}, f)
    return 0


def cmd_other_ids(args):
    with open(args.inp, "rb") as f, open(args.out, "wb") as out:
        for line in f:  # bytes: a CR is JSON white space, not a line end
            if not line.strip():
                out.write(line)  # an empty line stays one
                continue
            rec = json.loads(line)
            qid = int(rec["query_id"]) ^ (1 << 62)
            rec["query_id"] = qid if isinstance(rec["query_id"], int) \
                else str(qid)
            out.write(json.dumps(rec, ensure_ascii=False,
                                 separators=(",", ":")).encode() + b"\n")
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("post")
    s.add_argument("url")
    s.add_argument("out")
    s.add_argument("name")
    s.add_argument("--until-refused", type=int, metavar="N")
    s.add_argument("--expect", type=int, default=200)
    s.add_argument("--acked-queries")
    s.add_argument("--acked-clicks")
    s.add_argument("--rest")
    s.add_argument("chunks", nargs="+")
    s.set_defaults(fn=cmd_post)
    s = sub.add_parser("outage")
    s.add_argument("url")
    s.add_argument("refused_at", type=float)
    s.add_argument("seconds", type=float)
    s.set_defaults(fn=cmd_outage)
    s = sub.add_parser("wait-metric")
    s.add_argument("url")
    s.add_argument("name")
    s.add_argument("value", type=int)
    s.add_argument("seconds", type=float)
    s.add_argument("--at-least", action="store_true")
    s.set_defaults(fn=cmd_wait_metric)
    s = sub.add_parser("counts")
    s.add_argument("url")
    s.add_argument("ref")
    s.add_argument("seconds", type=float)
    s.add_argument("--ads-of")
    s.set_defaults(fn=cmd_counts)
    s = sub.add_parser("state-files")
    s.add_argument("dir")
    s.add_argument("out")
    s.set_defaults(fn=cmd_state_files)
    s = sub.add_parser("leftovers")
    s.add_argument("dir")
    s.add_argument("at")
    s.set_defaults(fn=cmd_leftovers)
    s = sub.add_parser("acked")
    s.add_argument("out")
    s.add_argument("results", nargs="+")
    s.set_defaults(fn=cmd_acked)
    s = sub.add_parser("other-ids")
    s.add_argument("inp")
    s.add_argument("out")
    s.set_defaults(fn=cmd_other_ids)
    args = p.parse_args()
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
