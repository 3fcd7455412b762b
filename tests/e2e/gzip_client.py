#!/usr/bin/env python3
"""gzip_client: the HTTP driver of tests/e2e/test_gzip.sh and
bench/gzip_bombs.sh — gzip request bodies (SPEC §5: "optionally gzip
(Content-Encoding: gzip)", 413 over the body limit, which holds once
inflated too) through real HTTP. Reuses serve_client.py's client and
checks. Python 3 standard library only.

  gzip_client.py members URL OUT.json KIND:CHUNK...
      POSTs each chunk (KIND: queries or clicks) as one body of four
      gzip members (RFC 1952: a gzip file may hold several, as
      `cat a.gz b.gz` makes): the chunk cut in three at arbitrary bytes
      (mid-line), the second part in a member whose header carries every
      optional field (FTEXT, FHCRC, FEXTRA, FNAME, FCOMMENT), an empty
      member before the third. Every answer must be 200; the requests and
      answers go to OUT.json (serve_client.py ingest's shape, for its
      check-ingest). Prints PASS/FAIL lines.
  gzip_client.py bad URL
      bodies that are not valid gzip are 400 and count nothing: garbage
      or NUL padding after a member, a member cut short in its data, in
      its trailer, in its header, a valid member followed by a cut one,
      a wrong CRC-32, a wrong length, an empty body. Prints PASS/FAIL
      lines.
  gzip_client.py bombs URL N [--rounds R | --for-seconds S]
          [--healthz-max-ms MS] [--name NAME]
      R rounds (default 1; or rounds until S seconds passed) of N
      concurrent POSTs of a gzip bomb: at most
      127 KiB of gzip that inflates to about 130 MB (two valid query records and
      empty lines between them), past any --max-body up to 64 MiB. Meanwhile
      GET /healthz is polled on its own connection. Every bomb must be
      413 and none of its records counted; every /healthz 200, and (with
      --healthz-max-ms) none slower than MS. Prints the /healthz latency
      (p50, p99, max) and PASS/FAIL lines NAME_... (default gzip_bombs).
Exit status 0 when every check passed, 1 otherwise.
"""
import argparse
import gzip
import http.client
import json
import os
import struct
import sys
import threading
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import serve_client as sc  # noqa: E402  (tests/e2e/serve_client.py)

BOMB_BYTES = 127 * 1024
BOMB_TIMEOUT_S = 120  # bombs wait their turn on the one ingest thread
PROBE_BAD = str(sc.UNKNOWN_AD_BASE + 500)  # ads no generated log shows
PROBE_BOMB = str(sc.UNKNOWN_AD_BASE + 501)
PROBE_AFTER = str(sc.UNKNOWN_AD_BASE + 502)
GZ = sc.post_headers("ndjson", True)
HEALTHZ_PAUSE_S = 0.005


# ---- gzip members (RFC 1952) ----

def raw_deflate(data):
    co = zlib.compressobj(6, zlib.DEFLATED, -15)
    return co.compress(data) + co.flush()


def member_all_fields(data):
    """One member whose header has every optional field, FHCRC last:
    the low 16 bits of the CRC-32 of the header bytes before it."""
    ftext, fhcrc, fextra, fname, fcomment = 1, 2, 4, 8, 16
    head = bytes([0x1f, 0x8b, 8, ftext | fhcrc | fextra | fname | fcomment])
    head += struct.pack("<I", 1795341600)  # MTIME
    head += bytes([0, 3])  # XFL, OS (Unix)
    sub = b"ct" + struct.pack("<H", 4) + b"ctrd"  # SI1 SI2 LEN data
    head += struct.pack("<H", len(sub)) + sub
    head += b"part-two.ndjson\0" + b"a member with every header field\0"
    head += struct.pack("<H", zlib.crc32(head) & 0xffff)
    return head + raw_deflate(data) + struct.pack(
        "<II", zlib.crc32(data), len(data) & 0xffffffff)


def four_members(data):
    a, b = len(data) // 3, 2 * len(data) // 3 + 1
    body = (gzip.compress(data[:a], mtime=0) + member_all_fields(data[a:b])
            + gzip.compress(b"", mtime=0) + gzip.compress(data[b:], mtime=0))
    # the standard library's reader agrees it is one valid gzip stream
    assert gzip.decompress(body) == data
    return body


