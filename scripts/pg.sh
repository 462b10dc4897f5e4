#!/usr/bin/env bash
# A throwaway PostgreSQL 15 (Debian's packages) on 127.0.0.1 for the Dagster instance.
#
#   scripts/pg.sh start [DIR]   init (first time) and start; prints DIR, writes DIR/env
#   scripts/pg.sh stop DIR      fast shutdown
#   source DIR/env              exports DAGSTER_PG_{HOST,PORT,USERNAME,PASSWORD,DB}
#
# initdb refuses to run as root, so as root the cluster belongs to the `postgres` user.
# DIR must be reachable by that user (the default, a fresh dir under /tmp, is).
set -euo pipefail

PG_BIN="${PG_BIN:-$(ls -d /usr/lib/postgresql/15/bin 2>/dev/null || true)}"
if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/initdb" ]; then
  echo "pg.sh: PostgreSQL 15 not found (apt-get install -y postgresql-15)" >&2
  exit 2
fi

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

cmd="${1:-}"
case "$cmd" in
  start)
    dir="${2:-$(mktemp -d /tmp/lorchestra-pg.XXXXXX)}"
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    if [ "$(id -u)" -eq 0 ]; then
      chown postgres: "$dir"
    fi
    chmod 0700 "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      password="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
      port="$(free_port)"
      as_owner mkdir -p "$dir/data" "$dir/sock"
      printf '%s\n' "$password" | as_owner tee "$dir/pwfile" >/dev/null
      as_owner chmod 0600 "$dir/pwfile"
      as_owner "$PG_BIN/initdb" -D "$dir/data" -U lorchestra --pwfile="$dir/pwfile" \
        --auth-host=scram-sha-256 --auth-local=trust -E UTF8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
      {
        echo "listen_addresses = '127.0.0.1'"
        echo "port = $port"
        echo "unix_socket_directories = '$dir/sock'"
        echo "fsync = off"
        echo "max_connections = 100"
      } | as_owner tee -a "$dir/data/postgresql.conf" >/dev/null
      {
        echo "export DAGSTER_PG_HOST=127.0.0.1"
        echo "export DAGSTER_PG_PORT=$port"
        echo "export DAGSTER_PG_USERNAME=lorchestra"
        echo "export DAGSTER_PG_PASSWORD=$password"
        echo "export DAGSTER_PG_DB=dagster"
      } | as_owner tee "$dir/env" >/dev/null
      as_owner chmod 0600 "$dir/env"
      created=1
    fi
    as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null \
      || { cat "$dir/server.log" >&2; exit 1; }
    if [ "${created:-0}" = 1 ]; then
      as_owner "$PG_BIN/createdb" -h "$dir/sock" -p "$port" -U lorchestra dagster
    fi
    echo "$dir"
    ;;
  stop)
    dir="${2:?usage: pg.sh stop DIR}"
    as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    ;;
  *)
    echo "usage: pg.sh start [DIR] | stop DIR" >&2
    exit 2
    ;;
esac
