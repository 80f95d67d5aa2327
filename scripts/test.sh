#!/usr/bin/env bash
# Installs what the tests need (Debian packages), builds everything, runs every test. CI runs exactly this.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/install-deps.sh
# An independent NATS client (Python's nats-py) reads and writes our object-store layout in the tests.
python3 -c 'import nats.js.object_store' 2>/dev/null || python3 -m pip install --quiet nats-py
# An S3-compatible server (moto) and an independent S3 client (the AWS CLI) for the s3 snapshot store.
command -v moto_server > /dev/null || python3 -m pip install --quiet 'moto[server]'
command -v aws > /dev/null || python3 -m pip install --quiet awscli
swift build --build-tests
swift test --skip-build
