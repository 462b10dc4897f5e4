#!/usr/bin/env bash
# The whole suite: gates first (lint, catalog, Dagster definitions), then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
export DAGSTER_DISABLE_TELEMETRY=1
export LORCHESTRA_HOME="${LORCHESTRA_HOME:-$(mktemp -d)/home}"
$BIN/ruff check .
$BIN/ruff format --check .
$BIN/lorchestra validate
$BIN/pytest "$@"
