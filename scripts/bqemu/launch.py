"""Start local-bigquery offline: extensions from PyPI wheels, never downloaded.

Runs inside ``.venv-bqemu`` (Python 3.13), never inside the project venv. The
emulator opens DuckDB connections in several places (its catalog, a scratch
connection per project's DuckLake file) and needs the ducklake, icu, spatial
and avro extensions. DuckDB would download those on first use; here they come
from the ``duckdb-extension-*`` wheels instead. This launcher links the wheels'
binaries into one extension directory and wraps ``duckdb.connect`` so that every
connection looks there and never auto-installs, so a missing extension fails
loudly instead of reaching for the network.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import time
from pathlib import Path

import duckdb

EXTENSIONS = ("ducklake", "icu", "spatial", "avro")
INLINING_ROWS = int(os.environ.get("BQEMU_INLINING_ROWS", "100000"))
_connect = duckdb.connect


def _extension_dir() -> Path:
    """Link each wheel's extension binary into ``<venv>/duckdb-ext/v<ver>/<platform>/``."""
    version = f"v{duckdb.__version__}"
    with _connect() as con:
        platform = con.execute("SELECT platform FROM pragma_platform()").fetchone()[0]
    root = Path(sys.prefix) / "duckdb-ext"
    target = root / version / platform
    target.mkdir(parents=True, exist_ok=True)
    for name in EXTENSIONS:
        package = importlib.import_module(f"duckdb_extension_{name}")
        source = Path(package.__file__).parent / "extensions" / version / f"{name}.duckdb_extension"
        if not source.is_file():
            raise SystemExit(f"bqemu: missing {source}; run scripts/bqemu.sh setup")
        link = target / source.name
        if not link.exists():
            link.symlink_to(source)
    return root


EXTENSION_DIR = str(_extension_dir())


def _offline_connect(database=":memory:", read_only=False, config=None, **kwargs):
    """``duckdb.connect`` that loads extensions from the wheels and never downloads."""
    config = dict(config or {})
    config["autoinstall_known_extensions"] = False
    config["autoload_known_extensions"] = True
    config["extension_directory"] = EXTENSION_DIR
    return _connect(database, read_only=read_only, config=config, **kwargs)


duckdb.connect = _offline_connect


_OPEN: set[int] = set()  # id() of DuckDB cursors inside BEGIN TRANSACTION ... COMMIT


class _NoNestedBegin:
    """Cursor proxy for the emulator's MERGE: skip its own BEGIN inside a transaction.

    local-bigquery 0.4.0 runs MERGE as several statements wrapped in ``BEGIN``,
    expecting a ``TransactionException`` when a session transaction is already
    open. In DuckDB that failed BEGIN aborts the open transaction, so every
    MERGE inside ``BEGIN TRANSACTION ... COMMIT`` failed. The launcher tracks
    which cursors have a transaction open (see ``_patch``) and raises the
    expected exception itself instead of sending the BEGIN.
    """

    def __init__(self, cur):
        self._cur = cur

    def execute(self, sql, *args, **kwargs):
        if isinstance(sql, str) and sql.strip().upper() == "BEGIN" and id(self._cur) in _OPEN:
            raise duckdb.TransactionException("already in a transaction (launcher)")
        return self._cur.execute(sql, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._cur, name)


def _patch() -> None:
    """Fix local-bigquery 0.4.0's MERGE inside multi-statement transactions."""
    from local_bigquery.engine import sessions
    from local_bigquery.jobs import merge, query
    from sqlglot import exp

    run_merge, run_statement, abort = merge.run, query._run, sessions.abort

    def merge_run(cur, tree, context):
        return run_merge(_NoNestedBegin(cur), tree, context)

    def statement(cur, tree, *args, **kwargs):
        result = run_statement(cur, tree, *args, **kwargs)
        if isinstance(tree, exp.Transaction):
            _OPEN.add(id(cur))
        elif isinstance(tree, exp.Commit | exp.Rollback):
            _OPEN.discard(id(cur))
        return result

    def session_abort(session_id):
        session = sessions._sessions.get(session_id)
        if session is not None:
            _OPEN.discard(id(session.cursor))
        return abort(session_id)

    from local_bigquery.engine import database
    from local_bigquery.settings import settings

    def attach(con, project_id):
        # Same as local-bigquery's _attach, but small writes are inlined in the DuckLake
        # catalog instead of one Parquet file per statement: the tests write thousands
        # of tiny batches (run records) and file-per-write made each one ~1 s.
        path = settings.data_dir / project_id
        source = (
            f"'ducklake:{path}.ducklake' AS {{}} "
            f"(DATA_PATH '{path}/', DATA_INLINING_ROW_LIMIT {INLINING_ROWS})"
        )
        if not path.with_name(f"{path.name}.ducklake").exists():
            with duckdb.connect() as scratch:
                scratch.execute(f"ATTACH {source.format('fresh')}")
        con.execute(f"ATTACH IF NOT EXISTS {source.format(database.quote(project_id))}")
        database._attached.add(project_id)

    if INLINING_ROWS:
        database._attach = attach
    merge.run = merge_run  # jobs/query.py calls ``merge.run(...)``
    query._run = statement  # looked up as a module global at call time
    sessions.abort = session_abort


def _exit_with_parent() -> None:
    """With BQEMU_EXIT_WITH_PARENT=1, stop when the process that started us is gone.

    The pytest fixture stops the emulator at exit, but a test process killed by a
    signal or a crash cannot; this keeps CI machines free of orphaned emulators.
    """
    if os.environ.get("BQEMU_EXIT_WITH_PARENT") != "1":
        return
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=watch, name="bqemu-parent-watch", daemon=True).start()


def main() -> None:
    _exit_with_parent()
    _patch()
    from local_bigquery.cli import main as cli_main

    cli_main(sys.argv[1:])


if __name__ == "__main__":
    main()
