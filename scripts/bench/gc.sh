#!/usr/bin/env bash
# gc.sh: what garbage-collecting N dead children costs, and whether dispatches wait on it.
#   cargo build --release --bins && scripts/bench/gc.sh [N=200000]
# Starts a release server with no capacity (-local-cpus 0) and no timed GC, loads N
# dispatches with dispatch-bench, stops their parent (all N are now dead), then forces a
# collection with PUT /v1/system/gc while timing single dispatches of another job.
set -euo pipefail
cd "$(dirname "$0")/../.."
N="${1:-200000}"
BIN="${CARGO_TARGET_DIR:-target}/release"
DIR="$(mktemp -d)"
PORT="${PORT:-4798}"
"$BIN/dispatch" server -data-dir "$DIR/data" -bind "127.0.0.1:$PORT" -local-cpus 0 \
    -gc-threshold off -log-level warn 2>"$DIR/server.log" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$DIR"' EXIT
for _ in $(seq 100); do curl -sf "127.0.0.1:$PORT/v1/status/leader" >/dev/null && break; sleep 0.1; done
"$BIN/dispatch-bench" --addr "127.0.0.1:$PORT" --requests "$N" --concurrency 64 | grep -E "dispatches_per_s|latency_p50"
"$BIN/dispatch-bench" --addr "127.0.0.1:$PORT" --requests 1 --concurrency 1 --job other >/dev/null
curl -sf -X DELETE "127.0.0.1:$PORT/v1/job/bench" >/dev/null
echo "rss_kb_before: $(awk '/VmRSS/ {print $2}' /proc/$SERVER/status)"
echo "store_bytes_before: $(du -sb "$DIR/data" | cut -f1)"
# Dispatches of another job while the collection runs: their latency shows writer stalls.
( for _ in $(seq 400); do
    curl -s -o /dev/null -w '%{time_total}\n' -X PUT -d '{"Meta": {"input": "x"}}' "127.0.0.1:$PORT/v1/job/other/dispatch"
  done ) >"$DIR/lat" &
PROBE=$!
sleep 0.2
curl -s -o /dev/null -w 'gc_seconds: %{time_total}\n' -X PUT "127.0.0.1:$PORT/v1/system/gc"
wait $PROBE
sort -n "$DIR/lat" | awk '{a[NR]=$1} END {printf "dispatch_during_gc_seconds: median %s p99 %s max %s (n=%d)\n", a[int((NR+1)/2)], a[int(NR*0.99)], a[NR], NR}'
echo "dead_children: $(curl -s "127.0.0.1:$PORT/v1/job/bench/summary" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Children"]["Dead"])')"
echo "children_left: $(curl -s "127.0.0.1:$PORT/v1/jobs?prefix=bench/" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"
echo "rss_kb_after: $(awk '/VmRSS/ {print $2}' /proc/$SERVER/status)"
