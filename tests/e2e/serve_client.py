#!/usr/bin/env python3
"""serve_client: the HTTP driver of tests/e2e/test_serve.sh — `ctrd serve`
through real HTTP (SPEC §5-§6), checked against tests/reference.py.
Python 3 standard library only.

  serve_client.py port
      prints a free TCP port of 127.0.0.1.
  serve_client.py wait-ready URL SECONDS [PID]
      waits until GET /readyz answers 200 (exit 1 after SECONDS, or as soon
      as process PID has exited).
  serve_client.py ingest URL OUT.json --queries CHUNK... --clicks CHUNK...
          [--click-conns N] [--format ndjson|tsv] [--gzip] [--token T]
          [--signal-after PID AFTER [--signal TERM|KILL]]
      POSTs the query chunks in order on one connection, and the click
      chunks on N-1 other connections started first (so that most clicks
      arrive before their queries) and one started half way through the
      queries, which takes every other click chunk. A 503 is retried after
      a tenth of its Retry-After (at most 0.1 s). Every request and answer
      goes to OUT.json. With --signal-after, the click connections post
      all their chunks, then the queries start while the clicks are
      re-posted over and over (which changes no count); PID gets the
      signal once AFTER query chunks were acknowledged, and every
      connection stops at its first failure.
  serve_client.py check-ingest REF.json RESULT.json [--repost]
      the answers of an `ingest` of exactly the reference's inputs: summed
      accepted/duplicates/rejected and each request's "errors" against the
      reference (--repost: everything had been ingested before).
  serve_client.py interrupted RESULT.json Q_OUT C_OUT Q_MAYBE_OUT [--killed]
      after an `ingest --signal-after`: checks that the acknowledged query
      chunks are a prefix of those sent, that nothing failed before the
      signal and (SIGTERM) that requests in flight were answered; writes
      the concatenations of the acknowledged query and click chunks, and
      of the acknowledged query chunks plus the one in flight, if any.
  serve_client.py sample REF.json OUT.json SEED
      picks the ads to compare: the 20 busiest, 20 random, one unknown, and
      terms and ranges for the finer requests.
  serve_client.py snapshot URL SAMPLE.json OUT.json [--token T]
      GETs /terms, /series (1m, 1d, 1h per term) and parameter variants of
      the sampled ads; stores status and body of each.
  serve_client.py check-snapshot REF.json SAMPLE.json SNAP.json
      every stored answer against the reference.
  serve_client.py same-snapshot A.json B.json [--as-of]
      the two snapshots hold the same answers, "as_of" aside (--as-of: the
      same "as_of" values).
  serve_client.py param-forms URL REF.json SAMPLE.json
      the other ways to write parameters: a term with a TAB for a space
      (SPEC §2 normalisation), from/to in RFC 3339 (Z and an offset).
      Prints its own PASS/FAIL lines.
  serve_client.py metrics URL REF.json
      /metrics is Prometheus text and its join and reject counters equal
      the reference's (a server that ingested exactly the reference's
      inputs since it started).
  serve_client.py catalog REF.json OUT.csv
      writes an ads catalog: busiest ads to advertisers 1 and 2, one
      advertiser-1 ad without data; the 6th busiest ad stays out.
  serve_client.py auth URL REF.json CATALOG.csv ADMIN INGEST ADV1 ADV2 CHUNK
      access control (SPEC §6) of a server started with --auth and --ads;
      prints its own PASS/FAIL lines.
  serve_client.py bad-requests URL
      400 bad gzip, 415 other content types and encodings (nothing of them
      is counted); gzip counted; the NDJSON type with a parameter or in
      upper case accepted. Prints its own PASS/FAIL lines.
  serve_client.py saturate URL SECONDS CHUNK...
      a server with a small --max-queue: re-posts the (already ingested)
      query chunks on 8 connections until a 503 comes (at most SECONDS);
      every 503 must carry Retry-After. Prints its own PASS/FAIL lines.
  serve_client.py max-body URL
      a server started with --max-body 1K: 1024 bytes pass, 1025 and a gzip
      body over 1K once inflated are 413 and counted nothing. Prints its own
      PASS/FAIL lines.
Exit status 0 when every check passed, 1 otherwise.
"""
import argparse
import csv
import gzip
import http.client
import json
import os
import random
import signal
import socket
import sys
import threading
import time
import urllib.parse
from fractions import Fraction

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import compare  # noqa: E402  (tests/e2e/compare.py)
import reference  # noqa: E402  (tests/reference.py)

MINUTE_MS = 60000
STEPS_MS = {"1m": 60000, "1h": 3600000, "1d": 86400000}
CONTENT_TYPES = {"ndjson": "application/x-ndjson",
                 "tsv": "text/tab-separated-values"}
UNKNOWN_AD_BASE = 987654321
LIMIT_MAX = 10000
REQUEST_TIMEOUT_S = 30
RETRY_503_MAX = 200
SIGNAL_RUN_MAX_S = 60


# ---- HTTP ----

class Client:
    """One keep-alive connection. GETs are retried once on a connection the
    server had closed; POSTs never are (the caller decides)."""

    def __init__(self, url, token=None):
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname, u.port
        self.token = token
        self.conn = None

    def close(self):
        if self.conn:
            self.conn.close()
            self.conn = None

    def _once(self, method, path, body, headers):
        if self.conn is None:
            self.conn = http.client.HTTPConnection(
                self.host, self.port, timeout=REQUEST_TIMEOUT_S)
        h = dict(headers or {})
        if self.token is not None and "Authorization" not in h:
            h["Authorization"] = "Bearer " + self.token
        try:
            self.conn.request(method, path, body=body, headers=h)
            r = self.conn.getresponse()
            data = r.read()
        except BaseException:
            self.close()
            raise
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        if r.will_close:
            self.close()
        return r.status, hdrs, data

    def request(self, method, path, body=None, headers=None):
        """(status, {lower-case header: value}, body bytes)."""
        fresh = self.conn is None
        try:
            return self._once(method, path, body, headers)
        except (http.client.RemoteDisconnected, ConnectionResetError,
                BrokenPipeError):
            if method != "GET" or fresh:
                raise
            return self._once(method, path, body, headers)

    def get_json(self, path, headers=None):
        """(status, parsed JSON or the text when it is not JSON)."""
        status, _h, data = self.request("GET", path, headers=headers)
        text = data.decode("utf-8", "replace")
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text


def post_headers(fmt, gz):
    h = {"Content-Type": CONTENT_TYPES[fmt]}
    if gz:
        h["Content-Encoding"] = "gzip"
    return h


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def cmd_port(_args):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
    s.close()
    return 0


def cmd_wait_ready(args):
    deadline = time.monotonic() + args.seconds
    c = Client(args.url)
    last = "no answer"
    while time.monotonic() < deadline:
        if args.pid and not pid_alive(args.pid):
            print("wait-ready: the server exited (%s)" % last)
            return 1
        try:
            status, _h, _d = c.request("GET", "/readyz")
            if status == 200:
                return 0
            last = "GET /readyz: %d" % status
        except OSError as e:
            c.close()
            last = "GET /readyz: %s" % e
        time.sleep(0.05)
    print("wait-ready: not ready after %ss (%s)" % (args.seconds, last))
    return 1


# ---- ingest ----

