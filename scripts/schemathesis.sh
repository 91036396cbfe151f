#!/usr/bin/env bash
# Property-based API testing of the OpenAPI document against the real server, with
# schemathesis (https://schemathesis.readthedocs.io). `make test` runs it after `cargo test`.
#
# It builds rekomi-server, creates a fresh PostgreSQL database, migrates it, creates a Growth
# organization with a few API keys and one record of each kind (so lists and lookups answer real
# objects), serves on a free 127.0.0.1 port, and lets schemathesis generate requests for every
# operation of /api/v1/openapi.json. The run fails (exit status non-zero) on any server error
# (5xx), any status code the document does not list for the operation, any response body that
# does not match its schema, any undocumented Content-Type or response header value, any 405
# without a correct `Allow` header, and any authenticated operation that ignores missing
# credentials.
#
# Every operation is tested. The affiliate-side `POST /api/me/coupons/mint` gets an affiliate
# JWT signed with the server's secret; the Stripe webhook receiver `POST /api/webhooks/stripe`
# gets unsigned (hence always refused, 400) requests: it cannot be exercised further without
# Stripe signatures, which schemathesis cannot produce.
#
# Knobs: SCHEMATHESIS_MAX_EXAMPLES (per operation and phase, default 50),
# SCHEMATHESIS_SEED (default: random; the seed is printed), SCHEMATHESIS_PG_BASE (a URL of the
# `postgres` database; default REKOMI_TEST_DATABASE_URL, then what scripts/pg.sh finds),
# SCHEMATHESIS_KEEP_DB=1 (keep the database for inspection), SCHEMATHESIS_CHECKS (the checks,
# comma-separated; default the list below). Reports land in
# target/schemathesis/report (JUnit XML and a JSON run report) and the server log in
# target/schemathesis/server.log. Python 3 and PyPI are needed the first time (schemathesis is
# installed into a virtualenv under target/schemathesis/venv).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'schemathesis.sh: %s\n' "$*" >&2; }

VERSION=4.32.5
work=target/schemathesis
venv="$work/venv"
st="$venv/bin/schemathesis"
mkdir -p "$work"

if ! "$st" --version 2>/dev/null | grep -q "version $VERSION\$"; then
  log "installing schemathesis $VERSION into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$VERSION"
fi

base="${SCHEMATHESIS_PG_BASE:-${REKOMI_TEST_DATABASE_URL:-}}"
[ -n "$base" ] || base=$(scripts/pg.sh)
db="rekomi_schemathesis_$$"
server_pid=
cleanup() {
  status=$?
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [ "${SCHEMATHESIS_KEEP_DB:-}" != 1 ]; then
    psql "$base" -qX -c "drop database if exists $db with (force)" >/dev/null 2>&1 || true
  else
    log "kept the database ${base%/*}/$db"
  fi
  exit "$status"
}
trap cleanup EXIT INT TERM

log "creating the database $db"
psql "$base" -qX -v ON_ERROR_STOP=1 -c "create database $db" >/dev/null
export DATABASE_URL="${base%/*}/$db"

log "building rekomi-server"
cargo build --quiet -p rekomi-server
server=target/debug/rekomi-server

# Local mode (no Stripe key): coupons and codes get offline Stripe-like ids. Outbound webhook
# deliveries are off so fuzzed endpoints are never called; the reconciler and inbox worker run.
export REKOMI_JWT_SECRET="schemathesis-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export REKOMI_STRIPE_WEBHOOK_SECRET="whsec_schemathesis$$"
export REKOMI_DELIVERY_INTERVAL_MS=0
# Failed authentications are limited per client address (30 a minute), and schemathesis sends
# requests without or with bad credentials on purpose (the ignored_auth check, missing-auth
# cases): the hooks file gives each request its own X-Forwarded-For address, read as the client
# address here, so those refusals stay 401s instead of shutting the whole run out with 429s.
export REKOMI_CLIENT_IP_HEADER=X-Forwarded-For
export RUST_LOG="${RUST_LOG:-warn}"

