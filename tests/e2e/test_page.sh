#!/usr/bin/env bash
# The dashboard (GET /, SPEC §5; issue 9) in a real browser: headless Debian
# chromium driven by playwright-core (tests/browser/test_page.js) against
# `ctrd serve --auth --ads` on a generated dataset (two hours up to now,
# ingested before the start). It checks, against the API's own answers:
# the login form on 401, totals and rows on first render, every sort order,
# paging, the filter, the CSV download, a range preset and the back button,
# the chart's series, a query and a click POSTed now showing within 2 s
# without a reload, compare to previous period (both ranges' totals, an
# empty previous period), one term's chart (chosen by keyboard, "Whole ad",
# the back button), the advertiser's ads, another advertiser's ad and an
# unknown ad not found, a 503 (made up by the browser test) with its Retry
# button and its retry after Retry-After, / by token (GET /v1/whoami: an
# advertiser lands on its own view, an ingest token gets a note), the
# admin's list of advertisers (each the sum of its ads; refused to an
# advertiser token) with links that keep the range, a 390 px viewport, no
# console errors and no request leaving loopback. The
# screenshots and the first-render time land in $TMP; UPDATE_SCREENSHOTS=1
# copies the screenshots into docs/. Without chromium or node_modules it FAILs: run
# scripts/install-deps.
. "$(dirname "$0")/lib.sh"
. "$E2E_DIR/serve_lib.sh"
BROWSER_DIR="$(cd "$E2E_DIR/../browser" && pwd)"

if [ ! -x /usr/bin/chromium ] || ! command -v node >/dev/null ||
    [ ! -d "$BROWSER_DIR/node_modules/playwright-core" ]; then
    fail page_deps "needs /usr/bin/chromium, node and tests/browser/node_modules: run scripts/install-deps"
    finish
fi

# Ads 1000-1009 are advertiser 1's, 1010-1019 advertiser 2's.
ctrd gen --out "$TMP/gen" --start $(($(now_ms) - 7200000)) --duration 2h \
    --queries-per-sec 10 --ads 20 --terms 500 --ctr 0.05 >/dev/null 2>&1
{
    echo "ad_id,advertiser_id,name"
    for i in $(seq 0 19); do echo "$((1000 + i)),$((1 + i / 10)),Ad number $i"; done
} >"$TMP/ads.csv"
printf '%s\n' "admintok,admin" "ingesttok,ingest" "adv1tok,advertiser,1" \
    "adv2tok,advertiser,2" >"$TMP/tokens"
check page_ingest ctrd ingest --data "$TMP/data" --queries "$TMP/gen/queries.ndjson" \
    --clicks "$TMP/gen/clicks.ndjson" --quiet
if start_server page "$TMP/data" --auth "$TMP/tokens" --ads "$TMP/ads.csv"; then
    checked page_browser env -C "$BROWSER_DIR" timeout -s KILL 120 node test_page.js \
        "$SRV_URL" adv1tok ingesttok 1000 1010 1 "$TMP" admintok
    if [ "${UPDATE_SCREENSHOTS:-0}" = 1 ]; then
        cp "$TMP"/dashboard-*.png "$E2E_DIR/../../docs/"
    fi
    stop_server page_sigterm_exit0
fi
logs_clean page_logs_clean
finish
