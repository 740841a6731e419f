#!/usr/bin/env bash
# The credential-path benchmark: builds the release server and the bench driver, then runs it.
# Prints credential/healthz throughput ratio, p99 latency, mints per 1,000 fetches across 1,000
# sessions, and server RSS with 10,000 live sessions. Loopback only; takes a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin lanyard --bin lanyard-bench
exec target/release/lanyard-bench
