#!/usr/bin/env bash
# tests/run.sh's own test: a tier of stand-in tests -- one that passes, one
# that skips, one that prints a FAIL line, one that exits 3 without one,
# one that hangs (and leaves a child hanging too) -- run two at a time
# with a 2 s limit: every failure is a FAIL line naming its test (the hung
# one "timed out after 2 s"), the counts add up, the exit status is 1, and
# nothing of the hung test is left running.
. "$(dirname "$0")/e2e/lib.sh"
. "$E2E_DIR/serve_lib.sh" # exited

T="$TMP/tests"
mkdir "$T"
stand_in() {
    printf '#!/usr/bin/env bash\n%s\n' "$2" >"$T/$1"
    chmod +x "$T/$1"
}
stand_in test_ok 'echo "PASS ok_a"; echo "PASS ok_b"'
stand_in test_skip 'echo "SKIP skip: not here"'
stand_in test_fails 'echo "PASS fails_a"; echo "FAIL fails_b"; exit 1'
stand_in test_crashes 'echo "PASS crashes_a"; exit 3'
stand_in test_hangs "echo \"PASS hangs_a\"; sleep 1000 & echo \$! >$TMP/child; sleep 1001"

start=$(now_ms)
TEST_JOBS=2 TEST_UNIT_TIMEOUT=2 TEST_TIMES="$TMP/times" UNIT_DIR="$T" \
    "$E2E_DIR/../run.sh" "$T"/test_* >"$TMP/out" 2>&1
rc=$?
took=$(($(now_ms) - start))
sed 's/^/    | /' "$TMP/out"
check runner_exit_status_1 [ "$rc" = 1 ]
check runner_fail_line grep -qx "FAIL fails_b" "$TMP/out"
check runner_exit_without_fail_line grep -qx "FAIL test_crashes (exit 3)" "$TMP/out"
check runner_timed_out grep -qx "FAIL test_hangs (timed out after 2 s)" "$TMP/out"
check runner_skip grep -qx "1 skipped (the SKIP lines above say why)" "$TMP/out"
check runner_counts [ "$(tail -1 "$TMP/out")" = "5 passed, 3 failed" ]
check runner_times_each grep -qE "^== test_hangs: [0-9.]+ s \(CPU [0-9.]+ s\)$" "$TMP/out"
check runner_kept_times grep -q "^test_ok " "$TMP/times"
check runner_bounded [ "$took" -lt 15000 ]
# gone PID: PID was given and has exited (it may be a zombie a moment).
gone() { [ -n "$1" ] && exited "$1"; }
check runner_killed_the_hung_tests_child gone "$(cat "$TMP/child" 2>/dev/null)"
finish
