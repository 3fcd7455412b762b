#!/usr/bin/env python3
"""http_limits: the client side of tests/e2e/test_http_limits.sh — idle
connections, per-peer limits and read load against a real `ctrd serve`.
Python 3 standard library only. Every subcommand prints its own PASS/FAIL
lines and exits 1 when one failed.

  http_limits.py queries OUT
      writes NDJSON queries: ad 7 shown with 50,000 distinct terms (a slow
      table), ad 8 with 5 (a fast one).
  http_limits.py post PORT FILE
      POSTs FILE to /v1/queries: 200, every line accepted.
  http_limits.py peer-limit PORT SRC N LIMIT
      opens N connections from source address SRC: exactly N - LIMIT are
      refused (503 with Retry-After, then closed), the others serve.
  http_limits.py idle-flood PORT N SECONDS PATH
      opens N connections that never send a byte, IDLE_PER_ADDR per source
      address from 127.0.0.2 on; while they are open a canary from
      127.0.0.1 asks for /healthz and PATH every CANARY_GAP_S for SECONDS:
      every answer must be 200 and come within CANARY_MAX_S. Then at least
      N - MAX_CONNECTIONS of the idle connections must have been closed by
      the server (evicted for the canary and the later idle ones).
  http_limits.py load NAME PORT PATH CLIENTS SECONDS --expect-shed MS
      CLIENTS connections from 127.0.0.1 each ask for PATH again as soon as
      answered, for SECONDS: some answers must be 503 (with Retry-After),
      the others 200, and 99 % of the 200s within MS milliseconds.
"""
import asyncio
import http.client
import json
import resource
import select
import socket
import sys
import time

IDLE_PER_ADDR = 250
MAX_CONNECTIONS = 4096  # ctrd serve's default
CANARY_GAP_S = 0.02
CANARY_MAX_S = 2.0  # generous: ASan on a busy 2-core machine
CONNECT_TIMEOUT_S = 10

failed = False


def check(name, ok, detail=""):
    global failed
    if ok:
        print("PASS " + name)
    else:
        failed = True
        print("FAIL %s%s" % (name, ": " + detail if detail else ""))


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def dial(port, src):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(CONNECT_TIMEOUT_S)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s


