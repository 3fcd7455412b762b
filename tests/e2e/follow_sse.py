#!/usr/bin/env python3
"""follow_sse: the HTTP driver of tests/e2e/test_follow.sh and
tests/e2e/test_sse.sh — `ctrd serve --follow-*` and GET /v1/stream through
real HTTP (SPEC §3, §5, §6), checked against tests/reference.py. Reuses
serve_client.py's client and checks. Python 3 standard library only.

  follow_sse.py wait-follow URL NOW.json [--before BEFORE.json] SECONDS
      a server following the logs whose lines written so far give the
      reference result NOW.json (BEFORE.json: those written before this
      server process started, which it recovered; default none). Waits
      until /metrics says that every line written since is read, then
      checks that it was read once: the query records by outcome, the
      joined, duplicate and rejected clicks since the start equal NOW
      minus BEFORE, and the clicks waiting equal NOW's unknown ones.
  follow_sse.py check-counts URL REF.json SECONDS
      GET /v1/ads/{id}/terms?limit=10000 of every ad of the reference
      equals the reference's per-term totals (retried until SECONDS).
  follow_sse.py sse URL ADMIN INGEST ADV1 ADV2
      GET /v1/stream of a server started with --auth (the four tokens)
      and --ads with the catalog of `follow_sse.py sse-catalog`: counts
      events within 1 s of the ingest answer, per ad and per advertiser,
      access control, client disconnects. Prints its own PASS/FAIL lines.
  follow_sse.py sse-catalog OUT.csv
      writes that catalog.
Exit status 0 when every check passed, 1 otherwise.
"""
import argparse
import http.client
import json
import os
import socket
import sys
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import compare  # noqa: E402  (tests/e2e/compare.py)
import serve_client as sc  # noqa: E402  (tests/e2e/serve_client.py)

EVENT_WITHIN_S = 1.0  # SPEC §5: counts "at most a few per second"
POLL_S = 0.1
SETTLE_S = 0.3  # after every line is read: time for any extra read to show


# ---- /metrics ----

def metrics(client):
    """{(name, frozenset of label pairs): value} of GET /metrics."""
    status, _h, data = client.request("GET", "/metrics")
    if status != 200:
        raise RuntimeError("GET /metrics: %d" % status)
    return sc.parse_prometheus(data.decode("utf-8", "replace"),
                               compare.Diff("metrics"))


def metric(m, name, **labels):
    return int(m.get((name, frozenset(labels.items())), 0))


def lines_read(m):
    """(query lines, click lines) this process read: every record is
    counted once in ctrd_records_total, on arrival (a click that waits for
    its query counts as accepted then)."""
    return tuple(sum(metric(m, "ctrd_records_total", kind=k, result=r)
                     for r in ("accepted", "duplicate", "rejected"))
                 for k in ("query", "click"))


def follow_expected(now, before):
    """[(what, metric name, labels, expected value)] once every line of NOW
    past BEFORE is read exactly once."""
    q0 = before["queries"] if before else {}
    c0 = before["clicks"] if before else {}

    def delta(side, side0, key):
        return side[key] - side0.get(key, 0)

    q, c = now["queries"], now["clicks"]
    return [
        ("queries accepted", "ctrd_records_total",
         {"kind": "query", "result": "accepted"}, delta(q, q0, "accepted")),
        ("queries duplicate", "ctrd_records_total",
         {"kind": "query", "result": "duplicate"},
         delta(q, q0, "duplicates")),
        ("queries rejected", "ctrd_records_total",
         {"kind": "query", "result": "rejected"}, delta(q, q0, "rejected")),
        ("clicks joined", "ctrd_clicks_total", {"result": "joined"},
         delta(c, c0, "joined")),
        ("clicks duplicate", "ctrd_clicks_total", {"result": "duplicate"},
         delta(c, c0, "duplicates")),
        ("clicks unjoined", "ctrd_clicks_total", {"result": "unjoined"}, 0),
        ("clicks waiting", "ctrd_clicks_pending", {}, c["unknown_query"]),
    ]


