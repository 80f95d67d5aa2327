#!/usr/bin/env bash
# The replication benchmark: builds the release binaries, measures this machine's physical limits (SQLite
# with capture triggers, JetStream async publish) and replication between two real nodes: saturation, the
# operating range (paced 1-1,000 rows/s, first write after idle, idle poll check) and CPU per process; prints tables.
# Usage: benchmarks/replication.sh [seconds per run, default 5] [only the runs whose label contains this: paced, idle, …]
# Environment: HL_BENCH_PACED_MIN_ROWS (200), HL_BENCH_IDLE_SECONDS (60), HL_BENCH_IDLE_GAP_SECONDS (15).
# Quick operating range: benchmarks/replication.sh 5 paced; HL_BENCH_IDLE_SECONDS=10 HL_BENCH_IDLE_GAP_SECONDS=3 benchmarks/replication.sh 5 idle
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/build.sh" > /dev/null
exec "$root/.build/release/harmonylite-benchmark" "${1:-5}" "${@:2}"
