#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers on 127.0.0.1:5432 and prints a base URL for it
# (connecting to the `postgres` database). Installs the Debian packages when PostgreSQL is
# missing (needs root), starts the cluster when it is down, and, where the server does not
# trust local TCP connections, creates a `rekomi` login role with a password.
# Diagnostics go to stderr; stdout carries only the URL.
set -euo pipefail

log() { printf 'pg.sh: %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else log "need root for: $*"; return 1; fi; }

TRUST_URL="postgres://postgres@127.0.0.1:5432/postgres"
ROLE_URL="postgres://rekomi:rekomi@127.0.0.1:5432/postgres"

can_connect() { psql "$1" -Atqc 'select 1' >/dev/null 2>&1; }

install_if_missing() {
  if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    log "PostgreSQL is not installed; installing it from Debian's packages"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql postgresql-client libpq-dev >&2
  fi
  if ! dpkg -s libpq-dev >/dev/null 2>&1; then
    log "installing libpq-dev (diesel links libpq)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libpq-dev >&2
  fi
}

start_cluster() {
  local version
  version=$(ls /usr/lib/postgresql | sort -V | tail -n1)
  if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -q "^$version main$"; then
    log "creating cluster $version/main"
    as_root pg_createcluster "$version" main >&2
  fi
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    log "starting PostgreSQL $version/main"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2 || true
  fi
  for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 -p 5432 && return 0
    sleep 1
  done
  log "PostgreSQL did not become ready on 127.0.0.1:5432"
  return 1
}

if command -v psql >/dev/null 2>&1 && can_connect "$TRUST_URL"; then echo "$TRUST_URL"; exit 0; fi
if command -v psql >/dev/null 2>&1 && can_connect "$ROLE_URL"; then echo "$ROLE_URL"; exit 0; fi

install_if_missing
start_cluster

if can_connect "$TRUST_URL"; then echo "$TRUST_URL"; exit 0; fi
# Debian's default pg_hba.conf asks TCP clients for a password: create a role that has one.
log "creating the rekomi role (password authentication)"
as_root runuser -u postgres -- psql -qc "DO \$\$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rekomi') THEN CREATE ROLE rekomi LOGIN SUPERUSER PASSWORD 'rekomi'; END IF; END \$\$;" >&2
if can_connect "$ROLE_URL"; then echo "$ROLE_URL"; exit 0; fi
log "cannot connect to PostgreSQL at 127.0.0.1:5432"
exit 1
