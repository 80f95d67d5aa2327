#!/usr/bin/env bash
# What capture costs the application, in instructions (valgrind's callgrind counts them the same on a busy or
# an idle machine): the benchmark's writer inserts N rows into a WAL database without and with our capture
# triggers (installed by the real installer), in single-row and 100-row transactions; per-row instructions
# and the ratio. The timed figure is in benchmarks/replication.sh's "physical limits".
# Usage: benchmarks/capture-cost.sh [rows for single-row transactions, default 5000]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
command -v valgrind > /dev/null || { echo "capture-cost.sh needs valgrind (apt-get install valgrind)" >&2; exit 1; }
[ -n "${HL_SKIP_BUILD:-}" ] || "$root/scripts/build.sh" > /dev/null
# valgrind cannot read the debug information Swift emits: count a stripped copy.
binary=$(mktemp)
trap 'rm -f "$binary"' EXIT
strip -o "$binary" "$root/.build/release/harmonylite-benchmark"
chmod 700 "$binary"
single=${1:-5000}
count() {  # kind, rows per transaction, rows → instructions
    local out; out=$(mktemp)
    valgrind --tool=callgrind --callgrind-out-file="$out" "$binary" capture-cost "$1" "$2" "$3" 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
    rm -f "$out"
}
for spec in "1 $single" "100 $((single * 10))"; do
    set -- $spec
    # Each kind minus its own set-up (a run of 0 rows): what the rows cost.
    plain=$(( $(count plain "$1" "$2") - $(count plain "$1" 0) ))
    triggers=$(( $(count triggers "$1" "$2") - $(count triggers "$1" 0) ))
    awk -v t="$1" -v n="$2" -v p="$plain" -v c="$triggers" 'BEGIN {
        pp = p / n; cc = c / n
        printf "%d-row transactions: %.0f instructions per row plain, %.0f with capture triggers (cost ×%.2f)\n", t, pp, cc, cc / pp }'
done
