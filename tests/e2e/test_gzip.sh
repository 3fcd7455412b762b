#!/usr/bin/env bash
# gzip request bodies of `ctrd serve` (SPEC §5: "optionally gzip
# (Content-Encoding: gzip)"; 413 over the body limit), through the real
# binary and real HTTP:
# - every generated chunk POSTed as one body of four gzip members (RFC 1952
#   allows several; cut mid-line, one member with every optional header
#   field, one empty): 200, the answers' counters and /terms of every ad
#   equal the reference exactly;
# - not valid gzip (garbage or NUL padding after a member, a member cut in
#   its data, trailer or header, a good member then a cut one, wrong CRC-32
#   or length, an empty body): 400, nothing counted;
# - a bomb (at most 127 KiB of gzip inflating to ~130 MB, past --max-body,
#   here 16M: a bomb then costs the ingest thread far less than at the
#   default 64M): 413, nothing counted; then 3 rounds of 32 bombs at once
#   while /healthz is polled: all 413, every /healthz 200 and none slower
#   than 2 s (a bound for busy CI machines under sanitizers;
#   bench/gzip_bombs.sh measures the real figure, at the default
#   --max-body), nothing counted, and the next gzip body is counted.
# Every wait is bounded.
. "$(dirname "$0")/lib.sh"
. "$E2E_DIR/serve_lib.sh"
HEALTHZ_MAX_MS=2000
helper() { timeout -s KILL "$CLIENT_S" python3 "$E2E_DIR/gzip_client.py" "$@"; }
# checks NAME ARGS...: a helper command that prints its own PASS/FAIL lines.
checks() { checked "gzip_$1" helper "$@"; }

G="$TMP/gen"
if ! ctrd gen --out "$G" --queries-per-sec 20 --duration 4m --seed 51 --ads 150 --terms 300 \
    --tricky >"$TMP/gen.out" 2>&1; then
    fail gzip_gen "$(head -3 "$TMP/gen.out")"
    finish
fi
mkdir "$TMP/c"
split -n l/8 -d -a 1 --additional-suffix=.ndjson "$G/queries.ndjson" "$TMP/c/q"
split -n l/8 -d -a 1 --additional-suffix=.ndjson "$G/clicks.ndjson" "$TMP/c/c"
CHUNKS=()
for i in 0 1 2 3 4 5 6 7; do CHUNKS+=("queries:$TMP/c/q$i.ndjson" "clicks:$TMP/c/c$i.ndjson"); done
reference --queries "$TMP"/c/q*.ndjson --clicks "$TMP"/c/c*.ndjson --out-json "$TMP/ref.json"

start=$(now_ms)
if start_server gzip "$TMP/d" --max-body 16M; then
    checks members "$SRV_URL" "$TMP/members.json" "${CHUNKS[@]}"
    check gzip_members_answers client check-ingest "$TMP/ref.json" "$TMP/members.json"
    check gzip_members_counts timeout -s KILL "$CLIENT_S" python3 "$E2E_DIR/diskfull.py" \
        counts "$SRV_URL" "$TMP/ref.json" 0
    checks bad "$SRV_URL"
    checks bombs "$SRV_URL" 1 --name gzip_bomb
    checks bombs "$SRV_URL" 32 --rounds 3 --healthz-max-ms "$HEALTHZ_MAX_MS" --name gzip_32_bombs
    check gzip_counts_unchanged timeout -s KILL "$CLIENT_S" python3 "$E2E_DIR/diskfull.py" \
        counts "$SRV_URL" "$TMP/ref.json" 0
    stop_server gzip_exit0
fi
echo "gzip scenarios took $(($(now_ms) - start)) ms"
logs_clean gzip_logs_clean
finish
