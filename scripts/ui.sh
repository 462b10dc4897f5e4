#!/usr/bin/env bash
# `make ui`: the Dagster web UI (webserver + daemon) on 127.0.0.1 for a person.
#
# DAGSTER_HOME is $LORCHESTRA_HOME/dagster (default ./.lorchestra/dagster), seeded with the
# repo's dagster.yaml. Port: DAGSTER_PORT (default 3000). Ctrl-C stops everything.
set -euo pipefail
set -m  # job control: `dagster dev` in the background only honours SIGTERM with it on
cd "$(dirname "$0")/.."
BIN="$PWD/.venv/bin"
export LORCHESTRA_HOME="${LORCHESTRA_HOME:-$PWD/.lorchestra}"
export DAGSTER_HOME="$LORCHESTRA_HOME/dagster"
export DAGSTER_DISABLE_TELEMETRY=1
# Several processes (webserver, daemon, runs) share the DuckDB warehouse file.
export LORCHESTRA_DUCKDB_SHORT_LOCK="${LORCHESTRA_DUCKDB_SHORT_LOCK:-1}"
PORT="${DAGSTER_PORT:-3000}"
mkdir -p "$DAGSTER_HOME"
if [ ! -f "$DAGSTER_HOME/dagster.yaml" ] || [ dagster.yaml -nt "$DAGSTER_HOME/dagster.yaml" ]; then
  cp dagster.yaml "$DAGSTER_HOME/dagster.yaml"
fi

# A shell started in the background ignores SIGINT, and dagster dev maps SIGTERM onto SIGINT's
# handler: restore the default first so both signals stop it cleanly. secure_home tightens the
# home (0700/0600) and sets umask 077, which survives the exec: the webserver and daemon
# create runs.db, event logs and schedules private.
"$BIN/python" -c 'import os, signal, sys
from lorchestra_dagster.privacy import secure_home
secure_home(os.environ["LORCHESTRA_HOME"])
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execv(sys.argv[1], sys.argv[1:])' "$BIN/dagster" dev -w workspace.yaml -h 127.0.0.1 -p "$PORT" &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true' INT TERM EXIT

# Wait for the webserver, then dismiss the "join the community" dialog once.
for _ in $(seq 1 120); do
  if curl -fsS "http://127.0.0.1:$PORT/server_info" >/dev/null 2>&1; then
    curl -fsS -H 'Content-Type: application/json' \
      -d '{"query":"mutation { setNuxSeen }"}' "http://127.0.0.1:$PORT/graphql" >/dev/null \
      || echo "ui.sh: could not dismiss the welcome dialog (harmless)" >&2
    echo "lorchestra UI: http://127.0.0.1:$PORT (DAGSTER_HOME=$DAGSTER_HOME)"
    break
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    wait "$pid"
    exit $?
  fi
  sleep 1
done
wait "$pid"