"$server" migrate >/dev/null
json_field() { python3 -c 'import json, sys; print(json.loads(sys.argv[2]).get(sys.argv[1], ""))' "$1" "$2"; }
admin() { RUST_LOG=error "$server" admin "$@" 2>/dev/null; }
org=$(admin create-org --name "Schemathesis Brand" --handle "schemathesis-$$" --plan growth)
api_key=$(json_field apiKey "$org")
org_id=$(json_field organizationId "$org")
[ -n "$api_key" ] && [ -n "$org_id" ] || { log "could not read the API key from: $org"; exit 1; }
# 600 requests per minute per key: requests are spread over several keys of the organization
# (the hooks file rotates them) so the run is not mostly 429s.
keys="$api_key"
for _ in $(seq 1 11); do
  keys="$keys,$(json_field apiKey "$(admin create-api-key --org "$org_id" --scope read_write)")"
done
admin link-stripe-account --org "$org_id" --account "acct_schemathesis$$" >/dev/null
affiliate_email="creator@schemathesis.example"
affiliate_token=$(json_field token "$(admin affiliate-token --sub schemathesis-affiliate --email "$affiliate_email")")

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
address="http://127.0.0.1:$port"
REKOMI_BIND="127.0.0.1:$port" "$server" serve >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  curl -fsS "$address/readyz" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || { log "the server exited; see $work/server.log"; exit 1; }
  sleep 0.1
done
curl -fsS "$address/readyz" >/dev/null || { log "the server did not become ready; see $work/server.log"; exit 1; }

# One record of each kind, so list, get and lookup answers carry real objects to check, and the
# generated requests use their ids half of the time (see the dictionaries below).
call() { # method path body -> the answer's "id"
  local out
  out=$(curl -fsS -X "$1" "$address$2" -H "Authorization: Bearer $api_key" -H 'Content-Type: application/json' --data "$3") \
    || { log "seeding $1 $2 failed"; exit 1; }
  json_field id "$out"
}
endpoint=$(call POST /api/v1/webhook-endpoints '{"url":"https://93.184.216.34/hooks"}')
program=$(call POST /api/v1/programs '{"name":"Default program","defaultCommissionType":"Percentage","defaultCommissionValue":20}')
affiliate=$(call POST /api/v1/affiliates "{\"programId\":\"$program\",\"email\":\"$affiliate_email\",\"fullName\":\"Sam Creator\"}")
pending=$(call POST /api/v1/affiliates "{\"programId\":\"$program\",\"email\":\"pending@schemathesis.example\",\"status\":\"Pending\"}")
coupon=$(call POST "/api/v1/campaigns/$program/coupons" \
  '{"name":"Launch","discountType":"PercentOff","discountValue":20,"duration":"Once","allowAffiliateSelfMint":true}')
code=$(call POST "/api/v1/affiliates/$affiliate/coupons" "{\"campaignCouponId\":\"$coupon\",\"code\":\"SAM20\"}")
delivery=$(curl -fsS "$address/api/v1/webhook-endpoints/$endpoint/deliveries" -H "Authorization: Bearer $api_key" \
  | python3 -c 'import json, sys; items = json.load(sys.stdin)["items"]; print(items[0]["id"] if items else "")')
# A signed Stripe event of the organization's connected account, for the event inbox routes.
event_id="evt_schemathesis$$"
event="{\"id\":\"$event_id\",\"object\":\"event\",\"type\":\"customer.created\",\"livemode\":false,\"created\":$(date +%s),\"account\":\"acct_schemathesis$$\",\"data\":{\"object\":{}}}"
now=$(date +%s)
signature=$(printf '%s.%s' "$now" "$event" | openssl dgst -sha256 -hmac "$REKOMI_STRIPE_WEBHOOK_SECRET" -r | cut -d' ' -f1)
curl -fsS -X POST "$address/api/webhooks/stripe" -H 'Content-Type: application/json' \
  -H "Stripe-Signature: t=$now,v1=$signature" --data "$event" >/dev/null || { log "seeding the Stripe event failed"; exit 1; }
[ -n "$delivery" ] || { log "seeding: no webhook delivery was recorded"; exit 1; }

max_examples="${SCHEMATHESIS_MAX_EXAMPLES:-50}"
seed="${SCHEMATHESIS_SEED:-$RANDOM$RANDOM}"
config="$work/schemathesis.toml"
cat >"$config" <<TOML
[cache]
enabled = false

[auth.openapi.bearer]
bearer = "$api_key"

