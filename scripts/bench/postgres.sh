#!/usr/bin/env bash
# postgres.sh: durable dispatches/s on the PostgreSQL store beside the SQLite store, in one
# run on this machine. Starts a throwaway PostgreSQL cluster in a temp dir (as `nobody` when
# run as root: PostgreSQL refuses root), one `dispatch server -store postgres://...`, runs
# dispatch-bench against it at each concurrency, then dispatch-bench with its own SQLite
# server at the same loads. Everything is removed at the end.
#
#   scripts/bench/postgres.sh [BIN_DIR] [REQUESTS]     # BIN_DIR: target/release by default
set -euo pipefail
cd "$(dirname "$0")/../.."

B=${1:-target/release}
N=${2:-50000}
PGBIN=$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d | sort -V | tail -1)
[ -x "$PGBIN/initdb" ] || { echo "postgresql is missing (scripts/test-deps.sh)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/dispatch-pgbench.XXXXXX)
AS=()
if [ "$(id -u)" -eq 0 ]; then
    chown nobody "$WORK"
    AS=(runuser -u nobody --)
fi
PORT=$((20000 + RANDOM % 20000))
SERVER_PID=""
PG_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi
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
echo "postgres: $("$PGBIN/postgres" --version) (fsync on, synchronous_commit on)"

API=127.0.0.1:$((PORT + 1))
"$B/dispatch" server -bind "$API" -data-dir "$WORK/d" -local-cpus 0 \
    -max-conns-per-client 0 -store "postgres://dispatch@127.0.0.1:$PORT/bench" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 200); do
    [ "$(curl -fsS "http://$API/v1/agent/self" 2>/dev/null | jq -r .Role 2>/dev/null)" = leader ] && break
    sleep 0.1
done

for C in 64 256; do
    echo "== postgres, concurrency $C"
    "$B/dispatch-bench" --addr "$API" --requests "$N" --concurrency "$C" --job "pg$C" |
        grep -E '^(ok|errors|dispatches_per_s|latency_p50_ms|latency_p99_ms|latency_max_ms):'
done
for C in 64 256; do
    echo "== sqlite, concurrency $C"
    "$B/dispatch-bench" --requests "$N" --concurrency "$C" |
        grep -E '^(ok|errors|dispatches_per_s|latency_p50_ms|latency_p99_ms|latency_max_ms):'
done
