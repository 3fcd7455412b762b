# shellcheck shell=bash
# bench/peers/pg.sh: sourced by bench/compare.sh. pg_start DIR: a
# PostgreSQL 15 server of its own (Debian's postgresql-15, run as the
# `postgres` user it creates, as the server refuses root) with its data,
# log and unix socket in DIR (created; made the postgres user's), on a
# free port ($pg_port), trust authentication on the socket only, C
# collation (terms sort by bytes, as ctrd sorts them); fsync and
# synchronous_commit stay on (durable, like ctrd). pg_stop stops it.
pg_bin=/usr/lib/postgresql/15/bin

pg_start() {
    pg_dir=$1
    mkdir -p "$pg_dir"
    chown postgres: "$pg_dir"
    pg_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    runuser -u postgres -- "$pg_bin/initdb" -D "$pg_dir/data" --auth=trust --locale=C -E UTF8 \
        -U postgres >"$pg_dir/initdb.log" 2>&1 || { cat "$pg_dir/initdb.log" >&2; return 1; }
    runuser -u postgres -- "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w \
        -o "-p $pg_port -k $pg_dir -c listen_addresses='' -c shared_buffers=512MB -c work_mem=256MB -c maintenance_work_mem=256MB -c max_wal_size=8GB" \
        start >/dev/null || { tail -5 "$pg_dir/server.log" >&2; return 1; }
}

pg_stop() {
    [ -n "${pg_dir:-}" ] && [ -f "$pg_dir/data/postmaster.pid" ] &&
        runuser -u postgres -- "$pg_bin/pg_ctl" -D "$pg_dir/data" -m fast -w stop >/dev/null
    return 0
}
