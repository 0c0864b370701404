#!/usr/bin/env bash
# Dispatch -> process running latency on the embedded local runner.
#
#   scripts/bench/launch_latency.sh [N]        (default N=50 sequential dispatches)
#
# Starts `dispatch server` (release build) on a temp data dir, registers a job whose task
# writes the time it started (date +%s%N), dispatches it N times one after another, and
# prints the latency from "the API answered the dispatch" to "the task's process ran", as
# p50 / p90 / max in milliseconds.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-50}
cargo build --release --quiet --bin dispatch
BIN=$PWD/target/release/dispatch
WORK=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ADDR=http://127.0.0.1:$PORT
"$BIN" server -data-dir "$WORK/data" -bind "127.0.0.1:$PORT" -driver-allowlist raw_exec -log-level warn >"$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do curl -fs "$ADDR/v1/status/leader" >/dev/null && break; sleep 0.05; done

cat >"$WORK/stamp.json" <<JSON
{"Job": {"ID": "stamp", "Type": "batch",
  "ParameterizedJob": {"MetaRequired": ["n"]},
  "TaskGroups": [{"Name": "g",
    "RestartPolicy": {"Attempts": 0}, "ReschedulePolicy": {"Attempts": 0},
    "Tasks": [{"Name": "t", "Driver": "raw_exec",
      "Config": {"command": "/bin/sh", "args": ["-c", "date +%s%N > $WORK/started-\${NOMAD_META_n}"]},
      "Resources": {"CPU": 100, "MemoryMB": 16}}]}]}}
JSON
curl -fs -X PUT "$ADDR/v1/jobs" -d @"$WORK/stamp.json" >/dev/null

for i in $(seq "$N"); do
  curl -fs -X PUT "$ADDR/v1/job/stamp/dispatch" -d "{\"Meta\": {\"n\": \"$i\"}}" >/dev/null
  date +%s%N >"$WORK/answered-$i"
  for _ in $(seq 400); do [ -s "$WORK/started-$i" ] && break; sleep 0.01; done
done

python3 - "$WORK" "$N" <<'PY'
import os, sys
work, n = sys.argv[1], int(sys.argv[2])
lat = []
for i in range(1, n + 1):
    try:
        answered = int(open(f"{work}/answered-{i}").read())
        started = int(open(f"{work}/started-{i}").read())
    except (OSError, ValueError):
        print(f"dispatch {i}: task did not start"); continue
    lat.append((started - answered) / 1e6)
lat.sort()
pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
print(f"dispatches: {n}")
print(f"started: {len(lat)}")
print(f"dispatch_to_running_p50_ms: {pick(0.5):.1f}")
print(f"dispatch_to_running_p90_ms: {pick(0.9):.1f}")
print(f"dispatch_to_running_max_ms: {lat[-1]:.1f}")
PY
