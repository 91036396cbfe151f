#!/usr/bin/env bash
# `make test`: the whole suite, PostgreSQL-backed tests included. Starts (installing if
# needed) a local PostgreSQL unless REKOMI_TEST_DATABASE_URL points at one.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${REKOMI_TEST_DATABASE_URL:-}" ]; then
  if url=$(scripts/pg.sh); then
    export REKOMI_TEST_DATABASE_URL="$url"
  elif [ "${CI:-}" = "true" ]; then
    echo "test.sh: PostgreSQL is required under CI" >&2
    exit 1
  else
    echo "test.sh: no PostgreSQL; PostgreSQL-backed tests will skip" >&2
  fi
fi
# The shared Stripe reference data sits beside the project.
export REKOMI_SHARED_DIR="${REKOMI_SHARED_DIR:-$(cd .. && pwd)/shared}"
exec cargo test --workspace --all-targets "$@"
