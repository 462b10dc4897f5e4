#!/usr/bin/env bash
# `make ui`: the Dagster web UI and daemon on 127.0.0.1 for a person.
#
# DAGSTER_HOME is $LORCHESTRA_HOME/dagster (default ./.lorchestra/dagster), seeded with the
# repo's dagster.yaml. Port: DAGSTER_PORT (default 3000). Ctrl-C stops everything.
#
# The webserver and the daemon run as the two processes Dagster's own deployments use
# (`dagster dev` is superseded by `dg dev`, which needs a dg project layout this repo does
# not have). When this home's sandbox runs (`make sandbox` / `make demo`), its URL and test
# credentials are exported first, so a Materialize click in the UI reaches it.
set -euo pipefail
set -m  # job control: each background process gets its own process group
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

# secure_home tightens the home (folders 0700, files 0600); umask 077 makes what the
# webserver, the daemon and their runs create (runs.db, event logs, schedules) private too.
"$BIN/python" -c 'import os
from lorchestra_dagster.privacy import secure_home
secure_home(os.environ["LORCHESTRA_HOME"])'
umask 077

sandbox_env="$("$BIN/lorchestra" sandbox env --if-running)"
if [ -n "$sandbox_env" ]; then
  eval "$sandbox_env"
  echo "sources point at the sandbox on $LORCHESTRA_SANDBOX_URL"
elif [ -z "${LORCHESTRA_SANDBOX_URL:-}" ]; then
  echo "no sandbox running: ingest launches need the real vendors' credentials" \
       "(\`make sandbox\` starts the synthetic practice)"
fi

pids=()
stop() {
  for p in "${pids[@]}"; do kill -TERM -- "-$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap stop INT TERM EXIT
"$BIN/dagster-daemon" run -w workspace.yaml &
pids+=($!)
"$BIN/dagster-webserver" -w workspace.yaml -h 127.0.0.1 -p "$PORT" &
pids+=($!)

# Wait for the webserver, then dismiss the "join the community" dialog once.
for _ in $(seq 1 120); do
  if curl -fsS "http://127.0.0.1:$PORT/server_info" >/dev/null 2>&1; then
    curl -fsS -H 'Content-Type: application/json' \
      -d '{"query":"mutation { setNuxSeen }"}' "http://127.0.0.1:$PORT/graphql" >/dev/null \
      || echo "ui.sh: could not dismiss the welcome dialog (harmless)" >&2
    echo "lorchestra UI: http://127.0.0.1:$PORT (DAGSTER_HOME=$DAGSTER_HOME); Ctrl-C stops it"
    break
  fi
  for p in "${pids[@]}"; do
    if ! kill -0 "$p" 2>/dev/null; then
      echo "ui.sh: a Dagster process exited before the UI answered" >&2
      exit 1
    fi
  done
  sleep 1
done
# Either process ending ends the UI (wait -n returns when the first one exits).
wait -n "${pids[@]}"
