# serve_lib.sh: sourced (after lib.sh) by the tests that run `ctrd serve`
# (test_serve.sh, test_follow.sh, test_sse.sh, test_promtool.sh): start a server on a free
# port of 127.0.0.1 and wait for GET /readyz, stop it, wait for an exit.
# Every wait is bounded.
READY_S=60   # bound of every wait for /readyz
EXIT_S=30    # bound of every wait for a server to exit
CLIENT_S=120 # bound of every serve_client.py run
client() { timeout -s KILL "$CLIENT_S" python3 "$E2E_DIR/serve_client.py" "$@"; }

# start_server NAME DIR ARGS...: `ctrd serve --data DIR ARGS` on a port the
# kernel picks (listening on $SRV_HOST, default 127.0.0.1: tests that run at
# the same time never collide), stderr appended to $TMP/NAME.log; waits for
# GET /readyz 200. Sets SRV_PID and SRV_URL. Returns 1 (after a FAIL line)
# when it never got ready.
start_server() {
    local name="$1" dir="$2" log="$TMP/$1.log" from port deadline
    shift 2
    from=$(($(stat -c %s "$log" 2>/dev/null || echo 0) + 1))
    "$CTRD" serve --data "$dir" --listen "${SRV_HOST:-127.0.0.1}:0" "$@" >>"$log" 2>&1 &
    SRV_PID=$!
    bg_track "$SRV_PID"
    deadline=$(($(date +%s) + READY_S))
    # its port: from the line "ctrd serve: listening on ADDRESS (port N), ..."
    until port=$(tail -c +"$from" "$log" | sed -n 's/^ctrd serve: listening on .* (port \([0-9]*\)).*/\1/p')
        [ -n "$port" ]; do
        if exited "$SRV_PID" || [ "$(date +%s)" -ge "$deadline" ]; then
            fail "${name}_start" "no port: $(tail -c +"$from" "$log" | tail -2)"
            return 1
        fi
        sleep 0.02
    done
    SRV_URL="http://127.0.0.1:$port"
    client wait-ready "$SRV_URL" "$READY_S" "$SRV_PID" >"$TMP/wait.out" 2>&1 && return 0
    fail "${name}_start" "$(cat "$TMP/wait.out") $(tail -c +"$from" "$log" | tail -2)"
    return 1
}

# exited PID: whether the child PID has exited (it may be a zombie).
exited() {
    [ ! -e "/proc/$1" ] || [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" = Z ]
}

# wait_exit PID: waits (at most EXIT_S) for the child PID to exit; its
# status in EXIT_RC (kill -9 and 124 after the bound).
wait_exit() {
    local pid="$1" deadline=$(($(date +%s) + EXIT_S))
    while ! exited "$pid"; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            kill -9 "$pid" 2>/dev/null
            wait "$pid" 2>/dev/null
            EXIT_RC=124
            return 1
        fi
        sleep 0.05
    done
    wait "$pid" 2>/dev/null
    EXIT_RC=$?
}

# expect_exit NAME STATUS: PASS NAME when the last wait_exit saw STATUS.
expect_exit() {
    if [ "$EXIT_RC" = "$2" ]; then pass "$1"; else
        fail "$1" "exit status $EXIT_RC, expected $2"; fi
}

# stop_server NAME: SIGTERM to the current server; PASS NAME when it exits 0.
stop_server() {
    kill -TERM "$SRV_PID" 2>/dev/null
    wait_exit "$SRV_PID"
    expect_exit "$1" 0
}

# logs_clean NAME: PASS when no server log of this test reports memory
# errors or undefined behaviour (sanitizer builds).
logs_clean() {
    local bad
    bad=$(grep -l -E "Sanitizer|runtime error:" "$TMP"/*.log 2>/dev/null | head -1)
    if [ -n "$bad" ]; then
        fail "$1" "$(basename "$bad"): $(grep -m1 -E "Sanitizer|runtime error:" "$bad")"
    else
        pass "$1"
    fi
}
