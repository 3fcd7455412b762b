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
#   with its type, and the rules use no ctrd_ metric outside the contract.
. "$(dirname "$0")/lib.sh"

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
M="$TMP/metrics.txt"
if ! "$DUMP_BIN" --dump >"$M" 2>"$TMP/dump.err" || [ ! -s "$M" ]; then
    fail metrics_dump "$DUMP_BIN --dump failed: $(head -c 300 "$TMP/dump.err")"
    finish
fi
pass metrics_dump
out=$(promtool check metrics <"$M" 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && [ -z "$out" ]; then pass promtool_check_metrics; else
    fail promtool_check_metrics "exit $rc: $(printf '%s' "$out" | tr '\n' ' ' | head -c 600)"; fi

# The contract: lines "#   ctrd_name   type ..." at the top of alerts.yml.
contract=$(sed -n 's/^#   \(ctrd_[a-z_]*\)  *\(counter\|gauge\|histogram\) .*/\1 \2/p' "$RULES")
missing=""
while read -r name type; do
    grep -qx "# TYPE $name $type" "$M" || missing+=" $name($type)"
done <<<"$contract"
if [ -n "$contract" ] && [ -z "$missing" ]; then pass metrics_contract_exported; else
    fail metrics_contract_exported "not in the exposition:${missing:- (no contract found)}"; fi
unknown=""
for name in $(grep -v '^ *#' "$RULES" | grep -o 'ctrd_[a-z_]*' |
              sed 's/_bucket$//' | sort -u); do
    grep -q "^$name " <<<"$contract" || unknown+=" $name"
done
if [ -z "$unknown" ]; then pass alert_rules_use_contract; else
    fail alert_rules_use_contract "used but not in the contract:$unknown"; fi
finish
