#!/usr/bin/env bash
# `make test`: the whole suite, PostgreSQL-backed tests included. Starts (installing if
# needed) a local PostgreSQL unless REKOMI_TEST_DATABASE_URL points at one.
set -euo pipefail
cd "$(dirname "$0")/.."
# provide VAR SCRIPT WHAT SKIPPED: exports VAR as what SCRIPT prints (it finds, starts or
# installs WHAT); without it, CI fails and a developer's run skips the tests that need it.
provide() {
  local value
  if value=$("$2"); then
    export "$1=$value"
  elif [ "${CI:-}" = "true" ]; then
    echo "test.sh: $3 is required under CI" >&2
    exit 1
  else
    echo "test.sh: no $3; $4 will skip" >&2
  fi
}
if [ -z "${REKOMI_TEST_DATABASE_URL:-}" ]; then
  provide REKOMI_TEST_DATABASE_URL scripts/pg.sh PostgreSQL "PostgreSQL-backed tests"
fi
# The browser test (tests/tests/browser.rs) runs the loader in Debian's headless Chromium.
provide REKOMI_CHROMIUM scripts/chromium.sh Chromium "the browser test"
# The shared Stripe reference data beside the project is optional: the tests carry their own
# fixtures and only cross-check against it when it is there.
export REKOMI_SHARED_DIR="${REKOMI_SHARED_DIR:-$(cd .. && pwd)/shared}"
cargo test --workspace --all-targets "$@"
# Then the API against its own OpenAPI document (scripts/schemathesis.sh): it needs PostgreSQL.
# Outside CI it can be skipped with SCHEMATHESIS=0; under CI it always runs.
if [ "${CI:-}" != "true" ] && [ "${SCHEMATHESIS:-1}" = 0 ]; then
  echo "test.sh: SCHEMATHESIS=0: skipping the schemathesis run" >&2
elif [ "${CI:-}" != "true" ] && [ -z "${REKOMI_TEST_DATABASE_URL:-}" ]; then
  echo "test.sh: no PostgreSQL; skipping the schemathesis run" >&2
else
  scripts/schemathesis.sh
fi
