#!/usr/bin/env bash
# The whole suite: gates first (lint, format, catalog, Dagster definitions), then pytest.
# Called by `make test` and CI (.ci/run). Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
export DAGSTER_DISABLE_TELEMETRY=1
export NO_GCE_CHECK=true
# Tests and gates never use the developer's own warehouse or home.
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
export LORCHESTRA_HOME="$scratch/home"
export DAGSTER_HOME="$scratch/home/dagster"
mkdir -p "$DAGSTER_HOME"
cp dagster.yaml "$DAGSTER_HOME/dagster.yaml"

echo "== browser: Debian chromium (installed when missing)"
bash scripts/ensure_chromium.sh
echo "== ruff"
$BIN/ruff check .
$BIN/ruff format --check .
echo "== mypy"
$BIN/mypy lorchestra_dagster
echo "== lorchestra validate"
$BIN/lorchestra validate
if [ -f lorchestra_dagster/definitions.py ]; then
  echo "== dagster definitions validate"
  $BIN/dagster definitions validate -m lorchestra_dagster.definitions
fi
echo "== pytest"
$BIN/pytest "$@"
