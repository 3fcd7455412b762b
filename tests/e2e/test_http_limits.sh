#!/usr/bin/env bash
# Issue 7, "degrade instead of dying": connection hygiene and read admission
# control of `ctrd serve`, through the real binary on loopback (all of
# 127/8 is loopback, so clients can play many addresses):
# - one client address holds at most --max-connections-per-peer (1024)
#   connections; the ones beyond get 503 with Retry-After and are logged
#   event=refused reason=peer_limit;
# - 5,000 connections that never send a byte, from 20 addresses, lock no
#   one out: a canary from 127.0.0.1 keeps getting 200s, and idle
#   connections are evicted for newcomers (logged event=evicted);
# - 16 clients (wrk, from scripts/install-deps; without it that check
#   FAILs) hammering a fast read get no 503;
# - 400 clients on a slow read overload it: some answers are 503 with
#   Retry-After, and the admitted ones stay fast.
# Time bounds are generous (ASan on a busy 2-core machine); the measured
# figures come from bench/http_limits.sh.
. "$(dirname "$0")/lib.sh"
. "$E2E_DIR/serve_lib.sh"

limits() { timeout -s KILL "$CLIENT_S" python3 "$E2E_DIR/http_limits.py" "$@"; }

# helper NAME ARGS...: runs an http_limits.py subcommand, shows its lines;
# FAIL NAME when it failed without saying so.
helper() {
    local name="$1"
    shift
    checked "$name" limits "$@"
}

port_of() { echo "${SRV_URL##*:}"; }

limits queries "$TMP/queries.ndjson"
if start_server limits_log "$TMP/data" --access-log; then
    port=$(port_of)
    helper limits_post post "$port" "$TMP/queries.ndjson"
    helper limits_peer peer-limit "$port" 127.0.1.1 1030 1024
    check limits_peer_logged grep -q \
        "^ts=[0-9T:.-]*Z peer=127.0.1.1 event=refused reason=peer_limit limit=1024 status=503 bytes=20$" \
        "$TMP/limits_log.log"
    helper limits_flood idle-flood "$port" 5000 3 "/v1/ads/8/terms?limit=20"
    check limits_evicted_logged grep -q \
        "^ts=[0-9T:.-]*Z peer=127\.0\.0\.[0-9]* event=evicted reason=connection_limit idle_ms=[0-9]* requests=0$" \
        "$TMP/limits_log.log"
    stop_server limits_log_sigterm_exit0
fi

if start_server limits_load "$TMP/data"; then
    port=$(port_of)
    if command -v wrk >/dev/null; then
        out=$(wrk -t1 -c16 -d3s "$SRV_URL/v1/ads/8/terms?limit=20" 2>&1)
        printf 'light: %s\n' "$(grep -E 'requests in|Non-2xx|Socket errors' <<<"$out" | tr -s ' ' | tr '\n' ';')"
        n=$(awk '/requests in/ {print $1}' <<<"$out")
        if [ "${n:-0}" -ge 100 ] && ! grep -qE 'Non-2xx|Socket errors' <<<"$out"; then
            pass limits_light_no_503
        else
            fail limits_light_no_503 "$(tr '\n' ' ' <<<"$out" | head -c 400)"
        fi
    else
        fail limits_light_no_503 "wrk is missing (scripts/install-deps)"
    fi
    helper limits_heavy load limits_heavy "$port" "/v1/ads/7/terms?limit=20" \
        400 4 --expect-shed 1000
    stop_server limits_load_sigterm_exit0
fi
logs_clean limits_logs_clean
finish
