#!/usr/bin/env bash
# A test tier: every unit-test binary, every end-to-end script and this
# runner's self-test (the fast tier), or the tests given as arguments (e.g.
# the soak tier). Each test prints "PASS name" / "FAIL name" lines; this
# adds them up and closes with the line "N passed, N failed". A test that
# exits non-zero without a FAIL line counts as one failure. A test that
# cannot run here (it needs root, say) prints "SKIP name: why" and exits 0:
# shown, counted apart, neither passed nor failed. Exit status 0 only when
# nothing failed.
#
# The tests run TEST_JOBS at a time (default: one per CPU), each in its
# own process group under `timeout`: TEST_UNIT_TIMEOUT seconds for a unit
# binary (default 120), TEST_E2E_TIMEOUT for a script (*.sh, default 600).
# A test that overruns is killed with everything it started and counts as
# "FAIL name (timed out after N s)". Each test's lines are printed when it
# ends, headed by its wall and CPU time; the longest tests start first,
# by the times of the last run kept in TEST_TIMES (default
# $UNIT_DIR/../test-times; a test never timed counts as long when it is a
# script, short when it is a binary).
set -u
: "${CTRD:?CTRD must name the ctrd binary}" "${UNIT_DIR:?UNIT_DIR must name the unit-test binaries}"
CTRD="$(cd "$(dirname "$CTRD")" && pwd)/$(basename "$CTRD")"
export CTRD
here="$(cd "$(dirname "$0")" && pwd)"
jobs="${TEST_JOBS:-$(nproc)}"
unit_timeout="${TEST_UNIT_TIMEOUT:-120}"
e2e_timeout="${TEST_E2E_TIMEOUT:-600}"
times_file="${TEST_TIMES:-$UNIT_DIR/../test-times}"
work="$(mktemp -d "${TMPDIR:-/tmp}/ctrd-run.XXXXXX")"
declare -A job_test=() # running job's pid -> its test's path

# On exit (Ctrl-C too): every running test's timeout passes SIGTERM on to
# the test's process group.
cleanup() {
    local pid
    for pid in "${!job_test[@]}"; do
        pkill -TERM -P "$pid" 2>/dev/null
    done
    wait
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The tests to run: the arguments, else the fast tier.
[ "$#" -gt 0 ] || set -- "$UNIT_DIR"/test_* "$here"/e2e/test_*.sh "$here"/run_selftest.sh

# Longest first: "seconds path" for each test, sorted.
for t in "$@"; do
    [ -x "$t" ] || continue
    s=$(awk -v n="$(basename "$t")" '$1 == n { print $2 }' "$times_file" 2>/dev/null)
    case "$t" in *.sh) : "${s:=600}" ;; *) : "${s:=1}" ;; esac
    echo "$s $t"
done | sort -k1,1 -g -r | cut -d' ' -f2- >"$work/order"

# run_one TEST DIR: the test under timeout; its output in DIR/out, its exit
# status in DIR/rc, "wall user system" seconds in DIR/time.
run_one() {
    local t="$1" d="$2" limit="$unit_timeout" TIMEFORMAT='%R %U %S'
    case "$t" in *.sh) limit="$e2e_timeout" ;; esac
    echo "$limit" >"$d/limit"
    { time timeout -k 10 "$limit" "$t" >"$d/out" 2>&1 </dev/null; } 2>"$d/time"
    echo "$?" >"$d/rc"
}

passed=0 failed=0 skipped=0 wall_sum=0 cpu_sum=0 started=$EPOCHREALTIME
# report PID: prints and counts the lines of the job PID that ended.
report() {
    local t="${job_test[$1]}" name d rc limit wall user sys p f s
    unset "job_test[$1]"
    name=$(basename "$t")
    d="$work/$name"
    rc=$(cat "$d/rc")
    read -r wall user sys <"$d/time"
    echo "== $name: $wall s (CPU $(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }') s)"
    echo "$name $wall" >>"$work/times"
    wall_sum=$(awk -v a="$wall_sum" -v b="$wall" 'BEGIN { print a + b }')
    cpu_sum=$(awk -v a="$cpu_sum" -v u="$user" -v s="$sys" 'BEGIN { print a + u + s }')
    grep -E '^(PASS|FAIL|SKIP) ' "$d/out"
    p=$(grep -c '^PASS ' "$d/out")
    f=$(grep -c '^FAIL ' "$d/out")
    s=$(grep -c '^SKIP ' "$d/out")
    limit=$(cat "$d/limit")
    # 124: timeout's TERM ended it; 137 at the limit: it needed the KILL
    if [ "$rc" = 124 ] || { [ "$rc" = 137 ] && awk -v w="$wall" -v l="$limit" 'BEGIN { exit !(w >= l) }'; }; then
        echo "FAIL $name (timed out after $limit s)"
        f=$((f + 1))
    elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "FAIL $name (exit $rc)"
        f=1
    fi
    if [ "$f" -ne 0 ]; then
        echo "--- output of $name:"
        tail -n 60 "$d/out"
    fi
    passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
}

while read -r t; do
    while [ "${#job_test[@]}" -ge "$jobs" ]; do
        wait -n -p done_pid
        report "$done_pid"
    done
    mkdir "$work/$(basename "$t")"
    run_one "$t" "$work/$(basename "$t")" &
    job_test[$!]="$t"
done <"$work/order"
while [ "${#job_test[@]}" -gt 0 ]; do
    wait -n -p done_pid
    report "$done_pid"
done

# Keep the times of this run, and those of the tests it did not run.
if [ -f "$work/times" ]; then
    { awk 'NR == FNR { ran[$1] = 1; next } !($1 in ran)' "$work/times" "$times_file" 2>/dev/null
      cat "$work/times"; } >"$work/times.new"
    mv "$work/times.new" "$times_file" 2>/dev/null
fi
echo "$(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s," \
    "$jobs at a time; the tests' wall times add up to $wall_sum s, their CPU times to $cpu_sum s"
[ "$skipped" -eq 0 ] || echo "$skipped skipped (the SKIP lines above say why)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
