#!/usr/bin/env bash
# P1: durable dispatch over HTTP against the trivial-handler ceiling, in one run.
#
# The ceiling (`dispatch-bench --ceiling`: the same route, a parsed JSON body, no storage) and
# `dispatch server` (durable: every 200 was fsynced) take the same wrk load in turns, A B A B,
# at 64 and 256 connections. Per run: req/s, p50/p99 latency and the server's CPU time per
# request (utime+stime from /proc/<pid>/stat: steadier than a rate on a shared machine);
# then, per connection count, the mean req/s of each contestant and its ratio to the ceiling.
#
# Usage: scripts/bench/p1.sh [--before OLD_DISPATCH_BIN] [--seconds N] [--rounds N]
#                            [--conns "64 256"] [--no-build]
#   --before BIN  also run BIN (e.g. a saved release build of an older commit) as a third
#                 contestant, alternating with the other two: before/after in one run.
# Env: CARGO_TARGET_DIR (where the release binaries are), WRK_THREADS (default 2).
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds=10
rounds=2
conns="64 256"
before=""
build=1
while [ $# -gt 0 ]; do
    case "$1" in
        --before) before="$2"; shift 2 ;;
        --seconds) seconds="$2"; shift 2 ;;
        --rounds) rounds="$2"; shift 2 ;;
        --conns) conns="$2"; shift 2 ;;
        --no-build) build=0; shift ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "p1.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
command -v wrk >/dev/null || { echo "p1.sh: wrk is not installed (apt-get install wrk)" >&2; exit 1; }
target="${CARGO_TARGET_DIR:-target}"
if [ "$build" = 1 ]; then
    cargo build --release --bin dispatch --bin dispatch-bench >&2
fi
dispatch_bin="$target/release/dispatch"
bench_bin="$target/release/dispatch-bench"
threads="${WRK_THREADS:-2}"
clk_tck=$(getconf CLK_TCK)

work=$(mktemp -d /tmp/dispatch-p1.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# Wait for "<marker>http://ADDR" in a log file; prints ADDR.
wait_addr() {
    local log="$1" marker="$2" addr=""
    for _ in $(seq 1 600); do
        addr=$(sed -n "s|.*${marker}http://\([0-9.:]*\).*|\1|p" "$log" | head -1)
        [ -n "$addr" ] && { echo "$addr"; return 0; }
        sleep 0.1
    done
    echo "p1.sh: no address in $log:" >&2; cat "$log" >&2; return 1
}

declare -A addr pid
start_ceiling() {
    "$bench_bin" --ceiling 127.0.0.1:0 >"$work/ceiling.log" 2>&1 &
    pid[ceiling]=$!; pids+=("$!")
    addr[ceiling]=$(wait_addr "$work/ceiling.log" "ceiling listening on ")
}
# A durable server with a local runner that offers nothing: the queue only grows.
start_dispatch() {
    local name="$1" bin="$2"
    "$bin" server -data-dir "$work/$name-data" -bind 127.0.0.1:0 -local-cpus 0 \
        -log-level "warn,dispatch::server=info" >"$work/$name.log" 2>&1 &
    pid[$name]=$!; pids+=("$!")
    addr[$name]=$(wait_addr "$work/$name.log" "Dispatch API listening on ")
    for _ in $(seq 1 600); do
        curl -sf "http://${addr[$name]}/v1/agent/health" >/dev/null && break
        sleep 0.1
    done
    # shellcheck disable=SC2016 # ${NOMAD_META_input} is the server's interpolation, not ours
    curl -sf -X PUT "http://${addr[$name]}/v1/jobs" -d '{"Job": {
        "ID": "bench", "Name": "bench", "Type": "batch", "Datacenters": ["dc1"],
        "ParameterizedJob": {"Payload": "optional", "MetaRequired": ["input"]},
        "TaskGroups": [{"Name": "work", "Count": 1, "Tasks": [{"Name": "work", "Driver": "exec",
            "Config": {"command": "/bin/true", "args": ["${NOMAD_META_input}"]},
            "Resources": {"CPU": 100, "MemoryMB": 64}}]}]}}' >/dev/null
}

