#!/usr/bin/env bash
# Make sure Debian's chromium is installed for the browser tests (idempotent, quiet).
# Playwright drives it with executable_path=/usr/bin/chromium; we never run
# `playwright install`, which would download a browser outside the package registry.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
log="$(mktemp)"
if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends chromium; } \
    >"$log" 2>&1; then
  cat "$log" >&2
  exit 1
fi
rm -f "$log"
test -x /usr/bin/chromium
