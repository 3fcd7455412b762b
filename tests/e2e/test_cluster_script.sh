#!/usr/bin/env bash
# scripts/cluster with its engines only (CLUSTER_ENGINES_ONLY=1: three NATS
# and three etcd nodes on 127.0.0.11-13), through the real script:
# - up prints one JSON line naming the six processes; status gives each its
#   host, role, live pid and state; each runs in its own session and listens
#   on its own host's address only; a second up refuses;
# - etcd-2 serves put/get; killed, it is dead and etcd-1 and etcd-3 still
#   serve (quorum); started again, it runs and is healthy;
# - nats-3 paused is "paused", resumed "running"; nats-1 killed and
#   started again knows the JetStream meta leader;
# - a joiner's partitions are the /ctrd/v1/own/j/<p> keys it owns, sorted
#   numerically; a process that exits at once makes start fail;
# - up refuses, starting nothing, when one of its ports is taken;
# - usage errors exit 2; down stops every pid, twice is fine, and status
#   then answers within 5 s with "etcd":"unreachable".
# Skips when 127.0.0.11:4222 is taken (another cluster runs on this box).
# shellcheck disable=SC2317 # helpers that run through check and until_ok
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

CLUSTER="$E2E_DIR/../../scripts/cluster"
export CLUSTER_ENGINES_ONLY=1
D="$TMP/cluster"
ETCD_ALL=http://127.0.0.11:2379,http://127.0.0.12:2379,http://127.0.0.13:2379

if (: <>/dev/tcp/127.0.0.11/4222) 2>/dev/null; then
    echo "SKIP cluster_script: 127.0.0.11:4222 is in use (another cluster runs)"
    exit 0
fi
cluster() { timeout -s KILL 90 "$CLUSTER" "$@"; }
# The processes outlive this script's process group: stop them on any exit.
trap 'cluster down "$D" >/dev/null 2>&1; e2e_cleanup' EXIT
trap 'exit 143' TERM INT

etcd_at() { etcdctl --endpoints="$1" --dial-timeout=2s --command-timeout=5s "${@:2}"; }
# field NAME KEY: KEY of process NAME in a fresh status.
field() {
    cluster status "$D" | python3 -c 'import json, sys
p = {q["name"]: q for q in json.load(sys.stdin)["processes"]}[sys.argv[1]]
print(json.dumps(p.get(sys.argv[2])))' "$1" "$2"
}
# until_ok SECONDS COMMAND...: the command succeeds within SECONDS.
until_ok() {
    local end=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$end" ] || return 1
        sleep 0.2
    done
}
# said RC TEXT: the last cluster command, whose exit status is in $rc,
# exited RC with TEXT on its stderr ($TMP/err).
said() { [ "$rc" = "$1" ] && grep -q "$2" "$TMP/err"; }
# gone PID: no such process, or a zombie (its reaper is not ours).
gone() { [ ! -e "/proc/$1" ] || grep -q '^[^)]*) Z' "/proc/$1/stat"; }
meta_leader() { # the JetStream meta leader nats-1 knows
    curl -sf -m 2 http://127.0.0.11:8222/jsz | python3 -c 'import json, sys
assert json.load(sys.stdin)["meta_cluster"].get("leader")'
}

# A port of etcd-3 taken: up names it and starts nothing.
python3 -c 'import socket, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAITs
s.bind(("127.0.0.13", 2380))
s.listen()
print("ok", flush=True)
time.sleep(60)' >"$TMP/listener" &
listener=$!
bg_track $listener
until_ok 10 grep -q ok "$TMP/listener"
cluster up "$D" >/dev/null 2>"$TMP/err"
rc=$?
check cluster_up_port_taken said 1 "127.0.0.13:2380 is in use"
check cluster_up_port_taken_nothing_started [ ! -e "$D/nats-1/pid" ]
kill -9 $listener
wait $listener 2>/dev/null

start=$SECONDS
if ! cluster up "$D" >"$TMP/up.json" 2>"$TMP/up.err"; then
    fail cluster_up "$(tail -5 "$TMP/up.err")"
    finish
fi
echo "up in $((SECONDS - start)) s"
pycheck cluster_up_json '
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 1, "%d lines: %r" % (len(lines), lines)
j = json.loads(lines[0])
want = ["nats-%d" % n for n in (1, 2, 3)] + ["etcd-%d" % n for n in (1, 2, 3)]
assert j["processes"] == want, j["processes"]
assert j["ingest"] == [] and j["api"] == [], j' "$TMP/up.json"
pycheck cluster_json '
import json, sys
j = json.load(open(sys.argv[1]))
assert j == {"partitions": 64, "replicas": 3, "lease_ttl_ms": 5000,
             "nats": ["nats://127.0.0.1%d:4222" % n for n in (1, 2, 3)],
             "etcd": ["http://127.0.0.1%d:2379" % n for n in (1, 2, 3)]}, j' "$D/cluster.json"

