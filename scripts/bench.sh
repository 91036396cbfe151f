#!/usr/bin/env bash
# `make bench`: Stripe webhook ingestion at a fixed request rate (open loop) and inbox
# processing throughput, on this machine, against the release server and a fresh
# `rekomi_bench` database. Writes a dated section of docs/benchmarks.md.
#
# Parameters come from BENCH_* variables (see `target/release/rekomi-bench --help`), e.g.
#   BENCH_RATE=1500 BENCH_DURATION=30 make bench
#   BENCH_STEPS= make bench            # no step test
#   BENCH_OUT= make bench              # print only, do not touch docs/benchmarks.md
# PostgreSQL: BENCH_PG_BASE (a URL of the `postgres` database) when set, otherwise the server
# scripts/pg.sh finds or starts. Everything targets 127.0.0.1 and stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'bench.sh: %s\n' "$*" >&2; }

base="${BENCH_PG_BASE:-$(scripts/pg.sh)}"
db=rekomi_bench
log "recreating the database $db"
psql "$base" -qX -v ON_ERROR_STOP=1 -c "drop database if exists $db with (force)" >/dev/null
psql "$base" -qX -v ON_ERROR_STOP=1 -c "create database $db" >/dev/null
export DATABASE_URL="${base%/*}/$db"

log "building the release binaries (rekomi-server, rekomi-bench)"
cargo build --release -p rekomi-server -p rekomi-bench

server=target/release/rekomi-server
RUST_LOG=warn "$server" migrate >/dev/null
org=$(RUST_LOG=warn "$server" admin create-org --name "Bench Brand" --handle "bench-$(date +%s)" --plan growth)
api_key=$(sed -E 's/.*"apiKey":"([^"]+)".*/\1/' <<<"$org")
[ -n "$api_key" ] && [ "$api_key" != "$org" ] || { log "could not read the API key from: $org"; exit 1; }

source_rev=$(git describe --always --dirty 2>/dev/null || echo unknown)
BENCH_API_KEY="$api_key" BENCH_SERVER_BIN="$server" BENCH_SOURCE="$source_rev" exec target/release/rekomi-bench "$@"
