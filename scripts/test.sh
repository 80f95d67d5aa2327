#!/usr/bin/env bash
# Installs what the tests need (Debian packages), checks the formatting, builds everything, runs every test. CI runs exactly this.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/install-deps.sh
# An independent NATS client (Python's nats-py) reads and writes our object-store layout in the tests.
python3 -c 'import nats.js.object_store' 2>/dev/null || python3 -m pip install --quiet nats-py
# An S3-compatible server (moto) and an independent S3 client (the AWS CLI) for the s3 snapshot store.
command -v moto_server > /dev/null || python3 -m pip install --quiet 'moto[server]'
command -v aws > /dev/null || python3 -m pip install --quiet awscli
# The formatter's configuration is .swift-format (applied once to every file): a change that does not follow it fails here.
swift format lint --strict -r Sources Tests Package.swift
swift build --build-tests
swift test --skip-build
