#!/usr/bin/env bash
# takeover.sh: how long a standby takes to lead after the leader is killed (kill -9) with
# PENDING dispatches pending, on the PostgreSQL store. Starts a throwaway PostgreSQL cluster
# in a temp dir (as `nobody` when run as root: PostgreSQL refuses root), a leader and a
# standby (`-local-cpus 0`: everything stays pending), fills the leader with dispatch-bench,
# waits until the standby's copy has caught up, kills the leader and prints how long until
# the standby says it leads and until it acknowledges a new dispatch. Everything is removed
# at the end.
#
#   scripts/bench/takeover.sh [BIN_DIR] [PENDING] [LEASE]   # target/release, 1000000, 10s
set -euo pipefail
cd "$(dirname "$0")/../.."

B=${1:-target/release}
N=${2:-1000000}
LEASE=${3:-10s}
PGBIN=$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d | sort -V | tail -1)
[ -x "$PGBIN/initdb" ] || { echo "postgresql is missing (scripts/test-deps.sh)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/dispatch-takeover.XXXXXX)
AS=()
if [ "$(id -u)" -eq 0 ]; then
    chown nobody "$WORK"
    AS=(runuser -u nobody --)
fi
PORT=$((20000 + RANDOM % 20000))
PIDS=()
PG_PID=""
cleanup() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    if [ -n "$PG_PID" ]; then
        kill -INT "$PG_PID" 2>/dev/null || true
        wait "$PG_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

"${AS[@]}" "$PGBIN/initdb" -A trust -U dispatch -D "$WORK/data" --no-instructions >/dev/null
"${AS[@]}" "$PGBIN/postgres" -D "$WORK/data" -p "$PORT" -k "$WORK" \
    -c listen_addresses=127.0.0.1 -c max_connections=100 >"$WORK/pg.log" 2>&1 &
PG_PID=$!
for _ in $(seq 100); do
    "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" && break
    sleep 0.1
done
"$PGBIN/psql" -q -h 127.0.0.1 -p "$PORT" -U dispatch -d postgres -c 'CREATE DATABASE bench'
STORE="postgres://dispatch@127.0.0.1:$PORT/bench"

role() { curl -fsS "http://$1/v1/agent/self" 2>/dev/null | jq -r .Role 2>/dev/null || true; }
index() { curl -fsS "http://$1/v1/agent/self" 2>/dev/null | jq -r .stats.dispatch.index 2>/dev/null || true; }
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }

LEADER=127.0.0.1:$((PORT + 1))
STANDBY=127.0.0.1:$((PORT + 2))
"$B/dispatch" server -bind "$LEADER" -data-dir "$WORK/a" -local-cpus 0 -log-level warn \
    -store "$STORE" -store-lease "$LEASE" >"$WORK/leader.log" 2>&1 &
PIDS+=($!)
LEADER_PID=$!
for _ in $(seq 300); do [ "$(role "$LEADER")" = leader ] && break; sleep 0.1; done
"$B/dispatch" server -bind "$STANDBY" -data-dir "$WORK/b" -local-cpus 0 -log-level warn \
    -store "$STORE" -store-lease "$LEASE" >"$WORK/standby.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 300); do [ "$(role "$STANDBY")" = standby ] && break; sleep 0.1; done

echo "== filling: $N dispatches through the leader"
"$B/dispatch-bench" --addr "$LEADER" --requests "$N" --concurrency 64 --job takeover |
    grep -E '^(ok|errors|dispatches_per_s):'
WANT=$(index "$LEADER")
for _ in $(seq 600); do [ "$(index "$STANDBY")" = "$WANT" ] && break; sleep 0.1; done
echo "standby caught up at index $(index "$STANDBY") (leader: $WANT)"

kill -9 "$LEADER_PID"
T0=$(now)
until [ "$(role "$STANDBY")" = leader ]; do sleep 0.02; done
echo "takeover_to_leader_s: $(since "$T0")"
until [ "$(curl -s -o /dev/null -w '%{http_code}' -X PUT -d '{}' \
    "http://$STANDBY/v1/job/takeover/dispatch")" = 200 ]; do sleep 0.02; done
echo "takeover_to_first_dispatch_s: $(since "$T0")"
echo "pending_on_new_leader: $(curl -fsS "http://$STANDBY/v1/job/takeover/summary" |
    jq -r '.Children.Pending')"
echo "lease: $LEASE (a dead leader's session ends at once; the lease bounds a paused one)"
