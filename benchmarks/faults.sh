#!/usr/bin/env bash
# The fault suite's long form: the randomized workload on three nodes (network namespaces, tmpfs disks; run as
# root) while faults are injected, then the checks; prints a table per run (faults injected, rows written,
# lost, duplicated, time to converge) and the events. Builds the tests first.
# Usage: benchmarks/faults.sh [runs, default 1]
# Environment (defaults of the long form): HL_FAULT_KILL_ROUNDS (100), HL_FAULT_PAUSES (20), HL_FAULT_PARTITIONS (5),
# HL_FAULT_DISK_FULLS (5), HL_FAULT_RESTORES (3), HL_FAULT_GAP_RESTORES (3), HL_FAULT_TX_PER_SECOND (2),
# HL_FAULT_SEED (replay), HL_FAULT_KNOWN_FAILING (1: the fault kinds known to fail run too), HL_WORKLOAD_FEATURES.
# Logs of a failed run are kept in /tmp/hlf-logs-<seed>-node<n>.log.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
swift build --build-tests > /dev/null
export HL_FAULT_RUNS=${1:-1}
export HL_FAULT_KILL_ROUNDS=${HL_FAULT_KILL_ROUNDS:-100} HL_FAULT_PAUSES=${HL_FAULT_PAUSES:-20}
export HL_FAULT_PARTITIONS=${HL_FAULT_PARTITIONS:-5} HL_FAULT_DISK_FULLS=${HL_FAULT_DISK_FULLS:-5}
export HL_FAULT_RESTORES=${HL_FAULT_RESTORES:-3} HL_FAULT_GAP_RESTORES=${HL_FAULT_GAP_RESTORES:-3}
export HL_FAULT_KNOWN_FAILING=${HL_FAULT_KNOWN_FAILING:-1}
swift test --skip-build --filter 'ProcessTests/FaultSuite' 2>&1 | grep -E '^(fault suite|\||  )|✘|✔ Test'