def cmd_wait_follow(args):
    now = compare.load_ref(args.now)
    before = compare.load_ref(args.before) if args.before else None
    want_q = now["queries"]["lines"] - (
        before["queries"]["lines"] if before else 0)
    want_c = now["clicks"]["lines"] - (
        before["clicks"]["lines"] if before else 0)
    c = sc.Client(args.url)
    deadline = time.monotonic() + args.seconds
    start = time.monotonic()
    got = (None, None)
    while time.monotonic() < deadline:
        try:
            got = lines_read(metrics(c))
        except (OSError, RuntimeError) as e:
            c.close()
            got = (str(e), None)
        if got[1] is not None and got[0] >= want_q and got[1] >= want_c:
            break
        time.sleep(POLL_S)
    else:
        print("wait-follow: after %ss read %r (query, click) lines of the "
              "%r written" % (args.seconds, got, (want_q, want_c)))
        return 1
    took = time.monotonic() - start
    time.sleep(SETTLE_S)
    m = metrics(c)
    diff = compare.Diff("wait-follow")
    if lines_read(m) != (want_q, want_c):
        diff("read %r (query, click) lines, %r were written"
             % (lines_read(m), (want_q, want_c)))
    for what, name, labels, want in follow_expected(now, before):
        if metric(m, name, **labels) != want:
            diff("%s: %s = %d, expected %d" % (what, name,
                                               metric(m, name, **labels),
                                               want))
    if not diff.n:
        print("wait-follow: %d query and %d click lines read once in %.1f s"
              % (want_q, want_c, took))
    return diff.done()


# ---- the read API against the reference ----

class Quiet(sc.Collect):
    """A Collect that keeps its messages instead of printing them."""

    def __init__(self, what):
        super().__init__(what)
        self.lines = []

    def __call__(self, msg):
        if not self.n:
            self.first = "%s: %s" % (self.what, msg)
        self.n += 1
        if self.n <= compare.MAX_SHOWN:
            self.lines.append("%s: %s" % (self.what, msg))


def counts_diff(client, ref, ads):
    diff = Quiet("counts")
    for ad in ads:
        st, body = client.get_json("/v1/ads/%s/terms?limit=%d"
                                   % (ad, sc.LIMIT_MAX))
        if st != 200:
            diff("GET terms of ad %s: status %d" % (ad, st))
            continue
        sc.check_terms_body(diff, "ad %s" % ad, body, ad,
                            sc.want_terms(ref, ad))
    return diff


def cmd_check_counts(args):
    ref = compare.load_ref(args.ref)
    ads = sorted({row[0] for row in ref["counts"]}, key=int)
    c = sc.Client(args.url)
    deadline = time.monotonic() + args.seconds
    while True:
        diff = counts_diff(c, ref, ads)
        if not diff.n or time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    if diff.n:
        print("\n".join(diff.lines))
        if diff.n > compare.MAX_SHOWN:
            print("counts: ... %d differences in all" % diff.n)
        return 1
    print("check-counts: every term of %d ads equals the reference"
          % len(ads))
    return 0


# ---- Server-Sent Events ----

