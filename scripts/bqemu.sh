#!/usr/bin/env bash
# The BigQuery emulator (local-bigquery on DuckDB) on loopback, for tests and demos.
#
#   scripts/bqemu.sh setup          create/refresh .venv-bqemu (Python 3.13), quiet when current
#   scripts/bqemu.sh start [PORT]   start in the background on 127.0.0.1:PORT (default 9050), print URL
#   scripts/bqemu.sh stop           stop the emulator started by `start`
#   scripts/bqemu.sh serve [PORT]   run in the foreground (what `start` and the pytest fixture run)
#   scripts/bqemu.sh status         print the URL and exit 0 when running
#
# Environment: BQEMU_PYTHON (a Python 3.13 interpreter), BQEMU_DATA_DIR (default
# .lorchestra/bqemu), BQEMU_GRPC_PORT (default 0 = any free port), BQEMU_PROJECT (default local),
# BQEMU_STATE_DIR (pid, url and log of `start`; default .venv-bqemu/run),
# BQEMU_INLINING_ROWS (DuckLake data inlining, see scripts/bqemu/launch.py).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="$ROOT/.venv-bqemu"
REQS="$ROOT/scripts/bqemu/requirements.txt"
LAUNCH="$ROOT/scripts/bqemu/launch.py"
STAMP="$VENV/.installed"
STATE="${BQEMU_STATE_DIR:-$VENV/run}"
DATA_DIR="${BQEMU_DATA_DIR:-$ROOT/.lorchestra/bqemu}"
PROJECT="${BQEMU_PROJECT:-local}"

find_python() {
  local candidate
  for candidate in "${BQEMU_PYTHON:-}" python3.13 /root/.pyenv/versions/3.13.*/bin/python3.13 \
    "$HOME"/.pyenv/versions/3.13.*/bin/python3.13 /usr/bin/python3.13; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 \
      && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  echo "bqemu: no Python 3.13 found (set BQEMU_PYTHON)" >&2
  return 1
}

setup() {
  local want
  want="$(sha256sum "$REQS" | cut -d' ' -f1)"
  if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -x "$VENV/bin/python" ]; then
    return 0
  fi
  local py
  py="$(find_python)"
  [ -x "$VENV/bin/python" ] || "$py" -m venv "$VENV"
  # --no-deps: the pinned set is complete and overrides local-bigquery's duckdb>=2.0 pin.
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps -r "$REQS" \
    2>&1 | grep -v "is ignored: it is neither a file nor a directory" >&2 || true
  "$VENV/bin/python" -c 'import local_bigquery, duckdb; assert duckdb.__version__ == "1.5.5"'
  echo "$want" >"$STAMP"
}

serve() {
  local port="${1:-9050}"
  setup
  mkdir -p "$DATA_DIR"
  exec "$VENV/bin/python" "$LAUNCH" serve --host 127.0.0.1 --port "$port" \
    --grpc-port "${BQEMU_GRPC_PORT:-0}" --project "$PROJECT" --data-dir "$DATA_DIR"
}

healthy() {
  "$VENV/bin/python" - "$1" <<'PY'
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1] + "/bigquery/v2/projects/local/datasets", timeout=2) as r:
        sys.exit(0 if r.status == 200 else 1)
except Exception as exc:  # noqa: BLE001 - any failure means "not up yet"
    sys.exit(1)
PY
}

start() {
  local port="${1:-9050}" url
  url="http://127.0.0.1:$port"
  setup
  mkdir -p "$STATE" "$DATA_DIR"
  if [ -f "$STATE/pid" ] && kill -0 "$(cat "$STATE/pid")" 2>/dev/null; then
    cat "$STATE/url"
    return 0
  fi
  nohup "$0" serve "$port" >"$STATE/log" 2>&1 &
  echo $! >"$STATE/pid"
  echo "$url" >"$STATE/url"
  for _ in $(seq 1 120); do
    if healthy "$url"; then
      echo "$url"
      return 0
    fi
    if ! kill -0 "$(cat "$STATE/pid")" 2>/dev/null; then
      echo "bqemu: emulator exited; log: $STATE/log" >&2
      tail -n 20 "$STATE/log" >&2
      return 1
    fi
    sleep 0.25
  done
  echo "bqemu: not healthy after 30 s; log: $STATE/log" >&2
  return 1
}

stop() {
  [ -f "$STATE/pid" ] || return 0
  local pid
  pid="$(cat "$STATE/pid")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  fi
  rm -f "$STATE/pid" "$STATE/url"
}

status() {
  if [ -f "$STATE/pid" ] && kill -0 "$(cat "$STATE/pid")" 2>/dev/null; then
    cat "$STATE/url"
    return 0
  fi
  echo "bqemu: not running" >&2
  return 1
}

case "${1:-}" in
  setup) setup ;;
  start) start "${2:-}" ;;
  stop) stop ;;
  serve) serve "${2:-}" ;;
  status) status ;;
  *) sed -n '2,13p' "$0" >&2; exit 2 ;;
esac
