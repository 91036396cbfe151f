#!/usr/bin/env bash
# Fails when the OpenAPI document the server serves differs from the committed
# docs/openapi.json (regenerate it with `make openapi`).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked -q -p rekomi-server
served=$(mktemp)
trap 'rm -f "$served"' EXIT
target/debug/rekomi-server openapi > "$served"
if ! diff -u docs/openapi.json "$served" > /dev/null; then
  echo "check-openapi: the served OpenAPI document differs from docs/openapi.json:" >&2
  diff -u docs/openapi.json "$served" | head -40 >&2
  echo "check-openapi: run 'make openapi' and commit docs/openapi.json" >&2
  exit 1
fi
echo "check-openapi: docs/openapi.json is the served document"