class Stream:
    """GET /v1/stream on a raw socket. After the head, a thread reads the
    body and keeps every event as (time.monotonic() of its arrival, event
    name, data)."""

    def __init__(self, url, query, token):
        u = urllib.parse.urlsplit(url)
        self.sock = socket.create_connection((u.hostname, u.port),
                                             timeout=sc.REQUEST_TIMEOUT_S)
        head = ["GET /v1/stream?%s HTTP/1.1" % query,
                "Host: %s:%d" % (u.hostname, u.port),
                "Accept: text/event-stream"]
        if token:
            head.append("Authorization: Bearer " + token)
        self.sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        self.events = []
        self.cv = threading.Condition()
        self.closed = False
        self.buf = b""
        self.status, self.headers = self._read_head()
        self.body = b""
        self.thread = None

    def _recv(self):
        try:
            data = self.sock.recv(65536)
        except OSError:
            data = b""
        return data

    def _read_head(self):
        while b"\r\n\r\n" not in self.buf:
            data = self._recv()
            if not data:
                raise OSError("connection closed before the answer's head")
            self.buf += data
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _s, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        return status, headers

    def read_answer(self):
        """A non-stream answer: its body by Content-Length."""
        n = int(self.headers.get("content-length", "-1"))
        while n >= 0 and len(self.buf) < n:
            data = self._recv()
            if not data:
                break
            self.buf += data
        self.body, self.buf = self.buf[:max(n, 0)], b""
        return self.body

    def start(self):
        self.sock.settimeout(None)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        chunked = "chunked" in self.headers.get("transfer-encoding", "")
        raw, text = self.buf, b""
        while True:
            if chunked:
                raw, body = dechunk(raw)
            else:
                raw, body = b"", raw
            text += body.replace(b"\r\n", b"\n")
            while b"\n\n" in text:
                block, text = text.split(b"\n\n", 1)
                self._event(block, time.monotonic())
            data = self._recv()
            if not data:
                break
            raw += data
        with self.cv:
            self.closed = True
            self.cv.notify_all()

    def _event(self, block, at):
        name, data = "message", []
        for line in block.decode("utf-8", "replace").split("\n"):
            if line.startswith(":"):
                continue
            field, _c, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
        if not data:
            return
        with self.cv:
            self.events.append((at, name, "\n".join(data)))
            self.cv.notify_all()

    def wait_event(self, pred, seconds, start=0):
        """The first event from index start whose parsed data satisfies
        pred: (arrival, index, data), or None after seconds."""
        deadline = time.monotonic() + seconds
        i = start
        with self.cv:
            while True:
                while i < len(self.events):
                    at, name, data = self.events[i]
                    parsed = parse_counts(name, data)
                    if parsed is not None and pred(parsed):
                        return at, i, parsed
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    return None
                self.cv.wait(left)

    def counts(self):
        """Every counts event so far, parsed (None for a malformed one)."""
        with self.cv:
            return [parse_counts(n, d) for _at, n, d in self.events]

    def close(self, reset=False):
        if reset:  # RST instead of FIN
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 b"\x01\x00\x00\x00\x00\x00\x00\x00")
        self.sock.close()


def dechunk(raw):
    """(rest, decoded) of a chunked body's complete chunks at raw's
    start."""
    out = b""
    while b"\r\n" in raw:
        size_line, rest = raw.split(b"\r\n", 1)
        size = int(size_line.split(b";")[0], 16)
        if len(rest) < size + 2:
            break
        out += rest[:size]
        raw = rest[size + 2:]
    return raw, out


def parse_counts(name, data):
    """The data of a `counts` event as a dict with ad_id (string),
    impressions and clicks (integers), else None."""
    if name != "counts":
        return None
    try:
        d = json.loads(data)
    except ValueError:
        return None
    ok = (isinstance(d, dict) and isinstance(d.get("ad_id"), str)
          and isinstance(d.get("impressions"), int)
          and isinstance(d.get("clicks"), int))
    return d if ok else None


SSE_ADS = {"1": ["501", "502"], "2": ["601"]}  # advertiser -> ads
UNCATALOGUED_AD = "777"
QUERY_ID_BASE = 8800000000000000000


def cmd_sse_catalog(args):
    with open(args.out, "w", encoding="utf-8") as f:
        f.write("ad_id,advertiser_id,name\n")
        for adv, ads in sorted(SSE_ADS.items()):
            for ad in ads:
                f.write("%s,%s,ad %s\n" % (ad, adv, ad))
    return 0


class Traffic:
    """Posts one query showing some ads, or a click, with the ingest
    token; returns time.monotonic() when the 200 answer was read."""

    def __init__(self, url, token):
        self.client = sc.Client(url, token)
        self.next_qid = QUERY_ID_BASE
        self.time_ms = int(time.time() * 1000)

    def query(self, ads):
        self.next_qid += 1
        line = json.dumps({"time": self.time_ms,
                           "query_id": str(self.next_qid),
                           "query": "sse probe", "ad_ids": ads})
        return self._post("queries", line), self.next_qid

    def click(self, qid, ad):
        line = json.dumps({"time": self.time_ms + 1000,
                           "query_id": str(qid), "ad_id": ad})
        return self._post("clicks", line)

    def _post(self, kind, line):
        st, _h, data = self.client.request(
            "POST", "/v1/" + kind, (line + "\n").encode(),
            sc.post_headers("ndjson", False))
        answered = time.monotonic()
        answer = json.loads(data) if st == 200 else None
        if st != 200 or answer.get("accepted") != 1:
            raise RuntimeError("POST /v1/%s %s: %d %r" % (kind, line, st,
                                                          data[:200]))
        return answered


