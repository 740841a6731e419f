#!/usr/bin/env bash
# The credential-path benchmark: builds the release server and the bench driver, then runs it.
# Prints credential/healthz throughput ratio, p99 latency, mints per 1,000 fetches across 1,000
# sessions, and server RSS with 10,000 live sessions. Loopback only; takes a few minutes.
# `scripts/bench.sh capacity` measures one replica with 20,000 and 100,000 live sessions instead
# (RSS, database size, credential p50/p99 with every runner fetching once a minute; about 5 min).
# `scripts/bench.sh replicas` runs three replicas on Postgres and Redis (LANYARD_BENCH_DATABASE_URL,
# LANYARD_BENCH_REDIS_URL; default the local servers) and prints upstream mints per hour against
# the ideal, Redis commands per second and credential latency (about 6 min).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bin lanyard --bin lanyard-bench
case "${1:-}" in
  capacity | replicas) export LANYARD_BENCH_MODE="$1" ;;
  "") ;;
  *) echo "usage: scripts/bench.sh [capacity | replicas]" >&2; exit 2 ;;
esac
exec "${CARGO_TARGET_DIR:-target}/release/lanyard-bench"
