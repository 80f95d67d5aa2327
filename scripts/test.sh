#!/usr/bin/env bash
# Installs what the tests need (Debian packages), builds everything, runs every test. CI runs exactly this.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/install-deps.sh
swift build --build-tests
swift test --skip-build