def check_event(ck, name, stream, ad, imps, clicks, posted, start=0):
    """PASS name when stream got the counts (imps, clicks) of ad within
    EVENT_WITHIN_S of posted (the 200 answer); returns the event's
    index + 1."""
    got = stream.wait_event(
        lambda d: d["ad_id"] == ad and (d["impressions"], d["clicks"])
        == (imps, clicks), EVENT_WITHIN_S + 1, start)
    if got is None:
        ck(name, False, "no counts event of ad %s with impressions %d, "
           "clicks %d within %.1f s; events: %r"
           % (ad, imps, clicks, EVENT_WITHIN_S + 1, stream.counts()[-5:]))
        return start
    lag = got[0] - posted
    ck(name, lag <= EVENT_WITHIN_S,
       "event %.3f s after the 200 answer" % lag)
    print("%s: event %.0f ms after the answer" % (name, lag * 1000))
    return got[1] + 1


def open_stream(ck, name, url, query, token):
    """A stream whose head is 200 text/event-stream, reading; else None."""
    try:
        s = Stream(url, query, token)
    except OSError as e:
        ck(name, False, "GET /v1/stream?%s: %s" % (query, e))
        return None
    ok = s.status == 200 and s.headers.get("content-type", "").startswith(
        "text/event-stream")
    ck(name, ok, "GET /v1/stream?%s: %d %r" % (query, s.status, s.headers))
    if not ok:
        s.close()
        return None
    s.start()
    return s


def sse_refused(ck, name, url, query, token, want, same_as=None):
    """PASS name when GET /v1/stream?query is answered want, with a body
    of Content-Length (no stream); same_as: that body too."""
    try:
        s = Stream(url, query, token)
    except OSError as e:
        ck(name, False, "GET /v1/stream?%s: %s" % (query, e))
        return
    body = s.read_answer()
    s.close()
    ok = (s.status == want and "content-length" in s.headers
          and not s.headers.get("content-type", "").startswith(
              "text/event-stream")
          and (same_as is None or body == same_as))
    ck(name, ok, "GET /v1/stream?%s: %d %r %r, expected %d%s"
       % (query, s.status, s.headers, body[:120], want,
          "" if same_as is None else " with body %r" % same_as[:120]))


def sse_live(ck, url, t, admin, adv1):
    """Counts events of one ad and of an advertiser's ads."""
    one = open_stream(ck, "ad_stream_200", url, "ad_id=501", admin)
    if one is None:
        return None
    first = one.wait_event(lambda d: True, EVENT_WITHIN_S)
    ck("ad_stream_initial_snapshot",
       first is not None and first[2]["ad_id"] == "501"
       and (first[2]["impressions"], first[2]["clicks"]) == (0, 0),
       "first counts event %r (sse.h: current totals at once)"
       % (first and first[2]))
    posted, qid = t.query([501, 502, 601])
    at = check_event(ck, "ad_impression_event_within_1s", one, "501", 1, 0,
                     posted)
    posted = t.click(qid, 501)
    check_event(ck, "ad_click_event_within_1s", one, "501", 1, 1, posted, at)
    adv = open_stream(ck, "advertiser_stream_200", url, "advertiser_id=1",
                      adv1)
    if adv is None:
        return one
    for ad, want in (("501", (1, 1)), ("502", (1, 0))):
        got = adv.wait_event(lambda d, a=ad: d["ad_id"] == a,
                             EVENT_WITHIN_S)
        ck("advertiser_stream_initial_%s" % ad,
           got is not None and (got[2]["impressions"], got[2]["clicks"])
           == want, "first event of ad %s: %r, expected %r"
           % (ad, got and got[2], want))
    posted, qid = t.query([502, 601])
    posted = t.click(qid, 502)
    check_event(ck, "advertiser_click_event_within_1s", adv, "502", 2, 1,
                posted)
    time.sleep(EVENT_WITHIN_S / 2)  # room for an event that must not come
    ads = {d and d["ad_id"] for d in adv.counts()}
    ck("advertiser_stream_only_own_ads", ads <= {"501", "502"},
       "events of ads %r" % sorted(map(str, ads)))
    ads = {d and d["ad_id"] for d in one.counts()}
    ck("ad_stream_only_its_ad", ads == {"501"},
       "events of ads %r" % sorted(map(str, ads)))
    adv.close()
    return one