def read_answer(s):
    """One HTTP answer from a blocking socket: (status, head, body)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the answer")
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("closed in the body")
        body += chunk
    return int(head.split()[1]), head.decode("latin-1"), body


def get(s, path):
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode())
    return read_answer(s)


def readable(socks):
    """The sockets with something to read (or closed), at once."""
    poll = select.poll()
    for s in socks:
        poll.register(s, select.POLLIN)
    ready = {fd for fd, _ in poll.poll(0)}
    return [s for s in socks if s.fileno() in ready]


def closed_by_server(socks):
    """How many of the sockets the server has closed (EOF or reset)."""
    closed = 0
    for s in readable(socks):
        try:
            if s.recv(1) == b"":
                closed += 1
        except OSError:
            closed += 1
    return closed


def cmd_queries(out):
    t0 = 1795341600000
    with open(out, "w") as f:
        for i in range(50000):
            f.write(json.dumps({"time": t0 + i, "query_id": str(i + 1),
                                "query": "term %05d" % i,
                                "ad_ids": [7]}) + "\n")
        for i in range(5000):
            f.write(json.dumps({"time": t0 + i, "query_id": str(100000 + i),
                                "query": "few %d" % (i % 5),
                                "ad_ids": [8]}) + "\n")


def cmd_post(port, path):
    body = open(path, "rb").read()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request("POST", "/v1/queries", body=body,
                 headers={"Content-Type": "application/x-ndjson"})
    resp = conn.getresponse()
    answer = resp.read().decode()
    lines = body.count(b"\n")
    check("ingest", resp.status == 200 and
          json.loads(answer).get("accepted") == lines,
          "%d %s (%d lines)" % (resp.status, answer[:200], lines))


def cmd_peer_limit(port, src, n, limit):
    raise_fd_limit()
    socks = [dial(port, src) for _ in range(n)]
    time.sleep(0.5)  # the server takes them in
    refused, bad = 0, []
    answered = readable(socks)
    for s in answered:
        try:
            status, head, _ = read_answer(s)
        except (OSError, ConnectionError) as e:
            bad.append(repr(e))
            continue
        if status == 503 and "\r\nRetry-After: 1" in head:
            refused += 1
        else:
            bad.append(head.split("\r\n")[0])
    check("peer_limit_refused", refused == n - limit and not bad,
          "%d refused of %d (limit %d), unexpected %s" % (refused, n, limit,
                                                          bad[:3]))
    open_ones = [s for s in socks if s not in answered]
    statuses = []
    for s in open_ones[:3]:
        statuses.append(get(s, "/healthz")[0])
    check("peer_limit_admitted_serve", statuses == [200] * 3, str(statuses))
    for s in socks:
        s.close()


def cmd_idle_flood(port, n, seconds, path):
    raise_fd_limit()
    t0 = time.monotonic()
    idle = []
    try:
        for i in range(n):
            a = i // IDLE_PER_ADDR
            idle.append(dial(port, "127.0.%d.%d" % (a // 250, 2 + a % 250)))
    except OSError as e:
        check("flood_opened", False, "%d of %d, then %r" % (len(idle), n, e))
        return
    check("flood_opened", True)
    opened_s = time.monotonic() - t0

    statuses, worst, canary = {}, 0.0, None
    end = time.monotonic() + seconds
    k = 0
    while time.monotonic() < end:
        target = "/healthz" if k % 2 else path
        k += 1
        t = time.monotonic()
        try:
            if canary is None:
                canary = dial(port, "127.0.0.1")
            status, head, _ = get(canary, target)
            if "Connection: close" in head:
                canary.close()
                canary = None
        except (OSError, ConnectionError) as e:
            status = repr(e)
            if canary:
                canary.close()
            canary = None
        worst = max(worst, time.monotonic() - t)
        statuses[status] = statuses.get(status, 0) + 1
        time.sleep(CANARY_GAP_S)
    check("flood_canary_served",
          list(statuses) == [200] and worst < CANARY_MAX_S,
          "answers %s, slowest %.3f s" % (statuses, worst))
    closed = closed_by_server(idle)
    check("flood_idle_evicted", closed >= n - MAX_CONNECTIONS,
          "%d of %d idle connections closed by the server" % (closed, n))
    print("flood: %d idle connections opened in %.1f s; canary %s, slowest "
          "%.1f ms; %d idle closed by the server" %
          (n, opened_s, statuses, worst * 1000, closed))
    for s in idle:
        s.close()
    if canary:
        canary.close()


async def one_client(port, path, end, answers):
    request = ("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.monotonic() < end:
            t = time.monotonic()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            status = int(head.split()[1])
            retry = b"\r\nRetry-After: 1\r\n" in head
            answers.append((status, time.monotonic() - t, retry))
    finally:
        writer.close()


async def run_load(port, path, clients, seconds):
    answers = []
    end = time.monotonic() + seconds
    results = await asyncio.gather(
        *(one_client(port, path, end, answers) for _ in range(clients)),
        return_exceptions=True)
    errors = [repr(r) for r in results if isinstance(r, BaseException)]
    return answers, errors


def cmd_load(name, port, path, clients, seconds, admitted_ms):
    raise_fd_limit()
    answers, errors = asyncio.run(run_load(port, path, clients, seconds))
    ok = sorted(t for s, t, _ in answers if s == 200)
    shed = [a for a in answers if a[0] == 503]
    other = [a[0] for a in answers if a[0] not in (200, 503)]
    p99 = ok[min(len(ok) - 1, int(len(ok) * 0.99))] * 1000 if ok else None
    print("%s: %d clients, %d answers: %d 200 (p50 %s ms, p99 %s ms), %d 503"
          % (name, clients, len(answers), len(ok),
             "%.1f" % (ok[len(ok) // 2] * 1000) if ok else "-",
             "%.1f" % p99 if ok else "-", len(shed)))
    check(name + "_no_errors", not errors and not other,
          "%s %s" % (errors[:3], other[:3]))
    check(name + "_shed", len(shed) > 0 and all(r for _, _, r in shed),
          "%d shed, all with Retry-After: %s" % (len(shed),
                                                 all(r for _, _, r in shed)))
    check(name + "_admitted_fast", len(ok) >= 5 and p99 < admitted_ms,
          "%d admitted, p99 %s ms (bound %d)" % (len(ok), p99, admitted_ms))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "queries":
        cmd_queries(args[0])
    elif cmd == "post":
        cmd_post(int(args[0]), args[1])
    elif cmd == "peer-limit":
        cmd_peer_limit(int(args[0]), args[1], int(args[2]), int(args[3]))
    elif cmd == "idle-flood":
        cmd_idle_flood(int(args[0]), int(args[1]), float(args[2]), args[3])
    elif cmd == "load" and args[5] == "--expect-shed":
        cmd_load(args[0], int(args[1]), args[2], int(args[3]),
                 float(args[4]), float(args[6]))
    else:
        sys.exit("usage: see the top of " + sys.argv[0])
    sys.exit(1 if failed else 0)


main()
