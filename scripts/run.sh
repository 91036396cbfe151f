#!/usr/bin/env bash
# `make run`: a working server on a fresh machine. Uses DATABASE_URL when set; otherwise
# starts (installing if needed) a local PostgreSQL and uses a `rekomi` database in it.
# Migrates, loads the shipped ECB exchange rates, creates a demo organization and API key on
# first run, prints them, and serves.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${DATABASE_URL:-}" ]; then
  base=$(scripts/pg.sh)
  psql "$base" -Atqc "select 1 from pg_database where datname = 'rekomi'" | grep -q 1 \
    || psql "$base" -qc 'create database rekomi' >/dev/null
  export DATABASE_URL="${base%/postgres}/rekomi"
fi

cargo build -p rekomi-server
bin=target/debug/rekomi-server
"$bin" migrate >/dev/null
# The ECB reference rates shipped with the repo, so commissions in other currencies store a
# rate to the home currency (replacing rates of the same days; newer files can be imported the
# same way).
"$bin" admin fx import data/fx/eurofxref-hist.csv >/dev/null

state_dir=.rekomi
demo="$state_dir/demo.json"
mkdir -p "$state_dir"
# A per-checkout Stripe webhook signing secret, so signed test events can be sent locally
# (with a real Stripe account, set REKOMI_STRIPE_WEBHOOK_SECRET to the endpoint's whsec_…).
if [ -z "${REKOMI_STRIPE_WEBHOOK_SECRET:-}" ]; then
  [ -s "$state_dir/stripe_webhook_secret" ] || printf 'whsec_%s' "$(head -c 24 /dev/urandom | base64 | tr -d '\n=+/')" > "$state_dir/stripe_webhook_secret"
  export REKOMI_STRIPE_WEBHOOK_SECRET="$(cat "$state_dir/stripe_webhook_secret")"
fi
# A per-checkout development secret for dashboard and affiliate JWTs, so the affiliate
# self-mint endpoint can be tried with `rekomi-server admin affiliate-token`.
if [ -z "${REKOMI_JWT_SECRET:-}" ]; then
  [ -s "$state_dir/jwt_secret" ] || head -c 32 /dev/urandom | base64 | tr -d '\n=+/' > "$state_dir/jwt_secret"
  export REKOMI_JWT_SECRET="$(cat "$state_dir/jwt_secret")"
fi
if [ ! -s "$demo" ] || ! grep -q "$(printf '%s' "$DATABASE_URL" | sha256sum | cut -c1-16)" "$state_dir/demo.db" 2>/dev/null; then
  handle="demo-$(date +%s)"
  "$bin" admin create-org --name "Demo Brand" --handle "$handle" --plan growth > "$demo"
  printf '%s' "$DATABASE_URL" | sha256sum | cut -c1-16 > "$state_dir/demo.db"
fi
api_key=$(sed -E 's/.*"apiKey":"([^"]+)".*/\1/' "$demo")
org_id=$(sed -E 's/.*"organizationId":"([^"]+)".*/\1/' "$demo")
bind="${REKOMI_BIND:-127.0.0.1:8080}"

cat <<MSG

  Rekomi is starting on http://$bind
  Demo organization: $org_id (Growth plan)
  Demo API key:      $api_key

  Try:  curl -s http://$bind/api/v1/programs -H "Authorization: Bearer $api_key"

  JWTs are signed with the secret in .rekomi/jwt_secret (unless REKOMI_JWT_SECRET was set):
        REKOMI_JWT_SECRET=\$(cat .rekomi/jwt_secret) $bin admin affiliate-token --sub user_1 --email you@example.com

  No REKOMI_STRIPE_SECRET_KEY is set unless you exported one: local mode, nothing goes to Stripe.

MSG
exec "$bin" serve