def cmd_members(args):
    ck = sc.Checks("gzip_members")
    c = sc.Client(args.url)
    recs = []
    for spec in args.chunks:
        kind, _sep, path = spec.partition(":")
        with open(path, "rb") as f:
            body = four_members(f.read())
        rec = {"kind": kind, "chunk": path, "status": None, "answer": None}
        try:
            rec["status"], _h, data = c.request("POST", "/v1/" + kind, body,
                                                GZ)
            try:
                rec["answer"] = json.loads(data)
            except ValueError:
                rec["answer"] = data[:300].decode("utf-8", "replace")
        except (OSError, http.client.HTTPException) as e:
            rec["answer"] = "%s: %s" % (type(e).__name__, e)
            c.close()
        recs.append(rec)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump({"requests": recs}, f)
    bad = [r for r in recs if r["status"] != 200]
    ck("200", not bad, "%d of %d bodies: first %s %s: %s %r" % (
        len(bad), len(recs), bad and bad[0]["kind"],
        bad and os.path.basename(bad[0]["chunk"]), bad and bad[0]["status"],
        bad and str(bad[0]["answer"])[:150]))
    return ck.failed


# ---- invalid gzip ----

def impressions(client, ad):
    st, body = client.get_json("/v1/ads/%s/terms" % ad)
    if st != 200 or not isinstance(body, dict):
        return "GET terms: %s %r" % (st, str(body)[:100])
    return body.get("totals", {}).get("impressions")