class Ingest:
    def __init__(self, args):
        self.args = args
        self.interrupt = args.signal_after  # (pid, after) or None
        self.lock = threading.Lock()
        self.records = []
        self.stop = threading.Event()  # interrupted: stop posting
        self.clicks_went = threading.Event()  # the queries may start
        self.click_passes = 0
        self.queries_half = threading.Event()
        self.queries_acked = 0
        self.signalled = threading.Event()
        self.signal_ms = None

    def post(self, client, kind, path):
        """Posts one chunk (retrying 503s); returns its record."""
        a = self.args
        with open(path, "rb") as f:
            body = f.read()
        if a.gzip:
            body = gzip.compress(body)
        rec = {"kind": kind, "chunk": path, "status": None, "answer": None,
               "retries_503": 0, "retry_after_missing": 0,
               "t0": time.time() * 1000, "t1": None, "error": None}
        while True:
            try:
                status, hdrs, data = client.request(
                    "POST", "/v1/" + kind, body, post_headers(a.format,
                                                              a.gzip))
            except (OSError, http.client.HTTPException) as e:
                rec["error"] = "%s: %s" % (type(e).__name__, e)
                break
            rec["status"] = status
            if status == 503 and not self.signalled.is_set() and \
                    rec["retries_503"] < RETRY_503_MAX:
                rec["retries_503"] += 1
                ra = hdrs.get("retry-after")
                if ra is None:
                    rec["retry_after_missing"] += 1
                time.sleep(min(1.0, float(ra or 1)) / 10)
                continue
            text = data.decode("utf-8", "replace")
            try:
                rec["answer"] = json.loads(text)
            except ValueError:
                rec["answer"] = text[:300]
            break
        rec["t1"] = time.time() * 1000
        with self.lock:
            self.records.append(rec)
        return rec

    def failed(self, rec):
        """After an answer: whether this connection stops (interrupted runs
        stop at their first failure)."""
        if rec["status"] == 200 or not self.interrupt:
            return False
        self.stop.set()
        return True

    def query_stream(self, chunks):
        self.clicks_went.wait(30)
        c = Client(self.args.url, self.args.token)
        for i, path in enumerate(chunks):
            if self.stop.is_set():
                break
            rec = self.post(c, "queries", path)
            if rec["status"] != 200:
                self.failed(rec)
                break
            with self.lock:
                self.queries_acked += 1
            if i + 1 >= len(chunks) // 2:
                self.queries_half.set()
        self.queries_half.set()
        c.close()

    def click_stream(self, chunks, wait_half, n_streams):
        """Without interruption: one pass, the queries starting after the
        first answer. Interrupted: passes until stopped, the queries
        starting after every stream's first pass (so that only re-posts,
        which change no count, are in flight at the signal)."""
        if wait_half:
            self.queries_half.wait(120)
        c = Client(self.args.url, self.args.token)
        first = True
        while not self.stop.is_set():
            for path in chunks:
                if self.stop.is_set() or self.failed(
                        self.post(c, "clicks", path)):
                    break
                if not self.interrupt:
                    self.clicks_went.set()
            if first:
                first = False
                with self.lock:
                    self.click_passes += 1
                    if self.click_passes == n_streams:
                        self.clicks_went.set()
            if not self.interrupt or not chunks:
                break
        self.clicks_went.set()
        c.close()

    def run(self):
        a = self.args
        clicks = list(a.clicks)
        n = max(1, a.click_conns)
        if n == 1 or self.interrupt:
            groups = [(clicks[i::n], False) for i in range(n)]
        else:
            early, late = clicks[0::2], clicks[1::2]
            groups = [(early[i::n - 1], False) for i in range(n - 1)]
            groups.append((late, True))
        threads = [threading.Thread(target=self.click_stream,
                                    args=g + (len(groups),))
                   for g in groups]
        threads.append(threading.Thread(target=self.query_stream,
                                        args=(list(a.queries),)))
        if not clicks:
            self.clicks_went.set()
        for t in threads:
            t.start()
        if self.interrupt:
            self.send_signal()
        for t in threads:
            t.join()

    def send_signal(self):
        pid, after = self.interrupt
        deadline = time.monotonic() + SIGNAL_RUN_MAX_S
        while time.monotonic() < deadline and not self.stop.is_set():
            with self.lock:
                if self.queries_acked >= after:
                    break
            time.sleep(0.001)
        self.signal_ms = time.time() * 1000
        self.signalled.set()
        os.kill(pid, getattr(signal, "SIG" + self.args.signal))
        # every connection stops at its first failure, or here
        while time.monotonic() < deadline and pid_alive(pid):
            time.sleep(0.01)
        self.stop.set()


def cmd_ingest(args):
    if args.signal_after:
        args.signal_after = tuple(int(v) for v in args.signal_after)
    ing = Ingest(args)
    start = time.monotonic()
    ing.run()
    took = time.monotonic() - start
    recs = ing.records
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump({"requests": recs, "signal_ms": ing.signal_ms}, f)
    statuses = {}
    for r in recs:
        key = r["status"] if r["status"] is not None else "no answer"
        statuses[key] = statuses.get(key, 0) + 1
    retried = sum(r["retries_503"] for r in recs)
    print("ingest: %d requests in %.1f s, statuses %r, %d retries after 503"
          % (len(recs), took, statuses, retried))
    if args.signal_after:
        return 0
    bad = [r for r in recs if r["status"] != 200]
    for r in bad[:5]:
        print("ingest: POST /v1/%s %s: %s %s" % (
            r["kind"], os.path.basename(r["chunk"]),
            r["status"] or r["error"], r["answer"]))
    missing = sum(r["retry_after_missing"] for r in recs)
    if missing:
        print("ingest: %d answers 503 without Retry-After" % missing)
    return 1 if bad or missing else 0


# ---- what the reference says of each chunk ----

def chunk_format(path):
    return "tsv" if path.endswith(".tsv") else "ndjson"


def chunk_lines(path):
    return list(reference.file_lines(path))


class Oracle:
    """Reference verdicts per line of each chunk."""

    def __init__(self, query_chunks):
        self.counter = reference.Counter(reference.DEFAULT_JOIN_WINDOW_MS)
        for path in query_chunks:
            self.counter.add_query_file(path, chunk_format(path))

    @staticmethod
    def query_rejects(path):
        """[(line, reason)] of a query chunk."""
        out = []
        for number, line in chunk_lines(path):
            status, _rec = reference.parse_line("query", chunk_format(path),
                                                line)
            if status not in ("ok", "empty"):
                out.append((number, status))
        return out

    def click_rejects(self, path):
        """([(line, reason)] of every reject with all queries known,
        {line: reason} of the parse rejects)."""
        out, parse = [], {}
        for number, line in chunk_lines(path):
            status, rec = reference.parse_line("click", chunk_format(path),
                                               line)
            if status == "empty":
                continue
            if status != "ok":
                out.append((number, status))
                parse[number] = status
                continue
            qid, ad, t = rec
            q = self.counter.queries.get(qid)
            if q is None:
                continue
            if ad not in q[2]:
                out.append((number, "click_ad_not_shown"))
            elif not (q[0] - reference.EARLY_CLICK_MS <= t
                      <= q[0] + self.counter.join_window_ms):
                out.append((number, "click_outside_window"))
        return out, parse