[auth.openapi.affiliate_jwt]
bearer = "$affiliate_token"

# The seeded records' ids, used for half of the generated values of the parameters below.
# DELETE and the bulk action get generated ids only, so the records stay for the whole run.
[dictionaries]
programs = { values = ["$program"] }
affiliates = { values = ["$affiliate", "$pending"] }
campaign_coupons = { values = ["$coupon"] }
affiliate_coupons = { values = ["$code"] }
endpoints = { values = ["$endpoint"] }
deliveries = { values = ["$delivery"] }
stripe_events = { values = ["$event_id"] }

[[operations]]
include-path-regex = "^/api/v1/(programs/[{]id[}]|campaigns/)"
exclude-method = "DELETE"
parameters = { "path.id" = { dictionary = "programs", probability = 0.5 }, "path.programId" = { dictionary = "programs", probability = 0.5 } }

[[operations]]
include-path-regex = "^/api/v1/campaigns/[{]programId[}]/coupons/[{]id[}]"
exclude-method = "DELETE"
parameters = { "path.programId" = { dictionary = "programs", probability = 0.5 }, "path.id" = { dictionary = "campaign_coupons", probability = 0.5 } }

[[operations]]
include-path-regex = "^/api/v1/affiliates/[{](id|affiliateId)[}]"
exclude-method = "DELETE"
parameters = { "path.id" = { dictionary = "affiliates", probability = 0.5 }, "path.affiliateId" = { dictionary = "affiliates", probability = 0.5 }, "body.campaignCouponId" = { dictionary = "campaign_coupons", probability = 0.5 } }

[[operations]]
include-path-regex = "^/api/v1/(affiliates|conversions|conversions/export.csv)$"
parameters = { "body.programId" = { dictionary = "programs", probability = 0.5 }, "body.recruitedByAffiliateId" = { dictionary = "affiliates", probability = 0.5 }, "query.programId" = { dictionary = "programs", probability = 0.5 }, "query.affiliateId" = { dictionary = "affiliates", probability = 0.5 } }

[[operations]]
include-path = "/api/v1/promotional-codes"
parameters = { "query.id" = { dictionary = "affiliate_coupons", probability = 0.5 }, "query.couponId" = { dictionary = "campaign_coupons", probability = 0.5 }, "query.affiliateId" = { dictionary = "affiliates", probability = 0.5 } }

[[operations]]
include-path = "/api/me/coupons/mint"
parameters = { "body.campaignCouponId" = { dictionary = "campaign_coupons", probability = 0.5 } }

[[operations]]
include-path-regex = "^/api/v1/webhook-endpoints/[{]id[}]"
exclude-method = "DELETE"
parameters = { "path.id" = { dictionary = "endpoints", probability = 0.5 }, "path.deliveryId" = { dictionary = "deliveries", probability = 0.5 } }

[[operations]]
include-path-regex = "^/api/v1/webhooks/stripe/events/"
parameters = { "path.id" = { dictionary = "stripe_events", probability = 0.5 } }
TOML
# One worker: with several, Hypothesis parses lambda sources from threads, which trips a
# CPython 3.11 bug ("AST constructor recursion depth mismatch"); one is fast enough here.
log "testing $address (seed $seed, at most $max_examples examples per operation and phase)"
start=$(date +%s)
set +e
SCHEMATHESIS_ROTATE_KEYS="$keys" SCHEMATHESIS_PRIMARY_KEY="$api_key" SCHEMATHESIS_HOOKS="scripts/schemathesis_hooks.py" \
  "$st" --config-file "$config" run "$address/api/v1/openapi.json" \
  --checks "${SCHEMATHESIS_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance,unsupported_method,ignored_auth}" \
  --phases examples,coverage,fuzzing \
  --max-examples "$max_examples" \
  --seed "$seed" \
  --workers 1 \
  --request-timeout 30 \
  --generation-database none \
  --continue-on-failure \
  --no-color \
  --report junit,json --report-dir "$work/report"
status=$?
set -e
log "finished in $(($(date +%s) - start)) s with exit status $status (server log: $work/server.log)"
if grep -q 'panicked' "$work/server.log"; then
  log "the server panicked during the run:"
  grep -m5 'panicked' "$work/server.log" >&2
  status=1
fi
exit "$status"
