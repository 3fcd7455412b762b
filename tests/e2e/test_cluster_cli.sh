#!/usr/bin/env bash
# `ctrd serve`'s distributed-mode flags, refused before any connection (no
# NATS or etcd needed): --cluster without --role or --name, --role or
# --name without --cluster, an unknown role (the error lists front and
# joiner), followed files on a joiner → exit 2; a missing cluster file,
# and one whose partitions do not divide 256 (joiner and front) → exit 1.
# Each: one line "ctrd serve: ..." on stderr naming what is wrong, nothing
# on stdout. A command wrongly accepted would serve or wait for NATS: it is
# killed after CTRD_TIMEOUT seconds and fails here.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

export CTRD_TIMEOUT=5
D="$TMP/data"
F="$TMP/cluster.json"
# Nothing listens at these addresses: a role that got past its checks
# would retry them rather than reach someone else's cluster.
cat >"$F" <<'EOF'
{"partitions":64,"replicas":1,"lease_ttl_ms":5000,
"nats":["nats://127.0.0.1:9"],"etcd":["http://127.0.0.1:9"]}
EOF
sed 's/"partitions":64/"partitions":3/' "$F" >"$TMP/p3.json"

# expect_serve NAME WANT REGEX ARGS...: `ctrd serve ARGS` (on a port of its
# own, data in $D) exits WANT with one stderr line "ctrd serve: ..."
# matching the extended REGEX, and an empty stdout.
expect_serve() {
    local name="$1" want="$2" regex="$3" rc why=""
    shift 3
    ctrd serve --listen 127.0.0.1:0 --data "$D" "$@" \
        >"$TMP/out" 2>"$TMP/err" </dev/null
    rc=$?
    if [ "$rc" != "$want" ]; then
        why="exit $rc, expected $want"
    elif [ "$(wc -l <"$TMP/err")" != 1 ]; then
        why="stderr is not one line"
    elif ! grep -q '^ctrd serve: ' "$TMP/err"; then
        why="stderr does not start with 'ctrd serve: '"
    elif ! grep -Eq -- "$regex" "$TMP/err"; then
        why="stderr does not match '$regex'"
    elif [ -s "$TMP/out" ]; then
        why="stdout not empty"
    fi
    if [ -z "$why" ]; then pass "$name"; else
        fail "$name" "serve $* -> $why: $(head -c 300 "$TMP/err" | tr '\n' '|')"
    fi
}

expect_serve cluster_cli_no_role_no_name 2 '--name' --cluster "$F"
expect_serve cluster_cli_no_name 2 '--name' --cluster "$F" --role joiner
expect_serve cluster_cli_no_role 2 '--role' --cluster "$F" --name j
expect_serve cluster_cli_role_without_cluster 2 '--cluster' --role joiner
expect_serve cluster_cli_name_without_cluster 2 '--cluster' --name x
expect_serve cluster_cli_bad_role 2 "'bogus'.*front.*joiner" \
    --cluster "$F" --role bogus --name j
expect_serve cluster_cli_follow 2 'follow' \
    --cluster "$F" --role joiner --name j --follow-queries "$TMP/q.ndjson"

expect_serve cluster_cli_missing_file 1 "$TMP/missing.json" \
    --cluster "$TMP/missing.json" --role joiner --name j
expect_serve cluster_cli_partitions_joiner 1 'p3\.json.*partitions' \
    --cluster "$TMP/p3.json" --role joiner --name j
expect_serve cluster_cli_partitions_front 1 'p3\.json.*partitions' \
    --cluster "$TMP/p3.json" --role front --name f

finish
