#!/usr/bin/env python3
"""post: sends a log file to a cluster's front ends as a client that
retries would: in requests of --lines lines, each to the next front end in
turn; a request that fails (connection refused or reset, 5xx, no answer in
time) is sent again; a 4xx fails at once, to the next front end, until it is answered 200 or
--deadline seconds pass. Re-sending is safe: records count once.

  post.py FILE queries|clicks URL [URL...] [--lines N] [--deadline S]

Prints one line: requests, retries, accepted, rejected. Exit 0 when every
request was answered 200, 1 otherwise.
"""
import json
import sys
import time
import urllib.error
import urllib.request


def send(url, kind, body):
    req = urllib.request.Request(
        "%s/v1/%s" % (url, kind), data=body, method="POST",
        headers={"Content-Type": "application/x-ndjson"})
    with urllib.request.urlopen(req, timeout=15) as r:
        return json.load(r)


def main():
    args = sys.argv[1:]
    opts = {"--lines": 2000, "--deadline": 60.0}
    for name in list(opts):
        if name in args:
            i = args.index(name)
            opts[name] = type(opts[name])(args[i + 1])
            del args[i:i + 2]
    path, kind, urls = args[0], args[1], args[2:]
    with open(path, "rb") as f:
        lines = f.readlines()
    n = opts["--lines"]
    requests = retries = accepted = rejected = 0
    turn = 0
    for at in range(0, len(lines), n):
        body = b"".join(lines[at:at + n])
        deadline = time.monotonic() + opts["--deadline"]
        while True:
            url = urls[turn % len(urls)]
            turn += 1
            try:
                answer = send(url, kind, body)
                break
            except urllib.error.HTTPError as e:
                if e.code < 500:  # the request itself is wrong: no retry
                    print("post: %s lines %d..: %s" % (path, at + 1, e))
                    return 1
                retries += 1
                if time.monotonic() > deadline:
                    print("post: %s lines %d..: gave up: %s" % (path, at + 1, e))
                    return 1
                time.sleep(0.2)
            except OSError as e:
                retries += 1
                if time.monotonic() > deadline:
                    print("post: %s lines %d..: gave up: %s" % (path, at + 1, e))
                    return 1
                time.sleep(0.2)
        requests += 1
        accepted += answer["accepted"]
        rejected += answer["rejected"]
    print("post: %s: %d requests, %d retries, %d accepted, %d rejected" %
          (path, requests, retries, accepted, rejected))
    return 0


if __name__ == "__main__":
    sys.exit(main())
