#!/usr/bin/env bash
# `ctrd gen` through the real binary: --help names every flag of its getopt
# table (and of a fixed list, so a flag cannot vanish from both), --version,
# exit 2 with one line "ctrd gen: ..." on stderr for each kind of usage
# error (choices listed for a bad --format), nothing written on a usage
# error, and the exact bytes of one fixed invocation (a change of gen's
# output must be deliberate: update the sums below with the reason; last:
# advertisers' keyword sets, per-ad and per-term CTRs, ads.csv).
. "$(dirname "$0")/lib.sh"

GEN_C="$E2E_DIR/../../src/gen.c"
OUT="$TMP/gen"

# --help: exit 0, on stdout, every flag.
ctrd gen --help >"$TMP/help" 2>"$TMP/err"
rc=$?
[ "$rc" = 0 ] && [ -s "$TMP/help" ] && [ ! -s "$TMP/err" ] && pass gen_help ||
    fail gen_help "exit $rc, stdout $(wc -c <"$TMP/help") bytes, stderr $(head -c 200 "$TMP/err")"
ctrd gen -h | cmp -s - "$TMP/help" && pass gen_help_short || fail gen_help_short "-h differs from --help"

help_names() {
    local name="$1" missing=""
    shift
    for f in "$@"; do grep -q -- "$f\b" "$TMP/help" || missing="$missing $f"; done
    if [ -z "$missing" ]; then pass "$name"; else fail "$name" "--help lacks:$missing"; fi
}
help_names gen_help_fixed_list --out --queries-per-sec --duration --start --seed \
    --ads --terms --ctr --format --tricky -h --help --version
# Every long option of the getopt_long table in src/gen.c (CLI_COMMON_OPTIONS
# gives help and version, named in the fixed list above).
table=$(awk '/gen_options\[\] = \{/ {on = 1; next} on && /^};/ {exit}
             on {if (match($0, /\{"[a-z-]+"/)) print "--" substr($0, RSTART + 2, RLENGTH - 3)}' "$GEN_C")
if [ "$(echo "$table" | wc -w)" -ge 10 ]; then
    help_names gen_help_getopt_table $table
else
    fail gen_help_getopt_table "found only: $table (in $GEN_C)"
fi

# --version: "ctrd X.Y.Z" on stdout, exit 0.
v=$(ctrd gen --version 2>"$TMP/err")
rc=$?
[ "$rc" = 0 ] && echo "$v" | grep -Eqx 'ctrd [0-9]+\.[0-9]+\.[0-9]+' && [ ! -s "$TMP/err" ] &&
    pass gen_version || fail gen_version "exit $rc, '$v'"

# usage NAME PATTERN ARGS...: exit 2, nothing on stdout, exactly one line on
# stderr starting "ctrd gen: " and matching PATTERN, and no output directory.
usage() {
    local name="$1" pattern="$2" why=""
    shift 2
    rm -rf "$OUT"
    ctrd gen "$@" >"$TMP/out" 2>"$TMP/err" </dev/null
    local rc=$?
    if [ "$rc" != 2 ]; then
        why="exit $rc, expected 2"
    elif [ "$(wc -l <"$TMP/err")" != 1 ]; then
        why="stderr has $(wc -l <"$TMP/err") lines: $(head -c 300 "$TMP/err" | tr '\n' '|')"
    elif ! grep -q '^ctrd gen: ' "$TMP/err" || ! grep -Eq -- "$pattern" "$TMP/err"; then
        why="stderr '$(cat "$TMP/err")' does not match '$pattern'"
    elif [ -s "$TMP/out" ]; then
        why="stdout not empty"
    elif [ -e "$OUT" ]; then
        why="a usage error created $OUT"
    fi
    if [ -z "$why" ]; then pass "$name"; else fail "$name" "ctrd gen $* -> $why"; fi
}
usage gen_unknown_flag "unknown or incomplete option '--bogus'" --out "$OUT" --bogus 1
usage gen_unknown_short "unknown or incomplete option '-x'" --out "$OUT" -x
usage gen_unknown_in_cluster "unknown or incomplete option '-x'" --out "$OUT" -xh
usage gen_ambiguous_flag "unknown or incomplete option '--t'" --out "$OUT" --t 5
usage gen_missing_value "unknown or incomplete option '--seed'" --out "$OUT" --seed
usage gen_missing_out "--out DIR is required" --seed 3
usage gen_value_to_switch "unknown or incomplete option '--tricky=yes'" --out "$OUT" --tricky=yes
usage gen_unexpected_argument "unexpected argument 'extra'" --out "$OUT" extra
usage gen_bad_number "--queries-per-sec 'abc'" --out "$OUT" --queries-per-sec abc
usage gen_bad_zero_rate "--queries-per-sec '0'" --out "$OUT" --queries-per-sec 0
usage gen_bad_seed "--seed '-1'" --out "$OUT" --seed -1
usage gen_bad_ads_range "--ads '0' \(1\.\.1000000\)" --out "$OUT" --ads 0
usage gen_bad_terms_range "--terms '1000001'" --out "$OUT" --terms 1000001
usage gen_bad_ctr "--ctr '1\.5' \(0\.\.1\)" --out "$OUT" --ctr 1.5
usage gen_bad_duration "--duration 'forever'" --out "$OUT" --duration forever
usage gen_bad_start "--start 'yesterday'" --out "$OUT" --start yesterday
usage gen_bad_choice "--format: 'xml' is not one of: ndjson, tsv, both" --out "$OUT" --format xml

# The bytes of one fixed run: every file of both formats with --tricky
# (every case runs at least three times), and the = form of options.
ctrd gen --out "$OUT" --queries-per-sec=50 --duration 20s --seed 3 --format both \
    --tricky 2>"$TMP/err"
rc=$?
cat >"$TMP/want" <<'EOF'
6ac950fcea941dff0b806cd3ec771b904864ccf87af45fe2ed799e5e71bf73cf  ads.csv
bd89148007372157f3e7bbae089b8058a96c5c27618a00df5b66eebf59e9707e  clicks.ndjson
6a548ffee4a71f92c20a2414e7e7ef7ee167958c5cc295ca005d5b5484de52c8  clicks.tsv
0b04d3b264a0f123a9bb936434e82dea6ad2973235fd7b2a723327d2f9ff585a  manifest.json
243201511a41e8e3ca8331b785825f47a254b89c80aafecdde5080ade064e992  queries.ndjson
850bc04b5dccf5aaf600a996906c09be6a3b7d4d90ae4d6754f3fd85dec1c193  queries.tsv
EOF
(cd "$OUT" 2>/dev/null && sha256sum -- *) >"$TMP/got"
if [ "$rc" = 0 ] && cmp -s "$TMP/want" "$TMP/got"; then
    pass gen_fixed_output
else
    fail gen_fixed_output "exit $rc; sha256 differs: $(diff "$TMP/want" "$TMP/got" | grep '^>' | tr '\n' '|')"
fi
grep -q "^ctrd gen: wrote 1410 query and 329 click lines per format, 2447227 bytes, to $OUT\$" \
    "$TMP/err" && pass gen_summary_line || fail gen_summary_line "$(head -c 300 "$TMP/err")"

finish
