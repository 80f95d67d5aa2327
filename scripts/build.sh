#!/usr/bin/env bash
# Release build of all five executables, with the git commit and build date that -version prints.
# Usage: scripts/build.sh [extra swift build arguments]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/install-deps.sh
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then commit="$commit-dirty"; fi
date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
swift build -c release -Xcc "-DHL_GIT_COMMIT=\"$commit\"" -Xcc "-DHL_BUILD_DATE=\"$date\"" "$@"
