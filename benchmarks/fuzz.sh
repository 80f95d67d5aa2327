#!/usr/bin/env bash
# The long form of the decoder fuzz targets: every decoder of outside bytes (change batches, upstream HarmonyLite's events, snapshot
# metadata, object-store info, WebDAV and SFTP listings, IPC control and data frames, the seq map, HTTP request heads) gets
# [inputs] mutants of valid inputs from a seeded generator (default 1,000,000 each; the normal test run
# does 10,000). Prints one line per decoder: inputs, accepted, refused, seconds, inputs/s. A decoder that
# traps kills its test process: the run fails. Replay another seed with HL_FUZZ_SEED=<n>.
# Usage: benchmarks/fuzz.sh [inputs]    (debug build, like the tests)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
swift build --build-tests > /dev/null
export HL_FUZZ_INPUTS=${1:-1000000}
swift test --skip-build --filter 'Fuzz(ChangeBatch|UpstreamEvent|SnapshotDecoders|IPCFrames|SeqMap|HTTPRequests)' 2>&1 | tee /tmp/hl-fuzz.$$.log | grep -E '^fuzz |✘|error' || true
status=0
grep -q '✘\|error:' /tmp/hl-fuzz.$$.log && status=1
grep -q 'Test run with .* passed' /tmp/hl-fuzz.$$.log || status=1
rm -f /tmp/hl-fuzz.$$.log
exit $status
