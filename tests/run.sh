#!/usr/bin/env bash
# A test tier: every unit-test binary, then every end-to-end script (the
# fast tier), or the scripts given as arguments (e.g. the soak tier).
# Each prints "PASS name" / "FAIL name" lines; this adds them up and closes
# with the line "N passed, N failed". A test that exits non-zero without a
# FAIL line counts as one failure. A test that cannot run here (it needs
# root, say) prints "SKIP name: why" and exits 0: shown, counted apart,
# neither passed nor failed. Exit status 0 only when nothing failed.
set -u
: "${CTRD:?CTRD must name the ctrd binary}" "${UNIT_DIR:?UNIT_DIR must name the unit-test binaries}"
CTRD="$(cd "$(dirname "$CTRD")" && pwd)/$(basename "$CTRD")"
export CTRD
here="$(cd "$(dirname "$0")" && pwd)"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
passed=0 failed=0 skipped=0
# The scripts to run: the arguments, else the fast tier.
[ "$#" -gt 0 ] || set -- "$UNIT_DIR"/test_* "$here"/e2e/test_*.sh
for t in "$@"; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    echo "== $name"
    "$t" >"$out" 2>&1
    rc=$?
    grep -E '^(PASS|FAIL|SKIP) ' "$out"
    p=$(grep -c '^PASS ' "$out")
    f=$(grep -c '^FAIL ' "$out")
    s=$(grep -c '^SKIP ' "$out")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "FAIL $name (exit $rc)"
        f=1
    fi
    if [ "$f" -ne 0 ]; then
        echo "--- output of $name:"
        tail -n 60 "$out"
    fi
    passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
done
[ "$skipped" -eq 0 ] || echo "$skipped skipped (the SKIP lines above say why)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
