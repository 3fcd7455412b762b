#!/usr/bin/env bash
# Prometheus integration (SPEC §5 GET /metrics), checked with promtool
# (Debian package prometheus, in scripts/install-deps; without it every
# check here FAILs):
# - deploy/prometheus/alerts.yml is valid and its alerts fire, and stay
#   quiet, as deploy/prometheus/alerts_test.yml says;
# - the exposition of a registry shaped like serve's, written by the unit
#   test binary (`test_metrics --dump`, from $UNIT_DIR or next to $CTRD),
#   passes `promtool check metrics` without a single lint message;
# - that exposition has every metric of the CONTRACT comment of alerts.yml
#   with its type, and the rules use no ctrd_ metric outside the contract;
# - so does the exposition of a real `ctrd serve` that ingested a few
#   generated records (tricky ones included: rejects by reason, joins,
#   duplicates, waiting clicks) and answered reads and a stream.
. "$(dirname "$0")/lib.sh"
. "$E2E_DIR/serve_lib.sh"

RULES_DIR="$E2E_DIR/../../deploy/prometheus"
RULES="$RULES_DIR/alerts.yml"
DUMP_BIN="${UNIT_DIR:-$(dirname "$CTRD")/tests}/test_metrics"

# promcheck NAME COMMAND...: PASS when the command exits 0; else FAIL with
# its output on one line.
promcheck() {
    local name="$1" out
    shift
    if out=$("$@" 2>&1); then pass "$name"; else
        fail "$name" "$(printf '%s' "$out" | tr '\n' ' ' | head -c 600)"; fi
}

if ! command -v promtool >/dev/null; then
    fail promtool_installed "promtool not found: run scripts/install-deps"
    finish
fi

promcheck promtool_check_rules promtool check rules "$RULES"
promcheck promtool_test_rules \
    bash -c 'cd "$1" && promtool test rules alerts_test.yml' _ "$RULES_DIR"

# The exposition: the dump must succeed, and promtool must accept it with
# no output at all (lint messages go to its output with exit status 0 or 3).
# The contract: lines "#   ctrd_name   type ..." at the top of alerts.yml.
contract=$(sed -n 's/^#   \(ctrd_[a-z_]*\)  *\(counter\|gauge\|histogram\) .*/\1 \2/p' "$RULES")

# exposition_checks SUFFIX FILE: promtool accepts FILE with no output at all
# (lint messages go to its output with exit status 0 or 3), and it has
# every metric of the contract with its type.
exposition_checks() {
    local suffix="$1" m="$2" out rc missing=""
    out=$(promtool check metrics <"$m" 2>&1)
    rc=$?
    if [ "$rc" -eq 0 ] && [ -z "$out" ]; then pass "promtool_check_metrics$suffix"; else
        fail "promtool_check_metrics$suffix" \
            "exit $rc: $(printf '%s' "$out" | tr '\n' ' ' | head -c 600)"; fi
    while read -r name type; do
        grep -qx "# TYPE $name $type" "$m" || missing+=" $name($type)"
    done <<<"$contract"
    if [ -n "$contract" ] && [ -z "$missing" ]; then pass "metrics_contract_exported$suffix"; else
        fail "metrics_contract_exported$suffix" \
            "not in the exposition:${missing:- (no contract found)}"; fi
}

# The exposition of the unit test's registry.
M="$TMP/metrics.txt"
if ! "$DUMP_BIN" --dump >"$M" 2>"$TMP/dump.err" || [ ! -s "$M" ]; then
    fail metrics_dump "$DUMP_BIN --dump failed: $(head -c 300 "$TMP/dump.err")"
else
    pass metrics_dump
    exposition_checks "" "$M"
fi
unknown=""
for name in $(grep -v '^ *#' "$RULES" | grep -o 'ctrd_[a-z_]*' |
              sed 's/_bucket$//' | sort -u); do
    grep -q "^$name " <<<"$contract" || unknown+=" $name"
done
if [ -z "$unknown" ]; then pass alert_rules_use_contract; else
    fail alert_rules_use_contract "used but not in the contract:$unknown"; fi

# The exposition of a real server, after ingest, reads and a stream.
G="$TMP/gen"
if ! ctrd gen --out "$G" --queries-per-sec 5 --duration 2m --seed 3 --ads 50 --tricky \
    >"$TMP/gen.out" 2>&1; then
    fail serve_gen "$(head -3 "$TMP/gen.out")"
elif start_server serve "$TMP/data"; then
    check serve_ingest client ingest "$SRV_URL" "$TMP/in.json" --queries "$G/queries.ndjson" \
        --clicks "$G/clicks.ndjson" --click-conns 2
    pycheck serve_reads '
import sys, time, urllib.request, urllib.error
url = sys.argv[1]
for path in ("/v1/ads/1000/terms", "/v1/ads/1000/series?step=1h",
             "/v1/advertisers/1/ads", "/v1/nothing", "/healthz", "/readyz"):
    try:
        urllib.request.urlopen(url + path, timeout=10).read()
    except urllib.error.HTTPError as e:
        assert e.code == 404, "GET %s: %d" % (path, e.code)
s = urllib.request.urlopen(url + "/v1/stream?ad_id=1000", timeout=10)
assert s.status == 200, "GET /v1/stream: %d" % s.status
s.close()
time.sleep(0.3)  # the stream is gone' "$SRV_URL"
    LM="$TMP/live-metrics.txt"
    if pycheck serve_get_metrics '
import sys, urllib.request
r = urllib.request.urlopen(sys.argv[1] + "/metrics", timeout=10)
open(sys.argv[2], "wb").write(r.read())
assert r.status == 200, "GET /metrics: %d" % r.status' "$SRV_URL" "$LM"; then
        exposition_checks _serve "$LM"
    fi
    stop_server serve_exit0
fi
logs_clean serve_logs_clean
finish
