#!/usr/bin/env bash
# metrics_scrape.sh: what a /metrics scrape costs with N pending dispatches.
#   cargo build --release --bins && scripts/bench/metrics_scrape.sh [N=1000000]
# Starts a release server with no capacity (-local-cpus 0, so everything stays pending),
# loads N dispatches with dispatch-bench, then times 20 scrapes with curl.
set -euo pipefail
cd "$(dirname "$0")/../.."
N="${1:-1000000}"
BIN="${CARGO_TARGET_DIR:-target}/release"
DIR="$(mktemp -d)"
PORT="${PORT:-4799}"
"$BIN/dispatch" server -data-dir "$DIR/data" -bind "127.0.0.1:$PORT" -local-cpus 0 \
    -log-level warn 2>"$DIR/server.log" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$DIR"' EXIT
for _ in $(seq 100); do curl -sf "127.0.0.1:$PORT/v1/status/leader" >/dev/null && break; sleep 0.1; done
"$BIN/dispatch-bench" --addr "127.0.0.1:$PORT" --requests "$N" --concurrency 64 | grep -E "throughput|requests"
curl -s "127.0.0.1:$PORT/metrics" | grep 'dispatch_queue_depth{.*pending'
echo "rss_kb: $(awk '/VmRSS/ {print $2}' /proc/$SERVER/status)"
for _ in $(seq 20); do
    curl -s -o /dev/null -w '%{time_total}\n' "127.0.0.1:$PORT/metrics"
done | sort -n | awk '{a[NR]=$1} END {printf "scrape_seconds: min %s median %s max %s\n", a[1], a[int((NR+1)/2)], a[NR]}'
echo "scrape_bytes: $(curl -s "127.0.0.1:$PORT/metrics" | wc -c)"