def answer_errors(rec, diff):
    """[(line, reason)] of an answer, or None when it is not the SPEC §5
    shape."""
    a = rec["answer"]
    where = "POST /v1/%s %s" % (rec["kind"], os.path.basename(rec["chunk"]))
    if rec["status"] != 200 or not isinstance(a, dict):
        diff("%s: status %s, answer %r" % (where, rec["status"], a))
        return None
    for key in ("accepted", "duplicates", "rejected"):
        if not isinstance(a.get(key), int):
            diff("%s: %r is not a count in %r" % (where, key, a))
            return None
    errs = a.get("errors")
    if not isinstance(errs, list) or not all(
            isinstance(e, dict) and isinstance(e.get("line"), int)
            and isinstance(e.get("reason"), str) for e in errs):
        diff("%s: errors %r" % (where, errs))
        return None
    return [(e["line"], e["reason"]) for e in errs]


def check_query_errors(diff, rec, got):
    want = Oracle.query_rejects(rec["chunk"])[:reference.FIRST_REJECTS_MAX]
    if got != want:
        diff("POST /v1/queries %s: errors %r, expected %r"
             % (os.path.basename(rec["chunk"]), got[:5], want[:5]))
    if rec["answer"]["rejected"] != len(Oracle.query_rejects(rec["chunk"])):
        diff("POST /v1/queries %s: rejected %d, expected %d"
             % (os.path.basename(rec["chunk"]), rec["answer"]["rejected"],
                len(Oracle.query_rejects(rec["chunk"]))))


def check_click_errors(diff, oracle, rec, got, repost):
    """repost: all queries were known, so the errors are exactly the
    reference's; else a click may have come before its query (its join
    reject then shows later, in no answer)."""
    want, parse = oracle.click_rejects(rec["chunk"])
    name = "POST /v1/clicks %s" % os.path.basename(rec["chunk"])
    if repost:
        if got != want[:reference.FIRST_REJECTS_MAX]:
            diff("%s: errors %r, expected %r" % (name, got[:5], want[:5]))
        return
    allowed = dict(want)
    if [g[0] for g in got] != sorted(set(g[0] for g in got)):
        diff("%s: errors not in line order: %r" % (name, got[:10]))
    for line, reason in got:
        if allowed.get(line) != reason:
            diff("%s: line %d reported %s, reference says %s"
                 % (name, line, reason, allowed.get(line, "no reject")))
    limit = got[-1][0] if len(got) >= reference.FIRST_REJECTS_MAX else None
    reported = dict(got)
    for line, reason in sorted(parse.items()):
        if (limit is None or line <= limit) and line not in reported:
            diff("%s: line %d (%s) not in errors" % (name, line, reason))


def sums(recs, kind):
    s = {"accepted": 0, "duplicates": 0, "rejected": 0}
    for r in recs:
        if r["kind"] == kind and isinstance(r["answer"], dict):
            for k in s:
                s[k] += r["answer"].get(k, 0) if isinstance(
                    r["answer"].get(k), int) else 0
    return s


def cmd_check_ingest(args):
    ref = compare.load_ref(args.ref)
    with open(args.result, encoding="utf-8") as f:
        recs = json.load(f)["requests"]
    diff = compare.Diff("check-ingest")
    qchunks = sorted({r["chunk"] for r in recs if r["kind"] == "queries"})
    oracle = Oracle(qchunks)
    for rec in sorted(recs, key=lambda r: (r["kind"], r["chunk"])):
        got = answer_errors(rec, diff)
        if got is None:
            continue
        if rec["kind"] == "queries":
            check_query_errors(diff, rec, got)
        else:
            check_click_errors(diff, oracle, rec, got, args.repost)
    q, c = ref["queries"], ref["clicks"]
    parse_rejects = sum(n for r, n in c["rejects"].items()
                        if r not in ("click_ad_not_shown",
                                     "click_outside_window"))
    gq, gc = sums(recs, "queries"), sums(recs, "clicks")
    if args.repost:
        want_q = {"accepted": 0, "duplicates": q["accepted"] + q["duplicates"],
                  "rejected": q["rejected"]}
    else:
        want_q = {"accepted": q["accepted"], "duplicates": q["duplicates"],
                  "rejected": q["rejected"]}
    if gq != want_q:
        diff("queries: answers sum to %r, expected %r" % (gq, want_q))
    total = gc["accepted"] + gc["duplicates"] + gc["rejected"]
    if total != c["lines"]:
        diff("clicks: answers sum to %r = %d lines, the reference read %d"
             % (gc, total, c["lines"]))
    if args.repost:
        if gc["rejected"] != c["rejected"]:
            diff("clicks: rejected %d, expected %d"
                 % (gc["rejected"], c["rejected"]))
        if gc["accepted"] > c["unknown_query"]:
            diff("clicks: %d accepted again, more than the %d still waiting"
                 % (gc["accepted"], c["unknown_query"]))
    else:
        if not parse_rejects <= gc["rejected"] <= c["rejected"]:
            diff("clicks: rejected %d, expected %d..%d"
                 % (gc["rejected"], parse_rejects, c["rejected"]))
        if gc["accepted"] < c["joined"]:
            diff("clicks: accepted %d, fewer than the %d joined"
                 % (gc["accepted"], c["joined"]))
    if not diff.n:
        print("check-ingest: %d answers; queries %r; clicks %r"
              % (len(recs), gq, gc))
    return diff.done()


def write_concatenation(out, chunks):
    with open(out, "wb") as f:
        for path in chunks:
            with open(path, "rb") as c:
                f.write(c.read())


def cmd_interrupted(args):
    with open(args.result, encoding="utf-8") as f:
        res = json.load(f)
    recs, sig = res["requests"], res["signal_ms"]
    diff = compare.Diff("interrupted")
    if sig is None:
        diff("no signal was sent")
        return diff.done()
    qs = sorted((r for r in recs if r["kind"] == "queries"),
                key=lambda r: r["t0"])
    acked_q = [r["chunk"] for r in qs if r["status"] == 200]
    if [r["chunk"] for r in qs[:len(acked_q)]] != acked_q:
        diff("acknowledged query chunks are not a prefix of those sent")
    if acked_q != sorted(acked_q):
        diff("query chunks not sent in order")
    maybe_q = acked_q + [r["chunk"] for r in qs[len(acked_q):][:1]
                         if r["t0"] < sig]
    acked_c = sorted({r["chunk"] for r in recs
                      if r["kind"] == "clicks" and r["status"] == 200})
    bad = [r for r in recs if r["status"] not in (200, None, 503)
           or (r["status"] in (None, 503) and r["t1"] < sig)]
    for r in bad[:5]:
        diff("POST /v1/%s %s before the signal: %s %r"
             % (r["kind"], os.path.basename(r["chunk"]),
                r["status"] or r["error"], r["answer"]))
    inflight = [r for r in recs if r["t0"] < sig < r["t1"]]
    answered = [r for r in inflight if r["status"] == 200]
    lost = [r for r in inflight if r["status"] is None]
    after = [r for r in recs if r["t0"] > sig]
    others = sorted({"%s %s" % (r["status"], r["answer"]) for r in inflight
                     if r["status"] not in (200, None)})
    print("%s: %d requests before it, %d in flight (%d answered 200, "
          "others %s, %d without answer: %s), %d sent after it (%s); %d "
          "query and %d click chunks acknowledged"
          % ("kill -9" if args.killed else "SIGTERM",
             sum(1 for r in recs if r["t1"] < sig), len(inflight),
             len(answered), others, len(lost),
             sorted({r["error"] for r in lost}),
             len(after), sorted({str(r["status"] or r["error"])
                                 for r in after}),
             len(acked_q), len(acked_c)))
    if not args.killed and not answered:
        diff("no request in flight at the SIGTERM was answered 200")
    write_concatenation(args.queries_out, acked_q)
    write_concatenation(args.clicks_out, acked_c)
    write_concatenation(args.maybe_queries_out, maybe_q)
    return diff.done()