def sse_access(ck, url, admin, ingest, adv1, adv2):
    """Refused subscriptions: answered at once, no stream."""
    hidden = sc.Client(url, adv2).request("GET", "/v1/ads/501/terms")
    ck("terms_404_for_comparison", hidden[0] == 404,
       "GET /v1/ads/501/terms as advertiser 2: %d" % hidden[0])
    for name, query, token, want in (
            ("other_advertisers_ad_404", "ad_id=501", adv2, 404),
            ("other_advertiser_404", "advertiser_id=1", adv2, 404),
            ("uncatalogued_ad_404", "ad_id=" + UNCATALOGUED_AD, adv1, 404)):
        sse_refused(ck, name, url, query, token, want, hidden[2])
    sse_refused(ck, "no_token_401", url, "ad_id=501", None, 401)
    sse_refused(ck, "ingest_token_403", url, "ad_id=501", ingest, 403)
    sse_refused(ck, "bad_ad_id_400", url, "ad_id=5x1", admin, 400)
    sse_refused(ck, "no_parameter_400", url, "", admin, 400)


def sse_disconnects(ck, url, t, admin, survivor):
    """Clients that go away in every manner; the server goes on."""
    u = urllib.parse.urlsplit(url)
    for _ in range(3):  # the request, then gone before the answer
        s = socket.create_connection((u.hostname, u.port))
        s.sendall(b"GET /v1/stream?ad_id=501 HTTP/1.1\r\nHost: x\r\n"
                  b"Authorization: Bearer " + admin.encode() + b"\r\n\r\n")
        s.close()
    for i, reset in enumerate((False, True, False, True)):
        s = open_stream(ck, "stream_%d_before_disconnect_200" % i, url,
                        "advertiser_id=1", admin)
        if s is not None:
            s.wait_event(lambda d: True, EVENT_WITHIN_S)
            s.close(reset)
    s = socket.create_connection((u.hostname, u.port))  # half a request
    s.sendall(b"GET /v1/stream?ad_id=5")
    s.close()
    posted, _qid = t.query([501])
    before = len(survivor.events)
    check_event(ck, "after_disconnects_event_within_1s", survivor, "501", 2,
                1, posted, before)
    c = sc.Client(url, admin)
    ck.status("after_disconnects_healthz", c, "GET", "/healthz", 200)
    got = ck.status("after_disconnects_terms", c, "GET",
                    "/v1/ads/501/terms", 200)
    if got:
        tot = json.loads(got[2]).get("totals", {})
        ck("after_disconnects_counts",
           (tot.get("impressions"), tot.get("clicks")) == (2, 1),
           "totals of ad 501: %r, expected 2 impressions, 1 click" % tot)
    fresh = open_stream(ck, "after_disconnects_new_stream", url,
                        "ad_id=501", admin)
    if fresh is not None:
        got = fresh.wait_event(lambda d: True, EVENT_WITHIN_S)
        ck("after_disconnects_new_stream_snapshot",
           got is not None and (got[2]["impressions"], got[2]["clicks"])
           == (2, 1), "first event %r" % (got and got[2]))
        fresh.close()


def cmd_sse(args):
    ck = sc.Checks("sse")
    t = Traffic(args.url, args.ingest)
    try:
        survivor = sse_live(ck, args.url, t, args.admin, args.adv1)
        sse_access(ck, args.url, args.admin, args.ingest, args.adv1,
                   args.adv2)
        if survivor is not None:
            sse_disconnects(ck, args.url, t, args.admin, survivor)
            survivor.close()
    except (OSError, RuntimeError, http.client.HTTPException) as e:
        ck("run", False, "%s: %s" % (type(e).__name__, e))
    return ck.failed


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("wait-follow")
    s.add_argument("url")
    s.add_argument("now")
    s.add_argument("--before")
    s.add_argument("seconds", type=float)
    s.set_defaults(fn=cmd_wait_follow)
    s = sub.add_parser("check-counts")
    s.add_argument("url")
    s.add_argument("ref")
    s.add_argument("seconds", type=float)
    s.set_defaults(fn=cmd_check_counts)
    s = sub.add_parser("sse")
    for name in ("url", "admin", "ingest", "adv1", "adv2"):
        s.add_argument(name)
    s.set_defaults(fn=cmd_sse)
    s = sub.add_parser("sse-catalog")
    s.add_argument("out")
    s.set_defaults(fn=cmd_sse_catalog)
    args = p.parse_args()
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
