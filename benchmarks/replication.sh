#!/usr/bin/env bash
# The replication benchmark: builds the release binaries, measures this machine's physical limits (SQLite
# with capture triggers, JetStream async publish) and replication between two real nodes, prints tables.
# Usage: benchmarks/replication.sh [seconds per run, default 5] [only the runs whose label contains this]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/build.sh" > /dev/null
exec "$root/.build/release/harmonylite-benchmark" "${1:-5}" "${@:2}"
