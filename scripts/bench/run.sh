#!/usr/bin/env bash
# Build dispatch + dispatch-bench in release mode and run the standard set:
# 200k dispatches at C = 64, 256, 512, then 1M pending + kill -9 + restart.
# Usage: scripts/bench/run.sh [extra dispatch-bench flags]
set -euo pipefail
cd "$(dirname "$0")/../.."
TARGET="${CARGO_TARGET_DIR:-target}"
cargo build --release --bins
BENCH="$TARGET/release/dispatch-bench"
echo "cores: $(nproc)"
for c in 64 256 512; do
    echo "== concurrency $c"
    "$BENCH" --requests "${REQUESTS:-200000}" --concurrency "$c" "$@"
done
echo "== restart check (1M pending)"
"$BENCH" --requests 1000000 --concurrency 256 --restart-check "$@"