# Each status entry: the right host and role, a live pid of that very
# process in a session of its own, listening on its host only.
cluster status "$D" >"$TMP/status.json"
pycheck cluster_status '
import json, os, subprocess, sys
procs = json.load(open(sys.argv[1]))["processes"]
assert [p["name"] for p in procs] == ["nats-1", "nats-2", "nats-3", "etcd-1", "etcd-2", "etcd-3"], procs
listen = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=True).stdout
for p in procs:
    name, pid = p["name"], p["pid"]
    role, n = name.split("-")
    host = "127.0.0.1" + n
    assert (p["host"], p["role"], p["state"]) == (host, role, "running"), p
    assert "partitions" not in p, p
    argv = open("/proc/%d/cmdline" % pid).read().split("\0")
    assert ("--name" in argv and name in argv) or "%s/%s/nats.conf" % (sys.argv[2], name) in argv, (name, argv)
    assert os.getsid(pid) == pid, "%s: not a session leader" % name
    mine = [l.split()[3] for l in listen.splitlines() if "pid=%d," % pid in l]
    assert mine and all(a.startswith(host + ":") for a in mine), (name, mine)
' "$TMP/status.json" "$D"
cluster up "$D" >/dev/null 2>"$TMP/err"
rc=$?
check cluster_up_twice_refused said 1 "already up"

# etcd: quorum through the loss of one node (a put may time out while the
# other two elect a leader: a client retries).
check cluster_etcd_put_get until_ok 10 etcd_at http://127.0.0.12:2379 put /t/a 1
check cluster_etcd_get [ "$(etcd_at http://127.0.0.12:2379 get --print-value-only /t/a)" = 1 ]
etcd2_pid=$(field etcd-2 pid)
cluster kill "$D" etcd-2
check cluster_kill_gone gone "$etcd2_pid"
check cluster_kill_dead [ "$(field etcd-2 state)" = '"dead"' ]
check cluster_quorum_put until_ok 10 etcd_at http://127.0.0.11:2379,http://127.0.0.13:2379 put /t/b 2
check cluster_quorum_get [ "$(etcd_at http://127.0.0.13:2379 get --print-value-only /t/a)" = 1 ]
cluster start "$D" etcd-2
check cluster_start_running [ "$(field etcd-2 state)" = '"running"' ]
check cluster_start_same_cmd [ "$(tr '\0' ' ' <"/proc/$(field etcd-2 pid)/cmdline")" = "$(tr '\0' ' ' <"$D/etcd-2/cmd")" ]
check cluster_start_healthy until_ok 20 etcd_at http://127.0.0.12:2379 endpoint health
check cluster_start_caught_up [ "$(etcd_at http://127.0.0.12:2379 get --print-value-only /t/b)" = 2 ]
cluster start "$D" etcd-2 2>/dev/null
check cluster_start_running_refused [ $? = 1 ]

# NATS: pause and resume; a killed node back in the JetStream cluster.
cluster pause "$D" nats-3
check cluster_paused [ "$(field nats-3 state)" = '"paused"' ]
cluster resume "$D" nats-3
check cluster_resumed [ "$(field nats-3 state)" = '"running"' ]
cluster kill "$D" nats-1
check cluster_nats_killed [ "$(field nats-1 state)" = '"dead"' ]
cluster start "$D" nats-1
check cluster_nats_meta_leader until_ok 20 meta_leader

# A joiner's partitions come from etcd (p sorted as numbers); one whose
# binary exits at once makes start fail and shows as dead.
for kv in 10:joiner-2 2:joiner-2 7:joiner-1 33:joiner-2; do
    etcd_at "$ETCD_ALL" put "/ctrd/v1/own/j/${kv%%:*}" "${kv#*:}" >/dev/null
done
CTRD=/bin/false cluster start "$D" joiner-2 2>"$TMP/err"
rc=$?
check cluster_start_exits said 1 "joiner-2 exited"
check cluster_joiner_partitions [ "$(field joiner-2 partitions)" = "[2, 10, 33]" ]
check cluster_joiner_dead [ "$(field joiner-2 state)" = '"dead"' ]

# Usage errors.
cluster bogus "$D" 2>/dev/null
check cluster_unknown_command [ $? = 2 ]
cluster kill "$D" nats-4 2>/dev/null
check cluster_unknown_name [ $? = 2 ]
cluster --help >/dev/null
check cluster_help [ $? = 0 ]

# down: every pid gone, twice is fine; status still answers.
pids=$(cluster status "$D" | python3 -c 'import json, sys
print(" ".join(str(p["pid"]) for p in json.load(sys.stdin)["processes"]))')
cluster down "$D" 2>/dev/null
check cluster_down [ $? = 0 ]
left=
for pid in $pids; do gone "$pid" || left="$left $pid"; done
check cluster_down_all_gone [ -z "$left" ]
cluster down "$D" 2>/dev/null
check cluster_down_twice [ $? = 0 ]
t0=$SECONDS
cluster status "$D" >"$TMP/status.json"
pycheck cluster_status_etcd_down '
import json, sys
j = json.load(open(sys.argv[1]))
assert j.get("etcd") == "unreachable", j
assert all(p["state"] == "dead" for p in j["processes"]), j
assert [p["partitions"] for p in j["processes"] if p["role"] == "joiner"] == [[]], j' "$TMP/status.json"
check cluster_status_fast [ $((SECONDS - t0)) -le 5 ]
echo "all in $((SECONDS - start)) s"
finish