def cmd_bad(args):
    ck = sc.Checks("gzip_bad")
    c = sc.Client(args.url)
    plain = sc.query_lines(PROBE_BAD, 200, 9300000000000000001)
    one = gzip.compress(plain, mtime=0)
    half = gzip.compress(plain[:len(plain) // 2], mtime=0)
    rest = gzip.compress(plain[len(plain) // 2:], mtime=0)
    crc_off = len(one) - 8
    bodies = [
        ("garbage_after_member", one + b"garbage"),
        ("garbage_after_two_members", half + rest + b"\n{}\n"),
        ("nul_padding_after_member", one + bytes(512)),
        ("cut_in_its_data", one[:len(one) // 2]),
        ("cut_in_its_trailer", one[:-4]),
        ("cut_in_its_header", one[:6]),
        ("second_member_cut", half + rest[:len(rest) - 20]),
        ("wrong_crc32", one[:crc_off] + bytes([one[crc_off] ^ 1])
         + one[crc_off + 1:]),
        ("wrong_length", one[:-4] + struct.pack("<I", len(plain) + 1)),
        ("empty_body", b""),
    ]
    for name, body in bodies:
        ck.status(name + "_400", c, "POST", "/v1/queries", 400, body, GZ)
    got = impressions(c, PROBE_BAD)
    ck("nothing_counted", got == 0,
       "ad %s has %r impressions after only invalid bodies" % (PROBE_BAD,
                                                               got))
    # the same records in one valid body: counted (the probe can see them)
    ck.status("valid_body_200", c, "POST", "/v1/queries", 200, half + rest,
              GZ)
    got = impressions(c, PROBE_BAD)
    ck("valid_body_counted", got == 200,
       "ad %s has %r impressions, expected 200" % (PROBE_BAD, got))
    return ck.failed


# ---- bombs ----

def make_bomb():
    """(at most BOMB_BYTES of gzip, its inflated size): a valid query
    record, empty lines (deflate's best case, about 1:1000), another
    record."""
    first = sc.query_lines(PROBE_BOMB, 1, 9300000000000001001)
    last = sc.query_lines(PROBE_BOMB, 1, 9300000000000001002)
    block = b"\n" * (1 << 20)
    n = BOMB_BYTES * 1030
    while True:
        co = zlib.compressobj(9, zlib.DEFLATED, 31)
        out = [co.compress(first)]
        for k in range(0, n, len(block)):
            out.append(co.compress(block[:min(len(block), n - k)]))
        out += [co.compress(last), co.flush()]
        body = b"".join(out)
        if len(body) <= BOMB_BYTES:
            return body, len(first) + n + len(last)
        n -= n // 100


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, int(round(p / 100.0 *
                                              (len(sorted_values) - 1))))
    return sorted_values[k]


def cmd_bombs(args):
    ck = sc.Checks(args.name)
    bomb, inflated = make_bomb()
    print("bomb: %d bytes of gzip, %d bytes once inflated"
          % (len(bomb), inflated))
    statuses, latencies, health_bad = {}, [], []
    lock = threading.Lock()
    done = threading.Event()

    def poll_healthz():
        c = sc.Client(args.url)
        while not done.is_set():
            t = time.monotonic()
            try:
                st, _h, _d = c.request("GET", "/healthz")
            except (OSError, http.client.HTTPException) as e:
                st = "%s: %s" % (type(e).__name__, e)
                c.close()
            ms = (time.monotonic() - t) * 1000
            with lock:
                latencies.append(ms)
                if st != 200:
                    health_bad.append(st)
            time.sleep(HEALTHZ_PAUSE_S)
        c.close()

    def post_bomb(barrier):
        c = sc.Client(args.url)
        c.conn = http.client.HTTPConnection(c.host, c.port,
                                            timeout=BOMB_TIMEOUT_S)
        barrier.wait()
        try:
            st, _h, _d = c.request("POST", "/v1/queries", bomb, GZ)
        except (OSError, http.client.HTTPException) as e:
            st = "%s" % type(e).__name__
        c.close()
        with lock:
            statuses[st] = statuses.get(st, 0) + 1

    poller = threading.Thread(target=poll_healthz)
    poller.start()
    time.sleep(0.05)
    start = time.monotonic()
    rounds = 0
    while (rounds < args.rounds if args.for_seconds is None
           else time.monotonic() - start < args.for_seconds):
        rounds += 1
        barrier = threading.Barrier(args.n)
        threads = [threading.Thread(target=post_bomb, args=(barrier,))
                   for _ in range(args.n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    took = time.monotonic() - start
    done.set()
    poller.join()
    lat = sorted(latencies)
    print("%d rounds of %d concurrent bombs in %.2f s, answers %r"
          % (rounds, args.n, took, statuses))
    print("GET /healthz meanwhile: %d requests, p50 %.2f ms, p99 %.2f ms, "
          "max %.2f ms" % (len(lat), percentile(lat, 50),
                           percentile(lat, 99), lat[-1] if lat else 0))
    ck("all_413", statuses == {413: args.n * rounds},
       "answers %r" % statuses)
    ck("healthz_200", lat and not health_bad,
       "%d of %d /healthz answers failed: %r" % (len(health_bad), len(lat),
                                                 health_bad[:3]))
    if args.healthz_max_ms is not None:
        ck("healthz_fast", lat and lat[-1] <= args.healthz_max_ms,
           "slowest /healthz %.0f ms, bound %d ms"
           % (lat[-1] if lat else -1, args.healthz_max_ms))
    c = sc.Client(args.url)
    got = impressions(c, PROBE_BOMB)
    ck("nothing_counted", got == 0,
       "ad %s (the bombs' records) has %r impressions" % (PROBE_BOMB, got))
    body = sc.query_lines(PROBE_AFTER, 3, 9300000000000002001)
    ck.status("then_gzip_200", c, "POST", "/v1/queries", 200,
              gzip.compress(body), GZ)
    got = impressions(c, PROBE_AFTER)
    ck("then_counted", got == 3, "ad %s has %r impressions, expected 3"
       % (PROBE_AFTER, got))
    return ck.failed


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("members")
    s.add_argument("url")
    s.add_argument("out")
    s.add_argument("chunks", nargs="+")
    s.set_defaults(fn=cmd_members)
    s = sub.add_parser("bad")
    s.add_argument("url")
    s.set_defaults(fn=cmd_bad)
    s = sub.add_parser("bombs")
    s.add_argument("url")
    s.add_argument("n", type=int)
    s.add_argument("--rounds", type=int, default=1)
    s.add_argument("--for-seconds", type=float)
    s.add_argument("--healthz-max-ms", type=int)
    s.add_argument("--name", default="gzip_bombs")
    s.set_defaults(fn=cmd_bombs)
    args = p.parse_args()
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
