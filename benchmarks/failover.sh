#!/usr/bin/env bash
# The long form of the NATS failover test (issue 14): three nodes on an external 3-server NATS cluster
# (replicas = 3, 2 shards, snapshots off), steady single-row writes on nodes 1 and 2, and in turn kill -9
# + restart of a shard stream's leader, node 3's consumer leader and the server node 2's broker uses.
# Prints rounds, rows written and rows lost (every node must hold every row; no "gone from the stream").
# Usage: benchmarks/failover.sh [rounds, default 20]
# Other suites can run the same with: HL_FAILOVER_ROUNDS=N swift test --skip-build --filter Failover/serverKills
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
rounds=${1:-20}
swift build --build-tests > /dev/null
echo "nats-server: $(/usr/sbin/nats-server --version)"
output=$(HL_FAILOVER_ROUNDS=$rounds swift test --skip-build --filter 'Failover/serverKillsUnderLoadLoseNoRows' 2>&1) && status=0 || status=$?
grep -E '^(failover summary|health waits|round [0-9]+:|node [0-9]+: |failover logs kept)' <<< "$output" || true
grep -E '✘' <<< "$output" | head -20 || true
summary=$(grep -m1 '^failover summary' <<< "$output" || echo "failover summary: the test did not finish (exit $status)")
echo "$summary"
exit $status
