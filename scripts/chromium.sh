#!/usr/bin/env bash
# Makes sure Debian's headless-capable Chromium is installed and prints its path, for the
# browser test (tests/tests/browser.rs). Installs the `chromium` package when it is missing
# (needs root). Diagnostics go to stderr; stdout carries only the path.
set -euo pipefail

log() { printf 'chromium.sh: %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else log "need root for: $*"; return 1; fi; }

find_chromium() {
  for candidate in "${REKOMI_CHROMIUM:-}" /usr/bin/chromium /usr/bin/chromium-browser; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

if path=$(find_chromium); then
  echo "$path"
  exit 0
fi
log "Chromium is not installed; installing Debian's chromium package"
as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-liberation >&2
find_chromium
