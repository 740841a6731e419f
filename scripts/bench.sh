#!/usr/bin/env bash
# The credential-path benchmark: builds the release server and the bench driver, then runs it.
# Prints credential/healthz throughput ratio, p99 latency, mints per 1,000 fetches across 1,000
# sessions, and server RSS with 10,000 live sessions. Loopback only; takes a few minutes.
# `scripts/bench.sh capacity` measures one replica with 20,000 and 100,000 live sessions instead
# (RSS, database size, credential p50/p99 with every runner fetching once a minute; about 5 min).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin lanyard --bin lanyard-bench
if [ "${1:-}" = "capacity" ]; then
  export LANYARD_BENCH_MODE=capacity
fi
exec "${CARGO_TARGET_DIR:-target}/release/lanyard-bench"
