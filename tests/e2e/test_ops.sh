#!/usr/bin/env bash
# What an operator sees of `ctrd serve`, through the real binary:
# - the access log (--access-log): one logfmt line per answer on stderr,
#   ts peer method path [query] status dur_ms bytes, in that order, each
#   matching what the client sent and got; values with spaces, quotes or
#   backslashes quoted and escaped (bytes outside ASCII as \xHH) so that a
#   logfmt reader gets back the bytes that were sent; the server's own answers (400) logged too;
# - GET /metrics: ctrd_build_info with CTRD_VERSION of src/cli.h,
#   and the process_* metrics with HELP and TYPE and values that agree with
#   /proc/PID of the server (RSS, open descriptors, start time);
# - ctrd_http_responses_total counts the answers by class.
. "$(dirname "$0")/lib.sh"
. "$E2E_DIR/serve_lib.sh"

if start_server ops "$TMP/data" --access-log; then
    # Requests: (raw request target, expected status or 0 for "any").
    pycheck ops_access_log '
import re, socket, sys, time
host, port = sys.argv[1].rsplit("/", 1)[1].split(":")
log_path = sys.argv[2]
before = len(open(log_path).readlines())  # GET /readyz of start_server
targets = [
    "/v1/ads/7/terms?from=2026-12-01T00:00:00Z&limit=10",
    "/healthz",
    "/v1/no/such?q=%22a%20b%22&x=\"y\\z",
    "/a=b\\c\"d",
    "/caf\u00e9?q=\u00e9t\u00e9",
]

def ask(raw):
    s = socket.create_connection((host, int(port)), timeout=10)
    s.sendall(raw)
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), len(body)

got = []
for t in targets:
    raw = ("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % t)
    got.append((t,) + ask(raw.encode()))
got.append(("-",) + ask(b"NOT A REQUEST\r\n\r\n"))
t_end = time.time()

def logfmt(line):
    pairs, i = [], 0
    while i < len(line):
        m = re.compile(r"([a-z_]+)=").match(line, i)
        assert m, "no key at %d of %r" % (i, line)
        i = m.end()
        if i < len(line) and line[i] == "\"":
            v, i = "", i + 1
            while line[i] != "\"":
                if line[i] == "\\":
                    if line[i + 1] == "x":
                        v += chr(int(line[i + 2:i + 4], 16)); i += 4
                    else:
                        v += line[i + 1]; i += 2
                else:
                    v += line[i]; i += 1
            i += 1
        else:
            j = line.find(" ", i)
            j = len(line) if j < 0 else j
            v, i = line[i:j], j
            assert "\"" not in v and "\\" not in v, "unquoted %r" % v
        pairs.append((m.group(1), v))
        if i < len(line):
            assert line[i] == " ", "no space after a value in %r" % line
            i += 1
    return pairs

lines = [l.rstrip("\n") for l in open(log_path).readlines()[before:]]
assert len(lines) == len(got), "%d log lines for %d requests: %r" % (len(lines), len(got), lines)
for (target, status, nbytes), line in zip(got, lines):
    kv = logfmt(line)
    keys = [k for k, _ in kv]
    d = dict(kv)
    path, _, query = target.partition("?")
    want = ["ts", "peer", "method", "path"] + (["query"] if query else []) + ["status", "dur_ms", "bytes"]
    assert keys == want, "keys %r, want %r in %r" % (keys, want, line)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", d["ts"]), line
    ts = time.mktime(time.strptime(d["ts"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
    assert t_end - 120 < ts <= t_end + 1, "ts %s, now %s" % (d["ts"], t_end)
    assert d["peer"] == "127.0.0.1", line
    assert d["method"] == ("GET" if target != "-" else "-"), line
    # \xHH escapes read back as chr(HH): compare the bytes
    sent = lambda v: v.encode("latin-1")
    assert sent(d["path"]) == path.encode(), "path %r, sent %r" % (d["path"], path)
    assert sent(d.get("query", "")) == query.encode(), "query %r, sent %r" % (d.get("query"), query)
    assert int(d["status"]) == status, "status %s, got %d: %s" % (d["status"], status, line)
    assert int(d["bytes"]) == nbytes, "bytes %s, got %d: %s" % (d["bytes"], nbytes, line)
    assert re.fullmatch(r"\d+\.\d{3}", d["dur_ms"]) and float(d["dur_ms"]) < 10000, line
assert [s for _, s, _ in got][1] == 200 and got[-1][1] == 400, got
' "$SRV_URL" "$TMP/ops.log"

    # The version the binary was built with (`ctrd --version` prints it
    # too once every command takes --version).
    version=$(sed -n 's/^#define CTRD_VERSION "\(.*\)"$/\1/p' "$E2E_DIR/../../src/cli.h")
    pycheck ops_process_metrics '
import os, re, sys, time, urllib.request
url, pid, version = sys.argv[1], sys.argv[2], sys.argv[3]
text = urllib.request.urlopen(url + "/metrics", timeout=10).read().decode()
def family(name, typ):
    assert re.search(r"^# HELP %s \S" % name, text, re.M), "no HELP for " + name
    assert re.search(r"^# TYPE %s %s$" % (name, typ), text, re.M), "no TYPE %s %s" % (name, typ)
    m = re.search(r"^%s(\{[^}]*\})? (\S+)$" % name, text, re.M)
    assert m, "no sample of " + name
    return m.group(1), float(m.group(2))
labels, v = family("ctrd_build_info", "gauge")
assert labels == "{version=\"%s\"}" % version and v == 1, (labels, v)
_, cpu = family("process_cpu_seconds_total", "counter")
_, rss = family("process_resident_memory_bytes", "gauge")
_, vm = family("process_virtual_memory_bytes", "gauge")
_, start = family("process_start_time_seconds", "gauge")
_, fds = family("process_open_fds", "gauge")
_, max_fds = family("process_max_fds", "gauge")
status = open("/proc/%s/status" % pid).read()
vmrss = int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) * 1024
n_fds = len(os.listdir("/proc/%s/fd" % pid))
soft = int(re.search(r"Max open files\s+(\d+)", open("/proc/%s/limits" % pid).read()).group(1))
assert 0 <= cpu < 3600, cpu
assert rss > 0 and vm >= rss, (rss, vm)
assert vmrss / 2 < rss < vmrss * 2, "rss %d, /proc says %d" % (rss, vmrss)
assert time.time() - 600 < start <= time.time(), start
assert 0 < fds <= max_fds and abs(fds - n_fds) <= 4, "fds %d, /proc has %d" % (fds, n_fds)
assert max_fds == soft, "max_fds %d, limit %d" % (max_fds, soft)
' "$SRV_URL" "$SRV_PID" "$version"

    # The answers so far: 2xx for /healthz, /readyz and /metrics, 4xx for
    # the unknown paths and the bad request.
    pycheck ops_responses_counted '
import re, sys, urllib.request
text = urllib.request.urlopen(sys.argv[1] + "/metrics", timeout=10).read().decode()
n = {c: int(v) for c, v in re.findall(r"^ctrd_http_responses_total\{class=\"(\dxx)\"\} (\d+)$", text, re.M)}
assert sorted(n) == ["1xx", "2xx", "3xx", "4xx", "5xx"], "classes: %r" % sorted(n)
assert n["2xx"] >= 3 and n["4xx"] >= 3 and n["5xx"] == 0, n
' "$SRV_URL"
    stop_server ops_exit0
fi
logs_clean ops_logs_clean
finish