cat >"$work/dispatch.lua" <<'EOF'
wrk.method = "PUT"
wrk.body = '{"Meta": {"input": "in.mp4"}}'
wrk.headers["Content-Type"] = "application/json"
EOF

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# wrk latency "1.23ms" / "850.00us" / "1.02s" -> milliseconds
to_ms() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000; printf "%.2f", n }'; }

contestants=(ceiling dispatch)
start_ceiling
start_dispatch dispatch "$dispatch_bin"
if [ -n "$before" ]; then
    contestants+=(before)
    start_dispatch before "$before"
fi

echo "# p1: $(nproc) cores, load average at start: $(cut -d' ' -f1-3 /proc/loadavg), wrk -t$threads, ${seconds}s per run"
echo "# dispatch: $dispatch_bin${before:+; before: $before}"
printf "%-9s %5s %5s %10s %9s %9s %12s %8s\n" run conns round req_per_s p50_ms p99_ms cpu_us_per_req non2xx
declare -A sum runs ok
for c in $conns; do
    for name in "${contestants[@]}"; do sum[$name,$c]=0; runs[$name,$c]=0; done
    # A short warm-up of each server at this connection count (not counted).
    for name in "${contestants[@]}"; do
        wrk -t"$threads" -c"$c" -d1s -s "$work/dispatch.lua" "http://${addr[$name]}/v1/job/bench/dispatch" >/dev/null
    done
    for round in $(seq 1 "$rounds"); do
        for name in "${contestants[@]}"; do
            url="http://${addr[$name]}/v1/job/bench/dispatch"
            t0=$(cpu_ticks "${pid[$name]}")
            out=$(wrk -t"$threads" -c"$c" -d"${seconds}s" --latency -s "$work/dispatch.lua" "$url")
            t1=$(cpu_ticks "${pid[$name]}")
            rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
            total=$(awk '/requests in/ {print $1}' <<<"$out")
            non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out"); non2xx=${non2xx:-0}
            p50=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
            p99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
            cpu_us=$(awk -v d=$((t1 - t0)) -v n="$total" -v hz="$clk_tck" 'BEGIN { printf "%.1f", d * 1e6 / hz / (n > 0 ? n : 1) }')
            printf "%-9s %5s %5s %10.0f %9s %9s %12s %8s\n" "$name" "$c" "$round" "$rps" "$p50" "$p99" "$cpu_us" "$non2xx"
            sum[$name,$c]=$(awk -v a="${sum[$name,$c]}" -v b="$rps" 'BEGIN { print a + b }')
            runs[$name,$c]=$((runs[$name,$c] + 1))
            ok[$name]=$(( ${ok[$name]:-0} + total - non2xx ))
        done
    done
done

echo "# mean req/s and ratio to the ceiling (same run)"
for c in $conns; do
    ceil=$(awk -v s="${sum[ceiling,$c]}" -v n="${runs[ceiling,$c]}" 'BEGIN { print s / n }')
    for name in "${contestants[@]}"; do
        awk -v s="${sum[$name,$c]}" -v n="${runs[$name,$c]}" -v ceil="$ceil" -v name="$name" -v c="$c" \
            'BEGIN { m = s / n; printf "%-9s conns=%-4s mean_req_per_s=%-8.0f ratio=%.2f\n", name, c, m, m / ceil }'
    done
done

# Durability check: every 200 is a pending child (wrk does not count requests still in
# flight when it stops, so the server may hold a few more).
for name in "${contestants[@]}"; do
    [ "$name" = ceiling ] && continue
    pending=$(curl -sf "http://${addr[$name]}/v1/job/bench/summary" | sed -n 's/.*"Pending":\([0-9]*\).*/\1/p')
    echo "# $name: ${ok[$name]} answered 2xx (with warm-ups: more), summary Pending=$pending"
done
