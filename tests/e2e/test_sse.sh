#!/usr/bin/env bash
# GET /v1/stream (SPEC §5 Server-Sent Events, §6 access control) through the
# real binary and real HTTP, on a server with --auth and --ads: a
# subscriber of one ad gets a `counts` event with the new impressions, then
# the new clicks, within 1 s of the ingest's 200 answer; a subscriber of an
# advertiser gets its ads' counts and no other's; refused subscriptions
# (another advertiser's ad or advertiser, an ad outside the catalog: 404 as
# /terms answers it; no token 401; ingest token 403; bad parameters 400)
# are answered at once without a stream; clients that go away (before the
# answer, with FIN, with RST, mid-request) disturb nothing: the server
# still answers, counts, streams, and exits 0 on SIGTERM.
. "$(dirname "$0")/lib.sh"
. "$E2E_DIR/serve_lib.sh"

helper() { timeout -s KILL "$CLIENT_S" python3 "$E2E_DIR/follow_sse.py" "$@"; }

printf '%s\n' "admintok,admin" "ingesttok,ingest" "adv1tok,advertiser,1" \
    "adv2tok,advertiser,2" >"$TMP/tokens"
helper sse-catalog "$TMP/ads.csv"
if start_server sse "$TMP/data" --auth "$TMP/tokens" --ads "$TMP/ads.csv"; then
    checked sse_client helper sse "$SRV_URL" admintok ingesttok adv1tok adv2tok
    stop_server sse_sigterm_exit0
fi
logs_clean sse_logs_clean
finish
