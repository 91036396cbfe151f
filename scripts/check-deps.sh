#!/usr/bin/env bash
# Enforces the hexagon's dependency rules (DESIGN.md §1): the domain depends on no I/O crate,
# and no adapter depends on another adapter.
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0

domain_deps=$(cargo tree -p rekomi-domain -e normal --prefix none --format '{p}' | awk '{print $1}' | sort -u)
for banned in diesel r2d2 actix-web async-stripe tokio reqwest; do
  if grep -qx "$banned" <<<"$domain_deps"; then
    echo "check-deps: rekomi-domain depends on $banned" >&2
    fail=1
  fi
done

adapters="rekomi-postgres rekomi-stripe rekomi-http rekomi-fakes rekomi-webhooks"
for a in $adapters; do
  deps=$(cargo tree -p "$a" -e normal --prefix none --format '{p}' | awk '{print $1}' | sort -u)
  for b in $adapters; do
    [ "$a" = "$b" ] && continue
    if grep -qx "$b" <<<"$deps"; then
      echo "check-deps: adapter $a depends on adapter $b" >&2
      fail=1
    fi
  done
done

[ "$fail" = 0 ] && echo "check-deps: the hexagon's dependency rules hold"
exit "$fail"
