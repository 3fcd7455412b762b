# bench/lib.sh: sourced by the bench scripts that run `ctrd serve`.
# bench_dir NAME: $dir, a new directory, removed on exit with the server
# (if one was started) killed first. bench_serve: `ctrd serve --data
# $dir/data` on a free loopback port ($port; its pid in $server, its
# stderr in ${SERVE_LOG:-$dir/serve.log}), waited for until /readyz
# answers (10 s at most).
bench_dir() {
    dir=$(mktemp -d "/tmp/ctrd-bench-$1.XXXXXX")
    server=
    trap '[ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
}

bench_serve() {
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "$ctrd" serve --data "$dir/data" --listen "127.0.0.1:$port" 2>"${SERVE_LOG:-$dir/serve.log}" &
    server=$!
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && return 0
        sleep 0.1
    done
    echo "bench: ctrd serve not ready after 10 s: $(tail -2 "${SERVE_LOG:-$dir/serve.log}")" >&2
    return 1
}
