#!/usr/bin/env python3
"""Ingest load for bench/serve.sh: POSTs a query file and a click file to a
running `ctrd serve` in chunks over several connections (queries first, in
order on each connection's share; clicks after), and prints the durable
ingest rate. Usage: serve_load.py PORT QUERIES CLICKS [CONNECTIONS]."""
import http.client
import sys
import threading
import time

CHUNK_BYTES = 1 << 20


def chunks(path):
    with open(path, "rb") as f:
        data = f.read()
    out, at = [], 0
    while at < len(data):
        end = data.find(b"\n", min(at + CHUNK_BYTES, len(data) - 1))
        end = len(data) if end < 0 else end + 1
        out.append(data[at:end])
        at = end
    return out


def post_all(port, path, bodies, counts):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    for body in bodies:
        conn.request("POST", path, body=body,
                     headers={"Content-Type": "application/x-ndjson"})
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            raise SystemExit("POST %s: %d" % (path, resp.status))
        counts.append(body.count(b"\n"))


def run(port, path, bodies, n):
    counts, threads = [], []
    for i in range(n):
        t = threading.Thread(target=post_all,
                             args=(port, path, bodies[i::n], counts))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    return sum(counts)


def main():
    port, qpath, cpath = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 4
    q, c = chunks(qpath), chunks(cpath)
    start = time.monotonic()
    events = run(port, "/v1/queries", q, n) + run(port, "/v1/clicks", c, n)
    secs = time.monotonic() - start
    print("ingest  %d events in %.2f s: %.2f M events/s durable over HTTP "
          "(%d connections, 1 MiB bodies)" % (events, secs, events / secs / 1e6,
                                               n))


main()
