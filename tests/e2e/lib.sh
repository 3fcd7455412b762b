# lib.sh: sourced by every tests/e2e/test_*.sh.
# Gives: $TMP (a fresh directory, removed on exit, with any background
# process the test registered with bg_track killed first), pass/fail/check
# that print "PASS name" / "FAIL name", ctrd (the binary under `timeout`),
# reference/compare (the Python helpers), and finish (exit status 1 if any
# check failed).
set -u
: "${CTRD:?CTRD must name the ctrd binary}"
E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# python3 found once: a version manager's shim (pyenv) costs ~0.1 s a call.
PATH="$(dirname "$(python3 -c 'import sys; print(sys.executable)')"):$PATH"
REFERENCE="$E2E_DIR/../reference.py"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/ctrd-e2e.XXXXXX")"
E2E_FAILED=0
E2E_BG_PIDS=()

e2e_cleanup() {
    local pid
    for pid in "${E2E_BG_PIDS[@]}"; do
        kill -9 "$pid" 2>/dev/null
    done
    wait 2>/dev/null
    rm -rf "$TMP"
}
trap e2e_cleanup EXIT

bg_track() { E2E_BG_PIDS+=("$1"); }

pass() { echo "PASS $1"; }
fail() {
    echo "FAIL $1${2:+: $2}"
    E2E_FAILED=1
}
# check NAME COMMAND...: PASS when the command succeeds.
check() {
    local name="$1"
    shift
    if "$@"; then pass "$name"; else fail "$name"; fi
}

# pycheck NAME PYTHON_CODE ARGS...: PASS when the Python snippet exits 0;
# else FAIL with the last line it printed (an assertion's message).
pycheck() {
    local name="$1" code="$2" msg
    shift 2
    if msg=$(python3 -c "$code" "$@" 2>&1); then pass "$name"; else
        fail "$name" "$(printf '%s\n' "$msg" | tail -1 | head -c 400)"; fi
}

# checked NAME COMMAND...: runs a command that prints its own PASS/FAIL
# lines (a Python or JS helper) and shows them; any FAIL line fails the
# test, and so does a non-zero exit without one (FAIL NAME, with the last
# line it printed).
checked() {
    local name="$1" out rc
    shift
    out=$("$@" 2>&1)
    rc=$?
    printf '%s\n' "$out"
    if grep -q '^FAIL ' <<<"$out"; then
        E2E_FAILED=1
    elif [ "$rc" != 0 ]; then
        fail "$name" "exit $rc: $(tail -1 <<<"$out")"
    fi
}

# ctrd ARGS...: the binary, killed after $CTRD_TIMEOUT seconds (default 300).
ctrd() { timeout -s KILL "${CTRD_TIMEOUT:-300}" "$CTRD" "$@"; }
reference() { python3 "$REFERENCE" "$@"; }
compare() { python3 "$E2E_DIR/compare.py" "$@"; }

# now_ms: wall clock in ms.
now_ms() { date +%s%3N; }

finish() { exit "$E2E_FAILED"; }
