#!/usr/bin/env bash
# ui.sh: render times of the web UI's pages with N queued children of one job.
#   cargo build --release --bins && scripts/bench/ui.sh [N=1000000]
#   PROFILE=debug scripts/bench/ui.sh 1000000     # a debug build (cargo build --bins)
# Starts a server with no capacity (-local-cpus 0, so every child stays pending), loads N
# dispatches of the job `bench` with dispatch-bench (the fastest way the benches fill the
# store), then times each page 5 times with curl: the jobs page, the job page (newest page
# of children, a deep page in the middle, the oldest page), its children filtered by status,
# and a child's page. Prints min / median / max seconds per page.
set -euo pipefail
cd "$(dirname "$0")/../.."
N="${1:-1000000}"
BIN="${CARGO_TARGET_DIR:-target}/${PROFILE:-release}"
DIR="$(mktemp -d)"
PORT="${PORT:-4798}"
U="127.0.0.1:$PORT"
"$BIN/dispatch" server -data-dir "$DIR/data" -bind "$U" -local-cpus 0 \
    -log-level warn 2>"$DIR/server.log" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$DIR"' EXIT
for _ in $(seq 100); do curl -sf "$U/v1/status/leader" >/dev/null && break; sleep 0.1; done
"$BIN/dispatch-bench" --addr "$U" --requests "$N" --concurrency 64 | grep -E "throughput|requests"
pending="$(curl -sf "$U/v1/job/bench/summary" | grep -o '"Pending":[0-9]*' | head -1)"
echo "children: $pending"
echo "build: ${PROFILE:-release}"

# A deep page: children older than the middle of the list (create indexes from the links
# of the newest and the oldest page).
newest_idx="$(curl -sf "$U/ui/jobs/bench" | grep -o 'before=[0-9]*' | head -1 | cut -d= -f2)"
oldest_page="$(curl -sf "$U/ui/jobs/bench?status=all&after=0")"
oldest_idx="$(grep -o 'after=[0-9]*' <<<"$oldest_page" | grep -v 'after=0$' | head -1 | cut -d= -f2)"
oldest_child="$(grep -o 'href="/ui/jobs/bench%2F[^"#]*"' <<<"$oldest_page" | tail -1 | cut -d'"' -f2)"
deep_before=$(( (${newest_idx:-0} + ${oldest_idx:-0}) / 2 ))

time_page() {
    local name="$1" path="$2" status
    status="$(curl -s -o /dev/null -w '%{http_code}' "$U$path")"
    [ "$status" = 200 ] || { echo "$name: $path answered $status" >&2; exit 1; }
    for _ in $(seq 5); do
        curl -s -o /dev/null -w '%{time_total}\n' "$U$path"
    done | sort -n | awk -v n="$name" '{a[NR]=$1} END {printf "%-28s min %s median %s max %s s\n", n, a[1], a[3], a[5]}'
}
time_page "jobs page" "/ui/jobs"
time_page "job page, newest 50" "/ui/jobs/bench"
time_page "job page, deep page" "/ui/jobs/bench?status=all&before=$deep_before"
time_page "job page, oldest 50" "/ui/jobs/bench?status=all&after=0"
time_page "children, status=pending" "/ui/jobs/bench?status=pending"
time_page "children, status=running" "/ui/jobs/bench?status=running"
time_page "child page" "$oldest_child"
echo "rss_kb: $(awk '/VmRSS/ {print $2}' /proc/$SERVER/status)"