# ---- read API ----

def ad_totals(ref):
    tot = {}
    for ad, _term, _minute, imps, clicks in ref["counts"]:
        t = tot.setdefault(ad, [0, 0])
        t[0] += imps
        t[1] += clicks
    return tot


def unknown_ad(ref):
    used = {c[0] for c in ref["counts"]}
    return next(str(a) for a in range(UNKNOWN_AD_BASE, UNKNOWN_AD_BASE + 99)
                if str(a) not in used)


def ascii_upper(s):
    return "".join(ch.upper() if ch.isascii() else ch for ch in s)


def cmd_sample(args):
    ref = compare.load_ref(args.ref)
    tot = ad_totals(ref)
    by_busy = sorted(tot, key=lambda a: (-tot[a][0], int(a)))
    rng = random.Random(args.seed)
    busiest = by_busy[:20]
    rest = by_busy[20:]
    picked = busiest + rng.sample(rest, min(20, len(rest)))
    terms = {}
    for ad, term, _m, imps, _c in ref["counts"]:
        if ad in picked:
            terms.setdefault(ad, {}).setdefault(term, 0)
            terms[ad][term] += imps
    series = []  # [ad, term as sent, term it means]
    for ad in busiest[:3]:
        ranked = sorted(terms[ad], key=lambda t: (-terms[ad][t], t))
        series.append([ad, ranked[0], ranked[0]])
        series.append([ad, ranked[len(ranked) // 2], ranked[len(ranked) // 2]])
        odd = [t for t in ranked if not t.isascii()]
        if odd:
            series.append([ad, odd[0], odd[0]])
    top_ad = busiest[0]
    top = sorted(terms[top_ad], key=lambda t: (-terms[top_ad][t], t))[0]
    # as a client may write it: case and white space normalised by ctrd
    series.append([top_ad, "  " + ascii_upper(top).replace(" ", "   ") + " ",
                   top])
    series.append([top_ad, "no such term in any log", None])
    for ad in picked[20:23]:
        term = rng.choice(sorted(terms[ad]))
        series.append([ad, term, term])
    minutes = sorted({c[2] for c in ref["counts"] if c[0] == top_ad})
    mid = minutes[len(minutes) // 2]
    ranges = [[top_ad, mid - 3 * MINUTE_MS, mid + 4 * MINUTE_MS],
              [top_ad, mid, mid + MINUTE_MS],
              [picked[25], minutes[0], mid]]
    out = {"ads": picked, "unknown": unknown_ad(ref), "series": series,
           "ranges": ranges, "top": top_ad}
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(out, f)
    return 0


def snapshot_paths(sample):
    """[(key, path)] of every GET of a snapshot; key says what to expect."""
    q = urllib.parse.quote
    paths = []
    for ad in sample["ads"] + [sample["unknown"], str(reference.U64_MAX)]:
        paths.append((["terms", ad], "/v1/ads/%s/terms?limit=%d"
                      % (ad, LIMIT_MAX)))
        for step in ("1m", "1d"):
            paths.append((["series", ad, step, None],
                          "/v1/ads/%s/series?step=%s" % (ad, step)))
    for ad, sent, _means in sample["series"]:
        paths.append((["series", ad, "1h", sent],
                      "/v1/ads/%s/series?step=1h&term=%s" % (ad, q(sent))))
    for ad, lo, hi in sample["ranges"]:
        paths.append((["terms", ad, lo, hi], "/v1/ads/%s/terms?from=%d&to=%d"
                      "&limit=%d" % (ad, lo, hi, LIMIT_MAX)))
        paths.append((["series", ad, "1m", None, lo, hi],
                      "/v1/ads/%s/series?step=1m&from=%d&to=%d"
                      % (ad, lo, hi)))
    top = sample["top"]
    base = "/v1/ads/%s/terms" % top
    for key, qs in (("default", ""),
                    ("page", "?limit=5&offset=3"),
                    ("clicks", "?sort=clicks&order=desc&limit=%d" % LIMIT_MAX),
                    ("ctr", "?sort=ctr&limit=%d" % LIMIT_MAX),
                    ("term_asc", "?sort=term&order=asc&limit=%d" % LIMIT_MAX),
                    ("imps_asc", "?order=asc&limit=%d" % LIMIT_MAX)):
        paths.append((["variant", top, key], base + qs))
    for key, path in (("limit_over", base + "?limit=%d" % (LIMIT_MAX + 1)),
                      ("sort_bad", base + "?sort=nope"),
                      ("from_bad", base + "?from=yesterday"),
                      ("step_bad", "/v1/ads/%s/series?step=2m" % top),
                      ("ad_bad", "/v1/ads/12x/terms")):
        paths.append((["status", 404 if key == "ad_bad" else 400, key],
                      path))
    return paths


def cmd_snapshot(args):
    with open(args.sample, encoding="utf-8") as f:
        sample = json.load(f)
    c = Client(args.url, args.token)
    out = []
    for key, path in snapshot_paths(sample):
        status, body = c.get_json(path)
        out.append({"key": key, "path": path, "status": status,
                    "body": body})
    c.close()
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(out, f)
    return 0


def want_terms(ref, ad, lo=None, hi=None):
    """{term: [imps, clicks]} of ad over [lo, hi)."""
    want = {}
    for a, term, minute, imps, clicks in ref["counts"]:
        if a == ad and (lo is None or lo <= minute) and \
                (hi is None or minute < hi):
            w = want.setdefault(term, [0, 0])
            w[0] += imps
            w[1] += clicks
    return want


def want_points(ref, ad, step, term=None, lo=None, hi=None):
    pts = {}
    ms = STEPS_MS[step]
    for a, t, minute, imps, clicks in ref["counts"]:
        if a != ad or (term is not None and t != term) or \
                (lo is not None and minute < lo) or \
                (hi is not None and minute >= hi):
            continue
        p = pts.setdefault(minute - minute % ms, [0, 0])
        p[0] += imps
        p[1] += clicks
    return [[t, p[0], p[1]] for t, p in sorted(pts.items())]


def term_order(rows, sort, asc):
    """rows [(term, imps, clicks)] in ctrd's order: by sort (descending
    unless asc), ties by term bytes ascending."""
    def value(r):
        if sort == "impressions":
            return r[1]
        if sort == "clicks":
            return r[2]
        return Fraction(r[2], r[1]) if r[1] else Fraction(0)
    if sort == "term":
        return sorted(rows, key=lambda r: r[0].encode("utf-8"),
                      reverse=not asc)
    return sorted(rows, key=lambda r: ((value(r) if asc else -value(r)),
                                       r[0].encode("utf-8")))


def check_envelope(diff, where, body, ad, lo, hi):
    if body.get("ad_id") != ad:
        diff("%s: ad_id %r" % (where, body.get("ad_id")))
    if (body.get("from"), body.get("to")) != (lo, hi):
        diff("%s: from/to %r/%r, expected %r/%r"
             % (where, body.get("from"), body.get("to"), lo, hi))
    as_of = body.get("as_of")
    if as_of is not None and not isinstance(as_of, int):
        diff("%s: as_of %r" % (where, as_of))


def check_terms_body(diff, where, body, ad, want, lo=None, hi=None,
                     sort="impressions", asc=False, offset=0,
                     limit=LIMIT_MAX):
    if not isinstance(body, dict) or not isinstance(body.get("terms"), list):
        diff("%s: not a terms answer: %r" % (where, str(body)[:200]))
        return
    check_envelope(diff, where, body, ad, lo, hi)
    rows = [(t, w[0], w[1]) for t, w in want.items()]
    rows = term_order(rows, sort, asc)[offset:offset + limit]
    try:
        got = [(t["term"], t["impressions"], t["clicks"])
               for t in body["terms"]]
        for t in body["terms"]:
            if not compare.ratio_ok(t["ctr"], t["clicks"], t["impressions"]):
                diff("%s: term %r ctr %r" % (where, t["term"], t["ctr"]))
        tot = body["totals"]
        got_tot = [tot["impressions"], tot["clicks"]]
        ctr_ok = compare.ratio_ok(tot["ctr"], tot["clicks"],
                                  tot["impressions"])
    except (KeyError, TypeError) as e:
        diff("%s: malformed (%s): %r" % (where, e, str(body)[:200]))
        return
    if got != rows:
        gd = {g[0]: g[1:] for g in got}
        wd = {w[0]: w[1:] for w in rows}
        shown = 0
        for term in sorted(set(gd) | set(wd)):
            if gd.get(term) != wd.get(term) and shown < 3:
                shown += 1
                diff("%s: term %r: expected %r, got %r"
                     % (where, term, wd.get(term), gd.get(term)))
        if not shown:
            diff("%s: terms in another order than %s %s"
                 % (where, sort, "asc" if asc else "desc"))
    want_tot = [sum(w[0] for w in want.values()),
                sum(w[1] for w in want.values())]
    if got_tot != want_tot or not ctr_ok:
        diff("%s: totals %r, expected %r" % (where, tot, want_tot))
    if body.get("total_terms") != len(want):
        diff("%s: total_terms %r, expected %d"
             % (where, body.get("total_terms"), len(want)))


def check_series_body(diff, where, body, ad, step, want, lo=None, hi=None):
    if not isinstance(body, dict) or not isinstance(body.get("points"), list):
        diff("%s: not a series answer: %r" % (where, str(body)[:200]))
        return
    check_envelope(diff, where, body, ad, lo, hi)
    if body.get("step") != step:
        diff("%s: step %r" % (where, body.get("step")))
    try:
        got = [[p["t"], p["impressions"], p["clicks"]]
               for p in body["points"]]
        bad_ctr = [p for p in body["points"]
                   if not compare.ratio_ok(p["ctr"], p["clicks"],
                                           p["impressions"])]
    except (KeyError, TypeError) as e:
        diff("%s: malformed (%s)" % (where, e))
        return
    if got != want:
        gd = {g[0]: g[1:] for g in got}
        wd = {w[0]: w[1:] for w in want}
        for t in sorted(set(gd) | set(wd))[:200]:
            if gd.get(t) != wd.get(t):
                diff("%s: t=%d: expected %r, got %r"
                     % (where, t, wd.get(t), gd.get(t)))
        if list(gd.items()) != sorted(gd.items()):
            diff("%s: points not ascending" % where)
    if bad_ctr:
        diff("%s: ctr of %r" % (where, bad_ctr[0]))


def cmd_check_snapshot(args):
    ref = compare.load_ref(args.ref)
    with open(args.sample, encoding="utf-8") as f:
        sample = json.load(f)
    with open(args.snap, encoding="utf-8") as f:
        snap = json.load(f)
    means = {(ad, sent): m for ad, sent, m in sample["series"]}
    diff = compare.Diff("snapshot")
    for e in snap:
        key, where, body = e["key"], "GET " + e["path"], e["body"]
        if key[0] == "status":
            if e["status"] != key[1]:
                diff("%s: status %d, expected %d" % (where, e["status"],
                                                    key[1]))
            continue
        if e["status"] != 200:
            diff("%s: status %d: %r" % (where, e["status"], str(body)[:200]))
            continue
        if key[0] == "terms":
            ad, lo, hi = (key[1:] + [None, None])[:3]
            check_terms_body(diff, where, body, ad,
                             want_terms(ref, ad, lo, hi), lo, hi)
        elif key[0] == "series":
            ad, step, sent = key[1:4]
            lo, hi = (key[4:] + [None, None])[:2]
            term = means.get((ad, sent)) if sent is not None else None
            if sent is not None and term is None:
                want = []
            else:
                want = want_points(ref, ad, step, term, lo, hi)
            check_series_body(diff, where, body, ad, step, want, lo, hi)
        elif key[0] == "variant":
            ad, what = key[1:]
            want = want_terms(ref, ad)
            kw = {"default": {"limit": 100},
                  "page": {"offset": 3, "limit": 5},
                  "clicks": {"sort": "clicks"},
                  "ctr": {"sort": "ctr"},
                  "term_asc": {"sort": "term", "asc": True},
                  "imps_asc": {"asc": True}}[what]
            check_terms_body(diff, where, body, ad, want, **kw)
    if not diff.n:
        print("snapshot: %d answers match the reference" % len(snap))
    return diff.done()


def cmd_same_snapshot(args):
    snaps = []
    for path in (args.a, args.b):
        with open(path, encoding="utf-8") as f:
            snaps.append(json.load(f))
    diff = compare.Diff("same-snapshot")
    if len(snaps[0]) != len(snaps[1]):
        diff("%d answers vs %d" % (len(snaps[0]), len(snaps[1])))
    for x, y in zip(*snaps):
        bx, by = x["body"], y["body"]
        if args.as_of:
            ax = bx.get("as_of") if isinstance(bx, dict) else None
            ay = by.get("as_of") if isinstance(by, dict) else None
            if ax != ay:
                diff("GET %s: as_of %r, then %r" % (x["path"], ax, ay))
            continue
        for b in (bx, by):
            if isinstance(b, dict):
                b.pop("as_of", None)
        if (x["status"], bx) != (y["status"], by):
            diff("GET %s: %s %s, then %s %s"
                 % (x["path"], x["status"], json.dumps(bx)[:150],
                    y["status"], json.dumps(by)[:150]))
    if not diff.n:
        print("same-snapshot: %d answers equal" % len(snaps[0]))
    return diff.done()


def rfc3339(ms, offset_min=0):
    t = time.gmtime(ms // 1000 + offset_min * 60)
    zone = "Z" if not offset_min else "%s%02d:%02d" % (
        "+" if offset_min > 0 else "-", abs(offset_min) // 60,
        abs(offset_min) % 60)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + ".%03d" % (ms % 1000) + \
        zone


def cmd_param_forms(args):
    ref = compare.load_ref(args.ref)
    with open(args.sample, encoding="utf-8") as f:
        sample = json.load(f)
    ck = Checks("serve_params")
    c = Client(args.url)
    q = urllib.parse.quote
    ad, _sent, term = sample["series"][0]
    tabbed = term.replace(" ", "\t") if " " in term else term + "\t"
    st, body = c.get_json("/v1/ads/%s/series?step=1h&term=%s"
                          % (ad, q(tabbed)))
    diff = Collect("term %r" % tabbed)
    if st != 200:
        diff("status %d: %s" % (st, body))
    else:
        check_series_body(diff, "series", body, ad, "1h",
                          want_points(ref, ad, "1h", term))
    ck("term_with_tab", not diff.n, diff.first)
    _ad, lo, hi = sample["ranges"][0]
    for name, lo_s, hi_s in (("rfc3339_z", rfc3339(lo), rfc3339(hi)),
                             ("rfc3339_offset", rfc3339(lo, 90),
                              rfc3339(hi, -330))):
        st, body = c.get_json("/v1/ads/%s/terms?from=%s&to=%s&limit=%d"
                              % (ad, q(lo_s), q(hi_s), LIMIT_MAX))
        diff = Collect("from=%s to=%s" % (lo_s, hi_s))
        if st != 200:
            diff("status %d: %s" % (st, body))
        else:
            check_terms_body(diff, "terms", body, ad,
                             want_terms(ref, ad, lo, hi), lo, hi)
        ck(name, not diff.n, diff.first)
    return ck.failed


# ---- /metrics ----

def parse_prometheus(text, diff):
    """{(name, frozenset of label pairs): value}; checks the syntax and that
    every sample follows its family's # TYPE line."""
    samples, typed = {}, set()
    for n, line in enumerate(text.splitlines(), 1):
        if not line:
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 4 and parts[1] == "TYPE":
                typed.add(parts[2])
            continue
        try:
            if "{" in line:
                name, rest = line.split("{", 1)
                labels_text, value = rest.rsplit("}", 1)
                labels = frozenset(
                    (k, v.strip('"')) for k, v in
                    (p.split("=", 1) for p in
                     csv_split(labels_text)))
            else:
                name, value = line.split(None, 1)
                labels = frozenset()
            v = float(value.split()[0])
        except ValueError:
            diff("line %d is not a sample: %r" % (n, line))
            continue
        family = name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and name[:-len(suffix)] in typed:
                family = name[:-len(suffix)]
        if family not in typed:
            diff("line %d: %s has no # TYPE line before it" % (n, name))
        samples[(name, labels)] = v
    return samples


def csv_split(labels_text):
    """label pairs of a{...}: split at commas outside quotes."""
    parts, cur, quoted, esc = [], "", False, False
    for ch in labels_text:
        if esc:
            esc = False
        elif ch == "\\":
            esc = True
        elif ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            parts.append(cur)
            cur = ""
            continue
        cur += ch
    if cur:
        parts.append(cur)
    return parts


def cmd_metrics(args):
    ref = compare.load_ref(args.ref)
    diff = compare.Diff("metrics")
    c = Client(args.url)
    status, hdrs, data = c.request("GET", "/metrics")
    if status != 200 or not hdrs.get("content-type", "").startswith(
            "text/plain"):
        diff("GET /metrics: %d %s" % (status, hdrs.get("content-type")))
        return diff.done()
    m = parse_prometheus(data.decode("utf-8", "replace"), diff)

    def val(name, **labels):
        return m.get((name, frozenset(labels.items())))

    q, cl = ref["queries"], ref["clicks"]
    want = {
        ("ctrd_records_total", "kind", "query", "accepted"): q["accepted"],
        ("ctrd_records_total", "kind", "query", "duplicate"): q["duplicates"],
        ("ctrd_records_total", "kind", "query", "rejected"): q["rejected"],
    }
    for (name, _k, kind, result), n in want.items():
        got = val(name, kind=kind, result=result)
        if got != n:
            diff("%s{kind=%s,result=%s} = %r, expected %d"
                 % (name, kind, result, got, n))
    for result, n in (("joined", cl["joined"]),
                      ("duplicate", cl["duplicates"]),
                      ("unjoined", 0)):
        got = val("ctrd_clicks_total", result=result)
        if got != n:
            diff("ctrd_clicks_total{result=%s} = %r, expected %d"
                 % (result, got, n))
    if val("ctrd_clicks_pending") != cl["unknown_query"]:
        diff("ctrd_clicks_pending = %r, expected %d"
             % (val("ctrd_clicks_pending"), cl["unknown_query"]))
    reasons = {}
    for side in (q, cl):
        for reason, n in side["rejects"].items():
            reasons[reason] = reasons.get(reason, 0) + n
    got_reasons = {dict(lb)["reason"]: v for (name, lb), v in m.items()
                   if name == "ctrd_rejects_total" and v}
    if got_reasons != reasons:
        for r in sorted(set(reasons) | set(got_reasons)):
            if reasons.get(r, 0) != got_reasons.get(r, 0):
                diff("ctrd_rejects_total{reason=%s} = %r, expected %r"
                     % (r, got_reasons.get(r, 0), reasons.get(r, 0)))
    if val("ctrd_ready") != 1:
        diff("ctrd_ready = %r" % val("ctrd_ready"))
    lag = val("ctrd_freshness_lag_seconds")
    if lag is None:
        diff("no ctrd_freshness_lag_seconds")
    if not any(name == "ctrd_http_request_duration_seconds_bucket"
               for name, _l in m):
        diff("no request latency histogram")
    if not diff.n:
        print("metrics: %d samples; records, clicks, pending and %d reject "
              "reasons match" % (len(m), len(reasons)))
    return diff.done()


# ---- access control, errors, limits: their own PASS/FAIL lines ----

class Collect(compare.Diff):
    """A Diff that also keeps its first message, for a FAIL line."""

    def __init__(self, what):
        super().__init__(what)
        self.first = ""

    def __call__(self, msg):
        if not self.n:
            self.first = "%s: %s" % (self.what, msg)
        super().__call__(msg)


class Checks:
    def __init__(self, prefix):
        self.prefix = prefix
        self.failed = 0

    def __call__(self, name, ok, detail=""):
        if ok:
            print("PASS %s_%s" % (self.prefix, name))
        else:
            self.failed = 1
            print("FAIL %s_%s: %s" % (self.prefix, name, detail))

    def status(self, name, client, method, path, want, body=None,
               headers=None):
        """One request; PASS when its status is want. Returns (status,
        headers, body) or None after a connection failure."""
        try:
            got = client.request(method, path, body, headers)
        except (OSError, http.client.HTTPException) as e:
            self(name, False, "%s %s: %s" % (method, path, e))
            client.close()
            return None
        self(name, got[0] == want, "%s %s: %d, expected %d: %s"
             % (method, path, got[0], want, got[2][:150]))
        return got


def read_catalog(path):
    owners, names = {}, {}
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    for row in rows[1:]:
        owners[row[0]] = row[1]
        names[row[0]] = row[2] if len(row) > 2 else ""
    return owners, names


def cmd_catalog(args):
    ref = compare.load_ref(args.ref)
    tot = ad_totals(ref)
    busy = sorted(tot, key=lambda a: (-tot[a][0], int(a)))
    rows = [["ad_id", "advertiser_id", "name"],
            [busy[0], "1", "Shoes, red \"fast\""],
            [busy[2], "1", "Crème brûlée"],
            [busy[4], "1", ""],
            [unknown_ad(ref), "1", "no data yet"],
            [busy[1], "2", "Two"],
            [busy[3], "2", "Deux"]]
    with open(args.out, "w", newline="", encoding="utf-8") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)
    return 0


def cmd_auth(args):
    ref = compare.load_ref(args.ref)
    owners, names = read_catalog(args.catalog)
    tot = ad_totals(ref)
    busy = sorted(tot, key=lambda a: (-tot[a][0], int(a)))
    adv1 = sorted((a for a, o in owners.items() if o == "1"), key=int)
    adv2 = sorted((a for a, o in owners.items() if o == "2"), key=int)
    own1, own2 = busy[0], busy[1]
    outside = busy[5]  # has counts, not in the catalog
    assert outside not in owners
    unknown = str(UNKNOWN_AD_BASE + 200)  # no counts, not in the catalog
    ck = Checks("serve_auth")
    anon = Client(args.url)
    admin = Client(args.url, args.admin)
    ingest = Client(args.url, args.ingest)
    a1 = Client(args.url, args.adv1)
    a2 = Client(args.url, args.adv2)
    wrong = Client(args.url, "not-a-token")
    with open(args.chunk, "rb") as f:
        chunk = f.read()
    nd = post_headers("ndjson", False)

    got = ck.status("no_token_read_401", anon, "GET",
                    "/v1/ads/%s/terms" % own1, 401)
    if got:
        ck("401_www_authenticate", "www-authenticate" in got[1],
           "no WWW-Authenticate header: %r" % got[1])
    ck.status("no_token_post_401", anon, "POST", "/v1/queries", 401, chunk,
              nd)
    ck.status("unknown_token_401", wrong, "GET",
              "/v1/advertisers/1/ads", 401)
    ck.status("basic_auth_401", anon, "GET", "/v1/ads/%s/terms" % own1, 401,
              headers={"Authorization": "Basic " + args.admin})
    ck.status("ingest_token_posts", ingest, "POST", "/v1/queries", 200,
              chunk, nd)
    ck.status("ingest_token_terms_403", ingest, "GET",
              "/v1/ads/%s/terms" % own1, 403)
    ck.status("ingest_token_series_403", ingest, "GET",
              "/v1/ads/%s/series" % own1, 403)
    ck.status("ingest_token_advertiser_403", ingest, "GET",
              "/v1/advertisers/1/ads", 403)
    ck.status("advertiser_post_403", a1, "POST", "/v1/clicks", 403, b"",
              nd)

    def read_ok(name, client, ad):
        diff = Collect(name)
        st, body = client.get_json("/v1/ads/%s/terms?limit=%d"
                                   % (ad, LIMIT_MAX))
        if st != 200:
            diff("status %d: %r" % (st, str(body)[:150]))
        else:
            check_terms_body(diff, "terms of ad %s" % ad, body, ad,
                             want_terms(ref, ad))
        st, body = client.get_json("/v1/ads/%s/series?step=1m" % ad)
        if st != 200:
            diff("series status %d" % st)
        else:
            check_series_body(diff, "series of ad %s" % ad, body, ad, "1m",
                              want_points(ref, ad, "1m"))
        ck(name, diff.n == 0, diff.first)

    read_ok("advertiser_reads_own_ad", a1, own1)
    read_ok("advertiser2_reads_own_ad", a2, own2)
    read_ok("advertiser_reads_own_ad_without_data", a1, unknown_ad(ref))
    hidden = []
    for name, path in (("other_advertisers_ad", "/v1/ads/%s/terms" % own2),
                       ("other_advertisers_series",
                        "/v1/ads/%s/series" % own2),
                       ("uncatalogued_ad", "/v1/ads/%s/terms" % outside),
                       ("unknown_ad", "/v1/ads/%s/terms" % unknown)):
        got = ck.status("advertiser_%s_404" % name, a1, "GET", path, 404)
        if got:
            hidden.append(got[2])
    got = ck.status("advertiser2_other_ad_404", a2, "GET",
                    "/v1/ads/%s/terms" % own1, 404)
    if got:
        hidden.append(got[2])
    ck("404_indistinguishable", len(set(hidden)) == 1,
       "different 404 bodies: %r" % sorted(set(hidden)))

    def ads_list(name, client, adv, ads, lo=None, hi=None):
        qs = "" if lo is None else "?from=%d&to=%d" % (lo, hi)
        st, body = client.get_json("/v1/advertisers/%s/ads%s" % (adv, qs))
        if st != 200 or not isinstance(body, dict):
            ck(name, False, "status %d: %r" % (st, str(body)[:150]))
            return
        want = []
        for ad in ads:
            w = want_terms(ref, ad, lo, hi)
            want.append([ad, names[ad], sum(v[0] for v in w.values()),
                         sum(v[1] for v in w.values())])
        try:
            got = [[x["ad_id"], x["name"], x["impressions"], x["clicks"]]
                   for x in body["ads"]]
            ctr_ok = all(compare.ratio_ok(x["ctr"], x["clicks"],
                                          x["impressions"])
                         for x in body["ads"])
        except (KeyError, TypeError) as e:
            ck(name, False, "malformed (%s): %r" % (e, str(body)[:200]))
            return
        ok = (got == want and ctr_ok and body.get("advertiser_id") == adv
              and "as_of" in body)
        ck(name, ok, "got %r, expected %r (%r)" % (got, want,
                                                   str(body)[:200]))

    ads_list("advertiser_lists_own_ads", a1, "1", adv1)
    minutes = sorted({c[2] for c in ref["counts"]})
    mid = minutes[len(minutes) // 2]
    ads_list("advertiser_lists_own_ads_range", a1, "1", adv1, mid,
             mid + 2 * MINUTE_MS)
    ck.status("advertiser_lists_other_404", a1, "GET",
              "/v1/advertisers/2/ads", 404)
    ads_list("admin_lists_any_advertiser", admin, "2", adv2)
    read_ok("admin_reads_other_advertisers_ad", admin, own2)
    read_ok("admin_reads_uncatalogued_ad", admin, outside)
    read_ok("admin_reads_unknown_ad_zero", admin, unknown)
    ck.status("admin_posts", admin, "POST", "/v1/queries", 200, chunk, nd)
    for path in ("/healthz", "/readyz", "/metrics"):
        ck.status("public%s" % path.replace("/", "_"), anon, "GET", path,
                  200)
    return ck.failed


def probe_ad(client, ad):
    """Impressions of ad (all time), or None."""
    st, body = client.get_json("/v1/ads/%s/terms" % ad)
    if st != 200 or not isinstance(body, dict):
        return None
    return body.get("totals", {}).get("impressions")


def query_lines(ad, n, first_qid, pad=0):
    """n valid NDJSON query lines showing ad, query ids from first_qid."""
    out = []
    for i in range(n):
        out.append(json.dumps({"time": 1795341600000 + i,
                               "query_id": str(first_qid + i),
                               "query": "probe term" + " " * pad,
                               "ad_ids": [int(ad)]}))
    return ("\n".join(out) + "\n").encode()


def cmd_bad_requests(args):
    ck = Checks("serve_http")
    c = Client(args.url)
    ad = str(UNKNOWN_AD_BASE + 300)
    body = query_lines(ad, 3, 9100000000000000001)
    gz = gzip.compress(body)
    ck.status("bad_gzip_400", c, "POST", "/v1/queries", 400,
              b"this is not gzip\n", post_headers("ndjson", True))
    ck.status("truncated_gzip_400", c, "POST", "/v1/queries", 400,
              gz[:len(gz) // 2], post_headers("ndjson", True))
    ck.status("gzip_garbage_after_400", c, "POST", "/v1/queries", 400,
              gz + b"garbage", post_headers("ndjson", True))
    for name, ctype in (("text_plain", "text/plain"),
                        ("xml", "application/xml"),
                        ("form", "application/x-www-form-urlencoded")):
        ck.status("content_type_%s_415" % name, c, "POST", "/v1/queries",
                  415, body, {"Content-Type": ctype})
    ck.status("content_encoding_br_415", c, "POST", "/v1/clicks", 415,
              body, {"Content-Type": CONTENT_TYPES["ndjson"],
                     "Content-Encoding": "br"})
    ck("refused_bodies_not_counted", probe_ad(c, ad) == 0,
       "ad %s has %r impressions" % (ad, probe_ad(c, ad)))
    other = str(UNKNOWN_AD_BASE + 301)  # its own ad: it may be counted
    ck.status("content_type_longer_name_415", c, "POST", "/v1/queries", 415,
              query_lines(other, 1, 9100000000000000101),
              {"Content-Type": "application/x-ndjsonx"})
    got = ck.status("gzip_body_200", c, "POST", "/v1/queries", 200, gz,
                    post_headers("ndjson", True))
    ok = got is not None and json.loads(got[2]).get("accepted") == 3
    ck("gzip_body_counted", ok and probe_ad(c, ad) == 3,
       "answer %r, ad %s has %r impressions"
       % (got and got[2], ad, probe_ad(c, ad)))
    # media types are case-insensitive and may carry parameters (RFC 9110)
    for name, ctype in (("with_charset", "application/x-ndjson; "
                         "charset=utf-8"),
                        ("upper_case", "Application/X-NDJSON")):
        ck.status("content_type_%s_200" % name, c, "POST", "/v1/queries",
                  200, body, {"Content-Type": ctype})
    ck.status("unknown_path_404", c, "GET", "/v1/nothing", 404)
    ck.status("healthz", c, "GET", "/healthz", 200)
    return ck.failed


def cmd_saturate(args):
    ck = Checks("serve_saturated")
    deadline = time.monotonic() + args.seconds
    seen = {"503": 0, "no_retry_after": 0, "other": []}
    lock = threading.Lock()
    done = threading.Event()
    bodies = []
    for path in args.chunks:
        with open(path, "rb") as f:
            bodies.append((chunk_format(path), f.read()))

    def worker(i):
        c = Client(args.url)
        while not done.is_set() and time.monotonic() < deadline:
            fmt, body = bodies[i % len(bodies)]
            i += 8
            try:
                st, hdrs, _d = c.request("POST", "/v1/queries", body,
                                         post_headers(fmt, False))
            except (OSError, http.client.HTTPException) as e:
                with lock:
                    seen["other"].append(str(e))
                break
            with lock:
                if st == 503:
                    seen["503"] += 1
                    seen["no_retry_after"] += "retry-after" not in hdrs
                    done.set()
                elif st != 200:
                    seen["other"].append(st)
        c.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ck("503", seen["503"] > 0 and not seen["other"],
       "no 503 in %ss on 8 connections; other answers: %r"
       % (args.seconds, seen["other"][:5]))
    ck("retry_after", seen["503"] and not seen["no_retry_after"],
       "%d of %d 503 answers without Retry-After"
       % (seen["no_retry_after"], seen["503"]))
    return ck.failed


def cmd_max_body(args):
    ck = Checks("serve_max_body")
    c = Client(args.url)
    ad = str(UNKNOWN_AD_BASE + 400)
    nd = post_headers("ndjson", False)
    # bodies of exactly 1024 and 1025 bytes: one record, padded in its text
    base = query_lines(ad, 1, 9200000000000000001)
    fit = query_lines(ad, 1, 9200000000000000001, 1024 - len(base))
    over = query_lines(ad, 1, 9200000000000000002, 1025 - len(base))
    assert len(fit) == 1024 and len(over) == 1025
    ck.status("1024_bytes_200", c, "POST", "/v1/queries", 200, fit, nd)
    ck.status("1025_bytes_413", c, "POST", "/v1/queries", 413, over, nd)
    big = query_lines(ad, 40, 9200000000000000100)
    gz = gzip.compress(big)
    assert len(gz) < 1024 < len(big)
    ck.status("gzip_over_once_inflated_413", c, "POST", "/v1/queries", 413,
              gz, post_headers("ndjson", True))
    ck.status("large_body_413", c, "POST", "/v1/queries", 413,
              query_lines(ad, 2000, 9200000000000010000), nd)
    ck.status("alive_after_413", c, "GET", "/healthz", 200)
    ck("only_the_fitting_body_counted", probe_ad(c, ad) == 1,
       "ad %s has %r impressions, expected 1" % (ad, probe_ad(c, ad)))
    return ck.failed


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("port").set_defaults(fn=cmd_port)
    s = sub.add_parser("wait-ready")
    s.add_argument("url")
    s.add_argument("seconds", type=float)
    s.add_argument("pid", type=int, nargs="?")
    s.set_defaults(fn=cmd_wait_ready)
    s = sub.add_parser("ingest")
    s.add_argument("url")
    s.add_argument("out")
    s.add_argument("--queries", nargs="*", default=[])
    s.add_argument("--clicks", nargs="*", default=[])
    s.add_argument("--click-conns", type=int, default=3)
    s.add_argument("--format", choices=("ndjson", "tsv"), default="ndjson")
    s.add_argument("--gzip", action="store_true")
    s.add_argument("--token")
    s.add_argument("--signal-after", nargs=2, metavar=("PID", "AFTER"))
    s.add_argument("--signal", choices=("TERM", "KILL"), default="TERM")
    s.set_defaults(fn=cmd_ingest)
    s = sub.add_parser("check-ingest")
    s.add_argument("ref")
    s.add_argument("result")
    s.add_argument("--repost", action="store_true")
    s.set_defaults(fn=cmd_check_ingest)
    s = sub.add_parser("interrupted")
    s.add_argument("result")
    s.add_argument("queries_out")
    s.add_argument("clicks_out")
    s.add_argument("maybe_queries_out")
    s.add_argument("--killed", action="store_true")
    s.set_defaults(fn=cmd_interrupted)
    s = sub.add_parser("sample")
    s.add_argument("ref")
    s.add_argument("out")
    s.add_argument("seed", type=int)
    s.set_defaults(fn=cmd_sample)
    s = sub.add_parser("snapshot")
    s.add_argument("url")
    s.add_argument("sample")
    s.add_argument("out")
    s.add_argument("--token")
    s.set_defaults(fn=cmd_snapshot)
    s = sub.add_parser("check-snapshot")
    s.add_argument("ref")
    s.add_argument("sample")
    s.add_argument("snap")
    s.set_defaults(fn=cmd_check_snapshot)
    s = sub.add_parser("same-snapshot")
    s.add_argument("a")
    s.add_argument("b")
    s.add_argument("--as-of", action="store_true")
    s.set_defaults(fn=cmd_same_snapshot)
    s = sub.add_parser("param-forms")
    s.add_argument("url")
    s.add_argument("ref")
    s.add_argument("sample")
    s.set_defaults(fn=cmd_param_forms)
    s = sub.add_parser("metrics")
    s.add_argument("url")
    s.add_argument("ref")
    s.set_defaults(fn=cmd_metrics)
    s = sub.add_parser("catalog")
    s.add_argument("ref")
    s.add_argument("out")
    s.set_defaults(fn=cmd_catalog)
    s = sub.add_parser("auth")
    for name in ("url", "ref", "catalog", "admin", "ingest", "adv1", "adv2",
                 "chunk"):
        s.add_argument(name)
    s.set_defaults(fn=cmd_auth)
    s = sub.add_parser("bad-requests")
    s.add_argument("url")
    s.set_defaults(fn=cmd_bad_requests)
    s = sub.add_parser("saturate")
    s.add_argument("url")
    s.add_argument("seconds", type=float)
    s.add_argument("chunks", nargs="+")
    s.set_defaults(fn=cmd_saturate)
    s = sub.add_parser("max-body")
    s.add_argument("url")
    s.set_defaults(fn=cmd_max_body)
    args = p.parse_args()
    if args.fn is cmd_check_ingest:
        # the reference's JSON parser needs a deep stack for nested lines
        return reference.with_big_stack(lambda: args.fn(args))
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
